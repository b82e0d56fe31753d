/*
 * resolve.c — --model for every subcommand: a local folder, or a Hugging Face
 * id resolved in the local cache and downloaded when missing (tp_model_resolve,
 * src/net), with a download progress bar on stderr.
 */
#include "cli.h"
#include "io/gguf.h"
#include "io/resolve.h"

#include <stdlib.h>
#include <string.h>

#ifndef TPIPE_NO_NET
typedef struct dl_state {
    bool quiet;
    cli_progress bar;
    char file[256];
} dl_state;

/* One bar line per file: a new file ends the previous line. */
static int on_download(const char *file, uint64_t done, uint64_t total, void *user) {
    dl_state *s = user;
    if (strcmp(s->file, file)) {
        cli_progress_finish(&s->bar);
        snprintf(s->file, sizeof s->file, "%s", file);
        cli_progress_init(&s->bar, s->quiet, s->file);
    }
    cli_progress_update(&s->bar, (double)done, (double)total, -1, "B", total && done == total);
    return 0;
}
#endif

char *cli_resolve_model(const char *cmd, const cli_common *common, unsigned files) {
    /* A GGUF checkpoint (a .gguf file, or a folder with exactly one) is used as it is. */
    char *gguf = NULL;
    if (tp_gguf_checkpoint_path(common->model, &gguf))
        return gguf;
#ifdef TPIPE_NO_NET
    /* built without libcurl: local folders and the local cache only */
    (void)files;
    char *dir = NULL;
    tp_error err;
    if (tp_resolve_local(common->model, &dir, &err) != TP_OK) {
        cli_fatal(cmd, "model %s: %s (this tpipe was built without libcurl: no downloads)",
                  common->model, err.message);
        return NULL;
    }
    return dir;
#else
    dl_state st;
    memset(&st, 0, sizeof st);
    st.quiet = common->quiet;
    tp_resolve_params rp = tp_resolve_default_params();
    rp.files = files;
    rp.progress = on_download;
    rp.progress_user = &st;
    char *path = NULL;
    tp_error err;
    tp_status s = tp_model_resolve(common->model, &rp, &path, &err);
    cli_progress_finish(&st.bar);
    if (s != TP_OK) {
        /* say both readings, in case a local folder name was mistyped */
        cli_fatal(cmd, "model %s: no such folder, and as a Hugging Face id: %s", common->model,
                  err.message);
        return NULL;
    }
    return path;
#endif
}

static const char *task_name(tp_model_task t) {
    switch (t) {
    case TP_TASK_FILL_MASK:
        return "a masked language model (fill-mask)";
    case TP_TASK_TEXT_CLASSIFICATION:
        return "a sequence-classification model (sentiment, zero-shot)";
    case TP_TASK_TEXT_GENERATION:
        return "a text-generation model (generate)";
    default:
        return "a model without a task head";
    }
}

/* Prints "model M is ...; cmd needs ..." and returns CLI_EXIT_FATAL unless the
 * model's task is `want`. */
static int check_task(const char *cmd, const cli_common *common, const tp_model *m,
                      tp_model_task want) {
    tp_model_task t = tp_model_get_task(m);
    if (t == want)
        return 0;
    return cli_fatal(cmd, "model %s is %s; %s needs %s", common->model, task_name(t), cmd,
                     task_name(want));
}

int cli_load_model(const char *cmd, const cli_common *common, unsigned files, tp_model_task want,
                   tp_model **out) {
    *out = NULL;
    char *dir = cli_resolve_model(cmd, common, files);
    if (!dir)
        return CLI_EXIT_FATAL;
    tp_model_params mp = tp_model_default_params();
    mp.n_threads = (int)common->threads;
    mp.precision = strcmp(common->precision, "bf16") ? TP_PRECISION_F32 : TP_PRECISION_BF16;
    mp.max_batch_tokens = (size_t)common->max_batch_tokens;
    tp_error err;
    tp_status s = tp_model_load(dir, &mp, out, &err);
    free(dir);
    if (s != TP_OK)
        return cli_fatal(cmd, "cannot load model %s: %s", common->model, err.message);
    int rc = check_task(cmd, common, *out, want);
    if (rc) {
        tp_model_free(*out);
        *out = NULL;
    }
    return rc;
}
