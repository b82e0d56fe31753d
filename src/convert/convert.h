/*
 * convert.h — Hugging Face checkpoint -> GGUF v3 converter (internal API of
 * src/convert; the CLI is `tpipe convert`, tools/tpipe/cmd_convert.c).
 *
 * What is written is what llama.cpp's convert_hf_to_gguf.py (for f32, f16,
 * bf16, q8_0) followed by llama-quantize (for the K-quant types) would produce
 * for Qwen3 and Gemma3: general.* and <arch>.* metadata from config.json
 * (the one HF <-> GGUF table of src/io/gguf.h), GGUF tensor names, Gemma3's
 * norm weights stored as (1 + w), the tokenizer as tokenizer.ggml.* (from
 * src/tokenizer's exporter) and tokenizer.chat_template, general.file_type and
 * per-tensor types chosen by the rules of tp_conv_pick_type below.
 *
 * Memory is bounded: tensors are converted one at a time, and each one in
 * slabs of rows (at most TP_CONV_SLAB_BYTES of f32 at a time) read from the
 * mmap'd safetensors and written out at once, so peak memory does not grow
 * with the model. Quantization may run on a thread pool; every row is encoded
 * on its own, so the file's bytes do not depend on the thread count.
 */
#ifndef TP_CONVERT_H
#define TP_CONVERT_H

#include "core/core.h"

#include <stdbool.h>
#include <stdint.h>

/* f32 elements converted per slab (16 MiB of f32; a row longer than this is
 * one slab on its own). */
#define TP_CONV_SLAB_ELEMS ((size_t)4 << 20)

/* The --type values: a file type (llama.cpp's "ftype"). */
typedef enum tp_conv_type {
    TP_CONV_F32 = 0,
    TP_CONV_F16,
    TP_CONV_BF16,
    TP_CONV_Q8_0,
    TP_CONV_Q4_K,   /* every quantized tensor Q4_K (llama-quantize --pure)        */
    TP_CONV_Q6_K,   /* every quantized tensor Q6_K (llama.cpp's Q6_K file type)   */
    TP_CONV_Q4_K_M, /* llama.cpp's Q4_K_M mix: Q4_K with Q6_K where it matters    */
    TP_CONV_TYPE_COUNT
} tp_conv_type;

/* "f32", "f16", "bf16", "q8_0", "q4_k", "q6_k", "q4_k_m" (case-insensitive;
 * "Q4_K_M" is accepted). false for anything else. */
bool tp_conv_type_parse(const char *s, tp_conv_type *out);
const char *tp_conv_type_name(tp_conv_type t);
/* general.file_type: llama.cpp's llama_ftype value for t (ALL_F32 0, MOSTLY_F16
 * 1, MOSTLY_Q8_0 7, MOSTLY_Q4_K_S 14 for q4_k, MOSTLY_Q4_K_M 15, MOSTLY_Q6_K 18,
 * MOSTLY_BF16 32). */
uint32_t tp_conv_file_type(tp_conv_type t);

/* Why a tensor got the type it got. */
typedef enum tp_conv_reason {
    TP_CONV_KEEP_F32 = 0, /* 1-D tensor or norm weight: always F32                */
    TP_CONV_DEFAULT,      /* the file type's type                                  */
    TP_CONV_MORE_BITS,    /* the mix gave it more bits (output, attn_v, ffn_down)  */
    TP_CONV_FALLBACK,     /* its rows are not a whole number of blocks: fell back  */
} tp_conv_reason;

/* The type of one tensor, given its GGUF name, its number of dims and row
 * length ne0 (elements per row), its layer (-1 when none), the number of
 * layers, and whether the file has a separate output.weight. Follows
 * llama.cpp (convert_hf_to_gguf.py for F32/F16/BF16/Q8_0, llama-quantize's
 * llama_tensor_get_type for the K types):
 *   - 1-D tensors and names ending in "_norm.weight": F32;
 *   - q4_k_m: output.weight (token_embd.weight when there is no output.weight)
 *     Q6_K; attn_v.weight and ffn_down.weight of the layers where
 *     use_more_bits(layer, n_layers) (the first and last eighth, and every third
 *     layer in between) Q6_K; every other matrix Q4_K;
 *   - fallback when ne0 is not a multiple of the chosen type's block: Q8_0 when
 *     ne0 is a multiple of 32, else F16 (llama.cpp falls back from Q4_K to Q5_0,
 *     which tpipe does not implement: Q8_0 is the next type it has).
 * *wanted (may be NULL) gets the type before any fallback. */
tp_dtype tp_conv_pick_type(tp_conv_type ftype, const char *gguf_name, int n_dims, int64_t ne0,
                           int layer, int n_layers, bool has_output, tp_dtype *wanted,
                           tp_conv_reason *reason);

/* llama.cpp's use_more_bits(i_layer, n_layers). */
bool tp_conv_use_more_bits(int layer, int n_layers);

/* One tensor of the output, as written. */
typedef struct tp_conv_tensor {
    char *name;      /* GGUF name                                  */
    char *hf_name;   /* its name in the checkpoint                  */
    tp_dtype src;    /* its dtype in the checkpoint                 */
    tp_dtype type;   /* its type in the GGUF file                   */
    tp_dtype wanted; /* the type before a fallback (== type when none) */
    tp_conv_reason reason;
    int n_dims;
    int64_t ne[4];  /* GGUF order: ne[0] is the row length      */
    uint64_t bytes; /* bytes in the GGUF file                      */
} tp_conv_tensor;

typedef struct tp_conv_report {
    const char *arch; /* "qwen3" or "gemma3" (static)            */
    tp_conv_tensor *tensors;
    size_t n_tensors;
    size_t n_fallback;   /* tensors with reason TP_CONV_FALLBACK     */
    uint64_t bytes_in;   /* tensor bytes read from the checkpoint    */
    uint64_t bytes_out;  /* tensor bytes written                     */
    uint64_t file_bytes; /* size of the GGUF file                    */
    bool has_tokenizer;  /* tokenizer.ggml.* written                 */
    bool has_chat_template;
    char *tokenizer_skip; /* why no tokenizer was written (NULL when one was) */
} tp_conv_report;

/* Progress: called before tensor i (0-based) of n is converted. */
typedef void (*tp_conv_progress_fn)(void *user, size_t i, size_t n, const tp_conv_tensor *t);

typedef struct tp_conv_params {
    tp_conv_type type; /* default TP_CONV_F16                                   */
    tp_pool *pool;     /* threads for quantization; NULL = the calling thread   */
    bool overwrite;    /* replace an existing output file (default false)      */
    const char *name;  /* general.name; NULL = the model folder's name          */
    bool no_tokenizer; /* do not write tokenizer.ggml.* even when present       */
    tp_conv_progress_fn progress;
    void *progress_user;
} tp_conv_params;

tp_conv_params tp_conv_default_params(void);

/* Converts the model folder `dir` (config.json, model.safetensors or a sharded
 * index, optional tokenizer files) into `out_path`. The file is written to
 * "<out_path>.tmp" and renamed into place only when complete, so an error
 * never leaves a truncated file under the final name. rep (may be NULL) is
 * filled on success and must be freed with tp_conv_report_free.
 * Errors: TP_ERR_INVALID_ARGUMENT (out_path exists and !overwrite; names it),
 * TP_ERR_UNSUPPORTED (not a Qwen3 or Gemma3 checkpoint, a tensor the GGUF
 * table does not know: named), TP_ERR_FORMAT (bad config or tensors, a tensor
 * with non-finite values for a quantized type: names tensor and row),
 * TP_ERR_IO (cannot write: names the file), TP_ERR_OUT_OF_MEMORY. */
tp_status tp_convert(const char *dir, const char *out_path, const tp_conv_params *params,
                     tp_conv_report *rep, tp_error *err);
void tp_conv_report_free(tp_conv_report *rep);

#endif /* TP_CONVERT_H */
