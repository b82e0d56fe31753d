/*
 * bench_json.c — why tpipe reads JSON with cJSON: parse and free times of cJSON
 * and jansson on the tokenizer.json files in ../shared/tokenizers (Gemma3 33 MB,
 * Qwen3 11 MB, ModernBERT 2 MB), best and median of a few runs.
 *
 *   build/bench_json [SHARED_DIR] [RUNS]
 *
 * Prints a table and BENCH lines (CLI.md), e.g.
 *   BENCH json.cjson.gemma3.parse 0.25 s
 */
#include "core/core.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef TP_HAVE_JANSSON
#include <jansson.h>
#endif

#define MAX_RUNS 15

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct stats {
    double best, median;
} stats;

static stats summarize(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    stats s = {v[0], v[n / 2]};
    return s;
}

static void report(const char *lib, const char *name, const char *what, stats s) {
    printf("%-8s %-11s %-6s best %.3f s  median %.3f s\n", lib, name, what, s.best, s.median);
    printf("BENCH json.%s.%s.%s %.4f s\n", lib, name, what, s.median);
}

int main(int argc, char **argv) {
    const char *shared = argc > 1 ? argv[1] : getenv("TPIPE_SHARED");
    int runs = argc > 2 ? atoi(argv[2]) : 5;
    if (runs < 1 || runs > MAX_RUNS)
        runs = 5;
    if (!shared)
        shared = "../shared";
    static const char *const names[] = {"gemma3", "qwen3", "modernbert"};
    printf("JSON parse benchmark, %d runs each (lower is better)\n", runs);
    int done = 0;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/tokenizers/%s/tokenizer.json", shared, names[k]);
        char *text = NULL;
        size_t len = 0;
        tp_error err;
        if (tp_read_file(path, &text, &len, &err) != TP_OK) {
            printf("SKIP: %s\n", err.message);
            continue;
        }
        printf("%s: %.1f MB\n", path, (double)len / 1e6);
        double parse[MAX_RUNS], freet[MAX_RUNS];
        for (int r = 0; r < runs; r++) {
            double t0 = tp_now();
            cJSON *root = cJSON_ParseWithLength(text, len);
            double t1 = tp_now();
            cJSON_Delete(root);
            double t2 = tp_now();
            if (!root) {
                fprintf(stderr, "cJSON failed on %s\n", path);
                free(text);
                return 1;
            }
            parse[r] = t1 - t0;
            freet[r] = t2 - t1;
        }
        report("cjson", names[k], "parse", summarize(parse, runs));
        report("cjson", names[k], "free", summarize(freet, runs));
#ifdef TP_HAVE_JANSSON
        for (int r = 0; r < runs; r++) {
            json_error_t jerr;
            double t0 = tp_now();
            json_t *root = json_loadb(text, len, 0, &jerr);
            double t1 = tp_now();
            json_decref(root);
            double t2 = tp_now();
            if (!root) {
                fprintf(stderr, "jansson failed on %s: %s\n", path, jerr.text);
                free(text);
                return 1;
            }
            parse[r] = t1 - t0;
            freet[r] = t2 - t1;
        }
        report("jansson", names[k], "parse", summarize(parse, runs));
        report("jansson", names[k], "free", summarize(freet, runs));
#else
        printf("(jansson not installed: not timed)\n");
#endif
        free(text);
        done++;
    }
    if (!done)
        printf("SKIP: no tokenizer.json found under %s/tokenizers\n", shared);
    return 0;
}
