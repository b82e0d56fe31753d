/*
 * rowpar.c — the row-wise kernels (norms, RoPE, GLU, residual add) split over
 * a thread pool in whole rows.
 *
 * Every row-wise kernel gives a row the same bits wherever it sits in a call
 * (tests/tensor/test_ops.c), so splitting by rows changes no result; it only
 * keeps the other threads busy for the few percent of a layer that is not GEMM
 * or attention. Calls with fewer than ROWPAR_MIN_ROWS rows (decode steps) run
 * on the calling thread: a pool hand-off would cost more than the work.
 */
#include "tensor/tensor.h"

#define ROWPAR_MIN_ROWS 64

typedef enum rowpar_op { ROW_RMSNORM, ROW_LAYERNORM, ROW_GLU, ROW_ROPE, ROW_ADD } rowpar_op;

typedef struct rowpar_job {
    rowpar_op op;
    const float *x;     /* norm/glu input, add source                 */
    float *out;         /* norm/glu output, rope data, add destination */
    const float *w, *b; /* norm weight and (layernorm) bias            */
    size_t rows, dim, ld, chunk;
    float eps;
    bool one_plus;
    tp_act act;
    int n_heads, head_dim;
    const int32_t *pos;
    const float *inv_freq;
} rowpar_job;

static void rowpar_task(void *ctx, size_t task, int thread) {
    (void)thread;
    const rowpar_job *j = ctx;
    size_t r0 = task * j->chunk, r1 = r0 + j->chunk < j->rows ? r0 + j->chunk : j->rows;
    if (r0 >= r1)
        return;
    size_t n = r1 - r0;
    switch (j->op) {
    case ROW_RMSNORM:
        tp_rmsnorm(j->x + r0 * j->dim, j->w, j->out + r0 * j->dim, n, j->dim, j->eps, j->one_plus);
        break;
    case ROW_LAYERNORM:
        tp_layernorm(j->x + r0 * j->dim, j->w, j->b, j->out + r0 * j->dim, n, j->dim, j->eps);
        break;
    case ROW_GLU:
        tp_glu(j->x + r0 * 2 * j->dim, j->out + r0 * j->dim, n, j->dim, j->act);
        break;
    case ROW_ROPE:
        tp_rope(j->out + r0 * j->ld, j->ld, n, j->n_heads, j->head_dim, j->pos + r0, j->inv_freq);
        break;
    case ROW_ADD:
        tp_add(j->out + r0 * j->dim, j->x + r0 * j->dim, n * j->dim);
        break;
    }
}

static void rowpar_run(tp_pool *pool, rowpar_job *j) {
    size_t nt = pool ? (size_t)tp_pool_size(pool) : 1;
    if (nt <= 1 || j->rows < ROWPAR_MIN_ROWS) {
        j->chunk = j->rows;
        rowpar_task(j, 0, 0);
        return;
    }
    size_t tasks = nt * 2;
    j->chunk = (j->rows + tasks - 1) / tasks;
    if (j->chunk < ROWPAR_MIN_ROWS / 2)
        j->chunk = ROWPAR_MIN_ROWS / 2;
    tp_pool_run(pool, (j->rows + j->chunk - 1) / j->chunk, rowpar_task, j);
}

void tp_rmsnorm_par(tp_pool *pool, const float *x, const float *w, float *out, size_t rows,
                    size_t dim, float eps, bool one_plus_w) {
    rowpar_job j = {.op = ROW_RMSNORM,
                    .x = x,
                    .out = out,
                    .w = w,
                    .rows = rows,
                    .dim = dim,
                    .eps = eps,
                    .one_plus = one_plus_w};
    rowpar_run(pool, &j);
}

void tp_layernorm_par(tp_pool *pool, const float *x, const float *w, const float *b, float *out,
                      size_t rows, size_t dim, float eps) {
    rowpar_job j = {.op = ROW_LAYERNORM,
                    .x = x,
                    .out = out,
                    .w = w,
                    .b = b,
                    .rows = rows,
                    .dim = dim,
                    .eps = eps};
    rowpar_run(pool, &j);
}

void tp_glu_par(tp_pool *pool, const float *x, float *out, size_t rows, size_t d, tp_act act) {
    rowpar_job j = {.op = ROW_GLU, .x = x, .out = out, .rows = rows, .dim = d, .act = act};
    rowpar_run(pool, &j);
}

void tp_rope_par(tp_pool *pool, float *x, size_t ld, size_t rows, int n_heads, int head_dim,
                 const int32_t *pos, const float *inv_freq) {
    rowpar_job j = {.op = ROW_ROPE,
                    .out = x,
                    .ld = ld,
                    .rows = rows,
                    .n_heads = n_heads,
                    .head_dim = head_dim,
                    .pos = pos,
                    .inv_freq = inv_freq};
    rowpar_run(pool, &j);
}

void tp_add_rows_par(tp_pool *pool, float *y, const float *x, size_t rows, size_t dim) {
    rowpar_job j = {.op = ROW_ADD, .x = x, .out = y, .rows = rows, .dim = dim};
    rowpar_run(pool, &j);
}
