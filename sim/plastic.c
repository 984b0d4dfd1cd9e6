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

int sb_stdp_connect(sb_net *net, int src, int tgt, const sb_conn_spec *conn, const sb_syn_spec *syn,
                    const sb_stdp_params *stdp, int *proj) {
  if (conn->rule == SB_RULE_ONE_TO_ONE)
    SB_ERROR(SB_EINVAL, "rule: plastic synapses (%s) need a sparse rule; write one_to_one as explicit",
             sb_stdp_model_name(stdp));
  int pid, rc;
  if ((rc = sb_net_connect(net, src, tgt, conn, syn, &pid))) return rc;
  sb_proj *pr = &net->projs[pid];
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
  sb_stdp_syn *sy = pl->syn[k];
  for (uint32_t x = a; x < e; x++) {
    double d = syn_delay(pr, c, x), ta = ts + d;
    double w = sb_stdp_pre(&pl->prm, &sy[x], &pl->post[c->tgt[x]], ts, d);
    uint64_t b = sb_bin_(net, ta);
    size_t g = tf + c->tgt[x];
    if (sb_ev_push_(&net->ev[(size_t)(b % (uint64_t)net->S) * net->n + g], ta, w)) return SB_ENOMEM;
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

int sb_plastic_run_start_(sb_net *net, double t_stop) {
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
  size_t n = pr->pl->snap_dt > 0 ? pr->pl->snap_k[0] : 0;
  for (int k = 1; k < net->threads; k++)
    if (pr->pl->snap_k[k] < n) n = pr->pl->snap_k[k];
  *w = pr->pl->snap;
  *n_times = n;
  if (interval) *interval = pr->pl->snap_dt;
  return SB_OK;
}

static int write_proj(const sb_net *net, int i, hid_t file) {
  const sb_proj *pr = &net->projs[i];
  const struct sb_plastic *pl = pr->pl;
  size_t n = pr->nsyn;
  char name[64];
  snprintf(name, sizeof name, "weights/%d", i);
  hid_t g = sb_h5_group(file, name);
  if (g < 0) SB_ERROR(SB_EIO, "cannot create group /%s", name);
  uint32_t *s = sb_malloc((n + 1) * sizeof *s), *t = sb_malloc((n + 1) * sizeof *t);
  double *d = sb_malloc((n + 1) * sizeof *d), *w = sb_malloc((n + 1) * sizeof *w);
  int rc = SB_ENOMEM;
  if (s && t && d && w) {
    sb_stdp_get_synapses(net, i, s, t, d, w);
    rc = SB_OK;
    const sb_stdp_params *p = &pl->prm;
    double prm[] = {p->tau_plus, p->tau_minus, p->lambda, p->alpha, p->mu_plus, p->mu_minus, p->Wmax,
                    p->tau_plus_triplet, p->tau_minus_triplet, p->Aplus, p->Aminus, p->Aplus_triplet, p->Aminus_triplet};
    const char *pn[] = {"tau_plus", "tau_minus", "lambda", "alpha", "mu_plus", "mu_minus", "Wmax",
                        "tau_plus_triplet", "tau_minus_triplet", "Aplus", "Aminus", "Aplus_triplet", "Aminus_triplet"};
    rc |= sb_h5_attr_write_string(g, "source", net->pops[pr->src].name);
    rc |= sb_h5_attr_write_string(g, "target", net->pops[pr->tgt].name);
    rc |= sb_h5_attr_write_string(g, "synapse_model", sb_stdp_model_name(p));
    for (size_t q = 0; q < sizeof prm / sizeof *prm; q++) rc |= sb_h5_attr_write_doubles(g, pn[q], &prm[q], 1);
    double tnow = net->t;
    rc |= sb_h5_attr_write_doubles(g, "time", &tnow, 1);
    rc |= sb_h5_write_1d(g, "source_node_ids", H5T_STD_U64LE, H5T_NATIVE_UINT32, s, n);
    rc |= sb_h5_write_1d(g, "target_node_ids", H5T_STD_U64LE, H5T_NATIVE_UINT32, t, n);
    rc |= sb_h5_write_1d(g, "delay", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, d, n);
    rc |= sb_h5_write_1d(g, "weight", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, w, n);
    const double *snap;
    size_t nt;
    double dt;
    sb_stdp_snapshots(net, i, &snap, &nt, &dt);
    if (!rc && nt > 0) {
      double *tt = sb_malloc(nt * sizeof *tt);
      if (!tt) rc = SB_ENOMEM;
      else {
        for (size_t j = 0; j < nt; j++) tt[j] = (double)j * dt;
        rc |= sb_h5_write_1d(g, "snapshot_times", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, tt, nt);
        sb_free(tt);
        hsize_t dims[2] = {nt, n};
        hid_t sp = H5Screate_simple(2, dims, NULL);
        hid_t ds = sp < 0 ? -1 : H5Dcreate2(g, "snapshots", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (ds < 0 || H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, snap) < 0) rc = SB_EIO;
        if (ds >= 0) H5Dclose(ds);
        if (sp >= 0) H5Sclose(sp);
      }
    }
    if (rc && rc != SB_ENOMEM) rc = SB_EIO;
  }
  sb_free(s); sb_free(t); sb_free(d); sb_free(w);
  H5Gclose(g);
  if (rc == SB_EIO) SB_ERROR(SB_EIO, "cannot write /%s", name);
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
