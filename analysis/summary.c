/* Streaming summary of one population: per-neuron running state updated window by window, so a
 * file of any size is summarised holding at most `window` spikes (plus per-neuron state and the
 * spikes of the K neurons used for pairwise measures). The array statistics it mirrors are in
 * stats.c; the tests check both agree. */
#include "analysis/analysis.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PAIR_CAP 200000   /* spikes kept per neuron for pairwise measures */
#define VP_MAX_WORK 2.5e7  /* DP cells above which Victor-Purpura is skipped (~50 ms a pair) */

void sb_stats_opts_default(sb_stats_opts *o) {
  o->t_start = 0.0;
  o->t_stop = NAN;
  o->bin = 5.0;
  o->sigma = NAN;
  o->window = (size_t)1 << 20;
  o->n_pairs_neurons = 20;
  o->sttc_dt = 5.0;
  o->vr_tau = 10.0;
  o->vp_q = 0.1;
  o->cch_max_lag = 50.0;
  o->progress = 0;
  o->node_ids = NULL;
  o->n_node_ids = 0;
}

/* The progress line of the current summary (NULL when off); passes report through it. */
static _Thread_local sb_progress *prog;
static _Thread_local const char *prog_what;

static void progress(size_t done, size_t n) {
  if (prog)
    sb_progress_update(prog, "analyze: %s %.0f%% of %zu spikes", prog_what, n ? 100.0 * (double)done / (double)n : 100.0, n);
}

/* ---- node id -> dense index ---- */

/* Ids below SB_DIRECT_MAX (the usual dense 0..N-1 node ids) are looked up in a direct table
 * grown to the largest id seen; larger ids go to an open-addressing hash table. */
#define SB_DIRECT_MAX ((uint64_t)1 << 22)

typedef struct {
  uint32_t *direct;  /* (dcap) dense index + 1; 0 = unseen */
  size_t dcap;
  uint64_t *keys;
  uint32_t *vals;   /* dense index + 1; 0 = empty slot */
  size_t cap, nh;   /* hash capacity and entries */
  size_t n;         /* dense indices handed out */
} idmap;

static inline size_t hash64(uint64_t x) {
  x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL; x ^= x >> 33;
  return (size_t)x;
}

static int idmap_grow(idmap *m) {
  size_t nc = m->cap ? 2 * m->cap : 1024;
  uint64_t *nk = sb_malloc(nc * sizeof *nk);
  uint32_t *nv = sb_calloc(nc, sizeof *nv);
  if (!nk || !nv) { sb_free(nk); sb_free(nv); return SB_ENOMEM; }
  for (size_t i = 0; i < m->cap; i++)
    if (m->vals[i]) {
      size_t h = hash64(m->keys[i]) & (nc - 1);
      while (nv[h]) h = (h + 1) & (nc - 1);
      nk[h] = m->keys[i];
      nv[h] = m->vals[i];
    }
  sb_free(m->keys); sb_free(m->vals);
  m->keys = nk; m->vals = nv; m->cap = nc;
  return SB_OK;
}

/* Dense index of `id`, inserting it as `m->n` if new (*is_new = 1). -1 on allocation failure. */
static long idmap_get(idmap *m, uint64_t id, int *is_new) {
  *is_new = 0;
  if (id < SB_DIRECT_MAX) {
    if (id >= m->dcap) {
      size_t nc = m->dcap ? m->dcap : 1024;
      while (nc <= id) nc *= 2;
      uint32_t *nd = sb_realloc(m->direct, nc * sizeof *nd);
      if (!nd) return -1;
      memset(nd + m->dcap, 0, (nc - m->dcap) * sizeof *nd);
      m->direct = nd;
      m->dcap = nc;
    }
    uint32_t v = m->direct[id];
    if (v) return (long)v - 1;
    m->direct[id] = (uint32_t)(m->n + 1);
    *is_new = 1;
    return (long)m->n++;
  }
  if ((m->nh + 1) * 2 > m->cap && idmap_grow(m)) return -1;
  size_t h = hash64(id) & (m->cap - 1);
  while (m->vals[h]) {
    if (m->keys[h] == id) return (long)m->vals[h] - 1;
    h = (h + 1) & (m->cap - 1);
  }
  m->keys[h] = id;
  m->vals[h] = (uint32_t)(m->n + 1);
  m->nh++;
  *is_new = 1;
  return (long)m->n++;
}

static void idmap_free(idmap *m) { sb_free(m->direct); sb_free(m->keys); sb_free(m->vals); memset(m, 0, sizeof *m); }

/* ---- per-neuron running state ---- */

typedef struct {
  uint64_t id;
  size_t n_all, n;        /* spikes in file / in [t_start, t_stop] */
  double last, prev_isi;  /* NaN when none yet */
  double isi_mean, isi_m2;
  size_t n_isi, n_pairs;
  double cv2_sum, lv_sum;
  int zero_pair;
  long cur_bin;
  double cur_count, cnt_sum, cnt_sumsq;
} nstate;

typedef struct {
  const sb_stats_opts *o;
  double t0, t1;
  size_t n_bins;
  double *hist;            /* (n_bins) population counts */
  size_t n_irate;
  double *irate_hist;      /* (n_irate) np.histogram counts for the smoothed rate */
  double irate_hi, irate_w;
  double isi_hist[SB_ISI_HIST_BINS];
  double isi_e[SB_ISI_HIST_BINS + 1];   /* ISI histogram edges, ms */
  nstate *ns;
  size_t n_ns, cap_ns;
  size_t n_listed;         /* neurons from opts.node_ids (the first n_listed dense indices) */
  int listed;              /* 1: opts.node_ids was given (a closed list, even of 0 nodes): a spike
                            * of another id is refused; 0: the neurons are the ids seen */
  double t_last;           /* latest spike time read by pass_main */
  idmap map;
} acc;

static void nstate_init(nstate *s, uint64_t id) {
  memset(s, 0, sizeof *s);
  s->id = id;
  s->last = s->prev_isi = NAN;
  s->cur_bin = -1;
}

static long neuron_index(acc *a, uint64_t id) {
  int is_new;
  long k = idmap_get(&a->map, id, &is_new);
  if (k < 0) return -1;
  if (is_new) {
    if (a->n_ns == a->cap_ns) {
      size_t nc = a->cap_ns ? 2 * a->cap_ns : 1024;
      nstate *nn = sb_realloc(a->ns, nc * sizeof *nn);
      if (!nn) return -1;
      a->ns = nn;
      a->cap_ns = nc;
    }
    nstate_init(&a->ns[a->n_ns++], id);
  }
  return k;
}

/* ISI histogram bin: 10 per decade from 0.1 ms, b = floor(10 (log10(isi) + 1)) clipped to
 * [0, 59]; found by binary search in the edges 10^(-1 + b/10) instead of a log10 per interval. */
static void isi_edges_init(double *e) {
  for (int b = 0; b <= SB_ISI_HIST_BINS; b++) e[b] = pow(10.0, -1.0 + b / 10.0);
}
static inline int isi_bin(const double *e, double isi) {
  int lo = 0, hi = SB_ISI_HIST_BINS - 1;   /* the last bin with e[b] <= isi */
  while (lo < hi) {
    int mid = (lo + hi + 1) / 2;
    if (e[mid] <= isi) lo = mid; else hi = mid - 1;
  }
  return lo;
}

/* One spike of neuron s at time t, which must not precede the neuron's previous spike.
 * Returns 1 if it does (the caller switches to the id-partitioned mode). */
static inline int feed(acc *a, nstate *s, double t) {
  if (t < a->t0 || t > a->t1) return 0;
  if (s->n && t < s->last) return 1;
  s->n++;
  if (s->n > 1) {
    double isi = t - s->last;
    s->n_isi++;
    double d = isi - s->isi_mean;
    s->isi_mean += d / (double)s->n_isi;
    s->isi_m2 += d * (isi - s->isi_mean);
    a->isi_hist[isi_bin(a->isi_e, isi)] += 1;
    if (s->n_isi > 1) {
      double den = s->prev_isi + isi;
      if (den == 0) s->zero_pair = 1;
      else {
        s->cv2_sum += fabs(isi - s->prev_isi) / den;
        double r = (s->prev_isi - isi) / den;
        s->lv_sum += r * r;
      }
      s->n_pairs++;
    }
    s->prev_isi = isi;
  }
  s->last = t;
  long b = sb_stats_bin_index(t, a->t0, a->t1, a->o->bin, a->n_bins);
  if (b >= 0) {
    a->hist[b] += 1;
    if (b == s->cur_bin) s->cur_count += 1;
    else {
      s->cnt_sum += s->cur_count;
      s->cnt_sumsq += s->cur_count * s->cur_count;
      s->cur_bin = b;
      s->cur_count = 1;
    }
  }
  if (a->n_irate && t <= a->irate_hi) {
    size_t k = t == a->irate_hi ? a->n_irate - 1 : (size_t)((t - a->t0) / a->irate_w);
    a->irate_hist[k < a->n_irate ? k : a->n_irate - 1] += 1;
  }
  return 0;
}

/* Reset everything feed() accumulated (before re-running in the partitioned mode). */
static void acc_reset_stats(acc *a) {
  memset(a->hist, 0, a->n_bins * sizeof *a->hist);
  if (a->n_irate) memset(a->irate_hist, 0, a->n_irate * sizeof *a->irate_hist);
  memset(a->isi_hist, 0, sizeof a->isi_hist);
  for (size_t i = 0; i < a->n_ns; i++) {
    size_t n_all = a->ns[i].n_all;
    nstate_init(&a->ns[i], a->ns[i].id);
    a->ns[i].n_all = n_all;
  }
}

/* ---- passes ---- */

typedef struct { double t; uint32_t k; } tk;
static int cmp_tk(const void *x, const void *y) {
  const tk *a = x, *b = y;
  if (a->k != b->k) return a->k < b->k ? -1 : 1;
  return a->t < b->t ? -1 : a->t > b->t;
}
static int cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return a < b ? -1 : a > b;
}

/* Pass over times only: validates every time, finds the last one. */
static int pass_times(sb_spk_file *f, size_t pop, size_t n, size_t W, double *t, double *t_max) {
  *t_max = -INFINITY;
  for (size_t off = 0; off < n; off += W) {
    size_t m = n - off < W ? n - off : W;
    int st = sb_spk_read(f, pop, off, m, t, NULL);
    if (st) return st;
    for (size_t i = 0; i < m; i++) if (t[i] > *t_max) *t_max = t[i];
    progress(off + m, n);
  }
  return SB_OK;
}

/* Main pass: ids and times, per-neuron state in file order. *violated = 1 if some neuron's
 * spikes are out of time order (the state is then incomplete). */
static int pass_main(acc *a, sb_spk_file *f, size_t pop, size_t n, size_t W, double *t, uint64_t *id, int *violated,
                     int check_time_order, int *time_order_broken) {
  *violated = 0;
  double prev = -INFINITY;
  for (size_t off = 0; off < n; off += W) {
    size_t m = n - off < W ? n - off : W;
    int st = sb_spk_read(f, pop, off, m, t, id);
    if (st) return st;
    if (check_time_order) {
      for (size_t i = 0; i < m; i++) {
        if (t[i] < prev) { *time_order_broken = 1; return SB_OK; }
        prev = t[i];
      }
    }
    for (size_t i = 0; i < m; i++) {
      long k = neuron_index(a, id[i]);
      if (k < 0) return SB_ENOMEM;
      if (a->listed && (size_t)k >= a->n_listed)   /* it would count as an extra neuron */
        SB_ERROR(SB_EFORMAT, "%s: population %s: spike %zu has node id %llu, which the %zu node ids given for the "
                 "population (--nodes) do not include: expected the nodes file of these spikes", sb_spk_file_path(f),
                 sb_spk_pop(f, pop)->name, off + i,
                 (unsigned long long)id[i], a->n_listed);
      nstate *s = &a->ns[k];
      s->n_all++;
      if (t[i] > a->t_last) a->t_last = t[i];
      if (!*violated && feed(a, s, t[i])) *violated = 1;
    }
    progress(off + m, n);
  }
  return SB_OK;
}

/* Id-partitioned passes for files whose per-neuron order is not guaranteed: neurons (dense
 * indices, counts known) are grouped so each group has at most W spikes; for each group the
 * file is read again and the group's spikes are sorted by (neuron, time) and fed. */
static int pass_partitioned(acc *a, sb_spk_file *f, size_t pop, size_t n, size_t W, double *t, uint64_t *id,
                            int *passes, size_t *peak) {
  acc_reset_stats(a);
  size_t lo = 0;
  int st = SB_OK;
  tk *buf = NULL;
  size_t cap = 0;
  while (lo < a->n_ns && !st) {
    size_t hi = lo, tot = 0;
    while (hi < a->n_ns && (hi == lo || tot + a->ns[hi].n_all <= W)) tot += a->ns[hi++].n_all;
    if (tot > cap) {
      tk *nb = sb_realloc(buf, tot * sizeof *nb);
      if (!nb) { st = SB_ENOMEM; break; }
      buf = nb;
      cap = tot;
    }
    size_t got = 0;
    for (size_t off = 0; off < n && !st; off += W) {
      size_t m = n - off < W ? n - off : W;
      st = sb_spk_read(f, pop, off, m, t, id);
      for (size_t i = 0; !st && i < m; i++) {
        int is_new;
        long k = idmap_get(&a->map, id[i], &is_new);
        if ((size_t)k >= lo && (size_t)k < hi && got < tot) buf[got++] = (tk){t[i], (uint32_t)k};
      }
    }
    (*passes)++;
    if (W + got > *peak) *peak = W + got;
    qsort(buf, got, sizeof *buf, cmp_tk);
    for (size_t i = 0; i < got; i++) feed(a, &a->ns[buf[i].k], buf[i].t);
    lo = hi;
  }
  sb_free(buf);
  return st;
}

/* ---- pairwise measures over the K most active neurons ---- */

typedef struct { size_t n; uint64_t id; size_t k; } rank_entry;
static int cmp_rank(const void *x, const void *y) {
  const rank_entry *a = x, *b = y;
  if (a->n != b->n) return a->n > b->n ? -1 : 1;
  return a->id < b->id ? -1 : a->id > b->id;
}

static int pairwise(acc *a, sb_spk_file *f, size_t pop, size_t n, size_t W, double *t, uint64_t *id,
                    sb_stats_summary *s) {
  size_t K = a->n_ns < a->o->n_pairs_neurons ? a->n_ns : a->o->n_pairs_neurons;
  s->K = K;
  s->cch_L = (size_t)floor(a->o->cch_max_lag / a->o->bin);
  s->cch = sb_calloc(2 * s->cch_L + 1, sizeof *s->cch);
  if (!s->cch) return SB_ENOMEM;
  s->mean_corrcoef = s->mean_sttc = NAN;
  s->pairs_t_stop = a->t1;
  if (K == 0) return SB_OK;
  rank_entry *r = sb_malloc(a->n_ns * sizeof *r);
  long *slot = sb_malloc(a->n_ns * sizeof *slot);
  double **tr = sb_calloc(K, sizeof *tr);
  size_t *nt = sb_calloc(K, sizeof *nt), *cp = sb_calloc(K, sizeof *cp);
  s->pair_ids = sb_malloc(K * sizeof *s->pair_ids);
  s->corrcoef = sb_malloc(K * K * sizeof(double));
  s->sttc = sb_malloc(K * K * sizeof(double));
  s->van_rossum = sb_malloc(K * K * sizeof(double));
  s->victor_purpura = sb_malloc(K * K * sizeof(double));
  int st = SB_OK;
  if (!r || !slot || !tr || !nt || !cp || !s->pair_ids || !s->corrcoef || !s->sttc || !s->van_rossum ||
      !s->victor_purpura) { st = SB_ENOMEM; goto done; }
  for (size_t i = 0; i < a->n_ns; i++) { r[i] = (rank_entry){a->ns[i].n, a->ns[i].id, i}; slot[i] = -1; }
  qsort(r, a->n_ns, sizeof *r, cmp_rank);
  for (size_t j = 0; j < K; j++) {
    slot[r[j].k] = (long)j;
    s->pair_ids[j] = r[j].id;
    /* a train beyond PAIR_CAP keeps its PAIR_CAP earliest spikes: a buffer of twice that, cut
     * back to the earliest half when full (any file order) */
    cp[j] = a->ns[r[j].k].n <= PAIR_CAP ? a->ns[r[j].k].n : 2 * PAIR_CAP;
    tr[j] = sb_malloc((cp[j] + 1) * sizeof **tr);
    if (!tr[j]) { st = SB_ENOMEM; goto done; }
  }
  for (size_t off = 0; off < n && !st; off += W) {
    size_t m = n - off < W ? n - off : W;
    st = sb_spk_read(f, pop, off, m, t, id);
    for (size_t i = 0; !st && i < m; i++) {
      if (t[i] < a->t0 || t[i] > a->t1) continue;
      int is_new;
      long k = idmap_get(&a->map, id[i], &is_new);
      long j = slot[k];
      if (j < 0 || (nt[j] == cp[j] && cp[j] != 2 * PAIR_CAP)) continue;   /* (counted: cannot overflow) */
      if (nt[j] == cp[j]) {   /* only for a capped train: keep the earliest PAIR_CAP */
        qsort(tr[j], nt[j], sizeof **tr, cmp_double);
        nt[j] = PAIR_CAP;
      }
      tr[j][nt[j]++] = t[i];
    }
  }
  if (st) goto done;
  /* the pair window: [t0, t1], or up to the earliest end of a capped train's kept spikes, so that
   * every train is complete in it (cut trains over the whole window biased corr and STTC) */
  double p1 = a->t1;
  for (size_t j = 0; j < K; j++) {
    qsort(tr[j], nt[j], sizeof **tr, cmp_double);
    if (nt[j] > PAIR_CAP) {
      nt[j] = PAIR_CAP;
      if (tr[j][PAIR_CAP - 1] < p1) p1 = tr[j][PAIR_CAP - 1];
    }
  }
  if (p1 < a->t1) {   /* [t0, p1): a spike at p1 may have companions beyond the cap */
    s->pairs_truncated = 1;
    for (size_t j = 0; j < K; j++)
      while (nt[j] && tr[j][nt[j] - 1] >= p1) nt[j]--;
  }
  s->pairs_t_stop = p1;
  /* binned trains as sparse (bin, count) lists: Elephant's _covariance_sparse formula */
  size_t B = p1 < a->t1 ? sb_stats_n_bins(a->t0, p1, a->o->bin) : a->n_bins;
  long **bins = sb_calloc(K, sizeof *bins);
  double **cnt = sb_calloc(K, sizeof *cnt);
  size_t *nb = sb_calloc(K, sizeof *nb);
  double *S = sb_calloc(K, sizeof *S), *SS = sb_calloc(K, sizeof *SS);
  if (!bins || !cnt || !nb || !S || !SS) st = SB_ENOMEM;
  for (size_t j = 0; !st && j < K; j++) {
    bins[j] = sb_malloc((nt[j] + 1) * sizeof **bins);
    cnt[j] = sb_malloc((nt[j] + 1) * sizeof **cnt);
    if (!bins[j] || !cnt[j]) { st = SB_ENOMEM; break; }
    for (size_t i = 0; i < nt[j]; i++) {
      long b = sb_stats_bin_index(tr[j][i], a->t0, p1, a->o->bin, B);
      if (b < 0) continue;
      if (nb[j] && bins[j][nb[j] - 1] == b) cnt[j][nb[j] - 1] += 1;
      else { bins[j][nb[j]] = b; cnt[j][nb[j]] = 1; nb[j]++; }
    }
    for (size_t i = 0; i < nb[j]; i++) { S[j] += cnt[j][i]; SS[j] += cnt[j][i] * cnt[j][i]; }
  }
  double sum_cc = 0, sum_st = 0;
  size_t n_cc = 0, n_st = 0;
  long L = (long)s->cch_L;
  for (size_t i = 0; !st && i < K; i++)
    for (size_t j = i; j < K; j++) {
      /* dot product of the sparse binned trains, and the CCH for i < j */
      double dot = 0;
      size_t q = 0, lo = 0;
      for (size_t p = 0; p < nb[i]; p++) {
        while (q < nb[j] && bins[j][q] < bins[i][p]) q++;
        if (q < nb[j] && bins[j][q] == bins[i][p]) dot += cnt[i][p] * cnt[j][q];
        if (i != j) {
          while (lo < nb[j] && bins[j][lo] < bins[i][p] - L) lo++;
          for (size_t u = lo; u < nb[j] && bins[j][u] <= bins[i][p] + L; u++)
            s->cch[bins[j][u] - bins[i][p] + L] += cnt[i][p] * cnt[j][u];
        }
      }
      double vi = SS[i] - S[i] * S[i] / (double)B, vj = SS[j] - S[j] * S[j] / (double)B;
      double cc = (B > 0 && vi > 0 && vj > 0) ? (dot - S[i] * S[j] / (double)B) / sqrt(vi * vj) : NAN;
      double stc = sb_stats_sttc(tr[i], nt[i], tr[j], nt[j], a->o->sttc_dt, a->t0, p1, NULL);
      double vr = i == j ? 0.0 : sb_stats_van_rossum(tr[i], nt[i], tr[j], nt[j], a->o->vr_tau);
      double vp = i == j ? 0.0
                  : sb_stats_victor_purpura_cells(tr[i], nt[i], tr[j], nt[j], a->o->vp_q) > VP_MAX_WORK ? NAN
                  : sb_stats_victor_purpura(tr[i], nt[i], tr[j], nt[j], a->o->vp_q);
      s->corrcoef[i * K + j] = s->corrcoef[j * K + i] = cc;
      s->sttc[i * K + j] = s->sttc[j * K + i] = stc;
      s->van_rossum[i * K + j] = s->van_rossum[j * K + i] = vr;
      s->victor_purpura[i * K + j] = s->victor_purpura[j * K + i] = vp;
      if (i != j && !isnan(cc)) { sum_cc += cc; n_cc++; }
      if (i != j && !isnan(stc)) { sum_st += stc; n_st++; }
    }
  s->mean_corrcoef = n_cc ? sum_cc / (double)n_cc : NAN;
  s->mean_sttc = n_st ? sum_st / (double)n_st : NAN;
  for (size_t j = 0; bins && cnt && j < K; j++) { sb_free(bins[j]); sb_free(cnt[j]); }
  sb_free(bins); sb_free(cnt); sb_free(nb); sb_free(S); sb_free(SS);
done:
  for (size_t j = 0; tr && j < K; j++) sb_free(tr[j]);
  sb_free(tr); sb_free(nt); sb_free(cp); sb_free(r); sb_free(slot);
  return st;
}

/* ---- the summary ---- */

void sb_stats_summary_free(sb_stats_summary *s) {
  if (!s) return;
  sb_free(s->population);
  sb_free(s->psth);
  sb_free(s->irate);
  sb_free(s->neurons);
  sb_free(s->pair_ids);
  sb_free(s->corrcoef);
  sb_free(s->sttc);
  sb_free(s->van_rossum);
  sb_free(s->victor_purpura);
  sb_free(s->cch);
  sb_free(s);
}

static int cmp_neuron(const void *x, const void *y) {
  const sb_stats_neuron *a = x, *b = y;
  return a->id < b->id ? -1 : a->id > b->id;
}

static double mean_defined(const sb_stats_neuron *v, size_t n, size_t off, size_t *count) {
  double s = 0;
  size_t c = 0;
  for (size_t i = 0; i < n; i++) {
    double x = *(const double *)(const void *)((const char *)&v[i] + off);
    if (!isnan(x)) { s += x; c++; }
  }
  *count = c;
  return c ? s / (double)c : NAN;
}

/* One attempt. With `shortcut`, a by_time file's last timestamp is taken as the default t_stop
 * without the times-only pass; if the file turns out not to be in time order, *retry is set
 * and the caller runs again without the shortcut. */
static int summarize(sb_spk_file *f, size_t pop, const sb_stats_opts *o, int shortcut, int *retry,
                     sb_stats_summary **out) {
  *out = NULL;
  prog_what = "reading";
  const sb_spk_pop_info *pi = sb_spk_pop(f, pop);
  if (!pi) SB_ERROR(SB_EINVAL, "population index %zu out of range", pop);
  if (!(o->bin > 0) || !isfinite(o->bin)) SB_ERROR(SB_EINVAL, "--bin: must be > 0 ms (got %g)", o->bin);
  if (!(o->t_start >= 0) || !isfinite(o->t_start)) SB_ERROR(SB_EINVAL, "--t-start: must be >= 0 ms (got %g)", o->t_start);
  if (!isnan(o->t_stop) && !(o->t_stop > o->t_start))
    SB_ERROR(SB_EINVAL, "--t-stop: must be > t_start = %g ms (got %g)", o->t_start, o->t_stop);
  size_t n = pi->n_spikes, W = o->window ? o->window : 1;
  sb_stats_summary *s = sb_calloc(1, sizeof *s);
  double *t = sb_malloc((W < n ? W : n ? n : 1) * sizeof *t);
  uint64_t *id = sb_malloc((W < n ? W : n ? n : 1) * sizeof *id);
  acc a;
  memset(&a, 0, sizeof a);
  a.o = o;
  isi_edges_init(a.isi_e);
  int st = (!s || !t || !id) ? SB_ENOMEM : SB_OK;
  if (!st) s->population = sb_strdup(pi->name);
  if (!st && !s->population) st = SB_ENOMEM;
  if (st) goto fail;
  if (W > n) W = n ? n : 1;
  s->n_spikes_file = n;
  s->peak_window_spikes = W;
  double t_max = -INFINITY;
  if (!st && shortcut) st = sb_spk_read(f, pop, n - 1, 1, &t_max, NULL);
  else if (!st) {
    st = pass_times(f, pop, n, W, t, &t_max);
    s->passes = 1;
  }
  a.t0 = o->t_start;
  a.t1 = !isnan(o->t_stop) ? o->t_stop : (n && t_max > o->t_start ? t_max : o->t_start);
  s->t_start = a.t0;
  s->t_stop = a.t1;
  s->bin = o->bin;
  /* the bin count as a double: a window of 1e300 ms gave "9223372036854775807 bins" */
  double n_bins_d = a.t1 > a.t0 ? (a.t1 - a.t0) / o->bin : 0;
  /* 1e8 bins (800 MB per histogram) is far beyond any plot or Fano window: a typo, not a request */
  if (!st && !(n_bins_d <= 1e8))
    st = SB_SET_ERROR(SB_EINVAL, "%s: population %s: --bin %g ms over [%g, %g] ms gives %.6g bins (at most 1e8): use a "
                      "larger --bin or a shorter window", sb_spk_file_path(f), pi->name, o->bin, a.t0, a.t1, n_bins_d);
  a.n_bins = st ? 0 : sb_stats_n_bins(a.t0, a.t1, o->bin);
  /* a window shorter than one bin has no full bin: the binned measures are nan with their reason
   * (BinnedSpikeTrain keeps only whole bins). `analyze` refuses it when the window is given; the
   * sweep's summary of runs shorter than 5 ms needs the other statistics. */
  double sigma = isnan(o->sigma) ? 2.0 * o->bin : o->sigma;
  if (!st && isnan(o->sigma) && !isfinite(sigma))
    st = SB_SET_ERROR(SB_EINVAL, "%s: population %s: --bin %g ms: the default --sigma (2 x --bin) is not a finite number; "
                      "expected a smaller --bin (or give --sigma)", sb_spk_file_path(f), pi->name, o->bin);
  /* the kernel over +-5 sigma sampled at the bin (sb_stats_smooth_counts): --sigma 1e9 took 6.9 GB.
   * The default sigma (2 x bin) always gives 21 points; only a --sigma given can be too wide */
  double k_points = 10.0 * (sigma / o->bin) + 1;
  if (!st && !(k_points <= 1e8))
    st = SB_SET_ERROR(SB_EINVAL, "%s: population %s: --sigma %g ms over +-5 sigma gives a kernel of %.3g points of the bin "
                      "%g ms (at most 1e8): use a smaller --sigma or a larger --bin", sb_spk_file_path(f), pi->name, sigma,
                      k_points, o->bin);
  size_t n_irate_out = a.t1 > a.t0 ? sb_stats_irate_len(a.t0, a.t1, o->bin) : 0;
  a.n_irate = n_irate_out ? n_irate_out + 1 : 0;   /* histogram over [t0, t1 + bin], one bin longer */
  a.irate_hi = a.t1 + o->bin;
  a.irate_w = a.n_irate ? (a.irate_hi - a.t0) / (double)a.n_irate : 1;
  if (!st) {
    a.hist = sb_calloc(a.n_bins + 1, sizeof *a.hist);
    a.irate_hist = sb_calloc(a.n_irate + 1, sizeof *a.irate_hist);
    if (!a.hist || !a.irate_hist) st = SB_ENOMEM;
  }
  for (size_t i = 0; !st && i < o->n_node_ids; i++)   /* silent neurons count too */
    if (neuron_index(&a, o->node_ids[i]) < 0) st = SB_ENOMEM;
  a.n_listed = a.n_ns;
  a.listed = o->node_ids != NULL;   /* given, even when empty: an empty list was ignored */
  a.t_last = -INFINITY;
  int violated = 0;
  int broken = 0;
  if (!st) { st = pass_main(&a, f, pop, n, W, t, id, &violated, shortcut, &broken); s->passes++; }
  if (!st && broken) { *retry = 1; goto fail; }
  if (!st && violated) st = pass_partitioned(&a, f, pop, n, W, t, id, &s->passes, &s->peak_window_spikes);
  if (st) goto fail;

  /* per-neuron results */
  s->t_last = a.t_last;
  s->n_neurons = a.n_ns;
  s->neurons = sb_calloc(a.n_ns + 1, sizeof *s->neurons);
  if (!s->neurons) { st = SB_ENOMEM; goto fail; }
  double dur = a.t1 - a.t0, sum_var = 0;
  for (size_t i = 0; i < a.n_ns; i++) {
    nstate *q = &a.ns[i];
    sb_stats_neuron *r = &s->neurons[i];
    q->cnt_sum += q->cur_count;
    q->cnt_sumsq += q->cur_count * q->cur_count;
    q->cur_count = 0;
    r->id = q->id;
    r->n = q->n;
    s->n_spikes += q->n;
    r->rate = dur > 0 ? 1000.0 * (double)q->n / dur : NAN;
    sb_stats_why_code w = SB_WHY_OK;
    if (q->n_isi < 2) { r->cv = r->cv2 = r->lv = NAN; w = q->n == 0 ? SB_WHY_NO_SPIKES : SB_WHY_FEW_SPIKES; r->why_cv = r->why_cv2 = r->why_lv = (unsigned char)w; }
    else {
      r->cv = sqrt(q->isi_m2 / (double)q->n_isi) / q->isi_mean;
      if (isnan(r->cv)) r->why_cv = SB_WHY_ZERO_INTERVAL;   /* every interval 0: 0/0 */
      if (q->zero_pair) { r->cv2 = r->lv = NAN; r->why_cv2 = r->why_lv = SB_WHY_ZERO_INTERVAL; }
      else { r->cv2 = 2.0 * q->cv2_sum / (double)q->n_pairs; r->lv = 3.0 * q->lv_sum / (double)q->n_pairs; }
    }
    if (a.n_bins < 2) { r->fano = NAN; r->why_fano = SB_WHY_FEW_BINS; }
    else if (q->cnt_sum == 0) { r->fano = NAN; r->why_fano = SB_WHY_ZERO_MEAN; }
    else {
      double B = (double)a.n_bins, m = q->cnt_sum / B, v = q->cnt_sumsq / B - m * m;
      if (v < 0) v = 0;
      r->fano = v / m;
      sum_var += v;
    }
  }
  qsort(s->neurons, a.n_ns, sizeof *s->neurons, cmp_neuron);
  s->mean_rate = mean_defined(s->neurons, a.n_ns, offsetof(sb_stats_neuron, rate), &(size_t){0});
  s->mean_cv = mean_defined(s->neurons, a.n_ns, offsetof(sb_stats_neuron, cv), &s->n_cv);
  s->mean_cv2 = mean_defined(s->neurons, a.n_ns, offsetof(sb_stats_neuron, cv2), &s->n_cv2);
  s->mean_lv = mean_defined(s->neurons, a.n_ns, offsetof(sb_stats_neuron, lv), &s->n_lv);
  s->mean_fano = mean_defined(s->neurons, a.n_ns, offsetof(sb_stats_neuron, fano), &s->n_fano);
  s->pop_rate = a.n_ns && dur > 0 ? 1000.0 * (double)s->n_spikes / (double)a.n_ns / dur : NAN;
  s->chi = sb_stats_golomb_chi(a.hist, a.n_bins, sum_var, a.n_ns, &s->why_chi);

  /* population rate: time_histogram(output='rate') and the smoothed rate */
  s->n_bins = a.n_bins;
  s->psth = sb_calloc(a.n_bins + 1, sizeof *s->psth);
  s->n_irate = n_irate_out;
  s->irate_dt = o->bin;
  s->irate_sigma = sigma;
  s->irate = sb_calloc(n_irate_out + 1, sizeof *s->irate);
  if (!s->psth || !s->irate) { st = SB_ENOMEM; goto fail; }
  for (size_t b = 0; b < a.n_bins; b++)
    s->psth[b] = a.n_ns ? 1000.0 * a.hist[b] / ((double)a.n_ns * o->bin) : 0.0;
  if (a.n_irate && (st = sb_stats_smooth_counts(a.irate_hist, a.n_irate, o->bin, sigma, a.n_ns ? a.n_ns : 1, s->irate)))
    goto fail;
  memcpy(s->isi_hist, a.isi_hist, sizeof a.isi_hist);
  memcpy(s->isi_edges, a.isi_e, sizeof a.isi_e);

  st = pairwise(&a, f, pop, n, W, t, id, s);
  s->passes++;
  if (st) goto fail;
  sb_free(t); sb_free(id); sb_free(a.hist); sb_free(a.irate_hist); sb_free(a.ns); idmap_free(&a.map);
  *out = s;
  return SB_OK;
fail:
  sb_free(t); sb_free(id); sb_free(a.hist); sb_free(a.irate_hist); sb_free(a.ns); idmap_free(&a.map);
  sb_stats_summary_free(s);
  return st;
}

int sb_stats_summarize(sb_spk_file *f, size_t pop, const sb_stats_opts *o, sb_stats_summary **out) {
  *out = NULL;
  const sb_spk_pop_info *pi = sb_spk_pop(f, pop);
  if (!pi) SB_ERROR(SB_EINVAL, "population index %zu out of range", pop);
  int retry = 0;
  int shortcut = isnan(o->t_stop) && pi->sorting == SB_SORT_BY_TIME && pi->n_spikes > 0;
  sb_progress p;
  sb_progress_init(&p, stderr, sb_quiet || !o->progress);
  prog = o->progress ? &p : NULL;
  int st = summarize(f, pop, o, shortcut, &retry, out);
  if (retry) st = summarize(f, pop, o, 0, &retry, out);   /* `sorting` said by_time, but it is not */
  sb_progress_done(&p);
  prog = NULL;
  return st;
}
