/*
 * tp_mkmodel — writes a Hugging Face model folder with random weights.
 *
 *   tp_mkmodel --family modernbert|qwen3|gemma3 --out DIR [options]
 *   tp_mkmodel --preset qwen3-0.6b --out DIR --tokenizer-dir ../shared/tokenizers/qwen3
 *
 * The folder holds config.json (the keys and layout transformers writes, as in
 * the public checkpoints and ../shared/golden), model.safetensors (streamed,
 * never held in memory; tensors sorted by name, contiguous, 8-byte aligned
 * data), generation_config.json for decoders, and the tokenizer files copied
 * from --tokenizer-dir. Weights are deterministic for a given --seed: each
 * tensor has its own random stream seeded from the seed and its name, values
 * uniform in [-scale, scale) for matrices and biases, 1 + that for norm weights
 * (Gemma3 stores w for a (1 + w) norm, so there the norm weights are just the
 * small values). Flags are documented in docs/io.md and by --help.
 */
#include "io/safetensors.h"
#include "io/st_write.h"

#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef enum family { FAM_NONE = 0, FAM_MODERNBERT, FAM_QWEN3, FAM_GEMMA3 } family;

#define MAX_IDS 16
#define MAX_LABELS 64
#define UNSET (-1)

typedef struct opts {
    family fam;
    const char *preset;
    const char *task; /* mlm | seqcls (modernbert) */
    char *labels_buf;
    const char *labels[MAX_LABELS];
    int n_labels;
    const char *pooling;
    int64_t hidden, layers, heads, kv_heads, head_dim, inter, vocab, max_pos;
    int64_t local_window, global_every, sliding_window, sliding_pattern, qpas;
    double global_rope_theta, local_rope_theta, rope_theta, rope_local_theta, rope_linear;
    double final_softcap, norm_eps, scale;
    int layer_types; /* gemma3: explicit layer_types (UNSET: preset decides) */
    int tie;
    int attention_bias, mlp_bias, norm_bias, classifier_bias, decoder_bias;
    int64_t bos, pad, cls, sep;
    int64_t eos[MAX_IDS], gen_eos[MAX_IDS];
    int n_eos, n_gen_eos;
    tp_dtype dtype;
    int dtype_set;
    uint64_t seed;
    const char *tokenizer_dir;
    const char *out;
    int greedy;
    int quiet;
    int64_t shard_bytes; /* > 0: shard model.safetensors at about this size */
} opts;

static void usage(FILE *f) {
    fputs("usage: tp_mkmodel --out DIR (--family F | --preset P) [options]\n"
          "Writes a Hugging Face model folder with deterministic random weights.\n"
          "\n"
          "  --out DIR               output folder (created; files in it are replaced)\n"
          "  --family F              modernbert | qwen3 | gemma3\n"
          "  --preset P              real dimensions: modernbert-base, modernbert-large,\n"
          "                          qwen3-0.6b, gemma3-270m, gemma3-1b (flags override)\n"
          "  --task T                modernbert: mlm (default) | seqcls\n"
          "  --labels A,B,...        seqcls labels (default NEGATIVE,POSITIVE)\n"
          "  --nli                   seqcls with labels entailment,neutral,contradiction\n"
          "  --pooling mean|cls      modernbert classifier_pooling (default mean)\n"
          "  --hidden N --layers N --heads N --kv-heads N --head-dim N\n"
          "  --intermediate N --vocab N --max-positions N\n"
          "  --local-window N        modernbert local_attention (default 128)\n"
          "  --global-every N        modernbert global_attn_every_n_layers (default 3)\n"
          "  --global-rope-theta X --local-rope-theta X   modernbert (160000, 10000)\n"
          "  --rope-theta X          qwen3/gemma3 (default 1000000)\n"
          "  --rope-local-theta X    gemma3 rope_local_base_freq (default 10000)\n"
          "  --rope-linear F         rope_scaling {rope_type: linear, factor: F}\n"
          "  --sliding-window N      gemma3 (default 512)\n"
          "  --sliding-pattern N     gemma3: every N-th layer is global (default 6)\n"
          "  --layer-types / --no-layer-types   gemma3: write layer_types (270m style)\n"
          "                          or sliding_window_pattern (1b style)\n"
          "  --query-pre-attn-scalar N   gemma3 (default head_dim)\n"
          "  --final-softcap X       gemma3 final_logit_softcapping (default null)\n"
          "  --norm-eps X            norm_eps / rms_norm_eps\n"
          "  --tie / --no-tie        tie_word_embeddings (default: tied, qwen3 untied)\n"
          "  --biases                modernbert: attention, mlp, norm and classifier biases\n"
          "  --attention-bias --mlp-bias --norm-bias --classifier-bias --no-decoder-bias\n"
          "  --bos-id N --eos-id N[,N...] --pad-id N --cls-id N --sep-id N\n"
          "  --gen-eos-id N[,N...]   generation_config eos_token_id (default: as config)\n"
          "  --greedy                generation_config without sampling settings\n"
          "  --dtype f32|bf16        weight dtype (default f32; presets of decoders bf16)\n"
          "  --seed N                random seed (default 0)\n"
          "  --scale X               weight scale (default 0.02)\n"
          "  --tokenizer-dir DIR     copy tokenizer files from DIR (vocab defaults to its size)\n"
          "  --shard-size MB         write model-0000i-of-0000n.safetensors shards of at most\n"
          "                          MB megabytes (1e6 bytes) + model.safetensors.index.json\n"
          "  --quiet                 no summary line\n",
          f);
}

static int die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "tp_mkmodel: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 2;
}

static int parse_int(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0)
        return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static int parse_ids(const char *s, int64_t *ids, int *n) {
    *n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (errno || end == p || v < 0 || *n >= MAX_IDS)
            return -1;
        ids[(*n)++] = v;
        if (*end == ',')
            end++;
        else if (*end)
            return -1;
        p = end;
    }
    return *n ? 0 : -1;
}

static int set_labels(opts *o, const char *s) {
    free(o->labels_buf);
    o->labels_buf = tp_strdup(s);
    if (!o->labels_buf)
        return -1;
    o->n_labels = 0;
    char *save = NULL;
    for (char *t = strtok_r(o->labels_buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (o->n_labels >= MAX_LABELS || !*t)
            return -1;
        o->labels[o->n_labels++] = t;
    }
    return o->n_labels >= 1 ? 0 : -1;
}

static void init_opts(opts *o) {
    memset(o, 0, sizeof *o);
    int64_t *ints[] = {&o->hidden,
                       &o->layers,
                       &o->heads,
                       &o->kv_heads,
                       &o->head_dim,
                       &o->inter,
                       &o->vocab,
                       &o->max_pos,
                       &o->local_window,
                       &o->global_every,
                       &o->sliding_window,
                       &o->sliding_pattern,
                       &o->qpas,
                       &o->bos,
                       &o->pad,
                       &o->cls,
                       &o->sep};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        *ints[i] = UNSET;
    double *dbls[] = {
        &o->global_rope_theta, &o->local_rope_theta, &o->rope_theta, &o->rope_local_theta,
        &o->rope_linear,       &o->final_softcap,    &o->norm_eps,   &o->scale};
    for (size_t i = 0; i < sizeof dbls / sizeof dbls[0]; i++)
        *dbls[i] = NAN;
    o->layer_types = o->tie = o->decoder_bias = UNSET;
    o->dtype = TP_DTYPE_F32;
    o->shard_bytes = UNSET;
}

#define SETI(field, v)                                                                             \
    do {                                                                                           \
        if (o->field == UNSET)                                                                     \
            o->field = (v);                                                                        \
    } while (0)
#define SETD(field, v)                                                                             \
    do {                                                                                           \
        if (isnan(o->field))                                                                       \
            o->field = (v);                                                                        \
    } while (0)

static int apply_preset(opts *o) {
    const char *p = o->preset;
    if (!p)
        return 0;
    if (!strcmp(p, "modernbert-base") || !strcmp(p, "modernbert-large")) {
        bool large = !strcmp(p, "modernbert-large");
        if (o->fam == FAM_NONE)
            o->fam = FAM_MODERNBERT;
        SETI(hidden, large ? 1024 : 768);
        SETI(layers, large ? 28 : 22);
        SETI(heads, large ? 16 : 12);
        SETI(inter, large ? 2624 : 1152);
        SETI(vocab, 50368);
    } else if (!strcmp(p, "qwen3-0.6b")) {
        if (o->fam == FAM_NONE)
            o->fam = FAM_QWEN3;
        SETI(hidden, 1024);
        SETI(layers, 28);
        SETI(heads, 16);
        SETI(kv_heads, 8);
        SETI(head_dim, 128);
        SETI(inter, 3072);
        SETI(vocab, 151936);
        SETI(tie, 1);
        if (!o->dtype_set)
            o->dtype = TP_DTYPE_BF16;
    } else if (!strcmp(p, "gemma3-270m") || !strcmp(p, "gemma3-1b")) {
        bool small = !strcmp(p, "gemma3-270m");
        if (o->fam == FAM_NONE)
            o->fam = FAM_GEMMA3;
        SETI(hidden, small ? 640 : 1152);
        SETI(layers, small ? 18 : 26);
        SETI(heads, 4);
        SETI(kv_heads, 1);
        SETI(head_dim, 256);
        SETI(inter, small ? 2048 : 6912);
        SETI(vocab, 262144);
        SETI(layer_types, small ? 1 : 0);
        SETI(qpas, 256);
        if (!o->dtype_set)
            o->dtype = TP_DTYPE_BF16;
    } else {
        return -1;
    }
    return 0;
}

/* The largest token id in a tokenizer.json (model vocab and added tokens), or -1. */
static int64_t tokenizer_max_id(const char *dir) {
    char *path = tp_path_join(dir, "tokenizer.json");
    char *text = NULL;
    size_t len = 0;
    tp_error err;
    int64_t best = -1;
    if (path && tp_read_file(path, &text, &len, &err) == TP_OK) {
        cJSON *root = cJSON_ParseWithLength(text, len);
        const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
        const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
        const cJSON *e;
        if (cJSON_IsObject(vocab)) {
            cJSON_ArrayForEach(e, vocab) if (cJSON_IsNumber(e) && e->valuedouble > (double)best)
                best = (int64_t)e->valuedouble;
        } else if (cJSON_IsArray(vocab)) { /* Unigram: [[piece, score], ...] */
            best = (int64_t)cJSON_GetArraySize(vocab) - 1;
        }
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(root, "added_tokens")) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
            if (cJSON_IsNumber(id) && id->valuedouble > (double)best)
                best = (int64_t)id->valuedouble;
        }
        cJSON_Delete(root);
    }
    free(text);
    free(path);
    return best;
}

static int fill_defaults(opts *o) {
    if (apply_preset(o) != 0)
        return die("unknown --preset '%s'", o->preset);
    if (o->fam == FAM_NONE)
        return die("%s", "give --family or --preset");
    if (o->tokenizer_dir && o->vocab == UNSET) {
        int64_t m = tokenizer_max_id(o->tokenizer_dir);
        if (m >= 0)
            o->vocab = m + 1;
    }
    SETI(hidden, 64);
    SETI(layers, 2);
    SETI(heads, 4);
    SETI(inter, 2 * o->hidden);
    if (o->heads <= 0 || o->hidden <= 0)
        return die("%s", "--hidden and --heads must be positive");
    if (o->kv_heads == 0)
        return die("%s", "--kv-heads must be positive");
    for (int i = 0; i < o->n_labels; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(o->labels[i], o->labels[j]))
                return die("label '%s' given twice", o->labels[i]);
    SETI(vocab, 512);
    SETD(scale, 0.02);
    SETD(rope_linear, 0.0);
    SETD(final_softcap, 0.0);
    if (o->fam == FAM_MODERNBERT) {
        if (!o->task)
            o->task = "mlm";
        if (strcmp(o->task, "mlm") && strcmp(o->task, "seqcls"))
            return die("--task must be mlm or seqcls, not '%s'", o->task);
        if (!strcmp(o->task, "seqcls") && o->n_labels == 0)
            set_labels(o, "NEGATIVE,POSITIVE");
        if (!o->pooling)
            o->pooling = "mean";
        if (strcmp(o->pooling, "mean") && strcmp(o->pooling, "cls"))
            return die("--pooling must be mean or cls, not '%s'", o->pooling);
        SETI(max_pos, 8192);
        SETI(local_window, 128);
        SETI(global_every, 3);
        if (o->global_every <= 0 || o->local_window <= 0)
            return die("%s", "--global-every and --local-window must be positive");
        SETD(global_rope_theta, 160000.0);
        SETD(local_rope_theta, 10000.0);
        SETD(norm_eps, 1e-5);
        SETI(tie, 1);
        SETI(decoder_bias, 1);
        /* ModernBERT's tokenizer: [CLS] 50281, [SEP] 50282, [PAD] 50283 */
        bool real = o->vocab > 50283;
        SETI(cls, real ? 50281 : o->vocab - 7);
        SETI(sep, real ? 50282 : o->vocab - 6);
        SETI(pad, real ? 50283 : o->vocab - 5);
        SETI(bos, o->cls);
        if (o->n_eos == 0)
            o->eos[o->n_eos++] = o->sep;
        if (o->hidden % o->heads)
            return die("%s", "--hidden must be a multiple of --heads");
    } else {
        if (o->task && strcmp(o->task, "causal"))
            return die("--task '%s' is for modernbert; decoders are causal LMs", o->task);
        SETI(kv_heads, o->heads);
        SETI(head_dim, o->hidden / o->heads);
        SETD(rope_theta, 1000000.0);
        SETD(norm_eps, 1e-6);
        if (o->heads % o->kv_heads)
            return die("%s", "--heads must be a multiple of --kv-heads");
        if (o->fam == FAM_QWEN3) {
            SETI(max_pos, 40960);
            SETI(tie, 0);
            /* Qwen3's tokenizer: <|endoftext|> 151643, <|im_end|> 151645 */
            bool real = o->vocab > 151645;
            SETI(bos, real ? 151643 : o->vocab - 2);
            if (o->n_eos == 0)
                o->eos[o->n_eos++] = real ? 151645 : o->vocab - 1;
            if (o->n_gen_eos == 0 && real && o->eos[0] == 151645 && o->n_eos == 1) {
                o->gen_eos[o->n_gen_eos++] = 151645;
                o->gen_eos[o->n_gen_eos++] = 151643;
            }
            SETI(pad, real ? 151643 : UNSET);
        } else {
            SETI(max_pos, 32768);
            SETI(tie, 1);
            SETI(sliding_window, 512);
            SETI(sliding_pattern, 6);
            if (o->sliding_pattern <= 0 || o->sliding_window <= 0)
                return die("%s", "--sliding-pattern and --sliding-window must be positive");
            SETI(layer_types, 1);
            SETI(qpas, o->head_dim);
            SETD(rope_local_theta, 10000.0);
            /* Gemma3's tokenizer: <pad> 0, <eos> 1, <bos> 2, <end_of_turn> 106 */
            SETI(bos, 2);
            SETI(pad, 0);
            if (o->n_eos == 0) {
                o->eos[o->n_eos++] = 1;
                if (o->vocab > 106)
                    o->eos[o->n_eos++] = 106;
            }
        }
    }
    if (o->n_gen_eos == 0) {
        memcpy(o->gen_eos, o->eos, sizeof o->eos);
        o->n_gen_eos = o->n_eos;
    }
    if (o->hidden <= 0 || o->layers < 0 || o->heads <= 0 || o->inter <= 0 || o->vocab <= 0 ||
        (o->head_dim <= 0 && o->fam != FAM_MODERNBERT))
        return die("%s", "dimensions must be positive");
    int64_t ids[] = {o->bos, o->pad, o->cls, o->sep};
    for (size_t i = 0; i < 4; i++)
        if (ids[i] >= o->vocab)
            return die("%s", "a special token id is >= --vocab");
    for (int i = 0; i < o->n_eos; i++)
        if (o->eos[i] >= o->vocab)
            return die("%s", "an --eos-id is >= --vocab");
    return 0;
}

/* ---- config.json ---- */

static void add_num(cJSON *o, const char *k, double v) {
    cJSON_AddItemToObject(o, k, tp_json_py_number(v));
}
static void add_int(cJSON *o, const char *k, int64_t v) {
    cJSON_AddNumberToObject(o, k, (double)v);
}
static void add_ids(cJSON *o, const char *k, const int64_t *ids, int n) {
    if (n == 1) {
        add_int(o, k, ids[0]);
        return;
    }
    cJSON *a = cJSON_AddArrayToObject(o, k);
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber((double)ids[i]));
}
static const char *torch_dtype(const opts *o) {
    return o->dtype == TP_DTYPE_BF16 ? "bfloat16" : "float32";
}

static cJSON *build_config(const opts *o) {
    cJSON *c = cJSON_CreateObject();
    cJSON *arch = cJSON_AddArrayToObject(c, "architectures");
    cJSON_AddBoolToObject(c, "attention_bias", o->attention_bias);
    add_num(c, "attention_dropout", 0.0);
    add_int(c, "bos_token_id", o->bos);
    add_ids(c, "eos_token_id", o->eos, o->n_eos);
    add_int(c, "hidden_size", o->hidden);
    add_num(c, "initializer_range", 0.02);
    add_int(c, "intermediate_size", o->inter);
    add_int(c, "max_position_embeddings", o->max_pos);
    add_int(c, "num_attention_heads", o->heads);
    add_int(c, "num_hidden_layers", o->layers);
    cJSON_AddStringToObject(c, "torch_dtype", torch_dtype(o));
    cJSON_AddStringToObject(c, "transformers_version", "4.57.1");
    add_int(c, "vocab_size", o->vocab);
    if (o->fam == FAM_MODERNBERT) {
        bool cls = !strcmp(o->task, "seqcls");
        cJSON_AddItemToArray(arch, cJSON_CreateString(cls ? "ModernBertForSequenceClassification"
                                                          : "ModernBertForMaskedLM"));
        cJSON_AddStringToObject(c, "classifier_activation", "gelu");
        cJSON_AddBoolToObject(c, "classifier_bias", o->classifier_bias);
        add_num(c, "classifier_dropout", 0.0);
        cJSON_AddStringToObject(c, "classifier_pooling", o->pooling);
        add_int(c, "cls_token_id", o->cls);
        cJSON_AddBoolToObject(c, "decoder_bias", o->decoder_bias);
        cJSON_AddBoolToObject(c, "deterministic_flash_attn", 0);
        add_num(c, "embedding_dropout", 0.0);
        add_int(c, "global_attn_every_n_layers", o->global_every);
        add_num(c, "global_rope_theta", o->global_rope_theta);
        cJSON_AddStringToObject(c, "hidden_activation", "gelu");
        if (cls) {
            cJSON *i2l = cJSON_AddObjectToObject(c, "id2label");
            cJSON *l2i = cJSON_AddObjectToObject(c, "label2id");
            for (int i = 0; i < o->n_labels; i++) {
                char k[16];
                snprintf(k, sizeof k, "%d", i);
                cJSON_AddStringToObject(i2l, k, o->labels[i]);
                add_int(l2i, o->labels[i], i);
            }
        }
        add_num(c, "initializer_cutoff_factor", 2.0);
        add_int(c, "local_attention", o->local_window);
        add_num(c, "local_rope_theta", o->local_rope_theta);
        cJSON_AddBoolToObject(c, "mlp_bias", o->mlp_bias);
        add_num(c, "mlp_dropout", 0.0);
        cJSON_AddStringToObject(c, "model_type", "modernbert");
        cJSON_AddBoolToObject(c, "norm_bias", o->norm_bias);
        add_num(c, "norm_eps", o->norm_eps);
        add_int(c, "pad_token_id", o->pad);
        cJSON_AddNullToObject(c, "reference_compile");
        cJSON_AddBoolToObject(c, "repad_logits_with_grad", 0);
        add_int(c, "sep_token_id", o->sep);
        add_int(c, "sparse_pred_ignore_index", -100);
        cJSON_AddBoolToObject(c, "sparse_prediction", 0);
        cJSON_AddBoolToObject(c, "tie_word_embeddings", o->tie);
        return c;
    }
    add_int(c, "head_dim", o->head_dim);
    add_int(c, "num_key_value_heads", o->kv_heads);
    add_num(c, "rms_norm_eps", o->norm_eps);
    add_num(c, "rope_theta", o->rope_theta);
    cJSON_AddBoolToObject(c, "use_cache", 1);
    if (o->rope_linear > 0) {
        cJSON *rs = cJSON_AddObjectToObject(c, "rope_scaling");
        add_num(rs, "factor", o->rope_linear);
        cJSON_AddStringToObject(rs, "rope_type", "linear");
    } else {
        cJSON_AddNullToObject(c, "rope_scaling");
    }
    if (o->fam == FAM_QWEN3) {
        cJSON_AddItemToArray(arch, cJSON_CreateString("Qwen3ForCausalLM"));
        cJSON_AddStringToObject(c, "hidden_act", "silu");
        add_int(c, "max_window_layers", o->layers);
        cJSON_AddStringToObject(c, "model_type", "qwen3");
        cJSON_AddNullToObject(c, "sliding_window");
        cJSON_AddBoolToObject(c, "tie_word_embeddings", o->tie);
        cJSON_AddBoolToObject(c, "use_sliding_window", 0);
        /* like Qwen3-0.6B: the pad id is only in generation_config.json */
        return c;
    }
    cJSON_AddItemToArray(arch, cJSON_CreateString("Gemma3ForCausalLM"));
    cJSON_AddNullToObject(c, "attn_logit_softcapping");
    if (o->final_softcap > 0)
        add_num(c, "final_logit_softcapping", o->final_softcap);
    else
        cJSON_AddNullToObject(c, "final_logit_softcapping");
    cJSON_AddStringToObject(c, "hidden_activation", "gelu_pytorch_tanh");
    cJSON_AddStringToObject(c, "model_type", "gemma3_text");
    add_int(c, "pad_token_id", o->pad);
    add_int(c, "query_pre_attn_scalar", o->qpas);
    add_num(c, "rope_local_base_freq", o->rope_local_theta);
    add_int(c, "sliding_window", o->sliding_window);
    if (!o->tie) /* Gemma3's default is tied: transformers writes only a change */
        cJSON_AddBoolToObject(c, "tie_word_embeddings", 0);
    if (o->layer_types) {
        add_int(c, "_sliding_window_pattern", o->sliding_pattern);
        cJSON *lt = cJSON_AddArrayToObject(c, "layer_types");
        for (int64_t i = 0; i < o->layers; i++)
            cJSON_AddItemToArray(lt, cJSON_CreateString((i + 1) % o->sliding_pattern == 0
                                                            ? "full_attention"
                                                            : "sliding_attention"));
        cJSON_AddBoolToObject(c, "use_bidirectional_attention", 0);
    } else {
        cJSON_AddStringToObject(c, "cache_implementation", "hybrid");
        add_int(c, "sliding_window_pattern", o->sliding_pattern);
    }
    return c;
}

static cJSON *build_generation_config(const opts *o) {
    cJSON *g = cJSON_CreateObject();
    add_int(g, "bos_token_id", o->bos);
    add_ids(g, "eos_token_id", o->gen_eos, o->n_gen_eos);
    if (o->pad != UNSET)
        add_int(g, "pad_token_id", o->pad);
    cJSON_AddStringToObject(g, "transformers_version", "4.57.1");
    if (o->fam == FAM_GEMMA3)
        cJSON_AddStringToObject(g, "cache_implementation", "hybrid");
    if (!o->greedy) { /* the sampling defaults the public checkpoints ship */
        cJSON_AddBoolToObject(g, "do_sample", 1);
        if (o->fam == FAM_QWEN3) {
            add_num(g, "temperature", 0.6);
            add_int(g, "top_k", 20);
        } else {
            add_int(g, "top_k", 64);
        }
        add_num(g, "top_p", 0.95);
    }
    return g;
}

static int write_json(const char *dir, const char *name, const cJSON *root) {
    tp_buf b = {0};
    tp_json_print_py(root, &b);
    tp_buf_puts(&b, "\n");
    char *path = tp_path_join(dir, name);
    FILE *f = path && !b.oom ? fopen(path, "wb") : NULL;
    int ok = f && fwrite(b.data, 1, b.len, f) == b.len;
    if (f && fclose(f) != 0)
        ok = 0;
    if (!ok)
        fprintf(stderr, "tp_mkmodel: cannot write %s: %s\n", path ? path : name, strerror(errno));
    free(path);
    tp_buf_free(&b);
    return ok ? 0 : -1;
}

/* ---- tensors ---- */

typedef struct tlist {
    tp_st_wtensor *t;
    char **names;
    size_t n, cap;
} tlist;

static int tadd(tlist *l, tp_dtype dt, int n_dims, int64_t a, int64_t b, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static int tadd(tlist *l, tp_dtype dt, int n_dims, int64_t a, int64_t b, const char *fmt, ...) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 256;
        tp_st_wtensor *t = tp_realloc_array(l->t, cap, sizeof *t);
        if (t)
            l->t = t;
        char **nm = tp_realloc_array(l->names, cap, sizeof *nm);
        if (nm)
            l->names = nm;
        if (!t || !nm)
            return -1;
        l->cap = cap;
    }
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    l->names[l->n] = tp_strdup(name);
    if (!l->names[l->n])
        return -1;
    tp_st_wtensor *t = &l->t[l->n];
    memset(t, 0, sizeof *t);
    t->name = l->names[l->n];
    t->dtype = dt;
    t->n_dims = n_dims;
    t->shape[0] = a;
    t->shape[1] = b;
    l->n++;
    return 0;
}

static int build_tensors(const opts *o, tlist *l) {
    tp_dtype dt = o->dtype;
    int64_t H = o->hidden, I = o->inter, V = o->vocab;
    int r = 0;
    if (o->fam == FAM_MODERNBERT) {
        int nb = o->norm_bias;
#define NORM(...)                                                                                  \
    do {                                                                                           \
        char p_[200];                                                                              \
        snprintf(p_, sizeof p_, __VA_ARGS__);                                                      \
        r |= tadd(l, dt, 1, H, 0, "%s.weight", p_);                                                \
        if (nb)                                                                                    \
            r |= tadd(l, dt, 1, H, 0, "%s.bias", p_);                                              \
    } while (0)
        r |= tadd(l, dt, 2, V, H, "model.embeddings.tok_embeddings.weight");
        NORM("model.embeddings.norm");
        for (int64_t i = 0; i < o->layers; i++) {
            long long li = (long long)i;
            if (i > 0)
                NORM("model.layers.%lld.attn_norm", li);
            NORM("model.layers.%lld.mlp_norm", li);
            r |= tadd(l, dt, 2, 3 * H, H, "model.layers.%lld.attn.Wqkv.weight", li);
            r |= tadd(l, dt, 2, H, H, "model.layers.%lld.attn.Wo.weight", li);
            r |= tadd(l, dt, 2, 2 * I, H, "model.layers.%lld.mlp.Wi.weight", li);
            r |= tadd(l, dt, 2, H, I, "model.layers.%lld.mlp.Wo.weight", li);
            if (o->attention_bias) {
                r |= tadd(l, dt, 1, 3 * H, 0, "model.layers.%lld.attn.Wqkv.bias", li);
                r |= tadd(l, dt, 1, H, 0, "model.layers.%lld.attn.Wo.bias", li);
            }
            if (o->mlp_bias) {
                r |= tadd(l, dt, 1, 2 * I, 0, "model.layers.%lld.mlp.Wi.bias", li);
                r |= tadd(l, dt, 1, H, 0, "model.layers.%lld.mlp.Wo.bias", li);
            }
        }
        NORM("model.final_norm");
        r |= tadd(l, dt, 2, H, H, "head.dense.weight");
        if (o->classifier_bias)
            r |= tadd(l, dt, 1, H, 0, "head.dense.bias");
        NORM("head.norm");
#undef NORM
        if (!strcmp(o->task, "seqcls")) {
            r |= tadd(l, dt, 2, o->n_labels, H, "classifier.weight");
            r |= tadd(l, dt, 1, o->n_labels, 0, "classifier.bias");
        } else {
            if (o->decoder_bias)
                r |= tadd(l, dt, 1, V, 0, "decoder.bias");
            if (!o->tie)
                r |= tadd(l, dt, 2, V, H, "decoder.weight");
        }
        return r;
    }
    int64_t q = o->heads * o->head_dim, kv = o->kv_heads * o->head_dim, hd = o->head_dim;
    bool gemma = o->fam == FAM_GEMMA3;
    r |= tadd(l, dt, 2, V, H, "model.embed_tokens.weight");
    r |= tadd(l, dt, 1, H, 0, "model.norm.weight");
    for (int64_t i = 0; i < o->layers; i++) {
        long long li = (long long)i;
        r |= tadd(l, dt, 1, H, 0, "model.layers.%lld.input_layernorm.weight", li);
        r |= tadd(l, dt, 1, H, 0, "model.layers.%lld.post_attention_layernorm.weight", li);
        if (gemma) {
            r |= tadd(l, dt, 1, H, 0, "model.layers.%lld.pre_feedforward_layernorm.weight", li);
            r |= tadd(l, dt, 1, H, 0, "model.layers.%lld.post_feedforward_layernorm.weight", li);
        }
        r |= tadd(l, dt, 2, q, H, "model.layers.%lld.self_attn.q_proj.weight", li);
        r |= tadd(l, dt, 2, kv, H, "model.layers.%lld.self_attn.k_proj.weight", li);
        r |= tadd(l, dt, 2, kv, H, "model.layers.%lld.self_attn.v_proj.weight", li);
        r |= tadd(l, dt, 2, H, q, "model.layers.%lld.self_attn.o_proj.weight", li);
        r |= tadd(l, dt, 1, hd, 0, "model.layers.%lld.self_attn.q_norm.weight", li);
        r |= tadd(l, dt, 1, hd, 0, "model.layers.%lld.self_attn.k_norm.weight", li);
        r |= tadd(l, dt, 2, I, H, "model.layers.%lld.mlp.gate_proj.weight", li);
        r |= tadd(l, dt, 2, I, H, "model.layers.%lld.mlp.up_proj.weight", li);
        r |= tadd(l, dt, 2, H, I, "model.layers.%lld.mlp.down_proj.weight", li);
    }
    if (!o->tie)
        r |= tadd(l, dt, 2, V, H, "lm_head.weight");
    return r;
}

/* ---- random values ---- */

typedef struct filler {
    const opts *o;
    const tp_st_wtensor *t;
    size_t cur;     /* tensor whose stream is live */
    int64_t next;   /* next element expected */
    uint64_t state; /* splitmix64 state */
    float offset;   /* 1 for norm weights (except Gemma3), else 0 */
    float *buf;     /* f32 staging for bf16 */
    size_t buf_elems;
} filler;

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

static bool ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcmp(s + n - k, suf);
}

static tp_status fill_fn(void *user, size_t index, int64_t first, size_t n, void *dst,
                         tp_error *err) {
    filler *f = user;
    const tp_st_wtensor *t = &f->t[index];
    if (index != f->cur || first == 0) {
        f->cur = index;
        f->next = 0;
        f->state = fnv1a(t->name) ^ (f->o->seed * 0xD1B54A32D192ED03ull);
        bool norm = ends_with(t->name, "norm.weight");
        f->offset = norm && f->o->fam != FAM_GEMMA3 ? 1.0f : 0.0f;
    }
    if (first != f->next) /* the writer streams in order; anything else is a bug */
        return tp_fail(err, TP_ERR_INTERNAL, "%s: out-of-order fill", t->name);
    float scale = (float)f->o->scale;
    float *out = t->dtype == TP_DTYPE_F32 ? dst : f->buf;
    if (t->dtype != TP_DTYPE_F32 && n > f->buf_elems)
        return tp_fail(err, TP_ERR_INTERNAL, "fill chunk larger than the staging buffer");
    for (size_t i = 0; i < n; i++) {
        /* 24 random bits -> uniform in [-1, 1) exactly representable in f32 */
        uint64_t r = splitmix64(&f->state) >> 40;
        float u = (float)r * (1.0f / 8388608.0f) - 1.0f;
        out[i] = f->offset + scale * u;
    }
    if (t->dtype == TP_DTYPE_BF16) {
        uint16_t *d = dst;
        for (size_t i = 0; i < n; i++)
            d[i] = tp_f32_to_bf16(out[i]);
    }
    f->next = first + (int64_t)n;
    return TP_OK;
}

/* ---- tokenizer files ---- */

static int copy_file(const char *src, const char *dst) {
    FILE *in = fopen(src, "rb");
    if (!in)
        return 1; /* absent: not an error for optional files */
    FILE *out = fopen(dst, "wb");
    int ok = out != NULL;
    static char buf[1 << 16];
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
        ok = fwrite(buf, 1, n, out) == n;
    if (ferror(in))
        ok = 0;
    fclose(in);
    if (out && fclose(out) != 0)
        ok = 0;
    if (!ok) {
        fprintf(stderr, "tp_mkmodel: cannot copy %s to %s: %s\n", src, dst, strerror(errno));
        return -1;
    }
    return 0;
}

static int copy_tokenizer(const opts *o) {
    static const char *const files[] = {"tokenizer.json",
                                        "tokenizer_config.json",
                                        "special_tokens_map.json",
                                        "chat_template.jinja",
                                        "vocab.json",
                                        "merges.txt",
                                        "vocab.txt",
                                        "tokenizer.model",
                                        "added_tokens.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *s = tp_path_join(o->tokenizer_dir, files[i]);
        char *d = tp_path_join(o->out, files[i]);
        int r = s && d ? copy_file(s, d) : -1;
        free(s);
        free(d);
        if (r < 0)
            return -1;
        if (r > 0 && i == 0) {
            fprintf(stderr, "tp_mkmodel: %s/tokenizer.json: not found\n", o->tokenizer_dir);
            return -1;
        }
    }
    int64_t m = tokenizer_max_id(o->tokenizer_dir);
    if (m >= o->vocab) /* e.g. Gemma3's <image_soft_token> 262144 with vocab_size 262144 */
        fprintf(stderr,
                "tp_mkmodel: note: the tokenizer has ids up to %lld, beyond vocab_size %lld\n",
                (long long)m, (long long)o->vocab);
    return 0;
}

static int mkdirs(const char *path) {
    char *buf = tp_strdup(path);
    if (!buf)
        return -1;
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0755);
            *p = '/';
        }
    }
    int r = mkdir(buf, 0755) == 0 || errno == EEXIST ? 0 : -1;
    free(buf);
    return r == 0 && tp_dir_exists(path) ? 0 : -1;
}

static uint64_t tensor_bytes(const tp_st_wtensor *t) {
    uint64_t n = tp_dtype_size(t->dtype);
    for (int d = 0; d < t->n_dims; d++)
        n *= (uint64_t)t->shape[d];
    return n;
}

static int cmp_wtensor(const void *a, const void *b) {
    return strcmp(((const tp_st_wtensor *)a)->name, ((const tp_st_wtensor *)b)->name);
}

/* model.safetensors, or shards of at most o->shard_bytes (a tensor larger than
 * that gets a shard of its own) plus model.safetensors.index.json as
 * transformers writes them. The stale other form is removed so a folder never
 * holds both. */
static int write_weights(const opts *o, tlist *l, uint64_t *n_params) {
    qsort(l->t, l->n, sizeof *l->t, cmp_wtensor); /* shards hold runs of names */
    uint64_t total = 0;
    for (size_t i = 0; i < l->n; i++) {
        uint64_t e = tensor_bytes(&l->t[i]) / tp_dtype_size(l->t[i].dtype);
        *n_params += e;
        total += tensor_bytes(&l->t[i]);
    }
    /* shard boundaries: first tensor index of each shard */
    size_t *start = tp_malloc_array(l->n + 2, sizeof *start);
    if (!start) {
        fprintf(stderr, "tp_mkmodel: out of memory\n");
        return 1;
    }
    size_t n_shards = 0;
    uint64_t cur = 0;
    start[n_shards++] = 0;
    for (size_t i = 0; i < l->n; i++) {
        uint64_t b = tensor_bytes(&l->t[i]);
        if (o->shard_bytes > 0 && cur > 0 && cur + b > (uint64_t)o->shard_bytes) {
            start[n_shards++] = i;
            cur = 0;
        }
        cur += b;
    }
    start[n_shards] = l->n;
    bool sharded = o->shard_bytes > 0;

    filler f = {.o = o, .cur = (size_t)-1};
    f.buf_elems = ((size_t)1 << 20) / 2; /* the writer's chunk, in bf16 elements */
    f.buf = malloc(f.buf_elems * sizeof(float));
    cJSON *index = sharded ? cJSON_CreateObject() : NULL;
    cJSON *wm = NULL;
    if (index) {
        cJSON *meta = cJSON_AddObjectToObject(index, "metadata");
        cJSON_AddNumberToObject(meta, "total_size", (double)total);
        wm = cJSON_AddObjectToObject(index, "weight_map");
    }
    int rc = f.buf && (!sharded || wm) ? 0 : 1;
    if (rc)
        fprintf(stderr, "tp_mkmodel: out of memory\n");
    for (size_t s = 0; rc == 0 && s < n_shards; s++) {
        char name[96];
        if (sharded)
            snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", s + 1, n_shards);
        else
            snprintf(name, sizeof name, "model.safetensors");
        char *path = tp_path_join(o->out, name);
        tp_error err;
        f.t = l->t + start[s];
        f.cur = (size_t)-1;
        if (!path) {
            fprintf(stderr, "tp_mkmodel: out of memory\n");
            rc = 1;
        } else if (tp_st_write(path, f.t, start[s + 1] - start[s], fill_fn, &f, &err) != TP_OK) {
            fprintf(stderr, "tp_mkmodel: %s\n", err.message);
            rc = 1;
        }
        free(path);
        for (size_t i = start[s]; sharded && i < start[s + 1]; i++)
            cJSON_AddStringToObject(wm, l->t[i].name, name);
    }
    char *single = tp_path_join(o->out, "model.safetensors");
    char *ipath = tp_path_join(o->out, "model.safetensors.index.json");
    if (rc == 0 && single && ipath) {
        if (sharded) {
            remove(single);
            rc = write_json(o->out, "model.safetensors.index.json", index);
            rc = rc ? 1 : 0;
        } else {
            remove(ipath);
        }
    }
    free(single);
    free(ipath);
    cJSON_Delete(index);
    free(f.buf);
    free(start);
    return rc;
}

/* ---- main ---- */

static int parse_args(int argc, char **argv, opts *o) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define FLAG(name) (!strcmp(a, name))
#define NEED()                                                                                     \
    do {                                                                                           \
        if (!v)                                                                                    \
            return die("%s needs a value", a);                                                     \
        i++;                                                                                       \
    } while (0)
#define INT_OPT(name, field)                                                                       \
    if (FLAG(name)) {                                                                              \
        NEED();                                                                                    \
        if (parse_int(v, &o->field))                                                               \
            return die("bad value for %s", name);                                                  \
        continue;                                                                                  \
    }
#define DBL_OPT(name, field)                                                                       \
    if (FLAG(name)) {                                                                              \
        NEED();                                                                                    \
        if (parse_double(v, &o->field))                                                            \
            return die("bad value for %s", name);                                                  \
        continue;                                                                                  \
    }
#define BOOL_OPT(name, field, val)                                                                 \
    if (FLAG(name)) {                                                                              \
        o->field = (val);                                                                          \
        continue;                                                                                  \
    }
        if (FLAG("--help") || FLAG("-h")) {
            usage(stdout);
            exit(0);
        }
        if (FLAG("--family")) {
            NEED();
            o->fam = !strcmp(v, "modernbert") ? FAM_MODERNBERT
                     : !strcmp(v, "qwen3")    ? FAM_QWEN3
                     : !strcmp(v, "gemma3")   ? FAM_GEMMA3
                                              : FAM_NONE;
            if (o->fam == FAM_NONE)
                return die("unknown --family '%s' (modernbert, qwen3, gemma3)", v);
            continue;
        }
        if (FLAG("--preset")) {
            NEED();
            o->preset = v;
            continue;
        }
        if (FLAG("--out")) {
            NEED();
            o->out = v;
            continue;
        }
        if (FLAG("--tokenizer-dir")) {
            NEED();
            o->tokenizer_dir = v;
            continue;
        }
        if (FLAG("--task")) {
            NEED();
            o->task = v;
            continue;
        }
        if (FLAG("--pooling")) {
            NEED();
            o->pooling = v;
            continue;
        }
        if (FLAG("--labels")) {
            NEED();
            if (set_labels(o, v))
                return die("bad --labels '%s'", v);
            if (!o->task)
                o->task = "seqcls";
            continue;
        }
        if (FLAG("--nli")) {
            set_labels(o, "entailment,neutral,contradiction");
            o->task = "seqcls";
            continue;
        }
        if (FLAG("--dtype")) {
            NEED();
            if (!strcmp(v, "f32") || !strcmp(v, "float32"))
                o->dtype = TP_DTYPE_F32;
            else if (!strcmp(v, "bf16") || !strcmp(v, "bfloat16"))
                o->dtype = TP_DTYPE_BF16;
            else
                return die("--dtype must be f32 or bf16, not '%s'", v);
            o->dtype_set = 1;
            continue;
        }
        if (FLAG("--seed")) {
            NEED();
            int64_t s;
            if (parse_int(v, &s))
                return die("bad value for %s", a);
            o->seed = (uint64_t)s;
            continue;
        }
        if (FLAG("--eos-id") || FLAG("--gen-eos-id")) {
            NEED();
            bool gen = FLAG("--gen-eos-id");
            if (parse_ids(v, gen ? o->gen_eos : o->eos, gen ? &o->n_gen_eos : &o->n_eos))
                return die("bad id list '%s'", v);
            continue;
        }
        INT_OPT("--hidden", hidden);
        INT_OPT("--layers", layers);
        INT_OPT("--heads", heads);
        INT_OPT("--kv-heads", kv_heads);
        INT_OPT("--head-dim", head_dim);
        INT_OPT("--intermediate", inter);
        INT_OPT("--vocab", vocab);
        INT_OPT("--max-positions", max_pos);
        INT_OPT("--local-window", local_window);
        INT_OPT("--global-every", global_every);
        INT_OPT("--sliding-window", sliding_window);
        INT_OPT("--sliding-pattern", sliding_pattern);
        INT_OPT("--query-pre-attn-scalar", qpas);
        INT_OPT("--bos-id", bos);
        INT_OPT("--pad-id", pad);
        INT_OPT("--cls-id", cls);
        INT_OPT("--sep-id", sep);
        DBL_OPT("--global-rope-theta", global_rope_theta);
        DBL_OPT("--local-rope-theta", local_rope_theta);
        DBL_OPT("--rope-theta", rope_theta);
        DBL_OPT("--rope-local-theta", rope_local_theta);
        DBL_OPT("--rope-linear", rope_linear);
        DBL_OPT("--final-softcap", final_softcap);
        DBL_OPT("--norm-eps", norm_eps);
        DBL_OPT("--scale", scale);
        BOOL_OPT("--tie", tie, 1);
        BOOL_OPT("--no-tie", tie, 0);
        BOOL_OPT("--layer-types", layer_types, 1);
        BOOL_OPT("--no-layer-types", layer_types, 0);
        BOOL_OPT("--attention-bias", attention_bias, 1);
        BOOL_OPT("--mlp-bias", mlp_bias, 1);
        BOOL_OPT("--norm-bias", norm_bias, 1);
        BOOL_OPT("--classifier-bias", classifier_bias, 1);
        BOOL_OPT("--no-decoder-bias", decoder_bias, 0);
        BOOL_OPT("--greedy", greedy, 1);
        BOOL_OPT("--quiet", quiet, 1);
        if (FLAG("--shard-size")) {
            NEED();
            char *end;
            errno = 0;
            double mb = strtod(v, &end);
            if (errno || end == v || *end || !(mb > 0) || mb > 1e9)
                return die("bad --shard-size '%s' (megabytes)", v);
            o->shard_bytes = (int64_t)(mb * 1e6);
            continue;
        }
        if (FLAG("--biases")) {
            o->attention_bias = o->mlp_bias = o->norm_bias = o->classifier_bias = 1;
            continue;
        }
        usage(stderr);
        return die("unknown option '%s'", a);
    }
    if (!o->out)
        return die("%s", "--out DIR is required");
    return 0;
}

int main(int argc, char **argv) {
    opts o;
    init_opts(&o);
    int rc = parse_args(argc, argv, &o);
    if (rc == 0)
        rc = fill_defaults(&o);
    if (rc != 0) {
        free(o.labels_buf);
        return rc;
    }
    double t0 = tp_now();
    if (mkdirs(o.out) != 0) {
        fprintf(stderr, "tp_mkmodel: cannot create folder %s: %s\n", o.out, strerror(errno));
        free(o.labels_buf);
        return 1;
    }
    rc = 0;
    cJSON *cfg = build_config(&o);
    if (!cfg || write_json(o.out, "config.json", cfg) != 0)
        rc = 1;
    cJSON_Delete(cfg);
    if (rc == 0 && o.fam != FAM_MODERNBERT) {
        cJSON *g = build_generation_config(&o);
        if (!g || write_json(o.out, "generation_config.json", g) != 0)
            rc = 1;
        cJSON_Delete(g);
    }
    if (rc == 0 && o.tokenizer_dir && copy_tokenizer(&o) != 0)
        rc = 1;

    tlist l = {0};
    if (rc == 0 && build_tensors(&o, &l) != 0) {
        fprintf(stderr, "tp_mkmodel: out of memory\n");
        rc = 1;
    }
    uint64_t n_params = 0;
    if (rc == 0)
        rc = write_weights(&o, &l, &n_params);
    if (rc == 0 && !o.quiet)
        printf("tp_mkmodel: wrote %s: %zu tensors, %.3f M parameters, %s, %.2f s\n", o.out, l.n,
               (double)n_params / 1e6, tp_dtype_name(o.dtype), tp_now() - t0);
    for (size_t i = 0; i < l.n; i++)
        free(l.names[i]);
    free(l.names);
    free(l.t);
    free(o.labels_buf);
    return rc;
}
