/*
 * args.c — option parsing for tpipe subcommands: a table per subcommand plus
 * the common options of CLI.md, --opt VALUE and --opt=VALUE forms, "--" to end
 * options, everything else positional. Errors are one line on stderr naming
 * the option and what was wrong; --help prints the usage and the table.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int cli_fatal(const char *cmd, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* one line: newlines in messages (e.g. from nested errors) become spaces */
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    if (cmd)
        fprintf(stderr, "tpipe %s: %s\n", cmd, msg);
    else
        fprintf(stderr, "tpipe: %s\n", msg);
    return CLI_EXIT_FATAL;
}

static const char *common_help[][2] = {
    {"--model M", "local model folder, or Hugging Face id org/name[@revision]"},
    {"--batch-size N", "items per forward (default: chosen from the token budget)"},
    {"--max-batch-tokens N", "token budget of one micro-batch"},
    {"--threads N", "worker threads (default: all cores)"},
    {"--precision P", "compute precision: f32 (default) or bf16"},
    {"--input FILE", "read items from FILE, one per line (default: stdin)"},
    {"--output FILE", "write JSON lines to FILE (default: stdout)"},
    {"--quiet", "no progress bar on stderr"},
    {"--stats", "print items, seconds and items/s on stderr at the end"},
    {"--help", "show this help"},
};

static void print_help(const char *usage, const cli_opt *opts) {
    printf("%s\n", usage);
    if (opts && opts[0].name) {
        printf("\nOptions:\n");
        for (const cli_opt *o = opts; o->name; o++) {
            char left[64];
            snprintf(left, sizeof left, "%s%s%s", o->name, o->metavar ? " " : "",
                     o->metavar ? o->metavar : "");
            printf("  %-24s %s\n", left, o->help ? o->help : "");
        }
    }
    printf("\nCommon options:\n");
    for (size_t i = 0; i < sizeof common_help / sizeof common_help[0]; i++)
        printf("  %-24s %s\n", common_help[i][0], common_help[i][1]);
    printf("\nInput: texts given after the options, else one item per line of the input\n"
           "(a JSON string, a JSON object with \"text\", or the raw line).\n"
           "Output: one JSON object per item and line, in input order:\n"
           "  {\"index\": i, \"ok\": true, \"result\": ...} or "
           "{\"index\": i, \"ok\": false, \"error\": \"...\"}\n"
           "Exit status: 0 all items ok, 1 some items failed, 2 batch-level failure.\n");
}

static bool parse_long(const char *s, long *out) {
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

static bool parse_double(const char *s, double *out) {
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || v != v)
        return false;
    *out = v;
    return true;
}

static bool strlist_push(cli_strlist *l, const char *s) {
    const char **items = tp_realloc_array((void *)l->items, l->n + 1, sizeof *items);
    if (!items)
        return false;
    items[l->n++] = s;
    l->items = items;
    return true;
}

/* Sets one option from its value; returns false after printing the error. */
static bool apply(const char *cmd, const cli_opt *o, const char *val) {
    if (o->seen)
        *o->seen = true;
    switch (o->kind) {
    case CLI_FLAG:
        *(bool *)o->dest = true;
        return true;
    case CLI_INT: {
        long v;
        if (!parse_long(val, &v)) {
            cli_fatal(cmd, "%s expects an integer, got \"%s\"", o->name, val);
            return false;
        }
        if (o->min < o->max && (v < o->min || v > o->max)) {
            cli_fatal(cmd, "%s must be in [%ld, %ld], got %ld", o->name, o->min, o->max, v);
            return false;
        }
        *(long *)o->dest = v;
        return true;
    }
    case CLI_DOUBLE: {
        double v;
        if (!parse_double(val, &v)) {
            cli_fatal(cmd, "%s expects a number, got \"%s\"", o->name, val);
            return false;
        }
        *(double *)o->dest = v;
        return true;
    }
    case CLI_STRING:
        *(const char **)o->dest = val;
        return true;
    case CLI_STRINGS:
        if (!strlist_push((cli_strlist *)o->dest, val)) {
            cli_fatal(cmd, "out of memory");
            return false;
        }
        return true;
    }
    return false;
}

int cli_parse(int argc, char **argv, const char *usage, const cli_opt *opts, cli_common *c,
              bool needs_model) {
    const char *cmd = argv[0];
    memset(c, 0, sizeof *c);
    c->precision = "f32";
    const cli_opt common[] = {
        {"--model", CLI_STRING, &c->model, "M", NULL, 0, 0, NULL},
        {"--batch-size", CLI_INT, &c->batch_size, "N", NULL, 1, 1L << 30, NULL},
        {"--max-batch-tokens", CLI_INT, &c->max_batch_tokens, "N", NULL, 1, 1L << 40, NULL},
        {"--threads", CLI_INT, &c->threads, "N", NULL, 1, 4096, NULL},
        {"--precision", CLI_STRING, &c->precision, "P", NULL, 0, 0, NULL},
        {"--input", CLI_STRING, &c->input, "FILE", NULL, 0, 0, NULL},
        {"--output", CLI_STRING, &c->output, "FILE", NULL, 0, 0, NULL},
        {"--quiet", CLI_FLAG, &c->quiet, NULL, NULL, 0, 0, NULL},
        {"--help", CLI_FLAG, &c->help, NULL, NULL, 0, 0, NULL},
        {"--stats", CLI_FLAG, &c->stats, NULL, NULL, 0, 0, NULL},
        {NULL, CLI_FLAG, NULL, NULL, NULL, 0, 0, NULL},
    };
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (options_done || a[0] != '-' || a[1] != '-') {
            /* "-h" is the one short form; a lone "-" or "-x" is a text */
            if (!options_done && !strcmp(a, "-h")) {
                c->help = true;
                continue;
            }
            if (!strlist_push(&c->texts, a)) {
                cli_common_free(c);
                return cli_fatal(cmd, "out of memory");
            }
            continue;
        }
        if (!strcmp(a, "--")) {
            options_done = true;
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t name_len = eq ? (size_t)(eq - a) : strlen(a);
        const cli_opt *found = NULL;
        for (int t = 0; t < 2 && !found; t++)
            for (const cli_opt *o = t ? common : opts; o && o->name; o++)
                if (strlen(o->name) == name_len && !strncmp(o->name, a, name_len)) {
                    found = o;
                    break;
                }
        if (!found) {
            cli_common_free(c);
            return cli_fatal(cmd, "unknown option %.*s (see tpipe %s --help)", (int)name_len, a,
                             cmd);
        }
        const char *val = NULL;
        if (found->kind == CLI_FLAG) {
            if (eq) {
                cli_common_free(c);
                return cli_fatal(cmd, "%s takes no value", found->name);
            }
        } else if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            cli_common_free(c);
            return cli_fatal(cmd, "%s needs a value (%s)", found->name,
                             found->metavar ? found->metavar : "VALUE");
        }
        if (!apply(cmd, found, val)) {
            cli_common_free(c);
            return CLI_EXIT_FATAL;
        }
    }
    if (c->help) {
        print_help(usage, opts);
        cli_common_free(c);
        return CLI_EXIT_HELP;
    }
    if (needs_model && !c->model) {
        cli_common_free(c);
        return cli_fatal(cmd, "--model is required (see tpipe %s --help)", cmd);
    }
    if (c->input && c->texts.n) {
        cli_common_free(c);
        return cli_fatal(cmd, "give texts as arguments or --input, not both");
    }
    if (strcmp(c->precision, "f32") && strcmp(c->precision, "bf16")) {
        cli_common_free(c);
        return cli_fatal(cmd, "--precision must be f32 or bf16, got \"%s\"", c->precision);
    }
    return 0;
}

void cli_common_free(cli_common *c) {
    free((void *)c->texts.items);
    c->texts.items = NULL;
    c->texts.n = 0;
}

bool cli_split_commas(const char *s, cli_strlist *out) {
    out->items = NULL;
    out->n = 0;
    const char *p = s;
    for (;;) {
        const char *q = strchr(p, ',');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        /* trim spaces around each label, as users write "a, b" */
        while (n && (*p == ' ' || *p == '\t')) {
            p++;
            n--;
        }
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        char *copy = n ? tp_strndup(p, n) : NULL;
        if (!copy || !strlist_push(out, copy)) {
            free(copy);
            cli_strlist_free_copies(out);
            return false;
        }
        if (!q)
            return true;
        p = q + 1;
    }
}

void cli_strlist_free_copies(cli_strlist *l) {
    for (size_t i = 0; i < l->n; i++)
        free((void *)l->items[i]);
    free((void *)l->items);
    l->items = NULL;
    l->n = 0;
}
