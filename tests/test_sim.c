/* The engine: connection rules (counts, autapses, multapses, distributions), storage kinds
 * (dense, conv against a direct computation), Poisson input rate, thread-count invariance,
 * reset, recording layout, and CUBA / Brunel statistics against Brian2 fixtures. */
#include "sim/sim.h"
#include "tests/testutil.h"

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_sf_erf.h>

static sb_net *two_pops(int threads, size_t ns, size_t nt, int *a, int *b) {
  sb_net *net = sb_net_alloc(2385, threads);
  assert_non_null(net);
  assert_int_equal(sb_net_add_population(net, "a", sb_neuron_iaf_psc_delta, ns, a), SB_OK);
  if (b) assert_int_equal(sb_net_add_population(net, "b", sb_neuron_iaf_psc_delta, nt, b), SB_OK);
  return net;
}

static sb_syn_spec syn_const(double w, double d) {
  sb_syn_spec y = {{SB_DIST_CONST, w, 0, 0, 0}, {SB_DIST_CONST, d, 0, 0, 0}, SB_RECEPTOR_SIGN};
  return y;
}

typedef struct { uint32_t *s, *t; double *w, *d; size_t n; } syns;

static syns get(sb_net *net, int proj) {
  syns x;
  assert_int_equal(sb_net_proj_get(net, proj, &x.s, &x.t, &x.w, &x.d, &x.n), SB_OK);
  return x;
}
static void syns_free(syns *x) { sb_free(x->s); sb_free(x->t); sb_free(x->w); sb_free(x->d); }

/* ---- connection rules ---- */

static void test_rules_counts(void **state) {
  (void)state;
  int a, b, p;
  sb_net *net = two_pops(2, 60, 60, &a, &b);
  sb_syn_spec y = syn_const(0.5, 1.0);
  sb_conn_spec c = {0};
  c.allow_autapses = c.allow_multapses = 1;
  /* all_to_all without autapses */
  c.rule = SB_RULE_ALL_TO_ALL;
  c.allow_autapses = 0;
  assert_int_equal(sb_net_connect(net, a, a, &c, &y, &p), SB_OK);
  syns x = get(net, p);
  assert_int_equal(x.n, 60 * 59);
  for (size_t i = 0; i < x.n; i++) assert_true(x.s[i] != x.t[i]);
  syns_free(&x);
  /* fixed_indegree without multapses and autapses: K distinct sources per target */
  c.rule = SB_RULE_FIXED_INDEGREE;
  c.indegree = 17;
  c.allow_multapses = 0;
  assert_int_equal(sb_net_connect(net, a, a, &c, &y, &p), SB_OK);
  x = get(net, p);
  assert_int_equal(x.n, 60 * 17);
  for (size_t t = 0; t < 60; t++) {
    int seen[60] = {0}, k = 0;
    for (size_t i = 0; i < x.n; i++)
      if (x.t[i] == t) {
        assert_true(x.s[i] != t);
        assert_int_equal(seen[x.s[i]]++, 0);
        k++;
      }
    assert_int_equal(k, 17);
  }
  syns_free(&x);
  /* fixed_outdegree: K per source */
  c.rule = SB_RULE_FIXED_OUTDEGREE;
  c.outdegree = 9;
  c.allow_autapses = c.allow_multapses = 1;
  assert_int_equal(sb_net_connect(net, a, b, &c, &y, &p), SB_OK);
  x = get(net, p);
  assert_int_equal(x.n, 60 * 9);
  for (size_t s = 0; s < 60; s++) {
    int k = 0;
    for (size_t i = 0; i < x.n; i++) k += x.s[i] == s;
    assert_int_equal(k, 9);
  }
  syns_free(&x);
  /* fixed_total_number */
  c.rule = SB_RULE_FIXED_TOTAL_NUMBER;
  c.N = 1234;
  assert_int_equal(sb_net_connect(net, a, b, &c, &y, &p), SB_OK);
  assert_int_equal(sb_net_proj_synapses(net, p), 1234);
  /* pairwise_bernoulli: count within 5 sigma of the binomial mean */
  c.rule = SB_RULE_PAIRWISE_BERNOULLI;
  c.p = 0.237;
  assert_int_equal(sb_net_connect(net, a, b, &c, &y, &p), SB_OK);
  double m = 3600 * 0.237, sd = sqrt(3600 * 0.237 * 0.763);
  check_abs((double)sb_net_proj_synapses(net, p), m, 5 * sd, "pairwise_bernoulli count");
  /* one_to_one */
  c.rule = SB_RULE_ONE_TO_ONE;
  assert_int_equal(sb_net_connect(net, a, b, &c, &y, &p), SB_OK);
  x = get(net, p);
  assert_int_equal(x.n, 60);
  for (size_t i = 0; i < 60; i++) assert_true(x.s[i] == i && x.t[i] == i);
  syns_free(&x);
  /* explicit */
  uint32_t es[3] = {0, 5, 59}, et[3] = {7, 7, 0};
  double ew[3] = {0.25, -1.5, 2.0}, ed[3] = {1.0, 2.5, 0.75};
  c.rule = SB_RULE_EXPLICIT;
  c.n = 3;
  c.sources = es; c.targets = et; c.weights = ew; c.delays = ed;
  assert_int_equal(sb_net_connect(net, a, b, &c, &y, &p), SB_OK);
  x = get(net, p);
  assert_int_equal(x.n, 3);
  assert_true(x.t[0] == 0 && x.s[0] == 59 && x.w[0] == 2.0 && x.d[0] == 0.75);
  assert_true(x.t[1] == 7 && x.s[1] == 0 && x.w[1] == 0.25);
  syns_free(&x);
  /* errors */
  c.rule = SB_RULE_FIXED_INDEGREE;
  c.indegree = 61;
  c.allow_multapses = 0;
  assert_int_equal(sb_net_connect(net, a, b, &c, &y, &p), SB_EINVAL);
  check_contains(sb_last_error(), "indegree: must be <= 60");
  c.indegree = 3;
  y.delay.a = 0.05;
  assert_int_equal(sb_net_connect(net, a, b, &c, &y, &p), SB_EINVAL);
  check_contains(sb_last_error(), "delay: must be >= min_delay = 0.1");
  sb_net_free(net);
}

/* Connectivity and weights do not depend on the thread count. */
static void test_rules_thread_invariant(void **state) {
  (void)state;
  syns x[2];
  for (int k = 0; k < 2; k++) {
    int a, b, p;
    sb_net *net = two_pops(k + 1, 80, 70, &a, &b);
    sb_syn_spec y = {{SB_DIST_NORMAL, 1.5, 0.3, 0, 0}, {SB_DIST_UNIFORM, 0.5, 2.5, 0, 0}, SB_RECEPTOR_SIGN};
    sb_conn_spec c = {0};
    c.rule = SB_RULE_PAIRWISE_BERNOULLI;
    c.p = 0.3;
    c.allow_autapses = c.allow_multapses = 1;
    assert_int_equal(sb_net_connect(net, a, b, &c, &y, &p), SB_OK);
    x[k] = get(net, p);
    sb_net_free(net);
  }
  assert_int_equal(x[0].n, x[1].n);
  assert_memory_equal(x[0].s, x[1].s, x[0].n * sizeof *x[0].s);
  assert_memory_equal(x[0].t, x[1].t, x[0].n * sizeof *x[0].t);
  assert_memory_equal(x[0].w, x[1].w, x[0].n * sizeof *x[0].w);
  assert_memory_equal(x[0].d, x[1].d, x[0].n * sizeof *x[0].d);
  syns_free(&x[0]);
  syns_free(&x[1]);
}

/* Weight distributions: sample mean and std within sampling error; clipping and receptors. */
static void test_distributions(void **state) {
  (void)state;
  int a, b, p;
  sb_net *net = two_pops(2, 100, 100, &a, &b);
  sb_conn_spec c = {0};
  c.rule = SB_RULE_ALL_TO_ALL;
  c.allow_autapses = c.allow_multapses = 1;
  struct { sb_dist d; double mean, sd, lo, hi; } cases[] = {
      {{SB_DIST_UNIFORM, 0.5, 2.0, 0, 0}, 1.25, 1.5 / sqrt(12.0), 0.5, 2.0},
      {{SB_DIST_NORMAL, 1.7, 0.4, 0, 0}, 1.7, 0.4, -INFINITY, INFINITY},
      {{SB_DIST_LOGNORMAL, 0.2, 0.3, 0, 0}, exp(0.2 + 0.045), exp(0.2 + 0.045) * sqrt(exp(0.09) - 1), 0, INFINITY},
      {{SB_DIST_NORMAL_CLIPPED, 1.0, 1.0, 0.5, 1.5}, 1.0, -1, 0.5, 1.5},
  };
  for (int i = 0; i < 4; i++) {
    sb_syn_spec y = {cases[i].d, {SB_DIST_CONST, 1.0, 0, 0, 0}, SB_RECEPTOR_SIGN};
    assert_int_equal(sb_net_connect(net, a, b, &c, &y, &p), SB_OK);
    syns x = get(net, p);
    double s = 0, s2 = 0, lo = INFINITY, hi = -INFINITY;
    for (size_t q = 0; q < x.n; q++) {
      s += x.w[q];
      s2 += x.w[q] * x.w[q];
      lo = fmin(lo, x.w[q]);
      hi = fmax(hi, x.w[q]);
    }
    double m = s / (double)x.n, sd = sqrt(s2 / (double)x.n - m * m);
    if (cases[i].sd > 0) {
      check_abs(m, cases[i].mean, 5 * cases[i].sd / 100.0, "distribution %d mean", i);
      check_rel(sd, cases[i].sd, 0.05, "distribution %d std", i);
    } else {
      check_abs(m, cases[i].mean, 0.02, "clipped normal mean (symmetric clip)");
    }
    assert_true(lo >= cases[i].lo - 1e-6 && hi <= cases[i].hi + 1e-6);
    syns_free(&x);
  }
  /* receptor inhibitory makes every weight negative */
  sb_syn_spec y = {{SB_DIST_NORMAL, 1.0, 0.5, 0, 0}, {SB_DIST_CONST, 1.0, 0, 0, 0}, SB_RECEPTOR_IN};
  assert_int_equal(sb_net_connect(net, a, b, &c, &y, &p), SB_OK);
  syns x = get(net, p);
  for (size_t q = 0; q < x.n; q++) assert_true(x.w[q] <= 0);
  syns_free(&x);
  /* a drawn delay below the minimum is an error */
  sb_syn_spec yd = {{SB_DIST_CONST, 1.0, 0, 0, 0}, {SB_DIST_NORMAL, 0.3, 0.2, 0, 0}, SB_RECEPTOR_SIGN};
  assert_int_equal(sb_net_connect(net, a, b, &c, &yd, &p), SB_EINVAL);
  check_contains(sb_last_error(), "below min_delay");
  sb_net_free(net);
}

/* Mean and sd of N(m, s^2) conditioned on [lo, hi] (s > 0), from the standardized bounds a, b:
 * mean = m + s (phi(a) - phi(b)) / Z, var = s^2 (1 + (a phi(a) - b phi(b)) / Z - ((phi(a) - phi(b)) / Z)^2),
 * Z = Phi(b) - Phi(a). In a tail the ratios are taken through the hazard phi/Q (gsl_sf_hazard), so
 * that [50, 51] sd does not underflow. */
static void trunc_moments(double m, double s, double lo, double hi, double *mean, double *sd) {
  double a = (lo - m) / s, b = (hi - m) / s, sign = 1.0, p, q;
  if (b <= 0) {   /* mirror into the upper half */
    double t = a;
    a = -b;
    b = -t;
    sign = -1.0;
  }
  if (a >= 0) {
    double ha = gsl_sf_hazard(a), hb = gsl_sf_hazard(b), r = exp(-0.5 * (b - a) * (b + a));   /* phi(b)/phi(a) */
    p = ha / (1.0 - r * ha / hb);   /* phi(a)/Z with Z/Q(a) = 1 - Q(b)/Q(a) */
    q = r * p;
  } else {
    double z = gsl_cdf_ugaussian_P(b) - gsl_cdf_ugaussian_P(a);
    p = gsl_ran_ugaussian_pdf(a) / z;
    q = gsl_ran_ugaussian_pdf(b) / z;
  }
  double mu = p - q;
  *mean = m + s * sign * mu;
  *sd = s * sqrt(1.0 + a * p - b * q - mu * mu);
}

/* normal_clipped is the normal conditioned on [min, max] (NEST's redraw), also far in a tail where
 * almost every plain draw misses: sample mean within 5 standard errors and sd within 3% of the
 * analytic truncated moments, every value inside, none stuck at a bound (the old sampler returned
 * the nearer bound after 1000 misses: on [3, 4] sd, 27% of the values were exactly 3). */
static void test_truncated_normal(void **state) {
  (void)state;
  const sb_dist cases[] = {
      {SB_DIST_NORMAL_CLIPPED, 0.0, 1.0, 3.0, 4.0},       /* upper tail, exponential proposal */
      {SB_DIST_NORMAL_CLIPPED, 0.0, 1.0, 50.0, 51.0},     /* far tail */
      {SB_DIST_NORMAL_CLIPPED, 1.0, 0.1, 1.5, 2.0},       /* a delay: [5, 10] sd */
      {SB_DIST_NORMAL_CLIPPED, 0.0, 2.0, -9.0, -8.98},    /* narrow, lower tail: uniform proposal */
      {SB_DIST_NORMAL_CLIPPED, 3.0, 1.0, 2.99, 3.02},     /* narrow around the mean */
      {SB_DIST_NORMAL_CLIPPED, 1.0, 1.0, 0.5, 1.5},       /* plain redraws */
      {SB_DIST_NORMAL_CLIPPED, -2.0, 0.5, -10.0, -3.2},   /* lower tail, wide */
  };
  const int N = 100000;
  gsl_rng *r = sb_rng_alloc(7, SB_RNG_USER, 1);
  assert_non_null(r);
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const sb_dist *d = &cases[c];
    assert_int_equal(sb_dist_check(d), SB_OK);
    double s = 0, s2 = 0;
    int at_bound = 0;
    for (int i = 0; i < N; i++) {
      double x = sb_dist_draw(d, r);
      assert_true(x >= d->c && x <= d->d);
      at_bound += x == d->c || x == d->d;
      s += x;
      s2 += x * x;
    }
    double m = s / N, sd = sqrt(fmax(s2 / N - m * m, 0.0)), want_m, want_sd;
    trunc_moments(d->a, d->b, d->c, d->d, &want_m, &want_sd);
    check_abs(m, want_m, 5.0 * want_sd / sqrt((double)N), "case %zu: mean (truncated normal)", c);
    check_rel(sd, want_sd, 0.03, "case %zu: sd (truncated normal)", c);
    assert_true(at_bound < 5);
  }
  gsl_rng_free(r);
  gsl_rng *r2 = sb_rng_alloc(7, SB_RNG_USER, 2);
  assert_non_null(r2);
  /* an interval 1e160 sd away (lo * lo overflowed: the sampler never accepted) */
  sb_dist far = {SB_DIST_NORMAL_CLIPPED, 0.0, 1e-160, 1.0, 2.0};
  for (int i = 0; i < 100; i++) {
    double x = sb_dist_draw(&far, r2);
    assert_true(x >= 1.0 && x < 1.0 + 1e-12);
  }
  gsl_rng_free(r2);
  /* std 0: the mean itself, which must lie inside */
  sb_dist z = {SB_DIST_NORMAL_CLIPPED, 2.0, 0.0, 1.0, 3.0};
  assert_int_equal(sb_dist_check(&z), SB_OK);
  z.a = 5.0;
  assert_int_equal(sb_dist_check(&z), SB_EINVAL);
  check_contains(sb_last_error(), "with std 0 must be inside [min, max]");
}

/* ---- storage kinds against direct computation ---- */

/* Sources (if_subtract, V_th = 1) spike once each on an input of exactly 1; targets (non-leaky, never firing) integrate the
 * weights: V_m = sum over sources of w. Compared with W x and a direct convolution. */
static void test_dense_and_conv(void **state) {
  (void)state;
  for (int threads = 1; threads <= 2; threads++) {
    sb_net *net = sb_net_alloc(5, threads);
    int in, out, cin, cout;
    const int C = 2, H = 5, W = 6, OC = 3, K = 3, S = 2, P = 1;
    const int OH = (H + 2 * P - K) / S + 1, OW = (W + 2 * P - K) / S + 1;
    assert_int_equal(sb_net_add_population(net, "in", sb_neuron_if_subtract, 7, &in), SB_OK);
    assert_int_equal(sb_net_add_population(net, "out", sb_neuron_if_subtract, 4, &out), SB_OK);
    assert_int_equal(sb_net_add_population(net, "cin", sb_neuron_if_subtract, (size_t)(C * H * W), &cin), SB_OK);
    assert_int_equal(sb_net_add_population(net, "cout", sb_neuron_if_subtract, (size_t)(OC * OH * OW), &cout), SB_OK);
    assert_int_equal(sb_net_set_param(net, out, "V_th", 1e9), SB_OK);
    assert_int_equal(sb_net_set_param(net, cout, "V_th", 1e9), SB_OK);
    float w[4 * 7], ker[3 * 2 * 3 * 3];
    for (int i = 0; i < 28; i++) w[i] = (float)(0.125 * ((i * 7) % 11) - 0.5);
    for (int i = 0; i < 54; i++) ker[i] = (float)(0.0625 * ((i * 5) % 13) - 0.375);
    /* source neuron j spikes iff x_j = 1 */
    int x[7] = {1, 0, 1, 1, 0, 1, 1}, xc[60];
    for (int i = 0; i < 60; i++) xc[i] = (i * 7) % 3 != 0;
    double tin = 1.0;
    for (uint32_t j = 0; j < 7; j++)
      if (x[j]) assert_int_equal(sb_net_add_spike_train(net, in, &j, 1, &tin, 1, 1.0, 0.0), SB_OK);
    for (uint32_t j = 0; j < 60; j++)
      if (xc[j]) assert_int_equal(sb_net_add_spike_train(net, cin, &j, 1, &tin, 1, 1.0, 0.0), SB_OK);
    assert_int_equal(sb_net_connect_dense(net, in, out, w, 1.0, NULL), SB_OK);
    sb_net_conv_shape cs = {C, H, W, OC, K, K, S, P};
    int pj;
    assert_int_equal(sb_net_connect_conv(net, cin, cout, &cs, ker, 1.0, &pj), SB_OK);
    assert_int_equal(sb_net_run(net, 5.0), SB_OK);
    double v[64];
    sb_net_get_state(net, out, "V_m", v);
    for (int t = 0; t < 4; t++) {
      double want = 0;
      for (int s = 0; s < 7; s++) want += x[s] * (double)w[t * 7 + s];
      check_abs(v[t], want, 1e-12, "dense target %d (threads %d)", t, threads);
    }
    sb_net_get_state(net, cout, "V_m", v);
    for (int co = 0; co < OC; co++)
      for (int oy = 0; oy < OH; oy++)
        for (int ox = 0; ox < OW; ox++) {
          double want = 0;
          for (int ci = 0; ci < C; ci++)
            for (int ky = 0; ky < K; ky++)
              for (int kx = 0; kx < K; kx++) {
                int yy = oy * S - P + ky, xx = ox * S - P + kx;
                if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
                want += xc[(ci * H + yy) * W + xx] * (double)ker[((co * C + ci) * K + ky) * K + kx];
              }
          check_abs(v[(co * OH + oy) * OW + ox], want, 1e-12, "conv target (%d,%d,%d)", co, oy, ox);
        }
    /* the kernel is stored once, never expanded */
    assert_int_equal(sb_net_proj_bytes(net, pj), sizeof ker);
    sb_net_free(net);
  }
}

/* Target indices are stored in 16 bits when the target population has at most 65536 neurons,
 * else 32. At both sides of the bound (65536 and 65537 targets; 1 and 2 threads): one source spike
 * (t = 1 ms) reaches five explicit targets including the last two indices, each crosses threshold
 * at 1 + 1 = 2 ms and no other neuron spikes; a fixed_indegree projection's storage is
 * 4 (ns + 1) bytes of row offsets per partition plus 2 or 4 bytes per synapse. */
static void test_target_index_width(void **state) {
  (void)state;
  for (size_t nt = 65536; nt <= 65537; nt++)
    for (int threads = 1; threads <= 2; threads++) {
      sb_net *net = sb_net_alloc(3, threads);
      assert_non_null(net);
      int in, big, side;
      assert_int_equal(sb_net_add_population(net, "in", sb_neuron_iaf_psc_delta, 1, &in), SB_OK);
      assert_int_equal(sb_net_add_population(net, "big", sb_neuron_iaf_psc_delta, nt, &big), SB_OK);
      assert_int_equal(sb_net_add_population(net, "side", sb_neuron_iaf_psc_delta, 10, &side), SB_OK);
      double t1 = 1.0;
      assert_int_equal(sb_net_add_spike_train(net, in, NULL, 0, &t1, 1, 20.0, 0.0), SB_OK);   /* 15 mV to threshold */
      const uint32_t src[5] = {0, 0, 0, 0, 0};
      const uint32_t tg[5] = {0, 1, (uint32_t)(nt / 2), (uint32_t)(nt - 2), (uint32_t)(nt - 1)};
      sb_conn_spec c = {.rule = SB_RULE_EXPLICIT, .allow_autapses = 1, .allow_multapses = 1, .n = 5, .sources = src, .targets = tg};
      sb_syn_spec y = {.weight = {SB_DIST_CONST, 20.0, 0, 0, 0}, .delay = {SB_DIST_CONST, 1.0, 0, 0, 0}};
      int p;
      assert_int_equal(sb_net_connect(net, in, big, &c, &y, &p), SB_OK);
      /* weak synapses from the side population (silent) for the storage figure */
      sb_conn_spec ci = {.rule = SB_RULE_FIXED_INDEGREE, .indegree = 2, .allow_autapses = 1, .allow_multapses = 1};
      sb_syn_spec yi = {.weight = {SB_DIST_CONST, 0.1, 0, 0, 0}, .delay = {SB_DIST_CONST, 1.0, 0, 0, 0}};
      int pi;
      assert_int_equal(sb_net_connect(net, side, big, &ci, &yi, &pi), SB_OK);
      size_t per = nt <= 65536 ? 2 : 4;
      assert_int_equal(sb_net_proj_bytes(net, pi), (size_t)threads * 11 * 4 + 2 * nt * per);
      assert_int_equal(sb_net_run(net, 5.0), SB_OK);
      const double *ts;
      const uint32_t *ids;
      size_t n;
      assert_int_equal(sb_net_spikes(net, big, &ts, &ids, &n), SB_OK);
      assert_int_equal(n, 5);
      int seen[5] = {0};
      for (size_t i = 0; i < n; i++) {
        check_abs(ts[i], 2.0, 1e-12, "spike of target %u (nt %zu, threads %d)", ids[i], nt, threads);
        int hit = 0;
        for (int j = 0; j < 5; j++)
          if (ids[i] == tg[j]) seen[j]++, hit = 1;
        assert_true(hit);
      }
      for (int j = 0; j < 5; j++) assert_int_equal(seen[j], 1);
      sb_net_free(net);
    }
}

/* ---- Poisson input ---- */

static void test_poisson_rate_and_independence(void **state) {
  (void)state;
  sb_net *net = sb_net_alloc(11, 2);
  int a;
  assert_int_equal(sb_net_add_population(net, "a", sb_neuron_if_subtract, 200, &a), SB_OK);
  assert_int_equal(sb_net_set_param(net, a, "V_th", 1e9), SB_OK);
  assert_int_equal(sb_net_add_poisson(net, a, NULL, 0, 2385.0, 100.0, 900.0, 1.0, 1.0), SB_OK);
  assert_int_equal(sb_net_run(net, 1000.0), SB_OK);
  double v[200];
  sb_net_get_state(net, a, "V_m", v);   /* V_m = number of input events */
  double s = 0, s2 = 0;
  int differ = 0;
  for (int i = 0; i < 200; i++) {
    s += v[i];
    s2 += v[i] * v[i];
    differ += i && v[i] != v[i - 1];
  }
  double mean = s / 200, var = s2 / 200 - mean * mean, lam = 2385.0 * 0.8;
  check_abs(mean, lam, 5 * sqrt(lam / 200), "Poisson events per neuron in [100, 900) ms");
  check_rel(var, lam, 0.3, "Poisson count variance (Fano factor 1)");
  assert_true(differ > 150);   /* independent trains per target */
  sb_net_counters ct;
  sb_net_get_counters(net, &ct);
  assert_int_equal(ct.ext_events, (uint64_t)s);
  sb_net_free(net);
}

/* ---- networks: thread invariance, reset, statistics vs Brian2 ---- */

static sb_snn_model load(const char *file, double t_stop, int threads) {
  sb_snn_model_opts o = {NULL, 0, t_stop, -1, threads};
  sb_snn_model m;
  int rc = sb_snn_model_load(file, &o, &m);
  if (rc) fprintf(stderr, "%s\n", sb_last_error());
  assert_int_equal(rc, SB_OK);
  return m;
}

/* Distribution parameters under their other NEST version's names (NEST 2's low/high, mu/sigma;
 * NEST 3's mean/std of lognormal's underlying normal) give the same weights as the canonical ones,
 * bit for bit (same seed), and lognormal's sample mean is e^{mu + sigma^2/2} (closed form);
 * a parameter given under both names is refused. */
static void test_dist_param_aliases(void **state) {
  (void)state;
  static const char *const pairs[][2] = {
      {"\"distribution\": \"uniform\", \"min\": 1, \"max\": 3", "\"distribution\": \"uniform\", \"low\": 1, \"high\": 3"},
      {"\"distribution\": \"normal\", \"mean\": 2, \"std\": 0.5", "\"distribution\": \"normal\", \"mu\": 2, \"sigma\": 0.5"},
      {"\"distribution\": \"normal_clipped\", \"mean\": 0, \"std\": 1, \"min\": 0, \"max\": 10",
       "\"distribution\": \"normal_clipped\", \"mu\": 0, \"sigma\": 1, \"low\": 0, \"high\": 10"},
      {"\"distribution\": \"lognormal\", \"mu\": 0.5, \"sigma\": 0.4", "\"distribution\": \"lognormal\", \"mean\": 0.5, \"std\": 0.4"},
  };
  char text[1024];
  for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
    syns x[2];
    for (int v = 0; v < 2; v++) {
      snprintf(text, sizeof text,
               "{\"simulation\": {\"t_stop\": 1, \"seed\": 7}, \"populations\": {\"a\": {\"model\": \"iaf_psc_delta\", \"n\": 100}},\n"
               " \"projections\": [{\"source\": \"a\", \"target\": \"a\", \"rule\": \"all_to_all\", \"weight\": {%s}}]}",
               pairs[i][v]);
      sb_snn_model m = load(sb_test_write_tmp("alias.json", text), 1.0, 1);
      x[v] = get(m.net, 0);
      sb_snn_model_free(&m);
    }
    assert_int_equal(x[0].n, 10000);
    assert_int_equal(x[1].n, x[0].n);
    assert_memory_equal(x[0].w, x[1].w, x[0].n * sizeof *x[0].w);
    if (i == 3) {
      double s = 0;
      for (size_t k = 0; k < x[0].n; k++) s += x[0].w[k];
      double mean = exp(0.5 + 0.4 * 0.4 / 2), sd = mean * sqrt(exp(0.4 * 0.4) - 1);
      check_abs(s / (double)x[0].n, mean, 5 * sd / 100, "lognormal sample mean");
    }
    syns_free(&x[0]);
    syns_free(&x[1]);
  }
  snprintf(text, sizeof text,
           "{\"populations\": {\"a\": {\"model\": \"iaf_psc_delta\", \"n\": 2}},\n \"projections\": [{\"source\": \"a\", \"target\": "
           "\"a\", \"rule\": \"all_to_all\", \"weight\": {\"distribution\": \"normal\", \"mean\": 1, \"mu\": 1, \"std\": 1}}]}");
  sb_snn_model_opts o = {NULL, 0, 1.0, -1, 1};
  sb_snn_model m;
  assert_int_equal(sb_snn_model_load(sb_test_write_tmp("alias2.json", text), &o, &m), SB_EINVAL);
  if (!strstr(sb_last_error(), "projections[0].weight.mean: given twice, also as 'mu'")) fail_msg("%s", sb_last_error());
  /* a range error names the keys as the file wrote them (it named the first names) */
  static const char *const bad[][2] = {
      {"\"distribution\": \"normal\", \"mu\": 0.5, \"sigma\": -1", "projections[0].weight.sigma: must be >= 0 (got -1)"},
      {"\"distribution\": \"uniform\", \"low\": 2, \"high\": 1", "projections[0].weight.high: must be > low = 2 (got 1)"},
      {"\"distribution\": \"uniform\", \"min\": 2, \"high\": 1", "projections[0].weight.high: must be > min = 2 (got 1)"},
      {"\"distribution\": \"lognormal\", \"mean\": 0, \"std\": -1", "projections[0].weight.std: must be >= 0 (got -1)"},
      {"\"distribution\": \"normal_clipped\", \"mu\": 0, \"sigma\": 0, \"low\": 1, \"high\": 2",
       "projections[0].weight.mu: with sigma 0 must be inside [low, high] = [1, 2] (got 0)"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    snprintf(text, sizeof text,
             "{\"populations\": {\"a\": {\"model\": \"iaf_psc_delta\", \"n\": 2}},\n \"projections\": [{\"source\": \"a\", "
             "\"target\": \"a\", \"rule\": \"all_to_all\", \"weight\": {%s}}]}", bad[i][0]);
    assert_int_equal(sb_snn_model_load(sb_test_write_tmp("alias3.json", text), &o, &m), SB_EINVAL);
    if (!strstr(sb_last_error(), bad[i][1])) fail_msg("%s", sb_last_error());
  }
}

static void test_thread_invariance_api(void **state) {
  (void)state;
  const char *files[] = {"models/snn/cuba.json", "models/snn/brunel_small.json"};
  for (int f = 0; f < 2; f++) {
    sb_snn_model m1 = load(files[f], 300.0, 1), m2 = load(files[f], 300.0, 2);
    assert_int_equal(sb_net_run(m1.net, 300.0), SB_OK);
    assert_int_equal(sb_net_run(m2.net, 300.0), SB_OK);
    for (int p = 0; p < sb_net_n_populations(m1.net); p++) {
      const double *t1, *t2;
      const uint32_t *i1, *i2;
      size_t n1, n2;
      sb_net_spikes(m1.net, p, &t1, &i1, &n1);
      sb_net_spikes(m2.net, p, &t2, &i2, &n2);
      assert_true(n1 > 100);
      assert_int_equal(n1, n2);
      assert_memory_equal(t1, t2, n1 * sizeof *t1);
      assert_memory_equal(i1, i2, n1 * sizeof *i1);
    }
    /* reset replays the same run */
    size_t n_before;
    const double *tb;
    const uint32_t *ib;
    sb_net_spikes(m1.net, 0, &tb, &ib, &n_before);
    double *copy = malloc(n_before * sizeof *copy);
    memcpy(copy, tb, n_before * sizeof *copy);
    assert_int_equal(sb_net_reset(m1.net), SB_OK);
    assert_int_equal(sb_net_run(m1.net, 300.0), SB_OK);
    size_t n_after;
    sb_net_spikes(m1.net, 0, &tb, &ib, &n_after);
    assert_int_equal(n_after, n_before);
    assert_memory_equal(tb, copy, n_before * sizeof *copy);
    free(copy);
    sb_snn_model_free(&m1);
    sb_snn_model_free(&m2);
  }
}

static void compare_fixture(const char *model, const char *fixture) {
  /* 1 s of two networks is slow under ASan; the same code paths run in the thread test */
  if (getenv("SB_SANITIZE")) skip();
  hid_t f;
  assert_int_equal(sb_h5_open_read(fixture, &f), SB_OK);
  const char *names[4] = {"rate_exc", "cv_exc", "rate_inh", "cv_inh"};
  double ref[4];
  for (int i = 0; i < 4; i++) {
    double *v;
    size_t n;
    assert_int_equal(sb_h5_read(f, names[i], H5T_NATIVE_DOUBLE, (void **)&v, &n, NULL, NULL, 0), SB_OK);
    ref[i] = v[0];
    sb_free(v);
  }
  H5Fclose(f);
  sb_snn_model m = load(model, 1000.0, 1);   /* 2 threads are covered by the invariance tests */
  assert_int_equal(sb_net_run(m.net, 1000.0), SB_OK);
  for (int p = 0; p < 2; p++) {
    sb_pop_stats st;
    sb_net_pop_stats(m.net, p, &st);
    /* different random network and input realisation: population means agree within 10% */
    check_rel(st.rate, ref[2 * p], 0.10, "%s %s mean rate (Hz) vs Brian2", model, sb_net_pop_name(m.net, p));
    check_rel(st.cv, ref[2 * p + 1], 0.10, "%s %s mean ISI CV vs Brian2", model, sb_net_pop_name(m.net, p));
  }
  sb_snn_model_free(&m);
}

static void test_cuba_vs_brian2(void **state) {
  (void)state;
  compare_fixture("models/snn/cuba.json", "tests/ref/cuba_brian2.h5");
}

static void test_brunel_small_vs_brian2(void **state) {
  (void)state;
  compare_fixture("models/snn/brunel_small.json", "tests/ref/brunel_small_brian2.h5");
}

static void test_api_errors(void **state) {
  (void)state;
  sb_net *net = sb_net_alloc(1, 1);
  int a;
  assert_int_equal(sb_net_add_population(net, "a", sb_neuron_iaf_psc_exp, 3, &a), SB_OK);
  assert_int_equal(sb_net_add_population(net, "a", sb_neuron_iaf_psc_exp, 3, NULL), SB_EINVAL);
  check_contains(sb_last_error(), "defined twice");
  assert_int_equal(sb_net_set_param(net, a, "tau_m", -20.0), SB_EINVAL);
  check_contains(sb_last_error(), "tau_m: must be > 0 (got -20)");
  assert_int_equal(sb_net_set_param(net, a, "V_reset", -50.0), SB_EINVAL);   /* above V_th = -55 */
  check_contains(sb_last_error(), "V_reset: must be < V_th = -55 (got -50)");
  double iv[3] = {1, 2, NAN};
  assert_int_equal(sb_net_set_param_array(net, a, "I_e", iv), SB_EINVAL);
  check_contains(sb_last_error(), "neuron 2");
  assert_int_equal(sb_net_add_poisson(net, a, NULL, 0, -5.0, 0, 10, 1, 1), SB_EINVAL);
  check_contains(sb_last_error(), "rate: must be >= 0");
  uint32_t bad = 3;
  assert_int_equal(sb_net_add_dc(net, a, &bad, 1, 1.0, 0, 10, 1.0, 0.0), SB_EINVAL);
  check_contains(sb_last_error(), "node_ids[0]: must be < 3");
  assert_int_equal(sb_net_record_state(net, a, "U_m", NULL, 0, 0.1), SB_EINVAL);
  /* samples at 0, 0.5, ..., 100 ms of 2 neurons, float32 */
  uint32_t rid[2] = {0, 2};
  assert_int_equal(sb_net_record_state(net, a, "V_m", rid, 2, 0.5), SB_OK);
  assert_true(sb_net_record_bytes(net, 100.0) == 201.0 * 2 * 4);
  /* window numbers are 32-bit: no projections, so 5 ms windows */
  double t_max = 0;
  assert_int_equal(sb_net_time_limit(net, &t_max), SB_OK);
  assert_true(t_max == (4294967296.0 - 258) * 5.0);
  assert_int_equal(sb_net_run(net, t_max * 1.000001), SB_EINVAL);
  check_contains(sb_last_error(), "is beyond the engine's limit of 2.14748e+10 ms (2^32 windows of 5 ms)");
  assert_int_equal(sb_net_run(net, 10.0), SB_OK);
  assert_int_equal(sb_net_run(net, 5.0), SB_EINVAL);
  sb_net_free(net);
}

/* The conversion backend's loop: run, read counts, reset, change per-neuron biases, run again.
 * Parameter changes between runs take effect at once (lazily skipped neurons are woken). */
static void test_params_between_runs(void **state) {
  (void)state;
  sb_net *net = sb_net_alloc(1, 2);
  int a;
  assert_int_equal(sb_net_add_population(net, "a", sb_neuron_if_subtract, 4, &a), SB_OK);
  assert_int_equal(sb_net_run(net, 50.0), SB_OK);   /* no input: every neuron sleeps */
  double ie[4] = {0.0123, 0.0237, 0.0411, 0.0};
  assert_int_equal(sb_net_set_param_array(net, a, "I_e", ie), SB_OK);
  assert_int_equal(sb_net_run(net, 200.0), SB_OK);
  uint64_t c[4];
  sb_net_spike_counts(net, a, c);
  for (int i = 0; i < 4; i++) assert_int_equal(c[i], (uint64_t)floor(150.0 * ie[i] + 1e-9));
  const double *t;
  const uint32_t *id;
  size_t n;
  sb_net_spikes(net, a, &t, &id, &n);
  check_abs(t[0], 50.0 + 1.0 / 0.0411, 1e-9, "first spike after the bias was set at 50 ms");
  assert_int_equal(sb_net_reset(net), SB_OK);
  double ie2[4] = {0.0, 0.0, 0.0, 0.0512};
  assert_int_equal(sb_net_set_param_array(net, a, "I_e", ie2), SB_OK);
  assert_int_equal(sb_net_run(net, 100.0), SB_OK);
  sb_net_spike_counts(net, a, c);
  assert_true(c[0] == 0 && c[1] == 0 && c[2] == 0 && c[3] == 5);
  double v[4];
  sb_net_get_state(net, a, "V_m", v);
  check_abs(v[3], 100.0 * 0.0512 - 5.0, 1e-12, "V_m = integrated bias - 5 spikes");
  check_abs(v[0], 0.0, 0, "V_m restored by reset");
  sb_net_free(net);
}

/* Every allocation of building and running a network that uses every feature may fail: the
 * result is SB_OK or SB_ENOMEM, never a crash or a leak (ASan checks the latter). */
static int build_and_run(void) {
  sb_net *net = sb_net_alloc(4, 1);
  if (!net) return SB_ENOMEM;
  int a, b, c, rc;
  double ie[6] = {300, 310, 320, 330, 340, 350}, ts[2] = {1.0, 2.5};
  float w[6 * 6], ker[2 * 1 * 2 * 2] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f};
  for (int i = 0; i < 36; i++) w[i] = 0.01f * (float)i;
  sb_conn_spec cs = {0};
  cs.rule = SB_RULE_FIXED_INDEGREE;
  cs.indegree = 3;
  cs.allow_autapses = cs.allow_multapses = 1;
  sb_syn_spec ys = {{SB_DIST_NORMAL, 50, 10, 0, 0}, {SB_DIST_UNIFORM, 1.0, 2.0, 0, 0}, SB_RECEPTOR_SIGN};
  sb_net_conv_shape sh = {1, 2, 3, 2, 2, 2, 1, 0};
  if ((rc = sb_net_add_population(net, "a", sb_neuron_iaf_psc_exp, 6, &a)) ||
      (rc = sb_net_add_population(net, "b", sb_neuron_if_subtract, 6, &b)) ||
      (rc = sb_net_add_population(net, "c", sb_neuron_iaf_cond_exp, 4, &c)) ||
      (rc = sb_net_set_param_array(net, a, "I_e", ie)) || (rc = sb_net_set_param(net, b, "V_th", 0.3)) ||
      (rc = sb_net_connect(net, a, a, &cs, &ys, NULL)) || (rc = sb_net_connect_dense(net, a, b, w, 1.0, NULL)) ||
      (rc = sb_net_connect_conv(net, b, c, &sh, ker, 1.0, NULL)) ||
      (rc = sb_net_add_poisson(net, a, NULL, 0, 500.0, 0, 30, 20.0, 1.0)) ||
      (rc = sb_net_add_dc(net, c, NULL, 0, 400.0, 5.0, 25.0, 1.0, 0.0)) ||
      (rc = sb_net_add_spike_train(net, b, NULL, 0, ts, 2, 0.5, 1.0)) ||
      (rc = sb_net_record_state(net, a, "V_m", NULL, 0, 0.5)) || (rc = sb_net_run(net, 30.0)) ||
      (rc = sb_net_set_param(net, b, "I_e", 0.01)) ||
      (rc = sb_net_reset(net)) || (rc = sb_net_run(net, 10.0))) {
    sb_net_free(net);
    return rc;
  }
  sb_net_free(net);
  return SB_OK;
}

static void test_alloc_failures(void **state) {
  (void)state;
  assert_int_equal(build_and_run(), SB_OK);
  int n_fail = 0;
  for (long n = 1; n < 5000; n++) {
    sb_alloc_fail_after(n);
    int rc = build_and_run();
    sb_alloc_fail_after(0);
    if (rc == SB_OK) break;
    assert_int_equal(rc, SB_ENOMEM);
    n_fail++;
  }
  assert_true(n_fail > 20);
}

int main(void) {
  gsl_set_error_handler_off();
  sb_h5_quiet();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rules_counts),
      cmocka_unit_test(test_rules_thread_invariant),
      cmocka_unit_test(test_distributions),
      cmocka_unit_test(test_truncated_normal),
      cmocka_unit_test(test_dense_and_conv),
      cmocka_unit_test(test_target_index_width),
      cmocka_unit_test(test_poisson_rate_and_independence),
      cmocka_unit_test(test_api_errors),
      cmocka_unit_test(test_alloc_failures),
      cmocka_unit_test(test_params_between_runs),
      cmocka_unit_test(test_dist_param_aliases),
      cmocka_unit_test(test_thread_invariance_api),
      cmocka_unit_test(test_cuba_vs_brian2),
      cmocka_unit_test(test_brunel_small_vs_brian2),
  };
  return cmocka_run_group_tests_name("sim", tests, NULL, NULL);
}
