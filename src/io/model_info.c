/*
 * model_info.c — tp_model_info_get: what a checkpoint is (architecture, type,
 * dtype, size, dimensions) from config.json and the safetensors headers only.
 *
 * Nothing here reads weight data: tp_st_open maps the files and parses their
 * headers, so this is cheap even for multi-GB checkpoints.
 *
 * Multimodal wrappers (Gemma3ForConditionalGeneration) keep the language
 * model's settings in "text_config": dimensions and model_type are taken from
 * there when present, falling back to the top level.
 *
 * A GGUF checkpoint (a .gguf file, or a folder holding exactly one) is
 * described from its metadata and tensor infos (src/io/gguf.h): the config
 * llama.cpp's keys map to, every stored tensor counted.
 */
#include "io/config.h"
#include "io/gguf.h"
#include "io/resolve.h"
#include "io/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void copy_str(char *dst, size_t cap, const char *src) {
    snprintf(dst, cap, "%s", src ? src : "");
}

static const char *torch_name(tp_dtype t) {
    switch (t) {
    case TP_DTYPE_F32:
        return "float32";
    case TP_DTYPE_F16:
        return "float16";
    case TP_DTYPE_BF16:
        return "bfloat16";
    case TP_DTYPE_F64:
        return "float64";
    default:
        return tp_dtype_name(t);
    }
}

/* An integer dimension: text_config first (when there), else the top level. */
static tp_status dim(const tp_json_doc *doc, const cJSON *text, const char *key, int64_t *out,
                     tp_error *err) {
    *out = 0;
    if (text && cJSON_GetObjectItemCaseSensitive(text, key))
        return tp_json_int(doc, text, key, 0, out, err);
    return tp_json_int(doc, doc->root, key, 0, out, err);
}

/* The tensor whose name ends with `suffix` (first in name order), or NULL. */
static const tp_st_tensor *find_suffix(const tp_st_model *m, const char *suffix) {
    size_t k = strlen(suffix);
    for (size_t i = 0; i < tp_st_count(m); i++) {
        const tp_st_tensor *t = tp_st_at(m, i);
        size_t n = strlen(t->name);
        if (n >= k && strcmp(t->name + n - k, suffix) == 0 && (n == k || t->name[n - k - 1] == '.'))
            return t;
    }
    return NULL;
}

static bool same_shape(const tp_st_tensor *a, const tp_st_tensor *b) {
    if (a->n_dims != b->n_dims || a->dtype != b->dtype)
        return false;
    for (int i = 0; i < a->n_dims; i++)
        if (a->shape[i] != b->shape[i])
            return false;
    return true;
}

static tp_status gguf_info(const char *path, tp_model_info *info, tp_error *err) {
    tp_gguf *g = NULL;
    cJSON *c = NULL;
    tp_status st = tp_gguf_open(path, &g, err);
    if (st == TP_OK)
        st = tp_gguf_hparams_to_config(g, &c, err);
    if (st != TP_OK) {
        tp_gguf_close(g);
        return st;
    }
    const cJSON *a0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(c, "architectures"), 0);
    copy_str(info->architecture, sizeof info->architecture,
             cJSON_IsString(a0) ? a0->valuestring : "");
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(c, "model_type");
    copy_str(info->model_type, sizeof info->model_type, cJSON_IsString(mt) ? mt->valuestring : "");
    info->context_length = (int64_t)cJSON_GetNumberValue(
        cJSON_GetObjectItemCaseSensitive(c, "max_position_embeddings"));
    info->vocab_size =
        (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(c, "vocab_size"));
    info->hidden_size =
        (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(c, "hidden_size"));
    info->n_layers =
        (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(c, "num_hidden_layers"));
    cJSON_Delete(c);
    /* dtypes by parameter count; the quantized dtypes follow the plain ones */
    uint64_t per_dtype[TP_DTYPE_Q6_K + 1] = {0};
    for (size_t i = 0; i < tp_gguf_tensor_count(g); i++) {
        const tp_gguf_tensor *t = tp_gguf_tensor_at(g, i);
        info->weights_bytes += t->n_bytes;
        info->n_params += t->n_elems;
        per_dtype[t->dtype] += (uint64_t)t->n_elems;
    }
    info->n_tensors = (int64_t)tp_gguf_tensor_count(g);
    info->n_files = 1;
    int best = -1;
    for (int t = 0; t <= TP_DTYPE_Q6_K; t++)
        if (per_dtype[t] > 0 && (best < 0 || per_dtype[t] > per_dtype[best]))
            best = t;
    if (best >= 0) {
        copy_str(info->weights_dtype, sizeof info->weights_dtype, tp_dtype_name((tp_dtype)best));
        copy_str(info->dtype, sizeof info->dtype, torch_name((tp_dtype)best));
    }
    tp_gguf_close(g);
    return TP_OK;
}

tp_status tp_model_info_get(const char *id_or_path, tp_model_info *info, tp_error *err) {
    if (!info)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_model_info_get: info is NULL");
    memset(info, 0, sizeof *info);
    if (!id_or_path)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_model_info_get: id_or_path is NULL");
    char *gguf = NULL;
    if (tp_gguf_checkpoint_path(id_or_path, &gguf)) {
        tp_status gs = gguf_info(gguf, info, err);
        tp_free(gguf);
        if (gs != TP_OK)
            memset(info, 0, sizeof *info);
        return gs;
    }

    char *dir = NULL, *cfg_path = NULL;
    tp_json_doc doc = {0};
    tp_st_model *m = NULL;
    tp_status st = tp_resolve_local(id_or_path, &dir, err);
    if (st != TP_OK)
        return st;
    cfg_path = tp_path_join(dir, "config.json");
    if (!cfg_path) {
        st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    st = tp_json_load(cfg_path, &doc, err);
    if (st != TP_OK)
        goto done;
    if (!cJSON_IsObject(doc.root)) {
        st = tp_fail(err, TP_ERR_FORMAT, "%s: not a JSON object", cfg_path);
        goto done;
    }
    const cJSON *root = doc.root;

    /* architecture */
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    if (archs && !cJSON_IsNull(archs)) {
        const cJSON *a0 = cJSON_IsArray(archs) ? cJSON_GetArrayItem(archs, 0) : NULL;
        if (!cJSON_IsString(a0)) {
            st = tp_fail(err, TP_ERR_FORMAT,
                         "%s: key 'architectures': expected a list of class names", cfg_path);
            goto done;
        }
        copy_str(info->architecture, sizeof info->architecture, a0->valuestring);
    }

    const cJSON *text = NULL;
    st = tp_json_object(&doc, root, "text_config", &text, err);
    if (st != TP_OK)
        goto done;

    const char *mt = NULL;
    if (text && cJSON_GetObjectItemCaseSensitive(text, "model_type"))
        st = tp_json_string(&doc, text, "model_type", NULL, &mt, err);
    else
        st = tp_json_string(&doc, root, "model_type", NULL, &mt, err);
    if (st != TP_OK)
        goto done;
    copy_str(info->model_type, sizeof info->model_type, mt);

    const char *dt = NULL;
    st = tp_json_string(&doc, root, "torch_dtype", NULL, &dt, err);
    if (st == TP_OK && !dt) /* newer transformers write "dtype" */
        st = tp_json_string(&doc, root, "dtype", NULL, &dt, err);
    if (st == TP_OK && !dt && text)
        st = tp_json_string(&doc, text, "torch_dtype", NULL, &dt, err);
    if (st != TP_OK)
        goto done;

    if ((st = dim(&doc, text, "max_position_embeddings", &info->context_length, err)) ||
        (st = dim(&doc, text, "vocab_size", &info->vocab_size, err)) ||
        (st = dim(&doc, text, "hidden_size", &info->hidden_size, err)) ||
        (st = dim(&doc, text, "num_hidden_layers", &info->n_layers, err)))
        goto done;

    /* tie_word_embeddings: transformers' default is true, except Qwen's configs */
    bool tied_default = strncmp(info->model_type, "qwen", 4) != 0;
    bool tied = tied_default;
    if (cJSON_GetObjectItemCaseSensitive(root, "tie_word_embeddings"))
        st = tp_json_bool(&doc, root, "tie_word_embeddings", tied_default, &tied, err);
    else if (text)
        st = tp_json_bool(&doc, text, "tie_word_embeddings", tied_default, &tied, err);
    if (st != TP_OK)
        goto done;

    /* weights: headers only */
    st = tp_st_open(dir, &m, err);
    if (st != TP_OK)
        goto done;
    uint64_t per_dtype[TP_DTYPE_COUNT] = {0};
    const tp_st_tensor *lm_head = tp_st_find(m, "lm_head.weight");
    if (!lm_head)
        lm_head = find_suffix(m, "lm_head.weight");
    const tp_st_tensor *embed = find_suffix(m, "embed_tokens.weight");
    /* a tied lm_head stored as a copy (e.g. Qwen3-0.6B) is one parameter set */
    const tp_st_tensor *skip =
        tied && lm_head && embed && same_shape(lm_head, embed) ? lm_head : NULL;
    for (size_t i = 0; i < tp_st_count(m); i++) {
        const tp_st_tensor *t = tp_st_at(m, i);
        info->weights_bytes += t->n_bytes;
        if (t == skip)
            continue;
        info->n_params += t->n_elems;
        per_dtype[t->dtype] += (uint64_t)t->n_elems;
    }
    info->n_tensors = (int64_t)tp_st_count(m);
    info->n_files = (int)tp_st_file_count(m);
    int best = -1;
    for (int t = 0; t < TP_DTYPE_COUNT; t++)
        if (per_dtype[t] > 0 && (best < 0 || per_dtype[t] > per_dtype[best]))
            best = t;
    if (best >= 0)
        copy_str(info->weights_dtype, sizeof info->weights_dtype, tp_dtype_name((tp_dtype)best));
    copy_str(info->dtype, sizeof info->dtype,
             dt          ? dt
             : best >= 0 ? torch_name((tp_dtype)best)
                         : "");
    st = TP_OK;
done:
    if (st != TP_OK)
        memset(info, 0, sizeof *info);
    tp_st_close(m);
    tp_json_free(&doc);
    tp_free(cfg_path);
    tp_free(dir);
    return st;
}
