/*
 * test_template_golden.c — every line of the Python Jinja2 chat-template goldens
 * (chat_golden_py.jsonl of Qwen3, Gemma3 and Llama 3.2) reproduced: `rendered` lines byte for
 * byte, `error` lines must fail with a template error that has a message.
 *
 * Variables per line, as ../shared/tokenizers/README.md ("Chat-template goldens") says:
 * messages and the conversation's other fields from chats*.jsonl, tools = the
 * conversation's tools when options.tools else None, documents = None,
 * add_generation_prompt, enable_thinking only when not null, the special tokens of the
 * family, and for Llama strftime_now frozen at options.now.
 *
 * Data: ../shared/tokenizers when present, else the copies in tests/data/templates (so a
 * fresh clone still runs every line).
 */
#include "template/template.h"
#include "test_util.h"

#include <cjson/cJSON.h>
#include <time.h>

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    if (b)
        b[n] = 0;
    fclose(f);
    if (len)
        *len = (size_t)n;
    return b;
}

/* conversations: id -> raw line */
typedef struct {
    char *id;
    char *line;
} conv;
static conv convs[256];
static int n_convs;

static void load_convs(const char *path, const char *source) {
    char *text = slurp(path, NULL);
    if (!text) {
        fprintf(stderr, "cannot read %s\n", path);
        tp_test_failures++;
        return;
    }
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *id = cJSON_GetObjectItem(j, "id");
        if (cJSON_IsString(id) && n_convs < 256) {
            size_t n = strlen(source) + strlen(id->valuestring) + 2;
            convs[n_convs].id = malloc(n);
            snprintf(convs[n_convs].id, n, "%s/%s", source, id->valuestring);
            convs[n_convs].line = strdup(line);
            n_convs++;
        }
        cJSON_Delete(j);
    }
    free(text);
}

static const char *find_conv(const char *source, const char *id) {
    char key[512];
    snprintf(key, sizeof key, "%s/%s", source, id);
    for (int i = 0; i < n_convs; i++)
        if (strcmp(convs[i].id, key) == 0)
            return convs[i].line;
    return NULL;
}

static void first_diff(const char *a, const char *b) {
    size_t i = 0;
    while (a[i] && a[i] == b[i])
        i++;
    size_t from = i > 40 ? i - 40 : 0;
    fprintf(stderr, "  first difference at byte %zu\n  got:      \"", i);
    for (size_t k = from; a[k] && k < i + 40; k++)
        fputc(a[k] == '\n' ? '|' : a[k], stderr);
    fprintf(stderr, "\"\n  expected: \"");
    for (size_t k = from; b[k] && k < i + 40; k++)
        fputc(b[k] == '\n' ? '|' : b[k], stderr);
    fprintf(stderr, "\"\n");
}

static void run_family(const char *family, const char *dir, bool from_shared) {
    char path[4096];
    tp_error err;
    tp_chat_template *ct = NULL;
    tp_status st;
    if (strcmp(family, "llama3_2") == 0) {
        snprintf(path, sizeof path,
                 from_shared ? "%s/llama3_2/chat_template.jinja"
                             : "%s/llama3_2_chat_template.jinja",
                 dir);
        char *jinja = slurp(path, NULL);
        CHECK_MSG(jinja != NULL, "cannot read %s", path);
        if (!jinja)
            return;
        st = tp_chat_template_from_strings(NULL, jinja, "llama3_2", &ct, &err);
        free(jinja);
        CHECK_MSG(st == TP_OK, "%s", err.message);
        if (st)
            return;
        /* Llama 3.x Instruct configs (no tokenizer_config.json is stored) */
        CHECK(tp_chat_template_set_special_token(ct, "bos_token", "<|begin_of_text|>", &err) ==
              TP_OK);
        CHECK(tp_chat_template_set_special_token(ct, "eos_token", "<|eot_id|>", &err) == TP_OK);
    } else {
        snprintf(path, sizeof path,
                 from_shared ? "%s/%s/tokenizer_config.json" : "%s/%s_tokenizer_config.json", dir,
                 family);
        char *cfg = slurp(path, NULL);
        CHECK_MSG(cfg != NULL, "cannot read %s", path);
        if (!cfg)
            return;
        st = tp_chat_template_from_strings(cfg, NULL, family, &ct, &err);
        free(cfg);
        CHECK_MSG(st == TP_OK, "%s", err.message);
        if (st)
            return;
    }
    snprintf(path, sizeof path,
             from_shared ? "%s/%s/chat_golden_py.jsonl" : "%s/%s_chat_golden_py.jsonl", dir,
             family);
    char *golden = slurp(path, NULL);
    CHECK_MSG(golden != NULL, "cannot read %s", path);
    if (!golden) {
        tp_chat_template_destroy(ct);
        return;
    }
    int n_lines = 0, n_ok = 0, n_rendered = 0, n_errors = 0;
    char *save = NULL;
    for (char *line = strtok_r(golden, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        n_lines++;
        cJSON *g = cJSON_Parse(line);
        const cJSON *cid = cJSON_GetObjectItem(g, "conversation_id");
        const cJSON *src = cJSON_GetObjectItem(g, "source");
        const cJSON *opt = cJSON_GetObjectItem(g, "options");
        const cJSON *rendered = cJSON_GetObjectItem(g, "rendered");
        const cJSON *error = cJSON_GetObjectItem(g, "error");
        const char *conv_line = (cJSON_IsString(cid) && cJSON_IsString(src))
                                    ? find_conv(src->valuestring, cid->valuestring)
                                    : NULL;
        CHECK_MSG(conv_line != NULL, "%s line %d: conversation not found", family, n_lines);
        if (!conv_line) {
            cJSON_Delete(g);
            continue;
        }
        bool with_tools = cJSON_IsTrue(cJSON_GetObjectItem(opt, "tools"));
        const cJSON *agp = cJSON_GetObjectItem(opt, "add_generation_prompt");
        const cJSON *et = cJSON_GetObjectItem(opt, "enable_thinking");
        const cJSON *now = cJSON_GetObjectItem(opt, "now");

        tp_template_vars *v = tp_template_vars_new();
        static const char *const skip_tools[] = {
            "id",    "note", "expected_errors", "add_generation_prompt", "enable_thinking",
            "tools", NULL};
        static const char *const skip_notools[] = {
            "id", "note", "expected_errors", "add_generation_prompt", "enable_thinking", NULL};
        st = tp_template_vars_set_json_fields(v, conv_line, strlen(conv_line),
                                              with_tools ? skip_notools : skip_tools, &err);
        CHECK_MSG(st == TP_OK, "%s", err.message);
        if (!with_tools)
            tp_template_vars_set_none(v, "tools", &err);
        tp_template_vars_set_none(v, "documents", &err);
        tp_template_vars_set_bool(v, "add_generation_prompt", cJSON_IsTrue(agp), &err);
        if (cJSON_IsBool(et))
            tp_template_vars_set_bool(v, "enable_thinking", cJSON_IsTrue(et), &err);
        tp_template_render_params rp = tp_template_default_render_params();
        if (cJSON_IsString(now)) {
            struct tm tmv = {0};
            if (sscanf(now->valuestring, "%d-%d-%dT%d:%d:%d", &tmv.tm_year, &tmv.tm_mon,
                       &tmv.tm_mday, &tmv.tm_hour, &tmv.tm_min, &tmv.tm_sec) == 6) {
                tmv.tm_year -= 1900;
                tmv.tm_mon -= 1;
                rp.has_now = true;
                rp.now = (int64_t)timegm(&tmv);
            }
        }
        char *out = NULL;
        size_t out_len = 0;
        st = tp_chat_template_render_vars(ct, v, &rp, &out, &out_len, &err);
        bool ok;
        if (cJSON_IsString(rendered)) {
            n_rendered++;
            ok = st == TP_OK && out_len == strlen(rendered->valuestring) &&
                 memcmp(out, rendered->valuestring, out_len) == 0;
            if (!ok) {
                fprintf(stderr, "%s line %d (%s, agp=%d, thinking=%s, tools=%d): ", family, n_lines,
                        cid->valuestring, cJSON_IsTrue(agp),
                        cJSON_IsBool(et) ? (cJSON_IsTrue(et) ? "true" : "false") : "unset",
                        with_tools);
                if (st != TP_OK)
                    fprintf(stderr, "render failed: %s\n", err.message);
                else {
                    fprintf(stderr, "output differs\n");
                    first_diff(out, rendered->valuestring);
                }
            }
        } else {
            n_errors++;
            ok = st == TP_ERR_TEMPLATE && err.message[0] != 0;
            if (!ok)
                fprintf(stderr, "%s line %d (%s): expected an error (%s), got %s\n", family,
                        n_lines, cid->valuestring, cJSON_IsString(error) ? error->valuestring : "?",
                        tp_status_name(st));
            else if (getenv("TPL_SHOW_ERRORS"))
                fprintf(stderr, "%s %s: expected [%s] got [%s]\n", family, cid->valuestring,
                        cJSON_IsString(error) ? error->valuestring : "?", err.message);
        }
        CHECK(ok);
        n_ok += ok;
        free(out);
        tp_template_vars_free(v);
        cJSON_Delete(g);
    }
    printf("%s: %d/%d lines reproduced (%d rendered, %d errors)\n", family, n_ok, n_lines,
           n_rendered, n_errors);
    free(golden);
    tp_chat_template_destroy(ct);
}

int main(void) {
    const char *shared = tp_test_shared("tokenizers/chats2.jsonl");
    char dir[4096];
    bool from_shared = shared != NULL;
    if (from_shared) {
        snprintf(dir, sizeof dir, "%s", tp_test_shared("tokenizers"));
        printf("using ../shared/tokenizers\n");
    } else {
        snprintf(dir, sizeof dir, "%s", tp_test_data("templates"));
        printf("../shared absent: using the copies in tests/data/templates\n");
    }
    char path[4200];
    snprintf(path, sizeof path, from_shared ? "%s/chats.jsonl" : "%s/chats.jsonl", dir);
    load_convs(path, "chats.jsonl");
    snprintf(path, sizeof path, "%s/chats2.jsonl", dir);
    load_convs(path, "chats2.jsonl");
    CHECK(n_convs == 52);
    run_family("qwen3", dir, from_shared);
    run_family("gemma3", dir, from_shared);
    run_family("llama3_2", dir, from_shared);
    /* The committed copies must equal ../shared's (they are what a fresh clone tests). */
    if (from_shared) {
        static const char *const pairs[][2] = {
            {"chats.jsonl", "chats.jsonl"},
            {"chats2.jsonl", "chats2.jsonl"},
            {"qwen3/chat_golden_py.jsonl", "qwen3_chat_golden_py.jsonl"},
            {"gemma3/chat_golden_py.jsonl", "gemma3_chat_golden_py.jsonl"},
            {"llama3_2/chat_golden_py.jsonl", "llama3_2_chat_golden_py.jsonl"},
            {"llama3_2/chat_template.jinja", "llama3_2_chat_template.jinja"},
            {"qwen3/tokenizer_config.json", "qwen3_tokenizer_config.json"}};
        for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
            char a[4200], b[4200];
            size_t la = 0, lb = 0;
            snprintf(a, sizeof a, "%s/%s", dir, pairs[i][0]);
            snprintf(b, sizeof b, "%s", tp_test_data("templates"));
            strncat(b, "/", sizeof b - strlen(b) - 1);
            strncat(b, pairs[i][1], sizeof b - strlen(b) - 1);
            char *x = slurp(a, &la), *y = slurp(b, &lb);
            CHECK_MSG(x && y && la == lb && memcmp(x, y, la) == 0,
                      "tests/data/templates/%s differs from ../shared", pairs[i][1]);
            free(x);
            free(y);
        }
    }
    for (int i = 0; i < n_convs; i++) {
        free(convs[i].id);
        free(convs[i].line);
    }
    return tp_test_exit();
}
