/*
 * test_tokenizer.c — unit tests of src/tokenizer beyond the golden files:
 * special tokens and settings from tokenizer_config.json, offsets, pairs and
 * truncation, batch encoding with per-item errors, decoding with clean-up,
 * streaming decode, chat templates, the public tp_tokenizer_* API, Hugging Face
 * cache lookup, load errors, and small hand-written tokenizer.json files for
 * components the three real tokenizers do not use (Metaspace, Lowercase,
 * Strip, Whitespace, continuing_subword_prefix, fused unk, ignore_merges,
 * single_word/lstrip added tokens, Bert/Roberta post-processors).
 *
 * Expected ids come from the golden files (tests/data/tokenizers) or are
 * worked out by hand from the tokenizer.json written here (see the comments).
 */
#include "test_util.h"
#include "tokenizer/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static tp_tokenizer *load(const char *rel) {
    tp_tokenizer *tok = NULL;
    tp_error err;
    if (tp_tok_load(tp_test_data(rel), &tok, &err) != TP_OK) {
        fprintf(stderr, "load %s: %s\n", rel, err.message);
        return NULL;
    }
    return tok;
}

/* ids of text in a golden file (malloc'd), or NULL */
static int32_t *golden_ids(const char *rel, const char *text, const char *field, size_t *n) {
    char *data = NULL;
    size_t len = 0;
    tp_error err;
    if (tp_read_file(tp_test_data(rel), &data, &len, &err))
        return NULL;
    int32_t *out = NULL;
    char *save = NULL;
    for (char *l = strtok_r(data, "\n", &save); l && !out; l = strtok_r(NULL, "\n", &save)) {
        cJSON *o = cJSON_Parse(l);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "text");
        if (cJSON_IsString(t) && strcmp(t->valuestring, text) == 0) {
            const cJSON *ids = cJSON_GetObjectItemCaseSensitive(o, field);
            *n = (size_t)cJSON_GetArraySize(ids);
            out = malloc((*n + 1) * sizeof *out);
            size_t i = 0;
            const cJSON *x;
            cJSON_ArrayForEach(x, ids) out[i++] = (int32_t)x->valuedouble;
        }
        cJSON_Delete(o);
    }
    free(data);
    return out;
}

static bool same_ids(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    return na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
}

static tp_encoding enc(const tp_tokenizer *tok, const char *a, const char *b, bool special,
                       size_t max_len, tp_trunc_strategy strat, tp_status *st) {
    tp_tok_encode_params p = tp_tok_encode_default_params();
    p.add_special_tokens = special;
    p.max_length = max_len;
    p.strategy = strat;
    tp_encoding e;
    tp_error err;
    *st = tp_tok_encode(tok, NULL, a, (size_t)-1, b, (size_t)-1, &p, &e, &err);
    return e;
}

static char *dec(const tp_tokenizer *tok, const int32_t *ids, size_t n, bool skip, int clean) {
    tp_tok_decode_params p = {.skip_special_tokens = skip, .clean_up_tokenization_spaces = clean};
    char *s = NULL;
    tp_error err;
    if (tp_tok_decode(tok, ids, n, &p, &s, NULL, &err) != TP_OK) {
        fprintf(stderr, "decode: %s\n", err.message);
        return NULL;
    }
    return s;
}

/* ---- Qwen3 ---- */

static void test_qwen3(void) {
    tp_tokenizer *tok = load("tokenizers/qwen3");
    CHECK(tok != NULL);
    if (!tok)
        return;
    const tp_tok_info *in = tp_tok_get_info(tok);
    /* tokenizer_config.json / README: eos <|im_end|> 151645, pad <|endoftext|> 151643, no BOS */
    CHECK_STR(in->eos.text, "<|im_end|>");
    CHECK_EQ_INT(in->eos.id, 151645);
    CHECK_STR(in->pad.text, "<|endoftext|>");
    CHECK_EQ_INT(in->pad.id, 151643);
    CHECK(in->bos.text == NULL && in->bos.id == -1);
    CHECK(!in->add_bos_token && !in->clean_up_tokenization_spaces);
    CHECK_EQ_INT(in->model_max_length, 131072);
    CHECK_EQ_INT(tp_tok_vocab_size(tok), 151669);
    CHECK_EQ_INT(tp_tok_token_to_id(tok, "</think>"), 151668);
    CHECK(!tp_tok_is_special(tok, 151668)); /* <think> tokens are not special */
    CHECK(tp_tok_is_special(tok, 151645));
    CHECK_STR(tp_tok_id_to_token(tok, 151645), "<|im_end|>");
    CHECK(tp_tok_id_to_token(tok, 151669) == NULL);
    CHECK(tp_tok_id_to_token(tok, -1) == NULL);
    size_t nt = 0;
    const tp_tok_chat_template *ct = tp_tok_chat_templates(tok, &nt);
    CHECK_EQ_INT(nt, 1);
    CHECK(nt == 1 && strncmp(ct[0].template, "{%- if tools %}", 15) == 0);
    CHECK(tp_tok_chat_template_get(tok, NULL) == ct[0].template);

    /* README: "Hello, my name is Ryan." -> [9707, 11, 847, 829, 374, 13646, 13] */
    tp_status st;
    tp_encoding e = enc(tok, "Hello, my name is Ryan.", NULL, true, 0, 0, &st);
    const int32_t want[] = {9707, 11, 847, 829, 374, 13646, 13};
    CHECK(st == TP_OK && same_ids(e.ids, e.n, want, 7));
    /* offsets: byte spans of "Hello" "," " my" " name" " is" " Ryan" "." */
    const uint32_t off[] = {0, 5, 5, 6, 6, 9, 9, 14, 14, 17, 17, 22, 22, 23};
    CHECK(st == TP_OK && e.n == 7 && memcmp(e.offsets, off, sizeof off) == 0);
    for (size_t i = 0; i < e.n; i++)
        CHECK(e.attention_mask[i] == 1 && e.seq_ids[i] == 0);
    CHECK(!e.truncated);
    tp_encoding_free(&e);

    /* offsets of an added token in the middle and of NFD input (NFC-normalized) */
    e = enc(tok, "a<think>b", NULL, false, 0, 0, &st);
    CHECK(st == TP_OK && e.n == 3 && e.ids[1] == 151667 && e.offsets[2] == 1 && e.offsets[3] == 8);
    tp_encoding_free(&e);
    /* a character split over byte-level tokens: each part has the character's
     * offsets (HF: alignments are per character) */
    e = enc(tok, "a\xf0\x92\x80\x80", NULL, false, 0, 0, &st); /* "a" + U+12000 */
    CHECK(st == TP_OK && e.n >= 3);
    for (size_t i = 1; st == TP_OK && i < e.n; i++)
        CHECK(e.offsets[2 * i] == 1 && e.offsets[2 * i + 1] == 5);
    tp_encoding_free(&e);
    e = enc(tok, "cafe\xcc\x81", NULL, false, 0, 0, &st); /* "café" in NFD: 6 bytes */
    CHECK(st == TP_OK && e.n >= 1 && e.offsets[2 * (e.n - 1) + 1] == 6);
    tp_encoding_free(&e);

    /* invalid UTF-8 names the byte */
    tp_tok_encode_params p = tp_tok_encode_default_params();
    tp_error err;
    st = tp_tok_encode(tok, NULL, "ab\xff", 3, NULL, 0, &p, &e, &err);
    CHECK(st == TP_ERR_INPUT && strstr(err.message, "byte 2") != NULL);
    CHECK(e.status == TP_ERR_INPUT && e.error && strstr(e.error, "byte 2"));
    tp_encoding_free(&e);

    /* batch: per-item status, results equal to single encodes, any thread count */
    const char *texts[] = {"Hello world", "ab\xc3", "The quick brown fox jumps over the lazy dog.",
                           "", "\xe6\x9d\xb1\xe4\xba\xac"};
    tp_encoding out1[5], out2[5];
    tp_pool *pool = tp_pool_create(2, &err);
    CHECK(tp_tok_encode_batch(tok, NULL, texts, NULL, 5, NULL, out1, &err) == TP_OK);
    CHECK(pool && tp_tok_encode_batch(tok, pool, texts, NULL, 5, NULL, out2, &err) == TP_OK);
    CHECK(out1[1].status == TP_ERR_INPUT && strstr(out1[1].error, "byte 2"));
    CHECK(out2[1].status == TP_ERR_INPUT);
    size_t gn = 0;
    int32_t *g = golden_ids("tokenizers/qwen3/golden.jsonl",
                            "The quick brown fox jumps over the lazy dog.", "ids", &gn);
    CHECK(g && same_ids(out1[2].ids, out1[2].n, g, gn));
    free(g);
    for (int i = 0; i < 5; i++) {
        CHECK(out1[i].status == out2[i].status);
        CHECK(same_ids(out1[i].ids, out1[i].n, out2[i].ids, out2[i].n));
        tp_encoding_free(&out1[i]);
        tp_encoding_free(&out2[i]);
    }
    CHECK(tp_tok_encode_batch(tok, pool, texts, NULL, 0, NULL, out1, &err) == TP_OK);
    tp_pool_destroy(pool);

    /* decode out of range */
    int32_t bad[] = {9707, 999999};
    char *s = NULL;
    CHECK(tp_tok_decode(tok, bad, 2, NULL, &s, NULL, &err) == TP_ERR_INPUT &&
          strstr(err.message, "999999"));

    /* streaming: chunks are whole UTF-8 and add up to the full decode */
    const char *text = "Emoji \xf0\x9f\x98\x8a\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd and \xe6\x9d\xb1"
                       "\xe4\xba\xac, caf\xc3\xa9 \xe0\xb8\xaa\xe0\xb8\xa7\xe0\xb8\xb1!";
    e = enc(tok, text, NULL, false, 0, 0, &st);
    tp_tok_stream *ds = tp_tok_stream_create(tok, NULL);
    tp_buf all = {0};
    int held = 0;
    for (size_t i = 0; i < e.n; i++) {
        tp_buf chunk = {0};
        CHECK(tp_tok_stream_step(ds, e.ids[i], &chunk, &err) == TP_OK);
        CHECK(tp_utf8_validate(chunk.data ? chunk.data : "", chunk.len) == chunk.len);
        held += chunk.len == 0;
        tp_buf_append(&all, chunk.data ? chunk.data : "", chunk.len);
        tp_buf_free(&chunk);
    }
    CHECK(tp_tok_stream_flush(ds, &all, &err) == TP_OK);
    CHECK(all.data && strcmp(all.data, text) == 0);
    CHECK(held > 0); /* the emoji are split over byte-level tokens */
    tp_buf_free(&all);
    tp_encoding_free(&e);
    /* an incomplete character at the end is flushed as U+FFFD */
    e = enc(tok, "\xf0\x92\x80\x80", NULL, false, 0, 0, &st); /* U+12000, cuneiform */
    CHECK(st == TP_OK && e.n >= 2);
    tp_buf t2 = {0};
    CHECK(tp_tok_stream_step(ds, e.ids[0], &t2, &err) == TP_OK); /* first part of the emoji */
    CHECK(t2.len == 0);
    CHECK(tp_tok_stream_flush(ds, &t2, &err) == TP_OK);
    CHECK(t2.data && strcmp(t2.data, "\xef\xbf\xbd") == 0);
    tp_buf_free(&t2);
    tp_tok_stream_free(ds);
    tp_encoding_free(&e);
    tp_tok_free(tok);
}

/* ---- ModernBERT ---- */

static void test_modernbert(void) {
    tp_tokenizer *tok = load("tokenizers/modernbert");
    CHECK(tok != NULL);
    if (!tok)
        return;
    const tp_tok_info *in = tp_tok_get_info(tok);
    CHECK_EQ_INT(in->cls.id, 50281);
    CHECK_EQ_INT(in->sep.id, 50282);
    CHECK_EQ_INT(in->pad.id, 50283);
    CHECK_EQ_INT(in->mask.id, 50284);
    CHECK_EQ_INT(in->unk.id, 50280);
    CHECK_STR(in->mask.text, "[MASK]");
    CHECK(in->clean_up_tokenization_spaces);
    CHECK_EQ_INT(in->model_max_length, 8192);
    CHECK_EQ_INT(tp_tok_vocab_size(tok), 50368);
    CHECK(tp_tok_is_special(tok, 50284) && !tp_tok_is_special(tok, 0));
    size_t nt = 1;
    tp_tok_chat_templates(tok, &nt);
    CHECK_EQ_INT(nt, 0);

    const char *A = "The quick brown fox jumps over the lazy dog.";
    const char *B = "Hello world";
    size_t na = 0, nb = 0;
    int32_t *ga = golden_ids("tokenizers/modernbert/golden.jsonl", A, "ids", &na);
    int32_t *gb = golden_ids("tokenizers/modernbert/golden.jsonl", B, "ids", &nb);
    CHECK(ga && gb && na == 10 && nb == 2);
    if (!ga || !gb || na != 10 || nb != 2) {
        free(ga);
        free(gb);
        tp_tok_free(tok);
        return;
    }
    /* pair: [CLS] A [SEP] B [SEP] */
    tp_status st;
    tp_encoding e = enc(tok, A, B, true, 0, 0, &st);
    CHECK(st == TP_OK && e.n == na + nb + 3);
    if (st == TP_OK && e.n == na + nb + 3) {
        CHECK(e.ids[0] == 50281 && e.ids[na + 1] == 50282 && e.ids[e.n - 1] == 50282);
        CHECK(same_ids(e.ids + 1, na, ga, na) && same_ids(e.ids + na + 2, nb, gb, nb));
        CHECK(e.seq_ids[0] == -1 && e.seq_ids[1] == 0 && e.seq_ids[na + 2] == 1);
        CHECK(e.offsets[0] == 0 && e.offsets[1] == 0);
        /* "world" of B: offsets into B */
        CHECK(e.offsets[2 * (na + 3)] == 5 && e.offsets[2 * (na + 3) + 1] == 11);
    }
    tp_encoding_free(&e);

    /* truncation, single: max_length 5 = [CLS] 3 tokens [SEP] */
    e = enc(tok, A, NULL, true, 5, 0, &st);
    CHECK(st == TP_OK && e.n == 5 && e.truncated && e.ids[0] == 50281 && e.ids[4] == 50282 &&
          same_ids(e.ids + 1, 3, ga, 3));
    tp_encoding_free(&e);
    e = enc(tok, A, NULL, true, 12, 0, &st);
    CHECK(st == TP_OK && e.n == 12 && !e.truncated);
    tp_encoding_free(&e);
    /* longest_first: budget 10 - 3 = 7; B (2) fits in half, A gets 5 */
    e = enc(tok, A, B, true, 10, TP_TRUNC_LONGEST_FIRST, &st);
    CHECK(st == TP_OK && e.n == 10 && e.truncated && same_ids(e.ids + 1, 5, ga, 5) &&
          e.ids[6] == 50282 && same_ids(e.ids + 7, 2, gb, 2));
    tp_encoding_free(&e);
    /* longest_first with both long: budget 7 of (10, 10): 3 + 4 */
    e = enc(tok, A, A, true, 10, TP_TRUNC_LONGEST_FIRST, &st);
    CHECK(st == TP_OK && e.n == 10 && e.ids[4] == 50282 && same_ids(e.ids + 5, 4, ga, 4));
    tp_encoding_free(&e);
    /* only_second: B keeps budget - |A| */
    e = enc(tok, B, A, true, 10, TP_TRUNC_ONLY_SECOND, &st);
    CHECK(st == TP_OK && e.n == 10 && same_ids(e.ids + 1, 2, gb, 2) &&
          same_ids(e.ids + 4, 5, ga, 5));
    tp_encoding_free(&e);
    e = enc(tok, A, B, true, 8, TP_TRUNC_ONLY_SECOND, &st);
    CHECK(st == TP_ERR_TOO_LONG);
    tp_encoding_free(&e);

    /* [MASK] has lstrip: the space before it is part of the token */
    e = enc(tok, "is [MASK].", NULL, false, 0, 0, &st);
    CHECK(st == TP_OK && e.n == 3 && e.ids[1] == 50284 && e.offsets[2] == 2 && e.offsets[3] == 9);
    /* decode: raw keeps "is[MASK]."; clean-up (config: true) removes " ." */
    char *s = dec(tok, e.ids, e.n, false, 0);
    CHECK(s && strcmp(s, "is[MASK].") == 0);
    free(s);
    tp_encoding_free(&e);
    e = enc(tok, "Hello , world . I do n't know !", NULL, false, 0, 0, &st);
    s = dec(tok, e.ids, e.n, false, -1);
    CHECK(s && strcmp(s, "Hello, world. I don't know!") == 0);
    free(s);
    s = dec(tok, e.ids, e.n, false, 0);
    CHECK(s && strcmp(s, "Hello , world . I do n't know !") == 0);
    free(s);
    tp_encoding_free(&e);
    char buf[] = "a ' b n't";
    size_t n = tp_tok_clean_up_spaces(buf, strlen(buf));
    CHECK(n == 6 && strcmp(buf, "a'bn't") == 0); /* " ' " -> "'", then " n't" -> "n't" */
    free(ga);
    free(gb);
    tp_tok_free(tok);
}

/* ---- hand-written tokenizers ---- */

static char tmpdir_buf[256];

static const char *write_tok(const char *tokenizer_json, const char *config_json) {
    snprintf(tmpdir_buf, sizeof tmpdir_buf, "/tmp/tp_tok_test_XXXXXX");
    if (!mkdtemp(tmpdir_buf))
        return NULL;
    char p[512];
    snprintf(p, sizeof p, "%s/tokenizer.json", tmpdir_buf);
    FILE *f = fopen(p, "wb");
    if (!f)
        return NULL;
    fputs(tokenizer_json, f);
    fclose(f);
    if (config_json) {
        snprintf(p, sizeof p, "%s/tokenizer_config.json", tmpdir_buf);
        f = fopen(p, "wb");
        if (!f)
            return NULL;
        fputs(config_json, f);
        fclose(f);
    }
    return tmpdir_buf;
}

static void rm_tok(const char *dir) {
    char p[512];
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/chat_template.jinja", dir);
    unlink(p);
    rmdir(dir);
}

static tp_tokenizer *load_json(const char *json, const char *config, tp_status *st, tp_error *err) {
    const char *d = write_tok(json, config);
    tp_tokenizer *tok = NULL;
    *st = d ? tp_tok_load(d, &tok, err) : TP_ERR_IO;
    if (d)
        rm_tok(d);
    return tok;
}

static void test_metaspace_unk(void) {
    /* Lowercase + Strip, Metaspace (always, split), BPE with fused <unk>.
     * "  AB xyzC " -> "ab xyzc" -> "▁ab▁xyzc" -> words "▁ab" "▁xyzc"
     * "▁ab": ▁ a b -(rank 0)-> ▁a b -(rank 1)-> ▁ab = 5
     * "▁xyzc": ▁ x y z c -> ▁ <unk>(x y z fused) c = 1 0 6 */
    const char *json =
        "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":7,\"content\":\"ab\",\"single_word\":true,"
        "\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":false}],"
        "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Lowercase\"},"
        "{\"type\":\"Strip\",\"strip_left\":true,\"strip_right\":true}]},"
        "\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"\\u2581\","
        "\"prepend_scheme\":\"always\",\"split\":true},\"post_processor\":null,"
        "\"decoder\":{\"type\":\"Metaspace\",\"replacement\":\"\\u2581\","
        "\"prepend_scheme\":\"always\",\"split\":true},"
        "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":\"<unk>\",\"fuse_unk\":true,"
        "\"byte_fallback\":false,\"vocab\":{\"<unk>\":0,\"\\u2581\":1,\"a\":2,\"b\":3,"
        "\"\\u2581a\":4,\"\\u2581ab\":5,\"c\":6},\"merges\":[\"\\u2581 a\",\"\\u2581a b\"]}}";
    tp_status st;
    tp_error err;
    tp_tokenizer *tok = load_json(json, NULL, &st, &err);
    CHECK_MSG(st == TP_OK, "%s", err.message);
    if (!tok)
        return;
    tp_encoding e = enc(tok, "  AB xyzC ", NULL, true, 0, 0, &st);
    const int32_t want[] = {5, 1, 0, 6};
    CHECK(st == TP_OK && same_ids(e.ids, e.n, want, 4));
    CHECK(st == TP_OK && e.n == 4 && e.offsets[0] == 2 && e.offsets[1] == 4 && e.offsets[4] == 5 &&
          e.offsets[5] == 8);
    char *s = dec(tok, e.ids, e.n, false, 0);
    CHECK(s && strcmp(s, "ab <unk>c") == 0); /* first token loses its ▁ */
    free(s);
    tp_encoding_free(&e);
    /* single_word: "ab" at 0 is a word; in "cab" it is not.
     * " cab" -> "cab" -> "▁cab": ▁ c a b, no merge applies -> 1 6 2 3 */
    e = enc(tok, "ab cab", NULL, true, 0, 0, &st);
    const int32_t want2[] = {7, 1, 6, 2, 3};
    CHECK(st == TP_OK && same_ids(e.ids, e.n, want2, 5));
    tp_encoding_free(&e);
    tp_tok_free(tok);
}

static void test_wordpiece_style(void) {
    /* continuing_subword_prefix "##", Whitespace pre-tokenizer, BertProcessing,
     * no decoder (tokens joined by spaces).
     * "hey! hel" -> "hey" "!" "hel"; hey: h ##e ##y -> he ##y -> hey = 7;
     * "!" = 8; hel: h ##e ##l -> he ##l = 6 9. */
    const char *json =
        "{\"added_tokens\":[{\"id\":1,\"content\":\"[CLS]\",\"special\":true,"
        "\"normalized\":false},{\"id\":2,\"content\":\"[SEP]\",\"special\":true,"
        "\"normalized\":false}],\"normalizer\":null,"
        "\"pre_tokenizer\":{\"type\":\"Whitespace\"},"
        "\"post_processor\":{\"type\":\"BertProcessing\",\"sep\":[\"[SEP]\",2],"
        "\"cls\":[\"[CLS]\",1]},\"decoder\":null,"
        "\"model\":{\"type\":\"BPE\",\"unk_token\":\"[UNK]\",\"continuing_subword_prefix\":\"##\","
        "\"vocab\":{\"[UNK]\":0,\"[CLS]\":1,\"[SEP]\":2,\"h\":3,\"##e\":4,\"##y\":5,\"he\":6,"
        "\"hey\":7,\"!\":8,\"##l\":9},\"merges\":[[\"h\",\"##e\"],[\"he\",\"##y\"]]}}";
    tp_status st;
    tp_error err;
    tp_tokenizer *tok = load_json(json, NULL, &st, &err);
    CHECK_MSG(st == TP_OK, "%s", err.message);
    if (!tok)
        return;
    tp_encoding e = enc(tok, "hey! hel", NULL, true, 0, 0, &st);
    const int32_t want[] = {1, 7, 8, 6, 9, 2};
    CHECK(st == TP_OK && same_ids(e.ids, e.n, want, 6));
    tp_encoding_free(&e);
    e = enc(tok, "hey", "!", true, 0, 0, &st);
    const int32_t want2[] = {1, 7, 2, 8, 2};
    CHECK(st == TP_OK && same_ids(e.ids, e.n, want2, 5));
    CHECK(st == TP_OK && e.n == 5 && e.type_ids[2] == 0 && e.type_ids[3] == 1 &&
          e.type_ids[4] == 1);
    tp_encoding_free(&e);
    int32_t ids[] = {1, 7, 8};
    char *s = dec(tok, ids, 3, true, 0);
    CHECK(s && strcmp(s, "hey !") == 0);
    free(s);
    tp_tok_free(tok);

    /* the same model with its members in another order: merges before vocab
     * (parsed after it), the prefix after the merges (merges re-resolved) */
    const char *json2 =
        "{\"added_tokens\":[{\"id\":1,\"content\":\"[CLS]\",\"special\":true,"
        "\"normalized\":false},{\"id\":2,\"content\":\"[SEP]\",\"special\":true,"
        "\"normalized\":false}],\"pre_tokenizer\":{\"type\":\"Whitespace\"},"
        "\"post_processor\":{\"type\":\"BertProcessing\",\"sep\":[\"[SEP]\",2],"
        "\"cls\":[\"[CLS]\",1]},"
        "\"model\":{\"merges\":[[\"h\",\"##e\"],[\"he\",\"##y\"]],\"type\":\"BPE\","
        "\"unk_token\":\"[UNK]\",\"vocab\":{\"[UNK]\":0,\"[CLS]\":1,\"[SEP]\":2,\"h\":3,"
        "\"##e\":4,\"##y\":5,\"he\":6,\"hey\":7,\"!\":8,\"##l\":9},"
        "\"continuing_subword_prefix\":\"##\"}}";
    const char *json3 = /* prefix known, vocab before merges: merges parsed in place */
        "{\"pre_tokenizer\":{\"type\":\"Whitespace\"},\"model\":{\"type\":\"BPE\","
        "\"continuing_subword_prefix\":\"##\",\"unk_token\":\"[UNK]\",\"vocab\":{\"[UNK]\":0,"
        "\"h\":3,\"##e\":4,\"##y\":5,\"he\":6,\"hey\":7,\"!\":8,\"##l\":9},"
        "\"merges\":[\"h ##e\",\"he ##y\"]}}";
    const char *variants[] = {json2, json3};
    for (int v = 0; v < 2; v++) {
        tok = load_json(variants[v], NULL, &st, &err);
        CHECK_MSG(st == TP_OK, "variant %d: %s", v, err.message);
        if (!tok)
            continue;
        e = enc(tok, "hey! hel", NULL, false, 0, 0, &st);
        const int32_t want3[] = {7, 8, 6, 9};
        CHECK_MSG(st == TP_OK && same_ids(e.ids, e.n, want3, 4), "variant %d", v);
        tp_encoding_free(&e);
        tp_tok_free(tok);
    }
}

static void test_bytelevel_roberta(void) {
    /* ByteLevel (add_prefix_space, regex), ignore_merges, RobertaProcessing,
     * ByteLevel decoder, <mask> with lstrip.
     * "hi" -> " hi" -> "Ġhi": in the vocabulary, so ignore_merges gives 4 (the
     * merges alone would stop at Ġh i = 3 2). */
    const char *json =
        "{\"added_tokens\":[{\"id\":5,\"content\":\"<s>\",\"special\":true,\"normalized\":false},"
        "{\"id\":6,\"content\":\"</s>\",\"special\":true,\"normalized\":false},"
        "{\"id\":8,\"content\":\"<mask>\",\"lstrip\":true,\"special\":true,"
        "\"normalized\":false}],"
        "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"use_regex\":true},"
        "\"post_processor\":{\"type\":\"RobertaProcessing\",\"sep\":[\"</s>\",6],"
        "\"cls\":[\"<s>\",5],\"trim_offsets\":true,\"add_prefix_space\":true},"
        "\"decoder\":{\"type\":\"ByteLevel\"},"
        "\"model\":{\"type\":\"BPE\",\"ignore_merges\":true,\"vocab\":{\"\\u0120\":0,\"h\":1,"
        "\"i\":2,\"\\u0120h\":3,\"\\u0120hi\":4},\"merges\":[\"\\u0120 h\"]}}";
    tp_status st;
    tp_error err;
    tp_tokenizer *tok = load_json(json, NULL, &st, &err);
    CHECK_MSG(st == TP_OK, "%s", err.message);
    if (!tok)
        return;
    tp_encoding e = enc(tok, "hi", NULL, true, 0, 0, &st);
    const int32_t want[] = {5, 4, 6};
    CHECK(st == TP_OK && same_ids(e.ids, e.n, want, 3));
    CHECK(st == TP_OK && e.n == 3 && e.offsets[2] == 0 && e.offsets[3] == 2);
    tp_encoding_free(&e);
    e = enc(tok, "hi <mask>", "hi", true, 0, 0, &st);
    const int32_t want2[] = {5, 4, 8, 6, 6, 4, 6};
    CHECK(st == TP_OK && same_ids(e.ids, e.n, want2, 7));
    CHECK(st == TP_OK && e.n == 7 && e.offsets[4] == 2 && e.offsets[5] == 9);
    tp_encoding_free(&e);
    int32_t ids[] = {5, 4, 8, 4, 6};
    char *s = dec(tok, ids, 5, true, 0);
    CHECK(s && strcmp(s, " hi hi") == 0);
    free(s);
    s = dec(tok, ids, 5, false, 0);
    CHECK(s && strcmp(s, "<s> hi<mask> hi</s>") == 0);
    free(s);
    tp_tok_free(tok);
}

static void test_byte_fallback(void) {
    /* byte_fallback: a character outside the vocabulary becomes its UTF-8 bytes
     * as <0xNN> tokens; the ByteFallback decoder turns a run of them back into
     * text when it is valid UTF-8, else one U+FFFD per byte token. */
    const char *json =
        "{\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"ByteFallback\"},"
        "{\"type\":\"Fuse\"}]},\"model\":{\"type\":\"BPE\",\"byte_fallback\":true,"
        "\"vocab\":{\"<0xE6>\":0,\"<0x9D>\":1,\"<0xB1>\":2,\"a\":3},\"merges\":[]}}";
    tp_status st;
    tp_error err;
    tp_tokenizer *tok = load_json(json, NULL, &st, &err);
    CHECK_MSG(st == TP_OK, "%s", err.message);
    if (!tok)
        return;
    tp_encoding e = enc(tok, "a\xe6\x9d\xb1", NULL, true, 0, 0, &st); /* "a東" */
    const int32_t want[] = {3, 0, 1, 2};
    CHECK(st == TP_OK && same_ids(e.ids, e.n, want, 4));
    tp_encoding_free(&e);
    int32_t ids[] = {0, 1, 3};
    char *s = dec(tok, ids, 3, false, 0);
    CHECK(s && strcmp(s, "\xef\xbf\xbd\xef\xbf\xbd"
                         "a") == 0);
    free(s);
    /* a run of 900 byte tokens (300 characters) stays one run */
    int32_t many[900];
    for (int i = 0; i < 900; i++)
        many[i] = i % 3;
    s = dec(tok, many, 900, false, 0);
    CHECK(s && strlen(s) == 900);
    for (int i = 0; s && i < 300; i++)
        CHECK(memcmp(s + 3 * i, "\xe6\x9d\xb1", 3) == 0);
    free(s);
    tp_tok_free(tok);
}

/* ---- components one by one ----
 * A tokenizer whose vocabulary holds exactly the pieces a component should
 * produce, with ignore_merges: a word that is in the vocabulary becomes one
 * token, anything else falls apart into characters or <unk>. So the tokens,
 * joined with '|', show the splits (and normalizations) directly. The
 * expected strings are worked out from the HF rules by hand. */
static char *pieces(const char *normalizer, const char *pretok, const char *vocab_csv,
                    const char *text) {
    char vocab[2048] = "\"<unk>\":0";
    int id = 1;
    char item[128];
    for (const char *p = vocab_csv; *p;) {
        const char *e = strchr(p, '|');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        snprintf(item, sizeof item, ",\"%.*s\":%d", (int)n, p, id++);
        strncat(vocab, item, sizeof vocab - strlen(vocab) - 1);
        p += n + (e ? 1 : 0);
    }
    char json[4096];
    snprintf(json, sizeof json,
             "{\"normalizer\":%s,\"pre_tokenizer\":%s,\"model\":{\"type\":\"BPE\","
             "\"unk_token\":\"<unk>\",\"ignore_merges\":true,\"vocab\":{%s},\"merges\":[]}}",
             normalizer, pretok, vocab);
    tp_status st;
    tp_error err;
    tp_tokenizer *tok = load_json(json, NULL, &st, &err);
    if (!tok) {
        fprintf(stderr, "pieces: %s\n", err.message);
        return NULL;
    }
    tp_encoding e = enc(tok, text, NULL, false, 0, 0, &st);
    tp_buf b = {0};
    for (size_t i = 0; st == TP_OK && i < e.n; i++) {
        if (i)
            tp_buf_puts(&b, "|");
        tp_buf_puts(&b, tp_tok_id_to_token(tok, e.ids[i]));
    }
    tp_encoding_free(&e);
    tp_tok_free(tok);
    return tp_buf_take(&b);
}

static void check_pieces(const char *normalizer, const char *pretok, const char *vocab,
                         const char *text, const char *want) {
    char *got = pieces(normalizer, pretok, vocab, text);
    CHECK_MSG(got && strcmp(got, want) == 0, "%s / %s on '%s': got '%s', want '%s'", normalizer,
              pretok, text, got ? got : "(error)", want);
    free(got);
}

static void test_components(void) {
    const char *V = "a|b|c|-|a-|b-|-b|-c|--";

    char pt[256];
    struct {
        const char *beh, *inv, *want;
    } sc[] = {
        {"Removed", "false", "a|b|c"},
        {"Isolated", "false", "a|-|b|-|-|c"},
        {"MergedWithPrevious", "false", "a-|b-|-|c"},
        {"MergedWithNext", "false", "a|-b|-|-c"},
        {"Contiguous", "false", "a|-|b|--|c"},
        {"Removed", "true", "-|-|-"},
    };
    for (size_t i = 0; i < sizeof sc / sizeof sc[0]; i++) {
        snprintf(pt, sizeof pt,
                 "{\"type\":\"Split\",\"pattern\":{\"String\":\"-\"},\"behavior\":\"%s\","
                 "\"invert\":%s}",
                 sc[i].beh, sc[i].inv);
        check_pieces("null", pt, V, "a-b--c", sc[i].want);
    }
    /* regex Split (PCRE2), Isolated */
    check_pieces(
        "null", "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\d+\"},\"behavior\":\"Isolated\"}",
        "ab|12|c|3", "ab12c3", "ab|12|c|3");
    check_pieces("null", "{\"type\":\"Digits\",\"individual_digits\":false}", "ab|123|c|45",
                 "ab123c45", "ab|123|c|45");
    check_pieces("null", "{\"type\":\"Digits\",\"individual_digits\":true}", "ab|1|2|3|c", "ab123c",
                 "ab|1|2|3|c");
    check_pieces("null", "{\"type\":\"WhitespaceSplit\"}", "a|b|c", "a  b\tc ", "a|b|c");
    check_pieces("null", "{\"type\":\"Whitespace\"}", "ab|,|cd|!", "ab, cd!", "ab|,|cd|!");
    /* Metaspace without split: one word, ▁ prepended (first) */
    check_pieces("null",
                 "{\"type\":\"Metaspace\",\"replacement\":\"\\u2581\",\"prepend_scheme\":"
                 "\"first\",\"split\":false}",
                 "\\u2581a\\u2581b", "a b",
                 "\xe2\x96\x81"
                 "a"
                 "\xe2\x96\x81"
                 "b");
    /* Sequence of pre-tokenizers: split on spaces, then digits */
    check_pieces("null",
                 "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"WhitespaceSplit\"},"
                 "{\"type\":\"Digits\",\"individual_digits\":true}]}",
                 "x|1|2|y", "x12 y", "x|1|2|y");
    /* normalizers */
    check_pieces("{\"type\":\"NFKC\"}", "null", "fiA",
                 "\xef\xac\x81"
                 "A",
                 "fiA"); /* ﬁ */
    check_pieces("{\"type\":\"NFD\"}", "null", "e\\u0301", "\xc3\xa9", "e\xcc\x81");
    check_pieces("{\"type\":\"NFC\"}", "null", "\\u00e9", "e\xcc\x81", "\xc3\xa9");
    check_pieces("{\"type\":\"NFKD\"}", "null", "fi", "\xef\xac\x81", "fi");
    check_pieces("{\"type\":\"Lowercase\"}", "null", "\\u00e0b",
                 "\xc3\x80"
                 "B",
                 "\xc3\xa0"
                 "b");
    check_pieces("{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"\\\\d+\"},\"content\":\"#\"}",
                 "null", "a#b#", "a12b3", "a#b#");
    check_pieces("{\"type\":\"Prepend\",\"prepend\":\"_\"}", "null", "_ab", "ab", "_ab");
    check_pieces("{\"type\":\"Strip\",\"strip_left\":true,\"strip_right\":false}", "null", "ab ",
                 " \t ab ", "ab ");
    check_pieces("{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Lowercase\"},"
                 "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"-\"}]}",
                 "null", "a-b", "A B", "a-b");
}

static void test_decoders(void) {
    /* Strip (one leading '_'), Replace (regex), Sequence: tokens "_ab" "_c1" */
    const char *json =
        "{\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Strip\",\"content\":\"_\","
        "\"start\":1,\"stop\":0},{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"[0-9]\"},"
        "\"content\":\"<d>\"},{\"type\":\"Fuse\"}]},\"model\":{\"type\":\"BPE\",\"vocab\":"
        "{\"__ab\":0,\"_c1\":1,\"x\":2},\"merges\":[]}}";
    tp_status st;
    tp_error err;
    tp_tokenizer *tok = load_json(json, NULL, &st, &err);
    CHECK_MSG(st == TP_OK, "%s", err.message);
    if (!tok)
        return;
    int32_t ids[] = {0, 1, 2};
    char *s = dec(tok, ids, 3, false, 0);
    CHECK(s && strcmp(s, "_abc<d>x") == 0);
    free(s);
    tp_tok_free(tok);
}

static void test_config_variants(void) {
    const char *json = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"<s>\":1},\"merges\":[]}}";
    /* bos as an AddedToken object, chat_template as a list */
    const char *cfg = "{\"bos_token\":{\"__type\":\"AddedToken\",\"content\":\"<s>\"},"
                      "\"add_bos_token\":true,\"model_max_length\":1e30,"
                      "\"chat_template\":[{\"name\":\"default\",\"template\":\"D\"},"
                      "{\"name\":\"tool_use\",\"template\":\"T\"}]}";
    tp_status st;
    tp_error err;
    tp_tokenizer *tok = load_json(json, cfg, &st, &err);
    CHECK_MSG(st == TP_OK, "%s", err.message);
    if (tok) {
        const tp_tok_info *in = tp_tok_get_info(tok);
        CHECK(in->bos.id == 1 && in->add_bos_token && in->model_max_length == 0);
        CHECK_STR(tp_tok_chat_template_get(tok, "tool_use"), "T");
        CHECK_STR(tp_tok_chat_template_get(tok, NULL), "D");
        CHECK(tp_tok_chat_template_get(tok, "nope") == NULL);
        /* no pre-tokenizer, no unk: an unknown character is a clear item error */
        tp_encoding e = enc(tok, "ab", NULL, true, 0, 0, &st);
        CHECK(st == TP_ERR_INPUT && e.error && strstr(e.error, "U+0062"));
        tp_encoding_free(&e);
        tp_tok_free(tok);
    }
    /* special tokens from special_tokens_map.json when the config lacks them;
     * unk from the model */
    {
        const char *js =
            "{\"model\":{\"type\":\"BPE\",\"unk_token\":\"?\",\"vocab\":{\"a\":0,\"<s>\":1,"
            "\"?\":2},\"merges\":[]}}";
        const char *d2 = write_tok(js, "{\"eos_token\":\"a\"}");
        char p2[512];
        snprintf(p2, sizeof p2, "%s/special_tokens_map.json", d2);
        FILE *f2 = fopen(p2, "wb");
        if (f2) {
            fputs("{\"bos_token\":{\"content\":\"<s>\"},\"eos_token\":\"<s>\"}", f2);
            fclose(f2);
        }
        tok = NULL;
        CHECK(tp_tok_load(d2, &tok, &err) == TP_OK);
        const tp_tok_info *in = tok ? tp_tok_get_info(tok) : NULL;
        CHECK(in && in->bos.id == 1 && in->eos.id == 0 && in->unk.id == 2); /* config wins */
        tp_tok_free(tok);
        f2 = fopen(p2, "wb");
        if (f2) {
            fputs("[1,", f2);
            fclose(f2);
        }
        tok = NULL;
        CHECK(tp_tok_load(d2, &tok, &err) == TP_ERR_FORMAT &&
              strstr(err.message, "special_tokens_map.json"));
        unlink(p2);
        rm_tok(d2);
    }
    /* chat_template.jinja when the config has none */
    const char *d = write_tok(json, "{}");
    char p[512];
    snprintf(p, sizeof p, "%s/chat_template.jinja", d);
    FILE *f = fopen(p, "wb");
    if (f) {
        fputs("{{ messages }}", f);
        fclose(f);
    }
    tok = NULL;
    CHECK(tp_tok_load(d, &tok, &err) == TP_OK);
    CHECK(tok && tp_tok_chat_template_get(tok, NULL) &&
          strcmp(tp_tok_chat_template_get(tok, NULL), "{{ messages }}") == 0);
    tp_tok_free(tok);
    rm_tok(d);
}

static void test_load_errors(void) {
    struct {
        const char *json, *want;
        tp_status st;
    } cases[] = {
        {"{\"normalizer\":{\"type\":\"Foo\"},\"model\":{\"type\":\"BPE\",\"vocab\":{},"
         "\"merges\":[]}}",
         "normalizer type 'Foo'", TP_ERR_UNSUPPORTED},
        {"{\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Bar\"}]},"
         "\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}",
         "pre_tokenizer.pretokenizers[0]", TP_ERR_UNSUPPORTED},
        {"{\"decoder\":{\"type\":\"WordPiece\"},\"model\":{\"type\":\"BPE\",\"vocab\":{},"
         "\"merges\":[]}}",
         "decoder type 'WordPiece'", TP_ERR_UNSUPPORTED},
        {"{\"model\":{\"type\":\"Unigram\",\"vocab\":[]}}", "model.type 'Unigram'",
         TP_ERR_UNSUPPORTED},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a b\"]}}",
         "model.merges[0]", TP_ERR_FORMAT},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,}}}", "model.vocab", TP_ERR_FORMAT},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}", "", TP_ERR_FORMAT},
        {"{\"added_tokens\":[{\"content\":\"x\"}],\"model\":{\"type\":\"BPE\",\"vocab\":{},"
         "\"merges\":[]}}",
         "added_tokens[0]", TP_ERR_FORMAT},
        {"{\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\"},"
         "\"behavior\":\"Isolated\"},\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}",
         "pre_tokenizer.pattern", TP_ERR_UNSUPPORTED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tp_status st;
        tp_error err;
        tp_error_clear(&err);
        tp_tokenizer *tok = load_json(cases[i].json, NULL, &st, &err);
        CHECK_MSG(st == cases[i].st && tok == NULL, "case %zu: %s (%s)", i, tp_status_name(st),
                  err.message);
        CHECK_MSG(strstr(err.message, cases[i].want) != NULL &&
                      strstr(err.message, "tokenizer.json") != NULL,
                  "case %zu: message '%s'", i, err.message);
        tp_tok_free(tok);
    }
    tp_status st;
    tp_error err;
    load_json("{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}", "{bad", &st, &err);
    CHECK(st == TP_ERR_FORMAT && strstr(err.message, "tokenizer_config.json"));
    tp_tokenizer *tok = NULL;
    CHECK(tp_tok_load("/nonexistent/dir", &tok, &err) == TP_ERR_NOT_FOUND && tok == NULL);
}

/* ---- public API and the HF cache ---- */

static void test_public_api(void) {
    tp_tokenizer *tok = NULL;
    tp_error err;
    CHECK(tp_tokenizer_load(tp_test_data("tokenizers/qwen3"), &tok, &err) == TP_OK);
    if (!tok)
        return;
    tp_tokenization r;
    CHECK(tp_tokenizer_encode(tok, "Hello world", true, &r, &err) == TP_OK);
    CHECK(r.n == 2 && r.ids[0] == 9707 && r.ids[1] == 1879);
    CHECK(r.n == 2 && strcmp(r.tokens[0], "Hello") == 0 &&
          strcmp(r.tokens[1], "\xc4\xa0world") == 0);
    CHECK(r.n == 2 && r.offsets[2] == 5 && r.offsets[3] == 11);
    char *s = NULL;
    CHECK(tp_tokenizer_decode(tok, r.ids, r.n, true, &s, &err) == TP_OK && s &&
          strcmp(s, "Hello world") == 0);
    free(s);
    tp_tokenization_free(&r);
    CHECK(r.ids == NULL && r.n == 0);
    CHECK(tp_tokenizer_encode(tok, "x\xed\xa0\x80", true, &r, &err) == TP_ERR_INPUT);
    CHECK(r.status == TP_ERR_INPUT && r.error && strstr(r.error, "byte 1"));
    tp_tokenization_free(&r);
    const char *texts[] = {"Hello world", "\xc0\xaf", "a"};
    tp_tokenization rs[3];
    CHECK(tp_tokenizer_encode_batch(tok, texts, 3, false, 2, rs, &err) == TP_OK);
    CHECK(rs[0].status == TP_OK && rs[0].n == 2 && rs[0].ids[1] == 1879);
    CHECK(rs[1].status == TP_ERR_INPUT && rs[1].error && strstr(rs[1].error, "byte 0"));
    CHECK(rs[2].status == TP_OK && rs[2].n == 1);
    for (int i = 0; i < 3; i++)
        tp_tokenization_free(&rs[i]);
    CHECK_EQ_INT(tp_tokenizer_vocab_size(tok), 151669);
    tp_tokenizer_free(tok);
    tp_tokenizer_free(NULL);

    /* HF cache: $HF_HUB_CACHE/models--org--name/snapshots/<refs/main> */
    char hub[] = "/tmp/tp_tok_hub_XXXXXX";
    if (!mkdtemp(hub)) {
        CHECK(0);
        return;
    }
    char p[512], q[1024];
    snprintf(p, sizeof p, "%s/models--acme--tiny", hub);
    mkdir(p, 0755);
    snprintf(q, sizeof q, "%s/refs", p);
    mkdir(q, 0755);
    snprintf(q, sizeof q, "%s/refs/main", p);
    FILE *f = fopen(q, "wb");
    if (f) {
        fputs("abc123\n", f);
        fclose(f);
    }
    snprintf(q, sizeof q, "%s/snapshots", p);
    mkdir(q, 0755);
    snprintf(q, sizeof q, "%s/snapshots/abc123", p);
    CHECK(symlink(tp_test_data("tokenizers/modernbert"), q) == 0);
    setenv("HF_HUB_CACHE", hub, 1);
    tok = NULL;
    CHECK(tp_tokenizer_load("acme/tiny", &tok, &err) == TP_OK);
    CHECK(tok && tp_tokenizer_vocab_size(tok) == 50368);
    tp_tokenizer_free(tok);
    tok = NULL;
    CHECK(tp_tokenizer_load("acme/missing", &tok, &err) == TP_ERR_NOT_FOUND && !tok &&
          strstr(err.message, "acme/missing"));
    unlink(q);
    snprintf(q, sizeof q, "%s/snapshots", p);
    rmdir(q);
    snprintf(q, sizeof q, "%s/refs/main", p);
    unlink(q);
    snprintf(q, sizeof q, "%s/refs", p);
    rmdir(q);
    rmdir(p);
    rmdir(hub);
}

int main(void) {
    test_qwen3();
    test_modernbert();
    test_metaspace_unk();
    test_wordpiece_style();
    test_bytelevel_roberta();
    test_byte_fallback();
    test_components();
    test_decoders();
    test_config_variants();
    test_load_errors();
    test_public_api();
    return tp_test_exit();
}
