/*
 * ref.c — portable scalar reference kernels: the semantics every optimized
 * kernel is tested against, and what TPIPE_ISA=scalar runs.
 *
 * Numerics follow PyTorch's float32 CPU path (what transformers computes):
 * reductions in f32 in index order, GELU via erff / torch's tanh formula,
 * norms with eps inside the square root, RoPE angles pos * inv_freq rounded
 * to f32 before cos/sin. Compiled without FMA (ISO C mode keeps fp-contract
 * off), so each product and sum is rounded separately.
 */
#include "tensor/kernels.h"

#include <math.h>
#include <string.h>

static inline float weight_at(const tp_linear *l, size_t n, size_t k) {
    size_t i = n * (size_t)l->n_in + k;
    switch (l->dtype) {
    case TP_DTYPE_BF16:
        return tp_bf16_to_f32(((const uint16_t *)l->w)[i]);
    case TP_DTYPE_F16:
        return tp_f16_to_f32(((const uint16_t *)l->w)[i]);
    default:
        return ((const float *)l->w)[i];
    }
}

static inline float round_bf16(float v) {
    return tp_bf16_to_f32(tp_f32_to_bf16(v));
}

static void ref_gemm(const tp_gemm_args *a, size_t m0, size_t m1, size_t n0, size_t n1) {
    const tp_linear *l = a->l;
    size_t K = (size_t)l->n_in;
    bool bf16 = a->compute == TP_COMPUTE_BF16;
    for (size_t i = m0; i < m1; i++) {
        const float *x = a->x + i * a->ldx; /* (K) */
        float *y = a->y + i * a->ldy;       /* (N) */
        for (size_t n = n0; n < n1; n++) {
            float acc = 0.0f;
            for (size_t k = 0; k < K; k++) {
                float xv = bf16 ? round_bf16(x[k]) : x[k];
                acc += xv * weight_at(l, n, k);
            }
            y[n] = l->bias ? acc + l->bias[n] : acc;
        }
    }
}

static void ref_rmsnorm(const float *x, const float *w, float *out, size_t rows, size_t dim,
                        float eps, bool one_plus_w) {
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float *o = out + r * dim;
        float ss = 0.0f;
        for (size_t i = 0; i < dim; i++)
            ss += xr[i] * xr[i];
        float inv = 1.0f / sqrtf(ss / (float)dim + eps);
        for (size_t i = 0; i < dim; i++) {
            float g = w ? (one_plus_w ? 1.0f + w[i] : w[i]) : 1.0f;
            o[i] = (xr[i] * inv) * g;
        }
    }
}

static void ref_layernorm(const float *x, const float *w, const float *b, float *out, size_t rows,
                          size_t dim, float eps) {
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float *o = out + r * dim;
        float s = 0.0f;
        for (size_t i = 0; i < dim; i++)
            s += xr[i];
        float mean = s / (float)dim;
        float v = 0.0f;
        for (size_t i = 0; i < dim; i++) {
            float d = xr[i] - mean;
            v += d * d;
        }
        float inv = 1.0f / sqrtf(v / (float)dim + eps);
        for (size_t i = 0; i < dim; i++) {
            float t = (xr[i] - mean) * inv;
            if (w)
                t = t * w[i];
            if (b)
                t = t + b[i];
            o[i] = t;
        }
    }
}

static void ref_rope(float *x, size_t ld, size_t rows, int n_heads, int head_dim,
                     const int32_t *pos, const float *inv_freq) {
    int half = head_dim / 2;
    for (size_t r = 0; r < rows; r++) {
        float p = (float)pos[r];
        for (int k = 0; k < half; k++) {
            float ang = p * inv_freq[k];
            float c = cosf(ang), s = sinf(ang);
            for (int h = 0; h < n_heads; h++) {
                float *v = x + r * ld + (size_t)h * (size_t)head_dim;
                float x1 = v[k], x2 = v[k + half];
                v[k] = x1 * c - x2 * s;
                v[k + half] = x2 * c + x1 * s;
            }
        }
    }
}

static void ref_softmax(float *x, size_t n) {
    if (n == 0)
        return;
    float mx = x[0];
    for (size_t i = 1; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    float s = 0.0f;
    for (size_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        s += x[i];
    }
    for (size_t i = 0; i < n; i++)
        x[i] = x[i] / s;
}

/* torch: x * 0.5 * (1 + erf(x * M_SQRT1_2)) */
static inline float gelu_erf1(float v) {
    return v * 0.5f * (1.0f + erff(v * (float)M_SQRT1_2));
}
/* torch gelu(approximate='tanh'): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
static inline float gelu_tanh1(float v) {
    const float beta = (float)(M_SQRT2 * M_2_SQRTPI * 0.5);
    const float kappa = 0.044715f;
    float cube = v * v * v;
    float inner = beta * (v + kappa * cube);
    return 0.5f * v * (1.0f + tanhf(inner));
}
/* torch: x / (1 + exp(-x)) */
static inline float silu1(float v) {
    return v / (1.0f + expf(-v));
}

static void ref_gelu_erf(const float *x, float *out, size_t n) {
    for (size_t i = 0; i < n; i++)
        out[i] = gelu_erf1(x[i]);
}
static void ref_gelu_tanh(const float *x, float *out, size_t n) {
    for (size_t i = 0; i < n; i++)
        out[i] = gelu_tanh1(x[i]);
}
static void ref_silu(const float *x, float *out, size_t n) {
    for (size_t i = 0; i < n; i++)
        out[i] = silu1(x[i]);
}

static void ref_glu(const float *x, float *out, size_t rows, size_t d, tp_act act) {
    for (size_t r = 0; r < rows; r++) {
        const float *a = x + r * 2 * d; /* (d) input half */
        const float *g = a + d;         /* (d) gate half */
        float *o = out + r * d;
        for (size_t j = 0; j < d; j++) {
            float v = act == TP_ACT_SILU        ? silu1(a[j])
                      : act == TP_ACT_GELU_TANH ? gelu_tanh1(a[j])
                                                : gelu_erf1(a[j]);
            o[j] = v * g[j];
        }
    }
}

static void ref_embed(const void *table, tp_dtype dtype, const int32_t *ids, size_t n, size_t dim,
                      float scale, float *out) {
    for (size_t r = 0; r < n; r++) {
        size_t base = (size_t)ids[r] * dim;
        float *o = out + r * dim;
        for (size_t i = 0; i < dim; i++) {
            float v = dtype == TP_DTYPE_BF16  ? tp_bf16_to_f32(((const uint16_t *)table)[base + i])
                      : dtype == TP_DTYPE_F16 ? tp_f16_to_f32(((const uint16_t *)table)[base + i])
                                              : ((const float *)table)[base + i];
            o[i] = scale == 1.0f ? v : v * scale;
        }
    }
}

static void ref_add(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        y[i] = y[i] + x[i];
}

static float ref_score(const float *q, const float *k, int d, const tp_attn_params *p) {
    float s = 0.0f;
    for (int i = 0; i < d; i++)
        s += q[i] * k[i];
    s = s * p->scale;
    if (p->softcap > 0.0f)
        s = p->softcap * tanhf(s / p->softcap);
    return s;
}

/* Three passes per (row, head): max, sum of exp, weighted sum of values. The
 * scores are recomputed instead of buffered so the reference needs no memory. */
static void ref_attention(const tp_attn_job *job) {
    const tp_attn_seq *s = job->s;
    const tp_attn_params *p = job->p;
    int d = p->head_dim;
    int group = p->n_heads / p->n_kv_heads;
    for (int i = job->r0; i < job->r1; i++) {
        int pos = s->q_pos0 + i;
        int lo, hi;
        tp_attn_range(p, s->kv_len, pos, &lo, &hi);
        for (int h = job->h0; h < job->h1; h++) {
            const float *q = s->q + (size_t)i * s->q_ld + (size_t)h * (size_t)d;
            float *o = s->out + (size_t)i * s->out_ld + (size_t)h * (size_t)d;
            size_t koff = (size_t)(h / group) * (size_t)d;
            for (int t = 0; t < d; t++)
                o[t] = 0.0f;
            if (hi < lo)
                continue;
            float mx = -INFINITY;
            for (int j = lo; j <= hi; j++) {
                const float *k = tp_attn_kv_row(s->k_blocks, s->block_size, s->kv_ld, j) + koff;
                float sc = ref_score(q, k, d, p);
                mx = sc > mx ? sc : mx;
            }
            float sum = 0.0f;
            for (int j = lo; j <= hi; j++) {
                const float *k = tp_attn_kv_row(s->k_blocks, s->block_size, s->kv_ld, j) + koff;
                const float *v = tp_attn_kv_row(s->v_blocks, s->block_size, s->kv_ld, j) + koff;
                float e = expf(ref_score(q, k, d, p) - mx);
                sum += e;
                for (int t = 0; t < d; t++)
                    o[t] += e * v[t];
            }
            for (int t = 0; t < d; t++)
                o[t] = o[t] / sum;
        }
    }
}

const tp_kernel_table tp_kernels_ref = {
    .name = "scalar",
    .gemm = ref_gemm,
    .rmsnorm = ref_rmsnorm,
    .layernorm = ref_layernorm,
    .rope = ref_rope,
    .softmax = ref_softmax,
    .gelu_erf = ref_gelu_erf,
    .gelu_tanh = ref_gelu_tanh,
    .silu = ref_silu,
    .glu = ref_glu,
    .embed = ref_embed,
    .add = ref_add,
    .attention = ref_attention,
    .qgemm = tp_qgemm_ref,
};
