/*
 * fuzz_tokenizer_load.c — loading tokenizer.json (+ tokenizer_config.json)
 * with tp_tok_load, then using what was loaded.
 *
 * Input: the tokenizer.json text, optionally followed by a NUL byte and the
 * tokenizer_config.json text. Both are written into a private folder (the
 * loader reads a model folder). A load either fails with a status and a
 * message, or gives a tokenizer that then encodes and decodes a few fixed
 * texts (valid, invalid UTF-8, special-looking) without crashing: encoded ids
 * lie in the vocabulary, offsets inside the text, decoded text is valid UTF-8,
 * and every id's token string maps back to an id.
 */
#include "fuzz_util.h"
#include "tokenizer/tokenizer.h"

static char *g_dir;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    g_dir = fuzz_tmpdir("tokload");
    return 0;
}

static void exercise(const tp_tokenizer *tok) {
    static const char *const texts[] = {"Hello world! The quick brown fox.",
                                        "  lead\ttabs\nand newlines  ",
                                        "café naïve 東京 🙂",
                                        "[MASK] <s></s><|im_start|>user<bos>",
                                        "\xff\xfe bad utf-8",
                                        ""};
    size_t V = tp_tok_vocab_size(tok);
    tp_error err;
    tp_tok_encode_params ep = tp_tok_encode_default_params();
    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
        size_t len = strlen(texts[t]);
        for (int special = 0; special < 2; special++) {
            ep.add_special_tokens = special;
            tp_encoding e;
            tp_status st = tp_tok_encode(tok, NULL, texts[t], len, NULL, 0, &ep, &e, &err);
            FUZZ_CHECK(st == TP_OK || st == TP_ERR_INPUT || st == TP_ERR_OUT_OF_MEMORY,
                       "encode: %s: %s", tp_status_name(st), err.message);
            if (st == TP_OK) {
                for (size_t i = 0; i < e.n; i++) {
                    FUZZ_CHECK(e.ids[i] >= 0 && (size_t)e.ids[i] < V, "id %d outside vocab %zu",
                               e.ids[i], V);
                    FUZZ_CHECK(e.offsets[2 * i] <= e.offsets[2 * i + 1] &&
                                   e.offsets[2 * i + 1] <= len,
                               "offsets [%u, %u) outside the %zu-byte text", e.offsets[2 * i],
                               e.offsets[2 * i + 1], len);
                }
                tp_tok_decode_params dp = tp_tok_decode_default_params();
                dp.skip_special_tokens = special;
                char *out = NULL;
                size_t out_len = 0;
                st = tp_tok_decode(tok, e.ids, e.n, &dp, &out, &out_len, &err);
                FUZZ_CHECK(st == TP_OK || st == TP_ERR_OUT_OF_MEMORY, "decode: %s: %s",
                           tp_status_name(st), err.message);
                if (st == TP_OK)
                    FUZZ_CHECK(tp_utf8_validate(out, out_len) == out_len,
                               "decode gave invalid UTF-8");
                tp_free(out);
            }
            tp_encoding_free(&e);
        }
    }
    /* every id, or the first 300 */
    for (size_t id = 0; id < V && id < 300; id++) {
        const char *s = tp_tok_id_to_token(tok, (int32_t)id);
        if (s)
            FUZZ_CHECK(tp_tok_token_to_id(tok, s) >= 0, "token of id %zu has no id", id);
        int32_t one = (int32_t)id;
        char *out = NULL;
        tp_status st = tp_tok_decode(tok, &one, 1, NULL, &out, NULL, &err);
        FUZZ_CHECK(st == TP_OK || st == TP_ERR_INPUT || st == TP_ERR_OUT_OF_MEMORY,
                   "decode id %zu: %s: %s", id, tp_status_name(st), err.message);
        tp_free(out);
    }
    const tp_tok_info *info = tp_tok_get_info(tok);
    FUZZ_CHECK(info && info->vocab_size == V, "info vocab_size");
    size_t n_tpl = 0;
    const tp_tok_chat_template *tpl = tp_tok_chat_templates(tok, &n_tpl);
    for (size_t i = 0; i < n_tpl; i++)
        FUZZ_CHECK(tpl[i].name && tpl[i].template, "template %zu without name or source", i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t a_len, b_len;
    const uint8_t *b;
    fuzz_split(data, size, &a_len, &b, &b_len);
    fuzz_write(g_dir, "tokenizer.json", data, a_len);
    if (b)
        fuzz_write(g_dir, "tokenizer_config.json", b, b_len);
    else
        fuzz_unlink(g_dir, "tokenizer_config.json");
    tp_tokenizer *tok = NULL;
    tp_error err;
    tp_error_clear(&err);
    tp_status st = tp_tok_load(g_dir, &tok, &err);
    fuzz_note("load", st, &err);
    if (st != TP_OK) {
        FUZZ_CHECK(tok == NULL, "failed load returned a tokenizer");
        FUZZ_CHECK(err.status == st && err.message[0], "%s without a message", tp_status_name(st));
        FUZZ_CHECK(st == TP_ERR_FORMAT || st == TP_ERR_UNSUPPORTED || st == TP_ERR_OUT_OF_MEMORY,
                   "load: %s: %s", tp_status_name(st), err.message);
        return 0;
    }
    exercise(tok);
    tp_tok_free(tok);
    return 0;
}
