/*
 * fuzz_config.c — config.json loading on in-memory JSON: tp_json_parse, the
 * registry's family lookup (tp_family_find) and each family's hyperparameter
 * reader and weight binding (tp_net_load) against the real tiny checkpoints of
 * tests/data/golden (ModernBERT MLM and classifiers, Qwen3, Gemma3), mapped
 * once at start-up.
 *
 * The input is the text of a config.json. Whatever it says, a load must either
 * succeed with a network whose dimensions agree with the config it was given
 * (positive sizes, a task head) or fail with a status and a message; it must
 * never crash, leak, or allocate without bound (libFuzzer's -malloc_limit_mb).
 */
#include "fuzz_util.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "models/model.h"

#define MAX_CKPT 16

static struct {
    const tp_family *family;
    tp_st_model *st;
    char name[64];
} g_ckpt[MAX_CKPT];
static size_t g_n_ckpt;

static void add_checkpoint(const char *name) {
    char rel[128];
    snprintf(rel, sizeof rel, "golden/%s", name);
    char *dir = fuzz_data_path(rel);
    char *cfg = tp_path_join(dir, "config.json");
    tp_json_doc doc;
    tp_error err;
    const tp_family *fam = NULL;
    if (tp_json_load(cfg, &doc, &err) != TP_OK) {
        fprintf(stderr, "fuzz_config: %s\n", err.message);
        abort();
    }
    if (tp_family_find(&doc, &fam, &err) != TP_OK ||
        tp_st_open(dir, &g_ckpt[g_n_ckpt].st, &err) != TP_OK) {
        fprintf(stderr, "fuzz_config: %s\n", err.message);
        abort();
    }
    g_ckpt[g_n_ckpt].family = fam;
    snprintf(g_ckpt[g_n_ckpt].name, sizeof g_ckpt[g_n_ckpt].name, "%s", name);
    g_n_ckpt++;
    tp_json_free(&doc);
    tp_free(cfg);
    tp_free(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    static const char *const names[] = {"modernbert_mlm",
                                        "modernbert_seqcls_mean",
                                        "modernbert_seqcls_cls_bias",
                                        "qwen3_tied",
                                        "qwen3_untied_bf16",
                                        "gemma3_pattern_linear_rope",
                                        "gemma3_layer_types_softcap"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        add_checkpoint(names[i]);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tp_json_doc doc;
    tp_error err;
    tp_status st = tp_json_parse((const char *)data, size, "config.json", &doc, &err);
    fuzz_note("parse", st, &err);
    if (st != TP_OK) {
        FUZZ_CHECK(st == TP_ERR_FORMAT || st == TP_ERR_OUT_OF_MEMORY, "parse: %s: %s",
                   tp_status_name(st), err.message);
        FUZZ_CHECK(err.message[0], "parse failed without a message");
        return 0;
    }
    const tp_family *fam = NULL;
    st = cJSON_IsObject(doc.root) ? tp_family_find(&doc, &fam, &err) : TP_ERR_FORMAT;
    if (st == TP_OK) {
        for (size_t i = 0; i < g_n_ckpt; i++) {
            if (g_ckpt[i].family != fam)
                continue;
            tp_net_load_args args = {.dir = g_ckpt[i].name,
                                     .config = &doc,
                                     .st = g_ckpt[i].st,
                                     .compute = TP_COMPUTE_F32};
            tp_net *net = NULL;
            tp_error_clear(&err);
            tp_status ls = tp_net_load(&args, &net, &err);
            fuzz_note(g_ckpt[i].name, ls, &err);
            if (ls != TP_OK) {
                FUZZ_CHECK(net == NULL, "failed load returned a net");
                FUZZ_CHECK(err.status == ls && err.message[0], "%s without a message",
                           tp_status_name(ls));
                FUZZ_CHECK(ls != TP_ERR_INTERNAL && ls != TP_ERR_INVALID_ARGUMENT,
                           "%s loading %s: %s", tp_status_name(ls), g_ckpt[i].name, err.message);
                continue;
            }
            FUZZ_CHECK(net->family == fam, "wrong family");
            FUZZ_CHECK(net->vocab_size > 0 && net->hidden_size > 0 && net->n_layers > 0,
                       "loaded net with vocab %lld hidden %lld layers %lld",
                       (long long)net->vocab_size, (long long)net->hidden_size,
                       (long long)net->n_layers);
            FUZZ_CHECK((net->kind == TP_NET_ENCODER) == (net->enc != NULL) &&
                           (net->kind == TP_NET_DECODER) == (net->dec != NULL),
                       "kind and ops disagree");
            tp_net_free(net);
        }
    }
    tp_json_free(&doc);
    return 0;
}
