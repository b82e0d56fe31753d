/*
 * template.c — the template module's API: compiling, variable sets, and a model's chat
 * template (which file it comes from, which special tokens it sees) plus the public
 * tp_chat_template_* calls used by the CLI's chat-template subcommand.
 *
 * What a chat template sees follows transformers' apply_chat_template: the special tokens
 * named in tokenizer_config.json (bos/eos/unk/sep/pad/cls/mask_token as strings, set ones
 * only), additional_special_tokens as a list when non-empty, the model-specific entries of
 * extra_special_tokens (Gemma3: boi_token, eoi_token, image_token); then messages, tools
 * (None when not given), documents (None), add_generation_prompt, enable_thinking only
 * when given, and any other fields of the input, which override the special tokens.
 */
#include "template/tpl.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- compile ---- */

tp_status tp_template_compile(const char *src, size_t len, const char *name, tp_template **out,
                              tp_error *err) {
    if (out)
        *out = NULL;
    if (!src || !out)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_template_compile: NULL argument");
    size_t bad = tp_utf8_validate(src, len);
    if (bad != len)
        return tp_fail(err, TP_ERR_TEMPLATE, "%s%stemplate is not valid UTF-8 (byte %zu)",
                       name ? name : "", name ? ": " : "", bad);
    tp_template *t = tp_calloc(1, sizeof *t);
    if (!t)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "template: out of memory");
    if (name) {
        t->name = tp_strdup(name);
        if (!t->name) {
            tp_free(t);
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "template: out of memory");
        }
    }
    tp_status st = tpl_parse(t, src, len, err);
    if (st != TP_OK) {
        tp_template_free(t);
        return st;
    }
    *out = t;
    return TP_OK;
}

void tp_template_free(tp_template *t) {
    if (!t)
        return;
    tpl_arena_free(&t->arena);
    tp_free(t->name);
    tp_free(t);
}

/* ---- variables ---- */

tp_template_vars *tp_template_vars_new(void) {
    tp_template_vars *v = tp_calloc(1, sizeof *v);
    if (!v)
        return NULL;
    v->d = tpl_dict_new(&v->arena, 8);
    if (!v->d) {
        tpl_arena_free(&v->arena);
        tp_free(v);
        return NULL;
    }
    return v;
}

void tp_template_vars_free(tp_template_vars *v) {
    if (!v)
        return;
    tpl_arena_free(&v->arena);
    tp_free(v);
}

static tp_status vset(tp_template_vars *v, const char *name, tv val, tp_error *err) {
    if (!v || !name)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "template vars: NULL argument");
    size_t n = strlen(name);
    char *k = tpl_strndup(&v->arena, name, n);
    if (!k || !tpl_dict_set(&v->arena, v->d, tv_str(k, n), val))
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "template vars: out of memory");
    return TP_OK;
}

tp_status tp_template_vars_set_none(tp_template_vars *v, const char *name, tp_error *err) {
    return vset(v, name, tv_none(), err);
}
tp_status tp_template_vars_set_bool(tp_template_vars *v, const char *name, bool b, tp_error *err) {
    return vset(v, name, tv_bool(b), err);
}
tp_status tp_template_vars_set_int(tp_template_vars *v, const char *name, int64_t i,
                                   tp_error *err) {
    return vset(v, name, tv_int(i), err);
}
tp_status tp_template_vars_set_string(tp_template_vars *v, const char *name, const char *s,
                                      tp_error *err) {
    if (!v || !s)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "template vars: NULL argument");
    size_t n = strlen(s);
    char *c = tpl_strndup(&v->arena, s, n);
    if (!c)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "template vars: out of memory");
    return vset(v, name, tv_str(c, n), err);
}

tp_status tp_template_vars_set_string_list(tp_template_vars *v, const char *name,
                                           const char *const *items, size_t n, tp_error *err) {
    if (!v || (n && !items))
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "template vars: NULL argument");
    tpl_list *l = tpl_list_new(&v->arena, n);
    if (!l)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "template vars: out of memory");
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(items[i]);
        char *c = tpl_strndup(&v->arena, items[i], len);
        if (!c)
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "template vars: out of memory");
        l->items[i] = tv_str(c, len);
    }
    tv lv = tv_none();
    lv.t = TV_LIST;
    lv.u.l = l;
    return vset(v, name, lv, err);
}

tp_status tp_template_vars_set_json(tp_template_vars *v, const char *name, const char *json,
                                    size_t len, tp_error *err) {
    if (!v || !json)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "template vars: NULL argument");
    tv val;
    char msg[200];
    if (!tpl_from_json(&v->arena, json, len, &val, msg, sizeof msg)) {
        if (v->arena.failed)
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "template vars: out of memory");
        return tp_fail(err, TP_ERR_INPUT, "variable '%s': %s", name ? name : "?", msg);
    }
    return vset(v, name, val, err);
}

tp_status tp_template_vars_set_cjson(tp_template_vars *v, const char *name, const cJSON *item,
                                     tp_error *err) {
    if (!v || !item)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "template vars: NULL argument");
    tv val;
    if (!tpl_from_cjson(&v->arena, item, &val, 0)) {
        if (v->arena.failed)
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "template vars: out of memory");
        return tp_fail(err, TP_ERR_INPUT, "variable '%s': unsupported or too deeply nested JSON",
                       name ? name : "?");
    }
    return vset(v, name, val, err);
}

tp_status tp_template_vars_set_json_fields(tp_template_vars *v, const char *json, size_t len,
                                           const char *const *skip, tp_error *err) {
    if (!v || !json)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "template vars: NULL argument");
    tv val;
    char msg[200];
    if (!tpl_from_json(&v->arena, json, len, &val, msg, sizeof msg)) {
        if (v->arena.failed)
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "template vars: out of memory");
        return tp_fail(err, TP_ERR_INPUT, "%s", msg);
    }
    if (val.t != TV_DICT)
        return tp_fail(err, TP_ERR_INPUT, "expected a JSON object, got a %s", tpl_type_name(val));
    for (size_t i = 0; i < val.u.d->n; i++) {
        tv k = val.u.d->keys[i];
        bool skipped = false;
        for (size_t s = 0; skip && skip[s]; s++)
            if (strlen(skip[s]) == k.u.s.n && memcmp(skip[s], k.u.s.p, k.u.s.n) == 0)
                skipped = true;
        if (skipped)
            continue;
        if (!tpl_dict_set(&v->arena, v->d, k, val.u.d->vals[i]))
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "template vars: out of memory");
    }
    return TP_OK;
}

bool tp_template_vars_has(const tp_template_vars *v, const char *name) {
    return v && name && tpl_dict_get_str(v->d, name, strlen(name)) != NULL;
}

/* ---- chat templates ---- */

struct tp_chat_template {
    tp_template *tpl;
    tp_template_vars *special;
};

static const char *const NAMED_TOKENS[] = {"bos_token", "eos_token", "unk_token",  "sep_token",
                                           "pad_token", "cls_token", "mask_token", NULL};

/* A token entry is a string or an AddedToken-like object {"content": "..."}. */
static const char *token_text(const cJSON *j) {
    if (cJSON_IsString(j))
        return j->valuestring;
    if (cJSON_IsObject(j)) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "content");
        if (cJSON_IsString(c))
            return c->valuestring;
    }
    return NULL;
}

static tp_status load_specials(tp_chat_template *ct, const cJSON *cfg, const char *name,
                               tp_error *err) {
    tp_status st;
    for (int i = 0; NAMED_TOKENS[i]; i++) {
        const char *s = token_text(cJSON_GetObjectItemCaseSensitive(cfg, NAMED_TOKENS[i]));
        if (s && (st = tp_template_vars_set_string(ct->special, NAMED_TOKENS[i], s, err)))
            return st;
    }
    const cJSON *add = cJSON_GetObjectItemCaseSensitive(cfg, "additional_special_tokens");
    if (cJSON_IsArray(add) && cJSON_GetArraySize(add) > 0) {
        size_t n = (size_t)cJSON_GetArraySize(add), k = 0;
        const char **items = tp_calloc(n, sizeof *items);
        if (!items)
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        for (const cJSON *c = add->child; c; c = c->next) {
            const char *s = token_text(c);
            if (!s) {
                tp_free(items);
                return tp_fail(err, TP_ERR_FORMAT,
                               "%s: additional_special_tokens[%zu] is not a string", name, k);
            }
            items[k++] = s;
        }
        st = tp_template_vars_set_string_list(ct->special, "additional_special_tokens", items, k,
                                              err);
        tp_free(items);
        if (st)
            return st;
    }
    const cJSON *extra = cJSON_GetObjectItemCaseSensitive(cfg, "extra_special_tokens");
    if (cJSON_IsObject(extra)) {
        for (const cJSON *c = extra->child; c; c = c->next) {
            const char *s = token_text(c);
            if (s && c->string &&
                (st = tp_template_vars_set_string(ct->special, c->string, s, err)))
                return st;
        }
    }
    return TP_OK;
}

static tp_status pick_template(const cJSON *cfg, const char *name, const char **out,
                               tp_error *err) {
    *out = NULL;
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
    if (!ct || cJSON_IsNull(ct))
        return TP_OK;
    if (cJSON_IsString(ct)) {
        *out = ct->valuestring;
        return TP_OK;
    }
    if (cJSON_IsArray(ct)) {
        for (const cJSON *c = ct->child; c; c = c->next) {
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(c, "name");
            const cJSON *tp = cJSON_GetObjectItemCaseSensitive(c, "template");
            if (cJSON_IsString(nm) && strcmp(nm->valuestring, "default") == 0) {
                if (!cJSON_IsString(tp))
                    return tp_fail(err, TP_ERR_FORMAT,
                                   "%s: chat_template entry 'default' has no string 'template'",
                                   name);
                *out = tp->valuestring;
                return TP_OK;
            }
        }
        return tp_fail(err, TP_ERR_NOT_FOUND,
                       "%s: chat_template is a list without a template named 'default'", name);
    }
    return tp_fail(err, TP_ERR_FORMAT,
                   "%s: chat_template must be a string or a list of "
                   "{name, template}",
                   name);
}

tp_status tp_chat_template_from_strings(const char *config_json, const char *jinja,
                                        const char *name, tp_chat_template **out, tp_error *err) {
    if (out)
        *out = NULL;
    if (!out || (!config_json && !jinja))
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_chat_template_from_strings: no input");
    const char *nm = name ? name : "tokenizer_config.json";
    tp_chat_template *ct = tp_calloc(1, sizeof *ct);
    if (!ct || !(ct->special = tp_template_vars_new())) {
        tp_free(ct);
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    }
    cJSON *cfg = NULL;
    tp_status st = TP_OK;
    const char *src = jinja;
    if (config_json) {
        unsigned long failures = tp_alloc_failures();
        cfg = cJSON_Parse(config_json);
        if (!cfg && tp_alloc_failures() != failures) {
            st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "%s: out of memory", nm);
            goto done;
        }
        if (!cfg || !cJSON_IsObject(cfg)) {
            st = tp_fail(err, TP_ERR_FORMAT, "%s: not a JSON object", nm);
            goto done;
        }
        if ((st = load_specials(ct, cfg, nm, err)))
            goto done;
        if (!src) {
            if ((st = pick_template(cfg, nm, &src, err)))
                goto done;
        }
    }
    if (!src) {
        st = tp_fail(err, TP_ERR_NOT_FOUND, "%s: no chat_template", nm);
        goto done;
    }
    st = tp_template_compile(src, strlen(src), name, &ct->tpl, err);
done:
    cJSON_Delete(cfg);
    if (st) {
        tp_chat_template_destroy(ct);
        return st;
    }
    *out = ct;
    return TP_OK;
}

/* Whether a tokenizer_config.json text has a non-null chat_template; false with
 * *oom set when parsing it ran out of memory. */
static bool config_has_template(const char *cfg, bool *oom) {
    *oom = false;
    if (!cfg)
        return false;
    unsigned long failures = tp_alloc_failures();
    cJSON *j = cJSON_Parse(cfg);
    *oom = !j && tp_alloc_failures() != failures;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "chat_template");
    bool has = t && !cJSON_IsNull(t);
    cJSON_Delete(j);
    return has;
}

tp_status tp_chat_template_load_dir(const char *model_dir, tp_chat_template **out, tp_error *err) {
    if (out)
        *out = NULL;
    if (!model_dir || !out)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_chat_template_load: NULL argument");
    if (!tp_dir_exists(model_dir))
        return tp_fail(err, TP_ERR_NOT_FOUND, "%s: no such model folder", model_dir);
    char *cfg_path = tp_path_join(model_dir, "tokenizer_config.json");
    char *jinja_path = tp_path_join(model_dir, "chat_template.jinja");
    char *cfg = NULL, *jinja = NULL;
    size_t len;
    tp_status st = TP_OK;
    if (!cfg_path || !jinja_path) {
        st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    if (tp_file_exists(cfg_path) && (st = tp_read_file(cfg_path, &cfg, &len, err)))
        goto done;
    if (tp_file_exists(jinja_path) && (st = tp_read_file(jinja_path, &jinja, &len, err)))
        goto done;
    bool oom = false;
    if (!jinja && !config_has_template(cfg, &oom)) {
        if (oom) {
            st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "%s: out of memory", cfg_path);
            goto done;
        }
        /* processor repositories keep it in chat_template.json: {"chat_template": "..."} */
        char *json_path = tp_path_join(model_dir, "chat_template.json");
        char *text = NULL;
        if (!json_path) {
            st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
        if (tp_file_exists(json_path) &&
            (st = tp_read_file(json_path, &text, &len, err)) == TP_OK) {
            unsigned long failures = tp_alloc_failures();
            cJSON *j = cJSON_Parse(text);
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "chat_template");
            if (cJSON_IsString(t))
                jinja = tp_strdup(t->valuestring);
            else if (!j && tp_alloc_failures() != failures)
                st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "%s: out of memory", json_path);
            else
                st = tp_fail(err, TP_ERR_FORMAT, "%s: no string \"chat_template\"", json_path);
            cJSON_Delete(j);
            tp_free(text);
            if (!st && !jinja)
                st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        }
        tp_free(json_path);
        if (st)
            goto done;
    }
    if (!cfg && !jinja) {
        st = tp_fail(err, TP_ERR_NOT_FOUND,
                     "%s: no chat template (no tokenizer_config.json, chat_template.jinja or "
                     "chat_template.json)",
                     model_dir);
        goto done;
    }
    st = tp_chat_template_from_strings(cfg, jinja, jinja ? jinja_path : cfg_path, out, err);
done:
    tp_free(cfg_path);
    tp_free(jinja_path);
    tp_free(cfg);
    tp_free(jinja);
    return st;
}

void tp_chat_template_destroy(tp_chat_template *ct) {
    if (!ct)
        return;
    tp_template_free(ct->tpl);
    tp_template_vars_free(ct->special);
    tp_free(ct);
}

const tp_template *tp_chat_template_compiled(const tp_chat_template *ct) {
    return ct ? ct->tpl : NULL;
}

const tp_template_vars *tp_chat_template_special_vars(const tp_chat_template *ct) {
    return ct ? ct->special : NULL;
}

tp_status tp_chat_template_set_special_token(tp_chat_template *ct, const char *name,
                                             const char *value, tp_error *err) {
    if (!ct)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "NULL chat template");
    return tp_template_vars_set_string(ct->special, name, value, err);
}

tp_status tp_chat_template_render_vars(const tp_chat_template *ct, const tp_template_vars *vars,
                                       const tp_template_render_params *params, char **out,
                                       size_t *out_len, tp_error *err) {
    if (!ct)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "NULL chat template");
    const tp_template_vars *layers[2] = {vars, ct->special};
    return tp_template_render(ct->tpl, layers, 2, params, out, out_len, err);
}

static tp_status check_messages(const tp_template_vars *v, tp_error *err) {
    const tv *m = tpl_dict_get_str(v->d, "messages", 8);
    if (!m)
        return tp_fail(err, TP_ERR_INPUT, "no \"messages\" field");
    if (m->t != TV_LIST)
        return tp_fail(err, TP_ERR_INPUT, "\"messages\" must be a list of messages, got a %s",
                       tpl_type_name(*m));
    if (m->u.l->n == 0)
        return tp_fail(err, TP_ERR_INPUT,
                       "\"messages\" is empty (a chat needs at least one "
                       "message)");
    return TP_OK;
}

tp_status tp_chat_template_apply(const tp_chat_template *ct, const char *messages_json,
                                 const char *tools_json, bool add_generation_prompt,
                                 int enable_thinking, char **out, size_t *out_len, tp_error *err) {
    if (out)
        *out = NULL;
    if (!ct || !messages_json || !out)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_chat_template_apply: NULL argument");
    tp_template_vars *v = tp_template_vars_new();
    if (!v)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    tp_status st =
        tp_template_vars_set_json(v, "messages", messages_json, strlen(messages_json), err);
    if (!st)
        st = tools_json ? tp_template_vars_set_json(v, "tools", tools_json, strlen(tools_json), err)
                        : tp_template_vars_set_none(v, "tools", err);
    if (!st)
        st = tp_template_vars_set_none(v, "documents", err);
    if (!st)
        st = tp_template_vars_set_bool(v, "add_generation_prompt", add_generation_prompt, err);
    if (!st && enable_thinking >= 0)
        st = tp_template_vars_set_bool(v, "enable_thinking", enable_thinking != 0, err);
    if (!st)
        st = check_messages(v, err);
    if (!st)
        st = tp_chat_template_render_vars(ct, v, NULL, out, out_len, err);
    tp_template_vars_free(v);
    return st;
}

/* ---- public API (tpipe.h) ---- */

tp_chat_template_params tp_chat_template_default_params(void) {
    tp_chat_template_params p;
    memset(&p, 0, sizeof p);
    p.add_generation_prompt = true;
    p.enable_thinking = -1;
    return p;
}

tp_status tp_chat_template_load(const char *model_dir, tp_chat_template **out, tp_error *err) {
    return tp_chat_template_load_dir(model_dir, out, err);
}

tp_status tp_chat_template_render(const tp_chat_template *ct, const char *json,
                                  const tp_chat_template_params *params, char **out,
                                  tp_error *err) {
    if (out)
        *out = NULL;
    if (!ct || !json || !out)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_chat_template_render: NULL argument");
    tp_chat_template_params p = params ? *params : tp_chat_template_default_params();
    tp_template_vars *v = tp_template_vars_new();
    if (!v)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    tp_status st = tp_template_vars_set_none(v, "tools", err);
    if (!st)
        st = tp_template_vars_set_none(v, "documents", err);
    if (!st)
        st = tp_template_vars_set_bool(v, "add_generation_prompt", p.add_generation_prompt, err);
    if (!st && p.enable_thinking >= 0)
        st = tp_template_vars_set_bool(v, "enable_thinking", p.enable_thinking != 0, err);
    if (!st)
        st = tp_template_vars_set_json_fields(v, json, strlen(json), NULL, err);
    if (!st)
        st = check_messages(v, err);
    if (!st) {
        tp_template_render_params rp = tp_template_default_render_params();
        rp.has_now = p.has_now;
        rp.now = p.now;
        st = tp_chat_template_render_vars(ct, v, &rp, out, NULL, err);
    }
    tp_template_vars_free(v);
    return st;
}

void tp_chat_template_string_free(char *s) {
    tp_free(s);
}

void tp_chat_template_free(tp_chat_template *ct) {
    tp_chat_template_destroy(ct);
}
