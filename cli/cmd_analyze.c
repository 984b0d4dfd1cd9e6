/* spikebridge analyze: argument parsing only until issue 4 lands. */
#include "cli/cli.h"

static const char usage[] =
"Usage: spikebridge analyze SPIKES.h5 [--population P] [--t-start MS] [--t-stop MS]\n"
    "                           [--bin MS] [--json] [--plot DIR] [--quiet]\n\n"
    "Spike-train statistics per population, as a table, JSON, or figures.\n";

int sb_cmd_analyze(int argc, char **argv) {
  static const struct option opts[] = {
      {"population", required_argument, 0, 1},
      {"t-start", required_argument, 0, 2},
      {"t-stop", required_argument, 0, 3},
      {"bin", required_argument, 0, 4},
      {"json", no_argument, 0, 5},
      {"plot", required_argument, 0, 6},
      {"help", no_argument, 0, 'h'},
      {"quiet", no_argument, 0, 'q'},
      {0, 0, 0, 0}};
  sb_cli_getopt_reset();
  int c;
  while ((c = sb_cli_getopt("analyze", usage, argc, argv, ":hq", opts)) != -1) {
    if (c == SB_CLI_HELP) return 0;
    if (c == SB_CLI_BADOPT) return 2;
  }
  return sb_cli_not_built("analyze", "4");
}
