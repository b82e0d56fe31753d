/*
 * bench_tokenizer — tokens/s of batch encoding and tokenizer.json load time
 * for the Qwen3, ModernBERT and Gemma 3 tokenizers.
 *
 *   bench_tokenizer [--seconds S] [--threads N] [--model qwen3|modernbert|gemma3]
 *                   [--load-only]
 *
 * Load times: tokenizer.json (tp_tok_load), and the same tokenizer built from
 * its GGUF description (tp_tok_load_gguf_desc on the tp_tok_gguf_export
 * result, as a .gguf file's tokenizer.ggml.* keys give it), with merges and,
 * for a "llama" description, without them (merges derived from the scores).
 * --load-only skips the encoding figures. Tokenizers come from $TPIPE_SHARED
 * (else ../shared)/tokenizers/<model>, else tests/data/tokenizers/<model>.
 *
 * Texts: "english" = English prose: the Apache-2.0 licence text (in
 * tests/data/tokenizers/LICENSES) plus, when present, Debian's
 * /usr/share/common-licenses/GPL-3 (46 KB, ~2,000 distinct words);
 * "multilingual" = every line of the tokenizer corpus (the golden files' "text":
 * CJK, Arabic, Indic, emoji, code, long runs, ...). Each is cut into ~2 KB
 * documents and repeated to 4 MB, so the per-scratch word cache sees a small
 * vocabulary: the "nocache" rows show the uncached BPE.
 * Each figure is the best of a few runs of a whole batch (add_special_tokens
 * true), single thread (no pool) and all threads (tp_pool).
 * Prints a table and `BENCH tokenizer.<model>.<text>.<threads> <value> tok/s`
 * (wall clock), plus `... .cpu <value> tok/cpu-s`: tokens per second of process
 * CPU time, which stays meaningful when other processes share the cores.
 */
#include "tokenizer/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct docs {
    char **d;
    size_t n;
    size_t bytes;
} docs;

/* english: prose files; multilingual: golden.jsonl text fields (cJSON drops
 * the one line with a NUL: fine here) */
static docs make_docs(const char *golden, bool english, size_t total) {
    docs D = {0};
    char *data = NULL;
    size_t len = 0;
    tp_error err;
    tp_buf all = {0};
    if (english) {
        const char *files[] = {TP_TESTDATA_DIR "/tokenizers/LICENSES/Apache-2.0.txt",
                               "/usr/share/common-licenses/GPL-3"};
        for (int f = 0; f < 2; f++) {
            if (tp_read_file(files[f], &data, &len, &err) == TP_OK)
                tp_buf_append(&all, data, len);
            free(data);
            data = NULL;
        }
    } else {
        if (tp_read_file(golden, &data, &len, &err))
            return D;
        char *save = NULL;
        for (char *l = strtok_r(data, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
            cJSON *o = cJSON_Parse(l);
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "text");
            if (cJSON_IsString(t) && strlen(t->valuestring) > 0) {
                tp_buf_puts(&all, t->valuestring);
                tp_buf_puts(&all, "\n");
            }
            cJSON_Delete(o);
        }
        free(data);
    }
    if (!all.len)
        return D;
    size_t cap = total / 2048 + 2;
    D.d = calloc(cap, sizeof *D.d);
    size_t pos = 0;
    while (D.bytes < total && D.n < cap) {
        tp_buf doc = {0};
        while (doc.len < 2048) {
            size_t take = all.len - pos < 2048 - doc.len ? all.len - pos : 2048 - doc.len;
            /* cut at a space/newline so words stay whole */
            size_t cut = take;
            while (cut > 0 && pos + cut < all.len && all.data[pos + cut] != ' ' &&
                   all.data[pos + cut] != '\n')
                cut--;
            if (cut == 0)
                cut = take;
            cut = tp_utf8_complete_prefix(all.data + pos, cut);
            if (cut == 0)
                cut = take;
            tp_buf_append(&doc, all.data + pos, cut);
            pos += cut;
            if (pos >= all.len)
                pos = 0;
        }
        D.bytes += doc.len;
        D.d[D.n++] = tp_buf_take(&doc);
    }
    tp_buf_free(&all);
    return D;
}

static void free_docs(docs *D) {
    for (size_t i = 0; i < D->n; i++)
        free(D->d[i]);
    free(D->d);
}

/* best tokens/s over runs within ~seconds; *ntok = tokens per batch; *cpu_tps
 * = tokens per second of process CPU time (all threads), best run */
static double run(const tp_tokenizer *tok, tp_pool *pool, const docs *D, bool cache, double seconds,
                  size_t *ntok, double *cpu_tps) {
    tp_tok_encode_params p = tp_tok_encode_default_params();
    p.word_cache = cache;
    tp_encoding *out = calloc(D->n, sizeof *out);
    double best = 0, t_end = tp_now() + seconds;
    int runs = 0;
    while (runs < 2 || (tp_now() < t_end && runs < 20)) {
        tp_error err;
        double t0 = tp_now();
        clock_t c0 = clock();
        if (tp_tok_encode_batch(tok, pool, (const char *const *)D->d, NULL, D->n, &p, out, &err)) {
            fprintf(stderr, "encode failed: %s\n", err.message);
            break;
        }
        double dt = tp_now() - t0;
        double dc = (double)(clock() - c0) / CLOCKS_PER_SEC;
        size_t n = 0;
        for (size_t i = 0; i < D->n; i++) {
            n += out[i].n;
            tp_encoding_free(&out[i]);
        }
        *ntok = n;
        if (n / dt > best)
            best = (double)n / dt;
        if (dc > 0 && n / dc > *cpu_tps)
            *cpu_tps = (double)n / dc;
        runs++;
    }
    free(out);
    return best;
}

/* best-of-3 wall and CPU seconds of building the tokenizer from d */
static void time_desc(const tp_tok_gguf_desc *d, double *wall, double *cpu) {
    *wall = *cpu = 1e9;
    for (int r = 0; r < 3; r++) {
        tp_error err;
        tp_tokenizer *t = NULL;
        double t0 = tp_now();
        clock_t c0 = clock();
        if (tp_tok_load_gguf_desc(d, &t, &err)) {
            fprintf(stderr, "%s\n", err.message);
            *wall = *cpu = -1;
            return;
        }
        double dt = tp_now() - t0, dc = (double)(clock() - c0) / CLOCKS_PER_SEC;
        tp_tok_free(t);
        if (dt < *wall)
            *wall = dt;
        if (dc < *cpu)
            *cpu = dc;
    }
}

/* load time from the GGUF description of tok (tokenizer.ggml.* keys) */
static void bench_gguf_load(const tp_tokenizer *tok, const char *model) {
    tp_error err;
    tp_tok_gguf_desc *d = NULL;
    if (tp_tok_gguf_export_tok(tok, NULL, &d, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return;
    }
    double w, c;
    time_desc(d, &w, &c);
    printf("%-11s load from GGUF metadata (with merges) %.3f s wall, %.3f s CPU\n", model, w, c);
    printf("BENCH tokenizer.%s.load_gguf %.4f s\n", model, w);
    printf("BENCH tokenizer.%s.load_gguf_cpu %.4f s\n", model, c);
    if (d->scores) {
        tp_tok_gguf_desc nm = *d;
        nm.merges = NULL;
        nm.n_merges = 0;
        time_desc(&nm, &w, &c);
        printf("%-11s load from GGUF metadata (merges from scores) %.3f s wall, %.3f s CPU\n",
               model, w, c);
        printf("BENCH tokenizer.%s.load_gguf_scores %.4f s\n", model, w);
        printf("BENCH tokenizer.%s.load_gguf_scores_cpu %.4f s\n", model, c);
    }
    tp_tok_gguf_desc_free(d);
}

int main(int argc, char **argv) {
    double seconds = 2.0;
    int threads = tp_num_cores();
    const char *only = NULL;
    bool load_only = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--model") == 0 && i + 1 < argc)
            only = argv[++i];
        else if (strcmp(argv[i], "--load-only") == 0)
            load_only = true;
    }
    const char *models[] = {"qwen3", "modernbert", "gemma3"};
    tp_error err;
    tp_pool *pool = tp_pool_create(threads, &err);
    printf("bench_tokenizer: %d threads (%d cores)\n", tp_pool_size(pool), tp_num_cores());
    printf("%-11s %-13s %-9s %12s %8s %14s %9s\n", "model", "text", "threads", "tok/s", "MB/s",
           "tok/CPU-s", "tokens");
    for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) {
        if (only && strcmp(only, models[m]) != 0)
            continue;
        char dir[4096], golden[4096];
        const char *shared = getenv("TPIPE_SHARED"); /* else ../shared of the source tree */
        snprintf(dir, sizeof dir, "%s/tokenizers/%s", shared ? shared : TP_SHARED_DIR, models[m]);
        char probe[4200];
        snprintf(probe, sizeof probe, "%s/tokenizer.json", dir);
        if (!tp_file_exists(probe))
            snprintf(dir, sizeof dir, "%s/tokenizers/%s", TP_TESTDATA_DIR, models[m]);
        snprintf(probe, sizeof probe, "%s/tokenizer.json", dir);
        if (!tp_file_exists(probe)) {
            printf("SKIP: %s: no tokenizer.json\n", models[m]);
            continue;
        }
        snprintf(golden, sizeof golden, "%s/tokenizers/%s/golden.jsonl", TP_TESTDATA_DIR,
                 models[m]);
        /* load time: best of 3 */
        double best_load = 1e9, best_cpu = 1e9;
        tp_tokenizer *tok = NULL;
        for (int r = 0; r < 3; r++) {
            double t0 = tp_now();
            clock_t c0 = clock();
            tp_tokenizer *t = NULL;
            if (tp_tok_load(dir, &t, &err)) {
                fprintf(stderr, "%s\n", err.message);
                break;
            }
            double dt = tp_now() - t0;
            double dc = (double)(clock() - c0) / CLOCKS_PER_SEC;
            if (dt < best_load)
                best_load = dt;
            if (dc < best_cpu)
                best_cpu = dc;
            tp_tok_free(tok);
            tok = t;
        }
        if (!tok)
            continue;
        /* wall time suffers when other processes share the cores: CPU time too */
        printf("%-11s load %.3f s wall, %.3f s CPU\n", models[m], best_load, best_cpu);
        printf("BENCH tokenizer.%s.load %.4f s\n", models[m], best_load);
        printf("BENCH tokenizer.%s.load_cpu %.4f s\n", models[m], best_cpu);
        bench_gguf_load(tok, models[m]);
        if (load_only) {
            tp_tok_free(tok);
            continue;
        }
        const char *texts[] = {"english", "multilingual"};
        for (int t = 0; t < 2; t++) {
            docs D = make_docs(golden, t == 0, 4u << 20);
            if (!D.n) {
                printf("SKIP: %s: no texts\n", golden);
                continue;
            }
            struct {
                const char *name;
                tp_pool *pool;
                bool cache;
            } cfg[] = {{"1", NULL, true}, {"all", pool, true}, {"1.nocache", NULL, false}};
            for (int c = 0; c < 3; c++) {
                size_t ntok = 0;
                double cpu = 0;
                double tps = run(tok, cfg[c].pool, &D, cfg[c].cache, seconds, &ntok, &cpu);
                double mbs = tps / (double)ntok * (double)D.bytes / 1e6;
                printf("%-11s %-13s %-9s %12.0f %8.1f %14.0f %9zu\n", models[m], texts[t],
                       cfg[c].name, tps, mbs, cpu, ntok);
                printf("BENCH tokenizer.%s.%s.%s %.0f tok/s\n", models[m], texts[t], cfg[c].name,
                       tps);
                printf("BENCH tokenizer.%s.%s.%s.cpu %.0f tok/cpu-s\n", models[m], texts[t],
                       cfg[c].name, cpu);
            }
            free_docs(&D);
        }
        tp_tok_free(tok);
    }
    tp_pool_destroy(pool);
    return 0;
}
