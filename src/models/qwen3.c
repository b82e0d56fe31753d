/*
 * qwen3.c — the Qwen3 family (Qwen3ForCausalLM, model_type "qwen3"): reads
 * config.json into the decoder core's hparams (src/models/decoder.h).
 *
 * Qwen3 = RMSNorm (weight w), per-head q_norm/k_norm before RoPE, GQA, one RoPE
 * base for every layer, SwiGLU MLP, attention scale head_dim^-0.5, tied or
 * untied LM head. head_dim is its own key (Qwen3-0.6B: 128 while hidden/heads
 * = 64). Sliding-window layers exist only with use_sliding_window (layers from
 * max_window_layers on), or when "layer_types" says so.
 */
#include "models/decoder.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tp_status qwen3_load(const tp_net_load_args *a, tp_net **out, tp_error *err) {
    const tp_json_doc *doc = a->config;
    const cJSON *c = doc->root;
    tp_dec_hparams hp;
    memset(&hp, 0, sizeof hp);
    hp.family = TP_DEC_QWEN3;
    int64_t v[8];
    double eps = 1e-6, theta = 10000.0;
    tp_status st;
    /* Defaults are transformers' Qwen3Config defaults. */
    if ((st = tp_json_int(doc, c, "vocab_size", 151936, &v[0], err)) ||
        (st = tp_json_int(doc, c, "hidden_size", 4096, &v[1], err)) ||
        (st = tp_json_int(doc, c, "num_hidden_layers", 32, &v[2], err)) ||
        (st = tp_json_int(doc, c, "num_attention_heads", 32, &v[3], err)) ||
        (st = tp_json_int(doc, c, "num_key_value_heads", v[3], &v[4], err)) ||
        (st = tp_json_int(doc, c, "intermediate_size", 22016, &v[5], err)) ||
        (st = tp_json_int(doc, c, "max_position_embeddings", 32768, &v[6], err)) ||
        (st = tp_json_double(doc, c, "rms_norm_eps", 1e-6, &eps, err)) ||
        (st = tp_json_double(doc, c, "rope_theta", 10000.0, &theta, err)))
        return st;
    hp.vocab = v[0];
    hp.hidden = v[1];
    hp.n_layers = v[2];
    hp.n_heads = v[3];
    hp.n_kv_heads = v[4];
    hp.inter = v[5];
    hp.max_pos = v[6];
    if (hp.n_heads <= 0)
        return tp_fail(err, TP_ERR_FORMAT, "%s: num_attention_heads must be > 0", doc->path);
    if ((st = tp_json_int(doc, c, "head_dim", hp.hidden / hp.n_heads, &hp.head_dim, err)))
        return st;
    hp.eps = (float)eps;
    hp.rope_theta = theta;
    hp.rope_local_theta = theta;
    if ((st = tp_dec_read_rope_scaling(doc, c, &hp.rope_scale, err)))
        return st;
    hp.rope_local_scale = hp.rope_scale;
    const char *act = NULL;
    if ((st = tp_json_string(doc, c, "hidden_act", "silu", &act, err)))
        return st;
    if (strcmp(act, "silu"))
        return tp_fail(err, TP_ERR_UNSUPPORTED, "%s: hidden_act \"%s\" is not supported for qwen3",
                       doc->path, act);
    hp.act = TP_ACT_SILU;
    if ((st = tp_json_bool(doc, c, "tie_word_embeddings", false, &hp.tied, err)) ||
        (st = tp_json_bool(doc, c, "attention_bias", false, &hp.attention_bias, err)))
        return st;
    hp.attn_scale = (float)(1.0 / sqrt((double)hp.head_dim));
    hp.embed_scale = 1.0f;
    hp.norm_plus_one = false;
    hp.sandwich_norms = false;
    snprintf(hp.prefix, sizeof hp.prefix, "model.");
    snprintf(hp.lm_head_name, sizeof hp.lm_head_name, "lm_head.weight");
    if ((st = tp_dec_read_special_ids(doc, c, &hp, err)))
        return st;
    if (hp.n_layers <= 0 || hp.n_layers > 4096)
        return tp_fail(err, TP_ERR_FORMAT, "%s: num_hidden_layers must be in 1..4096", doc->path);
    hp.layer_sliding = tp_calloc((size_t)hp.n_layers, 1);
    if (!hp.layer_sliding)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory reading %s", doc->path);
    /* Sliding windows: HF sets sliding_window only when use_sliding_window. */
    bool use_sw = false, found = false;
    int64_t sw = 0, mwl = 0;
    if ((st = tp_json_bool(doc, c, "use_sliding_window", false, &use_sw, err)) ||
        (st = tp_json_int(doc, c, "sliding_window", 0, &sw, err)) ||
        (st = tp_json_int(doc, c, "max_window_layers", hp.n_layers, &mwl, err)) ||
        (st = tp_dec_read_layer_types(doc, c, &hp, &found, err))) {
        tp_free(hp.layer_sliding);
        return st;
    }
    hp.sliding_window = use_sw || found ? (int)(sw > 0 && sw < INT32_MAX ? sw : 0) : 0;
    if (!found && use_sw)
        /* transformers: layer i slides when i >= max_window_layers (a negative
         * value means every layer; never an index before 0) */
        for (int64_t i = mwl > 0 ? mwl : 0; i < hp.n_layers; i++)
            hp.layer_sliding[i] = 1;
    return tp_decoder_load(a, &hp, out, err);
}

static const char *const kQwen3Types[] = {"qwen3", NULL};
static const char *const kQwen3Archs[] = {"Qwen3ForCausalLM", NULL};

const tp_family tp_family_qwen3 = {
    .name = "qwen3",
    .model_types = kQwen3Types,
    .architectures = kQwen3Archs,
    .load = qwen3_load,
    .free = tp_decoder_free,
};
