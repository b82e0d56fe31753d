/*
 * template.h — internal API of the chat-template engine (src/template/).
 *
 * A Jinja subset that renders the models' own chat_template exactly as Hugging Face
 * transformers does with Python Jinja2 (ImmutableSandboxedEnvironment, trim_blocks,
 * lstrip_blocks, loopcontrols, keep_trailing_newline=False, a json.dumps-style tojson,
 * raise_exception, strftime_now, {% generation %}). See docs/template.md.
 *
 * Three layers:
 *   tp_template       a compiled template: immutable after tp_template_compile, safe to
 *                     render from many threads at once.
 *   tp_template_vars  a set of named variables (JSON values converted exactly: 1.0 stays a
 *                     float, a 20-digit integer stays exact). Read-only while rendering,
 *                     so one set may serve concurrent renders.
 *   tp_chat_template  a model's chat template + its special-token variables (bos_token,
 *                     eos_token, additional_special_tokens, Gemma3's boi/eoi/image tokens),
 *                     loaded from a model folder; also declared in the public tpipe.h.
 *
 * Errors: every template failure (syntax error, raise_exception, type error, undefined
 * error, unsupported feature, output too large) is TP_ERR_TEMPLATE with a message that
 * names the template line; bad variables are TP_ERR_INPUT; allocation failures
 * TP_ERR_OUT_OF_MEMORY.
 */
#ifndef TP_TEMPLATE_H
#define TP_TEMPLATE_H

#include "tpipe.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;

/* ---- compiled templates ---- */

typedef struct tp_template tp_template;

/* Compiles src[0..len) (UTF-8). `name` (may be NULL) prefixes error messages, e.g. the
 * file the template came from. On error *out is NULL and err says where (line) and what. */
tp_status tp_template_compile(const char *src, size_t len, const char *name, tp_template **out,
                              tp_error *err);
void tp_template_free(tp_template *t);

/* ---- variables ---- */

typedef struct tp_template_vars tp_template_vars;

tp_template_vars *tp_template_vars_new(void); /* NULL on out of memory */
void tp_template_vars_free(tp_template_vars *v);

/* Each setter replaces a variable of the same name. */
tp_status tp_template_vars_set_none(tp_template_vars *v, const char *name, tp_error *err);
tp_status tp_template_vars_set_bool(tp_template_vars *v, const char *name, bool b, tp_error *err);
tp_status tp_template_vars_set_int(tp_template_vars *v, const char *name, int64_t i, tp_error *err);
tp_status tp_template_vars_set_string(tp_template_vars *v, const char *name, const char *s,
                                      tp_error *err);
tp_status tp_template_vars_set_string_list(tp_template_vars *v, const char *name,
                                           const char *const *items, size_t n, tp_error *err);
/* Parses JSON text (any JSON value) into the engine's values, keeping number spelling:
 * an integer literal is an int (exact even past 64 bits: it prints back as written), a
 * literal with '.' or an exponent is a float. Bad JSON is TP_ERR_INPUT naming the offset. */
tp_status tp_template_vars_set_json(tp_template_vars *v, const char *name, const char *json,
                                    size_t len, tp_error *err);
/* From a cJSON tree. cJSON keeps only doubles, so a whole number within +-2^53 becomes an
 * int and anything else a float (1.0 prints as 1): prefer the JSON-text setters. */
tp_status tp_template_vars_set_cjson(tp_template_vars *v, const char *name,
                                     const struct cJSON *item, tp_error *err);
/* Parses a JSON object and sets each top-level field as a variable, except the names in
 * skip (NULL-terminated list, may be NULL). Not an object: TP_ERR_INPUT. */
tp_status tp_template_vars_set_json_fields(tp_template_vars *v, const char *json, size_t len,
                                           const char *const *skip, tp_error *err);
bool tp_template_vars_has(const tp_template_vars *v, const char *name);

/* ---- rendering ---- */

typedef struct tp_template_render_params {
    /* strftime_now() clock. has_now false (default): the current local time, as Python's
     * datetime.now(). has_now true: the Unix time `now` formatted as UTC (tests freeze the
     * clock with it). */
    bool has_now;
    int64_t now;
    size_t max_output; /* output byte limit; 0 = default (64 MiB) */
    size_t max_memory; /* limit on the render's temporary values; 0 = default (256 MiB) */
} tp_template_render_params;

tp_template_render_params tp_template_default_render_params(void);

/* Renders t with variables looked up in vars[0], then vars[1], ... (n_vars sets, NULL
 * entries skipped), then the globals (raise_exception, strftime_now, namespace, range,
 * dict). *out is malloc'd, NUL-terminated (tp_free()); *out_len may be NULL. */
tp_status tp_template_render(const tp_template *t, const tp_template_vars *const *vars,
                             size_t n_vars, const tp_template_render_params *params, char **out,
                             size_t *out_len, tp_error *err);

/* ---- chat templates of a model ---- */

typedef struct tp_chat_template tp_chat_template; /* also in tpipe.h */

/* From a model folder: chat_template.jinja when present, else tokenizer_config.json's
 * "chat_template" (a string, or a list of {name, template}: "default" is used), else
 * chat_template.json's "chat_template". Special tokens come from tokenizer_config.json when
 * present. TP_ERR_NOT_FOUND when the folder has no chat template. */
tp_status tp_chat_template_load_dir(const char *model_dir, tp_chat_template **out, tp_error *err);
/* From memory: config_json is tokenizer_config.json's text (may be NULL), jinja a template
 * overriding the config's (may be NULL; one of the two must give a template). */
tp_status tp_chat_template_from_strings(const char *config_json, const char *jinja,
                                        const char *name, tp_chat_template **out, tp_error *err);
void tp_chat_template_destroy(tp_chat_template *ct);

const tp_template *tp_chat_template_compiled(const tp_chat_template *ct);
/* The special-token variables (bos_token, ..., additional_special_tokens, boi_token, ...). */
const tp_template_vars *tp_chat_template_special_vars(const tp_chat_template *ct);
/* Replaces the special-token variables, e.g. for a template file without a config. */
tp_status tp_chat_template_set_special_token(tp_chat_template *ct, const char *name,
                                             const char *value, tp_error *err);

/* Renders with vars (messages, tools, add_generation_prompt, ... as the caller sets them)
 * layered over the special tokens (vars win, as in transformers). */
tp_status tp_chat_template_render_vars(const tp_chat_template *ct, const tp_template_vars *vars,
                                       const tp_template_render_params *params, char **out,
                                       size_t *out_len, tp_error *err);

/* The common case for text generation: messages_json is a JSON array of messages,
 * tools_json a JSON array or NULL (= not given: the template sees tools = None),
 * enable_thinking -1 = not passed, 0/1 = false/true. Like apply_chat_template, an empty
 * message list is an error. */
tp_status tp_chat_template_apply(const tp_chat_template *ct, const char *messages_json,
                                 const char *tools_json, bool add_generation_prompt,
                                 int enable_thinking, char **out, size_t *out_len, tp_error *err);

#endif /* TP_TEMPLATE_H */
