/*
 * decoder.h — the decoder-only transformer core shared by Qwen3 and Gemma3
 * (internal; issue #7).
 *
 * Qwen3 and Gemma3 are the same network up to a handful of switches (the
 * tp_dec_hparams below): RMSNorm weight w or (1 + w), "sandwich" norms around
 * both sub-layers (Gemma3), SiLU or tanh-GELU in the gated MLP, the attention
 * scale, sliding-window layers with their own RoPE base, a scaled embedding and
 * a final logit soft-cap. qwen3.c and gemma3.c read their config.json into
 * hparams and register a tp_family; decoder.c loads the weights and runs the
 * forward.
 *
 * Forward over a packed step: every sequence in the step feeds n_new tokens
 * (a whole or partial prompt during prefill, 1 while decoding); all rows of all
 * sequences form one (n_tokens, hidden) matrix, so every linear layer is one
 * GEMM for the whole step. Keys and values of the new tokens are written into
 * the sequence's KV blocks (allocated by the caller, src/batch/kv_cache.h) and
 * attention runs per sequence over its blocks. Row results depend only on the
 * sequence's own tokens (batch-invariant kernels), so a sequence gives the same
 * logits whatever else shares the step.
 *
 * Glossary: V vocab, D hidden, L layers, H query heads, Hkv key/value heads,
 * Dh head dim, F MLP intermediate, T tokens in the step, S sequences in the
 * step, W sliding window, B KV block size (rows).
 */
#ifndef TP_MODELS_DECODER_H
#define TP_MODELS_DECODER_H

#include "models/model.h"

typedef enum tp_dec_family { TP_DEC_QWEN3 = 0, TP_DEC_GEMMA3 = 1 } tp_dec_family;

#define TP_DEC_MAX_EOS 16

/* Everything the forward needs from config.json, after family defaults. */
typedef struct tp_dec_hparams {
    tp_dec_family family;
    int64_t vocab;                   /* V */
    int64_t hidden;                  /* D */
    int64_t n_layers;                /* L */
    int64_t n_heads;                 /* H */
    int64_t n_kv_heads;              /* Hkv */
    int64_t head_dim;                /* Dh */
    int64_t inter;                   /* F */
    int64_t max_pos;                 /* context length (max_position_embeddings) */
    float eps;                       /* rms_norm_eps */
    double rope_theta;               /* full-attention layers */
    double rope_scale;               /* linear rope_scaling factor of full layers (1 = none) */
    double rope_local_theta;         /* sliding layers (Gemma3 rope_local_base_freq) */
    double rope_local_scale;         /* sliding layers (Gemma3: 1; Qwen3: as full)   */
    int sliding_window;              /* W, 0 when no layer slides */
    uint8_t *layer_sliding;          /* (L) 1 = sliding-window layer (malloc'd)        */
    float attn_scale;                /* Dh^-0.5 or query_pre_attn_scalar^-0.5          */
    float final_softcap;             /* 0 = none */
    float embed_scale;               /* 1, or sqrt(D) as a float32 (Gemma3)           */
    bool norm_plus_one;              /* RMSNorm multiplies by (1 + w)                  */
    bool sandwich_norms;             /* post-attention / pre+post-feed-forward norms   */
    bool attention_bias;             /* q/k/v/o projections have biases                */
    bool tied;                       /* tie_word_embeddings                            */
    tp_act act;                      /* MLP activation                                 */
    int32_t bos_id;                  /* -1 when absent */
    int32_t eos_ids[TP_DEC_MAX_EOS]; /* config.json eos_token_id (int or list) */
    int n_eos;
    char prefix[48]; /* weight-name prefix: "model." or "language_model.model." ... */
    char lm_head_name[64];
} tp_dec_hparams;

/* One sequence of a packed decoder step. The KV block tables hold block
 * pointers for every layer: layer l's block b is k_blocks[l * max_blocks + b],
 * each block B rows of (Hkv * Dh) floats; the blocks covering positions
 * [pos0, pos0 + n_new) must be allocated, blocks wholly before a sliding
 * layer's window may be NULL. */
typedef struct tp_dec_seq {
    const int32_t *ids;     /* (n_new) the tokens fed this step               */
    int n_new;              /* >= 1                                           */
    int pos0;               /* tokens already cached == position of ids[0]    */
    float *const *k_blocks; /* (L * max_blocks) key block table               */
    float *const *v_blocks; /* (L * max_blocks) value block table             */
    int max_blocks;         /* table stride per layer                         */
    int block_size;         /* B                                              */
    float *logits;          /* (V) out: logits after ids[n_new-1], or NULL    */
} tp_dec_seq;

struct tp_decoder_ops {
    /* Scratch bytes for a step of n_tokens rows over n_seqs sequences of which
     * n_logits want logits. 0 on size overflow. */
    size_t (*scratch_bytes)(const tp_net *net, size_t n_tokens, size_t n_seqs, size_t n_logits);
    /* Runs one packed step (see above). Allocates only from scratch (reset at
     * entry). Errors: TP_ERR_INVALID_ARGUMENT (ids out of the vocabulary,
     * positions past the context, missing blocks), TP_ERR_OUT_OF_MEMORY (arena
     * too small: a planning bug). */
    tp_status (*forward)(const tp_net *net, const tp_dec_seq *seqs, size_t n_seqs,
                         tp_arena *scratch, tp_pool *pool, tp_error *err);
};

/* The hparams of a decoder net (net->kind == TP_NET_DECODER). */
const tp_dec_hparams *tp_decoder_hparams(const tp_net *net);

/* Sliding window of layer l (0 = full attention). */
static inline int tp_dec_layer_window(const tp_dec_hparams *hp, int64_t l) {
    return hp->layer_sliding && hp->layer_sliding[l] ? hp->sliding_window : 0;
}

/* Shared loader used by qwen3.c / gemma3.c once hparams are filled (takes
 * ownership of hp->layer_sliding, also on failure). */
tp_status tp_decoder_load(const tp_net_load_args *args, tp_dec_hparams *hp, tp_net **out,
                          tp_error *err);
void tp_decoder_free(tp_net *net);

/* Helpers for the family files: read "rope_scaling" (null or linear) and the
 * eos/bos ids of a config object. */
tp_status tp_dec_read_rope_scaling(const tp_json_doc *doc, const cJSON *obj, double *scale,
                                   tp_error *err);
tp_status tp_dec_read_special_ids(const tp_json_doc *doc, const cJSON *obj, tp_dec_hparams *hp,
                                  tp_error *err);
/* Reads "layer_types" when present (returns true in *found), validating length L. */
tp_status tp_dec_read_layer_types(const tp_json_doc *doc, const cJSON *obj, tp_dec_hparams *hp,
                                  bool *found, tp_error *err);

#endif /* TP_MODELS_DECODER_H */
