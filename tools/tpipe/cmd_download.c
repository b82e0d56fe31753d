/*
 * cmd_download.c — `tpipe download --model org/name[@revision]`: fetches the
 * files a pipeline needs into the Hugging Face cache (or finds them there) and
 * prints the local folder, like `huggingface-cli download`. It takes no items;
 * stdout is the one path line. Exit 0, or 2 with the reason on stderr.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

int cmd_download(int argc, char **argv) {
    const char *what = "all";
    const cli_opt opts[] = {
        {"--files", CLI_STRING, &what, "SET",
         "all (default), tokenizer (tokenizer files only) or config (config files only)", 0, 0,
         NULL},
        CLI_OPT_END,
    };
    cli_common common;
    int rc = cli_parse(argc, argv,
                       "usage: tpipe download --model org/name[@revision] [--files SET]\n\n"
                       "Downloads what the pipelines need (config, tokenizer files, safetensors\n"
                       "weights) into the Hugging Face cache, or finds it there, and prints the\n"
                       "local folder. Honours HF_ENDPOINT, HF_TOKEN, HF_HOME, HF_HUB_CACHE and\n"
                       "HF_HUB_OFFLINE.",
                       opts, &common, true);
    if (rc)
        return rc;
    unsigned files = !strcmp(what, "all")         ? TP_RESOLVE_ALL
                     : !strcmp(what, "tokenizer") ? TP_RESOLVE_TOKENIZER
                     : !strcmp(what, "config")    ? TP_RESOLVE_CONFIG
                                                  : 0;
    if (!files) {
        cli_common_free(&common);
        return cli_fatal(argv[0], "--files must be all, tokenizer or config, got \"%s\"", what);
    }
    if (common.texts.n) {
        cli_common_free(&common);
        return cli_fatal(argv[0], "download takes no texts");
    }
    char *dir = cli_resolve_model(argv[0], &common, files);
    cli_common_free(&common);
    if (!dir)
        return CLI_EXIT_FATAL;
    printf("%s\n", dir);
    free(dir);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FATAL;
}
