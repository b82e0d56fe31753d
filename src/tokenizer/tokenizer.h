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

/* ---- GGUF tokenizer metadata (tokenizer.ggml.*) ----
 *
 * A plain description of the tokenizer keys of a GGUF file, with no GGUF
 * dependency: the GGUF reader fills one from a file (pointing into its mapped
 * data) and the GGUF writer writes one. Field <-> key:
 *   model            tokenizer.ggml.model        ("gpt2": byte-level BPE; "llama":
 *                                                  SentencePiece-style BPE with scores)
 *   pre              tokenizer.ggml.pre          ("qwen2", "gpt-2", "default", ...)
 *   tokens           tokenizer.ggml.tokens       (string array, index = id)
 *   scores           tokenizer.ggml.scores       (f32 array, n_tokens entries)
 *   token_type       tokenizer.ggml.token_type   (i32 array, n_tokens entries, TP_TOK_GGUF_*)
 *   merges           tokenizer.ggml.merges       (string array, "left right")
 *   *_id             tokenizer.ggml.{bos,eos,unknown,padding,seperator,cls,mask}_token_id
 *   add_bos/add_eos  tokenizer.ggml.add_bos_token / add_eos_token
 *   add_sep          tokenizer.ggml.add_sep_token
 *   add_space_prefix tokenizer.ggml.add_space_prefix
 *   chat_template    tokenizer.chat_template
 *   named templates  tokenizer.chat_template.<name> (names from tokenizer.chat_templates)
 * Strings are length-delimited (GGUF strings are not NUL-terminated; they may
 * contain NUL bytes). An absent string has s == NULL. scores and token_type
 * point at little-endian values of any alignment (GGUF metadata arrays are not
 * aligned): the builder reads them with memcpy. Absent arrays: NULL / 0. Absent
 * ids and flags: -1. Nothing in the struct is owned by it unless it came from
 * tp_tok_gguf_export (then tp_tok_gguf_desc_free frees it). */

typedef struct tp_tok_gguf_str {
    const char *s; /* NULL = absent; not NUL-terminated in general */
    size_t len;
} tp_tok_gguf_str;

enum {
    TP_TOK_GGUF_NORMAL = 1,
    TP_TOK_GGUF_UNKNOWN = 2,
    TP_TOK_GGUF_CONTROL = 3,
    TP_TOK_GGUF_USER_DEFINED = 4,
    TP_TOK_GGUF_UNUSED = 5,
    TP_TOK_GGUF_BYTE = 6,
};

typedef struct tp_tok_gguf_desc {
    const char *source; /* for error messages (e.g. the .gguf path); may be NULL */
    tp_tok_gguf_str model, pre;
    const tp_tok_gguf_str *tokens; /* (n_tokens) */
    size_t n_tokens;
    const void *scores;            /* (n_scores) little-endian f32, any alignment; NULL = absent */
    size_t n_scores;               /* 0 or n_tokens */
    const void *token_type;        /* (n_token_type) little-endian int32, any alignment */
    size_t n_token_type;           /* 0 or n_tokens */
    const tp_tok_gguf_str *merges; /* (n_merges) "left right"; NULL = absent */
    size_t n_merges;
    int64_t bos_id, eos_id, unk_id, pad_id, sep_id, cls_id, mask_id; /* -1 = absent */
    int add_bos, add_eos, add_sep, add_space_prefix;                 /* -1 = absent, 0, 1 */
    tp_tok_gguf_str chat_template;          /* default template; s NULL = absent */
    const tp_tok_gguf_str *template_names;  /* (n_named_templates) */
    const tp_tok_gguf_str *named_templates; /* (n_named_templates) */
    size_t n_named_templates;
} tp_tok_gguf_desc;

/* A description with nothing set: every id and flag -1, every pointer NULL. */
tp_tok_gguf_desc tp_tok_gguf_desc_empty(void);

/* Builds a tokenizer from a description (GGUF metadata, used when a model comes
 * without tokenizer.json). The result is the same internal tokenizer that
 * tp_tok_load builds from the model's tokenizer.json, and encodes/decodes the
 * same; the description is only read during the call (nothing is kept).
 * Errors: TP_ERR_UNSUPPORTED for a model or pre value tpipe does not implement
 * (names key and value: "x.gguf: tokenizer.ggml.pre 'falcon' is not supported");
 * TP_ERR_FORMAT for a malformed description (missing tokens, array lengths that
 * differ, a bad token type, a duplicate token, a merge naming an unknown token,
 * an id out of range: names the key and index); TP_ERR_OUT_OF_MEMORY. */
tp_status tp_tok_load_gguf_desc(const tp_tok_gguf_desc *d, tp_tokenizer **out, tp_error *err);

typedef struct tp_tok_gguf_export_params {
    size_t vocab_size; /* pad tokens to this many ids with "[PAD<id>]" UNUSED entries, as
                          convert_hf_to_gguf.py does with config.json vocab_size; 0 = the
                          tokenizer's own size; smaller than the tokenizer is an error */
} tp_tok_gguf_export_params;

tp_tok_gguf_export_params tp_tok_gguf_export_default_params(void);

/* The description of the tokenizer in dir (tokenizer.json + tokenizer_config.json,
 * as tp_tok_load reads them), as llama.cpp's convert_hf_to_gguf.py writes it:
 * Qwen3 -> gpt2/qwen2, ModernBERT -> gpt2, Gemma 3 -> llama (with merges and
 * scores; see docs/tokenizer.md "From GGUF metadata"). *out and everything it
 * points to is owned by the caller: free it with tp_tok_gguf_desc_free (only
 * descriptions made here). params NULL = defaults. Errors: those of tp_tok_load,
 * TP_ERR_UNSUPPORTED when the tokenizer has no GGUF equivalent (names the
 * component), TP_ERR_INVALID_ARGUMENT for a vocab_size below the tokenizer's. */
tp_status tp_tok_gguf_export(const char *dir, const tp_tok_gguf_export_params *params,
                             tp_tok_gguf_desc **out, tp_error *err);
/* The same from a loaded tokenizer (tok is only read). */
tp_status tp_tok_gguf_export_tok(const tp_tokenizer *tok, const tp_tok_gguf_export_params *params,
                                 tp_tok_gguf_desc **out, tp_error *err);
void tp_tok_gguf_desc_free(tp_tok_gguf_desc *d);

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
