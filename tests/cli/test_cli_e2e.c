/*
 * test_cli_e2e.c — build/tpipe end to end (../shared/CLI.md): every
 * subcommand on tiny random-weight models written by build/tp_mkmodel with the
 * real tokenizers (tests/data/tokenizers, or ../shared/tokenizers), JSON lines
 * in and out: mixed good and bad lines, non-JSON lines, empty input, output
 * order and batch invariance, exit codes 0/1/2 with one stderr line, --help;
 * tokenize against the Hugging Face golden ids, chat-template against the
 * Python Jinja2 goldens (when ../shared is present), and --model org/name
 * downloaded from a fake hub on 127.0.0.1 (HF_ENDPOINT).
 */
#include "../net/fake_hub.h"
#include "core/core.h"
#include "test_util.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmp[256];
static char tpipe_bin[1024], mkmodel_bin[1024];
static char tok_modernbert[4200], tok_qwen3[4200];
static char m_mlm[512], m_cls[512], m_nli[512], m_qwen[512];

typedef struct run_result {
    int rc;
    char *out;
    char *err;
    size_t n_lines;
    cJSON *lines[2048]; /* parsed stdout lines (NULL where not JSON) */
} run_result;

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return calloc(1, 1);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    size_t got = fread(b, 1, (size_t)n, f);
    b[got] = '\0';
    fclose(f);
    return b;
}

static void result_free(run_result *r) {
    for (size_t i = 0; i < r->n_lines; i++)
        cJSON_Delete(r->lines[i]);
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

/* Runs `bin args...` (NULL-terminated) with stdin from `input` (NULL: empty),
 * extra environment "K=V" strings in env (NULL-terminated or NULL). */
static void run_bin(run_result *r, const char *bin, const char *input, const char *const *env,
                    const char *const *args) {
    memset(r, 0, sizeof *r);
    char in[300], out[300], err[300];
    snprintf(in, sizeof in, "%s/stdin", tmp);
    snprintf(out, sizeof out, "%s/stdout", tmp);
    snprintf(err, sizeof err, "%s/stderr", tmp);
    FILE *f = fopen(in, "wb");
    if (input)
        fputs(input, f);
    fclose(f);
    const char *argv[64];
    int n = 0;
    argv[n++] = bin;
    for (; args[n - 1] && n < 63; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        int fi = open(in, O_RDONLY), fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644),
            fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fi, 0);
        dup2(fo, 1);
        dup2(fe, 2);
        for (size_t i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    r->rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r->out = slurp(out);
    r->err = slurp(err);
    for (char *p = r->out; *p && r->n_lines < 2048;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        r->lines[r->n_lines++] = cJSON_Parse(p);
        if (nl)
            *nl = '\n';
        if (!nl)
            break;
        p = nl + 1;
    }
}

#define RUN(r, input, ...)                                                                         \
    do {                                                                                           \
        const char *a_[] = {__VA_ARGS__, NULL};                                                    \
        run_bin(r, tpipe_bin, input, NULL, a_);                                                    \
    } while (0)
#define RUN_ENV(r, env, input, ...)                                                                \
    do {                                                                                           \
        const char *a_[] = {__VA_ARGS__, NULL};                                                    \
        run_bin(r, tpipe_bin, input, env, a_);                                                     \
    } while (0)

/* Every stdout line is {"index": i, "ok": bool, "result"|"error"} with i = 0..n-1. */
static void check_shape(const run_result *r, size_t n, const char *what) {
    CHECK_MSG(r->n_lines == n, "%s: %zu lines, expected %zu; stderr: %s", what, r->n_lines, n,
              r->err);
    for (size_t i = 0; i < r->n_lines; i++) {
        const cJSON *l = r->lines[i];
        CHECK_MSG(cJSON_IsObject(l), "%s: line %zu is not a JSON object", what, i);
        if (!l)
            continue;
        const cJSON *idx = cJSON_GetObjectItemCaseSensitive(l, "index");
        const cJSON *ok = cJSON_GetObjectItemCaseSensitive(l, "ok");
        CHECK_MSG(cJSON_IsNumber(idx) && idx->valueint == (int)i, "%s: line %zu index", what, i);
        CHECK_MSG(cJSON_IsBool(ok), "%s: line %zu has no ok", what, i);
        if (cJSON_IsTrue(ok))
            CHECK_MSG(cJSON_GetObjectItemCaseSensitive(l, "result"), "%s: line %zu", what, i);
        else
            CHECK_MSG(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(l, "error")), "%s: line %zu",
                      what, i);
    }
}

static bool line_ok(const run_result *r, size_t i) {
    return i < r->n_lines && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r->lines[i], "ok"));
}
static const cJSON *line_result(const run_result *r, size_t i) {
    return i < r->n_lines ? cJSON_GetObjectItemCaseSensitive(r->lines[i], "result") : NULL;
}
static const char *line_error(const run_result *r, size_t i) {
    const cJSON *e = i < r->n_lines ? cJSON_GetObjectItemCaseSensitive(r->lines[i], "error") : NULL;
    return cJSON_IsString(e) ? e->valuestring : "";
}
/* The line's "result" printed compactly (for comparing runs). */
static char *result_text(const run_result *r, size_t i) {
    const cJSON *res = line_result(r, i);
    return res ? cJSON_PrintUnformatted(res) : strdup("(none)");
}

/* stderr is exactly one line that mentions `needle`. */
static void check_one_line_error(const run_result *r, const char *needle, const char *what) {
    size_t nl = 0;
    for (const char *p = r->err; *p; p++)
        nl += *p == '\n';
    CHECK_MSG(nl == 1 && strstr(r->err, needle), "%s: stderr \"%s\" (want one line with \"%s\")",
              what, r->err, needle);
}

static bool mkmodel(char *out, size_t n, const char *name, const char *const *args) {
    snprintf(out, n, "%s/%s", tmp, name);
    const char *a[32];
    size_t k = 0;
    for (; args[k]; k++)
        a[k] = args[k];
    a[k++] = "--out";
    a[k++] = out;
    a[k++] = "--quiet";
    a[k] = NULL;
    run_result r;
    run_bin(&r, mkmodel_bin, NULL, NULL, a);
    bool ok = r.rc == 0;
    if (!ok)
        fprintf(stderr, "tp_mkmodel %s failed: %s\n", name, r.err);
    result_free(&r);
    return ok;
}

static void test_top_level(void) {
    run_result r;
    RUN(&r, NULL, "--help");
    CHECK_EQ_INT(r.rc, 0);
    const char *cmds[] = {"fill-mask", "sentiment", "zero-shot",
                          "generate",  "tokenize",  "chat-template"};
    for (size_t i = 0; i < 6; i++)
        CHECK_MSG(strstr(r.out, cmds[i]), "tpipe --help lacks %s", cmds[i]);
    result_free(&r);
    for (size_t i = 0; i < 6; i++) {
        RUN(&r, NULL, cmds[i], "--help");
        CHECK_MSG(r.rc == 0 && strstr(r.out, "usage: tpipe") && strstr(r.out, "--batch-size") &&
                      strstr(r.out, "--model"),
                  "%s --help", cmds[i]);
        result_free(&r);
        /* no --model: exit 2, one line */
        RUN(&r, NULL, cmds[i], "x");
        CHECK_EQ_INT(r.rc, 2);
        check_one_line_error(&r, "--model", cmds[i]);
        CHECK(r.n_lines == 0);
        result_free(&r);
    }
    RUN(&r, NULL, "no-such-command");
    CHECK_EQ_INT(r.rc, 2);
    result_free(&r);
    const char *none[] = {NULL};
    run_bin(&r, tpipe_bin, NULL, NULL, none);
    CHECK_EQ_INT(r.rc, 2);
    result_free(&r);
    RUN(&r, NULL, "fill-mask", "--model", m_mlm, "--top-k", "0", "a [MASK]");
    CHECK_EQ_INT(r.rc, 2);
    check_one_line_error(&r, "--top-k", "bad --top-k");
    result_free(&r);
    RUN(&r, NULL, "fill-mask", "--model", m_mlm, "--precision", "f16", "a [MASK]");
    CHECK_EQ_INT(r.rc, 2);
    check_one_line_error(&r, "precision", "bad --precision");
    result_free(&r);
    /* a model that cannot be loaded: exit 2, the path named */
    char missing[400];
    snprintf(missing, sizeof missing, "%s/no_such_model", tmp);
    RUN(&r, NULL, "sentiment", "--model", missing, "text");
    CHECK_EQ_INT(r.rc, 2);
    check_one_line_error(&r, "no_such_model", "missing model");
    result_free(&r);
    /* a model of the wrong kind */
    RUN(&r, NULL, "sentiment", "--model", m_mlm, "text");
    CHECK_EQ_INT(r.rc, 2);
    check_one_line_error(&r, "masked language model", "wrong task");
    result_free(&r);
    /* an output that cannot be written (the writer thread's error reaches the exit status) */
    if (access("/dev/full", W_OK) == 0) {
        RUN(&r, "a\nb\n", "tokenize", "--model", tok_modernbert, "--output", "/dev/full");
        CHECK_EQ_INT(r.rc, 2);
        check_one_line_error(&r, "writing the output", "/dev/full");
        result_free(&r);
    }
    /* missing --input file */
    RUN(&r, NULL, "tokenize", "--model", tok_modernbert, "--input", missing);
    CHECK_EQ_INT(r.rc, 2);
    check_one_line_error(&r, "no_such_model", "missing --input");
    result_free(&r);
}

static void test_fill_mask(void) {
    run_result r;
    const char *input = "\"Paris is the [MASK] of France.\"\n"
                        "{\"text\": \"no mask here\"}\n"
                        "raw line with a [MASK] token\n"
                        "{\"text\": 7}\n"
                        "\n"
                        "{\"labels\": [\"x\"]}\n"
                        "{\"text\": \"two [MASK] and [MASK]\"}\n";
    RUN(&r, input, "fill-mask", "--model", m_mlm, "--top-k", "3", "--quiet");
    CHECK_EQ_INT(r.rc, 1);
    check_shape(&r, 7, "fill-mask");
    CHECK(line_ok(&r, 0) && !line_ok(&r, 1) && line_ok(&r, 2) && !line_ok(&r, 3) &&
          !line_ok(&r, 4) && !line_ok(&r, 5) && line_ok(&r, 6));
    CHECK_MSG(strstr(line_error(&r, 1), "MASK"), "%s", line_error(&r, 1));
    CHECK_MSG(strstr(line_error(&r, 3), "line 4"), "%s", line_error(&r, 3));
    CHECK_MSG(strstr(line_error(&r, 5), "line 6"), "%s", line_error(&r, 5));
    const cJSON *res = line_result(&r, 0);
    CHECK(cJSON_IsArray(res) && cJSON_GetArraySize(res) == 3);
    double prev = 2;
    const cJSON *p;
    cJSON_ArrayForEach(p, res) {
        const cJSON *score = cJSON_GetObjectItemCaseSensitive(p, "score");
        CHECK(cJSON_IsNumber(score) && score->valuedouble <= prev && score->valuedouble > 0);
        prev = score ? score->valuedouble : 0;
        CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(p, "token")));
        CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(p, "token_str")));
        CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(p, "sequence")));
    }
    /* two masks: one list per mask */
    res = line_result(&r, 6);
    CHECK(cJSON_IsArray(res) && cJSON_GetArraySize(res) == 2 &&
          cJSON_IsArray(cJSON_GetArrayItem(res, 0)));
    /* batch invariance and order: each item alone gives the same result */
    char *batched0 = result_text(&r, 0), *batched2 = result_text(&r, 2);
    result_free(&r);
    RUN(&r, NULL, "fill-mask", "--model", m_mlm, "--top-k", "3", "Paris is the [MASK] of France.");
    CHECK_EQ_INT(r.rc, 0);
    char *single = result_text(&r, 0);
    CHECK_STR(single, batched0);
    free(single);
    result_free(&r);
    RUN(&r, input, "fill-mask", "--model", m_mlm, "--top-k", "3", "--batch-size", "1");
    CHECK_EQ_INT(r.rc, 1);
    check_shape(&r, 7, "fill-mask --batch-size 1");
    single = result_text(&r, 2);
    CHECK_STR(single, batched2);
    free(single);
    free(batched0);
    free(batched2);
    result_free(&r);
    /* empty input: no lines, exit 0 */
    RUN(&r, "", "fill-mask", "--model", m_mlm);
    CHECK_EQ_INT(r.rc, 0);
    CHECK_EQ_INT(r.n_lines, 0);
    CHECK_STR(r.out, "");
    result_free(&r);
    /* --output FILE, --input FILE */
    char in[400], out[400];
    snprintf(in, sizeof in, "%s/fm_in.txt", tmp);
    snprintf(out, sizeof out, "%s/fm_out.jsonl", tmp);
    FILE *f = fopen(in, "w");
    fputs("a [MASK] b\nc [MASK] d\n", f);
    fclose(f);
    RUN(&r, NULL, "fill-mask", "--model", m_mlm, "--input", in, "--output", out);
    CHECK_EQ_INT(r.rc, 0);
    CHECK_STR(r.out, "");
    char *written = slurp(out);
    size_t lines = 0;
    for (char *q = written; *q; q++)
        lines += *q == '\n';
    CHECK_EQ_INT(lines, 2);
    CHECK(strncmp(written, "{\"index\": 0, \"ok\": true, \"result\": [{\"score\": ", 46) == 0);
    free(written);
    result_free(&r);
}

static void test_sentiment(void) {
    run_result r;
    RUN(&r, "I love it\n{\"text\": \"terrible\"}\n[1, 2]\n", "sentiment", "--model", m_cls);
    CHECK_EQ_INT(r.rc, 0);
    check_shape(&r, 3, "sentiment");
    for (size_t i = 0; i < r.n_lines; i++) {
        const cJSON *res = line_result(&r, i);
        const cJSON *label = cJSON_GetObjectItemCaseSensitive(res, "label");
        CHECK(cJSON_IsString(label) &&
              (!strcmp(label->valuestring, "negative") || !strcmp(label->valuestring, "neutral") ||
               !strcmp(label->valuestring, "positive")));
        CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(res, "score")));
    }
    char *best = result_text(&r, 0);
    result_free(&r);
    RUN(&r, NULL, "sentiment", "--model", m_cls, "--all-scores", "I love it", "\xff bad utf8");
    CHECK_EQ_INT(r.rc, 1);
    check_shape(&r, 2, "sentiment --all-scores");
    const cJSON *res = line_result(&r, 0);
    CHECK(cJSON_IsArray(res) && cJSON_GetArraySize(res) == 3);
    double sum = 0, prev = 2;
    const cJSON *e;
    cJSON_ArrayForEach(e, res) {
        double s = cJSON_GetObjectItemCaseSensitive(e, "score")->valuedouble;
        CHECK(s <= prev);
        prev = s;
        sum += s;
    }
    CHECK_MSG(fabs(sum - 1) < 1e-5, "softmax scores sum to %g", sum);
    /* the best of --all-scores is the plain answer */
    char *first = cJSON_PrintUnformatted(cJSON_GetArrayItem(res, 0));
    CHECK_STR(first, best);
    free(first);
    free(best);
    CHECK(!line_ok(&r, 1));
    CHECK_MSG(strstr(line_error(&r, 1), "UTF-8"), "%s", line_error(&r, 1));
    result_free(&r);
}

static void test_zero_shot(void) {
    run_result r;
    const char *input = "The match ended two to one\n"
                        "{\"text\": \"own labels\", \"labels\": [\"a\", \"b\", \"c\"]}\n"
                        "{\"text\": \"comma labels\", \"labels\": \"x, y\"}\n"
                        "{\"text\": \"bad labels\", \"labels\": []}\n"
                        "{\"text\": \"bad labels\", \"labels\": [1]}\n";
    RUN(&r, input, "zero-shot", "--model", m_nli, "--labels", "sports,politics,cooking");
    CHECK_EQ_INT(r.rc, 1);
    check_shape(&r, 5, "zero-shot");
    const cJSON *res = line_result(&r, 0);
    CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(res, "sequence")) &&
          !strcmp(cJSON_GetObjectItemCaseSensitive(res, "sequence")->valuestring,
                  "The match ended two to one"));
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(res, "labels");
    const cJSON *scores = cJSON_GetObjectItemCaseSensitive(res, "scores");
    CHECK(cJSON_GetArraySize(labels) == 3 && cJSON_GetArraySize(scores) == 3);
    double sum = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, scores) sum += s->valuedouble;
    CHECK_MSG(fabs(sum - 1) < 1e-5, "single-label scores sum to %g", sum);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(line_result(&r, 1), "labels")),
                 3);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(line_result(&r, 2), "labels")),
                 2);
    CHECK(!line_ok(&r, 3) && !line_ok(&r, 4));
    CHECK_MSG(strstr(line_error(&r, 3), "labels"), "%s", line_error(&r, 3));
    result_free(&r);
    /* no labels anywhere: every item fails, exit 1 */
    RUN(&r, NULL, "zero-shot", "--model", m_nli, "text");
    CHECK_EQ_INT(r.rc, 1);
    CHECK_MSG(strstr(line_error(&r, 0), "--labels"), "%s", line_error(&r, 0));
    result_free(&r);
    RUN(&r, NULL, "zero-shot", "--model", m_nli, "--labels", "a,b", "--multi-label",
        "--hypothesis-template", "It is about {}.", "text");
    CHECK_EQ_INT(r.rc, 0);
    check_shape(&r, 1, "zero-shot --multi-label");
    result_free(&r);
    RUN(&r, NULL, "zero-shot", "--model", m_nli, "--labels", "a,,b", "text");
    CHECK_EQ_INT(r.rc, 2);
    result_free(&r);
    RUN(&r, NULL, "zero-shot", "--model", m_nli, "--labels", "a", "--hypothesis-template", "no",
        "text");
    CHECK_EQ_INT(r.rc, 2);
    result_free(&r);
}

/* End of the JSON value starting at s (strings, nesting and escapes aware). */
static const char *value_end(const char *s) {
    int depth = 0;
    bool in_str = false;
    for (; *s; s++) {
        if (in_str) {
            if (*s == '\\' && s[1])
                s++;
            else if (*s == '"')
                in_str = false;
            if (!in_str && depth == 0)
                return s + 1;
            continue;
        }
        if (*s == '"')
            in_str = true;
        else if (*s == '{' || *s == '[')
            depth++;
        else if (*s == '}' || *s == ']') {
            if (depth == 0)
                return s;
            if (--depth == 0)
                return s + 1;
        } else if (*s == ',' && depth == 0)
            return s;
    }
    return s;
}

/* Line i of a text (static copy). */
static const char *in_line(const char *text, size_t i) {
    static char line[65536];
    for (; i && text; i--) {
        text = strchr(text, '\n');
        if (text)
            text++;
    }
    if (!text)
        return "";
    size_t n = strcspn(text, "\n");
    snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line ? n : sizeof line - 1), text);
    return line;
}

/* tokenize: the Hugging Face ids of every line of the golden file. */
static void test_tokenize(void) {
    char golden[4300];
    snprintf(golden, sizeof golden, "%s/golden.jsonl", tok_modernbert);
    char *g = slurp(golden);
    tp_buf in = {0};
    cJSON *gl[600];
    size_t n = 0;
    for (char *p = g; *p && n < 600;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        cJSON *o = cJSON_Parse(p);
        const char *tv = strstr(p, "{\"text\":");
        if (o && tv) {
            /* the text as written (cJSON would cut a string at an escaped NUL) */
            tv += 8;
            while (*tv == ' ')
                tv++;
            gl[n++] = o;
            tp_buf_printf(&in, "%.*s\n", (int)(value_end(tv) - tv), tv);
        } else {
            cJSON_Delete(o);
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    free(g);
    CHECK_MSG(n > 100, "golden file %s has %zu lines", golden, n);
    for (int special = 1; special >= 0; special--) {
        run_result r;
        if (special)
            RUN(&r, in.data, "tokenize", "--model", tok_modernbert);
        else
            RUN(&r, in.data, "tokenize", "--model", tok_modernbert, "--no-special");
        CHECK_EQ_INT(r.rc, 1); /* the NUL lines fail */
        check_shape(&r, n, "tokenize");
        size_t bad = 0, nul_lines = 0;
        for (size_t i = 0; i < n && i < r.n_lines; i++) {
            /* the one thing the CLI cannot pass on: a NUL inside a JSON string */
            if (strstr(in_line(in.data, i), "\\u0000")) {
                nul_lines++;
                if (line_ok(&r, i) || !strstr(line_error(&r, i), "NUL"))
                    bad++;
                continue;
            }
            const cJSON *want =
                cJSON_GetObjectItemCaseSensitive(gl[i], special ? "ids_with_special" : "ids");
            const cJSON *got = cJSON_GetObjectItemCaseSensitive(line_result(&r, i), "ids");
            const cJSON *toks = cJSON_GetObjectItemCaseSensitive(line_result(&r, i), "tokens");
            if (!cJSON_Compare(want, got, true) ||
                cJSON_GetArraySize(toks) != cJSON_GetArraySize(got))
                bad++;
            if (!special &&
                !cJSON_Compare(cJSON_GetObjectItemCaseSensitive(gl[i], "tokens"), toks, true))
                bad++;
        }
        CHECK_MSG(bad == 0, "tokenize: %zu of %zu lines differ from the golden ids", bad, n);
        CHECK(nul_lines >= 1 && nul_lines <= 4);
        result_free(&r);
    }
    for (size_t i = 0; i < n; i++)
        cJSON_Delete(gl[i]);
    tp_buf_free(&in);
}

/* Appends the top-level fields of the JSON object text `obj` to b as written
 * (numbers such as 1.0 keep their spelling), except the keys in skip. */
static void copy_fields(tp_buf *b, const char *obj, const char *const *skip, bool *first) {
    const char *p = strchr(obj, '{');
    if (!p)
        return;
    p++;
    for (;;) {
        while (*p == ' ' || *p == ',' || *p == '\n')
            p++;
        if (*p != '"')
            return;
        const char *ks = p + 1, *ke = strchr(ks, '"');
        if (!ke)
            return;
        p = strchr(ke, ':');
        if (!p)
            return;
        p++;
        while (*p == ' ')
            p++;
        const char *ve = value_end(p);
        bool skipped = false;
        for (size_t i = 0; skip[i]; i++)
            skipped |= strlen(skip[i]) == (size_t)(ke - ks) && !strncmp(skip[i], ks, ke - ks);
        if (!skipped) {
            tp_buf_printf(b, "%s\"%.*s\": %.*s", *first ? "" : ", ", (int)(ke - ks), ks,
                          (int)(ve - p), p);
            *first = false;
        }
        p = ve;
    }
}

/* chat-template: the Python Jinja2 renderings of the Qwen3 template. */
static void test_chat_template(void) {
    const char *d = tp_test_shared("tokenizers/qwen3/chat_golden_py.jsonl");
    if (!d) {
        printf("SKIP: chat-template goldens (no ../shared/tokenizers)\n");
        return;
    }
    char goldp[1100], convp[2][1100], qdir[1100];
    snprintf(goldp, sizeof goldp, "%s", d);
    snprintf(qdir, sizeof qdir, "%s", tp_test_shared("tokenizers/qwen3"));
    snprintf(convp[0], sizeof convp[0], "%s", tp_test_shared("tokenizers/chats.jsonl"));
    snprintf(convp[1], sizeof convp[1], "%s", tp_test_shared("tokenizers/chats2.jsonl"));
    /* conversation id -> its line as written */
    cJSON *convs = cJSON_CreateObject();
    char *conv_text[2];
    for (int k = 0; k < 2; k++) {
        conv_text[k] = slurp(convp[k]);
        for (char *p = strtok(conv_text[k], "\n"); p; p = strtok(NULL, "\n")) {
            cJSON *o = cJSON_Parse(p);
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
            if (cJSON_IsString(id))
                cJSON_AddItemToObject(convs, id->valuestring, cJSON_CreateStringReference(p));
            cJSON_Delete(o);
        }
    }
    char *gt = slurp(goldp);
    tp_buf in = {0};
    cJSON *gold[400];
    size_t n = 0;
    static const char *const skip_case[] = {
        "id", "note", "expected_errors", "add_generation_prompt", "enable_thinking", "tools", NULL};
    static const char *const all_but_tools[] = {
        "id",       "note", "expected_errors", "add_generation_prompt", "enable_thinking",
        "messages", NULL};
    for (char *p = strtok(gt, "\n"); p && n < 400; p = strtok(NULL, "\n")) {
        cJSON *g = cJSON_Parse(p);
        const cJSON *cid = cJSON_GetObjectItemCaseSensitive(g, "conversation_id");
        const cJSON *conv = cid ? cJSON_GetObjectItemCaseSensitive(convs, cid->valuestring) : NULL;
        const cJSON *opt = cJSON_GetObjectItemCaseSensitive(g, "options");
        if (!conv || !opt) {
            cJSON_Delete(g);
            continue;
        }
        /* the conversation's own fields, as written, are template variables, except
         * the ones that describe the test case or come from the options */
        tp_buf_puts(&in, "{");
        bool first = true;
        copy_fields(&in, conv->valuestring, skip_case, &first);
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(opt, "tools"))) {
            tp_buf tools = {0};
            bool f2 = true;
            copy_fields(&tools, conv->valuestring, all_but_tools, &f2);
            /* only "tools" and other variables remain; keep just tools */
            const char *t = strstr(tools.data ? tools.data : "", "\"tools\": ");
            if (t) {
                const char *v = t + 9, *e = value_end(v);
                tp_buf_printf(&in, ", \"tools\": %.*s", (int)(e - v), v);
            }
            tp_buf_free(&tools);
        }
        tp_buf_printf(&in, ", \"add_generation_prompt\": %s",
                      cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(opt, "add_generation_prompt"))
                          ? "true"
                          : "false");
        const cJSON *th = cJSON_GetObjectItemCaseSensitive(opt, "enable_thinking");
        if (cJSON_IsBool(th))
            tp_buf_printf(&in, ", \"enable_thinking\": %s", cJSON_IsTrue(th) ? "true" : "false");
        tp_buf_puts(&in, "}\n");
        gold[n++] = g;
    }
    free(gt);
    CHECK_MSG(n > 300, "only %zu chat goldens matched their conversations", n);
    run_result r;
    RUN(&r, in.data, "chat-template", "--model", qdir);
    CHECK_EQ_INT(r.rc, 1); /* the goldens include template errors */
    check_shape(&r, n, "chat-template");
    size_t bad = 0, errors = 0;
    for (size_t i = 0; i < n && i < r.n_lines; i++) {
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(gold[i], "rendered");
        if (cJSON_IsString(want)) {
            const cJSON *got = line_result(&r, i);
            if (!cJSON_IsString(got) || strcmp(got->valuestring, want->valuestring)) {
                if (bad++ < 3)
                    fprintf(stderr, "chat-template line %zu differs\n", i);
            }
        } else {
            errors++;
            if (line_ok(&r, i))
                bad++;
        }
    }
    CHECK_MSG(bad == 0, "chat-template: %zu of %zu goldens differ", bad, n);
    CHECK(errors > 0);
    result_free(&r);
    /* a line that is not an object, and the thinking flag */
    RUN(&r, "\"just a string\"\n{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}\n",
        "chat-template", "--model", qdir, "--enable-thinking", "false");
    CHECK_EQ_INT(r.rc, 1);
    check_shape(&r, 2, "chat-template flags");
    CHECK_MSG(strstr(line_error(&r, 0), "messages"), "%s", line_error(&r, 0));
    const cJSON *p = line_result(&r, 1);
    CHECK(cJSON_IsString(p) && strstr(p->valuestring, "<think>\n\n</think>\n\n"));
    result_free(&r);
    RUN(&r, NULL, "chat-template", "--model", qdir, "--enable-thinking", "maybe");
    CHECK_EQ_INT(r.rc, 2);
    result_free(&r);
    for (size_t i = 0; i < n; i++)
        cJSON_Delete(gold[i]);
    cJSON_Delete(convs);
    free(conv_text[0]);
    free(conv_text[1]);
    tp_buf_free(&in);
}

static void test_generate(bool have_chat_template) {
    run_result r;
    const char *input = "\"Hello\"\n"
                        "{\"text\": \"Once upon a time\", \"max_new_tokens\": 2}\n"
                        "not json at all\n"
                        "{\"text\": \"x\", \"temperature\": -1}\n"
                        "{\"text\": \"Sampled\", \"temperature\": 0.8, \"seed\": 7}\n";
    RUN(&r, input, "generate", "--model", m_qwen, "--max-new-tokens", "5");
    CHECK_EQ_INT(r.rc, 1);
    check_shape(&r, 5, "generate");
    for (size_t i = 0; i < 5; i++) {
        if (i == 3) {
            CHECK(!line_ok(&r, 3));
            CHECK_MSG(strstr(line_error(&r, 3), "temperature"), "%s", line_error(&r, 3));
            continue;
        }
        const cJSON *res = line_result(&r, i);
        const cJSON *ct = cJSON_GetObjectItemCaseSensitive(res, "completion_tokens");
        const cJSON *fr = cJSON_GetObjectItemCaseSensitive(res, "finish_reason");
        CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(res, "text")));
        CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(res, "prompt_tokens")));
        CHECK(cJSON_IsNumber(ct) && ct->valueint >= 1 && ct->valueint <= (i == 1 ? 2 : 5));
        CHECK(cJSON_IsString(fr) &&
              (!strcmp(fr->valuestring, "stop") || !strcmp(fr->valuestring, "length")));
    }
    char *b0 = result_text(&r, 0), *b4 = result_text(&r, 4);
    result_free(&r);
    /* the same items alone: identical (greedy, and seeded sampling) */
    RUN(&r, NULL, "generate", "--model", m_qwen, "--max-new-tokens", "5", "Hello");
    CHECK_EQ_INT(r.rc, 0);
    char *s0 = result_text(&r, 0);
    CHECK_STR(s0, b0);
    free(s0);
    result_free(&r);
    RUN(&r, "{\"text\": \"Sampled\", \"temperature\": 0.8, \"seed\": 7}\n", "generate", "--model",
        m_qwen, "--max-new-tokens", "5", "--batch-size", "1");
    s0 = result_text(&r, 0);
    CHECK_STR(s0, b4);
    free(s0);
    result_free(&r);
    /* --stream: the text on stderr is the result's text */
    RUN(&r, NULL, "generate", "--model", m_qwen, "--max-new-tokens", "5", "--stream", "Hello");
    CHECK_EQ_INT(r.rc, 0);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(line_result(&r, 0), "text");
    if (cJSON_IsString(t)) {
        char want[512];
        snprintf(want, sizeof want, "%s\n", t->valuestring);
        CHECK_STR(r.err, want);
    }
    s0 = result_text(&r, 0);
    CHECK_STR(s0, b0);
    free(s0);
    result_free(&r);
    free(b0);
    free(b4);
    /* --stream with several items: JSON lines {"index", "delta"} on stderr whose
     * deltas concatenate, per item, to that item's text */
    RUN(&r, "Hello\nOnce upon a time\n", "generate", "--model", m_qwen, "--max-new-tokens", "4",
        "--stream");
    CHECK_EQ_INT(r.rc, 0);
    check_shape(&r, 2, "generate --stream batch");
    {
        tp_buf acc[2] = {{0}, {0}};
        size_t pieces = 0;
        for (char *p = r.err; *p;) {
            char *nl = strchr(p, '\n');
            if (nl)
                *nl = '\0';
            cJSON *d = cJSON_Parse(p);
            const cJSON *ix = cJSON_GetObjectItemCaseSensitive(d, "index");
            const cJSON *dl = cJSON_GetObjectItemCaseSensitive(d, "delta");
            if (cJSON_IsNumber(ix) && cJSON_IsString(dl) && ix->valueint >= 0 && ix->valueint < 2) {
                tp_buf_puts(&acc[ix->valueint], dl->valuestring);
                pieces++;
            }
            cJSON_Delete(d);
            if (!nl)
                break;
            p = nl + 1;
        }
        CHECK(pieces >= 2);
        for (int i = 0; i < 2; i++) {
            const cJSON *txt = cJSON_GetObjectItemCaseSensitive(line_result(&r, (size_t)i), "text");
            CHECK_MSG(cJSON_IsString(txt) &&
                          !strcmp(txt->valuestring, acc[i].data ? acc[i].data : ""),
                      "stream of item %d", i);
            tp_buf_free(&acc[i]);
        }
    }
    result_free(&r);
    /* --chat: a text is one user message; with a template, messages work too */
    RUN(&r, "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}\nplain text\n", "generate",
        "--model", m_qwen, "--chat", "--no-think", "--max-new-tokens", "3");
    check_shape(&r, 2, "generate --chat");
    if (have_chat_template) {
        CHECK_EQ_INT(r.rc, 0);
        const cJSON *pt = cJSON_GetObjectItemCaseSensitive(line_result(&r, 0), "prompt_tokens");
        /* <|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n */
        CHECK(cJSON_IsNumber(pt) && pt->valueint > 8);
    } else {
        CHECK_EQ_INT(r.rc, 1);
    }
    result_free(&r);
    RUN(&r, NULL, "generate", "--model", m_qwen, "--temperature", "-2", "x");
    CHECK_EQ_INT(r.rc, 2);
    result_free(&r);
    RUN(&r, NULL, "generate", "--model", m_mlm, "x");
    CHECK_EQ_INT(r.rc, 2);
    check_one_line_error(&r, "text-generation", "generate on an encoder");
    result_free(&r);
}

/* Adds every file of a model folder to the fake hub as repo `repo`. */
static void serve_folder(fake_hub *hub, const char *repo, const char *dir) {
    const char *names[] = {"config.json",           "generation_config.json",  "tokenizer.json",
                           "tokenizer_config.json", "special_tokens_map.json", "model.safetensors"};
    for (size_t i = 0; i < 6; i++) {
        char p[4300];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        if (access(p, R_OK) == 0)
            fh_add_file(hub, repo, names[i], p, !strcmp(names[i], "model.safetensors"));
    }
}

/* The demo's online path: the four default checkpoint ids served by a fake hub
 * (the tiny models stand in for them); the demo must download and use them. */
static void test_demo_online(void) {
#ifdef TP_SOURCE_DIR
    static fake_hub hub;
    memset(&hub, 0, sizeof hub);
    serve_folder(&hub, "answerdotai/ModernBERT-base", m_mlm);
    serve_folder(&hub, "clapAI/modernBERT-base-multilingual-sentiment", m_cls);
    serve_folder(&hub, "MoritzLaurer/ModernBERT-base-zeroshot-v2.0", m_nli);
    serve_folder(&hub, "Qwen/Qwen3-0.6B", m_qwen);
    if (fh_start(&hub) != 0) {
        printf("SKIP: demo online (cannot listen on 127.0.0.1)\n");
        return;
    }
    static char ep[128], cache[400], home[400];
    snprintf(ep, sizeof ep, "HF_ENDPOINT=http://127.0.0.1:%d", hub.port);
    snprintf(cache, sizeof cache, "HF_HUB_CACHE=%s/demo_cache", tmp);
    snprintf(home, sizeof home, "HF_HOME=%s/hf_home", tmp);
    const char *env[] = {
        ep, cache, home, "HF_TOKEN=", "HF_HUB_OFFLINE=0", "DEMO_REPEAT=1", "DEMO_OFFLINE=0", NULL};
    const char *build = getenv("TPIPE_BUILD");
    run_result r;
    const char *args[] = {TP_SOURCE_DIR "/scripts/demo.sh", build, NULL};
    run_bin(&r, "/bin/bash", NULL, env, args);
    CHECK_EQ_INT(r.rc, 0);
    CHECK_MSG(strstr(r.out, "== fill-mask: answerdotai/ModernBERT-base") &&
                  strstr(r.out, "== sentiment: clapAI/modernBERT-base-multilingual-sentiment") &&
                  strstr(r.out, "== zero-shot: MoritzLaurer/ModernBERT-base-zeroshot-v2.0") &&
                  strstr(r.out, "== generate: Qwen/Qwen3-0.6B") && strstr(r.out, "demo: done") &&
                  !strstr(r.out, "not all available") && !strstr(r.out, " failed: "),
              "demo online output:\n%s\nstderr:\n%s", r.out, r.err);
    result_free(&r);
    fh_stop(&hub);
#endif
}

/* Runs tpipe with stderr on a pseudo-terminal; returns what it wrote there. */
static char *run_with_tty_stderr(const char *const *args, int *rc) {
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) || unlockpt(master))
        return NULL;
    const char *slave = ptsname(master);
    char out[300];
    snprintf(out, sizeof out, "%s/tty_stdout", tmp);
    const char *argv[32];
    int n = 0;
    argv[n++] = tpipe_bin;
    for (; args[n - 1] && n < 31; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        int fs = open(slave, O_RDWR | O_NOCTTY), fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644),
            fi = open("/dev/null", O_RDONLY);
        dup2(fi, 0);
        dup2(fo, 1);
        dup2(fs, 2);
        execv(tpipe_bin, (char *const *)argv);
        _exit(127);
    }
    /* read while it runs, so the pty never fills */
    tp_buf b = {0};
    char buf[4096];
    fcntl(master, F_SETFL, O_NONBLOCK);
    int status = 0;
    for (;;) {
        ssize_t k = read(master, buf, sizeof buf);
        if (k > 0) {
            tp_buf_append(&b, buf, (size_t)k);
            continue;
        }
        if (waitpid(pid, &status, WNOHANG) == pid)
            break;
        usleep(10000);
    }
    ssize_t k;
    while ((k = read(master, buf, sizeof buf)) > 0)
        tp_buf_append(&b, buf, (size_t)k);
    close(master);
    *rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    return tp_buf_take(&b);
}

/* The progress bar: on a terminal, unless --quiet; never on a pipe (checked by
 * the one-line stderr checks above). */
static void test_progress(void) {
    char in[400];
    snprintf(in, sizeof in, "%s/progress_in.txt", tmp);
    FILE *f = fopen(in, "w");
    for (int i = 0; i < 300; i++)
        fprintf(f, "text number %d\n", i);
    fclose(f);
    int rc = -1;
    char *err = run_with_tty_stderr(
        (const char *const[]){"tokenize", "--model", tok_modernbert, "--input", in, NULL}, &rc);
    if (!err) {
        printf("SKIP: progress bar (no pseudo-terminal)\n");
        return;
    }
    CHECK_EQ_INT(rc, 0);
    CHECK_MSG(strchr(err, '\r') && strstr(err, "items/s") && strstr(err, "100%") &&
                  strstr(err, "300 items") && strstr(err, "ETA"),
              "progress on a terminal: \"%s\"", err);
    free(err);
    err = run_with_tty_stderr((const char *const[]){"tokenize", "--model", tok_modernbert,
                                                    "--input", in, "--quiet", NULL},
                              &rc);
    CHECK_EQ_INT(rc, 0);
    CHECK_MSG(err && err[0] == '\0', "--quiet still wrote \"%s\"", err ? err : "");
    free(err);
}

/* --model org/name through a fake hub (HF_ENDPOINT), then offline from the cache. */
static void test_hub_model(void) {
    static fake_hub hub;
    memset(&hub, 0, sizeof hub);
    const char *files[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"};
    for (size_t i = 0; i < 3; i++) {
        char p[4300];
        snprintf(p, sizeof p, "%s/%s", tok_modernbert, files[i]);
        fh_add_file(&hub, "fake-org/tiny-bert", files[i], p, false);
    }
    if (fh_start(&hub) != 0) {
        printf("SKIP: fake hub (cannot listen on 127.0.0.1)\n");
        return;
    }
    static char ep[128], cache[400], home[400];
    snprintf(ep, sizeof ep, "HF_ENDPOINT=http://127.0.0.1:%d", hub.port);
    snprintf(cache, sizeof cache, "HF_HUB_CACHE=%s/hub_cache", tmp);
    snprintf(home, sizeof home, "HF_HOME=%s/hf_home", tmp);
    const char *env[] = {ep, cache, home, "HF_TOKEN=", "HF_HUB_OFFLINE=0", NULL};
    run_result r;
    RUN_ENV(&r, env, NULL, "tokenize", "--model", "fake-org/tiny-bert", "--quiet", "Hello world");
    CHECK_EQ_INT(r.rc, 0);
    check_shape(&r, 1, "tokenize from the hub");
    char *ids = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(line_result(&r, 0), "ids"));
    CHECK_STR(ids ? ids : "", "[50281,12092,1533,50282]");
    free(ids);
    result_free(&r);
    /* tpipe download prints the snapshot folder */
    RUN_ENV(&r, env, NULL, "download", "--model", "fake-org/tiny-bert", "--files", "tokenizer");
    CHECK_EQ_INT(r.rc, 0);
    CHECK_MSG(strstr(r.out, "/hub_cache/models--fake-org--tiny-bert/snapshots/") &&
                  r.out[strlen(r.out) - 1] == '\n',
              "download printed \"%s\"", r.out);
    result_free(&r);
    int before = fh_requests(&hub);
    const char *offline[] = {ep, cache, home, "HF_HUB_OFFLINE=1", NULL};
    RUN_ENV(&r, offline, NULL, "tokenize", "--model", "fake-org/tiny-bert", "Hello world");
    CHECK_EQ_INT(r.rc, 0);
    CHECK_EQ_INT(fh_requests(&hub), before);
    result_free(&r);
    /* not on the hub: exit 2, one line naming the repo */
    RUN_ENV(&r, env, NULL, "tokenize", "--model", "fake-org/missing", "Hello");
    CHECK_EQ_INT(r.rc, 2);
    check_one_line_error(&r, "fake-org/missing", "missing repo");
    result_free(&r);
    RUN_ENV(&r, offline, NULL, "tokenize", "--model", "fake-org/other", "Hello");
    CHECK_EQ_INT(r.rc, 2);
    check_one_line_error(&r, "offline", "offline, not cached");
    result_free(&r);
    fh_stop(&hub);
}

/* $TPIPE_SHARED/tokenizers/<name> when it has `need`, else tests/data/tokenizers/<name>. */
static void pick_tokenizer(char *out, size_t n, const char *name, const char *need) {
    char rel[256];
    snprintf(rel, sizeof rel, "tokenizers/%s/%s", name, need);
    const char *s = tp_test_shared(rel);
    if (s) {
        snprintf(out, n, "%s", s);
        *strrchr(out, '/') = '\0';
        return;
    }
    snprintf(rel, sizeof rel, "tokenizers/%s", name);
    snprintf(out, n, "%s", tp_test_data(rel));
}

int main(void) {
    const char *build = getenv("TPIPE_BUILD");
    if (!build) {
        printf("SKIP: TPIPE_BUILD is not set (run through ctest)\n");
        return 0;
    }
    snprintf(tpipe_bin, sizeof tpipe_bin, "%s/tpipe", build);
    snprintf(mkmodel_bin, sizeof mkmodel_bin, "%s/tp_mkmodel", build);
    if (access(tpipe_bin, X_OK) || access(mkmodel_bin, X_OK)) {
        printf("SKIP: %s or %s is not built\n", tpipe_bin, mkmodel_bin);
        return 0;
    }
    snprintf(tmp, sizeof tmp, "/tmp/tp_cli_e2e_XXXXXX");
    if (!mkdtemp(tmp))
        return 1;
    pick_tokenizer(tok_modernbert, sizeof tok_modernbert, "modernbert", "tokenizer.json");
    pick_tokenizer(tok_qwen3, sizeof tok_qwen3, "qwen3", "tokenizer_config.json");
    char tcfg[4300];
    snprintf(tcfg, sizeof tcfg, "%s/tokenizer_config.json", tok_qwen3);
    bool qwen_template = access(tcfg, R_OK) == 0;
    const char *small[] = {"--hidden", "32", "--layers",       "2",
                           "--heads",  "2",  "--intermediate", "48"};
#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
    bool ok =
        mkmodel(m_mlm, sizeof m_mlm, "mlm",
                ARGS("--family", "modernbert", "--task", "mlm", small[0], small[1], small[2],
                     small[3], small[4], small[5], small[6], small[7], "--tokenizer-dir",
                     tok_modernbert)) &&
        mkmodel(m_cls, sizeof m_cls, "cls",
                ARGS("--family", "modernbert", "--task", "seqcls", "--labels",
                     "negative,neutral,positive", small[0], small[1], small[2], small[3], small[4],
                     small[5], small[6], small[7], "--tokenizer-dir", tok_modernbert)) &&
        mkmodel(m_nli, sizeof m_nli, "nli",
                ARGS("--family", "modernbert", "--task", "seqcls", "--nli", small[0], small[1],
                     small[2], small[3], small[4], small[5], small[6], small[7], "--tokenizer-dir",
                     tok_modernbert)) &&
        mkmodel(m_qwen, sizeof m_qwen, "qwen3",
                ARGS("--family", "qwen3", "--hidden", "32", "--layers", "2", "--heads", "2",
                     "--kv-heads", "1", "--head-dim", "16", "--intermediate", "48", "--tie",
                     "--tokenizer-dir", tok_qwen3));
    CHECK_MSG(ok, "tp_mkmodel could not write the tiny models");
    if (ok) {
        test_top_level();
        test_fill_mask();
        test_sentiment();
        test_zero_shot();
        test_tokenize();
        test_chat_template();
        test_generate(qwen_template);
        test_hub_model();
        test_progress();
        test_demo_online();
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", tmp);
    return tp_test_exit();
}
