/*
 * replay.c — runs a fuzz harness without libFuzzer: every file named on the
 * command line, or found (recursively) in a folder named there, is fed once to
 * LLVMFuzzerTestOneInput. This is how the committed corpora
 * (fuzz/corpus/<target>/) and the inputs of bugs the fuzzers found
 * (fuzz/regressions/<target>/) run in ctest, under the ordinary and the
 * AddressSanitizer builds, without clang. A harness that finds a broken
 * invariant aborts, so the test fails; it prints how many inputs ran.
 */
#include "fuzz_util.h"

#include <errno.h>

__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    return 0;
}

static size_t g_runs;

static void run_file(const char *path) {
    char *data = NULL;
    size_t len = 0;
    tp_error err;
    if (tp_read_file(path, &data, &len, &err) != TP_OK) {
        fprintf(stderr, "replay: %s\n", err.message);
        exit(1);
    }
    /* an exact-size copy, so AddressSanitizer sees any read past the input */
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        abort();
    if (len)
        memcpy(copy, data, len);
    tp_free(data);
    LLVMFuzzerTestOneInput(copy, len);
    free(copy);
    g_runs++;
}

static void run_path(const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0) {
        /* a target may have no regression inputs (yet): its folder is absent */
        if (errno == ENOENT) {
            printf("replay: %s: absent, skipped\n", path);
            return;
        }
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    if (!S_ISDIR(sb.st_mode)) {
        run_file(path);
        return;
    }
    struct dirent **names = NULL;
    int n = scandir(path, &names, NULL, alphasort); /* sorted: runs are repeatable */
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.') {
            char *p = tp_path_join(path, names[i]->d_name);
            if (!p)
                abort();
            run_path(p);
            tp_free(p);
        }
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv) {
    LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++)
        run_path(argv[i]);
    printf("replay: %zu inputs ran without a finding\n", g_runs);
    return 0;
}
