/*
 * main.c — a program outside tpipe built against the installed library: it
 * uses only <tpipe.h> and checks a few calls from different modules answer as
 * documented. argv[1] is an existing folder.
 */
#include <tpipe.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
#define EXPECT(c)                                                                                  \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "consumer: failed: %s\n", #c);                                         \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

int main(int argc, char **argv) {
    EXPECT(argc == 2);
    if (argc != 2)
        return 1;
    EXPECT(TPIPE_VERSION_MAJOR == 0);
    EXPECT(strcmp(tp_status_name(TP_ERR_FORMAT), "TP_ERR_FORMAT") == 0);
    EXPECT(tp_num_cores() >= 1);
    tp_error err;
    tp_error_clear(&err);
    EXPECT(err.status == TP_OK && err.item == -1);
    /* model resolution: a folder is itself; a missing one is a clear error */
    tp_resolve_params rp = tp_resolve_default_params();
    rp.offline = true;
    char *path = NULL;
    EXPECT(tp_model_resolve(argv[1], &rp, &path, &err) == TP_OK);
    EXPECT(path && strcmp(path, argv[1]) == 0);
    free(path);
    EXPECT(tp_model_resolve("/nonexistent/x/y", &rp, &path, &err) == TP_ERR_NOT_FOUND);
    EXPECT(strstr(err.message, "/nonexistent/x/y") != NULL);
    /* the tokenizer and model loaders report a missing folder */
    tp_tokenizer *tok = NULL;
    EXPECT(tp_tokenizer_load("/nonexistent/folder", &tok, &err) == TP_ERR_NOT_FOUND);
    tp_model *m = NULL;
    EXPECT(tp_model_load("/nonexistent/folder", NULL, &m, &err) == TP_ERR_NOT_FOUND);
    if (failures)
        return 1;
    printf("consumer OK (tpipe %d.%d.%d)\n", TPIPE_VERSION_MAJOR, TPIPE_VERSION_MINOR,
           TPIPE_VERSION_PATCH);
    return 0;
}
