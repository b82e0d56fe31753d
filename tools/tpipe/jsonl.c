/*
 * jsonl.c — input items from lines and the JSON-lines output of tpipe.
 *
 * Input rule (CLI.md): a line that parses completely as a JSON string is that
 * string; a JSON object is an item with fields ("text", "labels", "messages",
 * ...); anything else, including malformed JSON, is the raw line. Output is
 * written by hand rather than by cJSON because CLI.md fixes the number format
 * (9 significant digits, enough to round-trip a float32) and the line shape.
 */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void cli_item_from_text(cli_item *item, const char *text) {
    memset(item, 0, sizeof *item);
    item->text = text;
    item->text_len = strlen(text);
}

/* Does the JSON text hold a \u0000 escape (a NUL inside a string)? cJSON would
 * silently cut the string there, and the pipelines take C strings. */
static bool has_nul_escape(const char *s, size_t n) {
    for (size_t i = 0; i + 6 <= n; i++) {
        if (s[i] != '\\')
            continue;
        if (!memcmp(s + i + 1, "u0000", 5))
            return true;
        i++; /* skip the escaped character: "\\u0000" is a backslash and text */
    }
    return false;
}

size_t cli_line_len(const char *line, size_t len) {
    if (len && line[len - 1] == '\n')
        len--;
    if (len && line[len - 1] == '\r')
        len--;
    return len;
}

void cli_item_from_line(cli_item *item, char *line, size_t len) {
    memset(item, 0, sizeof *item);
    item->line_ = line;
    item->text = line;
    item->text_len = len;
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (memchr(line, '\0', len)) {
        item->bad_input = "input line contains a NUL byte";
        return;
    }
    if (i < len && (line[i] == '"' || line[i] == '{')) {
        const char *end = NULL;
        cJSON *root = cJSON_ParseWithLengthOpts(line, len, &end, false);
        if (root) {
            /* only whitespace may follow the value */
            while (end && (size_t)(end - line) < len && (*end == ' ' || *end == '\t'))
                end++;
            if (end && (size_t)(end - line) != len) {
                cJSON_Delete(root);
                root = NULL;
            }
        }
        if (root && has_nul_escape(line, len)) {
            cJSON_Delete(root);
            item->bad_input = "a JSON string holds U+0000 (NUL), which tpipe cannot pass on";
            return;
        }
        if (root && cJSON_IsString(root)) {
            item->root_ = root;
            item->text = root->valuestring;
            item->text_len = strlen(root->valuestring);
        } else if (root && cJSON_IsObject(root)) {
            item->root_ = root;
            item->obj = root;
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "text");
            item->text = NULL;
            item->text_len = 0;
            if (t && !cJSON_IsNull(t)) {
                if (cJSON_IsString(t)) {
                    item->text = t->valuestring;
                    item->text_len = strlen(t->valuestring);
                } else {
                    item->bad_input = "field \"text\" must be a string";
                }
            }
        } else {
            cJSON_Delete(root);
        }
    }
}

void cli_item_free(cli_item *item) {
    cJSON_Delete(item->root_);
    free(item->line_);
    memset(item, 0, sizeof *item);
}

void cli_json_str(tp_buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    tp_buf_append(b, "\"", 1);
    size_t i = 0, run = 0; /* run: start of bytes copied verbatim */
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0x80) {
            /* validate one character (looking at most 4 bytes ahead keeps this linear) */
            size_t lim = n - i < 4 ? n - i : 4;
            if (tp_utf8_validate(s + i, lim) > 0) {
                size_t cl = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
                /* U+0085, U+2028, U+2029 are valid raw in JSON but break line
                 * readers (JavaScript, Python's splitlines): escape them */
                const char *esc = NULL;
                if (cl == 2 && c == 0xC2 && (unsigned char)s[i + 1] == 0x85)
                    esc = "\\u0085";
                else if (cl == 3 && c == 0xE2 && (unsigned char)s[i + 1] == 0x80 &&
                         ((unsigned char)s[i + 2] == 0xA8 || (unsigned char)s[i + 2] == 0xA9))
                    esc = (unsigned char)s[i + 2] == 0xA8 ? "\\u2028" : "\\u2029";
                if (esc) {
                    tp_buf_append(b, s + run, i - run);
                    tp_buf_append(b, esc, 6);
                    run = i + cl;
                }
                i += cl;
                continue;
            }
            /* an invalid byte: U+FFFD */
            tp_buf_append(b, s + run, i - run);
            tp_buf_append(b, "\xEF\xBF\xBD", 3);
            i++;
            run = i;
            continue;
        }
        tp_buf_append(b, s + run, i - run);
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t el = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            el = 6;
        }
        tp_buf_append(b, esc, el);
        i++;
        run = i;
    }
    tp_buf_append(b, s + run, n - run);
    tp_buf_append(b, "\"", 1);
}

void cli_json_cstr(tp_buf *b, const char *s) {
    if (!s) {
        tp_buf_puts(b, "null");
        return;
    }
    cli_json_str(b, s, strlen(s));
}

void cli_json_float(tp_buf *b, double v) {
    if (!isfinite(v)) {
        tp_buf_puts(b, "null");
        return;
    }
    tp_buf_printf(b, "%.9g", v);
}

void cli_ok_begin(tp_buf *b, size_t index) {
    tp_buf_printf(b, "{\"index\": %zu, \"ok\": true, \"result\": ", index);
}

void cli_ok_end(tp_buf *b) {
    tp_buf_puts(b, "}\n");
}

void cli_err_line(tp_buf *b, size_t index, const char *message) {
    tp_buf_printf(b, "{\"index\": %zu, \"ok\": false, \"error\": ", index);
    cli_json_cstr(b, message && *message ? message : "unknown error");
    tp_buf_puts(b, "}\n");
}

void cli_item_err(tp_buf *b, const cli_item *item, const char *why) {
    if (!item->line_no) {
        cli_err_line(b, item->index, why);
        return;
    }
    char msg[256];
    snprintf(msg, sizeof msg, "line %zu: %s", item->line_no, why);
    cli_err_line(b, item->index, msg);
}

bool cli_result_begin(tp_buf *b, const cli_item *item, const tp_error *e) {
    if (e->status != TP_OK) {
        cli_err_line(b, item->index, e->message);
        return false;
    }
    cli_ok_begin(b, item->index);
    return true;
}

void cli_result_end(tp_buf *b, bool *ok) {
    cli_ok_end(b);
    *ok = true;
}
