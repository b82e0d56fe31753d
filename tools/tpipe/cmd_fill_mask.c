/*
 * cmd_fill_mask.c — `tpipe fill-mask --model M [--top-k K]`: for each text, the
 * K best tokens of its mask, as Hugging Face's fill-mask pipeline returns them:
 * a list of {"score", "token", "token_str", "sequence"} best first, or, for a
 * text with several masks, one such list per mask.
 */
#include "cli.h"

#include <stdlib.h>

typedef struct fm_ctx {
    tp_model *model;
    size_t k;
    tp_fill_mask_params params;
} fm_ctx;

static void write_predictions(tp_buf *b, const tp_fill_mask_prediction *p, size_t k) {
    tp_buf_puts(b, "[");
    for (size_t j = 0; j < k; j++) {
        tp_buf_puts(b, j ? ", {\"score\": " : "{\"score\": ");
        cli_json_float(b, p[j].score);
        tp_buf_printf(b, ", \"token\": %d, \"token_str\": ", (int)p[j].token);
        cli_json_cstr(b, p[j].token_str);
        tp_buf_puts(b, ", \"sequence\": ");
        cli_json_cstr(b, p[j].sequence);
        tp_buf_puts(b, "}");
    }
    tp_buf_puts(b, "]");
}

static int fm_batch(void *vctx, const cli_item *items, size_t n, tp_buf *out, bool *ok, char *fatal,
                    size_t fatal_len) {
    fm_ctx *c = vctx;
    cli_texts t;
    if (!cli_texts_collect(&t, items, n, sizeof(tp_fill_mask_result), out, ok, fatal, fatal_len))
        return 1;
    const size_t k = t.n;
    tp_fill_mask_result *res = t.results;
    int rc = 0;
    tp_error err;
    if (tp_fill_mask_predict_top_k_batch(c->model, t.texts, k, c->k, &c->params, res, &err) !=
        TP_OK) {
        rc = cli_batch_fail(fatal, fatal_len, err.message);
        goto done;
    }
    for (size_t j = 0; j < k; j++) {
        size_t i = t.which[j];
        const tp_fill_mask_result *r = &res[j];
        if (!cli_result_begin(&out[i], &items[i], &r->error))
            continue;
        if (r->n_masks == 1) {
            write_predictions(&out[i], r->predictions, r->k);
        } else {
            tp_buf_puts(&out[i], "[");
            for (size_t m = 0; m < r->n_masks; m++) {
                if (m)
                    tp_buf_puts(&out[i], ", ");
                write_predictions(&out[i], r->predictions + m * r->k, r->k);
            }
            tp_buf_puts(&out[i], "]");
        }
        cli_result_end(&out[i], &ok[i]);
    }
    tp_fill_mask_result_free_all(res, k);
done:
    cli_texts_free(&t);
    return rc;
}

int cmd_fill_mask(int argc, char **argv) {
    long top_k = 1;
    bool no_truncation = false;
    const cli_opt opts[] = {
        {"--top-k", CLI_INT, &top_k, "K", "predictions per mask, best first (default 1)", 1,
         1000000, NULL},
        CLI_OPT_NO_TRUNCATION(&no_truncation),
        CLI_OPT_END,
    };
    cli_common common;
    int rc = cli_parse(argc, argv,
                       "usage: tpipe fill-mask --model M [--top-k K] [options] [texts...]\n\n"
                       "Predicts the token behind each mask token (e.g. [MASK]) of each text.\n"
                       "Result per item: [{\"score\", \"token\", \"token_str\", \"sequence\"}, "
                       "...] best first\n(one such list per mask when a text has several).",
                       opts, &common, true);
    if (rc)
        return rc;
    fm_ctx c = {0};
    c.k = (size_t)top_k;
    c.params = tp_fill_mask_default_params();
    c.params.input.truncation = !no_truncation;
    rc = cli_load_model(argv[0], &common, TP_RESOLVE_ALL, TP_TASK_FILL_MASK, &c.model);
    if (!rc)
        rc = cli_run(argv[0], &common, fm_batch, &c, NULL);
    tp_model_free(c.model);
    cli_common_free(&common);
    return rc;
}
