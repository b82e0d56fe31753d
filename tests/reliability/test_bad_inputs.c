/*
 * test_bad_inputs.c — the rows of the "Bad inputs" table in docs/RELIABILITY.md
 * that no other test covers, through the public API: what a caller gets for
 * empty / whitespace-only / invalid-UTF-8 / NUL-holding / 10 MB texts, a batch of
 * 100,000 items, zero-shot with no or duplicate labels, several masks, a chat
 * with an unknown role, a NaN or negative temperature, and model folders with
 * missing, corrupt or truncated files, an unknown tokenizer component or a
 * config.json missing a field.
 *
 * Models: tiny random ModernBERT folders (tests/encoder/tiny_model.h) with the
 * real ModernBERT tokenizer, and a small random Qwen3 from build/tp_mkmodel
 * with the real Qwen3 tokenizer and chat template. Expected values are
 * properties of the inputs (statuses, counts, equal scores for equal labels,
 * a byte-exact round trip), never outputs recorded from this code.
 */
#include "../encoder/tiny_model.h"
#include "core/core.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "tpipe.h"

#include <math.h>

static char g_root[256];

static tp_model *load(const char *dir) {
    tp_model *m = NULL;
    tp_error err;
    tp_model_params p = tp_model_default_params();
    p.n_threads = 2;
    if (tp_model_load(dir, &p, &m, &err) != TP_OK) {
        fprintf(stderr, "loading %s: %s\n", dir, err.message);
        exit(1);
    }
    return m;
}

/* A text of about `bytes` bytes of words, malloc'd; `prefix` first. */
static char *big_text(size_t bytes, const char *prefix) {
    static const char *const w[] = {"lovely ", "city ", "in ", "spring ", "café ", "东京 "};
    tp_buf b = {0};
    tp_buf_puts(&b, prefix);
    for (size_t i = 0; b.len < bytes; i++)
        tp_buf_puts(&b, w[(i * 7 + i / 3) % 6]);
    return tp_buf_take(&b);
}

#define STATUS_IS(e, st, i)                                                                        \
    CHECK_MSG((e).status == (st) && (e).item == (long)(i), "item %d: %s (%s), want %s", (int)(i),  \
              tp_status_name((e).status), (e).message, tp_status_name(st))

/* ---------------------------------------------------------------- encoders */

static const char *const kTexts[] = {
    "",                          /* 0 empty                    */
    "   \t\n  ",                 /* 1 whitespace only          */
    "bad \xff\xfe utf8 [MASK]",  /* 2 invalid UTF-8            */
    "Paris is the [MASK] city.", /* 3 one mask                 */
    "[MASK] and [MASK] went up", /* 4 several masks            */
};

static void test_fill_mask(tp_model *m) {
    tp_fill_mask_result out[5];
    tp_error err;
    CHECK(tp_fill_mask_predict_top_k_batch(m, kTexts, 5, 2, NULL, out, &err) == TP_OK);
    STATUS_IS(out[0].error, TP_ERR_INPUT, 0);
    CHECK(strstr(out[0].error.message, "[MASK]") != NULL);
    STATUS_IS(out[1].error, TP_ERR_INPUT, 1);
    STATUS_IS(out[2].error, TP_ERR_INPUT, 2);
    CHECK_MSG(strstr(out[2].error.message, "UTF-8") && strstr(out[2].error.message, "byte 4"), "%s",
              out[2].error.message);
    CHECK(out[3].error.status == TP_OK && out[3].n_masks == 1 && out[3].k == 2);
    CHECK(out[4].error.status == TP_OK && out[4].n_masks == 2 && out[4].predictions &&
          out[4].predictions[2].sequence);
    tp_fill_mask_result_free_all(out, 5);

    /* 10 MB: cut to the context (truncation on, the default), or the item's
     * own TP_ERR_TOO_LONG with truncation off */
    char *big = big_text((size_t)10 << 20, "[MASK] ");
    tp_fill_mask_result r;
    double t0 = tp_now();
    CHECK(tp_fill_mask_predict_top_k(m, big, 1, NULL, &r, &err) == TP_OK);
    CHECK(r.truncated && r.n_masks == 1);
    printf("fill-mask on a 10 MB text: %.2f s\n", tp_now() - t0);
    tp_fill_mask_result_free(&r);
    tp_fill_mask_params fp = tp_fill_mask_default_params();
    fp.input.truncation = false;
    CHECK(tp_fill_mask_predict_top_k(m, big, 1, &fp, &r, &err) == TP_ERR_TOO_LONG);
    tp_fill_mask_result_free(&r);
    free(big);
}

static void test_sentiment(tp_model *m) {
    tp_sentiment_result out[3];
    tp_error err;
    CHECK(tp_sentiment_predict_all_scores_batch(m, kTexts, 3, NULL, out, &err) == TP_OK);
    /* "" and whitespace: [CLS] [SEP] is classified, as Hugging Face does */
    CHECK(out[0].error.status == TP_OK && out[0].n_scores == 2);
    CHECK(out[1].error.status == TP_OK && out[1].n_scores == 2);
    STATUS_IS(out[2].error, TP_ERR_INPUT, 2);
    tp_sentiment_result_free_all(out, 3);

    /* 100,000 items: every item answered, in order, identical for identical texts */
    enum { N = 100000 };
    static const char *const two[2] = {"I loved it.", "Terrible, boring plot."};
    const char **texts = malloc(N * sizeof *texts);
    tp_sentiment_result *res = calloc(N, sizeof *res);
    for (size_t i = 0; i < N; i++)
        texts[i] = two[(i * 7919) % 3 == 0];
    double t0 = tp_now();
    CHECK(tp_sentiment_predict_with_score_batch(m, texts, N, NULL, res, &err) == TP_OK);
    printf("sentiment batch of %d: %.2f s\n", N, tp_now() - t0);
    tp_sentiment_result ref[2];
    for (int k = 0; k < 2; k++)
        CHECK(tp_sentiment_predict_with_score(m, two[k], NULL, &ref[k], &err) == TP_OK);
    size_t bad = 0;
    for (size_t i = 0; i < N; i++) {
        const tp_sentiment_result *a = &res[i], *b = &ref[texts[i] == two[1]];
        bad += a->error.status != TP_OK || a->n_scores != 1 || a->scores[0].id != b->scores[0].id ||
               memcmp(&a->scores[0].score, &b->scores[0].score, sizeof(float)) != 0;
    }
    CHECK_MSG(bad == 0, "%zu of %d items differ from the single call", bad, N);
    tp_sentiment_result_free_all(ref, 2);
    tp_sentiment_result_free_all(res, N);
    free(res);
    free(texts);

    /* 10 MB single text */
    char *big = big_text((size_t)10 << 20, "");
    tp_sentiment_result r;
    CHECK(tp_sentiment_predict_with_score(m, big, NULL, &r, &err) == TP_OK && r.truncated);
    tp_sentiment_result_free(&r);
    free(big);
}

static void test_zero_shot(tp_model *m) {
    static const char *const labels[] = {"travel", "cooking", "travel"}; /* a duplicate */
    tp_zero_shot_result out[3];
    tp_error err;
    CHECK(tp_zero_shot_predict_batch(m, kTexts, 3, labels, 3, NULL, out, &err) == TP_OK);
    CHECK(out[0].error.status == TP_OK && out[1].error.status == TP_OK);
    STATUS_IS(out[2].error, TP_ERR_INPUT, 2);
    /* duplicates are scored like any label (as Hugging Face): same pair, same score */
    for (int i = 0; i < 2; i++) {
        CHECK(out[i].n_labels == 3);
        float tr[2];
        int nt = 0;
        double sum = 0;
        for (size_t j = 0; j < out[i].n_labels; j++) {
            sum += out[i].scores[j];
            if (!strcmp(out[i].labels[j], "travel") && nt < 2)
                tr[nt++] = out[i].scores[j];
        }
        CHECK(nt == 2 && tr[0] == tr[1]);
        CHECK(fabs(sum - 1.0) < 1e-5);
    }
    tp_zero_shot_result_free_all(out, 3);
    /* no labels: the call's own error (single and shared-labels batch); per
     * item with per-item labels */
    tp_zero_shot_result r;
    CHECK(tp_zero_shot_predict(m, "x", labels, 0, NULL, &r, &err) == TP_ERR_INVALID_ARGUMENT);
    CHECK(tp_zero_shot_predict_batch(m, kTexts, 2, labels, 0, NULL, out, &err) ==
          TP_ERR_INVALID_ARGUMENT);
    const char *const *per[2] = {labels, labels};
    size_t cnt[2] = {2, 0};
    CHECK(tp_zero_shot_predict_batch_labels(m, kTexts + 3, 2, per, cnt, NULL, out, &err) == TP_OK);
    CHECK(out[0].error.status == TP_OK && out[0].n_labels == 2);
    STATUS_IS(out[1].error, TP_ERR_INPUT, 1);
    tp_zero_shot_result_free_all(out, 2);
}

/* An embedded NUL: the public calls take NUL-terminated text (the text ends
 * there); the length-taking tokenizer call keeps it as an ordinary character. */
static void test_nul(tp_model *m) {
    const tp_tokenizer *tok = tp_model_tokenizer(m);
    tp_encoding e;
    tp_error err;
    tp_tok_encode_params p = tp_tok_encode_default_params();
    p.add_special_tokens = false;
    CHECK(tp_tok_encode(tok, NULL, "a\0b", 3, NULL, 0, &p, &e, &err) == TP_OK);
    CHECK(e.n >= 3);
    char *back = NULL;
    size_t back_len = 0;
    tp_tok_decode_params dp = tp_tok_decode_default_params();
    CHECK(tp_tok_decode(tok, e.ids, e.n, &dp, &back, &back_len, &err) == TP_OK);
    CHECK_MSG(back && back_len == 3 && !memcmp(back, "a\0b", 3), "round trip of a NUL: %zu bytes",
              back_len);
    tp_free(back);
    tp_encoding_free(&e);
}

/* ---------------------------------------------------------------- generation */

static void test_generation(tp_model *m) {
    tp_error err;
    const char *prompts[3] = {"", "   ", "bad \xc3\x28"};
    tp_gen_options o[3];
    for (int i = 0; i < 3; i++) {
        o[i] = tp_gen_options_unset();
        o[i].max_new_tokens = 2;
        o[i].temperature = 0;
    }
    tp_gen_result out[3];
    CHECK(tp_completion_batch(m, prompts, 3, NULL, o, out, NULL, &err) == TP_OK);
    STATUS_IS(out[0].error, TP_ERR_INPUT, 0);           /* no tokens to continue */
    CHECK(out[1].error.status == TP_OK && out[1].text); /* whitespace is text */
    STATUS_IS(out[2].error, TP_ERR_INPUT, 2);
    tp_gen_result_free_all(out, 3);

    /* temperature: NaN fails the item; a negative value is "unset" (tpipe.h),
     * so it runs with the model's default, exactly as unset does */
    const char *p2[3] = {"Hello", "Hello", "Hello"};
    o[0].temperature = NAN;
    o[1].temperature = -0.5f;
    o[2].temperature = -1.0f;
    CHECK(tp_completion_batch(m, p2, 3, NULL, o, out, NULL, &err) == TP_OK);
    STATUS_IS(out[0].error, TP_ERR_INVALID_ARGUMENT, 0);
    CHECK(out[1].error.status == TP_OK && out[2].error.status == TP_OK &&
          out[1].completion_tokens == out[2].completion_tokens && out[1].text && out[2].text &&
          !strcmp(out[1].text, out[2].text));
    tp_gen_result_free_all(out, 3);
    tp_generate_params gp = tp_generate_default_params();
    gp.options.temperature = NAN;
    tp_gen_result r;
    CHECK(tp_completion(m, "Hello", &gp, &r, NULL, &err) == TP_ERR_INVALID_ARGUMENT);
    tp_gen_result_free(&r);

    /* 10 MB prompt: the item's TP_ERR_TOO_LONG (truncate_prompt off) */
    char *big = big_text((size_t)10 << 20, "");
    gp = tp_generate_default_params();
    gp.options.max_new_tokens = 1;
    double t0 = tp_now();
    CHECK(tp_completion(m, big, &gp, &r, NULL, &err) == TP_ERR_TOO_LONG);
    printf("completion of a 10 MB prompt: %s in %.2f s\n", tp_status_name(err.status),
           tp_now() - t0);
    tp_gen_result_free(&r);
    free(big);

    /* a chat with an unknown role: rendered as the model's template does. Qwen3's
     * template has no branch for it, so the message is left out (as in Python) */
    tp_chat_message msgs[2] = {{"narrator", "ZZTOPSECRETZZ"}, {"user", "Hi"}};
    gp = tp_generate_default_params();
    gp.options.max_new_tokens = 1;
    gp.options.temperature = 0;
    CHECK(tp_chat(m, msgs, 2, &gp, &r, NULL, &err) == TP_OK);
    tp_gen_result r1;
    CHECK(tp_chat(m, msgs + 1, 1, &gp, &r1, NULL, &err) == TP_OK);
    CHECK(r.prompt_tokens == r1.prompt_tokens);
    tp_gen_result_free(&r);
    tp_gen_result_free(&r1);
    /* a message without a role or content: that item's TP_ERR_INPUT */
    tp_chat_message bad[1] = {{NULL, "x"}};
    CHECK(tp_chat(m, bad, 1, &gp, &r, NULL, &err) == TP_ERR_INPUT);
    tp_gen_result_free(&r);
}

/* ---------------------------------------------------------------- model files */

static void copy_dir(const char *from, const char *to) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", to, from, to);
    CHECK(system(cmd) == 0);
}

static void write_file(const char *dir, const char *name, const char *data, size_t n) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    CHECK(f != NULL);
    if (f) {
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

/* Cuts dir/name to `keep` of its size (0..1). */
static void truncate_file(const char *dir, const char *name, double keep) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat sb;
    CHECK(stat(p, &sb) == 0);
    CHECK(truncate(p, (off_t)((double)sb.st_size * keep)) == 0);
}

/* Replaces the first `from` in dir/name by `to`. */
static void patch_file(const char *dir, const char *name, const char *from, const char *to) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    char *text = NULL;
    size_t len = 0;
    tp_error err;
    CHECK(tp_read_file(p, &text, &len, &err) == TP_OK);
    char *at = text ? strstr(text, from) : NULL;
    CHECK_MSG(at != NULL, "%s has no '%s'", name, from);
    if (at) {
        FILE *f = fopen(p, "wb");
        fwrite(text, 1, (size_t)(at - text), f);
        fputs(to, f);
        fputs(at + strlen(from), f);
        fclose(f);
    }
    tp_free(text);
}

static void expect_load(const char *dir, tp_status want, const char *needle1, const char *needle2,
                        const char *what) {
    tp_model *m = NULL;
    tp_error err;
    tp_error_clear(&err);
    tp_status st = tp_model_load(dir, NULL, &m, &err);
    CHECK_MSG(st == want && (m == NULL) == (want != TP_OK), "%s: %s (%s), want %s", what,
              tp_status_name(st), err.message, tp_status_name(want));
    CHECK_MSG((!needle1 || strstr(err.message, needle1)) &&
                  (!needle2 || strstr(err.message, needle2)),
              "%s: message \"%s\" lacks \"%s\" / \"%s\"", what, err.message, needle1 ? needle1 : "",
              needle2 ? needle2 : "");
    printf("%-40s -> %s: %s\n", what, tp_status_name(st), err.message);
    tp_model_free(m);
}

static void test_model_files(const char *good, const char *good_dec) {
    char d[2048];
    snprintf(d, sizeof d, "%s/broken", g_root);
    struct {
        const char *what, *file;
        int how; /* 0 remove, 1 corrupt, 2 truncate, 3 patch */
        const char *from, *to;
        tp_status want;
        const char *n1, *n2;
    } cases[] = {
        {"missing config.json", "config.json", 0, NULL, NULL, TP_ERR_NOT_FOUND, "config.json",
         NULL},
        {"missing model.safetensors", "model.safetensors", 0, NULL, NULL, TP_ERR_NOT_FOUND,
         "safetensors", NULL},
        {"missing tokenizer.json", "tokenizer.json", 0, NULL, NULL, TP_ERR_NOT_FOUND,
         "tokenizer.json", NULL},
        {"corrupt config.json", "config.json", 1, NULL, NULL, TP_ERR_FORMAT, "config.json", NULL},
        {"corrupt model.safetensors", "model.safetensors", 1, NULL, NULL, TP_ERR_FORMAT,
         "model.safetensors", NULL},
        {"corrupt tokenizer.json", "tokenizer.json", 1, NULL, NULL, TP_ERR_FORMAT, "tokenizer.json",
         NULL},
        {"truncated config.json", "config.json", 2, NULL, NULL, TP_ERR_FORMAT, "config.json", NULL},
        {"truncated model.safetensors", "model.safetensors", 2, NULL, NULL, TP_ERR_FORMAT,
         "model.safetensors", NULL},
        {"truncated tokenizer.json", "tokenizer.json", 2, NULL, NULL, TP_ERR_FORMAT,
         "tokenizer.json", NULL},
        {"unknown tokenizer component", "tokenizer.json", 3, "\"type\": \"ByteLevel\"",
         "\"type\": \"FancyLevel\"", TP_ERR_UNSUPPORTED, "tokenizer.json", "FancyLevel"},
        /* a missing field takes transformers' config-class default (ModernBertConfig:
         * hidden_size 768, vocab_size 50368), as from_pretrained does; the weights
         * then disagree with it and the load names the tensor */
        {"config.json without hidden_size", "config.json", 3, "\"hidden_size\"", "\"hidden_sighs\"",
         TP_ERR_FORMAT, "model.safetensors", "expected [50368, 768]"},
        {"config.json without vocab_size", "config.json", 3, "\"vocab_size\"", "\"vocab_sighs\"",
         TP_OK, NULL, NULL}, /* the default is this model's vocabulary size */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        copy_dir(good, d);
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", d, cases[i].file);
        switch (cases[i].how) {
        case 0:
            CHECK(unlink(p) == 0);
            break;
        case 1: {
            /* same size, bytes of noise in place of the start */
            char noise[4096];
            for (size_t k = 0; k < sizeof noise; k++)
                noise[k] = (char)(k * 131 + 7);
            FILE *f = fopen(p, "r+b");
            CHECK(f != NULL);
            if (f) {
                fwrite(noise, 1, sizeof noise, f);
                fclose(f);
            }
            break;
        }
        case 2:
            truncate_file(d, cases[i].file, 0.5);
            break;
        case 3:
            patch_file(d, cases[i].file, cases[i].from, cases[i].to);
            break;
        }
        expect_load(d, cases[i].want, cases[i].n1, cases[i].n2, cases[i].what);
    }
    /* the decoder's config too */
    copy_dir(good_dec, d);
    patch_file(d, "config.json", "\"num_attention_heads\"", "\"num_attention_hats\"");
    /* Qwen3Config's default is 32 heads (x head_dim 16 = 512 rows): q_proj disagrees */
    expect_load(d, TP_ERR_FORMAT, "q_proj.weight", "expected [512, 64]",
                "Qwen3 config.json without num_attention_heads");
    copy_dir(good_dec, d);
    write_file(d, "config.json", "{}", 2);
    expect_load(d, TP_ERR_UNSUPPORTED, "config.json", "model_type", "config.json {}");
    copy_dir(good_dec, d);
    write_file(d, "tokenizer.json", "", 0);
    expect_load(d, TP_ERR_FORMAT, "tokenizer.json", NULL, "empty tokenizer.json");
}

int main(void) {
    const char *tokdir = tiny_tokenizer_dir();
    const char *qw = tp_test_shared_or_data("tokenizers/qwen3");
    char qw_dir[4096];
    snprintf(qw_dir, sizeof qw_dir, "%s", qw ? qw : "");
    if (!tokdir || !qw) {
        printf("SKIP: the ModernBERT / Qwen3 tokenizers are in neither tests/data nor ../shared\n");
        return 0;
    }
    snprintf(g_root, sizeof g_root, "%s", tiny_tmpdir("badin"));
    char d[2048];

    snprintf(d, sizeof d, "%s/mlm", g_root);
    tiny_cfg mc = tiny_default("ModernBertForMaskedLM");
    CHECK(tiny_write_model(d, &mc) == 0);
    tp_model *m = load(d);
    test_fill_mask(m);
    test_nul(m);
    tp_model_free(m);

    static const char *const se_labels[] = {"NEGATIVE", "POSITIVE", NULL};
    snprintf(d, sizeof d, "%s/cls", g_root);
    tiny_cfg sc = tiny_default("ModernBertForSequenceClassification");
    sc.labels = se_labels;
    CHECK(tiny_write_model(d, &sc) == 0);
    m = load(d);
    test_sentiment(m);
    tp_model_free(m);

    static const char *const nli[] = {"entailment", "neutral", "contradiction", NULL};
    snprintf(d, sizeof d, "%s/nli", g_root);
    tiny_cfg nc = tiny_default("ModernBertForSequenceClassification");
    nc.labels = nli;
    CHECK(tiny_write_model(d, &nc) == 0);
    m = load(d);
    test_zero_shot(m);
    tp_model_free(m);

    char dec[2048];
    snprintf(dec, sizeof dec, "%s/qwen3", g_root);
    const char *build = getenv("TPIPE_BUILD");
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "'%s/tp_mkmodel' --family qwen3 --hidden 64 --layers 2 --heads 4 --intermediate 128 "
             "--max-positions 256 --dtype bf16 --seed 5 --quiet --tokenizer-dir '%s' --out '%s'",
             build ? build : ".", qw_dir, dec);
    CHECK(system(cmd) == 0);
    m = load(dec);
    test_generation(m);
    tp_model_free(m);

    snprintf(d, sizeof d, "%s/mlm", g_root);
    test_model_files(d, dec);
    tiny_rmtree(g_root);
    return tp_test_exit();
}
