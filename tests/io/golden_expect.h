/*
 * golden_expect.h — the tensors a Hugging Face checkpoint of each family must
 * hold, derived from its config.json dimensions and the transformers naming
 * (ModernBERT, Qwen3, Gemma3). Written for the tests independently of the
 * loader and of tp_mkmodel, so both can be checked against it.
 */
#ifndef TP_GOLDEN_EXPECT_H
#define TP_GOLDEN_EXPECT_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct exp_tensor {
    char name[128];
    int n_dims;
    int64_t shape[2];
} exp_tensor;

typedef struct exp_list {
    exp_tensor t[512];
    int n;
} exp_list;

static inline void add1(exp_list *l, const char *name, int64_t a) {
    exp_tensor *e = &l->t[l->n++];
    snprintf(e->name, sizeof e->name, "%s", name);
    e->n_dims = 1;
    e->shape[0] = a;
}
static inline void add2(exp_list *l, const char *name, int64_t a, int64_t b) {
    exp_tensor *e = &l->t[l->n++];
    snprintf(e->name, sizeof e->name, "%s", name);
    e->n_dims = 2;
    e->shape[0] = a;
    e->shape[1] = b;
}

static inline int64_t cfg_int(const cJSON *c, const char *k, int64_t def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, k);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : def;
}
static inline int cfg_bool(const cJSON *c, const char *k, int def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, k);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

static inline void expect_modernbert(const cJSON *c, const char *arch, exp_list *l) {
    int64_t H = cfg_int(c, "hidden_size", 0), I = cfg_int(c, "intermediate_size", 0);
    int64_t L = cfg_int(c, "num_hidden_layers", 0), V = cfg_int(c, "vocab_size", 0);
    int nb = cfg_bool(c, "norm_bias", 0), ab = cfg_bool(c, "attention_bias", 0);
    int mb = cfg_bool(c, "mlp_bias", 0), cb = cfg_bool(c, "classifier_bias", 0);
    char n[128];
#define NORM(prefix)                                                                               \
    do {                                                                                           \
        snprintf(n, sizeof n, "%s.weight", prefix);                                                \
        add1(l, n, H);                                                                             \
        if (nb) {                                                                                  \
            snprintf(n, sizeof n, "%s.bias", prefix);                                              \
            add1(l, n, H);                                                                         \
        }                                                                                          \
    } while (0)
    add2(l, "model.embeddings.tok_embeddings.weight", V, H);
    NORM("model.embeddings.norm");
    for (int64_t i = 0; i < L; i++) {
        char p[96];
        if (i > 0) { /* layer 0 uses the embedding norm: no attn_norm */
            snprintf(p, sizeof p, "model.layers.%lld.attn_norm", (long long)i);
            NORM(p);
        }
        snprintf(p, sizeof p, "model.layers.%lld.mlp_norm", (long long)i);
        NORM(p);
        snprintf(n, sizeof n, "model.layers.%lld.attn.Wqkv.weight", (long long)i);
        add2(l, n, 3 * H, H);
        snprintf(n, sizeof n, "model.layers.%lld.attn.Wo.weight", (long long)i);
        add2(l, n, H, H);
        snprintf(n, sizeof n, "model.layers.%lld.mlp.Wi.weight", (long long)i);
        add2(l, n, 2 * I, H);
        snprintf(n, sizeof n, "model.layers.%lld.mlp.Wo.weight", (long long)i);
        add2(l, n, H, I);
        if (ab) {
            snprintf(n, sizeof n, "model.layers.%lld.attn.Wqkv.bias", (long long)i);
            add1(l, n, 3 * H);
            snprintf(n, sizeof n, "model.layers.%lld.attn.Wo.bias", (long long)i);
            add1(l, n, H);
        }
        if (mb) {
            snprintf(n, sizeof n, "model.layers.%lld.mlp.Wi.bias", (long long)i);
            add1(l, n, 2 * I);
            snprintf(n, sizeof n, "model.layers.%lld.mlp.Wo.bias", (long long)i);
            add1(l, n, H);
        }
    }
    NORM("model.final_norm");
    add2(l, "head.dense.weight", H, H);
    if (cb)
        add1(l, "head.dense.bias", H);
    NORM("head.norm");
#undef NORM
    if (strcmp(arch, "ModernBertForMaskedLM") == 0) {
        if (cfg_bool(c, "decoder_bias", 1))
            add1(l, "decoder.bias", V);
    } else {
        int64_t C = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(c, "id2label"));
        add2(l, "classifier.weight", C, H);
        add1(l, "classifier.bias", C);
    }
}

static inline void expect_decoder(const cJSON *c, int gemma, exp_list *l) {
    int64_t H = cfg_int(c, "hidden_size", 0), I = cfg_int(c, "intermediate_size", 0);
    int64_t L = cfg_int(c, "num_hidden_layers", 0), V = cfg_int(c, "vocab_size", 0);
    int64_t nh = cfg_int(c, "num_attention_heads", 0), nkv = cfg_int(c, "num_key_value_heads", 0);
    int64_t hd = cfg_int(c, "head_dim", H / nh);
    char n[128];
    add2(l, "model.embed_tokens.weight", V, H);
    add1(l, "model.norm.weight", H);
    for (int64_t i = 0; i < L; i++) {
        long long li = (long long)i;
        snprintf(n, sizeof n, "model.layers.%lld.input_layernorm.weight", li);
        add1(l, n, H);
        snprintf(n, sizeof n, "model.layers.%lld.post_attention_layernorm.weight", li);
        add1(l, n, H);
        if (gemma) {
            snprintf(n, sizeof n, "model.layers.%lld.pre_feedforward_layernorm.weight", li);
            add1(l, n, H);
            snprintf(n, sizeof n, "model.layers.%lld.post_feedforward_layernorm.weight", li);
            add1(l, n, H);
        }
        snprintf(n, sizeof n, "model.layers.%lld.self_attn.q_proj.weight", li);
        add2(l, n, nh * hd, H);
        snprintf(n, sizeof n, "model.layers.%lld.self_attn.k_proj.weight", li);
        add2(l, n, nkv * hd, H);
        snprintf(n, sizeof n, "model.layers.%lld.self_attn.v_proj.weight", li);
        add2(l, n, nkv * hd, H);
        snprintf(n, sizeof n, "model.layers.%lld.self_attn.o_proj.weight", li);
        add2(l, n, H, nh * hd);
        snprintf(n, sizeof n, "model.layers.%lld.self_attn.q_norm.weight", li);
        add1(l, n, hd);
        snprintf(n, sizeof n, "model.layers.%lld.self_attn.k_norm.weight", li);
        add1(l, n, hd);
        snprintf(n, sizeof n, "model.layers.%lld.mlp.gate_proj.weight", li);
        add2(l, n, I, H);
        snprintf(n, sizeof n, "model.layers.%lld.mlp.up_proj.weight", li);
        add2(l, n, I, H);
        snprintf(n, sizeof n, "model.layers.%lld.mlp.down_proj.weight", li);
        add2(l, n, H, I);
    }
    /* Gemma3 ties by default, Qwen3 does not */
    if (!cfg_bool(c, "tie_word_embeddings", gemma))
        add2(l, "lm_head.weight", V, H);
}

/* Fills l from a parsed config.json; returns 0 on an unknown architecture. */
static inline int expect_tensors(const cJSON *c, exp_list *l) {
    l->n = 0;
    const cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(c, "architectures"), 0);
    if (!cJSON_IsString(a))
        return 0;
    if (strncmp(a->valuestring, "ModernBert", 10) == 0)
        expect_modernbert(c, a->valuestring, l);
    else if (strncmp(a->valuestring, "Qwen3", 5) == 0)
        expect_decoder(c, 0, l);
    else if (strncmp(a->valuestring, "Gemma3", 6) == 0)
        expect_decoder(c, 1, l);
    else
        return 0;
    return 1;
}

static inline int64_t exp_elems(const exp_tensor *t) {
    int64_t n = 1;
    for (int d = 0; d < t->n_dims; d++)
        n *= t->shape[d];
    return n;
}

static const char *const golden_cases[] = {
    "modernbert_mlm",    "modernbert_seqcls_mean",     "modernbert_seqcls_cls_bias", "qwen3_tied",
    "qwen3_untied_bf16", "gemma3_pattern_linear_rope", "gemma3_layer_types_softcap",
};

#endif
