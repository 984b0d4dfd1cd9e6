/* spikebridge sweep: expand a sweep file, run one run (--array-index / SLURM_ARRAY_TASK_ID) or
 * every incomplete run in turn, then rewrite the summary table. Argument parsing and printing
 * only; the sweep logic is in sim/sweep.c, the statistics in analysis/. */
#include "cli/cli.h"
#include "sim/sim.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
"Usage: spikebridge sweep SWEEP.json [--array-index I] [--list] [--summary] [-o DIR]\n"
    "                         [--threads N] [--quiet]\n\n"
    "Run a parameter sweep (docs/clusters.md): a base model file plus parameters to vary\n"
    "(grid, zip or random samples) addressed by the same paths as `run --set`.\n\n"
    "  --array-index I   run only run I (default: $SLURM_ARRAY_TASK_ID if set, else every run;\n"
    "                    plain decimal digits)\n"
    "  --list            print the runs (index, status, overrides) and exit\n"
    "  --summary         only rewrite DIR/summary.csv and DIR/summary.h5 from the run files\n"
    "  -o, --output-dir DIR  run files and summary (default: the file's output_dir, else\n"
    "                    <sweep name>_runs in the working directory)\n"
    "  --force           redo runs whose output is already complete\n"
    "  --threads N       OpenMP threads per run (results do not depend on it)\n"
    "  -q, --quiet       no progress line\n\n"
    "Runs whose output file is complete are skipped, so a killed sweep is restarted by running\n"
    "the same command again. Every run to do is checked (its model built, not simulated) before\n"
    "the first starts: a bad value in any run is exit 2 with nothing written. A run that fails\n"
    "while running is marked failed (DIR/<prefix>_<i>.failed) and the others go on; the summary\n"
    "table is then rewritten (status column) and the exit status is 1.\n";

typedef struct { sb_progress *p; double t0; size_t i, n; } prog_ctx;

static void on_progress(void *vc, double t, double t_stop, uint64_t spikes) {
  prog_ctx *c = vc;
  double wall = sb_wall_time() - c->t0;
  sb_progress_update(c->p, "run %zu/%zu  t = %.1f / %.1f ms  (%.0f%%)  %.3g spikes/s", c->i + 1, c->n, t, t_stop,
                     100.0 * t / t_stop, wall > 0 ? (double)spikes / wall : 0.0);
}

/* A run index as Slurm and people write it: plain decimal digits, no sign, no spaces, no
 * leading zeros ("0", "17"); anything else is refused rather than guessed at. */
static int parse_index(const char *what, const char *s, size_t n_runs, size_t *out) {
  if (!*s)
    return sb_cli_usage_error("sweep", "%s: set but empty (expected a run index in [0, %zu]%s)", what, n_runs - 1,
                              strcmp(what, "SLURM_ARRAY_TASK_ID") ? "" : "; unset it to run every run");
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  int canonical = !*end && !errno && s[0] >= '0' && s[0] <= '9' && !(s[0] == '0' && s[1]);
  if (!canonical || v < 0 || (unsigned long long)v >= n_runs)
    return sb_cli_usage_error("sweep", "%s: expected a run index in [0, %zu] (got '%s')%s", what, n_runs - 1, s,
                              canonical ? "" : ": plain decimal digits, without sign, spaces or leading zeros");
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
      printf("%6zu  %-8s", i, sb_sweep_run_complete(sw, i) ? "complete" : sb_sweep_run_failed(sw, i, NULL) ? "failed" : "todo");
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
  } else if (env) {
    if ((rc = parse_index("SLURM_ARRAY_TASK_ID", env, sw->n_runs, &first))) goto out;
    last = first + 1;
  }
  if (only_summary) first = last = 0;

  sb_progress prog;
  sb_progress_init(&prog, stderr, quiet);
  size_t ran = 0, skipped = 0;
  double t0 = sb_wall_time();
  if (ranks > 1 && !quiet && rank == 0) fprintf(stderr, "sweep: %d MPI ranks share the runs (run i on rank i mod %d)\n", ranks, ranks);

  /* 1. check every run this invocation will do (all ranks check all of them, so that they agree
   * without talking): a model error in any run ends the sweep with exit 2 before anything is
   * written. The runs are built, not simulated; with a single run to do, its check is its build. */
  size_t n_todo = 0, only = 0, n_bad = 0;
  int bad_code = 0;
  for (size_t i = first; i < last; i++)
    if (force || !sb_sweep_run_complete(sw, i)) { n_todo++; only = i; }
  sb_snn_model kept;
  memset(&kept, 0, sizeof kept);
  int have_kept = 0;
  if (n_todo == 1 && ranks == 1) {
    st = sb_sweep_load_run(sw, only, (int)threads, &kept);
    if (st) { n_bad = 1; bad_code = sb_cli_fail(st); } else have_kept = 1;
  } else if (n_todo > 0) {
    size_t k = 0;
    for (size_t i = first; i < last; i++) {
      if (!force && sb_sweep_run_complete(sw, i)) continue;
      sb_progress_update(&prog, "sweep: checking run %zu (%zu/%zu)", i, ++k, n_todo);
      sb_snn_model m;
      st = sb_sweep_load_run(sw, i, (int)threads, &m);
      sb_snn_model_free(&m);
      if (!st) continue;
      sb_progress_done(&prog);
      if (++n_bad <= 10 && rank == 0) {
        int code = sb_cli_fail(st);
        if (code > bad_code) bad_code = code;
      } else {
        int code = sb_exit_code(st);
        if (code > bad_code) bad_code = code;
      }
    }
    sb_progress_done(&prog);
  }
  if (n_bad) {
    if (rank == 0 && n_todo > 1)   /* with one run to do, its own error says it all */
      fprintf(stderr, "spikebridge: error: %s: %zu of %zu runs are invalid%s; nothing was run or written\n", file, n_bad,
              n_todo, n_bad > 10 ? " (the first 10 shown)" : "");
    rc = bad_code ? bad_code : 2;
    goto out;
  }

  /* one summary per output directory: say so when it is another sweep's (two sweeps sharing a
   * folder replaced each other's summary without a word) */
  if (rank == 0) {
    char sp[4200];
    snprintf(sp, sizeof sp, "%s/summary.h5", sw->output_dir);
    hid_t sf;
    char *other = NULL;
    if (access(sp, R_OK) == 0 && sb_h5_open_read(sp, &sf) == SB_OK) {
      if (sb_h5_attr_read_string(sf, "sweep_file", &other)) other = NULL;
      H5Fclose(sf);
    }
    sb_error_clear();
    char *a = other ? realpath(other, NULL) : NULL, *b = realpath(sw->file, NULL);
    if (other && strcmp(other, sw->file) && (!a || !b || strcmp(a, b)))
      fprintf(stderr, "spikebridge sweep: warning: %s is the summary of another sweep (%s); this sweep's replaces it "
              "(give another output_dir or -o to keep both)\n", sp, other);
    free(a);
    free(b);
    sb_free(other);
  }

  /* 2. the runs: one that fails at run time is recorded (<prefix>_<i>.failed, status "failed" in
   * the summary) and the others go on */
  int fail_code = 0;
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
    sb_sweep_run_opts ro = {(int)threads, on_progress, &pc, have_kept && i == only ? &kept : NULL};
    double tr = sb_wall_time();
    st = sb_sweep_run(sw, i, &ro);
    sb_progress_done(&prog);
    if (st) {
      char *msg = sb_strdup(sb_last_error());
      int code = sb_cli_fail(st);
      if (code > fail_code) fail_code = code;
      int ms = sb_sweep_mark_failed(sw, i, msg && *msg ? msg : sb_strerror(st));
      sb_free(msg);
      if (ms) sb_cli_fail(ms);
      fprintf(stderr, "sweep: run %zu failed, going on with the others\n", i);
      continue;
    }
    ran++;
    printf("sweep: run %zu -> %s (%.2f s)\n", i, path, sb_wall_time() - tr);
    fflush(stdout);
  }
  sb_snn_model_free(&kept);
  rc = fail_code;
  size_t n_complete = 0;
  {   /* every rank's runs are done (a barrier): rank 0 writes the summary and counts them all */
    uint64_t counts[2] = {ran, skipped};
    sb_mpi_sum_counts(counts, 2);
    ran = (size_t)counts[0];
    skipped = (size_t)counts[1];
  }
  if (rank != 0) goto out;
  if ((st = sb_sweep_write_summary(sw, &n_complete))) { rc = sb_cli_fail(st); goto out; }
  /* the runs of this invocation that are not complete now failed (on any rank) */
  size_t n_inc = 0;
  char failed_list[512] = "";
  for (size_t i = first; i < last; i++) {
    if (sb_sweep_run_complete(sw, i)) continue;
    size_t l = strlen(failed_list);
    if (n_inc < 20) snprintf(failed_list + l, sizeof failed_list - l, "%s%zu", n_inc ? ", " : "", i);
    else if (n_inc == 20) snprintf(failed_list + l, sizeof failed_list - l, ", ...");
    n_inc++;
  }
  printf("sweep %s: %zu run%s done, %zu skipped (complete), %zu/%zu complete in total, %.2f s; summary: %s/summary.csv, "
         "%s/summary.h5\n",
         file, ran, ran == 1 ? "" : "s", skipped, n_complete, sw->n_runs, sb_wall_time() - t0, sw->output_dir, sw->output_dir);
  if (only_summary) {   /* no runs done here: say how many of the table's rows are failed runs */
    size_t n_marked = 0;
    for (size_t i = 0; i < sw->n_runs; i++) n_marked += !sb_sweep_run_complete(sw, i) && sb_sweep_run_failed(sw, i, NULL);
    if (n_marked) printf("sweep %s: %zu run%s failed (status 'failed' in the summary)\n", file, n_marked, n_marked == 1 ? "" : "s");
  }
  if (n_inc) {
    fprintf(stderr, "spikebridge: error: %s: %zu run%s failed (%s): see the errors above and the status and error columns "
                    "of %s/summary.csv; running the same command again retries them\n",
            file, n_inc, n_inc == 1 ? "" : "s", failed_list, sw->output_dir);
    if (rc == 0) rc = 1;
  }
out:
  sb_sweep_free(sw);
  sb_mpi_finalize();
  return rc;
}
