/*
 * ops_avx512.c — AVX-512 versions of the row-wise and element-wise kernels and
 * of attention, and the AVX-512 kernel table.
 *
 * Position independence: every element-wise kernel runs the same vector code
 * on a masked tail as on full vectors, and the lane of an element is its
 * index within the row (never derived from the address), so a value gives the
 * same bits wherever it sits in a call. Row reductions (norms, softmax, dot
 * products) use one accumulator per lane and hsum16's fixed tree.
 *
 * Transcendentals: exp by range reduction to [-ln2/2, ln2/2] and a degree-7
 * Taylor polynomial (error ~1e-8 relative before rounding) scaled with
 * VSCALEFPS; tanh by its odd Taylor series below |x| = 0.3 and
 * 1 - 2/(exp(2|x|)+1) above; erf by Abramowitz & Stegun 7.1.26 (absolute
 * error <= 1.5e-7), which keeps GELU within a few ulp of torch's erff-based
 * value. Tolerances against the reference are in tests/tensor/test_ops.c.
 */
#include "tensor/kernels.h"

#include "tensor/avx512_util.h"

#include <immintrin.h>
#include <math.h>

static inline __mmask16 tail_mask(size_t n) {
    return (__mmask16)(n >= 16 ? 0xffffu : (1u << n) - 1);
}

/* ---- vector transcendentals ---- */

static inline __m512 exp512(__m512 x) {
    /* clamp with x as the second operand: MAXPS/MINPS return it when it is a
     * NaN, so NaN propagates instead of turning into a number */
    x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x);
    x = _mm512_min_ps(_mm512_set1_ps(89.0f), x);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    /* ln2 split so that n * LN2_HI is exact for |n| < 2^9 */
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860682030941723212e-6f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

static inline __m512 tanh512(__m512 x) {
    __m512 ax = _mm512_abs_ps(x);
    /* small |x|: x + x^3 (-1/3 + x^2 (2/15 + ...)) */
    __m512 z = _mm512_mul_ps(x, x);
    __m512 p = _mm512_set1_ps(21844.0f / 6081075.0f);
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-1382.0f / 155925.0f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(62.0f / 2835.0f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-17.0f / 315.0f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(2.0f / 15.0f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-1.0f / 3.0f));
    __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(p, z), x, x);
    /* large |x|: 1 - 2 / (exp(2|x|) + 1), sign of x */
    __m512 e = exp512(_mm512_add_ps(ax, ax));
    __m512 big =
        _mm512_sub_ps(_mm512_set1_ps(1.0f),
                      _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, _mm512_set1_ps(1.0f))));
    big = _mm512_castsi512_ps(
        _mm512_or_si512(_mm512_castps_si512(big),
                        _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(INT32_MIN))));
    __mmask16 is_small = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.3f), _CMP_LT_OQ);
    return _mm512_mask_blend_ps(is_small, big, small);
}

static inline __m512 erf512(__m512 x) {
    __m512 ax = _mm512_abs_ps(x);
    __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f),
                             _mm512_fmadd_ps(ax, _mm512_set1_ps(0.3275911f), _mm512_set1_ps(1.0f)));
    __m512 p = _mm512_set1_ps(1.061405429f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
    p = _mm512_mul_ps(p, t);
    __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(ax, ax)));
    __m512 y = _mm512_fnmadd_ps(p, e, _mm512_set1_ps(1.0f));
    return _mm512_castsi512_ps(
        _mm512_or_si512(_mm512_castps_si512(y),
                        _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(INT32_MIN))));
}

static inline __m512 gelu_erf512(__m512 x) {
    __m512 e = erf512(_mm512_mul_ps(x, _mm512_set1_ps((float)M_SQRT1_2)));
    return _mm512_mul_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.5f)),
                         _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

static inline __m512 gelu_tanh512(__m512 x) {
    const __m512 beta = _mm512_set1_ps((float)(M_SQRT2 * M_2_SQRTPI * 0.5));
    __m512 cube = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
    __m512 inner = _mm512_mul_ps(beta, _mm512_fmadd_ps(_mm512_set1_ps(0.044715f), cube, x));
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x),
                         _mm512_add_ps(_mm512_set1_ps(1.0f), tanh512(inner)));
}

static inline __m512 silu512(__m512 x) {
    __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), x));
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

/* ---- norms ---- */

static void v_rmsnorm(const float *x, const float *w, float *out, size_t rows, size_t dim,
                      float eps, bool one_plus_w) {
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float *o = out + r * dim;
        __m512 acc = _mm512_setzero_ps();
        for (size_t i = 0; i < dim; i += 16) {
            __m512 v = _mm512_maskz_loadu_ps(tail_mask(dim - i), xr + i);
            acc = _mm512_fmadd_ps(v, v, acc);
        }
        float inv = 1.0f / sqrtf(hsum16(acc) / (float)dim + eps);
        __m512 vinv = _mm512_set1_ps(inv);
        for (size_t i = 0; i < dim; i += 16) {
            __mmask16 m = tail_mask(dim - i);
            __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, xr + i), vinv);
            if (w) {
                __m512 g = _mm512_maskz_loadu_ps(m, w + i);
                if (one_plus_w)
                    g = _mm512_add_ps(_mm512_set1_ps(1.0f), g);
                v = _mm512_mul_ps(v, g);
            }
            _mm512_mask_storeu_ps(o + i, m, v);
        }
    }
}

static void v_layernorm(const float *x, const float *w, const float *b, float *out, size_t rows,
                        size_t dim, float eps) {
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float *o = out + r * dim;
        __m512 acc = _mm512_setzero_ps();
        for (size_t i = 0; i < dim; i += 16)
            acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(tail_mask(dim - i), xr + i));
        float mean = hsum16(acc) / (float)dim;
        __m512 vm = _mm512_set1_ps(mean);
        acc = _mm512_setzero_ps();
        for (size_t i = 0; i < dim; i += 16) {
            __mmask16 m = tail_mask(dim - i);
            __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, xr + i), vm);
            acc = _mm512_fmadd_ps(d, d, acc);
        }
        float inv = 1.0f / sqrtf(hsum16(acc) / (float)dim + eps);
        __m512 vinv = _mm512_set1_ps(inv);
        for (size_t i = 0; i < dim; i += 16) {
            __mmask16 m = tail_mask(dim - i);
            __m512 t = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, xr + i), vm), vinv);
            if (w)
                t = _mm512_mul_ps(t, _mm512_maskz_loadu_ps(m, w + i));
            if (b)
                t = _mm512_add_ps(t, _mm512_maskz_loadu_ps(m, b + i));
            _mm512_mask_storeu_ps(o + i, m, t);
        }
    }
}

/* ---- rope: cos/sin per row from libm (as the reference), rotation in vectors ---- */

#define ROPE_MAX_HALF 512

static void v_rope(float *x, size_t ld, size_t rows, int n_heads, int head_dim, const int32_t *pos,
                   const float *inv_freq) {
    int half = head_dim / 2;
    if (half > ROPE_MAX_HALF) {
        tp_kernels_ref.rope(x, ld, rows, n_heads, head_dim, pos, inv_freq);
        return;
    }
    float cs[ROPE_MAX_HALF], sn[ROPE_MAX_HALF];
    for (size_t r = 0; r < rows; r++) {
        float p = (float)pos[r];
        for (int k = 0; k < half; k++) {
            float ang = p * inv_freq[k];
            cs[k] = cosf(ang);
            sn[k] = sinf(ang);
        }
        for (int h = 0; h < n_heads; h++) {
            float *v = x + r * ld + (size_t)h * (size_t)head_dim;
            for (int k = 0; k < half; k += 16) {
                __mmask16 m = tail_mask((size_t)(half - k));
                __m512 c = _mm512_maskz_loadu_ps(m, cs + k), s = _mm512_maskz_loadu_ps(m, sn + k);
                __m512 x1 = _mm512_maskz_loadu_ps(m, v + k);
                __m512 x2 = _mm512_maskz_loadu_ps(m, v + k + half);
                __m512 o1 = _mm512_sub_ps(_mm512_mul_ps(x1, c), _mm512_mul_ps(x2, s));
                __m512 o2 = _mm512_add_ps(_mm512_mul_ps(x2, c), _mm512_mul_ps(x1, s));
                _mm512_mask_storeu_ps(v + k, m, o1);
                _mm512_mask_storeu_ps(v + k + half, m, o2);
            }
        }
    }
}

/* ---- softmax ---- */

static void v_softmax(float *x, size_t n) {
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (size_t i = 0; i < n; i += 16)
        mx = _mm512_max_ps(
            mx, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tail_mask(n - i), x + i));
    __m512 vmax = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
    __m512 acc = _mm512_setzero_ps();
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 e =
            _mm512_maskz_mov_ps(m, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vmax)));
        acc = _mm512_add_ps(acc, e);
        _mm512_mask_storeu_ps(x + i, m, e);
    }
    __m512 vs = _mm512_set1_ps(hsum16(acc));
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(x + i, m, _mm512_div_ps(_mm512_maskz_loadu_ps(m, x + i), vs));
    }
}

/* ---- activations ---- */

#define ELEMENTWISE(name, f)                                                                       \
    static void name(const float *x, float *out, size_t n) {                                       \
        for (size_t i = 0; i < n; i += 16) {                                                       \
            __mmask16 m = tail_mask(n - i);                                                        \
            _mm512_mask_storeu_ps(out + i, m, f(_mm512_maskz_loadu_ps(m, x + i)));                 \
        }                                                                                          \
    }
ELEMENTWISE(v_gelu_erf, gelu_erf512)
ELEMENTWISE(v_gelu_tanh, gelu_tanh512)
ELEMENTWISE(v_silu, silu512)

static void v_glu(const float *x, float *out, size_t rows, size_t d, tp_act act) {
    for (size_t r = 0; r < rows; r++) {
        const float *a = x + r * 2 * d, *g = a + d;
        float *o = out + r * d;
        for (size_t j = 0; j < d; j += 16) {
            __mmask16 m = tail_mask(d - j);
            __m512 v = _mm512_maskz_loadu_ps(m, a + j);
            v = act == TP_ACT_SILU        ? silu512(v)
                : act == TP_ACT_GELU_TANH ? gelu_tanh512(v)
                                          : gelu_erf512(v);
            _mm512_mask_storeu_ps(o + j, m, _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, g + j)));
        }
    }
}

/* ---- embedding, add ---- */

static void v_embed(const void *table, tp_dtype dtype, const int32_t *ids, size_t n, size_t dim,
                    float scale, float *out) {
    __m512 vs = _mm512_set1_ps(scale);
    for (size_t r = 0; r < n; r++) {
        size_t base = (size_t)ids[r] * dim;
        float *o = out + r * dim;
        for (size_t i = 0; i < dim; i += 16) {
            __mmask16 m = tail_mask(dim - i);
            __m512 v;
            if (dtype == TP_DTYPE_F32) {
                v = _mm512_maskz_loadu_ps(m, (const float *)table + base + i);
            } else {
                __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)table + base + i);
                v = dtype == TP_DTYPE_F16
                        ? _mm512_cvtph_ps(h)
                        : _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
            }
            if (scale != 1.0f)
                v = _mm512_mul_ps(v, vs);
            _mm512_mask_storeu_ps(o + i, m, v);
        }
    }
}

static void v_add(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(
            y + i, m,
            _mm512_add_ps(_mm512_maskz_loadu_ps(m, y + i), _mm512_maskz_loadu_ps(m, x + i)));
    }
}

/* ---- attention: online softmax over chunks of 16 keys ----
 * Keys are taken in chunks aligned to absolute positions [16c, 16c + 16). Per
 * (query row, head) and chunk that holds visible keys: 16 scores (dot
 * products with lanes over head_dim, reduced by hsum16's tree), the new
 * running max, a rescale of the running sum and output by exp(m_old - m_new),
 * then output += p_j v_j over the visible keys in key order. All of this
 * depends only on the query, its position and the window — never on the
 * other rows, sequences or threads.
 *
 * Up to AQ queries that share a kv head (rows of a block and the heads of a
 * GQA group) walk the chunks together, so each chunk of K and V (16 rows) is
 * fetched from L2 once and then read from L1 by every query: without this,
 * attention is bound by re-streaming the KV cache once per query row. */

#define ATTN_MAX_VEC 16 /* head_dim <= 256; larger uses the reference */
#define AQ 8

typedef struct attn_q {
    const float *q;
    float *o;
    int lo, hi;
} attn_q;

/* at[v] = at[v] * alpha + sum_{jj = a0..a1} pj[jj] vr[jj][v], keys in order;
 * NB vectors of the row at a time so that NB independent FMA chains hide
 * the FMA latency (each element's chain is unchanged). */
static inline __attribute__((always_inline)) void
accum_block(const int NB, float *at, int v0, int nv, __mmask16 last, __m512 alpha, const float *pj,
            const float *const *vr, int a0, int a1) {
    __m512 A[8];
#pragma GCC unroll 8
    for (int u = 0; u < NB; u++)
        A[u] = _mm512_mul_ps(_mm512_load_ps(at + (v0 + u) * 16), alpha);
    for (int jj = a0; jj <= a1; jj++) {
        __m512 w = _mm512_set1_ps(pj[jj]);
#pragma GCC unroll 8
        for (int u = 0; u < NB; u++)
            A[u] = _mm512_fmadd_ps(
                w, _mm512_maskz_loadu_ps(v0 + u == nv - 1 ? last : 0xffff, vr[jj] + (v0 + u) * 16),
                A[u]);
    }
#pragma GCC unroll 8
    for (int u = 0; u < NB; u++)
        _mm512_store_ps(at + (v0 + u) * 16, A[u]);
}

static void attn_accum_v(float *at, int nv, __mmask16 last, __m512 alpha, const float *pj,
                         const float *const *vr, int a0, int a1) {
    int v0 = 0;
    for (; v0 + 8 <= nv; v0 += 8)
        accum_block(8, at, v0, nv, last, alpha, pj, vr, a0, a1);
    switch (nv - v0) {
    case 7:
        accum_block(7, at, v0, nv, last, alpha, pj, vr, a0, a1);
        break;
    case 6:
        accum_block(6, at, v0, nv, last, alpha, pj, vr, a0, a1);
        break;
    case 5:
        accum_block(5, at, v0, nv, last, alpha, pj, vr, a0, a1);
        break;
    case 4:
        accum_block(4, at, v0, nv, last, alpha, pj, vr, a0, a1);
        break;
    case 3:
        accum_block(3, at, v0, nv, last, alpha, pj, vr, a0, a1);
        break;
    case 2:
        accum_block(2, at, v0, nv, last, alpha, pj, vr, a0, a1);
        break;
    case 1:
        accum_block(1, at, v0, nv, last, alpha, pj, vr, a0, a1);
        break;
    default:
        break;
    }
}

static void attn_group(const tp_attn_seq *s, const tp_attn_params *p, size_t koff, const attn_q *qs,
                       int nq) {
    static const float zeros[ATTN_MAX_VEC * 16];
    int d = p->head_dim;
    int nv = (d + 15) / 16;
    __mmask16 last = tail_mask((size_t)(d - (nv - 1) * 16));
    float acc[AQ][ATTN_MAX_VEC * 16] __attribute__((aligned(64)));
    float m[AQ], l[AQ];
    int jlo = INT32_MAX, jhi = -1;
    for (int t = 0; t < nq; t++) {
        m[t] = -INFINITY;
        l[t] = 0.0f;
        for (int v = 0; v < nv; v++)
            _mm512_store_ps(acc[t] + v * 16, _mm512_setzero_ps());
        if (qs[t].hi >= qs[t].lo) {
            jlo = qs[t].lo < jlo ? qs[t].lo : jlo;
            jhi = qs[t].hi > jhi ? qs[t].hi : jhi;
        }
    }
    const __m512 vscale = _mm512_set1_ps(p->scale);
    const float *kr[16], *vr[16];
    for (int c0 = jhi >= 0 ? jlo - jlo % 16 : 0; c0 <= jhi; c0 += 16) {
        /* row pointers of the chunk's keys that some query sees (one division) */
        int b = c0 / s->block_size, off = c0 % s->block_size;
        for (int jj = 0; jj < 16; jj++) {
            int j = c0 + jj;
            bool vis = false;
            for (int t = 0; t < nq && !vis; t++)
                vis = j >= qs[t].lo && j <= qs[t].hi;
            if (vis) {
                size_t at = (size_t)off * s->kv_ld + koff;
                kr[jj] = s->k_blocks[b] + at;
                vr[jj] = s->v_blocks[b] + at;
            } else {
                kr[jj] = vr[jj] = zeros;
            }
            if (++off == s->block_size) {
                off = 0;
                b++;
            }
        }
        /* three passes over the group's queries — scores, softmax update,
         * values — so that the independent work of different queries sits
         * side by side for the out-of-order core instead of one query's long
         * dependency chain at a time (each query's arithmetic is unchanged) */
        int a0s[AQ], a1s[AQ];
        __m512 svs[AQ];
        for (int t = 0; t < nq; t++) {
            int a0 = qs[t].lo > c0 ? qs[t].lo - c0 : 0;
            int a1 = qs[t].hi < c0 + 15 ? qs[t].hi - c0 : 15;
            a0s[t] = a0;
            a1s[t] = a1;
            if (a0 > a1)
                continue; /* nothing visible in this chunk */
            __m512 qv[ATTN_MAX_VEC];
            for (int v = 0; v < nv; v++)
                qv[v] = _mm512_maskz_loadu_ps(v == nv - 1 ? last : 0xffff, qs[t].q + v * 16);
            /* scores, four keys at a time */
            __m512 sv = _mm512_setzero_ps();
            for (int g = a0 / 4; g <= a1 / 4; g++) {
                __m512 d0 = _mm512_setzero_ps(), d1 = d0, d2 = d0, d3 = d0;
                const float *k0 = kr[4 * g], *k1 = kr[4 * g + 1], *k2 = kr[4 * g + 2],
                            *k3 = kr[4 * g + 3];
                for (int v = 0; v < nv; v++) {
                    __mmask16 vm = v == nv - 1 ? last : 0xffff;
                    d0 = _mm512_fmadd_ps(qv[v], _mm512_maskz_loadu_ps(vm, k0 + v * 16), d0);
                    d1 = _mm512_fmadd_ps(qv[v], _mm512_maskz_loadu_ps(vm, k1 + v * 16), d1);
                    d2 = _mm512_fmadd_ps(qv[v], _mm512_maskz_loadu_ps(vm, k2 + v * 16), d2);
                    d3 = _mm512_fmadd_ps(qv[v], _mm512_maskz_loadu_ps(vm, k3 + v * 16), d3);
                }
                __m128 part = hsum16x4(d0, d1, d2, d3);
                switch (g) {
                case 0:
                    sv = _mm512_insertf32x4(sv, part, 0);
                    break;
                case 1:
                    sv = _mm512_insertf32x4(sv, part, 1);
                    break;
                case 2:
                    sv = _mm512_insertf32x4(sv, part, 2);
                    break;
                default:
                    sv = _mm512_insertf32x4(sv, part, 3);
                    break;
                }
            }
            svs[t] = sv;
        }
        float pjs[AQ][16] __attribute__((aligned(64)));
        __m512 alphas[AQ];
        for (int t = 0; t < nq; t++) {
            int a0 = a0s[t], a1 = a1s[t];
            if (a0 > a1)
                continue;
            __mmask16 cm = (__mmask16)(((1u << (a1 + 1)) - 1) & ~((1u << a0) - 1));
            __m512 sv = _mm512_mul_ps(svs[t], vscale);
            if (p->softcap > 0.0f) {
                __m512 cap = _mm512_set1_ps(p->softcap);
                sv = _mm512_mul_ps(cap, tanh512(_mm512_div_ps(sv, cap)));
            }
            sv = _mm512_mask_blend_ps(cm, _mm512_set1_ps(-INFINITY), sv);
            float cmax = _mm512_reduce_max_ps(sv);
            float m_new = cmax > m[t] ? cmax : m[t];
            __m512 pv = _mm512_maskz_mov_ps(cm, exp512(_mm512_sub_ps(sv, _mm512_set1_ps(m_new))));
            __m512 alpha = exp512(_mm512_set1_ps(m[t] - m_new));
            l[t] = l[t] * _mm512_cvtss_f32(alpha) + hsum16(pv);
            m[t] = m_new;
            alphas[t] = alpha;
            _mm512_store_ps(pjs[t], pv);
        }
        for (int t = 0; t < nq; t++)
            if (a0s[t] <= a1s[t])
                attn_accum_v(acc[t], nv, last, alphas[t], pjs[t], vr, a0s[t], a1s[t]);
    }
    for (int t = 0; t < nq; t++) {
        __m512 vl = _mm512_set1_ps(l[t]);
        bool none = qs[t].hi < qs[t].lo;
        for (int v = 0; v < nv; v++) {
            __m512 r =
                none ? _mm512_setzero_ps() : _mm512_div_ps(_mm512_load_ps(acc[t] + v * 16), vl);
            _mm512_mask_storeu_ps(qs[t].o + v * 16, v == nv - 1 ? last : 0xffff, r);
        }
    }
}

static void v_attention(const tp_attn_job *job) {
    const tp_attn_seq *s = job->s;
    const tp_attn_params *p = job->p;
    int d = p->head_dim;
    if (d > ATTN_MAX_VEC * 16) {
        tp_kernels_ref.attention(job);
        return;
    }
    int group = p->n_heads / p->n_kv_heads;
    /* queries (row, head) in row-major order, AQ at a time per kv head */
    attn_q qs[AQ];
    int nq = 0;
    int kvh = -1;
    for (int i = job->r0; i < job->r1; i++) {
        int lo, hi;
        tp_attn_range(p, s->kv_len, s->q_pos0 + i, &lo, &hi);
        for (int h = job->h0; h < job->h1; h++) {
            if (nq == AQ || (nq > 0 && h / group != kvh)) {
                attn_group(s, p, (size_t)kvh * (size_t)d, qs, nq);
                nq = 0;
            }
            kvh = h / group;
            qs[nq].q = s->q + (size_t)i * s->q_ld + (size_t)h * (size_t)d;
            qs[nq].o = s->out + (size_t)i * s->out_ld + (size_t)h * (size_t)d;
            qs[nq].lo = lo;
            qs[nq].hi = hi;
            nq++;
        }
    }
    if (nq > 0)
        attn_group(s, p, (size_t)kvh * (size_t)d, qs, nq);
}

const tp_kernel_table tp_kernels_avx512 = {
    .name = "avx512",
    .gemm = tp_avx512_gemm,
    .rmsnorm = v_rmsnorm,
    .layernorm = v_layernorm,
    .rope = v_rope,
    .softmax = v_softmax,
    .gelu_erf = v_gelu_erf,
    .gelu_tanh = v_gelu_tanh,
    .silu = v_silu,
    .glu = v_glu,
    .embed = v_embed,
    .add = v_add,
    .attention = v_attention,
};
