/* spikebridge train: argument parsing only until issue 9 lands. */
#include "cli/cli.h"

static const char usage[] =
"Usage: spikebridge train {mlp|cnn|gan|ARCH.json} [--data DIR] [--epochs N] [--batch N]\n"
    "                         [--lr X] [--seed N] [-o MODEL.h5] [--quiet]\n\n"
    "Train a network on Fashion-MNIST and save it to MODEL.h5.\n";

int sb_cmd_train(int argc, char **argv) {
  static const struct option opts[] = {
      {"output", required_argument, 0, 'o'},
      {"data", required_argument, 0, 1},
      {"epochs", required_argument, 0, 2},
      {"batch", required_argument, 0, 3},
      {"lr", required_argument, 0, 4},
      {"seed", required_argument, 0, 5},
      {"help", no_argument, 0, 'h'},
      {"quiet", no_argument, 0, 'q'},
      {0, 0, 0, 0}};
  sb_cli_getopt_reset();
  int c;
  while ((c = sb_cli_getopt("train", usage, argc, argv, ":ho:q", opts)) != -1) {
    if (c == SB_CLI_HELP) return 0;
    if (c == SB_CLI_BADOPT) return 2;
  }
  return sb_cli_not_built("train", "9");
}
