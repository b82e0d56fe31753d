/*
 * qgemm_avx512.c — quantized-weight GEMM (Q8_0, Q4_K, Q6_K) with AVX-512BW
 * integer dot products, and AVX512_VNNI (VPDPBUSD / VPDPWSSD) when the CPU
 * has it; the same bits as the reference kernel in qgemm.c on every path.
 *
 * Integer part, per 64 weights in one zmm:
 *   Q4_K: 64 bytes of nibbles give two zmm of levels (low nibbles: sub-blocks
 *         4h and 4h+2; high: 4h+1 and 4h+3; x is stored in that order),
 *         VPMADDUBSW with x, then VPMADDWD (or VPDPWSSD) by the two sub-block
 *         scales of each (one VPERMW);
 *   Q6_K: 64 bytes of ql and 32 of qh give 2 x 64 six-bit levels, same steps
 *         with four int8 scales per zmm; the -32 offset as 32 * sum sc_j * bs_j;
 *   Q8_0: two blocks per zmm, |w| times x with w's sign (masked negate), then
 *         VPMADDUBSW + VPMADDWD or one VPDPBUSD; the two halves reduced apart.
 * No intermediate can saturate (pairs at most 2 * 128 * 127), so every path
 * gives the exact int32 block sums. Lanes are reduced by a transpose-add tree
 * four output columns at once; the f32 part runs the reference's per-block
 * FMA sequence with one output column per lane.
 *
 * Tiles: 4 weight rows (output columns) x up to 4 rows of x; a column tail
 * repeats the last column and stores only the valid ones; row tails use
 * smaller tiles. The next-but-one column tile is prefetched block by block
 * (decode streams every weight once).
 */
#include "tensor/kernels.h"
#include "tensor/quant.h"

#include <immintrin.h>
#include <stdatomic.h>
#include <string.h>

#define NC 4
#define RMAX 4
#define PF_TILES 2
#define AI static inline __attribute__((always_inline))
/* the register tiles only stay in registers when their loops are unrolled */
#define UNROLL _Pragma("GCC unroll 8")

/* acc + sum of 4 products u8 x s8 per int32 lane */
AI __m512i dp_u8s8(__m512i acc, __m512i u, __m512i s, const bool vnni) {
    if (vnni)
        return _mm512_dpbusd_epi32(acc, u, s);
    return _mm512_add_epi32(acc,
                            _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1)));
}
/* acc + sum of 2 products i16 x i16 per int32 lane */
AI __m512i dp_i16(__m512i acc, __m512i a, __m512i b, const bool vnni) {
    if (vnni)
        return _mm512_dpwssd_epi32(acc, a, b);
    return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
}

/* per 128-bit lane: [partial a, b, c, d] */
AI __m512i tr4(__m512i a, __m512i b, __m512i c, __m512i d) {
    __m512i ab = _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
    __m512i cd = _mm512_add_epi32(_mm512_unpacklo_epi32(c, d), _mm512_unpackhi_epi32(c, d));
    return _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
}
AI __m128i sum256(__m256i v) {
    return _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
}
/* [sum a, sum b, sum c, sum d] */
AI __m128i hsum4(__m512i a, __m512i b, __m512i c, __m512i d) {
    __m512i s = tr4(a, b, c, d);
    return sum256(_mm256_add_epi32(_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64(s, 1)));
}
/* the same for the low and high 256-bit halves apart */
AI void hsum4_halves(__m512i a, __m512i b, __m512i c, __m512i d, __m128i *lo, __m128i *hi) {
    __m512i s = tr4(a, b, c, d);
    *lo = sum256(_mm512_castsi512_si256(s));
    *hi = sum256(_mm512_extracti64x4_epi64(s, 1));
}
AI __m128i hsum4_256(__m256i a, __m256i b, __m256i c, __m256i d) {
    __m256i ab = _mm256_add_epi32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
    __m256i cd = _mm256_add_epi32(_mm256_unpacklo_epi32(c, d), _mm256_unpackhi_epi32(c, d));
    return sum256(_mm256_add_epi32(_mm256_unpacklo_epi64(ab, cd), _mm256_unpackhi_epi64(ab, cd)));
}

/* the f16 at offset off of each column's data as 4 f32 lanes (exact) */
AI __m128 load_d4(const uint8_t *const w[NC], size_t off) {
    uint16_t h0, h1, h2, h3;
    memcpy(&h0, w[0] + off, 2);
    memcpy(&h1, w[1] + off, 2);
    memcpy(&h2, w[2] + off, 2);
    memcpy(&h3, w[3] + off, 2);
    return _mm_cvtph_ps(_mm_setr_epi16((short)h0, (short)h1, (short)h2, (short)h3, 0, 0, 0, 0));
}

AI void prefetch_ahead(const uint8_t *w0, size_t rb, size_t b, size_t bb) {
    const char *p = (const char *)w0 + PF_TILES * NC * rb + b * NC * bb;
    for (size_t o = 0; o < NC * bb; o += 64)
        _mm_prefetch(p + o, _MM_HINT_T0);
}

AI const int8_t *xrow(const tp_qx *xq, size_t i) {
    return xq->qs + i * xq->ldq;
}

/* ---- Q8_0 ---- */

AI void q8_0_tile(const tp_qx *xq, const uint8_t *const w[NC], size_t rb, size_t i, size_t nb,
                  const int R, const bool vnni, __m128 *accf) {
    const size_t bb = sizeof(tp_block_q8_0);
    UNROLL
    for (int r = 0; r < R; r++)
        accf[r] = _mm_setzero_ps();
    size_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        size_t off = b * bb;
        prefetch_ahead(w[0], rb, b, bb);
        prefetch_ahead(w[0], rb, b + 1, bb);
        __m512i wa[NC];
        __mmask64 neg[NC];
        UNROLL
        for (int c = 0; c < NC; c++) {
            __m256i w0 = _mm256_loadu_si256((const __m256i *)(w[c] + off + 2));
            __m256i w1 = _mm256_loadu_si256((const __m256i *)(w[c] + off + bb + 2));
            __m512i wz = _mm512_inserti64x4(_mm512_castsi256_si512(w0), w1, 1);
            wa[c] = _mm512_abs_epi8(wz);
            neg[c] = _mm512_movepi8_mask(wz);
        }
        __m128 dw0 = load_d4(w, off), dw1 = load_d4(w, off + bb);
        UNROLL
        for (int r = 0; r < R; r++) {
            __m512i xz = _mm512_loadu_si512((const void *)(xrow(xq, i + r) + 32 * b));
            __m512i s[NC];
            UNROLL
            for (int c = 0; c < NC; c++) {
                __m512i xs = _mm512_mask_sub_epi8(xz, neg[c], _mm512_setzero_si512(), xz);
                s[c] = dp_u8s8(_mm512_setzero_si512(), wa[c], xs, vnni);
            }
            __m128i s0, s1;
            hsum4_halves(s[0], s[1], s[2], s[3], &s0, &s1);
            const float *dx = xq->d + (i + r) * xq->ldd + b;
            accf[r] =
                _mm_fmadd_ps(_mm_mul_ps(_mm_set1_ps(dx[0]), dw0), _mm_cvtepi32_ps(s0), accf[r]);
            accf[r] =
                _mm_fmadd_ps(_mm_mul_ps(_mm_set1_ps(dx[1]), dw1), _mm_cvtepi32_ps(s1), accf[r]);
        }
    }
    if (b < nb) { /* odd block count: the last block alone */
        size_t off = b * bb;
        __m256i wa[NC], wv[NC];
        UNROLL
        for (int c = 0; c < NC; c++) {
            wv[c] = _mm256_loadu_si256((const __m256i *)(w[c] + off + 2));
            wa[c] = _mm256_abs_epi8(wv[c]);
        }
        __m128 dw = load_d4(w, off);
        UNROLL
        for (int r = 0; r < R; r++) {
            __m256i xv = _mm256_loadu_si256((const __m256i *)(xrow(xq, i + r) + 32 * b));
            __m256i s[NC];
            UNROLL
            for (int c = 0; c < NC; c++)
                s[c] = _mm256_madd_epi16(_mm256_maddubs_epi16(wa[c], _mm256_sign_epi8(xv, wv[c])),
                                         _mm256_set1_epi16(1));
            __m128 sf = _mm_cvtepi32_ps(hsum4_256(s[0], s[1], s[2], s[3]));
            __m128 p = _mm_mul_ps(_mm_set1_ps(xq->d[(i + r) * xq->ldd + b]), dw);
            accf[r] = _mm_fmadd_ps(p, sf, accf[r]);
        }
    }
}

/* ---- Q4_K ---- */

/* 8 scales and 8 mins of a Q4_K block as int16 lanes */
AI void q4k_scales(const uint8_t *s12, __m128i *sc, __m128i *mn) {
    uint32_t u[3];
    memcpy(u, s12, 12);
    uint32_t a = u[0] & 0x3f3f3f3fu, m = u[1] & 0x3f3f3f3fu;
    uint32_t c = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
    uint32_t e = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
    *sc = _mm_cvtepu8_epi16(_mm_setr_epi32((int)a, (int)c, 0, 0));
    *mn = _mm_cvtepu8_epi16(_mm_setr_epi32((int)m, (int)e, 0, 0));
}

AI __m512i idx2(int lo, int hi) { /* int16 lanes 0..15 = lo, 16..31 = hi */
    return _mm512_inserti64x4(_mm512_set1_epi16((short)lo), _mm256_set1_epi16((short)hi), 1);
}

AI void q4k_tile(const tp_qx *xq, const uint8_t *const w[NC], size_t rb, size_t i, size_t nb,
                 const int R, const bool vnni, __m128 *accf) {
    const __m512i m4 = _mm512_set1_epi8(15);
    /* 64 weight bytes 64h..64h+63: low nibbles = sub-blocks 4h and 4h+2, high
     * nibbles = 4h+1 and 4h+3; x is stored in that order (tp_qx_q4k_pos) */
    const __m512i idx_lo[2] = {idx2(0, 2), idx2(4, 6)}, idx_hi[2] = {idx2(1, 3), idx2(5, 7)};
    const __m256i idx_dup = _mm256_setr_epi16(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    UNROLL
    for (int r = 0; r < R; r++)
        accf[r] = _mm_setzero_ps();
    for (size_t b = 0; b < nb; b++) {
        size_t off = b * sizeof(tp_block_q4_k);
        prefetch_ahead(w[0], rb, b, sizeof(tp_block_q4_k));
        __m128i sc[NC], mn[NC];
        UNROLL
        for (int c = 0; c < NC; c++)
            q4k_scales(w[c] + off + 4, &sc[c], &mn[c]);
        __m512i acc[RMAX][NC];
        UNROLL
        for (int r = 0; r < R; r++)
            UNROLL
        for (int c = 0; c < NC; c++)
            acc[r][c] = _mm512_setzero_si512();
        UNROLL
        for (int h = 0; h < 2; h++) {
            __m512i xl[RMAX], xh[RMAX];
            UNROLL
            for (int r = 0; r < R; r++) {
                const int8_t *xp = xrow(xq, i + r) + 256 * b + 128 * h;
                xl[r] = _mm512_loadu_si512((const void *)xp);
                xh[r] = _mm512_loadu_si512((const void *)(xp + 64));
            }
            UNROLL
            for (int c = 0; c < NC; c++) {
                __m512i v = _mm512_loadu_si512((const void *)(w[c] + off + 16 + 64 * h));
                __m512i zl = _mm512_and_si512(v, m4);
                __m512i zh = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
                __m512i s16 = _mm512_castsi128_si512(sc[c]);
                __m512i sl = _mm512_permutexvar_epi16(idx_lo[h], s16);
                __m512i sh = _mm512_permutexvar_epi16(idx_hi[h], s16);
                UNROLL
                for (int r = 0; r < R; r++) {
                    acc[r][c] = dp_i16(acc[r][c], _mm512_maddubs_epi16(zl, xl[r]), sl, vnni);
                    acc[r][c] = dp_i16(acc[r][c], _mm512_maddubs_epi16(zh, xh[r]), sh, vnni);
                }
            }
        }
        __m128 d = load_d4(w, off), dmin = load_d4(w, off + 2);
        __m256i md[NC];
        UNROLL
        for (int c = 0; c < NC; c++)
            md[c] = _mm256_permutexvar_epi16(idx_dup, _mm256_castsi128_si256(mn[c]));
        UNROLL
        for (int r = 0; r < R; r++) {
            __m256i bs = _mm256_loadu_si256((const __m256i *)(xq->bs + (i + r) * xq->ldb + 16 * b));
            __m128i s1 = hsum4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]);
            __m128i s2 = hsum4_256(_mm256_madd_epi16(bs, md[0]), _mm256_madd_epi16(bs, md[1]),
                                   _mm256_madd_epi16(bs, md[2]), _mm256_madd_epi16(bs, md[3]));
            __m128 dx = _mm_set1_ps(xq->d[(i + r) * xq->ldd + b]);
            accf[r] = _mm_fmadd_ps(_mm_mul_ps(dx, d), _mm_cvtepi32_ps(s1), accf[r]);
            accf[r] = _mm_fnmadd_ps(_mm_mul_ps(dx, dmin), _mm_cvtepi32_ps(s2), accf[r]);
        }
    }
}

/* ---- Q6_K ---- */

AI void q6k_tile(const tp_qx *xq, const uint8_t *const w[NC], size_t rb, size_t i, size_t nb,
                 const int R, const bool vnni, __m128 *accf) {
    const __m512i m4 = _mm512_set1_epi8(15), m2 = _mm512_set1_epi8(3);
    /* int16 lane l of zmm z (elements 64z..64z+63) takes scale 4z + l/8 */
    __m512i idx[4];
    UNROLL
    for (int z = 0; z < 4; z++)
        idx[z] = _mm512_add_epi16(_mm512_set1_epi16((short)(4 * z)),
                                  _mm512_set_epi64(0x0003000300030003, 0x0003000300030003,
                                                   0x0002000200020002, 0x0002000200020002,
                                                   0x0001000100010001, 0x0001000100010001, 0, 0));
    UNROLL
    for (int r = 0; r < R; r++)
        accf[r] = _mm_setzero_ps();
    for (size_t b = 0; b < nb; b++) {
        size_t off = b * sizeof(tp_block_q6_k);
        prefetch_ahead(w[0], rb, b, sizeof(tp_block_q6_k));
        __m256i sc16[NC];
        UNROLL
        for (int c = 0; c < NC; c++)
            sc16[c] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w[c] + off + 192)));
        __m512i acc[RMAX][NC];
        UNROLL
        for (int r = 0; r < R; r++)
            UNROLL
        for (int c = 0; c < NC; c++)
            acc[r][c] = _mm512_setzero_si512();
        UNROLL
        for (int h = 0; h < 2; h++) {
            __m512i xv[RMAX][2];
            UNROLL
            for (int r = 0; r < R; r++) {
                const int8_t *xp = xrow(xq, i + r) + 256 * b + 128 * h;
                xv[r][0] = _mm512_loadu_si512((const void *)xp);
                xv[r][1] = _mm512_loadu_si512((const void *)(xp + 64));
            }
            UNROLL
            for (int c = 0; c < NC; c++) {
                const uint8_t *blk = w[c] + off;
                __m512i A = _mm512_loadu_si512((const void *)(blk + 64 * h));
                __m256i H = _mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * h));
                __m512i h01 =
                    _mm512_inserti64x4(_mm512_castsi256_si512(H), _mm256_srli_epi16(H, 2), 1);
                __m512i h23 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_srli_epi16(H, 4)),
                                                 _mm256_srli_epi16(H, 6), 1);
                __m512i z0 = _mm512_or_si512(_mm512_and_si512(A, m4),
                                             _mm512_slli_epi16(_mm512_and_si512(h01, m2), 4));
                __m512i z1 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(A, 4), m4),
                                             _mm512_slli_epi16(_mm512_and_si512(h23, m2), 4));
                __m512i s16 = _mm512_castsi256_si512(sc16[c]);
                __m512i s0 = _mm512_permutexvar_epi16(idx[2 * h], s16);
                __m512i s1 = _mm512_permutexvar_epi16(idx[2 * h + 1], s16);
                UNROLL
                for (int r = 0; r < R; r++) {
                    acc[r][c] = dp_i16(acc[r][c], _mm512_maddubs_epi16(z0, xv[r][0]), s0, vnni);
                    acc[r][c] = dp_i16(acc[r][c], _mm512_maddubs_epi16(z1, xv[r][1]), s1, vnni);
                }
            }
        }
        __m128 d = load_d4(w, off + 208);
        UNROLL
        for (int r = 0; r < R; r++) {
            __m256i bs = _mm256_loadu_si256((const __m256i *)(xq->bs + (i + r) * xq->ldb + 16 * b));
            __m128i s = hsum4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]);
            __m128i t = hsum4_256(_mm256_madd_epi16(bs, sc16[0]), _mm256_madd_epi16(bs, sc16[1]),
                                  _mm256_madd_epi16(bs, sc16[2]), _mm256_madd_epi16(bs, sc16[3]));
            s = _mm_sub_epi32(s, _mm_slli_epi32(t, 5));
            __m128 dx = _mm_set1_ps(xq->d[(i + r) * xq->ldd + b]);
            accf[r] = _mm_fmadd_ps(_mm_mul_ps(dx, d), _mm_cvtepi32_ps(s), accf[r]);
        }
    }
}

/* ---- driver ---- */

AI void run_tile(tp_dtype t, const tp_qx *xq, const uint8_t *const w[NC], size_t rb, size_t i,
                 size_t nb, const int R, const bool vnni, __m128 *accf) {
    if (t == TP_DTYPE_Q8_0)
        q8_0_tile(xq, w, rb, i, nb, R, vnni, accf);
    else if (t == TP_DTYPE_Q4_K)
        q4k_tile(xq, w, rb, i, nb, R, vnni, accf);
    else
        q6k_tile(xq, w, rb, i, nb, R, vnni, accf);
}

AI void qgemm(const tp_qgemm_args *a, size_t m0, size_t m1, size_t n0, size_t n1, const bool vnni) {
    const tp_linear *l = a->l;
    size_t K = (size_t)l->n_in, rb = 0;
    bool ok = tp_dtype_row_bytes(l->dtype, K, &rb);
    TP_ASSERT(ok && a->xq);
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
        for (size_t i = m0; i < m1;) {
            __m128 accf[RMAX];
            size_t left = m1 - i;
            int R = left >= 4 ? 4 : (int)left;
            if (R == 4)
                run_tile(l->dtype, a->xq, w, rb, i, nb, 4, vnni, accf);
            else if (R == 3)
                run_tile(l->dtype, a->xq, w, rb, i, nb, 3, vnni, accf);
            else if (R == 2)
                run_tile(l->dtype, a->xq, w, rb, i, nb, 2, vnni, accf);
            else
                run_tile(l->dtype, a->xq, w, rb, i, nb, 1, vnni, accf);
            UNROLL
            for (int r = 0; r < R; r++) {
                float out[NC];
                _mm_storeu_ps(out, l->bias ? _mm_add_ps(accf[r], bias) : accf[r]);
                memcpy(a->y + (i + (size_t)r) * a->ldy + n, out, nc * sizeof(float));
            }
            i += (size_t)R;
        }
    }
}

static void qgemm_vnni(const tp_qgemm_args *a, size_t m0, size_t m1, size_t n0, size_t n1) {
    qgemm(a, m0, m1, n0, n1, true);
}
static void qgemm_bw(const tp_qgemm_args *a, size_t m0, size_t m1, size_t n0, size_t n1) {
    qgemm(a, m0, m1, n0, n1, false);
}

/* Whether the CPU has AVX512_VNNI (cached). */
static int vnni_state(void) {
    static atomic_int cached = -1;
    int v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v < 0) {
        v = tp_cpu_detect().avx512_vnni ? 1 : 0;
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return v;
}

static atomic_int force_bw = 0;

void tp_qgemm_avx512_set_vnni(bool allow) {
    atomic_store_explicit(&force_bw, allow ? 0 : 1, memory_order_relaxed);
}

void tp_qgemm_avx512(const tp_qgemm_args *a, size_t m0, size_t m1, size_t n0, size_t n1) {
    if (vnni_state() && !atomic_load_explicit(&force_bw, memory_order_relaxed))
        qgemm_vnni(a, m0, m1, n0, n1);
    else
        qgemm_bw(a, m0, m1, n0, n1);
}
