/*
 * kt_util.h — helpers shared by the kernel tests: a seeded RNG, buffers of
 * random values, the list of ISA levels this CPU runs, and pools of 1, 2 and 7
 * threads. Oracles live in each test and compute in double, independently of
 * the code under test.
 */
#ifndef TP_KT_UTIL_H
#define TP_KT_UTIL_H

#include "tensor/kernels.h"
#include "test_util.h"

#include <stdint.h>

static uint64_t kt_rng_state = 0x9e3779b97f4a7c15ull;

static inline uint32_t kt_rand_u32(void) {
    /* xorshift64* */
    kt_rng_state ^= kt_rng_state >> 12;
    kt_rng_state ^= kt_rng_state << 25;
    kt_rng_state ^= kt_rng_state >> 27;
    return (uint32_t)((kt_rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

/* uniform in [lo, hi) */
static inline float kt_uniform(float lo, float hi) {
    return lo + (hi - lo) * (float)((double)kt_rand_u32() / 4294967296.0);
}

static inline float *kt_alloc(size_t n) {
    float *p = tp_aligned_alloc(n ? n : 1, sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static inline float *kt_random(size_t n, float lo, float hi) {
    float *p = kt_alloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = kt_uniform(lo, hi);
    return p;
}

/* ISA levels this CPU supports, scalar first. Returns the count. */
static inline int kt_isas(tp_isa *out) {
    int n = 0;
    out[n++] = TP_ISA_SCALAR;
    tp_isa extra[2] = {TP_ISA_AVX2, TP_ISA_AVX512};
    for (int i = 0; i < 2; i++) {
        tp_error err = {0};
        tp_isa keep = tp_get_isa();
        if (tp_set_isa(extra[i], &err) == TP_OK)
            out[n++] = extra[i];
        else
            printf("note: ISA %s not supported by this CPU, not tested\n", tp_isa_name(extra[i]));
        tp_set_isa(keep, NULL);
    }
    return n;
}

static inline void kt_set_isa(tp_isa isa) {
    if (tp_set_isa(isa, NULL) != TP_OK) {
        fprintf(stderr, "tp_set_isa(%s) failed\n", tp_isa_name(isa));
        exit(2);
    }
}

static inline tp_pool *kt_pool(int n) {
    tp_error err = {0};
    tp_pool *p = tp_pool_create(n, &err);
    if (!p) {
        fprintf(stderr, "tp_pool_create(%d) failed\n", n);
        exit(2);
    }
    return p;
}

static inline bool kt_same_bits(const float *a, const float *b, size_t n) {
    return memcmp(a, b, n * sizeof(float)) == 0;
}

#endif
