/*
 * quant.c — reference dequantizer and quantizer of the ggml block formats
 * (layouts and formulas in quant.h; algorithm notes in docs/kernels.md,
 * "Quantized weights").
 *
 * Dequantization evaluates ggml's f32 expressions term by term (no
 * contraction: the project builds with -std=c11, which keeps a*b-c as two
 * rounded operations). Quantization is scalar, per block, and deterministic:
 * a block's bytes depend only on its 32 or 256 inputs, so a tensor quantized
 * over any number of threads is the same file.
 */
#include "tensor/quant.h"

#include <math.h>
#include <string.h>

/* ---- f16 ---- */

uint16_t tp_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) /* NaN: quiet, keep the top payload bits */
        return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u) /* >= 65520 (65504 + half an ulp) rounds to Inf */
        return (uint16_t)(sign | 0x7c00u);
    if (a >= 0x38800000u) { /* normal in f16: re-bias, round the 13 dropped bits */
        uint32_t r = a - ((uint32_t)(127 - 15) << 23);
        r += 0xfffu + ((r >> 13) & 1u);
        return (uint16_t)(sign | (r >> 13));
    }
    /* subnormal in f16 (or zero): units of 2^-24, exact scaling, then RNE */
    float v;
    memcpy(&v, &a, sizeof v);
    return (uint16_t)(sign | (uint16_t)nearbyintf(v * 16777216.0f));
}

static float f16_at(const uint16_t *p) {
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return tp_f16_to_f32(h);
}

/* f32 -> f16 for a scale v >= 0: the nearest f16 at or above v (so the largest
 * value of the block still fits the integer range even where f16 is coarse,
 * e.g. subnormal scales), saturating at 65504. */
static uint16_t scale_f16(float v) {
    uint16_t h = tp_f32_to_f16(v);
    if (h >= 0x7c00u)
        return 0x7bffu;
    if (tp_f16_to_f32(h) < v)
        h++;
    return h;
}

/* nearest integer of v (ties to even), clamped to [lo, hi]; NaN gives lo */
static int round_clamp(float v, int lo, int hi) {
    if (!(v >= (float)lo))
        return lo;
    if (v >= (float)hi)
        return hi;
    return (int)nearbyintf(v);
}

/* ---- dequantization ---- */

static void deq_q8_0(const uint8_t *src, float *y, size_t nb) {
    for (size_t b = 0; b < nb; b++, src += sizeof(tp_block_q8_0), y += TP_QK8_0) {
        tp_block_q8_0 blk;
        memcpy(&blk, src, sizeof blk);
        float d = tp_f16_to_f32(blk.d);
        for (int i = 0; i < TP_QK8_0; i++)
            y[i] = d * (float)blk.qs[i];
    }
}

static void deq_q4_k(const uint8_t *src, float *y, size_t nb) {
    for (size_t b = 0; b < nb; b++, src += sizeof(tp_block_q4_k), y += TP_QK_K) {
        tp_block_q4_k blk;
        memcpy(&blk, src, sizeof blk);
        float d = tp_f16_to_f32(blk.d), dmin = tp_f16_to_f32(blk.dmin);
        for (int c = 0; c < 4; c++) {
            uint8_t sc0, m0, sc1, m1;
            tp_q4k_scale_min(blk.scales, 2 * c, &sc0, &m0);
            tp_q4k_scale_min(blk.scales, 2 * c + 1, &sc1, &m1);
            float d0 = d * (float)sc0, mm0 = dmin * (float)m0;
            float d1 = d * (float)sc1, mm1 = dmin * (float)m1;
            const uint8_t *q = blk.qs + 32 * c;
            for (int l = 0; l < 32; l++) {
                y[64 * c + l] = d0 * (float)(q[l] & 15) - mm0;
                y[64 * c + 32 + l] = d1 * (float)(q[l] >> 4) - mm1;
            }
        }
    }
}

static void deq_q6_k(const uint8_t *src, float *y, size_t nb) {
    for (size_t b = 0; b < nb; b++, src += sizeof(tp_block_q6_k), y += TP_QK_K) {
        tp_block_q6_k blk;
        memcpy(&blk, src, sizeof blk);
        float d = tp_f16_to_f32(blk.d);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = blk.ql + 64 * h, *qh = blk.qh + 32 * h;
            const int8_t *sc = blk.scales + 8 * h;
            float *yy = y + 128 * h;
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = (int)((ql[l] & 15) | ((qh[l] >> 0) & 3) << 4) - 32;
                int q2 = (int)((ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4) - 32;
                int q3 = (int)((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
                int q4 = (int)((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
                yy[l] = d * (float)sc[is] * (float)q1;
                yy[l + 32] = d * (float)sc[is + 2] * (float)q2;
                yy[l + 64] = d * (float)sc[is + 4] * (float)q3;
                yy[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
        }
    }
}

void tp_dequantize_row(tp_dtype t, const void *src, float *dst, size_t n) {
    const uint8_t *s = src;
    switch (t) {
    case TP_DTYPE_F32:
        memcpy(dst, s, n * sizeof(float));
        return;
    case TP_DTYPE_F16:
        for (size_t i = 0; i < n; i++)
            dst[i] = f16_at((const uint16_t *)(const void *)(s + 2 * i));
        return;
    case TP_DTYPE_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = tp_bf16_to_f32(h);
        }
        return;
    case TP_DTYPE_Q8_0:
        TP_ASSERT(n % TP_QK8_0 == 0);
        deq_q8_0(s, dst, n / TP_QK8_0);
        return;
    case TP_DTYPE_Q4_K:
        TP_ASSERT(n % TP_QK_K == 0);
        deq_q4_k(s, dst, n / TP_QK_K);
        return;
    case TP_DTYPE_Q6_K:
        TP_ASSERT(n % TP_QK_K == 0);
        deq_q6_k(s, dst, n / TP_QK_K);
        return;
    default:
        TP_ASSERT(!"tp_dequantize_row: unsupported dtype");
        return;
    }
}

/* ---- quantization ---- */

/* Copies n inputs, replacing non-finite ones by 0; returns how many there were. */
static size_t clean_copy(const float *x, float *out, size_t n) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        bool ok = isfinite(x[i]);
        out[i] = ok ? x[i] : 0.0f;
        bad += !ok;
    }
    return bad;
}

static void quant_q8_0(const float *x, tp_block_q8_0 *blk) {
    float amax = 0.0f;
    for (int i = 0; i < TP_QK8_0; i++)
        amax = fmaxf(amax, fabsf(x[i]));
    blk->d = scale_f16(amax / 127.0f);
    float d = tp_f16_to_f32(blk->d);
    for (int i = 0; i < TP_QK8_0; i++)
        blk->qs[i] = (int8_t)(d > 0.0f ? round_clamp(x[i] / d, -127, 127) : 0);
}

/* Least-squares fit of x[0:n] ~ s*q + b with q in [0, nmax] integers and b <= 0
 * (an asymmetric quantizer; Q4_K stores -b as the min). Tries a grid of
 * inverse scales around nmax / (hi - lo), refits (s, b) to each rounding and
 * keeps the one of least squared error. */
static void fit_asym(const float *x, int n, int nmax, float *s_out, float *m_out) {
    float lo = x[0], hi = x[0];
    for (int i = 1; i < n; i++) {
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
    }
    if (lo > 0.0f)
        lo = 0.0f;
    if (!(hi > lo)) { /* all equal and <= 0 */
        *s_out = 0.0f;
        *m_out = -lo;
        return;
    }
    double best_err = INFINITY, best_s = (double)(hi - lo) / nmax, best_b = lo;
    for (int k = -10; k <= 10; k++) {
        double iscale = (nmax + 0.1 * k) / ((double)hi - (double)lo);
        double sq = 0, sqq = 0, sx = 0, sqx = 0;
        int q[TP_QK_K];
        for (int i = 0; i < n; i++) {
            q[i] = round_clamp((float)((x[i] - lo) * iscale), 0, nmax);
            sq += q[i];
            sqq += (double)q[i] * q[i];
            sx += x[i];
            sqx += (double)q[i] * x[i];
        }
        double det = n * sqq - sq * sq, s, b;
        if (det <= 0)
            continue;
        s = (n * sqx - sq * sx) / det;
        b = (sx - s * sq) / n;
        if (b > 0) {
            b = 0;
            s = sqx / sqq;
        }
        if (!(s > 0))
            continue;
        double err = 0;
        for (int i = 0; i < n; i++) {
            double e = s * q[i] + b - x[i];
            err += e * e;
        }
        if (err < best_err) {
            best_err = err;
            best_s = s;
            best_b = b;
        }
    }
    *s_out = (float)best_s;
    *m_out = (float)-best_b;
}

static void quant_q4_k(const float *x, tp_block_q4_k *blk) {
    float s[8], m[8], smax = 0.0f, mmax = 0.0f;
    for (int j = 0; j < 8; j++) {
        fit_asym(x + 32 * j, 32, 15, &s[j], &m[j]);
        smax = fmaxf(smax, s[j]);
        mmax = fmaxf(mmax, m[j]);
    }
    blk->d = scale_f16(smax / 63.0f);
    blk->dmin = scale_f16(mmax / 63.0f);
    float d = tp_f16_to_f32(blk->d), dmin = tp_f16_to_f32(blk->dmin);
    uint8_t sc[8], mq[8];
    for (int j = 0; j < 8; j++) {
        sc[j] = (uint8_t)(d > 0.0f ? round_clamp(s[j] / d, 0, 63) : 0);
        mq[j] = (uint8_t)(dmin > 0.0f ? round_clamp(m[j] / dmin, 0, 63) : 0);
    }
    for (int j = 0; j < 4; j++) {
        blk->scales[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        blk->scales[j + 4] = (uint8_t)((mq[j] & 63) | ((mq[j + 4] >> 4) << 6));
        blk->scales[j + 8] = (uint8_t)((sc[j + 4] & 15) | ((mq[j + 4] & 15) << 4));
    }
    /* the values, re-rounded against the scales as the decoder computes them */
    uint8_t q[TP_QK_K];
    for (int j = 0; j < 8; j++) {
        float ds = d * (float)sc[j], dm = dmin * (float)mq[j];
        for (int i = 0; i < 32; i++)
            q[32 * j + i] =
                (uint8_t)(ds > 0.0f ? round_clamp((x[32 * j + i] + dm) / ds, 0, 15) : 0);
    }
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++)
            blk->qs[32 * c + l] = (uint8_t)(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
}

/* Least-squares symmetric fit x[0:n] ~ s*q, q in [-32, 31]: the scale may be
 * negative so that the larger-magnitude side uses the extra level -32. */
static float fit_sym6(const float *x, int n) {
    float xm = 0.0f;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > fabsf(xm))
            xm = x[i];
    if (xm == 0.0f)
        return 0.0f;
    double best_err = INFINITY, best_s = -(double)xm / 32.0;
    for (int k = -10; k <= 10; k++) {
        double iscale = -(32.0 + 0.1 * k) / xm;
        double sqq = 0, sqx = 0;
        int q[16];
        for (int i = 0; i < n; i++) {
            q[i] = round_clamp((float)(x[i] * iscale), -32, 31);
            sqq += (double)q[i] * q[i];
            sqx += (double)q[i] * x[i];
        }
        if (sqq <= 0)
            continue;
        double sc = sqx / sqq, err = 0;
        for (int i = 0; i < n; i++) {
            double e = sc * q[i] - x[i];
            err += e * e;
        }
        if (err < best_err) {
            best_err = err;
            best_s = sc;
        }
    }
    return (float)best_s;
}

static void quant_q6_k(const float *x, tp_block_q6_k *blk) {
    float s[16], amax = 0.0f;
    for (int j = 0; j < 16; j++) {
        s[j] = fit_sym6(x + 16 * j, 16);
        amax = fmaxf(amax, fabsf(s[j]));
    }
    blk->d = scale_f16(amax / 127.0f);
    float d = tp_f16_to_f32(blk->d);
    uint8_t q[TP_QK_K];
    for (int j = 0; j < 16; j++) {
        int sc = d > 0.0f ? round_clamp(s[j] / d, -127, 127) : 0;
        blk->scales[j] = (int8_t)sc;
        float ds = d * (float)sc;
        for (int i = 0; i < 16; i++) {
            int v = ds != 0.0f ? round_clamp(x[16 * j + i] / ds, -32, 31) : 0;
            q[16 * j + i] = (uint8_t)(v + 32);
        }
    }
    for (int h = 0; h < 2; h++) {
        const uint8_t *qq = q + 128 * h;
        for (int l = 0; l < 32; l++) {
            uint8_t a = qq[l], b = qq[l + 32], c = qq[l + 64], e = qq[l + 96];
            blk->ql[64 * h + l] = (uint8_t)((a & 15) | ((c & 15) << 4));
            blk->ql[64 * h + l + 32] = (uint8_t)((b & 15) | ((e & 15) << 4));
            blk->qh[32 * h + l] =
                (uint8_t)((a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6));
        }
    }
}

size_t tp_quantize_row(tp_dtype t, const float *src, void *dst, size_t n) {
    uint8_t *d = dst;
    size_t bad = 0;
    float buf[TP_QK_K];
    switch (t) {
    case TP_DTYPE_F32:
        for (size_t i = 0; i < n; i++)
            bad += !isfinite(src[i]);
        memcpy(d, src, n * sizeof(float));
        return bad;
    case TP_DTYPE_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h = tp_f32_to_f16(src[i]);
            bad += (h & 0x7c00u) == 0x7c00u;
            memcpy(d + 2 * i, &h, 2);
        }
        return bad;
    case TP_DTYPE_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h = tp_f32_to_bf16(src[i]);
            bad += (h & 0x7f80u) == 0x7f80u;
            memcpy(d + 2 * i, &h, 2);
        }
        return bad;
    case TP_DTYPE_Q8_0:
        TP_ASSERT(n % TP_QK8_0 == 0);
        for (size_t b = 0; b < n / TP_QK8_0; b++) {
            tp_block_q8_0 blk;
            bad += clean_copy(src + b * TP_QK8_0, buf, TP_QK8_0);
            quant_q8_0(buf, &blk);
            memcpy(d + b * sizeof blk, &blk, sizeof blk);
        }
        return bad;
    case TP_DTYPE_Q4_K:
        TP_ASSERT(n % TP_QK_K == 0);
        for (size_t b = 0; b < n / TP_QK_K; b++) {
            tp_block_q4_k blk;
            bad += clean_copy(src + b * TP_QK_K, buf, TP_QK_K);
            quant_q4_k(buf, &blk);
            memcpy(d + b * sizeof blk, &blk, sizeof blk);
        }
        return bad;
    case TP_DTYPE_Q6_K:
        TP_ASSERT(n % TP_QK_K == 0);
        for (size_t b = 0; b < n / TP_QK_K; b++) {
            tp_block_q6_k blk;
            bad += clean_copy(src + b * TP_QK_K, buf, TP_QK_K);
            quant_q6_k(buf, &blk);
            memcpy(d + b * sizeof blk, &blk, sizeof blk);
        }
        return bad;
    default:
        TP_ASSERT(!"tp_quantize_row: unsupported dtype");
        return 0;
    }
}

bool tp_tensor_bytes(tp_dtype t, size_t rows, size_t cols, size_t *out) {
    size_t rb;
    if (!tp_dtype_row_bytes(t, cols, &rb))
        return false;
    return tp_mul_size(rb, rows, out);
}

/* ---- whole tensors over a pool ---- */

#define QT_MAX_TASKS 256

typedef struct qt_ctx {
    tp_dtype t;
    const float *src;
    size_t rows, cols, row_bytes, per_task;
    uint8_t *dst;
    size_t bad[QT_MAX_TASKS];       /* non-finite inputs per task */
    size_t first_bad[QT_MAX_TASKS]; /* first row with one, per task */
} qt_ctx;

static void qt_task(void *vctx, size_t task, int thread) {
    (void)thread;
    qt_ctx *c = vctx;
    size_t r0 = task * c->per_task, r1 = r0 + c->per_task < c->rows ? r0 + c->per_task : c->rows;
    c->bad[task] = 0;
    c->first_bad[task] = SIZE_MAX;
    for (size_t r = r0; r < r1; r++) {
        size_t b = tp_quantize_row(c->t, c->src + r * c->cols, c->dst + r * c->row_bytes, c->cols);
        if (b && c->first_bad[task] == SIZE_MAX)
            c->first_bad[task] = r;
        c->bad[task] += b;
    }
}

tp_status tp_quantize_tensor(tp_pool *pool, tp_dtype t, const float *src, size_t rows, size_t cols,
                             void *dst, tp_error *err) {
    if (t != TP_DTYPE_F32 && t != TP_DTYPE_F16 && t != TP_DTYPE_BF16 && !tp_dtype_is_quant(t))
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT,
                       "tp_quantize_tensor: cannot encode dtype %s (F32, F16, BF16, Q8_0, Q4_K, "
                       "Q6_K)",
                       tp_dtype_name(t));
    size_t row_bytes, total;
    if (!tp_dtype_row_bytes(t, cols, &row_bytes))
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT,
                       "tp_quantize_tensor: %zu columns is not a multiple of the %s block (%zu)",
                       cols, tp_dtype_name(t), tp_dtype_block(t));
    if (!tp_mul_size(row_bytes, rows, &total) || (cols && rows > SIZE_MAX / cols))
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_quantize_tensor: (%zu, %zu) overflows",
                       rows, cols);
    if (rows == 0 || cols == 0)
        return TP_OK;
    qt_ctx *c = tp_malloc(sizeof *c);
    if (!c)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "tp_quantize_tensor: no memory");
    c->t = t;
    c->src = src;
    c->rows = rows;
    c->cols = cols;
    c->row_bytes = row_bytes;
    c->dst = dst;
    c->per_task = (rows + QT_MAX_TASKS - 1) / QT_MAX_TASKS;
    size_t tasks = (rows + c->per_task - 1) / c->per_task;
    if (!pool || tasks == 1) {
        for (size_t k = 0; k < tasks; k++)
            qt_task(c, k, 0);
    } else {
        tp_pool_run(pool, tasks, qt_task, c);
    }
    size_t bad = 0, first = SIZE_MAX;
    for (size_t k = 0; k < tasks; k++) {
        bad += c->bad[k];
        if (c->first_bad[k] < first)
            first = c->first_bad[k];
    }
    tp_free(c);
    if (bad)
        return tp_fail(err, TP_ERR_FORMAT,
                       "tp_quantize_tensor: %zu non-finite value%s (first in row %zu) while "
                       "encoding as %s",
                       bad, bad == 1 ? "" : "s", first, tp_dtype_name(t));
    return TP_OK;
}
