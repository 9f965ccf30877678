/* The ogi command-line tool: one function per subcommand. */
#ifndef OGI_CLI_H
#define OGI_CLI_H

#include <stdbool.h>

#include "ogi.h"

int cli_conformance(int argc, char **argv);
int cli_info(int argc, char **argv);
int cli_run(int argc, char **argv);
int cli_chat(int argc, char **argv);
int cli_perplexity(int argc, char **argv);
/* Parses --attention's value ("exact" or "int8"); false when it is neither. */
bool cli_parse_attention(const char *value, ogi_attention_precision *out);
/* Parses a whole decimal integer in [min, max] (no trailing characters);
 * false, with *out untouched, for anything else. */
bool cli_parse_long(const char *s, long min, long max, long *out);
int cli_synth_weights(int argc, char **argv);
int cli_bench(int argc, char **argv);
int cli_kv_rewrite(int argc, char **argv);
/* tokenize, detokenize and chat-template, told apart by argv[0]. */
int cli_tokenizer(int argc, char **argv);

#endif
