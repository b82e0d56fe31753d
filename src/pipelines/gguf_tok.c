/*
 * gguf_tok.c — what a GGUF checkpoint carries besides the network: the
 * tokenizer (tokenizer.ggml.* keys, read into the tokenizer module's
 * tp_tok_gguf_desc and built by tp_tok_load_gguf_desc) and the chat template
 * (tokenizer.chat_template, with bos_token / eos_token set from the token list
 * as the HF tokenizer_config.json would give them).
 *
 * The description points into the GGUF mapping (strings are length-delimited
 * there); only the two arrays of string views are allocated here.
 */
#include "pipelines/gguf_tok.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* A string array key as views; *out NULL when absent. */
static tp_status str_array(const tp_gguf *g, const char *key, tp_tok_gguf_str **out, size_t *n,
                           tp_error *err) {
    *out = NULL;
    *n = 0;
    const tp_gguf_kv *kv = NULL;
    tp_status st = tp_gguf_get_arr(g, key, TP_GGUF_STRING, &kv, err);
    if (st || !kv)
        return st;
    tp_tok_gguf_str *v = tp_malloc_array(kv->n ? (size_t)kv->n : 1, sizeof *v);
    if (!v)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "%s: out of memory", tp_gguf_path(g));
    for (uint64_t i = 0; i < kv->n; i++)
        v[i].s = tp_gguf_arr_str(kv, i, &v[i].len);
    *out = v;
    *n = (size_t)kv->n;
    return TP_OK;
}

static tp_status get_str(const tp_gguf *g, const char *key, tp_tok_gguf_str *out, tp_error *err) {
    const tp_gguf_kv *kv = tp_gguf_find_kv(g, key);
    out->s = NULL;
    out->len = 0;
    if (!kv)
        return TP_OK;
    if (kv->type != TP_GGUF_STRING)
        return tp_fail(err, TP_ERR_FORMAT, "%s: key '%s' has type %s (need string)",
                       tp_gguf_path(g), key, tp_gguf_type_name(kv->type));
    out->s = kv->str;
    out->len = (size_t)kv->str_len;
    return TP_OK;
}

/* A numeric array key: pointer to its elements (any alignment) when of `type`. */
static tp_status num_array(const tp_gguf *g, const char *key, tp_gguf_type type, const void **out,
                           size_t *n, tp_error *err) {
    const tp_gguf_kv *kv = NULL;
    *out = NULL;
    *n = 0;
    tp_status st = tp_gguf_get_arr(g, key, type, &kv, err);
    if (st || !kv)
        return st;
    *out = kv->data;
    *n = (size_t)kv->n;
    return TP_OK;
}

tp_status tp_gguf_load_tokenizer(const tp_gguf *g, tp_tokenizer **out, tp_error *err) {
    *out = NULL;
    tp_tok_gguf_desc d = tp_tok_gguf_desc_empty();
    d.source = tp_gguf_path(g);
    tp_tok_gguf_str *tokens = NULL, *merges = NULL;
    tp_status st;
    if ((st = get_str(g, "tokenizer.ggml.model", &d.model, err)) ||
        (st = get_str(g, "tokenizer.ggml.pre", &d.pre, err)) ||
        (st = get_str(g, "tokenizer.chat_template", &d.chat_template, err)) ||
        (st = str_array(g, "tokenizer.ggml.tokens", &tokens, &d.n_tokens, err)) ||
        (st = str_array(g, "tokenizer.ggml.merges", &merges, &d.n_merges, err)) ||
        (st =
             num_array(g, "tokenizer.ggml.scores", TP_GGUF_FLOAT32, &d.scores, &d.n_scores, err)) ||
        (st = num_array(g, "tokenizer.ggml.token_type", TP_GGUF_INT32, &d.token_type,
                        &d.n_token_type, err)))
        goto done;
    if (!d.model.s || !tokens) {
        st = tp_fail(err, TP_ERR_NOT_FOUND,
                     "%s: no tokenizer: the file has no tokenizer.ggml.model / "
                     "tokenizer.ggml.tokens and there is no tokenizer.json beside it",
                     tp_gguf_path(g));
        goto done;
    }
    d.tokens = tokens;
    d.merges = merges;
    static const struct {
        const char *key;
        size_t off;
    } kIds[] = {
        {"tokenizer.ggml.bos_token_id", offsetof(tp_tok_gguf_desc, bos_id)},
        {"tokenizer.ggml.eos_token_id", offsetof(tp_tok_gguf_desc, eos_id)},
        {"tokenizer.ggml.unknown_token_id", offsetof(tp_tok_gguf_desc, unk_id)},
        {"tokenizer.ggml.padding_token_id", offsetof(tp_tok_gguf_desc, pad_id)},
        {"tokenizer.ggml.seperator_token_id", offsetof(tp_tok_gguf_desc, sep_id)},
        {"tokenizer.ggml.cls_token_id", offsetof(tp_tok_gguf_desc, cls_id)},
        {"tokenizer.ggml.mask_token_id", offsetof(tp_tok_gguf_desc, mask_id)},
    };
    for (size_t i = 0; i < sizeof kIds / sizeof kIds[0]; i++)
        if ((st = tp_gguf_get_int(g, kIds[i].key, -1, (int64_t *)((char *)&d + kIds[i].off), err)))
            goto done;
    static const struct {
        const char *key;
        size_t off;
    } kFlags[] = {
        {"tokenizer.ggml.add_bos_token", offsetof(tp_tok_gguf_desc, add_bos)},
        {"tokenizer.ggml.add_eos_token", offsetof(tp_tok_gguf_desc, add_eos)},
        {"tokenizer.ggml.add_sep_token", offsetof(tp_tok_gguf_desc, add_sep)},
        {"tokenizer.ggml.add_space_prefix", offsetof(tp_tok_gguf_desc, add_space_prefix)},
    };
    for (size_t i = 0; i < sizeof kFlags / sizeof kFlags[0]; i++) {
        if (!tp_gguf_find_kv(g, kFlags[i].key))
            continue;
        bool b = false;
        if ((st = tp_gguf_get_bool(g, kFlags[i].key, false, &b, err)))
            goto done;
        *(int *)((char *)&d + kFlags[i].off) = b ? 1 : 0;
    }
    st = tp_tok_load_gguf_desc(&d, out, err);
done:
    tp_free(tokens);
    tp_free(merges);
    return st;
}

/* Sets a special-token variable of the template from a token id key. */
static tp_status set_special(const tp_gguf *g, tp_chat_template *ct, const char *var,
                             const char *key, tp_error *err) {
    int64_t id = -1;
    tp_status st = tp_gguf_get_int(g, key, -1, &id, err);
    const tp_gguf_kv *toks = tp_gguf_find_kv(g, "tokenizer.ggml.tokens");
    if (st || id < 0 || !toks || toks->type != TP_GGUF_ARRAY || toks->arr_type != TP_GGUF_STRING ||
        (uint64_t)id >= toks->n)
        return st;
    size_t len;
    const char *s = tp_gguf_arr_str(toks, (uint64_t)id, &len);
    char *text = tp_strndup(s, len);
    if (!text)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    st = tp_chat_template_set_special_token(ct, var, text, err);
    tp_free(text);
    return st;
}

tp_status tp_gguf_chat_template(const tp_gguf *g, tp_chat_template **out, tp_error *err) {
    *out = NULL;
    const char *tpl = NULL;
    tp_status st = tp_gguf_get_str(g, "tokenizer.chat_template", NULL, &tpl, err);
    if (st)
        return st;
    if (!tpl)
        return tp_fail(err, TP_ERR_NOT_FOUND, "%s: no tokenizer.chat_template", tp_gguf_path(g));
    char name[4200];
    snprintf(name, sizeof name, "%s: tokenizer.chat_template", tp_gguf_path(g));
    tp_chat_template *ct = NULL;
    if ((st = tp_chat_template_from_strings(NULL, tpl, name, &ct, err)))
        return st;
    if ((st = set_special(g, ct, "bos_token", "tokenizer.ggml.bos_token_id", err)) ||
        (st = set_special(g, ct, "eos_token", "tokenizer.ggml.eos_token_id", err)) ||
        (st = set_special(g, ct, "pad_token", "tokenizer.ggml.padding_token_id", err)) ||
        (st = set_special(g, ct, "unk_token", "tokenizer.ggml.unknown_token_id", err))) {
        tp_chat_template_destroy(ct);
        return st;
    }
    *out = ct;
    return TP_OK;
}

/* ---------------------------------------------------------------- writing */

static tp_status set_strv(tp_gguf_writer *w, const char *key, tp_tok_gguf_str v, tp_error *err) {
    return v.s ? tp_gguf_set_strn(w, key, v.s, v.len, err) : TP_OK;
}

static tp_status set_str_arr(tp_gguf_writer *w, const char *key, const tp_tok_gguf_str *v, size_t n,
                             tp_error *err) {
    if (!v)
        return TP_OK;
    const char **s = tp_malloc_array(n ? n : 1, sizeof *s);
    size_t *l = tp_malloc_array(n ? n : 1, sizeof *l);
    tp_status st = TP_OK;
    if (!s || !l)
        st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t i = 0; st == TP_OK && i < n; i++) {
        s[i] = v[i].s ? v[i].s : "";
        l[i] = v[i].s ? v[i].len : 0;
    }
    if (st == TP_OK)
        st = tp_gguf_set_arr_str(w, key, s, l, n, err);
    tp_free(s);
    tp_free(l);
    return st;
}

tp_status tp_gguf_set_tokenizer(tp_gguf_writer *w, const tp_tok_gguf_desc *d, tp_error *err) {
    if (!w || !d)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_gguf_set_tokenizer: NULL argument");
    tp_status st;
    if ((st = set_strv(w, "tokenizer.ggml.model", d->model, err)) ||
        (st = set_strv(w, "tokenizer.ggml.pre", d->pre, err)) ||
        (st = set_str_arr(w, "tokenizer.ggml.tokens", d->tokens, d->n_tokens, err)) ||
        (d->scores && (st = tp_gguf_set_arr(w, "tokenizer.ggml.scores", TP_GGUF_FLOAT32, d->scores,
                                            d->n_scores, err))) ||
        (d->token_type && (st = tp_gguf_set_arr(w, "tokenizer.ggml.token_type", TP_GGUF_INT32,
                                                d->token_type, d->n_token_type, err))) ||
        (st = set_str_arr(w, "tokenizer.ggml.merges", d->merges, d->n_merges, err)))
        return st;
    const struct {
        const char *key;
        int64_t v;
    } ids[] = {
        {"tokenizer.ggml.bos_token_id", d->bos_id},
        {"tokenizer.ggml.eos_token_id", d->eos_id},
        {"tokenizer.ggml.unknown_token_id", d->unk_id},
        {"tokenizer.ggml.padding_token_id", d->pad_id},
        {"tokenizer.ggml.seperator_token_id", d->sep_id},
        {"tokenizer.ggml.cls_token_id", d->cls_id},
        {"tokenizer.ggml.mask_token_id", d->mask_id},
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (ids[i].v >= 0 && ids[i].v <= (int64_t)UINT32_MAX &&
            (st = tp_gguf_set_u32(w, ids[i].key, (uint32_t)ids[i].v, err)))
            return st;
    const struct {
        const char *key;
        int v;
    } flags[] = {
        {"tokenizer.ggml.add_bos_token", d->add_bos},
        {"tokenizer.ggml.add_eos_token", d->add_eos},
        {"tokenizer.ggml.add_sep_token", d->add_sep},
        {"tokenizer.ggml.add_space_prefix", d->add_space_prefix},
    };
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (flags[i].v >= 0 && (st = tp_gguf_set_bool(w, flags[i].key, flags[i].v != 0, err)))
            return st;
    if ((st = set_strv(w, "tokenizer.chat_template", d->chat_template, err)))
        return st;
    if (d->n_named_templates && d->template_names && d->named_templates) {
        if ((st = set_str_arr(w, "tokenizer.chat_templates", d->template_names,
                              d->n_named_templates, err)))
            return st;
        for (size_t i = 0; i < d->n_named_templates; i++) {
            char key[300];
            snprintf(key, sizeof key, "tokenizer.chat_template.%.*s",
                     (int)(d->template_names[i].len < 200 ? d->template_names[i].len : 200),
                     d->template_names[i].s ? d->template_names[i].s : "");
            if ((st = set_strv(w, key, d->named_templates[i], err)))
                return st;
        }
    }
    return TP_OK;
}
