/*
 * enc_test_util.h — shared bits of the encoder pipeline tests: making the tiny
 * models, the raw network logits for independent checks, a text corpus of
 * very different lengths, and a deterministic shuffle.
 */
#ifndef TP_ENC_TEST_UTIL_H
#define TP_ENC_TEST_UTIL_H

#include "batch/encoder_run.h"
#include "pipelines/model_internal.h"
#include "test_util.h"
#include "tiny_model.h"

#include <math.h>

/* Skips the test (exit 0) when the ModernBERT tokenizer is not available. */
static inline void enc_require_tokenizer(void) {
    if (!tiny_tokenizer_dir()) {
        printf("SKIP: the ModernBERT tokenizer is in neither tests/data/tokenizers/modernbert "
               "nor ../shared/tokenizers/modernbert\n");
        exit(0);
    }
}

static inline tp_model *enc_load(const char *dir, const tp_model_params *p) {
    tp_model *m = NULL;
    tp_error err;
    tp_status s = tp_model_load(dir, p, &m, &err);
    if (s != TP_OK) {
        fprintf(stderr, "loading %s: %s: %s\n", dir, tp_status_name(s), err.message);
        exit(1);
    }
    return m;
}

/* Encodes text (and pair) as the pipelines do, with special tokens, no
 * truncation. Caller frees with tp_encoding_free. */
static inline tp_encoding enc_encode(const tp_model *m, const char *text, const char *pair) {
    tp_encoding e;
    tp_error err;
    tp_tok_encode_params p = tp_tok_encode_default_params();
    p.add_special_tokens = true;
    p.strategy = TP_TRUNC_ONLY_FIRST;
    tp_status s = tp_tok_encode(m->tok, NULL, text, (size_t)-1, pair, (size_t)-1, &p, &e, &err);
    if (s != TP_OK) {
        fprintf(stderr, "encode: %s\n", err.message);
        exit(1);
    }
    return e;
}

/* Raw logits straight from the network for one sequence: MLM logits at
 * rows (n_rows, V) or classifier logits (L). Caller frees. */
static inline float *enc_raw(const tp_model *m, const int32_t *ids, size_t n, const int32_t *rows,
                             size_t n_rows) {
    const tp_net *net = m->net;
    int32_t cu[2] = {0, (int32_t)n};
    bool mlm = net->head == TP_ENC_HEAD_MLM;
    size_t out_n = mlm ? n_rows * (size_t)net->vocab_size : (size_t)net->num_labels;
    float *out = malloc(out_n * sizeof(float));
    tp_enc_batch b = {.ids = ids,
                      .cu_seqlens = cu,
                      .n_seqs = 1,
                      .n_tokens = n,
                      .mlm_rows = rows,
                      .n_mlm_rows = mlm ? n_rows : 0,
                      .mlm_logits = mlm ? out : NULL,
                      .cls_logits = mlm ? NULL : out};
    tp_arena a = {0};
    tp_error err;
    if (tp_arena_init(&a, net->enc->scratch_bytes(net, n, 1, n_rows), &err) != TP_OK ||
        net->enc->forward(net, &b, &a, NULL, &err) != TP_OK) {
        fprintf(stderr, "raw forward: %s\n", err.message);
        exit(1);
    }
    tp_arena_free(&a);
    return out;
}

/* Independent softmax in double. */
static inline void enc_softmax_d(const float *x, double *p, size_t n) {
    double mx = x[0], s = 0.0;
    for (size_t i = 1; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    for (size_t i = 0; i < n; i++)
        s += exp((double)x[i] - mx);
    for (size_t i = 0; i < n; i++)
        p[i] = exp((double)x[i] - mx) / s;
}

/* Words to build texts of very different lengths from. */
static const char *const kEncWords[] = {
    "the",   "quick",  "brown",   "fox",    "jumps",  "over",    "lazy",     "dog",
    "while", "Paris",  "remains", "a",      "lovely", "city",    "in",       "spring",
    "café",  "naïve",  "über",    "東京",   "🙂",   "really",  "terrible", "movie",
    "great", "acting", "but",     "boring", "plot",   "however", "music",    "was",
};

/* A text of about n_words words (seeded); `mask` inserts "[MASK]" at word mask_at
 * (negative: none). Returns malloc'd. */
static inline char *enc_text(size_t n_words, unsigned seed, int mask_at) {
    tp_buf b = {0};
    uint32_t x = seed * 2654435761u + 1u;
    for (size_t i = 0; i < n_words; i++) {
        x = x * 1103515245u + 12345u;
        if (i)
            tp_buf_puts(&b, " ");
        if ((int)i == mask_at)
            tp_buf_puts(&b, "[MASK]");
        else
            tp_buf_puts(&b, kEncWords[(x >> 16) % (sizeof kEncWords / sizeof kEncWords[0])]);
    }
    tp_buf_puts(&b, ".");
    return tp_buf_take(&b);
}

/* Fisher-Yates with a fixed seed: perm[i] = original index at position i. */
static inline void enc_shuffle(size_t *perm, size_t n, unsigned seed) {
    uint32_t x = seed | 1u;
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    for (size_t i = n; i > 1; i--) {
        x = x * 1103515245u + 12345u;
        size_t j = (x >> 8) % i;
        size_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}

/* Peak resident set size in KiB (VmHWM) and current (VmRSS). */
static inline long enc_proc_kib(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, key, kl) && line[kl] == ':') {
            v = strtol(line + kl + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

#endif
