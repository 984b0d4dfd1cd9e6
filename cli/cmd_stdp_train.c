/* spikebridge stdp-train: the Diehl & Cook 2015 network (models/snn/diehl_cook.c) trained
 * unsupervised on Fashion-MNIST, labelled and tested; writes weights, thetas, labels and the
 * accuracy to one HDF5 file atomically. Options and output only; no science here. */
#include "cli/cli.h"
#include "models/ann/ann.h"
#include "models/snn/snn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "Usage: spikebridge stdp-train [options]\n\n"
    "Unsupervised learning with STDP (Diehl & Cook 2015) on Fashion-MNIST: train the input\n"
    "weights and thresholds of N excitatory neurons on --train images, freeze, give each neuron\n"
    "the class of its highest mean response over --label training images, and report the\n"
    "accuracy on --test test images (prediction: highest mean response of a class's neurons).\n\n"
    "  --neurons N       excitatory (and inhibitory) neurons (default 100, or the --init file's)\n"
    "  --train N         training presentations (default 1000; image i is i mod 60000)\n"
    "  --label N         training images used for labelling (default: --train, at most 60000)\n"
    "  --test N          test images (default 10000)\n"
    "  --test-offset K   start at test image K (default 0; split a test run over processes)\n"
    "  --train-offset K  start training at training image K (default 0; continue an --init run)\n"
    "  --train-seconds S stop training after the image that passes S seconds of wall time\n"
    "                    (the images trained are in n_train; default: no limit)\n"
    "  --init FILE.h5    start from the weights and thetas of an earlier output file\n"
    "  --data DIR        Fashion-MNIST IDX files (default $SB_DATA_DIR or /usr/share/datasets/fashion-mnist)\n"
    "  --seed N          seed of initial weights, delays and Poisson inputs (default 1)\n"
    "  --threads N       OpenMP threads of the engine (default 1)\n"
    "  -o, --output FILE output HDF5 file (default dc.h5)\n"
    "  --quiet           no progress line\n\n"
    "Output: /weights (N, 784) float64, /theta (N) mV, /assignments (N) int64 (-1: never fired),\n"
    "/test_predictions (n_test) int64, /test_labels (n_test) uint8; root attributes accuracy,\n"
    "n_train, n_label, n_test, seconds_per_train_image, ... (docs/stdp.md).\n";

static int input_fail(int st) {
  if (st == SB_EIO) st = SB_EINVAL;   /* a named input that cannot be read is an input error */
  return sb_cli_fail(st);
}

/* Read /weights (n, n_input) and /theta (n) of an earlier output. */
static int load_init(const char *path, int n_input, double **w, double **theta, int *n_exc) {
  int st = sb_input_check(path);
  if (st) return st;
  hid_t f;
  if ((st = sb_h5_open_read(path, &f))) return st;
  size_t nw, nt, dims[2];
  int rank;
  *w = NULL;
  *theta = NULL;
  char *fmt = NULL;
  if (sb_h5_attr_read_string(f, "format", &fmt) || strcmp(fmt, "spikebridge-diehl-cook")) {
    sb_free(fmt);
    H5Fclose(f);
    SB_ERROR(SB_EFORMAT, "%s: --init: expected an output of spikebridge stdp-train (root attribute format = "
             "\"spikebridge-diehl-cook\")", path);
  }
  sb_free(fmt);
  size_t tdims[2] = {0, 0};
  int trank = 0;
  dims[0] = dims[1] = 0;
  st = sb_h5_read(f, "weights", H5T_NATIVE_DOUBLE, (void **)w, &nw, &rank, dims, 2);
  if (!st) st = sb_h5_read(f, "theta", H5T_NATIVE_DOUBLE, (void **)theta, &nt, &trank, tdims, 2);
  H5Fclose(f);
  if (st) return sb_error_prefix_(st, "%s", path);
  if (rank != 2 || dims[1] != (size_t)n_input || dims[0] < 2 || dims[0] > SB_DC_MAX_NEURONS || trank != 1 ||
      nt != dims[0]) {
    sb_free(*w);
    sb_free(*theta);
    char got[96];
    if (rank == 2) snprintf(got, sizeof got, "%zu x %zu", dims[0], dims[1]);
    else snprintf(got, sizeof got, "rank %d", rank);
    SB_ERROR(SB_EFORMAT, "%s: /weights, /theta: expected (N, %d) and (N) with 2 <= N <= %d (got %s and %zu value(s) of rank %d)",
             path, n_input, SB_DC_MAX_NEURONS, got, nt, trank);
  }
  *n_exc = (int)dims[0];
  return SB_OK;
}

typedef struct {
  sb_progress pr;
  const char *phase;
  size_t n;
} prog;

static void show(prog *g, size_t i, double t0, int shown, uint32_t spikes) {
  double el = sb_wall_time() - t0;
  sb_progress_update(&g->pr, "%s image %zu/%zu  %.2f img/s  elapsed %.0f s  (last: %u spikes, shown %dx)", g->phase,
                     i + 1, g->n, el > 0 ? (double)(i + 1) / el : 0.0, el, spikes, shown);
}

/* Presents images [first, first + n) (modulo the set's size when wrap), recording responses in
 * resp when not NULL; stops after the image that passes `limit` seconds (INFINITY: none) and
 * returns the number presented in *done. */
static int run_phase(sb_dc *dc, prog *g, const sb_dataset *d, size_t first, size_t n, int wrap, uint32_t *resp, int n_exc,
                     double limit, double *secs, long *showings, size_t *done) {
  size_t px = (size_t)d->h * (size_t)d->w;
  double t0 = sb_wall_time();
  g->n = n;
  *done = 0;
  for (size_t i = 0; i < n; i++) {
    size_t k = wrap ? (first + i) % d->n : first + i;
    uint32_t *row = resp + (resp ? i * (size_t)n_exc : 0);
    uint32_t tmp[SB_DC_MAX_NEURONS];   /* n_exc <= SB_DC_MAX_NEURONS (--neurons and --init check it) */
    int shown = 0;
    int st = sb_dc_present(dc, d->images + k * px, resp ? row : tmp, &shown);
    if (st) return st;
    *showings += shown;
    uint32_t s = 0;
    for (int j = 0; j < n_exc; j++) s += resp ? row[j] : tmp[j];
    show(g, i, t0, shown, s);
    *done = i + 1;
    if (sb_wall_time() - t0 >= limit) break;
  }
  *secs = sb_wall_time() - t0;
  return SB_OK;
}

int sb_cmd_stdp_train(int argc, char **argv) {
  static const struct option opts[] = {
      {"output", required_argument, 0, 'o'}, {"neurons", required_argument, 0, 1}, {"train", required_argument, 0, 2},
      {"label", required_argument, 0, 3},    {"test", required_argument, 0, 4},    {"init", required_argument, 0, 5},
      {"data", required_argument, 0, 6},     {"seed", required_argument, 0, 7},    {"threads", required_argument, 0, 8},
      {"test-offset", required_argument, 0, 9}, {"train-offset", required_argument, 0, 10},
      {"train-seconds", required_argument, 0, 11},
      {"help", no_argument, 0, 'h'},         {"quiet", no_argument, 0, 'q'},       {0, 0, 0, 0}};
  const char *out = "dc.h5", *init = NULL, *data = NULL;
  long neurons = -1, n_train = 1000, n_label = -1, n_test = 10000, seed = 1, threads = 1, t_off = 0, tr_off = 0;
  double t_limit = INFINITY;
  int quiet = sb_quiet, label_given = 0;
  sb_cli_getopt_reset();
  int c;
  while ((c = sb_cli_getopt("stdp-train", usage, argc, argv, ":ho:q", opts)) != -1) {
    int e = 0;
    switch (c) {
      case SB_CLI_HELP: return 0;
      case SB_CLI_BADOPT: return 2;
      case 'o': out = optarg; break;
      case 'q': quiet = 1; break;
      case 1: e = sb_cli_long("stdp-train", "--neurons", optarg, 2, SB_DC_MAX_NEURONS, &neurons); break;
      case 2: e = sb_cli_long("stdp-train", "--train", optarg, 0, 100000000, &n_train); break;
      case 3: e = sb_cli_long("stdp-train", "--label", optarg, 0, 60000, &n_label), label_given = 1; break;
      case 4: e = sb_cli_long("stdp-train", "--test", optarg, 0, 10000, &n_test); break;
      case 5: init = optarg; break;
      case 6: data = optarg; break;
      case 7: e = sb_cli_long("stdp-train", "--seed", optarg, 0, 2147483647L, &seed); break;
      case 8: e = sb_cli_long("stdp-train", "--threads", optarg, 1, 256, &threads); break;
      case 9: e = sb_cli_long("stdp-train", "--test-offset", optarg, 0, 9999, &t_off); break;
      case 10: e = sb_cli_long("stdp-train", "--train-offset", optarg, 0, 59999, &tr_off); break;
      case 11:
        e = sb_cli_double("stdp-train", "--train-seconds", optarg, &t_limit);
        if (!e && !(t_limit >= 0))
          e = sb_cli_usage_error("stdp-train", "--train-seconds: expected a number of seconds >= 0 (got '%s')", optarg);
        break;
      default: return 2;
    }
    if (e) return e;
  }
  if (optind < argc) return sb_cli_usage_error("stdp-train", "unexpected argument '%s'", argv[optind]);
  if (n_label < 0) n_label = n_train < 60000 ? n_train : 60000;
  if (t_off + n_test > 10000)
    return sb_cli_usage_error("stdp-train", "--test-offset %ld + --test %ld: must be <= 10000 test images", t_off, n_test);
  if (n_test == 0) t_off = 0;
  if (n_label == 0 && n_test > 0)
    return sb_cli_usage_error("stdp-train", "--label: need at least one labelling image to test (got 0%s)",
                              label_given ? "" : ", the default: as many as --train");
  if (sb_output_check(out) || sb_output_not_input(out, init)) return sb_cli_fail(SB_EINVAL);

  double *w0 = NULL, *th0 = NULL;
  int st, n_exc = neurons > 0 ? (int)neurons : 100;
  if (init) {
    int nf = 0;
    if ((st = load_init(init, 784, &w0, &th0, &nf))) return input_fail(st);
    if (neurons > 0 && nf != neurons) {
      sb_free(w0); sb_free(th0);
      return sb_cli_usage_error("stdp-train", "--neurons %ld does not match %s (%d neurons)", neurons, init, nf);
    }
    n_exc = nf;
  }
  sb_dataset train = {0}, test = {0};
  if ((st = sb_fmnist_load(data, "train", &train)) || (n_test > 0 && (st = sb_fmnist_load(data, "test", &test)))) {
    sb_dataset_free(&train);
    sb_free(w0); sb_free(th0);
    return input_fail(st);
  }
  if (train.h * train.w != 784) {
    sb_dataset_free(&train); sb_dataset_free(&test); sb_free(w0); sb_free(th0);
    fprintf(stderr, "spikebridge: error: training images: expected 28 x 28 (got %d x %d)\n", train.h, train.w);
    return 2;
  }
  sb_dc_params p;
  sb_dc_defaults(&p, n_exc);
  p.seed = (uint64_t)seed;
  p.threads = (int)threads;
  sb_dc *dc = NULL;
  st = sb_dc_alloc(&p, &dc);
  uint32_t *lresp = sb_calloc((size_t)n_label * (size_t)n_exc + 1, sizeof *lresp);
  uint32_t *tresp = sb_calloc((size_t)n_test * (size_t)n_exc + 1, sizeof *tresp);
  int *assign = sb_malloc((size_t)n_exc * sizeof *assign);
  int64_t *pred = sb_malloc(((size_t)n_test + 1) * sizeof *pred);
  int *ipred = sb_malloc(((size_t)n_test + 1) * sizeof *ipred);
  double *w = sb_malloc((size_t)n_exc * 784 * sizeof *w), *theta = sb_malloc((size_t)n_exc * sizeof *theta);
  if (!st && (!lresp || !tresp || !assign || !pred || !ipred || !w || !theta)) st = SB_ENOMEM;
  if (!st && w0 && (st = sb_dc_set_state(dc, w0, th0))) st = sb_error_prefix_(st, "%s: --init", init);
  prog g;
  sb_progress_init(&g.pr, stderr, quiet);
  double t_train = 0, t_label = 0, t_test = 0;
  long sh_train = 0, sh_label = 0, sh_test = 0;
  if (!st) {
    g.phase = "train";
    size_t done = 0;
    st = run_phase(dc, &g, &train, (size_t)tr_off, (size_t)n_train, 1, NULL, n_exc, t_limit, &t_train, &sh_train, &done);
    n_train = (long)done;   /* fewer when --train-seconds stopped it */
  }
  double sim_ms = st ? 0 : sb_dc_time(dc);
  if (!st) st = sb_dc_get_weights(dc, w);
  if (!st) st = sb_dc_get_theta(dc, theta);
  if (!st) st = sb_dc_freeze(dc);
  if (!st) {
    g.phase = "label";
    size_t done = 0;
    st = run_phase(dc, &g, &train, 0, (size_t)n_label, 0, lresp, n_exc, INFINITY, &t_label, &sh_label, &done);
  }
  if (!st) {
    sb_dc_assign(lresp, train.labels, (size_t)n_label, n_exc, 10, assign);
    g.phase = "test";
    sb_dataset view = test;   /* images [t_off, t_off + n_test) */
    if (n_test > 0) {
      view.images += (size_t)t_off * 784;
      view.labels += t_off;
      view.n -= (size_t)t_off;
    }
    size_t done = 0;
    st = run_phase(dc, &g, &view, 0, (size_t)n_test, 0, tresp, n_exc, INFINITY, &t_test, &sh_test, &done);
  }
  sb_progress_done(&g.pr);
  double acc = 0;
  size_t n_assigned = 0;
  if (!st) {
    for (long k = 0; k < n_test; k++) ipred[k] = sb_dc_predict(tresp + (size_t)k * (size_t)n_exc, assign, n_exc, 10);
    acc = n_test > 0 ? sb_dc_accuracy(ipred, test.labels + t_off, (size_t)n_test) : NAN;   /* no test: undefined */
    for (long k = 0; k < n_test; k++) pred[k] = ipred[k];
    for (int i = 0; i < n_exc; i++) n_assigned += assign[i] >= 0;
  }
  /* ---- output ---- */
  sb_h5_out o = {0};
  if (!st) st = sb_h5_create(&o, out);
  if (!st) {
    int e = 0;
    hsize_t hd[2] = {(hsize_t)n_exc, 784};
    hid_t sp = H5Screate_simple(2, hd, NULL);
    hid_t ds = H5Dcreate2(o.file, "weights", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    e |= ds < 0 || H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, w) < 0;
    if (ds >= 0) H5Dclose(ds);
    H5Sclose(sp);
    int64_t *as = sb_malloc((size_t)n_exc * sizeof *as);
    if (!as) e = 1;
    else {
      for (int i = 0; i < n_exc; i++) as[i] = assign[i];
      e |= sb_h5_write_1d(o.file, "assignments", H5T_STD_I64LE, H5T_NATIVE_INT64, as, (size_t)n_exc) != SB_OK;
      sb_free(as);
    }
    e |= sb_h5_write_1d(o.file, "theta", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, theta, (size_t)n_exc) != SB_OK;
    e |= sb_h5_write_1d(o.file, "test_predictions", H5T_STD_I64LE, H5T_NATIVE_INT64, pred, (size_t)n_test) != SB_OK;
    e |= sb_h5_write_1d(o.file, "test_labels", H5T_STD_U8LE, H5T_NATIVE_UINT8, n_test > 0 ? test.labels + t_off : test.labels,
                        (size_t)n_test) != SB_OK;
    double spi = n_train ? t_train / (double)n_train : 0;
    double attrs[] = {acc, spi, sim_ms};
    const char *an[] = {"accuracy", "seconds_per_train_image", "simulated_train_ms"};
    for (size_t q = 0; q < sizeof attrs / sizeof *attrs; q++) e |= sb_h5_attr_write_doubles(o.file, an[q], &attrs[q], 1) != SB_OK;
    int64_t iattrs[] = {n_exc, n_train, n_label, n_test, seed, threads, sh_train, (int64_t)n_assigned, t_off, tr_off};
    const char *ian[] = {"n_exc", "n_train", "n_label", "n_test", "seed", "threads", "train_showings", "n_assigned",
                         "test_offset", "train_offset"};
    for (size_t q = 0; q < sizeof iattrs / sizeof *iattrs; q++)
      e |= sb_h5_attr_write_int64s(o.file, ian[q], &iattrs[q], 1) != SB_OK;
    e |= sb_h5_attr_write_string(o.file, "format", "spikebridge-diehl-cook") != SB_OK;
    e |= sb_h5_attr_write_string(o.file, "source", "Diehl & Cook 2015, Front. Comput. Neurosci. 9:99") != SB_OK;
    e |= sb_h5_attr_write_string(o.file, "init", init ? init : "") != SB_OK;
    if (e) {
      sb_h5_abort(&o);
      st = SB_SET_ERROR(SB_EIO, "%s: cannot write the results", out);
    } else {
      st = sb_h5_commit(&o);
    }
  }
  if (!st) {
    printf("Diehl & Cook 2015 on Fashion-MNIST: %d excitatory neurons, seed %ld, %ld thread(s)\n", n_exc, seed, threads);
    printf("  train  %ld images (%ld showings) in %.1f s: %.3f s per image, %.0f ms simulated\n", n_train, sh_train,
           t_train, n_train ? t_train / (double)n_train : 0.0, sim_ms);
    printf("  label  %ld training images in %.1f s; %zu of %d neurons assigned a class\n", n_label, t_label, n_assigned, n_exc);
    if (n_test > 0) printf("  test   %ld images (from %ld) in %.1f s: accuracy %.2f%%\n", n_test, t_off, t_test, 100.0 * acc);
    else printf("  test   none (--test 0): accuracy not measured (NaN in the file)\n");
    printf("  wrote  %s\n", out);
  }
  sb_dc_free(dc);
  sb_dataset_free(&train); sb_dataset_free(&test);
  sb_free(lresp); sb_free(tresp); sb_free(assign); sb_free(pred); sb_free(ipred); sb_free(w); sb_free(theta);
  sb_free(w0); sb_free(th0);
  return st ? sb_cli_fail(st) : 0;
}
