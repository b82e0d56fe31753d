/*
 * test_gguf_npm.c — checks tpipe's GGUF writer against an independent reader,
 * the npm package @huggingface/gguf (Hugging Face's own GGUF parser).
 *
 * Writes a file with every metadata type (arrays of strings, bools, floats,
 * 64-bit integers), tensors of every supported dtype and a custom alignment,
 * plus an expectation (JSON) written from the same input values and the GGUF
 * layout rule (offsets back to back, each rounded up to the alignment). Then
 * gguf_npm_check.mjs reads the file with @huggingface/gguf and compares.
 * Then the other direction: gguf_npm_edit.mjs rewrites that file's header with
 * the package's own serializer (buildGgufHeader: metadata changed and added,
 * its alignment padding), and tpipe's reader must read the keys and the
 * untouched tensors. The package is installed once into <build>/npm-gguf
 * (pinned version). Without
 * node, npm, or network for the first install: prints SKIP and passes.
 * usage: test_gguf_npm <path of gguf_npm_check.mjs>
 */
#include "io/gguf.h"
#include "io_test_util.h"

#include <cjson/cJSON.h>

#define NPM_PKG "@huggingface/gguf@0.4.6"

static int sh(const char *cmd) {
    int r = system(cmd);
    return r == -1 ? -1 : WEXITSTATUS(r);
}

static size_t align_up(size_t n, size_t a) {
    return (n + a - 1) / a * a;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_gguf_npm <gguf_npm_check.mjs>\n");
        return 2;
    }
    if (sh("node --version > /dev/null 2>&1") != 0 || sh("npm --version > /dev/null 2>&1") != 0) {
        printf("SKIP: node or npm not found (needed for the @huggingface/gguf cross-check)\n");
        return 0;
    }
    const char *build = getenv("TPIPE_BUILD");
    char cache[1024], cmd[16384];
    snprintf(cache, sizeof cache, "%s/npm-gguf", build && *build ? build : ".");
    char marker[4200];
    snprintf(marker, sizeof marker, "%s/node_modules/@huggingface/gguf/package.json", cache);
    if (!tp_file_exists(marker)) {
        snprintf(cmd, sizeof cmd,
                 "mkdir -p '%s' && timeout 180 npm install --no-audit --no-fund --no-save "
                 "--prefix '%s' " NPM_PKG " > '%s/install.log' 2>&1",
                 cache, cache, cache);
        if (sh(cmd) != 0 || !tp_file_exists(marker)) {
            printf("SKIP: could not install " NPM_PKG " into %s (no network?); see "
                   "%s/install.log\n",
                   cache, cache);
            return 0;
        }
    }

    const char *dir = io_tmpdir();
    tp_error err;
    tp_gguf_writer *w = tp_gguf_writer_new();
    cJSON *exp = cJSON_CreateObject(), *kvs = cJSON_AddArrayToObject(exp, "kv");
    cJSON_AddNumberToObject(exp, "version", 3);
#define KV(key_, type_, value_)                                                                    \
    do {                                                                                           \
        cJSON *o = cJSON_CreateObject();                                                           \
        cJSON_AddStringToObject(o, "key", key_);                                                   \
        cJSON_AddNumberToObject(o, "type", type_);                                                 \
        cJSON_AddItemToObject(o, "value", value_);                                                 \
        cJSON_AddItemToArray(kvs, o);                                                              \
    } while (0)
    CHECK(tp_gguf_set_u32(w, "general.alignment", 64, &err) == TP_OK);
    KV("general.alignment", TP_GGUF_UINT32, cJSON_CreateNumber(64));
    CHECK(tp_gguf_set_str(w, "general.architecture", "qwen3", &err) == TP_OK);
    KV("general.architecture", TP_GGUF_STRING, cJSON_CreateString("qwen3"));
    CHECK(tp_gguf_set_u32(w, "qwen3.block_count", 28, &err) == TP_OK);
    KV("qwen3.block_count", TP_GGUF_UINT32, cJSON_CreateNumber(28));
    CHECK(tp_gguf_set_i32(w, "t.i32", -5, &err) == TP_OK);
    KV("t.i32", TP_GGUF_INT32, cJSON_CreateNumber(-5));
    CHECK(tp_gguf_set_u64(w, "t.u64", 123456789012ull, &err) == TP_OK);
    KV("t.u64", TP_GGUF_UINT64, cJSON_CreateNumber(123456789012.0));
    CHECK(tp_gguf_set_f32(w, "t.f32", 0.5f, &err) == TP_OK);
    KV("t.f32", TP_GGUF_FLOAT32, cJSON_CreateNumber(0.5));
    CHECK(tp_gguf_set_f64(w, "t.f64", -2.25, &err) == TP_OK);
    KV("t.f64", TP_GGUF_FLOAT64, cJSON_CreateNumber(-2.25));
    CHECK(tp_gguf_set_bool(w, "t.bool", true, &err) == TP_OK);
    KV("t.bool", TP_GGUF_BOOL, cJSON_CreateTrue());
    CHECK(tp_gguf_set_str(w, "tokenizer.chat_template", "{{ messages }}\n", &err) == TP_OK);
    KV("tokenizer.chat_template", TP_GGUF_STRING, cJSON_CreateString("{{ messages }}\n"));
    const char *toks[5] = {"<unk>", "", "h\xc3\xa9llo", "\xe2\x96\x81the", "\xf0\x9f\x98\x80"};
    CHECK(tp_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 5, &err) == TP_OK);
    cJSON *ta = cJSON_CreateStringArray(toks, 5);
    KV("tokenizer.ggml.tokens", TP_GGUF_ARRAY, ta);
    cJSON_AddNumberToObject(cJSON_GetArrayItem(kvs, cJSON_GetArraySize(kvs) - 1), "subType",
                            TP_GGUF_STRING);
    const float sc[3] = {0.0f, -1.5f, 3.25f};
    CHECK(tp_gguf_set_arr(w, "tokenizer.ggml.scores", TP_GGUF_FLOAT32, sc, 3, &err) == TP_OK);
    const double scd[3] = {0.0, -1.5, 3.25};
    KV("tokenizer.ggml.scores", TP_GGUF_ARRAY, cJSON_CreateDoubleArray(scd, 3));
    cJSON_AddNumberToObject(cJSON_GetArrayItem(kvs, cJSON_GetArraySize(kvs) - 1), "subType",
                            TP_GGUF_FLOAT32);
    const int32_t tt[4] = {2, 1, 1, 3};
    CHECK(tp_gguf_set_arr(w, "tokenizer.ggml.token_type", TP_GGUF_INT32, tt, 4, &err) == TP_OK);
    const int tti[4] = {2, 1, 1, 3};
    KV("tokenizer.ggml.token_type", TP_GGUF_ARRAY, cJSON_CreateIntArray(tti, 4));
    cJSON_AddNumberToObject(cJSON_GetArrayItem(kvs, cJSON_GetArraySize(kvs) - 1), "subType",
                            TP_GGUF_INT32);
    const uint8_t pat[3] = {1, 0, 1};
    CHECK(tp_gguf_set_arr(w, "qwen3.attention.sliding_window_pattern", TP_GGUF_BOOL, pat, 3,
                          &err) == TP_OK);
    cJSON *pa = cJSON_CreateArray();
    cJSON_AddItemToArray(pa, cJSON_CreateTrue());
    cJSON_AddItemToArray(pa, cJSON_CreateFalse());
    cJSON_AddItemToArray(pa, cJSON_CreateTrue());
    KV("qwen3.attention.sliding_window_pattern", TP_GGUF_ARRAY, pa);
    cJSON_AddNumberToObject(cJSON_GetArrayItem(kvs, cJSON_GetArraySize(kvs) - 1), "subType",
                            TP_GGUF_BOOL);

    /* tensors: name, dtype, ggml type, ne, bytes */
    static uint8_t blob[4096];
    struct {
        const char *name;
        tp_dtype dt;
        int ggml, nd;
        int64_t ne[4];
        size_t bytes;
    } ts[] = {
        {"token_embd.weight", TP_DTYPE_F32, 0, 2, {16, 10}, 640},
        {"blk.0.attn_norm.weight", TP_DTYPE_F16, 1, 1, {16}, 32},
        {"blk.0.ffn_norm.weight", TP_DTYPE_BF16, 30, 1, {16}, 32},
        {"blk.0.attn_q.weight", TP_DTYPE_Q8_0, 8, 2, {64, 3}, 3 * 2 * 34},
        {"blk.0.ffn_up.weight", TP_DTYPE_Q4_K, 12, 2, {256, 2}, 2 * 144},
        {"output.weight", TP_DTYPE_Q6_K, 14, 3, {256, 1, 2}, 2 * 210},
    };
    cJSON *tj = cJSON_AddArrayToObject(exp, "tensors");
    size_t off = 0;
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        CHECK(tp_gguf_add_tensor(w, ts[i].name, ts[i].dt, ts[i].nd, ts[i].ne, blob, &err) == TP_OK);
        off = align_up(off, 64);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", ts[i].name);
        cJSON_AddNumberToObject(o, "n_dims", ts[i].nd);
        cJSON *shape = cJSON_AddArrayToObject(o, "shape");
        for (int d = 0; d < ts[i].nd; d++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)ts[i].ne[d]));
        cJSON_AddNumberToObject(o, "dtype", ts[i].ggml);
        cJSON_AddNumberToObject(o, "offset", (double)off);
        cJSON_AddItemToArray(tj, o);
        off += ts[i].bytes;
    }
    char *path = io_join(dir, "npm.gguf");
    CHECK(tp_gguf_write(w, path, NULL, NULL, &err) == TP_OK);
    tp_gguf_writer_free(w);
    tp_gguf *g = NULL;
    CHECK(tp_gguf_open(path, &g, &err) == TP_OK);
    cJSON_AddNumberToObject(exp, "data_offset", g ? (double)tp_gguf_data_offset(g) : -1);
    tp_gguf_close(g);
    char *json = cJSON_Print(exp);
    char *jpath = io_join(dir, "expected.json");
    io_write_bytes(jpath, json, strlen(json));
    tp_free(json);
    cJSON_Delete(exp);
    snprintf(cmd, sizeof cmd, "node '%s' '%s' '%s' '%s'", argv[1], cache, io_join(dir, "npm.gguf"),
             io_join(dir, "expected.json"));
    int rc = sh(cmd);
    CHECK_MSG(rc == 0, "gguf_npm_check.mjs failed (%d)", rc);

    /* The other direction: @huggingface/gguf rewrites the header (its own
     * metadata serializer), tpipe's reader reads the result. */
    char edit[4200];
    snprintf(edit, sizeof edit, "%s", argv[1]);
    char *slash = strrchr(edit, '/');
    snprintf(slash ? slash + 1 : edit, sizeof edit - (size_t)(slash ? slash + 1 - edit : 0),
             "gguf_npm_edit.mjs");
    snprintf(cmd, sizeof cmd, "node '%s' '%s' '%s' '%s' > /dev/null", edit, cache,
             io_join(dir, "npm.gguf"), io_join(dir, "edited.gguf"));
    rc = sh(cmd);
    CHECK_MSG(rc == 0, "gguf_npm_edit.mjs failed (%d)", rc);
    tp_gguf *a = NULL, *e = NULL;
    CHECK(tp_gguf_open(io_join(dir, "npm.gguf"), &a, &err) == TP_OK);
    CHECK_MSG(tp_gguf_open(io_join(dir, "edited.gguf"), &e, &err) == TP_OK, "%s", err.message);
    if (a && e) {
        const char *s = NULL;
        CHECK(tp_gguf_get_str(e, "general.name", NULL, &s, &err) == TP_OK && s &&
              !strcmp(s, "edited by @huggingface/gguf"));
        int64_t v = 0;
        CHECK(tp_gguf_get_int(e, "tpipe.test.u32", 0, &v, &err) == TP_OK && v == 7);
        const tp_gguf_kv *arr = NULL;
        CHECK(tp_gguf_get_arr(e, "tpipe.test.strs", TP_GGUF_STRING, &arr, &err) == TP_OK && arr &&
              arr->n == 3);
        size_t l = 9;
        if (arr && arr->n == 3)
            CHECK(!memcmp(tp_gguf_arr_str(arr, 1, &l), "yz", 2) && l == 2 &&
                  (tp_gguf_arr_str(arr, 2, &l), l == 0));
        CHECK_EQ_INT(tp_gguf_kv_count(e), tp_gguf_kv_count(a) + 3);
        for (size_t i = 0; i < tp_gguf_kv_count(a); i++) {
            const tp_gguf_kv *x = tp_gguf_kv_at(a, i), *y = tp_gguf_find_kv(e, x->key);
            CHECK_MSG(y && y->type == x->type && y->arr_type == x->arr_type && y->n == x->n,
                      "key %s", x->key);
        }
        CHECK_EQ_INT(tp_gguf_tensor_count(e), tp_gguf_tensor_count(a));
        for (size_t i = 0; i < tp_gguf_tensor_count(a); i++) {
            const tp_gguf_tensor *x = tp_gguf_tensor_at(a, i), *y = tp_gguf_find_tensor(e, x->name);
            CHECK_MSG(y && y->ggml_type == x->ggml_type && y->n_bytes == x->n_bytes &&
                          !memcmp(y->data, x->data, x->n_bytes),
                      "tensor %s", x->name);
        }
        printf("PASS tpipe read the header @huggingface/gguf wrote: %zu keys, %zu tensors\n",
               tp_gguf_kv_count(e), tp_gguf_tensor_count(e));
    }
    tp_gguf_close(a);
    tp_gguf_close(e);
    io_rmtree(dir);
    return tp_test_exit();
}
