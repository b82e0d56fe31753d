/*
 * test_mkmodel.c — the safetensors writer (src/io/st_write.c), the Python-style
 * JSON printer, and build/tp_mkmodel:
 *   - with the dimensions of each of the 7 golden cases, tp_mkmodel writes a
 *     config.json byte-identical to the golden one (written by transformers)
 *     and a model.safetensors whose header is byte-identical to the golden
 *     file's header (names, dtypes, shapes, offsets, padding);
 *   - the weights are deterministic per seed, in the documented ranges;
 *   - presets, NLI labels, tokenizer copying and bad flags.
 */
#include "golden_expect.h"
#include "io/safetensors.h"
#include "io/st_write.h"
#include "io_test_util.h"

#include <sys/wait.h>

static char mkmodel[4096];

static int run(const char *args) {
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "'%s' %s >/dev/null 2>&1", mkmodel, args);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *path, size_t *len) {
    char *d = NULL;
    tp_error err;
    if (tp_read_file(path, &d, len, &err) != TP_OK)
        return NULL;
    return d;
}

static int same_file(const char *a, const char *b) {
    size_t la = 0, lb = 0;
    char *x = slurp(a, &la), *y = slurp(b, &lb);
    int same = x && y && la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return same;
}

/* The 8-byte length + JSON header of a safetensors file, malloc'd. */
static char *st_header(const char *path, size_t *len) {
    size_t n = 0;
    char *d = slurp(path, &n);
    if (!d || n < 8) {
        free(d);
        return NULL;
    }
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = hl << 8 | (unsigned char)d[i];
    if (hl > n - 8) {
        free(d);
        return NULL;
    }
    *len = (size_t)(8 + hl);
    return d;
}

static const struct {
    const char *name;
    const char *flags;
} golden_flags[] = {
    {"modernbert_mlm", "--family modernbert --hidden 64 --layers 4 --heads 4 --intermediate 96 "
                       "--vocab 512 --local-window 8 --global-every 3"},
    {"modernbert_seqcls_mean",
     "--family modernbert --labels negative,neutral,positive --hidden 48 --layers 3 --heads 3 "
     "--intermediate 64 --vocab 512 --local-window 16 --global-every 2"},
    {"modernbert_seqcls_cls_bias",
     "--family modernbert --labels NEGATIVE,POSITIVE --pooling cls --biases --hidden 32 "
     "--layers 3 --heads 2 --intermediate 48 --vocab 512 --local-window 10 --global-every 3"},
    {"qwen3_tied", "--family qwen3 --hidden 64 --layers 3 --heads 4 --kv-heads 2 --head-dim 32 "
                   "--intermediate 128 --vocab 1024 --bos-id 1000 --eos-id 106 --tie"},
    {"qwen3_untied_bf16",
     "--family qwen3 --hidden 64 --layers 2 --heads 4 --kv-heads 1 --head-dim 16 "
     "--intermediate 160 --vocab 768 --bos-id 744 --eos-id 643 --rope-theta 10000 --dtype bf16"},
    {"gemma3_pattern_linear_rope",
     "--family gemma3 --no-layer-types --hidden 64 --layers 4 --heads 4 --kv-heads 2 "
     "--head-dim 32 --intermediate 128 --vocab 512 --sliding-window 8 --sliding-pattern 2 "
     "--rope-linear 8 --eos-id 1,106,489"},
    {"gemma3_layer_types_softcap",
     "--family gemma3 --layer-types --hidden 48 --layers 3 --heads 3 --kv-heads 1 --head-dim 24 "
     "--intermediate 96 --vocab 640 --sliding-window 12 --sliding-pattern 2 "
     "--query-pre-attn-scalar 20 --final-softcap 10 --eos-id 1,106,340"},
};

/* Values: norms 1 +- scale (Gemma3: +-scale), everything else in [-scale, scale). */
static void check_values(const char *dir, const char *name, int gemma, double scale) {
    tp_st_model *m = NULL;
    tp_error err;
    CHECK_MSG(tp_st_open(dir, &m, &err) == TP_OK, "%s: %s", name, err.message);
    if (!m)
        return;
    for (size_t i = 0; i < tp_st_count(m); i++) {
        const tp_st_tensor *t = tp_st_at(m, i);
        float *v = NULL;
        CHECK(tp_st_to_f32(t, &v, &err) == TP_OK);
        if (!v)
            continue;
        size_t nl = strlen(t->name);
        int norm = nl >= 11 && strcmp(t->name + nl - 11, "norm.weight") == 0;
        double center = norm && !gemma ? 1.0 : 0.0, sum = 0, lo = 1e9, hi = -1e9;
        for (int64_t k = 0; k < t->n_elems; k++) {
            sum += v[k] - center;
            lo = v[k] < lo ? v[k] : lo;
            hi = v[k] > hi ? v[k] : hi;
        }
        double mean = t->n_elems ? sum / (double)t->n_elems : 0;
        /* bf16 rounding may move a value by 2^-8 relative */
        double tol = scale * 1.01 + 1e-6 + center * 0.004;
        CHECK_MSG(lo >= center - tol && hi <= center + tol, "%s: %s range [%g, %g]", name, t->name,
                  lo, hi);
        if (t->n_elems >= 256) {
            CHECK_MSG(hi - lo > scale, "%s: %s not spread: [%g, %g]", name, t->name, lo, hi);
            CHECK_MSG(fabs(mean) < scale * 0.2, "%s: %s mean %g", name, t->name, mean);
        }
        free(v);
    }
    tp_st_close(m);
}

static void test_golden_shapes(const char *root) {
    for (size_t i = 0; i < sizeof golden_flags / sizeof golden_flags[0]; i++) {
        const char *name = golden_flags[i].name;
        char out[1024], args[4096], gold[4096];
        snprintf(out, sizeof out, "%s/%s", root, name);
        snprintf(args, sizeof args, "--out '%s' --quiet %s", out, golden_flags[i].flags);
        CHECK_MSG(run(args) == 0, "tp_mkmodel %s failed", args);
        snprintf(gold, sizeof gold, "%s", tp_test_data("golden"));
        char a[4200], b[4200];
        snprintf(a, sizeof a, "%s/config.json", out);
        snprintf(b, sizeof b, "%s/%s/config.json", gold, name);
        CHECK_MSG(same_file(a, b), "%s: config.json differs from the golden one", name);

        snprintf(a, sizeof a, "%s/model.safetensors", out);
        snprintf(b, sizeof b, "%s/%s/model.safetensors", gold, name);
        size_t la = 0, lb = 0;
        char *ha = st_header(a, &la), *hb = st_header(b, &lb);
        CHECK_MSG(ha && hb && la == lb && memcmp(ha, hb, la) == 0,
                  "%s: safetensors header differs from the golden one", name);
        free(ha);
        free(hb);

        /* and the tensor set matches the expected list built from the golden config */
        cJSON *cfg = NULL;
        size_t cl = 0;
        char *ct = slurp(b, &cl);
        free(ct);
        snprintf(b, sizeof b, "%s/%s/config.json", gold, name);
        ct = slurp(b, &cl);
        cfg = ct ? cJSON_Parse(ct) : NULL;
        free(ct);
        static exp_list l;
        CHECK(cfg && expect_tensors(cfg, &l));
        tp_st_model *m = NULL;
        tp_error err;
        CHECK(tp_st_open(out, &m, &err) == TP_OK);
        if (m) {
            CHECK_EQ_INT(tp_st_count(m), l.n);
            for (int k = 0; k < l.n; k++) {
                const tp_st_tensor *t = tp_st_find(m, l.t[k].name);
                CHECK_MSG(t && t->n_dims == l.t[k].n_dims && t->shape[0] == l.t[k].shape[0] &&
                              (t->n_dims < 2 || t->shape[1] == l.t[k].shape[1]),
                          "%s: %s", name, l.t[k].name);
            }
            tp_st_close(m);
        }
        cJSON_Delete(cfg);
        check_values(out, name, strncmp(name, "gemma3", 6) == 0, 0.02);

        /* decoders get a generation_config.json with the config's eos ids */
        snprintf(a, sizeof a, "%s/generation_config.json", out);
        if (strncmp(name, "modernbert", 10) == 0) {
            CHECK(!tp_file_exists(a));
        } else {
            size_t gl = 0;
            char *g = slurp(a, &gl);
            cJSON *gj = g ? cJSON_Parse(g) : NULL;
            CHECK_MSG(gj != NULL, "%s: generation_config.json", name);
            const cJSON *eos = cJSON_GetObjectItem(gj, "eos_token_id");
            if (strcmp(name, "qwen3_tied") == 0)
                CHECK(cJSON_IsNumber(eos) && eos->valuedouble == 106);
            if (strcmp(name, "gemma3_layer_types_softcap") == 0)
                CHECK(cJSON_GetArraySize(eos) == 3 &&
                      cJSON_GetArrayItem(eos, 2)->valuedouble == 340);
            cJSON_Delete(gj);
            free(g);
        }
    }
}

static void test_determinism(const char *root) {
    char a[1024], b[1024], c[1024], args[4096];
    const char *flags = "--family qwen3 --hidden 32 --layers 1 --heads 2 --intermediate 48 "
                        "--vocab 4000 --dtype bf16 --quiet";
    snprintf(a, sizeof a, "%s/det_a", root);
    snprintf(b, sizeof b, "%s/det_b", root);
    snprintf(c, sizeof c, "%s/det_c", root);
    snprintf(args, sizeof args, "--out '%s' --seed 7 %s", a, flags);
    CHECK(run(args) == 0);
    snprintf(args, sizeof args, "--out '%s' --seed 7 %s", b, flags);
    CHECK(run(args) == 0);
    snprintf(args, sizeof args, "--out '%s' --seed 8 %s", c, flags);
    CHECK(run(args) == 0);
    char pa[1100], pb[1100], pc[1100];
    snprintf(pa, sizeof pa, "%s/model.safetensors", a);
    snprintf(pb, sizeof pb, "%s/model.safetensors", b);
    snprintf(pc, sizeof pc, "%s/model.safetensors", c);
    CHECK_MSG(same_file(pa, pb), "same seed, different weights");
    CHECK_MSG(!same_file(pa, pc), "different seeds, same weights");
    size_t la = 0, lc = 0;
    char *ha = st_header(pa, &la), *hc = st_header(pc, &lc);
    CHECK(ha && hc && la == lc && memcmp(ha, hc, la) == 0); /* same layout */
    free(ha);
    free(hc);
    /* a larger --scale widens the values */
    snprintf(args, sizeof args, "--out '%s' --seed 7 --scale 0.5 %s", c, flags);
    CHECK(run(args) == 0);
    check_values(c, "scale0.5", 0, 0.5);
}

static void test_presets(const char *root) {
    char out[1024], args[4096];
    /* gemma3-270m dimensions, cut to one layer and a small vocab to stay fast */
    snprintf(out, sizeof out, "%s/g270", root);
    snprintf(args, sizeof args, "--out '%s' --preset gemma3-270m --layers 1 --vocab 1024 --quiet",
             out);
    CHECK(run(args) == 0);
    tp_st_model *m = NULL;
    tp_error err;
    CHECK(tp_st_open(out, &m, &err) == TP_OK);
    if (m) {
        const tp_st_tensor *q = tp_st_find(m, "model.layers.0.self_attn.q_proj.weight");
        const tp_st_tensor *k = tp_st_find(m, "model.layers.0.self_attn.k_proj.weight");
        const tp_st_tensor *g = tp_st_find(m, "model.layers.0.mlp.gate_proj.weight");
        CHECK(q && q->shape[0] == 4 * 256 && q->shape[1] == 640 && q->dtype == TP_DTYPE_BF16);
        CHECK(k && k->shape[0] == 256);
        CHECK(g && g->shape[0] == 2048);
        CHECK(tp_st_find(m, "lm_head.weight") == NULL); /* tied */
        tp_st_close(m);
    }
    char p[1100];
    snprintf(p, sizeof p, "%s/config.json", out);
    size_t n = 0;
    char *t = slurp(p, &n);
    cJSON *c = t ? cJSON_Parse(t) : NULL;
    CHECK(c && cJSON_GetObjectItem(c, "query_pre_attn_scalar")->valuedouble == 256);
    CHECK(c && cJSON_GetArraySize(cJSON_GetObjectItem(c, "layer_types")) == 1);
    CHECK(c && strcmp(cJSON_GetObjectItem(c, "torch_dtype")->valuestring, "bfloat16") == 0);
    cJSON_Delete(c);
    free(t);

    /* modernbert-base shaped NLI classifier (2 layers, small vocab) */
    snprintf(out, sizeof out, "%s/nli", root);
    snprintf(args, sizeof args,
             "--out '%s' --preset modernbert-base --layers 2 --vocab 600 --nli --quiet", out);
    CHECK(run(args) == 0);
    snprintf(p, sizeof p, "%s/config.json", out);
    t = slurp(p, &n);
    c = t ? cJSON_Parse(t) : NULL;
    const cJSON *i2l = cJSON_GetObjectItem(c, "id2label");
    CHECK(c && cJSON_GetArraySize(i2l) == 3);
    CHECK(c && strcmp(cJSON_GetObjectItem(i2l, "0")->valuestring, "entailment") == 0 &&
          strcmp(cJSON_GetObjectItem(i2l, "2")->valuestring, "contradiction") == 0);
    CHECK(c &&
          cJSON_GetObjectItem(cJSON_GetObjectItem(c, "label2id"), "neutral")->valuedouble == 1);
    CHECK(c && strcmp(cJSON_GetArrayItem(cJSON_GetObjectItem(c, "architectures"), 0)->valuestring,
                      "ModernBertForSequenceClassification") == 0);
    CHECK(c && cJSON_GetObjectItem(c, "hidden_size")->valuedouble == 768);
    cJSON_Delete(c);
    free(t);
    m = NULL;
    CHECK(tp_st_open(out, &m, &err) == TP_OK);
    if (m) {
        const tp_st_tensor *cl = tp_st_find(m, "classifier.weight");
        CHECK(cl && cl->shape[0] == 3 && cl->shape[1] == 768);
        const tp_st_tensor *wi = tp_st_find(m, "model.layers.1.mlp.Wi.weight");
        CHECK(wi && wi->shape[0] == 2 * 1152);
        tp_st_close(m);
    }
}

static void test_tokenizer_copy(const char *root) {
    /* a small hand-made tokenizer folder: ids up to 9 */
    char tdir[1024], out[1024], args[8192];
    snprintf(tdir, sizeof tdir, "%s/tok", root);
    mkdir(tdir, 0755);
    const char *tj = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 7}},"
                     " \"added_tokens\": [{\"id\": 9, \"content\": \"<eos>\"}]}";
    io_write_bytes(io_join(tdir, "tokenizer.json"), tj, strlen(tj));
    io_write_bytes(io_join(tdir, "tokenizer_config.json"), "{}", 2);
    snprintf(out, sizeof out, "%s/withtok", root);
    snprintf(args, sizeof args,
             "--out '%s' --family qwen3 --hidden 16 --layers 1 --heads 2 --intermediate 16 "
             "--bos-id 8 --eos-id 9 --tokenizer-dir '%s' --quiet",
             out, tdir);
    CHECK(run(args) == 0);
    char a[1100], b[1100];
    snprintf(a, sizeof a, "%s/tokenizer.json", out);
    snprintf(b, sizeof b, "%s/tokenizer.json", tdir);
    CHECK(same_file(a, b));
    snprintf(a, sizeof a, "%s/tokenizer_config.json", out);
    CHECK(tp_file_exists(a));
    tp_st_model *m = NULL;
    tp_error err;
    CHECK(tp_st_open(out, &m, &err) == TP_OK);
    if (m) { /* vocab from the tokenizer: max id 9 -> 10 */
        const tp_st_tensor *e = tp_st_find(m, "model.embed_tokens.weight");
        CHECK(e && e->shape[0] == 10);
        tp_st_close(m);
    }
    /* a folder without tokenizer.json is an error */
    snprintf(args, sizeof args, "--out '%s/x' --family qwen3 --vocab 64 --tokenizer-dir '%s'", root,
             root);
    CHECK(run(args) != 0);

    /* with the real Qwen3 tokenizer when ../shared is here */
    const char *q = tp_test_shared_or_data("tokenizers/qwen3");
    if (!q) {
        printf("SKIP: real tokenizer copy (no Qwen3 tokenizer in ../shared or tests/data)\n");
        return;
    }
    char qdir[4096];
    snprintf(qdir, sizeof qdir, "%s", q);
    snprintf(out, sizeof out, "%s/realtok", root);
    snprintf(args, sizeof args,
             "--out '%s' --family qwen3 --hidden 16 --layers 0 --heads 2 --intermediate 16 "
             "--tokenizer-dir '%s' --quiet",
             out, qdir);
    CHECK(run(args) == 0);
    snprintf(a, sizeof a, "%s/config.json", out);
    size_t n = 0;
    char *t = slurp(a, &n);
    cJSON *c = t ? cJSON_Parse(t) : NULL;
    /* Qwen3's largest id is 151668; the real special ids are used */
    CHECK(c && cJSON_GetObjectItem(c, "vocab_size")->valuedouble == 151669);
    CHECK(c && cJSON_GetObjectItem(c, "eos_token_id")->valuedouble == 151645);
    cJSON_Delete(c);
    free(t);
}

/* --shard-size: shards + index load to the same tensors as the single file */
static void test_sharded(const char *root) {
    char a[1024], b[1024], args[4096];
    const char *flags = "--family qwen3 --hidden 64 --layers 3 --heads 4 --intermediate 128 "
                        "--vocab 1000 --seed 3 --quiet";
    snprintf(a, sizeof a, "%s/shards", root);
    snprintf(b, sizeof b, "%s/single", root);
    snprintf(args, sizeof args, "--out '%s' --shard-size 0.3 %s", a, flags);
    CHECK(run(args) == 0);
    snprintf(args, sizeof args, "--out '%s' %s", b, flags);
    CHECK(run(args) == 0);
    char p[1100];
    snprintf(p, sizeof p, "%s/model.safetensors", a);
    CHECK(!tp_file_exists(p));
    snprintf(p, sizeof p, "%s/model-00004-of-00004.safetensors", a);
    CHECK(tp_file_exists(p));
    for (int i = 1; i <= 4; i++) { /* each shard at most 0.3 MB (no tensor is larger) */
        snprintf(p, sizeof p, "%s/model-%05d-of-00004.safetensors", a, i);
        struct stat sb;
        CHECK(stat(p, &sb) == 0 && sb.st_size <= 300000 + 4096);
    }
    tp_st_model *ms = NULL, *m1 = NULL;
    tp_error err;
    CHECK_MSG(tp_st_open(a, &ms, &err) == TP_OK, "%s", err.message);
    CHECK_MSG(tp_st_open(b, &m1, &err) == TP_OK, "%s", err.message);
    if (ms && m1) {
        CHECK_EQ_INT(tp_st_file_count(ms), 4);
        CHECK_EQ_INT(tp_st_count(ms), tp_st_count(m1));
        for (size_t i = 0; i < tp_st_count(m1); i++) {
            const tp_st_tensor *x = tp_st_at(m1, i), *y = tp_st_find(ms, x->name);
            CHECK_MSG(y && y->n_bytes == x->n_bytes && memcmp(x->data, y->data, x->n_bytes) == 0,
                      "%s differs between the sharded and single-file writes", x->name);
        }
    }
    tp_st_close(ms);
    tp_st_close(m1);
    /* the index is what transformers writes: total_size = sum of tensor bytes */
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", a);
    size_t n = 0;
    char *t = slurp(p, &n);
    cJSON *c = t ? cJSON_Parse(t) : NULL;
    const cJSON *ts = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "metadata"), "total_size");
    CHECK(cJSON_IsNumber(ts) && ts->valuedouble == 1005696.0);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(c, "weight_map")) == 36);
    cJSON_Delete(c);
    free(t);
    /* rewriting as a single file removes the index */
    snprintf(args, sizeof args, "--out '%s' %s", a, flags);
    CHECK(run(args) == 0);
    CHECK(!tp_file_exists(p));
    CHECK(run("--family qwen3 --out /tmp/never --shard-size 0") == 2);
}

static void test_bad_flags(const char *root) {
    char args[2048];
    CHECK(run("--family llama --out /tmp/never") == 2);
    CHECK(run("--family qwen3") == 2); /* no --out */
    CHECK(run("--preset nope --out /tmp/never") == 2);
    snprintf(args, sizeof args, "--out '%s/bad' --family qwen3 --vocab 10 --eos-id 10", root);
    CHECK(run(args) == 2);
    snprintf(args, sizeof args, "--out '%s/bad' --family qwen3 --heads 3 --kv-heads 2", root);
    CHECK(run(args) == 2);
    snprintf(args, sizeof args, "--out '%s/bad' --family modernbert --dtype f8", root);
    CHECK(run(args) == 2);
    snprintf(args, sizeof args, "--out '%s/bad' --family modernbert --hidden x", root);
    CHECK(run(args) == 2);
    snprintf(args, sizeof args, "--out '%s/bad' --family modernbert --frobnicate", root);
    CHECK(run(args) == 2);
    /* zero sizes that would divide by zero, duplicate labels */
    static const char *const zeros[] = {
        "--family qwen3 --heads 0",
        "--family modernbert --heads 0",
        "--family qwen3 --kv-heads 0",
        "--family gemma3 --sliding-pattern 0",
        "--family modernbert --global-every 0",
        "--family modernbert --labels a,b,a",
        "--family qwen3 --hidden 0",
    };
    for (size_t i = 0; i < sizeof zeros / sizeof zeros[0]; i++) {
        snprintf(args, sizeof args, "--out '%s/bad' %s", root, zeros[i]);
        CHECK_MSG(run(args) == 2, "%s", zeros[i]);
    }
    CHECK(run("--help") == 0);
}

/* ---- st_write and the JSON printer, in process ---- */

static void test_writer(const char *root) {
    float f[6] = {1, 2, 3, 4, 5, 6};
    uint16_t h[3] = {0x3f80, 0x4000, 0xc040};
    int64_t id = -5;
    tp_st_wtensor t[4] = {
        {.name = "z.\"quoted\"\\name",
         .dtype = TP_DTYPE_F32,
         .n_dims = 2,
         .shape = {2, 3},
         .data = f},
        {.name = "a.caf\xc3\xa9", .dtype = TP_DTYPE_BF16, .n_dims = 1, .shape = {3}, .data = h},
        {.name = "m.scalar", .dtype = TP_DTYPE_I64, .n_dims = 0, .data = &id},
        {.name = "e.empty", .dtype = TP_DTYPE_F32, .n_dims = 2, .shape = {0, 4}, .data = f},
    };
    char path[1024];
    snprintf(path, sizeof path, "%s/w.safetensors", root);
    tp_error err;
    CHECK_MSG(tp_st_write(path, t, 4, NULL, NULL, &err) == TP_OK, "%s", err.message);
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(!tp_file_exists(tmp));
    tp_st_model *m = NULL;
    CHECK_MSG(tp_st_open(path, &m, &err) == TP_OK, "%s", err.message);
    if (m) {
        CHECK_EQ_INT(tp_st_count(m), 4);
        CHECK_STR(tp_st_at(m, 0)->name, "a.caf\xc3\xa9");
        const tp_st_tensor *z = tp_st_find(m, "z.\"quoted\"\\name");
        CHECK(z && z->n_dims == 2 && memcmp(z->data, f, sizeof f) == 0);
        const tp_st_tensor *s = tp_st_find(m, "m.scalar");
        int64_t v = 0;
        if (s)
            memcpy(&v, s->data, 8);
        CHECK(s && s->n_dims == 0 && v == -5);
        float *a = NULL;
        CHECK(tp_st_to_f32(tp_st_at(m, 0), &a, &err) == TP_OK);
        CHECK(a && a[0] == 1.0f && a[1] == 2.0f && a[2] == -3.0f);
        free(a);
        tp_st_close(m);
    }
    size_t hl = 0;
    char *hd = st_header(path, &hl);
    CHECK(hd && hl % 8 == 0 && strncmp(hd + 8, "{\"__metadata__\":{\"format\":\"pt\"},", 32) == 0);
    free(hd);

    /* bad inputs: named, and no file left behind */
    tp_st_wtensor dup[2] = {t[0], t[0]};
    CHECK(tp_st_write(path, dup, 2, NULL, NULL, &err) == TP_ERR_INVALID_ARGUMENT);
    CHECK(io_contains(err.message, "given twice"));
    tp_st_wtensor bad = t[0];
    bad.name = "__metadata__";
    CHECK(tp_st_write(path, &bad, 1, NULL, NULL, &err) == TP_ERR_INVALID_ARGUMENT);
    bad.name = "x\xff";
    CHECK(tp_st_write(path, &bad, 1, NULL, NULL, &err) == TP_ERR_INVALID_ARGUMENT);
    bad = t[0];
    bad.shape[0] = -1;
    CHECK(tp_st_write(path, &bad, 1, NULL, NULL, &err) == TP_ERR_INVALID_ARGUMENT);
    bad = t[0];
    bad.data = NULL;
    CHECK(tp_st_write(path, &bad, 1, NULL, NULL, &err) == TP_ERR_INVALID_ARGUMENT);
    char nodir[1100];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/x.safetensors", root);
    CHECK(tp_st_write(nodir, t, 1, NULL, NULL, &err) == TP_ERR_IO);
    CHECK(io_contains(err.message, "no/such/dir"));
    CHECK(tp_st_write(path, t, 4, NULL, NULL, &err) == TP_OK); /* the good file is intact */
}

static void test_py_json(void) {
    static const struct {
        double v;
        const char *want;
    } floats[] = {
        {1e-06, "1e-06"},
        {1e-05, "1e-05"},
        {0.0001, "0.0001"},
        {1000000.0, "1000000.0"},
        {0.02, "0.02"},
        {10.0, "10.0"},
        {160000.0, "160000.0"},
        {0.95, "0.95"},
        {0.6, "0.6"},
        {-2.5, "-2.5"},
        {1e16, "1e+16"},
        {1.5e-07, "1.5e-07"},
        {123456789012345.0, "123456789012345.0"},
        {0.1, "0.1"},
        {2.0 / 3.0, "0.6666666666666666"},
        {0.0, "0.0"},
        {1e300, "1e+300"},
        {0.5, "0.5"},
    };
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
        char s[32];
        tp_json_py_float(floats[i].v, s);
        CHECK_STR(s, floats[i].want);
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "z", "n\xc3\xa9gatif \xf0\x9f\x98\x80 \"q\"\n");
    cJSON_AddItemToObject(r, "a", cJSON_CreateArray());
    cJSON_AddItemToObject(r, "m", cJSON_CreateObject());
    cJSON *arr = cJSON_AddArrayToObject(r, "list");
    cJSON_AddItemToArray(arr, cJSON_CreateNumber(1));
    cJSON_AddItemToArray(arr, tp_json_py_number(0.5));
    cJSON_AddNullToObject(r, "n");
    cJSON_AddBoolToObject(r, "b", 1);
    tp_buf b = {0};
    tp_json_print_py(r, &b);
    CHECK_STR(b.data, "{\n"
                      "  \"a\": [],\n"
                      "  \"b\": true,\n"
                      "  \"list\": [\n"
                      "    1,\n"
                      "    0.5\n"
                      "  ],\n"
                      "  \"m\": {},\n"
                      "  \"n\": null,\n"
                      "  \"z\": \"n\\u00e9gatif \\ud83d\\ude00 \\\"q\\\"\\n\"\n"
                      "}");
    tp_buf_free(&b);
    cJSON_Delete(r);
}

int main(void) {
    const char *bd = getenv("TPIPE_BUILD");
    snprintf(mkmodel, sizeof mkmodel, "%s/tp_mkmodel", bd ? bd : ".");
    char root[256];
    snprintf(root, sizeof root, "%s", io_tmpdir());
    test_py_json();
    test_writer(root);
    if (!tp_file_exists(mkmodel)) {
        CHECK_MSG(0, "%s not built", mkmodel);
    } else {
        test_golden_shapes(root);
        test_determinism(root);
        test_presets(root);
        test_tokenizer_copy(root);
        test_sharded(root);
        test_bad_flags(root);
    }
    io_rmtree(root);
    return tp_test_exit();
}
