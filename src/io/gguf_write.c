/*
 * gguf_write.c — the GGUF writer (see gguf.h): metadata and tensor infos are
 * collected in memory (small), then the file is streamed: header, key/values in
 * the order added, tensor infos with offsets laid out back to back at the
 * alignment, zero padding, and the tensor bytes, produced in row chunks of
 * about 1 MiB by the caller's fill callback (or copied from data). Files are
 * written to "<path>.tmp" and renamed into place only when complete, so a
 * failed conversion never leaves a truncated .gguf behind.
 *
 * Always version 3, little-endian (this library runs on little-endian hosts
 * only: x86-64). The alignment is general.alignment when the caller set it (a
 * u32 power of two), else 32.
 */
#include "io/gguf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct wkv {
    char *key;
    tp_gguf_type type;
    tp_gguf_type arr_type;
    uint64_t n;
    uint8_t *bytes; /* the serialized value (everything after the type field) */
    size_t n_bytes;
} wkv;

typedef struct wtensor {
    char *name;
    tp_dtype dtype;
    uint32_t ggml;
    int n_dims;
    int64_t ne[TP_GGUF_MAX_DIMS];
    size_t row_bytes;
    int64_t n_rows;
    size_t n_bytes;
    uint64_t offset;
    const void *data;
} wtensor;

struct tp_gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
};

tp_gguf_writer *tp_gguf_writer_new(void) {
    return tp_calloc(1, sizeof(tp_gguf_writer));
}

void tp_gguf_writer_free(tp_gguf_writer *w) {
    if (!w)
        return;
    for (size_t i = 0; i < w->n_kv; i++) {
        tp_free(w->kv[i].key);
        tp_free(w->kv[i].bytes);
    }
    for (size_t i = 0; i < w->n_t; i++)
        tp_free(w->t[i].name);
    tp_free(w->kv);
    tp_free(w->t);
    tp_free(w);
}

/* ---- metadata ---- */

static size_t scalar_size(tp_gguf_type t) {
    switch (t) {
    case TP_GGUF_UINT8:
    case TP_GGUF_INT8:
    case TP_GGUF_BOOL:
        return 1;
    case TP_GGUF_UINT16:
    case TP_GGUF_INT16:
        return 2;
    case TP_GGUF_UINT32:
    case TP_GGUF_INT32:
    case TP_GGUF_FLOAT32:
        return 4;
    case TP_GGUF_UINT64:
    case TP_GGUF_INT64:
    case TP_GGUF_FLOAT64:
        return 8;
    default:
        return 0;
    }
}

static tp_status check_key(tp_gguf_writer *w, const char *key, tp_error *err) {
    if (!w || !key || !*key)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "gguf writer: empty key or NULL argument");
    size_t n = strlen(key);
    if (tp_utf8_validate(key, n) != n)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "gguf writer: key is not valid UTF-8");
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, key))
            return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "gguf writer: key \"%s\" added twice",
                           key);
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 32;
        wkv *p = tp_realloc_array(w->kv, cap, sizeof *p);
        if (!p)
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        w->kv = p;
        w->cap_kv = cap;
    }
    return TP_OK;
}

/* Appends a kv whose serialized value is `bytes` (ownership taken). */
static tp_status push_kv(tp_gguf_writer *w, const char *key, tp_gguf_type type,
                         tp_gguf_type arr_type, uint64_t n, uint8_t *bytes, size_t n_bytes,
                         tp_error *err) {
    tp_status st = check_key(w, key, err);
    if (st) {
        tp_free(bytes);
        return st;
    }
    char *k = tp_strdup(key);
    if (!k) {
        tp_free(bytes);
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    }
    w->kv[w->n_kv++] = (wkv){k, type, arr_type, n, bytes, n_bytes};
    return TP_OK;
}

tp_status tp_gguf_set_scalar(tp_gguf_writer *w, const char *key, tp_gguf_type type,
                             const void *value, tp_error *err) {
    size_t sz = scalar_size(type);
    if (!sz || !value)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT,
                       "gguf writer: key \"%s\": type %d is not a fixed-size scalar",
                       key ? key : "(null)", (int)type);
    uint8_t *b = tp_malloc(sz);
    if (!b)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    memcpy(b, value, sz);
    if (type == TP_GGUF_BOOL)
        b[0] = b[0] != 0;
    return push_kv(w, key, type, TP_GGUF_TYPE_COUNT, 1, b, sz, err);
}

tp_status tp_gguf_set_u32(tp_gguf_writer *w, const char *key, uint32_t v, tp_error *err) {
    return tp_gguf_set_scalar(w, key, TP_GGUF_UINT32, &v, err);
}
tp_status tp_gguf_set_i32(tp_gguf_writer *w, const char *key, int32_t v, tp_error *err) {
    return tp_gguf_set_scalar(w, key, TP_GGUF_INT32, &v, err);
}
tp_status tp_gguf_set_u64(tp_gguf_writer *w, const char *key, uint64_t v, tp_error *err) {
    return tp_gguf_set_scalar(w, key, TP_GGUF_UINT64, &v, err);
}
tp_status tp_gguf_set_f32(tp_gguf_writer *w, const char *key, float v, tp_error *err) {
    return tp_gguf_set_scalar(w, key, TP_GGUF_FLOAT32, &v, err);
}
tp_status tp_gguf_set_f64(tp_gguf_writer *w, const char *key, double v, tp_error *err) {
    return tp_gguf_set_scalar(w, key, TP_GGUF_FLOAT64, &v, err);
}
tp_status tp_gguf_set_bool(tp_gguf_writer *w, const char *key, bool v, tp_error *err) {
    uint8_t b = v ? 1 : 0;
    return tp_gguf_set_scalar(w, key, TP_GGUF_BOOL, &b, err);
}

tp_status tp_gguf_set_strn(tp_gguf_writer *w, const char *key, const char *v, size_t len,
                           tp_error *err) {
    if (!v && len)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "gguf writer: key \"%s\": NULL string",
                       key ? key : "(null)");
    size_t total;
    if (!tp_add_size(len, 8, &total))
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "gguf writer: string too long");
    uint8_t *b = tp_malloc(total);
    if (!b)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    uint64_t l = len;
    memcpy(b, &l, 8);
    if (len)
        memcpy(b + 8, v, len);
    return push_kv(w, key, TP_GGUF_STRING, TP_GGUF_TYPE_COUNT, 1, b, total, err);
}

tp_status tp_gguf_set_str(tp_gguf_writer *w, const char *key, const char *v, tp_error *err) {
    return tp_gguf_set_strn(w, key, v, v ? strlen(v) : 0, err);
}

tp_status tp_gguf_set_arr(tp_gguf_writer *w, const char *key, tp_gguf_type elem_type,
                          const void *elems, uint64_t n, tp_error *err) {
    size_t sz = scalar_size(elem_type), body, total;
    if (!sz || (!elems && n))
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT,
                       "gguf writer: key \"%s\": bad array element type or NULL elements",
                       key ? key : "(null)");
    if (n > SIZE_MAX || !tp_mul_size((size_t)n, sz, &body) || !tp_add_size(body, 12, &total))
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "gguf writer: key \"%s\": array too long",
                       key ? key : "(null)");
    uint8_t *b = tp_malloc(total);
    if (!b)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    uint32_t et = (uint32_t)elem_type;
    memcpy(b, &et, 4);
    memcpy(b + 4, &n, 8);
    if (body)
        memcpy(b + 12, elems, body);
    if (elem_type == TP_GGUF_BOOL)
        for (size_t i = 0; i < body; i++)
            b[12 + i] = b[12 + i] != 0;
    return push_kv(w, key, TP_GGUF_ARRAY, elem_type, n, b, total, err);
}

tp_status tp_gguf_set_arr_str(tp_gguf_writer *w, const char *key, const char *const *strs,
                              const size_t *lens, uint64_t n, tp_error *err) {
    if (!strs && n)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "gguf writer: key \"%s\": NULL strings",
                       key ? key : "(null)");
    size_t total = 12;
    for (uint64_t i = 0; i < n; i++) {
        if (!strs[i] && (!lens || lens[i]))
            return tp_fail(err, TP_ERR_INVALID_ARGUMENT,
                           "gguf writer: key \"%s\": string %llu is NULL", key ? key : "(null)",
                           (unsigned long long)i);
        size_t l = lens ? lens[i] : strlen(strs[i]);
        if (!tp_add_size(total, 8, &total) || !tp_add_size(total, l, &total))
            return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "gguf writer: key \"%s\": too long",
                           key ? key : "(null)");
    }
    uint8_t *b = tp_malloc(total);
    if (!b)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    uint32_t et = TP_GGUF_STRING;
    memcpy(b, &et, 4);
    memcpy(b + 4, &n, 8);
    size_t o = 12;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t l = lens ? lens[i] : strlen(strs[i]);
        memcpy(b + o, &l, 8);
        o += 8;
        if (l)
            memcpy(b + o, strs[i], (size_t)l);
        o += (size_t)l;
    }
    return push_kv(w, key, TP_GGUF_ARRAY, TP_GGUF_STRING, n, b, total, err);
}

/* ---- tensors ---- */

tp_status tp_gguf_add_tensor(tp_gguf_writer *w, const char *name, tp_dtype dtype, int n_dims,
                             const int64_t *ne, const void *data, tp_error *err) {
    if (!w || !name || !*name || !ne)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "gguf writer: empty tensor name or NULL");
    size_t nl = strlen(name);
    if (tp_utf8_validate(name, nl) != nl)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "gguf writer: tensor name is not valid UTF-8");
    uint32_t ggml;
    if (!tp_gguf_dtype_to_ggml(dtype, &ggml))
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT,
                       "gguf writer: tensor '%s': dtype %s cannot be stored in GGUF", name,
                       tp_dtype_name(dtype));
    if (n_dims < 1 || n_dims > TP_GGUF_MAX_DIMS)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT,
                       "gguf writer: tensor '%s': %d dims (must be 1..4)", name, n_dims);
    for (size_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name))
            return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "gguf writer: tensor '%s' added twice",
                           name);
    wtensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dtype;
    t.ggml = ggml;
    t.n_dims = n_dims;
    t.data = data;
    uint64_t rows = 1;
    for (int d = 0; d < TP_GGUF_MAX_DIMS; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        if (t.ne[d] < 1)
            return tp_fail(err, TP_ERR_INVALID_ARGUMENT,
                           "gguf writer: tensor '%s': dim %d is %lld (must be >= 1)", name, d,
                           (long long)t.ne[d]);
        if (d > 0 && __builtin_mul_overflow(rows, (uint64_t)t.ne[d], &rows))
            return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "gguf writer: tensor '%s' too large",
                           name);
    }
    if (!tp_dtype_row_bytes(dtype, (uint64_t)t.ne[0], &t.row_bytes))
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT,
                       "gguf writer: tensor '%s': row of %lld elements is not a whole number of "
                       "%s blocks (%zu)",
                       name, (long long)t.ne[0], tp_dtype_name(dtype), tp_dtype_block(dtype));
    if (rows > (uint64_t)INT64_MAX || !tp_mul_size(t.row_bytes, (size_t)rows, &t.n_bytes))
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "gguf writer: tensor '%s' too large", name);
    t.n_rows = (int64_t)rows;
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *p = tp_realloc_array(w->t, cap, sizeof *p);
        if (!p)
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        w->t = p;
        w->cap_t = cap;
    }
    if (!(t.name = tp_strdup(name)))
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    w->t[w->n_t++] = t;
    return TP_OK;
}

/* ---- output ---- */

/* A sink: a FILE or a growing memory buffer. */
typedef struct sink {
    FILE *f;
    tp_buf *mem;
    const char *path;
} sink;

static tp_status put(sink *s, const void *p, size_t n, tp_error *err) {
    if (!n)
        return TP_OK;
    if (s->f) {
        if (fwrite(p, 1, n, s->f) != n)
            return tp_fail(err, TP_ERR_IO, "%s: write failed: %s", s->path, strerror(errno));
        return TP_OK;
    }
    tp_buf_append(s->mem, p, n);
    if (s->mem->oom)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory writing GGUF");
    return TP_OK;
}

static tp_status put_zeros(sink *s, size_t n, tp_error *err) {
    static const uint8_t z[64];
    while (n) {
        size_t k = n < sizeof z ? n : sizeof z;
        tp_status st = put(s, z, k, err);
        if (st)
            return st;
        n -= k;
    }
    return TP_OK;
}

static tp_status put_str(sink *s, const char *str, tp_error *err) {
    uint64_t l = strlen(str);
    tp_status st = put(s, &l, 8, err);
    return st ? st : put(s, str, (size_t)l, err);
}

static tp_status alignment_of(const tp_gguf_writer *w, uint32_t *align, tp_error *err) {
    *align = TP_GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, "general.alignment"))
            continue;
        uint32_t a = 0;
        if (w->kv[i].type != TP_GGUF_UINT32)
            return tp_fail(err, TP_ERR_INVALID_ARGUMENT,
                           "gguf writer: general.alignment must be a u32");
        memcpy(&a, w->kv[i].bytes, 4);
        if (a == 0 || (a & (a - 1)) || a > (1u << 20))
            return tp_fail(err, TP_ERR_INVALID_ARGUMENT,
                           "gguf writer: general.alignment %u is not a power of two <= 1 MiB", a);
        *align = a;
    }
    return TP_OK;
}

static tp_status emit(tp_gguf_writer *w, sink *s, tp_gguf_fill_fn fill, void *user, tp_error *err) {
    uint32_t align;
    tp_status st = alignment_of(w, &align, err);
    if (st)
        return st;
    /* Offsets: back to back, each aligned. */
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        size_t a;
        if (!tp_align_up((size_t)off, align, &a))
            return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "gguf writer: file too large");
        w->t[i].offset = a;
        if (__builtin_add_overflow((uint64_t)a, (uint64_t)w->t[i].n_bytes, &off))
            return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "gguf writer: file too large");
        if (!w->t[i].data && !fill)
            return tp_fail(err, TP_ERR_INVALID_ARGUMENT,
                           "gguf writer: tensor '%s' has no data and there is no fill callback",
                           w->t[i].name);
    }
    uint32_t magic = TP_GGUF_MAGIC, version = 3;
    uint64_t nt = w->n_t, nkv = w->n_kv;
    size_t pos = 0;
    if ((st = put(s, &magic, 4, err)) || (st = put(s, &version, 4, err)) ||
        (st = put(s, &nt, 8, err)) || (st = put(s, &nkv, 8, err)))
        return st;
    pos = 24;
    for (size_t i = 0; i < w->n_kv; i++) {
        uint32_t type = (uint32_t)w->kv[i].type;
        if ((st = put_str(s, w->kv[i].key, err)) || (st = put(s, &type, 4, err)) ||
            (st = put(s, w->kv[i].bytes, w->kv[i].n_bytes, err)))
            return st;
        pos += 8 + strlen(w->kv[i].key) + 4 + w->kv[i].n_bytes;
    }
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        uint32_t nd = (uint32_t)t->n_dims;
        if ((st = put_str(s, t->name, err)) || (st = put(s, &nd, 4, err)))
            return st;
        for (int d = 0; d < t->n_dims; d++) {
            uint64_t v = (uint64_t)t->ne[d];
            if ((st = put(s, &v, 8, err)))
                return st;
        }
        if ((st = put(s, &t->ggml, 4, err)) || (st = put(s, &t->offset, 8, err)))
            return st;
        pos += 8 + strlen(t->name) + 4 + 8 * (size_t)t->n_dims + 4 + 8;
    }
    size_t data_start;
    if (!tp_align_up(pos, align, &data_start))
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "gguf writer: file too large");
    if ((st = put_zeros(s, data_start - pos, err)))
        return st;
    /* Tensor data, in row chunks of about 1 MiB. */
    uint8_t *chunk = NULL;
    size_t chunk_cap = 0;
    uint64_t at = 0;
    for (size_t i = 0; i < w->n_t && st == TP_OK; i++) {
        const wtensor *t = &w->t[i];
        if ((st = put_zeros(s, (size_t)(t->offset - at), err)))
            break;
        if (t->data) {
            st = put(s, t->data, t->n_bytes, err);
        } else {
            int64_t per = (int64_t)((size_t)1 << 20) / (int64_t)(t->row_bytes ? t->row_bytes : 1);
            if (per < 1)
                per = 1;
            if (per > t->n_rows)
                per = t->n_rows;
            size_t need = (size_t)per * t->row_bytes;
            if (need > chunk_cap) {
                uint8_t *p = tp_realloc(chunk, need);
                if (!p) {
                    st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
                    break;
                }
                chunk = p;
                chunk_cap = need;
            }
            for (int64_t r = 0; r < t->n_rows && st == TP_OK; r += per) {
                int64_t nr = t->n_rows - r < per ? t->n_rows - r : per;
                st = fill(user, i, r, nr, chunk, err);
                if (st == TP_OK)
                    st = put(s, chunk, (size_t)nr * t->row_bytes, err);
            }
        }
        at = t->offset + t->n_bytes;
    }
    tp_free(chunk);
    return st;
}

tp_status tp_gguf_write(tp_gguf_writer *w, const char *path, tp_gguf_fill_fn fill, void *user,
                        tp_error *err) {
    if (!w || !path)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_gguf_write: NULL argument");
    size_t n = strlen(path);
    char *tmp = tp_malloc(n + 5);
    if (!tmp)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        tp_status st = tp_fail(err, TP_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        tp_free(tmp);
        return st;
    }
    sink s = {.f = f, .mem = NULL, .path = tmp};
    tp_status st = emit(w, &s, fill, user, err);
    if (fclose(f) != 0 && st == TP_OK)
        st = tp_fail(err, TP_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
    if (st == TP_OK && rename(tmp, path) != 0)
        st = tp_fail(err, TP_ERR_IO, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
    if (st != TP_OK)
        remove(tmp);
    tp_free(tmp);
    return st;
}

tp_status tp_gguf_write_memory(tp_gguf_writer *w, tp_gguf_fill_fn fill, void *user, uint8_t **out,
                               size_t *size, tp_error *err) {
    if (!w || !out || !size)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_gguf_write_memory: NULL argument");
    *out = NULL;
    *size = 0;
    tp_buf b = {0};
    sink s = {.f = NULL, .mem = &b, .path = "(memory)"};
    tp_status st = emit(w, &s, fill, user, err);
    if (st != TP_OK) {
        tp_buf_free(&b);
        return st;
    }
    *size = b.len;
    *out = (uint8_t *)tp_buf_take(&b);
    if (!*out)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    return TP_OK;
}
