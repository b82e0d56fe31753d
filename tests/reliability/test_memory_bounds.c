/*
 * test_memory_bounds.c — bounded memory, one case per pipeline
 * (docs/RELIABILITY.md, "Memory bounds"): the configured budget holds N items
 * at once (encoders: memory_budget, worked out with the engine's own cost
 * model tp_enc_cost; generation: kv_budget over one item's measured KV peak),
 * the batch has 100 x N items, and
 *   - the peak resident memory during the batch (VmHWM, reset through
 *     /proc/self/clear_refs just before) grows over the resident memory after
 *     a warm-up call (weights mapped and touched, tokenizer loaded) by at most
 *     budget + inputs/results + a fixed 8 MiB (allocator slack, thread
 *     stacks, per-call tables);
 *   - every item succeeds and a sample equals its single call bit for bit.
 * Under sanitizers (TPIPE_SANITIZER_BUILD=1 or ASan compiled in) only the RSS
 * assertion is skipped, with a SKIP line: quarantine and shadow memory make
 * RSS meaningless there.
 */
#include "../encoder/tiny_model.h"
#include "batch/encoder_run.h"
#include "pipelines/model_internal.h"
#include "test_util.h"
#include "tpipe.h"

#define FIXED_OVERHEAD ((size_t)8 << 20)

static char g_root[256];
static bool g_rss = true;

static long proc_kib(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':') {
            v = strtol(line + kl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* Resets VmHWM to the current RSS; false when the kernel does not allow it. */
static bool reset_peak(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f)
        return false;
    bool ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}

typedef struct rss_probe {
    long before_kib;
    bool ok;
} rss_probe;

static rss_probe rss_begin(void) {
    rss_probe p = {.ok = g_rss && reset_peak()};
    p.before_kib = proc_kib("VmRSS");
    return p;
}

static void rss_end(const rss_probe *p, const char *what, size_t budget, size_t io_allow) {
    long peak = proc_kib("VmHWM");
    long grew = peak - p->before_kib;
    size_t limit = budget + io_allow + FIXED_OVERHEAD;
    printf("%-12s RSS after warm-up %ld KiB, peak %ld KiB: grew %ld KiB; limit %zu KiB "
           "(budget %zu + inputs/results %zu + fixed %zu)\n",
           what, p->before_kib, peak, grew, limit >> 10, budget >> 10, io_allow >> 10,
           FIXED_OVERHEAD >> 10);
    if (!g_rss) {
        printf("SKIP: %s: RSS bound not asserted under sanitizers\n", what);
        return;
    }
    if (!p->ok) {
        printf("SKIP: %s: /proc/self/clear_refs not writable: RSS bound not asserted\n", what);
        return;
    }
    CHECK_MSG((size_t)grew * 1024 <= limit, "%s: peak RSS grew by %ld KiB, limit %zu KiB", what,
              grew, limit >> 10);
}

/* Items of n_tokens tokens (n_rows MLM rows each) that fit the model's budget together. */
static size_t items_in_budget(const tp_model *m, size_t n_tokens, size_t n_rows, bool want_cls) {
    size_t s = 0;
    while ((s + 1) * n_tokens <= m->max_batch_tokens &&
           tp_enc_cost(m->net, (s + 1) * n_tokens, s + 1, (s + 1) * n_rows, want_cls) <=
               m->memory_budget)
        s++;
    return s;
}

static size_t n_tokens_of(const tp_model *m, const char *text, const char *pair) {
    tp_encoding e;
    tp_error err;
    tp_tok_encode_params p = tp_tok_encode_default_params();
    p.add_special_tokens = true;
    CHECK(tp_tok_encode(m->tok, NULL, text, strlen(text), pair, pair ? strlen(pair) : 0, &p, &e,
                        &err) == TP_OK);
    size_t n = e.n;
    tp_encoding_free(&e);
    return n;
}

static tp_model *load(const char *dir, size_t budget) {
    tp_model *m = NULL;
    tp_error err;
    tp_model_params p = tp_model_default_params();
    p.n_threads = 2;
    p.memory_budget = budget;
    if (tp_model_load(dir, &p, &m, &err) != TP_OK) {
        fprintf(stderr, "loading %s: %s\n", dir, err.message);
        exit(1);
    }
    return m;
}

/* ---------------------------------------------------------------- fill-mask */

static void test_fill_mask(void) {
    char d[512];
    snprintf(d, sizeof d, "%s/mlm", g_root);
    tiny_cfg c = tiny_default("ModernBertForMaskedLM");
    CHECK(tiny_write_model(d, &c) == 0);
    /* a mask row's logits are 50368 floats (197 KiB): 4 MiB holds ~20 items */
    const size_t budget = (size_t)4 << 20;
    tp_model *m = load(d, budget);
    const char *text = "The lovely [MASK] of Paris in spring.";
    size_t nt = n_tokens_of(m, text, NULL), per = items_in_budget(m, nt, 1, false);
    size_t n = 100 * per;
    printf("fill-mask: %zu tokens per item, %zu items per micro-batch, batch of %zu\n", nt, per, n);
    CHECK(per >= 2);
    const char **texts = malloc(n * sizeof *texts);
    for (size_t i = 0; i < n; i++)
        texts[i] = text;
    tp_fill_mask_result *out = calloc(n, sizeof *out), ref;
    tp_error err;
    CHECK(tp_fill_mask_predict_top_k(m, text, 1, NULL, &ref, &err) == TP_OK); /* warm-up */
    size_t io = n * (sizeof *out + sizeof(tp_encoding) + nt * 32 + 3 * strlen(text) + 256);
    rss_probe p = rss_begin();
    CHECK(tp_fill_mask_predict_top_k_batch(m, texts, n, 1, NULL, out, &err) == TP_OK);
    rss_end(&p, "fill-mask", budget, io);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += out[i].error.status != TP_OK || out[i].n_masks != 1 ||
               out[i].predictions[0].token != ref.predictions[0].token ||
               out[i].predictions[0].score != ref.predictions[0].score ||
               strcmp(out[i].predictions[0].sequence, ref.predictions[0].sequence) != 0;
    CHECK_MSG(bad == 0, "fill-mask: %zu of %zu items differ from the single call", bad, n);
    tp_fill_mask_result_free(&ref);
    tp_fill_mask_result_free_all(out, n);
    free(out);
    free(texts);
    tp_model_free(m);
}

/* ---------------------------------------------------------------- sentiment, zero-shot */

static const char *const kTexts[4] = {
    "I loved this movie, the acting was great.",
    "Terrible plot, boring, but the music was fine.",
    "café naïve über 東京 🙂",
    "A lovely city in spring, however the dog was lazy and the fox was quick.",
};

static void test_sentiment(void) {
    char d[512];
    snprintf(d, sizeof d, "%s/cls", g_root);
    static const char *const labels[] = {"NEGATIVE", "POSITIVE", NULL};
    tiny_cfg c = tiny_default("ModernBertForSequenceClassification");
    c.hidden = 64;
    c.intermediate = 96;
    c.labels = labels;
    CHECK(tiny_write_model(d, &c) == 0);
    const size_t budget = (size_t)1 << 20;
    tp_model *m = load(d, budget);
    size_t nt = n_tokens_of(m, kTexts[3], NULL), per = items_in_budget(m, nt, 0, true);
    size_t n = 100 * per;
    printf("sentiment: <= %zu tokens per item, %zu items per micro-batch, batch of %zu\n", nt, per,
           n);
    CHECK(per >= 2);
    const char **texts = malloc(n * sizeof *texts);
    for (size_t i = 0; i < n; i++)
        texts[i] = kTexts[i % 4];
    tp_sentiment_result *out = calloc(n, sizeof *out), ref[4];
    tp_error err;
    for (int k = 0; k < 4; k++)
        CHECK(tp_sentiment_predict_all_scores(m, kTexts[k], NULL, &ref[k], &err) == TP_OK);
    size_t io = n * (sizeof *out + sizeof(tp_encoding) + nt * 32 + 2 * 64 + 256);
    rss_probe p = rss_begin();
    CHECK(tp_sentiment_predict_all_scores_batch(m, texts, n, NULL, out, &err) == TP_OK);
    rss_end(&p, "sentiment", budget, io);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        const tp_sentiment_result *a = &out[i], *b = &ref[i % 4];
        bad += a->error.status != TP_OK || a->n_scores != 2 || a->scores[0].id != b->scores[0].id ||
               a->scores[0].score != b->scores[0].score || a->scores[1].score != b->scores[1].score;
    }
    CHECK_MSG(bad == 0, "sentiment: %zu of %zu items differ from the single call", bad, n);
    tp_sentiment_result_free_all(ref, 4);
    tp_sentiment_result_free_all(out, n);
    free(out);
    free(texts);
    tp_model_free(m);
}

static void test_zero_shot(void) {
    char d[512];
    snprintf(d, sizeof d, "%s/nli", g_root);
    static const char *const nli[] = {"entailment", "neutral", "contradiction", NULL};
    tiny_cfg c = tiny_default("ModernBertForSequenceClassification");
    c.hidden = 64;
    c.intermediate = 96;
    c.labels = nli;
    CHECK(tiny_write_model(d, &c) == 0);
    const size_t budget = (size_t)1 << 20;
    tp_model *m = load(d, budget);
    static const char *const labels[3] = {"travel", "cooking", "politics"};
    /* an item is its 3 (text, hypothesis) pairs */
    size_t nt = n_tokens_of(m, kTexts[3], "This example is cooking.");
    size_t per = items_in_budget(m, 3 * nt, 0, true);
    size_t n = 100 * per;
    printf("zero-shot: 3 pairs of <= %zu tokens per item, %zu items per micro-batch, batch of "
           "%zu\n",
           nt, per, n);
    CHECK(per >= 2);
    const char **texts = malloc(n * sizeof *texts);
    for (size_t i = 0; i < n; i++)
        texts[i] = kTexts[i % 4];
    tp_zero_shot_result *out = calloc(n, sizeof *out), ref[4];
    tp_error err;
    for (int k = 0; k < 4; k++)
        CHECK(tp_zero_shot_predict(m, kTexts[k], labels, 3, NULL, &ref[k], &err) == TP_OK);
    size_t io = n * (sizeof *out + 3 * (sizeof(tp_encoding) + nt * 32 + 128) + 256);
    rss_probe p = rss_begin();
    CHECK(tp_zero_shot_predict_batch(m, texts, n, labels, 3, NULL, out, &err) == TP_OK);
    rss_end(&p, "zero-shot", budget, io);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        const tp_zero_shot_result *a = &out[i], *b = &ref[i % 4];
        bad += a->error.status != TP_OK || a->n_labels != 3;
        for (size_t j = 0; !bad && j < 3; j++)
            bad += strcmp(a->labels[j], b->labels[j]) != 0 || a->scores[j] != b->scores[j];
    }
    CHECK_MSG(bad == 0, "zero-shot: %zu of %zu items differ from the single call", bad, n);
    tp_zero_shot_result_free_all(ref, 4);
    tp_zero_shot_result_free_all(out, n);
    free(out);
    free(texts);
    tp_model_free(m);
}

/* ---------------------------------------------------------------- generation */

static void test_generation(void) {
    const char *qw = tp_test_shared_or_data("tokenizers/qwen3");
    if (!qw) {
        printf("SKIP: generation: no Qwen3 tokenizer in tests/data or ../shared\n");
        return;
    }
    char d[512], cmd[8192];
    snprintf(d, sizeof d, "%s/qwen3", g_root);
    const char *build = getenv("TPIPE_BUILD");
    /* 4 layers x 8 KV heads x 128 x 2 (K, V) x 4 bytes = 32 KiB of KV cache per token */
    snprintf(cmd, sizeof cmd,
             "'%s/tp_mkmodel' --family qwen3 --hidden 64 --layers 4 --heads 8 --kv-heads 8 "
             "--head-dim 128 --intermediate 128 --max-positions 256 --dtype bf16 --seed 9 --quiet "
             "--tokenizer-dir '%s' --out '%s'",
             build ? build : ".", qw, d);
    if (system(cmd) != 0) {
        CHECK_MSG(0, "tp_mkmodel failed");
        return;
    }
    tp_model *m = load(d, 0);
    static const char *const prompts[4] = {"Hello there", "The quick brown fox", "Once upon a time",
                                           "1 2 3 4"};
    tp_gen_options o = tp_gen_options_unset();
    o.max_new_tokens = 6;
    o.temperature = 0;
    tp_generate_params gp = tp_generate_default_params();
    gp.options = o;
    tp_gen_result ref[4];
    tp_generate_stats st;
    tp_error err;
    size_t one = 0;
    for (int k = 0; k < 4; k++) { /* also the warm-up */
        CHECK(tp_completion(m, prompts[k], &gp, &ref[k], &st, &err) == TP_OK);
        one = st.kv_peak_bytes > one ? st.kv_peak_bytes : one;
    }
    const size_t budget = 4 * one; /* holds 4 items (the largest one's KV) */
    const size_t n = 100 * 4;
    printf("generation: one item's KV peak %zu KiB, budget %zu KiB (4 items), batch of %zu\n",
           one >> 10, budget >> 10, n);
    const char **texts = malloc(n * sizeof *texts);
    for (size_t i = 0; i < n; i++)
        texts[i] = prompts[i % 4];
    tp_gen_result *out = calloc(n, sizeof *out);
    gp.kv_budget = budget;
    gp.max_batch = 64;
    size_t io = n * (sizeof *out + 512);
    rss_probe p = rss_begin();
    CHECK(tp_completion_batch(m, texts, n, &gp, NULL, out, &st, &err) == TP_OK);
    rss_end(&p, "generation", budget, io);
    CHECK_MSG(st.kv_peak_bytes <= budget, "KV peak %zu > budget %zu", st.kv_peak_bytes, budget);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        const tp_gen_result *a = &out[i], *b = &ref[i % 4];
        bad += a->error.status != TP_OK || a->completion_tokens != b->completion_tokens ||
               memcmp(a->tokens, b->tokens, a->completion_tokens * sizeof *a->tokens) != 0 ||
               strcmp(a->text, b->text) != 0;
    }
    CHECK_MSG(bad == 0, "generation: %zu of %zu items differ from the single call", bad, n);
    tp_gen_result_free_all(ref, 4);
    tp_gen_result_free_all(out, n);
    free(out);
    free(texts);
    tp_model_free(m);
}

int main(void) {
    if (!tiny_tokenizer_dir()) {
        printf("SKIP: the ModernBERT tokenizer is in neither tests/data nor ../shared\n");
        return 0;
    }
    const char *san = getenv("TPIPE_SANITIZER_BUILD");
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    g_rss = false;
#endif
    if (san && *san && strcmp(san, "0"))
        g_rss = false;
    if (proc_kib("VmHWM") < 0) {
        printf("SKIP: no VmHWM in /proc/self/status: RSS bounds not asserted\n");
        g_rss = false;
    }
    snprintf(g_root, sizeof g_root, "%s", tiny_tmpdir("membound"));
    test_fill_mask();
    test_sentiment();
    test_zero_shot();
    test_generation();
    tiny_rmtree(g_root);
    return tp_test_exit();
}
