/*
 * registry.c — the table of model families and the lookup from config.json.
 *
 * Adding a family: write src/models/<family>.c defining a tp_family, declare it
 * in model.h, and add one line to kFamilies below.
 */
#include "models/model.h"

#include <string.h>

static const tp_family *const kFamilies[] = {
    &tp_family_modernbert,
    &tp_family_qwen3,
    &tp_family_gemma3,
};

static bool in_list(const char *const *list, const char *s) {
    for (size_t i = 0; list && list[i]; i++)
        if (!strcmp(list[i], s))
            return true;
    return false;
}

tp_status tp_family_find(const tp_json_doc *config, const tp_family **out, tp_error *err) {
    if (!config || !config->root || !out)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_family_find: NULL argument");
    *out = NULL;
    const char *model_type = NULL;
    tp_status st = tp_json_string(config, config->root, "model_type", NULL, &model_type, err);
    if (st != TP_OK)
        return st;
    size_t n = sizeof kFamilies / sizeof kFamilies[0];
    if (model_type) {
        for (size_t i = 0; i < n; i++) {
            if (in_list(kFamilies[i]->model_types, model_type)) {
                *out = kFamilies[i];
                return TP_OK;
            }
        }
    }
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(config->root, "architectures");
    const cJSON *a;
    cJSON_ArrayForEach(a, archs) {
        if (!cJSON_IsString(a))
            continue;
        for (size_t i = 0; i < n; i++) {
            if (in_list(kFamilies[i]->architectures, a->valuestring)) {
                *out = kFamilies[i];
                return TP_OK;
            }
        }
    }
    const cJSON *a0 = cJSON_IsArray(archs) ? cJSON_GetArrayItem(archs, 0) : NULL;
    return tp_fail(err, TP_ERR_UNSUPPORTED,
                   "%s: model_type \"%s\" (architecture \"%s\") is not a supported model family",
                   config->path ? config->path : "config.json", model_type ? model_type : "(none)",
                   cJSON_IsString(a0) ? a0->valuestring : "(none)");
}

tp_status tp_net_load(const tp_net_load_args *args, tp_net **out, tp_error *err) {
    if (!args || !out)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_net_load: NULL argument");
    *out = NULL;
    const tp_family *fam = NULL;
    tp_status st = tp_family_find(args->config, &fam, err);
    if (st != TP_OK)
        return st;
    st = fam->load(args, out, err);
    if (st == TP_OK && *out)
        (*out)->family = fam;
    return st;
}

void tp_net_free(tp_net *net) {
    if (net && net->family && net->family->free)
        net->family->free(net);
}
