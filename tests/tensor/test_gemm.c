/*
 * test_gemm.c — tp_matmul on every ISA level this CPU runs:
 *   accuracy: against a float64 oracle written here (not the code under test),
 *     within TOL_GEMM of sum_k |x_k w_k| (f32 and bf16 compute; the bf16 oracle
 *     rounds x to bf16 first), and bf16 mode against f32 mode within
 *     TOL_BF16_VS_F32 (the documented looser tolerance of the bf16 mode);
 *   batch invariance: every checked row is bit-identical when computed alone
 *     (M=1), inside the full call (M up to 4097) and with all other rows changed;
 *   thread-count invariance: bit-identical with no pool and pools of 1, 2, 7.
 * Shapes: 1, 3, 17, 63, 4097 and other non-multiples of the vector widths.
 */
#include "kt_util.h"

#define TOL_GEMM 1e-5        /* relative to sum_k |x_k w_k|, plus 1e-30 */
#define TOL_BF16_VS_F32 8e-3 /* bf16 activations: relative rounding <= 2^-9 each */

/* Random weights stored in `dtype`; `wd` receives the exact stored values. */
static void *make_weights(tp_dtype dtype, size_t n, double *wd) {
    if (dtype == TP_DTYPE_F32) {
        float *w = kt_alloc(n);
        for (size_t i = 0; i < n; i++) {
            w[i] = kt_uniform(-1.0f, 1.0f);
            wd[i] = w[i];
        }
        return w;
    }
    uint16_t *w = tp_aligned_alloc(n ? n : 1, 2);
    for (size_t i = 0; i < n; i++) {
        uint32_t r = kt_rand_u32();
        uint32_t sign = r & 1, mant = (r >> 1) & 0x7f;
        int e = (int)((r >> 8) % 8); /* magnitudes in [2^-8, 2^0) */
        if (dtype == TP_DTYPE_BF16) {
            /* bf16: 8 exponent bits (bias 127), 7 mantissa bits */
            w[i] = (uint16_t)((sign << 15) | ((uint32_t)(127 - 8 + e) << 7) | mant);
            wd[i] = (sign ? -1.0 : 1.0) * ldexp(1.0 + mant / 128.0, e - 8);
        } else {
            /* f16: 5 exponent bits (bias 15), 10 mantissa bits */
            uint32_t m10 = (r >> 11) & 0x3ff;
            w[i] = (uint16_t)((sign << 15) | ((uint32_t)(15 - 8 + e) << 10) | m10);
            wd[i] = (sign ? -1.0 : 1.0) * ldexp(1.0 + m10 / 1024.0, e - 8);
        }
    }
    return w;
}

static double bf16_round_d(float v) {
    /* round to nearest even on the 16 dropped bits, done on the bit pattern in
     * integer arithmetic (independent of tp_f32_to_bf16) */
    uint32_t u;
    memcpy(&u, &v, 4);
    uint32_t lower = u & 0xffff, upper = u >> 16;
    if (lower > 0x8000 || (lower == 0x8000 && (upper & 1)))
        upper++;
    uint32_t r = upper << 16;
    float f;
    memcpy(&f, &r, 4);
    return f;
}

typedef struct shape {
    size_t m, k, n;
} shape;

static void check_case(tp_isa isa, tp_dtype dtype, tp_compute compute, shape s, bool with_bias,
                       tp_pool **pools) {
    size_t M = s.m, K = s.k, N = s.n;
    size_t ldx = K + (K % 3), ldy = N + 1; /* strides wider than the rows */
    double *wd = malloc(N * K * sizeof(double)), *wd0 = malloc(N * K * sizeof(double));
    void *w = make_weights(dtype, N * K, wd);
    memcpy(wd0, wd, N * K * sizeof(double));
    float *bias = with_bias ? kt_random(N, -0.5f, 0.5f) : NULL;
    float *x = kt_random(M * ldx, -2.0f, 2.0f);
    float *y = kt_alloc(M * ldy), *y2 = kt_alloc(M * ldy);
    tp_linear l = {w, dtype, (int64_t)N, (int64_t)K, bias, NULL};
    tp_error err = {0};
    CHECK(tp_linear_prepare(&l, compute, &err) == TP_OK);
    /* bf16 mode: x rounded to bf16; f32/f16 weights run on the bf16 copy
     * tp_linear_prepare made, so the oracle rounds them too */
    bool bf16 = compute == TP_COMPUTE_BF16;
    if (bf16 && dtype != TP_DTYPE_BF16) {
        void *first = l.packed;
        CHECK(first != NULL);
        CHECK(tp_linear_prepare(&l, compute, &err) == TP_OK && l.packed == first); /* idempotent */
    } else {
        CHECK(l.packed == NULL); /* used in place */
    }
    if (bf16 && dtype != TP_DTYPE_BF16)
        for (size_t i = 0; i < N * K; i++)
            wd[i] = bf16_round_d((float)wd[i]);
    kt_set_isa(isa);
    tp_matmul(NULL, &l, x, ldx, y, ldy, M, compute);

    /* accuracy against the float64 oracle (on a sample of rows when M is large) */
    size_t step = M > 64 ? M / 37 + 1 : 1;
    double worst = 0;
    for (size_t i = 0; i < M; i += step) {
        for (size_t n = 0; n < N; n++) {
            double acc = 0, mag = 0;
            for (size_t k = 0; k < K; k++) {
                double xv = bf16 ? bf16_round_d(x[i * ldx + k]) : x[i * ldx + k];
                acc += xv * wd[n * K + k];
                mag += fabs(xv * wd[n * K + k]);
            }
            if (bias)
                acc += bias[n], mag += fabs(bias[n]);
            double e = fabs(y[i * ldy + n] - acc) / (mag + 1e-30);
            if (e > worst)
                worst = e;
        }
    }
    CHECK_MSG(worst <= TOL_GEMM, "%s %s %s M=%zu K=%zu N=%zu: rel err %.3g > %g", tp_isa_name(isa),
              tp_dtype_name(dtype), bf16 ? "bf16" : "f32", M, K, N, worst, TOL_GEMM);

    /* bf16 mode vs f32 mode */
    if (bf16) {
        tp_matmul(NULL, &l, x, ldx, y2, ldy, M, TP_COMPUTE_F32);
        double w2 = 0;
        for (size_t i = 0; i < M; i += step)
            for (size_t n = 0; n < N; n++) {
                double mag = 0;
                for (size_t k = 0; k < K; k++)
                    mag += fabs((double)x[i * ldx + k] * wd0[n * K + k]);
                if (bias)
                    mag += fabs(bias[n]);
                double e = fabs((double)y[i * ldy + n] - y2[i * ldy + n]) / (mag + 1e-30);
                w2 = e > w2 ? e : w2;
            }
        CHECK_MSG(w2 <= TOL_BF16_VS_F32, "%s bf16 vs f32 M=%zu K=%zu N=%zu: %.3g", tp_isa_name(isa),
                  M, K, N, w2);
    }

    /* thread-count invariance */
    for (int p = 0; p < 3; p++) {
        for (size_t i = 0; i < M * ldy; i++)
            y2[i] = 0.0f;
        tp_matmul(pools[p], &l, x, ldx, y2, ldy, M, compute);
        bool same = true;
        for (size_t i = 0; i < M; i++)
            same = same && kt_same_bits(y + i * ldy, y2 + i * ldy, N);
        CHECK_MSG(same, "%s M=%zu K=%zu N=%zu: threads=%d differs", tp_isa_name(isa), M, K, N,
                  tp_pool_size(pools[p]));
    }

    /* batch invariance: rows alone, and with every other row changed */
    size_t rows[3] = {0, M / 2, M - 1};
    float *y1 = kt_alloc(N);
    for (int r = 0; r < 3; r++) {
        size_t i = rows[r];
        tp_matmul(pools[1], &l, x + i * ldx, ldx, y1, N, 1, compute);
        CHECK_MSG(kt_same_bits(y1, y + i * ldy, N), "%s M=%zu K=%zu N=%zu: row %zu alone differs",
                  tp_isa_name(isa), M, K, N, i);
    }
    float *x2 = kt_random(M * ldx, -3.0f, 3.0f);
    size_t keep = M / 2;
    memcpy(x2 + keep * ldx, x + keep * ldx, K * sizeof(float));
    tp_matmul(pools[2], &l, x2, ldx, y2, ldy, M, compute);
    CHECK_MSG(kt_same_bits(y2 + keep * ldy, y + keep * ldy, N),
              "%s M=%zu K=%zu N=%zu: row %zu changes with the other rows", tp_isa_name(isa), M, K,
              N, keep);

    tp_linear_release(&l);
    tp_aligned_free(x2);
    tp_aligned_free(y1);
    tp_aligned_free(x);
    tp_aligned_free(y);
    tp_aligned_free(y2);
    tp_aligned_free(bias);
    tp_aligned_free(w);
    free(wd);
    free(wd0);
}

static void check_prepare_errors(void) {
    tp_error err = {0};
    CHECK(tp_linear_prepare(NULL, TP_COMPUTE_F32, &err) == TP_ERR_INVALID_ARGUMENT);
    float w[4] = {0};
    tp_linear l = {w, TP_DTYPE_I32, 2, 2, NULL, NULL};
    CHECK(tp_linear_prepare(&l, TP_COMPUTE_F32, &err) == TP_ERR_UNSUPPORTED);
    CHECK(strstr(err.message, "I32") != NULL);
    l.dtype = TP_DTYPE_F32;
    l.n_in = 0;
    CHECK(tp_linear_prepare(&l, TP_COMPUTE_F32, &err) == TP_ERR_INVALID_ARGUMENT);
    l.n_in = 2;
    l.w = NULL;
    CHECK(tp_linear_prepare(&l, TP_COMPUTE_F32, &err) == TP_ERR_INVALID_ARGUMENT);
    l.w = w;
    CHECK(tp_linear_prepare(&l, (tp_compute)7, &err) == TP_ERR_INVALID_ARGUMENT);
    CHECK(tp_linear_prepare(&l, TP_COMPUTE_BF16, &err) == TP_OK);
    tp_linear_release(&l);
}

/* A hand-checkable product: x = [1 2 3], W rows [1 0 -1], [0.5 0.5 0.5] -> [-2, 3] (+bias) */
static void check_small_exact(tp_isa isa) {
    float x[3] = {1, 2, 3};
    float w[6] = {1, 0, -1, 0.5f, 0.5f, 0.5f};
    float b[2] = {10, -1};
    float y[2];
    tp_linear l = {w, TP_DTYPE_F32, 2, 3, b, NULL};
    kt_set_isa(isa);
    tp_matmul(NULL, &l, x, 3, y, 2, 1, TP_COMPUTE_F32);
    CHECK_MSG(y[0] == 8.0f && y[1] == 2.0f, "%s: got %g %g", tp_isa_name(isa), y[0], y[1]);
}

/* f32 weights without a prepared bf16 copy: the bf16 mode multiplies in f32 */
static void check_unprepared_bf16(tp_isa isa) {
    size_t M = 5, K = 70, N = 9;
    float *w = kt_random(N * K, -1, 1), *x = kt_random(M * K, -1, 1);
    float *y1 = kt_alloc(M * N), *y2 = kt_alloc(M * N);
    tp_linear l = {w, TP_DTYPE_F32, (int64_t)N, (int64_t)K, NULL, NULL};
    kt_set_isa(isa);
    tp_matmul(NULL, &l, x, K, y1, N, M, TP_COMPUTE_F32);
    tp_matmul(NULL, &l, x, K, y2, N, M, TP_COMPUTE_BF16);
    CHECK_MSG(kt_same_bits(y1, y2, M * N), "%s: unprepared f32 weights in bf16 mode",
              tp_isa_name(isa));
    tp_aligned_free(w);
    tp_aligned_free(x);
    tp_aligned_free(y1);
    tp_aligned_free(y2);
}

int main(void) {
    tp_isa isas[3];
    int n_isa = kt_isas(isas);
    tp_pool *pools[3] = {kt_pool(1), kt_pool(2), kt_pool(7)};
    check_prepare_errors();
    shape shapes[] = {{1, 1, 1},     {3, 17, 5},    {17, 63, 33}, {63, 64, 63},   {1, 1152, 70},
                      {5, 100, 130}, {4, 33, 17},   {2, 257, 31}, {4097, 40, 19}, {3, 17, 4097},
                      {2, 4097, 5},  {9, 2100, 13}, {6, 1100, 8}, {5, 3100, 7}};
    size_t n_shapes = sizeof shapes / sizeof shapes[0];
    tp_dtype dtypes[3] = {TP_DTYPE_F32, TP_DTYPE_BF16, TP_DTYPE_F16};
    for (int ii = 0; ii < n_isa; ii++) {
        check_small_exact(isas[ii]);
        check_unprepared_bf16(isas[ii]);
        for (int d = 0; d < 3; d++)
            for (int c = 0; c < 2; c++)
                for (size_t s = 0; s < n_shapes; s++)
                    check_case(isas[ii], dtypes[d], (tp_compute)c, shapes[s], s % 2 == 0, pools);
        printf("%s: gemm checked\n", tp_isa_name(isas[ii]));
    }
    for (int p = 0; p < 3; p++)
        tp_pool_destroy(pools[p]);
    return tp_test_exit();
}
