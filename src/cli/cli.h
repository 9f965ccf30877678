/* The ogi command-line tool: one function per subcommand. */
#ifndef OGI_CLI_H
#define OGI_CLI_H

int cli_conformance(int argc, char **argv);
int cli_info(int argc, char **argv);

#endif
