/* Shared helpers of the command-line front end: subcommand table, argument parsing,
 * mapping library status codes to messages and exit codes. No science here. */
#ifndef SB_CLI_H
#define SB_CLI_H

#include <getopt.h>
#include <stdio.h>

typedef struct {
  const char *name;     /* "run" */
  const char *summary;  /* one line for `spikebridge --help` */
  int (*main)(int argc, char **argv);  /* argv[0] is the subcommand name */
} sb_cli_cmd;

extern const sb_cli_cmd sb_cli_cmds[];   /* NULL-name terminated */

int sb_cmd_run(int argc, char **argv);
int sb_cmd_train(int argc, char **argv);
int sb_cmd_convert(int argc, char **argv);
int sb_cmd_eval(int argc, char **argv);
int sb_cmd_analyze(int argc, char **argv);
int sb_cmd_sweep(int argc, char **argv);
int sb_cmd_info(int argc, char **argv);
int sb_cmd_stdp_train(int argc, char **argv);

/* Print "spikebridge: error: <last library error>" to stderr; return the exit code of `status`. */
int sb_cli_fail(int status);
/* Print "spikebridge <cmd>: <message>" and "Try 'spikebridge <cmd> --help'." to stderr; return 2. */
int sb_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parse a whole string as a number; on failure print a usage error naming the flag and return 2
 * (the caller returns that as exit status). 0 on success. */
int sb_cli_double(const char *cmd, const char *flag, const char *s, double *v);
int sb_cli_long(const char *cmd, const char *flag, const char *s, long lo, long hi, long *v);

/* getopt_long wrapper (shortopts must start with ":"): handles --help (prints `usage`, returns -2 after which the caller
 * exits 0) and unknown options or missing arguments (message, returns -3: exit 2).
 * Otherwise returns what getopt_long returns. Call sb_cli_getopt_reset() first. */
int sb_cli_getopt(const char *cmd, const char *usage, int argc, char **argv, const char *shortopts,
                  const struct option *longopts);
void sb_cli_getopt_reset(void);
#define SB_CLI_HELP (-2)
#define SB_CLI_BADOPT (-3)

/* For subcommands whose issue has not landed: say so and return 1. */
int sb_cli_not_built(const char *cmd, const char *issue);

#endif
