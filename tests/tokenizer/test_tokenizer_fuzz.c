/*
 * test_tokenizer_fuzz.c — random inputs never crash the tokenizer (run under
 * the sanitizer build too), and a few properties hold on them:
 *   - random bytes: encode fails with TP_ERR_INPUT exactly when the bytes are
 *     not valid UTF-8 (checked with core's validator), else succeeds;
 *   - random Unicode (mixed scripts, combining marks, spaces, controls, pieces
 *     of added tokens): encode succeeds, offsets are ordered and in range, the
 *     word cache and the long-word cut give the same ids and offsets as plain
 *     BPE (word_cache = false), and
 *     for Qwen3 decode(encode(s)) == NFC(s) (NFC by utf8proc directly);
 *   - batches give the same ids with 1 thread and with 3;
 *   - random ids: decode succeeds with valid UTF-8, and streaming them gives
 *     whole UTF-8 chunks whose concatenation is the full decode;
 *   - a long single-"word" Gemma 3 input (when ../shared is present) encodes;
 *   - corrupted copies of ModernBERT's tokenizer.json load or fail cleanly.
 * Fixed seed (TPIPE_FUZZ_SEED overrides, TPIPE_FUZZ_ITERS sets the count):
 * failures reproduce. Kept to a few seconds.
 */
#include "test_util.h"
#include "tokenizer/tokenizer.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <utf8proc.h>

static uint64_t rng = 0x1234567887654321ull;
static uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static const char *pieces[] = {"<|im_start|>",
                               "<|im_end|>",
                               "<think>",
                               "[MASK]",
                               "[CLS]",
                               "<bos>",
                               "<start_of_turn>",
                               "\xe2\x96\x81",
                               "\xc4\xa0",
                               "<0x41>",
                               "<table>",
                               "  ",
                               "\n\n",
                               "\t",
                               "'s",
                               "n't",
                               "|||IP_ADDRESS|||",
                               "<|endoftext|>",
                               "[unused0]",
                               ">\xe2\x96\x81</",
                               "> </",
                               "<b> </b>",
                               "    "};

static size_t random_unicode(char *out, size_t max_chars) {
    static const uint32_t ranges[][2] = {
        {0x20, 0x7E},        {0x00, 0x1F},       {0xA0, 0x17F},      {0x300, 0x36F},
        {0x370, 0x3FF},      {0x400, 0x4FF},     {0x590, 0x5FF},     {0x600, 0x6FF},
        {0x900, 0x97F},      {0xE00, 0xE7F},     {0x1100, 0x11FF},   {0x2000, 0x206F},
        {0x3000, 0x30FF},    {0x4E00, 0x9FFF},   {0xAC00, 0xD7A3},   {0xFF00, 0xFFEF},
        {0xFFF0, 0xFFFF},    {0x1F300, 0x1FAFF}, {0x20000, 0x2A6DF}, {0xE000, 0xF8FF},
        {0x10FFF0, 0x10FFFF}};
    size_t n = 0, chars = rnd() % (max_chars + 1);
    for (size_t i = 0; i < chars; i++) {
        if (rnd() % 10 == 0) {
            const char *p = pieces[rnd() % (sizeof pieces / sizeof pieces[0])];
            memcpy(out + n, p, strlen(p));
            n += strlen(p);
            /* Added tokens are cut out before normalization (as HF does), so a
             * combining mark after "<think>" does not compose with its '>':
             * keep the NFC round-trip check simple by following with ASCII. */
            out[n++] = 'x';
            continue;
        }
        size_t r = rnd() % (sizeof ranges / sizeof ranges[0]);
        if (rnd() % 3 == 0)
            r = 0; /* plenty of ASCII */
        uint32_t cp = ranges[r][0] + rnd() % (ranges[r][1] - ranges[r][0] + 1);
        n += (size_t)tp_utf8_encode(cp, out + n);
    }
    out[n] = '\0';
    return n;
}

static void fuzz(const char *dir, bool roundtrip, int iters) {
    tp_tokenizer *tok = NULL;
    tp_error err;
    if (tp_tok_load(dir, &tok, &err) != TP_OK) {
        CHECK_MSG(0, "%s", err.message);
        return;
    }
    tp_tok_scratch *S = tp_tok_scratch_create(tok);
    tp_tok_encode_params p = tp_tok_encode_default_params();
    char buf[4096];
    for (int it = 0; it < iters; it++) {
        /* random bytes */
        size_t n = rnd() % 64;
        for (size_t i = 0; i < n; i++)
            buf[i] = (char)(rnd() & 0xff);
        if (rnd() % 2) /* mostly-ASCII bytes with a few high ones */
            for (size_t i = 0; i < n; i++)
                buf[i] = (rnd() % 8) ? (char)(0x20 + rnd() % 95) : buf[i];
        bool valid = tp_utf8_validate(buf, n) == n;
        tp_encoding e;
        p.add_special_tokens = rnd() % 2;
        tp_status st = tp_tok_encode(tok, S, buf, n, NULL, 0, &p, &e, &err);
        CHECK_MSG(valid ? st == TP_OK : st == TP_ERR_INPUT, "iter %d: %s", it, tp_status_name(st));
        tp_encoding_free(&e);

        /* random Unicode */
        n = random_unicode(buf, 200);
        st = tp_tok_encode(tok, S, buf, n, NULL, 0, &p, &e, &err);
        CHECK_MSG(st == TP_OK, "iter %d: %s", it, err.message);
        if (st == TP_OK) {
            for (size_t i = 0; i < e.n; i++)
                CHECK(e.offsets[2 * i] <= e.offsets[2 * i + 1] && e.offsets[2 * i + 1] <= n);
            tp_tok_decode_params dp = {.skip_special_tokens = false,
                                       .clean_up_tokenization_spaces = 0};
            char *s = NULL;
            size_t len = 0;
            p.add_special_tokens = false;
            tp_encoding e2;
            CHECK(tp_tok_encode(tok, S, buf, n, NULL, 0, &p, &e2, &err) == TP_OK);
            /* the word cache changes nothing: same ids and offsets without it */
            tp_encoding e4;
            p.word_cache = false;
            CHECK(tp_tok_encode(tok, S, buf, n, NULL, 0, &p, &e4, &err) == TP_OK);
            p.word_cache = true;
            CHECK(e4.n == e2.n && (e2.n == 0 || (memcmp(e4.ids, e2.ids, e2.n * 4) == 0 &&
                                                 memcmp(e4.offsets, e2.offsets, e2.n * 8) == 0)));
            tp_encoding_free(&e4);
            CHECK(tp_tok_decode(tok, e2.ids, e2.n, &dp, &s, &len, &err) == TP_OK);
            if (roundtrip && s) {
                utf8proc_uint8_t *nfc = NULL;
                utf8proc_ssize_t m =
                    utf8proc_map((const utf8proc_uint8_t *)buf, (utf8proc_ssize_t)n, &nfc,
                                 UTF8PROC_STABLE | UTF8PROC_COMPOSE);
                /* buf has no NUL (code points from 0 are possible: compare lengths) */
                bool same = m >= 0 && (size_t)m == len && memcmp(nfc, s, len) == 0;
                CHECK_MSG(same, "iter %d: round trip differs", it);
                if (!same) {
                    fprintf(stderr, "  input:");
                    for (size_t i = 0; i < n; i++)
                        fprintf(stderr, " %02x", (unsigned char)buf[i]);
                    fprintf(stderr, "\n  nfc (%ld): ", (long)m);
                    for (utf8proc_ssize_t i = 0; i < m; i++)
                        fprintf(stderr, " %02x", nfc[i]);
                    fprintf(stderr, "\n  decoded (%zu):", len);
                    for (size_t i = 0; i < len; i++)
                        fprintf(stderr, " %02x", (unsigned char)s[i]);
                    fprintf(stderr, "\n");
                }
                free(nfc);
            }
            free(s);
            tp_encoding_free(&e2);
            /* a pair, truncated */
            tp_encoding e3;
            p.add_special_tokens = true;
            p.max_length = 1 + rnd() % 16;
            st = tp_tok_encode(tok, S, buf, n, buf, tp_utf8_complete_prefix(buf, n / 2), &p, &e3,
                               &err);
            CHECK(st == TP_OK && e3.n <= p.max_length + 4);
            tp_encoding_free(&e3);
            p.max_length = 0;
        }
        tp_encoding_free(&e);

        /* random ids: decode and stream */
        size_t vocab = tp_tok_vocab_size(tok);
        int32_t ids[24];
        size_t k = rnd() % 24;
        for (size_t i = 0; i < k; i++)
            ids[i] = (int32_t)(rnd() % vocab);
        tp_tok_decode_params dp = {.skip_special_tokens = rnd() % 2,
                                   .clean_up_tokenization_spaces = 0};
        char *full = NULL;
        size_t full_len = 0;
        CHECK(tp_tok_decode(tok, ids, k, &dp, &full, &full_len, &err) == TP_OK);
        CHECK(full && tp_utf8_validate(full, full_len) == full_len);
        tp_tok_stream *ds = tp_tok_stream_create(tok, &dp);
        tp_buf all = {0};
        for (size_t i = 0; i < k; i++) {
            size_t before = all.len;
            CHECK(tp_tok_stream_step(ds, ids[i], &all, &err) == TP_OK);
            CHECK(tp_utf8_validate(all.data ? all.data + before : "", all.len - before) ==
                  all.len - before);
        }
        CHECK(tp_tok_stream_flush(ds, &all, &err) == TP_OK);
        CHECK_MSG(all.len == full_len && (full_len == 0 || memcmp(all.data, full, full_len) == 0),
                  "iter %d: stream differs from decode", it);
        tp_buf_free(&all);
        tp_tok_stream_free(ds);
        free(full);
    }
    /* batch: the same results with 1 thread and with a pool of 3 */
    enum { NB = 96 };
    char *texts[NB];
    for (int i = 0; i < NB; i++) {
        texts[i] = malloc(4096);
        if (texts[i])
            random_unicode(texts[i], 200);
    }
    tp_encoding b1[NB], b3[NB];
    tp_pool *pool = tp_pool_create(3, &err);
    CHECK(pool && tp_tok_encode_batch(tok, NULL, (const char *const *)texts, NULL, NB, NULL, b1,
                                      &err) == TP_OK);
    CHECK(pool && tp_tok_encode_batch(tok, pool, (const char *const *)texts, NULL, NB, NULL, b3,
                                      &err) == TP_OK);
    for (int i = 0; pool && i < NB; i++) {
        CHECK(b1[i].status == b3[i].status && b1[i].n == b3[i].n &&
              (b1[i].n == 0 || memcmp(b1[i].ids, b3[i].ids, b1[i].n * sizeof(int32_t)) == 0));
        tp_encoding_free(&b1[i]);
        tp_encoding_free(&b3[i]);
    }
    tp_pool_destroy(pool);
    for (int i = 0; i < NB; i++)
        free(texts[i]);
    tp_tok_scratch_free(S);
    tp_tok_free(tok);
}

/* Corrupted tokenizer.json files (truncated, bytes changed): the load either
 * succeeds or fails with a message naming the file; it never crashes. */
static void fuzz_load(const char *dir, int iters) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    char *data = NULL;
    size_t len = 0;
    tp_error err;
    if (tp_read_file(path, &data, &len, &err)) {
        CHECK_MSG(0, "%s", err.message);
        return;
    }
    char tmp[] = "/tmp/tp_tok_fuzz_XXXXXX";
    if (!mkdtemp(tmp)) {
        free(data);
        CHECK(0);
        return;
    }
    char out[256];
    snprintf(out, sizeof out, "%s/tokenizer.json", tmp);
    for (int it = 0; it < iters; it++) {
        size_t n = len;
        char saved[8];
        size_t at = 0, k = 1 + rnd() % 8;
        if (it % 2 == 0) {
            n = rnd() % len; /* truncated */
        } else {
            /* change a few bytes near the start or the end (the small components) */
            at = rnd() % 2 ? rnd() % 4096 : len - 1 - rnd() % 4096;
            if (at + k > len)
                k = len - at;
            memcpy(saved, data + at, k);
            for (size_t i = 0; i < k; i++)
                data[at + i] = "{}[]\",:0 a\\"[rnd() % 12];
        }
        FILE *f = fopen(out, "wb");
        if (f) {
            fwrite(data, 1, n, f);
            fclose(f);
        }
        if (it % 2 == 1)
            memcpy(data + at, saved, k);
        tp_tokenizer *tok = NULL;
        tp_status st = tp_tok_load(tmp, &tok, &err);
        CHECK_MSG(st == TP_OK || (tok == NULL && strstr(err.message, "tokenizer.json") != NULL),
                  "iter %d: %s: %s", it, tp_status_name(st), err.message);
        if (tok) { /* whatever loaded must still encode and decode */
            tp_encoding e;
            if (tp_tok_encode(tok, NULL, "Hello [MASK] world", (size_t)-1, NULL, 0, NULL, &e,
                              &err) == TP_OK) {
                char *s = NULL;
                tp_tok_decode(tok, e.ids, e.n, NULL, &s, NULL, &err);
                free(s);
            }
            tp_encoding_free(&e);
        }
        tp_tok_free(tok);
    }
    unlink(out);
    rmdir(tmp);
    free(data);
}

int main(void) {
    int iters = getenv("TPIPE_FUZZ_ITERS") ? atoi(getenv("TPIPE_FUZZ_ITERS")) : 300;
    if (getenv("TPIPE_FUZZ_SEED"))
        rng = strtoull(getenv("TPIPE_FUZZ_SEED"), NULL, 0) | 1;
    fuzz(tp_test_data("tokenizers/qwen3"), true, iters);
    fuzz(tp_test_data("tokenizers/modernbert"), false, iters);
    fuzz_load(tp_test_data("tokenizers/modernbert"), iters / 10 + 2);
    const char *g = tp_test_shared("tokenizers/gemma3");
    if (!g) {
        printf("SKIP: ../shared/tokenizers/gemma3 absent: Gemma 3 part not run\n");
        return tp_test_exit();
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", g);
    fuzz(dir, false, iters);
    /* Gemma 3's one merge across a "▁" cut, ('>', '▁</'): the cut must not
     * split it (same ids as plain BPE) */
    {
        tp_tokenizer *g3 = NULL;
        tp_error e3;
        if (tp_tok_load(dir, &g3, &e3) == TP_OK) {
            const char *txt = "The quick brown fox jumps over the lazy dog again and again> </x "
                              "and <div>> </div> then a>\xe2\x96\x81</b tail words here.";
            tp_tok_encode_params p1 = tp_tok_encode_default_params(), p2 = p1;
            p2.word_cache = false;
            tp_encoding a, b;
            CHECK(tp_tok_encode(g3, NULL, txt, (size_t)-1, NULL, 0, &p1, &a, &e3) == TP_OK);
            CHECK(tp_tok_encode(g3, NULL, txt, (size_t)-1, NULL, 0, &p2, &b, &e3) == TP_OK);
            CHECK(a.n == b.n && a.n > 0 && memcmp(a.ids, b.ids, a.n * sizeof *a.ids) == 0);
            int32_t cross = tp_tok_token_to_id(g3, ">\xe2\x96\x81</");
            bool found = false;
            for (size_t i = 0; i < b.n; i++)
                found = found || b.ids[i] == cross;
            CHECK(cross >= 0 && found); /* the case really occurs in this text */
            tp_encoding_free(&a);
            tp_encoding_free(&b);
            tp_tok_free(g3);
        }
    }
    /* one very long word (no spaces, no newlines): must not be quadratic */
    tp_tokenizer *tok = NULL;
    tp_error err;
    if (tp_tok_load(dir, &tok, &err) == TP_OK) {
        size_t n = 200000;
        char *s = malloc(n + 1);
        for (size_t i = 0; i < n; i++)
            s[i] = (char)('a' + rnd() % 26);
        s[n] = '\0';
        tp_encoding e;
        double t0 = tp_now();
        CHECK(tp_tok_encode(tok, NULL, s, n, NULL, 0, NULL, &e, &err) == TP_OK);
        printf("gemma3: one 200000-byte word -> %zu tokens in %.3f s\n", e.n, tp_now() - t0);
        CHECK(e.n > 1000 && e.n < n);
        tp_encoding_free(&e);
        free(s);
        tp_tok_free(tok);
    }
    return tp_test_exit();
}
