/*
 * text_generation.c — the text-generation pipeline (public API: the generate
 * section of tpipe.h): completion / chat, single and batched.
 *
 * Per call: resolve every item's settings (item > call > generation_config.json
 * > built-in), render chats with the model's chat template, tokenize, then hand
 * all items to the continuous-batching loop (src/batch/generate.h) in one run.
 * The loop reports each token through hooks, where this file turns ids into
 * text with the tokenizer's incremental decoder (whole UTF-8 only), looks for
 * stop strings across token boundaries, and streams the text that can no
 * longer become part of a stop string. The final text is exactly what was
 * streamed plus the held-back tail, so a stream always concatenates to it.
 */
#include "batch/generate.h"
#include "pipelines/enc_common.h" /* tp_batch_fail_all */
#include "pipelines/model_internal.h"
#include "io/gguf.h"
#include "template/template.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

_Static_assert(offsetof(tp_gen_result, error) == 0, "tp_batch_fail_all needs the error first");

#define DEFAULT_MAX_NEW_TOKENS 256
#define MAX_EOS 16

struct tp_textgen {
    /* generation_config.json, with transformers' GenerationConfig defaults */
    bool do_sample;
    float temperature;
    int32_t top_k;
    float top_p;
    float min_p;
    float repetition_penalty;
    int32_t max_new_tokens;
    int32_t eos[MAX_EOS]; /* eos_token_id of generation_config.json, else config.json */
    int n_eos;
    tp_chat_template *chat; /* NULL: none (chat_status says why) */
    tp_status chat_status;
    char chat_error[TP_ERROR_MESSAGE_MAX];
};

/* ---------------------------------------------------------------- model state */

static tp_status read_eos(const tp_json_doc *doc, const cJSON *v, int64_t vocab, int32_t *eos,
                          int *n, tp_error *err) {
    *n = 0;
    if (!v || cJSON_IsNull(v))
        return TP_OK;
    if (cJSON_IsNumber(v)) {
        if (v->valuedouble >= 0 && v->valuedouble < (double)vocab)
            eos[(*n)++] = (int32_t)v->valuedouble;
        return TP_OK;
    }
    if (!cJSON_IsArray(v))
        return tp_fail(err, TP_ERR_FORMAT, "%s: eos_token_id must be an integer or a list",
                       doc->path);
    const cJSON *x;
    cJSON_ArrayForEach(x, v) {
        if (!cJSON_IsNumber(x))
            return tp_fail(err, TP_ERR_FORMAT, "%s: eos_token_id holds a non-integer", doc->path);
        if (*n < MAX_EOS && x->valuedouble >= 0 && x->valuedouble < (double)vocab)
            eos[(*n)++] = (int32_t)x->valuedouble;
    }
    return TP_OK;
}

tp_status tp_textgen_init(tp_model *m, tp_error *err) {
    const tp_dec_hparams *hp = tp_decoder_hparams(m->net);
    if (!hp)
        return tp_fail(err, TP_ERR_INTERNAL, "text generation: not a decoder");
    struct tp_textgen *g = tp_calloc(1, sizeof *g);
    if (!g)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    m->gen = g;
    g->do_sample = false;
    g->temperature = 1.0f;
    g->top_k = 50;
    g->top_p = 1.0f;
    g->min_p = 0.0f;
    g->repetition_penalty = 1.0f;
    g->max_new_tokens = DEFAULT_MAX_NEW_TOKENS;
    for (int i = 0; i < hp->n_eos && i < MAX_EOS; i++)
        g->eos[g->n_eos++] = hp->eos_ids[i];

    /* A GGUF checkpoint is self-contained: no generation_config.json (its eos
     * ids come from the file's metadata, through hp). */
    char *path = m->gguf ? NULL : tp_path_join(m->dir, "generation_config.json");
    if (!path && !m->gguf)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    tp_json_doc doc = {0};
    tp_error e2;
    tp_status st = path ? tp_json_load(path, &doc, &e2) : TP_ERR_NOT_FOUND;
    tp_free(path);
    if (st == TP_OK) {
        const cJSON *r = doc.root;
        double t = 1.0, tp = 1.0, mp = 0.0, rp = 1.0;
        int64_t tk = 50, mnt = -1;
        if ((st = tp_json_bool(&doc, r, "do_sample", false, &g->do_sample, err)) ||
            (st = tp_json_double(&doc, r, "temperature", 1.0, &t, err)) ||
            (st = tp_json_int(&doc, r, "top_k", 50, &tk, err)) ||
            (st = tp_json_double(&doc, r, "top_p", 1.0, &tp, err)) ||
            (st = tp_json_double(&doc, r, "min_p", 0.0, &mp, err)) ||
            (st = tp_json_double(&doc, r, "repetition_penalty", 1.0, &rp, err)) ||
            (st = tp_json_int(&doc, r, "max_new_tokens", -1, &mnt, err))) {
            tp_json_free(&doc);
            return st;
        }
        if (!(t >= 0) || tk < 0 || !(tp > 0 && tp <= 1) || !(mp >= 0 && mp <= 1) || !(rp > 0)) {
            tp_json_free(&doc);
            return tp_fail(err, TP_ERR_FORMAT,
                           "%s/generation_config.json: temperature, top_k, top_p, min_p or "
                           "repetition_penalty out of range",
                           m->dir);
        }
        g->temperature = (float)t;
        g->top_k = tk > INT32_MAX ? INT32_MAX : (int32_t)tk;
        g->top_p = (float)tp;
        g->min_p = (float)mp;
        g->repetition_penalty = (float)rp;
        if (mnt > 0)
            g->max_new_tokens = mnt > INT32_MAX ? INT32_MAX : (int32_t)mnt;
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(r, "eos_token_id");
        if (e && !cJSON_IsNull(e)) {
            int32_t eos[MAX_EOS];
            int n = 0;
            if ((st = read_eos(&doc, e, hp->vocab, eos, &n, err))) {
                tp_json_free(&doc);
                return st;
            }
            memcpy(g->eos, eos, sizeof eos);
            g->n_eos = n;
        }
        tp_json_free(&doc);
    } else if (st != TP_ERR_NOT_FOUND) {
        if (err)
            *err = e2;
        return st;
    }

    /* The chat template: its absence or failure only matters to chat calls. */
    tp_error ce;
    g->chat_status = m->gguf && tp_gguf_find_kv(m->gguf, "tokenizer.chat_template")
                         ? tp_gguf_chat_template(m->gguf, &g->chat, &ce)
                         : tp_chat_template_load(m->dir, &g->chat, &ce);
    if (g->chat_status == TP_ERR_OUT_OF_MEMORY) { /* not a property of the model: fail the load */
        if (err)
            *err = ce;
        return TP_ERR_OUT_OF_MEMORY;
    }
    if (g->chat_status != TP_OK) {
        g->chat = NULL;
        snprintf(g->chat_error, sizeof g->chat_error, "%s", ce.message);
    }
    return TP_OK;
}

void tp_textgen_free(tp_model *m) {
    if (!m || !m->gen)
        return;
    tp_chat_template_free(m->gen->chat);
    tp_free(m->gen);
    m->gen = NULL;
}

/* ---------------------------------------------------------------- public helpers */

tp_gen_options tp_gen_options_unset(void) {
    tp_gen_options o;
    memset(&o, 0, sizeof o);
    o.max_new_tokens = -1;
    o.temperature = -1.0f;
    o.top_k = -1;
    o.top_p = -1.0f;
    o.min_p = -1.0f;
    o.repetition_penalty = 0.0f;
    o.repetition_window = -1;
    o.seed = -1;
    o.stop = NULL;
    o.n_stop = 0;
    o.stop_ids = NULL;
    o.n_stop_ids = 0;
    return o;
}

tp_generate_params tp_generate_default_params(void) {
    tp_generate_params p;
    memset(&p, 0, sizeof p);
    p.options = tp_gen_options_unset();
    p.enable_thinking = -1;
    p.truncate_prompt = false;
    p.kv_budget = 0;
    p.max_batch = 0;
    p.stream = NULL;
    p.stream_user = NULL;
    return p;
}

void tp_gen_result_free(tp_gen_result *r) {
    if (!r)
        return;
    tp_free(r->text);
    tp_free(r->reasoning);
    tp_free(r->content);
    tp_free(r->tokens);
    memset(r, 0, sizeof *r);
}

void tp_gen_result_free_all(tp_gen_result *r, size_t n) {
    for (size_t i = 0; r && i < n; i++)
        tp_gen_result_free(&r[i]);
}

/* ---------------------------------------------------------------- settings */

/* Checks the set fields of o; returns a message or NULL. */
static const char *options_invalid(const tp_gen_options *o) {
    /* NaN compares false with everything, so "< 0 = unset" would take it as
     * unset: reject it instead (HF raises on a non-float temperature). */
    if (isnan(o->temperature) || isnan(o->top_p) || isnan(o->min_p) || isnan(o->repetition_penalty))
        return "temperature, top_p, min_p and repetition_penalty must not be NaN";
    if (o->temperature >= 0 && !(o->temperature < 1e30f))
        return "temperature must be a finite number >= 0";
    if (o->top_p >= 0 && !(o->top_p > 0 && o->top_p <= 1))
        return "top_p must be in (0, 1]";
    if (o->min_p >= 0 && !(o->min_p <= 1))
        return "min_p must be in [0, 1]";
    if (o->repetition_penalty > 0 && !(o->repetition_penalty < 1e30f))
        return "repetition_penalty must be a finite number > 0";
    if (o->n_stop && !o->stop)
        return "n_stop > 0 but stop is NULL";
    for (size_t i = 0; o->stop && i < o->n_stop; i++)
        if (!o->stop[i] || !o->stop[i][0])
            return "a stop string is NULL or empty";
    if (o->n_stop_ids && !o->stop_ids)
        return "n_stop_ids > 0 but stop_ids is NULL";
    return NULL;
}

/* item > call > model default, field by field. */
static tp_gen_options merge(const tp_gen_options *item, const tp_gen_options *call) {
    tp_gen_options r = *call;
    if (!item)
        return r;
    if (item->max_new_tokens >= 0)
        r.max_new_tokens = item->max_new_tokens;
    if (item->temperature >= 0)
        r.temperature = item->temperature;
    if (item->top_k >= 0)
        r.top_k = item->top_k;
    if (item->top_p >= 0)
        r.top_p = item->top_p;
    if (item->min_p >= 0)
        r.min_p = item->min_p;
    if (item->repetition_penalty > 0)
        r.repetition_penalty = item->repetition_penalty;
    if (item->repetition_window >= 0)
        r.repetition_window = item->repetition_window;
    if (item->seed >= 0)
        r.seed = item->seed;
    if (item->stop) {
        r.stop = item->stop;
        r.n_stop = item->n_stop;
    }
    if (item->stop_ids) {
        r.stop_ids = item->stop_ids;
        r.n_stop_ids = item->n_stop_ids;
    }
    return r;
}

static tp_sampling resolve_sampling(const struct tp_textgen *g, const tp_gen_options *o) {
    tp_sampling s;
    s.temperature = o->temperature >= 0 ? o->temperature : (g->do_sample ? g->temperature : 0.0f);
    s.top_k = o->top_k >= 0 ? o->top_k : g->top_k;
    s.top_p = o->top_p >= 0 ? o->top_p : g->top_p;
    s.min_p = o->min_p >= 0 ? o->min_p : g->min_p;
    s.repetition_penalty =
        o->repetition_penalty > 0 ? o->repetition_penalty : g->repetition_penalty;
    s.repetition_window = o->repetition_window >= 0 ? o->repetition_window : 0;
    s.seed = o->seed >= 0 ? (uint64_t)o->seed : 0;
    return s;
}

/* ---------------------------------------------------------------- per-item run state */

typedef struct item_state {
    tp_tok_stream *stream; /* incremental decoder (special tokens skipped) */
    tp_buf text;           /* decoded text so far (cut at a stop string)   */
    size_t emitted;        /* bytes of text already streamed               */
    const char *const *stop;
    size_t n_stop;
    size_t max_stop_len;
    bool stopped; /* a stop string was found */
    bool cancelled;
    bool oom; /* decoding its text ran out of memory: the item fails */
} item_state;

typedef struct run_ctx {
    item_state *items;
    tp_gen_stream_fn stream;
    void *stream_user;
} run_ctx;

/* Bytes at the end of text that could be the start of a stop string. */
static size_t held_back(const item_state *st) {
    size_t len = st->text.len, hold = 0;
    for (size_t i = 0; i < st->n_stop; i++) {
        size_t sl = strlen(st->stop[i]);
        size_t k = sl - 1 < len ? sl - 1 : len;
        for (; k > hold; k--)
            if (!memcmp(st->text.data + len - k, st->stop[i], k))
                break;
        if (k > hold)
            hold = k;
    }
    return hold;
}

/* Streams text[emitted, upto); returns the callback's verdict. */
static int emit(run_ctx *c, size_t item, item_state *st, size_t upto) {
    if (upto <= st->emitted)
        return 0;
    int rc = 0;
    if (c->stream)
        rc = c->stream(item, st->text.data + st->emitted, upto - st->emitted, c->stream_user);
    st->emitted = upto;
    return rc;
}

static tp_gen_action on_token(void *user, size_t item, int32_t tok) {
    run_ctx *c = user;
    item_state *st = &c->items[item];
    size_t old = st->text.len;
    tp_error e;
    /* An id the tokenizer does not know (a padded vocabulary row) decodes to
     * nothing, as Hugging Face's decode skips it. */
    if (tp_tok_stream_step(st->stream, tok, &st->text, &e) == TP_ERR_OUT_OF_MEMORY ||
        st->text.oom) {
        st->oom = true;
        return TP_GEN_CANCEL;
    }
    if (st->n_stop && st->text.len > old) {
        size_t from = old >= st->max_stop_len ? old - st->max_stop_len + 1 : 0;
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < st->n_stop; i++) {
            const char *hit =
                memmem(st->text.data + from, st->text.len - from, st->stop[i], strlen(st->stop[i]));
            if (hit && (size_t)(hit - st->text.data) < best)
                best = (size_t)(hit - st->text.data);
        }
        if (best != SIZE_MAX) {
            st->text.len = best;
            st->text.data[best] = '\0';
            st->stopped = true;
            if (emit(c, item, st, best))
                st->cancelled = true;
            return TP_GEN_STOP;
        }
    }
    size_t safe = st->text.len - held_back(st);
    safe = st->emitted + tp_utf8_complete_prefix(st->text.data + st->emitted,
                                                 safe > st->emitted ? safe - st->emitted : 0);
    if (emit(c, item, st, safe)) {
        st->cancelled = true;
        return TP_GEN_CANCEL;
    }
    return TP_GEN_CONTINUE;
}

static void on_finish(void *user, size_t item, const tp_gen_output *out) {
    run_ctx *c = user;
    item_state *st = &c->items[item];
    if (out->finish == TP_GEN_FINISH_CANCELLED || st->cancelled) {
        /* The caller stopped listening: the text is what it received. */
        st->text.len = st->emitted;
        if (st->text.data)
            st->text.data[st->emitted] = '\0';
        return;
    }
    if (!st->stopped && !st->oom) {
        tp_error e;
        if (tp_tok_stream_flush(st->stream, &st->text, &e) == TP_ERR_OUT_OF_MEMORY)
            st->oom = true;
    }
    if (st->oom)
        return;
    (void)emit(c, item, st, st->text.len);
}

/* ---------------------------------------------------------------- results */

static char *trim_dup(const char *s, size_t n, bool left, bool right) {
    while (left && n && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (right && n && isspace((unsigned char)s[n - 1]))
        n--;
    return tp_strndup(s, n);
}

/* Splits a Qwen3-style "<think>...</think>answer" text. */
static bool split_reasoning(tp_gen_result *r) {
    const char *t = r->text;
    const char *end = strstr(t, "</think>");
    const char *open = strstr(t, "<think>");
    if (end) {
        const char *rs = open && open < end ? open + strlen("<think>") : t;
        r->reasoning = trim_dup(rs, (size_t)(end - rs), true, true);
        const char *cs = end + strlen("</think>");
        r->content = trim_dup(cs, strlen(cs), true, false);
    } else if (open) {
        /* Still thinking when generation stopped. */
        const char *rs = open + strlen("<think>");
        r->reasoning = trim_dup(rs, strlen(rs), true, true);
        r->content = tp_strdup("");
    } else {
        r->content = tp_strdup(t);
        return r->content != NULL;
    }
    return r->reasoning && r->content;
}

static void set_item_error(tp_gen_result *r, size_t i, tp_status st, const char *msg) {
    r->error.status = st;
    r->error.item = (long)i;
    size_t n = strlen(msg);
    if (n >= sizeof r->error.message)
        n = sizeof r->error.message - 1;
    memcpy(r->error.message, msg, n);
    r->error.message[n] = '\0';
}

/* ---------------------------------------------------------------- the run */

/* Builds {"messages": [...]} from plain messages. */
static char *messages_json(const tp_chat_message *msgs, size_t n, char *why, size_t why_len) {
    if (n && !msgs) {
        snprintf(why, why_len, "messages is NULL");
        return NULL;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = root ? cJSON_AddArrayToObject(root, "messages") : NULL;
    if (!arr) {
        cJSON_Delete(root);
        snprintf(why, why_len, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!msgs[i].role || !msgs[i].content) {
            cJSON_Delete(root);
            snprintf(why, why_len, "message %zu has no role or no content", i);
            return NULL;
        }
        cJSON *m = cJSON_CreateObject();
        if (!m || !cJSON_AddStringToObject(m, "role", msgs[i].role) ||
            !cJSON_AddStringToObject(m, "content", msgs[i].content)) {
            cJSON_Delete(m);
            cJSON_Delete(root);
            snprintf(why, why_len, "out of memory");
            return NULL;
        }
        cJSON_AddItemToArray(arr, m);
    }
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!s)
        snprintf(why, why_len, "out of memory");
    return s;
}

static tp_status run(tp_model *m, size_t n, const char *const *prompts,
                     const tp_chat_conversation *convs, const tp_generate_params *params_in,
                     const tp_gen_options *item_opts, tp_gen_result *out, tp_generate_stats *stats,
                     tp_error *err) {
    if (stats)
        memset(stats, 0, sizeof *stats);
    if (!m)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "generate: model is NULL");
    if (m->task != TP_TASK_TEXT_GENERATION || !m->gen)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT,
                       "generate: the model (%s) is not a text-generation model", m->dir);
    if (n == 0)
        return TP_OK;
    if (!out || (!prompts && !convs))
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "generate: NULL inputs or results");
    /* results are empty (freeable) whatever happens next, bad settings included */
    for (size_t i = 0; i < n; i++)
        memset(&out[i], 0, sizeof out[i]);
    tp_generate_params params = params_in ? *params_in : tp_generate_default_params();
    const char *bad = options_invalid(&params.options);
    if (bad)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "generate: %s", bad);
    if (params.enable_thinking < -1 || params.enable_thinking > 1 || params.max_batch < 0)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT,
                       "generate: enable_thinking must be -1, 0 or 1 and max_batch >= 0");

    const struct tp_textgen *g = m->gen;
    const int64_t ctx = m->net->max_positions;
    tp_status st = TP_OK;
    tp_gen_item *items = tp_calloc(n, sizeof *items);
    tp_gen_output *outs = tp_calloc(n, sizeof *outs);
    item_state *states = tp_calloc(n, sizeof *states);
    int32_t **ids = tp_calloc(n, sizeof *ids);
    int32_t **stops = tp_calloc(n, sizeof *stops);
    tp_tok_scratch *ts = tp_tok_scratch_create(m->tok);
    if (!items || !outs || !states || !ids || !stops || !ts) {
        st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "generate: out of memory for %zu items", n);
        goto done;
    }
    tp_tok_decode_params dp = tp_tok_decode_default_params();
    dp.skip_special_tokens = true;

    for (size_t i = 0; i < n; i++) {
        tp_gen_result *r = &out[i];
        r->error.item = -1;
        const tp_gen_options *io = item_opts ? &item_opts[i] : NULL;
        if (io && (bad = options_invalid(io))) {
            set_item_error(r, i, TP_ERR_INVALID_ARGUMENT, bad);
            continue;
        }
        tp_gen_options o = merge(io, &params.options);
        /* The text to run. */
        char *owned = NULL;
        const char *text = NULL;
        char why[256];
        tp_error e;
        if (prompts) {
            text = prompts[i];
            if (!text) {
                set_item_error(r, i, TP_ERR_INPUT, "prompt is NULL");
                continue;
            }
        } else {
            const tp_chat_conversation *cv = &convs[i];
            char *json =
                cv->json ? NULL : messages_json(cv->messages, cv->n_messages, why, sizeof why);
            if (!cv->json && !json) {
                set_item_error(r, i, TP_ERR_INPUT, why);
                continue;
            }
            if (!g->chat) {
                tp_free(json);
                char msg[TP_ERROR_MESSAGE_MAX + 64];
                snprintf(msg, sizeof msg, "chat template: %s", g->chat_error);
                set_item_error(
                    r, i, g->chat_status == TP_ERR_NOT_FOUND ? TP_ERR_NOT_FOUND : g->chat_status,
                    msg);
                continue;
            }
            tp_chat_template_params cp = tp_chat_template_default_params();
            cp.add_generation_prompt = true;
            cp.enable_thinking = params.enable_thinking;
            tp_status rs =
                tp_chat_template_render(g->chat, cv->json ? cv->json : json, &cp, &owned, &e);
            tp_free(json);
            if (rs != TP_OK) {
                set_item_error(r, i, rs, e.message);
                continue;
            }
            text = owned;
        }
        size_t tl = strlen(text), bad_at = tp_utf8_validate(text, tl);
        if (bad_at != tl) {
            snprintf(why, sizeof why, "the %s is not valid UTF-8 (byte %zu)",
                     prompts ? "prompt" : "rendered chat", bad_at);
            set_item_error(r, i, TP_ERR_INPUT, why);
            tp_free(owned);
            continue;
        }
        /* Completions get the tokenizer's special tokens (Gemma3's <bos>);
         * a rendered chat already holds them (as transformers does). */
        size_t n_ids = 0;
        tp_status es =
            tp_tok_encode_ids(m->tok, ts, text, tl, prompts != NULL, &ids[i], &n_ids, &e);
        tp_free(owned);
        if (es != TP_OK) {
            set_item_error(r, i, es, e.message);
            continue;
        }
        int32_t max_new = o.max_new_tokens >= 0 ? o.max_new_tokens : g->max_new_tokens;
        if (n_ids == 0) {
            set_item_error(r, i, TP_ERR_INPUT, "the prompt has no tokens");
            continue;
        }
        size_t first = 0;
        int64_t room = max_new > 0 ? max_new : 1;
        if (params.truncate_prompt && (int64_t)n_ids + room > ctx) {
            /* Keep the newest tokens: as many as leave room for max_new_tokens. */
            int64_t keep = ctx - room;
            if (keep < 1)
                keep = 1;
            if ((int64_t)n_ids > keep) {
                first = n_ids - (size_t)keep;
                r->truncated = true;
            }
        } else if ((int64_t)n_ids >= ctx) {
            snprintf(why, sizeof why,
                     "the prompt has %zu tokens; the model's context is %lld (set "
                     "truncate_prompt to drop the oldest tokens)",
                     n_ids, (long long)ctx);
            set_item_error(r, i, TP_ERR_TOO_LONG, why);
            continue;
        }
        /* Otherwise a prompt that fits but leaves less room than max_new_tokens
         * stops at the end of the context (finish_reason length). */
        /* Stop ids: EOS of the model plus the extra ones. */
        size_t ns = (size_t)g->n_eos + o.n_stop_ids;
        stops[i] = tp_malloc_array(ns ? ns : 1, sizeof(int32_t));
        if (!stops[i]) {
            set_item_error(r, i, TP_ERR_OUT_OF_MEMORY, "out of memory");
            continue;
        }
        memcpy(stops[i], g->eos, (size_t)g->n_eos * sizeof(int32_t));
        if (o.n_stop_ids)
            memcpy(stops[i] + g->n_eos, o.stop_ids, o.n_stop_ids * sizeof(int32_t));
        item_state *s = &states[i];
        s->stream = tp_tok_stream_create(m->tok, &dp);
        if (!s->stream) {
            set_item_error(r, i, TP_ERR_OUT_OF_MEMORY, "out of memory");
            continue;
        }
        s->stop = o.stop;
        s->n_stop = o.n_stop;
        for (size_t k = 0; k < o.n_stop; k++)
            if (strlen(o.stop[k]) > s->max_stop_len)
                s->max_stop_len = strlen(o.stop[k]);
        items[i].prompt = ids[i] + first;
        items[i].n_prompt = (int)(n_ids - first);
        items[i].max_new_tokens = max_new;
        items[i].sampling = resolve_sampling(g, &o);
        items[i].stop_ids = stops[i];
        items[i].n_stop_ids = (int)ns;
        r->prompt_tokens = n_ids - first;
    }

    /* Items that already failed are handed to the loop with no prompt; the loop
     * marks them failed too and we keep our own (more precise) message. */
    run_ctx rc = {.items = states, .stream = params.stream, .stream_user = params.stream_user};
    tp_gen_hooks hooks = {.on_token = on_token, .on_finish = on_finish, .user = &rc};
    tp_gen_config cfg = {.kv_budget_bytes = params.kv_budget, .max_seqs = params.max_batch};
    tp_gen_run_stats rs;
    cfg.pool = tp_model_lock(m);
    st = tp_generate_run(m->net, &cfg, items, n, &hooks, outs, &rs, err);
    tp_model_unlock(m);
    if (st != TP_OK)
        goto done;

    size_t prompt_total = 0, completion_total = 0;
    for (size_t i = 0; i < n; i++) {
        tp_gen_result *r = &out[i];
        if (r->error.status != TP_OK)
            continue;
        const tp_gen_output *o = &outs[i];
        if (o->status != TP_OK) {
            r->error = o->err;
            r->error.item = (long)i;
            continue;
        }
        item_state *s = &states[i];
        if (s->oom) {
            set_item_error(r, i, TP_ERR_OUT_OF_MEMORY, "out of memory decoding the text");
            continue;
        }
        r->text = tp_buf_take(&s->text);
        r->completion_tokens = (size_t)o->n_tokens;
        r->tokens = tp_malloc_array((size_t)o->n_tokens, sizeof(int32_t));
        if (!r->text || !r->tokens || !split_reasoning(r)) {
            tp_gen_result_free(r);
            set_item_error(r, i, TP_ERR_OUT_OF_MEMORY, "out of memory for the result");
            continue;
        }
        if (o->n_tokens)
            memcpy(r->tokens, o->tokens, (size_t)o->n_tokens * sizeof(int32_t));
        r->finish_reason = o->finish == TP_GEN_FINISH_STOP        ? TP_FINISH_STOP
                           : o->finish == TP_GEN_FINISH_LENGTH    ? TP_FINISH_LENGTH
                           : o->finish == TP_GEN_FINISH_CANCELLED ? TP_FINISH_CANCELLED
                                                                  : TP_FINISH_NONE;
        prompt_total += r->prompt_tokens;
        completion_total += r->completion_tokens;
    }
    if (stats) {
        stats->total_s = rs.wall_s;
        stats->time_to_first_token_s = rs.first_token_s;
        stats->prefill_tokens_per_s =
            rs.prefill_s > 0 ? (double)rs.prefill_tokens / rs.prefill_s : 0.0;
        stats->decode_tokens_per_s = rs.decode_s > 0 ? (double)rs.decode_tokens / rs.decode_s : 0.0;
        stats->prompt_tokens = prompt_total;
        stats->completion_tokens = completion_total;
        stats->kv_peak_bytes = rs.kv_peak_bytes;
    }
done:
    for (size_t i = 0; i < n; i++) {
        if (states) {
            tp_tok_stream_free(states[i].stream);
            tp_buf_free(&states[i].text);
        }
        if (outs)
            tp_gen_output_free(&outs[i]);
        if (ids)
            tp_free(ids[i]);
        if (stops)
            tp_free(stops[i]);
    }
    if (st != TP_OK) {
        tp_gen_result_free_all(out, n);
        tp_batch_fail_all(out, n, sizeof *out, st, err);
    }
    tp_tok_scratch_free(ts);
    tp_free(items);
    tp_free(outs);
    tp_free(states);
    tp_free(ids);
    tp_free(stops);
    return st;
}

/* A single call returns the item's own status. */
static tp_status single(tp_status st, tp_gen_result *out, tp_error *err) {
    if (st != TP_OK)
        return st;
    if (out->error.status != TP_OK) {
        if (err) {
            *err = out->error;
            err->item = -1;
        }
        return out->error.status;
    }
    return TP_OK;
}

tp_status tp_completion(tp_model *model, const char *prompt, const tp_generate_params *params,
                        tp_gen_result *out, tp_generate_stats *stats, tp_error *err) {
    if (!out)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_completion: out is NULL");
    memset(out, 0, sizeof *out); /* empty after any error, as tpipe.h promises */
    if (!prompt) {
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_completion: prompt is NULL");
    }
    tp_status st = run(model, 1, &prompt, NULL, params, NULL, out, stats, err);
    return single(st, out, err);
}

tp_status tp_completion_batch(tp_model *model, const char *const *prompts, size_t n,
                              const tp_generate_params *params, const tp_gen_options *item_options,
                              tp_gen_result *out, tp_generate_stats *stats, tp_error *err) {
    if (n && !prompts)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_completion_batch: prompts is NULL");
    return run(model, n, prompts, NULL, params, item_options, out, stats, err);
}

tp_status tp_chat(tp_model *model, const tp_chat_message *messages, size_t n_messages,
                  const tp_generate_params *params, tp_gen_result *out, tp_generate_stats *stats,
                  tp_error *err) {
    if (!out)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_chat: out is NULL");
    memset(out, 0, sizeof *out);
    tp_chat_conversation c = {.messages = messages, .n_messages = n_messages, .json = NULL};
    tp_status st = run(model, 1, NULL, &c, params, NULL, out, stats, err);
    return single(st, out, err);
}

tp_status tp_chat_batch(tp_model *model, const tp_chat_conversation *conversations, size_t n,
                        const tp_generate_params *params, const tp_gen_options *item_options,
                        tp_gen_result *out, tp_generate_stats *stats, tp_error *err) {
    if (n && !conversations)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_chat_batch: conversations is NULL");
    return run(model, n, NULL, conversations, params, item_options, out, stats, err);
}
