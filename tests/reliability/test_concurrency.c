/*
 * test_concurrency.c — one loaded model used from several threads at once
 * gives exactly the results of sequential use (docs/RELIABILITY.md,
 * "Concurrency").
 *
 * Models, each loaded once and shared by every thread:
 *   - ModernBERT masked LM, sentiment classifier and NLI classifier: tiny
 *     random-weight folders written as tests/encoder writes them
 *     (tiny_model.h) with the real ModernBERT tokenizer;
 *   - Qwen3 (and Gemma3 when ../shared/tokenizers/gemma3 is present): tiny
 *     random-weight folders from build/tp_mkmodel with the real tokenizer, as
 *     tests/generate does.
 * Jobs: fill-mask top-k batches and single calls, sentiment all-scores
 * batches, zero-shot batches (own labels), completion batches (greedy and
 * seeded sampling per item), chat batches and tokenizer batch encoding.
 * Every thread gets its own batches (different texts and sizes per thread).
 *
 * First every job runs once on the main thread: the reference. Then 4
 * threads start together (a barrier) and each runs its jobs, twice, in its
 * own order, so calls on the same model and on different models overlap.
 * Each job's full result (ids, token strings, texts, float bits, statuses) is
 * written into a canonical text and must equal the reference byte for byte.
 * Under ThreadSanitizer (make check-tsan) the same run checks for data races;
 * there the workload is smaller (TPIPE_TSAN_BUILD=1).
 */
#include "encoder/tiny_model.h"
#include "core/core.h"
#include "test_util.h"
#include "tpipe.h"

#include <pthread.h>
#include <stdint.h>

#define N_THREADS 4
#define ROUNDS 2

static tp_model *g_mlm, *g_sent, *g_nli, *g_qwen, *g_gemma;
static bool g_small; /* TSan: a lighter workload */

static const char *const kTexts[] = {
    "The quick brown fox jumps over the lazy dog.",
    "Paris is a lovely city in spring, and the café is open.",
    "I really did not like this movie: boring plot, terrible acting.",
    "Great music!",
    "naïve über 東京 🙂 — mixed scripts and emoji",
    "a",
    "Once upon a time there was a very long sentence that goes on and on, with commas, "
    "clauses, and more words than the others, so that batches mix lengths.",
    "  leading and trailing spaces  ",
    "\xff\xfe invalid UTF-8 fails alone",
    "",
};
#define N_TEXTS (sizeof kTexts / sizeof kTexts[0])

static const char *const kMasked[] = {
    "The capital of France is [MASK].",
    "I [MASK] this movie.",
    "[MASK] [MASK] two masks in one text.",
    "no mask at all fails alone",
    "The [MASK] jumps over the lazy dog, and the cat [MASK] too.",
    "A [MASK]",
};
#define N_MASKED (sizeof kMasked / sizeof kMasked[0])

/* ---- canonical text of results: floats by their bits ---- */

static void put_err(tp_buf *b, const tp_error *e) {
    tp_buf_printf(b, "[%s %ld %s]", tp_status_name(e->status), e->item,
                  e->status ? e->message : "");
}

static void put_f(tp_buf *b, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    tp_buf_printf(b, " %08x", u);
}

static void put_s(tp_buf *b, const char *s) {
    tp_buf_printf(b, " \"%s\"", s ? s : "(null)");
}

/* ---- jobs ---- */

typedef enum job_kind {
    JOB_FILL_MASK,
    JOB_FILL_MASK_SINGLE,
    JOB_SENTIMENT,
    JOB_ZERO_SHOT,
    JOB_TOKENIZE,
    JOB_COMPLETION,
    JOB_CHAT,
    JOB_GEMMA,
    JOB_KINDS
} job_kind;

typedef struct job {
    job_kind kind;
    int thread;   /* whose batches */
    char *result; /* canonical text */
} job;

/* Texts of thread t: n of them, starting at a thread-dependent offset. */
static size_t pick(const char *const *pool, size_t n_pool, int t, size_t n, const char **out) {
    for (size_t i = 0; i < n; i++)
        out[i] = pool[(3 * (size_t)t + 2 * i) % n_pool];
    return n;
}

static char *run_job(job_kind kind, int t) {
    tp_buf b = {0};
    tp_error err;
    tp_status st;
    const char *texts[16];
    size_t n = (size_t)(g_small ? 2 + t % 2 : 3 + t);
    tp_buf_printf(&b, "job %d thread %d:", (int)kind, t);
    switch (kind) {
    case JOB_FILL_MASK: {
        pick(kMasked, N_MASKED, t, n, texts);
        tp_fill_mask_result r[16];
        st = tp_fill_mask_predict_top_k_batch(g_mlm, texts, n, 3, NULL, r, &err);
        tp_buf_printf(&b, " %s", tp_status_name(st));
        for (size_t i = 0; st == TP_OK && i < n; i++) {
            put_err(&b, &r[i].error);
            tp_buf_printf(&b, " masks %zu k %zu trunc %d", r[i].n_masks, r[i].k, r[i].truncated);
            for (size_t j = 0; j < r[i].n_masks * r[i].k; j++) {
                const tp_fill_mask_prediction *p = &r[i].predictions[j];
                tp_buf_printf(&b, " %d", p->token);
                put_f(&b, p->score);
                put_s(&b, p->token_str);
                put_s(&b, p->sequence);
            }
            put_s(&b, r[i].filled);
        }
        if (st == TP_OK)
            tp_fill_mask_result_free_all(r, n);
        break;
    }
    case JOB_FILL_MASK_SINGLE: {
        char *filled = NULL;
        st = tp_fill_mask_predict(g_mlm, kMasked[t % 2], NULL, &filled, &err);
        tp_buf_printf(&b, " %s", tp_status_name(st));
        put_s(&b, filled);
        free(filled);
        break;
    }
    case JOB_SENTIMENT: {
        pick(kTexts, N_TEXTS, t, n, texts);
        tp_sentiment_result r[16];
        st = tp_sentiment_predict_all_scores_batch(g_sent, texts, n, NULL, r, &err);
        tp_buf_printf(&b, " %s", tp_status_name(st));
        for (size_t i = 0; st == TP_OK && i < n; i++) {
            put_err(&b, &r[i].error);
            for (size_t j = 0; j < r[i].n_scores; j++) {
                tp_buf_printf(&b, " %d", r[i].scores[j].id);
                put_s(&b, r[i].scores[j].label);
                put_f(&b, r[i].scores[j].score);
            }
        }
        if (st == TP_OK)
            tp_sentiment_result_free_all(r, n);
        break;
    }
    case JOB_ZERO_SHOT: {
        pick(kTexts, N_TEXTS, t + 1, n, texts);
        static const char *const labels[] = {"sports", "politics", "food", "music", "travel"};
        tp_zero_shot_params p = tp_zero_shot_default_params();
        p.multi_label = t % 2;
        tp_zero_shot_result r[16];
        st = tp_zero_shot_predict_batch(g_nli, texts, n, labels, 2 + (size_t)t % 4, &p, r, &err);
        tp_buf_printf(&b, " %s", tp_status_name(st));
        for (size_t i = 0; st == TP_OK && i < n; i++) {
            put_err(&b, &r[i].error);
            for (size_t j = 0; j < r[i].n_labels; j++) {
                put_s(&b, r[i].labels[j]);
                put_f(&b, r[i].scores[j]);
            }
        }
        if (st == TP_OK)
            tp_zero_shot_result_free_all(r, n);
        break;
    }
    case JOB_TOKENIZE: {
        pick(kTexts, N_TEXTS, t + 2, n, texts);
        tp_tokenization r[16];
        st = tp_tokenizer_encode_batch(tp_model_tokenizer(g_mlm), texts, n, true, 2, r, &err);
        tp_buf_printf(&b, " %s", tp_status_name(st));
        for (size_t i = 0; st == TP_OK && i < n; i++) {
            tp_buf_printf(&b, " [%s]", tp_status_name(r[i].status));
            for (size_t j = 0; j < r[i].n; j++)
                tp_buf_printf(&b, " %d:%u-%u", r[i].ids[j], r[i].offsets[2 * j],
                              r[i].offsets[2 * j + 1]);
            tp_tokenization_free(&r[i]);
        }
        break;
    }
    case JOB_COMPLETION:
    case JOB_CHAT:
    case JOB_GEMMA: {
        tp_model *m = kind == JOB_GEMMA ? g_gemma : g_qwen;
        pick(kTexts, N_TEXTS, t + (int)kind, n, texts);
        tp_gen_options o[16];
        for (size_t i = 0; i < n; i++) {
            o[i] = tp_gen_options_unset();
            o[i].max_new_tokens = (int32_t)(g_small ? 3 : 4 + (i + (size_t)t) % 5);
            if ((i + (size_t)t) % 2) {
                o[i].temperature = 0.9f;
                o[i].top_k = 40;
                o[i].top_p = 0.95f;
                o[i].seed = 7 + (int64_t)i;
            } else {
                o[i].temperature = 0;
            }
        }
        tp_generate_params p = tp_generate_default_params();
        p.max_batch = 1 + t % 3; /* different slot counts: continuous batching differs */
        p.kv_budget = (size_t)64 << 20;
        tp_gen_result r[16];
        if (kind == JOB_CHAT) {
            tp_chat_message msgs[16];
            tp_chat_conversation conv[16];
            for (size_t i = 0; i < n; i++) {
                msgs[i] = (tp_chat_message){"user", texts[i]};
                conv[i] = (tp_chat_conversation){&msgs[i], 1, NULL};
            }
            p.enable_thinking = 0;
            st = tp_chat_batch(m, conv, n, &p, o, r, NULL, &err);
        } else {
            st = tp_completion_batch(m, texts, n, &p, o, r, NULL, &err);
        }
        tp_buf_printf(&b, " %s", tp_status_name(st));
        for (size_t i = 0; st == TP_OK && i < n; i++) {
            put_err(&b, &r[i].error);
            tp_buf_printf(&b, " finish %d prompt %zu gen %zu:", (int)r[i].finish_reason,
                          r[i].prompt_tokens, r[i].completion_tokens);
            for (size_t j = 0; j < r[i].completion_tokens; j++)
                tp_buf_printf(&b, " %d", r[i].tokens[j]);
            put_s(&b, r[i].text);
        }
        if (st == TP_OK)
            tp_gen_result_free_all(r, n);
        break;
    }
    default:
        break;
    }
    return tp_buf_take(&b);
}

static bool job_enabled(job_kind k) {
    return k != JOB_GEMMA || g_gemma != NULL;
}

/* ---- threads ---- */

static pthread_barrier_t g_start;
static char *g_ref[N_THREADS][JOB_KINDS];
static int g_mismatch[N_THREADS];

static void *worker(void *arg) {
    int t = (int)(intptr_t)arg;
    pthread_barrier_wait(&g_start);
    for (int round = 0; round < ROUNDS; round++) {
        for (int j = 0; j < JOB_KINDS; j++) {
            /* each thread walks the jobs in its own order */
            job_kind k = (job_kind)((j * (t % 2 ? 3 : 5) + t + round) % JOB_KINDS);
            if (!job_enabled(k))
                continue;
            char *got = run_job(k, t);
            if (strcmp(got, g_ref[t][k]) != 0) {
                fprintf(stderr,
                        "thread %d round %d job %d differs from the sequential run:\n"
                        "  sequential: %.300s\n  concurrent: %.300s\n",
                        t, round, (int)k, g_ref[t][k], got);
                g_mismatch[t]++;
            }
            free(got);
        }
    }
    return NULL;
}

/* ---- models ---- */

static tp_model *load(const char *dir) {
    tp_model_params mp = tp_model_default_params();
    mp.n_threads = 2;
    mp.max_batch_tokens = 64; /* several micro-batches per call */
    tp_model *m = NULL;
    tp_error err;
    if (tp_model_load(dir, &mp, &m, &err) != TP_OK) {
        fprintf(stderr, "loading %s: %s\n", dir, err.message);
        exit(1);
    }
    return m;
}

static int mkmodel(const char *family, const char *tok, const char *out) {
    const char *build = getenv("TPIPE_BUILD");
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "'%s/tp_mkmodel' --family %s --hidden 32 --layers 2 --heads 2 --kv-heads 1 "
             "--head-dim 16 --intermediate 48 --max-positions 256 --seed 3 --quiet "
             "--tokenizer-dir '%s' --out '%s'",
             build ? build : ".", family, tok, out);
    return system(cmd);
}

int main(void) {
    const char *qwen_tok = tp_test_shared_or_data("tokenizers/qwen3/tokenizer.json");
    if (!tiny_tokenizer_dir() || !qwen_tok) {
        printf("SKIP: the ModernBERT or Qwen3 tokenizer is in neither tests/data nor "
               "../shared\n");
        return 0;
    }
    const char *tsan = getenv("TPIPE_TSAN_BUILD");
    g_small = tsan && *tsan == '1';
    const char *root = tiny_tmpdir("concurrency");
    char d_mlm[512], d_sent[512], d_nli[512], d_qwen[512], d_gemma[512], tok[4096];
    snprintf(d_mlm, sizeof d_mlm, "%s/mlm", root);
    snprintf(d_sent, sizeof d_sent, "%s/sent", root);
    snprintf(d_nli, sizeof d_nli, "%s/nli", root);
    snprintf(d_qwen, sizeof d_qwen, "%s/qwen3", root);
    snprintf(d_gemma, sizeof d_gemma, "%s/gemma3", root);
    tiny_cfg c = tiny_default("ModernBertForMaskedLM");
    CHECK(tiny_write_model(d_mlm, &c) == 0);
    static const char *const sent_labels[] = {"NEGATIVE", "POSITIVE", NULL};
    static const char *const nli_labels[] = {"entailment", "neutral", "contradiction", NULL};
    c = tiny_default("ModernBertForSequenceClassification");
    c.labels = sent_labels;
    c.pooling = "mean";
    CHECK(tiny_write_model(d_sent, &c) == 0);
    c.labels = nli_labels;
    c.pooling = "cls";
    c.seed = 99;
    CHECK(tiny_write_model(d_nli, &c) == 0);
    snprintf(tok, sizeof tok, "%s", qwen_tok);
    tok[strlen(tok) - strlen("/tokenizer.json")] = 0;
    CHECK(mkmodel("qwen3", tok, d_qwen) == 0);
    const char *gemma_tok = g_small ? NULL : tp_test_shared("tokenizers/gemma3/tokenizer.json");
    if (gemma_tok) {
        snprintf(tok, sizeof tok, "%s", gemma_tok);
        tok[strlen(tok) - strlen("/tokenizer.json")] = 0;
        CHECK(mkmodel("gemma3", tok, d_gemma) == 0);
    } else {
        printf("note: Gemma3 not run (%s)\n",
               g_small ? "ThreadSanitizer build" : "no ../shared/tokenizers/gemma3");
    }
    if (tp_test_failures)
        return tp_test_exit();
    g_mlm = load(d_mlm);
    g_sent = load(d_sent);
    g_nli = load(d_nli);
    g_qwen = load(d_qwen);
    if (gemma_tok)
        g_gemma = load(d_gemma);

    /* the reference: every job once, sequentially */
    for (int t = 0; t < N_THREADS; t++)
        for (int k = 0; k < JOB_KINDS; k++)
            g_ref[t][k] = job_enabled((job_kind)k) ? run_job((job_kind)k, t) : NULL;
    /* the jobs must do real work: most items succeed, the bad ones fail alone */
    CHECK(strstr(g_ref[0][JOB_FILL_MASK], "[TP_OK") != NULL);
    bool item_failed = false; /* the invalid UTF-8 text fails alone */
    for (int t = 0; t < N_THREADS; t++)
        item_failed |= strstr(g_ref[t][JOB_SENTIMENT], "[TP_ERR_INPUT") != NULL;
    CHECK(item_failed);
    if (getenv("TPIPE_CONCURRENCY_VERBOSE"))
        for (int t = 0; t < N_THREADS; t++)
            for (int k = 0; k < JOB_KINDS; k++)
                printf("%.400s\n", g_ref[t][k] ? g_ref[t][k] : "(off)");
    CHECK(strstr(g_ref[2][JOB_ZERO_SHOT], "[TP_OK") != NULL);
    CHECK(strstr(g_ref[3][JOB_COMPLETION], "finish") != NULL);
    CHECK(strstr(g_ref[0][JOB_CHAT], "finish") != NULL);
    /* different threads really have different batches */
    CHECK(strcmp(g_ref[0][JOB_SENTIMENT] + 16, g_ref[1][JOB_SENTIMENT] + 16) != 0);

    pthread_t th[N_THREADS];
    CHECK(pthread_barrier_init(&g_start, NULL, N_THREADS) == 0);
    for (int t = 0; t < N_THREADS; t++)
        CHECK(pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t) == 0);
    for (int t = 0; t < N_THREADS; t++)
        pthread_join(th[t], NULL);
    pthread_barrier_destroy(&g_start);
    for (int t = 0; t < N_THREADS; t++)
        CHECK_MSG(g_mismatch[t] == 0, "thread %d: %d results differ from the sequential run", t,
                  g_mismatch[t]);

    for (int t = 0; t < N_THREADS; t++)
        for (int k = 0; k < JOB_KINDS; k++)
            free(g_ref[t][k]);
    tp_model_free(g_mlm);
    tp_model_free(g_sent);
    tp_model_free(g_nli);
    tp_model_free(g_qwen);
    tp_model_free(g_gemma);
    tiny_rmtree(root);
    return tp_test_exit();
}
