/*
 * kernels.h — the per-ISA kernel tables behind tensor.h (private to src/tensor
 * and its tests/benchmarks).
 *
 * Every kernel exists once per ISA level: ref.c (portable C, the reference
 * semantics), *_avx2.c and *_avx512.c. dispatch.c picks a table per call from
 * tp_get_isa() and does the threading, so an ISA file only has to compute a
 * rectangle of output elements.
 *
 * GEMM reduction order (what makes every kernel batch- and thread-invariant):
 * an output element y[i][n] is computed by one function of (x row i, W row n,
 * K) only — never of M, of the tile it lands in, or of the thread. The vector
 * kernels are "dot style": each element has its own vector accumulator over
 * k (lane = k mod vector width), K tails are masked loads (zeros), and the
 * lanes are reduced by one fixed tree. Tiles of R rows x C columns and their
 * edges run this same per-element sequence, so M=1 and M=4096 agree bit for bit.
 */
#ifndef TP_TENSOR_KERNELS_H
#define TP_TENSOR_KERNELS_H

#include "tensor/tensor.h"

/* One GEMM job: y[m0:m1, n0:n1] = x[m0:m1, :] W[n0:n1, :]^T (+ bias). */
typedef struct tp_gemm_args {
    const tp_linear *l;
    const float *x; /* (m, K), row stride ldx */
    size_t ldx;
    float *y; /* (m, N), row stride ldy */
    size_t ldy;
    tp_compute compute; /* BF16 only reaches a kernel for BF16 weights */
    /* AVX-512 bf16 mode: all m rows of x already rounded to bf16 by
     * tp_avx512_round_x_bf16 (row stride ldxb), or NULL: each task rounds its
     * own rows. Same bits either way; other kernels ignore it. */
    const uint16_t *xb;
    size_t ldxb;
} tp_gemm_args;

/* One attention job: rows [r0, r1) of sequence s, query heads [h0, h1). */
typedef struct tp_attn_job {
    const tp_attn_seq *s;
    const tp_attn_params *p;
    int r0, r1;
    int h0, h1;
} tp_attn_job;

/* Activations quantized for a quantized-weight GEMM (qgemm.c): each row of K
 * is cut into blocks of `blk` (32 for Q8_0 weights, 256 for Q4_K/Q6_K) with
 * x ~ d * qs, qs in [-127, 127], d = amax/127 (f32); K-quant rows also carry
 * the sums of each 16 consecutive qs. A block holding a NaN or Inf gets
 * d = NaN and qs = 0, so the outputs that read it are NaN. */
typedef struct tp_qx {
    const int8_t *qs;  /* (m, K), row stride ldq */
    const float *d;    /* (m, K / blk), row stride ldd */
    const int16_t *bs; /* (m, K / 16), row stride ldb; NULL when blk == 32 */
    size_t ldq, ldd, ldb;
} tp_qx;

/* One quantized GEMM job: y[m0:m1, n0:n1] = x W^T (+ bias) for W of dtype
 * Q8_0/Q4_K/Q6_K, from the quantized activations xq (rows indexed as in y).
 * The reference kernel also accepts xq == NULL: it then quantizes each block
 * of x itself when it needs it (same bits; the path when memory is short). */
typedef struct tp_qgemm_args {
    const tp_linear *l;
    const float *x; /* (m, K), row stride ldx */
    size_t ldx;
    const tp_qx *xq;
    float *y; /* (m, N), row stride ldy */
    size_t ldy;
} tp_qgemm_args;

/* Activation block of weight dtype wt (32 or 256). */
size_t tp_qx_block(tp_dtype wt);
/* Quantizes one block of blk floats (the shared definition every ISA uses). */
void tp_qx_quantize_block(const float *x, size_t blk, int8_t *qs, float *d, int16_t *bs);
/* Q4_K weights: where activation e of a 256-block is stored. In each 128 the
 * 32-groups are in the order 0, 2, 1, 3 (sub-blocks 0 and 2 are the low
 * nibbles of 64 weight bytes, 1 and 3 their high nibbles). */
static inline int tp_qx_q4k_pos(int e) {
    static const int8_t grp[4] = {0, 64, 32, 96};
    return (e & ~127) + grp[(e >> 5) & 3] + (e & 31);
}
/* One activation block for weights of dtype wt (the order above for Q4_K;
 * bs unused for Q8_0). */
void tp_qx_quantize_wblock(tp_dtype wt, const float *x, int8_t *qs, float *d, int16_t *bs);
/* Quantizes rows [0, m) of x for weights of dtype wt into buffers laid out as
 * in q (already pointing at the caller's memory). */
void tp_qx_quantize(const float *x, size_t ldx, size_t m, size_t K, tp_dtype wt, const tp_qx *q);

typedef struct tp_kernel_table {
    const char *name;
    void (*gemm)(const tp_gemm_args *a, size_t m0, size_t m1, size_t n0, size_t n1);
    void (*rmsnorm)(const float *x, const float *w, float *out, size_t rows, size_t dim, float eps,
                    bool one_plus_w);
    void (*layernorm)(const float *x, const float *w, const float *b, float *out, size_t rows,
                      size_t dim, float eps);
    void (*rope)(float *x, size_t ld, size_t rows, int n_heads, int head_dim, const int32_t *pos,
                 const float *inv_freq);
    void (*softmax)(float *x, size_t n);
    void (*gelu_erf)(const float *x, float *out, size_t n);
    void (*gelu_tanh)(const float *x, float *out, size_t n);
    void (*silu)(const float *x, float *out, size_t n);
    void (*glu)(const float *x, float *out, size_t rows, size_t d, tp_act act);
    void (*embed)(const void *table, tp_dtype dtype, const int32_t *ids, size_t n, size_t dim,
                  float scale, float *out);
    void (*add)(float *y, const float *x, size_t n);
    void (*attention)(const tp_attn_job *job);
    void (*qgemm)(const tp_qgemm_args *a, size_t m0, size_t m1, size_t n0, size_t n1);
} tp_kernel_table;

extern const tp_kernel_table tp_kernels_ref;
extern const tp_kernel_table tp_kernels_avx2;
extern const tp_kernel_table tp_kernels_avx512;

/* The GEMM kernels of each vector ISA (gemm_*.c), referenced by the tables. */
void tp_avx512_gemm(const tp_gemm_args *a, size_t m0, size_t m1, size_t n0, size_t n1);
void tp_avx2_gemm(const tp_gemm_args *a, size_t m0, size_t m1, size_t n0, size_t n1);
/* Row stride (elements) of the bf16 copy of x that tp_avx512_gemm's bf16 mode
 * uses for rows of K, or 0 if that mode does not use one (no AVX512_BF16, or
 * rows too long); and the rounding of rows into such a copy. */
size_t tp_avx512_bf16_ldxb(size_t K);
void tp_avx512_round_x_bf16(const float *x, size_t ldx, size_t rows, size_t K, uint16_t *xb,
                            size_t ldxb);

/* The quantized-weight GEMM kernels (qgemm*.c). */
void tp_qgemm_ref(const tp_qgemm_args *a, size_t m0, size_t m1, size_t n0, size_t n1);
void tp_qgemm_avx2(const tp_qgemm_args *a, size_t m0, size_t m1, size_t n0, size_t n1);
void tp_qgemm_avx512(const tp_qgemm_args *a, size_t m0, size_t m1, size_t n0, size_t n1);
/* Lets tp_qgemm_avx512 use AVX512_VNNI where the CPU has it (the default) or
 * forces its AVX-512BW instructions (tests check both give the same bits). */
void tp_qgemm_avx512_set_vnni(bool allow);

/* The table tp_get_isa() selects (what the public functions use). */
const tp_kernel_table *tp_kernels_current(void);
/* The table for a given ISA level (tests compare them); NULL if not built. */
const tp_kernel_table *tp_kernels_for(tp_isa isa);
/* Whether the CPU has AVX512_BF16 (cached). */
bool tp_cpu_has_bf16(void);

/* Visible key range [lo, hi] (inclusive) of query position pos; hi < lo if none. */
static inline void tp_attn_range(const tp_attn_params *p, int kv_len, int pos, int *lo, int *hi) {
    int a = 0, b = kv_len - 1;
    if (p->causal && pos < b)
        b = pos;
    if (p->window_left >= 0 && pos - p->window_left > a)
        a = pos - p->window_left;
    if (p->window_right >= 0 && pos + p->window_right < b)
        b = pos + p->window_right;
    *lo = a;
    *hi = b;
}

/* Pointer to row j of the key (or value) cache of a sequence. */
static inline const float *tp_attn_kv_row(const float *const *blocks, int block_size, size_t kv_ld,
                                          int j) {
    return blocks[j / block_size] + (size_t)(j % block_size) * kv_ld;
}

#endif /* TP_TENSOR_KERNELS_H */
