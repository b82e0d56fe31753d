/*
 * test_fill_mask.c — the fill-mask pipeline on a tiny random ModernBERT with
 * the real tokenizer:
 *   - scores, top-k order, token_str and sequence against an independent
 *     computation from the raw network logits at the mask position;
 *   - several masks: one list per mask, sequences keep special tokens;
 *   - batches of 1, 2, 7, 64 (very different lengths, shuffled) bit-identical
 *     to single calls;
 *   - partial failure (no mask, invalid UTF-8, NULL, too long without
 *     truncation) in the middle of a batch; empty batch; truncation flag.
 */
#include "enc_test_util.h"

static bool same_result(const tp_fill_mask_result *a, const tp_fill_mask_result *b) {
    if (a->error.status != b->error.status || a->n_masks != b->n_masks || a->k != b->k ||
        a->truncated != b->truncated)
        return false;
    if (a->error.status != TP_OK)
        return strcmp(a->error.message, b->error.message) == 0;
    if ((a->filled == NULL) != (b->filled == NULL) || (a->filled && strcmp(a->filled, b->filled)))
        return false;
    for (size_t i = 0; i < a->n_masks * a->k; i++) {
        const tp_fill_mask_prediction *x = &a->predictions[i], *y = &b->predictions[i];
        if (x->token != y->token || memcmp(&x->score, &y->score, sizeof(float)) ||
            strcmp(x->token_str, y->token_str) || strcmp(x->sequence, y->sequence))
            return false;
    }
    return true;
}

static char *decode(const tp_model *m, const int32_t *ids, size_t n, bool skip) {
    tp_tok_decode_params dp = tp_tok_decode_default_params();
    dp.skip_special_tokens = skip;
    char *s = NULL;
    tp_error err;
    CHECK(tp_tok_decode(m->tok, ids, n, &dp, &s, NULL, &err) == TP_OK);
    return s;
}

/* Checks one result against the raw logits of the network. */
static void check_math(tp_model *m, const char *text, size_t k) {
    tp_fill_mask_result r;
    tp_error err;
    CHECK(tp_fill_mask_predict_top_k(m, text, k, NULL, &r, &err) == TP_OK);
    tp_encoding e = enc_encode(m, text, NULL);
    int32_t rows[8];
    size_t n_rows = 0;
    for (size_t j = 0; j < e.n && n_rows < 8; j++)
        if (e.ids[j] == m->mask_id)
            rows[n_rows++] = (int32_t)j;
    CHECK_EQ_INT(r.n_masks, n_rows);
    CHECK_EQ_INT(r.k, k);
    size_t V = (size_t)m->net->vocab_size;
    float *logits = enc_raw(m, e.ids, e.n, rows, n_rows);
    double *p = malloc(V * sizeof *p);
    int32_t *ids = malloc(e.n * sizeof *ids);
    for (size_t mi = 0; mi < n_rows && r.n_masks == n_rows; mi++) {
        enc_softmax_d(logits + mi * V, p, V);
        double total = 0.0;
        for (size_t j = 0; j < k; j++) {
            const tp_fill_mask_prediction *pr = &r.predictions[mi * k + j];
            total += pr->score;
            CHECK_MSG(fabs(pr->score - p[pr->token]) <= 1e-6 * p[pr->token] + 1e-9,
                      "score %.9g vs softmax %.9g", pr->score, p[pr->token]);
            /* order: best first, and nothing outside the list beats the k-th */
            if (j)
                CHECK(r.predictions[mi * k + j - 1].score >= pr->score);
            char *ts = decode(m, &pr->token, 1, false);
            CHECK_STR(pr->token_str, ts);
            free(ts);
            memcpy(ids, e.ids, e.n * sizeof *ids);
            ids[rows[mi]] = pr->token;
            char *seq = decode(m, ids, e.n, n_rows == 1);
            CHECK_STR(pr->sequence, seq);
            free(seq);
        }
        double kth = p[r.predictions[mi * k + k - 1].token];
        size_t better = 0;
        for (size_t v = 0; v < V; v++)
            better += p[v] > kth * (1 + 1e-6);
        CHECK_MSG(better < k, "%zu tokens beat the k-th prediction", better);
        CHECK(total <= 1.0 + 1e-5);
    }
    if (n_rows == 1) {
        /* predict gives the best filling, special tokens skipped */
        char *filled = NULL;
        CHECK(tp_fill_mask_predict(m, text, NULL, &filled, &err) == TP_OK);
        CHECK(filled && !strcmp(filled, r.predictions[0].sequence));
        free(filled);
    }
    free(p);
    free(ids);
    free(logits);
    tp_encoding_free(&e);
    tp_fill_mask_result_free(&r);
}

int main(void) {
    enc_require_tokenizer();
    const char *root = tiny_tmpdir("fm");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/mlm", root);
    tiny_cfg cfg = tiny_default("ModernBertForMaskedLM");
    CHECK(tiny_write_model(dir, &cfg) == 0);
    tp_model_params mp = tp_model_default_params();
    mp.n_threads = 2;
    mp.max_batch_tokens = 300; /* several micro-batches in the batch tests */
    tp_model *m = enc_load(dir, &mp);
    CHECK(tp_model_get_task(m) == TP_TASK_FILL_MASK);
    tp_error err;

    /* ---- math against raw logits ---- */
    check_math(m, "The capital of France is [MASK].", 5);
    check_math(m, "Hello [MASK]!", 1);
    check_math(m, "[MASK] is the [MASK] of the story.", 3);
    check_math(m,
               "A long one: "
               "the quick brown fox jumps over the lazy dog [MASK]",
               200);

    /* several masks: one list per mask, [CLS]/[SEP] and the other mask kept */
    tp_fill_mask_result r;
    CHECK(tp_fill_mask_predict_top_k(m, "I [MASK] you [MASK].", 2, NULL, &r, &err) == TP_OK);
    CHECK_EQ_INT(r.n_masks, 2);
    CHECK(strstr(r.predictions[0].sequence, "[MASK]") != NULL);
    CHECK(strstr(r.predictions[0].sequence, "[CLS]") != NULL);
    tp_fill_mask_result_free(&r);

    /* ---- batches bit-identical to single calls ---- */
    enum { NT = 64 };
    char *texts[NT];
    tp_fill_mask_result single[NT];
    for (size_t i = 0; i < NT; i++) {
        size_t words = i % 9 == 0 ? 150 + i : 1 + (i * 7) % 23; /* 2 .. ~250 tokens */
        texts[i] = enc_text(words, (unsigned)i, (int)((i * 5) % words));
        CHECK(tp_fill_mask_predict_top_k(m, texts[i], 3, NULL, &single[i], &err) == TP_OK);
    }
    size_t sizes[] = {1, 2, 7, 64};
    for (size_t si = 0; si < 4; si++) {
        for (int shuffled = 0; shuffled < 2; shuffled++) {
            size_t n = sizes[si], perm[NT];
            enc_shuffle(perm, NT, shuffled ? 99u + (unsigned)si : 0u);
            if (!shuffled)
                for (size_t i = 0; i < NT; i++)
                    perm[i] = i;
            const char *bt[NT];
            for (size_t i = 0; i < n; i++)
                bt[i] = texts[perm[i]];
            tp_fill_mask_result out[NT];
            CHECK(tp_fill_mask_predict_top_k_batch(m, bt, n, 3, NULL, out, &err) == TP_OK);
            for (size_t i = 0; i < n; i++)
                CHECK_MSG(same_result(&out[i], &single[perm[i]]),
                          "batch of %zu%s: item %zu differs from its single call", n,
                          shuffled ? " (shuffled)" : "", i);
            tp_fill_mask_result_free_all(out, n);
        }
    }
    /* predict_batch == predict for each item */
    {
        const char *bt[7];
        tp_fill_mask_result out[7];
        for (size_t i = 0; i < 7; i++)
            bt[i] = texts[i * 9];
        CHECK(tp_fill_mask_predict_batch(m, bt, 7, NULL, out, &err) == TP_OK);
        for (size_t i = 0; i < 7; i++) {
            char *f = NULL;
            CHECK(tp_fill_mask_predict(m, bt[i], NULL, &f, &err) == TP_OK);
            CHECK(f && out[i].filled && !strcmp(f, out[i].filled));
            CHECK_EQ_INT(out[i].k, 1);
            free(f);
        }
        tp_fill_mask_result_free_all(out, 7);
    }

    /* ---- partial failure ---- */
    {
        char *longtext = enc_text(3000, 7, 5);
        const char *bt[7] = {texts[1], "no mask here", texts[2], "bad \xff\xfe utf8 [MASK]",
                             NULL,     texts[3],       longtext};
        tp_fill_mask_params fp = tp_fill_mask_default_params();
        fp.input.truncation = false;
        fp.input.max_length = 512;
        tp_fill_mask_result out[7];
        CHECK(tp_fill_mask_predict_top_k_batch(m, bt, 7, 3, &fp, out, &err) == TP_OK);
        CHECK(same_result(&out[0], &single[1]));
        CHECK(same_result(&out[2], &single[2]));
        CHECK(same_result(&out[5], &single[3]));
        CHECK(out[1].error.status == TP_ERR_INPUT && strstr(out[1].error.message, "[MASK]"));
        CHECK_EQ_INT(out[1].error.item, 1);
        CHECK(out[3].error.status == TP_ERR_INPUT);
        CHECK(out[4].error.status == TP_ERR_INPUT);
        CHECK_MSG(out[6].error.status == TP_ERR_TOO_LONG, "%s", out[6].error.message);
        for (int i = 0; i < 7; i++)
            if (out[i].error.status != TP_OK)
                CHECK(out[i].predictions == NULL && out[i].error.message[0]);
        tp_fill_mask_result_free_all(out, 7);

        /* truncation on (default): the long text runs and says it was cut */
        tp_fill_mask_params tp = tp_fill_mask_default_params();
        tp.input.max_length = 128;
        CHECK(tp_fill_mask_predict_top_k(m, longtext, 2, &tp, &r, &err) == TP_OK);
        CHECK(r.truncated);
        tp_fill_mask_result_free(&r);
        /* ... and a mask cut away is the item's error */
        char *late = enc_text(400, 8, 350);
        CHECK(tp_fill_mask_predict_top_k(m, late, 2, &tp, &r, &err) == TP_ERR_INPUT);
        CHECK(strstr(err.message, "truncation") != NULL);
        tp_fill_mask_result_free(&r);
        free(late);
        free(longtext);
    }

    /* ---- empty batch, single-item batch, bad arguments ---- */
    CHECK(tp_fill_mask_predict_top_k_batch(m, NULL, 0, 3, NULL, NULL, &err) == TP_OK);
    {
        const char *one[1] = {texts[5]};
        tp_fill_mask_result out[1];
        CHECK(tp_fill_mask_predict_top_k_batch(m, one, 1, 3, NULL, out, &err) == TP_OK);
        CHECK(same_result(&out[0], &single[5]));
        tp_fill_mask_result_free_all(out, 1);
        CHECK(tp_fill_mask_predict_top_k_batch(m, one, 1, 0, NULL, out, &err) ==
              TP_ERR_INVALID_ARGUMENT);
    }
    CHECK(tp_fill_mask_predict_top_k(NULL, "x [MASK]", 1, NULL, &r, &err) ==
          TP_ERR_INVALID_ARGUMENT);

    for (size_t i = 0; i < NT; i++) {
        free(texts[i]);
        tp_fill_mask_result_free(&single[i]);
    }
    tp_model_free(m);
    tiny_rmtree(root);
    return tp_test_exit();
}
