/*
 * pool.c — a persistent thread pool.
 *
 * tp_pool_run publishes a job (fn, ctx, n_tasks) under a new generation number;
 * workers and the caller claim task indices from one atomic counter until none
 * are left. Workers spin briefly for the next generation before sleeping on a
 * condition variable, because decode steps issue hundreds of small jobs per
 * token and a futex wake-up on every one would cost more than the work.
 *
 * Determinism: which thread runs a task is not fixed, so callers make every
 * task's result a function of the task index alone (see core.h).
 */
#include "core/core.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#define SPIN_ITERS 20000

struct tp_pool {
    int n_threads; /* including the caller */
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_cond_t done_cv;
    atomic_uint_fast64_t generation;
    atomic_size_t next_task;
    atomic_int active; /* workers still inside the current job */
    atomic_bool quit;
    /* the current job (written before generation is bumped) */
    tp_task_fn fn;
    void *ctx;
    size_t n_tasks;
};

typedef struct worker_arg {
    tp_pool *pool;
    int index;
} worker_arg;

static void run_tasks(tp_pool *p, int thread) {
    for (;;) {
        size_t t = atomic_fetch_add_explicit(&p->next_task, 1, memory_order_relaxed);
        if (t >= p->n_tasks)
            break;
        p->fn(p->ctx, t, thread);
    }
}

static void *worker_main(void *arg) {
    worker_arg *wa = arg;
    tp_pool *p = wa->pool;
    int index = wa->index;
    tp_free(wa);
    uint64_t seen = 0;
    for (;;) {
        uint64_t g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen &&
               !atomic_load_explicit(&p->quit, memory_order_acquire)) {
            if (++spins < SPIN_ITERS) {
#if defined(__x86_64__) || defined(__i386__)
                __builtin_ia32_pause();
#endif
                continue;
            }
            pthread_mutex_lock(&p->mu);
            while (atomic_load_explicit(&p->generation, memory_order_acquire) == seen &&
                   !atomic_load_explicit(&p->quit, memory_order_acquire))
                pthread_cond_wait(&p->wake, &p->mu);
            pthread_mutex_unlock(&p->mu);
            spins = 0;
        }
        if (atomic_load_explicit(&p->quit, memory_order_acquire))
            return NULL;
        seen = g;
        run_tasks(p, index);
        if (atomic_fetch_sub_explicit(&p->active, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done_cv);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

int tp_num_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

tp_pool *tp_pool_create(int n_threads, tp_error *err) {
    if (n_threads <= 0)
        n_threads = tp_num_cores();
    if (n_threads > 1024) {
        tp_fail(err, TP_ERR_INVALID_ARGUMENT, "thread pool: %d threads is too many (max 1024)",
                n_threads);
        return NULL;
    }
    tp_pool *p = tp_calloc(1, sizeof *p);
    if (!p) {
        tp_fail(err, TP_ERR_OUT_OF_MEMORY, "thread pool: out of memory");
        return NULL;
    }
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    atomic_init(&p->generation, 0);
    atomic_init(&p->next_task, 0);
    atomic_init(&p->active, 0);
    atomic_init(&p->quit, false);
    if (n_threads > 1) {
        p->threads = tp_calloc((size_t)n_threads - 1, sizeof *p->threads);
        if (!p->threads) {
            tp_pool_destroy(p);
            tp_fail(err, TP_ERR_OUT_OF_MEMORY, "thread pool: out of memory");
            return NULL;
        }
        for (int i = 1; i < n_threads; i++) {
            worker_arg *wa = tp_malloc(sizeof *wa);
            if (wa) {
                wa->pool = p;
                wa->index = i;
            }
            if (!wa || pthread_create(&p->threads[i - 1], NULL, worker_main, wa) != 0) {
                tp_free(wa);
                p->n_threads = i; /* only i-1 workers exist */
                tp_pool_destroy(p);
                tp_fail(err, TP_ERR_OUT_OF_MEMORY, "thread pool: cannot start thread %d", i);
                return NULL;
            }
        }
    }
    return p;
}

void tp_pool_destroy(tp_pool *p) {
    if (!p)
        return;
    if (p->threads) {
        pthread_mutex_lock(&p->mu);
        atomic_store_explicit(&p->quit, true, memory_order_release);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
        for (int i = 1; i < p->n_threads; i++)
            pthread_join(p->threads[i - 1], NULL);
        tp_free(p->threads);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done_cv);
    tp_free(p);
}

int tp_pool_size(const tp_pool *p) {
    return p ? p->n_threads : 1;
}

void tp_pool_run(tp_pool *p, size_t n_tasks, tp_task_fn fn, void *ctx) {
    if (n_tasks == 0)
        return;
    if (!p || p->n_threads == 1 || n_tasks == 1) {
        for (size_t t = 0; t < n_tasks; t++)
            fn(ctx, t, 0);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    atomic_store_explicit(&p->next_task, 0, memory_order_relaxed);
    atomic_store_explicit(&p->active, p->n_threads - 1, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    run_tasks(p, 0);
    /* wait for the workers: spin first, then sleep */
    int spins = 0;
    while (atomic_load_explicit(&p->active, memory_order_acquire) != 0) {
        if (++spins < SPIN_ITERS) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
            continue;
        }
        pthread_mutex_lock(&p->mu);
        while (atomic_load_explicit(&p->active, memory_order_acquire) != 0)
            pthread_cond_wait(&p->done_cv, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}
