/*
 * test_scheduler.c — the batching engine's planner: every item scheduled
 * exactly once, in length order, each micro-batch within the budget and the
 * token cap, lone items over max_tokens still run, items over the budget are
 * reported and not scheduled, empty input is an empty plan.
 */
#include "batch/scheduler.h"
#include "test_util.h"

/* cost: 100 bytes per token + 10 per sequence + 1000 per output row */
static size_t cost(void *ctx, size_t T, size_t S, size_t R) {
    (void)ctx;
    return 100 * T + 10 * S + 1000 * R;
}

static void check_plan(const tp_sched_item *items, size_t n, size_t max_tokens, size_t budget) {
    tp_sched_plan p;
    tp_error err;
    CHECK(tp_sched_plan_make(items, n, max_tokens, budget, cost, NULL, &p, &err) == TP_OK);
    size_t *seen = calloc(n ? n : 1, sizeof *seen);
    if (max_tokens == 0)
        max_tokens = SIZE_MAX; /* 0 = no token cap */
    for (size_t j = 0; j < p.n_scheduled; j++) {
        size_t i = p.order[j];
        CHECK(i < n);
        if (i < n)
            seen[i]++;
        if (j > 0) {
            size_t a = items[p.order[j - 1]].n_tokens, b = items[i].n_tokens;
            CHECK(a < b || (a == b && p.order[j - 1] < i));
        }
    }
    for (size_t i = 0; i < n; i++) {
        bool expect_run =
            items[i].n_tokens > 0 && cost(NULL, items[i].n_tokens, 1, items[i].n_rows) <= budget;
        CHECK_MSG(seen[i] == (expect_run ? 1u : 0u), "item %zu scheduled %zu times", i, seen[i]);
        CHECK(p.over_budget[i] == (items[i].n_tokens > 0 && !expect_run));
    }
    CHECK(p.mb_start[0] == 0 && p.mb_start[p.n_mb] == p.n_scheduled);
    for (size_t b = 0; b < p.n_mb; b++) {
        size_t T = 0, S = 0, R = 0;
        CHECK(p.mb_start[b] < p.mb_start[b + 1]);
        for (size_t j = p.mb_start[b]; j < p.mb_start[b + 1]; j++) {
            T += items[p.order[j]].n_tokens;
            R += items[p.order[j]].n_rows;
            S++;
        }
        CHECK(cost(NULL, T, S, R) <= budget);
        CHECK(S == 1 || T <= max_tokens);
        CHECK(cost(NULL, T, S, R) <= p.max_cost);
        /* greedy: the next item would not have fitted */
        if (p.mb_start[b + 1] < p.n_scheduled) {
            const tp_sched_item *nx = &items[p.order[p.mb_start[b + 1]]];
            CHECK(cost(NULL, T + nx->n_tokens, S + 1, R + nx->n_rows) > budget ||
                  T + nx->n_tokens > max_tokens);
        }
    }
    free(seen);
    tp_sched_plan_free(&p);
}

int main(void) {
    /* empty */
    tp_sched_plan p;
    tp_error err;
    CHECK(tp_sched_plan_make(NULL, 0, 100, 1000, cost, NULL, &p, &err) == TP_OK);
    CHECK(p.n_mb == 0 && p.n_scheduled == 0);
    tp_sched_plan_free(&p);

    /* very different lengths, some skipped, some over budget */
    enum { N = 500 };
    tp_sched_item items[N];
    uint32_t x = 12345;
    for (size_t i = 0; i < N; i++) {
        x = x * 1103515245u + 12345u;
        items[i].n_tokens = (x >> 16) % 7 == 0 ? 0 : 1 + (x >> 8) % 300;
        items[i].n_rows = (x >> 4) % 3;
    }
    items[17].n_tokens = 5000; /* over the budget alone */
    check_plan(items, N, 1000, 200000);
    check_plan(items, N, 64, 200000); /* token cap smaller than many items */
    check_plan(items, N, 0, 50000);   /* no token cap */
    check_plan(items, 1, 1000, 200000);

    /* identical lengths keep input order */
    tp_sched_item same[10];
    for (size_t i = 0; i < 10; i++)
        same[i] = (tp_sched_item){7, 1};
    CHECK(tp_sched_plan_make(same, 10, 0, 1u << 20, cost, NULL, &p, &err) == TP_OK);
    for (size_t j = 0; j < 10; j++)
        CHECK(p.order[j] == j);
    CHECK(p.n_mb == 1);
    tp_sched_plan_free(&p);
    /* default micro-batch size: what fits the budget, capped at 2048 tokens */
    CHECK_EQ_INT(tp_default_batch_tokens((size_t)256 << 20, 32 * 1024), 2048);
    CHECK_EQ_INT(tp_default_batch_tokens((size_t)16 << 20, 32 * 1024), 512);
    CHECK_EQ_INT(tp_default_batch_tokens((size_t)16 << 20, 0), 0);
    return tp_test_exit();
}
