/* spikebridge run: load a JSON model file, simulate, write spikes (SONATA) and state samples
 * (SONATA report) to an HDF5 file under a temporary name, print a closing summary.
 * Argument parsing and reporting only; the science is in sim/. */
#define _GNU_SOURCE   /* sched_getaffinity */
#include "cli/cli.h"
#include "learning/learning.h"
#include "sim/sim.h"

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
"Usage: spikebridge run MODEL.json [-o OUT.h5] [--t-stop MS] [--seed N] [--threads N]\n"
    "                       [--set PATH=VALUE]... [--checkpoint-every MS] [--resume CP.h5] [--quiet]\n\n"
    "Simulate the spiking network described by MODEL.json; spikes go to OUT.h5 (SONATA).\n\n"
    "  -o, --output OUT.h5   output file (default: simulation.output of the model, else MODEL.h5)\n"
    "      --t-stop MS       biological time to simulate, ms\n"
    "      --seed N          master seed\n"
    "      --threads N       OpenMP threads (results do not depend on it)\n"
    "      --set PATH=VALUE  override a model value, e.g. populations.exc.params.tau_m=15\n"
    "                        or projections[1].weight=-0.6 (VALUE is JSON, else a string)\n"
    "      --checkpoint-every MS  write a checkpoint every MS of biological time\n"
    "      --checkpoint FILE  checkpoint file (default: OUT with .ckpt.h5 for .h5)\n"
    "      --resume FILE     continue from a checkpoint (MODEL.json defaults to the one it names;\n"
    "                        --t-stop may extend the run; --set and --seed are taken from it)\n"
    "  -q, --quiet           no progress line\n\n"
    "SIGTERM, SIGINT or SIGHUP (Slurm's warning before its time limit, Ctrl-C, a closed terminal;\n"
    "not SIGHUP under nohup) writes a checkpoint at the end of the current window and exits with\n"
    "status 3; resume with --resume FILE.\n";

/* ---- checkpoints and stop signals (issue 6; the state itself is sim/checkpoint.c) ---- */

#define SB_EXIT_INTERRUPTED 3   /* documented in docs/clusters.md */

static volatile sig_atomic_t stop_requested;
static void (*prev_int)(int), (*prev_term)(int), (*prev_hup)(int);

static void on_stop_signal(int sig) {
  stop_requested = sig;
  /* a second signal takes the default path (temporary files removed, process ends) */
  signal(SIGINT, prev_int);
  signal(SIGTERM, prev_term);
  signal(SIGHUP, prev_hup);
}

/* The stop handlers in place of the previous ones (kept for a second signal and for restore). */
static void install_stop_handlers(void) {
  prev_int = signal(SIGINT, on_stop_signal);
  prev_term = signal(SIGTERM, on_stop_signal);
  prev_hup = signal(SIGHUP, on_stop_signal);
  if (prev_hup == SIG_IGN) signal(SIGHUP, SIG_IGN);   /* nohup: leave it ignored */
}

static void restore_handlers(void) {
  signal(SIGINT, prev_int);
  signal(SIGTERM, prev_term);
  signal(SIGHUP, prev_hup);
}

typedef struct {
  double every, next;            /* ms; every <= 0: only on a signal */
  const char *path;
  sb_checkpoint_info info;       /* borrowed strings */
  int written;
  double t_written;
} ckpt_ctx;

/* The hook's cheap test, asked every window: saves the hook's extra barrier in the others. */
static int checkpoint_due(void *vc, double t) {
  const ckpt_ctx *c = vc;
  return stop_requested || (c->every > 0 && t >= c->next);
}

static int checkpoint_hook(void *vc, sb_net *net, int *stop) {
  ckpt_ctx *c = vc;
  double t = sb_net_time(net);
  if (!checkpoint_due(c, t)) return SB_OK;
  if (c->every > 0 && c->next <= t) {   /* the next multiple after t (a loop of += every never ended at 1e-300) */
    c->next = (floor(t / c->every) + 1) * c->every;
    if (!(c->next > t)) c->next = t + c->every > t ? t + c->every : nextafter(t, INFINITY);
  }
  int st = sb_net_checkpoint_write(net, c->path, &c->info);
  if (st == SB_EINVAL) st = SB_EIO;   /* checked before the run: what fails now (a folder deleted) is a run-time failure */
  if (st) return st;
  c->written++;
  c->t_written = t;
  if (stop_requested) *stop = 1;
  return SB_OK;
}

/* `s` as one shell word into buf: as it is when it has only safe characters, else in single
 * quotes with each ' written as '\''. */
static const char *shell_quote(const char *s, char *buf, size_t cap) {
  if (*s && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./-+=:,@%") == strlen(s)) return s;
  size_t k = 0;
  if (k + 1 < cap) buf[k++] = '\'';
  for (const char *c = s; *c && k + 5 < cap; c++) {
    if (*c == '\'') {
      memcpy(buf + k, "'\\''", 4);
      k += 4;
    } else {
      buf[k++] = *c;
    }
  }
  if (k + 1 < cap) buf[k++] = '\'';
  buf[k] = '\0';
  return buf;
}

/* "  continue with: BINARY run --resume CKPT -o OUT", shell-quoted (the line is meant to be
 * pasted), naming the binary that runs rather than a bare name off PATH. */
static void print_resume_hint(const char *ckpt, const char *out, const char *model) {
  char qc[8400], qo[8400], exe[4096], qe[8400];
  ssize_t el = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (el > 0) exe[el] = '\0';
  else snprintf(exe, sizeof exe, "spikebridge");
  int piped = model && sb_is_stream(model);   /* a model read from a pipe cannot be read again: the user gives it */
  fprintf(stderr, "  continue with: %s run %s--resume %s -o %s\n", shell_quote(exe, qe, sizeof qe),
          piped ? "MODEL.json " : "", shell_quote(ckpt, qc, sizeof qc), shell_quote(out, qo, sizeof qo));
  if (piped) fprintf(stderr, "  (the model was read from %s, a pipe: give it again as MODEL.json)\n", model);
}

static void checkpoint_default_path(char *buf, size_t cap, const char *out) {
  snprintf(buf, cap, "%s", out);
  size_t l = strlen(buf);
  if (l > 3 && !strcmp(buf + l - 3, ".h5")) buf[l - 3] = 0;
  strncat(buf, ".ckpt.h5", cap - strlen(buf) - 1);
}

typedef struct { sb_progress *p; double t0; } prog_ctx;

/* `path` (of a file that may not exist yet) with its directory made absolute, into buf[cap]; as
 * given when the directory cannot be resolved. */
static void abs_path(const char *path, char *buf, size_t cap) {
  char dir[4200];
  const char *slash = strrchr(path, '/');
  snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) + (slash == path) : 1, slash ? path : ".");
  char *res = realpath(dir, NULL);
  if (res) snprintf(buf, cap, "%s/%s", strcmp(res, "/") ? res : "", slash ? slash + 1 : path);
  else snprintf(buf, cap, "%s", path);
  free(res);
}

/* Checks before a run that would be slow or fail late. A warning (printed when `say`): more
 * threads than processors this process may use (every window ends with all threads waiting for
 * each other), or state recordings larger than the free space where the output goes. An error
 * (SB_EINVAL, message set): recordings above 20 times that space, which no compression of
 * membrane traces reaches. */
static int run_checks(const sb_snn_model *m, const char *file, const char *out, int say) {
  cpu_set_t cs;
  int procs = sched_getaffinity(0, sizeof cs, &cs) == 0 ? CPU_COUNT(&cs) : (int)sysconf(_SC_NPROCESSORS_ONLN);
  int mine = m->threads / (int)sb_mpi_size();   /* this rank's (m->threads counts every rank's) */
  if (say && procs > 0 && mine > procs)
    fprintf(stderr, "spikebridge run: warning: %d threads on %d processor%s: the threads wait for each other at every "
            "window, so this runs slower than with --threads %d\n", mine, procs, procs == 1 ? "" : "s", procs);
  const char *what;
  sb_net_counters wc;
  sb_net_get_counters(m->net, &wc);
  double win = sb_net_record_window_bytes(m->net, m->t_stop), have = (double)sb_mem_limit(&what);
  if (win > have)   /* a window's samples are held until every neuron has been processed */
    return sb_error_set_(__FILE__, __LINE__, SB_EINVAL, "%s: record.state: the samples of one window (%g ms) take %.3g GB "
                         "in memory, more than the %.3g GB of %s; sample less often or fewer neurons", file,
                         wc.window, win / 1e9, have / 1e9, what);
  double need = sb_net_record_bytes(m->net, m->t_stop);
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", out);
  char *slash = strrchr(dir, '/');
  if (!slash) snprintf(dir, sizeof dir, ".");
  else slash[slash == dir] = 0;   /* "/x.h5" -> "/" */
  struct statvfs sv;
  if (!(need > 0) || statvfs(dir, &sv) != 0) return SB_OK;
  double avail = (double)sv.f_bavail * (double)sv.f_frsize;
  if (need > 20 * avail)
    return sb_error_set_(__FILE__, __LINE__, SB_EINVAL, "%s: record.state: the recordings up to t_stop = %g ms would take "
                         "about %.3g GB before compression, more than 20 times the %.3g GB free in %s", file, m->t_stop,
                         need / 1e9, avail / 1e9, dir);
  if (say && need > avail)
    fprintf(stderr, "spikebridge run: warning: the state recordings will take about %.3g GB before compression, "
            "and %s has %.3g GB free\n", need / 1e9, dir, avail / 1e9);
  return SB_OK;
}

static void on_progress(void *vc, double t, double t_stop, uint64_t spikes) {
  prog_ctx *c = vc;
  double wall = sb_wall_time() - c->t0;
  sb_progress_update(c->p, "t = %.1f / %.1f ms  (%.0f%%)  real-time factor %.3g  %.3g spikes/s", t, t_stop,
                     100.0 * t / t_stop, wall > 0 ? t / 1000.0 / wall : 0.0, wall > 0 ? (double)spikes / wall : 0.0);
}

int sb_cmd_run(int argc, char **argv) {
  static const struct option opts[] = {
      {"output", required_argument, 0, 'o'},
      {"t-stop", required_argument, 0, 1},
      {"seed", required_argument, 0, 2},
      {"threads", required_argument, 0, 3},
      {"set", required_argument, 0, 4},
      {"checkpoint-every", required_argument, 0, 5},
      {"checkpoint", required_argument, 0, 6},
      {"resume", required_argument, 0, 7},
      {"help", no_argument, 0, 'h'},
      {"quiet", no_argument, 0, 'q'},
      {0, 0, 0, 0}};
  sb_cli_getopt_reset();
  int c;
  const char *out = NULL;
  const char **sets = calloc((size_t)argc + 4097, sizeof *sets);   /* + a checkpoint's overrides */
  if (!sets) return 1;
  int n_set = 0, quiet = sb_quiet;
  sb_snn_model_opts mo = {NULL, 0, NAN, -1, 0};
  int t_stop_given = 0;   /* --t-stop, not the file or a --set, sets t_stop: errors about it name --t-stop */
  double ck_every = 0;
  int ck_every_given = 0;
  const char *ck_path = NULL, *resume = NULL;
  sb_checkpoint_info rinfo = {0};
  char *model_abs = NULL;
  double v;
  long l;
  int rc = 0;
  while ((c = sb_cli_getopt("run", usage, argc, argv, ":ho:q", opts)) != -1) {
    if (c == SB_CLI_HELP) goto done;
    if (c == SB_CLI_BADOPT) { rc = 2; goto done; }
    switch (c) {
      case 'o':
        out = optarg;
        if (out[0] == '-') {   /* `-o --quiet` took the next option as the file name */
          rc = sb_cli_usage_error("run", "-o: expected a file name (got '%s'); write a name starting with '-' as ./%s", out, out);
          goto done;
        }
        if (sb_output_check(out)) { rc = sb_cli_fail(SB_EINVAL); goto done; }
        break;
      case 'q': quiet = 1; break;
      case 1:
        if ((rc = sb_cli_double("run", "--t-stop", optarg, &v))) goto done;
        if (!(v > 0)) { rc = sb_cli_usage_error("run", "--t-stop: must be > 0 ms (got %s)", optarg); goto done; }
        mo.t_stop = v;
        t_stop_given = 1;
        break;
      case 2:
        if ((rc = sb_cli_long("run", "--seed", optarg, 0, 0x7fffffffffffffffL, &l))) goto done;
        mo.seed = l;
        break;
      case 3:
        if ((rc = sb_cli_long("run", "--threads", optarg, 1, 4096, &l))) goto done;
        mo.threads = (int)l;
        break;
      case 4:
        if (!strchr(optarg, '=')) { rc = sb_cli_usage_error("run", "--set: expected PATH=VALUE (got '%s')", optarg); goto done; }
        if (strpbrk(optarg, "\n\r")) {   /* a checkpoint stores one override per line */
          rc = sb_cli_usage_error("run", "--set %s: a line break inside PATH=VALUE; write the value on one line", optarg);
          goto done;
        }
        sets[n_set++] = optarg;
        break;
      case 5:
        if ((rc = sb_cli_double("run", "--checkpoint-every", optarg, &ck_every))) goto done;
        ck_every_given = 1;
        if (!(ck_every >= 0.001)) {   /* below the engine's resolution: a checkpoint every window at best */
          rc = sb_cli_usage_error("run", "--checkpoint-every: must be >= 0.001 ms (got %s)", optarg);
          goto done;
        }
        break;
      case 6: ck_path = optarg; break;
      case 7: resume = optarg; break;
      default: break;
    }
  }
  int handlers = 0;   /* on_stop_signal installed */
  stop_requested = 0;
  if (resume) {   /* a signal while the checkpoint is read leaves it as it was: resumable (exit 3); MPI
                   * refuses --resume below, before anything is written */
    install_stop_handlers();
    handlers = 1;
  }
  if (resume) {   /* the checkpoint names the model, its overrides and its seed */
    if (n_set || mo.seed >= 0) { rc = sb_cli_usage_error("run", "--resume: --set and --seed come from the checkpoint"); goto done; }
    int st = sb_checkpoint_read_info(resume, &rinfo);
    if (st) { rc = sb_cli_fail(sb_error_prefix_(st, "--resume")); goto done; }
    for (int i = 0; i < rinfo.n_set; i++) sets[n_set++] = rinfo.set[i];
    mo.seed = (long)rinfo.seed;
    if (isnan(mo.t_stop)) mo.t_stop = rinfo.t_stop;
    else if (mo.t_stop < rinfo.t - 1e-9 * (1.0 + fabs(rinfo.t))) {
      rc = sb_cli_usage_error("run", "--t-stop %g: earlier than the time of the checkpoint %s (%.17g ms)", mo.t_stop, resume,
                              rinfo.t);
      goto done;
    }
    if (optind == argc) {
      if (sb_is_stream(rinfo.model_file)) {   /* a FIFO would block here, deaf to signals */
        rc = sb_cli_usage_error("run", "--resume %s: the model it names, %s, was read from a pipe and cannot be read "
                                "again; give the model file as MODEL.json", resume, rinfo.model_file);
        goto done;
      }
      if (access(rinfo.model_file, R_OK)) {
        rc = sb_cli_usage_error("run", "--resume %s: the model file it names, %s, cannot be read (%s); give the model "
                                "file as MODEL.json", resume, rinfo.model_file, strerror(errno));
        goto done;
      }
      argv[--optind] = rinfo.model_file;
    }
  }
  if (optind != argc - 1) {
    rc = sb_cli_usage_error("run", optind >= argc ? "missing MODEL.json" : "expected one MODEL.json (got %d arguments)",
                            argc - optind);
    goto done;
  }
  const char *file = argv[optind];
  char model_id[96] = "";
  if (sb_file_fingerprint(file, model_id, sizeof model_id)) {   /* unreadable: the loader says so */
    model_id[0] = 0;
    sb_error_clear();
  }
  mo.set = sets;
  mo.n_set = n_set;
  /* MPI (make MPI=1, under mpirun): rank 0 writes the output and prints; a no-op otherwise */
  int st = sb_mpi_init(NULL, NULL);
  if (st) { rc = sb_cli_fail(st); goto done; }
  int r0 = sb_mpi_rank() == 0, multi = sb_mpi_size() > 1;
  if (multi && (ck_every > 0 || resume)) {
    rc = sb_cli_usage_error("run", "--checkpoint-every and --resume are not supported with more than one MPI rank");
    goto done;
  }
  if (!r0) {
    quiet = 1;
    if (!freopen("/dev/null", "w", stdout)) { rc = 1; goto done; }
  }
  double t_build = sb_wall_time();
  sb_snn_model m;
  st = sb_snn_model_load(file, &mo, &m);
  if (st) { rc = sb_cli_fail(st); goto done; }
  t_build = sb_wall_time() - t_build;
  char defout[4096];
  if (!out && resume && rinfo.output) out = rinfo.output;   /* where the interrupted run wrote */
  if (resume && !ck_path && rinfo.checkpoint) ck_path = rinfo.checkpoint;   /* and its checkpoint settings */
  if (resume && !ck_every_given) ck_every = rinfo.every;
  if (!out) out = m.output;
  struct stat fst;
  if (!out && (stat(file, &fst) || !S_ISREG(fst.st_mode))) {   /* `run <(...)` would write ./63.h5 */
    sb_snn_model_free(&m);
    rc = sb_cli_usage_error("run", "%s: the model comes from a pipe and names no output (simulation.output): give the "
                            "output file with -o", file);
    goto done;
  }
  if (!out) {
    const char *b = strrchr(file, '/');
    b = b ? b + 1 : file;
    snprintf(defout, sizeof defout, "%s", b);
    char *dot = strrchr(defout, '.');
    if (dot && !strcmp(dot, ".json")) *dot = 0;
    strncat(defout, ".h5", sizeof defout - strlen(defout) - 1);
    out = defout;
  }
  if (sb_output_not_input(out, file) || (resume && sb_output_not_input(out, resume)) ||
      (ck_path && (sb_output_not_input(ck_path, file) || sb_output_not_input(ck_path, out)))) {
    sb_snn_model_free(&m);
    rc = sb_cli_fail(SB_EINVAL);
    goto done;
  }
  if (ck_path && !strcmp(ck_path, out)) {   /* neither exists yet: the same name is the same file */
    sb_snn_model_free(&m);
    rc = sb_cli_usage_error("run", "--checkpoint %s: the checkpoint file is the output file (-o); give another name",
                            ck_path);
    goto done;
  }
  char ck_default[4200];
  if (!ck_path) checkpoint_default_path(ck_default, sizeof ck_default, out);
  if (!multi && !ck_path && sb_output_check(out)) {   /* the output's own error, not a warning about its checkpoint */
    sb_snn_model_free(&m);
    rc = sb_cli_fail(SB_EINVAL);
    goto done;
  }
  if (!multi && sb_output_check(ck_path ? ck_path : ck_default)) {   /* before any output exists */
    if (ck_every > 0) {
      sb_snn_model_free(&m);
      rc = sb_cli_fail(SB_EINVAL);
      goto done;
    }
    fprintf(stderr, "spikebridge run: warning: a stop signal could not write its checkpoint: %s\n", sb_last_error());
  }
  sb_h5_out o;
  memset(&o, 0, sizeof o);
  o.file = -1;
  if (!r0) goto attached;
  if ((st = sb_h5_create(&o, out))) { sb_snn_model_free(&m); rc = sb_cli_fail(st); goto done; }
  if (multi) {
    int64_t nr = sb_mpi_size();
    sb_h5_attr_write_int64s(o.file, "mpi_ranks", &nr, 1);
  }
  sb_h5_attr_write_string(o.file, "spikebridge_version", SB_VERSION);
  sb_h5_attr_write_string(o.file, "model_file", file);
  int64_t seed = (int64_t)m.seed, thr = m.threads;
  sb_h5_attr_write_int64s(o.file, "seed", &seed, 1);
  sb_h5_attr_write_int64s(o.file, "threads", &thr, 1);
  sb_h5_attr_write_doubles(o.file, "t_stop", &m.t_stop, 1);
  if ((st = sb_net_attach_output(m.net, o.file, m.flush_interval))) goto fail;
  if (resume && (st = sb_net_checkpoint_restore(m.net, resume))) goto fail;
  /* after the restore's own checks, which name what differs (sizes, rules): any other edit */
  if (resume && (st = sb_checkpoint_verify(resume))) goto fail;   /* any other edit of the checkpoint */
  if (resume && rinfo.model_id && model_id[0] && strcmp(rinfo.model_id, model_id)) {
    st = sb_error_set_(__FILE__, __LINE__, SB_EINVAL, "--resume %s: the model file %s is not the one the run started with "
                       "(%s then, %s now: edited or another file); resuming needs the same model", resume, file,
                       rinfo.model_id, model_id);
    goto fail;
  }
attached:;
  model_abs = realpath(file, NULL);   /* a resume from another directory finds it */
  char out_abs[8400], ck_abs[8400];   /* a resume from another directory writes there too */
  abs_path(out, out_abs, sizeof out_abs);
  abs_path(ck_path ? ck_path : ck_default, ck_abs, sizeof ck_abs);
  char rs_abs[8400] = "";
  if (resume) abs_path(resume, rs_abs, sizeof rs_abs);
  const char *hint_ckpt = rs_abs;   /* the checkpoint a stop signal's resume hint names */
  ckpt_ctx ck = {ck_every, sb_net_time(m.net) + ck_every, ck_path ? ck_path : ck_default,
                 {model_abs ? model_abs : (char *)file, (char **)sets, n_set, m.seed, 0, m.t_stop,
                  model_id[0] ? model_id : NULL, out_abs, ck_abs, ck_every > 0 ? ck_every : 0.0}, 0, 0};
  if (!multi) {
    sb_net_set_window_hook(m.net, checkpoint_hook, &ck);
    sb_net_set_window_hook_due(m.net, checkpoint_due);
  }
  if (resume && stop_requested) {   /* stopped while the checkpoint was read: it is unchanged */
    fprintf(stderr, "spikebridge run: stopped by signal %d before the simulation resumed; %s is unchanged\n",
            (int)stop_requested, resume);
    goto interrupted;
  }
  if (!multi && !handlers) {   /* MPI ranks keep the default (temporary files removed, the rank ends): a
                                * stop at a window end would need every rank to agree, and they did not
                                * stop at all */
    install_stop_handlers();
  }
  sb_progress prog;
  sb_progress_init(&prog, stderr, quiet);
  prog_ctx pc = {&prog, sb_wall_time()};
  sb_net_set_progress(m.net, on_progress, &pc);
  sb_net_counters c0;   /* a resumed run: rates over the part simulated here */
  sb_net_get_counters(m.net, &c0);
  double t_from = sb_net_time(m.net), t_sim = sb_wall_time(), t_max;
  if ((st = sb_net_time_limit(m.net, &t_max))) {   /* prepares the buffers: sizes from the whole model */
    if (st == SB_EINVAL) st = sb_error_prefix_(st, "%s", file);
    goto fail;
  }
  if (m.t_stop > t_max) {
    st = sb_error_set_(__FILE__, __LINE__, SB_EINVAL, "%s: %s: %.10g ms is beyond the engine's limit for this network, %.10g ms "
                       "(2^32 windows of the minimum delay)", file, t_stop_given ? "--t-stop" : "simulation.t_stop", m.t_stop,
                       t_max);
    goto fail;
  }
  if ((st = run_checks(&m, file, out, r0))) goto fail;   /* every MPI rank: none may run alone */
  st = sb_net_run(m.net, m.t_stop);
  t_sim = sb_wall_time() - t_sim;
  sb_progress_done(&prog);
  if (st == SB_ENOMEM)   /* queues and recordings grow with the activity: say when */
    st = sb_error_prefix_(st, "%s: during the simulation (at t = %.6g ms of %.10g)", file, sb_net_time(m.net), m.t_stop);
  if (st) goto fail;
  if (sb_net_stopped(m.net)) {
    fprintf(stderr, "spikebridge run: stopped by signal %d at t = %.3f ms of %.10g; checkpoint (with the recordings so far) "
            "written to %s\n", (int)stop_requested, ck.t_written, m.t_stop, ck.path);
    hint_ckpt = ck_abs;
    goto interrupted;
  }
  if ((st = sb_net_finish_output(m.net))) goto fail;
  /* plastic projections: /weights (collective: rank 0 gathers and writes, the others pass -1) */
  if ((st = sb_stdp_write_weights(m.net, r0 ? o.file : -1))) goto fail;
  if (r0 && (st = sb_h5_commit(&o))) { sb_snn_model_free(&m); rc = sb_cli_fail(st); goto done; }
  /* the stop handlers stay until the output is complete: a signal after the last window (a time
   * limit at the end of a run) no longer throws the finished run away while it is written */
  if (stop_requested)
    fprintf(stderr, "spikebridge run: signal %d arrived after the last window; the run is complete and %s is written\n",
            (int)stop_requested, out);
  else if (!multi)
    restore_handlers();

  sb_net_counters ct;
  sb_net_get_counters(m.net, &ct);
  {
    int ranks = sb_mpi_size(), per_rank = m.threads / (ranks > 0 ? ranks : 1);
    char split[64] = "";
    if (multi) snprintf(split, sizeof split, " (%d ranks x %d)", ranks, per_rank);
    printf("spikebridge run %s: %.10g ms biological time, %d thread%s%s, seed %llu -> %s\n", file, m.t_stop, m.threads,
           m.threads == 1 ? "" : "s", split, (unsigned long long)m.seed, out);
    printf("  construction  %.3f s (%zu synapses, %.2f bytes/synapse)\n", t_build, ct.synapses,
           ct.synapses ? (double)ct.syn_bytes / (double)ct.synapses : 0.0);
    double bio = m.t_stop > t_from ? (m.t_stop - t_from) / 1000.0 : 0.0;   /* s simulated by this command */
    printf("  simulation    %.3f s, real-time factor %.3g (%.3g s wall per biological s), window %g ms%s\n", t_sim,
           t_sim > 0 ? bio / t_sim : 0.0, bio > 0 ? t_sim / bio : 0.0, ct.window, t_from > 0 ? " (the resumed part)" : "");
    printf("  peak memory   %.1f MB\n", (double)sb_peak_rss() / 1048576.0);
    if (multi) {
      uint64_t by, nw;
      sb_net_mpi_stats(m.net, &by, &nw);
      printf("  MPI           %d ranks x %d thread(s); %llu windows exchanged, %.1f spike bytes received per rank per window\n",
             sb_mpi_size(), m.threads / sb_mpi_size(), (unsigned long long)nw, nw ? (double)by / (double)nw : 0.0);
    }
    printf("  events        %llu synaptic, %llu stimulus (%.3g events/s wall)", (unsigned long long)ct.syn_events,
           (unsigned long long)ct.ext_events,
           t_sim > 0 ? (double)(ct.syn_events + ct.ext_events - c0.syn_events - c0.ext_events) / t_sim : 0.0);
    if (ct.eager_events)
      printf("; %.1f%% of the synaptic events taken at delivery", 100.0 * (double)ct.eager_events / (double)ct.syn_events);
    printf("\n");
    if (ct.home_bytes || ct.home_spills || ct.home_unmaps) {   /* docs/engine.md, "flat queues" */
      if (ct.home_bytes)
        printf("  queues        home blocks of up to %u entries, %.1f MB mapped", ct.home_cap, (double)ct.home_bytes / 1e6);
      else
        printf("  queues        no home blocks mapped at the end");
      printf("; outgrown %llu time%s, unmapped %llu time%s (all thread partitions)\n", (unsigned long long)ct.home_spills,
             ct.home_spills == 1 ? "" : "s", (unsigned long long)ct.home_unmaps, ct.home_unmaps == 1 ? "" : "s");
    }
    printf("  %-16s %10s %12s %10s %8s\n", "population", "neurons", "spikes", "rate/Hz", "CV ISI");
    for (int i = 0; i < sb_net_n_populations(m.net); i++) {
      sb_pop_stats ps;
      sb_net_pop_stats(m.net, i, &ps);
      char cv[32] = "nan";   /* no neuron with 3 spikes: undefined, as in analyze */
      if (ps.n_cv) snprintf(cv, sizeof cv, "%.3f", ps.cv);
      printf("  %-16s %10zu %12llu %10.3f %8s\n", sb_net_pop_name(m.net, i), sb_net_pop_size(m.net, i),
             (unsigned long long)ps.spikes, ps.rate, cv);
    }
  }
  sb_snn_model_free(&m);
  rc = 0;
  goto done;
interrupted:   /* a stop signal: the message is printed; nothing is written but the checkpoint */
  print_resume_hint(hint_ckpt, out_abs, file);
  sb_net_attach_output(m.net, -1, 0);
  sb_h5_abort(&o);
  sb_snn_model_free(&m);
  rc = SB_EXIT_INTERRUPTED;
  goto done;
fail:
  if (st == SB_EINVAL) st = sb_snn_blame_overrides(st, mo.set, mo.n_set);   /* checks after loading (queue sizes) */
  if (st == SB_EIO && !strstr(sb_last_error(), out) && !strstr(sb_last_error(), ck_path ? ck_path : ck_default))
    st = sb_error_prefix_(st, "%s", out);   /* a recording's write error names the dataset, not the file */
  rc = sb_cli_fail(st);
  sb_net_attach_output(m.net, -1, 0);
  sb_h5_abort(&o);
  sb_snn_model_free(&m);
done:
  free(model_abs);
  free(sets);
  sb_checkpoint_info_free(&rinfo);
  sb_mpi_finalize();
  return rc;
}
