/*
 * test_gguf_corrupt.c — the GGUF reader on malformed files:
 *   - a corpus of hand-made broken files (gguf_test_util.h), one per rule in
 *     docs/gguf.md: each must fail with the expected status and a message that
 *     names the file and the key or tensor at fault;
 *   - truncation of a valid file at every byte: always an error, never a crash;
 *   - mutation fuzz: thousands of randomly corrupted copies of a writer-made
 *     file (bit flips, interesting integers over length/count/offset fields,
 *     truncations). Each is rejected with a named error or, when still valid,
 *     every tensor byte and every array string is read (ASan checks bounds).
 */
#include "io/gguf.h"
#include "io_test_util.h"
#include "gguf_test_util.h"

/* A valid file: 3 keys, 2 tensors (F32 4x2 at 0, Q8_0 32 at 32). */
static void base_file(gb *b) {
    memset(b, 0, sizeof *b);
    gb_header(b, 3, 2, 3);
    gb_kv_str(b, "general.architecture", "qwen3");
    gb_kv_u32(b, "general.alignment", 32);
    gb_str(b, "tokenizer.ggml.tokens");
    gb_u32(b, 9);
    gb_u32(b, 8);
    gb_u64(b, 2);
    gb_str(b, "a");
    gb_str(b, "bc");
    const uint64_t ne0[2] = {4, 2}, ne1[1] = {32};
    gb_tinfo(b, "w.f32", 2, ne0, 0, 0);
    gb_tinfo(b, "w.q8", 1, ne1, 8, 32);
    gb_pad(b, 32);
    for (int i = 0; i < 32 + 34; i++)
        gb_u8(b, (uint8_t)i);
}

/* Expects open to fail with `want` and the message to contain every needle. */
static void expect_fail(const gb *b, const char *name, tp_status want, const char *n1,
                        const char *n2) {
    tp_gguf *g = NULL;
    tp_error err;
    memset(&err, 0, sizeof err);
    tp_status st = tp_gguf_open_memory(b->p, b->n, name, &g, &err);
    CHECK_MSG(st == want, "%s: got %s (%s)", name, tp_status_name(st), err.message);
    CHECK_MSG(io_contains(err.message, name), "%s: message lacks the file: %s", name, err.message);
    if (n1)
        CHECK_MSG(io_contains(err.message, n1), "%s: message lacks '%s': %s", name, n1,
                  err.message);
    if (n2)
        CHECK_MSG(io_contains(err.message, n2), "%s: message lacks '%s': %s", name, n2,
                  err.message);
    if (g)
        tp_gguf_close(g);
}

/* One tensor file with a custom tensor info, for the tensor rules. */
static void one_tensor(gb *b, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t off,
                       size_t data_bytes) {
    memset(b, 0, sizeof *b);
    gb_header(b, 3, 1, 0);
    gb_tinfo(b, "blk.0.attn_q.weight", n_dims, ne, type, off);
    gb_pad(b, 32);
    for (size_t i = 0; i < data_bytes; i++)
        gb_u8(b, 0);
}

static void test_corpus(void) {
    gb b;
    base_file(&b);
    tp_gguf *g = NULL;
    tp_error err;
    CHECK(tp_gguf_open_memory(b.p, b.n, "base.gguf", &g, &err) == TP_OK);
    tp_gguf_close(g);

    /* Truncation at every byte. */
    int trunc_ok = 0;
    for (size_t n = 0; n < b.n; n++) {
        g = NULL;
        tp_status st = tp_gguf_open_memory(b.p, n, "trunc.gguf", &g, &err);
        if (st == TP_ERR_FORMAT && io_contains(err.message, "trunc.gguf"))
            trunc_ok++;
        else
            CHECK_MSG(0, "truncated at %zu: %s %s", n, tp_status_name(st), err.message);
        if (g)
            tp_gguf_close(g);
    }
    CHECK_EQ_INT(trunc_ok, b.n);

    gb c;
    /* Header */
    base_file(&c);
    c.p[0] = 'g';
    expect_fail(&c, "magic.gguf", TP_ERR_FORMAT, "not a GGUF file", NULL);
    free(c.p);
    base_file(&c);
    c.p[4] = 1;
    expect_fail(&c, "v1.gguf", TP_ERR_UNSUPPORTED, "version 1", NULL);
    free(c.p);
    base_file(&c);
    c.p[4] = 4;
    expect_fail(&c, "v4.gguf", TP_ERR_FORMAT, "version 4", NULL);
    free(c.p);
    base_file(&c);
    c.p[4] = 0;
    c.p[7] = 3;
    expect_fail(&c, "be.gguf", TP_ERR_UNSUPPORTED, "big-endian", NULL);
    free(c.p);
    base_file(&c);
    memset(c.p + 8, 0xff, 8); /* n_tensors */
    expect_fail(&c, "ntensors.gguf", TP_ERR_FORMAT, "tensors", NULL);
    free(c.p);
    base_file(&c);
    memset(c.p + 16, 0x7f, 8); /* n_kv */
    expect_fail(&c, "nkv.gguf", TP_ERR_FORMAT, "key/values", NULL);
    free(c.p);
    base_file(&c);
    c.p[16] = 4; /* one key/value more than present: the tensor info is read as a key */
    expect_fail(&c, "nkv4.gguf", TP_ERR_FORMAT, NULL, NULL);
    free(c.p);
    /* Key string length past the end */
    base_file(&c);
    c.p[24 + 7] = 0x10;
    expect_fail(&c, "keylen.gguf", TP_ERR_FORMAT, "length", NULL);
    free(c.p);

    /* Metadata values */
    memset(&c, 0, sizeof c);
    gb_header(&c, 3, 0, 1);
    gb_str(&c, "bad.type");
    gb_u32(&c, 13);
    gb_u32(&c, 0);
    expect_fail(&c, "kvtype.gguf", TP_ERR_FORMAT, "bad.type", "unknown value type 13");
    free(c.p);
    memset(&c, 0, sizeof c);
    gb_header(&c, 3, 0, 1);
    gb_str(&c, "nested");
    gb_u32(&c, 9);
    gb_u32(&c, 9);
    gb_u64(&c, 1);
    gb_u32(&c, 4);
    gb_u64(&c, 1);
    gb_u32(&c, 7);
    expect_fail(&c, "nested.gguf", TP_ERR_UNSUPPORTED, "nested", NULL);
    free(c.p);
    memset(&c, 0, sizeof c);
    gb_header(&c, 3, 0, 1);
    gb_str(&c, "flag");
    gb_u32(&c, 7);
    gb_u8(&c, 2);
    expect_fail(&c, "bool.gguf", TP_ERR_FORMAT, "flag", "not 0 or 1");
    free(c.p);
    memset(&c, 0, sizeof c);
    gb_header(&c, 3, 0, 1);
    gb_str(&c, "big.arr");
    gb_u32(&c, 9);
    gb_u32(&c, 4);
    gb_u64(&c, 1ull << 61);
    gb_u32(&c, 7);
    expect_fail(&c, "arrcount.gguf", TP_ERR_FORMAT, "big.arr", NULL);
    free(c.p);
    memset(&c, 0, sizeof c);
    gb_header(&c, 3, 0, 1);
    gb_str(&c, "strs");
    gb_u32(&c, 9);
    gb_u32(&c, 8);
    gb_u64(&c, 2);
    gb_str(&c, "ok");
    gb_u64(&c, 1000); /* second string runs past the end */
    gb_raw(&c, "xy", 2);
    expect_fail(&c, "arrstr.gguf", TP_ERR_FORMAT, "strs", "string 1");
    free(c.p);
    memset(&c, 0, sizeof c);
    gb_header(&c, 3, 0, 1);
    gb_str(&c, "odd.elem");
    gb_u32(&c, 9);
    gb_u32(&c, 77);
    gb_u64(&c, 0);
    expect_fail(&c, "arrtype.gguf", TP_ERR_FORMAT, "odd.elem", "77");
    free(c.p);
    memset(&c, 0, sizeof c);
    gb_header(&c, 3, 0, 2);
    gb_kv_u32(&c, "dup.key", 1);
    gb_kv_u32(&c, "dup.key", 2);
    expect_fail(&c, "dupkey.gguf", TP_ERR_FORMAT, "dup.key", "twice");
    free(c.p);
    memset(&c, 0, sizeof c);
    gb_header(&c, 3, 0, 1);
    gb_kv_u32(&c, "", 1);
    expect_fail(&c, "emptykey.gguf", TP_ERR_FORMAT, "key 0", NULL);
    free(c.p);
    memset(&c, 0, sizeof c);
    gb_header(&c, 3, 0, 1);
    gb_kv_u32(&c, "bad\xff", 1);
    expect_fail(&c, "utf8key.gguf", TP_ERR_FORMAT, "\\xff", NULL);
    free(c.p);
    memset(&c, 0, sizeof c);
    gb_header(&c, 3, 0, 1);
    gb_kv_u32(&c, "general.alignment", 48);
    expect_fail(&c, "align48.gguf", TP_ERR_FORMAT, "general.alignment", "48");
    free(c.p);
    memset(&c, 0, sizeof c);
    gb_header(&c, 3, 0, 1);
    gb_kv_str(&c, "general.alignment", "32");
    expect_fail(&c, "aligntype.gguf", TP_ERR_FORMAT, "general.alignment", "string");
    free(c.p);

    /* Tensor infos */
    const uint64_t ok4[1] = {4};
    one_tensor(&c, 0, ok4, 0, 0, 16);
    expect_fail(&c, "ndims0.gguf", TP_ERR_FORMAT, "blk.0.attn_q.weight", "n_dims 0");
    free(c.p);
    const uint64_t five[5] = {1, 1, 1, 1, 4};
    one_tensor(&c, 5, five, 0, 0, 16);
    expect_fail(&c, "ndims5.gguf", TP_ERR_FORMAT, "blk.0.attn_q.weight", "n_dims 5");
    free(c.p);
    const uint64_t zero[2] = {4, 0};
    one_tensor(&c, 2, zero, 0, 0, 16);
    expect_fail(&c, "dim0.gguf", TP_ERR_FORMAT, "blk.0.attn_q.weight", "dim 1 is 0");
    free(c.p);
    const uint64_t huge[3] = {1ull << 32, 1ull << 32, 4};
    one_tensor(&c, 3, huge, 0, 0, 16);
    expect_fail(&c, "overflow.gguf", TP_ERR_FORMAT, "blk.0.attn_q.weight", "overflow");
    free(c.p);
    const uint64_t bytes_ovf[2] = {1ull << 40, 1ull << 22};
    one_tensor(&c, 2, bytes_ovf, 0, 0, 16);
    expect_fail(&c, "bytesovf.gguf", TP_ERR_FORMAT, "blk.0.attn_q.weight", NULL);
    free(c.p);
    one_tensor(&c, 1, ok4, 99, 0, 16);
    expect_fail(&c, "type99.gguf", TP_ERR_FORMAT, "blk.0.attn_q.weight", "unknown ggml type 99");
    free(c.p);
    const uint64_t n256[1] = {256};
    one_tensor(&c, 1, n256, 16, 0, 512);
    expect_fail(&c, "iq2.gguf", TP_ERR_UNSUPPORTED, "blk.0.attn_q.weight", "IQ2_XXS");
    free(c.p);
    one_tensor(&c, 1, n256, 2, 0, 512);
    expect_fail(&c, "q40.gguf", TP_ERR_UNSUPPORTED, "blk.0.attn_q.weight", "Q4_0");
    free(c.p);
    const uint64_t n33[1] = {33};
    one_tensor(&c, 1, n33, 8, 0, 64);
    expect_fail(&c, "q8row.gguf", TP_ERR_FORMAT, "blk.0.attn_q.weight", "block");
    free(c.p);
    one_tensor(&c, 1, ok4, 0, 8, 64);
    expect_fail(&c, "misaligned.gguf", TP_ERR_FORMAT, "blk.0.attn_q.weight", "alignment");
    free(c.p);
    one_tensor(&c, 1, ok4, 0, 32, 40);
    expect_fail(&c, "pastend.gguf", TP_ERR_FORMAT, "blk.0.attn_q.weight", "past the end");
    free(c.p);
    one_tensor(&c, 1, ok4, 0, 1ull << 63, 40);
    expect_fail(&c, "hugeoff.gguf", TP_ERR_FORMAT, "blk.0.attn_q.weight", NULL);
    free(c.p);
    /* overlap: two 16-element f32 tensors (64 bytes) 32 bytes apart */
    memset(&c, 0, sizeof c);
    gb_header(&c, 3, 2, 0);
    const uint64_t n16[1] = {16};
    gb_tinfo(&c, "t.a", 1, n16, 0, 0);
    gb_tinfo(&c, "t.b", 1, n16, 0, 32);
    gb_pad(&c, 32);
    for (int i = 0; i < 128; i++)
        gb_u8(&c, 0);
    expect_fail(&c, "overlap.gguf", TP_ERR_FORMAT, "t.a", "overlap");
    free(c.p);
    memset(&c, 0, sizeof c);
    gb_header(&c, 3, 2, 0);
    gb_tinfo(&c, "t.a", 1, n16, 0, 0);
    gb_tinfo(&c, "t.a", 1, n16, 0, 64);
    gb_pad(&c, 32);
    for (int i = 0; i < 128; i++)
        gb_u8(&c, 0);
    expect_fail(&c, "duptensor.gguf", TP_ERR_FORMAT, "t.a", "twice");
    free(c.p);
    memset(&c, 0, sizeof c);
    gb_header(&c, 3, 1, 0);
    gb_tinfo(&c, "", 1, n16, 0, 0);
    gb_pad(&c, 32);
    for (int i = 0; i < 64; i++)
        gb_u8(&c, 0);
    expect_fail(&c, "emptyname.gguf", TP_ERR_FORMAT, "tensor 0", NULL);
    free(c.p);
    /* Data section start past the end (tensor infos end the file). */
    memset(&c, 0, sizeof c);
    gb_header(&c, 3, 1, 0);
    gb_tinfo(&c, "t.a", 1, n16, 0, 0);
    expect_fail(&c, "nodata.gguf", TP_ERR_FORMAT, NULL, NULL);
    free(c.p);
    free(b.p);

    /* A real file on disk: not found, directory, too short. */
    CHECK(tp_gguf_open("/nonexistent/x.gguf", &g, &err) == TP_ERR_NOT_FOUND);
    CHECK(io_contains(err.message, "/nonexistent/x.gguf"));
    CHECK(tp_gguf_open("/", &g, &err) == TP_ERR_IO);
}

/* ---- mutation fuzz ---- */

static uint64_t rng(uint64_t *s) {
    *s += 0x9e3779b97f4a7c15ull;
    uint64_t z = *s;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void fuzz_seed(uint8_t **out, size_t *n, size_t *header_end) {
    tp_error err;
    tp_gguf_writer *w = tp_gguf_writer_new();
    tp_gguf_set_str(w, "general.architecture", "gemma3", &err);
    tp_gguf_set_u32(w, "gemma3.block_count", 2, &err);
    tp_gguf_set_f32(w, "gemma3.rope.freq_base", 1e6f, &err);
    const char *toks[5] = {"<pad>", "<eos>", "<bos>",
                           "\xe2\x96\x81"
                           "a",
                           "b"};
    tp_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 5, &err);
    const float scores[5] = {0, 0, 0, -1, -2};
    tp_gguf_set_arr(w, "tokenizer.ggml.scores", TP_GGUF_FLOAT32, scores, 5, &err);
    const uint8_t pat[2] = {1, 0};
    tp_gguf_set_arr(w, "gemma3.attention.sliding_window_pattern", TP_GGUF_BOOL, pat, 2, &err);
    static float a[64], q[17];
    static uint8_t q8[68];
    const int64_t ne_a[2] = {8, 8}, ne_q8[2] = {32, 2}, ne_b[1] = {17};
    tp_gguf_add_tensor(w, "token_embd.weight", TP_DTYPE_F32, 2, ne_a, a, &err);
    tp_gguf_add_tensor(w, "blk.0.attn_q.weight", TP_DTYPE_Q8_0, 2, ne_q8, q8, &err);
    tp_gguf_add_tensor(w, "blk.0.attn_norm.weight", TP_DTYPE_F32, 1, ne_b, q, &err);
    CHECK(tp_gguf_write_memory(w, NULL, NULL, out, n, &err) == TP_OK);
    tp_gguf_writer_free(w);
    tp_gguf *g = NULL;
    CHECK(tp_gguf_open_memory(*out, *n, "seed", &g, &err) == TP_OK);
    *header_end = g ? tp_gguf_data_offset(g) : *n;
    tp_gguf_close(g);
}

static void test_fuzz(void) {
    uint8_t *seed;
    size_t n, hend;
    fuzz_seed(&seed, &n, &hend);
    uint8_t *buf = malloc(n);
    uint64_t s = 12345;
    int n_err = 0, n_ok = 0;
    static const uint64_t interesting[] = {0,  1,   2,          3,          4,          5,
                                           8,  9,   12,         13,         31,         32,
                                           33, 255, 0x7fffffff, 0xffffffff, 1ull << 32, UINT64_MAX};
    for (int it = 0; it < 6000; it++) {
        memcpy(buf, seed, n);
        size_t len = n;
        int kind = (int)(rng(&s) % 4);
        if (kind == 0) { /* bit flips in the header */
            int flips = 1 + (int)(rng(&s) % 3);
            for (int f = 0; f < flips; f++)
                buf[rng(&s) % hend] ^= (uint8_t)(1u << (rng(&s) % 8));
        } else if (kind == 1) { /* an interesting u32 at a random header position */
            size_t at = rng(&s) % (hend - 4);
            uint32_t v = (uint32_t)interesting[rng(&s) % (sizeof interesting / 8)];
            memcpy(buf + at, &v, 4);
        } else if (kind == 2) { /* an interesting u64 */
            size_t at = rng(&s) % (hend - 8);
            uint64_t v = interesting[rng(&s) % (sizeof interesting / 8)];
            memcpy(buf + at, &v, 8);
        } else { /* truncate and flip */
            len = (size_t)(rng(&s) % n);
            if (len)
                buf[rng(&s) % len] ^= 0x55;
        }
        tp_gguf *g = NULL;
        tp_error err;
        memset(&err, 0, sizeof err);
        tp_status st = tp_gguf_open_memory(buf, len, "fuzz.gguf", &g, &err);
        if (st != TP_OK) {
            n_err++;
            CHECK_MSG(io_contains(err.message, "fuzz.gguf"), "%s", err.message);
            CHECK(st == TP_ERR_FORMAT || st == TP_ERR_UNSUPPORTED);
            continue;
        }
        n_ok++;
        /* Everything the reader returns must be readable. */
        unsigned sum = 0;
        for (size_t i = 0; i < tp_gguf_tensor_count(g); i++) {
            const tp_gguf_tensor *t = tp_gguf_tensor_at(g, i);
            const uint8_t *p = t->data;
            for (size_t k = 0; k < t->n_bytes; k++)
                sum += p[k];
            CHECK(tp_gguf_find_tensor(g, t->name) == t);
        }
        for (size_t i = 0; i < tp_gguf_kv_count(g); i++) {
            const tp_gguf_kv *kv = tp_gguf_kv_at(g, i);
            CHECK(tp_gguf_find_kv(g, kv->key) == kv);
            if (kv->type == TP_GGUF_ARRAY && kv->arr_type == TP_GGUF_STRING) {
                for (uint64_t k = 0; k < kv->n; k++) {
                    size_t l;
                    const char *str = tp_gguf_arr_str(kv, k, &l);
                    for (size_t j = 0; j < l; j++)
                        sum += (unsigned char)str[j];
                }
            } else if (kv->type == TP_GGUF_ARRAY) {
                for (uint64_t k = 0; k < kv->n; k++)
                    sum += (unsigned)(tp_gguf_arr_float(kv, k) != 0);
            }
        }
        (void)sum;
        tp_gguf_close(g);
    }
    CHECK(n_err > 3000);
    printf("fuzz: %d corrupted files rejected, %d still valid\n", n_err, n_ok);
    free(buf);
    tp_free(seed);
}

/* Allocation failures while reading: always a clean OUT_OF_MEMORY, never a leak. */
static void test_alloc_failures(void) {
    uint8_t *seed;
    size_t n, hend;
    fuzz_seed(&seed, &n, &hend);
    int failures = 0;
    for (long k = 1; k < 200; k++) {
        tp_alloc_fail_set(k, false);
        tp_gguf *g = NULL;
        tp_error err;
        tp_status st = tp_gguf_open_memory(seed, n, "oom.gguf", &g, &err);
        bool hit = tp_alloc_fail_hit();
        tp_alloc_fail_set(0, false);
        if (st == TP_OK) {
            CHECK(!hit);
            tp_gguf_close(g);
            break;
        }
        failures++;
        CHECK_MSG(st == TP_ERR_OUT_OF_MEMORY, "%s", err.message);
    }
    CHECK(failures > 5);
    tp_free(seed);
}

int main(void) {
    test_corpus();
    test_fuzz();
    test_alloc_failures();
    return tp_test_exit();
}
