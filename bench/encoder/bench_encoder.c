/*
 * bench_encoder.c — ModernBERT encoder throughput: sequences/s and tokens/s of
 * a ModernBERT-base-shaped classifier (random weights written here: hidden
 * 768, 22 layers, 12 heads, intermediate 1152, vocab 50368, 3 labels) at
 * batch sizes 1, 8, 32, 128 and sequence lengths 16..512, run one-by-one (one
 * engine call per sequence, as tp_sentiment_predict does) and batched (one
 * engine call for the whole batch: length-sorted, packed micro-batches under
 * the memory budget), in f32 and bf16 compute, next to the machine's f32 FMA
 * and bf16 dot-product peaks probed in the same run.
 *
 * The engine path measured is the one every encoder pipeline uses
 * (tp_enc_run: scheduler + packed forward + classifier on pooled rows); only
 * tokenization is left out, so the sequence lengths are exact.
 *
 * Usage: bench_encoder [--full] [--threads N] [--model-dir DIR] [--f32-only]
 *                      [--shape BATCHxLEN] [--max-tokens N]
 *   default run: about 1-3 minutes; --full adds the large shapes.
 * Prints a table and `BENCH <key> <value> <unit>` lines (../shared/CLI.md).
 */
#include "batch/encoder_run.h"
#include "batch/scheduler.h"
#include "core/core.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "models/model.h"
#include "tensor/tensor.h"

#include "../kernels/probe.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { H = 768, I = 1152, LAYERS = 22, HEADS = 12, VOCAB = 50368, LABELS = 3, LOCAL = 128 };

static int n_threads;
static tp_pool *pool;
static size_t g_max_tokens; /* --max-tokens: micro-batch token cap (0: from the budget) */

/* ---------------------------------------------------------------- weights */

typedef struct wt {
    char name[96];
    int64_t d0, d1; /* d1 == 0: vector */
    float center, spread;
} wt;

static uint64_t rng_state;
static float rnd(float center, float spread) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return center + spread * (float)((double)(rng_state >> 11) / 4503599627370496.0 - 1.0);
}

static int cmp_wt(const void *a, const void *b) {
    return strcmp(((const wt *)a)->name, ((const wt *)b)->name);
}

/* Writes config.json + model.safetensors (F32) of the base shape, streaming. */
static int write_model(const char *dir) {
    mkdir(dir, 0755);
    static wt w[16 + LAYERS * 8];
    int n = 0;
    const float s = 0.03f;
#define ADD(nm, a, b, c, sp)                                                                       \
    do {                                                                                           \
        snprintf(w[n].name, sizeof w[n].name, "%s", nm);                                           \
        w[n].d0 = a;                                                                               \
        w[n].d1 = b;                                                                               \
        w[n].center = c;                                                                           \
        w[n].spread = sp;                                                                          \
        n++;                                                                                       \
    } while (0)
    char nm[96];
    ADD("model.embeddings.tok_embeddings.weight", VOCAB, H, 0.0f, 1.0f);
    ADD("model.embeddings.norm.weight", H, 0, 1.0f, 0.1f);
    for (int l = 0; l < LAYERS; l++) {
        if (l) {
            snprintf(nm, sizeof nm, "model.layers.%d.attn_norm.weight", l);
            ADD(nm, H, 0, 1.0f, 0.1f);
        }
        snprintf(nm, sizeof nm, "model.layers.%d.attn.Wqkv.weight", l);
        ADD(nm, 3 * H, H, 0.0f, s);
        snprintf(nm, sizeof nm, "model.layers.%d.attn.Wo.weight", l);
        ADD(nm, H, H, 0.0f, s);
        snprintf(nm, sizeof nm, "model.layers.%d.mlp_norm.weight", l);
        ADD(nm, H, 0, 1.0f, 0.1f);
        snprintf(nm, sizeof nm, "model.layers.%d.mlp.Wi.weight", l);
        ADD(nm, 2 * I, H, 0.0f, s);
        snprintf(nm, sizeof nm, "model.layers.%d.mlp.Wo.weight", l);
        ADD(nm, H, I, 0.0f, s);
    }
    ADD("model.final_norm.weight", H, 0, 1.0f, 0.1f);
    ADD("head.dense.weight", H, H, 0.0f, s);
    ADD("head.norm.weight", H, 0, 1.0f, 0.1f);
    ADD("classifier.weight", LABELS, H, 0.0f, 0.1f);
    ADD("classifier.bias", LABELS, 0, 0.0f, 0.1f);
#undef ADD
    qsort(w, (size_t)n, sizeof w[0], cmp_wt);
    cJSON *h = cJSON_CreateObject();
    cJSON_AddStringToObject(cJSON_AddObjectToObject(h, "__metadata__"), "format", "pt");
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        cJSON *e = cJSON_AddObjectToObject(h, w[i].name);
        cJSON_AddStringToObject(e, "dtype", "F32");
        cJSON *sh = cJSON_AddArrayToObject(e, "shape");
        cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)w[i].d0));
        if (w[i].d1)
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)w[i].d1));
        cJSON *o = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
        off += (size_t)w[i].d0 * (size_t)(w[i].d1 ? w[i].d1 : 1) * 4;
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
    }
    char *js = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors.tmp", dir);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t len = strlen(js), padded = (len + 7) / 8 * 8;
    uint64_t hl = padded;
    fwrite(&hl, 8, 1, f);
    fwrite(js, 1, len, f);
    for (size_t i = len; i < padded; i++)
        fputc(' ', f);
    free(js);
    static float buf[1 << 16];
    rng_state = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < n; i++) {
        size_t cnt = (size_t)w[i].d0 * (size_t)(w[i].d1 ? w[i].d1 : 1);
        while (cnt) {
            size_t c = cnt < (1u << 16) ? cnt : (1u << 16);
            for (size_t j = 0; j < c; j++)
                buf[j] = rnd(w[i].center, w[i].spread);
            fwrite(buf, 4, c, f);
            cnt -= c;
        }
    }
    if (fclose(f) != 0)
        return -1;
    char final_path[4200];
    snprintf(final_path, sizeof final_path, "%s/model.safetensors", dir);
    rename(path, final_path);
    snprintf(path, sizeof path, "%s/config.json", dir);
    f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f,
            "{\"architectures\": [\"ModernBertForSequenceClassification\"], \"model_type\": "
            "\"modernbert\", \"vocab_size\": %d, \"hidden_size\": %d, \"intermediate_size\": %d, "
            "\"num_hidden_layers\": %d, \"num_attention_heads\": %d, \"max_position_embeddings\": "
            "8192, \"local_attention\": %d, \"global_attn_every_n_layers\": 3, "
            "\"global_rope_theta\": 160000.0, \"local_rope_theta\": 10000.0, \"norm_eps\": 1e-05, "
            "\"norm_bias\": false, \"attention_bias\": false, \"mlp_bias\": false, "
            "\"classifier_bias\": false, \"hidden_activation\": \"gelu\", "
            "\"classifier_activation\": \"gelu\", \"classifier_pooling\": \"mean\", "
            "\"id2label\": {\"0\": \"negative\", \"1\": \"neutral\", \"2\": \"positive\"}}\n",
            VOCAB, H, I, LAYERS, HEADS, LOCAL);
    return fclose(f);
}

/* ---------------------------------------------------------------- probes */

typedef struct probe_ctx {
    int kind;
    long iters;
    double sink;
} probe_ctx;

static void probe_task(void *vctx, size_t task, int thread) {
    (void)task;
    (void)thread;
    probe_ctx *c = vctx;
    double r = c->kind == 0 ? probe_fma_f32(c->iters) : probe_dp_bf16(c->iters);
    if (r == 12345.678)
        c->sink += r;
}

/* GFLOP/s of the whole machine (all threads): f32 FMA (kind 0) or bf16 dp (1). */
static double peak_probe(int kind) {
    probe_ctx c = {kind, 2000000, 0};
    size_t tasks = (size_t)n_threads * 4;
    tp_pool_run(pool, tasks, probe_task, &c);
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = tp_now();
        tp_pool_run(pool, tasks, probe_task, &c);
        double t = tp_now() - t0;
        double g = (double)tasks * (double)c.iters * 12.0 * (kind == 0 ? 32.0 : 64.0) / t / 1e9;
        best = g > best ? g : best;
    }
    return best;
}

/* ---------------------------------------------------------------- timing */

static bool sink_emit(void *ctx, size_t item, tp_status st, const char *msg, const float *mlm,
                      const float *cls) {
    (void)item;
    (void)msg;
    (void)mlm;
    if (st != TP_OK)
        return false;
    *(float *)ctx += cls[0];
    return true;
}

/* Seconds for running `n` sequences of `len` tokens: one engine call each
 * (batched == false) or one call for all. Best of `reps`. */
static double run(const tp_net *net, size_t n, size_t len, bool batched, int reps) {
    int32_t *ids = malloc(n * len * sizeof *ids);
    tp_enc_request *req = calloc(n, sizeof *req);
    uint32_t x = 7;
    for (size_t i = 0; i < n * len; i++) {
        x = x * 1103515245u + 12345u;
        ids[i] = (int32_t)((x >> 8) % 50000);
    }
    for (size_t i = 0; i < n; i++) {
        ids[i * len] = 50281; /* [CLS] */
        ids[i * len + len - 1] = 50282;
        req[i].ids = ids + i * len;
        req[i].n = len;
    }
    tp_enc_run_params rp = {.max_tokens = 0, .budget = (size_t)256 << 20, .want_cls = true};
    /* the default of tp_model_load */
    rp.max_tokens =
        g_max_tokens ? g_max_tokens : tp_default_batch_tokens(rp.budget, net->act_bytes_per_token);
    float sink = 0;
    double best = 1e30;
    tp_error err;
    for (int r = 0; r < reps; r++) {
        double t0 = tp_now();
        if (batched) {
            if (tp_enc_run(net, pool, req, n, &rp, sink_emit, &sink, &err) != TP_OK)
                fprintf(stderr, "run failed: %s\n", err.message);
        } else {
            for (size_t i = 0; i < n; i++)
                if (tp_enc_run(net, pool, &req[i], 1, &rp, sink_emit, &sink, &err) != TP_OK)
                    fprintf(stderr, "run failed: %s\n", err.message);
        }
        double t = tp_now() - t0;
        best = t < best ? t : best;
    }
    free(ids);
    free(req);
    return best;
}

/* FLOPs per sequence of len tokens: the linear layers (2 x weights x tokens)
 * plus attention (QK^T and PV: 4 x H x visible keys per token and layer). */
static double flops_seq(size_t len) {
    double lin = 2.0 * (double)(3 * H * H + H * H + 2 * I * H + I * H) * LAYERS * (double)len;
    double att = 0;
    for (int l = 0; l < LAYERS; l++) {
        double keys = l % 3 == 0 ? (double)len : (double)(len < LOCAL + 1 ? len : LOCAL + 1);
        att += 4.0 * H * keys * (double)len;
    }
    return lin + att;
}

typedef struct shape {
    size_t batch, len;
} shape;

int main(int argc, char **argv) {
    bool full = false, f32_only = false;
    shape custom = {0, 0};
    const char *dir = "/tmp/tpipe-bench-modernbert-base";
    n_threads = tp_num_cores();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--full"))
            full = true;
        else if (!strcmp(argv[i], "--f32-only"))
            f32_only = true;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            n_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--model-dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--max-tokens") && i + 1 < argc)
            g_max_tokens = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--shape") && i + 1 < argc &&
                 sscanf(argv[i + 1], "%zux%zu", &custom.batch, &custom.len) == 2 &&
                 custom.batch > 0 && custom.len >= 2)
            i++;
        else {
            fprintf(stderr, "usage: bench_encoder [--full] [--f32-only] [--threads N] "
                            "[--model-dir DIR] [--shape BATCHxLEN] [--max-tokens N]\n");
            return 2;
        }
    }
    tp_error err;
    pool = tp_pool_create(n_threads, &err);
    if (!pool) {
        fprintf(stderr, "thread pool: %s\n", err.message);
        return 1;
    }
    tp_cpu_features cpu = tp_cpu_detect();
    char st_path[4200];
    snprintf(st_path, sizeof st_path, "%s/model.safetensors", dir);
    if (!tp_file_exists(st_path)) {
        printf("writing a ModernBERT-base-shaped random model to %s ...\n", dir);
        fflush(stdout);
        if (write_model(dir) != 0) {
            fprintf(stderr, "could not write %s\n", dir);
            return 1;
        }
    }
    double peak_f32 = cpu.avx512f ? peak_probe(0) : 0;
    double peak_bf16 = cpu.avx512_bf16 ? peak_probe(1) : 0;
    printf("machine: %d threads, ISA %s; probes: f32 FMA peak %.1f GFLOP/s, bf16 dot-product peak "
           "%.1f GFLOP/s\n",
           n_threads, tp_isa_name(tp_get_isa()), peak_f32, peak_bf16);
    printf("BENCH probe.fma_peak_f32 %.1f GFLOP/s\n", peak_f32);
    printf("BENCH probe.dp_peak_bf16 %.1f GFLOP/s\n", peak_bf16);

    static const shape kDefault[] = {{1, 16},  {8, 16},   {32, 16}, {128, 16}, {1, 128},
                                     {8, 128}, {32, 128}, {1, 512}, {8, 512}};
    static const shape kFull[] = {{1, 16},   {8, 16},    {32, 16},  {128, 16}, {1, 64},
                                  {8, 64},   {32, 64},   {128, 64}, {1, 128},  {8, 128},
                                  {32, 128}, {128, 128}, {1, 256},  {8, 256},  {32, 256},
                                  {1, 512},  {8, 512},   {32, 512}, {128, 512}};
    const shape *shapes = full ? kFull : kDefault;
    size_t n_shapes = full ? sizeof kFull / sizeof kFull[0] : sizeof kDefault / sizeof kDefault[0];
    if (custom.batch) {
        shapes = &custom;
        n_shapes = 1;
    }

    for (int prec = 0; prec < 2; prec++) {
        if (prec == 1 && (f32_only || !cpu.avx512_bf16)) {
            if (!f32_only)
                printf("bf16: skipped (this CPU has no AVX512_BF16)\n");
            continue;
        }
        const char *pname = prec ? "bf16" : "f32";
        double peak = prec ? peak_bf16 : peak_f32;
        tp_json_doc cfg;
        tp_st_model *st = NULL;
        tp_net *net = NULL;
        char cfg_path[4200];
        snprintf(cfg_path, sizeof cfg_path, "%s/config.json", dir);
        double tl = tp_now();
        if (tp_json_load(cfg_path, &cfg, &err) != TP_OK || tp_st_open(dir, &st, &err) != TP_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        tp_net_load_args la = {.dir = dir,
                               .config = &cfg,
                               .st = st,
                               .compute = prec ? TP_COMPUTE_BF16 : TP_COMPUTE_F32};
        if (tp_net_load(&la, &net, &err) != TP_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        run(net, 2, 64, true, 1); /* warm up: pages of the weights, thread pool */
        printf("\n%s compute (load + prepare %.2f s)\n", pname, tp_now() - tl);
        printf("%6s %5s | %12s %10s | %12s %10s %8s | %9s %7s\n", "batch", "len", "one-by-one",
               "tok/s", "batched", "tok/s", "speedup", "GFLOP/s", "% peak");
        for (size_t s = 0; s < n_shapes; s++) {
            size_t b = shapes[s].batch, len = shapes[s].len;
            double work = (double)(b * len);
            int reps = work <= 2048 ? 3 : 1;
            double t1 = run(net, b, len, false, reps);
            double tb = b == 1 ? t1 : run(net, b, len, true, reps);
            double gf = flops_seq(len) * (double)b / tb / 1e9;
            printf("%6zu %5zu | %9.1f sq/s %10.0f | %9.1f sq/s %10.0f %7.2fx | %9.1f %6.1f%%\n", b,
                   len, (double)b / t1, work / t1, (double)b / tb, work / tb, t1 / tb, gf,
                   peak > 0 ? 100.0 * gf / peak : 0.0);
            printf("BENCH encoder.modernbert-base.%s.b%zu.s%zu.batched %.1f seq/s\n", pname, b, len,
                   (double)b / tb);
            printf("BENCH encoder.modernbert-base.%s.b%zu.s%zu.batched_tokens %.0f tok/s\n", pname,
                   b, len, work / tb);
            printf("BENCH encoder.modernbert-base.%s.b%zu.s%zu.one_by_one %.1f seq/s\n", pname, b,
                   len, (double)b / t1);
            printf("BENCH encoder.modernbert-base.%s.b%zu.s%zu.speedup %.2f x\n", pname, b, len,
                   t1 / tb);
            printf("BENCH encoder.modernbert-base.%s.b%zu.s%zu.pct_peak %.1f %%\n", pname, b, len,
                   peak > 0 ? 100.0 * gf / peak : 0.0);
            fflush(stdout);
        }
        tp_net_free(net);
        tp_st_close(st);
        tp_json_free(&cfg);
    }
    tp_pool_destroy(pool);
    return 0;
}
