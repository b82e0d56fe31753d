/*
 * gguf_names.c — the Hugging Face <-> GGUF name tables (tensors and config
 * keys) for Qwen3 and Gemma3, used both ways: by the converter (HF -> GGUF) and
 * by the loader (GGUF -> the HF view the decoder reads). One table, so the two
 * directions cannot drift apart.
 *
 * Names are llama.cpp's (gguf-py constants.py TENSOR_NAMES / tensor_mapping.py,
 * convert_hf_to_gguf.py Qwen3Model / Gemma3Model):
 *   - Qwen3's post_attention_layernorm is the pre-MLP norm: blk.N.ffn_norm;
 *   - Gemma3's post_attention_layernorm is ATTN_POST_NORM (blk.N.post_attention_norm),
 *     its pre_feedforward_layernorm is FFN_PRE_NORM, which llama.cpp also names
 *     blk.N.ffn_norm, and post_feedforward_layernorm is blk.N.post_ffw_norm;
 *   - neither family permutes q/k (both use NEOX-style RoPE, as HF does);
 *   - Gemma3's converter adds 1 to every "*norm.weight" (Gemma3RMSNorm computes
 *     x * (1 + w)); the table marks those tensors.
 * Config keys: TextModel.set_gguf_parameters and Gemma3Model.set_gguf_parameters
 * (see docs/gguf.md for the full list and the keys llama.cpp does not write).
 */
#include "io/gguf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define Q (1u << TP_GGUF_ARCH_QWEN3)
#define G (1u << TP_GGUF_ARCH_GEMMA3)

const tp_gguf_name tp_gguf_names[] = {
    {"model.embed_tokens.weight", "token_embd.weight", Q | G, false},
    {"model.norm.weight", "output_norm.weight", Q | G, true},
    {"lm_head.weight", "output.weight", Q | G, false},
    {"model.layers.%d.input_layernorm.weight", "blk.%d.attn_norm.weight", Q | G, true},
    {"model.layers.%d.self_attn.q_proj.weight", "blk.%d.attn_q.weight", Q | G, false},
    {"model.layers.%d.self_attn.k_proj.weight", "blk.%d.attn_k.weight", Q | G, false},
    {"model.layers.%d.self_attn.v_proj.weight", "blk.%d.attn_v.weight", Q | G, false},
    {"model.layers.%d.self_attn.o_proj.weight", "blk.%d.attn_output.weight", Q | G, false},
    {"model.layers.%d.self_attn.q_proj.bias", "blk.%d.attn_q.bias", Q | G, false},
    {"model.layers.%d.self_attn.k_proj.bias", "blk.%d.attn_k.bias", Q | G, false},
    {"model.layers.%d.self_attn.v_proj.bias", "blk.%d.attn_v.bias", Q | G, false},
    {"model.layers.%d.self_attn.o_proj.bias", "blk.%d.attn_output.bias", Q, false},
    {"model.layers.%d.self_attn.q_norm.weight", "blk.%d.attn_q_norm.weight", Q | G, true},
    {"model.layers.%d.self_attn.k_norm.weight", "blk.%d.attn_k_norm.weight", Q | G, true},
    {"model.layers.%d.post_attention_layernorm.weight", "blk.%d.ffn_norm.weight", Q, true},
    {"model.layers.%d.post_attention_layernorm.weight", "blk.%d.post_attention_norm.weight", G,
     true},
    {"model.layers.%d.pre_feedforward_layernorm.weight", "blk.%d.ffn_norm.weight", G, true},
    {"model.layers.%d.post_feedforward_layernorm.weight", "blk.%d.post_ffw_norm.weight", G, true},
    {"model.layers.%d.mlp.gate_proj.weight", "blk.%d.ffn_gate.weight", Q | G, false},
    {"model.layers.%d.mlp.up_proj.weight", "blk.%d.ffn_up.weight", Q | G, false},
    {"model.layers.%d.mlp.down_proj.weight", "blk.%d.ffn_down.weight", Q | G, false},
};
const size_t tp_gguf_names_count = sizeof tp_gguf_names / sizeof tp_gguf_names[0];

const tp_gguf_hkey tp_gguf_hkeys[] = {
    {"max_position_embeddings", "context_length", TP_GGUF_UINT32, Q | G},
    {"hidden_size", "embedding_length", TP_GGUF_UINT32, Q | G},
    {"num_hidden_layers", "block_count", TP_GGUF_UINT32, Q | G},
    {"intermediate_size", "feed_forward_length", TP_GGUF_UINT32, Q | G},
    {"num_attention_heads", "attention.head_count", TP_GGUF_UINT32, Q | G},
    {"num_key_value_heads", "attention.head_count_kv", TP_GGUF_UINT32, Q | G},
    {"head_dim", "attention.key_length", TP_GGUF_UINT32, Q | G},
    {"head_dim", "attention.value_length", TP_GGUF_UINT32, Q | G},
    {"rms_norm_eps", "attention.layer_norm_rms_epsilon", TP_GGUF_FLOAT32, Q | G},
    {"rope_theta", "rope.freq_base", TP_GGUF_FLOAT32, Q | G},
    {"rope_local_base_freq", "rope.freq_base_swa", TP_GGUF_FLOAT32, G},
    {"sliding_window", "attention.sliding_window", TP_GGUF_UINT32, G},
    {"final_logit_softcapping", "final_logit_softcapping", TP_GGUF_FLOAT32, G},
};
const size_t tp_gguf_hkeys_count = sizeof tp_gguf_hkeys / sizeof tp_gguf_hkeys[0];

#undef Q
#undef G

/* ---------------------------------------------------------------- architectures */

tp_gguf_arch tp_gguf_arch_from_name(const char *s) {
    if (!s)
        return TP_GGUF_ARCH_UNKNOWN;
    if (!strcmp(s, "qwen3"))
        return TP_GGUF_ARCH_QWEN3;
    if (!strcmp(s, "gemma3"))
        return TP_GGUF_ARCH_GEMMA3;
    return TP_GGUF_ARCH_UNKNOWN;
}

const char *tp_gguf_arch_name(tp_gguf_arch a) {
    switch (a) {
    case TP_GGUF_ARCH_QWEN3:
        return "qwen3";
    case TP_GGUF_ARCH_GEMMA3:
        return "gemma3";
    default:
        return "unknown";
    }
}

tp_gguf_arch tp_gguf_arch_from_config(const tp_json_doc *config) {
    if (!config || !cJSON_IsObject(config->root))
        return TP_GGUF_ARCH_UNKNOWN;
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(config->root, "model_type");
    if (cJSON_IsString(mt)) {
        if (!strcmp(mt->valuestring, "qwen3"))
            return TP_GGUF_ARCH_QWEN3;
        if (!strcmp(mt->valuestring, "gemma3") || !strcmp(mt->valuestring, "gemma3_text"))
            return TP_GGUF_ARCH_GEMMA3;
        return TP_GGUF_ARCH_UNKNOWN;
    }
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(config->root, "architectures");
    const cJSON *a0 = cJSON_IsArray(a) ? cJSON_GetArrayItem(a, 0) : NULL;
    if (!cJSON_IsString(a0))
        return TP_GGUF_ARCH_UNKNOWN;
    if (!strcmp(a0->valuestring, "Qwen3ForCausalLM"))
        return TP_GGUF_ARCH_QWEN3;
    if (!strcmp(a0->valuestring, "Gemma3ForCausalLM") ||
        !strcmp(a0->valuestring, "Gemma3ForConditionalGeneration"))
        return TP_GGUF_ARCH_GEMMA3;
    return TP_GGUF_ARCH_UNKNOWN;
}

float tp_gguf_norm_shift(tp_gguf_arch arch) {
    return arch == TP_GGUF_ARCH_GEMMA3 ? 1.0f : 0.0f;
}

/* ---------------------------------------------------------------- tensor names */

/* Matches s against a pattern with at most one "%d" (a layer number: decimal
 * digits, no leading zero, < 1e6). */
static bool match_pattern(const char *pat, const char *s, long *layer) {
    const char *pd = strstr(pat, "%d");
    *layer = -1;
    if (!pd)
        return strcmp(pat, s) == 0;
    size_t pre = (size_t)(pd - pat);
    if (strncmp(pat, s, pre) != 0)
        return false;
    const char *p = s + pre;
    if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] >= '0' && p[1] <= '9'))
        return false;
    long v = 0;
    int nd = 0;
    while (*p >= '0' && *p <= '9') {
        if (++nd > 6)
            return false;
        v = v * 10 + (*p - '0');
        p++;
    }
    if (strcmp(p, pd + 2) != 0)
        return false;
    *layer = v;
    return true;
}

static bool format_pattern(const char *pat, long layer, char *out, size_t cap) {
    const char *pd = strstr(pat, "%d");
    int n;
    if (pd)
        n = snprintf(out, cap, "%.*s%ld%s", (int)(pd - pat), pat, layer, pd + 2);
    else
        n = snprintf(out, cap, "%s", pat);
    return n >= 0 && (size_t)n < cap;
}

static tp_gguf_map map_name(tp_gguf_arch arch, const char *name, bool to_gguf, char *out,
                            size_t cap, bool *norm) {
    if (norm)
        *norm = false;
    if (!name || !out || cap == 0 || arch == TP_GGUF_ARCH_UNKNOWN)
        return TP_GGUF_MAP_UNKNOWN;
    unsigned bit = 1u << arch;
    for (size_t i = 0; i < tp_gguf_names_count; i++) {
        const tp_gguf_name *e = &tp_gguf_names[i];
        if (!(e->archs & bit))
            continue;
        long layer;
        if (!match_pattern(to_gguf ? e->hf : e->gguf, name, &layer))
            continue;
        if (!format_pattern(to_gguf ? e->gguf : e->hf, layer, out, cap))
            return TP_GGUF_MAP_UNKNOWN;
        if (norm)
            *norm = e->norm;
        return TP_GGUF_MAP_OK;
    }
    return TP_GGUF_MAP_UNKNOWN;
}

static bool starts_with(const char *s, const char *p) {
    return strncmp(s, p, strlen(p)) == 0;
}

tp_gguf_map tp_gguf_name_to_gguf(tp_gguf_arch arch, const char *hf, char *out, size_t cap,
                                 bool *norm) {
    if (norm)
        *norm = false;
    if (!hf)
        return TP_GGUF_MAP_UNKNOWN;
    /* Multimodal Gemma3 checkpoints: the vision tower and projector are not part
     * of the text model's GGUF (llama.cpp writes them to a separate mmproj). */
    static const char *const kSkipPrefixes[] = {
        "vision_tower.",         "multi_modal_projector.",
        "model.vision_tower.",   "model.multi_modal_projector.",
        "multimodal_projector.", "vision_model.",
    };
    for (size_t i = 0; i < sizeof kSkipPrefixes / sizeof kSkipPrefixes[0]; i++)
        if (starts_with(hf, kSkipPrefixes[i]))
            return TP_GGUF_MAP_SKIP;
    if (strstr(hf, "rotary_emb.inv_freq"))
        return TP_GGUF_MAP_SKIP;
    /* Gemma3ForConditionalGeneration prefixes -> the text model's names. */
    char buf[512];
    const char *name = hf;
    if (starts_with(hf, "language_model.model.") || starts_with(hf, "model.language_model.")) {
        int n = snprintf(buf, sizeof buf, "model.%s", hf + strlen("language_model.model."));
        if (n < 0 || (size_t)n >= sizeof buf)
            return TP_GGUF_MAP_UNKNOWN;
        name = buf;
    } else if (!strcmp(hf, "language_model.lm_head.weight")) {
        name = "lm_head.weight";
    }
    return map_name(arch, name, true, out, cap, norm);
}

tp_gguf_map tp_gguf_name_to_hf(tp_gguf_arch arch, const char *gguf, char *out, size_t cap,
                               bool *norm) {
    return map_name(arch, gguf, false, out, cap, norm);
}

/* ---------------------------------------------------------------- config -> GGUF */

#define KEYBUF 128

static tp_status put_key(tp_gguf_writer *w, const char *arch, const tp_gguf_hkey *k, double v,
                         const tp_json_doc *doc, tp_error *err) {
    char key[KEYBUF];
    snprintf(key, sizeof key, "%s.%s", arch, k->gguf);
    if (k->type == TP_GGUF_UINT32) {
        if (!(v >= 0 && v <= (double)UINT32_MAX) || v != floor(v))
            return tp_fail(err, TP_ERR_FORMAT,
                           "%s: \"%s\" = %g cannot be written as %s (an unsigned 32-bit integer)",
                           doc->path, k->hf, v, key);
        return tp_gguf_set_u32(w, key, (uint32_t)v, err);
    }
    if (!isfinite(v))
        return tp_fail(err, TP_ERR_FORMAT, "%s: \"%s\" is not a finite number", doc->path, k->hf);
    return tp_gguf_set_f32(w, key, (float)v, err);
}

/* Which layers slide, as the family loaders read it (gemma3.c / qwen3.c). */
static tp_status sliding_layers(const tp_json_doc *doc, const cJSON *c, tp_gguf_arch arch,
                                int64_t L, uint8_t *sl, bool *any, tp_error *err) {
    *any = false;
    memset(sl, 0, (size_t)L);
    const cJSON *lt = cJSON_GetObjectItemCaseSensitive(c, "layer_types");
    if (lt && !cJSON_IsNull(lt)) {
        if (!cJSON_IsArray(lt) || cJSON_GetArraySize(lt) != L)
            return tp_fail(err, TP_ERR_FORMAT,
                           "%s: \"layer_types\" must be a list of num_hidden_layers (%lld) strings",
                           doc->path, (long long)L);
        int64_t i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, lt) {
            if (!cJSON_IsString(it))
                return tp_fail(err, TP_ERR_FORMAT, "%s: layer_types[%lld] is not a string",
                               doc->path, (long long)i);
            if (!strcmp(it->valuestring, "sliding_attention"))
                sl[i] = 1;
            else if (strcmp(it->valuestring, "full_attention"))
                return tp_fail(err, TP_ERR_UNSUPPORTED,
                               "%s: layer_types[%lld] = \"%s\" is not supported", doc->path,
                               (long long)i, it->valuestring);
            *any |= sl[i] != 0;
            i++;
        }
        return TP_OK;
    }
    tp_status st;
    if (arch == TP_GGUF_ARCH_GEMMA3) {
        int64_t pattern = 6;
        const char *key = cJSON_GetObjectItemCaseSensitive(c, "sliding_window_pattern")
                              ? "sliding_window_pattern"
                              : "_sliding_window_pattern";
        if ((st = tp_json_int(doc, c, key, 6, &pattern, err)))
            return st;
        if (pattern <= 0)
            return tp_fail(err, TP_ERR_FORMAT, "%s: %s must be > 0", doc->path, key);
        for (int64_t l = 0; l < L; l++) {
            sl[l] = (l + 1) % pattern != 0;
            *any |= sl[l] != 0;
        }
        return TP_OK;
    }
    bool use_sw = false;
    int64_t mwl = L;
    if ((st = tp_json_bool(doc, c, "use_sliding_window", false, &use_sw, err)) ||
        (st = tp_json_int(doc, c, "max_window_layers", L, &mwl, err)))
        return st;
    if (use_sw)
        for (int64_t l = mwl < 0 ? 0 : mwl; l < L; l++) {
            sl[l] = 1;
            *any = true;
        }
    return TP_OK;
}

tp_status tp_gguf_hparams_to_gguf(const tp_json_doc *doc, tp_gguf_writer *w, tp_error *err) {
    if (!doc || !doc->root || !w)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_gguf_hparams_to_gguf: NULL argument");
    tp_gguf_arch arch = tp_gguf_arch_from_config(doc);
    if (arch == TP_GGUF_ARCH_UNKNOWN)
        return tp_fail(err, TP_ERR_UNSUPPORTED,
                       "%s: only Qwen3 and Gemma3 checkpoints can be written as GGUF", doc->path);
    const char *an = tp_gguf_arch_name(arch);
    const cJSON *c = doc->root;
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(c, "text_config");
    if (arch == TP_GGUF_ARCH_GEMMA3 && cJSON_IsObject(tc))
        c = tc;
    tp_status st = tp_gguf_set_str(w, "general.architecture", an, err);
    if (st)
        return st;
    unsigned bit = 1u << arch;
    int64_t L = 0, H = 0, D = 0;
    if ((st = tp_json_req_int(doc, c, "num_hidden_layers", &L, err)) ||
        (st = tp_json_req_int(doc, c, "num_attention_heads", &H, err)) ||
        (st = tp_json_req_int(doc, c, "hidden_size", &D, err)))
        return st;
    if (L <= 0 || L > 4096 || H <= 0 || D <= 0)
        return tp_fail(err, TP_ERR_FORMAT,
                       "%s: num_hidden_layers (1..4096), num_attention_heads and hidden_size "
                       "must be positive",
                       doc->path);
    /* Defaults where the family loaders have them (transformers' config
     * defaults), so the file states every value the model uses. */
    for (size_t i = 0; i < tp_gguf_hkeys_count; i++) {
        const tp_gguf_hkey *k = &tp_gguf_hkeys[i];
        if (!(k->archs & bit))
            continue;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, k->hf);
        double val;
        if (!v || cJSON_IsNull(v)) {
            if (!strcmp(k->hf, "num_key_value_heads"))
                val = arch == TP_GGUF_ARCH_GEMMA3 ? 4 : (double)H;
            else if (!strcmp(k->hf, "head_dim"))
                val = arch == TP_GGUF_ARCH_GEMMA3 ? 256 : (double)(D / H);
            else if (!strcmp(k->hf, "rms_norm_eps"))
                val = 1e-6;
            else if (!strcmp(k->hf, "rope_theta"))
                val = arch == TP_GGUF_ARCH_GEMMA3 ? 1000000.0 : 10000.0;
            else if (!strcmp(k->hf, "rope_local_base_freq"))
                val = 10000.0;
            else if (!strcmp(k->hf, "max_position_embeddings"))
                val = arch == TP_GGUF_ARCH_GEMMA3 ? 131072 : 32768;
            else if (!strcmp(k->hf, "sliding_window"))
                val = 4096;
            else if (!strcmp(k->hf, "num_attention_heads") || !strcmp(k->hf, "hidden_size") ||
                     !strcmp(k->hf, "num_hidden_layers") || !strcmp(k->hf, "intermediate_size"))
                return tp_fail(err, TP_ERR_FORMAT, "%s: missing key \"%s\"", doc->path, k->hf);
            else
                continue; /* optional (final_logit_softcapping) */
        } else if (!cJSON_IsNumber(v)) {
            return tp_fail(err, TP_ERR_FORMAT, "%s: \"%s\" must be a number", doc->path, k->hf);
        } else {
            val = v->valuedouble;
        }
        if (!strcmp(k->hf, "final_logit_softcapping") && val == 0)
            continue;
        if ((st = put_key(w, an, k, val, doc, err)))
            return st;
    }

    /* rope_scaling: linear only (what the decoder implements). */
    char key[KEYBUF];
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(c, "rope_scaling");
    if (rs && !cJSON_IsNull(rs)) {
        if (!cJSON_IsObject(rs))
            return tp_fail(err, TP_ERR_FORMAT, "%s: \"rope_scaling\" must be an object or null",
                           doc->path);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
        if (!cJSON_IsString(t))
            t = cJSON_GetObjectItemCaseSensitive(rs, "type");
        const char *type = cJSON_IsString(t) ? t->valuestring : "(none)";
        if (!strcmp(type, "linear")) {
            double f = 1.0;
            if ((st = tp_json_double(doc, rs, "factor", 1.0, &f, err)))
                return st;
            if (!(f > 0) || !isfinite(f))
                return tp_fail(err, TP_ERR_FORMAT, "%s: rope_scaling.factor must be > 0",
                               doc->path);
            snprintf(key, sizeof key, "%s.rope.scaling.type", an);
            if ((st = tp_gguf_set_str(w, key, "linear", err)))
                return st;
            snprintf(key, sizeof key, "%s.rope.scaling.factor", an);
            if ((st = tp_gguf_set_f32(w, key, (float)f, err)))
                return st;
        } else if (strcmp(type, "default")) {
            return tp_fail(err, TP_ERR_UNSUPPORTED,
                           "%s: rope_scaling type \"%s\" is not supported (only \"linear\")",
                           doc->path, type);
        }
    }

    /* Sliding layers: a per-layer bool array (true = sliding window), the form
     * llama.cpp reads for <arch>.attention.sliding_window_pattern. */
    uint8_t *sl = tp_malloc((size_t)L);
    if (!sl)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    bool any = false;
    st = sliding_layers(doc, c, arch, L, sl, &any, err);
    if (st == TP_OK && (arch == TP_GGUF_ARCH_GEMMA3 || any)) {
        if (arch == TP_GGUF_ARCH_QWEN3) {
            int64_t sw = 0;
            st = tp_json_int(doc, c, "sliding_window", 0, &sw, err);
            if (st == TP_OK && (sw <= 0 || sw > UINT32_MAX))
                st = tp_fail(err, TP_ERR_FORMAT,
                             "%s: use_sliding_window is set but sliding_window is not > 0",
                             doc->path);
            snprintf(key, sizeof key, "%s.attention.sliding_window", an);
            if (st == TP_OK)
                st = tp_gguf_set_u32(w, key, (uint32_t)sw, err);
        }
        snprintf(key, sizeof key, "%s.attention.sliding_window_pattern", an);
        if (st == TP_OK)
            st = tp_gguf_set_arr(w, key, TP_GGUF_BOOL, sl, (uint64_t)L, err);
    }
    tp_free(sl);
    if (st)
        return st;

    if (arch == TP_GGUF_ARCH_GEMMA3) {
        /* Attention scale query_pre_attn_scalar^-0.5 (llama.cpp infers it from
         * the model size; written so that every model states it). */
        double qpas = 256;
        if ((st = tp_json_double(doc, c, "query_pre_attn_scalar", 256.0, &qpas, err)))
            return st;
        if (!(qpas > 0) || !isfinite(qpas))
            return tp_fail(err, TP_ERR_FORMAT, "%s: query_pre_attn_scalar must be > 0", doc->path);
        snprintf(key, sizeof key, "%s.attention.scale", an);
        if ((st = tp_gguf_set_f32(w, key, (float)pow(qpas, -0.5), err)))
            return st;
    }

    /* End-of-sequence ids: every id of config.json eos_token_id (llama.cpp's
     * tokenizer.ggml.eos_token_id holds one; the tokenizer exporter writes it). */
    int64_t *eos = NULL;
    size_t n_eos = 0;
    if ((st = tp_json_int_list(doc, c, "eos_token_id", &eos, &n_eos, err)))
        return st;
    if (n_eos == 0 && c != doc->root &&
        (st = tp_json_int_list(doc, doc->root, "eos_token_id", &eos, &n_eos, err)))
        return st;
    if (n_eos > 0) {
        uint32_t *ids = tp_malloc_array(n_eos, sizeof *ids);
        size_t m = 0;
        if (!ids)
            st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        for (size_t i = 0; ids && i < n_eos; i++)
            if (eos[i] >= 0 && eos[i] <= (int64_t)UINT32_MAX)
                ids[m++] = (uint32_t)eos[i];
        if (ids && m > 0)
            st = tp_gguf_set_arr(w, "tpipe.eos_token_ids", TP_GGUF_UINT32, ids, m, err);
        tp_free(ids);
    }
    tp_free(eos);
    return st;
}
