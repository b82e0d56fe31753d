/*
 * tokenizer.h — Hugging Face tokenizer.json (+ tokenizer_config.json) for the
 * pipelines (internal API; the public subset is the tokenizer section of tpipe.h).
 *
 * A loaded tp_tokenizer is immutable: every function taking a const
 * tp_tokenizer * may be called from many threads at once. Mutable state
 * (buffers, the pre-token cache, regex match data) lives in a tp_tok_scratch,
 * one per thread; functions that take a scratch accept NULL and then use a
 * temporary one (slower: no cache reuse).
 *
 * Encoding follows the Rust `tokenizers` crate:
 *   added tokens (trie, leftmost-longest, single_word/lstrip/rstrip)
 *   -> normalizer -> pre-tokenizer -> BPE model (cached per pre-token)
 *   -> truncation -> post-processor (special tokens, pairs).
 * Offsets are byte offsets into the caller's original text (for a pair, into
 * the text that type_ids/seq_ids says); special tokens added by the
 * post-processor have offsets (0, 0) and seq_id -1.
 *
 * Decoding runs the tokenizer.json decoder chain; transformers'
 * clean_up_tokenization_spaces is a separate flag (default from the config).
 */
#ifndef TP_TOKENIZER_H
#define TP_TOKENIZER_H

#include "core/core.h"

/* tp_tokenizer is declared in tpipe.h (opaque). */

/* ---- loading ---- */

/* Loads dir/tokenizer.json, dir/tokenizer_config.json, dir/special_tokens_map.json
 * and dir/chat_template.jinja (all but the first optional). Errors: TP_ERR_NOT_FOUND (no
 * tokenizer.json), TP_ERR_FORMAT (malformed: names file and field),
 * TP_ERR_UNSUPPORTED (a component type tpipe does not implement: names it),
 * TP_ERR_OUT_OF_MEMORY. Free with tp_tok_free. */
tp_status tp_tok_load(const char *dir, tp_tokenizer **out, tp_error *err);
void tp_tok_free(tp_tokenizer *tok);

/* ---- special tokens and settings ----
 * From tokenizer_config.json; tokens it does not set come from
 * special_tokens_map.json, and unk from tokenizer.json's model.unk_token. */

typedef struct tp_tok_special_token {
    const char *text; /* NULL when not set */
    int32_t id;       /* -1 when not set or not in the vocabulary */
} tp_tok_special_token;

typedef struct tp_tok_info {
    tp_tok_special_token bos, eos, pad, cls, sep, mask, unk;
    bool add_bos_token;                /* tokenizer_config add_bos_token (default false) */
    bool add_eos_token;                /* tokenizer_config add_eos_token (default false) */
    bool clean_up_tokenization_spaces; /* tokenizer_config (default false) */
    int64_t model_max_length;          /* tokenizer_config; 0 when absent or huge (>1e15) */
    size_t vocab_size;                 /* number of ids: max id + 1, added tokens included */
} tp_tok_info;

/* Pointers inside stay valid until tp_tok_free. */
const tp_tok_info *tp_tok_get_info(const tp_tokenizer *tok);
size_t tp_tok_vocab_size(const tp_tokenizer *tok);

/* The vocabulary string of id (added tokens included), NULL when out of range
 * or unused. Valid until tp_tok_free. */
const char *tp_tok_id_to_token(const tp_tokenizer *tok, int32_t id);
/* The id of a vocabulary string (added tokens first), or -1. */
int32_t tp_tok_token_to_id(const tp_tokenizer *tok, const char *token);
/* True for added tokens marked "special" (skipped by skip_special_tokens). */
bool tp_tok_is_special(const tp_tokenizer *tok, int32_t id);

/* ---- chat templates (for src/template) ---- */

typedef struct tp_tok_chat_template {
    const char *name;     /* "default" for a plain string / chat_template.jinja */
    const char *template; /* the Jinja source */
} tp_tok_chat_template;

/* The templates of tokenizer_config.json "chat_template" (a string, or a list of
 * {name, template}), else of chat_template.jinja; *n = 0 when none. Valid until
 * tp_tok_free. */
const tp_tok_chat_template *tp_tok_chat_templates(const tp_tokenizer *tok, size_t *n);
/* The template named name (NULL: "default", else the first), or NULL. */
const char *tp_tok_chat_template_get(const tp_tokenizer *tok, const char *name);

/* ---- encoding ---- */

typedef enum tp_trunc_strategy {
    TP_TRUNC_LONGEST_FIRST = 0, /* remove from the longer of the pair, one token at a time */
    TP_TRUNC_ONLY_FIRST = 1,
    TP_TRUNC_ONLY_SECOND = 2,
} tp_trunc_strategy;

typedef struct tp_tok_encode_params {
    bool add_special_tokens;    /* run the post-processor (default true) */
    size_t max_length;          /* 0 = no truncation; counts the special tokens */
    tp_trunc_strategy strategy; /* for pairs (default longest_first) */
    bool error_if_truncated;    /* TP_ERR_TOO_LONG instead of truncating (default false) */
    bool word_cache;            /* default true: cache pre-token -> ids in the scratch and cut
                                   long SentencePiece words before "▁" (both exact, speed
                                   only); false runs plain BPE on every pre-token (the
                                   reference path, for tests and benchmarks) */
} tp_tok_encode_params;

tp_tok_encode_params tp_tok_encode_default_params(void);

/* One encoded item. Arrays have n entries and are owned by the encoding
 * (tp_encoding_free). Attention mask is all 1 (no padding is added). */
typedef struct tp_encoding {
    size_t n;
    int32_t *ids;            /* (n) */
    uint8_t *attention_mask; /* (n) */
    uint8_t *type_ids;       /* (n) token type ids from the post-processor */
    int8_t *seq_ids;         /* (n) 0 = text, 1 = text_pair, -1 = added special */
    uint32_t *offsets;       /* (n, 2) byte [start, end) into the original text */
    bool truncated;          /* tokens were removed by max_length */
    tp_status status;        /* per item (batch): TP_OK or the error */
    char *error;             /* NULL, or the message when status != TP_OK (owned) */
} tp_encoding;

void tp_encoding_free(tp_encoding *enc); /* frees the arrays; enc itself not freed */

/* Per-thread mutable state (buffers, pre-token cache, regex match data). */
typedef struct tp_tok_scratch tp_tok_scratch;
tp_tok_scratch *tp_tok_scratch_create(const tp_tokenizer *tok);
void tp_tok_scratch_free(tp_tok_scratch *s);

/* Encodes text (and text_pair when non-NULL). len/pair_len = (size_t)-1 means
 * NUL-terminated. Invalid UTF-8 is TP_ERR_INPUT with the byte offset (and which
 * text) in the message. On error *out holds nothing (status and error set). */
tp_status tp_tok_encode(const tp_tokenizer *tok, tp_tok_scratch *scratch, const char *text,
                        size_t len, const char *text_pair, size_t pair_len,
                        const tp_tok_encode_params *params, tp_encoding *out, tp_error *err);

/* Batch encode over a pool (NULL: this thread only). text_pairs may be NULL (or
 * hold NULL entries). out[i] gets each item's status/error; the return value is
 * only for batch-level failures (bad arguments, out of memory). */
tp_status tp_tok_encode_batch(const tp_tokenizer *tok, tp_pool *pool, const char *const *texts,
                              const char *const *text_pairs, size_t n,
                              const tp_tok_encode_params *params, tp_encoding *out, tp_error *err);

/* Only the ids (no post-processor unless add_special_tokens, no truncation):
 * appends to *ids (realloc'd, *n updated). Convenience for generation prompts. */
tp_status tp_tok_encode_ids(const tp_tokenizer *tok, tp_tok_scratch *scratch, const char *text,
                            size_t len, bool add_special_tokens, int32_t **ids, size_t *n,
                            tp_error *err);

/* ---- decoding ---- */

typedef struct tp_tok_decode_params {
    bool skip_special_tokens;
    int clean_up_tokenization_spaces; /* -1 = as tokenizer_config sets it, 0 = no, 1 = yes */
} tp_tok_decode_params;

tp_tok_decode_params tp_tok_decode_default_params(void); /* no skip, clean-up from config */

/* Decodes ids to a NUL-terminated UTF-8 string (malloc'd, *out; *out_len may be
 * NULL). Incomplete UTF-8 decodes as U+FFFD, as Hugging Face does. An id out of
 * range is TP_ERR_INPUT naming it. */
tp_status tp_tok_decode(const tp_tokenizer *tok, const int32_t *ids, size_t n,
                        const tp_tok_decode_params *params, char **out, size_t *out_len,
                        tp_error *err);

/* Incremental decoding for streaming generation: feed ids one at a time and get
 * the new text; text is only emitted once it is whole UTF-8 (an incomplete
 * byte sequence is held back until the next id completes it or flush). */
typedef struct tp_tok_stream tp_tok_stream;
tp_tok_stream *tp_tok_stream_create(const tp_tokenizer *tok, const tp_tok_decode_params *params);
/* Appends the newly decodable text (possibly empty) to out (tp_buf). */
tp_status tp_tok_stream_step(tp_tok_stream *st, int32_t id, tp_buf *out, tp_error *err);
/* Emits whatever is held back (incomplete UTF-8 as U+FFFD). */
tp_status tp_tok_stream_flush(tp_tok_stream *st, tp_buf *out, tp_error *err);
void tp_tok_stream_free(tp_tok_stream *st);

/* transformers' clean_up_tokenization: " ." -> ".", " n't" -> "n't", ... in place. */
size_t tp_tok_clean_up_spaces(char *s, size_t n);

#endif /* TP_TOKENIZER_H */
