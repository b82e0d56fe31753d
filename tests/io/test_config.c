/*
 * test_config.c — JSON config reading (src/io/config.c): typed getters with
 * defaults, wrong-type and missing-key errors naming file and key, parse errors
 * with line/column, and the golden config.json files.
 */
#include "io/config.h"
#include "io_test_util.h"

static void test_getters(void) {
    const char *text = "{\n"
                       "  \"hidden_size\": 64,\n"
                       "  \"scalar\": 256.0,\n"
                       "  \"rope_theta\": 1000000.0,\n"
                       "  \"eps\": 1e-06,\n"
                       "  \"tie\": true,\n"
                       "  \"name\": \"qwen3\",\n"
                       "  \"nothing\": null,\n"
                       "  \"frac\": 2.5,\n"
                       "  \"big\": 1e30,\n"
                       "  \"neg\": -7,\n"
                       "  \"eos\": [1, 106, 340],\n"
                       "  \"eos1\": 106,\n"
                       "  \"eosbad\": [1, \"x\"],\n"
                       "  \"sub\": {\"factor\": 8.0},\n"
                       "  \"arr\": [1]\n"
                       "}\n";
    tp_json_doc doc;
    tp_error err;
    CHECK(tp_json_parse(text, strlen(text), "cfg.json", &doc, &err) == TP_OK);
    const cJSON *r = doc.root;
    int64_t i = 0;
    double d = 0;
    bool b = false;
    const char *s = NULL;

    CHECK(tp_json_int(&doc, r, "hidden_size", 0, &i, &err) == TP_OK && i == 64);
    CHECK(tp_json_int(&doc, r, "scalar", 0, &i, &err) == TP_OK && i == 256);
    CHECK(tp_json_int(&doc, r, "neg", 0, &i, &err) == TP_OK && i == -7);
    CHECK(tp_json_int(&doc, r, "absent", 42, &i, &err) == TP_OK && i == 42);
    CHECK(tp_json_int(&doc, r, "nothing", 43, &i, &err) == TP_OK && i == 43);
    CHECK(tp_json_int(&doc, r, "frac", 0, &i, &err) == TP_ERR_FORMAT);
    CHECK(io_contains(err.message, "cfg.json") && io_contains(err.message, "'frac'") &&
          io_contains(err.message, "integer"));
    CHECK(tp_json_int(&doc, r, "big", 0, &i, &err) == TP_ERR_FORMAT);
    CHECK(tp_json_int(&doc, r, "name", 0, &i, &err) == TP_ERR_FORMAT);
    CHECK(io_contains(err.message, "'name'") && io_contains(err.message, "a string"));
    CHECK(tp_json_req_int(&doc, r, "hidden_size", &i, &err) == TP_OK && i == 64);
    CHECK(tp_json_req_int(&doc, r, "absent", &i, &err) == TP_ERR_FORMAT);
    CHECK(io_contains(err.message, "cfg.json") && io_contains(err.message, "missing key 'absent'"));
    CHECK(tp_json_req_int(&doc, r, "nothing", &i, &err) == TP_ERR_FORMAT);

    CHECK(tp_json_double(&doc, r, "rope_theta", 0, &d, &err) == TP_OK && d == 1e6);
    CHECK(tp_json_double(&doc, r, "eps", 0, &d, &err) == TP_OK && d == 1e-6);
    CHECK(tp_json_double(&doc, r, "hidden_size", 0, &d, &err) == TP_OK && d == 64.0);
    CHECK(tp_json_double(&doc, r, "absent", 0.5, &d, &err) == TP_OK && d == 0.5);
    CHECK(tp_json_double(&doc, r, "tie", 0, &d, &err) == TP_ERR_FORMAT);
    CHECK(io_contains(err.message, "'tie'") && io_contains(err.message, "a boolean"));
    CHECK(tp_json_req_double(&doc, r, "absent", &d, &err) == TP_ERR_FORMAT);
    CHECK(tp_json_req_double(&doc, r, "eps", &d, &err) == TP_OK && d == 1e-6);

    CHECK(tp_json_bool(&doc, r, "tie", false, &b, &err) == TP_OK && b);
    CHECK(tp_json_bool(&doc, r, "absent", true, &b, &err) == TP_OK && b);
    CHECK(tp_json_bool(&doc, r, "hidden_size", false, &b, &err) == TP_ERR_FORMAT);
    CHECK(io_contains(err.message, "'hidden_size'"));

    CHECK(tp_json_string(&doc, r, "name", NULL, &s, &err) == TP_OK && strcmp(s, "qwen3") == 0);
    CHECK(tp_json_string(&doc, r, "absent", "dflt", &s, &err) == TP_OK && strcmp(s, "dflt") == 0);
    CHECK(tp_json_string(&doc, r, "absent", NULL, &s, &err) == TP_OK && s == NULL);
    CHECK(tp_json_string(&doc, r, "arr", NULL, &s, &err) == TP_ERR_FORMAT);
    CHECK(io_contains(err.message, "an array"));
    CHECK(tp_json_req_string(&doc, r, "name", &s, &err) == TP_OK && strcmp(s, "qwen3") == 0);
    CHECK(tp_json_req_string(&doc, r, "absent", &s, &err) == TP_ERR_FORMAT);

    const cJSON *o = NULL;
    CHECK(tp_json_object(&doc, r, "sub", &o, &err) == TP_OK && o != NULL);
    CHECK(tp_json_double(&doc, o, "factor", 0, &d, &err) == TP_OK && d == 8.0);
    CHECK(tp_json_object(&doc, r, "absent", &o, &err) == TP_OK && o == NULL);
    CHECK(tp_json_object(&doc, r, "arr", &o, &err) == TP_ERR_FORMAT);
    /* a getter on a non-object */
    CHECK(tp_json_int(&doc, cJSON_GetObjectItem(r, "arr"), "x", 0, &i, &err) == TP_ERR_FORMAT);
    CHECK(io_contains(err.message, "'x'") && io_contains(err.message, "not an object"));

    int64_t *list = NULL;
    size_t n = 0;
    CHECK(tp_json_int_list(&doc, r, "eos", &list, &n, &err) == TP_OK && n == 3);
    CHECK(list && list[0] == 1 && list[1] == 106 && list[2] == 340);
    free(list);
    CHECK(tp_json_int_list(&doc, r, "eos1", &list, &n, &err) == TP_OK && n == 1 && list[0] == 106);
    free(list);
    CHECK(tp_json_int_list(&doc, r, "absent", &list, &n, &err) == TP_OK && n == 0 && !list);
    CHECK(tp_json_int_list(&doc, r, "eosbad", &list, &n, &err) == TP_ERR_FORMAT && !list);
    CHECK(io_contains(err.message, "'eosbad'") && io_contains(err.message, "item 1"));
    tp_json_free(&doc);
    CHECK(doc.root == NULL && doc.path == NULL);
    tp_json_free(&doc); /* twice is harmless */
}

static void test_parse_errors(const char *dir) {
    tp_json_doc doc;
    tp_error err;
    const char *bad = "{\n  \"a\": 1,\n  \"b\": tru\n}\n";
    CHECK(tp_json_parse(bad, strlen(bad), "bad.json", &doc, &err) == TP_ERR_FORMAT);
    CHECK_MSG(io_contains(err.message, "bad.json") && io_contains(err.message, "line 3"), "%s",
              err.message);
    CHECK(doc.root == NULL);
    const char *trail = "{\"a\": 1}\n\n  x";
    CHECK(tp_json_parse(trail, strlen(trail), "trail.json", &doc, &err) == TP_ERR_FORMAT);
    CHECK_MSG(io_contains(err.message, "line 3, column 3"), "%s", err.message);
    CHECK(tp_json_parse("", 0, "empty.json", &doc, &err) == TP_ERR_FORMAT);
    CHECK(io_contains(err.message, "empty.json"));
    CHECK(tp_json_parse("  [1, 2]  \n", 11, "arr.json", &doc, &err) == TP_OK);
    CHECK(cJSON_IsArray(doc.root));
    tp_json_free(&doc);

    /* files */
    CHECK(tp_json_load(io_join(dir, "absent.json"), &doc, &err) == TP_ERR_NOT_FOUND);
    CHECK(io_contains(err.message, "absent.json"));
    io_write_bytes(io_join(dir, "cut.json"), "{\"a\": [1, 2", 11);
    CHECK(tp_json_load(io_join(dir, "cut.json"), &doc, &err) == TP_ERR_FORMAT);
    CHECK(io_contains(err.message, "cut.json") && io_contains(err.message, "line 1"));
    CHECK(tp_json_load(dir, &doc, &err) != TP_OK); /* a folder */
    io_write_bytes(io_join(dir, "ok.json"), "{\"v\": 3}", 8);
    CHECK(tp_json_load(io_join(dir, "ok.json"), &doc, &err) == TP_OK);
    int64_t v = 0;
    CHECK(tp_json_req_int(&doc, doc.root, "v", &v, &err) == TP_OK && v == 3);
    CHECK(io_contains(doc.path, "ok.json"));
    tp_json_free(&doc);
    CHECK(tp_json_load(NULL, &doc, &err) == TP_ERR_INVALID_ARGUMENT);
}

/* The golden configs: values checked against the numbers in their README table. */
static void test_golden_configs(void) {
    tp_json_doc doc;
    tp_error err;
    char p[4096];
    snprintf(p, sizeof p, "%s", tp_test_data("golden/gemma3_layer_types_softcap/config.json"));
    CHECK(tp_json_load(p, &doc, &err) == TP_OK);
    int64_t q = 0, hd = 0;
    double cap = 0;
    CHECK(tp_json_int(&doc, doc.root, "query_pre_attn_scalar", 0, &q, &err) == TP_OK && q == 20);
    CHECK(tp_json_int(&doc, doc.root, "head_dim", 0, &hd, &err) == TP_OK && hd == 24);
    CHECK(tp_json_double(&doc, doc.root, "final_logit_softcapping", 0, &cap, &err) == TP_OK &&
          cap == 10.0);
    double sc = -1;
    CHECK(tp_json_double(&doc, doc.root, "attn_logit_softcapping", -1, &sc, &err) == TP_OK &&
          sc == -1); /* null -> default */
    tp_json_free(&doc);

    snprintf(p, sizeof p, "%s", tp_test_data("golden/gemma3_pattern_linear_rope/config.json"));
    CHECK(tp_json_load(p, &doc, &err) == TP_OK);
    const cJSON *rs = NULL;
    double f = 0;
    CHECK(tp_json_object(&doc, doc.root, "rope_scaling", &rs, &err) == TP_OK && rs);
    CHECK(tp_json_double(&doc, rs, "factor", 0, &f, &err) == TP_OK && f == 8.0);
    int64_t pat = 0;
    CHECK(tp_json_int(&doc, doc.root, "sliding_window_pattern", 6, &pat, &err) == TP_OK &&
          pat == 2);
    tp_json_free(&doc);
}

/* Real tokenizer_config.json files (values as Python's json reads them). */
static void test_tokenizer_configs(void) {
    const char *base = tp_test_shared("tokenizers");
    if (!base) {
        printf("SKIP: real tokenizer_config.json files (no ../shared/tokenizers)\n");
        return;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", base);
    static const struct {
        const char *family, *eos;
        int64_t max_len;
        int bos_null;
        size_t template_len;
    } want[] = {
        {"qwen3", "<|im_end|>", 131072, 1, 4116},
        {"gemma3", "<end_of_turn>", 32768, 0, 1532},
        {"modernbert", NULL, 8192, 1, 0},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char p[4400];
        snprintf(p, sizeof p, "%s/%s/tokenizer_config.json", dir, want[i].family);
        tp_json_doc doc;
        tp_error err;
        CHECK_MSG(tp_json_load(p, &doc, &err) == TP_OK, "%s", err.message);
        if (!doc.root)
            continue;
        int64_t ml = 0;
        const char *eos = NULL, *bos = "x", *tpl = NULL;
        CHECK(tp_json_int(&doc, doc.root, "model_max_length", 0, &ml, &err) == TP_OK &&
              ml == want[i].max_len);
        CHECK(tp_json_string(&doc, doc.root, "eos_token", NULL, &eos, &err) == TP_OK);
        CHECK(want[i].eos ? eos && strcmp(eos, want[i].eos) == 0 : eos == NULL);
        CHECK(tp_json_string(&doc, doc.root, "bos_token", NULL, &bos, &err) == TP_OK);
        CHECK(want[i].bos_null ? bos == NULL : bos && strcmp(bos, "<bos>") == 0);
        CHECK(tp_json_string(&doc, doc.root, "chat_template", NULL, &tpl, &err) == TP_OK);
        /* Python counts code points; the templates here are ASCII so bytes match */
        CHECK_MSG(want[i].template_len ? tpl && strlen(tpl) == want[i].template_len : tpl == NULL,
                  "%s: chat_template length %zu", want[i].family, tpl ? strlen(tpl) : 0);
        const cJSON *added = NULL;
        CHECK(tp_json_object(&doc, doc.root, "added_tokens_decoder", &added, &err) == TP_OK &&
              added);
        tp_json_free(&doc);
    }
}

int main(void) {
    const char *tmp = io_tmpdir();
    char dir[256];
    snprintf(dir, sizeof dir, "%s", tmp);
    test_getters();
    test_parse_errors(dir);
    test_golden_configs();
    test_tokenizer_configs();
    io_rmtree(dir);
    return tp_test_exit();
}
