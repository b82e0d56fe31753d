/*
 * fuzz_util.h — shared helpers of the libFuzzer harnesses (fuzz/fuzz_*.c).
 *
 * Each harness defines LLVMFuzzerTestOneInput (and, when it needs set-up, an
 * LLVMFuzzerInitialize). Built with clang -fsanitize=fuzzer (TPIPE_FUZZ=ON) it
 * is a fuzzer; built by the ordinary compiler it is linked with replay.c into a
 * ctest that runs every committed corpus and regression input once.
 *
 * FUZZ_CHECK states an invariant of the code under test: when it does not hold
 * the harness aborts, which libFuzzer reports as a crash with the input saved.
 * Test data are found through $TPIPE_TESTDATA / $TPIPE_SHARED (set by ctest
 * and scripts/fuzz.sh), else the paths compiled in (the source tree's
 * tests/data and ../shared).
 */
#ifndef TP_FUZZ_UTIL_H
#define TP_FUZZ_UTIL_H

#include "core/core.h"

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef TP_FUZZ_TESTDATA
#define TP_FUZZ_TESTDATA "tests/data"
#endif
#ifndef TP_FUZZ_SHARED
#define TP_FUZZ_SHARED "../shared"
#endif

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__, __LINE__, #cond);           \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* With TPIPE_FUZZ_VERBOSE=1 in the environment, prints what an input came to
 * (to see how much of a corpus gets past the first checks). */
static inline void fuzz_note(const char *what, tp_status st, const tp_error *err) {
    static int verbose = -1;
    if (verbose < 0) {
        const char *v = getenv("TPIPE_FUZZ_VERBOSE");
        verbose = v && *v && *v != '0';
    }
    if (verbose)
        fprintf(stderr, "%s: %s%s%s\n", what, tp_status_name(st), st ? ": " : "",
                st && err ? err->message : "");
}

/* $TPIPE_TESTDATA/<rel>, else the source tree's tests/data/<rel>; malloc'd. */
static inline char *fuzz_data_path(const char *rel) {
    const char *d = getenv("TPIPE_TESTDATA");
    return tp_path_join(d && *d ? d : TP_FUZZ_TESTDATA, rel);
}

/* $TPIPE_SHARED/<rel> (else ../shared/<rel>) when it exists, else NULL; malloc'd. */
static inline char *fuzz_shared_path(const char *rel) {
    const char *d = getenv("TPIPE_SHARED");
    char *p = tp_path_join(d && *d ? d : TP_FUZZ_SHARED, rel);
    if (p && !tp_file_exists(p) && !tp_dir_exists(p)) {
        tp_free(p);
        return NULL;
    }
    return p;
}

/* A private temporary folder (removed by fuzz_rmdir_files + rmdir at exit by
 * the caller when it cares; /tmp is cleaned by the system otherwise). */
static inline char *fuzz_tmpdir(const char *tag) {
    const char *t = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/tpipe-fuzz-%s-XXXXXX", t && *t ? t : "/tmp", tag);
    char *d = mkdtemp(tmpl);
    if (!d) {
        perror("mkdtemp");
        abort();
    }
    return tp_strdup(d);
}

/* Writes data to dir/name (replacing it); aborts on I/O failure (a harness
 * problem, not a finding). */
static inline void fuzz_write(const char *dir, const char *name, const void *data, size_t n) {
    char *p = tp_path_join(dir, name);
    FILE *f = p ? fopen(p, "wb") : NULL;
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        perror(p ? p : name);
        abort();
    }
    tp_free(p);
}

static inline void fuzz_unlink(const char *dir, const char *name) {
    char *p = tp_path_join(dir, name);
    if (p)
        unlink(p);
    tp_free(p);
}

/* Removes the files of a flat folder and the folder. */
static inline void fuzz_rmdir(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                fuzz_unlink(dir, e->d_name);
        closedir(d);
    }
    rmdir(dir);
}

/* A NUL-terminated copy of data[0, n) (tp_free). */
static inline char *fuzz_cstr(const uint8_t *data, size_t n) {
    char *s = tp_malloc(n + 1);
    if (!s)
        abort();
    if (n)
        memcpy(s, data, n);
    s[n] = '\0';
    return s;
}

/* Splits data at the first NUL byte: *a_len bytes before it, the rest after
 * it (b = NULL when there is no NUL). */
static inline void fuzz_split(const uint8_t *data, size_t n, size_t *a_len, const uint8_t **b,
                              size_t *b_len) {
    const uint8_t *z = n ? memchr(data, 0, n) : NULL;
    *a_len = z ? (size_t)(z - data) : n;
    *b = z ? z + 1 : NULL;
    *b_len = z ? n - *a_len - 1 : 0;
}

#endif /* TP_FUZZ_UTIL_H */
