/*
 * test_gguf_cli.c — `tpipe generate --model x.gguf` end to end: a small random
 * Qwen3 (build/tp_mkmodel, real Qwen3 tokenizer, BF16) is converted to one
 * self-contained .gguf (weights, config keys, tokenizer.ggml.* from the
 * tokenizer exporter, tokenizer.chat_template) alone in a folder; the CLI run
 * on the .gguf (and on its folder) prints exactly what it prints for the
 * Hugging Face folder: plain completions (tokenizer from GGUF metadata) and
 * chat messages (chat template from GGUF metadata). Skips without the Qwen3
 * tokenizer files.
 */
#include "gguf_conv.h"
#include "pipelines/gguf_tok.h"
#include "test_util.h"

#include <sys/stat.h>
#include <unistd.h>

static tp_status add_tok(tp_gguf_writer *w, void *user, tp_error *err) {
    tp_tok_gguf_desc *d = NULL;
    tp_status st = tp_tok_gguf_export((const char *)user, NULL, &d, err);
    if (st == TP_OK)
        st = tp_gguf_set_tokenizer(w, d, err);
    tp_tok_gguf_desc_free(d);
    return st;
}

/* Runs the CLI, returns its stdout (malloc'd). */
static char *run(const char *build, const char *args, const char *input) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "printf '%%b' '%s' | '%s/tpipe' %s 2>/dev/null", input, build, args);
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *out = malloc(cap);
    size_t k;
    while ((k = fread(out + n, 1, cap - n - 1, p)) > 0) {
        n += k;
        if (n + 1 == cap)
            out = realloc(out, cap *= 2);
    }
    out[n] = '\0';
    int rc = pclose(p);
    CHECK_MSG(rc == 0, "tpipe %s: exit status %d", args, rc);
    return out;
}

int main(void) {
    const char *build = getenv("TPIPE_BUILD");
    const char *tok = tp_test_shared_or_data("tokenizers/qwen3");
    if (!build || !tok) {
        printf("SKIP: needs TPIPE_BUILD and the Qwen3 tokenizer files\n");
        return 0;
    }
    char tmp[] = "/tmp/tpipe-gguf-cli-XXXXXX";
    if (!mkdtemp(tmp))
        return 1;
    char hf[512], gdir[512], gg[600], cmd[8192];
    snprintf(hf, sizeof hf, "%s/hf", tmp);
    snprintf(gdir, sizeof gdir, "%s/g", tmp);
    snprintf(gg, sizeof gg, "%s/model.gguf", gdir);
    snprintf(cmd, sizeof cmd,
             "'%s/tp_mkmodel' --family qwen3 --hidden 64 --layers 2 --heads 4 --intermediate 128 "
             "--max-positions 256 --dtype bf16 --seed 3 --quiet --tokenizer-dir '%s' --out '%s'",
             build, tok, hf);
    CHECK(system(cmd) == 0);
    mkdir(gdir, 0755);
    tp_error err;
    tp_status st = gguf_conv_ex(hf, gg, TP_DTYPE_COUNT, add_tok, hf, &err);
    CHECK_MSG(st == TP_OK, "convert: %s", st ? err.message : "");
    if (st == TP_OK) {
        /* End of generation: the HF generation_config's ids (<|im_end|> and
         * <|endoftext|>), the second one found by its text as llama.cpp does. */
        tp_gguf *g = NULL;
        cJSON *cfg = NULL;
        CHECK(tp_gguf_open(gg, &g, &err) == TP_OK);
        CHECK(g && tp_gguf_hparams_to_config(g, &cfg, &err) == TP_OK);
        const cJSON *eos = cJSON_GetObjectItemCaseSensitive(cfg, "eos_token_id");
        bool im_end = false, eot = false;
        const cJSON *x;
        cJSON_ArrayForEach(x, eos) {
            im_end |= x->valuedouble == 151645;
            eot |= x->valuedouble == 151643;
        }
        CHECK_MSG(im_end && eot && cJSON_GetArraySize(eos) == 2, "eos ids of the GGUF");
        cJSON_Delete(cfg);
        tp_gguf_close(g);
        /* Generation defaults differ (no generation_config.json in a GGUF): pin them. */
        const char *opts = "--max-new-tokens 12 --temperature 0";
        const char *in = "Hello world\\nThe capital of France is\\n";
        char a1[1024], a2[1024], a3[1024];
        snprintf(a1, sizeof a1, "generate --model '%s' %s", hf, opts);
        snprintf(a2, sizeof a2, "generate --model '%s' %s", gg, opts);
        snprintf(a3, sizeof a3, "generate --model '%s' %s", gdir, opts);
        char *o1 = run(build, a1, in), *o2 = run(build, a2, in), *o3 = run(build, a3, in);
        CHECK(o1 && strstr(o1, "\"text\""));
        CHECK_MSG(o1 && o2 && !strcmp(o1, o2), "HF:\n%s\nGGUF:\n%s", o1, o2);
        CHECK(o2 && o3 && !strcmp(o2, o3));
        printf("generate on GGUF == on the HF folder:\n%s", o2 ? o2 : "");
        free(o1);
        free(o2);
        free(o3);
        /* Chat: the template comes from tokenizer.chat_template. */
        const char *chat = "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi there\"}]}\\n";
        snprintf(a1, sizeof a1, "generate --chat --model '%s' %s", hf, opts);
        snprintf(a2, sizeof a2, "generate --chat --model '%s' %s", gg, opts);
        o1 = run(build, a1, chat);
        o2 = run(build, a2, chat);
        CHECK(o1 && strstr(o1, "\"text\""));
        CHECK_MSG(o1 && o2 && !strcmp(o1, o2), "HF chat:\n%s\nGGUF chat:\n%s", o1, o2);
        free(o1);
        free(o2);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp);
    return tp_test_exit();
}
