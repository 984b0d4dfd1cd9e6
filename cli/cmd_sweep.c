/* spikebridge sweep: argument parsing only until issue 6 lands. */
#include "cli/cli.h"

static const char usage[] =
"Usage: spikebridge sweep SWEEP.json [--array-index I] [--quiet]\n\n"
    "Run a parameter sweep: one run by index (or SLURM_ARRAY_TASK_ID), or all in turn.\n";

int sb_cmd_sweep(int argc, char **argv) {
  static const struct option opts[] = {
      {"array-index", required_argument, 0, 1},
      {"help", no_argument, 0, 'h'},
      {"quiet", no_argument, 0, 'q'},
      {0, 0, 0, 0}};
  sb_cli_getopt_reset();
  int c;
  while ((c = sb_cli_getopt("sweep", usage, argc, argv, ":hq", opts)) != -1) {
    if (c == SB_CLI_HELP) return 0;
    if (c == SB_CLI_BADOPT) return 2;
  }
  return sb_cli_not_built("sweep", "6");
}
