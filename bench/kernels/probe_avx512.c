/*
 * probe_avx512.c — machine limits for bench_kernels: the f32 FMA rate, the
 * bf16 dot-product (VDPBF16PS) rate of one core, and a read-bandwidth loop.
 * Compiled with AVX-512 flags (see CMakeLists.txt); called only when the CPU
 * has the instructions.
 */
#include "probe.h"

#include <immintrin.h>

/* 12 independent accumulators hide the FMA latency on every current core. */
double probe_fma_f32(long iters) {
    __m512 a[12];
    for (int i = 0; i < 12; i++)
        a[i] = _mm512_set1_ps((float)i * 1e-3f);
    const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++)
            a[i] = _mm512_fmadd_ps(a[i], x, y);
    }
    __m512 s = a[0];
    for (int i = 1; i < 12; i++)
        s = _mm512_add_ps(s, a[i]);
    return (double)_mm512_reduce_add_ps(s);
}

double probe_dp_bf16(long iters) {
    __m512 a[12];
    for (int i = 0; i < 12; i++)
        a[i] = _mm512_set1_ps((float)i * 1e-3f);
    const __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80); /* 1.0 */
    const __m512bh y = (__m512bh)_mm512_set1_epi16(0x2f80); /* ~2.3e-10 */
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++)
            a[i] = _mm512_dpbf16_ps(a[i], x, y);
    }
    __m512 s = a[0];
    for (int i = 1; i < 12; i++)
        s = _mm512_add_ps(s, a[i]);
    return (double)_mm512_reduce_add_ps(s);
}

double probe_read(const float *p, size_t n) {
    /* four streams (the quarters of the range) read side by side, as the
     * GEMV kernels read several weight rows at once */
    size_t q = n / 4;
    const float *p0 = p, *p1 = p + q, *p2 = p + 2 * q, *p3 = p + 3 * q;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 32 <= q; i += 32) {
        a0 = _mm512_add_ps(a0, _mm512_add_ps(_mm512_load_ps(p0 + i), _mm512_load_ps(p0 + i + 16)));
        a1 = _mm512_add_ps(a1, _mm512_add_ps(_mm512_load_ps(p1 + i), _mm512_load_ps(p1 + i + 16)));
        a2 = _mm512_add_ps(a2, _mm512_add_ps(_mm512_load_ps(p2 + i), _mm512_load_ps(p2 + i + 16)));
        a3 = _mm512_add_ps(a3, _mm512_add_ps(_mm512_load_ps(p3 + i), _mm512_load_ps(p3 + i + 16)));
    }
    return (double)_mm512_reduce_add_ps(
        _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}
