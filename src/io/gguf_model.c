/*
 * gguf_model.c — the Hugging Face view of a GGUF decoder checkpoint: GGUF
 * metadata -> a config.json object in HF key names, GGUF tensors -> a tensor
 * table with HF names and shapes (tp_st_from_table), so the Qwen3/Gemma3
 * loaders in src/models read a .gguf exactly as they read a model folder.
 *
 * Both directions use the tables of gguf_names.c. Where a GGUF file leaves a
 * value out, the defaults are llama.cpp's (llama-model.cpp load_hparams):
 * head_count_kv = head_count, key_length = embedding_length / head_count,
 * rope.freq_base 10000; Gemma3: every 6th layer global, sliding layers with
 * RoPE base 10000 unscaled, attention scale 1/sqrt(key_length) (the 27B, 62
 * layers: 1/sqrt(embedding_length / head_count)).
 *
 * Shapes: ggml lists dims fastest first (ne[0] = row length), HF/PyTorch
 * slowest first, so the HF shape is ne reversed; the bytes are the same
 * row-major matrix. Neither Qwen3 nor Gemma3 permutes q/k in llama.cpp's
 * converter (their RoPE is the NEOX / rotate-half form HF uses), so q_proj and
 * k_proj rows are used as stored.
 */
#include "io/gguf.h"

#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define KEYBUF 128

static tp_status oom(const tp_gguf *g, tp_error *err) {
    return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "%s: out of memory", tp_gguf_path(g));
}

/* Reads "<arch>.<suffix>" as an integer in [lo, hi]; absent -> def (or an
 * error naming the key when required). */
static tp_status get_dim(const tp_gguf *g, const char *arch, const char *suffix, bool required,
                         int64_t def, int64_t lo, int64_t hi, int64_t *out, tp_error *err) {
    char key[KEYBUF];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (!tp_gguf_find_kv(g, key)) {
        if (required)
            return tp_fail(err, TP_ERR_FORMAT, "%s: missing key '%s'", tp_gguf_path(g), key);
        *out = def;
        return TP_OK;
    }
    tp_status st = tp_gguf_get_int(g, key, def, out, err);
    if (st == TP_OK && (*out < lo || *out > hi))
        st = tp_fail(err, TP_ERR_FORMAT, "%s: key '%s' = %lld is out of range [%lld, %lld]",
                     tp_gguf_path(g), key, (long long)*out, (long long)lo, (long long)hi);
    return st;
}

static tp_status get_real(const tp_gguf *g, const char *arch, const char *suffix, bool required,
                          double def, double *out, tp_error *err) {
    char key[KEYBUF];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (!tp_gguf_find_kv(g, key)) {
        if (required)
            return tp_fail(err, TP_ERR_FORMAT, "%s: missing key '%s'", tp_gguf_path(g), key);
        *out = def;
        return TP_OK;
    }
    tp_status st = tp_gguf_get_float(g, key, def, out, err);
    if (st == TP_OK && !isfinite(*out))
        st = tp_fail(err, TP_ERR_FORMAT, "%s: key '%s' is not finite", tp_gguf_path(g), key);
    return st;
}

static bool add_num(cJSON *o, const char *k, double v) {
    return cJSON_AddNumberToObject(o, k, v) != NULL;
}

/* Appends id to list[0..*n) unless already there. */
static void add_id(int64_t *list, int *n, int cap, int64_t id) {
    if (id < 0)
        return;
    for (int i = 0; i < *n; i++)
        if (list[i] == id)
            return;
    if (*n < cap)
        list[(*n)++] = id;
}

tp_status tp_gguf_hparams_to_config(const tp_gguf *g, cJSON **out, tp_error *err) {
    if (!g || !out)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_gguf_hparams_to_config: NULL argument");
    *out = NULL;
    const char *path = tp_gguf_path(g);
    const char *an = NULL;
    tp_status st = tp_gguf_get_str(g, "general.architecture", NULL, &an, err);
    if (st)
        return st;
    if (!an)
        return tp_fail(err, TP_ERR_FORMAT, "%s: missing key 'general.architecture'", path);
    tp_gguf_arch arch = tp_gguf_arch_from_name(an);
    if (arch == TP_GGUF_ARCH_UNKNOWN)
        return tp_fail(err, TP_ERR_UNSUPPORTED,
                       "%s: general.architecture '%s' is not supported (qwen3, gemma3)", path, an);
    int64_t split = 1;
    if ((st = tp_gguf_get_int(g, "split.count", 1, &split, err)))
        return st;
    if (split > 1)
        return tp_fail(err, TP_ERR_UNSUPPORTED,
                       "%s: split GGUF files (split.count %lld) are not supported; merge them "
                       "first (llama-gguf-split --merge)",
                       path, (long long)split);
    const bool gemma = arch == TP_GGUF_ARCH_GEMMA3;
    const int64_t BIG = (int64_t)1 << 31;
    int64_t L, D, F, H, Hkv, Dk, Dv, ctx, rope_dim;
    if ((st = get_dim(g, an, "block_count", true, 0, 1, 4096, &L, err)) ||
        (st = get_dim(g, an, "embedding_length", true, 0, 1, BIG, &D, err)) ||
        (st = get_dim(g, an, "feed_forward_length", true, 0, 1, BIG, &F, err)) ||
        (st = get_dim(g, an, "attention.head_count", true, 0, 1, 65536, &H, err)) ||
        (st = get_dim(g, an, "attention.head_count_kv", false, H, 1, 65536, &Hkv, err)) ||
        (st = get_dim(g, an, "attention.key_length", false, D / H, 1, 65536, &Dk, err)) ||
        (st = get_dim(g, an, "attention.value_length", false, Dk, 1, 65536, &Dv, err)) ||
        (st = get_dim(g, an, "context_length", true, 0, 1, BIG, &ctx, err)) ||
        (st = get_dim(g, an, "rope.dimension_count", false, Dk, 1, 65536, &rope_dim, err)))
        return st;
    if (Dv != Dk)
        return tp_fail(err, TP_ERR_UNSUPPORTED,
                       "%s: attention.value_length %lld != key_length %lld is not supported", path,
                       (long long)Dv, (long long)Dk);
    if (rope_dim != Dk)
        return tp_fail(err, TP_ERR_UNSUPPORTED,
                       "%s: %s.rope.dimension_count %lld != head dim %lld (partial RoPE) is not "
                       "supported",
                       path, an, (long long)rope_dim, (long long)Dk);
    double eps, theta, theta_swa = 10000.0, softcap = 0.0;
    if ((st = get_real(g, an, "attention.layer_norm_rms_epsilon", true, 0, &eps, err)) ||
        (st = get_real(g, an, "rope.freq_base", false, 10000.0, &theta, err)) ||
        (gemma && (st = get_real(g, an, "rope.freq_base_swa", false, 10000.0, &theta_swa, err))) ||
        (gemma && (st = get_real(g, an, "final_logit_softcapping", false, 0.0, &softcap, err))))
        return st;

    const tp_gguf_tensor *emb = tp_gguf_find_tensor(g, "token_embd.weight");
    if (!emb || emb->n_dims != 2)
        return tp_fail(err, TP_ERR_FORMAT, "%s: missing tensor 'token_embd.weight' (2-D)", path);
    int64_t V = emb->ne[1];

    cJSON *c = cJSON_CreateObject();
    if (!c)
        return oom(g, err);
    cJSON *archs = cJSON_AddArrayToObject(c, "architectures");
    cJSON *aname = cJSON_CreateString(gemma ? "Gemma3ForCausalLM" : "Qwen3ForCausalLM");
    bool ok = archs && aname && cJSON_AddItemToArray(archs, aname);
    if (!ok)
        cJSON_Delete(aname);
    ok = ok && cJSON_AddStringToObject(c, "model_type", gemma ? "gemma3_text" : "qwen3");
    ok = ok && add_num(c, "vocab_size", (double)V) && add_num(c, "hidden_size", (double)D) &&
         add_num(c, "num_hidden_layers", (double)L) && add_num(c, "intermediate_size", (double)F) &&
         add_num(c, "num_attention_heads", (double)H) &&
         add_num(c, "num_key_value_heads", (double)Hkv) && add_num(c, "head_dim", (double)Dk) &&
         add_num(c, "max_position_embeddings", (double)ctx) && add_num(c, "rms_norm_eps", eps) &&
         add_num(c, "rope_theta", theta);
    ok = ok && cJSON_AddBoolToObject(c, "tie_word_embeddings",
                                     tp_gguf_find_tensor(g, "output.weight") == NULL);
    ok = ok && cJSON_AddBoolToObject(c, "attention_bias",
                                     tp_gguf_find_tensor(g, "blk.0.attn_q.bias") != NULL);
    ok = ok && cJSON_AddStringToObject(c, gemma ? "hidden_activation" : "hidden_act",
                                       gemma ? "gelu_pytorch_tanh" : "silu");
    if (!ok) {
        cJSON_Delete(c);
        return oom(g, err);
    }

    /* RoPE scaling: linear only. */
    char key[KEYBUF];
    const char *rtype = NULL;
    double factor = 0;
    snprintf(key, sizeof key, "%s.rope.scaling.type", an);
    if ((st = tp_gguf_get_str(g, key, NULL, &rtype, err)) ||
        (st = get_real(g, an, "rope.scaling.factor", false, 0.0, &factor, err)))
        goto fail;
    if (!rtype && factor == 0.0 &&
        (st = get_real(g, an, "rope.scale_linear", false, 0.0, &factor, err)) == TP_OK &&
        factor != 0.0)
        rtype = "linear"; /* the older key */
    if (st)
        goto fail;
    if (rtype && strcmp(rtype, "none")) {
        if (strcmp(rtype, "linear")) {
            st = tp_fail(err, TP_ERR_UNSUPPORTED,
                         "%s: %s = '%s' is not supported (only 'linear' and 'none')", path, key,
                         rtype);
            goto fail;
        }
        if (!(factor > 0)) {
            st = tp_fail(err, TP_ERR_FORMAT, "%s: %s.rope.scaling.factor must be > 0", path, an);
            goto fail;
        }
        if (factor != 1.0) {
            cJSON *rs = cJSON_AddObjectToObject(c, "rope_scaling");
            if (!rs || !cJSON_AddStringToObject(rs, "rope_type", "linear") ||
                !add_num(rs, "factor", factor)) {
                st = oom(g, err);
                goto fail;
            }
        }
    }

    /* Sliding-window layers -> layer_types. */
    snprintf(key, sizeof key, "%s.attention.sliding_window_pattern", an);
    const tp_gguf_kv *pat = tp_gguf_find_kv(g, key);
    int64_t sw = 0, period = gemma ? 6 : 0;
    if ((st = get_dim(g, an, "attention.sliding_window", gemma, 0, 0, INT32_MAX, &sw, err)))
        goto fail;
    if (pat && pat->type != TP_GGUF_ARRAY) {
        if ((st = tp_gguf_get_int(g, key, 0, &period, err)))
            goto fail;
        if (period < 0) {
            st = tp_fail(err, TP_ERR_FORMAT, "%s: %s must be >= 0", path, key);
            goto fail;
        }
    } else if (pat) {
        if (pat->arr_type != TP_GGUF_BOOL && pat->arr_type != TP_GGUF_UINT8 &&
            pat->arr_type != TP_GGUF_INT32 && pat->arr_type != TP_GGUF_UINT32) {
            st = tp_fail(err, TP_ERR_FORMAT, "%s: %s must be an integer or an array of bools", path,
                         key);
            goto fail;
        }
        if (pat->n != (uint64_t)L) {
            st = tp_fail(err, TP_ERR_FORMAT, "%s: %s has %llu entries for %lld layers", path, key,
                         (unsigned long long)pat->n, (long long)L);
            goto fail;
        }
    }
    bool any_sliding = false;
    cJSON *lt = cJSON_CreateArray();
    if (!lt || !cJSON_AddItemToObject(c, "layer_types", lt)) {
        cJSON_Delete(lt);
        st = oom(g, err);
        goto fail;
    }
    for (int64_t l = 0; l < L; l++) {
        bool sl = pat && pat->type == TP_GGUF_ARRAY ? tp_gguf_arr_int(pat, (uint64_t)l) != 0
                                                    : period > 0 && (l + 1) % period != 0;
        any_sliding |= sl;
        cJSON *s = cJSON_CreateString(sl ? "sliding_attention" : "full_attention");
        if (!s || !cJSON_AddItemToArray(lt, s)) {
            cJSON_Delete(s);
            st = oom(g, err);
            goto fail;
        }
    }
    if (any_sliding && sw <= 0) {
        st = tp_fail(err, TP_ERR_FORMAT,
                     "%s: layers slide but %s.attention.sliding_window is not > 0", path, an);
        goto fail;
    }
    if (any_sliding || gemma) {
        if (!add_num(c, "sliding_window", (double)(sw > 0 ? sw : 4096)) ||
            (!gemma && !cJSON_AddBoolToObject(c, "use_sliding_window", true))) {
            st = oom(g, err);
            goto fail;
        }
    }

    if (gemma) {
        /* Attention scale: attention.scale = query_pre_attn_scalar^-0.5 when the
         * file states it (written by tpipe); recover the scalar so that gemma3.c
         * computes the very same float (real models use integers). */
        double qpas;
        snprintf(key, sizeof key, "%s.attention.scale", an);
        if (tp_gguf_find_kv(g, key)) {
            double s;
            if ((st = tp_gguf_get_float(g, key, 0, &s, err)))
                goto fail;
            if (!(s > 0) || !isfinite(s)) {
                st = tp_fail(err, TP_ERR_FORMAT, "%s: %s must be > 0", path, key);
                goto fail;
            }
            qpas = nearbyint(1.0 / (s * s));
            if (!(qpas > 0) || (float)pow(qpas, -0.5) != (float)s)
                qpas = 1.0 / (s * s);
        } else {
            qpas = L == 62 ? (double)(D / H) : (double)Dk;
        }
        if (!add_num(c, "query_pre_attn_scalar", qpas) ||
            !add_num(c, "rope_local_base_freq", theta_swa) ||
            (softcap > 0 && !add_num(c, "final_logit_softcapping", softcap))) {
            st = oom(g, err);
            goto fail;
        }
    }

    /* Special ids. */
    int64_t ids[16];
    int n_ids = 0;
    const tp_gguf_kv *el = NULL;
    if ((st = tp_gguf_get_arr(g, "tpipe.eos_token_ids", TP_GGUF_TYPE_COUNT, &el, err)))
        goto fail;
    for (uint64_t i = 0; el && i < el->n; i++)
        add_id(ids, &n_ids, 16, tp_gguf_arr_int(el, i));
    static const char *const kEos[] = {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                                       "tokenizer.ggml.eom_token_id"};
    for (size_t i = 0; i < 3; i++) {
        int64_t id = -1;
        if ((st = tp_gguf_get_int(g, kEos[i], -1, &id, err)))
            goto fail;
        add_id(ids, &n_ids, 16, id);
    }
    /* Like llama.cpp's vocabulary loader, tokens whose text marks an end of
     * generation also end it (a llama.cpp-made Qwen3 file states only
     * <|im_end|> as eos; the HF generation_config also stops on <|endoftext|>). */
    static const char *const kEog[] = {"<|im_end|>", "<|endoftext|>", "<end_of_turn>", "<|eot_id|>",
                                       "<|eom_id|>", "<|end|>",       "<EOT>"};
    const tp_gguf_kv *toks = tp_gguf_find_kv(g, "tokenizer.ggml.tokens");
    if (toks && toks->type == TP_GGUF_ARRAY && toks->arr_type == TP_GGUF_STRING) {
        for (uint64_t i = 0; i < toks->n && i < (uint64_t)INT32_MAX; i++) {
            size_t tl;
            const char *tt = tp_gguf_arr_str(toks, i, &tl);
            if (tl < 5 || tl > 13 || tt[0] != '<')
                continue;
            for (size_t k = 0; k < sizeof kEog / sizeof kEog[0]; k++)
                if (tl == strlen(kEog[k]) && !memcmp(tt, kEog[k], tl))
                    add_id(ids, &n_ids, 16, (int64_t)i);
        }
    }
    int64_t bos = -1;
    if ((st = tp_gguf_get_int(g, "tokenizer.ggml.bos_token_id", -1, &bos, err)))
        goto fail;
    if (bos >= 0 && !add_num(c, "bos_token_id", (double)bos)) {
        st = oom(g, err);
        goto fail;
    }
    if (n_ids > 0) {
        cJSON *e = cJSON_AddArrayToObject(c, "eos_token_id");
        for (int i = 0; e && i < n_ids; i++) {
            cJSON *x = cJSON_CreateNumber((double)ids[i]);
            if (!x || !cJSON_AddItemToArray(e, x)) {
                cJSON_Delete(x);
                e = NULL;
            }
        }
        if (!e) {
            st = oom(g, err);
            goto fail;
        }
    }
    *out = c;
    return TP_OK;
fail:
    cJSON_Delete(c);
    return st;
}

/* ---------------------------------------------------------------- tensors */

/* The tensors an architecture needs (table rows, less output.weight and biases). */
static tp_status check_required(const tp_gguf *g, tp_gguf_arch arch, int64_t L, tp_error *err) {
    unsigned bit = 1u << arch;
    for (size_t i = 0; i < tp_gguf_names_count; i++) {
        const tp_gguf_name *e = &tp_gguf_names[i];
        if (!(e->archs & bit) || !strcmp(e->gguf, "output.weight") || strstr(e->gguf, ".bias"))
            continue;
        const char *pd = strstr(e->gguf, "%d");
        for (int64_t l = 0; l < (pd ? L : 1); l++) {
            char name[128];
            if (pd)
                snprintf(name, sizeof name, "%.*s%lld%s", (int)(pd - e->gguf), e->gguf,
                         (long long)l, pd + 2);
            else
                snprintf(name, sizeof name, "%s", e->gguf);
            if (!tp_gguf_find_tensor(g, name))
                return tp_fail(err, TP_ERR_FORMAT, "%s: missing tensor '%s' (%s)", tp_gguf_path(g),
                               name, tp_gguf_arch_name(arch));
        }
    }
    return TP_OK;
}

tp_status tp_gguf_open_hf(const tp_gguf *g, tp_json_doc *config, tp_st_model **st_out,
                          bool *norm_plus_one_stored, tp_error *err) {
    if (!g || !config || !st_out || !norm_plus_one_stored)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_gguf_open_hf: NULL argument");
    memset(config, 0, sizeof *config);
    *st_out = NULL;
    *norm_plus_one_stored = false;
    cJSON *c = NULL;
    tp_status st = tp_gguf_hparams_to_config(g, &c, err);
    if (st)
        return st;
    const char *an = NULL;
    tp_gguf_get_str(g, "general.architecture", NULL, &an, NULL);
    tp_gguf_arch arch = tp_gguf_arch_from_name(an);
    int64_t L = (int64_t)cJSON_GetObjectItemCaseSensitive(c, "num_hidden_layers")->valuedouble;
    if ((st = check_required(g, arch, L, err))) {
        cJSON_Delete(c);
        return st;
    }
    config->root = c;
    config->path = tp_strdup(tp_gguf_path(g));
    size_t n = tp_gguf_tensor_count(g), m = 0;
    tp_st_tensor *tab = tp_calloc(n ? n : 1, sizeof *tab);
    char *names = tp_malloc_array(n ? n : 1, 256);
    if (!config->path || !tab || !names) {
        tp_free(tab);
        tp_free(names);
        tp_json_free(config);
        return oom(g, err);
    }
    for (size_t i = 0; i < n; i++) {
        const tp_gguf_tensor *t = tp_gguf_tensor_at(g, i);
        char *hf = names + 256 * m;
        if (tp_gguf_name_to_hf(arch, t->name, hf, 256, NULL) != TP_GGUF_MAP_OK)
            continue; /* not part of the text model tpipe runs (e.g. rope_freqs) */
        tp_st_tensor *o = &tab[m++];
        o->name = hf;
        o->dtype = t->dtype;
        o->n_dims = t->n_dims;
        for (int d = 0; d < t->n_dims; d++)
            o->shape[d] = t->ne[t->n_dims - 1 - d];
        o->n_elems = t->n_elems;
        o->data = t->data;
        o->n_bytes = t->n_bytes;
    }
    st = tp_st_from_table(tp_gguf_path(g), tab, m, st_out, err);
    tp_free(tab);
    tp_free(names);
    if (st) {
        tp_json_free(config);
        return st;
    }
    *norm_plus_one_stored = tp_gguf_norm_shift(arch) != 0.0f;
    return TP_OK;
}

/* ---------------------------------------------------------------- paths */

static bool ends_with_ci(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    if (n < k)
        return false;
    for (size_t i = 0; i < k; i++)
        if (tolower((unsigned char)s[n - k + i]) != tolower((unsigned char)suffix[i]))
            return false;
    return true;
}

bool tp_gguf_checkpoint_path(const char *path, char **out) {
    if (out)
        *out = NULL;
    if (!path || !out)
        return false;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return false;
    if (S_ISREG(sb.st_mode)) {
        if (!ends_with_ci(path, ".gguf"))
            return false;
        *out = tp_strdup(path);
        return *out != NULL;
    }
    if (!S_ISDIR(sb.st_mode))
        return false;
    DIR *d = opendir(path);
    if (!d)
        return false;
    char *found = NULL;
    int n_gguf = 0, n_st = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (ends_with_ci(e->d_name, ".safetensors")) {
            n_st++;
        } else if (ends_with_ci(e->d_name, ".gguf")) {
            char *p = tp_path_join(path, e->d_name);
            struct stat fs;
            if (p && stat(p, &fs) == 0 && S_ISREG(fs.st_mode)) {
                n_gguf++;
                tp_free(found);
                found = p;
            } else {
                tp_free(p);
            }
        }
    }
    closedir(d);
    if (n_gguf == 1 && n_st == 0) {
        *out = found;
        return true;
    }
    tp_free(found);
    return false;
}
