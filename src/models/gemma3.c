/*
 * gemma3.c — the Gemma3 text family (Gemma3ForCausalLM "gemma3_text", and the
 * language model of Gemma3ForConditionalGeneration "gemma3", whose vision tower
 * is ignored): reads config.json into the decoder core's hparams.
 *
 * Gemma3 differs from Qwen3 in: embedding x sqrt(hidden) (a float32 number),
 * RMSNorm output x (1 + w) everywhere (q_norm/k_norm too), sandwich norms
 * (post-attention, pre- and post-feed-forward), tanh-GELU MLP, attention scale
 * query_pre_attn_scalar^-0.5, sliding-window layers (RoPE base
 * rope_local_base_freq, unscaled) interleaved with global layers (rope_theta with
 * rope_scaling), and an optional final logit soft-cap. Which layers slide:
 * "layer_types" when present, else layer i is global iff
 * (i + 1) % sliding_window_pattern == 0 (default pattern 6).
 */
#include "models/decoder.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Weight-name prefixes of the text model: Gemma3ForCausalLM, then the two
 * layouts Gemma3ForConditionalGeneration checkpoints use. */
static const char *const kPrefixes[][2] = {
    {"model.", "lm_head.weight"},
    {"language_model.model.", "language_model.lm_head.weight"},
    {"model.language_model.", "lm_head.weight"},
};

static tp_status gemma3_load(const tp_net_load_args *a, tp_net **out, tp_error *err) {
    const tp_json_doc *doc = a->config;
    const cJSON *c = doc->root;
    const char *mt = NULL;
    tp_status st = tp_json_string(doc, c, "model_type", "", &mt, err);
    if (st)
        return st;
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(c, "text_config");
    if (tc) {
        if (!cJSON_IsObject(tc))
            return tp_fail(err, TP_ERR_FORMAT, "%s: \"text_config\" must be an object", doc->path);
        c = tc; /* Gemma3ForConditionalGeneration: the language model's config */
    } else if (!strcmp(mt, "gemma3")) {
        return tp_fail(err, TP_ERR_FORMAT, "%s: model_type \"gemma3\" without \"text_config\"",
                       doc->path);
    }
    tp_dec_hparams hp;
    memset(&hp, 0, sizeof hp);
    hp.family = TP_DEC_GEMMA3;
    int64_t v[9];
    double eps, theta, local_theta, qpas, fsc = 0.0;
    /* Defaults are transformers' Gemma3TextConfig defaults (the text_config of
     * the multimodal checkpoints leaves many keys out). */
    if ((st = tp_json_int(doc, c, "vocab_size", 262208, &v[0], err)) ||
        (st = tp_json_int(doc, c, "hidden_size", 2304, &v[1], err)) ||
        (st = tp_json_int(doc, c, "num_hidden_layers", 26, &v[2], err)) ||
        (st = tp_json_int(doc, c, "num_attention_heads", 8, &v[3], err)) ||
        (st = tp_json_int(doc, c, "num_key_value_heads", 4, &v[4], err)) ||
        (st = tp_json_int(doc, c, "head_dim", 256, &v[5], err)) ||
        (st = tp_json_int(doc, c, "intermediate_size", 9216, &v[6], err)) ||
        (st = tp_json_int(doc, c, "max_position_embeddings", 131072, &v[7], err)) ||
        (st = tp_json_int(doc, c, "sliding_window", 4096, &v[8], err)) ||
        (st = tp_json_double(doc, c, "rms_norm_eps", 1e-6, &eps, err)) ||
        (st = tp_json_double(doc, c, "rope_theta", 1000000.0, &theta, err)) ||
        (st = tp_json_double(doc, c, "rope_local_base_freq", 10000.0, &local_theta, err)) ||
        (st = tp_json_double(doc, c, "query_pre_attn_scalar", 256.0, &qpas, err)) ||
        (st = tp_json_double(doc, c, "final_logit_softcapping", 0.0, &fsc, err)))
        return st;
    hp.vocab = v[0];
    hp.hidden = v[1];
    hp.n_layers = v[2];
    hp.n_heads = v[3];
    hp.n_kv_heads = v[4];
    hp.head_dim = v[5];
    hp.inter = v[6];
    hp.max_pos = v[7];
    if (v[8] <= 0 || v[8] > INT32_MAX)
        return tp_fail(err, TP_ERR_FORMAT, "%s: sliding_window must be > 0", doc->path);
    hp.sliding_window = (int)v[8];
    hp.eps = (float)eps;
    hp.rope_theta = theta;
    hp.rope_local_theta = local_theta;
    hp.rope_local_scale = 1.0;
    if ((st = tp_dec_read_rope_scaling(doc, c, &hp.rope_scale, err)))
        return st;
    if (!(qpas > 0))
        return tp_fail(err, TP_ERR_FORMAT, "%s: query_pre_attn_scalar must be > 0", doc->path);
    hp.attn_scale = (float)pow(qpas, -0.5);
    if (fsc < 0 || !isfinite(fsc))
        return tp_fail(err, TP_ERR_FORMAT, "%s: final_logit_softcapping must be >= 0", doc->path);
    hp.final_softcap = (float)fsc;
    const char *act = NULL;
    if ((st = tp_json_string(doc, c, "hidden_activation", NULL, &act, err)))
        return st;
    if (!act && (st = tp_json_string(doc, c, "hidden_act", "gelu_pytorch_tanh", &act, err)))
        return st;
    if (!strcmp(act, "gelu_pytorch_tanh"))
        hp.act = TP_ACT_GELU_TANH;
    else if (!strcmp(act, "gelu"))
        hp.act = TP_ACT_GELU_ERF;
    else
        return tp_fail(err, TP_ERR_UNSUPPORTED,
                       "%s: hidden_activation \"%s\" is not supported for gemma3", doc->path, act);
    if ((st = tp_json_bool(doc, c, "tie_word_embeddings", true, &hp.tied, err)) ||
        (st = tp_json_bool(doc, c, "attention_bias", false, &hp.attention_bias, err)))
        return st;
    hp.embed_scale = hp.hidden > 0 ? (float)sqrt((double)hp.hidden) : 1.0f;
    hp.norm_plus_one = true;
    hp.sandwich_norms = true;
    if ((st = tp_dec_read_special_ids(doc, c, &hp, err)))
        return st;
    if (hp.n_eos == 0 && c != doc->root && (st = tp_dec_read_special_ids(doc, doc->root, &hp, err)))
        return st;

    /* Weight names: probe which layout this checkpoint uses. */
    size_t np = sizeof kPrefixes / sizeof kPrefixes[0], i;
    for (i = 0; i < np; i++) {
        char name[128];
        snprintf(name, sizeof name, "%sembed_tokens.weight", kPrefixes[i][0]);
        if (tp_st_find(a->st, name))
            break;
    }
    if (i == np)
        return tp_fail(err, TP_ERR_NOT_FOUND,
                       "%s: no embedding tensor (model.embed_tokens.weight, "
                       "language_model.model.embed_tokens.weight or "
                       "model.language_model.embed_tokens.weight)",
                       a->dir ? a->dir : "model");
    snprintf(hp.prefix, sizeof hp.prefix, "%s", kPrefixes[i][0]);
    snprintf(hp.lm_head_name, sizeof hp.lm_head_name, "%s", kPrefixes[i][1]);

    if (hp.n_layers <= 0 || hp.n_layers > 4096)
        return tp_fail(err, TP_ERR_FORMAT, "%s: num_hidden_layers must be in 1..4096", doc->path);
    hp.layer_sliding = tp_calloc((size_t)hp.n_layers, 1);
    if (!hp.layer_sliding)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory reading %s", doc->path);
    bool found = false;
    if ((st = tp_dec_read_layer_types(doc, c, &hp, &found, err))) {
        tp_free(hp.layer_sliding);
        return st;
    }
    if (!found) {
        int64_t pattern = 6;
        const char *key = cJSON_GetObjectItemCaseSensitive(c, "sliding_window_pattern")
                              ? "sliding_window_pattern"
                              : "_sliding_window_pattern";
        if ((st = tp_json_int(doc, c, key, 6, &pattern, err))) {
            tp_free(hp.layer_sliding);
            return st;
        }
        if (pattern <= 0) {
            tp_free(hp.layer_sliding);
            return tp_fail(err, TP_ERR_FORMAT, "%s: %s must be > 0", doc->path, key);
        }
        for (int64_t l = 0; l < hp.n_layers; l++)
            hp.layer_sliding[l] = (l + 1) % pattern != 0;
    }
    return tp_decoder_load(a, &hp, out, err);
}

static const char *const kGemma3Types[] = {"gemma3_text", "gemma3", NULL};
static const char *const kGemma3Archs[] = {"Gemma3ForCausalLM", "Gemma3ForConditionalGeneration",
                                           NULL};

const tp_family tp_family_gemma3 = {
    .name = "gemma3",
    .model_types = kGemma3Types,
    .architectures = kGemma3Archs,
    .load = gemma3_load,
    .free = tp_decoder_free,
};
