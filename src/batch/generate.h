/*
 * generate.h — the generation loop with continuous batching (internal; issue #7).
 *
 * tp_generate_run takes n items (token-id prompts, each with its own limits,
 * sampling parameters and stop ids) and runs them to completion:
 *
 *   - Admission in input order while a slot is free (at most max_seqs live)
 *     and the KV pool can reserve the item's worst case
 *     (tp_kv_blocks_needed); otherwise the item waits for blocks. An item
 *     whose worst case exceeds the whole pool fails alone (TP_ERR_OUT_OF_MEMORY).
 *   - Every step is ONE packed forward: each decoding sequence feeds its last
 *     token, and newly admitted prompts are prefilled in the same step (in
 *     chunks under max_step_tokens). A sequence that finishes leaves at once,
 *     its blocks go back to the pool, and the next waiting item takes the slot.
 *   - A sequence finishes on a stop id (EOS: included in its tokens, finish
 *     STOP), when the on_token hook says so (STOP / CANCEL), after
 *     max_new_tokens (LENGTH), or at the end of the context (LENGTH).
 *
 * Tokens of an item depend only on the item (batch-invariant forward, per-item
 * RNG), never on what else runs in the same steps.
 */
#ifndef TP_BATCH_GENERATE_H
#define TP_BATCH_GENERATE_H

#include "batch/kv_cache.h"
#include "batch/sample.h"

typedef struct tp_gen_item {
    const int32_t *prompt; /* (n_prompt) token ids */
    int n_prompt;
    int max_new_tokens; /* >= 0 */
    tp_sampling sampling;
    const int32_t *stop_ids; /* (n_stop_ids) EOS ids and extra stop ids */
    int n_stop_ids;
} tp_gen_item;

typedef enum tp_gen_finish {
    TP_GEN_FINISH_NONE = 0, /* not finished (failed items) */
    TP_GEN_FINISH_STOP,     /* a stop id, or the hook asked to stop */
    TP_GEN_FINISH_LENGTH,   /* max_new_tokens or the context limit */
    TP_GEN_FINISH_CANCELLED /* the hook cancelled the item */
} tp_gen_finish;

typedef enum tp_gen_action { TP_GEN_CONTINUE = 0, TP_GEN_STOP, TP_GEN_CANCEL } tp_gen_action;

typedef struct tp_gen_output {
    tp_status status; /* TP_OK, or why this item failed (err.message) */
    tp_error err;
    int32_t *tokens; /* (n_tokens) generated ids, malloc'd (the stop id included) */
    int n_tokens;
    tp_gen_finish finish;
} tp_gen_output;

/* Called on the loop's thread. on_token sees every generated id in order
 * (stop ids included) and may stop or cancel its item; on_finish is called
 * once per item that did not fail, right after its last token. */
typedef struct tp_gen_hooks {
    tp_gen_action (*on_token)(void *user, size_t item, int32_t token);
    void (*on_finish)(void *user, size_t item, const tp_gen_output *out);
    void *user;
} tp_gen_hooks;

typedef struct tp_gen_config {
    tp_pool *pool;          /* may be NULL */
    size_t kv_budget_bytes; /* 0 = tp_gen_default_kv_budget() */
    int max_seqs;           /* live sequences per step; 0 = 64 */
    int max_step_tokens;    /* rows per forward (prefill chunking); 0 = 512 */
    int block_size;         /* KV block rows; 0 = 16 */
} tp_gen_config;

typedef struct tp_gen_run_stats {
    double wall_s;           /* whole run */
    double first_token_s;    /* from the start to the first generated token */
    double prefill_s;        /* time in steps that prefilled */
    double decode_s;         /* time in pure decode steps */
    size_t prefill_tokens;   /* prompt tokens run */
    size_t decode_tokens;    /* tokens fed in pure decode steps */
    size_t generated_tokens; /* all tokens generated */
    size_t steps;
    size_t kv_peak_bytes; /* most KV memory held at once */
    size_t kv_pool_bytes; /* size of the pool */
    int max_live;         /* most sequences in one step */
} tp_gen_run_stats;

/* Half of MemAvailable (from /proc/meminfo), at least 64 MiB; 1 GiB if unknown. */
size_t tp_gen_default_kv_budget(void);

/* Runs the items (see above). outs[i] gets item i's tokens, finish and status.
 * Returns TP_OK unless the run as a whole failed (bad arguments, a model that
 * is not a decoder, out of memory for the scratch); per-item failures (empty
 * prompt, prompt past the context, worst case above the KV budget) are in outs. */
tp_status tp_generate_run(const tp_net *net, const tp_gen_config *cfg, const tp_gen_item *items,
                          size_t n, const tp_gen_hooks *hooks, tp_gen_output *outs,
                          tp_gen_run_stats *stats, tp_error *err);

void tp_gen_output_free(tp_gen_output *o);

#endif /* TP_BATCH_GENERATE_H */
