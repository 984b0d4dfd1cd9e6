/* spikebridge convert: argument parsing only until issue 8 lands. */
#include "cli/cli.h"

static const char usage[] =
"Usage: spikebridge convert MODEL.h5 [-o SNN.h5] [--norm max|percentile:99.9]\n"
    "                           [--reset subtract|zero] [--data DIR] [--quiet]\n\n"
    "Convert a trained ANN into a spiking network of integrate-and-fire neurons.\n";

int sb_cmd_convert(int argc, char **argv) {
  static const struct option opts[] = {
      {"output", required_argument, 0, 'o'},
      {"norm", required_argument, 0, 1},
      {"reset", required_argument, 0, 2},
      {"data", required_argument, 0, 3},
      {"help", no_argument, 0, 'h'},
      {"quiet", no_argument, 0, 'q'},
      {0, 0, 0, 0}};
  sb_cli_getopt_reset();
  int c;
  while ((c = sb_cli_getopt("convert", usage, argc, argv, ":ho:q", opts)) != -1) {
    if (c == SB_CLI_HELP) return 0;
    if (c == SB_CLI_BADOPT) return 2;
  }
  return sb_cli_not_built("convert", "8");
}
