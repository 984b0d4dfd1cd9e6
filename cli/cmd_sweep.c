/* spikebridge sweep: expand a sweep file, run one run (--array-index / SLURM_ARRAY_TASK_ID) or
 * every incomplete run in turn, then rewrite the summary table. Argument parsing and printing
 * only; the sweep logic is in sim/sweep.c, the statistics in analysis/. */
#include "cli/cli.h"
#include "sim/sim.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
"Usage: spikebridge sweep SWEEP.json [--array-index I] [--list] [--summary] [-o DIR]\n"
    "                         [--threads N] [--quiet]\n\n"
    "Run a parameter sweep (docs/clusters.md): a base model file plus parameters to vary\n"
    "(grid, zip or random samples) addressed by the same paths as `run --set`.\n\n"
    "  --array-index I   run only run I (default: $SLURM_ARRAY_TASK_ID if set, else every run)\n"
    "  --list            print the runs (index, status, overrides) and exit\n"
    "  --summary         only rewrite DIR/summary.csv and DIR/summary.h5 from the run files\n"
    "  -o, --output-dir DIR  run files and summary (default: the file's output_dir, else\n"
    "                    <sweep name>_runs in the working directory)\n"
    "  --force           redo runs whose output is already complete\n"
    "  --threads N       OpenMP threads per run (results do not depend on it)\n"
    "  -q, --quiet       no progress line\n\n"
    "Runs whose output file is complete are skipped, so a killed sweep is restarted by running\n"
    "the same command again. Every invocation ends by rewriting the summary table.\n";

typedef struct { sb_progress *p; double t0; size_t i, n; } prog_ctx;

static void on_progress(void *vc, double t, double t_stop, uint64_t spikes) {
  prog_ctx *c = vc;
  double wall = sb_wall_time() - c->t0;
  sb_progress_update(c->p, "run %zu/%zu  t = %.1f / %.1f ms  (%.0f%%)  %.3g spikes/s", c->i + 1, c->n, t, t_stop,
                     100.0 * t / t_stop, wall > 0 ? (double)spikes / wall : 0.0);
}

static int parse_index(const char *what, const char *s, size_t n_runs, size_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (!*s || *end || errno || v < 0 || (unsigned long long)v >= n_runs)
    return sb_cli_usage_error("sweep", "%s: expected a run index in [0, %zu] (got '%s')", what, n_runs - 1, s);
  *out = (size_t)v;
  return 0;
}

int sb_cmd_sweep(int argc, char **argv) {
  static const struct option opts[] = {
      {"array-index", required_argument, 0, 1},
      {"list", no_argument, 0, 2},
      {"summary", no_argument, 0, 3},
      {"threads", required_argument, 0, 4},
      {"force", no_argument, 0, 5},
      {"output-dir", required_argument, 0, 'o'},
      {"help", no_argument, 0, 'h'},
      {"quiet", no_argument, 0, 'q'},
      {0, 0, 0, 0}};
  sb_cli_getopt_reset();
  int c, list = 0, only_summary = 0, force = 0, quiet = sb_quiet;
  long threads = 0;
  const char *index_arg = NULL, *outdir = NULL;
  while ((c = sb_cli_getopt("sweep", usage, argc, argv, ":ho:q", opts)) != -1) {
    if (c == SB_CLI_HELP) return 0;
    if (c == SB_CLI_BADOPT) return 2;
    switch (c) {
      case 1: index_arg = optarg; break;
      case 2: list = 1; break;
      case 3: only_summary = 1; break;
      case 4:
        if (sb_cli_long("sweep", "--threads", optarg, 1, 4096, &threads)) return 2;
        break;
      case 5: force = 1; break;
      case 'o': outdir = optarg; break;
      case 'q': quiet = 1; break;
      default: break;
    }
  }
  if (optind != argc - 1)
    return sb_cli_usage_error("sweep", optind >= argc ? "missing SWEEP.json" : "expected one SWEEP.json (got %d arguments)",
                              argc - optind);
  const char *file = argv[optind];
  /* under mpirun (make MPI=1) the ranks share out the runs; each network stays in one process */
  int st = sb_mpi_init(NULL, NULL);
  if (st) return sb_cli_fail(st);
  sb_mpi_set_split(0);
  int rank = sb_mpi_rank(), ranks = sb_mpi_size();
  sb_sweep *sw;
  st = sb_sweep_load(file, outdir, &sw);
  if (st) { sb_mpi_finalize(); return sb_cli_fail(st); }

  if (list) {
    printf("sweep %s: %zu runs (%s) of %s -> %s/\n", file, sw->n_runs,
           sw->mode == SB_SWEEP_GRID ? "grid" : sw->mode == SB_SWEEP_ZIP ? "zip" : "random", sw->base, sw->output_dir);
    for (size_t i = 0; i < sw->n_runs; i++) {
      printf("%6zu  %-8s", i, sb_sweep_run_complete(sw, i) ? "complete" : "todo");
      for (size_t p = 0; p < sw->n_params; p++) printf("  %s=%s", sw->paths[p], sw->values[i * sw->n_params + p]);
      printf("\n");
    }
    sb_sweep_free(sw);
    sb_mpi_finalize();
    return 0;
  }

  size_t first = 0, last = sw->n_runs;   /* runs [first, last) */
  const char *env = getenv("SLURM_ARRAY_TASK_ID");
  int rc = 0;
  if (index_arg) {
    if ((rc = parse_index("--array-index", index_arg, sw->n_runs, &first))) goto out;
    last = first + 1;
  } else if (env && *env) {
    if ((rc = parse_index("SLURM_ARRAY_TASK_ID", env, sw->n_runs, &first))) goto out;
    last = first + 1;
  }
  if (only_summary) first = last = 0;

  sb_progress prog;
  sb_progress_init(&prog, stderr, quiet);
  size_t ran = 0, skipped = 0;
  double t0 = sb_wall_time();
  if (ranks > 1 && !quiet && rank == 0) fprintf(stderr, "sweep: %d MPI ranks share the runs (run i on rank i mod %d)\n", ranks, ranks);
  for (size_t i = first; i < last; i++) {
    if (ranks > 1 && i % (size_t)ranks != (size_t)rank) continue;
    char path[4096];
    sb_sweep_run_path(sw, i, path, sizeof path);
    if (!force && sb_sweep_run_complete(sw, i)) {
      skipped++;
      if (!quiet) fprintf(stderr, "sweep: run %zu complete (%s), skipped\n", i, path);
      continue;
    }
    prog_ctx pc = {&prog, sb_wall_time(), i, sw->n_runs};
    sb_sweep_run_opts ro = {(int)threads, on_progress, &pc};
    double tr = sb_wall_time();
    st = sb_sweep_run(sw, i, &ro);
    sb_progress_done(&prog);
    if (st) { rc = sb_cli_fail(st); break; }   /* (still meet the other ranks at the barrier) */
    ran++;
    printf("sweep: run %zu -> %s (%.2f s)\n", i, path, sb_wall_time() - tr);
    fflush(stdout);
  }
  size_t n_complete = 0;
  sb_mpi_barrier();   /* every rank's runs are done: rank 0 writes the summary */
  if (rank != 0 || rc) goto out;
  if ((st = sb_sweep_write_summary(sw, &n_complete))) { rc = sb_cli_fail(st); goto out; }
  printf("sweep %s: %zu run%s done, %zu skipped (complete), %zu/%zu complete in total, %.2f s; summary: %s/summary.csv, "
         "%s/summary.h5\n",
         file, ran, ran == 1 ? "" : "s", skipped, n_complete, sw->n_runs, sb_wall_time() - t0, sw->output_dir, sw->output_dir);
out:
  sb_sweep_free(sw);
  sb_mpi_finalize();
  return rc;
}
