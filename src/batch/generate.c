/*
 * generate.c — continuous-batching generation loop (see generate.h).
 *
 * State: up to max_seqs slots; each holds one live item: its KV tables, the
 * history (prompt + generated ids, what repetition penalty reads), how much of
 * the prompt is already fed, its RNG and a logits row. A step packs, for every
 * slot, either its last token (decoding) or the next chunk of its prompt
 * (prefilling), runs one forward, then samples for the slots whose logits are
 * ready. Everything is sized before the first step (the arena for the largest
 * step, the KV pool for the budget): no allocation happens per step except a
 * new item's tables and token buffer when it is admitted.
 */
#include "batch/generate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_SEQS 64
#define DEFAULT_STEP_TOKENS 512
#define DEFAULT_BLOCK 16
#define MIN_PREFILL_CHUNK 16

typedef struct slot {
    bool used;
    size_t item;
    tp_kv_seq kv;
    int32_t *hist; /* (n_prompt + max_new) prompt then generated ids */
    int n_hist;
    int n_prompt;
    int fed;     /* prompt tokens already in the cache */
    int max_new; /* after the context cap */
    tp_rng rng;
    float *logits; /* (V) */
} slot;

size_t tp_gen_default_kv_budget(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    size_t kib = 0;
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f)) {
            unsigned long long v;
            if (sscanf(line, "MemAvailable: %llu kB", &v) == 1) {
                kib = (size_t)v;
                break;
            }
        }
        fclose(f);
    }
    if (kib == 0)
        return (size_t)1 << 30;
    size_t b = kib / 2 * 1024;
    return b < ((size_t)64 << 20) ? ((size_t)64 << 20) : b;
}

void tp_gen_output_free(tp_gen_output *o) {
    if (!o)
        return;
    tp_free(o->tokens);
    o->tokens = NULL;
    o->n_tokens = 0;
}

static void item_fail(tp_gen_output *o, size_t i, tp_status st, const char *msg) {
    o->status = st;
    o->err.status = st;
    o->err.item = (long)i;
    int k = snprintf(o->err.message, sizeof o->err.message, "item %zu: ", i);
    if (k < 0 || (size_t)k >= sizeof o->err.message)
        k = 0;
    size_t room = sizeof o->err.message - (size_t)k, len = strlen(msg);
    if (len >= room)
        len = room - 1;
    memcpy(o->err.message + k, msg, len);
    o->err.message[k + (int)len] = '\0';
}

static void slot_release(tp_kv_cache *kv, slot *s) {
    tp_kv_seq_release(kv, &s->kv);
    tp_free(s->hist);
    s->hist = NULL;
    s->used = false;
}

static void finish_item(tp_kv_cache *kv, slot *s, tp_gen_output *o, tp_gen_finish why,
                        const tp_gen_hooks *hooks) {
    o->finish = why;
    o->status = TP_OK;
    if (hooks && hooks->on_finish)
        hooks->on_finish(hooks->user, s->item, o);
    slot_release(kv, s);
}

tp_status tp_generate_run(const tp_net *net, const tp_gen_config *cfg_in, const tp_gen_item *items,
                          size_t n, const tp_gen_hooks *hooks, tp_gen_output *outs,
                          tp_gen_run_stats *stats, tp_error *err) {
    double t0 = tp_now();
    if (stats)
        memset(stats, 0, sizeof *stats);
    const tp_dec_hparams *hp = tp_decoder_hparams(net);
    if (!hp || !net->dec)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "generate: the model is not a text decoder");
    if (n == 0)
        return TP_OK;
    if (!items || !outs)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "generate: NULL items or outputs");
    tp_gen_config cfg = cfg_in ? *cfg_in : (tp_gen_config){0};
    if (cfg.max_seqs <= 0)
        cfg.max_seqs = DEFAULT_MAX_SEQS;
    if (cfg.max_step_tokens <= 0)
        cfg.max_step_tokens = DEFAULT_STEP_TOKENS;
    if (cfg.block_size <= 0)
        cfg.block_size = DEFAULT_BLOCK;
    if (cfg.kv_budget_bytes == 0)
        cfg.kv_budget_bytes = tp_gen_default_kv_budget();
    const size_t V = (size_t)hp->vocab;
    const int ctx = hp->max_pos > INT32_MAX ? INT32_MAX : (int)hp->max_pos;
    const int chunk_max = cfg.max_step_tokens + MIN_PREFILL_CHUNK;

    /* Validate the items and size the KV pool: the budget, or less when the
     * whole batch needs less. */
    size_t block_bytes = tp_kv_block_bytes(net, cfg.block_size);
    if (block_bytes == 0)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "generate: bad KV block size");
    size_t budget_blocks = cfg.kv_budget_bytes / block_bytes;
    size_t *need = tp_calloc(n, sizeof *need);
    if (!need)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "generate: out of memory");
    size_t total_need = 0, biggest = 0;
    for (size_t i = 0; i < n; i++) {
        tp_gen_output *o = &outs[i];
        memset(o, 0, sizeof *o);
        o->err.item = -1;
        const tp_gen_item *it = &items[i];
        char msg[256];
        if (!it->prompt || it->n_prompt <= 0) {
            item_fail(o, i, TP_ERR_INPUT, "the prompt has no tokens");
            continue;
        }
        if (it->n_prompt >= ctx) {
            snprintf(msg, sizeof msg,
                     "the prompt has %d tokens; the model's context is %d tokens (leave room for "
                     "at least one new token, or ask for truncation)",
                     it->n_prompt, ctx);
            item_fail(o, i, TP_ERR_TOO_LONG, msg);
            continue;
        }
        if (it->max_new_tokens < 0 || it->n_stop_ids < 0 || (it->n_stop_ids && !it->stop_ids)) {
            item_fail(o, i, TP_ERR_INVALID_ARGUMENT, "max_new_tokens or stop ids are invalid");
            continue;
        }
        bool bad = false;
        for (int j = 0; j < it->n_prompt; j++)
            if (it->prompt[j] < 0 || (size_t)it->prompt[j] >= V) {
                snprintf(msg, sizeof msg, "prompt token %d (id %d) is outside the vocabulary (%zu)",
                         j, (int)it->prompt[j], V);
                item_fail(o, i, TP_ERR_INPUT, msg);
                bad = true;
                break;
            }
        if (bad)
            continue;
        int max_new = it->max_new_tokens;
        if (max_new > ctx - it->n_prompt)
            max_new = ctx - it->n_prompt;
        int max_len = it->n_prompt + (max_new > 0 ? max_new : 1);
        int chunk = it->n_prompt < chunk_max ? it->n_prompt : chunk_max;
        need[i] = tp_kv_blocks_needed(net, cfg.block_size, max_len, chunk);
        if (need[i] > budget_blocks) {
            snprintf(msg, sizeof msg,
                     "needs %zu MiB of KV cache (%d prompt + %d new tokens) but the KV budget is "
                     "%zu MiB",
                     (need[i] * block_bytes + (1u << 20) - 1) >> 20, it->n_prompt, max_new,
                     cfg.kv_budget_bytes >> 20);
            item_fail(o, i, TP_ERR_OUT_OF_MEMORY, msg);
            need[i] = 0;
            continue;
        }
        total_need += need[i];
        if (need[i] > biggest)
            biggest = need[i];
    }
    size_t pool_blocks = total_need < budget_blocks ? total_need : budget_blocks;
    if (pool_blocks == 0)
        pool_blocks = 1;

    tp_status st = TP_OK;
    tp_kv_cache *kv = NULL;
    slot *slots = NULL;
    tp_dec_seq *step = NULL;
    size_t *step_slot = NULL;
    float *logits = NULL;
    tp_arena arena = {0};
    tp_sampler_scratch samp = {0};
    size_t S = (size_t)cfg.max_seqs;
    if (S > n)
        S = n;
    size_t T_max = (size_t)cfg.max_step_tokens + MIN_PREFILL_CHUNK + S;
    if ((st = tp_kv_cache_create(net, cfg.block_size, pool_blocks, &kv, err)))
        goto done;
    slots = tp_calloc(S, sizeof *slots);
    step = tp_calloc(S, sizeof *step);
    step_slot = tp_calloc(S, sizeof *step_slot);
    logits = tp_aligned_alloc(S, V * sizeof(float));
    if (!slots || !step || !step_slot || !logits) {
        st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "generate: out of memory for %zu slots", S);
        goto done;
    }
    for (size_t i = 0; i < S; i++)
        slots[i].logits = logits + i * V;
    size_t arena_bytes = net->dec->scratch_bytes(net, T_max, S, S);
    if (arena_bytes == 0) {
        st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "generate: scratch size overflows");
        goto done;
    }
    if ((st = tp_arena_init(&arena, arena_bytes, err)) ||
        (st = tp_sampler_scratch_init(&samp, V, err)))
        goto done;
    if (stats)
        stats->kv_pool_bytes = pool_blocks * block_bytes;

    size_t next = 0, n_live = 0;
    bool first_token_seen = false;
    for (;;) {
        /* Admit waiting items in order while a slot and their blocks are free. */
        while (n_live < S && next < n) {
            size_t i = next;
            const tp_gen_item *it = &items[i];
            tp_gen_output *o = &outs[i];
            if (o->status != TP_OK) { /* failed validation */
                next++;
                continue;
            }
            int max_new = it->max_new_tokens;
            if (max_new > ctx - it->n_prompt)
                max_new = ctx - it->n_prompt;
            if (max_new == 0) {
                o->finish = TP_GEN_FINISH_LENGTH;
                if (hooks && hooks->on_finish)
                    hooks->on_finish(hooks->user, i, o);
                next++;
                continue;
            }
            if (need[i] > tp_kv_available(kv))
                break; /* wait for running items to hand blocks back */
            size_t si = 0;
            while (slots[si].used)
                si++;
            slot *s = &slots[si];
            tp_error e2;
            tp_status ist = tp_kv_seq_init(kv, &s->kv, it->n_prompt + max_new, need[i], &e2);
            s->hist = tp_malloc_array((size_t)it->n_prompt + (size_t)max_new, sizeof(int32_t));
            o->tokens = tp_malloc_array((size_t)max_new, sizeof(int32_t));
            if (ist != TP_OK || !s->hist || !o->tokens) {
                if (ist == TP_OK)
                    tp_kv_seq_release(kv, &s->kv);
                tp_free(s->hist);
                s->hist = NULL;
                tp_free(o->tokens);
                o->tokens = NULL;
                item_fail(o, i, TP_ERR_OUT_OF_MEMORY, "out of memory starting the item");
                next++;
                continue;
            }
            memcpy(s->hist, it->prompt, (size_t)it->n_prompt * sizeof(int32_t));
            s->used = true;
            s->item = i;
            s->n_hist = it->n_prompt;
            s->n_prompt = it->n_prompt;
            s->fed = 0;
            s->max_new = max_new;
            tp_rng_seed(&s->rng, it->sampling.seed);
            n_live++;
            next++;
        }
        if (n_live == 0) {
            if (next >= n)
                break;
            /* Cannot happen: an item that fits the pool alone fits an empty pool. */
            st = tp_fail(err, TP_ERR_INTERNAL, "generate: item %zu cannot be admitted", next);
            goto done;
        }

        /* Build one packed step: decoders first feed one token each, then the
         * prefilling prompts share what is left of the token budget. */
        size_t ns = 0;
        int n_dec = 0;
        for (size_t si = 0; si < S; si++)
            if (slots[si].used && slots[si].fed == slots[si].n_prompt)
                n_dec++;
        int prefill_left = cfg.max_step_tokens - n_dec;
        if (prefill_left < MIN_PREFILL_CHUNK)
            prefill_left = MIN_PREFILL_CHUNK;
        size_t prefill_tokens = 0;
        for (size_t si = 0; si < S; si++) {
            slot *s = &slots[si];
            if (!s->used)
                continue;
            tp_dec_seq *q = &step[ns];
            if (s->fed == s->n_prompt) {
                q->ids = &s->hist[s->n_hist - 1];
                q->n_new = 1;
                q->logits = s->logits;
            } else {
                int take = s->n_prompt - s->fed;
                if (take > prefill_left)
                    take = prefill_left;
                if (take <= 0)
                    continue;
                prefill_left -= take;
                prefill_tokens += (size_t)take;
                q->ids = &s->hist[s->fed];
                q->n_new = take;
                q->logits = s->fed + take == s->n_prompt ? s->logits : NULL;
            }
            q->pos0 = s->kv.len;
            tp_error e2;
            if (tp_kv_seq_grow(kv, &s->kv, q->pos0 + q->n_new, &e2) != TP_OK) {
                st = tp_fail(err, TP_ERR_INTERNAL, "generate: %s", e2.message);
                goto done;
            }
            q->k_blocks = s->kv.k;
            q->v_blocks = s->kv.v;
            q->max_blocks = s->kv.max_blocks;
            q->block_size = cfg.block_size;
            step_slot[ns++] = si;
        }
        double ts = tp_now();
        tp_error fe;
        tp_status fst = net->dec->forward(net, step, ns, &arena, cfg.pool, &fe);
        double dt = tp_now() - ts;
        if (stats) {
            stats->steps++;
            if ((int)ns > stats->max_live)
                stats->max_live = (int)ns;
            if (prefill_tokens) {
                stats->prefill_s += dt;
                stats->prefill_tokens += prefill_tokens;
            } else {
                stats->decode_s += dt;
                stats->decode_tokens += ns;
            }
        }
        if (fst != TP_OK) {
            /* Not expected for validated inputs; fail the items of this step. */
            for (size_t k = 0; k < ns; k++) {
                slot *s = &slots[step_slot[k]];
                item_fail(&outs[s->item], s->item, fst, fe.message);
                tp_gen_output_free(&outs[s->item]);
                slot_release(kv, s);
                n_live--;
            }
            continue;
        }
        for (size_t k = 0; k < ns; k++) {
            slot *s = &slots[step_slot[k]];
            const tp_dec_seq *q = &step[k];
            tp_kv_seq_advance(kv, &s->kv, q->pos0 + q->n_new);
            if (s->fed < s->n_prompt)
                s->fed += q->n_new;
            if (!q->logits)
                continue;
            const tp_gen_item *it = &items[s->item];
            tp_gen_output *o = &outs[s->item];
            int32_t tok =
                tp_sample(s->logits, V, &it->sampling, s->hist, (size_t)s->n_hist, &s->rng, &samp);
            s->hist[s->n_hist++] = tok;
            o->tokens[o->n_tokens++] = tok;
            if (stats) {
                stats->generated_tokens++;
                if (!first_token_seen) {
                    first_token_seen = true;
                    stats->first_token_s = tp_now() - t0;
                }
            }
            tp_gen_action act = TP_GEN_CONTINUE;
            if (hooks && hooks->on_token)
                act = hooks->on_token(hooks->user, s->item, tok);
            bool is_stop = false;
            for (int j = 0; j < it->n_stop_ids; j++)
                if (it->stop_ids[j] == tok)
                    is_stop = true;
            tp_gen_finish why = TP_GEN_FINISH_NONE;
            if (is_stop || act == TP_GEN_STOP)
                why = TP_GEN_FINISH_STOP;
            else if (act == TP_GEN_CANCEL)
                why = TP_GEN_FINISH_CANCELLED;
            else if (o->n_tokens >= s->max_new)
                why = TP_GEN_FINISH_LENGTH;
            if (why != TP_GEN_FINISH_NONE) {
                finish_item(kv, s, o, why, hooks);
                n_live--;
            }
        }
    }
    if (stats)
        stats->kv_peak_bytes = tp_kv_peak_blocks(kv) * block_bytes;
done:
    if (slots) {
        for (size_t si = 0; si < S; si++)
            if (slots[si].used) {
                tp_gen_output_free(&outs[slots[si].item]);
                slot_release(kv, &slots[si]);
            }
    }
    if (st != TP_OK) {
        /* A batch-level failure: no item keeps a partial result. */
        for (size_t i = 0; i < n; i++)
            tp_gen_output_free(&outs[i]);
    }
    tp_free(slots);
    tp_free(step);
    tp_free(step_slot);
    tp_aligned_free(logits);
    tp_arena_free(&arena);
    tp_sampler_scratch_free(&samp);
    tp_kv_cache_free(kv);
    tp_free(need);
    if (stats)
        stats->wall_s = tp_now() - t0;
    return st;
}
