/* Argument helpers shared by the subcommands. */
#include "cli/cli.h"
#include "sim/core.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int sb_cli_fail(int status) {
  const char *msg = sb_last_error();
  fprintf(stderr, "spikebridge: error: %s\n", msg && *msg ? msg : sb_strerror(status));
  return sb_exit_code(status);
}

int sb_cli_usage_error(const char *cmd, const char *fmt, ...) {
  /* under mpirun every rank parses the same flags: rank 0 alone says what is wrong */
  const char *rank = getenv("OMPI_COMM_WORLD_RANK");
  if (!rank) rank = getenv("PMI_RANK");
  if (rank && strcmp(rank, "0")) return 2;
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "spikebridge %s: ", cmd);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\nTry 'spikebridge %s --help'.\n", cmd);
  va_end(ap);
  return 2;
}

int sb_cli_double(const char *cmd, const char *flag, const char *s, double *v) {
  char *end;
  errno = 0;
  double x = strtod(s, &end);
  /* strtod also reads hexadecimal ("0x10" = 16): a decimal number is what every flag means */
  if (!*s || *end || errno || !isfinite(x) || strpbrk(s, "xX") || isspace((unsigned char)*s))   /* "100 " was refused, " 100" not */
    return sb_cli_usage_error(cmd, "%s: expected a finite decimal number (got '%s')", flag, s);
  *v = x;
  return 0;
}

int sb_cli_long(const char *cmd, const char *flag, const char *s, long lo, long hi, long *v) {
  char *end;
  errno = 0;
  long x = strtol(s, &end, 10);
  if (!*s || *end || errno || x < lo || x > hi || isspace((unsigned char)*s))
    return sb_cli_usage_error(cmd, "%s: expected an integer in [%ld, %ld] (got '%s')", flag, lo, hi, s);
  *v = x;
  return 0;
}

void sb_cli_getopt_reset(void) {
  optind = 1;
  opterr = 0;
}

int sb_cli_getopt(const char *cmd, const char *usage, int argc, char **argv, const char *shortopts,
                  const struct option *longopts) {
  int c = getopt_long(argc, argv, shortopts, longopts, NULL);
  if (c == 'h') {
    fputs(usage, stdout);
    return SB_CLI_HELP;
  }
  if (c == ':') {
    sb_cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
    return SB_CLI_BADOPT;
  }
  if (c == '?') {
    if (optopt && optopt < 256 && argv[optind - 1][1] != '-')
      sb_cli_usage_error(cmd, "unknown option '-%c'", optopt);
    else
      sb_cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
    return SB_CLI_BADOPT;
  }
  return c;
}

int sb_cli_not_built(const char *cmd, const char *issue) {
  fprintf(stderr, "spikebridge %s: not built yet (see issue %s)\n", cmd, issue);
  return 1;
}
