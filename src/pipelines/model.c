/*
 * model.c — tp_model_load / tp_model_free and the model getters of the public
 * encoder section: resolve the folder, read config.json, map the weights, pick
 * the family from the registry, load the tokenizer, and read what the
 * pipelines need from the config (labels, entailment id, limits).
 */
#include "pipelines/model_internal.h"

#include "batch/scheduler.h"
#include "io/gguf.h"
#include "io/resolve.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tp_model_params tp_model_default_params(void) {
    tp_model_params p;
    memset(&p, 0, sizeof p);
    p.n_threads = 0;
    p.precision = TP_PRECISION_F32;
    p.max_batch_tokens = 0;
    p.memory_budget = 0;
    return p;
}

tp_pool *tp_model_lock(tp_model *m) {
    pthread_mutex_lock(&m->lock);
    return m->pool;
}

void tp_model_unlock(tp_model *m) {
    pthread_mutex_unlock(&m->lock);
}

void tp_model_free(tp_model *m) {
    if (!m)
        return;
    tp_textgen_free(m);
    tp_pool_destroy(m->pool);
    pthread_mutex_destroy(&m->lock);
    tp_tok_free(m->tok);
    tp_net_free(m->net);
    tp_st_close(m->st);
    tp_gguf_close(m->gguf); /* after the tensor table that points into it */
    tp_free(m->gguf_path);
    tp_json_free(&m->config);
    if (m->id2label) {
        for (size_t i = 0; i < m->num_labels; i++)
            tp_free(m->id2label[i]);
        tp_free(m->id2label);
    }
    tp_free(m->dir);
    tp_free(m);
}

/* Reads id2label / label2id / problem_type for classification models. */
static tp_status load_labels(tp_model *m, tp_error *err) {
    const tp_json_doc *cfg = &m->config;
    size_t L = (size_t)m->net->num_labels;
    m->num_labels = L;
    m->id2label = tp_calloc(L ? L : 1, sizeof *m->id2label);
    if (!m->id2label)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    const cJSON *id2label = cJSON_GetObjectItemCaseSensitive(cfg->root, "id2label");
    if (id2label && !cJSON_IsNull(id2label)) {
        if (!cJSON_IsObject(id2label))
            return tp_fail(err, TP_ERR_FORMAT, "%s: id2label must be an object", cfg->path);
        if ((size_t)cJSON_GetArraySize(id2label) != L)
            return tp_fail(err, TP_ERR_FORMAT,
                           "%s: id2label has %d labels but classifier.weight has %zu rows",
                           cfg->path, cJSON_GetArraySize(id2label), L);
        const cJSON *e;
        cJSON_ArrayForEach(e, id2label) {
            char *end = NULL;
            long id = strtol(e->string, &end, 10);
            if (!*e->string || *end || id < 0 || (size_t)id >= L || !cJSON_IsString(e))
                return tp_fail(err, TP_ERR_FORMAT,
                               "%s: id2label entry \"%s\" must map an id in [0, %zu) to a string",
                               cfg->path, e->string, L);
            if (m->id2label[id])
                return tp_fail(err, TP_ERR_FORMAT, "%s: id2label lists id %ld twice", cfg->path,
                               id);
            m->id2label[id] = tp_strdup(e->valuestring);
            if (!m->id2label[id])
                return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        }
    }
    for (size_t i = 0; i < L; i++) {
        if (m->id2label[i])
            continue;
        char name[32];
        snprintf(name, sizeof name, "LABEL_%zu", i);
        if (!(m->id2label[i] = tp_strdup(name)))
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    }
    const char *problem = NULL;
    tp_status s = tp_json_string(cfg, cfg->root, "problem_type", NULL, &problem, err);
    if (s != TP_OK)
        return s;
    m->multi_label_config = problem && !strcmp(problem, "multi_label_classification");

    /* Zero-shot: Hugging Face's ZeroShotClassificationPipeline.entailment_id
     * takes the first label2id entry whose name starts with "entail"
     * (case-insensitive); contradiction is 0, or the last class when
     * entailment is 0. */
    m->entail_id = -1;
    const cJSON *label2id = cJSON_GetObjectItemCaseSensitive(cfg->root, "label2id");
    const cJSON *e;
    cJSON_ArrayForEach(e, label2id) {
        if (strncasecmp(e->string, "entail", 6) == 0 && cJSON_IsNumber(e) && e->valuedouble >= 0 &&
            e->valuedouble < (double)L) {
            m->entail_id = (int32_t)e->valueint;
            break;
        }
    }
    m->contra_id = m->entail_id == 0 ? (int32_t)L - 1 : 0;
    return TP_OK;
}

/* The tokenizer: tokenizer.json in the model folder; for a GGUF checkpoint
 * without one beside it, the file's tokenizer.ggml.* metadata. */
static tp_status load_tokenizer(tp_model *m, tp_error *err) {
    if (!m->gguf)
        return tp_tok_load(m->dir, &m->tok, err);
    char *tj = tp_path_join(m->dir, "tokenizer.json");
    if (!tj)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    bool beside = tp_file_exists(tj);
    tp_free(tj);
    if (beside)
        return tp_tok_load(m->dir, &m->tok, err);
    return tp_gguf_load_tokenizer(m->gguf, &m->tok, err);
}

tp_status tp_model_load(const char *id_or_path, const tp_model_params *params, tp_model **out,
                        tp_error *err) {
    if (!id_or_path || !out)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_model_load: NULL argument");
    *out = NULL;
    tp_model_params p = params ? *params : tp_model_default_params();
    if (p.precision != TP_PRECISION_F32 && p.precision != TP_PRECISION_BF16)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_model_load: unknown precision %d",
                       (int)p.precision);
    tp_model *m = tp_calloc(1, sizeof *m);
    if (!m)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    pthread_mutex_init(&m->lock, NULL);
    m->params = p;
    tp_status s;
    /* A .gguf file (or a folder with exactly one) is opened as it is; anything
     * else is a Hugging Face folder or an id in the local cache. */
    char *where = NULL;
    if (!tp_gguf_checkpoint_path(id_or_path, &where) &&
        (s = tp_resolve_local(id_or_path, &where, err)) != TP_OK)
        goto fail;
    tp_net_files files;
    s = tp_net_files_open(where, &files, err);
    tp_free(where);
    if (s != TP_OK)
        goto fail;
    m->dir = files.dir;
    m->config = files.config;
    m->st = files.st;
    m->gguf = files.gguf;
    m->gguf_path = files.gguf_path;
    tp_compute compute = TP_COMPUTE_F32;
    if (p.precision == TP_PRECISION_BF16) {
        if (tp_cpu_detect().avx512_bf16) {
            compute = TP_COMPUTE_BF16;
        } else {
            tp_log(TP_LOG_WARN,
                   "precision bf16 needs AVX512_BF16, which this CPU lacks: using f32");
        }
    }
    tp_net_load_args args = tp_net_files_args(&files, compute);
    if ((s = tp_net_load(&args, &m->net, err)) != TP_OK)
        goto fail;
    if ((s = load_tokenizer(m, err)) != TP_OK)
        goto fail;
    const tp_tok_info *ti = tp_tok_get_info(m->tok);
    m->mask_id = ti->mask.id;

    if (m->net->kind == TP_NET_DECODER) {
        m->task = TP_TASK_TEXT_GENERATION;
        if ((s = tp_textgen_init(m, err)) != TP_OK)
            goto fail;
    } else if (m->net->head == TP_ENC_HEAD_MLM) {
        m->task = TP_TASK_FILL_MASK;
    } else if (m->net->head == TP_ENC_HEAD_CLASSIFY) {
        m->task = TP_TASK_TEXT_CLASSIFICATION;
        if ((s = load_labels(m, err)) != TP_OK)
            goto fail;
    } else {
        m->task = TP_TASK_NONE;
    }

    m->max_length = m->net->max_positions > 0 ? (size_t)m->net->max_positions : SIZE_MAX;
    if (ti->model_max_length > 0 && (size_t)ti->model_max_length < m->max_length)
        m->max_length = (size_t)ti->model_max_length;
    m->memory_budget = p.memory_budget ? p.memory_budget : TP_DEFAULT_MEMORY_BUDGET;
    m->max_batch_tokens = p.max_batch_tokens;
    if (!m->max_batch_tokens)
        m->max_batch_tokens =
            tp_default_batch_tokens(m->memory_budget, m->net->act_bytes_per_token);
    if (!m->max_batch_tokens)
        m->max_batch_tokens = 1;

    m->pool = tp_pool_create(p.n_threads, err);
    if (!m->pool) {
        s = err ? err->status : TP_ERR_OUT_OF_MEMORY;
        if (s == TP_OK)
            s = TP_ERR_OUT_OF_MEMORY;
        goto fail;
    }
    *out = m;
    return TP_OK;
fail:
    tp_model_free(m);
    return s;
}

tp_model_task tp_model_get_task(const tp_model *m) {
    return m ? m->task : TP_TASK_NONE;
}

size_t tp_model_num_labels(const tp_model *m) {
    return m ? m->num_labels : 0;
}

const char *tp_model_label(const tp_model *m, size_t i) {
    return m && i < m->num_labels ? m->id2label[i] : NULL;
}

size_t tp_model_max_length(const tp_model *m) {
    return m ? m->max_length : 0;
}

const tp_tokenizer *tp_model_tokenizer(const tp_model *m) {
    return m ? m->tok : NULL;
}

tp_status tp_enc_input_resolve(const tp_model *m, const tp_encoder_input_params *p,
                               tp_enc_input *out, tp_error *err) {
    out->truncation = p ? p->truncation : true;
    out->max_length = p && p->max_length ? p->max_length : m->max_length;
    if (out->max_length > m->max_length)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT,
                       "max_length %zu is more than the model takes (%zu tokens)", out->max_length,
                       m->max_length);
    if (out->max_length < 2)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT,
                       "max_length %zu leaves no room for the special tokens", out->max_length);
    return TP_OK;
}
