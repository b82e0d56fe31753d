/*
 * avx512_util.h — horizontal sums shared by the AVX-512 kernel files (include
 * only from files compiled with the AVX-512 flags, i.e. *_avx512.c).
 *
 * hsum16 is THE reduction of a 16-lane accumulator: lane i + lane i+8, then
 * +4, +2, +1. hsum16x4 computes four of them with the same adds on the same
 * operands, so either gives the same bits for an accumulator — kernels may use
 * whichever is faster at a given place without breaking batch invariance.
 */
#ifndef TP_TENSOR_AVX512_UTIL_H
#define TP_TENSOR_AVX512_UTIL_H

#include <immintrin.h>

static inline float hsum16(__m512 v) {
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}

/* hsum16 of four accumulators at once: the same adds on the same operands
 * (lane i + lane i+8, then +4, +2, +1), so each result has hsum16's bits.
 * Returns [hsum16(a), hsum16(b), hsum16(c), hsum16(d)]. */
static inline __m128 hsum16x4(__m512 a, __m512 b, __m512 c, __m512 d) {
    __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
    __m512 cd = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, 0x44), _mm512_shuffle_f32x4(c, d, 0xEE));
    __m512 s2 =
        _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, 0x88), _mm512_shuffle_f32x4(ab, cd, 0xDD));
    __m512 s3 = _mm512_add_ps(s2, _mm512_shuffle_ps(s2, s2, _MM_SHUFFLE(3, 2, 3, 2)));
    __m512 s4 = _mm512_add_ps(s3, _mm512_shuffle_ps(s3, s3, _MM_SHUFFLE(1, 1, 1, 1)));
    const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    return _mm512_castps512_ps128(_mm512_permutexvar_ps(idx, s4));
}

/* hsum16 of sixteen accumulators in two steps, with hsum16's adds on the same
 * operands (so each result has hsum16's bits):
 *   hsum16_quad(a, b, c, d): the first two levels (lane i + lane i+8, then
 *     +4); 128-bit quarter q holds the four partial sums of the q-th input.
 *   hsum16_quads(p0, p1, p2, p3): the last two levels (+2, +1) of the
 *     sixteen inputs of four hsum16_quad results, transposed back so that
 *     lane 4e + q is hsum16 of input q of p_e. */
static inline __m512 hsum16_quad(__m512 a, __m512 b, __m512 c, __m512 d) {
    __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
    __m512 cd = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, 0x44), _mm512_shuffle_f32x4(c, d, 0xEE));
    return _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, 0x88), _mm512_shuffle_f32x4(ab, cd, 0xDD));
}

static inline __m512 hsum16_quads(__m512 p0, __m512 p1, __m512 p2, __m512 p3) {
    /* per quarter: [x0 + x2, x1 + x3] of two inputs side by side */
    __m512 q01 = _mm512_add_ps(_mm512_shuffle_ps(p0, p1, _MM_SHUFFLE(1, 0, 1, 0)),
                               _mm512_shuffle_ps(p0, p1, _MM_SHUFFLE(3, 2, 3, 2)));
    __m512 q23 = _mm512_add_ps(_mm512_shuffle_ps(p2, p3, _MM_SHUFFLE(1, 0, 1, 0)),
                               _mm512_shuffle_ps(p2, p3, _MM_SHUFFLE(3, 2, 3, 2)));
    /* (x0 + x2) + (x1 + x3); element e of quarter q is input q of p_e */
    __m512 r = _mm512_add_ps(_mm512_shuffle_ps(q01, q23, _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_ps(q01, q23, _MM_SHUFFLE(3, 1, 3, 1)));
    const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_ps(idx, r);
}

#endif /* TP_TENSOR_AVX512_UTIL_H */
