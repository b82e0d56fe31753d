/*
 * tok_api.c — the tokenizer's small accessors (tokenizer.h) and the public
 * tp_tokenizer_* API of tpipe.h, including finding a model id in the local
 * Hugging Face cache.
 */
#include "tokenizer/tok_internal.h"
#include "io/resolve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const tp_tok_info *tp_tok_get_info(const tp_tokenizer *tok) {
    return tok ? &tok->info : NULL;
}

size_t tp_tok_vocab_size(const tp_tokenizer *tok) {
    return tok ? tok->n_ids : 0;
}

const char *tp_tok_id_to_token(const tp_tokenizer *tok, int32_t id) {
    if (!tok || id < 0)
        return NULL;
    return tok_lookup_str(tok, (uint32_t)id, NULL);
}

int32_t tp_tok_token_to_id(const tp_tokenizer *tok, const char *token) {
    if (!tok || !token)
        return -1;
    size_t n = strlen(token);
    int32_t id = tok_added_find(tok, token, n);
    return id >= 0 ? id : tok_vocab_find(tok, token, n);
}

bool tp_tok_is_special(const tp_tokenizer *tok, int32_t id) {
    return tok && id >= 0 && (size_t)id < tok->n_ids && tok->is_special[id];
}

const tp_tok_chat_template *tp_tok_chat_templates(const tp_tokenizer *tok, size_t *n) {
    if (n)
        *n = tok ? tok->n_templates : 0;
    return tok ? tok->templates : NULL;
}

const char *tp_tok_chat_template_get(const tp_tokenizer *tok, const char *name) {
    if (!tok || tok->n_templates == 0)
        return NULL;
    const char *want = name ? name : "default";
    for (size_t i = 0; i < tok->n_templates; i++)
        if (strcmp(tok->templates[i].name, want) == 0)
            return tok->templates[i].template;
    return name ? NULL : tok->templates[0].template;
}

/* ---- public API ---- */

tp_status tp_tokenizer_load(const char *model, tp_tokenizer **out, tp_error *err) {
    if (!model || !out)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_tokenizer_load: NULL argument");
    *out = NULL;
    /* a folder, or an org/name[@revision] id in the Hugging Face cache (io/resolve.h) */
    char *dir = NULL;
    tp_status st = tp_resolve_local(model, &dir, err);
    if (st != TP_OK)
        return st;
    st = tp_tok_load(dir, out, err);
    tp_free(dir);
    return st;
}

void tp_tokenizer_free(tp_tokenizer *tok) {
    tp_tok_free(tok);
}

size_t tp_tokenizer_vocab_size(const tp_tokenizer *tok) {
    return tp_tok_vocab_size(tok);
}

void tp_tokenization_free(tp_tokenization *r) {
    if (!r)
        return;
    tp_free(r->ids);
    tp_free(r->offsets);
    if (r->tokens)
        for (size_t i = 0; i < r->n; i++)
            tp_free(r->tokens[i]);
    tp_free(r->tokens);
    tp_free(r->error);
    memset(r, 0, sizeof *r);
}

/* tp_encoding -> tp_tokenization (ids, token strings, offsets) */
static tp_status to_public(const tp_tokenizer *tok, const tp_encoding *e, tp_tokenization *r) {
    size_t n = e->n;
    r->n = n;
    r->ids = tp_malloc((n ? n : 1) * sizeof *r->ids);
    r->offsets = tp_malloc((n ? n : 1) * 2 * sizeof *r->offsets);
    r->tokens = tp_calloc(n ? n : 1, sizeof *r->tokens);
    if (!r->ids || !r->offsets || !r->tokens)
        return TP_ERR_OUT_OF_MEMORY;
    memcpy(r->ids, e->ids, n * sizeof *r->ids);
    memcpy(r->offsets, e->offsets, n * 2 * sizeof *r->offsets);
    for (size_t i = 0; i < n; i++) {
        const char *s = tp_tok_id_to_token(tok, e->ids[i]);
        r->tokens[i] = tp_strdup(s ? s : "");
        if (!r->tokens[i])
            return TP_ERR_OUT_OF_MEMORY;
    }
    return TP_OK;
}

tp_status tp_tokenizer_encode(const tp_tokenizer *tok, const char *text, bool add_special_tokens,
                              tp_tokenization *out, tp_error *err) {
    if (!out)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_tokenizer_encode: NULL argument");
    memset(out, 0, sizeof *out);
    if (!tok || !text)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_tokenizer_encode: NULL argument");
    tp_tok_encode_params p = tp_tok_encode_default_params();
    p.add_special_tokens = add_special_tokens;
    tp_encoding e;
    tp_status st = tp_tok_encode(tok, NULL, text, (size_t)-1, NULL, 0, &p, &e, err);
    if (st) {
        out->status = st;
        out->error = e.error;
        e.error = NULL;
        tp_encoding_free(&e);
        return st;
    }
    st = to_public(tok, &e, out);
    tp_encoding_free(&e);
    if (st) {
        tp_tokenization_free(out);
        return tp_fail(err, st, "out of memory");
    }
    return TP_OK;
}

tp_status tp_tokenizer_encode_batch(const tp_tokenizer *tok, const char *const *texts, size_t n,
                                    bool add_special_tokens, int n_threads, tp_tokenization *out,
                                    tp_error *err) {
    if (n == 0)
        return TP_OK;
    if (!tok || !texts || !out)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_tokenizer_encode_batch: NULL argument");
    memset(out, 0, n * sizeof *out);
    tp_encoding *enc = tp_calloc(n, sizeof *enc);
    if (!enc)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    tp_pool *pool = NULL;
    if (n_threads != 1 && n > 1) {
        pool = tp_pool_create(n_threads, err);
        if (!pool) {
            tp_free(enc);
            return err ? err->status : TP_ERR_OUT_OF_MEMORY;
        }
    }
    tp_tok_encode_params p = tp_tok_encode_default_params();
    p.add_special_tokens = add_special_tokens;
    tp_status st = tp_tok_encode_batch(tok, pool, texts, NULL, n, &p, enc, err);
    tp_pool_destroy(pool);
    for (size_t i = 0; i < n && !st; i++) {
        if (enc[i].status) {
            out[i].status = enc[i].status;
            out[i].error = enc[i].error;
            enc[i].error = NULL;
        } else if (to_public(tok, &enc[i], &out[i])) {
            st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        }
    }
    for (size_t i = 0; i < n; i++)
        tp_encoding_free(&enc[i]);
    tp_free(enc);
    if (st)
        for (size_t i = 0; i < n; i++)
            tp_tokenization_free(&out[i]);
    return st;
}

tp_status tp_tokenizer_decode(const tp_tokenizer *tok, const int32_t *ids, size_t n,
                              bool skip_special_tokens, char **out, tp_error *err) {
    if (!out)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_tokenizer_decode: NULL argument");
    *out = NULL;
    tp_tok_decode_params p = tp_tok_decode_default_params();
    p.skip_special_tokens = skip_special_tokens;
    return tp_tok_decode(tok, ids, n, &p, out, NULL, err);
}
