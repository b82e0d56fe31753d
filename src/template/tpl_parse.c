/*
 * tpl_parse.c — the Jinja lexer and parser: template text -> tokens -> AST.
 *
 * The lexer reproduces Python Jinja2's whitespace handling as transformers configures it:
 *   - newlines of the template are normalised to \n and one trailing newline is dropped
 *     (keep_trailing_newline=False);
 *   - trim_blocks: the first \n after a block or comment tag (%} / #}) is removed;
 *   - lstrip_blocks: spaces/tabs from the start of a line up to a block or comment tag are
 *     removed, when only whitespace precedes the tag on that line;
 *   - "{%-" / "-%}" (and for {{ }} / {# #}) strip all whitespace before / after the tag,
 *     "{%+" disables lstrip_blocks and "+%}" trim_blocks for that tag;
 *   - inside brackets, "}}" and "%}" do not end the tag (Jinja's balancing rule).
 * The parser follows Jinja2's grammar and operator precedence (jinja2/parser.py): filters
 * and tests bind to a unary operand (so `x|length - 1` is (x|length) - 1 and `-x|abs` is
 * abs(-x)), `not` is below comparisons, `~` between + and *.
 * Unknown filters, tests and tags are compile errors naming them.
 */
#include "template/tpl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    T_EOF,
    T_TEXT,
    T_VAR_BEGIN,
    T_VAR_END,
    T_BLOCK_BEGIN,
    T_BLOCK_END,
    T_NAME,
    T_STRING,
    T_INT,
    T_FLOAT,
    T_OP,
} tok_type;

typedef struct {
    uint8_t type;
    int line;
    const char *s; /* T_TEXT/T_STRING: processed text (arena); T_NAME/T_OP: source */
    size_t n;
    tv v; /* T_INT/T_FLOAT */
} tok;

typedef struct {
    tp_template *t;
    tpl_arena *a;
    const char *src;
    size_t n;
    tok *toks;
    size_t n_toks, cap_toks;
    size_t pos; /* parser position */
    int depth;
    int loop_depth;
    tp_error *err;
    bool failed;
    tp_status st;
} P;

static bool pfail(P *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool pfail(P *p, int line, const char *fmt, ...) {
    if (p->failed)
        return false;
    p->failed = true;
    p->st = TP_ERR_TEMPLATE;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    tp_fail(p->err, TP_ERR_TEMPLATE, "%s%stemplate syntax error, line %d: %s",
            p->t->name ? p->t->name : "", p->t->name ? ": " : "", line, msg);
    return false;
}

static bool oom(P *p) {
    if (!p->failed) {
        p->failed = true;
        p->st = TP_ERR_OUT_OF_MEMORY;
        tp_fail(p->err, TP_ERR_OUT_OF_MEMORY, "template: out of memory while compiling");
    }
    return false;
}

static bool push_tok(P *p, tok t) {
    if (p->n_toks == p->cap_toks) {
        size_t cap = p->cap_toks ? p->cap_toks * 2 : 256;
        tok *nt = tp_realloc(p->toks, cap * sizeof(tok));
        if (!nt)
            return oom(p);
        p->toks = nt;
        p->cap_toks = cap;
    }
    p->toks[p->n_toks++] = t;
    return true;
}

/* ---- lexer ---- */

static bool is_ws_at(const char *s, size_t n, size_t i, size_t *len) {
    uint32_t c;
    *len = tpl_utf8_next(s + i, n - i, &c);
    return tpl_is_py_space(c);
}

/* Length of text[0..n) after Python's rstrip(). */
static size_t rstrip_len(const char *s, size_t n) {
    size_t end = n;
    while (end > 0) {
        size_t st = end - 1;
        while (st > 0 && ((unsigned char)s[st] & 0xC0) == 0x80)
            st--;
        uint32_t c;
        tpl_utf8_next(s + st, end - st, &c);
        if (!tpl_is_py_space(c))
            break;
        end = st;
    }
    return end;
}

static int count_lines(const char *s, size_t n) {
    int k = 0;
    for (size_t i = 0; i < n; i++)
        k += s[i] == '\n';
    return k;
}

static bool emit_text(P *p, const char *s, size_t n, int line) {
    if (n == 0)
        return true;
    char *c = tpl_strndup(p->a, s, n);
    if (!c)
        return oom(p);
    tok t = {T_TEXT, line, c, n, tv_undef()};
    return push_tok(p, t);
}

/* Python's "unicode-escape" decoding of a string literal body. */
static bool unescape(P *p, const char *s, size_t n, int line, tok *out) {
    char *d = tpl_alloc(p->a, n + 1);
    if (!d)
        return oom(p);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\' || i + 1 >= n) {
            d[k++] = s[i];
            continue;
        }
        char c = s[++i];
        int hex_len = 0;
        switch (c) {
        case 'n':
            d[k++] = '\n';
            break;
        case 't':
            d[k++] = '\t';
            break;
        case 'r':
            d[k++] = '\r';
            break;
        case '\\':
            d[k++] = '\\';
            break;
        case '\'':
            d[k++] = '\'';
            break;
        case '"':
            d[k++] = '"';
            break;
        case 'a':
            d[k++] = '\a';
            break;
        case 'b':
            d[k++] = '\b';
            break;
        case 'f':
            d[k++] = '\f';
            break;
        case 'v':
            d[k++] = '\v';
            break;
        case '\n':
            break; /* line continuation */
        case 'x':
            hex_len = 2;
            break;
        case 'u':
            hex_len = 4;
            break;
        case 'U':
            hex_len = 8;
            break;
        default:
            if (c >= '0' && c <= '7') {
                uint32_t v = 0;
                int m = 0;
                while (m < 3 && i < n && s[i] >= '0' && s[i] <= '7') {
                    v = v * 8 + (uint32_t)(s[i] - '0');
                    i++;
                    m++;
                }
                i--;
                k += (size_t)tp_utf8_encode(v, d + k);
            } else {
                d[k++] = '\\';
                d[k++] = c;
            }
        }
        if (hex_len) {
            uint32_t v = 0;
            for (int m = 0; m < hex_len; m++) {
                size_t j = i + 1 + (size_t)m;
                char h = j < n ? s[j] : 0;
                int x = h >= '0' && h <= '9'   ? h - '0'
                        : h >= 'a' && h <= 'f' ? h - 'a' + 10
                        : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                               : -1;
                if (x < 0)
                    return pfail(p, line, "bad \\%c escape in a string literal", c);
                v = v * 16 + (uint32_t)x;
            }
            if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
                return pfail(p, line, "escape \\%c names an invalid code point", c);
            i += (size_t)hex_len;
            /* hex escapes may need more bytes than the escape text: \x80 -> 2 bytes < 4 */
            k += (size_t)tp_utf8_encode(v, d + k);
        }
    }
    d[k] = 0;
    out->s = d;
    out->n = k;
    return true;
}

static const char *const OPS2[] = {"//", "**", "==", "!=", ">=", "<=", NULL};
static const char OPS1[] = "+-/*%~[](){}><=.:|,;";

/* Lexes the inside of a tag starting at *ip until its end; kind 'v' / 'b'. Returns false on
 * error. On success *ip is past the end marker and its whitespace handling; *strip_after
 * tells whether the following text must be lstripped entirely, *trim_nl whether one
 * leading \n is removed (trim_blocks). */
static bool lex_tag(P *p, size_t *ip, int *line, char kind, bool *ends_with_nl) {
    const char *s = p->src;
    size_t n = p->n, i = *ip;
    int balance = 0;
    for (;;) {
        /* whitespace */
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' ||
                         s[i] == '\f' || s[i] == '\v')) {
            if (s[i] == '\n')
                (*line)++;
            i++;
        }
        if (i >= n)
            return pfail(p, *line, "unexpected end of template, expected '%s'",
                         kind == 'v' ? "}}" : "%}");
        if (balance == 0) {
            const char *end = kind == 'v' ? "}}" : "%}";
            bool minus = s[i] == '-' && i + 3 <= n && memcmp(s + i + 1, end, 2) == 0;
            bool plus = kind == 'b' && s[i] == '+' && i + 3 <= n && memcmp(s + i + 1, end, 2) == 0;
            bool plain = i + 2 <= n && memcmp(s + i, end, 2) == 0;
            if (minus || plus || plain) {
                tok t = {(uint8_t)(kind == 'v' ? T_VAR_END : T_BLOCK_END), *line, NULL, 0,
                         tv_undef()};
                if (!push_tok(p, t))
                    return false;
                i += plain ? 2 : 3;
                *ends_with_nl = false;
                if (minus) {
                    size_t l;
                    while (i < n && is_ws_at(s, n, i, &l)) {
                        *ends_with_nl = s[i] == '\n';
                        if (s[i] == '\n')
                            (*line)++;
                        i += l;
                    }
                } else if (plain && kind == 'b' && i < n && s[i] == '\n') {
                    /* trim_blocks */
                    i++;
                    (*line)++;
                    *ends_with_nl = true;
                }
                *ip = i;
                return true;
            }
        }
        char c = s[i];
        tok t = {T_OP, *line, s + i, 1, tv_undef()};
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
            size_t st = i;
            while (i < n && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                             (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
                i++;
            t.type = T_NAME;
            t.s = s + st;
            t.n = i - st;
        } else if (c >= '0' && c <= '9') {
            size_t st = i;
            bool is_float = false;
            while (i < n && ((s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
                i++;
            if (i + 1 < n && s[i] == '.' && s[i + 1] >= '0' && s[i + 1] <= '9') {
                is_float = true;
                i++;
                while (i < n && ((s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
                    i++;
            }
            if (i < n && (s[i] == 'e' || s[i] == 'E')) {
                size_t j = i + 1;
                if (j < n && (s[j] == '+' || s[j] == '-'))
                    j++;
                if (j < n && s[j] >= '0' && s[j] <= '9') {
                    is_float = true;
                    i = j;
                    while (i < n && ((s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
                        i++;
                }
            }
            char buf[80];
            size_t k = 0;
            for (size_t j = st; j < i && k < sizeof buf - 1; j++)
                if (s[j] != '_')
                    buf[k++] = s[j];
            buf[k] = 0;
            if (i - st >= sizeof buf - 1)
                return pfail(p, *line, "number literal too long");
            if (is_float) {
                t.type = T_FLOAT;
                t.v = tv_float(strtod(buf, NULL));
            } else {
                char *e;
                unsigned long long v = strtoull(buf, &e, 10);
                if (v > (unsigned long long)INT64_MAX || k > 19)
                    return pfail(p, *line, "integer literal %s is too large (unsupported)", buf);
                t.type = T_INT;
                t.v = tv_int((int64_t)v);
            }
            t.s = s + st;
            t.n = i - st;
        } else if (c == '\'' || c == '"') {
            size_t st = ++i;
            int l0 = *line;
            while (i < n && s[i] != c) {
                if (s[i] == '\\' && i + 1 < n) {
                    if (s[i + 1] == '\n')
                        (*line)++;
                    i++;
                }
                if (s[i] == '\n')
                    (*line)++;
                i++;
            }
            if (i >= n)
                return pfail(p, l0, "unterminated string literal");
            t.type = T_STRING;
            t.line = l0;
            if (!unescape(p, s + st, i - st, l0, &t))
                return false;
            i++;
        } else {
            size_t m = 0;
            for (int k = 0; OPS2[k]; k++)
                if (i + 2 <= n && memcmp(s + i, OPS2[k], 2) == 0)
                    m = 2;
            if (!m && strchr(OPS1, c) && c)
                m = 1;
            if (!m)
                return pfail(p, *line, "unexpected character '%c' in a tag", c);
            if (m == 1 && (c == '(' || c == '[' || c == '{'))
                balance++;
            if (m == 1 && (c == ')' || c == ']' || c == '}') && balance > 0)
                balance--;
            t.n = m;
            i += m;
        }
        if (!push_tok(p, t))
            return false;
    }
}

static bool lex(P *p) {
    const char *s = p->src;
    size_t n = p->n, i = 0;
    int line = 1;
    bool line_starting = true;
    while (i <= n) {
        /* find the next tag start */
        size_t j = i;
        char kind = 0;
        while (j + 1 < n) {
            if (s[j] == '{' && (s[j + 1] == '{' || s[j + 1] == '%' || s[j + 1] == '#')) {
                kind = s[j + 1];
                break;
            }
            j++;
        }
        if (!kind) {
            if (!emit_text(p, s + i, n - i, line))
                return false;
            break;
        }
        size_t text_len = j - i;
        char mod = (j + 2 < n && (s[j + 2] == '-' || s[j + 2] == '+')) ? s[j + 2] : 0;
        if (mod == '-') {
            text_len = rstrip_len(s + i, text_len);
        } else if (mod != '+' && kind != '{') {
            /* lstrip_blocks */
            size_t l_pos = 0;
            for (size_t k = text_len; k > 0; k--)
                if (s[i + k - 1] == '\n') {
                    l_pos = k;
                    break;
                }
            if ((l_pos > 0 || line_starting) && l_pos < text_len) {
                bool all_ws = true;
                size_t k = l_pos, l;
                while (k < text_len) {
                    if (!is_ws_at(s + i, text_len, k, &l)) {
                        all_ws = false;
                        break;
                    }
                    k += l;
                }
                if (all_ws)
                    text_len = l_pos;
            }
        }
        if (!emit_text(p, s + i, text_len, line))
            return false;
        line += count_lines(s + i, j - i);
        size_t k = j + 2 + (mod ? 1 : 0);
        bool nl = false;
        if (kind == '#') {
            /* comment: up to the first #} */
            size_t e = k;
            while (e + 1 < n && !(s[e] == '#' && s[e + 1] == '}'))
                e++;
            if (e + 1 >= n)
                return pfail(p, line, "unterminated comment");
            line += count_lines(s + k, e - k);
            bool minus = e > k && s[e - 1] == '-';
            bool plus = e > k && s[e - 1] == '+';
            e += 2;
            if (minus) {
                size_t l;
                while (e < n && is_ws_at(s, n, e, &l)) {
                    nl = s[e] == '\n';
                    line += s[e] == '\n';
                    e += l;
                }
            } else if (!plus && e < n && s[e] == '\n') {
                e++;
                line++;
                nl = true;
            }
            i = e;
            line_starting = nl;
            continue;
        }
        if (kind == '%') {
            /* {% raw %} ... {% endraw %} */
            size_t q = k;
            while (q < n && (s[q] == ' ' || s[q] == '\t' || s[q] == '\n'))
                q++;
            if (q + 3 <= n && memcmp(s + q, "raw", 3) == 0 &&
                (q + 3 == n || !((s[q + 3] >= 'a' && s[q + 3] <= 'z') || s[q + 3] == '_'))) {
                q += 3;
                while (q < n && (s[q] == ' ' || s[q] == '\t' || s[q] == '\n'))
                    q++;
                bool minus = q < n && s[q] == '-';
                if (q < n && s[q] == '-')
                    q++;
                /* Jinja2 accepts only "%}" or "-%}" here ("+%}" makes raw an unknown tag) */
                if (q + 2 > n || memcmp(s + q, "%}", 2) != 0)
                    return pfail(p, line, "malformed raw tag (expected '%%}' or '-%%}')");
                q += 2;
                bool raw_line_start = false; /* for lstrip_blocks before {% endraw %} */
                if (minus) {
                    size_t l;
                    while (q < n && is_ws_at(s, n, q, &l)) {
                        raw_line_start = s[q] == '\n';
                        q += l;
                    }
                }
                /* find {% endraw %} */
                size_t body = q, e = q;
                size_t end_tag = 0, after = 0;
                bool end_minus = false, end_plus = false, found = false;
                while (e + 1 < n) {
                    if (s[e] == '{' && s[e + 1] == '%') {
                        size_t r = e + 2;
                        bool m2 = r < n && s[r] == '-', p2 = r < n && s[r] == '+';
                        if (r < n && (s[r] == '-' || s[r] == '+'))
                            r++;
                        while (r < n && (s[r] == ' ' || s[r] == '\t' || s[r] == '\n'))
                            r++;
                        if (r + 6 <= n && memcmp(s + r, "endraw", 6) == 0) {
                            r += 6;
                            while (r < n && (s[r] == ' ' || s[r] == '\t' || s[r] == '\n'))
                                r++;
                            bool m3 = r < n && s[r] == '-', p3 = r < n && s[r] == '+';
                            if (r < n && (s[r] == '-' || s[r] == '+'))
                                r++;
                            if (r + 2 <= n && memcmp(s + r, "%}", 2) == 0) {
                                end_tag = e;
                                after = r + 2;
                                end_minus = m2;
                                end_plus = p2;
                                found = true;
                                if (m3) {
                                    size_t l;
                                    while (after < n && is_ws_at(s, n, after, &l))
                                        after += l;
                                } else if (!p3 && after < n && s[after] == '\n') {
                                    after++; /* trim_blocks */
                                }
                                break;
                            }
                        }
                    }
                    e++;
                }
                if (!found)
                    return pfail(p, line, "missing {%% endraw %%}");
                size_t blen = end_tag - body;
                if (end_minus) {
                    blen = rstrip_len(s + body, blen);
                } else if (!end_plus) {
                    /* lstrip_blocks applies to {% endraw %} as to any block tag */
                    size_t l_pos = 0;
                    for (size_t k2 = blen; k2 > 0; k2--)
                        if (s[body + k2 - 1] == '\n') {
                            l_pos = k2;
                            break;
                        }
                    if ((l_pos > 0 || raw_line_start) && l_pos < blen) {
                        bool all_ws = true;
                        size_t k2 = l_pos, l;
                        while (k2 < blen) {
                            if (!is_ws_at(s + body, blen, k2, &l)) {
                                all_ws = false;
                                break;
                            }
                            k2 += l;
                        }
                        if (all_ws)
                            blen = l_pos;
                    }
                }
                if (!emit_text(p, s + body, blen, line))
                    return false;
                line += count_lines(s + k, after - k);
                i = after;
                line_starting = after > 0 && s[after - 1] == '\n';
                continue;
            }
        }
        tok t = {(uint8_t)(kind == '{' ? T_VAR_BEGIN : T_BLOCK_BEGIN), line, NULL, 0, tv_undef()};
        if (!push_tok(p, t))
            return false;
        if (!lex_tag(p, &k, &line, kind == '{' ? 'v' : 'b', &nl))
            return false;
        i = k;
        line_starting = nl;
    }
    tok e = {T_EOF, line, NULL, 0, tv_undef()};
    return push_tok(p, e);
}

/* ---- parser helpers ---- */

static tok *cur(P *p) {
    return &p->toks[p->pos];
}
static tok *peek(P *p, size_t k) {
    size_t i = p->pos + k;
    return &p->toks[i < p->n_toks ? i : p->n_toks - 1];
}
static void adv(P *p) {
    if (p->toks[p->pos].type != T_EOF)
        p->pos++;
}
static bool is_op(const tok *t, const char *op) {
    size_t n = strlen(op);
    return t->type == T_OP && t->n == n && memcmp(t->s, op, n) == 0;
}
static bool is_name(const tok *t, const char *name) {
    size_t n = strlen(name);
    return t->type == T_NAME && t->n == n && memcmp(t->s, name, n) == 0;
}
static const char *tok_desc(const tok *t, char *buf, size_t cap) {
    switch (t->type) {
    case T_EOF:
        return "end of template";
    case T_TEXT:
        return "text";
    case T_VAR_BEGIN:
        return "'{{'";
    case T_VAR_END:
        return "'}}'";
    case T_BLOCK_BEGIN:
        return "'{%'";
    case T_BLOCK_END:
        return "'%}'";
    case T_STRING:
        return "a string";
    default:
        snprintf(buf, cap, "'%.*s'", (int)(t->n > 40 ? 40 : t->n), t->s);
        return buf;
    }
}
static bool expect_op(P *p, const char *op) {
    if (!is_op(cur(p), op)) {
        char b[64];
        return pfail(p, cur(p)->line, "expected '%s', got %s", op, tok_desc(cur(p), b, sizeof b));
    }
    adv(p);
    return true;
}

static tpl_node *node(P *p, tpl_kind k, int line) {
    tpl_node *n = tpl_zalloc(p->a, sizeof *n);
    if (!n) {
        oom(p);
        return NULL;
    }
    n->kind = (uint8_t)k;
    n->line = line;
    n->builtin = -1;
    return n;
}

/* growable node list */
typedef struct {
    tpl_node **v;
    const char **kw;
    size_t n, cap;
} nlist;

static bool nl_push(P *p, nlist *l, tpl_node *x, const char *kw) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        tpl_node **nv = tpl_alloc(p->a, cap * sizeof *nv);
        const char **nk = tpl_alloc(p->a, cap * sizeof *nk);
        if (!nv || !nk)
            return oom(p);
        if (l->n) {
            memcpy(nv, l->v, l->n * sizeof *nv);
            memcpy(nk, l->kw, l->n * sizeof *nk);
        }
        l->v = nv;
        l->kw = nk;
        l->cap = cap;
    }
    l->v[l->n] = x;
    l->kw[l->n] = kw;
    l->n++;
    return true;
}

static void nl_into(tpl_node *n, nlist *l) {
    n->kids = l->v;
    n->n_kids = l->n;
    n->kw_names = l->kw;
}

static const char *tok_str(P *p, const tok *t) {
    char *c = tpl_strndup(p->a, t->s, t->n);
    if (!c)
        oom(p);
    return c;
}

/* ---- expressions ---- */

static tpl_node *parse_expr(P *p);
static tpl_node *parse_or(P *p);
static tpl_node *parse_unary(P *p, bool with_filter);
static tpl_node *parse_primary(P *p);
static tpl_node *parse_postfix(P *p, tpl_node *n);
static tpl_node *parse_tuple(P *p, bool with_condexpr, bool explicit_parens);

static bool enter(P *p) {
    if (++p->depth > TPL_MAX_DEPTH)
        return pfail(p, cur(p)->line, "expression or block nesting is too deep");
    return true;
}

static tpl_node *parse_condexpr(P *p) {
    tpl_node *e1 = parse_or(p);
    while (e1 && is_name(cur(p), "if")) {
        int line = cur(p)->line;
        adv(p);
        tpl_node *cond = parse_or(p);
        if (!cond)
            return NULL;
        tpl_node *e3 = NULL;
        if (is_name(cur(p), "else")) {
            adv(p);
            e3 = parse_condexpr(p);
            if (!e3)
                return NULL;
        }
        tpl_node *n = node(p, N_COND, line);
        if (!n)
            return NULL;
        n->a = cond;
        n->b = e1;
        n->c = e3;
        e1 = n;
    }
    return e1;
}

static tpl_node *parse_expr(P *p) {
    if (!enter(p))
        return NULL;
    tpl_node *n = parse_condexpr(p);
    p->depth--;
    return n;
}

static tpl_node *parse_expr_nocond(P *p) {
    if (!enter(p))
        return NULL;
    tpl_node *n = parse_or(p);
    p->depth--;
    return n;
}

static tpl_node *bin(P *p, tpl_kind k, int op, tpl_node *a, tpl_node *b, int line) {
    if (!a || !b)
        return NULL;
    tpl_node *n = node(p, k, line);
    if (!n)
        return NULL;
    n->op = (uint8_t)op;
    n->a = a;
    n->b = b;
    return n;
}

static tpl_node *parse_not(P *p);

static tpl_node *parse_and(P *p) {
    tpl_node *l = parse_not(p);
    while (l && is_name(cur(p), "and")) {
        int line = cur(p)->line;
        adv(p);
        l = bin(p, N_AND, 0, l, parse_not(p), line);
    }
    return l;
}

static tpl_node *parse_or(P *p) {
    tpl_node *l = parse_and(p);
    while (l && is_name(cur(p), "or")) {
        int line = cur(p)->line;
        adv(p);
        l = bin(p, N_OR, 0, l, parse_and(p), line);
    }
    return l;
}

static tpl_node *parse_compare(P *p);

static tpl_node *parse_not(P *p) {
    if (is_name(cur(p), "not")) {
        int line = cur(p)->line;
        adv(p);
        if (!enter(p))
            return NULL;
        tpl_node *x = parse_not(p);
        p->depth--;
        if (!x)
            return NULL;
        tpl_node *n = node(p, N_UNARY, line);
        if (!n)
            return NULL;
        n->op = OP_NOT;
        n->a = x;
        return n;
    }
    return parse_compare(p);
}

static tpl_node *parse_math1(P *p);

static tpl_node *parse_compare(P *p) {
    tpl_node *l = parse_math1(p);
    tpl_node *result = NULL; /* chained comparisons: a < b < c == (a < b) and (b < c) */
    for (;;) {
        if (!l)
            return NULL;
        tok *t = cur(p);
        int op = -1;
        if (is_op(t, "=="))
            op = OP_EQ;
        else if (is_op(t, "!="))
            op = OP_NE;
        else if (is_op(t, "<"))
            op = OP_LT;
        else if (is_op(t, "<="))
            op = OP_LE;
        else if (is_op(t, ">"))
            op = OP_GT;
        else if (is_op(t, ">="))
            op = OP_GE;
        else if (is_name(t, "in"))
            op = OP_IN;
        else if (is_name(t, "not") && is_name(peek(p, 1), "in")) {
            op = OP_NOTIN;
            adv(p);
        }
        if (op < 0)
            break;
        int line = t->line;
        adv(p);
        tpl_node *r = parse_math1(p);
        tpl_node *c = bin(p, N_BIN, op, l, r, line);
        if (!c)
            return NULL;
        result = result ? bin(p, N_AND, 0, result, c, line) : c;
        l = r;
    }
    return result ? result : l;
}

static tpl_node *parse_concat(P *p);
static tpl_node *parse_math2(P *p);
static tpl_node *parse_pow(P *p);

static tpl_node *parse_math1(P *p) {
    tpl_node *l = parse_concat(p);
    while (l && (is_op(cur(p), "+") || is_op(cur(p), "-"))) {
        int op = is_op(cur(p), "+") ? OP_ADD : OP_SUB, line = cur(p)->line;
        adv(p);
        l = bin(p, N_BIN, op, l, parse_concat(p), line);
    }
    return l;
}

static tpl_node *parse_concat(P *p) {
    tpl_node *l = parse_math2(p);
    while (l && is_op(cur(p), "~")) {
        int line = cur(p)->line;
        adv(p);
        l = bin(p, N_BIN, OP_CONCAT, l, parse_math2(p), line);
    }
    return l;
}

static tpl_node *parse_math2(P *p) {
    tpl_node *l = parse_pow(p);
    for (;;) {
        if (!l)
            return NULL;
        int op = is_op(cur(p), "*")    ? OP_MUL
                 : is_op(cur(p), "/")  ? OP_DIV
                 : is_op(cur(p), "//") ? OP_FLOORDIV
                 : is_op(cur(p), "%")  ? OP_MOD
                                       : -1;
        if (op < 0)
            return l;
        int line = cur(p)->line;
        adv(p);
        l = bin(p, N_BIN, op, l, parse_pow(p), line);
    }
}

static tpl_node *parse_pow(P *p) {
    tpl_node *l = parse_unary(p, true);
    while (l && is_op(cur(p), "**")) {
        int line = cur(p)->line;
        adv(p);
        l = bin(p, N_BIN, OP_POW, l, parse_unary(p, true), line);
    }
    return l;
}

/* call arguments: '(' already current */
static bool parse_call_args(P *p, nlist *args) {
    if (!expect_op(p, "("))
        return false;
    bool kw_seen = false;
    while (!is_op(cur(p), ")")) {
        if (args->n && !expect_op(p, ","))
            return false;
        if (is_op(cur(p), ")"))
            break;
        if (is_op(cur(p), "*") || is_op(cur(p), "**"))
            return pfail(p, cur(p)->line, "*args / **kwargs in calls are not supported");
        const char *kw = NULL;
        if (cur(p)->type == T_NAME && is_op(peek(p, 1), "=")) {
            kw = tok_str(p, cur(p));
            if (!kw)
                return false;
            adv(p);
            adv(p);
            kw_seen = true;
        } else if (kw_seen) {
            return pfail(p, cur(p)->line, "positional argument after a keyword argument");
        }
        tpl_node *e = parse_expr(p);
        if (!e || !nl_push(p, args, e, kw))
            return false;
    }
    adv(p);
    return true;
}

static tpl_node *parse_filter_expr(P *p, tpl_node *n);

static tpl_node *parse_unary(P *p, bool with_filter) {
    tok *t = cur(p);
    tpl_node *n;
    if (!enter(p))
        return NULL;
    if (is_op(t, "-") || is_op(t, "+")) {
        int op = is_op(t, "-") ? OP_NEG : OP_POS;
        adv(p);
        tpl_node *x = parse_unary(p, false);
        if (!x) {
            p->depth--;
            return NULL;
        }
        n = node(p, N_UNARY, t->line);
        if (n) {
            n->op = (uint8_t)op;
            n->a = x;
        }
    } else {
        n = parse_primary(p);
    }
    if (n)
        n = parse_postfix(p, n);
    if (n && with_filter)
        n = parse_filter_expr(p, n);
    p->depth--;
    return n;
}

static tpl_node *parse_primary(P *p) {
    tok *t = cur(p);
    char b[64];
    if (t->type == T_NAME) {
        tpl_node *n = node(p, N_CONST, t->line);
        if (!n)
            return NULL;
        if (is_name(t, "true") || is_name(t, "True"))
            n->v = tv_bool(true);
        else if (is_name(t, "false") || is_name(t, "False"))
            n->v = tv_bool(false);
        else if (is_name(t, "none") || is_name(t, "None"))
            n->v = tv_none();
        else {
            n->kind = N_NAME;
            n->name = tok_str(p, t);
            n->name_len = t->n;
            if (!n->name)
                return NULL;
        }
        adv(p);
        return n;
    }
    if (t->type == T_STRING) {
        /* adjacent string literals concatenate */
        tp_buf buf = {0};
        int line = t->line;
        while (cur(p)->type == T_STRING) {
            tp_buf_append(&buf, cur(p)->s, cur(p)->n);
            adv(p);
        }
        tpl_node *n = node(p, N_CONST, line);
        char *s = n ? tpl_strndup(p->a, buf.data ? buf.data : "", buf.len) : NULL;
        bool bad = buf.oom;
        size_t len = buf.len;
        tp_buf_free(&buf);
        if (!s || bad) {
            oom(p);
            return NULL;
        }
        n->v = tv_str(s, len);
        return n;
    }
    if (t->type == T_INT || t->type == T_FLOAT) {
        tpl_node *n = node(p, N_CONST, t->line);
        if (!n)
            return NULL;
        n->v = t->v;
        adv(p);
        return n;
    }
    if (is_op(t, "(")) {
        adv(p);
        tpl_node *n = parse_tuple(p, true, true);
        if (!n || !expect_op(p, ")"))
            return NULL;
        return n;
    }
    if (is_op(t, "[")) {
        tpl_node *n = node(p, N_LIST, t->line);
        if (!n)
            return NULL;
        adv(p);
        nlist l = {0};
        while (!is_op(cur(p), "]")) {
            if (l.n && !expect_op(p, ","))
                return NULL;
            if (is_op(cur(p), "]"))
                break;
            tpl_node *e = parse_expr(p);
            if (!e || !nl_push(p, &l, e, NULL))
                return NULL;
        }
        adv(p);
        nl_into(n, &l);
        return n;
    }
    if (is_op(t, "{")) {
        tpl_node *n = node(p, N_DICT, t->line);
        if (!n)
            return NULL;
        adv(p);
        nlist l = {0};
        while (!is_op(cur(p), "}")) {
            if (l.n && !expect_op(p, ","))
                return NULL;
            if (is_op(cur(p), "}"))
                break;
            tpl_node *k = parse_expr(p);
            if (!k || !expect_op(p, ":"))
                return NULL;
            tpl_node *v = parse_expr(p);
            if (!v || !nl_push(p, &l, k, NULL) || !nl_push(p, &l, v, NULL))
                return NULL;
        }
        adv(p);
        nl_into(n, &l);
        return n;
    }
    pfail(p, t->line, "unexpected %s in an expression", tok_desc(t, b, sizeof b));
    return NULL;
}

/* a[...] contents: an expression or a slice */
static tpl_node *parse_subscript_inner(P *p, tpl_node *obj, int line) {
    tpl_node *parts[3] = {NULL, NULL, NULL};
    int idx = 0;
    bool is_slice = false;
    for (;;) {
        if (is_op(cur(p), ":")) {
            is_slice = true;
            if (++idx > 2)
                return pfail(p, cur(p)->line, "too many ':' in a slice"), NULL;
            adv(p);
            continue;
        }
        if (is_op(cur(p), "]"))
            break;
        if (parts[idx])
            return pfail(p, cur(p)->line, "expected ']' or ':' in a subscript"), NULL;
        parts[idx] = is_slice ? parse_expr(p) : parse_tuple(p, true, false);
        if (!parts[idx])
            return NULL;
    }
    adv(p);
    tpl_node *n = node(p, is_slice ? N_SLICE : N_ITEM, line);
    if (!n)
        return NULL;
    n->a = obj;
    if (is_slice) {
        n->b = parts[0];
        n->c = parts[1];
        n->d = parts[2];
    } else {
        if (!parts[0])
            return pfail(p, line, "empty subscript []"), NULL;
        n->b = parts[0];
    }
    return n;
}

static tpl_node *parse_postfix(P *p, tpl_node *n) {
    for (;;) {
        tok *t = cur(p);
        if (is_op(t, ".")) {
            adv(p);
            tok *nt = cur(p);
            if (nt->type == T_NAME) {
                tpl_node *a = node(p, N_ATTR, nt->line);
                if (!a)
                    return NULL;
                a->a = n;
                a->name = tok_str(p, nt);
                a->name_len = nt->n;
                if (!a->name)
                    return NULL;
                a->builtin = tpl_method_id(nt->s, nt->n);
                adv(p);
                n = a;
            } else if (nt->type == T_INT) {
                tpl_node *a = node(p, N_ITEM, nt->line);
                tpl_node *k = node(p, N_CONST, nt->line);
                if (!a || !k)
                    return NULL;
                k->v = nt->v;
                a->a = n;
                a->b = k;
                adv(p);
                n = a;
            } else {
                char b[64];
                return pfail(p, nt->line, "expected an attribute name after '.', got %s",
                             tok_desc(nt, b, sizeof b)),
                       NULL;
            }
        } else if (is_op(t, "[")) {
            adv(p);
            if (!enter(p))
                return NULL;
            n = parse_subscript_inner(p, n, t->line);
            p->depth--;
            if (!n)
                return NULL;
        } else if (is_op(t, "(")) {
            tpl_node *c = node(p, N_CALL, t->line);
            if (!c)
                return NULL;
            nlist args = {0};
            if (!parse_call_args(p, &args))
                return NULL;
            c->a = n;
            nl_into(c, &args);
            n = c;
        } else {
            return n;
        }
    }
}

static tpl_node *parse_filter_expr(P *p, tpl_node *n) {
    for (;;) {
        tok *t = cur(p);
        if (is_op(t, "|")) {
            adv(p);
            tok *nt = cur(p);
            if (nt->type != T_NAME)
                return pfail(p, nt->line, "expected a filter name after '|'"), NULL;
            tpl_node *f = node(p, N_FILTER, nt->line);
            if (!f)
                return NULL;
            f->name = tok_str(p, nt);
            f->name_len = nt->n;
            if (!f->name)
                return NULL;
            f->builtin = tpl_filter_id(nt->s, nt->n); /* unknown: checked by check_names */
            adv(p);
            f->a = n;
            if (is_op(cur(p), "(")) {
                nlist args = {0};
                if (!parse_call_args(p, &args))
                    return NULL;
                nl_into(f, &args);
            }
            n = f;
        } else if (is_name(t, "is")) {
            adv(p);
            bool neg = false;
            if (is_name(cur(p), "not")) {
                neg = true;
                adv(p);
            }
            tok *nt = cur(p);
            if (nt->type != T_NAME)
                return pfail(p, nt->line, "expected a test name after 'is'"), NULL;
            tpl_node *f = node(p, N_TEST, nt->line);
            if (!f)
                return NULL;
            f->negate = neg;
            f->name = tok_str(p, nt);
            f->name_len = nt->n;
            if (!f->name)
                return NULL;
            f->builtin = tpl_test_id(nt->s, nt->n); /* unknown: checked by check_names */
            adv(p);
            f->a = n;
            tok *at = cur(p);
            if (is_op(at, "(")) {
                nlist args = {0};
                if (!parse_call_args(p, &args))
                    return NULL;
                nl_into(f, &args);
            } else if ((at->type == T_NAME || at->type == T_STRING || at->type == T_INT ||
                        at->type == T_FLOAT || is_op(at, "[") || is_op(at, "{")) &&
                       !is_name(at, "else") && !is_name(at, "or") && !is_name(at, "and")) {
                /* Jinja2's rule: any other name here is the test's argument (so `x is
                 * defined if y` does not parse, as in Python) */
                if (is_name(at, "is"))
                    return pfail(p, at->line, "cannot chain tests with 'is'"), NULL;
                tpl_node *arg = parse_primary(p);
                if (arg)
                    arg = parse_postfix(p, arg);
                if (!arg)
                    return NULL;
                nlist args = {0};
                if (!nl_push(p, &args, arg, NULL))
                    return NULL;
                nl_into(f, &args);
            }
            n = f;
        } else if (is_op(t, "(")) {
            tpl_node *c = node(p, N_CALL, t->line);
            if (!c)
                return NULL;
            nlist args = {0};
            if (!parse_call_args(p, &args))
                return NULL;
            c->a = n;
            nl_into(c, &args);
            n = c;
        } else {
            return n;
        }
    }
}

/* a, b, c  (a tuple when a comma appears or explicit parens hold nothing) */
static tpl_node *parse_tuple(P *p, bool with_condexpr, bool explicit_parens) {
    int line = cur(p)->line;
    nlist l = {0};
    bool comma = false;
    for (;;) {
        if (l.n) {
            if (!is_op(cur(p), ","))
                break;
            adv(p);
            comma = true;
        }
        tok *t = cur(p);
        if (t->type == T_VAR_END || t->type == T_BLOCK_END || is_op(t, ")") || is_op(t, "]") ||
            (l.n && (is_name(t, "in") || is_name(t, "if") || is_name(t, "recursive"))))
            break;
        tpl_node *e = with_condexpr ? parse_expr(p) : parse_expr_nocond(p);
        if (!e || !nl_push(p, &l, e, NULL))
            return NULL;
    }
    if (l.n == 1 && !comma)
        return l.v[0];
    if (l.n == 0 && !explicit_parens) {
        char b[64];
        return pfail(p, line, "expected an expression, got %s", tok_desc(cur(p), b, sizeof b)),
               NULL;
    }
    tpl_node *n = node(p, N_TUPLE, line);
    if (!n)
        return NULL;
    nl_into(n, &l);
    return n;
}

/* ---- statements ---- */

static bool parse_body(P *p, tpl_node **out, const char *const *ends, int *which);

static bool expect_block_end(P *p) {
    if (cur(p)->type != T_BLOCK_END) {
        char b[64];
        return pfail(p, cur(p)->line, "expected '%%}', got %s", tok_desc(cur(p), b, sizeof b));
    }
    adv(p);
    return true;
}

/* assignment target: name, name.attr (namespace), or a, b */
static tpl_node *parse_target(P *p, bool allow_attr) {
    int line = cur(p)->line;
    nlist l = {0};
    for (;;) {
        tok *t = cur(p);
        if (t->type != T_NAME) {
            char b[64];
            return pfail(p, t->line, "expected a variable name, got %s", tok_desc(t, b, sizeof b)),
                   NULL;
        }
        tpl_node *n = node(p, N_NAME, t->line);
        if (!n)
            return NULL;
        n->name = tok_str(p, t);
        n->name_len = t->n;
        adv(p);
        if (allow_attr && is_op(cur(p), ".") && peek(p, 1)->type == T_NAME) {
            adv(p);
            tpl_node *a = node(p, N_ATTR, cur(p)->line);
            if (!a)
                return NULL;
            a->a = n;
            a->name = tok_str(p, cur(p));
            a->name_len = cur(p)->n;
            adv(p);
            n = a;
        }
        if (!nl_push(p, &l, n, NULL))
            return NULL;
        if (!is_op(cur(p), ","))
            break;
        adv(p);
    }
    if (l.n == 1)
        return l.v[0];
    tpl_node *n = node(p, N_TUPLE, line);
    if (!n)
        return NULL;
    nl_into(n, &l);
    return n;
}

static tpl_node *parse_if(P *p, int line) {
    tpl_node *n = node(p, N_IF, line);
    if (!n)
        return NULL;
    n->a = parse_tuple(p, false, false);
    if (!n->a || !expect_block_end(p))
        return NULL;
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    int which;
    if (!parse_body(p, &n->b, ends, &which))
        return NULL;
    if (which == 0) {
        n->c = parse_if(p, cur(p)->line);
        return n->c ? n : NULL;
    }
    if (which == 1) {
        if (!expect_block_end(p))
            return NULL;
        static const char *const ends2[] = {"endif", NULL};
        if (!parse_body(p, &n->c, ends2, &which))
            return NULL;
    }
    return expect_block_end(p) ? n : NULL;
}

static tpl_node *parse_stmt(P *p) {
    tok *t = cur(p);
    int line = t->line;
    char b[64];
    if (t->type != T_NAME)
        return pfail(p, line, "expected a tag name, got %s", tok_desc(t, b, sizeof b)), NULL;
    if (is_name(t, "if")) {
        adv(p);
        return parse_if(p, line);
    }
    if (is_name(t, "for")) {
        adv(p);
        tpl_node *n = node(p, N_FOR, line);
        if (!n)
            return NULL;
        n->a = NULL;
        tpl_node *target = parse_target(p, false);
        if (!target)
            return NULL;
        if (!is_name(cur(p), "in"))
            return pfail(p, cur(p)->line, "expected 'in' in a for loop"), NULL;
        adv(p);
        n->a = parse_tuple(p, false, false);
        if (!n->a)
            return NULL;
        n->c = NULL;
        if (is_name(cur(p), "if")) {
            adv(p);
            n->d = parse_expr(p);
            if (!n->d)
                return NULL;
        }
        if (is_name(cur(p), "recursive")) {
            n->op = 1; /* recursive: loop(items) renders the body again, one level deeper */
            adv(p);
        }
        if (!expect_block_end(p))
            return NULL;
        /* the target is kept in kids[0] */
        nlist l = {0};
        if (!nl_push(p, &l, target, NULL))
            return NULL;
        nl_into(n, &l);
        static const char *const ends[] = {"else", "endfor", NULL};
        int which;
        p->loop_depth++;
        bool ok = parse_body(p, &n->b, ends, &which);
        p->loop_depth--;
        if (!ok)
            return NULL;
        if (which == 0) {
            if (!expect_block_end(p))
                return NULL;
            static const char *const ends2[] = {"endfor", NULL};
            if (!parse_body(p, &n->c, ends2, &which))
                return NULL;
        }
        return expect_block_end(p) ? n : NULL;
    }
    if (is_name(t, "set")) {
        adv(p);
        tpl_node *target = parse_target(p, true);
        if (!target)
            return NULL;
        if (is_op(cur(p), "=")) {
            adv(p);
            tpl_node *n = node(p, N_SET, line);
            if (!n)
                return NULL;
            n->a = target;
            n->b = parse_tuple(p, true, false);
            if (!n->b || !expect_block_end(p))
                return NULL;
            return n;
        }
        if (target->kind != N_NAME)
            return pfail(p, line, "a block set needs a single variable name"), NULL;
        if (is_op(cur(p), "|"))
            return pfail(p, line, "filters on block set are not supported"), NULL;
        if (!expect_block_end(p))
            return NULL;
        tpl_node *n = node(p, N_SETBLOCK, line);
        if (!n)
            return NULL;
        n->name = target->name;
        n->name_len = target->name_len;
        static const char *const ends[] = {"endset", NULL};
        int which;
        if (!parse_body(p, &n->b, ends, &which) || !expect_block_end(p))
            return NULL;
        return n;
    }
    if (is_name(t, "macro")) {
        adv(p);
        tok *nt = cur(p);
        if (nt->type != T_NAME)
            return pfail(p, nt->line, "expected a macro name"), NULL;
        tpl_node *n = node(p, N_MACRO, line);
        if (!n)
            return NULL;
        n->name = tok_str(p, nt);
        n->name_len = nt->n;
        adv(p);
        if (!expect_op(p, "("))
            return NULL;
        nlist params = {0};
        while (!is_op(cur(p), ")")) {
            if (params.n && !expect_op(p, ","))
                return NULL;
            tok *pt = cur(p);
            if (pt->type != T_NAME)
                return pfail(p, pt->line, "expected a parameter name in macro '%s'", n->name), NULL;
            tpl_node *pn = node(p, N_NAME, pt->line);
            if (!pn)
                return NULL;
            pn->name = tok_str(p, pt);
            pn->name_len = pt->n;
            adv(p);
            if (is_op(cur(p), "=")) {
                adv(p);
                pn->a = parse_expr(p);
                if (!pn->a)
                    return NULL;
            }
            if (!nl_push(p, &params, pn, NULL))
                return NULL;
        }
        adv(p);
        nl_into(n, &params);
        if (!expect_block_end(p))
            return NULL;
        static const char *const ends[] = {"endmacro", NULL};
        int which;
        int saved = p->loop_depth;
        p->loop_depth = 0;
        bool ok = parse_body(p, &n->b, ends, &which);
        p->loop_depth = saved;
        if (!ok)
            return NULL;
        if (cur(p)->type == T_NAME)
            adv(p); /* {% endmacro name %} */
        return expect_block_end(p) ? n : NULL;
    }
    if (is_name(t, "break") || is_name(t, "continue")) {
        bool brk = is_name(t, "break");
        if (p->loop_depth == 0)
            return pfail(p, line, "'%s' outside of a for loop", brk ? "break" : "continue"), NULL;
        adv(p);
        if (!expect_block_end(p))
            return NULL;
        return node(p, brk ? N_BREAK : N_CONTINUE, line);
    }
    if (is_name(t, "generation")) {
        adv(p);
        if (!expect_block_end(p))
            return NULL;
        static const char *const ends[] = {"endgeneration", NULL};
        tpl_node *body;
        int which;
        if (!parse_body(p, &body, ends, &which) || !expect_block_end(p))
            return NULL;
        return body;
    }
    if (is_name(t, "call")) {
        adv(p);
        tpl_node *n = node(p, N_CALLBLOCK, line);
        if (!n)
            return NULL;
        n->name = "caller";
        n->name_len = 6;
        nlist params = {0};
        if (is_op(cur(p), "(")) {
            adv(p);
            while (!is_op(cur(p), ")")) {
                if (params.n && !expect_op(p, ","))
                    return NULL;
                tok *pt = cur(p);
                if (pt->type != T_NAME)
                    return pfail(p, pt->line, "expected a parameter name in call block"), NULL;
                tpl_node *pn = node(p, N_NAME, pt->line);
                if (!pn)
                    return NULL;
                pn->name = tok_str(p, pt);
                pn->name_len = pt->n;
                adv(p);
                if (is_op(cur(p), "=")) {
                    adv(p);
                    pn->a = parse_expr(p);
                    if (!pn->a)
                        return NULL;
                }
                if (!nl_push(p, &params, pn, NULL))
                    return NULL;
            }
            adv(p);
        }
        nl_into(n, &params);
        n->a = parse_expr(p);
        if (!n->a)
            return NULL;
        if (n->a->kind != N_CALL)
            return pfail(p, line, "a call block needs a macro call, e.g. {%% call m() %%}"), NULL;
        if (!expect_block_end(p))
            return NULL;
        static const char *const ends[] = {"endcall", NULL};
        int which;
        int saved = p->loop_depth;
        p->loop_depth = 0;
        bool ok = parse_body(p, &n->b, ends, &which);
        p->loop_depth = saved;
        if (!ok || !expect_block_end(p))
            return NULL;
        return n;
    }
    if (is_name(t, "with")) {
        adv(p);
        tpl_node *n = node(p, N_WITH, line);
        if (!n)
            return NULL;
        nlist pairs = {0};
        while (cur(p)->type != T_BLOCK_END) {
            if (pairs.n && !expect_op(p, ","))
                return NULL;
            tpl_node *target = parse_target(p, false);
            if (!target || !expect_op(p, "="))
                return NULL;
            tpl_node *value = parse_expr(p);
            if (!value || !nl_push(p, &pairs, target, NULL) || !nl_push(p, &pairs, value, NULL))
                return NULL;
        }
        adv(p);
        nl_into(n, &pairs);
        static const char *const ends[] = {"endwith", NULL};
        int which;
        if (!parse_body(p, &n->b, ends, &which) || !expect_block_end(p))
            return NULL;
        return n;
    }
    if (is_name(t, "filter")) {
        adv(p);
        /* build a filter chain over a placeholder N_CONST (filled at run time) */
        tpl_node *ph = node(p, N_CONST, line);
        if (!ph)
            return NULL;
        ph->v = tv_str("", 0);
        tpl_node *chain = ph;
        for (;;) {
            tok *nt = cur(p);
            if (nt->type != T_NAME)
                return pfail(p, nt->line, "expected a filter name"), NULL;
            tpl_node *f = node(p, N_FILTER, nt->line);
            if (!f)
                return NULL;
            f->name = tok_str(p, nt);
            f->name_len = nt->n;
            f->builtin = tpl_filter_id(nt->s, nt->n);
            if (f->builtin < 0)
                return pfail(p, nt->line, "unsupported filter '%s'", f->name), NULL;
            adv(p);
            f->a = chain;
            if (is_op(cur(p), "(")) {
                nlist args = {0};
                if (!parse_call_args(p, &args))
                    return NULL;
                nl_into(f, &args);
            }
            chain = f;
            if (!is_op(cur(p), "|"))
                break;
            adv(p);
        }
        if (!expect_block_end(p))
            return NULL;
        tpl_node *n = node(p, N_FILTERBLOCK, line);
        if (!n)
            return NULL;
        n->a = chain;
        n->c = ph;
        static const char *const ends[] = {"endfilter", NULL};
        int which;
        if (!parse_body(p, &n->b, ends, &which) || !expect_block_end(p))
            return NULL;
        return n;
    }
    const char *tag = tok_str(p, t);
    return pfail(p, line, "unsupported or unknown tag '%s'", tag ? tag : "?"), NULL;
}

/* Parses statements until {% <one of ends> %} (its name is consumed, which = index) or EOF
 * (ends == NULL). */
static bool parse_body(P *p, tpl_node **out, const char *const *ends, int *which) {
    if (!enter(p))
        return false;
    int line = cur(p)->line;
    tpl_node *body = node(p, N_BODY, line);
    if (!body)
        return false;
    nlist l = {0};
    for (;;) {
        tok *t = cur(p);
        if (t->type == T_EOF) {
            if (ends) {
                char list[128] = "";
                for (int k = 0; ends[k]; k++) {
                    if (k)
                        strncat(list, " or ", sizeof list - strlen(list) - 1);
                    strncat(list, ends[k], sizeof list - strlen(list) - 1);
                }
                return pfail(p, t->line,
                             "unexpected end of template, expected '%s' (block opened on line %d)",
                             list, line);
            }
            break;
        }
        if (t->type == T_TEXT) {
            tpl_node *n = node(p, N_TEXT, t->line);
            if (!n)
                return false;
            n->v = tv_str(t->s, t->n);
            if (!nl_push(p, &l, n, NULL))
                return false;
            adv(p);
            continue;
        }
        if (t->type == T_VAR_BEGIN) {
            adv(p);
            tpl_node *n = node(p, N_OUT, t->line);
            if (!n)
                return false;
            n->a = parse_tuple(p, true, false);
            if (!n->a)
                return false;
            if (cur(p)->type != T_VAR_END) {
                char b[64];
                return pfail(p, cur(p)->line, "expected '}}', got %s",
                             tok_desc(cur(p), b, sizeof b));
            }
            adv(p);
            if (!nl_push(p, &l, n, NULL))
                return false;
            continue;
        }
        if (t->type == T_BLOCK_BEGIN) {
            tok *nt = peek(p, 1);
            if (ends && nt->type == T_NAME) {
                bool hit = false;
                for (int k = 0; ends[k]; k++)
                    if (is_name(nt, ends[k])) {
                        *which = k;
                        hit = true;
                    }
                if (hit) {
                    adv(p);
                    adv(p);
                    break;
                }
            }
            if (nt->type == T_NAME &&
                (is_name(nt, "endif") || is_name(nt, "endfor") || is_name(nt, "elif") ||
                 is_name(nt, "else") || is_name(nt, "endmacro") || is_name(nt, "endset") ||
                 is_name(nt, "endfilter") || is_name(nt, "endgeneration") ||
                 is_name(nt, "endwith") || is_name(nt, "endraw"))) {
                return pfail(p, nt->line, "unexpected '%.*s'%s", (int)nt->n, nt->s,
                             ends ? " here" : " (no block is open)");
            }
            adv(p);
            tpl_node *s = parse_stmt(p);
            if (!s || !nl_push(p, &l, s, NULL))
                return false;
            continue;
        }
        char b[64];
        return pfail(p, t->line, "unexpected %s", tok_desc(t, b, sizeof b));
    }
    nl_into(body, &l);
    *out = body;
    p->depth--;
    return true;
}

/* ---- scope analysis ----
 *
 * Jinja2 decides at compile time, per scope (the template, a loop body, a for-else body, a
 * macro body, a block set or filter body), how each name starts: a name whose first
 * occurrence in the scope is an unconditional assignment, and which no enclosing scope
 * mentions, starts undefined -- it does not fall back to the caller's variable of that
 * name. (An assignment inside an if-branch keeps the fallback.) Everything else behaves as
 * a dynamic lookup through the enclosing frames, which is what the evaluator does; this
 * pass records the exceptions on each scope's body so the evaluator can hide them. */

typedef struct an_scope an_scope;
struct an_scope {
    an_scope *parent;
    const char **names;
    size_t *lens;
    uint8_t *kind; /* 1 used (or conditionally assigned) first, 2 assigned first */
    size_t n, cap;
    tpl_node *body;
    an_scope *next_all; /* list of every scope, for the second pass */
};

typedef struct {
    an_scope *all;
    bool oom;
} an_ctx;

static an_scope *an_new(an_ctx *c, an_scope *parent, tpl_node *body) {
    an_scope *s = tp_calloc(1, sizeof *s);
    if (!s) {
        c->oom = true;
        return NULL;
    }
    s->parent = parent;
    s->body = body;
    s->next_all = c->all;
    c->all = s;
    return s;
}

static bool an_has(const an_scope *s, const char *name, size_t n) {
    for (size_t i = 0; i < s->n; i++)
        if (s->lens[i] == n && memcmp(s->names[i], name, n) == 0)
            return true;
    return false;
}

static void an_ref(an_ctx *c, an_scope *s, const char *name, size_t n, int kind) {
    if (!s || !name || an_has(s, name, n))
        return;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        const char **nn = tp_realloc(s->names, cap * sizeof *nn);
        if (nn)
            s->names = nn;
        size_t *nl = tp_realloc(s->lens, cap * sizeof *nl);
        if (nl)
            s->lens = nl;
        uint8_t *nk = tp_realloc(s->kind, cap);
        if (nk)
            s->kind = nk;
        if (!nn || !nl || !nk) {
            c->oom = true;
            return;
        }
        s->cap = cap;
    }
    s->names[s->n] = name;
    s->lens[s->n] = n;
    s->kind[s->n] = (uint8_t)kind;
    s->n++;
}

static void an_expr(an_ctx *c, an_scope *s, const tpl_node *n) {
    if (!n)
        return;
    if (n->kind == N_NAME) {
        an_ref(c, s, n->name, n->name_len, 1);
        return;
    }
    an_expr(c, s, n->a);
    an_expr(c, s, n->b);
    an_expr(c, s, n->c);
    an_expr(c, s, n->d);
    for (size_t i = 0; i < n->n_kids; i++)
        an_expr(c, s, n->kids[i]);
}

static void an_store(an_ctx *c, an_scope *s, const tpl_node *t, int branch) {
    if (!t)
        return;
    if (t->kind == N_NAME)
        an_ref(c, s, t->name, t->name_len, branch ? 1 : 2);
    else if (t->kind == N_ATTR)
        an_expr(c, s, t->a); /* ns.attr = ...: a use of ns */
    else
        for (size_t i = 0; i < t->n_kids; i++)
            an_store(c, s, t->kids[i], branch);
}

static void an_stmt(an_ctx *c, an_scope *s, tpl_node *n, int branch);

static void an_scope_body(an_ctx *c, an_scope *parent, tpl_node *body, const tpl_node *target,
                          const tpl_node *const *params, size_t n_params, const tpl_node *pre) {
    if (!body)
        return;
    an_scope *sc = an_new(c, parent, body);
    if (!sc)
        return;
    if (target) {
        an_store(c, sc, target, 1);
        an_ref(c, sc, "loop", 4, 1);
    }
    for (size_t i = 0; i < n_params; i++) {
        an_ref(c, sc, params[i]->name, params[i]->name_len, 1);
        an_expr(c, sc, params[i]->a);
    }
    an_expr(c, sc, pre);
    an_stmt(c, sc, body, 0);
}

static void an_stmt(an_ctx *c, an_scope *s, tpl_node *n, int branch) {
    if (!n || c->oom)
        return;
    switch (n->kind) {
    case N_BODY:
        for (size_t i = 0; i < n->n_kids; i++)
            an_stmt(c, s, n->kids[i], branch);
        break;
    case N_OUT:
        an_expr(c, s, n->a);
        break;
    case N_IF:
        an_expr(c, s, n->a);
        an_stmt(c, s, n->b, branch + 1);
        an_stmt(c, s, n->c, branch + 1);
        break;
    case N_FOR:
        an_expr(c, s, n->a);
        an_scope_body(c, s, n->b, n->kids[0], NULL, 0, n->d);
        an_scope_body(c, s, n->c, NULL, NULL, 0, NULL);
        break;
    case N_SET:
        an_expr(c, s, n->b);
        an_store(c, s, n->a, branch);
        break;
    case N_SETBLOCK:
        an_scope_body(c, s, n->b, NULL, NULL, 0, NULL);
        an_ref(c, s, n->name, n->name_len, branch ? 1 : 2);
        break;
    case N_MACRO:
        an_ref(c, s, n->name, n->name_len, branch ? 1 : 2);
        an_scope_body(c, s, n->b, NULL, (const tpl_node *const *)n->kids, n->n_kids, NULL);
        break;
    case N_FILTERBLOCK:
        an_expr(c, s, n->a);
        an_scope_body(c, s, n->b, NULL, NULL, 0, NULL);
        break;
    case N_CALLBLOCK:
        an_expr(c, s, n->a);
        an_scope_body(c, s, n->b, NULL, (const tpl_node *const *)n->kids, n->n_kids, NULL);
        break;
    case N_WITH: {
        /* values are evaluated outside; the targets are bound in the body's scope */
        for (size_t i = 1; i < n->n_kids; i += 2)
            an_expr(c, s, n->kids[i]);
        an_scope *sc = an_new(c, s, n->b);
        if (!sc)
            break;
        for (size_t i = 0; i < n->n_kids; i += 2)
            an_store(c, sc, n->kids[i], 1);
        an_stmt(c, sc, n->b, 0);
        break;
    }
    default:
        break;
    }
}

static bool analyze_scopes(P *p, tpl_node *root) {
    an_ctx c = {NULL, false};
    an_scope *rs = an_new(&c, NULL, root);
    if (rs)
        an_stmt(&c, rs, root, 0);
    bool ok = !c.oom;
    for (an_scope *s = c.all; s && ok; s = s->next_all) {
        size_t cnt = 0;
        for (int pass = 0; pass < 2 && ok; pass++) {
            for (size_t i = 0; i < s->n; i++) {
                if (s->kind[i] != 2)
                    continue;
                bool outer = false;
                for (an_scope *q = s->parent; q && !outer; q = q->parent)
                    outer = an_has(q, s->names[i], s->lens[i]);
                if (outer)
                    continue;
                if (pass == 1) {
                    s->body->shadow[cnt] = s->names[i];
                    s->body->shadow_len[cnt] = s->lens[i];
                }
                cnt++;
            }
            if (pass == 0 && cnt) {
                s->body->shadow = tpl_alloc(p->a, cnt * sizeof(char *));
                s->body->shadow_len = tpl_alloc(p->a, cnt * sizeof(size_t));
                if (!s->body->shadow || !s->body->shadow_len)
                    ok = false;
                s->body->n_shadow = cnt;
                cnt = 0;
            } else if (pass == 0) {
                break;
            }
        }
    }
    while (c.all) {
        an_scope *nx = c.all->next_all;
        tp_free(c.all->names);
        tp_free(c.all->lens);
        tp_free(c.all->kind);
        tp_free(c.all);
        c.all = nx;
    }
    return ok ? true : oom(p);
}

/* Unknown filters and tests: Jinja2 fails at compile time, except inside an if statement
 * (its test and branches) or a conditional expression, where it fails only when the filter
 * is actually called; a loop, macro, block-set or with body starts a new, strict frame. */
static bool check_names(P *p, const tpl_node *n, bool soft) {
    if (!n)
        return true;
    if ((n->kind == N_FILTER || n->kind == N_TEST) && n->builtin < 0 && !soft)
        return pfail(p, n->line, "unsupported %s '%s'", n->kind == N_FILTER ? "filter" : "test",
                     n->name);
    switch (n->kind) {
    case N_IF:
    case N_COND:
        soft = true;
        break;
    case N_FOR:
        return check_names(p, n->a, soft) && check_names(p, n->b, false) &&
               check_names(p, n->c, false) && check_names(p, n->d, false);
    case N_CALLBLOCK:
        return check_names(p, n->a, soft) && check_names(p, n->b, false);
    case N_MACRO:
    case N_SETBLOCK:
    case N_FILTERBLOCK:
        soft = false;
        break;
    case N_WITH:
        for (size_t i = 1; i < n->n_kids; i += 2)
            if (!check_names(p, n->kids[i], soft))
                return false;
        return check_names(p, n->b, false);
    default:
        break;
    }
    if (!check_names(p, n->a, soft) || !check_names(p, n->b, soft) || !check_names(p, n->c, soft) ||
        !check_names(p, n->d, soft))
        return false;
    for (size_t i = 0; i < n->n_kids; i++)
        if (!check_names(p, n->kids[i], soft))
            return false;
    return true;
}

tp_status tpl_parse(tp_template *t, const char *src, size_t len, tp_error *err) {
    /* normalise newlines and drop one trailing newline (keep_trailing_newline=False) */
    char *s = tpl_alloc(&t->arena, len + 1);
    if (!s)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "template: out of memory");
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[k++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n')
                i++;
        } else {
            s[k++] = src[i];
        }
    }
    if (k && s[k - 1] == '\n')
        k--;
    s[k] = 0;
    P p = {0};
    p.t = t;
    p.a = &t->arena;
    p.src = s;
    p.n = k;
    p.err = err;
    bool ok = lex(&p);
    if (ok) {
        int which;
        ok = parse_body(&p, &t->root, NULL, &which);
    }
    if (ok)
        ok = analyze_scopes(&p, t->root);
    if (ok)
        ok = check_names(&p, t->root, false);
    tp_free(p.toks);
    if (!ok) {
        if (!p.failed)
            return tp_fail(err, TP_ERR_TEMPLATE, "template: compile failed");
        return p.st;
    }
    return TP_OK;
}
