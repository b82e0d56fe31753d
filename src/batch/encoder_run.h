/*
 * encoder_run.h — runs many encoder requests through the scheduler (internal).
 *
 * The pipelines turn their inputs into requests (token ids + the positions
 * whose vocabulary logits they need); tp_enc_run plans micro-batches under the
 * memory budget, packs each one (no padding), runs the network and hands every
 * item its own logits through a callback. Memory: two arenas sized once from
 * the plan (the network's scratch and the packed inputs/outputs); nothing is
 * allocated per micro-batch or per layer.
 */
#ifndef TP_ENCODER_RUN_H
#define TP_ENCODER_RUN_H

#include "batch/scheduler.h"
#include "models/model.h"

typedef struct tp_enc_request {
    const int32_t *ids; /* (n) token ids; NULL or n == 0: skip (item already failed)   */
    size_t n;
    const int32_t *mlm_pos; /* (n_mlm) positions in [0, n) to project on the vocabulary  */
    size_t n_mlm;
} tp_enc_request;

/* Called once for every item that was not skipped, after its micro-batch ran:
 * st TP_OK with mlm_logits (n_mlm, vocab) and/or cls_logits (num_labels), or
 * the item's own error (st, msg) when it could not run (e.g. over the budget).
 * The pointers are valid only during the call. Returns false to abort the run
 * (out of memory in the callback): tp_enc_run then returns TP_ERR_OUT_OF_MEMORY. */
typedef bool (*tp_enc_emit_fn)(void *ctx, size_t item, tp_status st, const char *msg,
                               const float *mlm_logits, const float *cls_logits);

typedef struct tp_enc_run_params {
    size_t max_tokens; /* tokens per micro-batch (0 = no cap besides the budget)      */
    size_t budget;     /* bytes per micro-batch: network scratch + packed inputs + logits */
    bool want_cls;     /* compute the classifier logits                               */
} tp_enc_run_params;

/* Bytes a micro-batch of this shape costs under tp_enc_run (0 = overflow). */
size_t tp_enc_cost(const tp_net *net, size_t n_tokens, size_t n_seqs, size_t n_rows, bool want_cls);

tp_status tp_enc_run(const tp_net *net, tp_pool *pool, const tp_enc_request *reqs, size_t n,
                     const tp_enc_run_params *params, tp_enc_emit_fn emit, void *ctx,
                     tp_error *err);

#endif /* TP_ENCODER_RUN_H */
