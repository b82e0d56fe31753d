/*
 * test_fuzz.c — random inputs never crash the encoder pipelines: random byte
 * strings (mostly invalid UTF-8), random code points, stray mask tokens and
 * very long runs go through fill-mask, sentiment and zero-shot batches; every
 * item comes back either TP_OK with a well-formed result or with its own
 * error status and a message (TP_ERR_INPUT / TP_ERR_TOO_LONG). Meant for the
 * sanitizer build too.
 */
#include "enc_test_util.h"

static uint32_t rng = 2463534242u;
static uint32_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static char *random_text(size_t i) {
    tp_buf b = {0};
    size_t n = next() % (i % 10 == 0 ? 600 : 40);
    for (size_t j = 0; j < n; j++) {
        uint32_t r = next();
        switch (r % 6) {
        case 0: { /* any byte */
            char c = (char)(next() & 0xff);
            tp_buf_append(&b, &c, 1);
            break;
        }
        case 1: { /* a valid code point */
            uint32_t cp = next() % 0x10ffff;
            if (cp >= 0xd800 && cp < 0xe000)
                cp = 0x41;
            char u[4];
            tp_buf_append(&b, u, (size_t)tp_utf8_encode(cp ? cp : 0x20, u));
            break;
        }
        case 2:
            tp_buf_puts(&b, "[MASK]");
            break;
        case 3:
            tp_buf_puts(&b, r & 1 ? " " : "[CLS][SEP]");
            break;
        default:
            tp_buf_puts(&b, kEncWords[r % (sizeof kEncWords / sizeof kEncWords[0])]);
            break;
        }
    }
    return tp_buf_take(&b);
}

static void check_status(const tp_error *e) {
    CHECK(e->status == TP_OK || e->status == TP_ERR_INPUT || e->status == TP_ERR_TOO_LONG);
    if (e->status != TP_OK)
        CHECK(e->message[0] != 0);
}

int main(void) {
    enc_require_tokenizer();
    const char *root = tiny_tmpdir("fuzz");
    char dm[512], dc[512];
    snprintf(dm, sizeof dm, "%s/mlm", root);
    snprintf(dc, sizeof dc, "%s/nli", root);
    static const char *const nli[] = {"entailment", "neutral", "contradiction", NULL};
    tiny_cfg c = tiny_default("ModernBertForMaskedLM");
    CHECK(tiny_write_model(dm, &c) == 0);
    c = tiny_default("ModernBertForSequenceClassification");
    c.labels = nli;
    CHECK(tiny_write_model(dc, &c) == 0);
    tp_model_params mp = tp_model_default_params();
    mp.n_threads = 2;
    mp.max_batch_tokens = 256;
    tp_model *mm = enc_load(dm, &mp), *mc = enc_load(dc, &mp);
    enum { N = 150 };
    char *texts[N];
    for (size_t i = 0; i < N; i++)
        texts[i] = random_text(i);
    tp_error err;
    for (int trunc = 0; trunc < 2; trunc++) {
        tp_encoder_input_params in = {.truncation = trunc == 1, .max_length = 128};
        tp_fill_mask_params fp = {in};
        tp_sentiment_params sp = tp_sentiment_default_params();
        sp.input = in;
        tp_zero_shot_params zp = tp_zero_shot_default_params();
        zp.input = in;
        static tp_fill_mask_result fr[N];
        static tp_sentiment_result sr[N];
        static tp_zero_shot_result zr[N];
        CHECK(tp_fill_mask_predict_top_k_batch(mm, (const char *const *)texts, N, 3, &fp, fr,
                                               &err) == TP_OK);
        CHECK(tp_sentiment_predict_all_scores_batch(mc, (const char *const *)texts, N, &sp, sr,
                                                    &err) == TP_OK);
        const char *labels[] = {"x", "\xf0\x9f\x99\x82", "[MASK]", ""};
        CHECK(tp_zero_shot_predict_batch(mc, (const char *const *)texts, N, labels, 4, &zp, zr,
                                         &err) == TP_OK);
        size_t ok = 0;
        for (size_t i = 0; i < N; i++) {
            check_status(&fr[i].error);
            check_status(&sr[i].error);
            check_status(&zr[i].error);
            if (fr[i].error.status == TP_OK) {
                CHECK(fr[i].n_masks > 0 && fr[i].predictions);
                for (size_t j = 0; j < fr[i].n_masks * fr[i].k; j++)
                    CHECK(fr[i].predictions[j].sequence && fr[i].predictions[j].token_str &&
                          fr[i].predictions[j].score >= 0.0f);
            }
            if (sr[i].error.status == TP_OK) {
                ok++;
                CHECK(sr[i].n_scores == 3);
            }
            if (zr[i].error.status == TP_OK)
                CHECK(zr[i].n_labels == 4);
        }
        CHECK(ok > 0);
        tp_fill_mask_result_free_all(fr, N);
        tp_sentiment_result_free_all(sr, N);
        tp_zero_shot_result_free_all(zr, N);
    }
    for (size_t i = 0; i < N; i++)
        free(texts[i]);
    tp_model_free(mm);
    tp_model_free(mc);
    tiny_rmtree(root);
    return tp_test_exit();
}
