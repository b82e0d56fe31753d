/*
 * st_write.h — a streaming safetensors writer and a Hugging Face style JSON
 * printer (internal; used by tools/mkmodel and by tests that need model files).
 *
 * Files are written the way the reference implementation writes them: an 8-byte
 * little-endian header length, a compact JSON header with
 * "__metadata__": {"format": "pt"} first and the tensors sorted by name with
 * contiguous data_offsets, the header padded with spaces so that the data
 * starts at an 8-byte boundary, then the data. Tensor bytes are produced in
 * chunks by a callback, so multi-GB files never sit in memory. The file is
 * written to "<path>.tmp" and renamed into place only when complete.
 */
#ifndef TP_ST_WRITE_H
#define TP_ST_WRITE_H

#include "core/core.h"
#include "io/safetensors.h"

#include <cjson/cJSON.h>

typedef struct tp_st_wtensor {
    const char *name;
    tp_dtype dtype;
    int n_dims;
    int64_t shape[TP_ST_MAX_DIMS];
    const void *data; /* all n_elems * dtype-size bytes, or NULL: produced by fill */
} tp_st_wtensor;

/* Produces elements [first, first + n) of tensors[index] in its dtype into dst.
 * Called tensor by tensor in name order, with increasing `first`. */
typedef tp_status (*tp_st_fill_fn)(void *user, size_t index, int64_t first, size_t n, void *dst,
                                   tp_error *err);

/* Writes n tensors to path. fill may be NULL when every tensor has data.
 * Errors: TP_ERR_INVALID_ARGUMENT (empty, duplicate, "__metadata__" or non-UTF-8
 * name, negative dim, more than TP_ST_MAX_DIMS dims, size overflow: named),
 * TP_ERR_IO (cannot create/write/rename: names the file), what fill returns. */
tp_status tp_st_write(const char *path, const tp_st_wtensor *tensors, size_t n, tp_st_fill_fn fill,
                      void *user, tp_error *err);

/* Appends `root` to b as Python's json.dumps(indent=2, sort_keys=True) prints
 * it (what transformers writes for config.json): two-space indent, keys sorted,
 * non-ASCII escaped as \uXXXX. Numbers that are not exact integers should be
 * added as raw nodes holding tp_json_py_float text (cJSON_CreateRaw): raw
 * nodes are copied verbatim, ordinary numbers are printed as integers. */
void tp_json_print_py(const cJSON *root, tp_buf *b);
/* Python's repr() of a float: "1e-06", "1000000.0", "0.02", "10.0", "inf"
 * written as "Infinity" (Python json). out needs 32 bytes. */
void tp_json_py_float(double v, char out[32]);
/* A raw cJSON number node printed like Python (NULL on OOM). */
cJSON *tp_json_py_number(double v);

#endif /* TP_ST_WRITE_H */
