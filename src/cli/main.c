#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "ogi.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} cli_commands[] = {
    {"conformance", cli_conformance, "run ONNX backend test folders and compare outputs"},
    {"info", cli_info, "describe an ONNX model: opsets, inputs, outputs, ops, parameters"},
    {"run", cli_run, "generate text from a prompt with a model directory"},
    {"chat", cli_chat, "chat with a model directory through its chat template"},
    {"perplexity", cli_perplexity, "mean cross-entropy and perplexity of a text file"},
    {"bench", cli_bench, "load, prefill and decode speed and memory, per backend"},
    {"synth-weights", cli_synth_weights, "write seeded random weights for a weight-stripped graph"},
    {"kv-rewrite", cli_kv_rewrite, "make a concat-style KV cache fixed-size, updated in place"},
    {"tokenize", cli_tokenizer, "encode text with a model directory's tokenizer"},
    {"detokenize", cli_tokenizer, "decode token ids with a model directory's tokenizer"},
    {"chat-template", cli_tokenizer, "render a model directory's chat template for messages"},
};

static void cli_usage(FILE *f)
{
    fprintf(f, "ogi %s — ONNX GenAI Interface\n\nusage: ogi COMMAND [ARGS]\n\ncommands:\n",
            OGI_VERSION);
    for (size_t i = 0; i < sizeof(cli_commands) / sizeof(cli_commands[0]); i++)
        fprintf(f, "  %-12s %s\n", cli_commands[i].name, cli_commands[i].summary);
    fprintf(f, "\n'ogi COMMAND --help' describes a command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        cli_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("ogi %s\n", OGI_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof(cli_commands) / sizeof(cli_commands[0]); i++)
        if (strcmp(argv[1], cli_commands[i].name) == 0)
            return cli_commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "ogi: unknown command '%s'\n\n", argv[1]);
    cli_usage(stderr);
    return 2;
}
