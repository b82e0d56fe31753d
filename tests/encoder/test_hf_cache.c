/*
 * test_hf_cache.c — loading a model by Hugging Face id from a cache tree built
 * here (models--org--name/{refs/main, snapshots/<commit>/, blobs/}) holding a
 * tiny golden classifier (tests/data/golden/modernbert_seqcls_mean) and the
 * real ModernBERT tokenizer; HF_HUB_CACHE points at it. Checks the loaded
 * model end to end: task and labels from config.json, the golden logits of the
 * network, a pipeline call (its tokens fall outside this tiny 512-id
 * vocabulary: a clear per-item error, no crash), @revision, and clear errors
 * for a missing id.
 */
#include "enc_test_util.h"

#include <cjson/cJSON.h>

static void put_blob(const char *root, const char *snap, const char *src, const char *name,
                     const char *blob) {
    char b[1024], l[1024], target[256];
    snprintf(b, sizeof b, "%s/blobs/%s", root, blob);
    CHECK(tiny_copy(src, b) == 0);
    snprintf(l, sizeof l, "%s/%s", snap, name);
    snprintf(target, sizeof target, "../../blobs/%s", blob);
    CHECK(symlink(target, l) == 0);
}

int main(void) {
    enc_require_tokenizer();
    char gdir[4096];
    snprintf(gdir, sizeof gdir, "%s", tp_test_data("golden/modernbert_seqcls_mean"));
    char gjson[4200];
    snprintf(gjson, sizeof gjson, "%s/golden.json", gdir);
    if (access(gjson, R_OK) != 0) {
        printf("SKIP: %s is missing\n", gjson);
        return 0;
    }
    const char *cache = tiny_tmpdir("hfcache");
    char repo[1024], p[1400], snap[1400];
    snprintf(repo, sizeof repo, "%s/models--tpipe-test--tiny-seqcls", cache);
    mkdir(repo, 0755);
    snprintf(p, sizeof p, "%s/blobs", repo);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/refs", repo);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/snapshots", repo);
    mkdir(p, 0755);
    const char *commit = "3f1e2d4c5b6a79880123456789abcdef01234567";
    snprintf(snap, sizeof snap, "%s/snapshots/%s", repo, commit);
    mkdir(snap, 0755);
    snprintf(p, sizeof p, "%s/refs/main", repo);
    FILE *f = fopen(p, "w");
    fputs(commit, f); /* no newline, as huggingface_hub writes it */
    fclose(f);
    char src[8400];
    snprintf(src, sizeof src, "%s/config.json", gdir);
    put_blob(repo, snap, src, "config.json", "aa01");
    snprintf(src, sizeof src, "%s/model.safetensors", gdir);
    put_blob(repo, snap, src, "model.safetensors", "aa02");
    const char *files[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"};
    for (int i = 0; i < 3; i++) {
        char blob[8];
        snprintf(blob, sizeof blob, "bb0%d", i);
        snprintf(src, sizeof src, "%s/%s", tiny_tokenizer_dir(), files[i]);
        put_blob(repo, snap, src, files[i], blob);
    }
    setenv("HF_HUB_CACHE", cache, 1);

    tp_model *m = enc_load("tpipe-test/tiny-seqcls", NULL);
    CHECK(tp_model_get_task(m) == TP_TASK_TEXT_CLASSIFICATION);
    CHECK_EQ_INT(tp_model_num_labels(m), 3);
    CHECK_STR(tp_model_label(m, 0), "negative");
    CHECK_STR(tp_model_label(m, 2), "positive");
    CHECK(strstr(m->dir, commit) != NULL);

    /* the network of the model loaded by id reproduces the golden logits */
    char *text = NULL;
    size_t len = 0;
    tp_error err;
    CHECK(tp_read_file(gjson, &text, &len, &err) == TP_OK);
    cJSON *g = cJSON_Parse(text);
    free(text);
    const cJSON *item = cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(g, "groups"), 0), "items"), 0);
    const cJSON *ids = cJSON_GetObjectItem(item, "input_ids");
    int32_t idv[64];
    size_t n = (size_t)cJSON_GetArraySize(ids);
    CHECK(n > 0 && n <= 64);
    for (size_t i = 0; i < n && i < 64; i++)
        idv[i] = cJSON_GetArrayItem(ids, (int)i)->valueint;
    float *lg = enc_raw(m, idv, n, NULL, 0);
    for (int j = 0; j < 3; j++) {
        double want = cJSON_GetArrayItem(cJSON_GetObjectItem(item, "logits"), j)->valuedouble;
        CHECK_MSG(fabs(lg[j] - want) <= 1e-4 + 1e-4 * fabs(want), "logit %d: %.9g vs %.9g", j,
                  lg[j], want);
    }
    free(lg);
    cJSON_Delete(g);

    /* a pipeline call: the real tokenizer's ids exceed this tiny vocabulary */
    tp_sentiment_result r;
    CHECK(tp_sentiment_predict_with_score(m, "hello", NULL, &r, &err) == TP_ERR_INPUT);
    CHECK(strstr(err.message, "vocabulary") != NULL);
    tp_sentiment_result_free(&r);
    tp_model_free(m);

    /* @revision by commit hash, and clear errors */
    char id[256];
    snprintf(id, sizeof id, "tpipe-test/tiny-seqcls@%s", commit);
    m = enc_load(id, NULL);
    tp_model_free(m);
    m = NULL;
    CHECK(tp_model_load("tpipe-test/not-there", NULL, &m, &err) == TP_ERR_NOT_FOUND);
    CHECK(m == NULL && strstr(err.message, "tpipe-test/not-there") != NULL);
    CHECK(tp_model_load("tpipe-test/tiny-seqcls@nope", NULL, &m, &err) == TP_ERR_NOT_FOUND);
    CHECK(strstr(err.message, "nope") != NULL);
    CHECK(tp_model_load("/no/such/folder", NULL, &m, &err) == TP_ERR_NOT_FOUND);
    tiny_rmtree(cache);
    return tp_test_exit();
}
