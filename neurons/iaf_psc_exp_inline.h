/* iaf_psc_exp's state layout and the steps of one input at delivery, inline: shared by the model
 * (neurons/iaf_psc_exp.c, which documents the equations) and the engine's delivery loop
 * (sim/run.c), which takes iaf_psc_exp's inputs through them without calls through the type table
 * (CUBA: most of its synaptic events). Not a public interface. */
#ifndef SB_IAF_PSC_EXP_INLINE_H
#define SB_IAF_PSC_EXP_INLINE_H
#include "neurons/neurons.h"

#include <math.h>

typedef struct { double E_L, C_m, tau_m, tau_syn_ex, tau_syn_in, t_ref, V_th, V_reset, I_e; } sb_psc_exp_par;
typedef struct {
  double R, Pmax_ex, Pmax_in;   /* peak of P(t) per receptor, mV/pA */
  double kap[2];                /* frame path: tau_m tau_s / (C_m (tau_m - tau_s)), mV/pA (0 when singular) */
  int sing[2];                  /* tau_s == tau_m */
} sb_psc_exp_der;
/* fg: frame factors e^{(f_t - f_o) rate} of the time f_t for the frame origin f_o (a cache of
 * run_frame, valid while the state is at f_t; f_t = NAN: none). */
typedef struct { double V_m, I_syn_ex, I_syn_in, I_dc, t_ref_end, fg[3], f_t, f_o; } sb_psc_exp_st;

/* Conservative: with the currents' largest possible contribution (I+ Pmax) added, the free
 * membrane reaches threshold no earlier than the closed-form time; closer to threshold, a slope
 * bound (one division; it replaced a doubling search of upper_bound: CUBA 5% faster). A refractory
 * neuron gets the bound from V_reset at the end of its refractory period with its present currents
 * (their positive parts only decay until then, so the bound holds), not the end itself: no visit
 * there (CUBA: one per spike). */
static inline double sb_psc_exp_safe_until(const void *pv, const void *dv, const void *sv, double t) {
  const sb_psc_exp_par *p = pv;
  const sb_psc_exp_der *d = dv;
  const sb_psc_exp_st *s = sv;
  double V = s->V_m;
  if (t < s->t_ref_end) {
    t = s->t_ref_end;
    V = p->V_reset;
  }
  if (V >= p->V_th) return t;
  double bonus = (s->I_syn_ex > 0 ? s->I_syn_ex * d->Pmax_ex : 0.0) + (s->I_syn_in > 0 ? s->I_syn_in * d->Pmax_in : 0.0);
  double V_inf = p->E_L + d->R * (p->I_e + s->I_dc);
  if (V < p->V_th - bonus) {
    /* time for the free membrane to reach V_th - bonus: tau_m ln(1 + r), bounded below without a
     * logarithm (this runs after every input) by ln(1 + r) >= 2 r / (2 + r), r >= 0 */
    double Vt = p->V_th - bonus;
    if (!(V_inf > Vt)) return INFINITY;
    double a = Vt - V, b = V_inf - Vt;   /* r = a/b; 2r/(2 + r) = 2a/(2b + a): one division */
    return t + p->tau_m * (2.0 * a / (2.0 * b + a)) * (1.0 - 1e-12);
  }
  /* near threshold: V rises no faster than its slope bound at V (the free part's slope shrinks as
   * V rises; the currents add at most I+ / C_m), so V(t + h) <= V + m h */
  double m = (V_inf > V ? (V_inf - V) / p->tau_m : 0.0) +
             ((s->I_syn_ex > 0 ? s->I_syn_ex : 0.0) + (s->I_syn_in > 0 ? s->I_syn_in : 0.0)) / p->C_m;
  if (!(m > 0)) return INFINITY;
  return t + (p->V_th - V) / m * (1.0 - 1e-12);
}

/* Frame factors G[j] = e^{(t - t_f) rate_j} of the state time t: the cache when it is for (t, t_f);
 * when it is for t and the previous epoch's origin carry[0], the cache times carry[1 + j] =
 * e^{-(t_f - carry[0]) rate_j} (carry may be NULL); else three exps. */
static inline void sb_psc_exp_frame_factors(const sb_psc_exp_par *p, const sb_psc_exp_st *s, double t, double t_f,
                                            const double *carry, double G[3]) {
  if (s->f_t == t && s->f_o == t_f) {
    G[0] = s->fg[0], G[1] = s->fg[1], G[2] = s->fg[2];
  } else if (carry && s->f_t == t && s->f_o == carry[0]) {
    G[0] = s->fg[0] * carry[1], G[1] = s->fg[1] * carry[2], G[2] = s->fg[2] * carry[3];
  } else {
    G[0] = exp((t - t_f) / p->tau_m);
    G[1] = exp((t - t_f) / p->tau_syn_ex);
    G[2] = exp((t - t_f) / p->tau_syn_in);
  }
}

/* The state after input x (at x->t, origin t_f): V, currents and the frame-factor cache. */
static inline void sb_psc_exp_store_at_input(sb_psc_exp_st *s, double V, double Ie, double Ii, const sb_input *x, double t_f,
                                             double *tp) {
  s->V_m = V;
  s->I_syn_ex = Ie;
  s->I_syn_in = Ii;
  s->fg[0] = x->g[0], s->fg[1] = x->g[1], s->fg[2] = x->g[2];
  s->f_t = x->t;
  s->f_o = t_f;
  *tp = x->t;
}

/* One input at delivery (sb_neuron_type.take_input). From the state at t (frame factors G of t,
 * cached or by exp) to the input at t_k: e_j = e^{-(t_k - t) r_j} = G_j / g_j(t_k) = G_j ig_j, then
 * the propagator u(t_k) = u e_m + sum_r kap_r I_r (e_m - e_r), I_r *= e_r (the frame solution of
 * run_frame evaluated at t_k; multiplies only), the input added to its current, and the quiet
 * bound. An input inside the refractory period (t_k <= t_ref_end) decays and adds to the currents
 * only, with V_m held at V_reset (NEST's iaf_psc_exp; CUBA: about 2 inputs per spike, which were
 * queued and cost a visit each in the next window); one after the end of the refractory period
 * starts the free membrane at V_reset there. Returns 1, or 0 without any change in the singular
 * case tau_syn == tau_m, at or above threshold, or when the input is beyond the quiet bound (the
 * caller then uses run_frame).
 * Inline so that the engine's delivery loop (sim/run.c, inputs at delivery) can take CUBA's events
 * without two calls through the type table. carry: see sb_psc_exp_frame_factors (NULL: none). */
static inline __attribute__((always_inline)) int sb_psc_exp_take_input(const void *pv, const void *dv, void *sv, double *tp,
                                                                       double t_f, const double *carry, const sb_input *in,
                                                                       const double ig[3], double *quiet) {
  const sb_psc_exp_par *p = pv;
  const sb_psc_exp_der *d = dv;
  sb_psc_exp_st *s = sv;
  double t = *tp;
  if (d->sing[0] || d->sing[1] || !(s->V_m < p->V_th) || !(in->t <= *quiet)) return 0;
  double G[3];
  sb_psc_exp_frame_factors(p, s, t, t_f, carry, G);
  double e1 = G[1] * ig[1], e2 = G[2] * ig[2];
  double Ie = s->I_syn_ex, Ii = s->I_syn_in, V = s->V_m;   /* refractory: V_m stays V_reset */
  if (t < s->t_ref_end) {
    if (in->t > s->t_ref_end) {
      /* the refractory period ends before the input: from V_reset and the currents at its end
       * (factors Gr of t_ref_end: three exps, once per spike instead of a visit at t_ref_end) */
      double x = s->t_ref_end - t_f, Gr[3] = {exp(x / p->tau_m), exp(x / p->tau_syn_ex), exp(x / p->tau_syn_in)};
      double e0 = Gr[0] * ig[0], f1 = Gr[1] * ig[1], f2 = Gr[2] * ig[2];
      double Ier = Ie * (G[1] / Gr[1]), Iir = Ii * (G[2] / Gr[2]);
      double V_inf = p->E_L + d->R * (p->I_e + s->I_dc);
      V = V_inf + ((p->V_reset - V_inf) * e0 + d->kap[0] * Ier * (e0 - f1) + d->kap[1] * Iir * (e0 - f2));
    }
  } else {
    double e0 = G[0] * ig[0];
    double V_inf = p->E_L + d->R * (p->I_e + s->I_dc);
    V = V_inf + ((V - V_inf) * e0 + d->kap[0] * Ie * (e0 - e1) + d->kap[1] * Ii * (e0 - e2));
  }
  Ie *= e1;
  Ii *= e2;
  if (in->w >= 0) Ie += in->w;
  else Ii += in->w;
  sb_psc_exp_store_at_input(s, V, Ie, Ii, in, t_f, tp);
  /* an inhibitory input only lowers V at every later time (its PSP is <= 0), so the bound before it
   * still holds: kept (CUBA: a fifth of the inputs) */
  if (in->w >= 0) *quiet = sb_psc_exp_safe_until(p, d, s, in->t);
  return 1;
}

#endif
