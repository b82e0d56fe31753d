/*
 * test_convert_quant.c — converted quantized models run end to end.
 *
 * 256-wide Qwen3 and Gemma3 models (build/tp_mkmodel, random bf16 weights;
 * the K-quants need rows that are multiples of 256, which the golden models
 * lack) are converted to f32, q8_0, q6_k, q4_k and q4_k_m and loaded from the
 * GGUF files. For a set of prompts:
 *
 *   0. the stored weights: relative RMS error against the F32 file within the
 *      type's bound for these uniform random weights (WERR_* below);
 *   1. quantization error: the last-token logits of each quantized file against
 *      the same model's F32 file, as a relative RMS error
 *      ||l_q - l_f32|| / ||l_f32 - mean(l_f32)||, within the error model of
 *      conv_test_util.h (1.5 x sqrt(4L+1) x sqrt(e_w^2 + e_a^2), e_w measured
 *      in step 0);
 *   2. quantization error vs bug: the same file with every quantized tensor
 *      dequantized to F32 (an F32 model holding exactly the values the
 *      quantized file encodes) must give the quantized run's logits up to the
 *      int8 activation rounding of the quantized kernels (the same model with
 *      e_w = 0), so what (1) measures is quantization and nothing else;
 *   3. batch invariance: all prompts prefilled in one packed step give logits
 *      bit-identical to each prompt alone, and greedy continuations run as
 *      one continuous batch equal those run alone.
 */
#include "../io/io_test_util.h"
#include "batch/generate.h"
#include "batch/kv_cache.h"
#include "convert/convert.h"
#include "io/config.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "models/decoder.h"
#include "models/model.h"
#include "tensor/quant.h"
#include "conv_test_util.h"

#include <math.h>
#include <sys/wait.h>

/* Weight error bounds: tp_mkmodel's matrices are uniform in [-s, s] (rms
 * s/sqrt 3); a block quantizer with step h leaves an rms error of h/sqrt 12.
 * Q8_0: h = s/127 -> 0.39 %; Q6_K: 6-bit codes over 16-value sub-blocks,
 * h ~ s/31.5 -> 1.6 %; Q4_K: 16 levels over a 32-value sub-block's range,
 * h ~ 2s/15 -> 6.7 %. Bounds: 1.5 x those. Q4_K_M mixes Q4_K and Q6_K. */
#define WERR_Q8_0 0.0059
#define WERR_Q6_K 0.024
#define WERR_Q4_K 0.10
#define N_LAYERS 4

#define N_PROMPTS 6

static char g_tmp[256];
static tp_pool *g_pool;

typedef struct prompt {
    int32_t ids[48];
    int n;
} prompt;

/* Prefills prompts[0..n) as one packed step; logits (n, V). */
static tp_status prefill(const tp_net *net, const prompt *p, size_t n, float *logits,
                         tp_error *err) {
    const int B = 16;
    size_t need = 0, T = 0;
    for (size_t i = 0; i < n; i++) {
        need += tp_kv_blocks_needed(net, B, p[i].n, p[i].n);
        T += (size_t)p[i].n;
    }
    tp_kv_cache *kv = NULL;
    tp_kv_seq seqs[N_PROMPTS];
    tp_dec_seq step[N_PROMPTS];
    memset(seqs, 0, sizeof seqs);
    tp_arena arena = {0};
    tp_status st = tp_kv_cache_create(net, B, need, &kv, err);
    for (size_t i = 0; st == TP_OK && i < n; i++) {
        size_t r = tp_kv_blocks_needed(net, B, p[i].n, p[i].n);
        if ((st = tp_kv_seq_init(kv, &seqs[i], p[i].n, r, err)) ||
            (st = tp_kv_seq_grow(kv, &seqs[i], p[i].n, err)))
            break;
        step[i] = (tp_dec_seq){.ids = p[i].ids,
                               .n_new = p[i].n,
                               .pos0 = 0,
                               .k_blocks = seqs[i].k,
                               .v_blocks = seqs[i].v,
                               .max_blocks = seqs[i].max_blocks,
                               .block_size = B,
                               .logits = logits + i * (size_t)net->vocab_size};
    }
    if (st == TP_OK)
        st = tp_arena_init(&arena, net->dec->scratch_bytes(net, T, n, n), err);
    if (st == TP_OK)
        st = net->dec->forward(net, step, n, &arena, g_pool, err);
    for (size_t i = 0; kv && i < n; i++)
        if (seqs[i].k)
            tp_kv_seq_release(kv, &seqs[i]);
    tp_arena_free(&arena);
    tp_kv_cache_free(kv);
    return st;
}

/* ||a - b|| / ||b - mean(b)|| */
static double rel_err(const float *a, const float *b, size_t n) {
    double mean = 0, num = 0, den = 0;
    for (size_t i = 0; i < n; i++)
        mean += b[i];
    mean /= (double)n;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += ((double)b[i] - mean) * ((double)b[i] - mean);
    }
    return den > 0 ? sqrt(num / den) : INFINITY;
}

/* ---- greedy generation, alone and batched ---- */

static int greedy_tokens(const tp_net *net, const prompt *p, size_t n, int max_seqs,
                         int32_t out[][8]) {
    tp_gen_item items[N_PROMPTS];
    tp_gen_output outs[N_PROMPTS];
    memset(items, 0, sizeof items);
    memset(outs, 0, sizeof outs);
    for (size_t i = 0; i < n; i++) {
        items[i].prompt = p[i].ids;
        items[i].n_prompt = p[i].n;
        items[i].max_new_tokens = 8;
        items[i].sampling = (tp_sampling){.temperature = 0, .top_p = 1, .repetition_penalty = 1};
    }
    tp_gen_config cfg = {.pool = g_pool, .max_seqs = max_seqs, .max_step_tokens = 64};
    tp_error err;
    if (tp_generate_run(net, &cfg, items, n, NULL, outs, NULL, &err) != TP_OK)
        return 1;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (outs[i].status != TP_OK || outs[i].n_tokens != 8)
            rc = 1;
        for (int k = 0; k < 8 && k < outs[i].n_tokens; k++)
            out[i][k] = outs[i].tokens[k];
        tp_gen_output_free(&outs[i]);
    }
    return rc;
}

static int run_cmd(const char *cmd) {
    int s = system(cmd);
    return WIFEXITED(s) ? WEXITSTATUS(s) : -1;
}

static void test_family(const char *build, const char *fam, const char *extra) {
    char dir[512], cmd[4096], path[600], dpath[600];
    snprintf(dir, sizeof dir, "%s/%s", g_tmp, fam);
    snprintf(cmd, sizeof cmd,
             "'%s/tp_mkmodel' --family %s --hidden 256 --intermediate 512 --layers 4 --heads 4 "
             "--kv-heads 2 --head-dim 64 --vocab 512 --max-positions 256 --dtype bf16 --seed 11 "
             "--out '%s' --quiet %s",
             build, fam, dir, extra);
    CHECK_MSG(run_cmd(cmd) == 0, "%s", cmd);

    prompt p[N_PROMPTS];
    const int lens[N_PROMPTS] = {1, 5, 12, 40, 23, 2};
    uint64_t s = 12345;
    for (int i = 0; i < N_PROMPTS; i++) {
        p[i].n = lens[i];
        for (int j = 0; j < lens[i]; j++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            p[i].ids[j] = 3 + (int32_t)((s >> 33) % 500);
        }
    }
    tp_error err;
    /* the F32 reference */
    snprintf(path, sizeof path, "%s/%s-f32.gguf", g_tmp, fam);
    tp_conv_params cp = tp_conv_default_params();
    cp.type = TP_CONV_F32;
    cp.overwrite = true;
    CHECK_MSG(tp_convert(dir, path, &cp, NULL, &err) == TP_OK, "%s", err.message);
    conv_loaded ref;
    if (conv_load(path, &ref, &err) != TP_OK) {
        CHECK_MSG(0, "%s: load f32: %s", fam, err.message);
        conv_unload(&ref);
        return;
    }
    size_t V = (size_t)ref.net->vocab_size;
    float *lf = malloc(N_PROMPTS * V * sizeof *lf), *lq = malloc(N_PROMPTS * V * sizeof *lq),
          *lb = malloc(N_PROMPTS * V * sizeof *lb), *ld = malloc(N_PROMPTS * V * sizeof *ld);
    for (int i = 0; i < N_PROMPTS; i++)
        CHECK(prefill(ref.net, &p[i], 1, lf + (size_t)i * V, &err) == TP_OK);
    conv_unload(&ref);

    char fpath[600];
    snprintf(fpath, sizeof fpath, "%s", path);
    const struct {
        tp_conv_type t;
        double werr;
    } types[] = {{TP_CONV_Q8_0, WERR_Q8_0},
                 {TP_CONV_Q6_K, WERR_Q6_K},
                 {TP_CONV_Q4_K, WERR_Q4_K},
                 {TP_CONV_Q4_K_M, WERR_Q4_K}};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        const char *tn = tp_conv_type_name(types[k].t);
        snprintf(path, sizeof path, "%s/%s-%s.gguf", g_tmp, fam, tn);
        snprintf(dpath, sizeof dpath, "%s/%s-%s-deq.gguf", g_tmp, fam, tn);
        cp.type = types[k].t;
        CHECK_MSG(tp_convert(dir, path, &cp, NULL, &err) == TP_OK, "%s", err.message);
        CHECK_MSG(conv_write_f32_copy(path, dpath, &err) == TP_OK, "%s", err.message);
        double ew = conv_weight_err(path, fpath);
        CHECK_MSG(ew >= 0 && ew <= types[k].werr, "%s %s: weight error %.4f > %.4f", fam, tn, ew,
                  types[k].werr);
        conv_loaded q, d;
        if (conv_load(path, &q, &err) != TP_OK || conv_load(dpath, &d, &err) != TP_OK) {
            CHECK_MSG(0, "%s %s: load: %s", fam, tn, err.message);
            conv_unload(&q);
            conv_unload(&d);
            continue;
        }
        double worst = 0, worst_k = 0, worst_w = 0;
        for (int i = 0; i < N_PROMPTS; i++) {
            CHECK(prefill(q.net, &p[i], 1, lq + (size_t)i * V, &err) == TP_OK);
            CHECK(prefill(d.net, &p[i], 1, ld + (size_t)i * V, &err) == TP_OK);
            worst = fmax(worst, rel_err(lq + (size_t)i * V, lf + (size_t)i * V, V));
            worst_k = fmax(worst_k, rel_err(lq + (size_t)i * V, ld + (size_t)i * V, V));
            worst_w = fmax(worst_w, rel_err(ld + (size_t)i * V, lf + (size_t)i * V, V));
        }
        double g = conv_gain(N_LAYERS, ew, worst_w);
        double tol = conv_logit_tol(N_LAYERS, g, worst_w), tol_k = conv_kernel_tol(N_LAYERS, g);
        CHECK_MSG(g <= CONV_MAX_GAIN, "%s %s: network gain %.2f > %.1f", fam, tn, g, CONV_MAX_GAIN);
        printf("%s %-6s: weights %.4f (bound %.4f), gain %.2f; logits vs f32 %.4f (bound %.4f), "
               "vs the dequantized-f32 copy %.4f (bound %.4f)\n",
               fam, tn, ew, types[k].werr, g, worst, tol, worst_k, tol_k);
        CHECK_MSG(worst <= tol, "%s %s: logit error %.4f > %.4f", fam, tn, worst, tol);
        CHECK_MSG(worst_k <= tol_k, "%s %s: quantized vs dequantized %.4f > %.4f", fam, tn, worst_k,
                  tol_k);
        /* batch invariance: one packed step == each alone, bit for bit */
        CHECK(prefill(q.net, p, N_PROMPTS, lb, &err) == TP_OK);
        CHECK_MSG(!memcmp(lb, lq, N_PROMPTS * V * sizeof *lb),
                  "%s %s: packed prefill differs from single prefills", fam, tn);
        int32_t alone[N_PROMPTS][8], batched[N_PROMPTS][8];
        memset(alone, 0, sizeof alone);
        memset(batched, 0, sizeof batched);
        for (int i = 0; i < N_PROMPTS; i++)
            CHECK(greedy_tokens(q.net, &p[i], 1, 1, &alone[i]) == 0);
        CHECK(greedy_tokens(q.net, p, N_PROMPTS, N_PROMPTS, batched) == 0);
        CHECK_MSG(!memcmp(alone, batched, sizeof alone),
                  "%s %s: batched greedy tokens differ from single runs", fam, tn);
        conv_unload(&q);
        conv_unload(&d);
    }
    free(lf);
    free(lq);
    free(lb);
    free(ld);
}

int main(void) {
    const char *build = getenv("TPIPE_BUILD");
    char mk[1024];
    snprintf(mk, sizeof mk, "%s/tp_mkmodel", build ? build : ".");
    if (!build || !tp_file_exists(mk)) {
        printf("SKIP: needs build/tp_mkmodel (run through ctest)\n");
        return 0;
    }
    snprintf(g_tmp, sizeof g_tmp, "%s", io_tmpdir());
    tp_error err;
    g_pool = tp_pool_create(2, &err);
    test_family(build, "qwen3", "--no-tie");
    test_family(build, "gemma3", "--sliding-window 8 --sliding-pattern 2 --final-softcap 30");
    tp_pool_destroy(g_pool);
    io_rmtree(g_tmp);
    return tp_test_exit();
}
