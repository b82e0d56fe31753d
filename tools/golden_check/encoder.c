/*
 * encoder.c — golden checks for encoder cases (masked_lm and
 * sequence_classification): loads the case folder with the model registry,
 * runs every item of every group alone, then each group of several items as
 * ONE packed batch, and compares every logit with golden.json within
 * |got - want| <= GOLDEN_ATOL + GOLDEN_RTOL * |want|, argmax identical. The
 * packed run must also be bit-identical to the single runs (batch invariance).
 */
#include "golden_check.h"

#include "core/core.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "models/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct gc_item {
    int32_t *ids;
    size_t n;
    const cJSON *logits; /* masked_lm: [n][V]; classification: [L] */
    const cJSON *argmax; /* masked_lm: [n]; classification: int */
} gc_item;

/* Runs items[0..n_items) as one packed batch; out gets (sum n, V) MLM logits
 * or (n_items, L) classification logits. */
static tp_status run_packed(const tp_net *net, tp_pool *pool, const gc_item *items, size_t n_items,
                            float *out, tp_error *err) {
    size_t T = 0;
    for (size_t i = 0; i < n_items; i++)
        T += items[i].n;
    int32_t *ids = malloc(T * sizeof *ids);
    int32_t *cu = malloc((n_items + 1) * sizeof *cu);
    int32_t *rows = malloc(T * sizeof *rows);
    tp_arena arena = {0};
    tp_status st = TP_OK;
    if (!ids || !cu || !rows) {
        st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    cu[0] = 0;
    for (size_t i = 0; i < n_items; i++) {
        memcpy(ids + cu[i], items[i].ids, items[i].n * sizeof *ids);
        cu[i + 1] = cu[i] + (int32_t)items[i].n;
    }
    for (size_t t = 0; t < T; t++)
        rows[t] = (int32_t)t;
    bool mlm = net->head == TP_ENC_HEAD_MLM;
    tp_enc_batch b = {
        .ids = ids,
        .cu_seqlens = cu,
        .n_seqs = n_items,
        .n_tokens = T,
        .mlm_rows = mlm ? rows : NULL,
        .n_mlm_rows = mlm ? T : 0,
        .mlm_logits = mlm ? out : NULL,
        .cls_logits = mlm ? NULL : out,
    };
    size_t bytes = net->enc->scratch_bytes(net, T, n_items, mlm ? T : 0);
    if (!bytes) {
        st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "scratch size overflow");
        goto done;
    }
    st = tp_arena_init(&arena, bytes, err);
    if (st == TP_OK)
        st = net->enc->forward(net, &b, &arena, pool, err);
done:
    tp_arena_free(&arena);
    free(ids);
    free(cu);
    free(rows);
    return st;
}

/* Compares n floats with a JSON array of numbers. */
static int compare_row(const float *got, const cJSON *want, size_t n, const char *what, char *why,
                       size_t why_len) {
    if (!cJSON_IsArray(want) || (size_t)cJSON_GetArraySize(want) != n) {
        snprintf(why, why_len, "%s: golden row has %d values, model gives %zu", what,
                 cJSON_GetArraySize(want), n);
        return 1;
    }
    size_t j = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, want) {
        double w = v->valuedouble;
        double d = fabs((double)got[j] - w);
        if (!(d <= GOLDEN_ATOL + GOLDEN_RTOL * fabs(w))) {
            snprintf(why, why_len, "%s: logit %zu is %.9g, golden %.9g (diff %.3g)", what, j,
                     (double)got[j], w, d);
            return 1;
        }
        j++;
    }
    return 0;
}

static size_t argmax_f(const float *x, size_t n) {
    size_t best = 0;
    for (size_t j = 1; j < n; j++)
        if (x[j] > x[best])
            best = j;
    return best;
}

static int check_items(const tp_net *net, const gc_item *items, size_t n_items, const float *got,
                       const char *group, const char *mode, char *why, size_t why_len) {
    bool mlm = net->head == TP_ENC_HEAD_MLM;
    size_t V = (size_t)net->vocab_size, L = (size_t)net->num_labels;
    size_t off = 0;
    char what[160];
    for (size_t i = 0; i < n_items; i++) {
        if (mlm) {
            if (!cJSON_IsArray(items[i].logits) ||
                (size_t)cJSON_GetArraySize(items[i].logits) != items[i].n) {
                snprintf(why, why_len, "group %s item %zu: golden logits malformed", group, i);
                return 1;
            }
            for (size_t t = 0; t < items[i].n; t++) {
                snprintf(what, sizeof what, "group %s item %zu (%s) position %zu", group, i, mode,
                         t);
                const float *row = got + (off + t) * V;
                if (compare_row(row, cJSON_GetArrayItem(items[i].logits, (int)t), V, what, why,
                                why_len))
                    return 1;
                const cJSON *am = cJSON_GetArrayItem(items[i].argmax, (int)t);
                if (!cJSON_IsNumber(am) || (size_t)am->valueint != argmax_f(row, V)) {
                    snprintf(why, why_len, "%s: argmax %zu, golden %d", what, argmax_f(row, V),
                             am ? am->valueint : -1);
                    return 1;
                }
            }
            off += items[i].n;
        } else {
            snprintf(what, sizeof what, "group %s item %zu (%s)", group, i, mode);
            const float *row = got + i * L;
            if (compare_row(row, items[i].logits, L, what, why, why_len))
                return 1;
            if (!cJSON_IsNumber(items[i].argmax) ||
                (size_t)items[i].argmax->valueint != argmax_f(row, L)) {
                snprintf(why, why_len, "%s: argmax %zu, golden %d", what, argmax_f(row, L),
                         cJSON_IsNumber(items[i].argmax) ? items[i].argmax->valueint : -1);
                return 1;
            }
        }
    }
    return 0;
}

int golden_check_encoder(const char *case_dir, const cJSON *golden, char *why, size_t why_len) {
    tp_error err;
    tp_error_clear(&err);
    tp_json_doc cfg = {0};
    tp_st_model *st = NULL;
    tp_net *net = NULL;
    tp_pool *pool = NULL;
    gc_item *items = NULL;
    size_t n_items = 0;
    float *single = NULL, *packed = NULL;
    int rc = 1;
    char *cfg_path = tp_path_join(case_dir, "config.json");
    tp_status s = cfg_path ? tp_json_load(cfg_path, &cfg, &err) : TP_ERR_OUT_OF_MEMORY;
    free(cfg_path);
    if (s == TP_OK)
        s = tp_st_open(case_dir, &st, &err);
    if (s == TP_OK) {
        tp_net_load_args args = {
            .dir = case_dir, .config = &cfg, .st = st, .compute = TP_COMPUTE_F32};
        s = tp_net_load(&args, &net, &err);
    }
    if (s == TP_OK && net->kind != TP_NET_ENCODER)
        s = tp_fail(&err, TP_ERR_UNSUPPORTED, "not an encoder model");
    if (s == TP_OK)
        pool = tp_pool_create(0, &err);
    if (s != TP_OK || !pool) {
        snprintf(why, why_len, "load: %s", err.message);
        goto done;
    }
    const cJSON *task = cJSON_GetObjectItemCaseSensitive(golden, "task");
    bool want_mlm = cJSON_IsString(task) && !strcmp(task->valuestring, "masked_lm");
    if (want_mlm != (net->head == TP_ENC_HEAD_MLM) ||
        (!want_mlm && net->head != TP_ENC_HEAD_CLASSIFY)) {
        snprintf(why, why_len, "model head does not match task \"%s\"",
                 cJSON_IsString(task) ? task->valuestring : "?");
        goto done;
    }
    size_t V = (size_t)net->vocab_size, L = (size_t)net->num_labels;
    const cJSON *group;
    int n_groups = 0;
    cJSON_ArrayForEach(group, cJSON_GetObjectItemCaseSensitive(golden, "groups")) {
        const cJSON *gname = cJSON_GetObjectItemCaseSensitive(group, "name");
        const char *name = cJSON_IsString(gname) ? gname->valuestring : "?";
        const cJSON *jitems = cJSON_GetObjectItemCaseSensitive(group, "items");
        if (!cJSON_GetArraySize(jitems))
            continue;
        n_items = (size_t)cJSON_GetArraySize(jitems);
        items = calloc(n_items, sizeof *items);
        if (!items)
            goto oom;
        size_t T = 0, max_n = 0;
        for (size_t i = 0; i < n_items; i++) {
            const cJSON *it = cJSON_GetArrayItem(jitems, (int)i);
            const cJSON *ids = cJSON_GetObjectItemCaseSensitive(it, "input_ids");
            items[i].n = (size_t)cJSON_GetArraySize(ids);
            items[i].ids = malloc((items[i].n ? items[i].n : 1) * sizeof(int32_t));
            if (!items[i].ids)
                goto oom;
            for (size_t t = 0; t < items[i].n; t++)
                items[i].ids[t] = (int32_t)cJSON_GetArrayItem(ids, (int)t)->valueint;
            items[i].logits = cJSON_GetObjectItemCaseSensitive(it, "logits");
            items[i].argmax = cJSON_GetObjectItemCaseSensitive(it, "argmax");
            T += items[i].n;
            if (items[i].n > max_n)
                max_n = items[i].n;
        }
        size_t per = want_mlm ? V : L;
        size_t rows = want_mlm ? T : n_items;
        single = malloc(rows * per * sizeof(float));
        packed = malloc(rows * per * sizeof(float));
        if (!single || !packed)
            goto oom;
        /* each item alone */
        size_t off = 0;
        for (size_t i = 0; i < n_items; i++) {
            if (run_packed(net, pool, &items[i], 1, single + off * per, &err) != TP_OK) {
                snprintf(why, why_len, "group %s item %zu: %s", name, i, err.message);
                goto done;
            }
            off += want_mlm ? items[i].n : 1;
        }
        if (check_items(net, items, n_items, single, name, "alone", why, why_len))
            goto done;
        /* the whole group as one packed batch */
        if (n_items > 1) {
            if (run_packed(net, pool, items, n_items, packed, &err) != TP_OK) {
                snprintf(why, why_len, "group %s packed: %s", name, err.message);
                goto done;
            }
            if (check_items(net, items, n_items, packed, name, "packed", why, why_len))
                goto done;
            if (memcmp(single, packed, rows * per * sizeof(float)) != 0) {
                snprintf(why, why_len, "group %s: packed batch is not bit-identical to single runs",
                         name);
                goto done;
            }
        }
        for (size_t i = 0; i < n_items; i++)
            free(items[i].ids);
        free(items);
        items = NULL;
        free(single);
        free(packed);
        single = packed = NULL;
        n_groups++;
    }
    if (!n_groups) {
        snprintf(why, why_len, "golden.json has no groups");
        goto done;
    }
    rc = 0;
    goto done;
oom:
    snprintf(why, why_len, "out of memory");
done:
    if (items) {
        for (size_t i = 0; i < n_items; i++)
            free(items[i].ids);
        free(items);
    }
    free(single);
    free(packed);
    tp_pool_destroy(pool);
    tp_net_free(net);
    tp_st_close(st);
    tp_json_free(&cfg);
    return rc;
}
