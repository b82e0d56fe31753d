/*
 * test_cli_framework.c — the CLI's shared pieces without any model: the input
 * line rule (JSON string / JSON object / raw line), JSON output (escaping,
 * invalid UTF-8, 9-digit floats), option parsing and its errors, and the
 * streaming driver: order, chunking, per-item and batch-level failures, exit
 * codes, empty input, and bounded memory on a large input.
 */
#include "cli.h"
#include "test_util.h"

#include <sys/resource.h>
#include <unistd.h>

static char tmpdir[128];

static void test_items(void) {
    cli_item it;
    char *l;
#define LINE(s) (l = tp_strdup(s), cli_item_from_line(&it, l, strlen(l)))
    LINE("\"a \\\"quoted\\\" \\u00e9 text\"");
    CHECK(it.text && !strcmp(it.text, "a \"quoted\" \xC3\xA9 text") && !it.obj && !it.bad_input);
    cli_item_free(&it);
    LINE("  {\"text\": \"hello\", \"labels\": [\"x\", \"y\"]}  ");
    CHECK(it.text && !strcmp(it.text, "hello") && it.obj && !it.bad_input);
    CHECK(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(it.obj, "labels")));
    cli_item_free(&it);
    LINE("{\"messages\": []}");
    CHECK(!it.text && it.obj && !it.bad_input);
    cli_item_free(&it);
    LINE("{\"text\": 3}");
    CHECK(it.bad_input && strstr(it.bad_input, "\"text\""));
    cli_item_free(&it);
    LINE("just a raw line, with \"quotes\"");
    CHECK(it.text && !strcmp(it.text, "just a raw line, with \"quotes\"") && !it.obj);
    cli_item_free(&it);
    LINE("{\"text\": \"unterminated");
    CHECK(it.text && !strcmp(it.text, "{\"text\": \"unterminated") && !it.obj);
    cli_item_free(&it);
    LINE("\"two\" \"strings\"");
    CHECK(it.text && !strcmp(it.text, "\"two\" \"strings\"") && !it.obj);
    cli_item_free(&it);
    LINE("42");
    CHECK(it.text && !strcmp(it.text, "42") && !it.obj);
    cli_item_free(&it);
    LINE("");
    CHECK(it.text && it.text_len == 0 && !it.bad_input);
    cli_item_free(&it);
#undef LINE
#define LINE2(s) (l = tp_strdup(s), cli_item_from_line(&it, l, strlen(l)))
    LINE2("\"a\\u0000b\"");
    CHECK(it.bad_input && strstr(it.bad_input, "NUL"));
    cli_item_free(&it);
    LINE2("\"a\\\\u0000b\""); /* an escaped backslash, then text */
    CHECK(!it.bad_input && it.text && !strcmp(it.text, "a\\u0000b"));
    cli_item_free(&it);
    char *nul = malloc(4);
    memcpy(nul, "a\0b", 4);
    cli_item_from_line(&it, nul, 3);
    CHECK(it.bad_input && strstr(it.bad_input, "NUL"));
    cli_item_free(&it);
}

static void test_json_out(void) {
    tp_buf b = {0};
    cli_json_cstr(&b, "q\"b\\s/\n\t\x01 \xC3\xA9");
    CHECK_STR(b.data, "\"q\\\"b\\\\s/\\n\\t\\u0001 \xC3\xA9\"");
    b.len = 0;
    /* invalid UTF-8: a lone continuation byte, a truncated sequence, an overlong */
    cli_json_str(&b,
                 "a\x80"
                 "b\xE2\x82"
                 "c\xC0\xAF",
                 8);
    CHECK_STR(b.data, "\"a\xEF\xBF\xBD"
                      "b\xEF\xBF\xBD\xEF\xBF\xBD"
                      "c\xEF\xBF\xBD\xEF\xBF\xBD\"");
    b.len = 0;
    cli_json_cstr(&b, "\xC2\x85|\xE2\x80\xA8|\xE2\x80\xA9|\xE2\x80\xA7");
    CHECK_STR(b.data, "\"\\u0085|\\u2028|\\u2029|\xE2\x80\xA7\"");
    b.len = 0;
    cli_json_cstr(&b, NULL);
    CHECK_STR(b.data, "null");
    b.len = 0;
    cli_json_float(&b, 0.1f);
    CHECK_STR(b.data, "0.100000001");
    b.len = 0;
    cli_json_float(&b, 1.0f);
    CHECK_STR(b.data, "1");
    b.len = 0;
    cli_json_float(&b, 1.0 / 3.0);
    CHECK_STR(b.data, "0.333333333");
    b.len = 0;
    cli_json_float(&b, 1e-7f);
    CHECK_STR(b.data, "1.00000001e-07");
    b.len = 0;
    cli_json_float(&b, 0.0 / 0.0);
    CHECK_STR(b.data, "null");
    b.len = 0;
    cli_ok_begin(&b, 7);
    tp_buf_puts(&b, "[1]");
    cli_ok_end(&b);
    CHECK_STR(b.data, "{\"index\": 7, \"ok\": true, \"result\": [1]}\n");
    b.len = 0;
    cli_err_line(&b, 3, "no [MASK] token in input");
    CHECK_STR(b.data, "{\"index\": 3, \"ok\": false, \"error\": \"no [MASK] token in input\"}\n");
    tp_buf_free(&b);
}

static int parse(cli_common *c, const cli_opt *opts, bool needs_model, int argc, ...) {
    char *argv[32];
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc && i < 32; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    return cli_parse(argc, argv, "usage: test", opts, c, needs_model);
}

static void test_args(void) {
    long k = 1;
    double t = 0;
    bool flag = false;
    cli_strlist stops = {0};
    const cli_opt opts[] = {
        {"--top-k", CLI_INT, &k, "K", "k", 1, 100, NULL},
        {"--temperature", CLI_DOUBLE, &t, "T", "t", 0, 0, NULL},
        {"--flag", CLI_FLAG, &flag, NULL, "f", 0, 0, NULL},
        {"--stop", CLI_STRINGS, &stops, "S", "s", 0, 0, NULL},
        {NULL, CLI_FLAG, NULL, NULL, NULL, 0, 0, NULL},
    };
    cli_common c;
    int rc =
        parse(&c, opts, true, 14, "cmd", "--model", "m", "--top-k=5", "text one", "--temperature",
              "0.5", "--flag", "--stop", "a", "--stop=b", "--", "--not-opt", "-");
    CHECK_EQ_INT(rc, 0);
    CHECK_STR(c.model, "m");
    CHECK_EQ_INT(k, 5);
    CHECK(t == 0.5 && flag);
    CHECK_EQ_INT(stops.n, 2);
    if (stops.n == 2)
        CHECK(!strcmp(stops.items[0], "a") && !strcmp(stops.items[1], "b"));
    CHECK_EQ_INT(c.texts.n, 3);
    if (c.texts.n == 3)
        CHECK(!strcmp(c.texts.items[0], "text one") && !strcmp(c.texts.items[1], "--not-opt") &&
              !strcmp(c.texts.items[2], "-"));
    CHECK_STR(c.precision, "f32");
    cli_common_free(&c);
    free((void *)stops.items);

    rc = parse(&c, opts, true, 9, "cmd", "--model", "m", "--batch-size", "8", "--threads", "2",
               "--precision", "bf16");
    CHECK_EQ_INT(rc, 0);
    CHECK(c.batch_size == 8 && c.threads == 2 && !strcmp(c.precision, "bf16"));
    cli_common_free(&c);
    /* errors: exit status 2 */
    fprintf(stderr, "(the next lines of errors are expected)\n");
    CHECK_EQ_INT(parse(&c, opts, true, 3, "cmd", "--model", "m"), 0);
    cli_common_free(&c);
    CHECK_EQ_INT(parse(&c, opts, true, 1, "cmd"), CLI_EXIT_FATAL);
    CHECK_EQ_INT(parse(&c, opts, false, 1, "cmd"), 0);
    cli_common_free(&c);
    CHECK_EQ_INT(parse(&c, opts, true, 4, "cmd", "--model", "m", "--bogus"), CLI_EXIT_FATAL);
    CHECK_EQ_INT(parse(&c, opts, true, 4, "cmd", "--model", "m", "--top-k"), CLI_EXIT_FATAL);
    CHECK_EQ_INT(parse(&c, opts, true, 5, "cmd", "--model", "m", "--top-k", "x"), CLI_EXIT_FATAL);
    CHECK_EQ_INT(parse(&c, opts, true, 5, "cmd", "--model", "m", "--top-k", "0"), CLI_EXIT_FATAL);
    CHECK_EQ_INT(parse(&c, opts, true, 5, "cmd", "--model", "m", "--temperature", "1e"),
                 CLI_EXIT_FATAL);
    CHECK_EQ_INT(parse(&c, opts, true, 4, "cmd", "--model", "m", "--flag=1"), CLI_EXIT_FATAL);
    CHECK_EQ_INT(parse(&c, opts, true, 5, "cmd", "--model", "m", "--precision", "f16"),
                 CLI_EXIT_FATAL);
    CHECK_EQ_INT(parse(&c, opts, true, 5, "cmd", "--model", "m", "--batch-size", "0"),
                 CLI_EXIT_FATAL);
    CHECK_EQ_INT(parse(&c, opts, true, 6, "cmd", "--model", "m", "--input", "f", "text"),
                 CLI_EXIT_FATAL);
    /* --help prints and asks the caller to exit 0 */
    fflush(stdout);
    CHECK_EQ_INT(parse(&c, opts, true, 2, "cmd", "--help"), CLI_EXIT_HELP);

    cli_strlist l;
    CHECK(cli_split_commas("a, b ,c", &l));
    CHECK_EQ_INT(l.n, 3);
    if (l.n == 3)
        CHECK(!strcmp(l.items[0], "a") && !strcmp(l.items[1], "b") && !strcmp(l.items[2], "c"));
    cli_strlist_free_copies(&l);
    CHECK(!cli_split_commas("a,,b", &l));
    CHECK(!cli_split_commas("", &l));
}

/* A subcommand for the driver tests: the result is the text's length; a text
 * "bad" is an item error; a text "FATAL" fails the batch. */
typedef struct echo_ctx {
    size_t calls, max_n, items;
} echo_ctx;

static int echo_batch(void *vctx, const cli_item *items, size_t n, tp_buf *out, bool *ok,
                      char *fatal, size_t fatal_len) {
    echo_ctx *c = vctx;
    c->calls++;
    c->items += n;
    if (n > c->max_n)
        c->max_n = n;
    const char **texts = malloc(n * sizeof *texts);
    size_t *which = malloc(n * sizeof *which);
    size_t k = cli_collect_texts(items, n, out, ok, texts, which);
    for (size_t j = 0; j < k; j++) {
        size_t i = which[j];
        if (!strcmp(texts[j], "FATAL")) {
            snprintf(fatal, fatal_len, "the batch failed at item %zu", items[i].index);
            free(texts);
            free(which);
            return 1;
        }
        if (!strcmp(texts[j], "bad")) {
            cli_err_line(&out[i], items[i].index, "bad item");
            continue;
        }
        cli_ok_begin(&out[i], items[i].index);
        tp_buf_printf(&out[i], "%zu", strlen(texts[j]));
        cli_ok_end(&out[i]);
        ok[i] = true;
    }
    free(texts);
    free(which);
    return 0;
}

static char *write_tmp(const char *name, const char *content) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    fputs(content, f);
    fclose(f);
    return path;
}

static char *run_file(const char *input, long batch, int *rc, echo_ctx *ctx) {
    char in[256], out[256];
    snprintf(in, sizeof in, "%s", write_tmp("in.jsonl", input));
    snprintf(out, sizeof out, "%s/out.jsonl", tmpdir);
    cli_common c;
    memset(&c, 0, sizeof c);
    c.precision = "f32";
    c.input = in;
    c.output = out;
    c.quiet = true;
    c.batch_size = batch;
    memset(ctx, 0, sizeof *ctx);
    *rc = cli_run("test", &c, echo_batch, ctx, NULL);
    size_t n;
    char *data = NULL;
    tp_error err;
    if (tp_read_file(out, &data, &n, &err) != TP_OK)
        return NULL;
    return data;
}

static void test_driver(void) {
    int rc;
    echo_ctx ctx;
    char *out = run_file(
        "\"ab\"\n{\"text\": \"abc\"}\nraw\n\n{\"x\": 1}\nbad\n{\"text\": 5}\r\nz\n", 3, &rc, &ctx);
    CHECK_EQ_INT(rc, CLI_EXIT_ITEMS);
    CHECK(out != NULL);
    if (out)
        CHECK_STR(out, "{\"index\": 0, \"ok\": true, \"result\": 2}\n"
                       "{\"index\": 1, \"ok\": true, \"result\": 3}\n"
                       "{\"index\": 2, \"ok\": true, \"result\": 3}\n"
                       "{\"index\": 3, \"ok\": true, \"result\": 0}\n"
                       "{\"index\": 4, \"ok\": false, \"error\": \"line 5: JSON object has no "
                       "\\\"text\\\" field\"}\n"
                       "{\"index\": 5, \"ok\": false, \"error\": \"bad item\"}\n"
                       "{\"index\": 6, \"ok\": false, \"error\": \"line 7: field \\\"text\\\" "
                       "must be a string\"}\n"
                       "{\"index\": 7, \"ok\": true, \"result\": 1}\n");
    free(out);
    CHECK_EQ_INT(ctx.calls, 3);
    CHECK_EQ_INT(ctx.max_n, 3);
    /* all good: exit 0; no final newline on the last line is fine */
    out = run_file("a\nbb\nccc", 0, &rc, &ctx);
    CHECK_EQ_INT(rc, CLI_EXIT_OK);
    if (out)
        CHECK_STR(out, "{\"index\": 0, \"ok\": true, \"result\": 1}\n"
                       "{\"index\": 1, \"ok\": true, \"result\": 2}\n"
                       "{\"index\": 2, \"ok\": true, \"result\": 3}\n");
    free(out);
    CHECK_EQ_INT(ctx.calls, 1);
    /* empty input: no lines, exit 0 */
    out = run_file("", 0, &rc, &ctx);
    CHECK_EQ_INT(rc, CLI_EXIT_OK);
    CHECK(out && out[0] == '\0');
    free(out);
    /* a batch-level failure: exit 2, the chunks before it are written */
    fprintf(stderr, "(the next error line is expected)\n");
    out = run_file("a\nb\nc\nFATAL\ne\n", 2, &rc, &ctx);
    CHECK_EQ_INT(rc, CLI_EXIT_FATAL);
    if (out)
        CHECK_STR(out, "{\"index\": 0, \"ok\": true, \"result\": 1}\n"
                       "{\"index\": 1, \"ok\": true, \"result\": 1}\n");
    free(out);
    /* a missing input file is batch-level */
    cli_common c;
    memset(&c, 0, sizeof c);
    c.precision = "f32";
    c.input = "/nonexistent/input.jsonl";
    c.quiet = true;
    CHECK_EQ_INT(cli_run("test", &c, echo_batch, &ctx, NULL), CLI_EXIT_FATAL);
    /* positional texts, in chunks */
    char outp[256];
    snprintf(outp, sizeof outp, "%s/out2.jsonl", tmpdir);
    const char *texts[] = {"x", "yy", "bad", "zzzz", "w"};
    memset(&c, 0, sizeof c);
    c.precision = "f32";
    c.quiet = true;
    c.output = outp;
    c.batch_size = 2;
    c.texts.items = texts;
    c.texts.n = 5;
    memset(&ctx, 0, sizeof ctx);
    cli_run_stats st;
    CHECK_EQ_INT(cli_run("test", &c, echo_batch, &ctx, &st), CLI_EXIT_ITEMS);
    CHECK(st.items == 5 && st.failed == 1 && ctx.calls == 3);
    size_t n;
    tp_error err;
    if (tp_read_file(outp, &out, &n, &err) == TP_OK) {
        CHECK_STR(out, "{\"index\": 0, \"ok\": true, \"result\": 1}\n"
                       "{\"index\": 1, \"ok\": true, \"result\": 2}\n"
                       "{\"index\": 2, \"ok\": false, \"error\": \"bad item\"}\n"
                       "{\"index\": 3, \"ok\": true, \"result\": 4}\n"
                       "{\"index\": 4, \"ok\": true, \"result\": 1}\n");
        free(out);
    }
}

static long max_rss_kb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* 400,000 lines (about 30 MB) stream through in bounded memory: peak RSS grows
 * by far less than the input, and every line is answered once, in order. */
static void test_bounded_memory(void) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    bool sanitized = true;
#else
    bool sanitized = getenv("TPIPE_SANITIZER_BUILD") != NULL;
#endif
    if (sanitized) {
        /* ASan's allocator quarantine keeps freed memory: RSS says nothing there */
        printf("SKIP: bounded-memory check (sanitizer build)\n");
        return;
    }
    char in[256], outp[256];
    snprintf(in, sizeof in, "%s/big.jsonl", tmpdir);
    snprintf(outp, sizeof outp, "%s/big.out", tmpdir);
    FILE *f = fopen(in, "wb");
    const size_t N = 400000;
    for (size_t i = 0; i < N; i++)
        fprintf(f, "{\"text\": \"line number %zu of a large input, padded to size\"}\n", i);
    fclose(f);
    long before = max_rss_kb();
    cli_common c;
    memset(&c, 0, sizeof c);
    c.precision = "f32";
    c.quiet = true;
    c.input = in;
    c.output = outp;
    echo_ctx ctx = {0};
    CHECK_EQ_INT(cli_run("test", &c, echo_batch, &ctx, NULL), CLI_EXIT_OK);
    long grown = max_rss_kb() - before;
    CHECK_EQ_INT(ctx.items, N);
    CHECK(ctx.max_n <= CLI_DEFAULT_CHUNK);
    CHECK_MSG(grown < 12 * 1024, "peak RSS grew by %ld kB on a 30 MB input", grown);
    /* the last line is the last index */
    f = fopen(outp, "rb");
    char line[256], last[256] = "";
    size_t lines = 0;
    while (f && fgets(line, sizeof line, f)) {
        lines++;
        snprintf(last, sizeof last, "%s", line);
    }
    if (f)
        fclose(f);
    CHECK_EQ_INT(lines, N);
    CHECK_STR(last, "{\"index\": 399999, \"ok\": true, \"result\": 51}\n");
    unlink(in);
    unlink(outp);
}

/* Random lines (bytes, JSON-ish fragments) never crash the line rule, and the
 * JSON writer always produces valid UTF-8 without raw control characters. */
static void test_fuzz(void) {
    uint32_t x = 12345;
    const char *frags[] = {"{", "}", "\"", "\\",   "\\u0000",  "\\ud800",      "text", ":",    ",",
                           "[", "]", " ",  "\xff", "\xc3\xa9", "\xe2\x80\xa8", "null", "1e999"};
    size_t bad_utf8 = 0, ctrl = 0;
    for (int iter = 0; iter < 20000; iter++) {
        char buf[256];
        size_t n = 0;
        x = x * 1664525u + 1013904223u;
        int parts = (int)(x >> 28);
        for (int k = 0; k < parts; k++) {
            x = x * 1664525u + 1013904223u;
            if (x & 1) {
                const char *f = frags[(x >> 8) % (sizeof frags / sizeof frags[0])];
                size_t fl = strlen(f);
                if (n + fl < sizeof buf) {
                    memcpy(buf + n, f, fl);
                    n += fl;
                }
            } else if (n + 1 < sizeof buf) {
                buf[n++] = (char)(x >> 16);
            }
        }
        char *line = malloc(n + 1);
        memcpy(line, buf, n);
        line[n] = '\0';
        cli_item it;
        cli_item_from_line(&it, line, n);
        tp_buf b = {0};
        if (it.text)
            cli_json_str(&b, it.text, it.text_len);
        else
            cli_json_cstr(&b, it.bad_input ? it.bad_input : "");
        if (b.data) {
            bad_utf8 += tp_utf8_validate(b.data, b.len) != b.len;
            for (size_t i = 0; i < b.len; i++)
                ctrl += (unsigned char)b.data[i] < 0x20;
        }
        tp_buf_free(&b);
        cli_item_free(&it);
    }
    CHECK_EQ_INT(bad_utf8, 0);
    CHECK_EQ_INT(ctrl, 0);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tp_cli_XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    test_items();
    test_json_out();
    test_args();
    test_driver();
    test_fuzz();
    test_bounded_memory();
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", tmpdir);
    return tp_test_exit();
}
