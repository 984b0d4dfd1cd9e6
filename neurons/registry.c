/* The model table, parameter helpers shared by every model, and the LIF closed forms (sb_lif_).
 * Models themselves live one per file (iaf_psc_delta.c, ...); this file knows only their tables. */
#include "neurons/neurons.h"

#include <math.h>
#include <string.h>

const sb_neuron_type *const sb_neuron_types[] = {&sb_iaf_psc_delta_type, &sb_iaf_psc_exp_type,
                                                 &sb_iaf_cond_exp_type, &sb_if_subtract_type,
                                                 &sb_iaf_cond_exp_theta_type, NULL};

const sb_neuron_type *sb_neuron_find(const char *name) {
  for (int i = 0; sb_neuron_types[i]; i++)
    if (strcmp(sb_neuron_types[i]->name, name) == 0) return sb_neuron_types[i];
  return NULL;
}

void sb_neuron_defaults(const sb_neuron_type *type, void *p) {
  memset(p, 0, type->param_size);
  for (const sb_param_info *q = type->params; q->name; q++)
    memcpy((char *)p + q->offset, &q->def, sizeof(double));
}

static const sb_param_info *find_param(const sb_neuron_type *type, const char *key) {
  for (const sb_param_info *q = type->params; q->name; q++)
    if (strcmp(q->name, key) == 0) return q;
  return NULL;
}

int sb_neuron_set_param(const sb_neuron_type *type, void *p, const char *key, double value) {
  const sb_param_info *q = find_param(type, key);
  if (!q) {
    char names[512] = "";
    for (const sb_param_info *r = type->params; r->name; r++) {
      if (names[0]) strncat(names, ", ", sizeof names - strlen(names) - 1);
      strncat(names, r->name, sizeof names - strlen(names) - 1);
    }
    SB_ERROR(SB_EINVAL, "%s: unknown parameter of %s (expected one of %s)", key, type->name, names);
  }
  if (!isfinite(value) && !(strcmp(key, "V_min") == 0 && value < 0))
    SB_ERROR(SB_EINVAL, "%s: must be finite (got %g)", key, value);
  /* time constants, capacitance and leak conductance: > 0, and not so small that the propagators'
   * ratios (tau_m / C_m, h / tau) overflow into NaN (C_m = 1e-308 did, with exit 0) */
  if (strncmp(key, "tau_", 4) == 0 || strcmp(key, "C_m") == 0 || strcmp(key, "g_L") == 0) {
    if (!(value > 0)) SB_ERROR(SB_EINVAL, "%s: must be > 0 (got %g)", key, value);
    if (!(value >= 1e-6)) SB_ERROR(SB_EINVAL, "%s: must be >= 1e-06 (got %g): smaller values overflow the propagators", key, value);
  }
  if (strcmp(key, "t_ref") == 0 && value < 0) SB_ERROR(SB_EINVAL, "%s: must be >= 0 (got %g)", key, value);
  memcpy((char *)p + q->offset, &value, sizeof(double));
  return SB_OK;
}

int sb_neuron_get_param(const sb_neuron_type *type, const void *p, const char *key, double *value) {
  const sb_param_info *q = find_param(type, key);
  if (!q) SB_ERROR(SB_EINVAL, "%s: unknown parameter of %s", key, type->name);
  memcpy(value, (const char *)p + q->offset, sizeof(double));
  return SB_OK;
}

int sb_neuron_recordable(const sb_neuron_type *type, const char *name) {
  for (int i = 0; type->recordables[i].name; i++)
    if (strcmp(type->recordables[i].name, name) == 0) return i;
  return -1;
}

/* ---- LIF closed forms ---- */

double sb_lif_exprel(double x) {
  if (x == 0.0) return 1.0;
  if (fabs(x) < 1e-5) return 1.0 + x / 2.0 + x * x / 6.0 + x * x * x / 24.0;  /* rel err < 1e-21 */
  return expm1(x) / x;
}

double sb_lif_psc_exp_p21(double h, double tau_m, double tau_syn, double C_m) {
  return h / C_m * exp(-h / tau_m) * sb_lif_exprel(h * (1.0 / tau_m - 1.0 / tau_syn));
}

double sb_lif_time_to_threshold(double V0, double V_inf, double V_th, double tau_m) {
  if (V0 >= V_th) return 0.0;
  if (!(V_inf > V_th)) return INFINITY;
  /* V_inf - V(t) = (V_inf - V0) e^{-t/tau}; log of a ratio > 1, computed as log1p for accuracy */
  return tau_m * log1p((V_th - V0) / (V_inf - V_th));
}

sb_cond_box sb_cond_veff_box(double g_L, double E_L, double C_m, double I, double ge_lo, double ge_hi, double E_ex,
                             double gi_lo, double gi_hi, double E_in) {
  double ge[2] = {ge_lo, ge_hi}, gi[2] = {gi_lo, gi_hi};
  sb_cond_box b = {INFINITY, -INFINITY, (g_L + ge_hi + gi_hi) / C_m};
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++) {
      double G = g_L + ge[i] + gi[j];
      if (!(G > 0)) return (sb_cond_box){-INFINITY, INFINITY, INFINITY};
      double v = (g_L * E_L + ge[i] * E_ex + gi[j] * E_in + I) / G;
      b.lo = v < b.lo ? v : b.lo;
      b.hi = v > b.hi ? v : b.hi;
    }
  return b;
}

double sb_cond_v_max(const sb_cond_box *b, double Va, double Vb, double h) {
  double vmax = Va > b->hi ? Va : b->hi, vmin = Va < b->lo ? Va : b->lo;
  if (!(vmax < INFINITY) || !(Vb < INFINITY)) return vmax;
  double Lu = b->rate * (b->hi - vmin), Ld = b->rate * (vmax - b->lo);   /* both >= 0 */
  if (Lu + Ld > 0) {
    double s = (Vb - Va + Ld * h) / (Lu + Ld);
    s = s < 0 ? 0 : s > h ? h : s;
    double tent = Va + Lu * s, back = Vb + Ld * (h - s);
    tent = tent > back ? tent : back;   /* rounding: the larger of the two lines at s */
    if (tent < vmax) vmax = tent;
  }
  return vmax;
}

double sb_neuron_weight_max(const sb_neuron_type *type) {
  return strncmp(type->name, "iaf_cond_exp", 12) ? INFINITY : SB_COND_G_MAX;
}

int sb_neuron_cond_check(const char *model, double g_total) {
  if (!(g_total <= SB_COND_G_MAX))
    SB_ERROR(SB_ENOCONV, "%s: conductance g_ex + g_in = %g nS is beyond %g nS: weights this large stiffen the membrane "
             "past what the integration can step through", model, g_total, SB_COND_G_MAX);
  return SB_OK;
}
