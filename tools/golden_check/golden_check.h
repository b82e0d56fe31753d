/*
 * golden_check.h — build/golden_check CASE_DIR...: checks tiny checkpoints
 * against ../shared/golden (format in ../shared/golden/README.md).
 * main.c dispatches on golden.json "task"; encoder.c handles masked_lm and
 * sequence_classification, decoder.c handles causal_lm. Each returns 0 and
 * fills nothing on PASS, or non-zero with a reason in `why` on FAIL.
 */
#ifndef TP_GOLDEN_CHECK_H
#define TP_GOLDEN_CHECK_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* Recommended acceptance (golden README): |got - want| <= 1e-4 + 1e-4 * |want|. */
#define GOLDEN_ATOL 1e-4
#define GOLDEN_RTOL 1e-4

/* --weights PATH: load the network from PATH (a model folder or a .gguf)
 * instead of the case folder; golden.json still comes from the case. */
extern const char *golden_weights;

int golden_check_encoder(const char *case_dir, const cJSON *golden, char *why, size_t why_len);
int golden_check_decoder(const char *case_dir, const cJSON *golden, char *why, size_t why_len);

#endif
