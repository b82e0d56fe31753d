/*
 * dispatch.c — the public kernel entry points of tensor.h.
 *
 * Each call picks the kernel table of tp_get_isa() (so TPIPE_ISA=scalar or
 * tp_set_isa() switch every later call) and, for GEMM and attention, splits
 * the work into tasks over output blocks for tp_pool_run. A task's result
 * depends only on its index and the inputs: the per-element reduction order
 * is fixed inside the kernels (see kernels.h), never by the split, which is
 * why the results are the same for every thread count and batch composition.
 */
#include "tensor/kernels.h"
#include "tensor/quant.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

/* ---- kernel tables ---- */

const tp_kernel_table *tp_kernels_for(tp_isa isa) {
    switch (isa) {
    case TP_ISA_AVX512:
        return &tp_kernels_avx512;
    case TP_ISA_AVX2:
        return &tp_kernels_avx2;
    default:
        return &tp_kernels_ref;
    }
}

const tp_kernel_table *tp_kernels_current(void) {
    return tp_kernels_for(tp_get_isa());
}

bool tp_cpu_has_bf16(void) {
    static atomic_int cached = -1;
    int v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v < 0) {
        tp_cpu_features f = tp_cpu_detect();
        v = f.avx512_bf16 ? 1 : 0;
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return v == 1;
}

/* ---- linear layers ---- */

tp_status tp_linear_prepare(tp_linear *l, tp_compute compute, tp_error *err) {
    if (!l)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_linear_prepare: linear is NULL");
    if (compute != TP_COMPUTE_F32 && compute != TP_COMPUTE_BF16)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_linear_prepare: unknown compute mode %d",
                       (int)compute);
    if (l->dtype != TP_DTYPE_F32 && l->dtype != TP_DTYPE_BF16 && l->dtype != TP_DTYPE_F16 &&
        !tp_dtype_is_quant(l->dtype))
        return tp_fail(err, TP_ERR_UNSUPPORTED,
                       "tp_linear_prepare: weight dtype %s not supported (F32, BF16, F16, Q8_0, "
                       "Q4_K or Q6_K)",
                       tp_dtype_name(l->dtype));
    if (l->n_out <= 0 || l->n_in <= 0)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT,
                       "tp_linear_prepare: bad shape (%lld, %lld): both must be > 0",
                       (long long)l->n_out, (long long)l->n_in);
    if (!l->w)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_linear_prepare: weight pointer is NULL");
    /* quantized weights are used in place in both compute modes (int8 dots) */
    if (tp_dtype_is_quant(l->dtype)) {
        if ((size_t)l->n_in % tp_dtype_block(l->dtype) != 0)
            return tp_fail(err, TP_ERR_INVALID_ARGUMENT,
                           "tp_linear_prepare: %s weight with n_in %lld: not a multiple of the "
                           "block (%zu)",
                           tp_dtype_name(l->dtype), (long long)l->n_in, tp_dtype_block(l->dtype));
        return TP_OK;
    }
    /* bf16 and f32 compute on bf16 weights, and f32 compute on any weights, use
     * the weights in place (see docs/kernels.md). The bf16 mode on f32/f16
     * weights needs them as bf16: one rounded copy, n_out * n_in * 2 bytes. */
    if (compute != TP_COMPUTE_BF16 || l->dtype == TP_DTYPE_BF16 || l->packed)
        return TP_OK;
    size_t n;
    if (!tp_mul_size((size_t)l->n_out, (size_t)l->n_in, &n))
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_linear_prepare: shape overflows");
    uint16_t *b = tp_aligned_alloc(n, sizeof(uint16_t));
    if (!b)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY,
                       "tp_linear_prepare: no memory for the bf16 copy of a (%lld, %lld) weight",
                       (long long)l->n_out, (long long)l->n_in);
    for (size_t i = 0; i < n; i++) {
        float v = l->dtype == TP_DTYPE_F32 ? ((const float *)l->w)[i]
                                           : tp_f16_to_f32(((const uint16_t *)l->w)[i]);
        b[i] = tp_f32_to_bf16(v);
    }
    l->packed = b;
    return TP_OK;
}

void tp_linear_release(tp_linear *l) {
    if (l && l->packed) {
        tp_aligned_free(l->packed);
        l->packed = NULL;
    }
}

/* Output blocks of a GEMM task. Any value gives the same results (the
 * per-element order does not depend on them); they only set cache reuse and
 * load balance. */
#define GEMM_MB 64
#define GEMM_NB 128
/* largest bf16 copy of x a call makes (AVX-512 bf16 mode) */
#define XB_CALL_BYTES ((size_t)8 << 20)

typedef struct gemm_ctx {
    const tp_kernel_table *kt;
    tp_gemm_args a;
    size_t m, n;
    size_t mb, nb; /* block sizes */
    size_t n_mblocks, n_nblocks;
    size_t band; /* row blocks per band */
} gemm_ctx;

static void gemm_task(void *vctx, size_t task, int thread) {
    (void)thread;
    const gemm_ctx *c = vctx;
    /* bands of `band` row blocks sweep all column blocks: the band's rows of x
     * stay in L2/L3 across the sweep and each column block of W is reused by
     * the band's row blocks (only the speed depends on this order) */
    size_t per_band = c->band * c->n_nblocks, full = c->n_mblocks / c->band;
    size_t bm, bn;
    if (task < full * per_band) {
        size_t b = task / per_band, r = task % per_band;
        bn = r / c->band;
        bm = b * c->band + r % c->band;
    } else {
        size_t t = task - full * per_band, rest = c->n_mblocks - full * c->band;
        bn = t / rest;
        bm = full * c->band + t % rest;
    }
    size_t m0 = bm * c->mb, n0 = bn * c->nb;
    size_t m1 = m0 + c->mb < c->m ? m0 + c->mb : c->m;
    size_t n1 = n0 + c->nb < c->n ? n0 + c->nb : c->n;
    c->kt->gemm(&c->a, m0, m1, n0, n1);
}

/* ---- quantized weights (qgemm*.c) ---- */

/* largest quantized copy of x a call makes; longer calls run as slabs */
#define XQ_CALL_BYTES ((size_t)8 << 20)

typedef struct qgemm_ctx {
    const tp_kernel_table *kt;
    tp_qgemm_args a;
    size_t m, n, mb, nb, n_mblocks;
} qgemm_ctx;

static void qgemm_task(void *vctx, size_t task, int thread) {
    (void)thread;
    const qgemm_ctx *c = vctx;
    /* row blocks inner: consecutive tasks reuse one column block of W */
    size_t bm = task % c->n_mblocks, bn = task / c->n_mblocks;
    size_t m0 = bm * c->mb, n0 = bn * c->nb;
    size_t m1 = m0 + c->mb < c->m ? m0 + c->mb : c->m;
    size_t n1 = n0 + c->nb < c->n ? n0 + c->nb : c->n;
    c->kt->qgemm(&c->a, m0, m1, n0, n1);
}

/* Rows of x quantized in parallel (each block by the one shared function, so
 * the split changes nothing). */
typedef struct qx_ctx {
    const float *x;
    size_t ldx, m, K, rows_per_task;
    tp_dtype wt;
    const tp_qx *q;
} qx_ctx;

static void qx_task(void *vctx, size_t task, int thread) {
    (void)thread;
    const qx_ctx *c = vctx;
    size_t r0 = task * c->rows_per_task;
    size_t r1 = r0 + c->rows_per_task < c->m ? r0 + c->rows_per_task : c->m;
    tp_qx part = *c->q;
    part.qs += r0 * part.ldq;
    part.d += r0 * part.ldd;
    if (part.bs)
        part.bs += r0 * part.ldb;
    tp_qx_quantize(c->x + r0 * c->ldx, c->ldx, r1 - r0, c->K, c->wt, &part);
}

/* Bytes of the quantized copy of one row of K (qs padded to 64 bytes, scales,
 * sums of 16 for the K-quants). */
static size_t qx_row_bytes(size_t K, size_t blk, size_t *ldq) {
    *ldq = (K + 63) / 64 * 64;
    return *ldq + K / blk * sizeof(float) + (blk == 32 ? 0 : K / 16 * sizeof(int16_t));
}

static void qmatmul(tp_pool *pool, const tp_linear *l, const float *x, size_t ldx, float *y,
                    size_t ldy, size_t m) {
    size_t K = (size_t)l->n_in, blk = tp_qx_block(l->dtype), ldq;
    TP_ASSERT(K % tp_dtype_block(l->dtype) == 0);
    size_t row_bytes = qx_row_bytes(K, blk, &ldq);
    size_t slab = XQ_CALL_BYTES / row_bytes / GEMM_MB * GEMM_MB;
    if (slab == 0)
        slab = 1;
    if (m > slab) {
        for (size_t r = 0; r < m; r += slab)
            qmatmul(pool, l, x + r * ldx, ldx, y + r * ldy, ldy, m - r < slab ? m - r : slab);
        return;
    }
    qgemm_ctx c;
    c.kt = tp_kernels_current();
    c.a.l = l;
    c.a.x = x;
    c.a.ldx = ldx;
    c.a.y = y;
    c.a.ldy = ldy;
    /* x quantized once per call; without memory for it the reference kernel
     * quantizes block by block itself (same bits, slower) */
    uint8_t *buf = tp_aligned_alloc(m, row_bytes);
    tp_qx q;
    if (buf) {
        q.qs = (const int8_t *)buf;
        q.ldq = ldq;
        q.d = (const float *)(void *)(buf + m * ldq);
        q.ldd = K / blk;
        q.bs = blk == 32 ? NULL : (const int16_t *)(void *)(buf + m * ldq + m * (K / blk) * 4);
        q.ldb = K / 16;
        size_t threads = pool ? (size_t)tp_pool_size(pool) : 1;
        if (threads > 1 && m >= 8) {
            qx_ctx qc = {x, ldx, m, K, (m + 2 * threads - 1) / (2 * threads), l->dtype, &q};
            tp_pool_run(pool, (m + qc.rows_per_task - 1) / qc.rows_per_task, qx_task, &qc);
        } else {
            tp_qx_quantize(x, ldx, m, K, l->dtype, &q);
        }
        c.a.xq = &q;
    } else {
        c.a.xq = NULL;
        c.kt = &tp_kernels_ref;
    }
    c.m = m;
    c.n = (size_t)l->n_out;
    c.mb = m < GEMM_MB ? m : GEMM_MB;
    /* decode-shaped calls: long column runs, but at least 4 tasks per thread */
    size_t threads = pool ? (size_t)tp_pool_size(pool) : 1;
    size_t nb = m <= 4 ? c.n / (4 * threads) : 64;
    nb = (nb + 15) / 16 * 16;
    c.nb = nb < 16 ? 16 : nb > 512 ? 512 : nb;
    c.n_mblocks = (m + c.mb - 1) / c.mb;
    size_t tasks = c.n_mblocks * ((c.n + c.nb - 1) / c.nb);
    if (!pool || tasks == 1) {
        for (size_t t = 0; t < tasks; t++)
            qgemm_task(&c, t, 0);
    } else {
        tp_pool_run(pool, tasks, qgemm_task, &c);
    }
    tp_aligned_free(buf);
}

void tp_matmul(tp_pool *pool, const tp_linear *l, const float *x, size_t ldx, float *y, size_t ldy,
               size_t m, tp_compute compute) {
    if (m == 0)
        return;
    TP_ASSERT(l && l->w && x && y && l->n_in > 0 && l->n_out > 0);
    TP_ASSERT(ldx >= (size_t)l->n_in && ldy >= (size_t)l->n_out);
    if (tp_dtype_is_quant(l->dtype)) {
        /* one integer-dot path for every M and both compute modes */
        qmatmul(pool, l, x, ldx, y, ldy, m);
        return;
    }
    gemm_ctx c;
    c.kt = tp_kernels_current();
    /* bf16 mode on f32/f16 weights runs on the bf16 copy made by
     * tp_linear_prepare; without one it computes in f32 */
    tp_linear view;
    if (compute == TP_COMPUTE_BF16 && l->dtype != TP_DTYPE_BF16 && l->packed) {
        view = *l;
        view.w = l->packed;
        view.dtype = TP_DTYPE_BF16;
        view.packed = NULL;
        l = &view;
    }
    /* AVX-512 bf16 mode: x is rounded to bf16 once per call (below), into at
     * most XB_CALL_BYTES; longer calls run as slabs of rows, each its own call
     * (rows are independent: same bits) */
    if (compute == TP_COMPUTE_BF16 && l->dtype == TP_DTYPE_BF16 && c.kt == &tp_kernels_avx512) {
        size_t ldxb = tp_avx512_bf16_ldxb((size_t)l->n_in);
        size_t slab = ldxb ? XB_CALL_BYTES / (ldxb * sizeof(uint16_t)) / GEMM_MB * GEMM_MB : 0;
        if (slab > 0 && m > slab) {
            for (size_t r = 0; r < m; r += slab)
                tp_matmul(pool, l, x + r * ldx, ldx, y + r * ldy, ldy, m - r < slab ? m - r : slab,
                          compute);
            return;
        }
    }
    c.a.l = l;
    c.a.x = x;
    c.a.ldx = ldx;
    c.a.y = y;
    c.a.ldy = ldy;
    /* bf16 compute applies to bf16 weights; other weights are multiplied in f32. */
    c.a.compute = (compute == TP_COMPUTE_BF16 && l->dtype == TP_DTYPE_BF16) ? TP_COMPUTE_BF16
                                                                            : TP_COMPUTE_F32;
    c.a.xb = NULL;
    c.a.ldxb = 0;
    c.m = m;
    c.n = (size_t)l->n_out;
    /* a task's x rows and W columns should fit L2 together: about 512 KiB
     * each, so long rows (large K) get smaller blocks */
    size_t K = (size_t)l->n_in, wes = tp_dtype_size(l->dtype);
    size_t mb = ((size_t)512 << 10) / (K * sizeof(float)) / 4 * 4;
    size_t nb = ((size_t)512 << 10) / (K * wes) / 6 * 6;
    mb = mb < 16 ? 16 : mb > GEMM_MB ? GEMM_MB : mb;
    nb = nb < 24 ? 24 : nb > GEMM_NB ? GEMM_NB : nb;
    c.mb = m < mb ? m : mb;
    /* decode-shaped calls stream W once: longer column blocks mean fewer cold
     * starts of the weight prefetch (each task begins on a fresh stream), but
     * never fewer tasks than threads (a 1024-wide projection in 512-column
     * blocks left 14 of 16 cores idle). Column blocks never change bits. */
    if (m <= 4) {
        size_t threads = pool ? (size_t)tp_pool_size(pool) : 1;
        nb = 4 * GEMM_NB;
        while (nb > 32 && (c.n + nb - 1) / nb < threads)
            nb /= 2;
    }
    c.nb = nb;
    c.n_mblocks = (m + c.mb - 1) / c.mb;
    c.n_nblocks = (c.n + c.nb - 1) / c.nb;
    /* a band of x rows of about 1 MiB */
    size_t band_rows = ((size_t)1 << 20) / ((size_t)l->n_in * sizeof(float));
    c.band = band_rows / c.mb ? band_rows / c.mb : 1;
    size_t tasks = c.n_mblocks * c.n_nblocks;
    /* AVX-512 bf16 mode: round x to bf16 once here rather than in every
     * column task that reads the same rows (measured 2-6 % of the GEMM time in
     * decode and encoder runs); at most XB_CALL_BYTES (see the slabs above);
     * without memory for the copy each task rounds its rows itself (same
     * bits: the rounding is per element) */
    uint16_t *xb = NULL;
    if (c.a.compute == TP_COMPUTE_BF16 && c.kt == &tp_kernels_avx512 && c.n_nblocks > 1) {
        size_t ldxb = tp_avx512_bf16_ldxb(K);
        if (ldxb && (xb = tp_aligned_alloc(m * ldxb, sizeof(uint16_t))) != NULL) {
            tp_avx512_round_x_bf16(x, ldx, m, K, xb, ldxb);
            c.a.xb = xb;
            c.a.ldxb = ldxb;
        }
    }
    if (!pool || tasks == 1) {
        for (size_t t = 0; t < tasks; t++)
            gemm_task(&c, t, 0);
    } else {
        tp_pool_run(pool, tasks, gemm_task, &c);
    }
    tp_aligned_free(xb);
}

/* ---- row-wise kernels: cheap next to the GEMMs, run on the calling thread ---- */

void tp_rmsnorm(const float *x, const float *w, float *out, size_t rows, size_t dim, float eps,
                bool one_plus_w) {
    if (rows == 0 || dim == 0)
        return;
    tp_kernels_current()->rmsnorm(x, w, out, rows, dim, eps, one_plus_w);
}

void tp_layernorm(const float *x, const float *w, const float *b, float *out, size_t rows,
                  size_t dim, float eps) {
    if (rows == 0 || dim == 0)
        return;
    tp_kernels_current()->layernorm(x, w, b, out, rows, dim, eps);
}

void tp_rope(float *x, size_t ld, size_t rows, int n_heads, int head_dim, const int32_t *pos,
             const float *inv_freq) {
    if (rows == 0 || n_heads <= 0 || head_dim < 2)
        return;
    TP_ASSERT(head_dim % 2 == 0);
    tp_kernels_current()->rope(x, ld, rows, n_heads, head_dim, pos, inv_freq);
}

void tp_rope_inv_freq(float *inv_freq, int head_dim, double theta, double linear_scale) {
    if (linear_scale <= 0.0)
        linear_scale = 1.0;
    for (int k = 0; k < head_dim / 2; k++)
        inv_freq[k] =
            (float)(1.0 / (pow(theta, (double)(2 * k) / (double)head_dim) * linear_scale));
}

void tp_softmax(float *x, size_t n) {
    if (n == 0)
        return;
    tp_kernels_current()->softmax(x, n);
}

void tp_gelu_erf(const float *x, float *out, size_t n) {
    if (n)
        tp_kernels_current()->gelu_erf(x, out, n);
}
void tp_gelu_tanh(const float *x, float *out, size_t n) {
    if (n)
        tp_kernels_current()->gelu_tanh(x, out, n);
}
void tp_silu(const float *x, float *out, size_t n) {
    if (n)
        tp_kernels_current()->silu(x, out, n);
}
void tp_glu(const float *x, float *out, size_t rows, size_t d, tp_act act) {
    if (rows && d)
        tp_kernels_current()->glu(x, out, rows, d, act);
}

void tp_embed(const void *table, tp_dtype dtype, const int32_t *ids, size_t n, size_t dim,
              float scale, float *out) {
    if (n == 0 || dim == 0)
        return;
    for (size_t r = 0; r < n; r++)
        TP_ASSERT(ids[r] >= 0);
    if (tp_dtype_is_quant(dtype)) {
        /* quantized tables: the looked-up rows through the reference dequantizer
         * (same bits on every ISA); dim is a whole number of blocks */
        size_t row_bytes = 0;
        bool ok = tp_dtype_row_bytes(dtype, dim, &row_bytes);
        TP_ASSERT(ok);
        (void)ok;
        for (size_t r = 0; r < n; r++) {
            float *o = out + r * dim;
            tp_dequantize_row(dtype, (const uint8_t *)table + (size_t)ids[r] * row_bytes, o, dim);
            if (scale != 1.0f)
                for (size_t i = 0; i < dim; i++)
                    o[i] = o[i] * scale;
        }
        return;
    }
    TP_ASSERT(dtype == TP_DTYPE_F32 || dtype == TP_DTYPE_BF16 || dtype == TP_DTYPE_F16);
    tp_kernels_current()->embed(table, dtype, ids, n, dim, scale, out);
}

void tp_add(float *y, const float *x, size_t n) {
    if (n)
        tp_kernels_current()->add(y, x, n);
}

/* ---- attention ---- */

/* Query rows per task. Results do not depend on it (rows are independent). */
#define ATTN_RB 32

typedef struct attn_ctx {
    const tp_kernel_table *kt;
    const tp_attn_seq *seqs;
    size_t n_seqs;
    const tp_attn_params *p;
    int head_groups; /* tasks per row block: one per kv head */
} attn_ctx;

static void attn_task(void *vctx, size_t task, int thread) {
    (void)thread;
    const attn_ctx *c = vctx;
    size_t per_rb = (size_t)c->head_groups;
    size_t rb_index = task / per_rb;
    int g = (int)(task % per_rb);
    /* find the sequence holding row block rb_index (linear: n_seqs is small) */
    for (size_t s = 0; s < c->n_seqs; s++) {
        size_t nrb = ((size_t)c->seqs[s].n_q + ATTN_RB - 1) / ATTN_RB;
        if (rb_index < nrb) {
            int group = c->p->n_heads / c->p->n_kv_heads;
            tp_attn_job job;
            job.s = &c->seqs[s];
            job.p = c->p;
            job.r0 = (int)rb_index * ATTN_RB;
            job.r1 = job.r0 + ATTN_RB < c->seqs[s].n_q ? job.r0 + ATTN_RB : c->seqs[s].n_q;
            job.h0 = g * group;
            job.h1 = job.h0 + group;
            c->kt->attention(&job);
            return;
        }
        rb_index -= nrb;
    }
}

void tp_attention(tp_pool *pool, const tp_attn_seq *seqs, size_t n_seqs, const tp_attn_params *p) {
    if (n_seqs == 0)
        return;
    TP_ASSERT(seqs && p && p->n_heads > 0 && p->n_kv_heads > 0 && p->head_dim > 0);
    TP_ASSERT(p->n_heads % p->n_kv_heads == 0);
    size_t row_blocks = 0;
    for (size_t s = 0; s < n_seqs; s++) {
        TP_ASSERT(seqs[s].n_q >= 0 && seqs[s].kv_len >= 0);
        TP_ASSERT(seqs[s].n_q == 0 || seqs[s].kv_len == 0 || seqs[s].block_size > 0);
        row_blocks += ((size_t)seqs[s].n_q + ATTN_RB - 1) / ATTN_RB;
    }
    attn_ctx c = {tp_kernels_current(), seqs, n_seqs, p, p->n_kv_heads};
    size_t tasks = row_blocks * (size_t)c.head_groups;
    if (tasks == 0)
        return;
    if (!pool || tasks == 1) {
        for (size_t t = 0; t < tasks; t++)
            attn_task(&c, t, 0);
        return;
    }
    tp_pool_run(pool, tasks, attn_task, &c);
}
