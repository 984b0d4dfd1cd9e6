/* Neuron models behind one interface (a table of functions, GSL `*_type` style), and the
 * closed forms they share. The engine (sim/) owns parameters (per population, or per neuron
 * when heterogeneous) and state (per neuron, `state_size` bytes each); a model owns neither.
 * Stimulus devices (poisson, dc, spike lists) live in the engine, not here: they reach a
 * neuron as events (SB_RCPT_SPIKE) or current steps (SB_RCPT_CURRENT).
 *
 * Conventions shared by every model (NEST names and units: ms, mV, pF, pA, nS):
 *  - times are absolute ms (doubles, continuous); a state is "at" some time the engine keeps;
 *  - advance(s, t0, t1) integrates exactly (closed form) or to ODE tolerance from t0 to t1,
 *    without looking at the threshold; refractoriness is inside the state (t_ref_end);
 *  - next_crossing(s, t, t_limit) finds the first time in [t, t_limit) where V_m >= V_th
 *    (t itself when already at/above threshold and not refractory), else SB_NOSPIKE;
 *  - receive(s, t, receptor, w): a spike (weight sign picks the excitatory or inhibitory
 *    receptor, as in NEST) or a step of injected current (pA) at time t;
 *  - reset(s, t_spike): after a spike: reset V_m, start the refractory period. */
#ifndef SB_NEURONS_H
#define SB_NEURONS_H
#include "sim/core.h"

/* Receptors of receive(). */
enum {
  SB_RCPT_SPIKE = 0,   /* synaptic event, weight > 0 excitatory, < 0 inhibitory (mV, pA or nS) */
  SB_RCPT_CURRENT = 1  /* change of injected current by `weight` pA (dc_generator on/off) */
};

/* A double parameter: name, unit, offset in the model's parameter struct, default. */
typedef struct {
  const char *name;  /* NEST name, "tau_m" */
  const char *unit;  /* "ms" */
  size_t offset;     /* byte offset of the double in the parameter struct */
  double def;        /* default value */
} sb_param_info;

/* A recordable / settable state variable (a double in the state struct). */
typedef struct {
  const char *name;  /* "V_m" */
  const char *unit;  /* "mV" */
  size_t offset;     /* byte offset of the double in the state struct */
} sb_recordable;

/* A spike input in the window frame of the fast path: time (ms), weight, and the frame factors
 * g[j] = exp((t - t_f) * rate[j]) for the model's decay rates (frame_rates; unused entries 1),
 * t_f the frame origin: the start of the input's window, or of an epoch of windows chosen by the
 * engine so that (t - t_f) * rate[j] <= 8 (shared by every target of a source spike through one
 * projection, so the engine computes them once per spike). */
typedef struct { double t, w, g[3]; } sb_input;

typedef struct sb_neuron_type {
  const char *name;                     /* NEST model name, "iaf_psc_exp" */
  size_t param_size, derived_size, state_size;  /* bytes */
  const sb_param_info *params;          /* NULL-name terminated; every field a double */
  const sb_recordable *recordables;     /* NULL-name terminated; [0] is V_m */
  /* Cross-parameter checks after all values are set (e.g. V_reset < V_th). Returns SB_OK or
   * SB_EINVAL with a message "<param>: must be ... (got ...)" that callers prefix with the
   * file and JSON path. Single values are range-checked by sb_neuron_set_param. */
  int (*validate)(const void *p);
  /* Constants from parameters, once per parameter set (singular limits live here). */
  void (*derive)(const void *p, void *d);
  /* State at rest at time 0 (V_m = E_L, currents 0, not refractory). */
  void (*init)(const void *p, const void *d, void *s);
  /* Exact (or ODE-tolerance) evolution from t0 to t1 >= t0, ms. Returns SB_OK or SB_ENOCONV. */
  int (*advance)(const void *p, const void *d, void *s, double t0, double t1, void *w);
  void (*receive)(const void *p, const void *d, void *s, double t, int receptor, double weight);
  /* First threshold crossing in [t, t_limit): SB_OK with *t_spike, or SB_NOSPIKE; SB_ENOCONV
   * if a root cannot be located. Does not change the state. */
  int (*next_crossing)(const void *p, const void *d, const void *s, double t, double t_limit,
                       double *t_spike, void *w);
  void (*reset)(const void *p, const void *d, void *s, double t_spike);
  /* Optional per-thread workspace (ODE models); NULL for closed-form models. */
  void *(*work_alloc)(const void *p);
  void (*work_free)(void *w);
  /* Optional: a time >= t before which the neuron cannot reach threshold without new input
   * (a conservative bound, INFINITY if never). The engine skips such neurons in windows
   * without input and advances them lazily. NULL: processed every window. */
  double (*safe_until)(const void *p, const void *d, const void *s, double t);
  /* Optional window-frame fast path (models whose free state is a sum of exponentials):
   * frame_rates(p, rate) stores the decay rates (1/ms, > 0) and returns their number (1 to 3;
   * 0: no fast path for these parameters). run_frame receives spike inputs in[0..n) (times
   * ascending, >= *t, frame factors relative to the origin t_f) from state s at time *t, with
   * *quiet a time before which the neuron cannot cross without input; each input is multiply-adds
   * in the frame, exactly as advance + receive would do (to rounding). It stops after the first
   * input after which the neuron may reach threshold before the next input, or before the first
   * input before which it may cross (then 0 inputs when it cannot start). Returns the number
   * consumed, leaves s and *t at the last consumed input and *quiet = safe_until(s, *t). */
  int (*frame_rates)(const void *p, double rate[3]);
  uint32_t (*run_frame)(const void *p, const void *d, void *s, double *t, double t_f, const sb_input *in, uint32_t n,
                        double *quiet);
  /* Optional (with run_frame): a whole window's spike inputs at once, in any order, for a neuron
   * that provably cannot reach threshold in the window. sum_wg[j] = sum of w g[j] over the inputs
   * (j < the number of frame rates), last = an input with the latest time, and wpos bounds from
   * above, at every time up to last->t, the summed response of the inputs received by then (an
   * input's response decays from w with the frame rates: the sum of max(w, 0) is such a bound; the
   * engine passes a tighter one when that fails: the largest prefix sum in time order with each
   * negative w taken at its least remaining factor e^{-(last->t - first input time) rate_max});
   * every input time is >= *t. Returns 1 after leaving s at last->t (*t = last->t, *quiet as
   * run_frame would; the engine does not look at the neuron again in this window, so 1 also
   * promises no crossing without input up to the window's end, e.g. after a refractory period
   * that ends in it), equal to run_frame on the time-ordered inputs up to rounding; returns 0 with s
   * untouched when it cannot exclude a crossing (or refractoriness, or anything order-dependent):
   * the engine then merges the inputs in time order for run_frame. Saves the merge and the
   * per-input threshold tests of the many inputs that only move a neuron below threshold. g_t > 0:
   * the frame factor of *t (the last input's, when the engine calls it for consecutive parts of a
   * window), saving its exp; 0: unknown. */
  int (*frame_sum)(const void *p, const void *d, void *s, double *t, double t_f, const sb_input *last,
                   const double sum_wg[3], double wpos, double g_t, double *quiet);
  /* Optional (with run_frame): run_frame on one input, given also ig[j] = 1 / in->g[j] (the engine
   * computes them once per source spike), so that moving the state to the input needs no
   * division. Same contract and result as run_frame(..., in, 1, quiet) up to rounding, except
   * that it may also take an input that run_frame declines (iaf_psc_exp: one in or after a
   * refractory period) and that *quiet may stay the bound before the input when the input cannot
   * make a crossing earlier (an inhibitory one); returns 1 when the input was taken, 0 when not
   * (s untouched). Used for inputs taken at delivery. */
  int (*take_input)(const void *p, const void *d, void *s, double *t, double t_f, const sb_input *in, const double ig[3],
                    double *quiet);
  /* Optional: next_crossing, and when it returns SB_NOSPIKE also advance(t, t_limit), in one call
   * that may share their arithmetic. Same results as the two calls up to rounding; on SB_OK the
   * state is unchanged. */
  int (*cross_or_advance)(const void *p, const void *d, void *s, double t, double t_limit, double *t_spike, void *w);
} sb_neuron_type;

/* The models (one exported pointer per model file; the structs are for static tables). */
extern const sb_neuron_type sb_iaf_psc_delta_type, sb_iaf_psc_exp_type, sb_iaf_cond_exp_type,
    sb_if_subtract_type, sb_iaf_cond_exp_theta_type;
extern const sb_neuron_type *const sb_neuron_iaf_psc_delta;
extern const sb_neuron_type *const sb_neuron_iaf_psc_exp;
extern const sb_neuron_type *const sb_neuron_iaf_cond_exp;
extern const sb_neuron_type *const sb_neuron_if_subtract;
/* iaf_cond_exp plus the adaptive threshold V_th + theta of Diehl & Cook 2015 (theta_plus mV per
 * spike, decay tau_theta ms; state "theta" recordable and settable). neurons/iaf_cond_exp_theta.c. */
extern const sb_neuron_type *const sb_neuron_iaf_cond_exp_theta;

/* NULL-terminated table of every model (neurons/registry.c); tests and the CLI walk it. */
extern const sb_neuron_type *const sb_neuron_types[];

/* Look a model up by its NEST name; NULL if unknown. */
const sb_neuron_type *sb_neuron_find(const char *name);

/* Fill `p` (type->param_size bytes) with the defaults of the parameter table. */
void sb_neuron_defaults(const sb_neuron_type *type, void *p);

/* Set parameter `key` to `value` after its range check (time constants and C_m > 0, t_ref >= 0,
 * finite values). Errors: SB_EINVAL "<key>: unknown parameter of <model>" or
 * "<key>: must be > 0 (got -20)"; the caller prefixes file and JSON path. */
int sb_neuron_set_param(const sb_neuron_type *type, void *p, const char *key, double value);
/* Read a parameter; SB_EINVAL if unknown. */
int sb_neuron_get_param(const sb_neuron_type *type, const void *p, const char *key, double *value);

/* Index of recordable `name` in type->recordables, or -1. */
int sb_neuron_recordable(const sb_neuron_type *type, const char *name);
/* Conductance-based models (iaf_cond_exp, iaf_cond_exp_theta): SB_OK while the total conductance
 * g_total = g_ex + g_in (nS) is at most 1e7 nS, else SB_ENOCONV with a message naming `model`:
 * beyond it the membrane time constant C_m/g (25 ns at 250 pF) is shorter than the integration
 * can step through in finite time (1e20 nS stepped forever). */
int sb_neuron_cond_check(const char *model, double g_total);
#define SB_COND_G_MAX 1e7   /* nS: sb_neuron_cond_check's limit */
/* The largest |weight| (nS for conductance-based models, else unlimited) a synapse into `type`
 * may carry: SB_COND_G_MAX for iaf_cond_exp and iaf_cond_exp_theta, INFINITY for the others. */
double sb_neuron_weight_max(const sb_neuron_type *type);

/* Bounds for the conductance-based membrane without input (iaf_cond_exp, iaf_cond_exp_theta)
 *   C_m dV/dt = -g_L (V - E_L) - g_ex(s) (V - E_ex) - g_in(s) (V - E_in) + I
 * over an interval where g_ex(s) stays in [ge_lo, ge_hi] and g_in(s) in [gi_lo, gi_hi] (nS;
 * C_m pF, I pA, mV). Written dV/dt = G(s) (V_eff(s) - V)/C_m, V_eff is a weighted mean of E_L,
 * E_ex, E_in (plus I/G), linear-fractional in (g_ex, g_in): its extremes over the box lie at the
 * corners (sb_cond_box: lo, hi mV; rate = (g_L + ge_hi + gi_hi)/C_m, 1/ms, bounds G/C_m; hi =
 * INFINITY when g_L + g <= 0). Used to rule out a rise above threshold and back inside an
 * integration step; V_eff: Kuhn, Aertsen, Rotter 2004 (the comparison argument of
 * iaf_cond_exp_theta's upper_bound). */
typedef struct { double lo, hi, rate; } sb_cond_box;
sb_cond_box sb_cond_veff_box(double g_L, double E_L, double C_m, double I, double ge_lo, double ge_hi, double E_ex,
                             double gi_lo, double gi_hi, double E_in);
/* Upper bound (mV) of V on [0, h] (ms) from V(0) = Va to V(h) = Vb (Vb may be INFINITY) with the
 * conductances in box b: V stays within [min(Va, b.lo), max(Va, b.hi)], so its slope within
 * [-Ld, Lu] (Lu = rate (hi - Vmin), Ld = rate (Vmax - lo)), and V(s) <= min(Va + Lu s,
 * Vb + Ld (h - s)); the least of these. */
double sb_cond_v_max(const sb_cond_box *b, double Va, double Vb, double h);

/* ---- closed forms shared by the LIF models (sb_lif_) ---- */

/* expm1(x)/x, 1 at x = 0: the stable factor of the exponential-current propagator. */
double sb_lif_exprel(double x);

/* Membrane response at time h (ms) to a synaptic current I0 e^{-t/tau_syn} (pA) starting at 0
 * with V at 0, for a leaky membrane (tau_m ms, C_m pF): mV.
 *   P(h) = (h/C) e^{-h/tau_m} exprel(h (1/tau_m - 1/tau_syn)),
 * which equals tau_m tau_syn/(C (tau_m - tau_syn)) (e^{-h/tau_m} - e^{-h/tau_syn}) for
 * tau_syn != tau_m and its limit (h/C) e^{-h/tau_m} at tau_syn == tau_m, without cancellation
 * near the singularity (Rotter & Diesmann 1999; NEST IAFPropagatorExp handles the same case). */
double sb_lif_psc_exp_p21(double h, double tau_m, double tau_syn, double C_m);

/* Time (ms, >= 0) for V(t) = V_inf + (V0 - V_inf) e^{-t/tau_m} to reach V_th, or INFINITY if
 * it never does (V0 < V_th assumed). */
double sb_lif_time_to_threshold(double V0, double V_inf, double V_th, double tau_m);

#endif
