/*
 * encoder_run.c — plan, pack, run, hand back (see encoder_run.h).
 */
#include "batch/encoder_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Packed inputs and outputs of one micro-batch (the "io" arena). */
static size_t io_bytes(const tp_net *net, size_t T, size_t S, size_t R, bool want_cls) {
    size_t a, b, c, d, e, total = 0;
    size_t L = want_cls ? (size_t)net->num_labels : 0;
    if (!tp_mul_size(T, sizeof(int32_t), &a) || !tp_mul_size(S + 1, sizeof(int32_t), &b) ||
        !tp_mul_size(R, sizeof(int32_t), &c) || !tp_mul_size(R, (size_t)net->vocab_size, &d) ||
        !tp_mul_size(d, sizeof(float), &d) || !tp_mul_size(S, L * sizeof(float), &e))
        return 0;
    size_t parts[5] = {a, b, c, d, e};
    for (int i = 0; i < 5; i++) {
        size_t r;
        if (!tp_align_up(parts[i] ? parts[i] : 1, TP_ALIGN, &r) || !tp_add_size(total, r, &total))
            return 0;
    }
    return total;
}

size_t tp_enc_cost(const tp_net *net, size_t T, size_t S, size_t R, bool want_cls) {
    size_t s = net->enc->scratch_bytes(net, T, S, R);
    size_t o = io_bytes(net, T, S, R, want_cls);
    size_t total;
    if (!s || !o || !tp_add_size(s, o, &total))
        return 0;
    return total;
}

typedef struct cost_ctx {
    const tp_net *net;
    bool want_cls;
} cost_ctx;

static size_t cost_cb(void *ctx, size_t T, size_t S, size_t R) {
    const cost_ctx *c = ctx;
    return tp_enc_cost(c->net, T, S, R, c->want_cls);
}

tp_status tp_enc_run(const tp_net *net, tp_pool *pool, const tp_enc_request *reqs, size_t n,
                     const tp_enc_run_params *params, tp_enc_emit_fn emit, void *ctx,
                     tp_error *err) {
    if (!net || net->kind != TP_NET_ENCODER || !params || !emit || (n && !reqs))
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "encoder run: bad arguments");
    if (n == 0)
        return TP_OK;
    const bool want_mlm = net->head == TP_ENC_HEAD_MLM;
    const bool want_cls = params->want_cls;
    if (want_cls && net->head != TP_ENC_HEAD_CLASSIFY)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "encoder run: model has no classifier");
    const size_t V = (size_t)net->vocab_size, L = (size_t)net->num_labels;

    tp_sched_item *items = tp_malloc_array(n, sizeof *items);
    if (!items)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "encoder run: out of memory for %zu items", n);
    for (size_t i = 0; i < n; i++) {
        bool skip = !reqs[i].ids || reqs[i].n == 0;
        items[i].n_tokens = skip ? 0 : reqs[i].n;
        items[i].n_rows = skip || !want_mlm ? 0 : reqs[i].n_mlm;
    }
    cost_ctx cc = {net, want_cls};
    tp_sched_plan plan;
    tp_status st =
        tp_sched_plan_make(items, n, params->max_tokens, params->budget, cost_cb, &cc, &plan, err);
    if (st != TP_OK) {
        tp_free(items);
        return st;
    }
    tp_arena scratch = {0}, io = {0};
    /* Items over the budget fail alone, first (results go by index anyway). */
    for (size_t i = 0; i < n; i++) {
        if (!plan.over_budget[i])
            continue;
        char msg[256];
        if (plan.alone_cost[i])
            snprintf(msg, sizeof msg,
                     "the input (%zu tokens) needs %zu bytes of working memory, more than the "
                     "memory budget (%zu bytes)",
                     items[i].n_tokens, plan.alone_cost[i], params->budget);
        else
            snprintf(msg, sizeof msg, "the input (%zu tokens) is too large to plan",
                     items[i].n_tokens);
        if (!emit(ctx, i, TP_ERR_OUT_OF_MEMORY, msg, NULL, NULL)) {
            st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "encoder run: out of memory");
            goto done;
        }
    }
    if (plan.n_mb == 0)
        goto done;

    /* Size both arenas for the largest micro-batch of the plan. */
    size_t max_scratch = 0, max_io = 0;
    for (size_t b = 0; b < plan.n_mb; b++) {
        size_t T = 0, S = 0, R = 0;
        for (size_t j = plan.mb_start[b]; j < plan.mb_start[b + 1]; j++) {
            T += items[plan.order[j]].n_tokens;
            R += items[plan.order[j]].n_rows;
            S++;
        }
        size_t s = net->enc->scratch_bytes(net, T, S, R), o = io_bytes(net, T, S, R, want_cls);
        if (s > max_scratch)
            max_scratch = s;
        if (o > max_io)
            max_io = o;
    }
    if ((st = tp_arena_init(&scratch, max_scratch, err)) != TP_OK ||
        (st = tp_arena_init(&io, max_io, err)) != TP_OK)
        goto done;

    for (size_t b = 0; b < plan.n_mb; b++) {
        size_t j0 = plan.mb_start[b], j1 = plan.mb_start[b + 1];
        size_t T = 0, S = j1 - j0, R = 0;
        for (size_t j = j0; j < j1; j++) {
            T += items[plan.order[j]].n_tokens;
            R += items[plan.order[j]].n_rows;
        }
        tp_arena_reset(&io);
        int32_t *ids = tp_arena_alloc(&io, T, sizeof(int32_t));
        int32_t *cu = tp_arena_alloc(&io, S + 1, sizeof(int32_t));
        int32_t *rows = tp_arena_alloc(&io, R ? R : 1, sizeof(int32_t));
        float *mlm = R ? tp_arena_alloc(&io, R, V * sizeof(float)) : NULL;
        float *cls = want_cls ? tp_arena_alloc(&io, S, L * sizeof(float)) : NULL;
        if (!ids || !cu || !rows || (R && !mlm) || (want_cls && !cls)) {
            st = tp_fail(err, TP_ERR_INTERNAL, "encoder run: io arena smaller than planned");
            goto done;
        }
        size_t t = 0, r = 0;
        cu[0] = 0;
        for (size_t j = j0; j < j1; j++) {
            const tp_enc_request *q = &reqs[plan.order[j]];
            memcpy(ids + t, q->ids, q->n * sizeof(int32_t));
            for (size_t k = 0; k < items[plan.order[j]].n_rows; k++)
                rows[r++] = (int32_t)t + q->mlm_pos[k];
            t += q->n;
            cu[j - j0 + 1] = (int32_t)t;
        }
        tp_enc_batch eb = {
            .ids = ids,
            .cu_seqlens = cu,
            .n_seqs = S,
            .n_tokens = T,
            .mlm_rows = rows,
            .n_mlm_rows = R,
            .mlm_logits = mlm,
            .cls_logits = cls,
        };
        st = net->enc->forward(net, &eb, &scratch, pool, err);
        if (st != TP_OK) {
            tp_error_prefix(err, "encoder run, micro-batch %zu of %zu", b + 1, plan.n_mb);
            goto done;
        }
        r = 0;
        for (size_t j = j0; j < j1; j++) {
            size_t i = plan.order[j];
            const float *ml = items[i].n_rows ? mlm + r * V : NULL;
            r += items[i].n_rows;
            if (!emit(ctx, i, TP_OK, NULL, ml, cls ? cls + (j - j0) * L : NULL)) {
                st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "encoder run: out of memory");
                goto done;
            }
        }
    }
done:
    tp_arena_free(&scratch);
    tp_arena_free(&io);
    tp_sched_plan_free(&plan);
    tp_free(items);
    return st;
}
