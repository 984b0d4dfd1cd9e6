/* STDP rules (learning/stdp.c) against analytic references: the pair window at 41 offsets
 * (additive, multiplicative; all three pairing schemes), a spike pattern where all-to-all and
 * the two nearest-neighbour schemes differ (reference: brute-force enumeration of the pairs),
 * hard bounds, Pfister & Gerstner's triplet rule on the pairing-frequency protocol against its
 * closed form, history trimming, the adaptive threshold, and bad parameters. */
#include "learning/learning.h"
#include "tests/testutil.h"

#include <gsl/gsl_randist.h>

/* Apply a sorted list of pre spikes (synapse time) and post spikes (post time) to one synapse
 * the way the engine does (history first, then pre spikes in order), then sync to T. */
static double run_syn(const sb_stdp_params *p, double w0, const double *pre, size_t npre, const double *post_t,
                      size_t npost, double d, double T) {
  sb_stdp_post post;
  sb_stdp_post_init(&post);
  sb_stdp_syn s;
  sb_stdp_syn_init(&s, w0);
  size_t j = 0;
  for (size_t i = 0; i < npre; i++) {
    /* only what the engine would know: post spikes up to t_pre - d (plus some later ones) */
    while (j < npost && post_t[j] <= pre[i]) assert_int_equal(sb_stdp_post_spike(p, &post, post_t[j++]), SB_OK);
    sb_stdp_pre(p, &s, &post, pre[i], d);
  }
  while (j < npost) assert_int_equal(sb_stdp_post_spike(p, &post, post_t[j++]), SB_OK);
  double w = sb_stdp_sync(p, &s, &post, T, d);
  sb_stdp_post_free(&post);
  return w;
}

/* ---- the pair window ---- */

static double window_want(const sb_stdp_params *p, double w0, double delta) {
  double x = w0 / p->Wmax;
  if (delta > 0) return p->Wmax * p->lambda * pow(1 - x, p->mu_plus) * exp(-delta / p->tau_plus);
  return -p->Wmax * p->alpha * p->lambda * pow(x, p->mu_minus) * exp(delta / p->tau_minus);
}

static void test_pair_window(void **state) {
  (void)state;
  const double d = 1.7, w0 = 38.2, t_pre = 200.0;
  const char *names[] = {"stdp_synapse", "stdp_nn_symm_synapse", "stdp_nn_restr_synapse"};
  for (int mu = 0; mu <= 1; mu++)
    for (int m = 0; m < 3; m++) {
      sb_stdp_params p;
      assert_int_equal(sb_stdp_model_parse(names[m], &p), SB_OK);
      p.tau_plus = 16.8;
      p.tau_minus = 33.7;
      p.lambda = 0.0137;
      p.alpha = 1.21;
      p.mu_plus = p.mu_minus = mu;
      int count = 0;
      for (int k = 0; k <= 40; k++) {
        double delta = -100.0 + 200.0 * k / 40.0 + (k == 20 ? 0.37 : 0.0123);   /* never 0 */
        if (delta > 100) delta = 99.987;
        double t_post = t_pre + delta - d;   /* post time; arrives at the synapse at t_post + d */
        double w = run_syn(&p, w0, &t_pre, 1, &t_post, 1, d, 400.0);
        check_rel(w - w0, window_want(&p, w0, delta), 1e-9, "%s mu=%d window at Delta=%g ms", names[m], mu, delta);
        count++;
      }
      assert_true(count >= 40);
    }
}

/* The tie Delta == 0 neither potentiates nor depresses a single pair (NEST: (t1, t2] history,
 * strictly-before trace), and a post spike long after the pre spike changes nothing before
 * its arrival (the dendritic delay shifts the window). */
static void test_pair_tie_and_delay(void **state) {
  (void)state;
  sb_stdp_params p;
  sb_stdp_defaults(&p, SB_STDP_PAIR);
  double t_pre = 50.0, d = 2.5, t_post = t_pre - d;
  check_rel(run_syn(&p, 40.0, &t_pre, 1, &t_post, 1, d, 300.0), 40.0, 0, "tie Delta=0 leaves w");
  /* post at t_pre - 1 ms in post time arrives 1.5 ms AFTER the pre spike: potentiation */
  double t_post2 = t_pre - 1.0;
  double w = run_syn(&p, 40.0, &t_pre, 1, &t_post2, 1, d, 300.0);
  check_rel(w - 40.0, window_want(&p, 40.0, 1.5), 1e-9, "dendritic delay: Delta = t_post + d - t_pre");
  /* weight_at before the arrival excludes it, after includes it */
  sb_stdp_post post;
  sb_stdp_post_init(&post);
  sb_stdp_syn s;
  sb_stdp_syn_init(&s, 40.0);
  sb_stdp_pre(&p, &s, &post, t_pre, d);
  assert_int_equal(sb_stdp_post_spike(&p, &post, t_post2), SB_OK);
  check_rel(sb_stdp_weight_at(&p, &s, &post, t_post2 + d - 1e-9, d), 40.0, 0, "weight_at before arrival");
  check_rel(sb_stdp_weight_at(&p, &s, &post, t_post2 + d, d) - 40.0, window_want(&p, 40.0, 1.5), 1e-9,
            "weight_at at arrival");
  check_rel(s.w, 40.0, 0, "weight_at does not change the synapse");
  sb_stdp_post_free(&post);
}

/* ---- pairing schemes on a pattern where they differ ---- */

/* Reference by enumeration of the pairs, no traces: merge pre spikes (synapse time) and post
 * arrivals (post time + d) in time order and apply each event's update with the kernel sum
 * its pairing scheme prescribes. */
static double pairs_reference(const sb_stdp_params *p, double w, const double *pre, int npre, const double *arr,
                              int narr) {
  int i = 0, j = 0;
  while (i < npre || j < narr) {
    if (j < narr && (i == npre || arr[j] < pre[i])) {   /* a post arrival at arr[j] */
      double k = 0;
      int last = -1;
      for (int a = 0; a < npre && pre[a] < arr[j]; a++) last = a;
      if (p->pairing == SB_STDP_ALL_TO_ALL)
        for (int a = 0; a <= last; a++) k += exp(-(arr[j] - pre[a]) / p->tau_plus);
      else if (last >= 0) {
        int first_after_pre = j == 0 || arr[j - 1] < pre[last];   /* no post between */
        if (p->pairing == SB_STDP_NN_SYMM || first_after_pre) k = exp(-(arr[j] - pre[last]) / p->tau_plus);
      }
      double x = w / p->Wmax, nw = x + p->lambda * pow(1 - x, p->mu_plus) * k;
      if (k > 0) w = (nw < 1 ? nw : 1) * p->Wmax;
      j++;
    } else {   /* a pre spike at pre[i] */
      double k = 0;
      int last = -1;
      for (int b = 0; b < narr && arr[b] < pre[i]; b++) last = b;
      if (p->pairing == SB_STDP_ALL_TO_ALL)
        for (int b = 0; b <= last; b++) k += exp(-(pre[i] - arr[b]) / p->tau_minus);
      else if (last >= 0) {
        int first_after_post = i == 0 || pre[i - 1] < arr[last];
        if (p->pairing == SB_STDP_NN_SYMM || first_after_post) k = exp(-(pre[i] - arr[last]) / p->tau_minus);
      }
      double x = w / p->Wmax, nw = x - p->alpha * p->lambda * pow(x, p->mu_minus) * k;
      if (k > 0) w = (nw > 0 ? nw : 0) * p->Wmax;
      i++;
    }
  }
  return w;
}

static void test_pairing_schemes_differ(void **state) {
  (void)state;
  /* pre spikes, and post arrivals (synapse time): bursts on both sides so that all-to-all,
   * symmetric and restricted nearest-neighbour pair differently */
  const double pre[] = {10.0, 13.3, 30.1, 35.7, 36.9, 80.2};
  const double arr[] = {15.2, 18.9, 21.4, 33.0, 50.6, 51.9, 83.3};
  const double d = 0.9;
  double post_t[7];
  for (int j = 0; j < 7; j++) post_t[j] = arr[j] - d;
  double got[3];
  for (int mu = 0; mu <= 1; mu++) {
    for (int m = 0; m < 3; m++) {
      sb_stdp_params p;
      sb_stdp_defaults(&p, SB_STDP_PAIR);
      p.pairing = m;
      p.lambda = 0.05;
      p.alpha = 1.3;
      p.tau_plus = 14.1;
      p.tau_minus = 27.3;
      p.mu_plus = p.mu_minus = mu;
      double want = pairs_reference(&p, 47.3, pre, 6, arr, 7);
      got[m] = run_syn(&p, 47.3, pre, 6, post_t, 7, d, 500.0);
      check_rel(got[m], want, 1e-12, "%s mu=%d on the burst pattern", sb_stdp_model_name(&p), mu);
    }
    /* the pattern really separates the schemes */
    assert_true(fabs(got[0] - got[1]) > 0.1);
    assert_true(fabs(got[1] - got[2]) > 0.1);
    assert_true(fabs(got[0] - got[2]) > 0.1);
  }
}

/* Additive rule with hard bounds: clipped at Wmax and at 0 exactly. */
static void test_bounds(void **state) {
  (void)state;
  sb_stdp_params p;
  sb_stdp_defaults(&p, SB_STDP_PAIR);
  p.mu_plus = p.mu_minus = 0;
  p.lambda = 0.2;
  double pre[50], post_t[50];
  for (int i = 0; i < 50; i++) { pre[i] = 10.0 * i; post_t[i] = 10.0 * i + 2.0; }
  check_rel(run_syn(&p, 90.0, pre, 50, post_t, 50, 1.0, 1000.0), p.Wmax, 0, "potentiated to Wmax");
  for (int i = 0; i < 50; i++) post_t[i] = 10.0 * i - 4.0;
  check_abs(run_syn(&p, 10.0, pre, 50, post_t, 50, 1.0, 1000.0), 0.0, 0, "depressed to 0");
  /* negative (inhibitory) weights keep their sign, bounds act on |w| (NEST) */
  for (int i = 0; i < 50; i++) post_t[i] = 10.0 * i + 2.0;
  check_rel(run_syn(&p, -90.0, pre, 50, post_t, 50, 1.0, 1000.0), -p.Wmax, 0, "negative weight to -Wmax");
}

/* ---- triplet rule: pairing-frequency protocol vs the closed form ---- */

/* n pre spikes at t_k = k T and post arrivals at k T + delta (|delta| < T), all-to-all
 * triplet model (Pfister & Gerstner 2006, eq. 3-4) with additive updates and no bound reached:
 * every trace before an event is a finite geometric series, so
 *   dw = sum_k r1(s_k-) (A2+ + A3+ o2(s_k-)) - o1(t_k-) (A2- + A3- r2(t_k-)). */
static double triplet_closed_form(const sb_stdp_params *p, int n, double T, double delta) {
  double qp = exp(-T / p->tau_plus), qx = exp(-T / p->tau_plus_triplet);
  double qm = exp(-T / p->tau_minus), qy = exp(-T / p->tau_minus_triplet);
  double dw = 0;
  for (int k = 0; k < n; k++) {
    double r1, o1;
    double o2 = qy * (1 - pow(qy, k)) / (1 - qy);   /* post-post intervals are T */
    double r2 = qx * (1 - pow(qx, k)) / (1 - qx);
    if (delta > 0) {
      r1 = exp(-delta / p->tau_plus) * (1 - pow(qp, k + 1)) / (1 - qp);          /* pre j <= k */
      o1 = exp(delta / p->tau_minus) * qm * (1 - pow(qm, k)) / (1 - qm);         /* post j < k */
    } else {
      r1 = exp(-delta / p->tau_plus) * qp * (1 - pow(qp, k)) / (1 - qp);         /* pre j < k */
      o1 = exp(delta / p->tau_minus) * (1 - pow(qm, k + 1)) / (1 - qm);          /* post j <= k */
    }
    dw += r1 * (p->Aplus + p->Aplus_triplet * o2) - o1 * (p->Aminus + p->Aminus_triplet * r2);
  }
  return dw;
}

static void test_triplet_frequency(void **state) {
  (void)state;
  sb_stdp_params p;
  assert_int_equal(sb_stdp_model_parse("stdp_triplet_synapse", &p), SB_OK);
  /* Pfister & Gerstner 2006 Table 4, visual cortex, all-to-all, full model */
  p.tau_plus = 16.8;
  p.tau_minus = 33.7;
  p.tau_plus_triplet = 101;
  p.tau_minus_triplet = 125;
  p.Aplus = 5e-10;
  p.Aminus = 7e-3;
  p.Aplus_triplet = 6.2e-3;
  p.Aminus_triplet = 2.3e-4;
  p.Wmax = 1e6;
  const double rho[] = {1, 5, 10, 20, 30, 40, 50};
  const int n = 60;
  const double d = 1.3, w0 = 10.0;
  double dw_minus_1 = 0, dw_minus_50 = 0, dw_plus_1 = 0;
  for (int r = 0; r < 7; r++)
    for (int sgn = -1; sgn <= 1; sgn += 2) {
      double T = 1000.0 / rho[r], delta = 10.0 * sgn;
      double pre[60], post_t[60];
      for (int k = 0; k < n; k++) {
        pre[k] = 5.0 + k * T;
        post_t[k] = pre[k] + delta - d;
      }
      double dw = run_syn(&p, w0, pre, n, post_t, n, d, pre[n - 1] + 1000) - w0;
      double want = triplet_closed_form(&p, n, T, delta);
      check_rel(dw, want, 1e-9, "triplet %g Hz, Delta=%g ms: 60 pairings", rho[r], delta);
      if (rho[r] == 1 && sgn < 0) dw_minus_1 = dw;
      if (rho[r] == 1 && sgn > 0) dw_plus_1 = dw;
      if (rho[r] == 50 && sgn < 0) dw_minus_50 = dw;
    }
  /* Sjöström 2001 / P&G Fig. 4: at low rates post-before-pre depresses and pre-before-post
   * potentiates; at 50 Hz post-before-pre potentiates too. */
  assert_true(dw_minus_1 < 0);
  assert_true(dw_plus_1 > 0);
  assert_true(dw_minus_50 > 0);
}

/* ---- history trimming and adaptive threshold ---- */

static void test_trim_keeps_results(void **state) {
  (void)state;
  for (int model = 0; model < 2; model++) {
    sb_stdp_params p;
    sb_stdp_defaults(&p, model);
    gsl_rng *r = sb_rng_alloc(7, SB_RNG_USER, (uint64_t)model);
    assert_non_null(r);
    sb_stdp_post pa, pb;
    sb_stdp_post_init(&pa);
    sb_stdp_post_init(&pb);
    sb_stdp_syn a, b;
    sb_stdp_syn_init(&a, 50.0);
    sb_stdp_syn_init(&b, 50.0);
    const double d = 2.0;
    double t = 0, tpost = 0;
    for (int i = 0; i < 2000; i++) {
      t += gsl_ran_exponential(r, 20.0) + 0.01;
      while (tpost <= t - d) {   /* post spikes known up to t_pre - d */
        tpost += gsl_ran_exponential(r, 15.0) + 0.01;
        assert_int_equal(sb_stdp_post_spike(&p, &pa, tpost), SB_OK);
        assert_int_equal(sb_stdp_post_spike(&p, &pb, tpost), SB_OK);
      }
      sb_stdp_pre(&p, &a, &pa, t, d);
      sb_stdp_pre(&p, &b, &pb, t, d);
      if (i % 10 == 0) {   /* b: sync to its last pre spike and drop older history */
        sb_stdp_sync(&p, &b, &pb, t, d);
        sb_stdp_post_trim(&pb, b.t_done - d);
      }
    }
    assert_true(pb.n - pb.head < 100);
    assert_true(pa.n > 1000);
    check_rel(sb_stdp_sync(&p, &b, &pb, t + 500, d), sb_stdp_sync(&p, &a, &pa, t + 500, d), 0,
              "%s: trimmed history gives bit-identical weights", sb_stdp_model_name(&p));
    sb_stdp_post_free(&pa);
    sb_stdp_post_free(&pb);
    gsl_rng_free(r);
  }
}

static void test_theta(void **state) {
  (void)state;
  sb_theta_params p = {0.05, 1e7};
  double th = 0;
  for (int i = 0; i < 10; i++) th = sb_theta_decay(&p, sb_theta_spike(&p, th), 350.0);
  /* geometric series: sum_{j=1..10} 0.05 q^j, q = exp(-350/1e7) */
  double q = exp(-350.0 / 1e7);
  check_rel(th, 0.05 * q * (1 - pow(q, 10)) / (1 - q), 1e-12, "theta after 10 spikes");
  sb_theta_params frozen = {0, INFINITY};
  check_rel(sb_theta_decay(&frozen, 2.385, 1e9), 2.385, 0, "frozen theta");
}

static void test_bad_params(void **state) {
  (void)state;
  sb_stdp_params p;
  sb_stdp_defaults(&p, SB_STDP_PAIR);
  assert_int_equal(sb_stdp_set_param(&p, "tau_plus", -20), SB_EINVAL);
  check_contains(sb_last_error(), "tau_plus: must be > 0 (got -20)");
  check_rel(p.tau_plus, 20.0, 0, "tau_plus unchanged after error");
  assert_int_equal(sb_stdp_set_param(&p, "lambda", NAN), SB_EINVAL);
  assert_int_equal(sb_stdp_set_param(&p, "mu_plus", -1), SB_EINVAL);
  check_contains(sb_last_error(), "mu_plus: must be >= 0");
  assert_int_equal(sb_stdp_set_param(&p, "tau_m", 5), SB_EINVAL);
  check_contains(sb_last_error(), "tau_m: unknown parameter of stdp_synapse");
  assert_int_equal(sb_stdp_set_param(&p, "pairing", 3), SB_EINVAL);
  /* each rule takes its own parameters (NEST's per-model sets): the other rule's are refused */
  assert_int_equal(sb_stdp_set_param(&p, "Aplus", 0.01), SB_EINVAL);
  check_contains(sb_last_error(), "Aplus: is a parameter of stdp_triplet_synapse and stdp_triplet_nn_synapse, not of stdp_synapse");
  check_rel(p.Aplus, 5e-10, 0, "Aplus unchanged after error");
  assert_int_equal(sb_stdp_set_param(&p, "tau_y", 77), SB_EINVAL);
  check_contains(sb_last_error(), "tau_y: is a parameter of stdp_triplet_synapse");
  check_rel(p.tau_minus_triplet, 110, 0, "tau_y unchanged after error");
  assert_int_equal(sb_stdp_set_param(&p, "pairing", 2), SB_OK);   /* pair rules: nn_restr */
  const char *pair_only[] = {"lambda", "alpha", "mu_plus", "mu_minus"};
  sb_stdp_defaults(&p, SB_STDP_TRIPLET);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(sb_stdp_set_param(&p, pair_only[i], 0.5), SB_EINVAL);
    check_contains(sb_last_error(), "is a parameter of stdp_synapse and its nearest-neighbour variants, not of stdp_triplet_synapse");
  }
  check_rel(p.lambda, 0.01, 0, "lambda unchanged after error");
  assert_int_equal(sb_stdp_set_param(&p, "tau_y", 77), SB_OK);
  check_rel(p.tau_minus_triplet, 77, 0, "tau_y alias");
  assert_int_equal(sb_stdp_set_param(&p, "Wmax", 2), SB_OK);   /* shared by both rules */
  assert_int_equal(sb_stdp_set_param(&p, "pairing", 2), SB_EINVAL);
  check_contains(sb_last_error(), "pairing: the triplet rule takes all-to-all (0) or nearest-neighbour symmetric (1) pairing only");
  assert_int_equal(p.pairing, SB_STDP_ALL_TO_ALL);
  assert_int_equal(sb_stdp_set_param(&p, "pairing", 1), SB_OK);
  assert_int_equal(sb_stdp_model_parse("stdp_pl_synapse_hom", &p), SB_EINVAL);
  check_contains(sb_last_error(), "unknown model \"stdp_pl_synapse_hom\"");
  /* allocation failure of the history is reported */
  sb_stdp_post post;
  sb_stdp_post_init(&post);
  sb_alloc_fail_after(1);
  assert_int_equal(sb_stdp_post_spike(&p, &post, 1.0), SB_ENOMEM);
  sb_alloc_fail_after(0);
  assert_int_equal(sb_stdp_post_spike(&p, &post, 1.0), SB_OK);
  sb_stdp_post_free(&post);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pair_window),       cmocka_unit_test(test_pair_tie_and_delay),
      cmocka_unit_test(test_pairing_schemes_differ), cmocka_unit_test(test_bounds),
      cmocka_unit_test(test_triplet_frequency), cmocka_unit_test(test_trim_keeps_results),
      cmocka_unit_test(test_theta),             cmocka_unit_test(test_bad_params),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
