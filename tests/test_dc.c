/* Diehl & Cook 2015 network (models/snn/diehl_cook.c, `spikebridge stdp-train`): their STDP rule
 * against an independent event-by-event implementation of their Brian equations; weight
 * normalisation to the column sum; weights within [0, w_max] under strong learning; theta
 * against the spike counts; thread invariance; label assignment, prediction and accuracy on
 * hand-made response matrices; the command end to end and on bad input (exit 2, no file). */
#include "learning/learning.h"
#include "models/ann/ann.h"
#include "models/snn/snn.h"
#include "tests/testutil.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

/* ---- the rule ---- */

/* Diehl & Cook's Brian synapse, written out: traces decay between events; at a pre arrival
 * pre = 1, w = clip(w - nu_pre post1); at a post arrival post2before = post2,
 * w = clip(w + nu_post pre post2before), post1 = 1, post2 = 1. Events in time order. */
typedef struct { double t; int post; } rule_ev;

static double dc_rule_reference(const rule_ev *ev, int n, double w, double nu_pre, double nu_post) {
  double pre = 0, post1 = 0, post2 = 0, last = 0;
  for (int i = 0; i < n; i++) {
    double dt = ev[i].t - last;
    pre *= exp(-dt / 20.0);
    post1 *= exp(-dt / 20.0);
    post2 *= exp(-dt / 40.0);
    last = ev[i].t;
    if (!ev[i].post) {
      pre = 1.0;
      w -= nu_pre * post1;
      if (w < 0) w = 0;
    } else {
      double before = post2;
      w += nu_post * pre * before;
      if (w > 1) w = 1;
      post1 = 1.0;
      post2 = 1.0;
    }
  }
  return w;
}

static void test_rule_vs_reference(void **state) {
  (void)state;
  sb_stdp_params p;
  assert_int_equal(sb_stdp_model_parse("stdp_triplet_nn_synapse", &p), SB_OK);
  assert_string_equal(sb_stdp_model_name(&p), "stdp_triplet_nn_synapse");
  p.tau_plus = 20; p.tau_minus = 20; p.tau_minus_triplet = 40;
  p.Aplus = 0; p.Aplus_triplet = 0.0385; p.Aminus = 0.0123; p.Aminus_triplet = 0; p.Wmax = 1;
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  for (int trial = 0; trial < 20; trial++) {
    /* pre spikes and post spikes (synapse times: post arrival = t_post + d) */
    const double d = 1.7;
    double tpre[60], tpost[40];
    int np = 0, nq = 0;
    for (double t = 0.3; np < 60; np++) { t += 2.0 + gsl_ran_exponential(r, 15.0); tpre[np] = t; }
    for (double t = 0.1; nq < 40; nq++) { t += 3.0 + gsl_ran_exponential(r, 25.0); tpost[nq] = t; }
    rule_ev ev[100];
    int n = 0, i = 0, j = 0;
    while (i < np || j < nq) {   /* ties never happen with these continuous draws */
      if (j >= nq || (i < np && tpre[i] < tpost[j] + d)) ev[n++] = (rule_ev){tpre[i++], 0};
      else { ev[n++] = (rule_ev){tpost[j] + d, 1}; j++; }
    }
    double w0 = 0.1 + 0.8 * gsl_rng_uniform(r);
    double want = dc_rule_reference(ev, n, w0, p.Aminus, p.Aplus_triplet);
    sb_stdp_syn s;
    sb_stdp_syn_init(&s, w0);
    sb_stdp_post post;
    sb_stdp_post_init(&post);
    j = 0;
    for (i = 0; i < np; i++) {   /* the engine's order: post spikes up to t_pre - d are known */
      while (j < nq && tpost[j] + d < tpre[i]) assert_int_equal(sb_stdp_post_spike(&p, &post, tpost[j++]), SB_OK);
      sb_stdp_pre(&p, &s, &post, tpre[i], d);
    }
    while (j < nq) assert_int_equal(sb_stdp_post_spike(&p, &post, tpost[j++]), SB_OK);
    double got = sb_stdp_sync(&p, &s, &post, 1e9, d);
    check_rel(got, want, 1e-12, "Diehl & Cook rule, trial %d, w0 = %g", trial, w0);
    assert_true(fabs(got - w0) > 1e-3);   /* the pattern changes the weight */
    sb_stdp_post_free(&post);
  }
  gsl_rng_free(r);
}

/* ---- the network, tiny ---- */

static sb_dc_params tiny(int threads) {
  sb_dc_params p;
  sb_dc_defaults(&p, 4);
  p.n_input = 16;
  p.norm = 78.0 * 16.0 / 784.0 * 4.0;   /* mean weight 0.4 */
  p.t_present = 120.0;
  p.t_rest = 30.0;
  p.seed = 7;
  p.threads = threads;
  return p;
}

static const uint8_t IMG[3][16] = {
    {255, 255, 0, 0, 255, 255, 0, 0, 0, 0, 30, 0, 0, 0, 0, 0},
    {0, 0, 200, 255, 0, 0, 255, 200, 0, 0, 0, 0, 10, 0, 0, 0},
    {0, 0, 0, 0, 0, 0, 0, 0, 255, 128, 0, 0, 255, 255, 64, 0}};

static void test_normalisation(void **state) {
  (void)state;
  sb_dc_params p = tiny(1);
  sb_dc *dc = NULL;
  assert_int_equal(sb_dc_alloc(&p, &dc), SB_OK);
  double w[64], th[4] = {20, 20, 20, 20}, got[64];
  for (int q = 0; q < 64; q++) w[q] = 0.01 + 0.02385 * (q % 13);
  assert_int_equal(sb_dc_set_state(dc, w, th), SB_OK);
  uint8_t blank[16] = {0};
  uint32_t cnt[4];
  int shown = 0;
  assert_int_equal(sb_dc_present(dc, blank, cnt, &shown), SB_OK);
  assert_int_equal(shown, p.max_repeats + 1);   /* nothing fires: shown again up to the limit */
  assert_int_equal(sb_dc_get_weights(dc, got), SB_OK);
  for (int i = 0; i < 4; i++) {
    double s = 0, s0 = 0;
    for (int j = 0; j < 16; j++) { s += got[i * 16 + j]; s0 += w[i * 16 + j]; }
    check_rel(s, p.norm, 1e-12, "row %d sums to norm after a presentation without input", i);
    for (int j = 0; j < 16; j++)
      check_rel(got[i * 16 + j], w[i * 16 + j] * p.norm / s0, 1e-12, "w[%d][%d] rescaled", i, j);
  }
  sb_dc_free(dc);
}

static void run_tiny(int threads, double nu_post, double *w, double *theta, uint32_t *counts, double *T) {
  sb_dc_params p = tiny(threads);
  p.nu_post = nu_post;
  sb_dc *dc = NULL;
  assert_int_equal(sb_dc_alloc(&p, &dc), SB_OK);
  for (int k = 0; k < 4; k++) counts[k] = 0;
  for (int r = 0; r < 1; r++)
    for (int m = 0; m < 3; m++) {
      uint32_t c[4];
      assert_int_equal(sb_dc_present(dc, IMG[m], c, NULL), SB_OK);
      for (int k = 0; k < 4; k++) counts[k] += c[k];
    }
  assert_int_equal(sb_dc_get_weights(dc, w), SB_OK);
  assert_int_equal(sb_dc_get_theta(dc, theta), SB_OK);
  *T = sb_dc_time(dc);
  sb_dc_free(dc);
}

static void test_bounds_theta_threads(void **state) {
  (void)state;
  double w1[64], w2[64], th1[4], th2[4], T1, T2;
  uint32_t c1[4], c2[4];
  run_tiny(1, 5.0, w1, th1, c1, &T1);   /* a huge rate: any potentiation reaches the upper bound */
  int at_max = 0, at_zero = 0;
  for (int q = 0; q < 64; q++) {
    assert_true(w1[q] >= 0.0 && w1[q] <= 1.0);
    at_max += w1[q] == 1.0;
    at_zero += w1[q] == 0.0;
  }
  assert_true(at_max > 0);
  (void)at_zero;
  uint32_t total = 0;
  for (int i = 0; i < 4; i++) {
    total += c1[i];
    /* theta = theta0 e^{-T/tau_theta} + theta_plus * (spikes, each decayed by less than T/tau_theta);
     * spikes in the rejected showings count too, so >= the accepted counts */
    double base = 20.0 * exp(-T1 / 1e7);
    assert_true(th1[i] >= base + 0.05 * c1[i] * (1 - T1 / 1e7) - 1e-12);
  }
  assert_true(total > 0);
  run_tiny(2, 5.0, w2, th2, c2, &T2);
  for (int q = 0; q < 64; q++) check_abs(w2[q], w1[q], 0, "w[%d] with 2 threads vs 1", q);
  for (int i = 0; i < 4; i++) {
    check_abs(th2[i], th1[i], 0, "theta[%d] with 2 threads vs 1", i);
    assert_int_equal(c2[i], c1[i]);
  }
  check_abs(T2, T1, 0, "simulated time");
}

/* theta after a run equals theta0 decayed plus theta_plus per spike (decayed from its time):
 * with tau_theta = 1e7 ms the decays are below 1e-4 relative, so the count of all spikes
 * (accepted and rejected showings) follows from theta. Frozen: theta constant. */
static void test_frozen_keeps_state(void **state) {
  (void)state;
  sb_dc_params p = tiny(1);
  sb_dc *dc = NULL;
  assert_int_equal(sb_dc_alloc(&p, &dc), SB_OK);
  uint32_t c[4];
  for (int m = 0; m < 3; m++) assert_int_equal(sb_dc_present(dc, IMG[m], c, NULL), SB_OK);
  double w[64], th[4], w2[64], th2[4];
  sb_dc_get_weights(dc, w);
  sb_dc_get_theta(dc, th);
  assert_int_equal(sb_dc_freeze(dc), SB_OK);
  assert_int_equal(sb_dc_set_state(dc, w, th), SB_EINVAL);
  for (int m = 0; m < 3; m++) assert_int_equal(sb_dc_present(dc, IMG[m], c, NULL), SB_OK);
  sb_dc_get_weights(dc, w2);
  sb_dc_get_theta(dc, th2);
  for (int q = 0; q < 64; q++) check_abs(w2[q], w[q], 0, "frozen weight %d", q);
  for (int i = 0; i < 4; i++) check_abs(th2[i], th[i], 0, "frozen theta %d", i);
  sb_dc_free(dc);
  /* bad parameters */
  p.n_exc = 1;
  assert_int_equal(sb_dc_alloc(&p, &dc), SB_EINVAL);
  check_contains(sb_last_error(), "neurons: must be in [2, 4096] (got 1)");
  assert_null(dc);
  p.n_exc = 4097;
  assert_int_equal(sb_dc_alloc(&p, &dc), SB_EINVAL);
  check_contains(sb_last_error(), "neurons: must be in [2, 4096] (got 4097)");
  assert_null(dc);
}

/* ---- labels ---- */

static void test_assign_predict_accuracy(void **state) {
  (void)state;
  /* 6 images, 4 neurons, 3 classes (class 2 has no image) */
  const uint32_t resp[6][4] = {{5, 0, 1, 0}, {3, 0, 2, 0}, {0, 4, 2, 0}, {1, 2, 3, 0}, {0, 0, 2, 0}, {2, 0, 0, 0}};
  const uint8_t lab[6] = {0, 0, 1, 1, 1, 0};
  int as[4];
  sb_dc_assign(&resp[0][0], lab, 6, 4, 3, as);
  /* neuron 0: class 0 mean 10/3, class 1 1/3 -> 0; neuron 1: 0 vs 2 -> 1;
   * neuron 2: 3/3 = 1 vs 7/3 -> 1; neuron 3 never fires -> -1 */
  assert_int_equal(as[0], 0);
  assert_int_equal(as[1], 1);
  assert_int_equal(as[2], 1);
  assert_int_equal(as[3], -1);
  /* a tie goes to the lower class */
  const uint32_t r2[2][1] = {{4}, {4}};
  const uint8_t l2[2] = {3, 1};
  int a2;
  sb_dc_assign(&r2[0][0], l2, 2, 1, 5, &a2);
  assert_int_equal(a2, 1);
  /* prediction: class 0 has neuron 0, class 1 neurons 1 and 2 (mean) */
  const uint32_t q1[4] = {3, 4, 1, 9};   /* class 0: 3, class 1: 2.5 -> 0 (neuron 3 unassigned) */
  const uint32_t q2[4] = {2, 4, 1, 0};   /* 2 vs 2.5 -> 1 */
  const uint32_t q3[4] = {0, 0, 0, 7};   /* no assigned neuron fired -> -1 */
  const uint32_t q4[4] = {2, 3, 1, 0};   /* tie 2 vs 2 -> lower class 0 */
  assert_int_equal(sb_dc_predict(q1, as, 4, 3), 0);
  assert_int_equal(sb_dc_predict(q2, as, 4, 3), 1);
  assert_int_equal(sb_dc_predict(q3, as, 4, 3), -1);
  assert_int_equal(sb_dc_predict(q4, as, 4, 3), 0);
  const int pred[5] = {0, 1, -1, 2, 1};
  const uint8_t truth[5] = {0, 1, 1, 2, 0};
  check_rel(sb_dc_accuracy(pred, truth, 5), 0.6, 1e-15, "3 of 5 right");
  check_abs(sb_dc_accuracy(pred, truth, 0), 0.0, 0, "no images");
  double w[6] = {1, 2, 3, 0, 0, 0};
  sb_dc_normalize(w, 2, 3, 12.0);
  check_rel(w[0], 2.0, 1e-15, "normalised");
  check_rel(w[2], 6.0, 1e-15, "normalised");
  check_abs(w[4], 0.0, 0, "a zero row stays zero");
}

/* ---- the command ---- */

static int have_data(void) {
  const char *d = getenv("SB_DATA_DIR");
  char path[512];
  snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", d && *d ? d : "/usr/share/datasets/fashion-mnist");
  return access(path, R_OK) == 0;
}

static void test_cli_end_to_end(void **state) {
  (void)state;
  if (!have_data()) skip();
  char out[8192], path[512];
  snprintf(path, sizeof path, "%s/dc.h5", sb_test_tmpdir());
  int rc = sb_test_run(out, sizeof out, "stdp-train --neurons 6 --train 4 --label 6 --test 5 --seed 3 -o %s --quiet", path);
  if (rc) fprintf(stderr, "%s\n", out);
  assert_int_equal(rc, 0);
  check_contains(out, "accuracy");
  hid_t f;
  assert_int_equal(sb_h5_open_read(path, &f), SB_OK);
  double *w, *th;
  int64_t *pred, *as;
  uint8_t *lab;
  size_t n, dims[2];
  int rank;
  assert_int_equal(sb_h5_read(f, "weights", H5T_NATIVE_DOUBLE, (void **)&w, &n, &rank, dims, 2), SB_OK);
  assert_int_equal(rank, 2);
  assert_int_equal(dims[0], 6);
  assert_int_equal(dims[1], 784);
  for (size_t i = 0; i < 6; i++) {
    double s = 0;
    for (size_t j = 0; j < 784; j++) {
      assert_true(w[i * 784 + j] >= 0 && w[i * 784 + j] <= 1.0);
      s += w[i * 784 + j];
    }
    /* normalised to 78 before the last showing, then one showing of STDP (which moved sums by
     * up to ~12% in trials): within 25% */
    check_rel(s, 78.0, 0.25, "row %zu sum", i);
  }
  assert_int_equal(sb_h5_read(f, "theta", H5T_NATIVE_DOUBLE, (void **)&th, &n, NULL, NULL, 0), SB_OK);
  assert_int_equal(n, 6);
  assert_int_equal(sb_h5_read(f, "assignments", H5T_NATIVE_INT64, (void **)&as, &n, NULL, NULL, 0), SB_OK);
  for (size_t i = 0; i < n; i++) assert_true(as[i] >= -1 && as[i] < 10);
  assert_int_equal(sb_h5_read(f, "test_predictions", H5T_NATIVE_INT64, (void **)&pred, &n, NULL, NULL, 0), SB_OK);
  assert_int_equal(n, 5);
  assert_int_equal(sb_h5_read(f, "test_labels", H5T_NATIVE_UINT8, (void **)&lab, &n, NULL, NULL, 0), SB_OK);
  double acc, ntr;
  size_t na;
  assert_int_equal(sb_h5_attr_read_doubles(f, "accuracy", &acc, 1, &na), SB_OK);
  assert_int_equal(sb_h5_attr_read_doubles(f, "n_train", &ntr, 1, &na), SB_OK);
  check_abs(ntr, 4, 0, "n_train");
  for (int q = 0; q < 3; q++) {   /* counts are stored as integers (h5py gives 4, not 4.0) */
    hid_t at = H5Aopen(f, (const char *[]){"n_train", "n_exc", "train_showings"}[q], H5P_DEFAULT);
    hid_t ty = H5Aget_type(at);
    assert_int_equal(H5Tget_class(ty), H5T_INTEGER);
    H5Tclose(ty);
    H5Aclose(at);
  }
  int ok = 0;
  for (size_t i = 0; i < 5; i++) ok += pred[i] == lab[i];
  check_rel(acc, ok / 5.0, 1e-15, "accuracy attribute = share of right predictions");
  H5Fclose(f);
  /* --init continues from the file: same weights in, shape checked */
  char p2[512];
  snprintf(p2, sizeof p2, "%s/dc2.h5", sb_test_tmpdir());
  rc = sb_test_run(out, sizeof out, "stdp-train --init %s --train 0 --label 3 --test 2 -o %s --quiet", path, p2);
  assert_int_equal(rc, 0);
  assert_int_equal(sb_h5_open_read(p2, &f), SB_OK);
  double *w2;
  assert_int_equal(sb_h5_read(f, "weights", H5T_NATIVE_DOUBLE, (void **)&w2, &n, NULL, NULL, 0), SB_OK);
  H5Fclose(f);
  assert_int_equal(n, 6 * 784);
  /* no training: the weights in are the weights out, except that the set weights are normalised? no:
   * --train 0 presents nothing, so they are bit-identical */
  for (size_t q = 0; q < n; q++) check_abs(w2[q], w[q], 0, "weight %zu through --init", q);
  sb_free(w); sb_free(th); sb_free(as); sb_free(pred); sb_free(lab); sb_free(w2);
  rc = sb_test_run(out, sizeof out, "stdp-train --init %s --neurons 7 --train 0 --test 0 -o %s --quiet", path, p2);
  assert_int_equal(rc, 2);
  check_contains(out, "--neurons 7 does not match");
}

/* weights (n x 784) and the n_train, train_offset attributes of a stdp-train output */
static double *read_run(const char *path, double *n_train, double *offset) {
  hid_t f;
  assert_int_equal(sb_h5_open_read(path, &f), SB_OK);
  double *w;
  size_t n;
  assert_int_equal(sb_h5_read(f, "weights", H5T_NATIVE_DOUBLE, (void **)&w, &n, NULL, NULL, 0), SB_OK);
  assert_int_equal(sb_h5_attr_read_doubles(f, "n_train", n_train, 1, &n), SB_OK);
  assert_int_equal(sb_h5_attr_read_doubles(f, "train_offset", offset, 1, &n), SB_OK);
  H5Fclose(f);
  return w;
}

/* Largest relative spread over neurons of w1/w0 on the pixels that are 0 in `img`. */
static double zero_pixel_spread(const double *w1, const double *w0, const uint8_t *img, int n) {
  double worst = 0;
  for (int i = 0; i < n; i++) {
    double lo = INFINITY, hi = -INFINITY;
    for (int j = 0; j < 784; j++)
      if (!img[j] && w0[i * 784 + j] > 0) {
        double r = w1[i * 784 + j] / w0[i * 784 + j];
        lo = r < lo ? r : lo;
        hi = r > hi ? r : hi;
      }
    if ((hi - lo) / lo > worst) worst = (hi - lo) / lo;
  }
  return worst;
}

/* --train-seconds stops after the image that passes the limit (0: exactly one image, the same
 * weights as --train 1); --train-offset K trains on image K: an input whose pixel is 0 never
 * spikes, so its weight only changes by the row normalisation, a common factor per neuron on
 * image K's zero pixels (to rounding) and not on image 0's. */
static void test_cli_train_limits(void **state) {
  (void)state;
  if (!have_data()) skip();
  char out[8192], p0[512], p1[512], p2[512];
  snprintf(p0, sizeof p0, "%s/lim0.h5", sb_test_tmpdir());
  snprintf(p1, sizeof p1, "%s/lim1.h5", sb_test_tmpdir());
  snprintf(p2, sizeof p2, "%s/lim2.h5", sb_test_tmpdir());
  const char *common = "--neurons 4 --label 1 --test 1 --seed 3 --quiet";
  assert_int_equal(sb_test_run(out, sizeof out, "stdp-train --train 0 %s -o %s", common, p0), 0);
  assert_int_equal(sb_test_run(out, sizeof out, "stdp-train --train 1 --train-offset 5 %s -o %s", common, p1), 0);
  int rc = sb_test_run(out, sizeof out, "stdp-train --train 50 --train-seconds 0 --train-offset 5 %s -o %s", common, p2);
  if (rc) fprintf(stderr, "%s\n", out);
  assert_int_equal(rc, 0);
  check_contains(out, "train  1 images");
  double nt, off;
  double *w0 = read_run(p0, &nt, &off), *w1 = read_run(p1, &nt, &off);
  check_abs(nt, 1, 0, "n_train of --train 1");
  check_abs(off, 5, 0, "train_offset attribute");
  double *w2 = read_run(p2, &nt, &off);
  check_abs(nt, 1, 0, "n_train after --train-seconds 0 (one image, then the limit)");
  for (size_t q = 0; q < 4 * 784; q++) check_abs(w2[q], w1[q], 0, "weight %zu: --train-seconds 0 vs --train 1", q);
  sb_dataset d = {0};
  assert_int_equal(sb_fmnist_load(NULL, "train", &d), SB_OK);
  double s5 = zero_pixel_spread(w1, w0, d.images + 5 * 784, 4), s0 = zero_pixel_spread(w1, w0, d.images, 4);
  fprintf(stderr, "zero-pixel ratio spread: image 5 %.3g, image 0 %.3g\n", s5, s0);
  assert_true(s5 < 1e-12);
  assert_true(s0 > 1e-3);
  sb_dataset_free(&d);
  sb_free(w0); sb_free(w1); sb_free(w2);
  rc = sb_test_run(out, sizeof out, "stdp-train --train-seconds -1 -o %s --quiet", p2);
  assert_int_equal(rc, 2);
  check_contains(out, "--train-seconds: expected a number of seconds >= 0 (got '-1')");
  rc = sb_test_run(out, sizeof out, "stdp-train --train-offset 60000 -o %s --quiet", p2);
  assert_int_equal(rc, 2);
  check_contains(out, "--train-offset: expected an integer in [0, 59999]");
}

static void test_cli_bad_input(void **state) {
  (void)state;
  char out[4096], path[512];
  snprintf(path, sizeof path, "%s/bad.h5", sb_test_tmpdir());
  struct { const char *args, *msg; } cases[] = {
      {"--neurons 1", "--neurons: expected an integer in [2, 4096] (got '1')"},
      {"--train -3", "--train: expected an integer"},
      {"--test 10001", "--test: expected an integer in [0, 10000]"},
      {"--label 0 --test 5", "--label: need at least one labelling image"},
      {"--init /nonexistent/w.h5", "/nonexistent/w.h5: no such file"},
      {"--init tests/ref/stdp_brian2.h5", "tests/ref/stdp_brian2.h5: --init: expected an output of spikebridge stdp-train"},
      {"--data /nonexistent/dir --train 1", "/nonexistent/dir"},
      {"--bogus", "unknown option '--bogus'"},
      {"--test-offset 9000 --test 2000", "--test-offset 9000 + --test 2000: must be <= 10000"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    int rc = sb_test_run(out, sizeof out, "stdp-train %s -o %s --quiet", cases[i].args, path);
    if (rc != 2) fprintf(stderr, "case %zu: %s\n", i, out);
    assert_int_equal(rc, 2);
    check_contains(out, cases[i].msg);
    assert_false(sb_test_file_exists(path));
  }
  int rc = sb_test_run(out, sizeof out, "stdp-train -o /nonexistent/dir/x.h5 --quiet");
  assert_int_equal(rc, 2);
  check_contains(out, "/nonexistent/dir");
  /* an --init file of the wrong shape */
  char wrong[512];
  snprintf(wrong, sizeof wrong, "%s/wrong.h5", sb_test_tmpdir());
  sb_h5_out o;
  assert_int_equal(sb_h5_create(&o, wrong), SB_OK);
  double z[10] = {0};
  assert_int_equal(sb_h5_write_1d(o.file, "weights", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, z, 10), SB_OK);
  assert_int_equal(sb_h5_write_1d(o.file, "theta", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, z, 2), SB_OK);
  assert_int_equal(sb_h5_attr_write_string(o.file, "format", "spikebridge-diehl-cook"), SB_OK);
  assert_int_equal(sb_h5_commit(&o), SB_OK);
  rc = sb_test_run(out, sizeof out, "stdp-train --init %s -o %s --quiet", wrong, path);
  assert_int_equal(rc, 2);
  check_contains(out, "/weights, /theta: expected (N, 784) and (N) with 2 <= N <= 4096 (got rank 1");
  assert_false(sb_test_file_exists(path));
  rc = sb_test_run(out, sizeof out, "stdp-train --train 0 --test 5 -o %s --quiet", path);
  assert_int_equal(rc, 2);
  check_contains(out, "--label: need at least one labelling image to test (got 0, the default: as many as --train)");
}

/* Writes an --init file: n neurons, weights 0.1 and theta 20 mV, then one damage. */
static void write_init(const char *path, int n, int damage) {
  sb_h5_out o;
  assert_int_equal(sb_h5_create(&o, path), SB_OK);
  size_t nw = (size_t)n * 784;
  double *w = malloc(nw * sizeof *w), *th = malloc((size_t)n * sizeof *th);
  for (size_t q = 0; q < nw; q++) w[q] = 0.1;
  for (int i = 0; i < n; i++) th[i] = 20.0;
  switch (damage) {
    case 1: w[784 + 3] = 5.0; break;                       /* above w_max = 1 */
    case 2: w[7] = NAN; break;
    case 3: for (int j = 0; j < 784; j++) w[784 + j] = 0; break;   /* a neuron without inputs */
    case 4: th[1] = -50.0; break;
    default: break;
  }
  hsize_t wd[2] = {(hsize_t)n, 784}, td[2] = {2, (hsize_t)n / 2};
  hid_t sp = H5Screate_simple(2, wd, NULL);
  hid_t ds = H5Dcreate2(o.file, "weights", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, w) >= 0);
  H5Dclose(ds);
  H5Sclose(sp);
  if (damage == 5) {   /* theta (2, n/2): the right count, the wrong shape */
    sp = H5Screate_simple(2, td, NULL);
    ds = H5Dcreate2(o.file, "theta", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, th) >= 0);
    H5Dclose(ds);
    H5Sclose(sp);
  } else
    assert_int_equal(sb_h5_write_1d(o.file, "theta", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, th, (size_t)n), SB_OK);
  assert_int_equal(sb_h5_attr_write_string(o.file, "format", "spikebridge-diehl-cook"), SB_OK);
  assert_int_equal(sb_h5_commit(&o), SB_OK);
  free(w);
  free(th);
}

/* Damaged --init files are refused before any work (exit 2, the file and the field named, no
 * output); the 4097-neuron one used to overflow a stack buffer while training. */
static void test_cli_damaged_init(void **state) {
  (void)state;
  if (!have_data()) skip();
  char out[4096], path[512], init[512];
  snprintf(path, sizeof path, "%s/dmg_out.h5", sb_test_tmpdir());
  snprintf(init, sizeof init, "%s/dmg_init.h5", sb_test_tmpdir());
  struct { int n, damage; const char *msg; } cases[] = {
      {4097, 0, "with 2 <= N <= 4096 (got 4097 x 784"},
      {4, 1, "dmg_init.h5: --init: weights[1][3]: must be in [0, w_max = 1] (got 5)"},
      {4, 2, "dmg_init.h5: --init: weights[0][7]: must be in [0, w_max = 1] (got nan)"},
      {4, 3, "dmg_init.h5: --init: weights[1]: all 784 input weights are 0"},
      {4, 4, "dmg_init.h5: --init: theta[1]: must be in [0, 1e4] mV (got -50)"},
      {4, 5, "(got 4 x 784 and 4 value(s) of rank 2)"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    write_init(init, cases[i].n, cases[i].damage);
    int rc = sb_test_run(out, sizeof out, "stdp-train --init %s --train 1 --label 1 --test 1 -o %s --quiet", init, path);
    if (rc != 2) fprintf(stderr, "case %zu: %s\n", i, out);
    assert_int_equal(rc, 2);
    check_contains(out, cases[i].msg);
    assert_false(sb_test_file_exists(path));
  }
  write_init(init, 4, 0);   /* the undamaged file is accepted */
  int rc = sb_test_run(out, sizeof out, "stdp-train --init %s --train 1 --label 1 --test 1 -o %s --quiet", init, path);
  if (rc) fprintf(stderr, "%s\n", out);
  assert_int_equal(rc, 0);
  assert_true(sb_test_file_exists(path));
}

int main(int argc, char **argv) {
  (void)argc;
  /* The 2-thread run has a barrier every 0.5 ms window; on a loaded machine spinning OpenMP
   * threads wait for each other's time slices. libgomp reads the policy at start-up only. */
  if (!getenv("OMP_WAIT_POLICY")) {
    setenv("OMP_WAIT_POLICY", "passive", 1);
    execv("/proc/self/exe", argv);
  }
  gsl_set_error_handler_off();
  sb_h5_quiet();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rule_vs_reference),    cmocka_unit_test(test_normalisation),
      cmocka_unit_test(test_bounds_theta_threads), cmocka_unit_test(test_frozen_keeps_state),
      cmocka_unit_test(test_assign_predict_accuracy), cmocka_unit_test(test_cli_end_to_end),
      cmocka_unit_test(test_cli_train_limits),
      cmocka_unit_test(test_cli_bad_input),        cmocka_unit_test(test_cli_damaged_init),
  };
  return cmocka_run_group_tests_name("diehl_cook", tests, NULL, NULL);
}
