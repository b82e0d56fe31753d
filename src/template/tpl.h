/*
 * tpl.h — private to src/template/: the value type, the allocation arena, the AST and
 * the helpers shared by the lexer/parser (tpl_parse.c), the evaluator (tpl_eval.c), the
 * builtins (tpl_builtins.c) and the value code (tpl_value.c).
 *
 * Memory: every value and AST node lives in a tpl_arena (a list of chunks freed at once).
 * A compiled template owns one arena (the AST, never written after compile); a
 * tp_template_vars owns one (its values); each render has its own (every temporary). So
 * values are never freed one by one and never reference-counted: lists and dicts are
 * immutable once built, except namespace() objects, which own a growable dict.
 */
#ifndef TP_TPL_H
#define TP_TPL_H

#include "core/core.h"
#include "template/template.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- arena ---- */

typedef struct tpl_chunk tpl_chunk;
typedef struct tpl_arena {
    tpl_chunk *head;
    size_t total; /* bytes obtained from malloc so far */
    size_t limit; /* 0 = unlimited; past it allocations fail (reported as too much memory) */
    bool failed;
    bool oom; /* failed because malloc did (not the limit): TP_ERR_OUT_OF_MEMORY */
} tpl_arena;

void *tpl_alloc(tpl_arena *a, size_t n); /* 16-byte aligned, uninitialised; NULL on failure */
void *tpl_zalloc(tpl_arena *a, size_t n);
char *tpl_strndup(tpl_arena *a, const char *s, size_t n);
void tpl_arena_free(tpl_arena *a);

/* ---- values ---- */

typedef enum tpl_type {
    TV_UNDEF = 0, /* Jinja's lenient Undefined; s.p/s.n may hold a hint for messages */
    TV_NONE,
    TV_BOOL,
    TV_INT,
    TV_BIGINT, /* an integer literal beyond int64 from JSON: s holds its decimal text */
    TV_FLOAT,
    TV_STR,
    TV_LIST, /* also tuples (l->tuple) */
    TV_DICT,
    TV_NS,     /* namespace(): a mutable dict */
    TV_MACRO,  /* a {% macro %} */
    TV_FUNC,   /* a builtin global function (fn.id) */
    TV_METHOD, /* a builtin method bound to fn.self */
    TV_LOOP,   /* the loop variable of a for loop */
} tpl_type;

typedef struct tpl_list tpl_list;
typedef struct tpl_dict tpl_dict;
typedef struct tpl_node tpl_node;
typedef struct tpl_loop tpl_loop;
typedef struct tv tv;

struct tv {
    uint8_t t;
    uint8_t aux; /* TV_UNDEF: tpl_type+1 of the object a lookup missed on (0: a missing name),
                    | 0x80 when the missing key was not a string (an element, not attribute) */
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            const char *p;
            size_t n;
        } s;
        tpl_list *l;
        tpl_dict *d;
        const tpl_node *m;
        tpl_loop *loop;
        void *ptr; /* TV_MACRO: the macro closure (eval-private) */
        struct {
            int id;
            const char *name;
            tv *self;
        } fn;
    } u;
};

struct tpl_list {
    tv *items;
    size_t n;
    bool tuple;
};

struct tpl_dict {
    tv *keys;
    tv *vals;
    size_t n, cap;
};

struct tpl_loop {
    const tv *items; /* the (filtered) items iterated */
    size_t n;
    size_t index0;
    int depth;            /* 1 for the outermost loop */
    bool has_changed;     /* loop.changed(): a previous value was recorded */
    tv changed;           /* loop.changed(): the arguments of the last call, as a tuple */
    const tpl_node *node; /* the N_FOR (for recursive loop(...) calls) */
    void *outer;          /* the frame the loop runs in (eval-private) */
};

static inline tv tv_undef(void) {
    tv v;
    v.aux = 0;
    v.t = TV_UNDEF;
    v.u.s.p = NULL;
    v.u.s.n = 0;
    return v;
}
static inline tv tv_none(void) {
    tv v;
    v.aux = 0;
    v.t = TV_NONE;
    v.u.i = 0;
    return v;
}
static inline tv tv_bool(bool b) {
    tv v;
    v.aux = 0;
    v.t = TV_BOOL;
    v.u.i = 0;
    v.u.b = b;
    return v;
}
static inline tv tv_int(int64_t i) {
    tv v;
    v.aux = 0;
    v.t = TV_INT;
    v.u.i = i;
    return v;
}
static inline tv tv_float(double f) {
    tv v;
    v.aux = 0;
    v.t = TV_FLOAT;
    v.u.f = f;
    return v;
}
static inline tv tv_str(const char *p, size_t n) {
    tv v;
    v.aux = 0;
    v.t = TV_STR;
    v.u.s.p = p;
    v.u.s.n = n;
    return v;
}

/* New values in arena a (NULL/oom: the arena's failed flag is set and an empty value returned
 * only where noted; callers check a->failed at convenient points). */
tpl_list *tpl_list_new(tpl_arena *a, size_t n); /* n zeroed (TV_UNDEF) items */
tpl_dict *tpl_dict_new(tpl_arena *a, size_t cap);
/* Sets key (replacing an equal key): false on allocation failure. */
bool tpl_dict_set(tpl_arena *a, tpl_dict *d, tv key, tv val);
/* Lookup by string key / by value key; NULL when absent. */
const tv *tpl_dict_get_str(const tpl_dict *d, const char *k, size_t n);
const tv *tpl_dict_get(const tpl_dict *d, tv key);

/* Python semantics */
bool tpl_truthy(tv v);
bool tpl_equal(tv a, tv b);
const char *tpl_type_name(tv v); /* "str", "int", "list", "dict", "NoneType", ... */
bool tpl_is_hashable(tv v);

/* Python str(v) and repr(v) appended to b (str of a string is the string). Nesting beyond
 * TPL_MAX_DEPTH is reported via the return value (false). */
bool tpl_str_append(tp_buf *b, tv v);
bool tpl_repr_append(tp_buf *b, tv v);
void tpl_float_repr(char *out, size_t cap, double f); /* Python repr(float) */
/* json.dumps(v, ensure_ascii=False, indent=indent (<0: None), sort_keys, separators=(item_sep,
 * key_sep): NULL = Python's defaults). Returns false with a message in why (static string)
 * when v holds something JSON cannot encode. */
bool tpl_json_append(tp_buf *b, tv v, int indent, bool sort_keys, const char *item_sep,
                     const char *key_sep, const char **why);

/* JSON text -> values (exact number spelling). On error returns false and writes a message. */
bool tpl_from_json(tpl_arena *a, const char *json, size_t len, tv *out, char *msg, size_t msg_cap);
bool tpl_from_cjson(tpl_arena *a, const struct cJSON *j, tv *out, int depth);

/* Python's str.isspace() set (what strip()/split() remove). */
bool tpl_is_py_space(uint32_t cp);
/* Decodes one code point (invalid byte: returns it as cp, length 1). */
size_t tpl_utf8_next(const char *s, size_t n, uint32_t *cp);
size_t tpl_utf8_count(const char *s, size_t n); /* code points */

#define TPL_MAX_DEPTH 200 /* nesting of values, expressions, statements and macro calls */

/* ---- AST ---- */

typedef enum tpl_kind {
    /* expressions */
    N_CONST,  /* v */
    N_NAME,   /* name */
    N_ATTR,   /* a.name */
    N_ITEM,   /* a[b] */
    N_SLICE,  /* a[b:c:d] (b, c, d may be NULL) */
    N_CALL,   /* a(args..., kw=...) */
    N_FILTER, /* a | name(args) */
    N_TEST,   /* a is [not] name(args) */
    N_UNARY,  /* op a : not, -, + */
    N_BIN,    /* a op b */
    N_AND,
    N_OR,
    N_COND,  /* b if a else c */
    N_LIST,  /* [items] */
    N_TUPLE, /* (items) */
    N_DICT,  /* {k: v} : kids alternate key, value */
    /* statements */
    N_BODY,     /* a sequence of statements */
    N_TEXT,     /* literal output: s */
    N_OUT,      /* {{ a }} */
    N_IF,       /* a = cond, b = then body, c = else body (an N_IF for elif, or N_BODY) */
    N_FOR,      /* targets in names; a = iterable, b = body, c = else body, d = filter cond */
    N_SET,      /* names/target a (N_NAME, N_ATTR or N_TUPLE), b = value */
    N_SETBLOCK, /* name; b = body */
    N_MACRO,    /* name; params in kids (N_NAME with default in a), b = body */
    N_BREAK,
    N_CONTINUE,
    N_FILTERBLOCK, /* a = filter chain applied to a placeholder; b = body */
    N_WITH,        /* kids = target, value, target, value...; b = body */
    N_CALLBLOCK,   /* {% call(params) m(args) %}: a = the call; kids = params; b = body */
} tpl_kind;

typedef enum tpl_op {
    OP_ADD,
    OP_SUB,
    OP_MUL,
    OP_DIV,
    OP_FLOORDIV,
    OP_MOD,
    OP_POW,
    OP_CONCAT,
    OP_EQ,
    OP_NE,
    OP_LT,
    OP_LE,
    OP_GT,
    OP_GE,
    OP_IN,
    OP_NOTIN,
    OP_NOT,
    OP_NEG,
    OP_POS,
} tpl_op;

struct tpl_node {
    uint8_t kind;
    uint8_t op;
    bool negate; /* N_TEST: "is not" */
    int line;
    int builtin;      /* N_FILTER / N_TEST: builtin id resolved at compile time */
    const char *name; /* N_NAME, N_ATTR, N_FILTER, N_TEST, N_SET*, N_MACRO, N_CALL kw names */
    size_t name_len;
    tv v; /* N_CONST; N_TEXT (string) */
    tpl_node *a, *b, *c, *d;
    tpl_node **kids; /* args / items / statements / macro params */
    size_t n_kids;
    const char **kw_names; /* N_CALL/N_FILTER/N_TEST: keyword arg names (NULL for positional) */
    /* N_BODY that starts a scope: names that read as undefined at scope entry (Jinja2's
     * symbol analysis: assigned in this scope before any use, and used by no enclosing
     * scope, so the caller's variable of that name is hidden). */
    const char **shadow;
    size_t *shadow_len;
    size_t n_shadow;
};

struct tp_template_vars {
    tpl_arena arena;
    tpl_dict *d; /* name -> value */
};

struct tp_template {
    tpl_arena arena;
    tpl_node *root; /* N_BODY */
    char *name;
};

/* parse: source -> AST in t->arena (with the scope analysis filled in). Fills err
 * (TP_ERR_TEMPLATE) on failure. */
tp_status tpl_parse(tp_template *t, const char *src, size_t len, tp_error *err);

/* builtins (tpl_builtins.c): ids for filters/tests, -1 when unknown */
int tpl_filter_id(const char *name, size_t n);
int tpl_test_id(const char *name, size_t n);
int tpl_method_id(const char *name, size_t n); /* attribute names that are methods */

#endif /* TP_TPL_H */
