/*
 * test_bf16.c — the bf16 compute mode of ModernBERT on the golden cases:
 * every logit close to the float64-reference golden value within a bf16
 * tolerance (activations are rounded to bf16 before every matrix product, so
 * about 3 significant digits survive), most argmaxes equal, and the packed
 * ragged batch bit-identical to the single runs (batch invariance holds in
 * bf16 too). On a CPU without AVX512_BF16 the mode falls back to f32, and the
 * same checks still hold.
 */
#include "test_util.h"

#include "core/core.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "models/model.h"

#include <cjson/cJSON.h>

/* bf16 tolerance (logits here reach ~15; bf16 keeps 8 mantissa bits, and the
 * rounding of every matrix input adds up over the layers and the MLM head): |got - want| <= ATOL +
 * RTOL |want| */
#define BF16_ATOL 0.25
#define BF16_RTOL 0.05

static float *run(const tp_net *net, const int32_t *ids, const int32_t *cu, size_t S, size_t T) {
    bool mlm = net->head == TP_ENC_HEAD_MLM;
    int32_t *rows = malloc(T * sizeof *rows);
    for (size_t t = 0; t < T; t++)
        rows[t] = (int32_t)t;
    size_t n_out = mlm ? T * (size_t)net->vocab_size : S * (size_t)net->num_labels;
    float *out = malloc(n_out * sizeof *out);
    tp_enc_batch b = {.ids = ids,
                      .cu_seqlens = cu,
                      .n_seqs = S,
                      .n_tokens = T,
                      .mlm_rows = rows,
                      .n_mlm_rows = mlm ? T : 0,
                      .mlm_logits = mlm ? out : NULL,
                      .cls_logits = mlm ? NULL : out};
    tp_arena a = {0};
    tp_error err;
    CHECK(tp_arena_init(&a, net->enc->scratch_bytes(net, T, S, mlm ? T : 0), &err) == TP_OK);
    CHECK(net->enc->forward(net, &b, &a, NULL, &err) == TP_OK);
    tp_arena_free(&a);
    free(rows);
    return out;
}

static void check_case(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "golden/%s", name);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", tp_test_data(rel));
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    tp_json_doc cfg;
    tp_st_model *st = NULL;
    tp_net *net = NULL;
    tp_error err;
    if (tp_json_load(path, &cfg, &err) != TP_OK) {
        printf("SKIP: %s\n", err.message);
        exit(0);
    }
    CHECK(tp_st_open(dir, &st, &err) == TP_OK);
    tp_net_load_args la = {.dir = dir, .config = &cfg, .st = st, .compute = TP_COMPUTE_BF16};
    CHECK(tp_net_load(&la, &net, &err) == TP_OK);
    snprintf(path, sizeof path, "%s/golden.json", dir);
    char *text = NULL;
    size_t len = 0;
    CHECK(tp_read_file(path, &text, &len, &err) == TP_OK);
    cJSON *g = cJSON_Parse(text);
    free(text);
    bool mlm = net->head == TP_ENC_HEAD_MLM;
    size_t per = mlm ? (size_t)net->vocab_size : (size_t)net->num_labels;
    double worst = 0, worst_abs = 0, worst_want = 0;
    size_t argmax_same = 0, argmax_total = 0;
    const cJSON *group;
    cJSON_ArrayForEach(group, cJSON_GetObjectItem(g, "groups")) {
        const cJSON *items = cJSON_GetObjectItem(group, "items");
        size_t S = (size_t)cJSON_GetArraySize(items), T = 0;
        int32_t *cu = malloc((S + 1) * sizeof *cu);
        int32_t *ids = malloc(4096 * sizeof *ids);
        cu[0] = 0;
        for (size_t s = 0; s < S; s++) {
            const cJSON *ii = cJSON_GetObjectItem(cJSON_GetArrayItem(items, (int)s), "input_ids");
            for (int t = 0; t < cJSON_GetArraySize(ii); t++)
                ids[T++] = cJSON_GetArrayItem(ii, t)->valueint;
            cu[s + 1] = (int32_t)T;
        }
        float *packed = run(net, ids, cu, S, T);
        for (size_t s = 0; s < S; s++) {
            int32_t one[2] = {0, cu[s + 1] - cu[s]};
            float *single = run(net, ids + cu[s], one, 1, (size_t)one[1]);
            size_t rows = mlm ? (size_t)one[1] : 1;
            const float *pk = packed + (mlm ? (size_t)cu[s] : s) * per;
            CHECK_MSG(memcmp(single, pk, rows * per * sizeof(float)) == 0,
                      "%s: packed != single for item %zu", name, s);
            const cJSON *it = cJSON_GetArrayItem(items, (int)s);
            const cJSON *lg = cJSON_GetObjectItem(it, "logits");
            for (size_t r = 0; r < rows; r++) {
                const cJSON *row = mlm ? cJSON_GetArrayItem(lg, (int)r) : lg;
                size_t best = 0;
                for (size_t j = 0; j < per; j++) {
                    double want = cJSON_GetArrayItem(row, (int)j)->valuedouble;
                    double d =
                        fabs(single[r * per + j] - want) / (BF16_ATOL + BF16_RTOL * fabs(want));
                    if (d > worst) {
                        worst = d;
                        worst_abs = fabs(single[r * per + j] - want);
                        worst_want = want;
                    }
                    if (single[r * per + j] > single[r * per + best])
                        best = j;
                }
                const cJSON *am = cJSON_GetObjectItem(it, "argmax");
                int want_am = mlm ? cJSON_GetArrayItem(am, (int)r)->valueint : am->valueint;
                argmax_same += (int)best == want_am;
                argmax_total++;
            }
            free(single);
        }
        free(packed);
        free(cu);
        free(ids);
    }
    printf("%s: worst |error| / tolerance %.3f (|error| %.4f at golden %.4f); argmax equal %zu "
           "of %zu\n",
           name, worst, worst_abs, worst_want, argmax_same, argmax_total);
    CHECK_MSG(worst <= 1.0, "%s: a bf16 logit is outside the tolerance", name);
    CHECK(argmax_same * 10 >= argmax_total * 9);
    cJSON_Delete(g);
    tp_net_free(net);
    tp_st_close(st);
    tp_json_free(&cfg);
}

int main(void) {
    check_case("modernbert_mlm");
    check_case("modernbert_seqcls_mean");
    check_case("modernbert_seqcls_cls_bias");
    return tp_test_exit();
}
