/*
 * cli.h — shared pieces of the tpipe command line (../shared/CLI.md is the
 * contract): option parsing with a per-subcommand table, the streaming
 * read → batch → write driver, JSON writing helpers and the progress bar.
 *
 * Flow of one subcommand: cmd_<name>.c declares its options in a cli_opt table,
 * calls cli_parse(), loads its model, then cli_run() with a batch callback. The
 * driver reads the input in chunks (a reader thread fills the next chunk while
 * the current one is processed, at most two chunks alive, so memory does not grow
 * with the input), calls the callback once per chunk, and writes exactly one
 * JSON line per item in input order. Exit status: 0 all items ok, 1 some item
 * failed, 2 batch-level failure (one line on stderr).
 */
#ifndef TPIPE_CLI_H
#define TPIPE_CLI_H

#include "tpipe.h"
#include "core/core.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CLI_EXIT_OK 0
#define CLI_EXIT_ITEMS 1
#define CLI_EXIT_FATAL 2
/* cli_parse's answer when --help was given and printed: the caller exits 0. */
#define CLI_EXIT_HELP (-1)

/* Items per chunk handed to a subcommand when --batch-size is not given (or is
 * smaller): large enough for the pipelines to sort by length and fill their
 * micro-batches, small enough that two chunks in memory stay modest. */
#define CLI_DEFAULT_CHUNK 256
/* A chunk also ends once its lines hold this many bytes. */
#define CLI_CHUNK_BYTES (16u << 20)

typedef struct cli_strlist {
    const char **items;
    size_t n;
} cli_strlist;

typedef enum cli_opt_kind {
    CLI_FLAG,    /* bool *                                   */
    CLI_INT,     /* long *    (integer, range checked)       */
    CLI_DOUBLE,  /* double *                                 */
    CLI_STRING,  /* const char ** (points into argv)         */
    CLI_STRINGS, /* cli_strlist * (repeatable)               */
} cli_opt_kind;

typedef struct cli_opt {
    const char *name; /* "--top-k"; NULL ends a table */
    cli_opt_kind kind;
    void *dest;
    const char *metavar; /* "K" for help; NULL for flags */
    const char *help;
    long min, max; /* CLI_INT range (inclusive) when min < max */
    bool *seen;    /* optional: set when the option was given */
} cli_opt;

/* The entry that ends an option table. */
#define CLI_OPT_END                                                                                \
    { NULL, CLI_FLAG, NULL, NULL, NULL, 0, 0, NULL }
/* --no-truncation of the encoder subcommands (dest: bool *). */
#define CLI_OPT_NO_TRUNCATION(dest)                                                                \
    {                                                                                              \
        "--no-truncation", CLI_FLAG, (dest), NULL,                                                 \
            "fail items longer than the model's context instead of cutting them", 0, 0, NULL       \
    }

/* The options every subcommand takes (CLI.md "Common options"). */
typedef struct cli_common {
    const char *model;
    long batch_size;       /* 0 = chosen by the pipeline */
    long max_batch_tokens; /* 0 = pipeline default */
    long threads;          /* 0 = all cores */
    const char *precision; /* "f32" (default) or "bf16" */
    const char *input;     /* NULL or "-" = stdin */
    const char *output;    /* NULL or "-" = stdout */
    bool quiet;
    bool help;
    bool stats;         /* --stats: items, seconds and items/s on stderr at the end */
    cli_strlist texts;  /* positional texts (the batch, when any) */
    size_t chunk_items; /* set by a subcommand: items per batch call (0: --batch-size when
                           given, else CLI_DEFAULT_CHUNK) */
} cli_common;

/* A subcommand's description for help and dispatch. */
typedef struct cli_command {
    const char *name;
    const char *summary;
    int (*main)(int argc, char **argv); /* argv[0] is the subcommand name */
} cli_command;

/* Parses argv[1..argc) of a subcommand: `opts` (terminated by a NULL name) plus
 * the common options; --opt VALUE and --opt=VALUE; "--" ends options; other
 * arguments are positional texts. Prints help (usage + option table) on --help
 * and returns CLI_EXIT_HELP; on a bad argument prints one line to stderr and
 * returns CLI_EXIT_FATAL; else 0. `needs_model`: --model is required. */
int cli_parse(int argc, char **argv, const char *usage, const cli_opt *opts, cli_common *common,
              bool needs_model);
void cli_common_free(cli_common *common);

/* Splits "a,b,c" into a list (copies; empty parts rejected). false on a bad list. */
bool cli_split_commas(const char *s, cli_strlist *out);
void cli_strlist_free_copies(cli_strlist *l); /* frees items made by cli_split_commas */

/* Prints "tpipe <cmd>: <message>" on stderr (one line) and returns CLI_EXIT_FATAL. */
int cli_fatal(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- input items ---- */

typedef struct cli_item {
    size_t index;          /* position in the whole input, from 0 */
    size_t line_no;        /* 1-based input line, 0 for positional texts */
    const char *text;      /* the text: JSON string, object's "text", or raw line; may be NULL */
    size_t text_len;       /* bytes of text (a raw line may hold NUL bytes) */
    cJSON *obj;            /* the line's JSON object, or NULL */
    const char *bad_input; /* set when the line cannot be an item at all (e.g. "text" not a
                              string); the driver writes the error line itself */
    cJSON *root_;          /* owned parse tree (obj or the JSON string) */
    char *line_;           /* owned raw line */
    char bad_buf_[96];
} cli_item;

/* Builds the item for one input line (no trailing newline; takes ownership of
 * the malloc'd line): a JSON string, a JSON object (fields kept in obj; "text"
 * must then be a string when present), else the raw line. Owned storage is
 * freed by cli_item_free. */
void cli_item_from_line(cli_item *item, char *line, size_t len);
/* The length of an input line read with its end of line: a final "\n" and
 * then a final "\r" are not part of the line. */
size_t cli_line_len(const char *line, size_t len);
/* An item for a positional text (not owned). */
void cli_item_from_text(cli_item *item, const char *text);
void cli_item_free(cli_item *item);

/* A generation item's own settings from its JSON object (NULL: none):
 * max_new_tokens, top_k, seed (non-negative integers), temperature, top_p,
 * min_p (numbers >= 0), repetition_penalty (> 0), stop (a string or a list of
 * non-empty strings). *o gets them over tp_gen_options_unset(); stop strings
 * point into obj, *stops is the malloc'd array holding them (free() it, also
 * NULL). Returns NULL, or a message naming the bad field. */
const char *cli_item_gen_options(const cJSON *obj, tp_gen_options *o, const char ***stops);
/* A zero-shot item's labels: its own "labels" (a list of non-empty strings, or
 * one comma-separated string), else `defaults` (--labels). Returns the labels
 * (*n of them), or NULL with *why set when there are none or they are
 * malformed. `split` receives what the caller must free: a list split from a
 * string (split->n > 0: cli_strlist_free_copies), or the array of a JSON list
 * (split->n == 0: free(split->items)). */
const char **cli_item_labels(const cli_item *it, const cli_strlist *defaults, size_t *n,
                             cli_strlist *split, const char **why);

/* ---- JSON output helpers (write into a tp_buf) ---- */

/* A JSON string literal; invalid UTF-8 is written as U+FFFD so the line stays valid JSON. */
void cli_json_str(tp_buf *b, const char *s, size_t n);
void cli_json_cstr(tp_buf *b, const char *s);
/* A float with 9 significant digits (round-trips a float32); NaN/inf -> null. */
void cli_json_float(tp_buf *b, double v);

/* The two line shapes of CLI.md. cli_ok_begin writes up to `"result": `; the
 * caller writes the result value and then cli_ok_end. Lines end with '\n'. */
void cli_ok_begin(tp_buf *b, size_t index);
void cli_ok_end(tp_buf *b);
void cli_err_line(tp_buf *b, size_t index, const char *message);
/* The error line of an item that cannot be run: "line N: <why>" for an input
 * line, plain <why> for a positional text. */
void cli_item_err(tp_buf *b, const cli_item *item, const char *why);
/* Begins an item's line from its pipeline result's error: the error line
 * (returns false) when e->status is not TP_OK, else cli_ok_begin (true). */
bool cli_result_begin(tp_buf *b, const cli_item *item, const tp_error *e);
/* cli_ok_end, and marks the item ok. */
void cli_result_end(tp_buf *b, bool *ok);

/* ---- the driver ---- */

/* Processes items[0..n): for each i, writes exactly one line into out[i]
 * (with cli_ok_begin/end or cli_err_line) and sets ok[i]. Items with
 * bad_input set are already answered by the driver (out[i] filled, ok[i]
 * false) and must be skipped. Returns 0, or non-zero after writing a one-line
 * reason into fatal (a batch-level failure: the run stops with exit 2). */
typedef int (*cli_batch_fn)(void *ctx, const cli_item *items, size_t n, tp_buf *out, bool *ok,
                            char *fatal, size_t fatal_len);

typedef struct cli_run_stats {
    size_t items;
    size_t failed;
    double seconds;
} cli_run_stats;

/* Runs the whole input (positional texts, else --input/stdin lines) through fn
 * in chunks (see cli_common.chunk_items), writing to --output or stdout.
 * Returns the exit status (0/1/2) and fills stats when non-NULL. */
int cli_run(const char *cmd, const cli_common *common, cli_batch_fn fn, void *ctx,
            cli_run_stats *stats);

/* For subcommands that need a text per item: puts the texts of the items that
 * have one into texts[k] with which[k] = their position in items, and writes
 * the error line of items without a text. Returns k. */
size_t cli_collect_texts(const cli_item *items, size_t n, tp_buf *out, bool *ok, const char **texts,
                         size_t *which);

/* The texts of a chunk, gathered by cli_collect_texts into arrays of their
 * own, with a zeroed array for the pipeline's results. */
typedef struct cli_texts {
    const char **texts;
    size_t *which; /* texts[k] is the text of items[which[k]] */
    size_t n;
    void *results; /* room for one result (of the size given) per item */
} cli_texts;

/* Allocates t for n items with results of result_size bytes, and collects the
 * texts. false (t empty) after writing "out of memory" into fatal. Free with
 * cli_texts_free (the results' own contents are the caller's to free). */
bool cli_texts_collect(cli_texts *t, const cli_item *items, size_t n, size_t result_size,
                       tp_buf *out, bool *ok, char *fatal, size_t fatal_len);
void cli_texts_free(cli_texts *t);

/* Writes a batch-level failure's message into fatal; returns 1, a failing
 * cli_batch_fn's answer. */
int cli_batch_fail(char *fatal, size_t fatal_len, const char *message);

/* ---- progress bar (stderr, only when it is a terminal and not --quiet) ---- */

typedef struct cli_progress {
    bool on;
    double t0, last_draw;
    const char *what; /* "items" or a file name */
} cli_progress;

void cli_progress_init(cli_progress *p, bool quiet, const char *what);
/* done so far; total (0 = unknown) and fraction in [0,1] (< 0 = unknown) for the ETA. */
void cli_progress_update(cli_progress *p, double done, double total, double fraction,
                         const char *unit, bool force);
void cli_progress_finish(cli_progress *p);

/* Formats a duration as H:MM:SS or M:SS. */
void cli_format_duration(double s, char *out, size_t n);

/* ---- model resolution (hub ids and local folders) ---- */

/* Resolves --model to a local folder (downloading from the Hugging Face hub when
 * needed and allowed) with a download progress bar. `files` is a mask of
 * TP_RESOLVE_* bits. Returns a malloc'd path or NULL after printing the error
 * line. */
char *cli_resolve_model(const char *cmd, const cli_common *common, unsigned files);

/* Resolves --model (with `files`), loads it with the common options
 * (--threads, --precision, --max-batch-tokens) and checks that its task is
 * `want` ("model M is ...; cmd needs ..." otherwise). Prints the error line
 * and returns CLI_EXIT_FATAL (with *out NULL) on failure, else 0. */
int cli_load_model(const char *cmd, const cli_common *common, unsigned files, tp_model_task want,
                   tp_model **out);

/* The subcommands (cmd_<name>.c). */
extern const cli_command cli_commands[];
extern const size_t cli_n_commands;

#endif /* TPIPE_CLI_H */
