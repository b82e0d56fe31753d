/*
 * tiny_model.h — test-side writer of small random-weight ModernBERT folders in
 * the Hugging Face on-disk format (config.json + model.safetensors, F32) with
 * the real ModernBERT tokenizer files copied next to them, so the pipeline
 * tests run the whole path (tokenizer -> scheduler -> network -> heads ->
 * post-processing) on real tokenization without big downloads.
 *
 * The weights are a fixed-seed pseudo-random function of the tensor name, so
 * a folder is the same on every run. Expected values in the tests never come
 * from here: the tests compare the pipelines with their own computations from
 * the raw network logits.
 */
#ifndef TP_TEST_TINY_MODEL_H
#define TP_TEST_TINY_MODEL_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct tiny_cfg {
    int hidden, intermediate, layers, heads, vocab, local_attention, every_n;
    const char *arch;          /* "ModernBertForMaskedLM" / "ModernBertForSequenceClassification" */
    const char *const *labels; /* id2label names (classification), NULL-terminated */
    const char *pooling;       /* "cls" / "mean" */
    const char *problem_type;  /* NULL or e.g. "multi_label_classification" */
    bool biases;               /* every optional bias on */
    unsigned seed;
} tiny_cfg;

static inline tiny_cfg tiny_default(const char *arch) {
    tiny_cfg c = {32, 48, 2, 2, 50368, 8, 2, arch, NULL, "cls", NULL, false, 1234u};
    return c;
}

/* ---- a tiny safetensors writer ---- */
typedef struct tiny_tensor {
    char name[96];
    int64_t shape[2];
    int n_dims;
    float *data;
    size_t n;
} tiny_tensor;

typedef struct tiny_st {
    tiny_tensor t[128];
    int n;
} tiny_st;

static inline uint32_t tiny_hash(const char *s, unsigned seed) {
    uint32_t h = 2166136261u ^ seed;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static inline void tiny_add(tiny_st *st, const char *name, int64_t d0, int64_t d1, float center,
                            float spread, unsigned seed) {
    tiny_tensor *t = &st->t[st->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = d1 ? 2 : 1;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->n = (size_t)d0 * (size_t)(d1 ? d1 : 1);
    t->data = malloc(t->n * sizeof(float));
    uint64_t x = tiny_hash(name, seed) | 1u;
    for (size_t i = 0; i < t->n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double u = (double)(x >> 11) / 9007199254740992.0; /* [0, 1) */
        t->data[i] = center + spread * (float)(2.0 * u - 1.0);
    }
}

static inline int tiny_cmp(const void *a, const void *b) {
    return strcmp(((const tiny_tensor *)a)->name, ((const tiny_tensor *)b)->name);
}

static inline int tiny_write_st(tiny_st *st, const char *path) {
    qsort(st->t, (size_t)st->n, sizeof st->t[0], tiny_cmp);
    cJSON *h = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(h, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "pt");
    size_t off = 0;
    for (int i = 0; i < st->n; i++) {
        cJSON *e = cJSON_AddObjectToObject(h, st->t[i].name);
        cJSON_AddStringToObject(e, "dtype", "F32");
        cJSON *shape = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < st->t[i].n_dims; d++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)st->t[i].shape[d]));
        cJSON *offs = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        off += st->t[i].n * 4;
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
    }
    char *js = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    size_t len = strlen(js), padded = (len + 7) / 8 * 8;
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(js);
        return -1;
    }
    uint64_t hl = padded;
    fwrite(&hl, 8, 1, f);
    fwrite(js, 1, len, f);
    for (size_t i = len; i < padded; i++)
        fputc(' ', f);
    for (int i = 0; i < st->n; i++) {
        fwrite(st->t[i].data, 4, st->t[i].n, f);
        free(st->t[i].data);
    }
    free(js);
    return fclose(f);
}

static inline int tiny_copy(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = a ? fopen(to, "wb") : NULL;
    if (!a || !b) {
        if (a)
            fclose(a);
        return -1;
    }
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0)
        fwrite(buf, 1, n, b);
    fclose(a);
    return fclose(b);
}

/* The folder holding the real ModernBERT tokenizer: tests/data first, then
 * ../shared; NULL when neither has it. Static buffer. */
static inline const char *tiny_tokenizer_dir(void) {
    static char buf[4096];
    const char *d = getenv("TPIPE_TESTDATA");
    snprintf(buf, sizeof buf, "%s/tokenizers/modernbert/tokenizer.json", d ? d : "tests/data");
    if (access(buf, R_OK) == 0) {
        buf[strlen(buf) - strlen("/tokenizer.json")] = 0;
        return buf;
    }
    const char *s = getenv("TPIPE_SHARED");
    snprintf(buf, sizeof buf, "%s/tokenizers/modernbert/tokenizer.json", s ? s : "../shared");
    if (access(buf, R_OK) == 0) {
        buf[strlen(buf) - strlen("/tokenizer.json")] = 0;
        return buf;
    }
    return NULL;
}

/* Writes a model folder `dir` (created). Returns 0 on success. */
static inline int tiny_write_model(const char *dir, const tiny_cfg *c) {
    mkdir(dir, 0755);
    const char *tokdir = tiny_tokenizer_dir();
    if (!tokdir)
        return -1;
    char p[4200], q[4200];
    const char *files[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", tokdir, files[i]);
        snprintf(q, sizeof q, "%s/%s", dir, files[i]);
        if (access(p, R_OK) == 0 && tiny_copy(p, q) != 0)
            return -1;
    }
    bool cls = strstr(c->arch, "Classification") != NULL;
    int n_labels = 0;
    while (cls && c->labels && c->labels[n_labels])
        n_labels++;
    /* config.json */
    cJSON *j = cJSON_CreateObject();
    cJSON *archs = cJSON_AddArrayToObject(j, "architectures");
    cJSON_AddItemToArray(archs, cJSON_CreateString(c->arch));
    cJSON_AddStringToObject(j, "model_type", "modernbert");
    cJSON_AddNumberToObject(j, "vocab_size", c->vocab);
    cJSON_AddNumberToObject(j, "hidden_size", c->hidden);
    cJSON_AddNumberToObject(j, "intermediate_size", c->intermediate);
    cJSON_AddNumberToObject(j, "num_hidden_layers", c->layers);
    cJSON_AddNumberToObject(j, "num_attention_heads", c->heads);
    cJSON_AddNumberToObject(j, "max_position_embeddings", 8192);
    cJSON_AddNumberToObject(j, "local_attention", c->local_attention);
    cJSON_AddNumberToObject(j, "global_attn_every_n_layers", c->every_n);
    cJSON_AddNumberToObject(j, "global_rope_theta", 160000.0);
    cJSON_AddNumberToObject(j, "local_rope_theta", 10000.0);
    cJSON_AddNumberToObject(j, "norm_eps", 1e-5);
    cJSON_AddBoolToObject(j, "norm_bias", c->biases);
    cJSON_AddBoolToObject(j, "attention_bias", c->biases);
    cJSON_AddBoolToObject(j, "mlp_bias", c->biases);
    cJSON_AddBoolToObject(j, "classifier_bias", c->biases);
    cJSON_AddBoolToObject(j, "decoder_bias", true);
    cJSON_AddStringToObject(j, "hidden_activation", "gelu");
    cJSON_AddStringToObject(j, "classifier_activation", "gelu");
    cJSON_AddStringToObject(j, "classifier_pooling", c->pooling ? c->pooling : "cls");
    cJSON_AddNumberToObject(j, "cls_token_id", 50281);
    cJSON_AddNumberToObject(j, "sep_token_id", 50282);
    cJSON_AddNumberToObject(j, "pad_token_id", 50283);
    cJSON_AddNumberToObject(j, "bos_token_id", 50281);
    cJSON_AddNumberToObject(j, "eos_token_id", 50282);
    if (c->problem_type)
        cJSON_AddStringToObject(j, "problem_type", c->problem_type);
    if (n_labels) {
        cJSON *i2l = cJSON_AddObjectToObject(j, "id2label");
        cJSON *l2i = cJSON_AddObjectToObject(j, "label2id");
        for (int i = 0; i < n_labels; i++) {
            char k[16];
            snprintf(k, sizeof k, "%d", i);
            cJSON_AddStringToObject(i2l, k, c->labels[i]);
            cJSON_AddNumberToObject(l2i, c->labels[i], i);
        }
    }
    char *js = cJSON_Print(j);
    cJSON_Delete(j);
    snprintf(p, sizeof p, "%s/config.json", dir);
    FILE *f = fopen(p, "wb");
    if (!f) {
        free(js);
        return -1;
    }
    fputs(js, f);
    fclose(f);
    free(js);

    /* model.safetensors */
    static tiny_st st;
    memset(&st, 0, sizeof st);
    const int H = c->hidden, I = c->intermediate;
    const float w = 1.0f / (float)H; /* keeps activations O(1) through the layers */
    char n[96];
    tiny_add(&st, "model.embeddings.tok_embeddings.weight", c->vocab, H, 0.0f, 1.0f, c->seed);
    tiny_add(&st, "model.embeddings.norm.weight", H, 0, 1.0f, 0.1f, c->seed);
    if (c->biases)
        tiny_add(&st, "model.embeddings.norm.bias", H, 0, 0.0f, 0.1f, c->seed);
    for (int l = 0; l < c->layers; l++) {
#define TINY_T(fmt, d0, d1, ce, sp)                                                                \
    do {                                                                                           \
        snprintf(n, sizeof n, fmt, l);                                                             \
        tiny_add(&st, n, d0, d1, ce, sp, c->seed);                                                 \
    } while (0)
        if (l) {
            TINY_T("model.layers.%d.attn_norm.weight", H, 0, 1.0f, 0.1f);
            if (c->biases)
                TINY_T("model.layers.%d.attn_norm.bias", H, 0, 0.0f, 0.1f);
        }
        TINY_T("model.layers.%d.attn.Wqkv.weight", 3 * H, H, 0.0f, 4.0f * w);
        TINY_T("model.layers.%d.attn.Wo.weight", H, H, 0.0f, 2.0f * w);
        TINY_T("model.layers.%d.mlp_norm.weight", H, 0, 1.0f, 0.1f);
        TINY_T("model.layers.%d.mlp.Wi.weight", 2 * I, H, 0.0f, 3.0f * w);
        TINY_T("model.layers.%d.mlp.Wo.weight", H, I, 0.0f, 2.0f * w);
        if (c->biases) {
            TINY_T("model.layers.%d.attn.Wqkv.bias", 3 * H, 0, 0.0f, 0.1f);
            TINY_T("model.layers.%d.attn.Wo.bias", H, 0, 0.0f, 0.1f);
            TINY_T("model.layers.%d.mlp_norm.bias", H, 0, 0.0f, 0.1f);
            TINY_T("model.layers.%d.mlp.Wi.bias", 2 * I, 0, 0.0f, 0.1f);
            TINY_T("model.layers.%d.mlp.Wo.bias", H, 0, 0.0f, 0.1f);
        }
#undef TINY_T
    }
    tiny_add(&st, "model.final_norm.weight", H, 0, 1.0f, 0.1f, c->seed);
    tiny_add(&st, "head.dense.weight", H, H, 0.0f, 3.0f * w, c->seed);
    tiny_add(&st, "head.norm.weight", H, 0, 1.0f, 0.1f, c->seed);
    if (c->biases) {
        tiny_add(&st, "model.final_norm.bias", H, 0, 0.0f, 0.1f, c->seed);
        tiny_add(&st, "head.dense.bias", H, 0, 0.0f, 0.1f, c->seed);
        tiny_add(&st, "head.norm.bias", H, 0, 0.0f, 0.1f, c->seed);
    }
    if (cls) {
        tiny_add(&st, "classifier.weight", n_labels, H, 0.0f, 0.5f, c->seed);
        tiny_add(&st, "classifier.bias", n_labels, 0, 0.0f, 0.3f, c->seed);
    } else {
        tiny_add(&st, "decoder.bias", c->vocab, 0, 0.0f, 0.5f, c->seed);
    }
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    return tiny_write_st(&st, p);
}

/* A fresh temporary folder (static buffer). */
static inline const char *tiny_tmpdir(const char *tag) {
    static char buf[256];
    snprintf(buf, sizeof buf, "/tmp/tpipe-%s-XXXXXX", tag);
    return mkdtemp(buf);
}

/* rm -r of a folder we created (two levels: model folders under a temp root). */
static inline void tiny_rmtree(const char *dir) {
    char cmd[4300];
    if (!dir || strncmp(dir, "/tmp/", 5) != 0 || strstr(dir, ".."))
        return; /* only ever remove our own temp folders */
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", dir);
}

#endif
