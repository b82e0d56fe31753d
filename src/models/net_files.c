/*
 * net_files.c — opens what a net is loaded from: a Hugging Face model folder
 * (config.json + safetensors) or a GGUF checkpoint (src/io/gguf.h: its
 * metadata becomes a config.json-style document and its tensors a table with
 * HF names), so every caller (tp_model_load, golden_check, benchmarks) loads
 * both the same way through tp_net_load.
 */
#include "models/model.h"
#include "io/gguf.h"

#include <string.h>

void tp_net_files_close(tp_net_files *f) {
    if (!f)
        return;
    tp_st_close(f->st); /* before the GGUF mapping its table points into */
    tp_gguf_close(f->gguf);
    tp_json_free(&f->config);
    tp_free(f->dir);
    tp_free(f->gguf_path);
    memset(f, 0, sizeof *f);
}

tp_status tp_net_files_open(const char *path, tp_net_files *f, tp_error *err) {
    if (!f)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_net_files_open: NULL argument");
    memset(f, 0, sizeof *f);
    if (!path || !*path)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_net_files_open: empty path");
    tp_status st;
    if (tp_gguf_checkpoint_path(path, &f->gguf_path)) {
        const char *slash = strrchr(f->gguf_path, '/');
        f->dir = slash ? tp_strndup(f->gguf_path,
                                    slash == f->gguf_path ? 1 : (size_t)(slash - f->gguf_path))
                       : tp_strdup(".");
        if (!f->dir)
            st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        else if ((st = tp_gguf_open(f->gguf_path, &f->gguf, err)) == TP_OK)
            st = tp_gguf_open_hf(f->gguf, &f->config, &f->st, &f->norm_plus_one_stored, err);
    } else {
        char *cfg = tp_path_join(path, "config.json");
        f->dir = tp_strdup(path);
        if (!cfg || !f->dir)
            st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        else if ((st = tp_json_load(cfg, &f->config, err)) == TP_OK)
            st = tp_st_open(path, &f->st, err);
        tp_free(cfg);
    }
    if (st != TP_OK)
        tp_net_files_close(f);
    return st;
}

tp_net_load_args tp_net_files_args(const tp_net_files *f, tp_compute compute) {
    tp_net_load_args a = {.dir = f->dir,
                          .config = &f->config,
                          .st = f->st,
                          .compute = compute,
                          .norm_plus_one_stored = f->norm_plus_one_stored};
    return a;
}
