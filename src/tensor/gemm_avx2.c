/*
 * gemm_avx2.c — y = x W^T (+ b) with AVX2 + FMA + F16C, weights in place.
 *
 * The same dot-style scheme as gemm_avx512.c with 8 lanes: y[i][n] has one
 * ymm accumulator, lane l sums x[k] w[n][k] over k = l (mod 8) in k order,
 * the K tail goes through a zero-filled 8-element buffer (so it runs the same
 * FMA as a full vector), then hsum8's fixed tree and the bias. Register tiles
 * of up to 3 rows x 4 columns (12 accumulators of the 16 registers) only share
 * loads. The bf16 compute mode has no dot-product instruction here: x rows are
 * rounded to bf16 values (RNE, as tp_f32_to_bf16) into a stack copy and then
 * multiplied in f32 — bf16 x bf16 products are exact in f32.
 */
#include "tensor/kernels.h"

#include <immintrin.h>
#include <string.h>

static inline float hsum8(__m256 v) {
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}

static inline __m256 widen_bf16(__m128i h) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

static inline __m256 load_w(tp_dtype dt, const void *w, size_t k) {
    if (dt == TP_DTYPE_F32)
        return _mm256_loadu_ps((const float *)w + k);
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + k));
    return dt == TP_DTYPE_F16 ? _mm256_cvtph_ps(h) : widen_bf16(h);
}

/* the last K % 8 weights of a row, zero-filled */
static inline __m256 load_w_tail(tp_dtype dt, const void *w, size_t k, size_t n) {
    if (dt == TP_DTYPE_F32) {
        float buf[8] = {0};
        memcpy(buf, (const float *)w + k, n * sizeof(float));
        return _mm256_loadu_ps(buf);
    }
    uint16_t buf[8] = {0};
    memcpy(buf, (const uint16_t *)w + k, n * sizeof(uint16_t));
    __m128i h = _mm_loadu_si128((const __m128i *)buf);
    return dt == TP_DTYPE_F16 ? _mm256_cvtph_ps(h) : widen_bf16(h);
}

static inline __m256 load_x_tail(const float *x, size_t n) {
    float buf[8] = {0};
    memcpy(buf, x, n * sizeof(float));
    return _mm256_loadu_ps(buf);
}

#define TILE_R 3
#define TILE_C 4

static inline __attribute__((always_inline)) void tile(const int R, const int C, tp_dtype dt,
                                                       const float *x, size_t ldx, const char *w,
                                                       size_t K, float *y, size_t ldy,
                                                       const float *bias) {
    size_t es = dt == TP_DTYPE_F32 ? 4 : 2;
    __m256 acc[TILE_R][8];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int c = 0; c < C; c++)
            acc[r][c] = _mm256_setzero_ps();
    size_t k = 0;
    for (; k + 8 <= K; k += 8) {
        __m256 xv[TILE_R];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
            xv[r] = _mm256_loadu_ps(x + (size_t)r * ldx + k);
#pragma GCC unroll 8
        for (int c = 0; c < C; c++) {
            __m256 wv = load_w(dt, w + (size_t)c * K * es, k);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++)
                acc[r][c] = _mm256_fmadd_ps(xv[r], wv, acc[r][c]);
        }
    }
    if (k < K) {
        __m256 xv[TILE_R];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
            xv[r] = load_x_tail(x + (size_t)r * ldx + k, K - k);
#pragma GCC unroll 8
        for (int c = 0; c < C; c++) {
            __m256 wv = load_w_tail(dt, w + (size_t)c * K * es, k, K - k);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++)
                acc[r][c] = _mm256_fmadd_ps(xv[r], wv, acc[r][c]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int c = 0; c < C; c++) {
            float v = hsum8(acc[r][c]);
            y[(size_t)r * ldy + c] = bias ? v + bias[c] : v;
        }
}

typedef void (*tile_fn)(const float *x, size_t ldx, const void *w, size_t K, float *y, size_t ldy,
                        const float *bias);

#define DEF_TILES(R, C)                                                                            \
    static void t_f32_##R##_##C(const float *x, size_t ldx, const void *w, size_t K, float *y,     \
                                size_t ldy, const float *bias) {                                   \
        tile(R, C, TP_DTYPE_F32, x, ldx, w, K, y, ldy, bias);                                      \
    }                                                                                              \
    static void t_b16_##R##_##C(const float *x, size_t ldx, const void *w, size_t K, float *y,     \
                                size_t ldy, const float *bias) {                                   \
        tile(R, C, TP_DTYPE_BF16, x, ldx, w, K, y, ldy, bias);                                     \
    }                                                                                              \
    static void t_f16_##R##_##C(const float *x, size_t ldx, const void *w, size_t K, float *y,     \
                                size_t ldy, const float *bias) {                                   \
        tile(R, C, TP_DTYPE_F16, x, ldx, w, K, y, ldy, bias);                                      \
    }
#define DEF_ROW(R) DEF_TILES(R, 1) DEF_TILES(R, 2) DEF_TILES(R, 3) DEF_TILES(R, 4)
DEF_ROW(1)
DEF_ROW(2)
DEF_ROW(3)
DEF_TILES(1, 8)

#define ROW_FNS(P, R)                                                                              \
    { P##_##R##_1, P##_##R##_2, P##_##R##_3, P##_##R##_4 }
#define ALL_FNS(P)                                                                                 \
    { ROW_FNS(P, 1), ROW_FNS(P, 2), ROW_FNS(P, 3) }

static const tile_fn tiles[3][TILE_R][TILE_C] = {ALL_FNS(t_f32), ALL_FNS(t_b16), ALL_FNS(t_f16)};
static const tile_fn gemv8[3] = {t_f32_1_8, t_b16_1_8, t_f16_1_8};

static void gemm_block(int kind, const tp_linear *l, const float *x, size_t ldx, float *y,
                       size_t ldy, size_t m0, size_t m1, size_t n0, size_t n1) {
    size_t K = (size_t)l->n_in;
    size_t es = l->dtype == TP_DTYPE_F32 ? 4 : 2;
    const char *w = l->w;
    if (m1 - m0 == 1) {
        const float *xr = x + m0 * ldx;
        float *yr = y + m0 * ldy;
        size_t n = n0;
        for (; n + 8 <= n1; n += 8)
            gemv8[kind](xr, ldx, w + n * K * es, K, yr + n, ldy, l->bias ? l->bias + n : NULL);
        for (; n < n1; n += TILE_C) {
            size_t c = n1 - n < TILE_C ? n1 - n : TILE_C;
            tiles[kind][0][c - 1](xr, ldx, w + n * K * es, K, yr + n, ldy,
                                  l->bias ? l->bias + n : NULL);
        }
        return;
    }
    for (size_t n = n0; n < n1; n += TILE_C) {
        size_t c = n1 - n < TILE_C ? n1 - n : TILE_C;
        for (size_t m = m0; m < m1; m += TILE_R) {
            size_t r = m1 - m < TILE_R ? m1 - m : TILE_R;
            tiles[kind][r - 1][c - 1](x + m * ldx, ldx, w + n * K * es, K, y + m * ldy + n, ldy,
                                      l->bias ? l->bias + n : NULL);
        }
    }
}

/* x rounded to the nearest bf16 value (ties to even; NaN stays a quiet NaN),
 * kept in f32 storage: bit-identical to tp_bf16_to_f32(tp_f32_to_bf16(x)). */
static inline __m256 round_bf16(__m256 x) {
    __m256i u = _mm256_castps_si256(x);
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), lsb));
    r = _mm256_and_si256(r, _mm256_set1_epi32((int)0xffff0000u));
    __m256i qnan = _mm256_or_si256(_mm256_and_si256(u, _mm256_set1_epi32((int)0xffff0000u)),
                                   _mm256_set1_epi32(0x400000));
    __m256i is_nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)),
                                        _mm256_set1_epi32(0x7f800000));
    return _mm256_castsi256_ps(_mm256_blendv_epi8(r, qnan, is_nan));
}

#define XR_MAX 32768 /* floats of rounded x on the stack (128 KiB) */

void tp_avx2_gemm(const tp_gemm_args *a, size_t m0, size_t m1, size_t n0, size_t n1) {
    const tp_linear *l = a->l;
    size_t K = (size_t)l->n_in;
    int kind = l->dtype == TP_DTYPE_F32 ? 0 : l->dtype == TP_DTYPE_BF16 ? 1 : 2;
    if (a->compute != TP_COMPUTE_BF16) {
        gemm_block(kind, l, a->x, a->ldx, a->y, a->ldy, m0, m1, n0, n1);
        return;
    }
    if (K > XR_MAX) {
        tp_kernels_ref.gemm(a, m0, m1, n0, n1); /* a fixed choice per shape */
        return;
    }
    float xr[XR_MAX] __attribute__((aligned(32)));
    size_t group = XR_MAX / K;
    if (group > TILE_R)
        group -= group % TILE_R;
    if (group > 15)
        group = 15;
    for (size_t m = m0; m < m1; m += group) {
        size_t rows = m1 - m < group ? m1 - m : group;
        for (size_t r = 0; r < rows; r++) {
            const float *src = a->x + (m + r) * a->ldx;
            float *dst = xr + r * K;
            size_t k = 0;
            for (; k + 8 <= K; k += 8)
                _mm256_storeu_ps(dst + k, round_bf16(_mm256_loadu_ps(src + k)));
            if (k < K) {
                float buf[8];
                _mm256_storeu_ps(buf, round_bf16(load_x_tail(src + k, K - k)));
                memcpy(dst + k, buf, (K - k) * sizeof(float));
            }
        }
        gemm_block(kind, l, xr, K, a->y + m * a->ldy, a->ldy, 0, rows, n0, n1);
    }
}
