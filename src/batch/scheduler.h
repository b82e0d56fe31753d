/*
 * scheduler.h — the batching engine's planner (internal): orders items by
 * length and cuts them into micro-batches whose memory, as the model's cost
 * function counts it, stays under a byte budget.
 *
 * Why sort by length: a micro-batch packs its sequences without padding, so
 * sorting does not save padding; it keeps sequences of similar length together
 * so that attention work per micro-batch is even and the micro-batches fill the
 * token budget tightly. The plan is independent of the results, so a batch's
 * results do not depend on how it was cut (the kernels are batch-invariant).
 */
#ifndef TP_SCHEDULER_H
#define TP_SCHEDULER_H

#include "core/core.h"

typedef struct tp_sched_item {
    size_t n_tokens; /* tokens of the item; 0 = not scheduled (the item already failed) */
    size_t n_rows;   /* head output rows the item needs (e.g. mask positions)          */
} tp_sched_item;

/* Bytes a micro-batch of this shape needs (scratch + outputs); 0 = overflow. */
typedef size_t (*tp_sched_cost_fn)(void *ctx, size_t n_tokens, size_t n_seqs, size_t n_rows);

typedef struct tp_sched_plan {
    size_t *order; /* (n_scheduled) item indices, by n_tokens then index ascending  */
    size_t n_scheduled;
    size_t *mb_start; /* (n_mb + 1) micro-batch b is order[mb_start[b] .. mb_start[b+1]) */
    size_t n_mb;
    size_t max_cost;      /* the largest micro-batch's cost in bytes                       */
    size_t max_tokens_mb; /* the largest micro-batch's token count                      */
    size_t max_seqs_mb;   /* the most sequences in one micro-batch                      */
    size_t max_rows_mb;   /* the most output rows in one micro-batch                    */
    bool *over_budget;    /* (n) true: the item alone costs more than the budget (not
                             scheduled; the caller reports it as the item's error)        */
    size_t *alone_cost;   /* (n) the cost of each item alone (0 when not scheduled)       */
} tp_sched_plan;

/* Greedy packing in length order: a micro-batch takes the next item while its
 * tokens stay <= max_tokens and its cost <= budget. An item that alone exceeds
 * max_tokens still runs alone when its cost fits the budget. */
tp_status tp_sched_plan_make(const tp_sched_item *items, size_t n, size_t max_tokens, size_t budget,
                             tp_sched_cost_fn cost, void *ctx, tp_sched_plan *out, tp_error *err);
void tp_sched_plan_free(tp_sched_plan *plan);

/* Upper end of the derived micro-batch token budget (see tp_default_batch_tokens). */
#define TP_DEFAULT_MAX_BATCH_TOKENS ((size_t)2048)
/* Tokens per micro-batch when the caller sets none: what fits memory_budget at
 * act_bytes_per_token, at most TP_DEFAULT_MAX_BATCH_TOKENS (0 when unknown). */
size_t tp_default_batch_tokens(size_t memory_budget, size_t act_bytes_per_token);

#endif /* TP_SCHEDULER_H */
