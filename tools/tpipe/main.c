/*
 * main.c — tpipe entry point: dispatches to a subcommand from the table in
 * commands.c and prints the overview for `tpipe`, `tpipe --help` and unknown
 * subcommands (exit 2 for the latter, as for any bad argument).
 */
#include "cli.h"

#include <string.h>

static void overview(FILE *f) {
    fprintf(f,
            "tpipe %d.%d.%d — run Hugging Face transformer checkpoints on the CPU\n\n"
            "usage: tpipe <command> --model M [options] [texts...]\n\ncommands:\n",
            TPIPE_VERSION_MAJOR, TPIPE_VERSION_MINOR, TPIPE_VERSION_PATCH);
    for (size_t i = 0; i < cli_n_commands; i++)
        fprintf(f, "  %-15s %s\n", cli_commands[i].name, cli_commands[i].summary);
    fprintf(f, "\n`tpipe <command> --help` lists the options of a command.\n"
               "Input: texts after the options, else JSON lines (or raw lines) on stdin/--input.\n"
               "Output: one JSON object per item and line; exit 0 ok, 1 some items failed,\n"
               "2 batch-level failure.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        overview(stderr);
        return CLI_EXIT_FATAL;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        overview(stdout);
        return CLI_EXIT_OK;
    }
    if (!strcmp(name, "--version")) {
        printf("tpipe %d.%d.%d\n", TPIPE_VERSION_MAJOR, TPIPE_VERSION_MINOR, TPIPE_VERSION_PATCH);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < cli_n_commands; i++)
        if (!strcmp(name, cli_commands[i].name)) {
            int rc = cli_commands[i].main(argc - 1, argv + 1);
            return rc == CLI_EXIT_HELP ? CLI_EXIT_OK : rc;
        }
    fprintf(stderr, "tpipe: unknown command \"%s\" (try tpipe --help)\n", name);
    return CLI_EXIT_FATAL;
}
