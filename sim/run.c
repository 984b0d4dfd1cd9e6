/* The window-synchronous event loop (DESIGN.md "The engine"): prepare the run-time buffers,
 * process every neuron of a window independently (events in time order, exact integration
 * between them, exact threshold crossings), exchange the window's spikes, deliver them into
 * the owners' queues. One OpenMP parallel region spans the whole run; each thread owns a
 * contiguous block of neuron ids and touches only its own neurons' queues and states. */
#include "sim/internal.h"

#include <gsl/gsl_randist.h>
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define MAX_WINDOW 5.0   /* ms: longest window (progress and flush granularity) */
#define MAX_RECS_PER_NEURON 8

/* Grows the queue (the rare path of sb_ev_push_; kept out of line). */
static int ev_grow(sb_evvec *v) {
  uint32_t cap = v->cap ? 2 * v->cap : 8;
  sb_event *e = sb_realloc(v->e, cap * sizeof *e);
  if (!e) return SB_ENOMEM;
  v->e = e;
  v->cap = cap;
  return SB_OK;
}

static inline int ev_push(sb_evvec *v, double t, double w) {
  if (__builtin_expect(v->n == v->cap, 0) && ev_grow(v)) return SB_ENOMEM;
  v->e[v->n++] = (sb_event){t, w};
  return SB_OK;
}

int sb_ev_push_(sb_evvec *v, double t, double w) { return ev_push(v, t, w); }

/* ---- preparation ---- */

static int cmp_stim(const void *a, const void *b) {
  const sb_stim_ev *x = a, *y = b;
  if (x->gid != y->gid) return x->gid < y->gid ? -1 : 1;
  if (x->t != y->t) return x->t < y->t ? -1 : 1;
  return x < y ? -1 : x > y;   /* never reached with a stable key below */
}

static double pois_draw(gsl_rng *r, const sb_pois *p, double from) {
  if (!(p->rate > 0)) return INFINITY;
  double t = from + gsl_ran_exponential(r, 1000.0 / p->rate);
  return t < p->stop ? t : INFINITY;
}

static int pois_rewind(sb_net *net) {
  for (size_t g = 0; g < net->n; g++) {
    if (net->pois_first[g] == net->pois_first[g + 1]) continue;
    sb_rng_reseed(net->pois_rng[g], net->seed, SB_RNG_POISSON, g);
    for (size_t q = net->pois_first[g]; q < net->pois_first[g + 1]; q++)
      net->pois_next[q] = pois_draw(net->pois_rng[g], &net->pois_s[q], net->pois_s[q].start);
  }
  return SB_OK;
}

int sb_net_prepare_(sb_net *net) {
  size_t n = net->n;
  if (n == 0) SB_ERROR(SB_EINVAL, "the network has no neurons");
  double dmin = INFINITY, dmax = 0;
  for (int i = 0; i < net->n_projs; i++) {
    if (net->projs[i].dmin < dmin) dmin = net->projs[i].dmin;
    if (net->projs[i].dmax > dmax) dmax = net->projs[i].dmax;
  }
  net->W = dmin < MAX_WINDOW ? dmin : MAX_WINDOW;
  net->S = (int)ceil(dmax / net->W) + 2;
  net->ev = sb_calloc((size_t)net->S * n, sizeof *net->ev);
  net->pois_first = sb_calloc(n + 1, sizeof *net->pois_first);
  net->pois_next = sb_malloc((net->n_pois + 1) * sizeof *net->pois_next);
  net->pois_s = sb_malloc((net->n_pois + 1) * sizeof *net->pois_s);
  net->pois_rng = sb_calloc(n, sizeof *net->pois_rng);
  net->stim_first = sb_calloc(n + 1, sizeof *net->stim_first);
  net->stim_s = sb_malloc((net->n_stim + 1) * sizeof *net->stim_s);
  net->stim_pos = sb_calloc(n, sizeof *net->stim_pos);
  net->rec_first = sb_calloc(n + 1, sizeof *net->rec_first);
  net->t_state = sb_calloc(n, sizeof *net->t_state);
  net->t_safe = sb_calloc(n, sizeof *net->t_safe);
  net->ev_due = sb_malloc(n * sizeof *net->ev_due);
  net->count = sb_calloc(n, sizeof *net->count);
  net->last = sb_calloc(n, sizeof *net->last);
  net->isi_sum = sb_calloc(n, sizeof *net->isi_sum);
  net->isi_sq = sb_calloc(n, sizeof *net->isi_sq);
  int T = net->threads;
  net->tsp = sb_calloc((size_t)T, sizeof *net->tsp);
  net->tsp_n = sb_calloc((size_t)T, sizeof *net->tsp_n);
  net->tsp_cap = sb_calloc((size_t)T, sizeof *net->tsp_cap);
  net->scratch = sb_calloc((size_t)T, sizeof *net->scratch);
  net->scratch_cap = sb_calloc((size_t)T, sizeof *net->scratch_cap);
  net->t_events = sb_calloc((size_t)T, sizeof *net->t_events);
  net->t_ext = sb_calloc((size_t)T, sizeof *net->t_ext);
  if (!net->ev || !net->pois_first || !net->pois_next || !net->pois_s || !net->pois_rng || !net->stim_first ||
      !net->stim_s || !net->stim_pos || !net->rec_first || !net->t_state || !net->t_safe || !net->ev_due || !net->count || !net->last || !net->isi_sum ||
      !net->isi_sq || !net->tsp || !net->tsp_n || !net->tsp_cap || !net->scratch || !net->scratch_cap ||
      !net->t_events || !net->t_ext)
    return SB_ENOMEM;
  net->prepared = 1;
  if (net->nranks > 1) {   /* MPI: rank 0 records every spike from the exchanged list */
    if (net->rank != 0)
      for (int i = 0; i < net->n_pops; i++) net->pops[i].rec_spikes = 0;
  }
  /* Poisson sources: stable counting sort by gid */
  for (size_t q = 0; q < net->n_pois; q++) net->pois_first[net->pois[q].gid + 1]++;
  for (size_t g = 0; g < n; g++) net->pois_first[g + 1] += net->pois_first[g];
  {
    size_t *pos = sb_malloc((n + 1) * sizeof *pos);
    if (!pos) return SB_ENOMEM;
    memcpy(pos, net->pois_first, (n + 1) * sizeof *pos);
    for (size_t q = 0; q < net->n_pois; q++) net->pois_s[pos[net->pois[q].gid]++] = net->pois[q];
    sb_free(pos);
  }
  for (size_t g = 0; g < n; g++)
    if (net->pois_first[g] != net->pois_first[g + 1] && !(net->pois_rng[g] = sb_rng_alloc(0, 0, 0)))
      return SB_ENOMEM;
  pois_rewind(net);
  /* static stimulus events, sorted by (gid, time), ties in the order given */
  for (size_t q = 0; q < net->n_stim; q++) net->stim_first[net->stim[q].gid + 1]++;
  for (size_t g = 0; g < n; g++) net->stim_first[g + 1] += net->stim_first[g];
  {
    size_t *pos = sb_malloc((n + 1) * sizeof *pos);
    if (!pos) return SB_ENOMEM;
    memcpy(pos, net->stim_first, (n + 1) * sizeof *pos);
    for (size_t q = 0; q < net->n_stim; q++) net->stim_s[pos[net->stim[q].gid]++] = net->stim[q];
    sb_free(pos);
    for (size_t g = 0; g < n; g++) {   /* insertion sort by time keeps given order for ties */
      sb_stim_ev *a = net->stim_s + net->stim_first[g];
      size_t m = net->stim_first[g + 1] - net->stim_first[g];
      for (size_t i = 1; i < m; i++) {
        sb_stim_ev x = a[i];
        size_t j = i;
        while (j > 0 && a[j - 1].t > x.t) { a[j] = a[j - 1]; j--; }
        a[j] = x;
      }
    }
  }
  (void)cmp_stim;
  for (size_t g = 0; g < n; g++) net->stim_pos[g] = net->stim_first[g];
  /* recording membership */
  for (int r = 0; r < net->n_recs; r++)
    for (size_t c = 0; c < net->recs[r].n; c++)
      net->rec_first[net->pops[net->recs[r].pop].first + net->recs[r].ids[c] + 1]++;
  for (size_t g = 0; g < n; g++) {
    if (net->rec_first[g + 1] > MAX_RECS_PER_NEURON)
      SB_ERROR(SB_EINVAL, "record: neuron %zu is in more than %d state recordings", g, MAX_RECS_PER_NEURON);
    net->rec_first[g + 1] += net->rec_first[g];
  }
  net->recmap = sb_malloc((net->rec_first[n] + 1) * sizeof *net->recmap);
  if (!net->recmap) return SB_ENOMEM;
  {
    size_t *pos = sb_malloc((n + 1) * sizeof *pos);
    if (!pos) return SB_ENOMEM;
    memcpy(pos, net->rec_first, (n + 1) * sizeof *pos);
    for (int r = 0; r < net->n_recs; r++)
      for (size_t c = 0; c < net->recs[r].n; c++)
        net->recmap[pos[net->pops[net->recs[r].pop].first + net->recs[r].ids[c]]++] = (sb_recmap){(uint32_t)r, (uint32_t)c};
    sb_free(pos);
  }
  for (int r = 0; r < net->n_recs; r++) {
    sb_rec *rc = &net->recs[r];
    rc->rows_cap = (size_t)ceil(net->W / rc->interval) + 2;
    rc->buf = sb_calloc(rc->rows_cap * rc->n, sizeof *rc->buf);   /* MPI: other ranks' columns stay 0 */
    if (!rc->buf) return SB_ENOMEM;
  }
  /* per-thread workspaces and the reset snapshot */
  for (int i = 0; i < net->n_pops; i++) {
    sb_pop *p = &net->pops[i];
    if (p->type->work_alloc) {
      p->work = sb_calloc((size_t)T, sizeof *p->work);
      if (!p->work) return SB_ENOMEM;
      for (int k = 0; k < T; k++)
        if (!(p->work[k] = p->type->work_alloc(p->params))) return SB_ENOMEM;
    }
    sb_free(p->state0);
    p->state0 = sb_malloc(p->n * p->type->state_size);
    if (!p->state0) return SB_ENOMEM;
    memcpy(p->state0, p->state, p->n * p->type->state_size);
  }
  for (size_t g = 0; g < n; g++) net->t_safe[g] = -INFINITY;
  for (size_t g = 0; g < n; g++) net->ev_due[g] = -INFINITY;
  net->k = 0;
  net->t = 0;
  net->next_flush = net->flush_interval;
  return SB_OK;
}

/* ---- per-neuron processing ---- */

static void sort_events(sb_event *e, uint32_t n, sb_event *tmp) {
  if (n <= 48) {   /* stable insertion sort: the lists are short and nearly sorted */
    for (uint32_t i = 1; i < n; i++) {
      sb_event x = e[i];
      uint32_t j = i;
      while (j > 0 && e[j - 1].t > x.t) { e[j] = e[j - 1]; j--; }
      e[j] = x;
    }
    return;
  }
  /* stable bottom-up merge sort on runs of 32 */
  for (uint32_t s = 0; s < n; s += 32) sort_events(e + s, n - s < 32 ? n - s : 32, NULL);
  sb_event *a = e, *b = tmp;
  for (uint32_t w = 32; w < n; w *= 2) {
    for (uint32_t lo = 0; lo < n; lo += 2 * w) {
      uint32_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
      uint32_t i = lo, j = mid, k = lo;
      while (i < mid && j < hi) b[k++] = a[j].t < a[i].t ? a[j++] : a[i++];
      while (i < mid) b[k++] = a[i++];
      while (j < hi) b[k++] = a[j++];
    }
    sb_event *t = a; a = b; b = t;
  }
  if (a != e) memcpy(e, a, n * sizeof *e);
}

static int emit(sb_net *net, int tid, uint32_t gid, double t) {
  if (net->tsp_n[tid] == net->tsp_cap[tid]) {
    size_t cap = net->tsp_cap[tid] ? 2 * net->tsp_cap[tid] : 1024;
    sb_spike *s = sb_realloc(net->tsp[tid], cap * sizeof *s);
    if (!s) return SB_ENOMEM;
    net->tsp[tid] = s;
    net->tsp_cap[tid] = cap;
  }
  net->tsp[tid][net->tsp_n[tid]++] = (sb_spike){t, gid};
  if (net->count[gid]) {
    double isi = t - net->last[gid];
    net->isi_sum[gid] += isi;
    net->isi_sq[gid] += isi * isi;
  }
  net->last[gid] = t;
  net->count[gid]++;
  if (net->n_plastic) return sb_plastic_post_spike_(net, gid, t);   /* STDP post histories */
  return SB_OK;
}

static int cmp_spike(const void *a, const void *b) {
  const sb_spike *x = a, *y = b;
  if (x->t != y->t) return x->t < y->t ? -1 : 1;
  return (x->gid > y->gid) - (x->gid < y->gid);
}

enum { SRC_END, SRC_REC, SRC_STIM, SRC_EV, SRC_POIS };

static int process_neuron(sb_net *net, sb_pop *pop, size_t i, int tid, double t0, double t1, int full) {
  const sb_neuron_type *T = pop->type;
  const void *p = pop->params + i * pop->pstride, *d = pop->derived + i * pop->dstride;
  void *s = pop->state + i * T->state_size;
  void *w = pop->work ? pop->work[tid] : NULL;
  uint32_t gid = (uint32_t)(pop->first + i);
  sb_evvec *v = &net->ev[(size_t)(net->k % (uint64_t)net->S) * net->n + gid];
  size_t sp = net->stim_pos[gid], se = net->stim_first[gid + 1];
  size_t pf = net->pois_first[gid], pl = net->pois_first[gid + 1];
  size_t rf = net->rec_first[gid], rl = net->rec_first[gid + 1];
  uint32_t unsorted = 0;   /* constant-delay arrivals are usually pushed in time order already */
  for (uint32_t j = 1; j < v->n && !unsorted; j++) unsorted = v->e[j].t < v->e[j - 1].t;
  if (unsorted) {
    if (v->n > net->scratch_cap[tid]) {
      sb_event *sc = sb_realloc(net->scratch[tid], v->n * sizeof *sc);
      if (!sc) return SB_ENOMEM;
      net->scratch[tid] = sc;
      net->scratch_cap[tid] = v->n;
    }
    sort_events(v->e, v->n, net->scratch[tid]);
  }
  uint32_t ie = 0;
  uint64_t kc[MAX_RECS_PER_NEURON];
  for (size_t j = rf; j < rl; j++) kc[j - rf] = net->recs[net->recmap[j].rec].k_next;
  uint64_t n_ext = 0;
  double t = net->t_state[gid];
  /* no threshold crossing is possible before the wake time computed with no input since */
  double quiet_until = net->t_safe[gid];
  (void)t0;
  int rc;
  for (;;) {
    double te = t1;
    int src = SRC_END;
    size_t which = 0;
    for (size_t j = rf; j < rl; j++) {
      double ts = (double)kc[j - rf] * net->recs[net->recmap[j].rec].interval;
      if (ts < te) { te = ts; src = SRC_REC; which = j; }
    }
    if (sp < se && net->stim_s[sp].t < te) { te = net->stim_s[sp].t; src = SRC_STIM; }
    if (ie < v->n && v->e[ie].t < te) { te = v->e[ie].t; src = SRC_EV; }
    for (size_t q = pf; q < pl; q++)
      if (net->pois_next[q] < te) { te = net->pois_next[q]; src = SRC_POIS; which = q; }
    if (te < t) te = t;   /* an arrival rounded just below the window start */
    if (te > t && te <= quiet_until) {
      /* at the window's end a quiet neuron stays at its last event (lazy): the next event or
       * sample advances it in one exact step, with no threshold search before quiet_until */
      if (src != SRC_END) {
        if ((rc = T->advance(p, d, s, t, te, w))) return sb_error_prefix_(rc, "%s: neuron %zu", pop->name, i);
        t = te;
      }
    } else if (te > t) {
      long guard = 0;
      double ts;
      while ((rc = T->next_crossing(p, d, s, t, te, &ts, w)) == SB_OK) {
        if (ts < t) ts = t;
        if ((rc = T->advance(p, d, s, t, ts, w))) return rc;
        t = ts;
        if ((rc = emit(net, tid, gid, ts))) return rc;
        T->reset(p, d, s, ts);
        if (++guard > 1000000)
          SB_ERROR(SB_ENOCONV, "%s: neuron %zu: more than 1e6 spikes at t = %.17g ms", pop->name, i, ts);
      }
      if (rc != SB_NOSPIKE) return sb_error_prefix_(rc, "%s: neuron %zu at t = %g ms", pop->name, i, t);
      if ((rc = T->advance(p, d, s, t, te, w))) return sb_error_prefix_(rc, "%s: neuron %zu", pop->name, i);
      t = te;
      if (guard) quiet_until = -INFINITY;   /* the bound was for the trajectory before the reset */
    }
    switch (src) {
      case SRC_END: goto done;
      case SRC_REC: {
        sb_rec *r = &net->recs[net->recmap[which].rec];
        double val;
        memcpy(&val, (char *)s + r->var_off, sizeof val);
        r->buf[(kc[which - rf] - r->k_next) * r->n + net->recmap[which].col] = (float)val;
        kc[which - rf]++;
        break;
      }
      case SRC_STIM:
        T->receive(p, d, s, te, net->stim_s[sp].rcpt, net->stim_s[sp].w);
        n_ext += net->stim_s[sp].rcpt == SB_RCPT_SPIKE;
        sp++;
        break;
      case SRC_EV:
        T->receive(p, d, s, te, SB_RCPT_SPIKE, v->e[ie].w);
        ie++;
        break;
      case SRC_POIS:
        T->receive(p, d, s, te, SB_RCPT_SPIKE, net->pois_s[which].w);
        net->pois_next[which] = pois_draw(net->pois_rng[gid], &net->pois_s[which], net->pois_next[which]);
        n_ext++;
        break;
    }
    /* After an input, a bound on the next crossing without further input: the following
     * intervals up to it need no threshold search, and at the window's end it is the wake time. */
    if (src != SRC_REC) quiet_until = T->safe_until ? T->safe_until(p, d, s, te) : -INFINITY;
  }
done:
  net->t_state[gid] = t;
  /* the next time this neuron must be looked at without new events (lazy update); a bound
   * computed after the last input (or carried over) is still valid */
  double wake = -INFINITY;
  if (T->safe_until && rf == rl) wake = quiet_until > t ? quiet_until : T->safe_until(p, d, s, t);
  if (sp < se && net->stim_s[sp].t < wake) wake = net->stim_s[sp].t;
  for (size_t q = pf; q < pl; q++)
    if (net->pois_next[q] < wake) wake = net->pois_next[q];
  net->t_safe[gid] = wake;
  net->stim_pos[gid] = sp;
  net->t_ext[tid] += n_ext;
  if (full) v->n = 0;
  else if (ie) {
    memmove(v->e, v->e + ie, (v->n - ie) * sizeof *v->e);
    v->n -= ie;
  }
  /* earliest event still queued: the rest of this slot (sorted), else the start of the first
   * later window with a non-empty queue */
  double due = v->n ? v->e[0].t : wake;
  for (uint64_t kk = net->k + 1; kk < net->k + (uint64_t)net->S && !v->n; kk++)
    if (net->ev[(size_t)(kk % (uint64_t)net->S) * net->n + gid].n) {
      due = (double)kk * net->W;
      break;
    }
  net->ev_due[gid] = due < wake ? due : wake;
  return SB_OK;
}

static int process_partition(sb_net *net, int k, double t0, double t1, int full) {
  size_t lo = net->bound[k], hi = net->bound[k + 1];
  for (int pi = 0; pi < net->n_pops; pi++) {
    sb_pop *pop = &net->pops[pi];
    size_t a = pop->first > lo ? pop->first : lo, b = pop->first + pop->n < hi ? pop->first + pop->n : hi;
    const double *due = net->ev_due;
    for (size_t g = a; g < b; g++) {
      if (t1 <= due[g]) continue;   /* nothing happens to it in this window */
      int rc = process_neuron(net, pop, g - pop->first, k, t0, t1, full);
      if (rc) return rc;
    }
  }
  return SB_OK;
}

/* ---- delivery ---- */

static inline int push(sb_net *net, size_t gid, double t, double w) {
  uint64_t b = sb_bin_(net, t);
  if (t < net->ev_due[gid]) net->ev_due[gid] = t;
  return ev_push(&net->ev[(size_t)(b % (uint64_t)net->S) * net->n + gid], t, w);
}

static int deliver_partition(sb_net *net, int k) {
  size_t lo = net->bound[k], hi = net->bound[k + 1];
  uint64_t nev = 0;
  for (size_t q = 0; q < net->gsp_n; q++) {
    uint32_t gid = net->gsp[q].gid;
    double ts = net->gsp[q].t;
    if (net->n_plastic) sb_plastic_snapshots_(net, k, ts);   /* weight snapshots due before ts */
    const sb_pop *sp = &net->pops[sb_pop_of_(net, gid)];
    size_t j = gid - sp->first;
    for (int o = 0; o < sp->n_out; o++) {
      const sb_proj *pr = &net->projs[sp->out[o]];
      const sb_pop *tp = &net->pops[pr->tgt];
      size_t tf = tp->first;
      size_t tlo = tf > lo ? tf : lo, thi = tf + tp->n < hi ? tf + tp->n : hi;
      if (tlo >= thi) continue;
      tlo -= tf;
      thi -= tf;
      switch (pr->kind) {
        case SB_PROJ_SPARSE: {
          const sb_csr *c = &pr->part[k];
          uint32_t a = c->row[j], e = c->row[j + 1];
          if (a == e) break;
          nev += e - a;
          if (!c->d) {
            double ta = ts + pr->d_const;
            uint64_t b = sb_bin_(net, ta);
            sb_evvec *base = &net->ev[(size_t)(b % (uint64_t)net->S) * net->n + tf];
            double *due = net->ev_due + tf;
            for (uint32_t x = a; x < e; x++) {
              uint32_t y = c->tgt[x];
              if (ta < due[y]) due[y] = ta;
              if (ev_push(&base[y], ta, c->w ? (double)c->w[x] : pr->w_const)) return SB_ENOMEM;
            }
          } else {
            for (uint32_t x = a; x < e; x++)
              if (push(net, tf + c->tgt[x], ts + (double)c->d[x], c->w ? (double)c->w[x] : pr->w_const)) return SB_ENOMEM;
          }
          break;
        }
        case SB_PROJ_DENSE: {
          double ta = ts + pr->d_const;
          uint64_t b = sb_bin_(net, ta);
          sb_evvec *base = &net->ev[(size_t)(b % (uint64_t)net->S) * net->n + tf];
          const float *row = pr->wt + j * tp->n;
          for (size_t x = tlo; x < thi; x++)
            if (row[x] != 0.0f) {
              nev++;
              if (ta < net->ev_due[tf + x]) net->ev_due[tf + x] = ta;
              if (ev_push(&base[x], ta, (double)row[x])) return SB_ENOMEM;
            }
          break;
        }
        case SB_PROJ_ONE_TO_ONE:
          if (j >= tlo && j < thi) {
            nev++;
            if (push(net, tf + j, ts + (pr->d1 ? (double)pr->d1[j] : pr->d_const), pr->wt ? (double)pr->wt[j] : pr->w_const))
              return SB_ENOMEM;
          }
          break;
        case SB_PROJ_PLASTIC:
          if (sb_plastic_deliver_(net, pr, k, j, ts, &nev)) return SB_ENOMEM;
          break;
        case SB_PROJ_CONV: {
          const sb_net_conv_shape *cs = &pr->cs;
          int c = (int)(j / (size_t)(cs->H * cs->W)), y = (int)(j / (size_t)cs->W % (size_t)cs->H), xx = (int)(j % (size_t)cs->W);
          double ta = ts + pr->d_const;
          uint64_t b = sb_bin_(net, ta);
          sb_evvec *base = &net->ev[(size_t)(b % (uint64_t)net->S) * net->n + tf];
          for (int ky = 0; ky < cs->KH; ky++) {
            int oy_s = y + cs->pad - ky;
            if (oy_s < 0 || oy_s % cs->stride) continue;
            int oy = oy_s / cs->stride;
            if (oy >= pr->OH) continue;
            for (int kx = 0; kx < cs->KW; kx++) {
              int ox_s = xx + cs->pad - kx;
              if (ox_s < 0 || ox_s % cs->stride) continue;
              int ox = ox_s / cs->stride;
              if (ox >= pr->OW) continue;
              for (int co = 0; co < cs->C_out; co++) {
                size_t t = ((size_t)co * (size_t)pr->OH + (size_t)oy) * (size_t)pr->OW + (size_t)ox;
                if (t < tlo || t >= thi) continue;
                float wv = pr->kernel[(((size_t)co * (size_t)cs->C_in + (size_t)c) * (size_t)cs->KH + (size_t)ky) * (size_t)cs->KW + (size_t)kx];
                if (wv == 0.0f) continue;
                nev++;
                if (ta < net->ev_due[tf + t]) net->ev_due[tf + t] = ta;
                if (ev_push(&base[t], ta, (double)wv)) return SB_ENOMEM;
              }
            }
          }
          break;
        }
      }
    }
  }
  net->t_events[k] += nev;
  if (net->n_plastic) {
    sb_plastic_snapshots_(net, k, net->t);
    sb_plastic_window_end_(net, k);
  }
  return SB_OK;
}

/* ---- the run loop ---- */

static void thread_error(sb_net *net, int rc) {
#pragma omp critical(sb_run_err)
  {
    if (!net->err) {
      net->err = rc;
      snprintf(net->err_msg, sizeof net->err_msg, "%s", sb_last_error());
    }
  }
}

/* Master-side work between windows: gather spikes, record, move time on. */
static void between_windows(sb_net *net, double t_stop) {
  size_t total = 0;
  for (int k = 0; k < net->threads; k++) total += net->tsp_n[k];
  if (total > net->gsp_cap) {
    size_t cap = total * 2;
    sb_spike *g = sb_realloc(net->gsp, cap * sizeof *g);
    if (!g) {
      thread_error(net, SB_ENOMEM);
      net->done = 1;
      return;
    }
    net->gsp = g;
    net->gsp_cap = cap;
  }
  net->gsp_n = 0;
  for (int k = 0; k < net->threads; k++) {   /* thread order = neuron id order */
    if (net->tsp_n[k]) memcpy(net->gsp + net->gsp_n, net->tsp[k], net->tsp_n[k] * sizeof *net->gsp);
    net->gsp_n += net->tsp_n[k];
    net->tsp_n[k] = 0;
  }
  if (net->nranks > 1) {   /* every rank's spikes of the window, in rank (= id block) order */
    int rc = sb_mpi_exchange_spikes_(net, net->gsp_n);
    if (rc) {
      thread_error(net, rc);
      net->done = 1;
      return;
    }
  }
  net->spikes_total += net->gsp_n;
  /* by (time, id): thread-count independent, and constant-delay arrivals then come in time order */
  if (net->gsp_n > 1) qsort(net->gsp, net->gsp_n, sizeof *net->gsp, cmp_spike);
  int rc = sb_rec_window_(net, net->w_t0, net->w_t1);
  if (rc) thread_error(net, rc);
  double wend = (double)(net->k + 1) * net->W;
  net->k_emit = net->k;
  net->t = net->w_t1;
  if (net->w_t1 >= wend) net->k++;
  if (net->t >= net->next_flush) {
    net->next_flush += net->flush_interval;
    if ((rc = sb_rec_flush_(net))) thread_error(net, rc);
  }
  if (net->progress) net->progress(net->progress_ctx, net->t, t_stop, net->spikes_total);
  if (net->err || net->t >= t_stop) net->done = 1;
  net->w_t0 = net->t;
  double e = (double)(net->k + 1) * net->W;
  net->w_t1 = e < t_stop ? e : t_stop;
}

int sb_net_run(sb_net *net, double t_stop) {
  int rc;
  if (!net->prepared && (rc = sb_net_prepare_(net))) return rc;
  if (!(t_stop >= net->t) || !isfinite(t_stop))
    SB_ERROR(SB_EINVAL, "t_stop: must be finite and >= the current time %g ms (got %g)", net->t, t_stop);
  if (t_stop == net->t) return SB_OK;
  if (net->n_plastic && (rc = sb_plastic_run_start_(net, t_stop))) return rc;
  net->err = 0;
  net->done = 0;
  net->stopped = 0;
  net->w_t0 = net->t;
  double e = (double)(net->k + 1) * net->W;
  net->w_t1 = e < t_stop ? e : t_stop;
#pragma omp parallel num_threads(net->p_hi - net->p_lo)
  {
#ifdef _OPENMP
    int tid = omp_get_thread_num(), nth = omp_get_num_threads();
#else
    int tid = 0, nth = 1;
#endif
    while (!net->done) {
      double t0 = net->w_t0, t1 = net->w_t1;
      int full = t1 >= (double)(net->k + 1) * net->W;
      for (int k = net->p_lo + tid; k < net->p_hi; k += nth) {
        int r = process_partition(net, k, t0, t1, full);
        if (r) thread_error(net, r);
      }
#pragma omp barrier
#pragma omp single
      between_windows(net, t_stop);
      for (int k = net->p_lo + tid; k < net->p_hi; k += nth) {
        int r = deliver_partition(net, k);
        if (r) thread_error(net, r);
      }
#pragma omp barrier
      if (net->hook) {   /* a consistent state between windows: checkpoints (sim/checkpoint.c) */
#pragma omp single
        {
          int stop = 0;
          if (!net->done) {
            int r = net->hook(net->hook_ctx, net, &stop);
            if (r) thread_error(net, r);
          }
          if (stop || net->err) net->done = 1;
          net->stopped = stop;
        }
      }
    }
    /* bring lazily skipped neurons to the current time (no crossing possible: t_safe >= t) */
    for (int k = net->p_lo + tid; k < net->p_hi; k += nth)
      for (int pi = 0; pi < net->n_pops; pi++) {
        sb_pop *pop = &net->pops[pi];
        size_t a = pop->first > net->bound[k] ? pop->first : net->bound[k];
        size_t b = pop->first + pop->n < net->bound[k + 1] ? pop->first + pop->n : net->bound[k + 1];
        for (size_t g = a; g < b; g++) {
          if (net->t_state[g] >= net->t) continue;
          size_t i = g - pop->first;
          int r = pop->type->advance(pop->params + i * pop->pstride, pop->derived + i * pop->dstride,
                                     pop->state + i * pop->type->state_size, net->t_state[g], net->t,
                                     pop->work ? pop->work[k] : NULL);
          if (r) thread_error(net, r);
          net->t_state[g] = net->t;
        }
      }
  }
  if (net->err) SB_ERROR(net->err, "%s", net->err_msg);
  return SB_OK;
}

int sb_net_reset(sb_net *net) {
  if (!net->prepared) return SB_OK;
  if (net->n_plastic) sb_plastic_reset_(net);
  for (size_t i = 0; i < (size_t)net->S * net->n; i++) net->ev[i].n = 0;
  for (size_t g = 0; g < net->n; g++) net->stim_pos[g] = net->stim_first[g];
  memset(net->count, 0, net->n * sizeof *net->count);
  memset(net->t_state, 0, net->n * sizeof *net->t_state);
  for (size_t g = 0; g < net->n; g++) net->t_safe[g] = -INFINITY;
  for (size_t g = 0; g < net->n; g++) net->ev_due[g] = -INFINITY;
  memset(net->last, 0, net->n * sizeof *net->last);
  memset(net->isi_sum, 0, net->n * sizeof *net->isi_sum);
  memset(net->isi_sq, 0, net->n * sizeof *net->isi_sq);
  memset(net->t_events, 0, (size_t)net->threads * sizeof *net->t_events);
  memset(net->t_ext, 0, (size_t)net->threads * sizeof *net->t_ext);
  for (int i = 0; i < net->n_pops; i++) {
    sb_pop *p = &net->pops[i];
    memcpy(p->state, p->state0, p->n * p->type->state_size);
    p->sp_n = 0;
  }
  for (int r = 0; r < net->n_recs; r++) {
    net->recs[r].k_next = 0;
    net->recs[r].mem_rows = net->recs[r].mem_merged = 0;
  }
  pois_rewind(net);
  net->k = net->k_emit = 0;
  net->t = 0;
  net->spikes_total = 0;
  net->next_flush = net->flush_interval;
  return SB_OK;
}

void sb_net_set_progress(sb_net *net, sb_net_progress_fn fn, void *ctx) {
  net->progress = fn;
  net->progress_ctx = ctx;
}
