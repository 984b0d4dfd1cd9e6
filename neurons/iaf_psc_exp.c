/* iaf_psc_exp: leaky integrate-and-fire neuron with exponentially decaying synaptic currents
 * (NEST name, parameters, units). Exact integration for any interval, including the singular
 * case tau_syn == tau_m; exact spike times by a bracketed root.
 *
 *   C_m dV/dt = -C_m/tau_m (V - E_L) + I_ex + I_in + I_e + I_dc
 *   dI_ex/dt = -I_ex/tau_syn_ex,  dI_in/dt = -I_in/tau_syn_in
 *   a spike of weight w (pA) adds w to I_ex (w >= 0) or I_in (w < 0), as NEST does.
 *   V >= V_th: spike, V = V_reset and clamped for t_ref while the currents keep decaying.
 *
 * Parameters  default  unit  meaning
 *   E_L        -70     mV    resting potential
 *   C_m        250     pF    membrane capacitance
 *   tau_m       10     ms    membrane time constant
 *   tau_syn_ex   2     ms    excitatory current time constant
 *   tau_syn_in   2     ms    inhibitory current time constant
 *   t_ref        2     ms    refractory period
 *   V_th       -55     mV    threshold
 *   V_reset    -70     mV    reset potential
 *   I_e          0     pA    constant input current
 * State: V_m (mV), I_syn_ex, I_syn_in, I_dc (pA), t_ref_end (ms).
 *
 * Propagator: V(h) - E_L = y_inf + (y0 - y_inf) e^{-h/tau_m} + I_ex P(h, tau_syn_ex) + ...,
 * P from sb_lif_psc_exp_p21 (exprel form, continuous through tau_syn == tau_m). Threshold:
 * a cheap upper bound of V on an interval rules most intervals out; otherwise the interval is
 * bisected until a sub-interval [a, b] with V(a) < V_th <= V(b) shorter than 1e-3 ms is found,
 * whose root GSL's Brent solver polishes to 1e-14 ms. The bound makes the first crossing the one
 * found even when V rises and falls inside an interval.
 * References: Rotter & Diesmann 1999; NEST models/iaf_psc_exp.{h,cpp}, libnestutil/iaf_propagator.cpp;
 * Hanuschkin et al. 2010 (exact spike times). */
#include "neurons/neurons.h"
#include "neurons/iaf_psc_exp_inline.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_roots.h>
#include <math.h>
#include <stddef.h>

typedef sb_psc_exp_par par;
typedef sb_psc_exp_der der;
typedef sb_psc_exp_st st;

static const sb_param_info params[] = {
    {"E_L", "mV", offsetof(par, E_L), -70.0},
    {"C_m", "pF", offsetof(par, C_m), 250.0},
    {"tau_m", "ms", offsetof(par, tau_m), 10.0},
    {"tau_syn_ex", "ms", offsetof(par, tau_syn_ex), 2.0},
    {"tau_syn_in", "ms", offsetof(par, tau_syn_in), 2.0},
    {"t_ref", "ms", offsetof(par, t_ref), 2.0},
    {"V_th", "mV", offsetof(par, V_th), -55.0},
    {"V_reset", "mV", offsetof(par, V_reset), -70.0},
    {"I_e", "pA", offsetof(par, I_e), 0.0},
    {NULL, NULL, 0, 0}};
static const sb_recordable recs[] = {{"V_m", "mV", offsetof(st, V_m)},
                                     {"I_syn_ex", "pA", offsetof(st, I_syn_ex)},
                                     {"I_syn_in", "pA", offsetof(st, I_syn_in)},
                                     {"I_dc", "pA", offsetof(st, I_dc)},
                                     {NULL, NULL, 0}};

static int validate(const void *pv) {
  const par *p = pv;
  if (!(p->V_reset < p->V_th))
    SB_ERROR(SB_EINVAL, "V_reset: must be < V_th = %g (got %g)", p->V_th, p->V_reset);
  return SB_OK;
}

/* Peak of P(t) = sb_lif_psc_exp_p21: at t* = tau_m ln(r)/(r - 1), r = tau_m/tau_syn (tau_m at r = 1). */
static double p_peak(double tau_m, double tau_syn, double C_m) {
  double x = tau_m / tau_syn - 1.0;
  double ts = x == 0.0 ? tau_m : tau_m * log1p(x) / x;
  return sb_lif_psc_exp_p21(ts, tau_m, tau_syn, C_m) * (1.0 + 1e-12);
}

static void derive(const void *pv, void *dv) {
  const par *p = pv;
  der *d = dv;
  d->R = p->tau_m / p->C_m;
  d->Pmax_ex = p_peak(p->tau_m, p->tau_syn_ex, p->C_m);
  d->Pmax_in = p_peak(p->tau_m, p->tau_syn_in, p->C_m);
  double ts[2] = {p->tau_syn_ex, p->tau_syn_in};
  for (int r = 0; r < 2; r++) {
    d->sing[r] = ts[r] == p->tau_m;
    d->kap[r] = d->sing[r] ? 0.0 : p->tau_m * ts[r] / (p->C_m * (p->tau_m - ts[r]));
  }
}

static void init(const void *pv, const void *dv, void *sv) {
  (void)dv;
  const par *p = pv;
  st *s = sv;
  s->V_m = p->E_L;
  s->I_syn_ex = s->I_syn_in = s->I_dc = 0.0;
  s->t_ref_end = -INFINITY;
  s->fg[0] = s->fg[1] = s->fg[2] = 1.0;
  s->f_t = s->f_o = NAN;
}

/* Free (non-refractory) evolution over h >= 0. With em = e^{-h/tau_m} and x = h (1/tau_m - 1/tau_s):
 * e^{-h/tau_s} = em (1 + expm1(x)) and P(h) = (h/C) em expm1(x)/x, so each receptor costs one
 * expm1 (exprel form: exact through tau_s == tau_m, where x = 0 and P = (h/C) em). */
static inline void syn_step(double h, double em, double tau_m, double tau_s, double C, double *I, double *dy) {
  double x = h * (1.0 / tau_m - 1.0 / tau_s);
  if (x > 64.0) {   /* tau_m far below tau_s and h: expm1(x) would overflow (x > 709); no cancellation here */
    double es = exp(-h / tau_s);
    *dy += *I * (h / C) * ((es - em) / x);
    *I *= es;
    return;
  }
  double e1 = x == 0.0 ? 0.0 : expm1(x);
  double rel = x == 0.0 ? 1.0 : fabs(x) < 1e-5 ? 1.0 + x / 2.0 + x * x / 6.0 + x * x * x / 24.0 : e1 / x;
  *dy += *I * (h / C) * em * rel;
  *I *= em * (1.0 + e1);
}

static void evolve(const par *p, const der *d, st *s, double h) {
  if (h <= 0) return;
  double y_inf = d->R * (p->I_e + s->I_dc);
  double em = exp(-h / p->tau_m);
  double ym = y_inf + (s->V_m - p->E_L - y_inf) * em;
  if (s->I_syn_ex != 0.0) syn_step(h, em, p->tau_m, p->tau_syn_ex, p->C_m, &s->I_syn_ex, &ym);
  if (s->I_syn_in != 0.0) syn_step(h, em, p->tau_m, p->tau_syn_in, p->C_m, &s->I_syn_in, &ym);
  s->V_m = p->E_L + ym;
}

static int advance(const void *pv, const void *dv, void *sv, double t0, double t1, void *w) {
  (void)w;
  const par *p = pv;
  st *s = sv;
  if (t0 < s->t_ref_end) {
    double tr = t1 < s->t_ref_end ? t1 : s->t_ref_end;
    s->I_syn_ex *= exp(-(tr - t0) / p->tau_syn_ex);
    s->I_syn_in *= exp(-(tr - t0) / p->tau_syn_in);
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
  else if (weight >= 0) s->I_syn_ex += weight;
  else s->I_syn_in += weight;
}

/* Upper bound of V on [0, h] from state s: the free part is monotone, the response to a
 * current I is I P(t) with 0 <= P(t) <= t / C_m. */
/* upper_bound with eh = e^{-h/tau_m} given. */
static double upper_bound_e(const par *p, const der *d, const st *s, double h, double eh) {
  double y_inf = d->R * (p->I_e + s->I_dc);
  double y = s->V_m - p->E_L;
  double yh = y_inf + (y - y_inf) * eh;
  double ub = y > yh ? y : yh;
  double hc = h / p->C_m;
  if (s->I_syn_ex > 0) ub += s->I_syn_ex * (hc < d->Pmax_ex ? hc : d->Pmax_ex);
  if (s->I_syn_in > 0) ub += s->I_syn_in * (hc < d->Pmax_in ? hc : d->Pmax_in);
  return p->E_L + ub;
}

static double upper_bound(const par *p, const der *d, const st *s, double h) {
  return upper_bound_e(p, d, s, h, exp(-h / p->tau_m));
}

typedef struct { const par *p; const der *d; const st *s; } root_ctx;

static double root_f(double x, void *ctx) {
  const root_ctx *c = ctx;
  st s = *c->s;
  evolve(c->p, c->d, &s, x);
  return s.V_m - c->p->V_th;
}

/* Root of V - V_th in [0, h] from state s, V(0) < V_th <= V(h). */
static int polish(const par *p, const der *d, const st *s, double h, double *x, gsl_root_fsolver *r) {
  root_ctx c = {p, d, s};
  gsl_function F = {root_f, &c};
  if (gsl_root_fsolver_set(r, &F, 0.0, h) != GSL_SUCCESS)
    SB_ERROR(SB_ENOCONV, "iaf_psc_exp: threshold root not bracketed in [0, %g] ms (V_m = %g mV, I_syn_ex = %g pA, "
             "I_syn_in = %g pA: weights or inputs too large for the propagator's precision?)", h, s->V_m, s->I_syn_ex,
             s->I_syn_in);
  for (int it = 0; it < 100; it++) {
    gsl_root_fsolver_iterate(r);
    double lo = gsl_root_fsolver_x_lower(r), hi = gsl_root_fsolver_x_upper(r);
    if (gsl_root_test_interval(lo, hi, 1e-15, 0) == GSL_SUCCESS) {
      *x = hi;   /* V(hi) >= V_th: the spike is never placed before the crossing */
      return SB_OK;
    }
  }
  SB_ERROR(SB_ENOCONV, "iaf_psc_exp: threshold root did not converge in [0, %g] ms (V_m = %g mV, I_syn_ex = %g pA, "
           "I_syn_in = %g pA)", h, s->V_m, s->I_syn_ex, s->I_syn_in);
}

/* dV/dt of the free (non-refractory) membrane at state s, mV/ms. */
static double dV_dt(const par *p, const der *d, const st *s) {
  return (p->E_L + d->R * (p->I_e + s->I_dc) - s->V_m) / p->tau_m + (s->I_syn_ex + s->I_syn_in) / p->C_m;
}

/* V's maximum on [0, h] when it lies inside (dV/dt > 0 at 0, < 0 at h): bisection on the sign of
 * dV/dt (one maximum: within the smallest interval of crossing_rec V is a PSP's peak), to the
 * last bits of the position. Returns the maximum's V and its position in *xm; -INFINITY when
 * the maximum is at an end (both ends were tested already). */
static double interior_max(const par *p, const der *d, const st *s, const st *sh, double h, double *xm) {
  if (!(dV_dt(p, d, s) > 0 && dV_dt(p, d, sh) < 0)) return -INFINITY;
  double lo = 0.0, hi = h;
  for (int it = 0; it < 80 && hi - lo > 1e-16 * (1.0 + h); it++) {
    double mid = 0.5 * (lo + hi);
    st sm = *s;
    evolve(p, d, &sm, mid);
    if (dV_dt(p, d, &sm) > 0) lo = mid;
    else hi = mid;
  }
  st a = *s, b = *s;
  evolve(p, d, &a, lo);
  evolve(p, d, &b, hi);
  *xm = a.V_m >= b.V_m ? lo : hi;
  return a.V_m >= b.V_m ? a.V_m : b.V_m;
}

static int crossing_rec(const par *p, const der *d, const st *s, double h, double *x, int depth,
                        gsl_root_fsolver *r) {
  if (upper_bound(p, d, s, h) < p->V_th) return SB_NOSPIKE;
  st sb = *s;
  evolve(p, d, &sb, h);
  /* the smallest interval: 1 us, or less for time constants below 1 ms (a PSP of tau = 1e-4 ms
   * peaks and falls inside 1 us: its crossing was missed) */
  double tau_min = fmin(p->tau_m, fmin(p->tau_syn_ex, p->tau_syn_in));
  if (h < 1e-3 * fmin(1.0, tau_min) || depth > 60) {
    if (sb.V_m >= p->V_th) return polish(p, d, s, h, x, r);
    /* both ends below the threshold and the bound above it: a PSP may still peak above it inside
     * (V varies by ~V'' h^2 / 8 within the interval: overshoots of ~1e-8 mV were missed) */
    double xm = 0.0;
    if (interior_max(p, d, s, &sb, h, &xm) >= p->V_th && xm > 0.0) return polish(p, d, s, xm, x, r);
    return SB_NOSPIKE;   /* the bound touches the threshold but V does not reach it */
  }
  double hm = 0.5 * h;
  st sm = *s;
  evolve(p, d, &sm, hm);
  if (sm.V_m >= p->V_th) return crossing_rec(p, d, s, hm, x, depth + 1, r);
  int rc = crossing_rec(p, d, s, hm, x, depth + 1, r);
  if (rc != SB_NOSPIKE) return rc;
  rc = crossing_rec(p, d, &sm, h - hm, x, depth + 1, r);
  if (rc == SB_OK) *x += hm;
  return rc;
}

/* The first crossing in [0, h] when the free trajectory is monotone there, without the bisection.
 * Non-singular time constants: u(x) = V - E_L - y_inf = A e^{-x/tau_m} + B e^{-x/tau_ex} + C e^{-x/tau_in}
 * with A = u0 + kap_ex I_ex + kap_in I_in, B = -kap_ex I_ex, C = -kap_in I_in (the propagator of
 * evolve, written as a sum of exponentials). Each term of u'(x) = sum -c_k r_k e^{-r_k x} is monotone
 * in x, so sum_k min(-c_k r_k, -c_k r_k e^{-r_k h}) > 0 proves u increasing on [0, h] (and the max
 * form < 0 decreasing); over a short interval (a window: e^{-r h} close to 1) this fails only near an
 * extremum of u. Monotone: a crossing exists iff V(h) >= V_th, and bracketed Newton steps (bisection
 * when a step leaves the bracket) find it to 1e-15 ms, returning a time where V >= V_th as `polish`
 * does. Everything else (an extremum possible inside, the singular and near-singular cases where
 * the terms cancel) returns CM_FALLBACK for crossing_rec. */
enum { CM_FALLBACK = -100 };   /* crossing_monotone: use crossing_rec */
/* u(x) = sum_k c_k e^{-r_k x}, and u'(x) into *du when du is not NULL. */
static inline double exp_sum(const double c[3], const double r[3], double x, double *du) {
  double e0 = exp(-x * r[0]), e1 = exp(-x * r[1]), e2 = exp(-x * r[2]);
  if (du) *du = -(c[0] * r[0] * e0 + c[1] * r[1] * e1 + c[2] * r[2] * e2);
  return c[0] * e0 + c[1] * e1 + c[2] * e2;
}

/* end, when not NULL, receives on SB_NOSPIKE the state at h: {u(h), e^{-h/tau_m}, e^{-h/tau_syn_ex},
 * e^{-h/tau_syn_in}}. */
static int crossing_monotone(const par *p, const der *d, const st *s, double h, double *x_out, double end[4]) {
  if (d->sing[0] || d->sing[1] || fabs(p->tau_syn_ex - p->tau_m) < 0.1 * p->tau_m || fabs(p->tau_syn_in - p->tau_m) < 0.1 * p->tau_m)
    return CM_FALLBACK;
  double y_inf = d->R * (p->I_e + s->I_dc), theta = p->V_th - p->E_L - y_inf;   /* u must reach theta */
  double r[3] = {1.0 / p->tau_m, 1.0 / p->tau_syn_ex, 1.0 / p->tau_syn_in};
  double c[3] = {s->V_m - p->E_L - y_inf + d->kap[0] * s->I_syn_ex + d->kap[1] * s->I_syn_in, -d->kap[0] * s->I_syn_ex,
                 -d->kap[1] * s->I_syn_in};
  double eh[3] = {exp(-h * r[0]), exp(-h * r[1]), exp(-h * r[2])}, dmin = 0.0, dmax = 0.0;
  for (int k = 0; k < 3; k++) {
    double a0 = -c[k] * r[k], a1 = a0 * eh[k];
    dmin += a0 < a1 ? a0 : a1;
    dmax += a0 > a1 ? a0 : a1;
  }
  if (!(dmax < 0) && !(dmin > 0)) return CM_FALLBACK;
  double u0 = c[0] + c[1] + c[2], uh = c[0] * eh[0] + c[1] * eh[1] + c[2] * eh[2];
  /* decreasing from u(0) < theta (next_crossing checked V < V_th), or increasing and below
   * threshold at the end */
  if (dmax < 0 || !(uh >= theta)) {
    if (end) end[0] = uh, end[1] = eh[0], end[2] = eh[1], end[3] = eh[2];
    return SB_NOSPIKE;
  }
  if (!(u0 < theta)) {
    *x_out = 0.0;
    return SB_OK;
  }
  double lo = 0.0, hi = h, x = h * (theta - u0) / (uh - u0);   /* regula falsi start */
  for (int it = 0; it < 100 && hi - lo > 1e-15; it++) {
    if (!(x > lo && x < hi)) x = 0.5 * (lo + hi);
    double dux, ux = exp_sum(c, r, x, &dux);
    if (ux >= theta) hi = x;
    else lo = x;
    double nx = dux != 0.0 ? x - (ux - theta) / dux : 0.5 * (lo + hi);
    if (fabs(nx - x) < 2e-16 * (1.0 + x)) {   /* converged: bracket the root tightly */
      double a = x - 1e-15 > lo ? x - 1e-15 : lo, b = x + 1e-15 < hi ? x + 1e-15 : hi;
      if (exp_sum(c, r, a, NULL) >= theta) hi = a;
      else lo = a;
      if (exp_sum(c, r, b, NULL) >= theta) hi = b < hi ? b : hi;
      else lo = b;
      if (hi - lo <= 1e-15) break;
      nx = 0.5 * (lo + hi);
    }
    x = nx;
  }
  if (!(hi - lo <= 1e-15)) return CM_FALLBACK;
  *x_out = hi;   /* V(hi) >= V_th: the spike is never placed before the crossing */
  return SB_OK;
}

/* The first crossing in [0, h] from a non-refractory state below threshold with a current: the
 * monotone test, else the bisection (end: see crossing_monotone). */
static int crossing_search(const par *p, const der *d, const st *s, double h, double *x, double end[4], void *w) {
  int rc = crossing_monotone(p, d, s, h, x, end);
  return rc == CM_FALLBACK ? crossing_rec(p, d, s, h, x, 0, w) : rc;
}

static int next_crossing(const void *pv, const void *dv, const void *sv, double t, double t_limit,
                         double *t_spike, void *w) {
  const par *p = pv;
  const der *d = dv;
  st s = *(const st *)sv;
  if (t < s.t_ref_end) {
    if (s.t_ref_end >= t_limit) return SB_NOSPIKE;
    advance(p, d, &s, t, s.t_ref_end, NULL);
    t = s.t_ref_end;
  }
  if (t >= t_limit) return SB_NOSPIKE;
  if (s.V_m >= p->V_th) {
    *t_spike = t;
    return SB_OK;
  }
  double h = t_limit - t;
  if (s.I_syn_ex == 0.0 && s.I_syn_in == 0.0) {
    double x = sb_lif_time_to_threshold(s.V_m, p->E_L + d->R * (p->I_e + s.I_dc), p->V_th, p->tau_m);
    if (x < h) {
      *t_spike = t + x;
      return SB_OK;
    }
    return SB_NOSPIKE;
  }
  double x = 0;
  int rc = crossing_search(p, d, &s, h, &x, NULL, w);
  if (rc == SB_OK) *t_spike = t + x;
  return rc;
}

/* next_crossing, then advance to t_limit when there is none (sb_neuron_type.cross_or_advance):
 * when the monotone test decides there is no crossing, the state at t_limit comes from the
 * exponentials it computed (u(h) and the currents' decay factors) instead of evolve's exp and two
 * expm1s (CUBA: a neuron visited near threshold). */
static int cross_or_advance(const void *pv, const void *dv, void *sv, double t, double t_limit, double *t_spike, void *w) {
  const par *p = pv;
  const der *d = dv;
  st *s = sv;
  int rc;
  if (!(t < s->t_ref_end) && t < t_limit && s->V_m < p->V_th && !(s->I_syn_ex == 0.0 && s->I_syn_in == 0.0)) {
    /* next_crossing's last case, keeping crossing_monotone's end state */
    double x = 0, end[4] = {NAN, NAN, NAN, NAN}, h = t_limit - t;
    rc = crossing_search(p, d, s, h, &x, end, w);
    if (rc == SB_NOSPIKE && !isnan(end[0])) {   /* decided by the monotone test: its end state */
      s->V_m = p->E_L + d->R * (p->I_e + s->I_dc) + end[0];
      s->I_syn_ex *= end[2];
      s->I_syn_in *= end[3];
      if (s->f_t == t) {   /* the frame factors of t_limit from those of t: no exp at the next input */
        s->fg[0] /= end[1], s->fg[1] /= end[2], s->fg[2] /= end[3];
        s->f_t = t_limit;
      }
      return SB_NOSPIKE;
    }
    if (rc == SB_OK) *t_spike = t + x;
  } else
    rc = next_crossing(pv, dv, sv, t, t_limit, t_spike, w);
  if (rc == SB_NOSPIKE && t_limit > t) {
    int ra = advance(pv, dv, sv, t, t_limit, w);
    if (ra) return ra;
  }
  return rc;
}

/* Window frame (rates 1/tau_m, 1/tau_syn_ex, 1/tau_syn_in; g_j = e^{(t - t_f) rate_j}). With
 * u = V - E_L - y_inf and A_r = I_r g_r (constant between inputs), the free solution is
 *   u = (X + sum_{singular r} (t - t_f) A_r / C_m) / g_m - sum_{other r} kap_r A_r / g_r,
 * X constant between inputs (kap_r I_r is the particular solution of the current r; at
 * tau_r == tau_m it is (t - t_f) I_r / C_m e^{..}, the propagator's singular case). An input w
 * into receptor r at t_k: A_r += w g_r(t_k), X += c_r w g_m(t_k) with c_r = kap_r, or
 * -(t_k - t_f)/C_m when singular, so u stays continuous. Near-singular time constants
 * (0 < |tau_s - tau_m| < 0.1 tau_m, where kap is large and u cancels: with 1e-3 as the limit,
 * spikes were up to 1e-9 ms off at 0.11% and drifted by 1e-5 ms within 1 s at 5%, fresh-user
 * trial 8) use the generic path, as crossing_monotone does. */
static int frame_rates(const void *pv, double rate[3]) {
  const par *p = pv;
  double ts[2] = {p->tau_syn_ex, p->tau_syn_in};
  for (int r = 0; r < 2; r++)
    if (ts[r] != p->tau_m && fabs(ts[r] - p->tau_m) < 0.1 * p->tau_m) return 0;
  rate[0] = 1.0 / p->tau_m;
  rate[1] = 1.0 / p->tau_syn_ex;
  rate[2] = 1.0 / p->tau_syn_in;
  return 3;
}

/* After an input at t (state V, currents I_ex, I_in, free fixed point V_inf), no crossing before
 * t + dt: the test of sb_psc_exp_safe_until (V + the currents' largest contribution against the free
 * membrane's time to V_th - bonus, tau_m ln(1 + r) >= tau_m 2r/(2 + r)) without its divisions. */
static inline int quiet_for(const par *p, const der *d, double V, double I_ex, double I_in, double V_inf, double dt) {
  double bonus = (I_ex > 0 ? I_ex * d->Pmax_ex : 0.0) + (I_in > 0 ? I_in * d->Pmax_in : 0.0);
  double Vt = p->V_th - bonus, a = Vt - V, b = V_inf - Vt;
  if (!(a > 0)) return 0;
  if (!(b > 0)) return 1;
  /* dt <= tau_m 2r/(2 + r) (1 - 1e-12), r = a/b */
  return 2.0 * dt * b <= a * (2.0 * p->tau_m * (1.0 - 1e-12) - dt);
}



static uint32_t run_frame(const void *pv, const void *dv, void *sv, double *tp, double t_f, const sb_input *in, uint32_t n,
                          double *quiet) {
  const par *p = pv;
  const der *d = dv;
  st *s = sv;
  double t = *tp;
  if (n == 0 || t < s->t_ref_end || !(s->V_m < p->V_th) || !(in[0].t <= *quiet)) return 0;
  double y_inf = d->R * (p->I_e + s->I_dc), V_inf = p->E_L + y_inf, iC = 1.0 / p->C_m;
  double G[3];
  sb_psc_exp_frame_factors(p, s, t, t_f, NULL, G);
  double u = s->V_m - V_inf, Ie = s->I_syn_ex, Ii = s->I_syn_in;
  /* X = (u + sum kap_r I_r) g_m - sum_singular (t - t_f) A_r / C_m */
  double A0 = Ie * G[1], A1 = Ii * G[2];
  double X = (u + d->kap[0] * Ie + d->kap[1] * Ii) * G[0];
  if (d->sing[0]) X -= (t - t_f) * A0 * iC;
  if (d->sing[1]) X -= (t - t_f) * A1 * iC;
  uint32_t i = 0;
  for (;;) {
    const sb_input *x = &in[i];
    double w = x->w, dt = x->t - t_f;
    if (w >= 0) {
      A0 += w * x->g[1];
      X += (d->sing[0] ? -dt * iC : d->kap[0]) * w * x->g[0];
    } else {
      A1 += w * x->g[2];
      X += (d->sing[1] ? -dt * iC : d->kap[1]) * w * x->g[0];
    }
    /* the real state after input i */
    Ie = A0 / x->g[1];
    Ii = A1 / x->g[2];
    double Xs = X;
    if (d->sing[0]) Xs += dt * A0 * iC;
    if (d->sing[1]) Xs += dt * A1 * iC;
    u = Xs / x->g[0] - d->kap[0] * Ie - d->kap[1] * Ii;
    i++;
    if (i == n || !quiet_for(p, d, V_inf + u, Ie, Ii, V_inf, in[i].t - x->t)) break;
  }
  const sb_input *last = &in[i - 1];
  sb_psc_exp_store_at_input(s, V_inf + u, Ie, Ii, last, t_f, tp);
  *quiet = sb_psc_exp_safe_until(p, d, s, last->t);
  return i;
}

/* One input at delivery (sb_neuron_type.take_input): sb_psc_exp_take_input, and run_frame for what
 * it declines. */
static int take_input(const void *pv, const void *dv, void *sv, double *tp, double t_f, const sb_input *in, const double ig[3],
                      double *quiet) {
  if (sb_psc_exp_take_input(pv, dv, sv, tp, t_f, NULL, in, ig, quiet)) return 1;
  return run_frame(pv, dv, sv, tp, t_f, in, 1, quiet) == 1;
}

static void reset(const void *pv, const void *dv, void *sv, double t_spike) {
  (void)dv;
  const par *p = pv;
  st *s = sv;
  s->V_m = p->V_reset;
  s->t_ref_end = t_spike + p->t_ref;
}

static void *work_alloc(const void *p) {
  (void)p;
  gsl_root_fsolver *r = gsl_root_fsolver_alloc(gsl_root_fsolver_brent);
  if (!r) SB_SET_ERROR(SB_ENOMEM, "iaf_psc_exp: out of memory for the root solver");
  return r;
}
static void work_free(void *w) {
  if (w) gsl_root_fsolver_free(w);
}

const sb_neuron_type sb_iaf_psc_exp_type = {
    "iaf_psc_exp", sizeof(par), sizeof(der), sizeof(st), params, recs, validate, derive, init,
    advance, receive, next_crossing, reset, work_alloc, work_free, sb_psc_exp_safe_until, frame_rates, run_frame, NULL, take_input,
    cross_or_advance};
const sb_neuron_type *const sb_neuron_iaf_psc_exp = &sb_iaf_psc_exp_type;
