/*
 * fuzz_jsonl.c — the CLI's JSON-lines input (tools/tpipe, CLI.md "Input"):
 * the input is cut into lines as the reader does (cli_line_len), each line
 * becomes an item (cli_item_from_line: JSON string, JSON object with "text",
 * or the raw line), then the per-item fields the subcommands read are parsed
 * (cli_item_gen_options for generate, cli_item_labels for zero-shot), and the
 * item's text is written back as a JSON string (cli_json_str).
 *
 * Invariants: an item is either bad_input with a message or has a text that
 * is NULL only for an object without "text"; the written string is valid JSON
 * that reads back as the text itself when the text is valid UTF-8 (else with
 * U+FFFD for the bad bytes); accepted settings are in their documented
 * ranges; labels are non-empty strings.
 */
#include "cli.h"
#include "fuzz_util.h"

static void check_item(const cli_item *it) {
    if (it->bad_input) {
        FUZZ_CHECK(it->bad_input[0], "empty bad_input message");
        return;
    }
    FUZZ_CHECK(it->text || it->obj, "no text and no object");
    if (it->text) {
        tp_buf b = {0};
        cli_json_str(&b, it->text, it->text_len);
        FUZZ_CHECK(b.data, "cli_json_str wrote nothing");
        cJSON *back = cJSON_ParseWithLength(b.data, b.len);
        FUZZ_CHECK(cJSON_IsString(back), "written text is not a JSON string: %s", b.data);
        bool clean = tp_utf8_validate(it->text, it->text_len) == it->text_len &&
                     !memchr(it->text, 0, it->text_len);
        if (clean)
            FUZZ_CHECK(strlen(back->valuestring) == it->text_len &&
                           !memcmp(back->valuestring, it->text, it->text_len),
                       "text does not read back");
        cJSON_Delete(back);
        tp_buf_free(&b);
    }

    tp_gen_options o;
    const char **stops = NULL;
    const char *bad = cli_item_gen_options(it->obj, &o, &stops);
    if (bad) {
        FUZZ_CHECK(bad[0] && !stops, "bad settings: empty message or stops left");
    } else {
        FUZZ_CHECK(o.max_new_tokens >= -1 && o.top_k >= -1 && o.seed >= -1, "int setting range");
        FUZZ_CHECK(!(o.temperature < -1.0f) && !(o.top_p < -1.0f) && !(o.min_p < -1.0f),
                   "float setting range");
        /* "stop": [] is a set, empty list (it overrides --stop): stop non-NULL, n_stop 0 */
        FUZZ_CHECK(o.n_stop == 0 || o.stop != NULL, "n_stop %zu with stop NULL", o.n_stop);
        for (size_t i = 0; i < o.n_stop; i++)
            FUZZ_CHECK(o.stop[i] != NULL, "NULL stop string");
    }
    free((void *)stops);

    static const char *const dflt_items[] = {"positive", "negative"};
    const cli_strlist dflt = {(const char **)dflt_items, 2};
    cli_strlist split = {0};
    size_t n = 0;
    const char *why = NULL;
    const char **labels = cli_item_labels(it, (it->text_len & 1) ? &dflt : NULL, &n, &split, &why);
    if (!labels) {
        FUZZ_CHECK(why && why[0], "no labels and no reason");
    } else {
        FUZZ_CHECK(n > 0, "zero labels accepted");
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK(labels[i] && labels[i][0], "empty label %zu", i);
    }
    if (split.n)
        cli_strlist_free_copies(&split);
    else
        free((void *)split.items);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t pos = 0, index = 0;
    while (pos < size) {
        const uint8_t *nl = memchr(data + pos, '\n', size - pos);
        size_t got = nl ? (size_t)(nl - (data + pos)) + 1 : size - pos;
        /* as getline gives it: the line with its newline, NUL-terminated */
        char *line = malloc(got + 1);
        if (!line)
            abort();
        memcpy(line, data + pos, got);
        line[got] = '\0';
        size_t len = cli_line_len(line, got);
        line[len] = '\0';
        cli_item it;
        cli_item_from_line(&it, line, len);
        it.index = index++;
        it.line_no = index;
        check_item(&it);
        cli_item_free(&it);
        pos += got;
    }
    return 0;
}
