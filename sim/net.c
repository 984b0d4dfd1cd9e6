/* Network construction: populations, parameters, projections (connection rules and the four
 * storage kinds), stimuli registration, and read-back of counters. The event loop is run.c;
 * recording record.c; JSON model files model.c. */
#include "sim/internal.h"

#include <gsl/gsl_randist.h>
#include <math.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- networks and populations ---- */

static void free_proj_storage(const sb_net *net, sb_proj *pr);

sb_net *sb_net_alloc(uint64_t seed, int threads) {
#ifdef _OPENMP
  if (threads <= 0) threads = omp_get_max_threads();
#else
  threads = 1;
#endif
  if (threads < 1) threads = 1;
  sb_net *net = sb_calloc_aligned(1, sizeof *net, _Alignof(sb_net));   /* its per-window fields have lines of their own */
  if (!net) return NULL;
  net->seed = seed;
  /* MPI (sim/mpi.c): `threads` per rank, partitions [rank T, (rank+1) T) of ranks x T */
  sb_mpi_net_ranks_(&net->rank, &net->nranks);
  net->threads = threads * net->nranks;
  net->p_lo = net->rank * threads;
  net->p_hi = net->p_lo + threads;
  net->min_delay = 0.1;
  net->file = -1;
  net->flush_interval = 1000.0;
  return net;
}

static void free_run_state(sb_net *net) {
  if (net->ev) {   /* queue blocks live in the partitions' arenas */
    sb_free(net->ev);
    net->ev = NULL;
  }
  sb_free(net->fcnt);
  net->fcnt = NULL;
  sb_free(net->home_slot);
  net->home_slot = NULL;
  if (net->qarena) {
    for (int k = 0; k < net->threads; k++) sb_arena_free_(&net->qarena[k]);
    sb_free(net->qarena);
    net->qarena = NULL;
  }
  if (net->arr) {
    for (size_t i = 0; i < (size_t)net->S * (size_t)net->threads; i++) {
      sb_free(net->arr[i].a);
      sb_free(net->arr[i].wg);
    }
    sb_free(net->arr);
    net->arr = NULL;
  }
  if (net->pois_rng) {
    for (size_t i = 0; i < net->n; i++)
      if (net->pois_rng[i]) gsl_rng_free(net->pois_rng[i]);
    sb_free(net->pois_rng);
    net->pois_rng = NULL;
  }
  sb_free(net->pois_first); sb_free(net->pois_next); sb_free(net->pois_s);
  sb_free(net->stim_first); sb_free(net->stim_s); sb_free(net->stim_pos);
  sb_free(net->rec_first); sb_free(net->recmap); sb_free(net->smp_state); sb_free(net->smp_t);
  sb_free(net->ev_due); net->ev_due = NULL;
  sb_free(net->t_state); sb_free(net->t_safe); sb_free(net->count); sb_free(net->last); sb_free(net->isi_sum); sb_free(net->isi_sq);
  net->pois_first = NULL; net->pois_next = NULL; net->pois_s = NULL;
  net->stim_first = NULL; net->stim_s = NULL; net->stim_pos = NULL;
  net->rec_first = NULL; net->recmap = NULL; net->smp_state = NULL; net->smp_t = NULL;
  net->t_state = net->t_safe = NULL; net->count = NULL; net->last = net->isi_sum = net->isi_sq = NULL;
  if (net->tsp)
    for (int k = 0; k < net->threads; k++) sb_free(net->tsp[k]);
  if (net->scratch)
    for (int k = 0; k < net->threads; k++) sb_free(net->scratch[k]);
  if (net->merged)
    for (int k = 0; k < net->threads; k++) sb_free(net->merged[k]);
  sb_free(net->merged); sb_free(net->merged_cap);
  if (net->pin)
    for (int k = 0; k < net->threads; k++) sb_free(net->pin[k]);
  if (net->pin_t)
    for (int k = 0; k < net->threads; k++) sb_free(net->pin_t[k]);
  sb_free(net->pin); sb_free(net->pin_cap); sb_free(net->pin_t);
  net->pin = NULL; net->pin_cap = NULL; net->pin_t = NULL;
  if (net->act)
    for (size_t i = 0; i < (size_t)net->S * (size_t)net->threads; i++) sb_free(net->act[i].a);
  if (net->cal)
    for (size_t i = 0; i < (size_t)net->threads * SB_CAL_R; i++) sb_free(net->cal[i].a);
  for (int k = 0; k < net->threads; k++) {
    if (net->far_) sb_free(net->far_[k].a);
    if (net->cand) sb_free(net->cand[k].a);
  }
  sb_free(net->act); sb_free(net->cal); sb_free(net->far_); sb_free(net->cand);
  sb_free(net->stamp); sb_free(net->cal_at); sb_free(net->pass); sb_free(net->pmode);
  net->act = net->cal = net->far_ = net->cand = NULL;
  net->stamp = net->cal_at = net->pass = NULL;
  net->pmode = NULL;
  net->merged = NULL; net->merged_cap = NULL;
  sb_free(net->tsp); sb_free(net->tsp_n); sb_free(net->tsp_cap);
  sb_free(net->scratch); sb_free(net->scratch_cap); sb_free(net->t_events); sb_free(net->t_ext); sb_free(net->t_eager); sb_free(net->eager_ok);
  sb_free(net->ep_carry);
  net->ep_carry = NULL;
  sb_free(net->gsp);
  net->tsp = NULL; net->tsp_n = net->tsp_cap = NULL; net->scratch = NULL; net->scratch_cap = NULL;
  net->t_events = NULL; net->t_ext = NULL; net->t_eager = NULL; net->eager_ok = NULL; net->gsp = NULL; net->gsp_n = net->gsp_cap = 0;
  for (int i = 0; i < net->n_pops; i++) {
    sb_pop *p = &net->pops[i];
    if (p->work) {
      for (int k = 0; k < net->threads; k++)
        if (p->work[k] && p->type->work_free) p->type->work_free(p->work[k]);
      sb_free(p->work);
      p->work = NULL;
    }
  }
  net->prepared = 0;
}

void sb_net_free(sb_net *net) {
  if (!net) return;
  sb_rec_free_(net);
  free_run_state(net);
  for (int i = 0; i < net->n_pops; i++) {
    sb_pop *p = &net->pops[i];
    sb_free(p->name); sb_free(p->params); sb_free(p->derived); sb_free(p->state); sb_free(p->state0);
    sb_free(p->out); sb_free(p->sp_t); sb_free(p->sp_id);
  }
  sb_free(net->pops);
  for (int i = 0; i < net->n_projs; i++) free_proj_storage(net, &net->projs[i]);
  sb_free(net->projs);
  sb_free(net->bound);
  sb_free(net->pois);
  sb_free(net->stim);
  sb_free(net);
}

int sb_net_set_min_delay(sb_net *net, double d) {
  if (!(d > 0) || !isfinite(d)) SB_ERROR(SB_EINVAL, "min_delay: must be > 0 (got %g)", d);
  if (net->n_projs) SB_ERROR(SB_EINVAL, "min_delay: must be set before the first projection");
  net->min_delay = d;
  return SB_OK;
}

static int check_pop(const sb_net *net, int pop) {
  if (pop < 0 || pop >= net->n_pops) SB_ERROR(SB_EINVAL, "population index %d out of range [0, %d)", pop, net->n_pops);
  return SB_OK;
}

static int check_building(const sb_net *net) {
  if (net->prepared) SB_ERROR(SB_EINVAL, "the network cannot change shape after a run started");
  return SB_OK;
}

/* Owned gid ranges: contiguous blocks, balanced by neuron count. */
static int update_bounds(sb_net *net) {
  size_t *b = sb_realloc(net->bound, (size_t)(net->threads + 1) * sizeof *b);
  if (!b) return SB_ENOMEM;
  net->bound = b;
  for (int k = 0; k <= net->threads; k++) b[k] = net->n * (size_t)k / (size_t)net->threads;
  return SB_OK;
}

/* ---- up-front size checks ---- */

int sb_net_add_population(sb_net *net, const char *name, const sb_neuron_type *type, size_t n, int *pop) {
  int rc;
  if ((rc = check_building(net))) return rc;
  if (!name || !*name) SB_ERROR(SB_EINVAL, "population name must not be empty");
  /* the name becomes an HDF5 group (/spikes/NAME, /report/NAME_var): no path syntax */
  if (strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
    SB_ERROR(SB_EINVAL, "population '%s': a name must not contain '/' or be '.' or '..'", name);
  if (sb_net_find_population(net, name) >= 0) SB_ERROR(SB_EINVAL, "population '%s' defined twice", name);
  if (!type) SB_ERROR(SB_EINVAL, "population '%s': no neuron model", name);
  if (n == 0 || n > UINT32_MAX) SB_ERROR(SB_EINVAL, "population '%s': n must be in [1, 2^32) (got %zu)", name, n);
  if (net->n + n > UINT32_MAX) SB_ERROR(SB_EINVAL, "population '%s': more than 2^32 neurons in total", name);
  if (net->n_projs) SB_ERROR(SB_EINVAL, "population '%s': add populations before projections", name);
  {   /* refuse what cannot fit before allocating (lower bound: state, its reset copy, run-time arrays) */
    double need = (double)n * (double)(2 * type->state_size + SB_NEURON_RUNTIME_BYTES);
    for (int i = 0; i < net->n_pops; i++)
      need += (double)net->pops[i].n * (double)(2 * net->pops[i].type->state_size + SB_NEURON_RUNTIME_BYTES);
    const char *what;
    double have = (double)sb_mem_limit(&what);
    if (need > have)
      SB_ERROR(SB_EINVAL, "n: %zu neurons (population '%s') need at least %.3g GB (%zu bytes each with the run-time "
               "arrays, all populations so far included), more than the %.3g GB of %s", n, name, need / 1e9,
               2 * type->state_size + SB_NEURON_RUNTIME_BYTES, have / 1e9, what);
  }
  sb_pop *pp = sb_realloc(net->pops, (size_t)(net->n_pops + 1) * sizeof *pp);
  if (!pp) return SB_ENOMEM;
  net->pops = pp;
  sb_pop *p = &pp[net->n_pops];
  memset(p, 0, sizeof *p);
  p->ds_t = p->ds_id = -1;
  p->name = sb_strdup(name);
  p->params = sb_malloc(type->param_size);
  p->derived = sb_malloc(type->derived_size ? type->derived_size : 1);
  p->state = sb_malloc(n * type->state_size);
  if (!p->name || !p->params || !p->derived || !p->state) {
    sb_free(p->name); sb_free(p->params); sb_free(p->derived); sb_free(p->state);
    return SB_ENOMEM;
  }
  p->type = type;
  p->n = n;
  p->first = net->n;
  p->rec_spikes = 1;
  sb_neuron_defaults(type, p->params);
  type->derive(p->params, p->derived);
  for (size_t i = 0; i < n; i++) type->init(p->params, p->derived, p->state + i * type->state_size);
  net->n += n;
  net->n_pops++;
  if ((rc = update_bounds(net))) return rc;
  if (pop) *pop = net->n_pops - 1;
  return SB_OK;
}

int sb_net_find_population(const sb_net *net, const char *name) {
  for (int i = 0; i < net->n_pops; i++)
    if (strcmp(net->pops[i].name, name) == 0) return i;
  return -1;
}
size_t sb_net_pop_size(const sb_net *net, int pop) { return net->pops[pop].n; }
size_t sb_net_pop_first(const sb_net *net, int pop) { return net->pops[pop].first; }
const char *sb_net_pop_name(const sb_net *net, int pop) { return net->pops[pop].name; }
const sb_neuron_type *sb_net_pop_type(const sb_net *net, int pop) { return net->pops[pop].type; }
int sb_net_n_populations(const sb_net *net) { return net->n_pops; }
int sb_net_n_projections(const sb_net *net) { return net->n_projs; }
double sb_net_time(const sb_net *net) { return net->t; }

/* After a parameter or state change between runs, wake every neuron of the population in the
 * next window (their lazy-update bounds were computed with the old values). */
static void wake_pop(sb_net *net, const sb_pop *p) {
  if (!net->prepared) return;
  for (size_t i = 0; i < p->n; i++) net->t_safe[p->first + i] = net->ev_due[p->first + i] = -INFINITY;
}

/* Re-initialise the state of neurons whose parameters changed (before any run). */
static void reinit_state(sb_pop *p, size_t i) {
  p->type->init(p->params + i * p->pstride, p->derived + i * p->dstride, p->state + i * p->type->state_size);
}

int sb_net_set_param(sb_net *net, int pop, const char *key, double value) {
  int rc;
  if ((rc = check_pop(net, pop))) return rc;
  sb_pop *p = &net->pops[pop];
  const sb_neuron_type *T = p->type;
  size_t np = p->pstride ? p->n : 1;
  char *tmp = sb_malloc(T->param_size);
  if (!tmp) return SB_ENOMEM;
  for (size_t i = 0; i < np; i++) {   /* validate every block on a copy first */
    memcpy(tmp, p->params + i * p->pstride, T->param_size);
    if ((rc = sb_neuron_set_param(T, tmp, key, value)) || (rc = T->validate(tmp))) {
      sb_free(tmp);
      return rc;
    }
  }
  sb_free(tmp);
  for (size_t i = 0; i < np; i++) {
    sb_neuron_set_param(T, p->params + i * p->pstride, key, value);
    T->derive(p->params + i * p->pstride, p->derived + i * p->dstride);
  }
  if (!net->prepared)
    for (size_t i = 0; i < p->n; i++) reinit_state(p, i);
  wake_pop(net, p);
  return SB_OK;
}

int sb_net_set_param_array(sb_net *net, int pop, const char *key, const double *values) {
  int rc;
  if ((rc = check_pop(net, pop))) return rc;
  sb_pop *p = &net->pops[pop];
  const sb_neuron_type *T = p->type;
  if (!p->pstride) {   /* expand to per-neuron blocks */
    char *pa = sb_malloc(p->n * T->param_size);
    char *da = sb_malloc(p->n * (T->derived_size ? T->derived_size : 1));
    if (!pa || !da) {
      sb_free(pa); sb_free(da);
      return SB_ENOMEM;
    }
    size_t ds = T->derived_size ? T->derived_size : 1;
    for (size_t i = 0; i < p->n; i++) {
      memcpy(pa + i * T->param_size, p->params, T->param_size);
      memcpy(da + i * ds, p->derived, ds);
    }
    sb_free(p->params); sb_free(p->derived);
    p->params = pa; p->derived = da;
    p->pstride = T->param_size; p->dstride = ds;
  }
  char *tmp = sb_malloc(T->param_size);
  if (!tmp) return SB_ENOMEM;
  for (size_t i = 0; i < p->n; i++) {
    memcpy(tmp, p->params + i * p->pstride, T->param_size);
    if ((rc = sb_neuron_set_param(T, tmp, key, values[i])) || (rc = T->validate(tmp))) {
      sb_free(tmp);
      return sb_error_prefix_(rc, "neuron %zu", i);
    }
  }
  sb_free(tmp);
  for (size_t i = 0; i < p->n; i++) {
    sb_neuron_set_param(T, p->params + i * p->pstride, key, values[i]);
    T->derive(p->params + i * p->pstride, p->derived + i * p->dstride);
    if (!net->prepared) reinit_state(p, i);
  }
  wake_pop(net, p);
  return SB_OK;
}

/* The recordable `var` of p's model (*off: its offset in the state). */
static int find_var(const sb_pop *p, const char *var, size_t *off, const sb_recordable **rec) {
  int r = sb_neuron_recordable(p->type, var);
  if (r < 0) {
    char names[256] = "";
    for (int i = 0; p->type->recordables[i].name; i++) {
      if (names[0]) strncat(names, ", ", sizeof names - strlen(names) - 1);
      strncat(names, p->type->recordables[i].name, sizeof names - strlen(names) - 1);
    }
    SB_ERROR(SB_EINVAL, "%s: not a state variable of %s (expected one of %s)", var, p->type->name, names);
  }
  *off = p->type->recordables[r].offset;
  if (rec) *rec = &p->type->recordables[r];
  return SB_OK;
}

int sb_net_set_state(sb_net *net, int pop, const char *var, const double *values) {
  int rc;
  size_t off = 0;
  const sb_recordable *rec = NULL;
  if ((rc = check_pop(net, pop)) || (rc = find_var(&net->pops[pop], var, &off, &rec))) return rc;
  sb_pop *p = &net->pops[pop];
  /* a conductance (nS: iaf_cond_exp's g_ex, g_in) is >= 0, and within what the integration steps
   * through (sb_neuron_cond_check, which would otherwise refuse it only when the run starts) */
  int cond = !strcmp(rec->unit, "nS");
  for (size_t i = 0; i < p->n; i++) {
    if (!isfinite(values[i])) SB_ERROR(SB_EINVAL, "%s: neuron %zu: must be finite (got %g)", var, i, values[i]);
    if (cond && !(values[i] >= 0 && values[i] <= SB_COND_G_MAX))
      SB_ERROR(SB_EINVAL, "%s: neuron %zu: a conductance must be in [0, %g] nS (got %.17g)", var, i, SB_COND_G_MAX, values[i]);
  }
  for (size_t i = 0; i < p->n; i++) memcpy(p->state + i * p->type->state_size + off, &values[i], sizeof(double));
  wake_pop(net, p);
  return SB_OK;
}

int sb_net_get_state(const sb_net *net, int pop, const char *var, double *values) {
  int rc;
  size_t off = 0;
  if ((rc = check_pop(net, pop)) || (rc = find_var(&net->pops[pop], var, &off, NULL))) return rc;
  const sb_pop *p = &net->pops[pop];
  for (size_t i = 0; i < p->n; i++) memcpy(&values[i], p->state + i * p->type->state_size + off, sizeof(double));
  return SB_OK;
}

/* ---- distributions ---- */

/* A standard normal variate conditioned on [lo, hi] (lo < hi), exact for any interval, however far
 * in a tail: Robert 1995 (Stat. Comput. 5:121, "Simulation of truncated normal variables"). A
 * uniform proposal on a narrow interval, a translated exponential (rate alpha) in a tail, each
 * accepted with the ratio of the densities to its bound. */
static double trunc_std_normal(double lo, double hi, gsl_rng *r) {
  if (hi <= 0) return -trunc_std_normal(-hi, -lo, r);
  /* beyond 1e150 sd the mass lies within 1/lo of lo, below lo's rounding (and lo * lo overflows) */
  if (lo > 1e150) return lo;
  if (lo < 0) {   /* holds 0 */
    if (hi - lo > 1.0)   /* at least 38% of the mass: plain rejection */
      for (;;) {
        double x = gsl_ran_gaussian_ziggurat(r, 1.0);
        if (x >= lo && x <= hi) return x;
      }
    for (;;) {   /* uniform proposal, density bound at 0 */
      double x = lo + (hi - lo) * gsl_rng_uniform(r);
      if (gsl_rng_uniform(r) <= exp(-0.5 * x * x)) return x;
    }
  }
  double alpha = 0.5 * (lo + sqrt(lo * lo + 4.0));
  if (alpha * (hi - lo) < 1.0)
    for (;;) {   /* narrow: uniform proposal, density bound at lo */
      double x = lo + (hi - lo) * gsl_rng_uniform(r);
      if (gsl_rng_uniform(r) <= exp(0.5 * (lo - x) * (lo + x))) return x;
    }
  for (;;) {   /* tail: lo + Exp(alpha) */
    double x = lo + gsl_ran_exponential(r, 1.0 / alpha);
    if (x <= hi && gsl_rng_uniform(r) <= exp(-0.5 * (x - alpha) * (x - alpha))) return x;
  }
}

double sb_dist_draw(const sb_dist *d, gsl_rng *r) {
  switch (d->kind) {
    case SB_DIST_UNIFORM: return gsl_ran_flat(r, d->a, d->b);
    case SB_DIST_NORMAL: return d->a + gsl_ran_gaussian_ziggurat(r, d->b);
    case SB_DIST_NORMAL_CLIPPED: {
      /* redraw (NEST); after 100 misses (less than ~5% of the mass inside) the exact sampler of the
       * truncated normal instead: either way the value has the truncated distribution. It returned
       * the nearer bound after 1000 misses: [3, 4] sd gave 27% of the values exactly 3. */
      for (int i = 0; i < 100; i++) {
        double x = d->a + gsl_ran_gaussian_ziggurat(r, d->b);
        if (x >= d->c && x <= d->d) return x;
      }
      if (!(d->b > 0)) return d->a;   /* sb_dist_check: inside [min, max] */
      double x = d->a + d->b * trunc_std_normal((d->c - d->a) / d->b, (d->d - d->a) / d->b, r);
      return x < d->c ? d->c : x > d->d ? d->d : x;   /* the scaling's rounding */
    }
    case SB_DIST_LOGNORMAL: return gsl_ran_lognormal(r, d->a, d->b);
    default: return d->a;
  }
}

int sb_dist_check(const sb_dist *d) {
  switch (d->kind) {
    case SB_DIST_CONST:
      if (!isfinite(d->a)) SB_ERROR(SB_EINVAL, "must be finite (got %g)", d->a);
      return SB_OK;
    case SB_DIST_UNIFORM:
      if (!(d->a < d->b) || !isfinite(d->a) || !isfinite(d->b))
        SB_ERROR(SB_EINVAL, "max: must be > min = %g (got %g)", d->a, d->b);
      return SB_OK;
    case SB_DIST_NORMAL:
    case SB_DIST_LOGNORMAL:
      if (!(d->b >= 0) || !isfinite(d->a) || !isfinite(d->b))
        SB_ERROR(SB_EINVAL, "%s: must be >= 0 (got %g)", d->kind == SB_DIST_NORMAL ? "std" : "sigma", d->b);
      return SB_OK;
    case SB_DIST_NORMAL_CLIPPED:
      if (!(d->b >= 0) || !isfinite(d->b)) SB_ERROR(SB_EINVAL, "std: must be >= 0 (got %g)", d->b);
      if (!isfinite(d->a)) SB_ERROR(SB_EINVAL, "mean: must be finite (got %g)", d->a);
      if (!(d->c < d->d) || !isfinite(d->c) || !isfinite(d->d))
        SB_ERROR(SB_EINVAL, "max: must be > min = %g (got %g)", d->c, d->d);
      if (d->b == 0 && !(d->a >= d->c && d->a <= d->d))
        SB_ERROR(SB_EINVAL, "mean: with std 0 must be inside [min, max] = [%g, %g] (got %g)", d->c, d->d, d->a);
      return SB_OK;
    default: SB_ERROR(SB_EINVAL, "unknown distribution kind %d", d->kind);
  }
}

/* ---- projections ---- */

static int new_proj(sb_net *net, int src, int tgt, int kind, sb_proj **out) {
  int rc;
  if ((rc = check_building(net)) || (rc = check_pop(net, src)) || (rc = check_pop(net, tgt))) return rc;
  sb_proj *pp = sb_realloc(net->projs, (size_t)(net->n_projs + 1) * sizeof *pp);
  if (!pp) return SB_ENOMEM;
  net->projs = pp;
  sb_proj *p = &pp[net->n_projs];
  memset(p, 0, sizeof *p);
  p->kind = kind;
  p->src = src;
  p->tgt = tgt;
  p->dmin = INFINITY;
  p->dmax = 0;
  *out = p;
  return SB_OK;
}

/* A CSR partition's arrays (either target width). */
static void csr_free(sb_csr *c) {
  sb_free(c->row); sb_free(c->tgt); sb_free(c->tgt16); sb_free(c->w); sb_free(c->d);
}

static void free_proj_storage(const sb_net *net, sb_proj *pr) {
  if (pr->part) {
    for (int k = 0; k < net->threads; k++) {
      csr_free(&pr->part[k]);
    }
    sb_free(pr->part);
  }
  sb_free(pr->wt); sb_free(pr->d1); sb_free(pr->kernel);
  sb_plastic_free_(pr);   /* plastic projections (sim/plastic.c) */
  pr->part = NULL;
  pr->wt = pr->d1 = pr->kernel = NULL;
}

static int commit_proj(sb_net *net, sb_proj *p, int *proj) {
  sb_pop *s = &net->pops[p->src];
  int *o = sb_realloc(s->out, (size_t)(s->n_out + 1) * sizeof *o);
  if (!o) {
    free_proj_storage(net, p);
    return SB_ENOMEM;
  }
  s->out = o;
  o[s->n_out++] = net->n_projs;
  if (proj) *proj = net->n_projs;
  net->n_projs++;
  return SB_OK;
}

static int check_delay(const sb_net *net, double d) {
  if (!(d >= net->min_delay) || !isfinite(d))
    SB_ERROR(SB_EINVAL, "delay: must be >= min_delay = %g ms (got %g)", net->min_delay, d);
  if (!isfinite((float)d))   /* as drawn ones, which are stored as float32 */
    SB_ERROR(SB_EINVAL, "delay: %.9g ms is beyond the range of the stored float32 (<= 3.40282347e38 ms)", d);
  return SB_OK;
}

static double apply_receptor(int receptor, double w) {
  if (receptor == SB_RECEPTOR_EX) return fabs(w);
  if (receptor == SB_RECEPTOR_IN) return -fabs(w);
  return w;
}

/* Temporary synapse list of one partition, target-major. */
typedef struct {
  uint32_t *src, *tgt;
  float *w, *d;
  size_t n, cap;
  int rc;
} synbuf;

static void sb_push(synbuf *b, uint32_t s, uint32_t t, double w, double d, int keep_w, int keep_d) {
  if (b->rc) return;
  if (b->n == b->cap) {
    size_t cap = b->cap ? 2 * b->cap : 1024;
    uint32_t *ns = sb_realloc(b->src, cap * sizeof *ns);
    if (ns) b->src = ns;
    uint32_t *nt = sb_realloc(b->tgt, cap * sizeof *nt);
    if (nt) b->tgt = nt;
    float *nw = keep_w ? sb_realloc(b->w, cap * sizeof *nw) : NULL;
    if (nw) b->w = nw;
    float *nd = keep_d ? sb_realloc(b->d, cap * sizeof *nd) : NULL;
    if (nd) b->d = nd;
    if (!ns || !nt || (keep_w && !nw) || (keep_d && !nd)) {
      b->rc = SB_ENOMEM;
      return;
    }
    b->cap = cap;
  }
  b->src[b->n] = s;
  b->tgt[b->n] = t;
  if (keep_w) b->w[b->n] = (float)w;
  if (keep_d) b->d[b->n] = (float)d;
  b->n++;
}

static uint64_t key(int proj, uint64_t id, int by_source) {
  return ((uint64_t)(unsigned)proj << 40) ^ id ^ (by_source ? (1ULL << 39) : 0);
}

/* A weight as stored (float32) into population `tgt`: SB_EINVAL when it is beyond float32 (1e39
 * became inf) or beyond what the target model integrates (sb_neuron_weight_max: 1e7 nS into
 * iaf_cond_exp, met only at its first arrival before). The message starts with the value; the
 * caller prefixes what the weight is ("weights[3]: ", "weight: drawn weight "). */
/* weight_check's error for a drawn weight: "weight: drawn weight <its message><suffix>". */
static int drawn_weight_error(int rc, const char *suffix) {
  char msg[512];
  snprintf(msg, sizeof msg, "%s", sb_last_error());   /* a copy: the buffer is rewritten */
  return sb_error_set_(__FILE__, __LINE__, rc, "weight: drawn weight %s%s", msg, suffix);
}

static int weight_check(const sb_net *net, int tgt, double w) {
  if (!isfinite((float)w)) SB_ERROR(SB_EINVAL, "%.9g is beyond the range of the stored float32 (|w| <= 3.40282347e38)", w);
  if (!(fabs(w) <= sb_neuron_weight_max(net->pops[tgt].type)))
    SB_ERROR(SB_EINVAL, "%g nS into %s is beyond the %g nS that conductance-based models integrate", w,
             net->pops[tgt].type->name, SB_COND_G_MAX);
  return SB_OK;
}

typedef struct {
  sb_net *net;
  const sb_conn_spec *c;
  const sb_syn_spec *y;
  int proj, same, keep_w, keep_d;
  size_t ns, nt;
  const uint32_t *total_counts;
  double w_max;   /* sb_neuron_weight_max of the target model (a name compare: once, not per synapse) */
} conn_ctx;

/* Draw weight and delay (from the stream r) and push the synapse if the target is owned. */
static void add_syn(const conn_ctx *x, synbuf *b, gsl_rng *r, uint32_t s, uint32_t t, int owned, double *dmin,
                    double *dmax, int *bad, double *bad_d) {
  double w = x->keep_w ? sb_dist_draw(&x->y->weight, r) : 0;
  double d = x->keep_d ? sb_dist_draw(&x->y->delay, r) : x->y->delay.a;
  if (!owned) return;
  w = apply_receptor(x->y->receptor, w);
  if (x->keep_w && !*bad && (!isfinite((float)w) || !(fabs(w) <= x->w_max))) {   /* weight_check's test; reported */
    *bad = 2;                                                                       /* after the threads */
    *bad_d = w;
  }
  if (x->keep_d) {
    double df = (double)(float)d;
    if (!(df >= x->net->min_delay) || !isfinite(df)) {   /* stored as float32: 1e39 became inf */
      *bad = df == INFINITY ? 3 : 1;
      *bad_d = d;
    }
    if (df < *dmin) *dmin = df;
    if (df > *dmax) *dmax = df;
  }
  sb_push(b, s, t, w, d, x->keep_w, x->keep_d);
}

/* Generate the synapses whose targets are in [lo, hi) (target-pop local), deterministically. */
static int gen_partition(const conn_ctx *x, uint32_t lo, uint32_t hi, synbuf *b, double *dmin, double *dmax,
                         int *bad, double *bad_d) {
  const sb_conn_spec *c = x->c;
  gsl_rng *r = sb_rng_alloc(0, 0, 0), *rw = sb_rng_alloc(0, 0, 0);
  size_t *pick = NULL;
  if (!r || !rw) {
    if (r) gsl_rng_free(r);
    if (rw) gsl_rng_free(rw);
    return SB_ENOMEM;
  }
  uint64_t seed = x->net->seed;
  size_t ns = x->ns;
  switch (c->rule) {
    case SB_RULE_ALL_TO_ALL:
    case SB_RULE_PAIRWISE_BERNOULLI:
      for (uint32_t t = lo; t < hi; t++) {
        sb_rng_reseed(r, seed, SB_RNG_CONNECT, key(x->proj, t, 0));
        sb_rng_reseed(rw, seed, SB_RNG_WEIGHT, key(x->proj, t, 0));
        for (uint32_t s = 0; s < ns; s++) {
          if (x->same && s == t && !c->allow_autapses) continue;
          if (c->rule == SB_RULE_PAIRWISE_BERNOULLI && !(gsl_rng_uniform(r) < c->p)) continue;
          add_syn(x, b, rw, s, t, 1, dmin, dmax, bad, bad_d);
        }
      }
      break;
    case SB_RULE_FIXED_INDEGREE:
    case SB_RULE_FIXED_TOTAL_NUMBER: {
      size_t cand = x->same && !c->allow_autapses ? ns - 1 : ns;
      for (uint32_t t = lo; t < hi; t++) {
        size_t k = c->rule == SB_RULE_FIXED_INDEGREE ? c->indegree : x->total_counts[t];
        sb_rng_reseed(r, seed, SB_RNG_CONNECT, key(x->proj, t, 0));
        sb_rng_reseed(rw, seed, SB_RNG_WEIGHT, key(x->proj, t, 0));
        if (c->allow_multapses) {
          for (size_t j = 0; j < k; j++) {
            uint32_t s = (uint32_t)gsl_rng_uniform_int(r, cand);
            if (x->same && !c->allow_autapses && s >= t) s++;
            add_syn(x, b, rw, s, t, 1, dmin, dmax, bad, bad_d);
          }
        } else {
          if (!pick) {
            pick = sb_malloc((cand + 1) * 2 * sizeof *pick);
            if (!pick) { b->rc = SB_ENOMEM; break; }
            for (size_t j = 0; j < cand; j++) pick[cand + 1 + j] = j;
          }
          gsl_ran_choose(r, pick, k, pick + cand + 1, cand, sizeof *pick);   /* ordered sample */
          for (size_t j = 0; j < k; j++) {
            uint32_t s = (uint32_t)pick[j];
            if (x->same && !c->allow_autapses && s >= t) s++;
            add_syn(x, b, rw, s, t, 1, dmin, dmax, bad, bad_d);
          }
        }
      }
      break;
    }
    case SB_RULE_FIXED_OUTDEGREE: {
      size_t nt = x->nt;
      for (uint32_t s = 0; s < ns; s++) {
        sb_rng_reseed(r, seed, SB_RNG_CONNECT, key(x->proj, s, 1));
        sb_rng_reseed(rw, seed, SB_RNG_WEIGHT, key(x->proj, s, 1));
        size_t cand = x->same && !c->allow_autapses ? nt - 1 : nt;
        if (!c->allow_multapses && !pick) {
          pick = sb_malloc((cand + 1) * 2 * sizeof *pick);
          if (!pick) { b->rc = SB_ENOMEM; break; }
          for (size_t j = 0; j < cand; j++) pick[cand + 1 + j] = j;
        }
        if (!c->allow_multapses) gsl_ran_choose(r, pick, c->outdegree, pick + cand + 1, cand, sizeof *pick);
        for (size_t j = 0; j < c->outdegree; j++) {
          uint32_t t = c->allow_multapses ? (uint32_t)gsl_rng_uniform_int(r, cand) : (uint32_t)pick[j];
          if (x->same && !c->allow_autapses && t >= s) t++;
          add_syn(x, b, rw, s, t, t >= lo && t < hi, dmin, dmax, bad, bad_d);
        }
      }
      break;
    }
    case SB_RULE_EXPLICIT:
      sb_rng_reseed(rw, seed, SB_RNG_WEIGHT, key(x->proj, 0, 0));
      for (size_t i = 0; i < c->n; i++) {
        uint32_t s = c->sources[i], t = c->targets[i];
        int own = t >= lo && t < hi;
        if (c->weights || c->delays) {
          double w = c->weights ? c->weights[i] : sb_dist_draw(&x->y->weight, rw);
          double d = c->delays ? c->delays[i] : x->keep_d ? sb_dist_draw(&x->y->delay, rw) : x->y->delay.a;
          if (!own) continue;
          if (!(d >= x->net->min_delay)) { *bad = 1; *bad_d = d; }
          else if (x->keep_d && !isfinite((float)d)) { *bad = 3; *bad_d = d; }
          if (x->keep_d) {
            if (d < *dmin) *dmin = d;
            if (d > *dmax) *dmax = d;
          }
          sb_push(b, s, t, apply_receptor(x->y->receptor, w), d, x->keep_w, x->keep_d);
        } else {
          add_syn(x, b, rw, s, t, own, dmin, dmax, bad, bad_d);
        }
      }
      break;
    default: break;
  }
  sb_free(pick);
  gsl_rng_free(r);
  gsl_rng_free(rw);
  return b->rc;
}

/* Counting sort of a partition's synapses by source into CSR (stable: target-major order kept). */
static int to_csr(const synbuf *b, size_t ns, size_t nt, sb_csr *csr) {
  memset(csr, 0, sizeof *csr);
  if (b->n > UINT32_MAX) SB_ERROR(SB_EINVAL, "more than 2^32 synapses in one thread partition");
  csr->row = sb_calloc(ns + 1, sizeof *csr->row);
  if (sb_tgt_bytes_(nt) == 2) csr->tgt16 = sb_malloc((b->n ? b->n : 1) * sizeof *csr->tgt16);
  else csr->tgt = sb_malloc((b->n ? b->n : 1) * sizeof *csr->tgt);
  if (b->w) csr->w = sb_malloc((b->n ? b->n : 1) * sizeof *csr->w);
  if (b->d) csr->d = sb_malloc((b->n ? b->n : 1) * sizeof *csr->d);
  if (!csr->row || (!csr->tgt && !csr->tgt16) || (b->w && !csr->w) || (b->d && !csr->d)) return SB_ENOMEM;
  for (size_t i = 0; i < b->n; i++) csr->row[b->src[i] + 1]++;
  for (size_t s = 0; s < ns; s++) csr->row[s + 1] += csr->row[s];
  uint32_t *pos = sb_malloc((ns ? ns : 1) * sizeof *pos);
  if (!pos) return SB_ENOMEM;
  memcpy(pos, csr->row, ns * sizeof *pos);
  for (size_t i = 0; i < b->n; i++) {
    uint32_t j = pos[b->src[i]]++;
    if (csr->tgt16) csr->tgt16[j] = (uint16_t)b->tgt[i];   /* < nt <= 65536 */
    else csr->tgt[j] = b->tgt[i];
    if (csr->w) csr->w[j] = b->w[i];
    if (csr->d) csr->d[j] = b->d[i];
  }
  sb_free(pos);
  csr->nnz = b->n;
  return SB_OK;
}

static int conn_errorf(int rc) { return rc; }

double sb_net_held_bytes_(const sb_net *net) {
  double held = 0;
  for (int i = 0; i < net->n_pops; i++)
    held += (double)net->pops[i].n * (double)(2 * net->pops[i].type->state_size + SB_NEURON_RUNTIME_BYTES);
  for (int i = 0; i < net->n_projs; i++) held += (double)net->projs[i].bytes;
  return held;
}

void sb_net_drop_last_proj_(sb_net *net) {
  sb_proj *p = &net->projs[net->n_projs - 1];
  net->pops[p->src].n_out--;   /* commit_proj appended it last */
  if (p->kind == SB_PROJ_PLASTIC) net->n_plastic--;
  free_proj_storage(net, p);
  net->n_projs--;
}

/* Refuse a projection whose synapses cannot fit, before generating any: the expected count
 * from the rule, times the smallest construction footprint (the target-major list, 8 bytes a
 * synapse plus weight and delay when they vary, and the CSR copy, 2 or 4 bytes plus those; `extra`
 * bytes more for a plastic projection), plus
 * what the network holds already, against the memory this process may use (sb_mem_limit); and at most 2^32 - 1 synapses per
 * thread partition (32-bit CSR offsets). The message starts with the rule's field. */
static int check_size(const sb_net *net, int tgt, const sb_conn_spec *c, const sb_syn_spec *y, size_t ns, size_t nt,
                      size_t cand_s, double extra) {
  double syn = 0;
  const char *field = "rule";
  switch (c->rule) {
    case SB_RULE_ALL_TO_ALL: syn = (double)cand_s * (double)nt; break;
    case SB_RULE_ONE_TO_ONE: syn = (double)nt; break;
    case SB_RULE_PAIRWISE_BERNOULLI: syn = c->p * (double)ns * (double)nt; field = "p"; break;
    case SB_RULE_FIXED_INDEGREE: syn = (double)c->indegree * (double)nt; field = "indegree"; break;
    case SB_RULE_FIXED_OUTDEGREE: syn = (double)c->outdegree * (double)ns; field = "outdegree"; break;
    case SB_RULE_FIXED_TOTAL_NUMBER: syn = (double)c->N; field = "N"; break;
    case SB_RULE_EXPLICIT: syn = (double)c->n; field = "sources"; break;
    default: break;
  }
  int keep_w = y->weight.kind != SB_DIST_CONST || (c->rule == SB_RULE_EXPLICIT && c->weights);
  int keep_d = y->delay.kind != SB_DIST_CONST || (c->rule == SB_RULE_EXPLICIT && c->delays);
  /* a plastic projection keeps 32-bit targets */
  double per = (double)(8 + (extra > 0 ? 4 : sb_tgt_bytes_(nt)) + 2 * (4 * keep_w + 4 * keep_d)) + extra;
  double held = sb_net_held_bytes_(net);
  const char *what;
  double have = (double)sb_mem_limit(&what);
  /* under MPI this rank builds only its own partitions' synapses */
  double share = (double)(net->p_hi - net->p_lo) / (double)net->threads;
  if (syn * share * per + held > have)
    SB_ERROR(SB_EINVAL, "%s: %.4g synapses (%zu -> %zu neurons) need at least %.3g GB to build (%g bytes each) on top of "
             "the %.3g GB the network holds, more than the %.3g GB of %s", field, syn, ns, nt,
             syn * share * per / 1e9, per, held / 1e9, have / 1e9, what);
  /* the partition owning most of the targets (synapses are stored with their targets' owner) */
  size_t first = net->pops[tgt].first, most = 0;
  for (int k = 0; k < net->threads; k++) {
    size_t lo = net->bound[k] > first ? net->bound[k] : first, hi = net->bound[k + 1] < first + nt ? net->bound[k + 1] : first + nt;
    if (hi > lo && hi - lo > most) most = hi - lo;
  }
  double syn_part = nt ? syn * (double)most / (double)nt : 0;
  if (syn_part > (double)UINT32_MAX)
    SB_ERROR(SB_EINVAL, "%s: %.4g synapses, %.4g of them in one thread partition (%zu of the %zu targets), more than the "
             "2^32 - 1 a partition holds (more threads split them)", field, syn, syn_part, most, nt);
  return SB_OK;
}

int sb_net_connect(sb_net *net, int src, int tgt, const sb_conn_spec *c, const sb_syn_spec *y, int *proj) {
  return sb_net_connect_sized_(net, src, tgt, c, y, 0.0, proj);
}

int sb_net_connect_sized_(sb_net *net, int src, int tgt, const sb_conn_spec *c, const sb_syn_spec *y, double extra,
                          int *proj) {
  int rc;
  if ((rc = check_pop(net, src)) || (rc = check_pop(net, tgt)) || (rc = check_building(net))) return rc;
  if ((rc = sb_dist_check(&y->weight))) return sb_error_prefix_(rc, "weight");
  if ((rc = sb_dist_check(&y->delay))) return sb_error_prefix_(rc, "delay");
  if (y->delay.kind == SB_DIST_CONST && (rc = check_delay(net, y->delay.a))) return rc;
  /* a constant weight obeys the same bounds as drawn and listed ones (1e40 ran into -inf states) */
  if (y->weight.kind == SB_DIST_CONST && (rc = weight_check(net, tgt, y->weight.a))) return sb_error_prefix_(rc, "weight");
  size_t ns = net->pops[src].n, nt = net->pops[tgt].n;
  int same = src == tgt;
  size_t cand_s = same && !c->allow_autapses ? ns - 1 : ns;
  size_t cand_t = same && !c->allow_autapses ? nt - 1 : nt;
  switch (c->rule) {
    case SB_RULE_ALL_TO_ALL: break;
    case SB_RULE_ONE_TO_ONE:
      if (ns != nt) SB_ERROR(SB_EINVAL, "rule: one_to_one needs equal population sizes (got %zu -> %zu)", ns, nt);
      break;
    case SB_RULE_PAIRWISE_BERNOULLI:
      if (!(c->p >= 0 && c->p <= 1)) SB_ERROR(SB_EINVAL, "p: must be in [0, 1] (got %g)", c->p);
      break;
    case SB_RULE_FIXED_INDEGREE:
      if (!c->allow_multapses && c->indegree > cand_s)
        SB_ERROR(SB_EINVAL, "indegree: must be <= %zu sources without multapses (got %zu)", cand_s, c->indegree);
      if (cand_s == 0 && c->indegree) SB_ERROR(SB_EINVAL, "indegree: no candidate sources");
      break;
    case SB_RULE_FIXED_OUTDEGREE:
      if (!c->allow_multapses && c->outdegree > cand_t)
        SB_ERROR(SB_EINVAL, "outdegree: must be <= %zu targets without multapses (got %zu)", cand_t, c->outdegree);
      if (cand_t == 0 && c->outdegree) SB_ERROR(SB_EINVAL, "outdegree: no candidate targets");
      break;
    case SB_RULE_FIXED_TOTAL_NUMBER:
      if (!c->allow_multapses)   /* NEST 3 refuses it too (NotImplemented) */
        SB_ERROR(SB_EUNSUPPORTED, "allow_multapses: fixed_total_number draws its N pairs with replacement and "
                 "needs allow_multapses = true (got false)");
      break;
    case SB_RULE_EXPLICIT:
      for (size_t i = 0; i < c->n; i++) {
        if (c->sources[i] >= ns) SB_ERROR(SB_EINVAL, "sources[%zu]: must be < %zu (got %u)", i, ns, c->sources[i]);
        if (c->targets[i] >= nt) SB_ERROR(SB_EINVAL, "targets[%zu]: must be < %zu (got %u)", i, nt, c->targets[i]);
        if (c->weights && (rc = weight_check(net, tgt, c->weights[i]))) return sb_error_prefix_(rc, "weights[%zu]", i);
        if (c->delays && (rc = check_delay(net, c->delays[i]))) return sb_error_prefix_(rc, "delays[%zu]", i);
      }
      break;
    default: SB_ERROR(SB_EINVAL, "rule: unknown rule %d", c->rule);
  }
  if ((rc = check_size(net, tgt, c, y, ns, nt, cand_s, extra))) return rc;
  sb_proj *p;
  if ((rc = new_proj(net, src, tgt, c->rule == SB_RULE_ONE_TO_ONE ? SB_PROJ_ONE_TO_ONE : SB_PROJ_SPARSE, &p))) return rc;
  int pid = net->n_projs;
  int keep_w = y->weight.kind != SB_DIST_CONST || (c->rule == SB_RULE_EXPLICIT && c->weights);
  int keep_d = y->delay.kind != SB_DIST_CONST || (c->rule == SB_RULE_EXPLICIT && c->delays);
  p->w_const = apply_receptor(y->receptor, y->weight.a);
  p->d_const = y->delay.a;
  if (!keep_d) p->dmin = p->dmax = y->delay.a;

  if (c->rule == SB_RULE_ONE_TO_ONE) {
    gsl_rng *rw = sb_rng_alloc(0, 0, 0);
    if (!rw) return SB_ENOMEM;
    if (keep_w) p->wt = sb_malloc(nt * sizeof *p->wt);
    if (keep_d) p->d1 = sb_malloc(nt * sizeof *p->d1);
    if ((keep_w && !p->wt) || (keep_d && !p->d1)) {
      gsl_rng_free(rw);
      sb_free(p->wt); sb_free(p->d1);
      return SB_ENOMEM;
    }
    for (size_t t = 0; t < nt; t++) {
      sb_rng_reseed(rw, net->seed, SB_RNG_WEIGHT, key(pid, t, 0));
      if (keep_w) {
        double w = apply_receptor(y->receptor, sb_dist_draw(&y->weight, rw));
        if ((rc = weight_check(net, tgt, w))) {
          gsl_rng_free(rw);
          sb_free(p->wt); sb_free(p->d1);
          char tt[48];
          snprintf(tt, sizeof tt, " (target %zu)", t);
          return drawn_weight_error(rc, tt);
        }
        p->wt[t] = (float)w;
      }
      if (keep_d) {
        double d = (double)(float)sb_dist_draw(&y->delay, rw);
        if ((rc = check_delay(net, d))) {
          gsl_rng_free(rw);
          sb_free(p->wt); sb_free(p->d1);
          return sb_error_prefix_(rc, "drawn for target %zu", t);
        }
        p->d1[t] = (float)d;
        if (d < p->dmin) p->dmin = d;
        if (d > p->dmax) p->dmax = d;
      }
    }
    gsl_rng_free(rw);
    p->nsyn = nt;
    p->bytes = (keep_w ? 4 : 0) * nt + (keep_d ? 4 : 0) * nt;
    return commit_proj(net, p, proj);
  }

  uint32_t *counts = NULL;
  if (c->rule == SB_RULE_FIXED_TOTAL_NUMBER) {   /* multinomial split of N over targets */
    counts = sb_malloc(nt * sizeof *counts);
    double *pr = sb_malloc(nt * sizeof *pr);
    gsl_rng *r = sb_rng_alloc(net->seed, SB_RNG_CONNECT, key(pid, UINT32_MAX, 1));
    if (!counts || !pr || !r) {
      sb_free(counts); sb_free(pr);
      if (r) gsl_rng_free(r);
      return SB_ENOMEM;
    }
    for (size_t t = 0; t < nt; t++) pr[t] = 1.0;
    unsigned int *cu = (unsigned int *)counts;
    gsl_ran_multinomial(r, nt, (unsigned int)c->N, pr, cu);
    sb_free(pr);
    gsl_rng_free(r);
  }
  conn_ctx x = {net, c, y, pid, same, keep_w, keep_d, ns, nt, counts, sb_neuron_weight_max(net->pops[tgt].type)};
  p->part = sb_calloc((size_t)net->threads, sizeof *p->part);
  if (!p->part) { sb_free(counts); return SB_ENOMEM; }
  size_t first = net->pops[tgt].first;
  int err = SB_OK, bad = 0;
  double bad_d = 0, dmin = p->dmin, dmax = p->dmax;
#pragma omp parallel for num_threads(net->p_hi - net->p_lo) schedule(static, 1) reduction(min : dmin) reduction(max : dmax)
  for (int k = net->p_lo; k < net->p_hi; k++) {   /* this rank's partitions (all without MPI) */
    size_t glo = net->bound[k], ghi = net->bound[k + 1];
    size_t lo = glo > first ? glo - first : 0, hi = ghi > first ? ghi - first : 0;
    if (lo > nt) lo = nt;
    if (hi > nt) hi = nt;
    synbuf b = {0};
    int lbad = 0;
    double lbad_d = 0, lmin = INFINITY, lmax = 0;
    int r2 = gen_partition(&x, (uint32_t)lo, (uint32_t)hi, &b, &lmin, &lmax, &lbad, &lbad_d);
    if (!r2) r2 = to_csr(&b, ns, nt, &p->part[k]);
    sb_free(b.src); sb_free(b.tgt); sb_free(b.w); sb_free(b.d);
    if (lmin < dmin) dmin = lmin;
    if (lmax > dmax) dmax = lmax;
#pragma omp critical(sb_connect)
    {
      if (r2 && !err) err = r2;
      if (lbad && !bad) { bad = lbad; bad_d = lbad_d; }
    }
  }
  sb_free(counts);
  sb_mpi_minmax_(net, &dmin, &dmax);   /* every rank needs the same window */
  p->dmin = dmin;
  p->dmax = dmax;
  size_t nsyn = 0, bytes = 0;
  for (int k = 0; k < net->threads; k++) {
    nsyn += p->part[k].nnz;
    bytes += (ns + 1) * 4 + p->part[k].nnz * (sb_tgt_bytes_(nt) + (keep_w ? 4 : 0) + (keep_d ? 4 : 0));
  }
  p->nsyn = nsyn;
  p->bytes = bytes;
  if (!err && bad == 1) err = SB_SET_ERROR(SB_EINVAL, "delay: drawn delay %g ms is below min_delay = %g ms", bad_d, net->min_delay);
  if (!err && bad == 3)
    err = SB_SET_ERROR(SB_EINVAL, "delay: delay %g ms is beyond the range of the stored float32 (<= 3.4e38 ms)", bad_d);
  if (!err && bad == 2) err = drawn_weight_error(weight_check(net, tgt, bad_d), "");
  else if (err == SB_ENOMEM) SB_SET_ERROR(SB_ENOMEM, "out of memory building a projection");
  if (err) {
    for (int k = 0; k < net->threads; k++) {
      csr_free(&p->part[k]);
    }
    sb_free(p->part);
    p->part = NULL;
    return conn_errorf(err);
  }
  return commit_proj(net, p, proj);
}

int sb_net_connect_dense(sb_net *net, int src, int tgt, const float *w, double delay, int *proj) {
  int rc;
  if ((rc = check_delay(net, delay))) return rc;
  sb_proj *p;
  if ((rc = new_proj(net, src, tgt, SB_PROJ_DENSE, &p))) return rc;
  size_t ns = net->pops[src].n, nt = net->pops[tgt].n;
  p->wt = sb_malloc(ns * nt * sizeof *p->wt);
  if (!p->wt) return SB_ENOMEM;
  size_t nz = 0;
  for (size_t t = 0; t < nt; t++)
    for (size_t s = 0; s < ns; s++) {
      if (!isfinite(w[t * ns + s])) {
        sb_free(p->wt);
        SB_ERROR(SB_EINVAL, "weight[%zu][%zu]: must be finite", t, s);
      }
      if ((rc = weight_check(net, tgt, w[t * ns + s]))) {
        sb_free(p->wt);
        return sb_error_prefix_(rc, "weight[%zu][%zu]", t, s);
      }
      p->wt[s * nt + t] = w[t * ns + s];
      nz += w[t * ns + s] != 0;
    }
  p->d_const = p->dmin = p->dmax = delay;
  p->nsyn = nz;
  p->bytes = ns * nt * sizeof(float);
  return commit_proj(net, p, proj);
}

int sb_net_connect_conv(sb_net *net, int src, int tgt, const sb_net_conv_shape *cs, const float *kernel, double delay,
                        int *proj) {
  int rc;
  if ((rc = check_delay(net, delay))) return rc;
  if (cs->C_in < 1 || cs->H < 1 || cs->W < 1 || cs->C_out < 1 || cs->KH < 1 || cs->KW < 1 || cs->stride < 1 || cs->pad < 0)
    SB_ERROR(SB_EINVAL, "conv: sizes must be >= 1 and pad >= 0");
  int OH = (cs->H + 2 * cs->pad - cs->KH) / cs->stride + 1, OW = (cs->W + 2 * cs->pad - cs->KW) / cs->stride + 1;
  if (OH < 1 || OW < 1) SB_ERROR(SB_EINVAL, "conv: kernel %dx%d larger than padded input %dx%d", cs->KH, cs->KW, cs->H, cs->W);
  if ((rc = check_pop(net, src)) || (rc = check_pop(net, tgt))) return rc;
  if (net->pops[src].n != (size_t)cs->C_in * (size_t)cs->H * (size_t)cs->W)
    SB_ERROR(SB_EINVAL, "conv: source population '%s' has %zu neurons, shape (%d, %d, %d) needs %d",
             net->pops[src].name, net->pops[src].n, cs->C_in, cs->H, cs->W, cs->C_in * cs->H * cs->W);
  if (net->pops[tgt].n != (size_t)cs->C_out * (size_t)OH * (size_t)OW)
    SB_ERROR(SB_EINVAL, "conv: target population '%s' has %zu neurons, shape (%d, %d, %d) needs %d",
             net->pops[tgt].name, net->pops[tgt].n, cs->C_out, OH, OW, cs->C_out * OH * OW);
  size_t nk = (size_t)cs->C_out * (size_t)cs->C_in * (size_t)cs->KH * (size_t)cs->KW;
  for (size_t i = 0; i < nk; i++)   /* as every other weight (the kernel was only met at run time) */
    if ((rc = weight_check(net, tgt, kernel[i]))) return sb_error_prefix_(rc, "kernel[%zu]", i);
  sb_proj *p;
  if ((rc = new_proj(net, src, tgt, SB_PROJ_CONV, &p))) return rc;
  p->kernel = sb_malloc(nk * sizeof *p->kernel);
  if (!p->kernel) return SB_ENOMEM;
  memcpy(p->kernel, kernel, nk * sizeof *p->kernel);
  p->cs = *cs;
  p->OH = OH;
  p->OW = OW;
  p->d_const = p->dmin = p->dmax = delay;
  /* synapses the kernel stands for (valid kernel positions over the output map) */
  size_t ns = 0;
  for (int oy = 0; oy < OH; oy++)
    for (int ky = 0; ky < cs->KH; ky++) {
      int y = oy * cs->stride - cs->pad + ky;
      if (y < 0 || y >= cs->H) continue;
      for (int ox = 0; ox < OW; ox++)
        for (int kx = 0; kx < cs->KW; kx++) {
          int xx = ox * cs->stride - cs->pad + kx;
          if (xx >= 0 && xx < cs->W) ns++;
        }
    }
  p->nsyn = ns * (size_t)cs->C_in * (size_t)cs->C_out;
  p->bytes = nk * sizeof(float);
  return commit_proj(net, p, proj);
}

int sb_net_proj_get(const sb_net *net, int proj, uint32_t **src, uint32_t **tgt, double **w, double **d, size_t *n) {
  if (proj < 0 || proj >= net->n_projs) SB_ERROR(SB_EINVAL, "projection index %d out of range", proj);
  const sb_proj *p = &net->projs[proj];
  if (p->kind == SB_PROJ_DENSE || p->kind == SB_PROJ_CONV)
    SB_ERROR(SB_EINVAL, "projection %d: dense and conv projections are not synapse lists", proj);
  size_t m = p->nsyn;
  *src = sb_malloc((m + 1) * sizeof **src);
  *tgt = sb_malloc((m + 1) * sizeof **tgt);
  *w = sb_malloc((m + 1) * sizeof **w);
  *d = sb_malloc((m + 1) * sizeof **d);
  if (!*src || !*tgt || !*w || !*d) {
    sb_free(*src); sb_free(*tgt); sb_free(*w); sb_free(*d);
    return SB_ENOMEM;
  }
  size_t q = 0;
  if (p->kind == SB_PROJ_ONE_TO_ONE) {
    for (size_t i = 0; i < m; i++, q++) {
      (*src)[q] = (*tgt)[q] = (uint32_t)i;
      (*w)[q] = p->wt ? (double)p->wt[i] : p->w_const;
      (*d)[q] = p->d1 ? (double)p->d1[i] : p->d_const;
    }
  } else {
    size_t ns = net->pops[p->src].n, nt = net->pops[p->tgt].n;
    size_t *cnt = sb_calloc(nt + 1, sizeof *cnt);
    if (!cnt) {
      sb_free(*src); sb_free(*tgt); sb_free(*w); sb_free(*d);
      return SB_ENOMEM;
    }
    /* counting sort by target; within a target, partitions then CSR order (stable) */
    for (int k = 0; k < net->threads; k++) {
      if (!p->part[k].row) continue;   /* another MPI rank's partition */
      for (size_t x = 0; x < p->part[k].nnz; x++) cnt[sb_csr_tgt_(&p->part[k], x) + 1]++;
    }
    for (size_t t = 0; t < nt; t++) cnt[t + 1] += cnt[t];
    for (int k = 0; k < net->threads; k++) {
      const sb_csr *c = &p->part[k];
      if (!c->row) continue;
      for (size_t s = 0; s < ns; s++)
        for (uint32_t x = c->row[s]; x < c->row[s + 1]; x++) {
          size_t j = cnt[sb_csr_tgt_(c, x)]++;
          (*src)[j] = (uint32_t)s;
          (*tgt)[j] = sb_csr_tgt_(c, x);
          (*w)[j] = p->pl ? sb_plastic_weight_(p, k, x) : c->w ? (double)c->w[x] : p->w_const;
          (*d)[j] = c->d ? (double)c->d[x] : p->d_const;
          q++;
        }
    }
    sb_free(cnt);
  }
  *n = q;
  return SB_OK;
}

size_t sb_net_proj_synapses(const sb_net *net, int proj) { return net->projs[proj].nsyn; }
size_t sb_net_proj_bytes(const sb_net *net, int proj) { return net->projs[proj].bytes; }

/* ---- stimuli ---- */

static int check_ids(const sb_net *net, int pop, const uint32_t *ids, size_t n) {
  int rc;
  if ((rc = check_pop(net, pop)) || (rc = check_building(net))) return rc;
  if (ids)
    for (size_t i = 0; i < n; i++)
      if (ids[i] >= net->pops[pop].n)
        SB_ERROR(SB_EINVAL, "node_ids[%zu]: must be < %zu (got %u)", i, net->pops[pop].n, ids[i]);
  return SB_OK;
}

static int push_stim(sb_net *net, uint32_t gid, double t, double w, int rcpt) {
  if (net->n_stim == net->cap_stim) {
    size_t cap = net->cap_stim ? 2 * net->cap_stim : 256;
    sb_stim_ev *s = sb_realloc(net->stim, cap * sizeof *s);
    if (!s) return SB_ENOMEM;
    net->stim = s;
    net->cap_stim = cap;
  }
  net->stim[net->n_stim++] = (sb_stim_ev){t, w, rcpt, gid};
  return SB_OK;
}

int sb_net_add_poisson(sb_net *net, int pop, const uint32_t *ids, size_t n, double rate, double start, double stop,
                       double weight, double delay) {
  int rc;
  if ((rc = check_ids(net, pop, ids, n))) return rc;
  if (!(rate >= 0) || !isfinite(rate)) SB_ERROR(SB_EINVAL, "rate: must be >= 0 Hz (got %g)", rate);
  /* a neuron's arrivals of one window (at most 5 ms) are held at once, 40 bytes each (twice, while
   * the buffer grows), by every thread */
  const char *what;
  double arr = rate * SB_MAX_WINDOW * 1e-3, need = arr * 80.0 * net->threads, have = (double)sb_mem_limit(&what);
  if (need > 0.5 * have)
    SB_ERROR(SB_EINVAL, "rate: %g Hz means about %.3g arrivals per neuron in a window of up to 5 ms, whose buffers (%d "
             "thread%s) need %.3g GB, more than half of the %.3g GB of %s", rate, arr, net->threads,
             net->threads == 1 ? "" : "s", need / 1e9, have / 1e9, what);
  if (!(start >= 0) || !isfinite(start)) SB_ERROR(SB_EINVAL, "start: must be >= 0 ms (got %g)", start);
  if (!(stop >= start)) SB_ERROR(SB_EINVAL, "stop: must be >= start = %g ms (got %g)", start, stop);
  if (!isfinite(weight)) SB_ERROR(SB_EINVAL, "weight: must be finite (got %g)", weight);
  if (!(delay >= 0) || !isfinite(delay)) SB_ERROR(SB_EINVAL, "delay: must be >= 0 ms (got %g)", delay);
  if (!ids) n = net->pops[pop].n;
  for (size_t i = 0; i < n; i++) {
    if (net->n_pois == net->cap_pois) {
      size_t cap = net->cap_pois ? 2 * net->cap_pois : 256;
      sb_pois *s = sb_realloc(net->pois, cap * sizeof *s);
      if (!s) return SB_ENOMEM;
      net->pois = s;
      net->cap_pois = cap;
    }
    uint32_t gid = (uint32_t)(net->pops[pop].first + (ids ? ids[i] : i));
    net->pois[net->n_pois++] = (sb_pois){gid, rate, start + delay, stop + delay, weight};
  }
  return SB_OK;
}

/* A current generator's activity window [start, stop) and delay (ms), checked as given. */
static int check_current_window(double start, double stop, double delay) {
  if (!(start >= 0) || !isfinite(start)) SB_ERROR(SB_EINVAL, "start: must be >= 0 ms (got %g)", start);
  if (!(stop >= start)) SB_ERROR(SB_EINVAL, "stop: must be >= start = %g ms (got %g)", start, stop);
  if (!(delay >= 0) || !isfinite(delay)) SB_ERROR(SB_EINVAL, "delay: must be >= 0 ms (got %g)", delay);
  return SB_OK;
}

int sb_net_add_dc(sb_net *net, int pop, const uint32_t *ids, size_t n, double amplitude, double start, double stop,
                  double weight, double delay) {
  int rc;
  if ((rc = check_ids(net, pop, ids, n))) return rc;
  if (!isfinite(amplitude)) SB_ERROR(SB_EINVAL, "amplitude: must be finite (got %g)", amplitude);
  if ((rc = check_current_window(start, stop, delay))) return rc;
  if (!isfinite(weight * amplitude))
    SB_ERROR(SB_EINVAL, "weight: %g times the amplitude %g is not finite", weight, amplitude);
  amplitude *= weight;
  start += delay;
  stop += delay;
  if (!ids) n = net->pops[pop].n;
  for (size_t i = 0; i < n; i++) {
    uint32_t gid = (uint32_t)(net->pops[pop].first + (ids ? ids[i] : i));
    if ((rc = push_stim(net, gid, start, amplitude, SB_RCPT_CURRENT))) return rc;
    if (isfinite(stop) && (rc = push_stim(net, gid, stop, -amplitude, SB_RCPT_CURRENT))) return rc;
  }
  return SB_OK;
}

int sb_net_add_step_current(sb_net *net, int pop, const uint32_t *ids, size_t n, const double *times,
                            const double *values, size_t nv, double start, double stop, double weight, double delay) {
  int rc;
  if ((rc = check_ids(net, pop, ids, n))) return rc;
  for (size_t j = 0; j < nv; j++) {
    if (!(times[j] >= 0) || !isfinite(times[j]))
      SB_ERROR(SB_EINVAL, "amplitude_times[%zu]: must be finite and >= 0 ms (got %g)", j, times[j]);
    if (j && !(times[j] > times[j - 1]))
      SB_ERROR(SB_EINVAL, "amplitude_times[%zu]: must be later than amplitude_times[%zu] = %g ms (got %g)", j, j - 1,
               times[j - 1], times[j]);
    if (!isfinite(values[j])) SB_ERROR(SB_EINVAL, "amplitude_values[%zu]: must be finite (got %g)", j, values[j]);
    if (!isfinite(weight * values[j]))
      SB_ERROR(SB_EINVAL, "weight: %g times amplitude_values[%zu] = %g is not finite", weight, j, values[j]);
  }
  if ((rc = check_current_window(start, stop, delay))) return rc;
  if (!ids) n = net->pops[pop].n;
  /* the change points: start, each amplitude time inside [start, stop), stop; the current at a
   * change point t is the value of the last amplitude time <= t while active, else 0 */
  struct { double t, d; } *ch = sb_malloc((nv + 2) * sizeof *ch);   /* arrival time, change pA */
  if (!ch) return SB_ENOMEM;
  size_t nc = 0, j = 0;   /* j: amplitude times before the change point */
  double prev = 0.0;
  for (size_t c = 0; c <= nv + 1; c++) {
    double t = c == 0 ? start : c <= nv ? times[c - 1] : stop;
    if (c && c <= nv && !(t > start && t < stop)) continue;
    if (!isfinite(t)) break;
    while (j < nv && times[j] <= t) j++;
    double cur = t >= start && t < stop && j ? values[j - 1] * weight : 0.0;
    if (cur == prev) continue;
    if (!isfinite(cur - prev)) {
      sb_free(ch);
      SB_ERROR(SB_EINVAL, "amplitude_values[%zu]: the change from %g to %g pA at %g ms is not finite", j ? j - 1 : 0,
               prev, cur, t);
    }
    ch[nc].t = t + delay;
    ch[nc++].d = cur - prev;
    prev = cur;
  }
  for (size_t i = 0; i < n && !rc; i++) {
    uint32_t gid = (uint32_t)(net->pops[pop].first + (ids ? ids[i] : i));
    for (size_t c = 0; c < nc && !rc; c++) rc = push_stim(net, gid, ch[c].t, ch[c].d, SB_RCPT_CURRENT);
  }
  sb_free(ch);
  return rc;
}

int sb_net_add_spike_train(sb_net *net, int pop, const uint32_t *ids, size_t n, const double *times, size_t nt,
                           double weight, double delay) {
  int rc;
  if ((rc = check_ids(net, pop, ids, n))) return rc;
  if (!isfinite(weight)) SB_ERROR(SB_EINVAL, "weight: must be finite (got %g)", weight);
  if (!(delay >= 0) || !isfinite(delay)) SB_ERROR(SB_EINVAL, "delay: must be >= 0 ms (got %g)", delay);
  for (size_t j = 0; j < nt; j++)
    if (!(times[j] >= 0) || !isfinite(times[j]))
      SB_ERROR(SB_EINVAL, "spike_times[%zu]: must be finite and >= 0 ms (got %g)", j, times[j]);
  if (!ids) n = net->pops[pop].n;
  for (size_t i = 0; i < n; i++) {
    uint32_t gid = (uint32_t)(net->pops[pop].first + (ids ? ids[i] : i));
    for (size_t j = 0; j < nt; j++)
      if ((rc = push_stim(net, gid, times[j] + delay, weight, SB_RCPT_SPIKE))) return rc;
  }
  return SB_OK;
}

/* ---- read-back ---- */

int sb_net_spikes(const sb_net *net, int pop, const double **times, const uint32_t **ids, size_t *n) {
  int rc;
  if ((rc = check_pop(net, pop))) return rc;
  *times = net->pops[pop].sp_t;
  *ids = net->pops[pop].sp_id;
  *n = net->pops[pop].sp_n;
  return SB_OK;
}

int sb_net_spike_counts(const sb_net *net, int pop, uint64_t *counts) {
  int rc;
  if ((rc = check_pop(net, pop))) return rc;
  const sb_pop *p = &net->pops[pop];
  for (size_t i = 0; i < p->n; i++) counts[i] = net->count ? net->count[p->first + i] : 0;
  return SB_OK;
}

int sb_net_pop_stats(const sb_net *net, int pop, sb_pop_stats *st) {
  int rc;
  if ((rc = check_pop(net, pop))) return rc;
  const sb_pop *p = &net->pops[pop];
  memset(st, 0, sizeof *st);
  if (!net->count) return SB_OK;
  double cv = 0;
  for (size_t i = p->first; i < p->first + p->n; i++) {
    st->spikes += net->count[i];
    if (net->count[i] >= 3) {
      double m = (double)(net->count[i] - 1);
      double mean = net->isi_sum[i] / m, var = net->isi_sq[i] / m - mean * mean;
      if (var < 0) var = 0;
      if (mean > 0) {
        cv += sqrt(var) / mean;
        st->n_cv++;
      }
    }
  }
  {   /* other MPI ranks' neurons (collective; a no-op with one rank) */
    uint64_t u[2] = {st->spikes, st->n_cv};
    sb_mpi_sum_u64_(net, u, 2);
    sb_mpi_sum_double_(net, &cv, 1);
    st->spikes = u[0];
    st->n_cv = (size_t)u[1];
  }
  st->rate = net->t > 0 ? (double)st->spikes * 1000.0 / (double)p->n / net->t : 0;   /* t/1000 underflowed for t = 4.9e-324 ms: 0/0 */
  st->cv = st->n_cv ? cv / (double)st->n_cv : 0;
  return SB_OK;
}

void sb_net_get_counters(const sb_net *net, sb_net_counters *c) {
  memset(c, 0, sizeof *c);
  if (net->t_events)
    for (int k = 0; k < net->threads; k++) {
      c->syn_events += net->t_events[(size_t)(k) * SB_TSTRIDE];
      c->ext_events += net->t_ext[(size_t)(k) * SB_TSTRIDE];
      c->eager_events += net->t_eager[(size_t)(k) * SB_TSTRIDE];
    }
  c->spikes = net->spikes_total;
  for (int i = 0; i < net->n_projs; i++) {
    c->synapses += net->projs[i].nsyn;
    c->syn_bytes += net->projs[i].bytes;
  }
  if (net->qarena)
    for (int k = 0; k < net->threads; k++) {
      const sb_arena *a = &net->qarena[k];
      if (a->flat) c->home_bytes += a->flat_len;
      if (a->flat && a->fcap > c->home_cap) c->home_cap = a->fcap;
      c->home_spills += a->spills;
      c->home_unmaps += a->unmaps;
    }
  {   /* sums over MPI ranks (collective; a no-op with one rank) */
    uint64_t u[8] = {c->syn_events, c->ext_events, c->synapses, c->syn_bytes, c->eager_events, c->home_bytes, c->home_spills,
                     c->home_unmaps};
    sb_mpi_sum_u64_(net, u, 8);
    c->home_bytes = (size_t)u[5];
    c->home_spills = u[6];
    c->home_unmaps = u[7];
    c->eager_events = u[4];
    c->syn_events = u[0];
    c->ext_events = u[1];
    c->synapses = (size_t)u[2];
    c->syn_bytes = (size_t)u[3];
  }
  c->window = net->W;
  c->threads = net->threads;
}
