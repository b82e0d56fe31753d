/*
 * safetensors.h — zero-copy, strictly validated safetensors reader (internal).
 *
 * Owner: the foundation issue (#2). A tp_st_file maps one .safetensors file
 * read-only; a tp_st_model is a set of them (one file, or the shards listed by
 * model.safetensors.index.json) with one name -> tensor lookup. Tensor data
 * pointers point into the mapping: nothing is copied, and pages are read only
 * when touched.
 */
#ifndef TP_SAFETENSORS_H
#define TP_SAFETENSORS_H

#include "core/core.h"

#define TP_ST_MAX_DIMS 8

typedef struct tp_st_tensor {
    const char *name; /* owned by the file */
    tp_dtype dtype;
    int n_dims;
    int64_t shape[TP_ST_MAX_DIMS];
    int64_t n_elems;
    const void *data; /* into the mmap */
    size_t n_bytes;
    const char *file; /* path of the file that holds it */
} tp_st_tensor;

typedef struct tp_st_model tp_st_model;

/* Opens `path`, which is a .safetensors file, a model.safetensors.index.json,
 * or a model folder (model.safetensors, else model.safetensors.index.json).
 * Validates every header strictly; errors name the file and the tensor. */
tp_status tp_st_open(const char *path, tp_st_model **out, tp_error *err);
/* Validates a safetensors file held in memory (data[0, size)) with the same
 * parser and checks as tp_st_open; `name` (NULL: "(buffer)") stands for the
 * file in messages. Tensor data pointers point into `data`, which the caller
 * keeps alive and unchanged until tp_st_close. */
tp_status tp_st_open_buffer(const void *data, size_t size, const char *name, tp_st_model **out,
                            tp_error *err);
void tp_st_close(tp_st_model *m);

size_t tp_st_count(const tp_st_model *m);
const tp_st_tensor *tp_st_at(const tp_st_model *m, size_t i);           /* sorted by name */
const tp_st_tensor *tp_st_find(const tp_st_model *m, const char *name); /* NULL if absent */
size_t tp_st_file_count(const tp_st_model *m); /* 1, or the number of shards */
const char *tp_st_path(const tp_st_model *m);  /* the path given to tp_st_open */

/* A table built by another reader (the GGUF loader, src/io/gguf_model.c):
 * the n tensors are copied (names too; `file` is set to origin) and sorted;
 * their data stays where it is (e.g. in a GGUF mapping that must outlive the
 * model). Duplicate names are TP_ERR_FORMAT. tp_st_file_count is 0. */
tp_status tp_st_from_table(const char *origin, const tp_st_tensor *tensors, size_t n,
                           tp_st_model **out, tp_error *err);

/* Finds `name` and checks its dtype class and shape: n_dims dims given in
 * shape[] (-1 = any). Float tensors (F32/F16/BF16) are accepted when want is
 * any float. Errors name the tensor, the file, and what was expected.
 * (As implemented: the tensor must be F32, F16 or BF16 -- or a block-quantized
 * type, which only tables from tp_st_from_table hold -- else TP_ERR_FORMAT;
 * n_dims < 0 skips the shape check; absent is TP_ERR_NOT_FOUND. Use tp_st_find
 * for integer tensors. `data` may be unaligned for its element size.) */
tp_status tp_st_get(const tp_st_model *m, const char *name, int n_dims, const int64_t *shape,
                    const tp_st_tensor **out, tp_error *err);

/* Copies a float tensor (F32/F16/BF16) into a new f32 array (malloc'd). For the
 * small vectors (norm weights, biases) that models keep in f32. */
tp_status tp_st_to_f32(const tp_st_tensor *t, float **out, tp_error *err);

#endif /* TP_SAFETENSORS_H */
