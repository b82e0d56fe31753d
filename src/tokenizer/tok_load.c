/*
 * tok_load.c — building a tp_tokenizer from tokenizer.json and
 * tokenizer_config.json.
 *
 * Speed: Gemma 3's tokenizer.json is 33 MB, almost all of it model.vocab
 * (262,144 entries) and model.merges (514,906 pairs). A DOM parser (cJSON)
 * spends ~0.3 s just allocating nodes for those, so the top level and the model
 * object are walked with a small scanner here: the two big members are parsed
 * straight into the string pool and the hash tables, and every other member
 * (normalizer, pre_tokenizer, added_tokens, ...: small) is handed to cJSON.
 *
 * Every error names the file and the field ("tokenizer.json:
 * pre_tokenizer.pretokenizers[0]: unsupported type 'Foo'").
 */
#include "tokenizer/tok_internal.h"

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ------------------------------------------------------------------------ */
/* hashing                                                                   */

uint64_t tok_hash_bytes(const void *p, size_t n) {
    const uint8_t *s = p;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, s, 8);
        h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
        s += 8;
        n -= 8;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)s[i] << (8 * i);
    /* murmur3's fmix64: every input bit reaches the low bits used as index */
    h ^= v;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n)
        c <<= 1;
    return c;
}

int32_t tok_vocab_find(const tp_tokenizer *tok, const char *s, size_t n) {
    if (!tok->vocab.slots)
        return -1;
    uint64_t h = tok_hash_bytes(s, n);
    uint32_t tag = (uint32_t)(h >> 32);
    size_t i = (size_t)h & tok->vocab.mask;
    for (;;) {
        const tok_strslot *sl = &tok->vocab.slots[i];
        if (sl->id == TOK_NONE)
            return -1;
        if (sl->tag == tag && sl->len == n && memcmp(tok->pool + sl->off, s, n) == 0)
            return (int32_t)sl->id;
        i = (i + 1) & tok->vocab.mask;
    }
}

int32_t tok_added_find(const tp_tokenizer *tok, const char *s, size_t n) {
    for (size_t i = 0; i < tok->n_added; i++)
        if (strlen(tok->added[i].content) == n && memcmp(tok->added[i].content, s, n) == 0)
            return (int32_t)tok->added[i].id;
    return -1;
}

const char *tok_lookup_str(const tp_tokenizer *tok, uint32_t id, size_t *len) {
    if (id >= tok->n_ids || tok->tok_len[id] == TOK_NONE)
        return NULL;
    if (len)
        *len = tok->tok_len[id];
    return tok->pool + tok->tok_off[id];
}

/* GPT-2 bytes_to_unicode: printable Latin-1 bytes map to themselves, the rest
 * to U+0100 + n in byte order. */
uint32_t tok_byte_to_char(uint8_t b) {
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE))
        return b;
    uint32_t n = 0;
    for (unsigned c = 0; c < b; c++)
        if (!((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE)))
            n++;
    return 256 + n;
}

/* ------------------------------------------------------------------------ */
/* a minimal JSON scanner for the big members                                */

typedef struct js {
    const char *p, *end, *base;
} js;

static void js_ws(js *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

static bool js_skip_string(js *s) {
    s->p++; /* opening quote */
    while (s->p < s->end) {
        char c = *s->p++;
        if (c == '\\') {
            if (s->p >= s->end)
                return false;
            s->p++;
        } else if (c == '"') {
            return true;
        }
    }
    return false;
}

static bool js_skip_value(js *s) {
    js_ws(s);
    if (s->p >= s->end)
        return false;
    char c = *s->p;
    if (c == '"')
        return js_skip_string(s);
    if (c == '{' || c == '[') {
        long depth = 0;
        while (s->p < s->end) {
            c = *s->p;
            if (c == '"') {
                if (!js_skip_string(s))
                    return false;
                continue;
            }
            if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                if (--depth == 0) {
                    s->p++;
                    return true;
                }
            }
            s->p++;
        }
        return false;
    }
    const char *start = s->p;
    while (s->p < s->end && *s->p != ',' && *s->p != '}' && *s->p != ']' && *s->p != ' ' &&
           *s->p != '\n' && *s->p != '\r' && *s->p != '\t')
        s->p++;
    return s->p > start;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool js_hex4(js *s, uint32_t *v) {
    if (s->end - s->p < 4)
        return false;
    uint32_t x = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(s->p[i]);
        if (h < 0)
            return false;
        x = x << 4 | (uint32_t)h;
    }
    s->p += 4;
    *v = x;
    return true;
}

/* Parses a JSON string at s->p into out (appended, no NUL). */
static bool js_string(js *s, tp_buf *out) {
    js_ws(s);
    if (s->p >= s->end || *s->p != '"')
        return false;
    s->p++;
    for (;;) {
        const char *run = s->p;
        while (s->p < s->end && *s->p != '"' && *s->p != '\\')
            s->p++;
        if (s->p >= s->end)
            return false;
        if (s->p > run)
            tp_buf_append(out, run, (size_t)(s->p - run));
        if (*s->p == '"') {
            s->p++;
            return !out->oom;
        }
        s->p++; /* backslash */
        if (s->p >= s->end)
            return false;
        char e = *s->p++;
        char ch;
        switch (e) {
        case '"':
        case '\\':
        case '/':
            ch = e;
            break;
        case 'b':
            ch = '\b';
            break;
        case 'f':
            ch = '\f';
            break;
        case 'n':
            ch = '\n';
            break;
        case 'r':
            ch = '\r';
            break;
        case 't':
            ch = '\t';
            break;
        case 'u': {
            uint32_t cp;
            if (!js_hex4(s, &cp))
                return false;
            if (cp >= 0xD800 && cp <= 0xDBFF && s->end - s->p >= 6 && s->p[0] == '\\' &&
                s->p[1] == 'u') {
                js save = *s;
                s->p += 2;
                uint32_t lo;
                if (js_hex4(s, &lo) && lo >= 0xDC00 && lo <= 0xDFFF)
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                else
                    *s = save;
            }
            if (cp >= 0xD800 && cp <= 0xDFFF)
                cp = 0xFFFD; /* lone surrogate */
            char u[4];
            int k = tp_utf8_encode(cp, u);
            tp_buf_append(out, u, (size_t)k);
            continue;
        }
        default:
            return false;
        }
        tp_buf_append(out, &ch, 1);
    }
}

static bool js_int(js *s, int64_t *v) {
    js_ws(s);
    bool neg = false;
    if (s->p < s->end && *s->p == '-') {
        neg = true;
        s->p++;
    }
    if (s->p >= s->end || *s->p < '0' || *s->p > '9')
        return false;
    int64_t x = 0;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
        if (x > (INT64_MAX - 9) / 10)
            return false;
        x = x * 10 + (*s->p++ - '0');
    }
    *v = neg ? -x : x;
    return true;
}

static bool js_expect(js *s, char c) {
    js_ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return true;
    }
    return false;
}

typedef struct span {
    const char *p;
    size_t n;
} span;

/* Walks an object at s->p; for each member calls fn(key, s) with s at the
 * value, which fn must consume (parse or skip). */
typedef tp_status (*member_fn)(void *ctx, const char *key, js *s, tp_error *err);

/* Skips the value at s->p and returns its span (error names file.what). */
static tp_status js_take(js *s, const char *file, const char *what, span *v, tp_error *err) {
    js_ws(s);
    const char *v0 = s->p;
    if (!js_skip_value(s))
        return tp_fail(err, TP_ERR_FORMAT, "%s: %s: malformed JSON value near byte %zu", file, what,
                       (size_t)(v0 - s->base));
    *v = (span){v0, (size_t)(s->p - v0)};
    return TP_OK;
}

static tp_status js_object(js *s, const char *file, const char *what, member_fn fn, void *ctx,
                           tp_error *err) {
    tp_buf key = {0};
    tp_status st = TP_OK;
    if (!js_expect(s, '{')) {
        st = tp_fail(err, TP_ERR_FORMAT, "%s: %s: expected an object (byte %zu)", file, what,
                     (size_t)(s->p - s->base));
        goto done;
    }
    if (js_expect(s, '}'))
        goto done;
    for (;;) {
        key.len = 0;
        if (!js_string(s, &key) || !js_expect(s, ':')) {
            st = key.oom ? tp_fail(err, TP_ERR_OUT_OF_MEMORY, "%s: out of memory", file)
                         : tp_fail(err, TP_ERR_FORMAT, "%s: %s: malformed JSON near byte %zu", file,
                                   what, (size_t)(s->p - s->base));
            goto done;
        }
        js_ws(s);
        if ((st = fn(ctx, key.data ? key.data : "", s, err)) != TP_OK)
            goto done;
        if (js_expect(s, ','))
            continue;
        if (js_expect(s, '}'))
            break;
        st = tp_fail(err, TP_ERR_FORMAT, "%s: %s: expected ',' or '}' near byte %zu", file, what,
                     (size_t)(s->p - s->base));
        goto done;
    }
done:
    tp_buf_free(&key);
    return st;
}

/* ------------------------------------------------------------------------ */
/* loading state                                                             */

typedef struct loader {
    tp_tokenizer *tok;
    const char *file; /* "…/tokenizer.json" for messages */
    cJSON *root;      /* top-level members except model */
    cJSON *model;     /* model members except vocab and merges */
    span vocab, merges;
    bool have_vocab, have_merges;
    bool merges_parsed;      /* parsed in place (vocab came first) */
    bool merges_with_prefix; /* ... with a continuing_subword_prefix known then */
    size_t vocab_ids;        /* max vocabulary id + 1 (before added tokens) */
} loader;

static tp_status finish(tp_tokenizer *tok, const char *file, const cJSON *root, const cJSON *model,
                        size_t vocab_ids, tp_error *err);
static tp_status parse_vocab(loader *L, js *s, tp_error *err);
static tp_status parse_merges(loader *L, js *s, tp_error *err);

static tp_status add_cjson_member(cJSON *obj, const char *file, const char *key, span v,
                                  tp_error *err) {
    unsigned long failures = tp_alloc_failures();
    cJSON *item = cJSON_ParseWithLength(v.p, v.n);
    if (!item && tp_alloc_failures() != failures)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "%s: %s: out of memory", file, key);
    if (!item)
        return tp_fail(err, TP_ERR_FORMAT, "%s: %s: malformed JSON", file, key);
    if (!cJSON_AddItemToObject(obj, key, item)) {
        cJSON_Delete(item);
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "%s: %s: out of memory", file, key);
    }
    return TP_OK;
}

static const char *jstr(const cJSON *o, const char *key);

/* vocab and merges are parsed in place (one pass over the 30 MB); merges
 * only once the vocabulary is known, else their span is kept for later. */
static tp_status model_member(void *ctx, const char *key, js *s, tp_error *err) {
    loader *L = ctx;
    tp_status st;
    span v;
    char what[300];
    snprintf(what, sizeof what, "model.%s", key);
    const char *type = jstr(L->model, "type");
    bool bpe = !type || strcmp(type, "BPE") == 0; /* else build() reports the type */
    if (strcmp(key, "vocab") == 0 && !L->have_vocab && bpe) {
        const char *v0 = s->p;
        if ((st = parse_vocab(L, s, err)))
            return st;
        L->vocab = (span){v0, (size_t)(s->p - v0)};
        L->have_vocab = true;
        return TP_OK;
    }
    if (strcmp(key, "merges") == 0 && !L->have_merges && bpe) {
        const char *v0 = s->p;
        if (L->have_vocab) {
            if ((st = parse_merges(L, s, err)))
                return st;
            L->merges_parsed = true;
            L->merges_with_prefix = L->tok->cont_prefix != NULL;
        } else if ((st = js_take(s, L->file, what, &v, err))) {
            return st;
        }
        L->merges = (span){v0, (size_t)(s->p - v0)};
        L->have_merges = true;
        return TP_OK;
    }
    if ((st = js_take(s, L->file, what, &v, err)))
        return st;
    if ((st = add_cjson_member(L->model, L->file, key, v, err)))
        return st;
    if (strcmp(key, "continuing_subword_prefix") == 0) { /* merges need it */
        const char *cp = jstr(L->model, key);
        tp_free(L->tok->cont_prefix);
        L->tok->cont_prefix = cp && *cp ? tp_strdup(cp) : NULL;
        L->tok->cont_prefix_len = cp && *cp ? strlen(cp) : 0;
        if (cp && *cp && !L->tok->cont_prefix)
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    }
    return TP_OK;
}

static tp_status top_member(void *ctx, const char *key, js *s, tp_error *err) {
    loader *L = ctx;
    if (strcmp(key, "model") == 0)
        return js_object(s, L->file, "model", model_member, L, err);
    span v;
    tp_status st = js_take(s, L->file, key, &v, err);
    return st ? st : add_cjson_member(L->root, L->file, key, v, err);
}

/* ---- pool ---- */

bool tok_pool_add(tp_tokenizer *tok, const char *s, size_t n, uint32_t *off) {
    if (tok->pool_len + n + 1 > UINT32_MAX)
        return false;
    if (tok->pool_len + n + 1 > tok->pool_cap) {
        size_t cap = tok->pool_cap ? tok->pool_cap * 2 : 1 << 20;
        while (cap < tok->pool_len + n + 1)
            cap *= 2;
        char *p = tp_realloc(tok->pool, cap);
        if (!p)
            return false;
        tok->pool = p;
        tok->pool_cap = cap;
    }
    memcpy(tok->pool + tok->pool_len, s, n);
    tok->pool[tok->pool_len + n] = '\0';
    *off = (uint32_t)tok->pool_len;
    tok->pool_len += n + 1;
    return true;
}

/* ---- small cJSON helpers with messages ---- */

static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool jbool(const cJSON *o, const char *key, bool def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsBool(v))
        return cJSON_IsTrue(v);
    return def;
}

/* ------------------------------------------------------------------------ */
/* PCRE2 memory (see tok_internal.h)                                         */

static void *pcre2_tp_malloc(PCRE2_SIZE n, void *user) {
    (void)user;
    return tp_malloc(n);
}

static void pcre2_tp_free(void *p, void *user) {
    (void)user;
    tp_free(p);
}

static _Atomic(pcre2_general_context *) g_pcre2_gctx;
static _Atomic(pcre2_compile_context *) g_pcre2_cctx;

pcre2_general_context *tok_pcre2_gctx(void) {
    pcre2_general_context *g = atomic_load(&g_pcre2_gctx);
    if (g)
        return g;
    g = pcre2_general_context_create(pcre2_tp_malloc, pcre2_tp_free, NULL);
    if (!g)
        return NULL;
    pcre2_general_context *seen = NULL;
    if (!atomic_compare_exchange_strong(&g_pcre2_gctx, &seen, g)) { /* another thread won */
        pcre2_general_context_free(g);
        g = seen;
    }
    return g;
}

pcre2_compile_context *tok_pcre2_cctx(void) {
    pcre2_compile_context *c = atomic_load(&g_pcre2_cctx);
    if (c)
        return c;
    pcre2_general_context *g = tok_pcre2_gctx();
    if (!g || !(c = pcre2_compile_context_create(g)))
        return NULL;
    pcre2_compile_context *seen = NULL;
    if (!atomic_compare_exchange_strong(&g_pcre2_cctx, &seen, c)) {
        pcre2_compile_context_free(c);
        c = seen;
    }
    return c;
}

pcre2_match_data *tok_match_data_create(uint32_t n) {
    pcre2_general_context *g = tok_pcre2_gctx();
    return g ? pcre2_match_data_create(n, g) : NULL;
}

static tp_status compile_pattern(const char *file, const char *where, const cJSON *pat,
                                 tok_pattern *out, tp_error *err) {
    const char *s;
    if ((s = jstr(pat, "String")) != NULL) {
        out->is_regex = false;
        out->literal_len = strlen(s);
        out->literal = tp_strdup(s);
        if (!out->literal)
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        return TP_OK;
    }
    if ((s = jstr(pat, "Regex")) != NULL) {
        int ec;
        PCRE2_SIZE eo;
        out->is_regex = true;
        out->regex = tp_strdup(s);
        if (!out->regex)
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        pcre2_compile_context *cc = tok_pcre2_cctx();
        if (!cc)
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        out->re = pcre2_compile((PCRE2_SPTR)s, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &ec,
                                &eo, cc);
        if (!out->re && ec == PCRE2_ERROR_HEAP_FAILED)
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "%s: %s: out of memory compiling the regex",
                           file, where);
        if (!out->re) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(ec, msg, sizeof msg);
            return tp_fail(err, TP_ERR_UNSUPPORTED, "%s: %s: regex not supported (%s at %zu)", file,
                           where, (const char *)msg, (size_t)eo);
        }
        pcre2_jit_compile(out->re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
        return TP_OK;
    }
    return tp_fail(err, TP_ERR_FORMAT, "%s: %s: pattern must be {\"String\"} or {\"Regex\"}", file,
                   where);
}

static tp_status compile_regex_str(const char *re, tok_pattern *out, tp_error *err) {
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "Regex", re)) {
        cJSON_Delete(o);
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    }
    tp_status st = compile_pattern("(built-in)", "regex", o, out, err);
    cJSON_Delete(o);
    return st;
}

static void pattern_free(tok_pattern *p) {
    tp_free(p->literal);
    tp_free(p->regex);
    if (p->re)
        pcre2_code_free(p->re);
    memset(p, 0, sizeof *p);
}

/* One UTF-8 character string (Metaspace replacement, Strip content). */
static tp_status one_char(const char *file, const char *where, const char *s, char *out,
                          size_t *len, tp_error *err) {
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 4 || tp_utf8_validate(s, n) != n)
        return tp_fail(err, TP_ERR_FORMAT, "%s: %s: expected one character", file, where);
    memcpy(out, s, n);
    *len = n;
    return TP_OK;
}

static tp_status parse_prepend_scheme(const char *file, const char *where, const cJSON *o,
                                      tok_prepend_scheme *out, tp_error *err) {
    const char *ps = jstr(o, "prepend_scheme");
    if (!ps) {
        *out = jbool(o, "add_prefix_space", true) ? TPS_ALWAYS : TPS_NEVER;
        return TP_OK;
    }
    if (strcmp(ps, "always") == 0)
        *out = TPS_ALWAYS;
    else if (strcmp(ps, "first") == 0)
        *out = TPS_FIRST;
    else if (strcmp(ps, "never") == 0)
        *out = TPS_NEVER;
    else
        return tp_fail(err, TP_ERR_FORMAT, "%s: %s.prepend_scheme: unknown value '%s'", file, where,
                       ps);
    return TP_OK;
}

/* ---- normalizers ---- */

static void normalizer_free(tok_normalizer *n) {
    pattern_free(&n->pat);
    tp_free(n->content);
    for (size_t i = 0; i < n->n_items; i++)
        normalizer_free(&n->items[i]);
    tp_free(n->items);
    memset(n, 0, sizeof *n);
}

static tp_status parse_normalizer(const char *file, const char *where, const cJSON *o,
                                  tok_normalizer *out, tp_error *err) {
    const char *type = jstr(o, "type");
    char sub[256];
    if (!type)
        return tp_fail(err, TP_ERR_FORMAT, "%s: %s: missing \"type\"", file, where);
    if (strcmp(type, "NFC") == 0) {
        out->kind = TN_NFC;
    } else if (strcmp(type, "NFD") == 0) {
        out->kind = TN_NFD;
    } else if (strcmp(type, "NFKC") == 0) {
        out->kind = TN_NFKC;
    } else if (strcmp(type, "NFKD") == 0) {
        out->kind = TN_NFKD;
    } else if (strcmp(type, "Lowercase") == 0) {
        out->kind = TN_LOWERCASE;
    } else if (strcmp(type, "Strip") == 0) {
        out->kind = TN_STRIP;
        out->strip_left = jbool(o, "strip_left", true);
        out->strip_right = jbool(o, "strip_right", true);
    } else if (strcmp(type, "Replace") == 0 || strcmp(type, "Prepend") == 0) {
        bool rep = type[0] == 'R';
        out->kind = rep ? TN_REPLACE : TN_PREPEND;
        const char *c = jstr(o, rep ? "content" : "prepend");
        if (!c)
            return tp_fail(err, TP_ERR_FORMAT, "%s: %s.%s: missing string", file, where,
                           rep ? "content" : "prepend");
        out->content = tp_strdup(c);
        out->content_len = strlen(c);
        if (!out->content)
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        if (rep) {
            snprintf(sub, sizeof sub, "%s.pattern", where);
            tp_status st = compile_pattern(
                file, sub, cJSON_GetObjectItemCaseSensitive(o, "pattern"), &out->pat, err);
            if (st)
                return st;
        }
    } else if (strcmp(type, "Sequence") == 0) {
        out->kind = TN_SEQUENCE;
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "normalizers");
        if (!cJSON_IsArray(arr))
            return tp_fail(err, TP_ERR_FORMAT, "%s: %s.normalizers: expected an array", file,
                           where);
        size_t n = (size_t)cJSON_GetArraySize(arr);
        out->items = tp_calloc(n ? n : 1, sizeof *out->items);
        if (!out->items)
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        out->n_items = n;
        size_t i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, arr) {
            snprintf(sub, sizeof sub, "%s.normalizers[%zu]", where, i);
            tp_status st = parse_normalizer(file, sub, it, &out->items[i++], err);
            if (st)
                return st;
        }
    } else {
        return tp_fail(err, TP_ERR_UNSUPPORTED, "%s: %s: normalizer type '%s' is not supported",
                       file, where, type);
    }
    return TP_OK;
}

/* ---- pre-tokenizers ---- */

/* GPT-2's pre-tokenizer regex (ByteLevel with use_regex). */
static const char *GPT2_RE =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static void pretok_free(tok_pretok *p) {
    pattern_free(&p->pat);
    for (size_t i = 0; i < p->n_items; i++)
        pretok_free(&p->items[i]);
    tp_free(p->items);
    memset(p, 0, sizeof *p);
}

static tp_status parse_pretok(tp_tokenizer *tok, const char *file, const char *where,
                              const cJSON *o, tok_pretok *out, tp_error *err) {
    const char *type = jstr(o, "type");
    char sub[256];
    tp_status st;
    if (!type)
        return tp_fail(err, TP_ERR_FORMAT, "%s: %s: missing \"type\"", file, where);
    if (strcmp(type, "Split") == 0) {
        out->kind = TP_PRE_SPLIT;
        snprintf(sub, sizeof sub, "%s.pattern", where);
        if ((st = compile_pattern(file, sub, cJSON_GetObjectItemCaseSensitive(o, "pattern"),
                                  &out->pat, err)))
            return st;
        const char *b = jstr(o, "behavior");
        if (!b)
            return tp_fail(err, TP_ERR_FORMAT, "%s: %s.behavior: missing", file, where);
        if (strcmp(b, "Removed") == 0)
            out->behavior = TS_REMOVED;
        else if (strcmp(b, "Isolated") == 0)
            out->behavior = TS_ISOLATED;
        else if (strcmp(b, "MergedWithPrevious") == 0)
            out->behavior = TS_MERGED_PREV;
        else if (strcmp(b, "MergedWithNext") == 0)
            out->behavior = TS_MERGED_NEXT;
        else if (strcmp(b, "Contiguous") == 0)
            out->behavior = TS_CONTIGUOUS;
        else
            return tp_fail(err, TP_ERR_FORMAT, "%s: %s.behavior: unknown value '%s'", file, where,
                           b);
        out->invert = jbool(o, "invert", false);
    } else if (strcmp(type, "ByteLevel") == 0) {
        out->kind = TP_PRE_BYTELEVEL;
        out->add_prefix_space = jbool(o, "add_prefix_space", true);
        out->use_regex = jbool(o, "use_regex", true);
        if (out->use_regex && (st = compile_regex_str(GPT2_RE, &out->pat, err)))
            return st;
        tok->byte_level = true;
    } else if (strcmp(type, "Metaspace") == 0) {
        out->kind = TP_PRE_METASPACE;
        snprintf(sub, sizeof sub, "%s.replacement", where);
        const char *r = jstr(o, "replacement");
        if ((st = one_char(file, sub, r ? r : "\xe2\x96\x81", out->replacement,
                           &out->replacement_len, err)))
            return st;
        if ((st = parse_prepend_scheme(file, where, o, &out->prepend, err)))
            return st;
        out->split = jbool(o, "split", true);
    } else if (strcmp(type, "Digits") == 0) {
        out->kind = TP_PRE_DIGITS;
        out->individual_digits = jbool(o, "individual_digits", false);
    } else if (strcmp(type, "Whitespace") == 0) {
        out->kind = TP_PRE_WHITESPACE;
        if ((st = compile_regex_str("\\w+|[^\\w\\s]+", &out->pat, err)))
            return st;
    } else if (strcmp(type, "WhitespaceSplit") == 0) {
        out->kind = TP_PRE_WHITESPACE_SPLIT;
    } else if (strcmp(type, "Sequence") == 0) {
        out->kind = TP_PRE_SEQUENCE;
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "pretokenizers");
        if (!cJSON_IsArray(arr))
            return tp_fail(err, TP_ERR_FORMAT, "%s: %s.pretokenizers: expected an array", file,
                           where);
        size_t n = (size_t)cJSON_GetArraySize(arr);
        out->items = tp_calloc(n ? n : 1, sizeof *out->items);
        if (!out->items)
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        out->n_items = n;
        size_t i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, arr) {
            snprintf(sub, sizeof sub, "%s.pretokenizers[%zu]", where, i);
            if ((st = parse_pretok(tok, file, sub, it, &out->items[i], err)))
                return st;
            /* The model maps bytes to byte-level chars, so ByteLevel must be the
             * last step: a later pre-tokenizer would otherwise see raw bytes. */
            if (out->items[i].kind == TP_PRE_BYTELEVEL && i + 1 != n)
                return tp_fail(err, TP_ERR_UNSUPPORTED,
                               "%s: %s: ByteLevel before other pre-tokenizers is not supported",
                               file, sub);
            i++;
        }
    } else {
        return tp_fail(err, TP_ERR_UNSUPPORTED, "%s: %s: pre-tokenizer type '%s' is not supported",
                       file, where, type);
    }
    return TP_OK;
}

/* ---- post-processors ---- */

static void post_free(tok_post *p) {
    for (size_t i = 0; i < p->n_single; i++)
        tp_free(p->single[i].ids);
    for (size_t i = 0; i < p->n_pair; i++)
        tp_free(p->pair[i].ids);
    tp_free(p->single);
    tp_free(p->pair);
    for (size_t i = 0; i < p->n_items; i++)
        post_free(&p->items[i]);
    tp_free(p->items);
    memset(p, 0, sizeof *p);
}

static tp_status parse_template(const tp_tokenizer *tok, const char *file, const char *where,
                                const cJSON *arr, const cJSON *specials, tok_tpl_piece **out,
                                size_t *n_out, tp_error *err) {
    if (!cJSON_IsArray(arr))
        return tp_fail(err, TP_ERR_FORMAT, "%s: %s: expected an array", file, where);
    size_t n = (size_t)cJSON_GetArraySize(arr);
    *out = tp_calloc(n ? n : 1, sizeof **out);
    if (!*out)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    *n_out = n;
    size_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        tok_tpl_piece *p = &(*out)[i];
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(it, "SpecialToken");
        const cJSON *sq = cJSON_GetObjectItemCaseSensitive(it, "Sequence");
        const cJSON *body = sp ? sp : sq;
        if (!cJSON_IsObject(body))
            return tp_fail(err, TP_ERR_FORMAT,
                           "%s: %s[%zu]: expected {\"SpecialToken\"} or {\"Sequence\"}", file,
                           where, i);
        const cJSON *ti = cJSON_GetObjectItemCaseSensitive(body, "type_id");
        p->type_id = cJSON_IsNumber(ti) ? (uint8_t)ti->valuedouble : 0;
        const char *id = jstr(body, "id");
        if (!id)
            return tp_fail(err, TP_ERR_FORMAT, "%s: %s[%zu].id: missing", file, where, i);
        if (sq) {
            if (strcmp(id, "A") == 0)
                p->seq = 0;
            else if (strcmp(id, "B") == 0)
                p->seq = 1;
            else
                return tp_fail(err, TP_ERR_FORMAT, "%s: %s[%zu].id: expected \"A\" or \"B\"", file,
                               where, i);
        } else {
            p->seq = -1;
            const cJSON *def = cJSON_GetObjectItemCaseSensitive(specials, id);
            const cJSON *ids = cJSON_GetObjectItemCaseSensitive(def, "ids");
            if (!cJSON_IsArray(ids))
                return tp_fail(err, TP_ERR_FORMAT,
                               "%s: post_processor.special_tokens: '%s' missing or without ids",
                               file, id);
            size_t k = (size_t)cJSON_GetArraySize(ids);
            p->ids = tp_calloc(k ? k : 1, sizeof *p->ids);
            if (!p->ids)
                return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
            const cJSON *x;
            cJSON_ArrayForEach(x, ids) {
                if (!cJSON_IsNumber(x) || x->valuedouble < 0 ||
                    x->valuedouble >= (double)tok->n_ids)
                    return tp_fail(err, TP_ERR_FORMAT,
                                   "%s: post_processor.special_tokens['%s'].ids: id out of range",
                                   file, id);
                p->ids[p->n_ids++] = (uint32_t)x->valuedouble;
            }
        }
        i++;
    }
    return TP_OK;
}

static tp_status parse_token_pair(const tp_tokenizer *tok, const char *file, const char *where,
                                  const cJSON *o, const char *key, uint32_t *id, tp_error *err) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    const cJSON *x = cJSON_IsArray(a) ? cJSON_GetArrayItem(a, 1) : NULL;
    if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble >= (double)tok->n_ids)
        return tp_fail(err, TP_ERR_FORMAT, "%s: %s.%s: expected [token, id] with a valid id", file,
                       where, key);
    *id = (uint32_t)x->valuedouble;
    return TP_OK;
}

static tp_status parse_post(tp_tokenizer *tok, const char *file, const char *where, const cJSON *o,
                            tok_post *out, tp_error *err) {
    const char *type = jstr(o, "type");
    char sub[256];
    tp_status st;
    if (!type)
        return tp_fail(err, TP_ERR_FORMAT, "%s: %s: missing \"type\"", file, where);
    if (strcmp(type, "TemplateProcessing") == 0) {
        out->kind = TPP_TEMPLATE;
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(o, "special_tokens");
        snprintf(sub, sizeof sub, "%s.single", where);
        if ((st = parse_template(tok, file, sub, cJSON_GetObjectItemCaseSensitive(o, "single"), sp,
                                 &out->single, &out->n_single, err)))
            return st;
        snprintf(sub, sizeof sub, "%s.pair", where);
        if ((st = parse_template(tok, file, sub, cJSON_GetObjectItemCaseSensitive(o, "pair"), sp,
                                 &out->pair, &out->n_pair, err)))
            return st;
    } else if (strcmp(type, "RobertaProcessing") == 0 || strcmp(type, "BertProcessing") == 0) {
        out->kind = type[0] == 'R' ? TPP_ROBERTA : TPP_BERT;
        if ((st = parse_token_pair(tok, file, where, o, "cls", &out->cls_id, err)) ||
            (st = parse_token_pair(tok, file, where, o, "sep", &out->sep_id, err)))
            return st;
        out->trim_offsets = out->kind == TPP_ROBERTA && jbool(o, "trim_offsets", true);
        out->add_prefix_space = jbool(o, "add_prefix_space", true);
    } else if (strcmp(type, "ByteLevel") == 0) {
        out->kind = TPP_BYTELEVEL;
        out->trim_offsets = jbool(o, "trim_offsets", true);
        out->add_prefix_space = jbool(o, "add_prefix_space", true);
    } else if (strcmp(type, "Sequence") == 0) {
        out->kind = TPP_SEQUENCE;
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "processors");
        if (!cJSON_IsArray(arr))
            return tp_fail(err, TP_ERR_FORMAT, "%s: %s.processors: expected an array", file, where);
        size_t n = (size_t)cJSON_GetArraySize(arr);
        out->items = tp_calloc(n ? n : 1, sizeof *out->items);
        if (!out->items)
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        out->n_items = n;
        size_t i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, arr) {
            snprintf(sub, sizeof sub, "%s.processors[%zu]", where, i);
            if ((st = parse_post(tok, file, sub, it, &out->items[i++], err)))
                return st;
        }
    } else {
        return tp_fail(err, TP_ERR_UNSUPPORTED, "%s: %s: post-processor type '%s' is not supported",
                       file, where, type);
    }
    return TP_OK;
}

/* number of tokens the post-processor adds */
static size_t post_count(const tok_post *p, bool pair) {
    size_t n = 0;
    switch (p->kind) {
    case TPP_TEMPLATE: {
        const tok_tpl_piece *ps = pair ? p->pair : p->single;
        size_t np = pair ? p->n_pair : p->n_single;
        for (size_t i = 0; i < np; i++)
            n += ps[i].seq < 0 ? ps[i].n_ids : 0;
        return n;
    }
    case TPP_ROBERTA:
        return pair ? 4 : 2;
    case TPP_BERT:
        return pair ? 3 : 2;
    case TPP_SEQUENCE:
        for (size_t i = 0; i < p->n_items; i++)
            n += post_count(&p->items[i], pair);
        return n;
    default:
        return 0;
    }
}

/* ---- decoders ---- */

static void decoder_free(tok_decoder *d) {
    pattern_free(&d->pat);
    tp_free(d->repl);
    for (size_t i = 0; i < d->n_items; i++)
        decoder_free(&d->items[i]);
    tp_free(d->items);
    memset(d, 0, sizeof *d);
}

static tp_status parse_decoder(const char *file, const char *where, const cJSON *o,
                               tok_decoder *out, tp_error *err) {
    const char *type = jstr(o, "type");
    char sub[256];
    tp_status st;
    if (!type)
        return tp_fail(err, TP_ERR_FORMAT, "%s: %s: missing \"type\"", file, where);
    if (strcmp(type, "ByteLevel") == 0) {
        out->kind = TD_BYTELEVEL;
    } else if (strcmp(type, "ByteFallback") == 0) {
        out->kind = TD_BYTEFALLBACK;
    } else if (strcmp(type, "Fuse") == 0) {
        out->kind = TD_FUSE;
    } else if (strcmp(type, "Strip") == 0) {
        out->kind = TD_STRIP;
        snprintf(sub, sizeof sub, "%s.content", where);
        if ((st = one_char(file, sub, jstr(o, "content"), out->content, &out->content_len, err)))
            return st;
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "start");
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "stop");
        out->strip_start = cJSON_IsNumber(a) && a->valuedouble > 0 ? (size_t)a->valuedouble : 0;
        out->strip_stop = cJSON_IsNumber(b) && b->valuedouble > 0 ? (size_t)b->valuedouble : 0;
    } else if (strcmp(type, "Replace") == 0) {
        out->kind = TD_REPLACE;
        const char *c = jstr(o, "content");
        if (!c)
            return tp_fail(err, TP_ERR_FORMAT, "%s: %s.content: missing string", file, where);
        out->repl = tp_strdup(c);
        out->repl_len = strlen(c);
        if (!out->repl)
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        snprintf(sub, sizeof sub, "%s.pattern", where);
        if ((st = compile_pattern(file, sub, cJSON_GetObjectItemCaseSensitive(o, "pattern"),
                                  &out->pat, err)))
            return st;
    } else if (strcmp(type, "Metaspace") == 0) {
        out->kind = TD_METASPACE;
        snprintf(sub, sizeof sub, "%s.replacement", where);
        const char *r = jstr(o, "replacement");
        if ((st =
                 one_char(file, sub, r ? r : "\xe2\x96\x81", out->content, &out->content_len, err)))
            return st;
        if ((st = parse_prepend_scheme(file, where, o, &out->prepend, err)))
            return st;
    } else if (strcmp(type, "Sequence") == 0) {
        out->kind = TD_SEQUENCE;
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "decoders");
        if (!cJSON_IsArray(arr))
            return tp_fail(err, TP_ERR_FORMAT, "%s: %s.decoders: expected an array", file, where);
        size_t n = (size_t)cJSON_GetArraySize(arr);
        out->items = tp_calloc(n ? n : 1, sizeof *out->items);
        if (!out->items)
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        out->n_items = n;
        size_t i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, arr) {
            snprintf(sub, sizeof sub, "%s.decoders[%zu]", where, i);
            if ((st = parse_decoder(file, sub, it, &out->items[i++], err)))
                return st;
        }
    } else {
        return tp_fail(err, TP_ERR_UNSUPPORTED, "%s: %s: decoder type '%s' is not supported", file,
                       where, type);
    }
    return TP_OK;
}

/* ---- trie of added tokens ---- */

typedef struct tnode_build {
    uint32_t first_child, next_sibling, token;
    uint8_t byte;
} tnode_build;

static tp_status trie_build(tok_trie *t, const tp_tokenizer *tok, bool normalized, tp_error *err) {
    size_t cap = 1;
    for (size_t i = 0; i < tok->n_added; i++) {
        const tok_added *a = &tok->added[i];
        if (a->normalized == normalized)
            cap += strlen(normalized ? a->norm : a->content);
    }
    tnode_build *b = tp_malloc(cap * sizeof *b);
    if (!b)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    size_t nb = 1;
    b[0] = (tnode_build){TOK_NONE, TOK_NONE, TOK_NONE, 0};
    for (size_t i = 0; i < tok->n_added; i++) {
        const tok_added *a = &tok->added[i];
        if (a->normalized != normalized)
            continue;
        const char *s = normalized ? a->norm : a->content;
        size_t n = strlen(s);
        if (n == 0)
            continue;
        uint32_t cur = 0;
        for (size_t k = 0; k < n; k++) {
            uint8_t c = (uint8_t)s[k];
            uint32_t ch = b[cur].first_child;
            while (ch != TOK_NONE && b[ch].byte != c)
                ch = b[ch].next_sibling;
            if (ch == TOK_NONE) {
                ch = (uint32_t)nb++;
                b[ch] = (tnode_build){TOK_NONE, b[cur].first_child, TOK_NONE, c};
                b[cur].first_child = ch;
            }
            cur = ch;
        }
        if (b[cur].token == TOK_NONE)
            b[cur].token = (uint32_t)i; /* first definition wins */
    }
    t->nodes = tp_calloc(nb, sizeof *t->nodes);
    t->edges = tp_malloc((nb > 1 ? nb - 1 : 1) * sizeof *t->edges);
    if (!t->nodes || !t->edges) {
        tp_free(b);
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    }
    t->n_nodes = nb;
    size_t ne = 0;
    for (size_t i = 0; i < nb; i++) {
        t->nodes[i].token = b[i].token;
        t->nodes[i].first_edge = (uint32_t)ne;
        size_t start = ne;
        for (uint32_t ch = b[i].first_child; ch != TOK_NONE; ch = b[ch].next_sibling)
            t->edges[ne++] = (tok_trie_edge){b[ch].byte, ch};
        /* insertion sort by byte (few edges per node) */
        for (size_t x = start + 1; x < ne; x++) {
            tok_trie_edge e = t->edges[x];
            size_t y = x;
            while (y > start && t->edges[y - 1].byte > e.byte) {
                t->edges[y] = t->edges[y - 1];
                y--;
            }
            t->edges[y] = e;
        }
        t->nodes[i].n_edges = (uint16_t)(ne - start);
    }
    t->n_edges = ne;
    for (int c = 0; c < 256; c++)
        t->root_child[c] = TOK_NONE;
    for (size_t e = 0; e < t->nodes[0].n_edges; e++)
        t->root_child[t->edges[e].byte] = t->edges[e].child;
    tp_free(b);
    return TP_OK;
}

/* ------------------------------------------------------------------------ */
/* vocab and merges                                                          */

/* The model vocabulary from n strings already in the pool: entry i is
 * (offs[i], lens[i]) with id ids[i]; n_ids becomes max id + 1 (ids without an
 * entry are unused). A string given twice keeps its first id (as the JSON
 * object's first key would); dup/dup_of (may be NULL) get the later and the
 * earlier id of the first such repeat, TOK_NONE when there is none. */
tp_status tok_vocab_install(tp_tokenizer *tok, const uint32_t *ids, const uint32_t *offs,
                            const uint32_t *lens, size_t n, uint32_t *dup, uint32_t *dup_of,
                            tp_error *err) {
    size_t max_id = 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] + (size_t)1 > max_id)
            max_id = ids[i] + (size_t)1;
    if (dup)
        *dup = TOK_NONE;
    if (dup_of)
        *dup_of = TOK_NONE;
    tp_free(tok->model_off);
    tp_free(tok->model_len);
    tp_free(tok->vocab.slots);
    tok->vocab.slots = NULL;
    tok->n_ids = max_id;
    tok->model_off = tp_malloc((tok->n_ids ? tok->n_ids : 1) * sizeof(uint32_t));
    tok->model_len = tp_malloc((tok->n_ids ? tok->n_ids : 1) * sizeof(uint32_t));
    if (!tok->model_off || !tok->model_len)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t i = 0; i < tok->n_ids; i++)
        tok->model_len[i] = TOK_NONE;
    for (size_t i = 0; i < n; i++) {
        tok->model_off[ids[i]] = offs[i];
        tok->model_len[ids[i]] = lens[i];
    }
    /* hash */
    tok->vocab.mask = pow2_at_least(n + n / 2 + 1) - 1;
    tok->vocab.slots = tp_malloc((tok->vocab.mask + 1) * sizeof(tok_strslot));
    if (!tok->vocab.slots)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    memset(tok->vocab.slots, 0xff, (tok->vocab.mask + 1) * sizeof(tok_strslot));
    for (size_t id = 0; id < tok->n_ids; id++) {
        if (tok->model_len[id] == TOK_NONE)
            continue;
        const char *str = tok->pool + tok->model_off[id];
        size_t len = tok->model_len[id];
        uint64_t h = tok_hash_bytes(str, len);
        size_t i = (size_t)h & tok->vocab.mask;
        bool is_dup = false;
        for (; tok->vocab.slots[i].id != TOK_NONE; i = (i + 1) & tok->vocab.mask) {
            const tok_strslot *sl = &tok->vocab.slots[i];
            if (sl->tag == (uint32_t)(h >> 32) && sl->len == len &&
                memcmp(tok->pool + sl->off, str, len) == 0) {
                is_dup = true; /* duplicate string: first id wins */
                if (dup && *dup == TOK_NONE) {
                    *dup = (uint32_t)id;
                    *dup_of = sl->id;
                }
            }
        }
        if (!is_dup)
            tok->vocab.slots[i] =
                (tok_strslot){(uint32_t)id, (uint32_t)(h >> 32), tok->model_off[id], (uint32_t)len};
    }
    return TP_OK;
}

static tp_status parse_vocab(loader *L, js *sp, tp_error *err) {
    tp_tokenizer *tok = L->tok;
    js s = *sp;
    size_t cap = 1024, n = 0;
    uint32_t *ids = tp_malloc(cap * sizeof *ids), *offs = tp_malloc(cap * sizeof *offs),
             *lens = tp_malloc(cap * sizeof *lens);
    tp_buf key = {0};
    tp_status st = TP_OK;
    int64_t max_id = -1;
    if (!ids || !offs || !lens) {
        st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    if (!js_expect(&s, '{')) {
        st = tp_fail(err, TP_ERR_FORMAT, "%s: model.vocab: expected an object", L->file);
        goto done;
    }
    if (!js_expect(&s, '}')) {
        for (;;) {
            int64_t id;
            key.len = 0;
            if (!js_string(&s, &key) || !js_expect(&s, ':') || !js_int(&s, &id)) {
                st = key.oom
                         ? tp_fail(err, TP_ERR_OUT_OF_MEMORY, "%s: out of memory", L->file)
                         : tp_fail(err, TP_ERR_FORMAT,
                                   "%s: model.vocab: malformed entry %zu (expected \"token\": id)",
                                   L->file, n);
                goto done;
            }
            if (id < 0 || id >= TOK_MAX_IDS) {
                st = tp_fail(err, TP_ERR_FORMAT, "%s: model.vocab: entry %zu: id %lld out of range",
                             L->file, n, (long long)id);
                goto done;
            }
            if (n == cap) {
                cap *= 2;
                uint32_t *a = tp_realloc(ids, cap * sizeof *a);
                if (a)
                    ids = a;
                uint32_t *b2 = tp_realloc(offs, cap * sizeof *b2);
                if (b2)
                    offs = b2;
                uint32_t *c = tp_realloc(lens, cap * sizeof *c);
                if (c)
                    lens = c;
                if (!a || !b2 || !c) {
                    st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
                    goto done;
                }
            }
            if (!tok_pool_add(tok, key.data ? key.data : "", key.len, &offs[n])) {
                st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
                goto done;
            }
            ids[n] = (uint32_t)id;
            lens[n] = (uint32_t)key.len;
            if (id > max_id)
                max_id = id;
            n++;
            if (js_expect(&s, ','))
                continue;
            if (js_expect(&s, '}'))
                break;
            st = tp_fail(err, TP_ERR_FORMAT, "%s: model.vocab: expected ',' or '}' after entry %zu",
                         L->file, n - 1);
            goto done;
        }
    }
    /* ids may exceed the vocab (added tokens): n_ids grows in tok_assemble */
    (void)max_id;
    st = tok_vocab_install(tok, ids, offs, lens, n, NULL, NULL, err);
    L->vocab_ids = tok->n_ids;
done:
    *sp = s;
    tp_free(ids);
    tp_free(offs);
    tp_free(lens);
    tp_buf_free(&key);
    return st;
}

static tp_status merge_insert(tp_tokenizer *tok, uint32_t a, uint32_t b, uint32_t rank,
                              uint32_t id) {
    uint64_t key = (uint64_t)a << 32 | b;
    size_t i = tok_merge_index(key, tok->merges.mask);
    for (;;) {
        tok_merge_slot *s = &tok->merges.slots[i];
        if (s->key == key)
            return TP_OK; /* duplicate merge: the first (lowest rank) wins */
        if (s->key == UINT64_MAX) {
            s->key = key;
            s->rank = rank;
            s->id = id;
            return TP_OK;
        }
        i = (i + 1) & tok->merges.mask;
    }
}

/* doubles the merge table */
static bool merges_grow(tp_tokenizer *tok) {
    tok_mergemap old = tok->merges;
    size_t cap = (old.mask + 1) * 2;
    tok->merges.slots = tp_malloc(cap * sizeof(tok_merge_slot));
    if (!tok->merges.slots) {
        tok->merges = old;
        return false;
    }
    memset(tok->merges.slots, 0xff, cap * sizeof(tok_merge_slot));
    tok->merges.mask = cap - 1;
    for (size_t i = 0; i <= old.mask; i++)
        if (old.slots[i].key != UINT64_MAX)
            merge_insert(tok, (uint32_t)(old.slots[i].key >> 32), (uint32_t)old.slots[i].key,
                         old.slots[i].rank, old.slots[i].id);
    tp_free(old.slots);
    return true;
}

tp_status tok_merges_init(tp_tokenizer *tok, tp_error *err) {
    /* sized from the vocabulary (a BPE has about as many merges as tokens);
     * grown by rehashing if there are more */
    tp_free(tok->merges.slots);
    tok->n_merges = 0;
    tok->merges.mask = pow2_at_least(tok->n_ids + tok->n_ids / 2 + 1) - 1;
    tok->merges.slots = tp_malloc((tok->merges.mask + 1) * sizeof(tok_merge_slot));
    if (!tok->merges.slots)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    memset(tok->merges.slots, 0xff, (tok->merges.mask + 1) * sizeof(tok_merge_slot));
    return TP_OK;
}

int tok_merge_add(tp_tokenizer *tok, const char *as, size_t al, const char *bs, size_t bl,
                  uint32_t rank, tp_buf *cat) {
    int32_t ia = tok_vocab_find(tok, as, al), ib = tok_vocab_find(tok, bs, bl);
    if (ia < 0)
        return 1;
    if (ib < 0)
        return 2;
    cat->len = 0;
    tp_buf_append(cat, as, al);
    size_t skip = 0;
    if (tok->cont_prefix && bl >= tok->cont_prefix_len &&
        memcmp(bs, tok->cont_prefix, tok->cont_prefix_len) == 0)
        skip = tok->cont_prefix_len;
    tp_buf_append(cat, bs + skip, bl - skip);
    if (cat->oom)
        return -1;
    int32_t ic = tok_vocab_find(tok, cat->data ? cat->data : "", cat->len);
    if (ic < 0)
        return 3;
    if (((size_t)rank + 1) * 5 > (tok->merges.mask + 1) * 3 && !merges_grow(tok))
        return -1;
    merge_insert(tok, (uint32_t)ia, (uint32_t)ib, rank, (uint32_t)ic);
    tok->n_merges = (size_t)rank + 1;
    return 0;
}

static tp_status parse_merges(loader *L, js *scan, tp_error *err) {
    tp_tokenizer *tok = L->tok;
    js s = *scan;
    tp_buf a = {0}, b = {0}, cat = {0};
    tp_status st;
    if ((st = tok_merges_init(tok, err)))
        return st;
    if (!js_expect(&s, '['))
        return tp_fail(err, TP_ERR_FORMAT, "%s: model.merges: expected an array", L->file);
    size_t rank = 0;
    if (js_expect(&s, ']'))
        goto done;
    for (;;) {
        a.len = b.len = 0;
        js_ws(&s);
        bool ok;
        if (s.p < s.end && *s.p == '[') {
            s.p++;
            ok = js_string(&s, &a) && js_expect(&s, ',') && js_string(&s, &b) && js_expect(&s, ']');
        } else {
            ok = js_string(&s, &a);
            if (ok) {
                char *sp = a.data ? memchr(a.data, ' ', a.len) : NULL;
                ok = sp != NULL;
                if (ok) {
                    size_t left = (size_t)(sp - a.data);
                    tp_buf_append(&b, sp + 1, a.len - left - 1);
                    a.len = left;
                }
            }
        }
        if (a.oom || b.oom) {
            st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "%s: out of memory", L->file);
            goto done;
        }
        if (!ok) {
            st =
                tp_fail(err, TP_ERR_FORMAT,
                        "%s: model.merges[%zu]: expected \"a b\" or [\"a\", \"b\"]", L->file, rank);
            goto done;
        }
        const char *as = a.data ? a.data : "", *bs = b.data ? b.data : "";
        int r = tok_merge_add(tok, as, a.len, bs, b.len, (uint32_t)rank, &cat);
        if (r < 0) {
            st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
        if (r > 0) {
            st = tp_fail(err, TP_ERR_FORMAT,
                         "%s: model.merges[%zu]: token '%.*s' not in the vocabulary", L->file, rank,
                         (int)(r == 1   ? a.len
                               : r == 2 ? b.len
                                        : cat.len),
                         r == 1   ? as
                         : r == 2 ? bs
                                  : (cat.data ? cat.data : ""));
            goto done;
        }
        rank++;
        if (js_expect(&s, ','))
            continue;
        if (js_expect(&s, ']'))
            break;
        st = tp_fail(err, TP_ERR_FORMAT, "%s: model.merges: expected ',' or ']' after entry %zu",
                     L->file, rank - 1);
        goto done;
    }
done:
    *scan = s;
    tok->n_merges = rank;
    tp_buf_free(&a);
    tp_buf_free(&b);
    tp_buf_free(&cat);
    return st;
}

/* ------------------------------------------------------------------------ */
/* tokenizer_config.json                                                     */

static const char *token_text(const cJSON *v) {
    if (cJSON_IsString(v))
        return v->valuestring;
    if (cJSON_IsObject(v))
        return jstr(v, "content");
    return NULL;
}

static tp_status set_special(tp_tokenizer *tok, tp_tok_special_token *t, const char *text) {
    if (!text)
        return TP_OK;
    tp_free((char *)t->text);
    t->text = tp_strdup(text);
    if (!t->text)
        return TP_ERR_OUT_OF_MEMORY;
    size_t n = strlen(text);
    int32_t id = tok_added_find(tok, text, n);
    if (id < 0)
        id = tok_vocab_find(tok, text, n);
    t->id = id;
    return TP_OK;
}

tp_status tok_add_template(tp_tokenizer *tok, const char *name, const char *src) {
    tp_tok_chat_template *t =
        tp_realloc(tok->templates, (tok->n_templates + 1) * sizeof *tok->templates);
    if (!t)
        return TP_ERR_OUT_OF_MEMORY;
    tok->templates = t;
    t[tok->n_templates].name = tp_strdup(name);
    t[tok->n_templates].template = tp_strdup(src);
    tok->n_templates++;
    if (!t[tok->n_templates - 1].name || !t[tok->n_templates - 1].template)
        return TP_ERR_OUT_OF_MEMORY;
    return TP_OK;
}

/* Special tokens tokenizer_config.json does not set: from
 * special_tokens_map.json (as transformers reads it), then the model's
 * unk_token. */
static tp_status load_special_map(tp_tokenizer *tok, const char *dir, tp_error *err) {
    struct {
        const char *key;
        tp_tok_special_token *t;
    } keys[] = {{"bos_token", &tok->info.bos}, {"eos_token", &tok->info.eos},
                {"pad_token", &tok->info.pad}, {"cls_token", &tok->info.cls},
                {"sep_token", &tok->info.sep}, {"mask_token", &tok->info.mask},
                {"unk_token", &tok->info.unk}};
    char *path = tp_path_join(dir, "special_tokens_map.json");
    tp_status st = TP_OK;
    if (!path)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    if (tp_file_exists(path)) {
        char *data = NULL;
        size_t len = 0;
        if ((st = tp_read_file(path, &data, &len, err))) {
            tp_free(path);
            return st;
        }
        unsigned long failures = tp_alloc_failures();
        cJSON *m = cJSON_ParseWithLength(data, len);
        tp_free(data);
        if (!m && tp_alloc_failures() != failures) {
            st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
            tp_free(path);
            return st;
        }
        if (!cJSON_IsObject(m)) {
            cJSON_Delete(m);
            st = tp_fail(err, TP_ERR_FORMAT, "%s: malformed JSON (expected an object)", path);
            tp_free(path);
            return st;
        }
        for (size_t i = 0; i < sizeof keys / sizeof keys[0] && !st; i++)
            if (!keys[i].t->text &&
                set_special(tok, keys[i].t,
                            token_text(cJSON_GetObjectItemCaseSensitive(m, keys[i].key))))
                st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        cJSON_Delete(m);
    }
    tp_free(path);
    if (!st && !tok->info.unk.text && tok->unk_id != TOK_NONE &&
        set_special(tok, &tok->info.unk, tok->pool + tok->model_off[tok->unk_id]))
        st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    return st;
}

static tp_status load_config(tp_tokenizer *tok, const char *dir, tp_error *err) {
    char *path = tp_path_join(dir, "tokenizer_config.json");
    char *data = NULL;
    size_t len = 0;
    cJSON *cfg = NULL;
    tp_status st = TP_OK;
    if (!path)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    if (tp_file_exists(path)) {
        if ((st = tp_read_file(path, &data, &len, err)))
            goto done;
        unsigned long failures = tp_alloc_failures();
        cfg = cJSON_ParseWithLength(data, len);
        if (!cfg && tp_alloc_failures() != failures) {
            st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
            goto done;
        }
        if (!cfg || !cJSON_IsObject(cfg)) {
            const char *e = cJSON_GetErrorPtr();
            st = tp_fail(err, TP_ERR_FORMAT, "%s: malformed JSON near byte %zu", path,
                         e && e >= data && e <= data + len ? (size_t)(e - data) : (size_t)0);
            goto done;
        }
        struct {
            const char *key;
            tp_tok_special_token *t;
        } keys[] = {{"bos_token", &tok->info.bos}, {"eos_token", &tok->info.eos},
                    {"pad_token", &tok->info.pad}, {"cls_token", &tok->info.cls},
                    {"sep_token", &tok->info.sep}, {"mask_token", &tok->info.mask},
                    {"unk_token", &tok->info.unk}};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            if (set_special(tok, keys[i].t,
                            token_text(cJSON_GetObjectItemCaseSensitive(cfg, keys[i].key)))) {
                st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
                goto done;
            }
        tok->info.add_bos_token = jbool(cfg, "add_bos_token", false);
        tok->info.add_eos_token = jbool(cfg, "add_eos_token", false);
        tok->info.clean_up_tokenization_spaces = jbool(cfg, "clean_up_tokenization_spaces", false);
        const cJSON *ml = cJSON_GetObjectItemCaseSensitive(cfg, "model_max_length");
        if (cJSON_IsNumber(ml) && ml->valuedouble > 0 && ml->valuedouble < 1e15)
            tok->info.model_max_length = (int64_t)ml->valuedouble;
        const cJSON *ct = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
        if (cJSON_IsString(ct)) {
            if (tok_add_template(tok, "default", ct->valuestring)) {
                st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
                goto done;
            }
        } else if (cJSON_IsArray(ct)) {
            size_t i = 0;
            const cJSON *it;
            cJSON_ArrayForEach(it, ct) {
                const char *nm = jstr(it, "name"), *src = jstr(it, "template");
                if (!nm || !src) {
                    st = tp_fail(err, TP_ERR_FORMAT,
                                 "%s: chat_template[%zu]: expected {\"name\", \"template\"}", path,
                                 i);
                    goto done;
                }
                if (tok_add_template(tok, nm, src)) {
                    st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
                    goto done;
                }
                i++;
            }
        } else if (ct && !cJSON_IsNull(ct)) {
            st =
                tp_fail(err, TP_ERR_FORMAT, "%s: chat_template: expected a string or a list", path);
            goto done;
        }
    }
    if (tok->n_templates == 0) {
        tp_free(path);
        tp_free(data);
        data = NULL;
        path = tp_path_join(dir, "chat_template.jinja");
        if (!path) {
            st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
        if (tp_file_exists(path)) {
            if ((st = tp_read_file(path, &data, &len, err)))
                goto done;
            if (tok_add_template(tok, "default", data)) {
                st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
                goto done;
            }
        }
    }
done:
    cJSON_Delete(cfg);
    tp_free(data);
    tp_free(path);
    return st;
}

/* ------------------------------------------------------------------------ */
/* the whole load                                                            */

static tp_status build(loader *L, tp_error *err) {
    tp_tokenizer *tok = L->tok;
    const char *file = L->file;
    tp_status st;

    /* model */
    const char *type = jstr(L->model, "type");
    if (type && strcmp(type, "BPE") != 0)
        return tp_fail(err, TP_ERR_UNSUPPORTED, "%s: model.type '%s' is not supported (only BPE)",
                       file, type);
    if (!L->have_vocab)
        return tp_fail(err, TP_ERR_FORMAT, "%s: model.vocab: missing", file);
    if (!L->vocab_ids && L->vocab.n == 0)
        return tp_fail(err, TP_ERR_FORMAT, "%s: model.vocab: not parsed", file);
    if (!type && !L->have_merges)
        return tp_fail(err, TP_ERR_UNSUPPORTED, "%s: model without type/merges is not supported",
                       file);
    /* vocab was parsed in place; merges too unless they came first or the
     * continuing_subword_prefix (used to name merge results) came after them */
    if (L->have_merges &&
        (!L->merges_parsed || L->merges_with_prefix != (tok->cont_prefix != NULL))) {
        js s = {L->merges.p, L->merges.p + L->merges.n, L->merges.p};
        if ((st = parse_merges(L, &s, err)))
            return st;
    }

    return tok_assemble(tok, file, L->root, L->model, L->vocab_ids, err);
}

/* Merges (A, B) with A not ending in "▁" and B starting with it: the only
 * ones that can join across a cut before a "▁" run (see meta_split). */
static tp_status find_cross_merges(tp_tokenizer *tok, tp_error *err) {
    static const char META[] = "\xe2\x96\x81";
    if (tok->byte_level || tok->cont_prefix || tok->eow_suffix || tok->ignore_merges ||
        !tok->merges.slots || tok_vocab_find(tok, META, 3) < 0)
        return TP_OK;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i <= tok->merges.mask; i++) {
        const tok_merge_slot *m = &tok->merges.slots[i];
        if (m->key == UINT64_MAX)
            continue;
        uint32_t a = (uint32_t)(m->key >> 32), b = (uint32_t)m->key;
        const char *as = tok->pool + tok->model_off[a], *bs = tok->pool + tok->model_off[b];
        size_t al = tok->model_len[a], bl = tok->model_len[b];
        bool a_meta = al >= 3 && memcmp(as + al - 3, META, 3) == 0;
        bool b_meta = bl >= 3 && memcmp(bs, META, 3) == 0;
        if (a_meta || !b_meta)
            continue;
        if (n >= 64) { /* too many exceptions: not worth it */
            n = 0;
            goto off;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            char **x = tp_realloc(tok->cross_a, cap * sizeof *x);
            if (x)
                tok->cross_a = x;
            char **y = tp_realloc(tok->cross_b, cap * sizeof *y);
            if (y)
                tok->cross_b = y;
            if (!x || !y)
                return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        }
        tok->cross_a[n] = tp_strndup(as, al);
        tok->cross_b[n] = tp_strndup(bs, bl);
        tok->n_cross = ++n;
        if (!tok->cross_a[n - 1] || !tok->cross_b[n - 1])
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    }
    tok->meta_split = true;
    return TP_OK;
off:
    for (size_t i = 0; i < tok->n_cross; i++) {
        tp_free(tok->cross_a[i]);
        tp_free(tok->cross_b[i]);
    }
    tok->n_cross = 0;
    return TP_OK;
}

static tp_status finish(tp_tokenizer *tok, const char *file, const cJSON *root, const cJSON *model,
                        size_t vocab_ids, tp_error *err) {
    tp_status st;
    char where[64];
    for (size_t id = vocab_ids; id < tok->n_ids; id++) {
        tok->model_off[id] = 0;
        tok->model_len[id] = TOK_NONE;
    }
    for (size_t id = 0; id < tok->n_ids; id++) {
        tok->tok_off[id] = tok->model_off[id];
        tok->tok_len[id] = tok->model_len[id];
    }
    for (size_t i = 0; i < tok->n_added; i++) {
        tok_added *a = &tok->added[i];
        uint32_t off;
        if (!tok_pool_add(tok, a->content, strlen(a->content), &off))
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        tok->tok_off[a->id] = off;
        tok->tok_len[a->id] = (uint32_t)strlen(a->content);
        tok->is_added[a->id] = 1;
        tok->is_special[a->id] = a->special;
    }

    /* unk */
    const char *unk = jstr(model, "unk_token");
    tok->unk_id = TOK_NONE;
    if (unk) {
        int32_t u = tok_vocab_find(tok, unk, strlen(unk));
        if (u < 0)
            return tp_fail(err, TP_ERR_FORMAT, "%s: model.unk_token '%s' not in the vocabulary",
                           file, unk);
        tok->unk_id = (uint32_t)u;
    }

    /* components */
    const cJSON *o;
    o = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    if (o && !cJSON_IsNull(o)) {
        tok->has_normalizer = true;
        if ((st = parse_normalizer(file, "normalizer", o, &tok->normalizer, err)))
            return st;
    }
    o = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    if (o && !cJSON_IsNull(o)) {
        tok->has_pretok = true;
        if ((st = parse_pretok(tok, file, "pre_tokenizer", o, &tok->pretok, err)))
            return st;
    }
    o = cJSON_GetObjectItemCaseSensitive(root, "post_processor");
    if (o && !cJSON_IsNull(o)) {
        if ((st = parse_post(tok, file, "post_processor", o, &tok->post, err)))
            return st;
    }
    o = cJSON_GetObjectItemCaseSensitive(root, "decoder");
    if (o && !cJSON_IsNull(o)) {
        tok->has_decoder = true;
        if ((st = parse_decoder(file, "decoder", o, &tok->decoder, err)))
            return st;
    }
    tok->n_special_single = post_count(&tok->post, false);
    tok->n_special_pair = post_count(&tok->post, true);

    if ((st = find_cross_merges(tok, err)))
        return st;

    /* byte tables */
    for (int b = 0; b < 256; b++) {
        char u[4];
        uint32_t c = tok_byte_to_char((uint8_t)b);
        int k = tp_utf8_encode(c, u);
        int32_t id = tok_vocab_find(tok, u, (size_t)k);
        tok->byte_to_id[b] = id < 0 ? TOK_NONE : (uint32_t)id;
        tok->bl_char_to_byte[c] = (uint8_t)b;
        tok->bl_char_valid[c] = true;
        char fb[8];
        snprintf(fb, sizeof fb, "<0x%02X>", b);
        id = tok_vocab_find(tok, fb, 6);
        tok->byte_fallback_id[b] = id < 0 ? TOK_NONE : (uint32_t)id;
    }

    /* added tokens: normalized forms and tries */
    for (size_t i = 0; i < tok->n_added; i++) {
        tok_added *a = &tok->added[i];
        if (!a->normalized)
            continue;
        tp_buf nb = {0};
        if (tok->has_normalizer) {
            snprintf(where, sizeof where, "added_tokens[%zu]", i);
            if ((st = tok_normalize_plain(tok, &tok->normalizer, a->content, strlen(a->content),
                                          &nb, err))) {
                tp_error_prefix(err, "%s: %s", file, where);
                tp_buf_free(&nb);
                return st;
            }
        } else {
            tp_buf_puts(&nb, a->content);
        }
        a->norm = tp_buf_take(&nb);
        if (!a->norm)
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    }
    if ((st = trie_build(&tok->trie_raw, tok, false, err)) ||
        (st = trie_build(&tok->trie_norm, tok, true, err)))
        return st;
    return TP_OK;
}

/* Everything after the vocabulary and merges, from tokenizer.json-shaped
 * objects: model (unk_token, fuse_unk, byte_fallback, ignore_merges,
 * end_of_word_suffix, dropout) and root (added_tokens, normalizer,
 * pre_tokenizer, post_processor, decoder). Shared with tok_gguf.c. */
tp_status tok_assemble(tp_tokenizer *tok, const char *file, const cJSON *root, const cJSON *model,
                       size_t vocab_ids, tp_error *err) {
    const char *ew = jstr(model, "end_of_word_suffix");
    if (ew && *ew) {
        tok->eow_suffix = tp_strdup(ew);
        tok->eow_suffix_len = strlen(ew);
    }
    tok->fuse_unk = jbool(model, "fuse_unk", false);
    tok->byte_fallback = jbool(model, "byte_fallback", false);
    tok->ignore_merges = jbool(model, "ignore_merges", false);
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (cJSON_IsNumber(dropout) && dropout->valuedouble > 0.0)
        return tp_fail(err, TP_ERR_UNSUPPORTED, "%s: model.dropout: BPE dropout is not supported",
                       file);
    /* added tokens: extend n_ids, then the per-id tables */
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    size_t n_added = cJSON_IsArray(added) ? (size_t)cJSON_GetArraySize(added) : 0;
    tok->added = tp_calloc(n_added ? n_added : 1, sizeof *tok->added);
    if (!tok->added)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    size_t i = 0;
    const cJSON *it;
    if (added && !cJSON_IsArray(added) && !cJSON_IsNull(added))
        return tp_fail(err, TP_ERR_FORMAT, "%s: added_tokens: expected an array", file);
    if (n_added) {
        cJSON_ArrayForEach(it, added) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
            const char *content = jstr(it, "content");
            if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= TOK_MAX_IDS ||
                !content)
                return tp_fail(err, TP_ERR_FORMAT,
                               "%s: added_tokens[%zu]: expected {\"id\", \"content\", ...}", file,
                               i);
            /* normalizing invalid UTF-8 fails later, and no text can match it */
            if (tp_utf8_validate(content, strlen(content)) != strlen(content))
                return tp_fail(err, TP_ERR_FORMAT,
                               "%s: added_tokens[%zu]: content is not valid UTF-8", file, i);
            tok_added *a = &tok->added[i++];
            a->id = (uint32_t)id->valuedouble;
            a->content = tp_strdup(content);
            if (!a->content)
                return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
            a->single_word = jbool(it, "single_word", false);
            a->lstrip = jbool(it, "lstrip", false);
            a->rstrip = jbool(it, "rstrip", false);
            a->normalized = jbool(it, "normalized", true);
            a->special = jbool(it, "special", false);
            if (a->id + 1 > tok->n_ids)
                tok->n_ids = a->id + 1;
            tok->n_added = i;
        }
    }
    size_t nv = tok->n_ids ? tok->n_ids : 1;
    uint32_t *mo = tp_realloc(tok->model_off, nv * sizeof *mo);
    if (mo)
        tok->model_off = mo;
    uint32_t *ml = tp_realloc(tok->model_len, nv * sizeof *ml);
    if (ml)
        tok->model_len = ml;
    tok->tok_off = tp_malloc(nv * sizeof(uint32_t));
    tok->tok_len = tp_malloc(nv * sizeof(uint32_t));
    tok->is_special = tp_calloc(nv, 1);
    tok->is_added = tp_calloc(nv, 1);
    if (!mo || !ml || !tok->tok_off || !tok->tok_len || !tok->is_special || !tok->is_added)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    tok->info.vocab_size = tok->n_ids;
    return finish(tok, file, root, model, vocab_ids, err);
}

void tp_tok_free(tp_tokenizer *tok) {
    if (!tok)
        return;
    tp_free(tok->dir);
    tp_free(tok->pool);
    tp_free(tok->tok_off);
    tp_free(tok->tok_len);
    tp_free(tok->model_off);
    tp_free(tok->model_len);
    tp_free(tok->is_special);
    tp_free(tok->is_added);
    tp_free(tok->vocab.slots);
    tp_free(tok->merges.slots);
    tp_free(tok->cont_prefix);
    tp_free(tok->eow_suffix);
    for (size_t i = 0; i < tok->n_cross; i++) {
        tp_free(tok->cross_a[i]);
        tp_free(tok->cross_b[i]);
    }
    tp_free(tok->cross_a);
    tp_free(tok->cross_b);
    for (size_t i = 0; i < tok->n_added; i++) {
        tp_free(tok->added[i].content);
        tp_free(tok->added[i].norm);
    }
    tp_free(tok->added);
    tp_free(tok->trie_raw.nodes);
    tp_free(tok->trie_raw.edges);
    tp_free(tok->trie_norm.nodes);
    tp_free(tok->trie_norm.edges);
    normalizer_free(&tok->normalizer);
    pretok_free(&tok->pretok);
    post_free(&tok->post);
    decoder_free(&tok->decoder);
    tp_tok_special_token *sp[] = {&tok->info.bos, &tok->info.eos,  &tok->info.pad, &tok->info.cls,
                                  &tok->info.sep, &tok->info.mask, &tok->info.unk};
    for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++)
        tp_free((char *)sp[i]->text);
    for (size_t i = 0; i < tok->n_templates; i++) {
        tp_free((char *)tok->templates[i].name);
        tp_free((char *)tok->templates[i].template);
    }
    tp_free(tok->templates);
    tp_free(tok);
}

tp_status tp_tok_load(const char *dir, tp_tokenizer **out, tp_error *err) {
    if (!dir || !out)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_tok_load: NULL argument");
    *out = NULL;
    char *path = tp_path_join(dir, "tokenizer.json");
    if (!path)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    if (!tp_file_exists(path)) {
        tp_status st = tp_fail(err, TP_ERR_NOT_FOUND, "%s: no such file", path);
        tp_free(path);
        return st;
    }
    char *data = NULL;
    size_t len = 0;
    tp_status st = tp_read_file(path, &data, &len, err);
    if (st) {
        tp_free(path);
        return st;
    }
    tp_tokenizer *tok = tp_calloc(1, sizeof *tok);
    loader L = {.tok = tok, .file = path};
    L.root = cJSON_CreateObject();
    L.model = cJSON_CreateObject();
    if (!tok || !L.root || !L.model) {
        st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    tok->dir = tp_strdup(dir);
    if (!tok->dir) {
        st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    tp_tok_special_token *sp[] = {&tok->info.bos, &tok->info.eos,  &tok->info.pad, &tok->info.cls,
                                  &tok->info.sep, &tok->info.mask, &tok->info.unk};
    for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++)
        sp[i]->id = -1;
    js s = {data, data + len, data};
    if ((st = js_object(&s, path, "(top level)", top_member, &L, err)))
        goto done;
    js_ws(&s);
    if (s.p != s.end) {
        st = tp_fail(err, TP_ERR_FORMAT, "%s: trailing data at byte %zu", path,
                     (size_t)(s.p - data));
        goto done;
    }
    if ((st = build(&L, err)))
        goto done;
    if ((st = load_config(tok, dir, err)) || (st = load_special_map(tok, dir, err)))
        goto done;
done:
    tp_free(data);
    cJSON_Delete(L.root);
    cJSON_Delete(L.model);
    tp_free(path);
    if (st) {
        tp_tok_free(tok);
        return st;
    }
    *out = tok;
    return TP_OK;
}
