/*
 * cmd_tokenize.c — `tpipe tokenize --model M [--no-special]`: the ids and
 * token strings of each text ({"ids": [...], "tokens": [...]}), with the
 * tokenizer's special tokens (e.g. [CLS] ... [SEP]) unless --no-special. Only
 * the tokenizer files are needed, no weights.
 */
#include "cli.h"

#include <stdlib.h>

typedef struct tk_ctx {
    tp_tokenizer *tok;
    bool special;
    int threads;
} tk_ctx;

static int tk_batch(void *vctx, const cli_item *items, size_t n, tp_buf *out, bool *ok, char *fatal,
                    size_t fatal_len) {
    tk_ctx *c = vctx;
    cli_texts tx;
    if (!cli_texts_collect(&tx, items, n, sizeof(tp_tokenization), out, ok, fatal, fatal_len))
        return 1;
    tp_tokenization *res = tx.results;
    int rc = 0;
    tp_error err;
    if (tp_tokenizer_encode_batch(c->tok, tx.texts, tx.n, c->special, c->threads, res, &err) !=
        TP_OK) {
        rc = cli_batch_fail(fatal, fatal_len, err.message);
        goto done;
    }
    for (size_t j = 0; j < tx.n; j++) {
        size_t i = tx.which[j];
        const tp_tokenization *r = &res[j];
        if (r->status != TP_OK) {
            cli_err_line(&out[i], items[i].index, r->error ? r->error : tp_status_name(r->status));
            continue;
        }
        cli_ok_begin(&out[i], items[i].index);
        tp_buf_puts(&out[i], "{\"ids\": [");
        for (size_t t = 0; t < r->n; t++)
            tp_buf_printf(&out[i], t ? ", %d" : "%d", (int)r->ids[t]);
        tp_buf_puts(&out[i], "], \"tokens\": [");
        for (size_t t = 0; t < r->n; t++) {
            if (t)
                tp_buf_puts(&out[i], ", ");
            cli_json_cstr(&out[i], r->tokens[t]);
        }
        tp_buf_puts(&out[i], "]}");
        cli_result_end(&out[i], &ok[i]);
    }
done:
    for (size_t j = 0; j < tx.n; j++)
        tp_tokenization_free(&res[j]);
    cli_texts_free(&tx);
    return rc;
}

int cmd_tokenize(int argc, char **argv) {
    bool no_special = false;
    const cli_opt opts[] = {
        {"--no-special", CLI_FLAG, &no_special, NULL,
         "do not add the tokenizer's special tokens (e.g. [CLS] ... [SEP])", 0, 0, NULL},
        CLI_OPT_END,
    };
    cli_common common;
    int rc = cli_parse(argc, argv,
                       "usage: tpipe tokenize --model M [--no-special] [options] [texts...]\n\n"
                       "Encodes each text with the model's tokenizer.json (no weights needed).\n"
                       "Result per item: {\"ids\": [...], \"tokens\": [...]}.",
                       opts, &common, true);
    if (rc)
        return rc;
    tk_ctx c = {0};
    c.special = !no_special;
    c.threads = (int)common.threads;
    char *dir = cli_resolve_model(argv[0], &common, TP_RESOLVE_TOKENIZER);
    if (!dir) {
        cli_common_free(&common);
        return CLI_EXIT_FATAL;
    }
    tp_error err;
    if (tp_tokenizer_load(dir, &c.tok, &err) != TP_OK)
        rc = cli_fatal(argv[0], "cannot load the tokenizer of %s: %s", common.model, err.message);
    free(dir);
    if (!rc)
        rc = cli_run(argv[0], &common, tk_batch, &c, NULL);
    tp_tokenizer_free(c.tok);
    cli_common_free(&common);
    return rc;
}
