/*
 * gguf_tok.h — the tokenizer and chat template of a GGUF checkpoint
 * (tokenizer.ggml.*, tokenizer.chat_template), both directions: reading them
 * for tp_model_load and writing a tokenizer description (tp_tok_gguf_desc,
 * src/tokenizer/tokenizer.h) into a GGUF writer for the converter and tests.
 * Internal to the pipelines layer and the tools.
 */
#ifndef TP_PIPELINES_GGUF_TOK_H
#define TP_PIPELINES_GGUF_TOK_H

#include "io/gguf.h"
#include "template/template.h"
#include "tokenizer/tokenizer.h"

/* The tokenizer from tokenizer.ggml.* (tp_tok_load_gguf_desc). TP_ERR_NOT_FOUND
 * (naming the file) when the file has no tokenizer.ggml.model / tokens. */
tp_status tp_gguf_load_tokenizer(const tp_gguf *g, tp_tokenizer **out, tp_error *err);

/* The chat template from tokenizer.chat_template, with bos_token, eos_token,
 * pad_token and unk_token set from the token list (TP_ERR_NOT_FOUND when absent). */
tp_status tp_gguf_chat_template(const tp_gguf *g, tp_chat_template **out, tp_error *err);

/* Writes every tokenizer.* key a description holds (model, pre, tokens,
 * scores, token_type, merges, special ids, add_* flags, chat templates incl.
 * named ones as tokenizer.chat_templates + tokenizer.chat_template.<name>). */
tp_status tp_gguf_set_tokenizer(tp_gguf_writer *w, const tp_tok_gguf_desc *d, tp_error *err);

#endif
