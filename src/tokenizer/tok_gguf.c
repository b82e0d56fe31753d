/*
 * tok_gguf.c — the tokenizer from GGUF metadata (tokenizer.ggml.*), and the
 * reverse: the GGUF description of a tokenizer.json tokenizer.
 *
 * Builder (tp_tok_load_gguf_desc). A GGUF file names a tokenizer family
 * (tokenizer.ggml.model) and a pre-tokenizer (tokenizer.ggml.pre) rather than
 * spelling out components, so the builder turns those names into the
 * tokenizer.json components the same model's Hugging Face tokenizer has, as
 * cJSON objects, and hands them with the vocabulary and merges to the shared
 * construction steps of tok_load.c (tok_vocab_install, tok_merge_add,
 * tok_assemble). The result is the same tp_tokenizer structure tp_tok_load
 * builds; there is no second encoder.
 *
 *   model "gpt2" (byte-level BPE): pre "qwen2" -> NFC + Split(Qwen2 regex,
 *     Isolated) + ByteLevel(no regex) (Qwen2/Qwen3's tokenizer.json);
 *     "gpt-2"/"phi-2" -> ByteLevel with the GPT-2 regex, no normalizer;
 *     "mpt"/"olmo"/"modern-bert" -> NFC + ByteLevel with the GPT-2 regex (the
 *     GPT-NeoX tokenizer.json that MPT, OLMo and ModernBERT use). Decoder
 *     ByteLevel.
 *   model "llama" (SentencePiece-style BPE, Gemma 3): normalizer Replace(" ",
 *     "▁") (preceded by Prepend("▁") when add_space_prefix, default true as in
 *     llama.cpp), BPE with byte_fallback through the <0xXX> tokens (type 6) and
 *     fuse_unk, decoder Replace("▁", " ") + ByteFallback + Fuse (+ Strip(" ",
 *     1, 0) with add_space_prefix). Merges from tokenizer.ggml.merges when
 *     present, else derived from the scores by the rule of Hugging Face's
 *     SentencePiece converter (see derive_merges).
 *   Tokens of type CONTROL / UNKNOWN become special added tokens, USER_DEFINED
 *     ones non-special added tokens (matched whole on the raw text before the
 *     model, as llama.cpp does); every token is also in the model vocabulary.
 *   Post-processing: TemplateProcessing from add_bos / add_eos / add_sep.
 *
 * Exporter (tp_tok_gguf_export*): the reverse mapping, following llama.cpp's
 * convert_hf_to_gguf.py (token types, "[PAD<id>]" padding, user-defined
 * "▁" -> " "), with scores for "llama" chosen so that the score rule
 * re-derives exactly the tokenizer.json merge order (see export_scores).
 */
#include "tokenizer/tok_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define META "\xe2\x96\x81" /* "▁" U+2581 */

/* Qwen2's pre-tokenizer regex (its tokenizer.json, Split/Isolated). */
static const char QWEN2_RE[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
                               "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

typedef enum gg_pre { GP_QWEN2, GP_GPT2, GP_NEOX, GP_LLAMA } gg_pre;

/* pre-tokenizer names (llama.cpp's) and what they mean here; clean_spaces is
 * llama.cpp's per-name default for transformers' clean_up_tokenization_spaces */
static const struct {
    const char *name;
    gg_pre pre;
    bool clean_spaces;
} PRE_NAMES[] = {
    {"qwen2", GP_QWEN2, false},     {"deepseek-r1-qwen", GP_QWEN2, false},
    {"gpt-2", GP_GPT2, true},       {"phi-2", GP_GPT2, true},
    {"mpt", GP_NEOX, true},         {"olmo", GP_NEOX, true},
    {"modern-bert", GP_NEOX, true},
};

tp_tok_gguf_desc tp_tok_gguf_desc_empty(void) {
    tp_tok_gguf_desc d;
    memset(&d, 0, sizeof d);
    d.bos_id = d.eos_id = d.unk_id = d.pad_id = d.sep_id = d.cls_id = d.mask_id = -1;
    d.add_bos = d.add_eos = d.add_sep = d.add_space_prefix = -1;
    return d;
}

tp_tok_gguf_export_params tp_tok_gguf_export_default_params(void) {
    return (tp_tok_gguf_export_params){.vocab_size = 0};
}

static bool str_is(tp_tok_gguf_str s, const char *lit) {
    return s.s && s.len == strlen(lit) && memcmp(s.s, lit, s.len) == 0;
}

static int32_t type_at(const tp_tok_gguf_desc *d, size_t i) {
    if (!d->token_type)
        return TP_TOK_GGUF_NORMAL;
    int32_t v;
    memcpy(&v, (const char *)d->token_type + 4 * i, 4); /* little-endian host assumed */
    return v;
}

static float score_at(const tp_tok_gguf_desc *d, size_t i) {
    float v;
    memcpy(&v, (const char *)d->scores + 4 * i, 4);
    return v;
}

/* "<0xXX>" with two upper-case hex digits */
static bool is_byte_token(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>')
        return false;
    for (int k = 3; k < 5; k++)
        if (!((s[k] >= '0' && s[k] <= '9') || (s[k] >= 'A' && s[k] <= 'F')))
            return false;
    return true;
}

/* ------------------------------------------------------------------------ */
/* validation                                                                */

static tp_status check_desc(const tp_tok_gguf_desc *d, const char *src, tp_error *err) {
    if (!d->model.s)
        return tp_fail(err, TP_ERR_FORMAT, "%s: tokenizer.ggml.model: missing", src);
    if (!str_is(d->model, "gpt2") && !str_is(d->model, "llama"))
        return tp_fail(err, TP_ERR_UNSUPPORTED,
                       "%s: tokenizer.ggml.model '%.*s' is not supported (gpt2 and llama are)", src,
                       (int)(d->model.len > 64 ? 64 : d->model.len), d->model.s);
    if (!d->tokens || d->n_tokens == 0)
        return tp_fail(err, TP_ERR_FORMAT, "%s: tokenizer.ggml.tokens: missing or empty", src);
    if (d->n_tokens > TOK_MAX_IDS)
        return tp_fail(err, TP_ERR_FORMAT, "%s: tokenizer.ggml.tokens: %zu tokens (at most %d)",
                       src, d->n_tokens, TOK_MAX_IDS);
    if (d->scores && d->n_scores != d->n_tokens)
        return tp_fail(err, TP_ERR_FORMAT, "%s: tokenizer.ggml.scores: %zu entries for %zu tokens",
                       src, d->n_scores, d->n_tokens);
    if (d->token_type && d->n_token_type != d->n_tokens)
        return tp_fail(err, TP_ERR_FORMAT,
                       "%s: tokenizer.ggml.token_type: %zu entries for %zu tokens", src,
                       d->n_token_type, d->n_tokens);
    for (size_t i = 0; i < d->n_tokens; i++) {
        tp_tok_gguf_str t = d->tokens[i];
        if (!t.s && t.len)
            return tp_fail(err, TP_ERR_FORMAT, "%s: tokenizer.ggml.tokens[%zu]: NULL string", src,
                           i);
        if (t.len && memchr(t.s, '\0', t.len))
            return tp_fail(err, TP_ERR_FORMAT,
                           "%s: tokenizer.ggml.tokens[%zu]: contains a NUL byte", src, i);
        if (t.len && tp_utf8_validate(t.s, t.len) != t.len)
            return tp_fail(err, TP_ERR_FORMAT, "%s: tokenizer.ggml.tokens[%zu]: invalid UTF-8", src,
                           i);
        int32_t ty = type_at(d, i);
        if (ty < TP_TOK_GGUF_NORMAL || ty > TP_TOK_GGUF_BYTE)
            return tp_fail(err, TP_ERR_FORMAT,
                           "%s: tokenizer.ggml.token_type[%zu]: %d is not a token type (1..6)", src,
                           i, (int)ty);
        if (ty == TP_TOK_GGUF_BYTE && !is_byte_token(t.s, t.len))
            return tp_fail(err, TP_ERR_FORMAT,
                           "%s: tokenizer.ggml.tokens[%zu]: a byte token (type 6) must be <0xXX>, "
                           "not '%.*s'",
                           src, i, (int)(t.len > 64 ? 64 : t.len), t.s ? t.s : "");
        if ((ty == TP_TOK_GGUF_CONTROL || ty == TP_TOK_GGUF_USER_DEFINED) && t.len == 0)
            return tp_fail(err, TP_ERR_FORMAT,
                           "%s: tokenizer.ggml.tokens[%zu]: empty control/user-defined token", src,
                           i);
        if (d->scores && isnan(score_at(d, i)))
            return tp_fail(err, TP_ERR_FORMAT, "%s: tokenizer.ggml.scores[%zu]: NaN", src, i);
    }
    const struct {
        const char *key;
        int64_t v;
    } ids[] = {{"bos_token_id", d->bos_id},       {"eos_token_id", d->eos_id},
               {"unknown_token_id", d->unk_id},   {"padding_token_id", d->pad_id},
               {"seperator_token_id", d->sep_id}, {"cls_token_id", d->cls_id},
               {"mask_token_id", d->mask_id}};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (ids[i].v < -1 || ids[i].v >= (int64_t)d->n_tokens)
            return tp_fail(err, TP_ERR_FORMAT,
                           "%s: tokenizer.ggml.%s: %lld out of range (%zu tokens)", src, ids[i].key,
                           (long long)ids[i].v, d->n_tokens);
    const struct {
        const char *key;
        int v;
    } flags[] = {{"add_bos_token", d->add_bos},
                 {"add_eos_token", d->add_eos},
                 {"add_sep_token", d->add_sep},
                 {"add_space_prefix", d->add_space_prefix}};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (flags[i].v < -1 || flags[i].v > 1)
            return tp_fail(err, TP_ERR_FORMAT, "%s: tokenizer.ggml.%s: %d is not -1, 0 or 1", src,
                           flags[i].key, flags[i].v);
    if (d->merges)
        for (size_t i = 0; i < d->n_merges; i++)
            if (!d->merges[i].s && d->merges[i].len)
                return tp_fail(err, TP_ERR_FORMAT, "%s: tokenizer.ggml.merges[%zu]: NULL string",
                               src, i);
    for (size_t i = 0; i < d->n_named_templates; i++)
        if (!d->template_names || !d->named_templates || !d->template_names[i].s ||
            !d->named_templates[i].s)
            return tp_fail(err, TP_ERR_FORMAT, "%s: tokenizer.chat_template.<name> %zu: missing",
                           src, i);
    return TP_OK;
}

/* ------------------------------------------------------------------------ */
/* merges from scores                                                        */

typedef struct cand {
    float score;
    uint32_t la, lb;        /* lengths in code points */
    uint32_t piece, ia, ib; /* ids */
} cand;

static size_t n_chars(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((uint8_t)s[i] & 0xC0) != 0x80;
    return c;
}

/* Hugging Face's SentencePiece converter order: score descending, then the
 * longer left piece, then the longer right piece (code points); ties keep
 * the converter's iteration order: piece id, then (left id, right id). */
static int cand_cmp(const void *x, const void *y) {
    const cand *a = x, *b = y;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    if (a->la != b->la)
        return a->la > b->la ? -1 : 1;
    if (a->lb != b->lb)
        return a->lb > b->lb ? -1 : 1;
    if (a->piece != b->piece)
        return a->piece < b->piece ? -1 : 1;
    if (a->ia != b->ia)
        return a->ia < b->ia ? -1 : 1;
    return a->ib < b->ib ? -1 : a->ib > b->ib;
}

/* Every split of every piece (not UNUSED) into two vocabulary pieces at a
 * code-point boundary is a merge, ranked by the piece's score as above: the
 * rule transformers' SentencePieceExtractor uses to turn a SentencePiece BPE
 * model (pieces + scores, no merges) into tokenizer.json merges. A score of
 * -1000 on a control/user-defined/unknown token counts as 0 (see below). */
static tp_status derive_merges(tp_tokenizer *tok, const tp_tok_gguf_desc *d, const char *src,
                               tp_error *err) {
    size_t n = 0, cap = d->n_tokens;
    cand *c = tp_malloc((cap ? cap : 1) * sizeof *c);
    tp_buf cat = {0};
    tp_status st = TP_OK;
    if (!c)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t id = 0; id < d->n_tokens; id++) {
        int32_t ty = type_at(d, id);
        if (ty == TP_TOK_GGUF_UNUSED)
            continue;
        /* convert_hf_to_gguf.py writes -1000 for the tokenizer's added tokens;
         * the SentencePiece model the merges came from has 0 for its control
         * and user-defined pieces (Gemma 3's whitespace runs, whose merges
         * rank first) */
        float score = score_at(d, id);
        if (score == -1000.0f && (ty == TP_TOK_GGUF_CONTROL || ty == TP_TOK_GGUF_USER_DEFINED ||
                                  ty == TP_TOK_GGUF_UNKNOWN))
            score = 0.0f;
        const char *s = tok->pool + tok->model_off[id]; /* user-defined "▁" restored */
        size_t len = tok->model_len[id], la = 0;
        for (size_t k = 1; k < len; k++) {
            if (((uint8_t)s[k] & 0xC0) == 0x80)
                continue;
            la++;
            int32_t ia = tok_vocab_find(tok, s, k), ib = tok_vocab_find(tok, s + k, len - k);
            if (ia < 0 || ib < 0)
                continue;
            if (n == cap) {
                cap *= 2;
                cand *nc = tp_realloc(c, cap * sizeof *c);
                if (!nc) {
                    tp_free(c);
                    return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
                }
                c = nc;
            }
            c[n++] = (cand){score,        (uint32_t)la, (uint32_t)n_chars(s + k, len - k),
                            (uint32_t)id, (uint32_t)ia, (uint32_t)ib};
        }
    }
    qsort(c, n, sizeof *c, cand_cmp);
    if ((st = tok_merges_init(tok, err)))
        goto done;
    for (size_t i = 0; i < n; i++) {
        int r = tok_merge_add(tok, tok->pool + tok->model_off[c[i].ia], tok->model_len[c[i].ia],
                              tok->pool + tok->model_off[c[i].ib], tok->model_len[c[i].ib],
                              (uint32_t)i, &cat);
        if (r < 0) {
            st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
        if (r > 0) { /* cannot happen: both halves and the piece are tokens */
            st = tp_fail(err, TP_ERR_FORMAT, "%s: tokenizer.ggml.scores: derived merge %zu invalid",
                         src, i);
            goto done;
        }
    }
done:
    tp_free(c);
    tp_buf_free(&cat);
    return st;
}

static tp_status add_merges(tp_tokenizer *tok, const tp_tok_gguf_desc *d, const char *src,
                            tp_error *err) {
    tp_buf cat = {0};
    tp_status st = tok_merges_init(tok, err);
    for (size_t i = 0; i < d->n_merges && !st; i++) {
        const char *m = d->merges[i].s;
        size_t len = d->merges[i].len;
        /* split at the first space after the first byte (llama.cpp's rule) */
        const char *sp = len > 1 ? memchr(m + 1, ' ', len - 1) : NULL;
        if (!sp) {
            st = tp_fail(err, TP_ERR_FORMAT,
                         "%s: tokenizer.ggml.merges[%zu]: expected \"left right\", got '%.*s'", src,
                         i, (int)(len > 64 ? 64 : len), m ? m : "");
            break;
        }
        size_t al = (size_t)(sp - m), bl = len - al - 1;
        int r = tok_merge_add(tok, m, al, sp + 1, bl, (uint32_t)i, &cat);
        if (r < 0)
            st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        else if (r > 0)
            st = tp_fail(err, TP_ERR_FORMAT,
                         "%s: tokenizer.ggml.merges[%zu]: '%.*s' is not in tokenizer.ggml.tokens",
                         src, i,
                         (int)(r == 1   ? al
                               : r == 2 ? bl
                                        : cat.len),
                         r == 1   ? m
                         : r == 2 ? sp + 1
                                  : (cat.data ? cat.data : ""));
    }
    tp_buf_free(&cat);
    return st;
}

/* ------------------------------------------------------------------------ */
/* components as tokenizer.json objects                                       */

static cJSON *obj_type(const char *type) {
    cJSON *o = cJSON_CreateObject();
    if (o && !cJSON_AddStringToObject(o, "type", type)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* {"type": "Replace", "pattern": {"String": from}, "content": to} */
static cJSON *replace_obj(const char *from, const char *to) {
    cJSON *o = obj_type("Replace"), *p = cJSON_CreateObject();
    if (!o || !p || !cJSON_AddStringToObject(p, "String", from) ||
        !cJSON_AddItemToObject(o, "pattern", p)) {
        cJSON_Delete(o);
        cJSON_Delete(p);
        return NULL;
    }
    return cJSON_AddStringToObject(o, "content", to) ? o : (cJSON_Delete(o), NULL);
}

static cJSON *bytelevel_obj(bool use_regex, bool trim_offsets) {
    cJSON *o = obj_type("ByteLevel");
    if (o && (!cJSON_AddBoolToObject(o, "add_prefix_space", false) ||
              !cJSON_AddBoolToObject(o, "trim_offsets", trim_offsets) ||
              !cJSON_AddBoolToObject(o, "use_regex", use_regex))) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* adds item to array; false (and item freed) on failure */
static bool push(cJSON *arr, cJSON *item) {
    if (!arr || !item || !cJSON_AddItemToArray(arr, item)) {
        cJSON_Delete(item);
        return false;
    }
    return true;
}

static bool put(cJSON *obj, const char *key, cJSON *item) {
    if (!obj || !item || !cJSON_AddItemToObject(obj, key, item)) {
        cJSON_Delete(item);
        return false;
    }
    return true;
}

static cJSON *seq_obj(const char *type, const char *key) {
    cJSON *o = obj_type(type);
    if (o && !cJSON_AddArrayToObject(o, key)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* A piece of a TemplateProcessing: {"SpecialToken": {"id": name, "type_id"}} or
 * {"Sequence": {"id": "A"/"B", "type_id"}}; specials are registered in sp. */
static bool tpl_add(cJSON *arr, cJSON *sp, const char *name, int32_t id, const char *seq,
                    int type_id) {
    cJSON *piece = cJSON_CreateObject(), *body = cJSON_CreateObject();
    if (!piece || !body || !cJSON_AddStringToObject(body, "id", seq ? seq : name) ||
        !cJSON_AddNumberToObject(body, "type_id", type_id) ||
        !cJSON_AddItemToObject(piece, seq ? "Sequence" : "SpecialToken", body)) {
        cJSON_Delete(piece);
        cJSON_Delete(body);
        return false;
    }
    if (!push(arr, piece))
        return false;
    if (seq || cJSON_GetObjectItemCaseSensitive(sp, name))
        return true;
    cJSON *def = cJSON_CreateObject(), *ids = cJSON_CreateArray(), *toks = cJSON_CreateArray();
    bool ok = def && ids && toks && cJSON_AddStringToObject(def, "id", name) &&
              push(ids, cJSON_CreateNumber(id)) && push(toks, cJSON_CreateString(name));
    ok = ok && cJSON_AddItemToObject(def, "ids", ids);
    if (!ok) {
        cJSON_Delete(def);
        cJSON_Delete(ids);
        cJSON_Delete(toks);
        return false;
    }
    ids = NULL;
    if (!cJSON_AddItemToObject(def, "tokens", toks)) {
        cJSON_Delete(def);
        cJSON_Delete(toks);
        return false;
    }
    return put(sp, name, def);
}

typedef struct gg_spec {
    int32_t id;
    const char *name; /* its token text (NUL-free, checked) */
} gg_spec;

/* TemplateProcessing: single = [bos] $A [eos] [sep]. Pairs: with add_sep the
 * BERT/ModernBERT shape [bos] $A [eos] sep $B [eos] sep (type ids 0, as
 * ModernBERT's tokenizer.json); else the rule transformers' Llama/Gemma
 * tokenizers use: single + [bos:1] $B:1 [eos:1]. */
static cJSON *post_template(gg_spec bos, gg_spec eos, gg_spec sep) {
    cJSON *o = obj_type("TemplateProcessing");
    cJSON *single = cJSON_CreateArray(), *pair = cJSON_CreateArray(), *sp = cJSON_CreateObject();
    bool ok = o && single && pair && sp;
    for (int p = 0; p < 2 && ok; p++) {
        cJSON *arr = p ? pair : single;
        int n_seq = p ? 2 : 1;
        for (int k = 0; k < n_seq && ok; k++) {
            int ty = (k == 1 && !sep.name) ? 1 : 0;
            if (bos.name && (k == 0 || !sep.name))
                ok = ok && tpl_add(arr, sp, bos.name, bos.id, NULL, ty);
            ok = ok && tpl_add(arr, sp, NULL, 0, k ? "B" : "A", ty);
            if (eos.name)
                ok = ok && tpl_add(arr, sp, eos.name, eos.id, NULL, ty);
            if (sep.name)
                ok = ok && tpl_add(arr, sp, sep.name, sep.id, NULL, ty);
        }
    }
    if (!ok) {
        cJSON_Delete(o);
        cJSON_Delete(single);
        cJSON_Delete(pair);
        cJSON_Delete(sp);
        return NULL;
    }
    if (!put(o, "single", single)) {
        cJSON_Delete(o);
        cJSON_Delete(pair);
        cJSON_Delete(sp);
        return NULL;
    }
    if (!put(o, "pair", pair)) {
        cJSON_Delete(o);
        cJSON_Delete(sp);
        return NULL;
    }
    if (!put(o, "special_tokens", sp)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* ------------------------------------------------------------------------ */
/* the builder                                                               */

/* info.<special>: the token's vocabulary string (user-defined "▁" restored) */
static tp_status set_special_id(const tp_tokenizer *tok, tp_tok_special_token *t, int64_t id) {
    if (id < 0)
        return TP_OK;
    t->text = tp_strndup(tok->pool + tok->model_off[id], tok->model_len[id]);
    t->id = (int32_t)id;
    return t->text ? TP_OK : TP_ERR_OUT_OF_MEMORY;
}

static tp_status build_desc(tp_tokenizer *tok, const tp_tok_gguf_desc *d, const char *src,
                            tp_error *err) {
    tp_status st;
    bool llama = str_is(d->model, "llama");
    gg_pre pre = GP_LLAMA;
    bool clean_spaces = false;
    if (!llama) {
        if (!d->pre.s)
            return tp_fail(err, TP_ERR_UNSUPPORTED,
                           "%s: tokenizer.ggml.pre: missing (llama.cpp's fallback 'default' "
                           "pre-tokenizer is not supported)",
                           src);
        size_t k = 0, n = sizeof PRE_NAMES / sizeof PRE_NAMES[0];
        while (k < n && !str_is(d->pre, PRE_NAMES[k].name))
            k++;
        if (k == n)
            return tp_fail(err, TP_ERR_UNSUPPORTED,
                           "%s: tokenizer.ggml.pre '%.*s' is not supported (qwen2, "
                           "deepseek-r1-qwen, gpt-2, phi-2, mpt, olmo, modern-bert are)",
                           src, (int)(d->pre.len > 64 ? 64 : d->pre.len), d->pre.s);
        pre = PRE_NAMES[k].pre;
        clean_spaces = PRE_NAMES[k].clean_spaces;
    } else if (d->pre.s && !str_is(d->pre, "default")) {
        return tp_fail(err, TP_ERR_UNSUPPORTED,
                       "%s: tokenizer.ggml.pre '%.*s' is not supported with model llama (only "
                       "'default')",
                       src, (int)(d->pre.len > 64 ? 64 : d->pre.len), d->pre.s);
    }

    /* vocabulary: every token, id = index */
    uint32_t *ids = tp_malloc(d->n_tokens * sizeof *ids), *offs = tp_malloc(d->n_tokens * 4),
             *lens = tp_malloc(d->n_tokens * 4);
    if (!ids || !offs || !lens) {
        tp_free(ids);
        tp_free(offs);
        tp_free(lens);
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    }
    st = TP_OK;
    tp_buf ud = {0};
    for (size_t i = 0; i < d->n_tokens && !st; i++) {
        const char *s = d->tokens[i].s ? d->tokens[i].s : "";
        size_t len = d->tokens[i].len;
        if (llama && type_at(d, i) == TP_TOK_GGUF_USER_DEFINED && memchr(s, ' ', len)) {
            /* convert_hf_to_gguf.py wrote "▁" as " " in user-defined tokens;
             * the SentencePiece vocabulary (and its merges) has "▁" */
            ud.len = 0;
            for (size_t k = 0; k < len; k++)
                tp_buf_append(&ud, s[k] == ' ' ? META : s + k, s[k] == ' ' ? 3 : 1);
            s = ud.data ? ud.data : "";
            len = ud.len;
        }
        ids[i] = (uint32_t)i;
        lens[i] = (uint32_t)len;
        if (ud.oom || !tok_pool_add(tok, s, len, &offs[i]))
            st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    }
    tp_buf_free(&ud);
    uint32_t dup = TOK_NONE, dup_of = TOK_NONE;
    if (!st)
        st = tok_vocab_install(tok, ids, offs, lens, d->n_tokens, &dup, &dup_of, err);
    tp_free(ids);
    tp_free(offs);
    tp_free(lens);
    if (st)
        return st;
    if (dup != TOK_NONE)
        return tp_fail(err, TP_ERR_FORMAT,
                       "%s: tokenizer.ggml.tokens[%u]: duplicate of tokens[%u] ('%.*s')", src,
                       (unsigned)dup, (unsigned)dup_of,
                       (int)(d->tokens[dup].len > 64 ? 64 : d->tokens[dup].len),
                       d->tokens[dup].s ? d->tokens[dup].s : "");
    size_t vocab_ids = tok->n_ids;

    /* merges */
    if (d->merges)
        st = add_merges(tok, d, src, err);
    else if (llama && d->scores)
        st = derive_merges(tok, d, src, err);
    else
        st = tp_fail(err, TP_ERR_FORMAT, "%s: tokenizer.ggml.merges: missing%s", src,
                     llama ? " (and no tokenizer.ggml.scores to derive them from)" : "");
    if (st)
        return st;

    /* special ids: llama.cpp's defaults for SentencePiece vocabularies are not
     * used (an absent id stays absent); add_bos defaults to true for "llama"
     * as in llama.cpp, when there is a bos token */
    int64_t unk = d->unk_id;
    for (size_t i = 0; unk < 0 && llama && i < d->n_tokens; i++)
        if (type_at(d, i) == TP_TOK_GGUF_UNKNOWN)
            unk = (int64_t)i;
    bool add_bos = d->add_bos >= 0 ? d->add_bos == 1 : llama;
    bool add_eos = d->add_eos == 1, add_sep = d->add_sep == 1;
    /* convert_hf_to_gguf.py sets all three flags for ModernBERT, whose template
     * ends in one [SEP]: with add_sep, an eos that is the separator (or that is
     * absent) is not added a second time */
    if (add_sep && add_eos && (d->eos_id < 0 || d->eos_id == d->sep_id))
        add_eos = false;
    bool space_prefix = d->add_space_prefix >= 0 ? d->add_space_prefix == 1 : llama;
    bool bad_bos = d->add_bos == 1 && d->bos_id < 0, bad_eos = add_eos && d->eos_id < 0;
    if (bad_bos || bad_eos || (add_sep && d->sep_id < 0))
        return tp_fail(err, TP_ERR_FORMAT, "%s: tokenizer.ggml.add_%s_token set without a %s id",
                       src,
                       bad_bos   ? "bos"
                       : bad_eos ? "eos"
                                 : "sep",
                       bad_bos   ? "bos"
                       : bad_eos ? "eos"
                                 : "seperator");
    add_bos = add_bos && d->bos_id >= 0;

    /* components */
    cJSON *root = cJSON_CreateObject(), *model = obj_type("BPE");
    bool ok = root && model;
    if (ok && llama) {
        cJSON *norm = replace_obj(" ", META);
        if (space_prefix) { /* Sequence[Prepend("▁"), Replace(" ", "▁")] */
            cJSON *seq = seq_obj("Sequence", "normalizers"), *pp = obj_type("Prepend");
            cJSON *arr = cJSON_GetObjectItemCaseSensitive(seq, "normalizers");
            bool ok2 = pp && cJSON_AddStringToObject(pp, "prepend", META);
            ok2 = ok2 ? push(arr, pp) : (cJSON_Delete(pp), false);
            ok2 = ok2 ? push(arr, norm) : (cJSON_Delete(norm), false);
            norm = ok2 ? seq : (cJSON_Delete(seq), NULL);
        }
        ok = put(root, "normalizer", norm);
        cJSON *dec = seq_obj("Sequence", "decoders");
        cJSON *darr = cJSON_GetObjectItemCaseSensitive(dec, "decoders");
        ok = ok && push(darr, replace_obj(META, " ")) && push(darr, obj_type("ByteFallback")) &&
             push(darr, obj_type("Fuse"));
        if (ok && space_prefix) {
            cJSON *strip = obj_type("Strip");
            ok = strip && cJSON_AddStringToObject(strip, "content", " ") &&
                 cJSON_AddNumberToObject(strip, "start", 1) &&
                 cJSON_AddNumberToObject(strip, "stop", 0);
            ok = ok ? push(darr, strip) : (cJSON_Delete(strip), false);
        }
        ok = ok ? put(root, "decoder", dec) : (cJSON_Delete(dec), false);
        ok = ok && cJSON_AddBoolToObject(model, "byte_fallback", true) &&
             cJSON_AddBoolToObject(model, "fuse_unk", true);
    } else if (ok) {
        if (pre != GP_GPT2)
            ok = put(root, "normalizer", obj_type("NFC"));
        if (pre == GP_QWEN2) {
            cJSON *seq = seq_obj("Sequence", "pretokenizers");
            cJSON *arr = cJSON_GetObjectItemCaseSensitive(seq, "pretokenizers");
            cJSON *split = obj_type("Split"), *pat = cJSON_CreateObject();
            bool ok2 = split && pat && cJSON_AddStringToObject(pat, "Regex", QWEN2_RE);
            ok2 = ok2 ? put(split, "pattern", pat) : (cJSON_Delete(pat), false);
            ok2 = ok2 && cJSON_AddStringToObject(split, "behavior", "Isolated") &&
                  cJSON_AddBoolToObject(split, "invert", false);
            ok2 = ok2 ? push(arr, split) : (cJSON_Delete(split), false);
            ok2 = ok2 && push(arr, bytelevel_obj(false, false));
            ok = ok && (ok2 ? put(root, "pre_tokenizer", seq) : (cJSON_Delete(seq), false));
        } else {
            ok = ok && put(root, "pre_tokenizer", bytelevel_obj(true, true));
        }
        ok = ok && put(root, "decoder", bytelevel_obj(true, true));
    }
    if (ok && unk >= 0) { /* the token text (NUL-free, checked) */
        char *u = tp_strndup(d->tokens[unk].s ? d->tokens[unk].s : "", d->tokens[unk].len);
        ok = u && cJSON_AddStringToObject(model, "unk_token", u);
        tp_free(u);
    }

    /* added tokens */
    cJSON *added = cJSON_CreateArray();
    ok = ok && added;
    for (size_t i = 0; ok && i < d->n_tokens; i++) {
        int32_t ty = type_at(d, i);
        bool special = ty == TP_TOK_GGUF_CONTROL || (ty == TP_TOK_GGUF_UNKNOWN && llama);
        if (!special && ty != TP_TOK_GGUF_USER_DEFINED)
            continue;
        if (d->tokens[i].len == 0)
            continue;
        char *content = tp_strndup(tok->pool + tok->model_off[i], tok->model_len[i]);
        cJSON *a = cJSON_CreateObject();
        ok = content && a && cJSON_AddNumberToObject(a, "id", (double)i) &&
             cJSON_AddStringToObject(a, "content", content) &&
             cJSON_AddBoolToObject(a, "special", special) &&
             /* GPT-NeoX-style tokenizer.json files (ModernBERT) mark their
              * user-defined tokens normalized: matched after the special ones */
             cJSON_AddBoolToObject(a, "normalized", !special && pre == GP_NEOX) &&
             /* ModernBERT's tokenizer.json strips the space before [MASK] */
             cJSON_AddBoolToObject(a, "lstrip",
                                   str_is(d->pre, "modern-bert") && strcmp(content, "[MASK]") == 0);
        tp_free(content);
        ok = ok ? push(added, a) : (cJSON_Delete(a), false);
    }
    ok = ok ? put(root, "added_tokens", added) : (cJSON_Delete(added), false);

    /* post-processor */
    if (ok) {
        char *names[3] = {NULL, NULL, NULL};
        int64_t pid[3] = {add_bos ? d->bos_id : -1, add_eos ? d->eos_id : -1,
                          add_sep ? d->sep_id : -1};
        for (int k = 0; k < 3 && ok; k++)
            if (pid[k] >= 0)
                ok = (names[k] = tp_strndup(d->tokens[pid[k]].s ? d->tokens[pid[k]].s : "",
                                            d->tokens[pid[k]].len)) != NULL;
        if (ok && (add_bos || add_eos || add_sep))
            ok = put(root, "post_processor",
                     post_template((gg_spec){(int32_t)pid[0], names[0]},
                                   (gg_spec){(int32_t)pid[1], names[1]},
                                   (gg_spec){(int32_t)pid[2], names[2]}));
        else if (ok && !llama)
            ok = put(root, "post_processor", bytelevel_obj(true, pre != GP_QWEN2));
        for (int k = 0; k < 3; k++)
            tp_free(names[k]);
    }
    if (!ok) {
        cJSON_Delete(root);
        cJSON_Delete(model);
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    }
    st = tok_assemble(tok, src, root, model, vocab_ids, err);
    cJSON_Delete(root);
    cJSON_Delete(model);
    if (st)
        return st;

    /* settings, special tokens, chat templates */
    tok->info.add_bos_token = add_bos;
    tok->info.add_eos_token = add_eos;
    tok->info.clean_up_tokenization_spaces = clean_spaces;
    struct {
        tp_tok_special_token *t;
        int64_t id;
    } sp[] = {{&tok->info.bos, d->bos_id}, {&tok->info.eos, d->eos_id},
              {&tok->info.pad, d->pad_id}, {&tok->info.cls, d->cls_id},
              {&tok->info.sep, d->sep_id}, {&tok->info.mask, d->mask_id},
              {&tok->info.unk, unk}};
    for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++)
        if (set_special_id(tok, sp[i].t, sp[i].id))
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    if (d->chat_template.s) {
        char *t = tp_strndup(d->chat_template.s, d->chat_template.len);
        st = t ? tok_add_template(tok, "default", t) : TP_ERR_OUT_OF_MEMORY;
        tp_free(t);
        if (st)
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    }
    for (size_t i = 0; i < d->n_named_templates; i++) {
        char *nm = tp_strndup(d->template_names[i].s, d->template_names[i].len);
        char *t = tp_strndup(d->named_templates[i].s, d->named_templates[i].len);
        st = nm && t ? tok_add_template(tok, nm, t) : TP_ERR_OUT_OF_MEMORY;
        tp_free(nm);
        tp_free(t);
        if (st)
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    }
    return TP_OK;
}

tp_status tp_tok_load_gguf_desc(const tp_tok_gguf_desc *d, tp_tokenizer **out, tp_error *err) {
    if (!d || !out)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_tok_load_gguf_desc: NULL argument");
    *out = NULL;
    const char *src = d->source ? d->source : "(GGUF metadata)";
    tp_status st = check_desc(d, src, err);
    if (st)
        return st;
    tp_tokenizer *tok = tp_calloc(1, sizeof *tok);
    if (!tok)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    tp_tok_special_token *sp[] = {&tok->info.bos, &tok->info.eos,  &tok->info.pad, &tok->info.cls,
                                  &tok->info.sep, &tok->info.mask, &tok->info.unk};
    for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++)
        sp[i]->id = -1;
    tok->dir = tp_strdup(src);
    st = tok->dir ? build_desc(tok, d, src, err)
                  : tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    if (st) {
        tp_tok_free(tok);
        return st;
    }
    *out = tok;
    return TP_OK;
}

/* ------------------------------------------------------------------------ */
/* the exporter                                                              */

/* What tp_tok_gguf_export hands out: the description first, so the pointer
 * the caller frees is this block. */
typedef struct gg_owned {
    tp_tok_gguf_desc d;
    char *strings;              /* every string's bytes */
    tp_tok_gguf_str *tokens;    /* (n_tokens) */
    tp_tok_gguf_str *merges;    /* (n_merges) */
    tp_tok_gguf_str *templates; /* (2 * n_named_templates): names, then sources */
    float *scores;              /* (n_tokens) or NULL */
    int32_t *types;             /* (n_tokens) */
} gg_owned;

void tp_tok_gguf_desc_free(tp_tok_gguf_desc *d) {
    if (!d)
        return;
    gg_owned *o = (gg_owned *)d;
    tp_free(o->strings);
    tp_free(o->tokens);
    tp_free(o->merges);
    tp_free(o->templates);
    tp_free(o->scores);
    tp_free(o->types);
    tp_free(o);
}

/* llama.cpp's does_token_look_special (convert_hf_to_gguf.py): added tokens
 * that are control tokens even when not marked special */
static bool looks_special(const char *s, size_t n) {
    static const char *const names[] = {"<pad>", "<mask>", "<2mass>", "[@BOS@]"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (n == strlen(names[i]) && memcmp(s, names[i], n) == 0)
            return true;
#define ENDS(pre, suf)                                                                             \
    (n >= strlen(pre) + strlen(suf) && memcmp(s, pre, strlen(pre)) == 0 &&                         \
     memcmp(s + n - strlen(suf), suf, strlen(suf)) == 0)
    return ENDS("<|", "|>") || ENDS("<\xef\xbd\x9c", "\xef\xbd\x9c>") || ENDS("<unused", ">");
#undef ENDS
}

typedef struct gg_merge {
    uint32_t rank, a, b, piece;
} gg_merge;

static int merge_rank_cmp(const void *x, const void *y) {
    const gg_merge *a = x, *b = y;
    return a->rank < b->rank ? -1 : a->rank > b->rank;
}

/* string offsets into the builder's buffer, turned into pointers at the end */
typedef struct gg_span {
    size_t off, len;
} gg_span;

static bool sb_add(tp_buf *sb, const char *s, size_t n, gg_span *out) {
    out->off = sb->len;
    out->len = n;
    tp_buf_append(sb, s, n);
    return !sb->oom;
}

/* Scores for a "llama" description such that transformers' rule (derive_merges)
 * gives back exactly tok's merge order: walking the merges by rank, a merge
 * joins the current score group when the rule's within-group order (longer
 * left, longer right, piece id, left id, right id) puts it after the previous
 * merge, else it opens the next group (score one lower). Each piece gets the
 * score of the group of its first merge; pieces that no merge produces get a
 * score below every group. For Gemma 3's tokenizer.json this reproduces all
 * 514,906 merges in order (178,703 groups; tested). */
static void export_scores(const tp_tokenizer *tok, const gg_merge *m, size_t nm, float *scores,
                          size_t n) {
    const float unset = 1.0f; /* scores are <= 0 */
    for (size_t i = 0; i < n; i++)
        scores[i] = unset;
    float g = 0.0f;
    for (size_t k = 0; k < nm; k++) {
        if (k > 0) {
            const gg_merge *p = &m[k - 1], *c = &m[k];
            size_t pla = n_chars(tok->pool + tok->model_off[p->a], tok->model_len[p->a]);
            size_t plb = n_chars(tok->pool + tok->model_off[p->b], tok->model_len[p->b]);
            size_t cla = n_chars(tok->pool + tok->model_off[c->a], tok->model_len[c->a]);
            size_t clb = n_chars(tok->pool + tok->model_off[c->b], tok->model_len[c->b]);
            bool after = cla != pla             ? cla < pla
                         : clb != plb           ? clb < plb
                         : c->piece != p->piece ? c->piece > p->piece
                         : c->a != p->a         ? c->a > p->a
                                                : c->b > p->b;
            if (!after && scores[c->piece] == unset)
                g -= 1.0f;
        }
        if (scores[m[k].piece] == unset)
            scores[m[k].piece] = g;
    }
    for (size_t i = 0; i < n; i++)
        if (scores[i] == unset)
            scores[i] = g - 1.0f;
}

tp_status tp_tok_gguf_export_tok(const tp_tokenizer *tok, const tp_tok_gguf_export_params *params,
                                 tp_tok_gguf_desc **out, tp_error *err) {
    if (!tok || !out)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_tok_gguf_export: NULL argument");
    *out = NULL;
    tp_tok_gguf_export_params P = params ? *params : tp_tok_gguf_export_default_params();
    const char *src = tok->dir ? tok->dir : "(tokenizer)";

    /* which GGUF tokenizer this is */
    bool llama = false, space_prefix = false;
    const char *pre = NULL;
    const tok_normalizer *nz = tok->has_normalizer ? &tok->normalizer : NULL;
    const tok_pretok *pt = tok->has_pretok ? &tok->pretok : NULL;
    if (tok->cont_prefix || tok->eow_suffix || tok->ignore_merges)
        return tp_fail(err, TP_ERR_UNSUPPORTED,
                       "%s: a BPE model with continuing_subword_prefix, end_of_word_suffix or "
                       "ignore_merges has no GGUF equivalent here",
                       src);
    if (tok->byte_level) {
        bool nfc = nz && nz->kind == TN_NFC;
        if (pt && pt->kind == TP_PRE_SEQUENCE && pt->n_items == 2 &&
            pt->items[0].kind == TP_PRE_SPLIT && pt->items[0].pat.is_regex &&
            pt->items[0].pat.regex && strcmp(pt->items[0].pat.regex, QWEN2_RE) == 0 &&
            pt->items[0].behavior == TS_ISOLATED && !pt->items[0].invert &&
            pt->items[1].kind == TP_PRE_BYTELEVEL && !pt->items[1].use_regex &&
            !pt->items[1].add_prefix_space && nfc)
            pre = "qwen2";
        else if (pt && pt->kind == TP_PRE_BYTELEVEL && pt->use_regex && !pt->add_prefix_space &&
                 (nfc || !nz))
            pre = !nz                                              ? "gpt-2"
                  : tok->info.cls.id >= 0 && tok->info.sep.id >= 0 ? "modern-bert"
                                                                   : "mpt";
        if (!pre || !tok->has_decoder || tok->decoder.kind != TD_BYTELEVEL)
            return tp_fail(
                err, TP_ERR_UNSUPPORTED,
                "%s: byte-level tokenizer whose normalizer/pre-tokenizer/decoder match "
                "no GGUF pre-tokenizer name tpipe knows (qwen2, gpt-2, mpt, modern-bert)",
                src);
    } else {
        const tok_normalizer *rep = nz;
        if (nz && nz->kind == TN_SEQUENCE && nz->n_items == 2 && nz->items[0].kind == TN_PREPEND &&
            nz->items[0].content_len == 3 && memcmp(nz->items[0].content, META, 3) == 0) {
            space_prefix = true;
            rep = &nz->items[1];
        }
        bool rep_ok = rep && rep->kind == TN_REPLACE && !rep->pat.is_regex &&
                      rep->pat.literal_len == 1 && rep->pat.literal[0] == ' ' &&
                      rep->content_len == 3 && memcmp(rep->content, META, 3) == 0;
        /* Gemma 3's Split(" ") never matches after the normalizer: allowed */
        bool pt_ok = !pt || (pt->kind == TP_PRE_SPLIT && !pt->pat.is_regex &&
                             pt->pat.literal_len == 1 && pt->pat.literal[0] == ' ');
        if (!rep_ok || !pt_ok || !tok->byte_fallback)
            return tp_fail(err, TP_ERR_UNSUPPORTED,
                           "%s: tokenizer matches neither a byte-level BPE (GGUF gpt2) nor a "
                           "SentencePiece-style BPE with byte_fallback and a \" \" -> \"▁\" "
                           "normalizer (GGUF llama)",
                           src);
        llama = true;
    }

    /* post-processor -> add_bos / add_eos / add_sep */
    int32_t bos = tok->info.bos.id, eos = tok->info.eos.id;
    int add_bos = 0, add_eos = 0, add_sep = 0;
    const tok_post *post = &tok->post;
    if (post->kind == TPP_TEMPLATE) {
        size_t first_seq = post->n_single, k;
        for (k = 0; k < post->n_single; k++)
            if (post->single[k].seq >= 0) {
                first_seq = k;
                break;
            }
        size_t lead = first_seq, trail = post->n_single - (first_seq + 1);
        bool shape = first_seq < post->n_single && lead <= 1 && trail <= 1;
        for (k = 0; shape && k < post->n_single; k++)
            if (post->single[k].seq < 0 && post->single[k].n_ids != 1)
                shape = false;
        if (!shape)
            return tp_fail(err, TP_ERR_UNSUPPORTED,
                           "%s: post_processor template is not [special] $A [special]", src);
        if (lead) {
            add_bos = 1;
            bos = (int32_t)post->single[0].ids[0];
        }
        if (trail) {
            int32_t t = (int32_t)post->single[post->n_single - 1].ids[0];
            if (t == tok->info.sep.id) {
                add_sep = 1;
            } else {
                add_eos = 1;
                eos = t;
            }
        }
    } else if (post->kind != TPP_NONE && post->kind != TPP_BYTELEVEL) {
        return tp_fail(err, TP_ERR_UNSUPPORTED,
                       "%s: post_processor (Roberta/Bert/Sequence) has no GGUF equivalent here; "
                       "only TemplateProcessing and ByteLevel",
                       src);
    }

    size_t n = P.vocab_size ? P.vocab_size : tok->n_ids;
    if (n < tok->n_ids)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT,
                       "%s: vocab_size %zu is below the tokenizer's %zu ids", src, n, tok->n_ids);

    gg_owned *o = tp_calloc(1, sizeof *o);
    gg_span *ts = tp_calloc(n, sizeof *ts);
    gg_merge *m = tp_malloc((tok->n_merges ? tok->n_merges : 1) * sizeof *m);
    gg_span *ms = tp_malloc((tok->n_merges ? tok->n_merges : 1) * sizeof *ms);
    gg_span *tpl = tp_calloc(2 * tok->n_templates + 1, sizeof *tpl);
    gg_span deftpl = {0, 0};
    bool have_default = false;
    tp_buf sb = {0}, tmp = {0};
    size_t nm = 0;
    bool ok = o && ts && m && ms && tpl;
    if (ok) {
        o->d = tp_tok_gguf_desc_empty();
        o->types = tp_malloc(n * sizeof *o->types);
        o->tokens = tp_malloc(n * sizeof *o->tokens);
        o->scores = llama ? tp_malloc(n * sizeof *o->scores) : NULL;
        ok = o->types && o->tokens && (!llama || o->scores);
    }
    /* tokens and types, as convert_hf_to_gguf.py's get_vocab_base */
    for (size_t id = 0; ok && id < n; id++) {
        char pad[32];
        if (id < tok->n_ids && tok->is_added[id]) {
            size_t len = tok->tok_len[id];
            const char *s = tok->pool + tok->tok_off[id];
            if (tok->is_special[id] || looks_special(s, len)) {
                o->types[id] = TP_TOK_GGUF_CONTROL;
                ok = sb_add(&sb, s, len, &ts[id]);
            } else { /* user-defined: "▁" -> " " (llama.cpp pre-normalizes them) */
                o->types[id] = TP_TOK_GGUF_USER_DEFINED;
                tmp.len = 0;
                for (size_t i = 0; i < len; i++) {
                    if (i + 3 <= len && memcmp(s + i, META, 3) == 0) {
                        tp_buf_append(&tmp, " ", 1);
                        i += 2;
                    } else {
                        tp_buf_append(&tmp, s + i, 1);
                    }
                }
                ok = !tmp.oom && sb_add(&sb, tmp.data ? tmp.data : "", tmp.len, &ts[id]);
            }
        } else if (id < tok->n_ids && tok->model_len[id] != TOK_NONE) {
            const char *s = tok->pool + tok->model_off[id];
            size_t len = tok->model_len[id];
            o->types[id] = llama && is_byte_token(s, len) ? TP_TOK_GGUF_BYTE
                           : id == tok->unk_id            ? TP_TOK_GGUF_UNKNOWN
                                                          : TP_TOK_GGUF_NORMAL;
            ok = sb_add(&sb, s, len, &ts[id]);
        } else {
            o->types[id] = TP_TOK_GGUF_UNUSED;
            int k = snprintf(pad, sizeof pad, "[PAD%zu]", id);
            ok = sb_add(&sb, pad, (size_t)k, &ts[id]);
        }
    }
    /* merges in rank order */
    for (size_t i = 0; ok && tok->merges.slots && i <= tok->merges.mask; i++) {
        const tok_merge_slot *s = &tok->merges.slots[i];
        if (s->key != UINT64_MAX && nm < tok->n_merges)
            m[nm++] = (gg_merge){s->rank, (uint32_t)(s->key >> 32), (uint32_t)s->key, s->id};
    }
    if (ok)
        qsort(m, nm, sizeof *m, merge_rank_cmp);
    for (size_t i = 0; ok && i < nm; i++) {
        size_t off = sb.len;
        tp_buf_append(&sb, tok->pool + tok->model_off[m[i].a], tok->model_len[m[i].a]);
        tp_buf_append(&sb, " ", 1);
        tp_buf_append(&sb, tok->pool + tok->model_off[m[i].b], tok->model_len[m[i].b]);
        ms[i] = (gg_span){off, sb.len - off};
        ok = !sb.oom;
    }
    if (ok && llama)
        export_scores(tok, m, nm, o->scores, n);
    /* llama.cpp's -1000 for added tokens where that means the same (score 0:
     * derive_merges reads -1000 on a control/user-defined token as 0) */
    for (size_t id = 0; ok && llama && id < tok->n_ids; id++)
        if (tok->is_added[id] && o->scores[id] == 0.0f &&
            (o->types[id] == TP_TOK_GGUF_CONTROL || o->types[id] == TP_TOK_GGUF_USER_DEFINED))
            o->scores[id] = -1000.0f;
    /* chat templates */
    size_t nt = 0;
    for (size_t i = 0; ok && i < tok->n_templates; i++) {
        const tp_tok_chat_template *t = &tok->templates[i];
        if (!have_default && strcmp(t->name, "default") == 0) {
            have_default = true;
            ok = sb_add(&sb, t->template, strlen(t->template), &deftpl);
        } else {
            ok = sb_add(&sb, t->name, strlen(t->name), &tpl[2 * nt]) &&
                 sb_add(&sb, t->template, strlen(t->template), &tpl[2 * nt + 1]);
            nt++;
        }
    }
    if (ok) {
        o->merges = tp_malloc((nm ? nm : 1) * sizeof *o->merges);
        o->templates = tp_malloc((2 * nt + 1) * sizeof *o->templates);
        o->strings = tp_buf_take(&sb);
        ok = o->merges && o->templates && o->strings;
    }
    if (ok) {
        const char *S = o->strings;
        for (size_t i = 0; i < n; i++)
            o->tokens[i] = (tp_tok_gguf_str){S + ts[i].off, ts[i].len};
        for (size_t i = 0; i < nm; i++)
            o->merges[i] = (tp_tok_gguf_str){S + ms[i].off, ms[i].len};
        for (size_t i = 0; i < 2 * nt; i++)
            o->templates[i] = (tp_tok_gguf_str){S + tpl[i].off, tpl[i].len};
        tp_tok_gguf_desc *d = &o->d;
        d->source = NULL;
        d->model = (tp_tok_gguf_str){llama ? "llama" : "gpt2", llama ? 5u : 4u};
        d->pre = llama ? (tp_tok_gguf_str){"default", 7} : (tp_tok_gguf_str){pre, strlen(pre)};
        d->tokens = o->tokens;
        d->n_tokens = n;
        d->scores = o->scores;
        d->n_scores = llama ? n : 0;
        d->token_type = o->types;
        d->n_token_type = n;
        d->merges = o->merges;
        d->n_merges = nm;
        d->bos_id = bos;
        d->eos_id = eos;
        d->unk_id = tok->info.unk.id;
        d->pad_id = tok->info.pad.id;
        d->sep_id = tok->info.sep.id;
        d->cls_id = tok->info.cls.id;
        d->mask_id = tok->info.mask.id;
        d->add_bos = add_bos;
        d->add_eos = add_eos;
        d->add_sep = add_sep;
        d->add_space_prefix = llama ? space_prefix : -1;
        if (have_default)
            d->chat_template = (tp_tok_gguf_str){S + deftpl.off, deftpl.len};
        d->template_names = o->templates;
        d->named_templates = o->templates + nt;
        d->n_named_templates = nt;
        /* names first, then sources: re-pack the interleaved pairs */
        for (size_t i = 0; i < nt; i++) {
            o->templates[i] = (tp_tok_gguf_str){S + tpl[2 * i].off, tpl[2 * i].len};
            o->templates[nt + i] = (tp_tok_gguf_str){S + tpl[2 * i + 1].off, tpl[2 * i + 1].len};
        }
    }
    tp_free(ts);
    tp_free(m);
    tp_free(ms);
    tp_free(tpl);
    tp_buf_free(&sb);
    tp_buf_free(&tmp);
    if (!ok) {
        if (o)
            tp_tok_gguf_desc_free(&o->d);
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    }
    *out = &o->d;
    return TP_OK;
}

tp_status tp_tok_gguf_export(const char *dir, const tp_tok_gguf_export_params *params,
                             tp_tok_gguf_desc **out, tp_error *err) {
    if (!dir || !out)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_tok_gguf_export: NULL argument");
    *out = NULL;
    tp_tokenizer *tok = NULL;
    tp_status st = tp_tok_load(dir, &tok, err);
    if (st)
        return st;
    st = tp_tok_gguf_export_tok(tok, params, out, err);
    tp_tok_free(tok);
    return st;
}
