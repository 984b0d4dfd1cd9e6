/* spikebridge: entry point. Parses global options, dispatches to one subcommand,
 * installs the signal handler that removes half-written output files. */
#include "cli/cli.h"
#include "sim/core.h"

#include <errno.h>
#include <gsl/gsl_errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const sb_cli_cmd sb_cli_cmds[] = {
    {"run", "simulate a spiking network from a JSON model file", sb_cmd_run},
    {"train", "train an MLP, CNN or GAN on Fashion-MNIST", sb_cmd_train},
    {"convert", "convert a trained ANN into a spiking network", sb_cmd_convert},
    {"eval", "evaluate a converted SNN (latency-accuracy curve)", sb_cmd_eval},
    {"analyze", "spike-train statistics and figures from HDF5 spike files", sb_cmd_analyze},
    {"sweep", "run a parameter sweep (grid, zip, random; Slurm arrays)", sb_cmd_sweep},
    {"stdp-train", "unsupervised STDP learning on Fashion-MNIST (Diehl & Cook 2015)", sb_cmd_stdp_train},
    {"info", "describe an HDF5 file (model, SNN, spikes) or the data set", sb_cmd_info},
    {NULL, NULL, NULL},
};

static void usage(FILE *out) {
  fprintf(out,
          "Usage: spikebridge [--quiet] COMMAND [ARGS...]\n"
          "       spikebridge --help | --version\n\n"
          "An event-driven spiking simulator and a small deep-learning toolkit, bridged.\n\n"
          "Commands:\n");
  for (const sb_cli_cmd *c = sb_cli_cmds; c->name; c++) fprintf(out, "  %-10s %s\n", c->name, c->summary);
  fprintf(out,
          "\nGlobal options:\n"
          "  -q, --quiet    no progress line\n"
          "  -h, --help     this help; 'spikebridge COMMAND --help' for a command's options\n"
          "  -V, --version  print the version\n\n"
          "Exit status: 0 success, 1 runtime failure, 2 usage or input error, 3 stopped by a signal\n"
          "with a checkpoint written (run; see 'spikebridge run --help').\n");
}

static void on_signal(int sig) {
  static const char msg[] = "spikebridge: stopped by a signal; temporary output removed\n";
  ssize_t w = write(2, msg, sizeof msg - 1);   /* async-signal-safe; it ended without a word */
  (void)w;
  sb_h5_cleanup_on_signal();
  signal(sig, SIG_DFL);
  raise(sig);
}

int main(int argc, char **argv) {
  gsl_set_error_handler_off();
  sb_h5_quiet();
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  /* a write past `ulimit -f` then fails with EFBIG and is reported like a full disk (exit 1,
   * file and reason, no temporary file) instead of SIGXFSZ ending the process without a word */
  signal(SIGXFSZ, SIG_IGN);

  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
    if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
      printf("spikebridge %s\n", SB_VERSION);
      return 0;
    }
    if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) { sb_quiet = 1; continue; }
    fprintf(stderr, "spikebridge: unknown option '%s'\n", a);
    usage(stderr);
    return 2;
  }
  if (i >= argc) {
    usage(stderr);
    return 2;
  }
  for (const sb_cli_cmd *c = sb_cli_cmds; c->name; c++)
    if (!strcmp(argv[i], c->name)) {
      int rc = c->main(argc - i, argv + i);
      /* a table or JSON that could not be written (disk full, closed pipe) is a failure */
      if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "spikebridge: error: writing standard output failed\n");
        if (rc == 0) rc = 1;
      }
      return rc;
    }
  fprintf(stderr, "spikebridge: unknown command '%s'\n", argv[i]);
  usage(stderr);
  return 2;
}
