/*
 * test_quant.c — the reference block formats of quant.h:
 *   - tp_f32_to_f16 against fixed values, an exhaustive f16 round trip and (when
 *     the CPU has F16C) the hardware conversion on random floats;
 *   - dequantization of hand-built Q8_0 / Q4_K / Q6_K blocks whose expected
 *     values this file derives from the ggml layout description (its own
 *     element -> byte/bit mapping, scales that are powers of two so the f32
 *     products are exact and the comparison is bit-exact);
 *   - quantize -> dequantize error on Gaussian rows (relative RMS error bounds
 *     per type, justified in docs/kernels.md) and Q8_0's per-element half-step
 *     bound; zeros, constants, huge values;
 *   - non-finite inputs: counted, treated as 0, the rest of the block accurate;
 *   - tp_quantize_tensor: same bytes as row by row for pools of 1, 2, 7;
 *     errors for bad shapes and non-finite values.
 */
#include "kt_util.h"
#include "tensor/quant.h"

#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("f16c"))) static uint16_t hw_f16(float f) {
    return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}
#endif

static uint16_t f16_pow2(int e) { /* 2^e as f16 bits, normal range */
    return (uint16_t)((e + 15) << 10);
}

static void check_f16(void) {
    CHECK(tp_f32_to_f16(1.0f) == 0x3c00);
    CHECK(tp_f32_to_f16(-2.0f) == 0xc000);
    CHECK(tp_f32_to_f16(65504.0f) == 0x7bff);
    CHECK(tp_f32_to_f16(65519.0f) == 0x7bff);
    CHECK(tp_f32_to_f16(65520.0f) == 0x7c00);
    CHECK(tp_f32_to_f16(INFINITY) == 0x7c00);
    CHECK(tp_f32_to_f16(-INFINITY) == 0xfc00);
    CHECK((tp_f32_to_f16(NAN) & 0x7c00) == 0x7c00 && (tp_f32_to_f16(NAN) & 0x3ff) != 0);
    CHECK(tp_f32_to_f16(ldexpf(1.0f, -24)) == 0x0001);
    CHECK(tp_f32_to_f16(ldexpf(1.0f, -25)) == 0x0000); /* tie to even */
    CHECK(tp_f32_to_f16(ldexpf(1.5f, -25)) == 0x0001);
    CHECK(tp_f32_to_f16(ldexpf(3.0f, -25)) == 0x0002);        /* 1.5 ulp: tie to even */
    CHECK(tp_f32_to_f16(1.0f + ldexpf(1.0f, -11)) == 0x3c00); /* tie to even */
    CHECK(tp_f32_to_f16(1.0f + ldexpf(3.0f, -11)) == 0x3c02); /* tie to even (up) */
    CHECK(tp_f32_to_f16(ldexpf(1.0f, -14)) == 0x0400);
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff))
            continue; /* NaN */
        if (tp_f32_to_f16(tp_f16_to_f32((uint16_t)h)) != h)
            bad++;
    }
    CHECK(bad == 0);
#if defined(__x86_64__)
    if (tp_cpu_detect().f16c) {
        int mism = 0;
        for (int i = 0; i < 200000; i++) {
            uint32_t u = kt_rand_u32();
            float f;
            memcpy(&f, &u, 4);
            if (isnan(f))
                continue;
            if (tp_f32_to_f16(f) != hw_f16(f))
                mism++;
        }
        CHECK(mism == 0);
    }
#endif
}

/* ---- hand-built blocks ---- */

static void check_q8_0_block(void) {
    uint8_t raw[2 * 34];
    for (int b = 0; b < 2; b++) {
        uint16_t d = f16_pow2(b == 0 ? -1 : 3); /* 0.5 and 8 */
        memcpy(raw + 34 * b, &d, 2);
        for (int i = 0; i < 32; i++)
            raw[34 * b + 2 + i] = (uint8_t)(int8_t)(i * 8 - 128 + b);
    }
    float y[64];
    tp_dequantize_row(TP_DTYPE_Q8_0, raw, y, 64);
    int bad = 0;
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < 32; i++) {
            double want = (b == 0 ? 0.5 : 8.0) * (double)(i * 8 - 128 + b);
            bad += (double)y[32 * b + i] != want;
        }
    CHECK(bad == 0);
}

static void check_q4_k_block(void) {
    /* scales/mins chosen per sub-block, packed here by the spec's rules */
    uint8_t raw[144];
    uint16_t d = f16_pow2(-2), dmin = f16_pow2(-4); /* 0.25, 0.0625 */
    memcpy(raw, &d, 2);
    memcpy(raw + 2, &dmin, 2);
    int sc[8] = {1, 63, 17, 32, 5, 48, 63, 0}, mn[8] = {0, 63, 9, 40, 33, 2, 16, 63};
    uint8_t *s = raw + 4;
    memset(s, 0, 12);
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            s[j] |= (uint8_t)sc[j];
            s[j + 4] |= (uint8_t)mn[j];
        } else {
            s[j + 4] |= (uint8_t)((sc[j] & 15) | ((mn[j] & 15) << 4));
            s[j - 4] |= (uint8_t)((sc[j] >> 4) << 6);
            s[j] |= (uint8_t)((mn[j] >> 4) << 6);
        }
    }
    uint8_t q[256];
    for (int e = 0; e < 256; e++)
        q[e] = (uint8_t)(kt_rand_u32() & 15);
    uint8_t *qs = raw + 16;
    memset(qs, 0, 128);
    for (int e = 0; e < 256; e++) {
        int chunk = e / 64, within = e % 64;
        int byte = 32 * chunk + within % 32;
        qs[byte] |= (uint8_t)(within < 32 ? q[e] : q[e] << 4);
    }
    float y[256];
    tp_dequantize_row(TP_DTYPE_Q4_K, raw, y, 256);
    int bad = 0;
    for (int e = 0; e < 256; e++) {
        int j = e / 32;
        double want = 0.25 * sc[j] * q[e] - 0.0625 * mn[j];
        bad += (double)y[e] != want;
    }
    CHECK(bad == 0);
    /* the unpacking helper agrees with the packing above */
    for (int j = 0; j < 8; j++) {
        uint8_t a, b;
        tp_q4k_scale_min(s, j, &a, &b);
        CHECK(a == sc[j] && b == mn[j]);
    }
}

static void check_q6_k_block(void) {
    uint8_t raw[210];
    memset(raw, 0, sizeof raw);
    uint8_t q[256];
    int8_t sc[16];
    for (int e = 0; e < 256; e++)
        q[e] = (uint8_t)(kt_rand_u32() & 63);
    q[0] = 0;
    q[1] = 63;
    for (int j = 0; j < 16; j++)
        sc[j] = (int8_t)((int)(kt_rand_u32() % 256) - 128);
    sc[3] = -128;
    sc[4] = 127;
    uint8_t *ql = raw, *qh = raw + 128;
    for (int e = 0; e < 256; e++) {
        int h = e / 128, r = e % 128, grp = r / 32, l = r % 32;
        int lo_byte = 64 * h + l + (grp & 1) * 32;
        ql[lo_byte] |= (uint8_t)(grp < 2 ? (q[e] & 15) : (q[e] & 15) << 4);
        qh[32 * h + l] |= (uint8_t)((q[e] >> 4) << (2 * grp));
    }
    memcpy(raw + 192, sc, 16);
    uint16_t d = f16_pow2(-3);
    memcpy(raw + 208, &d, 2);
    float y[256];
    tp_dequantize_row(TP_DTYPE_Q6_K, raw, y, 256);
    int bad = 0;
    for (int e = 0; e < 256; e++)
        bad += (double)y[e] != 0.125 * sc[e / 16] * ((int)q[e] - 32);
    CHECK(bad == 0);
}

/* ---- round trips ---- */

static float gauss(void) {
    double u1 = ((double)kt_rand_u32() + 1.0) / 4294967297.0;
    double u2 = (double)kt_rand_u32() / 4294967296.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

static double rel_rms(tp_dtype t, const float *x, size_t n, float *y) {
    size_t bytes;
    CHECK(tp_dtype_row_bytes(t, n, &bytes));
    void *q = tp_malloc(bytes);
    CHECK(tp_quantize_row(t, x, q, n) == 0);
    tp_dequantize_row(t, q, y, n);
    tp_free(q);
    double se = 0, ss = 0;
    for (size_t i = 0; i < n; i++) {
        se += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
        ss += (double)x[i] * x[i];
    }
    return ss > 0 ? sqrt(se / ss) : sqrt(se);
}

static void check_round_trip(void) {
    const size_t n = 256 * 256;
    float *x = kt_alloc(n), *y = kt_alloc(n);
    for (size_t i = 0; i < n; i++)
        x[i] = gauss() * 0.02f;
    /* bounds: uniform rounding noise step/sqrt(12) at the step each format's
     * block maximum implies on N(0,1) data (docs/kernels.md), plus margin */
    double e8 = rel_rms(TP_DTYPE_Q8_0, x, n, y);
    double e6 = rel_rms(TP_DTYPE_Q6_K, x, n, y);
    double e4 = rel_rms(TP_DTYPE_Q4_K, x, n, y);
    double ef16 = rel_rms(TP_DTYPE_F16, x, n, y);
    double ebf = rel_rms(TP_DTYPE_BF16, x, n, y);
    printf("relative RMS error on N(0, 0.02^2): Q8_0 %.5f  Q6_K %.5f  Q4_K %.5f  F16 %.6f  BF16 "
           "%.6f\n",
           e8, e6, e4, ef16, ebf);
    CHECK(e8 < 0.0060);
    CHECK(e6 < 0.0200);
    CHECK(e4 < 0.0900);
    CHECK(ef16 < 3e-4);
    CHECK(ebf < 3e-3);
    /* Q8_0 per element: within half a step of the stored scale */
    size_t bytes;
    CHECK(tp_dtype_row_bytes(TP_DTYPE_Q8_0, n, &bytes));
    uint8_t *q = tp_malloc(bytes);
    tp_quantize_row(TP_DTYPE_Q8_0, x, q, n);
    tp_dequantize_row(TP_DTYPE_Q8_0, q, y, n);
    int bad = 0;
    for (size_t b = 0; b < n / 32; b++) {
        uint16_t dh;
        memcpy(&dh, q + 34 * b, 2);
        double d = tp_f16_to_f32(dh);
        for (int i = 0; i < 32; i++)
            bad += fabs((double)y[32 * b + i] - x[32 * b + i]) > 0.5 * d * (1 + 1e-6);
    }
    CHECK(bad == 0);
    tp_free(q);
    /* a data-scale sweep: relative error holds over magnitudes */
    for (int p = -12; p <= 12; p += 6) {
        for (size_t i = 0; i < 4096; i++)
            x[i] = gauss() * ldexpf(1.0f, p);
        double a = rel_rms(TP_DTYPE_Q8_0, x, 4096, y), b = rel_rms(TP_DTYPE_Q6_K, x, 4096, y),
               c = rel_rms(TP_DTYPE_Q4_K, x, 4096, y);
        printf("sigma 2^%d: Q8_0 %.5f  Q6_K %.5f  Q4_K %.5f\n", p, a, b, c);
        CHECK(a < 0.0060);
        CHECK(b < 0.0200);
        CHECK(c < 0.0900);
    }
    /* non-Gaussian: shifted positive data (Q4_K's mins at work), one outlier */
    for (size_t i = 0; i < 4096; i++)
        x[i] = 1.0f + 0.1f * gauss();
    CHECK(rel_rms(TP_DTYPE_Q4_K, x, 4096, y) < 0.035); /* mins >= 0: the range starts at 0 */
    for (size_t i = 0; i < 4096; i++)
        x[i] = gauss();
    x[100] = 40.0f;
    CHECK(rel_rms(TP_DTYPE_Q6_K, x, 4096, y) < 0.05);
    CHECK(rel_rms(TP_DTYPE_Q4_K, x, 4096, y) < 0.15);
    tp_free(x);
    tp_free(y);
}

static void check_special(void) {
    tp_dtype types[3] = {TP_DTYPE_Q8_0, TP_DTYPE_Q4_K, TP_DTYPE_Q6_K};
    float x[512], y[512];
    uint8_t q[512 * 2];
    for (int k = 0; k < 3; k++) {
        tp_dtype t = types[k];
        /* zeros */
        memset(x, 0, sizeof x);
        CHECK(tp_quantize_row(t, x, q, 512) == 0);
        tp_dequantize_row(t, q, y, 512);
        int bad = 0;
        for (int i = 0; i < 512; i++)
            bad += y[i] != 0.0f;
        CHECK(bad == 0);
        /* constants: exact for constants that are representable */
        for (int i = 0; i < 512; i++)
            x[i] = i < 256 ? 0.5f : -3.0f;
        tp_quantize_row(t, x, q, 512);
        tp_dequantize_row(t, q, y, 512);
        bad = 0;
        for (int i = 0; i < 512; i++)
            bad += fabsf(y[i] - x[i]) > 0.02f * fabsf(x[i]);
        CHECK(bad == 0);
        /* huge and tiny values stay finite */
        for (int i = 0; i < 512; i++)
            x[i] = (i % 2 ? 1e30f : -1e-30f) * (float)(i % 7 + 1);
        tp_quantize_row(t, x, q, 512);
        tp_dequantize_row(t, q, y, 512);
        bad = 0;
        for (int i = 0; i < 512; i++)
            bad += !isfinite(y[i]);
        CHECK(bad == 0);
        /* non-finite inputs: counted, stored as 0, the others still accurate */
        for (int i = 0; i < 512; i++)
            x[i] = gauss();
        x[3] = NAN;
        x[300] = INFINITY;
        x[301] = -INFINITY;
        CHECK(tp_quantize_row(t, x, q, 512) == 3);
        tp_dequantize_row(t, q, y, 512);
        bad = 0;
        for (int i = 0; i < 512; i++) {
            float want = (i == 3 || i == 300 || i == 301) ? 0.0f : x[i];
            bad += !(fabsf(y[i] - want) < 0.35f);
        }
        CHECK(bad == 0);
    }
}

static void check_tensor(void) {
    const size_t rows = 37, cols = 512;
    float *x = kt_alloc(rows * cols);
    for (size_t i = 0; i < rows * cols; i++)
        x[i] = gauss();
    tp_dtype types[6] = {TP_DTYPE_Q8_0, TP_DTYPE_Q4_K, TP_DTYPE_Q6_K,
                         TP_DTYPE_F16,  TP_DTYPE_BF16, TP_DTYPE_F32};
    tp_pool *pools[3] = {kt_pool(1), kt_pool(2), kt_pool(7)};
    for (int k = 0; k < 6; k++) {
        size_t bytes, rb;
        CHECK(tp_tensor_bytes(types[k], rows, cols, &bytes));
        CHECK(tp_dtype_row_bytes(types[k], cols, &rb) && bytes == rb * rows);
        uint8_t *ref = tp_malloc(bytes), *got = tp_malloc(bytes);
        for (size_t r = 0; r < rows; r++)
            tp_quantize_row(types[k], x + r * cols, ref + r * rb, cols);
        tp_error err = {0};
        CHECK(tp_quantize_tensor(NULL, types[k], x, rows, cols, got, &err) == TP_OK);
        CHECK(memcmp(ref, got, bytes) == 0);
        for (int p = 0; p < 3; p++) {
            memset(got, 0xa5, bytes);
            CHECK(tp_quantize_tensor(pools[p], types[k], x, rows, cols, got, &err) == TP_OK);
            CHECK(memcmp(ref, got, bytes) == 0);
        }
        tp_free(ref);
        tp_free(got);
    }
    size_t bytes;
    CHECK(!tp_tensor_bytes(TP_DTYPE_Q4_K, 2, 100, &bytes));
    CHECK(!tp_tensor_bytes(TP_DTYPE_Q8_0, SIZE_MAX / 2, 64, &bytes));
    uint8_t *q = tp_malloc(rows * cols * 2);
    tp_error err = {0};
    CHECK(tp_quantize_tensor(NULL, TP_DTYPE_Q4_K, x, 2, 100, q, &err) == TP_ERR_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "multiple") != NULL);
    CHECK(tp_quantize_tensor(NULL, TP_DTYPE_I32, x, 2, 64, q, &err) == TP_ERR_INVALID_ARGUMENT);
    x[5 * cols + 7] = NAN;
    x[9 * cols + 1] = INFINITY;
    CHECK(tp_quantize_tensor(pools[1], TP_DTYPE_Q8_0, x, rows, cols, q, &err) == TP_ERR_FORMAT);
    CHECK(strstr(err.message, "2 non-finite") != NULL && strstr(err.message, "row 5") != NULL);
    tp_free(q);
    for (int p = 0; p < 3; p++)
        tp_pool_destroy(pools[p]);
    tp_aligned_free(x);
}

/* tp_embed on quantized tables: the looked-up rows, decoded, times scale, on
 * every ISA level */
static void check_embed(void) {
    const size_t vocab = 7, dim = 512;
    float *tab = kt_alloc(vocab * dim), *out = kt_alloc(4 * dim), *row = kt_alloc(dim);
    for (size_t i = 0; i < vocab * dim; i++)
        tab[i] = gauss();
    tp_dtype types[3] = {TP_DTYPE_Q8_0, TP_DTYPE_Q4_K, TP_DTYPE_Q6_K};
    int32_t ids[4] = {6, 0, 3, 6};
    tp_isa isas[3];
    int n_isa = kt_isas(isas);
    for (int k = 0; k < 3; k++) {
        size_t bytes, rb;
        CHECK(tp_tensor_bytes(types[k], vocab, dim, &bytes));
        CHECK(tp_dtype_row_bytes(types[k], dim, &rb));
        uint8_t *q = tp_malloc(bytes);
        CHECK(tp_quantize_tensor(NULL, types[k], tab, vocab, dim, q, NULL) == TP_OK);
        for (int ii = 0; ii < n_isa; ii++) {
            kt_set_isa(isas[ii]);
            tp_embed(q, types[k], ids, 4, dim, 2.0f, out);
            int bad = 0;
            for (int r = 0; r < 4; r++) {
                tp_dequantize_row(types[k], q + (size_t)ids[r] * rb, row, dim);
                for (size_t i = 0; i < dim; i++)
                    bad += out[r * dim + i] != row[i] * 2.0f;
                for (size_t i = 0; i < dim; i++) /* and close to the source */
                    bad += fabsf(row[i] - tab[(size_t)ids[r] * dim + i]) > 0.6f;
            }
            CHECK(bad == 0);
        }
        tp_free(q);
    }
    kt_set_isa(isas[n_isa - 1]);
    tp_aligned_free(tab);
    tp_aligned_free(out);
    tp_aligned_free(row);
}

int main(void) {
    check_f16();
    check_q8_0_block();
    check_q4_k_block();
    check_q6_k_block();
    check_round_trip();
    check_special();
    check_tensor();
    check_embed();
    return tp_test_exit();
}
