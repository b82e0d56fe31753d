/*
 * test_zero_shot.c — zero-shot classification on tiny random NLI-style
 * ModernBERT classifiers with the real tokenizer:
 *   - single-label (softmax of entailment logits across labels), multi-label
 *     (per label softmax of [contradiction, entailment]) and the one-label rule,
 *     checked against raw logits of the (text, hypothesis) pairs computed here;
 *   - entailment/contradiction ids from label2id for both common layouts
 *     ([entailment, neutral, contradiction] and [entailment, not_entailment]);
 *   - custom hypothesis template; bad template is a batch-level error;
 *   - batches of 1, 2, 7, 64 (shuffled) bit-identical to single calls; the
 *     per-text-labels form; partial failure; empty batch.
 */
#include "enc_test_util.h"

static bool same(const tp_zero_shot_result *a, const tp_zero_shot_result *b) {
    if (a->error.status != b->error.status || a->n_labels != b->n_labels ||
        a->truncated != b->truncated)
        return false;
    if (a->error.status != TP_OK)
        return !strcmp(a->error.message, b->error.message);
    for (size_t i = 0; i < a->n_labels; i++)
        if (strcmp(a->labels[i], b->labels[i]) ||
            memcmp(&a->scores[i], &b->scores[i], sizeof(float)))
            return false;
    return true;
}

/* Expected scores (in the caller's label order) from raw pair logits. */
static void expected(tp_model *m, const char *text, const char *const *labels, size_t n,
                     const char *tmpl, bool multi, int entail, int contra, double *out) {
    double ent[16];
    for (size_t j = 0; j < n; j++) {
        char hyp[256];
        const char *at = strstr(tmpl, "{}");
        snprintf(hyp, sizeof hyp, "%.*s%s%s", (int)(at - tmpl), tmpl, labels[j], at + 2);
        tp_encoding e = enc_encode(m, text, hyp);
        float *lg = enc_raw(m, e.ids, e.n, NULL, 0);
        if (multi) {
            double a = lg[contra], b = lg[entail];
            out[j] = exp(b) / (exp(a) + exp(b));
        } else {
            ent[j] = lg[entail];
        }
        free(lg);
        tp_encoding_free(&e);
    }
    if (!multi) {
        float f[16];
        for (size_t j = 0; j < n; j++)
            f[j] = (float)ent[j];
        enc_softmax_d(f, out, n);
    }
}

static void check_math(tp_model *m, const char *text, const char *const *labels, size_t n,
                       const tp_zero_shot_params *zp, int entail, int contra) {
    tp_zero_shot_result r;
    tp_error err;
    CHECK(tp_zero_shot_predict(m, text, labels, n, zp, &r, &err) == TP_OK);
    double want[16];
    bool multi = (zp && zp->multi_label) || n == 1;
    expected(m, text, labels, n,
             zp && zp->hypothesis_template ? zp->hypothesis_template : "This example is {}.", multi,
             entail, contra, want);
    CHECK_EQ_INT(r.n_labels, n);
    double sum = 0.0;
    for (size_t j = 0; j < r.n_labels; j++) {
        size_t k = 0;
        while (k < n && strcmp(labels[k], r.labels[j]))
            k++;
        CHECK(k < n);
        if (k < n)
            CHECK_MSG(fabs(r.scores[j] - want[k]) <= 1e-6, "label %s: %.9g vs %.9g", labels[k],
                      r.scores[j], want[k]);
        if (j)
            CHECK(r.scores[j - 1] >= r.scores[j]);
        sum += r.scores[j];
    }
    if (!multi)
        CHECK(fabs(sum - 1.0) < 1e-5);
    tp_zero_shot_result_free(&r);
}

int main(void) {
    enc_require_tokenizer();
    const char *root = tiny_tmpdir("zs");
    char d3[512], d2[512];
    static const char *const nli3[] = {"entailment", "neutral", "contradiction", NULL};
    static const char *const nli2[] = {"not_entailment", "Entailment", NULL};
    tiny_cfg c3 = tiny_default("ModernBertForSequenceClassification");
    c3.labels = nli3;
    c3.seed = 31;
    tiny_cfg c2 = c3;
    c2.labels = nli2;
    c2.pooling = "mean";
    c2.seed = 32;
    snprintf(d3, sizeof d3, "%s/nli3", root);
    snprintf(d2, sizeof d2, "%s/nli2", root);
    CHECK(tiny_write_model(d3, &c3) == 0);
    CHECK(tiny_write_model(d2, &c2) == 0);
    tp_model_params mp = tp_model_default_params();
    mp.n_threads = 2;
    mp.max_batch_tokens = 200;
    tp_model *m3 = enc_load(d3, &mp), *m2 = enc_load(d2, &mp);
    CHECK_EQ_INT(m3->entail_id, 0);
    CHECK_EQ_INT(m3->contra_id, 2); /* entailment is 0: contradiction is the last class */
    CHECK_EQ_INT(m2->entail_id, 1); /* case-insensitive "entail" prefix */
    CHECK_EQ_INT(m2->contra_id, 0);
    tp_error err;

    const char *labels[] = {"politics", "sports", "cooking", "travel"};
    const char *text = "The team won the match after a great second half.";
    tp_zero_shot_params zp = tp_zero_shot_default_params();
    check_math(m3, text, labels, 4, NULL, 0, 2);
    check_math(m2, text, labels, 3, NULL, 1, 0);
    check_math(m3, text, labels, 1, NULL, 0, 2); /* one label: multi-label scoring */
    zp.multi_label = true;
    check_math(m3, text, labels, 4, &zp, 0, 2);
    check_math(m2, "", labels, 2, &zp, 1, 0);
    zp.multi_label = false;
    zp.hypothesis_template = "Das Thema ist {} !";
    check_math(m3, text, labels, 3, &zp, 0, 2);

    /* ---- batch forms bit-identical to single calls ---- */
    enum { NT = 64 };
    char *texts[NT];
    tp_zero_shot_result single[NT];
    for (size_t i = 0; i < NT; i++) {
        size_t words = i % 13 == 4 ? 100 + i : 1 + (i * 3) % 17;
        texts[i] = enc_text(words, 500u + (unsigned)i, -1);
        CHECK(tp_zero_shot_predict(m3, texts[i], labels, 4, NULL, &single[i], &err) == TP_OK);
    }
    size_t sizes[] = {1, 2, 7, 64};
    for (size_t si = 0; si < 4; si++) {
        for (int sh = 0; sh < 2; sh++) {
            size_t n = sizes[si], perm[NT];
            enc_shuffle(perm, NT, 3u + (unsigned)si);
            if (!sh)
                for (size_t i = 0; i < NT; i++)
                    perm[i] = i;
            const char *bt[NT];
            for (size_t i = 0; i < n; i++)
                bt[i] = texts[perm[i]];
            tp_zero_shot_result out[NT];
            CHECK(tp_zero_shot_predict_batch(m3, bt, n, labels, 4, NULL, out, &err) == TP_OK);
            for (size_t i = 0; i < n; i++)
                CHECK_MSG(same(&out[i], &single[perm[i]]), "batch %zu%s item %zu", n,
                          sh ? " shuffled" : "", i);
            tp_zero_shot_result_free_all(out, n);
        }
    }

    /* ---- per-text labels, with a bad item in the middle ---- */
    {
        const char *la[] = {"sports", "politics"};
        const char *lb[] = {"cooking", "travel", "sports", "politics"};
        const char *lc[] = {"travel"};
        const char *const *per[5] = {labels, la, NULL, lb, lc};
        size_t cnt[5] = {4, 2, 0, 4, 1};
        const char *bt[5] = {texts[0], texts[1], texts[2], "bad \xed\xa0\x80 surrogate", texts[4]};
        tp_zero_shot_result out[5];
        CHECK(tp_zero_shot_predict_batch_labels(m3, bt, 5, per, cnt, NULL, out, &err) == TP_OK);
        CHECK(same(&out[0], &single[0]));
        tp_zero_shot_result r;
        CHECK(tp_zero_shot_predict(m3, texts[1], la, 2, NULL, &r, &err) == TP_OK);
        CHECK(same(&out[1], &r));
        tp_zero_shot_result_free(&r);
        CHECK(out[2].error.status == TP_ERR_INPUT && strstr(out[2].error.message, "label"));
        CHECK(out[3].error.status == TP_ERR_INPUT && out[3].error.item == 3);
        CHECK(tp_zero_shot_predict(m3, texts[4], lc, 1, NULL, &r, &err) == TP_OK);
        CHECK(same(&out[4], &r));
        tp_zero_shot_result_free(&r);
        tp_zero_shot_result_free_all(out, 5);
    }

    /* ---- batch-level errors and edge cases ---- */
    {
        tp_zero_shot_result out[2];
        const char *bt[2] = {texts[0], texts[1]};
        tp_zero_shot_params bad = tp_zero_shot_default_params();
        bad.hypothesis_template = "no placeholder";
        CHECK(tp_zero_shot_predict_batch(m3, bt, 2, labels, 4, &bad, out, &err) ==
              TP_ERR_INVALID_ARGUMENT);
        CHECK(strstr(err.message, "{}") != NULL);
        CHECK(tp_zero_shot_predict_batch(m3, bt, 2, labels, 0, NULL, out, &err) ==
              TP_ERR_INVALID_ARGUMENT);
        CHECK(tp_zero_shot_predict_batch(m3, NULL, 0, labels, 4, NULL, NULL, &err) == TP_OK);
    }

    for (size_t i = 0; i < NT; i++) {
        free(texts[i]);
        tp_zero_shot_result_free(&single[i]);
    }
    tp_model_free(m3);
    tp_model_free(m2);
    tiny_rmtree(root);
    return tp_test_exit();
}
