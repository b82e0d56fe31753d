/*
 * bench_template.c — how long the chat-template engine takes for a typical conversation
 * (system prompt, three user/assistant exchanges, a final user turn; and the same with two
 * tool definitions), per family, with the real templates of tests/data/templates.
 *
 *   render   variables prepared once (messages already parsed): the template run alone
 *   apply    tp_chat_template_apply: parse the messages JSON + render (what a request costs)
 *   load     tp_chat_template_from_strings: parse tokenizer_config.json + compile the
 *            template (done once per model load)
 *
 * Each figure is the median over 7 batches of repeated calls, in microseconds per call.
 * Prints a table and `BENCH template.<what>.<family> <value> us` lines.
 * Usage: bench_template [TESTDATA_DIR]
 */
#include "core/core.h"
#include "template/template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *MESSAGES =
    "[{\"role\": \"system\", \"content\": \"You are a helpful assistant. Answer concisely and "
    "cite sources when you can.\"},"
    " {\"role\": \"user\", \"content\": \"What is the capital of France?\"},"
    " {\"role\": \"assistant\", \"content\": \"The capital of France is Paris.\"},"
    " {\"role\": \"user\", \"content\": \"And how many people live there? Give the city and the "
    "metropolitan area.\"},"
    " {\"role\": \"assistant\", \"content\": \"About 2.1 million people live in the city of "
    "Paris, and roughly 12 million in the metropolitan area.\"},"
    " {\"role\": \"user\", \"content\": \"Name three museums there.\"},"
    " {\"role\": \"assistant\", \"content\": \"The Louvre, the Musée d'Orsay and the Centre "
    "Pompidou.\"},"
    " {\"role\": \"user\", \"content\": \"Which one has the Mona Lisa?\"}]";

static const char *TOOLS =
    "[{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get "
    "the current weather for a city\", \"parameters\": {\"type\": \"object\", \"properties\": "
    "{\"city\": {\"type\": \"string\", \"description\": \"City name\"}, \"unit\": {\"type\": "
    "\"string\", \"enum\": [\"celsius\", \"fahrenheit\"]}}, \"required\": [\"city\"]}}},"
    " {\"type\": \"function\", \"function\": {\"name\": \"calculate\", \"description\": "
    "\"Evaluate an arithmetic expression\", \"parameters\": {\"type\": \"object\", "
    "\"properties\": {\"expression\": {\"type\": \"string\"}, \"precision\": {\"type\": "
    "\"integer\", \"default\": 2}}, \"required\": [\"expression\"]}}}]";

static char *slurp(const char *path) {
    char *d = NULL;
    size_t n;
    tp_error err;
    if (tp_read_file(path, &d, &n, &err) != TP_OK) {
        fprintf(stderr, "bench_template: %s\n", err.message);
        return NULL;
    }
    return d;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef enum { W_RENDER, W_APPLY, W_COMPILE } what_t;

typedef struct {
    const tp_chat_template *ct;
    const tp_template_vars *vars;
    const char *tools;
    const char *cfg, *jinja; /* for load */
    size_t out_len;
} job;

static int run_once(job *j, what_t w) {
    tp_error err;
    char *out = NULL;
    size_t len = 0;
    tp_status st;
    if (w == W_RENDER) {
        st = tp_chat_template_render_vars(j->ct, j->vars, NULL, &out, &len, &err);
    } else if (w == W_APPLY) {
        st = tp_chat_template_apply(j->ct, MESSAGES, j->tools, true, -1, &out, &len, &err);
    } else {
        tp_chat_template *c = NULL;
        st = tp_chat_template_from_strings(j->cfg, j->jinja, "bench", &c, &err);
        tp_chat_template_destroy(c);
    }
    if (st != TP_OK) {
        fprintf(stderr, "bench_template: %s\n", err.message);
        return -1;
    }
    if (out)
        j->out_len = len;
    free(out);
    return 0;
}

/* median microseconds per call */
static double measure(job *j, what_t w) {
    if (run_once(j, w))
        return -1;
    int reps = 1;
    for (;;) { /* calibrate: a batch of about 20 ms */
        double t0 = tp_now();
        for (int i = 0; i < reps; i++)
            if (run_once(j, w))
                return -1;
        double dt = tp_now() - t0;
        if (dt > 0.02 || reps > (1 << 20))
            break;
        reps *= 2;
    }
    double s[7];
    for (int b = 0; b < 7; b++) {
        double t0 = tp_now();
        for (int i = 0; i < reps; i++)
            run_once(j, w);
        s[b] = (tp_now() - t0) / reps * 1e6;
    }
    qsort(s, 7, sizeof *s, cmp_d);
    return s[3];
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : TP_TESTDATA_DIR;
    static const char *const fam[3] = {"qwen3", "gemma3", "llama3_2"};
    char path[4096];
    printf("chat-template rendering, typical conversation (system + 3 exchanges + user, %zu "
           "bytes of messages JSON)\n",
           strlen(MESSAGES));
    printf("%-10s %-14s %12s %12s %10s\n", "family", "case", "render us", "apply us", "out bytes");
    int rc = 0;
    for (int f = 0; f < 3; f++) {
        char *cfg = NULL, *jinja = NULL;
        if (f < 2) {
            snprintf(path, sizeof path, "%s/templates/%s_tokenizer_config.json", dir, fam[f]);
            cfg = slurp(path);
        } else {
            snprintf(path, sizeof path, "%s/templates/llama3_2_chat_template.jinja", dir);
            jinja = slurp(path);
        }
        if (!cfg && !jinja)
            return 2;
        tp_chat_template *ct = NULL;
        tp_error err;
        if (tp_chat_template_from_strings(cfg, jinja, fam[f], &ct, &err) != TP_OK) {
            fprintf(stderr, "bench_template: %s\n", err.message);
            return 2;
        }
        if (f == 2) {
            tp_chat_template_set_special_token(ct, "bos_token", "<|begin_of_text|>", &err);
            tp_chat_template_set_special_token(ct, "eos_token", "<|eot_id|>", &err);
        }
        for (int with_tools = 0; with_tools < 2; with_tools++) {
            if (f == 1 && with_tools)
                continue; /* Gemma3's template has no tool support */
            tp_template_vars *v = tp_template_vars_new();
            tp_template_vars_set_json(v, "messages", MESSAGES, strlen(MESSAGES), &err);
            if (with_tools)
                tp_template_vars_set_json(v, "tools", TOOLS, strlen(TOOLS), &err);
            else
                tp_template_vars_set_none(v, "tools", &err);
            tp_template_vars_set_none(v, "documents", &err);
            tp_template_vars_set_bool(v, "add_generation_prompt", true, &err);
            job j = {ct, v, with_tools ? TOOLS : NULL, NULL, NULL, 0};
            double r = measure(&j, W_RENDER), a = measure(&j, W_APPLY);
            if (r < 0 || a < 0)
                rc = 1;
            printf("%-10s %-14s %12.2f %12.2f %10zu\n", fam[f],
                   with_tools ? "with-tools" : "conversation", r, a, j.out_len);
            printf("BENCH template.render.%s%s %.2f us\n", fam[f], with_tools ? ".tools" : "", r);
            printf("BENCH template.apply.%s%s %.2f us\n", fam[f], with_tools ? ".tools" : "", a);
            tp_template_vars_free(v);
        }
        job jl = {NULL, NULL, NULL, cfg, jinja, 0};
        double l = measure(&jl, W_COMPILE);
        printf("%-10s %-14s %12.2f us to load (config JSON + compile)\n", fam[f], "template", l);
        printf("BENCH template.load.%s %.2f us\n", fam[f], l);
        free(cfg);
        free(jinja);
        tp_chat_template_destroy(ct);
    }
    return rc;
}
