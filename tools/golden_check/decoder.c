/*
 * decoder.c — golden checks for causal_lm cases (Qwen3, Gemma3): loads the case
 * folder through the model registry and checks, against golden.json:
 *
 *   1. last-prompt-token logits of every item, prefilled alone, within
 *      |got - want| <= GOLDEN_ATOL + GOLDEN_RTOL * |want| and same argmax;
 *   2. every group prefilled as ONE packed step: bit-identical to (1);
 *   3. items with all_logits: fed one token per step through the KV cache,
 *      logits at every position within tolerance (catches cache and window bugs);
 *   4. greedy continuations token for token (stop right after an eos id, or 16
 *      tokens) through the generation loop: each item alone, then each group as
 *      one continuous batch, also with 2 slots and 7-token prefill chunks so that
 *      slots are refilled and prompts are chunked.
 */
#include "golden_check.h"

#include "batch/generate.h"
#include "core/core.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "models/decoder.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_EOS 16

typedef struct dc_item {
    int32_t *ids;
    int n;
    const cJSON *last_logits;
    const cJSON *all_logits;
    int32_t *greedy;
    int n_greedy;
    char name[64];
} dc_item;

static int32_t *json_ids(const cJSON *a, int *n) {
    *n = 0;
    if (!cJSON_IsArray(a))
        return NULL;
    int m = cJSON_GetArraySize(a);
    int32_t *ids = malloc((size_t)(m ? m : 1) * sizeof *ids);
    if (!ids)
        return NULL;
    const cJSON *x;
    cJSON_ArrayForEach(x, a) {
        if (!cJSON_IsNumber(x)) {
            free(ids);
            return NULL;
        }
        ids[(*n)++] = (int32_t)x->valuedouble;
    }
    return ids;
}

static int compare_row(const float *got, const cJSON *want, size_t V, const char *what, char *why,
                       size_t why_len) {
    if (!cJSON_IsArray(want) || (size_t)cJSON_GetArraySize(want) != V) {
        snprintf(why, why_len, "%s: golden logits are not a list of %zu numbers", what, V);
        return 1;
    }
    size_t j = 0, gbest = 0, wbest = 0;
    double wmax = -INFINITY;
    const cJSON *x;
    cJSON_ArrayForEach(x, want) {
        double w = x->valuedouble, g = got[j];
        if (!(fabs(g - w) <= GOLDEN_ATOL + GOLDEN_RTOL * fabs(w))) {
            snprintf(why, why_len, "%s: logit %zu is %.9g, golden %.9g", what, j, g, w);
            return 1;
        }
        if (w > wmax) {
            wmax = w;
            wbest = j;
        }
        if (got[j] > got[gbest])
            gbest = j;
        j++;
    }
    if (gbest != wbest) {
        snprintf(why, why_len, "%s: argmax %zu, golden %zu", what, gbest, wbest);
        return 1;
    }
    return 0;
}

/* Prefills items[0..n) as one packed step; logits (n, V). */
static tp_status prefill(const tp_net *net, tp_pool *pool, const dc_item *items, size_t n,
                         float *logits, tp_error *err) {
    const int B = 16;
    size_t need = 0;
    int max_n = 0;
    for (size_t i = 0; i < n; i++) {
        need += tp_kv_blocks_needed(net, B, items[i].n, items[i].n);
        if (items[i].n > max_n)
            max_n = items[i].n;
    }
    tp_kv_cache *kv = NULL;
    tp_kv_seq *seqs = calloc(n, sizeof *seqs);
    tp_dec_seq *step = calloc(n, sizeof *step);
    tp_arena arena = {0};
    size_t T = 0;
    for (size_t i = 0; i < n; i++)
        T += (size_t)items[i].n;
    tp_status st = seqs && step ? tp_kv_cache_create(net, B, need, &kv, err)
                                : tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t i = 0; st == TP_OK && i < n; i++) {
        size_t r = tp_kv_blocks_needed(net, B, items[i].n, items[i].n);
        if ((st = tp_kv_seq_init(kv, &seqs[i], items[i].n, r, err)) ||
            (st = tp_kv_seq_grow(kv, &seqs[i], items[i].n, err)))
            break;
        step[i] = (tp_dec_seq){.ids = items[i].ids,
                               .n_new = items[i].n,
                               .pos0 = 0,
                               .k_blocks = seqs[i].k,
                               .v_blocks = seqs[i].v,
                               .max_blocks = seqs[i].max_blocks,
                               .block_size = B,
                               .logits = logits + i * (size_t)net->vocab_size};
    }
    if (st == TP_OK)
        st = tp_arena_init(&arena, net->dec->scratch_bytes(net, T, n, n), err);
    if (st == TP_OK)
        st = net->dec->forward(net, step, n, &arena, pool, err);
    for (size_t i = 0; seqs && kv && i < n; i++)
        if (seqs[i].k)
            tp_kv_seq_release(kv, &seqs[i]);
    tp_arena_free(&arena);
    tp_kv_cache_free(kv);
    free(seqs);
    free(step);
    return st;
}

/* Feeds an item one token per step and checks the logits at every position. */
static int check_all_logits(const tp_net *net, tp_pool *pool, const dc_item *it, char *why,
                            size_t why_len) {
    const int B = 4; /* small blocks: windows cross block edges */
    size_t V = (size_t)net->vocab_size;
    tp_error err;
    tp_kv_cache *kv = NULL;
    tp_kv_seq seq = {0};
    tp_arena arena = {0};
    float *lg = malloc(V * sizeof *lg);
    size_t need = tp_kv_blocks_needed(net, B, it->n, 1);
    int rc = 1;
    tp_status st = lg ? tp_kv_cache_create(net, B, need, &kv, &err)
                      : tp_fail(&err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    if (st == TP_OK)
        st = tp_kv_seq_init(kv, &seq, it->n, need, &err);
    if (st == TP_OK)
        st = tp_arena_init(&arena, net->dec->scratch_bytes(net, 1, 1, 1), &err);
    if (st != TP_OK) {
        snprintf(why, why_len, "%s: %s", it->name, err.message);
        goto done;
    }
    int p = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, it->all_logits) {
        if (p >= it->n)
            break;
        tp_dec_seq q = {.ids = &it->ids[p],
                        .n_new = 1,
                        .pos0 = p,
                        .k_blocks = seq.k,
                        .v_blocks = seq.v,
                        .max_blocks = seq.max_blocks,
                        .block_size = B,
                        .logits = lg};
        if ((st = tp_kv_seq_grow(kv, &seq, p + 1, &err)) ||
            (st = net->dec->forward(net, &q, 1, &arena, pool, &err))) {
            snprintf(why, why_len, "%s: step %d: %s", it->name, p, err.message);
            goto done;
        }
        tp_kv_seq_advance(kv, &seq, p + 1);
        char what[160];
        snprintf(what, sizeof what, "%s position %d (one token per step)", it->name, p);
        if (compare_row(lg, row, V, what, why, why_len))
            goto done;
        p++;
    }
    if (p != it->n) {
        snprintf(why, why_len, "%s: all_logits has %d rows, prompt %d tokens", it->name, p, it->n);
        goto done;
    }
    rc = 0;
done:
    if (seq.k)
        tp_kv_seq_release(kv, &seq);
    tp_arena_free(&arena);
    tp_kv_cache_free(kv);
    free(lg);
    return rc;
}

/* Runs items as one generation batch under cfg; compares with the greedy goldens. */
static int check_greedy(const tp_net *net, const tp_gen_config *cfg, const dc_item *items, size_t n,
                        const int32_t *eos, int n_eos, const char *label, char *why,
                        size_t why_len) {
    tp_gen_item *gi = calloc(n, sizeof *gi);
    tp_gen_output *go = calloc(n, sizeof *go);
    int rc = 1;
    if (!gi || !go) {
        snprintf(why, why_len, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        gi[i].prompt = items[i].ids;
        gi[i].n_prompt = items[i].n;
        gi[i].max_new_tokens = 16;
        gi[i].sampling = (tp_sampling){.temperature = 0, .top_p = 1, .repetition_penalty = 1};
        gi[i].stop_ids = eos;
        gi[i].n_stop_ids = n_eos;
    }
    tp_error err;
    tp_gen_run_stats stats;
    if (tp_generate_run(net, cfg, gi, n, NULL, go, &stats, &err) != TP_OK) {
        snprintf(why, why_len, "%s: %s", label, err.message);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const dc_item *it = &items[i];
        if (go[i].status != TP_OK) {
            snprintf(why, why_len, "%s: %s: %s", label, it->name, go[i].err.message);
            goto done;
        }
        int k = 0;
        while (k < go[i].n_tokens && k < it->n_greedy && go[i].tokens[k] == it->greedy[k])
            k++;
        if (k != go[i].n_tokens || k != it->n_greedy) {
            snprintf(why, why_len, "%s: %s: greedy token %d is %d, golden %d (%d vs %d tokens)",
                     label, it->name, k, k < go[i].n_tokens ? go[i].tokens[k] : -1,
                     k < it->n_greedy ? it->greedy[k] : -1, go[i].n_tokens, it->n_greedy);
            goto done;
        }
    }
    rc = 0;
done:
    for (size_t i = 0; go && i < n; i++)
        tp_gen_output_free(&go[i]);
    free(gi);
    free(go);
    return rc;
}

int golden_check_decoder(const char *case_dir, const cJSON *golden, char *why, size_t why_len) {
    tp_error err;
    tp_net_files files;
    memset(&files, 0, sizeof files);
    tp_net *net = NULL;
    tp_pool *pool = NULL;
    dc_item *items = NULL;
    size_t n_items = 0, cap = 0;
    float *lg = NULL, *lg2 = NULL;
    int rc = 1;
    int32_t eos[MAX_EOS];
    int n_eos = 0;

    /* The weights: the case folder, or --weights (e.g. a GGUF made from it). */
    tp_status st = tp_net_files_open(golden_weights ? golden_weights : case_dir, &files, &err);
    if (st == TP_OK) {
        tp_net_load_args a = tp_net_files_args(&files, TP_COMPUTE_F32);
        st = tp_net_load(&a, &net, &err);
    }
    if (st == TP_OK && net->kind != TP_NET_DECODER)
        st = tp_fail(&err, TP_ERR_FORMAT, "not a decoder model");
    if (st == TP_OK)
        pool = tp_pool_create(0, &err);
    if (st != TP_OK || !pool) {
        snprintf(why, why_len, "load: %s", err.message);
        goto done;
    }
    const size_t V = (size_t)net->vocab_size;

    /* EOS ids: golden details.generation.eos_token_ids, else config.json. */
    const cJSON *gen = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(golden, "details"), "generation");
    const cJSON *ge = cJSON_GetObjectItemCaseSensitive(gen, "eos_token_ids");
    const cJSON *x;
    cJSON_ArrayForEach(x, ge) {
        if (cJSON_IsNumber(x) && n_eos < MAX_EOS)
            eos[n_eos++] = (int32_t)x->valuedouble;
    }
    const tp_dec_hparams *hp = tp_decoder_hparams(net);
    if (n_eos == 0)
        for (int i = 0; i < hp->n_eos; i++)
            eos[n_eos++] = hp->eos_ids[i];

    /* Items by group. */
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(golden, "groups");
    size_t group_start[16], group_len[16], n_groups = 0;
    const cJSON *g;
    cJSON_ArrayForEach(g, groups) {
        if (n_groups == 16)
            break;
        const cJSON *gname = cJSON_GetObjectItemCaseSensitive(g, "name");
        group_start[n_groups] = n_items;
        const cJSON *it;
        int k = 0;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(g, "items")) {
            if (n_items == cap) {
                cap = cap ? 2 * cap : 16;
                dc_item *ni = realloc(items, cap * sizeof *ni);
                if (!ni) {
                    snprintf(why, why_len, "out of memory");
                    goto done;
                }
                items = ni;
            }
            dc_item *d = &items[n_items];
            memset(d, 0, sizeof *d);
            snprintf(d->name, sizeof d->name, "%s[%d]",
                     cJSON_IsString(gname) ? gname->valuestring : "?", k++);
            n_items++;
            d->ids = json_ids(cJSON_GetObjectItemCaseSensitive(it, "input_ids"), &d->n);
            d->greedy =
                json_ids(cJSON_GetObjectItemCaseSensitive(it, "greedy_new_tokens"), &d->n_greedy);
            d->last_logits = cJSON_GetObjectItemCaseSensitive(it, "last_logits");
            d->all_logits = cJSON_GetObjectItemCaseSensitive(it, "all_logits");
            if (!d->ids || d->n == 0 || !d->greedy || !d->last_logits) {
                snprintf(why, why_len,
                         "%s: golden item lacks input_ids, last_logits or "
                         "greedy_new_tokens",
                         d->name);
                goto done;
            }
        }
        group_len[n_groups] = n_items - group_start[n_groups];
        n_groups++;
    }
    if (n_items == 0) {
        snprintf(why, why_len, "golden.json has no items");
        goto done;
    }
    lg = malloc(n_items * V * sizeof *lg);
    lg2 = malloc(n_items * V * sizeof *lg2);
    if (!lg || !lg2) {
        snprintf(why, why_len, "out of memory");
        goto done;
    }
    /* 1. Each item alone. */
    for (size_t i = 0; i < n_items; i++) {
        if (prefill(net, pool, &items[i], 1, lg + i * V, &err) != TP_OK) {
            snprintf(why, why_len, "%s: prefill: %s", items[i].name, err.message);
            goto done;
        }
        char what[160];
        snprintf(what, sizeof what, "%s last-token logits", items[i].name);
        if (compare_row(lg + i * V, items[i].last_logits, V, what, why, why_len))
            goto done;
    }
    /* 2. Each group as one packed step, and all items together. */
    for (size_t gi = 0; gi <= n_groups; gi++) {
        size_t s0 = gi < n_groups ? group_start[gi] : 0;
        size_t len = gi < n_groups ? group_len[gi] : n_items;
        if (len == 0)
            continue;
        if (prefill(net, pool, &items[s0], len, lg2 + s0 * V, &err) != TP_OK) {
            snprintf(why, why_len, "packed prefill: %s", err.message);
            goto done;
        }
        if (memcmp(lg2 + s0 * V, lg + s0 * V, len * V * sizeof *lg)) {
            snprintf(why, why_len,
                     "packed prefill of %zu items is not bit-identical to single "
                     "prefills",
                     len);
            goto done;
        }
    }
    /* 3. Token-by-token through the cache where every position has goldens. */
    for (size_t i = 0; i < n_items; i++)
        if (items[i].all_logits && check_all_logits(net, pool, &items[i], why, why_len))
            goto done;
    /* 4. Greedy continuations: alone, per group, then constrained batching. */
    tp_gen_config gc = {.pool = pool};
    for (size_t i = 0; i < n_items; i++)
        if (check_greedy(net, &gc, &items[i], 1, eos, n_eos, "alone", why, why_len))
            goto done;
    for (size_t gi = 0; gi < n_groups; gi++)
        if (group_len[gi] > 1 && check_greedy(net, &gc, &items[group_start[gi]], group_len[gi], eos,
                                              n_eos, "batched group", why, why_len))
            goto done;
    tp_gen_config tight = {.pool = pool, .max_seqs = 2, .max_step_tokens = 7, .block_size = 4};
    if (check_greedy(net, &tight, items, n_items, eos, n_eos, "all items, 2 slots, 7-token steps",
                     why, why_len))
        goto done;
    rc = 0;
done:
    for (size_t i = 0; i < n_items; i++) {
        free(items[i].ids);
        free(items[i].greedy);
    }
    free(items);
    free(lg);
    free(lg2);
    tp_pool_destroy(pool);
    tp_net_free(net);
    tp_net_files_close(&files);
    return rc;
}
