/*
 * fuzz_tokenizer.c — encoding and decoding arbitrary bytes with the real
 * tokenizers: Qwen3 and ModernBERT (tests/data/tokenizers), and Gemma3 when
 * ../shared/tokenizers/gemma3 is present. They are loaded once.
 *
 * Input: byte 0 = flags, byte 1 = a length limit, the rest is the text
 * (embedded NULs included: the length is explicit).
 *   flags & 3   which tokenizer (3 = ModernBERT again, or Gemma3 when loaded)
 *   flags & 4   add special tokens
 *   flags & 8   encode a pair: the text is split at its middle
 *   flags & 16  truncate to byte 1 (+ 2) tokens
 *   flags & 32  decode skipping special tokens
 *   flags & 64  also decode the text's bytes taken as little-endian int32 ids
 *
 * Invariants: encoding gives TP_OK or TP_ERR_INPUT (invalid UTF-8); valid
 * UTF-8 always encodes. Ids lie in the vocabulary, offsets inside their text,
 * truncation respects the limit. The cached path (scratch + word cache) gives
 * exactly the ids of the plain reference path. Decoding valid ids succeeds
 * with valid UTF-8; out-of-range ids give TP_ERR_INPUT; the streaming decoder
 * emits only whole UTF-8.
 */
#include "fuzz_util.h"
#include "tokenizer/tokenizer.h"

#define N_TOK 4

static tp_tokenizer *g_tok[N_TOK];
static tp_tok_scratch *g_scratch[N_TOK];

static tp_tokenizer *load(const char *dir) {
    tp_tokenizer *t = NULL;
    tp_error err;
    if (tp_tok_load(dir, &t, &err) != TP_OK) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", err.message);
        abort();
    }
    return t;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    char *q = fuzz_data_path("tokenizers/qwen3");
    char *mb = fuzz_data_path("tokenizers/modernbert");
    char *gm = fuzz_shared_path("tokenizers/gemma3/tokenizer.json");
    g_tok[0] = load(q);
    g_tok[1] = load(mb);
    g_tok[2] = g_tok[0];
    g_tok[3] = g_tok[1];
    if (gm) {
        char *d = fuzz_shared_path("tokenizers/gemma3");
        g_tok[3] = load(d);
        tp_free(d);
    }
    for (int i = 0; i < N_TOK; i++)
        g_scratch[i] = tp_tok_scratch_create(g_tok[i]);
    tp_free(q);
    tp_free(mb);
    tp_free(gm);
    return 0;
}

static void check_decode(const tp_tokenizer *tok, const int32_t *ids, size_t n, bool skip,
                         bool all_valid) {
    tp_tok_decode_params dp = tp_tok_decode_default_params();
    dp.skip_special_tokens = skip;
    char *out = NULL;
    size_t out_len = 0;
    tp_error err;
    tp_status st = tp_tok_decode(tok, ids, n, &dp, &out, &out_len, &err);
    if (all_valid)
        FUZZ_CHECK(st == TP_OK || st == TP_ERR_OUT_OF_MEMORY, "decode of valid ids: %s: %s",
                   tp_status_name(st), err.message);
    else
        FUZZ_CHECK(st == TP_OK || st == TP_ERR_INPUT || st == TP_ERR_OUT_OF_MEMORY,
                   "decode: %s: %s", tp_status_name(st), err.message);
    if (st == TP_OK)
        FUZZ_CHECK(out && tp_utf8_validate(out, out_len) == out_len, "decode gave invalid UTF-8");
    tp_free(out);

    /* the streaming decoder: whole UTF-8 pieces only */
    tp_tok_stream *ts = tp_tok_stream_create(tok, &dp);
    if (!ts)
        return;
    tp_buf b = {0};
    for (size_t i = 0; i < n; i++) {
        size_t before = b.len;
        st = tp_tok_stream_step(ts, ids[i], &b, &err);
        if (st != TP_OK) {
            FUZZ_CHECK(st == TP_ERR_INPUT || st == TP_ERR_OUT_OF_MEMORY, "stream: %s: %s",
                       tp_status_name(st), err.message);
            break;
        }
        if (b.len > before)
            FUZZ_CHECK(tp_utf8_validate(b.data + before, b.len - before) == b.len - before,
                       "stream piece is not whole UTF-8");
    }
    if (st == TP_OK)
        (void)tp_tok_stream_flush(ts, &b, &err);
    FUZZ_CHECK(!b.len || tp_utf8_validate(b.data, b.len) == b.len,
               "stream text is not valid UTF-8");
    tp_buf_free(&b);
    tp_tok_stream_free(ts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2)
        return 0;
    uint8_t flags = data[0], limit = data[1];
    const char *text = (const char *)data + 2;
    size_t len = size - 2;
    int which = flags & 3;
    const tp_tokenizer *tok = g_tok[which];
    size_t V = tp_tok_vocab_size(tok);

    tp_tok_encode_params ep = tp_tok_encode_default_params();
    ep.add_special_tokens = (flags & 4) != 0;
    if (flags & 16)
        ep.max_length = (size_t)limit + 2;
    const char *pair = NULL;
    size_t len1 = len, pair_len = 0;
    if (flags & 8) {
        len1 = len / 2;
        pair = text + len1;
        pair_len = len - len1;
    }
    tp_encoding e, ref;
    tp_error err;
    tp_status st = tp_tok_encode(tok, g_scratch[which], text, len1, pair, pair_len, &ep, &e, &err);
    bool valid = tp_utf8_validate(text, len) == len;
    FUZZ_CHECK(st == TP_OK || st == TP_ERR_INPUT || st == TP_ERR_OUT_OF_MEMORY, "encode: %s: %s",
               tp_status_name(st), err.message);
    if (st == TP_ERR_INPUT) {
        /* a pair split inside a character makes both halves invalid */
        FUZZ_CHECK(!valid || pair, "valid UTF-8 rejected: %s", err.message);
        FUZZ_CHECK(e.n == 0, "error with tokens");
    }
    if (st == TP_OK) {
        /* past max_length only when the special tokens alone do not fit (then,
         * as in Hugging Face, every text token is cut and the specials stay) */
        for (size_t i = 0; ep.max_length && e.n > ep.max_length && i < e.n; i++)
            FUZZ_CHECK(e.seq_ids[i] < 0, "%zu tokens past max_length %zu, text tokens kept", e.n,
                       ep.max_length);
        for (size_t i = 0; i < e.n; i++) {
            FUZZ_CHECK(e.ids[i] >= 0 && (size_t)e.ids[i] < V, "id %d outside vocab %zu", e.ids[i],
                       V);
            size_t lim = e.seq_ids[i] == 1 ? pair_len : len1;
            FUZZ_CHECK(e.offsets[2 * i] <= e.offsets[2 * i + 1] && e.offsets[2 * i + 1] <= lim,
                       "token %zu offsets [%u, %u) outside its %zu-byte text", i, e.offsets[2 * i],
                       e.offsets[2 * i + 1], lim);
        }
        /* the cached path must equal the reference path id for id */
        tp_tok_encode_params rp = ep;
        rp.word_cache = false;
        tp_status rs = tp_tok_encode(tok, NULL, text, len1, pair, pair_len, &rp, &ref, &err);
        FUZZ_CHECK(rs == TP_OK || rs == TP_ERR_OUT_OF_MEMORY, "reference encode: %s: %s",
                   tp_status_name(rs), err.message);
        if (rs == TP_OK) {
            FUZZ_CHECK(ref.n == e.n && !memcmp(ref.ids, e.ids, e.n * sizeof *e.ids),
                       "cached encode (%zu ids) differs from the reference path (%zu ids)", e.n,
                       ref.n);
            FUZZ_CHECK(!memcmp(ref.offsets, e.offsets, 2 * e.n * sizeof *e.offsets),
                       "cached offsets differ from the reference path");
        }
        tp_encoding_free(&ref);
        check_decode(tok, e.ids, e.n, (flags & 32) != 0, true);
    }
    tp_encoding_free(&e);

    if ((flags & 64) && len >= 4) {
        size_t n = len / 4;
        int32_t *ids = tp_malloc_array(n, sizeof *ids);
        if (!ids)
            return 0;
        bool all_valid = true;
        for (size_t i = 0; i < n; i++) {
            uint32_t u = (uint32_t)(uint8_t)text[4 * i] | (uint32_t)(uint8_t)text[4 * i + 1] << 8 |
                         (uint32_t)(uint8_t)text[4 * i + 2] << 16 |
                         (uint32_t)(uint8_t)text[4 * i + 3] << 24;
            /* mostly in range, sometimes just outside it, sometimes anything */
            ids[i] = (u >> 30) == 3 ? (int32_t)u : (int32_t)(u % (uint32_t)(V + 2)) - 1;
            if (ids[i] < 0 || (size_t)ids[i] >= V)
                all_valid = false;
        }
        check_decode(tok, ids, n, (flags & 32) != 0, all_valid);
        tp_free(ids);
    }
    return 0;
}
