/*
 * test_text_generation.c — the public text-generation API on small random
 * Qwen3 models written by build/tp_mkmodel with the real Qwen3 tokenizer
 * (../shared/tokenizers/qwen3; the test skips without it).
 *
 *   - completion_batch (batches of 1, 3, 16; mixed prompts, max_new_tokens,
 *     greedy and seeded sampling per item; 2 slots too) equals single calls
 *     token for token and text for text;
 *   - partial failure in the middle of a batch (empty prompt, invalid UTF-8,
 *     prompt past the context, bad per-item option); truncate_prompt;
 *   - empty batch;
 *   - stop strings spanning a token boundary cut the text and stop;
 *   - streaming pieces are whole UTF-8 and concatenate to the final text;
 *     cancelling one item leaves the others as they were;
 *   - chat with the model's template (enable_thinking off), chat_batch errors;
 *   - generation_config.json defaults (sampling) and per-call overrides;
 *   - a batch whose KV cache is far larger than the budget completes with the
 *     same results and bounded peak RSS.
 */
#include "core/core.h" /* tp_buf, UTF-8 checks (test helpers only) */
#include "tpipe.h"
#include "test_util.h"

#include <stdint.h>
#include <unistd.h>

static char g_tmp[256];

static int mkmodel(const char *out, const char *extra) {
    const char *build = getenv("TPIPE_BUILD");
    const char *tok = tp_test_shared_or_data("tokenizers/qwen3");
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "'%s/tp_mkmodel' --family qwen3 --hidden 64 --layers 2 --heads 4 --intermediate 128 "
             "--max-positions 160 --dtype bf16 --seed 1 --quiet --tokenizer-dir '%s' --out '%s' "
             "%s",
             build ? build : ".", tok, out, extra);
    return system(cmd);
}

static long vm_hwm_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    long v = -1;
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

static const char *kPrompts[16] = {
    "Hello",
    "The quick brown fox jumps over the lazy dog.",
    "Once upon a time",
    "def main():\n    return 0",
    "héllo wörld, ça va?",
    "你好，世界",
    "a",
    "1 2 3 4 5 6 7 8 9 10 11 12",
    "Write a poem about the sea and the sky and the stars at night.",
    "Q: What is 2+2?\nA:",
    "emoji 😀 test",
    "The capital of France is",
    "List: apples, pears, plums,",
    "  leading spaces",
    "Tabs\tand\nnewlines",
    "Last prompt of the batch.",
};

static tp_gen_options item_opts(size_t i) {
    tp_gen_options o = tp_gen_options_unset();
    o.max_new_tokens = 1 + (int32_t)((i * 7) % 20);
    if (i % 2) {
        o.temperature = 0.8f;
        o.top_k = 50;
        o.top_p = 0.9f;
        o.seed = 100 + (int64_t)i;
    } else {
        o.temperature = 0;
    }
    if (i % 5 == 0) {
        o.repetition_penalty = 1.3f;
        o.repetition_window = 8;
    }
    return o;
}

static int same_result(const tp_gen_result *a, const tp_gen_result *b) {
    return a->error.status == b->error.status && a->finish_reason == b->finish_reason &&
           a->completion_tokens == b->completion_tokens && a->prompt_tokens == b->prompt_tokens &&
           (!a->completion_tokens ||
            !memcmp(a->tokens, b->tokens, a->completion_tokens * sizeof(int32_t))) &&
           ((!a->text && !b->text) || (a->text && b->text && !strcmp(a->text, b->text)));
}

static void test_batch_equals_single(tp_model *m) {
    tp_gen_result single[16];
    tp_generate_params p = tp_generate_default_params();
    for (size_t i = 0; i < 16; i++) {
        p.options = item_opts(i);
        tp_error err;
        tp_status st = tp_completion(m, kPrompts[i], &p, &single[i], NULL, &err);
        CHECK_MSG(st == TP_OK, "single %zu: %s", i, err.message);
        CHECK(single[i].completion_tokens >= 1 &&
              single[i].completion_tokens <= (size_t)item_opts(i).max_new_tokens);
        CHECK(single[i].text && single[i].content && !single[i].reasoning);
    }
    tp_gen_options opts[16];
    for (size_t i = 0; i < 16; i++)
        opts[i] = item_opts(i);
    size_t sizes[3] = {1, 3, 16};
    for (int mb = 0; mb < 2; mb++) {
        for (size_t si = 0; si < 3; si++) {
            tp_gen_result out[16];
            tp_generate_params bp = tp_generate_default_params();
            bp.max_batch = mb ? 2 : 0;
            tp_generate_stats stats;
            tp_error err;
            size_t n = sizes[si];
            /* batches of 3 start at item 4 (mixed lengths, sampled and greedy) */
            size_t first = n == 3 ? 4 : 0;
            CHECK(tp_completion_batch(m, kPrompts + first, n, &bp, opts + first, out, &stats,
                                      &err) == TP_OK);
            for (size_t i = 0; i < n; i++)
                CHECK_MSG(same_result(&out[i], &single[first + i]),
                          "batch of %zu (max_batch %d): item %zu differs from the single call", n,
                          bp.max_batch, first + i);
            if (n == 16) {
                CHECK(stats.completion_tokens > 16 && stats.prompt_tokens > 16);
                CHECK(stats.time_to_first_token_s > 0 &&
                      stats.total_s >= stats.time_to_first_token_s);
                CHECK(stats.prefill_tokens_per_s > 0 && stats.decode_tokens_per_s > 0);
            }
            tp_gen_result_free_all(out, n);
        }
    }
    tp_gen_result_free_all(single, 16);
}

static void test_partial_failure(tp_model *m) {
    char longp[4096] = "";
    for (int i = 0; i < 200; i++)
        strcat(longp, " word");
    const char *prompts[6] = {"Good one", "", "bad \xff\xfe utf8", longp, "Good two", "x"};
    tp_gen_options o[6];
    for (int i = 0; i < 6; i++) {
        o[i] = tp_gen_options_unset();
        o[i].max_new_tokens = 5;
        o[i].temperature = 0;
    }
    o[5].top_p = 2.0f; /* invalid */
    tp_gen_result out[6];
    tp_error err;
    CHECK(tp_completion_batch(m, prompts, 6, NULL, o, out, NULL, &err) == TP_OK);
    CHECK_EQ_INT(out[0].error.status, TP_OK);
    CHECK_EQ_INT(out[1].error.status, TP_ERR_INPUT);
    CHECK_EQ_INT(out[2].error.status, TP_ERR_INPUT);
    CHECK_EQ_INT(out[3].error.status, TP_ERR_TOO_LONG);
    CHECK_EQ_INT(out[4].error.status, TP_OK);
    CHECK_EQ_INT(out[5].error.status, TP_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(out[3].error.item, 3);
    CHECK_MSG(strstr(out[3].error.message, "context"), "%s", out[3].error.message);
    CHECK_MSG(strstr(out[2].error.message, "UTF-8"), "%s", out[2].error.message);
    CHECK(!out[1].text && !out[3].text);
    tp_generate_params p = tp_generate_default_params();
    for (int i = 0; i < 5; i += 4) {
        tp_gen_result r;
        p.options = o[i];
        CHECK(tp_completion(m, prompts[i], &p, &r, NULL, &err) == TP_OK);
        CHECK_MSG(same_result(&r, &out[i]), "good item %d changed by bad neighbours", i);
        tp_gen_result_free(&r);
    }
    /* max_new_tokens 0: nothing generated, finish length. */
    {
        tp_gen_result z;
        p.options = o[0];
        p.options.max_new_tokens = 0;
        CHECK(tp_completion(m, prompts[0], &p, &z, NULL, &err) == TP_OK);
        CHECK(z.completion_tokens == 0 && z.text && !z.text[0] &&
              z.finish_reason == TP_FINISH_LENGTH);
        tp_gen_result_free(&z);
    }
    /* A single call returns the item's error. */
    tp_gen_result r;
    p.options = o[3];
    CHECK(tp_completion(m, longp, &p, &r, NULL, &err) == TP_ERR_TOO_LONG);
    CHECK(strstr(err.message, "context") != NULL);
    tp_gen_result_free(&r);
    /* ... unless truncation is asked for: the newest tokens stay. */
    p.truncate_prompt = true;
    CHECK(tp_completion(m, longp, &p, &r, NULL, &err) == TP_OK);
    CHECK(r.truncated && r.prompt_tokens == 160 - 5 && r.completion_tokens == 5);
    tp_gen_result_free(&r);
    tp_gen_result_free_all(out, 6);
    /* Empty batch. */
    CHECK(tp_completion_batch(m, NULL, 0, NULL, NULL, NULL, NULL, &err) == TP_OK);
    CHECK(tp_chat_batch(m, NULL, 0, NULL, NULL, NULL, NULL, &err) == TP_OK);
    /* Bad call-level settings fail the call. */
    p = tp_generate_default_params();
    p.options.top_p = 1.5f;
    CHECK(tp_completion_batch(m, prompts, 1, &p, NULL, out, NULL, &err) == TP_ERR_INVALID_ARGUMENT);
}

typedef struct stream_log {
    tp_buf text[8];
    int pieces[8];
    int bad_utf8;
    long cancel_item; /* cancel this item after its first non-empty piece */
} stream_log;

static int on_stream(size_t item, const char *text, size_t len, void *user) {
    stream_log *l = user;
    if (item >= 8)
        return 0;
    if (tp_utf8_validate(text, len) != len)
        l->bad_utf8++;
    tp_buf_append(&l->text[item], text, len);
    l->pieces[item]++;
    return (long)item == l->cancel_item && len > 0;
}

static void test_stop_strings(tp_model *m) {
    tp_generate_params p = tp_generate_default_params();
    p.options.temperature = 0;
    p.options.max_new_tokens = 24;
    tp_gen_result full;
    tp_error err;
    CHECK(tp_completion(m, "Stop strings test:", &p, &full, NULL, &err) == TP_OK);
    /* Find a token boundary inside the text: the last UTF-8 character before it
     * and the first after it make a stop string that spans two tokens. */
    const tp_tokenizer *tok = tp_model_tokenizer(m);
    char stop[16] = "";
    for (size_t k = 1; k + 1 < full.completion_tokens && !stop[0]; k++) {
        char *pre = NULL;
        if (tp_tokenizer_decode(tok, full.tokens, k, true, &pre, &err) != TP_OK)
            break;
        size_t b = strlen(pre), tl = strlen(full.text);
        bool prefix = b < tl && !strncmp(pre, full.text, b);
        free(pre);
        if (b == 0 || !prefix)
            continue;
        size_t s0 = b - 1;
        while (s0 > 0 && ((unsigned char)full.text[s0] & 0xC0) == 0x80)
            s0--;
        size_t e = b + 1;
        while (e < tl && ((unsigned char)full.text[e] & 0xC0) == 0x80)
            e++;
        if (e - s0 < sizeof stop && s0 > 0) {
            memcpy(stop, full.text + s0, e - s0);
            stop[e - s0] = 0;
        }
    }
    CHECK_MSG(stop[0], "no token boundary found in \"%s\"", full.text);
    if (stop[0]) {
        const char *stops[2] = {"no-such-stop-string", stop};
        p.options.stop = stops;
        p.options.n_stop = 2;
        stream_log log = {.cancel_item = -1};
        p.stream = on_stream;
        p.stream_user = &log;
        tp_gen_result r;
        CHECK(tp_completion(m, "Stop strings test:", &p, &r, NULL, &err) == TP_OK);
        size_t cut = (size_t)(strstr(full.text, stop) - full.text);
        CHECK_MSG(strlen(r.text) == cut && !strncmp(r.text, full.text, cut),
                  "stop \"%s\": got \"%s\", full \"%s\"", stop, r.text, full.text);
        CHECK_EQ_INT(r.finish_reason, TP_FINISH_STOP);
        CHECK(r.completion_tokens < full.completion_tokens);
        CHECK_MSG(log.text[0].data && !strcmp(log.text[0].data, r.text),
                  "stream \"%s\" != text \"%s\"", log.text[0].data ? log.text[0].data : "", r.text);
        CHECK_EQ_INT(log.bad_utf8, 0);
        tp_buf_free(&log.text[0]);
        tp_gen_result_free(&r);
        /* A stop string that never appears changes nothing. */
        p.options.n_stop = 1;
        p.stream = NULL;
        CHECK(tp_completion(m, "Stop strings test:", &p, &r, NULL, &err) == TP_OK);
        CHECK(same_result(&r, &full));
        tp_gen_result_free(&r);
    }
    tp_gen_result_free(&full);
}

static void test_streaming(tp_model *m) {
    const char *prompts[5] = {"你好", "Stream me", "emoji 😀", "Another one", "last"};
    tp_gen_options o[5];
    for (int i = 0; i < 5; i++) {
        o[i] = tp_gen_options_unset();
        o[i].max_new_tokens = 10 + 3 * i;
        o[i].temperature = 1.0f;
        o[i].top_p = 1.0f;
        o[i].top_k = 0;
        o[i].seed = i;
    }
    tp_gen_result plain[5], streamed[5];
    tp_error err;
    CHECK(tp_completion_batch(m, prompts, 5, NULL, o, plain, NULL, &err) == TP_OK);
    stream_log log;
    memset(&log, 0, sizeof log);
    log.cancel_item = 2;
    tp_generate_params p = tp_generate_default_params();
    p.stream = on_stream;
    p.stream_user = &log;
    CHECK(tp_completion_batch(m, prompts, 5, &p, o, streamed, NULL, &err) == TP_OK);
    CHECK_EQ_INT(log.bad_utf8, 0);
    for (int i = 0; i < 5; i++) {
        CHECK_EQ_INT(streamed[i].error.status, TP_OK);
        const char *got = log.text[i].data ? log.text[i].data : "";
        CHECK_MSG(streamed[i].text && !strcmp(got, streamed[i].text),
                  "item %d: stream \"%s\" != text \"%s\"", i, got,
                  streamed[i].text ? streamed[i].text : "(null)");
        if (i == 2) {
            CHECK_EQ_INT(streamed[i].finish_reason, TP_FINISH_CANCELLED);
            CHECK(streamed[i].completion_tokens <= plain[i].completion_tokens);
        } else {
            CHECK_MSG(same_result(&streamed[i], &plain[i]), "item %d changed by streaming", i);
        }
        tp_buf_free(&log.text[i]);
    }
    tp_gen_result_free_all(plain, 5);
    tp_gen_result_free_all(streamed, 5);
}

static void test_chat(tp_model *m) {
    tp_chat_message msgs[2] = {{"system", "You are terse."}, {"user", "Say hi."}};
    tp_generate_params p = tp_generate_default_params();
    p.options.max_new_tokens = 6;
    p.options.temperature = 0;
    p.enable_thinking = 0;
    tp_gen_result r;
    tp_error err;
    CHECK_MSG(tp_chat(m, msgs, 2, &p, &r, NULL, &err) == TP_OK, "%s", err.message);
    /* The prompt is the template's rendering, tokenized without extra specials. */
    tp_chat_template *ct = NULL;
    char *rendered = NULL;
    CHECK(tp_chat_template_load(g_tmp, &ct, &err) == TP_OK);
    tp_chat_template_params cp = tp_chat_template_default_params();
    cp.enable_thinking = 0;
    CHECK(tp_chat_template_render(ct,
                                  "{\"messages\":[{\"role\":\"system\",\"content\":\"You are "
                                  "terse.\"},{\"role\":\"user\",\"content\":\"Say hi.\"}]}",
                                  &cp, &rendered, &err) == TP_OK);
    CHECK(rendered && strstr(rendered, "<think>\n\n</think>"));
    tp_tokenization tk;
    CHECK(tp_tokenizer_encode(tp_model_tokenizer(m), rendered, false, &tk, &err) == TP_OK);
    CHECK_EQ_INT(r.prompt_tokens, tk.n);
    tp_tokenization_free(&tk);
    tp_chat_template_string_free(rendered);
    tp_chat_template_free(ct);
    /* Same conversation given as JSON: same result. */
    tp_chat_conversation cv[3] = {
        {.messages = msgs, .n_messages = 2},
        {.json = "{\"messages\":[{\"role\":\"system\",\"content\":\"You are terse.\"},"
                 "{\"role\":\"user\",\"content\":\"Say hi.\"}]}"},
        {.messages = (tp_chat_message[]){{"user", NULL}}, .n_messages = 1},
    };
    tp_gen_result out[3];
    CHECK(tp_chat_batch(m, cv, 3, &p, NULL, out, NULL, &err) == TP_OK);
    CHECK(same_result(&out[0], &r) && same_result(&out[1], &r));
    CHECK_EQ_INT(out[2].error.status, TP_ERR_INPUT);
    tp_gen_result_free_all(out, 3);
    tp_gen_result_free(&r);
}

static void test_defaults(tp_model *m) {
    /* generation_config.json: do_sample, temperature 0.6, top_k 20, top_p 0.95. */
    tp_gen_result a, b, g, s2;
    tp_error err;
    tp_generate_params p = tp_generate_default_params();
    p.options.max_new_tokens = 12;
    CHECK(tp_completion(m, "Defaults", &p, &a, NULL, &err) == TP_OK);
    CHECK(tp_completion(m, "Defaults", &p, &b, NULL, &err) == TP_OK);
    CHECK(same_result(&a, &b)); /* seed 0 by default: reproducible */
    p.options.seed = 12345;
    CHECK(tp_completion(m, "Defaults", &p, &s2, NULL, &err) == TP_OK);
    p.options.seed = -1;
    p.options.temperature = 0;
    CHECK(tp_completion(m, "Defaults", &p, &g, NULL, &err) == TP_OK);
    CHECK_MSG(!same_result(&a, &g) || !same_result(&a, &s2),
              "default sampling looks greedy and seed-independent");
    tp_gen_result_free(&a);
    tp_gen_result_free(&b);
    tp_gen_result_free(&g);
    tp_gen_result_free(&s2);
}

static void test_kv_budget_rss(const char *dir) {
    /* 32 KiB of KV per token: 32 items x ~60 tokens want ~60 MiB at once. */
    if (mkmodel(dir, "--layers 4 --heads 8 --kv-heads 8 --head-dim 128") != 0) {
        CHECK_MSG(0, "tp_mkmodel failed");
        return;
    }
    tp_model *m = NULL;
    tp_error err;
    tp_model_params mp = tp_model_default_params();
    mp.n_threads = 2;
    CHECK(tp_model_load(dir, &mp, &m, &err) == TP_OK);
    if (!m)
        return;
    enum { N = 32 };
    const char *prompts[N];
    tp_gen_options o[N];
    for (int i = 0; i < N; i++) {
        prompts[i] = kPrompts[i % 16];
        o[i] = tp_gen_options_unset();
        o[i].max_new_tokens = 48;
        o[i].temperature = 0.7f;
        o[i].seed = i;
    }
    tp_generate_params p = tp_generate_default_params();
    p.kv_budget = (size_t)4 << 20;
    p.max_batch = 8;
    tp_gen_result out[N], ref[N];
    tp_generate_stats st;
    /* Warm up: page in the weights and tokenizer (file-backed RSS) first. */
    tp_gen_result warm;
    tp_generate_params wp = p;
    wp.options = o[0];
    CHECK(tp_completion(m, prompts[0], &wp, &warm, NULL, &err) == TP_OK);
    tp_gen_result_free(&warm);
    long before = vm_hwm_kb();
    CHECK(tp_completion_batch(m, prompts, N, &p, o, out, &st, &err) == TP_OK);
    long grew_kb = vm_hwm_kb() - before;
    CHECK_MSG(st.kv_peak_bytes <= p.kv_budget, "KV peak %zu > budget %zu", st.kv_peak_bytes,
              p.kv_budget);
    /* All KV at once would be ~N * 60 tokens * 32 KiB = 60 MiB. (Under
     * AddressSanitizer freed memory sits in quarantine and shadow pages add up:
     * RSS says nothing there, only the KV peak above is checked.) */
#if defined(__SANITIZE_ADDRESS__)
    printf("note: RSS bound not checked under AddressSanitizer (grew %ld KiB)\n", grew_kb);
#else
    CHECK_MSG(grew_kb < 24 * 1024, "peak RSS grew by %ld KiB with a 4 MiB KV budget", grew_kb);
#endif
    p.kv_budget = 0;
    p.max_batch = 64;
    CHECK(tp_completion_batch(m, prompts, N, &p, o, ref, NULL, &err) == TP_OK);
    for (int i = 0; i < N; i++) {
        CHECK_EQ_INT(out[i].error.status, TP_OK);
        CHECK_MSG(same_result(&out[i], &ref[i]), "item %d differs under the KV budget", i);
    }
    tp_gen_result_free_all(out, N);
    tp_gen_result_free_all(ref, N);
    tp_model_free(m);
}

int main(void) {
    if (!tp_test_shared_or_data("tokenizers/qwen3/tokenizer.json")) {
        printf("SKIP: the Qwen3 tokenizer is in neither ../shared nor tests/data\n");
        return 0;
    }
    snprintf(g_tmp, sizeof g_tmp, "/tmp/tp_textgen_XXXXXX");
    if (!mkdtemp(g_tmp)) {
        perror("mkdtemp");
        return 1;
    }
    char dir2[300];
    snprintf(dir2, sizeof dir2, "%s/kv", g_tmp);
    test_kv_budget_rss(dir2); /* first: measures the peak RSS growth */

    if (mkmodel(g_tmp, "") != 0) {
        fprintf(stderr, "tp_mkmodel failed\n");
        return 1;
    }
    tp_model *m = NULL;
    tp_error err;
    tp_model_params mp = tp_model_default_params();
    mp.n_threads = 2;
    if (tp_model_load(g_tmp, &mp, &m, &err) != TP_OK) {
        fprintf(stderr, "load: %s\n", err.message);
        return 1;
    }
    CHECK_EQ_INT(tp_model_get_task(m), TP_TASK_TEXT_GENERATION);
    test_batch_equals_single(m);
    test_partial_failure(m);
    test_stop_strings(m);
    test_streaming(m);
    test_chat(m);
    test_defaults(m);
    tp_model_free(m);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", g_tmp);
    return tp_test_exit();
}
