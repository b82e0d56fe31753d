/*
 * modernbert.c — ModernBERT (answerdotai/ModernBERT and its finetunes), as
 * Hugging Face transformers' modeling_modernbert.py computes it, over a packed
 * batch (no padding: every row of the activation matrices is a real token).
 *
 * Glossary of dimensions:
 *   T  tokens in the packed micro-batch (all sequences back to back)
 *   S  sequences in the micro-batch
 *   H  hidden_size;   nh heads of hd = H / nh
 *   I  intermediate_size (the GLU output; Wi produces 2I = [input | gate])
 *   V  vocab_size;    L num_labels;   R rows projected on the vocabulary
 *
 * The model:
 *   x = LayerNorm_emb(tok_embeddings[ids])
 *   for each layer l:
 *     h   = l == 0 ? x : LayerNorm_attn(x)          (layer 0 has no attn_norm)
 *     qkv = Wqkv h;  RoPE on q and k (theta: global or local by layer type)
 *     x  += Wo attention(q, k, v)     global layers: every key of the sequence;
 *                                     local layers: keys with |i-j| <= local_attention/2
 *     x  += Wo_mlp (act(in) * gate)   where [in | gate] = Wi LayerNorm_mlp(x)
 *   y = LayerNorm_final(x)
 *   MLM head:  logits = decoder(LayerNorm_head(act(dense(y))))   decoder tied to
 *              tok_embeddings unless decoder.weight is stored; + decoder.bias
 *   classifier: pooled = y[CLS] or mean(y over the sequence);
 *               logits = classifier(LayerNorm_head(act(dense(pooled))))
 * Layer l is global iff l % global_attn_every_n_layers == 0 (or as `layer_types`
 * says when the config has it). Every Linear/LayerNorm bias is optional per the
 * config flags attention_bias, mlp_bias, norm_bias, classifier_bias, decoder_bias.
 *
 * Memory: forward() allocates only from the caller's arena, sized by
 * scratch_bytes() for the micro-batch shape; nothing is malloc'd per layer.
 */
#include "models/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum mb_act {
    MB_ACT_GELU_ERF,
    MB_ACT_GELU_TANH,
    MB_ACT_SILU,
    MB_ACT_RELU,
    MB_ACT_TANH
} mb_act;

typedef struct mb_norm {
    float *w; /* (H) */
    float *b; /* (H) or NULL */
} mb_norm;

typedef struct mb_layer {
    bool has_attn_norm; /* false on layer 0 */
    bool global;
    mb_norm attn_norm;
    tp_linear wqkv; /* (3H, H) */
    tp_linear wo;   /* (H, H) */
    mb_norm mlp_norm;
    tp_linear wi;     /* (2I, H) */
    tp_linear wo_mlp; /* (H, I) */
} mb_layer;

typedef struct mb_model {
    /* config */
    int64_t H, I, V, nh, hd, n_layers;
    float norm_eps;
    int half_window; /* local layers: |i - j| <= half_window */
    mb_act hidden_act;
    mb_act head_act;
    float *inv_freq_global; /* (hd/2) */
    float *inv_freq_local;  /* (hd/2) */
    /* weights */
    const void *tok_emb; /* (V, H) in emb_dtype, in the mmap */
    tp_dtype emb_dtype;
    mb_norm emb_norm;
    mb_layer *layers; /* (n_layers) */
    mb_norm final_norm;
    bool has_head;        /* head.dense + head.norm present (MLM and classifier) */
    tp_linear head_dense; /* (H, H) */
    mb_norm head_norm;
    tp_linear decoder;    /* (V, H): MLM only */
    tp_linear classifier; /* (L, H): classifier only */
    /* owned copies (f32 norms and biases, bf16 weights for bf16 compute): freed at the end */
    void **owned;
    size_t n_owned;
} mb_model;

/* ---------------------------------------------------------------- loading */

static tp_status keep(mb_model *m, void *p, tp_error *err) {
    void **o = tp_realloc_array(m->owned, m->n_owned + 1, sizeof *o);
    if (!o) {
        tp_free(p);
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "modernbert: out of memory");
    }
    m->owned = o;
    m->owned[m->n_owned++] = p;
    return TP_OK;
}

/* Loads an f32 copy of a vector tensor of length n. */
static tp_status load_vec(mb_model *m, const tp_st_model *st, const char *name, int64_t n,
                          float **out, tp_error *err) {
    const tp_st_tensor *t;
    int64_t shape[1] = {n};
    tp_status s = tp_st_get(st, name, 1, shape, &t, err);
    if (s != TP_OK)
        return s;
    float *p = NULL;
    s = tp_st_to_f32(t, &p, err);
    if (s != TP_OK)
        return s;
    *out = p;
    return keep(m, p, err);
}

static tp_status load_norm(mb_model *m, const tp_st_model *st, const char *prefix, bool bias,
                           mb_norm *out, tp_error *err) {
    char name[256];
    snprintf(name, sizeof name, "%s.weight", prefix);
    tp_status s = load_vec(m, st, name, m->H, &out->w, err);
    if (s != TP_OK)
        return s;
    out->b = NULL;
    if (bias) {
        snprintf(name, sizeof name, "%s.bias", prefix);
        s = load_vec(m, st, name, m->H, &out->b, err);
    }
    return s;
}

/* bf16 compute multiplies bf16 activations with bf16 weights: a checkpoint
 * stored in f32 (as ModernBERT-base is) or f16 gets a private bf16 copy of
 * each weight matrix at load (round to nearest even; half the f32 size). */
static tp_status to_bf16_if(mb_model *m, tp_linear *l, tp_compute compute, tp_error *err) {
    if (compute != TP_COMPUTE_BF16 || l->dtype == TP_DTYPE_BF16)
        return TP_OK;
    size_t n = (size_t)l->n_out * (size_t)l->n_in;
    uint16_t *w = tp_malloc_array(n, sizeof *w);
    if (!w)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY,
                       "modernbert: out of memory for a bf16 copy of a (%lld, %lld) weight",
                       (long long)l->n_out, (long long)l->n_in);
    if (l->dtype == TP_DTYPE_F32) {
        const float *src = l->w;
        for (size_t i = 0; i < n; i++)
            w[i] = tp_f32_to_bf16(src[i]);
    } else {
        const uint16_t *src = l->w;
        for (size_t i = 0; i < n; i++)
            w[i] = tp_f32_to_bf16(tp_f16_to_f32(src[i]));
    }
    l->w = w;
    l->dtype = TP_DTYPE_BF16;
    return keep(m, w, err);
}

static tp_status load_linear(mb_model *m, const tp_st_model *st, const char *prefix, int64_t n_out,
                             int64_t n_in, bool bias, tp_compute compute, tp_linear *out,
                             tp_error *err) {
    char name[256];
    snprintf(name, sizeof name, "%s.weight", prefix);
    const tp_st_tensor *t;
    int64_t shape[2] = {n_out, n_in};
    tp_status s = tp_st_get(st, name, 2, shape, &t, err);
    if (s != TP_OK)
        return s;
    memset(out, 0, sizeof *out);
    out->w = t->data;
    out->dtype = t->dtype;
    out->n_out = n_out;
    out->n_in = n_in;
    if ((s = to_bf16_if(m, out, compute, err)) != TP_OK)
        return s;
    if (bias) {
        float *b = NULL;
        snprintf(name, sizeof name, "%s.bias", prefix);
        s = load_vec(m, st, name, n_out, &b, err);
        if (s != TP_OK)
            return s;
        out->bias = b;
    }
    return tp_linear_prepare(out, compute, err);
}

static tp_status parse_act(const tp_json_doc *cfg, const char *key, const char *def, mb_act *out,
                           tp_error *err) {
    const char *s = NULL;
    tp_status st = tp_json_string(cfg, cfg->root, key, def, &s, err);
    if (st != TP_OK)
        return st;
    if (!strcmp(s, "gelu") || !strcmp(s, "gelu_python"))
        *out = MB_ACT_GELU_ERF;
    else if (!strcmp(s, "gelu_new") || !strcmp(s, "gelu_pytorch_tanh") || !strcmp(s, "gelu_fast"))
        *out = MB_ACT_GELU_TANH;
    else if (!strcmp(s, "silu") || !strcmp(s, "swish"))
        *out = MB_ACT_SILU;
    else if (!strcmp(s, "relu"))
        *out = MB_ACT_RELU;
    else if (!strcmp(s, "tanh"))
        *out = MB_ACT_TANH;
    else
        return tp_fail(err, TP_ERR_UNSUPPORTED, "%s: %s \"%s\" is not a supported activation",
                       cfg->path, key, s);
    return TP_OK;
}

static void mb_free(tp_net *net) {
    if (!net)
        return;
    mb_model *m = net->impl;
    if (m) {
        if (m->layers) {
            for (int64_t l = 0; l < m->n_layers; l++) {
                tp_linear_release(&m->layers[l].wqkv);
                tp_linear_release(&m->layers[l].wo);
                tp_linear_release(&m->layers[l].wi);
                tp_linear_release(&m->layers[l].wo_mlp);
            }
            tp_free(m->layers);
        }
        tp_linear_release(&m->head_dense);
        tp_linear_release(&m->decoder);
        tp_linear_release(&m->classifier);
        for (size_t i = 0; i < m->n_owned; i++)
            tp_free(m->owned[i]);
        tp_free(m->owned);
        tp_free(m);
    }
    tp_free(net);
}

static size_t mb_scratch_bytes(const tp_net *net, size_t n_tokens, size_t n_seqs,
                               size_t n_mlm_rows);
static tp_status mb_forward(const tp_net *net, const tp_enc_batch *b, tp_arena *a, tp_pool *pool,
                            tp_error *err);

static const tp_encoder_ops kMbOps = {mb_scratch_bytes, mb_forward};

#define CFG_INT(key, def, dst)                                                                     \
    do {                                                                                           \
        int64_t v_;                                                                                \
        if ((s = tp_json_int(cfg, cfg->root, key, def, &v_, err)) != TP_OK)                        \
            goto fail;                                                                             \
        dst = v_;                                                                                  \
    } while (0)
#define CFG_BOOL(key, def, dst)                                                                    \
    do {                                                                                           \
        if ((s = tp_json_bool(cfg, cfg->root, key, def, &dst, err)) != TP_OK)                      \
            goto fail;                                                                             \
    } while (0)
#define CFG_DBL(key, def, dst)                                                                     \
    do {                                                                                           \
        if ((s = tp_json_double(cfg, cfg->root, key, def, &dst, err)) != TP_OK)                    \
            goto fail;                                                                             \
    } while (0)

static bool has_arch(const tp_json_doc *cfg, const char *name) {
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(cfg->root, "architectures")) {
        if (cJSON_IsString(a) && !strcmp(a->valuestring, name))
            return true;
    }
    return false;
}

static tp_status mb_load(const tp_net_load_args *args, tp_net **out, tp_error *err) {
    const tp_json_doc *cfg = args->config;
    const tp_st_model *st = args->st;
    tp_status s = TP_OK;
    *out = NULL;
    tp_net *net = tp_calloc(1, sizeof *net);
    mb_model *m = tp_calloc(1, sizeof *m);
    if (!net || !m) {
        tp_free(net);
        tp_free(m);
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "modernbert: out of memory");
    }
    net->impl = m;
    net->kind = TP_NET_ENCODER;
    net->enc = &kMbOps;
    net->compute = args->compute;

    int64_t max_pos = 8192, every_n = 3, local_attention = 128;
    double eps = 1e-5, theta_g = 160000.0, theta_l = 10000.0;
    bool norm_bias = false, attn_bias = false, mlp_bias = false, cls_bias = false, dec_bias = true;
    CFG_INT("vocab_size", 50368, m->V);
    CFG_INT("hidden_size", 768, m->H);
    CFG_INT("intermediate_size", 1152, m->I);
    CFG_INT("num_hidden_layers", 22, m->n_layers);
    CFG_INT("num_attention_heads", 12, m->nh);
    CFG_INT("max_position_embeddings", 8192, max_pos);
    CFG_INT("global_attn_every_n_layers", 3, every_n);
    CFG_INT("local_attention", 128, local_attention);
    CFG_DBL("norm_eps", 1e-5, eps);
    CFG_DBL("global_rope_theta", 160000.0, theta_g);
    CFG_DBL("local_rope_theta", 10000.0, theta_l);
    CFG_BOOL("norm_bias", false, norm_bias);
    CFG_BOOL("attention_bias", false, attn_bias);
    CFG_BOOL("mlp_bias", false, mlp_bias);
    CFG_BOOL("classifier_bias", false, cls_bias);
    CFG_BOOL("decoder_bias", true, dec_bias);
    if ((s = parse_act(cfg, "hidden_activation", "gelu", &m->hidden_act, err)) != TP_OK)
        goto fail;
    if ((s = parse_act(cfg, "classifier_activation", "gelu", &m->head_act, err)) != TP_OK)
        goto fail;
    if (m->hidden_act == MB_ACT_RELU || m->hidden_act == MB_ACT_TANH) {
        s = tp_fail(err, TP_ERR_UNSUPPORTED,
                    "%s: hidden_activation relu/tanh in the GLU MLP is not supported", cfg->path);
        goto fail;
    }
    if (m->V <= 0 || m->H <= 0 || m->I <= 0 || m->n_layers <= 0 || m->nh <= 0 ||
        m->H % m->nh != 0 || ((m->H / m->nh) & 1) || every_n <= 0 || max_pos <= 0 ||
        m->V > INT32_MAX || m->H > (1 << 20) || m->I > (1 << 22) || m->n_layers > 1024) {
        s = tp_fail(err, TP_ERR_FORMAT,
                    "%s: inconsistent dimensions (vocab_size %lld, hidden_size %lld, "
                    "intermediate_size %lld, num_hidden_layers %lld, num_attention_heads %lld, "
                    "global_attn_every_n_layers %lld): hidden_size must split into heads of "
                    "even size",
                    cfg->path, (long long)m->V, (long long)m->H, (long long)m->I,
                    (long long)m->n_layers, (long long)m->nh, (long long)every_n);
        goto fail;
    }
    m->hd = m->H / m->nh;
    m->norm_eps = (float)eps;
    m->half_window = local_attention < 0 ? -1 : (int)(local_attention / 2);
    net->vocab_size = m->V;
    net->hidden_size = m->H;
    net->n_layers = m->n_layers;
    net->max_positions = max_pos;

    m->inv_freq_global = tp_malloc_array((size_t)m->hd / 2, sizeof(float));
    m->inv_freq_local = tp_malloc_array((size_t)m->hd / 2, sizeof(float));
    s = keep(m, m->inv_freq_global, err);
    if (s != TP_OK)
        tp_free(m->inv_freq_local);
    else
        s = keep(m, m->inv_freq_local, err);
    if (s != TP_OK || !m->inv_freq_global || !m->inv_freq_local) {
        s = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "modernbert: out of memory");
        goto fail;
    }
    tp_rope_inv_freq(m->inv_freq_global, (int)m->hd, theta_g, 1.0);
    tp_rope_inv_freq(m->inv_freq_local, (int)m->hd, theta_l, 1.0);

    /* Tensor names: "model.<backbone>" in task checkpoints, "<backbone>" in a
     * bare ModernBertModel. */
    const char *pre = tp_st_find(st, "model.embeddings.tok_embeddings.weight") ? "model." : "";
    char name[256];
    snprintf(name, sizeof name, "%sembeddings.tok_embeddings.weight", pre);
    const tp_st_tensor *emb;
    int64_t emb_shape[2] = {m->V, m->H};
    if ((s = tp_st_get(st, name, 2, emb_shape, &emb, err)) != TP_OK)
        goto fail;
    m->tok_emb = emb->data;
    m->emb_dtype = emb->dtype;
    snprintf(name, sizeof name, "%sembeddings.norm", pre);
    if ((s = load_norm(m, st, name, norm_bias, &m->emb_norm, err)) != TP_OK)
        goto fail;

    /* Layer types: explicit `layer_types` (newer configs) or the modulo rule. */
    const cJSON *layer_types = cJSON_GetObjectItemCaseSensitive(cfg->root, "layer_types");
    if (layer_types && !cJSON_IsNull(layer_types) &&
        (!cJSON_IsArray(layer_types) || cJSON_GetArraySize(layer_types) != (int)m->n_layers)) {
        s = tp_fail(err, TP_ERR_FORMAT,
                    "%s: layer_types must be a list of num_hidden_layers (%lld) strings", cfg->path,
                    (long long)m->n_layers);
        goto fail;
    }
    m->layers = tp_calloc((size_t)m->n_layers, sizeof *m->layers);
    if (!m->layers) {
        s = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "modernbert: out of memory");
        goto fail;
    }
    for (int64_t l = 0; l < m->n_layers; l++) {
        mb_layer *L = &m->layers[l];
        L->global = l % every_n == 0;
        if (cJSON_IsArray(layer_types)) {
            const cJSON *t = cJSON_GetArrayItem(layer_types, (int)l);
            if (!cJSON_IsString(t) || (strcmp(t->valuestring, "full_attention") &&
                                       strcmp(t->valuestring, "sliding_attention"))) {
                s = tp_fail(err, TP_ERR_FORMAT,
                            "%s: layer_types[%lld] must be \"full_attention\" or "
                            "\"sliding_attention\"",
                            cfg->path, (long long)l);
                goto fail;
            }
            L->global = !strcmp(t->valuestring, "full_attention");
        }
        char p[128];
        L->has_attn_norm = l != 0;
        if (L->has_attn_norm) {
            snprintf(p, sizeof p, "%slayers.%lld.attn_norm", pre, (long long)l);
            if ((s = load_norm(m, st, p, norm_bias, &L->attn_norm, err)) != TP_OK)
                goto fail;
        }
        snprintf(p, sizeof p, "%slayers.%lld.attn.Wqkv", pre, (long long)l);
        if ((s = load_linear(m, st, p, 3 * m->H, m->H, attn_bias, net->compute, &L->wqkv, err)) !=
            TP_OK)
            goto fail;
        snprintf(p, sizeof p, "%slayers.%lld.attn.Wo", pre, (long long)l);
        if ((s = load_linear(m, st, p, m->H, m->H, attn_bias, net->compute, &L->wo, err)) != TP_OK)
            goto fail;
        snprintf(p, sizeof p, "%slayers.%lld.mlp_norm", pre, (long long)l);
        if ((s = load_norm(m, st, p, norm_bias, &L->mlp_norm, err)) != TP_OK)
            goto fail;
        snprintf(p, sizeof p, "%slayers.%lld.mlp.Wi", pre, (long long)l);
        if ((s = load_linear(m, st, p, 2 * m->I, m->H, mlp_bias, net->compute, &L->wi, err)) !=
            TP_OK)
            goto fail;
        snprintf(p, sizeof p, "%slayers.%lld.mlp.Wo", pre, (long long)l);
        if ((s = load_linear(m, st, p, m->H, m->I, mlp_bias, net->compute, &L->wo_mlp, err)) !=
            TP_OK)
            goto fail;
    }
    snprintf(name, sizeof name, "%sfinal_norm", pre);
    if ((s = load_norm(m, st, name, norm_bias, &m->final_norm, err)) != TP_OK)
        goto fail;

    /* Head: classifier if classifier.weight is there (or the architecture says
     * so), masked LM if head.dense is there, else the bare backbone. */
    bool want_cls = has_arch(cfg, "ModernBertForSequenceClassification");
    bool want_mlm = has_arch(cfg, "ModernBertForMaskedLM");
    const tp_st_tensor *cls_w = tp_st_find(st, "classifier.weight");
    if (cls_w || want_cls) {
        net->head = TP_ENC_HEAD_CLASSIFY;
    } else if (tp_st_find(st, "head.dense.weight") || want_mlm) {
        net->head = TP_ENC_HEAD_MLM;
    } else {
        net->head = TP_ENC_HEAD_NONE;
    }
    if (net->head != TP_ENC_HEAD_NONE) {
        m->has_head = true;
        if ((s = load_linear(m, st, "head.dense", m->H, m->H, cls_bias, net->compute,
                             &m->head_dense, err)) != TP_OK)
            goto fail;
        if ((s = load_norm(m, st, "head.norm", norm_bias, &m->head_norm, err)) != TP_OK)
            goto fail;
    }
    if (net->head == TP_ENC_HEAD_CLASSIFY) {
        if (!cls_w) {
            s = tp_fail(err, TP_ERR_FORMAT, "%s: tensor 'classifier.weight' not found",
                        args->dir ? args->dir : "model");
            goto fail;
        }
        if (cls_w->n_dims != 2 || cls_w->shape[0] <= 0 || cls_w->shape[0] > 1000000) {
            s = tp_fail(err, TP_ERR_FORMAT,
                        "%s: tensor 'classifier.weight' must be (num_labels, %lld)", cls_w->file,
                        (long long)m->H);
            goto fail;
        }
        net->num_labels = cls_w->shape[0];
        /* transformers' ModernBertForSequenceClassification: Linear(H, L) with bias. */
        if ((s = load_linear(m, st, "classifier", net->num_labels, m->H, true, net->compute,
                             &m->classifier, err)) != TP_OK)
            goto fail;
        const char *pool = NULL;
        if ((s = tp_json_string(cfg, cfg->root, "classifier_pooling", "cls", &pool, err)) != TP_OK)
            goto fail;
        if (!strcmp(pool, "cls")) {
            net->pooling = TP_POOL_CLS;
        } else if (!strcmp(pool, "mean")) {
            net->pooling = TP_POOL_MEAN;
        } else {
            s = tp_fail(err, TP_ERR_UNSUPPORTED,
                        "%s: classifier_pooling \"%s\" is not supported (cls or mean)", cfg->path,
                        pool);
            goto fail;
        }
    } else if (net->head == TP_ENC_HEAD_MLM) {
        const tp_st_tensor *dw = tp_st_find(st, "decoder.weight");
        if (dw) {
            if ((s = load_linear(m, st, "decoder", m->V, m->H, dec_bias, net->compute, &m->decoder,
                                 err)) != TP_OK)
                goto fail;
        } else {
            /* Tied to the input embeddings (transformers does not store it). */
            memset(&m->decoder, 0, sizeof m->decoder);
            m->decoder.w = m->tok_emb;
            m->decoder.dtype = m->emb_dtype;
            m->decoder.n_out = m->V;
            m->decoder.n_in = m->H;
            if ((s = to_bf16_if(m, &m->decoder, net->compute, err)) != TP_OK)
                goto fail;
            if (dec_bias) {
                float *b = NULL;
                if ((s = load_vec(m, st, "decoder.bias", m->V, &b, err)) != TP_OK)
                    goto fail;
                m->decoder.bias = b;
            }
            if ((s = tp_linear_prepare(&m->decoder, net->compute, err)) != TP_OK)
                goto fail;
        }
    }

    /* Scratch per packed token (see mb_scratch_bytes): x, h, qkv, att, wi, g. */
    net->act_bytes_per_token =
        (size_t)(6 * m->H + 3 * m->I) * sizeof(float) + sizeof(int32_t) + 6 * TP_ALIGN / 8;
    *out = net;
    return TP_OK;
fail:
    mb_free(net);
    return s;
}

/* ---------------------------------------------------------------- forward */

/* Bytes for n floats rounded up to the arena's alignment (0 on overflow). */
static size_t fbytes(size_t n, size_t elem) {
    size_t b, r;
    if (!tp_mul_size(n, elem, &b) || !tp_align_up(b, TP_ALIGN, &r))
        return 0;
    return r ? r : TP_ALIGN;
}

static size_t mb_scratch_bytes(const tp_net *net, size_t T, size_t S, size_t R) {
    const mb_model *m = net->impl;
    size_t H = (size_t)m->H, I = (size_t)m->I;
    size_t parts[] = {
        fbytes(T, H * sizeof(float)),     /* x   */
        fbytes(T, H * sizeof(float)),     /* h   */
        fbytes(T, 3 * H * sizeof(float)), /* qkv */
        fbytes(T, H * sizeof(float)),     /* att */
        fbytes(T, 2 * I * sizeof(float)), /* wi  */
        fbytes(T, I * sizeof(float)),     /* g   */
        fbytes(T, sizeof(int32_t)),       /* pos */
        fbytes(S, sizeof(tp_attn_seq)),
        fbytes(S, 2 * sizeof(float *)),
        fbytes(R > S ? R : S, 3 * H * sizeof(float)), /* head rows: in, dense, (spare) */
        /* last layer on the needed rows only: x, attention out, sublayer out, wi, g */
        fbytes(R > S ? R : S, (3 * H + 3 * I) * sizeof(float)),
        fbytes(R > S ? R : S, sizeof(tp_attn_seq) + sizeof(int32_t)),
    };
    size_t total = 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        if (!parts[i] || !tp_add_size(total, parts[i], &total))
            return 0;
    }
    return total;
}

static void apply_act(mb_act act, float *x, size_t n) {
    switch (act) {
    case MB_ACT_GELU_ERF:
        tp_gelu_erf(x, x, n);
        break;
    case MB_ACT_GELU_TANH:
        tp_gelu_tanh(x, x, n);
        break;
    case MB_ACT_SILU:
        tp_silu(x, x, n);
        break;
    case MB_ACT_RELU:
        for (size_t i = 0; i < n; i++)
            x[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    case MB_ACT_TANH:
        for (size_t i = 0; i < n; i++)
            x[i] = tanhf(x[i]);
        break;
    }
}

static tp_act glu_act(mb_act a) {
    return a == MB_ACT_GELU_TANH ? TP_ACT_GELU_TANH
           : a == MB_ACT_SILU    ? TP_ACT_SILU
                                 : TP_ACT_GELU_ERF;
}

static void layernorm(const mb_model *m, const mb_norm *n, const float *x, float *out,
                      size_t rows) {
    tp_layernorm(x, n->w, n->b, out, rows, (size_t)m->H, m->norm_eps);
}

/* LayerNorm of the layer loop, split over the pool in whole rows (tensor.h). */
static void par_layernorm(const mb_model *m, tp_pool *pool, const mb_norm *n, const float *x,
                          float *out, size_t rows) {
    tp_layernorm_par(pool, x, n->w, n->b, out, rows, (size_t)m->H, m->norm_eps);
}

/* head: rows (n, H) in place -> LayerNorm_head(act(dense(rows))), via tmp (n, H). */
static void run_head(const mb_model *m, tp_pool *pool, float *rows, float *tmp, size_t n,
                     tp_compute compute) {
    size_t H = (size_t)m->H;
    tp_matmul(pool, &m->head_dense, rows, H, tmp, H, n, compute);
    apply_act(m->head_act, tmp, n * H);
    layernorm(m, &m->head_norm, tmp, rows, n);
}

/* The last layer for the K rows sel[] only (see `prune` in mb_forward): qkv
 * and RoPE are already computed for every row; xs gets the layer's output
 * rows, (K, H). */
static void last_layer_rows(const mb_model *m, const mb_layer *L, const tp_enc_batch *b,
                            tp_pool *pool, const tp_attn_params *ap, const float *qkv,
                            const float *x, const int32_t *pos, const float **kv,
                            tp_attn_seq *seqs_s, int32_t *sel, size_t K, float *xs, float *att_s,
                            float *h_s, float *wi_s, float *g_s, tp_compute compute) {
    const size_t H = (size_t)m->H, I = (size_t)m->I, S = b->n_seqs;
    if (K == 0)
        return;
    for (size_t j = 0; j < K; j++) {
        int32_t row;
        size_t s;
        if (b->mlm_logits && b->n_mlm_rows) {
            row = b->mlm_rows[j];
            size_t lo = 0, hi = S; /* the sequence holding row: cu[s] <= row < cu[s+1] */
            while (hi - lo > 1) {
                size_t mid = (lo + hi) / 2;
                if (b->cu_seqlens[mid] <= row)
                    lo = mid;
                else
                    hi = mid;
            }
            s = lo;
        } else {
            s = j;
            row = b->cu_seqlens[s];
        }
        sel[j] = row;
        int32_t len = b->cu_seqlens[s + 1] - b->cu_seqlens[s];
        tp_attn_seq *q = &seqs_s[j];
        q->q = qkv + (size_t)row * 3 * H;
        q->q_ld = 3 * H;
        q->out = att_s + j * H;
        q->out_ld = H;
        q->n_q = 1;
        q->q_pos0 = pos[row];
        q->kv_len = len;
        q->k_blocks = &kv[2 * s];
        q->v_blocks = &kv[2 * s + 1];
        q->block_size = len;
        q->kv_ld = 3 * H;
    }
    tp_attention(pool, seqs_s, K, ap);
    tp_matmul(pool, &L->wo, att_s, H, h_s, H, K, compute);
    for (size_t j = 0; j < K; j++)
        memcpy(xs + j * H, x + (size_t)sel[j] * H, H * sizeof(float));
    tp_add(xs, h_s, K * H);
    layernorm(m, &L->mlp_norm, xs, h_s, K);
    tp_matmul(pool, &L->wi, h_s, H, wi_s, 2 * I, K, compute);
    tp_glu(wi_s, g_s, K, I, glu_act(m->hidden_act));
    tp_matmul(pool, &L->wo_mlp, g_s, I, h_s, H, K, compute);
    tp_add(xs, h_s, K * H);
}

static tp_status mb_forward(const tp_net *net, const tp_enc_batch *b, tp_arena *a, tp_pool *pool,
                            tp_error *err) {
    const mb_model *m = net->impl;
    const size_t T = b->n_tokens, S = b->n_seqs, H = (size_t)m->H, I = (size_t)m->I;
    const size_t R = b->mlm_logits ? b->n_mlm_rows : 0;
    const tp_compute compute = net->compute;

    /* ---- validate the batch (cheap, before touching the arena) ---- */
    if (!b->ids || !b->cu_seqlens || S == 0 || T == 0 || b->cu_seqlens[0] != 0 ||
        (size_t)b->cu_seqlens[S] != T)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT,
                       "modernbert: malformed packed batch (%zu sequences, %zu tokens)", S, T);
    for (size_t s = 0; s < S; s++) {
        int32_t len = b->cu_seqlens[s + 1] - b->cu_seqlens[s];
        if (len <= 0)
            return tp_fail_item(err, TP_ERR_INVALID_ARGUMENT, (long)s,
                                "modernbert: sequence %zu is empty", s);
        if (len > net->max_positions)
            return tp_fail_item(err, TP_ERR_TOO_LONG, (long)s,
                                "modernbert: sequence %zu has %d tokens, more than "
                                "max_position_embeddings (%lld)",
                                s, (int)len, (long long)net->max_positions);
    }
    for (size_t t = 0; t < T; t++) {
        if (b->ids[t] < 0 || b->ids[t] >= m->V)
            return tp_fail(err, TP_ERR_INVALID_ARGUMENT,
                           "modernbert: token id %d at row %zu is outside the vocabulary (%lld)",
                           (int)b->ids[t], t, (long long)m->V);
    }
    for (size_t r = 0; r < R; r++) {
        if (b->mlm_rows[r] < 0 || (size_t)b->mlm_rows[r] >= T)
            return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "modernbert: MLM row %d out of range",
                           (int)b->mlm_rows[r]);
    }
    if (b->mlm_logits && net->head != TP_ENC_HEAD_MLM)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT,
                       "modernbert: this model has no masked-LM head");
    if (b->cls_logits && net->head != TP_ENC_HEAD_CLASSIFY)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT,
                       "modernbert: this model has no sequence-classification head");

    /* ---- carve the scratch (sizes as in mb_scratch_bytes) ---- */
    tp_arena_reset(a);
    float *x = tp_arena_alloc(a, T, H * sizeof(float)); /* (T, H) residual stream */
    float *h = tp_arena_alloc(a, T, H * sizeof(float)); /* (T, H) normed input / sublayer out */
    float *qkv = tp_arena_alloc(a, T, 3 * H * sizeof(float)); /* (T, 3H) [q | k | v] */
    float *att = tp_arena_alloc(a, T, H * sizeof(float));     /* (T, H) attention output */
    float *wi = tp_arena_alloc(a, T, 2 * I * sizeof(float));  /* (T, 2I) [input | gate] */
    float *g = tp_arena_alloc(a, T, I * sizeof(float));       /* (T, I) act(input) * gate */
    int32_t *pos = tp_arena_alloc(a, T, sizeof(int32_t));     /* (T) position in its sequence */
    tp_attn_seq *seqs = tp_arena_alloc(a, S, sizeof(tp_attn_seq));
    const float **kv = tp_arena_alloc(a, S, 2 * sizeof(float *)); /* (S, [k block, v block]) */
    size_t HR = R > S ? R : S;
    float *head = tp_arena_alloc(a, HR, 3 * H * sizeof(float)); /* (HR, H) rows + (HR, H) tmp */
    /* The last layer only has to produce the rows the heads read (the mask rows,
     * or each sequence's CLS row), unless mean pooling or the hidden states need
     * every row: its keys and values still come from every row, but its
     * queries, Wo and MLP run on those K rows only. Per-row results do not
     * depend on which other rows are computed (batch-invariant kernels). */
    const bool prune = !b->hidden && !(b->cls_logits && net->pooling == TP_POOL_MEAN);
    const size_t K = R ? R : b->cls_logits ? S : 0;
    float *xs = tp_arena_alloc(a, HR, (3 * H + 3 * I) * sizeof(float)); /* (K, H) rows of x */
    float *att_s = xs + HR * H;                                         /* (K, H)  */
    float *h_s = att_s + HR * H;                                        /* (K, H)  */
    float *wi_s = h_s + HR * H;                                         /* (K, 2I) */
    float *g_s = wi_s + HR * 2 * I;                                     /* (K, I)  */
    tp_attn_seq *seqs_s = tp_arena_alloc(a, HR, sizeof(tp_attn_seq) + sizeof(int32_t));
    int32_t *sel = seqs_s ? (int32_t *)(seqs_s + HR) : NULL; /* (K) packed row of each */
    if (!x || !h || !qkv || !att || !wi || !g || !pos || !seqs || !kv || !head || !xs || !seqs_s)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY,
                       "modernbert: scratch arena too small for %zu tokens / %zu sequences", T, S);

    for (size_t s = 0; s < S; s++) {
        int32_t c0 = b->cu_seqlens[s], len = b->cu_seqlens[s + 1] - c0;
        for (int32_t i = 0; i < len; i++)
            pos[c0 + i] = i;
        kv[2 * s] = qkv + (size_t)c0 * 3 * H + H;
        kv[2 * s + 1] = qkv + (size_t)c0 * 3 * H + 2 * H;
        tp_attn_seq *q = &seqs[s];
        q->q = qkv + (size_t)c0 * 3 * H;
        q->q_ld = 3 * H;
        q->out = att + (size_t)c0 * H;
        q->out_ld = H;
        q->n_q = len;
        q->q_pos0 = 0;
        q->kv_len = len;
        q->k_blocks = &kv[2 * s];
        q->v_blocks = &kv[2 * s + 1];
        q->block_size = len;
        q->kv_ld = 3 * H;
    }

    /* ---- embeddings ---- */
    tp_embed(m->tok_emb, m->emb_dtype, b->ids, T, H, 1.0f, x);
    layernorm(m, &m->emb_norm, x, x, T);

    /* ---- layers ---- */
    tp_attn_params ap = {
        .n_heads = (int)m->nh,
        .n_kv_heads = (int)m->nh,
        .head_dim = (int)m->hd,
        .scale = (float)(1.0 / sqrt((double)m->hd)),
        .causal = false,
        .softcap = 0.0f,
    };
    for (int64_t l = 0; l < m->n_layers; l++) {
        const mb_layer *L = &m->layers[l];
        const float *ain = x;
        if (L->has_attn_norm) {
            par_layernorm(m, pool, &L->attn_norm, x, h, T);
            ain = h;
        }
        tp_matmul(pool, &L->wqkv, ain, H, qkv, 3 * H, T, compute);
        const float *inv_freq = L->global ? m->inv_freq_global : m->inv_freq_local;
        tp_rope_par(pool, qkv, 3 * H, T, (int)m->nh, (int)m->hd, pos, inv_freq);     /* q */
        tp_rope_par(pool, qkv + H, 3 * H, T, (int)m->nh, (int)m->hd, pos, inv_freq); /* k */
        ap.window_left = L->global ? -1 : m->half_window;
        ap.window_right = L->global ? -1 : m->half_window;
        if (prune && l == m->n_layers - 1) {
            last_layer_rows(m, L, b, pool, &ap, qkv, x, pos, kv, seqs_s, sel, K, xs, att_s, h_s,
                            wi_s, g_s, compute);
            break;
        }
        tp_attention(pool, seqs, S, &ap);
        tp_matmul(pool, &L->wo, att, H, h, H, T, compute);
        tp_add_rows_par(pool, x, h, T, H);

        par_layernorm(m, pool, &L->mlp_norm, x, h, T);
        tp_matmul(pool, &L->wi, h, H, wi, 2 * I, T, compute);
        tp_glu_par(pool, wi, g, T, I, glu_act(m->hidden_act));
        tp_matmul(pool, &L->wo_mlp, g, I, h, H, T, compute);
        tp_add_rows_par(pool, x, h, T, H);
    }

    /* ---- final norm and heads ---- */
    if (b->hidden)
        layernorm(m, &m->final_norm, x, b->hidden, T);
    float *rows = head, *tmp = head + HR * H;
    if (R) {
        for (size_t r = 0; r < R; r++)
            layernorm(m, &m->final_norm, prune ? xs + r * H : x + (size_t)b->mlm_rows[r] * H,
                      rows + r * H, 1);
        run_head(m, pool, rows, tmp, R, compute);
        tp_matmul(pool, &m->decoder, rows, H, b->mlm_logits, (size_t)m->V, R, compute);
    }
    if (b->cls_logits) {
        if (net->pooling == TP_POOL_CLS) {
            for (size_t s = 0; s < S; s++)
                layernorm(m, &m->final_norm, prune ? xs + s * H : x + (size_t)b->cu_seqlens[s] * H,
                          rows + s * H, 1);
        } else {
            /* Mean over the sequence's rows of the final hidden states; summed in
             * double in row order, so the result does not depend on the batch. */
            layernorm(m, &m->final_norm, x, h, T);
            for (size_t s = 0; s < S; s++) {
                int32_t c0 = b->cu_seqlens[s], len = b->cu_seqlens[s + 1] - c0;
                for (size_t j = 0; j < H; j++) {
                    double acc = 0.0;
                    for (int32_t i = 0; i < len; i++)
                        acc += h[(size_t)(c0 + i) * H + j];
                    rows[s * H + j] = (float)(acc / len);
                }
            }
        }
        run_head(m, pool, rows, tmp, S, compute);
        tp_matmul(pool, &m->classifier, rows, H, b->cls_logits, (size_t)net->num_labels, S,
                  compute);
    }
    return TP_OK;
}

static const char *const kMbTypes[] = {"modernbert", NULL};
static const char *const kMbArchs[] = {"ModernBertModel", "ModernBertForMaskedLM",
                                       "ModernBertForSequenceClassification", NULL};

const tp_family tp_family_modernbert = {
    .name = "modernbert",
    .model_types = kMbTypes,
    .architectures = kMbArchs,
    .load = mb_load,
    .free = mb_free,
};
