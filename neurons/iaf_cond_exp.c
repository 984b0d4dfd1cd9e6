/* iaf_cond_exp: leaky integrate-and-fire neuron with exponentially decaying synaptic
 * conductances (NEST name, parameters, units). The conductances are integrated in closed form;
 * V_m, which has no closed form, by GSL's embedded Runge-Kutta-Prince-Dormand (8,9) stepper
 * under a tight error control (1e-10 mV); spike times by GSL's Brent solver on the ODE solution.
 *
 *   C_m dV/dt = -g_L (V - E_L) - g_ex (V - E_ex) - g_in (V - E_in) + I_e + I_dc
 *   dg_ex/dt = -g_ex/tau_syn_ex,  dg_in/dt = -g_in/tau_syn_in
 *   a spike of weight w (nS) adds w to g_ex (w >= 0) or |w| to g_in (w < 0), as NEST does.
 *   V >= V_th: spike, V = V_reset and clamped for t_ref while the conductances keep decaying.
 *
 * Parameters  default   unit  meaning
 *   V_th       -55      mV    threshold
 *   V_reset    -60      mV    reset potential
 *   t_ref        2      ms    refractory period
 *   g_L         16.6667 nS    leak conductance
 *   C_m        250      pF    membrane capacitance
 *   E_ex         0      mV    excitatory reversal potential
 *   E_in       -85      mV    inhibitory reversal potential
 *   E_L        -70      mV    leak reversal potential
 *   tau_syn_ex   0.2    ms    excitatory conductance time constant
 *   tau_syn_in   2      ms    inhibitory conductance time constant
 *   I_e          0      pA    constant input current
 * State: V_m (mV), g_ex, g_in (nS), I_dc (pA), t_ref_end (ms).
 * Threshold crossings are detected at the ODE's step ends (steps are at most 0.05 ms) and, in a
 * step that ends below threshold, by bisection wherever sb_cond_v_max cannot rule out a rise
 * above threshold and back (graze), then located to 1e-12 ms by Brent's method. References: NEST
 * models/iaf_cond_exp.{h,cpp}; Kuhn, Aertsen, Rotter 2004. */
#include "neurons/neurons.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_odeiv2.h>
#include <gsl/gsl_roots.h>
#include <math.h>
#include <stddef.h>

typedef struct {
  double V_th, V_reset, t_ref, g_L, C_m, E_ex, E_in, E_L, tau_syn_ex, tau_syn_in, I_e;
} par;
typedef struct { double unused; } der;
typedef struct { double V_m, g_ex, g_in, I_dc, t_ref_end; } st;

static const sb_param_info params[] = {
    {"V_th", "mV", offsetof(par, V_th), -55.0},       {"V_reset", "mV", offsetof(par, V_reset), -60.0},
    {"t_ref", "ms", offsetof(par, t_ref), 2.0},       {"g_L", "nS", offsetof(par, g_L), 16.6667},
    {"C_m", "pF", offsetof(par, C_m), 250.0},         {"E_ex", "mV", offsetof(par, E_ex), 0.0},
    {"E_in", "mV", offsetof(par, E_in), -85.0},       {"E_L", "mV", offsetof(par, E_L), -70.0},
    {"tau_syn_ex", "ms", offsetof(par, tau_syn_ex), 0.2},
    {"tau_syn_in", "ms", offsetof(par, tau_syn_in), 2.0},
    {"I_e", "pA", offsetof(par, I_e), 0.0},           {NULL, NULL, 0, 0}};
static const sb_recordable recs[] = {{"V_m", "mV", offsetof(st, V_m)}, {"g_ex", "nS", offsetof(st, g_ex)},
                                     {"g_in", "nS", offsetof(st, g_in)}, {"I_dc", "pA", offsetof(st, I_dc)},
                                     {NULL, NULL, 0}};

#define H_MAX 0.05  /* ms, longest ODE step, so a crossing cannot hide inside one step */

typedef struct {
  const par *p;
  double g_ex0, g_in0, I;   /* conductances at the segment start, total current */
} ode_ctx;

typedef struct {
  gsl_odeiv2_step *step;
  gsl_odeiv2_control *ctl;
  gsl_odeiv2_evolve *ev;
  gsl_root_fsolver *root;
  ode_ctx ctx;
} work;

static int rhs(double t, const double y[], double f[], void *pv) {
  const ode_ctx *c = pv;
  const par *p = c->p;
  double gex = c->g_ex0 * exp(-t / p->tau_syn_ex), gin = c->g_in0 * exp(-t / p->tau_syn_in);
  f[0] = (-p->g_L * (y[0] - p->E_L) - gex * (y[0] - p->E_ex) - gin * (y[0] - p->E_in) + c->I) / p->C_m;
  return GSL_SUCCESS;
}

static int validate(const void *pv) {
  const par *p = pv;
  if (!(p->V_reset < p->V_th))
    SB_ERROR(SB_EINVAL, "V_reset: must be < V_th = %g (got %g)", p->V_th, p->V_reset);
  return SB_OK;
}

static void derive(const void *pv, void *dv) {
  (void)pv;
  ((der *)dv)->unused = 0;
}

static void init(const void *pv, const void *dv, void *sv) {
  (void)dv;
  const par *p = pv;
  st *s = sv;
  s->V_m = p->E_L;
  s->g_ex = s->g_in = s->I_dc = 0.0;
  s->t_ref_end = -INFINITY;
}

/* Integrate V over [0, h] from the free state s (segment-relative time). If `cross` is set,
 * stop at the first step end where V >= V_th and return its bracket [*ta, *tb] (SB_OK) with
 * V at ta in *Va; otherwise SB_NOSPIKE after integrating to h (V in s). */
static int graze(const par *p, const st *sa, double h, double Vb, work *w, int *budget, double *x);

static int integrate(const par *p, st *s, double h, work *w, int cross, double *ta, double *tb, double *Va) {
  w->ctx.p = p;
  w->ctx.g_ex0 = s->g_ex;
  w->ctx.g_in0 = s->g_in;
  w->ctx.I = p->I_e + s->I_dc;
  gsl_odeiv2_system sys = {rhs, NULL, 1, &w->ctx};
  gsl_odeiv2_evolve_reset(w->ev);
  gsl_odeiv2_step_reset(w->step);
  double t = 0, y[1] = {s->V_m}, dt = h < H_MAX ? h : H_MAX;
  const double thr = p->V_th - 1e-12 * (1.0 + fabs(p->V_th));
  /* a rise above threshold and back inside a step: ruled out for the whole segment when V_m
   * cannot reach the threshold in it, else step by step with the segment's conductance box */
  sb_cond_box box = {0, 0, 0};
  if (cross) {
    box = sb_cond_veff_box(p->g_L, p->E_L, p->C_m, w->ctx.I, s->g_ex * exp(-h / p->tau_syn_ex), s->g_ex, p->E_ex,
                           s->g_in * exp(-h / p->tau_syn_in), s->g_in, p->E_in);
    cross = 1 + !(sb_cond_v_max(&box, s->V_m, INFINITY, h) < thr);
  }
  while (t < h) {
    double t_prev = t, y_prev = y[0];
    double lim = t + H_MAX < h ? t + H_MAX : h;
    if (dt > lim - t) dt = lim - t;
    int rc = gsl_odeiv2_evolve_apply(w->ev, w->ctl, w->step, &sys, &t, lim, &dt, y);
    if (rc != GSL_SUCCESS)
      SB_ERROR(SB_ENOCONV, "iaf_cond_exp: ODE step failed at %g ms into a segment (%s)", t, gsl_strerror(rc));
    if (cross && y[0] >= p->V_th) {
      *ta = t_prev;
      *tb = t;
      *Va = y_prev;
      return SB_OK;
    }
    if (cross == 2 && !(sb_cond_v_max(&box, y_prev, y[0], t - t_prev) < thr)) {   /* above threshold and back? */
      st sa = *s;
      sa.V_m = y_prev;
      sa.g_ex *= exp(-t_prev / p->tau_syn_ex);
      sa.g_in *= exp(-t_prev / p->tau_syn_in);
      ode_ctx keep = w->ctx;   /* graze runs its own integrations */
      double x;
      int budget = 400, gr = graze(p, &sa, t - t_prev, y[0], w, &budget, &x);
      if (gr == SB_OK) {
        *ta = t_prev;
        *tb = t_prev + x;
        *Va = y_prev;
        return SB_OK;
      }
      if (gr != SB_NOSPIKE) return gr;
      w->ctx = keep;
      gsl_odeiv2_evolve_reset(w->ev);
      gsl_odeiv2_step_reset(w->step);
    }
  }
  s->V_m = y[0];
  return SB_NOSPIKE;
}

static void decay_g(const par *p, st *s, double h) {
  s->g_ex *= exp(-h / p->tau_syn_ex);
  s->g_in *= exp(-h / p->tau_syn_in);
}

/* A rise above threshold and back inside [0, h] from free state sa (V(h) = Vb below threshold):
 * SB_OK with *x the first bisection point found at or above V_th (V(0) < V_th <= V(x) brackets a
 * crossing); SB_NOSPIKE when sb_cond_v_max rules every part out, or the parts are shorter than
 * 1e-13 ms, or `budget` bisections are spent (the residual risk); an error from the ODE. */
static int graze(const par *p, const st *sa, double h, double Vb, work *w, int *budget, double *x) {
  sb_cond_box box = sb_cond_veff_box(p->g_L, p->E_L, p->C_m, p->I_e + sa->I_dc, sa->g_ex * exp(-h / p->tau_syn_ex), sa->g_ex,
                                     p->E_ex, sa->g_in * exp(-h / p->tau_syn_in), sa->g_in, p->E_in);
  if (sb_cond_v_max(&box, sa->V_m, Vb, h) < p->V_th - 1e-12 * (1.0 + fabs(p->V_th)) || h < 1e-13 || --*budget < 0)
    return SB_NOSPIKE;
  st sm = *sa;
  double a, b, Va;
  int rc = integrate(p, &sm, 0.5 * h, w, 0, &a, &b, &Va);
  if (rc != SB_NOSPIKE) return rc;
  decay_g(p, &sm, 0.5 * h);
  if (sm.V_m >= p->V_th) {
    *x = 0.5 * h;
    return SB_OK;
  }
  if ((rc = graze(p, sa, 0.5 * h, sm.V_m, w, budget, x)) != SB_NOSPIKE) return rc;
  if ((rc = graze(p, &sm, 0.5 * h, Vb, w, budget, x)) == SB_OK) *x += 0.5 * h;
  return rc;
}

static int advance(const void *pv, const void *dv, void *sv, double t0, double t1, void *wv) {
  (void)dv;
  const par *p = pv;
  st *s = sv;
  if (sb_neuron_cond_check("iaf_cond_exp", s->g_ex + s->g_in)) return SB_ENOCONV;
  if (t0 < s->t_ref_end) {
    double tr = t1 < s->t_ref_end ? t1 : s->t_ref_end;
    decay_g(p, s, tr - t0);
    s->V_m = p->V_reset;
    t0 = tr;
  }
  double h = t1 - t0;
  if (h <= 0) return SB_OK;
  if (s->g_ex == 0.0 && s->g_in == 0.0) {   /* closed form without conductances */
    double V_inf = p->E_L + (p->I_e + s->I_dc) / p->g_L;
    s->V_m = V_inf + (s->V_m - V_inf) * exp(-h * p->g_L / p->C_m);
    return SB_OK;
  }
  double a, b, Va;
  int rc = integrate(p, s, h, wv, 0, &a, &b, &Va);
  if (rc != SB_NOSPIKE) return rc;
  decay_g(p, s, h);
  return SB_OK;
}

static void receive(const void *pv, const void *dv, void *sv, double t, int receptor, double weight) {
  (void)pv;
  (void)dv;
  (void)t;
  st *s = sv;
  if (receptor == SB_RCPT_CURRENT) s->I_dc += weight;
  else if (weight >= 0) s->g_ex += weight;
  else s->g_in -= weight;
}

typedef struct { const par *p; st s0; work *w; } root_ctx;

static double root_f(double x, void *pv) {
  root_ctx *c = pv;
  st s = c->s0;
  double a, b, Va;
  if (integrate(c->p, &s, x, c->w, 0, &a, &b, &Va) != SB_NOSPIKE) return GSL_NAN;
  return s.V_m - c->p->V_th;
}

static int next_crossing(const void *pv, const void *dv, const void *sv, double t, double t_limit,
                         double *t_spike, void *wv) {
  const par *p = pv;
  work *w = wv;
  st s = *(const st *)sv;
  if (sb_neuron_cond_check("iaf_cond_exp", s.g_ex + s.g_in)) return SB_ENOCONV;
  if (t < s.t_ref_end) {
    if (s.t_ref_end >= t_limit) return SB_NOSPIKE;
    advance(p, dv, &s, t, s.t_ref_end, w);
    t = s.t_ref_end;
  }
  if (t >= t_limit) return SB_NOSPIKE;
  if (s.V_m >= p->V_th) {
    *t_spike = t;
    return SB_OK;
  }
  double h = t_limit - t;
  if (s.g_ex == 0.0 && s.g_in == 0.0) {
    double x = sb_lif_time_to_threshold(s.V_m, p->E_L + (p->I_e + s.I_dc) / p->g_L, p->V_th, p->C_m / p->g_L);
    if (x < h) {
      *t_spike = t + x;
      return SB_OK;
    }
    return SB_NOSPIKE;
  }
  double a, b, Va;
  st sc = s;
  int rc = integrate(p, &sc, h, w, 1, &a, &b, &Va);
  if (rc != SB_OK) return rc;
  /* state at a: conductances decayed in closed form, V from the ODE */
  root_ctx c = {p, s, w};
  c.s0.V_m = Va;
  decay_g(p, &c.s0, a);
  gsl_function F = {root_f, &c};
  if (gsl_root_fsolver_set(w->root, &F, 0.0, b - a) != GSL_SUCCESS)
    SB_ERROR(SB_ENOCONV, "iaf_cond_exp: threshold root not bracketed in [%g, %g] ms", t + a, t + b);
  for (int it = 0; it < 100; it++) {
    if (gsl_root_fsolver_iterate(w->root) != GSL_SUCCESS) break;
    double lo = gsl_root_fsolver_x_lower(w->root), hi = gsl_root_fsolver_x_upper(w->root);
    if (gsl_root_test_interval(lo, hi, 1e-12, 0) == GSL_SUCCESS) {
      *t_spike = t + a + hi;
      return SB_OK;
    }
  }
  SB_ERROR(SB_ENOCONV, "iaf_cond_exp: threshold root did not converge in [%g, %g] ms", t + a, t + b);
}

static void reset(const void *pv, const void *dv, void *sv, double t_spike) {
  (void)dv;
  const par *p = pv;
  st *s = sv;
  s->V_m = p->V_reset;
  s->t_ref_end = t_spike + p->t_ref;
}

static void work_free(void *wv) {
  work *w = wv;
  if (!w) return;
  if (w->step) gsl_odeiv2_step_free(w->step);
  if (w->ctl) gsl_odeiv2_control_free(w->ctl);
  if (w->ev) gsl_odeiv2_evolve_free(w->ev);
  if (w->root) gsl_root_fsolver_free(w->root);
  sb_free(w);
}

static void *work_alloc(const void *p) {
  (void)p;
  work *w = sb_calloc(1, sizeof *w);
  if (!w) return NULL;
  w->step = gsl_odeiv2_step_alloc(gsl_odeiv2_step_rk8pd, 1);
  w->ctl = gsl_odeiv2_control_y_new(1e-10, 0.0);
  w->ev = gsl_odeiv2_evolve_alloc(1);
  w->root = gsl_root_fsolver_alloc(gsl_root_fsolver_brent);
  if (!w->step || !w->ctl || !w->ev || !w->root) {
    work_free(w);
    SB_SET_ERROR(SB_ENOMEM, "iaf_cond_exp: out of memory for the ODE workspace");
    return NULL;
  }
  return w;
}

const sb_neuron_type sb_iaf_cond_exp_type = {
    "iaf_cond_exp", sizeof(par), sizeof(der), sizeof(st), params, recs, validate, derive, init,
    advance, receive, next_crossing, reset, work_alloc, work_free, NULL, NULL, NULL, NULL, NULL, NULL};
const sb_neuron_type *const sb_neuron_iaf_cond_exp = &sb_iaf_cond_exp_type;
