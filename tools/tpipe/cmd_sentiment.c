/*
 * cmd_sentiment.c — `tpipe sentiment --model M [--all-scores]`: the best label
 * of a sequence-classification model with its score ({"label", "score"}), or
 * every label, best first, with --all-scores.
 */
#include "cli.h"

#include <stdlib.h>

typedef struct st_ctx {
    tp_model *model;
    bool all;
    tp_sentiment_params params;
} st_ctx;

static void write_label(tp_buf *b, const tp_label_score *s) {
    tp_buf_puts(b, "{\"label\": ");
    cli_json_cstr(b, s->label);
    tp_buf_puts(b, ", \"score\": ");
    cli_json_float(b, s->score);
    tp_buf_puts(b, "}");
}

static int st_batch(void *vctx, const cli_item *items, size_t n, tp_buf *out, bool *ok, char *fatal,
                    size_t fatal_len) {
    st_ctx *c = vctx;
    cli_texts t;
    if (!cli_texts_collect(&t, items, n, sizeof(tp_sentiment_result), out, ok, fatal, fatal_len))
        return 1;
    const size_t k = t.n;
    tp_sentiment_result *res = t.results;
    int rc = 0;
    tp_error err;
    tp_status s =
        c->all ? tp_sentiment_predict_all_scores_batch(c->model, t.texts, k, &c->params, res, &err)
               : tp_sentiment_predict_with_score_batch(c->model, t.texts, k, &c->params, res, &err);
    if (s != TP_OK) {
        rc = cli_batch_fail(fatal, fatal_len, err.message);
        goto done;
    }
    for (size_t j = 0; j < k; j++) {
        size_t i = t.which[j];
        const tp_sentiment_result *r = &res[j];
        if (r->error.status == TP_OK && r->n_scores == 0) {
            cli_err_line(&out[i], items[i].index, "no scores");
            continue;
        }
        if (!cli_result_begin(&out[i], &items[i], &r->error))
            continue;
        if (c->all) {
            tp_buf_puts(&out[i], "[");
            for (size_t l = 0; l < r->n_scores; l++) {
                if (l)
                    tp_buf_puts(&out[i], ", ");
                write_label(&out[i], &r->scores[l]);
            }
            tp_buf_puts(&out[i], "]");
        } else {
            write_label(&out[i], &r->scores[0]);
        }
        cli_result_end(&out[i], &ok[i]);
    }
    tp_sentiment_result_free_all(res, k);
done:
    cli_texts_free(&t);
    return rc;
}

int cmd_sentiment(int argc, char **argv) {
    st_ctx c = {0};
    bool no_truncation = false;
    const cli_opt opts[] = {
        {"--all-scores", CLI_FLAG, &c.all, NULL, "every label with its score, best first", 0, 0,
         NULL},
        CLI_OPT_NO_TRUNCATION(&no_truncation),
        CLI_OPT_END,
    };
    cli_common common;
    int rc = cli_parse(argc, argv,
                       "usage: tpipe sentiment --model M [--all-scores] [options] [texts...]\n\n"
                       "Classifies each text with a sequence-classification model.\n"
                       "Result per item: {\"label\", \"score\"}; with --all-scores a list of "
                       "them, best first.",
                       opts, &common, true);
    if (rc)
        return rc;
    c.params = tp_sentiment_default_params();
    c.params.input.truncation = !no_truncation;
    rc = cli_load_model(argv[0], &common, TP_RESOLVE_ALL, TP_TASK_TEXT_CLASSIFICATION, &c.model);
    if (!rc)
        rc = cli_run(argv[0], &common, st_batch, &c, NULL);
    tp_model_free(c.model);
    cli_common_free(&common);
    return rc;
}
