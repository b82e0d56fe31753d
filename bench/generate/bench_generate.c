/*
 * bench_generate.c — text-generation throughput on Qwen3-0.6B- and
 * Gemma3-1B-shaped models (random bf16 weights at the real dimensions, written
 * once by build/tp_mkmodel --preset into a model folder and reused):
 *
 *   - prefill tokens/s (4 prompts x 128 tokens packed into one 512-row step),
 *     in f32 and bf16 compute;
 *   - decode tokens/s at batch 1, 4, 16, 32, 64 (128-token prompts; pure
 *     decode steps only; bf16 compute), the batched speed-up over batch 1, and
 *     one-by-one vs batched end-to-end time for 16 requests;
 *   - batch-1 decode as % of the memory-bandwidth roofline: (bytes of weights
 *     read per token) / (read bandwidth measured by a STREAM-like probe in the
 *     same run);
 *   - the Qwen3 model also as GGUF Q8_0 and Q4_K_M files (converted once with
 *     src/convert, as `tpipe convert` does, next to the folder): decode tokens/s
 *     at batch 1 and 16 and % of the roofline, whose bytes per token are then
 *     the quantized tensors' bytes (the bf16 baseline runs in the same process);
 * next to the machine probes (read bandwidth, f32 FMA and bf16 dot-product
 * peaks from bench/kernels/probe_avx512.c).
 *
 * Prints a table and `BENCH <key> <value> <unit>` lines (../shared/CLI.md).
 * Usage: bench_generate [--models DIR] [--family qwen3|gemma3|all] [--threads N]
 *                       [--quick] [--new-tokens N] [--prompt N] [--batches 1,4,16,32,64]
 *                       [--quant q8_0,q4_k_m|none] [--quant-only]
 * The models live in DIR (default: $TPIPE_BENCH_MODELS, else bench-models next
 * to this binary): about 1.2 GB (Qwen3) and 2 GB (Gemma3) of disk.
 */
#include "../kernels/probe.h"
#include "batch/generate.h"
#include "convert/convert.h"
#include "io/config.h"
#include "io/gguf.h"
#include "io/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tp_pool *g_pool;
static int g_threads;
static int g_batches[16] = {1, 4, 16, 32, 64};
static int g_n_batches = 5;
static int g_prompt = 128;

/* ---------------------------------------------------------------- probes */

typedef struct probe_ctx {
    int kind; /* 0 f32 FMA, 1 bf16 dot, 2 read */
    long iters;
    const float *buf;
    size_t chunk;
    volatile double sink;
} probe_ctx;

static void probe_task(void *vctx, size_t task, int thread) {
    (void)thread;
    probe_ctx *c = vctx;
    double r = c->kind == 0   ? probe_fma_f32(c->iters)
               : c->kind == 1 ? probe_dp_bf16(c->iters)
                              : probe_read(c->buf + task * c->chunk, c->chunk);
    if (r == 12345.678)
        c->sink += r;
}

static double peak_probe(int kind) {
    probe_ctx c = {kind, 2000000, NULL, 0, 0};
    size_t tasks = (size_t)g_threads * 8;
    tp_pool_run(g_pool, tasks, probe_task, &c);
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = tp_now();
        tp_pool_run(g_pool, tasks, probe_task, &c);
        double t = tp_now() - t0;
        double g = (double)tasks * (double)c.iters * 12.0 * (kind == 0 ? 32.0 : 64.0) / t / 1e9;
        best = g > best ? g : best;
    }
    return best;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Read bandwidth (GB/s) over 512 MiB, median of 5. */
static double bandwidth_probe(void) {
    size_t n = (size_t)512 << 20 >> 2;
    float *buf = tp_aligned_alloc(n, sizeof(float));
    if (!buf)
        return 0;
    for (size_t i = 0; i < n; i++)
        buf[i] = 1.0f;
    probe_ctx c = {2, 0, buf, (size_t)1 << 20, 0};
    size_t tasks = n / c.chunk;
    double t[5];
    tp_pool_run(g_pool, tasks, probe_task, &c);
    for (int r = 0; r < 5; r++) {
        double t0 = tp_now();
        tp_pool_run(g_pool, tasks, probe_task, &c);
        t[r] = tp_now() - t0;
    }
    qsort(t, 5, sizeof *t, cmp_double);
    tp_aligned_free(buf);
    return (double)n * 4.0 / t[2] / 1e9;
}

/* ---------------------------------------------------------------- models */

typedef struct model {
    tp_net_files files;
    tp_net *net;
} model;

static int ensure_model(const char *dir, const char *preset, const char *self_dir) {
    char path[4400];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (tp_file_exists(path))
        return 0;
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s/tp_mkmodel' --preset %s --dtype bf16 --out '%s' --quiet",
             self_dir, preset, dir);
    printf("writing %s (%s) with tp_mkmodel...\n", dir, preset);
    fflush(stdout);
    return system(cmd) == 0 ? 0 : 1;
}

/* dir: a model folder or a .gguf file */
static int load_model(const char *dir, tp_compute cm, model *m) {
    memset(m, 0, sizeof *m);
    tp_error err;
    if (tp_net_files_open(dir, &m->files, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    tp_net_load_args a = tp_net_files_args(&m->files, cm);
    if (tp_net_load(&a, &m->net, &err)) {
        fprintf(stderr, "%s\n", err.message);
        tp_net_files_close(&m->files);
        return 1;
    }
    return 0;
}

static void unload_model(model *m) {
    tp_net_free(m->net);
    tp_net_files_close(&m->files);
}

/* Bytes of weights one decode step reads for one token, from the stored
 * tensors: every matrix but the embedding (one row of it is read), plus the LM
 * head (the embedding itself when tied). */
static double stored_bytes_per_token(const tp_st_model *st) {
    double b = 0;
    bool untied = tp_st_find(st, "lm_head.weight") != NULL;
    for (size_t i = 0; i < tp_st_count(st); i++) {
        const tp_st_tensor *t = tp_st_at(st, i);
        if (t->n_dims < 2)
            continue;
        if (!strcmp(t->name, "model.embed_tokens.weight") && untied)
            continue;
        b += (double)t->n_bytes;
    }
    return b;
}

/* The GGUF file <dir>-<type>.gguf, converted from the folder when absent. */
static int ensure_gguf(const char *dir, tp_conv_type type, char *out, size_t cap) {
    snprintf(out, cap, "%s-%s.gguf", dir, tp_conv_type_name(type));
    if (tp_file_exists(out))
        return 0;
    printf("converting %s to %s...\n", dir, out);
    fflush(stdout);
    tp_conv_params p = tp_conv_default_params();
    p.type = type;
    p.pool = g_pool;
    tp_error err;
    double t0 = tp_now();
    if (tp_convert(dir, out, &p, NULL, &err) != TP_OK) {
        fprintf(stderr, "convert: %s\n", err.message);
        return 1;
    }
    printf("converted in %.1f s\n", tp_now() - t0);
    return 0;
}

/* Bytes of weights one decode step reads for one token (bf16): every linear
 * layer and the LM head (the embedding row is negligible). */
static double weight_bytes_per_token(const tp_dec_hparams *p) {
    double D = (double)p->hidden, HD = (double)(p->n_heads * p->head_dim),
           KD = (double)(p->n_kv_heads * p->head_dim), F = (double)p->inter;
    double per_layer = D * HD * 2 + D * KD * 2 + 3 * D * F;
    return 2.0 * ((double)p->n_layers * per_layer + (double)p->vocab * D);
}

/* ---------------------------------------------------------------- runs */

typedef struct run_result {
    double prefill_tps, decode_tps, wall_s;
    int ok;
} run_result;

static run_result run_items(const tp_net *net, int batch, int prompt_len, int new_tokens,
                            uint64_t seed) {
    run_result rr = {0, 0, 0, 0};
    tp_gen_item *items = calloc((size_t)batch, sizeof *items);
    tp_gen_output *outs = calloc((size_t)batch, sizeof *outs);
    int32_t *ids = malloc((size_t)batch * (size_t)prompt_len * sizeof *ids);
    if (!items || !outs || !ids)
        goto done;
    uint64_t s = seed;
    for (int b = 0; b < batch; b++) {
        for (int j = 0; j < prompt_len; j++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            ids[(size_t)b * (size_t)prompt_len + (size_t)j] =
                10 + (int32_t)((s >> 33) % (uint64_t)(net->vocab_size - 10));
        }
        items[b].prompt = ids + (size_t)b * (size_t)prompt_len;
        items[b].n_prompt = prompt_len;
        items[b].max_new_tokens = new_tokens;
        items[b].sampling = (tp_sampling){.temperature = 0, .top_p = 1, .repetition_penalty = 1};
    }
    tp_gen_config cfg = {.pool = g_pool, .max_seqs = batch, .max_step_tokens = 512};
    tp_gen_run_stats st;
    tp_error err;
    if (tp_generate_run(net, &cfg, items, (size_t)batch, NULL, outs, &st, &err) != TP_OK) {
        fprintf(stderr, "generate: %s\n", err.message);
        goto done;
    }
    for (int b = 0; b < batch; b++) {
        if (outs[b].status != TP_OK) {
            fprintf(stderr, "item %d: %s\n", b, outs[b].err.message);
            goto done;
        }
        tp_gen_output_free(&outs[b]);
    }
    rr.prefill_tps = st.prefill_s > 0 ? (double)st.prefill_tokens / st.prefill_s : 0;
    rr.decode_tps = st.decode_s > 0 ? (double)st.decode_tokens / st.decode_s : 0;
    rr.wall_s = st.wall_s;
    rr.ok = 1;
done:
    free(items);
    free(outs);
    free(ids);
    return rr;
}

/* light: skip the f32 prefill and batch 32 (the second family of a default run,
 * to keep the whole run within a few minutes). */
static void bench_family(const char *name, const char *dir, double bw, bool quick, bool light,
                         int new_tokens) {
    model mb, mf;
    if (load_model(dir, TP_COMPUTE_BF16, &mb))
        return;
    const tp_dec_hparams *hp = tp_decoder_hparams(mb.net);
    double wbytes = weight_bytes_per_token(hp);
    double roof = bw * 1e9 / wbytes;
    printf("\n== %s: hidden %lld, %lld layers, %lld/%lld heads x %lld, intermediate %lld, vocab "
           "%lld; %.2f GB of weights read per decoded token\n",
           name, (long long)hp->hidden, (long long)hp->n_layers, (long long)hp->n_heads,
           (long long)hp->n_kv_heads, (long long)hp->head_dim, (long long)hp->inter,
           (long long)hp->vocab, wbytes / 1e9);

    /* Warm-up: pages the weights in. */
    (void)run_items(mb.net, 1, 16, 2, 1);

    /* Prefill: 4 x 128 tokens in one 512-row step. */
    run_result pb = run_items(mb.net, 4, 128, 1, 2);
    double pf32 = 0;
    if (!quick && !light && !load_model(dir, TP_COMPUTE_F32, &mf)) {
        (void)run_items(mf.net, 1, 16, 1, 1);
        pf32 = run_items(mf.net, 4, 128, 1, 2).prefill_tps;
        unload_model(&mf);
    }
    printf("prefill (4 x 128 tokens, one step): bf16 compute %.1f tok/s, f32 compute %.1f tok/s\n",
           pb.prefill_tps, pf32);
    printf("BENCH generate.%s.bf16.prefill %.1f tok/s\n", name, pb.prefill_tps);
    if (pf32 > 0)
        printf("BENCH generate.%s.f32.prefill %.1f tok/s\n", name, pf32);

    int nb = g_n_batches;
    double dec1 = 0, wall1 = 0, wall16 = 0;
    printf("%-8s %14s %14s %12s\n", "batch", "decode tok/s", "x batch 1", "wall s");
    for (int i = 0; i < nb; i++) {
        int b = g_batches[i];
        if ((quick && b > 16) || (light && b == 32 && g_n_batches == 5))
            continue;
        run_result r = run_items(mb.net, b, g_prompt, new_tokens, 100 + (uint64_t)b);
        if (!r.ok)
            continue;
        if (b == 1) {
            dec1 = r.decode_tps;
            wall1 = r.wall_s;
        }
        if (b == 16)
            wall16 = r.wall_s;
        printf("%-8d %14.1f %14.2f %12.2f\n", b, r.decode_tps, dec1 > 0 ? r.decode_tps / dec1 : 0.0,
               r.wall_s);
        printf("BENCH generate.%s.bf16.decode.b%d %.1f tok/s\n", name, b, r.decode_tps);
    }
    printf("batch-1 decode: %.1f tok/s = %.1f %% of the bandwidth roofline (%.1f tok/s = %.1f GB/s "
           "/ %.2f GB per token)\n",
           dec1, 100.0 * dec1 / roof, roof, bw, wbytes / 1e9);
    printf("BENCH generate.%s.roofline_b1 %.1f tok/s\n", name, roof);
    printf("BENCH generate.%s.decode_b1_of_roofline %.1f %%\n", name, 100.0 * dec1 / roof);
    if (wall1 > 0 && wall16 > 0) {
        /* One-by-one: 16 requests of the same shape run one after another cost
         * 16 x the single request's wall time. */
        printf("16 requests (128-token prompts, %d new tokens): one by one %.2f s (16 x %.2f s), "
               "batched %.2f s: speed-up %.2fx\n",
               new_tokens, 16 * wall1, wall1, wall16, 16 * wall1 / wall16);
        printf("BENCH generate.%s.batched_speedup_16 %.2f x\n", name, 16 * wall1 / wall16);
    }
    unload_model(&mb);
}

/* Decode of the GGUF files of `dir` (one per quantized type) at batch 1 and
 * 16, next to the bf16 folder's batch-1 figure measured in this run. */
static void bench_quant(const char *name, const char *dir, const tp_conv_type *types, int n_types,
                        double bw, int new_tokens) {
    typedef struct row {
        const char *type;
        double gb, b1, b16, roof;
    } row;
    row rows[8];
    int n_rows = 0;
    model mb;
    if (load_model(dir, TP_COMPUTE_BF16, &mb))
        return;
    double wb = stored_bytes_per_token(mb.files.st);
    (void)run_items(mb.net, 1, 16, 2, 1);
    run_result r1 = run_items(mb.net, 1, g_prompt, new_tokens, 101);
    run_result r16 = run_items(mb.net, 16, g_prompt, new_tokens, 116);
    rows[n_rows++] = (row){"bf16", wb / 1e9, r1.decode_tps, r16.decode_tps, bw * 1e9 / wb};
    unload_model(&mb);
    for (int k = 0; k < n_types && n_rows < 8; k++) {
        char path[4400];
        if (ensure_gguf(dir, types[k], path, sizeof path))
            continue;
        model mq;
        if (load_model(path, TP_COMPUTE_BF16, &mq))
            continue;
        wb = stored_bytes_per_token(mq.files.st);
        (void)run_items(mq.net, 1, 16, 2, 1); /* pages the weights in */
        r1 = run_items(mq.net, 1, g_prompt, new_tokens, 101);
        r16 = run_items(mq.net, 16, g_prompt, new_tokens, 116);
        rows[n_rows++] = (row){tp_conv_type_name(types[k]), wb / 1e9, r1.decode_tps, r16.decode_tps,
                               bw * 1e9 / wb};
        unload_model(&mq);
    }
    printf("\n== %s weights as GGUF (decode, %d-token prompts, %d new tokens; bf16 compute "
           "for the bf16 folder, int8 activations for the quantized matrices)\n",
           name, g_prompt, new_tokens);
    printf("%-8s %10s %12s %12s %12s %12s %10s\n", "weights", "GB/token", "b1 tok/s", "b16 tok/s",
           "roofline b1", "% roofline", "b1 x bf16");
    for (int i = 0; i < n_rows; i++) {
        const row *r = &rows[i];
        printf("%-8s %10.3f %12.1f %12.1f %12.1f %11.1f%% %10.2f\n", r->type, r->gb, r->b1, r->b16,
               r->roof, 100.0 * r->b1 / r->roof, rows[0].b1 > 0 ? r->b1 / rows[0].b1 : 0.0);
        if (i == 0)
            continue; /* the bf16 keys are printed by bench_family */
        printf("BENCH generate.%s.%s.decode.b1 %.1f tok/s\n", name, r->type, r->b1);
        printf("BENCH generate.%s.%s.decode.b16 %.1f tok/s\n", name, r->type, r->b16);
        printf("BENCH generate.%s.%s.decode_b1_of_roofline %.1f %%\n", name, r->type,
               100.0 * r->b1 / r->roof);
        printf("BENCH generate.%s.%s.weight_bytes_per_token %.3f GB\n", name, r->type, r->gb);
    }
    printf("BENCH generate.%s.bf16_same_run.decode.b1 %.1f tok/s\n", name, rows[0].b1);
    printf("BENCH generate.%s.bf16_same_run.decode.b16 %.1f tok/s\n", name, rows[0].b16);
}

int main(int argc, char **argv) {
    const char *models = getenv("TPIPE_BENCH_MODELS");
    const char *family = "all";
    bool quick = false, quant_only = false;
    int new_tokens = 32;
    tp_conv_type qtypes[4] = {TP_CONV_Q8_0, TP_CONV_Q4_K_M};
    int n_qtypes = 2;
    g_threads = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--models") && i + 1 < argc)
            models = argv[++i];
        else if (!strcmp(argv[i], "--family") && i + 1 < argc)
            family = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            g_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--new-tokens") && i + 1 < argc)
            new_tokens = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--prompt") && i + 1 < argc)
            g_prompt = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batches") && i + 1 < argc) {
            g_n_batches = 0;
            for (char *t = strtok(argv[++i], ","); t && g_n_batches < 16; t = strtok(NULL, ","))
                g_batches[g_n_batches++] = atoi(t);
        } else if (!strcmp(argv[i], "--quant") && i + 1 < argc) {
            n_qtypes = 0;
            for (char *t = strtok(argv[++i], ","); t && n_qtypes < 4; t = strtok(NULL, ","))
                if (strcmp(t, "none") && tp_conv_type_parse(t, &qtypes[n_qtypes]))
                    n_qtypes++;
        } else if (!strcmp(argv[i], "--quant-only"))
            quant_only = true;
        else if (!strcmp(argv[i], "--quick"))
            quick = true;
        else {
            fprintf(stderr, "usage: bench_generate [--models DIR] [--family qwen3|gemma3|all] "
                            "[--threads N] [--new-tokens N] [--prompt N] [--batches 1,4,...] "
                            "[--quick] [--quant q8_0,q4_k_m|none] [--quant-only]\n");
            return 2;
        }
    }
    if (new_tokens < 2)
        new_tokens = 2;
    char self_dir[2048];
    snprintf(self_dir, sizeof self_dir, "%s", argv[0]);
    char *slash = strrchr(self_dir, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(self_dir, sizeof self_dir, ".");
    char models_buf[2100];
    if (!models) {
        snprintf(models_buf, sizeof models_buf, "%s/bench-models", self_dir);
        models = models_buf;
    }
    tp_error err;
    g_pool = tp_pool_create(g_threads, &err);
    if (!g_pool) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    g_threads = tp_pool_size(g_pool);
    tp_cpu_features cpu = tp_cpu_detect();
    double bw = bandwidth_probe();
    double pf = cpu.avx512f ? peak_probe(0) : 0, pb = cpu.avx512_bf16 ? peak_probe(1) : 0;
    printf("machine: %d threads, ISA %s; probes: read bandwidth %.1f GB/s, f32 FMA peak %.1f "
           "GFLOP/s, bf16 dot-product peak %.1f GFLOP/s\n",
           g_threads, tp_isa_name(tp_get_isa()), bw, pf, pb);
    printf("BENCH probe.read_bandwidth %.1f GB/s\n", bw);
    printf("BENCH probe.fma_peak_f32 %.1f GFLOP/s\n", pf);
    printf("BENCH probe.dp_peak_bf16 %.1f GFLOP/s\n", pb);

    struct {
        const char *name, *preset, *sub;
    } fams[2] = {{"qwen3-0.6b", "qwen3-0.6b", "qwen3"}, {"gemma3-1b", "gemma3-1b", "gemma3"}};
    for (int f = 0; f < 2; f++) {
        if (strcmp(family, "all") && strcmp(family, fams[f].sub))
            continue;
        char dir[2300];
        snprintf(dir, sizeof dir, "%s/%s", models, fams[f].name);
        if (ensure_model(dir, fams[f].preset, self_dir)) {
            fprintf(stderr, "could not write %s\n", dir);
            continue;
        }
        if (!quant_only)
            bench_family(fams[f].name, dir, bw, quick, f == 1 && !strcmp(family, "all"),
                         new_tokens);
        if (f == 0 && n_qtypes > 0)
            bench_quant(fams[f].name, dir, qtypes, n_qtypes, bw, new_tokens);
    }
    tp_pool_destroy(g_pool);
    return 0;
}
