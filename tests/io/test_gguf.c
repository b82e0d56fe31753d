/*
 * test_gguf.c — GGUF writer and reader (src/io/gguf*.c):
 *   - the writer's bytes equal a file assembled by hand from the GGUF spec
 *     (gguf_test_util.h), and the reader reads that hand-made file;
 *   - writer -> reader round trip of every metadata type (arrays of strings,
 *     bools, ...), tensors of every dtype, default and custom alignment, to a
 *     file and to memory, streamed with a fill callback;
 *   - the name table: llama.cpp's names for Qwen3 and Gemma3 (written out here
 *     from gguf-py's constants.py / tensor_mapping.py), both directions, every
 *     row round-trips, multimodal prefixes and skipped tensors;
 *   - config.json -> GGUF metadata for the golden decoder configs.
 */
#include "io/gguf.h"
#include "io_test_util.h"
#include "gguf_test_util.h"

#include <math.h>

/* ---- writer bytes == spec bytes ---- */

static void test_writer_bytes(void) {
    tp_error err;
    tp_gguf_writer *w = tp_gguf_writer_new();
    CHECK(w != NULL);
    CHECK(tp_gguf_set_str(w, "general.architecture", "qwen3", &err) == TP_OK);
    const float a[2] = {1.0f, 2.0f};
    const int64_t ne[1] = {2};
    CHECK(tp_gguf_add_tensor(w, "a", TP_DTYPE_F32, 1, ne, a, &err) == TP_OK);
    uint8_t *out = NULL;
    size_t n = 0;
    CHECK(tp_gguf_write_memory(w, NULL, NULL, &out, &n, &err) == TP_OK);
    tp_gguf_writer_free(w);

    gb b = {0};
    gb_header(&b, 3, 1, 1);
    gb_kv_str(&b, "general.architecture", "qwen3");
    const uint64_t dims[1] = {2};
    gb_tinfo(&b, "a", 1, dims, 0, 0);
    CHECK_EQ_INT(b.n, 102); /* 24 + 45 + 33, by hand */
    gb_pad(&b, 32);
    gb_f32(&b, 1.0f);
    gb_f32(&b, 2.0f);
    CHECK_EQ_INT(b.n, 136);
    CHECK_EQ_INT(n, b.n);
    CHECK(n == b.n && memcmp(out, b.p, n) == 0);

    /* The reader on the hand-made bytes. */
    tp_gguf *g = NULL;
    CHECK(tp_gguf_open_memory(b.p, b.n, "hand.gguf", &g, &err) == TP_OK);
    if (g) {
        CHECK_EQ_INT(tp_gguf_version(g), 3);
        CHECK_EQ_INT(tp_gguf_alignment(g), 32);
        CHECK_EQ_INT(tp_gguf_data_offset(g), 128);
        const char *s = NULL;
        CHECK(tp_gguf_get_str(g, "general.architecture", NULL, &s, &err) == TP_OK);
        CHECK(s && !strcmp(s, "qwen3"));
        const tp_gguf_tensor *t = tp_gguf_find_tensor(g, "a");
        CHECK(t && t->dtype == TP_DTYPE_F32 && t->n_dims == 1 && t->ne[0] == 2 && t->n_bytes == 8 &&
              t->data == b.p + 128);
        /* Wrong-type getter: names file and key. */
        int64_t v;
        CHECK(tp_gguf_get_int(g, "general.architecture", 0, &v, &err) == TP_ERR_FORMAT);
        CHECK(io_contains(err.message, "hand.gguf") &&
              io_contains(err.message, "general.architecture"));
        CHECK(tp_gguf_req_int(g, "qwen3.block_count", &v, &err) == TP_ERR_NOT_FOUND);
        CHECK(io_contains(err.message, "qwen3.block_count"));
        tp_gguf_close(g);
    }
    /* Version 2 has the same layout. */
    b.p[4] = 2;
    CHECK(tp_gguf_open_memory(b.p, b.n, "v2.gguf", &g, &err) == TP_OK);
    if (g) {
        CHECK_EQ_INT(tp_gguf_version(g), 2);
        tp_gguf_close(g);
    }
    free(b.p);
    tp_free(out);
}

/* ---- round trip ---- */

typedef struct fill_ctx {
    int calls;
} fill_ctx;

/* Tensor 1 ("f") is produced by the callback: element (row r, col c) = r * 1000 + c. */
static tp_status fill_rows(void *user, size_t index, int64_t row0, int64_t n_rows, void *dst,
                           tp_error *err) {
    (void)err;
    fill_ctx *c = user;
    c->calls++;
    if (index != 1)
        return tp_fail(err, TP_ERR_INTERNAL, "unexpected tensor %zu", index);
    float *d = dst;
    for (int64_t r = 0; r < n_rows; r++)
        for (int64_t k = 0; k < 300; k++)
            d[r * 300 + k] = (float)((row0 + r) * 1000 + k);
    return TP_OK;
}

static void test_round_trip(const char *dir) {
    tp_error err;
    tp_gguf_writer *w = tp_gguf_writer_new();
    CHECK(tp_gguf_set_u32(w, "general.alignment", 64, &err) == TP_OK);
    CHECK(tp_gguf_set_str(w, "general.architecture", "gemma3", &err) == TP_OK);
    CHECK(tp_gguf_set_u32(w, "k.u32", 4000000000u, &err) == TP_OK);
    CHECK(tp_gguf_set_i32(w, "k.i32", -7, &err) == TP_OK);
    CHECK(tp_gguf_set_u64(w, "k.u64", 1ull << 40, &err) == TP_OK);
    CHECK(tp_gguf_set_f32(w, "k.f32", 1e-6f, &err) == TP_OK);
    CHECK(tp_gguf_set_f64(w, "k.f64", 0.1, &err) == TP_OK);
    CHECK(tp_gguf_set_bool(w, "k.bool", true, &err) == TP_OK);
    CHECK(tp_gguf_set_strn(w, "k.str_nul", "a\0b", 3, &err) == TP_OK);
    int16_t i16 = -300;
    CHECK(tp_gguf_set_scalar(w, "k.i16", TP_GGUF_INT16, &i16, &err) == TP_OK);
    const int32_t ints[3] = {1, -2, 3};
    CHECK(tp_gguf_set_arr(w, "k.arr_i32", TP_GGUF_INT32, ints, 3, &err) == TP_OK);
    const uint8_t bools[4] = {1, 0, 1, 1};
    CHECK(tp_gguf_set_arr(w, "k.arr_bool", TP_GGUF_BOOL, bools, 4, &err) == TP_OK);
    const float fl[2] = {0.5f, -1.25f};
    CHECK(tp_gguf_set_arr(w, "k.arr_f32", TP_GGUF_FLOAT32, fl, 2, &err) == TP_OK);
    const char *strs[4] = {"<unk>", "", "h\xc3\xa9llo", "\xe2\x96\x81the"};
    CHECK(tp_gguf_set_arr_str(w, "k.arr_str", strs, NULL, 4, &err) == TP_OK);
    CHECK(tp_gguf_set_arr_str(w, "k.arr_empty", NULL, NULL, 0, &err) == TP_OK);
    /* errors */
    CHECK(tp_gguf_set_u32(w, "k.u32", 1, &err) == TP_ERR_INVALID_ARGUMENT);
    CHECK(io_contains(err.message, "k.u32"));
    CHECK(tp_gguf_set_u32(w, "", 1, &err) == TP_ERR_INVALID_ARGUMENT);

    /* tensors: plain dtypes and quantized rows (bytes are opaque to the writer) */
    float t0[6] = {1, 2, 3, 4, 5, 6};
    const int64_t ne0[2] = {3, 2};
    CHECK(tp_gguf_add_tensor(w, "t.f32", TP_DTYPE_F32, 2, ne0, t0, &err) == TP_OK);
    const int64_t nef[2] = {300, 1000}; /* 1.2 MB: more than one fill chunk */
    CHECK(tp_gguf_add_tensor(w, "t.fill", TP_DTYPE_F32, 2, nef, NULL, &err) == TP_OK);
    uint16_t h[5] = {0x3c00, 0x4000, 0xbc00, 0, 0x7bff};
    const int64_t ne5[1] = {5};
    CHECK(tp_gguf_add_tensor(w, "t.f16", TP_DTYPE_F16, 1, ne5, h, &err) == TP_OK);
    CHECK(tp_gguf_add_tensor(w, "t.bf16", TP_DTYPE_BF16, 1, ne5, h, &err) == TP_OK);
    uint8_t q8[2 * 34], q4[144], q6[210];
    for (size_t i = 0; i < sizeof q8; i++)
        q8[i] = (uint8_t)(i * 7);
    for (size_t i = 0; i < sizeof q4; i++)
        q4[i] = (uint8_t)(i * 3);
    for (size_t i = 0; i < sizeof q6; i++)
        q6[i] = (uint8_t)(i * 5);
    const int64_t neq8[2] = {32, 2}, nek[1] = {256};
    CHECK(tp_gguf_add_tensor(w, "t.q8", TP_DTYPE_Q8_0, 2, neq8, q8, &err) == TP_OK);
    CHECK(tp_gguf_add_tensor(w, "t.q4k", TP_DTYPE_Q4_K, 1, nek, q4, &err) == TP_OK);
    CHECK(tp_gguf_add_tensor(w, "t.q6k", TP_DTYPE_Q6_K, 1, nek, q6, &err) == TP_OK);
    const int64_t ne4[4] = {1, 2, 3, 4};
    float t4[24];
    for (int i = 0; i < 24; i++)
        t4[i] = (float)i;
    CHECK(tp_gguf_add_tensor(w, "t.4d", TP_DTYPE_F32, 4, ne4, t4, &err) == TP_OK);
    /* tensor errors */
    CHECK(tp_gguf_add_tensor(w, "t.f32", TP_DTYPE_F32, 2, ne0, t0, &err) ==
          TP_ERR_INVALID_ARGUMENT);
    const int64_t bad_q[1] = {33};
    CHECK(tp_gguf_add_tensor(w, "t.badq", TP_DTYPE_Q8_0, 1, bad_q, q8, &err) ==
          TP_ERR_INVALID_ARGUMENT);
    CHECK(io_contains(err.message, "t.badq"));
    const int64_t zero[1] = {0};
    CHECK(tp_gguf_add_tensor(w, "t.zero", TP_DTYPE_F32, 1, zero, t0, &err) ==
          TP_ERR_INVALID_ARGUMENT);
    const int64_t five[5] = {1, 1, 1, 1, 1};
    CHECK(tp_gguf_add_tensor(w, "t.5d", TP_DTYPE_F32, 5, five, t0, &err) ==
          TP_ERR_INVALID_ARGUMENT);
    CHECK(tp_gguf_add_tensor(w, "t.i32", TP_DTYPE_I32, 1, ne5, t0, &err) ==
          TP_ERR_INVALID_ARGUMENT);

    char *path = io_join(dir, "rt.gguf");
    fill_ctx fc = {0};
    CHECK(tp_gguf_write(w, path, fill_rows, &fc, &err) == TP_OK);
    CHECK(fc.calls >= 2); /* streamed in chunks */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(!tp_file_exists(tmp));
    /* Without a fill callback the NULL-data tensor cannot be written. */
    uint8_t *mem = NULL;
    size_t mn = 0;
    CHECK(tp_gguf_write_memory(w, NULL, NULL, &mem, &mn, &err) == TP_ERR_INVALID_ARGUMENT);
    CHECK(io_contains(err.message, "t.fill"));
    tp_gguf_writer_free(w);

    tp_gguf *g = NULL;
    CHECK(tp_gguf_open(path, &g, &err) == TP_OK);
    if (!g) {
        fprintf(stderr, "%s\n", err.message);
        return;
    }
    CHECK_EQ_INT(tp_gguf_alignment(g), 64);
    CHECK_EQ_INT(tp_gguf_data_offset(g) % 64, 0);
    CHECK_EQ_INT(tp_gguf_kv_count(g), 15);
    CHECK(!strcmp(tp_gguf_kv_at(g, 0)->key, "general.alignment")); /* file order kept */
    int64_t iv;
    double dv;
    bool bv;
    const char *sv;
    CHECK(tp_gguf_get_int(g, "k.u32", 0, &iv, &err) == TP_OK && iv == 4000000000ll);
    CHECK(tp_gguf_get_int(g, "k.i32", 0, &iv, &err) == TP_OK && iv == -7);
    CHECK(tp_gguf_get_int(g, "k.u64", 0, &iv, &err) == TP_OK && iv == (1ll << 40));
    CHECK(tp_gguf_get_int(g, "k.i16", 0, &iv, &err) == TP_OK && iv == -300);
    CHECK(tp_gguf_get_float(g, "k.f32", 0, &dv, &err) == TP_OK && dv == (double)1e-6f);
    CHECK(tp_gguf_get_float(g, "k.f64", 0, &dv, &err) == TP_OK && dv == 0.1);
    CHECK(tp_gguf_get_bool(g, "k.bool", false, &bv, &err) == TP_OK && bv);
    CHECK(tp_gguf_get_int(g, "absent", 42, &iv, &err) == TP_OK && iv == 42);
    CHECK(tp_gguf_get_str(g, "k.str_nul", NULL, &sv, &err) == TP_OK);
    const tp_gguf_kv *kv = tp_gguf_find_kv(g, "k.str_nul");
    CHECK(kv && kv->str_len == 3 && !memcmp(kv->str, "a\0b", 3));
    const tp_gguf_kv *arr = NULL;
    CHECK(tp_gguf_get_arr(g, "k.arr_i32", TP_GGUF_INT32, &arr, &err) == TP_OK && arr);
    CHECK(arr && arr->n == 3 && tp_gguf_arr_int(arr, 1) == -2 && tp_gguf_arr_int(arr, 2) == 3);
    CHECK(tp_gguf_get_arr(g, "k.arr_i32", TP_GGUF_STRING, &arr, &err) == TP_ERR_FORMAT);
    CHECK(io_contains(err.message, "k.arr_i32") && io_contains(err.message, "rt.gguf"));
    CHECK(tp_gguf_get_arr(g, "k.arr_bool", TP_GGUF_BOOL, &arr, &err) == TP_OK && arr &&
          arr->n == 4 && tp_gguf_arr_int(arr, 0) == 1 && tp_gguf_arr_int(arr, 1) == 0);
    CHECK(tp_gguf_get_arr(g, "k.arr_f32", TP_GGUF_FLOAT32, &arr, &err) == TP_OK && arr &&
          tp_gguf_arr_float(arr, 1) == -1.25);
    CHECK(tp_gguf_get_arr(g, "k.arr_str", TP_GGUF_STRING, &arr, &err) == TP_OK && arr);
    for (int i = 0; arr && i < 4; i++) {
        size_t l;
        const char *s = tp_gguf_arr_str(arr, (uint64_t)i, &l);
        CHECK(l == strlen(strs[i]) && !memcmp(s, strs[i], l));
    }
    CHECK(tp_gguf_get_arr(g, "k.arr_empty", TP_GGUF_STRING, &arr, &err) == TP_OK && arr &&
          arr->n == 0);

    CHECK_EQ_INT(tp_gguf_tensor_count(g), 8);
    const tp_gguf_tensor *t = tp_gguf_find_tensor(g, "t.f32");
    CHECK(t && t->n_dims == 2 && t->ne[0] == 3 && t->ne[1] == 2 && t->n_elems == 6 &&
          !memcmp(t->data, t0, sizeof t0));
    t = tp_gguf_find_tensor(g, "t.fill");
    if (t) {
        const float *f = t->data;
        CHECK(f[0] == 0.0f && f[299] == 299.0f && f[300] == 1000.0f &&
              f[999 * 300 + 17] == 999017.0f);
    }
    for (size_t i = 0; i < tp_gguf_tensor_count(g); i++)
        CHECK_EQ_INT(tp_gguf_tensor_at(g, i)->offset % 64, 0);
    t = tp_gguf_find_tensor(g, "t.f16");
    CHECK(t && t->dtype == TP_DTYPE_F16 && t->ggml_type == TP_GGML_F16 && !memcmp(t->data, h, 10));
    t = tp_gguf_find_tensor(g, "t.bf16");
    CHECK(t && t->dtype == TP_DTYPE_BF16 && t->ggml_type == TP_GGML_BF16);
    t = tp_gguf_find_tensor(g, "t.q8");
    CHECK(t && t->dtype == TP_DTYPE_Q8_0 && t->ggml_type == 8 && t->n_bytes == 68 &&
          !memcmp(t->data, q8, 68));
    t = tp_gguf_find_tensor(g, "t.q4k");
    CHECK(t && t->dtype == TP_DTYPE_Q4_K && t->ggml_type == 12 && t->n_bytes == 144 &&
          !memcmp(t->data, q4, 144));
    t = tp_gguf_find_tensor(g, "t.q6k");
    CHECK(t && t->dtype == TP_DTYPE_Q6_K && t->ggml_type == 14 && t->n_bytes == 210 &&
          !memcmp(t->data, q6, 210));
    t = tp_gguf_find_tensor(g, "t.4d");
    CHECK(t && t->n_dims == 4 && t->ne[3] == 4 && t->n_elems == 24 &&
          ((const float *)t->data)[23] == 23.0f);
    CHECK(tp_gguf_find_tensor(g, "t.zero") == NULL);
    tp_gguf_close(g);
}

/* ---- names ---- */

static void check_map(tp_gguf_arch a, const char *hf, const char *gguf, bool norm) {
    char out[256];
    bool nm = !norm;
    CHECK_MSG(tp_gguf_name_to_gguf(a, hf, out, sizeof out, &nm) == TP_GGUF_MAP_OK &&
                  !strcmp(out, gguf) && nm == norm,
              "%s -> %s (want %s)", hf, out, gguf);
    nm = !norm;
    CHECK_MSG(tp_gguf_name_to_hf(a, gguf, out, sizeof out, &nm) == TP_GGUF_MAP_OK &&
                  !strcmp(out, hf) && nm == norm,
              "%s -> %s (want %s)", gguf, out, hf);
}

static void test_names(void) {
    const tp_gguf_arch Q = TP_GGUF_ARCH_QWEN3, G = TP_GGUF_ARCH_GEMMA3;
    /* llama.cpp names (gguf-py constants.py TENSOR_NAMES for MODEL_ARCH.QWEN3). */
    check_map(Q, "model.embed_tokens.weight", "token_embd.weight", false);
    check_map(Q, "model.norm.weight", "output_norm.weight", true);
    check_map(Q, "lm_head.weight", "output.weight", false);
    check_map(Q, "model.layers.0.input_layernorm.weight", "blk.0.attn_norm.weight", true);
    check_map(Q, "model.layers.27.self_attn.q_proj.weight", "blk.27.attn_q.weight", false);
    check_map(Q, "model.layers.3.self_attn.k_proj.weight", "blk.3.attn_k.weight", false);
    check_map(Q, "model.layers.3.self_attn.v_proj.weight", "blk.3.attn_v.weight", false);
    check_map(Q, "model.layers.3.self_attn.o_proj.weight", "blk.3.attn_output.weight", false);
    check_map(Q, "model.layers.10.self_attn.q_norm.weight", "blk.10.attn_q_norm.weight", true);
    check_map(Q, "model.layers.10.self_attn.k_norm.weight", "blk.10.attn_k_norm.weight", true);
    check_map(Q, "model.layers.1.post_attention_layernorm.weight", "blk.1.ffn_norm.weight", true);
    check_map(Q, "model.layers.1.mlp.gate_proj.weight", "blk.1.ffn_gate.weight", false);
    check_map(Q, "model.layers.1.mlp.up_proj.weight", "blk.1.ffn_up.weight", false);
    check_map(Q, "model.layers.1.mlp.down_proj.weight", "blk.1.ffn_down.weight", false);
    check_map(Q, "model.layers.2.self_attn.q_proj.bias", "blk.2.attn_q.bias", false);
    /* Gemma3: the sandwich norms. */
    check_map(G, "model.layers.5.post_attention_layernorm.weight",
              "blk.5.post_attention_norm.weight", true);
    check_map(G, "model.layers.5.pre_feedforward_layernorm.weight", "blk.5.ffn_norm.weight", true);
    check_map(G, "model.layers.5.post_feedforward_layernorm.weight", "blk.5.post_ffw_norm.weight",
              true);
    check_map(G, "model.layers.5.self_attn.q_norm.weight", "blk.5.attn_q_norm.weight", true);
    check_map(G, "model.embed_tokens.weight", "token_embd.weight", false);
    /* Qwen3 has no pre_feedforward_layernorm; Gemma3 no o_proj bias. */
    char out[256];
    CHECK(tp_gguf_name_to_gguf(Q, "model.layers.0.pre_feedforward_layernorm.weight", out,
                               sizeof out, NULL) == TP_GGUF_MAP_UNKNOWN);
    CHECK(tp_gguf_name_to_hf(Q, "blk.0.post_ffw_norm.weight", out, sizeof out, NULL) ==
          TP_GGUF_MAP_UNKNOWN);
    CHECK(tp_gguf_name_to_gguf(G, "model.layers.0.self_attn.o_proj.bias", out, sizeof out, NULL) ==
          TP_GGUF_MAP_UNKNOWN);
    /* multimodal Gemma3 prefixes, skipped tensors, junk */
    CHECK(tp_gguf_name_to_gguf(G, "language_model.model.layers.2.mlp.up_proj.weight", out,
                               sizeof out, NULL) == TP_GGUF_MAP_OK &&
          !strcmp(out, "blk.2.ffn_up.weight"));
    CHECK(tp_gguf_name_to_gguf(G, "model.language_model.embed_tokens.weight", out, sizeof out,
                               NULL) == TP_GGUF_MAP_OK &&
          !strcmp(out, "token_embd.weight"));
    CHECK(tp_gguf_name_to_gguf(G, "language_model.lm_head.weight", out, sizeof out, NULL) ==
              TP_GGUF_MAP_OK &&
          !strcmp(out, "output.weight"));
    CHECK(tp_gguf_name_to_gguf(G, "vision_tower.vision_model.embeddings.patch_embedding.weight",
                               out, sizeof out, NULL) == TP_GGUF_MAP_SKIP);
    CHECK(tp_gguf_name_to_gguf(G, "multi_modal_projector.mm_input_projection_weight", out,
                               sizeof out, NULL) == TP_GGUF_MAP_SKIP);
    CHECK(tp_gguf_name_to_gguf(Q, "model.layers.0.self_attn.rotary_emb.inv_freq", out, sizeof out,
                               NULL) == TP_GGUF_MAP_SKIP);
    CHECK(tp_gguf_name_to_hf(Q, "blk.01.attn_q.weight", out, sizeof out, NULL) ==
          TP_GGUF_MAP_UNKNOWN);
    CHECK(tp_gguf_name_to_hf(Q, "blk.x.attn_q.weight", out, sizeof out, NULL) ==
          TP_GGUF_MAP_UNKNOWN);
    CHECK(tp_gguf_name_to_hf(Q, "blk.1.attn_q.weight.extra", out, sizeof out, NULL) ==
          TP_GGUF_MAP_UNKNOWN);
    CHECK(tp_gguf_name_to_hf(TP_GGUF_ARCH_UNKNOWN, "token_embd.weight", out, sizeof out, NULL) ==
          TP_GGUF_MAP_UNKNOWN);
    char tiny[8];
    CHECK(tp_gguf_name_to_hf(Q, "blk.1.attn_q.weight", tiny, sizeof tiny, NULL) ==
          TP_GGUF_MAP_UNKNOWN);
    /* Every row round-trips for every architecture that uses it. */
    for (size_t i = 0; i < tp_gguf_names_count; i++) {
        for (int a = 1; a <= 2; a++) {
            if (!(tp_gguf_names[i].archs & (1u << a)))
                continue;
            char hf[256], gg[256], back[256];
            const char *pd = strstr(tp_gguf_names[i].hf, "%d");
            if (pd)
                snprintf(hf, sizeof hf, "%.*s12%s", (int)(pd - tp_gguf_names[i].hf),
                         tp_gguf_names[i].hf, pd + 2);
            else
                snprintf(hf, sizeof hf, "%s", tp_gguf_names[i].hf);
            CHECK(tp_gguf_name_to_gguf((tp_gguf_arch)a, hf, gg, sizeof gg, NULL) == TP_GGUF_MAP_OK);
            CHECK(tp_gguf_name_to_hf((tp_gguf_arch)a, gg, back, sizeof back, NULL) ==
                      TP_GGUF_MAP_OK &&
                  !strcmp(back, hf));
        }
    }
    CHECK(tp_gguf_arch_from_name("qwen3") == Q && tp_gguf_arch_from_name("gemma3") == G &&
          tp_gguf_arch_from_name("llama") == TP_GGUF_ARCH_UNKNOWN);
    CHECK(tp_gguf_norm_shift(G) == 1.0f && tp_gguf_norm_shift(Q) == 0.0f);
    CHECK(!strcmp(tp_gguf_ggml_type_name(12), "Q4_K") &&
          !strcmp(tp_gguf_ggml_type_name(16), "IQ2_XXS"));
}

/* ---- config.json -> metadata ---- */

static tp_gguf *hparams_file(const char *case_name, uint8_t **mem, tp_error *err) {
    char rel[256];
    snprintf(rel, sizeof rel, "golden/%s/config.json", case_name);
    tp_json_doc doc = {0};
    if (tp_json_load(tp_test_data(rel), &doc, err) != TP_OK)
        return NULL;
    tp_gguf_writer *w = tp_gguf_writer_new();
    tp_status st = tp_gguf_hparams_to_gguf(&doc, w, err);
    size_t n = 0;
    if (st == TP_OK)
        st = tp_gguf_write_memory(w, NULL, NULL, mem, &n, err);
    tp_gguf_writer_free(w);
    tp_json_free(&doc);
    tp_gguf *g = NULL;
    if (st == TP_OK)
        st = tp_gguf_open_memory(*mem, n, case_name, &g, err);
    return st == TP_OK ? g : NULL;
}

static void expect_int(tp_gguf *g, const char *key, int64_t want) {
    int64_t v = -12345;
    tp_error err;
    CHECK_MSG(tp_gguf_req_int(g, key, &v, &err) == TP_OK && v == want, "%s = %lld, want %lld", key,
              (long long)v, (long long)want);
}

static void expect_f32(tp_gguf *g, const char *key, float want) {
    const tp_gguf_kv *kv = tp_gguf_find_kv(g, key);
    float v = -1;
    if (kv && kv->type == TP_GGUF_FLOAT32)
        memcpy(&v, kv->data, 4);
    CHECK_MSG(kv && kv->type == TP_GGUF_FLOAT32 && v == want, "%s = %g, want %g", key, v, want);
}

static void test_hparams(void) {
    tp_error err;
    uint8_t *mem = NULL;
    tp_gguf *g = hparams_file("qwen3_tied", &mem, &err);
    CHECK_MSG(g != NULL, "%s", err.message);
    if (g) {
        const char *a;
        CHECK(tp_gguf_req_str(g, "general.architecture", &a, &err) == TP_OK && !strcmp(a, "qwen3"));
        expect_int(g, "qwen3.context_length", 40960);
        expect_int(g, "qwen3.embedding_length", 64);
        expect_int(g, "qwen3.block_count", 3);
        expect_int(g, "qwen3.feed_forward_length", 128);
        expect_int(g, "qwen3.attention.head_count", 4);
        expect_int(g, "qwen3.attention.head_count_kv", 2);
        expect_int(g, "qwen3.attention.key_length", 32);
        expect_int(g, "qwen3.attention.value_length", 32);
        expect_f32(g, "qwen3.attention.layer_norm_rms_epsilon", 1e-6f);
        expect_f32(g, "qwen3.rope.freq_base", 1e6f);
        CHECK(!tp_gguf_find_kv(g, "qwen3.attention.sliding_window_pattern"));
        CHECK(!tp_gguf_find_kv(g, "qwen3.rope.scaling.type"));
        const tp_gguf_kv *e = NULL;
        CHECK(tp_gguf_get_arr(g, "tpipe.eos_token_ids", TP_GGUF_UINT32, &e, &err) == TP_OK && e &&
              e->n == 1 && tp_gguf_arr_int(e, 0) == 106);
        tp_gguf_close(g);
    }
    tp_free(mem);
    mem = NULL;
    g = hparams_file("gemma3_pattern_linear_rope", &mem, &err);
    CHECK_MSG(g != NULL, "%s", err.message);
    if (g) {
        expect_int(g, "gemma3.attention.sliding_window", 8);
        expect_f32(g, "gemma3.rope.freq_base", 1e6f);
        expect_f32(g, "gemma3.rope.freq_base_swa", 1e4f);
        expect_f32(g, "gemma3.rope.scaling.factor", 8.0f);
        const char *s;
        CHECK(tp_gguf_req_str(g, "gemma3.rope.scaling.type", &s, &err) == TP_OK &&
              !strcmp(s, "linear"));
        expect_f32(g, "gemma3.attention.scale", (float)pow(32.0, -0.5));
        CHECK(!tp_gguf_find_kv(g, "gemma3.final_logit_softcapping"));
        const tp_gguf_kv *p = NULL;
        CHECK(tp_gguf_get_arr(g, "gemma3.attention.sliding_window_pattern", TP_GGUF_BOOL, &p,
                              &err) == TP_OK &&
              p && p->n == 4);
        /* sliding_window_pattern 2: layers 1 and 3 global */
        if (p && p->n == 4)
            CHECK(tp_gguf_arr_int(p, 0) == 1 && tp_gguf_arr_int(p, 1) == 0 &&
                  tp_gguf_arr_int(p, 2) == 1 && tp_gguf_arr_int(p, 3) == 0);
        const tp_gguf_kv *e = NULL;
        CHECK(tp_gguf_get_arr(g, "tpipe.eos_token_ids", TP_GGUF_UINT32, &e, &err) == TP_OK && e &&
              e->n == 3 && tp_gguf_arr_int(e, 2) == 489);
        tp_gguf_close(g);
    }
    tp_free(mem);
    mem = NULL;
    g = hparams_file("gemma3_layer_types_softcap", &mem, &err);
    CHECK_MSG(g != NULL, "%s", err.message);
    if (g) {
        expect_f32(g, "gemma3.final_logit_softcapping", 10.0f);
        expect_f32(g, "gemma3.attention.scale", (float)pow(20.0, -0.5));
        expect_int(g, "gemma3.attention.key_length", 24);
        const tp_gguf_kv *p = NULL;
        CHECK(tp_gguf_get_arr(g, "gemma3.attention.sliding_window_pattern", TP_GGUF_BOOL, &p,
                              &err) == TP_OK &&
              p && p->n == 3 && tp_gguf_arr_int(p, 0) == 1 && tp_gguf_arr_int(p, 1) == 0 &&
              tp_gguf_arr_int(p, 2) == 1);
        tp_gguf_close(g);
    }
    tp_free(mem);
    /* Unsupported: a ModernBERT config, a yarn rope_scaling. */
    tp_json_doc doc = {0};
    const char *mb = "{\"model_type\": \"modernbert\"}";
    CHECK(tp_json_parse(mb, strlen(mb), "mb/config.json", &doc, &err) == TP_OK);
    tp_gguf_writer *w = tp_gguf_writer_new();
    CHECK(tp_gguf_hparams_to_gguf(&doc, w, &err) == TP_ERR_UNSUPPORTED);
    CHECK(io_contains(err.message, "mb/config.json"));
    tp_gguf_writer_free(w);
    tp_json_free(&doc);
    const char *yarn = "{\"model_type\": \"qwen3\", \"num_hidden_layers\": 2, "
                       "\"num_attention_heads\": 2, \"hidden_size\": 8, \"intermediate_size\": 16, "
                       "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0}}";
    CHECK(tp_json_parse(yarn, strlen(yarn), "y/config.json", &doc, &err) == TP_OK);
    w = tp_gguf_writer_new();
    CHECK(tp_gguf_hparams_to_gguf(&doc, w, &err) == TP_ERR_UNSUPPORTED);
    CHECK(io_contains(err.message, "yarn"));
    tp_gguf_writer_free(w);
    tp_json_free(&doc);
}

int main(void) {
    const char *dir = io_tmpdir();
    test_writer_bytes();
    test_round_trip(dir);
    test_names();
    test_hparams();
    io_rmtree(dir);
    return tp_test_exit();
}
