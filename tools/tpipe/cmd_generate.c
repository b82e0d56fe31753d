/*
 * cmd_generate.c — `tpipe generate --model M [--chat] ...`: text generation
 * with Qwen3 / Gemma3 checkpoints, all items of a chunk in one continuous-
 * batching call. Completion mode takes each text as a raw prompt; --chat takes
 * a JSON object with "messages" (plus "tools" and other template variables), or
 * a plain text as one user message. A JSON line may also carry its own
 * settings (max_new_tokens, temperature, top_k, top_p, min_p,
 * repetition_penalty, seed, stop), which override the command line for that
 * item. Result: {"text", "finish_reason", "prompt_tokens", "completion_tokens"}
 * plus "reasoning" and "content" when the text has a reasoning block.
 *
 * --stream writes text to stderr as it is generated (stdout keeps exactly one
 * JSON line per item): raw text when the run has one item, else one JSON line
 * {"index", "delta"} per piece.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

typedef struct gen_ctx {
    tp_model *model;
    bool chat;
    bool stream;
    bool stream_raw; /* one item in the whole run: raw text */
    tp_generate_params params;
    cli_strlist stops;     /* --stop (points into argv) */
    const cli_item *items; /* the chunk being run (for stream indices) */
    const size_t *which;
    size_t prompt_tokens, completion_tokens;
} gen_ctx;

static int on_stream(size_t item, const char *text, size_t len, void *user) {
    gen_ctx *c = user;
    if (c->stream_raw) {
        fwrite(text, 1, len, stderr);
    } else {
        tp_buf b = {0};
        tp_buf_printf(&b, "{\"index\": %zu, \"delta\": ", c->items[c->which[item]].index);
        cli_json_str(&b, text, len);
        tp_buf_puts(&b, "}\n");
        if (b.data)
            fputs(b.data, stderr);
        tp_buf_free(&b);
    }
    fflush(stderr);
    return 0;
}

static const char *finish_name(tp_finish_reason r) {
    switch (r) {
    case TP_FINISH_STOP:
        return "stop";
    case TP_FINISH_LENGTH:
        return "length";
    case TP_FINISH_CANCELLED:
        return "cancelled";
    default:
        return "none";
    }
}

static int gen_batch(void *vctx, const cli_item *items, size_t n, tp_buf *out, bool *ok,
                     char *fatal, size_t fatal_len) {
    gen_ctx *c = vctx;
    size_t *which = tp_malloc_array(n ? n : 1, sizeof *which);
    const char **prompts = tp_malloc_array(n ? n : 1, sizeof *prompts);
    tp_chat_conversation *convs = calloc(n ? n : 1, sizeof *convs);
    tp_chat_message *msgs = calloc(n ? n : 1, sizeof *msgs);
    tp_gen_options *opts = calloc(n ? n : 1, sizeof *opts);
    const char ***stops = calloc(n ? n : 1, sizeof *stops);
    tp_gen_result *res = calloc(n ? n : 1, sizeof *res);
    size_t k = 0;
    int rc = 0;
    if (!which || !prompts || !convs || !msgs || !opts || !stops || !res) {
        rc = cli_batch_fail(fatal, fatal_len, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const cli_item *it = &items[i];
        if (it->bad_input)
            continue;
        const cJSON *messages =
            it->obj ? cJSON_GetObjectItemCaseSensitive(it->obj, "messages") : NULL;
        if (c->chat && messages) {
            convs[k].json = it->line_;
        } else if (it->text) {
            prompts[k] = it->text;
            msgs[k].role = "user";
            msgs[k].content = it->text;
            convs[k].messages = &msgs[k];
            convs[k].n_messages = 1;
        } else {
            cli_item_err(&out[i], it,
                         c->chat ? "JSON object has no \"messages\" or \"text\" field"
                                 : "JSON object has no \"text\" field");
            continue;
        }
        const char *bad = cli_item_gen_options(it->obj, &opts[k], &stops[k]);
        if (bad) {
            cli_item_err(&out[i], it, bad);
            free((void *)stops[k]);
            stops[k] = NULL;
            continue;
        }
        which[k++] = i;
    }
    c->items = items;
    c->which = which;
    tp_generate_stats stats;
    memset(&stats, 0, sizeof stats);
    tp_error err;
    tp_status s =
        c->chat ? tp_chat_batch(c->model, convs, k, &c->params, opts, res, &stats, &err)
                : tp_completion_batch(c->model, prompts, k, &c->params, opts, res, &stats, &err);
    if (s != TP_OK) {
        rc = cli_batch_fail(fatal, fatal_len, err.message);
        goto done;
    }
    for (size_t j = 0; j < k; j++) {
        size_t i = which[j];
        const tp_gen_result *r = &res[j];
        tp_buf *b = &out[i];
        if (!cli_result_begin(b, &items[i], &r->error))
            continue;
        c->prompt_tokens += r->prompt_tokens;
        c->completion_tokens += r->completion_tokens;
        tp_buf_puts(b, "{\"text\": ");
        cli_json_cstr(b, r->text ? r->text : "");
        if (r->reasoning) {
            tp_buf_puts(b, ", \"reasoning\": ");
            cli_json_cstr(b, r->reasoning);
            tp_buf_puts(b, ", \"content\": ");
            cli_json_cstr(b, r->content ? r->content : "");
        }
        tp_buf_printf(b,
                      ", \"finish_reason\": \"%s\", \"prompt_tokens\": %zu, "
                      "\"completion_tokens\": %zu",
                      finish_name(r->finish_reason), r->prompt_tokens, r->completion_tokens);
        if (r->truncated)
            tp_buf_puts(b, ", \"truncated\": true");
        tp_buf_puts(b, "}");
        cli_result_end(b, &ok[i]);
    }
done:
    if (res)
        tp_gen_result_free_all(res, k);
    if (stops)
        for (size_t j = 0; j < k; j++)
            free((void *)stops[j]);
    free(stops);
    free(res);
    free(opts);
    free(msgs);
    free(convs);
    free((void *)prompts);
    free(which);
    return rc;
}

int cmd_generate(int argc, char **argv) {
    gen_ctx c;
    memset(&c, 0, sizeof c);
    long max_new = -1, top_k = -1, seed = -1;
    double temperature = -1, top_p = -1, min_p = -1, repeat = -1;
    bool no_think = false, truncate = false;
    const cli_opt opts[] = {
        {"--chat", CLI_FLAG, &c.chat, NULL,
         "items are conversations ({\"messages\": [...]}, or a text as one user message)", 0, 0,
         NULL},
        {"--max-new-tokens", CLI_INT, &max_new, "N",
         "tokens to generate at most (default: "
         "generation_config.json, else 256)",
         0, 1L << 30, NULL},
        {"--temperature", CLI_DOUBLE, &temperature, "T",
         "0 = greedy (default: "
         "generation_config.json)",
         0, 0, NULL},
        {"--top-k", CLI_INT, &top_k, "K", "sample among the K most likely tokens (0 = off)", 0,
         1L << 30, NULL},
        {"--top-p", CLI_DOUBLE, &top_p, "P", "nucleus sampling mass (1 = off)", 0, 0, NULL},
        {"--min-p", CLI_DOUBLE, &min_p, "P", "drop tokens below P x the top probability", 0, 0,
         NULL},
        {"--repeat-penalty", CLI_DOUBLE, &repeat, "R", "repetition penalty (1 = off)", 0, 0, NULL},
        {"--seed", CLI_INT, &seed, "S", "sampling seed (default 0)", 0, 1L << 62, NULL},
        {"--stop", CLI_STRINGS, &c.stops, "STRING",
         "stop when the text contains STRING "
         "(repeatable)",
         0, 0, NULL},
        {"--no-think", CLI_FLAG, &no_think, NULL,
         "pass enable_thinking=false to the chat template (Qwen3)", 0, 0, NULL},
        {"--stream", CLI_FLAG, &c.stream, NULL, "write the text to stderr as it is generated", 0, 0,
         NULL},
        {"--truncate-prompt", CLI_FLAG, &truncate, NULL,
         "drop the oldest prompt tokens when a prompt does not fit the context", 0, 0, NULL},
        CLI_OPT_END,
    };
    cli_common common;
    int rc = cli_parse(argc, argv,
                       "usage: tpipe generate --model M [--chat] [--max-new-tokens N] "
                       "[--temperature T]\n"
                       "                 [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty "
                       "R]\n"
                       "                 [--seed S] [--stop STRING]... [--no-think] [--stream] "
                       "[options] [texts...]\n\n"
                       "Generates text with a Qwen3 or Gemma3 model; all items of the input run\n"
                       "together with continuous batching (--batch-size sequences at a time).\n"
                       "Result per item: {\"text\", \"finish_reason\", \"prompt_tokens\", "
                       "\"completion_tokens\"}\n(plus \"reasoning\" and \"content\" when the "
                       "text has a <think> block).\nA JSON line may set its own max_new_tokens, "
                       "temperature, top_k, top_p, min_p,\nrepetition_penalty, seed and stop.",
                       opts, &common, true);
    if (rc) {
        free((void *)c.stops.items);
        return rc;
    }
    if (repeat == 0) {
        free((void *)c.stops.items);
        cli_common_free(&common);
        return cli_fatal(argv[0], "--repeat-penalty must be > 0");
    }
    if ((temperature != -1 && temperature < 0) || (top_p != -1 && (top_p < 0 || top_p > 1)) ||
        (min_p != -1 && (min_p < 0 || min_p > 1)) || (repeat != -1 && repeat < 0)) {
        free((void *)c.stops.items);
        cli_common_free(&common);
        return cli_fatal(argv[0], "sampling settings out of range (temperature >= 0, top-p and "
                                  "min-p in [0, 1], repeat-penalty > 0)");
    }
    c.params = tp_generate_default_params();
    tp_gen_options *o = &c.params.options;
    if (max_new >= 0)
        o->max_new_tokens = (int32_t)max_new;
    if (temperature >= 0)
        o->temperature = (float)temperature;
    if (top_k >= 0)
        o->top_k = (int32_t)top_k;
    if (top_p >= 0)
        o->top_p = (float)top_p;
    if (min_p >= 0)
        o->min_p = (float)min_p;
    if (repeat > 0)
        o->repetition_penalty = (float)repeat;
    if (seed >= 0)
        o->seed = seed;
    if (c.stops.n) {
        o->stop = c.stops.items;
        o->n_stop = c.stops.n;
    }
    if (no_think)
        c.params.enable_thinking = 0;
    c.params.truncate_prompt = truncate;
    if (common.batch_size > 0)
        c.params.max_batch = (int)common.batch_size;
    /* a chunk holds more items than run at once, so finished slots are refilled */
    size_t slots = common.batch_size > 0 ? (size_t)common.batch_size : 64;
    common.chunk_items = slots * 4 > CLI_DEFAULT_CHUNK ? slots * 4 : CLI_DEFAULT_CHUNK;
    if (c.stream) {
        c.params.stream = on_stream;
        c.params.stream_user = &c;
        c.stream_raw = common.texts.n == 1;
        common.quiet = true; /* the stream owns stderr */
    }
    rc = cli_load_model(argv[0], &common, TP_RESOLVE_ALL, TP_TASK_TEXT_GENERATION, &c.model);
    cli_run_stats rs;
    memset(&rs, 0, sizeof rs);
    if (!rc) {
        rc = cli_run(argv[0], &common, gen_batch, &c, &rs);
        if (c.stream_raw)
            fputc('\n', stderr);
    }
    if (rc != CLI_EXIT_FATAL && common.stats && rs.seconds > 0)
        fprintf(stderr,
                "tpipe generate: %zu prompt + %zu generated tokens (%.1f generated "
                "tokens/s)\n",
                c.prompt_tokens, c.completion_tokens, (double)c.completion_tokens / rs.seconds);
    tp_model_free(c.model);
    free((void *)c.stops.items);
    cli_common_free(&common);
    return rc;
}
