/*
 * test_template_cli.c — `tpipe chat-template` end to end (../shared/CLI.md): a model folder
 * holding only tokenizer_config.json, every conversation of chats.jsonl + chats2.jsonl as
 * input lines, each output line compared with the Python golden rendered with the
 * conversation's own options ("default": true lines of chat_golden_py.jsonl); error lines
 * must come back as {"ok": false, "error": ...}. Then the --no-generation-prompt and
 * --enable-thinking flags on a line without those fields. Uses the committed copies in
 * tests/data/templates. Skips when build/tpipe has not been built.
 */
#include "test_util.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <unistd.h>

static char *slurp(const char *path) {
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
    return b;
}

static bool write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    fputs(text, f);
    fclose(f);
    return true;
}

static int run(const char *cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Next line of *p (modified in place), NULL at the end. */
static char *next_line(char **p) {
    if (!*p || !**p)
        return NULL;
    char *s = *p, *e = strchr(s, '\n');
    if (e) {
        *e = 0;
        *p = e + 1;
    } else {
        *p = s + strlen(s);
    }
    return s;
}

static void check_family(const char *tpipe, const char *family) {
    char dir[] = "/tmp/tpl_cli_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[4096], cfg_path[256], in_path[256], out_path[256], cmd[2048];
    snprintf(path, sizeof path, "%s", tp_test_data(""));
    char *cfg = NULL;
    {
        char p[4200];
        snprintf(p, sizeof p, "%s/templates/%s_tokenizer_config.json", path, family);
        cfg = slurp(p);
    }
    CHECK(cfg != NULL);
    snprintf(cfg_path, sizeof cfg_path, "%s/tokenizer_config.json", dir);
    CHECK(cfg && write_text(cfg_path, cfg));
    free(cfg);
    /* input: every conversation line */
    char p1[4200], p2[4200], pg[4200];
    snprintf(p1, sizeof p1, "%s/templates/chats.jsonl", path);
    snprintf(p2, sizeof p2, "%s/templates/chats2.jsonl", path);
    snprintf(pg, sizeof pg, "%s/templates/%s_chat_golden_py.jsonl", path, family);
    char *c1 = slurp(p1), *c2 = slurp(p2), *golden = slurp(pg);
    CHECK(c1 && c2 && golden);
    if (!c1 || !c2 || !golden) {
        free(c1);
        free(c2);
        free(golden);
        return;
    }
    snprintf(in_path, sizeof in_path, "%s/in.jsonl", dir);
    snprintf(out_path, sizeof out_path, "%s/out.jsonl", dir);
    FILE *in = fopen(in_path, "wb");
    CHECK(in != NULL);
    if (in) {
        fputs(c1, in);
        fputs(c2, in);
        fclose(in);
    }
    snprintf(cmd, sizeof cmd, "'%s' chat-template --model '%s' --quiet --input '%s' --output '%s'",
             tpipe, dir, in_path, out_path);
    int rc = run(cmd);
    CHECK_MSG(rc == 1, "%s: exit status %d (expected 1: some conversations fail)", family, rc);
    char *out = slurp(out_path);
    CHECK(out != NULL);
    /* walk inputs and outputs in parallel; golden default lines by (source, id) */
    int n = 0, ok = 0;
    char *cur_out = out;
    for (int src = 0; src < 2 && out; src++) {
        char *conv_text = strdup(src == 0 ? c1 : c2);
        char *cp = conv_text;
        char *line;
        while ((line = next_line(&cp))) {
            char *oline = next_line(&cur_out);
            cJSON *conv = cJSON_Parse(line), *res = oline ? cJSON_Parse(oline) : NULL;
            const char *id = cJSON_GetObjectItem(conv, "id")->valuestring;
            /* find the default golden line */
            char *gcopy = strdup(golden), *gp = gcopy, *gl;
            cJSON *gold = NULL;
            while ((gl = next_line(&gp))) {
                cJSON *g = cJSON_Parse(gl);
                if (cJSON_IsTrue(cJSON_GetObjectItem(g, "default")) &&
                    strcmp(cJSON_GetObjectItem(g, "conversation_id")->valuestring, id) == 0 &&
                    strcmp(cJSON_GetObjectItem(g, "source")->valuestring,
                           src == 0 ? "chats.jsonl" : "chats2.jsonl") == 0) {
                    gold = g;
                    break;
                }
                cJSON_Delete(g);
            }
            free(gcopy);
            bool good = false;
            if (gold && res) {
                const cJSON *r = cJSON_GetObjectItem(gold, "rendered");
                bool item_ok = cJSON_IsTrue(cJSON_GetObjectItem(res, "ok"));
                if (cJSON_IsString(r))
                    good = item_ok && strcmp(cJSON_GetObjectItem(res, "result")->valuestring,
                                             r->valuestring) == 0;
                else
                    good = !item_ok && cJSON_IsString(cJSON_GetObjectItem(res, "error"));
                CHECK_EQ_INT(cJSON_GetObjectItem(res, "index")->valueint, n);
            }
            CHECK_MSG(good, "%s: conversation %s: output line %s", family, id,
                      oline ? oline : "(missing)");
            ok += good;
            n++;
            cJSON_Delete(gold);
            cJSON_Delete(conv);
            cJSON_Delete(res);
        }
        free(conv_text);
    }
    printf("%s: %d/%d conversations through the CLI match the goldens\n", family, ok, n);
    CHECK_EQ_INT(n, 52);

    /* flags apply to lines without those fields */
    snprintf(in_path, sizeof in_path, "%s/in2.jsonl", dir);
    write_text(in_path, "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}\n");
    snprintf(cmd, sizeof cmd,
             "'%s' chat-template --model '%s' --quiet --no-generation-prompt --input '%s' "
             "--output '%s'",
             tpipe, dir, in_path, out_path);
    CHECK_EQ_INT(run(cmd), 0);
    free(out);
    out = slurp(out_path);
    if (strcmp(family, "qwen3") == 0) {
        CHECK(out && strstr(out, "\"result\": \"<|im_start|>user\\nHi<|im_end|>\\n\"}"));
        snprintf(cmd, sizeof cmd,
                 "'%s' chat-template --model '%s' --quiet --enable-thinking false --input '%s' "
                 "--output '%s'",
                 tpipe, dir, in_path, out_path);
        CHECK_EQ_INT(run(cmd), 0);
        free(out);
        out = slurp(out_path);
        CHECK(out && strstr(out, "<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n\"}"));
    } else {
        CHECK(out && strstr(out, "\"result\": \"<bos><start_of_turn>user\\nHi<end_of_turn>\\n\"}"));
    }
    free(out);
    free(c1);
    free(c2);
    free(golden);
    unlink(cfg_path);
    snprintf(path, sizeof path, "%s/in.jsonl", dir);
    unlink(path);
    unlink(in_path);
    unlink(out_path);
    rmdir(dir);
}

int main(void) {
    const char *build = getenv("TPIPE_BUILD");
    char tpipe[4096];
    snprintf(tpipe, sizeof tpipe, "%s/tpipe", build ? build : ".");
    if (access(tpipe, X_OK) != 0) {
        printf("SKIP: %s not built (build the tpipe_cli target)\n", tpipe);
        return 0;
    }
    check_family(tpipe, "qwen3");
    check_family(tpipe, "gemma3");
    return tp_test_exit();
}
