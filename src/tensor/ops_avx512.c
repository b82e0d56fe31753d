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
 * attention is bound by re-streaming the KV cache once per query row.
 *
 * head_dim 64, 128 and 256 (4, 8, 16 vectors: the models' sizes) run
 * attn_group_nv, the same arithmetic register-tiled with the vector count a
 * compile-time constant (1.7-1.8x attn_group, same bits: docs/kernels.md);
 * other sizes run attn_group. */

#define ATTN_MAX_VEC 16 /* head_dim <= 256; larger uses the reference */
#define AQ 16

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

/* the row a key pointer gets when no query of a group sees the key */
static const float attn_zeros[ATTN_MAX_VEC * 16];

static void attn_group(const tp_attn_seq *s, const tp_attn_params *p, size_t koff, const attn_q *qs,
                       int nq) {
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
                kr[jj] = vr[jj] = attn_zeros;
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

/* ---- attention with head_dim a compile-time number of vectors ----
 * The same arithmetic per query as attn_group (scores: one FMA chain per key
 * over the head_dim vectors from zero, hsum16's tree; the same softmax update;
 * acc = acc * alpha, then acc += p_j v_j over the query's visible keys in key
 * order), register-tiled: QK takes TS queries x 4 keys at a time with the
 * queries held in registers (each K vector load feeds TS FMAs), PV takes TQ
 * queries at a time with their accumulators in registers (each V vector load
 * feeds TQ FMAs, TQ x NV independent FMA chains). A key that a query of the
 * tile does not see is skipped for that query by a zero FMA mask (its
 * accumulator is left untouched), so grouping never changes a query's bits. */

/* Dot products of TS queries (qv, in registers) with the 4 keys k[0..3]:
 * one FMA chain per (query, key) over the head_dim vectors, from zero. */
static inline __attribute__((always_inline)) void attn_qk_4(const int NV, const int TS,
                                                            __m512 (*qv)[16], const float *const *k,
                                                            __mmask16 last, __m512 (*d)[4]) {
#pragma GCC unroll 4
    for (int t = 0; t < TS; t++)
        d[t][0] = d[t][1] = d[t][2] = d[t][3] = _mm512_setzero_ps();
#pragma GCC unroll 16
    for (int v = 0; v < NV; v++) {
        __mmask16 vm = v == NV - 1 ? last : 0xffff;
        __m512 x0 = _mm512_maskz_loadu_ps(vm, k[0] + v * 16);
        __m512 x1 = _mm512_maskz_loadu_ps(vm, k[1] + v * 16);
        __m512 x2 = _mm512_maskz_loadu_ps(vm, k[2] + v * 16);
        __m512 x3 = _mm512_maskz_loadu_ps(vm, k[3] + v * 16);
#pragma GCC unroll 4
        for (int t = 0; t < TS; t++) {
            d[t][0] = _mm512_fmadd_ps(qv[t][v], x0, d[t][0]);
            d[t][1] = _mm512_fmadd_ps(qv[t][v], x1, d[t][1]);
            d[t][2] = _mm512_fmadd_ps(qv[t][v], x2, d[t][2]);
            d[t][3] = _mm512_fmadd_ps(qv[t][v], x3, d[t][3]);
        }
    }
}

/* Scores of TS queries against the chunk's 16 keys (groups of 4 keys whose
 * bits in gmask are clear are skipped: no lane of theirs is read). QUADS:
 * reduce a query's 16 accumulators with hsum16_quad / hsum16_quads (fewer
 * shuffles; faster when many queries share a chunk); otherwise hsum16x4 per
 * group of 4 keys in a rolled loop (faster for the 1-2 queries of a decode
 * step). Both give hsum16's bits. */
static inline __attribute__((always_inline)) void
attn_qk_tile(const int NV, const int TS, const bool QUADS, const attn_q *qs, const float *const *kr,
             unsigned gmask, __mmask16 last, __m512 *svs) {
    __m512 qv[4][16];
#pragma GCC unroll 4
    for (int t = 0; t < TS; t++)
#pragma GCC unroll 16
        for (int v = 0; v < NV; v++)
            qv[t][v] = _mm512_maskz_loadu_ps(v == NV - 1 ? last : 0xffff, qs[t].q + v * 16);
    __m512 d[4][4];
    if (QUADS) {
        __m512 pq[4][4];
#pragma GCC unroll 4
        for (int g = 0; g < 4; g++) {
            if ((gmask >> (4 * g)) & 0xfu) {
                attn_qk_4(NV, TS, qv, kr + 4 * g, last, d);
#pragma GCC unroll 4
                for (int t = 0; t < TS; t++)
                    pq[t][g] = hsum16_quad(d[t][0], d[t][1], d[t][2], d[t][3]);
            } else {
#pragma GCC unroll 4
                for (int t = 0; t < TS; t++)
                    pq[t][g] = _mm512_setzero_ps();
            }
        }
#pragma GCC unroll 4
        for (int t = 0; t < TS; t++)
            svs[t] = hsum16_quads(pq[t][0], pq[t][1], pq[t][2], pq[t][3]);
    } else {
        __m512 sv[4];
#pragma GCC unroll 4
        for (int t = 0; t < TS; t++)
            sv[t] = _mm512_setzero_ps();
#pragma GCC unroll 1
        for (int g = 0; g < 4; g++) {
            if (!((gmask >> (4 * g)) & 0xfu))
                continue;
            attn_qk_4(NV, TS, qv, kr + 4 * g, last, d);
#pragma GCC unroll 4
            for (int t = 0; t < TS; t++) {
                __m128 part = hsum16x4(d[t][0], d[t][1], d[t][2], d[t][3]);
                sv[t] = _mm512_mask_broadcast_f32x4(sv[t], (__mmask16)(0xfu << (4 * g)), part);
            }
        }
#pragma GCC unroll 4
        for (int t = 0; t < TS; t++)
            svs[t] = sv[t];
    }
}

static inline __attribute__((always_inline)) void
attn_pv_tile(const int NV, const int TQ, float (*acc)[ATTN_MAX_VEC * 16], const unsigned *cms,
             const __m512 *alphas, float (*pjs)[16], const float *const *vr, __mmask16 last) {
    unsigned un = 0;
#pragma GCC unroll 8
    for (int t = 0; t < TQ; t++)
        un |= cms[t];
    if (!un)
        return;
    int j0 = __builtin_ctz(un), j1 = 31 - __builtin_clz(un);
    __m512 A[4][16];
#pragma GCC unroll 8
    for (int t = 0; t < TQ; t++) {
        __mmask16 kv = cms[t] ? 0xffff : 0;
#pragma GCC unroll 16
        for (int u = 0; u < NV; u++) {
            __m512 a = _mm512_load_ps(acc[t] + u * 16);
            A[t][u] = _mm512_mask_mul_ps(a, kv, a, alphas[t]);
        }
    }
    bool same = true;
#pragma GCC unroll 8
    for (int t = 0; t < TQ; t++)
        same = same && cms[t] == un;
    if (same) {
        /* every query of the tile sees keys j0..j1: no masks */
        for (int jj = j0; jj <= j1; jj++) {
            const float *vrow = vr[jj];
            __m512 w[4];
#pragma GCC unroll 8
            for (int t = 0; t < TQ; t++)
                w[t] = _mm512_set1_ps(pjs[t][jj]);
#pragma GCC unroll 16
            for (int u = 0; u < NV; u++) {
                __m512 x = _mm512_maskz_loadu_ps(u == NV - 1 ? last : 0xffff, vrow + u * 16);
#pragma GCC unroll 8
                for (int t = 0; t < TQ; t++)
                    A[t][u] = _mm512_fmadd_ps(w[t], x, A[t][u]);
            }
        }
    } else {
        for (int jj = j0; jj <= j1; jj++) {
            __m512 w[4];
            __mmask16 km[4];
#pragma GCC unroll 8
            for (int t = 0; t < TQ; t++) {
                w[t] = _mm512_set1_ps(pjs[t][jj]);
                km[t] = (__mmask16)(0u - ((cms[t] >> jj) & 1u));
            }
            const float *vrow = vr[jj];
#pragma GCC unroll 16
            for (int u = 0; u < NV; u++) {
                __m512 x = _mm512_maskz_loadu_ps(u == NV - 1 ? last : 0xffff, vrow + u * 16);
#pragma GCC unroll 8
                for (int t = 0; t < TQ; t++)
                    A[t][u] = _mm512_mask3_fmadd_ps(w[t], x, A[t][u], km[t]);
            }
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < TQ; t++)
#pragma GCC unroll 16
        for (int u = 0; u < NV; u++)
            _mm512_store_ps(acc[t] + u * 16, A[t][u]);
}

static inline __attribute__((always_inline)) void attn_group_nv(const int NV, const tp_attn_seq *s,
                                                                const tp_attn_params *p,
                                                                size_t koff, const attn_q *qs,
                                                                int nq) {
    /* queries per QK tile (held in registers) and per PV tile (their
     * accumulators in registers): at most 32 vector registers */
    const int TS = NV <= 8 ? 2 : 1;
    const int TQ = NV <= 8 ? 4 : 1;
    int d = p->head_dim;
    __mmask16 last = tail_mask((size_t)(d - (NV - 1) * 16));
    float acc[AQ][ATTN_MAX_VEC * 16] __attribute__((aligned(64)));
    float m[AQ], l[AQ];
    int jlo = INT32_MAX, jhi = -1;
    for (int t = 0; t < nq; t++) {
        m[t] = -INFINITY;
        l[t] = 0.0f;
        for (int v = 0; v < NV; v++)
            _mm512_store_ps(acc[t] + v * 16, _mm512_setzero_ps());
        if (qs[t].hi >= qs[t].lo) {
            jlo = qs[t].lo < jlo ? qs[t].lo : jlo;
            jhi = qs[t].hi > jhi ? qs[t].hi : jhi;
        }
    }
    const __m512 vscale = _mm512_set1_ps(p->scale);
    const float *kr[16], *vr[16];
    for (int c0 = jhi >= 0 ? jlo - jlo % 16 : 0; c0 <= jhi; c0 += 16) {
        /* each query's visible keys in this chunk as a bit mask */
        unsigned cms[AQ], any = 0;
        for (int t = 0; t < nq; t++) {
            int a0 = qs[t].lo > c0 ? qs[t].lo - c0 : 0;
            int a1 = qs[t].hi < c0 + 15 ? qs[t].hi - c0 : 15;
            cms[t] = a0 <= a1 ? ((2u << a1) - 1) & ~((1u << a0) - 1) : 0;
            any |= cms[t];
        }
        int b = c0 / s->block_size, off = c0 % s->block_size;
        for (int jj = 0; jj < 16; jj++) {
            if ((any >> jj) & 1u) {
                size_t at = (size_t)off * s->kv_ld + koff;
                kr[jj] = s->k_blocks[b] + at;
                vr[jj] = s->v_blocks[b] + at;
            } else {
                kr[jj] = vr[jj] = attn_zeros;
            }
            if (++off == s->block_size) {
                off = 0;
                b++;
            }
        }
        __m512 svs[AQ];
        int t = 0;
        for (; t + TS <= nq; t += TS) {
            unsigned gm = 0;
            for (int u = 0; u < TS; u++)
                gm |= cms[t + u];
            if (gm && nq > 2)
                attn_qk_tile(NV, TS, true, qs + t, kr, gm, last, svs + t);
            else if (gm)
                attn_qk_tile(NV, TS, false, qs + t, kr, gm, last, svs + t);
        }
        for (; t < nq; t++)
            if (cms[t])
                attn_qk_tile(NV, 1, false, qs + t, kr, cms[t], last, svs + t);
        float pjs[AQ][16] __attribute__((aligned(64)));
        __m512 alphas[AQ];
        for (t = 0; t < nq; t++) {
            alphas[t] = _mm512_set1_ps(1.0f);
            if (!cms[t])
                continue;
            __mmask16 cm = (__mmask16)cms[t];
            __m512 sv = _mm512_mul_ps(svs[t], vscale);
            if (p->softcap > 0.0f) {
                __m512 cap = _mm512_set1_ps(p->softcap);
                sv = _mm512_mul_ps(cap, tanh512(_mm512_div_ps(sv, cap)));
            }
            sv = _mm512_mask_blend_ps(cm, _mm512_set1_ps(-INFINITY), sv);
            float cmax = _mm512_reduce_max_ps(sv);
            float m_new = cmax > m[t] ? cmax : m[t];
            __m512 pv = _mm512_maskz_mov_ps(cm, exp512(_mm512_sub_ps(sv, _mm512_set1_ps(m_new))));
            /* the max did not move: exp512(0) is exactly 1 (skip it; -inf - -inf
             * is NaN and keeps the general path) */
            __m512 alpha = m_new == m[t] && m_new != -INFINITY
                               ? _mm512_set1_ps(1.0f)
                               : exp512(_mm512_set1_ps(m[t] - m_new));
            l[t] = l[t] * _mm512_cvtss_f32(alpha) + hsum16(pv);
            m[t] = m_new;
            alphas[t] = alpha;
            _mm512_store_ps(pjs[t], pv);
        }
        t = 0;
        for (; t + TQ <= nq; t += TQ)
            attn_pv_tile(NV, TQ, acc + t, cms + t, alphas + t, pjs + t, vr, last);
        if (TQ > 2)
            for (; t + 2 <= nq; t += 2)
                attn_pv_tile(NV, 2, acc + t, cms + t, alphas + t, pjs + t, vr, last);
        for (; t < nq; t++)
            attn_pv_tile(NV, 1, acc + t, cms + t, alphas + t, pjs + t, vr, last);
    }
    for (int t = 0; t < nq; t++) {
        __m512 vl = _mm512_set1_ps(l[t]);
        bool none = qs[t].hi < qs[t].lo;
        for (int v = 0; v < NV; v++) {
            __m512 r =
                none ? _mm512_setzero_ps() : _mm512_div_ps(_mm512_load_ps(acc[t] + v * 16), vl);
            _mm512_mask_storeu_ps(qs[t].o + v * 16, v == NV - 1 ? last : 0xffff, r);
        }
    }
}

static void attn_group_4(const tp_attn_seq *s, const tp_attn_params *p, size_t koff,
                         const attn_q *qs, int nq) {
    attn_group_nv(4, s, p, koff, qs, nq);
}
static void attn_group_8(const tp_attn_seq *s, const tp_attn_params *p, size_t koff,
                         const attn_q *qs, int nq) {
    attn_group_nv(8, s, p, koff, qs, nq);
}
static void attn_group_16(const tp_attn_seq *s, const tp_attn_params *p, size_t koff,
                          const attn_q *qs, int nq) {
    attn_group_nv(16, s, p, koff, qs, nq);
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
    void (*run)(const tp_attn_seq *, const tp_attn_params *, size_t, const attn_q *, int) =
        attn_group;
    int nv = (d + 15) / 16;
    if (nv == 4)
        run = attn_group_4;
    else if (nv == 8)
        run = attn_group_8;
    else if (nv == 16)
        run = attn_group_16;
    /* queries (row, head) in row-major order, AQ at a time per kv head */
    attn_q qs[AQ];
    int nq = 0;
    int kvh = -1;
    for (int i = job->r0; i < job->r1; i++) {
        int lo, hi;
        tp_attn_range(p, s->kv_len, s->q_pos0 + i, &lo, &hi);
        for (int h = job->h0; h < job->h1; h++) {
            if (nq == AQ || (nq > 0 && h / group != kvh)) {
                run(s, p, (size_t)kvh * (size_t)d, qs, nq);
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
        run(s, p, (size_t)kvh * (size_t)d, qs, nq);
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
    .qgemm = tp_qgemm_avx512,
};
