/*
 * ops_avx2.c — AVX2 + FMA versions of the row-wise and element-wise kernels
 * and of attention, and the AVX2 kernel table.
 *
 * Same structure and numerics as ops_avx512.c with 8 lanes: tails are masked
 * loads/stores (VMASKMOVPS) running the same vector code as full vectors, the
 * lane of an element is its index in the row, reductions go through hsum8's
 * fixed tree. exp builds 2^n in the exponent field (no VSCALEF here): inputs
 * below ln(FLT_MIN) give 0 and above ln(FLT_MAX) give +inf.
 */
#include "tensor/kernels.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

static inline float hsum8(__m256 v) {
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}

static inline float hmax8(__m256 v) {
    __m128 b = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    b = _mm_max_ps(b, _mm_movehl_ps(b, b));
    b = _mm_max_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}

static const int32_t mask_table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* lanes [0, min(n, 8)) set */
static inline __m256i lane_mask(size_t n) {
    size_t k = n >= 8 ? 8 : n;
    return _mm256_loadu_si256((const __m256i *)(mask_table + 8 - k));
}
static inline __m256 mload(__m256i m, const float *p) {
    return _mm256_maskload_ps(p, m);
}
static inline void mstore(float *p, __m256i m, __m256 v) {
    _mm256_maskstore_ps(p, m, v);
}

/* ---- vector transcendentals ---- */

/* (clamped with x as the second operand so that a NaN propagates) */
static inline __m256 exp256(__m256 x) {
    __m256 xc =
        _mm256_min_ps(_mm256_set1_ps(88.72283f), _mm256_max_ps(_mm256_set1_ps(-87.33654f), x));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860682030941723212e-6f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    __m256 res = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    res = _mm256_blendv_ps(res, _mm256_setzero_ps(),
                           _mm256_cmp_ps(x, _mm256_set1_ps(-87.33654f), _CMP_LT_OQ));
    res = _mm256_blendv_ps(res, _mm256_set1_ps(INFINITY),
                           _mm256_cmp_ps(x, _mm256_set1_ps(88.72283f), _CMP_GT_OQ));
    return res;
}

static inline __m256 copysign256(__m256 mag, __m256 sign_of) {
    __m256 sm = _mm256_castsi256_ps(_mm256_set1_epi32(INT32_MIN));
    return _mm256_or_ps(_mm256_andnot_ps(sm, mag), _mm256_and_ps(sm, sign_of));
}

static inline __m256 abs256(__m256 x) {
    return _mm256_andnot_ps(_mm256_castsi256_ps(_mm256_set1_epi32(INT32_MIN)), x);
}

static inline __m256 tanh256(__m256 x) {
    __m256 ax = abs256(x);
    __m256 z = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(21844.0f / 6081075.0f);
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-1382.0f / 155925.0f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(62.0f / 2835.0f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-17.0f / 315.0f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(2.0f / 15.0f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-1.0f / 3.0f));
    __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
    __m256 e = exp256(_mm256_add_ps(ax, ax));
    __m256 big =
        _mm256_sub_ps(_mm256_set1_ps(1.0f),
                      _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
    big = copysign256(big, x);
    return _mm256_blendv_ps(big, small, _mm256_cmp_ps(ax, _mm256_set1_ps(0.3f), _CMP_LT_OQ));
}

static inline __m256 erf256(__m256 x) {
    __m256 ax = abs256(x);
    __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f),
                             _mm256_fmadd_ps(ax, _mm256_set1_ps(0.3275911f), _mm256_set1_ps(1.0f)));
    __m256 p = _mm256_set1_ps(1.061405429f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
    p = _mm256_mul_ps(p, t);
    __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(ax, ax)));
    return copysign256(_mm256_fnmadd_ps(p, e, _mm256_set1_ps(1.0f)), x);
}

static inline __m256 gelu_erf256(__m256 x) {
    __m256 e = erf256(_mm256_mul_ps(x, _mm256_set1_ps((float)M_SQRT1_2)));
    return _mm256_mul_ps(_mm256_mul_ps(x, _mm256_set1_ps(0.5f)),
                         _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

static inline __m256 gelu_tanh256(__m256 x) {
    const __m256 beta = _mm256_set1_ps((float)(M_SQRT2 * M_2_SQRTPI * 0.5));
    __m256 cube = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
    __m256 inner = _mm256_mul_ps(beta, _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), cube, x));
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x),
                         _mm256_add_ps(_mm256_set1_ps(1.0f), tanh256(inner)));
}

static inline __m256 silu256(__m256 x) {
    __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), x));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

/* ---- norms ---- */

static void v_rmsnorm(const float *x, const float *w, float *out, size_t rows, size_t dim,
                      float eps, bool one_plus_w) {
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float *o = out + r * dim;
        __m256 acc = _mm256_setzero_ps();
        for (size_t i = 0; i < dim; i += 8) {
            __m256 v = mload(lane_mask(dim - i), xr + i);
            acc = _mm256_fmadd_ps(v, v, acc);
        }
        float inv = 1.0f / sqrtf(hsum8(acc) / (float)dim + eps);
        __m256 vinv = _mm256_set1_ps(inv);
        for (size_t i = 0; i < dim; i += 8) {
            __m256i m = lane_mask(dim - i);
            __m256 v = _mm256_mul_ps(mload(m, xr + i), vinv);
            if (w) {
                __m256 g = mload(m, w + i);
                if (one_plus_w)
                    g = _mm256_add_ps(_mm256_set1_ps(1.0f), g);
                v = _mm256_mul_ps(v, g);
            }
            mstore(o + i, m, v);
        }
    }
}

static void v_layernorm(const float *x, const float *w, const float *b, float *out, size_t rows,
                        size_t dim, float eps) {
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float *o = out + r * dim;
        __m256 acc = _mm256_setzero_ps();
        for (size_t i = 0; i < dim; i += 8)
            acc = _mm256_add_ps(acc, mload(lane_mask(dim - i), xr + i));
        float mean = hsum8(acc) / (float)dim;
        __m256 vm = _mm256_set1_ps(mean);
        acc = _mm256_setzero_ps();
        for (size_t i = 0; i < dim; i += 8) {
            __m256i m = lane_mask(dim - i);
            __m256 d = _mm256_and_ps(_mm256_sub_ps(mload(m, xr + i), vm), _mm256_castsi256_ps(m));
            acc = _mm256_fmadd_ps(d, d, acc);
        }
        float inv = 1.0f / sqrtf(hsum8(acc) / (float)dim + eps);
        __m256 vinv = _mm256_set1_ps(inv);
        for (size_t i = 0; i < dim; i += 8) {
            __m256i m = lane_mask(dim - i);
            __m256 t = _mm256_mul_ps(_mm256_sub_ps(mload(m, xr + i), vm), vinv);
            if (w)
                t = _mm256_mul_ps(t, mload(m, w + i));
            if (b)
                t = _mm256_add_ps(t, mload(m, b + i));
            mstore(o + i, m, t);
        }
    }
}

/* ---- rope ---- */

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
            for (int k = 0; k < half; k += 8) {
                __m256i m = lane_mask((size_t)(half - k));
                __m256 c = mload(m, cs + k), s = mload(m, sn + k);
                __m256 x1 = mload(m, v + k), x2 = mload(m, v + k + half);
                mstore(v + k, m, _mm256_sub_ps(_mm256_mul_ps(x1, c), _mm256_mul_ps(x2, s)));
                mstore(v + k + half, m, _mm256_add_ps(_mm256_mul_ps(x2, c), _mm256_mul_ps(x1, s)));
            }
        }
    }
}

/* ---- softmax ---- */

static void v_softmax(float *x, size_t n) {
    __m256 mx = _mm256_set1_ps(-INFINITY);
    for (size_t i = 0; i < n; i += 8) {
        __m256i m = lane_mask(n - i);
        mx = _mm256_max_ps(mx, _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), mload(m, x + i),
                                                _mm256_castsi256_ps(m)));
    }
    __m256 vmax = _mm256_set1_ps(hmax8(mx));
    __m256 acc = _mm256_setzero_ps();
    for (size_t i = 0; i < n; i += 8) {
        __m256i m = lane_mask(n - i);
        __m256 e =
            _mm256_and_ps(exp256(_mm256_sub_ps(mload(m, x + i), vmax)), _mm256_castsi256_ps(m));
        acc = _mm256_add_ps(acc, e);
        mstore(x + i, m, e);
    }
    __m256 vs = _mm256_set1_ps(hsum8(acc));
    for (size_t i = 0; i < n; i += 8) {
        __m256i m = lane_mask(n - i);
        mstore(x + i, m, _mm256_div_ps(mload(m, x + i), vs));
    }
}

/* ---- activations ---- */

#define ELEMENTWISE(name, f)                                                                       \
    static void name(const float *x, float *out, size_t n) {                                       \
        for (size_t i = 0; i < n; i += 8) {                                                        \
            __m256i m = lane_mask(n - i);                                                          \
            mstore(out + i, m, f(mload(m, x + i)));                                                \
        }                                                                                          \
    }
ELEMENTWISE(v_gelu_erf, gelu_erf256)
ELEMENTWISE(v_gelu_tanh, gelu_tanh256)
ELEMENTWISE(v_silu, silu256)

static void v_glu(const float *x, float *out, size_t rows, size_t d, tp_act act) {
    for (size_t r = 0; r < rows; r++) {
        const float *a = x + r * 2 * d, *g = a + d;
        float *o = out + r * d;
        for (size_t j = 0; j < d; j += 8) {
            __m256i m = lane_mask(d - j);
            __m256 v = mload(m, a + j);
            v = act == TP_ACT_SILU        ? silu256(v)
                : act == TP_ACT_GELU_TANH ? gelu_tanh256(v)
                                          : gelu_erf256(v);
            mstore(o + j, m, _mm256_mul_ps(v, mload(m, g + j)));
        }
    }
}

/* ---- embedding, add ---- */

static void v_embed(const void *table, tp_dtype dtype, const int32_t *ids, size_t n, size_t dim,
                    float scale, float *out) {
    __m256 vs = _mm256_set1_ps(scale);
    for (size_t r = 0; r < n; r++) {
        size_t base = (size_t)ids[r] * dim;
        float *o = out + r * dim;
        for (size_t i = 0; i < dim; i += 8) {
            size_t cnt = dim - i < 8 ? dim - i : 8;
            __m256i m = lane_mask(cnt);
            __m256 v;
            if (dtype == TP_DTYPE_F32) {
                v = mload(m, (const float *)table + base + i);
            } else {
                uint16_t buf[8] = {0};
                memcpy(buf, (const uint16_t *)table + base + i, cnt * sizeof(uint16_t));
                __m128i h = _mm_loadu_si128((const __m128i *)buf);
                v = dtype == TP_DTYPE_F16
                        ? _mm256_cvtph_ps(h)
                        : _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
            }
            if (scale != 1.0f)
                v = _mm256_mul_ps(v, vs);
            mstore(o + i, m, v);
        }
    }
}

static void v_add(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i += 8) {
        __m256i m = lane_mask(n - i);
        mstore(y + i, m, _mm256_add_ps(mload(m, y + i), mload(m, x + i)));
    }
}

/* ---- attention (see ops_avx512.c: chunks of 8 keys from the row's first
 * visible key, online softmax, outputs in key order) ---- */

#define ATTN_MAX_VEC 16 /* head_dim <= 128 in registers/stack; larger uses the reference */

static void attn_row(const float *q, const tp_attn_seq *s, const tp_attn_params *p, size_t koff,
                     int lo, int hi, float *o) {
    int d = p->head_dim;
    int nv = (d + 7) / 8;
    __m256i last = lane_mask((size_t)(d - (nv - 1) * 8));
    __m256i full = lane_mask(8);
    __m256 qv[ATTN_MAX_VEC], acc[ATTN_MAX_VEC];
    for (int v = 0; v < nv; v++) {
        qv[v] = mload(v == nv - 1 ? last : full, q + v * 8);
        acc[v] = _mm256_setzero_ps();
    }
    float m = -INFINITY, l = 0.0f;
    const __m256 vscale = _mm256_set1_ps(p->scale);
    for (int j0 = lo; j0 <= hi; j0 += 8) {
        int cnt = hi - j0 + 1 < 8 ? hi - j0 + 1 : 8;
        float sc[8] = {0};
        /* row pointers of the chunk (one division per chunk) */
        const float *kr[8], *vr[8];
        int b = j0 / s->block_size, off = j0 % s->block_size;
        for (int jj = 0; jj < cnt; jj++) {
            size_t at = (size_t)off * s->kv_ld + koff;
            kr[jj] = s->k_blocks[b] + at;
            vr[jj] = s->v_blocks[b] + at;
            if (++off == s->block_size) {
                off = 0;
                b++;
            }
        }
        for (int jj = 0; jj < cnt; jj++) {
            const float *k = kr[jj];
            __m256 a = _mm256_setzero_ps();
            for (int v = 0; v < nv; v++)
                a = _mm256_fmadd_ps(qv[v], mload(v == nv - 1 ? last : full, k + v * 8), a);
            sc[jj] = hsum8(a);
        }
        __m256i cm = lane_mask((size_t)cnt);
        __m256 sv = _mm256_mul_ps(_mm256_loadu_ps(sc), vscale);
        if (p->softcap > 0.0f) {
            __m256 cap = _mm256_set1_ps(p->softcap);
            sv = _mm256_mul_ps(cap, tanh256(_mm256_div_ps(sv, cap)));
        }
        sv = _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), sv, _mm256_castsi256_ps(cm));
        float cmax = hmax8(sv);
        float m_new = cmax > m ? cmax : m;
        __m256 pv = _mm256_and_ps(exp256(_mm256_sub_ps(sv, _mm256_set1_ps(m_new))),
                                  _mm256_castsi256_ps(cm));
        __m256 alpha = exp256(_mm256_set1_ps(m - m_new));
        l = l * _mm256_cvtss_f32(alpha) + hsum8(pv);
        for (int v = 0; v < nv; v++)
            acc[v] = _mm256_mul_ps(acc[v], alpha);
        float pj[8];
        _mm256_storeu_ps(pj, pv);
        for (int jj = 0; jj < cnt; jj++) {
            __m256 w = _mm256_set1_ps(pj[jj]);
            for (int v = 0; v < nv; v++)
                acc[v] =
                    _mm256_fmadd_ps(w, mload(v == nv - 1 ? last : full, vr[jj] + v * 8), acc[v]);
        }
        m = m_new;
    }
    __m256 vl = _mm256_set1_ps(l);
    for (int v = 0; v < nv; v++) {
        __m256 r = hi < lo ? _mm256_setzero_ps() : _mm256_div_ps(acc[v], vl);
        mstore(o + v * 8, v == nv - 1 ? last : full, r);
    }
}

static void v_attention(const tp_attn_job *job) {
    const tp_attn_seq *s = job->s;
    const tp_attn_params *p = job->p;
    int d = p->head_dim;
    if (d > ATTN_MAX_VEC * 8) {
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

const tp_kernel_table tp_kernels_avx2 = {
    .name = "avx2",
    .gemm = tp_avx2_gemm,
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
    .qgemm = tp_qgemm_avx2,
};
