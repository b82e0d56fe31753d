/*
 * tpl_value.c — the template engine's values: arena allocation, dicts, Python truthiness
 * and equality, Python str()/repr() (single-quoted strings, True/False/None, float repr
 * such as 1.0 and 1e-07), json.dumps(ensure_ascii=False) for tojson, and an exact JSON
 * reader (cJSON turns numbers into doubles; we keep the spelling: 1.0 is a float, 42 an int,
 * a 20-digit integer keeps its digits).
 */
#include "template/tpl.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ---- arena ---- */

struct tpl_chunk {
    tpl_chunk *next;
    size_t cap, used;
    _Alignas(16) unsigned char data[];
};

#define TPL_CHUNK_MIN (16 * 1024)
#define TPL_CHUNK_MAX (1024 * 1024)

static tpl_chunk *chunk_new(tpl_arena *a, size_t cap) {
    if (a->limit && (a->total + cap > a->limit || a->total + cap < a->total)) {
        a->failed = true;
        return NULL;
    }
    tpl_chunk *c = tp_malloc(sizeof(tpl_chunk) + cap);
    if (!c) {
        a->failed = true;
        a->oom = true;
        return NULL;
    }
    c->cap = cap;
    c->used = 0;
    a->total += cap;
    return c;
}

void *tpl_alloc(tpl_arena *a, size_t n) {
    if (a->failed)
        return NULL;
    size_t need = (n + 15) & ~(size_t)15;
    if (need < n) {
        a->failed = true;
        return NULL;
    }
    tpl_chunk *c = a->head;
    if (c && c->cap - c->used >= need) {
        void *p = c->data + c->used;
        c->used += need;
        return p;
    }
    if (need > TPL_CHUNK_MAX / 4) {
        /* a big block gets a chunk of its own, kept behind the current one so that the
         * current chunk's free space (and the growth schedule) is not lost */
        tpl_chunk *big = chunk_new(a, need);
        if (!big)
            return NULL;
        big->used = need;
        if (c) {
            big->next = c->next;
            c->next = big;
        } else {
            big->next = NULL;
            a->head = big;
        }
        return big->data;
    }
    size_t cap = c ? c->cap * 2 : TPL_CHUNK_MIN; /* grow geometrically up to TPL_CHUNK_MAX */
    if (cap > TPL_CHUNK_MAX)
        cap = TPL_CHUNK_MAX;
    if (cap < need)
        cap = need;
    tpl_chunk *nc = chunk_new(a, cap);
    if (!nc)
        return NULL;
    nc->next = a->head;
    a->head = nc;
    nc->used = need;
    return nc->data;
}

void *tpl_zalloc(tpl_arena *a, size_t n) {
    void *p = tpl_alloc(a, n);
    if (p)
        memset(p, 0, n);
    return p;
}

char *tpl_strndup(tpl_arena *a, const char *s, size_t n) {
    char *p = tpl_alloc(a, n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void tpl_arena_free(tpl_arena *a) {
    tpl_chunk *c = a->head;
    while (c) {
        tpl_chunk *n = c->next;
        tp_free(c);
        c = n;
    }
    a->head = NULL;
    a->total = 0;
    a->failed = false;
}

/* ---- lists and dicts ---- */

tpl_list *tpl_list_new(tpl_arena *a, size_t n) {
    tpl_list *l = tpl_alloc(a, sizeof *l);
    if (!l)
        return NULL;
    l->n = n;
    l->tuple = false;
    l->items = NULL;
    if (n) {
        size_t bytes;
        if (!tp_mul_size(n, sizeof(tv), &bytes)) {
            a->failed = true;
            return NULL;
        }
        l->items = tpl_zalloc(a, bytes);
        if (!l->items)
            return NULL;
    }
    return l;
}

tpl_dict *tpl_dict_new(tpl_arena *a, size_t cap) {
    tpl_dict *d = tpl_alloc(a, sizeof *d);
    if (!d)
        return NULL;
    d->n = 0;
    d->cap = cap;
    d->keys = d->vals = NULL;
    if (cap) {
        d->keys = tpl_alloc(a, cap * sizeof(tv));
        d->vals = tpl_alloc(a, cap * sizeof(tv));
        if (!d->keys || !d->vals)
            return NULL;
    }
    return d;
}

static bool key_eq(tv a, tv b) {
    if (a.t == TV_STR && b.t == TV_STR)
        return a.u.s.n == b.u.s.n && (a.u.s.n == 0 || memcmp(a.u.s.p, b.u.s.p, a.u.s.n) == 0);
    return tpl_equal(a, b);
}

const tv *tpl_dict_get(const tpl_dict *d, tv key) {
    for (size_t i = 0; i < d->n; i++)
        if (key_eq(d->keys[i], key))
            return &d->vals[i];
    return NULL;
}

const tv *tpl_dict_get_str(const tpl_dict *d, const char *k, size_t n) {
    for (size_t i = 0; i < d->n; i++) {
        const tv *key = &d->keys[i];
        if (key->t == TV_STR && key->u.s.n == n && (n == 0 || memcmp(key->u.s.p, k, n) == 0))
            return &d->vals[i];
    }
    return NULL;
}

bool tpl_dict_set(tpl_arena *a, tpl_dict *d, tv key, tv val) {
    for (size_t i = 0; i < d->n; i++) {
        if (key_eq(d->keys[i], key)) {
            d->vals[i] = val;
            return true;
        }
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        tv *k = tpl_alloc(a, cap * sizeof(tv));
        tv *v = tpl_alloc(a, cap * sizeof(tv));
        if (!k || !v)
            return false;
        if (d->n) {
            memcpy(k, d->keys, d->n * sizeof(tv));
            memcpy(v, d->vals, d->n * sizeof(tv));
        }
        d->keys = k;
        d->vals = v;
        d->cap = cap;
    }
    d->keys[d->n] = key;
    d->vals[d->n] = val;
    d->n++;
    return true;
}

/* ---- Python semantics ---- */

bool tpl_truthy(tv v) {
    switch (v.t) {
    case TV_UNDEF:
    case TV_NONE:
        return false;
    case TV_BOOL:
        return v.u.b;
    case TV_INT:
        return v.u.i != 0;
    case TV_BIGINT:
        return true;
    case TV_FLOAT:
        return v.u.f != 0.0;
    case TV_STR:
        return v.u.s.n != 0;
    case TV_LIST:
        return v.u.l->n != 0;
    case TV_DICT:
        return v.u.d->n != 0;
    default:
        return true;
    }
}

static bool is_num(tv v) {
    return v.t == TV_BOOL || v.t == TV_INT || v.t == TV_FLOAT;
}
static double num_f(tv v) {
    return v.t == TV_BOOL ? (double)v.u.b : v.t == TV_INT ? (double)v.u.i : v.u.f;
}

/* Recursion on nested containers is bounded: templates can build values nested deeper than
 * any input (a list wrapped in a list in a loop); past the bound they compare unequal. */
#define TPL_CMP_DEPTH 1000

static bool equal_rec(tv a, tv b, int depth);

bool tpl_equal(tv a, tv b) {
    return equal_rec(a, b, 0);
}

static bool equal_rec(tv a, tv b, int depth) {
    if (depth > TPL_CMP_DEPTH)
        return false;
    if (is_num(a) && is_num(b)) {
        if (a.t != TV_FLOAT && b.t != TV_FLOAT) {
            int64_t x = a.t == TV_BOOL ? a.u.b : a.u.i, y = b.t == TV_BOOL ? b.u.b : b.u.i;
            return x == y;
        }
        return num_f(a) == num_f(b);
    }
    if (a.t != b.t)
        return false;
    switch (a.t) {
    case TV_UNDEF:
    case TV_NONE:
        return true;
    case TV_BIGINT:
    case TV_STR:
        return a.u.s.n == b.u.s.n && (a.u.s.n == 0 || memcmp(a.u.s.p, b.u.s.p, a.u.s.n) == 0);
    case TV_LIST:
        if (a.u.l->n != b.u.l->n || a.u.l->tuple != b.u.l->tuple)
            return false;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!equal_rec(a.u.l->items[i], b.u.l->items[i], depth + 1))
                return false;
        return true;
    case TV_DICT:
        if (a.u.d->n != b.u.d->n)
            return false;
        for (size_t i = 0; i < a.u.d->n; i++) {
            const tv *o = tpl_dict_get(b.u.d, a.u.d->keys[i]);
            if (!o || !equal_rec(a.u.d->vals[i], *o, depth + 1))
                return false;
        }
        return true;
    case TV_NS:
        return a.u.d == b.u.d;
    case TV_MACRO:
        return a.u.m == b.u.m;
    case TV_FUNC:
        return a.u.fn.id == b.u.fn.id;
    default:
        return false;
    }
}

static bool hashable_rec(tv v, int depth) {
    switch (v.t) {
    case TV_LIST:
        if (!v.u.l->tuple || depth > TPL_CMP_DEPTH)
            return false;
        for (size_t i = 0; i < v.u.l->n; i++)
            if (!hashable_rec(v.u.l->items[i], depth + 1))
                return false;
        return true;
    case TV_DICT:
    case TV_NS:
        return false;
    default:
        return true;
    }
}

bool tpl_is_hashable(tv v) {
    return hashable_rec(v, 0);
}

const char *tpl_type_name(tv v) {
    switch (v.t) {
    case TV_UNDEF:
        return "Undefined";
    case TV_NONE:
        return "NoneType";
    case TV_BOOL:
        return "bool";
    case TV_INT:
    case TV_BIGINT:
        return "int";
    case TV_FLOAT:
        return "float";
    case TV_STR:
        return "str";
    case TV_LIST:
        return v.u.l->tuple ? "tuple" : "list";
    case TV_DICT:
        return "dict";
    case TV_NS:
        return "Namespace";
    case TV_MACRO:
        return "Macro";
    case TV_LOOP:
        return "LoopContext";
    default:
        return "function";
    }
}

/* ---- UTF-8 and whitespace ---- */

size_t tpl_utf8_next(const char *s, size_t n, uint32_t *cp) {
    const unsigned char *u = (const unsigned char *)s;
    if (u[0] < 0x80) {
        *cp = u[0];
        return 1;
    }
    int len = u[0] >= 0xF0 ? 4 : u[0] >= 0xE0 ? 3 : u[0] >= 0xC0 ? 2 : 1;
    if (len == 1 || (size_t)len > n) {
        *cp = u[0];
        return 1;
    }
    uint32_t c = u[0] & (0x7F >> len);
    for (int i = 1; i < len; i++) {
        if ((u[i] & 0xC0) != 0x80) {
            *cp = u[0];
            return 1;
        }
        c = (c << 6) | (u[i] & 0x3F);
    }
    *cp = c;
    return (size_t)len;
}

size_t tpl_utf8_count(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            c++;
    return c;
}

bool tpl_is_py_space(uint32_t c) {
    /* Python's str.isspace(): bidirectional class WS/B/S or category Zs. */
    if (c <= 0x20)
        return c == 0x20 || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
    if (c < 0x85)
        return false;
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* ---- str / repr ---- */

void tpl_float_repr(char *out, size_t cap, double f) {
    if (isnan(f)) {
        snprintf(out, cap, "nan");
        return;
    }
    if (isinf(f)) {
        snprintf(out, cap, f < 0 ? "-inf" : "inf");
        return;
    }
    if (f == 0) {
        snprintf(out, cap, signbit(f) ? "-0.0" : "0.0");
        return;
    }
    /* Shortest digits that round-trip (what Python's repr uses), then Python's layout:
     * scientific when the decimal exponent is < -4 or >= 16. */
    char buf[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, f);
        if (strtod(buf, NULL) == f)
            break;
    }
    /* buf = [-]d[.ddd]e[+-]XX */
    const char *p = buf;
    bool neg = false;
    if (*p == '-') {
        neg = true;
        p++;
    }
    char digits[24];
    int nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.')
            digits[nd++] = *p;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = 0;
    int exp10 = atoi(p + 1); /* value = d.ddd * 10^exp10 */
    char res[64];
    int k = 0;
    if (neg)
        res[k++] = '-';
    if (exp10 < -4 || exp10 >= 16) {
        res[k++] = digits[0];
        if (nd > 1) {
            res[k++] = '.';
            for (int i = 1; i < nd; i++)
                res[k++] = digits[i];
        }
        k += snprintf(res + k, sizeof res - (size_t)k, "e%c%02d", exp10 < 0 ? '-' : '+',
                      exp10 < 0 ? -exp10 : exp10);
    } else if (exp10 < 0) {
        res[k++] = '0';
        res[k++] = '.';
        for (int i = 0; i < -exp10 - 1; i++)
            res[k++] = '0';
        for (int i = 0; i < nd; i++)
            res[k++] = digits[i];
        res[k] = 0;
    } else {
        for (int i = 0; i <= exp10; i++)
            res[k++] = i < nd ? digits[i] : '0';
        res[k++] = '.';
        if (nd > exp10 + 1) {
            for (int i = exp10 + 1; i < nd; i++)
                res[k++] = digits[i];
        } else {
            res[k++] = '0';
        }
        res[k] = 0;
    }
    snprintf(out, cap, "%s", res);
}

static bool py_printable(uint32_t c) {
    if (c < 0x20 || c == 0x7F)
        return false;
    if (c < 0x7F)
        return true;
    if (c == 0x20)
        return true;
    utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)c);
    switch (cat) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_ZS:
        return false;
    default:
        return true;
    }
}

static void repr_str(tp_buf *b, const char *s, size_t n) {
    bool has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = (has_sq && !has_dq) ? '"' : '\'';
    tp_buf_append(b, &q, 1);
    size_t i = 0;
    while (i < n) {
        uint32_t c;
        size_t len = tpl_utf8_next(s + i, n - i, &c);
        if (c == (uint32_t)q || c == '\\') {
            char e[2] = {'\\', (char)c};
            tp_buf_append(b, e, 2);
        } else if (c == '\n') {
            tp_buf_puts(b, "\\n");
        } else if (c == '\r') {
            tp_buf_puts(b, "\\r");
        } else if (c == '\t') {
            tp_buf_puts(b, "\\t");
        } else if (py_printable(c)) {
            tp_buf_append(b, s + i, len);
        } else if (c < 0x100) {
            tp_buf_printf(b, "\\x%02x", c);
        } else if (c < 0x10000) {
            tp_buf_printf(b, "\\u%04x", c);
        } else {
            tp_buf_printf(b, "\\U%08x", c);
        }
        i += len;
    }
    tp_buf_append(b, &q, 1);
}

static bool repr_rec(tp_buf *b, tv v, int depth);

static bool str_rec(tp_buf *b, tv v, int depth) {
    char num[64];
    switch (v.t) {
    case TV_UNDEF:
        return true;
    case TV_NONE:
        tp_buf_puts(b, "None");
        return true;
    case TV_BOOL:
        tp_buf_puts(b, v.u.b ? "True" : "False");
        return true;
    case TV_INT:
        snprintf(num, sizeof num, "%lld", (long long)v.u.i);
        tp_buf_puts(b, num);
        return true;
    case TV_BIGINT:
    case TV_STR:
        tp_buf_append(b, v.u.s.p, v.u.s.n);
        return true;
    case TV_FLOAT:
        tpl_float_repr(num, sizeof num, v.u.f);
        tp_buf_puts(b, num);
        return true;
    default:
        return repr_rec(b, v, depth);
    }
}

static bool repr_rec(tp_buf *b, tv v, int depth) {
    if (depth > TPL_MAX_DEPTH)
        return false;
    switch (v.t) {
    case TV_STR:
        repr_str(b, v.u.s.p, v.u.s.n);
        return true;
    case TV_LIST: {
        tp_buf_puts(b, v.u.l->tuple ? "(" : "[");
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i)
                tp_buf_puts(b, ", ");
            if (!repr_rec(b, v.u.l->items[i], depth + 1))
                return false;
        }
        if (v.u.l->tuple && v.u.l->n == 1)
            tp_buf_puts(b, ",");
        tp_buf_puts(b, v.u.l->tuple ? ")" : "]");
        return true;
    }
    case TV_DICT:
    case TV_NS: {
        if (v.t == TV_NS)
            tp_buf_puts(b, "<Namespace ");
        tp_buf_puts(b, "{");
        for (size_t i = 0; i < v.u.d->n; i++) {
            if (i)
                tp_buf_puts(b, ", ");
            if (!repr_rec(b, v.u.d->keys[i], depth + 1))
                return false;
            tp_buf_puts(b, ": ");
            if (!repr_rec(b, v.u.d->vals[i], depth + 1))
                return false;
        }
        tp_buf_puts(b, "}");
        if (v.t == TV_NS)
            tp_buf_puts(b, ">");
        return true;
    }
    case TV_UNDEF:
        tp_buf_puts(b, "Undefined");
        return true;
    case TV_MACRO:
        tp_buf_puts(b, "<Macro>");
        return true;
    case TV_LOOP:
        tp_buf_puts(b, "<LoopContext>");
        return true;
    case TV_FUNC:
    case TV_METHOD:
        tp_buf_printf(b, "<built-in function %s>", v.u.fn.name ? v.u.fn.name : "?");
        return true;
    default:
        return str_rec(b, v, depth);
    }
}

bool tpl_str_append(tp_buf *b, tv v) {
    return str_rec(b, v, 0);
}
bool tpl_repr_append(tp_buf *b, tv v) {
    return repr_rec(b, v, 0);
}

/* ---- json.dumps ---- */

static void json_str(tp_buf *b, const char *s, size_t n) {
    tp_buf_append(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char tmp[8];
        if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else if (c == '\b')
            esc = "\\b";
        else if (c == '\f')
            esc = "\\f";
        else if (c < 0x20) {
            snprintf(tmp, sizeof tmp, "\\u%04x", c);
            esc = tmp;
        }
        if (esc) {
            tp_buf_append(b, s + run, i - run);
            tp_buf_puts(b, esc);
            run = i + 1;
        }
    }
    tp_buf_append(b, s + run, n - run);
    tp_buf_append(b, "\"", 1);
}

static void json_nl(tp_buf *b, int indent, int level) {
    tp_buf_append(b, "\n", 1);
    for (int i = 0; i < indent * level; i++)
        tp_buf_append(b, " ", 1);
}

static bool json_key(tp_buf *b, tv k, const char **why) {
    char num[64];
    switch (k.t) {
    case TV_STR:
        json_str(b, k.u.s.p, k.u.s.n);
        return true;
    case TV_INT:
        snprintf(num, sizeof num, "\"%lld\"", (long long)k.u.i);
        tp_buf_puts(b, num);
        return true;
    case TV_BIGINT:
        tp_buf_puts(b, "\"");
        tp_buf_append(b, k.u.s.p, k.u.s.n);
        tp_buf_puts(b, "\"");
        return true;
    case TV_FLOAT:
        tpl_float_repr(num, sizeof num, k.u.f);
        tp_buf_printf(b, "\"%s\"", num);
        return true;
    case TV_BOOL:
        tp_buf_puts(b, k.u.b ? "\"true\"" : "\"false\"");
        return true;
    case TV_NONE:
        tp_buf_puts(b, "\"null\"");
        return true;
    default:
        *why = "keys must be str, int, float, bool or None";
        return false;
    }
}

typedef struct {
    const tv *k, *v;
} kv_ref;

static int kv_cmp(const void *a, const void *b) {
    const kv_ref *x = a, *y = b;
    size_t n = x->k->u.s.n < y->k->u.s.n ? x->k->u.s.n : y->k->u.s.n;
    int c = n ? memcmp(x->k->u.s.p, y->k->u.s.p, n) : 0;
    if (c)
        return c;
    return x->k->u.s.n < y->k->u.s.n ? -1 : x->k->u.s.n > y->k->u.s.n;
}

static bool json_rec(tp_buf *b, tv v, int indent, bool sort_keys, int level, const char *isep,
                     const char *ksep, const char **why) {
    char num[64];
    if (level > TPL_MAX_DEPTH) {
        *why = "nesting too deep";
        return false;
    }
    switch (v.t) {
    case TV_NONE:
        tp_buf_puts(b, "null");
        return true;
    case TV_BOOL:
        tp_buf_puts(b, v.u.b ? "true" : "false");
        return true;
    case TV_INT:
        snprintf(num, sizeof num, "%lld", (long long)v.u.i);
        tp_buf_puts(b, num);
        return true;
    case TV_BIGINT:
        tp_buf_append(b, v.u.s.p, v.u.s.n);
        return true;
    case TV_FLOAT:
        if (isnan(v.u.f))
            tp_buf_puts(b, "NaN");
        else if (isinf(v.u.f))
            tp_buf_puts(b, v.u.f < 0 ? "-Infinity" : "Infinity");
        else {
            tpl_float_repr(num, sizeof num, v.u.f);
            tp_buf_puts(b, num);
        }
        return true;
    case TV_STR:
        json_str(b, v.u.s.p, v.u.s.n);
        return true;
    case TV_LIST: {
        if (v.u.l->n == 0) {
            tp_buf_puts(b, "[]");
            return true;
        }
        tp_buf_puts(b, "[");
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i)
                tp_buf_puts(b, isep);
            if (indent >= 0)
                json_nl(b, indent, level + 1);
            if (!json_rec(b, v.u.l->items[i], indent, sort_keys, level + 1, isep, ksep, why))
                return false;
        }
        if (indent >= 0)
            json_nl(b, indent, level);
        tp_buf_puts(b, "]");
        return true;
    }
    case TV_DICT: {
        const tpl_dict *d = v.u.d;
        if (d->n == 0) {
            tp_buf_puts(b, "{}");
            return true;
        }
        kv_ref stack_refs[16];
        kv_ref *refs = stack_refs;
        if (d->n > 16) {
            refs = tp_malloc_array(d->n, sizeof *refs);
            if (!refs) {
                *why = "out of memory";
                return false;
            }
        }
        for (size_t i = 0; i < d->n; i++) {
            refs[i].k = &d->keys[i];
            refs[i].v = &d->vals[i];
        }
        bool ok = true;
        if (sort_keys) {
            for (size_t i = 0; i < d->n; i++)
                if (d->keys[i].t != TV_STR) {
                    *why = "sort_keys needs string keys";
                    ok = false;
                }
            if (ok)
                qsort(refs, d->n, sizeof *refs, kv_cmp);
        }
        if (ok) {
            tp_buf_puts(b, "{");
            for (size_t i = 0; i < d->n && ok; i++) {
                if (i)
                    tp_buf_puts(b, isep);
                if (indent >= 0)
                    json_nl(b, indent, level + 1);
                ok = json_key(b, *refs[i].k, why);
                if (ok) {
                    tp_buf_puts(b, ksep);
                    ok = json_rec(b, *refs[i].v, indent, sort_keys, level + 1, isep, ksep, why);
                }
            }
            if (ok && indent >= 0)
                json_nl(b, indent, level);
            if (ok)
                tp_buf_puts(b, "}");
        }
        if (refs != stack_refs)
            tp_free(refs);
        return ok;
    }
    case TV_UNDEF:
        *why = "an undefined value is not JSON serializable";
        return false;
    case TV_NS:
        *why = "a namespace is not JSON serializable";
        return false;
    default:
        *why = "a function, macro or loop object is not JSON serializable";
        return false;
    }
}

bool tpl_json_append(tp_buf *b, tv v, int indent, bool sort_keys, const char *item_sep,
                     const char *key_sep, const char **why) {
    if (!item_sep)
        item_sep = indent >= 0 ? "," : ", ";
    if (!key_sep)
        key_sep = ": ";
    return json_rec(b, v, indent, sort_keys, 0, item_sep, key_sep, why);
}

/* ---- JSON reader (exact numbers) ---- */

typedef struct {
    tpl_arena *a;
    const char *s;
    size_t n, i;
    char *msg;
    size_t msg_cap;
    bool err;
} jrd;

static bool jfail(jrd *r, const char *what) {
    if (!r->err)
        snprintf(r->msg, r->msg_cap, "invalid JSON at byte %zu: %s", r->i, what);
    r->err = true;
    return false;
}

static void jws(jrd *r) {
    while (r->i < r->n &&
           (r->s[r->i] == ' ' || r->s[r->i] == '\t' || r->s[r->i] == '\n' || r->s[r->i] == '\r'))
        r->i++;
}

static int hex4(const char *p) {
    int v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p[k];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    return v;
}

static bool jstring(jrd *r, tv *out) {
    r->i++; /* opening quote */
    size_t start = r->i;
    bool simple = true;
    while (r->i < r->n && r->s[r->i] != '"') {
        unsigned char c = (unsigned char)r->s[r->i];
        if (c == '\\') {
            simple = false;
            r->i += 2;
            continue;
        }
        if (c < 0x20)
            return jfail(r, "control character in string");
        r->i++;
    }
    if (r->i >= r->n)
        return jfail(r, "unterminated string");
    size_t end = r->i;
    r->i++;
    if (simple) {
        char *p = tpl_strndup(r->a, r->s + start, end - start);
        if (!p)
            return jfail(r, "out of memory");
        *out = tv_str(p, end - start);
        return true;
    }
    char *p = tpl_alloc(r->a, end - start + 1); /* escapes never grow the text */
    if (!p)
        return jfail(r, "out of memory");
    size_t k = 0;
    for (size_t i = start; i < end; i++) {
        char c = r->s[i];
        if (c != '\\') {
            p[k++] = c;
            continue;
        }
        i++;
        if (i >= end) {
            r->i = i;
            return jfail(r, "bad escape");
        }
        switch (r->s[i]) {
        case '"':
            p[k++] = '"';
            break;
        case '\\':
            p[k++] = '\\';
            break;
        case '/':
            p[k++] = '/';
            break;
        case 'b':
            p[k++] = '\b';
            break;
        case 'f':
            p[k++] = '\f';
            break;
        case 'n':
            p[k++] = '\n';
            break;
        case 'r':
            p[k++] = '\r';
            break;
        case 't':
            p[k++] = '\t';
            break;
        case 'u': {
            if (i + 4 >= end + 1 || end - i < 5) {
                r->i = i;
                return jfail(r, "bad \\u escape");
            }
            int cp = hex4(r->s + i + 1);
            if (cp < 0) {
                r->i = i;
                return jfail(r, "bad \\u escape");
            }
            i += 4;
            uint32_t c32 = (uint32_t)cp;
            if (cp >= 0xD800 && cp <= 0xDBFF && end - i >= 7 && r->s[i + 1] == '\\' &&
                r->s[i + 2] == 'u') {
                int lo = hex4(r->s + i + 3);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    c32 = 0x10000 + (((uint32_t)cp - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
                    i += 6;
                }
            }
            if (c32 >= 0xD800 && c32 <= 0xDFFF)
                c32 = 0xFFFD; /* a lone surrogate cannot be UTF-8 */
            k += (size_t)tp_utf8_encode(c32, p + k);
            break;
        }
        default:
            r->i = i;
            return jfail(r, "bad escape");
        }
    }
    p[k] = 0;
    *out = tv_str(p, k);
    return true;
}

static bool jnumber(jrd *r, tv *out) {
    size_t start = r->i;
    bool is_float = false;
    if (r->s[r->i] == '-')
        r->i++;
    if (r->i >= r->n || r->s[r->i] < '0' || r->s[r->i] > '9')
        return jfail(r, "bad number");
    if (r->s[r->i] == '0') {
        r->i++;
    } else {
        while (r->i < r->n && r->s[r->i] >= '0' && r->s[r->i] <= '9')
            r->i++;
    }
    if (r->i < r->n && r->s[r->i] == '.') {
        is_float = true;
        r->i++;
        if (r->i >= r->n || r->s[r->i] < '0' || r->s[r->i] > '9')
            return jfail(r, "bad number");
        while (r->i < r->n && r->s[r->i] >= '0' && r->s[r->i] <= '9')
            r->i++;
    }
    if (r->i < r->n && (r->s[r->i] == 'e' || r->s[r->i] == 'E')) {
        is_float = true;
        r->i++;
        if (r->i < r->n && (r->s[r->i] == '+' || r->s[r->i] == '-'))
            r->i++;
        if (r->i >= r->n || r->s[r->i] < '0' || r->s[r->i] > '9')
            return jfail(r, "bad number");
        while (r->i < r->n && r->s[r->i] >= '0' && r->s[r->i] <= '9')
            r->i++;
    }
    size_t len = r->i - start;
    char tmp[64];
    char *txt = len < sizeof tmp ? tmp : tpl_alloc(r->a, len + 1);
    if (!txt)
        return jfail(r, "out of memory");
    memcpy(txt, r->s + start, len);
    txt[len] = 0;
    if (is_float) {
        *out = tv_float(strtod(txt, NULL));
        return true;
    }
    errno = 0;
    long long v = strtoll(txt, NULL, 10);
    if (errno == ERANGE) {
        char *p = tpl_strndup(r->a, r->s + start, len);
        if (!p)
            return jfail(r, "out of memory");
        out->t = TV_BIGINT;
        out->u.s.p = p;
        out->u.s.n = len;
        return true;
    }
    *out = tv_int((int64_t)v);
    return true;
}

static bool jvalue(jrd *r, tv *out, int depth) {
    if (depth > TPL_MAX_DEPTH)
        return jfail(r, "nesting too deep");
    jws(r);
    if (r->i >= r->n)
        return jfail(r, "unexpected end");
    char c = r->s[r->i];
    if (c == '"')
        return jstring(r, out);
    if (c == '-' || (c >= '0' && c <= '9'))
        return jnumber(r, out);
    if (r->n - r->i >= 4 && memcmp(r->s + r->i, "true", 4) == 0) {
        r->i += 4;
        *out = tv_bool(true);
        return true;
    }
    if (r->n - r->i >= 5 && memcmp(r->s + r->i, "false", 5) == 0) {
        r->i += 5;
        *out = tv_bool(false);
        return true;
    }
    if (r->n - r->i >= 4 && memcmp(r->s + r->i, "null", 4) == 0) {
        r->i += 4;
        *out = tv_none();
        return true;
    }
    if (c == '[') {
        r->i++;
        size_t cap = 8, n = 0;
        tv *items = tpl_alloc(r->a, cap * sizeof(tv));
        if (!items)
            return jfail(r, "out of memory");
        jws(r);
        if (r->i < r->n && r->s[r->i] == ']') {
            r->i++;
        } else {
            for (;;) {
                if (n == cap) {
                    tv *ni = tpl_alloc(r->a, cap * 2 * sizeof(tv));
                    if (!ni)
                        return jfail(r, "out of memory");
                    memcpy(ni, items, n * sizeof(tv));
                    items = ni;
                    cap *= 2;
                }
                if (!jvalue(r, &items[n], depth + 1))
                    return false;
                n++;
                jws(r);
                if (r->i < r->n && r->s[r->i] == ',') {
                    r->i++;
                    continue;
                }
                if (r->i < r->n && r->s[r->i] == ']') {
                    r->i++;
                    break;
                }
                return jfail(r, "expected ',' or ']'");
            }
        }
        tpl_list *l = tpl_alloc(r->a, sizeof *l);
        if (!l)
            return jfail(r, "out of memory");
        l->items = items;
        l->n = n;
        l->tuple = false;
        out->t = TV_LIST;
        out->u.l = l;
        return true;
    }
    if (c == '{') {
        r->i++;
        tpl_dict *d = tpl_dict_new(r->a, 4);
        if (!d)
            return jfail(r, "out of memory");
        jws(r);
        if (r->i < r->n && r->s[r->i] == '}') {
            r->i++;
        } else {
            for (;;) {
                jws(r);
                if (r->i >= r->n || r->s[r->i] != '"')
                    return jfail(r, "expected a string key");
                tv k, v;
                if (!jstring(r, &k))
                    return false;
                jws(r);
                if (r->i >= r->n || r->s[r->i] != ':')
                    return jfail(r, "expected ':'");
                r->i++;
                if (!jvalue(r, &v, depth + 1))
                    return false;
                if (!tpl_dict_set(r->a, d, k, v))
                    return jfail(r, "out of memory");
                jws(r);
                if (r->i < r->n && r->s[r->i] == ',') {
                    r->i++;
                    continue;
                }
                if (r->i < r->n && r->s[r->i] == '}') {
                    r->i++;
                    break;
                }
                return jfail(r, "expected ',' or '}'");
            }
        }
        out->t = TV_DICT;
        out->u.d = d;
        return true;
    }
    return jfail(r, "unexpected character");
}

bool tpl_from_json(tpl_arena *a, const char *json, size_t len, tv *out, char *msg, size_t msg_cap) {
    size_t bad = tp_utf8_validate(json, len);
    if (bad != len) {
        snprintf(msg, msg_cap, "invalid UTF-8 at byte %zu", bad);
        return false;
    }
    jrd r = {a, json, len, 0, msg, msg_cap, false};
    if (!jvalue(&r, out, 0))
        return false;
    jws(&r);
    if (r.i != r.n)
        return jfail(&r, "trailing characters");
    return true;
}

bool tpl_from_cjson(tpl_arena *a, const cJSON *j, tv *out, int depth) {
    if (!j || depth > TPL_MAX_DEPTH)
        return false;
    if (cJSON_IsNull(j)) {
        *out = tv_none();
    } else if (cJSON_IsBool(j)) {
        *out = tv_bool(cJSON_IsTrue(j));
    } else if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (d == floor(d) && fabs(d) <= 9007199254740992.0)
            *out = tv_int((int64_t)d);
        else
            *out = tv_float(d);
    } else if (cJSON_IsString(j)) {
        size_t n = strlen(j->valuestring);
        char *p = tpl_strndup(a, j->valuestring, n);
        if (!p)
            return false;
        *out = tv_str(p, n);
    } else if (cJSON_IsArray(j)) {
        tpl_list *l = tpl_list_new(a, (size_t)cJSON_GetArraySize(j));
        if (!l)
            return false;
        size_t i = 0;
        for (const cJSON *c = j->child; c && i < l->n; c = c->next, i++)
            if (!tpl_from_cjson(a, c, &l->items[i], depth + 1))
                return false;
        out->t = TV_LIST;
        out->u.l = l;
    } else if (cJSON_IsObject(j)) {
        tpl_dict *d = tpl_dict_new(a, 4);
        if (!d)
            return false;
        for (const cJSON *c = j->child; c; c = c->next) {
            tv v;
            if (!c->string || !tpl_from_cjson(a, c, &v, depth + 1))
                return false;
            size_t n = strlen(c->string);
            char *k = tpl_strndup(a, c->string, n);
            if (!k || !tpl_dict_set(a, d, tv_str(k, n), v))
                return false;
        }
        out->t = TV_DICT;
        out->u.d = d;
    } else {
        return false;
    }
    return true;
}
