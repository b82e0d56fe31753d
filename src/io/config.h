/*
 * config.h — reading Hugging Face JSON config files (config.json,
 * generation_config.json, tokenizer_config.json) with cJSON (internal).
 *
 * Owner: the foundation issue (#2). Typed getters with defaults and errors that
 * name the file and the key.
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
tp_status tp_json_string(const tp_json_doc *doc, const cJSON *obj, const char *key,
                         const char *def, const char **out, tp_error *err);
/* Required variants: absent is TP_ERR_FORMAT "missing key". */
tp_status tp_json_req_int(const tp_json_doc *doc, const cJSON *obj, const char *key, int64_t *out,
                          tp_error *err);

#endif /* TP_CONFIG_H */
