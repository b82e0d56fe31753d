/*
 * enc_common.c — helpers shared by fill_mask.c, sentiment.c and zero_shot.c.
 */
#include "pipelines/enc_common.h"

#include <math.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tp_enc_item_error(tp_error *e, long item, tp_status st, const char *fmt, ...) {
    e->status = st;
    e->item = item;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

_Static_assert(offsetof(tp_fill_mask_result, error) == 0 &&
                   offsetof(tp_sentiment_result, error) == 0 &&
                   offsetof(tp_zero_shot_result, error) == 0,
               "tp_batch_fail_all needs the error first");

void tp_batch_fail_all(void *out, size_t n, size_t size, tp_status st, const tp_error *err) {
    for (size_t i = 0; out && i < n; i++) {
        char *r = (char *)out + i * size;
        memset(r, 0, size);
        tp_enc_item_error((tp_error *)r, (long)i, st, "the batch failed (%s)%s%s",
                          tp_status_name(st), err && err->message[0] ? ": " : "",
                          err ? err->message : "");
    }
}

tp_encoder_input_params tp_enc_default_input(void) {
    tp_encoder_input_params p;
    memset(&p, 0, sizeof p);
    p.truncation = true;
    p.max_length = 0;
    return p;
}

tp_status tp_enc_batch_begin(const tp_model *m, tp_model_task task, const char *pipeline,
                             const char *bad_args, void *out, size_t n, size_t result_size,
                             tp_error *err) {
    tp_status s = tp_enc_check_model(m, task, pipeline, err);
    if (s != TP_OK)
        return s;
    if (bad_args)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "%s", bad_args);
    if (n)
        memset(out, 0, n * result_size);
    return TP_OK;
}

bool tp_enc_item_encoded(const tp_encoding *enc, size_t i, tp_error *e, bool *truncated) {
    e->item = -1;
    if (enc->status != TP_OK) {
        tp_enc_item_error(e, (long)i, enc->status, "%s",
                          enc->error ? enc->error : "tokenization failed");
        return false;
    }
    *truncated = enc->truncated;
    return true;
}

tp_status tp_enc_single_status(const tp_error *item, tp_error *err) {
    if (item->status != TP_OK && err) {
        *err = *item;
        err->item = -1;
    }
    return item->status;
}

tp_status tp_enc_check_model(const tp_model *m, tp_model_task task, const char *pipeline,
                             tp_error *err) {
    if (!m)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "%s: model is NULL", pipeline);
    if (m->task != task || !m->net || m->net->kind != TP_NET_ENCODER)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT,
                       "%s: the model in %s is not a %s model (architecture: %s)", pipeline, m->dir,
                       task == TP_TASK_FILL_MASK ? "masked-LM (fill-mask)"
                                                 : "sequence-classification",
                       m->task == TP_TASK_FILL_MASK             ? "masked LM"
                       : m->task == TP_TASK_TEXT_CLASSIFICATION ? "sequence classification"
                       : m->task == TP_TASK_TEXT_GENERATION     ? "causal LM"
                                                                : "no head");
    return TP_OK;
}

tp_status tp_enc_tokenize(tp_model *m, tp_pool *pool, const char *const *texts,
                          const char *const *text_pairs, size_t n, const tp_enc_input *in,
                          tp_trunc_strategy strategy, tp_encoding *encs, tp_error *err) {
    memset(encs, 0, n * sizeof *encs);
    if (n == 0)
        return TP_OK;
    /* NULL items are item errors; the tokenizer sees "" in their place. */
    const char **t = tp_malloc_array(n, sizeof *t);
    const char **pairs = text_pairs ? tp_malloc_array(n, sizeof *pairs) : NULL;
    if (!t || (text_pairs && !pairs)) {
        tp_free(t);
        tp_free(pairs);
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory for %zu texts", n);
    }
    for (size_t i = 0; i < n; i++) {
        t[i] = texts[i] ? texts[i] : "";
        if (pairs)
            pairs[i] = text_pairs[i] ? text_pairs[i] : "";
    }
    tp_tok_encode_params tp = tp_tok_encode_default_params();
    tp.add_special_tokens = true;
    tp.max_length = in->max_length;
    tp.strategy = strategy;
    tp.error_if_truncated = !in->truncation;
    tp_status s = tp_tok_encode_batch(m->tok, pool, t, pairs, n, &tp, encs, err);
    tp_free(t);
    tp_free(pairs);
    if (s != TP_OK)
        return s;
    const int32_t V = (int32_t)m->net->vocab_size;
    for (size_t i = 0; i < n; i++) {
        tp_encoding *e = &encs[i];
        if (!texts[i] || (text_pairs && !text_pairs[i])) {
            tp_encoding_free(e);
            memset(e, 0, sizeof *e);
            e->status = TP_ERR_INPUT;
            e->error = tp_strdup("the text is NULL");
            continue;
        }
        if (e->status != TP_OK)
            continue;
        if (e->n == 0) {
            tp_encoding_free(e);
            memset(e, 0, sizeof *e);
            e->status = TP_ERR_INPUT;
            e->error = tp_strdup("the text gives no tokens");
            continue;
        }
        for (size_t j = 0; j < e->n; j++) {
            if (e->ids[j] < 0 || e->ids[j] >= V) {
                char msg[160];
                snprintf(msg, sizeof msg,
                         "token id %d at position %zu is outside the model's vocabulary (%d)",
                         (int)e->ids[j], j, (int)V);
                tp_encoding_free(e);
                memset(e, 0, sizeof *e);
                e->status = TP_ERR_INPUT;
                e->error = tp_strdup(msg);
                break;
            }
        }
    }
    return TP_OK;
}

tp_status tp_enc_run_model(tp_model *m, tp_pool *pool, const tp_enc_request *reqs, size_t n,
                           bool want_cls, tp_enc_emit_fn emit, void *ctx, tp_error *err) {
    tp_enc_run_params rp = {
        .max_tokens = m->max_batch_tokens,
        .budget = m->memory_budget,
        .want_cls = want_cls,
    };
    return tp_enc_run(m->net, pool, reqs, n, &rp, emit, ctx, err);
}

void tp_enc_softmax(const float *x, float *p, size_t n) {
    float mx = x[0];
    for (size_t i = 1; i < n; i++)
        if (x[i] > mx)
            mx = x[i];
    /* one exp per element (a vocabulary row is 50k of them): e_i kept in p as
     * float, summed in double, then scaled in double and rounded once more */
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        p[i] = (float)exp((double)x[i] - (double)mx);
        sum += p[i];
    }
    const double inv = 1.0 / sum;
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((double)p[i] * inv);
}

void tp_enc_sigmoid(const float *x, float *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(1.0 / (1.0 + exp(-(double)x[i])));
}
