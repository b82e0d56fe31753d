/*
 * test_gen_loop.c — the generation loop, KV cache and sampler on the tiny golden
 * decoders (tests/data/golden, token ids only: no tokenizer needed).
 *
 *   - batch invariance: greedy and seeded-sampling outputs of a batch are the
 *     same token for token as each item run alone (batches of 1, 3, 16, mixed
 *     prompt lengths and max_new_tokens, items ending at different steps), also
 *     with 2 slots (continuous batching refills) and small prefill chunks;
 *   - partial failure: bad items in the middle fail alone, neighbours intact;
 *   - empty batch;
 *   - KV budget: a batch whose items do not fit together completes with the
 *     same tokens and a peak below the budget; an item that cannot fit alone
 *     fails alone with TP_ERR_OUT_OF_MEMORY;
 *   - sliding-window layers hand blocks back (peak KV of a long Gemma3
 *     generation stays below what a full cache would hold);
 *   - the context limit ends generation with finish LENGTH;
 *   - sampler semantics on a small vocabulary (greedy, top-k incl. ties,
 *     top-p, min-p, repetition penalty, the distribution, seeding).
 */
#include "batch/generate.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "io/st_write.h"
#include "test_util.h"

#include <unistd.h>

typedef struct loaded {
    tp_json_doc cfg;
    tp_st_model *st;
    tp_net *net;
} loaded;

static int load_case(const char *name, loaded *L) {
    memset(L, 0, sizeof *L);
    char dir[4200], path[4300], rel[128];
    snprintf(rel, sizeof rel, "golden/%s", name);
    snprintf(dir, sizeof dir, "%s", tp_test_data(rel));
    snprintf(path, sizeof path, "%s/config.json", dir);
    tp_error err;
    if (tp_json_load(path, &L->cfg, &err) || tp_st_open(dir, &L->st, &err)) {
        fprintf(stderr, "load %s: %s\n", name, err.message);
        return 1;
    }
    tp_net_load_args a = {.dir = dir, .config = &L->cfg, .st = L->st, .compute = TP_COMPUTE_F32};
    if (tp_net_load(&a, &L->net, &err)) {
        fprintf(stderr, "load %s: %s\n", name, err.message);
        return 1;
    }
    return 0;
}

static void unload(loaded *L) {
    tp_net_free(L->net);
    tp_st_close(L->st);
    tp_json_free(&L->cfg);
}

static uint64_t lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

#define MAXP 48

typedef struct itemset {
    size_t n;
    tp_gen_item items[32];
    int32_t prompts[32][MAXP];
    int32_t stop[2];
} itemset;

static void make_items(itemset *s, size_t n, int64_t vocab, bool sample, uint64_t seed) {
    memset(s, 0, sizeof *s);
    s->n = n;
    s->stop[0] = 106; /* an eos id of the golden configs */
    uint64_t r = seed;
    for (size_t i = 0; i < n; i++) {
        int len = 1 + (int)(lcg(&r) % (MAXP - 1));
        for (int j = 0; j < len; j++)
            s->prompts[i][j] = 3 + (int32_t)(lcg(&r) % (uint64_t)(vocab - 3));
        tp_gen_item *it = &s->items[i];
        it->prompt = s->prompts[i];
        it->n_prompt = len;
        it->max_new_tokens = 1 + (int)(lcg(&r) % 24);
        it->stop_ids = s->stop;
        it->n_stop_ids = 1;
        it->sampling = (tp_sampling){.temperature = 0, .top_p = 1, .repetition_penalty = 1};
        if (sample)
            it->sampling = (tp_sampling){.temperature = 0.9f,
                                         .top_k = 40,
                                         .top_p = 0.95f,
                                         .min_p = 0.02f,
                                         .repetition_penalty = 1.1f,
                                         .repetition_window = 16,
                                         .seed = 1000 + i};
    }
}

static int same_output(const tp_gen_output *a, const tp_gen_output *b) {
    return a->status == b->status && a->finish == b->finish && a->n_tokens == b->n_tokens &&
           (a->n_tokens == 0 || !memcmp(a->tokens, b->tokens, (size_t)a->n_tokens * 4));
}

static void free_outs(tp_gen_output *o, size_t n) {
    for (size_t i = 0; i < n; i++)
        tp_gen_output_free(&o[i]);
}

static void test_invariance(const loaded *L, tp_pool *pool, const char *name) {
    for (int sample = 0; sample < 2; sample++) {
        size_t sizes[] = {1, 3, 16};
        for (size_t si = 0; si < 3; si++) {
            itemset s;
            make_items(&s, sizes[si], L->net->vocab_size, sample, 42 + si);
            tp_gen_output alone[32], batch[32];
            tp_error err;
            tp_gen_config c1 = {.pool = pool};
            for (size_t i = 0; i < s.n; i++)
                CHECK(tp_generate_run(L->net, &c1, &s.items[i], 1, NULL, &alone[i], NULL, &err) ==
                      TP_OK);
            tp_gen_config cfgs[3] = {
                {.pool = pool},
                {.pool = pool, .max_seqs = 2, .block_size = 4},
                {.pool = NULL, .max_seqs = 5, .max_step_tokens = 8, .block_size = 8},
            };
            for (int c = 0; c < 3; c++) {
                tp_gen_run_stats rs;
                CHECK(tp_generate_run(L->net, &cfgs[c], s.items, s.n, NULL, batch, &rs, &err) ==
                      TP_OK);
                int min_len = 1 << 30, max_len = 0;
                for (size_t i = 0; i < s.n; i++) {
                    CHECK_MSG(batch[i].status == TP_OK, "%s", batch[i].err.message);
                    CHECK_MSG(same_output(&alone[i], &batch[i]),
                              "%s: %s batch of %zu (config %d): item %zu differs from alone", name,
                              sample ? "sampled" : "greedy", s.n, c, i);
                    if (batch[i].n_tokens < min_len)
                        min_len = batch[i].n_tokens;
                    if (batch[i].n_tokens > max_len)
                        max_len = batch[i].n_tokens;
                }
                if (s.n >= 3)
                    CHECK_MSG(min_len < max_len, "items should end at different steps");
                free_outs(batch, s.n);
            }
            free_outs(alone, s.n);
        }
    }
}

static void test_partial_failure(const loaded *L, tp_pool *pool) {
    itemset s;
    make_items(&s, 7, L->net->vocab_size, false, 7);
    int32_t bad_id[3] = {5, (int32_t)L->net->vocab_size, 7};
    s.items[2].n_prompt = 0; /* empty prompt */
    s.items[4].prompt = bad_id;
    s.items[4].n_prompt = 3;
    s.items[5].max_new_tokens = -1;
    tp_gen_output out[7], alone;
    tp_error err;
    tp_gen_config c = {.pool = pool, .max_seqs = 3};
    CHECK(tp_generate_run(L->net, &c, s.items, 7, NULL, out, NULL, &err) == TP_OK);
    CHECK_EQ_INT(out[2].status, TP_ERR_INPUT);
    CHECK_EQ_INT(out[4].status, TP_ERR_INPUT);
    CHECK_EQ_INT(out[5].status, TP_ERR_INVALID_ARGUMENT);
    CHECK_MSG(strstr(out[4].err.message, "item 4") && strstr(out[4].err.message, "vocabulary"),
              "%s", out[4].err.message);
    CHECK_EQ_INT(out[4].err.item, 4);
    size_t good[] = {0, 1, 3, 6};
    for (size_t k = 0; k < 4; k++) {
        size_t i = good[k];
        CHECK(tp_generate_run(L->net, &c, &s.items[i], 1, NULL, &alone, NULL, &err) == TP_OK);
        CHECK_MSG(out[i].status == TP_OK && same_output(&out[i], &alone),
                  "good item %zu changed by bad neighbours", i);
        tp_gen_output_free(&alone);
    }
    free_outs(out, 7);
    /* Empty batch: success, nothing touched. */
    CHECK(tp_generate_run(L->net, &c, NULL, 0, NULL, NULL, NULL, &err) == TP_OK);
}

static void test_kv_budget(const loaded *L, tp_pool *pool) {
    itemset s;
    make_items(&s, 16, L->net->vocab_size, true, 99);
    tp_gen_output free_run[16], tight[16];
    tp_error err;
    tp_gen_config c = {.pool = pool, .block_size = 8};
    CHECK(tp_generate_run(L->net, &c, s.items, 16, NULL, free_run, NULL, &err) == TP_OK);
    size_t biggest = 0;
    for (size_t i = 0; i < 16; i++) {
        size_t need = tp_kv_blocks_needed(
            L->net, 8, s.items[i].n_prompt + s.items[i].max_new_tokens, s.items[i].n_prompt);
        if (need > biggest)
            biggest = need;
    }
    size_t bb = tp_kv_block_bytes(L->net, 8);
    c.kv_budget_bytes = biggest * bb * 5 / 2; /* two items at a time at most */
    tp_gen_run_stats rs;
    CHECK(tp_generate_run(L->net, &c, s.items, 16, NULL, tight, &rs, &err) == TP_OK);
    for (size_t i = 0; i < 16; i++)
        CHECK_MSG(tight[i].status == TP_OK && same_output(&free_run[i], &tight[i]),
                  "item %zu differs under a tight KV budget", i);
    CHECK_MSG(rs.kv_peak_bytes <= c.kv_budget_bytes, "peak %zu > budget %zu", rs.kv_peak_bytes,
              c.kv_budget_bytes);
    CHECK(rs.kv_pool_bytes <= c.kv_budget_bytes);
    free_outs(tight, 16);

    /* One item far too big for the budget fails alone. */
    s.items[3].max_new_tokens = 4000;
    CHECK(tp_generate_run(L->net, &c, s.items, 16, NULL, tight, &rs, &err) == TP_OK);
    CHECK_EQ_INT(tight[3].status, TP_ERR_OUT_OF_MEMORY);
    CHECK_MSG(strstr(tight[3].err.message, "KV"), "%s", tight[3].err.message);
    for (size_t i = 0; i < 16; i++)
        if (i != 3)
            CHECK(tight[i].status == TP_OK && same_output(&free_run[i], &tight[i]));
    free_outs(tight, 16);
    free_outs(free_run, 16);
}

static void test_sliding_blocks(tp_pool *pool) {
    loaded G;
    if (load_case("gemma3_layer_types_softcap", &G)) {
        CHECK(0);
        return;
    }
    int32_t prompt[5] = {2, 10, 11, 12, 13};
    tp_gen_item it = {
        .prompt = prompt,
        .n_prompt = 5,
        .max_new_tokens = 200,
        .sampling = {.temperature = 1.0f, .top_p = 1, .repetition_penalty = 1, .seed = 3}};
    tp_gen_output o;
    tp_gen_run_stats rs;
    tp_error err;
    tp_gen_config c = {.pool = pool, .block_size = 4};
    CHECK(tp_generate_run(G.net, &c, &it, 1, NULL, &o, &rs, &err) == TP_OK);
    CHECK_EQ_INT(o.status, TP_OK);
    int len = 5 + o.n_tokens;
    size_t bb = tp_kv_block_bytes(G.net, 4);
    /* 1 full layer keeps everything; 2 sliding layers (W = 12) keep <= 5 blocks. */
    size_t full_cache = 3 * (size_t)((len + 3) / 4) * bb;
    size_t bound = ((size_t)((len + 3) / 4) + 2 * 5) * bb;
    CHECK_MSG(rs.kv_peak_bytes <= bound && rs.kv_peak_bytes < full_cache,
              "sliding peak %zu bytes, bound %zu, full cache %zu", rs.kv_peak_bytes, bound,
              full_cache);
    tp_gen_output_free(&o);
    unload(&G);
}

static void test_context_limit(const loaded *L, tp_pool *pool) {
    int ctx = (int)L->net->max_positions;
    int32_t *p = malloc((size_t)ctx * sizeof *p);
    for (int i = 0; i < ctx; i++)
        p[i] = 5 + i % 50;
    tp_gen_item it = {.prompt = p,
                      .n_prompt = ctx,
                      .max_new_tokens = 4,
                      .sampling = {.temperature = 0, .top_p = 1, .repetition_penalty = 1}};
    tp_gen_output o;
    tp_error err;
    tp_gen_config c = {.pool = pool};
    CHECK(tp_generate_run(L->net, &c, &it, 1, NULL, &o, NULL, &err) == TP_OK);
    CHECK_EQ_INT(o.status, TP_ERR_TOO_LONG);
    free(p);
}

/* Gemma3ForConditionalGeneration: the same text weights under
 * "language_model.model." with the config in "text_config" and a vision tower
 * beside them must give the same tokens as the Gemma3ForCausalLM original. */
static void test_conditional_generation(const loaded *L, tp_pool *pool) {
    char dir[] = "/tmp/tp_gemma3_cg_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    size_t n = tp_st_count(L->st);
    tp_st_wtensor *wt = calloc(n + 1, sizeof *wt);
    char **names = calloc(n, sizeof *names);
    float vision[4] = {1, 2, 3, 4};
    for (size_t i = 0; i < n; i++) {
        const tp_st_tensor *t = tp_st_at(L->st, i);
        names[i] = malloc(strlen(t->name) + 32);
        sprintf(names[i], "language_model.%s", t->name);
        wt[i].name = names[i];
        wt[i].dtype = t->dtype;
        wt[i].n_dims = t->n_dims;
        memcpy(wt[i].shape, t->shape, sizeof wt[i].shape);
        wt[i].data = t->data;
    }
    wt[n] = (tp_st_wtensor){.name = "vision_tower.vision_model.post_layernorm.weight",
                            .dtype = TP_DTYPE_F32,
                            .n_dims = 1,
                            .shape = {4},
                            .data = vision};
    char path[128];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    tp_error err;
    CHECK(tp_st_write(path, wt, n + 1, NULL, NULL, &err) == TP_OK);
    cJSON *root = cJSON_CreateObject();
    cJSON *tc = cJSON_Duplicate(L->cfg.root, 1);
    cJSON_DeleteItemFromObject(tc, "architectures");
    cJSON_AddItemToObject(
        root, "architectures",
        cJSON_CreateStringArray((const char *[]){"Gemma3ForConditionalGeneration"}, 1));
    cJSON_AddStringToObject(root, "model_type", "gemma3");
    cJSON_AddItemToObject(root, "text_config", tc);
    cJSON_AddItemToObject(root, "vision_config", cJSON_CreateObject());
    char *txt = cJSON_Print(root);
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    fputs(txt, f);
    fclose(f);
    free(txt);
    cJSON_Delete(root);

    loaded C;
    memset(&C, 0, sizeof C);
    CHECK(tp_json_load(path, &C.cfg, &err) == TP_OK);
    CHECK(tp_st_open(dir, &C.st, &err) == TP_OK);
    tp_net_load_args a = {.dir = dir, .config = &C.cfg, .st = C.st, .compute = TP_COMPUTE_F32};
    tp_status st = tp_net_load(&a, &C.net, &err);
    CHECK_MSG(st == TP_OK, "%s", err.message);
    if (st == TP_OK) {
        itemset s;
        make_items(&s, 3, L->net->vocab_size, true, 5);
        tp_gen_output o1[3], o2[3];
        tp_gen_config c = {.pool = pool};
        CHECK(tp_generate_run(L->net, &c, s.items, 3, NULL, o1, NULL, &err) == TP_OK);
        CHECK(tp_generate_run(C.net, &c, s.items, 3, NULL, o2, NULL, &err) == TP_OK);
        for (int i = 0; i < 3; i++)
            CHECK_MSG(same_output(&o1[i], &o2[i]), "conditional-generation layout: item %d", i);
        free_outs(o1, 3);
        free_outs(o2, 3);
    }
    unload(&C);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(wt);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/config.json", dir);
    unlink(path);
    rmdir(dir);
}

/* ---- sampler ---- */

static void test_sampler(void) {
    tp_sampler_scratch s;
    tp_error err;
    CHECK(tp_sampler_scratch_init(&s, 6, &err) == TP_OK);
    const float base[6] = {1, 2, 3, 4, 5, 6};
    float lg[6];
    tp_rng rng;
    tp_rng_seed(&rng, 1);
    tp_sampling greedy = {.temperature = 0, .top_p = 1, .repetition_penalty = 1};
    memcpy(lg, base, sizeof lg);
    CHECK_EQ_INT(tp_sample(lg, 6, &greedy, NULL, 0, &rng, &s), 5);
    /* Repetition penalty: 6 / 100 < 5, so 4 wins; the history repeats 5 twice
     * (penalised once) and holds -1/out-of-range ids (ignored). */
    tp_sampling rp = greedy;
    rp.repetition_penalty = 100;
    int32_t hist[4] = {5, 5, 99, -1};
    memcpy(lg, base, sizeof lg);
    CHECK_EQ_INT(tp_sample(lg, 6, &rp, hist, 4, &rng, &s), 4);
    CHECK(fabsf(lg[5] - 0.06f) < 1e-6f);
    /* Negative logits are multiplied. */
    float neg[3] = {-1, -2, -1.5f};
    int32_t h0[1] = {0};
    rp.repetition_penalty = 3;
    CHECK_EQ_INT(tp_sample(neg, 3, &rp, h0, 1, &rng, &s), 2);
    CHECK(neg[0] == -3.0f);
    /* Window: only the last token is penalised. */
    int32_t h2[2] = {5, 0};
    rp.repetition_penalty = 100;
    rp.repetition_window = 1;
    memcpy(lg, base, sizeof lg);
    CHECK_EQ_INT(tp_sample(lg, 6, &rp, h2, 2, &rng, &s), 5);

    tp_sampling smp = {.temperature = 1, .top_p = 1, .repetition_penalty = 1};
    int counts[6] = {0};
    const int N = 20000;
    for (int k = 0; k < N; k++) {
        memcpy(lg, base, sizeof lg);
        counts[tp_sample(lg, 6, &smp, NULL, 0, &rng, &s)]++;
    }
    double z = 0;
    for (int i = 0; i < 6; i++)
        z += exp(base[i]);
    for (int i = 0; i < 6; i++)
        CHECK_MSG(fabs(counts[i] / (double)N - exp(base[i]) / z) < 0.015, "token %d: %d draws", i,
                  counts[i]);
    /* top_k = 2: only 4 and 5. */
    smp.top_k = 2;
    for (int k = 0; k < 500; k++) {
        memcpy(lg, base, sizeof lg);
        int t = tp_sample(lg, 6, &smp, NULL, 0, &rng, &s);
        CHECK(t == 4 || t == 5);
    }
    /* top_k keeps ties with the k-th value. */
    const float tie[4] = {1, 3, 3, 0};
    int seen[4] = {0};
    smp.top_k = 1;
    for (int k = 0; k < 400; k++) {
        float t4[4];
        memcpy(t4, tie, sizeof t4);
        seen[tp_sample(t4, 4, &smp, NULL, 0, &rng, &s)]++;
    }
    CHECK(seen[1] > 0 && seen[2] > 0 && seen[0] == 0 && seen[3] == 0);
    /* top_p = 0.5: p(5) = 0.63 alone reaches it. min_p = 0.5: p(4)/p(5) = 0.37 dropped. */
    smp.top_k = 0;
    smp.top_p = 0.5f;
    for (int k = 0; k < 300; k++) {
        memcpy(lg, base, sizeof lg);
        CHECK_EQ_INT(tp_sample(lg, 6, &smp, NULL, 0, &rng, &s), 5);
    }
    smp.top_p = 0.7f; /* 0.63 < 0.7: 4 joins */
    int saw4 = 0;
    for (int k = 0; k < 300; k++) {
        memcpy(lg, base, sizeof lg);
        int t = tp_sample(lg, 6, &smp, NULL, 0, &rng, &s);
        CHECK(t == 4 || t == 5);
        saw4 += t == 4;
    }
    CHECK(saw4 > 0);
    smp.top_p = 1;
    smp.min_p = 0.5f;
    for (int k = 0; k < 300; k++) {
        memcpy(lg, base, sizeof lg);
        CHECK_EQ_INT(tp_sample(lg, 6, &smp, NULL, 0, &rng, &s), 5);
    }
    /* Same seed, same draws. */
    tp_sampling t1 = {.temperature = 2, .top_p = 1, .repetition_penalty = 1};
    tp_rng a, b;
    tp_rng_seed(&a, 77);
    tp_rng_seed(&b, 77);
    for (int k = 0; k < 100; k++) {
        float l1[6], l2[6];
        memcpy(l1, base, sizeof l1);
        memcpy(l2, base, sizeof l2);
        CHECK(tp_sample(l1, 6, &t1, NULL, 0, &a, &s) == tp_sample(l2, 6, &t1, NULL, 0, &b, &s));
    }
    tp_sampler_scratch_free(&s);
}

/* ---- KV cache ---- */

static void test_kv_cache(const loaded *L) {
    tp_kv_cache *c = NULL;
    tp_error err;
    CHECK(tp_kv_cache_create(L->net, 4, 10, &c, &err) == TP_OK);
    tp_kv_seq s1, s2;
    CHECK(tp_kv_seq_init(c, &s1, 12, 8, &err) == TP_OK);
    CHECK_EQ_INT(tp_kv_available(c), 2);
    CHECK(tp_kv_seq_init(c, &s2, 12, 3, &err) == TP_ERR_OUT_OF_MEMORY);
    /* qwen3_tied: 3 full layers; 8 tokens = 2 blocks per layer = 6 blocks. */
    CHECK(tp_kv_seq_grow(c, &s1, 8, &err) == TP_OK);
    CHECK_EQ_INT(s1.held, 6);
    tp_kv_seq_advance(c, &s1, 8);
    CHECK_EQ_INT(s1.held, 6);                                   /* full layers never hand back */
    CHECK(tp_kv_seq_grow(c, &s1, 12, &err) == TP_ERR_INTERNAL); /* 9 > 8 reserved */
    tp_kv_seq_release(c, &s1);
    CHECK_EQ_INT(tp_kv_available(c), 10);
    CHECK_EQ_INT(tp_kv_peak_blocks(c), 6);
    tp_kv_cache_free(c);
}

int main(void) {
    tp_error err;
    tp_pool *pool = tp_pool_create(2, &err);
    test_sampler();
    const char *cases[] = {"qwen3_tied", "qwen3_untied_bf16", "gemma3_pattern_linear_rope",
                           "gemma3_layer_types_softcap"};
    for (int k = 0; k < 4; k++) {
        loaded L;
        if (load_case(cases[k], &L)) {
            CHECK(0);
            continue;
        }
        test_invariance(&L, pool, cases[k]);
        if (k == 0) {
            test_partial_failure(&L, pool);
            test_kv_budget(&L, pool);
            test_kv_cache(&L);
        }
        if (k == 3)
            test_context_limit(&L, pool);
        if (k == 2)
            test_conditional_generation(&L, pool);
        unload(&L);
    }
    test_sliding_blocks(pool);
    tp_pool_destroy(pool);
    return tp_test_exit();
}
