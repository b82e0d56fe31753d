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

#include <immintrin.h>
#include <math.h>

static inline float hsum16(__m512 v) {
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}

static inline __mmask16 tail_mask(size_t n) {
    return (__mmask16)(n >= 16 ? 0xffffu : (1u << n) - 1);
}

/* ---- vector transcendentals ---- */

static inline __m512 exp512(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f));
    x = _mm512_min_ps(x, _mm512_set1_ps(89.0f));
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
 * Per (query row, head): chunks start at the row's first visible key lo and
 * advance by 16, so the chunking (and with it every rounding) depends only on
 * the row's position and the window — never on the other rows, sequences or
 * threads. Per chunk: 16 scores (one dot product each, lanes over head_dim),
 * new max, rescale of the running sum and output by exp(m_old - m_new), then
 * output += p_j v_j in key order. */

#define ATTN_MAX_VEC 16 /* head_dim <= 256 in registers/stack; larger uses the reference */

static void attn_row(const float *q, const tp_attn_seq *s, const tp_attn_params *p, size_t koff,
                     int lo, int hi, float *o) {
    int d = p->head_dim;
    int nv = (d + 15) / 16;
    __mmask16 last = tail_mask((size_t)(d - (nv - 1) * 16));
    __m512 qv[ATTN_MAX_VEC], acc[ATTN_MAX_VEC];
    for (int v = 0; v < nv; v++) {
        qv[v] = _mm512_maskz_loadu_ps(v == nv - 1 ? last : 0xffff, q + v * 16);
        acc[v] = _mm512_setzero_ps();
    }
    float m = -INFINITY, l = 0.0f;
    const __m512 vscale = _mm512_set1_ps(p->scale);
    for (int j0 = lo; j0 <= hi; j0 += 16) {
        int cnt = hi - j0 + 1 < 16 ? hi - j0 + 1 : 16;
        float sc[16];
        for (int jj = 0; jj < cnt; jj++) {
            const float *k = tp_attn_kv_row(s->k_blocks, s->block_size, s->kv_ld, j0 + jj) + koff;
            __m512 a = _mm512_setzero_ps();
            for (int v = 0; v < nv; v++)
                a = _mm512_fmadd_ps(
                    qv[v], _mm512_maskz_loadu_ps(v == nv - 1 ? last : 0xffff, k + v * 16), a);
            sc[jj] = hsum16(a);
        }
        __mmask16 cm = tail_mask((size_t)cnt);
        __m512 sv = _mm512_mul_ps(_mm512_maskz_loadu_ps(cm, sc), vscale);
        if (p->softcap > 0.0f) {
            __m512 cap = _mm512_set1_ps(p->softcap);
            sv = _mm512_mul_ps(cap, tanh512(_mm512_div_ps(sv, cap)));
        }
        sv = _mm512_mask_blend_ps(cm, _mm512_set1_ps(-INFINITY), sv);
        float cmax = _mm512_reduce_max_ps(sv);
        float m_new = cmax > m ? cmax : m;
        __m512 vm = _mm512_set1_ps(m_new);
        __m512 pv = exp512(_mm512_sub_ps(sv, vm));
        pv = _mm512_maskz_mov_ps(cm, pv);
        __m512 alpha = exp512(_mm512_set1_ps(m - m_new));
        l = l * _mm512_cvtss_f32(alpha) + hsum16(pv);
        for (int v = 0; v < nv; v++)
            acc[v] = _mm512_mul_ps(acc[v], alpha);
        float pj[16];
        _mm512_storeu_ps(pj, pv);
        for (int jj = 0; jj < cnt; jj++) {
            const float *vr = tp_attn_kv_row(s->v_blocks, s->block_size, s->kv_ld, j0 + jj) + koff;
            __m512 w = _mm512_set1_ps(pj[jj]);
            for (int v = 0; v < nv; v++)
                acc[v] = _mm512_fmadd_ps(
                    w, _mm512_maskz_loadu_ps(v == nv - 1 ? last : 0xffff, vr + v * 16), acc[v]);
        }
        m = m_new;
    }
    __m512 vl = _mm512_set1_ps(l);
    for (int v = 0; v < nv; v++) {
        __m512 r = hi < lo ? _mm512_setzero_ps() : _mm512_div_ps(acc[v], vl);
        _mm512_mask_storeu_ps(o + v * 16, v == nv - 1 ? last : 0xffff, r);
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
    for (int i = job->r0; i < job->r1; i++) {
        int lo, hi;
        tp_attn_range(p, s->kv_len, s->q_pos0 + i, &lo, &hi);
        for (int h = job->h0; h < job->h1; h++)
            attn_row(s->q + (size_t)i * s->q_ld + (size_t)h * (size_t)d, s, p,
                     (size_t)(h / group) * (size_t)d, lo, hi,
                     s->out + (size_t)i * s->out_ld + (size_t)h * (size_t)d);
    }
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
