/* iaf_cond_exp_theta (adaptive threshold, Diehl & Cook 2015): spike times under constant current
 * against the closed form with a frozen and with a decaying theta, theta's recorded value, the
 * conductance propagator against GSL's rk8pd ODE solver, agreement with iaf_cond_exp when
 * theta_plus = 0, parameter validation, and spikes unchanged by recording V_m. */
#include "sim/sim.h"
#include "tests/testutil.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_odeiv2.h>

static const sb_neuron_type *T(void) { return sb_neuron_iaf_cond_exp_theta; }

/* One neuron under I_e, no synaptic input: a plain LIF with V_inf = E_L + I_e/g_L, tau_m = C/g_L. */
static sb_net *dc_neuron(double theta_plus, double tau_theta, double t_stop, double *theta_end) {
  sb_net *net = sb_net_alloc(3, 1);
  int a;
  assert_int_equal(sb_net_add_population(net, "a", T(), 1, &a), SB_OK);
  const char *k[] = {"E_L", "C_m", "g_L", "V_th", "V_reset", "t_ref", "I_e", "theta_plus", "tau_theta"};
  double v[] = {-65.3, 237.5, 17.35, -51.2, -68.9, 2.385, 412.3, theta_plus, tau_theta};
  for (int i = 0; i < 9; i++) assert_int_equal(sb_net_set_param(net, a, k[i], v[i]), SB_OK);
  assert_int_equal(sb_net_run(net, t_stop), SB_OK);
  assert_int_equal(sb_net_get_state(net, a, "theta", theta_end), SB_OK);
  return net;
}

/* Frozen theta (tau_theta = 1e300): interval k (k >= 1) is t_ref + tau ln((V_inf - V_reset) /
 * (V_inf - V_th - k theta_plus)); spikes stop once V_th + k theta_plus >= V_inf. */
static void test_frozen_theta_closed_form(void **state) {
  (void)state;
  const double E_L = -65.3, C = 237.5, gL = 17.35, V_th = -51.2, V_reset = -68.9, t_ref = 2.385, I = 412.3;
  const double tp = 0.2385, tau = C / gL, V_inf = E_L + I / gL;
  double theta;
  sb_net *net = dc_neuron(tp, 1e300, 3000.0, &theta);
  const double *t;
  const uint32_t *id;
  size_t n;
  sb_net_spikes(net, 0, &t, &id, &n);
  double want = tau * log((V_inf - E_L) / (V_inf - V_th));
  size_t k = 0;
  for (; want < 3000.0; k++) {
    assert_true(k < n);
    check_abs(t[k], want, 1e-9, "spike %zu with theta = %g mV", k, (double)k * tp);
    double th = V_th + (double)(k + 1) * tp;
    if (th >= V_inf) { want = INFINITY; k++; break; }
    want += t_ref + tau * log((V_inf - V_reset) / (V_inf - th));
  }
  assert_int_equal(n, k);
  assert_true(n > 20);
  check_rel(theta, (double)n * tp, 1e-12, "theta after %zu spikes", n);
  sb_net_free(net);
}

/* Decaying theta: between spikes V(t) = V_inf + (V_reset - V_inf) e^{-(t - t_k - t_ref)/tau} and
 * the threshold V_th + theta_k e^{-(t - t_k)/tau_theta}; the reference solves their crossing by
 * bisection (written here, independent of the library), theta_k = theta_{k-1} e^{-ISI/tau_theta}
 * + theta_plus. */
static void test_decaying_theta(void **state) {
  (void)state;
  const double E_L = -65.3, C = 237.5, gL = 17.35, V_th = -51.2, V_reset = -68.9, t_ref = 2.385, I = 412.3;
  const double tp = 1.7, tth = 61.3, tau = C / gL, V_inf = E_L + I / gL, T_END = 2000.0;
  double theta;
  sb_net *net = dc_neuron(tp, tth, T_END, &theta);
  const double *t;
  const uint32_t *id;
  size_t n;
  sb_net_spikes(net, 0, &t, &id, &n);
  double tk = tau * log((V_inf - E_L) / (V_inf - V_th)), th = 0.0;
  size_t k = 0;
  while (tk < T_END) {
    assert_true(k < n);
    check_abs(t[k], tk, 1e-8, "spike %zu, decaying theta", k);
    th += tp;   /* just after spike k */
    double a = tk + t_ref, b = tk + t_ref + 1000.0;
    for (int it = 0; it < 200; it++) {
      double m = 0.5 * (a + b);
      double V = V_inf + (V_reset - V_inf) * exp(-(m - tk - t_ref) / tau);
      if (V >= V_th + th * exp(-(m - tk) / tth)) b = m;
      else a = m;
    }
    double next = b;
    if (next < T_END) th *= exp(-(next - tk) / tth);
    else th *= exp(-(T_END - tk) / tth);
    tk = next;
    k++;
  }
  assert_int_equal(n, k);
  assert_true(n > 20);
  check_rel(theta, th, 1e-9, "theta at %g ms", T_END);
  sb_net_free(net);
}

/* ---- the conductance propagator against rk8pd ---- */

typedef struct { double gL, C, EL, Eex, Ein, te, ti, I; } ode_par;

static int rhs(double t, const double y[], double f[], void *pv) {
  (void)t;
  const ode_par *p = pv;
  f[0] = (-p->gL * (y[0] - p->EL) - y[1] * (y[0] - p->Eex) - y[2] * (y[0] - p->Ein) + p->I) / p->C;
  f[1] = -y[1] / p->te;
  f[2] = -y[2] / p->ti;
  return GSL_SUCCESS;
}

static void test_propagator_vs_ode(void **state) {
  (void)state;
  const sb_neuron_type *ty = T();
  char p[256], s[128], *d = malloc(ty->derived_size);   /* derived: 648 bytes (the bound's step factors) */
  assert_non_null(d);
  assert_true(ty->param_size <= sizeof p && ty->state_size <= sizeof s);
  sb_neuron_defaults(ty, p);
  const char *k[] = {"V_th", "g_L", "C_m", "E_L", "E_in", "tau_syn_ex", "tau_syn_in", "I_e"};
  double v[] = {1000.0, 1.0, 100.0, -65.0, -100.0, 1.0, 2.0, 23.85};
  for (int i = 0; i < 8; i++) assert_int_equal(sb_neuron_set_param(ty, p, k[i], v[i]), SB_OK);
  ty->derive(p, d);
  ty->init(p, d, s);
  ode_par op = {1.0, 100.0, -65.0, 0.0, -100.0, 1.0, 2.0, 23.85};
  gsl_odeiv2_system sys = {rhs, NULL, 3, &op};
  gsl_odeiv2_driver *drv = gsl_odeiv2_driver_alloc_y_new(&sys, gsl_odeiv2_step_rk8pd, 1e-3, 1e-13, 0.0);
  double y[3] = {-65.0, 0.0, 0.0}, tt = 0.0;
  /* events: (time, weight) with gaps from 0.013 ms to 40 ms, excitatory and inhibitory */
  const double ev_t[] = {0.5, 0.513, 0.9, 3.3, 3.31, 7.7, 47.7, 48.1, 60.0, 60.2, 61.0, 150.0};
  const double ev_w[] = {2.385, 1.5, -17.0, 4.2, 0.3, -3.3, 7.5, -40.0, 0.05, 9.9, -1.1, 3.0};
  double prev = 0.0;
  for (int e = 0; e < 12; e++) {
    assert_int_equal(ty->advance(p, d, s, prev, ev_t[e], NULL), SB_OK);
    assert_int_equal(gsl_odeiv2_driver_apply(drv, &tt, ev_t[e], y), GSL_SUCCESS);
    double V;
    memcpy(&V, s, sizeof V);
    check_abs(V, y[0], 1e-9, "V_m at %g ms vs rk8pd", ev_t[e]);
    ty->receive(p, d, s, ev_t[e], SB_RCPT_SPIKE, ev_w[e]);
    if (ev_w[e] >= 0) y[1] += ev_w[e];
    else y[2] -= ev_w[e];
    gsl_odeiv2_driver_reset(drv);
    prev = ev_t[e];
  }
  assert_int_equal(ty->advance(p, d, s, prev, 400.0, NULL), SB_OK);
  assert_int_equal(gsl_odeiv2_driver_apply(drv, &tt, 400.0, y), GSL_SUCCESS);
  double V;
  memcpy(&V, s, sizeof V);
  check_abs(V, y[0], 1e-9, "V_m at 400 ms vs rk8pd");
  gsl_odeiv2_driver_free(drv);
  free(d);
}

/* theta_plus = 0: the same neuron as iaf_cond_exp (an independent ODE implementation) under
 * Poisson excitation and inhibition: the same spikes within the ODE model's spike-time tolerance. */
static void test_same_as_cond_exp(void **state) {
  (void)state;
  size_t n[2];
  double first[2][64];
  for (int m = 0; m < 2; m++) {
    sb_net *net = sb_net_alloc(5, 1);
    int a;
    assert_int_equal(sb_net_add_population(net, "a", m ? sb_neuron_iaf_cond_exp : T(), 1, &a), SB_OK);
    if (!m) assert_int_equal(sb_net_set_param(net, a, "theta_plus", 0.0), SB_OK);
    assert_int_equal(sb_net_set_param(net, a, "tau_syn_ex", 1.0), SB_OK);
    assert_int_equal(sb_net_add_poisson(net, a, NULL, 0, 8000.0, 0.0, INFINITY, 3.0, 0.1), SB_OK);
    assert_int_equal(sb_net_add_poisson(net, a, NULL, 0, 2000.0, 0.0, INFINITY, -4.0, 0.1), SB_OK);
    assert_int_equal(sb_net_run(net, 500.0), SB_OK);
    const double *t;
    const uint32_t *id;
    sb_net_spikes(net, a, &t, &id, &n[m]);
    for (size_t i = 0; i < n[m] && i < 64; i++) first[m][i] = t[i];
    sb_net_free(net);
  }
  assert_true(n[0] >= 10);
  assert_int_equal(n[0], n[1]);
  for (size_t i = 0; i < n[0] && i < 64; i++)
    check_abs(first[0][i], first[1][i], 1e-6, "spike %zu: iaf_cond_exp_theta (theta_plus 0) vs iaf_cond_exp", i);
}

static void test_bad_params(void **state) {
  (void)state;
  sb_net *net = sb_net_alloc(1, 1);
  int a;
  assert_int_equal(sb_net_add_population(net, "a", T(), 2, &a), SB_OK);
  assert_int_equal(sb_net_set_param(net, a, "theta_plus", -0.05), SB_EINVAL);
  check_contains(sb_last_error(), "theta_plus: must be >= 0 mV (got -0.05)");
  assert_int_equal(sb_net_set_param(net, a, "tau_theta", 0.0), SB_EINVAL);
  check_contains(sb_last_error(), "tau_theta: must be > 0 (got 0)");
  double th[2] = {20.0, 3.5}, got[2];
  assert_int_equal(sb_net_set_state(net, a, "theta", th), SB_OK);
  assert_int_equal(sb_net_get_state(net, a, "theta", got), SB_OK);
  check_abs(got[1], 3.5, 0, "theta settable");
  assert_int_equal(sb_neuron_recordable(T(), "theta"), 4);
  sb_net_free(net);
}

/* Recording V_m leaves the spikes bit-identical: 100 recurrently connected neurons with Poisson
 * input, run without and with V_m sampled every 0.1 ms on all of them, for iaf_cond_exp_theta,
 * iaf_cond_exp and iaf_psc_delta with two Poisson sources (the generic path, as a recorded
 * neuron's). Samples are taken from copies of the state (sim/run.c, sample_segment); before, they
 * cut the neuron's steps, which moved spike times by up to 6e-12 ms (theta) and 3e-12 ms
 * (cond_exp) in this network. */
static sb_net *rec_net(const sb_neuron_type *type, int record) {
  sb_net *net = sb_net_alloc(5, 1);
  assert_non_null(net);
  int a;
  assert_int_equal(sb_net_add_population(net, "n", type, 100, &a), SB_OK);
  int psc = type == sb_neuron_iaf_psc_delta;
  const char *k[] = {"V_th", "V_reset", "E_L", "C_m", "t_ref", psc ? "tau_m" : "g_L"};
  const double v[] = {-52.0, -65.0, -65.0, 100.0, 5.0, 10.0};
  for (int i = 0; i < 6; i++) assert_int_equal(sb_net_set_param(net, a, k[i], v[i]), SB_OK);
  if (type == T()) assert_int_equal(sb_net_set_param(net, a, "theta_plus", 0.05), SB_OK);
  double v0[100];
  for (int i = 0; i < 100; i++) v0[i] = -65.0 + 12.0 * i / 100.0;
  assert_int_equal(sb_net_set_state(net, a, "V_m", v0), SB_OK);
  double w = psc ? 1.0 : 5.0;   /* mV; nS */
  sb_conn_spec cs = {.rule = SB_RULE_PAIRWISE_BERNOULLI, .p = 0.1, .allow_autapses = 1, .allow_multapses = 1};
  sb_syn_spec ss = {.weight = {SB_DIST_CONST, w, 0, 0, 0}, .delay = {SB_DIST_CONST, 1.0, 0, 0, 0}};
  assert_int_equal(sb_net_connect(net, a, a, &cs, &ss, NULL), SB_OK);
  assert_int_equal(sb_net_add_poisson(net, a, NULL, 0, psc ? 1500.0 : 3000.0, 0.0, INFINITY, w, 1.0), SB_OK);
  if (psc) assert_int_equal(sb_net_add_poisson(net, a, NULL, 0, 1500.0, 0.0, INFINITY, w, 1.0), SB_OK);
  if (record) assert_int_equal(sb_net_record_state(net, a, "V_m", NULL, 0, 0.1), SB_OK);
  assert_int_equal(sb_net_run(net, 300.0), SB_OK);
  return net;
}

static void test_recording_leaves_spikes(void **state) {
  (void)state;
  const sb_neuron_type *types[] = {T(), sb_neuron_iaf_cond_exp, sb_neuron_iaf_psc_delta};
  for (int m = 0; m < 3; m++) {
    sb_net *plain = rec_net(types[m], 0), *rec = rec_net(types[m], 1);
    const double *ta, *tb;
    const uint32_t *ia, *ib;
    size_t na, nb;
    assert_int_equal(sb_net_spikes(plain, 0, &ta, &ia, &na), SB_OK);
    assert_int_equal(sb_net_spikes(rec, 0, &tb, &ib, &nb), SB_OK);
    assert_true(na > 1000);   /* active: the comparison means something */
    assert_int_equal(na, nb);
    size_t diff = 0;
    for (size_t j = 0; j < na; j++) diff += ta[j] != tb[j] || ia[j] != ib[j];
    if (diff) fprintf(stderr, "%s: %zu of %zu spikes differ with V_m recorded\n", types[m]->name, diff, na);
    assert_int_equal(diff, 0);
    sb_net_free(plain);
    sb_net_free(rec);
  }
}

int main(void) {
  gsl_set_error_handler_off();
  sb_h5_quiet();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_frozen_theta_closed_form),
      cmocka_unit_test(test_decaying_theta),
      cmocka_unit_test(test_propagator_vs_ode),
      cmocka_unit_test(test_same_as_cond_exp),
      cmocka_unit_test(test_bad_params),
      cmocka_unit_test(test_recording_leaves_spikes),
  };
  return cmocka_run_group_tests_name("theta", tests, NULL, NULL);
}
