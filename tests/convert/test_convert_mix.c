/*
 * test_convert_mix.c — the per-tensor type rules of `tpipe convert`
 * (src/convert/mix.c) against expectations worked out by hand from llama.cpp's
 * rules (convert_hf_to_gguf.py: 1-D tensors and norms F32; llama-quantize's
 * llama_tensor_get_type for Q4_K_M: output Q6_K, attn_v / ffn_down Q6_K where
 * use_more_bits(i, n) = i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2), and the
 * fallbacks for rows that are not a whole number of blocks.
 */
#include "convert/convert.h"
#include "test_util.h"

static tp_dtype pick(tp_conv_type t, const char *name, int n_dims, int64_t ne0, int layer, int n,
                     bool has_output, tp_conv_reason *why) {
    return tp_conv_pick_type(t, name, n_dims, ne0, layer, n, has_output, NULL, why);
}

int main(void) {
    /* use_more_bits, by hand: n = 28 (Qwen3-0.6B): n/8 = 3, 7n/8 = 24 ->
     * 0,1,2 | 5,8,11,14,17,20,23 | 24,25,26,27 */
    const int want28[] = {0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27};
    size_t k = 0;
    for (int i = 0; i < 28; i++) {
        bool w = k < sizeof want28 / sizeof want28[0] && want28[k] == i;
        if (w)
            k++;
        CHECK_MSG(tp_conv_use_more_bits(i, 28) == w, "layer %d of 28", i);
    }
    /* n = 4: n/8 = 0, 7n/8 = 3 -> layer 2 ((2-0)%3 == 2) and 3 */
    CHECK(!tp_conv_use_more_bits(0, 4) && !tp_conv_use_more_bits(1, 4));
    CHECK(tp_conv_use_more_bits(2, 4) && tp_conv_use_more_bits(3, 4));
    /* n = 26 (Gemma3-1B): n/8 = 3, 7n/8 = 22 -> 0,1,2,5,8,11,14,17,20,22,23,24,25 */
    const int want26[] = {0, 1, 2, 5, 8, 11, 14, 17, 20, 22, 23, 24, 25};
    k = 0;
    for (int i = 0; i < 26; i++) {
        bool w = k < sizeof want26 / sizeof want26[0] && want26[k] == i;
        if (w)
            k++;
        CHECK_MSG(tp_conv_use_more_bits(i, 26) == w, "layer %d of 26", i);
    }

    tp_conv_reason why;
    /* norms and 1-D tensors stay F32 for every type */
    for (int t = 0; t < TP_CONV_TYPE_COUNT; t++) {
        CHECK(pick(t, "blk.0.attn_norm.weight", 1, 1024, 0, 28, false, &why) == TP_DTYPE_F32);
        CHECK(why == TP_CONV_KEEP_F32);
        CHECK(pick(t, "output_norm.weight", 1, 1024, -1, 28, false, &why) == TP_DTYPE_F32);
        CHECK(pick(t, "blk.3.attn_q_norm.weight", 1, 128, 3, 28, false, &why) == TP_DTYPE_F32);
    }
    /* plain types */
    CHECK(pick(TP_CONV_F32, "blk.0.attn_q.weight", 2, 64, 0, 2, false, &why) == TP_DTYPE_F32);
    CHECK(pick(TP_CONV_F16, "blk.0.attn_q.weight", 2, 64, 0, 2, false, &why) == TP_DTYPE_F16);
    CHECK(why == TP_CONV_DEFAULT);
    CHECK(pick(TP_CONV_BF16, "token_embd.weight", 2, 48, -1, 2, false, &why) == TP_DTYPE_BF16);
    CHECK(pick(TP_CONV_F16, "blk.0.ffn_down.weight", 2, 13, 0, 2, false, &why) == TP_DTYPE_F16);
    /* Q8_0: every matrix, including embeddings and output; F16 when the row is
     * not a multiple of 32 (convert_hf_to_gguf.py's fallback) */
    CHECK(pick(TP_CONV_Q8_0, "token_embd.weight", 2, 64, -1, 2, false, &why) == TP_DTYPE_Q8_0);
    CHECK(pick(TP_CONV_Q8_0, "output.weight", 2, 64, -1, 2, true, &why) == TP_DTYPE_Q8_0);
    CHECK(pick(TP_CONV_Q8_0, "blk.1.ffn_down.weight", 2, 48, 1, 2, false, &why) == TP_DTYPE_F16);
    CHECK(why == TP_CONV_FALLBACK);
    /* Q4_K / Q6_K pure */
    CHECK(pick(TP_CONV_Q4_K, "output.weight", 2, 1024, -1, 28, true, &why) == TP_DTYPE_Q4_K);
    CHECK(pick(TP_CONV_Q4_K, "blk.0.attn_v.weight", 2, 1024, 0, 28, true, &why) == TP_DTYPE_Q4_K);
    CHECK(pick(TP_CONV_Q6_K, "blk.9.ffn_up.weight", 2, 1024, 9, 28, true, &why) == TP_DTYPE_Q6_K);
    /* K fallbacks: 1152 (Gemma3-1B hidden) = 36 x 32 -> Q8_0; 48 -> Q8_0 ... 40 -> F16 */
    CHECK(pick(TP_CONV_Q4_K, "blk.0.attn_q.weight", 2, 1152, 0, 26, true, &why) == TP_DTYPE_Q8_0);
    CHECK(why == TP_CONV_FALLBACK);
    CHECK(pick(TP_CONV_Q6_K, "blk.0.attn_q.weight", 2, 96, 0, 26, true, &why) == TP_DTYPE_Q8_0);
    CHECK(pick(TP_CONV_Q6_K, "blk.0.attn_q.weight", 2, 40, 0, 26, true, &why) == TP_DTYPE_F16);
    /* Q4_K_M, Qwen3-0.6B shapes (hidden 1024, 28 layers, tied) */
    tp_dtype wanted;
    CHECK(tp_conv_pick_type(TP_CONV_Q4_K_M, "token_embd.weight", 2, 1024, -1, 28, false, &wanted,
                            &why) == TP_DTYPE_Q6_K);
    CHECK(why == TP_CONV_MORE_BITS && wanted == TP_DTYPE_Q6_K);
    /* untied: output Q6_K, token_embd the default Q4_K */
    CHECK(pick(TP_CONV_Q4_K_M, "token_embd.weight", 2, 1024, -1, 28, true, &why) == TP_DTYPE_Q4_K);
    CHECK(pick(TP_CONV_Q4_K_M, "output.weight", 2, 1024, -1, 28, true, &why) == TP_DTYPE_Q6_K);
    for (int i = 0; i < 28; i++) {
        bool more = tp_conv_use_more_bits(i, 28);
        char n1[64], n2[64], n3[64], n4[64];
        snprintf(n1, sizeof n1, "blk.%d.attn_v.weight", i);
        snprintf(n2, sizeof n2, "blk.%d.ffn_down.weight", i);
        snprintf(n3, sizeof n3, "blk.%d.attn_k.weight", i);
        snprintf(n4, sizeof n4, "blk.%d.ffn_gate.weight", i);
        CHECK(pick(TP_CONV_Q4_K_M, n1, 2, 1024, i, 28, false, &why) ==
              (more ? TP_DTYPE_Q6_K : TP_DTYPE_Q4_K));
        CHECK(pick(TP_CONV_Q4_K_M, n2, 2, 3072, i, 28, false, &why) ==
              (more ? TP_DTYPE_Q6_K : TP_DTYPE_Q4_K));
        CHECK(pick(TP_CONV_Q4_K_M, n3, 2, 1024, i, 28, false, &why) == TP_DTYPE_Q4_K);
        CHECK(pick(TP_CONV_Q4_K_M, n4, 2, 1024, i, 28, false, &why) == TP_DTYPE_Q4_K);
    }
    /* Q4_K_M output with rows not a multiple of 256: Q8_0 (llama.cpp's rule, no fallback) */
    CHECK(pick(TP_CONV_Q4_K_M, "output.weight", 2, 1152, -1, 26, true, &why) == TP_DTYPE_Q8_0);
    CHECK(why == TP_CONV_MORE_BITS);
    /* Gemma3-1B: ffn_down rows 6912 = 27 x 256 keep Q6_K; attn_v rows 1152 fall back */
    CHECK(pick(TP_CONV_Q4_K_M, "blk.0.ffn_down.weight", 2, 6912, 0, 26, false, &why) ==
          TP_DTYPE_Q6_K);
    CHECK(tp_conv_pick_type(TP_CONV_Q4_K_M, "blk.0.attn_v.weight", 2, 1152, 0, 26, false, &wanted,
                            &why) == TP_DTYPE_Q8_0);
    CHECK(why == TP_CONV_FALLBACK && wanted == TP_DTYPE_Q6_K);

    /* names and file types */
    tp_conv_type t;
    CHECK(tp_conv_type_parse("q4_k_m", &t) && t == TP_CONV_Q4_K_M);
    CHECK(tp_conv_type_parse("Q4_K_M", &t) && t == TP_CONV_Q4_K_M);
    CHECK(tp_conv_type_parse("bf16", &t) && t == TP_CONV_BF16);
    CHECK(!tp_conv_type_parse("q4_0", &t) && !tp_conv_type_parse("", &t) &&
          !tp_conv_type_parse(NULL, &t));
    /* llama_ftype numbers (llama.h) */
    CHECK_EQ_INT(tp_conv_file_type(TP_CONV_F32), 0);
    CHECK_EQ_INT(tp_conv_file_type(TP_CONV_F16), 1);
    CHECK_EQ_INT(tp_conv_file_type(TP_CONV_Q8_0), 7);
    CHECK_EQ_INT(tp_conv_file_type(TP_CONV_Q4_K_M), 15);
    CHECK_EQ_INT(tp_conv_file_type(TP_CONV_Q6_K), 18);
    CHECK_EQ_INT(tp_conv_file_type(TP_CONV_BF16), 32);
    CHECK_STR(tp_conv_type_name(TP_CONV_Q4_K_M), "q4_k_m");
    return tp_test_exit();
}
