/*
 * gguf.c — strict, zero-copy GGUF reader (v2 and v3; see gguf.h for the layout).
 *
 * The file is mapped read-only in one piece (like safetensors.c); tensor data
 * and array values point into the mapping. Keys, tensor names and scalar
 * string values are copied with a NUL so callers can use them as C strings.
 *
 * Every length and count read from the file is checked against the bytes that
 * remain before it is used, so a corrupt file is a clear TP_ERR_FORMAT naming
 * the file and the key or tensor, never a read past the mapping:
 *   - magic "GGUF", version 2 or 3 (1 and big-endian files: UNSUPPORTED);
 *   - n_tensors and n_kv bounded by what the remaining bytes could hold;
 *   - strings: length <= remaining bytes, keys and tensor names valid UTF-8
 *     without NUL bytes, keys non-empty and <= 65535 bytes, names <= 256 bytes;
 *   - value types known; BOOL values 0 or 1; arrays of arrays rejected
 *     (UNSUPPORTED: no model metadata uses them); duplicate keys rejected;
 *   - general.alignment, when present, a u32 power of two (<= 1 GiB);
 *   - tensor infos: 1..4 dims, each >= 1, element count and byte size without
 *     64-bit overflow, a known ggml type (a ggml type tpipe does not read is
 *     UNSUPPORTED naming the tensor and type), the row length a whole number of
 *     blocks, offset aligned, the bytes inside the data section, no two tensors
 *     overlapping, no duplicate names.
 */
#include "io/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_KEY_LEN 65535u
#define MAX_NAME_LEN 256u
#define MAX_ALIGNMENT (1u << 30)

struct tp_gguf {
    char *path;
    const uint8_t *map;
    size_t size;
    bool mapped; /* munmap on close (else the caller's buffer) */
    uint32_t version;
    uint32_t alignment;
    size_t data_off;
    tp_gguf_kv *kv;
    size_t n_kv;
    tp_gguf_tensor *t;
    size_t n_t;
    size_t *kv_sorted; /* indices sorted by key */
    size_t *t_sorted;  /* indices sorted by name */
};

/* ---------------------------------------------------------------- type tables */

static const char *const kTypeNames[TP_GGUF_TYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};

const char *tp_gguf_type_name(tp_gguf_type t) {
    return (unsigned)t < TP_GGUF_TYPE_COUNT ? kTypeNames[t] : "unknown";
}

static size_t type_size(tp_gguf_type t) {
    static const uint8_t sz[TP_GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return (unsigned)t < TP_GGUF_TYPE_COUNT ? sz[t] : 0;
}

/* ggml's type numbering (ggml.h enum ggml_type); gaps are removed types. */
static const char *const kGgmlNames[] = {
    "F32",
    "F16",
    "Q4_0",
    "Q4_1",
    "Q4_2 (removed)",
    "Q4_3 (removed)",
    "Q5_0",
    "Q5_1",
    "Q8_0",
    "Q8_1",
    "Q2_K",
    "Q3_K",
    "Q4_K",
    "Q5_K",
    "Q6_K",
    "Q8_K",
    "IQ2_XXS",
    "IQ2_XS",
    "IQ3_XXS",
    "IQ1_S",
    "IQ4_NL",
    "IQ3_S",
    "IQ2_S",
    "IQ4_XS",
    "I8",
    "I16",
    "I32",
    "I64",
    "F64",
    "IQ1_M",
    "BF16",
    "Q4_0_4_4 (removed)",
    "Q4_0_4_8 (removed)",
    "Q4_0_8_8 (removed)",
    "TQ1_0",
    "TQ2_0",
    "IQ4_NL_4_4 (removed)",
    "IQ4_NL_4_8 (removed)",
    "IQ4_NL_8_8 (removed)",
    "MXFP4",
};
#define N_GGML_NAMES (sizeof kGgmlNames / sizeof kGgmlNames[0])

const char *tp_gguf_ggml_type_name(uint32_t t) {
    return t < N_GGML_NAMES ? kGgmlNames[t] : "unknown";
}

bool tp_gguf_dtype_from_ggml(uint32_t g, tp_dtype *out) {
    switch (g) {
    case TP_GGML_F32:
        *out = TP_DTYPE_F32;
        return true;
    case TP_GGML_F16:
        *out = TP_DTYPE_F16;
        return true;
    case TP_GGML_BF16:
        *out = TP_DTYPE_BF16;
        return true;
    case TP_GGML_Q8_0:
        *out = TP_DTYPE_Q8_0;
        return true;
    case TP_GGML_Q4_K:
        *out = TP_DTYPE_Q4_K;
        return true;
    case TP_GGML_Q6_K:
        *out = TP_DTYPE_Q6_K;
        return true;
    default:
        return false;
    }
}

bool tp_gguf_dtype_to_ggml(tp_dtype t, uint32_t *out) {
    switch (t) {
    case TP_DTYPE_F32:
        *out = TP_GGML_F32;
        return true;
    case TP_DTYPE_F16:
        *out = TP_GGML_F16;
        return true;
    case TP_DTYPE_BF16:
        *out = TP_GGML_BF16;
        return true;
    case TP_DTYPE_Q8_0:
        *out = TP_GGML_Q8_0;
        return true;
    case TP_DTYPE_Q4_K:
        *out = TP_GGML_Q4_K;
        return true;
    case TP_DTYPE_Q6_K:
        *out = TP_GGML_Q6_K;
        return true;
    default:
        return false;
    }
}

/* ---------------------------------------------------------------- parsing */

typedef struct cursor {
    const uint8_t *p;
    size_t pos, size;
} cursor;

static size_t left(const cursor *c) {
    return c->size - c->pos;
}

static bool rd(cursor *c, void *out, size_t n) {
    if (left(c) < n)
        return false;
    memcpy(out, c->p + c->pos, n);
    c->pos += n;
    return true;
}

/* Shows a string from the file safely in a message (invalid bytes as \xNN). */
static const char *show(const uint8_t *s, size_t n, char *buf, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < n && o + 8 < cap; i++) {
        unsigned char ch = s[i];
        if (ch >= 0x20 && ch < 0x7f)
            buf[o++] = (char)ch;
        else
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", ch);
    }
    if (o + 8 >= cap && n > 0 && o + 4 <= cap) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

/* Reads a string (u64 length + bytes): *s points into the file. `what` names
 * the field for errors. */
static tp_status rd_str(tp_gguf *g, cursor *c, const char *what, const uint8_t **s, uint64_t *len,
                        tp_error *err) {
    size_t at = c->pos;
    if (!rd(c, len, 8))
        return tp_fail(err, TP_ERR_FORMAT, "%s: truncated at byte %zu reading the length of %s",
                       g->path, at, what);
    if (*len > left(c))
        return tp_fail(err, TP_ERR_FORMAT,
                       "%s: %s at byte %zu has length %llu, past the end of the file (%zu bytes "
                       "left)",
                       g->path, what, at, (unsigned long long)*len, left(c));
    *s = c->p + c->pos;
    c->pos += (size_t)*len;
    return TP_OK;
}

static char *copy_str(const uint8_t *s, uint64_t len) {
    char *o = tp_malloc((size_t)len + 1);
    if (o) {
        if (len)
            memcpy(o, s, (size_t)len);
        o[len] = '\0';
    }
    return o;
}

static bool clean_name(const uint8_t *s, uint64_t len) {
    return memchr(s, 0, (size_t)len) == NULL &&
           tp_utf8_validate((const char *)s, (size_t)len) == (size_t)len;
}

static tp_status parse_value(tp_gguf *g, cursor *c, tp_gguf_kv *kv, tp_error *err) {
    const char *key = kv->key;
    size_t at = c->pos;
    if (kv->type == TP_GGUF_STRING) {
        const uint8_t *s;
        uint64_t len;
        char what[MAX_NAME_LEN + 64];
        snprintf(what, sizeof what, "the value of key '%.200s'", key);
        tp_status st = rd_str(g, c, what, &s, &len, err);
        if (st)
            return st;
        kv->data = s;
        kv->str_len = len;
        kv->str = copy_str(s, len);
        if (!kv->str)
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory reading %s", g->path);
        return TP_OK;
    }
    if (kv->type != TP_GGUF_ARRAY) {
        size_t sz = type_size(kv->type);
        if (left(c) < sz)
            return tp_fail(err, TP_ERR_FORMAT,
                           "%s: key '%s': truncated at byte %zu (a %s value needs %zu bytes)",
                           g->path, key, at, tp_gguf_type_name(kv->type), sz);
        kv->data = c->p + c->pos;
        c->pos += sz;
        if (kv->type == TP_GGUF_BOOL && kv->data[0] > 1)
            return tp_fail(err, TP_ERR_FORMAT, "%s: key '%s': bool value %u is not 0 or 1", g->path,
                           key, kv->data[0]);
        return TP_OK;
    }
    uint32_t et;
    if (!rd(c, &et, 4) || !rd(c, &kv->n, 8))
        return tp_fail(err, TP_ERR_FORMAT, "%s: key '%s': truncated array header at byte %zu",
                       g->path, key, at);
    if (et >= TP_GGUF_TYPE_COUNT)
        return tp_fail(err, TP_ERR_FORMAT, "%s: key '%s': unknown array element type %u", g->path,
                       key, et);
    if (et == TP_GGUF_ARRAY)
        return tp_fail(err, TP_ERR_UNSUPPORTED,
                       "%s: key '%s': arrays of arrays (nested arrays) are not supported", g->path,
                       key);
    kv->arr_type = (tp_gguf_type)et;
    kv->data = c->p + c->pos;
    if (et == TP_GGUF_STRING) {
        /* Each element takes at least its 8-byte length. */
        if (kv->n > left(c) / 8)
            return tp_fail(err, TP_ERR_FORMAT,
                           "%s: key '%s': array of %llu strings cannot fit in the %zu bytes left",
                           g->path, key, (unsigned long long)kv->n, left(c));
        uint64_t *offs = tp_malloc_array((size_t)kv->n ? (size_t)kv->n : 1, sizeof *offs);
        if (!offs)
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory reading %s", g->path);
        kv->str_offs = offs;
        size_t base = c->pos;
        for (uint64_t i = 0; i < kv->n; i++) {
            uint64_t len;
            size_t ep = c->pos;
            offs[i] = ep - base;
            if (!rd(c, &len, 8) || len > left(c))
                return tp_fail(err, TP_ERR_FORMAT,
                               "%s: key '%s': string %llu of the array at byte %zu runs past the "
                               "end of the file",
                               g->path, key, (unsigned long long)i, ep);
            c->pos += (size_t)len;
        }
        return TP_OK;
    }
    size_t sz = type_size(kv->arr_type);
    if (kv->n > left(c) / sz)
        return tp_fail(err, TP_ERR_FORMAT,
                       "%s: key '%s': array of %llu %s values needs more than the %zu bytes left",
                       g->path, key, (unsigned long long)kv->n, tp_gguf_type_name(kv->arr_type),
                       left(c));
    if (kv->arr_type == TP_GGUF_BOOL)
        for (uint64_t i = 0; i < kv->n; i++)
            if (kv->data[i] > 1)
                return tp_fail(err, TP_ERR_FORMAT,
                               "%s: key '%s': bool element %llu is %u (not 0 or 1)", g->path, key,
                               (unsigned long long)i, kv->data[i]);
    c->pos += (size_t)kv->n * sz;
    return TP_OK;
}

static int cmp_kv_idx(const void *a, const void *b, void *ctx) {
    const tp_gguf *g = ctx;
    return strcmp(g->kv[*(const size_t *)a].key, g->kv[*(const size_t *)b].key);
}
static int cmp_t_idx(const void *a, const void *b, void *ctx) {
    const tp_gguf *g = ctx;
    return strcmp(g->t[*(const size_t *)a].name, g->t[*(const size_t *)b].name);
}

/* A small merge sort with a context (qsort_r is not C11). */
static void sort_idx(size_t *v, size_t n, int (*cmp)(const void *, const void *, void *), void *ctx,
                     size_t *tmp) {
    if (n < 2)
        return;
    size_t h = n / 2;
    sort_idx(v, h, cmp, ctx, tmp);
    sort_idx(v + h, n - h, cmp, ctx, tmp);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp[k++] = cmp(&v[j], &v[i], ctx) < 0 ? v[j++] : v[i++];
    while (i < h)
        tmp[k++] = v[i++];
    while (j < n)
        tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof *v);
}

static int cmp_off_idx(const void *a, const void *b, void *ctx) {
    const tp_gguf *g = ctx;
    uint64_t x = g->t[*(const size_t *)a].offset, y = g->t[*(const size_t *)b].offset;
    return x < y ? -1 : x > y;
}

static tp_status parse_tensor(tp_gguf *g, cursor *c, size_t idx, tp_gguf_tensor *t, tp_error *err) {
    const uint8_t *s;
    uint64_t len;
    char what[64], nb[MAX_NAME_LEN * 4 + 16];
    snprintf(what, sizeof what, "the name of tensor %zu", idx);
    tp_status st = rd_str(g, c, what, &s, &len, err);
    if (st)
        return st;
    if (len == 0 || len > MAX_NAME_LEN || !clean_name(s, len))
        return tp_fail(err, TP_ERR_FORMAT,
                       "%s: tensor %zu: name '%s' is empty, longer than %u bytes, or not valid "
                       "UTF-8",
                       g->path, idx, show(s, len < 300 ? len : 300, nb, sizeof nb), MAX_NAME_LEN);
    if (!(t->name = copy_str(s, len)))
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory reading %s", g->path);
    const char *name = t->name;
    uint32_t nd;
    if (!rd(c, &nd, 4))
        return tp_fail(err, TP_ERR_FORMAT, "%s: tensor '%s': truncated (n_dims)", g->path, name);
    if (nd < 1 || nd > TP_GGUF_MAX_DIMS)
        return tp_fail(err, TP_ERR_FORMAT, "%s: tensor '%s': n_dims %u (must be 1..4)", g->path,
                       name, nd);
    t->n_dims = (int)nd;
    uint64_t n_elems = 1;
    for (int d = 0; d < TP_GGUF_MAX_DIMS; d++) {
        uint64_t v = 1;
        if (d < (int)nd && !rd(c, &v, 8))
            return tp_fail(err, TP_ERR_FORMAT, "%s: tensor '%s': truncated (dims)", g->path, name);
        if (v < 1 || v > (uint64_t)INT64_MAX)
            return tp_fail(err, TP_ERR_FORMAT, "%s: tensor '%s': dim %d is %llu (must be >= 1)",
                           g->path, name, d, (unsigned long long)v);
        t->ne[d] = (int64_t)v;
        if (__builtin_mul_overflow(n_elems, v, &n_elems) || n_elems > (uint64_t)INT64_MAX)
            return tp_fail(err, TP_ERR_FORMAT, "%s: tensor '%s': element count overflows 64 bits",
                           g->path, name);
    }
    t->n_elems = (int64_t)n_elems;
    if (!rd(c, &t->ggml_type, 4) || !rd(c, &t->offset, 8))
        return tp_fail(err, TP_ERR_FORMAT, "%s: tensor '%s': truncated (type/offset)", g->path,
                       name);
    if (!tp_gguf_dtype_from_ggml(t->ggml_type, &t->dtype)) {
        if (t->ggml_type < N_GGML_NAMES)
            return tp_fail(err, TP_ERR_UNSUPPORTED,
                           "%s: tensor '%s' has ggml type %s (%u), which tpipe does not read "
                           "(supported: F32, F16, BF16, Q8_0, Q4_K, Q6_K)",
                           g->path, name, kGgmlNames[t->ggml_type], t->ggml_type);
        return tp_fail(err, TP_ERR_FORMAT, "%s: tensor '%s' has unknown ggml type %u", g->path,
                       name, t->ggml_type);
    }
    size_t row;
    if (!tp_dtype_row_bytes(t->dtype, (uint64_t)t->ne[0], &row))
        return tp_fail(err, TP_ERR_FORMAT,
                       "%s: tensor '%s': row length %lld is not a multiple of the %s block (%zu)",
                       g->path, name, (long long)t->ne[0], tp_dtype_name(t->dtype),
                       tp_dtype_block(t->dtype));
    uint64_t rows = n_elems / (uint64_t)t->ne[0], bytes;
    if (__builtin_mul_overflow((uint64_t)row, rows, &bytes) || bytes > SIZE_MAX)
        return tp_fail(err, TP_ERR_FORMAT, "%s: tensor '%s': byte size overflows", g->path, name);
    t->n_bytes = (size_t)bytes;
    return TP_OK;
}

static tp_status parse(tp_gguf *g, tp_error *err) {
    cursor c = {g->map, 0, g->size};
    uint32_t magic = 0, version = 0;
    uint64_t nt = 0, nkv = 0;
    if (!rd(&c, &magic, 4))
        return tp_fail(err, TP_ERR_FORMAT, "%s: file too short (%zu bytes) for a GGUF header",
                       g->path, g->size);
    if (magic != TP_GGUF_MAGIC) {
        char b[40];
        return tp_fail(err, TP_ERR_FORMAT, "%s: not a GGUF file (magic '%s', expected 'GGUF')",
                       g->path, show(g->map, 4, b, sizeof b));
    }
    if (!rd(&c, &version, 4))
        return tp_fail(err, TP_ERR_FORMAT, "%s: truncated GGUF header (version)", g->path);
    if (version == 1)
        return tp_fail(err, TP_ERR_UNSUPPORTED,
                       "%s: GGUF version 1 is not supported (only 2 and 3)", g->path);
    if (version == 0x02000000u || version == 0x03000000u)
        return tp_fail(err, TP_ERR_UNSUPPORTED, "%s: big-endian GGUF files are not supported",
                       g->path);
    if (version != 2 && version != 3)
        return tp_fail(err, TP_ERR_FORMAT, "%s: unknown GGUF version %u (only 2 and 3)", g->path,
                       version);
    g->version = version;
    if (!rd(&c, &nt, 8) || !rd(&c, &nkv, 8))
        return tp_fail(err, TP_ERR_FORMAT, "%s: truncated GGUF header (counts)", g->path);
    /* A key/value takes >= 8 + 1 + 4 + 1 bytes, a tensor info >= 8 + 1 + 4 + 8 + 4 + 8. */
    if (nkv > left(&c) / 14)
        return tp_fail(err, TP_ERR_FORMAT,
                       "%s: header claims %llu key/values, more than the file (%zu bytes) can "
                       "hold",
                       g->path, (unsigned long long)nkv, g->size);
    if (nt > left(&c) / 33)
        return tp_fail(err, TP_ERR_FORMAT,
                       "%s: header claims %llu tensors, more than the file (%zu bytes) can hold",
                       g->path, (unsigned long long)nt, g->size);
    g->kv = tp_calloc((size_t)nkv ? (size_t)nkv : 1, sizeof *g->kv);
    g->t = tp_calloc((size_t)nt ? (size_t)nt : 1, sizeof *g->t);
    g->kv_sorted = tp_malloc_array((size_t)nkv ? (size_t)nkv : 1, sizeof(size_t));
    g->t_sorted = tp_malloc_array((size_t)nt ? (size_t)nt : 1, sizeof(size_t));
    size_t ntmp = (size_t)(nkv > nt ? nkv : nt);
    size_t *tmp = tp_malloc_array(ntmp ? ntmp : 1, sizeof(size_t));
    if (!g->kv || !g->t || !g->kv_sorted || !g->t_sorted || !tmp) {
        tp_free(tmp);
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory reading %s", g->path);
    }
    tp_status st = TP_OK;
    g->alignment = TP_GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < (size_t)nkv && st == TP_OK; i++) {
        tp_gguf_kv *kv = &g->kv[i];
        const uint8_t *s;
        uint64_t len;
        char what[48], kb[200];
        snprintf(what, sizeof what, "key %zu", i);
        if ((st = rd_str(g, &c, what, &s, &len, err)))
            break;
        if (len == 0 || len > MAX_KEY_LEN || !clean_name(s, len)) {
            st = tp_fail(err, TP_ERR_FORMAT,
                         "%s: key %zu ('%s') is empty, too long or not valid UTF-8", g->path, i,
                         show(s, len < 40 ? len : 40, kb, sizeof kb));
            break;
        }
        if (!(kv->key = copy_str(s, len))) {
            st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory reading %s", g->path);
            break;
        }
        g->n_kv = i + 1;
        uint32_t type;
        kv->n = 1;
        kv->arr_type = TP_GGUF_TYPE_COUNT;
        if (!rd(&c, &type, 4)) {
            st = tp_fail(err, TP_ERR_FORMAT, "%s: key '%s': truncated (value type)", g->path,
                         kv->key);
            break;
        }
        if (type >= TP_GGUF_TYPE_COUNT) {
            st = tp_fail(err, TP_ERR_FORMAT, "%s: key '%s': unknown value type %u", g->path,
                         kv->key, type);
            break;
        }
        kv->type = (tp_gguf_type)type;
        st = parse_value(g, &c, kv, err);
    }
    if (st == TP_OK) {
        for (size_t i = 0; i < g->n_kv; i++)
            g->kv_sorted[i] = i;
        sort_idx(g->kv_sorted, g->n_kv, cmp_kv_idx, g, tmp);
        for (size_t i = 1; i < g->n_kv && st == TP_OK; i++)
            if (!strcmp(g->kv[g->kv_sorted[i]].key, g->kv[g->kv_sorted[i - 1]].key))
                st = tp_fail(err, TP_ERR_FORMAT, "%s: key '%s' appears twice", g->path,
                             g->kv[g->kv_sorted[i]].key);
    }
    if (st == TP_OK) {
        const tp_gguf_kv *a = tp_gguf_find_kv(g, "general.alignment");
        if (a) {
            uint32_t v = 0;
            if (a->type != TP_GGUF_UINT32)
                st = tp_fail(err, TP_ERR_FORMAT, "%s: general.alignment has type %s (need u32)",
                             g->path, tp_gguf_type_name(a->type));
            else if (memcpy(&v, a->data, 4), v == 0 || (v & (v - 1)) || v > MAX_ALIGNMENT)
                st =
                    tp_fail(err, TP_ERR_FORMAT,
                            "%s: general.alignment %u is not a power of two (<= 2^30)", g->path, v);
            else
                g->alignment = v;
        }
    }
    for (size_t i = 0; i < (size_t)nt && st == TP_OK; i++) {
        g->n_t = i + 1;
        st = parse_tensor(g, &c, i, &g->t[i], err);
    }
    if (st == TP_OK) {
        for (size_t i = 0; i < g->n_t; i++)
            g->t_sorted[i] = i;
        sort_idx(g->t_sorted, g->n_t, cmp_t_idx, g, tmp);
        for (size_t i = 1; i < g->n_t && st == TP_OK; i++)
            if (!strcmp(g->t[g->t_sorted[i]].name, g->t[g->t_sorted[i - 1]].name))
                st = tp_fail(err, TP_ERR_FORMAT, "%s: tensor '%s' appears twice", g->path,
                             g->t[g->t_sorted[i]].name);
    }
    if (st == TP_OK) {
        size_t data_off;
        if (!tp_align_up(c.pos, g->alignment, &data_off) || (g->n_t > 0 && data_off > g->size)) {
            st = tp_fail(err, TP_ERR_FORMAT,
                         "%s: truncated: the data section would start at byte %zu, past the end "
                         "(%zu bytes)",
                         g->path, c.pos, g->size);
        } else {
            g->data_off = data_off;
            size_t data_size = g->size > data_off ? g->size - data_off : 0;
            for (size_t i = 0; i < g->n_t && st == TP_OK; i++) {
                tp_gguf_tensor *t = &g->t[i];
                if (t->offset % g->alignment)
                    st = tp_fail(err, TP_ERR_FORMAT,
                                 "%s: tensor '%s': offset %llu is not a multiple of the "
                                 "alignment %u",
                                 g->path, t->name, (unsigned long long)t->offset, g->alignment);
                else if (t->offset > data_size || t->n_bytes > data_size - t->offset)
                    st = tp_fail(err, TP_ERR_FORMAT,
                                 "%s: tensor '%s': bytes [%llu, +%zu) run past the end of the "
                                 "data section (%zu bytes)",
                                 g->path, t->name, (unsigned long long)t->offset, t->n_bytes,
                                 data_size);
                else
                    t->data = g->map + data_off + t->offset;
            }
        }
    }
    if (st == TP_OK && g->n_t > 1) {
        /* Overlaps: sorted by offset, each must end before the next begins. */
        size_t *by_off = tmp;
        for (size_t i = 0; i < g->n_t; i++)
            by_off[i] = i;
        size_t *tmp2 = tp_malloc_array(g->n_t, sizeof(size_t));
        if (!tmp2)
            st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory reading %s", g->path);
        else {
            sort_idx(by_off, g->n_t, cmp_off_idx, g, tmp2);
            for (size_t i = 1; i < g->n_t && st == TP_OK; i++) {
                const tp_gguf_tensor *a = &g->t[by_off[i - 1]], *b = &g->t[by_off[i]];
                if (a->offset + a->n_bytes > b->offset)
                    st = tp_fail(err, TP_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap", g->path,
                                 a->name, b->name);
            }
            tp_free(tmp2);
        }
    }
    tp_free(tmp);
    return st;
}

/* ---------------------------------------------------------------- open / close */

static tp_status open_common(tp_gguf *g, tp_gguf **out, tp_error *err) {
    tp_status st = parse(g, err);
    if (st != TP_OK) {
        tp_gguf_close(g);
        return st;
    }
    *out = g;
    return TP_OK;
}

tp_status tp_gguf_open_memory(const void *data, size_t size, const char *name, tp_gguf **out,
                              tp_error *err) {
    if (!out || (!data && size))
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_gguf_open_memory: NULL argument");
    *out = NULL;
    tp_gguf *g = tp_calloc(1, sizeof *g);
    if (!g || !(g->path = tp_strdup(name ? name : "(memory)"))) {
        tp_free(g);
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    }
    g->map = data ? data : (const uint8_t *)"";
    g->size = size;
    return open_common(g, out, err);
}

tp_status tp_gguf_open(const char *path, tp_gguf **out, tp_error *err) {
    if (!path || !out)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_gguf_open: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tp_fail(err, errno == ENOENT ? TP_ERR_NOT_FOUND : TP_ERR_IO, "%s: cannot open: %s",
                       path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return tp_fail(err, TP_ERR_IO, "%s: not a regular file", path);
    }
    if (sb.st_size < 24) {
        close(fd);
        return tp_fail(err, TP_ERR_FORMAT, "%s: file too short (%lld bytes) for a GGUF header",
                       path, (long long)sb.st_size);
    }
    void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return tp_fail(err, TP_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
    tp_gguf *g = tp_calloc(1, sizeof *g);
    if (!g || !(g->path = tp_strdup(path))) {
        tp_free(g);
        munmap(map, (size_t)sb.st_size);
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    }
    g->map = map;
    g->size = (size_t)sb.st_size;
    g->mapped = true;
    return open_common(g, out, err);
}

void tp_gguf_close(tp_gguf *g) {
    if (!g)
        return;
    for (size_t i = 0; i < g->n_kv; i++) {
        tp_free((void *)g->kv[i].key);
        tp_free((void *)g->kv[i].str);
        tp_free((void *)g->kv[i].str_offs);
    }
    for (size_t i = 0; i < g->n_t; i++)
        tp_free((void *)g->t[i].name);
    tp_free(g->kv);
    tp_free(g->t);
    tp_free(g->kv_sorted);
    tp_free(g->t_sorted);
    if (g->mapped)
        munmap((void *)g->map, g->size);
    tp_free(g->path);
    tp_free(g);
}

/* ---------------------------------------------------------------- access */

const char *tp_gguf_path(const tp_gguf *g) {
    return g ? g->path : NULL;
}
uint32_t tp_gguf_version(const tp_gguf *g) {
    return g ? g->version : 0;
}
uint32_t tp_gguf_alignment(const tp_gguf *g) {
    return g ? g->alignment : 0;
}
size_t tp_gguf_data_offset(const tp_gguf *g) {
    return g ? g->data_off : 0;
}
size_t tp_gguf_kv_count(const tp_gguf *g) {
    return g ? g->n_kv : 0;
}
const tp_gguf_kv *tp_gguf_kv_at(const tp_gguf *g, size_t i) {
    return g && i < g->n_kv ? &g->kv[i] : NULL;
}
size_t tp_gguf_tensor_count(const tp_gguf *g) {
    return g ? g->n_t : 0;
}
const tp_gguf_tensor *tp_gguf_tensor_at(const tp_gguf *g, size_t i) {
    return g && i < g->n_t ? &g->t[i] : NULL;
}

const tp_gguf_kv *tp_gguf_find_kv(const tp_gguf *g, const char *key) {
    if (!g || !key)
        return NULL;
    size_t lo = 0, hi = g->n_kv;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(g->kv[g->kv_sorted[mid]].key, key);
        if (c == 0)
            return &g->kv[g->kv_sorted[mid]];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const tp_gguf_tensor *tp_gguf_find_tensor(const tp_gguf *g, const char *name) {
    if (!g || !name)
        return NULL;
    size_t lo = 0, hi = g->n_t;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(g->t[g->t_sorted[mid]].name, name);
        if (c == 0)
            return &g->t[g->t_sorted[mid]];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int64_t load_int(tp_gguf_type t, const uint8_t *p, bool *ok) {
    *ok = true;
    switch (t) {
    case TP_GGUF_UINT8:
    case TP_GGUF_BOOL:
        return p[0];
    case TP_GGUF_INT8:
        return (int8_t)p[0];
    case TP_GGUF_UINT16: {
        uint16_t v;
        memcpy(&v, p, 2);
        return v;
    }
    case TP_GGUF_INT16: {
        int16_t v;
        memcpy(&v, p, 2);
        return v;
    }
    case TP_GGUF_UINT32: {
        uint32_t v;
        memcpy(&v, p, 4);
        return v;
    }
    case TP_GGUF_INT32: {
        int32_t v;
        memcpy(&v, p, 4);
        return v;
    }
    case TP_GGUF_UINT64: {
        uint64_t v;
        memcpy(&v, p, 8);
        if (v > (uint64_t)INT64_MAX)
            *ok = false;
        return (int64_t)v;
    }
    case TP_GGUF_INT64: {
        int64_t v;
        memcpy(&v, p, 8);
        return v;
    }
    default:
        *ok = false;
        return 0;
    }
}

static double load_float(tp_gguf_type t, const uint8_t *p) {
    if (t == TP_GGUF_FLOAT32) {
        float v;
        memcpy(&v, p, 4);
        return v;
    }
    double v;
    memcpy(&v, p, 8);
    return v;
}

static tp_status wrong_type(const tp_gguf *g, const tp_gguf_kv *kv, const char *want,
                            tp_error *err) {
    if (kv->type == TP_GGUF_ARRAY)
        return tp_fail(err, TP_ERR_FORMAT, "%s: key '%s' is an array of %s (need %s)", g->path,
                       kv->key, tp_gguf_type_name(kv->arr_type), want);
    return tp_fail(err, TP_ERR_FORMAT, "%s: key '%s' has type %s (need %s)", g->path, kv->key,
                   tp_gguf_type_name(kv->type), want);
}

tp_status tp_gguf_get_int(const tp_gguf *g, const char *key, int64_t def, int64_t *out,
                          tp_error *err) {
    const tp_gguf_kv *kv = tp_gguf_find_kv(g, key);
    if (!kv) {
        *out = def;
        return TP_OK;
    }
    bool ok = false;
    int64_t v = kv->type == TP_GGUF_BOOL ? 0 : load_int(kv->type, kv->data, &ok);
    if (!ok) {
        if (kv->type == TP_GGUF_UINT64)
            return tp_fail(err, TP_ERR_FORMAT, "%s: key '%s': value does not fit 63 bits", g->path,
                           key);
        return wrong_type(g, kv, "an integer", err);
    }
    *out = v;
    return TP_OK;
}

tp_status tp_gguf_get_float(const tp_gguf *g, const char *key, double def, double *out,
                            tp_error *err) {
    const tp_gguf_kv *kv = tp_gguf_find_kv(g, key);
    if (!kv) {
        *out = def;
        return TP_OK;
    }
    if (kv->type != TP_GGUF_FLOAT32 && kv->type != TP_GGUF_FLOAT64)
        return wrong_type(g, kv, "f32 or f64", err);
    *out = load_float(kv->type, kv->data);
    return TP_OK;
}

tp_status tp_gguf_get_bool(const tp_gguf *g, const char *key, bool def, bool *out, tp_error *err) {
    const tp_gguf_kv *kv = tp_gguf_find_kv(g, key);
    if (!kv) {
        *out = def;
        return TP_OK;
    }
    if (kv->type != TP_GGUF_BOOL)
        return wrong_type(g, kv, "bool", err);
    *out = kv->data[0] != 0;
    return TP_OK;
}

tp_status tp_gguf_get_str(const tp_gguf *g, const char *key, const char *def, const char **out,
                          tp_error *err) {
    const tp_gguf_kv *kv = tp_gguf_find_kv(g, key);
    if (!kv) {
        *out = def;
        return TP_OK;
    }
    if (kv->type != TP_GGUF_STRING)
        return wrong_type(g, kv, "string", err);
    *out = kv->str;
    return TP_OK;
}

static tp_status missing(const tp_gguf *g, const char *key, tp_error *err) {
    return tp_fail(err, TP_ERR_NOT_FOUND, "%s: missing key '%s'", g ? g->path : "gguf", key);
}

tp_status tp_gguf_req_int(const tp_gguf *g, const char *key, int64_t *out, tp_error *err) {
    if (!tp_gguf_find_kv(g, key))
        return missing(g, key, err);
    return tp_gguf_get_int(g, key, 0, out, err);
}
tp_status tp_gguf_req_float(const tp_gguf *g, const char *key, double *out, tp_error *err) {
    if (!tp_gguf_find_kv(g, key))
        return missing(g, key, err);
    return tp_gguf_get_float(g, key, 0, out, err);
}
tp_status tp_gguf_req_str(const tp_gguf *g, const char *key, const char **out, tp_error *err) {
    if (!tp_gguf_find_kv(g, key))
        return missing(g, key, err);
    return tp_gguf_get_str(g, key, NULL, out, err);
}

tp_status tp_gguf_get_arr(const tp_gguf *g, const char *key, tp_gguf_type elem_type,
                          const tp_gguf_kv **out, tp_error *err) {
    const tp_gguf_kv *kv = tp_gguf_find_kv(g, key);
    *out = NULL;
    if (!kv)
        return TP_OK;
    if (kv->type != TP_GGUF_ARRAY ||
        (elem_type != TP_GGUF_TYPE_COUNT && kv->arr_type != elem_type)) {
        char want[48];
        snprintf(want, sizeof want, "an array of %s",
                 elem_type == TP_GGUF_TYPE_COUNT ? "values" : tp_gguf_type_name(elem_type));
        return wrong_type(g, kv, want, err);
    }
    *out = kv;
    return TP_OK;
}

int64_t tp_gguf_arr_int(const tp_gguf_kv *kv, uint64_t i) {
    TP_ASSERT(kv && kv->type == TP_GGUF_ARRAY && i < kv->n);
    bool ok;
    size_t sz = type_size(kv->arr_type);
    return load_int(kv->arr_type, kv->data + (size_t)i * sz, &ok);
}

double tp_gguf_arr_float(const tp_gguf_kv *kv, uint64_t i) {
    TP_ASSERT(kv && kv->type == TP_GGUF_ARRAY && i < kv->n);
    size_t sz = type_size(kv->arr_type);
    if (kv->arr_type != TP_GGUF_FLOAT32 && kv->arr_type != TP_GGUF_FLOAT64) {
        bool ok;
        return (double)load_int(kv->arr_type, kv->data + (size_t)i * sz, &ok);
    }
    return load_float(kv->arr_type, kv->data + (size_t)i * sz);
}

const char *tp_gguf_arr_str(const tp_gguf_kv *kv, uint64_t i, size_t *len) {
    TP_ASSERT(kv && kv->arr_type == TP_GGUF_STRING && i < kv->n);
    uint64_t l;
    const uint8_t *p = kv->data + kv->str_offs[i];
    memcpy(&l, p, 8);
    if (len)
        *len = (size_t)l;
    return (const char *)p + 8;
}
