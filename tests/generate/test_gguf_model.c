/*
 * test_gguf_model.c — decoders loaded from GGUF (src/io/gguf_model.c,
 * src/models/net_files.c) against the same checkpoints loaded from their
 * Hugging Face folders (tests/data/golden copies of ../shared/golden):
 *
 *   - each golden decoder is converted to GGUF (tests/generate/gguf_conv.h:
 *     F32 files keep F32, the BF16 case keeps BF16 matrices);
 *   - the hyper-parameters the decoder derives are identical field by field
 *     (except Gemma3's norm_plus_one, which the GGUF view folds into the
 *     stored weights), and the tensors are the same bytes;
 *   - logits of every golden prompt are bit-identical to the HF path, and so
 *     are greedy continuations run as one batch; golden_check --weights on
 *     the GGUF (build/golden_check) then checks the golden numbers, packed ==
 *     single and batched greedy continuations;
 *   - corrupt / incomplete GGUF files give load errors naming the file and
 *     the key or tensor.
 */
#include "batch/generate.h"
#include "convert/convert.h"
#include "gguf_conv.h"
#include "io/gguf.h"
#include "models/decoder.h"
#include "test_util.h"

#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const kCases[] = {"qwen3_tied", "qwen3_untied_bf16",
                                     "gemma3_pattern_linear_rope", "gemma3_layer_types_softcap"};

typedef struct loaded {
    tp_net_files f;
    tp_net *net;
} loaded;

static int load(const char *path, loaded *L, tp_error *err) {
    memset(L, 0, sizeof *L);
    if (tp_net_files_open(path, &L->f, err))
        return 1;
    tp_net_load_args a = tp_net_files_args(&L->f, TP_COMPUTE_F32);
    return tp_net_load(&a, &L->net, err) != TP_OK;
}

static void unload(loaded *L) {
    tp_net_free(L->net);
    tp_net_files_close(&L->f);
}

/* Logits after the last of ids[0..n), one sequence, fresh cache. */
static void logits_of(const tp_net *net, const int32_t *ids, int n, float *out) {
    const tp_dec_hparams *hp = tp_decoder_hparams(net);
    size_t KD = (size_t)(hp->n_kv_heads * hp->head_dim), L = (size_t)hp->n_layers;
    float **kb = calloc(L, sizeof *kb), **vb = calloc(L, sizeof *vb);
    for (size_t l = 0; l < L; l++) {
        kb[l] = calloc((size_t)n * KD, sizeof(float));
        vb[l] = calloc((size_t)n * KD, sizeof(float));
    }
    tp_dec_seq s = {.ids = ids,
                    .n_new = n,
                    .pos0 = 0,
                    .k_blocks = kb,
                    .v_blocks = vb,
                    .max_blocks = 1,
                    .block_size = n,
                    .logits = out};
    tp_arena ar;
    tp_error err;
    CHECK(tp_arena_init(&ar, net->dec->scratch_bytes(net, (size_t)n, 1, 1), &err) == TP_OK);
    CHECK(net->dec->forward(net, &s, 1, &ar, NULL, &err) == TP_OK);
    tp_arena_free(&ar);
    for (size_t l = 0; l < L; l++) {
        free(kb[l]);
        free(vb[l]);
    }
    free(kb);
    free(vb);
}

static int32_t *json_ids(const cJSON *a, int *n) {
    *n = cJSON_GetArraySize(a);
    int32_t *v = malloc(sizeof *v * (size_t)(*n ? *n : 1));
    int i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, a) v[i++] = (int32_t)x->valuedouble;
    return v;
}

static void compare_hparams(const char *c, const tp_dec_hparams *a, const tp_dec_hparams *b) {
    CHECK_MSG(a->family == b->family && a->vocab == b->vocab && a->hidden == b->hidden &&
                  a->n_layers == b->n_layers && a->n_heads == b->n_heads &&
                  a->n_kv_heads == b->n_kv_heads && a->head_dim == b->head_dim &&
                  a->inter == b->inter && a->max_pos == b->max_pos,
              "%s: dims differ", c);
    CHECK_MSG(!memcmp(&a->eps, &b->eps, sizeof a->eps) && a->rope_theta == b->rope_theta &&
                  a->rope_scale == b->rope_scale && a->rope_local_theta == b->rope_local_theta &&
                  a->rope_local_scale == b->rope_local_scale,
              "%s: eps/rope differ (theta %g/%g scale %g/%g local %g/%g)", c, a->rope_theta,
              b->rope_theta, a->rope_scale, b->rope_scale, a->rope_local_theta,
              b->rope_local_theta);
    CHECK_MSG(!memcmp(&a->attn_scale, &b->attn_scale, 4) &&
                  !memcmp(&a->final_softcap, &b->final_softcap, 4) &&
                  !memcmp(&a->embed_scale, &b->embed_scale, 4),
              "%s: attn_scale %.9g/%.9g softcap %g/%g", c, a->attn_scale, b->attn_scale,
              a->final_softcap, b->final_softcap);
    CHECK_MSG(a->sliding_window == b->sliding_window && a->sandwich_norms == b->sandwich_norms &&
                  a->attention_bias == b->attention_bias && a->tied == b->tied && a->act == b->act,
              "%s: window %d/%d tied %d/%d", c, a->sliding_window, b->sliding_window, a->tied,
              b->tied);
    for (int64_t l = 0; l < a->n_layers && l < b->n_layers; l++)
        CHECK_MSG(a->layer_sliding[l] == b->layer_sliding[l], "%s: layer %lld sliding", c,
                  (long long)l);
    /* HF Gemma3 computes 1 + w; the GGUF weights already hold it. */
    CHECK(a->norm_plus_one == (a->family == TP_DEC_GEMMA3));
    CHECK(!b->norm_plus_one);
    CHECK(a->bos_id == b->bos_id);
    CHECK_MSG(a->n_eos == b->n_eos && !memcmp(a->eos_ids, b->eos_ids, sizeof(int32_t) * 4),
              "%s: eos ids differ (%d vs %d)", c, a->n_eos, b->n_eos);
}

static void test_case(const char *c, const char *tmp) {
    char rel[128], dir[4200], gg[4300];
    snprintf(rel, sizeof rel, "golden/%s", c);
    snprintf(dir, sizeof dir, "%s", tp_test_data(rel));
    snprintf(gg, sizeof gg, "%s/%s.gguf", tmp, c);
    tp_error err;
    tp_status st = gguf_conv(dir, gg, TP_DTYPE_COUNT, &err);
    CHECK_MSG(st == TP_OK, "convert %s: %s", c, err.message);
    if (st)
        return;
    /* tp_model_info_get describes the GGUF as it describes the folder. */
    tp_model_info ih, ig;
    CHECK(tp_model_info_get(dir, &ih, &err) == TP_OK);
    CHECK_MSG(tp_model_info_get(gg, &ig, &err) == TP_OK, "%s", err.message);
    CHECK_MSG(!strcmp(ih.architecture, ig.architecture) && !strcmp(ih.model_type, ig.model_type) &&
                  !strcmp(ih.dtype, ig.dtype) && !strcmp(ih.weights_dtype, ig.weights_dtype) &&
                  ih.n_params == ig.n_params && ih.context_length == ig.context_length &&
                  ih.vocab_size == ig.vocab_size && ih.hidden_size == ig.hidden_size &&
                  ih.n_layers == ig.n_layers && ig.n_files == 1,
              "%s: info differs: %s/%s %s/%s %s/%s %lld/%lld", c, ih.architecture, ig.architecture,
              ih.model_type, ig.model_type, ih.dtype, ig.dtype, (long long)ih.n_params,
              (long long)ig.n_params);
    loaded H, G;
    if (load(dir, &H, &err) || load(gg, &G, &err)) {
        CHECK_MSG(0, "load %s: %s", c, err.message);
        return;
    }
    CHECK(G.f.gguf != NULL && H.f.gguf == NULL);
    const tp_dec_hparams *hh = tp_decoder_hparams(H.net), *hg = tp_decoder_hparams(G.net);
    compare_hparams(c, hh, hg);
    /* The matrices are the same bytes (GGUF keeps the checkpoint's dtype). */
    const tp_st_tensor *a = tp_st_find(H.f.st, "model.layers.0.self_attn.q_proj.weight");
    const tp_st_tensor *b = tp_st_find(G.f.st, "model.layers.0.self_attn.q_proj.weight");
    CHECK(a && b && a->dtype == b->dtype && a->n_dims == 2 && b->n_dims == 2 &&
          a->shape[0] == b->shape[0] && a->shape[1] == b->shape[1] && a->n_bytes == b->n_bytes &&
          !memcmp(a->data, b->data, a->n_bytes));

    /* Logits of every golden prompt: bit-identical. */
    char gpath[4300];
    snprintf(gpath, sizeof gpath, "%s/golden.json", dir);
    char *text = NULL;
    size_t len = 0;
    CHECK(tp_read_file(gpath, &text, &len, &err) == TP_OK);
    cJSON *golden = cJSON_ParseWithLength(text, len);
    tp_free(text);
    size_t V = (size_t)hh->vocab;
    float *la = malloc(V * sizeof(float)), *lb = malloc(V * sizeof(float));
    int n_items = 0, n_same = 0;
    tp_gen_item items[64];
    int32_t *prompts[64];
    const cJSON *grp, *it;
    cJSON_ArrayForEach(grp, cJSON_GetObjectItemCaseSensitive(golden, "groups")) {
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(grp, "items")) {
            int n;
            int32_t *ids = json_ids(cJSON_GetObjectItemCaseSensitive(it, "input_ids"), &n);
            logits_of(H.net, ids, n, la);
            logits_of(G.net, ids, n, lb);
            n_same += !memcmp(la, lb, V * sizeof(float));
            if (n_items < 64) {
                prompts[n_items] = ids;
                memset(&items[n_items], 0, sizeof items[n_items]);
                items[n_items].prompt = ids;
                items[n_items].n_prompt = n;
                items[n_items].max_new_tokens = 12;
                items[n_items].sampling.temperature = 0.0f; /* greedy */
                items[n_items].sampling.top_p = 1.0f;
                items[n_items].sampling.repetition_penalty = 1.0f;
                items[n_items].stop_ids = hh->eos_ids;
                items[n_items].n_stop_ids = hh->n_eos;
                n_items++;
            } else {
                free(ids);
            }
        }
    }
    CHECK_MSG(n_items > 5 && n_same == n_items, "%s: %d of %d prompts bit-identical", c, n_same,
              n_items);
    /* Greedy continuations of all prompts as one batch: same tokens. */
    tp_gen_output *oa = calloc((size_t)n_items, sizeof *oa),
                  *ob = calloc((size_t)n_items, sizeof *ob);
    tp_gen_config gc = {0};
    CHECK(tp_generate_run(H.net, &gc, items, (size_t)n_items, NULL, oa, NULL, &err) == TP_OK);
    CHECK(tp_generate_run(G.net, &gc, items, (size_t)n_items, NULL, ob, NULL, &err) == TP_OK);
    int same = 0;
    for (int i = 0; i < n_items; i++) {
        same += oa[i].status == TP_OK && ob[i].status == TP_OK &&
                oa[i].n_tokens == ob[i].n_tokens && oa[i].n_tokens > 0 &&
                !memcmp(oa[i].tokens, ob[i].tokens, sizeof(int32_t) * (size_t)oa[i].n_tokens);
        tp_gen_output_free(&oa[i]);
        tp_gen_output_free(&ob[i]);
        free(prompts[i]);
    }
    CHECK_MSG(same == n_items, "%s: %d of %d continuations identical", c, same, n_items);
    free(oa);
    free(ob);
    free(la);
    free(lb);
    cJSON_Delete(golden);
    unload(&H);
    unload(&G);
    printf("%s: %d prompts bit-identical to the safetensors path, %d continuations identical\n", c,
           n_same, same);

    /* The golden checks themselves, through build/golden_check --weights. */
    const char *build = getenv("TPIPE_BUILD");
    if (build) {
        char cmd[9000];
        snprintf(cmd, sizeof cmd, "'%s/golden_check' --weights '%s' '%s'", build, gg, dir);
        FILE *p = popen(cmd, "r");
        char line[2048] = "";
        int pass = 0;
        while (p && fgets(line, sizeof line, p)) {
            printf("golden_check on GGUF: %s", line);
            pass += !strncmp(line, "PASS ", 5);
        }
        int rc = p ? pclose(p) : -1;
        CHECK_MSG(rc == 0 && pass == 1, "%s: golden_check --weights failed", c);
    }
}

/* Load errors on broken GGUF checkpoints name the file and what is wrong. */
static void test_errors(const char *tmp) {
    char dir[4200], gg[4300];
    snprintf(dir, sizeof dir, "%s", tp_test_data("golden/qwen3_tied"));
    snprintf(gg, sizeof gg, "%s/err.gguf", tmp);
    tp_error err;
    CHECK(gguf_conv(dir, gg, TP_DTYPE_COUNT, &err) == TP_OK);
    char *data = NULL;
    size_t len = 0;
    CHECK(tp_read_file(gg, &data, &len, &err) == TP_OK);
    loaded L;
    /* Truncated: the reader's error. */
    char bad[4300];
    snprintf(bad, sizeof bad, "%s/trunc.gguf", tmp);
    FILE *f = fopen(bad, "wb");
    fwrite(data, 1, len - 100, f);
    fclose(f);
    CHECK(load(bad, &L, &err) != 0);
    CHECK_MSG(strstr(err.message, "trunc.gguf") && strstr(err.message, "past the end"), "%s",
              err.message);
    unload(&L);
    /* Missing tensor: rename blk.1.attn_k.weight -> blk.1.attn_x.weight. */
    char *hit = memmem(data, len, "blk.1.attn_k.weight", 19);
    CHECK(hit != NULL);
    if (hit) {
        hit[10] = 'x';
        snprintf(bad, sizeof bad, "%s/missing.gguf", tmp);
        f = fopen(bad, "wb");
        fwrite(data, 1, len, f);
        fclose(f);
        CHECK(load(bad, &L, &err) != 0);
        CHECK_MSG(strstr(err.message, "missing.gguf") && strstr(err.message, "blk.1.attn_k.weight"),
                  "%s", err.message);
        unload(&L);
        hit[10] = 'k';
    }
    /* Unsupported architecture. */
    hit = memmem(data, len, "qwen3", 5);
    if (hit) {
        memcpy(hit, "llama", 5);
        snprintf(bad, sizeof bad, "%s/arch.gguf", tmp);
        f = fopen(bad, "wb");
        fwrite(data, 1, len, f);
        fclose(f);
        CHECK(load(bad, &L, &err) != 0);
        CHECK_MSG(err.status == TP_ERR_UNSUPPORTED && strstr(err.message, "arch.gguf") &&
                      strstr(err.message, "llama"),
                  "%s", err.message);
        unload(&L);
    }
    tp_free(data);
    /* A folder with exactly one .gguf is that checkpoint; with two it is not. */
    char sub[4300], p2[4400];
    snprintf(sub, sizeof sub, "%s/one", tmp);
    mkdir(sub, 0755);
    snprintf(p2, sizeof p2, "%s/model.GGUF", sub);
    CHECK(gguf_conv(dir, p2, TP_DTYPE_COUNT, &err) == TP_OK);
    char *found = NULL;
    CHECK(tp_gguf_checkpoint_path(sub, &found) && found && !strcmp(found, p2));
    tp_free(found);
    CHECK(load(sub, &L, &err) == 0);
    unload(&L);
    snprintf(p2, sizeof p2, "%s/second.gguf", sub);
    CHECK(gguf_conv(dir, p2, TP_DTYPE_COUNT, &err) == TP_OK);
    CHECK(!tp_gguf_checkpoint_path(sub, &found) && !found);
    CHECK(!tp_gguf_checkpoint_path(dir, &found)); /* a safetensors folder */
}

/* Quantized GGUF (tpipe convert's library, src/convert): the golden decoders as
 * Q8_0 / Q4_K_M files load with quantized matrices, their logits stay near the
 * F32 file's (how many greedy continuations still equal the golden ones is
 * printed), and a batch gives each item exactly what it gets alone. */
static void test_quant(const char *c, const char *tmp, tp_conv_type type, double tol) {
    char rel[128], dir[4200], gg[4300], gf[4300];
    snprintf(rel, sizeof rel, "golden/%s", c);
    snprintf(dir, sizeof dir, "%s", tp_test_data(rel));
    snprintf(gg, sizeof gg, "%s/%s.%s.gguf", tmp, c, tp_conv_type_name(type));
    snprintf(gf, sizeof gf, "%s/%s.gguf", tmp, c); /* the F32/BF16 file of test_case */
    tp_error err;
    tp_conv_params cp = tp_conv_default_params();
    cp.type = type;
    cp.overwrite = true;
    tp_conv_report rep;
    memset(&rep, 0, sizeof rep);
    tp_status st = tp_convert(dir, gg, &cp, &rep, &err);
    CHECK_MSG(st == TP_OK, "convert %s to %s: %s", c, tp_conv_type_name(type), err.message);
    if (st)
        return;
    int n_quant = 0;
    for (size_t i = 0; i < rep.n_tensors; i++)
        n_quant += tp_dtype_is_quant(rep.tensors[i].type);
    tp_conv_report_free(&rep);
    loaded Q, F;
    if (load(gg, &Q, &err) || load(gf, &F, &err)) {
        CHECK_MSG(0, "load %s: %s", gg, err.message);
        return;
    }
    int n_loaded_quant = 0;
    for (size_t i = 0; i < tp_st_count(Q.f.st); i++)
        n_loaded_quant += tp_dtype_is_quant(tp_st_at(Q.f.st, i)->dtype);
    CHECK_MSG(n_quant > 0 && n_loaded_quant == n_quant, "%s %s: %d quantized tensors, %d loaded", c,
              tp_conv_type_name(type), n_quant, n_loaded_quant);
    const tp_dec_hparams *hp = tp_decoder_hparams(Q.net);
    char gpath[4300];
    snprintf(gpath, sizeof gpath, "%s/golden.json", dir);
    char *text = NULL;
    size_t len = 0;
    CHECK(tp_read_file(gpath, &text, &len, &err) == TP_OK);
    cJSON *golden = cJSON_ParseWithLength(text, len);
    tp_free(text);
    const cJSON *ge = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(golden, "details"),
                                         "generation"),
        "eos_token_ids");
    int n_eos = 0;
    int32_t *eos = json_ids(ge, &n_eos);
    size_t V = (size_t)hp->vocab;
    float *lq = malloc(V * sizeof(float)), *lf = malloc(V * sizeof(float));
    double worst = 0;
    tp_gen_item items[64];
    int32_t *prompts[64], *want[64];
    int n_want[64], n_items = 0;
    const cJSON *grp, *it;
    cJSON_ArrayForEach(grp, cJSON_GetObjectItemCaseSensitive(golden, "groups")) {
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(grp, "items")) {
            int n;
            int32_t *ids = json_ids(cJSON_GetObjectItemCaseSensitive(it, "input_ids"), &n);
            logits_of(Q.net, ids, n, lq);
            logits_of(F.net, ids, n, lf);
            double num = 0, den = 0;
            for (size_t v = 0; v < V; v++) {
                num += ((double)lq[v] - lf[v]) * ((double)lq[v] - lf[v]);
                den += (double)lf[v] * lf[v];
            }
            double r2 = sqrt(num / (den > 0 ? den : 1)); /* relative L2 error */
            worst = r2 > worst ? r2 : worst;
            if (n_items == 64) {
                free(ids);
                continue;
            }
            prompts[n_items] = ids;
            want[n_items] = json_ids(cJSON_GetObjectItemCaseSensitive(it, "greedy_new_tokens"),
                                     &n_want[n_items]);
            memset(&items[n_items], 0, sizeof items[n_items]);
            items[n_items].prompt = ids;
            items[n_items].n_prompt = n;
            items[n_items].max_new_tokens = 16;
            items[n_items].sampling.top_p = 1.0f;
            items[n_items].sampling.repetition_penalty = 1.0f;
            items[n_items].stop_ids = eos;
            items[n_items].n_stop_ids = n_eos;
            n_items++;
        }
    }
    CHECK_MSG(worst <= tol, "%s %s: logits differ from the F32 file by %.3g (relative L2, > %g)", c,
              tp_conv_type_name(type), worst, tol);
    tp_gen_output *ob = calloc((size_t)n_items, sizeof *ob);
    tp_gen_config gc = {0};
    CHECK(tp_generate_run(Q.net, &gc, items, (size_t)n_items, NULL, ob, NULL, &err) == TP_OK);
    int same_alone = 0, golden_same = 0;
    for (int i = 0; i < n_items; i++) {
        tp_gen_output one;
        memset(&one, 0, sizeof one);
        CHECK(tp_generate_run(Q.net, &gc, &items[i], 1, NULL, &one, NULL, &err) == TP_OK);
        same_alone += ob[i].n_tokens == one.n_tokens &&
                      !memcmp(ob[i].tokens, one.tokens, sizeof(int32_t) * (size_t)one.n_tokens);
        golden_same += ob[i].n_tokens == n_want[i] &&
                       !memcmp(ob[i].tokens, want[i], sizeof(int32_t) * (size_t)n_want[i]);
        tp_gen_output_free(&one);
        tp_gen_output_free(&ob[i]);
        free(prompts[i]);
        free(want[i]);
    }
    CHECK_MSG(same_alone == n_items, "%s %s: batch != alone for %d items", c,
              tp_conv_type_name(type), n_items - same_alone);
    printf("%s %s: %d quantized tensors, logits within %.2e (relative L2) of the F32 file, "
           "%d/%d greedy continuations as golden, batch == alone\n",
           c, tp_conv_type_name(type), n_quant, worst, golden_same, n_items);
    free(ob);
    free(eos);
    free(lq);
    free(lf);
    cJSON_Delete(golden);
    unload(&Q);
    unload(&F);
}

/* K-quant types on rows long enough for them (256): a random 256-wide Qwen3
 * and Gemma3 from build/tp_mkmodel, converted to Q4_K_M (Q4_K + Q6_K) and Q6_K,
 * load with those types; logits stay near the F32 file's; batch == alone. */
static void test_kquant(const char *family, const char *tmp) {
    const char *build = getenv("TPIPE_BUILD");
    if (!build) {
        printf("SKIP K-quant %s: no TPIPE_BUILD (for tp_mkmodel)\n", family);
        return;
    }
    char hf[4300], gf[4400], cmd[9000];
    snprintf(hf, sizeof hf, "%s/k_%s", tmp, family);
    snprintf(cmd, sizeof cmd,
             "'%s/tp_mkmodel' --family %s --hidden 256 --layers 3 --heads 4 --kv-heads 2 "
             "--head-dim 64 --intermediate 512 --vocab 512 --dtype f32 --seed 5 --scale 0.05 "
             "--quiet --out '%s'",
             build, family, hf);
    CHECK(system(cmd) == 0);
    snprintf(gf, sizeof gf, "%s/k_%s.f32.gguf", tmp, family);
    tp_error err;
    CHECK(gguf_conv(hf, gf, TP_DTYPE_F32, &err) == TP_OK);
    const tp_conv_type types[2] = {TP_CONV_Q4_K_M, TP_CONV_Q6_K};
    const double tols[2] = {0.35, 0.12}; /* measured 0.25 / 0.068 (relative L2) */
    for (int k = 0; k < 2; k++) {
        char gq[4400];
        snprintf(gq, sizeof gq, "%s/k_%s.%s.gguf", tmp, family, tp_conv_type_name(types[k]));
        tp_conv_params cp = tp_conv_default_params();
        cp.type = types[k];
        cp.overwrite = true;
        tp_status st = tp_convert(hf, gq, &cp, NULL, &err);
        CHECK_MSG(st == TP_OK, "convert: %s", err.message);
        loaded Q, F;
        if (st || load(gq, &Q, &err) || load(gf, &F, &err)) {
            CHECK_MSG(0, "load %s: %s", gq, err.message);
            return;
        }
        int n_q4 = 0, n_q6 = 0;
        for (size_t i = 0; i < tp_st_count(Q.f.st); i++) {
            n_q4 += tp_st_at(Q.f.st, i)->dtype == TP_DTYPE_Q4_K;
            n_q6 += tp_st_at(Q.f.st, i)->dtype == TP_DTYPE_Q6_K;
        }
        CHECK_MSG(n_q6 > 0 && (types[k] == TP_CONV_Q6_K ? n_q4 == 0 : n_q4 > 0),
                  "%s %s: %d Q4_K, %d Q6_K", family, tp_conv_type_name(types[k]), n_q4, n_q6);
        size_t V = (size_t)Q.net->vocab_size;
        float *lq = malloc(V * sizeof(float)), *lf = malloc(V * sizeof(float));
        int32_t ids[40];
        double worst = 0;
        tp_gen_item items[6];
        memset(items, 0, sizeof items);
        for (int p = 0; p < 6; p++) {
            int n = 3 + 7 * p;
            for (int i = 0; i < n; i++)
                ids[i] = (int32_t)((i * 131 + p * 17 + 7) % 512);
            logits_of(Q.net, ids, n, lq);
            logits_of(F.net, ids, n, lf);
            double num = 0, den = 0;
            for (size_t v = 0; v < V; v++) {
                num += ((double)lq[v] - lf[v]) * ((double)lq[v] - lf[v]);
                den += (double)lf[v] * lf[v];
            }
            double r2 = sqrt(num / (den > 0 ? den : 1)); /* relative L2 error */
            worst = r2 > worst ? r2 : worst;
            int32_t *pr = malloc(sizeof(int32_t) * (size_t)n);
            memcpy(pr, ids, sizeof(int32_t) * (size_t)n);
            items[p].prompt = pr;
            items[p].n_prompt = n;
            items[p].max_new_tokens = 10 + p;
            items[p].sampling.top_p = 1.0f;
            items[p].sampling.repetition_penalty = 1.0f;
        }
        CHECK_MSG(worst <= tols[k], "%s %s: logits off by %.3g (relative L2)", family,
                  tp_conv_type_name(types[k]), worst);
        tp_gen_output ob[6], one;
        memset(ob, 0, sizeof ob);
        tp_gen_config gc = {0};
        CHECK(tp_generate_run(Q.net, &gc, items, 6, NULL, ob, NULL, &err) == TP_OK);
        int same = 0;
        for (int p = 0; p < 6; p++) {
            memset(&one, 0, sizeof one);
            CHECK(tp_generate_run(Q.net, &gc, &items[p], 1, NULL, &one, NULL, &err) == TP_OK);
            same += one.n_tokens == ob[p].n_tokens && one.n_tokens > 0 &&
                    !memcmp(one.tokens, ob[p].tokens, sizeof(int32_t) * (size_t)one.n_tokens);
            tp_gen_output_free(&one);
            tp_gen_output_free(&ob[p]);
            free((void *)items[p].prompt);
        }
        CHECK_MSG(same == 6, "%s %s: batch != alone", family, tp_conv_type_name(types[k]));
        printf("%s 256-wide %s: %d Q4_K + %d Q6_K tensors, logits within %.2e (relative L2) "
               "of the F32 file, batch == alone\n",
               family, tp_conv_type_name(types[k]), n_q4, n_q6, worst);
        free(lq);
        free(lf);
        unload(&Q);
        unload(&F);
    }
}

int main(void) {
    char tmp[] = "/tmp/tpipe-gguf-model-XXXXXX";
    if (!mkdtemp(tmp))
        return 1;
    for (size_t i = 0; i < sizeof kCases / sizeof kCases[0]; i++)
        test_case(kCases[i], tmp);
    for (size_t i = 0; i < sizeof kCases / sizeof kCases[0]; i++) {
        /* Relative L2 error of the logits, measured <= 5.4e-2: int8 weights and
         * int8 activations (bf16 weights alone give 0.7e-2 on these models).
         * The tiny models' rows are too short for Q4_K (256), so Q4_K_M falls
         * back to Q8_0 here. Their greedy continuations are not asserted: the
         * golden top-2 margins (0.01-0.06) are below the quantization error. */
        test_quant(kCases[i], tmp, TP_CONV_Q8_0, 0.08);
        test_quant(kCases[i], tmp, TP_CONV_Q4_K_M, 0.08);
    }
    test_kquant("qwen3", tmp);
    test_kquant("gemma3", tmp);
    test_errors(tmp);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp);
    return tp_test_exit();
}
