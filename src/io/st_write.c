/*
 * st_write.c — streaming safetensors writer and the Python-style JSON printer
 * (format notes in st_write.h).
 *
 * The header is built before any data: names are sorted (byte order, as the
 * reference writer and our reader do) and offsets laid out contiguously. Data
 * then streams through one 1 MiB buffer per call.
 */
#include "io/st_write.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_BYTES ((size_t)1 << 20)

static int cmp_idx_name(const void *a, const void *b, void *ctx) {
    const tp_st_wtensor *t = ctx;
    return strcmp(t[*(const size_t *)a].name, t[*(const size_t *)b].name);
}

/* qsort_r is a GNU extension; a small insertion+merge sort keeps this portable. */
static void sort_idx(size_t *idx, size_t n, const tp_st_wtensor *t) {
    if (n < 2)
        return;
    size_t h = n / 2;
    sort_idx(idx, h, t);
    sort_idx(idx + h, n - h, t);
    size_t *tmp = tp_malloc(n * sizeof *tmp);
    if (!tmp) { /* fall back to insertion sort: no allocation needed */
        for (size_t i = 1; i < n; i++)
            for (size_t j = i; j > 0 && cmp_idx_name(&idx[j - 1], &idx[j], (void *)t) > 0; j--) {
                size_t s = idx[j];
                idx[j] = idx[j - 1];
                idx[j - 1] = s;
            }
        return;
    }
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp[k++] = cmp_idx_name(&idx[j], &idx[i], (void *)t) < 0 ? idx[j++] : idx[i++];
    while (i < h)
        tmp[k++] = idx[i++];
    while (j < n)
        tmp[k++] = idx[j++];
    memcpy(idx, tmp, n * sizeof *tmp);
    tp_free(tmp);
}

/* JSON string with the escapes the reference writer (serde_json) uses. */
static void json_str(tp_buf *b, const char *s) {
    tp_buf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            tp_buf_puts(b, "\\\"");
            break;
        case '\\':
            tp_buf_puts(b, "\\\\");
            break;
        case '\n':
            tp_buf_puts(b, "\\n");
            break;
        case '\r':
            tp_buf_puts(b, "\\r");
            break;
        case '\t':
            tp_buf_puts(b, "\\t");
            break;
        case '\b':
            tp_buf_puts(b, "\\b");
            break;
        case '\f':
            tp_buf_puts(b, "\\f");
            break;
        default:
            if (*p < 0x20)
                tp_buf_printf(b, "\\u%04x", *p);
            else
                tp_buf_append(b, p, 1);
        }
    }
    tp_buf_puts(b, "\"");
}

static tp_status write_all(FILE *f, const void *p, size_t n, const char *path, tp_error *err) {
    if (n && fwrite(p, 1, n, f) != n)
        return tp_fail(err, TP_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return TP_OK;
}

tp_status tp_st_write(const char *path, const tp_st_wtensor *t, size_t n, tp_st_fill_fn fill,
                      void *user, tp_error *err) {
    if (!path || (n && !t))
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_st_write: bad arguments");
    size_t *idx = tp_malloc_array(n ? n : 1, sizeof *idx);
    uint64_t *nbytes = tp_malloc_array(n ? n : 1, sizeof *nbytes);
    char *tmp_path = NULL;
    void *chunk = NULL;
    FILE *f = NULL;
    tp_buf h = {0};
    tp_status st = TP_OK;
    if (!idx || !nbytes) {
        st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
        goto done;
    }
    /* validate */
    for (size_t i = 0; i < n; i++) {
        const tp_st_wtensor *w = &t[i];
        size_t len = w->name ? strlen(w->name) : 0;
        if (!len || tp_utf8_validate(w->name, len) != len || strcmp(w->name, "__metadata__") == 0) {
            st = tp_fail(err, TP_ERR_INVALID_ARGUMENT,
                         "%s: tensor %zu: name is empty, not UTF-8, or reserved", path, i);
            goto done;
        }
        if (w->n_dims < 0 || w->n_dims > TP_ST_MAX_DIMS || (unsigned)w->dtype >= TP_DTYPE_COUNT) {
            st = tp_fail(err, TP_ERR_INVALID_ARGUMENT, "%s: tensor '%s': bad dtype or rank", path,
                         w->name);
            goto done;
        }
        uint64_t e = 1;
        for (int d = 0; d < w->n_dims; d++) {
            if (w->shape[d] < 0 || __builtin_mul_overflow(e, (uint64_t)w->shape[d], &e)) {
                st = tp_fail(err, TP_ERR_INVALID_ARGUMENT,
                             "%s: tensor '%s': negative dim or size overflow", path, w->name);
                goto done;
            }
        }
        if (__builtin_mul_overflow(e, (uint64_t)tp_dtype_size(w->dtype), &nbytes[i]) ||
            e > (uint64_t)INT64_MAX) {
            st = tp_fail(err, TP_ERR_INVALID_ARGUMENT, "%s: tensor '%s': size overflow", path,
                         w->name);
            goto done;
        }
        if (!w->data && !fill) {
            st = tp_fail(err, TP_ERR_INVALID_ARGUMENT, "%s: tensor '%s': no data and no fill", path,
                         w->name);
            goto done;
        }
        idx[i] = i;
    }
    sort_idx(idx, n, t);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(t[idx[i - 1]].name, t[idx[i]].name) == 0) {
            st = tp_fail(err, TP_ERR_INVALID_ARGUMENT, "%s: tensor '%s' given twice", path,
                         t[idx[i]].name);
            goto done;
        }
    }

    /* header */
    tp_buf_puts(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0;
    for (size_t k = 0; k < n; k++) {
        const tp_st_wtensor *w = &t[idx[k]];
        tp_buf_puts(&h, ",");
        json_str(&h, w->name);
        tp_buf_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", tp_dtype_name(w->dtype));
        for (int d = 0; d < w->n_dims; d++)
            tp_buf_printf(&h, d ? ",%lld" : "%lld", (long long)w->shape[d]);
        if (__builtin_add_overflow(off, nbytes[idx[k]], &off)) {
            st = tp_fail(err, TP_ERR_INVALID_ARGUMENT, "%s: total size overflow", path);
            goto done;
        }
        tp_buf_printf(&h, "],\"data_offsets\":[%llu,%llu]}",
                      (unsigned long long)(off - nbytes[idx[k]]), (unsigned long long)off);
    }
    tp_buf_puts(&h, "}");
    while (!h.oom && h.len % 8 != 0)
        tp_buf_puts(&h, " ");
    if (h.oom) {
        st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "%s: out of memory for the header", path);
        goto done;
    }

    tmp_path = tp_malloc(strlen(path) + 5);
    chunk = tp_aligned_alloc(CHUNK_BYTES, 1);
    if (!tmp_path || !chunk) {
        st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
        goto done;
    }
    sprintf(tmp_path, "%s.tmp", path);
    f = fopen(tmp_path, "wb");
    if (!f) {
        st = tp_fail(err, TP_ERR_IO, "%s: cannot create: %s", tmp_path, strerror(errno));
        goto done;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    if ((st = write_all(f, len8, 8, tmp_path, err)) != TP_OK ||
        (st = write_all(f, h.data, h.len, tmp_path, err)) != TP_OK)
        goto done;

    /* data, streamed */
    for (size_t k = 0; k < n; k++) {
        size_t i = idx[k];
        const tp_st_wtensor *w = &t[i];
        size_t es = tp_dtype_size(w->dtype);
        if (w->data) {
            if ((st = write_all(f, w->data, (size_t)nbytes[i], tmp_path, err)) != TP_OK)
                goto done;
            continue;
        }
        uint64_t total = nbytes[i] / es, per = CHUNK_BYTES / es;
        for (uint64_t first = 0; first < total; first += per) {
            size_t cnt = (size_t)(total - first < per ? total - first : per);
            if ((st = fill(user, i, (int64_t)first, cnt, chunk, err)) != TP_OK)
                goto done;
            if ((st = write_all(f, chunk, cnt * es, tmp_path, err)) != TP_OK)
                goto done;
        }
    }
    if (fflush(f) != 0 || ferror(f)) {
        st = tp_fail(err, TP_ERR_IO, "%s: write failed: %s", tmp_path, strerror(errno));
        goto done;
    }
    int rc = fclose(f);
    f = NULL;
    if (rc != 0) {
        st = tp_fail(err, TP_ERR_IO, "%s: close failed: %s", tmp_path, strerror(errno));
        goto done;
    }
    if (rename(tmp_path, path) != 0) {
        st =
            tp_fail(err, TP_ERR_IO, "%s: cannot rename to %s: %s", tmp_path, path, strerror(errno));
        goto done;
    }
done:
    if (f)
        fclose(f);
    if (st != TP_OK && tmp_path)
        remove(tmp_path);
    tp_aligned_free(chunk);
    tp_free(tmp_path);
    tp_free(idx);
    tp_free(nbytes);
    tp_buf_free(&h);
    return st;
}

/* ---- Python-style JSON ---- */

void tp_json_py_float(double v, char out[32]) {
    if (isnan(v)) {
        snprintf(out, 32, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, 32, v > 0 ? "Infinity" : "-Infinity");
        return;
    }
    if (v == 0) {
        snprintf(out, 32, signbit(v) ? "-0.0" : "0.0");
        return;
    }
    /* shortest digits that read back as v (what Python's repr uses) */
    char e[40];
    int prec = 1;
    for (; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, v);
        if (strtod(e, NULL) == v)
            break;
    }
    /* e is "[-]d.ddde[+-]XX": split into sign, digits, exponent */
    const char *p = e;
    bool neg = *p == '-';
    if (neg)
        p++;
    char digits[24];
    int nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.')
            digits[nd++] = *p;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = 0;
    int exp10 = atoi(p + 1);
    char *o = out;
    if (neg)
        *o++ = '-';
    if (exp10 >= -4 && exp10 < 16) { /* Python: positional when -4 <= exp < 16 */
        if (exp10 < 0) {
            o += sprintf(o, "0.");
            for (int i = 0; i < -exp10 - 1; i++)
                *o++ = '0';
            o += sprintf(o, "%s", digits);
        } else {
            for (int i = 0; i <= exp10; i++)
                *o++ = i < nd ? digits[i] : '0';
            *o++ = '.';
            if (nd > exp10 + 1)
                o += sprintf(o, "%s", digits + exp10 + 1);
            else
                *o++ = '0';
        }
        *o = 0;
    } else {
        *o++ = digits[0];
        if (nd > 1) {
            *o++ = '.';
            o += sprintf(o, "%s", digits + 1);
        }
        sprintf(o, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
    }
}

cJSON *tp_json_py_number(double v) {
    char s[32];
    tp_json_py_float(v, s);
    return cJSON_CreateRaw(s);
}

static void py_str(tp_buf *b, const char *s) {
    tp_buf_puts(b, "\"");
    size_t n = strlen(s);
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') {
            tp_buf_puts(b, "\\\"");
        } else if (c == '\\') {
            tp_buf_puts(b, "\\\\");
        } else if (c == '\n') {
            tp_buf_puts(b, "\\n");
        } else if (c == '\r') {
            tp_buf_puts(b, "\\r");
        } else if (c == '\t') {
            tp_buf_puts(b, "\\t");
        } else if (c == '\b') {
            tp_buf_puts(b, "\\b");
        } else if (c == '\f') {
            tp_buf_puts(b, "\\f");
        } else if (c < 0x20 || c == 0x7f) {
            tp_buf_printf(b, "\\u%04x", c);
        } else if (c < 0x80) {
            tp_buf_append(b, &s[i], 1);
        } else if (tp_utf8_validate(s + i, n - i) == 0) {
            tp_buf_puts(b, "\\ufffd"); /* invalid byte */
        } else {
            uint32_t cp;
            int len = tp_utf8_decode(s + i, n - i, &cp);
            if (cp >= 0x10000) { /* ensure_ascii: a surrogate pair */
                cp -= 0x10000;
                tp_buf_printf(b, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
            } else {
                tp_buf_printf(b, "\\u%04x", cp);
            }
            i += (size_t)len;
            continue;
        }
        i++;
    }
    tp_buf_puts(b, "\"");
}

static int cmp_key(const void *a, const void *b) {
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    return strcmp(x->string ? x->string : "", y->string ? y->string : "");
}

static void indent(tp_buf *b, int depth) {
    tp_buf_puts(b, "\n");
    for (int i = 0; i < depth; i++)
        tp_buf_puts(b, "  ");
}

static void print_py(const cJSON *v, tp_buf *b, int depth) {
    if (cJSON_IsRaw(v)) {
        tp_buf_puts(b, v->valuestring);
    } else if (cJSON_IsNull(v)) {
        tp_buf_puts(b, "null");
    } else if (cJSON_IsTrue(v)) {
        tp_buf_puts(b, "true");
    } else if (cJSON_IsFalse(v)) {
        tp_buf_puts(b, "false");
    } else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d == floor(d) && fabs(d) < 9.2e18) {
            tp_buf_printf(b, "%lld", (long long)d);
        } else {
            char s[32];
            tp_json_py_float(d, s);
            tp_buf_puts(b, s);
        }
    } else if (cJSON_IsString(v)) {
        py_str(b, v->valuestring);
    } else if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
        bool obj = cJSON_IsObject(v);
        int n = cJSON_GetArraySize(v);
        if (n == 0) {
            tp_buf_puts(b, obj ? "{}" : "[]");
            return;
        }
        const cJSON **items = tp_malloc_array((size_t)n, sizeof *items);
        if (!items) {
            b->oom = true;
            return;
        }
        int k = 0;
        const cJSON *c;
        cJSON_ArrayForEach(c, v) items[k++] = c;
        if (obj)
            qsort(items, (size_t)n, sizeof *items, cmp_key);
        tp_buf_puts(b, obj ? "{" : "[");
        for (int i = 0; i < n; i++) {
            if (i)
                tp_buf_puts(b, ",");
            indent(b, depth + 1);
            if (obj) {
                py_str(b, items[i]->string ? items[i]->string : "");
                tp_buf_puts(b, ": ");
            }
            print_py(items[i], b, depth + 1);
        }
        indent(b, depth);
        tp_buf_puts(b, obj ? "}" : "]");
        tp_free(items);
    }
}

void tp_json_print_py(const cJSON *root, tp_buf *b) {
    print_py(root, b, 0);
}
