/*
 * fuzz_template.c — chat templates: compiling a Jinja template
 * (src/template/tpl_parse.c) and rendering it (tpl_eval.c) over messages given
 * as JSON, through tp_chat_template_from_strings + tp_chat_template_render,
 * the path of tp_chat / `tpipe chat-template`.
 *
 * Input: the template source, a NUL byte, the JSON object with "messages"
 * (and any other variables), optionally a second NUL byte and a
 * tokenizer_config.json text (special tokens; its chat_template is used when
 * the template source is empty). The clock of strftime_now is fixed.
 *
 * Invariants: every failure is TP_ERR_TEMPLATE / TP_ERR_INPUT / TP_ERR_FORMAT /
 * TP_ERR_NOT_FOUND / TP_ERR_OUT_OF_MEMORY with a message; a rendering of a
 * valid-UTF-8 template over JSON without \u escapes is valid UTF-8; rendering
 * twice gives the same text (a compiled template is immutable).
 */
#include "fuzz_util.h"
#include "template/template.h"

static bool ok_status(tp_status st) {
    return st == TP_ERR_TEMPLATE || st == TP_ERR_INPUT || st == TP_ERR_FORMAT ||
           st == TP_ERR_NOT_FOUND || st == TP_ERR_OUT_OF_MEMORY;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t tpl_len, rest_len, json_len, cfg_len;
    const uint8_t *rest, *cfg_p;
    fuzz_split(data, size, &tpl_len, &rest, &rest_len);
    if (!rest)
        return 0;
    fuzz_split(rest, rest_len, &json_len, &cfg_p, &cfg_len);
    char *src = fuzz_cstr(data, tpl_len);
    char *json = fuzz_cstr(rest, json_len);
    char *cfg = cfg_p ? fuzz_cstr(cfg_p, cfg_len) : NULL;

    tp_chat_template *ct = NULL;
    tp_error err;
    if (!tpl_len && !cfg) /* nothing to compile (TP_ERR_INVALID_ARGUMENT by contract) */
        goto done;
    tp_error_clear(&err);
    tp_status st =
        tp_chat_template_from_strings(cfg, tpl_len ? src : NULL, "fuzz.jinja", &ct, &err);
    fuzz_note("compile", st, &err);
    if (st != TP_OK) {
        FUZZ_CHECK(ct == NULL, "failed compile returned a template");
        FUZZ_CHECK(ok_status(st) && err.message[0], "compile: %s: %s", tp_status_name(st),
                   err.message);
        goto done;
    }
    tp_chat_template_params p = tp_chat_template_default_params();
    p.has_now = true;
    p.now = 1700000000;
    p.enable_thinking = size & 1 ? 0 : -1;
    char *out = NULL;
    tp_error_clear(&err);
    st = tp_chat_template_render(ct, json, &p, &out, &err);
    fuzz_note("render", st, &err);
    if (st != TP_OK) {
        FUZZ_CHECK(out == NULL, "failed render returned text");
        FUZZ_CHECK(ok_status(st) && err.message[0], "render: %s: %s", tp_status_name(st),
                   err.message);
    } else {
        size_t n = strlen(out);
        bool clean_in =
            tp_utf8_validate(src, tpl_len) == tpl_len && !strstr(json, "\\u") &&
            tp_utf8_validate(json, json_len) == json_len &&
            (!cfg || (tp_utf8_validate(cfg, cfg_len) == cfg_len && !strstr(cfg, "\\u")));
        if (clean_in)
            FUZZ_CHECK(tp_utf8_validate(out, n) == n, "render of valid UTF-8 is not UTF-8");
        char *again = NULL;
        /* a second render must agree unless the template reads the clock (fixed
         * here) or raised only the first time (impossible: it is immutable) */
        if (tp_chat_template_render(ct, json, &p, &again, &err) == TP_OK)
            FUZZ_CHECK(!strcmp(out, again), "two renders differ");
        tp_chat_template_string_free(again);
    }
    tp_chat_template_string_free(out);
    tp_chat_template_free(ct);
done:
    tp_free(src);
    tp_free(json);
    tp_free(cfg);
    return 0;
}
