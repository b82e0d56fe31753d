/*
 * decoder.c — weights and packed forward of the decoder-only core shared by
 * Qwen3 and Gemma3 (see decoder.h for the model and the glossary).
 *
 * Per layer, for the T rows of a step (x is the residual stream):
 *   h   = norm(x)                                  input_layernorm
 *   q,k,v = h Wq^T, h Wk^T, h Wv^T                 one GEMM each over all rows
 *   q,k = per-head RMSNorm (q_norm, k_norm), RoPE at each row's position
 *   k,v -> the sequence's KV blocks at positions pos0..pos0+n_new-1
 *   a   = attention per sequence over its blocks (causal, window on sliding layers)
 *   o   = a Wo^T ; Gemma3: o = norm(o) (post_attention_layernorm) ; x += o
 *   h   = norm(x)           Qwen3: post_attention_layernorm, Gemma3: pre_feedforward_layernorm
 *   m   = down(act(h Wgate^T) * (h Wup^T)) ; Gemma3: m = norm(m) (post_feedforward) ; x += m
 * then the final norm and the LM head only at the rows whose logits are wanted.
 *
 * Weights are used in the checkpoint's dtype straight from the mmap (BF16 in
 * place, GGUF's Q8_0/Q4_K/Q6_K blocks too); norm weights and biases are small
 * f32 copies.
 */
#include "models/decoder.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct dec_layer {
    float *attn_norm;         /* (D) input_layernorm */
    tp_linear wq;             /* (H*Dh, D)   */
    tp_linear wk;             /* (Hkv*Dh, D) */
    tp_linear wv;             /* (Hkv*Dh, D) */
    tp_linear wo;             /* (D, H*Dh)   */
    float *q_norm;            /* (Dh) */
    float *k_norm;            /* (Dh) */
    float *post_attn_norm;    /* (D) Qwen3: pre-MLP norm; Gemma3: norm of the attention output */
    float *pre_ff_norm;       /* (D) Gemma3 only */
    float *post_ff_norm;      /* (D) Gemma3 only */
    tp_linear w_gate;         /* (F, D) */
    tp_linear w_up;           /* (F, D) */
    tp_linear w_gate_up;      /* (2F, D) [gate; up] when the checkpoint stores up_proj
                                 right after gate_proj (one GEMM instead of two), else
                                 w = NULL */
    tp_linear w_down;         /* (D, F) */
    float *bq, *bk, *bv, *bo; /* biases when attention_bias (else NULL) */
    const float *inv_freq;    /* (Dh/2) RoPE frequencies of this layer */
} dec_layer;

typedef struct tp_decoder {
    tp_dec_hparams hp;
    const tp_st_tensor *embed; /* (V, D) */
    tp_linear lm_head;         /* (V, D), the embedding when tied */
    float *final_norm;         /* (D) */
    dec_layer *layers;         /* (L) */
    float *inv_freq_full;      /* (Dh/2) */
    float *inv_freq_local;     /* (Dh/2) */
    tp_net net;
} tp_decoder;

static tp_decoder *dec_of(const tp_net *net) {
    return (tp_decoder *)net->impl;
}

const tp_dec_hparams *tp_decoder_hparams(const tp_net *net) {
    if (!net || net->kind != TP_NET_DECODER || !net->impl)
        return NULL;
    return &dec_of(net)->hp;
}

/* ---------------------------------------------------------------- config helpers */

tp_status tp_dec_read_rope_scaling(const tp_json_doc *doc, const cJSON *obj, double *scale,
                                   tp_error *err) {
    *scale = 1.0;
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(obj, "rope_scaling");
    if (!rs || cJSON_IsNull(rs))
        return TP_OK;
    if (!cJSON_IsObject(rs))
        return tp_fail(err, TP_ERR_FORMAT, "%s: \"rope_scaling\" must be an object or null",
                       doc->path);
    const char *type = NULL;
    tp_status st = tp_json_string(doc, rs, "rope_type", NULL, &type, err);
    if (st == TP_OK && !type)
        st = tp_json_string(doc, rs, "type", NULL, &type, err);
    if (st != TP_OK)
        return st;
    if (!type || (strcmp(type, "linear") && strcmp(type, "default")))
        return tp_fail(err, TP_ERR_UNSUPPORTED,
                       "%s: rope_scaling type \"%s\" is not supported (only \"linear\")", doc->path,
                       type ? type : "(none)");
    if (!strcmp(type, "default"))
        return TP_OK;
    st = tp_json_double(doc, rs, "factor", 1.0, scale, err);
    if (st != TP_OK)
        return st;
    if (!(*scale > 0.0) || !isfinite(*scale))
        return tp_fail(err, TP_ERR_FORMAT, "%s: rope_scaling.factor must be > 0", doc->path);
    return TP_OK;
}

tp_status tp_dec_read_special_ids(const tp_json_doc *doc, const cJSON *obj, tp_dec_hparams *hp,
                                  tp_error *err) {
    int64_t bos = -1;
    tp_status st = tp_json_int(doc, obj, "bos_token_id", -1, &bos, err);
    if (st != TP_OK)
        return st;
    hp->bos_id = (bos >= 0 && bos < hp->vocab) ? (int32_t)bos : -1;
    hp->n_eos = 0;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(obj, "eos_token_id");
    if (!e || cJSON_IsNull(e))
        return TP_OK;
    if (cJSON_IsNumber(e)) {
        if (e->valuedouble >= 0 && e->valuedouble < (double)hp->vocab)
            hp->eos_ids[hp->n_eos++] = (int32_t)e->valuedouble;
        return TP_OK;
    }
    if (!cJSON_IsArray(e))
        return tp_fail(err, TP_ERR_FORMAT, "%s: \"eos_token_id\" must be an integer or a list",
                       doc->path);
    const cJSON *it;
    cJSON_ArrayForEach(it, e) {
        if (!cJSON_IsNumber(it))
            return tp_fail(err, TP_ERR_FORMAT, "%s: \"eos_token_id\" list holds a non-integer",
                           doc->path);
        if (hp->n_eos < TP_DEC_MAX_EOS && it->valuedouble >= 0 &&
            it->valuedouble < (double)hp->vocab)
            hp->eos_ids[hp->n_eos++] = (int32_t)it->valuedouble;
    }
    return TP_OK;
}

tp_status tp_dec_read_layer_types(const tp_json_doc *doc, const cJSON *obj, tp_dec_hparams *hp,
                                  bool *found, tp_error *err) {
    *found = false;
    const cJSON *lt = cJSON_GetObjectItemCaseSensitive(obj, "layer_types");
    if (!lt || cJSON_IsNull(lt))
        return TP_OK;
    if (!cJSON_IsArray(lt) || cJSON_GetArraySize(lt) != hp->n_layers)
        return tp_fail(err, TP_ERR_FORMAT,
                       "%s: \"layer_types\" must be a list of num_hidden_layers (%lld) strings",
                       doc->path, (long long)hp->n_layers);
    int64_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, lt) {
        if (!cJSON_IsString(it))
            return tp_fail(err, TP_ERR_FORMAT, "%s: layer_types[%lld] is not a string", doc->path,
                           (long long)i);
        if (!strcmp(it->valuestring, "sliding_attention"))
            hp->layer_sliding[i] = 1;
        else if (!strcmp(it->valuestring, "full_attention"))
            hp->layer_sliding[i] = 0;
        else
            return tp_fail(err, TP_ERR_UNSUPPORTED,
                           "%s: layer_types[%lld] = \"%s\" is not supported", doc->path,
                           (long long)i, it->valuestring);
        i++;
    }
    *found = true;
    return TP_OK;
}

/* ---------------------------------------------------------------- loading */

static tp_status get_tensor(const tp_net_load_args *a, const tp_dec_hparams *hp, const char *suffix,
                            long layer, int n_dims, const int64_t *shape, const tp_st_tensor **out,
                            tp_error *err) {
    char name[256];
    if (layer >= 0)
        snprintf(name, sizeof name, "%slayers.%ld.%s", hp->prefix, layer, suffix);
    else
        snprintf(name, sizeof name, "%s%s", hp->prefix, suffix);
    tp_status st = tp_st_get(a->st, name, n_dims, shape, out, err);
    if (st != TP_OK)
        tp_error_prefix(err, "%s", a->dir ? a->dir : "model");
    return st;
}

static tp_status get_vec(const tp_net_load_args *a, const tp_dec_hparams *hp, const char *suffix,
                         long layer, int64_t n, float **out, tp_error *err) {
    const tp_st_tensor *t = NULL;
    tp_status st = get_tensor(a, hp, suffix, layer, 1, &n, &t, err);
    if (st == TP_OK)
        st = tp_st_to_f32(t, out, err);
    return st;
}

/* Matrix dtypes the kernels take: the float types, and GGUF's block-quantized
 * types (tp_matmul multiplies them with int8-quantized activations; tp_embed
 * dequantizes rows). */
static bool weight_dtype_ok(tp_dtype t) {
    return t == TP_DTYPE_F32 || t == TP_DTYPE_BF16 || t == TP_DTYPE_F16 || tp_dtype_is_quant(t);
}

static tp_status get_linear(const tp_net_load_args *a, const tp_dec_hparams *hp, const char *suffix,
                            long layer, int64_t n_out, int64_t n_in, tp_linear *l, tp_error *err) {
    int64_t shape[2] = {n_out, n_in};
    const tp_st_tensor *t = NULL;
    tp_status st = get_tensor(a, hp, suffix, layer, 2, shape, &t, err);
    if (st != TP_OK)
        return st;
    if (!weight_dtype_ok(t->dtype))
        return tp_fail(err, TP_ERR_UNSUPPORTED,
                       "%s: tensor '%s' has dtype %s (need F32/BF16/F16/Q8_0/Q4_K/Q6_K)", t->file,
                       t->name, tp_dtype_name(t->dtype));
    memset(l, 0, sizeof *l);
    l->w = t->data;
    l->dtype = t->dtype;
    l->n_out = n_out;
    l->n_in = n_in;
    return tp_linear_prepare(l, a->compute, err);
}

static void release_linear(tp_linear *l) {
    if (l->w)
        tp_linear_release(l);
}

static const struct tp_decoder_ops kDecoderOps;

void tp_decoder_free(tp_net *net) {
    if (!net)
        return;
    tp_decoder *d = dec_of(net);
    if (!d)
        return;
    if (d->layers) {
        for (int64_t i = 0; i < d->hp.n_layers; i++) {
            dec_layer *ly = &d->layers[i];
            tp_free(ly->attn_norm);
            tp_free(ly->q_norm);
            tp_free(ly->k_norm);
            tp_free(ly->post_attn_norm);
            tp_free(ly->pre_ff_norm);
            tp_free(ly->post_ff_norm);
            tp_free(ly->bq);
            tp_free(ly->bk);
            tp_free(ly->bv);
            tp_free(ly->bo);
            release_linear(&ly->wq);
            release_linear(&ly->wk);
            release_linear(&ly->wv);
            release_linear(&ly->wo);
            release_linear(&ly->w_gate);
            release_linear(&ly->w_up);
            release_linear(&ly->w_gate_up);
            release_linear(&ly->w_down);
        }
        tp_free(d->layers);
    }
    release_linear(&d->lm_head);
    tp_free(d->final_norm);
    tp_free(d->inv_freq_full);
    tp_free(d->inv_freq_local);
    tp_free(d->hp.layer_sliding);
    tp_free(d);
}

static bool hparams_valid(const tp_dec_hparams *hp, const char *path, tp_error *err) {
    if (hp->vocab <= 0 || hp->hidden <= 0 || hp->n_layers <= 0 || hp->n_heads <= 0 ||
        hp->n_kv_heads <= 0 || hp->head_dim <= 0 || hp->inter <= 0 || hp->max_pos <= 0) {
        tp_fail(err, TP_ERR_FORMAT,
                "%s: vocab_size, hidden_size, num_hidden_layers, num_attention_heads, "
                "num_key_value_heads, head_dim, intermediate_size and max_position_embeddings "
                "must all be positive",
                path);
        return false;
    }
    if (hp->n_heads % hp->n_kv_heads) {
        tp_fail(err, TP_ERR_FORMAT,
                "%s: num_attention_heads (%lld) is not a multiple of num_key_value_heads (%lld)",
                path, (long long)hp->n_heads, (long long)hp->n_kv_heads);
        return false;
    }
    if (hp->head_dim % 2) {
        tp_fail(err, TP_ERR_FORMAT, "%s: head_dim (%lld) must be even for RoPE", path,
                (long long)hp->head_dim);
        return false;
    }
    /* each factor is bounded before the product, which then cannot overflow */
    if (hp->vocab > INT32_MAX || hp->max_pos > INT32_MAX || hp->hidden > (1 << 20) ||
        hp->n_heads > (1 << 20) || hp->head_dim > (1 << 20) ||
        hp->n_heads * hp->head_dim > (1 << 20) || hp->inter > (1 << 24) || hp->n_layers > 4096) {
        tp_fail(err, TP_ERR_UNSUPPORTED, "%s: model dimensions are out of the supported range",
                path);
        return false;
    }
    if (!(hp->eps > 0.0f) || !isfinite(hp->rope_theta) || hp->rope_theta <= 0 ||
        !isfinite(hp->rope_local_theta) || hp->rope_local_theta <= 0) {
        tp_fail(err, TP_ERR_FORMAT, "%s: rms_norm_eps and rope thetas must be > 0", path);
        return false;
    }
    for (int64_t l = 0; l < hp->n_layers; l++) {
        if (hp->layer_sliding[l] && hp->sliding_window <= 0) {
            tp_fail(err, TP_ERR_FORMAT, "%s: layer %lld slides but sliding_window is not > 0", path,
                    (long long)l);
            return false;
        }
    }
    return true;
}

tp_status tp_decoder_load(const tp_net_load_args *a, tp_dec_hparams *hp, tp_net **out,
                          tp_error *err) {
    *out = NULL;
    const char *path = a->config && a->config->path ? a->config->path : "config.json";
    if (!hparams_valid(hp, path, err)) {
        tp_free(hp->layer_sliding);
        hp->layer_sliding = NULL;
        return err ? err->status : TP_ERR_FORMAT;
    }
    tp_decoder *d = tp_calloc(1, sizeof *d);
    if (!d) {
        tp_free(hp->layer_sliding);
        hp->layer_sliding = NULL;
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory loading %s", path);
    }
    d->hp = *hp;
    hp->layer_sliding = NULL; /* owned by d now */
    /* GGUF Gemma3 files store fl(1 + w) (computed in f32 by the converter):
     * multiplying by the stored value is what the (1 + w) path computes. */
    if (a->norm_plus_one_stored)
        d->hp.norm_plus_one = false;
    d->net.kind = TP_NET_DECODER;
    d->net.compute = a->compute;
    d->net.vocab_size = hp->vocab;
    d->net.hidden_size = hp->hidden;
    d->net.n_layers = hp->n_layers;
    d->net.max_positions = hp->max_pos;
    d->net.dec = &kDecoderOps;
    d->net.impl = d;

    tp_status st = TP_OK;
    const tp_dec_hparams *p = &d->hp;
    const int64_t D = p->hidden, H = p->n_heads, Hkv = p->n_kv_heads, Dh = p->head_dim,
                  F = p->inter;
    d->layers = tp_calloc((size_t)p->n_layers, sizeof *d->layers);
    d->inv_freq_full = tp_malloc(sizeof(float) * (size_t)(Dh / 2));
    d->inv_freq_local = tp_malloc(sizeof(float) * (size_t)(Dh / 2));
    if (!d->layers || !d->inv_freq_full || !d->inv_freq_local) {
        st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory loading %s", path);
        goto fail;
    }
    tp_rope_inv_freq(d->inv_freq_full, (int)Dh, p->rope_theta, p->rope_scale);
    tp_rope_inv_freq(d->inv_freq_local, (int)Dh, p->rope_local_theta, p->rope_local_scale);

    int64_t eshape[2] = {p->vocab, D};
    st = get_tensor(a, p, "embed_tokens.weight", -1, 2, eshape, &d->embed, err);
    if (st != TP_OK)
        goto fail;
    if (!weight_dtype_ok(d->embed->dtype)) {
        st = tp_fail(err, TP_ERR_UNSUPPORTED,
                     "%s: tensor '%s' has dtype %s (need F32/BF16/F16/Q8_0/Q4_K/Q6_K)",
                     d->embed->file, d->embed->name, tp_dtype_name(d->embed->dtype));
        goto fail;
    }
    st = get_vec(a, p, "norm.weight", -1, D, &d->final_norm, err);
    if (st != TP_OK)
        goto fail;
    if (p->tied) {
        /* Tied: the LM head is the embedding (a stored lm_head.weight copy, as
         * Qwen3-0.6B ships, is identical and simply not used). */
        memset(&d->lm_head, 0, sizeof d->lm_head);
        d->lm_head.w = d->embed->data;
        d->lm_head.dtype = d->embed->dtype;
        d->lm_head.n_out = p->vocab;
        d->lm_head.n_in = D;
        st = tp_linear_prepare(&d->lm_head, a->compute, err);
    } else {
        tp_dec_hparams top = *p;
        top.prefix[0] = '\0';
        st = get_linear(a, &top, p->lm_head_name, -1, p->vocab, D, &d->lm_head, err);
    }
    if (st != TP_OK)
        goto fail;

    for (int64_t i = 0; i < p->n_layers; i++) {
        dec_layer *ly = &d->layers[i];
        long li = (long)i;
        ly->inv_freq = p->layer_sliding[i] ? d->inv_freq_local : d->inv_freq_full;
        if ((st = get_vec(a, p, "input_layernorm.weight", li, D, &ly->attn_norm, err)) ||
            (st = get_linear(a, p, "self_attn.q_proj.weight", li, H * Dh, D, &ly->wq, err)) ||
            (st = get_linear(a, p, "self_attn.k_proj.weight", li, Hkv * Dh, D, &ly->wk, err)) ||
            (st = get_linear(a, p, "self_attn.v_proj.weight", li, Hkv * Dh, D, &ly->wv, err)) ||
            (st = get_linear(a, p, "self_attn.o_proj.weight", li, D, H * Dh, &ly->wo, err)) ||
            (st = get_vec(a, p, "self_attn.q_norm.weight", li, Dh, &ly->q_norm, err)) ||
            (st = get_vec(a, p, "self_attn.k_norm.weight", li, Dh, &ly->k_norm, err)) ||
            (st = get_vec(a, p, "post_attention_layernorm.weight", li, D, &ly->post_attn_norm,
                          err)) ||
            (st = get_linear(a, p, "mlp.gate_proj.weight", li, F, D, &ly->w_gate, err)) ||
            (st = get_linear(a, p, "mlp.up_proj.weight", li, F, D, &ly->w_up, err)) ||
            (st = get_linear(a, p, "mlp.down_proj.weight", li, D, F, &ly->w_down, err)))
            goto fail;
        /* Sorted by name, up_proj usually follows gate_proj in the file with
         * nothing between: then [gate; up] is one (2F, D) matrix in place, the
         * [gate | up] layout tp_glu reads. Each output element is the same
         * function of (x row, W row) either way, so results are identical. */
        size_t row_bytes = 0, wbytes = 0;
        if (tp_dtype_row_bytes(ly->w_gate.dtype, (uint64_t)D, &row_bytes))
            wbytes = (size_t)F * row_bytes; /* F rows: whole blocks for quantized types */
        if (wbytes && ly->w_up.dtype == ly->w_gate.dtype &&
            (const char *)ly->w_gate.w + wbytes == (const char *)ly->w_up.w) {
            ly->w_gate_up = ly->w_gate;
            ly->w_gate_up.packed = NULL;
            ly->w_gate_up.n_out = 2 * F;
            if ((st = tp_linear_prepare(&ly->w_gate_up, a->compute, err)))
                goto fail;
            tp_linear_release(&ly->w_gate);
            tp_linear_release(&ly->w_up);
        }
        if (p->sandwich_norms && ((st = get_vec(a, p, "pre_feedforward_layernorm.weight", li, D,
                                                &ly->pre_ff_norm, err)) ||
                                  (st = get_vec(a, p, "post_feedforward_layernorm.weight", li, D,
                                                &ly->post_ff_norm, err))))
            goto fail;
        if (p->attention_bias) {
            if ((st = get_vec(a, p, "self_attn.q_proj.bias", li, H * Dh, &ly->bq, err)) ||
                (st = get_vec(a, p, "self_attn.k_proj.bias", li, Hkv * Dh, &ly->bk, err)) ||
                (st = get_vec(a, p, "self_attn.v_proj.bias", li, Hkv * Dh, &ly->bv, err)))
                goto fail;
            /* o_proj.bias exists in Qwen3 only when attention_bias; Gemma3 never has it. */
            char name[256];
            snprintf(name, sizeof name, "%slayers.%ld.self_attn.o_proj.bias", p->prefix, li);
            if (tp_st_find(a->st, name) &&
                (st = get_vec(a, p, "self_attn.o_proj.bias", li, D, &ly->bo, err)))
                goto fail;
            ly->wq.bias = ly->bq;
            ly->wk.bias = ly->bk;
            ly->wv.bias = ly->bv;
            ly->wo.bias = ly->bo;
        }
    }
    *out = &d->net;
    return TP_OK;
fail:
    tp_decoder_free(&d->net);
    return st;
}

/* ---------------------------------------------------------------- forward */

static size_t add_array(size_t total, size_t n, size_t elem, bool *ok) {
    size_t bytes, padded, sum;
    if (!tp_mul_size(n, elem, &bytes) || !tp_align_up(bytes, TP_ALIGN, &padded) ||
        !tp_add_size(total, padded, &sum)) {
        *ok = false;
        return 0;
    }
    return sum;
}

static size_t dec_scratch_bytes(const tp_net *net, size_t T, size_t S, size_t n_logits) {
    const tp_dec_hparams *p = tp_decoder_hparams(net);
    if (!p)
        return 0;
    bool ok = true;
    size_t D = (size_t)p->hidden, HD = (size_t)(p->n_heads * p->head_dim),
           KD = (size_t)(p->n_kv_heads * p->head_dim), F = (size_t)p->inter, V = (size_t)p->vocab;
    size_t t = 0, x;
    t = add_array(t, T, D * sizeof(float), &ok);  /* x   */
    t = add_array(t, T, D * sizeof(float), &ok);  /* h   */
    t = add_array(t, T, HD * sizeof(float), &ok); /* q   */
    t = add_array(t, T, KD * sizeof(float), &ok); /* k   */
    t = add_array(t, T, KD * sizeof(float), &ok); /* v   */
    t = add_array(t, T, HD * sizeof(float), &ok); /* att */
    if (!tp_mul_size(F, 2 * sizeof(float), &x))
        return 0;
    t = add_array(t, T, x, &ok);                        /* gu  */
    t = add_array(t, T, F * sizeof(float), &ok);        /* act */
    t = add_array(t, T, 2 * sizeof(int32_t), &ok);      /* ids, pos */
    t = add_array(t, S, sizeof(tp_attn_seq), &ok);      /* attention jobs */
    t = add_array(t, n_logits, D * sizeof(float), &ok); /* last rows */
    t = add_array(t, n_logits, V * sizeof(float), &ok); /* logits */
    t = add_array(t, n_logits, sizeof(int32_t), &ok);   /* row of each logit */
    return ok ? t : 0;
}

static void softcap(float *x, size_t n, float c) {
    for (size_t i = 0; i < n; i++)
        x[i] = c * tanhf(x[i] / c);
}

static tp_status check_step(const tp_decoder *d, const tp_dec_seq *seqs, size_t n_seqs,
                            size_t *T_out, size_t *n_logits, tp_error *err) {
    const tp_dec_hparams *p = &d->hp;
    size_t T = 0, nl = 0;
    for (size_t s = 0; s < n_seqs; s++) {
        const tp_dec_seq *q = &seqs[s];
        if (!q->ids || q->n_new < 1 || q->pos0 < 0 || q->block_size < 1 || q->max_blocks < 1 ||
            !q->k_blocks || !q->v_blocks)
            return tp_fail_item(err, TP_ERR_INVALID_ARGUMENT, (long)s,
                                "decoder step: sequence %zu has no tokens or no KV blocks", s);
        if ((int64_t)q->pos0 + q->n_new > p->max_pos)
            return tp_fail_item(err, TP_ERR_TOO_LONG, (long)s,
                                "decoder step: sequence %zu reaches position %lld, past the "
                                "context of %lld tokens",
                                s, (long long)q->pos0 + q->n_new, (long long)p->max_pos);
        int64_t last = (int64_t)q->pos0 + q->n_new - 1;
        if (last / q->block_size >= q->max_blocks)
            return tp_fail_item(err, TP_ERR_INVALID_ARGUMENT, (long)s,
                                "decoder step: sequence %zu: block table too short", s);
        for (int i = 0; i < q->n_new; i++)
            if (q->ids[i] < 0 || q->ids[i] >= p->vocab)
                return tp_fail_item(err, TP_ERR_INVALID_ARGUMENT, (long)s,
                                    "decoder step: sequence %zu: token id %d is outside the "
                                    "vocabulary (size %lld)",
                                    s, (int)q->ids[i], (long long)p->vocab);
        for (int64_t l = 0; l < p->n_layers; l++) {
            int w = tp_dec_layer_window(p, l);
            int64_t first = w > 0 ? q->pos0 - (w - 1) : 0;
            if (first < 0)
                first = 0;
            for (int64_t b = first / q->block_size; b <= last / q->block_size; b++) {
                size_t at = (size_t)l * (size_t)q->max_blocks + (size_t)b;
                if (!q->k_blocks[at] || !q->v_blocks[at])
                    return tp_fail_item(err, TP_ERR_INVALID_ARGUMENT, (long)s,
                                        "decoder step: sequence %zu: KV block %lld of layer %lld "
                                        "is missing",
                                        s, (long long)b, (long long)l);
            }
        }
        T += (size_t)q->n_new;
        if (q->logits)
            nl++;
    }
    *T_out = T;
    *n_logits = nl;
    return TP_OK;
}

#define ARENA_GET(ptr, n, type)                                                                    \
    do {                                                                                           \
        (ptr) = (type *)tp_arena_alloc(scratch, (n), sizeof(type));                                \
        if (!(ptr))                                                                                \
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY,                                              \
                           "decoder step: scratch arena too small (%zu bytes)", scratch->cap);     \
    } while (0)

static tp_status dec_forward(const tp_net *net, const tp_dec_seq *seqs, size_t n_seqs,
                             tp_arena *scratch, tp_pool *pool, tp_error *err) {
    if (!net || !seqs || !scratch || net->kind != TP_NET_DECODER)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "decoder step: NULL argument");
    const tp_decoder *d = dec_of(net);
    const tp_dec_hparams *p = &d->hp;
    tp_compute cm = net->compute;
    size_t T = 0, NL = 0;
    if (n_seqs == 0)
        return TP_OK;
    tp_status st = check_step(d, seqs, n_seqs, &T, &NL, err);
    if (st != TP_OK)
        return st;
    tp_arena_reset(scratch);
    const size_t D = (size_t)p->hidden, H = (size_t)p->n_heads, Hkv = (size_t)p->n_kv_heads,
                 Dh = (size_t)p->head_dim, F = (size_t)p->inter, V = (size_t)p->vocab;
    const size_t HD = H * Dh, KD = Hkv * Dh;
    float *x, *h, *q, *k, *v, *att, *gu, *act, *last, *logits;
    int32_t *ids, *pos, *lrow;
    tp_attn_seq *jobs;
    ARENA_GET(x, T * D, float);      /* (T, D) residual stream      */
    ARENA_GET(h, T * D, float);      /* (T, D) normed input / outputs */
    ARENA_GET(q, T * HD, float);     /* (T, H*Dh)   */
    ARENA_GET(k, T * KD, float);     /* (T, Hkv*Dh) */
    ARENA_GET(v, T * KD, float);     /* (T, Hkv*Dh) */
    ARENA_GET(att, T * HD, float);   /* (T, H*Dh) attention output */
    ARENA_GET(gu, T * 2 * F, float); /* (T, 2F) [gate | up] */
    ARENA_GET(act, T * F, float);    /* (T, F) act(gate) * up */
    ARENA_GET(ids, 2 * T, int32_t);  /* (T) ids, then (T) positions */
    pos = ids + T;
    ARENA_GET(jobs, n_seqs, tp_attn_seq);
    ARENA_GET(last, (NL ? NL : 1) * D, float);   /* (NL, D) */
    ARENA_GET(logits, (NL ? NL : 1) * V, float); /* (NL, V) */
    ARENA_GET(lrow, NL ? NL : 1, int32_t);

    /* Pack ids and positions; set up the per-sequence attention jobs. */
    size_t r = 0;
    for (size_t s = 0; s < n_seqs; s++) {
        const tp_dec_seq *sq = &seqs[s];
        tp_attn_seq *j = &jobs[s];
        j->q = q + r * HD;
        j->q_ld = HD;
        j->out = att + r * HD;
        j->out_ld = HD;
        j->n_q = sq->n_new;
        j->q_pos0 = sq->pos0;
        j->kv_len = sq->pos0 + sq->n_new;
        j->block_size = sq->block_size;
        j->kv_ld = KD;
        for (int i = 0; i < sq->n_new; i++) {
            ids[r] = sq->ids[i];
            pos[r] = sq->pos0 + i;
            r++;
        }
    }
    tp_embed(d->embed->data, d->embed->dtype, ids, T, D, p->embed_scale, x);

    tp_attn_params ap = {.n_heads = (int)H,
                         .n_kv_heads = (int)Hkv,
                         .head_dim = (int)Dh,
                         .scale = p->attn_scale,
                         .causal = true,
                         .window_left = -1,
                         .window_right = -1,
                         .softcap = 0.0f};
    const bool p1 = p->norm_plus_one;
    for (int64_t l = 0; l < p->n_layers; l++) {
        const dec_layer *ly = &d->layers[l];
        tp_rmsnorm_par(pool, x, ly->attn_norm, h, T, D, p->eps, p1);
        tp_matmul(pool, &ly->wq, h, D, q, HD, T, cm);
        tp_matmul(pool, &ly->wk, h, D, k, KD, T, cm);
        tp_matmul(pool, &ly->wv, h, D, v, KD, T, cm);
        tp_rmsnorm_par(pool, q, ly->q_norm, q, T * H, Dh, p->eps, p1);
        tp_rmsnorm_par(pool, k, ly->k_norm, k, T * Hkv, Dh, p->eps, p1);
        tp_rope_par(pool, q, HD, T, (int)H, (int)Dh, pos, ly->inv_freq);
        tp_rope_par(pool, k, KD, T, (int)Hkv, (int)Dh, pos, ly->inv_freq);
        /* Store the new keys/values in each sequence's blocks of this layer. */
        r = 0;
        for (size_t s = 0; s < n_seqs; s++) {
            const tp_dec_seq *sq = &seqs[s];
            size_t base = (size_t)l * (size_t)sq->max_blocks;
            for (int i = 0; i < sq->n_new; i++, r++) {
                int P = sq->pos0 + i;
                size_t b = base + (size_t)(P / sq->block_size);
                size_t row = (size_t)(P % sq->block_size);
                memcpy(sq->k_blocks[b] + row * KD, k + r * KD, KD * sizeof(float));
                memcpy(sq->v_blocks[b] + row * KD, v + r * KD, KD * sizeof(float));
            }
            jobs[s].k_blocks = (const float *const *)(sq->k_blocks + base);
            jobs[s].v_blocks = (const float *const *)(sq->v_blocks + base);
        }
        int w = tp_dec_layer_window(p, l);
        ap.window_left = w > 0 ? w - 1 : -1; /* key j visible iff j > p - W */
        tp_attention(pool, jobs, n_seqs, &ap);
        tp_matmul(pool, &ly->wo, att, HD, h, D, T, cm);
        if (p->sandwich_norms)
            tp_rmsnorm_par(pool, h, ly->post_attn_norm, h, T, D, p->eps, p1);
        tp_add_rows_par(pool, x, h, T, D);
        tp_rmsnorm_par(pool, x, p->sandwich_norms ? ly->pre_ff_norm : ly->post_attn_norm, h, T, D,
                       p->eps, p1);
        if (ly->w_gate_up.w) {
            tp_matmul(pool, &ly->w_gate_up, h, D, gu, 2 * F, T, cm);
        } else {
            tp_matmul(pool, &ly->w_gate, h, D, gu, 2 * F, T, cm);
            tp_matmul(pool, &ly->w_up, h, D, gu + F, 2 * F, T, cm);
        }
        tp_glu_par(pool, gu, act, T, F, p->act);
        tp_matmul(pool, &ly->w_down, act, F, h, D, T, cm);
        if (p->sandwich_norms)
            tp_rmsnorm_par(pool, h, ly->post_ff_norm, h, T, D, p->eps, p1);
        tp_add_rows_par(pool, x, h, T, D);
    }
    if (NL == 0)
        return TP_OK;
    /* Final norm and LM head only at the last row of sequences that want logits. */
    size_t n = 0;
    r = 0;
    for (size_t s = 0; s < n_seqs; s++) {
        r += (size_t)seqs[s].n_new;
        if (seqs[s].logits) {
            memcpy(last + n * D, x + (r - 1) * D, D * sizeof(float));
            lrow[n++] = (int32_t)s;
        }
    }
    tp_rmsnorm(last, d->final_norm, last, NL, D, p->eps, p1);
    tp_matmul(pool, &d->lm_head, last, D, logits, V, NL, cm);
    for (size_t i = 0; i < NL; i++) {
        float *row = logits + i * V;
        if (p->final_softcap > 0.0f)
            softcap(row, V, p->final_softcap);
        memcpy(seqs[lrow[i]].logits, row, V * sizeof(float));
    }
    return TP_OK;
}

static const struct tp_decoder_ops kDecoderOps = {
    .scratch_bytes = dec_scratch_bytes,
    .forward = dec_forward,
};
