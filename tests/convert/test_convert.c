/*
 * test_convert.c — `tpipe convert`'s library half (src/convert) at the byte
 * level: each tiny golden decoder (F32 and BF16 checkpoints, Qwen3 tied and
 * untied, both Gemma3 config styles) and 256-wide models written by
 * build/tp_mkmodel are converted, and the files are read back with the GGUF
 * reader (src/io/gguf.c) and checked against the checkpoint:
 *   - metadata: general.architecture / name / file_type / quantization_version,
 *     the <arch>.* hyper-parameters llama.cpp reads, compared with config.json;
 *   - tensor names (a hand-written list of llama.cpp names), GGUF shapes (HF
 *     shapes reversed), no output.weight for tied models;
 *   - F32: every value equal to the checkpoint's (BF16 widened exactly), Gemma3
 *     norm weights exactly 1 + w (f32 addition); F16/BF16: each value the
 *     nearest representable (relative error <= 2^-11 / 2^-8), Q8_0: within half
 *     a quantization step of each block;
 *   - per-tensor types of the Q4_K_M mix, the Q4_K / Q6_K / Q8_0 fallbacks;
 *   - the same bytes whatever the thread count;
 *   - errors: an existing output without overwrite, a non-decoder model.
 */
#include "../io/io_test_util.h"
#include "convert/convert.h"
#include "io/config.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "tensor/quant.h"

#include <fcntl.h>

#include <math.h>
#include <sys/resource.h>
#include <sys/wait.h>

static char g_tmp[256];

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) & 3;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_tmp, name);
    return buf[k];
}

static int64_t cfg_int(const tp_json_doc *cfg, const char *key) {
    int64_t v = -1;
    tp_json_int(cfg, cfg->root, key, -1, &v, NULL);
    return v;
}

static double cfg_double(const tp_json_doc *cfg, const char *key) {
    double v = NAN;
    tp_json_double(cfg, cfg->root, key, NAN, &v, NULL);
    return v;
}

static int64_t kv_int(const tp_gguf *g, const char *arch, const char *key) {
    char k[128];
    snprintf(k, sizeof k, "%s%s%s", arch ? arch : "", arch ? "." : "", key);
    int64_t v = -1;
    if (tp_gguf_get_int(g, k, -1, &v, NULL) != TP_OK)
        return -2;
    return v;
}

static double kv_float(const tp_gguf *g, const char *arch, const char *key) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    double v = NAN;
    if (tp_gguf_get_float(g, k, NAN, &v, NULL) != TP_OK)
        return NAN;
    return v;
}

static tp_status convert(const char *dir, const char *out, tp_conv_type type, tp_pool *pool,
                         tp_conv_report *rep, tp_error *err) {
    tp_conv_params p = tp_conv_default_params();
    p.type = type;
    p.pool = pool;
    p.overwrite = true;
    return tp_convert(dir, out, &p, rep, err);
}

/* The checkpoint tensor a GGUF tensor came from, by a hand-written list of
 * llama.cpp names (gguf-py tensor_mapping.py), independent of the converter's
 * table. */
static const tp_st_tensor *source_of(const tp_st_model *st, const char *gguf_name, bool *norm) {
    static const char *const map[][3] = {
        /* gguf suffix, hf suffix, norm */
        {"attn_q.weight", "self_attn.q_proj.weight", ""},
        {"attn_k.weight", "self_attn.k_proj.weight", ""},
        {"attn_v.weight", "self_attn.v_proj.weight", ""},
        {"attn_output.weight", "self_attn.o_proj.weight", ""},
        {"attn_q_norm.weight", "self_attn.q_norm.weight", "n"},
        {"attn_k_norm.weight", "self_attn.k_norm.weight", "n"},
        {"attn_norm.weight", "input_layernorm.weight", "n"},
        {"ffn_norm.weight", "post_attention_layernorm.weight", "n"},            /* qwen3 */
        {"post_attention_norm.weight", "post_attention_layernorm.weight", "n"}, /* gemma3 */
        {"ffn_gate.weight", "mlp.gate_proj.weight", ""},
        {"ffn_up.weight", "mlp.up_proj.weight", ""},
        {"ffn_down.weight", "mlp.down_proj.weight", ""},
        {"pre_ffw_norm.weight", "pre_feedforward_layernorm.weight", "n"},
        {"post_ffw_norm.weight", "post_feedforward_layernorm.weight", "n"},
    };
    char hf[256];
    int layer, used = 0;
    *norm = false;
    if (!strcmp(gguf_name, "token_embd.weight"))
        return tp_st_find(st, "model.embed_tokens.weight");
    if (!strcmp(gguf_name, "output.weight"))
        return tp_st_find(st, "lm_head.weight");
    if (!strcmp(gguf_name, "output_norm.weight")) {
        *norm = true;
        return tp_st_find(st, "model.norm.weight");
    }
    if (sscanf(gguf_name, "blk.%d.%n", &layer, &used) != 1 || !used)
        return NULL;
    bool gemma = tp_st_find(st, "model.layers.0.pre_feedforward_layernorm.weight") != NULL;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (strcmp(gguf_name + used, map[i][0]))
            continue;
        if (!strcmp(map[i][0], "ffn_norm.weight") && gemma) {
            /* llama.cpp's FFN_PRE_NORM: Gemma3's pre-MLP norm is also blk.N.ffn_norm */
            snprintf(hf, sizeof hf, "model.layers.%d.pre_feedforward_layernorm.weight", layer);
            *norm = true;
            return tp_st_find(st, hf);
        }
        if (!strcmp(map[i][0], "post_attention_norm.weight") && !gemma)
            continue;
        snprintf(hf, sizeof hf, "model.layers.%d.%s", layer, map[i][1]);
        *norm = map[i][2][0] != 0;
        return tp_st_find(st, hf);
    }
    return NULL;
}

static float src_at(const tp_st_tensor *t, size_t i) {
    const uint8_t *p = t->data;
    if (t->dtype == TP_DTYPE_F32) {
        float f;
        memcpy(&f, p + 4 * i, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, p + 2 * i, 2);
    return t->dtype == TP_DTYPE_BF16 ? tp_bf16_to_f32(h) : tp_f16_to_f32(h);
}

/* Checks every tensor of a converted file against the checkpoint. */
static void check_values(const char *what, const tp_gguf *g, const tp_st_model *st, bool gemma,
                         tp_conv_type type) {
    size_t n = tp_gguf_tensor_count(g);
    for (size_t i = 0; i < n; i++) {
        const tp_gguf_tensor *t = tp_gguf_tensor_at(g, i);
        bool norm;
        const tp_st_tensor *s = source_of(st, t->name, &norm);
        CHECK_MSG(s != NULL, "%s: %s has no source tensor", what, t->name);
        if (!s)
            continue;
        /* shape: HF reversed */
        CHECK_MSG(t->n_dims == s->n_dims, "%s: %s dims", what, t->name);
        for (int d = 0; d < s->n_dims && d < t->n_dims; d++)
            CHECK_MSG(t->ne[d] == s->shape[s->n_dims - 1 - d], "%s: %s ne[%d]", what, t->name, d);
        if (t->n_elems != s->n_elems)
            continue;
        size_t cols = (size_t)t->ne[0], rows = (size_t)(t->n_elems / t->ne[0]);
        float *row = malloc(cols * sizeof *row);
        size_t rb = 0;
        tp_dtype_row_bytes(t->dtype, cols, &rb);
        double worst = 0;
        size_t bad = 0;
        for (size_t r = 0; r < rows; r++) {
            tp_dequantize_row(t->dtype, (const uint8_t *)t->data + r * rb, row, cols);
            size_t blk = tp_dtype_block(t->dtype);
            for (size_t b0 = 0; b0 < cols; b0 += blk) {
                /* per block: the bound of the stored type */
                double amax = 0;
                for (size_t j = b0; j < b0 + blk; j++) {
                    double w = src_at(s, r * cols + j) + (norm && gemma ? 1.0 : 0.0);
                    amax = fmax(amax, fabs(w));
                }
                for (size_t j = b0; j < b0 + blk; j++) {
                    float w = src_at(s, r * cols + j);
                    if (norm && gemma)
                        w = w + 1.0f; /* f32 addition, as convert_hf_to_gguf.py */
                    double got = row[j], e = fabs(got - w), tol;
                    switch (t->dtype) {
                    case TP_DTYPE_F32:
                        tol = 0;
                        break;
                    case TP_DTYPE_F16:
                        tol = fabs(w) * 0x1p-11 + 0x1p-25;
                        break;
                    case TP_DTYPE_BF16:
                        tol = fabs(w) * 0x1p-8;
                        break;
                    case TP_DTYPE_Q8_0:
                        /* step amax/127 (f16-rounded scale), half a step + scale rounding */
                        tol = amax / 127 * 0.5 * (1 + 0x1p-9) + amax * 0x1p-10;
                        break;
                    default:
                        tol = INFINITY; /* K-quants: checked through the logits */
                        break;
                    }
                    if (e > tol)
                        bad++;
                    if (tol > 0 && isfinite(tol) && e / tol > worst)
                        worst = e / tol;
                }
            }
        }
        CHECK_MSG(bad == 0, "%s: %s (%s): %zu values off (worst %.3g of the bound)", what, t->name,
                  tp_dtype_name(t->dtype), bad, worst);
        /* norms and 1-D tensors are F32 whatever the type */
        if (t->n_dims == 1 || norm)
            CHECK_MSG(t->dtype == TP_DTYPE_F32, "%s: %s is %s", what, t->name,
                      tp_dtype_name(t->dtype));
        (void)type;
        free(row);
    }
}

static void check_metadata(const char *what, const tp_gguf *g, const tp_json_doc *cfg,
                           const char *arch, tp_conv_type type) {
    const char *s = NULL;
    CHECK(tp_gguf_get_str(g, "general.architecture", NULL, &s, NULL) == TP_OK && s &&
          !strcmp(s, arch));
    s = NULL;
    CHECK_MSG(tp_gguf_get_str(g, "general.name", NULL, &s, NULL) == TP_OK && s && *s,
              "%s: general.name", what);
    CHECK_EQ_INT(kv_int(g, NULL, "general.file_type"), tp_conv_file_type(type));
    CHECK_EQ_INT(kv_int(g, NULL, "general.quantization_version"), 2);
    CHECK_EQ_INT(tp_gguf_version(g), 3);
    CHECK_EQ_INT(tp_gguf_alignment(g), 32);
    /* what llama.cpp's loader reads (llama-model.cpp / llama-arch.cpp key names) */
    CHECK_EQ_INT(kv_int(g, arch, "block_count"), cfg_int(cfg, "num_hidden_layers"));
    CHECK_EQ_INT(kv_int(g, arch, "embedding_length"), cfg_int(cfg, "hidden_size"));
    CHECK_EQ_INT(kv_int(g, arch, "feed_forward_length"), cfg_int(cfg, "intermediate_size"));
    CHECK_EQ_INT(kv_int(g, arch, "context_length"), cfg_int(cfg, "max_position_embeddings"));
    CHECK_EQ_INT(kv_int(g, arch, "attention.head_count"), cfg_int(cfg, "num_attention_heads"));
    CHECK_EQ_INT(kv_int(g, arch, "attention.head_count_kv"), cfg_int(cfg, "num_key_value_heads"));
    CHECK_EQ_INT(kv_int(g, arch, "attention.key_length"), cfg_int(cfg, "head_dim"));
    CHECK_EQ_INT(kv_int(g, arch, "attention.value_length"), cfg_int(cfg, "head_dim"));
    CHECK_MSG((float)kv_float(g, arch, "attention.layer_norm_rms_epsilon") ==
                  (float)cfg_double(cfg, "rms_norm_eps"),
              "%s: rms eps", what);
    CHECK_MSG((float)kv_float(g, arch, "rope.freq_base") == (float)cfg_double(cfg, "rope_theta"),
              "%s: rope.freq_base", what);
    if (!strcmp(arch, "gemma3"))
        CHECK_EQ_INT(kv_int(g, arch, "attention.sliding_window"), cfg_int(cfg, "sliding_window"));
}

/* The golden cases: convert to each plain type and Q8_0, read back, compare. */
static void test_golden(const char *name, const char *arch) {
    char rel[128];
    snprintf(rel, sizeof rel, "golden/%s", name);
    const char *d = tp_test_shared_or_data(rel);
    if (!d) {
        printf("SKIP: %s not found\n", rel);
        return;
    }
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", d);
    char cpath[1100];
    snprintf(cpath, sizeof cpath, "%s/config.json", dir);
    tp_json_doc cfg = {0};
    tp_st_model *st = NULL;
    tp_error err;
    CHECK(tp_json_load(cpath, &cfg, &err) == TP_OK);
    CHECK(tp_st_open(dir, &st, &err) == TP_OK);
    if (!st || !cfg.root) {
        tp_json_free(&cfg);
        return;
    }
    bool gemma = !strcmp(arch, "gemma3");
    bool tied = tp_st_find(st, "lm_head.weight") == NULL;
    const tp_conv_type types[] = {TP_CONV_F32, TP_CONV_F16, TP_CONV_BF16, TP_CONV_Q8_0};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        char what[256];
        snprintf(what, sizeof what, "%s %s", name, tp_conv_type_name(types[k]));
        const char *out = tmp_path("out.gguf");
        tp_conv_report rep;
        tp_status s = convert(dir, out, types[k], NULL, &rep, &err);
        CHECK_MSG(s == TP_OK, "%s: %s", what, err.message);
        if (s != TP_OK)
            continue;
        CHECK_STR(rep.arch, arch);
        CHECK(!rep.has_tokenizer && rep.tokenizer_skip); /* goldens have no tokenizer */
        tp_gguf *g = NULL;
        s = tp_gguf_open(out, &g, &err);
        CHECK_MSG(s == TP_OK, "%s: read back: %s", what, err.message);
        if (s == TP_OK) {
            check_metadata(what, g, &cfg, arch, types[k]);
            /* every checkpoint tensor is there once (lm_head only when untied) */
            CHECK_EQ_INT(tp_gguf_tensor_count(g), tp_st_count(st));
            CHECK_EQ_INT(rep.n_tensors, tp_st_count(st));
            CHECK(tp_gguf_find_tensor(g, "token_embd.weight") != NULL);
            CHECK(tp_gguf_find_tensor(g, "blk.0.attn_q.weight") != NULL);
            CHECK(tp_gguf_find_tensor(g, "output_norm.weight") != NULL);
            CHECK((tp_gguf_find_tensor(g, "output.weight") != NULL) == !tied);
            /* types: matrices in the file type, or the F16 fallback */
            for (size_t i = 0; i < tp_gguf_tensor_count(g); i++) {
                const tp_gguf_tensor *t = tp_gguf_tensor_at(g, i);
                tp_dtype want = TP_DTYPE_F32;
                bool is_norm = strstr(t->name, "_norm.weight") != NULL;
                if (t->n_dims >= 2 && !is_norm) {
                    want = types[k] == TP_CONV_F32    ? TP_DTYPE_F32
                           : types[k] == TP_CONV_F16  ? TP_DTYPE_F16
                           : types[k] == TP_CONV_BF16 ? TP_DTYPE_BF16
                           : t->ne[0] % 32            ? TP_DTYPE_F16
                                                      : TP_DTYPE_Q8_0;
                }
                CHECK_MSG(t->dtype == want, "%s: %s is %s, want %s", what, t->name,
                          tp_dtype_name(t->dtype), tp_dtype_name(want));
                CHECK_MSG(rep.tensors[i].type == t->dtype && !strcmp(rep.tensors[i].name, t->name),
                          "%s: report entry %zu", what, i);
            }
            /* token_embd first, then the blocks in layer order */
            CHECK_STR(tp_gguf_tensor_at(g, 0)->name, "token_embd.weight");
            check_values(what, g, st, gemma, types[k]);
            tp_gguf_close(g);
        }
        tp_conv_report_free(&rep);
    }
    tp_st_close(st);
    tp_json_free(&cfg);
}

static bool same_file(const char *a, const char *b) {
    char *x = NULL, *y = NULL;
    size_t lx = 0, ly = 0;
    bool same = tp_read_file(a, &x, &lx, NULL) == TP_OK &&
                tp_read_file(b, &y, &ly, NULL) == TP_OK && lx == ly && !memcmp(x, y, lx);
    tp_free(x);
    tp_free(y);
    return same;
}

static int run_cmd(const char *cmd) {
    int s = system(cmd);
    return WIFEXITED(s) ? WEXITSTATUS(s) : -1;
}

/* 256-wide models from tp_mkmodel: the K types, the Q4_K_M mix, thread invariance. */
static void test_kquants(const char *build) {
    char cmd[4096];
    const char *fams[] = {"qwen3", "gemma3"};
    for (int f = 0; f < 2; f++) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s", tmp_path(fams[f]));
        snprintf(cmd, sizeof cmd,
                 "'%s/tp_mkmodel' --family %s --hidden 256 --intermediate 512 --layers 4 "
                 "--heads 4 --kv-heads 2 --head-dim 64 --vocab 512 --max-positions 256 "
                 "--scale 0.05 --dtype bf16 --seed 7 --out '%s' --quiet %s",
                 build, fams[f], dir,
                 f == 0 ? "--no-tie" : "--sliding-window 8 --sliding-pattern 2");
        CHECK_MSG(run_cmd(cmd) == 0, "%s", cmd);
        bool tied = f == 1;
        const tp_conv_type types[] = {TP_CONV_Q4_K, TP_CONV_Q6_K, TP_CONV_Q4_K_M, TP_CONV_Q8_0};
        for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
            char what[128];
            snprintf(what, sizeof what, "%s-256 %s", fams[f], tp_conv_type_name(types[k]));
            tp_error err;
            tp_conv_report rep;
            const char *out = tmp_path("k.gguf");
            tp_status s = convert(dir, out, types[k], NULL, &rep, &err);
            CHECK_MSG(s == TP_OK, "%s: %s", what, err.message);
            if (s != TP_OK)
                continue;
            CHECK_EQ_INT(rep.n_fallback, 0);
            tp_gguf *g = NULL;
            CHECK(tp_gguf_open(out, &g, &err) == TP_OK);
            for (size_t i = 0; g && i < tp_gguf_tensor_count(g); i++) {
                const tp_gguf_tensor *t = tp_gguf_tensor_at(g, i);
                int layer = -1, used = 0;
                sscanf(t->name, "blk.%d.%n", &layer, &used);
                bool is_norm = strstr(t->name, "_norm.weight") != NULL;
                tp_dtype want;
                if (t->n_dims == 1 || is_norm)
                    want = TP_DTYPE_F32;
                else if (types[k] == TP_CONV_Q4_K)
                    want = TP_DTYPE_Q4_K;
                else if (types[k] == TP_CONV_Q6_K)
                    want = TP_DTYPE_Q6_K;
                else if (types[k] == TP_CONV_Q8_0)
                    want = TP_DTYPE_Q8_0;
                else if (!strcmp(t->name, "output.weight") ||
                         (tied && !strcmp(t->name, "token_embd.weight")))
                    want = TP_DTYPE_Q6_K;
                else if ((strstr(t->name, ".attn_v.weight") ||
                          strstr(t->name, ".ffn_down.weight")) &&
                         layer >= 2) /* use_more_bits(i, 4): layers 2 and 3 */
                    want = TP_DTYPE_Q6_K;
                else
                    want = TP_DTYPE_Q4_K;
                CHECK_MSG(t->dtype == want, "%s: %s is %s, want %s", what, t->name,
                          tp_dtype_name(t->dtype), tp_dtype_name(want));
            }
            CHECK(!g || (tp_gguf_find_tensor(g, "output.weight") != NULL) == !tied);
            CHECK_EQ_INT(kv_int(g, NULL, "general.file_type"), tp_conv_file_type(types[k]));
            tp_gguf_close(g);
            tp_conv_report_free(&rep);
        }
        /* thread invariance: 1 thread vs 3 */
        tp_error err;
        tp_pool *p3 = tp_pool_create(3, &err);
        const char *a = tmp_path("t1.gguf"), *b = tmp_path("t3.gguf");
        CHECK(convert(dir, a, TP_CONV_Q4_K_M, NULL, NULL, &err) == TP_OK);
        CHECK(convert(dir, b, TP_CONV_Q4_K_M, p3, NULL, &err) == TP_OK);
        CHECK_MSG(same_file(a, b), "%s: q4_k_m bytes depend on the thread count", fams[f]);
        CHECK(convert(dir, a, TP_CONV_Q8_0, NULL, NULL, &err) == TP_OK);
        CHECK(convert(dir, b, TP_CONV_Q8_0, p3, NULL, &err) == TP_OK);
        CHECK_MSG(same_file(a, b), "%s: q8_0 bytes depend on the thread count", fams[f]);
        tp_pool_destroy(p3);
    }
}

/* Every allocation of a conversion failing in turn: each gives
 * TP_ERR_OUT_OF_MEMORY (or succeeds when the failure hit nothing), never a
 * crash or leak (ASan), and never leaves the output file or its .tmp. */
static void test_alloc_failures(void) {
    const char *d = tp_test_shared_or_data("golden/qwen3_tied");
    if (!d) {
        printf("SKIP: golden/qwen3_tied not found\n");
        return;
    }
    char dir[1024], out[512], tmp[600];
    snprintf(dir, sizeof dir, "%s", d);
    snprintf(out, sizeof out, "%s", tmp_path("oom.gguf"));
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    tp_pool *pool = tp_pool_create(2, NULL);
    long oom = 0;
    for (long n = 1; n < 5000; n++) {
        tp_conv_params p = tp_conv_default_params();
        p.type = TP_CONV_Q8_0;
        p.pool = pool;
        tp_conv_report rep;
        tp_error err;
        tp_alloc_fail_set(n, false);
        tp_status st = tp_convert(dir, out, &p, &rep, &err);
        bool hit = tp_alloc_fail_hit();
        tp_alloc_fail_set(0, false);
        if (!hit) {
            CHECK_MSG(st == TP_OK, "n=%ld: %s", n, err.message);
            tp_conv_report_free(&rep);
            break;
        }
        CHECK_MSG(st == TP_ERR_OUT_OF_MEMORY, "allocation %ld failing gives %s: %s", n,
                  tp_status_name(st), err.message);
        CHECK_MSG(!tp_file_exists(out) && !tp_file_exists(tmp), "allocation %ld: file left", n);
        if (st == TP_OK)
            tp_conv_report_free(&rep);
        oom++;
    }
    printf("allocation failures: %ld allocations of a q8_0 conversion failed in turn\n", oom);
    CHECK(oom > 10);
    tp_pool_destroy(pool);
    remove(out);
}

static void test_errors(void) {
    const char *d = tp_test_shared_or_data("golden/qwen3_tied");
    const char *mb = NULL;
    char dir[1024], bert[1024];
    if (!d) {
        printf("SKIP: golden/qwen3_tied not found\n");
        return;
    }
    snprintf(dir, sizeof dir, "%s", d);
    mb = tp_test_shared_or_data("golden/modernbert_mlm");
    snprintf(bert, sizeof bert, "%s", mb ? mb : "");
    tp_error err;
    const char *out = tmp_path("exists.gguf");
    io_write_bytes(out, "keep", 4);
    tp_conv_params p = tp_conv_default_params();
    tp_status s = tp_convert(dir, out, &p, NULL, &err);
    CHECK(s == TP_ERR_INVALID_ARGUMENT && strstr(err.message, "exists"));
    char *txt = NULL;
    size_t len = 0;
    CHECK(tp_read_file(out, &txt, &len, NULL) == TP_OK && len == 4); /* untouched */
    tp_free(txt);
    if (mb) {
        s = tp_convert(bert, tmp_path("bert.gguf"), &p, NULL, &err);
        CHECK_MSG(s == TP_ERR_UNSUPPORTED && strstr(err.message, "modernbert"), "%s", err.message);
        CHECK(!tp_file_exists(tmp_path("bert.gguf")));
    }
    s = tp_convert(tmp_path("no-such-dir"), tmp_path("x.gguf"), &p, NULL, &err);
    CHECK(s == TP_ERR_NOT_FOUND);
}

/* Runs a shell command with stderr into err.txt; returns the exit status. */
static int run_err(const char *cmd, char **err_text) {
    char full[8192];
    const char *ef = tmp_path("err.txt");
    snprintf(full, sizeof full, "%s 2>'%s' >/dev/null", cmd, ef);
    int rc = run_cmd(full);
    size_t len = 0;
    *err_text = NULL;
    if (tp_read_file(ef, err_text, &len, NULL) != TP_OK)
        *err_text = tp_strdup("");
    return rc;
}

/* build/tpipe convert: exit codes, --force, fallbacks named on stderr. */
static void test_cli(const char *build) {
    const char *q = tp_test_shared_or_data("golden/qwen3_tied");
    char qdir[1024], gdir[1024], cmd[4096];
    if (!q) {
        printf("SKIP: golden/qwen3_tied not found\n");
        return;
    }
    snprintf(qdir, sizeof qdir, "%s", q);
    const char *g = tp_test_shared_or_data("golden/gemma3_layer_types_softcap");
    snprintf(gdir, sizeof gdir, "%s", g ? g : "");
    char out[512];
    snprintf(out, sizeof out, "%s", tmp_path("cli.gguf"));
    char *e = NULL;
    snprintf(cmd, sizeof cmd, "'%s/tpipe' convert --model '%s' --output '%s' --type q8_0 --quiet",
             build, qdir, out);
    CHECK_EQ_INT(run_err(cmd, &e), 0);
    CHECK_MSG(e && !*e, "quiet run wrote to stderr: %s", e ? e : "");
    tp_free(e);
    CHECK(tp_file_exists(out));
    CHECK_EQ_INT(run_err(cmd, &e), 2); /* exists */
    CHECK_MSG(e && strstr(e, "tpipe convert: ") == e && strstr(e, "--force"), "%s", e ? e : "");
    tp_free(e);
    snprintf(cmd, sizeof cmd, "'%s/tpipe' convert --model '%s' --output '%s' --force --type f16",
             build, qdir, out);
    CHECK_EQ_INT(run_err(cmd, &e), 0);
    CHECK_MSG(e && strstr(e, "wrote"), "summary line: %s", e ? e : "");
    tp_free(e);
    snprintf(cmd, sizeof cmd, "'%s/tpipe' convert --model '%s' --output '%s' --force --type q4_0",
             build, qdir, out);
    CHECK_EQ_INT(run_err(cmd, &e), 2);
    CHECK_MSG(e && strstr(e, "--type"), "%s", e ? e : "");
    tp_free(e);
    snprintf(cmd, sizeof cmd, "'%s/tpipe' convert --model '%s'", build, qdir);
    CHECK_EQ_INT(run_err(cmd, &e), 2);
    CHECK_MSG(e && strstr(e, "--output"), "%s", e ? e : "");
    tp_free(e);
    if (g) {
        /* hidden 48: Q8_0 falls back to F16 for every matrix with 48-long rows */
        snprintf(cmd, sizeof cmd,
                 "'%s/tpipe' convert --model '%s' --output '%s' --force --type q8_0 --quiet", build,
                 gdir, out);
        CHECK_EQ_INT(run_err(cmd, &e), 0);
        CHECK_MSG(e && strstr(e, "blk.0.attn_q.weight: rows of 48 are not a multiple of the Q8_0 "
                                 "block (32): using fallback type F16"),
                  "%s", e ? e : "");
        tp_free(e);
    }
}

/* Bounded memory: converting a 137 MB checkpoint (vocab 131072, untied) keeps
 * the peak RSS of `tpipe convert` under half the checkpoint: the pages of rows
 * already converted are dropped, and nothing else grows with the model. */
static void test_memory(const char *build) {
    if (getenv("TPIPE_SANITIZER_BUILD")) {
        /* ASan's shadow memory and quarantine make RSS meaningless */
        printf("SKIP: peak-RSS bound (sanitizer build)\n");
        return;
    }
    char dir[512], out[512], cmd[4096];
    snprintf(dir, sizeof dir, "%s", tmp_path("big"));
    snprintf(out, sizeof out, "%s", tmp_path("big.gguf"));
    snprintf(cmd, sizeof cmd,
             "'%s/tp_mkmodel' --family qwen3 --hidden 256 --intermediate 512 --layers 2 --heads 4 "
             "--kv-heads 2 --head-dim 64 --vocab 131072 --dtype bf16 --no-tie --out '%s' --quiet",
             build, dir);
    CHECK(run_cmd(cmd) == 0);
    char st_path[600];
    snprintf(st_path, sizeof st_path, "%s/model.safetensors", dir);
    struct stat sb;
    CHECK(stat(st_path, &sb) == 0);
    char exe[1100];
    snprintf(exe, sizeof exe, "%s/tpipe", build);
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execl(exe, exe, "convert", "--model", dir, "--output", out, "--type", "q8_0", "--quiet",
              "--threads", "2", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    CHECK(pid > 0 && wait4(pid, &status, 0, &ru) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    double rss = (double)ru.ru_maxrss * 1024.0, ckpt = (double)sb.st_size;
    printf("convert q8_0 of a %.0f MB checkpoint: peak RSS %.1f MB\n", ckpt / 1e6, rss / 1e6);
    CHECK_MSG(rss < 0.5 * ckpt, "peak RSS %.1f MB for a %.1f MB checkpoint", rss / 1e6, ckpt / 1e6);
    CHECK(tp_file_exists(out));
}

/* ---- the independent reader @huggingface/gguf (npm) ---- */

static void exp_kv_num(cJSON *kvs, const char *key, int type, double v) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "key", key);
    cJSON_AddNumberToObject(o, "type", type);
    cJSON_AddNumberToObject(o, "value", v);
    cJSON_AddItemToArray(kvs, o);
}

static void exp_kv_str(cJSON *kvs, const char *key, const char *v) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "key", key);
    cJSON_AddNumberToObject(o, "type", 8);
    cJSON_AddStringToObject(o, "value", v);
    cJSON_AddItemToArray(kvs, o);
}

static void exp_kv_arr(cJSON *kvs, const char *key, int sub, double len, cJSON *first) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "key", key);
    cJSON_AddNumberToObject(o, "type", 9);
    cJSON_AddNumberToObject(o, "subType", sub);
    cJSON_AddNumberToObject(o, "length", len);
    cJSON_AddItemToObject(o, "first", first);
    cJSON_AddItemToArray(kvs, o);
}

/* A Qwen3 model with the real Qwen3 tokenizer (q4_k_m) and a Gemma3 one with
 * the Gemma3 tokenizer (q8_0), read by @huggingface/gguf. The expectation
 * comes from config.json, the tokenizer's known first token and size, and the
 * checkpoint's tensors (shapes reversed; types by the mix rules worked out
 * here). SKIP without node/npm or without the package installable. */
static void test_npm(const char *build, const char *script) {
    if (run_cmd("node --version > /dev/null 2>&1") != 0 ||
        run_cmd("npm --version > /dev/null 2>&1") != 0) {
        printf("SKIP: node or npm not found (needed for the @huggingface/gguf cross-check)\n");
        return;
    }
    char cache[1024], marker[1200], cmd[8192];
    snprintf(cache, sizeof cache, "%s/npm-gguf", build);
    snprintf(marker, sizeof marker, "%s/node_modules/@huggingface/gguf/package.json", cache);
    if (!tp_file_exists(marker)) {
        snprintf(cmd, sizeof cmd,
                 "mkdir -p '%s' && timeout 180 npm install --no-audit --no-fund --no-save "
                 "--prefix '%s' @huggingface/gguf@0.4.6 > '%s/install-convert.log' 2>&1",
                 cache, cache, cache);
        if (run_cmd(cmd) != 0 || !tp_file_exists(marker)) {
            printf("SKIP: could not install @huggingface/gguf@0.4.6 (no network?)\n");
            return;
        }
    }
    const struct {
        const char *fam, *tok, *first, *model;
        tp_conv_type type;
        int vocab;
    } cases[] = {{"qwen3", "tokenizers/qwen3", "!", "gpt2", TP_CONV_Q4_K_M, 151669},
                 {"gemma3", "tokenizers/gemma3", "<pad>", "llama", TP_CONV_Q8_0, 0}};
    for (int c = 0; c < 2; c++) {
        char tjson[256];
        snprintf(tjson, sizeof tjson, "%s/tokenizer.json", cases[c].tok);
        if (!tp_test_shared_or_data(tjson)) {
            printf("SKIP: %s not found\n", tjson);
            continue;
        }
        const char *td = tp_test_shared_or_data(cases[c].tok);
        char dir[512], out[512], expf[512];
        snprintf(dir, sizeof dir, "%s", tmp_path(cases[c].fam));
        snprintf(out, sizeof out, "%s", tmp_path("npm.gguf"));
        snprintf(expf, sizeof expf, "%s", tmp_path("npm.json"));
        snprintf(cmd, sizeof cmd,
                 "'%s/tp_mkmodel' --family %s --hidden 256 --intermediate 512 --layers 4 "
                 "--heads 4 --kv-heads 2 --head-dim 64 --dtype bf16 --tokenizer-dir '%s' "
                 "--out '%s' --quiet",
                 build, cases[c].fam, td, dir);
        CHECK_MSG(run_cmd(cmd) == 0, "%s", cmd);
        tp_error err;
        tp_conv_report rep;
        CHECK_MSG(convert(dir, out, cases[c].type, NULL, &rep, &err) == TP_OK, "%s", err.message);
        CHECK(rep.has_tokenizer && rep.has_chat_template);
        tp_conv_report_free(&rep);
        char cpath[600];
        snprintf(cpath, sizeof cpath, "%s/config.json", dir);
        tp_json_doc cfg = {0};
        tp_st_model *st = NULL;
        CHECK(tp_json_load(cpath, &cfg, &err) == TP_OK && tp_st_open(dir, &st, &err) == TP_OK);
        if (!st || !cfg.root) {
            tp_json_free(&cfg);
            continue;
        }
        const char *a = cases[c].fam;
        char key[128];
        cJSON *exp = cJSON_CreateObject(), *kvs = cJSON_AddArrayToObject(exp, "kv"),
              *ts = cJSON_AddArrayToObject(exp, "tensors");
        exp_kv_str(kvs, "general.architecture", a);
        exp_kv_str(kvs, "general.name", cases[c].fam);
        exp_kv_num(kvs, "general.file_type", 4, tp_conv_file_type(cases[c].type));
        exp_kv_num(kvs, "general.quantization_version", 4, 2);
        const char *keys[][2] = {{"block_count", "num_hidden_layers"},
                                 {"embedding_length", "hidden_size"},
                                 {"feed_forward_length", "intermediate_size"},
                                 {"attention.head_count", "num_attention_heads"},
                                 {"attention.head_count_kv", "num_key_value_heads"},
                                 {"attention.key_length", "head_dim"},
                                 {"context_length", "max_position_embeddings"}};
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            snprintf(key, sizeof key, "%s.%s", a, keys[k][0]);
            exp_kv_num(kvs, key, 4, (double)cfg_int(&cfg, keys[k][1]));
        }
        snprintf(key, sizeof key, "%s.rope.freq_base", a);
        exp_kv_num(kvs, key, 6, (double)(float)cfg_double(&cfg, "rope_theta"));
        exp_kv_str(kvs, "tokenizer.ggml.model", cases[c].model);
        int64_t vocab = cfg_int(&cfg, "vocab_size");
        exp_kv_arr(kvs, "tokenizer.ggml.tokens", 8, (double)vocab,
                   cJSON_CreateString(cases[c].first));
        if (cases[c].vocab)
            CHECK_EQ_INT(vocab, cases[c].vocab);
        bool tied = tp_st_find(st, "lm_head.weight") == NULL;
        for (size_t i = 0; i < tp_st_count(st); i++) {
            const tp_st_tensor *t = tp_st_at(st, i);
            /* the GGUF name, by the hand-written list of source_of() */
            const char *gn = NULL;
            static char names[64][64];
            int n = 0;
            snprintf(names[n++], 64, "token_embd.weight");
            snprintf(names[n++], 64, "output.weight");
            snprintf(names[n++], 64, "output_norm.weight");
            const char *sfx[] = {
                "attn_q",      "attn_k",    "attn_v",       "attn_output",         "attn_q_norm",
                "attn_k_norm", "attn_norm", "ffn_norm",     "post_attention_norm", "ffn_gate",
                "ffn_up",      "ffn_down",  "post_ffw_norm"};
            for (int l = 0; l < 4; l++)
                for (size_t k = 0; k < sizeof sfx / sizeof sfx[0] && n < 64; k++)
                    snprintf(names[n++], 64, "blk.%d.%s.weight", l, sfx[k]);
            for (int k = 0; k < n && !gn; k++) {
                bool norm;
                if (source_of(st, names[k], &norm) == t)
                    gn = names[k];
            }
            CHECK_MSG(gn != NULL, "%s: no GGUF name for %s", a, t->name);
            if (!gn)
                continue;
            int layer = -1, used = 0;
            sscanf(gn, "blk.%d.%n", &layer, &used);
            int ggml = 0; /* F32 */
            if (t->n_dims >= 2) {
                if (cases[c].type == TP_CONV_Q8_0)
                    ggml = 8;
                else if (!strcmp(gn, "output.weight") ||
                         (tied && !strcmp(gn, "token_embd.weight")) ||
                         ((strstr(gn, ".attn_v.") || strstr(gn, ".ffn_down.")) && layer >= 2))
                    ggml = 14; /* Q6_K */
                else
                    ggml = 12; /* Q4_K */
            }
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", gn);
            cJSON *shape = cJSON_AddArrayToObject(o, "shape");
            for (int d = t->n_dims - 1; d >= 0; d--)
                cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
            cJSON_AddNumberToObject(o, "dtype", ggml);
            cJSON_AddItemToArray(ts, o);
        }
        char *txt = cJSON_Print(exp);
        io_write_bytes(expf, txt, strlen(txt));
        free(txt);
        cJSON_Delete(exp);
        snprintf(cmd, sizeof cmd, "node '%s' '%s' '%s' '%s'", script, cache, out, expf);
        int rc = run_cmd(cmd);
        CHECK_MSG(rc == 0, "%s: @huggingface/gguf check failed (%d)", a, rc);
        tp_st_close(st);
        tp_json_free(&cfg);
    }
}

int main(int argc, char **argv) {
    snprintf(g_tmp, sizeof g_tmp, "%s", io_tmpdir());
    test_golden("qwen3_tied", "qwen3");
    test_golden("qwen3_untied_bf16", "qwen3");
    test_golden("gemma3_pattern_linear_rope", "gemma3");
    test_golden("gemma3_layer_types_softcap", "gemma3");
    test_errors();
    test_alloc_failures();
    const char *build = getenv("TPIPE_BUILD");
    char mk[1024];
    snprintf(mk, sizeof mk, "%s/tp_mkmodel", build ? build : ".");
    if (build && tp_file_exists(mk))
        test_kquants(build);
    else
        printf("SKIP: K-quant checks need build/tp_mkmodel (run through ctest)\n");
    snprintf(mk, sizeof mk, "%s/tpipe", build ? build : ".");
    if (build && tp_file_exists(mk))
        test_cli(build), test_memory(build);
    if (build && argc > 1)
        test_npm(build, argv[1]);
    else
        printf("SKIP: CLI checks need build/tpipe (run through ctest)\n");
    io_rmtree(g_tmp);
    return tp_test_exit();
}
