/*
 * alloc.c — overflow-checked allocation, the bump arena and the growable buffer.
 *
 * Every size computed from untrusted numbers (file headers, batch sizes) goes
 * through tp_mul_size/tp_add_size before it reaches an allocator.
 */
#include "core/core.h"

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Failure injection: g_fail_countdown > 0 counts allocations down to the one that
 * fails; g_fail_persistent keeps failing after it. Disarmed: countdown == 0. */
static _Atomic long g_fail_countdown;
static _Atomic bool g_fail_persistent;
static _Atomic bool g_fail_hit;
static _Atomic long g_fail_seen; /* allocations while armed, since the last set */
static void (*_Atomic g_fail_observer)(long);

void tp_alloc_fail_set(long n, bool persistent) {
    atomic_store(&g_fail_hit, false);
    atomic_store(&g_fail_seen, 0L);
    atomic_store(&g_fail_persistent, persistent);
    atomic_store(&g_fail_countdown, n > 0 ? n : 0);
}

bool tp_alloc_fail_hit(void) {
    return atomic_load(&g_fail_hit);
}

long tp_alloc_fail_count(void) {
    return atomic_load(&g_fail_seen);
}

void tp_alloc_fail_observer(void (*fn)(long i)) {
    atomic_store(&g_fail_observer, fn);
}

/* True when this allocation must fail. */
static bool injected_failure(void) {
    if (atomic_load_explicit(&g_fail_countdown, memory_order_relaxed) == 0)
        return false;
    long seen = atomic_fetch_add_explicit(&g_fail_seen, 1, memory_order_relaxed) + 1;
    void (*observe)(long) = atomic_load_explicit(&g_fail_observer, memory_order_relaxed);
    if (observe)
        observe(seen);
    long left = atomic_fetch_sub(&g_fail_countdown, 1);
    if (left == 1) { /* this is the n-th */
        if (atomic_load(&g_fail_persistent))
            atomic_store(&g_fail_countdown, -1L);
        atomic_store(&g_fail_hit, true);
        return true;
    }
    if (left <= 0) { /* persistent after the n-th (or raced past a disarm): keep it negative */
        atomic_store(&g_fail_countdown, -1L);
        return atomic_load(&g_fail_persistent) ? (atomic_store(&g_fail_hit, true), true) : false;
    }
    return false;
}

/* Failed allocations of this thread (injected or real): lets a caller tell a
 * library's NULL for "out of memory" from its NULL for "bad input" (cJSON). */
static _Thread_local unsigned long tl_failures;

unsigned long tp_alloc_failures(void) {
    return tl_failures;
}

static void *noted(void *p) {
    if (!p)
        tl_failures++;
    return p;
}

void *tp_malloc(size_t n) {
    return noted(injected_failure() ? NULL : malloc(n ? n : 1));
}

void *tp_calloc(size_t n, size_t size) {
    return noted(injected_failure() ? NULL : calloc(n ? n : 1, size ? size : 1));
}

void *tp_realloc(void *p, size_t n) {
    return noted(injected_failure() ? NULL : realloc(p, n ? n : 1));
}

void tp_free(void *p) {
    free(p);
}

/* cJSON allocates through these too, so injected failures reach JSON parsing.
 * They are plain malloc/free wrappers, so other cJSON users in the process see
 * no difference. */
__attribute__((constructor)) static void route_cjson_allocations(void) {
    cJSON_Hooks hooks = {.malloc_fn = tp_malloc, .free_fn = tp_free};
    cJSON_InitHooks(&hooks);
}

bool tp_align_up(size_t n, size_t align, size_t *out) {
    size_t t;
    if (!tp_add_size(n, align - 1, &t))
        return false;
    *out = t & ~(align - 1);
    return true;
}

void *tp_aligned_alloc(size_t n, size_t size) {
    size_t bytes, rounded;
    if (!tp_mul_size(n, size, &bytes) || !tp_align_up(bytes ? bytes : 1, TP_ALIGN, &rounded))
        return NULL;
    return noted(injected_failure() ? NULL : aligned_alloc(TP_ALIGN, rounded));
}

void *tp_aligned_calloc(size_t n, size_t size) {
    void *p = tp_aligned_alloc(n, size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void tp_aligned_free(void *p) {
    free(p);
}

void *tp_malloc_array(size_t n, size_t size) {
    size_t bytes;
    if (!tp_mul_size(n, size, &bytes))
        return NULL;
    return tp_malloc(bytes);
}

void *tp_realloc_array(void *p, size_t n, size_t size) {
    size_t bytes;
    if (!tp_mul_size(n, size, &bytes))
        return NULL;
    return tp_realloc(p, bytes);
}

char *tp_strdup(const char *s) {
    return tp_strndup(s, strlen(s));
}

char *tp_strndup(const char *s, size_t n) {
    char *d = tp_malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

tp_status tp_arena_init(tp_arena *a, size_t cap, tp_error *err) {
    memset(a, 0, sizeof *a);
    a->base = tp_aligned_alloc(cap, 1);
    if (!a->base)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "arena: cannot allocate %zu bytes", cap);
    a->cap = cap;
    return TP_OK;
}

void *tp_arena_alloc(tp_arena *a, size_t n, size_t size) {
    size_t bytes, start, end;
    if (!tp_mul_size(n, size, &bytes) || !tp_align_up(a->used, TP_ALIGN, &start) ||
        !tp_add_size(start, bytes, &end) || end > a->cap)
        return NULL;
    a->used = end;
    if (end > a->high_water)
        a->high_water = end;
    return a->base + start;
}

void tp_arena_reset(tp_arena *a) {
    a->used = 0;
}

void tp_arena_free(tp_arena *a) {
    tp_aligned_free(a->base);
    memset(a, 0, sizeof *a);
}

static bool buf_reserve(tp_buf *b, size_t extra) {
    if (b->oom)
        return false;
    size_t need;
    if (!tp_add_size(b->len, extra, &need) || !tp_add_size(need, 1, &need)) {
        b->oom = true;
        return false;
    }
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *d = tp_realloc(b->data, cap);
    if (!d) {
        b->oom = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

void tp_buf_append(tp_buf *b, const void *data, size_t n) {
    if (!buf_reserve(b, n))
        return;
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void tp_buf_puts(tp_buf *b, const char *s) {
    tp_buf_append(b, s, strlen(s));
}

void tp_buf_printf(tp_buf *b, const char *fmt, ...) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !buf_reserve(b, (size_t)n)) {
        va_end(ap2);
        return;
    }
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    b->len += (size_t)n;
}

void tp_buf_free(tp_buf *b) {
    tp_free(b->data);
    memset(b, 0, sizeof *b);
}

char *tp_buf_take(tp_buf *b) {
    if (b->oom) {
        tp_buf_free(b);
        return NULL;
    }
    if (!b->data)
        return tp_strdup("");
    char *d = b->data;
    memset(b, 0, sizeof *b);
    return d;
}
