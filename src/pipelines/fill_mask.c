/*
 * fill_mask.c — the fill-mask pipeline, as Hugging Face's FillMaskPipeline:
 * tokenize with special tokens, find the mask positions, take the MLM logits
 * there only (the vocabulary projection runs on those rows alone), softmax over
 * the vocabulary, top-k per mask, and for each prediction the input ids with
 * that mask replaced, decoded (special tokens skipped when the text has one
 * mask, kept when it has several, so the other masks stay visible).
 *
 * Single calls are batch calls of one item, so a text gives the same bits
 * alone or in any batch.
 */
#include "pipelines/enc_common.h"

#include <stdlib.h>
#include <string.h>

tp_fill_mask_params tp_fill_mask_default_params(void) {
    tp_fill_mask_params p;
    memset(&p, 0, sizeof p);
    p.input = tp_enc_default_input();
    return p;
}

void tp_fill_mask_result_free(tp_fill_mask_result *r) {
    if (!r)
        return;
    if (r->predictions) {
        for (size_t i = 0; i < r->n_masks * r->k; i++) {
            tp_free(r->predictions[i].token_str);
            tp_free(r->predictions[i].sequence);
        }
        tp_free(r->predictions);
    }
    tp_free(r->filled);
    memset(r, 0, sizeof *r);
}

void tp_fill_mask_result_free_all(tp_fill_mask_result *r, size_t n) {
    for (size_t i = 0; r && i < n; i++)
        tp_fill_mask_result_free(&r[i]);
}

typedef struct scored {
    float p;
    int32_t id;
} scored;

typedef struct fm_ctx {
    tp_model *m;
    tp_encoding *encs;
    int32_t **mask_pos; /* (n) positions of the mask tokens in each item */
    tp_fill_mask_result *out;
    size_t k;
    bool want_filled;
    float *probs;  /* (V) softmax of one row        */
    scored *order; /* (V) sort scratch for large k  */
    int32_t *ids;  /* (max n) ids scratch           */
} fm_ctx;

static bool better(const float *p, int32_t a, int32_t b) {
    return p[a] > p[b] || (p[a] == p[b] && a < b);
}

static int cmp_desc(const void *x, const void *y) {
    const scored *a = x, *b = y;
    if (a->p != b->p)
        return a->p > b->p ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* The k best ids of p (V) into top, best first (ties: lower id first). */
static void top_k(const float *p, size_t V, size_t k, int32_t *top, scored *order) {
    if (k > 64) {
        for (size_t j = 0; j < V; j++) {
            order[j].p = p[j];
            order[j].id = (int32_t)j;
        }
        qsort(order, V, sizeof *order, cmp_desc);
        for (size_t j = 0; j < k; j++)
            top[j] = order[j].id;
        return;
    }
    size_t cnt = 0;
    for (size_t j = 0; j < V; j++) {
        int32_t id = (int32_t)j;
        if (cnt == k && !better(p, id, top[cnt - 1]))
            continue;
        size_t at = cnt < k ? cnt++ : k - 1;
        while (at > 0 && better(p, id, top[at - 1])) {
            top[at] = top[at - 1];
            at--;
        }
        top[at] = id;
    }
}

static bool decode(const tp_model *m, const int32_t *ids, size_t n, bool skip_special, char **out,
                   tp_error *e) {
    tp_tok_decode_params dp = tp_tok_decode_default_params();
    dp.skip_special_tokens = skip_special;
    return tp_tok_decode(m->tok, ids, n, &dp, out, NULL, e) == TP_OK;
}

static bool fm_emit(void *vctx, size_t i, tp_status st, const char *msg, const float *mlm,
                    const float *cls) {
    (void)cls;
    fm_ctx *c = vctx;
    tp_fill_mask_result *r = &c->out[i];
    if (st != TP_OK) {
        tp_enc_item_error(&r->error, (long)i, st, "%s", msg);
        return true;
    }
    const tp_encoding *e = &c->encs[i];
    const size_t V = (size_t)c->m->net->vocab_size, k = c->k;
    const size_t n_masks = r->n_masks;
    r->predictions = tp_calloc(n_masks * k, sizeof *r->predictions);
    int32_t *top = tp_malloc_array(k, sizeof *top);
    int32_t *best = tp_malloc_array(n_masks, sizeof *best);
    if (!r->predictions || !top || !best) {
        tp_free(top);
        tp_free(best);
        return false;
    }
    tp_error de;
    tp_error_clear(&de);
    bool ok = true;
    for (size_t mi = 0; mi < n_masks && ok; mi++) {
        tp_enc_softmax(mlm + mi * V, c->probs, V);
        top_k(c->probs, V, k, top, c->order);
        best[mi] = top[0];
        for (size_t j = 0; j < k && ok; j++) {
            tp_fill_mask_prediction *p = &r->predictions[mi * k + j];
            p->token = top[j];
            p->score = c->probs[top[j]];
            memcpy(c->ids, e->ids, e->n * sizeof *c->ids);
            c->ids[c->mask_pos[i][mi]] = top[j];
            ok = decode(c->m, &top[j], 1, false, &p->token_str, &de) &&
                 decode(c->m, c->ids, e->n, n_masks == 1, &p->sequence, &de);
        }
    }
    if (ok && c->want_filled) {
        memcpy(c->ids, e->ids, e->n * sizeof *c->ids);
        for (size_t mi = 0; mi < n_masks; mi++)
            c->ids[c->mask_pos[i][mi]] = best[mi];
        ok = decode(c->m, c->ids, e->n, true, &r->filled, &de);
    }
    tp_free(top);
    tp_free(best);
    if (!ok) {
        if (de.status == TP_ERR_OUT_OF_MEMORY)
            return false;
        tp_fill_mask_result_free(r);
        tp_enc_item_error(&r->error, (long)i, de.status, "decoding the prediction: %s", de.message);
    }
    return true;
}

static tp_status fill_mask_run(tp_model *m, const char *const *texts, size_t n, size_t k,
                               bool want_filled, const tp_fill_mask_params *params,
                               tp_fill_mask_result *out, tp_error *err) {
    tp_status s = tp_enc_batch_begin(m, TP_TASK_FILL_MASK, "fill-mask",
                                     k == 0                  ? "fill-mask: top_k must be at least 1"
                                     : n && (!texts || !out) ? "fill-mask: NULL texts or results"
                                                             : NULL,
                                     out, n, sizeof *out, err);
    if (s != TP_OK || n == 0)
        return s;
    tp_fill_mask_params defaults = tp_fill_mask_default_params();
    tp_enc_input in;
    if ((s = tp_enc_input_resolve(m, &(params ? params : &defaults)->input, &in, err)) != TP_OK)
        return s;
    if (m->mask_id < 0)
        return tp_fail(err, TP_ERR_UNSUPPORTED, "fill-mask: the tokenizer of %s has no mask token",
                       m->dir);
    const size_t V = (size_t)m->net->vocab_size;
    if (k > V)
        k = V;

    tp_pool *pool = tp_model_lock(m);
    tp_encoding *encs = tp_malloc_array(n, sizeof *encs);
    int32_t **mask_pos = tp_calloc(n, sizeof *mask_pos);
    tp_enc_request *reqs = tp_calloc(n, sizeof *reqs);
    fm_ctx c = {
        .m = m, .encs = encs, .mask_pos = mask_pos, .out = out, .k = k, .want_filled = want_filled};
    c.probs = tp_malloc_array(V, sizeof *c.probs);
    c.order = tp_malloc_array(V, sizeof *c.order);
    if (!encs || !mask_pos || !reqs || !c.probs || !c.order) {
        s = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "fill-mask: out of memory for %zu texts", n);
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
    size_t max_n = 1;
    const char *mask_text = tp_tok_get_info(m->tok)->mask.text;
    for (size_t i = 0; i < n; i++) {
        tp_encoding *e = &encs[i];
        if (!tp_enc_item_encoded(e, i, &out[i].error, &out[i].truncated))
            continue;
        size_t cnt = 0;
        for (size_t j = 0; j < e->n; j++)
            cnt += e->ids[j] == m->mask_id;
        if (cnt == 0) {
            if (e->truncated)
                tp_enc_item_error(&out[i].error, (long)i, TP_ERR_INPUT,
                                  "no %s token left after truncation to %zu tokens",
                                  mask_text ? mask_text : "mask", in.max_length);
            else
                tp_enc_item_error(&out[i].error, (long)i, TP_ERR_INPUT, "no %s token in input",
                                  mask_text ? mask_text : "mask");
            continue;
        }
        mask_pos[i] = tp_malloc_array(cnt, sizeof(int32_t));
        if (!mask_pos[i]) {
            s = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "fill-mask: out of memory");
            goto done;
        }
        cnt = 0;
        for (size_t j = 0; j < e->n; j++)
            if (e->ids[j] == m->mask_id)
                mask_pos[i][cnt++] = (int32_t)j;
        out[i].n_masks = cnt;
        out[i].k = k;
        reqs[i].ids = e->ids;
        reqs[i].n = e->n;
        reqs[i].mlm_pos = mask_pos[i];
        reqs[i].n_mlm = cnt;
        if (e->n > max_n)
            max_n = e->n;
    }
    c.ids = tp_malloc_array(max_n, sizeof *c.ids);
    if (!c.ids) {
        s = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "fill-mask: out of memory");
        goto done;
    }
    s = tp_enc_run_model(m, pool, reqs, n, false, fm_emit, &c, err);
done:
    tp_model_unlock(m);
    if (s != TP_OK && out) {
        tp_fill_mask_result_free_all(out, n);
        tp_batch_fail_all(out, n, sizeof *out, s, err);
    }
    for (size_t i = 0; encs && i < n; i++)
        tp_encoding_free(&encs[i]);
    for (size_t i = 0; mask_pos && i < n; i++)
        tp_free(mask_pos[i]);
    tp_free(encs);
    tp_free(mask_pos);
    tp_free(reqs);
    tp_free(c.probs);
    tp_free(c.order);
    tp_free(c.ids);
    return s;
}

tp_status tp_fill_mask_predict(tp_model *model, const char *text, const tp_fill_mask_params *params,
                               char **filled, tp_error *err) {
    if (!filled)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "fill-mask: NULL output");
    *filled = NULL;
    if (!text)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "fill-mask: NULL text");
    tp_fill_mask_result r;
    tp_status s = fill_mask_run(model, &text, 1, 1, true, params, &r, err);
    if (s != TP_OK)
        return s;
    s = tp_enc_single_status(&r.error, err);
    if (s == TP_OK) {
        *filled = r.filled;
        r.filled = NULL;
    }
    tp_fill_mask_result_free(&r);
    return s;
}

tp_status tp_fill_mask_predict_top_k(tp_model *model, const char *text, size_t k,
                                     const tp_fill_mask_params *params, tp_fill_mask_result *out,
                                     tp_error *err) {
    if (!out)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "fill-mask: NULL output");
    memset(out, 0, sizeof *out);
    if (!text)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "fill-mask: NULL text");
    tp_status s = fill_mask_run(model, &text, 1, k, false, params, out, err);
    if (s != TP_OK)
        return s;
    s = tp_enc_single_status(&out->error, err);
    if (s != TP_OK) {
        tp_error keep = out->error;
        tp_fill_mask_result_free(out);
        out->error = keep;
    }
    return s;
}

tp_status tp_fill_mask_predict_batch(tp_model *model, const char *const *texts, size_t n,
                                     const tp_fill_mask_params *params, tp_fill_mask_result *out,
                                     tp_error *err) {
    return fill_mask_run(model, texts, n, 1, true, params, out, err);
}

tp_status tp_fill_mask_predict_top_k_batch(tp_model *model, const char *const *texts, size_t n,
                                           size_t k, const tp_fill_mask_params *params,
                                           tp_fill_mask_result *out, tp_error *err) {
    return fill_mask_run(model, texts, n, k, false, params, out, err);
}
