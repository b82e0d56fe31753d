/*
 * tpl_eval.c — the evaluator: walks the AST with Python Jinja2's semantics.
 *
 * Scoping follows Jinja2: each for-loop iteration and each macro call gets a fresh frame
 * whose parent is the enclosing one, so `set` inside a loop never leaks out (namespace()
 * exists for that) and a read before the loop body's own `set` sees the outer value.
 * Names resolve through the frames, then the caller's variable sets, then the globals.
 *
 * Undefined is lenient as in Jinja2's default: it prints as "", is false, iterates as
 * empty, has length 0, but an attribute/item of it, calling it, or arithmetic on it is an
 * error. Attribute lookup `a.b` tries the type's methods first, then a dict key; `a[b]`
 * tries the item first, then a method (Jinja2's getattr/getitem order).
 *
 * Every failure sets one message (with the template line) and unwinds; limits guard the
 * output size, the render memory, the nesting depth and the number of loop iterations.
 */
#include "template/tpl.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

#define TPL_DEFAULT_MAX_OUTPUT ((size_t)64 << 20)
#define TPL_MAX_ARENA ((size_t)256 << 20)
#define TPL_MAX_STEPS 20000000ull
#define TPL_MAX_RANGE 100000

/* ---- builtin ids ---- */

enum {
    M_STARTSWITH,
    M_ENDSWITH,
    M_STRIP,
    M_LSTRIP,
    M_RSTRIP,
    M_SPLIT,
    M_RSPLIT,
    M_UPPER,
    M_LOWER,
    M_REPLACE,
    M_TITLE,
    M_CAPITALIZE,
    M_FORMAT,
    M_COUNT,
    M_FIND,
    M_RFIND,
    M_INDEX,
    M_JOIN,
    M_ISDIGIT,
    M_ISALPHA,
    M_ISALNUM,
    M_ISSPACE,
    M_ISUPPER,
    M_ISLOWER,
    M_SPLITLINES,
    M_ZFILL,
    M_ITEMS,
    M_KEYS,
    M_VALUES,
    M_GET,
    M_CYCLE,
    M_CHANGED,
    M_APPEND, /* mutating methods: refused as in the immutable sandbox */
    M_POP,
    M_UPDATE,
    M_INSERT,
    M_EXTEND,
    M_REMOVE,
    M_CLEAR,
    M_SETDEFAULT,
    M_SORT_M,
    M_REVERSE_M,
    M_COUNT_IDS
};
static const char *const METHOD_NAMES[M_COUNT_IDS] = {
    "startswith", "endswith", "strip",   "lstrip",     "rstrip",     "split",   "rsplit",
    "upper",      "lower",    "replace", "title",      "capitalize", "format",  "count",
    "find",       "rfind",    "index",   "join",       "isdigit",    "isalpha", "isalnum",
    "isspace",    "isupper",  "islower", "splitlines", "zfill",      "items",   "keys",
    "values",     "get",      "cycle",   "changed",    "append",     "pop",     "update",
    "insert",     "extend",   "remove",  "clear",      "setdefault", "sort",    "reverse"};

enum {
    F_TRIM,
    F_LENGTH,
    F_COUNT,
    F_TOJSON,
    F_STRING,
    F_LOWER,
    F_UPPER,
    F_REPLACE,
    F_JOIN,
    F_FIRST,
    F_LAST,
    F_DEFAULT,
    F_D,
    F_ITEMS,
    F_SELECTATTR,
    F_REJECTATTR,
    F_SELECT,
    F_REJECT,
    F_MAP,
    F_LIST,
    F_INT,
    F_FLOAT,
    F_ABS,
    F_CAPITALIZE,
    F_TITLE,
    F_SAFE,
    F_UNIQUE,
    F_REVERSE,
    F_SORT,
    F_DICTSORT,
    F_ROUND,
    F_MAX,
    F_MIN,
    F_SUM,
    F_INDENT,
    F_ESCAPE,
    F_E,
    F_WORDCOUNT,
    F_ATTR,
    F_BATCH,
    F_FORMAT,
    F_COUNT_IDS
};
static const char *const FILTER_NAMES[F_COUNT_IDS] = {
    "trim",       "length",     "count",      "tojson", "string",  "lower",  "upper",
    "replace",    "join",       "first",      "last",   "default", "d",      "items",
    "selectattr", "rejectattr", "select",     "reject", "map",     "list",   "int",
    "float",      "abs",        "capitalize", "title",  "safe",    "unique", "reverse",
    "sort",       "dictsort",   "round",      "max",    "min",     "sum",    "indent",
    "escape",     "e",          "wordcount",  "attr",   "batch",   "format"};

enum {
    TS_DEFINED,
    TS_UNDEFINED,
    TS_NONE,
    TS_STRING,
    TS_NUMBER,
    TS_INTEGER,
    TS_FLOAT,
    TS_MAPPING,
    TS_ITERABLE,
    TS_SEQUENCE,
    TS_BOOLEAN,
    TS_TRUE,
    TS_FALSE,
    TS_EQUALTO,
    TS_EQ,
    TS_EQEQ,
    TS_NE,
    TS_NEQ,
    TS_LT,
    TS_LTS,
    TS_LE,
    TS_LES,
    TS_GT,
    TS_GTS,
    TS_GE,
    TS_GES,
    TS_IN,
    TS_ODD,
    TS_EVEN,
    TS_DIVISIBLEBY,
    TS_SAMEAS,
    TS_CALLABLE,
    TS_LOWER,
    TS_UPPER,
    TS_COUNT_IDS
};
static const char *const TEST_NAMES[TS_COUNT_IDS] = {
    "defined", "undefined",   "none",     "string",   "number", "integer", "float",
    "mapping", "iterable",    "sequence", "boolean",  "true",   "false",   "equalto",
    "eq",      "==",          "ne",       "!=",       "lt",     "<",       "le",
    "<=",      "gt",          ">",        "ge",       ">=",     "in",      "odd",
    "even",    "divisibleby", "sameas",   "callable", "lower",  "upper"};

enum { G_RANGE, G_NAMESPACE, G_DICT, G_RAISE, G_STRFTIME, G_COUNT_IDS };
static const char *const GLOBAL_NAMES[G_COUNT_IDS] = {"range", "namespace", "dict",
                                                      "raise_exception", "strftime_now"};

static int find_name(const char *const *tab, int n, const char *s, size_t len) {
    for (int i = 0; i < n; i++)
        if (strlen(tab[i]) == len && memcmp(tab[i], s, len) == 0)
            return i;
    return -1;
}
int tpl_filter_id(const char *name, size_t n) {
    return find_name(FILTER_NAMES, F_COUNT_IDS, name, n);
}
int tpl_test_id(const char *name, size_t n) {
    return find_name(TEST_NAMES, TS_COUNT_IDS, name, n);
}
int tpl_method_id(const char *name, size_t n) {
    return find_name(METHOD_NAMES, M_COUNT_IDS, name, n);
}

/* ---- render state ---- */

typedef struct frame frame;
struct frame {
    frame *parent;
    const char **names;
    size_t *lens;
    tv *vals;
    size_t n, cap;
};

typedef struct {
    const tpl_node *m;
    frame *f;
} macro_closure;

typedef struct {
    tpl_arena a;
    tp_buf *out;
    const tp_template *t;
    const tp_template_vars *const *vars;
    size_t n_vars;
    tp_template_render_params prm;
    tp_error *err;
    bool failed;
    tp_status st;
    int depth;
    uint64_t steps;
    int loop_depth;
    const tpl_node *caller_call; /* {% call %}: the macro call that receives `caller` */
    tv caller;
} R;

enum { X_OK, X_BREAK, X_CONTINUE, X_ERR };

static bool rfail(R *r, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool rfail(R *r, int line, const char *fmt, ...) {
    if (r->failed)
        return false;
    r->failed = true;
    r->st = TP_ERR_TEMPLATE;
    char msg[420];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *nm = r->t->name;
    tp_fail(r->err, TP_ERR_TEMPLATE, "%s%stemplate error, line %d: %s", nm ? nm : "",
            nm ? ": " : "", line, msg);
    return false;
}

/* malloc failed (not a template error, not the render's memory limit). */
static bool rfail_oom(R *r, int line, const char *what) {
    if (r->failed)
        return false;
    r->failed = true;
    r->st = TP_ERR_OUT_OF_MEMORY;
    const char *nm = r->t->name;
    tp_fail(r->err, TP_ERR_OUT_OF_MEMORY, "%s%stemplate line %d: out of memory%s", nm ? nm : "",
            nm ? ": " : "", line, what);
    return false;
}

static bool check_mem(R *r, int line) {
    if (r->a.failed && !r->failed && r->a.oom)
        return rfail_oom(r, line, "");
    if (r->a.failed && !r->failed)
        return rfail(r, line, "out of memory (the render exceeded its memory limit)");
    return !r->failed;
}

/* "an int", "a str", "None", ... for messages */
static const char *type_label(tv v) {
    switch (v.t) {
    case TV_NONE:
        return "None";
    case TV_INT:
    case TV_BIGINT:
        return "an int";
    case TV_UNDEF:
        return "an undefined";
    case TV_LIST:
        return v.u.l->tuple ? "a tuple" : "a list";
    case TV_FLOAT:
        return "a float";
    case TV_STR:
        return "a str";
    case TV_BOOL:
        return "a bool";
    case TV_DICT:
        return "a dict";
    case TV_NS:
        return "a namespace";
    case TV_MACRO:
        return "a macro";
    case TV_LOOP:
        return "a loop";
    default:
        return "a function";
    }
}

static tv undef_named(const char *name, size_t n) {
    tv u = tv_undef();
    u.u.s.p = name;
    u.u.s.n = n;
    return u;
}
static tv undef_on(tv obj, const char *name, size_t n, bool element) {
    tv u = undef_named(name, n);
    u.aux = (uint8_t)((obj.t + 1) | (element ? 0x80 : 0));
    return u;
}

static const char *TYPE_BY_CODE[] = {
    "an undefined", "None",   "a bool",      "an int",  "an int",     "a float",  "a str",
    "a list",       "a dict", "a namespace", "a macro", "a function", "a method", "a loop"};

/* "what the undefined value is": for error messages */
static void undef_desc(tv u, char *buf, size_t cap) {
    int code = (u.aux & 0x7f);
    int nlen = (int)(u.u.s.n > 60 ? 60 : u.u.s.n);
    const char *nm = u.u.s.p ? u.u.s.p : "";
    if (code == 0) {
        if (u.u.s.p)
            snprintf(buf, cap, "'%.*s' is undefined", nlen, nm);
        else
            snprintf(buf, cap, "the value is undefined");
        return;
    }
    const char *tn = (code - 1) < (int)(sizeof TYPE_BY_CODE / sizeof *TYPE_BY_CODE)
                         ? TYPE_BY_CODE[code - 1]
                         : "value";
    if (u.aux & 0x80)
        snprintf(buf, cap, "%s value has no element %.*s", tn, nlen, nm);
    else if (code - 1 == TV_NONE)
        snprintf(buf, cap, "None has no attribute '%.*s'", nlen, nm);
    else
        snprintf(buf, cap, "%s value has no attribute '%.*s'", tn, nlen, nm);
}

static bool undef_fail(R *r, int line, tv u, const char *doing) {
    char d[160];
    undef_desc(u, d, sizeof d);
    return rfail(r, line, "%s: %s", doing, d);
}

/* ---- small value helpers ---- */

static tv mkstr(R *r, const char *s, size_t n) {
    char *p = tpl_strndup(&r->a, s, n);
    return p ? tv_str(p, n) : tv_str("", 0);
}

static tv buf_to_str(R *r, tp_buf *b) {
    if (b->oom) {
        r->a.failed = true;
        tp_buf_free(b);
        return tv_str("", 0);
    }
    tv v = mkstr(r, b->data ? b->data : "", b->len);
    tp_buf_free(b);
    return v;
}

/* str(v) as a string value */
static bool to_str(R *r, int line, tv v, tv *out) {
    if (v.t == TV_STR) {
        *out = v;
        return true;
    }
    if (v.t == TV_UNDEF) {
        *out = tv_str("", 0);
        return true;
    }
    tp_buf b = {0};
    if (!tpl_str_append(&b, v)) {
        tp_buf_free(&b);
        return rfail(r, line, "value nested too deeply to print");
    }
    *out = buf_to_str(r, &b);
    return check_mem(r, line);
}

static tv mklist(R *r, size_t n) {
    tv v;
    v.t = TV_LIST;
    v.aux = 0;
    v.u.l = tpl_list_new(&r->a, n);
    if (!v.u.l) {
        static tpl_list empty = {NULL, 0, false};
        v.u.l = &empty;
    }
    return v;
}

static bool is_intlike(tv v) {
    return v.t == TV_INT || v.t == TV_BOOL;
}
static int64_t as_int(tv v) {
    return v.t == TV_BOOL ? (int64_t)v.u.b : v.u.i;
}
static bool is_number(tv v) {
    return v.t == TV_INT || v.t == TV_BOOL || v.t == TV_FLOAT;
}
static double as_f(tv v) {
    return v.t == TV_FLOAT ? v.u.f : (double)as_int(v);
}

/* Items of an iterable: list/tuple items, dict keys, string characters; undefined: empty. */
static bool iter_items(R *r, int line, tv v, const tv **items, size_t *n) {
    switch (v.t) {
    case TV_LIST:
        *items = v.u.l->items;
        *n = v.u.l->n;
        return true;
    case TV_DICT:
    case TV_NS:
        if (v.t == TV_NS)
            break;
        *items = v.u.d->keys;
        *n = v.u.d->n;
        return true;
    case TV_UNDEF:
        *items = NULL;
        *n = 0;
        return true;
    case TV_STR: {
        size_t cnt = tpl_utf8_count(v.u.s.p, v.u.s.n);
        tv l = mklist(r, cnt);
        if (!check_mem(r, line))
            return false;
        size_t i = 0, k = 0;
        while (i < v.u.s.n && k < cnt) {
            uint32_t cp;
            size_t len = tpl_utf8_next(v.u.s.p + i, v.u.s.n - i, &cp);
            l.u.l->items[k++] = tv_str(v.u.s.p + i, len);
            i += len;
        }
        *items = l.u.l->items;
        *n = k;
        return true;
    }
    default:
        break;
    }
    return rfail(r, line, "%s value is not iterable", type_label(v));
}

static bool cp_cased(uint32_t cp);

/* ---- frames ---- */

static frame *frame_new(R *r, frame *parent) {
    frame *f = tpl_zalloc(&r->a, sizeof *f);
    if (f)
        f->parent = parent;
    return f;
}

static bool frame_set(R *r, frame *f, const char *name, size_t n, tv v) {
    for (size_t i = 0; i < f->n; i++)
        if (f->lens[i] == n && memcmp(f->names[i], name, n) == 0) {
            f->vals[i] = v;
            return true;
        }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        const char **nn = tpl_alloc(&r->a, cap * sizeof *nn);
        size_t *nl = tpl_alloc(&r->a, cap * sizeof *nl);
        tv *nv = tpl_alloc(&r->a, cap * sizeof *nv);
        if (!nn || !nl || !nv)
            return false;
        if (f->n) {
            memcpy(nn, f->names, f->n * sizeof *nn);
            memcpy(nl, f->lens, f->n * sizeof *nl);
            memcpy(nv, f->vals, f->n * sizeof *nv);
        }
        f->names = nn;
        f->lens = nl;
        f->vals = nv;
        f->cap = cap;
    }
    f->names[f->n] = name;
    f->lens[f->n] = n;
    f->vals[f->n] = v;
    f->n++;
    return true;
}

static tv lookup(R *r, frame *f, const char *name, size_t n) {
    for (; f; f = f->parent)
        for (size_t i = f->n; i-- > 0;)
            if (f->lens[i] == n && memcmp(f->names[i], name, n) == 0)
                return f->vals[i];
    for (size_t k = 0; k < r->n_vars; k++) {
        if (!r->vars[k] || !r->vars[k]->d)
            continue;
        const tv *v = tpl_dict_get_str(r->vars[k]->d, name, n);
        if (v)
            return *v;
    }
    int g = find_name(GLOBAL_NAMES, G_COUNT_IDS, name, n);
    if (g >= 0) {
        tv v;
        v.t = TV_FUNC;
        v.aux = 0;
        v.u.fn.id = g;
        v.u.fn.name = GLOBAL_NAMES[g];
        v.u.fn.self = NULL;
        return v;
    }
    return undef_named(name, n);
}

/* Entering a scope: the names the scope analysis found assigned-before-use start out
 * undefined here instead of reaching the caller's variables (Jinja2's scoping). */
static bool scope_enter(R *r, frame *f, const tpl_node *body) {
    for (size_t i = 0; i < body->n_shadow; i++)
        if (!frame_set(r, f, body->shadow[i], body->shadow_len[i],
                       undef_named(body->shadow[i], body->shadow_len[i])))
            return check_mem(r, body->line);
    return true;
}

/* ---- forward declarations ---- */

static bool eval(R *r, frame *f, const tpl_node *n, tv *out);
static int exec(R *r, frame *f, const tpl_node *n);
static bool call_value(R *r, frame *f, const tpl_node *call, tv callee, tv *out);
static int run_loop(R *r, frame *f, const tpl_node *n, const tv *items, size_t cnt, int depth);
static bool call_method(R *r, frame *f, const tpl_node *call, tv self, int id, const char *name,
                        tv *out);

/* ---- arguments ---- */

typedef struct {
    tv *pos;
    size_t npos;
    const char **kw;
    tv *kwv;
    size_t nkw;
} args_t;

static bool eval_args(R *r, frame *f, const tpl_node *n, args_t *a) {
    memset(a, 0, sizeof *a);
    if (!n->n_kids)
        return true;
    a->pos = tpl_alloc(&r->a, n->n_kids * sizeof(tv));
    a->kwv = tpl_alloc(&r->a, n->n_kids * sizeof(tv));
    a->kw = tpl_alloc(&r->a, n->n_kids * sizeof(char *));
    if (!check_mem(r, n->line))
        return false;
    for (size_t i = 0; i < n->n_kids; i++) {
        tv v;
        if (!eval(r, f, n->kids[i], &v))
            return false;
        if (n->kw_names && n->kw_names[i]) {
            a->kw[a->nkw] = n->kw_names[i];
            a->kwv[a->nkw++] = v;
        } else {
            a->pos[a->npos++] = v;
        }
    }
    return true;
}

/* positional idx or keyword name */
static const tv *arg(const args_t *a, size_t idx, const char *name) {
    if (idx < a->npos)
        return &a->pos[idx];
    if (name)
        for (size_t i = 0; i < a->nkw; i++)
            if (strcmp(a->kw[i], name) == 0)
                return &a->kwv[i];
    return NULL;
}

/* Refuses extra positional arguments and unknown keywords. names: NULL-terminated. */
static bool args_check(R *r, int line, const args_t *a, size_t max_pos, const char *const *names,
                       const char *what) {
    if (a->npos > max_pos)
        return rfail(r, line, "%s takes at most %zu argument%s (%zu given)", what, max_pos,
                     max_pos == 1 ? "" : "s", a->npos);
    for (size_t i = 0; i < a->nkw; i++) {
        bool ok = false;
        for (size_t k = 0; names && names[k]; k++)
            if (strcmp(names[k], a->kw[i]) == 0) {
                ok = true;
                if (k < a->npos)
                    return rfail(r, line, "%s got argument '%s' twice", what, a->kw[i]);
            }
        if (!ok)
            return rfail(r, line, "%s got an unexpected keyword argument '%s'", what, a->kw[i]);
    }
    return true;
}

static bool need_str_arg(R *r, int line, const tv *v, const char *what, const char *argname) {
    if (!v || v->t != TV_STR)
        return rfail(r, line, "%s: argument '%s' must be a string%s%s", what, argname,
                     v ? ", got " : "", v ? type_label(*v) : "");
    return true;
}

/* ---- comparisons and operators ---- */

static bool compare(R *r, int line, tv a, tv b, int *res, const char *opname) {
    if (a.t == TV_UNDEF)
        return undef_fail(r, line, a, "cannot compare an undefined value");
    if (b.t == TV_UNDEF)
        return undef_fail(r, line, b, "cannot compare an undefined value");
    if (is_number(a) && is_number(b)) {
        if (a.t != TV_FLOAT && b.t != TV_FLOAT) {
            int64_t x = as_int(a), y = as_int(b);
            *res = x < y ? -1 : x > y;
        } else {
            double x = as_f(a), y = as_f(b);
            if (isnan(x) || isnan(y))
                *res = 2; /* unordered */
            else
                *res = x < y ? -1 : x > y;
        }
        return true;
    }
    if (a.t == TV_STR && b.t == TV_STR) {
        size_t n = a.u.s.n < b.u.s.n ? a.u.s.n : b.u.s.n;
        int c = n ? memcmp(a.u.s.p, b.u.s.p, n) : 0;
        *res = c ? (c < 0 ? -1 : 1) : (a.u.s.n < b.u.s.n ? -1 : a.u.s.n > b.u.s.n);
        return true;
    }
    if (a.t == TV_LIST && b.t == TV_LIST && a.u.l->tuple == b.u.l->tuple) {
        size_t n = a.u.l->n < b.u.l->n ? a.u.l->n : b.u.l->n;
        for (size_t i = 0; i < n; i++) {
            if (tpl_equal(a.u.l->items[i], b.u.l->items[i]))
                continue;
            {
                if (++r->depth > TPL_MAX_DEPTH) {
                    r->depth--;
                    return rfail(r, line, "values nested too deeply to compare");
                }
                bool ok = compare(r, line, a.u.l->items[i], b.u.l->items[i], res, opname);
                r->depth--;
                return ok;
            }
        }
        *res = a.u.l->n < b.u.l->n ? -1 : a.u.l->n > b.u.l->n;
        return true;
    }
    return rfail(r, line, "'%s' is not supported between %s and %s value", opname, type_label(a),
                 type_label(b));
}

static bool contains(R *r, int line, tv needle, tv hay, bool *res) {
    switch (hay.t) {
    case TV_STR:
        if (needle.t != TV_STR)
            return rfail(r, line, "'in <string>' needs a string on the left, got %s value",
                         type_label(needle));
        if (needle.u.s.n == 0) {
            *res = true;
            return true;
        }
        *res = false;
        if (needle.u.s.n <= hay.u.s.n)
            *res = memmem(hay.u.s.p, hay.u.s.n, needle.u.s.p, needle.u.s.n) != NULL;
        return true;
    case TV_LIST:
        *res = false;
        for (size_t i = 0; i < hay.u.l->n; i++)
            if (tpl_equal(needle, hay.u.l->items[i])) {
                *res = true;
                break;
            }
        return true;
    case TV_DICT:
        if (!tpl_is_hashable(needle))
            return rfail(r, line, "%s value cannot be a dict key (unhashable)", type_label(needle));
        *res = tpl_dict_get(hay.u.d, needle) != NULL;
        return true;
    case TV_UNDEF:
        *res = false;
        return true;
    default:
        return rfail(r, line, "'in' needs a container on the right, got %s value (not iterable)",
                     type_label(hay));
    }
}

static bool concat_str(R *r, int line, tv a, tv b, tv *out) {
    size_t n;
    if (!tp_add_size(a.u.s.n, b.u.s.n, &n))
        return rfail(r, line, "string too long");
    char *p = tpl_alloc(&r->a, n + 1);
    if (!p)
        return check_mem(r, line);
    memcpy(p, a.u.s.p, a.u.s.n);
    memcpy(p + a.u.s.n, b.u.s.p, b.u.s.n);
    p[n] = 0;
    *out = tv_str(p, n);
    return true;
}

static bool repeat(R *r, int line, tv s, int64_t k, tv *out) {
    if (k < 0)
        k = 0;
    if (s.t == TV_STR) {
        size_t total;
        if (!tp_mul_size(s.u.s.n, (size_t)k, &total) || total > TPL_MAX_ARENA)
            return rfail(r, line, "repeated string too large");
        char *p = tpl_alloc(&r->a, total + 1);
        if (!p)
            return check_mem(r, line);
        for (int64_t i = 0; i < k; i++)
            memcpy(p + (size_t)i * s.u.s.n, s.u.s.p, s.u.s.n);
        p[total] = 0;
        *out = tv_str(p, total);
        return true;
    }
    size_t total;
    if (!tp_mul_size(s.u.l->n, (size_t)k, &total) || total > TPL_MAX_ARENA / sizeof(tv))
        return rfail(r, line, "repeated list too large");
    tv l = mklist(r, total);
    if (!check_mem(r, line))
        return false;
    for (size_t i = 0; i < total; i++)
        l.u.l->items[i] = s.u.l->items[i % s.u.l->n];
    l.u.l->tuple = s.u.l->tuple;
    *out = l;
    return true;
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
/* Python's printf-style `str % args` for the common conversions: %s %r %d %i %f %F %e %E
 * %g %G %x %X %o %c %% with flags, width and precision; %(name)s is not supported. */
static bool percent_format(R *r, int line, tv fmt, tv args, tv *out) {
    const tv *items = &args;
    size_t n_items = 1, next = 0;
    /* CPython treats a non-tuple with __getitem__ (list, dict) as a mapping: one argument,
     * and no "not all arguments converted" error */
    bool mapping =
        (args.t == TV_LIST && !args.u.l->tuple) || args.t == TV_DICT || args.t == TV_UNDEF;
    if (args.t == TV_LIST && args.u.l->tuple) {
        items = args.u.l->items;
        n_items = args.u.l->n;
    }
    if (memmem(fmt.u.s.p, fmt.u.s.n, "%(", 2))
        return rfail(r, line, "'%%(name)s' string formatting is not supported");
    tp_buf b = {0};
    const char *s = fmt.u.s.p;
    size_t n = fmt.u.s.n;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            tp_buf_append(&b, s + i, 1);
            continue;
        }
        size_t st = i++;
        while (i < n && strchr("-+ #0", s[i]))
            i++;
        /* width and precision are bounded like center()'s width: a template must
         * not make one conversion allocate gigabytes (found by fuzz_template) */
        uint64_t width = 0, prec = 0;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            width = width > 100000 ? width : width * 10 + (uint64_t)(s[i] - '0');
        if (i < n && s[i] == '.') {
            i++;
            for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
                prec = prec > 100000 ? prec : prec * 10 + (uint64_t)(s[i] - '0');
        }
        if (width > 100000 || prec > 100000) {
            tp_buf_free(&b);
            return rfail(r, line, "width or precision too large in '%%' formatting");
        }
        if (i >= n || i - st > 20) {
            tp_buf_free(&b);
            return rfail(r, line, "incomplete or unsupported format in '%%' formatting");
        }
        char conv = s[i];
        if (conv == '%') {
            tp_buf_append(&b, "%", 1);
            continue;
        }
        if (next >= n_items) {
            tp_buf_free(&b);
            return rfail(r, line, "not enough arguments for format string");
        }
        tv v = items[next++];
        char spec[32], buf[512];
        size_t sl = i - st;
        memcpy(spec, s + st, sl);
        if (conv == 's' || conv == 'r') {
            tp_buf tmp = {0};
            bool ok = conv == 's' ? (v.t == TV_UNDEF || tpl_str_append(&tmp, v))
                                  : tpl_repr_append(&tmp, v);
            if (!ok || tmp.oom) {
                tp_buf_free(&tmp);
                tp_buf_free(&b);
                return rfail(r, line, "value nested too deeply to format");
            }
            spec[sl] = 's';
            spec[sl + 1] = 0;
            /* width/precision count characters in Python; bytes here (ASCII-exact) */
            int k = snprintf(NULL, 0, spec, tmp.data ? tmp.data : "");
            char *o = tp_malloc((size_t)k + 1);
            if (o) {
                snprintf(o, (size_t)k + 1, spec, tmp.data ? tmp.data : "");
                tp_buf_append(&b, o, (size_t)k);
                tp_free(o);
            } else {
                b.oom = true;
            }
            tp_buf_free(&tmp);
        } else if (strchr("dioxXc", conv)) {
            if (!is_number(v)) {
                tp_buf_free(&b);
                return rfail(r, line, "%%%c format: a number is required, not %s value", conv,
                             type_label(v));
            }
            /* Python raises for NaN/inf; finite floats past 64 bits would need
             * big ints (a cast would be undefined behaviour): an error here */
            if (v.t == TV_FLOAT && !(v.u.f >= -0x1p63 && v.u.f < 0x1p63)) {
                tp_buf_free(&b);
                return rfail(r, line, "%%%c format: cannot convert float %g to an integer", conv,
                             v.u.f);
            }
            long long x = v.t == TV_FLOAT ? (long long)v.u.f : (long long)as_int(v);
            if (conv == 'c' && (x < 0 || x > 0x10FFFF)) {
                tp_buf_free(&b);
                return rfail(r, line, "%%c arg not in range(0x110000)");
            }
            if (conv == 'c') {
                char enc[4];
                tp_buf_append(&b, enc, (size_t)tp_utf8_encode((uint32_t)x, enc));
                continue;
            }
            spec[sl] = 'l';
            spec[sl + 1] = 'l';
            spec[sl + 2] = conv == 'i' ? 'd' : conv;
            spec[sl + 3] = 0;
            snprintf(buf, sizeof buf, spec, x);
            tp_buf_puts(&b, buf);
        } else if (strchr("fFeEgG", conv)) {
            if (!is_number(v)) {
                tp_buf_free(&b);
                return rfail(r, line, "%%%c format: a number is required, not %s value", conv,
                             type_label(v));
            }
            spec[sl] = conv;
            spec[sl + 1] = 0;
            snprintf(buf, sizeof buf, spec, as_f(v));
            tp_buf_puts(&b, buf);
        } else {
            tp_buf_free(&b);
            return rfail(r, line, "unsupported format character '%c' in '%%' formatting", conv);
        }
    }
    if (next < n_items && !mapping) {
        tp_buf_free(&b);
        return rfail(r, line, "not all arguments converted during string formatting");
    }
    *out = buf_to_str(r, &b);
    return check_mem(r, line);
}

#pragma GCC diagnostic pop

static const char *OP_SYM[] = {"+", "-",  "*", "/",  "//", "%",      "**",  "~", "==", "!=",
                               "<", "<=", ">", ">=", "in", "not in", "not", "-", "+"};

static bool binop(R *r, int line, int op, tv a, tv b, tv *out) {
    if (op == OP_CONCAT) {
        tv sa, sb;
        if (!to_str(r, line, a, &sa) || !to_str(r, line, b, &sb))
            return false;
        return concat_str(r, line, sa, sb, out);
    }
    if (op == OP_EQ || op == OP_NE) {
        bool e = tpl_equal(a, b);
        *out = tv_bool(op == OP_EQ ? e : !e);
        return true;
    }
    if (op == OP_IN || op == OP_NOTIN) {
        bool res;
        if (!contains(r, line, a, b, &res))
            return false;
        *out = tv_bool(op == OP_IN ? res : !res);
        return true;
    }
    if (op >= OP_LT && op <= OP_GE) {
        int c;
        if (!compare(r, line, a, b, &c, OP_SYM[op]))
            return false;
        bool res = c == 2        ? false
                   : op == OP_LT ? c < 0
                   : op == OP_LE ? c <= 0
                   : op == OP_GT ? c > 0
                                 : c >= 0;
        *out = tv_bool(res);
        return true;
    }
    if (op == OP_MOD && a.t == TV_STR) /* str.__mod__ accepts anything, even undefined */
        return percent_format(r, line, a, b, out);
    if (a.t == TV_UNDEF)
        return undef_fail(r, line, a, "cannot do arithmetic on an undefined value");
    if (b.t == TV_UNDEF)
        return undef_fail(r, line, b, "cannot do arithmetic on an undefined value");
    if (a.t == TV_BIGINT || b.t == TV_BIGINT)
        return rfail(r, line, "arithmetic on integers beyond 64 bits is not supported");
    if (op == OP_ADD) {
        if (a.t == TV_STR && b.t == TV_STR)
            return concat_str(r, line, a, b, out);
        if (a.t == TV_LIST && b.t == TV_LIST && a.u.l->tuple == b.u.l->tuple) {
            tv l = mklist(r, a.u.l->n + b.u.l->n);
            if (!check_mem(r, line))
                return false;
            if (a.u.l->n)
                memcpy(l.u.l->items, a.u.l->items, a.u.l->n * sizeof(tv));
            if (b.u.l->n)
                memcpy(l.u.l->items + a.u.l->n, b.u.l->items, b.u.l->n * sizeof(tv));
            l.u.l->tuple = a.u.l->tuple;
            *out = l;
            return true;
        }
    }
    if (op == OP_MUL) {
        if ((a.t == TV_STR || a.t == TV_LIST) && is_intlike(b))
            return repeat(r, line, a, as_int(b), out);
        if ((b.t == TV_STR || b.t == TV_LIST) && is_intlike(a))
            return repeat(r, line, b, as_int(a), out);
    }
    if (!is_number(a) || !is_number(b)) {
        if (op == OP_ADD && a.t == TV_STR)
            return rfail(r, line,
                         "cannot concatenate a string and %s value with '+' (use '~' or "
                         "convert it with |string)",
                         type_label(b));
        if (op == OP_MOD && a.t == TV_STR)
            return percent_format(r, line, a, b, out);
        return rfail(r, line, "unsupported operand types for '%s': %s and %s", OP_SYM[op],
                     type_label(a), type_label(b));
    }
    bool both_int = a.t != TV_FLOAT && b.t != TV_FLOAT;
    if (both_int) {
        int64_t x = as_int(a), y = as_int(b), z;
        switch (op) {
        case OP_ADD:
            if (__builtin_add_overflow(x, y, &z))
                return rfail(r, line, "integer overflow");
            *out = tv_int(z);
            return true;
        case OP_SUB:
            if (__builtin_sub_overflow(x, y, &z))
                return rfail(r, line, "integer overflow");
            *out = tv_int(z);
            return true;
        case OP_MUL:
            if (__builtin_mul_overflow(x, y, &z))
                return rfail(r, line, "integer overflow");
            *out = tv_int(z);
            return true;
        case OP_DIV:
            if (y == 0)
                return rfail(r, line, "division by zero");
            *out = tv_float((double)x / (double)y);
            return true;
        case OP_FLOORDIV:
        case OP_MOD: {
            if (y == 0)
                return rfail(r, line, "integer division or modulo by zero");
            if (x == INT64_MIN && y == -1)
                return rfail(r, line, "integer overflow");
            int64_t q = x / y, m = x % y;
            if (m != 0 && ((m < 0) != (y < 0))) {
                q -= 1;
                m += y;
            }
            *out = tv_int(op == OP_FLOORDIV ? q : m);
            return true;
        }
        case OP_POW: {
            if (y < 0) {
                if (x == 0)
                    return rfail(r, line, "zero to a negative power");
                *out = tv_float(pow((double)x, (double)y));
                return true;
            }
            int64_t acc = 1, base = x;
            int64_t e = y;
            while (e > 0) {
                if (e & 1)
                    if (__builtin_mul_overflow(acc, base, &acc))
                        return rfail(r, line, "integer overflow in '**'");
                e >>= 1;
                if (e && __builtin_mul_overflow(base, base, &base))
                    return rfail(r, line, "integer overflow in '**'");
            }
            *out = tv_int(acc);
            return true;
        }
        default:
            break;
        }
    }
    double x = as_f(a), y = as_f(b);
    switch (op) {
    case OP_ADD:
        *out = tv_float(x + y);
        return true;
    case OP_SUB:
        *out = tv_float(x - y);
        return true;
    case OP_MUL:
        *out = tv_float(x * y);
        return true;
    case OP_DIV:
        if (y == 0)
            return rfail(r, line, "float division by zero");
        *out = tv_float(x / y);
        return true;
    case OP_FLOORDIV:
    case OP_MOD: {
        if (y == 0)
            return rfail(r, line, "float modulo or division by zero");
        double m = fmod(x, y); /* Python's float %: the sign of the divisor, also for 0 */
        if (m != 0) {
            if ((m < 0) != (y < 0))
                m += y;
        } else {
            m = copysign(0.0, y);
        }
        double q = floor((x - m) / y + 0.5);
        if (op == OP_FLOORDIV)
            q = floor(x / y);
        *out = tv_float(op == OP_FLOORDIV ? q : m);
        return true;
    }
    case OP_POW:
        if (x == 0 && y < 0)
            return rfail(r, line, "zero to a negative power");
        if (x < 0 && y != floor(y))
            return rfail(r, line, "negative number to a fractional power (complex result)");
        *out = tv_float(pow(x, y));
        if (isinf(out->u.f) && !isinf(x) && !isinf(y))
            return rfail(r, line, "'**' result too large (overflow)");
        return true;
    default:
        return rfail(r, line, "unsupported operator");
    }
}

/* ---- attribute / item access ---- */

static bool is_str_method(int id) {
    return id >= M_STARTSWITH && id <= M_ZFILL;
}
static bool is_dict_method(int id) {
    return id == M_ITEMS || id == M_KEYS || id == M_VALUES || id == M_GET;
}
static bool is_list_method(int id) {
    return id == M_INDEX || id == M_COUNT;
}
static bool is_mutating(int id) {
    return id >= M_APPEND;
}

static bool has_method(tv obj, int id) {
    if (id < 0)
        return false;
    switch (obj.t) {
    case TV_STR:
        return is_str_method(id);
    case TV_DICT:
        return is_dict_method(id) || id == M_POP || id == M_UPDATE || id == M_CLEAR ||
               id == M_SETDEFAULT;
    case TV_LIST:
        return is_list_method(id) ||
               (!obj.u.l->tuple && is_mutating(id) && id != M_UPDATE && id != M_SETDEFAULT);
    case TV_LOOP:
        return id == M_CYCLE || id == M_CHANGED;
    default:
        return false;
    }
}

static bool bind_method(R *r, tv obj, int id, tv *out) {
    tv *self = tpl_alloc(&r->a, sizeof(tv));
    if (!self)
        return false;
    *self = obj;
    out->t = TV_METHOD;
    out->aux = 0;
    out->u.fn.id = id;
    out->u.fn.name = METHOD_NAMES[id];
    out->u.fn.self = self;
    return true;
}

static bool loop_attr(R *r, int line, tpl_loop *lp, const char *name, size_t n, tv *out) {
    (void)r;
    (void)line;
#define IS(s) (n == sizeof(s) - 1 && memcmp(name, s, n) == 0)
    int64_t i0 = (int64_t)lp->index0, len = (int64_t)lp->n;
    if (IS("index"))
        *out = tv_int(i0 + 1);
    else if (IS("index0"))
        *out = tv_int(i0);
    else if (IS("revindex"))
        *out = tv_int(len - i0);
    else if (IS("revindex0"))
        *out = tv_int(len - i0 - 1);
    else if (IS("first"))
        *out = tv_bool(i0 == 0);
    else if (IS("last"))
        *out = tv_bool(i0 == len - 1);
    else if (IS("length"))
        *out = tv_int(len);
    else if (IS("depth"))
        *out = tv_int(lp->depth);
    else if (IS("depth0"))
        *out = tv_int(lp->depth - 1);
    else if (IS("previtem"))
        *out = i0 > 0 ? lp->items[i0 - 1] : undef_named("previtem", 8);
    else if (IS("nextitem"))
        *out = i0 + 1 < len ? lp->items[i0 + 1] : undef_named("nextitem", 8);
    else {
        tv lv;
        lv.t = TV_LOOP;
        *out = undef_on(lv, name, n, false);
    }
#undef IS
    return true;
}

static bool get_attr(R *r, int line, tv obj, const char *name, size_t n, int mid, tv *out) {
    if (obj.t == TV_UNDEF) {
        char d[160];
        undef_desc(obj, d, sizeof d);
        return rfail(r, line, "cannot read attribute '%.*s' of an undefined value (%s)",
                     (int)(n > 60 ? 60 : n), name, d);
    }
    if (has_method(obj, mid)) {
        if (!bind_method(r, obj, mid, out))
            return check_mem(r, line);
        return true;
    }
    if (obj.t == TV_DICT || obj.t == TV_NS) {
        const tv *v = tpl_dict_get_str(obj.u.d, name, n);
        *out = v ? *v : undef_on(obj, name, n, false);
        return true;
    }
    if (obj.t == TV_LOOP)
        return loop_attr(r, line, obj.u.loop, name, n, out);
    *out = undef_on(obj, name, n, false);
    return true;
}

/* Python slice indices for a sequence of length len */
static bool slice_indices(R *r, int line, const tv *st, const tv *en, const tv *sp, int64_t len,
                          int64_t *start, int64_t *stop, int64_t *step) {
    *step = 1;
    if (sp && sp->t != TV_NONE) {
        if (!is_intlike(*sp))
            return rfail(r, line, "slice step must be an integer");
        *step = as_int(*sp);
        if (*step == 0)
            return rfail(r, line, "slice step cannot be zero");
    }
    int64_t lo = *step < 0 ? -1 : 0, hi = *step < 0 ? len - 1 : len;
    const tv *b[2] = {st, en};
    int64_t *o[2] = {start, stop};
    for (int k = 0; k < 2; k++) {
        if (!b[k] || b[k]->t == TV_NONE) {
            *o[k] = (k == 0) == (*step > 0) ? lo : hi;
            continue;
        }
        if (!is_intlike(*b[k]))
            return rfail(r, line, "slice indices must be integers, got %s value",
                         type_label(*b[k]));
        int64_t v = as_int(*b[k]);
        if (v < 0) {
            v += len;
            if (v < lo)
                v = lo;
        } else if (v > hi) {
            v = hi;
        }
        *o[k] = v;
    }
    return true;
}

/* byte offsets of code points (for non-ASCII string indexing); NULL when ASCII */
static size_t *cp_offsets(R *r, tv s, size_t *ncp) {
    size_t n = tpl_utf8_count(s.u.s.p, s.u.s.n);
    *ncp = n;
    if (n == s.u.s.n)
        return NULL;
    size_t *off = tpl_alloc(&r->a, (n + 1) * sizeof(size_t));
    if (!off)
        return NULL;
    size_t i = 0, k = 0;
    while (i < s.u.s.n && k < n) {
        off[k++] = i;
        uint32_t cp;
        i += tpl_utf8_next(s.u.s.p + i, s.u.s.n - i, &cp);
    }
    off[k] = s.u.s.n;
    *ncp = k;
    return off;
}

/* Number of values start, start+step, ... before stop (Python range/slice length),
 * computed in 128 bits so that extreme int64 bounds cannot overflow. */
__extension__ typedef __int128 tpl_i128;
static tpl_i128 span_count(int64_t start, int64_t stop, int64_t step) {
    if (step > 0 && start < stop)
        return ((tpl_i128)stop - start - 1) / step + 1;
    if (step < 0 && start > stop)
        return ((tpl_i128)start - stop - 1) / (-(tpl_i128)step) + 1;
    return 0;
}

static bool do_slice(R *r, int line, tv obj, const tv *st, const tv *en, const tv *sp, tv *out) {
    if (obj.t == TV_UNDEF)
        return undef_fail(r, line, obj, "cannot slice an undefined value");
    int64_t start, stop, step;
    if (obj.t == TV_LIST) {
        if (!slice_indices(r, line, st, en, sp, (int64_t)obj.u.l->n, &start, &stop, &step))
            return false;
        size_t cnt = (size_t)span_count(start, stop, step);
        tv l = mklist(r, cnt);
        if (!check_mem(r, line))
            return false;
        for (size_t k = 0; k < cnt; k++)
            l.u.l->items[k] = obj.u.l->items[start + (int64_t)k * step];
        l.u.l->tuple = obj.u.l->tuple;
        *out = l;
        return true;
    }
    if (obj.t == TV_STR) {
        size_t ncp;
        size_t *off = cp_offsets(r, obj, &ncp);
        if (!check_mem(r, line))
            return false;
        if (!slice_indices(r, line, st, en, sp, (int64_t)ncp, &start, &stop, &step))
            return false;
        if (step == 1) {
            if (stop < start)
                stop = start;
            size_t b0 = off ? off[start] : (size_t)start, b1 = off ? off[stop] : (size_t)stop;
            *out = tv_str(obj.u.s.p + b0, b1 - b0);
            return true;
        }
        tp_buf b = {0};
        size_t cnt = (size_t)span_count(start, stop, step);
        for (size_t k = 0; k < cnt; k++) {
            int64_t i = start + (int64_t)k * step;
            size_t b0 = off ? off[i] : (size_t)i, b1 = off ? off[i + 1] : (size_t)i + 1;
            tp_buf_append(&b, obj.u.s.p + b0, b1 - b0);
        }
        *out = buf_to_str(r, &b);
        return check_mem(r, line);
    }
    /* Jinja2 compiles a slice to a plain Python subscript: no undefined fallback */
    return rfail(r, line, "%s value cannot be sliced", type_label(obj));
}

static bool get_item(R *r, int line, tv obj, tv key, tv *out) {
    if (obj.t == TV_UNDEF) {
        char d[160];
        undef_desc(obj, d, sizeof d);
        return rfail(r, line, "cannot index an undefined value (%s)", d);
    }
    if (obj.t == TV_LIST && is_intlike(key)) {
        int64_t i = as_int(key), n = (int64_t)obj.u.l->n;
        if (i < 0)
            i += n;
        if (i >= 0 && i < n) {
            *out = obj.u.l->items[i];
            return true;
        }
    } else if (obj.t == TV_STR && is_intlike(key)) {
        size_t ncp;
        size_t *off = cp_offsets(r, obj, &ncp);
        if (!check_mem(r, line))
            return false;
        int64_t i = as_int(key);
        if (i < 0)
            i += (int64_t)ncp;
        if (i >= 0 && i < (int64_t)ncp) {
            size_t b0 = off ? off[i] : (size_t)i, b1 = off ? off[i + 1] : (size_t)i + 1;
            *out = tv_str(obj.u.s.p + b0, b1 - b0);
            return true;
        }
    } else if ((obj.t == TV_DICT || obj.t == TV_NS) && tpl_is_hashable(key)) {
        const tv *v = tpl_dict_get(obj.u.d, key);
        if (v) {
            *out = *v;
            return true;
        }
    }
    if (key.t == TV_STR)
        return get_attr(r, line, obj, key.u.s.p, key.u.s.n, tpl_method_id(key.u.s.p, key.u.s.n),
                        out);
    /* element miss: keep a printable key for the message */
    tp_buf b = {0};
    tpl_repr_append(&b, key);
    tv ks = buf_to_str(r, &b);
    *out = undef_on(obj, ks.u.s.p, ks.u.s.n, true);
    return check_mem(r, line);
}

/* ---- tests ---- */

static bool run_test(R *r, int line, int id, tv v, const args_t *a, bool *res) {
    const tv *x = arg(a, 0, NULL);
    switch (id) {
    case TS_DEFINED:
        *res = v.t != TV_UNDEF;
        return true;
    case TS_UNDEFINED:
        *res = v.t == TV_UNDEF;
        return true;
    case TS_NONE:
        *res = v.t == TV_NONE;
        return true;
    case TS_STRING:
        *res = v.t == TV_STR;
        return true;
    case TS_NUMBER:
        *res = is_number(v) || v.t == TV_BIGINT;
        return true;
    case TS_INTEGER:
        *res = v.t == TV_INT || v.t == TV_BIGINT;
        return true;
    case TS_FLOAT:
        *res = v.t == TV_FLOAT;
        return true;
    case TS_MAPPING:
        *res = v.t == TV_DICT;
        return true;
    case TS_ITERABLE:
        *res = v.t == TV_STR || v.t == TV_LIST || v.t == TV_DICT || v.t == TV_UNDEF;
        return true;
    case TS_SEQUENCE:
        *res = v.t == TV_STR || v.t == TV_LIST || v.t == TV_DICT || v.t == TV_UNDEF;
        return true;
    case TS_BOOLEAN:
        *res = v.t == TV_BOOL;
        return true;
    case TS_TRUE:
        *res = v.t == TV_BOOL && v.u.b;
        return true;
    case TS_FALSE:
        *res = v.t == TV_BOOL && !v.u.b;
        return true;
    case TS_CALLABLE: /* Undefined has __call__ (which raises) */
        *res = v.t == TV_MACRO || v.t == TV_FUNC || v.t == TV_METHOD || v.t == TV_UNDEF;
        return true;
    case TS_LOWER:
    case TS_UPPER: {
        tv s;
        if (!to_str(r, line, v, &s))
            return false;
        bool cased = false, ok = true;
        size_t i = 0;
        while (i < s.u.s.n) {
            uint32_t cp;
            i += tpl_utf8_next(s.u.s.p + i, s.u.s.n - i, &cp);
            bool lo = utf8proc_islower((utf8proc_int32_t)cp),
                 up = utf8proc_isupper((utf8proc_int32_t)cp), c = cp_cased(cp);
            if (c)
                cased = true;
            if ((id == TS_LOWER && c && !lo) || (id == TS_UPPER && c && !up))
                ok = false;
        }
        *res = cased && ok;
        return true;
    }
    default:
        break;
    }
    if (!x)
        return rfail(r, line, "test '%s' needs an argument", TEST_NAMES[id]);
    switch (id) {
    case TS_EQUALTO:
    case TS_EQ:
    case TS_EQEQ:
        *res = tpl_equal(v, *x);
        return true;
    case TS_NE:
    case TS_NEQ:
        *res = !tpl_equal(v, *x);
        return true;
    case TS_SAMEAS:
        *res = v.t == x->t && (v.t == TV_NONE || v.t == TV_UNDEF || tpl_equal(v, *x)) &&
               !(v.t == TV_STR && v.u.s.p != x->u.s.p) && !(v.t == TV_LIST && v.u.l != x->u.l) &&
               !(v.t == TV_DICT && v.u.d != x->u.d);
        return true;
    case TS_IN:
        return contains(r, line, v, *x, res);
    case TS_DIVISIBLEBY:
        if (!is_number(v) || !is_number(*x))
            return rfail(r, line, "test 'divisibleby' needs numbers");
        if (as_f(*x) == 0)
            return rfail(r, line, "test 'divisibleby': division by zero");
        if (is_intlike(v) && is_intlike(*x))
            *res = as_int(*x) == -1 || as_int(v) % as_int(*x) == 0;
        else
            *res = fmod(as_f(v), as_f(*x)) == 0;
        return true;
    default: {
        int c;
        static const char *syms[] = {"<", "<", "<=", "<=", ">", ">", ">=", ">="};
        if (!compare(r, line, v, *x, &c, syms[id - TS_LT]))
            return false;
        switch (id) {
        case TS_LT:
        case TS_LTS:
            *res = c == -1;
            break;
        case TS_LE:
        case TS_LES:
            *res = c == -1 || c == 0;
            break;
        case TS_GT:
        case TS_GTS:
            *res = c == 1;
            break;
        default:
            *res = c == 1 || c == 0;
            break;
        }
        return true;
    }
    }
}

static bool test_oddeven(R *r, int line, int id, tv v, bool *res) {
    if (v.t == TV_FLOAT) { /* Python: value % 2 == 1 (odd) / == 0 (even) */
        double m = fmod(v.u.f, 2.0);
        if (m < 0)
            m += 2.0;
        *res = id == TS_ODD ? m == 1.0 : m == 0.0;
        return true;
    }
    if (v.t == TV_STR) { /* Python: value % 2 == 1 -- string formatting, never an int */
        tv ignored;
        if (!percent_format(r, line, v, tv_int(2), &ignored))
            return false;
        *res = false;
        return true;
    }
    if (!is_intlike(v))
        return rfail(r, line, "test '%s' needs an integer, got %s value", TEST_NAMES[id],
                     type_label(v));
    int64_t m = as_int(v) % 2;
    *res = id == TS_ODD ? m != 0 : m == 0;
    return true;
}

static bool apply_test(R *r, int line, int id, tv v, const args_t *a, bool *res) {
    bool takes_arg = (id >= TS_EQUALTO && id <= TS_IN) || id == TS_DIVISIBLEBY || id == TS_SAMEAS;
    size_t given = a->npos + a->nkw;
    if (given > (takes_arg ? 1u : 0u))
        return rfail(r, line, "test '%s' takes %s argument (%zu given)", TEST_NAMES[id],
                     takes_arg ? "one" : "no", given);
    if (id == TS_ODD || id == TS_EVEN)
        return test_oddeven(r, line, id, v, res);
    return run_test(r, line, id, v, a, res);
}

/* ---- string helpers ---- */

static bool in_chars(uint32_t cp, tv chars) {
    size_t i = 0;
    while (i < chars.u.s.n) {
        uint32_t c;
        i += tpl_utf8_next(chars.u.s.p + i, chars.u.s.n - i, &c);
        if (c == cp)
            return true;
    }
    return false;
}

/* strip: which 1 = left, 2 = right, 3 = both; chars NULL = Python whitespace */
static tv strip_str(tv s, int which, const tv *chars) {
    size_t b = 0, e = s.u.s.n;
    if (which & 1) {
        while (b < e) {
            uint32_t cp;
            size_t len = tpl_utf8_next(s.u.s.p + b, e - b, &cp);
            if (chars ? !in_chars(cp, *chars) : !tpl_is_py_space(cp))
                break;
            b += len;
        }
    }
    if (which & 2) {
        while (e > b) {
            size_t st = e - 1;
            while (st > b && ((unsigned char)s.u.s.p[st] & 0xC0) == 0x80)
                st--;
            uint32_t cp;
            tpl_utf8_next(s.u.s.p + st, e - st, &cp);
            if (chars ? !in_chars(cp, *chars) : !tpl_is_py_space(cp))
                break;
            e = st;
        }
    }
    return tv_str(s.u.s.p + b, e - b);
}

#include "template/tpl_case_table.h"

/* Python's full case mapping of one code point: the SpecialCasing expansions from the
 * generated table, else utf8proc's simple mapping. which: 0 lower, 1 upper, 2 title. */
static void map_cp(tp_buf *b, uint32_t cp, int which) {
    size_t lo = 0, hi = sizeof TPL_CASE_TABLE / sizeof *TPL_CASE_TABLE;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (TPL_CASE_TABLE[mid].cp < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < sizeof TPL_CASE_TABLE / sizeof *TPL_CASE_TABLE && TPL_CASE_TABLE[lo].cp == cp) {
        tp_buf_puts(b, which == 0   ? TPL_CASE_TABLE[lo].lower
                       : which == 1 ? TPL_CASE_TABLE[lo].upper
                                    : TPL_CASE_TABLE[lo].title);
        return;
    }
    utf8proc_int32_t c = (utf8proc_int32_t)cp;
    utf8proc_int32_t o = which == 0   ? utf8proc_tolower(c)
                         : which == 1 ? utf8proc_toupper(c)
                                      : utf8proc_totitle(c);
    char enc[4];
    tp_buf_append(b, enc, (size_t)tp_utf8_encode(o < 0 ? cp : (uint32_t)o, enc));
}

static bool cp_cased(uint32_t cp) {
    utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)cp);
    return cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL ||
           cat == UTF8PROC_CATEGORY_LT || utf8proc_islower((utf8proc_int32_t)cp) ||
           utf8proc_isupper((utf8proc_int32_t)cp);
}

static bool cp_case_ignorable(uint32_t cp) {
    utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)cp);
    return cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_ME ||
           cat == UTF8PROC_CATEGORY_CF || cat == UTF8PROC_CATEGORY_LM ||
           cat == UTF8PROC_CATEGORY_SK || cp == '\'' || cp == '.' || cp == ':' || cp == 0xB7 ||
           cp == 0x2019;
}

/* Python lowercases U+03A3 to final sigma when a cased letter precedes it and none follows
 * (skipping case-ignorable characters). */
static bool final_sigma(const char *s, size_t n, size_t at, size_t len) {
    bool before = false;
    size_t i = at;
    while (i > 0) {
        size_t st = i - 1;
        while (st > 0 && ((unsigned char)s[st] & 0xC0) == 0x80)
            st--;
        uint32_t c;
        tpl_utf8_next(s + st, i - st, &c);
        i = st;
        if (cp_case_ignorable(c))
            continue;
        before = cp_cased(c);
        break;
    }
    if (!before)
        return false;
    for (i = at + len; i < n;) {
        uint32_t c;
        i += tpl_utf8_next(s + i, n - i, &c);
        if (cp_case_ignorable(c))
            continue;
        return !cp_cased(c);
    }
    return true;
}

/* case mapping: 0 lower, 1 upper, 2 capitalize, 3 Python title, 4 Jinja title filter */
static tv case_map(R *r, tv s, int mode) {
    tp_buf b = {0};
    size_t i = 0;
    bool prev_cased = false, first = true, word_start = true;
    while (i < s.u.s.n) {
        uint32_t cp;
        size_t len = tpl_utf8_next(s.u.s.p + i, s.u.s.n - i, &cp);
        int which; /* 0 lower, 1 upper, 2 title */
        switch (mode) {
        case 0:
            which = 0;
            break;
        case 1:
            which = 1;
            break;
        case 2:
            which = first ? 2 : 0;
            break;
        case 3:
            which = prev_cased ? 0 : 2;
            break;
        default: /* Jinja's title filter: item[0].upper() + item[1:].lower() per word */
            which = word_start ? 1 : 0;
            break;
        }
        if (cp < 0x80) {
            char c = (char)cp;
            if (which == 0 && c >= 'A' && c <= 'Z')
                c = (char)(c - 'A' + 'a');
            else if (which != 0 && c >= 'a' && c <= 'z')
                c = (char)(c - 'a' + 'A');
            tp_buf_append(&b, &c, 1);
        } else if (which == 0 && cp == 0x3A3 && final_sigma(s.u.s.p, s.u.s.n, i, len)) {
            tp_buf_puts(&b, "\xcf\x82"); /* U+03C2 */
        } else {
            map_cp(&b, cp, which);
        }
        prev_cased = cp_cased(cp);
        word_start =
            cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || tpl_is_py_space(cp);
        first = false;
        i += len;
    }
    return buf_to_str(r, &b);
}

static tv str_replace(R *r, tv s, tv old, tv rep, int64_t count) {
    tp_buf b = {0};
    if (old.u.s.n == 0) {
        /* Python inserts rep before every character and at the end */
        size_t i = 0;
        int64_t done = 0;
        while (count < 0 || done < count) {
            tp_buf_append(&b, rep.u.s.p, rep.u.s.n);
            done++;
            if (i >= s.u.s.n)
                break;
            uint32_t cp;
            size_t len = tpl_utf8_next(s.u.s.p + i, s.u.s.n - i, &cp);
            tp_buf_append(&b, s.u.s.p + i, len);
            i += len;
        }
        tp_buf_append(&b, s.u.s.p + i, s.u.s.n - i);
        return buf_to_str(r, &b);
    }
    size_t i = 0;
    int64_t done = 0;
    while (i < s.u.s.n && (count < 0 || done < count)) {
        const char *hit = memmem(s.u.s.p + i, s.u.s.n - i, old.u.s.p, old.u.s.n);
        if (!hit)
            break;
        size_t at = (size_t)(hit - s.u.s.p);
        tp_buf_append(&b, s.u.s.p + i, at - i);
        tp_buf_append(&b, rep.u.s.p, rep.u.s.n);
        i = at + old.u.s.n;
        done++;
    }
    tp_buf_append(&b, s.u.s.p + i, s.u.s.n - i);
    return buf_to_str(r, &b);
}

/* growable value list in the arena */
typedef struct {
    tv *v;
    size_t n, cap;
} vlist;

static bool vl_push(R *r, vlist *l, tv x) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        tv *nv = tpl_alloc(&r->a, cap * sizeof(tv));
        if (!nv)
            return false;
        if (l->n)
            memcpy(nv, l->v, l->n * sizeof(tv));
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = x;
    return true;
}

static tv vl_list(R *r, vlist *l) {
    tv out = mklist(r, 0);
    tpl_list *li = tpl_alloc(&r->a, sizeof *li);
    if (li) {
        li->items = l->v;
        li->n = l->n;
        li->tuple = false;
        out.u.l = li;
    }
    return out;
}

static bool str_split(R *r, int line, tv s, const tv *sep, int64_t maxsplit, bool from_right,
                      tv *out) {
    vlist l = {0};
    if (sep && sep->t != TV_NONE) {
        if (sep->t != TV_STR)
            return rfail(r, line, "split(): the separator must be a string or None");
        if (sep->u.s.n == 0)
            return rfail(r, line, "split(): empty separator");
        if (!from_right) {
            size_t i = 0;
            int64_t done = 0;
            for (;;) {
                const char *hit = (maxsplit < 0 || done < maxsplit)
                                      ? memmem(s.u.s.p + i, s.u.s.n - i, sep->u.s.p, sep->u.s.n)
                                      : NULL;
                if (!hit) {
                    if (!vl_push(r, &l, tv_str(s.u.s.p + i, s.u.s.n - i)))
                        return check_mem(r, line);
                    break;
                }
                size_t at = (size_t)(hit - s.u.s.p);
                if (!vl_push(r, &l, tv_str(s.u.s.p + i, at - i)))
                    return check_mem(r, line);
                i = at + sep->u.s.n;
                done++;
            }
        } else {
            /* split from the right, then reverse */
            size_t e = s.u.s.n;
            int64_t done = 0;
            for (;;) {
                size_t found = SIZE_MAX;
                if ((maxsplit < 0 || done < maxsplit) && e >= sep->u.s.n) {
                    for (size_t k = e - sep->u.s.n + 1; k-- > 0;)
                        if (memcmp(s.u.s.p + k, sep->u.s.p, sep->u.s.n) == 0) {
                            found = k;
                            break;
                        }
                }
                if (found == SIZE_MAX) {
                    if (!vl_push(r, &l, tv_str(s.u.s.p, e)))
                        return check_mem(r, line);
                    break;
                }
                if (!vl_push(r, &l, tv_str(s.u.s.p + found + sep->u.s.n, e - found - sep->u.s.n)))
                    return check_mem(r, line);
                e = found;
                done++;
            }
            for (size_t i = 0; i < l.n / 2; i++) {
                tv t = l.v[i];
                l.v[i] = l.v[l.n - 1 - i];
                l.v[l.n - 1 - i] = t;
            }
        }
        *out = vl_list(r, &l);
        return check_mem(r, line);
    }
    /* whitespace split: runs of whitespace, no empty strings */
    size_t i = 0, n = s.u.s.n;
    int64_t done = 0;
    if (from_right) {
        /* rare: implement via left split when maxsplit < 0 */
        if (maxsplit >= 0)
            return rfail(r, line, "rsplit() with maxsplit and no separator is not supported");
    }
    for (;;) {
        while (i < n) {
            uint32_t cp;
            size_t len = tpl_utf8_next(s.u.s.p + i, n - i, &cp);
            if (!tpl_is_py_space(cp))
                break;
            i += len;
        }
        if (i >= n)
            break;
        if (maxsplit >= 0 && done >= maxsplit) { /* Python keeps the rest's trailing space */
            tv rest = tv_str(s.u.s.p + i, n - i);
            if (!vl_push(r, &l, rest))
                return check_mem(r, line);
            break;
        }
        size_t st = i;
        while (i < n) {
            uint32_t cp;
            size_t len = tpl_utf8_next(s.u.s.p + i, n - i, &cp);
            if (tpl_is_py_space(cp))
                break;
            i += len;
        }
        if (!vl_push(r, &l, tv_str(s.u.s.p + st, i - st)))
            return check_mem(r, line);
        done++;
    }
    *out = vl_list(r, &l);
    return check_mem(r, line);
}

/* Python's str.splitlines() (no keepends) */
static bool str_splitlines(R *r, int line, tv s, tv *out) {
    vlist l = {0};
    size_t i = 0, st = 0;
    while (i < s.u.s.n) {
        uint32_t cp;
        size_t len = tpl_utf8_next(s.u.s.p + i, s.u.s.n - i, &cp);
        bool br = cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C || cp == 0x1C ||
                  cp == 0x1D || cp == 0x1E || cp == 0x85 || cp == 0x2028 || cp == 0x2029;
        if (br) {
            if (!vl_push(r, &l, tv_str(s.u.s.p + st, i - st)))
                return check_mem(r, line);
            if (cp == '\r' && i + 1 < s.u.s.n && s.u.s.p[i + 1] == '\n')
                len++;
            st = i + len;
        }
        i += len;
    }
    if (st < s.u.s.n && !vl_push(r, &l, tv_str(s.u.s.p + st, s.u.s.n - st)))
        return check_mem(r, line);
    *out = vl_list(r, &l);
    return check_mem(r, line);
}

/* str.format with {} / {0} / {name} fields, no format specs */
static bool str_format(R *r, int line, tv fmt, const args_t *a, tv *out) {
    tp_buf b = {0};
    size_t auto_idx = 0;
    const char *s = fmt.u.s.p;
    size_t n = fmt.u.s.n;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '{' && i + 1 < n && s[i + 1] == '{') {
            tp_buf_append(&b, "{", 1);
            i++;
            continue;
        }
        if (s[i] == '}' && i + 1 < n && s[i + 1] == '}') {
            tp_buf_append(&b, "}", 1);
            i++;
            continue;
        }
        if (s[i] != '{') {
            tp_buf_append(&b, s + i, 1);
            continue;
        }
        size_t e = i + 1;
        while (e < n && s[e] != '}')
            e++;
        if (e >= n) {
            tp_buf_free(&b);
            return rfail(r, line, "format(): single '{' in the format string");
        }
        const char *f = s + i + 1;
        size_t fl = e - i - 1;
        if (memchr(f, ':', fl) || memchr(f, '!', fl) || memchr(f, '.', fl) || memchr(f, '[', fl)) {
            tp_buf_free(&b);
            return rfail(r, line, "format(): format specs and conversions are not supported");
        }
        const tv *v = NULL;
        if (fl == 0) {
            v = arg(a, auto_idx++, NULL);
        } else if (f[0] >= '0' && f[0] <= '9') {
            v = arg(a, (size_t)atoi(f), NULL);
        } else {
            for (size_t k = 0; k < a->nkw; k++)
                if (strlen(a->kw[k]) == fl && memcmp(a->kw[k], f, fl) == 0)
                    v = &a->kwv[k];
        }
        if (!v) {
            tp_buf_free(&b);
            return rfail(r, line, "format(): no argument for field '{%.*s}'", (int)fl, f);
        }
        if (!tpl_str_append(&b, *v)) {
            tp_buf_free(&b);
            return rfail(r, line, "format(): value nested too deeply");
        }
        i = e;
    }
    *out = buf_to_str(r, &b);
    return check_mem(r, line);
}

static int64_t cp_index(tv s, size_t byte_off) {
    return (int64_t)tpl_utf8_count(s.u.s.p, byte_off);
}

/* ---- methods ---- */

static bool call_method(R *r, frame *f, const tpl_node *call, tv self, int id, const char *name,
                        tv *out) {
    int line = call->line;
    args_t a;
    if (!eval_args(r, f, call, &a))
        return false;
    if (is_mutating(id))
        return rfail(r, line,
                     "method '%s' would modify %s value, which the template sandbox does not "
                     "allow (unsupported)",
                     name, type_label(self));
    const tv *a0 = arg(&a, 0, NULL);
    char what[64];
    snprintf(what, sizeof what, "%s.%s()", tpl_type_name(self), name);
    if (self.t == TV_STR) {
        tv s = self;
        switch (id) {
        case M_STARTSWITH:
        case M_ENDSWITH: {
            if (!args_check(r, line, &a, 1, NULL, what))
                return false;
            if (!a0)
                return rfail(r, line, "%s needs an argument", what);
            const tv *cands = a0;
            size_t nc = 1;
            if (a0->t == TV_LIST && a0->u.l->tuple) {
                cands = a0->u.l->items;
                nc = a0->u.l->n;
            }
            bool res = false;
            for (size_t k = 0; k < nc; k++) {
                if (cands[k].t != TV_STR)
                    return rfail(r, line, "%s: the argument must be a string or a tuple of strings",
                                 what);
                tv c = cands[k];
                if (c.u.s.n <= s.u.s.n &&
                    memcmp(id == M_STARTSWITH ? s.u.s.p : s.u.s.p + s.u.s.n - c.u.s.n, c.u.s.p,
                           c.u.s.n) == 0)
                    res = true;
            }
            *out = tv_bool(res);
            return true;
        }
        case M_STRIP:
        case M_LSTRIP:
        case M_RSTRIP: {
            static const char *const kn[] = {"chars", NULL};
            if (!args_check(r, line, &a, 1, kn, what))
                return false;
            const tv *ch = arg(&a, 0, "chars");
            if (ch && ch->t == TV_NONE)
                ch = NULL;
            if (ch && ch->t != TV_STR)
                return rfail(r, line, "%s: chars must be a string or None", what);
            *out = strip_str(s, id == M_STRIP ? 3 : id == M_LSTRIP ? 1 : 2, ch);
            return true;
        }
        case M_SPLIT:
        case M_RSPLIT: {
            static const char *const kn[] = {"sep", "maxsplit", NULL};
            if (!args_check(r, line, &a, 2, kn, what))
                return false;
            const tv *sep = arg(&a, 0, "sep"), *ms = arg(&a, 1, "maxsplit");
            if (ms && !is_intlike(*ms))
                return rfail(r, line, "%s: maxsplit must be an integer", what);
            return str_split(r, line, s, sep, ms ? as_int(*ms) : -1, id == M_RSPLIT, out);
        }
        case M_UPPER:
        case M_LOWER:
        case M_TITLE:
        case M_CAPITALIZE:
            if (!args_check(r, line, &a, 0, NULL, what))
                return false;
            *out = case_map(r, s,
                            id == M_LOWER        ? 0
                            : id == M_UPPER      ? 1
                            : id == M_CAPITALIZE ? 2
                                                 : 3);
            return check_mem(r, line);
        case M_REPLACE: {
            static const char *const kn[] = {"old", "new", "count", NULL};
            if (!args_check(r, line, &a, 3, kn, what))
                return false;
            const tv *o = arg(&a, 0, "old"), *nw = arg(&a, 1, "new"), *c = arg(&a, 2, "count");
            if (!need_str_arg(r, line, o, what, "old") || !need_str_arg(r, line, nw, what, "new"))
                return false;
            if (c && !is_intlike(*c))
                return rfail(r, line, "%s: count must be an integer", what);
            *out = str_replace(r, s, *o, *nw, c ? as_int(*c) : -1);
            return check_mem(r, line);
        }
        case M_FORMAT:
            return str_format(r, line, s, &a, out);
        case M_COUNT:
        case M_FIND:
        case M_RFIND:
        case M_INDEX: {
            if (!args_check(r, line, &a, 1, NULL, what))
                return false;
            if (!need_str_arg(r, line, a0, what, "sub"))
                return false;
            tv sub = *a0;
            if (id == M_COUNT) {
                int64_t cnt = 0;
                if (sub.u.s.n == 0) {
                    cnt = (int64_t)tpl_utf8_count(s.u.s.p, s.u.s.n) + 1;
                } else {
                    size_t i = 0;
                    const char *hit;
                    while (i <= s.u.s.n &&
                           (hit = memmem(s.u.s.p + i, s.u.s.n - i, sub.u.s.p, sub.u.s.n))) {
                        cnt++;
                        i = (size_t)(hit - s.u.s.p) + sub.u.s.n;
                    }
                }
                *out = tv_int(cnt);
                return true;
            }
            int64_t pos = -1;
            if (id == M_RFIND) {
                if (sub.u.s.n <= s.u.s.n)
                    for (size_t k = s.u.s.n - sub.u.s.n + 1; k-- > 0;)
                        if (memcmp(s.u.s.p + k, sub.u.s.p, sub.u.s.n) == 0) {
                            pos = cp_index(s, k);
                            break;
                        }
            } else {
                const char *hit =
                    sub.u.s.n == 0 ? s.u.s.p : memmem(s.u.s.p, s.u.s.n, sub.u.s.p, sub.u.s.n);
                if (hit)
                    pos = cp_index(s, (size_t)(hit - s.u.s.p));
            }
            if (id == M_INDEX && pos < 0)
                return rfail(r, line, "%s: substring not found", what);
            *out = tv_int(pos);
            return true;
        }
        case M_JOIN: {
            if (!args_check(r, line, &a, 1, NULL, what))
                return false;
            if (!a0)
                return rfail(r, line, "%s needs an argument", what);
            const tv *items;
            size_t n;
            if (!iter_items(r, line, *a0, &items, &n))
                return false;
            tp_buf b = {0};
            for (size_t i = 0; i < n; i++) {
                if (items[i].t != TV_STR) {
                    tp_buf_free(&b);
                    return rfail(r, line, "%s: item %zu is %s value, not a string", what, i,
                                 type_label(items[i]));
                }
                if (i)
                    tp_buf_append(&b, s.u.s.p, s.u.s.n);
                tp_buf_append(&b, items[i].u.s.p, items[i].u.s.n);
            }
            *out = buf_to_str(r, &b);
            return check_mem(r, line);
        }
        case M_ISDIGIT:
        case M_ISALPHA:
        case M_ISALNUM:
        case M_ISSPACE:
        case M_ISUPPER:
        case M_ISLOWER: {
            if (!args_check(r, line, &a, 0, NULL, what))
                return false;
            if (id == M_ISUPPER || id == M_ISLOWER) {
                bool res;
                if (!run_test(r, line, id == M_ISUPPER ? TS_UPPER : TS_LOWER, s, &a, &res))
                    return false;
                *out = tv_bool(res);
                return true;
            }
            bool res = s.u.s.n > 0;
            size_t i = 0;
            while (i < s.u.s.n && res) {
                uint32_t cp;
                i += tpl_utf8_next(s.u.s.p + i, s.u.s.n - i, &cp);
                utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
                bool alpha = c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO;
                bool digit = c == UTF8PROC_CATEGORY_ND;
                if (id == M_ISDIGIT)
                    res = digit;
                else if (id == M_ISALPHA)
                    res = alpha;
                else if (id == M_ISALNUM)
                    res = alpha || digit || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO;
                else
                    res = tpl_is_py_space(cp);
            }
            *out = tv_bool(res);
            return true;
        }
        case M_ZFILL: {
            if (!args_check(r, line, &a, 1, NULL, what))
                return false;
            if (!a0 || !is_intlike(*a0))
                return rfail(r, line, "%s needs an integer width", what);
            int64_t width = as_int(*a0), len = (int64_t)tpl_utf8_count(s.u.s.p, s.u.s.n);
            if (width > 100000)
                return rfail(r, line, "%s: width too large", what);
            if (width <= len) {
                *out = s;
                return true;
            }
            tp_buf b = {0};
            size_t start = 0;
            if (s.u.s.n && (s.u.s.p[0] == '+' || s.u.s.p[0] == '-')) {
                tp_buf_append(&b, s.u.s.p, 1);
                start = 1;
            }
            for (int64_t i = 0; i < width - len; i++)
                tp_buf_append(&b, "0", 1);
            tp_buf_append(&b, s.u.s.p + start, s.u.s.n - start);
            *out = buf_to_str(r, &b);
            return check_mem(r, line);
        }
        case M_SPLITLINES:
            if (!args_check(r, line, &a, 0, NULL, what))
                return false;
            return str_splitlines(r, line, s, out);
        default:
            break;
        }
    } else if (self.t == TV_DICT) {
        const tpl_dict *d = self.u.d;
        switch (id) {
        case M_ITEMS:
        case M_KEYS:
        case M_VALUES: {
            if (!args_check(r, line, &a, 0, NULL, what))
                return false;
            tv l = mklist(r, d->n);
            if (!check_mem(r, line))
                return false;
            for (size_t i = 0; i < d->n; i++) {
                if (id == M_KEYS) {
                    l.u.l->items[i] = d->keys[i];
                } else if (id == M_VALUES) {
                    l.u.l->items[i] = d->vals[i];
                } else {
                    tv p = mklist(r, 2);
                    if (!check_mem(r, line))
                        return false;
                    p.u.l->tuple = true;
                    p.u.l->items[0] = d->keys[i];
                    p.u.l->items[1] = d->vals[i];
                    l.u.l->items[i] = p;
                }
            }
            *out = l;
            return true;
        }
        case M_GET: {
            static const char *const kn[] = {"key", "default", NULL};
            if (!args_check(r, line, &a, 2, kn, what))
                return false;
            const tv *k = arg(&a, 0, "key"), *dflt = arg(&a, 1, "default");
            if (!k)
                return rfail(r, line, "%s needs a key", what);
            if (!tpl_is_hashable(*k))
                return rfail(r, line, "%s: %s value cannot be a key", what, type_label(*k));
            const tv *v = tpl_dict_get(d, *k);
            *out = v ? *v : dflt ? *dflt : tv_none();
            return true;
        }
        default:
            break;
        }
    } else if (self.t == TV_LIST) {
        if (id == M_INDEX || id == M_COUNT) {
            if (!args_check(r, line, &a, 1, NULL, what))
                return false;
            if (!a0)
                return rfail(r, line, "%s needs an argument", what);
            int64_t cnt = 0, pos = -1;
            for (size_t i = 0; i < self.u.l->n; i++)
                if (tpl_equal(self.u.l->items[i], *a0)) {
                    cnt++;
                    if (pos < 0)
                        pos = (int64_t)i;
                }
            if (id == M_INDEX && pos < 0)
                return rfail(r, line, "%s: value is not in the list", what);
            *out = tv_int(id == M_COUNT ? cnt : pos);
            return true;
        }
    } else if (self.t == TV_LOOP && id == M_CHANGED) {
        tpl_loop *lp = self.u.loop;
        tv now = mklist(r, a.npos);
        if (!check_mem(r, line))
            return false;
        now.u.l->tuple = true;
        if (a.npos)
            memcpy(now.u.l->items, a.pos, a.npos * sizeof(tv));
        bool changed = !lp->has_changed || !tpl_equal(lp->changed, now);
        lp->has_changed = true;
        lp->changed = now;
        *out = tv_bool(changed);
        return true;
    } else if (self.t == TV_LOOP && id == M_CYCLE) {
        if (a.npos == 0)
            return rfail(r, line, "loop.cycle() needs at least one value");
        *out = a.pos[self.u.loop->index0 % a.npos];
        return true;
    }
    return rfail(r, line, "%s value has no method '%s'", type_label(self), name);
}

/* ---- globals ---- */

static bool call_global(R *r, int line, int id, const args_t *a, tv *out) {
    switch (id) {
    case G_RAISE: {
        tv msg = tv_str("", 0);
        if (a->npos >= 1 && !to_str(r, line, a->pos[0], &msg))
            return false;
        return rfail(r, line, "raise_exception: %.*s", (int)(msg.u.s.n > 300 ? 300 : msg.u.s.n),
                     msg.u.s.p);
    }
    case G_STRFTIME: {
        if (a->npos != 1 || a->pos[0].t != TV_STR)
            return rfail(r, line, "strftime_now() takes one format string");
        struct tm tmv;
        time_t now;
        if (r->prm.has_now) {
            now = (time_t)r->prm.now;
            gmtime_r(&now, &tmv);
        } else {
            now = time(NULL);
            localtime_r(&now, &tmv);
        }
        char fmt[256], buf[512];
        size_t fl = a->pos[0].u.s.n;
        if (fl >= sizeof fmt)
            return rfail(r, line, "strftime_now(): format string too long");
        memcpy(fmt, a->pos[0].u.s.p, fl);
        fmt[fl] = 0;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        /* the format comes from the template, as in Python's strftime */
        size_t n = fl ? strftime(buf, sizeof buf, fmt, &tmv) : 0;
#pragma GCC diagnostic pop
        if (fl && n == 0)
            buf[0] = 0;
        *out = mkstr(r, buf, n);
        return check_mem(r, line);
    }
    case G_RANGE: {
        for (size_t i = 0; i < a->npos; i++)
            if (!is_intlike(a->pos[i]))
                return rfail(r, line, "range() arguments must be integers");
        if (a->nkw || a->npos < 1 || a->npos > 3)
            return rfail(r, line, "range() takes 1 to 3 integer arguments");
        int64_t start = 0, stop, step = 1;
        if (a->npos == 1) {
            stop = as_int(a->pos[0]);
        } else {
            start = as_int(a->pos[0]);
            stop = as_int(a->pos[1]);
            if (a->npos == 3)
                step = as_int(a->pos[2]);
        }
        if (step == 0)
            return rfail(r, line, "range() step must not be zero");
        tpl_i128 cnt = span_count(start, stop, step);
        if (cnt > TPL_MAX_RANGE)
            return rfail(r, line, "range() too big (more than %d items)", TPL_MAX_RANGE);
        tv l = mklist(r, (size_t)cnt);
        if (!check_mem(r, line))
            return false;
        for (int64_t i = 0; i < (int64_t)cnt; i++)
            l.u.l->items[i] = tv_int(start + i * step);
        *out = l;
        return true;
    }
    case G_NAMESPACE:
    case G_DICT: {
        tpl_dict *d = tpl_dict_new(&r->a, a->nkw + 4);
        if (!d)
            return check_mem(r, line);
        if (a->npos > 1)
            return rfail(r, line, "%s() takes at most one positional argument", GLOBAL_NAMES[id]);
        if (a->npos == 1) {
            if (a->pos[0].t != TV_DICT)
                return rfail(r, line, "%s(): the positional argument must be a dict",
                             GLOBAL_NAMES[id]);
            for (size_t i = 0; i < a->pos[0].u.d->n; i++)
                if (!tpl_dict_set(&r->a, d, a->pos[0].u.d->keys[i], a->pos[0].u.d->vals[i]))
                    return check_mem(r, line);
        }
        for (size_t i = 0; i < a->nkw; i++)
            if (!tpl_dict_set(&r->a, d, tv_str(a->kw[i], strlen(a->kw[i])), a->kwv[i]))
                return check_mem(r, line);
        out->t = id == G_NAMESPACE ? TV_NS : TV_DICT;
        out->aux = 0;
        out->u.d = d;
        return true;
    }
    default:
        return rfail(r, line, "unknown function");
    }
}

/* ---- macros ---- */

static bool call_macro(R *r, const tpl_node *call, tv mv, const args_t *a, tv *out) {
    int line = call->line;
    macro_closure *mc = mv.u.ptr;
    const tpl_node *m = mc->m;
    if (a->npos > m->n_kids)
        return rfail(r, line, "macro '%s' takes at most %zu argument%s (%zu given)", m->name,
                     m->n_kids, m->n_kids == 1 ? "" : "s", a->npos);
    if (r->depth > TPL_MAX_DEPTH / 2)
        return rfail(r, line, "macro calls nested too deeply (recursion?)");
    frame *mf = frame_new(r, mc->f);
    if (!mf || !scope_enter(r, mf, m->b))
        return check_mem(r, line);
    for (size_t i = 0; i < a->nkw; i++) {
        bool ok = false;
        for (size_t k = 0; k < m->n_kids; k++)
            if (strcmp(m->kids[k]->name, a->kw[i]) == 0)
                ok = true;
        if (!ok)
            return rfail(r, line, "macro '%s' has no parameter '%s'", m->name, a->kw[i]);
    }
    if (r->caller_call == call) { /* invoked by a {% call %} block */
        if (!frame_set(r, mf, "caller", 6, r->caller))
            return check_mem(r, line);
        r->caller_call = NULL;
    }
    for (size_t k = 0; k < m->n_kids; k++) {
        const tpl_node *pn = m->kids[k];
        tv v;
        const tv *given = NULL;
        if (k < a->npos)
            given = &a->pos[k];
        for (size_t i = 0; i < a->nkw; i++)
            if (strcmp(pn->name, a->kw[i]) == 0)
                given = &a->kwv[i];
        if (given)
            v = *given;
        else if (pn->a) {
            if (!eval(r, mf, pn->a, &v))
                return false;
        } else
            v = undef_named(pn->name, pn->name_len);
        if (!frame_set(r, mf, pn->name, pn->name_len, v))
            return check_mem(r, line);
    }
    tp_buf body = {0};
    tp_buf *saved = r->out;
    r->out = &body;
    int saved_loops = r->loop_depth;
    r->depth++;
    int x = exec(r, mf, m->b);
    r->depth--;
    r->loop_depth = saved_loops;
    r->out = saved;
    if (x == X_ERR) {
        tp_buf_free(&body);
        return false;
    }
    *out = buf_to_str(r, &body);
    return check_mem(r, line);
}

static bool call_value(R *r, frame *f, const tpl_node *call, tv callee, tv *out) {
    int line = call->line;
    if (callee.t == TV_METHOD)
        return call_method(r, f, call, *callee.u.fn.self, callee.u.fn.id, callee.u.fn.name, out);
    if (callee.t == TV_UNDEF)
        return undef_fail(r, line, callee, "cannot call an undefined value");
    args_t a;
    if (callee.t == TV_LOOP) {
        tpl_loop *lp = callee.u.loop;
        if (lp->node->op != 1)
            return rfail(r, line, "loop() can only be called in a loop marked 'recursive'");
        if (!eval_args(r, f, call, &a))
            return false;
        if (a.npos != 1 || a.nkw)
            return rfail(r, line, "loop() takes one iterable");
        if (r->depth > TPL_MAX_DEPTH / 2)
            return rfail(r, line, "recursive loop nested too deeply");
        const tv *items;
        size_t cnt;
        if (!iter_items(r, line, a.pos[0], &items, &cnt))
            return false;
        tp_buf body = {0};
        tp_buf *saved = r->out;
        r->out = &body;
        r->depth++;
        int x = run_loop(r, lp->outer, lp->node, items, cnt, lp->depth + 1);
        r->depth--;
        r->out = saved;
        if (x == X_ERR) {
            tp_buf_free(&body);
            return false;
        }
        *out = buf_to_str(r, &body);
        return check_mem(r, line);
    }
    if (callee.t == TV_FUNC) {
        if (!eval_args(r, f, call, &a))
            return false;
        return call_global(r, line, callee.u.fn.id, &a, out);
    }
    if (callee.t == TV_MACRO) {
        if (!eval_args(r, f, call, &a))
            return false;
        return call_macro(r, call, callee, &a, out);
    }
    return rfail(r, line, "%s value is not callable", type_label(callee));
}

/* ---- filters ---- */

/* attribute path "a.b.0" lookup for map/selectattr/sort(attribute=) */
static bool attr_path(R *r, int line, tv v, tv path, tv *out) {
    if (path.t == TV_INT) {
        return get_item(r, line, v, path, out);
    }
    if (path.t != TV_STR)
        return rfail(r, line, "attribute must be a string");
    size_t i = 0;
    tv cur = v;
    while (i <= path.u.s.n) {
        size_t e = i;
        while (e < path.u.s.n && path.u.s.p[e] != '.')
            e++;
        const char *part = path.u.s.p + i;
        size_t pl = e - i;
        bool digits = pl > 0;
        for (size_t k = 0; k < pl; k++)
            if (part[k] < '0' || part[k] > '9')
                digits = false;
        tv key = digits ? tv_int(strtoll(part, NULL, 10)) : tv_str(part, pl);
        /* an undefined item raises here, as Jinja2's attribute getter does */
        if (!get_item(r, line, cur, key, &cur))
            return false;
        i = e + 1;
    }
    *out = cur;
    return true;
}

static bool apply_filter(R *r, frame *f, const tpl_node *fn, tv v, tv *out);

typedef struct {
    R *r;
    int line;
    const tv *keys;
} sort_ctx;

static bool sort_key_prep(R *r, int line, tv v, bool cs, tv *out) {
    if (!cs && v.t == TV_STR) {
        *out = case_map(r, v, 0);
        return check_mem(r, line);
    }
    *out = v;
    return true;
}

/* stable merge sort of idx[] by keys (error-aware) */
static bool msort(sort_ctx *c, size_t *idx, size_t *tmp, size_t n) {
    if (n < 2)
        return true;
    size_t h = n / 2;
    if (!msort(c, idx, tmp, h) || !msort(c, idx + h, tmp, n - h))
        return false;
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        int cmp = 0;
        /* Jinja2's sort keys are one-element lists: equal keys never reach '<' */
        if (!tpl_equal(c->keys[idx[j]], c->keys[idx[i]]) &&
            !compare(c->r, c->line, c->keys[idx[j]], c->keys[idx[i]], &cmp, "<"))
            return false;
        if (cmp == -1)
            tmp[k++] = idx[j++];
        else
            tmp[k++] = idx[i++];
    }
    while (i < h)
        tmp[k++] = idx[i++];
    while (j < n)
        tmp[k++] = idx[j++];
    memcpy(idx, tmp, n * sizeof *idx);
    return true;
}

static bool sort_values(R *r, int line, const tv *items, size_t n, const tv *keys, bool reverse,
                        tv *out) {
    size_t *idx = tpl_alloc(&r->a, (n + 1) * sizeof *idx);
    size_t *tmp = tpl_alloc(&r->a, (n + 1) * sizeof *tmp);
    if (!idx || !tmp)
        return check_mem(r, line);
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    sort_ctx c = {r, line, keys};
    if (!msort(&c, idx, tmp, n))
        return false;
    tv l = mklist(r, n);
    if (!check_mem(r, line))
        return false;
    for (size_t i = 0; i < n; i++)
        l.u.l->items[i] = items[idx[reverse ? n - 1 - i : i]];
    if (reverse) {
        /* Python's reverse sort is stable too: equal keys keep their order */
        size_t i = 0;
        while (i < n) {
            size_t j = i + 1;
            while (j < n && tpl_equal(keys[idx[n - 1 - j]], keys[idx[n - 1 - i]]))
                j++;
            for (size_t a = i, b = j - 1; a < b; a++, b--) {
                tv t = l.u.l->items[a];
                l.u.l->items[a] = l.u.l->items[b];
                l.u.l->items[b] = t;
            }
            i = j;
        }
    }
    *out = l;
    return true;
}

static bool filter_select(R *r, frame *f, const tpl_node *fn, int fid, tv v, const args_t *a,
                          tv *out) {
    int line = fn->line;
    (void)f;
    bool by_attr = fid == F_SELECTATTR || fid == F_REJECTATTR;
    bool want = fid == F_SELECTATTR || fid == F_SELECT;
    const tv *items = NULL;
    size_t n = 0;
    /* Jinja2: `if value: for item in value: ...`, so a false value selects nothing */
    if (tpl_truthy(v) && !iter_items(r, line, v, &items, &n))
        return false;
    size_t ai = 0;
    tv attr = tv_undef();
    if (by_attr) {
        if (a->npos < 1)
            return rfail(r, line, "filter '%s' needs an attribute name", FILTER_NAMES[fid]);
        attr = a->pos[ai++];
    }
    int test = -1;
    if (a->npos > ai) {
        if (a->pos[ai].t != TV_STR)
            return rfail(r, line, "filter '%s': the test name must be a string", FILTER_NAMES[fid]);
        test = tpl_test_id(a->pos[ai].u.s.p, a->pos[ai].u.s.n);
        if (test < 0)
            return rfail(r, line, "filter '%s': unsupported test '%.*s'", FILTER_NAMES[fid],
                         (int)a->pos[ai].u.s.n, a->pos[ai].u.s.p);
        ai++;
    }
    args_t ta = {0};
    ta.pos = a->pos ? a->pos + ai : NULL; /* no arguments: NULL (NULL + 0 is undefined) */
    ta.npos = a->npos > ai ? a->npos - ai : 0;
    vlist l = {0};
    for (size_t i = 0; i < n; i++) {
        tv x = items[i];
        if (by_attr && !attr_path(r, line, items[i], attr, &x))
            return false;
        bool res;
        if (test < 0)
            res = tpl_truthy(x);
        else if (!apply_test(r, line, test, x, &ta, &res))
            return false;
        if (res == want && !vl_push(r, &l, items[i]))
            return check_mem(r, line);
    }
    *out = vl_list(r, &l);
    return check_mem(r, line);
}

static bool filter_map(R *r, frame *f, const tpl_node *fn, tv v, const args_t *a, tv *out) {
    int line = fn->line;
    const tv *items = NULL;
    size_t n = 0;
    if (tpl_truthy(v) && !iter_items(r, line, v, &items, &n)) /* as Jinja2: false maps to [] */
        return false;
    const tv *attr = arg(a, SIZE_MAX, "attribute");
    const tv *dflt = arg(a, SIZE_MAX, "default");
    tv l = mklist(r, n);
    if (!check_mem(r, line))
        return false;
    if (attr) {
        for (size_t i = 0; i < n; i++) {
            tv x;
            if (!attr_path(r, line, items[i], *attr, &x))
                return false;
            if (x.t == TV_UNDEF && dflt)
                x = *dflt;
            l.u.l->items[i] = x;
        }
        *out = l;
        return true;
    }
    if (a->npos < 1 || a->pos[0].t != TV_STR)
        return rfail(r, line, "filter 'map' needs attribute= or a filter name");
    int fid = tpl_filter_id(a->pos[0].u.s.p, a->pos[0].u.s.n);
    if (fid < 0)
        return rfail(r, line, "filter 'map': unsupported filter '%.*s'", (int)a->pos[0].u.s.n,
                     a->pos[0].u.s.p);
    /* build a synthetic filter node whose arguments are the remaining values */
    tpl_node *syn = tpl_zalloc(&r->a, sizeof *syn);
    size_t extra = a->npos - 1 + a->nkw;
    tpl_node **kids = extra ? tpl_zalloc(&r->a, extra * sizeof *kids) : NULL;
    const char **kws = extra ? tpl_zalloc(&r->a, extra * sizeof *kws) : NULL;
    if (!syn || (extra && (!kids || !kws)))
        return check_mem(r, line);
    size_t k = 0;
    for (size_t i = 1; i < a->npos; i++, k++) {
        kids[k] = tpl_zalloc(&r->a, sizeof(tpl_node));
        if (!kids[k])
            return check_mem(r, line);
        kids[k]->kind = N_CONST;
        kids[k]->v = a->pos[i];
        kids[k]->line = line;
    }
    for (size_t i = 0; i < a->nkw; i++, k++) {
        kids[k] = tpl_zalloc(&r->a, sizeof(tpl_node));
        if (!kids[k])
            return check_mem(r, line);
        kids[k]->kind = N_CONST;
        kids[k]->v = a->kwv[i];
        kids[k]->line = line;
        kws[k] = a->kw[i];
    }
    syn->kind = N_FILTER;
    syn->line = line;
    syn->builtin = fid;
    syn->name = FILTER_NAMES[fid];
    syn->kids = kids;
    syn->kw_names = kws;
    syn->n_kids = extra;
    for (size_t i = 0; i < n; i++)
        if (!apply_filter(r, f, syn, items[i], &l.u.l->items[i]))
            return false;
    *out = l;
    return true;
}

static bool to_int_value(R *r, int line, tv v, const tv *dflt, int64_t base, tv *out) {
    (void)r;
    (void)line;
    tv d = dflt ? *dflt : tv_int(0);
    switch (v.t) {
    case TV_INT:
    case TV_BIGINT:
        *out = v;
        return true;
    case TV_BOOL:
        *out = tv_int(v.u.b);
        return true;
    case TV_FLOAT:
        if (isnan(v.u.f) || isinf(v.u.f) || fabs(v.u.f) >= 9.2e18)
            *out = d;
        else
            *out = tv_int((int64_t)v.u.f);
        return true;
    case TV_STR: {
        tv s = strip_str(v, 3, NULL);
        char buf[128];
        size_t k = 0;
        for (size_t i = 0; i < s.u.s.n && k < sizeof buf - 1; i++)
            if (s.u.s.p[i] != '_')
                buf[k++] = s.u.s.p[i];
        buf[k] = 0;
        if (k == 0 || s.u.s.n >= sizeof buf - 1) {
            *out = d;
            return true;
        }
        char *e;
        errno = 0;
        long long x = strtoll(buf, &e, (int)base);
        if (*e == 0 && errno == 0) {
            *out = tv_int(x);
            return true;
        }
        double fv = strtod(buf, &e);
        if (*e == 0 && !isnan(fv) && !isinf(fv) && fabs(fv) < 9.2e18) {
            *out = tv_int((int64_t)fv);
            return true;
        }
        *out = d;
        return true;
    }
    default:
        *out = d;
        return true;
    }
}

static bool apply_filter_args(R *r, frame *f, const tpl_node *fn, tv v, const args_t *a, tv *out) {
    int line = fn->line;
    int id = fn->builtin;
    const char *nm = FILTER_NAMES[id];
    char what[48];
    snprintf(what, sizeof what, "filter '%s'", nm);
    switch (id) {
    case F_TRIM: {
        static const char *const kn[] = {"chars", NULL};
        if (!args_check(r, line, a, 1, kn, what))
            return false;
        const tv *ch = arg(a, 0, "chars");
        if (ch && ch->t == TV_NONE)
            ch = NULL;
        if (ch && ch->t != TV_STR)
            return rfail(r, line, "filter 'trim': chars must be a string");
        tv s;
        if (!to_str(r, line, v, &s))
            return false;
        *out = strip_str(s, 3, ch);
        return true;
    }
    case F_LENGTH:
    case F_COUNT:
        if (!args_check(r, line, a, 0, NULL, what))
            return false;
        switch (v.t) {
        case TV_STR:
            *out = tv_int((int64_t)tpl_utf8_count(v.u.s.p, v.u.s.n));
            return true;
        case TV_LIST:
            *out = tv_int((int64_t)v.u.l->n);
            return true;
        case TV_DICT:
            *out = tv_int((int64_t)v.u.d->n);
            return true;
        case TV_UNDEF:
            *out = tv_int(0);
            return true;
        default:
            return rfail(r, line, "filter '%s': %s value has no length", nm, type_label(v));
        }
    case F_TOJSON: {
        static const char *const kn[] = {"ensure_ascii", "indent", "separators", "sort_keys", NULL};
        if (!args_check(r, line, a, 4, kn, what))
            return false;
        const tv *ea = arg(a, 0, "ensure_ascii"), *ind = arg(a, 1, "indent"),
                 *sep = arg(a, 2, "separators"), *sk = arg(a, 3, "sort_keys");
        char isep[16] = "", ksep[16] = "";
        bool have_sep = false;
        if (sep && sep->t != TV_NONE) {
            if (sep->t != TV_LIST || sep->u.l->n != 2 || sep->u.l->items[0].t != TV_STR ||
                sep->u.l->items[1].t != TV_STR || sep->u.l->items[0].u.s.n >= sizeof isep ||
                sep->u.l->items[1].u.s.n >= sizeof ksep)
                return rfail(r, line, "filter 'tojson': separators must be two short strings");
            memcpy(isep, sep->u.l->items[0].u.s.p, sep->u.l->items[0].u.s.n);
            memcpy(ksep, sep->u.l->items[1].u.s.p, sep->u.l->items[1].u.s.n);
            isep[sep->u.l->items[0].u.s.n] = 0;
            ksep[sep->u.l->items[1].u.s.n] = 0;
            have_sep = true;
        }
        int indent = -1;
        if (ind && ind->t != TV_NONE) {
            if (!is_intlike(*ind) || as_int(*ind) < 0 || as_int(*ind) > 64)
                return rfail(r, line, "filter 'tojson': indent must be a small integer");
            indent = (int)as_int(*ind);
        }
        tp_buf b = {0};
        const char *why = NULL;
        if (!tpl_json_append(&b, v, indent, sk && tpl_truthy(*sk), have_sep ? isep : NULL,
                             have_sep ? ksep : NULL, &why)) {
            tp_buf_free(&b);
            return rfail(r, line, "filter 'tojson': %s", why ? why : "cannot encode");
        }
        if (ea && tpl_truthy(*ea)) {
            /* re-escape non-ASCII as \uXXXX (surrogate pairs above U+FFFF) */
            tp_buf e = {0};
            size_t i = 0;
            while (i < b.len) {
                uint32_t cp;
                size_t len = tpl_utf8_next(b.data + i, b.len - i, &cp);
                if (cp < 0x80) {
                    tp_buf_append(&e, b.data + i, 1);
                } else if (cp < 0x10000) {
                    tp_buf_printf(&e, "\\u%04x", cp);
                } else {
                    uint32_t c = cp - 0x10000;
                    tp_buf_printf(&e, "\\u%04x\\u%04x", 0xD800 + (c >> 10), 0xDC00 + (c & 0x3FF));
                }
                i += len;
            }
            tp_buf_free(&b);
            b = e;
        }
        *out = buf_to_str(r, &b);
        return check_mem(r, line);
    }
    case F_STRING:
    case F_SAFE: /* no autoescape: safe is the string itself */
        if (!args_check(r, line, a, 0, NULL, what))
            return false;
        return to_str(r, line, v, out);
    case F_LOWER:
    case F_UPPER:
    case F_CAPITALIZE:
    case F_TITLE: {
        if (!args_check(r, line, a, 0, NULL, what))
            return false;
        tv s;
        if (!to_str(r, line, v, &s))
            return false;
        *out = case_map(r, s, id == F_LOWER ? 0 : id == F_UPPER ? 1 : id == F_CAPITALIZE ? 2 : 4);
        return check_mem(r, line);
    }
    case F_REPLACE: {
        static const char *const kn[] = {"old", "new", "count", NULL};
        if (!args_check(r, line, a, 3, kn, what))
            return false;
        const tv *o = arg(a, 0, "old"), *nw = arg(a, 1, "new"), *c = arg(a, 2, "count");
        tv s, os, ns;
        if (!o || !nw)
            return rfail(r, line, "filter 'replace' needs old and new strings");
        if (!to_str(r, line, v, &s) || !to_str(r, line, *o, &os) || !to_str(r, line, *nw, &ns))
            return false;
        if (c && c->t != TV_NONE && !is_intlike(*c))
            return rfail(r, line, "filter 'replace': count must be an integer");
        *out = str_replace(r, s, os, ns, c && c->t != TV_NONE ? as_int(*c) : -1);
        return check_mem(r, line);
    }
    case F_JOIN: {
        static const char *const kn[] = {"d", "attribute", NULL};
        if (!args_check(r, line, a, 2, kn, what))
            return false;
        const tv *sep = arg(a, 0, "d"), *attr = arg(a, 1, "attribute");
        tv ss = tv_str("", 0);
        if (sep && !to_str(r, line, *sep, &ss))
            return false;
        const tv *items;
        size_t n;
        if (!iter_items(r, line, v, &items, &n))
            return false;
        tp_buf b = {0};
        for (size_t i = 0; i < n; i++) {
            tv x = items[i];
            if (attr && !attr_path(r, line, items[i], *attr, &x)) {
                tp_buf_free(&b);
                return false;
            }
            if (i)
                tp_buf_append(&b, ss.u.s.p, ss.u.s.n);
            if (x.t != TV_UNDEF && !tpl_str_append(&b, x)) {
                tp_buf_free(&b);
                return rfail(r, line, "filter 'join': value nested too deeply");
            }
        }
        *out = buf_to_str(r, &b);
        return check_mem(r, line);
    }
    case F_FIRST:
    case F_LAST: {
        if (!args_check(r, line, a, 0, NULL, what))
            return false;
        const tv *items;
        size_t n;
        if (!iter_items(r, line, v, &items, &n))
            return false;
        *out = n ? items[id == F_FIRST ? 0 : n - 1] : undef_named(nm, strlen(nm));
        return true;
    }
    case F_DEFAULT:
    case F_D: {
        static const char *const kn[] = {"default_value", "boolean", NULL};
        if (!args_check(r, line, a, 2, kn, what))
            return false;
        const tv *dv = arg(a, 0, "default_value"), *bo = arg(a, 1, "boolean");
        bool use = v.t == TV_UNDEF || (bo && tpl_truthy(*bo) && !tpl_truthy(v));
        *out = use ? (dv ? *dv : tv_str("", 0)) : v;
        return true;
    }
    case F_ITEMS: {
        if (!args_check(r, line, a, 0, NULL, what))
            return false;
        if (v.t == TV_UNDEF) {
            *out = mklist(r, 0);
            return check_mem(r, line);
        }
        if (v.t != TV_DICT)
            return rfail(r, line, "filter 'items' needs a mapping, got %s value", type_label(v));
        tv l = mklist(r, v.u.d->n);
        if (!check_mem(r, line))
            return false;
        for (size_t i = 0; i < v.u.d->n; i++) {
            tv p = mklist(r, 2);
            if (!check_mem(r, line))
                return false;
            p.u.l->tuple = true;
            p.u.l->items[0] = v.u.d->keys[i];
            p.u.l->items[1] = v.u.d->vals[i];
            l.u.l->items[i] = p;
        }
        *out = l;
        return true;
    }
    case F_SELECTATTR:
    case F_REJECTATTR:
    case F_SELECT:
    case F_REJECT:
        return filter_select(r, f, fn, id, v, a, out);
    case F_MAP:
        return filter_map(r, f, fn, v, a, out);
    case F_LIST: {
        if (!args_check(r, line, a, 0, NULL, what))
            return false;
        const tv *items;
        size_t n;
        if (!iter_items(r, line, v, &items, &n))
            return false;
        tv l = mklist(r, n);
        if (!check_mem(r, line))
            return false;
        if (n)
            memcpy(l.u.l->items, items, n * sizeof(tv));
        *out = l;
        return true;
    }
    case F_INT: {
        static const char *const kn[] = {"default", "base", NULL};
        if (!args_check(r, line, a, 2, kn, what))
            return false;
        const tv *bs = arg(a, 1, "base");
        int64_t base = bs && is_intlike(*bs) ? as_int(*bs) : 10;
        if (v.t == TV_UNDEF)
            return undef_fail(r, line, v, "cannot convert an undefined value with |int");
        if (base < 2 || base > 36)
            base = 10;
        return to_int_value(r, line, v, arg(a, 0, "default"), base, out);
    }
    case F_FLOAT: {
        static const char *const kn[] = {"default", NULL};
        if (!args_check(r, line, a, 1, kn, what))
            return false;
        const tv *d = arg(a, 0, "default");
        tv dv = d ? *d : tv_float(0.0);
        if (v.t == TV_UNDEF)
            return undef_fail(r, line, v, "cannot convert an undefined value with |float");
        if (is_number(v)) {
            *out = tv_float(as_f(v));
        } else if (v.t == TV_BIGINT) {
            *out = tv_float(strtod(v.u.s.p, NULL));
        } else if (v.t == TV_STR) {
            tv s = strip_str(v, 3, NULL);
            char buf[128];
            if (s.u.s.n == 0 || s.u.s.n >= sizeof buf) {
                *out = dv;
                return true;
            }
            memcpy(buf, s.u.s.p, s.u.s.n);
            buf[s.u.s.n] = 0;
            char *e;
            double x = strtod(buf, &e);
            *out = *e == 0 ? tv_float(x) : dv;
        } else {
            *out = dv;
        }
        return true;
    }
    case F_ABS:
        if (!args_check(r, line, a, 0, NULL, what))
            return false;
        if (v.t == TV_FLOAT)
            *out = tv_float(fabs(v.u.f));
        else if (is_intlike(v)) {
            if (as_int(v) == INT64_MIN)
                return rfail(r, line, "integer overflow");
            *out = tv_int(as_int(v) < 0 ? -as_int(v) : as_int(v));
        } else
            return rfail(r, line, "filter 'abs' needs a number, got %s value", type_label(v));
        return true;
    case F_UNIQUE: {
        static const char *const kn[] = {"case_sensitive", "attribute", NULL};
        if (!args_check(r, line, a, 2, kn, what))
            return false;
        const tv *cs = arg(a, 0, "case_sensitive"), *attr = arg(a, 1, "attribute");
        bool csb = cs && tpl_truthy(*cs);
        const tv *items;
        size_t n;
        if (!iter_items(r, line, v, &items, &n))
            return false;
        vlist l = {0}, keys = {0};
        for (size_t i = 0; i < n; i++) {
            tv k = items[i];
            if (attr && !attr_path(r, line, items[i], *attr, &k))
                return false;
            if (!sort_key_prep(r, line, k, csb, &k))
                return false;
            if (!tpl_is_hashable(k))
                return rfail(r, line, "filter 'unique': %s value is unhashable", type_label(k));
            bool seen = false;
            for (size_t j = 0; j < keys.n && !seen; j++)
                seen = tpl_equal(keys.v[j], k);
            if (!seen && (!vl_push(r, &keys, k) || !vl_push(r, &l, items[i])))
                return check_mem(r, line);
        }
        *out = vl_list(r, &l);
        return check_mem(r, line);
    }
    case F_REVERSE: {
        if (!args_check(r, line, a, 0, NULL, what))
            return false;
        if (v.t == TV_STR) {
            tv step = tv_int(-1);
            return do_slice(r, line, v, NULL, NULL, &step, out);
        }
        const tv *items;
        size_t n;
        if (!iter_items(r, line, v, &items, &n))
            return false;
        tv l = mklist(r, n);
        if (!check_mem(r, line))
            return false;
        for (size_t i = 0; i < n; i++)
            l.u.l->items[i] = items[n - 1 - i];
        *out = l;
        return true;
    }
    case F_SORT:
    case F_DICTSORT: {
        bool ds = id == F_DICTSORT;
        static const char *const kn_sort[] = {"reverse", "case_sensitive", "attribute", NULL};
        static const char *const kn_ds[] = {"case_sensitive", "by", "reverse", NULL};
        if (!args_check(r, line, a, 3, ds ? kn_ds : kn_sort, what))
            return false;
        const tv *rev = arg(a, ds ? 2 : 0, "reverse"), *cs = arg(a, ds ? 0 : 1, "case_sensitive");
        const tv *attr = ds ? NULL : arg(a, 2, "attribute"), *by = ds ? arg(a, 1, "by") : NULL;
        bool csb = cs && tpl_truthy(*cs), revb = rev && tpl_truthy(*rev);
        const tv *items;
        size_t n;
        tv src = v;
        if (ds) {
            if (v.t != TV_DICT)
                return rfail(r, line, "filter 'dictsort' needs a mapping, got %s value",
                             type_label(v));
            tpl_node dummy = *fn;
            dummy.builtin = F_ITEMS;
            args_t none = {0};
            if (!apply_filter_args(r, f, &dummy, v, &none, &src))
                return false;
        }
        if (!iter_items(r, line, src, &items, &n))
            return false;
        tv *keys = tpl_alloc(&r->a, (n + 1) * sizeof(tv));
        if (!keys)
            return check_mem(r, line);
        bool by_value =
            by && by->t == TV_STR && by->u.s.n == 5 && memcmp(by->u.s.p, "value", 5) == 0;
        for (size_t i = 0; i < n; i++) {
            tv k = items[i];
            if (ds)
                k = items[i].u.l->items[by_value ? 1 : 0];
            else if (attr && !attr_path(r, line, items[i], *attr, &k))
                return false;
            if (!sort_key_prep(r, line, k, csb, &keys[i]))
                return false;
        }
        return sort_values(r, line, items, n, keys, revb, out);
    }
    case F_ROUND: {
        static const char *const kn[] = {"precision", "method", NULL};
        if (!args_check(r, line, a, 2, kn, what))
            return false;
        if (!is_number(v))
            return rfail(r, line, "filter 'round' needs a number, got %s value", type_label(v));
        const tv *pr = arg(a, 0, "precision"), *me = arg(a, 1, "method");
        int64_t p = pr && is_intlike(*pr) ? as_int(*pr) : 0;
        if (p < -20 || p > 20)
            return rfail(r, line, "filter 'round': precision out of range");
        double x = as_f(v), m = pow(10.0, (double)p), res;
        const char *method = me && me->t == TV_STR ? me->u.s.p : "common";
        if (strncmp(method, "ceil", 4) == 0)
            res = ceil(x * m) / m;
        else if (strncmp(method, "floor", 5) == 0)
            res = floor(x * m) / m;
        else if (strncmp(method, "common", 6) == 0) {
            if (v.t != TV_FLOAT) { /* Python's round(int, n) stays an int */
                *out = tv_int(as_int(v));
                return true;
            }
            /* Python rounds the exact binary value half-to-even, as printf does */
            if (p >= 0) {
                char num[400];
                snprintf(num, sizeof num, "%.*f", (int)p, x);
                res = strtod(num, NULL);
            } else {
                res = nearbyint(x * m) / m;
            }
        } else
            return rfail(r, line, "filter 'round': method must be common, ceil or floor");
        *out = tv_float(res);
        return true;
    }
    case F_MAX:
    case F_MIN: {
        static const char *const kn[] = {"case_sensitive", "attribute", NULL};
        if (!args_check(r, line, a, 2, kn, what))
            return false;
        const tv *cs = arg(a, 0, "case_sensitive"), *attr = arg(a, 1, "attribute");
        const tv *items;
        size_t n;
        if (!iter_items(r, line, v, &items, &n))
            return false;
        if (n == 0) {
            *out = undef_named(nm, strlen(nm));
            return true;
        }
        size_t best = 0;
        tv bk = tv_undef();
        for (size_t i = 0; i < n; i++) {
            tv k = items[i];
            if (attr && !attr_path(r, line, items[i], *attr, &k))
                return false;
            if (!sort_key_prep(r, line, k, cs && tpl_truthy(*cs), &k))
                return false;
            if (i == 0) {
                bk = k;
                continue;
            }
            int c;
            if (!compare(r, line, k, bk, &c, "<"))
                return false;
            if ((id == F_MAX && c == 1) || (id == F_MIN && c == -1)) {
                best = i;
                bk = k;
            }
        }
        *out = items[best];
        return true;
    }
    case F_SUM: {
        static const char *const kn[] = {"attribute", "start", NULL};
        if (!args_check(r, line, a, 2, kn, what))
            return false;
        const tv *attr = arg(a, 0, "attribute"), *st = arg(a, 1, "start");
        const tv *items;
        size_t n;
        if (!iter_items(r, line, v, &items, &n))
            return false;
        tv acc = st ? *st : tv_int(0);
        for (size_t i = 0; i < n; i++) {
            tv x = items[i];
            if (attr && !attr_path(r, line, items[i], *attr, &x))
                return false;
            if (!binop(r, line, OP_ADD, acc, x, &acc))
                return false;
        }
        *out = acc;
        return true;
    }
    case F_INDENT: {
        static const char *const kn[] = {"width", "first", "blank", NULL};
        if (!args_check(r, line, a, 3, kn, what))
            return false;
        const tv *w = arg(a, 0, "width"), *fi = arg(a, 1, "first"), *bl = arg(a, 2, "blank");
        tv pad = tv_str("    ", 4);
        if (w && w->t == TV_STR)
            pad = *w;
        else if (w && is_intlike(*w)) {
            int64_t k = as_int(*w);
            if (k < 0 || k > 1000)
                return rfail(r, line, "filter 'indent': width out of range");
            if (!repeat(r, line, tv_str(" ", 1), k, &pad))
                return false;
        }
        if (v.t == TV_UNDEF)
            return undef_fail(r, line, v, "cannot indent an undefined value");
        if (v.t != TV_STR) /* Jinja2 appends "\n" to the value: a TypeError for non-strings */
            return rfail(r, line, "filter 'indent' needs a string, got %s value", type_label(v));
        /* Jinja2: lines = (s + "\n").splitlines(); indent every line but the first (and
         * empty ones unless blank), join with "\n"; first= indents the first line too */
        tv lines;
        tv s = v;
        if (!concat_str(r, line, v, tv_str("\n", 1), &s))
            return false;
        if (!str_splitlines(r, line, s, &lines))
            return false;
        tp_buf b = {0};
        bool first = fi && tpl_truthy(*fi), blank = bl && tpl_truthy(*bl);
        if (first)
            tp_buf_append(&b, pad.u.s.p, pad.u.s.n);
        for (size_t i = 0; i < lines.u.l->n; i++) {
            tv ln = lines.u.l->items[i];
            if (i) {
                tp_buf_append(&b, "\n", 1);
                if (blank || ln.u.s.n)
                    tp_buf_append(&b, pad.u.s.p, pad.u.s.n);
            }
            tp_buf_append(&b, ln.u.s.p, ln.u.s.n);
        }
        *out = buf_to_str(r, &b);
        return check_mem(r, line);
    }
    case F_ESCAPE:
    case F_E: {
        if (!args_check(r, line, a, 0, NULL, what))
            return false;
        tv s;
        if (!to_str(r, line, v, &s))
            return false;
        tp_buf b = {0};
        for (size_t i = 0; i < s.u.s.n; i++) {
            char c = s.u.s.p[i];
            switch (c) {
            case '&':
                tp_buf_puts(&b, "&amp;");
                break;
            case '<':
                tp_buf_puts(&b, "&lt;");
                break;
            case '>':
                tp_buf_puts(&b, "&gt;");
                break;
            case '"':
                tp_buf_puts(&b, "&#34;");
                break;
            case '\'':
                tp_buf_puts(&b, "&#39;");
                break;
            default:
                tp_buf_append(&b, &c, 1);
            }
        }
        *out = buf_to_str(r, &b);
        return check_mem(r, line);
    }
    case F_WORDCOUNT: { /* runs of Python's \\w: letters, numbers, underscore */
        if (!args_check(r, line, a, 0, NULL, what))
            return false;
        tv s;
        if (!to_str(r, line, v, &s))
            return false;
        int64_t words = 0;
        bool in_word = false;
        size_t i = 0;
        while (i < s.u.s.n) {
            uint32_t cp;
            i += tpl_utf8_next(s.u.s.p + i, s.u.s.n - i, &cp);
            utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
            bool w = cp == '_' || (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) ||
                     (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO);
            if (w && !in_word)
                words++;
            in_word = w;
        }
        *out = tv_int(words);
        return true;
    }
    case F_ATTR: {
        if (a->npos != 1 || a->pos[0].t != TV_STR)
            return rfail(r, line, "filter 'attr' needs an attribute name");
        return get_attr(r, line, v, a->pos[0].u.s.p, a->pos[0].u.s.n,
                        tpl_method_id(a->pos[0].u.s.p, a->pos[0].u.s.n), out);
    }
    case F_FORMAT: { /* Jinja2: str(value) % (args or kwargs) */
        if (a->npos && a->nkw)
            return rfail(r, line,
                         "filter 'format' takes positional or keyword arguments, not both");
        if (a->nkw)
            return rfail(r, line,
                         "filter 'format' with keyword arguments ('%%(name)s') is not "
                         "supported");
        tv fmt;
        if (!to_str(r, line, v, &fmt))
            return false;
        tv args = mklist(r, a->npos);
        if (!check_mem(r, line))
            return false;
        args.u.l->tuple = true;
        if (a->npos)
            memcpy(args.u.l->items, a->pos, a->npos * sizeof(tv));
        return percent_format(r, line, fmt, args, out);
    }
    case F_BATCH: {
        static const char *const kn[] = {"linecount", "fill_with", NULL};
        if (!args_check(r, line, a, 2, kn, what))
            return false;
        const tv *lc = arg(a, 0, "linecount"), *fill = arg(a, 1, "fill_with");
        if (!lc || !is_intlike(*lc) || as_int(*lc) <= 0)
            return rfail(r, line, "filter 'batch' needs a positive line count");
        size_t k = (size_t)as_int(*lc);
        const tv *items;
        size_t n;
        if (!iter_items(r, line, v, &items, &n))
            return false;
        size_t nb = (n + k - 1) / k;
        tv l = mklist(r, nb);
        if (!check_mem(r, line))
            return false;
        for (size_t b = 0; b < nb; b++) {
            size_t cnt = b + 1 < nb ? k : n - b * k;
            bool pad = fill && fill->t != TV_NONE && cnt < k;
            tv row = mklist(r, pad ? k : cnt);
            if (!check_mem(r, line))
                return false;
            for (size_t i = 0; i < row.u.l->n; i++)
                row.u.l->items[i] = i < cnt ? items[b * k + i] : *fill;
            l.u.l->items[b] = row;
        }
        *out = l;
        return true;
    }
    default:
        return rfail(r, line, "unsupported filter '%s'", nm);
    }
}

static bool apply_filter(R *r, frame *f, const tpl_node *fn, tv v, tv *out) {
    if (fn->builtin < 0) /* allowed to compile inside an if, fails when reached */
        return rfail(r, fn->line, "unsupported filter '%s'", fn->name);
    args_t a;
    if (!eval_args(r, f, fn, &a))
        return false;
    return apply_filter_args(r, f, fn, v, &a, out);
}

/* ---- expressions ---- */

static bool eval_inner(R *r, frame *f, const tpl_node *n, tv *out) {
    int line = n->line;
    switch (n->kind) {
    case N_CONST:
        *out = n->v;
        return true;
    case N_NAME:
        *out = lookup(r, f, n->name, n->name_len);
        return true;
    case N_ATTR: {
        tv o;
        if (!eval(r, f, n->a, &o))
            return false;
        return get_attr(r, line, o, n->name, n->name_len, n->builtin, out);
    }
    case N_ITEM: {
        tv o, k;
        if (!eval(r, f, n->a, &o) || !eval(r, f, n->b, &k))
            return false;
        return get_item(r, line, o, k, out);
    }
    case N_SLICE: {
        tv o, b, c, d;
        if (!eval(r, f, n->a, &o))
            return false;
        if (n->b && !eval(r, f, n->b, &b))
            return false;
        if (n->c && !eval(r, f, n->c, &c))
            return false;
        if (n->d && !eval(r, f, n->d, &d))
            return false;
        return do_slice(r, line, o, n->b ? &b : NULL, n->c ? &c : NULL, n->d ? &d : NULL, out);
    }
    case N_CALL: {
        const tpl_node *cal = n->a;
        if (cal->kind == N_ATTR) {
            tv o;
            if (!eval(r, f, cal->a, &o))
                return false;
            if (o.t != TV_UNDEF && has_method(o, cal->builtin))
                return call_method(r, f, n, o, cal->builtin, cal->name, out);
            tv m;
            if (!get_attr(r, line, o, cal->name, cal->name_len, cal->builtin, &m))
                return false;
            return call_value(r, f, n, m, out);
        }
        tv c;
        if (!eval(r, f, cal, &c))
            return false;
        return call_value(r, f, n, c, out);
    }
    case N_FILTER: {
        tv v;
        if (!eval(r, f, n->a, &v))
            return false;
        return apply_filter(r, f, n, v, out);
    }
    case N_TEST: {
        tv v;
        if (n->builtin < 0)
            return rfail(r, line, "unsupported test '%s'", n->name);
        if (!eval(r, f, n->a, &v))
            return false;
        args_t a;
        if (!eval_args(r, f, n, &a))
            return false;
        bool res;
        if (!apply_test(r, line, n->builtin, v, &a, &res))
            return false;
        *out = tv_bool(n->negate ? !res : res);
        return true;
    }
    case N_UNARY: {
        tv v;
        if (!eval(r, f, n->a, &v))
            return false;
        if (n->op == OP_NOT) {
            *out = tv_bool(!tpl_truthy(v));
            return true;
        }
        if (v.t == TV_UNDEF)
            return undef_fail(r, line, v, "cannot negate an undefined value");
        if (v.t == TV_FLOAT)
            *out = tv_float(n->op == OP_NEG ? -v.u.f : v.u.f);
        else if (is_intlike(v)) {
            if (n->op == OP_NEG && as_int(v) == INT64_MIN)
                return rfail(r, line, "integer overflow");
            *out = tv_int(n->op == OP_NEG ? -as_int(v) : as_int(v));
        } else
            return rfail(r, line, "bad operand type for unary '%s': %s",
                         n->op == OP_NEG ? "-" : "+", type_label(v));
        return true;
    }
    case N_BIN: {
        tv a, b;
        if (!eval(r, f, n->a, &a) || !eval(r, f, n->b, &b))
            return false;
        return binop(r, line, n->op, a, b, out);
    }
    case N_AND:
    case N_OR: {
        tv a;
        if (!eval(r, f, n->a, &a))
            return false;
        bool t = tpl_truthy(a);
        if ((n->kind == N_AND && !t) || (n->kind == N_OR && t)) {
            *out = a;
            return true;
        }
        return eval(r, f, n->b, out);
    }
    case N_COND: {
        tv c;
        if (!eval(r, f, n->a, &c))
            return false;
        if (tpl_truthy(c))
            return eval(r, f, n->b, out);
        if (n->c)
            return eval(r, f, n->c, out);
        *out = tv_undef();
        return true;
    }
    case N_LIST:
    case N_TUPLE: {
        tv l = mklist(r, n->n_kids);
        if (!check_mem(r, line))
            return false;
        l.u.l->tuple = n->kind == N_TUPLE;
        for (size_t i = 0; i < n->n_kids; i++)
            if (!eval(r, f, n->kids[i], &l.u.l->items[i]))
                return false;
        *out = l;
        return true;
    }
    case N_DICT: {
        tpl_dict *d = tpl_dict_new(&r->a, n->n_kids / 2 + 1);
        if (!d)
            return check_mem(r, line);
        for (size_t i = 0; i + 1 < n->n_kids; i += 2) {
            tv k, v;
            if (!eval(r, f, n->kids[i], &k) || !eval(r, f, n->kids[i + 1], &v))
                return false;
            if (!tpl_is_hashable(k) || k.t == TV_UNDEF)
                return rfail(r, line, "%s value cannot be a dict key", type_label(k));
            if (!tpl_dict_set(&r->a, d, k, v))
                return check_mem(r, line);
        }
        out->t = TV_DICT;
        out->aux = 0;
        out->u.d = d;
        return true;
    }
    default:
        return rfail(r, line, "internal error: not an expression");
    }
}

static bool eval(R *r, frame *f, const tpl_node *n, tv *out) {
    if (++r->depth > TPL_MAX_DEPTH) {
        r->depth--;
        return rfail(r, n->line, "expression nested too deeply");
    }
    bool ok = eval_inner(r, f, n, out);
    r->depth--;
    if (ok && r->a.failed)
        return check_mem(r, n->line);
    return ok;
}

/* ---- statements ---- */

static bool out_value(R *r, int line, tv v) {
    if (v.t == TV_STR)
        tp_buf_append(r->out, v.u.s.p, v.u.s.n);
    else if (v.t != TV_UNDEF && !tpl_str_append(r->out, v))
        return rfail(r, line, "value nested too deeply to print");
    if (r->out->oom)
        return rfail_oom(r, line, " while writing the output");
    if (r->out->len > r->prm.max_output)
        return rfail(r, line, "output larger than the limit (%zu bytes)", r->prm.max_output);
    return true;
}

static bool assign(R *r, frame *f, const tpl_node *target, tv v) {
    int line = target->line;
    if (target->kind == N_NAME) {
        if (!frame_set(r, f, target->name, target->name_len, v))
            return check_mem(r, line);
        return true;
    }
    if (target->kind == N_ATTR) {
        tv ns = lookup(r, f, target->a->name, target->a->name_len);
        if (ns.t != TV_NS)
            return rfail(r, line, "cannot set attribute '%s' on '%s': it is not a namespace()",
                         target->name, target->a->name);
        if (!tpl_dict_set(&r->a, ns.u.d, tv_str(target->name, target->name_len), v))
            return check_mem(r, line);
        return true;
    }
    /* tuple unpacking */
    const tv *items;
    size_t n;
    if (v.t == TV_DICT || v.t == TV_LIST || v.t == TV_STR) {
        if (!iter_items(r, line, v, &items, &n))
            return false;
    } else {
        return rfail(r, line, "cannot unpack %s value", type_label(v));
    }
    if (n != target->n_kids)
        return rfail(r, line, "cannot unpack %zu value%s into %zu variables", n, n == 1 ? "" : "s",
                     target->n_kids);
    for (size_t i = 0; i < n; i++)
        if (!assign(r, f, target->kids[i], items[i]))
            return false;
    return true;
}

static int exec_for(R *r, frame *f, const tpl_node *n) {
    int line = n->line;
    tv it;
    if (!eval(r, f, n->a, &it))
        return X_ERR;
    const tv *items;
    size_t cnt;
    if (!iter_items(r, line, it, &items, &cnt))
        return X_ERR;
    return run_loop(r, f, n, items, cnt, 1);
}

/* The loop proper over items (also the body of a recursive loop(...) call, one level
 * deeper). */
static int run_loop(R *r, frame *f, const tpl_node *n, const tv *items, size_t cnt, int depth) {
    int line = n->line;
    const tpl_node *target = n->kids[0];
    frame *iter = frame_new(r, f);
    if (!iter)
        return check_mem(r, line) ? X_ERR : X_ERR;
    if (n->d) {
        /* for x in y if cond: filter first, loop.* counts the kept items */
        vlist kept = {0};
        for (size_t i = 0; i < cnt; i++) {
            iter->n = 0;
            if (!assign(r, iter, target, items[i]))
                return X_ERR;
            tv c;
            if (!eval(r, iter, n->d, &c))
                return X_ERR;
            if (tpl_truthy(c) && !vl_push(r, &kept, items[i]))
                return check_mem(r, line), X_ERR;
        }
        items = kept.v;
        cnt = kept.n;
    }
    tpl_loop *lp = tpl_alloc(&r->a, sizeof *lp);
    if (!lp)
        return check_mem(r, line), X_ERR;
    lp->items = items;
    lp->n = cnt;
    lp->index0 = 0;
    lp->depth = depth; /* always 1 unless the loop is recursive */
    lp->has_changed = false;
    lp->node = n;
    lp->outer = f;
    tv lv;
    lv.t = TV_LOOP;
    lv.aux = 0;
    lv.u.loop = lp;
    r->loop_depth++;
    /* Jinja2 runs the else block unless some iteration reached the end of the body: a
     * `continue` or `break` skips the point where its compiled loop clears the flag. */
    bool completed = false;
    for (size_t i = 0; i < cnt; i++) {
        if (++r->steps > TPL_MAX_STEPS) {
            r->loop_depth--;
            return rfail(r, line, "too many loop iterations (limit %llu)",
                         (unsigned long long)TPL_MAX_STEPS),
                   X_ERR;
        }
        lp->index0 = i;
        iter->n = 0; /* a fresh scope per iteration */
        if (!scope_enter(r, iter, n->b) || !frame_set(r, iter, "loop", 4, lv) ||
            !assign(r, iter, target, items[i])) {
            r->loop_depth--;
            check_mem(r, line);
            return X_ERR;
        }
        int x = exec(r, iter, n->b);
        if (x == X_ERR) {
            r->loop_depth--;
            return X_ERR;
        }
        if (x == X_OK)
            completed = true;
        if (x == X_BREAK)
            break;
    }
    r->loop_depth--;
    if (!completed && n->c) {
        frame *ef = frame_new(r, f); /* the else block is an inner scope too */
        if (!ef || !scope_enter(r, ef, n->c))
            return check_mem(r, line), X_ERR;
        return exec(r, ef, n->c);
    }
    return X_OK;
}

static int exec(R *r, frame *f, const tpl_node *n) {
    if (r->failed)
        return X_ERR;
    switch (n->kind) {
    case N_BODY: {
        if (++r->depth > TPL_MAX_DEPTH) {
            r->depth--;
            return rfail(r, n->line, "blocks nested too deeply"), X_ERR;
        }
        int x = X_OK;
        for (size_t i = 0; i < n->n_kids && x == X_OK; i++)
            x = exec(r, f, n->kids[i]);
        r->depth--;
        return x;
    }
    case N_TEXT:
        tp_buf_append(r->out, n->v.u.s.p, n->v.u.s.n);
        if (r->out->oom)
            return rfail_oom(r, n->line, " while writing the output"), X_ERR;
        if (r->out->len > r->prm.max_output)
            return rfail(r, n->line, "output larger than the limit (%zu bytes)", r->prm.max_output),
                   X_ERR;
        return X_OK;
    case N_OUT: {
        tv v;
        if (!eval(r, f, n->a, &v) || !out_value(r, n->line, v))
            return X_ERR;
        return X_OK;
    }
    case N_IF: {
        tv c;
        if (!eval(r, f, n->a, &c))
            return X_ERR;
        if (tpl_truthy(c))
            return exec(r, f, n->b);
        if (n->c)
            return exec(r, f, n->c);
        return X_OK;
    }
    case N_FOR:
        return exec_for(r, f, n);
    case N_SET: {
        tv v;
        if (!eval(r, f, n->b, &v) || !assign(r, f, n->a, v))
            return X_ERR;
        return X_OK;
    }
    case N_SETBLOCK:
    case N_FILTERBLOCK: {
        tp_buf body = {0};
        tp_buf *saved = r->out;
        r->out = &body;
        /* the body is an inner scope: its sets and macros stay inside (as in Jinja2) */
        frame *inner = frame_new(r, f);
        int x = inner && scope_enter(r, inner, n->b) ? exec(r, inner, n->b) : X_ERR;
        if (!inner)
            check_mem(r, n->line);
        r->out = saved;
        if (x == X_ERR) {
            tp_buf_free(&body);
            return X_ERR;
        }
        tv s = buf_to_str(r, &body);
        if (!check_mem(r, n->line))
            return X_ERR;
        if (n->kind == N_SETBLOCK) {
            if (!frame_set(r, f, n->name, n->name_len, s))
                return check_mem(r, n->line), X_ERR;
            return x;
        }
        /* apply the filter chain, innermost first */
        const tpl_node *chain[64];
        size_t k = 0;
        for (const tpl_node *c = n->a; c && c->kind == N_FILTER && k < 64; c = c->a)
            chain[k++] = c;
        tv v = s;
        while (k-- > 0)
            if (!apply_filter(r, f, chain[k], v, &v))
                return X_ERR;
        if (!out_value(r, n->line, v))
            return X_ERR;
        return x;
    }
    case N_CALLBLOCK: {
        /* the body becomes a macro named caller, passed to the called macro */
        macro_closure *mc = tpl_alloc(&r->a, sizeof *mc);
        if (!mc)
            return check_mem(r, n->line), X_ERR;
        mc->m = n;
        mc->f = f;
        tv cv;
        cv.t = TV_MACRO;
        cv.aux = 0;
        cv.u.ptr = mc;
        const tpl_node *saved_call = r->caller_call;
        tv saved = r->caller;
        r->caller_call = n->a;
        r->caller = cv;
        tv v;
        bool ok = eval(r, f, n->a, &v);
        r->caller_call = saved_call;
        r->caller = saved;
        if (!ok || !out_value(r, n->line, v))
            return X_ERR;
        return X_OK;
    }
    case N_WITH: {
        size_t np = n->n_kids / 2;
        tv *vals = np ? tpl_alloc(&r->a, np * sizeof(tv)) : NULL;
        frame *inner = frame_new(r, f);
        if ((np && !vals) || !inner || !scope_enter(r, inner, n->b))
            return check_mem(r, n->line), X_ERR;
        for (size_t i = 0; i < np; i++) /* all values first, in the outer scope */
            if (!eval(r, f, n->kids[2 * i + 1], &vals[i]))
                return X_ERR;
        for (size_t i = 0; i < np; i++)
            if (!assign(r, inner, n->kids[2 * i], vals[i]))
                return X_ERR;
        return exec(r, inner, n->b);
    }
    case N_MACRO: {
        macro_closure *mc = tpl_alloc(&r->a, sizeof *mc);
        if (!mc)
            return check_mem(r, n->line), X_ERR;
        mc->m = n;
        mc->f = f;
        tv mv;
        mv.t = TV_MACRO;
        mv.aux = 0;
        mv.u.ptr = mc;
        if (!frame_set(r, f, n->name, n->name_len, mv))
            return check_mem(r, n->line), X_ERR;
        return X_OK;
    }
    case N_BREAK:
        return X_BREAK;
    case N_CONTINUE:
        return X_CONTINUE;
    default:
        return rfail(r, n->line, "internal error: not a statement"), X_ERR;
    }
}

tp_template_render_params tp_template_default_render_params(void) {
    tp_template_render_params p;
    memset(&p, 0, sizeof p);
    return p;
}

tp_status tp_template_render(const tp_template *t, const tp_template_vars *const *vars,
                             size_t n_vars, const tp_template_render_params *params, char **out,
                             size_t *out_len, tp_error *err) {
    if (out)
        *out = NULL;
    if (out_len)
        *out_len = 0;
    if (!t || !out || (n_vars && !vars))
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_template_render: NULL argument");
    R r;
    memset(&r, 0, sizeof r);
    r.t = t;
    r.vars = vars;
    r.n_vars = n_vars;
    r.prm = params ? *params : tp_template_default_render_params();
    if (r.prm.max_output == 0)
        r.prm.max_output = TPL_DEFAULT_MAX_OUTPUT;
    r.a.limit = r.prm.max_memory ? r.prm.max_memory : TPL_MAX_ARENA;
    r.err = err;
    tp_buf buf = {0};
    r.out = &buf;
    frame *top = frame_new(&r, NULL);
    int x = top && scope_enter(&r, top, t->root) ? exec(&r, top, t->root) : X_ERR;
    if (!top || (x == X_ERR && !r.failed))
        check_mem(&r, 1);
    tpl_arena_free(&r.a);
    if (x == X_ERR || r.failed) {
        tp_buf_free(&buf);
        if (!r.failed)
            return tp_fail(err, TP_ERR_INTERNAL, "template render failed without a message");
        return r.st;
    }
    size_t len = buf.len;
    char *s = tp_buf_take(&buf);
    if (!s)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "template: out of memory for the output");
    *out = s;
    if (out_len)
        *out_len = len;
    return TP_OK;
}
