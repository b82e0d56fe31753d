/*
 * cmd_zero_shot.c — `tpipe zero-shot --model M --labels L1,L2,...`: scores
 * candidate labels for each text with an NLI model, as Hugging Face's
 * zero-shot-classification pipeline: {"sequence", "labels", "scores"} best
 * first. A JSON line may bring its own "labels" (a list of strings, or one
 * comma-separated string), which then replace --labels for that item.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

typedef struct zs_ctx {
    tp_model *model;
    cli_strlist labels; /* --labels (copies) */
    tp_zero_shot_params params;
} zs_ctx;

static int zs_batch(void *vctx, const cli_item *items, size_t n, tp_buf *out, bool *ok, char *fatal,
                    size_t fatal_len) {
    zs_ctx *c = vctx;
    cli_texts t;
    if (!cli_texts_collect(&t, items, n, sizeof(tp_zero_shot_result), out, ok, fatal, fatal_len))
        return 1;
    tp_zero_shot_result *res = t.results;
    const char *const **labels = tp_malloc_array(n, sizeof *labels);
    size_t *n_labels = tp_malloc_array(n, sizeof *n_labels);
    cli_strlist *owned = calloc(n ? n : 1, sizeof *owned);
    size_t k = 0;
    int rc = 0;
    tp_error err;
    if (!labels || !n_labels || !owned) {
        rc = cli_batch_fail(fatal, fatal_len, "out of memory");
        goto done;
    }
    /* keep only the items whose labels are usable */
    for (size_t j = 0; j < t.n; j++) {
        size_t i = t.which[j];
        const char *why;
        size_t nl;
        const char **l = cli_item_labels(&items[i], &c->labels, &nl, &owned[i], &why);
        if (!l) {
            cli_item_err(&out[i], &items[i], why);
            continue;
        }
        t.texts[k] = t.texts[j];
        t.which[k] = i;
        labels[k] = l;
        n_labels[k++] = nl;
    }
    if (tp_zero_shot_predict_batch_labels(c->model, t.texts, k, labels, n_labels, &c->params, res,
                                          &err) != TP_OK) {
        rc = cli_batch_fail(fatal, fatal_len, err.message);
        goto done;
    }
    for (size_t j = 0; j < k; j++) {
        size_t i = t.which[j];
        const tp_zero_shot_result *r = &res[j];
        if (!cli_result_begin(&out[i], &items[i], &r->error))
            continue;
        tp_buf_puts(&out[i], "{\"sequence\": ");
        cli_json_str(&out[i], t.texts[j], items[i].text_len);
        tp_buf_puts(&out[i], ", \"labels\": [");
        for (size_t l = 0; l < r->n_labels; l++) {
            if (l)
                tp_buf_puts(&out[i], ", ");
            cli_json_cstr(&out[i], r->labels[l]);
        }
        tp_buf_puts(&out[i], "], \"scores\": [");
        for (size_t l = 0; l < r->n_labels; l++) {
            if (l)
                tp_buf_puts(&out[i], ", ");
            cli_json_float(&out[i], r->scores[l]);
        }
        tp_buf_puts(&out[i], "]}");
        cli_result_end(&out[i], &ok[i]);
    }
    tp_zero_shot_result_free_all(res, k);
done:
    if (owned)
        for (size_t i = 0; i < n; i++) {
            if (owned[i].n) /* split from a string: the labels are copies */
                cli_strlist_free_copies(&owned[i]);
            else
                free((void *)owned[i].items);
        }
    free(owned);
    cli_texts_free(&t);
    free((void *)labels);
    free(n_labels);
    return rc;
}

int cmd_zero_shot(int argc, char **argv) {
    zs_ctx c = {0};
    const char *labels = NULL, *hypothesis = NULL;
    bool multi = false, no_truncation = false;
    const cli_opt opts[] = {
        {"--labels", CLI_STRING, &labels, "L1,L2,...",
         "candidate labels (a line's own \"labels\" replaces them)", 0, 0, NULL},
        {"--multi-label", CLI_FLAG, &multi, NULL,
         "score each label on its own (entailment vs contradiction)", 0, 0, NULL},
        {"--hypothesis-template", CLI_STRING, &hypothesis, "T",
         "hypothesis with {} for the label (default \"This example is {}.\")", 0, 0, NULL},
        CLI_OPT_NO_TRUNCATION(&no_truncation),
        CLI_OPT_END,
    };
    cli_common common;
    int rc = cli_parse(argc, argv,
                       "usage: tpipe zero-shot --model M --labels L1,L2,... [--multi-label]\n"
                       "                 [--hypothesis-template \"This example is {}.\"] "
                       "[options] [texts...]\n\n"
                       "Scores candidate labels for each text with an NLI model.\n"
                       "Result per item: {\"sequence\", \"labels\": [...], \"scores\": [...]}, "
                       "best first.",
                       opts, &common, true);
    if (rc)
        return rc;
    if (labels && !cli_split_commas(labels, &c.labels)) {
        cli_common_free(&common);
        return cli_fatal(argv[0], "--labels has an empty label: \"%s\"", labels);
    }
    if (hypothesis && !strstr(hypothesis, "{}")) {
        cli_strlist_free_copies(&c.labels);
        cli_common_free(&common);
        return cli_fatal(argv[0], "--hypothesis-template must contain {} (got \"%s\")", hypothesis);
    }
    c.params = tp_zero_shot_default_params();
    c.params.input.truncation = !no_truncation;
    c.params.multi_label = multi;
    if (hypothesis)
        c.params.hypothesis_template = hypothesis;
    rc = cli_load_model(argv[0], &common, TP_RESOLVE_ALL, TP_TASK_TEXT_CLASSIFICATION, &c.model);
    if (!rc)
        rc = cli_run(argv[0], &common, zs_batch, &c, NULL);
    tp_model_free(c.model);
    cli_strlist_free_copies(&c.labels);
    cli_common_free(&common);
    return rc;
}
