/* Neuron models: every registered type gets the same interface checks (registry walk); the LIF
 * models are checked against closed forms (spike times under constant current, PSP sums,
 * the tau_syn == tau_m singularity); iaf_cond_exp against a Brian2 fixture; if_subtract against
 * its arithmetic (charge conservation of reset by subtraction). */
#include "sim/sim.h"
#include "tests/testutil.h"

#include <gsl/gsl_errno.h>

/* ---- registry walk ---- */

static void test_registry_interface(void **state) {
  (void)state;
  int count = 0;
  for (int i = 0; sb_neuron_types[i]; i++, count++) {
    const sb_neuron_type *T = sb_neuron_types[i];
    assert_ptr_equal(sb_neuron_find(T->name), T);
    assert_string_equal(T->recordables[0].name, "V_m");
    char *p = malloc(T->param_size), *d = malloc(T->derived_size), *s = malloc(T->state_size);
    sb_neuron_defaults(T, p);
    assert_int_equal(T->validate(p), SB_OK);
    /* unknown parameter and bad time constant are rejected, naming the key */
    assert_int_equal(sb_neuron_set_param(T, p, "tau_q", 1.0), SB_EINVAL);
    check_contains(sb_last_error(), "tau_q: unknown parameter");
    assert_int_equal(sb_neuron_set_param(T, p, "C_m", -20.0), SB_EINVAL);
    check_contains(sb_last_error(), "C_m: must be > 0 (got -20)");
    assert_int_equal(sb_neuron_set_param(T, p, "V_th", NAN), SB_EINVAL);
    /* V_reset above V_th fails validation */
    double vth;
    assert_int_equal(sb_neuron_get_param(T, p, "V_th", &vth), SB_OK);
    assert_int_equal(sb_neuron_set_param(T, p, "V_reset", vth + 1.0), SB_OK);
    assert_int_equal(T->validate(p), SB_EINVAL);
    check_contains(sb_last_error(), "V_reset: must be < V_th");
    sb_neuron_defaults(T, p);
    /* at rest, no input: no spike within 100 ms; a strong current: a spike where V = V_th */
    T->derive(p, d);
    T->init(p, d, s);
    void *w = T->work_alloc ? T->work_alloc(p) : NULL;
    double ts;
    assert_int_equal(T->next_crossing(p, d, s, 0.0, 100.0, &ts, w), SB_NOSPIKE);
    assert_int_equal(sb_neuron_set_param(T, p, "I_e", 2385.0 * (T == sb_neuron_if_subtract ? 0.001 : 1.0)), SB_OK);
    T->derive(p, d);
    T->init(p, d, s);
    assert_int_equal(T->next_crossing(p, d, s, 0.0, 100.0, &ts, w), SB_OK);
    assert_true(ts > 0 && ts < 100);
    assert_int_equal(T->advance(p, d, s, 0.0, ts, w), SB_OK);
    double V;
    memcpy(&V, s + T->recordables[0].offset, sizeof V);
    check_abs(V, vth, 1e-9, "%s: V_m at the crossing", T->name);
    /* the interval is half-open: asking for [0, ts) from rest finds nothing */
    T->init(p, d, s);
    assert_int_equal(T->next_crossing(p, d, s, 0.0, ts * (1 - 1e-9), &ts, w), SB_NOSPIKE);
    if (w) T->work_free(w);
    free(p); free(d); free(s);
  }
  assert_int_equal(count, 5);
}

/* ---- closed forms under constant current, through the engine ---- */

/* NEST test_iaf_psc_exp style: V(t) = E_L + R I_e (1 - e^{-t/tau_m}); first spike
 * t1 = tau_m ln(R I_e / (R I_e - (V_th - E_L))); after reset + t_ref the next interval is
 * t_ref + tau_m ln((R I_e - (V_reset - E_L)) / (R I_e - (V_th - E_L))). */
static void lif_constant_current(const sb_neuron_type *T) {
  const double E_L = -65.3, C = 237.5, tau = 13.7, V_th = -51.2, V_reset = -68.9, t_ref = 2.385, I_e = 412.3;
  sb_net *net = sb_net_alloc(7, 2);
  int a;
  assert_int_equal(sb_net_add_population(net, "a", T, 1, &a), SB_OK);
  const char *k[] = {"E_L", "C_m", "tau_m", "V_th", "V_reset", "t_ref", "I_e"};
  double v[] = {E_L, C, tau, V_th, V_reset, t_ref, I_e};
  for (int i = 0; i < 7; i++) assert_int_equal(sb_net_set_param(net, a, k[i], v[i]), SB_OK);
  assert_int_equal(sb_net_run(net, 1000.0), SB_OK);
  const double *t;
  const uint32_t *id;
  size_t n;
  sb_net_spikes(net, a, &t, &id, &n);
  double RI = tau / C * I_e;
  double t1 = tau * log(RI / (RI - (V_th - E_L)));
  double per = t_ref + tau * log((RI - (V_reset - E_L)) / (RI - (V_th - E_L)));
  size_t want = (size_t)floor((1000.0 - t1) / per) + 1;
  assert_true(n >= 50);
  assert_int_equal(n, want);
  for (size_t i = 0; i < n; i++)
    check_abs(t[i], t1 + (double)i * per, 1e-9, "%s spike %zu under I_e = %g pA", T->name, i, I_e);
  sb_net_free(net);
}

static void test_psc_delta_constant_current(void **state) {
  (void)state;
  lif_constant_current(sb_neuron_iaf_psc_delta);
}
static void test_psc_exp_constant_current(void **state) {
  (void)state;
  lif_constant_current(sb_neuron_iaf_psc_exp);
}

/* ---- PSP sums ---- */

/* Closed form of one PSC's membrane response, written independently of the library. */
static double psp(double t, double tau_m, double tau_s, double C) {
  if (t <= 0) return 0;
  if (tau_m == tau_s) return t / C * exp(-t / tau_m);
  return tau_m * tau_s / (C * (tau_m - tau_s)) * (exp(-t / tau_m) - exp(-t / tau_s));
}

static const double in_t[] = {1.25, 3.7, 3.7, 8.15, 12.0, 12.3, 20.45, 31.7};
static const double in_w[] = {385.0, -212.5, 150.25, 512.0, -333.0, 275.5, 96.0, -180.0};
#define N_IN 8

/* iaf_psc_exp driven by spike_generators: V_m at many times vs sum of PSPs. */
static void psp_sum(double tau_ex, double tau_in, double tol) {
  const double E_L = -70.0, C = 250.0, tau_m = 10.0;
  sb_net *net = sb_net_alloc(3, 1);
  int a;
  assert_int_equal(sb_net_add_population(net, "a", sb_neuron_iaf_psc_exp, 1, &a), SB_OK);
  assert_int_equal(sb_net_set_param(net, a, "V_th", 1000.0), SB_OK);
  assert_int_equal(sb_net_set_param(net, a, "tau_syn_ex", tau_ex), SB_OK);
  assert_int_equal(sb_net_set_param(net, a, "tau_syn_in", tau_in), SB_OK);
  for (int i = 0; i < N_IN; i++)
    assert_int_equal(sb_net_add_spike_train(net, a, NULL, 0, &in_t[i], 1, in_w[i], 0.5), SB_OK);
  for (int k = 1; k <= 400; k++) {
    double t = 0.1137 * k;
    assert_int_equal(sb_net_run(net, t), SB_OK);
    double V, want = E_L;
    sb_net_get_state(net, a, "V_m", &V);
    for (int i = 0; i < N_IN; i++)
      want += in_w[i] * psp(t - in_t[i] - 0.5, tau_m, in_w[i] >= 0 ? tau_ex : tau_in, C);
    check_abs(V, want, tol, "V_m at t = %g ms, tau_syn_ex = %.17g, tau_syn_in = %.17g", t, tau_ex, tau_in);
  }
  sb_net_free(net);
}

/* tau_m far below tau_syn (0.04 against 2 ms) and long steps between reads: the membrane
 * follows the current, V - E_L = w psp(t); with h (1/tau_m - 1/tau_syn) beyond 709 the exprel
 * form overflowed (V_m = inf after 29 ms without input). The closed form within 1e-12 mV, from
 * 0.5 to 40 ms after the input (V - E_L from 0.2 mV down to 1e-9 and below), read after steps of
 * up to 30 ms (the fast path is off: rate x window > 32). */
static void test_psc_exp_tiny_tau_m(void **state) {
  (void)state;
  const double E_L = -70.0, C = 250.0, tau_m = 0.04, tau_s = 2.0, w = 50.0, t_in = 1.0;
  sb_net *net = sb_net_alloc(3, 1);
  int a;
  assert_int_equal(sb_net_add_population(net, "a", sb_neuron_iaf_psc_exp, 1, &a), SB_OK);
  assert_int_equal(sb_net_set_param(net, a, "tau_m", tau_m), SB_OK);
  assert_int_equal(sb_net_set_param(net, a, "tau_syn_ex", tau_s), SB_OK);
  assert_int_equal(sb_net_add_spike_train(net, a, NULL, 0, &t_in, 1, w, 1.0), SB_OK);   /* arrives at 2 ms */
  const double reads[] = {2.5, 5.0, 12.0, 42.0, 45.0};
  for (int k = 0; k < 5; k++) {
    assert_int_equal(sb_net_run(net, reads[k]), SB_OK);
    double V;
    sb_net_get_state(net, a, "V_m", &V);
    double want = w * psp(reads[k] - 2.0, tau_m, tau_s, C);
    check_abs(V, E_L + want, 1e-12, "V_m at t = %g ms", reads[k]);   /* V_m's own rounding: 1.4e-14 */
  }
  sb_net_free(net);
}

/* iaf_psc_delta with tau_m = 0.007 ms under 8 kHz Poisson input in 5 ms windows: the window's
 * frame factors (e^{W/tau_m} = e^714) overflowed and the run ended with V_m = NaN. Such a
 * population now takes the generic path: the run succeeds and V_m stays within the inputs' reach
 * (E_L plus a few 0.5 mV jumps). */
static void test_psc_delta_tiny_tau_m(void **state) {
  (void)state;
  sb_net *net = sb_net_alloc(3, 1);
  int a;
  assert_int_equal(sb_net_add_population(net, "a", sb_neuron_iaf_psc_delta, 2, &a), SB_OK);
  assert_int_equal(sb_net_set_param(net, a, "tau_m", 0.007), SB_OK);
  assert_int_equal(sb_net_add_poisson(net, a, NULL, 0, 8000.0, 0.0, INFINITY, 0.5, 1.0), SB_OK);
  assert_int_equal(sb_net_run(net, 50.0), SB_OK);
  double V[2];
  sb_net_get_state(net, a, "V_m", V);
  for (int i = 0; i < 2; i++) assert_true(V[i] >= -70.0 && V[i] < -65.0);
  sb_net_free(net);
}

/* A PSP far narrower than 1 us (tau_m = tau_syn_ex = 1e-4 ms) crosses threshold: the threshold
 * search stopped subdividing at 1 us and missed it (no spike). One input of w = 3e8 pA at 6 ms:
 * V - E_L = w t / C e^{-t/tau} peaks at 44 mV; the spike lies at the first root of that minus
 * 15 mV (bisection here in long double), within 1e-12 ms. */
static void test_psc_exp_narrow_psp_spike(void **state) {
  (void)state;
  const double tau = 1e-4, C = 250.0, w = 3e8, t_in = 5.0;
  sb_net *net = sb_net_alloc(3, 1);
  int a;
  assert_int_equal(sb_net_add_population(net, "a", sb_neuron_iaf_psc_exp, 1, &a), SB_OK);
  assert_int_equal(sb_net_set_param(net, a, "tau_m", tau), SB_OK);
  assert_int_equal(sb_net_set_param(net, a, "tau_syn_ex", tau), SB_OK);
  assert_int_equal(sb_net_add_spike_train(net, a, NULL, 0, &t_in, 1, w, 1.0), SB_OK);
  assert_int_equal(sb_net_run(net, 20.0), SB_OK);
  const double *ts;
  const uint32_t *ids;
  size_t n;
  assert_int_equal(sb_net_spikes(net, a, &ts, &ids, &n), SB_OK);
  assert_int_equal(n, 1);
  long double lo = 0, hi = tau;   /* rising part: f(0) < 0 < f(tau) */
  for (int it = 0; it < 200; it++) {
    long double mid = 0.5L * (lo + hi), f = (long double)w * mid / C * expl(-mid / tau) - 15.0L;
    if (f >= 0) hi = mid;
    else lo = mid;
  }
  check_abs(ts[0], 6.0 + (double)hi, 1e-12, "spike time");
  sb_net_free(net);
}

/* A PSP whose peak barely crosses the threshold: one iaf_psc_exp neuron at rest (NEST defaults),
 * one 3000 pA input, V_th = E_L + the exact peak (closed form in long double) - d. d = +1e-9 mV must
 * fire, d = -1e-9 mV must not, for tau_syn_ex = 2 ms and = tau_m (the singular kernel), with and
 * without a V_m recording (two code paths). Overshoots below ~1e-7 mV were missed when the peak
 * fell inside the threshold search's smallest (1 us) interval (a fresh-user trial's report). */
static void test_psc_exp_barely_crossing_peak(void **state) {
  (void)state;
  const long double E_L = -70, C = 250, tau_m = 10, w = 3000;
  for (int c = 0; c < 2; c++)
    for (int rec = 0; rec < 2; rec++)
      for (int sgn = -1; sgn <= 1; sgn += 2) {
        long double ts = c == 0 ? 2 : tau_m, peak;
        if (c == 0) {
          long double tp = logl(tau_m / ts) * tau_m * ts / (tau_m - ts);
          peak = w * tau_m * ts / (C * (tau_m - ts)) * (expl(-tp / tau_m) - expl(-tp / ts));
        } else
          peak = w * tau_m / C * expl(-1.0L);
        double d = sgn * 1e-9, V_th = (double)(E_L + peak) - d, t_in = 10.0;
        sb_net *net = sb_net_alloc(4, 1);
        int a;
        assert_int_equal(sb_net_add_population(net, "a", sb_neuron_iaf_psc_exp, 1, &a), SB_OK);
        assert_int_equal(sb_net_set_param(net, a, "tau_syn_ex", (double)ts), SB_OK);
        assert_int_equal(sb_net_set_param(net, a, "V_th", V_th), SB_OK);
        assert_int_equal(sb_net_add_spike_train(net, a, NULL, 0, &t_in, 1, (double)w, 1.0), SB_OK);
        if (rec) assert_int_equal(sb_net_record_state(net, a, "V_m", NULL, 0, 0.37), SB_OK);
        assert_int_equal(sb_net_run(net, 60.0), SB_OK);
        const double *tsp;
        const uint32_t *ids;
        size_t n;
        assert_int_equal(sb_net_spikes(net, a, &tsp, &ids, &n), SB_OK);
        if (n != (sgn > 0 ? 1u : 0u))
          fail_msg("tau_syn_ex %g, recorded %d, V_th %.17g (peak %+g mV above it): %zu spikes", (double)ts, rec, V_th, d, n);
        sb_net_free(net);
      }
}

/* iaf_psc_exp firing through its synaptic currents (I_e drives V_inf = -53 mV above V_th = -55 mV;
 * exc and inh spike trains keep both currents non-zero at most crossings, so the threshold search
 * runs on rising, falling and turning trajectories): every spike time against an independent
 * reference in long double, within 1e-9 ms over more than 50 spikes. The reference integrates
 * the closed form between inputs, finds each crossing by a 1e-4 ms scan and bisection to
 * 1e-13 ms, and applies NEST's reset (V clamped at V_reset for t_ref, currents decaying). */
typedef struct { long double V, Ie, Ii; } ref_st;
static long double ref_V(const ref_st *s, long double h, long double E_inf, long double tau_m, long double tex,
                         long double tin, long double C) {
  long double em = expl(-h / tau_m);
  return E_inf + (s->V - E_inf) * em + s->Ie * tau_m * tex / (C * (tau_m - tex)) * (em - expl(-h / tex)) +
         s->Ii * tau_m * tin / (C * (tau_m - tin)) * (em - expl(-h / tin));
}
static void test_psc_exp_spikes_with_currents(void **state) {
  (void)state;
  const double E_L = -65.0, C = 250.0, tau_m = 10.0, tex = 2.0, tin = 5.0, V_th = -55.0, V_reset = -70.0, t_ref = 2.0,
               I_e = 450.0, T = 1200.0;
  enum { NE = 360, NI = 240 };
  double te[NE], ti[NI];
  for (int k = 0; k < NE; k++) te[k] = 0.37 + 3.31 * k + 0.9 * sin(1.7 * k);   /* irregular, sorted */
  for (int k = 0; k < NI; k++) ti[k] = 1.13 + 4.93 * k + 1.3 * sin(2.3 * k);
  const double we = 160.0, wi = -220.0;
  sb_net *net = sb_net_alloc(3, 1);
  int a;
  assert_int_equal(sb_net_add_population(net, "a", sb_neuron_iaf_psc_exp, 1, &a), SB_OK);
  const char *names[] = {"E_L", "C_m", "tau_m", "tau_syn_ex", "tau_syn_in", "V_th", "V_reset", "t_ref", "I_e"};
  const double vals[] = {E_L, C, tau_m, tex, tin, V_th, V_reset, t_ref, I_e};
  for (int q = 0; q < 9; q++) assert_int_equal(sb_net_set_param(net, a, names[q], vals[q]), SB_OK);
  assert_int_equal(sb_net_set_state(net, a, "V_m", &E_L), SB_OK);
  assert_int_equal(sb_net_add_spike_train(net, a, NULL, 0, te, NE, we, 0.0), SB_OK);
  assert_int_equal(sb_net_add_spike_train(net, a, NULL, 0, ti, NI, wi, 0.0), SB_OK);
  assert_int_equal(sb_net_run(net, T), SB_OK);
  const double *ts;
  const uint32_t *ids;
  size_t n;
  assert_int_equal(sb_net_spikes(net, a, &ts, &ids, &n), SB_OK);
  /* the reference */
  long double E_inf = E_L + tau_m / C * I_e, t = 0, ref_end = -1;
  ref_st st = {E_L, 0, 0};
  size_t ie = 0, ii = 0, m = 0;
  double want[1000];
  while (t < T && m < 1000) {
    long double tn = T;   /* next input */
    if (ie < NE && te[ie] < tn) tn = te[ie];
    if (ii < NI && ti[ii] < tn) tn = ti[ii];
    if (t < ref_end) {   /* refractory: V clamped, currents decay */
      long double tr = ref_end < tn ? ref_end : tn;
      st.Ie *= expl(-(tr - t) / tex);
      st.Ii *= expl(-(tr - t) / tin);
      t = tr;
    } else {
      long double lo = -1, step = 1e-4L;
      for (long double x = step; t + x < tn + step; x += step) {
        long double xx = t + x < tn ? x : tn - t;
        if (ref_V(&st, xx, E_inf, tau_m, tex, tin, C) >= V_th) { lo = x - step < 0 ? 0 : x - step; step = xx - lo; break; }
      }
      if (lo >= 0) {   /* crossing in [lo, lo + step]: bisect */
        long double a0 = lo, b0 = lo + step;
        while (b0 - a0 > 1e-13L) {
          long double c0 = 0.5L * (a0 + b0);
          if (ref_V(&st, c0, E_inf, tau_m, tex, tin, C) >= V_th) b0 = c0; else a0 = c0;
        }
        st.Ie *= expl(-b0 / tex);
        st.Ii *= expl(-b0 / tin);
        t += b0;
        want[m++] = (double)t;
        st.V = V_reset;
        ref_end = t + t_ref;
        continue;
      }
      long double h = tn - t;
      st.V = ref_V(&st, h, E_inf, tau_m, tex, tin, C);
      st.Ie *= expl(-h / tex);
      st.Ii *= expl(-h / tin);
      t = tn;
    }
    if (t >= T) break;
    if (t < ref_end) { /* inputs during refractoriness still reach the currents */ }
    while (ie < NE && te[ie] <= t) st.Ie += we, ie++;
    while (ii < NI && ti[ii] <= t) st.Ii += wi, ii++;
    if (t >= ref_end && ref_end > 0 && t == ref_end) st.V = V_reset;
  }
  print_message("iaf_psc_exp with currents: %zu spikes (reference %zu)\n", n, m);
  assert_true(m > 50);
  assert_int_equal(n, m);
  for (size_t k = 0; k < n; k++) check_abs(ts[k], want[k], 1e-9, "spike %zu", k);
  sb_net_free(net);
}

static void test_psc_exp_psp_sum(void **state) {
  (void)state;
  psp_sum(2.0, 5.0, 1e-9);    /* tau_syn != tau_m */
  psp_sum(10.0, 10.0, 1e-9);  /* tau_syn == tau_m: the singular case, both receptors */
  psp_sum(10.0, 3.3, 1e-9);
}

/* tau_syn = tau_m (1 + eps): the propagator stays finite and continuous (NEST test_iaf_singularity). */
static void test_psc_exp_singularity_sweep(void **state) {
  (void)state;
  const double tau_m = 10.0, C = 250.0;
  for (int e = -14; e <= -1; e++) {
    for (int sgn = -1; sgn <= 1; sgn += 2) {
      double eps = sgn * pow(10.0, e), tau_s = tau_m * (1 + eps);
      for (double h = 0.1; h < 50; h *= 2.7) {
        double got = sb_lif_psc_exp_p21(h, tau_m, tau_s, C);
        double lim = psp(h, tau_m, tau_m, C);
        /* |dP/dtau_s| <= h^2/(C tau^2) e^{-h/tau} roughly; the direct formula is accurate away from 0 */
        double dev = fabs(eps) * tau_m * h * h / (C * tau_m * tau_m) * 2.0;
        check_abs(got, lim, dev + 1e-15, "P(h=%g) at tau_syn = tau_m(1%+g) vs singular limit", h, eps);
        if (fabs(eps) >= 1e-4)
          check_rel(got, psp(h, tau_m, tau_s, C), 1e-9, "P(h=%g) at tau_syn = tau_m(1%+g) vs direct form", h, eps);
      }
    }
  }
  assert_true(sb_lif_psc_exp_p21(0.5, 10.0, 10.0, 250.0) == 0.5 / 250.0 * exp(-0.05));
}

static void test_psc_delta_psp_sum_and_refractory_discard(void **state) {
  (void)state;
  const double E_L = -70.0, tau_m = 10.0;
  sb_net *net = sb_net_alloc(3, 1);
  int a;
  assert_int_equal(sb_net_add_population(net, "a", sb_neuron_iaf_psc_delta, 1, &a), SB_OK);
  assert_int_equal(sb_net_set_param(net, a, "V_th", 1000.0), SB_OK);
  for (int i = 0; i < N_IN; i++) {
    double w = in_w[i] / 100.0;
    assert_int_equal(sb_net_add_spike_train(net, a, NULL, 0, &in_t[i], 1, w, 0.25), SB_OK);
  }
  for (int k = 1; k <= 300; k++) {
    double t = 0.1371 * k;
    assert_int_equal(sb_net_run(net, t), SB_OK);
    double V, want = E_L;
    sb_net_get_state(net, a, "V_m", &V);
    for (int i = 0; i < N_IN; i++)
      if (t >= in_t[i] + 0.25) want += in_w[i] / 100.0 * exp(-(t - in_t[i] - 0.25) / tau_m);
    check_abs(V, want, 1e-9, "iaf_psc_delta V_m at t = %g", t);
  }
  sb_net_free(net);
  /* NEST: spikes arriving during the refractory period are discarded */
  net = sb_net_alloc(3, 1);
  assert_int_equal(sb_net_add_population(net, "a", sb_neuron_iaf_psc_delta, 1, &a), SB_OK);
  double t_kick = 5.0, t_in = 6.0, t_after = 8.0;
  assert_int_equal(sb_net_add_spike_train(net, a, NULL, 0, &t_kick, 1, 20.0, 0.0), SB_OK);   /* -70 + 20 > -55 */
  assert_int_equal(sb_net_add_spike_train(net, a, NULL, 0, &t_in, 1, 5.0, 0.0), SB_OK);      /* lost */
  assert_int_equal(sb_net_add_spike_train(net, a, NULL, 0, &t_after, 1, 5.0, 0.0), SB_OK);   /* counts */
  assert_int_equal(sb_net_run(net, 10.0), SB_OK);
  const double *t;
  const uint32_t *id;
  size_t n;
  sb_net_spikes(net, a, &t, &id, &n);
  assert_int_equal(n, 1);
  check_abs(t[0], 5.0, 0, "spike at the input time");
  double V;
  sb_net_get_state(net, a, "V_m", &V);
  check_abs(V, -70.0 + 5.0 * exp(-2.0 / 10.0), 1e-12, "V_m after refractory input discarded");
  sb_net_free(net);
}

/* ---- if_subtract ---- */

static void test_if_subtract(void **state) {
  (void)state;
  sb_net *net = sb_net_alloc(3, 2);
  int a, z;
  assert_int_equal(sb_net_add_population(net, "a", sb_neuron_if_subtract, 3, &a), SB_OK);
  assert_int_equal(sb_net_add_population(net, "z", sb_neuron_if_subtract, 1, &z), SB_OK);
  double bias[3] = {0.0237, 0.0612, 0.0};
  assert_int_equal(sb_net_set_param_array(net, a, "I_e", bias), SB_OK);
  assert_int_equal(sb_net_set_param(net, a, "V_th", 0.85), SB_OK);
  /* neuron 2: one input of 2.3 * V_th -> two spikes at the same time, 0.3 V_th left */
  double tin = 10.0;
  uint32_t two = 2;
  assert_int_equal(sb_net_add_spike_train(net, a, &two, 1, &tin, 1, 2.3 * 0.85, 0.0), SB_OK);
  /* a floor at or above threshold is refused (it fired without end: "more than 1e6 spikes") */
  assert_int_equal(sb_net_set_param(net, z, "V_min", 1.0), SB_EINVAL);
  check_contains(sb_last_error(), "V_min: must be < V_th = 1 (got 1)");
  /* reset to zero: the remainder is lost */
  assert_int_equal(sb_net_set_param(net, z, "reset_mode", 1.0), SB_OK);
  assert_int_equal(sb_net_add_spike_train(net, z, NULL, 0, &tin, 1, 2.3, 0.0), SB_OK);
  assert_int_equal(sb_net_run(net, 3000.0), SB_OK);
  uint64_t cnt[3];
  sb_net_spike_counts(net, a, cnt);
  const double *t;
  const uint32_t *id;
  size_t n;
  sb_net_spikes(net, a, &t, &id, &n);
  for (int j = 0; j < 2; j++) {
    double per = 0.85 / bias[j];
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
      if (id[i] == (uint32_t)j) {
        k++;
        check_abs(t[i], (double)k * per, 1e-9, "if_subtract neuron %d spike %zu", j, k);
      }
    assert_true(k >= 50);
    assert_int_equal(cnt[j], (uint64_t)floor(3000.0 / per));
  }
  assert_int_equal(cnt[2], 2);
  double V[3];
  sb_net_get_state(net, a, "V_m", V);
  check_abs(V[2], 0.3 * 0.85, 1e-12, "charge kept by reset by subtraction");
  check_abs(V[0], 3000.0 * bias[0] - (double)cnt[0] * 0.85, 1e-9, "V_m = integral of input - spikes * V_th");
  sb_net_get_state(net, z, "V_m", V);
  sb_net_spike_counts(net, z, cnt);
  assert_int_equal(cnt[0], 1);
  check_abs(V[0], 0.0, 0, "reset to zero");
  sb_net_free(net);
}

/* ---- iaf_cond_exp vs Brian2 ---- */

static void test_cond_exp_vs_brian2(void **state) {
  (void)state;
  hid_t f;
  assert_int_equal(sb_h5_open_read("tests/ref/cond_exp_brian2.h5", &f), SB_OK);
  double *ref, *ex, *in;
  size_t nref, nex, nin;
  assert_int_equal(sb_h5_read(f, "spike_times", H5T_NATIVE_DOUBLE, (void **)&ref, &nref, NULL, NULL, 0), SB_OK);
  assert_int_equal(sb_h5_read(f, "ex_times", H5T_NATIVE_DOUBLE, (void **)&ex, &nex, NULL, NULL, 0), SB_OK);
  assert_int_equal(sb_h5_read(f, "in_times", H5T_NATIVE_DOUBLE, (void **)&in, &nin, NULL, NULL, 0), SB_OK);
  H5Fclose(f);
  sb_net *net = sb_net_alloc(1, 1);
  int a;
  assert_int_equal(sb_net_add_population(net, "a", sb_neuron_iaf_cond_exp, 1, &a), SB_OK);
  assert_int_equal(sb_net_set_param(net, a, "I_e", 300.0), SB_OK);
  assert_int_equal(sb_net_add_spike_train(net, a, NULL, 0, ex, nex, 10.0, 1.0), SB_OK);
  assert_int_equal(sb_net_add_spike_train(net, a, NULL, 0, in, nin, -15.0, 1.0), SB_OK);
  assert_int_equal(sb_net_run(net, 200.0), SB_OK);
  const double *t;
  const uint32_t *id;
  size_t n;
  sb_net_spikes(net, a, &t, &id, &n);
  assert_true(nref >= 5);
  assert_int_equal(n, nref);
  /* Brian2 places a spike at the first 0.001 ms step with v >= V_th, rk4 error is far smaller */
  for (size_t i = 0; i < n; i++) check_abs(t[i], ref[i], 0.01, "iaf_cond_exp spike %zu vs Brian2", i);
  sb_net_free(net);
  sb_free(ref); sb_free(ex); sb_free(in);
}

/* ---- iaf_cond_exp: crossings shorter than an ODE step ----
 * At rest, 2000 nS of inhibition and w nS of excitation arrive at 10 ms; V_m peaks 0.01 mV and
 * 0.001 mV above V_th (above it for 8.8 and 2.8 us, inside one 0.05 ms step) and 0.001 mV below
 * it. Fresh-user trial 10 found the first two spikes lost, and found when V_m was recorded (the
 * samples cut the steps). Reference: scipy's DOP853 with steps of at most 1e-5 ms
 * (tests/ref/make_cond_graze_ref.py): the crossing times within 1e-9 ms, no spike for the third;
 * the same with V_m recorded every 0.1 ms, and for iaf_cond_exp_theta with theta_plus = 0. */
static void test_cond_exp_grazing(void **state) {
  (void)state;
  const double w[3] = {1833.762642, 1832.857496, 1832.656}, ref[2] = {10.109958889242, 10.112922335719}, t9 = 9.0;
  for (int m = 0; m < 2; m++)
    for (int rec = 0; rec < 2; rec++) {
      sb_net *net = sb_net_alloc(1, 1);
      int a;
      assert_int_equal(sb_net_add_population(net, "a", m ? sb_neuron_iaf_cond_exp_theta : sb_neuron_iaf_cond_exp, 3, &a), SB_OK);
      if (m) assert_int_equal(sb_net_set_param(net, a, "theta_plus", 0.0), SB_OK);   /* theta starts at 0 */
      for (uint32_t i = 0; i < 3; i++) assert_int_equal(sb_net_add_spike_train(net, a, &i, 1, &t9, 1, w[i], 1.0), SB_OK);
      assert_int_equal(sb_net_add_spike_train(net, a, NULL, 0, &t9, 1, -2000.0, 1.0), SB_OK);
      if (rec) assert_int_equal(sb_net_record_state(net, a, "V_m", NULL, 0, 0.1), SB_OK);
      assert_int_equal(sb_net_run(net, 20.0), SB_OK);
      const double *t;
      const uint32_t *id;
      size_t n;
      sb_net_spikes(net, a, &t, &id, &n);
      assert_int_equal(n, 2);
      for (size_t k = 0; k < n; k++) {
        assert_int_equal(id[k], k);
        check_abs(t[k], ref[k], 1e-9, "model %d, recording %d: spike of neuron %zu", m, rec, k);
      }
      sb_net_free(net);
    }
}

int main(void) {
  gsl_set_error_handler_off();
  sb_h5_quiet();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_registry_interface),
      cmocka_unit_test(test_psc_delta_constant_current),
      cmocka_unit_test(test_psc_exp_constant_current),
      cmocka_unit_test(test_psc_exp_psp_sum),
      cmocka_unit_test(test_psc_exp_tiny_tau_m),
      cmocka_unit_test(test_psc_delta_tiny_tau_m),
      cmocka_unit_test(test_psc_exp_narrow_psp_spike),
      cmocka_unit_test(test_psc_exp_barely_crossing_peak),
      cmocka_unit_test(test_psc_exp_spikes_with_currents),
      cmocka_unit_test(test_psc_exp_singularity_sweep),
      cmocka_unit_test(test_psc_delta_psp_sum_and_refractory_discard),
      cmocka_unit_test(test_if_subtract),
      cmocka_unit_test(test_cond_exp_vs_brian2),
      cmocka_unit_test(test_cond_exp_grazing),
  };
  return cmocka_run_group_tests_name("neurons", tests, NULL, NULL);
}
