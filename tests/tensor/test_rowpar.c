/*
 * test_rowpar.c — the pooled row-wise kernels (tensor.h *_par, rowpar.c) give
 * exactly the bits of the plain single-threaded calls, for row counts below and
 * above the split threshold and for 1, 2 and 7 threads.
 */
#include "tensor/tensor.h"
#include "test_util.h"

static uint32_t rng = 12345;
static float frand(void) {
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

static void fill(float *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        p[i] = frand();
}

int main(void) {
    const size_t dim = 96, heads = 3, hd = 32;
    const size_t row_counts[] = {1, 63, 64, 65, 257};
    const int threads[] = {1, 2, 7};
    size_t max_rows = 257;
    float *x = malloc(max_rows * 2 * dim * sizeof(float));
    float *w = malloc(dim * sizeof(float)), *b = malloc(dim * sizeof(float));
    float *a = malloc(max_rows * 2 * dim * sizeof(float));
    float *c = malloc(max_rows * 2 * dim * sizeof(float));
    int32_t *pos = malloc(max_rows * sizeof(int32_t));
    float inv_freq[16];
    tp_rope_inv_freq(inv_freq, (int)hd, 10000.0, 1.0);
    fill(x, max_rows * 2 * dim);
    fill(w, dim);
    fill(b, dim);
    for (size_t r = 0; r < max_rows; r++)
        pos[r] = (int32_t)(r * 7 % 300);
    for (size_t t = 0; t < sizeof threads / sizeof *threads; t++) {
        tp_pool *pool = tp_pool_create(threads[t], NULL);
        CHECK(pool != NULL);
        for (size_t k = 0; k < sizeof row_counts / sizeof *row_counts; k++) {
            size_t R = row_counts[k], n = R * dim;
            tp_rmsnorm(x, w, a, R, dim, 1e-6f, true);
            tp_rmsnorm_par(pool, x, w, c, R, dim, 1e-6f, true);
            CHECK_MSG(!memcmp(a, c, n * sizeof(float)), "rmsnorm rows=%zu threads=%d", R,
                      threads[t]);
            tp_layernorm(x, w, b, a, R, dim, 1e-5f);
            tp_layernorm_par(pool, x, w, b, c, R, dim, 1e-5f);
            CHECK_MSG(!memcmp(a, c, n * sizeof(float)), "layernorm rows=%zu threads=%d", R,
                      threads[t]);
            tp_glu(x, a, R, dim, TP_ACT_GELU_TANH);
            tp_glu_par(pool, x, c, R, dim, TP_ACT_GELU_TANH);
            CHECK_MSG(!memcmp(a, c, n * sizeof(float)), "glu rows=%zu threads=%d", R, threads[t]);
            memcpy(a, x, n * sizeof(float));
            memcpy(c, x, n * sizeof(float));
            tp_rope(a, dim, R, (int)heads, (int)hd, pos, inv_freq);
            tp_rope_par(pool, c, dim, R, (int)heads, (int)hd, pos, inv_freq);
            CHECK_MSG(!memcmp(a, c, n * sizeof(float)), "rope rows=%zu threads=%d", R, threads[t]);
            memcpy(a, x, n * sizeof(float));
            memcpy(c, x, n * sizeof(float));
            tp_add(a, x + n, n);
            tp_add_rows_par(pool, c, x + n, R, dim);
            CHECK_MSG(!memcmp(a, c, n * sizeof(float)), "add rows=%zu threads=%d", R, threads[t]);
            /* the result really changed (the comparison is not vacuous) */
            CHECK(memcmp(a, x, n * sizeof(float)) != 0);
        }
        tp_pool_destroy(pool);
    }
    free(x);
    free(w);
    free(b);
    free(a);
    free(c);
    free(pos);
    return tp_test_exit();
}
