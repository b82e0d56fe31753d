/*
 * gguf_conv.h — a minimal HF folder -> GGUF converter for tests (F32/F16/BF16
 * only), following llama.cpp's convert_hf_to_gguf.py: tensor names and config
 * keys from the src/io/gguf.h tables, ggml dims (HF shape reversed), 1-D
 * tensors stored as F32, Gemma3 norm weights stored as 1 + w (added in f32).
 * Matrices keep the checkpoint's dtype unless `mat_dtype` forces one of
 * F32/F16/BF16 (the conversion is exact from BF16/F16 to F32 only).
 */
#ifndef TP_GGUF_CONV_H
#define TP_GGUF_CONV_H

#include "io/config.h"
#include "io/gguf.h"
#include "io/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Adds keys before the tensors are written (e.g. the tokenizer). */
typedef tp_status (*gguf_conv_extra_fn)(tp_gguf_writer *w, void *user, tp_error *err);

/* mat_dtype: TP_DTYPE_COUNT = keep the checkpoint's dtype. extra may be NULL. */
static inline tp_status gguf_conv_ex(const char *hf_dir, const char *out_path, tp_dtype mat_dtype,
                                     gguf_conv_extra_fn extra, void *user, tp_error *err) {
    char cfg_path[4200];
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", hf_dir);
    tp_json_doc doc = {0};
    tp_st_model *st = NULL;
    tp_gguf_writer *w = NULL;
    void **bufs = NULL;
    size_t n = 0;
    tp_status s = tp_json_load(cfg_path, &doc, err);
    if (s == TP_OK)
        s = tp_st_open(hf_dir, &st, err);
    if (s != TP_OK)
        goto done;
    tp_gguf_arch arch = tp_gguf_arch_from_config(&doc);
    w = tp_gguf_writer_new();
    if ((s = tp_gguf_set_str(w, "general.name", "tpipe test", err)) ||
        (s = tp_gguf_hparams_to_gguf(&doc, w, err)))
        goto done;
    /* llama.cpp's converter writes the special ids with the tokenizer keys. */
    int64_t bos = -1;
    if ((s = tp_json_int(&doc, doc.root, "bos_token_id", -1, &bos, err)))
        goto done;
    if (bos >= 0 && (s = tp_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos, err)))
        goto done;
    if (extra && (s = extra(w, user, err)))
        goto done;
    n = tp_st_count(st);
    bufs = calloc(n ? n : 1, sizeof *bufs);
    for (size_t i = 0; i < n; i++) {
        const tp_st_tensor *t = tp_st_at(st, i);
        char name[256];
        bool norm = false;
        tp_gguf_map mres = tp_gguf_name_to_gguf(arch, t->name, name, sizeof name, &norm);
        if (mres == TP_GGUF_MAP_SKIP)
            continue;
        if (mres != TP_GGUF_MAP_OK) {
            s = tp_fail(err, TP_ERR_FORMAT, "%s: no GGUF name for '%s'", hf_dir, t->name);
            goto done;
        }
        int64_t ne[TP_GGUF_MAX_DIMS];
        for (int d = 0; d < t->n_dims; d++)
            ne[d] = t->shape[t->n_dims - 1 - d];
        tp_dtype dt = t->n_dims == 1                ? TP_DTYPE_F32
                      : mat_dtype == TP_DTYPE_COUNT ? t->dtype
                                                    : mat_dtype;
        const void *data = t->data;
        if (dt != t->dtype || (norm && arch == TP_GGUF_ARCH_GEMMA3)) {
            float *f = NULL;
            if ((s = tp_st_to_f32(t, &f, err)))
                goto done;
            bufs[i] = f;
            if (norm)
                for (int64_t k = 0; k < t->n_elems; k++)
                    f[k] = f[k] + tp_gguf_norm_shift(arch);
            if (dt == TP_DTYPE_BF16 || dt == TP_DTYPE_F16) {
                uint16_t *h = (uint16_t *)f; /* in place: 2 bytes per 4 */
                for (int64_t k = 0; k < t->n_elems; k++) {
                    if (dt == TP_DTYPE_BF16) {
                        h[k] = tp_f32_to_bf16(f[k]);
                    } else {
                        s = tp_fail(err, TP_ERR_UNSUPPORTED, "gguf_conv: F16 output");
                        goto done;
                    }
                }
            }
            data = f;
        }
        if ((s = tp_gguf_add_tensor(w, name, dt, t->n_dims, ne, data, err)))
            goto done;
    }
    s = tp_gguf_write(w, out_path, NULL, NULL, err);
done:
    for (size_t i = 0; bufs && i < n; i++)
        tp_free(bufs[i]);
    free(bufs);
    tp_gguf_writer_free(w);
    tp_st_close(st);
    tp_json_free(&doc);
    return s;
}

static inline tp_status gguf_conv(const char *hf_dir, const char *out_path, tp_dtype mat_dtype,
                                  tp_error *err) {
    return gguf_conv_ex(hf_dir, out_path, mat_dtype, NULL, NULL, err);
}

#endif
