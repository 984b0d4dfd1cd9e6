/* if_subtract: non-leaky integrate-and-fire neuron with reset by subtraction, the unit that
 * replaces a ReLU in rate-based ANN->SNN conversion (Diehl et al. 2015; Rueckauer et al. 2017).
 *
 *   dV/dt = (I_e + I_dc) / C_m;  an input spike of weight w makes V jump by w (mV, unitless
 *   in conversion). V >= V_th: spike; then V -= (V_th - V_reset) (reset_mode 0, "subtract") or
 *   V = V_reset (reset_mode 1, "zero"); V is held for t_ref (0 allowed). With reset by
 *   subtraction a neuron whose V is still >= V_th after the reset spikes again at the same time,
 *   so no charge is lost. Spikes during a refractory period still count (the input is
 *   integrated into V after the period), which conserves charge. V is floored at V_min.
 *
 * Parameters  default  unit  meaning
 *   V_th         1     mV    threshold (> V_reset)
 *   V_reset      0     mV    reset value / subtraction base
 *   reset_mode   0     -     0 subtract, 1 reset to V_reset (JSON: "subtract" | "zero")
 *   C_m          1     pF    capacitance (I_e / C_m is the drift, mV/ms)
 *   I_e          0     pA    constant input current (the converted bias)
 *   t_ref        0     ms    refractory period
 *   V_min     -inf     mV    lower bound of V
 * State: V_m (mV, starts at V_reset), I_dc (pA), held (mV accumulated while refractory), t_ref_end. */
#include "neurons/neurons.h"

#include <math.h>
#include <stddef.h>

typedef struct { double V_th, V_reset, reset_mode, C_m, I_e, t_ref, V_min; } par;
typedef struct { double unused; } der;
typedef struct { double V_m, I_dc, held, t_ref_end; } st;

static const sb_param_info params[] = {
    {"V_th", "mV", offsetof(par, V_th), 1.0},        {"V_reset", "mV", offsetof(par, V_reset), 0.0},
    {"reset_mode", "", offsetof(par, reset_mode), 0.0}, {"C_m", "pF", offsetof(par, C_m), 1.0},
    {"I_e", "pA", offsetof(par, I_e), 0.0},          {"t_ref", "ms", offsetof(par, t_ref), 0.0},
    {"V_min", "mV", offsetof(par, V_min), -INFINITY}, {NULL, NULL, 0, 0}};
static const sb_recordable recs[] = {{"V_m", "mV", offsetof(st, V_m)}, {"I_dc", "pA", offsetof(st, I_dc)},
                                     {NULL, NULL, 0}};

static int validate(const void *pv) {
  const par *p = pv;
  if (!(p->V_reset < p->V_th))
    SB_ERROR(SB_EINVAL, "V_reset: must be < V_th = %g (got %g)", p->V_th, p->V_reset);
  if (p->reset_mode != 0.0 && p->reset_mode != 1.0)
    SB_ERROR(SB_EINVAL, "reset_mode: must be 0 (subtract) or 1 (zero) (got %g)", p->reset_mode);
  if (!(p->V_min < p->V_th))   /* a floor at or above threshold fires without end */
    SB_ERROR(SB_EINVAL, "V_min: must be < V_th = %g (got %g)", p->V_th, p->V_min);
  return SB_OK;
}

static void derive(const void *pv, void *dv) {
  (void)pv;
  ((der *)dv)->unused = 0.0;
}

static void init(const void *pv, const void *dv, void *sv) {
  (void)dv;
  const par *p = pv;
  st *s = sv;
  s->V_m = p->V_reset;
  s->I_dc = s->held = 0.0;
  s->t_ref_end = -INFINITY;
}

static int advance(const void *pv, const void *dv, void *sv, double t0, double t1, void *w) {
  (void)dv;
  (void)w;
  const par *p = pv;
  st *s = sv;
  if (t0 < s->t_ref_end) {
    if (t1 < s->t_ref_end) return SB_OK;
    t0 = s->t_ref_end;
    s->V_m += s->held;
    s->held = 0.0;
  }
  if (t1 > t0) s->V_m += (p->I_e + s->I_dc) / p->C_m * (t1 - t0);
  if (s->V_m < p->V_min) s->V_m = p->V_min;
  return SB_OK;
}

static void receive(const void *pv, const void *dv, void *sv, double t, int receptor, double weight) {
  (void)dv;
  const par *p = pv;
  st *s = sv;
  if (receptor == SB_RCPT_CURRENT) s->I_dc += weight;
  else if (t < s->t_ref_end) s->held += weight;
  else {
    s->V_m += weight;
    if (s->V_m < p->V_min) s->V_m = p->V_min;
  }
}

static int next_crossing(const void *pv, const void *dv, const void *sv, double t, double t_limit,
                         double *t_spike, void *w) {
  (void)dv;
  (void)w;
  const par *p = pv;
  const st *s = sv;
  double V = s->V_m;
  if (t < s->t_ref_end) {
    t = s->t_ref_end;
    V += s->held;
  }
  if (t >= t_limit) return SB_NOSPIKE;
  if (V >= p->V_th) {
    *t_spike = t;
    return SB_OK;
  }
  double r = (p->I_e + s->I_dc) / p->C_m;
  if (r > 0) {
    double h = (p->V_th - V) / r;
    if (t + h < t_limit) {
      *t_spike = t + h;
      return SB_OK;
    }
  }
  return SB_NOSPIKE;
}

static double safe_until(const void *pv, const void *dv, const void *sv, double t) {
  double ts;
  if (next_crossing(pv, dv, sv, t, INFINITY, &ts, NULL) == SB_OK) return ts;
  return INFINITY;
}

static void reset(const void *pv, const void *dv, void *sv, double t_spike) {
  (void)dv;
  const par *p = pv;
  st *s = sv;
  /* at the crossing V == V_th up to rounding; with a jump it may be above (kept by subtraction) */
  if (s->V_m < p->V_th) s->V_m = p->V_th;
  if (p->reset_mode == 0.0) s->V_m -= p->V_th - p->V_reset;
  else s->V_m = p->V_reset;
  s->t_ref_end = t_spike + p->t_ref;
}

const sb_neuron_type sb_if_subtract_type = {
    "if_subtract", sizeof(par), sizeof(der), sizeof(st), params, recs, validate, derive, init,
    advance, receive, next_crossing, reset, NULL, NULL, safe_until, NULL, NULL, NULL, NULL, NULL};
const sb_neuron_type *const sb_neuron_if_subtract = &sb_if_subtract_type;
