/* test_core.c — errors, allocation, arena, buffer, thread pool, CPU detection, UTF-8. */
#include "core/core.h"
#include "test_util.h"

#include <stdatomic.h>

static void test_errors(void) {
    tp_error e;
    tp_error_clear(&e);
    CHECK(e.status == TP_OK && e.item == -1 && e.message[0] == 0);
    CHECK(tp_fail(&e, TP_ERR_FORMAT, "file %s: bad %d", "x.json", 3) == TP_ERR_FORMAT);
    CHECK_STR(e.message, "file x.json: bad 3");
    CHECK(e.status == TP_ERR_FORMAT);
    tp_fail_item(&e, TP_ERR_INPUT, 47, "item broke");
    CHECK(e.item == 47);
    tp_error_prefix(&e, "ctx %d", 1);
    CHECK_STR(e.message, "ctx 1: item broke");
    CHECK(tp_fail(NULL, TP_ERR_IO, "x") == TP_ERR_IO);
    CHECK_STR(tp_status_name(TP_ERR_TOO_LONG), "TP_ERR_TOO_LONG");
    CHECK_STR(tp_status_name((tp_status)999), "TP_STATUS_UNKNOWN");
    for (int s = 0; s < TP_STATUS_COUNT; s++)
        CHECK(strncmp(tp_status_name((tp_status)s), "TP_", 3) == 0);
    /* a very long message is truncated, not overflowed */
    char big[2000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    tp_fail(&e, TP_ERR_IO, "%s", big);
    CHECK(strlen(e.message) == TP_ERROR_MESSAGE_MAX - 1);
}

static int log_count;
static void log_cb(tp_log_level lvl, const char *msg, void *user) {
    (void)user;
    if (lvl >= TP_LOG_WARN && strcmp(msg, "hello 5") == 0)
        log_count++;
}

static void test_log(void) {
    tp_log(TP_LOG_ERROR, "silent by default %d", 1);
    tp_set_log_callback(log_cb, NULL, TP_LOG_WARN);
    tp_log(TP_LOG_INFO, "hello %d", 5); /* below min level */
    tp_log(TP_LOG_WARN, "hello %d", 5);
    CHECK_EQ_INT(log_count, 1);
    tp_set_log_callback(NULL, NULL, TP_LOG_INFO);
    tp_log(TP_LOG_ERROR, "hello %d", 5);
    CHECK_EQ_INT(log_count, 1);
}

static void test_alloc(void) {
    size_t out;
    CHECK(!tp_mul_size(SIZE_MAX / 2 + 1, 2, &out));
    CHECK(tp_mul_size(1000, 1000, &out) && out == 1000000);
    CHECK(!tp_add_size(SIZE_MAX, 1, &out));
    CHECK(tp_aligned_alloc(SIZE_MAX / 8, 16) == NULL);
    CHECK(tp_malloc_array(SIZE_MAX / 8, 16) == NULL);
    void *p = tp_aligned_alloc(3, 7);
    CHECK(p && ((uintptr_t)p % TP_ALIGN) == 0);
    tp_aligned_free(p);
    float *z = tp_aligned_calloc(100, sizeof(float));
    CHECK(z && z[0] == 0 && z[99] == 0);
    tp_aligned_free(z);

    tp_arena a;
    CHECK(tp_arena_init(&a, 1024, NULL) == TP_OK);
    void *x = tp_arena_alloc(&a, 10, 1);
    void *y = tp_arena_alloc(&a, 10, 4);
    CHECK(x && y && ((uintptr_t)y % TP_ALIGN) == 0 && (char *)y >= (char *)x + 10);
    CHECK(tp_arena_alloc(&a, 2000, 1) == NULL);
    CHECK(tp_arena_alloc(&a, SIZE_MAX / 2, 4) == NULL);
    size_t hw = a.high_water;
    tp_arena_reset(&a);
    CHECK(a.used == 0 && a.high_water == hw);
    CHECK(tp_arena_alloc(&a, 1024, 1) != NULL);
    tp_arena_free(&a);

    tp_buf b = {0};
    tp_buf_puts(&b, "ab");
    tp_buf_printf(&b, "%d-%s", 42, "x");
    for (int i = 0; i < 1000; i++)
        tp_buf_append(&b, "z", 1);
    CHECK(b.len == 1006 && strncmp(b.data, "ab42-xz", 7) == 0);
    char *s = tp_buf_take(&b);
    CHECK(s && strlen(s) == 1006 && b.data == NULL);
    free(s);
    char *e = tp_buf_take(&b);
    CHECK(e && e[0] == 0);
    free(e);
}

typedef struct pool_ctx {
    atomic_int hits[1000];
    int max_thread;
    atomic_int bad_thread;
} pool_ctx;

static void pool_task(void *ctx, size_t task, int thread) {
    pool_ctx *c = ctx;
    atomic_fetch_add(&c->hits[task], 1);
    if (thread < 0 || thread >= c->max_thread)
        atomic_store(&c->bad_thread, 1);
}

static void test_pool(void) {
    int counts[] = {1, 2, 7};
    for (int k = 0; k < 3; k++) {
        tp_pool *p = tp_pool_create(counts[k], NULL);
        CHECK(p != NULL);
        if (!p)
            continue;
        CHECK_EQ_INT(tp_pool_size(p), counts[k]);
        static pool_ctx c;
        for (int rep = 0; rep < 200; rep++) {
            memset(&c, 0, sizeof c);
            c.max_thread = counts[k];
            size_t n = (size_t)(rep % 17) * 61 % 1000;
            tp_pool_run(p, n, pool_task, &c);
            int ok = 1;
            for (size_t i = 0; i < 1000; i++)
                if (atomic_load(&c.hits[i]) != (i < n ? 1 : 0))
                    ok = 0;
            CHECK_MSG(ok, "threads=%d rep=%d: each task must run exactly once", counts[k], rep);
            CHECK(atomic_load(&c.bad_thread) == 0);
        }
        tp_pool_destroy(p);
    }
    tp_error e;
    CHECK(tp_pool_create(100000, &e) == NULL && e.status == TP_ERR_INVALID_ARGUMENT);
    tp_pool *d = tp_pool_create(0, NULL);
    CHECK(d && tp_pool_size(d) == tp_num_cores());
    tp_pool_destroy(d);
    tp_pool_destroy(NULL);
}

static void test_cpu(void) {
    tp_cpu_features f = tp_cpu_detect();
    /* features imply their prerequisites */
    if (f.avx512_bf16)
        CHECK(f.avx512f);
    if (f.avx512f)
        CHECK(f.avx2);
    tp_isa isa = tp_get_isa();
    CHECK(isa <= TP_ISA_AVX512);
    CHECK(tp_set_isa(TP_ISA_SCALAR, NULL) == TP_OK && tp_get_isa() == TP_ISA_SCALAR);
    tp_error e;
    if (!f.avx512f)
        CHECK(tp_set_isa(TP_ISA_AVX512, &e) == TP_ERR_UNSUPPORTED);
    CHECK(tp_set_isa((tp_isa)9, &e) == TP_ERR_INVALID_ARGUMENT);
    CHECK(tp_set_isa(isa, NULL) == TP_OK);
    CHECK_STR(tp_isa_name(TP_ISA_AVX2), "avx2");
    printf("cpu: avx2=%d fma=%d avx512f=%d avx512_bf16=%d isa=%s\n", f.avx2, f.fma, f.avx512f,
           f.avx512_bf16, tp_isa_name(isa));
}

static void test_utf8(void) {
    CHECK_EQ_INT(tp_utf8_validate("abc", 3), 3);
    CHECK_EQ_INT(tp_utf8_validate("a\xc3\xa9z", 4), 4);
    CHECK_EQ_INT(tp_utf8_validate("ab\xff", 3), 2);
    CHECK_EQ_INT(tp_utf8_validate("ab\xc3", 3), 2);           /* truncated */
    CHECK_EQ_INT(tp_utf8_validate("\xc0\x80", 2), 0);         /* overlong */
    CHECK_EQ_INT(tp_utf8_validate("x\xed\xa0\x80", 4), 1);    /* surrogate */
    CHECK_EQ_INT(tp_utf8_validate("\xf4\x90\x80\x80", 4), 0); /* > U+10FFFF */
    CHECK_EQ_INT(tp_utf8_validate("\xf0\x9f\x98\x80", 4), 4);
    char out[4];
    uint32_t cp;
    uint32_t cps[] = {0x41, 0xE9, 0x20AC, 0x1F600};
    for (int i = 0; i < 4; i++) {
        int n = tp_utf8_encode(cps[i], out);
        CHECK(tp_utf8_decode(out, (size_t)n, &cp) == n && cp == cps[i]);
    }
    CHECK_EQ_INT(tp_utf8_complete_prefix("ab\xf0\x9f\x98", 5), 2);
    CHECK_EQ_INT(tp_utf8_complete_prefix("ab\xf0\x9f\x98\x80", 6), 6);
    CHECK_EQ_INT(tp_utf8_complete_prefix("ab\xc3", 3), 2);
    CHECK_EQ_INT(tp_utf8_complete_prefix("abc", 3), 3);
    CHECK_EQ_INT(tp_utf8_complete_prefix("", 0), 0);
}

static void test_files(void) {
    tp_error e;
    char *d;
    size_t n;
    CHECK(tp_read_file("/nonexistent/x", &d, &n, &e) == TP_ERR_NOT_FOUND);
    CHECK(strstr(e.message, "/nonexistent/x") != NULL);
    CHECK(tp_read_file("/", &d, &n, &e) != TP_OK);
    char *j = tp_path_join("/a/b/", "c");
    CHECK_STR(j, "/a/b/c");
    free(j);
    CHECK(tp_dir_exists("/") && !tp_file_exists("/"));
}

int main(void) {
    test_errors();
    test_log();
    test_alloc();
    test_pool();
    test_cpu();
    test_utf8();
    test_files();
    return tp_test_exit();
}
