/*
 * test_template_fuzz.c — random templates (token soup, random bytes, grammar-built
 * expressions) and random message structures through the real chat templates. Nothing may
 * crash (run under the sanitizer build too): every call returns TP_OK with an output, or
 * a template/input error with a message. Deterministic seed; TPL_FUZZ_ITERS scales it.
 */
#include "core/core.h"
#include "template/template.h"
#include "test_util.h"

#include <stdint.h>

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}
static uint32_t rn(uint32_t n) {
    return n ? rnd() % n : 0;
}

static const char *const SOUP[] = {
    "{{",
    "}}",
    "{%",
    "%}",
    "{#",
    "#}",
    "{{-",
    "-}}",
    "{%-",
    "-%}",
    "{%+",
    "+%}",
    " ",
    "\n",
    "  ",
    "\t",
    "if ",
    "elif ",
    "else",
    "endif",
    "for ",
    " in ",
    "endfor",
    "set ",
    "endset",
    "macro ",
    "endmacro",
    "raw",
    "endraw",
    "filter ",
    "endfilter",
    "generation",
    "endgeneration",
    "break",
    "continue",
    "x",
    "y",
    "messages",
    "message",
    "loop",
    "loop.index",
    "loop.last",
    "ns",
    "namespace(a=1)",
    "ns.a",
    ".",
    "[",
    "]",
    "(",
    ")",
    "{",
    "}",
    "|",
    "trim",
    "tojson",
    "length",
    "join(',')",
    "map(attribute='role')",
    "selectattr('role')",
    "items",
    "sort",
    "'str'",
    "\"s\"",
    "'",
    "\"",
    "1",
    "2.5",
    "-3",
    "1e5",
    ",",
    ":",
    "==",
    "!=",
    "<",
    ">=",
    "is ",
    "defined",
    "none",
    "string",
    "not ",
    " and ",
    " or ",
    "~",
    "+",
    "-",
    "*",
    "**",
    "//",
    "%",
    "=",
    "text",
    "é",
    "😀",
    "\\",
    "\\n",
    "range(3)",
    "items()",
    "[::-1]",
    "[1:]",
    "[-1]",
    ".strip('x')",
    ".split()",
    ".startswith('a')",
    "raise_exception('r')",
    "strftime_now('%Y')",
    "true",
    "false",
    "none",
    "content",
    "role",
    "m",
    "rec(1)",
    "recursive",
    "include",
    "do",
    "{{ x }}",
    "{% if x %}",
    "{% endif %}",
    "{% for m in messages %}",
    "{% endfor %}",
    "{% macro rec(n) %}{{ rec(n) }}{% endmacro %}",
    "{% set x = x ~ x %}",
};

static void check_result(tp_status st, char *out, const tp_error *err) {
    bool ok = (st == TP_OK && out != NULL) ||
              ((st == TP_ERR_TEMPLATE || st == TP_ERR_INPUT || st == TP_ERR_OUT_OF_MEMORY) &&
               out == NULL && err->message[0] != 0);
    CHECK_MSG(ok, "status %s, message %s", tp_status_name(st), err->message);
}

static void run_one(const char *src, size_t len, const tp_template_vars *vars) {
    tp_template *t = NULL;
    tp_error err;
    tp_error_clear(&err);
    tp_status st = tp_template_compile(src, len, "fuzz", &t, &err);
    if (st != TP_OK) {
        CHECK_MSG((st == TP_ERR_TEMPLATE || st == TP_ERR_OUT_OF_MEMORY) && t == NULL &&
                      err.message[0],
                  "compile status %s", tp_status_name(st));
        return;
    }
    tp_template_render_params p = tp_template_default_render_params();
    p.max_output = 1 << 16;
    p.max_memory = 8 << 20;
    char *out = NULL;
    tp_error_clear(&err);
    const tp_template_vars *layers[1] = {vars};
    st = tp_template_render(t, layers, 1, &p, &out, NULL, &err);
    check_result(st, out, &err);
    free(out);
    tp_template_free(t);
}

/* ---- random JSON (messages) ---- */

static void rand_string(tp_buf *b) {
    static const char *const parts[] = {"hi",
                                        " ",
                                        "\\n",
                                        "<think>",
                                        "</think>",
                                        "\\u00e9",
                                        "\\ud83d\\ude00",
                                        "{{ x }}",
                                        "{% if %}",
                                        "\\\"",
                                        "\\\\",
                                        "<tool_response>",
                                        "</tool_response>",
                                        "\\u0000",
                                        "\\u2028",
                                        "user"};
    tp_buf_puts(b, "\"");
    int n = (int)rn(5);
    for (int i = 0; i < n; i++)
        tp_buf_puts(b, parts[rn(sizeof parts / sizeof *parts)]);
    tp_buf_puts(b, "\"");
}

static void rand_json(tp_buf *b, int depth) {
    uint32_t k = rn(depth > 3 ? 6 : 9);
    switch (k) {
    case 0:
        tp_buf_puts(b, "null");
        break;
    case 1:
        tp_buf_puts(b, rn(2) ? "true" : "false");
        break;
    case 2: {
        static const char *const nums[] = {
            "0", "-1", "42", "1.0", "1e-07", "1e+100", "12345678901234567890", "-0.5", "3.14159"};
        tp_buf_puts(b, nums[rn(9)]);
        break;
    }
    case 3:
    case 4:
    case 5:
        rand_string(b);
        break;
    case 6: {
        tp_buf_puts(b, "[");
        int n = (int)rn(4);
        for (int i = 0; i < n; i++) {
            if (i)
                tp_buf_puts(b, ",");
            rand_json(b, depth + 1);
        }
        tp_buf_puts(b, "]");
        break;
    }
    default: {
        static const char *const keys[] = {"role", "content",    "type",
                                           "text", "tool_calls", "function",
                                           "name", "arguments",  "reasoning_content"};
        tp_buf_puts(b, "{");
        int n = (int)rn(4);
        for (int i = 0; i < n; i++) {
            if (i)
                tp_buf_puts(b, ",");
            tp_buf_printf(b, "\"%s\":", keys[rn(9)]);
            rand_json(b, depth + 1);
        }
        tp_buf_puts(b, "}");
        break;
    }
    }
}

static void rand_message(tp_buf *b) {
    static const char *const roles[] = {"user", "assistant", "system", "tool", "ipython", "x"};
    tp_buf_printf(b, "{\"role\":\"%s\"", roles[rn(6)]);
    if (rn(8)) {
        tp_buf_puts(b, ",\"content\":");
        if (rn(3))
            rand_string(b);
        else
            rand_json(b, 1);
    }
    if (rn(4) == 0) {
        tp_buf_puts(b, ",\"tool_calls\":[");
        int n = (int)rn(3);
        for (int i = 0; i < n; i++) {
            if (i)
                tp_buf_puts(b, ",");
            if (rn(2))
                tp_buf_puts(b, "{\"type\":\"function\",\"function\":{\"name\":\"f\","
                               "\"arguments\":");
            else
                tp_buf_puts(b, "{\"name\":\"g\",\"arguments\":");
            rand_json(b, 2);
            tp_buf_puts(b, rn(2) ? "}}" : "}");
        }
        tp_buf_puts(b, "]");
    }
    if (rn(5) == 0) {
        tp_buf_puts(b, ",\"reasoning_content\":");
        rand_json(b, 2);
    }
    tp_buf_puts(b, "}");
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    if (b)
        b[n] = 0;
    fclose(f);
    return b;
}

static void fuzz_chat(int iters) {
    tp_chat_template *cts[3] = {NULL, NULL, NULL};
    tp_error err;
    char *q = read_text(tp_test_data("templates/qwen3_tokenizer_config.json"));
    char *g = read_text(tp_test_data("templates/gemma3_tokenizer_config.json"));
    char *l = read_text(tp_test_data("templates/llama3_2_chat_template.jinja"));
    CHECK(q && g && l);
    if (q)
        CHECK(tp_chat_template_from_strings(q, NULL, "qwen3", &cts[0], &err) == TP_OK);
    if (g)
        CHECK(tp_chat_template_from_strings(g, NULL, "gemma3", &cts[1], &err) == TP_OK);
    if (l)
        CHECK(tp_chat_template_from_strings(NULL, l, "llama3_2", &cts[2], &err) == TP_OK);
    free(q);
    free(g);
    free(l);
    int rendered = 0, errors = 0;
    for (int it = 0; it < iters; it++) {
        tp_buf b = {0};
        tp_buf_puts(&b, "{\"messages\":[");
        int n = (int)rn(6);
        for (int i = 0; i < n; i++) {
            if (i)
                tp_buf_puts(&b, ",");
            rand_message(&b);
        }
        tp_buf_puts(&b, "]");
        if (rn(3) == 0) {
            tp_buf_puts(&b, ",\"tools\":");
            rand_json(&b, 1);
        }
        if (rn(4) == 0)
            tp_buf_puts(&b, rn(2) ? ",\"enable_thinking\":false" : ",\"tools_in_user_message\":0");
        tp_buf_puts(&b, "}");
        for (int k = 0; k < 3; k++) {
            if (!cts[k])
                continue;
            char *out = NULL;
            tp_error_clear(&err);
            tp_chat_template_params p = tp_chat_template_default_params();
            p.add_generation_prompt = rn(2);
            p.has_now = true;
            p.now = 1741521600;
            tp_status st = tp_chat_template_render(cts[k], b.data, &p, &out, &err);
            check_result(st, out, &err);
            if (st == TP_OK)
                rendered++;
            else
                errors++;
            free(out);
        }
        tp_buf_free(&b);
    }
    printf("chat fuzz: %d rendered, %d errors\n", rendered, errors);
    CHECK(rendered > 0 && errors > 0);
    for (int k = 0; k < 3; k++)
        tp_chat_template_destroy(cts[k]);
}

/* ---- grammar-built expressions ---- */

static void rand_expr(tp_buf *b, int depth) {
    static const char *const atoms[] = {"x",   "y",    "messages",       "1",           "2.5",
                                        "'s'", "none", "true",           "[1, 'a']",    "{'k': 1}",
                                        "ns",  "loop", "undefined_name", "messages[0]", "(1, 2)",
                                        "''",  "-1",   "range(4)"};
    static const char *const bins[] = {" + ", " - ",  " * ", " / ",  " // ",  " % ",  " ** ",
                                       " ~ ", " == ", " < ", " in ", " and ", " or ", " not in "};
    static const char *const posts[] = {".content",    "[0]",         "[1:]",       "[::-1]",
                                        "|length",     "|tojson",     "|trim",      "|string",
                                        "|first",      "|list",       "|sort",      ".strip()",
                                        ".split(',')", "|items",      "|join('-')", " is defined",
                                        " is string",  "|default(3)", ".get('k')",  ".items()"};
    if (depth > 4 || rn(3) == 0) {
        tp_buf_puts(b, atoms[rn(sizeof atoms / sizeof *atoms)]);
    } else if (rn(2)) {
        tp_buf_puts(b, "(");
        rand_expr(b, depth + 1);
        tp_buf_puts(b, bins[rn(sizeof bins / sizeof *bins)]);
        rand_expr(b, depth + 1);
        tp_buf_puts(b, ")");
    } else if (rn(3)) {
        rand_expr(b, depth + 1);
        tp_buf_puts(b, posts[rn(sizeof posts / sizeof *posts)]);
    } else {
        tp_buf_puts(b, "(");
        rand_expr(b, depth + 1);
        tp_buf_puts(b, " if ");
        rand_expr(b, depth + 1);
        tp_buf_puts(b, " else ");
        rand_expr(b, depth + 1);
        tp_buf_puts(b, ")");
    }
}

int main(void) {
    int scale = 1;
    const char *env = getenv("TPL_FUZZ_ITERS");
    if (env && atoi(env) > 0)
        scale = atoi(env);
    tp_template_vars *vars = tp_template_vars_new();
    tp_error err;
    const char *msgs = "[{\"role\": \"system\", \"content\": \"sys\"}, {\"role\": \"user\", "
                       "\"content\": \"hi x\"}, {\"role\": \"assistant\", \"content\": [1, "
                       "{\"type\": \"text\"}]}]";
    CHECK(tp_template_vars_set_json(vars, "messages", msgs, strlen(msgs), &err) == TP_OK);
    CHECK(tp_template_vars_set_string(vars, "x", "a,b", &err) == TP_OK);
    CHECK(tp_template_vars_set_int(vars, "y", 3, &err) == TP_OK);

    /* token soup */
    int n_soup = 6000 * scale;
    for (int it = 0; it < n_soup; it++) {
        tp_buf b = {0};
        int n = 1 + (int)rn(40);
        for (int i = 0; i < n; i++)
            tp_buf_puts(&b, SOUP[rn(sizeof SOUP / sizeof *SOUP)]);
        run_one(b.data ? b.data : "", b.len, vars);
        tp_buf_free(&b);
    }
    /* random bytes around tag markers */
    for (int it = 0; it < 2000 * scale; it++) {
        char buf[96];
        size_t n = rn(sizeof buf);
        for (size_t i = 0; i < n; i++) {
            uint32_t c = rn(10);
            buf[i] =
                c < 3 ? "{}%#-+'\"\\"[rn(9)] : (char)rn(128); /* ASCII: UTF-8 is checked first */
        }
        run_one(buf, n, vars);
    }
    /* grammar-built expressions inside statements */
    for (int it = 0; it < 3000 * scale; it++) {
        tp_buf b = {0};
        tp_buf_puts(&b, "{% set ns = namespace(a=1) %}");
        switch (rn(4)) {
        case 0:
            tp_buf_puts(&b, "{{ ");
            rand_expr(&b, 0);
            tp_buf_puts(&b, " }}");
            break;
        case 1:
            tp_buf_puts(&b, "{% for i in ");
            rand_expr(&b, 0);
            tp_buf_puts(&b, " %}{{ loop.index }}{{ i }}{% endfor %}");
            break;
        case 2:
            tp_buf_puts(&b, "{% if ");
            rand_expr(&b, 0);
            tp_buf_puts(&b, " %}A{% else %}{{ ");
            rand_expr(&b, 0);
            tp_buf_puts(&b, " }}{% endif %}");
            break;
        default:
            tp_buf_puts(&b, "{% set ns.a = ");
            rand_expr(&b, 0);
            tp_buf_puts(&b, " %}{{ ns.a }}");
            break;
        }
        run_one(b.data, b.len, vars);
        tp_buf_free(&b);
    }
    tp_template_vars_free(vars);
    fuzz_chat(1500 * scale);
    printf("fuzz: %d soup + %d byte + %d grammar templates\n", n_soup, 2000 * scale, 3000 * scale);
    return tp_test_exit();
}
