/*
 * test_util.h — a minimal test harness: CHECK macros that count failures and
 * print where they happened; tests return tp_test_exit() from main.
 * Tests that need ../shared skip with a clear line when it is absent (exit 0
 * after printing "SKIP: ..."), so a user's fresh clone still passes.
 */
#ifndef TP_TEST_UTIL_H
#define TP_TEST_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tp_test_failures;
static int tp_test_checks;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        tp_test_checks++;                                                                          \
        if (!(cond)) {                                                                             \
            tp_test_failures++;                                                                    \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                       \
    do {                                                                                           \
        tp_test_checks++;                                                                          \
        if (!(cond)) {                                                                             \
            tp_test_failures++;                                                                    \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    CHECK_MSG((long long)(a) == (long long)(b), "%lld != %lld", (long long)(a), (long long)(b))
#define CHECK_STR(a, b) CHECK_MSG(strcmp((a), (b)) == 0, "\"%s\" != \"%s\"", (a), (b))

static inline int tp_test_exit(void) {
    if (tp_test_failures) {
        fprintf(stderr, "FAILED: %d of %d checks\n", tp_test_failures, tp_test_checks);
        return 1;
    }
    printf("OK: %d checks\n", tp_test_checks);
    return 0;
}

/* $TPIPE_SHARED/<rel> if that exists, else NULL (caller prints SKIP). Static buffer. */
static inline const char *tp_test_shared(const char *rel) {
    static char buf[4096];
    const char *s = getenv("TPIPE_SHARED");
    if (!s)
        return NULL;
    snprintf(buf, sizeof buf, "%s/%s", s, rel);
    FILE *f = fopen(buf, "rb");
    if (!f) {
        /* maybe a directory */
        char probe[4200];
        snprintf(probe, sizeof probe, "%s/.", buf);
        f = fopen(probe, "rb");
        if (!f)
            return NULL;
    }
    fclose(f);
    return buf;
}

/* $TPIPE_TESTDATA/<rel> (always present in the repository). Static buffer. */
static inline const char *tp_test_data(const char *rel) {
    static char buf[4096];
    const char *s = getenv("TPIPE_TESTDATA");
    snprintf(buf, sizeof buf, "%s/%s", s ? s : "tests/data", rel);
    return buf;
}

/* ../shared/<rel> when present, else tests/data/<rel> when that exists (the
 * repository keeps copies of the smaller shared files under the same relative
 * paths), else NULL. Static buffer. */
static inline const char *tp_test_shared_or_data(const char *rel) {
    static char buf[4096];
    const char *p = tp_test_shared(rel);
    if (!p) {
        p = tp_test_data(rel);
        char probe[4200];
        snprintf(probe, sizeof probe, "%s/.", p);
        FILE *f = fopen(p, "rb");
        if (!f)
            f = fopen(probe, "rb");
        if (!f)
            return NULL;
        fclose(f);
    }
    snprintf(buf, sizeof buf, "%s", p);
    return buf;
}

#endif
