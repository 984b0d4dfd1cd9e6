/* iaf_cond_exp_theta: iaf_cond_exp (conductance-based LIF, exponential conductances) with the
 * adaptive threshold (homeostasis) of Diehl & Cook 2015. Not an ODE model: the membrane is
 * propagated with its exact integrating factor and a Gauss-Legendre quadrature of a smooth
 * integrand (about 1e-12 relative), the conductances and theta in closed form.
 *
 *   C_m dV/dt = -g_L (V - E_L) - g_ex (V - E_ex) - g_in (V - E_in) + I_e + I_dc
 *   dg_ex/dt = -g_ex/tau_syn_ex,  dg_in/dt = -g_in/tau_syn_in,  dtheta/dt = -theta/tau_theta
 *   a spike of weight w (nS) adds w to g_ex (w >= 0) or |w| to g_in (w < 0), as NEST does.
 *   V >= V_th - theta_offset + theta: spike, V = V_reset and clamped for t_ref (conductances and theta keep
 *   decaying), theta += theta_plus.
 *
 * Parameters  default   unit  meaning
 *   V_th       -55      mV    threshold without adaptation (Diehl & Cook: v_thresh_e = -52)
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
 *   theta_plus   0.05   mV    threshold increase per spike (Diehl & Cook 2015)
 *   tau_theta    1e7    ms    decay time constant of theta (Diehl & Cook 2015; 1e300 freezes it)
 *   theta_offset 0      mV    constant subtracted from the threshold (Diehl & Cook's `offset`, 20 mV,
 *                             with theta starting at 20 mV: the threshold starts at V_th and drifts
 *                             towards V_th - offset as theta decays)
 * State: V_m (mV), g_ex, g_in (nS), I_dc (pA), theta (mV, initially 0), t_ref_end (ms).
 *
 * Propagator over a piece of length h (segment-relative time s), with I = I_e + I_dc and
 *   Phi(s) = s g_L/C + (g_ex tau_ex (1 - e^{-s/tau_ex}) + g_in tau_in (1 - e^{-s/tau_in}))/C,
 *   c(s)   = (g_L E_L + I + g_ex e^{-s/tau_ex} E_ex + g_in e^{-s/tau_in} E_in)/C:
 *   V(h) = V(0) e^{-Phi(h)} + int_0^h c(s) e^{Phi(s) - Phi(h)} ds   (exact; the variation of constants)
 * The integrand is smooth on the scale min(tau_ex, tau_in, C/(g_L + g)); pieces of at most half
 * that scale with a 4-point Gauss-Legendre rule (3 points below an eighth of it) have a relative
 * error below 2e-12. Once the
 * conductances' total remaining effect is below 1e-13 mV the free LIF closed form is used.
 * Threshold: a rigorous upper bound of V on [0, h] (comparison with a current-based membrane
 * whose excitatory drive uses the lowest reachable V) rules intervals out and gives safe_until;
 * where it cannot (V within reach of the threshold), V is checked at steps of 0.01 ms, a step
 * that ends below threshold is bisected wherever sb_cond_v_max cannot rule out a rise above the
 * threshold and back inside it (graze, as iaf_cond_exp), and a crossing is polished by GSL's
 * Brent solver to 1e-14 ms.
 * References: NEST models/iaf_cond_exp.{h,cpp}; Diehl & Cook 2015, Front. Comput. Neurosci.
 * 9:99, and their Brian code (github.com/peter-u-diehl/stdp-mnist, theta, theta_plus_e,
 * tc_theta). */
#include "neurons/neurons.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_roots.h>
#include <math.h>
#include <stddef.h>

typedef struct {
  double V_th, V_reset, t_ref, g_L, C_m, E_ex, E_in, E_L, tau_syn_ex, tau_syn_in, I_e, theta_plus, tau_theta,
      theta_offset;
} par;
#define SAFE_HMAX 1000.0   /* ms: longest quiet interval safe_until looks at */
#define SAFE_STEPS 40      /* halvings of the threshold bound's step */
/* Derived: a = g_L / C_m (1/ms); the factors of the bound's halving steps h_k = SAFE_HMAX 2^-k,
 * ea[k] = e^{-a h_k} and et[k] = exp_neg(h_k / tau_theta), computed once (they were an exp each
 * per input event). */
typedef struct { double a, ea[SAFE_STEPS], et[SAFE_STEPS]; } der;
typedef struct { double V_m, g_ex, g_in, I_dc, theta, t_ref_end; } st;

static const sb_param_info params[] = {
    {"V_th", "mV", offsetof(par, V_th), -55.0},       {"V_reset", "mV", offsetof(par, V_reset), -60.0},
    {"t_ref", "ms", offsetof(par, t_ref), 2.0},       {"g_L", "nS", offsetof(par, g_L), 16.6667},
    {"C_m", "pF", offsetof(par, C_m), 250.0},         {"E_ex", "mV", offsetof(par, E_ex), 0.0},
    {"E_in", "mV", offsetof(par, E_in), -85.0},       {"E_L", "mV", offsetof(par, E_L), -70.0},
    {"tau_syn_ex", "ms", offsetof(par, tau_syn_ex), 0.2},
    {"tau_syn_in", "ms", offsetof(par, tau_syn_in), 2.0},
    {"I_e", "pA", offsetof(par, I_e), 0.0},           {"theta_plus", "mV", offsetof(par, theta_plus), 0.05},
    {"tau_theta", "ms", offsetof(par, tau_theta), 1e7}, {"theta_offset", "mV", offsetof(par, theta_offset), 0.0},
    {NULL, NULL, 0, 0}};
static const sb_recordable recs[] = {{"V_m", "mV", offsetof(st, V_m)}, {"g_ex", "nS", offsetof(st, g_ex)},
                                     {"g_in", "nS", offsetof(st, g_in)}, {"I_dc", "pA", offsetof(st, I_dc)},
                                     {"theta", "mV", offsetof(st, theta)}, {NULL, NULL, 0}};

#define DT_CHECK 0.01   /* ms: threshold check step where the bound cannot rule a crossing out */
#define G_NEGLIGIBLE 1e-13  /* mV: conductance effect below which the free closed form is used */

static int validate(const void *pv) {
  const par *p = pv;
  if (!(p->V_reset < p->V_th))
    SB_ERROR(SB_EINVAL, "V_reset: must be < V_th = %g (got %g)", p->V_th, p->V_reset);
  if (!(p->theta_plus >= 0)) SB_ERROR(SB_EINVAL, "theta_plus: must be >= 0 mV (got %g)", p->theta_plus);
  return SB_OK;
}

/* e^{-x} for x >= 0; a 4-term series below 1e-4 (error < x^4/24 < 5e-18, relative) saves the exp
 * of theta's decay, where x = h / tau_theta is tiny. */
static inline double exp_neg(double x) {
  if (x < 1e-4) return 1.0 - x * (1.0 - x * (0.5 - x * (1.0 / 6.0)));
  return exp(-x);
}

static void derive(const void *pv, void *dv) {
  const par *p = pv;
  der *d = dv;
  d->a = p->g_L / p->C_m;
  double h = SAFE_HMAX;
  for (int k = 0; k < SAFE_STEPS; k++, h *= 0.5) {   /* the same expressions as upper_bound and thr_at */
    d->ea[k] = exp(-h * d->a);
    d->et[k] = exp_neg(h / p->tau_theta);
  }
}

static void init(const void *pv, const void *dv, void *sv) {
  (void)dv;
  const par *p = pv;
  st *s = sv;
  s->V_m = p->E_L;
  s->g_ex = s->g_in = s->I_dc = s->theta = 0.0;
  s->t_ref_end = -INFINITY;
}

/* ---- free propagation ---- */

static const double GL_X[4] = {-0.86113631159405257522, -0.33998104358485626480, 0.33998104358485626480,
                               0.86113631159405257522};
static const double GL_W[4] = {0.34785484513745385737, 0.65214515486254614263, 0.65214515486254614263,
                               0.34785484513745385737};

/* Remaining effect bound of the conductances (mV): g tau |E - V| / C summed. */
static double g_effect(const par *p, const st *s) {
  double lo = s->V_m < p->E_in ? s->V_m : p->E_in, hi = s->V_m > p->E_ex ? s->V_m : p->E_ex;
  return (s->g_ex * p->tau_syn_ex * (hi - lo) + s->g_in * p->tau_syn_in * (hi - lo)) / p->C_m;
}

/* One piece of length h (short enough for the rule); V, g updated; theta untouched. With
 * `short_piece` (h <= scale/8) the 3-point rule suffices (relative error < 3e-13), else 4 points.
 * Nodes come in pairs h/2 (1 -+ xi): e^{-x/tau} = e^{-h/(2 tau)} e^{-+ h xi/(2 tau)}, one exp per pair. */
static void piece(const par *p, const der *d, st *s, double h, int short_piece) {
  static const double X3 = 0.77459666924148337704, W3[2] = {0.88888888888888888889, 0.55555555555555555556};
  double te = p->tau_syn_ex, ti = p->tau_syn_in, C = p->C_m;
  double Ge = s->g_ex * te / C, Gi = s->g_in * ti / C;   /* mV-free: Phi's conductance parts */
  double base = p->g_L * p->E_L + p->I_e + s->I_dc;
  double em1e = -expm1(-h / te), em1i = s->g_in != 0.0 ? -expm1(-h / ti) : 0.0;
  double Ph = d->a * h + Ge * em1e + Gi * em1i;
  int gi = s->g_in != 0.0;
  double Me = exp(-0.5 * h / te), Mi = gi ? exp(-0.5 * h / ti) : 0.0;
  double xs[4], ees[4], eis[4], ws[4];
  int n;
  if (short_piece) {
    double Be = exp(-0.5 * h * X3 / te), Bi = gi ? exp(-0.5 * h * X3 / ti) : 1.0;
    xs[0] = 0.5 * h; ees[0] = Me; eis[0] = Mi; ws[0] = W3[0];
    xs[1] = 0.5 * h * (1.0 - X3); ees[1] = Me / Be; eis[1] = Mi / Bi; ws[1] = W3[1];
    xs[2] = 0.5 * h * (1.0 + X3); ees[2] = Me * Be; eis[2] = Mi * Bi; ws[2] = W3[1];
    n = 3;
  } else {
    for (int m = 0; m < 2; m++) {
      double xi = GL_X[m + 2];
      double Be = exp(-0.5 * h * xi / te), Bi = gi ? exp(-0.5 * h * xi / ti) : 1.0;
      xs[2 * m] = 0.5 * h * (1.0 - xi); ees[2 * m] = Me / Be; eis[2 * m] = Mi / Bi; ws[2 * m] = GL_W[m + 2];
      xs[2 * m + 1] = 0.5 * h * (1.0 + xi); ees[2 * m + 1] = Me * Be; eis[2 * m + 1] = Mi * Bi; ws[2 * m + 1] = GL_W[m + 2];
    }
    n = 4;
  }
  double acc = 0.0;
  for (int j = 0; j < n; j++) {
    double ee = ees[j], ei = eis[j];
    double Px = d->a * xs[j] + Ge * (1.0 - ee) + Gi * (1.0 - ei);
    double c = (base + s->g_ex * ee * p->E_ex + s->g_in * ei * p->E_in) / C;
    acc += ws[j] * c * exp(Px - Ph);
  }
  s->V_m = s->V_m * exp(-Ph) + 0.5 * h * acc;
  s->g_ex *= 1.0 - em1e;
  s->g_in *= 1.0 - em1i;
}

/* Free (non-refractory) evolution of V and the conductances over h >= 0. */
static void evolve(const par *p, const der *d, st *s, double h) {
  while (h > 0) {
    if (g_effect(p, s) < G_NEGLIGIBLE) {   /* free LIF closed form; conductances decay exactly */
      double V_inf = p->E_L + (p->I_e + s->I_dc) / p->g_L;
      s->V_m = V_inf + (s->V_m - V_inf) * exp(-h * d->a);
      s->g_ex *= exp(-h / p->tau_syn_ex);
      s->g_in *= exp(-h / p->tau_syn_in);
      return;
    }
    double scale = p->C_m / (p->g_L + s->g_ex + s->g_in);
    if (s->g_ex != 0.0 && p->tau_syn_ex < scale) scale = p->tau_syn_ex;
    if (s->g_in != 0.0 && p->tau_syn_in < scale) scale = p->tau_syn_in;
    double hp = 0.5 * scale < h ? 0.5 * scale : h;
    piece(p, d, s, hp, hp <= 0.125 * scale);
    h -= hp;
  }
}

static int advance(const void *pv, const void *dv, void *sv, double t0, double t1, void *w) {
  (void)w;
  const par *p = pv;
  st *s = sv;
  if (sb_neuron_cond_check("iaf_cond_exp_theta", s->g_ex + s->g_in)) return SB_ENOCONV;
  if (t1 <= t0) return SB_OK;
  s->theta *= exp_neg((t1 - t0) / p->tau_theta);
  if (t0 < s->t_ref_end) {
    double tr = t1 < s->t_ref_end ? t1 : s->t_ref_end;
    s->g_ex *= exp(-(tr - t0) / p->tau_syn_ex);
    s->g_in *= exp(-(tr - t0) / p->tau_syn_in);
    s->V_m = p->V_reset;
    t0 = tr;
  }
  evolve(p, dv, s, t1 - t0);
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

/* ---- threshold ---- */

/* Threshold h ms after the state's time (theta decays towards 0). */
static double thr_at(const par *p, const st *s, double h) {
  return p->V_th - p->theta_offset + s->theta * exp_neg(h / p->tau_theta);
}

/* thr_at with theta's decay factor et = exp_neg(h / tau_theta) given. */
static inline double thr_with(const par *p, const st *s, double et) { return p->V_th - p->theta_offset + s->theta * et; }

/* Upper bound of V on [0, h] from free state s. With y = V - V_free_inf, inhibition only pulls V
 * down while V > E_in, and the excitatory drive g_ex (E_ex - V) is at most g_ex (E_ex - V_lo)
 * with V_lo the lowest reachable V; comparison with that current-based membrane gives
 *   V(t) <= V_inf + max(y0, y0 e^{-a h}) + g_ex (E_ex - V_lo)/C min(h, tau_ex). */
static double upper_bound_with(const par *p, const der *d, const st *s, double h, const double *ea);

static double upper_bound(const par *p, const der *d, const st *s, double h) { return upper_bound_with(p, d, s, h, NULL); }

/* upper_bound with e^{-a h} taken from *ea when ea is not NULL (the same value). */
static double upper_bound_with(const par *p, const der *d, const st *s, double h, const double *ea) {
  double V_inf = p->E_L + (p->I_e + s->I_dc) / p->g_L;
  double lo = s->V_m;
  if (V_inf < lo) lo = V_inf;
  if (p->E_in < lo) lo = p->E_in;
  if (p->E_ex < lo) lo = p->E_ex;
  double y0 = s->V_m - V_inf;
  double free = y0 >= 0 ? y0 : y0 * (ea ? *ea : exp(-h * d->a));
  double drive = p->E_ex - lo;
  double kick = s->g_ex * drive / p->C_m * (h < p->tau_syn_ex ? h : p->tau_syn_ex);
  if (s->g_in > 0 && lo < p->E_in) kick += s->g_in * (p->E_in - lo) / p->C_m * (h < p->tau_syn_in ? h : p->tau_syn_in);
  return V_inf + free + (kick > 0 ? kick : 0.0);
}

/* Largest h in (0, hmax] (halving from hmax) before which no crossing is possible, or 0. */
static double safe_h(const par *p, const der *d, const st *s, double hmax) {
  double h = hmax;
  if (hmax == SAFE_HMAX) {   /* the decay factors of these steps are precomputed (derive) */
    for (int k = 0; k < SAFE_STEPS && h >= 1e-3; k++, h *= 0.5)
      if (upper_bound_with(p, d, s, h, &d->ea[k]) < thr_with(p, s, d->et[k]) - 1e-12) return h;
    return 0.0;
  }
  for (int k = 0; k < SAFE_STEPS && h >= 1e-3; k++, h *= 0.5)
    if (upper_bound(p, d, s, h) < thr_at(p, s, h) - 1e-12) return h;
  return 0.0;
}

typedef struct { const par *p; const der *d; const st *s; } root_ctx;

static double root_f(double x, void *ctx) {
  const root_ctx *c = ctx;
  st s = *c->s;
  evolve(c->p, c->d, &s, x);
  return s.V_m - thr_at(c->p, c->s, x);
}

static int polish(const par *p, const der *d, const st *s, double h, double *x, gsl_root_fsolver *r) {
  root_ctx c = {p, d, s};
  gsl_function F = {root_f, &c};
  if (gsl_root_fsolver_set(r, &F, 0.0, h) != GSL_SUCCESS)
    SB_ERROR(SB_ENOCONV, "iaf_cond_exp_theta: threshold root not bracketed in [0, %g] ms", h);
  for (int it = 0; it < 100; it++) {
    gsl_root_fsolver_iterate(r);
    double lo = gsl_root_fsolver_x_lower(r), hi = gsl_root_fsolver_x_upper(r);
    if (gsl_root_test_interval(lo, hi, 1e-14, 0) == GSL_SUCCESS) {
      *x = hi;
      return SB_OK;
    }
  }
  SB_ERROR(SB_ENOCONV, "iaf_cond_exp_theta: threshold root did not converge in [0, %g] ms", h);
}

/* A rise above threshold and back inside [0, h] from free state sa (V(h) = Vb below threshold):
 * SB_OK with *x the first bisection point found at or above threshold, SB_NOSPIKE when
 * sb_cond_v_max (against the lower of the threshold's values at both ends: theta decays
 * monotonically) rules every part out, the parts are shorter than 1e-13 ms or `budget`
 * bisections are spent (the residual risk). As iaf_cond_exp's graze. */
static int graze(const par *p, const der *d, const st *sa, double h, double Vb, int *budget, double *x) {
  sb_cond_box box = sb_cond_veff_box(p->g_L, p->E_L, p->C_m, p->I_e + sa->I_dc, sa->g_ex * exp(-h / p->tau_syn_ex), sa->g_ex,
                                     p->E_ex, sa->g_in * exp(-h / p->tau_syn_in), sa->g_in, p->E_in);
  double top = sb_cond_v_max(&box, sa->V_m, Vb, h);
  double thr0 = thr_at(p, sa, 0.0), thr1 = thr_at(p, sa, h), lo = thr0 < thr1 ? thr0 : thr1;
  if (top < lo - 1e-12 * (1.0 + fabs(lo)) || h < 1e-13 || --*budget < 0) return SB_NOSPIKE;
  st sm = *sa;
  evolve(p, d, &sm, 0.5 * h);
  if (sm.V_m >= thr_at(p, sa, 0.5 * h)) {
    *x = 0.5 * h;
    return SB_OK;
  }
  sm.theta *= exp_neg(0.5 * h / p->tau_theta);
  int rc = graze(p, d, sa, 0.5 * h, sm.V_m, budget, x);
  if (rc != SB_NOSPIKE) return rc;
  if ((rc = graze(p, d, &sm, 0.5 * h, Vb, budget, x)) == SB_OK) *x += 0.5 * h;
  return rc;
}

static int next_crossing(const void *pv, const void *dv, const void *sv, double t, double t_limit,
                         double *t_spike, void *w) {
  const par *p = pv;
  const der *d = dv;
  st s = *(const st *)sv;
  if (sb_neuron_cond_check("iaf_cond_exp_theta", s.g_ex + s.g_in)) return SB_ENOCONV;
  if (t < s.t_ref_end) {
    if (s.t_ref_end >= t_limit) return SB_NOSPIKE;
    advance(p, d, &s, t, s.t_ref_end, NULL);
    t = s.t_ref_end;
  }
  for (long guard = 0; t < t_limit; guard++) {
    if (s.V_m >= thr_at(p, &s, 0.0)) {
      *t_spike = t;
      return SB_OK;
    }
    double rem = t_limit - t;
    if (upper_bound(p, d, &s, rem) < thr_at(p, &s, rem) - 1e-12) return SB_NOSPIKE;
    double h = safe_h(p, d, &s, rem);
    st sn = s;
    if (h > 0) {          /* no crossing possible in [t, t + h): jump */
      evolve(p, d, &sn, h);
      sn.theta *= exp_neg(h / p->tau_theta);
      s = sn;
      t += h;
      continue;
    }
    h = DT_CHECK < rem ? DT_CHECK : rem;
    evolve(p, d, &sn, h);
    double hb = h;   /* the bracket [0, hb] of a crossing */
    int budget = 400, found = sn.V_m >= thr_at(p, &s, h) ? SB_OK : graze(p, d, &s, h, sn.V_m, &budget, &hb);
    if (found == SB_OK) {
      double x = 0;
      int rc = polish(p, d, &s, hb, &x, w);
      if (rc) return rc;
      *t_spike = t + x;
      return SB_OK;
    }
    sn.theta *= exp_neg(h / p->tau_theta);
    s = sn;
    t += h;
    if (guard > 100000000) SB_ERROR(SB_ENOCONV, "iaf_cond_exp_theta: threshold search did not end at t = %g ms", t);
  }
  return SB_NOSPIKE;
}

static double safe_until(const void *pv, const void *dv, const void *sv, double t) {
  const par *p = pv;
  const st *s = sv;
  if (t < s->t_ref_end) return s->t_ref_end;
  if (s->V_m >= thr_at(p, s, 0.0)) return t;
  return t + safe_h(p, dv, s, SAFE_HMAX) * (1.0 - 1e-12);
}

static void reset(const void *pv, const void *dv, void *sv, double t_spike) {
  (void)dv;
  const par *p = pv;
  st *s = sv;
  s->V_m = p->V_reset;
  s->theta += p->theta_plus;
  s->t_ref_end = t_spike + p->t_ref;
}

static void *work_alloc(const void *p) {
  (void)p;
  gsl_root_fsolver *r = gsl_root_fsolver_alloc(gsl_root_fsolver_brent);
  if (!r) SB_SET_ERROR(SB_ENOMEM, "iaf_cond_exp_theta: out of memory for the root solver");
  return r;
}
static void work_free(void *w) {
  if (w) gsl_root_fsolver_free(w);
}

const sb_neuron_type sb_iaf_cond_exp_theta_type = {
    "iaf_cond_exp_theta", sizeof(par), sizeof(der), sizeof(st), params, recs, validate, derive, init,
    advance, receive, next_crossing, reset, work_alloc, work_free, safe_until, NULL, NULL, NULL, NULL, NULL};
const sb_neuron_type *const sb_neuron_iaf_cond_exp_theta = &sb_iaf_cond_exp_theta_type;
