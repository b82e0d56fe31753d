/*
 * core.h — internal runtime shared by every module: error helpers, logging,
 * overflow-checked aligned allocation, a bump arena, a persistent thread pool,
 * timing and UTF-8 helpers. Lowest layer: includes nothing of tpipe but tpipe.h.
 */
#ifndef TP_CORE_H
#define TP_CORE_H

#include "tpipe.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* ---- element types of tensors (safetensors dtypes) ---- */
typedef enum tp_dtype {
    TP_DTYPE_F32 = 0,
    TP_DTYPE_F16,
    TP_DTYPE_BF16,
    TP_DTYPE_F64,
    TP_DTYPE_I8,
    TP_DTYPE_U8,
    TP_DTYPE_I16,
    TP_DTYPE_U16,
    TP_DTYPE_I32,
    TP_DTYPE_U32,
    TP_DTYPE_I64,
    TP_DTYPE_U64,
    TP_DTYPE_BOOL,
    TP_DTYPE_COUNT, /* the safetensors dtypes end here (tables indexed by dtype use it) */
    /* GGUF block-quantized weight types (ggml's layouts): a row of n elements is
     * n / tp_dtype_block(t) blocks of tp_dtype_block_bytes(t) bytes. Never valid
     * in a safetensors file. */
    TP_DTYPE_Q8_0 = 32, /* 32 elements: f16 scale + 32 x int8                        */
    TP_DTYPE_Q4_K,      /* 256 elements: f16 d, f16 dmin, 12 B 6-bit scales/mins, 128 B nibbles */
    TP_DTYPE_Q6_K, /* 256 elements: 128 B low nibbles, 64 B high 2 bits, 16 x int8 scales, f16 d */
} tp_dtype;

size_t tp_dtype_size(tp_dtype t); /* bytes per element; 0 for block-quantized types */
const char *
tp_dtype_name(tp_dtype t); /* safetensors spelling: "F32", "BF16", ...; "Q8_0", "Q4_K", "Q6_K" */
bool tp_dtype_is_quant(tp_dtype t);      /* one of the block-quantized types above */
size_t tp_dtype_block(tp_dtype t);       /* elements per block: 1 for plain types, 32 or 256 */
size_t tp_dtype_block_bytes(tp_dtype t); /* bytes per block (= tp_dtype_size for plain types) */
/* Bytes of a row of n elements; false when n is not a whole number of blocks or
 * the size overflows. */
bool tp_dtype_row_bytes(tp_dtype t, uint64_t n, size_t *out);

/* Exact bf16/f16 -> f32 widening and round-to-nearest-even f32 -> bf16. */
static inline float tp_bf16_to_f32(uint16_t h) {
    union {
        uint32_t u;
        float f;
    } v;
    v.u = (uint32_t)h << 16;
    return v.f;
}
static inline uint16_t tp_f32_to_bf16(float f) {
    union {
        uint32_t u;
        float f;
    } v;
    v.f = f;
    if ((v.u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it a quiet NaN */
        return (uint16_t)((v.u >> 16) | 0x40);
    uint32_t rounding = 0x7fffu + ((v.u >> 16) & 1u);
    return (uint16_t)((v.u + rounding) >> 16);
}
float tp_f16_to_f32(uint16_t h);

/* ---- errors ---- */

/* Sets err (if non-NULL) to status + formatted message, item -1; returns status.
 * Typical use: return tp_fail(err, TP_ERR_FORMAT, "%s: tensor '%s': ...", path, name); */
tp_status tp_fail(tp_error *err, tp_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same, with an item index. */
tp_status tp_fail_item(tp_error *err, tp_status status, long item, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Prepends "prefix: " to an existing message (for adding context on the way up). */
void tp_error_prefix(tp_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#if TP_ENABLE_ASSERT
#define TP_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (!(cond))                                                                               \
            tp_assert_fail(#cond, __FILE__, __LINE__);                                             \
    } while (0)
#else
#define TP_ASSERT(cond) ((void)0)
#endif
/* Internal invariant broken: logs and traps. Only for bugs, never for bad input. */
_Noreturn void tp_assert_fail(const char *cond, const char *file, int line);

/* ---- logging ---- */
void tp_log(tp_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool tp_log_enabled(tp_log_level level);

/* ---- allocation ---- */
#define TP_ALIGN 64

/* a*b and a+b with overflow detection: return false on overflow. */
static inline bool tp_mul_size(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool tp_add_size(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}
/* Rounds n up to a multiple of align (a power of two); false on overflow. */
bool tp_align_up(size_t n, size_t align, size_t *out);

/* 64-byte aligned allocation of n*size bytes (overflow-checked); NULL on failure
 * or overflow. The memory is uninitialised (tp_aligned_calloc zeroes it). Free
 * with tp_aligned_free. n*size == 0 returns a valid unique pointer. */
void *tp_aligned_alloc(size_t n, size_t size);
void *tp_aligned_calloc(size_t n, size_t size);
void tp_aligned_free(void *p);

/* Every heap allocation in src/ goes through these (never malloc/calloc/realloc/
 * strdup directly), so tests can make the n-th one fail (tp_alloc_fail_set).
 * tp_free is free(); memory from libraries (cJSON, pcre2) may be freed with it. */
void *tp_malloc(size_t n);
void *tp_calloc(size_t n, size_t size);
void *tp_realloc(void *p, size_t n);
void tp_free(void *p);

/* Allocation-failure injection, SQLite style (tests only; docs/RELIABILITY.md).
 * tp_alloc_fail_set(n, persistent): the n-th allocation from now fails (n = 1: the
 * next one), and with `persistent` every one after it too; n = 0 disarms.
 * tp_alloc_fail_hit(): whether an injected failure has happened since the last set.
 * Process-wide and thread-safe (an atomic countdown); costs one relaxed load per
 * allocation when disarmed. */
void tp_alloc_fail_set(long n, bool persistent);
bool tp_alloc_fail_hit(void);
/* Allocations seen while armed since the last tp_alloc_fail_set (the failing ones
 * included): arm with a huge n to count what a run allocates. */
long tp_alloc_fail_count(void);
/* How many allocations of the calling thread have failed so far (injected or
 * real). A library call that returns NULL both for bad input and for out of
 * memory (cJSON_Parse) is an out-of-memory failure when this count moved:
 *     unsigned long f = tp_alloc_failures(); root = cJSON_Parse(s);
 *     if (!root && tp_alloc_failures() != f) -> TP_ERR_OUT_OF_MEMORY */
unsigned long tp_alloc_failures(void);
/* Tests: fn(i) is called on the allocating thread for the i-th allocation
 * (i = 1, 2, ... since the last set) while injection is armed; NULL removes it.
 * test_alloc_fail uses it to find each distinct call stack that allocates. */
void tp_alloc_fail_observer(void (*fn)(long i));

/* Checked malloc/calloc/realloc for ordinary (unaligned) memory. */
void *tp_malloc_array(size_t n, size_t size);
void *tp_realloc_array(void *p, size_t n, size_t size);
char *tp_strdup(const char *s);
char *tp_strndup(const char *s, size_t n);

/* A bump arena over one aligned block: sized up front, carve pointers out of it,
 * reset between uses. tp_arena_alloc returns NULL when the arena is full (never
 * grows behind the caller's back: callers size it from a plan). */
typedef struct tp_arena {
    uint8_t *base;
    size_t cap;
    size_t used;
    size_t high_water;
} tp_arena;

tp_status tp_arena_init(tp_arena *a, size_t cap, tp_error *err);
void *tp_arena_alloc(tp_arena *a, size_t n, size_t size); /* 64-byte aligned */
void tp_arena_reset(tp_arena *a);
void tp_arena_free(tp_arena *a);

/* A growable byte buffer (for building strings/outputs outside hot loops). */
typedef struct tp_buf {
    char *data; /* always NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
    bool oom; /* set once an append failed; later appends are no-ops */
} tp_buf;

void tp_buf_append(tp_buf *b, const void *data, size_t n);
void tp_buf_puts(tp_buf *b, const char *s);
void tp_buf_printf(tp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tp_buf_free(tp_buf *b);
/* Takes ownership of the data (NUL-terminated, "" if empty); NULL if oom. */
char *tp_buf_take(tp_buf *b);

/* ---- thread pool ---- */

/* A persistent pool of worker threads. tp_pool_run executes fn(ctx, task, thread)
 * for task in [0, n_tasks), spread over the workers and the calling thread, and
 * returns when all are done. Tasks are claimed dynamically, so which thread runs a
 * task varies: a task's result must depend only on `task` (this is what keeps
 * kernels thread-count invariant). `thread` in [0, n_threads) indexes per-thread
 * scratch. A pool is used by one caller at a time (not re-entrant). */
typedef struct tp_pool tp_pool;
typedef void (*tp_task_fn)(void *ctx, size_t task, int thread);

/* n_threads <= 0 means tp_num_cores(). n_threads == 1 runs everything inline. */
tp_pool *tp_pool_create(int n_threads, tp_error *err);
void tp_pool_destroy(tp_pool *pool);
int tp_pool_size(const tp_pool *pool);
void tp_pool_run(tp_pool *pool, size_t n_tasks, tp_task_fn fn, void *ctx);

/* ---- time ---- */
double tp_now(void); /* monotonic seconds */

/* ---- UTF-8 ---- */

/* Returns the byte offset of the first invalid UTF-8 sequence in s[0..n), or n
 * when the whole string is valid (overlongs, surrogates and > U+10FFFF invalid). */
size_t tp_utf8_validate(const char *s, size_t n);
/* Decodes one code point at s (valid UTF-8 assumed, n >= 1); returns its length. */
int tp_utf8_decode(const char *s, size_t n, uint32_t *cp);
/* Encodes cp into out (4 bytes room); returns the length (1..4). */
int tp_utf8_encode(uint32_t cp, char *out);
/* Length of the longest prefix of s[0..n) that does not end inside a UTF-8
 * character (for streaming: hold back an incomplete tail). */
size_t tp_utf8_complete_prefix(const char *s, size_t n);

/* ---- files ---- */

/* Reads a whole file into a NUL-terminated buffer (free with tp_free()). */
tp_status tp_read_file(const char *path, char **data, size_t *len, tp_error *err);
bool tp_file_exists(const char *path);
bool tp_dir_exists(const char *path);
/* Joins a and b with one '/', malloc'd; NULL on OOM. */
char *tp_path_join(const char *a, const char *b);

#endif /* TP_CORE_H */
