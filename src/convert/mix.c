/*
 * mix.c — which GGUF type each tensor gets for a file type (--type), and the
 * file-type names and numbers.
 *
 * The rules are llama.cpp's, restricted to the types tpipe implements:
 * convert_hf_to_gguf.py keeps 1-D tensors and norms in F32 and writes every
 * other matrix in the output type (F32/F16/BF16/Q8_0); llama-quantize's
 * llama_tensor_get_type gives the Q4_K_M mix (output Q6_K, attn_v and ffn_down
 * Q6_K on the layers use_more_bits picks). Layers are identified by the
 * "blk.N." of the GGUF name; llama.cpp counts attn_v / ffn_down tensors in
 * file order, which for these dense models is the same number.
 */
#include "convert/convert.h"

#include <string.h>
#include <strings.h>

static const struct {
    const char *name;
    uint32_t ftype;
} type_info[TP_CONV_TYPE_COUNT] = {
    [TP_CONV_F32] = {"f32", 0},        [TP_CONV_F16] = {"f16", 1},    [TP_CONV_BF16] = {"bf16", 32},
    [TP_CONV_Q8_0] = {"q8_0", 7},      [TP_CONV_Q4_K] = {"q4_k", 14}, [TP_CONV_Q6_K] = {"q6_k", 18},
    [TP_CONV_Q4_K_M] = {"q4_k_m", 15},
};

bool tp_conv_type_parse(const char *s, tp_conv_type *out) {
    for (int t = 0; s && t < TP_CONV_TYPE_COUNT; t++) {
        if (!strcasecmp(s, type_info[t].name)) {
            *out = (tp_conv_type)t;
            return true;
        }
    }
    return false;
}

const char *tp_conv_type_name(tp_conv_type t) {
    return (unsigned)t < TP_CONV_TYPE_COUNT ? type_info[t].name : "?";
}

uint32_t tp_conv_file_type(tp_conv_type t) {
    return (unsigned)t < TP_CONV_TYPE_COUNT ? type_info[t].ftype : 0;
}

bool tp_conv_use_more_bits(int layer, int n_layers) {
    /* llama.cpp: i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2 (C integer division) */
    return layer < n_layers / 8 || layer >= 7 * n_layers / 8 || (layer - n_layers / 8) % 3 == 2;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !memcmp(s + n - m, suffix, m);
}

tp_dtype tp_conv_pick_type(tp_conv_type ftype, const char *name, int n_dims, int64_t ne0, int layer,
                           int n_layers, bool has_output, tp_dtype *wanted,
                           tp_conv_reason *reason) {
    tp_conv_reason why = TP_CONV_DEFAULT;
    tp_dtype t;
    if (n_dims <= 1 || ends_with(name, "_norm.weight") || !ends_with(name, ".weight")) {
        /* convert_hf_to_gguf.py: "Most of the codebase that takes in 1D tensors or
         * norms only handles F32 tensors"; llama-quantize quantizes only *.weight. */
        t = TP_DTYPE_F32;
        why = TP_CONV_KEEP_F32;
    } else {
        switch (ftype) {
        case TP_CONV_F32:
            t = TP_DTYPE_F32;
            break;
        case TP_CONV_F16:
            t = TP_DTYPE_F16;
            break;
        case TP_CONV_BF16:
            t = TP_DTYPE_BF16;
            break;
        case TP_CONV_Q8_0:
            t = TP_DTYPE_Q8_0;
            break;
        case TP_CONV_Q6_K:
            t = TP_DTYPE_Q6_K;
            break;
        case TP_CONV_Q4_K:
            t = TP_DTYPE_Q4_K;
            break;
        default: /* TP_CONV_Q4_K_M */
            t = TP_DTYPE_Q4_K;
            if (!strcmp(name, "output.weight") ||
                (!has_output && !strcmp(name, "token_embd.weight"))) {
                /* llama.cpp: Q8_0 when the row is not a multiple of the K block,
                 * else Q6_K */
                t = ne0 % 256 ? TP_DTYPE_Q8_0 : TP_DTYPE_Q6_K;
                why = TP_CONV_MORE_BITS;
            } else if ((ends_with(name, ".attn_v.weight") || ends_with(name, ".ffn_down.weight")) &&
                       layer >= 0 && tp_conv_use_more_bits(layer, n_layers)) {
                t = TP_DTYPE_Q6_K;
                why = TP_CONV_MORE_BITS;
            }
            break;
        }
    }
    if (wanted)
        *wanted = t;
    size_t blk = tp_dtype_block(t);
    if (blk > 1 && ne0 % (int64_t)blk) {
        t = ne0 % 32 ? TP_DTYPE_F16 : TP_DTYPE_Q8_0;
        why = TP_CONV_FALLBACK;
    }
    if (reason)
        *reason = why;
    return t;
}
