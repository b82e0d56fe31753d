/*
 * convert.c — the converter's driver: Hugging Face folder -> GGUF v3 file.
 *
 * Steps: read config.json and pick the architecture; open the safetensors
 * (mmap, nothing copied); map every tensor name through the one HF <-> GGUF
 * table (src/io/gguf_names.c), choose its type (mix.c); write the metadata
 * (hyper-parameters from the same table, general.*, tokenizer.ggml.* and
 * tokenizer.chat_template from the tokenizer's exporter through
 * tp_gguf_set_tokenizer), then stream the tensors.
 *
 * The writer asks for each tensor's bytes in chunks of rows (fill_rows): the
 * rows are widened from the checkpoint's dtype to f32 in a scratch buffer that
 * lives for the whole run and grows to the largest chunk (bounded by the
 * writer's chunk size, not by the model), Gemma3 norm weights get their +1
 * (in f32, as convert_hf_to_gguf.py does after casting to float32), and the
 * rows are encoded to the target type — quantized types row by row over the
 * pool (each row's bytes depend only on the row: thread-count invariant).
 * A tensor whose type is unchanged and needs no shift is copied as it is.
 *
 * Tensors are written token_embd first, then the blocks in layer order
 * (names sorted within a layer), then the rest (output_norm, output), so a
 * decoder reads the file front to back.
 */
#include "convert/convert.h"

#include "io/config.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "pipelines/gguf_tok.h"
#include "tensor/quant.h"
#include "tokenizer/tokenizer.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NAME_CAP 256

typedef struct conv_tensor {
    tp_conv_tensor info;
    const tp_st_tensor *st;
    int layer;       /* -1: not in a block */
    float shift;     /* added to every element (Gemma3 norms: 1) */
    int64_t rows;    /* ne[1] * ne[2] * ne[3] */
    size_t released; /* checkpoint bytes of this tensor whose pages were dropped */
} conv_tensor;

typedef struct conv_ctx {
    const char *dir;
    conv_tensor *t; /* in write order */
    size_t n;
    tp_pool *pool;
    float *scratch; /* f32 rows of the current chunk */
    size_t scratch_cap;
    size_t next_progress;
    const tp_conv_params *params;
    uint64_t bytes_in;
} conv_ctx;

tp_conv_params tp_conv_default_params(void) {
    tp_conv_params p;
    memset(&p, 0, sizeof p);
    p.type = TP_CONV_F16;
    return p;
}

void tp_conv_report_free(tp_conv_report *rep) {
    if (!rep)
        return;
    for (size_t i = 0; i < rep->n_tensors; i++) {
        tp_free(rep->tensors[i].name);
        tp_free(rep->tensors[i].hf_name);
    }
    tp_free(rep->tensors);
    tp_free(rep->tokenizer_skip);
    memset(rep, 0, sizeof *rep);
}

/* "blk.N." -> N, else -1 */
static int layer_of(const char *gguf_name) {
    int layer = -1, used = 0;
    if (sscanf(gguf_name, "blk.%d.%n", &layer, &used) == 1 && used > 0)
        return layer;
    return -1;
}

/* token_embd first, blocks by layer, then the rest; names within a group. */
static int write_group(const conv_tensor *t) {
    if (!strcmp(t->info.name, "token_embd.weight"))
        return 0;
    return t->layer >= 0 ? 1 : 2;
}

static int cmp_tensor(const void *pa, const void *pb) {
    const conv_tensor *a = pa, *b = pb;
    int ga = write_group(a), gb = write_group(b);
    if (ga != gb)
        return ga - gb;
    if (a->layer != b->layer)
        return a->layer < b->layer ? -1 : 1;
    return strcmp(a->info.name, b->info.name);
}

/* ---------------------------------------------------------------- tensor data */

typedef struct enc_ctx {
    tp_dtype type;
    const float *src;
    uint8_t *dst;
    size_t cols, row_bytes;
} enc_ctx;

/* Plain targets keep non-finite values as they are (like numpy's astype), so
 * they are encoded row by row without the quantizer's non-finite check. */
static void enc_plain_task(void *vctx, size_t r, int thread) {
    (void)thread;
    enc_ctx *c = vctx;
    (void)tp_quantize_row(c->type, c->src + r * c->cols, c->dst + r * c->row_bytes, c->cols);
}

/* Drops the checkpoint pages of the rows converted so far from the process:
 * the mapping is read-only and file-backed, so the kernel re-reads a page if it
 * is ever touched again. Without this, RSS grows to the size of the checkpoint
 * (every page read stays mapped) although nothing needs them any more. Only
 * whole pages inside the tensor's bytes are released (a neighbour tensor may
 * not be converted yet); *done remembers how far this tensor got. */
static void release_pages(const tp_st_tensor *s, size_t upto, size_t *done) {
#ifdef MADV_DONTNEED
    long ps = sysconf(_SC_PAGESIZE);
    if (ps <= 0)
        return;
    uintptr_t mask = (uintptr_t)ps - 1, base = (uintptr_t)s->data;
    uintptr_t a = (base + *done + mask) & ~mask, e = (base + upto) & ~mask;
    if (upto == s->n_bytes && *done == 0)
        a = (base + mask) & ~mask;
    if (e > a) {
        (void)madvise((void *)a, e - a, MADV_DONTNEED);
        *done = e - base;
    }
#else
    (void)s, (void)upto, (void)done;
#endif
}

static tp_status fill_rows(void *user, size_t index, int64_t row0, int64_t n_rows, void *dst,
                           tp_error *err) {
    conv_ctx *c = user;
    if (index >= c->n)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "convert: tensor index %zu out of range",
                       index);
    conv_tensor *t = &c->t[index];
    const tp_st_tensor *s = t->st;
    size_t cols = (size_t)t->info.ne[0], n = (size_t)n_rows * cols;
    size_t es = tp_dtype_size(s->dtype);
    const uint8_t *src = (const uint8_t *)s->data + (size_t)row0 * cols * es;
    if (c->params->progress && row0 == 0 && index >= c->next_progress) {
        c->params->progress(c->params->progress_user, index, c->n, &t->info);
        c->next_progress = index + 1;
    }
    c->bytes_in += (uint64_t)n * es;
    if (t->info.type == s->dtype && t->shift == 0.0f) {
        memcpy(dst, src, n * es);
        release_pages(s, (size_t)(row0 + n_rows) * cols * es, &t->released);
        return TP_OK;
    }
    if (n > c->scratch_cap) {
        float *p = tp_aligned_alloc(n, sizeof(float));
        if (!p)
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY,
                           "convert: out of memory for %zu rows of tensor '%s'", (size_t)n_rows,
                           s->name);
        tp_aligned_free(c->scratch);
        c->scratch = p;
        c->scratch_cap = n;
    }
    tp_dequantize_row(s->dtype, src, c->scratch, n);
    release_pages(s, (size_t)(row0 + n_rows) * cols * es, &t->released);
    if (t->shift != 0.0f)
        for (size_t i = 0; i < n; i++)
            c->scratch[i] += t->shift;
    if (!tp_dtype_is_quant(t->info.type)) {
        size_t rb = cols * tp_dtype_size(t->info.type);
        enc_ctx e = {t->info.type, c->scratch, dst, cols, rb};
        if (c->pool && n_rows > 1)
            tp_pool_run(c->pool, (size_t)n_rows, enc_plain_task, &e);
        else
            for (size_t r = 0; r < (size_t)n_rows; r++)
                enc_plain_task(&e, r, 0);
        return TP_OK;
    }
    tp_error qe;
    if (tp_quantize_tensor(c->pool, t->info.type, c->scratch, (size_t)n_rows, cols, dst, &qe) !=
        TP_OK)
        return tp_fail(err, qe.status, "%s: tensor '%s' (rows from %lld): %s", s->file, s->name,
                       (long long)row0, qe.message);
    return TP_OK;
}

/* ---------------------------------------------------------------- driver */

/* The last path component of dir ("Qwen3-0.6B" for ".../Qwen3-0.6B/"). */
static char *dir_name(const char *dir) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    size_t b = n;
    while (b > 0 && dir[b - 1] != '/')
        b--;
    return tp_strndup(dir + b, n - b);
}

static tp_status collect_tensors(const char *dir, const tp_json_doc *cfg, tp_gguf_arch arch,
                                 const tp_st_model *st, tp_conv_type type, conv_ctx *c,
                                 tp_error *err) {
    const cJSON *root = cfg->root;
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(root, "text_config");
    bool tied = arch == TP_GGUF_ARCH_GEMMA3; /* Gemma3Config's default */
    const cJSON *tie = cJSON_GetObjectItemCaseSensitive(root, "tie_word_embeddings");
    if (!tie && cJSON_IsObject(text))
        tie = cJSON_GetObjectItemCaseSensitive(text, "tie_word_embeddings");
    if (cJSON_IsBool(tie))
        tied = cJSON_IsTrue(tie);
    int64_t n_layers = 0;
    tp_status s = tp_json_int(cfg, cJSON_IsObject(text) ? text : root, "num_hidden_layers", 0,
                              &n_layers, err);
    if (s)
        return s;
    size_t n = tp_st_count(st);
    c->t = tp_calloc(n ? n : 1, sizeof *c->t);
    if (!c->t)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "convert: out of memory");
    float shift = tp_gguf_norm_shift(arch);
    for (size_t i = 0; i < n; i++) {
        const tp_st_tensor *src = tp_st_at(st, i);
        char name[NAME_CAP];
        bool norm = false;
        tp_gguf_map m = tp_gguf_name_to_gguf(arch, src->name, name, sizeof name, &norm);
        if (m == TP_GGUF_MAP_SKIP)
            continue;
        if (m != TP_GGUF_MAP_OK)
            return tp_fail(err, TP_ERR_UNSUPPORTED,
                           "%s: tensor '%s' has no GGUF name for %s (not a tensor of the "
                           "text model tpipe converts)",
                           src->file, src->name, tp_gguf_arch_name(arch));
        if (tied && !strcmp(name, "output.weight"))
            continue; /* tie_word_embeddings: llama.cpp reads token_embd */
        if (src->dtype != TP_DTYPE_F32 && src->dtype != TP_DTYPE_F16 && src->dtype != TP_DTYPE_BF16)
            return tp_fail(err, TP_ERR_UNSUPPORTED,
                           "%s: tensor '%s' is %s; convert reads F32, "
                           "F16 and BF16 checkpoints",
                           src->file, src->name, tp_dtype_name(src->dtype));
        if (src->n_dims < 1 || src->n_dims > TP_GGUF_MAX_DIMS)
            return tp_fail(err, TP_ERR_UNSUPPORTED,
                           "%s: tensor '%s' has %d dimensions (GGUF: 1 to %d)", src->file,
                           src->name, src->n_dims, TP_GGUF_MAX_DIMS);
        conv_tensor *t = &c->t[c->n];
        t->st = src;
        t->layer = layer_of(name);
        t->shift = norm ? shift : 0.0f;
        t->info.src = src->dtype;
        t->info.n_dims = src->n_dims;
        t->rows = 1;
        for (int d = 0; d < TP_GGUF_MAX_DIMS; d++) {
            t->info.ne[d] = d < src->n_dims ? src->shape[src->n_dims - 1 - d] : 1;
            if (d > 0)
                t->rows *= t->info.ne[d];
        }
        t->info.name = tp_strdup(name);
        t->info.hf_name = tp_strdup(src->name);
        c->n++;
        if (!t->info.name || !t->info.hf_name)
            return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "convert: out of memory");
    }
    if (c->n == 0)
        return tp_fail(err, TP_ERR_FORMAT, "%s: no tensors to convert", dir);
    bool has_output = false;
    for (size_t i = 0; i < c->n; i++)
        has_output |= !strcmp(c->t[i].info.name, "output.weight");
    for (size_t i = 0; i < c->n; i++) {
        conv_tensor *t = &c->t[i];
        t->info.type =
            tp_conv_pick_type(type, t->info.name, t->info.n_dims, t->info.ne[0], t->layer,
                              (int)n_layers, has_output, &t->info.wanted, &t->info.reason);
        size_t bytes;
        if (!tp_tensor_bytes(t->info.type, (size_t)t->rows, (size_t)t->info.ne[0], &bytes))
            return tp_fail(err, TP_ERR_FORMAT, "%s: tensor '%s': size overflows", t->st->file,
                           t->st->name);
        t->info.bytes = bytes;
    }
    qsort(c->t, c->n, sizeof *c->t, cmp_tensor);
    return TP_OK;
}

static tp_status write_metadata(const char *dir, const tp_json_doc *cfg, const tp_conv_params *p,
                                tp_gguf_writer *w, tp_conv_report *rep, tp_error *err) {
    tp_status st = tp_gguf_hparams_to_gguf(cfg, w, err);
    if (st)
        return st;
    char *name = p->name ? tp_strdup(p->name) : dir_name(dir);
    if (!name)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "convert: out of memory");
    st = tp_gguf_set_str(w, "general.type", "model", err);
    if (st == TP_OK)
        st = tp_gguf_set_str(w, "general.name", name, err);
    tp_free(name);
    if (st || (st = tp_gguf_set_u32(w, "general.file_type", tp_conv_file_type(p->type), err)) ||
        (st = tp_gguf_set_u32(w, "general.quantization_version", 2, err)))
        return st;
    if (p->no_tokenizer) {
        rep->tokenizer_skip = tp_strdup("--no-tokenizer given");
        return rep->tokenizer_skip ? TP_OK
                                   : tp_fail(err, TP_ERR_OUT_OF_MEMORY, "convert: out of memory");
    }
    int64_t vocab = 0;
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(cfg->root, "text_config");
    if ((st = tp_json_int(cfg, cJSON_IsObject(text) ? text : cfg->root, "vocab_size", 0, &vocab,
                          err)))
        return st;
    tp_tok_gguf_export_params xp = tp_tok_gguf_export_default_params();
    xp.vocab_size = vocab > 0 ? (size_t)vocab : 0;
    tp_tok_gguf_desc *d = NULL;
    tp_error te;
    st = tp_tok_gguf_export(dir, &xp, &d, &te);
    if (st == TP_ERR_NOT_FOUND) {
        /* a checkpoint without tokenizer files (e.g. the golden test models) */
        rep->tokenizer_skip = tp_strdup(te.message);
        return rep->tokenizer_skip ? TP_OK
                                   : tp_fail(err, TP_ERR_OUT_OF_MEMORY, "convert: out of memory");
    }
    if (st)
        return tp_fail(err, st, "tokenizer: %s (--no-tokenizer converts the weights without it)",
                       te.message);
    st = tp_gguf_set_tokenizer(w, d, err);
    rep->has_tokenizer = st == TP_OK;
    rep->has_chat_template = st == TP_OK && (d->chat_template.s || d->n_named_templates);
    tp_tok_gguf_desc_free(d);
    return st;
}

tp_status tp_convert(const char *dir, const char *out_path, const tp_conv_params *params,
                     tp_conv_report *rep_out, tp_error *err) {
    tp_conv_params p = params ? *params : tp_conv_default_params();
    tp_conv_report rep;
    memset(&rep, 0, sizeof rep);
    if (rep_out)
        memset(rep_out, 0, sizeof *rep_out);
    if ((unsigned)p.type >= TP_CONV_TYPE_COUNT)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "convert: unknown output type %d", p.type);
    if (!p.overwrite && tp_file_exists(out_path))
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "%s exists (pass --force to overwrite it)",
                       out_path);
    tp_json_doc cfg = {0};
    tp_st_model *st_model = NULL;
    tp_gguf_writer *w = NULL;
    conv_ctx c;
    memset(&c, 0, sizeof c);
    c.dir = dir;
    c.pool = p.pool;
    c.params = &p;
    char *cpath = tp_path_join(dir, "config.json");
    tp_status st = cpath ? tp_json_load(cpath, &cfg, err)
                         : tp_fail(err, TP_ERR_OUT_OF_MEMORY, "convert: out of memory");
    tp_free(cpath);
    tp_gguf_arch arch = TP_GGUF_ARCH_UNKNOWN;
    if (st == TP_OK) {
        arch = tp_gguf_arch_from_config(&cfg);
        if (arch == TP_GGUF_ARCH_UNKNOWN) {
            const cJSON *mt = cJSON_GetObjectItemCaseSensitive(cfg.root, "model_type");
            st = tp_fail(err, TP_ERR_UNSUPPORTED,
                         "%s/config.json: model_type '%s': convert writes Qwen3 and Gemma3 "
                         "decoders",
                         dir, cJSON_IsString(mt) ? mt->valuestring : "(none)");
        }
    }
    if (st == TP_OK)
        st = tp_st_open(dir, &st_model, err);
    if (st == TP_OK)
        st = collect_tensors(dir, &cfg, arch, st_model, p.type, &c, err);
    if (st == TP_OK && !(w = tp_gguf_writer_new()))
        st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "convert: out of memory");
    if (st == TP_OK)
        st = write_metadata(dir, &cfg, &p, w, &rep, err);
    for (size_t i = 0; st == TP_OK && i < c.n; i++) {
        const conv_tensor *t = &c.t[i];
        st = tp_gguf_add_tensor(w, t->info.name, t->info.type, t->info.n_dims, t->info.ne, NULL,
                                err);
    }
    /* the report's table before the file: no allocation can fail once it is written */
    if (st == TP_OK && !(rep.tensors = tp_calloc(c.n, sizeof *rep.tensors)))
        st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "convert: out of memory");
    if (st == TP_OK)
        st = tp_gguf_write(w, out_path, fill_rows, &c, err);
    if (st == TP_OK) {
        rep.arch = tp_gguf_arch_name(arch);
        rep.bytes_in = c.bytes_in;
        for (size_t i = 0; i < c.n; i++) {
            rep.tensors[i] = c.t[i].info;
            c.t[i].info.name = c.t[i].info.hf_name = NULL; /* moved */
            rep.bytes_out += rep.tensors[i].bytes;
            rep.n_fallback += rep.tensors[i].reason == TP_CONV_FALLBACK;
        }
        rep.n_tensors = c.n;
        FILE *f = fopen(out_path, "rb");
        if (f && fseek(f, 0, SEEK_END) == 0)
            rep.file_bytes = (uint64_t)ftell(f);
        if (f)
            fclose(f);
    }
    for (size_t i = 0; i < c.n; i++) {
        tp_free(c.t[i].info.name);
        tp_free(c.t[i].info.hf_name);
    }
    tp_free(c.t);
    tp_aligned_free(c.scratch);
    tp_gguf_writer_free(w);
    tp_st_close(st_model);
    tp_json_free(&cfg);
    if (st == TP_OK && rep_out)
        *rep_out = rep;
    else
        tp_conv_report_free(&rep);
    return st;
}
