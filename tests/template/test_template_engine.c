/*
 * test_template_engine.c — unit tests of the Jinja engine's features.
 *
 * The table in engine_cases.h (from engine_cases.txt) holds each case's expected output as
 * Python Jinja2 3.1.6 renders it in transformers' configuration (gen_engine_cases.py);
 * NULL means Python raises, and so must we (TP_ERR_TEMPLATE with a message naming the line).
 * Below the table: deliberately unsupported features (must fail naming the feature), error
 * message contents, the API (vars setters, chat templates from strings/folders, the public
 * tp_chat_template_* calls), and limits (output size, nesting).
 */
#include "template/template.h"
#include "test_util.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    const char *tpl;
    const char *vars; /* JSON object */
    const char *expected;
} engine_case;

#include "common_cases.h"
#include "engine_cases.h"

static int64_t frozen_now(void) {
    struct tm t = {0};
    t.tm_year = 2025 - 1900;
    t.tm_mon = 2;
    t.tm_mday = 9;
    t.tm_hour = 12;
    return (int64_t)timegm(&t);
}

/* Renders tpl with vars (a JSON object); returns the status, output in *out. */
static tp_status render(const char *tpl, const char *vars, char **out, tp_error *err) {
    *out = NULL;
    tp_template *t = NULL;
    tp_status st = tp_template_compile(tpl, strlen(tpl), "case", &t, err);
    if (st)
        return st;
    tp_template_vars *v = tp_template_vars_new();
    st = tp_template_vars_set_json_fields(v, vars, strlen(vars), NULL, err);
    if (!st) {
        tp_template_render_params p = tp_template_default_render_params();
        p.has_now = true;
        p.now = frozen_now();
        const tp_template_vars *layers[1] = {v};
        st = tp_template_render(t, layers, 1, &p, out, NULL, err);
    }
    tp_template_vars_free(v);
    tp_template_free(t);
    return st;
}

static void run_cases(const engine_case *cases, int n, const char *what) {
    int ok = 0;
    for (int i = 0; i < n; i++) {
        char *out = NULL;
        tp_error err;
        tp_error_clear(&err);
        tp_status st = render(cases[i].tpl, cases[i].vars, &out, &err);
        bool pass;
        if (cases[i].expected) {
            pass = st == TP_OK && strcmp(out, cases[i].expected) == 0;
            if (!pass)
                fprintf(stderr, "case %d: %s\n  template: %s\n  got:      %s\n  expected: %s\n", i,
                        st ? err.message : "wrong output", cases[i].tpl, out ? out : "(none)",
                        cases[i].expected);
        } else {
            pass = st == TP_ERR_TEMPLATE && strstr(err.message, "line ") != NULL;
            if (!pass)
                fprintf(stderr, "case %d: expected a template error, got %s (%s)\n  template: %s\n",
                        i, tp_status_name(st), out ? out : err.message, cases[i].tpl);
            else if (getenv("TPL_SHOW_ERRORS"))
                fprintf(stderr, "case %d: %s\n", i, err.message);
        }
        CHECK(pass);
        ok += pass;
        free(out);
    }
    if (what)
        printf("%s: %d/%d\n", what, ok, n);
}

static void test_cases(void) {
    run_cases(CASES, (int)(sizeof CASES / sizeof *CASES), "engine cases");
    run_cases(COMMON_CASES, (int)(sizeof COMMON_CASES / sizeof *COMMON_CASES),
              "common-template cases");
}

/* an error whose message must contain `needle` */
static void expect_error(const char *tpl, const char *vars, const char *needle) {
    char *out = NULL;
    tp_error err;
    tp_error_clear(&err);
    tp_status st = render(tpl, vars ? vars : "{}", &out, &err);
    CHECK_MSG(st == TP_ERR_TEMPLATE && strstr(err.message, needle),
              "template %s: status %s, message \"%s\", wanted \"%s\"", tpl, tp_status_name(st),
              err.message, needle);
    free(out);
}

static void expect_output(const char *tpl, const char *vars, const char *expected) {
    char *out = NULL;
    tp_error err;
    tp_status st = render(tpl, vars ? vars : "{}", &out, &err);
    CHECK_MSG(st == TP_OK && strcmp(out, expected) == 0, "template %s: got \"%s\" (%s)", tpl,
              out ? out : "", st ? err.message : "");
    free(out);
}

static void test_errors(void) {
    /* unsupported features name themselves */
    expect_error("{% for x in [1] %}{{ loop([2]) }}{% endfor %}", NULL, "recursive");
    expect_error("{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}", NULL, "too deep");
    expect_error("{{ '%(a)s' % {'a': 1} }}", NULL, "formatting");
    expect_error("{{ '%s %s' % (1,) }}", NULL, "not enough arguments");
    expect_error("{{ '%d' % 'x' }}", NULL, "number is required");
    /* floats past 64 bits (Python would print a big int; NaN/inf raise there too) */
    expect_error("{{ '%d' % 1e300 }}", NULL, "cannot convert float");
    expect_error("{{ '%x' % -1e19 }}", NULL, "cannot convert float");
    expect_output("{{ '%d' % -2.9 }}", NULL, "-2");
    expect_error("{{ '%c' % 1114112 }}", NULL, "not in range(0x110000)");
    expect_error("{{ '%c' % -1 }}", NULL, "not in range(0x110000)");
    expect_error("{% include 'x' %}", NULL, "'include'");
    expect_error("{% call x %}{% endcall %}", NULL, "macro call");
    expect_error("{% do x %}", NULL, "'do'");
    expect_error("{{ x | nosuch }}", NULL, "filter 'nosuch'");
    expect_error("{{ x is nosuch }}", NULL, "test 'nosuch'");
    expect_error("{{ f(*a) }}", NULL, "*args");
    /* the line number of the failing tag */
    expect_error("a\nb\n{{ raise_exception('custom message') }}", NULL, "line 3");
    expect_error("a\nb\n{{ raise_exception('custom message') }}", NULL, "custom message");
    expect_error("{% if x %}\n\n{% endfor %}", NULL, "line 3");
    expect_error("{% if x %}\n\nno end", NULL, "endif");
    expect_error("{{ 'a' + [1] }}", NULL, "concatenate");
    expect_error("{{ 'x' in none }}", NULL, "not iterable");
    expect_error("{{ m.content.startswith('a') }}", "{\"m\": {\"content\": 5}}", "startswith");
    expect_error("{{ nope.attr }}", NULL, "'nope' is undefined");
    expect_error("{{ 'unterminated }}", NULL, "unterminated string");
    expect_error("{# never closed", NULL, "unterminated comment");
    expect_error("{{ 1 / 0 }}", NULL, "division by zero");
    expect_error("{{ [1, 2].append(3) }}", NULL, "append");
    expect_error("{% set x = 1 %}{% set x.y = 2 %}", NULL, "namespace");
    expect_error("{{ 99999999999999999999 }}", NULL, "too large");
    expect_error("{{ big + 1 }}", "{\"big\": 12345678901234567890}", "64 bits");
    expect_error("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", NULL, "at most 1");
    expect_error("{{ range(1000000) | length }}", NULL, "range() too big");
    expect_error("{% break %}", NULL, "outside of a for loop");
    /* runaway templates stop with an error, never hang or crash */
    expect_error("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}", NULL, "nested too");
    {
        char *vars = malloc(64 * 1024);
        size_t k = (size_t)snprintf(vars, 64, "{\"x\": [0");
        for (int i = 1; i < 5000; i++)
            k += (size_t)snprintf(vars + k, 64 * 1024 - k, ",%d", i % 10);
        snprintf(vars + k, 64 * 1024 - k, "]}");
        expect_error("{% for a in x %}{% for b in x %}{% endfor %}{% endfor %}", vars,
                     "too many loop iterations");
        free(vars);
    }
    {
        /* a string doubling 30 times hits the render memory limit */
        tp_template *t = NULL;
        tp_error err;
        const char *src = "{% set ns = namespace(s='xxxxxxxxxxxxxxxx') %}{% for i in range(30) "
                          "%}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}";
        CHECK(tp_template_compile(src, strlen(src), NULL, &t, &err) == TP_OK);
        tp_template_render_params p = tp_template_default_render_params();
        p.max_memory = 1 << 20;
        char *out = NULL;
        CHECK(tp_template_render(t, NULL, 0, &p, &out, NULL, &err) == TP_ERR_TEMPLATE &&
              strstr(err.message, "memory"));
        free(out);
        tp_template_free(t);
    }
    /* values nested deeper than any input: no stack overflow in ==, <, print, tojson, in */
    static const char *const deep_ops[] = {"{{ ns.l }}", "{{ ns.l < ns.l }}", "{{ ns.l | tojson }}",
                                           "{{ ns.l | string }}"};
    for (size_t i = 0; i < sizeof deep_ops / sizeof *deep_ops; i++) {
        char src[512];
        snprintf(src, sizeof src,
                 "{%% set ns = namespace(l=[]) %%}{%% for i in range(60000) %%}{%% set ns.l = "
                 "[ns.l] %%}{%% endfor %%}{{ ns.l == ns.l }}{{ ns.l in [ns.l] }}%s",
                 deep_ops[i]);
        expect_error(src, NULL, "deep");
    }
    /* deep nesting is refused at compile time, not by a stack overflow */
    char deep[4000];
    size_t k = 0;
    k += (size_t)snprintf(deep + k, sizeof deep - k, "{{ ");
    for (int i = 0; i < 1000; i++)
        deep[k++] = '(';
    deep[k++] = '1';
    for (int i = 0; i < 1000; i++)
        deep[k++] = ')';
    snprintf(deep + k, sizeof deep - k, " }}");
    expect_error(deep, NULL, "too deep");
    k = 0;
    for (int i = 0; i < 300; i++)
        k += (size_t)snprintf(deep + k, sizeof deep - k, "{%% if 1 %%}");
    expect_error(deep, NULL, "too deep");
}

static void test_output_limit(void) {
    tp_template *t = NULL;
    tp_error err;
    const char *src = "{% for i in range(100000) %}0123456789{% endfor %}";
    CHECK(tp_template_compile(src, strlen(src), NULL, &t, &err) == TP_OK);
    tp_template_render_params p = tp_template_default_render_params();
    p.max_output = 1000;
    char *out = NULL;
    tp_status st = tp_template_render(t, NULL, 0, &p, &out, NULL, &err);
    CHECK(st == TP_ERR_TEMPLATE && strstr(err.message, "limit"));
    CHECK(out == NULL);
    p.max_output = 0;
    size_t len = 0;
    st = tp_template_render(t, NULL, 0, &p, &out, &len, &err);
    CHECK(st == TP_OK && len == 1000000);
    free(out);
    tp_template_free(t);
}

static void test_vars_api(void) {
    tp_template *t = NULL;
    tp_error err;
    const char *src = "{{ s }}|{{ b }}|{{ i }}|{{ n }}|{{ l }}|{{ j }}|{{ c }}|{{ over }}";
    CHECK(tp_template_compile(src, strlen(src), "api", &t, &err) == TP_OK);
    tp_template_vars *v = tp_template_vars_new();
    tp_template_vars *base = tp_template_vars_new();
    const char *items[] = {"x", "y"};
    CHECK(tp_template_vars_set_string(v, "s", "str", &err) == TP_OK);
    CHECK(tp_template_vars_set_bool(v, "b", true, &err) == TP_OK);
    CHECK(tp_template_vars_set_int(v, "i", -7, &err) == TP_OK);
    CHECK(tp_template_vars_set_none(v, "n", &err) == TP_OK);
    CHECK(tp_template_vars_set_string_list(v, "l", items, 2, &err) == TP_OK);
    const char *json = "{\"a\": [1, 2.0, \"\\u00e9\\ud83d\\ude00\"]}";
    CHECK(tp_template_vars_set_json(v, "j", json, strlen(json), &err) == TP_OK);
    cJSON *cj = cJSON_Parse("{\"k\": [1, 2.5, true, null]}");
    CHECK(tp_template_vars_set_cjson(v, "c", cj, &err) == TP_OK);
    cJSON_Delete(cj);
    CHECK(tp_template_vars_set_string(v, "over", "first layer wins", &err) == TP_OK);
    CHECK(tp_template_vars_set_string(base, "over", "base", &err) == TP_OK);
    CHECK(tp_template_vars_has(v, "s") && !tp_template_vars_has(v, "zz"));
    /* bad JSON is an input error naming the variable */
    CHECK(tp_template_vars_set_json(v, "bad", "[1, 2", 5, &err) == TP_ERR_INPUT &&
          strstr(err.message, "bad"));
    CHECK(tp_template_vars_set_json_fields(v, "[1]", 3, NULL, &err) == TP_ERR_INPUT);
    CHECK(tp_template_vars_set_json(v, "bad", "\"a\xff\"", 4, &err) == TP_ERR_INPUT &&
          strstr(err.message, "UTF-8"));
    tp_template *bad_t = NULL;
    CHECK(tp_template_compile("ok \xc3", 4, "bad", &bad_t, &err) == TP_ERR_TEMPLATE &&
          strstr(err.message, "UTF-8") && bad_t == NULL);
    const tp_template_vars *layers[2] = {v, base};
    char *out = NULL;
    CHECK(tp_template_render(t, layers, 2, NULL, &out, NULL, &err) == TP_OK);
    CHECK_STR(out ? out : "",
              "str|True|-7|None|['x', 'y']|{'a': [1, 2.0, 'é😀']}|{'k': [1, 2.5, True, None]}|"
              "first layer wins");
    free(out);
    /* the same compiled template and vars render again identically (immutable) */
    CHECK(tp_template_render(t, layers, 2, NULL, &out, NULL, &err) == TP_OK);
    CHECK(out && strstr(out, "first layer wins"));
    free(out);
    tp_template_vars_free(v);
    tp_template_vars_free(base);
    tp_template_free(t);
    /* NULL arguments */
    CHECK(tp_template_compile(NULL, 0, NULL, &t, &err) == TP_ERR_INVALID_ARGUMENT);
    CHECK(tp_template_render(NULL, NULL, 0, NULL, &out, NULL, &err) == TP_ERR_INVALID_ARGUMENT);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_chat_templates(void) {
    tp_error err;
    tp_chat_template *ct = NULL;
    /* chat_template as a list of {name, template}: "default" is used; special tokens */
    const char *cfg =
        "{\"bos_token\": \"<s>\", \"eos_token\": {\"content\": \"</s>\"}, \"unk_token\": null,"
        " \"additional_special_tokens\": [\"<a>\", \"<b>\"],"
        " \"extra_special_tokens\": {\"image_token\": \"<img>\"},"
        " \"chat_template\": [{\"name\": \"tool_use\", \"template\": \"TOOLS\"},"
        " {\"name\": \"default\", \"template\": \"{{ bos_token }}{% for m in messages %}"
        "[{{ m.role }}:{{ m.content }}]{% endfor %}{% if add_generation_prompt %}>{% endif %}"
        "{{ eos_token }}{{ additional_special_tokens }}{{ image_token }}{{ unk_token is defined }}"
        "{{ tools }}{{ enable_thinking is defined }}{{ extra }}\"}]}";
    CHECK(tp_chat_template_from_strings(cfg, NULL, "cfg", &ct, &err) == TP_OK);
    char *out = NULL;
    size_t len = 0;
    CHECK(tp_chat_template_apply(ct, "[{\"role\": \"user\", \"content\": \"hi\"}]", NULL, true, -1,
                                 &out, &len, &err) == TP_OK);
    CHECK_STR(out ? out : "", "<s>[user:hi]></s>['<a>', '<b>']<img>FalseNoneFalse");
    free(out);
    CHECK(tp_chat_template_apply(ct, "[]", NULL, true, -1, &out, &len, &err) == TP_ERR_INPUT);
    CHECK(tp_chat_template_apply(ct, "[{\"role\": \"user\", \"content\": \"hi\"}]", "[{\"x\": 1}]",
                                 false, 1, &out, &len, &err) == TP_OK);
    CHECK_STR(out ? out : "", "<s>[user:hi]</s>['<a>', '<b>']<img>False[{'x': 1}]True");
    free(out);
    /* public API: a JSON line with extra fields; the line's own fields win over params */
    tp_chat_template_params p = tp_chat_template_default_params();
    CHECK(p.add_generation_prompt && p.enable_thinking == -1);
    CHECK(tp_chat_template_render(
              ct, "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}], \"extra\": 5}", &p,
              &out, &err) == TP_OK);
    CHECK_STR(out ? out : "", "<s>[user:a]></s>['<a>', '<b>']<img>FalseNoneFalse5");
    tp_chat_template_string_free(out);
    CHECK(tp_chat_template_render(ct,
                                  "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}], "
                                  "\"add_generation_prompt\": false, \"eos_token\": \"E\"}",
                                  &p, &out, &err) == TP_OK);
    CHECK_STR(out ? out : "", "<s>[user:a]E['<a>', '<b>']<img>FalseNoneFalse");
    tp_chat_template_string_free(out);
    CHECK(tp_chat_template_render(ct, "{\"text\": 1}", &p, &out, &err) == TP_ERR_INPUT &&
          strstr(err.message, "messages"));
    CHECK(tp_chat_template_render(ct, "not json", &p, &out, &err) == TP_ERR_INPUT);
    CHECK(tp_chat_template_render(ct, "{\"messages\": \"x\"}", &p, &out, &err) == TP_ERR_INPUT);
    tp_chat_template_free(ct);

    /* config errors */
    CHECK(tp_chat_template_from_strings("{\"chat_template\": [{\"name\": \"x\", \"template\": "
                                        "\"t\"}]}",
                                        NULL, "c", &ct, &err) == TP_ERR_NOT_FOUND);
    CHECK(tp_chat_template_from_strings("{\"bos_token\": \"x\"}", NULL, "c", &ct, &err) ==
          TP_ERR_NOT_FOUND);
    CHECK(tp_chat_template_from_strings("{broken", NULL, "c", &ct, &err) == TP_ERR_FORMAT);
    CHECK(tp_chat_template_from_strings("{\"chat_template\": \"{% if %}\"}", NULL, "c", &ct,
                                        &err) == TP_ERR_TEMPLATE);
    CHECK(ct == NULL);

    /* model folders: chat_template.jinja wins over the config's template */
    char dir[] = "/tmp/tpl_test_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char p1[256], p2[256];
    snprintf(p1, sizeof p1, "%s/tokenizer_config.json", dir);
    snprintf(p2, sizeof p2, "%s/chat_template.jinja", dir);
    CHECK(tp_chat_template_load(dir, &ct, &err) == TP_ERR_NOT_FOUND);
    write_file(p1, "{\"bos_token\": \"<B>\", \"chat_template\": \"CFG {{ bos_token }}\"}");
    CHECK(tp_chat_template_load(dir, &ct, &err) == TP_OK);
    CHECK(tp_chat_template_render(ct, "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}]}",
                                  NULL, &out, &err) == TP_OK);
    CHECK_STR(out ? out : "", "CFG <B>");
    free(out);
    tp_chat_template_free(ct);
    write_file(p2, "JINJA {{ bos_token }}\n");
    CHECK(tp_chat_template_load(dir, &ct, &err) == TP_OK);
    CHECK(tp_chat_template_render(ct, "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}]}",
                                  NULL, &out, &err) == TP_OK);
    CHECK_STR(out ? out : "", "JINJA <B>");
    free(out);
    tp_chat_template_free(ct);
    unlink(p2);
    /* chat_template.json (processor folders) when the config has no template */
    char p3[256];
    snprintf(p3, sizeof p3, "%s/chat_template.json", dir);
    write_file(p1, "{\"bos_token\": \"<B>\"}");
    write_file(p3, "{\"chat_template\": \"PROC {{ bos_token }}\"}");
    CHECK(tp_chat_template_load(dir, &ct, &err) == TP_OK);
    CHECK(tp_chat_template_render(ct, "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}]}",
                                  NULL, &out, &err) == TP_OK);
    CHECK_STR(out ? out : "", "PROC <B>");
    free(out);
    tp_chat_template_free(ct);
    write_file(p3, "{\"template\": 1}");
    CHECK(tp_chat_template_load(dir, &ct, &err) == TP_ERR_FORMAT &&
          strstr(err.message, "chat_template.json"));
    unlink(p3);
    unlink(p1);
    rmdir(dir);
    CHECK(tp_chat_template_load("/nonexistent/model", &ct, &err) == TP_ERR_NOT_FOUND);
}

/* The real Qwen3 template through the model-folder loader (tests/data copy). */
static void test_qwen3_folder(void) {
    char dir[] = "/tmp/tpl_q3_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char src[4096], dst[256];
    snprintf(src, sizeof src, "%s", tp_test_data("templates/qwen3_tokenizer_config.json"));
    snprintf(dst, sizeof dst, "%s/tokenizer_config.json", dir);
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    CHECK(in && out);
    if (in && out) {
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, in)) > 0)
            fwrite(buf, 1, n, out);
    }
    if (in)
        fclose(in);
    if (out)
        fclose(out);
    tp_chat_template *ct = NULL;
    tp_error err;
    CHECK(tp_chat_template_load(dir, &ct, &err) == TP_OK);
    tp_chat_template_params p = tp_chat_template_default_params();
    p.enable_thinking = 0;
    char *s = NULL;
    CHECK(tp_chat_template_render(ct, "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}",
                                  &p, &s, &err) == TP_OK);
    CHECK_STR(s ? s : "", "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n"
                          "</think>\n\n");
    free(s);
    /* an error names the line and what went wrong */
    CHECK(tp_chat_template_render(ct, "{\"messages\": [{\"role\": \"user\", \"content\": 42}]}", &p,
                                  &s, &err) == TP_ERR_TEMPLATE);
    CHECK(strstr(err.message, "line 20") && strstr(err.message, "startswith"));
    tp_chat_template_free(ct);
    unlink(dst);
    rmdir(dir);
}

/* One compiled template and one variable set, rendered from 4 threads at once: every
 * result equals the single-threaded one (the compiled form and the vars are read-only). */
typedef struct {
    const tp_chat_template *ct;
    const tp_template_vars *vars;
    const char *expected;
    int mismatches;
} thread_job;

static void *thread_main(void *arg) {
    thread_job *j = arg;
    for (int i = 0; i < 200; i++) {
        char *out = NULL;
        tp_error err;
        if (tp_chat_template_render_vars(j->ct, j->vars, NULL, &out, NULL, &err) != TP_OK ||
            strcmp(out, j->expected) != 0)
            j->mismatches++;
        free(out);
    }
    return NULL;
}

static void test_threads(void) {
    FILE *f = fopen(tp_test_data("templates/qwen3_tokenizer_config.json"), "rb");
    CHECK(f != NULL);
    if (!f)
        return;
    static char cfg[65536];
    size_t n = fread(cfg, 1, sizeof cfg - 1, f);
    cfg[n] = 0;
    fclose(f);
    tp_chat_template *ct = NULL;
    tp_error err;
    CHECK(tp_chat_template_from_strings(cfg, NULL, "qwen3", &ct, &err) == TP_OK);
    if (!ct)
        return;
    tp_template_vars *v = tp_template_vars_new();
    const char *msgs = "[{\"role\": \"system\", \"content\": \"S\"}, {\"role\": \"user\", "
                       "\"content\": \"Q\"}, {\"role\": \"assistant\", \"content\": "
                       "\"<think>r</think>A\"}, {\"role\": \"user\", \"content\": \"Q2\"}]";
    const char *tools = "[{\"type\": \"function\", \"function\": {\"name\": \"f\", "
                        "\"parameters\": {\"x\": 1.0}}}]";
    CHECK(tp_template_vars_set_json(v, "messages", msgs, strlen(msgs), &err) == TP_OK);
    CHECK(tp_template_vars_set_json(v, "tools", tools, strlen(tools), &err) == TP_OK);
    CHECK(tp_template_vars_set_bool(v, "add_generation_prompt", true, &err) == TP_OK);
    char *expected = NULL;
    CHECK(tp_chat_template_render_vars(ct, v, NULL, &expected, NULL, &err) == TP_OK);
    CHECK(expected && strstr(expected, "{\"type\": \"function\", \"function\": {\"name\": "
                                       "\"f\", \"parameters\": {\"x\": 1.0}}}"));
    thread_job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (thread_job){ct, v, expected ? expected : "", 0};
        CHECK(pthread_create(&th[i], NULL, thread_main, &jobs[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(jobs[i].mismatches, 0);
    }
    free(expected);
    tp_template_vars_free(v);
    tp_chat_template_destroy(ct);
}

/* Runs a JSON-lines case file ({"tpl", "vars", "expected"}: gen_engine_cases.py --json),
 * e.g. the random differential cases of difftest/run.sh. */
static int run_case_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return 2;
    }
    static char line[1 << 20];
    int n = 0, ok = 0;
    while (fgets(line, sizeof line, f)) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *tpl = cJSON_GetObjectItem(j, "tpl"), *vars = cJSON_GetObjectItem(j, "vars"),
                    *exp = cJSON_GetObjectItem(j, "expected");
        if (!cJSON_IsString(tpl) || !cJSON_IsString(vars)) {
            cJSON_Delete(j);
            continue;
        }
        engine_case c = {tpl->valuestring, vars->valuestring,
                         cJSON_IsString(exp) ? exp->valuestring : NULL};
        int before = tp_test_failures;
        run_cases(&c, 1, NULL);
        ok += tp_test_failures == before;
        n++;
        cJSON_Delete(j);
    }
    fclose(f);
    printf("%s: %d/%d cases agree with Python Jinja2\n", path, ok, n);
    return ok == n ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc > 1)
        return run_case_file(argv[1]);
    test_threads();
    test_cases();
    test_errors();
    test_output_limit();
    test_vars_api();
    test_chat_templates();
    test_qwen3_folder();
    expect_output("{{ x }}", "{\"x\": \"plain\"}", "plain");
    return tp_test_exit();
}
