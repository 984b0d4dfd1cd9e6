/* STDP rules for the spiking engine (pair-based all-to-all / nearest-neighbour, triplet) and
 * the adaptive threshold of Diehl & Cook 2015, exactly event-driven, with NEST's names,
 * parameters and dendritic-delay convention (see learning/learning.h, "STDP (engine side)").
 * Not the storage of plastic synapses or the event loop: the engine calls these per event. */
#include "learning/learning.h"

#include <math.h>
#include <string.h>

/* ---- parameters ---- */

void sb_stdp_defaults(sb_stdp_params *p, int model) {
  memset(p, 0, sizeof *p);
  p->model = model;
  p->pairing = SB_STDP_ALL_TO_ALL;
  p->tau_plus = model == SB_STDP_TRIPLET ? 16.8 : 20.0;
  p->tau_minus = 20.0;
  p->lambda = 0.01;
  p->alpha = 1.0;
  p->mu_plus = 1.0;
  p->mu_minus = 1.0;
  p->Wmax = 100.0;
  p->tau_plus_triplet = 101.0;
  p->tau_minus_triplet = 110.0;
  p->Aplus = 5e-10;
  p->Aminus = 7e-3;
  p->Aplus_triplet = 6.2e-3;
  p->Aminus_triplet = 2.3e-4;
}

/* Every parameter with the rules that take it (NEST's per-model parameter sets): the pair rules
 * (stdp_synapse, stdp_nn_symm_synapse, stdp_nn_restr_synapse) and the triplet rules
 * (stdp_triplet_synapse, stdp_triplet_nn_synapse). A parameter of the other rule is refused,
 * not ignored. */
enum { FOR_PAIR = 1, FOR_TRIPLET = 2, FOR_BOTH = 3 };
typedef struct { const char *name; size_t off; int positive, rules; } param_key;
#define PK(f, pos, r) {#f, offsetof(sb_stdp_params, f), pos, r}
static const param_key keys[] = {
    PK(tau_plus, 1, FOR_BOTH), PK(tau_minus, 1, FOR_BOTH), PK(lambda, 0, FOR_PAIR), PK(alpha, 0, FOR_PAIR),
    PK(mu_plus, 0, FOR_PAIR), PK(mu_minus, 0, FOR_PAIR), PK(Wmax, 1, FOR_BOTH), PK(tau_plus_triplet, 1, FOR_TRIPLET),
    PK(tau_minus_triplet, 1, FOR_TRIPLET), PK(Aplus, 0, FOR_TRIPLET), PK(Aminus, 0, FOR_TRIPLET),
    PK(Aplus_triplet, 0, FOR_TRIPLET), PK(Aminus_triplet, 0, FOR_TRIPLET),
    {"tau_x", offsetof(sb_stdp_params, tau_plus_triplet), 1, FOR_TRIPLET},
    {"tau_y", offsetof(sb_stdp_params, tau_minus_triplet), 1, FOR_TRIPLET},
    {NULL, 0, 0, 0}};

/* "tau_plus, tau_minus, ..." : the parameters of `rules` */
static void key_list(char *buf, size_t len, int rules) {
  buf[0] = 0;
  for (const param_key *k = keys; k->name; k++) {
    if (!(k->rules & rules)) continue;
    if (buf[0]) strncat(buf, ", ", len - strlen(buf) - 1);
    strncat(buf, k->name, len - strlen(buf) - 1);
  }
  strncat(buf, ", pairing", len - strlen(buf) - 1);
}

int sb_stdp_set_param(sb_stdp_params *p, const char *key, double value) {
  int triplet = p->model == SB_STDP_TRIPLET;
  if (!strcmp(key, "pairing")) {
    if (!(value == 0 || value == 1 || value == 2))
      SB_ERROR(SB_EINVAL, "pairing: must be 0 (all_to_all), 1 (nn_symm) or 2 (nn_restr) (got %g)", value);
    if (triplet && value == 2)
      SB_ERROR(SB_EINVAL, "pairing: the triplet rule takes all-to-all (0) or nearest-neighbour symmetric (1) pairing "
               "only, not restricted nearest-neighbour pairing (got 2, nn_restr)");
    p->pairing = (int)value;
    return SB_OK;
  }
  char list[256];
  for (const param_key *k = keys; k->name; k++) {
    if (strcmp(k->name, key)) continue;
    if (!(k->rules & (triplet ? FOR_TRIPLET : FOR_PAIR))) {
      key_list(list, sizeof list, triplet ? FOR_TRIPLET : FOR_PAIR);
      SB_ERROR(SB_EINVAL, "%s: is a parameter of %s, not of %s (which takes %s)", key,
               triplet ? "stdp_synapse and its nearest-neighbour variants" : "stdp_triplet_synapse and stdp_triplet_nn_synapse",
               sb_stdp_model_name(p), list);
    }
    if (!isfinite(value)) SB_ERROR(SB_EINVAL, "%s: must be finite (got %g)", key, value);
    if (k->positive && !(value > 0)) SB_ERROR(SB_EINVAL, "%s: must be > 0 (got %g)", key, value);
    if (!k->positive && !(value >= 0)) SB_ERROR(SB_EINVAL, "%s: must be >= 0 (got %g)", key, value);
    memcpy((char *)p + k->off, &value, sizeof value);
    return SB_OK;
  }
  key_list(list, sizeof list, triplet ? FOR_TRIPLET : FOR_PAIR);
  SB_ERROR(SB_EINVAL, "%s: unknown parameter of %s (expected one of %s)", key, sb_stdp_model_name(p), list);
}

int sb_stdp_model_parse(const char *name, sb_stdp_params *p) {
  if (!strcmp(name, "stdp_triplet_synapse")) {
    sb_stdp_defaults(p, SB_STDP_TRIPLET);
    return SB_OK;
  }
  if (!strcmp(name, "stdp_triplet_nn_synapse")) {
    sb_stdp_defaults(p, SB_STDP_TRIPLET);
    p->pairing = SB_STDP_NN_SYMM;
    return SB_OK;
  }
  sb_stdp_defaults(p, SB_STDP_PAIR);
  if (!strcmp(name, "stdp_synapse")) return SB_OK;
  if (!strcmp(name, "stdp_nn_symm_synapse")) { p->pairing = SB_STDP_NN_SYMM; return SB_OK; }
  if (!strcmp(name, "stdp_nn_restr_synapse")) { p->pairing = SB_STDP_NN_RESTR; return SB_OK; }
  SB_ERROR(SB_EINVAL, "synapse_model: unknown model \"%s\" (expected static_synapse, stdp_synapse, "
           "stdp_nn_symm_synapse, stdp_nn_restr_synapse, stdp_triplet_synapse or stdp_triplet_nn_synapse)", name);
}

const char *sb_stdp_model_name(const sb_stdp_params *p) {
  if (p->model == SB_STDP_TRIPLET) return p->pairing == SB_STDP_NN_SYMM ? "stdp_triplet_nn_synapse" : "stdp_triplet_synapse";
  switch (p->pairing) {
    case SB_STDP_NN_SYMM: return "stdp_nn_symm_synapse";
    case SB_STDP_NN_RESTR: return "stdp_nn_restr_synapse";
    default: return "stdp_synapse";
  }
}

/* ---- postsynaptic history ---- */

void sb_stdp_syn_init(sb_stdp_syn *s, double w) {
  s->w = w;
  s->Kplus = 0.0;
  s->Kplus_triplet = 0.0;
  s->t_last = -INFINITY;
  s->t_done = -INFINITY;
}

void sb_stdp_post_init(sb_stdp_post *post) { memset(post, 0, sizeof *post); }

void sb_stdp_post_free(sb_stdp_post *post) {
  sb_free(post->h);
  memset(post, 0, sizeof *post);
}

int sb_stdp_post_spike(const sb_stdp_params *p, sb_stdp_post *post, double t) {
  double km = 1.0, kt = 1.0;
  if (post->n > post->head) {
    const sb_stdp_hist *l = &post->h[post->n - 1];
    if (p->model == SB_STDP_TRIPLET && p->pairing == SB_STDP_NN_SYMM) {
      /* nearest-spike traces (Diehl & Cook 2015: post1 = 1, post2 = 1): o1 = 1 after the spike;
       * Kminus_triplet - 1 stores o2 just before it, the only way the rule reads o2 */
      kt += exp((l->t - t) / p->tau_minus_triplet);
    } else {
      km += l->Kminus * exp((l->t - t) / p->tau_minus);
      kt += l->Kminus_triplet * exp((l->t - t) / p->tau_minus_triplet);
    }
  }
  if (post->n == post->cap) {
    if (post->head > 0 && post->head >= post->n / 2) {   /* reuse the trimmed front */
      memmove(post->h, post->h + post->head, (post->n - post->head) * sizeof *post->h);
      post->n -= post->head;
      post->head = 0;
    } else {
      size_t cap = post->cap ? 2 * post->cap : 16;
      sb_stdp_hist *h = sb_realloc(post->h, cap * sizeof *h);
      if (!h) return SB_ENOMEM;
      post->h = h;
      post->cap = cap;
    }
  }
  post->h[post->n++] = (sb_stdp_hist){t, km, kt};
  return SB_OK;
}

/* First index i in [head, n) with h[i].t + d > x (n if none): binary search. The arrival time
 * is always formed as h.t + d so every comparison rounds the same way. */
static size_t first_after(const sb_stdp_post *post, double x, double d) {
  size_t lo = post->head, hi = post->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (post->h[mid].t + d > x) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/* First index with h[i].t + d >= x. */
static size_t first_at_or_after(const sb_stdp_post *post, double x, double d) {
  size_t lo = post->head, hi = post->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (post->h[mid].t + d >= x) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

void sb_stdp_post_trim(sb_stdp_post *post, double t_keep) {
  size_t i = first_after(post, t_keep, 0.0);   /* first entry with t > t_keep */
  if (i > post->head) post->head = i - 1;      /* keep the latest one at or before t_keep */
}

/* ---- the rules ---- */

/* NEST stdp_synapse facilitate_/depress_ (weight dependence of Gütig et al. 2003). */
static inline double pair_facilitate(const sb_stdp_params *p, double w, double kplus) {
  double wa = fabs(w), x = wa / p->Wmax;
  double nw = x + p->lambda * (p->mu_plus == 0 ? 1.0 : pow(1.0 - x, p->mu_plus)) * kplus;
  return copysign(nw < 1.0 ? nw * p->Wmax : p->Wmax, w);
}

static inline double pair_depress(const sb_stdp_params *p, double w, double kminus) {
  double wa = fabs(w), x = wa / p->Wmax;
  double nw = x - p->alpha * p->lambda * (p->mu_minus == 0 ? 1.0 : pow(x, p->mu_minus)) * kminus;
  return copysign(nw > 0.0 ? nw * p->Wmax : 0.0, w);
}

/* Potentiation by post arrivals u = t_post + d in (s->t_done, T], in time order. */
static void potentiate(const sb_stdp_params *p, sb_stdp_syn *s, const sb_stdp_post *post, double T, double d) {
  if (!(T > s->t_done)) return;
  size_t i = first_after(post, s->t_done, d);
  for (; i < post->n; i++) {
    double u = post->h[i].t + d;
    if (u > T) break;
    if (s->Kplus == 0.0) continue;   /* no pre spike to pair with (or NN_RESTR: consumed) */
    double kplus = s->Kplus * exp((s->t_last - u) / p->tau_plus);
    if (p->model == SB_STDP_TRIPLET) {
      double ky = post->h[i].Kminus_triplet - 1.0;   /* o2 just before this post spike */
      double nw = fabs(s->w) + kplus * (p->Aplus + p->Aplus_triplet * ky);
      s->w = copysign(nw < p->Wmax ? nw : p->Wmax, s->w);
    } else {
      s->w = pair_facilitate(p, s->w, kplus);
      if (p->pairing == SB_STDP_NN_RESTR) s->Kplus = 0.0;   /* only the first post pairs */
    }
  }
  s->t_done = T;
}

double sb_stdp_pre(const sb_stdp_params *p, sb_stdp_syn *s, const sb_stdp_post *post, double t_pre, double d) {
  potentiate(p, s, post, t_pre, d);
  /* depression with the post trace at t_pre from arrivals strictly before t_pre */
  size_t i = first_at_or_after(post, t_pre, d);
  int have = i > post->head;
  const sb_stdp_hist *h = have ? &post->h[i - 1] : NULL;
  double gap = have ? t_pre - (h->t + d) : INFINITY;   /* > 0 */
  double r2 = s->t_last == -INFINITY ? 0.0 : s->Kplus_triplet * exp((s->t_last - t_pre) / p->tau_plus_triplet);
  if (p->model == SB_STDP_TRIPLET) {
    if (have) {
      double o1 = h->Kminus * exp(-gap / p->tau_minus);
      double nw = fabs(s->w) - o1 * (p->Aminus + p->Aminus_triplet * r2);
      s->w = copysign(nw > 0.0 ? nw : 0.0, s->w);
    }
  } else if (have) {
    double kminus;
    if (p->pairing == SB_STDP_ALL_TO_ALL) kminus = h->Kminus * exp(-gap / p->tau_minus);
    else if (p->pairing == SB_STDP_NN_SYMM || h->t + d > s->t_last) kminus = exp(-gap / p->tau_minus);
    else kminus = 0.0;   /* NN_RESTR: a pre spike came after the nearest post spike */
    if (kminus > 0.0) s->w = pair_depress(p, s->w, kminus);
  }
  /* the pre traces jump */
  if (p->pairing == SB_STDP_ALL_TO_ALL) {
    double r1 = s->t_last == -INFINITY ? 0.0 : s->Kplus * exp((s->t_last - t_pre) / p->tau_plus);
    s->Kplus = r1 + 1.0;
    s->Kplus_triplet = r2 + 1.0;
  } else {
    s->Kplus = 1.0;
    s->Kplus_triplet = p->model == SB_STDP_TRIPLET ? 1.0 : r2 + 1.0;
  }
  s->t_last = t_pre;
  if (t_pre > s->t_done) s->t_done = t_pre;
  return s->w;
}

double sb_stdp_sync(const sb_stdp_params *p, sb_stdp_syn *s, const sb_stdp_post *post, double T, double d) {
  potentiate(p, s, post, T, d);
  return s->w;
}

double sb_stdp_weight_at(const sb_stdp_params *p, const sb_stdp_syn *s, const sb_stdp_post *post, double T, double d) {
  sb_stdp_syn c = *s;
  potentiate(p, &c, post, T, d);
  return c.w;
}

/* ---- adaptive threshold ---- */

double sb_theta_decay(const sb_theta_params *p, double theta, double dt) {
  if (isinf(p->tau_theta) || dt <= 0) return theta;
  return theta * exp(-dt / p->tau_theta);
}

double sb_theta_spike(const sb_theta_params *p, double theta) { return theta + p->theta_plus; }
