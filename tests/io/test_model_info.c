/*
 * test_model_info.c — tp_model_info_get on the 7 golden checkpoints (every
 * field checked against values computed here from config.json dims and the
 * family's tensor list in golden_expect.h, plus one count worked out by hand),
 * a tied lm_head stored as a copy, a Gemma3ForConditionalGeneration config with
 * text_config, resolution through a Hugging Face cache id (snapshot files as
 * symlinks into blobs/, as huggingface_hub stores them), and the errors.
 */
#include "golden_expect.h"
#include "io/safetensors.h"
#include "io_test_util.h"

static cJSON *load_json(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    return cJSON_Parse(text);
}

static void test_golden(void) {
    char root[4096];
    snprintf(root, sizeof root, "%s", tp_test_data("golden"));
    for (size_t i = 0; i < sizeof golden_cases / sizeof golden_cases[0]; i++) {
        char dir[4400], cfgp[4500];
        snprintf(dir, sizeof dir, "%s/%s", root, golden_cases[i]);
        snprintf(cfgp, sizeof cfgp, "%s/config.json", dir);
        cJSON *c = load_json(cfgp);
        CHECK_MSG(c != NULL, "%s", cfgp);
        if (!c)
            continue;
        static exp_list l;
        CHECK(expect_tensors(c, &l));
        int64_t params = 0;
        for (int k = 0; k < l.n; k++)
            params += exp_elems(&l.t[k]);
        const char *td = cJSON_GetObjectItem(c, "torch_dtype")->valuestring;

        tp_model_info info;
        tp_error err;
        tp_status st = tp_model_info_get(dir, &info, &err);
        CHECK_MSG(st == TP_OK, "%s: %s", golden_cases[i], err.message);
        if (st == TP_OK) {
            const char *arch =
                cJSON_GetArrayItem(cJSON_GetObjectItem(c, "architectures"), 0)->valuestring;
            CHECK_STR(info.architecture, arch);
            CHECK_STR(info.model_type, cJSON_GetObjectItem(c, "model_type")->valuestring);
            CHECK_STR(info.dtype, td);
            CHECK_STR(info.weights_dtype, strcmp(td, "bfloat16") == 0 ? "BF16" : "F32");
            CHECK_MSG(info.n_params == params, "%s: %lld params, expected %lld", golden_cases[i],
                      (long long)info.n_params, (long long)params);
            CHECK_EQ_INT(info.n_tensors, l.n);
            CHECK_EQ_INT(info.n_files, 1);
            CHECK_EQ_INT(info.weights_bytes, params * (strcmp(td, "bfloat16") == 0 ? 2 : 4));
            CHECK_EQ_INT(info.context_length,
                         cJSON_GetObjectItem(c, "max_position_embeddings")->valuedouble);
            CHECK_EQ_INT(info.vocab_size, cJSON_GetObjectItem(c, "vocab_size")->valuedouble);
            CHECK_EQ_INT(info.hidden_size, cJSON_GetObjectItem(c, "hidden_size")->valuedouble);
            CHECK_EQ_INT(info.n_layers, cJSON_GetObjectItem(c, "num_hidden_layers")->valuedouble);
            if (strcmp(golden_cases[i], "qwen3_tied") == 0) {
                /* by hand: V=1024 H=64 L=3 heads 4/2 x 32 I=128, tied (no lm_head):
                 * 1024*64 + 64 + 3*(2*64 + 128*64 + 2*64*64 + 64*128 + 2*32 + 3*128*64) */
                CHECK_EQ_INT(info.n_params, 213632);
                CHECK_EQ_INT(info.context_length, 40960);
            }
            if (strcmp(golden_cases[i], "qwen3_untied_bf16") == 0)
                CHECK(l.n > 0 && strcmp(info.weights_dtype, "BF16") == 0);
        }
        cJSON_Delete(c);
    }
}

static void write_text(const char *path, const char *text) {
    io_write_bytes(path, text, strlen(text));
}

/* A Qwen3-0.6B-like layout: tie_word_embeddings true and lm_head.weight stored
 * as a copy. Counted once. */
static void test_tied_copy(const char *root) {
    char *dir = io_join(root, "tiedcopy");
    mkdir(dir, 0755);
    char d[4096];
    snprintf(d, sizeof d, "%s", dir);
    write_text(io_join(d, "config.json"),
               "{\"architectures\": [\"Qwen3ForCausalLM\"], \"model_type\": \"qwen3\",\n"
               " \"tie_word_embeddings\": true, \"torch_dtype\": \"bfloat16\",\n"
               " \"hidden_size\": 4, \"vocab_size\": 8, \"num_hidden_layers\": 0,\n"
               " \"max_position_embeddings\": 40960}\n");
    io_write_st(
        io_join(d, "model.safetensors"),
        "{\"lm_head.weight\":{\"dtype\":\"BF16\",\"shape\":[8,4],\"data_offsets\":[0,64]},"
        "\"model.embed_tokens.weight\":{\"dtype\":\"BF16\",\"shape\":[8,4],"
        "\"data_offsets\":[64,128]},"
        "\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[128,144]}}",
        0, NULL, 144);
    tp_model_info info;
    tp_error err;
    CHECK(tp_model_info_get(d, &info, &err) == TP_OK);
    CHECK_EQ_INT(info.n_params, 8 * 4 + 4);
    CHECK_EQ_INT(info.n_tensors, 3);
    CHECK_EQ_INT(info.weights_bytes, 144);
    CHECK_STR(info.weights_dtype, "BF16");
    CHECK_STR(info.dtype, "bfloat16");
    /* untied: both count */
    write_text(io_join(d, "config.json"),
               "{\"architectures\": [\"Qwen3ForCausalLM\"], \"model_type\": \"qwen3\",\n"
               " \"hidden_size\": 4, \"vocab_size\": 8, \"num_hidden_layers\": 0}\n");
    CHECK(tp_model_info_get(d, &info, &err) == TP_OK);
    CHECK_EQ_INT(info.n_params, 2 * 8 * 4 + 4);
    CHECK_STR(info.dtype, "bfloat16"); /* no torch_dtype: from the weights */
    CHECK_EQ_INT(info.context_length, 0);
}

/* Gemma3ForConditionalGeneration keeps the LM settings in text_config. */
static void test_text_config(const char *root) {
    char d[4096];
    snprintf(d, sizeof d, "%s", io_join(root, "gemma3mm"));
    mkdir(d, 0755);
    write_text(io_join(d, "config.json"),
               "{\"architectures\": [\"Gemma3ForConditionalGeneration\"],\n"
               " \"model_type\": \"gemma3\", \"torch_dtype\": \"bfloat16\",\n"
               " \"text_config\": {\"model_type\": \"gemma3_text\", \"hidden_size\": 2560,\n"
               "   \"num_hidden_layers\": 34, \"vocab_size\": 262208,\n"
               "   \"max_position_embeddings\": 131072},\n"
               " \"vision_config\": {\"hidden_size\": 1152}}\n");
    io_write_st(io_join(d, "model.safetensors"),
                "{\"language_model.model.norm.weight\":{\"dtype\":\"BF16\",\"shape\":[2560],"
                "\"data_offsets\":[0,5120]}}",
                0, NULL, 5120);
    tp_model_info info;
    tp_error err;
    CHECK(tp_model_info_get(d, &info, &err) == TP_OK);
    CHECK_STR(info.architecture, "Gemma3ForConditionalGeneration");
    CHECK_STR(info.model_type, "gemma3_text");
    CHECK_EQ_INT(info.hidden_size, 2560);
    CHECK_EQ_INT(info.n_layers, 34);
    CHECK_EQ_INT(info.vocab_size, 262208);
    CHECK_EQ_INT(info.context_length, 131072);
    CHECK_EQ_INT(info.n_params, 2560);
}

static void test_cache_id(const char *root) {
    /* models--Org--tiny/snapshots/<commit> holding a copy of a golden case */
    char snap[4096];
    snprintf(snap, sizeof snap, "%s/hub/models--Org--tiny/snapshots/abc", root);
    char p[4096];
    snprintf(p, sizeof p, "%s/hub", root);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/hub/models--Org--tiny", root);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/hub/models--Org--tiny/snapshots", root);
    mkdir(p, 0755);
    mkdir(snap, 0755);
    snprintf(p, sizeof p, "%s/hub/models--Org--tiny/refs", root);
    mkdir(p, 0755);
    write_text(io_join(p, "main"), "abc");
    const char *files[] = {"config.json", "model.safetensors"};
    for (int i = 0; i < 2; i++) {
        char src[4200];
        snprintf(src, sizeof src, "%s/%s", tp_test_data("golden/qwen3_untied_bf16"), files[i]);
        FILE *f = fopen(src, "rb");
        CHECK(f != NULL);
        if (!f)
            return;
        static char buf[1 << 20];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        /* as huggingface_hub stores them: blobs/<hash>, linked from the snapshot */
        char blob[4400], link[4400], target[64];
        snprintf(blob, sizeof blob, "%s/hub/models--Org--tiny/blobs", root);
        mkdir(blob, 0755);
        snprintf(blob, sizeof blob, "%s/hub/models--Org--tiny/blobs/blob%d", root, i);
        io_write_bytes(blob, buf, n);
        snprintf(target, sizeof target, "../../blobs/blob%d", i);
        snprintf(link, sizeof link, "%s/%s", snap, files[i]);
        CHECK(symlink(target, link) == 0);
    }
    char hub[4096];
    snprintf(hub, sizeof hub, "%s/hub", root);
    setenv("HF_HUB_CACHE", hub, 1);
    tp_model_info info;
    tp_error err;
    tp_status st = tp_model_info_get("Org/tiny", &info, &err);
    CHECK_MSG(st == TP_OK, "%s", err.message);
    CHECK_STR(info.architecture, "Qwen3ForCausalLM");
    CHECK_STR(info.weights_dtype, "BF16");
    CHECK(tp_model_info_get("Org/absent", &info, &err) == TP_ERR_NOT_FOUND);
    CHECK(io_contains(err.message, "models--Org--absent"));
    unsetenv("HF_HUB_CACHE");
}

static void test_errors(const char *root) {
    tp_model_info info;
    tp_error err;
    CHECK(tp_model_info_get(NULL, &info, &err) == TP_ERR_INVALID_ARGUMENT);
    CHECK(tp_model_info_get(root, NULL, &err) == TP_ERR_INVALID_ARGUMENT);
    char d[4096];
    snprintf(d, sizeof d, "%s", io_join(root, "broken"));
    mkdir(d, 0755);
    /* no config.json */
    CHECK(tp_model_info_get(d, &info, &err) == TP_ERR_NOT_FOUND);
    CHECK(io_contains(err.message, "config.json"));
    /* malformed config.json: names the file and the line */
    write_text(io_join(d, "config.json"), "{\n  \"hidden_size\": 64,\n  \"vocab_size\": ,\n}\n");
    CHECK(tp_model_info_get(d, &info, &err) == TP_ERR_FORMAT);
    CHECK_MSG(io_contains(err.message, "config.json") && io_contains(err.message, "line 3"), "%s",
              err.message);
    /* a wrongly typed key */
    write_text(io_join(d, "config.json"), "{\"hidden_size\": \"big\"}");
    CHECK(tp_model_info_get(d, &info, &err) == TP_ERR_FORMAT);
    CHECK(io_contains(err.message, "config.json") && io_contains(err.message, "'hidden_size'"));
    write_text(io_join(d, "config.json"), "{\"architectures\": 3}");
    CHECK(tp_model_info_get(d, &info, &err) == TP_ERR_FORMAT);
    CHECK(io_contains(err.message, "'architectures'"));
    /* a config but no weights */
    write_text(io_join(d, "config.json"), "{\"architectures\": [\"Qwen3ForCausalLM\"]}");
    CHECK(tp_model_info_get(d, &info, &err) == TP_ERR_NOT_FOUND);
    CHECK(io_contains(err.message, "model.safetensors"));
    /* corrupt weights: the safetensors error comes through */
    io_write_st(io_join(d, "model.safetensors"),
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 0, NULL, 16);
    CHECK(tp_model_info_get(d, &info, &err) == TP_ERR_FORMAT);
    CHECK(io_contains(err.message, "model.safetensors") && io_contains(err.message, "'w'"));
    CHECK(info.n_params == 0 && info.architecture[0] == 0);
}

int main(void) {
    char root[256];
    snprintf(root, sizeof root, "%s", io_tmpdir());
    test_golden();
    test_tied_copy(root);
    test_text_config(root);
    test_cache_id(root);
    test_errors(root);
    io_rmtree(root);
    return tp_test_exit();
}
