/*
 * qgemm_avx2.c — quantized-weight GEMM (Q8_0, Q4_K, Q6_K) with AVX2 integer
 * dot products; the same bits as the reference kernel in qgemm.c.
 *
 * Integer part: unsigned x signed byte products with VPMADDUBSW (weights as
 * the unsigned operand: Q4_K/Q6_K levels are 0..15 / 0..63; Q8_0 uses |w| and
 * x with w's sign applied, VPSIGNB), pairs summed to int16 — never saturating
 * (at most 2 * 128 * 127 = 32512) — then VPMADDWD by the sub-block scales (or
 * by 1) to int32 lanes. A block's lanes are reduced by a fixed transpose-add
 * tree, four output columns at once; integer sums are exact, so any tree gives
 * the reference's sums. f32 part: one lane per output column, the reference's
 * per-block FMA sequence (dx*dw product, FMA with the converted sum).
 *
 * Tiles: 4 weight rows (output columns) x up to 2 rows of x share the unpacked
 * weights; a column tail repeats the last column and stores only the valid
 * ones, a row tail runs the 1-row tile. Neither changes any element's steps.
 */
#include "tensor/kernels.h"
#include "tensor/quant.h"

#include <immintrin.h>
#include <string.h>

#define NC 4
#define RMAX 2
#define AI static inline __attribute__((always_inline))
/* the register tiles only stay in registers when their loops are unrolled */
#define UNROLL _Pragma("GCC unroll 8")

/* [sum a, sum b, sum c, sum d] of four vectors of 8 int32 */
AI __m128i hsum4(__m256i a, __m256i b, __m256i c, __m256i d) {
    __m256i ab = _mm256_add_epi32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
    __m256i cd = _mm256_add_epi32(_mm256_unpacklo_epi32(c, d), _mm256_unpackhi_epi32(c, d));
    __m256i s = _mm256_add_epi32(_mm256_unpacklo_epi64(ab, cd), _mm256_unpackhi_epi64(ab, cd));
    return _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
}

/* the f16 at p[0] of each column's block as 4 f32 lanes (exact widening) */
AI __m128 load_d4(const uint8_t *const w[NC], size_t off) {
    uint16_t h[8] = {0};
    UNROLL
    for (int c = 0; c < NC; c++)
        memcpy(&h[c], w[c] + off, 2);
    return _mm_cvtph_ps(_mm_loadu_si128((const __m128i *)h));
}

AI __m256i bcast2(int lo, int hi) { /* int16 lanes 0..7 = lo, 8..15 = hi */
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16((short)lo)),
                                   _mm_set1_epi16((short)hi), 1);
}

/* Software prefetch of the weights PF_TILES column tiles ahead: the 4 rows of
 * a tile are contiguous (4 * row bytes), so block b of this tile prefetches
 * the b-th 4-block share of that region. DRAM stays busy in the decode
 * shapes, where every weight byte is used by one row of x; no effect on the
 * results. */
#define PF_TILES 2
AI void prefetch_ahead(const uint8_t *w0, size_t rb, size_t b, size_t bb) {
    const char *p = (const char *)w0 + PF_TILES * NC * rb + b * NC * bb;
    for (size_t o = 0; o < NC * bb; o += 64)
        _mm_prefetch(p + o, _MM_HINT_T0);
}

/* ---- Q8_0 ---- */

AI void q8_0_tile(const tp_qx *xq, const uint8_t *const w[NC], size_t rb, size_t i, size_t nb,
                  const int R, __m128 *accf) {
    const __m256i ones = _mm256_set1_epi16(1);
    UNROLL
    for (int r = 0; r < R; r++)
        accf[r] = _mm_setzero_ps();
    for (size_t b = 0; b < nb; b++) {
        size_t off = b * sizeof(tp_block_q8_0);
        prefetch_ahead(w[0], rb, b, sizeof(tp_block_q8_0));
        __m256i wa[NC], wv[NC];
        UNROLL
        for (int c = 0; c < NC; c++) {
            wv[c] = _mm256_loadu_si256((const __m256i *)(w[c] + off + 2));
            wa[c] = _mm256_abs_epi8(wv[c]);
        }
        __m128 dw = load_d4(w, off);
        UNROLL
        for (int r = 0; r < R; r++) {
            __m256i xv = _mm256_loadu_si256((const __m256i *)(xq->qs + (i + r) * xq->ldq + 32 * b));
            __m256i s[NC];
            UNROLL
            for (int c = 0; c < NC; c++)
                s[c] = _mm256_madd_epi16(_mm256_maddubs_epi16(wa[c], _mm256_sign_epi8(xv, wv[c])),
                                         ones);
            __m128 sf = _mm_cvtepi32_ps(hsum4(s[0], s[1], s[2], s[3]));
            __m128 p = _mm_mul_ps(_mm_set1_ps(xq->d[(i + r) * xq->ldd + b]), dw);
            accf[r] = _mm_fmadd_ps(p, sf, accf[r]);
        }
    }
}

/* ---- Q4_K ---- */

/* the 8 scales and 8 mins of a Q4_K block (6-bit fields of scales[12]) */
AI void q4k_unpack(const uint8_t *s12, uint8_t sc[8], uint8_t m[8]) {
    uint32_t u[3];
    memcpy(u, s12, 12);
    uint32_t a = u[0] & 0x3f3f3f3fu, b = u[1] & 0x3f3f3f3fu;
    uint32_t c = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
    uint32_t e = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
    memcpy(sc, &a, 4);
    memcpy(sc + 4, &c, 4);
    memcpy(m, &b, 4);
    memcpy(m + 4, &e, 4);
}

AI void q4k_tile(const tp_qx *xq, const uint8_t *const w[NC], size_t rb, size_t i, size_t nb,
                 const int R, __m128 *accf) {
    const __m256i m4 = _mm256_set1_epi8(15);
    UNROLL
    for (int r = 0; r < R; r++)
        accf[r] = _mm_setzero_ps();
    for (size_t b = 0; b < nb; b++) {
        size_t off = b * sizeof(tp_block_q4_k);
        prefetch_ahead(w[0], rb, b, sizeof(tp_block_q4_k));
        uint8_t sc[NC][8], mn[NC][8];
        UNROLL
        for (int c = 0; c < NC; c++)
            q4k_unpack(w[c] + off + 4, sc[c], mn[c]);
        __m256i acc[RMAX][NC];
        UNROLL
        for (int r = 0; r < R; r++)
            UNROLL
        for (int c = 0; c < NC; c++)
            acc[r][c] = _mm256_setzero_si256();
        UNROLL
        for (int k = 0; k < 4; k++) {
            __m256i xl[RMAX], xh[RMAX];
            UNROLL
            for (int r = 0; r < R; r++) {
                /* sub-blocks 2k and 2k+1 in the tp_qx_q4k_pos order */
                const int8_t *xp =
                    xq->qs + (i + r) * xq->ldq + 256 * b + 128 * (k / 2) + 32 * (k % 2);
                xl[r] = _mm256_loadu_si256((const __m256i *)xp);
                xh[r] = _mm256_loadu_si256((const __m256i *)(xp + 64));
            }
            UNROLL
            for (int c = 0; c < NC; c++) {
                __m256i q = _mm256_loadu_si256((const __m256i *)(w[c] + off + 16 + 32 * k));
                __m256i ql = _mm256_and_si256(q, m4);
                __m256i qh = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
                __m256i sl = _mm256_set1_epi16(sc[c][2 * k]);
                __m256i sh = _mm256_set1_epi16(sc[c][2 * k + 1]);
                UNROLL
                for (int r = 0; r < R; r++) {
                    __m256i pl = _mm256_madd_epi16(_mm256_maddubs_epi16(ql, xl[r]), sl);
                    __m256i ph = _mm256_madd_epi16(_mm256_maddubs_epi16(qh, xh[r]), sh);
                    acc[r][c] = _mm256_add_epi32(acc[r][c], _mm256_add_epi32(pl, ph));
                }
            }
        }
        __m128 d = load_d4(w, off), dmin = load_d4(w, off + 2);
        __m256i md[NC];
        UNROLL
        for (int c = 0; c < NC; c++) {
            __m128i m16 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)mn[c]));
            md[c] = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_unpacklo_epi16(m16, m16)),
                                            _mm_unpackhi_epi16(m16, m16), 1);
        }
        UNROLL
        for (int r = 0; r < R; r++) {
            __m256i bs = _mm256_loadu_si256((const __m256i *)(xq->bs + (i + r) * xq->ldb + 16 * b));
            __m256i t[NC];
            UNROLL
            for (int c = 0; c < NC; c++)
                t[c] = _mm256_madd_epi16(bs, md[c]);
            __m128 s1 = _mm_cvtepi32_ps(hsum4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]));
            __m128 s2 = _mm_cvtepi32_ps(hsum4(t[0], t[1], t[2], t[3]));
            __m128 dx = _mm_set1_ps(xq->d[(i + r) * xq->ldd + b]);
            accf[r] = _mm_fmadd_ps(_mm_mul_ps(dx, d), s1, accf[r]);
            accf[r] = _mm_fnmadd_ps(_mm_mul_ps(dx, dmin), s2, accf[r]);
        }
    }
}

/* ---- Q6_K ---- */

AI void q6k_tile(const tp_qx *xq, const uint8_t *const w[NC], size_t rb, size_t i, size_t nb,
                 const int R, __m128 *accf) {
    const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3);
    UNROLL
    for (int r = 0; r < R; r++)
        accf[r] = _mm_setzero_ps();
    for (size_t b = 0; b < nb; b++) {
        size_t off = b * sizeof(tp_block_q6_k);
        prefetch_ahead(w[0], rb, b, sizeof(tp_block_q6_k));
        __m256i acc[RMAX][NC];
        UNROLL
        for (int r = 0; r < R; r++)
            UNROLL
        for (int c = 0; c < NC; c++)
            acc[r][c] = _mm256_setzero_si256();
        UNROLL
        for (int h = 0; h < 2; h++) {
            __m256i xv[RMAX][4];
            UNROLL
            for (int r = 0; r < R; r++)
                UNROLL
            for (int g = 0; g < 4; g++)
                xv[r][g] = _mm256_loadu_si256(
                    (const __m256i *)(xq->qs + (i + r) * xq->ldq + 256 * b + 128 * h + 32 * g));
            UNROLL
            for (int c = 0; c < NC; c++) {
                const uint8_t *blk = w[c] + off;
                const int8_t *sc = (const int8_t *)(blk + 192) + 8 * h;
                __m256i A = _mm256_loadu_si256((const __m256i *)(blk + 64 * h));
                __m256i B = _mm256_loadu_si256((const __m256i *)(blk + 64 * h + 32));
                __m256i H = _mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * h));
                __m256i q[4];
                q[0] = _mm256_or_si256(_mm256_and_si256(A, m4),
                                       _mm256_slli_epi16(_mm256_and_si256(H, m2), 4));
                q[1] = _mm256_or_si256(
                    _mm256_and_si256(B, m4),
                    _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(H, 2), m2), 4));
                q[2] = _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16(A, 4), m4),
                    _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(H, 4), m2), 4));
                q[3] = _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16(B, 4), m4),
                    _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(H, 6), m2), 4));
                UNROLL
                for (int g = 0; g < 4; g++) {
                    __m256i s = bcast2(sc[2 * g], sc[2 * g + 1]);
                    UNROLL
                    for (int r = 0; r < R; r++)
                        acc[r][c] = _mm256_add_epi32(
                            acc[r][c], _mm256_madd_epi16(_mm256_maddubs_epi16(q[g], xv[r][g]), s));
                }
            }
        }
        __m128 d = load_d4(w, off + 208);
        __m256i s16[NC];
        UNROLL
        for (int c = 0; c < NC; c++)
            s16[c] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w[c] + off + 192)));
        UNROLL
        for (int r = 0; r < R; r++) {
            __m256i bs = _mm256_loadu_si256((const __m256i *)(xq->bs + (i + r) * xq->ldb + 16 * b));
            __m256i t[NC];
            UNROLL
            for (int c = 0; c < NC; c++)
                t[c] = _mm256_sub_epi32(acc[r][c],
                                        _mm256_slli_epi32(_mm256_madd_epi16(bs, s16[c]), 5));
            __m128 s = _mm_cvtepi32_ps(hsum4(t[0], t[1], t[2], t[3]));
            __m128 dx = _mm_set1_ps(xq->d[(i + r) * xq->ldd + b]);
            accf[r] = _mm_fmadd_ps(_mm_mul_ps(dx, d), s, accf[r]);
        }
    }
}

/* ---- driver ---- */

AI void run_tile(tp_dtype t, const tp_qx *xq, const uint8_t *const w[NC], size_t rb, size_t i,
                 size_t nb, const int R, __m128 *accf) {
    if (t == TP_DTYPE_Q8_0)
        q8_0_tile(xq, w, rb, i, nb, R, accf);
    else if (t == TP_DTYPE_Q4_K)
        q4k_tile(xq, w, rb, i, nb, R, accf);
    else
        q6k_tile(xq, w, rb, i, nb, R, accf);
}

void tp_qgemm_avx2(const tp_qgemm_args *a, size_t m0, size_t m1, size_t n0, size_t n1) {
    const tp_linear *l = a->l;
    TP_ASSERT(a->xq);
    size_t K = (size_t)l->n_in, rb = 0;
    bool ok = tp_dtype_row_bytes(l->dtype, K, &rb);
    TP_ASSERT(ok);
    (void)ok;
    size_t nb = K / tp_dtype_block(l->dtype);
    for (size_t n = n0; n < n1; n += NC) {
        size_t nc = n1 - n < NC ? n1 - n : NC;
        const uint8_t *w[NC];
        for (size_t c = 0; c < NC; c++)
            w[c] = (const uint8_t *)l->w + (n + (c < nc ? c : nc - 1)) * rb;
        __m128 bias = _mm_setzero_ps();
        if (l->bias) {
            float bb[NC] = {0};
            memcpy(bb, l->bias + n, nc * sizeof(float));
            bias = _mm_loadu_ps(bb);
        }
        for (size_t i = m0; i < m1; i += RMAX) {
            __m128 accf[RMAX];
            int R = m1 - i >= RMAX ? RMAX : 1;
            if (R == RMAX)
                run_tile(l->dtype, a->xq, w, rb, i, nb, RMAX, accf);
            else
                run_tile(l->dtype, a->xq, w, rb, i, nb, 1, accf);
            UNROLL
            for (int r = 0; r < R; r++) {
                float out[NC];
                _mm_storeu_ps(out, l->bias ? _mm_add_ps(accf[r], bias) : accf[r]);
                memcpy(a->y + (i + (size_t)r) * a->ldy + n, out, nc * sizeof(float));
            }
        }
    }
}
