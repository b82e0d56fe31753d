/*
 * test_tok_gguf.c — the tokenizer from GGUF metadata (tp_tok_load_gguf_desc)
 * and the tokenizer.json -> description exporter (tp_tok_gguf_export).
 *
 * A hand-built "llama" description of eleven tokens whose encodings are
 * derived by hand from the rules (merge ranks, the score rule of transformers'
 * SentencePiece converter, byte fallback, Prepend("▁"), added tokens); malformed
 * descriptions and their messages; the exported descriptions of Qwen3 and
 * ModernBERT against facts read off their tokenizer.json / tokenizer_config.json
 * and llama.cpp's conversion rules; allocation failures. The golden files are
 * checked through the description by tokenizer_check --gguf (CMakeLists.txt).
 */
#include "test_util.h"
#include "tokenizer/tokenizer.h"

#define S(lit) ((tp_tok_gguf_str){lit, sizeof(lit) - 1})

/* the hand-built vocabulary */
enum { UNK, BOS, EOS, META_T, A, B, AB, META_A, BYTE_63, USER, XY, WS, N_TOK };
static const tp_tok_gguf_str TOKS[N_TOK] = {
    S("<unk>"),
    S("<s>"),
    S("</s>"),
    S("\xe2\x96\x81"),
    S("a"),
    S("b"),
    S("ab"),
    S("\xe2\x96\x81"
      "a"),
    S("<0x63>"),
    S("<user>"),
    S("x y"),
    S("  "),
};
static const int32_t TYPES[N_TOK] = {2, 3, 3, 1, 1, 1, 1, 1, 6, 4, 4, 4};

static tp_tok_gguf_desc small_desc(void) {
    tp_tok_gguf_desc d = tp_tok_gguf_desc_empty();
    d.source = "test.gguf";
    d.model = S("llama");
    d.pre = S("default");
    d.tokens = TOKS;
    d.n_tokens = N_TOK;
    d.token_type = TYPES;
    d.n_token_type = N_TOK;
    d.bos_id = BOS;
    d.eos_id = EOS;
    d.unk_id = UNK;
    return d;
}

/* encodes text; returns the number of ids (into ids[]), -1 on error */
static int enc(const tp_tokenizer *tok, const char *text, bool special, int32_t *ids) {
    tp_tok_encode_params p = tp_tok_encode_default_params();
    p.add_special_tokens = special;
    tp_encoding e;
    tp_error err;
    if (tp_tok_encode(tok, NULL, text, (size_t)-1, NULL, 0, &p, &e, &err)) {
        fprintf(stderr, "encode '%s': %s\n", text, err.message);
        return -1;
    }
    int n = (int)e.n;
    for (int i = 0; i < n && i < 16; i++)
        ids[i] = e.ids[i];
    tp_encoding_free(&e);
    return n;
}

#define CHECK_IDS(tok, text, special, ...)                                                         \
    do {                                                                                           \
        const int32_t want_[] = {__VA_ARGS__};                                                     \
        int32_t got_[16];                                                                          \
        int n_ = enc(tok, text, special, got_);                                                    \
        int nw_ = (int)(sizeof want_ / sizeof want_[0]);                                           \
        bool same_ = n_ == nw_;                                                                    \
        for (int i_ = 0; same_ && i_ < n_; i_++)                                                   \
            same_ = got_[i_] == want_[i_];                                                         \
        CHECK_MSG(same_, "'%s': got %d ids (first %d)", text, n_, n_ > 0 ? got_[0] : -1);          \
    } while (0)

static char *dec(const tp_tokenizer *tok, const int32_t *ids, size_t n, bool skip) {
    tp_tok_decode_params p = tp_tok_decode_default_params();
    p.skip_special_tokens = skip;
    char *s = NULL;
    tp_error err;
    if (tp_tok_decode(tok, ids, n, &p, &s, NULL, &err))
        return NULL;
    return s;
}

static void test_hand_built_merges(void) {
    tp_tok_gguf_desc d = small_desc();
    tp_tokenizer *tok = NULL;
    tp_error err;
    /* "▁ a" ranks before "a b": "ab" -> "▁ab" -> ▁a + b */
    const tp_tok_gguf_str m1[] = {S("\xe2\x96\x81 a"), S("a b")};
    d.merges = m1;
    d.n_merges = 2;
    CHECK(tp_tok_load_gguf_desc(&d, &tok, &err) == TP_OK);
    if (!tok)
        return;
    CHECK_IDS(tok, "ab", false, META_A, B);
    /* add_bos defaults to true for llama (llama.cpp), add_eos to false */
    CHECK_IDS(tok, "ab", true, BOS, META_A, B);
    /* byte fallback: 'c' has no token but <0x63>; 'é' (C3 A9) has neither -> unk */
    CHECK_IDS(tok, "c", false, META_T, BYTE_63);
    CHECK_IDS(tok, "\xc3\xa9", false, META_T, UNK);
    /* added tokens are matched whole on the raw text; Prepend("▁") then applies
     * to each remaining segment (transformers' legacy Llama normalizer) */
    CHECK_IDS(tok, "a<user>b", false, META_A, USER, META_T, B);
    CHECK_IDS(tok, "<s>a", false, BOS, META_A);
    /* spaces become ▁: " a" -> "▁▁a" */
    CHECK_IDS(tok, " a", false, META_T, META_A);
    /* user-defined "x y" was written by llama.cpp with "▁" -> " ": restored */
    const char *xy = tp_tok_id_to_token(tok, XY);
    CHECK(xy && strcmp(xy, "x\xe2\x96\x81y") == 0);
    CHECK(tp_tok_is_special(tok, BOS) && tp_tok_is_special(tok, UNK));
    CHECK(!tp_tok_is_special(tok, USER));
    /* decoding: ▁ -> " ", byte fallback, fuse, then Strip(" ", 1) of the
     * whole (the added prefix space; none to strip after "<s>") */
    const int32_t ids[] = {BOS, META_A, B, META_T, BYTE_63, EOS};
    char *s = dec(tok, ids, 6, false);
    CHECK(s && strcmp(s, "<s> ab c</s>") == 0);
    tp_free(s);
    s = dec(tok, ids, 6, true);
    CHECK(s && strcmp(s, "ab c") == 0);
    tp_free(s);
    const tp_tok_info *info = tp_tok_get_info(tok);
    CHECK(info->add_bos_token && !info->add_eos_token);
    CHECK(info->bos.id == BOS && info->bos.text && strcmp(info->bos.text, "<s>") == 0);
    CHECK(info->unk.id == UNK && info->eos.id == EOS && info->pad.id == -1);
    CHECK_EQ_INT(tp_tok_vocab_size(tok), N_TOK);
    tp_tok_free(tok);

    /* the other merge order: "a b" first -> ▁ + ab */
    const tp_tok_gguf_str m2[] = {S("a b"), S("\xe2\x96\x81 a")};
    d.merges = m2;
    /* add_eos, no add_bos, no space prefix */
    d.add_bos = 0;
    d.add_eos = 1;
    d.add_space_prefix = 0;
    CHECK(tp_tok_load_gguf_desc(&d, &tok, &err) == TP_OK);
    if (!tok)
        return;
    CHECK_IDS(tok, " ab", false, META_T, AB);
    CHECK_IDS(tok, "ab", true, AB, EOS);
    CHECK_IDS(tok, "a<user>b", false, A, USER, B);
    const int32_t ids2[] = {META_T, A, B};
    s = dec(tok, ids2, 3, false);
    CHECK(s && strcmp(s, " ab") == 0); /* no Strip without the space prefix */
    tp_free(s);
    tp_tok_free(tok);
}

static void test_hand_built_scores(void) {
    /* no merges: derived from the scores of the pieces "ab" and "▁a" (the
     * only tokens splitting into two tokens) */
    float sc[N_TOK] = {0};
    tp_tok_gguf_desc d = small_desc();
    d.scores = sc;
    d.n_scores = N_TOK;
    tp_tokenizer *tok = NULL;
    tp_error err;
    sc[META_A] = -1.0f; /* ▁a ranks first */
    sc[AB] = -2.0f;
    CHECK(tp_tok_load_gguf_desc(&d, &tok, &err) == TP_OK);
    if (tok)
        CHECK_IDS(tok, "ab", false, META_A, B);
    tp_tok_free(tok);
    sc[META_A] = -3.0f; /* ab ranks first */
    CHECK(tp_tok_load_gguf_desc(&d, &tok, &err) == TP_OK);
    if (tok)
        CHECK_IDS(tok, "ab", false, META_T, AB);
    tp_tok_free(tok);
    /* equal scores and equal lengths: the converter's iteration order (piece
     * id) decides: "ab" (id 6) before "▁a" (id 7) */
    sc[META_A] = sc[AB] = -1.0f;
    CHECK(tp_tok_load_gguf_desc(&d, &tok, &err) == TP_OK);
    if (tok)
        CHECK_IDS(tok, "ab", false, META_T, AB);
    tp_tok_free(tok);
    /* -1000 on a user-defined token (llama.cpp's score for added tokens) counts
     * as SentencePiece's 0: "  " is "▁▁" (user-defined, GGUF spells it with
     * spaces), and " a" -> "▁▁a" takes the ▁▁ merge first */
    sc[WS] = -1000.0f;
    sc[META_A] = -1.0f;
    sc[AB] = -2.0f;
    CHECK(tp_tok_load_gguf_desc(&d, &tok, &err) == TP_OK);
    if (tok)
        CHECK_IDS(tok, " a", false, WS, A);
    tp_tok_free(tok);
    sc[WS] = -5.0f; /* any other score is taken as it is */
    CHECK(tp_tok_load_gguf_desc(&d, &tok, &err) == TP_OK);
    if (tok)
        CHECK_IDS(tok, " a", false, META_T, META_A);
    tp_tok_free(tok);
    sc[WS] = 0.0f;
    /* a UNUSED piece yields no merge: "ab" unused -> ▁a b, and "a" "b" stay */
    int32_t ty[N_TOK];
    memcpy(ty, TYPES, sizeof ty);
    ty[AB] = 5;
    d.token_type = ty;
    sc[META_A] = -3.0f;
    CHECK(tp_tok_load_gguf_desc(&d, &tok, &err) == TP_OK);
    if (tok)
        CHECK_IDS(tok, "ab", false, META_A, B);
    tp_tok_free(tok);
}

/* load must fail with status want and a message containing each of the
 * strings (the key and the item) */
static void expect_error(const tp_tok_gguf_desc *d, tp_status want, const char *s1,
                         const char *s2) {
    tp_tokenizer *tok = NULL;
    tp_error err;
    memset(&err, 0, sizeof err);
    tp_status st = tp_tok_load_gguf_desc(d, &tok, &err);
    CHECK_MSG(st == want, "status %d, want %d (%s)", (int)st, (int)want, err.message);
    CHECK(tok == NULL);
    CHECK_MSG(strstr(err.message, "test.gguf") && strstr(err.message, s1) &&
                  (!s2 || strstr(err.message, s2)),
              "message '%s' lacks '%s' / '%s'", err.message, s1, s2 ? s2 : "");
    tp_tok_free(tok);
}

static void test_malformed(void) {
    const tp_tok_gguf_str good[] = {S("a b")};
    tp_tok_gguf_desc d;
#define BASE()                                                                                     \
    do {                                                                                           \
        d = small_desc();                                                                          \
        d.merges = good;                                                                           \
        d.n_merges = 1;                                                                            \
    } while (0)
    BASE();
    d.model = (tp_tok_gguf_str){NULL, 0};
    expect_error(&d, TP_ERR_FORMAT, "tokenizer.ggml.model", "missing");
    BASE();
    d.model = S("bert");
    expect_error(&d, TP_ERR_UNSUPPORTED, "tokenizer.ggml.model", "'bert'");
    BASE();
    d.model = S("gpt2");
    d.pre = S("falcon");
    expect_error(&d, TP_ERR_UNSUPPORTED, "tokenizer.ggml.pre", "'falcon'");
    BASE();
    d.model = S("gpt2");
    d.pre = (tp_tok_gguf_str){NULL, 0};
    expect_error(&d, TP_ERR_UNSUPPORTED, "tokenizer.ggml.pre", "missing");
    BASE();
    d.pre = S("qwen2");
    expect_error(&d, TP_ERR_UNSUPPORTED, "tokenizer.ggml.pre", "'qwen2'");
    BASE();
    d.tokens = NULL;
    expect_error(&d, TP_ERR_FORMAT, "tokenizer.ggml.tokens", "missing");
    BASE();
    const tp_tok_gguf_str unknown[] = {S("a b"), S("a q")};
    d.merges = unknown;
    d.n_merges = 2;
    expect_error(&d, TP_ERR_FORMAT, "tokenizer.ggml.merges[1]", "'q'");
    BASE();
    const tp_tok_gguf_str result[] = {S("b a")}; /* "ba" is not a token */
    d.merges = result;
    expect_error(&d, TP_ERR_FORMAT, "tokenizer.ggml.merges[0]", "'ba'");
    BASE();
    const tp_tok_gguf_str nospace[] = {S("ab")};
    d.merges = nospace;
    expect_error(&d, TP_ERR_FORMAT, "tokenizer.ggml.merges[0]", "left right");
    int32_t ty[N_TOK];
    memcpy(ty, TYPES, sizeof ty);
    ty[A] = 7;
    BASE();
    d.token_type = ty;
    expect_error(&d, TP_ERR_FORMAT, "tokenizer.ggml.token_type[4]", "7");
    ty[A] = 6; /* a byte token must be <0xXX> */
    expect_error(&d, TP_ERR_FORMAT, "tokenizer.ggml.tokens[4]", "<0xXX>");
    BASE();
    d.n_token_type = 3;
    expect_error(&d, TP_ERR_FORMAT, "tokenizer.ggml.token_type", "3 entries");
    BASE();
    d.bos_id = N_TOK;
    expect_error(&d, TP_ERR_FORMAT, "tokenizer.ggml.bos_token_id", "out of range");
    BASE();
    d.mask_id = -5;
    expect_error(&d, TP_ERR_FORMAT, "tokenizer.ggml.mask_token_id", "out of range");
    BASE();
    d.add_eos = 1;
    d.eos_id = -1;
    expect_error(&d, TP_ERR_FORMAT, "add_eos_token", "eos");
    d.bos_id = -1; /* llama's default add_bos without a bos id is no error */
    expect_error(&d, TP_ERR_FORMAT, "add_eos_token", "eos");
    d.add_bos = 1;
    expect_error(&d, TP_ERR_FORMAT, "add_bos_token", "bos");
    tp_tok_gguf_str dup[N_TOK];
    memcpy(dup, TOKS, sizeof dup);
    dup[B] = S("a");
    BASE();
    d.tokens = dup;
    expect_error(&d, TP_ERR_FORMAT, "tokenizer.ggml.tokens[5]", "duplicate of tokens[4]");
    dup[B] = (tp_tok_gguf_str){"b\0c", 3};
    expect_error(&d, TP_ERR_FORMAT, "tokenizer.ggml.tokens[5]", "NUL");
    dup[B] = S("\xff");
    expect_error(&d, TP_ERR_FORMAT, "tokenizer.ggml.tokens[5]", "UTF-8");
    BASE();
    d.merges = NULL;
    expect_error(&d, TP_ERR_FORMAT, "tokenizer.ggml.merges", "scores");
    float sc[N_TOK] = {0};
    BASE();
    d.scores = sc;
    d.n_scores = N_TOK - 1;
    expect_error(&d, TP_ERR_FORMAT, "tokenizer.ggml.scores", "entries");
    BASE();
    d.scores = sc;
    d.n_scores = N_TOK;
    sc[2] = NAN;
    expect_error(&d, TP_ERR_FORMAT, "tokenizer.ggml.scores[2]", "NaN");
#undef BASE
}

static const tp_tok_gguf_str *find_tok(const tp_tok_gguf_desc *d, size_t id) {
    return id < d->n_tokens ? &d->tokens[id] : NULL;
}

static int32_t type_of(const tp_tok_gguf_desc *d, size_t id) {
    int32_t v;
    memcpy(&v, (const char *)d->token_type + 4 * id, 4);
    return v;
}

static bool tok_is(const tp_tok_gguf_desc *d, size_t id, const char *s) {
    const tp_tok_gguf_str *t = find_tok(d, id);
    return t && t->len == strlen(s) && memcmp(t->s, s, t->len) == 0;
}

static void test_export_qwen3(void) {
    tp_tok_gguf_desc *d = NULL;
    tp_error err;
    const char *dir = tp_test_data("tokenizers/qwen3");
    CHECK(tp_tok_gguf_export(dir, NULL, &d, &err) == TP_OK);
    if (!d)
        return;
    /* facts from Qwen3's tokenizer.json / tokenizer_config.json and
     * convert_hf_to_gguf.py's get_vocab_base: 151643 vocab + 26 added ids */
    CHECK(d->model.len == 4 && memcmp(d->model.s, "gpt2", 4) == 0);
    CHECK(d->pre.len == 5 && memcmp(d->pre.s, "qwen2", 5) == 0);
    CHECK_EQ_INT(d->n_tokens, 151669);
    CHECK(d->scores == NULL);
    CHECK_EQ_INT(d->n_merges, 151387);
    CHECK(d->n_merges && d->merges[0].len == 5 &&
          memcmp(d->merges[0].s, "\xc4\xa0 \xc4\xa0", 5) == 0);
    CHECK(tok_is(d, 151644, "<|im_start|>") && type_of(d, 151644) == 3);
    CHECK(tok_is(d, 151667, "<think>") && type_of(d, 151667) == 4);
    /* "<|fim_prefix|>" is not special in tokenizer.json but looks special */
    CHECK(tok_is(d, 151659, "<|fim_prefix|>") && type_of(d, 151659) == 3);
    CHECK(tok_is(d, 0, "!") && type_of(d, 0) == 1);
    CHECK_EQ_INT(d->eos_id, 151645);
    CHECK_EQ_INT(d->pad_id, 151643);
    CHECK_EQ_INT(d->bos_id, -1);
    CHECK_EQ_INT(d->add_bos, 0);
    CHECK_EQ_INT(d->add_eos, 0);
    CHECK(d->chat_template.s && d->chat_template.len > 100);
    tp_tok_gguf_desc_free(d);

    /* config.json's vocab_size pads with "[PAD<id>]" UNUSED tokens */
    tp_tok_gguf_export_params p = tp_tok_gguf_export_default_params();
    p.vocab_size = 151936;
    CHECK(tp_tok_gguf_export(dir, &p, &d, &err) == TP_OK);
    if (d) {
        CHECK_EQ_INT(d->n_tokens, 151936);
        CHECK(tok_is(d, 151700, "[PAD151700]") && type_of(d, 151700) == 5);
        tp_tokenizer *tok = NULL;
        CHECK(tp_tok_load_gguf_desc(d, &tok, &err) == TP_OK);
        if (tok) {
            int32_t ids[16];
            /* Qwen3 golden: "Hello world" -> 9707 1879 (llamacpp/qwen2.jsonl) */
            CHECK(enc(tok, "Hello world", true, ids) == 2 && ids[0] == 9707 && ids[1] == 1879);
            CHECK_EQ_INT(tp_tok_vocab_size(tok), 151936);
        }
        tp_tok_free(tok);
        tp_tok_gguf_desc_free(d);
    }
    p.vocab_size = 100;
    d = NULL;
    CHECK(tp_tok_gguf_export(dir, &p, &d, &err) == TP_ERR_INVALID_ARGUMENT && d == NULL);
}

static void test_export_modernbert(void) {
    tp_tok_gguf_desc *d = NULL;
    tp_error err;
    CHECK(tp_tok_gguf_export(tp_test_data("tokenizers/modernbert"), NULL, &d, &err) == TP_OK);
    if (!d)
        return;
    CHECK(d->pre.len == 11 && memcmp(d->pre.s, "modern-bert", 11) == 0);
    /* TemplateProcessing [CLS] $A [SEP]: bos = [CLS] added first, [SEP] after */
    CHECK_EQ_INT(d->bos_id, 50281);
    CHECK_EQ_INT(d->cls_id, 50281);
    CHECK_EQ_INT(d->sep_id, 50282);
    CHECK_EQ_INT(d->mask_id, 50284);
    CHECK_EQ_INT(d->add_bos, 1);
    CHECK_EQ_INT(d->add_sep, 1);
    CHECK_EQ_INT(d->add_eos, 0);
    tp_tokenizer *tok = NULL;
    CHECK(tp_tok_load_gguf_desc(d, &tok, &err) == TP_OK);
    if (tok) {
        /* pairs: [CLS] A [SEP] B [SEP], type ids 0 (ModernBERT's tokenizer.json);
         * "a" = 66, "b" = 67 (golden.jsonl) */
        tp_tok_encode_params p = tp_tok_encode_default_params();
        tp_encoding e;
        CHECK(tp_tok_encode(tok, NULL, "a", 1, "b", 1, &p, &e, &err) == TP_OK);
        const int32_t want[] = {50281, 66, 50282, 67, 50282};
        CHECK(e.n == 5 && memcmp(e.ids, want, sizeof want) == 0);
        for (size_t i = 0; i < e.n; i++)
            CHECK(e.type_ids[i] == 0);
        tp_encoding_free(&e);
        /* [MASK] strips the spaces before it, as in tokenizer.json */
        int32_t ids[16];
        CHECK(enc(tok, "a  [MASK]", false, ids) == 2 && ids[0] == 66 && ids[1] == 50284);
        CHECK(tp_tok_get_info(tok)->clean_up_tokenization_spaces);
    }
    tp_tok_free(tok);
    /* convert_hf_to_gguf.py's ModernBERT flags: add_bos, add_eos and add_sep
     * all set; eos = [SEP] or absent: still one [SEP] at the end */
    for (int k = 0; k < 2; k++) {
        tp_tok_gguf_desc x = *d;
        x.add_eos = 1;
        x.eos_id = k ? 50282 : -1;
        tok = NULL;
        CHECK(tp_tok_load_gguf_desc(&x, &tok, &err) == TP_OK);
        int32_t ids[16];
        if (tok)
            CHECK(enc(tok, "a", true, ids) == 3 && ids[0] == 50281 && ids[1] == 66 &&
                  ids[2] == 50282);
        tp_tok_free(tok);
    }
    tp_tok_gguf_desc_free(d);
}

/* every allocation failing in turn: a clean error, never a crash or leak */
static void test_alloc_failures(void) {
    const tp_tok_gguf_str m1[] = {S("\xe2\x96\x81 a"), S("a b")};
    tp_tok_gguf_desc d = small_desc();
    d.merges = m1;
    d.n_merges = 2;
    d.chat_template = S("{{ x }}");
    int oom = 0;
    for (long n = 1; n < 2000; n++) {
        tp_tokenizer *tok = NULL;
        tp_error err;
        tp_alloc_fail_set(n, false);
        tp_status st = tp_tok_load_gguf_desc(&d, &tok, &err);
        bool hit = tp_alloc_fail_hit();
        tp_alloc_fail_set(0, false);
        if (!hit) {
            CHECK(st == TP_OK);
            tp_tok_free(tok);
            break;
        }
        CHECK_MSG(st == TP_ERR_OUT_OF_MEMORY && tok == NULL, "n=%ld status %d", n, (int)st);
        oom++;
        tp_tok_free(tok);
    }
    CHECK(oom > 10);

    /* the score-derived merges */
    float sc[N_TOK] = {0};
    sc[META_A] = -1.0f;
    sc[AB] = -2.0f;
    d.merges = NULL;
    d.n_merges = 0;
    d.scores = sc;
    d.n_scores = N_TOK;
    oom = 0;
    for (long n = 1; n < 2000; n++) {
        tp_tokenizer *tok = NULL;
        tp_error err;
        tp_alloc_fail_set(n, false);
        tp_status st = tp_tok_load_gguf_desc(&d, &tok, &err);
        bool hit = tp_alloc_fail_hit();
        tp_alloc_fail_set(0, false);
        tp_tok_free(tok);
        if (!hit) {
            CHECK(st == TP_OK);
            break;
        }
        CHECK_MSG(st == TP_ERR_OUT_OF_MEMORY, "n=%ld status %d", n, (int)st);
        oom++;
    }
    CHECK(oom > 10);

    /* the exporter */
    tp_tokenizer *mb = NULL;
    tp_error err;
    CHECK(tp_tok_load(tp_test_data("tokenizers/modernbert"), &mb, &err) == TP_OK);
    oom = 0;
    for (long n = 1; mb && n < 200; n++) {
        tp_tok_gguf_desc *x = NULL;
        tp_alloc_fail_set(n, false);
        tp_status st = tp_tok_gguf_export_tok(mb, NULL, &x, &err);
        bool hit = tp_alloc_fail_hit();
        tp_alloc_fail_set(0, false);
        tp_tok_gguf_desc_free(x);
        if (!hit) {
            CHECK(st == TP_OK);
            break;
        }
        CHECK_MSG(st == TP_ERR_OUT_OF_MEMORY && x == NULL, "n=%ld status %d", n, (int)st);
        oom++;
    }
    CHECK(oom > 5);
    tp_tok_free(mb);
}

/* Random small descriptions (as a corrupt or hostile .gguf could give):
 * each either loads or fails with FORMAT/UNSUPPORTED, and a loaded tokenizer
 * encodes and decodes random input without crashing (ASan checks the rest). */
static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(uint32_t n) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return n ? (uint32_t)(rng % n) : 0;
}

static void test_random_descriptions(void) {
    static const char *const alphabet[] = {"a", "b",        "\xe2\x96\x81", "c", "<",
                                           ">", "\xc4\xa0", "\xc3\xa9",     "x", "\xff"};
    enum { MAXT = 24 };
    char store[MAXT][32], mstore[MAXT][64], text[64];
    tp_tok_gguf_str toks[MAXT], merges[MAXT];
    int32_t types[MAXT];
    float scores[MAXT];
    int loaded = 0, failed = 0;
    for (int it = 0; it < 3000; it++) {
        size_t n = 1 + rnd(MAXT);
        for (size_t i = 0; i < n; i++) {
            size_t len = 0, parts = 1 + rnd(3);
            for (size_t k = 0; k < parts; k++) {
                const char *a = alphabet[rnd(3000) ? rnd(9) : 9];
                memcpy(store[i] + len, a, strlen(a));
                len += strlen(a);
            }
            if (i >= 2 && rnd(3) == 0) { /* the concatenation of two earlier tokens */
                const tp_tok_gguf_str a = toks[rnd((uint32_t)i)], b = toks[rnd((uint32_t)i)];
                if (a.len + b.len < sizeof store[i]) {
                    memcpy(store[i], a.s, a.len);
                    memcpy(store[i] + a.len, b.s, b.len);
                    len = a.len + b.len;
                }
            }
            for (size_t j = 0; j < i; j++) /* mostly unique */
                if (toks[j].len == len && !memcmp(toks[j].s, store[i], len) && rnd(50) &&
                    len + 3 < sizeof store[i]) {
                    len += (size_t)snprintf(store[i] + len, 4, "%02d", (int)i);
                    j = (size_t)-1;
                }
            if (rnd(20) == 0) { /* a byte token, maybe malformed */
                snprintf(store[i], sizeof store[i], "<0x%02X>", rnd(256));
                len = rnd(4) ? 6 : 5;
            }
            toks[i] = (tp_tok_gguf_str){store[i], len};
            bool byte_tok = len == 6 && !memcmp(store[i], "<0x", 3);
            types[i] = byte_tok && rnd(4) ? 6 : rnd(40) ? 1 + (int32_t)rnd(5) : (int32_t)rnd(9) - 1;
            scores[i] = rnd(60) ? -(float)rnd(50) : rnd(40) ? -1000.0f : NAN;
        }
        size_t nm = 0, want = rnd(MAXT);
        for (size_t i = 0; i < want; i++) {
            tp_tok_gguf_str a = toks[rnd((uint32_t)n)], b = toks[rnd((uint32_t)n)];
            bool found = rnd(30) == 0; /* else only a merge that names tokens */
            for (int tries = 0; tries < 40 && !found; tries++) {
                size_t t = rnd((uint32_t)n), c = 1 + rnd(3);
                if (toks[t].len <= c)
                    continue;
                a = (tp_tok_gguf_str){toks[t].s, c};
                b = (tp_tok_gguf_str){toks[t].s + c, toks[t].len - c};
                bool fa = false, fb = false;
                for (size_t j = 0; j < n; j++) {
                    fa = fa || (toks[j].len == a.len && !memcmp(toks[j].s, a.s, a.len));
                    fb = fb || (toks[j].len == b.len && !memcmp(toks[j].s, b.s, b.len));
                }
                found = fa && fb;
            }
            if (!found)
                continue;
            int k = snprintf(mstore[nm], sizeof mstore[nm], "%.*s%s%.*s", (int)a.len, a.s,
                             rnd(200) ? " " : "", (int)b.len, b.s);
            merges[nm] = (tp_tok_gguf_str){mstore[nm], (size_t)k};
            nm++;
        }
        tp_tok_gguf_desc d = tp_tok_gguf_desc_empty();
        d.source = "test.gguf";
        d.model = rnd(2) ? S("llama") : S("gpt2");
        bool ll = d.model.len == 5;
        d.pre = rnd(10) == 0 ? S("falcon")
                : ll         ? (rnd(2) ? S("default") : (tp_tok_gguf_str){NULL, 0})
                : rnd(2)     ? S("qwen2")
                             : S("modern-bert");
        d.tokens = toks;
        d.n_tokens = n;
        d.token_type = rnd(4) ? types : NULL;
        d.n_token_type = d.token_type ? n : 0;
        d.scores = rnd(2) ? scores : NULL;
        d.n_scores = d.scores ? n : 0;
        d.merges = rnd(3) ? merges : NULL;
        if (ll && rnd(2)) { /* llama: scores to derive merges from */
            d.scores = scores;
            d.n_scores = n;
        }
        d.n_merges = d.merges ? nm : 0;
        int64_t *ids[] = {&d.bos_id, &d.eos_id, &d.unk_id, &d.pad_id, &d.sep_id, &d.cls_id};
        for (size_t k = 0; k < 6; k++)
            *ids[k] = rnd(3) ? -1 : (int64_t)rnd((uint32_t)n + 2) - 1;
        int *flags[] = {&d.add_bos, &d.add_eos, &d.add_sep, &d.add_space_prefix};
        for (size_t k = 0; k < 4; k++)
            *flags[k] = rnd(30) ? (int)rnd(3) - 1 : 2;
        tp_tokenizer *tok = NULL;
        tp_error err;
        tp_status st = tp_tok_load_gguf_desc(&d, &tok, &err);
        CHECK_MSG(st == TP_OK || st == TP_ERR_FORMAT || st == TP_ERR_UNSUPPORTED, "status %d: %s",
                  (int)st, err.message);
        if (st) {
            if (getenv("TEST_VERBOSE"))
                fprintf(stderr, "rejected: %s\n", err.message);
            failed++;
            continue;
        }
        loaded++;
        size_t tl = 0, parts = rnd(8);
        for (size_t k = 0; k < parts; k++) {
            const char *a = rnd(3) ? alphabet[rnd(8)] : toks[rnd((uint32_t)n)].s;
            size_t al = strlen(a) < 8 ? strlen(a) : 8;
            memcpy(text + tl, a, al);
            tl += al;
        }
        tp_tok_encode_params p = tp_tok_encode_default_params();
        tp_encoding e;
        if (tp_tok_encode(tok, NULL, text, tl, rnd(2) ? "ab" : NULL, 2, &p, &e, &err) == TP_OK)
            for (size_t k = 0; k < e.n; k++)
                CHECK(e.ids[k] >= 0 && (size_t)e.ids[k] < tp_tok_vocab_size(tok));
        tp_encoding_free(&e);
        int32_t rid[6];
        for (size_t k = 0; k < 6; k++)
            rid[k] = (int32_t)rnd((uint32_t)n);
        char *out = dec(tok, rid, 6, rnd(2));
        CHECK(out != NULL);
        tp_free(out);
        tp_tok_free(tok);
    }
    printf("random descriptions: %d loaded, %d rejected\n", loaded, failed);
    CHECK(loaded > 200 && failed > 200);
}

int main(void) {
    test_hand_built_merges();
    test_hand_built_scores();
    test_malformed();
    test_export_qwen3();
    test_export_modernbert();
    test_alloc_failures();
    test_random_descriptions();
    return tp_test_exit();
}
