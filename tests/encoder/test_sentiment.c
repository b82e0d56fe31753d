/*
 * test_sentiment.c — text classification on tiny random ModernBERT
 * classifiers with the real tokenizer:
 *   - softmax (3 labels, mean pooling) and sigmoid (problem_type multi-label;
 *     one label) checked against the raw classifier logits, applied once;
 *   - label order best first, all-scores form, predict / predict_with_score;
 *   - batches of 1, 2, 7, 64 (shuffled, very different lengths) bit-identical
 *     to single calls; partial failure; empty batch; empty text;
 *   - the wrong pipeline for the model is a clear batch-level error.
 */
#include "enc_test_util.h"

#include <pthread.h>

static bool same(const tp_sentiment_result *a, const tp_sentiment_result *b) {
    if (a->error.status != b->error.status || a->n_scores != b->n_scores ||
        a->truncated != b->truncated)
        return false;
    if (a->error.status != TP_OK)
        return !strcmp(a->error.message, b->error.message);
    for (size_t i = 0; i < a->n_scores; i++)
        if (a->scores[i].id != b->scores[i].id || strcmp(a->scores[i].label, b->scores[i].label) ||
            memcmp(&a->scores[i].score, &b->scores[i].score, sizeof(float)))
            return false;
    return true;
}

/* all-scores result vs the raw logits with the expected function */
static void check_math(tp_model *m, const char *text, bool sigmoid, const char *const *labels) {
    tp_sentiment_result r;
    tp_error err;
    CHECK(tp_sentiment_predict_all_scores(m, text, NULL, &r, &err) == TP_OK);
    size_t L = tp_model_num_labels(m);
    CHECK_EQ_INT(r.n_scores, L);
    tp_encoding e = enc_encode(m, text, NULL);
    float *lg = enc_raw(m, e.ids, e.n, NULL, 0);
    double p[16];
    if (sigmoid)
        for (size_t j = 0; j < L; j++)
            p[j] = 1.0 / (1.0 + exp(-(double)lg[j]));
    else
        enc_softmax_d(lg, p, L);
    for (size_t j = 0; j < r.n_scores; j++) {
        int32_t id = r.scores[j].id;
        CHECK(id >= 0 && (size_t)id < L);
        CHECK_STR(r.scores[j].label, labels[id]);
        CHECK_MSG(fabs(r.scores[j].score - p[id]) <= 1e-6, "label %s: %.9g vs %.9g", labels[id],
                  r.scores[j].score, p[id]);
        if (j)
            CHECK(r.scores[j - 1].score >= r.scores[j].score);
    }
    /* best label / with score agree with all-scores */
    tp_sentiment_result b;
    CHECK(tp_sentiment_predict_with_score(m, text, NULL, &b, &err) == TP_OK);
    CHECK(b.n_scores == 1 && b.scores[0].id == r.scores[0].id &&
          b.scores[0].score == r.scores[0].score);
    char *label = NULL;
    CHECK(tp_sentiment_predict(m, text, NULL, &label, &err) == TP_OK);
    CHECK(label && !strcmp(label, r.scores[0].label));
    free(label);
    /* raw logits when asked */
    tp_sentiment_params sp = tp_sentiment_default_params();
    sp.function = TP_SCORE_NONE;
    tp_sentiment_result raw;
    CHECK(tp_sentiment_predict_all_scores(m, text, &sp, &raw, &err) == TP_OK);
    for (size_t j = 0; j < raw.n_scores; j++)
        CHECK(raw.scores[j].score == lg[raw.scores[j].id]);
    tp_sentiment_result_free(&raw);
    tp_sentiment_result_free(&b);
    tp_sentiment_result_free(&r);
    free(lg);
    tp_encoding_free(&e);
}

typedef struct thread_job {
    tp_model *m;
    const char *const *texts;
    size_t n;
    tp_sentiment_result *out;
    tp_status st;
} thread_job;

static void *thread_main(void *arg) {
    thread_job *j = arg;
    tp_error err;
    j->st = tp_sentiment_predict_all_scores_batch(j->m, j->texts, j->n, NULL, j->out, &err);
    return NULL;
}

int main(void) {
    enc_require_tokenizer();
    const char *root = tiny_tmpdir("sent");
    char d3[512], dml[512], d1[512];
    static const char *const labels3[] = {"negative", "neutral", "positive", NULL};
    static const char *const labels1[] = {"score", NULL};
    tiny_cfg c3 = tiny_default("ModernBertForSequenceClassification");
    c3.labels = labels3;
    c3.pooling = "mean";
    tiny_cfg cml = c3;
    cml.problem_type = "multi_label_classification";
    cml.pooling = "cls";
    cml.biases = true;
    cml.seed = 77;
    tiny_cfg c1 = c3;
    c1.labels = labels1;
    c1.seed = 5;
    snprintf(d3, sizeof d3, "%s/three", root);
    snprintf(dml, sizeof dml, "%s/multi", root);
    snprintf(d1, sizeof d1, "%s/one", root);
    CHECK(tiny_write_model(d3, &c3) == 0);
    CHECK(tiny_write_model(dml, &cml) == 0);
    CHECK(tiny_write_model(d1, &c1) == 0);
    tp_model_params mp = tp_model_default_params();
    mp.n_threads = 2;
    mp.max_batch_tokens = 256;
    tp_model *m3 = enc_load(d3, &mp), *mml = enc_load(dml, &mp), *m1 = enc_load(d1, &mp);
    CHECK(tp_model_get_task(m3) == TP_TASK_TEXT_CLASSIFICATION);
    CHECK_EQ_INT(tp_model_num_labels(m3), 3);
    CHECK_STR(tp_model_label(m3, 2), "positive");
    CHECK(tp_model_label(m3, 3) == NULL);
    tp_error err;

    const char *samples[] = {"I loved this movie, the acting was great!", "", "Terrible.",
                             "東京 is lovely in spring 🙂 but the café was closed"};
    for (int i = 0; i < 4; i++) {
        check_math(m3, samples[i], false, labels3);
        check_math(mml, samples[i], true, labels3);
        check_math(m1, samples[i], true, labels1);
    }

    /* ---- batches bit-identical to single calls ---- */
    enum { NT = 64 };
    char *texts[NT];
    tp_sentiment_result single[NT];
    for (size_t i = 0; i < NT; i++) {
        size_t words = i % 11 == 3 ? 120 + 2 * i : 1 + (i * 5) % 19;
        texts[i] = enc_text(words, 1000u + (unsigned)i, -1);
        CHECK(tp_sentiment_predict_all_scores(m3, texts[i], NULL, &single[i], &err) == TP_OK);
    }
    size_t sizes[] = {1, 2, 7, 64};
    for (size_t si = 0; si < 4; si++) {
        for (int sh = 0; sh < 2; sh++) {
            size_t n = sizes[si], perm[NT];
            enc_shuffle(perm, NT, 17u + (unsigned)si);
            if (!sh)
                for (size_t i = 0; i < NT; i++)
                    perm[i] = i;
            const char *bt[NT];
            for (size_t i = 0; i < n; i++)
                bt[i] = texts[perm[i]];
            tp_sentiment_result out[NT];
            CHECK(tp_sentiment_predict_all_scores_batch(m3, bt, n, NULL, out, &err) == TP_OK);
            for (size_t i = 0; i < n; i++)
                CHECK_MSG(same(&out[i], &single[perm[i]]), "batch %zu%s item %zu", n,
                          sh ? " shuffled" : "", i);
            tp_sentiment_result_free_all(out, n);
            /* best-label forms agree with the first of all-scores */
            CHECK(tp_sentiment_predict_with_score_batch(m3, bt, n, NULL, out, &err) == TP_OK);
            for (size_t i = 0; i < n; i++)
                CHECK(out[i].n_scores == 1 && out[i].scores[0].id == single[perm[i]].scores[0].id &&
                      out[i].scores[0].score == single[perm[i]].scores[0].score);
            tp_sentiment_result_free_all(out, n);
            CHECK(tp_sentiment_predict_batch(m3, bt, n, NULL, out, &err) == TP_OK);
            for (size_t i = 0; i < n; i++)
                CHECK(out[i].n_scores == 1 &&
                      !strcmp(out[i].scores[0].label, single[perm[i]].scores[0].label));
            tp_sentiment_result_free_all(out, n);
        }
    }

    /* ---- thread-count invariance and concurrent calls on one shared model ---- */
    {
        tp_model_params p1 = mp;
        p1.n_threads = 1;
        tp_model *m3b = enc_load(d3, &p1);
        tp_sentiment_result out[NT];
        CHECK(tp_sentiment_predict_all_scores_batch(m3b, (const char *const *)texts, NT, NULL, out,
                                                    &err) == TP_OK);
        for (size_t i = 0; i < NT; i++)
            CHECK_MSG(same(&out[i], &single[i]), "1 thread vs 2: item %zu differs", i);
        tp_sentiment_result_free_all(out, NT);
        tp_model_free(m3b);

        static tp_sentiment_result o1[NT], o2[NT];
        thread_job j1 = {m3, (const char *const *)texts, NT, o1, TP_ERR_INTERNAL};
        thread_job j2 = {m3, (const char *const *)texts + 32, 32, o2, TP_ERR_INTERNAL};
        pthread_t t1, t2;
        CHECK(pthread_create(&t1, NULL, thread_main, &j1) == 0);
        CHECK(pthread_create(&t2, NULL, thread_main, &j2) == 0);
        pthread_join(t1, NULL);
        pthread_join(t2, NULL);
        CHECK(j1.st == TP_OK && j2.st == TP_OK);
        for (size_t i = 0; i < NT; i++)
            CHECK(same(&o1[i], &single[i]));
        for (size_t i = 0; i < 32; i++)
            CHECK(same(&o2[i], &single[32 + i]));
        tp_sentiment_result_free_all(o1, NT);
        tp_sentiment_result_free_all(o2, 32);
    }

    /* ---- partial failure ---- */
    {
        char *longtext = enc_text(2000, 3, -1);
        const char *bt[6] = {texts[0], "\xc3\x28 invalid", texts[10], NULL, longtext, texts[3]};
        tp_sentiment_params sp = tp_sentiment_default_params();
        sp.input.truncation = false;
        sp.input.max_length = 256;
        tp_sentiment_result out[6];
        CHECK(tp_sentiment_predict_all_scores_batch(m3, bt, 6, &sp, out, &err) == TP_OK);
        CHECK(same(&out[0], &single[0]));
        CHECK(same(&out[2], &single[10]));
        CHECK(same(&out[5], &single[3]));
        CHECK(out[1].error.status == TP_ERR_INPUT && out[1].error.item == 1);
        CHECK(out[3].error.status == TP_ERR_INPUT);
        CHECK_MSG(out[4].error.status == TP_ERR_TOO_LONG, "%s", out[4].error.message);
        tp_sentiment_result_free_all(out, 6);
        /* truncation on: runs, flagged */
        sp.input.truncation = true;
        tp_sentiment_result r;
        CHECK(tp_sentiment_predict_with_score(m3, longtext, &sp, &r, &err) == TP_OK);
        CHECK(r.truncated);
        tp_sentiment_result_free(&r);
        free(longtext);
    }

    /* ---- a tiny memory budget: items too big for it fail alone, the rest run
     * (in many micro-batches) and match the default-budget results ---- */
    {
        tp_model_params pb = mp;
        pb.memory_budget = 192 << 10;
        pb.max_batch_tokens = 0;
        tp_model *ms = enc_load(d3, &pb);
        char *big = enc_text(400, 9, -1);
        const char *bt[5] = {texts[1], big, texts[2], texts[5], texts[7]};
        tp_sentiment_result out[5];
        CHECK(tp_sentiment_predict_all_scores_batch(ms, bt, 5, NULL, out, &err) == TP_OK);
        CHECK(same(&out[0], &single[1]));
        CHECK(same(&out[2], &single[2]));
        CHECK(same(&out[3], &single[5]));
        CHECK(same(&out[4], &single[7]));
        CHECK_MSG(out[1].error.status == TP_ERR_OUT_OF_MEMORY &&
                      strstr(out[1].error.message, "budget"),
                  "%s", out[1].error.message);
        tp_sentiment_result_free_all(out, 5);
        free(big);
        tp_model_free(ms);
    }

    /* ---- empty batch, single-item batch, wrong pipeline ---- */
    CHECK(tp_sentiment_predict_batch(m3, NULL, 0, NULL, NULL, &err) == TP_OK);
    {
        const char *one[1] = {texts[9]};
        tp_sentiment_result out[1];
        CHECK(tp_sentiment_predict_all_scores_batch(m3, one, 1, NULL, out, &err) == TP_OK);
        CHECK(same(&out[0], &single[9]));
        tp_sentiment_result_free_all(out, 1);
        tp_fill_mask_result fm[1];
        CHECK(tp_fill_mask_predict_batch(m3, one, 1, NULL, fm, &err) == TP_ERR_INVALID_ARGUMENT);
        CHECK(strstr(err.message, "fill-mask") != NULL);
    }

    for (size_t i = 0; i < NT; i++) {
        free(texts[i]);
        tp_sentiment_result_free(&single[i]);
    }
    tp_model_free(m3);
    tp_model_free(mml);
    tp_model_free(m1);
    tiny_rmtree(root);
    return tp_test_exit();
}
