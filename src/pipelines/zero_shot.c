/*
 * zero_shot.c — zero-shot classification with an NLI model, as Hugging Face's
 * ZeroShotClassificationPipeline: every (text, hypothesis) pair — hypothesis =
 * the template with "{}" replaced by a label — is tokenized as a sequence pair
 * (truncation only_first: the text is cut, never the hypothesis) and
 * classified. All pairs of a batch call go through the scheduler together.
 *
 * Scores per text from the pairs' logits:
 *   single-label (default, and only when there are >= 2 labels):
 *       softmax over the labels of the entailment logits;
 *   multi-label (asked, or a single label — Hugging Face's rule):
 *       per label, softmax over [contradiction, entailment] -> the entailment part.
 * Labels are then sorted best first (ties keep the caller's label order).
 */
#include "pipelines/enc_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TP_DEFAULT_HYPOTHESIS "This example is {}."

tp_zero_shot_params tp_zero_shot_default_params(void) {
    tp_zero_shot_params p;
    memset(&p, 0, sizeof p);
    p.input = tp_enc_default_input();
    p.hypothesis_template = NULL;
    p.multi_label = false;
    return p;
}

void tp_zero_shot_result_free(tp_zero_shot_result *r) {
    if (!r)
        return;
    for (size_t i = 0; r->labels && i < r->n_labels; i++)
        tp_free(r->labels[i]);
    tp_free(r->labels);
    tp_free(r->scores);
    memset(r, 0, sizeof *r);
}

void tp_zero_shot_result_free_all(tp_zero_shot_result *r, size_t n) {
    for (size_t i = 0; r && i < n; i++)
        tp_zero_shot_result_free(&r[i]);
}

/* The template with its first "{}" replaced by label (malloc'd). */
static char *hypothesis(const char *tmpl, const char *label) {
    const char *at = strstr(tmpl, "{}");
    if (!at)
        return NULL;
    tp_buf b = {0};
    tp_buf_append(&b, tmpl, (size_t)(at - tmpl));
    tp_buf_puts(&b, label);
    tp_buf_puts(&b, at + 2);
    return tp_buf_take(&b);
}

typedef struct zs_ctx {
    size_t L;           /* classes of the NLI model           */
    float *pair_logits; /* (n_pairs, L)                        */
    tp_status *pair_st; /* (n_pairs)                           */
    char **pair_msg;    /* (n_pairs) owned messages or NULL    */
} zs_ctx;

static bool zs_emit(void *vctx, size_t p, tp_status st, const char *msg, const float *mlm,
                    const float *cls) {
    (void)mlm;
    zs_ctx *c = vctx;
    c->pair_st[p] = st;
    if (st != TP_OK) {
        c->pair_msg[p] = tp_strdup(msg ? msg : "failed");
        return c->pair_msg[p] != NULL;
    }
    memcpy(c->pair_logits + p * c->L, cls, c->L * sizeof *cls);
    return true;
}

static tp_status zero_shot_run(tp_model *m, const char *const *texts, size_t n,
                               const char *const *const *labels, const size_t *n_labels,
                               const tp_zero_shot_params *params, tp_zero_shot_result *out,
                               tp_error *err) {
    tp_status s = tp_enc_batch_begin(m, TP_TASK_TEXT_CLASSIFICATION, "zero-shot",
                                     n && (!texts || !out || !labels || !n_labels)
                                         ? "zero-shot: NULL texts, labels or results"
                                         : NULL,
                                     out, n, sizeof *out, err);
    if (s != TP_OK || n == 0)
        return s;
    tp_zero_shot_params p = params ? *params : tp_zero_shot_default_params();
    const char *tmpl = p.hypothesis_template ? p.hypothesis_template : TP_DEFAULT_HYPOTHESIS;
    if (!strstr(tmpl, "{}"))
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT,
                       "zero-shot: hypothesis template \"%s\" has no \"{}\" for the label", tmpl);
    tp_enc_input in;
    if ((s = tp_enc_input_resolve(m, &p.input, &in, err)) != TP_OK)
        return s;
    if (m->entail_id < 0)
        return tp_fail(err, TP_ERR_UNSUPPORTED,
                       "zero-shot: %s/config.json label2id has no label starting with \"entail\" "
                       "(not an NLI model?)",
                       m->dir);
    const size_t L = m->num_labels;
    if (L < 2)
        return tp_fail(err, TP_ERR_UNSUPPORTED,
                       "zero-shot: the model has %zu class(es); an NLI model needs at least 2", L);

    /* Flatten the (text, hypothesis) pairs. */
    size_t n_pairs = 0;
    for (size_t i = 0; i < n; i++) {
        if (n_labels[i] > 0 && !labels[i])
            return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "zero-shot: labels of item %zu are NULL",
                           i);
        if (!tp_add_size(n_pairs, n_labels[i], &n_pairs))
            return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "zero-shot: too many labels");
    }
    tp_pool *pool = tp_model_lock(m);
    size_t *first = tp_malloc_array(n + 1, sizeof *first);
    const char **ptext = tp_malloc_array(n_pairs ? n_pairs : 1, sizeof *ptext);
    char **phyp = tp_calloc(n_pairs ? n_pairs : 1, sizeof *phyp);
    tp_encoding *encs = tp_malloc_array(n_pairs ? n_pairs : 1, sizeof *encs);
    tp_enc_request *reqs = tp_calloc(n_pairs ? n_pairs : 1, sizeof *reqs);
    zs_ctx c = {.L = L};
    c.pair_logits = tp_malloc_array(n_pairs ? n_pairs : 1, L * sizeof(float));
    c.pair_st = tp_calloc(n_pairs ? n_pairs : 1, sizeof *c.pair_st);
    c.pair_msg = tp_calloc(n_pairs ? n_pairs : 1, sizeof *c.pair_msg);
    float *sc = tp_malloc_array(n_pairs ? n_pairs : 1, sizeof *sc);
    bool encs_ok = false;
    if (!first || !ptext || !phyp || !encs || !reqs || !c.pair_logits || !c.pair_st ||
        !c.pair_msg || !sc) {
        s = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "zero-shot: out of memory for %zu pairs", n_pairs);
        goto done;
    }
    size_t q = 0;
    for (size_t i = 0; i < n; i++) {
        first[i] = q;
        out[i].error.item = -1;
        for (size_t j = 0; j < n_labels[i]; j++, q++) {
            ptext[q] = texts[i];
            /* a NULL label gives a NULL hypothesis: the pair fails as an item error */
            phyp[q] = labels[i][j] ? hypothesis(tmpl, labels[i][j]) : NULL;
            if (labels[i][j] && !phyp[q]) {
                s = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "zero-shot: out of memory");
                goto done;
            }
        }
    }
    first[n] = q;
    if ((s = tp_enc_tokenize(m, pool, ptext, (const char *const *)phyp, n_pairs, &in,
                             TP_TRUNC_ONLY_FIRST, encs, err)) != TP_OK)
        goto done;
    encs_ok = true;
    for (size_t k = 0; k < n_pairs; k++) {
        if (encs[k].status == TP_OK) {
            reqs[k].ids = encs[k].ids;
            reqs[k].n = encs[k].n;
        }
    }
    if ((s = tp_enc_run_model(m, pool, reqs, n_pairs, true, zs_emit, &c, err)) != TP_OK)
        goto done;

    /* Per text: the first failing pair fails the item; else score and sort. */
    for (size_t i = 0; i < n; i++) {
        tp_zero_shot_result *r = &out[i];
        size_t nl = n_labels[i], f = first[i];
        if (!texts[i]) {
            tp_enc_item_error(&r->error, (long)i, TP_ERR_INPUT, "the text is NULL");
            continue;
        }
        if (nl == 0) {
            tp_enc_item_error(&r->error, (long)i, TP_ERR_INPUT, "no candidate labels");
            continue;
        }
        bool failed = false;
        for (size_t j = 0; j < nl && !failed; j++) {
            const tp_encoding *e = &encs[f + j];
            const char *lab = labels[i][j] ? labels[i][j] : "(NULL)";
            if (!labels[i][j]) {
                tp_enc_item_error(&r->error, (long)i, TP_ERR_INPUT, "label %zu is NULL", j);
                failed = true;
            } else if (e->status != TP_OK) {
                tp_enc_item_error(&r->error, (long)i, e->status, "label \"%s\": %s", lab,
                                  e->error ? e->error : "tokenization failed");
                failed = true;
            } else if (c.pair_st[f + j] != TP_OK) {
                tp_enc_item_error(&r->error, (long)i, c.pair_st[f + j], "label \"%s\": %s", lab,
                                  c.pair_msg[f + j]);
                failed = true;
            }
            if (e->truncated)
                r->truncated = true;
        }
        if (failed) {
            r->truncated = false;
            continue;
        }
        const float *lg = c.pair_logits + f * L;
        float *score = sc + f;
        if (p.multi_label || nl == 1) {
            for (size_t j = 0; j < nl; j++) {
                float two[2] = {lg[j * L + (size_t)m->contra_id], lg[j * L + (size_t)m->entail_id]};
                float pr[2];
                tp_enc_softmax(two, pr, 2);
                score[j] = pr[1];
            }
        } else {
            float *ent = tp_malloc_array(nl, sizeof *ent);
            if (!ent) {
                s = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "zero-shot: out of memory");
                goto done;
            }
            for (size_t j = 0; j < nl; j++)
                ent[j] = lg[j * L + (size_t)m->entail_id];
            tp_enc_softmax(ent, score, nl);
            tp_free(ent);
        }
        r->labels = tp_calloc(nl, sizeof *r->labels);
        r->scores = tp_malloc_array(nl, sizeof *r->scores);
        size_t *ord = tp_malloc_array(nl, sizeof *ord);
        if (!r->labels || !r->scores || !ord) {
            tp_free(ord);
            s = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "zero-shot: out of memory");
            goto done;
        }
        r->n_labels = nl;
        for (size_t j = 0; j < nl; j++) { /* stable insertion sort, best first */
            size_t at = j;
            while (at > 0 && score[j] > score[ord[at - 1]]) {
                ord[at] = ord[at - 1];
                at--;
            }
            ord[at] = j;
        }
        for (size_t j = 0; j < nl; j++) {
            r->scores[j] = score[ord[j]];
            r->labels[j] = tp_strdup(labels[i][ord[j]]);
            if (!r->labels[j]) {
                tp_free(ord);
                s = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "zero-shot: out of memory");
                goto done;
            }
        }
        tp_free(ord);
    }
done:
    tp_model_unlock(m);
    if (s != TP_OK) {
        tp_zero_shot_result_free_all(out, n);
        tp_batch_fail_all(out, n, sizeof *out, s, err);
    }
    for (size_t k = 0; k < n_pairs; k++) {
        if (encs_ok)
            tp_encoding_free(&encs[k]);
        if (phyp)
            tp_free(phyp[k]);
        if (c.pair_msg)
            tp_free(c.pair_msg[k]);
    }
    tp_free(first);
    tp_free(ptext);
    tp_free(phyp);
    tp_free(encs);
    tp_free(reqs);
    tp_free(c.pair_logits);
    tp_free(c.pair_st);
    tp_free(c.pair_msg);
    tp_free(sc);
    return s;
}

tp_status tp_zero_shot_predict(tp_model *model, const char *text, const char *const *labels,
                               size_t n_labels, const tp_zero_shot_params *params,
                               tp_zero_shot_result *out, tp_error *err) {
    if (!out)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "zero-shot: NULL output");
    memset(out, 0, sizeof *out);
    if (!text || (n_labels && !labels))
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "zero-shot: NULL text or labels");
    if (n_labels == 0)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "zero-shot: no candidate labels");
    tp_status s = zero_shot_run(model, &text, 1, &labels, &n_labels, params, out, err);
    if (s != TP_OK || (s = tp_enc_single_status(&out->error, err)) == TP_OK)
        return s;
    tp_error keep = out->error;
    tp_zero_shot_result_free(out);
    out->error = keep;
    return s;
}

tp_status tp_zero_shot_predict_batch(tp_model *model, const char *const *texts, size_t n,
                                     const char *const *labels, size_t n_labels,
                                     const tp_zero_shot_params *params, tp_zero_shot_result *out,
                                     tp_error *err) {
    if (n && (n_labels == 0 || !labels))
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "zero-shot: no candidate labels");
    const char *const **per = tp_malloc_array(n ? n : 1, sizeof *per);
    size_t *cnt = tp_malloc_array(n ? n : 1, sizeof *cnt);
    if (!per || !cnt) {
        tp_free(per);
        tp_free(cnt);
        tp_status s = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "zero-shot: out of memory");
        if (n && out)
            tp_batch_fail_all(out, n, sizeof *out, s, err);
        return s;
    }
    for (size_t i = 0; i < n; i++) {
        per[i] = labels;
        cnt[i] = n_labels;
    }
    tp_status s = zero_shot_run(model, texts, n, per, cnt, params, out, err);
    tp_free(per);
    tp_free(cnt);
    return s;
}

tp_status tp_zero_shot_predict_batch_labels(tp_model *model, const char *const *texts, size_t n,
                                            const char *const *const *labels,
                                            const size_t *n_labels,
                                            const tp_zero_shot_params *params,
                                            tp_zero_shot_result *out, tp_error *err) {
    return zero_shot_run(model, texts, n, labels, n_labels, params, out, err);
}
