/*
 * safetensors.c — zero-copy, strictly validated safetensors reader.
 *
 * File format (https://huggingface.co/docs/safetensors): an 8-byte little-endian
 * header length N, N bytes of JSON, then the data section. The JSON maps each
 * tensor name to {"dtype", "shape", "data_offsets": [begin, end]} with offsets
 * relative to the start of the data section; an optional "__metadata__" object
 * holds string pairs and is skipped.
 *
 * Each file is mapped read-only (MAP_PRIVATE, PROT_READ) in one piece; tensor
 * data pointers point into the mapping, so opening a multi-GB checkpoint costs
 * page-table entries only, and a page is read from disk when first touched.
 * Only the JSON header is copied (to parse it from a NUL-terminated buffer).
 *
 * Validation is strict because a corrupt header must become a clear load error,
 * never an out-of-bounds read later in a kernel:
 *   - the header length is bounded (TP_ST_MAX_HEADER and the file size);
 *   - the header is one JSON object followed only by whitespace padding;
 *   - every entry has dtype (string), shape (array of non-negative integers)
 *     and data_offsets (two non-negative integers, begin <= end <= data size);
 *   - shape product x dtype size == end - begin, with overflow checks;
 *   - byte ranges of different tensors do not overlap (sorted by begin);
 *   - names are valid UTF-8 and unique (also across shards).
 * Every error names the file and the tensor (or field) at fault.
 *
 * Note: tensors are not guaranteed to be aligned to their element size (a file
 * may hold an odd-sized BF16 tensor before an F32 one); readers that need
 * alignment must check `data` themselves or copy (tp_st_to_f32 copies safely).
 * A mapped file that is truncated by someone else while open raises SIGBUS on
 * access; that is outside what a reader can guard against.
 */
#include "io/safetensors.h"
#include "io/config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Largest JSON header accepted. The biggest public checkpoints have a few
 * thousand tensors (< 1 MB of header); 100 MB leaves room while refusing a
 * length field that is garbage. */
#define TP_ST_MAX_HEADER ((uint64_t)100 * 1024 * 1024)

/* Integers in a JSON header are read by cJSON as doubles: above 2^53 they are no
 * longer exact, so larger values are rejected as malformed. */
#define TP_ST_MAX_JSON_INT 9007199254740992.0

typedef struct st_file {
    char *path;
    uint8_t *map; /* whole file, read-only */
    size_t size;
    size_t data_off; /* 8 + header length: where data_offsets count from */
    bool borrowed;   /* map is the caller's buffer (tp_st_open_buffer): not unmapped */
} st_file;

struct tp_st_model {
    char *origin; /* the path given to tp_st_open, for error messages */
    st_file *files;
    size_t n_files;
    tp_st_tensor *tensors; /* sorted by name */
    size_t n_tensors;
    size_t cap_tensors;
    char **names; /* owned names, one per tensor (in load order) */
    size_t n_names;
};

/* ---- small helpers ---- */

/* Writes a printable form of a tensor name into buf (invalid UTF-8 and control
 * bytes as \xNN, long names shortened) so error messages stay valid text. */
static const char *printable(const char *s, char *buf, size_t cap) {
    size_t n = strlen(s), o = 0;
    size_t i = 0;
    while (i < n && o + 8 < cap) {
        size_t ok = tp_utf8_validate(s + i, n - i);
        if (ok > 0) { /* a valid run: copy it, minus control bytes */
            size_t k = 0;
            while (k < ok && o + 8 < cap) {
                unsigned char c = (unsigned char)s[i + k];
                if (c < 0x20 || c == 0x7f) {
                    o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
                    k++;
                    continue;
                }
                /* copy one whole character so a cut never splits it */
                size_t clen = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
                if (o + clen + 8 >= cap)
                    break;
                memcpy(buf + o, s + i + k, clen);
                o += clen;
                k += clen;
            }
            i += k;
            if (k < ok)
                break;
        } else {
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", (unsigned char)s[i]);
            i++;
        }
    }
    if (i < n && o + 4 < cap) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

#define NAME_BUF 160

static bool parse_dtype(const char *s, tp_dtype *out) {
    for (int t = 0; t < TP_DTYPE_COUNT; t++) {
        if (strcmp(s, tp_dtype_name((tp_dtype)t)) == 0) {
            *out = (tp_dtype)t;
            return true;
        }
    }
    return false;
}

/* safetensors dtypes that exist in the format but that tpipe does not read. */
static bool known_unsupported_dtype(const char *s) {
    static const char *const other[] = {"F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3",
                                        "F6_E3M2", "C64",     "U1",      "I4", "U4"};
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        if (strcmp(s, other[i]) == 0)
            return true;
    return false;
}

/* A JSON number that is an exact non-negative integer below 2^53. */
static bool json_uint(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v))
        return false;
    double d = v->valuedouble;
    if (!(d >= 0.0) || d > TP_ST_MAX_JSON_INT || d != (double)(uint64_t)d)
        return false;
    *out = (uint64_t)d;
    return true;
}

static bool is_json_space(uint8_t c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static tp_status push_tensor(tp_st_model *m, const tp_st_tensor *t, tp_error *err) {
    if (m->n_tensors == m->cap_tensors) {
        size_t cap = m->cap_tensors ? m->cap_tensors * 2 : 64;
        tp_st_tensor *nt = tp_realloc_array(m->tensors, cap, sizeof *nt);
        char **nn = tp_realloc_array(m->names, cap, sizeof *nn);
        if (nt)
            m->tensors = nt;
        if (nn)
            m->names = nn;
        if (!nt || !nn)
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "%s: out of memory for the tensor list",
                           t->file);
        m->cap_tensors = cap;
    }
    m->tensors[m->n_tensors++] = *t;
    return TP_OK;
}

/* ---- one file ---- */

typedef struct range_ref {
    uint64_t begin, end;
    size_t idx; /* index into m->tensors */
} range_ref;

static int cmp_range(const void *a, const void *b) {
    const range_ref *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

/* Parses one tensor entry of the header of f. */
static tp_status parse_entry(tp_st_model *m, st_file *f, const cJSON *e, const uint8_t *data,
                             uint64_t data_size, tp_error *err) {
    char nb[NAME_BUF];
    const char *key = e->string ? e->string : "";
    size_t klen = strlen(key);
    if (tp_utf8_validate(key, klen) != klen)
        return tp_fail(err, TP_ERR_FORMAT, "%s: tensor name '%s' is not valid UTF-8", f->path,
                       printable(key, nb, sizeof nb));
    const char *pn = printable(key, nb, sizeof nb);
    if (!cJSON_IsObject(e))
        return tp_fail(err, TP_ERR_FORMAT, "%s: tensor '%s': entry is not a JSON object", f->path,
                       pn);

    tp_st_tensor t;
    memset(&t, 0, sizeof t);
    t.file = f->path;

    /* dtype */
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    if (!jd)
        return tp_fail(err, TP_ERR_FORMAT, "%s: tensor '%s': missing field 'dtype'", f->path, pn);
    if (!cJSON_IsString(jd))
        return tp_fail(err, TP_ERR_FORMAT, "%s: tensor '%s': field 'dtype' is not a string",
                       f->path, pn);
    if (!parse_dtype(jd->valuestring, &t.dtype)) {
        char db[64];
        if (known_unsupported_dtype(jd->valuestring))
            return tp_fail(err, TP_ERR_UNSUPPORTED,
                           "%s: tensor '%s': dtype '%s' is not supported (F32, F16, BF16, F64, "
                           "integer and BOOL tensors are)",
                           f->path, pn, jd->valuestring);
        return tp_fail(err, TP_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%s'", f->path, pn,
                       printable(jd->valuestring, db, sizeof db));
    }

    /* shape */
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
    if (!js)
        return tp_fail(err, TP_ERR_FORMAT, "%s: tensor '%s': missing field 'shape'", f->path, pn);
    if (!cJSON_IsArray(js))
        return tp_fail(err, TP_ERR_FORMAT, "%s: tensor '%s': field 'shape' is not an array",
                       f->path, pn);
    int nd = cJSON_GetArraySize(js);
    if (nd > TP_ST_MAX_DIMS)
        return tp_fail(err, TP_ERR_UNSUPPORTED, "%s: tensor '%s': %d dimensions (at most %d)",
                       f->path, pn, nd, TP_ST_MAX_DIMS);
    uint64_t n_elems = 1;
    int d = 0;
    const cJSON *jv;
    cJSON_ArrayForEach(jv, js) {
        uint64_t dim;
        if (!json_uint(jv, &dim))
            return tp_fail(err, TP_ERR_FORMAT,
                           "%s: tensor '%s': shape[%d] is not a non-negative integer below 2^53",
                           f->path, pn, d);
        if (__builtin_mul_overflow(n_elems, dim, &n_elems) || n_elems > (uint64_t)INT64_MAX)
            return tp_fail(err, TP_ERR_FORMAT,
                           "%s: tensor '%s': shape has too many elements (overflow at shape[%d])",
                           f->path, pn, d);
        t.shape[d++] = (int64_t)dim;
    }
    t.n_dims = nd;
    t.n_elems = (int64_t)n_elems;

    /* data_offsets */
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!jo)
        return tp_fail(err, TP_ERR_FORMAT, "%s: tensor '%s': missing field 'data_offsets'", f->path,
                       pn);
    uint64_t begin, end;
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2 ||
        !json_uint(cJSON_GetArrayItem(jo, 0), &begin) ||
        !json_uint(cJSON_GetArrayItem(jo, 1), &end))
        return tp_fail(err, TP_ERR_FORMAT,
                       "%s: tensor '%s': field 'data_offsets' is not two non-negative integers",
                       f->path, pn);
    if (begin > end)
        return tp_fail(err, TP_ERR_FORMAT, "%s: tensor '%s': data_offsets begin %llu > end %llu",
                       f->path, pn, (unsigned long long)begin, (unsigned long long)end);
    if (end > data_size)
        return tp_fail(err, TP_ERR_FORMAT,
                       "%s: tensor '%s': data_offsets [%llu, %llu] out of range (data section "
                       "is %llu bytes)",
                       f->path, pn, (unsigned long long)begin, (unsigned long long)end,
                       (unsigned long long)data_size);
    uint64_t want;
    if (__builtin_mul_overflow(n_elems, (uint64_t)tp_dtype_size(t.dtype), &want))
        return tp_fail(err, TP_ERR_FORMAT,
                       "%s: tensor '%s': shape holds %llu elements of %s: byte size overflows",
                       f->path, pn, (unsigned long long)n_elems, tp_dtype_name(t.dtype));
    if (want != end - begin)
        return tp_fail(err, TP_ERR_FORMAT,
                       "%s: tensor '%s': shape holds %llu elements of %s (%zu bytes each) but "
                       "data_offsets span %llu bytes",
                       f->path, pn, (unsigned long long)n_elems, tp_dtype_name(t.dtype),
                       tp_dtype_size(t.dtype), (unsigned long long)(end - begin));
    t.data = data + begin;
    t.n_bytes = (size_t)(end - begin);

    char *name = tp_strdup(key);
    if (!name)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "%s: out of memory", f->path);
    t.name = name;
    tp_status st = push_tensor(m, &t, err);
    if (st != TP_OK) {
        tp_free(name);
        return st;
    }
    m->names[m->n_names++] = name;
    return TP_OK;
}

/* Checks that the byte ranges of the tensors m->tensors[first..] (all from one
 * file) do not overlap. */
static tp_status check_overlap(tp_st_model *m, size_t first, const st_file *f, tp_error *err) {
    size_t n = m->n_tensors - first;
    if (n < 2)
        return TP_OK;
    range_ref *r = tp_malloc_array(n, sizeof *r);
    if (!r)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "%s: out of memory", f->path);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const tp_st_tensor *t = &m->tensors[first + i];
        if (t->n_bytes == 0)
            continue; /* an empty tensor occupies no bytes: it cannot overlap */
        uint64_t b = (uint64_t)((const uint8_t *)t->data - (f->map + f->data_off));
        r[k].begin = b;
        r[k].end = b + t->n_bytes;
        r[k].idx = first + i;
        k++;
    }
    qsort(r, k, sizeof *r, cmp_range);
    tp_status st = TP_OK;
    for (size_t i = 1; i < k; i++) {
        if (r[i].begin < r[i - 1].end) {
            char a[NAME_BUF], b[NAME_BUF];
            st = tp_fail(err, TP_ERR_FORMAT,
                         "%s: tensor '%s': data_offsets [%llu, %llu] overlap tensor '%s' "
                         "[%llu, %llu]",
                         f->path, printable(m->tensors[r[i].idx].name, a, sizeof a),
                         (unsigned long long)r[i].begin, (unsigned long long)r[i].end,
                         printable(m->tensors[r[i - 1].idx].name, b, sizeof b),
                         (unsigned long long)r[i - 1].begin, (unsigned long long)r[i - 1].end);
            break;
        }
    }
    tp_free(r);
    return st;
}

static tp_status parse_file(tp_st_model *m, st_file *f, tp_error *err);

/* Appends an empty st_file named path to m (released by tp_st_close). */
static st_file *add_file(tp_st_model *m, const char *path, tp_error *err) {
    st_file *nf = tp_realloc_array(m->files, m->n_files + 1, sizeof *nf);
    if (!nf) {
        tp_fail(err, TP_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
        return NULL;
    }
    m->files = nf;
    st_file *f = &m->files[m->n_files];
    memset(f, 0, sizeof *f);
    f->path = tp_strdup(path);
    if (!f->path) {
        tp_fail(err, TP_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
        return NULL;
    }
    m->n_files++; /* from here on tp_st_close releases f */
    return f;
}

/* Maps and validates one file, appending its tensors to m. */
static tp_status open_file(tp_st_model *m, const char *path, tp_error *err) {
    st_file *f = add_file(m, path, err);
    if (!f)
        return err ? err->status : TP_ERR_OUT_OF_MEMORY;

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tp_fail(err, errno == ENOENT ? TP_ERR_NOT_FOUND : TP_ERR_IO, "%s: cannot open: %s",
                       path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return tp_fail(err, TP_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size < 8) {
        close(fd);
        return tp_fail(err, TP_ERR_FORMAT,
                       "%s: truncated: %lld bytes, shorter than the 8-byte header length field",
                       path, (long long)sb.st_size);
    }
    if ((uint64_t)sb.st_size > (uint64_t)SIZE_MAX) {
        close(fd);
        return tp_fail(err, TP_ERR_UNSUPPORTED, "%s: file too large to map", path);
    }
    f->size = (size_t)sb.st_size;
    void *p = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    int merr = errno;
    close(fd);
    if (p == MAP_FAILED)
        return tp_fail(err, TP_ERR_IO, "%s: mmap of %zu bytes failed: %s", path, f->size,
                       strerror(merr));
    f->map = p;
    return parse_file(m, f, err);
}

/* Validates the bytes f->map[0, f->size) as one safetensors file (header and
 * tensor ranges), appending its tensors to m. The only parser: tp_st_open's
 * files and tp_st_open_buffer's buffers both come through here. */
static tp_status parse_file(tp_st_model *m, st_file *f, tp_error *err) {
    const char *path = f->path;
    if (f->size < 8)
        return tp_fail(err, TP_ERR_FORMAT,
                       "%s: truncated: %zu bytes, shorter than the 8-byte header length field",
                       path, f->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | f->map[i];
    if (hlen > TP_ST_MAX_HEADER)
        return tp_fail(err, TP_ERR_FORMAT,
                       "%s: header length %llu exceeds the limit of %llu bytes (corrupt or not "
                       "a safetensors file)",
                       path, (unsigned long long)hlen, (unsigned long long)TP_ST_MAX_HEADER);
    if (hlen > f->size - 8)
        return tp_fail(err, TP_ERR_FORMAT,
                       "%s: header length %llu runs past the end of the file (%zu bytes): "
                       "truncated or corrupt",
                       path, (unsigned long long)hlen, f->size);
    if (hlen < 2 || f->map[8] != '{')
        return tp_fail(err, TP_ERR_FORMAT, "%s: header is not a JSON object (starts with %s)", path,
                       hlen ? "another byte than '{'" : "nothing");

    /* The header (small next to the weights) is parsed from a NUL-terminated
     * copy, so the JSON parser can never read past the end of the mapping, even
     * for a file that ends with its header on a page boundary. */
    char *hdr = tp_malloc((size_t)hlen + 1);
    if (!hdr)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "%s: cannot allocate the %llu-byte header", path,
                       (unsigned long long)hlen);
    memcpy(hdr, f->map + 8, (size_t)hlen);
    hdr[hlen] = '\0';
    const char *end = NULL;
    unsigned long failures = tp_alloc_failures();
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &end, 0);
    if (!root && tp_alloc_failures() != failures) {
        tp_free(hdr);
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "%s: out of memory parsing the header", path);
    }
    if (!root) {
        size_t at = end ? (size_t)(end - hdr) : 0;
        tp_free(hdr);
        return tp_fail(err, TP_ERR_FORMAT,
                       "%s: header is not valid JSON (error near byte %zu "
                       "of the %llu-byte header)",
                       path, at, (unsigned long long)hlen);
    }
    for (size_t i = (size_t)(end - hdr); i < hlen; i++) {
        if (!is_json_space((uint8_t)hdr[i])) {
            cJSON_Delete(root);
            tp_free(hdr);
            return tp_fail(err, TP_ERR_FORMAT,
                           "%s: header has trailing data after the JSON object (byte %zu of the "
                           "%llu-byte header)",
                           path, i, (unsigned long long)hlen);
        }
    }
    tp_free(hdr);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return tp_fail(err, TP_ERR_FORMAT, "%s: header is not a JSON object", path);
    }

    f->data_off = (size_t)(8 + hlen);
    const uint8_t *data = f->map + f->data_off;
    uint64_t data_size = (uint64_t)f->size - 8 - hlen;
    size_t first = m->n_tensors;
    tp_status st = TP_OK;
    const cJSON *e;
    cJSON_ArrayForEach(e, root) {
        if (e->string && strcmp(e->string, "__metadata__") == 0) {
            if (!cJSON_IsObject(e)) {
                st = tp_fail(err, TP_ERR_FORMAT, "%s: field '__metadata__' is not an object", path);
                break;
            }
            continue;
        }
        st = parse_entry(m, f, e, data, data_size, err);
        if (st != TP_OK)
            break;
    }
    cJSON_Delete(root);
    if (st != TP_OK)
        return st;
    return check_overlap(m, first, f, err);
}

/* ---- model: one file or shards ---- */

static int cmp_tensor_name(const void *a, const void *b) {
    const tp_st_tensor *x = a, *y = b;
    return strcmp(x->name, y->name);
}

static tp_status finish(tp_st_model *m, tp_error *err) {
    if (m->n_tensors > 1)
        qsort(m->tensors, m->n_tensors, sizeof *m->tensors, cmp_tensor_name);
    for (size_t i = 1; i < m->n_tensors; i++) {
        const tp_st_tensor *a = &m->tensors[i - 1], *b = &m->tensors[i];
        if (strcmp(a->name, b->name) == 0) {
            char nb[NAME_BUF];
            if (a->file == b->file || strcmp(a->file, b->file) == 0)
                return tp_fail(err, TP_ERR_FORMAT, "%s: tensor '%s' is listed twice", a->file,
                               printable(a->name, nb, sizeof nb));
            return tp_fail(err, TP_ERR_FORMAT, "tensor '%s' is stored in two files: %s and %s",
                           printable(a->name, nb, sizeof nb), a->file, b->file);
        }
    }
    return TP_OK;
}

/* A shard file name from an index must stay inside the model folder. */
static bool safe_relative(const char *s) {
    if (!*s || s[0] == '/')
        return false;
    const char *p = s;
    while (*p) {
        const char *q = strchr(p, '/');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return false;
        p += n;
        if (*p == '/')
            p++;
    }
    return true;
}

static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash)
        return tp_strdup(".");
    if (slash == path)
        return tp_strdup("/");
    return tp_strndup(path, (size_t)(slash - path));
}

static tp_status open_index(tp_st_model *m, const char *index_path, tp_error *err) {
    tp_json_doc doc;
    tp_status st = tp_json_load(index_path, &doc, err);
    if (st != TP_OK)
        return st;
    char *dir = NULL;
    const char **shards = NULL;
    size_t n_shards = 0;
    const cJSON *wm =
        cJSON_IsObject(doc.root) ? cJSON_GetObjectItemCaseSensitive(doc.root, "weight_map") : NULL;
    if (!cJSON_IsObject(wm)) {
        st =
            tp_fail(err, TP_ERR_FORMAT, "%s: missing or non-object field 'weight_map'", index_path);
        goto done;
    }
    dir = dir_of(index_path);
    int n_map = cJSON_GetArraySize(wm);
    shards = tp_malloc_array(n_map > 0 ? (size_t)n_map : 1, sizeof *shards);
    if (!dir || !shards) {
        st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "%s: out of memory", index_path);
        goto done;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, wm) {
        char nb[NAME_BUF];
        if (!cJSON_IsString(e)) {
            st = tp_fail(err, TP_ERR_FORMAT, "%s: weight_map entry '%s' is not a string",
                         index_path, printable(e->string ? e->string : "", nb, sizeof nb));
            goto done;
        }
        if (!safe_relative(e->valuestring)) {
            st = tp_fail(err, TP_ERR_FORMAT,
                         "%s: weight_map entry '%s' is not a relative file name inside the "
                         "model folder",
                         index_path, printable(e->string ? e->string : "", nb, sizeof nb));
            goto done;
        }
        size_t k = 0;
        while (k < n_shards && strcmp(shards[k], e->valuestring) != 0)
            k++;
        if (k == n_shards)
            shards[n_shards++] = e->valuestring;
    }
    if (n_shards == 0) {
        st = tp_fail(err, TP_ERR_FORMAT, "%s: weight_map is empty", index_path);
        goto done;
    }
    /* every listed shard is opened exactly once */
    for (size_t k = 0; k < n_shards; k++) {
        char *p = tp_path_join(dir, shards[k]);
        if (!p) {
            st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "%s: out of memory", index_path);
            goto done;
        }
        st = open_file(m, p, err);
        tp_free(p);
        if (st != TP_OK) {
            tp_error_prefix(err, "%s: shard '%s'", index_path, shards[k]);
            goto done;
        }
    }
    st = finish(m, err);
    if (st != TP_OK)
        goto done;
    /* every name in the map must be in the shard it is mapped to */
    cJSON_ArrayForEach(e, wm) {
        const tp_st_tensor *t = tp_st_find(m, e->string);
        char *want = tp_path_join(dir, e->valuestring);
        if (!want) {
            st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "%s: out of memory", index_path);
            goto done;
        }
        bool in_shard = t && strcmp(t->file, want) == 0;
        tp_free(want);
        if (!in_shard) {
            char nb[NAME_BUF];
            const char *pn = printable(e->string, nb, sizeof nb);
            if (t)
                st = tp_fail(err, TP_ERR_FORMAT,
                             "%s: weight_map maps tensor '%s' to '%s', which does not contain "
                             "it (it is in %s)",
                             index_path, pn, e->valuestring, t->file);
            else
                st = tp_fail(err, TP_ERR_FORMAT,
                             "%s: weight_map maps tensor '%s' to '%s', which does not contain it",
                             index_path, pn, e->valuestring);
            goto done;
        }
    }
done:
    tp_free(shards);
    tp_free(dir);
    tp_json_free(&doc);
    return st;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

tp_status tp_st_open(const char *path, tp_st_model **out, tp_error *err) {
    if (!out)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_st_open: out is NULL");
    *out = NULL;
    if (!path || !*path)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_st_open: empty path");
    tp_st_model *m = tp_calloc(1, sizeof *m);
    if (!m)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "tp_st_open: out of memory");
    m->origin = tp_strdup(path);
    if (!m->origin) {
        tp_free(m);
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "tp_st_open: out of memory");
    }
    tp_status st;
    if (tp_dir_exists(path)) {
        char *single = tp_path_join(path, "model.safetensors");
        char *index = tp_path_join(path, "model.safetensors.index.json");
        if (!single || !index)
            st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "tp_st_open: out of memory");
        else if (tp_file_exists(single)) {
            st = open_file(m, single, err);
            if (st == TP_OK)
                st = finish(m, err);
        } else if (tp_file_exists(index))
            st = open_index(m, index, err);
        else
            st = tp_fail(err, TP_ERR_NOT_FOUND,
                         "%s: no model.safetensors or model.safetensors.index.json in this "
                         "folder",
                         path);
        tp_free(single);
        tp_free(index);
    } else if (ends_with(path, ".json")) {
        st = open_index(m, path, err);
    } else {
        st = open_file(m, path, err);
        if (st == TP_OK)
            st = finish(m, err);
    }
    if (st != TP_OK) {
        tp_st_close(m);
        return st;
    }
    *out = m;
    return TP_OK;
}

tp_status tp_st_open_buffer(const void *data, size_t size, const char *name, tp_st_model **out,
                            tp_error *err) {
    if (!out)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_st_open_buffer: out is NULL");
    *out = NULL;
    if (!data && size)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_st_open_buffer: NULL data");
    if (!name || !*name)
        name = "(buffer)";
    tp_st_model *m = tp_calloc(1, sizeof *m);
    if (!m)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "tp_st_open_buffer: out of memory");
    tp_status st = TP_OK;
    st_file *f = NULL;
    if (!(m->origin = tp_strdup(name)))
        st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "tp_st_open_buffer: out of memory");
    else if (!(f = add_file(m, name, err)))
        st = err ? err->status : TP_ERR_OUT_OF_MEMORY;
    if (st == TP_OK) {
        /* read-only use only: the const is restored by every reader of map */
        f->map = (uint8_t *)(uintptr_t)data;
        f->size = size;
        f->borrowed = true;
        st = parse_file(m, f, err);
        if (st == TP_OK)
            st = finish(m, err);
    }
    if (st != TP_OK) {
        tp_st_close(m);
        return st;
    }
    *out = m;
    return TP_OK;
}

void tp_st_close(tp_st_model *m) {
    if (!m)
        return;
    for (size_t i = 0; i < m->n_files; i++) {
        if (m->files[i].map && !m->files[i].borrowed)
            munmap(m->files[i].map, m->files[i].size);
        tp_free(m->files[i].path);
    }
    for (size_t i = 0; i < m->n_names; i++)
        tp_free(m->names[i]);
    tp_free(m->names);
    tp_free(m->files);
    tp_free(m->tensors);
    tp_free(m->origin);
    tp_free(m);
}

tp_status tp_st_from_table(const char *origin, const tp_st_tensor *tensors, size_t n,
                           tp_st_model **out, tp_error *err) {
    if (!out || !origin || (!tensors && n))
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_st_from_table: NULL argument");
    *out = NULL;
    tp_st_model *m = tp_calloc(1, sizeof *m);
    if (!m || !(m->origin = tp_strdup(origin))) {
        tp_free(m);
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "%s: out of memory", origin);
    }
    tp_status st = TP_OK;
    for (size_t i = 0; i < n && st == TP_OK; i++) {
        tp_st_tensor t = tensors[i];
        char *name = tp_strdup(t.name ? t.name : "");
        if (!name) {
            st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "%s: out of memory", origin);
            break;
        }
        t.name = name;
        t.file = m->origin;
        st = push_tensor(m, &t, err);
        if (st == TP_OK)
            m->names[m->n_names++] = name;
        else
            tp_free(name);
    }
    if (st == TP_OK)
        st = finish(m, err);
    if (st != TP_OK) {
        tp_st_close(m);
        return st;
    }
    *out = m;
    return TP_OK;
}

size_t tp_st_count(const tp_st_model *m) {
    return m ? m->n_tensors : 0;
}

const tp_st_tensor *tp_st_at(const tp_st_model *m, size_t i) {
    return m && i < m->n_tensors ? &m->tensors[i] : NULL;
}

size_t tp_st_file_count(const tp_st_model *m) {
    return m ? m->n_files : 0;
}

const char *tp_st_path(const tp_st_model *m) {
    return m ? m->origin : NULL;
}

const tp_st_tensor *tp_st_find(const tp_st_model *m, const char *name) {
    if (!m || !name)
        return NULL;
    size_t lo = 0, hi = m->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->tensors[mid].name, name);
        if (c == 0)
            return &m->tensors[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static bool is_float(tp_dtype t) {
    return t == TP_DTYPE_F32 || t == TP_DTYPE_F16 || t == TP_DTYPE_BF16;
}

/* A weight tensor: float, or block-quantized (only from tp_st_from_table: GGUF). */
static bool is_weight(tp_dtype t) {
    return is_float(t) || tp_dtype_is_quant(t);
}

static void format_shape(char *buf, size_t cap, int n, const int64_t *shape) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, cap - o, "[");
    for (int i = 0; i < n && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (o < cap)
        snprintf(buf + o, cap - o, "]");
}

tp_status tp_st_get(const tp_st_model *m, const char *name, int n_dims, const int64_t *shape,
                    const tp_st_tensor **out, tp_error *err) {
    if (out)
        *out = NULL;
    if (!m || !name || !out || (n_dims > 0 && !shape) || n_dims > TP_ST_MAX_DIMS)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_st_get: bad arguments");
    const tp_st_tensor *t = tp_st_find(m, name);
    if (!t)
        return tp_fail(err, TP_ERR_NOT_FOUND, "%s: no tensor '%s'", m->origin, name);
    if (!is_weight(t->dtype))
        return tp_fail(err, TP_ERR_FORMAT,
                       "%s: tensor '%s': dtype %s, expected a float tensor (F32, F16 or BF16)",
                       t->file, name, tp_dtype_name(t->dtype));
    if (n_dims >= 0) {
        bool ok = t->n_dims == n_dims;
        for (int i = 0; ok && i < n_dims; i++)
            ok = shape[i] < 0 || shape[i] == t->shape[i];
        if (!ok) {
            char want[128], got[128];
            size_t o = 0;
            o += (size_t)snprintf(want + o, sizeof want - o, "[");
            for (int i = 0; i < n_dims && o < sizeof want; i++) {
                if (shape[i] < 0)
                    o += (size_t)snprintf(want + o, sizeof want - o, i ? ", *" : "*");
                else
                    o += (size_t)snprintf(want + o, sizeof want - o, i ? ", %lld" : "%lld",
                                          (long long)shape[i]);
            }
            if (o < sizeof want)
                snprintf(want + o, sizeof want - o, "]");
            format_shape(got, sizeof got, t->n_dims, t->shape);
            return tp_fail(err, TP_ERR_FORMAT, "%s: tensor '%s': shape %s, expected %s", t->file,
                           name, got, want);
        }
    }
    *out = t;
    return TP_OK;
}

tp_status tp_st_to_f32(const tp_st_tensor *t, float **out, tp_error *err) {
    if (!t || !out)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_st_to_f32: bad arguments");
    *out = NULL;
    if (!is_float(t->dtype))
        return tp_fail(err, TP_ERR_FORMAT,
                       "%s: tensor '%s': dtype %s cannot be read as float32 (F32, F16 or BF16)",
                       t->file, t->name, tp_dtype_name(t->dtype));
    size_t n = (size_t)t->n_elems;
    float *dst = tp_malloc_array(n ? n : 1, sizeof *dst);
    if (!dst)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "%s: tensor '%s': cannot allocate %zu floats",
                       t->file, t->name, n);
    const uint8_t *src = t->data;
    /* memcpy per element: the data may not be aligned to its element size */
    if (t->dtype == TP_DTYPE_F32) {
        memcpy(dst, src, n * sizeof(float));
    } else {
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = t->dtype == TP_DTYPE_BF16 ? tp_bf16_to_f32(h) : tp_f16_to_f32(h);
        }
    }
    *out = dst;
    return TP_OK;
}
