/*
 * main.c — golden_check entry point: one line per case, PASS or FAIL: reason;
 * exit status 1 if any case fails (see ../shared/CLI.md).
 */
#include "golden_check.h"
#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Provided by encoder.c / decoder.c; weak so that a build where one family is
 * not yet implemented reports that honestly as a FAIL instead of not linking. */
__attribute__((weak)) int golden_check_encoder(const char *case_dir, const cJSON *golden, char *why,
                                               size_t why_len);
__attribute__((weak)) int golden_check_decoder(const char *case_dir, const cJSON *golden, char *why,
                                               size_t why_len);

static int check_case(const char *dir, char *why, size_t why_len) {
    char *path = tp_path_join(dir, "golden.json");
    char *text = NULL;
    size_t len = 0;
    tp_error err;
    tp_status st = path ? tp_read_file(path, &text, &len, &err) : TP_ERR_OUT_OF_MEMORY;
    free(path);
    if (st != TP_OK) {
        snprintf(why, why_len, "%s", err.message);
        return 1;
    }
    cJSON *g = cJSON_ParseWithLength(text, len);
    free(text);
    if (!g) {
        snprintf(why, why_len, "golden.json is not valid JSON");
        return 1;
    }
    const cJSON *task = cJSON_GetObjectItemCaseSensitive(g, "task");
    int rc;
    if (!cJSON_IsString(task)) {
        snprintf(why, why_len, "golden.json has no \"task\"");
        rc = 1;
    } else if (!strcmp(task->valuestring, "masked_lm") ||
               !strcmp(task->valuestring, "sequence_classification")) {
        rc = golden_check_encoder ? golden_check_encoder(dir, g, why, why_len)
                                  : (snprintf(why, why_len, "encoder models not built"), 1);
    } else if (!strcmp(task->valuestring, "causal_lm")) {
        rc = golden_check_decoder ? golden_check_decoder(dir, g, why, why_len)
                                  : (snprintf(why, why_len, "decoder models not built"), 1);
    } else {
        snprintf(why, why_len, "unknown task \"%s\"", task->valuestring);
        rc = 1;
    }
    cJSON_Delete(g);
    return rc;
}

const char *golden_weights = NULL;

int main(int argc, char **argv) {
    int first = 1;
    if (argc >= 3 && !strcmp(argv[1], "--weights")) {
        golden_weights = argv[2];
        first = 3;
    }
    if (argc <= first) {
        fprintf(stderr, "usage: golden_check [--weights PATH] CASE_DIR...\n");
        return 2;
    }
    int failed = 0;
    for (int i = first; i < argc; i++) {
        const char *dir = argv[i];
        size_t n = strlen(dir);
        while (n > 1 && dir[n - 1] == '/')
            n--;
        const char *base = dir + n;
        while (base > dir && base[-1] != '/')
            base--;
        char why[1024] = "";
        if (check_case(dir, why, sizeof why) == 0) {
            printf("PASS %.*s\n", (int)(dir + n - base), base);
        } else {
            printf("FAIL %.*s: %s\n", (int)(dir + n - base), base, why);
            failed++;
        }
        fflush(stdout);
    }
    return failed ? 1 : 0;
}
