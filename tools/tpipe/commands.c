/*
 * commands.c — the subcommand table of tpipe (one cmd_<name>.c per entry).
 */
#include "cli.h"

int cmd_fill_mask(int argc, char **argv);
int cmd_sentiment(int argc, char **argv);
int cmd_zero_shot(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_chat_template(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_download(int argc, char **argv);
int cmd_convert(int argc, char **argv);

const cli_command cli_commands[] = {
    {"fill-mask", "fill [MASK] tokens with a masked language model", cmd_fill_mask},
    {"sentiment", "classify texts with a sequence-classification model", cmd_sentiment},
    {"zero-shot", "score candidate labels with an NLI model", cmd_zero_shot},
    {"generate", "generate text with a Qwen3 or Gemma3 model (completion or --chat)", cmd_generate},
    {"tokenize", "ids and tokens of texts (tokenizer files only)", cmd_tokenize},
    {"download", "fetch a model from the Hugging Face hub into the local cache", cmd_download},
    {"chat-template", "render the model's chat template for conversations", cmd_chat_template},
    {"convert", "write a Qwen3 or Gemma3 checkpoint as GGUF (f16, q8_0, q4_k_m, ...)", cmd_convert},
};
const size_t cli_n_commands = sizeof cli_commands / sizeof cli_commands[0];
