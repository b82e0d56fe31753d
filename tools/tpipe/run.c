/*
 * run.c — the streaming driver of tpipe: read → batch → write.
 *
 * Three threads overlap: a reader turns input lines into chunks of items, the
 * main thread runs a chunk through the subcommand, and a writer writes the
 * lines of the previous chunk (two sets of output buffers, used in turn). The
 * queue from the reader holds at most one finished chunk, so at most three
 * chunks of input exist at once (being read, queued, being processed) and two
 * of output: memory is bounded by the chunk size, not by the input size. Lines
 * are written in input order because chunks are processed and handed to the
 * writer in order, and each chunk answers every item.
 */
#include "cli.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct chunk {
    cli_item *items;
    size_t n;
    bool eof;         /* last chunk (may hold items) */
    char error[256];  /* read error: batch-level */
    uint64_t end_pos; /* input bytes consumed up to the end of this chunk */
} chunk;

typedef struct reader {
    FILE *in;
    size_t chunk_items;
    size_t next_index, line_no;
    uint64_t pos;
    /* queue of one */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    chunk *slot;
    bool stop;     /* consumer gave up: reader must exit */
    bool finished; /* the reader thread has returned */
} reader;

static void chunk_free(chunk *c) {
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        cli_item_free(&c->items[i]);
    free(c->items);
    free(c);
}

/* Reads up to chunk_items lines (or CLI_CHUNK_BYTES of them). */
static chunk *read_chunk(reader *r) {
    chunk *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->items = tp_malloc_array(r->chunk_items, sizeof *c->items);
    if (!c->items) {
        free(c);
        return NULL;
    }
    size_t bytes = 0;
    while (c->n < r->chunk_items && bytes < CLI_CHUNK_BYTES) {
        char *line = NULL;
        size_t cap = 0;
        errno = 0;
        ssize_t got = getline(&line, &cap, r->in);
        if (got < 0) {
            free(line);
            if (ferror(r->in))
                snprintf(c->error, sizeof c->error, "reading the input: %s",
                         strerror(errno ? errno : EIO));
            c->eof = true;
            break;
        }
        r->pos += (uint64_t)got;
        r->line_no++;
        size_t len = cli_line_len(line, (size_t)got);
        line[len] = '\0';
        cli_item *it = &c->items[c->n++];
        cli_item_from_line(it, line, len);
        it->index = r->next_index++;
        it->line_no = r->line_no;
        bytes += len;
    }
    c->end_pos = r->pos;
    return c;
}

static void reader_loop(reader *r) {
    for (;;) {
        chunk *c = read_chunk(r);
        pthread_mutex_lock(&r->mu);
        while (r->slot && !r->stop)
            pthread_cond_wait(&r->cv, &r->mu);
        if (r->stop) {
            pthread_mutex_unlock(&r->mu);
            chunk_free(c);
            return;
        }
        if (!c) { /* out of memory: hand over an error chunk made without allocation */
            static chunk oom = {NULL, 0, true, "out of memory reading the input", 0};
            r->slot = &oom;
        } else {
            r->slot = c;
        }
        bool last = !c || c->eof;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        if (last)
            return;
    }
}

static void *reader_main(void *arg) {
    reader *r = arg;
    reader_loop(r);
    pthread_mutex_lock(&r->mu);
    r->finished = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* Stops the reader. After a batch-level failure it may be blocked reading a
 * slow pipe: then it is left behind (detached, its state and the input file
 * kept) rather than holding up the exit; returns false in that case. */
static bool reader_stop(reader *rd, pthread_t th) {
    pthread_mutex_lock(&rd->mu);
    rd->stop = true;
    pthread_cond_broadcast(&rd->cv);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += 200 * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (!rd->finished)
        if (pthread_cond_timedwait(&rd->cv, &rd->mu, &until) != 0)
            break;
    bool finished = rd->finished;
    pthread_mutex_unlock(&rd->mu);
    if (!finished) {
        pthread_detach(th);
        return false;
    }
    pthread_join(th, NULL);
    if (rd->slot && rd->slot->items)
        chunk_free(rd->slot);
    pthread_mutex_destroy(&rd->mu);
    pthread_cond_destroy(&rd->cv);
    free(rd);
    return true;
}

static chunk *take_chunk(reader *r) {
    pthread_mutex_lock(&r->mu);
    while (!r->slot)
        pthread_cond_wait(&r->cv, &r->mu);
    chunk *c = r->slot;
    r->slot = NULL;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return c;
}

/* The writer thread: writes one handed-off set of lines at a time. */
typedef struct writer {
    FILE *out;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    tp_buf *set; /* lines being written; NULL when idle */
    size_t n;
    bool stop;
    int err; /* errno of the first failed write, else 0 */
} writer;

static void *writer_main(void *arg) {
    writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->set && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        if (!w->set)
            break;
        tp_buf *set = w->set;
        size_t n = w->n;
        bool failed = w->err != 0;
        pthread_mutex_unlock(&w->mu);
        int e = 0;
        for (size_t i = 0; i < n && !e && !failed; i++)
            if (fwrite(set[i].data, 1, set[i].len, w->out) != set[i].len)
                e = errno ? errno : EIO;
        /* the lines of a chunk leave at once (a consumer downstream sees them now) */
        if (!e && !failed && fflush(w->out) != 0)
            e = errno ? errno : EIO;
        pthread_mutex_lock(&w->mu);
        if (e && !w->err)
            w->err = e;
        w->set = NULL;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Waits until the writer is idle; returns its error (0: none). */
static int writer_wait(writer *w) {
    pthread_mutex_lock(&w->mu);
    while (w->set)
        pthread_cond_wait(&w->cv, &w->mu);
    int e = w->err;
    pthread_mutex_unlock(&w->mu);
    return e;
}

static void writer_give(writer *w, tp_buf *set, size_t n) {
    pthread_mutex_lock(&w->mu);
    w->set = set;
    w->n = n;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

typedef struct runner {
    const char *cmd;
    cli_batch_fn fn;
    void *ctx;
    FILE *out;
    writer *w;
    tp_buf *bufs[2]; /* two sets of output lines, filled and written in turn */
    int cur;         /* the set the next chunk fills */
    bool *ok;
    size_t cap;
    size_t done, failed;
    cli_progress progress;
    double total_items; /* 0 = unknown */
    uint64_t total_bytes;
} runner;

/* Runs one chunk and hands its lines to the writer; returns 0 or CLI_EXIT_FATAL. */
static int run_items(runner *R, const cli_item *items, size_t n) {
    if (n == 0)
        return 0;
    tp_buf *bufs = R->bufs[R->cur];
    for (size_t i = 0; i < n; i++) {
        bufs[i].len = 0;
        if (bufs[i].data)
            bufs[i].data[0] = '\0';
        bufs[i].oom = false;
        R->ok[i] = false;
        if (items[i].bad_input)
            cli_item_err(&bufs[i], &items[i], items[i].bad_input);
    }
    char fatal[512] = "";
    if (R->fn(R->ctx, items, n, bufs, R->ok, fatal, sizeof fatal))
        return cli_fatal(R->cmd, "%s", fatal[0] ? fatal : "batch failed");
    for (size_t i = 0; i < n; i++) {
        if (bufs[i].oom)
            return cli_fatal(R->cmd, "out of memory writing the result of item %zu",
                             items[i].index);
        if (bufs[i].len == 0)
            return cli_fatal(R->cmd, "internal error: no result for item %zu", items[i].index);
        if (!R->ok[i])
            R->failed++;
    }
    /* the writer is done with the previous chunk's set before it takes this one */
    int e = writer_wait(R->w);
    if (e)
        return cli_fatal(R->cmd, "writing the output: %s", strerror(e));
    writer_give(R->w, bufs, n);
    R->cur ^= 1;
    R->done += n;
    return 0;
}

static void show_progress(runner *R, double fraction, bool force) {
    cli_progress_update(&R->progress, (double)R->done, R->total_items, fraction, "items", force);
}

int cli_run(const char *cmd, const cli_common *common, cli_batch_fn fn, void *ctx,
            cli_run_stats *stats) {
    runner R;
    memset(&R, 0, sizeof R);
    R.cmd = cmd;
    R.fn = fn;
    R.ctx = ctx;
    /* --batch-size bounds the items of one batch call, so no forward holds more */
    size_t chunk_items = common->chunk_items      ? common->chunk_items
                         : common->batch_size > 0 ? (size_t)common->batch_size
                                                  : CLI_DEFAULT_CHUNK;
    /* someone typing lines gets each answer at once */
    if (!common->texts.n && (!common->input || !strcmp(common->input, "-")) && isatty(STDIN_FILENO))
        chunk_items = 1;
    R.cap = chunk_items;
    R.bufs[0] = calloc(chunk_items, sizeof *R.bufs[0]);
    R.bufs[1] = calloc(chunk_items, sizeof *R.bufs[1]);
    R.ok = calloc(chunk_items, sizeof *R.ok);
    if (!R.bufs[0] || !R.bufs[1] || !R.ok) {
        free(R.bufs[0]);
        free(R.bufs[1]);
        free(R.ok);
        return cli_fatal(cmd, "out of memory");
    }
    int rc = 0;
    FILE *in = NULL;
    bool close_out = false, writer_started = false;
    writer W;
    memset(&W, 0, sizeof W);
    pthread_mutex_init(&W.mu, NULL);
    pthread_cond_init(&W.cv, NULL);
    pthread_t writer_th;
    R.w = &W;
    R.out = stdout;
    if (common->output && strcmp(common->output, "-")) {
        R.out = fopen(common->output, "wb");
        if (!R.out) {
            rc = cli_fatal(cmd, "cannot open --output %s: %s", common->output, strerror(errno));
            goto done;
        }
        close_out = true;
    }
    W.out = R.out;
    if (pthread_create(&writer_th, NULL, writer_main, &W) != 0) {
        rc = cli_fatal(cmd, "cannot start the writer thread");
        goto done;
    }
    writer_started = true;
    cli_progress_init(&R.progress, common->quiet, "items");
    double t0 = tp_now();

    if (common->texts.n) {
        R.total_items = (double)common->texts.n;
        cli_item *items = tp_malloc_array(chunk_items, sizeof *items);
        if (!items) {
            rc = cli_fatal(cmd, "out of memory");
            goto done;
        }
        for (size_t s = 0; s < common->texts.n && !rc; s += chunk_items) {
            size_t n = common->texts.n - s < chunk_items ? common->texts.n - s : chunk_items;
            for (size_t i = 0; i < n; i++) {
                cli_item_from_text(&items[i], common->texts.items[s + i]);
                items[i].index = s + i;
            }
            rc = run_items(&R, items, n);
            show_progress(&R, -1, false);
        }
        free(items);
    } else {
        if (common->input && strcmp(common->input, "-")) {
            in = fopen(common->input, "rb");
            if (!in) {
                rc = cli_fatal(cmd, "cannot open --input %s: %s", common->input, strerror(errno));
                goto done;
            }
        } else {
            in = stdin;
        }
        struct stat st;
        if (fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode))
            R.total_bytes = (uint64_t)st.st_size;
        reader *rd = calloc(1, sizeof *rd);
        if (!rd) {
            rc = cli_fatal(cmd, "out of memory");
            goto done;
        }
        rd->in = in;
        rd->chunk_items = chunk_items;
        pthread_mutex_init(&rd->mu, NULL);
        pthread_cond_init(&rd->cv, NULL);
        pthread_t th;
        if (pthread_create(&th, NULL, reader_main, rd) != 0) {
            rc = cli_fatal(cmd, "cannot start the reader thread");
            pthread_mutex_destroy(&rd->mu);
            pthread_cond_destroy(&rd->cv);
            free(rd);
        } else {
            for (;;) {
                chunk *c = take_chunk(rd);
                bool last = c->eof;
                if (c->error[0]) {
                    rc = cli_fatal(cmd, "%s", c->error);
                } else {
                    rc = run_items(&R, c->items, c->n);
                    double frac = R.total_bytes ? (double)c->end_pos / (double)R.total_bytes : -1;
                    show_progress(&R, frac, false);
                }
                if (c->items) /* the static out-of-memory chunk has none and is not freed */
                    chunk_free(c);
                if (rc || last)
                    break;
            }
            if (!reader_stop(rd, th))
                in = NULL; /* still in use by the reader left behind: not closed */
        }
    }
    /* the last chunk's lines, then the writer stops */
    int werr = writer_wait(&W);
    if (!rc && werr)
        rc = cli_fatal(cmd, "writing the output: %s", strerror(werr));
    pthread_mutex_lock(&W.mu);
    W.stop = true;
    pthread_cond_broadcast(&W.cv);
    pthread_mutex_unlock(&W.mu);
    pthread_join(writer_th, NULL);
    writer_started = false;
    if (!rc && fflush(R.out) != 0)
        rc = cli_fatal(cmd, "writing the output: %s", strerror(errno));
    if (!rc)
        show_progress(&R, 1.0, true);
    cli_progress_finish(&R.progress);
    if (common->stats && rc != CLI_EXIT_FATAL) {
        double sec = tp_now() - t0;
        fprintf(stderr, "tpipe %s: %zu items (%zu failed) in %.3f s, %.1f items/s\n", cmd, R.done,
                R.failed, sec, sec > 0 ? (double)R.done / sec : 0.0);
    }
    if (stats) {
        stats->items = R.done;
        stats->failed = R.failed;
        stats->seconds = tp_now() - t0;
    }
    if (!rc)
        rc = R.failed ? CLI_EXIT_ITEMS : CLI_EXIT_OK;
done:
    if (writer_started) { /* a failure before the end: let the writer finish and stop */
        writer_wait(&W);
        pthread_mutex_lock(&W.mu);
        W.stop = true;
        pthread_cond_broadcast(&W.cv);
        pthread_mutex_unlock(&W.mu);
        pthread_join(writer_th, NULL);
    }
    pthread_mutex_destroy(&W.mu);
    pthread_cond_destroy(&W.cv);
    if (in && in != stdin)
        fclose(in);
    if (close_out && fclose(R.out) != 0 && rc != CLI_EXIT_FATAL)
        rc = cli_fatal(cmd, "closing --output %s: %s", common->output, strerror(errno));
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < R.cap; i++)
            tp_buf_free(&R.bufs[k][i]);
        free(R.bufs[k]);
    }
    free(R.ok);
    return rc;
}

size_t cli_collect_texts(const cli_item *items, size_t n, tp_buf *out, bool *ok, const char **texts,
                         size_t *which) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (items[i].bad_input)
            continue;
        if (!items[i].text) {
            cli_item_err(&out[i], &items[i], "JSON object has no \"text\" field");
            ok[i] = false;
            continue;
        }
        texts[k] = items[i].text;
        which[k++] = i;
    }
    return k;
}

bool cli_texts_collect(cli_texts *t, const cli_item *items, size_t n, size_t result_size,
                       tp_buf *out, bool *ok, char *fatal, size_t fatal_len) {
    t->texts = tp_malloc_array(n, sizeof *t->texts);
    t->which = tp_malloc_array(n, sizeof *t->which);
    t->results = calloc(n ? n : 1, result_size);
    t->n = 0;
    if (!t->texts || !t->which || !t->results) {
        cli_texts_free(t);
        cli_batch_fail(fatal, fatal_len, "out of memory");
        return false;
    }
    t->n = cli_collect_texts(items, n, out, ok, t->texts, t->which);
    return true;
}

void cli_texts_free(cli_texts *t) {
    free((void *)t->texts);
    free(t->which);
    free(t->results);
    t->texts = NULL;
    t->which = NULL;
    t->results = NULL;
    t->n = 0;
}

int cli_batch_fail(char *fatal, size_t fatal_len, const char *message) {
    snprintf(fatal, fatal_len, "%s", message);
    return 1;
}
