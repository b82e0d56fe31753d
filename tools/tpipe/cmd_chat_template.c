/*
 * cmd_chat_template.c — `tpipe chat-template --model M`: renders the model's
 * own chat template for each input line, a JSON object with "messages" (and
 * optionally "tools" and any other fields, passed to the template as
 * variables). The result is the prompt string; a template error is that item's
 * error. Only the tokenizer files are needed (tokenizer_config.json or
 * chat_template.jinja), no weights.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

typedef struct ct_ctx {
    tp_chat_template *ct;
    tp_chat_template_params params;
} ct_ctx;

static int ct_batch(void *vctx, const cli_item *items, size_t n, tp_buf *out, bool *ok, char *fatal,
                    size_t fatal_len) {
    (void)fatal;
    (void)fatal_len;
    ct_ctx *c = vctx;
    for (size_t i = 0; i < n; i++) {
        if (items[i].bad_input)
            continue;
        /* a line that is a JSON object is passed as written; a positional text
         * must itself be such an object */
        const char *json = items[i].obj ? items[i].line_ : items[i].line_no ? NULL : items[i].text;
        if (!json) {
            cli_item_err(&out[i], &items[i], "expected a JSON object with \"messages\"");
            continue;
        }
        char *prompt = NULL;
        tp_error err;
        if (tp_chat_template_render(c->ct, json, &c->params, &prompt, &err) != TP_OK) {
            cli_err_line(&out[i], items[i].index, err.message);
            continue;
        }
        cli_ok_begin(&out[i], items[i].index);
        cli_json_cstr(&out[i], prompt);
        cli_result_end(&out[i], &ok[i]);
        tp_chat_template_string_free(prompt);
    }
    return 0;
}

int cmd_chat_template(int argc, char **argv) {
    bool no_gen = false;
    const char *thinking = NULL;
    const cli_opt opts[] = {
        {"--no-generation-prompt", CLI_FLAG, &no_gen, NULL,
         "add_generation_prompt=false (default true)", 0, 0, NULL},
        {"--enable-thinking", CLI_STRING, &thinking, "true|false",
         "pass enable_thinking to the template (absent: not passed)", 0, 0, NULL},
        CLI_OPT_END,
    };
    cli_common common;
    int rc = cli_parse(argc, argv,
                       "usage: tpipe chat-template --model M [--no-generation-prompt]\n"
                       "                           [--enable-thinking true|false] [options] "
                       "[json...]\n\n"
                       "Renders the model's chat template for each input: a JSON object with\n"
                       "\"messages\" (a list of {\"role\", \"content\"}), optionally \"tools\" "
                       "and other\nfields (template variables). Result per item: the prompt "
                       "string.",
                       opts, &common, true);
    if (rc)
        return rc;
    ct_ctx c = {0};
    c.params = tp_chat_template_default_params();
    c.params.add_generation_prompt = !no_gen;
    if (thinking) {
        if (!strcmp(thinking, "true")) {
            c.params.enable_thinking = 1;
        } else if (!strcmp(thinking, "false")) {
            c.params.enable_thinking = 0;
        } else {
            cli_common_free(&common);
            return cli_fatal(argv[0], "--enable-thinking must be true or false, got \"%s\"",
                             thinking);
        }
    }
    char *dir = cli_resolve_model(argv[0], &common, TP_RESOLVE_TOKENIZER);
    if (!dir) {
        cli_common_free(&common);
        return CLI_EXIT_FATAL;
    }
    tp_error err;
    if (tp_chat_template_load(dir, &c.ct, &err) != TP_OK)
        rc = cli_fatal(argv[0], "cannot load the chat template of %s: %s", common.model,
                       err.message);
    free(dir);
    if (!rc)
        rc = cli_run(argv[0], &common, ct_batch, &c, NULL);
    tp_chat_template_free(c.ct);
    cli_common_free(&common);
    return rc;
}
