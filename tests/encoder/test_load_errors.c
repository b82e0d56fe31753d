/*
 * test_load_errors.c — bad model folders give clear load errors (status +
 * a message naming the file and the field or tensor), never a crash:
 * inconsistent dimensions, missing or mis-shaped tensors, id2label not
 * matching the classifier, unsupported pooling/activation/model_type,
 * missing tokenizer; and zero-shot on a classifier without an entailment label.
 */
#include "enc_test_util.h"

#include <cjson/cJSON.h>

/* Rewrites dir/config.json with key set to the JSON value `json` (NULL: removed). */
static void set_config(const char *dir, const char *key, const char *json) {
    char p[1024];
    snprintf(p, sizeof p, "%s/config.json", dir);
    char *text = NULL;
    size_t len = 0;
    tp_error err;
    CHECK(tp_read_file(p, &text, &len, &err) == TP_OK);
    cJSON *j = cJSON_Parse(text);
    free(text);
    cJSON_DeleteItemFromObject(j, key);
    if (json)
        cJSON_AddItemToObject(j, key, cJSON_Parse(json));
    char *out = cJSON_Print(j);
    FILE *f = fopen(p, "w");
    fputs(out, f);
    fclose(f);
    free(out);
    cJSON_Delete(j);
}

static void expect_fail(const char *dir, tp_status want, const char *needle1, const char *needle2) {
    tp_model *m = NULL;
    tp_error err;
    tp_status s = tp_model_load(dir, NULL, &m, &err);
    CHECK_MSG(s == want, "want %s, got %s: %s", tp_status_name(want), tp_status_name(s),
              err.message);
    CHECK(m == NULL);
    CHECK_MSG(strstr(err.message, needle1) != NULL, "\"%s\" not in: %s", needle1, err.message);
    if (needle2)
        CHECK_MSG(strstr(err.message, needle2) != NULL, "\"%s\" not in: %s", needle2, err.message);
    tp_model_free(m);
}

static const char *const kLabels[] = {"NEG", "POS", NULL};

static void fresh(const char *dir, const tiny_cfg *c) {
    tiny_rmtree(dir);
    CHECK(tiny_write_model(dir, c) == 0);
}

int main(void) {
    enc_require_tokenizer();
    const char *root = tiny_tmpdir("loaderr");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/m", root);
    tiny_cfg c = tiny_default("ModernBertForSequenceClassification");
    c.labels = kLabels;

    fresh(dir, &c);
    set_config(dir, "num_attention_heads", "3"); /* 32 does not split into 3 heads */
    expect_fail(dir, TP_ERR_FORMAT, "config.json", "num_attention_heads");

    fresh(dir, &c);
    set_config(dir, "num_hidden_layers", "3"); /* the file has 2 layers */
    expect_fail(dir, TP_ERR_NOT_FOUND, "model.layers.2.", NULL);

    fresh(dir, &c);
    set_config(dir, "intermediate_size", "40"); /* Wi is (96, 32) in the file */
    expect_fail(dir, TP_ERR_FORMAT, "model.layers.0.mlp.Wi.weight", NULL);

    fresh(dir, &c);
    set_config(dir, "id2label", "{\"0\": \"A\", \"1\": \"B\", \"2\": \"C\"}");
    expect_fail(dir, TP_ERR_FORMAT, "id2label", "classifier.weight");

    fresh(dir, &c);
    set_config(dir, "id2label", "{\"0\": \"A\", \"7\": \"B\"}");
    expect_fail(dir, TP_ERR_FORMAT, "id2label", "\"7\"");

    fresh(dir, &c);
    set_config(dir, "classifier_pooling", "\"max\"");
    expect_fail(dir, TP_ERR_UNSUPPORTED, "classifier_pooling", "max");

    fresh(dir, &c);
    set_config(dir, "hidden_activation", "\"swiglu_magic\"");
    expect_fail(dir, TP_ERR_UNSUPPORTED, "hidden_activation", "swiglu_magic");

    fresh(dir, &c);
    set_config(dir, "hidden_size", "\"wide\"");
    expect_fail(dir, TP_ERR_FORMAT, "hidden_size", NULL);

    fresh(dir, &c);
    set_config(dir, "model_type", "\"bert_of_theseus\"");
    set_config(dir, "architectures", "[\"TheseusModel\"]");
    expect_fail(dir, TP_ERR_UNSUPPORTED, "bert_of_theseus", NULL);

    fresh(dir, &c);
    set_config(dir, "layer_types", "[\"full_attention\"]");
    expect_fail(dir, TP_ERR_FORMAT, "layer_types", NULL);

    fresh(dir, &c);
    char p[1024];
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    CHECK(unlink(p) == 0);
    expect_fail(dir, TP_ERR_NOT_FOUND, "tokenizer.json", NULL);

    fresh(dir, &c);
    snprintf(p, sizeof p, "%s/config.json", dir);
    CHECK(unlink(p) == 0);
    expect_fail(dir, TP_ERR_NOT_FOUND, "config.json", NULL);

    /* layer_types, when valid, decides the layer kinds: flipping the default
     * (layer 0 global, layer 1 local) changes the logits of a text longer than
     * the window; spelling out the default changes nothing */
    int32_t ids[40];
    for (int i = 0; i < 40; i++)
        ids[i] = 1000 + 37 * i;
    float *lg[3];
    const char *kinds[3] = {NULL, "[\"sliding_attention\", \"full_attention\"]",
                            "[\"full_attention\", \"sliding_attention\"]"};
    for (int v = 0; v < 3; v++) {
        fresh(dir, &c);
        if (kinds[v])
            set_config(dir, "layer_types", kinds[v]);
        tp_model *mv = enc_load(dir, NULL);
        lg[v] = enc_raw(mv, ids, 40, NULL, 0);
        tp_model_free(mv);
    }
    CHECK(memcmp(lg[0], lg[1], 2 * sizeof(float)) != 0);
    CHECK(memcmp(lg[0], lg[2], 2 * sizeof(float)) == 0);
    for (int v = 0; v < 3; v++)
        free(lg[v]);

    /* zero-shot needs an entailment label */
    fresh(dir, &c);
    tp_model *m = enc_load(dir, NULL);
    const char *labels[] = {"a", "b"};
    tp_zero_shot_result r;
    tp_error err;
    CHECK(tp_zero_shot_predict(m, "text", labels, 2, NULL, &r, &err) == TP_ERR_UNSUPPORTED);
    CHECK(strstr(err.message, "entail") != NULL);
    tp_model_free(m);

    tiny_rmtree(root);
    return tp_test_exit();
}
