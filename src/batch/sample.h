/*
 * sample.h — next-token selection for text generation (internal; issue #7).
 *
 * Follows Hugging Face generate()'s logits processors, in its order:
 * repetition penalty (over the last `window` tokens of prompt + output, each
 * distinct token once: logit / p when > 0, logit * p otherwise), then greedy
 * argmax when temperature == 0 (first index on ties), else temperature, top-k
 * (ties with the k-th value kept), top-p (smallest set whose mass reaches p,
 * at least one token), min-p (drop p_i < min_p * p_max), softmax and one draw.
 *
 * Randomness is per item: a tp_rng seeded from the item's seed, advanced once
 * per sampled token, so an item's text does not depend on its batch.
 */
#ifndef TP_BATCH_SAMPLE_H
#define TP_BATCH_SAMPLE_H

#include "core/core.h"

typedef struct tp_sampling {
    float temperature;         /* 0 = greedy */
    int32_t top_k;             /* 0 = off */
    float top_p;               /* 1 = off */
    float min_p;               /* 0 = off */
    float repetition_penalty;  /* 1 = off */
    int32_t repetition_window; /* 0 = every token so far */
    uint64_t seed;
} tp_sampling;

typedef struct tp_rng {
    uint64_t s[4];
} tp_rng;

void tp_rng_seed(tp_rng *r, uint64_t seed);
double tp_rng_uniform(tp_rng *r); /* [0, 1), 53 random bits */

/* Scratch for one vocabulary of V entries (reused across steps). */
typedef struct tp_sampler_scratch {
    size_t vocab;
    int32_t *idx;  /* (V) candidate ids */
    float *prob;   /* (V) candidate probabilities */
    uint8_t *seen; /* (V) repetition-penalty marks, all zero between calls */
} tp_sampler_scratch;

tp_status tp_sampler_scratch_init(tp_sampler_scratch *s, size_t vocab, tp_error *err);
void tp_sampler_scratch_free(tp_sampler_scratch *s);

/* Picks the next token from logits (V floats, modified in place). history
 * holds the prompt and the tokens generated so far (n_history of them). */
int32_t tp_sample(float *logits, size_t vocab, const tp_sampling *p, const int32_t *history,
                  size_t n_history, tp_rng *rng, tp_sampler_scratch *s);

#endif /* TP_BATCH_SAMPLE_H */
