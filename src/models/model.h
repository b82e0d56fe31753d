/*
 * model.h — the internal network interface between model families and the
 * layers above them (batch scheduler, pipelines, golden_check).
 *
 * One file per family (modernbert.c, qwen3.c, gemma3.c) defines a tp_family
 * table entry; registry.c lists them, and tp_family_find() picks the entry whose
 * model_types / architectures match config.json (llama.cpp style: a new family
 * is a new file plus one line in registry.c, not a switch in ten places).
 *
 * A family's load() builds a tp_net: the common description below plus a
 * private implementation behind `impl`. A tp_net is immutable after load and
 * may be used from several threads at once; every forward call receives its own
 * scratch arena and thread pool.
 *
 * Encoders (kind TP_NET_ENCODER) run a packed batch: all tokens of all
 * sequences in one (n_tokens, hidden) matrix, sequence s owning rows
 * [cu_seqlens[s], cu_seqlens[s+1]). No padding is ever computed. The heads run
 * only where asked: the vocabulary projection at the listed rows (mask
 * positions), the classifier on one pooled row per sequence.
 *
 * Decoders (kind TP_NET_DECODER) are described by the decoder part (issue #7):
 * it adds its members to tp_net and its ops table below.
 */
#ifndef TP_MODEL_H
#define TP_MODEL_H

#include "core/core.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "tensor/tensor.h"

typedef enum tp_net_kind { TP_NET_ENCODER = 0, TP_NET_DECODER = 1 } tp_net_kind;

/* What an encoder checkpoint carries on top of the backbone. */
typedef enum tp_enc_head {
    TP_ENC_HEAD_NONE = 0, /* backbone only (hidden states)                 */
    TP_ENC_HEAD_MLM,      /* masked-LM head: logits over the vocabulary    */
    TP_ENC_HEAD_CLASSIFY, /* sequence classification: num_labels logits    */
} tp_enc_head;

typedef enum tp_enc_pooling { TP_POOL_CLS = 0, TP_POOL_MEAN = 1 } tp_enc_pooling;

/* One packed micro-batch for an encoder forward. Inputs are read-only; the
 * outputs the caller wants are non-NULL and sized as commented. */
typedef struct tp_enc_batch {
    const int32_t *ids;        /* (n_tokens) token ids, all sequences back to back */
    const int32_t *cu_seqlens; /* (n_seqs + 1): 0, len0, len0+len1, ..., n_tokens  */
    size_t n_seqs;
    size_t n_tokens;
    /* Masked LM: the packed rows to project on the vocabulary. */
    const int32_t *mlm_rows; /* (n_mlm_rows), each in [0, n_tokens)            */
    size_t n_mlm_rows;
    float *mlm_logits; /* (n_mlm_rows, vocab_size) out, or NULL              */
    /* Classification: one row of logits per sequence. */
    float *cls_logits; /* (n_seqs, num_labels) out, or NULL                  */
    /* Final hidden states (after the final norm) of every row. */
    float *hidden; /* (n_tokens, hidden_size) out, or NULL               */
} tp_enc_batch;

typedef struct tp_net tp_net;

typedef struct tp_encoder_ops {
    /* Scratch bytes a forward needs for a micro-batch of this shape (a plan:
     * the caller sizes one arena for the largest micro-batch, then reuses it).
     * Returns 0 on size overflow. */
    size_t (*scratch_bytes)(const tp_net *net, size_t n_tokens, size_t n_seqs, size_t n_mlm_rows);
    /* Runs the packed batch. Allocates only from `scratch` (reset by the
     * callee at entry); pool may be NULL. Results depend only on each sequence's
     * own tokens (batch invariance). Errors: TP_ERR_INVALID_ARGUMENT for ids out
     * of the vocabulary, a sequence longer than max_positions or bad rows;
     * TP_ERR_OUT_OF_MEMORY when the arena is too small (a planning bug). */
    tp_status (*forward)(const tp_net *net, const tp_enc_batch *batch, tp_arena *scratch,
                         tp_pool *pool, tp_error *err);
} tp_encoder_ops;

/* The decoder part (issue #7) defines this struct and fills tp_net.dec. */
struct tp_decoder_ops;

struct tp_net {
    tp_net_kind kind;
    const struct tp_family *family;
    tp_compute compute;    /* the precision the weights were prepared for */
    int64_t vocab_size;    /* rows of the embedding table                 */
    int64_t hidden_size;   /* d_model                                     */
    int64_t n_layers;      /* transformer blocks                          */
    int64_t max_positions; /* longest sequence the model takes            */

    /* ---- encoders ---- */
    const tp_encoder_ops *enc; /* NULL for decoders */
    tp_enc_head head;
    tp_enc_pooling pooling;     /* TP_ENC_HEAD_CLASSIFY only                  */
    int64_t num_labels;         /* TP_ENC_HEAD_CLASSIFY only                  */
    size_t act_bytes_per_token; /* scratch bytes per packed token (plan) */

    /* ---- decoders (issue #7) ---- */
    const struct tp_decoder_ops *dec; /* NULL for encoders */

    void *impl; /* the family's private state (weights, config) */
};

/* What a family's load() gets. */
typedef struct tp_net_load_args {
    const char *dir;           /* model folder (for messages)                 */
    const tp_json_doc *config; /* parsed config.json                          */
    const tp_st_model *st;     /* the opened safetensors (kept open by caller) */
    tp_compute compute;        /* requested compute precision                 */
    bool norm_plus_one_stored; /* GGUF Gemma3: RMSNorm weights already hold 1 + w
                                  (llama.cpp's converter adds the 1): use them as
                                  they are instead of computing 1 + w          */
} tp_net_load_args;

/* The files behind a net: config.json (or the config derived from GGUF
 * metadata), the tensor table, and the GGUF file when the checkpoint is one.
 * tp_net_files_open takes a model folder, a .gguf file, or a folder holding
 * exactly one .gguf and no safetensors (tp_gguf_checkpoint_path); for a GGUF the
 * table has HF names and points into the GGUF mapping. */
typedef struct tp_net_files {
    char *dir;            /* the folder (of the .gguf file for GGUF)        */
    char *gguf_path;      /* the .gguf file, or NULL                        */
    struct tp_gguf *gguf; /* open GGUF file, or NULL                      */
    tp_json_doc config;
    tp_st_model *st;
    bool norm_plus_one_stored;
} tp_net_files;

tp_status tp_net_files_open(const char *path, tp_net_files *f, tp_error *err);
void tp_net_files_close(tp_net_files *f);
/* Load args for f (dir, config, st, the GGUF flag) at `compute`. */
tp_net_load_args tp_net_files_args(const tp_net_files *f, tp_compute compute);

typedef struct tp_family {
    const char *name;                 /* "modernbert", "qwen3", "gemma3"            */
    const char *const *model_types;   /* NULL-terminated config.json model_type list */
    const char *const *architectures; /* NULL-terminated architectures accepted     */
    /* Builds a net from the config and tensors; errors name the file and the
     * field or tensor. The tensors stay mapped while the net lives. */
    tp_status (*load)(const tp_net_load_args *args, tp_net **out, tp_error *err);
    void (*free)(tp_net *net);
} tp_family;

/* Finds the family for config.json: by model_type first, else by any entry of
 * "architectures". TP_ERR_UNSUPPORTED names the model_type when none matches. */
tp_status tp_family_find(const tp_json_doc *config, const tp_family **out, tp_error *err);

/* Convenience: finds the family and loads. */
tp_status tp_net_load(const tp_net_load_args *args, tp_net **out, tp_error *err);
void tp_net_free(tp_net *net);

/* The families (defined in their own files, listed in registry.c). */
extern const tp_family tp_family_modernbert;
extern const tp_family tp_family_qwen3;  /* qwen3.c (decoder core: decoder.h) */
extern const tp_family tp_family_gemma3; /* gemma3.c */

#endif /* TP_MODEL_H */
