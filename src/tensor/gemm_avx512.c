/*
 * gemm_avx512.c — y = x W^T (+ b) with AVX-512 (and AVX512_BF16 for the bf16
 * compute mode), weights used in place in their own dtype.
 *
 * Dot-style kernel (see kernels.h): y[i][n] has one zmm accumulator; in f32
 * mode lane l sums x[k] w[n][k] over k = l (mod 16) with one FMA per 16 k, in
 * k order; the K tail is a masked (zero-filled) load; the 16 lanes are then
 * added by hsum16's fixed tree and the bias added last. In bf16 mode each
 * 32 k chunk is one VDPBF16PS (lane l takes the pair k = 2l, 2l+1 of the
 * chunk), x having been rounded to bf16 (RNE) into a stack copy once per group
 * of rows. A register tile of R rows x C columns (up to 4 x 6: 24
 * accumulators) only shares the loads; every element still runs exactly the
 * sequence above (K-blocked passes park the accumulators exactly), so edge
 * tiles and M=1 (GEMV) give the same bits as the middle of a 4096-row call.
 *
 * Loop order inside a task: columns outer (a panel of C rows of W stays in L1
 * while the task's rows stream past in 4-row tiles), K blocks when the panel
 * would not fit L1, next panel prefetched. M <= 4 (decode): two or four W rows
 * at a time as long sequential streams with a prefetch 12 KiB ahead.
 * docs/kernels.md has the measurements behind these choices.
 */
#include "tensor/kernels.h"

#include "tensor/avx512_util.h"

#include <immintrin.h>

/* 16 weights at w (element index k) widened to f32; masked variants zero-fill. */
static inline __m512 load_w(tp_dtype dt, const void *w, size_t k) {
    if (dt == TP_DTYPE_F32)
        return _mm512_loadu_ps((const float *)w + k);
    __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)w + k));
    if (dt == TP_DTYPE_F16)
        return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
static inline __m512 load_w_mask(tp_dtype dt, const void *w, size_t k, __mmask16 m) {
    if (dt == TP_DTYPE_F32)
        return _mm512_maskz_loadu_ps(m, (const float *)w + k);
    __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)w + k);
    if (dt == TP_DTYPE_F16)
        return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

#define TILE_R 4
#define TILE_C 6
#define GEMV_PF_BYTES 12288
#define MAX_TILES 16 /* row tiles per gemm_block call: 64 rows (dispatch.c GEMM_MB) */

/* Software prefetch of the next weight panel while this one is multiplied:
 * `lines` consecutive cache lines from p per k step, in address order (the
 * order the hardware prefetchers follow best), never at or past `end`. It
 * keeps DRAM busy in the decode shapes, where a panel is used by only a few
 * rows of x. Prefetches do not change any result. */
typedef struct pf_spec {
    const char *p;
    const char *end;
    int lines;
    bool nta; /* streamed once (decode): non-temporal hint, measured a little faster */
} pf_spec;

static inline __attribute__((always_inline)) const char *
prefetch_lines(const char *p, const char *end, int lines, bool nta) {
    for (int i = 0; i < lines; i++, p += 64)
        if (p < end) {
            if (nta)
                _mm_prefetch(p, _MM_HINT_NTA);
            else
                _mm_prefetch(p, _MM_HINT_T0);
        }
    return p;
}

/* Prefetch plan for [p, end) spread over `steps` k steps. */
static inline pf_spec pf_plan(const char *p, const char *end, size_t steps) {
    pf_spec pf = {p, end, 0, false};
    if (end > p && steps > 0) {
        size_t lines = ((size_t)(end - p) + 63) / 64;
        pf.lines = (int)((lines + steps - 1) / steps);
    }
    return pf;
}

/* The k range of one pass over a tile: [kb, ke). A GEMM with a long K runs
 * several passes per tile (K blocking, so that the W panel stays in L1); the
 * accumulators are parked in `state` between passes, exactly, so an element
 * sees the same FMA sequence as in one pass. state == NULL: one pass [0, K). */
typedef struct kseg {
    size_t kb, ke;
    float *state; /* R x C accumulators of 16 floats */
} kseg;

/* y[r][c] = hsum16(acc[r][c]) (+ bias[c]); four columns at a time. */
static inline __attribute__((always_inline)) void
store_tile(const int R, const int C, __m512 acc[][8], float *y, size_t ldy, const float *bias) {
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        float *yr = y + (size_t)r * ldy;
        int c = 0;
#pragma GCC unroll 2
        for (; c + 4 <= C; c += 4) {
            __m128 v = hsum16x4(acc[r][c], acc[r][c + 1], acc[r][c + 2], acc[r][c + 3]);
            if (bias)
                v = _mm_add_ps(v, _mm_loadu_ps(bias + c));
            _mm_storeu_ps(yr + c, v);
        }
#pragma GCC unroll 4
        for (; c < C; c++) {
            float v = hsum16(acc[r][c]);
            yr[c] = bias ? v + bias[c] : v;
        }
    }
}

static inline __attribute__((always_inline)) void acc_begin(const int R, const int C,
                                                            __m512 acc[][8], kseg ks) {
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int c = 0; c < C; c++)
            acc[r][c] = ks.state && ks.kb > 0 ? _mm512_load_ps(ks.state + (r * C + c) * 16)
                                              : _mm512_setzero_ps();
}

static inline __attribute__((always_inline)) void acc_park(const int R, const int C,
                                                           __m512 acc[][8], kseg ks) {
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int c = 0; c < C; c++)
            _mm512_store_ps(ks.state + (r * C + c) * 16, acc[r][c]);
}

/* f32 compute: out[r][c] = sum_k x[r][k] w[c][k] for an R x C tile. */
static inline __attribute__((always_inline)) void
tile_f32(const int R, const int C, tp_dtype dt, const float *x, size_t ldx, const char *w, size_t K,
         kseg ks, float *y, size_t ldy, const float *bias, pf_spec pf) {
    size_t es = dt == TP_DTYPE_F32 ? 4 : 2;
    __m512 acc[TILE_R][8];
    acc_begin(R, C, acc, ks);
    size_t ke = ks.state ? ks.ke : K;
    size_t k = ks.state ? ks.kb : 0;
    for (; k + 16 <= ke; k += 16) {
        if (pf.lines)
            pf.p = prefetch_lines(pf.p, pf.end, pf.lines, pf.nta);
        __m512 xv[TILE_R];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
            xv[r] = _mm512_loadu_ps(x + (size_t)r * ldx + k);
#pragma GCC unroll 8
        for (int c = 0; c < C; c++) {
            __m512 wv = load_w(dt, w + (size_t)c * K * es, k);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++)
                acc[r][c] = _mm512_fmadd_ps(xv[r], wv, acc[r][c]);
        }
    }
    if (k < ke) {
        __mmask16 m = (__mmask16)((1u << (ke - k)) - 1);
        __m512 xv[TILE_R];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
            xv[r] = _mm512_maskz_loadu_ps(m, x + (size_t)r * ldx + k);
#pragma GCC unroll 8
        for (int c = 0; c < C; c++) {
            __m512 wv = load_w_mask(dt, w + (size_t)c * K * es, k, m);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++)
                acc[r][c] = _mm512_fmadd_ps(xv[r], wv, acc[r][c]);
        }
    }
    if (ke < K)
        acc_park(R, C, acc, ks);
    else
        store_tile(R, C, acc, y, ldy, bias);
}

/* bf16 compute (bf16 weights): VDPBF16PS over chunks of 32 k. x has already
 * been rounded to bf16 (xb, row stride ldxb elements, K padded with zeros to
 * a multiple of 32), so every chunk is two plain loads. */
static inline __attribute__((always_inline)) void
tile_bf16(const int R, const int C, const uint16_t *xb, size_t ldxb, const uint16_t *w, size_t K,
          kseg ks, float *y, size_t ldy, const float *bias, pf_spec pf) {
    __m512 acc[TILE_R][8];
    acc_begin(R, C, acc, ks);
    size_t ke = ks.state ? ks.ke : K;
    size_t k = ks.state ? ks.kb : 0;
    for (; k + 32 <= ke; k += 32) {
        if (pf.lines)
            pf.p = prefetch_lines(pf.p, pf.end, pf.lines, pf.nta);
        __m512bh xv[TILE_R];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
            xv[r] = (__m512bh)_mm512_loadu_si512((const void *)(xb + (size_t)r * ldxb + k));
#pragma GCC unroll 8
        for (int c = 0; c < C; c++) {
            __m512bh wv = (__m512bh)_mm512_loadu_si512((const void *)(w + (size_t)c * K + k));
#pragma GCC unroll 4
            for (int r = 0; r < R; r++)
                acc[r][c] = _mm512_dpbf16_ps(acc[r][c], xv[r], wv);
        }
    }
    if (k < ke) {
        __mmask32 mw = (__mmask32)((1ull << (ke - k)) - 1);
        __m512bh xv[TILE_R];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
            xv[r] = (__m512bh)_mm512_loadu_si512((const void *)(xb + (size_t)r * ldxb + k));
#pragma GCC unroll 8
        for (int c = 0; c < C; c++) {
            __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(mw, w + (size_t)c * K + k);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++)
                acc[r][c] = _mm512_dpbf16_ps(acc[r][c], xv[r], wv);
        }
    }
    if (ke < K)
        acc_park(R, C, acc, ks);
    else
        store_tile(R, C, acc, y, ldy, bias);
}

/* x is f32 for kinds 0-2 and bf16 (uint16_t) for kind 3; ldx in elements. */
typedef void (*tile_fn)(const void *x, size_t ldx, const void *w, size_t K, kseg ks, float *y,
                        size_t ldy, const float *bias, pf_spec pf);

#define DEF_TILES(R, C)                                                                            \
    static void t_f32_##R##_##C(const void *x, size_t ldx, const void *w, size_t K, kseg ks,       \
                                float *y, size_t ldy, const float *bias, pf_spec pf) {             \
        tile_f32(R, C, TP_DTYPE_F32, x, ldx, w, K, ks, y, ldy, bias, pf);                          \
    }                                                                                              \
    static void t_b16_##R##_##C(const void *x, size_t ldx, const void *w, size_t K, kseg ks,       \
                                float *y, size_t ldy, const float *bias, pf_spec pf) {             \
        tile_f32(R, C, TP_DTYPE_BF16, x, ldx, w, K, ks, y, ldy, bias, pf);                         \
    }                                                                                              \
    static void t_f16_##R##_##C(const void *x, size_t ldx, const void *w, size_t K, kseg ks,       \
                                float *y, size_t ldy, const float *bias, pf_spec pf) {             \
        tile_f32(R, C, TP_DTYPE_F16, x, ldx, w, K, ks, y, ldy, bias, pf);                          \
    }                                                                                              \
    static void t_dp_##R##_##C(const void *x, size_t ldx, const void *w, size_t K, kseg ks,        \
                               float *y, size_t ldy, const float *bias, pf_spec pf) {              \
        tile_bf16(R, C, x, ldx, w, K, ks, y, ldy, bias, pf);                                       \
    }
#define DEF_ROW(R)                                                                                 \
    DEF_TILES(R, 1) DEF_TILES(R, 2) DEF_TILES(R, 3) DEF_TILES(R, 4) DEF_TILES(R, 5) DEF_TILES(R, 6)
DEF_ROW(1)
DEF_ROW(2)
DEF_ROW(3)
DEF_ROW(4)

#define ROW_FNS(P, R)                                                                              \
    { P##_##R##_1, P##_##R##_2, P##_##R##_3, P##_##R##_4, P##_##R##_5, P##_##R##_6 }
#define ALL_FNS(P)                                                                                 \
    { ROW_FNS(P, 1), ROW_FNS(P, 2), ROW_FNS(P, 3), ROW_FNS(P, 4) }

/* [kind][R-1][C-1]; kind 0 f32 weights, 1 bf16, 2 f16, 3 bf16 dot products */
static const tile_fn tiles[4][TILE_R][TILE_C] = {ALL_FNS(t_f32), ALL_FNS(t_b16), ALL_FNS(t_f16),
                                                 ALL_FNS(t_dp)};

/* bf16 copy of x rows on the stack: at most XB_MAX elements (128 KiB). */
#define XB_MAX 65536

/* Rounds rows [0, rows) of x (K floats each) to bf16 into xb (row stride
 * ldxb >= K rounded up to 32), zero-filling the padding. RNE, as VCVTNE2PS2BF16
 * rounds on the fly: the same bits as the reference's tp_f32_to_bf16. */
static void round_rows_bf16(const float *x, size_t ldx, size_t rows, size_t K, uint16_t *xb,
                            size_t ldxb) {
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * ldx;
        uint16_t *o = xb + r * ldxb;
        for (size_t k = 0; k < ldxb; k += 32) {
            size_t rem = k < K ? K - k : 0;
            __mmask16 mlo = (__mmask16)(rem >= 16 ? 0xffffu : (1u << rem) - 1);
            __mmask16 mhi = (__mmask16)(rem >= 32  ? 0xffffu
                                        : rem > 16 ? (1u << (rem - 16)) - 1
                                                   : 0);
            __m512bh v = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(mhi, xr + k + 16),
                                             _mm512_maskz_loadu_ps(mlo, xr + k));
            _mm512_storeu_si512((void *)(o + k), (__m512i)v);
        }
    }
}

/* Rows [m0, m1) x columns [n0, n1) with x given as `xs` (f32 or bf16 rows). */
static void gemm_block(int kind, const tp_linear *l, const void *xs, size_t ldx, size_t xes,
                       float *y, size_t ldy, size_t m0, size_t m1, size_t n0, size_t n1) {
    size_t K = (size_t)l->n_in;
    size_t es = l->dtype == TP_DTYPE_F32 ? 4 : 2;
    const char *w = l->w;
    const char *xc = xs;
    size_t step = kind == 3 ? 32 : 16; /* k per loop iteration */
    if (m1 - m0 <= TILE_R) {
        /* GEMV and small batches: two weight rows at a time, each a long sequential stream, with
         * a software prefetch running GEMV_PF_BYTES ahead of the pair being
         * read (measured best on this machine among 2/4/8 rows and 4-32 KiB:
         * docs/kernels.md) */
        const char *x = xc + m0 * ldx * xes;
        float *yr = y + m0 * ldy;
        const char *end = w + n1 * K * es;
        size_t r = m1 - m0;
        const kseg one_pass = {0, K, NULL};
        size_t cw = r == 1 ? 2 : 4; /* columns per step: more x reuse when r > 1 */
        size_t n = n0;
        for (; n < n1; n += cw) {
            size_t c = n1 - n < cw ? n1 - n : cw;
            const char *wn = w + n * K * es;
            const char *from = wn + GEMV_PF_BYTES < end ? wn + GEMV_PF_BYTES : end;
            const char *to = from + c * K * es < end ? from + c * K * es : end;
            pf_spec pf = pf_plan(from, to, K / step);
            pf.nta = true;
            tiles[kind][r - 1][c - 1](x, ldx, wn, K, one_pass, yr + n, ldy,
                                      l->bias ? l->bias + n : NULL, pf);
        }
        return;
    }
    /* K blocks: a W panel of TILE_C rows x kc stays within ~24 KiB of L1 */
    size_t n_tiles = (m1 - m0 + TILE_R - 1) / TILE_R;
    size_t kc = (size_t)24576 / (TILE_C * es) / 32 * 32;
    /* a slightly larger panel in one pass (with the next-panel prefetch) beats
     * two passes, except for the dot-product kernel whose x tile is bf16 too
     * (measured: docs/kernels.md) */
    if (K <= (kind == 3 ? kc : kc + kc / 2))
        kc = K;
    TP_ASSERT(n_tiles <= MAX_TILES);
    float state[MAX_TILES * TILE_R * TILE_C * 16] __attribute__((aligned(64))); /* 24 KiB */
    for (size_t n = n0; n < n1; n += TILE_C) {
        size_t c = n1 - n < TILE_C ? n1 - n : TILE_C;
        const char *wn = w + n * K * es;
        const float *bn = l->bias ? l->bias + n : NULL;
        /* the next panel's lines, shared out over this panel's row tiles */
        size_t next_c = n + c < n1 ? (n1 - n - c < TILE_C ? n1 - n - c : TILE_C) : 0;
        size_t next_bytes = next_c * K * es;
        size_t share = (next_bytes / n_tiles + 63) / 64 * 64;
        for (size_t kb = 0; kb < K; kb += kc) {
            size_t ke = K - kb > kc ? kb + kc : K;
            size_t j = 0;
            for (size_t m = m0; m < m1; m += TILE_R, j++) {
                size_t r = m1 - m < TILE_R ? m1 - m : TILE_R;
                kseg ks = {kb, ke, kc < K ? state + j * TILE_R * TILE_C * 16 : NULL};
                pf_spec pf = {NULL, NULL, 0, false};
                if (kc == K) { /* with K blocks the next panel would not fit in L1 */
                    size_t from = j * share < next_bytes ? j * share : next_bytes;
                    size_t to = from + share < next_bytes ? from + share : next_bytes;
                    pf = pf_plan(wn + c * K * es + from, wn + c * K * es + to, (ke - kb) / step);
                }
                tiles[kind][r - 1][c - 1](xc + m * ldx * xes, ldx, wn, K, ks, y + m * ldy + n, ldy,
                                          bn, pf);
            }
        }
    }
}

size_t tp_avx512_bf16_ldxb(size_t K) {
    /* K rounded up to 32, plus one cache line so that the rows of a tile do
     * not all fall on the same L1 sets */
    size_t ldxb = (K + 31) / 32 * 32 + 32;
    return tp_cpu_has_bf16() && ldxb <= XB_MAX ? ldxb : 0;
}

void tp_avx512_round_x_bf16(const float *x, size_t ldx, size_t rows, size_t K, uint16_t *xb,
                            size_t ldxb) {
    round_rows_bf16(x, ldx, rows, K, xb, ldxb);
}

void tp_avx512_gemm(const tp_gemm_args *a, size_t m0, size_t m1, size_t n0, size_t n1) {
    const tp_linear *l = a->l;
    size_t K = (size_t)l->n_in;
    int kind = l->dtype == TP_DTYPE_F32 ? 0 : l->dtype == TP_DTYPE_BF16 ? 1 : 2;
    if (a->compute != TP_COMPUTE_BF16) {
        gemm_block(kind, l, a->x, a->ldx, sizeof(float), a->y, a->ldy, m0, m1, n0, n1);
        return;
    }
    size_t ldxb = tp_avx512_bf16_ldxb(K);
    if (!ldxb) {
        /* no AVX512_BF16, or rows too long for the stack copy: the reference
         * defines the bf16 mode (a fixed choice per shape, so still invariant) */
        tp_kernels_ref.gemm(a, m0, m1, n0, n1);
        return;
    }
    /* groups of up to 16 rows run the whole column range on their bf16 rows */
    size_t group = XB_MAX / ldxb;
    if (group > TILE_R)
        group -= group % TILE_R;
    if (group > 16)
        group = 16;
    if (a->xb) {
        /* rounded once for the whole call by the dispatcher (tp_matmul) */
        TP_ASSERT(a->ldxb == ldxb);
        for (size_t m = m0; m < m1; m += group) {
            size_t rows = m1 - m < group ? m1 - m : group;
            gemm_block(3, l, a->xb + m * ldxb, ldxb, sizeof(uint16_t), a->y + m * a->ldy, a->ldy, 0,
                       rows, n0, n1);
        }
        return;
    }
    /* otherwise round each group of rows here */
    uint16_t xb[XB_MAX] __attribute__((aligned(64)));
    for (size_t m = m0; m < m1; m += group) {
        size_t rows = m1 - m < group ? m1 - m : group;
        round_rows_bf16(a->x + m * a->ldx, a->ldx, rows, K, xb, ldxb);
        gemm_block(3, l, xb, ldxb, sizeof(uint16_t), a->y + m * a->ldy, a->ldy, 0, rows, n0, n1);
    }
}
