/*
 * tok_decode.c — ids -> text through the tokenizer.json decoder chain, as the
 * Rust `tokenizers` crate does it: every decoder maps a list of token strings
 * to a list of strings (ByteLevel and Fuse collapse it to one), and the result
 * is their concatenation. transformers' clean_up_tokenization_spaces is applied
 * afterwards when asked. Also the streaming decoder (HF's DecodeStream
 * algorithm: decode a short window and emit only what extends the previous
 * text and does not end in an incomplete character).
 */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- Rust String::from_utf8_lossy ---- */

void tok_append_lossy(tp_buf *out, const char *str, size_t n) {
    const uint8_t *s = (const uint8_t *)str;
    size_t i = 0;
    while (i < n) {
        size_t ok = tp_utf8_validate((const char *)s + i, n - i);
        tp_buf_append(out, s + i, ok);
        i += ok;
        if (i >= n)
            break;
        /* one U+FFFD per maximal invalid subpart (a valid prefix of a sequence) */
        uint8_t c = s[i];
        size_t need = 0;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF)
            need = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0;
            if (c == 0xED)
                hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90;
            if (c == 0xF4)
                hi = 0x8F;
        }
        size_t k = 1;
        if (need) {
            if (i + 1 < n && s[i + 1] >= lo && s[i + 1] <= hi) {
                k = 2;
                while (k <= need && i + k < n && (s[i + k] & 0xC0) == 0x80)
                    k++;
            }
        }
        tp_buf_append(out, "\xEF\xBF\xBD", 3);
        i += k;
    }
}

/* ---- lists of strings ---- */

typedef struct slist {
    tp_buf b;
    size_t *off, *len;
    size_t n, cap;
} slist;

static void sl_free(slist *l) {
    tp_buf_free(&l->b);
    tp_free(l->off);
    tp_free(l->len);
    memset(l, 0, sizeof *l);
}

static void sl_reset(slist *l) {
    l->b.len = 0;
    l->n = 0;
}

/* Starts a new string at the end of the buffer. */
static bool sl_begin(slist *l) {
    if (l->n == l->cap) {
        size_t c = l->cap ? l->cap * 2 : 64;
        size_t *a = tp_realloc(l->off, c * sizeof *a);
        if (a)
            l->off = a;
        size_t *b = tp_realloc(l->len, c * sizeof *b);
        if (b)
            l->len = b;
        if (!a || !b)
            return false;
        l->cap = c;
    }
    l->off[l->n] = l->b.len;
    l->len[l->n] = 0;
    l->n++;
    return true;
}

static void sl_end(slist *l) {
    l->len[l->n - 1] = l->b.len - l->off[l->n - 1];
}

static bool sl_push(slist *l, const char *s, size_t n) {
    if (!sl_begin(l))
        return false;
    tp_buf_append(&l->b, s, n);
    sl_end(l);
    return !l->b.oom;
}

static const char *sl_str(const slist *l, size_t i) {
    return l->b.data ? l->b.data + l->off[i] : "";
}

/* ---- decoders ---- */

static int hexv(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static tp_status decode_step(const tp_tokenizer *tok, const tok_decoder *d, slist *in, slist *out,
                             pcre2_match_data *md);

static tp_status decode_chain(const tp_tokenizer *tok, const tok_decoder *d, slist *a, slist *b,
                              pcre2_match_data *md) {
    if (d->kind == TD_SEQUENCE) {
        for (size_t i = 0; i < d->n_items; i++) {
            tp_status st = decode_chain(tok, &d->items[i], a, b, md);
            if (st)
                return st;
        }
        return TP_OK;
    }
    sl_reset(b);
    tp_status st = decode_step(tok, d, a, b, md);
    if (st)
        return st;
    slist t = *a;
    *a = *b;
    *b = t;
    return TP_OK;
}

static tp_status decode_step(const tp_tokenizer *tok, const tok_decoder *d, slist *in, slist *out,
                             pcre2_match_data *md) {
    switch (d->kind) {
    case TD_BYTELEVEL: {
        tp_buf raw = {0};
        for (size_t i = 0; i < in->n; i++) {
            const char *s = sl_str(in, i);
            size_t n = in->len[i], start = raw.len;
            bool all = true;
            for (size_t k = 0; k < n;) {
                uint32_t c;
                int l = tp_utf8_decode(s + k, n - k, &c);
                if (c >= 324 || !tok->bl_char_valid[c]) {
                    all = false;
                    break;
                }
                uint8_t byte = tok->bl_char_to_byte[c];
                tp_buf_append(&raw, &byte, 1);
                k += (size_t)l;
            }
            if (!all) {
                raw.len = start;
                tp_buf_append(&raw, s, n);
            }
        }
        if (!sl_begin(out)) {
            tp_buf_free(&raw);
            return TP_ERR_OUT_OF_MEMORY;
        }
        tok_append_lossy(&out->b, raw.data ? raw.data : "", raw.len);
        sl_end(out);
        bool oom = raw.oom;
        tp_buf_free(&raw);
        return oom || out->b.oom ? TP_ERR_OUT_OF_MEMORY : TP_OK;
    }
    case TD_BYTEFALLBACK: {
        /* a run of "<0xNN>" tokens becomes its bytes when they are valid UTF-8,
         * else one U+FFFD per byte token (HF's ByteFallback) */
        tp_buf bytes = {0};
        tp_status st = TP_OK;
        for (size_t i = 0; i <= in->n && !st; i++) {
            const char *s = i < in->n ? sl_str(in, i) : NULL;
            size_t n = i < in->n ? in->len[i] : 0;
            int h1 = -1, h2 = -1;
            if (s && n == 6 && s[0] == '<' && s[1] == '0' && s[2] == 'x' && s[5] == '>') {
                h1 = hexv(s[3]);
                h2 = hexv(s[4]);
            }
            if (h1 >= 0 && h2 >= 0) {
                uint8_t byte = (uint8_t)(h1 * 16 + h2);
                tp_buf_append(&bytes, &byte, 1);
                continue;
            }
            if (bytes.len) {
                if (tp_utf8_validate(bytes.data, bytes.len) == bytes.len) {
                    if (!sl_push(out, bytes.data, bytes.len))
                        st = TP_ERR_OUT_OF_MEMORY;
                } else {
                    for (size_t k = 0; k < bytes.len && !st; k++)
                        if (!sl_push(out, "\xEF\xBF\xBD", 3))
                            st = TP_ERR_OUT_OF_MEMORY;
                }
                bytes.len = 0;
            }
            if (s && !st && !sl_push(out, s, n))
                st = TP_ERR_OUT_OF_MEMORY;
        }
        if (bytes.oom)
            st = TP_ERR_OUT_OF_MEMORY;
        tp_buf_free(&bytes);
        return st;
    }
    case TD_FUSE: {
        if (!sl_begin(out))
            return TP_ERR_OUT_OF_MEMORY;
        for (size_t i = 0; i < in->n; i++)
            tp_buf_append(&out->b, sl_str(in, i), in->len[i]);
        sl_end(out);
        return out->b.oom ? TP_ERR_OUT_OF_MEMORY : TP_OK;
    }
    case TD_STRIP: {
        for (size_t i = 0; i < in->n; i++) {
            const char *s = sl_str(in, i);
            size_t a = 0, b = in->len[i], cl = d->content_len;
            for (size_t k = 0;
                 k < d->strip_start && b - a >= cl && memcmp(s + a, d->content, cl) == 0; k++)
                a += cl;
            for (size_t k = 0;
                 k < d->strip_stop && b - a >= cl && memcmp(s + b - cl, d->content, cl) == 0; k++)
                b -= cl;
            if (!sl_push(out, s + a, b - a))
                return TP_ERR_OUT_OF_MEMORY;
        }
        return TP_OK;
    }
    case TD_REPLACE: {
        for (size_t i = 0; i < in->n; i++) {
            const char *s = sl_str(in, i);
            size_t n = in->len[i], pos = 0;
            if (!sl_begin(out))
                return TP_ERR_OUT_OF_MEMORY;
            for (;;) {
                size_t ms = 0, me = 0;
                bool found = false;
                if (!d->pat.is_regex) {
                    const char *q =
                        d->pat.literal_len && pos < n
                            ? memmem(s + pos, n - pos, d->pat.literal, d->pat.literal_len)
                            : NULL;
                    if (q) {
                        found = true;
                        ms = (size_t)(q - s);
                        me = ms + d->pat.literal_len;
                    }
                } else if (pos <= n) {
                    int rc = pcre2_match(d->pat.re, (PCRE2_SPTR)s, n, pos, 0, md, NULL);
                    if (rc == PCRE2_ERROR_NOMEMORY || rc == PCRE2_ERROR_HEAPLIMIT)
                        return TP_ERR_OUT_OF_MEMORY;
                    if (rc >= 0) {
                        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
                        ms = ov[0];
                        me = ov[1];
                        found = me > ms;
                    }
                }
                if (!found)
                    break;
                tp_buf_append(&out->b, s + pos, ms - pos);
                tp_buf_append(&out->b, d->repl, d->repl_len);
                pos = me;
            }
            tp_buf_append(&out->b, s + pos, n - pos);
            sl_end(out);
        }
        return out->b.oom ? TP_ERR_OUT_OF_MEMORY : TP_OK;
    }
    case TD_METASPACE: {
        for (size_t i = 0; i < in->n; i++) {
            const char *s = sl_str(in, i);
            size_t n = in->len[i], cl = d->content_len;
            if (!sl_begin(out))
                return TP_ERR_OUT_OF_MEMORY;
            for (size_t k = 0; k < n;) {
                if (n - k >= cl && memcmp(s + k, d->content, cl) == 0) {
                    if (!(i == 0 && d->prepend != TPS_NEVER))
                        tp_buf_append(&out->b, " ", 1);
                    k += cl;
                } else {
                    tp_buf_append(&out->b, s + k, 1);
                    k++;
                }
            }
            sl_end(out);
        }
        return out->b.oom ? TP_ERR_OUT_OF_MEMORY : TP_OK;
    }
    case TD_SEQUENCE:
        break;
    }
    return TP_ERR_INTERNAL;
}

/* ---- clean_up_tokenization_spaces ---- */

static size_t replace_all(char *s, size_t n, const char *from, const char *to) {
    size_t fl = strlen(from), tl = strlen(to), r = 0, w = 0;
    while (r < n) {
        if (n - r >= fl && memcmp(s + r, from, fl) == 0) {
            memmove(s + w, to, tl);
            w += tl;
            r += fl;
        } else {
            s[w++] = s[r++];
        }
    }
    s[w] = '\0';
    return w;
}

size_t tp_tok_clean_up_spaces(char *s, size_t n) {
    /* transformers' PreTrainedTokenizerBase.clean_up_tokenization, in its order */
    static const char *const pairs[][2] = {
        {" .", "."},     {" ?", "?"},   {" !", "!"},   {" ,", ","},     {" ' ", "'"},
        {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        n = replace_all(s, n, pairs[i][0], pairs[i][1]);
    return n;
}

/* ---- decode ---- */

tp_tok_decode_params tp_tok_decode_default_params(void) {
    tp_tok_decode_params p = {.skip_special_tokens = false, .clean_up_tokenization_spaces = -1};
    return p;
}

static tp_status decode_impl(const tp_tokenizer *tok, const int32_t *ids, size_t n,
                             bool skip_special, bool cleanup, char **out, size_t *out_len,
                             tp_error *err) {
    slist a = {0}, b = {0};
    pcre2_match_data *md = NULL;
    tp_status st = TP_OK;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || (size_t)id >= tok->n_ids) {
            st = tp_fail(err, TP_ERR_INPUT,
                         "token id %ld at position %zu is outside the "
                         "vocabulary (size %zu)",
                         (long)id, i, tok->n_ids);
            goto done;
        }
        size_t len;
        const char *s = tok_lookup_str(tok, (uint32_t)id, &len);
        if (!s || (skip_special && tok->is_special[id]))
            continue;
        if (!sl_push(&a, s, len)) {
            st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
    }
    if (tok->has_decoder) {
        md = tok_match_data_create(4);
        if (!md || (st = decode_chain(tok, &tok->decoder, &a, &b, md))) {
            st = tp_fail(err, md ? st : TP_ERR_OUT_OF_MEMORY, "decoding failed (%s)",
                         tp_status_name(md ? st : TP_ERR_OUT_OF_MEMORY));
            goto done;
        }
    }
    tp_buf res = {0};
    for (size_t i = 0; i < a.n; i++) {
        if (!tok->has_decoder && i > 0)
            tp_buf_append(&res, " ", 1);
        tp_buf_append(&res, sl_str(&a, i), a.len[i]);
    }
    char *s = tp_buf_take(&res);
    if (!s) {
        st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    size_t len = strlen(s);
    /* strlen stops at an embedded NUL: compute the real length instead */
    len = 0;
    for (size_t i = 0; i < a.n; i++)
        len += a.len[i] + (!tok->has_decoder && i > 0 ? 1 : 0);
    if (cleanup)
        len = tp_tok_clean_up_spaces(s, len);
    *out = s;
    if (out_len)
        *out_len = len;
done:
    sl_free(&a);
    sl_free(&b);
    if (md)
        pcre2_match_data_free(md);
    return st;
}

tp_status tp_tok_decode(const tp_tokenizer *tok, const int32_t *ids, size_t n,
                        const tp_tok_decode_params *params, char **out, size_t *out_len,
                        tp_error *err) {
    if (!tok || (!ids && n) || !out)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_tok_decode: NULL argument");
    tp_tok_decode_params def = tp_tok_decode_default_params();
    if (!params)
        params = &def;
    bool cleanup = params->clean_up_tokenization_spaces < 0
                       ? tok->info.clean_up_tokenization_spaces
                       : params->clean_up_tokenization_spaces > 0;
    *out = NULL;
    return decode_impl(tok, ids, n, params->skip_special_tokens, cleanup, out, out_len, err);
}

/* ---- streaming ---- */

struct tp_tok_stream {
    const tp_tokenizer *tok;
    bool skip_special;
    int32_t *ids;
    size_t n, cap;
    size_t prefix_index, read_index;
    char *prefix;
    size_t prefix_len;
};

tp_tok_stream *tp_tok_stream_create(const tp_tokenizer *tok, const tp_tok_decode_params *params) {
    if (!tok)
        return NULL;
    tp_tok_stream *st = tp_calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->tok = tok;
    st->skip_special = params ? params->skip_special_tokens : false;
    st->prefix = tp_strdup("");
    if (!st->prefix) {
        tp_free(st);
        return NULL;
    }
    return st;
}

void tp_tok_stream_free(tp_tok_stream *st) {
    if (!st)
        return;
    tp_free(st->ids);
    tp_free(st->prefix);
    tp_free(st);
}

static bool ends_incomplete(const char *s, size_t n) {
    return n >= 3 && memcmp(s + n - 3, "\xEF\xBF\xBD", 3) == 0;
}

/* A "<0xNN>" byte token: the ByteFallback decoder decodes a run of them
 * together (as U+FFFD per byte when the run is not valid UTF-8), so a later
 * byte token can change the text of earlier ones: the stream holds a run back
 * until it ends. */
static bool is_byte_token(const tp_tokenizer *tok, int32_t id) {
    size_t n = 0;
    const char *s = tok_lookup_str(tok, (uint32_t)id, &n);
    return s && n == 6 && s[0] == '<' && s[1] == '0' && s[2] == 'x' && s[5] == '>' &&
           hexv(s[3]) >= 0 && hexv(s[4]) >= 0;
}

/* Where the new text s[0, len) stops agreeing with the text already emitted
 * (prefix), moved back to a character boundary so pieces stay whole UTF-8. */
static size_t common_prefix(const char *s, size_t len, const char *prefix, size_t prefix_len) {
    size_t common = 0;
    while (common < prefix_len && common < len && s[common] == prefix[common])
        common++;
    while (common > 0 && common < len && ((unsigned char)s[common] & 0xC0) == 0x80)
        common--;
    return common;
}

tp_status tp_tok_stream_step(tp_tok_stream *st, int32_t id, tp_buf *out, tp_error *err) {
    if (!st || !out)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_tok_stream_step: NULL argument");
    if (id < 0 || (size_t)id >= st->tok->n_ids)
        return tp_fail(err, TP_ERR_INPUT, "token id %ld is outside the vocabulary (size %zu)",
                       (long)id, st->tok->n_ids);
    if (st->n == st->cap) {
        size_t c = st->cap ? st->cap * 2 : 16;
        int32_t *p = tp_realloc(st->ids, c * sizeof *p);
        if (!p)
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        st->ids = p;
        st->cap = c;
    }
    st->ids[st->n++] = id;
    if (is_byte_token(st->tok, id))
        return TP_OK; /* emitted when the run of byte tokens ends */
    char *s = NULL;
    size_t len = 0;
    /* st->ids is NULL before the first id (NULL + 0 is undefined) */
    tp_status rc = decode_impl(st->tok, st->ids ? st->ids + st->read_index : NULL,
                               st->n - st->read_index, st->skip_special, false, &s, &len, err);
    if (rc)
        return rc;
    if (len > st->prefix_len && !ends_incomplete(s, len)) {
        /* a decoder that changed earlier text (rare): emit from where they differ */
        size_t common = common_prefix(s, len, st->prefix, st->prefix_len);
        tp_buf_append(out, s + common, len - common);
        /* slide the window: keep ids from prefix_index on as the new prefix */
        size_t new_read = st->prefix_index;
        st->prefix_index = st->n;
        tp_free(st->prefix);
        st->prefix = NULL;
        rc = decode_impl(st->tok, st->ids + new_read, st->n - new_read, st->skip_special, false,
                         &st->prefix, &st->prefix_len, err);
        st->read_index = new_read;
        tp_free(s);
        if (rc)
            return rc;
        /* drop ids before read_index */
        if (st->read_index > 0) {
            memmove(st->ids, st->ids + st->read_index, (st->n - st->read_index) * sizeof *st->ids);
            st->n -= st->read_index;
            st->prefix_index -= st->read_index;
            st->read_index = 0;
        }
        return out->oom ? tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory") : TP_OK;
    }
    tp_free(s);
    return TP_OK;
}

tp_status tp_tok_stream_flush(tp_tok_stream *st, tp_buf *out, tp_error *err) {
    if (!st || !out)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_tok_stream_flush: NULL argument");
    char *s = NULL;
    size_t len = 0;
    /* st->ids is NULL before the first id (NULL + 0 is undefined) */
    tp_status rc = decode_impl(st->tok, st->ids ? st->ids + st->read_index : NULL,
                               st->n - st->read_index, st->skip_special, false, &s, &len, err);
    if (rc)
        return rc;
    size_t common = common_prefix(s, len, st->prefix, st->prefix_len);
    if (len > common)
        tp_buf_append(out, s + common, len - common);
    tp_free(s);
    st->n = st->read_index = st->prefix_index = 0;
    tp_free(st->prefix);
    st->prefix = tp_strdup("");
    st->prefix_len = 0;
    return out->oom || !st->prefix ? tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory") : TP_OK;
}
