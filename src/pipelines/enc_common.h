/*
 * enc_common.h — what the three encoder pipelines share (internal): argument
 * checks, batch tokenization with the truncation options, per-item error
 * recording, score functions, and the run over the batching engine.
 */
#ifndef TP_ENC_COMMON_H
#define TP_ENC_COMMON_H

#include "batch/encoder_run.h"
#include "pipelines/model_internal.h"

/* A batch call that fails after it started (out of memory): every one of the n
 * results of `size` bytes at out (each starting with its tp_error) is left empty
 * and carries the call's status, with item = i and err's message when err is not
 * NULL, so no result claims success. The caller frees the results first. */
void tp_batch_fail_all(void *out, size_t n, size_t size, tp_status st, const tp_error *err);

/* Records an item's failure in its result's tp_error. */
void tp_enc_item_error(tp_error *e, long item, tp_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The input options of every pipeline's default params: truncation on, at the
 * model's context length. */
tp_encoder_input_params tp_enc_default_input(void);

/* The start of a batch call: checks the model (tp_enc_check_model), fails
 * with TP_ERR_INVALID_ARGUMENT and the message `bad_args` when it is not NULL
 * (the caller's verdict on its arguments), then zeroes the n results of
 * `result_size` bytes at out. */
tp_status tp_enc_batch_begin(const tp_model *m, tp_model_task task, const char *pipeline,
                             const char *bad_args, void *out, size_t n, size_t result_size,
                             tp_error *err);

/* Item i's encoding: false after recording its tokenization failure in *e;
 * else e->item = -1, *truncated set, true. */
bool tp_enc_item_encoded(const tp_encoding *enc, size_t i, tp_error *e, bool *truncated);

/* A single call is a batch of one: its item's error (item) becomes the call's
 * error, with err->item = -1. Returns item->status. */
tp_status tp_enc_single_status(const tp_error *item, tp_error *err);

/* Tokenizes n texts (with text_pairs when non-NULL) with the model's
 * special tokens and the resolved input options; NULL texts and ids outside
 * the network's vocabulary become item errors in encs[i].status/error.
 * encs is the caller's array of n (zeroed here); free each with
 * tp_encoding_free. The return value is only for batch-level failures. */
tp_status tp_enc_tokenize(tp_model *m, tp_pool *pool, const char *const *texts,
                          const char *const *text_pairs, size_t n, const tp_enc_input *in,
                          tp_trunc_strategy strategy, tp_encoding *encs, tp_error *err);

/* Runs the requests through the scheduler with the model's budget. */
tp_status tp_enc_run_model(tp_model *m, tp_pool *pool, const tp_enc_request *reqs, size_t n,
                           bool want_cls, tp_enc_emit_fn emit, void *ctx, tp_error *err);

/* Checks the model is loaded and of the task the pipeline needs. */
tp_status tp_enc_check_model(const tp_model *m, tp_model_task task, const char *pipeline,
                             tp_error *err);

/* Softmax of n logits into p (max-subtracted, accumulated in double). */
void tp_enc_softmax(const float *x, float *p, size_t n);
/* Logistic sigmoid of n logits into p. */
void tp_enc_sigmoid(const float *x, float *p, size_t n);

#endif /* TP_ENC_COMMON_H */
