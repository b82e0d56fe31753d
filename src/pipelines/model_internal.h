/*
 * model_internal.h — the inside of the public tp_model handle (internal to the
 * pipelines layer; shared by model.c, the encoder pipelines and text
 * generation).
 *
 * A tp_model is immutable after tp_model_load, except for the thread pool,
 * which calls borrow one at a time under `lock` (a tp_pool is not re-entrant).
 * Every call allocates its own scratch, so concurrent calls on one model are
 * safe and give the same results as sequential ones.
 */
#ifndef TP_MODEL_INTERNAL_H
#define TP_MODEL_INTERNAL_H

#include "core/core.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "models/model.h"
#include "pipelines/gguf_tok.h"
#include "tokenizer/tokenizer.h"

#include <pthread.h>

#define TP_DEFAULT_MEMORY_BUDGET ((size_t)256 << 20)

struct tp_model {
    char *dir;            /* the resolved model folder                          */
    tp_json_doc config;   /* config.json                                        */
    tp_st_model *st;      /* the mapped weights                                 */
    struct tp_gguf *gguf; /* the GGUF checkpoint (st points into it), or NULL */
    char *gguf_path;      /* its path, or NULL                                */
    tp_net *net;          /* the family's network                               */
    tp_tokenizer *tok;    /* tokenizer.json + tokenizer_config.json             */
    tp_model_task task;
    tp_model_params params;  /* as given (defaults filled in)                   */
    size_t memory_budget;    /* bytes per micro-batch (resolved)                */
    size_t max_batch_tokens; /* tokens per micro-batch (resolved)              */
    size_t max_length;       /* longest input in tokens (resolved)              */

    /* ---- classification (config.json) ---- */
    size_t num_labels;
    char **id2label;         /* (num_labels) names; "LABEL_i" when absent      */
    bool multi_label_config; /* problem_type == "multi_label_classification"   */
    int32_t entail_id;       /* label2id entry starting with "entail", or -1   */
    int32_t contra_id;       /* Hugging Face's rule: 0, or last when entail is 0 */

    /* ---- special tokens ---- */
    int32_t mask_id; /* -1 when the tokenizer has no mask token */

    /* ---- inference state: one call at a time ---- */
    pthread_mutex_t lock;
    tp_pool *pool;

    /* ---- decoders (issue #7) add their members below ---- */
    struct tp_textgen *gen; /* generation_config.json defaults + chat template
                               (text_generation.c); NULL for encoders          */
};

/* Text generation state of a decoder model (text_generation.c): called by
 * tp_model_load once the net and tokenizer are loaded, and by tp_model_free. */
tp_status tp_textgen_init(tp_model *m, tp_error *err);
void tp_textgen_free(tp_model *m);

/* Borrows the model's thread pool for one call (blocks while another call
 * holds it); release with tp_model_unlock. */
tp_pool *tp_model_lock(tp_model *m);
void tp_model_unlock(tp_model *m);

/* Resolves the shared encoder input options against the model. */
typedef struct tp_enc_input {
    size_t max_length;
    bool truncation;
} tp_enc_input;
tp_status tp_enc_input_resolve(const tp_model *m, const tp_encoder_input_params *p,
                               tp_enc_input *out, tp_error *err);

#endif /* TP_MODEL_INTERNAL_H */
