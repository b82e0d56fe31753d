/*
 * items.c — what the subcommands read from an input item beyond its text: a
 * generation item's own settings ("max_new_tokens", "temperature", ...,
 * "stop") and a zero-shot item's own "labels". Part of the framework library
 * so that the commands and the fuzz harness (fuzz/fuzz_jsonl.c) run the same
 * code on the same parsed lines.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

const char *cli_item_gen_options(const cJSON *obj, tp_gen_options *o, const char ***stops) {
    *o = tp_gen_options_unset();
    *stops = NULL;
    if (!obj)
        return NULL;
    static const char *ints[] = {"max_new_tokens", "top_k", "seed"};
    static const char *floats[] = {"temperature", "top_p", "min_p", "repetition_penalty"};
    for (size_t f = 0; f < 3; f++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, ints[f]);
        if (!v || cJSON_IsNull(v))
            continue;
        /* range first: casting a double outside long long's range is undefined */
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > 9.0e15 ||
            v->valuedouble != (double)(long long)v->valuedouble)
            return f == 0   ? "field \"max_new_tokens\" must be a non-negative integer"
                   : f == 1 ? "field \"top_k\" must be a non-negative integer"
                            : "field \"seed\" must be a non-negative integer";
        if (f == 0) {
            if (v->valuedouble > 2147483647.0)
                return "field \"max_new_tokens\" is too large";
            o->max_new_tokens = (int32_t)v->valuedouble;
        } else if (f == 1) {
            if (v->valuedouble > 2147483647.0)
                return "field \"top_k\" is too large";
            o->top_k = (int32_t)v->valuedouble;
        } else {
            o->seed = (int64_t)v->valuedouble;
        }
    }
    for (size_t f = 0; f < 4; f++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, floats[f]);
        if (!v || cJSON_IsNull(v))
            continue;
        if (!cJSON_IsNumber(v) || v->valuedouble < 0)
            return f == 0   ? "field \"temperature\" must be a number >= 0"
                   : f == 1 ? "field \"top_p\" must be a number >= 0"
                   : f == 2 ? "field \"min_p\" must be a number >= 0"
                            : "field \"repetition_penalty\" must be a number > 0";
        float x = (float)v->valuedouble;
        if (f == 0)
            o->temperature = x;
        else if (f == 1)
            o->top_p = x;
        else if (f == 2)
            o->min_p = x;
        else if (x <= 0)
            return "field \"repetition_penalty\" must be a number > 0";
        else
            o->repetition_penalty = x;
    }
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(obj, "stop");
    if (st && !cJSON_IsNull(st)) {
        size_t n = cJSON_IsString(st) ? 1 : cJSON_IsArray(st) ? (size_t)cJSON_GetArraySize(st) : 0;
        if (!cJSON_IsString(st) && !cJSON_IsArray(st))
            return "field \"stop\" must be a string or a list of strings";
        const char **arr = tp_malloc_array(n ? n : 1, sizeof *arr);
        if (!arr)
            return "out of memory";
        if (cJSON_IsString(st)) {
            arr[0] = st->valuestring;
        } else {
            size_t k = 0;
            const cJSON *e;
            cJSON_ArrayForEach(e, st) {
                if (!cJSON_IsString(e) || !e->valuestring[0]) {
                    free(arr);
                    return "field \"stop\" must be a list of non-empty strings";
                }
                arr[k++] = e->valuestring;
            }
        }
        *stops = arr;
        o->stop = arr;
        o->n_stop = n;
    }
    return NULL;
}

const char **cli_item_labels(const cli_item *it, const cli_strlist *defaults, size_t *n,
                             cli_strlist *split, const char **why) {
    const cJSON *l = it->obj ? cJSON_GetObjectItemCaseSensitive(it->obj, "labels") : NULL;
    *n = 0;
    *why = NULL;
    if (!l || cJSON_IsNull(l)) {
        if (!defaults || !defaults->n) {
            *why = "no labels: give --labels L1,L2,... or a \"labels\" list in the line";
            return NULL;
        }
        *n = defaults->n;
        return defaults->items;
    }
    if (cJSON_IsString(l)) {
        if (!cli_split_commas(l->valuestring, split)) {
            *why = "field \"labels\" has an empty label";
            return NULL;
        }
        *n = split->n;
        return split->items;
    }
    if (!cJSON_IsArray(l) || cJSON_GetArraySize(l) == 0) {
        *why = "field \"labels\" must be a non-empty list of strings";
        return NULL;
    }
    size_t m = (size_t)cJSON_GetArraySize(l);
    const char **arr = tp_malloc_array(m, sizeof *arr);
    if (!arr) {
        *why = "out of memory";
        return NULL;
    }
    size_t k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, l) {
        if (!cJSON_IsString(e) || !e->valuestring[0]) {
            free(arr);
            *why = "field \"labels\" must be a non-empty list of non-empty strings";
            return NULL;
        }
        arr[k++] = e->valuestring;
    }
    /* hand ownership of the array to the caller through `split` (items not owned) */
    split->items = arr;
    split->n = 0;
    *n = m;
    return arr;
}
