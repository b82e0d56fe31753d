/*
 * gguf.h — GGUF files (llama.cpp's checkpoint format): a strict, zero-copy
 * reader, a streaming writer, and the one table that maps Hugging Face names
 * (tensors and config.json keys) to GGUF names for the decoder families
 * (internal; issue #10).
 *
 * File layout (v2 and v3; all little-endian):
 *   magic "GGUF", u32 version, u64 n_tensors, u64 n_kv,
 *   n_kv x (string key, u32 type, value),
 *   n_tensors x (string name, u32 n_dims, n_dims x u64 ne, u32 ggml_type, u64 offset),
 *   padding to general.alignment (default 32), the data section.
 * A string is a u64 length + bytes (no NUL). ne[0] is the contiguous dimension:
 * a Hugging Face (rows, cols) matrix is stored with ne = {cols, rows}. Tensor
 * offsets count from the start of the data section and are aligned.
 *
 * Reader: tp_gguf_open maps the file read-only in one piece; keys, tensor names
 * and scalar string values are copied (NUL-terminated), everything else
 * (arrays, tensor data) points into the mapping. Every error is TP_ERR_FORMAT
 * (or TP_ERR_UNSUPPORTED for a known but unhandled ggml type or feature) whose
 * message names the file and the key or tensor; see docs/gguf.md for the rules.
 *
 * Writer: collects metadata and tensor descriptions, then streams the file to
 * "<path>.tmp" (tensor bytes produced by a callback in row chunks, so
 * multi-GB checkpoints never sit in memory) and renames it into place. It writes
 * v3 with general.alignment (32 unless the caller set the key).
 *
 * Names: tp_gguf_name_to_gguf / tp_gguf_name_to_hf use one table (gguf_names.c)
 * in both directions, as llama.cpp's gguf-py tensor_mapping.py names them; the
 * config keys are tp_gguf_hparams_to_gguf / tp_gguf_hparams_to_config (one key
 * table, also both directions).
 */
#ifndef TP_GGUF_H
#define TP_GGUF_H

#include "core/core.h"
#include "io/config.h"
#include "io/safetensors.h"

#include <cjson/cJSON.h>

/* ---------------------------------------------------------------- format */

#define TP_GGUF_MAGIC 0x46554747u /* "GGUF" read as a little-endian u32 */
#define TP_GGUF_DEFAULT_ALIGNMENT 32
#define TP_GGUF_MAX_DIMS 4

/* Metadata value types (the numbering of the GGUF spec). */
typedef enum tp_gguf_type {
    TP_GGUF_UINT8 = 0,
    TP_GGUF_INT8 = 1,
    TP_GGUF_UINT16 = 2,
    TP_GGUF_INT16 = 3,
    TP_GGUF_UINT32 = 4,
    TP_GGUF_INT32 = 5,
    TP_GGUF_FLOAT32 = 6,
    TP_GGUF_BOOL = 7,
    TP_GGUF_STRING = 8,
    TP_GGUF_ARRAY = 9,
    TP_GGUF_UINT64 = 10,
    TP_GGUF_INT64 = 11,
    TP_GGUF_FLOAT64 = 12,
    TP_GGUF_TYPE_COUNT
} tp_gguf_type;

const char *tp_gguf_type_name(tp_gguf_type t); /* "u32", "string", "array", ... */

/* ggml tensor type numbers of the types tpipe reads and writes. */
#define TP_GGML_F32 0
#define TP_GGML_F16 1
#define TP_GGML_Q8_0 8
#define TP_GGML_Q4_K 12
#define TP_GGML_Q6_K 14
#define TP_GGML_BF16 30

/* ggml type <-> tp_dtype. false for a ggml type tpipe does not read (the
 * reader reports those as TP_ERR_UNSUPPORTED naming the tensor and type). */
bool tp_gguf_dtype_from_ggml(uint32_t ggml_type, tp_dtype *out);
bool tp_gguf_dtype_to_ggml(tp_dtype t, uint32_t *out);
/* ggml's name of a type number ("Q4_K", "IQ2_XXS", ...), "unknown" past the list. */
const char *tp_gguf_ggml_type_name(uint32_t ggml_type);

/* ---------------------------------------------------------------- reader */

typedef struct tp_gguf tp_gguf;

/* One metadata key/value. Scalars: read with the getters below. Arrays: n
 * elements of arr_type; fixed-size elements lie at `data` (little-endian,
 * possibly unaligned: use the tp_gguf_arr_* accessors); strings through
 * tp_gguf_arr_str. Nested arrays are rejected by the reader. */
typedef struct tp_gguf_kv {
    const char *key; /* NUL-terminated copy */
    tp_gguf_type type;
    tp_gguf_type arr_type; /* arrays only */
    uint64_t n;            /* array length; 1 for scalars */
    const uint8_t *data;   /* into the mapping: the value (scalar) or the first element */
    const char *str;       /* STRING: NUL-terminated copy (may contain NULs: use str_len) */
    uint64_t str_len;
    const uint64_t *str_offs; /* array of STRING: offset of element i's u64 length
                                 field, relative to data (owned by the file) */
} tp_gguf_kv;

/* One tensor info. ne[] in GGUF (ggml) order: ne[0] is the row length. */
typedef struct tp_gguf_tensor {
    const char *name; /* NUL-terminated copy */
    uint32_t ggml_type;
    tp_dtype dtype;
    int n_dims;                   /* 1..4 */
    int64_t ne[TP_GGUF_MAX_DIMS]; /* unused dims are 1 */
    int64_t n_elems;
    uint64_t offset; /* relative to the data section */
    const void *data;
    size_t n_bytes;
} tp_gguf_tensor;

/* Opens and validates `path` (a .gguf file). */
tp_status tp_gguf_open(const char *path, tp_gguf **out, tp_error *err);
/* Same over a caller's buffer (not copied; must outlive the handle): for the
 * fuzz harness and tests. `name` is used in messages. */
tp_status tp_gguf_open_memory(const void *data, size_t size, const char *name, tp_gguf **out,
                              tp_error *err);
void tp_gguf_close(tp_gguf *g);

const char *tp_gguf_path(const tp_gguf *g);
uint32_t tp_gguf_version(const tp_gguf *g);
uint32_t tp_gguf_alignment(const tp_gguf *g);
size_t tp_gguf_data_offset(const tp_gguf *g); /* file offset of the data section */

size_t tp_gguf_kv_count(const tp_gguf *g);
const tp_gguf_kv *tp_gguf_kv_at(const tp_gguf *g, size_t i); /* file order */
const tp_gguf_kv *tp_gguf_find_kv(const tp_gguf *g, const char *key);

size_t tp_gguf_tensor_count(const tp_gguf *g);
const tp_gguf_tensor *tp_gguf_tensor_at(const tp_gguf *g, size_t i); /* file order */
const tp_gguf_tensor *tp_gguf_find_tensor(const tp_gguf *g, const char *name);

/* Typed getters: absent key -> TP_OK with the default (or TP_ERR_NOT_FOUND
 * naming file + key for the _req variants); wrong type -> TP_ERR_FORMAT naming
 * file, key, the type found and the type wanted. Integers accept any integer
 * type whose value fits int64; floats accept FLOAT32/FLOAT64. */
tp_status tp_gguf_get_int(const tp_gguf *g, const char *key, int64_t def, int64_t *out,
                          tp_error *err);
tp_status tp_gguf_get_float(const tp_gguf *g, const char *key, double def, double *out,
                            tp_error *err);
tp_status tp_gguf_get_bool(const tp_gguf *g, const char *key, bool def, bool *out, tp_error *err);
/* *out is the NUL-terminated copy (valid while g is open); def may be NULL. */
tp_status tp_gguf_get_str(const tp_gguf *g, const char *key, const char *def, const char **out,
                          tp_error *err);
tp_status tp_gguf_req_int(const tp_gguf *g, const char *key, int64_t *out, tp_error *err);
tp_status tp_gguf_req_float(const tp_gguf *g, const char *key, double *out, tp_error *err);
tp_status tp_gguf_req_str(const tp_gguf *g, const char *key, const char **out, tp_error *err);
/* An array key: *out = NULL when absent; TP_ERR_FORMAT when not an array of
 * elem_type (pass TP_GGUF_TYPE_COUNT to accept any element type). */
tp_status tp_gguf_get_arr(const tp_gguf *g, const char *key, tp_gguf_type elem_type,
                          const tp_gguf_kv **out, tp_error *err);

/* Array element access (i < kv->n; no checks beyond a debug assert). */
int64_t tp_gguf_arr_int(const tp_gguf_kv *kv, uint64_t i);  /* any integer type or BOOL */
double tp_gguf_arr_float(const tp_gguf_kv *kv, uint64_t i); /* FLOAT32/FLOAT64 */
const char *tp_gguf_arr_str(const tp_gguf_kv *kv, uint64_t i, size_t *len); /* not NUL-terminated */

/* ---------------------------------------------------------------- writer */

typedef struct tp_gguf_writer tp_gguf_writer;

/* Produces rows [row0, row0 + n_rows) of tensor `index` (in add order) into dst,
 * in the tensor's dtype (a row is ne[0] elements; block-quantized rows are
 * tp_dtype_row_bytes bytes). Called tensor by tensor with increasing row0. */
typedef tp_status (*tp_gguf_fill_fn)(void *user, size_t index, int64_t row0, int64_t n_rows,
                                     void *dst, tp_error *err);

tp_gguf_writer *tp_gguf_writer_new(void); /* NULL on OOM */
void tp_gguf_writer_free(tp_gguf_writer *w);

/* Metadata, written in the order added. A key added twice, an empty key, or a
 * key that is not valid UTF-8 is TP_ERR_INVALID_ARGUMENT. Strings are copied. */
tp_status tp_gguf_set_u32(tp_gguf_writer *w, const char *key, uint32_t v, tp_error *err);
tp_status tp_gguf_set_i32(tp_gguf_writer *w, const char *key, int32_t v, tp_error *err);
tp_status tp_gguf_set_u64(tp_gguf_writer *w, const char *key, uint64_t v, tp_error *err);
tp_status tp_gguf_set_f32(tp_gguf_writer *w, const char *key, float v, tp_error *err);
tp_status tp_gguf_set_f64(tp_gguf_writer *w, const char *key, double v, tp_error *err);
tp_status tp_gguf_set_bool(tp_gguf_writer *w, const char *key, bool v, tp_error *err);
tp_status tp_gguf_set_str(tp_gguf_writer *w, const char *key, const char *v, tp_error *err);
tp_status tp_gguf_set_strn(tp_gguf_writer *w, const char *key, const char *v, size_t len,
                           tp_error *err);
/* A scalar of any non-array type from its little-endian bytes (for copying). */
tp_status tp_gguf_set_scalar(tp_gguf_writer *w, const char *key, tp_gguf_type type,
                             const void *value, tp_error *err);
/* An array of n fixed-size elements (elem_type not STRING/ARRAY), copied from
 * `elems` (host order = little-endian). BOOL elements are one byte 0/1. */
tp_status tp_gguf_set_arr(tp_gguf_writer *w, const char *key, tp_gguf_type elem_type,
                          const void *elems, uint64_t n, tp_error *err);
/* An array of n strings; lens may be NULL (strlen). */
tp_status tp_gguf_set_arr_str(tp_gguf_writer *w, const char *key, const char *const *strs,
                              const size_t *lens, uint64_t n, tp_error *err);

/* A tensor: ne in GGUF order (ne[0] = row length), dtype one of F32/F16/BF16/
 * Q8_0/Q4_K/Q6_K (ne[0] a multiple of the block for quantized types). data
 * holds all bytes, or is NULL: then the fill callback produces them. The name
 * is copied; duplicates, > 4 dims, dims < 1 and size overflow are
 * TP_ERR_INVALID_ARGUMENT naming the tensor. */
tp_status tp_gguf_add_tensor(tp_gguf_writer *w, const char *name, tp_dtype dtype, int n_dims,
                             const int64_t *ne, const void *data, tp_error *err);

/* Writes the file (v3). fill may be NULL when every tensor has data. Errors:
 * TP_ERR_IO naming the file, TP_ERR_INVALID_ARGUMENT (bad general.alignment),
 * what fill returns. The partial "<path>.tmp" is removed on failure. */
tp_status tp_gguf_write(tp_gguf_writer *w, const char *path, tp_gguf_fill_fn fill, void *user,
                        tp_error *err);
/* Same into memory (tests, fuzz seeds): *out malloc'd (tp_free), *size bytes. */
tp_status tp_gguf_write_memory(tp_gguf_writer *w, tp_gguf_fill_fn fill, void *user, uint8_t **out,
                               size_t *size, tp_error *err);

/* ---------------------------------------------------------------- names */

/* The architectures tpipe maps (general.architecture). */
typedef enum tp_gguf_arch {
    TP_GGUF_ARCH_UNKNOWN = 0,
    TP_GGUF_ARCH_QWEN3 = 1,
    TP_GGUF_ARCH_GEMMA3 = 2,
} tp_gguf_arch;

tp_gguf_arch tp_gguf_arch_from_name(const char *s); /* "qwen3", "gemma3" */
const char *tp_gguf_arch_name(tp_gguf_arch a);
/* From config.json: model_type qwen3 / gemma3 / gemma3_text, else architectures[0]. */
tp_gguf_arch tp_gguf_arch_from_config(const tp_json_doc *config);

/* One row of the tensor-name table. "%d" stands for the layer number. The HF
 * name is the one transformers uses for the text model with the "model."
 * prefix (Gemma3ForConditionalGeneration's "language_model.model." and
 * "model.language_model." are accepted on the way in). */
typedef struct tp_gguf_name {
    const char *hf;   /* "model.layers.%d.self_attn.q_proj.weight" */
    const char *gguf; /* "blk.%d.attn_q.weight" */
    unsigned archs;   /* bit (1u << tp_gguf_arch) for each architecture using it */
    bool norm;        /* an RMSNorm weight: Gemma3 GGUF files store 1 + w */
} tp_gguf_name;

extern const tp_gguf_name tp_gguf_names[];
extern const size_t tp_gguf_names_count;

typedef enum tp_gguf_map {
    TP_GGUF_MAP_OK = 0,  /* mapped into out */
    TP_GGUF_MAP_SKIP,    /* known but not written to GGUF (vision tower, projector,
                            rotary inv_freq buffers) */
    TP_GGUF_MAP_UNKNOWN, /* not in the table for this architecture */
} tp_gguf_map;

/* HF -> GGUF. *norm (may be NULL) is set when the tensor is an RMSNorm weight
 * (the converter adds 1 for Gemma3: see tp_gguf_norm_shift). out gets the
 * name (truncation is UNKNOWN). */
tp_gguf_map tp_gguf_name_to_gguf(tp_gguf_arch arch, const char *hf, char *out, size_t cap,
                                 bool *norm);
/* GGUF -> HF ("model." names, "lm_head.weight"). */
tp_gguf_map tp_gguf_name_to_hf(tp_gguf_arch arch, const char *gguf, char *out, size_t cap,
                               bool *norm);
/* What llama.cpp's converter adds to an RMSNorm weight of this architecture
 * (Gemma3: 1.0, computed in f32; Qwen3: 0). */
float tp_gguf_norm_shift(tp_gguf_arch arch);

/* ---------------------------------------------------------------- hyper-parameters */

/* One row of the config-key table: config.json key <-> "<arch>.<gguf>". Keys
 * that need more than a copy (rope_scaling, layer_types / sliding_window_pattern,
 * query_pre_attn_scalar, eos ids) are handled in the functions below and listed
 * in docs/gguf.md. */
typedef struct tp_gguf_hkey {
    const char *hf;    /* "num_attention_heads" */
    const char *gguf;  /* "attention.head_count" (after "<arch>.") */
    tp_gguf_type type; /* how it is written: UINT32 or FLOAT32 */
    unsigned archs;
} tp_gguf_hkey;

extern const tp_gguf_hkey tp_gguf_hkeys[];
extern const size_t tp_gguf_hkeys_count;

/* config.json -> GGUF metadata: general.architecture, general.name (when given),
 * and every <arch>.* key (uses the text_config of a multimodal Gemma3 config).
 * n_layers-long per-layer data (sliding pattern) comes from the config.
 * Errors: TP_ERR_UNSUPPORTED (architecture, rope_scaling type), FORMAT (bad
 * values, naming config file + key). */
tp_status tp_gguf_hparams_to_gguf(const tp_json_doc *config, tp_gguf_writer *w, tp_error *err);

/* GGUF metadata -> a config.json-style object (model_type, architectures and
 * the keys the family loaders read, in their HF names), with llama.cpp's
 * defaults where the file leaves a key out (Gemma3: sliding pattern 6, local
 * RoPE base 10000, attention scale from key_length). vocab_size comes from the
 * token_embd.weight rows, tie_word_embeddings from the absence of
 * output.weight, eos_token_id from tokenizer.ggml.eos/eot/eom_token_id and
 * tpipe.eos_token_ids. *out is owned by the caller (cJSON_Delete). Errors name
 * the file and key: TP_ERR_UNSUPPORTED (architecture, rope scaling type, split
 * files, partial rotary), TP_ERR_FORMAT (missing or bad keys). */
tp_status tp_gguf_hparams_to_config(const tp_gguf *g, cJSON **out, tp_error *err);

/* The HF view of a GGUF decoder checkpoint: the config.json document above
 * (doc->path is the .gguf path) and a tensor table with HF names and HF
 * (row-major: reversed ne) shapes whose data points into g's mapping
 * (quantized types keep their dtype); g must stay open while *st is used.
 * Checks that every tensor the architecture needs is present (names the GGUF
 * tensor). *norm_plus_one_stored is set when RMSNorm weights hold 1 + w
 * (Gemma3): the decoder must then multiply by them as they are. */
tp_status tp_gguf_open_hf(const tp_gguf *g, tp_json_doc *config, tp_st_model **st,
                          bool *norm_plus_one_stored, tp_error *err);

/* Whether `path` designates a GGUF checkpoint: a regular file whose name ends
 * in ".gguf" (any case), or a folder holding exactly one such file and no
 * *.safetensors. Then *out is the file's path (malloc'd, tp_free); else false
 * and *out = NULL. */
bool tp_gguf_checkpoint_path(const char *path, char **out);

#endif /* TP_GGUF_H */
