/*
 * tokenizer_check — checks a tokenizer against golden encodings
 * (../shared/tokenizers/README.md):
 *
 *   tokenizer_check [--gguf|--gguf-scores] TOKENIZER_DIR GOLDEN.jsonl
 *
 * --gguf checks the tokenizer rebuilt from its GGUF description (exported
 * from TOKENIZER_DIR); --gguf-scores the same without merges in the
 * description (a "llama" tokenizer then derives them from the scores). In
 * these modes a decoded_skip_special mismatch is accepted (and counted) only
 * when keeping the special tokens that merely look special ("<|x|>",
 * "<unusedN>", "<mask>": llama.cpp types them CONTROL even where Hugging Face
 * does not mark them special) gives exactly the golden text.
 *
 * Lines with "tokens" are full golden lines: ids (no special tokens),
 * ids_with_special, tokens, decoded (ids, specials kept) and
 * decoded_skip_special (ids_with_special, specials skipped) are all checked;
 * decodes are the tokenizer.json decoder only (no clean-up), as the goldens
 * are. Lines with only {"text", "ids"} (llama.cpp vectors) check ids, and so
 * do chat goldens ({"rendered", "ids"}; lines with "rendered": null, where the
 * template raised, are skipped and counted on stderr).
 * Prints "PASS name" or "FAIL name: reason" per line; exits 1 if any failed,
 * 2 when the files cannot be read.
 */
#include "tokenizer/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cJSON ends strings at an embedded NUL ("\u0000" is in the corpus), so the
 * string fields are read from the raw line: `"key":"` cannot occur inside a
 * JSON string value (its quotes would be escaped). Returns a malloc'd copy. */
static char *raw_field(const char *line, const char *key, size_t *len) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = strstr(line, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    size_t cap = strlen(p) + 1, n = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    while (*p && *p != '"') {
        if (*p != '\\') {
            out[n++] = *p++;
            continue;
        }
        p++;
        char c = *p++;
        switch (c) {
        case 'n':
            out[n++] = '\n';
            break;
        case 't':
            out[n++] = '\t';
            break;
        case 'r':
            out[n++] = '\r';
            break;
        case 'b':
            out[n++] = '\b';
            break;
        case 'f':
            out[n++] = '\f';
            break;
        case 'u': {
            unsigned cp = 0;
            if (sscanf(p, "%4x", &cp) != 1)
                goto bad;
            p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && p[0] == '\\' && p[1] == 'u') {
                unsigned lo = 0;
                if (sscanf(p + 2, "%4x", &lo) == 1 && lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                }
            }
            n += (size_t)tp_utf8_encode(cp, out + n);
            break;
        }
        case '\0':
            goto bad;
        default:
            out[n++] = c;
            break;
        }
    }
    if (*p != '"')
        goto bad;
    out[n] = '\0';
    *len = n;
    return out;
bad:
    free(out);
    return NULL;
}

/* The top-level string field key of o, with its real length: the raw text
 * when it agrees with cJSON's (whose copy stops at an embedded NUL), else
 * cJSON's. NULL when absent. malloc'd. */
static char *text_field(const char *line, const cJSON *o, const char *key, size_t *len) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v))
        return NULL;
    size_t cl = strlen(v->valuestring), rl = 0;
    char *raw = raw_field(line, key, &rl);
    if (raw && rl >= cl && memcmp(raw, v->valuestring, cl) == 0) {
        *len = rl;
        return raw;
    }
    free(raw);
    *len = cl;
    return tp_strdup(v->valuestring);
}

static bool ids_equal(const cJSON *arr, const int32_t *ids, size_t n, char *why, size_t whyn) {
    size_t m = (size_t)cJSON_GetArraySize(arr);
    size_t i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, arr) {
        if (i >= n || (int32_t)x->valuedouble != ids[i]) {
            snprintf(why, whyn, "at %zu: expected %d, got %s%d (lengths %zu vs %zu)", i,
                     (int)x->valuedouble, i >= n ? "end " : "", i >= n ? 0 : (int)ids[i], m, n);
            return false;
        }
        i++;
    }
    if (n != m) {
        snprintf(why, whyn, "expected %zu ids, got %zu (extra id %d)", m, n, (int)ids[m]);
        return false;
    }
    return true;
}

static int32_t *ids_of(const cJSON *arr, size_t *n) {
    *n = (size_t)cJSON_GetArraySize(arr);
    int32_t *ids = malloc((*n + 1) * sizeof *ids);
    size_t i = 0;
    const cJSON *x;
    if (ids)
        cJSON_ArrayForEach(x, arr) ids[i++] = (int32_t)x->valuedouble;
    return ids;
}

static bool check_text(const tp_tokenizer *tok, tp_tok_scratch *S, const char *line,
                       const char *text, size_t text_len, const cJSON *o, char *why, size_t whyn);

/* --gguf: llama.cpp's convert_hf_to_gguf.py types an added token CONTROL when
 * it is special or merely looks special (does_token_look_special: "<|...|>",
 * "<unused...>", "<mask>", ...), so skip_special_tokens drops tokens that
 * Hugging Face keeps (Qwen3's "<|fim_prefix|>", Gemma 3's "<unused0>"). */
static bool gguf_mode;
static size_t n_control_diff;

static bool looks_special(const char *s) {
    size_t n = strlen(s);
    if (!strcmp(s, "<pad>") || !strcmp(s, "<mask>") || !strcmp(s, "<2mass>") ||
        !strcmp(s, "[@BOS@]"))
        return true;
    return (n >= 4 && !strncmp(s, "<|", 2) && !strcmp(s + n - 2, "|>")) ||
           (n >= 8 && !strncmp(s, "<unused", 7) && s[n - 1] == '>');
}

/* The skip_special_tokens decode with the special tokens that only look
 * special kept, as Hugging Face (where they are not special) decodes them. */
static char *decode_keep_lookalikes(const tp_tokenizer *tok, const int32_t *v, size_t n,
                                    size_t *len) {
    int32_t *keep = malloc((n + 1) * sizeof *keep);
    size_t k = 0;
    char *s = NULL;
    tp_error err;
    if (!keep)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const char *t = tp_tok_id_to_token(tok, v[i]);
        if (!tp_tok_is_special(tok, v[i]) || (t && looks_special(t)))
            keep[k++] = v[i];
    }
    tp_tok_decode_params dp = {.skip_special_tokens = false, .clean_up_tokenization_spaces = 0};
    if (tp_tok_decode(tok, keep, k, &dp, &s, len, &err))
        s = NULL;
    free(keep);
    return s;
}

/* One golden line; returns true when it passes (why explains a failure). */
static bool check_line(const tp_tokenizer *tok, tp_tok_scratch *S, const char *line, const cJSON *o,
                       char *why, size_t whyn) {
    size_t text_len = 0;
    char *text = text_field(line, o, "text", &text_len);
    if (!text) /* chat goldens: the rendered prompt and its ids */
        text = text_field(line, o, "rendered", &text_len);
    bool ok = check_text(tok, S, line, text, text_len, o, why, whyn);
    free(text);
    return ok;
}

static bool check_text(const tp_tokenizer *tok, tp_tok_scratch *S, const char *line,
                       const char *text, size_t text_len, const cJSON *o, char *why, size_t whyn) {
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(o, "ids");
    if (!text || !cJSON_IsArray(ids)) {
        snprintf(why, whyn, "line has no \"text\" string or \"ids\" array");
        return false;
    }
    tp_tok_encode_params p = tp_tok_encode_default_params();
    tp_error err;
    tp_encoding e;
    char sub[400];
    p.add_special_tokens = false;
    if (tp_tok_encode(tok, S, text, text_len, NULL, 0, &p, &e, &err)) {
        snprintf(why, whyn, "encode failed: %s", err.message);
        tp_encoding_free(&e);
        return false;
    }
    bool ok = ids_equal(ids, e.ids, e.n, sub, sizeof sub);
    if (!ok)
        snprintf(why, whyn, "ids %s", sub);
    const cJSON *tokens = cJSON_GetObjectItemCaseSensitive(o, "tokens");
    if (ok && cJSON_IsArray(tokens)) {
        size_t i = 0;
        const cJSON *t;
        cJSON_ArrayForEach(t, tokens) {
            const char *s = i < e.n ? tp_tok_id_to_token(tok, e.ids[i]) : NULL;
            if (!s || !cJSON_IsString(t) || strcmp(s, t->valuestring) != 0) {
                snprintf(why, whyn, "tokens: at %zu expected '%s', got '%s'", i,
                         cJSON_IsString(t) ? t->valuestring : "?", s ? s : "(none)");
                ok = false;
                break;
            }
            i++;
        }
    }
    tp_encoding_free(&e);
    if (!ok || !cJSON_IsArray(tokens))
        return ok;

    const cJSON *idss = cJSON_GetObjectItemCaseSensitive(o, "ids_with_special");
    p.add_special_tokens = true;
    if (tp_tok_encode(tok, S, text, text_len, NULL, 0, &p, &e, &err)) {
        snprintf(why, whyn, "encode (special) failed: %s", err.message);
        tp_encoding_free(&e);
        return false;
    }
    ok = cJSON_IsArray(idss) && ids_equal(idss, e.ids, e.n, sub, sizeof sub);
    tp_encoding_free(&e);
    if (!ok) {
        snprintf(why, whyn, "ids_with_special %s", sub);
        return false;
    }
    struct {
        const char *field;
        const cJSON *ids;
        bool skip;
    } decs[] = {{"decoded", ids, false}, {"decoded_skip_special", idss, true}};
    for (int k = 0; k < 2; k++) {
        size_t want_len = 0;
        char *want = text_field(line, o, decs[k].field, &want_len);
        if (!want)
            continue;
        size_t n;
        int32_t *v = ids_of(decs[k].ids, &n);
        tp_tok_decode_params dp = {.skip_special_tokens = decs[k].skip,
                                   .clean_up_tokenization_spaces = 0};
        char *s = NULL;
        size_t len = 0;
        tp_status st = v ? tp_tok_decode(tok, v, n, &dp, &s, &len, &err) : TP_ERR_OUT_OF_MEMORY;
        if (st) {
            snprintf(why, whyn, "%s: decode failed: %s", decs[k].field, err.message);
            free(v);
            free(want);
            return false;
        }
        if (gguf_mode && decs[k].skip && (len != want_len || memcmp(s, want, len) != 0)) {
            size_t alen = 0;
            char *alt = decode_keep_lookalikes(tok, v, n, &alen);
            if (alt && alen == want_len && memcmp(alt, want, alen) == 0) {
                n_control_diff++; /* the documented llama.cpp difference, nothing else */
                free(s);
                s = alt;
                len = alen;
            } else {
                free(alt);
            }
        }
        free(v);
        if (len != want_len || memcmp(s, want, len) != 0) {
            snprintf(why, whyn, "%s: expected \"%.120s\", got \"%.120s\"", decs[k].field, want, s);
            free(s);
            free(want);
            return false;
        }
        free(s);
        free(want);
    }
    return true;
}

/* --gguf: the tokenizer.json tokenizer exported to its GGUF description and
 * built back from it (tp_tok_gguf_export + tp_tok_load_gguf_desc);
 * --gguf-scores: the same with the merges dropped from the description, so a
 * "llama" tokenizer derives them from the scores. */
static tp_status load(const char *mode, const char *dir, tp_tokenizer **tok, tp_error *err) {
    if (!mode)
        return tp_tok_load(dir, tok, err);
    tp_tok_gguf_desc *d = NULL;
    tp_status st = tp_tok_gguf_export(dir, NULL, &d, err);
    if (st)
        return st;
    tp_tok_gguf_desc copy = *d;
    if (strcmp(mode, "--gguf-scores") == 0) {
        copy.merges = NULL;
        copy.n_merges = 0;
    }
    st = tp_tok_load_gguf_desc(&copy, tok, err);
    tp_tok_gguf_desc_free(d);
    return st;
}

int main(int argc, char **argv) {
    const char *mode = NULL;
    if (argc == 4 && (strcmp(argv[1], "--gguf") == 0 || strcmp(argv[1], "--gguf-scores") == 0)) {
        mode = argv[1];
        gguf_mode = true;
        argv++;
        argc--;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: %s [--gguf|--gguf-scores] TOKENIZER_DIR GOLDEN.jsonl\n", argv[0]);
        return 2;
    }
    tp_error err;
    tp_tokenizer *tok = NULL;
    if (load(mode, argv[1], &tok, &err)) {
        fprintf(stderr, "tokenizer_check: %s\n", err.message);
        return 2;
    }
    char *data = NULL;
    size_t len = 0;
    if (tp_read_file(argv[2], &data, &len, &err)) {
        fprintf(stderr, "tokenizer_check: %s\n", err.message);
        tp_tok_free(tok);
        return 2;
    }
    const char *base = strrchr(argv[2], '/');
    base = base ? base + 1 : argv[2];
    tp_tok_scratch *S = tp_tok_scratch_create(tok);
    size_t pass = 0, fail = 0, skipped = 0, line = 0;
    char *save = NULL;
    for (char *l = strtok_r(data, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        line++;
        if (!*l)
            continue;
        char why[1024] = "";
        cJSON *o = cJSON_Parse(l);
        const cJSON *rendered = cJSON_GetObjectItemCaseSensitive(o, "rendered");
        if (o && !cJSON_GetObjectItemCaseSensitive(o, "text") && cJSON_IsNull(rendered)) {
            skipped++; /* a chat golden whose template raised: nothing to encode */
            cJSON_Delete(o);
            continue;
        }
        bool ok = o && S && check_line(tok, S, l, o, why, sizeof why);
        if (!o)
            snprintf(why, sizeof why, "malformed JSON line");
        if (ok) {
            printf("PASS %s:%zu\n", base, line);
            pass++;
        } else {
            printf("FAIL %s:%zu: %s\n", base, line, why);
            fail++;
        }
        cJSON_Delete(o);
    }
    fflush(stdout);
    fprintf(stderr, "%s: %zu passed, %zu failed", base, pass, fail);
    if (skipped)
        fprintf(stderr, ", %zu lines without a text skipped", skipped);
    if (n_control_diff)
        fprintf(stderr,
                ", %zu decoded_skip_special lines differ only by tokens llama.cpp types CONTROL",
                n_control_diff);
    fprintf(stderr, "\n");
    tp_tok_scratch_free(S);
    free(data);
    tp_tok_free(tok);
    return fail ? 1 : 0;
}
