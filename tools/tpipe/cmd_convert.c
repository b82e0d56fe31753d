/*
 * cmd_convert.c — `tpipe convert --model M --output FILE.gguf --type T`:
 * writes a Qwen3 or Gemma3 checkpoint as a GGUF v3 file (src/convert), the
 * way llama.cpp's convert_hf_to_gguf.py + llama-quantize would. It takes no
 * items; stdout stays empty. stderr: the tensors that fell back to another
 * type (always), a progress bar (terminal, not --quiet) and a summary line
 * (not --quiet). Exit 0, or 2 with one line `tpipe convert: <reason>`.
 */
#include "cli.h"
#include "convert/convert.h"

#include <stdlib.h>
#include <string.h>

typedef struct cv_progress {
    cli_progress bar;
} cv_progress;

static void on_tensor(void *user, size_t i, size_t n, const tp_conv_tensor *t) {
    (void)t;
    cv_progress *p = user;
    cli_progress_update(&p->bar, (double)i, (double)n, n ? (double)i / (double)n : -1, "tensors",
                        false);
}

int cmd_convert(int argc, char **argv) {
    const char *type = "f16", *name = NULL;
    bool force = false, no_tokenizer = false, verbose = false;
    const cli_opt opts[] = {
        {"--type", CLI_STRING, &type, "T",
         "f32 | f16 (default) | bf16 | q8_0 | q4_k | q6_k | q4_k_m", 0, 0, NULL},
        {"--force", CLI_FLAG, &force, NULL, "overwrite FILE when it exists", 0, 0, NULL},
        {"--name", CLI_STRING, &name, "NAME", "general.name (default: the model folder's name)", 0,
         0, NULL},
        {"--no-tokenizer", CLI_FLAG, &no_tokenizer, NULL,
         "write no tokenizer.ggml.* metadata (weights only)", 0, 0, NULL},
        {"--verbose", CLI_FLAG, &verbose, NULL, "list every tensor with its type on stderr", 0, 0,
         NULL},
        CLI_OPT_END,
    };
    cli_common common;
    int rc = cli_parse(
        argc, argv,
        "usage: tpipe convert --model M --output FILE.gguf [--type T] [--force] [options]\n\n"
        "Writes a Qwen3 or Gemma3 checkpoint (a local folder or a Hugging Face id) as a\n"
        "GGUF v3 file with the metadata, tensor names and tensor types of llama.cpp's\n"
        "convert_hf_to_gguf.py (f32, f16, bf16, q8_0) and llama-quantize (q4_k, q6_k,\n"
        "q4_k_m). 1-D tensors and norms stay F32; a matrix whose rows are not a whole\n"
        "number of blocks falls back to Q8_0 (rows a multiple of 32) or F16, and is\n"
        "listed on stderr. --threads sets the quantization threads (the file's bytes do\n"
        "not depend on it).",
        opts, &common, true);
    if (rc)
        return rc;
    tp_conv_params p = tp_conv_default_params();
    if (!tp_conv_type_parse(type, &p.type)) {
        cli_common_free(&common);
        return cli_fatal(argv[0],
                         "--type must be f32, f16, bf16, q8_0, q4_k, q6_k or q4_k_m, got "
                         "\"%s\"",
                         type);
    }
    if (!common.output || !strcmp(common.output, "-")) {
        cli_common_free(&common);
        return cli_fatal(argv[0], "--output FILE.gguf is required (a GGUF file is not written to "
                                  "stdout)");
    }
    if (common.texts.n) {
        cli_common_free(&common);
        return cli_fatal(argv[0], "convert takes no texts");
    }
    if (!force && tp_file_exists(common.output)) {
        rc = cli_fatal(argv[0], "%s exists (pass --force to overwrite it)", common.output);
        cli_common_free(&common);
        return rc;
    }
    char *dir = cli_resolve_model(argv[0], &common, TP_RESOLVE_ALL);
    if (!dir) {
        cli_common_free(&common);
        return CLI_EXIT_FATAL;
    }
    tp_error err;
    tp_pool *pool = tp_pool_create((int)common.threads, &err);
    if (!pool) {
        free(dir);
        rc = cli_fatal(argv[0], "%s", err.message);
        cli_common_free(&common);
        return rc;
    }
    cv_progress prog;
    cli_progress_init(&prog.bar, common.quiet, "tensors");
    p.pool = pool;
    p.overwrite = force;
    p.name = name;
    p.no_tokenizer = no_tokenizer;
    p.progress = on_tensor;
    p.progress_user = &prog;
    tp_conv_report rep;
    double t0 = tp_now();
    tp_status st = tp_convert(dir, common.output, &p, &rep, &err);
    cli_progress_finish(&prog.bar);
    double secs = tp_now() - t0;
    if (st != TP_OK) {
        rc = cli_fatal(argv[0], "%s", err.message);
    } else {
        for (size_t i = 0; i < rep.n_tensors; i++) {
            const tp_conv_tensor *t = &rep.tensors[i];
            if (t->reason == TP_CONV_FALLBACK)
                fprintf(stderr,
                        "tpipe convert: %s: rows of %lld are not a multiple of the %s block "
                        "(%zu): using fallback type %s\n",
                        t->name, (long long)t->ne[0], tp_dtype_name(t->wanted),
                        tp_dtype_block(t->wanted), tp_dtype_name(t->type));
            if (verbose)
                fprintf(stderr, "  %-36s %-44s [%lld, %lld] %s -> %s\n", t->name, t->hf_name,
                        (long long)t->ne[0], (long long)t->ne[1], tp_dtype_name(t->src),
                        tp_dtype_name(t->type));
        }
        if (!common.quiet) {
            fprintf(stderr,
                    "tpipe convert: wrote %s: %s, %zu tensors (%zu fell back), %.1f MB of tensors "
                    "from %.1f MB, file %.1f MB, tokenizer: %s, %.1f s\n",
                    common.output, tp_conv_type_name(p.type), rep.n_tensors, rep.n_fallback,
                    (double)rep.bytes_out / 1e6, (double)rep.bytes_in / 1e6,
                    (double)rep.file_bytes / 1e6,
                    rep.has_tokenizer ? (rep.has_chat_template ? "yes, with chat template" : "yes")
                                      : (rep.tokenizer_skip ? rep.tokenizer_skip : "no"),
                    secs);
        }
        tp_conv_report_free(&rep);
    }
    tp_pool_destroy(pool);
    free(dir);
    cli_common_free(&common);
    return rc;
}
