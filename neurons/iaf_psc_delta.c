/* iaf_psc_delta: leaky integrate-and-fire neuron with delta-shaped synaptic input (NEST name,
 * parameters and units). Exact integration in closed form, exact spike times.
 *
 *   tau_m dV/dt = -(V - E_L) + tau_m/C_m (I_e + I_dc);  an input spike of weight w (mV) makes V
 *   jump by w. V >= V_th: spike, V = V_reset, clamped for t_ref; spikes arriving during the
 *   refractory period are discarded (NEST iaf_psc_delta, refractory_input = false).
 *
 * Parameters  default  unit  meaning
 *   E_L        -70     mV    resting potential
 *   C_m        250     pF    membrane capacitance
 *   tau_m       10     ms    membrane time constant
 *   t_ref        2     ms    refractory period
 *   V_th       -55     mV    threshold
 *   V_reset    -70     mV    reset potential
 *   I_e          0     pA    constant input current
 * State: V_m (mV), I_dc (pA, dc_generator input), t_ref_end (ms).
 * References: Rotter & Diesmann 1999; NEST models/iaf_psc_delta.{h,cpp}. */
#include "neurons/neurons.h"

#include <math.h>
#include <stddef.h>

typedef struct { double E_L, C_m, tau_m, t_ref, V_th, V_reset, I_e; } par;
typedef struct { double R; /* tau_m / C_m, MOhm */ } der;
typedef struct { double V_m, I_dc, t_ref_end; } st;

static const sb_param_info params[] = {
    {"E_L", "mV", offsetof(par, E_L), -70.0},   {"C_m", "pF", offsetof(par, C_m), 250.0},
    {"tau_m", "ms", offsetof(par, tau_m), 10.0}, {"t_ref", "ms", offsetof(par, t_ref), 2.0},
    {"V_th", "mV", offsetof(par, V_th), -55.0},  {"V_reset", "mV", offsetof(par, V_reset), -70.0},
    {"I_e", "pA", offsetof(par, I_e), 0.0},      {NULL, NULL, 0, 0}};
static const sb_recordable recs[] = {{"V_m", "mV", offsetof(st, V_m)}, {"I_dc", "pA", offsetof(st, I_dc)},
                                     {NULL, NULL, 0}};

static int validate(const void *pv) {
  const par *p = pv;
  if (!(p->V_reset < p->V_th))
    SB_ERROR(SB_EINVAL, "V_reset: must be < V_th = %g (got %g)", p->V_th, p->V_reset);
  return SB_OK;
}

static void derive(const void *pv, void *dv) {
  const par *p = pv;
  der *d = dv;
  d->R = p->tau_m / p->C_m;
}

static void init(const void *pv, const void *dv, void *sv) {
  (void)dv;
  const par *p = pv;
  st *s = sv;
  s->V_m = p->E_L;
  s->I_dc = 0.0;
  s->t_ref_end = -INFINITY;
}

static int advance(const void *pv, const void *dv, void *sv, double t0, double t1, void *w) {
  (void)w;
  const par *p = pv;
  const der *d = dv;
  st *s = sv;
  if (t0 < s->t_ref_end) {
    s->V_m = p->V_reset;
    t0 = s->t_ref_end;
  }
  if (t1 <= t0) return SB_OK;
  double V_inf = p->E_L + d->R * (p->I_e + s->I_dc);
  s->V_m = V_inf + (s->V_m - V_inf) * exp(-(t1 - t0) / p->tau_m);
  return SB_OK;
}

static void receive(const void *pv, const void *dv, void *sv, double t, int receptor, double weight) {
  (void)pv;
  (void)dv;
  st *s = sv;
  if (receptor == SB_RCPT_CURRENT) s->I_dc += weight;
  else if (!(t < s->t_ref_end)) s->V_m += weight;
}

static int next_crossing(const void *pv, const void *dv, const void *sv, double t, double t_limit,
                         double *t_spike, void *w) {
  (void)w;
  const par *p = pv;
  const der *d = dv;
  const st *s = sv;
  double V = s->V_m;
  if (t < s->t_ref_end) {
    t = s->t_ref_end;
    V = p->V_reset;
  }
  if (t >= t_limit) return SB_NOSPIKE;
  double V_inf = p->E_L + d->R * (p->I_e + s->I_dc);
  double h = sb_lif_time_to_threshold(V, V_inf, p->V_th, p->tau_m);
  if (t + h < t_limit) {
    *t_spike = t + h;
    return SB_OK;
  }
  return SB_NOSPIKE;
}

static double safe_until(const void *pv, const void *dv, const void *sv, double t) {
  const par *p = pv;
  const der *d = dv;
  const st *s = sv;
  /* fast path (every input calls this): below threshold and relaxing to below it, never */
  if (!(t < s->t_ref_end) && s->V_m < p->V_th && !(p->E_L + d->R * (p->I_e + s->I_dc) > p->V_th)) return INFINITY;
  double ts;
  if (next_crossing(pv, dv, sv, t, INFINITY, &ts, NULL) == SB_OK) return ts;
  return INFINITY;
}

/* Window frame: with u = V - V_inf, u(t) = e^{-(t - t_f)/tau_m} X, and an input of weight w at t_k
 * adds w g_k to X (g_k = e^{(t_k - t_f)/tau_m}, shared by all targets of a spike). V >= V_th at
 * t_k iff X >= (V_th - V_inf) g_k; with V_inf < V_th crossings happen only at inputs. */
static int frame_rates(const void *pv, double rate[3]) {
  rate[0] = 1.0 / ((const par *)pv)->tau_m;
  return 1;
}

static uint32_t run_frame(const void *pv, const void *dv, void *sv, double *tp, double t_f, const sb_input *in, uint32_t n,
                          double *quiet) {
  const par *p = pv;
  const der *d = dv;
  st *s = sv;
  double V_inf = p->E_L + d->R * (p->I_e + s->I_dc);
  if (!(V_inf < p->V_th) || n == 0) return 0;   /* crossings between inputs possible: generic path */
  double t = *tp, tr = s->t_ref_end, V = s->V_m;
  uint32_t i = 0;
  if (t < tr) {   /* refractory: inputs before its end are discarded, V is clamped at V_reset */
    while (i < n && in[i].t < tr) i++;
    V = p->V_reset;
    if (i == n) {
      s->V_m = V;
      *tp = in[n - 1].t;
      *quiet = tr;
      return n;
    }
    t = tr;
  }
  if (!(V < p->V_th)) return 0;
  /* eps: a band around the threshold wider than the rounding of the frame sums; a membrane that
   * lands inside it (a tie such as 10 simultaneous 2 mV inputs from 0 mV to V_th = 20 mV) is left
   * to the generic step, so that the fast and the generic path decide it alike */
  const uint32_t i0 = i;
  double X = (V - V_inf) * exp((t - t_f) / p->tau_m), thr = p->V_th - V_inf;
  const double X0 = X, eps = 1e-12 * (1.0 + fabs(p->V_th) + fabs(V_inf)), lo = thr - eps;
  for (; i < n; i++) {
    double g = in[i].g[0];
    X += in[i].w * g;
    if (X >= lo * g && (i + 1 == n || in[i + 1].t != in[i].t)) {   /* simultaneous inputs first */
      double u = X / g;
      if (u >= thr + eps) {   /* at threshold after input i: the engine emits the spike */
        s->V_m = V_inf + u;
        *tp = in[i].t;
        *quiet = in[i].t;
        return i + 1;
      }
      if (u > lo) {   /* within eps of V_th: the inputs at this time through the generic step */
        uint32_t j0 = i;   /* the first of them */
        while (j0 > i0 && in[j0 - 1].t == in[i].t) j0--;
        if (j0 > i0) {   /* the state before them: X summed again to there, in the same order */
          double Xg = X0;
          for (uint32_t k = i0; k < j0; k++) Xg += in[k].w * in[k].g[0];
          s->V_m = V_inf + Xg / in[j0 - 1].g[0];
          *tp = in[j0 - 1].t;
          *quiet = INFINITY;
        } else if (i0 > 0) {   /* after inputs discarded in the refractory period */
          s->V_m = p->V_reset;
          *tp = in[i0 - 1].t;
          *quiet = tr;
        }
        return j0;
      }
    }
  }
  s->V_m = V_inf + X / in[n - 1].g[0];
  *tp = in[n - 1].t;
  *quiet = INFINITY;
  return n;
}

/* A window's inputs at once, when no crossing is possible: with u = V - V_inf and V_inf < V_th,
 * u(t) = u(t0) e^{-(t - t0)/tau_m} + (the responses of the inputs received by t) <= max(u(t0), 0)
 * + wpos (wpos bounds those responses: sb_neuron_type.frame_sum), so max(V, V_inf) + wpos < V_th
 * excludes a crossing in the window (with a margin far above the rounding of either order). The
 * end state is the frame sum at the last input:
 * X = (V - V_inf) e^{(t - t_f)/tau_m} + sum w g, V = V_inf + X / g_last, as run_frame computes it
 * input by input. A refractory neuron whose inputs all come before the end of its refractory
 * period discards them (NEST), as run_frame does; otherwise it takes the ordered path. */
static int frame_sum(const void *pv, const void *dv, void *sv, double *tp, double t_f, const sb_input *last,
                     const double sum_wg[3], double wpos, double g_t, double *quiet) {
  const par *p = pv;
  const der *d = dv;
  st *s = sv;
  double t = *tp, V_inf = p->E_L + d->R * (p->I_e + s->I_dc);
  /* V_inf >= V_th: the membrane crosses without input (also right after a refractory period that
   * ends in the window, which the engine would then only see in a later window): ordered path */
  if (!(V_inf < p->V_th)) return 0;
  if (t < s->t_ref_end) {   /* refractory: inputs before its end are discarded (run_frame's rule) */
    if (!(last->t < s->t_ref_end)) return 0;
    s->V_m = p->V_reset;
    *tp = last->t;
    *quiet = s->t_ref_end;
    return 1;
  }
  double top = (s->V_m > V_inf ? s->V_m : V_inf) + wpos;
  if (!(top < p->V_th - 1e-9 * (1.0 + fabs(p->V_th) + fabs(V_inf)))) return 0;
  double X = (s->V_m - V_inf) * (g_t > 0 ? g_t : exp((t - t_f) / p->tau_m)) + sum_wg[0];
  s->V_m = V_inf + X / last->g[0];
  *tp = last->t;
  *quiet = INFINITY;
  return 1;
}

static void reset(const void *pv, const void *dv, void *sv, double t_spike) {
  (void)dv;
  const par *p = pv;
  st *s = sv;
  s->V_m = p->V_reset;
  s->t_ref_end = t_spike + p->t_ref;
}

const sb_neuron_type sb_iaf_psc_delta_type = {
    "iaf_psc_delta", sizeof(par), sizeof(der), sizeof(st), params, recs, validate, derive, init,
    advance, receive, next_crossing, reset, NULL, NULL, safe_until, frame_rates, run_frame, frame_sum, NULL, NULL};
const sb_neuron_type *const sb_neuron_iaf_psc_delta = &sb_iaf_psc_delta_type;
