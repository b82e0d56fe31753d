/*
 * test_alloc_fail.c — allocation-failure testing in the style of SQLite's
 * malloc tests (docs/RELIABILITY.md, "Allocation failures").
 *
 * For each operation, run it with the N-th allocation failing
 * (tp_alloc_fail_set(N, persistent)) for N = 1, 2, 3, ... until a run
 * completes without reaching the injected failure; then the same with every
 * allocation from the N-th on failing (persistent). The operations:
 *
 *   load   tp_model_load on the golden ModernBERT, Qwen3 and Gemma3 folders
 *          (tests/data/golden) with real tokenizer files next to them;
 *   tok    tp_tokenizer_load (Qwen3, ModernBERT) and tp_chat_template_load
 *          (Qwen3) + one render;
 *   batch  on models loaded once: a fill-mask batch, a sentiment batch, a
 *          zero-shot batch and a completion batch of a few items.
 *
 * What every failing run must give:
 *   load/tok: the call returns TP_ERR_OUT_OF_MEMORY, err.status says so, and
 *     no object comes back (*out == NULL). A run that reaches the failure yet
 *     succeeds (a failure tpipe absorbs, e.g. the PCRE2 JIT falling back to
 *     the interpreter) must give an object that works exactly as a clean one.
 *   batch: either the call returns TP_ERR_OUT_OF_MEMORY and every out[i] is
 *     empty and carries that error (status, item = i), or the call returns
 *     TP_OK and every out[i] is bit-for-bit the clean result or empty with its
 *     own TP_ERR_OUT_OF_MEMORY (item = i); then the same batch run again
 *     without injection is bit-for-bit the clean run (the model is intact).
 * Which N: a counting run records the call stack of every allocation; then N
 * runs over 1..64 and over the first and the last allocation of every distinct
 * call stack (a site repeated in a loop takes the same failure path), and
 * finally N = count + 1, which must complete. TP_AF_FULL=1 runs every N
 * (minutes); TP_AF_STRIDE=k keeps only every k-th of the chosen N past 64
 * (default 1; 3 when TPIPE_SANITIZER_BUILD=1, to fit the sanitizer run in its
 * time limit).
 * Leaks are LeakSanitizer's job: `make check-asan` runs this test with
 * detect_leaks=1.
 */
#include "../encoder/tiny_model.h"
#include "core/core.h"
#include "test_util.h"
#include "tpipe.h"

#include <execinfo.h>
#include <limits.h>
#include <stdint.h>

static char g_root[256];
static long g_stride = 1;
static long g_from = 1; /* TP_AF_FROM: first N (to debug one case under gdb) */
static long g_total_runs;
/* batch runs ending in the call's OOM / in some items' own OOM (the rest intact) */
static long g_batch_oom, g_item_oom;

/* ------------------------------------------------------------------ folders */

static int copy_file(const char *from_dir, const char *name, const char *to_dir,
                     const char *to_name) {
    char a[2048], b[2048];
    snprintf(a, sizeof a, "%s/%s", from_dir, name);
    snprintf(b, sizeof b, "%s/%s", to_dir, to_name ? to_name : name);
    return tiny_copy(a, b);
}

/* A golden model folder (config.json + model.safetensors from tests/data/golden)
 * with the tokenizer files of tok_dir. */
static int golden_folder(const char *dst, const char *golden_case, const char *tok_dir,
                         const char *tok_config) {
    char g[2048];
    snprintf(g, sizeof g, "%s", tp_test_data("golden"));
    size_t gl = strlen(g);
    snprintf(g + gl, sizeof g - gl, "/%s", golden_case);
    mkdir(dst, 0755);
    if (copy_file(g, "config.json", dst, NULL) || copy_file(g, "model.safetensors", dst, NULL) ||
        copy_file(tok_dir, "tokenizer.json", dst, NULL))
        return -1;
    if (tok_config) {
        if (tiny_copy(tok_config, (snprintf(g, sizeof g, "%s/tokenizer_config.json", dst), g)))
            return -1;
    } else if (copy_file(tok_dir, "tokenizer_config.json", dst, NULL)) {
        return -1;
    }
    return 0;
}

static int mkmodel_qwen3(const char *out, const char *tok) {
    const char *build = getenv("TPIPE_BUILD");
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "'%s/tp_mkmodel' --family qwen3 --hidden 64 --layers 2 --heads 4 --intermediate 128 "
             "--max-positions 256 --dtype bf16 --seed 3 --quiet --tokenizer-dir '%s' --out '%s'",
             build ? build : ".", tok, out);
    return system(cmd);
}

/* ------------------------------------------------------------------ the loop */

/* An operation under test: run() does the call with injection armed (and
 * keeps what it got in the context); check() runs disarmed, is told whether
 * the injected failure was reached, checks the outcome, frees everything and
 * returns 1 (the call succeeded), 0 (a clean out-of-memory failure) or -1. */
typedef struct op {
    const char *name;
    void (*run)(void *ctx);
    int (*check)(void *ctx, bool hit);
    void *ctx;
} op;

/* The call stack of every allocation of a clean run, as a hash (observer). */
static uint64_t *g_sig;
static long g_sig_n, g_sig_cap;

static void observe(long i) {
    void *bt[32];
    int d = backtrace(bt, 32);
    uint64_t h = 1469598103934665603ull;
    for (int k = 0; k < d; k++)
        h = (h ^ (uint64_t)(uintptr_t)bt[k]) * 1099511628211ull;
    if (i > g_sig_cap) {
        long cap = g_sig_cap ? 2 * g_sig_cap : 4096;
        while (cap < i)
            cap *= 2;
        uint64_t *p = realloc(g_sig, (size_t)cap * sizeof *p);
        if (!p)
            abort();
        g_sig = p;
        g_sig_cap = cap;
    }
    g_sig[i - 1] = h;
    if (i > g_sig_n)
        g_sig_n = i;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Which N to run: every N up to 64, then the first and the last allocation of
 * every distinct call stack of the clean run (the failure paths differ by
 * call site; repeats of one site in a loop take the same path), or every N
 * with TP_AF_FULL=1. Returns the count of the clean run; *ns is malloc'd. */
static long pick_ns(const op *o, long **ns, long *n_ns, bool full) {
    g_sig_n = 0;
    tp_alloc_fail_observer(observe);
    tp_alloc_fail_set(LONG_MAX, false);
    o->run(o->ctx);
    long total = tp_alloc_fail_count();
    tp_alloc_fail_set(0, false);
    tp_alloc_fail_observer(NULL);
    int r = o->check(o->ctx, false);
    CHECK_MSG(r == 1 && total == g_sig_n, "%s: the counting run failed", o->name);
    *ns = malloc((size_t)(total + 1) * sizeof **ns);
    *n_ns = 0;
    /* (hash, index) pairs sorted by hash: first and last index of each run of equal hashes */
    typedef struct hi {
        uint64_t h;
        long i;
    } hi;
    hi *v = malloc((size_t)(total + 1) * sizeof *v);
    for (long i = 0; i < total; i++)
        v[i] = (hi){g_sig[i], i + 1};
    qsort(v, (size_t)total, sizeof *v, cmp_u64); /* by hash (the first member) */
    char *pick = calloc((size_t)total + 2, 1);
    for (long i = 0; i < total; i++) {
        if (full || v[i].i <= 64)
            pick[v[i].i] = 1;
        if (i == 0 || v[i].h != v[i - 1].h) { /* a new stack: its indexes are v[i..j) */
            long j = i, lo = v[i].i, hi_ = v[i].i;
            while (j < total && v[j].h == v[i].h) {
                lo = v[j].i < lo ? v[j].i : lo;
                hi_ = v[j].i > hi_ ? v[j].i : hi_;
                j++;
            }
            pick[lo] = pick[hi_] = 1;
        }
    }
    long past64 = 0; /* picks beyond 64: under a stride k, every k-th of them runs */
    for (long i = 1; i <= total; i++)
        if (pick[i] && (i <= 64 || full || past64++ % g_stride == 0))
            (*ns)[(*n_ns)++] = i;
    (*ns)[(*n_ns)++] = total + 1; /* must complete without reaching the failure */
    free(pick);
    free(v);
    return total;
}

static void fail_loop(const op *o, bool persistent) {
    const char *match = getenv("TP_AF_MATCH"); /* only ops whose name has this */
    if (match && !strstr(o->name, match))
        return;
    long runs = 0, failing = 0, absorbed = 0, done_at = 0, *ns, n_ns;
    double t0 = tp_now();
    const char *full = getenv("TP_AF_FULL");
    long total = pick_ns(o, &ns, &n_ns, full && *full && strcmp(full, "0"));
    for (long k = 0; k < n_ns; k++) {
        long n = ns[k];
        if (n < g_from)
            continue;
        tp_alloc_fail_set(n, persistent);
        o->run(o->ctx);
        bool hit = tp_alloc_fail_hit();
        tp_alloc_fail_set(0, false);
        int r = o->check(o->ctx, hit);
        runs++;
        if (r < 0) {
            CHECK_MSG(0, "%s: N = %ld%s: the run failed its checks (above)", o->name, n,
                      persistent ? " (persistent)" : "");
            break;
        }
        if (!hit) {
            CHECK_MSG(r == 1, "%s: N = %ld: no failure injected but the call failed", o->name, n);
            CHECK_MSG(n == total + 1, "%s: N = %ld of %ld: the failure was not reached", o->name, n,
                      total);
            done_at = n;
            break;
        }
        if (r == 1 && getenv("TP_AF_VERBOSE"))
            printf("  %s: N = %ld absorbed\n", o->name, n);
        if (r == 1)
            absorbed++;
        else
            failing++;
    }
    free(ns);
    g_total_runs += runs;
    if (g_batch_oom || g_item_oom)
        printf("  %s %s: %ld runs failed the whole batch, %ld only some items\n", o->name,
               persistent ? "persistent" : "once", g_batch_oom, g_item_oom);
    g_batch_oom = g_item_oom = 0;
    printf("%-28s %-10s %5ld allocations, %5ld runs: %5ld clean OOM, %3ld absorbed; "
           "completes at N = %ld (%.1f s)\n",
           o->name, persistent ? "persistent" : "once", total, runs, failing, absorbed, done_at,
           tp_now() - t0);
    fflush(stdout);
}

static void both_modes(const op *o) {
    fail_loop(o, false);
    fail_loop(o, true);
}

/* A failed load-style call: OOM as the status and in err, no object. */
static int check_oom_call(const char *what, tp_status st, const tp_error *err, const void *obj) {
    if (st != TP_ERR_OUT_OF_MEMORY || err->status != TP_ERR_OUT_OF_MEMORY || obj != NULL ||
        !err->message[0]) {
        fprintf(stderr, "%s: under an injected allocation failure: %s (\"%s\"), object %p\n", what,
                tp_status_name(st), err->message, obj);
        return -1;
    }
    return 0;
}

static bool same_str(const char *a, const char *b) {
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static bool same_f32(float a, float b) {
    return !memcmp(&a, &b, sizeof a);
}

/* An item the batch could not serve for lack of memory: its own OOM error. */
static bool item_oom(const tp_error *e, size_t i) {
    return e->status == TP_ERR_OUT_OF_MEMORY && e->item == (long)i && e->message[0];
}

/* ------------------------------------------------------------------ tokenizer */

static const char *const kProbe = "Hello world, ça va? 東京 🙂 [MASK] <|im_start|>user";

typedef struct tok_ctx {
    const char *dir;
    tp_tokenizer *tok;
    tp_status st;
    tp_error err;
    tp_tokenization ref;
} tok_ctx;

static bool encode_same(const tp_tokenizer *tok, const tp_tokenization *ref) {
    tp_tokenization t;
    tp_error err;
    bool ok = tp_tokenizer_encode(tok, kProbe, true, &t, &err) == TP_OK && t.n == ref->n &&
              !memcmp(t.ids, ref->ids, t.n * sizeof *t.ids) &&
              !memcmp(t.offsets, ref->offsets, 2 * t.n * sizeof *t.offsets);
    tp_tokenization_free(&t);
    return ok;
}

static void tok_run(void *vc) {
    tok_ctx *c = vc;
    tp_error_clear(&c->err);
    c->tok = NULL;
    c->st = tp_tokenizer_load(c->dir, &c->tok, &c->err);
}

static int tok_check(void *vc, bool hit) {
    tok_ctx *c = vc;
    (void)hit;
    if (c->st != TP_OK)
        return check_oom_call("tp_tokenizer_load", c->st, &c->err, c->tok);
    bool same = encode_same(c->tok, &c->ref);
    tp_tokenizer_free(c->tok);
    if (!same)
        fprintf(stderr, "tp_tokenizer_load: a tokenizer loaded under injection encodes "
                        "differently\n");
    return same ? 1 : -1;
}

static void test_tokenizer(const char *name, const char *dir) {
    tok_ctx c = {.dir = dir};
    tp_tokenizer *tok;
    tp_error err;
    if (tp_tokenizer_load(dir, &tok, &err) != TP_OK) {
        CHECK_MSG(0, "loading %s: %s", dir, err.message);
        return;
    }
    CHECK(tp_tokenizer_encode(tok, kProbe, true, &c.ref, &err) == TP_OK && c.ref.n > 5);
    tp_tokenizer_free(tok);
    op o = {name, tok_run, tok_check, &c};
    both_modes(&o);
    tp_tokenization_free(&c.ref);
}

/* ------------------------------------------------------------------ chat template */

static const char *const kChat =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", "
    "\"content\": \"Hi 🙂\"}, {\"role\": \"assistant\", \"content\": \"<think>\\nhm\\n</think>\\n"
    "Hello!\"}, {\"role\": \"user\", \"content\": \"Why?\"}]}";

typedef struct tpl_ctx {
    const char *dir;
    tp_chat_template *ct;
    tp_status st, rst;
    tp_error err, rerr;
    char *out;
    char *ref;
} tpl_ctx;

static void tpl_run(void *vc) {
    tpl_ctx *c = vc;
    tp_error_clear(&c->err);
    tp_error_clear(&c->rerr);
    c->ct = NULL;
    c->out = NULL;
    c->rst = TP_OK;
    c->st = tp_chat_template_load(c->dir, &c->ct, &c->err);
    if (c->st == TP_OK) {
        tp_chat_template_params p = tp_chat_template_default_params();
        p.enable_thinking = 0;
        c->rst = tp_chat_template_render(c->ct, kChat, &p, &c->out, &c->rerr);
    }
}

static int tpl_check(void *vc, bool hit) {
    tpl_ctx *c = vc;
    (void)hit;
    if (c->st != TP_OK)
        return check_oom_call("tp_chat_template_load", c->st, &c->err, c->ct);
    int r;
    if (c->rst != TP_OK) {
        r = check_oom_call("tp_chat_template_render", c->rst, &c->rerr, c->out);
    } else {
        r = same_str(c->out, c->ref) ? 1 : -1;
        if (r < 0)
            fprintf(stderr, "tp_chat_template_render: a different text under injection\n");
    }
    tp_chat_template_string_free(c->out);
    tp_chat_template_free(c->ct);
    return r;
}

static void test_template(const char *dir) {
    tpl_ctx c = {.dir = dir};
    tpl_run(&c);
    if (c.st != TP_OK || c.rst != TP_OK) {
        CHECK_MSG(0, "chat template of %s: %s %s", dir, c.err.message, c.rerr.message);
        tp_chat_template_free(c.ct);
        return;
    }
    c.ref = c.out;
    tp_chat_template_free(c.ct);
    op o = {"chat template load+render", tpl_run, tpl_check, &c};
    both_modes(&o);
    tp_chat_template_string_free(c.ref);
}

/* ------------------------------------------------------------------ model load */

typedef struct load_ctx {
    const char *dir;
    tp_model *m;
    tp_status st;
    tp_error err;
    tp_tokenization ref;
    tp_model_task task;
} load_ctx;

static void load_run(void *vc) {
    load_ctx *c = vc;
    tp_error_clear(&c->err);
    c->m = NULL;
    tp_model_params p = tp_model_default_params();
    p.n_threads = 1;
    c->st = tp_model_load(c->dir, &p, &c->m, &c->err);
}

static int load_check(void *vc, bool hit) {
    load_ctx *c = vc;
    (void)hit;
    if (c->st != TP_OK)
        return check_oom_call("tp_model_load", c->st, &c->err, c->m);
    bool same =
        tp_model_get_task(c->m) == c->task && encode_same(tp_model_tokenizer(c->m), &c->ref);
    tp_model_free(c->m);
    if (!same)
        fprintf(stderr, "tp_model_load: a model loaded under injection differs\n");
    return same ? 1 : -1;
}

static void test_load(const char *name, const char *dir) {
    load_ctx c = {.dir = dir};
    load_run(&c);
    if (c.st != TP_OK) {
        CHECK_MSG(0, "loading %s: %s", dir, c.err.message);
        return;
    }
    tp_error err;
    CHECK(tp_tokenizer_encode(tp_model_tokenizer(c.m), kProbe, true, &c.ref, &err) == TP_OK);
    c.task = tp_model_get_task(c.m);
    tp_model_free(c.m);
    op o = {name, load_run, load_check, &c};
    both_modes(&o);
    tp_tokenization_free(&c.ref);
}

/* ------------------------------------------------------------------ batches */

/* A batch under test: call() runs it into out; same() compares one item with
 * the clean run's; empty() says an item holds no value; free_all() frees. */
typedef struct batch_ctx {
    const char *name;
    size_t n, size;
    void *ref, *out;
    tp_status st;
    tp_error err;
    tp_status (*call)(struct batch_ctx *c, void *out, tp_error *err);
    bool (*same)(const void *a, const void *b);
    bool (*empty)(const void *r);
    void (*free_all)(void *r, size_t n);
    tp_model *m;
    const char *const *texts;
    const char *const *labels;
    size_t n_labels;
    const tp_gen_options *gen_opts;
} batch_ctx;

#define ITEM(c, base, i) ((char *)(base) + (i) * (c)->size)
/* Every result struct starts with its tp_error. */
#define ITEM_ERR(c, base, i) ((const tp_error *)ITEM(c, base, i))

static void batch_run(void *vc) {
    batch_ctx *c = vc;
    tp_error_clear(&c->err);
    memset(c->out, 0xA5, c->n * c->size); /* the call must set every field it leaves */
    c->st = c->call(c, c->out, &c->err);
}

static int batch_check(void *vc, bool hit) {
    batch_ctx *c = vc;
    (void)hit;
    int r = 1;
    if (c->st == TP_ERR_OUT_OF_MEMORY) {
        r = 0;
        g_batch_oom++;
        if (c->err.status != TP_ERR_OUT_OF_MEMORY || !c->err.message[0]) {
            fprintf(stderr, "%s: batch OOM with err %s\n", c->name, tp_status_name(c->err.status));
            r = -1;
        }
        for (size_t i = 0; i < c->n && r == 0; i++) {
            if (!item_oom(ITEM_ERR(c, c->out, i), i) || !c->empty(ITEM(c, c->out, i))) {
                fprintf(stderr, "%s: batch OOM but item %zu is %s (item %ld) or not empty\n",
                        c->name, i, tp_status_name(ITEM_ERR(c, c->out, i)->status),
                        ITEM_ERR(c, c->out, i)->item);
                r = -1;
            }
        }
    } else if (c->st == TP_OK) {
        for (size_t i = 0; i < c->n; i++) {
            if (c->same(ITEM(c, c->out, i), ITEM(c, c->ref, i)))
                continue;
            /* the item's own allocation failed (tokenizing it, its result) */
            if (item_oom(ITEM_ERR(c, c->out, i), i) && c->empty(ITEM(c, c->out, i))) {
                if (r == 1)
                    g_item_oom++;
                r = r == 1 ? 0 : r;
                continue;
            }
            fprintf(stderr, "%s: item %zu differs from the clean run (%s: %s)\n", c->name, i,
                    tp_status_name(ITEM_ERR(c, c->out, i)->status),
                    ITEM_ERR(c, c->out, i)->message);
            r = -1;
        }
    } else {
        fprintf(stderr, "%s: batch status %s (%s) under an injected allocation failure\n", c->name,
                tp_status_name(c->st), c->err.message);
        r = -1;
    }
    c->free_all(c->out, c->n);
    /* the model is intact: the same batch again, no injection, is the clean run */
    tp_error err;
    tp_status st = c->call(c, c->out, &err);
    bool same = st == TP_OK;
    for (size_t i = 0; same && i < c->n; i++)
        same = c->same(ITEM(c, c->out, i), ITEM(c, c->ref, i));
    c->free_all(c->out, c->n);
    if (!same) {
        fprintf(stderr, "%s: the rerun without injection differs from the clean run\n", c->name);
        return -1;
    }
    return r;
}

static void test_batch(batch_ctx *c) {
    c->ref = calloc(c->n, c->size);
    c->out = calloc(c->n, c->size);
    tp_error err;
    tp_status st = c->call(c, c->ref, &err);
    CHECK_MSG(st == TP_OK, "%s: clean run: %s", c->name, err.message);
    if (st == TP_OK) {
        size_t ok = 0;
        for (size_t i = 0; i < c->n; i++)
            ok += ITEM_ERR(c, c->ref, i)->status == TP_OK;
        CHECK_MSG(ok + 1 >= c->n, "%s: clean run: only %zu of %zu items succeeded", c->name, ok,
                  c->n);
        op o = {c->name, batch_run, batch_check, c};
        both_modes(&o);
    }
    c->free_all(c->ref, c->n);
    free(c->ref);
    free(c->out);
}

/* fill-mask */
static tp_status fm_call(batch_ctx *c, void *out, tp_error *err) {
    return tp_fill_mask_predict_top_k_batch(c->m, c->texts, c->n, 3, NULL, out, err);
}
static bool fm_same(const void *va, const void *vb) {
    const tp_fill_mask_result *a = va, *b = vb;
    if (a->error.status != b->error.status || a->truncated != b->truncated ||
        !same_str(a->filled, b->filled))
        return false;
    if (a->error.status != TP_OK)
        return a->error.item == b->error.item && !strcmp(a->error.message, b->error.message);
    if (a->n_masks != b->n_masks || a->k != b->k)
        return false;
    for (size_t j = 0; j < a->n_masks * a->k; j++) {
        const tp_fill_mask_prediction *p = &a->predictions[j], *q = &b->predictions[j];
        if (p->token != q->token || !same_f32(p->score, q->score) ||
            !same_str(p->token_str, q->token_str) || !same_str(p->sequence, q->sequence))
            return false;
    }
    return true;
}
static bool fm_empty(const void *v) {
    const tp_fill_mask_result *r = v;
    return !r->predictions && !r->filled;
}
static void fm_free(void *r, size_t n) {
    tp_fill_mask_result_free_all(r, n);
}

/* sentiment */
static tp_status se_call(batch_ctx *c, void *out, tp_error *err) {
    return tp_sentiment_predict_all_scores_batch(c->m, c->texts, c->n, NULL, out, err);
}
static bool se_same(const void *va, const void *vb) {
    const tp_sentiment_result *a = va, *b = vb;
    if (a->error.status != b->error.status || a->truncated != b->truncated ||
        a->n_scores != b->n_scores)
        return false;
    if (a->error.status != TP_OK)
        return a->error.item == b->error.item && !strcmp(a->error.message, b->error.message);
    for (size_t j = 0; j < a->n_scores; j++)
        if (a->scores[j].id != b->scores[j].id ||
            !same_f32(a->scores[j].score, b->scores[j].score) ||
            !same_str(a->scores[j].label, b->scores[j].label))
            return false;
    return true;
}
static bool se_empty(const void *v) {
    const tp_sentiment_result *r = v;
    return !r->scores && !r->n_scores;
}
static void se_free(void *r, size_t n) {
    tp_sentiment_result_free_all(r, n);
}

/* zero-shot */
static tp_status zs_call(batch_ctx *c, void *out, tp_error *err) {
    tp_zero_shot_params p = tp_zero_shot_default_params();
    return tp_zero_shot_predict_batch(c->m, c->texts, c->n, c->labels, c->n_labels, &p, out, err);
}
static bool zs_same(const void *va, const void *vb) {
    const tp_zero_shot_result *a = va, *b = vb;
    if (a->error.status != b->error.status || a->truncated != b->truncated ||
        a->n_labels != b->n_labels)
        return false;
    if (a->error.status != TP_OK)
        return a->error.item == b->error.item && !strcmp(a->error.message, b->error.message);
    for (size_t j = 0; j < a->n_labels; j++)
        if (!same_str(a->labels[j], b->labels[j]) || !same_f32(a->scores[j], b->scores[j]))
            return false;
    return true;
}
static bool zs_empty(const void *v) {
    const tp_zero_shot_result *r = v;
    return !r->labels && !r->scores && !r->n_labels;
}
static void zs_free(void *r, size_t n) {
    tp_zero_shot_result_free_all(r, n);
}

/* text generation */
static tp_status gen_call(batch_ctx *c, void *out, tp_error *err) {
    tp_generate_params p = tp_generate_default_params();
    p.max_batch = 2; /* items wait for a slot: the refill path runs too */
    return tp_completion_batch(c->m, c->texts, c->n, &p, c->gen_opts, out, NULL, err);
}
static bool gen_same(const void *va, const void *vb) {
    const tp_gen_result *a = va, *b = vb;
    if (a->error.status != b->error.status)
        return false;
    if (a->error.status != TP_OK)
        return a->error.item == b->error.item && !strcmp(a->error.message, b->error.message);
    return a->finish_reason == b->finish_reason && a->prompt_tokens == b->prompt_tokens &&
           a->completion_tokens == b->completion_tokens && a->truncated == b->truncated &&
           (!a->completion_tokens ||
            !memcmp(a->tokens, b->tokens, a->completion_tokens * sizeof *a->tokens)) &&
           same_str(a->text, b->text) && same_str(a->reasoning, b->reasoning) &&
           same_str(a->content, b->content);
}
static bool gen_empty(const void *v) {
    const tp_gen_result *r = v;
    return !r->text && !r->reasoning && !r->content && !r->tokens && !r->completion_tokens;
}
static void gen_free(void *r, size_t n) {
    tp_gen_result_free_all(r, n);
}

/* ------------------------------------------------------------------ main */

static tp_model *load_or_die(const char *dir) {
    tp_model *m = NULL;
    tp_error err;
    tp_model_params p = tp_model_default_params();
    p.n_threads = 1;
    p.max_batch_tokens = 24; /* several micro-batches per batch */
    if (tp_model_load(dir, &p, &m, &err) != TP_OK) {
        fprintf(stderr, "loading %s: %s\n", dir, err.message);
        exit(1);
    }
    return m;
}

int main(int argc, char **argv) {
    const char *mb_tok = tp_test_shared_or_data("tokenizers/modernbert");
    char mb_tok_dir[1024], qw_tok_dir[1024];
    snprintf(mb_tok_dir, sizeof mb_tok_dir, "%s", mb_tok ? mb_tok : "");
    const char *qw_tok = tp_test_shared_or_data("tokenizers/qwen3");
    snprintf(qw_tok_dir, sizeof qw_tok_dir, "%s", qw_tok ? qw_tok : "");
    if (!mb_tok || !qw_tok) {
        printf("SKIP: the ModernBERT / Qwen3 tokenizers are in neither tests/data nor ../shared\n");
        return 0;
    }
    const char *san = getenv("TPIPE_SANITIZER_BUILD");
    const char *stride = getenv("TP_AF_STRIDE");
    if (stride)
        g_stride = atol(stride) > 0 ? atol(stride) : 1;
    else if (san && *san && strcmp(san, "0"))
        g_stride = 3; /* ASan + LSan are ~10x slower: every 3rd call stack past N = 64 */
    printf("stride after N = 64: %ld\n", g_stride);
    if (getenv("TP_AF_FROM"))
        g_from = atol(getenv("TP_AF_FROM")) > 0 ? atol(getenv("TP_AF_FROM")) : 1;
    /* one part: tok, load or batch (argument, or TP_AF_ONLY); none: all three */
    const char *only = argc > 1 ? argv[1] : getenv("TP_AF_ONLY");
    snprintf(g_root, sizeof g_root, "%s", tiny_tmpdir("allocfail"));
    char d[1024];
    double t0 = tp_now();

    if (!only || !strcmp(only, "tok")) {
        test_tokenizer("tokenizer load (Qwen3)", qw_tok_dir);
        test_tokenizer("tokenizer load (ModernBERT)", mb_tok_dir);
        test_template(qw_tok_dir);
    }

    if (!only || !strcmp(only, "load")) {
        snprintf(d, sizeof d, "%s/modernbert_mlm", g_root);
        CHECK(golden_folder(d, "modernbert_mlm", mb_tok_dir, NULL) == 0);
        test_load("model load (ModernBERT MLM)", d);
        snprintf(d, sizeof d, "%s/modernbert_cls", g_root);
        CHECK(golden_folder(d, "modernbert_seqcls_mean", mb_tok_dir, NULL) == 0);
        test_load("model load (ModernBERT cls)", d);
        snprintf(d, sizeof d, "%s/qwen3", g_root);
        CHECK(golden_folder(d, "qwen3_tied", qw_tok_dir, NULL) == 0);
        test_load("model load (Qwen3)", d);
        /* Gemma3 weights with Gemma's tokenizer_config.json (its chat template)
         * and, as tests/data has no Gemma tokenizer.json (33 MB), Qwen3's */
        char gcfg[1024];
        snprintf(gcfg, sizeof gcfg, "%s", tp_test_data("templates/gemma3_tokenizer_config.json"));
        snprintf(d, sizeof d, "%s/gemma3", g_root);
        CHECK(golden_folder(d, "gemma3_pattern_linear_rope", qw_tok_dir, gcfg) == 0);
        test_load("model load (Gemma3)", d);
    }

    if (!only || !strcmp(only, "batch")) {
        /* fill-mask: tiny ModernBERT MLM with the real tokenizer */
        snprintf(d, sizeof d, "%s/tiny_mlm", g_root);
        tiny_cfg mc = tiny_default("ModernBertForMaskedLM");
        CHECK(tiny_write_model(d, &mc) == 0);
        tp_model *m = load_or_die(d);
        static const char *const fm_texts[] = {
            "The capital of France is [MASK].",
            "no mask here",
            "[MASK] and [MASK] went up the hill to fetch a pail of water.",
            "A much longer sentence about a lovely city in spring, where the [MASK] is "
            "really great and the music was terrible but the acting was fine.",
            "café naïve über 東京 🙂 [MASK]",
        };
        batch_ctx fm = {.name = "fill-mask batch",
                        .n = 5,
                        .size = sizeof(tp_fill_mask_result),
                        .call = fm_call,
                        .same = fm_same,
                        .empty = fm_empty,
                        .free_all = fm_free,
                        .m = m,
                        .texts = fm_texts};
        test_batch(&fm);
        tp_model_free(m);

        /* sentiment and zero-shot: tiny ModernBERT classifiers */
        static const char *const se_labels[] = {"NEGATIVE", "POSITIVE", NULL};
        static const char *const nli_labels[] = {"entailment", "neutral", "contradiction", NULL};
        static const char *const se_texts[] = {
            "I loved this movie.",
            "Terrible acting, boring plot, but the music was great.",
            "",
            "meh",
            "A long review that goes on and on about the lovely city, the quick brown fox and "
            "the lazy dog, and whether any of it was worth the ticket in the end.",
        };
        snprintf(d, sizeof d, "%s/tiny_cls", g_root);
        tiny_cfg sc = tiny_default("ModernBertForSequenceClassification");
        sc.labels = se_labels;
        CHECK(tiny_write_model(d, &sc) == 0);
        m = load_or_die(d);
        batch_ctx se = {.name = "sentiment batch",
                        .n = 5,
                        .size = sizeof(tp_sentiment_result),
                        .call = se_call,
                        .same = se_same,
                        .empty = se_empty,
                        .free_all = se_free,
                        .m = m,
                        .texts = se_texts};
        test_batch(&se);
        tp_model_free(m);

        snprintf(d, sizeof d, "%s/tiny_nli", g_root);
        tiny_cfg nc = tiny_default("ModernBertForSequenceClassification");
        nc.labels = nli_labels;
        CHECK(tiny_write_model(d, &nc) == 0);
        m = load_or_die(d);
        static const char *const zs_labels[] = {"travel", "cooking", "dancing", "politics"};
        batch_ctx zs = {.name = "zero-shot batch",
                        .n = 3,
                        .size = sizeof(tp_zero_shot_result),
                        .call = zs_call,
                        .same = zs_same,
                        .empty = zs_empty,
                        .free_all = zs_free,
                        .m = m,
                        .texts = se_texts,
                        .labels = zs_labels,
                        .n_labels = 4};
        test_batch(&zs);
        tp_model_free(m);

        /* generation: a small random Qwen3 with the real tokenizer */
        snprintf(d, sizeof d, "%s/qwen3_gen", g_root);
        if (mkmodel_qwen3(d, qw_tok_dir) != 0) {
            CHECK_MSG(0, "tp_mkmodel failed");
        } else {
            m = load_or_die(d);
            static const char *const prompts[] = {"Hello", "The quick brown fox jumps over",
                                                  "héllo wörld 你好", "Q: 2+2?\nA:"};
            static const char *const stop[] = {"o"};
            tp_gen_options go[4];
            for (int i = 0; i < 4; i++) {
                go[i] = tp_gen_options_unset();
                go[i].max_new_tokens = 3 + i;
                go[i].temperature = i % 2 ? 0.8f : 0.0f;
                go[i].seed = 7 + i;
            }
            go[2].stop = stop;
            go[2].n_stop = 1;
            go[3].repetition_penalty = 1.2f;
            batch_ctx ge = {.name = "completion batch",
                            .n = 4,
                            .size = sizeof(tp_gen_result),
                            .call = gen_call,
                            .same = gen_same,
                            .empty = gen_empty,
                            .free_all = gen_free,
                            .m = m,
                            .texts = prompts,
                            .gen_opts = go};
            test_batch(&ge);
            tp_model_free(m);
        }
    }
    printf("%ld runs in %.1f s\n", g_total_runs, tp_now() - t0);
    tiny_rmtree(g_root);
    return tp_test_exit();
}
