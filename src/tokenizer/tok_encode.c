/*
 * tok_encode.c — text -> ids, as the Rust `tokenizers` crate does it:
 *
 *   1. added tokens that are not "normalized" are found in the raw text (trie,
 *      leftmost-longest, then single_word / lstrip / rstrip as HF applies them);
 *   2. each remaining piece is normalized, keeping for every normalized byte the
 *      original byte range it came from (the alignment, for offsets);
 *   3. "normalized" added tokens are found in the normalized piece;
 *   4. the pre-tokenizer cuts the rest into words (splits);
 *   5. each word goes through BPE (through a per-scratch cache of word -> ids);
 *   6. truncation, then the post-processor adds the special tokens.
 *
 * BPE: symbols are a linked list over an array. Short words (the common case)
 * keep the rank of every adjacent pair in an array and scan it for the minimum
 * (leftmost on ties); long words (Gemma 3 sees a whole line as one word) use a
 * tournament tree keyed by (rank, position), so a long input costs
 * O(n log n), not O(n^2). Both pick the same merge at every step: the lowest
 * rank, leftmost among equals — what HF's heap does.
 */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ------------------------------------------------------------------------ */
/* scratch                                                                   */

typedef struct tsplit {
    uint32_t start, len; /* in the current buffer */
} tsplit;

typedef struct tstr {  /* a string with its alignment to the original text */
    char *s;           /* (n) */
    uint32_t *os, *oe; /* (n) original [start, end) of each byte */
    size_t n, cap;
} tstr;

typedef struct ttok {
    uint32_t id;
    uint32_t start, end; /* original offsets */
} ttok;

typedef struct seg {
    uint32_t a, b;
    bool match;
} seg;

typedef struct segbuf {
    seg *g;
    size_t n, cap;
} segbuf;

typedef struct amatch {
    uint32_t a, b;  /* span in the searched string */
    uint32_t added; /* index into tok->added */
} amatch;

typedef struct cache_slot {
    uint64_t hash;
    uint32_t key_off, val_off;
    uint16_t key_len, n_tok;
    uint32_t gen; /* the slot is in use when gen == the scratch's cache_gen */
} cache_slot;

#define CACHE_SLOTS (1u << 16)
#define CACHE_MAX_WORD 48
#define CACHE_KEY_POOL (1u << 21)
#define CACHE_VAL_POOL (1u << 20)

struct tp_tok_scratch {
    const tp_tokenizer *tok;
    pcre2_match_data *md;
    tstr norm, norm2; /* a normalized piece (and the normalizer's second buffer) */
    tstr cur, tmp;    /* the sub-piece being pre-tokenized, and a rewrite buffer */
    amatch *m1, *m2;  /* added-token matches (raw, normalized) */
    size_t c1, c2;
    segbuf sb;        /* split segments */
    bool no_cache;    /* a temporary scratch: do not allocate the cache */
    bool cache_off;   /* this call: params->word_cache == false */
    tsplit *sp, *sp2; /* splits */
    size_t nsp, nsp2, spcap, spcap2;
    ttok *out; /* tokens of the text being encoded */
    size_t n_out, out_cap;
    /* BPE symbols */
    uint32_t *sid, *spos, *slen, *sprev, *snext, *srank;
    size_t symcap;
    uint64_t *tree; /* tournament tree for long words */
    size_t treecap;
    uint32_t *utf32; /* normalization */
    size_t utf32cap;
    /* word cache */
    cache_slot *cache;
    char *ckeys;
    uint32_t *cvals; /* pairs (id, end) */
    size_t ckeys_len, cvals_len, cache_used;
    uint32_t cache_gen; /* bumping it empties the cache without touching the slots */
    tp_buf wbuf;        /* word as vocabulary string (ignore_merges, prefix/suffix) */
};

static bool grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *q = tp_realloc(*p, c * elem);
    if (!q)
        return false;
    *p = q;
    *cap = c;
    return true;
}

static bool tstr_reserve(tstr *t, size_t n) {
    if (n <= t->cap)
        return true;
    size_t c = t->cap ? t->cap : 256;
    while (c < n)
        c *= 2;
    char *s = tp_realloc(t->s, c);
    if (s)
        t->s = s;
    uint32_t *a = tp_realloc(t->os, c * sizeof *a);
    if (a)
        t->os = a;
    uint32_t *b = tp_realloc(t->oe, c * sizeof *b);
    if (b)
        t->oe = b;
    if (!s || !a || !b)
        return false;
    t->cap = c;
    return true;
}

static bool tstr_push(tstr *t, const char *s, size_t n, uint32_t os, uint32_t oe) {
    if (n == 0)
        return true;
    if (!tstr_reserve(t, t->n + n))
        return false;
    memcpy(t->s + t->n, s, n);
    for (size_t i = 0; i < n; i++) {
        t->os[t->n + i] = os;
        t->oe[t->n + i] = oe;
    }
    t->n += n;
    return true;
}

/* copy bytes [a, b) of src with their alignment */
static bool tstr_copy(tstr *t, const tstr *src, size_t a, size_t b) {
    if (b <= a)
        return true;
    if (!tstr_reserve(t, t->n + (b - a)))
        return false;
    memcpy(t->s + t->n, src->s + a, b - a);
    memcpy(t->os + t->n, src->os + a, (b - a) * sizeof(uint32_t));
    memcpy(t->oe + t->n, src->oe + a, (b - a) * sizeof(uint32_t));
    t->n += b - a;
    return true;
}

static void tstr_free(tstr *t) {
    tp_free(t->s);
    tp_free(t->os);
    tp_free(t->oe);
    memset(t, 0, sizeof *t);
}

static void cache_clear(tp_tok_scratch *S) {
    if (++S->cache_gen == 0) {
        memset(S->cache, 0, CACHE_SLOTS * sizeof *S->cache);
        S->cache_gen = 1;
    }
    S->ckeys_len = S->cvals_len = S->cache_used = 0;
}

tp_tok_scratch *tp_tok_scratch_create(const tp_tokenizer *tok) {
    tp_tok_scratch *S = tp_calloc(1, sizeof *S);
    if (!S)
        return NULL;
    S->tok = tok;
    S->md = tok_match_data_create(16);
    if (!S->md) {
        tp_tok_scratch_free(S);
        return NULL;
    }
    return S;
}

void tp_tok_scratch_free(tp_tok_scratch *S) {
    if (!S)
        return;
    if (S->md)
        pcre2_match_data_free(S->md);
    tstr_free(&S->norm);
    tstr_free(&S->norm2);
    tstr_free(&S->cur);
    tstr_free(&S->tmp);
    tp_free(S->m1);
    tp_free(S->m2);
    tp_free(S->sb.g);
    tp_free(S->sp);
    tp_free(S->sp2);
    tp_free(S->out);
    tp_free(S->sid);
    tp_free(S->spos);
    tp_free(S->slen);
    tp_free(S->sprev);
    tp_free(S->snext);
    tp_free(S->srank);
    tp_free(S->tree);
    tp_free(S->utf32);
    tp_free(S->cache);
    tp_free(S->ckeys);
    tp_free(S->cvals);
    tp_buf_free(&S->wbuf);
    tp_free(S);
}

/* ------------------------------------------------------------------------ */
/* Unicode predicates                                                        */

/* Rust's char::is_whitespace (the White_Space property). */
static bool is_ws(uint32_t c) {
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

static bool is_numeric(uint32_t c) {
    if (c < 0x80)
        return c >= '0' && c <= '9';
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO;
}

static bool is_word_char(uint32_t c) {
    if (c < 0x80)
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               c == '_';
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO) ||
           (k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO);
}

static uint32_t cp_at(const char *s, size_t n, size_t i, int *len) {
    uint32_t c;
    *len = tp_utf8_decode(s + i, n - i, &c);
    return c;
}

/* code point ending at byte i (exclusive) */
static size_t prev_char_start(const char *s, size_t i) {
    do {
        i--;
    } while (i > 0 && ((uint8_t)s[i] & 0xC0) == 0x80);
    return i;
}

/* ------------------------------------------------------------------------ */
/* normalizers                                                               */

/* A normalization segment may start before c: c is a starter that never
 * combines with what precedes it (safe scripts only; elsewhere a segment runs
 * to the next ASCII character). Segmenting keeps offsets fine-grained. */
static bool nf_boundary(uint32_t c) {
    if (c < 0x80)
        return true;
    bool safe = c < 0x300 || (c >= 0x370 && c <= 0x482) || (c >= 0x48A && c <= 0x52F) ||
                (c >= 0x5D0 && c <= 0x5EA) || (c >= 0x620 && c <= 0x64A) ||
                (c >= 0x3041 && c <= 0x3096) || (c >= 0x30A1 && c <= 0x30FA) ||
                (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x4E00 && c <= 0x9FFF) ||
                (c >= 0xAC00 && c <= 0xD7A3) || c >= 0x1F000;
    return safe && utf8proc_get_property((utf8proc_int32_t)c)->combining_class == 0;
}

typedef struct nf_ctx {
    uint32_t **buf;
    size_t *cap;
} nf_ctx;

/* Normalizes src[a, b) (one segment) into dst. */
static tp_status nf_segment(nf_ctx *cx, utf8proc_option_t opt, const tstr *src, size_t a, size_t b,
                            tstr *dst) {
    utf8proc_ssize_t need =
        utf8proc_decompose((const utf8proc_uint8_t *)src->s + a, (utf8proc_ssize_t)(b - a),
                           (utf8proc_int32_t *)*cx->buf, (utf8proc_ssize_t)*cx->cap, opt);
    if (need < 0)
        return TP_ERR_INTERNAL;
    if ((size_t)need > *cx->cap) {
        if (!grow((void **)cx->buf, cx->cap, (size_t)need, sizeof(uint32_t)))
            return TP_ERR_OUT_OF_MEMORY;
        need = utf8proc_decompose((const utf8proc_uint8_t *)src->s + a, (utf8proc_ssize_t)(b - a),
                                  (utf8proc_int32_t *)*cx->buf, (utf8proc_ssize_t)*cx->cap, opt);
        if (need < 0)
            return TP_ERR_INTERNAL;
    }
    utf8proc_ssize_t m = need;
    if (opt & UTF8PROC_COMPOSE) {
        m = utf8proc_normalize_utf32((utf8proc_int32_t *)*cx->buf, need, opt);
        if (m < 0)
            return TP_ERR_INTERNAL;
    }
    /* encode; unchanged segments keep the byte-exact alignment */
    char enc[4 * 64];
    size_t start = dst->n;
    for (utf8proc_ssize_t i = 0; i < m; i++) {
        int k = tp_utf8_encode((*cx->buf)[i], enc);
        if (!tstr_push(dst, enc, (size_t)k, src->os[a], src->oe[b - 1]))
            return TP_ERR_OUT_OF_MEMORY;
    }
    if (dst->n - start == b - a && memcmp(dst->s + start, src->s + a, b - a) == 0) {
        memcpy(dst->os + start, src->os + a, (b - a) * sizeof(uint32_t));
        memcpy(dst->oe + start, src->oe + a, (b - a) * sizeof(uint32_t));
    }
    return TP_OK;
}

static tp_status norm_unicode(nf_ctx *cx, utf8proc_option_t opt, const tstr *src, tstr *dst) {
    size_t n = src->n;
    size_t i = 0;
    /* ASCII is invariant under every normalization form */
    while (i < n && (uint8_t)src->s[i] < 0x80)
        i++;
    if (i == n)
        return tstr_copy(dst, src, 0, n) ? TP_OK : TP_ERR_OUT_OF_MEMORY;
    i = 0;
    while (i < n) {
        if ((uint8_t)src->s[i] < 0x80) {
            /* copy the ASCII run but its last char, which may start a segment
             * with the combining marks that follow it */
            size_t j = i;
            while (j + 1 < n && (uint8_t)src->s[j + 1] < 0x80)
                j++;
            if (j + 1 == n)
                j = n;
            if (j > i && !tstr_copy(dst, src, i, j))
                return TP_ERR_OUT_OF_MEMORY;
            i = j;
            if (i >= n)
                break;
        }
        size_t j = i;
        int len;
        cp_at(src->s, n, j, &len);
        j += (size_t)len;
        while (j < n) {
            uint32_t c = cp_at(src->s, n, j, &len);
            if (nf_boundary(c))
                break;
            j += (size_t)len;
        }
        tp_status st = nf_segment(cx, opt, src, i, j, dst);
        if (st)
            return st;
        i = j;
    }
    return TP_OK;
}

static tp_status find_pattern(const tok_pattern *p, pcre2_match_data *md, const char *s, size_t n,
                              size_t from, size_t *ms, size_t *me) {
    if (!p->is_regex) {
        if (p->literal_len == 0 || from >= n)
            return TP_ERR_NOT_FOUND;
        const char *q = memmem(s + from, n - from, p->literal, p->literal_len);
        if (!q)
            return TP_ERR_NOT_FOUND;
        *ms = (size_t)(q - s);
        *me = *ms + p->literal_len;
        return TP_OK;
    }
    while (from <= n) {
        int rc = pcre2_match(p->re, (PCRE2_SPTR)s, n, from, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH)
            return TP_ERR_NOT_FOUND;
        if (rc == PCRE2_ERROR_NOMEMORY || rc == PCRE2_ERROR_HEAPLIMIT)
            return TP_ERR_OUT_OF_MEMORY;
        if (rc < 0)
            return TP_ERR_INTERNAL;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[1] > ov[0]) {
            *ms = ov[0];
            *me = ov[1];
            return TP_OK;
        }
        /* empty match: try again one character further */
        if (ov[0] >= n)
            return TP_ERR_NOT_FOUND;
        int len;
        cp_at(s, n, ov[0], &len);
        from = ov[0] + (size_t)len;
    }
    return TP_ERR_NOT_FOUND;
}

static tp_status normalize_one(tp_tok_scratch *S, pcre2_match_data *md, const tok_normalizer *nz,
                               tstr *src, tstr *dst, nf_ctx *cx);

/* Runs normalizer nz on *a (result left in *a; *b is scratch). */
static tp_status normalize_run(tp_tok_scratch *S, pcre2_match_data *md, const tok_normalizer *nz,
                               tstr *a, tstr *b, nf_ctx *cx) {
    if (nz->kind == TN_SEQUENCE) {
        for (size_t i = 0; i < nz->n_items; i++) {
            tp_status st = normalize_run(S, md, &nz->items[i], a, b, cx);
            if (st)
                return st;
        }
        return TP_OK;
    }
    b->n = 0;
    tp_status st = normalize_one(S, md, nz, a, b, cx);
    if (st)
        return st;
    tstr t = *a;
    *a = *b;
    *b = t;
    return TP_OK;
}

static tp_status normalize_one(tp_tok_scratch *S, pcre2_match_data *md, const tok_normalizer *nz,
                               tstr *src, tstr *dst, nf_ctx *cx) {
    (void)S;
    size_t n = src->n;
    switch (nz->kind) {
    case TN_NFC:
        return norm_unicode(cx, UTF8PROC_STABLE | UTF8PROC_COMPOSE, src, dst);
    case TN_NFD:
        return norm_unicode(cx, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE, src, dst);
    case TN_NFKC:
        return norm_unicode(cx, UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT, src, dst);
    case TN_NFKD:
        return norm_unicode(cx, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT, src, dst);
    case TN_LOWERCASE: {
        for (size_t i = 0; i < n;) {
            int len;
            uint32_t c = cp_at(src->s, n, i, &len);
            char enc[8];
            size_t k;
            if (c == 0x130) { /* Rust: 'İ'.to_lowercase() == "i\u{307}" */
                memcpy(enc, "i\xcc\x87", 3);
                k = 3;
            } else {
                k = (size_t)tp_utf8_encode((uint32_t)utf8proc_tolower((utf8proc_int32_t)c), enc);
            }
            if (!tstr_push(dst, enc, k, src->os[i], src->oe[i + (size_t)len - 1]))
                return TP_ERR_OUT_OF_MEMORY;
            i += (size_t)len;
        }
        return TP_OK;
    }
    case TN_STRIP: {
        size_t a = 0, b = n;
        int len;
        if (nz->strip_left)
            while (a < b && is_ws(cp_at(src->s, n, a, &len)))
                a += (size_t)len;
        if (nz->strip_right)
            while (b > a) {
                size_t p = prev_char_start(src->s, b);
                if (!is_ws(cp_at(src->s, n, p, &len)))
                    break;
                b = p;
            }
        return tstr_copy(dst, src, a, b) ? TP_OK : TP_ERR_OUT_OF_MEMORY;
    }
    case TN_REPLACE: {
        size_t i = 0, ms, me;
        tp_status fs;
        while ((fs = find_pattern(&nz->pat, md, src->s, n, i, &ms, &me)) == TP_OK) {
            if (!tstr_copy(dst, src, i, ms) ||
                !tstr_push(dst, nz->content, nz->content_len, src->os[ms], src->oe[me - 1]))
                return TP_ERR_OUT_OF_MEMORY;
            i = me;
        }
        if (fs != TP_ERR_NOT_FOUND)
            return fs;
        return tstr_copy(dst, src, i, n) ? TP_OK : TP_ERR_OUT_OF_MEMORY;
    }
    case TN_PREPEND:
        if (n == 0)
            return TP_OK;
        if (!tstr_push(dst, nz->content, nz->content_len, src->os[0], src->oe[0]))
            return TP_ERR_OUT_OF_MEMORY;
        return tstr_copy(dst, src, 0, n) ? TP_OK : TP_ERR_OUT_OF_MEMORY;
    case TN_SEQUENCE:
        break;
    }
    return TP_ERR_INTERNAL;
}

tp_status tok_normalize_plain(const tp_tokenizer *tok, const tok_normalizer *norm, const char *s,
                              size_t n, tp_buf *out, tp_error *err) {
    (void)tok;
    tstr a = {0}, b = {0};
    uint32_t *u = NULL;
    size_t ucap = 0;
    nf_ctx cx = {&u, &ucap};
    pcre2_match_data *md = tok_match_data_create(16);
    tp_status st = md ? TP_OK : TP_ERR_OUT_OF_MEMORY;
    if (!st && !tstr_reserve(&a, n + 1))
        st = TP_ERR_OUT_OF_MEMORY;
    if (!st) {
        for (size_t i = 0; i < n; i++) {
            a.os[i] = (uint32_t)i;
            a.oe[i] = (uint32_t)i + 1;
        }
        memcpy(a.s, s, n);
        a.n = n;
        st = normalize_run(NULL, md, norm, &a, &b, &cx);
    }
    if (!st)
        tp_buf_append(out, a.s, a.n);
    tstr_free(&a);
    tstr_free(&b);
    tp_free(u);
    if (md)
        pcre2_match_data_free(md);
    if (st)
        return tp_fail(err, st, "normalizing failed (%s)", tp_status_name(st));
    return out->oom ? tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory") : TP_OK;
}

/* ------------------------------------------------------------------------ */
/* pre-tokenizers                                                            */

/* Applies a split behavior to the segments of one split (offsets absolute in
 * the current buffer) and appends the resulting splits to S->sp2. */
static bool emit_segments(tp_tok_scratch *S, seg *g, size_t ng, tok_split_behavior beh,
                          bool invert) {
    for (size_t i = 0; i < ng; i++)
        g[i].match ^= invert;
    size_t m = 0; /* compacted output in g[0..m) */
    switch (beh) {
    case TS_REMOVED:
        for (size_t i = 0; i < ng; i++)
            if (!g[i].match)
                g[m++] = g[i];
        break;
    case TS_ISOLATED:
        m = ng;
        break;
    case TS_MERGED_PREV: {
        bool prev_match = false;
        for (size_t i = 0; i < ng; i++) {
            if (g[i].match && !prev_match && m > 0)
                g[m - 1].b = g[i].b;
            else
                g[m++] = g[i];
            prev_match = g[i].match;
        }
        break;
    }
    case TS_MERGED_NEXT: {
        /* right to left, mirror of MergedWithPrevious */
        bool prev_match = false;
        size_t w = ng; /* write index from the end */
        for (size_t k = ng; k-- > 0;) {
            seg cur = g[k];
            if (cur.match && !prev_match && w < ng)
                g[w].a = cur.a;
            else
                g[--w] = cur;
            prev_match = cur.match;
        }
        memmove(g, g + w, (ng - w) * sizeof *g);
        m = ng - w;
        break;
    }
    case TS_CONTIGUOUS: {
        for (size_t i = 0; i < ng; i++) {
            if (m > 0 && g[m - 1].match == g[i].match && g[m - 1].b == g[i].a)
                g[m - 1].b = g[i].b;
            else
                g[m++] = g[i];
        }
        break;
    }
    }
    for (size_t i = 0; i < m; i++) {
        if (g[i].b <= g[i].a)
            continue;
        if (!grow((void **)&S->sp2, &S->spcap2, S->nsp2 + 1, sizeof *S->sp2))
            return false;
        S->sp2[S->nsp2++] = (tsplit){g[i].a, g[i].b - g[i].a};
    }
    return true;
}

static bool seg_push(segbuf *sb, uint32_t a, uint32_t b, bool match) {
    if (!grow((void **)&sb->g, &sb->cap, sb->n + 1, sizeof *sb->g))
        return false;
    sb->g[sb->n++] = (seg){a, b, match};
    return true;
}

typedef bool (*char_pred)(uint32_t c);

static bool is_ws_pred(uint32_t c) {
    return is_ws(c);
}

/* segments of split [a, b) by pattern or by char predicate */
static tp_status split_segments(tp_tok_scratch *S, const tok_pattern *pat, char_pred pred, size_t a,
                                size_t b, segbuf *sb) {
    sb->n = 0;
    const char *s = S->cur.s + a;
    size_t n = b - a;
    if (pred) {
        size_t last = 0;
        for (size_t i = 0; i < n;) {
            int len;
            uint32_t c = cp_at(s, n, i, &len);
            if (pred(c)) {
                if (last < i && !seg_push(sb, (uint32_t)(a + last), (uint32_t)(a + i), false))
                    return TP_ERR_OUT_OF_MEMORY;
                if (!seg_push(sb, (uint32_t)(a + i), (uint32_t)(a + i + (size_t)len), true))
                    return TP_ERR_OUT_OF_MEMORY;
                last = i + (size_t)len;
            }
            i += (size_t)len;
        }
        if (last < n && !seg_push(sb, (uint32_t)(a + last), (uint32_t)b, false))
            return TP_ERR_OUT_OF_MEMORY;
        return TP_OK;
    }
    size_t i = 0, ms, me, prev = 0;
    tp_status st;
    while ((st = find_pattern(pat, S->md, s, n, i, &ms, &me)) == TP_OK) {
        if (prev < ms && !seg_push(sb, (uint32_t)(a + prev), (uint32_t)(a + ms), false))
            return TP_ERR_OUT_OF_MEMORY;
        if (!seg_push(sb, (uint32_t)(a + ms), (uint32_t)(a + me), true))
            return TP_ERR_OUT_OF_MEMORY;
        prev = i = me;
    }
    if (st != TP_ERR_NOT_FOUND)
        return st;
    if (prev < n && !seg_push(sb, (uint32_t)(a + prev), (uint32_t)b, false))
        return TP_ERR_OUT_OF_MEMORY;
    return TP_OK;
}

static void swap_splits(tp_tok_scratch *S) {
    tsplit *t = S->sp;
    S->sp = S->sp2;
    S->sp2 = t;
    size_t c = S->spcap;
    S->spcap = S->spcap2;
    S->spcap2 = c;
    S->nsp = S->nsp2;
    S->nsp2 = 0;
}

static tp_status split_all(tp_tok_scratch *S, const tok_pattern *pat, char_pred pred,
                           tok_split_behavior beh, bool invert, segbuf *sb) {
    S->nsp2 = 0;
    for (size_t k = 0; k < S->nsp; k++) {
        tsplit sp = S->sp[k];
        tp_status st = split_segments(S, pat, pred, sp.start, sp.start + sp.len, sb);
        if (st)
            return st;
        if (!emit_segments(S, sb->g, sb->n, beh, invert))
            return TP_ERR_OUT_OF_MEMORY;
    }
    swap_splits(S);
    return TP_OK;
}

/* Rebuilds the current buffer split by split: ByteLevel's add_prefix_space and
 * Metaspace's replacement/prepend. */
static tp_status rewrite_splits(tp_tok_scratch *S, const tok_pretok *p, bool first_piece) {
    tstr *d = &S->tmp;
    d->n = 0;
    S->nsp2 = 0;
    for (size_t k = 0; k < S->nsp; k++) {
        tsplit sp = S->sp[k];
        size_t a = sp.start, b = sp.start + sp.len;
        uint32_t start = (uint32_t)d->n;
        const char *s = S->cur.s;
        if (p->kind == TP_PRE_BYTELEVEL) {
            if (s[a] != ' ' && !tstr_push(d, " ", 1, S->cur.os[a], S->cur.os[a]))
                return TP_ERR_OUT_OF_MEMORY;
            if (!tstr_copy(d, &S->cur, a, b))
                return TP_ERR_OUT_OF_MEMORY;
        } else {
            bool starts = sp.len >= p->replacement_len &&
                          memcmp(s + a, p->replacement, p->replacement_len) == 0;
            bool want =
                p->prepend == TPS_ALWAYS || (p->prepend == TPS_FIRST && k == 0 && first_piece);
            /* a leading space becomes the replacement anyway */
            if (want && !starts && s[a] != ' ' &&
                !tstr_push(d, p->replacement, p->replacement_len, S->cur.os[a], S->cur.os[a]))
                return TP_ERR_OUT_OF_MEMORY;
            for (size_t i = a; i < b; i++) {
                bool ok = s[i] == ' ' ? tstr_push(d, p->replacement, p->replacement_len,
                                                  S->cur.os[i], S->cur.oe[i])
                                      : tstr_copy(d, &S->cur, i, i + 1);
                if (!ok)
                    return TP_ERR_OUT_OF_MEMORY;
            }
        }
        if (!grow((void **)&S->sp2, &S->spcap2, S->nsp2 + 1, sizeof *S->sp2))
            return TP_ERR_OUT_OF_MEMORY;
        S->sp2[S->nsp2++] = (tsplit){start, (uint32_t)d->n - start};
    }
    tstr t = S->cur;
    S->cur = S->tmp;
    S->tmp = t;
    swap_splits(S);
    return TP_OK;
}

static tp_status pretokenize(tp_tok_scratch *S, const tok_pretok *p, bool first_piece, segbuf *sb) {
    tp_status st;
    switch (p->kind) {
    case TP_PRE_SEQUENCE:
        for (size_t i = 0; i < p->n_items; i++)
            if ((st = pretokenize(S, &p->items[i], first_piece, sb)))
                return st;
        return TP_OK;
    case TP_PRE_SPLIT:
        return split_all(S, &p->pat, NULL, p->behavior, p->invert, sb);
    case TP_PRE_BYTELEVEL:
        if (p->add_prefix_space && (st = rewrite_splits(S, p, first_piece)))
            return st;
        if (p->use_regex)
            return split_all(S, &p->pat, NULL, TS_ISOLATED, false, sb);
        return TP_OK;
    case TP_PRE_METASPACE: {
        if ((st = rewrite_splits(S, p, first_piece)))
            return st;
        if (!p->split)
            return TP_OK;
        tok_pattern lit = {.is_regex = false,
                           .literal = (char *)p->replacement,
                           .literal_len = p->replacement_len};
        return split_all(S, &lit, NULL, TS_MERGED_NEXT, false, sb);
    }
    case TP_PRE_DIGITS:
        return split_all(S, NULL, is_numeric, p->individual_digits ? TS_ISOLATED : TS_CONTIGUOUS,
                         false, sb);
    case TP_PRE_WHITESPACE:
        return split_all(S, &p->pat, NULL, TS_REMOVED, true, sb);
    case TP_PRE_WHITESPACE_SPLIT:
        return split_all(S, NULL, is_ws_pred, TS_REMOVED, false, sb);
    }
    return TP_ERR_INTERNAL;
}

/* ------------------------------------------------------------------------ */
/* BPE                                                                       */

static bool sym_reserve(tp_tok_scratch *S, size_t n) {
    if (n <= S->symcap)
        return true;
    size_t c = S->symcap ? S->symcap : 64;
    while (c < n)
        c *= 2;
    uint32_t **arrs[] = {&S->sid, &S->spos, &S->slen, &S->sprev, &S->snext, &S->srank};
    for (size_t i = 0; i < sizeof arrs / sizeof arrs[0]; i++) {
        uint32_t *p = tp_realloc(*arrs[i], c * sizeof(uint32_t));
        if (!p)
            return false;
        *arrs[i] = p;
    }
    S->symcap = c;
    return true;
}

static inline uint32_t pair_rank(const tp_tokenizer *tok, uint32_t a, uint32_t b, uint32_t *id) {
    const tok_merge_slot *m = tok_merge_find(&tok->merges, a, b);
    if (!m)
        return TOK_NONE;
    *id = m->id;
    return m->rank;
}

/* Tournament tree over symbol positions for long words: leaf i holds the key
 * (rank << 32 | i) of the pair (i, next[i]) (UINT64_MAX: none), every inner
 * node the minimum of its children, so the root is the lowest rank, leftmost
 * among equals. A merge changes three leaves: O(log n) each, no stale
 * entries (a binary heap with lazy deletion spent most of its time popping). */
static inline void tt_set(uint64_t *t, size_t P, size_t i, uint64_t key) {
    size_t k = P + i;
    t[k] = key;
    for (k >>= 1; k >= 1; k >>= 1) {
        uint64_t m = t[2 * k] < t[2 * k + 1] ? t[2 * k] : t[2 * k + 1];
        if (t[k] == m)
            break;
        t[k] = m;
    }
}

/* Appends the vocabulary string of one symbol (char at w[i..i+len)) with the
 * continuing-subword prefix / end-of-word suffix to S->wbuf. */
static void sym_string(tp_tok_scratch *S, const char *w, size_t i, size_t len, bool first,
                       bool last) {
    const tp_tokenizer *tok = S->tok;
    S->wbuf.len = 0;
    if (!first && tok->cont_prefix)
        tp_buf_append(&S->wbuf, tok->cont_prefix, tok->cont_prefix_len);
    if (tok->byte_level) {
        for (size_t k = 0; k < len; k++) {
            char u[4];
            int m = tp_utf8_encode(tok_byte_to_char((uint8_t)w[i + k]), u);
            tp_buf_append(&S->wbuf, u, (size_t)m);
        }
    } else {
        tp_buf_append(&S->wbuf, w + i, len);
    }
    if (last && tok->eow_suffix)
        tp_buf_append(&S->wbuf, tok->eow_suffix, tok->eow_suffix_len);
}

/* Word w[0..n) -> symbols (initial, before merges). Returns the count, or
 * (size_t)-1 with *bad set to the byte offset of a character that has no id. */
static tp_status bpe_init(tp_tok_scratch *S, const char *w, size_t n, size_t *count, size_t *bad) {
    const tp_tokenizer *tok = S->tok;
    size_t ns = 0;
    if (!sym_reserve(S, n + 1))
        return TP_ERR_OUT_OF_MEMORY;
    bool plain = !tok->cont_prefix && !tok->eow_suffix;
    for (size_t i = 0; i < n;) {
        size_t len = 1;
        if (!tok->byte_level) {
            int l;
            uint32_t c;
            l = tp_utf8_decode(w + i, n - i, &c);
            len = (size_t)l;
        }
        uint32_t id = TOK_NONE;
        if (plain && tok->byte_level) {
            id = tok->byte_to_id[(uint8_t)w[i]];
        } else if (plain) {
            int32_t v = tok_vocab_find(tok, w + i, len);
            id = v < 0 ? TOK_NONE : (uint32_t)v;
        } else {
            sym_string(S, w, i, len, i == 0, i + len == n);
            if (S->wbuf.oom)
                return TP_ERR_OUT_OF_MEMORY;
            int32_t v = tok_vocab_find(tok, S->wbuf.data ? S->wbuf.data : "", S->wbuf.len);
            id = v < 0 ? TOK_NONE : (uint32_t)v;
        }
        if (id != TOK_NONE) {
            S->sid[ns] = id;
            S->spos[ns] = (uint32_t)i;
            S->slen[ns] = (uint32_t)len;
            ns++;
            i += len;
            continue;
        }
        if (tok->byte_fallback) {
            bool all = true;
            for (size_t k = 0; k < len; k++)
                all = all && tok->byte_fallback_id[(uint8_t)w[i + k]] != TOK_NONE;
            if (all) {
                for (size_t k = 0; k < len; k++) {
                    S->sid[ns] = tok->byte_fallback_id[(uint8_t)w[i + k]];
                    S->spos[ns] = (uint32_t)(i + k);
                    S->slen[ns] = 1;
                    ns++;
                }
                i += len;
                continue;
            }
        }
        if (tok->unk_id == TOK_NONE) {
            *bad = i;
            return TP_ERR_INPUT;
        }
        if (tok->fuse_unk && ns > 0 && S->sid[ns - 1] == tok->unk_id) {
            S->slen[ns - 1] += (uint32_t)len;
        } else {
            S->sid[ns] = tok->unk_id;
            S->spos[ns] = (uint32_t)i;
            S->slen[ns] = (uint32_t)len;
            ns++;
        }
        i += len;
    }
    *count = ns;
    return TP_OK;
}

#define BPE_SCAN_MAX 48

/* Merges the symbols in place; the survivors are linked via snext from 0. */
static tp_status bpe_merge(tp_tok_scratch *S, size_t ns) {
    const tp_tokenizer *tok = S->tok;
    uint32_t *sid = S->sid, *slen = S->slen, *prev = S->sprev, *next = S->snext;
    for (size_t i = 0; i < ns; i++) {
        prev[i] = i ? (uint32_t)i - 1 : TOK_NONE;
        next[i] = i + 1 < ns ? (uint32_t)i + 1 : TOK_NONE;
    }
    if (ns < 2 || !tok->merges.slots)
        return TP_OK;
    if (ns <= BPE_SCAN_MAX) {
        /* srank[i] = rank of pair (i, next[i]); merged id kept in a local array */
        uint32_t newid[BPE_SCAN_MAX];
        uint32_t *rank = S->srank;
        for (size_t i = 0; i + 1 < ns; i++)
            rank[i] = pair_rank(tok, sid[i], sid[i + 1], &newid[i]);
        rank[ns - 1] = TOK_NONE;
        for (;;) {
            uint32_t best = TOK_NONE, bi = TOK_NONE;
            for (uint32_t i = 0; i != TOK_NONE; i = next[i])
                if (rank[i] < best) {
                    best = rank[i];
                    bi = i;
                }
            if (bi == TOK_NONE)
                break;
            uint32_t j = next[bi];
            sid[bi] = newid[bi];
            slen[bi] += slen[j];
            next[bi] = next[j];
            if (next[j] != TOK_NONE)
                prev[next[j]] = bi;
            rank[bi] = next[bi] != TOK_NONE ? pair_rank(tok, sid[bi], sid[next[bi]], &newid[bi])
                                            : TOK_NONE;
            if (prev[bi] != TOK_NONE) {
                uint32_t p = prev[bi];
                rank[p] = pair_rank(tok, sid[p], sid[bi], &newid[p]);
            }
        }
        return TP_OK;
    }
    size_t P = 1;
    while (P < ns)
        P <<= 1;
    if (!grow((void **)&S->tree, &S->treecap, 2 * P, sizeof(uint64_t)))
        return TP_ERR_OUT_OF_MEMORY;
    uint64_t *t = S->tree;
    uint32_t *newid = S->srank; /* merged id of pair (i, next[i]) */
    for (size_t i = 0; i < P; i++) {
        uint32_t r = i + 1 < ns ? pair_rank(tok, sid[i], sid[i + 1], &newid[i]) : TOK_NONE;
        t[P + i] = r == TOK_NONE ? UINT64_MAX : (uint64_t)r << 32 | i;
    }
    for (size_t k = P - 1; k >= 1; k--)
        t[k] = t[2 * k] < t[2 * k + 1] ? t[2 * k] : t[2 * k + 1];
    while (t[1] != UINT64_MAX) {
        uint32_t i = (uint32_t)(t[1] & 0xffffffffu);
        uint32_t j = next[i];
        sid[i] = newid[i];
        slen[i] += slen[j];
        slen[j] = 0;
        next[i] = next[j];
        if (next[j] != TOK_NONE)
            prev[next[j]] = i;
        tt_set(t, P, j, UINT64_MAX);
        uint32_t r;
        if (next[i] != TOK_NONE &&
            (r = pair_rank(tok, sid[i], sid[next[i]], &newid[i])) != TOK_NONE)
            tt_set(t, P, i, (uint64_t)r << 32 | i);
        else
            tt_set(t, P, i, UINT64_MAX);
        if (prev[i] != TOK_NONE) {
            uint32_t q = prev[i];
            r = pair_rank(tok, sid[q], sid[i], &newid[q]);
            tt_set(t, P, q, r == TOK_NONE ? UINT64_MAX : (uint64_t)r << 32 | q);
        }
    }
    return TP_OK;
}

static bool out_push(tp_tok_scratch *S, uint32_t id, uint32_t a, uint32_t b) {
    if (!grow((void **)&S->out, &S->out_cap, S->n_out + 1, sizeof *S->out))
        return false;
    S->out[S->n_out++] = (ttok){id, a, b};
    return true;
}

/* Tokenizes word cur[a, b) and appends the tokens to S->out. */
static tp_status bpe_word_core(tp_tok_scratch *S, size_t a, size_t b, tp_error *err) {
    const tp_tokenizer *tok = S->tok;
    const char *w = S->cur.s + a;
    size_t n = b - a;
    const uint32_t *os = S->cur.os + a, *oe = S->cur.oe + a;

    /* cache lookup (allocated on first use) */
    uint64_t h = 0;
    cache_slot *slot = NULL;
    if (!S->cache && !S->no_cache) {
        S->cache = tp_calloc(CACHE_SLOTS, sizeof *S->cache); /* gen 0: all empty */
        S->ckeys = tp_malloc(CACHE_KEY_POOL);
        S->cvals = tp_malloc(CACHE_VAL_POOL * sizeof(uint32_t));
        if (!S->cache || !S->ckeys || !S->cvals) {
            /* all or nothing: a cache without its pools (or never cleared, so
             * every slot looks taken) would be probed forever next time */
            tp_free(S->cache);
            tp_free(S->ckeys);
            tp_free(S->cvals);
            S->cache = NULL;
            S->ckeys = NULL;
            S->cvals = NULL;
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        }
        cache_clear(S);
    }
    if (n <= CACHE_MAX_WORD && S->cache && !S->cache_off) {
        h = tok_hash_bytes(w, n);
        size_t i = (size_t)h & (CACHE_SLOTS - 1);
        for (;;) {
            cache_slot *c = &S->cache[i];
            if (c->gen != S->cache_gen) {
                slot = c;
                break;
            }
            if (c->hash == h && c->key_len == n && memcmp(S->ckeys + c->key_off, w, n) == 0) {
                const uint32_t *v = S->cvals + c->val_off;
                uint32_t st = 0;
                for (size_t k = 0; k < c->n_tok; k++) {
                    uint32_t en = v[2 * k + 1];
                    if (!out_push(S, v[2 * k], os[st], oe[en - 1]))
                        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
                    st = en;
                }
                return TP_OK;
            }
            i = (i + 1) & (CACHE_SLOTS - 1);
        }
    }
    size_t first_out = S->n_out;
    bool done = false;
    if (tok->ignore_merges) {
        S->wbuf.len = 0;
        sym_string(S, w, 0, n, true, true);
        int32_t v =
            S->wbuf.oom ? -1 : tok_vocab_find(tok, S->wbuf.data ? S->wbuf.data : "", S->wbuf.len);
        if (v >= 0) {
            if (!out_push(S, (uint32_t)v, os[0], oe[n - 1]))
                return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
            done = true;
        }
    }
    if (!done) {
        size_t ns = 0, bad = 0;
        tp_status st = bpe_init(S, w, n, &ns, &bad);
        if (st == TP_ERR_INPUT) {
            uint32_t c = 0;
            tp_utf8_decode(w + bad, n - bad, &c);
            return tp_fail(err, TP_ERR_INPUT,
                           "character U+%04X at byte %u has no token and the tokenizer has no "
                           "unk_token",
                           (unsigned)c, (unsigned)os[bad]);
        }
        if (st || (st = bpe_merge(S, ns)))
            return tp_fail(err, st, "out of memory");
        for (uint32_t i = ns ? 0 : TOK_NONE; i != TOK_NONE; i = S->snext[i]) {
            uint32_t p = S->spos[i], l = S->slen[i];
            if (!out_push(S, S->sid[i], os[p], oe[p + l - 1]))
                return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        }
    }
    /* cache store: (id, end offset within the word) pairs */
    if (slot) {
        size_t nt = S->n_out - first_out;
        if (S->cache_used * 2 >= CACHE_SLOTS || S->ckeys_len + n > CACHE_KEY_POOL ||
            S->cvals_len + 2 * nt > CACHE_VAL_POOL || nt >= 0xffff) {
            if (nt >= 0xffff)
                return TP_OK;
            cache_clear(S);
            size_t i = (size_t)h & (CACHE_SLOTS - 1);
            slot = &S->cache[i];
        }
        memcpy(S->ckeys + S->ckeys_len, w, n);
        slot->hash = h;
        slot->key_off = (uint32_t)S->ckeys_len;
        slot->key_len = (uint16_t)n;
        slot->val_off = (uint32_t)S->cvals_len;
        slot->n_tok = (uint16_t)nt;
        slot->gen = S->cache_gen;
        /* ends relative to the word: recover from the symbol list again */
        uint32_t *v = S->cvals + S->cvals_len;
        if (done) {
            v[0] = S->out[first_out].id;
            v[1] = (uint32_t)n;
        } else {
            size_t k = 0;
            for (uint32_t i = 0; i != TOK_NONE; i = S->snext[i], k++) {
                v[2 * k] = S->sid[i];
                v[2 * k + 1] = S->spos[i] + S->slen[i];
            }
        }
        S->ckeys_len += n;
        S->cvals_len += 2 * nt;
        S->cache_used++;
    }
    return TP_OK;
}

/* Word cur[a, b) -> tokens. A SentencePiece-style model sees a whole line as
 * one word (Gemma 3), which defeats the word cache and makes every pair lookup
 * a cache miss in the big merge table. When meta_split is on, the word is cut
 * before each run of "▁" that follows another character. This is exact: a
 * merge across such a cut would have to join a token ending in that character
 * to one starting with "▁"; the model has no such merge except the listed
 * exceptions, and a cut is skipped where one of them could apply (the text
 * before it ends with A and the text after it starts with B). Merges within
 * the pieces happen in the same order as in the whole word (the lowest rank,
 * leftmost, within each piece), so the ids are the same. */
static tp_status bpe_word(tp_tok_scratch *S, size_t a, size_t b, tp_error *err) {
    const tp_tokenizer *tok = S->tok;
    if (!tok->meta_split || S->cache_off || b - a <= CACHE_MAX_WORD)
        return bpe_word_core(S, a, b, err);
    const char *w = S->cur.s;
    size_t start = a;
    for (size_t p = a + 1; p + 3 <= b; p++) {
        if (memcmp(w + p, "\xe2\x96\x81", 3) != 0)
            continue;
        if (p >= a + 3 && memcmp(w + p - 3, "\xe2\x96\x81", 3) == 0)
            continue; /* inside a run */
        bool blocked = false;
        for (size_t k = 0; k < tok->n_cross && !blocked; k++) {
            size_t al = strlen(tok->cross_a[k]), bl = strlen(tok->cross_b[k]);
            blocked = p - a >= al && memcmp(w + p - al, tok->cross_a[k], al) == 0 && b - p >= bl &&
                      memcmp(w + p, tok->cross_b[k], bl) == 0;
        }
        if (blocked || p == start)
            continue;
        tp_status st = bpe_word_core(S, start, p, err);
        if (st)
            return st;
        start = p;
    }
    return bpe_word_core(S, start, b, err);
}

/* ------------------------------------------------------------------------ */
/* added tokens                                                              */

static bool trie_empty(const tok_trie *t) {
    return !t->nodes || t->nodes[0].n_edges == 0;
}

/* longest added token starting at s[i]; returns its length (0 = none) */
static size_t trie_longest(const tok_trie *t, const char *s, size_t n, size_t i, uint32_t *which) {
    uint32_t node = t->root_child[(uint8_t)s[i]];
    size_t best = 0;
    size_t k = i + 1;
    while (node != TOK_NONE) {
        if (t->nodes[node].token != TOK_NONE) {
            best = k - i;
            *which = t->nodes[node].token;
        }
        if (k >= n)
            break;
        const tok_trie_node *nd = &t->nodes[node];
        uint8_t c = (uint8_t)s[k];
        uint32_t nxt = TOK_NONE;
        for (uint32_t e = nd->first_edge; e < nd->first_edge + nd->n_edges; e++) {
            if (t->edges[e].byte == c) {
                nxt = t->edges[e].child;
                break;
            }
            if (t->edges[e].byte > c)
                break;
        }
        node = nxt;
        k++;
    }
    return best;
}

/* Finds added tokens in s[0..n) the way HF does (leftmost-longest matches,
 * then single_word filtering and lstrip/rstrip widening). */
static tp_status find_added(const tp_tokenizer *tok, const tok_trie *t, const char *s, size_t n,
                            amatch **m, size_t *nm, size_t *cap) {
    *nm = 0;
    if (trie_empty(t))
        return TP_OK;
    size_t start_offset = 0;
    for (size_t i = 0; i < n;) {
        if (t->root_child[(uint8_t)s[i]] == TOK_NONE) {
            i++;
            continue;
        }
        uint32_t which = 0;
        size_t len = trie_longest(t, s, n, i, &which);
        if (len == 0) {
            i++;
            continue;
        }
        size_t a = i, b = i + len;
        i = b;
        const tok_added *ad = &tok->added[which];
        int l;
        if (ad->single_word) {
            bool start_ok = a == 0 || !is_word_char(cp_at(s, n, prev_char_start(s, a), &l));
            bool stop_ok = b == n || !is_word_char(cp_at(s, n, b, &l));
            if (!start_ok || !stop_ok)
                continue;
        }
        if (a < start_offset)
            continue; /* swallowed by the previous token's rstrip */
        if (ad->lstrip) {
            size_t na = a;
            while (na > start_offset) {
                size_t p = prev_char_start(s, na);
                if (!is_ws(cp_at(s, n, p, &l)))
                    break;
                na = p;
            }
            a = na;
        }
        if (ad->rstrip) {
            while (b < n && is_ws(cp_at(s, n, b, &l)))
                b += (size_t)l;
            i = b;
        }
        if (!grow((void **)m, cap, *nm + 1, sizeof **m))
            return TP_ERR_OUT_OF_MEMORY;
        (*m)[(*nm)++] = (amatch){(uint32_t)a, (uint32_t)b, which};
        start_offset = b;
    }
    return TP_OK;
}

/* ------------------------------------------------------------------------ */
/* one text                                                                  */

/* Normalized sub-piece norm[a, b) -> pre-tokenize -> BPE. */
static tp_status model_piece(tp_tok_scratch *S, size_t a, size_t b, bool first, tp_error *err) {
    const tp_tokenizer *tok = S->tok;
    tp_status st;
    if (b <= a)
        return TP_OK;
    S->cur.n = 0;
    if (!tstr_copy(&S->cur, &S->norm, a, b) || !grow((void **)&S->sp, &S->spcap, 1, sizeof *S->sp))
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    S->sp[0] = (tsplit){0, (uint32_t)(b - a)};
    S->nsp = 1;
    if (tok->has_pretok && (st = pretokenize(S, &tok->pretok, first, &S->sb)))
        return tp_fail(err, st, "pre-tokenizer failed (%s)", tp_status_name(st));
    for (size_t k = 0; k < S->nsp; k++)
        if ((st = bpe_word(S, S->sp[k].start, S->sp[k].start + S->sp[k].len, err)))
            return st;
    return TP_OK;
}

/* Encodes text[0..len) (valid UTF-8) into S->out (tokens with offsets). */
static tp_status encode_text(tp_tok_scratch *S, const char *text, size_t len, tp_error *err) {
    const tp_tokenizer *tok = S->tok;
    tp_status st;
    size_t nm1 = 0;
    if ((st = find_added(tok, &tok->trie_raw, text, len, &S->m1, &nm1, &S->c1)))
        return tp_fail(err, st, "out of memory");
    size_t pos = 0;
    for (size_t k = 0; k <= nm1; k++) {
        size_t pa = pos, pb = k < nm1 ? S->m1[k].a : len;
        if (pb > pa) {
            /* normalize text[pa, pb) */
            tstr *piece = &S->norm;
            piece->n = 0;
            if (!tstr_reserve(piece, pb - pa))
                return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
            memcpy(piece->s, text + pa, pb - pa);
            /* every byte of a character maps to the whole character (as HF's
             * alignments do), so a token holding part of a character (byte-level
             * or byte fallback) gets the character's offsets */
            for (size_t i = 0; i < pb - pa;) {
                uint8_t c = (uint8_t)text[pa + i];
                size_t l = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
                for (size_t b = 0; b < l; b++) {
                    piece->os[i + b] = (uint32_t)(pa + i);
                    piece->oe[i + b] = (uint32_t)(pa + i + l);
                }
                i += l;
            }
            piece->n = pb - pa;
            if (tok->has_normalizer) {
                nf_ctx nx = {&S->utf32, &S->utf32cap};
                st = normalize_run(S, S->md, &tok->normalizer, &S->norm, &S->norm2, &nx);
                if (st)
                    return tp_fail(err, st, "normalizer failed (%s)", tp_status_name(st));
            }
            size_t nm2 = 0;
            if ((st = find_added(tok, &tok->trie_norm, S->norm.s, S->norm.n, &S->m2, &nm2, &S->c2)))
                return tp_fail(err, st, "out of memory");
            size_t q = 0;
            for (size_t j = 0; j <= nm2; j++) {
                size_t qa = q, qb = j < nm2 ? S->m2[j].a : S->norm.n;
                if ((st = model_piece(S, qa, qb, pa == 0 && qa == 0, err)))
                    return st;
                if (j == nm2)
                    break;
                const amatch *mm = &S->m2[j];
                if (!out_push(S, tok->added[mm->added].id, S->norm.os[mm->a],
                              S->norm.oe[mm->b - 1]))
                    return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
                q = mm->b;
            }
        }
        if (k == nm1)
            break;
        const amatch *mm = &S->m1[k];
        if (!out_push(S, tok->added[mm->added].id, mm->a, mm->b))
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        pos = mm->b;
    }
    return TP_OK;
}

/* ------------------------------------------------------------------------ */
/* truncation and post-processing                                            */

tp_tok_encode_params tp_tok_encode_default_params(void) {
    tp_tok_encode_params p = {.add_special_tokens = true,
                              .max_length = 0,
                              .strategy = TP_TRUNC_LONGEST_FIRST,
                              .error_if_truncated = false,
                              .word_cache = true};
    return p;
}

void tp_encoding_free(tp_encoding *enc) {
    if (!enc)
        return;
    tp_free(enc->ids);
    tp_free(enc->error);
    memset(enc, 0, sizeof *enc);
}

typedef struct seqv {
    const ttok *t;
    size_t n;
} seqv;

static void post_emit(const tok_post *p, bool add, seqv A, const seqv *B, tp_encoding *e,
                      size_t *k);

static void emit_seq(seqv s, int seq, uint8_t type, tp_encoding *e, size_t *k) {
    for (size_t i = 0; i < s.n; i++) {
        if (e->ids) {
            e->ids[*k] = (int32_t)s.t[i].id;
            e->type_ids[*k] = type;
            e->seq_ids[*k] = (int8_t)seq;
            e->offsets[2 * *k] = s.t[i].start;
            e->offsets[2 * *k + 1] = s.t[i].end;
        }
        (*k)++;
    }
}

static void emit_special(uint32_t id, uint8_t type, tp_encoding *e, size_t *k) {
    if (e->ids) {
        e->ids[*k] = (int32_t)id;
        e->type_ids[*k] = type;
        e->seq_ids[*k] = -1;
        e->offsets[2 * *k] = 0;
        e->offsets[2 * *k + 1] = 0;
    }
    (*k)++;
}

/* Writes the final sequence (or only counts it when e->ids is NULL). */
static void post_emit(const tok_post *p, bool add, seqv A, const seqv *B, tp_encoding *e,
                      size_t *k) {
    if (!add || p->kind == TPP_NONE || p->kind == TPP_BYTELEVEL) {
        emit_seq(A, 0, 0, e, k);
        if (B)
            emit_seq(*B, 1, 0, e, k); /* HF default_process: type ids stay 0 */
        return;
    }
    switch (p->kind) {
    case TPP_TEMPLATE: {
        const tok_tpl_piece *ps = B ? p->pair : p->single;
        size_t np = B ? p->n_pair : p->n_single;
        for (size_t i = 0; i < np; i++) {
            if (ps[i].seq < 0)
                for (size_t j = 0; j < ps[i].n_ids; j++)
                    emit_special(ps[i].ids[j], ps[i].type_id, e, k);
            else if (ps[i].seq == 0)
                emit_seq(A, 0, ps[i].type_id, e, k);
            else if (B)
                emit_seq(*B, 1, ps[i].type_id, e, k);
        }
        return;
    }
    case TPP_ROBERTA:
    case TPP_BERT:
        emit_special(p->cls_id, 0, e, k);
        emit_seq(A, 0, 0, e, k);
        emit_special(p->sep_id, 0, e, k);
        if (B) {
            uint8_t t = p->kind == TPP_BERT ? 1 : 0;
            if (p->kind == TPP_ROBERTA)
                emit_special(p->sep_id, t, e, k);
            emit_seq(*B, 1, t, e, k);
            emit_special(p->sep_id, t, e, k);
        }
        return;
    case TPP_SEQUENCE: {
        /* Only one item of a Sequence adds tokens in practice (ByteLevel +
         * Template); apply the first one that does. */
        for (size_t i = 0; i < p->n_items; i++) {
            const tok_post *q = &p->items[i];
            if (q->kind != TPP_BYTELEVEL && q->kind != TPP_NONE) {
                post_emit(q, add, A, B, e, k);
                return;
            }
        }
        post_emit(&(tok_post){.kind = TPP_NONE}, add, A, B, e, k);
        return;
    }
    default:
        return;
    }
}

/* The ByteLevel/Roberta post-processor that trims offsets, or NULL. */
static const tok_post *post_trims(const tok_post *p) {
    if (p->kind == TPP_BYTELEVEL || p->kind == TPP_ROBERTA)
        return p->trim_offsets ? p : NULL;
    if (p->kind == TPP_SEQUENCE)
        for (size_t i = 0; i < p->n_items; i++)
            if (post_trims(&p->items[i]))
                return post_trims(&p->items[i]);
    return NULL;
}

/* HF byte_level process_offsets: offsets exclude the token's leading and
 * trailing 'Ġ' (spaces), except the one space add_prefix_space put in front
 * of the first token. */
static void trim_offsets(const tp_tokenizer *tok, const tok_post *p, ttok *t, size_t n) {
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *s = tok_lookup_str(tok, t[i].id, &len);
        if (!s)
            continue;
        size_t lead = 0, trail = 0, a = 0, b = len;
        while (b - a >= 2 && memcmp(s + a, "\xc4\xa0", 2) == 0) {
            lead++;
            a += 2;
        }
        while (b - a >= 2 && memcmp(s + b - 2, "\xc4\xa0", 2) == 0) {
            trail++;
            b -= 2;
        }
        if (lead && (i == 0 || t[i].start == 0) && p->add_prefix_space && lead == 1)
            lead = 0;
        uint32_t st = t[i].start + (uint32_t)lead;
        t[i].start = st < t[i].end ? st : t[i].end;
        uint32_t en = t[i].end > trail ? t[i].end - (uint32_t)trail : 0;
        t[i].end = en > t[i].start ? en : t[i].start;
    }
}

static tp_status encode_impl(const tp_tokenizer *tok, tp_tok_scratch *S, const char *text,
                             size_t len, const char *pair, size_t plen,
                             const tp_tok_encode_params *p, tp_encoding *out, tp_error *err) {
    memset(out, 0, sizeof *out);
    size_t bad = tp_utf8_validate(text, len);
    if (bad != len)
        return tp_fail(err, TP_ERR_INPUT, "invalid UTF-8 at byte %zu of the text", bad);
    if (pair && (bad = tp_utf8_validate(pair, plen)) != plen)
        return tp_fail(err, TP_ERR_INPUT, "invalid UTF-8 at byte %zu of the text pair", bad);
    if (len > UINT32_MAX - 8 || plen > UINT32_MAX - 8)
        return tp_fail(err, TP_ERR_TOO_LONG, "text longer than 4 GiB");
    S->n_out = 0;
    S->cache_off = !p->word_cache;
    tp_status st = encode_text(S, text, len, err);
    if (st)
        return st;
    size_t na = S->n_out;
    if (pair && (st = encode_text(S, pair, plen, err)))
        return st;
    size_t nb = S->n_out - na;
    const tok_post *trim = post_trims(&tok->post);
    if (trim) {
        trim_offsets(tok, trim, S->out, na);
        if (pair)
            trim_offsets(tok, trim, S->out + na, nb);
    }
    /* truncation (HF: before the post-processor, leaving room for its tokens) */
    size_t ka = na, kb = nb;
    bool truncated = false;
    if (p->max_length > 0) {
        size_t specials =
            p->add_special_tokens ? (pair ? tok->n_special_pair : tok->n_special_single) : 0;
        size_t budget = p->max_length > specials ? p->max_length - specials : 0;
        if (ka + kb > budget) {
            if (p->error_if_truncated)
                return tp_fail(err, TP_ERR_TOO_LONG, "%zu tokens, more than max_length %zu",
                               ka + kb + specials, p->max_length);
            truncated = true;
            if (!pair || p->strategy == TP_TRUNC_ONLY_FIRST) {
                if (ka + kb - budget > ka && pair)
                    return tp_fail(err, TP_ERR_TOO_LONG,
                                   "cannot truncate the first text enough for max_length %zu",
                                   p->max_length);
                ka = ka > ka + kb - budget ? ka - (ka + kb - budget) : 0;
                if (!pair)
                    ka = budget < na ? budget : na;
            } else if (p->strategy == TP_TRUNC_ONLY_SECOND) {
                if (ka > budget)
                    return tp_fail(err, TP_ERR_TOO_LONG,
                                   "cannot truncate the second text enough for max_length %zu",
                                   p->max_length);
                kb = budget - ka;
            } else {
                /* longest_first: keep the shorter whole when it fits in half */
                size_t x = ka, y = kb;
                bool swap = x > y;
                if (swap) {
                    size_t t = x;
                    x = y;
                    y = t;
                }
                size_t half = budget / 2;
                if (x > half) {
                    x = half;
                    y = budget - half;
                } else {
                    y = budget - x;
                }
                if (swap) {
                    ka = y;
                    kb = x;
                } else {
                    ka = x;
                    kb = y;
                }
            }
        }
    }
    /* S->out is NULL when nothing was encoded (NULL + 0 is undefined) */
    seqv A = {S->out, ka}, B = {S->out ? S->out + na : NULL, kb};
    size_t total = 0;
    tp_encoding count = {0};
    post_emit(&tok->post, p->add_special_tokens, A, pair ? &B : NULL, &count, &total);
    size_t bytes = total * (sizeof(int32_t) + 2 * sizeof(uint32_t) + 3) + 16;
    uint8_t *mem = tp_malloc(bytes);
    if (!mem)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    out->ids = (int32_t *)mem;
    out->offsets = (uint32_t *)(mem + total * sizeof(int32_t));
    out->attention_mask = mem + total * (sizeof(int32_t) + 2 * sizeof(uint32_t));
    out->type_ids = out->attention_mask + total;
    out->seq_ids = (int8_t *)(out->type_ids + total);
    size_t k = 0;
    post_emit(&tok->post, p->add_special_tokens, A, pair ? &B : NULL, out, &k);
    memset(out->attention_mask, 1, total);
    out->n = total;
    out->truncated = truncated;
    out->status = TP_OK;
    return TP_OK;
}

tp_status tp_tok_encode(const tp_tokenizer *tok, tp_tok_scratch *scratch, const char *text,
                        size_t len, const char *text_pair, size_t pair_len,
                        const tp_tok_encode_params *params, tp_encoding *out, tp_error *err) {
    if (!tok || !text || !out)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_tok_encode: NULL argument");
    tp_tok_encode_params def = tp_tok_encode_default_params();
    if (!params)
        params = &def;
    if (len == (size_t)-1)
        len = strlen(text);
    if (text_pair && pair_len == (size_t)-1)
        pair_len = strlen(text_pair);
    tp_tok_scratch *S = scratch ? scratch : tp_tok_scratch_create(tok);
    if (!S)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    if (!scratch)
        S->no_cache = true;
    tp_error e2;
    tp_error_clear(&e2);
    tp_status st =
        encode_impl(tok, S, text, len, text_pair, text_pair ? pair_len : 0, params, out, &e2);
    if (!scratch)
        tp_tok_scratch_free(S);
    if (st) {
        out->status = st;
        out->error = tp_strdup(e2.message);
        if (err)
            *err = e2;
    }
    return st;
}

tp_status tp_tok_encode_ids(const tp_tokenizer *tok, tp_tok_scratch *scratch, const char *text,
                            size_t len, bool add_special_tokens, int32_t **ids, size_t *n,
                            tp_error *err) {
    if (!ids || !n)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_tok_encode_ids: NULL argument");
    tp_tok_encode_params p = tp_tok_encode_default_params();
    p.add_special_tokens = add_special_tokens;
    tp_encoding e;
    tp_status st = tp_tok_encode(tok, scratch, text, len, NULL, 0, &p, &e, err);
    if (st) {
        tp_encoding_free(&e);
        return st;
    }
    int32_t *q = tp_realloc(*ids, (*n + e.n + 1) * sizeof *q);
    if (!q) {
        tp_encoding_free(&e);
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    }
    memcpy(q + *n, e.ids, e.n * sizeof *q);
    *ids = q;
    *n += e.n;
    tp_encoding_free(&e);
    return TP_OK;
}

/* ---- batch ---- */

typedef struct batch_ctx {
    const tp_tokenizer *tok;
    const char *const *texts, *const *pairs;
    const tp_tok_encode_params *p;
    tp_encoding *out;
    tp_tok_scratch **scratch;
} batch_ctx;

static void batch_task(void *ctx, size_t i, int thread) {
    batch_ctx *b = ctx;
    const char *pair = b->pairs ? b->pairs[i] : NULL;
    tp_error e;
    tp_error_clear(&e);
    if (!b->texts[i]) {
        memset(&b->out[i], 0, sizeof b->out[i]);
        b->out[i].status = TP_ERR_INVALID_ARGUMENT;
        b->out[i].error = tp_strdup("text is NULL");
        return;
    }
    tp_tok_encode(b->tok, b->scratch[thread], b->texts[i], (size_t)-1, pair, (size_t)-1, b->p,
                  &b->out[i], &e);
}

tp_status tp_tok_encode_batch(const tp_tokenizer *tok, tp_pool *pool, const char *const *texts,
                              const char *const *text_pairs, size_t n,
                              const tp_tok_encode_params *params, tp_encoding *out, tp_error *err) {
    if (n == 0)
        return TP_OK;
    if (!tok || !texts || !out)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_tok_encode_batch: NULL argument");
    tp_tok_encode_params def = tp_tok_encode_default_params();
    int nt = pool ? tp_pool_size(pool) : 1;
    tp_tok_scratch **sc = tp_calloc((size_t)nt, sizeof *sc);
    if (!sc)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    tp_status st = TP_OK;
    for (int i = 0; i < nt; i++)
        if (!(sc[i] = tp_tok_scratch_create(tok)))
            st = TP_ERR_OUT_OF_MEMORY;
    if (!st) {
        batch_ctx b = {tok, texts, text_pairs, params ? params : &def, out, sc};
        if (pool)
            tp_pool_run(pool, n, batch_task, &b);
        else
            for (size_t i = 0; i < n; i++)
                batch_task(&b, i, 0);
    }
    for (int i = 0; i < nt; i++)
        tp_tok_scratch_free(sc[i]);
    tp_free(sc);
    if (st)
        return tp_fail(err, st, "out of memory");
    return TP_OK;
}
