/*
 * quant.h — ggml block-quantized weight formats (Q8_0, Q4_K, Q6_K): exact block
 * layouts, the scalar reference dequantizer, a quantizer, and the tensor-layer
 * helpers the loader and the converter use (internal API of src/tensor).
 *
 * Layouts are byte-for-byte those of ggml/GGUF (little-endian, no padding):
 *   Q8_0 (32 elements, 34 bytes):   f16 d; int8 qs[32];          x[i] = d * qs[i]
 *   Q4_K (256 elements, 144 bytes): f16 d; f16 dmin; u8 scales[12]; u8 qs[128];
 *       8 sub-blocks of 32; sub-block j has a 6-bit scale sc[j] and a 6-bit min
 *       m[j] packed in scales[] (j < 4: sc = scales[j] & 63, m = scales[j+4] & 63;
 *       j >= 4: sc = (scales[j+4] & 15) | (scales[j-4] >> 6) << 4,
 *               m  = (scales[j+4] >> 4) | (scales[j]   >> 6) << 4);
 *       element 64c + l (c < 4, l < 32) is the low nibble of qs[32c + l],
 *       element 64c + 32 + l its high nibble;  x = (d*sc[j]) * q - (dmin*m[j]).
 *   Q6_K (256 elements, 210 bytes): u8 ql[128]; u8 qh[64]; int8 scales[16]; f16 d;
 *       16 sub-blocks of 16 with int8 scales; in each half h (128 elements,
 *       ql + 64h, qh + 32h), for l < 32:
 *         element 128h + l      = ql[l] & 15      | ((qh[l] >> 0) & 3) << 4
 *         element 128h + 32 + l = ql[l + 32] & 15 | ((qh[l] >> 2) & 3) << 4
 *         element 128h + 64 + l = ql[l] >> 4      | ((qh[l] >> 4) & 3) << 4
 *         element 128h + 96 + l = ql[l + 32] >> 4 | ((qh[l] >> 6) & 3) << 4
 *       x = (d*scales[e/16]) * (q - 32).
 * The dequantizer evaluates exactly these f32 expressions, so it reproduces
 * ggml's own dequantization bit for bit.
 *
 * The quantizer is this project's own (docs/kernels.md, "Quantized weights"):
 * Q8_0 rounds to nearest with d = amax/127 (f16); Q4_K searches each
 * sub-block's (scale, min) for least squared error, then quantizes the scales
 * and mins to 6 bits under f16 super-scales and re-rounds the values with the
 * stored scales; Q6_K does the same with signed sub-block scales. Any ggml
 * reader decodes the blocks with the formulas above.
 *
 * Non-finite inputs: quantized types treat NaN and +-Inf as 0 when building
 * the block (the rest of the block stays accurate) and the functions report how
 * many there were; plain types (F32/F16/BF16) store them as they are (and count
 * them too). Scales saturate at the f16 maximum (65504): Q8_0 clips |x| beyond
 * 127 * 65504; f16 targets round out-of-range values to +-Inf (counted).
 */
#ifndef TP_TENSOR_QUANT_H
#define TP_TENSOR_QUANT_H

#include "core/core.h"

#define TP_QK8_0 32
#define TP_QK_K 256

typedef struct tp_block_q8_0 {
    uint16_t d; /* f16 */
    int8_t qs[TP_QK8_0];
} tp_block_q8_0;

typedef struct tp_block_q4_k {
    uint16_t d;    /* f16 super-scale of the sub-block scales */
    uint16_t dmin; /* f16 super-scale of the sub-block mins   */
    uint8_t scales[12];
    uint8_t qs[TP_QK_K / 2];
} tp_block_q4_k;

typedef struct tp_block_q6_k {
    uint8_t ql[TP_QK_K / 2];
    uint8_t qh[TP_QK_K / 4];
    int8_t scales[TP_QK_K / 16];
    uint16_t d; /* f16 */
} tp_block_q6_k;

_Static_assert(sizeof(tp_block_q8_0) == 34, "Q8_0 block is 34 bytes");
_Static_assert(sizeof(tp_block_q4_k) == 144, "Q4_K block is 144 bytes");
_Static_assert(sizeof(tp_block_q6_k) == 210, "Q6_K block is 210 bytes");

/* f32 -> f16, round to nearest even; overflow gives +-Inf, NaN stays NaN. */
uint16_t tp_f32_to_f16(float f);

/* Unpacks the 6-bit scale and min of Q4_K sub-block j (0..7) from scales[12]. */
static inline void tp_q4k_scale_min(const uint8_t *scales, int j, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = scales[j] & 63;
        *m = scales[j + 4] & 63;
    } else {
        *sc = (uint8_t)((scales[j + 4] & 15) | ((scales[j - 4] >> 6) << 4));
        *m = (uint8_t)((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
    }
}

/* dst[0:n] = the values of one row of n elements stored in dtype t at src.
 * t: F32, F16, BF16, Q8_0, Q4_K or Q6_K; n a multiple of tp_dtype_block(t).
 * src needs no alignment. Scalar reference (ggml's exact formulas). */
void tp_dequantize_row(tp_dtype t, const void *src, float *dst, size_t n);

/* Encodes one row of n floats as dtype t (F32, F16, BF16, Q8_0, Q4_K, Q6_K;
 * n a multiple of tp_dtype_block(t)) into dst (tp_dtype_row_bytes(t, n) bytes,
 * no alignment needed). Returns the number of non-finite inputs (see above for
 * what is stored for them); 0 for a clean row. Deterministic: the bytes depend
 * only on src and n. */
size_t tp_quantize_row(tp_dtype t, const float *src, void *dst, size_t n);

/* Encodes a (rows, cols) row-major f32 matrix as dtype t, row r at
 * dst + r * tp_dtype_row_bytes(t, cols); rows split over pool (may be NULL),
 * with the same bytes for any thread count. Errors: cols not a multiple of the
 * block, size overflow, or non-finite inputs (TP_ERR_FORMAT naming the first
 * row and the count; dst is still completely written, as tp_quantize_row does). */
tp_status tp_quantize_tensor(tp_pool *pool, tp_dtype t, const float *src, size_t rows, size_t cols,
                             void *dst, tp_error *err);

/* Bytes of a (rows, cols) tensor of dtype t (plain or quantized); false when
 * cols is not a whole number of blocks or the size overflows. For the loaders:
 * use this instead of rows * cols * tp_dtype_size(t). */
bool tp_tensor_bytes(tp_dtype t, size_t rows, size_t cols, size_t *out);

#endif /* TP_TENSOR_QUANT_H */
