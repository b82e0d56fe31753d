/*
 * sentiment.c — text classification, as Hugging Face's
 * TextClassificationPipeline: tokenize with special tokens, run the classifier
 * on the pooled row of each text, then apply the score function once —
 * sigmoid when config problem_type is "multi_label_classification" or there is
 * a single label, softmax otherwise (or as the caller forces) — and order the
 * labels best first (a stable sort: ties keep label order, as Python's sort).
 */
#include "pipelines/enc_common.h"

#include <stdlib.h>
#include <string.h>

tp_sentiment_params tp_sentiment_default_params(void) {
    tp_sentiment_params p;
    memset(&p, 0, sizeof p);
    p.input = tp_enc_default_input();
    p.function = TP_SCORE_AUTO;
    return p;
}

void tp_sentiment_result_free(tp_sentiment_result *r) {
    if (!r)
        return;
    for (size_t i = 0; r->scores && i < r->n_scores; i++)
        tp_free(r->scores[i].label);
    tp_free(r->scores);
    memset(r, 0, sizeof *r);
}

void tp_sentiment_result_free_all(tp_sentiment_result *r, size_t n) {
    for (size_t i = 0; r && i < n; i++)
        tp_sentiment_result_free(&r[i]);
}

typedef struct sc_ctx {
    tp_model *m;
    tp_sentiment_result *out;
    tp_score_function fn; /* resolved: never AUTO */
    bool all;
    float *scores;  /* (L) */
    int32_t *order; /* (L) */
} sc_ctx;

static bool sc_emit(void *vctx, size_t i, tp_status st, const char *msg, const float *mlm,
                    const float *cls) {
    (void)mlm;
    sc_ctx *c = vctx;
    tp_sentiment_result *r = &c->out[i];
    if (st != TP_OK) {
        tp_enc_item_error(&r->error, (long)i, st, "%s", msg);
        return true;
    }
    const size_t L = c->m->num_labels;
    switch (c->fn) {
    case TP_SCORE_SIGMOID:
        tp_enc_sigmoid(cls, c->scores, L);
        break;
    case TP_SCORE_SOFTMAX:
        tp_enc_softmax(cls, c->scores, L);
        break;
    default:
        memcpy(c->scores, cls, L * sizeof *cls);
        break;
    }
    /* stable insertion sort, best first */
    for (size_t j = 0; j < L; j++) {
        size_t at = j;
        while (at > 0 && c->scores[j] > c->scores[c->order[at - 1]]) {
            c->order[at] = c->order[at - 1];
            at--;
        }
        c->order[at] = (int32_t)j;
    }
    size_t n_out = c->all ? L : 1;
    r->scores = tp_calloc(n_out, sizeof *r->scores);
    if (!r->scores)
        return false;
    r->n_scores = n_out;
    for (size_t j = 0; j < n_out; j++) {
        int32_t id = c->order[j];
        r->scores[j].id = id;
        r->scores[j].score = c->scores[id];
        r->scores[j].label = tp_strdup(c->m->id2label[id]);
        if (!r->scores[j].label)
            return false;
    }
    return true;
}

static tp_status sentiment_run(tp_model *m, const char *const *texts, size_t n, bool all,
                               const tp_sentiment_params *params, tp_sentiment_result *out,
                               tp_error *err) {
    tp_status s =
        tp_enc_batch_begin(m, TP_TASK_TEXT_CLASSIFICATION, "sentiment",
                           n && (!texts || !out) ? "sentiment: NULL texts or results" : NULL, out,
                           n, sizeof *out, err);
    if (s != TP_OK || n == 0)
        return s;
    tp_sentiment_params p = params ? *params : tp_sentiment_default_params();
    tp_enc_input in;
    if ((s = tp_enc_input_resolve(m, &p.input, &in, err)) != TP_OK)
        return s;
    sc_ctx c = {.m = m, .out = out, .all = all, .fn = p.function};
    if (c.fn == TP_SCORE_AUTO)
        c.fn = m->multi_label_config || m->num_labels == 1 ? TP_SCORE_SIGMOID : TP_SCORE_SOFTMAX;
    else if (c.fn != TP_SCORE_SOFTMAX && c.fn != TP_SCORE_SIGMOID && c.fn != TP_SCORE_NONE)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "sentiment: unknown score function %d",
                       (int)c.fn);

    tp_pool *pool = tp_model_lock(m);
    tp_encoding *encs = tp_malloc_array(n, sizeof *encs);
    tp_enc_request *reqs = tp_calloc(n, sizeof *reqs);
    c.scores = tp_malloc_array(m->num_labels, sizeof *c.scores);
    c.order = tp_malloc_array(m->num_labels, sizeof *c.order);
    if (!encs || !reqs || !c.scores || !c.order) {
        s = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "sentiment: out of memory for %zu texts", n);
        tp_free(encs);
        encs = NULL;
        goto done;
    }
    if ((s = tp_enc_tokenize(m, pool, texts, NULL, n, &in, TP_TRUNC_LONGEST_FIRST, encs, err)) !=
        TP_OK) {
        tp_free(encs);
        encs = NULL;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (!tp_enc_item_encoded(&encs[i], i, &out[i].error, &out[i].truncated))
            continue;
        reqs[i].ids = encs[i].ids;
        reqs[i].n = encs[i].n;
    }
    s = tp_enc_run_model(m, pool, reqs, n, true, sc_emit, &c, err);
done:
    tp_model_unlock(m);
    if (s != TP_OK && out) {
        tp_sentiment_result_free_all(out, n);
        tp_batch_fail_all(out, n, sizeof *out, s, err);
    }
    for (size_t i = 0; encs && i < n; i++)
        tp_encoding_free(&encs[i]);
    tp_free(encs);
    tp_free(reqs);
    tp_free(c.scores);
    tp_free(c.order);
    return s;
}

static tp_status single(tp_model *model, const char *text, bool all,
                        const tp_sentiment_params *params, tp_sentiment_result *out,
                        tp_error *err) {
    if (!out)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "sentiment: NULL output");
    memset(out, 0, sizeof *out);
    if (!text)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "sentiment: NULL text");
    tp_status s = sentiment_run(model, &text, 1, all, params, out, err);
    if (s != TP_OK || (s = tp_enc_single_status(&out->error, err)) == TP_OK)
        return s;
    tp_error keep = out->error;
    tp_sentiment_result_free(out);
    out->error = keep;
    return s;
}

tp_status tp_sentiment_predict(tp_model *model, const char *text, const tp_sentiment_params *params,
                               char **label, tp_error *err) {
    if (!label)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "sentiment: NULL output");
    *label = NULL;
    tp_sentiment_result r;
    tp_status s = single(model, text, false, params, &r, err);
    if (s == TP_OK) {
        *label = r.scores[0].label;
        r.scores[0].label = NULL;
    }
    tp_sentiment_result_free(&r);
    return s;
}

tp_status tp_sentiment_predict_with_score(tp_model *model, const char *text,
                                          const tp_sentiment_params *params,
                                          tp_sentiment_result *out, tp_error *err) {
    return single(model, text, false, params, out, err);
}

tp_status tp_sentiment_predict_all_scores(tp_model *model, const char *text,
                                          const tp_sentiment_params *params,
                                          tp_sentiment_result *out, tp_error *err) {
    return single(model, text, true, params, out, err);
}

tp_status tp_sentiment_predict_batch(tp_model *model, const char *const *texts, size_t n,
                                     const tp_sentiment_params *params, tp_sentiment_result *out,
                                     tp_error *err) {
    return sentiment_run(model, texts, n, false, params, out, err);
}

tp_status tp_sentiment_predict_with_score_batch(tp_model *model, const char *const *texts, size_t n,
                                                const tp_sentiment_params *params,
                                                tp_sentiment_result *out, tp_error *err) {
    return sentiment_run(model, texts, n, false, params, out, err);
}

tp_status tp_sentiment_predict_all_scores_batch(tp_model *model, const char *const *texts, size_t n,
                                                const tp_sentiment_params *params,
                                                tp_sentiment_result *out, tp_error *err) {
    return sentiment_run(model, texts, n, true, params, out, err);
}
