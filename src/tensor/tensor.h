/*
 * tensor.h — the numeric kernels every model runs on (internal API).
 *
 * Owner: the kernels issue (#4). Models call only what is declared here.
 *
 * Shapes use row-major (rows, cols) notation. Matrices of activations are f32.
 * Weights are used in the checkpoint's own dtype (f32, bf16, f16, or the ggml
 * block types Q8_0/Q4_K/Q6_K of quant.h) straight from the mmap; a kernel may
 * prepare a private packed copy at load time (tp_linear_prepare), trading
 * memory for speed — documented where it does.
 *
 * Invariants (tests/tensor prove them for every kernel):
 *   - batch invariance: row i of any output is bit-identical whatever the number
 *     of rows in the call and whatever the other rows hold;
 *   - thread-count invariance: bit-identical with 1, 2, 7 threads;
 *   - every optimized kernel matches the scalar reference within a named tolerance.
 * Kernels dispatch on tp_get_isa() at call time (TPIPE_ISA=scalar forces the
 * reference kernels for whole-pipeline checks).
 */
#ifndef TP_TENSOR_H
#define TP_TENSOR_H

#include "core/core.h"

/* Compute precision of a model load (see tpipe.h tp_precision when public). */
typedef enum tp_compute {
    TP_COMPUTE_F32 = 0,  /* activations f32, weights widened to f32, f32 FMA        */
    TP_COMPUTE_BF16 = 1, /* activations rounded to bf16, AVX512_BF16 dot products,
                            f32 accumulation; needs bf16-capable CPU (else f32)      */
} tp_compute;

/* A linear layer y = x W^T + b, W of shape (n_out, n_in) as in torch.nn.Linear. */
typedef struct tp_linear {
    const void *w;     /* (n_out, n_in) row-major, dtype `dtype`, usually in the mmap */
    tp_dtype dtype;    /* F32, BF16, F16, or Q8_0/Q4_K/Q6_K (rows of
                          tp_dtype_row_bytes(dtype, n_in) bytes, n_in a multiple of
                          the block; multiplied with int8-quantized x, qgemm.c)    */
    int64_t n_out;     /* N */
    int64_t n_in;      /* K */
    const float *bias; /* (n_out) f32 or NULL (models convert biases to f32 at load)  */
    void *packed;      /* kernel-private prepared form, or NULL (see tp_linear_prepare) */
} tp_linear;

/* Optionally prepares l for fast multiplication under `compute` (e.g. repacking
 * into panels). Idempotent; tp_linear_release frees what it allocated. */
tp_status tp_linear_prepare(tp_linear *l, tp_compute compute, tp_error *err);
void tp_linear_release(tp_linear *l);

/* y[m, n_out] = x[m, n_in] W^T (+ bias). ldx, ldy: row strides in floats.
 * pool may be NULL (single-threaded). Work is split over output blocks only. */
void tp_matmul(tp_pool *pool, const tp_linear *l, const float *x, size_t ldx, float *y, size_t ldy,
               size_t m, tp_compute compute);

/* ---- element-wise and row-wise kernels (x may alias out where noted) ---- */

/* out[r] = x[r] / rms(x[r]) * (w or 1 + w) ; rows of `dim`; in place allowed.
 * Sum of squares in f32 with a fixed order; w is f32 (dim). */
void tp_rmsnorm(const float *x, const float *w, float *out, size_t rows, size_t dim, float eps,
                bool one_plus_w);
/* LayerNorm over rows of dim; b may be NULL; in place allowed. */
void tp_layernorm(const float *x, const float *w, const float *b, float *out, size_t rows,
                  size_t dim, float eps);

/* RoPE, rotate-half (NeoX) convention, in place on x (rows, n_heads*head_dim) with
 * row stride ld; row r has position pos[r]. inv_freq has head_dim/2 entries
 * (1/theta^(2k/d), already divided by any linear scaling factor). */
void tp_rope(float *x, size_t ld, size_t rows, int n_heads, int head_dim, const int32_t *pos,
             const float *inv_freq);
/* inv_freq[k] = 1 / (theta^(2k/head_dim) * scale), k < head_dim/2, computed in double. */
void tp_rope_inv_freq(float *inv_freq, int head_dim, double theta, double linear_scale);

/* Softmax in place over n floats (max-subtracted, f32). */
void tp_softmax(float *x, size_t n);

void tp_gelu_erf(const float *x, float *out, size_t n);  /* 0.5 x (1 + erf(x/sqrt2)) */
void tp_gelu_tanh(const float *x, float *out, size_t n); /* gelu_pytorch_tanh       */
void tp_silu(const float *x, float *out, size_t n);
/* GLU: for each row, out[r, j] = act(a[r, j]) * g[r, j] where a = x[r, 0:d] and
 * g = x[r, d:2d] (the input|gate halves of a fused projection); out (rows, d). */
typedef enum tp_act { TP_ACT_GELU_ERF, TP_ACT_GELU_TANH, TP_ACT_SILU } tp_act;
void tp_glu(const float *x, float *out, size_t rows, size_t d, tp_act act);

/* out[r] = table[ids[r]] * scale (table (vocab, dim) in dtype: F32, BF16, F16,
 * or Q8_0/Q4_K/Q6_K with dim a multiple of the block, rows of
 * tp_dtype_row_bytes(dtype, dim) bytes, decoded by tp_dequantize_row) */
void tp_embed(const void *table, tp_dtype dtype, const int32_t *ids, size_t n, size_t dim,
              float scale, float *out);

/* y += x (n floats) */
void tp_add(float *y, const float *x, size_t n);

/* The row-wise kernels above split over a pool in whole rows (rowpar.c); same
 * bits as the plain calls. Fewer than 64 rows run on the calling thread. */
void tp_rmsnorm_par(tp_pool *pool, const float *x, const float *w, float *out, size_t rows,
                    size_t dim, float eps, bool one_plus_w);
void tp_layernorm_par(tp_pool *pool, const float *x, const float *w, const float *b, float *out,
                      size_t rows, size_t dim, float eps);
void tp_glu_par(tp_pool *pool, const float *x, float *out, size_t rows, size_t d, tp_act act);
void tp_rope_par(tp_pool *pool, float *x, size_t ld, size_t rows, int n_heads, int head_dim,
                 const int32_t *pos, const float *inv_freq);
/* y[r] += x[r] for rows of dim */
void tp_add_rows_par(tp_pool *pool, float *y, const float *x, size_t rows, size_t dim);

/* ---- attention over a packed batch ----
 * Each sequence has n_q query rows and kv_len key/value rows. Keys/values live
 * in blocks of block_size rows (row stride kv_ld floats, n_kv_heads*head_dim
 * used); key j is in kv_blocks[j / block_size] at row j % block_size. Blocks
 * entirely outside every query's window may be NULL (sliding-window caches).
 * Query i of the sequence has absolute position q_pos0 + i; key j position j.
 * Key j is visible to query position p iff
 *     (!causal || j <= p) && (window_left < 0 || j >= p - window_left)
 *                         && (window_right < 0 || j <= p + window_right).
 * Output per query row: (n_heads*head_dim), row stride out_ld.
 * Online softmax in f32; scores = scale * q.k, then soft-capped when softcap > 0
 * (softcap * tanh(s / softcap)). Query head h uses kv head h / (n_heads/n_kv_heads).
 * Results for a sequence do not depend on the other sequences in the call. */
typedef struct tp_attn_seq {
    const float *q; /* (n_q, n_heads*head_dim), row stride q_ld */
    size_t q_ld;
    float *out; /* (n_q, n_heads*head_dim), row stride out_ld */
    size_t out_ld;
    int n_q;
    int q_pos0;
    int kv_len;
    const float *const *k_blocks;
    const float *const *v_blocks;
    int block_size;
    size_t kv_ld;
} tp_attn_seq;

typedef struct tp_attn_params {
    int n_heads;
    int n_kv_heads;
    int head_dim;
    float scale;
    bool causal;
    int window_left;  /* -1: unlimited */
    int window_right; /* -1: unlimited */
    float softcap;    /* 0: none */
} tp_attn_params;

void tp_attention(tp_pool *pool, const tp_attn_seq *seqs, size_t n_seqs, const tp_attn_params *p);

#endif /* TP_TENSOR_H */
