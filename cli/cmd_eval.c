/* spikebridge eval: argument parsing only until issue 8 lands. */
#include "cli/cli.h"

static const char usage[] =
"Usage: spikebridge eval SNN.h5 [--data DIR] [--steps T] [--backend clocked|event]\n"
    "                        [--limit N] [--record OUT.h5] [--quiet]\n\n"
    "Evaluate a converted SNN on the test set: accuracy at every step up to T.\n";

int sb_cmd_eval(int argc, char **argv) {
  static const struct option opts[] = {
      {"data", required_argument, 0, 1},
      {"steps", required_argument, 0, 2},
      {"backend", required_argument, 0, 3},
      {"limit", required_argument, 0, 4},
      {"record", required_argument, 0, 5},
      {"help", no_argument, 0, 'h'},
      {"quiet", no_argument, 0, 'q'},
      {0, 0, 0, 0}};
  sb_cli_getopt_reset();
  int c;
  while ((c = sb_cli_getopt("eval", usage, argc, argv, ":hq", opts)) != -1) {
    if (c == SB_CLI_HELP) return 0;
    if (c == SB_CLI_BADOPT) return 2;
  }
  return sb_cli_not_built("eval", "8");
}
