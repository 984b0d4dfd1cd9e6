/* Plastic projections in the engine: sparse CSR storage whose synapses carry STDP state
 * (learning/stdp.c rules), postsynaptic spike histories per target, the update at delivery of
 * each presynaptic spike, weight snapshots and HDF5 output of weights. Not the rules
 * themselves (learning/stdp.c) and not the event loop (sim/run.c calls the hooks here). */
#include "sim/internal.h"
#include "learning/learning.h"

#include <math.h>
#include <string.h>

#define TRIM_INTERVAL 500.0   /* ms of simulated time between history trims */

struct sb_plastic {
  sb_stdp_params prm;
  sb_stdp_syn **syn;      /* [threads] (part[k].nnz) parallel to the CSR of partition k */
  sb_stdp_post *post;     /* (n_tgt) postsynaptic histories */
  size_t *off;            /* [threads + 1] offset of partition k in the storage order */
  double snap_dt;         /* ms; 0 = no snapshots */
  size_t *snap_k;         /* [threads] next snapshot index per partition */
  double *snap;           /* (snap_cap, nsyn) */
  size_t snap_cap;
  double *next_trim;      /* [threads] */
  int T;                  /* partitions */
  size_t nt;              /* target population size */
};

static inline double syn_delay(const sb_proj *pr, const sb_csr *c, uint32_t x) {
  return c->d ? (double)c->d[x] : pr->d_const;
}

/* ---- construction ---- */

/* ---- initial weights: 0 <= w <= Wmax ----
 * NEST's stdp_synapse refuses a weight whose sign differs from Wmax's ("Weight and Wmax must
 * have the same sign"); Wmax is > 0 here, so weights must be >= 0 (plastic synapses are
 * excitatory), and at most Wmax: the rules' bounds assume it. Checked on the weight
 * specification where its range is known (a constant, explicit weights, uniform and
 * normal_clipped bounds), and on every drawn weight otherwise. */

static double with_receptor(int receptor, double w) {   /* as the connector applies it */
  return receptor == SB_RECEPTOR_EX ? fabs(w) : receptor == SB_RECEPTOR_IN ? -fabs(w) : w;
}

#define SAME_SIGN "weight and Wmax must have the same sign (NEST stdp_synapse), and Wmax is > 0 here: plastic weights lie in [0, Wmax]"

static int check_weight_spec(const sb_conn_spec *conn, const sb_syn_spec *syn, const sb_stdp_params *p) {
  double W = p->Wmax;
  if (syn->receptor == SB_RECEPTOR_IN)
    SB_ERROR(SB_EINVAL, "receptor: \"inhibitory\" makes the weights negative; " SAME_SIGN " (Wmax = %g)", W);
  if (conn->rule == SB_RULE_EXPLICIT && conn->weights) {
    for (size_t i = 0; i < conn->n; i++) {
      double w = with_receptor(syn->receptor, conn->weights[i]);
      if (w < 0) SB_ERROR(SB_EINVAL, "weights[%zu]: %g is negative; " SAME_SIGN " (Wmax = %g)", i, w, W);
      if (w > W) SB_ERROR(SB_EINVAL, "weights[%zu]: %g is above Wmax = %g (initial weights must lie in [0, Wmax])", i, w, W);
    }
    return SB_OK;
  }
  const sb_dist *d = &syn->weight;
  if (d->kind == SB_DIST_CONST) {
    double w = with_receptor(syn->receptor, d->a);
    if (w < 0) SB_ERROR(SB_EINVAL, "weight: %g is negative; " SAME_SIGN " (Wmax = %g)", w, W);
    if (w > W) SB_ERROR(SB_EINVAL, "weight: %g is above Wmax = %g (initial weights must lie in [0, Wmax])", w, W);
  } else if (d->kind == SB_DIST_UNIFORM || d->kind == SB_DIST_NORMAL_CLIPPED) {
    double lo = d->kind == SB_DIST_UNIFORM ? d->a : d->c, hi = d->kind == SB_DIST_UNIFORM ? d->b : d->d;
    const char *what = d->kind == SB_DIST_UNIFORM ? "uniform" : "normal_clipped";
    if (syn->receptor == SB_RECEPTOR_EX) {   /* |x|: the larger magnitude bounds it */
      double m = fmax(fabs(lo), fabs(hi));
      if (m > W)
        SB_ERROR(SB_EINVAL, "weight: a %s distribution on [%g, %g] with receptor excitatory (|w|) reaches %g, above Wmax = %g "
                 "(initial weights must lie in [0, Wmax])", what, lo, hi, m, W);
    } else {
      if (lo < 0)
        SB_ERROR(SB_EINVAL, "weight.min: %g is negative (a %s distribution draws weights from [%g, %g]); " SAME_SIGN " (Wmax = %g)",
                 lo, what, lo, hi, W);
      if (hi > W)
        SB_ERROR(SB_EINVAL, "weight.max: %g is above Wmax = %g (a %s distribution draws weights up to it; initial weights "
                 "must lie in [0, Wmax])", hi, W, what);
    }
  }   /* normal, lognormal: unbounded, every drawn weight is checked after connecting */
  return SB_OK;
}

/* Every stored initial weight (float) of the new projection in [0, Wmax]. Rounding to float is
 * monotone, so a drawn x <= Wmax never fails the test w <= (float)Wmax. */
static int check_drawn_weights(const sb_net *net, const sb_proj *pr, const sb_stdp_params *p) {
  float W = (float)p->Wmax;
  size_t ns = net->pops[pr->src].n;
  for (int k = 0; k < net->threads; k++) {
    const sb_csr *c = &pr->part[k];
    if (!c->w || !c->row) continue;
    for (size_t s = 0; s < ns; s++)
      for (uint32_t x = c->row[s]; x < c->row[s + 1]; x++) {
        float w = c->w[x];
        if (w < 0)
          SB_ERROR(SB_EINVAL, "weight: drawn weight %.9g (source %zu -> target %u) is negative; " SAME_SIGN " (Wmax = %g)",
                   (double)w, s, sb_csr_tgt_(c, x), p->Wmax);
        if (w > W)
          SB_ERROR(SB_EINVAL, "weight: drawn weight %.9g (source %zu -> target %u) is above Wmax = %g (initial weights must "
                   "lie in [0, Wmax]; a bounded distribution such as uniform or normal_clipped keeps them there)",
                   (double)w, s, sb_csr_tgt_(c, x), p->Wmax);
      }
  }
  return SB_OK;
}

int sb_stdp_connect(sb_net *net, int src, int tgt, const sb_conn_spec *conn, const sb_syn_spec *syn,
                    const sb_stdp_params *stdp, int *proj) {
  if (conn->rule == SB_RULE_ONE_TO_ONE)
    SB_ERROR(SB_EINVAL, "rule: plastic synapses (%s) need a sparse rule; write one_to_one as explicit",
             sb_stdp_model_name(stdp));
  int pid, rc;
  if ((rc = check_weight_spec(conn, syn, stdp))) return rc;
  if ((rc = sb_net_connect_sized_(net, src, tgt, conn, syn, SB_STDP_SYN_EXTRA_BYTES, &pid))) return rc;
  sb_proj *pr = &net->projs[pid];
  if ((rc = check_drawn_weights(net, pr, stdp))) {
    sb_net_drop_last_proj_(net);   /* refused as a whole: the network is as before */
    return rc;
  }
  int T = net->threads;
  struct sb_plastic *pl = sb_calloc(1, sizeof *pl);
  if (!pl) return SB_ENOMEM;
  pr->pl = pl;   /* from here sb_plastic_free_ (via sb_net_free) releases what exists */
  pl->prm = *stdp;
  size_t nt = net->pops[tgt].n;
  pl->T = T;
  pl->syn = sb_calloc((size_t)T, sizeof *pl->syn);
  pl->post = sb_calloc(nt, sizeof *pl->post);
  pl->off = sb_calloc((size_t)T + 1, sizeof *pl->off);
  pl->snap_k = sb_calloc((size_t)T, sizeof *pl->snap_k);
  pl->next_trim = sb_calloc((size_t)T, sizeof *pl->next_trim);
  if (!pl->syn || !pl->post || !pl->off || !pl->snap_k || !pl->next_trim) return SB_ENOMEM;
  pl->nt = nt;
  for (size_t t = 0; t < nt; t++) sb_stdp_post_init(&pl->post[t]);
  for (int k = 0; k < T; k++) {
    sb_csr *c = &pr->part[k];
    if (c->tgt16) {   /* plastic synapses keep 32-bit targets (their code reads c->tgt) */
      c->tgt = sb_malloc((c->nnz + 1) * sizeof *c->tgt);
      if (!c->tgt) return SB_ENOMEM;
      for (size_t x = 0; x < c->nnz; x++) c->tgt[x] = c->tgt16[x];
      sb_free(c->tgt16);
      c->tgt16 = NULL;
      pr->bytes += c->nnz * (sizeof *c->tgt - sizeof(uint16_t));
    }
    pl->off[k + 1] = pl->off[k] + c->nnz;
    pl->syn[k] = sb_malloc((c->nnz + 1) * sizeof *pl->syn[k]);
    if (!pl->syn[k]) return SB_ENOMEM;
    for (size_t x = 0; x < c->nnz; x++) sb_stdp_syn_init(&pl->syn[k][x], c->w ? (double)c->w[x] : pr->w_const);
    if (c->w) pr->bytes -= c->nnz * sizeof *c->w;
    sb_free(c->w);
    c->w = NULL;
    pr->bytes += c->nnz * sizeof(sb_stdp_syn);
    pl->next_trim[k] = TRIM_INTERVAL;
  }
  pr->kind = SB_PROJ_PLASTIC;
  net->n_plastic++;
  if (proj) *proj = pid;
  return SB_OK;
}

void sb_plastic_free_(sb_proj *pr) {
  struct sb_plastic *pl = pr->pl;
  if (!pl) return;
  if (pl->syn)
    for (int k = 0; k < pl->T; k++) sb_free(pl->syn[k]);
  if (pl->post)
    for (size_t t = 0; t < pl->nt; t++) sb_stdp_post_free(&pl->post[t]);
  sb_free(pl->syn); sb_free(pl->post); sb_free(pl->off); sb_free(pl->snap_k); sb_free(pl->snap); sb_free(pl->next_trim);
  sb_free(pl);
  pr->pl = NULL;
}

/* ---- run-time hooks (called from sim/run.c) ---- */

int sb_plastic_post_spike_(sb_net *net, uint32_t gid, double t) {
  for (int i = 0; i < net->n_projs; i++) {
    sb_proj *pr = &net->projs[i];
    if (!pr->pl) continue;
    const sb_pop *tp = &net->pops[pr->tgt];
    if (gid < tp->first || gid >= tp->first + tp->n) continue;
    int rc = sb_stdp_post_spike(&pr->pl->prm, &pr->pl->post[gid - tp->first], t);
    if (rc) return rc;
  }
  return SB_OK;
}

int sb_plastic_deliver_(sb_net *net, const sb_proj *pr, int k, size_t j, double ts, uint64_t *nev) {
  const sb_csr *c = &pr->part[k];
  struct sb_plastic *pl = pr->pl;
  uint32_t a = c->row[j], e = c->row[j + 1];
  size_t tf = net->pops[pr->tgt].first;
  const sb_pop *tp = &net->pops[pr->tgt];
  sb_stdp_syn *sy = pl->syn[k];
  for (uint32_t x = a; x < e; x++) {
    double d = syn_delay(pr, c, x), ta = ts + d;
    double w = sb_stdp_pre(&pl->prm, &sy[x], &pl->post[c->tgt[x]], ts, d);
    size_t g = tf + c->tgt[x];
    if (sb_ev_push_k_(net, k, g, ta, w, tp)) return SB_ENOMEM;
    if (ta < net->ev_due[g]) net->ev_due[g] = ta; /* wake the target for this event (lazy window scan) */
  }
  *nev += e - a;
  return SB_OK;
}

void sb_plastic_snapshots_(sb_net *net, int k, double t) {
  for (int i = 0; i < net->n_projs; i++) {
    sb_proj *pr = &net->projs[i];
    struct sb_plastic *pl = pr->pl;
    if (!pl || !(pl->snap_dt > 0)) continue;
    const sb_csr *c = &pr->part[k];
    size_t ns = net->pops[pr->src].n;
    while (pl->snap_k[k] < pl->snap_cap && (double)pl->snap_k[k] * pl->snap_dt < t) {
      double T = (double)pl->snap_k[k] * pl->snap_dt;
      double *row = pl->snap + pl->snap_k[k] * pr->nsyn + pl->off[k];
      for (size_t s = 0; s < ns; s++)
        for (uint32_t x = c->row[s]; x < c->row[s + 1]; x++)
          row[x] = sb_stdp_weight_at(&pl->prm, &pl->syn[k][x], &pl->post[c->tgt[x]], T, syn_delay(pr, c, x));
      pl->snap_k[k]++;
    }
  }
}

void sb_plastic_window_end_(sb_net *net, int k) {
  /* Every pre spike before net->t is delivered now, so syncing to T_s < net->t is exact; the
   * histories then need post spikes after T_s - d_max only (plus the latest before). */
  size_t lo = net->bound[k], hi = net->bound[k + 1];
  for (int i = 0; i < net->n_projs; i++) {
    sb_proj *pr = &net->projs[i];
    struct sb_plastic *pl = pr->pl;
    if (!pl || net->t < pl->next_trim[k]) continue;
    pl->next_trim[k] = net->t + TRIM_INTERVAL;
    double Ts = net->t - net->W;
    const sb_csr *c = &pr->part[k];
    for (size_t x = 0; x < c->nnz; x++)
      sb_stdp_sync(&pl->prm, &pl->syn[k][x], &pl->post[c->tgt[x]], Ts, syn_delay(pr, c, x));
    const sb_pop *tp = &net->pops[pr->tgt];
    size_t a = tp->first > lo ? tp->first : lo, b = tp->first + tp->n < hi ? tp->first + tp->n : hi;
    for (size_t g = a; g < b; g++) sb_stdp_post_trim(&pl->post[g - tp->first], Ts - pr->dmax);
  }
}

int sb_plastic_check_snapshots_(const sb_net *net, double t_stop, int *proj) {
  const char *what;
  double have = (double)sb_mem_limit(&what), held = sb_net_held_bytes_(net), snaps = 0;
  if (have > (double)(SIZE_MAX / 2)) have = (double)(SIZE_MAX / 2);   /* unknown: the address space */
  for (int i = 0; i < net->n_projs; i++) {
    const sb_proj *pr = &net->projs[i];
    const struct sb_plastic *pl = pr->pl;
    if (!pl || !(pl->snap_dt > 0)) continue;
    double rows = ceil(t_stop / pl->snap_dt) + 1, per = (double)(pr->nsyn + 1) * sizeof(double);
    double need = rows * per;
    if (held + snaps + need > have) {
      *proj = i;
      double left = have - held - snaps;   /* what a longer interval may use */
      char hint[160] = "";
      if (left > 2 * per)
        snprintf(hint, sizeof hint, "; an interval of at least %.4g ms fits", t_stop / (floor(left / per) - 1));
      SB_ERROR(SB_EINVAL, "record_weights.interval: %g ms up to t_stop = %g ms is %.17g snapshots of %zu weights, which "
               "need %.4g bytes (%.4g GB) of memory for the whole run; with the %.4g bytes the network holds%s that is "
               "more than the %.4g bytes (%.4g GB) of %s%s", pl->snap_dt, t_stop, rows, pr->nsyn, need,
               need / 1e9, held + snaps, snaps > 0 ? " (its snapshots of earlier projections included)" : "", have,
               have / 1e9, what, hint);
    }
    snaps += need;
  }
  return SB_OK;
}

int sb_plastic_run_start_(sb_net *net, double t_stop) {
  int bad = -1, rc;
  if ((rc = sb_plastic_check_snapshots_(net, t_stop, &bad))) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", sb_last_error());
    SB_ERROR(rc, "projections[%d].%s", bad, msg);
  }
  for (int i = 0; i < net->n_projs; i++) {
    sb_proj *pr = &net->projs[i];
    struct sb_plastic *pl = pr->pl;
    if (!pl || !(pl->snap_dt > 0)) continue;
    size_t rows = (size_t)ceil(t_stop / pl->snap_dt) + 1;
    if (rows <= pl->snap_cap) continue;
    double *s = sb_realloc(pl->snap, rows * (pr->nsyn + 1) * sizeof *s);
    if (!s) return SB_ENOMEM;
    pl->snap = s;
    pl->snap_cap = rows;
  }
  return SB_OK;
}

void sb_plastic_reset_(sb_net *net) {
  for (int i = 0; i < net->n_projs; i++) {
    sb_proj *pr = &net->projs[i];
    struct sb_plastic *pl = pr->pl;
    if (!pl) continue;
    for (int k = 0; k < net->threads; k++) {
      const sb_csr *c = &pr->part[k];
      for (size_t x = 0; x < c->nnz; x++) {   /* keep the weight at the current time, drop the traces */
        double w = sb_stdp_weight_at(&pl->prm, &pl->syn[k][x], &pl->post[c->tgt[x]], net->t, syn_delay(pr, c, x));
        sb_stdp_syn_init(&pl->syn[k][x], w);
      }
      pl->snap_k[k] = 0;
      pl->next_trim[k] = TRIM_INTERVAL;
    }
    for (size_t t = 0; t < net->pops[pr->tgt].n; t++) pl->post[t].head = pl->post[t].n = 0;
  }
}

double sb_plastic_weight_(const sb_proj *pr, int k, size_t x) { return pr->pl->syn[k][x].w; }

/* ---- public inspection and output ---- */

static int get_plastic(const sb_net *net, int proj, const sb_proj **pr) {
  if (proj < 0 || proj >= net->n_projs) SB_ERROR(SB_EINVAL, "projection index %d out of range", proj);
  if (!net->projs[proj].pl) SB_ERROR(SB_EINVAL, "projection %d is not plastic", proj);
  *pr = &net->projs[proj];
  return SB_OK;
}

int sb_stdp_is_plastic(const sb_net *net, int proj) {
  return proj >= 0 && proj < net->n_projs && net->projs[proj].pl != NULL;
}

int sb_stdp_get_synapses(const sb_net *net, int proj, uint32_t *src, uint32_t *tgt, double *delay, double *w) {
  const sb_proj *pr = NULL;
  int rc;
  if ((rc = get_plastic(net, proj, &pr))) return rc;
  const struct sb_plastic *pl = pr->pl;
  size_t ns = net->pops[pr->src].n, q = 0;
  for (int k = 0; k < net->threads; k++) {
    const sb_csr *c = &pr->part[k];
    if (!c->row) continue;   /* another MPI rank's partition */
    for (size_t s = 0; s < ns; s++)
      for (uint32_t x = c->row[s]; x < c->row[s + 1]; x++, q++) {
        double d = syn_delay(pr, c, x);
        if (src) src[q] = (uint32_t)s;
        if (tgt) tgt[q] = c->tgt[x];
        if (delay) delay[q] = d;
        if (w) w[q] = sb_stdp_weight_at(&pl->prm, &pl->syn[k][x], &pl->post[c->tgt[x]], net->t, d);
      }
  }
  return SB_OK;
}

int sb_stdp_set_weights(sb_net *net, int proj, const double *w) {
  const sb_proj *pr = NULL;
  int rc;
  if ((rc = get_plastic(net, proj, &pr))) return rc;
  for (size_t i = 0; i < pr->nsyn; i++)
    if (!isfinite(w[i])) SB_ERROR(SB_EINVAL, "weights[%zu]: must be finite (got %g)", i, w[i]);
  size_t q = 0;
  for (int k = 0; k < net->threads; k++)
    for (size_t x = 0; x < pr->part[k].nnz; x++) {
      sb_stdp_syn *sy = &pr->pl->syn[k][x];
      sy->w = w[q++];
      /* the given weight is the weight now: post arrivals up to now are in it already */
      if (net->t > sy->t_done) sy->t_done = net->t;
    }
  return SB_OK;
}

int sb_stdp_record_weights(sb_net *net, int proj, double interval) {
  const sb_proj *pr = NULL;
  int rc;
  if ((rc = get_plastic(net, proj, &pr))) return rc;
  if (!(interval > 0) || !isfinite(interval))
    SB_ERROR(SB_EINVAL, "record_weights.interval: must be > 0 ms (got %g)", interval);
  pr->pl->snap_dt = interval;
  return SB_OK;
}

int sb_stdp_snapshots(const sb_net *net, int proj, const double **w, size_t *n_times, double *interval) {
  const sb_proj *pr = NULL;
  int rc;
  if ((rc = get_plastic(net, proj, &pr))) return rc;
  size_t n = pr->pl->snap_dt > 0 ? pr->pl->snap_k[net->p_lo] : 0;
  for (int k = net->p_lo + 1; k < net->p_hi; k++)   /* this rank's partitions */
    if (pr->pl->snap_k[k] < n) n = pr->pl->snap_k[k];
  *w = pr->pl->snap;
  *n_times = n;
  if (interval) *interval = pr->pl->snap_dt;
  return SB_OK;
}

/* A rule's parameters by NEST name, in one order for the weight output and checkpoints. */
#define RULE_N 14
static const char *const rule_names[RULE_N] = {"tau_plus", "tau_minus", "lambda", "alpha", "mu_plus", "mu_minus",
                                               "Wmax", "tau_plus_triplet", "tau_minus_triplet", "Aplus", "Aminus",
                                               "Aplus_triplet", "Aminus_triplet", "pairing"};
static void rule_params(const sb_stdp_params *p, double *v) {
  const double x[RULE_N] = {p->tau_plus, p->tau_minus, p->lambda, p->alpha, p->mu_plus, p->mu_minus, p->Wmax,
                            p->tau_plus_triplet, p->tau_minus_triplet, p->Aplus, p->Aminus, p->Aplus_triplet,
                            p->Aminus_triplet, (double)p->pairing};
  memcpy(v, x, sizeof x);
}

/* One synapse of the weight output. */
typedef struct { double src, tgt, delay, w; } syn_out;

/* /weights/<i> of plastic projection i from N synapses: source and target ids (memory type
 * id_mt), delays and weights, and the snapshots (rows, N) taken every dt ms. */
static int write_weights_group(const sb_net *net, int i, hid_t file, const void *src, const void *tgt, hid_t id_mt,
                               const double *delay, const double *weight, size_t N, const double *snap, size_t rows,
                               double dt) {
  const sb_proj *pr = &net->projs[i];
  char name[64];
  snprintf(name, sizeof name, "weights/%d", i);
  hid_t g = sb_h5_group(file, name);
  if (g < 0) SB_ERROR(SB_EIO, "cannot create group /%s", name);
  const sb_stdp_params *p = &pr->pl->prm;
  double prm[RULE_N];
  rule_params(p, prm);
  int rc = 0;
  rc |= sb_h5_attr_write_string(g, "source", net->pops[pr->src].name);
  rc |= sb_h5_attr_write_string(g, "target", net->pops[pr->tgt].name);
  rc |= sb_h5_attr_write_string(g, "synapse_model", sb_stdp_model_name(p));
  /* the parameters of this rule only: pair rules 0-6, triplet rules 0, 1, 6-12 */
  int triplet = p->model == SB_STDP_TRIPLET;
  for (size_t q = 0; q < RULE_N - 1; q++)   /* not "pairing": the model name says it */
    if (triplet ? (q <= 1 || q >= 6) : q <= 6) rc |= sb_h5_attr_write_doubles(g, rule_names[q], &prm[q], 1);
  double tnow = net->t;
  rc |= sb_h5_attr_write_doubles(g, "time", &tnow, 1);
  rc |= sb_h5_write_1d(g, "source_node_ids", H5T_STD_U64LE, id_mt, src, N);
  rc |= sb_h5_write_1d(g, "target_node_ids", H5T_STD_U64LE, id_mt, tgt, N);
  rc |= sb_h5_write_1d(g, "delay", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, delay, N);
  rc |= sb_h5_write_1d(g, "weight", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, weight, N);
  if (!rc && rows > 0) {
    double *tt = sb_malloc(rows * sizeof *tt);
    if (!tt) rc = SB_ENOMEM;
    else {
      for (size_t j = 0; j < rows; j++) tt[j] = (double)j * dt;
      rc |= sb_h5_write_1d(g, "snapshot_times", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, tt, rows);
      sb_free(tt);
      hsize_t dims[2] = {rows, N};
      hid_t sp = H5Screate_simple(2, dims, NULL);
      hid_t ds = sp < 0 ? -1 : H5Dcreate2(g, "snapshots", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      if (ds < 0 || H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, snap) < 0) rc = SB_EIO;
      if (ds >= 0) H5Dclose(ds);
      if (sp >= 0) H5Sclose(sp);
    }
  }
  if (rc && rc != SB_ENOMEM) rc = SB_EIO;
  H5Gclose(g);
  if (rc == SB_EIO) SB_ERROR(SB_EIO, "cannot write /%s", name);
  return rc;
}

/* Write /weights/<i> of plastic projection i. Under MPI every rank passes its synapses and
 * snapshot columns to rank 0 (collective), which writes them in partition order, the order of
 * a 1-rank run with ranks x threads threads; other ranks pass file = -1. */
static int write_proj(const sb_net *net, int i, hid_t file) {
  const sb_proj *pr = &net->projs[i];
  size_t n = pr->nsyn, rows = 0, R = (size_t)net->nranks;
  const double *snap;
  double dt;
  sb_stdp_snapshots(net, i, &snap, &rows, &dt);
  uint32_t *s = sb_malloc((n + 1) * sizeof *s), *t = sb_malloc((n + 1) * sizeof *t);
  double *d = sb_malloc((n + 1) * sizeof *d), *w = sb_malloc((n + 1) * sizeof *w);
  int rc = s && t && d && w ? SB_OK : SB_ENOMEM;
  if (!rc) sb_stdp_get_synapses(net, i, s, t, d, w);
  if (R == 1) {   /* one process: written from the arrays as they are (24 bytes a synapse on top of
                   * the network's 44; the gathered copies below took 88) */
    if (rc) { sb_free(s); sb_free(t); sb_free(d); sb_free(w); return rc; }
    rc = write_weights_group(net, i, file, s, t, H5T_NATIVE_UINT32, d, w, n, snap, rows, dt);
    sb_free(s); sb_free(t); sb_free(d); sb_free(w);
    return rc;
  }
  syn_out *mine = rc ? NULL : sb_malloc((n + 1) * sizeof *mine), *all = NULL;
  double *snaps = NULL, *full = NULL;
  size_t *cnt = sb_calloc(2 * R, sizeof *cnt);
  if (!rc && (!mine || !cnt)) rc = SB_ENOMEM;
  if (!rc) {
    for (size_t q = 0; q < n; q++) mine[q] = (syn_out){s[q], t[q], d[q], w[q]};
    rc = sb_mpi_gather_root_(net, mine, n * sizeof *mine, (void **)&all, cnt);
  }
  if (!rc) rc = sb_mpi_gather_root_(net, snap, rows * n * sizeof *snap, (void **)&snaps, cnt + R);
  size_t N = 0;
  for (size_t r = 0; r < R; r++) N += cnt[r] / sizeof(syn_out);
  if (!rc && file >= 0 && rows) {   /* rank r's (rows, n_r) block -> columns [col, col + n_r) */
    full = sb_malloc((rows * N + 1) * sizeof *full);
    if (!full) rc = SB_ENOMEM;
    const double *blk = snaps;
    for (size_t r = 0, col = 0; r < R && !rc; r++) {
      size_t nr = cnt[r] / sizeof(syn_out);
      for (size_t y = 0; y < rows; y++) memcpy(full + y * N + col, blk + y * nr, nr * sizeof *full);
      blk += rows * nr;
      col += nr;
    }
  }
  sb_free(s); sb_free(t); sb_free(d); sb_free(w); sb_free(mine); sb_free(snaps); sb_free(cnt);
  if (rc || file < 0) { sb_free(all); sb_free(full); return rc; }
  uint64_t *ids = sb_malloc((2 * N + 1) * sizeof *ids);
  double *dw = sb_malloc((2 * N + 1) * sizeof *dw);
  if (!ids || !dw) rc = SB_ENOMEM;
  for (size_t q = 0; q < N && !rc; q++) {
    ids[q] = (uint64_t)all[q].src; ids[N + q] = (uint64_t)all[q].tgt;
    dw[q] = all[q].delay; dw[N + q] = all[q].w;
  }
  sb_free(all);
  if (!rc) rc = write_weights_group(net, i, file, ids, ids + N, H5T_NATIVE_UINT64, dw, dw + N, N, full, rows, dt);
  sb_free(ids); sb_free(dw); sb_free(full);
  return rc;
}

int sb_stdp_write_weights(const sb_net *net, hid_t file) {
  for (int i = 0; i < net->n_projs; i++) {
    if (!net->projs[i].pl) continue;
    int rc = write_proj(net, i, file);
    if (rc) return rc;
  }
  return SB_OK;
}

/* ---- checkpoints (called from sim/checkpoint.c) ---- */

/* Synapses in canonical order: source-major, then partition (ascending target ranges), then CSR
 * order, which is target order within a row. The order does not depend on the thread count,
 * so a checkpoint resumes with any --threads. The body sees partition k, CSR index x and the
 * canonical index q. */
#define FOR_CANONICAL(net, pr, ...)                                         \
  do {                                                                      \
    size_t q_ = 0, ns_ = (net)->pops[(pr)->src].n;                          \
    for (size_t s_ = 0; s_ < ns_; s_++)                                     \
      for (int k = 0; k < (net)->threads; k++) {                            \
        const sb_csr *c_ = &(pr)->part[k];                                  \
        if (!c_->row) continue;                                             \
        for (uint32_t x = c_->row[s_]; x < c_->row[s_ + 1]; x++, q_++) {    \
          size_t q = q_;                                                    \
          __VA_ARGS__;                                                           \
        }                                                                   \
      }                                                                     \
  } while (0)

static void cp_name(char *buf, size_t len, int proj, const char *what) {
  snprintf(buf, len, "plastic_%d_%s", proj, what);
}

int sb_plastic_checkpoint_write_(const sb_net *net, hid_t g) {
  int st = SB_OK;
  for (int i = 0; i < net->n_projs && !st; i++) {
    const sb_proj *pr = &net->projs[i];
    const struct sb_plastic *pl = pr->pl;
    if (!pl) continue;
    size_t ns = pr->nsyn, nt = pl->nt, tot = 0;
    for (size_t t = 0; t < nt; t++) tot += pl->post[t].n - pl->post[t].head;
    size_t rows = pl->snap_dt > 0 ? pl->snap_k[0] : 0;
    double *syn = sb_malloc((5 * ns + 1) * sizeof *syn), *post = sb_malloc((3 * tot + 1) * sizeof *post);
    double *snap = sb_malloc((rows * ns + 1) * sizeof *snap);
    uint64_t *pn = sb_malloc((nt + 1) * sizeof *pn);
    if (!syn || !post || !snap || !pn) st = SB_ENOMEM;
    if (!st) {
      FOR_CANONICAL(net, pr, {
        const sb_stdp_syn *y = &pl->syn[k][x];
        double *o = syn + 5 * q;
        o[0] = y->w; o[1] = y->Kplus; o[2] = y->Kplus_triplet; o[3] = y->t_last; o[4] = y->t_done;
        for (size_t r = 0; r < rows; r++) snap[r * ns + q] = pl->snap[r * ns + pl->off[k] + x];
      });
      size_t at = 0;
      for (size_t t = 0; t < nt; t++) {
        const sb_stdp_post *p = &pl->post[t];
        pn[t] = p->n - p->head;
        for (size_t h = p->head; h < p->n; h++) {
          post[at++] = p->h[h].t; post[at++] = p->h[h].Kminus; post[at++] = p->h[h].Kminus_triplet;
        }
      }
      /* snapshot rows taken and the next history trim; equal on every partition between windows */
      double meta[2] = {(double)rows, pl->next_trim[0]};
      char name[64];
      /* the rule and its parameters: a resume with another rule or other parameters is refused */
      double prm[RULE_N];
      rule_params(&pl->prm, prm);
      cp_name(name, sizeof name, i, "rule");
      if (sb_h5_attr_write_string(g, name, sb_stdp_model_name(&pl->prm))) st = SB_EIO;
      cp_name(name, sizeof name, i, "params");
      if (!st) st = sb_h5_write_1d(g, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, prm, RULE_N);
      cp_name(name, sizeof name, i, "syn");
      if (!st) st = sb_h5_write_1d(g, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, syn, 5 * ns);
      cp_name(name, sizeof name, i, "post_counts");
      if (!st) st = sb_h5_write_1d(g, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, pn, nt);
      cp_name(name, sizeof name, i, "post");
      if (!st) st = sb_h5_write_1d(g, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, post, 3 * tot);
      cp_name(name, sizeof name, i, "snapshots");
      if (!st) st = sb_h5_write_1d(g, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, snap, rows * ns);
      cp_name(name, sizeof name, i, "meta");
      if (!st) st = sb_h5_write_1d(g, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, meta, 2);
      if (st && st != SB_ENOMEM) st = sb_error_prefix_(st, "checkpoint: projections[%d] (plastic)", i);
    }
    sb_free(syn); sb_free(post); sb_free(snap); sb_free(pn);
  }
  return st;
}

/* Read /checkpoint/plastic_<proj>_<what> with exactly `want` elements. */
static int cp_read(hid_t g, const char *file, int proj, const char *what, hid_t mt, void **d, size_t want) {
  char name[64];
  cp_name(name, sizeof name, proj, what);
  return sb_checkpoint_read_(g, file, name, mt, d, want);
}

int sb_plastic_checkpoint_read_(sb_net *net, hid_t g, const char *file) {
  for (int i = 0; i < net->n_projs; i++) {
    sb_proj *pr = &net->projs[i];
    struct sb_plastic *pl = pr->pl;
    char name[64];
    cp_name(name, sizeof name, i, "syn");
    int had = sb_h5_exists(g, name);
    if (!pl && had)
      SB_ERROR(SB_EFORMAT, "%s: projections[%d] is plastic in the checkpoint, static in this model (not the same model?)", file, i);
    if (!pl) continue;
    if (!had)
      SB_ERROR(SB_EFORMAT, "%s: projections[%d] is static in the checkpoint, plastic (%s) in this model (not the same model?)",
               file, i, sb_stdp_model_name(&pl->prm));
    {
      char *rule = NULL;
      double want[RULE_N], *got = NULL;
      cp_name(name, sizeof name, i, "rule");
      int bad = sb_h5_attr_read_string(g, name, &rule);
      if (bad) sb_error_clear();
      if (bad || strcmp(rule, sb_stdp_model_name(&pl->prm))) {
        SB_SET_ERROR(SB_EFORMAT, "%s: projections[%d]: synapse_model %s in the checkpoint, %s in this model (not the same model?)",
                     file, i, rule ? rule : "(unknown)", sb_stdp_model_name(&pl->prm));
        sb_free(rule);
        return SB_EFORMAT;
      }
      sb_free(rule);
      int st = cp_read(g, file, i, "params", H5T_NATIVE_DOUBLE, (void **)&got, RULE_N);
      if (st) return st;
      rule_params(&pl->prm, want);
      for (int q = 0; q < RULE_N; q++)
        if (memcmp(&got[q], &want[q], sizeof want[q])) {
          SB_SET_ERROR(SB_EFORMAT, "%s: projections[%d].synapse_params.%s: %g in the checkpoint, %g in this model (not the same model?)",
                       file, i, rule_names[q], got[q], want[q]);
          sb_free(got);
          return SB_EFORMAT;
        }
      sb_free(got);
    }
    size_t ns = pr->nsyn, nt = pl->nt, tot = 0;
    double *syn = NULL, *post = NULL, *snap = NULL, *meta = NULL;
    uint64_t *pn = NULL;
    int st = cp_read(g, file, i, "meta", H5T_NATIVE_DOUBLE, (void **)&meta, 2);
    size_t rows = st ? 0 : (size_t)meta[0];
    if (!st && (meta[0] < 0 || meta[0] > (double)(SIZE_MAX / 16) / (double)(ns + 1) || meta[0] != (double)rows ||
                (rows && !(pl->snap_dt > 0))))
      st = SB_SET_ERROR(SB_EFORMAT, "%s: /checkpoint/plastic_%d_meta: %g snapshot rows does not fit this model", file, i, meta[0]);
    if (!st) st = cp_read(g, file, i, "syn", H5T_NATIVE_DOUBLE, (void **)&syn, 5 * ns);
    if (!st) st = cp_read(g, file, i, "post_counts", H5T_NATIVE_UINT64, (void **)&pn, nt);
    for (size_t t = 0; !st && t < nt; t++) tot += pn[t];
    if (!st) st = cp_read(g, file, i, "post", H5T_NATIVE_DOUBLE, (void **)&post, 3 * tot);
    if (!st) st = cp_read(g, file, i, "snapshots", H5T_NATIVE_DOUBLE, (void **)&snap, rows * ns);
    /* NaN weights, traces or post-spike times would spread through the run: refuse them
     * (infinite times are legitimate: "no spike yet") */
    for (size_t j = 0; !st && j < 5 * ns; j++)
      if (isnan(syn[j]))
        st = SB_SET_ERROR(SB_EFORMAT, "%s: /checkpoint/plastic_%d_syn[%zu]: NaN (synapse %zu), expected a number", file, i, j,
                          j / 5);
    for (size_t j = 0; !st && j < 3 * tot; j++)
      if (isnan(post[j])) st = SB_SET_ERROR(SB_EFORMAT, "%s: /checkpoint/plastic_%d_post[%zu]: NaN, expected a number", file, i, j);
    if (!st && rows > pl->snap_cap) {
      double *s = sb_realloc(pl->snap, rows * (ns + 1) * sizeof *s);
      if (!s) st = SB_ENOMEM;
      else { pl->snap = s; pl->snap_cap = rows; }
    }
    if (!st) {
      FOR_CANONICAL(net, pr, {
        const double *o = syn + 5 * q;
        pl->syn[k][x] = (sb_stdp_syn){o[0], o[1], o[2], o[3], o[4]};
        for (size_t r = 0; r < rows; r++) pl->snap[r * ns + pl->off[k] + x] = snap[r * ns + q];
      });
      for (int k = 0; k < pl->T; k++) { pl->snap_k[k] = rows; pl->next_trim[k] = meta[1]; }
      size_t at = 0;
      for (size_t t = 0; t < nt && !st; t++) {
        sb_stdp_post *p = &pl->post[t];
        p->head = p->n = 0;
        if (pn[t] > p->cap) {
          sb_stdp_hist *h = sb_realloc(p->h, pn[t] * sizeof *h);
          if (!h) { st = SB_ENOMEM; break; }
          p->h = h;
          p->cap = pn[t];
        }
        for (uint64_t h = 0; h < pn[t]; h++, at += 3) p->h[p->n++] = (sb_stdp_hist){post[at], post[at + 1], post[at + 2]};
      }
    }
    sb_free(syn); sb_free(post); sb_free(snap); sb_free(meta); sb_free(pn);
    if (st) return st;
  }
  return SB_OK;
}
