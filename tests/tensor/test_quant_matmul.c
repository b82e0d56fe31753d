/*
 * test_quant_matmul.c — tp_matmul with Q8_0 / Q4_K / Q6_K weights on every ISA
 * level this CPU runs:
 *   accuracy: against a float64 oracle that multiplies x by the dequantized
 *     weights (tp_dequantize_row, itself checked against hand-built blocks in
 *     test_quant.c). The kernels quantize x per block to int8 with step
 *     d = amax/127, so |x - x^| <= d/2 per element and the error of y[i][n] is
 *     at most sum_blocks (amax_b/254) sum_{k in b} |w_k| — the bound checked,
 *     with 1 % slack for the scale roundings, plus 1e-5 of sum |x w| for the
 *     f32 accumulation (and sums above 2^24 converted to f32);
 *   ISA agreement: AVX2 and AVX-512 (with and without VNNI instructions) give
 *     the scalar reference's bits;
 *   batch invariance: each checked row is bit-identical alone (M=1), inside
 *     the full call (M up to 67) and with every other row changed;
 *   thread-count invariance: no pool and pools of 1, 2, 7 give the same bits;
 *   bf16 compute gives the f32-mode bits (quantized weights have one path);
 *   a NaN in one row makes that row NaN only; an allocation failure for the
 *     quantized activations falls back to the reference with the same bits;
 *   blocks of random bytes (all levels and scale patterns, Q8_0's -128,
 *     negative Q6_K scales) give the same bits on every ISA variant;
 *   tp_linear_prepare accepts quantized weights (no copy) and rejects n_in
 *     that is not a whole number of blocks.
 * Shapes: M 1..67, N not a multiple of the 4-column tile, K = 32k / 256k.
 */
#include "kt_util.h"
#include "tensor/quant.h"

#include <math.h>

static float gauss(void) {
    double u1 = ((double)kt_rand_u32() + 1.0) / 4294967297.0;
    double u2 = (double)kt_rand_u32() / 4294967296.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

typedef struct qcase {
    tp_dtype t;
    size_t m, n, k;
} qcase;

static void matmul(tp_pool *pool, const tp_linear *l, const float *x, size_t ldx, float *y,
                   size_t ldy, size_t m) {
    tp_matmul(pool, l, x, ldx, y, ldy, m, TP_COMPUTE_F32);
}

static void check_case(const tp_isa *isas, int n_isa, qcase qc, bool with_bias, tp_pool **pools) {
    size_t M = qc.m, N = qc.n, K = qc.k, ldx = K + 3, ldy = N + 2, rb;
    CHECK(tp_dtype_row_bytes(qc.t, K, &rb));
    float *wf = kt_alloc(N * K), *wdq = kt_alloc(N * K);
    for (size_t i = 0; i < N * K; i++)
        wf[i] = gauss() * 0.05f;
    uint8_t *w = tp_aligned_alloc(N, rb);
    CHECK(tp_quantize_tensor(NULL, qc.t, wf, N, K, w, NULL) == TP_OK);
    for (size_t n = 0; n < N; n++)
        tp_dequantize_row(qc.t, w + n * rb, wdq + n * K, K);
    float *bias = NULL;
    if (with_bias) {
        bias = kt_alloc(N);
        for (size_t n = 0; n < N; n++)
            bias[n] = gauss();
    }
    float *x = kt_alloc(M * ldx), *x2 = kt_alloc(M * ldx);
    for (size_t i = 0; i < M * ldx; i++) {
        x[i] = gauss() * (i % 97 == 5 ? 8.0f : 1.0f); /* a few outliers */
        x2[i] = gauss();
    }
    float *y = kt_alloc(M * ldy), *yref = kt_alloc(M * ldy), *y2 = kt_alloc(M * ldy);
    tp_linear l = {w, qc.t, (int64_t)N, (int64_t)K, bias, NULL};
    tp_error err = {0};
    CHECK(tp_linear_prepare(&l, TP_COMPUTE_BF16, &err) == TP_OK && l.packed == NULL);
    size_t blk = qc.t == TP_DTYPE_Q8_0 ? 32 : 256;

    /* the last variant: AVX-512 without VNNI instructions */
    bool has512 = isas[n_isa - 1] == TP_ISA_AVX512;
    for (int ii = 0; ii < n_isa + has512; ii++) {
        kt_set_isa(isas[ii < n_isa ? ii : n_isa - 1]);
        tp_qgemm_avx512_set_vnni(ii < n_isa);
        const char *isa = ii < n_isa ? tp_isa_name(isas[ii]) : "avx512-novnni";
        matmul(NULL, &l, x, ldx, y, ldy, M);
        if (ii == 0) {
            memcpy(yref, y, M * ldy * sizeof(float));
            /* accuracy against the float64 oracle */
            int bad = 0;
            double worst = 0;
            for (size_t i = 0; i < M; i++)
                for (size_t n = 0; n < N; n++) {
                    double acc = bias ? bias[n] : 0.0, mag = 0, bound = 0;
                    for (size_t b = 0; b < K / blk; b++) {
                        double amax = 0, wabs = 0;
                        for (size_t k = b * blk; k < (b + 1) * blk; k++) {
                            double xv = x[i * ldx + k], wv = wdq[n * K + k];
                            acc += xv * wv;
                            mag += fabs(xv * wv);
                            amax = fmax(amax, fabs(xv));
                            wabs += fabs(wv);
                        }
                        bound += amax / 254.0 * wabs;
                    }
                    double tol = 1.01 * bound + 1e-5 * mag + 1e-30;
                    double e = fabs((double)y[i * ldy + n] - acc);
                    bad += !(e <= tol);
                    worst = fmax(worst, e / tol);
                }
            CHECK_MSG(bad == 0, "%s %s M=%zu N=%zu K=%zu: %d outputs beyond the bound (worst %.3g)",
                      isa, tp_dtype_name(qc.t), M, N, K, bad, worst);
        } else {
            bool same = true;
            for (size_t i = 0; i < M; i++)
                same = same && kt_same_bits(y + i * ldy, yref + i * ldy, N);
            CHECK_MSG(same, "%s %s M=%zu N=%zu K=%zu: differs from the scalar reference", isa,
                      tp_dtype_name(qc.t), M, N, K);
        }
        /* thread-count invariance */
        for (int p = 0; p < 3; p++) {
            memset(y2, 0, M * ldy * sizeof(float));
            matmul(pools[p], &l, x, ldx, y2, ldy, M);
            bool same = true;
            for (size_t i = 0; i < M; i++)
                same = same && kt_same_bits(y + i * ldy, y2 + i * ldy, N);
            CHECK_MSG(same, "%s %s M=%zu N=%zu K=%zu: pool %d differs", isa, tp_dtype_name(qc.t), M,
                      N, K, p);
        }
        /* bf16 compute: the same path */
        memset(y2, 0, M * ldy * sizeof(float));
        tp_matmul(pools[1], &l, x, ldx, y2, ldy, M, TP_COMPUTE_BF16);
        bool same = true;
        for (size_t i = 0; i < M; i++)
            same = same && kt_same_bits(y + i * ldy, y2 + i * ldy, N);
        CHECK(same);
        /* batch invariance: rows alone, and with every other row changed */
        size_t rows[3] = {0, M / 2, M - 1};
        for (int r = 0; r < 3; r++) {
            size_t i = rows[r];
            matmul(pools[2], &l, x + i * ldx, ldx, y2, ldy, 1);
            CHECK_MSG(kt_same_bits(y2, y + i * ldy, N), "%s %s M=1 row %zu differs", isa,
                      tp_dtype_name(qc.t), i);
        }
        memcpy(x2 + (M / 2) * ldx, x + (M / 2) * ldx, K * sizeof(float));
        matmul(pools[1], &l, x2, ldx, y2, ldy, M);
        CHECK_MSG(kt_same_bits(y2 + (M / 2) * ldy, y + (M / 2) * ldy, N),
                  "%s %s M=%zu: row depends on the other rows", isa, tp_dtype_name(qc.t), M);
    }
    tp_qgemm_avx512_set_vnni(true);
    tp_aligned_free(w);
    tp_aligned_free(wf);
    tp_aligned_free(wdq);
    tp_aligned_free(bias);
    tp_aligned_free(x);
    tp_aligned_free(x2);
    tp_aligned_free(y);
    tp_aligned_free(y2);
    tp_aligned_free(yref);
}

/* NaN in one row, allocation failure, prepare errors */
static void check_edges(const tp_isa *isas, int n_isa) {
    const size_t M = 5, N = 9, K = 512;
    tp_dtype types[3] = {TP_DTYPE_Q8_0, TP_DTYPE_Q4_K, TP_DTYPE_Q6_K};
    for (int t = 0; t < 3; t++) {
        size_t rb;
        CHECK(tp_dtype_row_bytes(types[t], K, &rb));
        float *wf = kt_alloc(N * K), *x = kt_alloc(M * K), *y = kt_alloc(M * N),
              *y2 = kt_alloc(M * N);
        for (size_t i = 0; i < N * K; i++)
            wf[i] = gauss();
        for (size_t i = 0; i < M * K; i++)
            x[i] = gauss();
        uint8_t *w = tp_aligned_alloc(N, rb);
        CHECK(tp_quantize_tensor(NULL, types[t], wf, N, K, w, NULL) == TP_OK);
        tp_linear l = {w, types[t], (int64_t)N, (int64_t)K, NULL, NULL};
        for (int ii = 0; ii < n_isa; ii++) {
            kt_set_isa(isas[ii]);
            matmul(NULL, &l, x, K, y, N, M);
            /* allocation failure: reference fallback, same bits */
            tp_alloc_fail_set(1, false);
            matmul(NULL, &l, x, K, y2, N, M);
            CHECK(tp_alloc_fail_hit());
            tp_alloc_fail_set(0, false);
            CHECK(kt_same_bits(y, y2, M * N));
            /* NaN in row 2 */
            float keep = x[2 * K + 300];
            x[2 * K + 300] = NAN;
            matmul(NULL, &l, x, K, y2, N, M);
            x[2 * K + 300] = keep;
            int nan_rows = 0, others_same = 1;
            for (size_t n = 0; n < N; n++)
                nan_rows += isnan(y2[2 * N + n]);
            for (size_t i = 0; i < M; i++)
                if (i != 2)
                    others_same &= kt_same_bits(y + i * N, y2 + i * N, N);
            CHECK(nan_rows == (int)N && others_same);
        }
        tp_linear bad = {w, types[t], (int64_t)N, (int64_t)K - 16, NULL, NULL};
        tp_error err = {0};
        CHECK(tp_linear_prepare(&bad, TP_COMPUTE_F32, &err) == TP_ERR_INVALID_ARGUMENT);
        CHECK(strstr(err.message, "block") != NULL);
        tp_aligned_free(w);
        tp_aligned_free(wf);
        tp_aligned_free(x);
        tp_aligned_free(y);
        tp_aligned_free(y2);
    }
}

/* Blocks of arbitrary bytes (every level, Q8_0 weights of -128, negative Q6_K
 * scales, all 6-bit scale/min patterns), with finite f16 scales: every ISA
 * variant gives the reference's bits, and the reference stays within the
 * activation-rounding bound of the float64 product with the decoded blocks. */
static void check_raw_blocks(const tp_isa *isas, int n_isa) {
    const size_t M = 6, N = 11, K = 1024;
    tp_dtype types[3] = {TP_DTYPE_Q8_0, TP_DTYPE_Q4_K, TP_DTYPE_Q6_K};
    for (int t = 0; t < 3; t++) {
        size_t rb, bb = tp_dtype_block_bytes(types[t]), blk = tp_dtype_block(types[t]);
        CHECK(tp_dtype_row_bytes(types[t], K, &rb));
        uint8_t *w = tp_aligned_alloc(N, rb);
        for (size_t i = 0; i < N * rb; i++)
            w[i] = (uint8_t)kt_rand_u32();
        /* f16 scales in [2^-10, 2^-3), either sign */
        size_t d_off[2] = {0, 2}, n_d = types[t] == TP_DTYPE_Q4_K ? 2 : 1;
        if (types[t] == TP_DTYPE_Q6_K)
            d_off[0] = 208;
        for (size_t b = 0; b < N * rb / bb; b++)
            for (size_t j = 0; j < n_d; j++) {
                uint32_t r = kt_rand_u32();
                uint16_t h =
                    (uint16_t)(((r & 1) << 15) | ((5 + (r >> 1) % 7) << 10) | ((r >> 8) & 0x3ff));
                memcpy(w + b * bb + d_off[j], &h, 2);
            }
        float *x = kt_alloc(M * K), *y = kt_alloc(M * N), *yref = kt_alloc(M * N),
              *wd = kt_alloc(N * K);
        for (size_t i = 0; i < M * K; i++)
            x[i] = gauss();
        for (size_t n = 0; n < N; n++)
            tp_dequantize_row(types[t], w + n * rb, wd + n * K, K);
        tp_linear l = {w, types[t], (int64_t)N, (int64_t)K, NULL, NULL};
        bool has512 = isas[n_isa - 1] == TP_ISA_AVX512;
        for (int ii = 0; ii < n_isa + has512; ii++) {
            kt_set_isa(isas[ii < n_isa ? ii : n_isa - 1]);
            tp_qgemm_avx512_set_vnni(ii < n_isa);
            matmul(NULL, &l, x, K, ii == 0 ? yref : y, N, M);
            if (ii > 0)
                CHECK_MSG(kt_same_bits(y, yref, M * N), "%s raw blocks: variant %d differs",
                          tp_dtype_name(types[t]), ii);
        }
        tp_qgemm_avx512_set_vnni(true);
        int bad = 0;
        for (size_t i = 0; i < M; i++)
            for (size_t n = 0; n < N; n++) {
                double acc = 0, mag = 0, bound = 0;
                for (size_t b = 0; b < K / blk; b++) {
                    double amax = 0, wabs = 0;
                    for (size_t k = b * blk; k < (b + 1) * blk; k++) {
                        acc += (double)x[i * K + k] * wd[n * K + k];
                        mag += fabs((double)x[i * K + k] * wd[n * K + k]);
                        amax = fmax(amax, fabs(x[i * K + k]));
                        wabs += fabs(wd[n * K + k]);
                    }
                    bound += amax / 254.0 * wabs;
                }
                bad += !(fabs((double)yref[i * N + n] - acc) <= 1.01 * bound + 1e-5 * mag);
            }
        CHECK_MSG(bad == 0, "%s raw blocks: %d outputs beyond the bound", tp_dtype_name(types[t]),
                  bad);
        tp_aligned_free(w);
        tp_aligned_free(x);
        tp_aligned_free(y);
        tp_aligned_free(yref);
        tp_aligned_free(wd);
    }
}

int main(void) {
    tp_isa isas[3];
    int n_isa = kt_isas(isas);
    tp_pool *pools[3] = {kt_pool(1), kt_pool(2), kt_pool(7)};
    qcase cases[] = {
        {TP_DTYPE_Q8_0, 1, 1, 32},     {TP_DTYPE_Q8_0, 3, 7, 96},     {TP_DTYPE_Q8_0, 67, 37, 512},
        {TP_DTYPE_Q8_0, 1, 130, 1024}, {TP_DTYPE_Q8_0, 16, 64, 2048}, {TP_DTYPE_Q4_K, 1, 1, 256},
        {TP_DTYPE_Q4_K, 2, 5, 512},    {TP_DTYPE_Q4_K, 67, 37, 768},  {TP_DTYPE_Q4_K, 1, 130, 1024},
        {TP_DTYPE_Q4_K, 16, 64, 2048}, {TP_DTYPE_Q6_K, 1, 1, 256},    {TP_DTYPE_Q6_K, 5, 6, 512},
        {TP_DTYPE_Q6_K, 67, 37, 768},  {TP_DTYPE_Q6_K, 1, 130, 1024}, {TP_DTYPE_Q6_K, 16, 64, 2048},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        check_case(isas, n_isa, cases[c], c % 2 == 1, pools);
    check_edges(isas, n_isa);
    check_raw_blocks(isas, n_isa);
    for (int p = 0; p < 3; p++)
        tp_pool_destroy(pools[p]);
    return tp_test_exit();
}
