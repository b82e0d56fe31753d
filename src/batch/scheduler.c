/*
 * scheduler.c — length ordering and budgeted micro-batch packing (see
 * scheduler.h). Linear after the sort; no allocation beyond the plan.
 */
#include "batch/scheduler.h"

#include <stdlib.h>
#include <string.h>

typedef struct sort_key {
    size_t n_tokens;
    size_t index;
} sort_key;

static int cmp_key(const void *a, const void *b) {
    const sort_key *x = a, *y = b;
    if (x->n_tokens != y->n_tokens)
        return x->n_tokens < y->n_tokens ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

void tp_sched_plan_free(tp_sched_plan *plan) {
    if (!plan)
        return;
    tp_free(plan->order);
    tp_free(plan->mb_start);
    tp_free(plan->over_budget);
    tp_free(plan->alone_cost);
    memset(plan, 0, sizeof *plan);
}

tp_status tp_sched_plan_make(const tp_sched_item *items, size_t n, size_t max_tokens, size_t budget,
                             tp_sched_cost_fn cost, void *ctx, tp_sched_plan *out, tp_error *err) {
    if (!out || (n && !items) || !cost)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "scheduler: NULL argument");
    memset(out, 0, sizeof *out);
    if (max_tokens == 0)
        max_tokens = SIZE_MAX;
    sort_key *keys = tp_malloc_array(n ? n : 1, sizeof *keys);
    out->order = tp_malloc_array(n ? n : 1, sizeof *out->order);
    out->mb_start = tp_malloc_array(n + 1, sizeof *out->mb_start);
    out->over_budget = tp_calloc(n ? n : 1, sizeof *out->over_budget);
    out->alone_cost = tp_calloc(n ? n : 1, sizeof *out->alone_cost);
    if (!keys || !out->order || !out->mb_start || !out->over_budget || !out->alone_cost) {
        tp_free(keys);
        tp_sched_plan_free(out);
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "scheduler: out of memory for %zu items", n);
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!items[i].n_tokens)
            continue;
        size_t c = cost(ctx, items[i].n_tokens, 1, items[i].n_rows);
        out->alone_cost[i] = c;
        if (c == 0 || c > budget) {
            out->over_budget[i] = true;
            continue;
        }
        keys[m].n_tokens = items[i].n_tokens;
        keys[m].index = i;
        m++;
    }
    qsort(keys, m, sizeof *keys, cmp_key);
    for (size_t j = 0; j < m; j++)
        out->order[j] = keys[j].index;
    tp_free(keys);
    out->n_scheduled = m;

    /* Greedy cut: extend the current micro-batch while it fits. */
    size_t j = 0;
    while (j < m) {
        size_t first = j;
        size_t T = 0, S = 0, R = 0, c_cur = 0;
        while (j < m) {
            const tp_sched_item *it = &items[out->order[j]];
            size_t T2 = T + it->n_tokens, S2 = S + 1, R2 = R + it->n_rows;
            size_t c = cost(ctx, T2, S2, R2);
            bool fits = c != 0 && c <= budget && T2 <= max_tokens;
            if (!fits && S > 0)
                break;
            /* a lone item always runs (its cost fits the budget: checked above) */
            T = T2;
            S = S2;
            R = R2;
            c_cur = c;
            j++;
        }
        out->mb_start[out->n_mb++] = first;
        if (c_cur > out->max_cost)
            out->max_cost = c_cur;
        if (T > out->max_tokens_mb)
            out->max_tokens_mb = T;
        if (S > out->max_seqs_mb)
            out->max_seqs_mb = S;
        if (R > out->max_rows_mb)
            out->max_rows_mb = R;
    }
    out->mb_start[out->n_mb] = m;
    return TP_OK;
}

size_t tp_default_batch_tokens(size_t memory_budget, size_t act_bytes_per_token) {
    if (!act_bytes_per_token)
        return 0;
    size_t fit = memory_budget / act_bytes_per_token;
    /* Measured (bench_encoder --shape 32x128 --max-tokens N, ModernBERT-base):
     * micro-batches past ~2k tokens gain nothing and lose a little (their
     * activations leave the L3 cache), so the derived default stops there. */
    return fit > TP_DEFAULT_MAX_BATCH_TOKENS ? TP_DEFAULT_MAX_BATCH_TOKENS : fit;
}
