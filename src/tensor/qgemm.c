/*
 * qgemm.c — y = x W^T for block-quantized W (Q8_0, Q4_K, Q6_K): the activation
 * quantization every ISA shares and the scalar reference kernel, which defines
 * the result bit for bit (the AVX2 and AVX-512 kernels reproduce it exactly).
 *
 * Definition. Each row of x is quantized per block (tp_qx_quantize_block:
 * d = amax/127, qs = round(x * 127/amax)), 32-blocks for Q8_0 weights and
 * 256-blocks (plus sums of 16) for the K-quants; for Q4_K the 32-element
 * groups are stored in the order the weight nibbles come in a 64-byte load
 * (tp_qx_q4k_pos), which changes no value. Output y[i][n] is then, over
 * the weight blocks b in order, with exact int32 block sums:
 *   Q8_0: acc = fma(dx_b * dw_b, (float)sum_k qw qx, acc)
 *   Q4_K: S1 = sum_j sc_j * sum_{k in j} q_k qx_k,  S2 = sum_j m_j * sum_{k in j} qx_k
 *         acc = fma(dx_b * d_b, (float)S1, acc); acc = fma(-(dx_b * dmin_b), (float)S2, acc)
 *   Q6_K: S  = sum_j sc_j * (sum_{k in j} q_k qx_k - 32 * sum_{k in j} qx_k)
 *         acc = fma(dx_b * d_b, (float)S, acc)
 * and y = acc + bias[n]. Integer sums are exact in any order, and the f32
 * steps run in this one order on every ISA, so results do not depend on the
 * ISA, on M, on the other rows or on the thread count.
 */
#include "tensor/kernels.h"
#include "tensor/quant.h"

#include <float.h>
#include <math.h>
#include <string.h>

size_t tp_qx_block(tp_dtype wt) {
    return wt == TP_DTYPE_Q8_0 ? TP_QK8_0 : TP_QK_K;
}

void tp_qx_quantize_block(const float *x, size_t blk, int8_t *qs, float *d, int16_t *bs) {
    float amax = 0.0f;
    bool finite = true;
    for (size_t i = 0; i < blk; i++) {
        float a = fabsf(x[i]);
        finite = finite && a <= FLT_MAX; /* false for NaN and Inf */
        amax = a > amax ? a : amax;
    }
    if (!finite) {
        memset(qs, 0, blk);
        *d = NAN;
    } else {
        float id = amax > 0.0f ? 127.0f / amax : 0.0f;
        /* round to nearest even by adding and removing 1.5 * 2^23 (exact for
         * |v| <= 127.01; the same as nearbyintf, and vectorizable) */
        const float magic = 12582912.0f;
        for (size_t i = 0; i < blk; i++)
            qs[i] = (int8_t)(int)((x[i] * id + magic) - magic);
        *d = amax / 127.0f;
    }
    if (bs)
        for (size_t g = 0; g < blk / 16; g++) {
            int s = 0;
            for (int i = 0; i < 16; i++)
                s += qs[16 * g + i];
            bs[g] = (int16_t)s;
        }
}

void tp_qx_quantize_wblock(tp_dtype wt, const float *x, int8_t *qs, float *d, int16_t *bs) {
    if (wt != TP_DTYPE_Q4_K) {
        tp_qx_quantize_block(x, tp_qx_block(wt), qs, d, wt == TP_DTYPE_Q8_0 ? NULL : bs);
        return;
    }
    int8_t nat[TP_QK_K];
    tp_qx_quantize_block(x, TP_QK_K, nat, d, bs);
    for (int e = 0; e < TP_QK_K; e += 32)
        memcpy(qs + tp_qx_q4k_pos(e), nat + e, 32);
}

void tp_qx_quantize(const float *x, size_t ldx, size_t m, size_t K, tp_dtype wt, const tp_qx *q) {
    int8_t *qs = (int8_t *)q->qs;
    float *d = (float *)q->d;
    int16_t *bs = (int16_t *)q->bs;
    size_t blk = tp_qx_block(wt);
    for (size_t r = 0; r < m; r++)
        for (size_t b = 0; b < K / blk; b++)
            tp_qx_quantize_wblock(wt, x + r * ldx + b * blk, qs + r * q->ldq + b * blk,
                                  d + r * q->ldd + b, bs ? bs + r * q->ldb + b * (blk / 16) : NULL);
}

/* ---- reference kernel ---- */

typedef struct xblock {
    const int8_t *qs;
    float d;
    const int16_t *bs;
    /* storage when quantizing on the fly */
    int8_t qbuf[TP_QK_K];
    int16_t sbuf[TP_QK_K / 16];
} xblock;

static void get_xblock(const tp_qgemm_args *a, size_t i, size_t b, size_t blk, xblock *xb) {
    if (a->xq) {
        const tp_qx *q = a->xq;
        xb->qs = q->qs + i * q->ldq + b * blk;
        xb->d = q->d[i * q->ldd + b];
        xb->bs = q->bs ? q->bs + i * q->ldb + b * (blk / 16) : NULL;
    } else {
        tp_qx_quantize_wblock(a->l->dtype, a->x + i * a->ldx + b * blk, xb->qbuf, &xb->d, xb->sbuf);
        xb->qs = xb->qbuf;
        xb->bs = blk == TP_QK_K ? xb->sbuf : NULL;
    }
}

static float ref_dot(const tp_qgemm_args *a, size_t i, const uint8_t *w, size_t K) {
    tp_dtype t = a->l->dtype;
    size_t blk = tp_qx_block(t), nb = K / blk;
    float acc = 0.0f;
    xblock xb;
    for (size_t b = 0; b < nb; b++) {
        get_xblock(a, i, b, blk, &xb);
        if (t == TP_DTYPE_Q8_0) {
            tp_block_q8_0 wb;
            memcpy(&wb, w + b * sizeof wb, sizeof wb);
            int32_t s = 0;
            for (int k = 0; k < 32; k++)
                s += (int32_t)wb.qs[k] * xb.qs[k];
            acc = fmaf(xb.d * tp_f16_to_f32(wb.d), (float)s, acc);
        } else if (t == TP_DTYPE_Q4_K) {
            tp_block_q4_k wb;
            memcpy(&wb, w + b * sizeof wb, sizeof wb);
            int32_t s1 = 0, s2 = 0;
            for (int j = 0; j < 8; j++) {
                uint8_t sc, m;
                tp_q4k_scale_min(wb.scales, j, &sc, &m);
                int32_t dot = 0;
                for (int l = 0; l < 32; l++) {
                    int e = 32 * j + l; /* element e: byte 32*(j/2) + l, nibble j%2 */
                    uint8_t byte = wb.qs[32 * (j / 2) + l];
                    int q = (j % 2) ? byte >> 4 : byte & 15;
                    dot += q * xb.qs[tp_qx_q4k_pos(e)];
                }
                s1 += sc * dot;
                s2 += m * (xb.bs[2 * j] + xb.bs[2 * j + 1]);
            }
            acc = fmaf(xb.d * tp_f16_to_f32(wb.d), (float)s1, acc);
            acc = fmaf(-(xb.d * tp_f16_to_f32(wb.dmin)), (float)s2, acc);
        } else {
            tp_block_q6_k wb;
            memcpy(&wb, w + b * sizeof wb, sizeof wb);
            int32_t s = 0;
            for (int j = 0; j < 16; j++) {
                int32_t dot = 0;
                for (int l = 0; l < 16; l++) {
                    int e = 16 * j + l, h = e / 128, r = e % 128, g = r / 32, ll = r % 32;
                    uint8_t lo = wb.ql[64 * h + ll + 32 * (g & 1)];
                    int q = (g < 2 ? lo & 15 : lo >> 4) | ((wb.qh[32 * h + ll] >> (2 * g)) & 3)
                                                              << 4;
                    dot += q * xb.qs[e];
                }
                s += wb.scales[j] * (dot - 32 * xb.bs[j]);
            }
            acc = fmaf(xb.d * tp_f16_to_f32(wb.d), (float)s, acc);
        }
    }
    return acc;
}

void tp_qgemm_ref(const tp_qgemm_args *a, size_t m0, size_t m1, size_t n0, size_t n1) {
    const tp_linear *l = a->l;
    size_t K = (size_t)l->n_in, rb = 0;
    bool ok = tp_dtype_row_bytes(l->dtype, K, &rb);
    TP_ASSERT(ok);
    (void)ok;
    for (size_t i = m0; i < m1; i++)
        for (size_t n = n0; n < n1; n++) {
            float acc = ref_dot(a, i, (const uint8_t *)l->w + n * rb, K);
            a->y[i * a->ldy + n] = l->bias ? acc + l->bias[n] : acc;
        }
}
