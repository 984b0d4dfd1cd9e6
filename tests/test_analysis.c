/* Spike-train statistics against references: the numpy/scipy re-implementation of Elephant in
 * tests/ref/make_analysis_ref.py (fixture tests/ref/analysis_ref.h5), the examples printed in
 * Elephant's docstrings, and analytic values (regular and Poisson trains, small distances). */
#include "analysis/analysis.h"
#include "tests/testutil.h"

#include <gsl/gsl_randist.h>

#define REF "tests/ref/analysis_ref.h5"

/* ---- fixture access ---- */

static double *ref_read(hid_t f, const char *name, size_t *n) {
  void *d = NULL;
  size_t m = 0;
  assert_int_equal(sb_h5_read(f, name, H5T_NATIVE_DOUBLE, &d, &m, NULL, NULL, 0), SB_OK);
  if (n) *n = m;
  return d;
}

static double ref_attr(hid_t f, const char *name) {
  hid_t g = H5Gopen2(f, "ref", H5P_DEFAULT);
  double v = NAN;
  size_t n = 0;
  assert_int_equal(sb_h5_attr_read_doubles(g, name, &v, 1, &n), SB_OK);
  H5Gclose(g);
  return v;
}

/* both NaN, or close */
static void check_nan_or_rel(double got, double want, double tol, const char *what, size_t i) {
  if (isnan(want)) {
    if (!isnan(got)) { fprintf(stderr, "%s[%zu]: got %g, want nan\n", what, i, got); fail(); }
    return;
  }
  check_rel(got, want, tol, "%s[%zu]", what, i);
}

static void opts_from_ref(hid_t f, sb_stats_opts *o) {
  sb_stats_opts_default(o);
  o->t_start = ref_attr(f, "t_start");
  o->t_stop = ref_attr(f, "t_stop");
  o->bin = ref_attr(f, "bin");
  o->sigma = ref_attr(f, "sigma");
  o->sttc_dt = ref_attr(f, "sttc_dt");
  o->vr_tau = ref_attr(f, "vr_tau");
  o->vp_q = ref_attr(f, "vp_q");
  o->cch_max_lag = 50.0;
  o->n_pairs_neurons = 100;
}

/* The whole streaming summary of a population against the fixture. */
static void check_summary(const char *pop, size_t window, int min_passes) {
  hid_t f;
  assert_int_equal(sb_h5_open_read(REF, &f), SB_OK);
  sb_stats_opts o;
  opts_from_ref(f, &o);
  o.window = window;
  size_t K, nb, ni;
  double *ids = ref_read(f, "ref/ids", &K);
  double *n = ref_read(f, "ref/n", NULL), *rate = ref_read(f, "ref/rate", NULL);
  double *cv = ref_read(f, "ref/cv", NULL), *cv2 = ref_read(f, "ref/cv2", NULL), *lv = ref_read(f, "ref/lv", NULL);
  double *fano = ref_read(f, "ref/fano", NULL), *psth = ref_read(f, "ref/psth_rate", &nb);
  double *irate = ref_read(f, "ref/irate", &ni), *cc = ref_read(f, "ref/corrcoef", NULL);
  double *sttc = ref_read(f, "ref/sttc", NULL), *vr = ref_read(f, "ref/van_rossum", NULL);
  double *vp = ref_read(f, "ref/victor_purpura", NULL), *cch = ref_read(f, "ref/cch_summed", NULL);
  double *chi = ref_read(f, "ref/chi", NULL), *isi = ref_read(f, "ref/isi_hist", NULL);
  H5Fclose(f);

  sb_spk_file *sf;
  assert_int_equal(sb_spk_open(REF, &sf), SB_OK);
  long p = sb_spk_find_pop(sf, pop);
  assert_true(p >= 0);
  sb_stats_summary *s;
  assert_int_equal(sb_stats_summarize(sf, (size_t)p, &o, &s), SB_OK);
  assert_int_equal(s->n_neurons, K);
  assert_true(s->passes >= min_passes);
  /* the memory bound: one window of spikes, plus (unsorted files) one id range of at most
   * max(window, the largest neuron's 50 spikes) */
  size_t W = window < s->n_spikes_file ? window : s->n_spikes_file;
  if (s->peak_window_spikes > W + (W > 50 ? W : 50))
    fprintf(stderr, "%s: peak %zu spikes held, window %zu\n", pop, s->peak_window_spikes, W);
  assert_true(s->peak_window_spikes <= W + (W > 50 ? W : 50));
  if (min_passes == 3) assert_int_equal(s->peak_window_spikes, W);
  /* tolerances: 1e-12 relative for closed forms (summation order differs from numpy) */
  for (size_t i = 0; i < K; i++) {
    assert_int_equal(s->neurons[i].id, (uint64_t)ids[i]);
    assert_int_equal(s->neurons[i].n, (size_t)n[i]);
    check_rel(s->neurons[i].rate, rate[i], 1e-12, "%s rate id %g", pop, ids[i]);
    check_nan_or_rel(s->neurons[i].cv, cv[i], 1e-10, "cv", i);
    check_nan_or_rel(s->neurons[i].cv2, cv2[i], 1e-12, "cv2", i);
    check_nan_or_rel(s->neurons[i].lv, lv[i], 1e-12, "lv", i);
    check_nan_or_rel(s->neurons[i].fano, fano[i], 1e-12, "fano", i);
  }
  assert_int_equal(s->neurons[4].why_cv, SB_WHY_FEW_SPIKES);
  assert_int_equal(s->n_bins, nb);
  for (size_t b = 0; b < nb; b++) check_abs(s->psth[b], psth[b], 1e-9, "%s psth[%zu]", pop, b);
  assert_int_equal(s->n_irate, ni);
  /* fftconvolve in the reference: absolute error ~1e-12 of the peak */
  for (size_t b = 0; b < ni; b++) check_abs(s->irate[b], irate[b], 1e-9, "%s irate[%zu]", pop, b);
  check_rel(s->chi, chi[0], 1e-10, "%s golomb chi", pop);
  for (int b = 0; b < SB_ISI_HIST_BINS; b++) check_abs(s->isi_hist[b], isi[b], 0, "isi_hist[%d]", b);
  assert_int_equal(s->K, K);
  /* pair matrices are in activity order; map to the fixture's id order */
  size_t *pos = malloc(K * sizeof *pos);
  for (size_t a = 0; a < K; a++)
    for (size_t b = 0; b < K; b++)
      if (s->pair_ids[a] == (uint64_t)ids[b]) pos[a] = b;
  for (size_t a = 0; a < K; a++)
    for (size_t b = 0; b < K; b++) {
      size_t ra = pos[a], rb = pos[b];
      check_nan_or_rel(s->corrcoef[a * K + b], cc[ra * K + rb], 1e-10, "corrcoef", ra * K + rb);
      check_nan_or_rel(s->sttc[a * K + b], sttc[ra * K + rb], 1e-12, "sttc", ra * K + rb);
      if (a != b) {
        check_rel(s->van_rossum[a * K + b], vr[ra * K + rb], 1e-10, "van rossum %zu %zu", ra, rb);
        check_rel(s->victor_purpura[a * K + b], vp[ra * K + rb], 1e-12, "victor purpura %zu %zu", ra, rb);
      }
    }
  for (size_t l = 0; l < 2 * s->cch_L + 1; l++) check_abs(s->cch[l], cch[l], 0, "cch summed lag %zu", l);
  free(pos);
  sb_stats_summary_free(s);
  sb_spk_close(sf);
  free(ids); free(n); free(rate); free(cv); free(cv2); free(lv); free(fano); free(psth); free(irate);
  free(cc); free(sttc); free(vr); free(vp); free(cch); free(chi); free(isi);
}

static int cmp_double_test(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return a < b ? -1 : a > b;
}

static void test_summary_vs_fixture_by_time(void **state) {
  (void)state;
  check_summary("mixed", 1 << 20, 3);
  check_summary("mixed", 5, 3);   /* 5 spikes per chunk: every state carried across chunks */
}

static void test_summary_vs_fixture_unsorted(void **state) {
  (void)state;
  /* random order: the id-partitioned passes (window 40 spikes -> several id ranges) */
  check_summary("shuffled", 40, 5);
  check_summary("mislabelled", 40, 5);
}

/* Default t_stop (last spike): a by_time file takes its last timestamp without a pass over the
 * times; a file whose `sorting` attribute lies must still give the right answer. */
static void test_default_t_stop_and_wrong_sorting_attribute(void **state) {
  (void)state;
  sb_spk_file *sf;
  assert_int_equal(sb_spk_open(REF, &sf), SB_OK);
  sb_stats_opts o;
  sb_stats_opts_default(&o);
  o.window = 16;
  sb_stats_summary *s[3];
  const char *pops[3] = {"mixed", "shuffled", "mislabelled"};
  for (int k = 0; k < 3; k++) {
    long p = sb_spk_find_pop(sf, pops[k]);
    assert_true(p >= 0);
    assert_int_equal(sb_stats_summarize(sf, (size_t)p, &o, &s[k]), SB_OK);
  }
  size_t ns = sb_spk_pop(sf, 0)->n_spikes;
  double *t = malloc(ns * sizeof *t), tmax = 0;
  assert_int_equal(sb_spk_read(sf, 0, 0, ns, t, NULL), SB_OK);
  for (size_t i = 0; i < ns; i++) tmax = fmax(tmax, t[i]);
  free(t);
  check_abs(s[0]->t_stop, tmax, 0, "default t_stop = last spike of the population");
  assert_true(s[0]->passes < s[1]->passes);   /* by_time: no times-only pass */
  for (int k = 1; k < 3; k++) {
    check_abs(s[k]->t_stop, s[0]->t_stop, 0, "%s t_stop", pops[k]);
    assert_int_equal(s[k]->n_spikes, s[0]->n_spikes);
    for (size_t i = 0; i < s[0]->n_neurons; i++) {
      check_nan_or_rel(s[k]->neurons[i].lv, s[0]->neurons[i].lv, 1e-12, "lv by order", i);
      check_nan_or_rel(s[k]->neurons[i].fano, s[0]->neurons[i].fano, 1e-12, "fano by order", i);
    }
    check_rel(s[k]->chi, s[0]->chi, 1e-12, "%s chi", pops[k]);
  }
  for (int k = 0; k < 3; k++) sb_stats_summary_free(s[k]);
  sb_spk_close(sf);
}

/* Array functions on the fixture's trains (read back through the reader). */
static void test_array_functions_vs_fixture(void **state) {
  (void)state;
  hid_t f;
  assert_int_equal(sb_h5_open_read(REF, &f), SB_OK);
  sb_stats_opts o;
  opts_from_ref(f, &o);
  size_t K, ni;
  double *ids = ref_read(f, "ref/ids", &K), *cv = ref_read(f, "ref/cv", NULL), *fano = ref_read(f, "ref/fano", NULL);
  double *cc = ref_read(f, "ref/corrcoef", NULL), *cch = ref_read(f, "ref/cch_3_30", NULL);
  double *irate = ref_read(f, "ref/irate", &ni), *lv = ref_read(f, "ref/lv", NULL);
  H5Fclose(f);
  sb_spk_file *sf;
  assert_int_equal(sb_spk_open(REF, &sf), SB_OK);
  long pm = sb_spk_find_pop(sf, "mixed");   /* the time-sorted copy */
  assert_true(pm >= 0);
  size_t n = sb_spk_pop(sf, (size_t)pm)->n_spikes;
  double *t = malloc(n * sizeof *t);
  uint64_t *id = malloc(n * sizeof *id);
  assert_int_equal(sb_spk_read(sf, (size_t)pm, 0, n, t, id), SB_OK);
  double **tr = calloc(K, sizeof *tr);
  size_t *nt = calloc(K, sizeof *nt);
  for (size_t k = 0; k < K; k++) tr[k] = malloc(n * sizeof **tr);
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; k < K; k++)
      if (id[i] == (uint64_t)ids[k] && t[i] >= o.t_start && t[i] <= o.t_stop) tr[k][nt[k]++] = t[i];
  size_t B = sb_stats_n_bins(o.t_start, o.t_stop, o.bin);
  assert_int_equal(B, 142);
  double *x = calloc(K * B, sizeof *x), *c = malloc(K * K * sizeof *c), *isi = malloc(n * sizeof *isi);
  for (size_t k = 0; k < K; k++) {
    sb_stats_bin(tr[k], nt[k], o.t_start, o.t_stop, o.bin, B, x + k * B);
    size_t m = sb_stats_isi(tr[k], nt[k], isi);
    sb_stats_why_code why;
    check_nan_or_rel(sb_stats_cv(isi, m, &why), cv[k], 1e-12, "sb_stats_cv", k);
    check_nan_or_rel(sb_stats_lv(isi, m, &why), lv[k], 1e-12, "sb_stats_lv", k);
    check_nan_or_rel(sb_stats_fano(x + k * B, B, &why), fano[k], 1e-12, "sb_stats_fano", k);
  }
  sb_stats_corrcoef(x, K, B, c);
  for (size_t i = 0; i < K * K; i++) check_nan_or_rel(c[i], cc[i], 1e-12, "sb_stats_corrcoef", i);
  free(x); free(c); free(isi);
  /* CCH of the pair (3, 30): positive lags = neuron 30 after neuron 3 */
  size_t k3 = 0, k30 = 0;
  for (size_t k = 0; k < K; k++) { if (ids[k] == 3) k3 = k; if (ids[k] == 30) k30 = k; }
  double *a = calloc(B, sizeof *a), *b = calloc(B, sizeof *b), out[15];
  sb_stats_bin(tr[k3], nt[k3], o.t_start, o.t_stop, o.bin, B, a);
  sb_stats_bin(tr[k30], nt[k30], o.t_start, o.t_stop, o.bin, B, b);
  sb_stats_cch(a, b, B, 7, out);
  for (int l = 0; l < 15; l++) check_abs(out[l], cch[l], 0, "sb_stats_cch lag %d", l - 7);
  free(a); free(b);
  /* instantaneous rate from the raw trains */
  double *r = malloc((ni + 1) * sizeof *r);
  assert_int_equal(sb_stats_irate_len(o.t_start, o.t_stop, o.bin), ni);
  assert_int_equal(sb_stats_instantaneous_rate((const double *const *)tr, nt, K, o.t_start, o.t_stop, o.bin, o.sigma, r), SB_OK);
  for (size_t i = 0; i < ni; i++) check_abs(r[i], irate[i], 1e-9, "sb_stats_instantaneous_rate[%zu]", i);
  free(r);
  for (size_t k = 0; k < K; k++) free(tr[k]);
  free(tr); free(nt); free(t); free(id);
  sb_spk_close(sf);
  free(ids); free(cv); free(fano); free(cc); free(cch); free(irate); free(lv);
}

/* ---- Elephant's own docstring examples ---- */

static void test_elephant_doc_examples(void **state) {
  (void)state;
  const double v[4] = {0.3, 4.5, 6.7, 9.3};
  sb_stats_why_code why;
  /* statistics.cv2([0.3, 4.5, 6.7, 9.3]) and lv(...) take intervals directly */
  check_rel(sb_stats_cv2(v, 4, &why), 0.8226190476190478, 1e-14, "elephant cv2 docstring");
  check_rel(sb_stats_lv(v, 4, &why), 0.8306154336734695, 1e-14, "elephant lv docstring");
  /* mean_firing_rate([0.3, 4.5, 6.7, 9.3]) = 0.4301075268817204 per time unit (t_stop = max);
   * our times are ms and rates Hz, hence x1000 */
  check_rel(sb_stats_mean_rate(v, 4, 0.0, 9.3, &why), 430.1075268817204, 1e-14, "elephant mean_firing_rate docstring");
  /* fanofactor of trains with 4 and 3 spikes */
  const double counts[2] = {4, 3};
  check_rel(sb_stats_fano(counts, 2, &why), 0.07142857142857142, 1e-14, "elephant fanofactor docstring");
  /* time_histogram([[0.3,4.5,6.7,9.3],[0.7,4.3,8.2]], bin 1, t 0..10) = [2,0,0,0,2,0,1,0,1,1] */
  const double b[3] = {0.7, 4.3, 8.2}, want[10] = {2, 0, 0, 0, 2, 0, 1, 0, 1, 1};
  double h[10] = {0};
  size_t nb = sb_stats_n_bins(0, 10, 1);
  assert_int_equal(nb, 10);
  sb_stats_bin(v, 4, 0, 10, 1, nb, h);
  sb_stats_bin(b, 3, 0, 10, 1, nb, h);
  for (int i = 0; i < 10; i++) check_abs(h[i], want[i], 0, "elephant time_histogram docstring bin %d", i);
  /* spike_time_tiling_coefficient docstring, ms, t_stop 50, dt 5 ms */
  const double s1[8] = {1.3, 7.56, 15.87, 28.23, 30.9, 34.2, 38.2, 43.2}, s2[6] = {1.02, 2.71, 18.82, 28.46, 28.79, 43.6};
  check_rel(sb_stats_sttc(s1, 8, s2, 6, 5.0, 0.0, 50.0, &why), 0.4958601655933762, 1e-13, "elephant sttc docstring");
  /* instantaneous_rate(SpikeTrain([0] s, t_stop=1 s), sampling_period=200 ms,
   * GaussianKernel(300 ms), t_start=-1 s): shifted by +1000 ms here (our times are >= 0) */
  const double st0[1] = {1000.0};
  const double *tr[1] = {st0};
  size_t n1[1] = {1};
  const double wr[10] = {0.01007419, 0.05842767, 0.22928759, 0.60883028, 1.0938699,
                         1.3298076, 1.0938699, 0.60883028, 0.22928759, 0.05842767};
  assert_int_equal(sb_stats_irate_len(0, 2000, 200), 10);
  double r[10];
  assert_int_equal(sb_stats_instantaneous_rate(tr, n1, 1, 0, 2000, 200, 300, r), SB_OK);
  for (int i = 0; i < 10; i++) check_rel(r[i], wr[i], 1e-6, "elephant instantaneous_rate docstring [%d] (8 digits printed)", i);
  /* victor_purpura_distance docstring trains, q = 1/(10 ms): shifts 2 and 4 ms cost 0.6 */
  const double va[3] = {10, 20, 30}, vb[3] = {12, 24, 30};
  check_rel(sb_stats_victor_purpura(va, 3, vb, 3, 0.1), 0.6, 1e-14, "victor purpura docstring trains");
}

/* ---- analytic values ---- */

static void test_analytic_regular_and_poisson(void **state) {
  (void)state;
  enum { N = 1000 };
  static double t[N], isi[N];
  for (int i = 0; i < N; i++) t[i] = 2.385 + 10.0 * i;
  size_t m = sb_stats_isi(t, N, isi);
  assert_int_equal(m, N - 1);
  sb_stats_why_code why;
  /* float rounding of 2.385 + 10 i: intervals equal to ~1e-12 */
  check_abs(sb_stats_cv(isi, m, &why), 0.0, 1e-12, "regular train CV");
  check_abs(sb_stats_cv2(isi, m, &why), 0.0, 1e-12, "regular train CV2");
  check_abs(sb_stats_lv(isi, m, &why), 0.0, 1e-12, "regular train LV");
  check_rel(sb_stats_mean_rate(t, N, 0, 10000, &why), 100.0, 1e-12, "regular train rate 100 Hz");

  /* Poisson 20 Hz, 200000 spikes: CV, CV2, LV = 1 and Fano = 1; sampling error of CV ~ 1/sqrt(n) = 0.2% */
  enum { P = 200000 };
  double *pt = malloc(P * sizeof *pt), *pi = malloc(P * sizeof *pi);
  gsl_rng *r = sb_rng_alloc(2385, SB_RNG_USER, 1);
  double acc = 0;
  for (int i = 0; i < P; i++) { acc += gsl_ran_exponential(r, 50.0); pt[i] = acc; }
  gsl_rng_free(r);
  m = sb_stats_isi(pt, P, pi);
  check_rel(sb_stats_cv(pi, m, &why), 1.0, 0.02, "Poisson CV within 2%% of 1");
  check_rel(sb_stats_cv2(pi, m, &why), 1.0, 0.02, "Poisson CV2 within 2%% of 1");
  check_rel(sb_stats_lv(pi, m, &why), 1.0, 0.02, "Poisson LV within 2%% of 1");
  size_t B = sb_stats_n_bins(0, pt[P - 1], 100.0);
  double *c = calloc(B, sizeof *c);
  sb_stats_bin(pt, P, 0, pt[P - 1], 100.0, B, c);
  check_rel(sb_stats_fano(c, B, &why), 1.0, 0.03, "Poisson Fano (100 ms bins) within 3%% of 1");
  free(c);
  free(pt);
  free(pi);
}

static void test_analytic_distances(void **state) {
  (void)state;
  const double one[1] = {12.5}, other[1] = {20.0}, three[3] = {3.0, 7.25, 40.0};
  /* Elephant normalisation: empty vs one spike = 1 */
  check_rel(sb_stats_van_rossum(one, 1, NULL, 0, 10.0), 1.0, 1e-15, "van Rossum one spike vs empty");
  /* two single spikes d apart: sqrt(2 (1 - e^{-d/tau})) */
  check_rel(sb_stats_van_rossum(one, 1, other, 1, 10.0), sqrt(2.0 * (1.0 - exp(-7.5 / 10.0))), 1e-14,
            "van Rossum two single spikes");
  check_abs(sb_stats_van_rossum(three, 3, three, 3, 10.0), 0.0, 1e-7, "van Rossum of a train with itself");
  /* late spikes (t/tau >> 709, where a naive exp(t/tau) overflows) */
  const double late1[1] = {1e5 + 12.5}, late2[2] = {1e5 + 20.0, 2e5};
  check_rel(sb_stats_van_rossum(late1, 1, late2, 1, 10.0), sqrt(2.0 * (1.0 - exp(-7.5 / 10.0))), 1e-12,
            "van Rossum two single spikes at 100 s");
  check_rel(sb_stats_van_rossum(late1, 1, late2, 2, 10.0), sqrt(3.0 - 2.0 * exp(-7.5 / 10.0)), 1e-12,
            "van Rossum 1 vs 2 spikes at 100 s");
  /* one spike vs three: closed form from the double sum */
  double s_aa = 1, s_bb = 0, s_ab = 0;
  for (int i = 0; i < 3; i++) {
    s_ab += exp(-fabs(12.5 - three[i]) / 10.0);
    for (int j = 0; j < 3; j++) s_bb += exp(-fabs(three[i] - three[j]) / 10.0);
  }
  check_rel(sb_stats_van_rossum(one, 1, three, 3, 10.0), sqrt(s_aa + s_bb - 2 * s_ab), 1e-14, "van Rossum 1 vs 3 spikes");
  check_rel(sb_stats_van_rossum(one, 1, three, 3, 0.0), 2.0, 1e-15, "van Rossum tau=0: sqrt(na+nb)");
  check_rel(sb_stats_van_rossum(one, 1, three, 3, INFINITY), 2.0, 1e-15, "van Rossum tau=inf: |na-nb|");
  /* Victor-Purpura: shift cheaper than delete+insert below 2/q */
  check_rel(sb_stats_victor_purpura(one, 1, other, 1, 0.1), 0.75, 1e-14, "VP shift 7.5 ms at q=0.1");
  check_rel(sb_stats_victor_purpura(one, 1, other, 1, 1.0), 2.0, 1e-14, "VP delete+insert when shift costs more");
  check_rel(sb_stats_victor_purpura(three, 3, NULL, 0, 0.1), 3.0, 1e-14, "VP vs empty = count");
  check_rel(sb_stats_victor_purpura(one, 1, three, 3, 0.0), 2.0, 1e-14, "VP q=0: |na-nb|");
  check_rel(sb_stats_victor_purpura(one, 1, three, 3, INFINITY), 4.0, 1e-14, "VP q=inf: na+nb");
  /* one (12.5) vs three: keep 7.25 shifted by 5.25 (0.525), delete 3.0 and 40.0 -> 2.525 */
  check_rel(sb_stats_victor_purpura(one, 1, three, 3, 0.1), 2.525, 1e-14, "VP 1 vs 3 spikes");
  /* the segmented DP equals the full DP (no segmentation) on random 400-spike trains */
  gsl_rng *r = sb_rng_alloc(11, SB_RNG_USER, 2);
  enum { NV = 400 };
  double va[NV], vb[NV], acc_a = 0, acc_b = 0;
  for (int i = 0; i < NV; i++) {
    acc_a += gsl_ran_exponential(r, 12.0);
    acc_b += gsl_ran_exponential(r, 9.0);
    va[i] = acc_a;
    vb[i] = acc_b;
  }
  gsl_rng_free(r);
  for (int qi = 0; qi < 3; qi++) {
    double q = (double[]){0.02, 0.1, 0.7}[qi];
    static double row[NV + 1];
    for (int j = 0; j <= NV; j++) row[j] = j;
    for (int i = 1; i <= NV; i++) {
      double diag = row[0];
      row[0] = i;
      for (int j = 1; j <= NV; j++) {
        double up = row[j], v = fmin(fmin(up + 1, row[j - 1] + 1), diag + q * fabs(va[i - 1] - vb[j - 1]));
        diag = up;
        row[j] = v;
      }
    }
    check_rel(sb_stats_victor_purpura(va, NV, vb, NV, q), row[NV], 1e-12, "VP segmented vs full DP, q=%g", q);
    assert_true(sb_stats_victor_purpura_cells(va, NV, vb, NV, q) <= (double)NV * NV);
  }
  /* Golomb chi: identical trains give 1 */
  const double pop[4] = {2, 0, 4, 2};   /* two identical neurons with counts 1,0,2,1 */
  double var1 = 0.5;                    /* var of {1,0,2,1} = 0.5 */
  sb_stats_why_code why;
  check_rel(sb_stats_golomb_chi(pop, 4, 2 * var1, 2, &why), 1.0, 1e-14, "Golomb chi identical trains");
}

/* ---- too few spikes and edges: NaN with a reason, never a crash ---- */

static void test_nan_reasons_and_edges(void **state) {
  (void)state;
  sb_stats_why_code why = SB_WHY_OK;
  const double isi1[1] = {5.0}, t2[2] = {1.0, 2.0};
  assert_true(isnan(sb_stats_cv(isi1, 1, &why)));
  assert_int_equal(why, SB_WHY_FEW_SPIKES);
  assert_true(isnan(sb_stats_cv2(NULL, 0, &why)));
  assert_true(isnan(sb_stats_lv(isi1, 1, &why)));
  check_contains(sb_stats_why(why), "fewer than 3 spikes");
  const double zeros[3] = {0, 0, 0};
  assert_true(isnan(sb_stats_fano(zeros, 3, &why)));
  assert_int_equal(why, SB_WHY_ZERO_MEAN);
  assert_true(isnan(sb_stats_sttc(t2, 2, NULL, 0, 5, 0, 10, &why)));
  assert_int_equal(why, SB_WHY_NO_SPIKES);
  assert_true(isnan(sb_stats_mean_rate(t2, 2, 5, 5, &why)));
  assert_int_equal(why, SB_WHY_EMPTY_WINDOW);
  const double zz[3] = {0, 0, 1};   /* two zero intervals in a row: CV2/LV undefined */
  assert_true(isnan(sb_stats_cv2(zz, 3, &why)));
  assert_int_equal(why, SB_WHY_ZERO_INTERVAL);
  double x[6] = {0, 0, 0, 1, 0, 2}, c[4];
  sb_stats_corrcoef(x, 2, 3, c);   /* a silent row: NaN row and column */
  assert_true(isnan(c[0]) && isnan(c[1]) && isnan(c[2]));
  check_rel(c[3], 1.0, 1e-15, "corrcoef diagonal");
  /* binning conventions (BinnedSpikeTrain + round_binning_errors) */
  assert_int_equal(sb_stats_n_bins(0, 0.3, 0.1), 3);        /* 2.9999999999999996 -> 3 */
  assert_int_equal(sb_stats_n_bins(0, 1000, 7), 142);
  assert_int_equal(sb_stats_bin_index(1000, 0, 1000, 10, 100), -1);   /* t_stop on an edge: dropped */
  assert_int_equal(sb_stats_bin_index(999.99, 0, 1000, 10, 100), 99);
  assert_int_equal(sb_stats_bin_index(0.3, 0, 1, 0.1, 10), 3);        /* 2.9999999999999996 -> bin 3 */
  assert_int_equal(sb_stats_bin_index(-0.1, 0, 1, 0.1, 10), -1);
  /* rate honours t_start/t_stop inclusive at both ends */
  const double t3[3] = {1.0, 2.0, 3.0};
  check_rel(sb_stats_mean_rate(t3, 3, 1.0, 2.0, &why), 2000.0, 1e-15, "rate counts both window ends");
}

/* Every allocation failure in open + summarise gives SB_ENOMEM (or success), never a crash or,
 * under `make sanitize`, a leak. */
static void test_allocation_failures(void **state) {
  (void)state;
  int failed = 0, n;
  for (n = 1; n < 2000; n++) {
    sb_alloc_fail_after(n);
    sb_spk_file *sf = NULL;
    int st = sb_spk_open(REF, &sf);
    sb_stats_summary *s = NULL;
    if (!st) {
      sb_stats_opts o;
      sb_stats_opts_default(&o);
      o.window = 30;   /* "shuffled" (index 2) takes the id-partitioned path */
      for (size_t p = 0; p < sb_spk_n_pops(sf) && !st; p++) {
        st = sb_stats_summarize(sf, p, &o, &s);
        sb_stats_summary_free(s);
        s = NULL;
      }
    }
    sb_spk_close(sf);
    sb_alloc_fail_after(0);
    if (st != SB_OK && st != SB_ENOMEM) fprintf(stderr, "fail at %d: %d %s\n", n, st, sb_last_error());
    assert_true(st == SB_OK || st == SB_ENOMEM);
    if (st == SB_ENOMEM) failed++;
    else break;   /* the n-th allocation was never reached: every earlier one was exercised */
  }
  if (failed <= 20) fprintf(stderr, "only %d allocation failures exercised (n = %d)\n", failed, n);
  assert_true(failed > 20);
  assert_true(n < 2000);
}

/* Pairwise measures when a train exceeds the 200000 kept spikes: before, each train kept its
 * first 200000 spikes in file order and corr/STTC were taken over the whole window (the user
 * trial: corr 0.474 and STTC 0.840 against 0.422 and 0.338). Now all trains are taken over
 * [t_start, p1), p1 the earliest 200000th spike of a capped train, and are complete there.
 * Two neurons, 260000 and 230000 spikes, neuron 0 written latest first (so file order is not
 * time order); the reference applies the same measures to the trains cut at p1 here (dense
 * binning and the Pearson formula; STTC by sb_stats_sttc, tested against Elephant elsewhere). */
static void test_pairs_beyond_cap(void **state) {
  (void)state;
  const size_t n0 = 260000, n1 = 230000, n = n0 + n1;
  double *t = malloc(n * sizeof *t), *a = malloc(n0 * sizeof *a), *b = malloc(n1 * sizeof *b);
  uint64_t *id = malloc(n * sizeof *id);
  assert_non_null(t);
  uint64_t x = 12345;
  for (size_t i = 0; i < n0; i++) { x = x * 6364136223846793005ULL + 1442695040888963407ULL; a[i] = (double)(x >> 11) / 9007199254740992.0 * 1e6; }
  for (size_t i = 0; i < n1; i++) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    double u = (double)(x >> 11) / 9007199254740992.0;
    b[i] = i % 2 ? u * 1e6 : fmin(1e6, a[i] + 0.5 * u);   /* half of b follows a: correlated */
  }
  qsort(a, n0, sizeof *a, cmp_double_test);
  qsort(b, n1, sizeof *b, cmp_double_test);
  for (size_t i = 0; i < n0; i++) { t[i] = a[n0 - 1 - i]; id[i] = 0; }   /* latest first */
  for (size_t i = 0; i < n1; i++) { t[n0 + i] = b[i]; id[n0 + i] = 1; }
  const char *path = "pairs_cap.h5";
  char full[600];
  snprintf(full, sizeof full, "%s/%s", sb_test_tmpdir(), path);
  hid_t f = H5Fcreate(full, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t g = sb_h5_group(f, "spikes/p");
  assert_int_equal(sb_h5_attr_write_string(g, "sorting", "none"), SB_OK);
  assert_int_equal(sb_h5_write_1d(g, "timestamps", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, t, n), SB_OK);
  assert_int_equal(sb_h5_write_1d(g, "node_ids", H5T_STD_U64LE, H5T_NATIVE_UINT64, id, n), SB_OK);
  H5Gclose(g);
  H5Fclose(f);
  sb_spk_file *sf;
  assert_int_equal(sb_spk_open(full, &sf), SB_OK);
  sb_stats_opts o;
  sb_stats_opts_default(&o);
  o.t_stop = 1e6;
  o.bin = 50;
  sb_stats_summary *s;
  assert_int_equal(sb_stats_summarize(sf, 0, &o, &s), SB_OK);
  assert_int_equal(s->K, 2);
  assert_true(s->pairs_truncated);
  double p1 = fmin(a[199999], b[199999]);
  check_abs(s->pairs_t_stop, p1, 0, "pairs window end: the earliest 200000th spike");
  size_t ca = 0, cb = 0;
  while (ca < n0 && a[ca] < p1) ca++;
  while (cb < n1 && b[cb] < p1) cb++;
  size_t B = sb_stats_n_bins(0, p1, o.bin);
  double *ha = calloc(B, sizeof *ha), *hb = calloc(B, sizeof *hb);
  for (size_t i = 0; i < ca + cb; i++) {   /* a spike in a last partial bin is not binned (Elephant) */
    long k = i < ca ? sb_stats_bin_index(a[i], 0, p1, o.bin, B) : sb_stats_bin_index(b[i - ca], 0, p1, o.bin, B);
    if (k >= 0) (i < ca ? ha : hb)[k] += 1;
  }
  double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < B; i++) { ma += ha[i] / (double)B; mb += hb[i] / (double)B; }
  for (size_t i = 0; i < B; i++) {
    sab += (ha[i] - ma) * (hb[i] - mb);
    saa += (ha[i] - ma) * (ha[i] - ma);
    sbb += (hb[i] - mb) * (hb[i] - mb);
  }
  size_t i0 = s->pair_ids[0] == 0 ? 0 : 1;   /* the more active neuron first */
  assert_int_equal(s->pair_ids[i0], 0);
  check_rel(s->corrcoef[0 * 2 + 1], sab / sqrt(saa * sbb), 1e-9, "corrcoef over the cut window");
  check_rel(s->sttc[0 * 2 + 1], sb_stats_sttc(a, ca, b, cb, o.sttc_dt, 0, p1, NULL), 1e-12, "STTC over the cut window");
  sb_stats_summary_free(s);
  sb_spk_close(sf);
  free(t); free(a); free(b); free(id); free(ha); free(hb);
}

int main(void) {
  sb_h5_quiet();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_summary_vs_fixture_by_time),
      cmocka_unit_test(test_summary_vs_fixture_unsorted),
      cmocka_unit_test(test_default_t_stop_and_wrong_sorting_attribute),
      cmocka_unit_test(test_array_functions_vs_fixture),
      cmocka_unit_test(test_elephant_doc_examples),
      cmocka_unit_test(test_analytic_regular_and_poisson),
      cmocka_unit_test(test_analytic_distances),
      cmocka_unit_test(test_nan_reasons_and_edges),
      cmocka_unit_test(test_allocation_failures),
      cmocka_unit_test(test_pairs_beyond_cap),
  };
  return cmocka_run_group_tests_name("analysis", tests, NULL, NULL);
}
