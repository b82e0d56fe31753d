/*
 * test_ops.c — the row-wise and element-wise kernels on every ISA level:
 * rmsnorm (w and 1+w), layernorm (with/without weight and bias), rope,
 * rope_inv_freq, softmax, GELU (erf, tanh), SiLU, GLU, embedding, add.
 *   accuracy: float64 oracles written here, named tolerances below;
 *   batch invariance: each row (or element) is bit-identical whether it is
 *     processed alone, at another position of a longer call, or next to
 *     different data; lengths 1, 3, 17, 63, 4097 and other odd sizes.
 * These kernels run on the calling thread (no pool), so thread-count
 * invariance reduces to the row invariance checked here: a model splitting the
 * rows over threads gets the same bits.
 */
#include "kt_util.h"

#define TOL_NORM 2e-6 /* abs+rel, per output element */
#define TOL_ROPE 2e-6 /* abs, inputs in [-1, 1) */
#define TOL_SOFTMAX 2e-6
#define TOL_ACT 3e-6 /* abs+rel */

static bool close_to(double got, double want, double tol) {
    return fabs(got - want) <= tol * (1.0 + fabs(want));
}

static const size_t dims[] = {1, 3, 17, 63, 64, 100, 1152, 4097};
#define N_DIMS (sizeof dims / sizeof dims[0])

/* ---- norms ---- */

static void check_rmsnorm(tp_isa isa, size_t dim, bool one_plus) {
    size_t rows = 5;
    float *x = kt_random(rows * dim, -3.0f, 3.0f), *w = kt_random(dim, -1.0f, 1.0f);
    float *out = kt_alloc(rows * dim), *o1 = kt_alloc(dim);
    kt_set_isa(isa);
    tp_rmsnorm(x, w, out, rows, dim, 1e-6f, one_plus);
    bool ok = true;
    for (size_t r = 0; r < rows; r++) {
        double ss = 0;
        for (size_t i = 0; i < dim; i++)
            ss += (double)x[r * dim + i] * x[r * dim + i];
        double inv = 1.0 / sqrt(ss / dim + 1e-6);
        for (size_t i = 0; i < dim; i++) {
            double g = one_plus ? 1.0 + (double)w[i] : w[i];
            ok = ok && close_to(out[r * dim + i], x[r * dim + i] * inv * g, TOL_NORM);
        }
    }
    CHECK_MSG(ok, "%s rmsnorm dim=%zu one_plus=%d", tp_isa_name(isa), dim, one_plus);
    /* row alone, and in place */
    tp_rmsnorm(x + 3 * dim, w, o1, 1, dim, 1e-6f, one_plus);
    CHECK_MSG(kt_same_bits(o1, out + 3 * dim, dim), "%s rmsnorm row alone dim=%zu",
              tp_isa_name(isa), dim);
    tp_rmsnorm(x, w, x, rows, dim, 1e-6f, one_plus);
    CHECK_MSG(kt_same_bits(x, out, rows * dim), "%s rmsnorm in place dim=%zu", tp_isa_name(isa),
              dim);
    /* unaligned row start must not change the lane assignment */
    float *xs = kt_alloc(dim + 1), *os = kt_alloc(dim + 1);
    memcpy(xs + 1, x + 3 * dim, dim * sizeof(float));
    tp_rmsnorm(xs + 1, w, os + 1, 1, dim, 1e-6f, one_plus);
    tp_rmsnorm(x + 3 * dim, w, o1, 1, dim, 1e-6f, one_plus);
    CHECK_MSG(kt_same_bits(os + 1, o1, dim), "%s rmsnorm unaligned dim=%zu", tp_isa_name(isa), dim);
    /* w == NULL means weight 1 */
    tp_rmsnorm(x, NULL, o1, 1, dim, 1e-6f, false);
    double ss = 0;
    for (size_t i = 0; i < dim; i++)
        ss += (double)x[i] * x[i];
    CHECK(close_to(o1[0], x[0] / sqrt(ss / dim + 1e-6), TOL_NORM));
    tp_aligned_free(xs);
    tp_aligned_free(os);
    tp_aligned_free(x);
    tp_aligned_free(w);
    tp_aligned_free(out);
    tp_aligned_free(o1);
}

static void check_layernorm(tp_isa isa, size_t dim, bool with_w, bool with_b) {
    size_t rows = 4;
    float *x = kt_random(rows * dim, -2.0f, 4.0f);
    float *w = with_w ? kt_random(dim, -1.0f, 1.0f) : NULL;
    float *b = with_b ? kt_random(dim, -1.0f, 1.0f) : NULL;
    float *out = kt_alloc(rows * dim), *o1 = kt_alloc(dim);
    kt_set_isa(isa);
    tp_layernorm(x, w, b, out, rows, dim, 1e-5f);
    bool ok = true;
    for (size_t r = 0; r < rows; r++) {
        double mean = 0, var = 0;
        for (size_t i = 0; i < dim; i++)
            mean += x[r * dim + i];
        mean /= dim;
        for (size_t i = 0; i < dim; i++)
            var += (x[r * dim + i] - mean) * (x[r * dim + i] - mean);
        var /= dim;
        for (size_t i = 0; i < dim; i++) {
            double v = (x[r * dim + i] - mean) / sqrt(var + 1e-5);
            if (w)
                v *= w[i];
            if (b)
                v += b[i];
            ok = ok && close_to(out[r * dim + i], v, TOL_NORM * 4);
        }
    }
    CHECK_MSG(ok, "%s layernorm dim=%zu w=%d b=%d", tp_isa_name(isa), dim, with_w, with_b);
    tp_layernorm(x + 2 * dim, w, b, o1, 1, dim, 1e-5f);
    CHECK_MSG(kt_same_bits(o1, out + 2 * dim, dim), "%s layernorm row alone dim=%zu",
              tp_isa_name(isa), dim);
    tp_layernorm(x, w, b, x, rows, dim, 1e-5f);
    CHECK_MSG(kt_same_bits(x, out, rows * dim), "%s layernorm in place", tp_isa_name(isa));
    tp_aligned_free(x);
    tp_aligned_free(w);
    tp_aligned_free(b);
    tp_aligned_free(out);
    tp_aligned_free(o1);
}

/* ---- rope ---- */

static void check_rope(tp_isa isa, int n_heads, int head_dim, double theta, double scale) {
    size_t rows = 7, ld = (size_t)n_heads * head_dim + 3;
    float *inv = kt_alloc((size_t)head_dim / 2);
    tp_rope_inv_freq(inv, head_dim, theta, scale);
    bool ok = true;
    for (int k = 0; k < head_dim / 2; k++) {
        double want = 1.0 / (pow(theta, 2.0 * k / head_dim) * scale);
        ok = ok && close_to(inv[k], want, 1e-7);
    }
    CHECK_MSG(ok, "rope_inv_freq d=%d theta=%g", head_dim, theta);
    float *x = kt_random(rows * ld, -1.0f, 1.0f), *x0 = kt_alloc(rows * ld);
    memcpy(x0, x, rows * ld * sizeof(float));
    int32_t pos[7] = {0, 1, 5, 17, 100, 4095, 32767};
    kt_set_isa(isa);
    tp_rope(x, ld, rows, n_heads, head_dim, pos, inv);
    ok = true;
    int half = head_dim / 2;
    for (size_t r = 0; r < rows; r++)
        for (int h = 0; h < n_heads; h++)
            for (int k = 0; k < half; k++) {
                /* the angle is pos * inv_freq rounded to f32 (as torch) */
                float angf = (float)pos[r] * inv[k];
                double c = cos((double)angf), s = sin((double)angf);
                const float *a = x0 + r * ld + (size_t)h * head_dim;
                const float *g = x + r * ld + (size_t)h * head_dim;
                double o1 = a[k] * c - a[k + half] * s, o2 = a[k + half] * c + a[k] * s;
                ok = ok && fabs(g[k] - o1) <= TOL_ROPE && fabs(g[k + half] - o2) <= TOL_ROPE;
            }
    CHECK_MSG(ok, "%s rope heads=%d d=%d", tp_isa_name(isa), n_heads, head_dim);
    /* padding columns untouched */
    CHECK(memcmp(x + ld - 3, x0 + ld - 3, 3 * sizeof(float)) == 0);
    /* row alone == row in the batch */
    float *one = kt_alloc(ld);
    memcpy(one, x0 + 4 * ld, ld * sizeof(float));
    tp_rope(one, ld, 1, n_heads, head_dim, &pos[4], inv);
    CHECK_MSG(kt_same_bits(one, x + 4 * ld, ld), "%s rope row alone", tp_isa_name(isa));
    tp_aligned_free(one);
    tp_aligned_free(x);
    tp_aligned_free(x0);
    tp_aligned_free(inv);
}

/* ---- softmax ---- */

static void check_softmax(tp_isa isa, size_t n) {
    float *x = kt_random(n + 1, -20.0f, 20.0f), *y = kt_alloc(n + 1);
    if (n > 2)
        x[n / 2] = -INFINITY; /* masked entry */
    memcpy(y, x, (n + 1) * sizeof(float));
    kt_set_isa(isa);
    tp_softmax(y, n);
    double mx = -INFINITY, s = 0;
    for (size_t i = 0; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    for (size_t i = 0; i < n; i++)
        s += exp((double)x[i] - mx);
    bool ok = true;
    for (size_t i = 0; i < n; i++)
        ok = ok && fabs(y[i] - exp((double)x[i] - mx) / s) <= TOL_SOFTMAX;
    CHECK_MSG(ok, "%s softmax n=%zu", tp_isa_name(isa), n);
    CHECK(y[n] == x[n]); /* nothing written past n */
    /* same values at another offset give the same bits */
    float *z = kt_alloc(n + 1);
    memcpy(z + 1, x, n * sizeof(float));
    tp_softmax(z + 1, n);
    CHECK_MSG(kt_same_bits(z + 1, y, n), "%s softmax unaligned n=%zu", tp_isa_name(isa), n);
    tp_aligned_free(z);
    tp_aligned_free(x);
    tp_aligned_free(y);
}

/* ---- activations ---- */

static double gelu_erf_d(double v) {
    return 0.5 * v * (1.0 + erf(v / sqrt(2.0)));
}
static double gelu_tanh_d(double v) {
    return 0.5 * v * (1.0 + tanh(sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
}
static double silu_d(double v) {
    return v / (1.0 + exp(-v));
}

/* The torch formulas cancel for large negative x (1 + erf(x) in f32), so the
 * error is relative to the output plus a small multiple of |x|. */
static bool act_close(double got, double want, double x) {
    return fabs(got - want) <= TOL_ACT * (fabs(want) + 0.1 * fabs(x)) + 1e-30;
}

static void check_act(tp_isa isa, size_t n) {
    float *x = kt_random(n, -12.0f, 12.0f), *y = kt_alloc(n), *z = kt_alloc(n + 1);
    static const float special[] = {0.0f,  -0.0f,  1.0f,  -1.0f,  3.0f,   -3.0f,
                                    1e-7f, -1e-7f, 40.0f, -40.0f, 100.0f, -100.0f,
                                    5.5f,  -9.9f,  0.5f,  2.0f,   -0.25f};
    for (size_t i = 0; i < n && i < sizeof special / sizeof special[0]; i++)
        x[i] = special[i];
    kt_set_isa(isa);
    void (*fn[3])(const float *, float *, size_t) = {tp_gelu_erf, tp_gelu_tanh, tp_silu};
    double (*od[3])(double) = {gelu_erf_d, gelu_tanh_d, silu_d};
    const char *names[3] = {"gelu_erf", "gelu_tanh", "silu"};
    for (int f = 0; f < 3; f++) {
        fn[f](x, y, n);
        bool ok = true;
        for (size_t i = 0; i < n; i++)
            ok = ok && act_close(y[i], od[f](x[i]), x[i]);
        CHECK_MSG(ok, "%s %s n=%zu", tp_isa_name(isa), names[f], n);
        /* position independence: shifted by one element */
        memcpy(z + 1, x, n * sizeof(float));
        fn[f](z + 1, z + 1, n);
        CHECK_MSG(kt_same_bits(z + 1, y, n), "%s %s shifted/in place n=%zu", tp_isa_name(isa),
                  names[f], n);
        /* element alone */
        float one;
        fn[f](&x[n - 1], &one, 1);
        CHECK_MSG(one == y[n - 1] || (one != one && y[n - 1] != y[n - 1]), "%s %s alone",
                  tp_isa_name(isa), names[f]);
    }
    tp_aligned_free(x);
    tp_aligned_free(y);
    tp_aligned_free(z);
}

static void check_known_values(tp_isa isa) {
    /* values from the closed forms (computed to 17 digits with mpmath-grade libm) */
    float x[4] = {1.0f, -1.0f, 2.0f, -2.0f}, y[4];
    kt_set_isa(isa);
    tp_gelu_erf(x, y, 4);
    CHECK(fabs(y[0] - 0.8413447460685429) < 1e-6 && fabs(y[1] + 0.15865525393145707) < 1e-6);
    tp_gelu_tanh(x, y, 4);
    CHECK(fabs(y[0] - 0.8411919906082768) < 1e-6 && fabs(y[3] + 0.04540230591222408) < 1e-6);
    tp_silu(x, y, 4);
    CHECK(fabs(y[0] - 0.7310585786300049) < 1e-6 && fabs(y[3] + 0.23840584404423515) < 1e-6);
}

/* A NaN input gives a NaN output (the vector exp must not clamp it away). */
static void check_nan(tp_isa isa) {
    float x[19], y[19];
    for (int i = 0; i < 19; i++)
        x[i] = (float)i - 9.0f;
    x[17] = NAN;
    kt_set_isa(isa);
    void (*fn[3])(const float *, float *, size_t) = {tp_gelu_erf, tp_gelu_tanh, tp_silu};
    for (int f = 0; f < 3; f++) {
        fn[f](x, y, 19);
        CHECK_MSG(isnan(y[17]) && !isnan(y[16]), "%s activation %d: NaN not propagated",
                  tp_isa_name(isa), f);
    }
    memcpy(y, x, sizeof x);
    tp_softmax(y, 19);
    CHECK_MSG(isnan(y[17]), "%s softmax: NaN not propagated", tp_isa_name(isa));
}

static void check_glu(tp_isa isa, size_t d, tp_act act) {
    size_t rows = 3;
    float *x = kt_random(rows * 2 * d, -5.0f, 5.0f), *y = kt_alloc(rows * d), *y1 = kt_alloc(d);
    kt_set_isa(isa);
    tp_glu(x, y, rows, d, act);
    double (*f)(double) = act == TP_ACT_SILU        ? silu_d
                          : act == TP_ACT_GELU_TANH ? gelu_tanh_d
                                                    : gelu_erf_d;
    bool ok = true;
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < d; j++) {
            double want = f(x[r * 2 * d + j]) * x[r * 2 * d + d + j];
            ok = ok &&
                 fabs(y[r * d + j] - want) <=
                     2 * TOL_ACT *
                             (fabs(want) + 0.1 * fabs(x[r * 2 * d + j] * x[r * 2 * d + d + j])) +
                         1e-30;
        }
    CHECK_MSG(ok, "%s glu d=%zu act=%d", tp_isa_name(isa), d, (int)act);
    tp_glu(x + 2 * 2 * d, y1, 1, d, act);
    CHECK_MSG(kt_same_bits(y1, y + 2 * d, d), "%s glu row alone", tp_isa_name(isa));
    tp_aligned_free(x);
    tp_aligned_free(y);
    tp_aligned_free(y1);
}

/* ---- embedding, add ---- */

static void check_embed(tp_isa isa, size_t dim) {
    size_t vocab = 11;
    float *tf = kt_random(vocab * dim, -1.0f, 1.0f);
    uint16_t *tb = tp_aligned_alloc(vocab * dim, 2), *th = tp_aligned_alloc(vocab * dim, 2);
    double *vb = malloc(vocab * dim * sizeof(double)), *vh = malloc(vocab * dim * sizeof(double));
    for (size_t i = 0; i < vocab * dim; i++) {
        uint32_t r = kt_rand_u32();
        uint32_t s = r & 1, m = (r >> 1) & 0x7f, m10 = (r >> 8) & 0x3ff;
        tb[i] = (uint16_t)((s << 15) | (126u << 7) | m); /* +-[0.5, 1) */
        vb[i] = (s ? -1.0 : 1.0) * 0.5 * (1.0 + m / 128.0);
        th[i] = (uint16_t)((s << 15) | (14u << 10) | m10);
        vh[i] = (s ? -1.0 : 1.0) * 0.5 * (1.0 + m10 / 1024.0);
    }
    int32_t ids[5] = {3, 0, 10, 3, 7};
    float *out = kt_alloc(5 * dim);
    float scale = sqrtf(48.0f);
    kt_set_isa(isa);
    for (int t = 0; t < 3; t++) {
        tp_dtype dt = t == 0 ? TP_DTYPE_F32 : t == 1 ? TP_DTYPE_BF16 : TP_DTYPE_F16;
        const void *tab = t == 0 ? (const void *)tf : t == 1 ? (const void *)tb : (const void *)th;
        for (int sc = 0; sc < 2; sc++) {
            float s = sc ? scale : 1.0f;
            tp_embed(tab, dt, ids, 5, dim, s, out);
            bool ok = true;
            for (size_t r = 0; r < 5; r++)
                for (size_t i = 0; i < dim; i++) {
                    size_t k = (size_t)ids[r] * dim + i;
                    double v = t == 0 ? tf[k] : t == 1 ? vb[k] : vh[k];
                    /* one f32 rounding of v * scale */
                    ok = ok && out[r * dim + i] == (float)(v * (double)s);
                }
            CHECK_MSG(ok, "%s embed %s dim=%zu scale=%g", tp_isa_name(isa), tp_dtype_name(dt), dim,
                      s);
        }
    }
    free(vb);
    free(vh);
    tp_aligned_free(tf);
    tp_aligned_free(tb);
    tp_aligned_free(th);
    tp_aligned_free(out);
}

static void check_add(tp_isa isa, size_t n) {
    float *y = kt_random(n, -1, 1), *x = kt_random(n, -1, 1), *y0 = kt_alloc(n);
    memcpy(y0, y, n * sizeof(float));
    kt_set_isa(isa);
    tp_add(y, x, n);
    bool ok = true;
    for (size_t i = 0; i < n; i++)
        ok = ok && y[i] == y0[i] + x[i];
    CHECK_MSG(ok, "%s add n=%zu", tp_isa_name(isa), n);
    tp_aligned_free(x);
    tp_aligned_free(y);
    tp_aligned_free(y0);
}

int main(void) {
    tp_isa isas[3];
    int n_isa = kt_isas(isas);
    for (int ii = 0; ii < n_isa; ii++) {
        tp_isa isa = isas[ii];
        check_known_values(isa);
        check_nan(isa);
        for (size_t d = 0; d < N_DIMS; d++) {
            check_rmsnorm(isa, dims[d], false);
            check_rmsnorm(isa, dims[d], true);
            check_layernorm(isa, dims[d], true, true);
            check_layernorm(isa, dims[d], true, false);
            check_layernorm(isa, dims[d], false, false);
            check_softmax(isa, dims[d]);
            check_act(isa, dims[d]);
            check_glu(isa, dims[d], TP_ACT_GELU_ERF);
            check_glu(isa, dims[d], TP_ACT_GELU_TANH);
            check_glu(isa, dims[d], TP_ACT_SILU);
            check_embed(isa, dims[d]);
            check_add(isa, dims[d]);
        }
        check_rope(isa, 1, 2, 10000.0, 1.0);
        check_rope(isa, 4, 32, 1e6, 8.0);
        check_rope(isa, 3, 24, 10000.0, 1.0);
        check_rope(isa, 2, 128, 1e6, 1.0);
        check_rope(isa, 5, 34, 160000.0, 1.0);
        printf("%s: ops checked\n", tp_isa_name(isa));
    }
    return tp_test_exit();
}
