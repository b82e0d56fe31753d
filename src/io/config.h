/*
 * config.h — reading Hugging Face JSON config files (config.json,
 * generation_config.json, tokenizer_config.json) with cJSON (internal).
 *
 * Owner: the foundation issue (#2). Typed getters with defaults and errors that
 * name the file and the key. Integers are accepted when integral (256 or 256.0);
 * every getter also returns TP_ERR_FORMAT when obj is not an object.
 */
#ifndef TP_CONFIG_H
#define TP_CONFIG_H

#include "core/core.h"

#include <cjson/cJSON.h>

typedef struct tp_json_doc {
    cJSON *root;
    char *path; /* for error messages */
} tp_json_doc;

/* Parses a JSON file; TP_ERR_NOT_FOUND when absent, TP_ERR_FORMAT (with line and
 * column) when malformed. */
tp_status tp_json_load(const char *path, tp_json_doc *doc, tp_error *err);
void tp_json_free(tp_json_doc *doc);

/* Getters on an object node: return TP_OK and set *out; when the key is absent
 * or null return TP_OK with the default; when present with the wrong type return
 * TP_ERR_FORMAT naming doc->path and key. */
tp_status tp_json_int(const tp_json_doc *doc, const cJSON *obj, const char *key, int64_t def,
                      int64_t *out, tp_error *err);
tp_status tp_json_double(const tp_json_doc *doc, const cJSON *obj, const char *key, double def,
                         double *out, tp_error *err);
tp_status tp_json_bool(const tp_json_doc *doc, const cJSON *obj, const char *key, bool def,
                       bool *out, tp_error *err);
/* *out points into the document (valid until tp_json_free); def may be NULL. */
tp_status tp_json_string(const tp_json_doc *doc, const cJSON *obj, const char *key, const char *def,
                         const char **out, tp_error *err);
/* Required variants: absent is TP_ERR_FORMAT "missing key". */
tp_status tp_json_req_int(const tp_json_doc *doc, const cJSON *obj, const char *key, int64_t *out,
                          tp_error *err);
tp_status tp_json_req_double(const tp_json_doc *doc, const cJSON *obj, const char *key, double *out,
                             tp_error *err);
tp_status tp_json_req_string(const tp_json_doc *doc, const cJSON *obj, const char *key,
                             const char **out, tp_error *err);

/* Parses JSON text held in memory; `name` is used in error messages (and kept
 * as doc->path). Same errors as tp_json_load. */
tp_status tp_json_parse(const char *text, size_t len, const char *name, tp_json_doc *doc,
                        tp_error *err);
/* A sub-object: *out = NULL when absent or null; TP_ERR_FORMAT when not an object. */
tp_status tp_json_object(const tp_json_doc *doc, const cJSON *obj, const char *key,
                         const cJSON **out, tp_error *err);
/* An integer or a list of integers (e.g. eos_token_id): *out malloc'd (tp_free()),
 * *n items; absent/null gives *out = NULL, *n = 0. */
tp_status tp_json_int_list(const tp_json_doc *doc, const cJSON *obj, const char *key, int64_t **out,
                           size_t *n, tp_error *err);

#endif /* TP_CONFIG_H */
