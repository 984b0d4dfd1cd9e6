/* spikebridge run: argument parsing only until issue 3 lands. */
#include "cli/cli.h"

static const char usage[] =
"Usage: spikebridge run MODEL.json [-o OUT.h5] [--t-stop MS] [--seed N] [--threads N]\n"
    "                       [--set PATH=VALUE]... [--quiet]\n\n"
    "Simulate the spiking network described by MODEL.json; spikes go to OUT.h5 (SONATA).\n\n"
    "  -o, --output OUT.h5   output file (default: simulation.output of the model)\n"
    "      --t-stop MS       biological time to simulate, ms\n"
    "      --seed N          master seed\n"
    "      --threads N       OpenMP threads\n"
    "      --set PATH=VALUE  override a model value, e.g. populations.exc.params.tau_m=15\n"
    "  -q, --quiet           no progress line\n";

int sb_cmd_run(int argc, char **argv) {
  static const struct option opts[] = {
      {"output", required_argument, 0, 'o'},
      {"t-stop", required_argument, 0, 1},
      {"seed", required_argument, 0, 2},
      {"threads", required_argument, 0, 3},
      {"set", required_argument, 0, 4},
      {"help", no_argument, 0, 'h'},
      {"quiet", no_argument, 0, 'q'},
      {0, 0, 0, 0}};
  sb_cli_getopt_reset();
  int c;
  while ((c = sb_cli_getopt("run", usage, argc, argv, ":ho:q", opts)) != -1) {
    if (c == SB_CLI_HELP) return 0;
    if (c == SB_CLI_BADOPT) return 2;
  }
  return sb_cli_not_built("run", "3");
}
