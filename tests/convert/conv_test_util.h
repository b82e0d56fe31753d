/*
 * conv_test_util.h — helpers of the converted-model tests: loading a .gguf
 * through the normal path (tp_net_files), the dequantized F32 copy of a GGUF
 * file, and the quantization error model that sets the logit tolerances.
 *
 * Tolerance model (docs/gguf.md, "Converting"): a quantized matmul perturbs
 * its output by a relative RMS error of about sqrt(e_w^2 + e_a^2), e_w the
 * relative RMS error of the stored weights (measured on the file against the
 * F32 conversion of the same checkpoint) and e_a that of the int8 activations
 * the quantized kernels use (blocks of 32 or 256 rounded to amax/127: for
 * activations with amax/rms ~ 3, 3 / (127 sqrt 12) ~ 0.7 %). Along a forward
 * there are 4 such matmul inputs per layer (q/k/v, o, gate/up, down) and the
 * LM head; independent errors add in quadrature, so the logits move by about
 * g sqrt(4 L + 1) times the per-matmul error, g the network's own gain (a
 * random network does not pass errors through at exactly 1). g is measured on
 * the weight error alone: the dequantized-F32 copy of the file (exact values,
 * F32 kernels) moves the logits by E_w = g sqrt(4L+1) e_w. Then:
 *   logits of the quantized file vs F32:  <= 1.5 sqrt(E_w^2 + (g sqrt(4L+1) e_a)^2)
 *   quantized file vs its F32 copy:       <= 1.5 g sqrt(4L+1) e_a
 * and g itself must stay <= CONV_MAX_GAIN (errors in the linear regime).
 */
#ifndef TP_CONV_TEST_UTIL_H
#define TP_CONV_TEST_UTIL_H

#include "io/gguf.h"
#include "models/model.h"
#include "tensor/quant.h"
#include "test_util.h"

#include <math.h>

#define CONV_ACT_ERR 0.007 /* e_a, see above */
#define CONV_MAX_GAIN 4.0

typedef struct conv_loaded {
    tp_net_files files;
    tp_net *net;
} conv_loaded;

/* A .gguf file (or a model folder) through the normal loading path. */
static inline tp_status conv_load(const char *path, conv_loaded *m, tp_error *err) {
    memset(m, 0, sizeof *m);
    tp_status st = tp_net_files_open(path, &m->files, err);
    if (st == TP_OK) {
        tp_net_load_args a = tp_net_files_args(&m->files, TP_COMPUTE_F32);
        st = tp_net_load(&a, &m->net, err);
    }
    return st;
}

static inline void conv_unload(conv_loaded *m) {
    tp_net_free(m->net);
    if (m->files.st || m->files.gguf || m->files.dir)
        tp_net_files_close(&m->files);
    memset(m, 0, sizeof *m);
}

static inline tp_status conv_deq_fill(void *user, size_t index, int64_t row0, int64_t n_rows,
                                      void *dst, tp_error *err) {
    (void)err;
    const tp_gguf_tensor *t = tp_gguf_tensor_at(user, index);
    size_t cols = (size_t)t->ne[0], rb = 0;
    tp_dtype_row_bytes(t->dtype, cols, &rb);
    const uint8_t *src = (const uint8_t *)t->data + (size_t)row0 * rb;
    for (int64_t r = 0; r < n_rows; r++)
        tp_dequantize_row(t->dtype, src + (size_t)r * rb, (float *)dst + (size_t)r * cols, cols);
    return TP_OK;
}

static inline tp_status conv_copy_kv(tp_gguf_writer *w, const tp_gguf_kv *kv, tp_error *err) {
    if (kv->type == TP_GGUF_STRING)
        return tp_gguf_set_strn(w, kv->key, kv->str, (size_t)kv->str_len, err);
    if (kv->type != TP_GGUF_ARRAY)
        return tp_gguf_set_scalar(w, kv->key, kv->type, kv->data, err);
    if (kv->arr_type != TP_GGUF_STRING)
        return tp_gguf_set_arr(w, kv->key, kv->arr_type, kv->data, kv->n, err);
    const char **s = calloc(kv->n + 1, sizeof *s);
    size_t *l = calloc(kv->n + 1, sizeof *l);
    for (uint64_t i = 0; i < kv->n; i++)
        s[i] = tp_gguf_arr_str(kv, i, &l[i]);
    tp_status st = tp_gguf_set_arr_str(w, kv->key, s, l, kv->n, err);
    free(s);
    free(l);
    return st;
}

/* The dequantized copy: every tensor of `in` as F32 (quantized ones through
 * the reference dequantizer), the metadata copied: an F32 model holding
 * exactly the values the quantized file encodes. */
static inline tp_status conv_write_f32_copy(const char *in, const char *out, tp_error *err) {
    tp_gguf *g = NULL;
    tp_status st = tp_gguf_open(in, &g, err);
    if (st)
        return st;
    tp_gguf_writer *w = tp_gguf_writer_new();
    for (size_t i = 0; st == TP_OK && i < tp_gguf_kv_count(g); i++) {
        const tp_gguf_kv *kv = tp_gguf_kv_at(g, i);
        if (strcmp(kv->key, "general.alignment"))
            st = conv_copy_kv(w, kv, err);
    }
    for (size_t i = 0; st == TP_OK && i < tp_gguf_tensor_count(g); i++) {
        const tp_gguf_tensor *t = tp_gguf_tensor_at(g, i);
        st = tp_gguf_add_tensor(w, t->name, TP_DTYPE_F32, t->n_dims, t->ne, NULL, err);
    }
    if (st == TP_OK)
        st = tp_gguf_write(w, out, conv_deq_fill, g, err);
    tp_gguf_writer_free(w);
    tp_gguf_close(g);
    return st;
}

/* e_w: relative RMS error of the quantized matrices of `q` against the same
 * tensors of the F32 file `ref` (sum over all quantized tensors). -1 on error. */
static inline double conv_weight_err(const char *q, const char *ref) {
    tp_gguf *a = NULL, *b = NULL;
    tp_error err;
    double num = 0, den = 0;
    if (tp_gguf_open(q, &a, &err) || tp_gguf_open(ref, &b, &err)) {
        tp_gguf_close(a);
        return -1;
    }
    for (size_t i = 0; i < tp_gguf_tensor_count(a); i++) {
        const tp_gguf_tensor *t = tp_gguf_tensor_at(a, i);
        const tp_gguf_tensor *r = tp_gguf_find_tensor(b, t->name);
        if (!tp_dtype_is_quant(t->dtype) || !r || r->dtype != TP_DTYPE_F32)
            continue;
        size_t cols = (size_t)t->ne[0], rows = (size_t)(t->n_elems / t->ne[0]), rb = 0;
        tp_dtype_row_bytes(t->dtype, cols, &rb);
        float *row = malloc(cols * sizeof *row);
        for (size_t y = 0; y < rows; y++) {
            tp_dequantize_row(t->dtype, (const uint8_t *)t->data + y * rb, row, cols);
            const float *w = (const float *)r->data + y * cols;
            for (size_t x = 0; x < cols; x++) {
                num += ((double)row[x] - w[x]) * ((double)row[x] - w[x]);
                den += (double)w[x] * w[x];
            }
        }
        free(row);
    }
    tp_gguf_close(a);
    tp_gguf_close(b);
    return den > 0 ? sqrt(num / den) : 0;
}

/* The network gain g from the weight-only logit error E_w. */
static inline double conv_gain(int n_layers, double e_w, double E_w) {
    return e_w > 0 ? E_w / (sqrt(4.0 * n_layers + 1) * e_w) : 0;
}
/* Tolerances of the model above: quantized vs F32, and quantized vs its copy. */
static inline double conv_logit_tol(int n_layers, double g, double E_w) {
    double a = g * sqrt(4.0 * n_layers + 1) * CONV_ACT_ERR;
    return 1.5 * sqrt(E_w * E_w + a * a);
}
static inline double conv_kernel_tol(int n_layers, double g) {
    return 1.5 * g * sqrt(4.0 * n_layers + 1) * CONV_ACT_ERR;
}

#endif /* TP_CONV_TEST_UTIL_H */
