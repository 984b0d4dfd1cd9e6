/* The window-synchronous event loop (DESIGN.md "The engine"): prepare the run-time buffers,
 * process every neuron of a window independently (events in time order, exact integration
 * between them, exact threshold crossings), exchange the window's spikes, deliver them into
 * the owners' queues. One OpenMP parallel region spans the whole run; each thread owns a
 * contiguous block of neuron ids and touches only its own neurons' queues and states. */
#include "sim/internal.h"
#include "neurons/iaf_psc_exp_inline.h"

#include <gsl/gsl_randist.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define MAX_RECS_PER_NEURON 8
#define SB_SAMPLE_STATE_MAX 512   /* bytes: a neuron state that sample_segment copies */

/* ---- queue storage (sb_arena) ---- */
#define ARENA_CHUNK ((size_t)32 << 20)
#define HUGE_PAGE ((size_t)2 << 20)

static void *arena_alloc(sb_arena *a, int cls) {
  if (a->free_[cls]) {
    void *p = a->free_[cls];
    a->free_[cls] = *(void **)p;
    return p;
  }
  size_t sz = (size_t)1 << cls;
  if ((size_t)(a->end - a->cur) < sz) {
    size_t len = (sz > ARENA_CHUNK ? sz : ARENA_CHUNK) + HUGE_PAGE;
    if (a->n_chunks == a->cap_chunks) {
      int cap = a->cap_chunks ? 2 * a->cap_chunks : 16;
      void **c = sb_realloc(a->chunks, (size_t)cap * sizeof *c);
      size_t *l = c ? sb_realloc(a->chunk_len, (size_t)cap * sizeof *l) : NULL;
      if (c) a->chunks = c;
      if (!l) return NULL;
      a->chunk_len = l;
      a->cap_chunks = cap;
    }
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return NULL;
    a->chunks[a->n_chunks] = m;
    a->chunk_len[a->n_chunks++] = len;
    char *al = (char *)(((uintptr_t)m + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    madvise(al, len - (size_t)(al - m), MADV_HUGEPAGE);   /* advisory: ignored where unsupported */
    a->cur = al;
    a->end = m + len;
  }
  void *p = a->cur;
  a->cur += sz;
  return p;
}

static void arena_release(sb_arena *a, void *p, int cls) {
  *(void **)p = a->free_[cls];
  a->free_[cls] = p;
}

void sb_arena_free_(sb_arena *a) {
  for (int i = 0; i < a->n_chunks; i++) munmap(a->chunks[i], a->chunk_len[i]);
  if (a->flat) munmap(a->flat, a->flat_len);
  sb_free(a->chunks);
  sb_free(a->chunk_len);
  memset(a, 0, sizeof *a);
}

/* The size class of an arena block of cap entries (a power of two; twice the bytes when wide). */
static inline int arena_cls(const sb_arena *a, uint32_t cap) { return 2 + a->wide + __builtin_ctz(cap); }

/* Whether p lies in partition a's flat home blocks. */
static inline int in_flat(const sb_arena *a, const uint32_t *p) {
  return a->flat && p >= a->flat && p < a->flat + a->nk * a->fstride;
}

/* Grows a queue (the rare path of the pushes; kept out of line). Capacities are powers of two
 * from 8 entries (32 bytes; twice that in a wide arena, whose blocks hold the weights too); a full
 * home block (fcap entries, not a power of two) moves to the next power of two at least twice its
 * size and is orphaned until its queue's next queue_done. */
/* A new arena block of cap entries (a power of two >= v->n) holding v's entries (and weights when
 * wide); the old block is neither released nor changed. NULL when memory runs out. */
static uint32_t *ev_copy_out(sb_arena *a, const sb_evvec *v, uint32_t cap) {
  uint32_t *e = arena_alloc(a, arena_cls(a, cap));
  if (!e) return NULL;
  if (v->n) memcpy(e, v->e, v->n * sizeof *e);
  if (v->n && a->wide) memcpy(e + cap, sb_evvec_w_(v), v->n * sizeof(float));
  return e;
}

static int ev_grow(sb_arena *a, sb_evvec *v) {
  if (v->cap > UINT32_MAX / 8) return SB_ENOMEM;
  uint32_t cap = v->cap ? 1u << (32 - __builtin_clz(2 * v->cap - 1)) : 8;
  uint32_t *e = ev_copy_out(a, v, cap);
  if (!e) return SB_ENOMEM;
  if (in_flat(a, v->e)) {
    a->home[a->g0 + (size_t)(v->e - a->flat) / a->fstride] = 0xFF;
    a->spills++;
  }
  else if (v->cap) arena_release(a, v->e, arena_cls(a, v->cap));
  v->e = e;
  v->cap = cap;
  return SB_OK;
}

/* The heap array p of `elem`-byte items, doubled (first allocation: `first` items); *cap is
 * updated. NULL (p kept, *cap unchanged) when it cannot grow. */
static void *vec_grow(void *p, uint32_t *cap, size_t elem, uint32_t first) {
  if (*cap > UINT32_MAX / 4) return NULL;
  uint32_t c = *cap ? 2 * *cap : first;
  void *q = sb_realloc(p, c * elem);
  if (q) *cap = c;
  return q;
}

static int arr_grow(sb_arrtab *a) {
  uint32_t cap = a->cap;
  sb_arr *e = vec_grow(a->a, &a->cap, sizeof *e, 256);
  if (!e) return SB_ENOMEM;
  a->a = e;
  double *wg = sb_realloc(a->wg, (size_t)a->cap * 2 * sizeof *wg);
  if (!wg) {
    a->cap = cap;   /* the larger arrival array is kept unused */
    return SB_ENOMEM;
  }
  a->wg = wg;
  return SB_OK;
}

static int u32_grow(sb_u32v *v) {
  uint32_t *e = vec_grow(v->a, &v->cap, sizeof *e, 64);
  if (!e) return SB_ENOMEM;
  v->a = e;
  return SB_OK;
}

static inline int u32_push(sb_u32v *v, uint32_t x) {
  if (__builtin_expect(v->n == v->cap, 0) && u32_grow(v)) return SB_ENOMEM;
  v->a[v->n++] = x;
  return SB_OK;
}
/* The same, always inlined: the wake calendar's insertion after each input taken at delivery (CUBA
 * 4-8% faster than with a call; inlined everywhere it made Brunel's delivery loop 5% slower). */
static inline __attribute__((always_inline)) int u32_push_inl(sb_u32v *v, uint32_t x) {
  if (__builtin_expect(v->n == v->cap, 0) && u32_grow(v)) return SB_ENOMEM;
  v->a[v->n++] = x;
  return SB_OK;
}

static inline int ev_push(sb_arena *a, sb_evvec *v, uint32_t idx) {
  if (__builtin_expect(v->n == v->cap, 0) && ev_grow(a, v)) return SB_ENOMEM;
  v->e[v->n++] = idx;
  return SB_OK;
}

/* A weighted event: shared arrival idx with its synapse's weight w, in a wide arena's queue. */
static inline int ev_push_w(sb_arena *a, sb_evvec *v, uint32_t idx, float w) {
  if (__builtin_expect(v->n == v->cap, 0) && ev_grow(a, v)) return SB_ENOMEM;
  sb_evvec_w_(v)[v->n] = w;
  v->e[v->n++] = idx | SB_EV_W;
  return SB_OK;
}

/* The sub-window cuts of window k (start tw0, length W) in sorted table a as arrival indices: the
 * first arrival not before each cut, by binary search once per window and table (cached in a). */
static inline const uint32_t *arr_cuts(sb_arrtab *a, uint64_t k, double tw0, double W) {
  if (a->cut_k != k || a->cut_n != a->n) {
    for (int b = 1; b < SB_SUBWIN; b++) {
      double cut = tw0 + W * (double)b / SB_SUBWIN;
      uint32_t lo = 0, hi = a->n;
      while (lo < hi) {
        uint32_t m = lo + (hi - lo) / 2;
        if (a->a[m].t < cut) lo = m + 1;
        else hi = m;
      }
      a->cut_ix[b - 1] = lo;
    }
    a->cut_k = k;
    a->cut_n = a->n;
  }
  return a->cut_ix;
}

/* A new arrival x (t, w, frame factors) in table a; its index in *idx. */
static inline int arr_add(sb_arrtab *a, const sb_arr *x, uint32_t *idx) {
  if (__builtin_expect(a->n == a->cap, 0) && arr_grow(a)) return SB_ENOMEM;
  if (a->n && x->t < a->a[a->n - 1].t) a->unsorted = 1;
  a->a[a->n] = *x;
  a->wg[2 * (size_t)a->n] = x->w;
  a->wg[2 * (size_t)a->n + 1] = x->g[0];
  *idx = a->n++;
  return SB_OK;
}

int sb_part_of_(const sb_net *net, size_t gid) {
  int lo = 0, hi = net->threads;   /* bound[lo] <= gid < bound[hi] */
  while (hi - lo > 1) {
    int m = (lo + hi) / 2;
    if (net->bound[m] <= gid) lo = m;
    else hi = m;
  }
  return lo;
}

/* Largest rate x window (frame factor e^x within one window) of a population on the fast path. */
#define SB_FRAME_MAX_EXP 32.0

/* Frame origin of window b for population tp: the start of its epoch of tp->frame_m windows. */
static inline double frame_origin(const sb_net *net, const sb_pop *tp, uint64_t b) {
  return (double)(b - b % tp->frame_m) * net->W;
}

/* An arrival at t (window b) of weight w for population tp, with its frame factors
 * (1 where the fast path is not used). */
static inline sb_arr frame_arr(const sb_net *net, const sb_pop *tp, double t, double w, uint64_t b) {
  sb_arr a = {t, w, {1.0, 1.0, 1.0}};
  if (tp->n_rates) {
    double x = t - frame_origin(net, tp, b);
    for (int j = 0; j < tp->n_rates; j++) a.g[j] = exp(x * tp->rates[j]);
  }
  return a;
}

int sb_ev_push_(sb_net *net, size_t slot, size_t gid, double t, double w) {
  uint32_t idx;
  int k = sb_part_of_(net, gid);
  sb_arr x = frame_arr(net, &net->pops[sb_pop_of_(net, (uint32_t)gid)], t, w, sb_bin_(net, t));
  if (arr_add(&net->arr[slot * (size_t)net->threads + (size_t)k], &x, &idx)) return SB_ENOMEM;
  sb_evvec *v = &net->ev[slot * net->n + gid];
  if (!v->n && u32_push(&net->act[slot * (size_t)net->threads + (size_t)k], (uint32_t)gid)) return SB_ENOMEM;
  return ev_push(&net->qarena[k], v, idx);
}

void sb_ev_get_(const sb_net *net, size_t slot, size_t gid, uint32_t j, double *t, double *w) {
  const sb_evvec *v = &net->ev[slot * net->n + gid];
  sb_input a = sb_ev_in_(&net->arr[slot * (size_t)net->threads + (size_t)sb_part_of_(net, gid)], v->e, sb_evvec_w_(v), j);
  *t = a.t;
  *w = a.w;
}

/* ---- preparation ---- */

static int cmp_stim(const void *a, const void *b) {
  const sb_stim_ev *x = a, *y = b;
  if (x->gid != y->gid) return x->gid < y->gid ? -1 : 1;
  if (x->t != y->t) return x->t < y->t ? -1 : 1;
  return x < y ? -1 : x > y;   /* never reached with a stable key below */
}

/* ---- Poisson input: exponential gaps from the target's own taus2 stream ----
 * The gaps are drawn with Marsaglia & Tsang's ziggurat for the exponential distribution (J Stat
 * Softw 5(8), 2000; 256 layers, one 32-bit draw and a multiply in 98.9% of the cases), fed by
 * GSL's taus2 stream of the target (the state layout sim/rng.c also relies on), stepped inline:
 * gsl_ran_exponential's log1p per event was the largest cost of Brunel's 20 kHz input per neuron. */
typedef struct { unsigned long s1, s2, s3; } taus_st;   /* gsl/rng/taus.c */
/* The same generator in 32-bit registers (GSL keeps every component below 2^32, so the 64-bit
 * masks of gsl/rng/taus.c are the wrap-around of 32-bit shifts): the identical sequence. */
typedef struct { uint32_t s1, s2, s3; } taus32;

static inline taus32 taus_load(const gsl_rng *r) {
  const taus_st *g = gsl_rng_state(r);
  return (taus32){(uint32_t)g->s1, (uint32_t)g->s2, (uint32_t)g->s3};
}

static inline void taus_store(gsl_rng *r, taus32 x) {
  taus_st *g = gsl_rng_state(r);
  g->s1 = x.s1;
  g->s2 = x.s2;
  g->s3 = x.s3;
}

static inline uint32_t taus_next(taus32 *x) {
  x->s1 = ((x->s1 & 4294967294u) << 12) ^ (((x->s1 << 13) ^ x->s1) >> 19);
  x->s2 = ((x->s2 & 4294967288u) << 4) ^ (((x->s2 << 2) ^ x->s2) >> 25);
  x->s3 = ((x->s3 & 4294967280u) << 17) ^ (((x->s3 << 3) ^ x->s3) >> 11);
  return x->s1 ^ x->s2 ^ x->s3;
}

static uint32_t zig_k[256];
static double zig_w[256], zig_f[256];
static pthread_once_t zig_once = PTHREAD_ONCE_INIT;

static void zig_setup(void) {   /* Marsaglia & Tsang 2000, zigset() for the exponential */
  const double m2 = 4294967296.0, ve = 3.949659822581572e-3;
  double de = 7.697117470131487, te = de, q = ve / exp(-de);
  zig_k[0] = (uint32_t)((de / q) * m2);
  zig_k[1] = 0;
  zig_w[0] = q / m2;
  zig_w[255] = de / m2;
  zig_f[0] = 1.0;
  zig_f[255] = exp(-de);
  for (int i = 254; i >= 1; i--) {
    de = -log(ve / de + exp(-de));
    zig_k[i + 1] = (uint32_t)((de / te) * m2);
    te = de;
    zig_f[i] = exp(-de);
    zig_w[i] = de / m2;
  }
}

static inline double uni_pos(taus32 *x) { return ((double)taus_next(x) + 0.5) / 4294967296.0; }

/* The ziggurat's rare cases (1.1% of the draws), out of line. */
static __attribute__((noinline)) double zig_exp_slow(taus32 *x, uint32_t j) {
  unsigned i = j & 255u;
  for (;;) {
    if (i == 0) return 7.697117470131487 - log(uni_pos(x));
    double v = j * zig_w[i];
    if (zig_f[i] + uni_pos(x) * (zig_f[i - 1] - zig_f[i]) < exp(-v)) return v;
    j = taus_next(x);
    i = j & 255u;
    if (j < zig_k[i]) return j * zig_w[i];
  }
}

/* Exponential variate with mean 1. */
static inline __attribute__((always_inline)) double zig_exp(taus32 *x) {
  uint32_t j = taus_next(x);
  unsigned i = j & 255u;
  if (__builtin_expect(j < zig_k[i], 1)) return j * zig_w[i];
  return zig_exp_slow(x, j);
}

/* Next arrival after `from` of Poisson source p (INFINITY when none before its stop). */
static inline __attribute__((always_inline)) double pois_draw_st(taus32 *x, const sb_pois *p, double from) {
  if (!(p->rate > 0)) return INFINITY;
  double t = from + zig_exp(x) * (1000.0 / p->rate);
  return t < p->stop ? t : INFINITY;
}

static double pois_draw(gsl_rng *r, const sb_pois *p, double from) {
  taus32 x = taus_load(r);
  double t = pois_draw_st(&x, p, from);
  taus_store(r, x);
  return t;
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
  int imax = -1;   /* the projection with the longest delay, named when the queues cannot be held */
  for (int i = 0; i < net->n_projs; i++) {
    if (net->projs[i].dmin < dmin) dmin = net->projs[i].dmin;
    if (net->projs[i].dmax > dmax) dmax = net->projs[i].dmax, imax = i;
  }
  net->W = dmin < SB_MAX_WINDOW ? dmin : SB_MAX_WINDOW;
  net->inv_W = 1.0 / net->W;
  /* one event queue per neuron for every window a delay spans: refuse before sizes wrap */
  double slots = ceil(dmax / net->W) + 2, need = slots * (double)n * (double)(sizeof *net->ev + sizeof *net->arr);
  const char *what;
  double have = (double)sb_mem_limit(&what);
  if (!(slots < 1e9) || need > have) {
    char where[64] = "delays";
    if (imax >= 0) snprintf(where, sizeof where, "projections[%d].delay", imax);
    SB_ERROR(SB_EINVAL, "%s: the longest delay, %g ms, spans %.3g windows of the shortest, %g ms; their event queues "
             "for %zu neurons need %.3g GB, more than the %.3g GB of %s", where, dmax, slots - 2, net->W, n, need / 1e9,
             have / 1e9, what);
  }
  net->S = (int)slots;
  pthread_once(&zig_once, zig_setup);
  net->ev = sb_calloc((size_t)net->S * n, sizeof *net->ev);
  /* per-partition structures written in every window: 64-byte elements on lines of their own */
  net->arr = sb_calloc_aligned((size_t)net->S * (size_t)net->threads, sizeof *net->arr, 64);
  for (size_t i = 0; net->arr && i < (size_t)net->S * (size_t)net->threads; i++) net->arr[i].cut_n = UINT32_MAX;   /* no cuts yet */
  net->qarena = sb_calloc_aligned((size_t)net->threads, sizeof *net->qarena, 64);
  if (net->qarena) {   /* wide queues (weights beside the entries) when a projection has weighted events */
    int wide = 0;
    for (int j = 0; j < net->n_projs; j++)
      for (int k = net->p_lo; k < net->p_hi && net->projs[j].kind == SB_PROJ_SPARSE; k++)
        if (net->projs[j].part[k].w && !net->projs[j].part[k].d) wide = 1;
    for (int k = 0; k < net->threads; k++) {
      net->qarena[k].wide = wide;
      net->qarena[k].fslot = -1;
    }
  }
  net->fcnt = sb_malloc(n * sizeof *net->fcnt);
  net->home_slot = sb_malloc(n);
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
  net->tsp_n = sb_calloc_aligned((size_t)T * SB_TSTRIDE, sizeof *net->tsp_n, 64);
  net->tsp_cap = sb_calloc_aligned((size_t)T * SB_TSTRIDE, sizeof *net->tsp_cap, 64);
  net->scratch = sb_calloc((size_t)T, sizeof *net->scratch);
  net->scratch_cap = sb_calloc((size_t)T, sizeof *net->scratch_cap);
  net->merged = sb_calloc((size_t)T, sizeof *net->merged);
  net->merged_cap = sb_calloc((size_t)T, sizeof *net->merged_cap);
  net->pin = sb_calloc((size_t)T, sizeof *net->pin);
  net->pin_cap = sb_calloc((size_t)T, sizeof *net->pin_cap);
  net->pin_t = sb_calloc((size_t)T, sizeof *net->pin_t);
  if (!net->pin || !net->pin_cap || !net->pin_t) return SB_ENOMEM;
  net->t_events = sb_calloc_aligned((size_t)T * SB_TSTRIDE, sizeof *net->t_events, 64);
  net->t_ext = sb_calloc_aligned((size_t)T * SB_TSTRIDE, sizeof *net->t_ext, 64);
  net->t_eager = sb_calloc_aligned((size_t)T * SB_TSTRIDE, sizeof *net->t_eager, 64);
  net->ep_carry = sb_malloc(((size_t)T * (size_t)net->n_pops * 5 + 1) * sizeof *net->ep_carry);
  if (!net->ep_carry) return SB_ENOMEM;
  for (size_t j = 0; j < (size_t)T * (size_t)net->n_pops; j++) net->ep_carry[j * 5] = NAN;   /* for no origin yet */
  net->eager_ok = sb_calloc(n, sizeof *net->eager_ok);
  net->act = sb_calloc_aligned((size_t)net->S * (size_t)T, sizeof *net->act, 64);
  net->cal = sb_calloc_aligned((size_t)T * SB_CAL_R, sizeof *net->cal, 64);
  net->far_ = sb_calloc_aligned((size_t)T, sizeof *net->far_, 64);
  net->cand = sb_calloc_aligned((size_t)T, sizeof *net->cand, 64);
  net->stamp = sb_calloc(n, sizeof *net->stamp);
  net->cal_at = sb_malloc(n * sizeof *net->cal_at);
  if (net->cal_at) memset(net->cal_at, 0xff, n * sizeof *net->cal_at);
  net->pass = sb_calloc_aligned((size_t)T * SB_TSTRIDE32, sizeof *net->pass, 64);
  net->pmode = sb_calloc_aligned((size_t)T * SB_TSTRIDE32, sizeof *net->pmode, 64);
  if (!net->act || !net->cal || !net->far_ || !net->cand || !net->stamp || !net->cal_at || !net->pass || !net->pmode) return SB_ENOMEM;
  for (int k = 0; k < T; k++) net->pmode[(size_t)(k) * SB_TSTRIDE32] = 2;
  if (!net->ev || !net->arr || !net->qarena || !net->fcnt || !net->home_slot || !net->pois_first || !net->pois_next || !net->pois_s || !net->pois_rng || !net->stim_first ||
      !net->stim_s || !net->stim_pos || !net->rec_first || !net->t_state || !net->t_safe || !net->ev_due || !net->count || !net->last || !net->isi_sum ||
      !net->isi_sq || !net->tsp || !net->tsp_n || !net->tsp_cap || !net->scratch || !net->scratch_cap || !net->merged || !net->merged_cap ||
      !net->t_events || !net->t_ext || !net->t_eager || !net->eager_ok)
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
  for (int r = 0; r < net->n_recs; r++) {
    if (net->pops[net->recs[r].pop].type->state_size > SB_SAMPLE_STATE_MAX)   /* sample_segment's copy */
      SB_ERROR(SB_EINVAL, "record: %s's state (%zu bytes) is larger than the %d bytes a sample's copy holds",
               net->pops[net->recs[r].pop].type->name, net->pops[net->recs[r].pop].type->state_size, SB_SAMPLE_STATE_MAX);
    for (size_t c = 0; c < net->recs[r].n; c++)
      net->rec_first[net->pops[net->recs[r].pop].first + net->recs[r].ids[c] + 1]++;
  }
  for (size_t g = 0; g < n; g++) {
    if (net->rec_first[g + 1] > MAX_RECS_PER_NEURON)
      SB_ERROR(SB_EINVAL, "record: neuron %zu is in more than %d state recordings", g, MAX_RECS_PER_NEURON);
    net->rec_first[g + 1] += net->rec_first[g];
  }
  net->recmap = sb_malloc((net->rec_first[n] + 1) * sizeof *net->recmap);
  if (!net->recmap) return SB_ENOMEM;
  net->smp_sz = 0;
  for (int r = 0; r < net->n_recs; r++)
    if (net->pops[net->recs[r].pop].type->state_size > net->smp_sz) net->smp_sz = net->pops[net->recs[r].pop].type->state_size;
  net->smp_state = sb_malloc(net->rec_first[n] * net->smp_sz + 1);
  net->smp_t = sb_malloc((net->rec_first[n] + 1) * sizeof *net->smp_t);
  if (!net->smp_state || !net->smp_t) return SB_ENOMEM;
  for (size_t j = 0; j <= net->rec_first[n]; j++) net->smp_t[j] = NAN;
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
  /* per-thread workspaces, fast-path rates and the reset snapshot */
  for (int i = 0; i < net->n_pops; i++) {
    sb_pop *p = &net->pops[i];
    p->n_rates = p->type->run_frame && p->pstride == 0 ? p->type->frame_rates(p->params, p->rates) : 0;
    p->frame_m = 1;
    double rmax = 0;
    for (int j = 0; j < p->n_rates; j++) rmax = p->rates[j] > rmax ? p->rates[j] : rmax;
    /* time constants far below the window (tau_m = 0.007 ms in 5 ms windows: factors beyond e^709,
     * inf) take the generic exact path */
    if (!(rmax * net->W <= SB_FRAME_MAX_EXP)) p->n_rates = 0;
    if (p->n_rates) {   /* epochs of windows with frame factors up to e^8 */
      double m = floor(8.0 / (rmax * net->W));
      p->frame_m = m > 1 ? (m < 1e6 ? (uint64_t)m : 1000000u) : 1u;
      p->rate_max = rmax;
    }
    p->pois_direct = p->n_rates == 1 && rmax * net->W <= 0.125;
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

/* Stable sort of queue entries (type TYPE, the entry in its low 32 bits) by arrival time
 * (sb_ev_t_): insertion sort for short lists (nearly sorted), else a bottom-up merge sort on runs
 * of 32 with tmp (n entries). */
#define SB_DEFINE_SORT_EVENTS(NAME, TYPE)                                                               \
  static void NAME(TYPE *e, uint32_t n, TYPE *tmp, const sb_arrtab *tab) {                              \
    if (n <= 48) {                                                                                      \
      for (uint32_t i = 1; i < n; i++) {                                                                \
        TYPE x = e[i];                                                                                  \
        double tx = sb_ev_t_(tab, (uint32_t)x);                                                         \
        uint32_t j = i;                                                                                 \
        while (j > 0 && sb_ev_t_(tab, (uint32_t)e[j - 1]) > tx) { e[j] = e[j - 1]; j--; }               \
        e[j] = x;                                                                                       \
      }                                                                                                 \
      return;                                                                                           \
    }                                                                                                   \
    for (uint32_t s = 0; s < n; s += 32) NAME(e + s, n - s < 32 ? n - s : 32, NULL, tab);               \
    TYPE *a = e, *b = tmp;                                                                              \
    for (uint32_t w = 32; w < n; w *= 2) {                                                              \
      for (uint32_t lo = 0; lo < n; lo += 2 * w) {                                                      \
        uint32_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;                   \
        uint32_t i = lo, j = mid, k = lo;                                                               \
        while (i < mid && j < hi)                                                                       \
          b[k++] = sb_ev_t_(tab, (uint32_t)a[j]) < sb_ev_t_(tab, (uint32_t)a[i]) ? a[j++] : a[i++];     \
        while (i < mid) b[k++] = a[i++];                                                                \
        while (j < hi) b[k++] = a[j++];                                                                 \
      }                                                                                                 \
      TYPE *t = a; a = b; b = t;                                                                        \
    }                                                                                                   \
    if (a != e) memcpy(e, a, n * sizeof *e);                                                            \
  }
SB_DEFINE_SORT_EVENTS(sort_events32, uint32_t)
SB_DEFINE_SORT_EVENTS(sort_events64, uint64_t)

/* Puts queue v in arrival-time order, stably, when its table is out of time order and the queue
 * too (a queue of a time-ordered table is in time order: constant-delay arrivals are pushed so); a
 * wide queue's weights move with their entries (each entry keeps its old position in the high 32
 * bits while sorting). *scratch (per thread, *cap uint32s) is grown as needed. */
static int order_queue(sb_evvec *v, int wide, uint32_t **scratch, size_t *cap, const sb_arrtab *at) {
  uint32_t unsorted = 0;
  for (uint32_t j = 1; at->unsorted && j < v->n && !unsorted; j++) unsorted = sb_ev_t_(at, v->e[j]) < sb_ev_t_(at, v->e[j - 1]);
  if (!unsorted) return SB_OK;
  size_t need = wide ? 5 * (size_t)v->n : v->n;   /* wide: 2 n uint64 keys and n floats */
  if (need > *cap) {
    uint32_t *sc = sb_realloc(*scratch, need * sizeof *sc);
    if (!sc) return SB_ENOMEM;
    *scratch = sc;
    *cap = need;
  }
  if (!wide) {
    sort_events32(v->e, v->n, *scratch, at);
    return SB_OK;
  }
  uint64_t *k = (uint64_t *)(void *)*scratch;
  float *wq = sb_evvec_w_(v), *w0 = (float *)(void *)(k + 2 * (size_t)v->n);
  for (uint32_t j = 0; j < v->n; j++) k[j] = (uint64_t)j << 32 | v->e[j];
  sort_events64(k, v->n, k + v->n, at);
  memcpy(w0, wq, v->n * sizeof *w0);
  for (uint32_t j = 0; j < v->n; j++) {
    v->e[j] = (uint32_t)k[j];
    wq[j] = w0[k[j] >> 32];
  }
  return SB_OK;
}

static int emit(sb_net *net, int tid, uint32_t gid, double t) {
  if (net->tsp_n[(size_t)(tid) * SB_TSTRIDE] == net->tsp_cap[(size_t)(tid) * SB_TSTRIDE]) {
    size_t cap = net->tsp_cap[(size_t)(tid) * SB_TSTRIDE] ? 2 * net->tsp_cap[(size_t)(tid) * SB_TSTRIDE] : 1024;
    sb_spike *s = sb_realloc(net->tsp[tid], cap * sizeof *s);
    if (!s) return SB_ENOMEM;
    net->tsp[tid] = s;
    net->tsp_cap[(size_t)(tid) * SB_TSTRIDE] = cap;
  }
  net->tsp[tid][net->tsp_n[(size_t)(tid) * SB_TSTRIDE]++] = (sb_spike){t, gid};
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

enum { SRC_END, SRC_STIM, SRC_EV, SRC_POIS };

/* A neuron's state recordings during process_neuron: recmap entries [rf, rl), their next sample
 * indices kc, and the window's end t1 (samples at or after it belong to the next window). */
typedef struct {
  size_t rf, rl;
  uint64_t *kc;
  double t1;
} sb_sampler;

/* The samples of sm due in the piece [ta, tb] of neuron i's trajectory (tb excluded unless incl;
 * a sample time before ta is taken at ta) whose state at ta is s: taken from a copy of s advanced
 * from sample to sample, so that the neuron's own trajectory is never cut at a sample time (a step
 * cut in two rounds differently: recording V_m of iaf_cond_exp_theta had moved later spikes by up
 * to 1.9e-9 ms). A sample at the time of an input comes before it; at a spike time, after the
 * reset. Ties between recordings: the one listed first first. With keep, the copy at its last
 * sample goes there and its time to *keep_t (keep may be s). Returns SB_OK or the model's error. */
static int sample_segment(sb_net *net, const sb_pop *pop, size_t i, const void *p, const void *d, const void *s, void *w,
                          double ta, double tb, int incl, sb_sampler *sm, void *keep, double *keep_t) {
  const sb_neuron_type *T = pop->type;
  _Alignas(64) unsigned char c[SB_SAMPLE_STATE_MAX];
  int have = 0;
  double tc = ta;
  for (;;) {
    double ts = INFINITY;
    size_t which = 0;
    for (size_t j = sm->rf; j < sm->rl; j++) {
      double x = (double)sm->kc[j - sm->rf] * net->recs[net->recmap[j].rec].interval;
      if (x < ts) { ts = x; which = j; }
    }
    if (!(ts < sm->t1) || !(ts < tb || (incl && ts == tb))) {
      if (keep && have) {   /* the copy at its last sample, for the next window's samples */
        memcpy(keep, c, T->state_size);
        *keep_t = tc;
      }
      return SB_OK;
    }
    if (!have) {
      memcpy(c, s, T->state_size);
      have = 1;
    }
    if (ts > tc) {
      int rc = T->advance(p, d, c, tc, ts, w);
      if (rc) return sb_error_prefix_(rc, "%s: neuron %zu (sample at t = %g ms)", pop->name, i, ts);
      tc = ts;
    }
    sb_rec *r = &net->recs[net->recmap[which].rec];
    double val;
    memcpy(&val, c + r->var_off, sizeof val);
    r->buf[(sm->kc[which - sm->rf] - r->k_next) * r->n + net->recmap[which].col] = (float)val;
    sm->kc[which - sm->rf]++;
  }
}

/* Take neuron i of `pop` from *t to te (>= *t) exactly. Inside the quiet interval (no
 * threshold crossing possible before *quiet) it is one step, skipped at the window's end
 * (lazy: the next event advances it). Otherwise every crossing is found, emitted and
 * reset; a spike voids *quiet (the bound was for the trajectory before the reset). With sm (only
 * for a neuron with state recordings), the samples due up to te (included) are taken from copies
 * (sample_segment). */
static inline __attribute__((always_inline)) int integrate_to(sb_net *net, const sb_pop *pop, size_t i, int tid, const void *p, const void *d, void *s,
                        void *w, double *t, double te, int at_end, double *quiet, sb_sampler *sm) {
  const sb_neuron_type *T = pop->type;
  uint32_t gid = (uint32_t)(pop->first + i);
  int rc;
  if (sm && (te <= *quiet || !(te > *t)) && (rc = sample_segment(net, pop, i, p, d, s, w, *t, te, 1, sm, NULL, NULL)))
    return rc;
  if (te > *t && te <= *quiet) {
    if (!at_end) {
      if ((rc = T->advance(p, d, s, *t, te, w))) return sb_error_prefix_(rc, "%s: neuron %zu", pop->name, i);
      *t = te;
    }
  } else if (te > *t) {
    long guard = 0;
    double ts;
    _Alignas(64) unsigned char c0[SB_SAMPLE_STATE_MAX];
    const int smp = sm != NULL;
    /* a sample at the state's own time shows the state as it is, before a crossing found there
     * (t = 0 with V_m initialised above threshold: the initial V_m, as Brian2's StateMonitor) */
    if (smp && (rc = sample_segment(net, pop, i, p, d, s, w, *t, *t, 1, sm, NULL, NULL))) return rc;
    /* cross_or_advance: next_crossing, and on SB_NOSPIKE the advance to te, in one call */
    for (;;) {
      if (smp) memcpy(c0, s, T->state_size);   /* the piece's start, for its samples */
      rc = T->cross_or_advance ? T->cross_or_advance(p, d, s, *t, te, &ts, w) : T->next_crossing(p, d, s, *t, te, &ts, w);
      if (rc != SB_OK) break;
      if (ts < *t) ts = *t;
      if (smp && (rc = sample_segment(net, pop, i, p, d, c0, w, *t, ts, 0, sm, NULL, NULL))) return rc;
      if ((rc = T->advance(p, d, s, *t, ts, w))) return rc;
      *t = ts;
      if ((rc = emit(net, tid, gid, ts))) return rc;
      T->reset(p, d, s, ts);
      if (++guard > 1000000)
        SB_ERROR(SB_ENOCONV, "%s: neuron %zu: more than 1e6 spikes at t = %.17g ms", pop->name, i, ts);
    }
    if (rc != SB_NOSPIKE) return sb_error_prefix_(rc, "%s: neuron %zu at t = %g ms", pop->name, i, *t);
    if (smp && (rc = sample_segment(net, pop, i, p, d, c0, w, *t, te, 1, sm, NULL, NULL))) return rc;
    if (!T->cross_or_advance && (rc = T->advance(p, d, s, *t, te, w)))
      return sb_error_prefix_(rc, "%s: neuron %zu", pop->name, i);
    *t = te;
    if (guard) *quiet = -INFINITY;
  }
  return SB_OK;
}

/* A processed, emptied queue (slot, neuron gid) trades its block with the next slot's queue when that
 * one is empty and smaller: the block just read (warm in cache) takes the next window's events, so a
 * neuron's events cycle through one block instead of one per slot (Brunel: 3 slots). Both queues
 * are the neuron's, owned by its partition's thread. */
static inline void queue_pass_on(sb_net *net, size_t slot, size_t gid) {
  sb_evvec *v = &net->ev[slot * net->n + gid], *nx = &net->ev[((slot + 1) % (size_t)net->S) * net->n + gid];
  if (nx->n || nx->cap >= v->cap) return;
  uint32_t *e = v->e, cap = v->cap;
  v->e = nx->e, v->cap = nx->cap;
  nx->e = e, nx->cap = cap;
}

/* ---- flat home blocks (docs/engine.md, "flat queues") ----
 * A busy partition's delivery (Brunel: ~60 events per neuron and window) spent most of its time on
 * two dependent loads per event: the queue header (16 bytes of a 200 KB array), then the block it
 * points to. With home blocks, a delivery keeps the lengths of one slot's queues in a 16-bit mirror
 * (sb_net.fcnt, 25 KB for 12,500 neurons: in L1) and writes each event at a computed address; the
 * mirror is written back to the queues before anything else reads or writes them (flat_flush), so
 * every other reader sees ordinary queues. A block holds fcap entries; a queue that outgrows its
 * home block moves into the arena (ev_grow) and takes the block back when it is next emptied. */
#define SB_FLAT_AFTER 8   /* busy deliveries in a row before a partition's home blocks are mapped */

static inline uint32_t *flat_block(const sb_arena *a, size_t gid) { return a->flat + (gid - a->g0) * a->fstride; }

/* A processed, emptied queue (partition k, slot, neuron gid): with home blocks, an orphaned home
 * block is taken back (the arena block released) and the home block passes on to the next slot's
 * queue (the next window's deliveries go there), with the events that queue already holds when
 * they fit (its arena block released), so that a neuron's events cycle through one block;
 * otherwise queue_pass_on. */
static inline void queue_done(sb_net *net, int k, size_t slot, size_t gid) {
  sb_arena *a = &net->qarena[k];
  if (!a->flat) {
    queue_pass_on(net, slot, gid);
    return;
  }
  sb_evvec *v = &net->ev[slot * net->n + gid];
  uint8_t *hs = &net->home_slot[gid];
  if (*hs == 0xFF) {
    if (v->cap) arena_release(a, v->e, arena_cls(a, v->cap));
    v->e = flat_block(a, gid);
    v->cap = a->fcap;
    *hs = (uint8_t)slot;
  }
  if (*hs != slot) return;
  size_t ns = (slot + 1) % (size_t)net->S;
  sb_evvec *nx = &net->ev[ns * net->n + gid];
  uint32_t *e = v->e, cap = v->cap;
  if (nx->n) {   /* already holds events (longer delays): they move into the home block if they fit */
    if (nx->n > cap) return;
    memcpy(e, nx->e, nx->n * sizeof *e);
    if (a->wide) memcpy(e + cap, sb_evvec_w_(nx), nx->n * sizeof(float));
    arena_release(a, nx->e, arena_cls(a, nx->cap));
    v->e = NULL, v->cap = 0;
  } else
    v->e = nx->e, v->cap = nx->cap;
  nx->e = e, nx->cap = cap;
  *hs = (uint8_t)ns;
}

/* Writes partition k's mirrored lengths back to their queues (no-op without a mirror). */
static inline void flat_flush(sb_net *net, int k) {
  sb_arena *a = &net->qarena[k];
  if (a->fslot < 0) return;
  sb_evvec *q = net->ev + (size_t)a->fslot * net->n;
  const uint16_t *c = net->fcnt;
  for (size_t g = a->g0; g < a->g0 + a->nk; g++)
    if (c[g] != 0xFFFF) q[g].n = c[g];
  a->fslot = -1;
}

/* The mirror of slot sl's queue lengths for partition k: a neuron's length where the slot's queue
 * holds its home block, else 0xFFFF. NULL when another mirror was loaded in this delivery: a
 * delivery loads at most one (rows into several slots, or rows between pushes of other kinds,
 * would otherwise write back and reload the whole mirror again and again). */
static inline uint16_t *flat_mirror(sb_net *net, int k, size_t sl) {
  sb_arena *a = &net->qarena[k];
  if (a->fslot != (int32_t)sl) {
    if (a->loads) return NULL;
    a->loads = 1;
    const sb_evvec *q = net->ev + sl * net->n;
    uint16_t *c = net->fcnt;
    const uint8_t *hs = net->home_slot;
    for (size_t g = a->g0; g < a->g0 + a->nk; g++) c[g] = hs[g] == sl ? (uint16_t)q[g].n : 0xFFFF;
    a->fslot = (int32_t)sl;
  }
  return net->fcnt;
}

/* Partition k's home blocks, outgrown (activity rose after they were sized: Brunel's fast
 * oscillation, Fig. 8 B, had 59% of its queues spill in every window), go back to the arena: each
 * queue holding one moves its events into an arena block, and the blocks are unmapped. The next
 * mapping (flat_enable, after SB_FLAT_AFTER busy deliveries again) takes at least twice the size;
 * beyond 4088 entries the partition stays with the arena. Called between deliveries (no mirror
 * loaded). SB_ENOMEM leaves the blocks mapped and every queue valid (those already moved are
 * ordinary arena queues). */
static int flat_unmap(sb_net *net, int k) {
  sb_arena *a = &net->qarena[k];
  for (size_t g = a->g0; g < a->g0 + a->nk; g++) {
    uint8_t hs = net->home_slot[g];
    if (hs == 0xFF) continue;
    sb_evvec *v = &net->ev[(size_t)hs * net->n + g];
    if (v->n) {
      uint32_t cap = v->n <= 8 ? 8 : 1u << (32 - __builtin_clz(v->n - 1));
      uint32_t *e = ev_copy_out(a, v, cap);
      if (!e) return SB_ENOMEM;
      v->e = e, v->cap = cap;
    } else
      v->e = NULL, v->cap = 0;
    net->home_slot[g] = 0xFF;
  }
  munmap(a->flat, a->flat_len);
  a->flat = NULL;
  a->fcap_min = 2 * a->fcap + 8;   /* 16 m + 8 again */
  a->busy = a->strikes = 0;
  a->unmaps++;
  return SB_OK;
}

/* After a delivery by partition k of nev events that the mirror's loop can take (queued, with
 * the row's weight: not weighted, not taken at delivery): maps its home blocks once SB_FLAT_AFTER
 * deliveries in a row brought at least 4 such events per neuron, with room for twice the last one's
 * mean plus 16 (at least twice the previous size after flat_unmap), as 16 m + 8 entries (a block
 * is not a multiple of 128 bytes, so that the blocks' ends spread over the cache sets: 256 entries
 * were 1.7x slower to fill in a microbenchmark). Refused for good (the arena alone, as before)
 * beyond 4088 entries, 254 slots, an eighth of sb_mem_limit for all partitions' blocks, or when the
 * mapping fails. The home blocks start orphaned: each queue takes its block when it is next emptied
 * (queue_done). While mapped: unmapped (flat_unmap) when the last SB_FLAT_AFTER deliveries spilled
 * more often than there are blocks. SB_ENOMEM only from flat_unmap. */
static int flat_enable(sb_net *net, int k, uint64_t nev) {
  sb_arena *a = &net->qarena[k];
  size_t nk = net->bound[k + 1] - net->bound[k];
  if (a->flat) {   /* outgrown: more spills than blocks in SB_FLAT_AFTER deliveries (an oscillation's peaks count) */
    if (++a->strikes < SB_FLAT_AFTER) return SB_OK;
    uint32_t sp = a->spills - a->spill_mark;
    a->spill_mark = a->spills;
    a->strikes = 0;
    return sp > nk ? flat_unmap(net, k) : SB_OK;
  }
  if (a->flat_off || net->flat_off > 0 || !nk) return SB_OK;
  if (nev < 4 * (uint64_t)nk && !(net->flat_off < 0 && nev)) {
    a->busy = 0;
    return SB_OK;
  }
  if (++a->busy < SB_FLAT_AFTER) return SB_OK;
  uint64_t cap = (2 * nev / nk + 16 + 15) / 16 * 16 + 8;
  if (cap < a->fcap_min) cap = a->fcap_min;
  if (cap > 4088 || net->S > 254) {
    a->flat_off = 1;
    return SB_OK;
  }
  a->fcap = (uint32_t)cap;
  a->fstride = a->wide ? 2 * a->fcap : a->fcap;
  a->flat_len = nk * a->fstride * sizeof(uint32_t);
  /* an optimisation only: not where the blocks of all partitions would take an eighth of the
   * memory this process may use (a large busy network stays with the arena) */
  if ((double)a->flat_len * (double)net->threads > (double)sb_mem_limit(NULL) / 8) {
    a->flat_off = 1;
    return SB_OK;
  }
  void *m = mmap(NULL, a->flat_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    a->flat_off = 1;
    return SB_OK;
  }
  madvise(m, a->flat_len, MADV_HUGEPAGE);   /* written at random, as the arena */
  a->flat = m;
  a->g0 = net->bound[k];
  a->nk = nk;
  a->home = net->home_slot;
  a->spill_mark = a->spills;
  a->strikes = 0;
  memset(net->home_slot + a->g0, 0xFF, nk);
  return SB_OK;
}

static int process_neuron(sb_net *net, sb_pop *pop, size_t i, int tid, double t0, double t1, int full) {
  const sb_neuron_type *T = pop->type;
  const void *p = pop->params + i * pop->pstride, *d = pop->derived + i * pop->dstride;
  void *s = pop->state + i * T->state_size;
  void *w = pop->work ? pop->work[tid] : NULL;
  uint32_t gid = (uint32_t)(pop->first + i);
  size_t slot = (size_t)(net->k % (uint64_t)net->S);
  sb_evvec *v = &net->ev[slot * net->n + gid];
  const sb_arrtab *at = &net->arr[slot * (size_t)net->threads + (size_t)tid];
  size_t sp = net->stim_pos[gid], se = net->stim_first[gid + 1];
  size_t pf = net->pois_first[gid], pl = net->pois_first[gid + 1];
  size_t rf = net->rec_first[gid], rl = net->rec_first[gid + 1];
  uint64_t kc[MAX_RECS_PER_NEURON];
  for (size_t j = rf; j < rl; j++) kc[j - rf] = net->recs[net->recmap[j].rec].k_next;
  sb_sampler sm = {rf, rl, kc, t1};
  /* A recorded neuron is looked at in every window for its samples, but its trajectory is only
   * touched where an unrecorded one's would be (no input and its wake time not reached: samples
   * only), so that recording leaves its spikes as they are. */
  if (rl > rf && !v->n && t1 <= net->t_safe[gid]) {
    /* from the copy these visits keep, while the state is untouched (else from the state: a
     * quiet iaf_cond_exp_theta neuron would integrate its copy again from its last event in
     * every window, 2.4x slower in fresh-user trial 13) */
    char *keep = net->smp_state + rf * net->smp_sz;
    double *keep_t = &net->smp_t[rf];
    int kept = *keep_t >= net->t_state[gid];   /* NAN: none */
    return sample_segment(net, pop, i, p, d, kept ? keep : s, w, kept ? *keep_t : net->t_state[gid], t1, 0, &sm, keep, keep_t);
  }
  if (rl > rf) net->smp_t[rf] = NAN;   /* the state changes: the copy is stale */
  if (order_queue(v, net->qarena[tid].wide, &net->scratch[tid], &net->scratch_cap[tid], at)) return SB_ENOMEM;
  uint32_t ie = 0;
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
    if (sp < se && net->stim_s[sp].t < te) { te = net->stim_s[sp].t; src = SRC_STIM; }
    if (ie < v->n && sb_ev_t_(at, v->e[ie]) < te) { te = sb_ev_t_(at, v->e[ie]); src = SRC_EV; }
    for (size_t q = pf; q < pl; q++)
      if (net->pois_next[q] < te) { te = net->pois_next[q]; src = SRC_POIS; which = q; }
    if (te < t) te = t;   /* an arrival rounded just below the window start */
    if ((rc = integrate_to(net, pop, i, tid, p, d, s, w, &t, te, src == SRC_END, &quiet_until, rl > rf ? &sm : NULL)))
      return rc;
    switch (src) {
      case SRC_END: goto done;
      case SRC_STIM:
        T->receive(p, d, s, te, net->stim_s[sp].rcpt, net->stim_s[sp].w);
        n_ext += net->stim_s[sp].rcpt == SB_RCPT_SPIKE;
        sp++;
        break;
      case SRC_EV:
        T->receive(p, d, s, te, SB_RCPT_SPIKE, sb_ev_in_(at, v->e, sb_evvec_w_(v), ie).w);
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
    quiet_until = T->safe_until ? T->safe_until(p, d, s, te) : -INFINITY;
  }
done:
  net->t_state[gid] = t;
  /* the next time this neuron must be looked at without new events (lazy update); a bound
   * computed after the last input (or carried over) is still valid */
  double wake = -INFINITY;
  if (T->safe_until) wake = quiet_until > t ? quiet_until : T->safe_until(p, d, s, t);
  if (sp < se && net->stim_s[sp].t < wake) wake = net->stim_s[sp].t;
  for (size_t q = pf; q < pl; q++)
    if (net->pois_next[q] < wake) wake = net->pois_next[q];
  net->t_safe[gid] = wake;
  net->stim_pos[gid] = sp;
  net->t_ext[(size_t)(tid) * SB_TSTRIDE] += n_ext;
  if (full) {
    v->n = 0;
    queue_done(net, tid, slot, gid);
  }
  else if (ie) {
    memmove(v->e, v->e + ie, (v->n - ie) * sizeof *v->e);
    v->n -= ie;
  }
  /* queued events need no due time: the window scan looks at the slot's queue itself; a recorded
   * neuron is due in every window (its samples), t_safe says whether for more than them */
  net->ev_due[gid] = rl > rf ? -INFINITY : wake;
  return SB_OK;
}

/* Frame factors of a window's Poisson arrivals, in place: t[k] (ms, n of them, t[n..n+3] readable)
 * becomes base e^{(t[k] - t_w) rate}, with base = e^{(t_w - t_f) rate} (t_w the window's start, t_f
 * the frame origin). Valid for (t - t_w) rate <= 1/8 (pois_direct): Taylor to degree 10,
 * truncation below 3e-18 relative; each factor is direct (no chain of products along the
 * arrivals), so the arrivals are independent and go four at a time. The AVX2 clone keeps
 * separate multiplies and adds (no FMA; C17 mode does not contract), so every clone gives the
 * same bits. Microbenchmark: 6.75 ns per Poisson event with the product chain, 5.4-5.8 with the AVX2 clone. */
typedef double sb_v4d __attribute__((vector_size(32)));
__attribute__((target_clones("avx2", "default"))) static void pois_factors(double *t, uint32_t n, double t_w, double rate,
                                                                            double base) {
  for (uint32_t k = 0; k < n; k += 4) {
    sb_v4d x;
    memcpy(&x, t + k, sizeof x);
    x = (x - t_w) * rate;
    sb_v4d g = 1.0 + x * (1.0 + x * (1.0 / 2 + x * (1.0 / 6 + x * (1.0 / 24 + x * (1.0 / 120 + x * (1.0 / 720 + x * (1.0 / 5040 +
               x * (1.0 / 40320 + x * (1.0 / 362880 + x * (1.0 / 3628800))))))))));
    g = g * base;
    memcpy(t + k, &g, sizeof g);
  }
}

/* e^x for 0 <= x <= 1/16: Taylor to degree 8, truncation below 5e-17 relative. */

static inline double exp_small(double x) {
  return 1.0 + x * (1.0 + x * (0.5 + x * (1.0 / 6 + x * (1.0 / 24 + x * (1.0 / 120 + x * (1.0 / 720 + x * (1.0 / 5040 + x * (1.0 / 40320))))))));
}

/* Grows the per-thread merged input buffer to at least n entries. */
static int merged_reserve(sb_net *net, int tid, size_t n) {
  if (n <= net->merged_cap[tid]) return SB_OK;
  size_t cap = net->merged_cap[tid] ? net->merged_cap[tid] : 256;
  while (cap < n) cap *= 2;
  sb_input *m = sb_realloc(net->merged[tid], cap * sizeof *m);
  if (!m) return SB_ENOMEM;
  net->merged[tid] = m;
  net->merged_cap[tid] = cap;
  return SB_OK;
}

/* One part of a window in time order (process_neuron_frame's sub-windows; one frame factor, both
 * lists sorted): queued inputs [iq, jq) of e and Poisson inputs [ip, jp) of P, merged (queued first
 * on ties) and consumed by run_frame and the generic steps, as the whole-window path does. Then the
 * state is integrated (with threshold search) to te: the window's end when at_end, else the next
 * input, and left at the last input when no crossing is possible before te (lazy). */
static int ordered_part(sb_net *net, sb_pop *pop, size_t i, int tid, void *w, const sb_arrtab *tab, const uint32_t *e,
                        const float *qw, uint32_t iq,
                        uint32_t jq, const sb_input *P, uint32_t ip, uint32_t jp, double *t, double t_f, double te_end, int at_end,
                        double *quiet) {
  const sb_neuron_type *T = pop->type;
  const void *p = pop->params, *d = pop->derived;
  void *s = pop->state + i * T->state_size;
  if (merged_reserve(net, tid, (size_t)(jq - iq) + (jp - ip) + 1)) return SB_ENOMEM;
  sb_input *M = net->merged[tid];
  uint32_t nM = 0, pos = 0;
  while (iq < jq || ip < jp) {
    int fq = iq < jq && (ip >= jp || sb_ev_t_(tab, e[iq]) <= P[ip].t);
    sb_input qin;
    const sb_input *src = &P[ip];
    if (fq) {
      qin = sb_ev_in_(tab, e, qw, iq++);
      src = &qin;
    } else
      ip++;
    M[nM].t = src->t;
    M[nM].w = src->w;
    M[nM].g[0] = src->g[0];
    if (M[nM].t < *t) {   /* rounded just below the state time */
      M[nM].t = *t;
      M[nM].g[0] = exp((*t - t_f) * pop->rates[0]);
    }
    nM++;
  }
  int rc;
  for (;;) {
    uint32_t c = 0;
    if (pos < nM) {
      c = T->run_frame(p, d, s, t, t_f, M + pos, nM - pos, quiet);
      pos += c;
    }
    int end = pos >= nM;
    double te = end ? te_end : M[pos].t;
    if (te < *t) te = *t;
    if (end && !at_end && te <= *quiet) break;   /* nothing can happen before the next input */
    if ((rc = integrate_to(net, pop, i, tid, p, d, s, w, t, te, end && at_end, quiet, NULL))) return rc;
    if (end) break;
    if (c == 0) {   /* declined by run_frame: one generic input */
      T->receive(p, d, s, te, SB_RCPT_SPIKE, M[pos].w);
      pos++;
      *quiet = T->safe_until ? T->safe_until(p, d, s, te) : -INFINITY;
    }
  }
  return SB_OK;
}

/* e^{(t_w - t_f) rate}: the same for every neuron of a population in a window, so each thread keeps
 * the last one (one exp per population and window instead of one per neuron). */
static inline double pois_base(double t_w, double t_f, double rate) {
  static _Thread_local double c_w = NAN, c_f = NAN, c_r = NAN, c_b = NAN;
  if (!(t_w == c_w && t_f == c_f && rate == c_r)) {
    c_w = t_w, c_f = t_f, c_r = rate;
    c_b = exp((t_w - t_f) * rate);
  }
  return c_b;
}

/* The window-frame fast path (DESIGN: docs/engine.md): a neuron without state recordings, without
 * static stimuli in the window and with at most one Poisson source, of a model with run_frame.
 * Its queued events and its Poisson arrivals of the window are merged in time order (queued
 * first on ties, as in process_neuron) with their frame factors (the queued ones computed once
 * per source spike at delivery); run_frame consumes runs of them with one multiply-add each;
 * threshold crossings, resets and what run_frame declines go through the generic steps. */
static int process_neuron_frame(sb_net *net, sb_pop *pop, size_t i, int tid, double t1, int full) {
  const sb_neuron_type *T = pop->type;
  const void *p = pop->params, *d = pop->derived;
  void *s = pop->state + i * T->state_size;
  void *w = pop->work ? pop->work[tid] : NULL;
  uint32_t gid = (uint32_t)(pop->first + i);
  size_t slot = (size_t)(net->k % (uint64_t)net->S);
  sb_evvec *v = &net->ev[slot * net->n + gid];
  sb_arrtab *at = &net->arr[slot * (size_t)net->threads + (size_t)tid];   /* its own: arr_cuts caches in it */
  size_t pf = net->pois_first[gid], pl = net->pois_first[gid + 1];
  double t = net->t_state[gid], quiet = net->t_safe[gid];
  double t_f = frame_origin(net, pop, net->k), rmax = pop->rate_max;
  int nr = pop->n_rates;
  const double *rates = pop->rates;
  /* the window's Poisson arrivals with their frame factors: exp for the first, then times
   * e^{gap rate} (a short Taylor polynomial: gap rate <= 1/16 covers Brunel's 20 kHz at
   * tau_m = 20 ms) */
  uint32_t nP = 0;
  double pn = pf < pl ? net->pois_next[pf] : INFINITY;
  const sb_pois *ps = pf < pl ? &net->pois_s[pf] : NULL;
  sb_input *P = net->pin[tid];
  if (pn < t1) {
    taus32 rs = taus_load(net->pois_rng[gid]);
    double pg[3] = {1.0, 1.0, 1.0};
    int have_pg = 0;
    const double w_p = ps->w, scale = 1000.0 / ps->rate, stop = ps->stop;   /* rate > 0: pn is finite */
    size_t pcap = net->pin_cap[tid];
    double *pt = net->pin_t[tid];
    const int direct = pop->pois_direct;
    do {
      if (nP + 1 >= pcap) {   /* room for a sentinel after the last */
        size_t cap = nP ? 2 * (size_t)nP : 256;
        sb_input *np = sb_realloc(P, cap * sizeof *np);
        if (!np) return SB_ENOMEM;
        net->pin[tid] = P = np;
        double *nt = sb_realloc(pt, (cap + 4) * sizeof *nt);
        if (!nt) return SB_ENOMEM;
        net->pin_t[tid] = pt = nt;
        net->pin_cap[tid] = pcap = cap;
      }
      if (direct) {   /* times only; factors after the loop (its own short loop body: sharing the
                       * body below with a test on direct was 4% slower on Brunel) */
        P[nP].t = pt[nP] = pn;
        P[nP++].w = w_p;
        double pn2 = pn + zig_exp(&rs) * scale;   /* as pois_draw_st */
        pn = pn2 < stop ? pn2 : INFINITY;
        continue;
      }
      sb_input *m = &P[nP++];
      m->t = pn;
      m->w = w_p;
      double pn2 = pn + zig_exp(&rs) * scale;   /* as pois_draw_st */
      pn2 = pn2 < stop ? pn2 : INFINITY;
      double x = pn2 - pn;
      if (nr == 1) {   /* iaf_psc_delta: one factor */
        m->g[0] = have_pg ? pg[0] : exp((pn - t_f) * rates[0]);
        have_pg = x * rmax <= 0.0625;
        pg[0] = m->g[0] * exp_small(x * rates[0]);
      } else {
        for (int j = 0; j < nr; j++) m->g[j] = have_pg ? pg[j] : exp((pn - t_f) * rates[j]);   /* others unused */
        have_pg = x * rmax <= 0.0625;
        if (have_pg)
          for (int j = 0; j < nr; j++) pg[j] = m->g[j] * exp_small(x * rates[j]);
      }
      pn = pn2;
    } while (pn < t1);
    taus_store(net->pois_rng[gid], rs);
    net->pois_next[pf] = pn;
    if (direct) {
      const double t_w = (double)net->k * net->W;
      for (uint32_t k = nP; k < nP + 4; k++) pt[k] = t_w;   /* the last group's spare lanes */
      pois_factors(pt, nP, t_w, rates[0], pois_base(t_w, t_f, rates[0]));
      for (uint32_t k = 0; k < nP; k++) P[k].g[0] = pt[k];
    }
  }
  uint64_t n_ext = nP;
  uint32_t nq = 0, pos = 0, nM = 0;
  if (v->n == 0 && nP == 0) {   /* no input in the window (CUBA: most visits, at a wake time): the free evolution only */
    int rc = integrate_to(net, pop, i, tid, p, d, s, w, &t, t1, 1, &quiet, NULL);
    if (rc) return rc;
    goto finish;
  }
  sb_input *M = NULL;
  /* Sub-windows (one frame factor, queue in time order): the window is cut into SB_SUBWIN equal
   * parts and each part's inputs are taken at once (frame_sum: no sort, no merge, no per-input
   * test) when the model proves that no crossing is possible in it; both input lists are sorted,
   * so a part is a run of each. A part that may hold a crossing goes through the ordered merge
   * (ordered_part); the parts after it are tried as sums again. The bound over a third of the window adds a
   * third of the positive input (Brunel: 1.25x faster with 3 parts than with the whole window;
   * 2 and 4 parts about the same, 8 and 16 slower; measured again with the tighter bound below:
   * 2 parts within the noise of 3, 1 part 9% slower than 2, 4 parts 2% slower than 3). A queue entry's part is
   * decided by its arrival index against the table's cuts (the table is sorted by time). */
  if (T->frame_sum && full && v->n + nP > 0 && nr == 1 && !at->unsorted) {
    const uint32_t *e = v->e, nqv = v->n;
    const float *qw = sb_evvec_w_(v);
    const double tw0 = (double)net->k * net->W;
    double g_t = 0.0;   /* frame factor of the state time, once known */
    uint32_t iq = 0, ip = 0;
    const uint32_t *cuts = arr_cuts(at, net->k, tw0, net->W);
    const double *awg = at->wg;
    for (int b = 1; b <= SB_SUBWIN; b++) {
      double cut = b == SB_SUBWIN ? INFINITY : tw0 + net->W * (double)b / SB_SUBWIN;
      const uint32_t cq = b == SB_SUBWIN ? UINT32_MAX : cuts[b - 1];
      double sw[3] = {0.0, 0.0, 0.0}, wpos = 0.0;
      const sb_input *last = NULL;
      sb_input last_q;
      uint32_t jq = iq, jp = ip;
      for (; jq < nqv; jq++) {   /* as sb_ev_in_, from the compact {w, g} pairs; the cut by index */
        const uint32_t x = e[jq], ix = x & ~SB_EV_W;
        if (ix >= cq) break;
        const double wq = x & SB_EV_W ? (double)qw[jq] : awg[2 * (size_t)ix];
        sw[0] += wq * awg[2 * (size_t)ix + 1];
        wpos += 0.5 * (wq + fabs(wq));   /* max(w, 0) exactly, without a branch */
      }
      for (; jp < nP && P[jp].t < cut; jp++) sw[0] += P[jp].w * P[jp].g[0];
      if (jq == iq && jp == ip) continue;
      double tmin = INFINITY;
      if (jq > iq) {
        last_q = sb_ev_in_(at, e, qw, jq - 1);
        last = &last_q;
        tmin = sb_ev_t_(at, e[iq]);
      }
      if (jp > ip) {
        wpos += ps->w > 0 ? (double)(jp - ip) * ps->w : 0.0;
        tmin = P[ip].t < tmin ? P[ip].t : tmin;
        if (!last || P[jp - 1].t >= last->t) last = &P[jp - 1];   /* queued first on ties */
      }
      int summed = tmin >= t && T->frame_sum(p, d, s, &t, t_f, last, sw, wpos, g_t, &quiet);
      if (!summed && tmin >= t && jq > iq) {
        /* a tighter bound on the inputs' effect (frame_sum's wpos): the largest prefix sum in time
         * order of the queued weights, each negative one at its least remaining factor within the
         * part (e^{-span rate_max}), plus the Poisson part's positive weights: half the parts that
         * fail with the sum of the positive weights pass (Brunel) */
        const double shrink = exp(-(last->t - tmin) * rmax);
        double run = 0.0, top = 0.0;
        for (uint32_t j = iq; j < jq; j++) {
          const uint32_t x = e[j];
          const double wq = x & SB_EV_W ? (double)qw[j] : awg[2 * (size_t)(x & ~SB_EV_W)];
          run += wq > 0 ? wq : wq * shrink;
          top = run > top ? run : top;
        }
        if (jp > ip) top += ps->w > 0 ? (double)(jp - ip) * ps->w : 0.0;
        if (top < wpos) summed = T->frame_sum(p, d, s, &t, t_f, last, sw, top, g_t, &quiet);
      }
      if (summed) {
        g_t = last->g[0];
      } else {   /* this part in time order; later parts may be summed again */
        double tn = t1;   /* the next input after the part */
        int more = jq < nqv || jp < nP;
        if (jq < nqv) tn = sb_ev_t_(at, e[jq]);
        if (jp < nP && P[jp].t < tn) tn = P[jp].t;
        int rc = ordered_part(net, pop, i, tid, w, at, e, qw, iq, jq, P, ip, jp, &t, t_f, more ? tn : t1, !more, &quiet);
        if (rc) return rc;
        g_t = 0.0;
      }
      iq = jq;
      ip = jp;
    }
    nq = iq;
    goto finish;
  } else if (T->frame_sum && full && v->n + nP > 0) {   /* the whole window at once */
    double sw[3] = {0.0, 0.0, 0.0}, wpos = 0.0, tmin = INFINITY, tl = -INFINITY;
    const sb_input *last = NULL;
    sb_input last_q;
    const uint32_t *e = v->e;
    const float *qw = sb_evvec_w_(v);
    if (nr == 1) {
      for (uint32_t j = 0; j < v->n; j++) {
        const sb_input a = sb_ev_in_(at, e, qw, j);
        sw[0] += a.w * a.g[0];
        wpos += 0.5 * (a.w + fabs(a.w));   /* max(w, 0) exactly, without a branch */
      }
      for (uint32_t j = 0; j < nP; j++) sw[0] += P[j].w * P[j].g[0];
    } else {
      for (uint32_t j = 0; j < v->n; j++) {
        const sb_input a = sb_ev_in_(at, e, qw, j);
        for (int r = 0; r < nr; r++) sw[r] += a.w * a.g[r];
        wpos += 0.5 * (a.w + fabs(a.w));
      }
      for (uint32_t j = 0; j < nP; j++)
        for (int r = 0; r < nr; r++) sw[r] += P[j].w * P[j].g[r];
    }
    if (v->n && !at->unsorted) {   /* the queue is in time order */
      tmin = sb_ev_t_(at, e[0]);
      last_q = sb_ev_in_(at, e, qw, v->n - 1);
      tl = last_q.t;
      last = &last_q;
    } else
      for (uint32_t j = 0; j < v->n; j++) {
        const sb_input a = sb_ev_in_(at, e, qw, j);
        tmin = a.t < tmin ? a.t : tmin;
        if (a.t >= tl) { tl = a.t; last_q = a; last = &last_q; }
      }
    if (nP) {
      wpos += ps->w > 0 ? (double)nP * ps->w : 0.0;
      tmin = P[0].t < tmin ? P[0].t : tmin;
      if (P[nP - 1].t >= tl) last = &P[nP - 1];
    }
    if (tmin >= t && T->frame_sum(p, d, s, &t, t_f, last, sw, wpos, 0.0, &quiet)) {
      nq = v->n;
      goto finish;
    }
  }
  if (order_queue(v, net->qarena[tid].wide, &net->scratch[tid], &net->scratch_cap[tid], at)) return SB_ENOMEM;
  /* merge, queued first on ties (as process_neuron), without a branch on the source: both
   * lists end in an infinite time (the Poisson list in its spare slot) */
  if (merged_reserve(net, tid, (size_t)v->n + nP + 1)) return SB_ENOMEM;
  M = net->merged[tid];
  {
    static const sb_input inf_in = {INFINITY, 0.0, {1.0, 1.0, 1.0}};
    const uint32_t *e = v->e, nqv = v->n;
    const float *qw = sb_evvec_w_(v);
    sb_input qcur = nqv ? sb_ev_in_(at, e, qw, 0) : inf_in;
    const sb_input *pp = nP ? P : &inf_in, *qa = &qcur;
    uint32_t ip = 0;
    if (nP) P[nP] = inf_in;
    for (;;) {
      double tq = qa->t, tp = pp[ip].t;
      if (tq >= t1 && tp >= t1) break;
      uint32_t fq = tq <= tp;
      const sb_input *src = fq ? qa : &pp[ip];
      if (nr == 1) {   /* the unused factors stay unset */
        M[nM].t = src->t;
        M[nM].w = src->w;
        M[nM].g[0] = src->g[0];
      } else
        M[nM] = *src;
      nq += fq;
      ip += 1 - fq;
      if (fq) qcur = nq < nqv ? sb_ev_in_(at, e, qw, nq) : inf_in;
      if (M[nM].t < t) {   /* rounded just below the state time */
        M[nM].t = t;
        for (int j = 0; j < nr; j++) M[nM].g[j] = exp((t - t_f) * rates[j]);
      }
      nM++;
    }
  }
  int rc;
  for (;;) {
    uint32_t c = 0;
    if (pos < nM) {
      c = T->run_frame(p, d, s, &t, t_f, M + pos, nM - pos, &quiet);
      pos += c;
    }
    int end = pos >= nM;
    double te = end ? t1 : M[pos].t;
    if (te < t) te = t;
    if ((rc = integrate_to(net, pop, i, tid, p, d, s, w, &t, te, end, &quiet, NULL))) return rc;
    if (end) break;
    if (c == 0) {   /* declined by run_frame: one generic input */
      T->receive(p, d, s, te, SB_RCPT_SPIKE, M[pos].w);
      pos++;
      quiet = T->safe_until ? T->safe_until(p, d, s, te) : -INFINITY;
    }
  }
finish:
  net->t_state[gid] = t;
  double wake = -INFINITY;
  if (T->safe_until) wake = quiet > t ? quiet : T->safe_until(p, d, s, t);
  size_t sp = net->stim_pos[gid];
  if (sp < net->stim_first[gid + 1] && net->stim_s[sp].t < wake) wake = net->stim_s[sp].t;
  if (pn < wake) wake = pn;
  net->t_safe[gid] = wake;
  net->t_ext[(size_t)(tid) * SB_TSTRIDE] += n_ext;
  if (full) {
    v->n = 0;
    queue_done(net, tid, slot, gid);
  }
  else if (nq) {
    memmove(v->e, v->e + nq, (v->n - nq) * sizeof *v->e);
    v->n -= nq;
  }
  /* queued events need no due time: the window scan looks at the slot's queue itself */
  net->ev_due[gid] = wake;
  return SB_OK;
}

/* ---- the window scan ----
 * A neuron is processed in a window when its slot queue is non-empty or its due (wake) time is
 * before the window's end. A busy partition (Brunel: every neuron has Poisson input) scans all
 * its neurons; a quiet one (CUBA: ~5% of the neurons per 0.1 ms window) looks only at the ids
 * appended to the slot's activation list by the pushes (queue empty -> non-empty) and at those
 * in the window's calendar bucket (entered with their due time after processing; a far list
 * beyond SB_CAL_R windows, re-bucketed every SB_CAL_R windows). Stale entries are filtered by the
 * same test as the scan and re-entered with their current due time, duplicates by a per-pass
 * stamp. The order of processing within a window does not matter (spikes are exchanged sorted
 * by (time, id)). A run starts with a scan that rebuilds the calendar (due times may have been
 * changed between runs). */
/* Enter neuron g (partition k) with due time `due` into the bucket of its window (at least kmin),
 * unless it has an entry at or before that window still to be visited; beyond SB_CAL_R windows
 * into the far list. */
static inline __attribute__((always_inline)) int cal_insert_at(sb_net *net, int k, uint32_t g, double due, uint64_t kmin,
                                                               double inv_W, uint64_t kcur) {
  if (!(due < INFINITY)) {
    net->cal_at[g] = SB_CAL_NONE;
    return SB_OK;
  }
  /* the window of due, or the one before when due lies within ~1e-9 windows of its start (rounding:
   * a visit one window early only enters the neuron again): one multiply, no exact correction
   * (this runs after every input taken at delivery) */
  double x = due * inv_W;
  x -= 1e-9 + 1e-15 * x;
  uint64_t w = kmin;
  if (x >= (double)(kcur + SB_CAL_R)) w = kcur + SB_CAL_R;
  else if (x > (double)kmin) w = (uint64_t)x;
  /* an entry still to be visited (window c >= kmin) at or before w stays: that visit finds the
   * neuron not yet due and enters it again with its due time then (CUBA: 2.6 of 6.9 million new
   * bounds after an input lay later than the neuron's entry; 1-2% faster) */
  uint32_t c = net->cal_at[g];
  int pending = c < SB_CAL_FAR && c >= (uint32_t)kmin;
  if (w - kcur >= SB_CAL_R) {
    if (c == SB_CAL_FAR || pending) return SB_OK;
    net->cal_at[g] = SB_CAL_FAR;
    return u32_push_inl(&net->far_[k], g);
  }
  if (pending && c <= (uint32_t)w) return SB_OK;
  net->cal_at[g] = (uint32_t)w;
  return u32_push_inl(&net->cal[(size_t)k * SB_CAL_R + w % SB_CAL_R], g);
}
static inline __attribute__((always_inline)) int cal_insert(sb_net *net, int k, uint32_t g, double due, uint64_t kmin) {
  return cal_insert_at(net, k, g, due, kmin, net->inv_W, net->k);
}

static inline int process_one(sb_net *net, sb_pop *pop, size_t g, int k, double t0, double t1, int full) {
  if (pop->n_rates && net->rec_first[g] == net->rec_first[g + 1] && net->pois_first[g + 1] - net->pois_first[g] <= 1 &&
      !(net->stim_pos[g] < net->stim_first[g + 1] && net->stim_s[net->stim_pos[g]].t < t1))
    return process_neuron_frame(net, pop, g - pop->first, k, t1, full);
  return process_neuron(net, pop, g - pop->first, k, t0, t1, full);
}

static int replay_queued(sb_net *net, int k, double t1);

static int process_partition(sb_net *net, int k, double t0, double t1, int full) {
  if (net->eager_any && replay_queued(net, k, t1)) return SB_ENOMEM;
  size_t lo = net->bound[k], hi = net->bound[k + 1];
  const double *due = net->ev_due;
  size_t slot = (size_t)(net->k % (uint64_t)net->S);
  const sb_evvec *q = net->ev + slot * net->n;
  sb_u32v *al = &net->act[slot * (size_t)net->threads + (size_t)k];
  uint64_t kmin = full ? net->k + 1 : net->k;
  int mode = net->pmode[(size_t)(k) * SB_TSTRIDE32], rc;
  size_t done = 0;
  if (mode != 1) {   /* scan every neuron (mode 2: and rebuild the calendar) */
    if (mode == 2) {
      for (size_t b = 0; b < SB_CAL_R; b++) net->cal[(size_t)k * SB_CAL_R + b].n = 0;
      net->far_[k].n = 0;
      for (size_t g = lo; g < hi; g++) net->cal_at[g] = SB_CAL_NONE;
    }
    for (int pi = 0; pi < net->n_pops; pi++) {
      sb_pop *pop = &net->pops[pi];
      size_t a = pop->first > lo ? pop->first : lo, b = pop->first + pop->n < hi ? pop->first + pop->n : hi;
      for (size_t g = a; g < b; g++) {
        if (g + 4 < b)   /* the queue was written a window ago */
          for (uint32_t o = 0; o < q[g + 4].n; o += 16) __builtin_prefetch(q[g + 4].e + o);
        if (t1 <= due[g] && !q[g].n) {   /* nothing happens to it in this window */
          if (mode == 2 && cal_insert(net, k, (uint32_t)g, due[g], kmin)) return SB_ENOMEM;
          continue;
        }
        if ((rc = process_one(net, pop, g, k, t0, t1, full))) return rc;
        if (mode == 2 && cal_insert(net, k, (uint32_t)g, due[g], kmin)) return SB_ENOMEM;
        done++;
      }
    }
  } else {
    uint32_t pass = ++net->pass[(size_t)(k) * SB_TSTRIDE32];
    if (net->k % SB_CAL_R == 0) {   /* far entries due within SB_CAL_R windows into their buckets */
      sb_u32v *f = &net->far_[k];
      uint32_t nf = f->n;
      f->n = 0;
      for (uint32_t j = 0; j < nf; j++) {   /* in place: at most one append per entry read */
        uint32_t g = f->a[j];
        if (net->cal_at[g] != SB_CAL_FAR) continue;   /* stale */
        net->cal_at[g] = SB_CAL_NONE;
        /* at least the current window, not kmin: an entry made SB_CAL_R windows ago can be due in
         * this one (it ran one window late, its spike out of order, with kmin = k + 1) */
        if (cal_insert(net, k, g, due[g], net->k)) return SB_ENOMEM;
      }
    }
    sb_u32v *bk = &net->cal[(size_t)k * SB_CAL_R + net->k % SB_CAL_R], tmp = *bk;
    *bk = net->cand[k];   /* take the bucket; insertions for this window go to a fresh one */
    bk->n = 0;
    net->cand[k] = tmp;
    const sb_u32v *c = &net->cand[k];
    uint32_t na = al->n, nt = na + c->n;
    for (uint32_t j = 0; j < nt; j++) {
      uint32_t g = j < na ? al->a[j] : c->a[j - na];
      if (j + 4 < nt) {   /* the neuron four entries on: its state and queue are likely not in cache */
        uint32_t h = j + 4 < na ? al->a[j + 4] : c->a[j + 4 - na];
        const sb_pop *hp = &net->pops[sb_pop_of_(net, h)];
        __builtin_prefetch(hp->state + (h - hp->first) * hp->type->state_size);
        __builtin_prefetch(&q[h]);
        __builtin_prefetch(&net->t_state[h]);
        __builtin_prefetch(&due[h]);
      }
      if (net->stamp[g] == pass) continue;
      net->stamp[g] = pass;
      if (j >= na && net->cal_at[g] != (uint32_t)net->k) continue;   /* stale: entered elsewhere since */
      if (net->cal_at[g] == (uint32_t)net->k) net->cal_at[g] = SB_CAL_NONE;   /* the entry is consumed */
      if (!(t1 <= due[g] && !q[g].n)) {
        sb_pop *pop = &net->pops[sb_pop_of_(net, g)];
        if ((rc = process_one(net, pop, g, k, t0, t1, full))) return rc;
        done++;
      }
      if (cal_insert(net, k, g, due[g], kmin)) return SB_ENOMEM;
    }
  }
  if (full) al->n = 0;   /* every queue of the slot is empty now */
  size_t nk = hi - lo;
  net->pmode[(size_t)(k) * SB_TSTRIDE32] = mode == 1 ? (done > nk / 8 ? 0 : 1) : mode == 0 ? (done < nk / 16 ? 2 : 0) : (done > nk / 8 ? 0 : 1);
  return SB_OK;
}

/* ---- delivery ---- */

/* An event with its own arrival entry (per-synapse delay, plastic weight, dense or conv layer), for neuron gid of partition k. */
static inline int push(sb_net *net, int k, size_t gid, double t, double w, const sb_pop *tp) {
  flat_flush(net, k);
  uint64_t b = sb_bin_(net, t);
  size_t sl = (size_t)(b % (uint64_t)net->S);
  uint32_t idx;
  sb_arr x = frame_arr(net, tp, t, w, b);
  if (arr_add(&net->arr[sl * (size_t)net->threads + (size_t)k], &x, &idx)) return SB_ENOMEM;
  sb_evvec *v = &net->ev[sl * net->n + gid];
  if (!v->n && u32_push(&net->act[sl * (size_t)net->threads + (size_t)k], (uint32_t)gid)) return SB_ENOMEM;
  return ev_push(&net->qarena[k], v, idx);
}

int sb_ev_push_k_(sb_net *net, int k, size_t gid, double t, double w, const sb_pop *tp) { return push(net, k, gid, t, w, tp); }

/* ---- inputs at delivery ----
 * A quiet target takes an arrival at once, when its partition delivers it, instead of queueing it
 * for the next window: its state moves to the arrival time through the model's take_input (or
 * run_frame on one input: the fast path's exact step) and its wake time is recomputed. Valid because nothing else can happen to the
 * neuron before the arrival: its slot queue is empty (no earlier queued input), it has no
 * recordings, Poisson or static stimuli, its wake time (t_safe, the model's bound: no crossing, no
 * refractory end before it) is not before the arrival, and the arrival lies in the next window
 * (no queue of an earlier window). Arrivals of one delivery reach a target in time order, because
 * spikes are delivered sorted by time and every projection into an eager population has the same
 * constant delay (sb_net_run decides eagerness per population: a frame-path model, only sparse
 * static projections with that delay). Arrivals up to t_stop only, so that states after a run
 * refer to t_stop (a checkpoint written between windows may hold states up to one window ahead of
 * the current time, and restores them as they are).
 * CUBA: 97% of the synaptic events (the run summary's share), each costing one step instead of a queue
 * push, an activation-list entry and a visit in the next window. The decisions depend on the
 * neuron's own state and on the (time, id) delivery order only: thread invariant. Returns 1 when
 * taken, 0 when the caller must queue the arrival, -1 out of memory. */
static inline __attribute__((always_inline)) int eager_input(sb_net *net, const sb_pop *tp, int k, uint32_t g, const sb_arr *x,
                                                             const double ig[3], double t_f, int psc_exp) {
  const sb_neuron_type *T = tp->type;
  void *s = tp->state + (g - tp->first) * T->state_size;
  double t = net->t_state[g], quiet = net->t_safe[g];
  /* psc_exp: iaf_psc_exp's step inline (the loop is compiled for it separately) */
  if (!(psc_exp && sb_psc_exp_take_input(tp->params, tp->derived, s, &t, t_f, NULL, x, ig, &quiet)) &&
      (T->take_input ? !T->take_input(tp->params, tp->derived, s, &t, t_f, x, ig, &quiet)
                     : T->run_frame(tp->params, tp->derived, s, &t, t_f, x, 1, &quiet) != 1))
    return 0;
  if (!(quiet > t)) quiet = T->safe_until ? T->safe_until(tp->params, tp->derived, s, t) : -INFINITY;
  net->t_state[g] = t;
  net->t_safe[g] = quiet;
  net->ev_due[g] = quiet;
  net->t_eager[(size_t)k * SB_TSTRIDE]++;
  if (net->pmode[(size_t)(k) * SB_TSTRIDE32] == 1 && cal_insert(net, k, g, quiet, net->k)) return -1;   /* the next window's lists */
  return 1;
}

/* Population-level eagerness (see "inputs at delivery") and the per-neuron flags, at each run. */
static void eager_setup(sb_net *net) {
  net->eager_any = 0;
  for (int i = 0; i < net->n_pops; i++) {
    sb_pop *p = &net->pops[i];
    int ok = p->n_rates > 0 && !net->eager_off, any = 0;
    double d = NAN;
    for (int j = 0; j < net->n_projs && ok; j++) {
      const sb_proj *pr = &net->projs[j];
      if (pr->tgt != i) continue;
      any = 1;
      if (pr->kind != SB_PROJ_SPARSE) ok = 0;
      for (int k = net->p_lo; k < net->p_hi && ok; k++)
        if (pr->part[k].d) ok = 0;
      if (isnan(d)) d = pr->d_const;
      else if (!(d == pr->d_const)) ok = 0;
    }
    p->eager = ok && any;
    if (!p->eager) {
      memset(net->eager_ok + p->first, 0, p->n);
      continue;
    }
    size_t n_ok = 0;
    for (size_t j = 0; j < p->n; j++) {
      size_t g = p->first + j;
      net->eager_ok[g] = net->rec_first[g] == net->rec_first[g + 1] && net->pois_first[g] == net->pois_first[g + 1] &&
                         net->stim_first[g] == net->stim_first[g + 1];
      n_ok += net->eager_ok[g];
    }
    if (!n_ok) p->eager = 0;   /* no neuron may take inputs at delivery (Brunel: Poisson input): the queue-only loop */
    net->eager_any |= p->eager;
  }
}

/* The epoch carry of sb_psc_exp_frame_factors for partition k and population tp in the epoch of
 * window bb (origin t_f): {the previous origin, three factors}; kept per partition and population
 * as {the origin it is for, the previous origin, three factors}. */
static inline const double *epoch_carry(sb_net *net, int k, const sb_pop *tp, uint64_t bb, double t_f) {
  double *ec = net->ep_carry + ((size_t)k * (size_t)net->n_pops + (size_t)(tp - net->pops)) * 5;
  if (ec[0] != t_f) {
    double prev = bb >= tp->frame_m ? frame_origin(net, tp, bb - tp->frame_m) : -INFINITY;
    ec[0] = t_f;
    ec[1] = prev;
    for (int j = 0; j < 3; j++) ec[2 + j] = exp(-(t_f - prev) * tp->rates[j]);
  }
  return ec + 1;
}

/* Inputs at delivery into tp go through deliver_row_exp's step: iaf_psc_exp, not singular. */
static inline int exp_rows(const sb_pop *tp) {
  return tp->type == sb_neuron_iaf_psc_exp && !((const sb_psc_exp_der *)tp->derived)->sing[0] &&
         !((const sb_psc_exp_der *)tp->derived)->sing[1];
}

/* One input x at delivery into iaf_psc_exp neuron l of a population (state st, time *ts, bound
 * *tsf, due time *due; global id g of partition k): sb_psc_exp_take_input with the epoch carry,
 * then the bound and the calendar entry (calm: the partition uses lists; kcur the next window).
 * Returns 1 when taken, 0 when declined (beyond the bound, or take_input's refusal), -1 when out
 * of memory. Shared by deliver_row_exp and replay_queued so that both make the same decisions
 * with the same arithmetic. */
static inline __attribute__((always_inline)) int exp_step(sb_net *net, int k, uint32_t g, const sb_psc_exp_par *P,
                                                          const sb_psc_exp_der *D, sb_psc_exp_st *st, double *ts,
                                                          double *tsf, double *due, const sb_arr *x, const double ig[3],
                                                          double t_f, const double *carry, int calm, double inv_W,
                                                          uint64_t kcur) {
  double t = *ts, quiet = *tsf, q0 = quiet;
  if (!(x->t <= quiet && sb_psc_exp_take_input(P, D, st, &t, t_f, carry, x, ig, &quiet))) return 0;
  *ts = t;
  if (quiet != q0) {   /* an inhibitory input keeps the bound */
    *tsf = quiet;
    *due = quiet;
    if (calm && cal_insert_at(net, k, g, quiet, kcur, inv_W, kcur)) return -1;
  }
  return 1;
}

/* deliver_row's loop for iaf_psc_exp targets when the row may be taken at delivery (CUBA): the
 * decisions and arithmetic of eager_input and sb_psc_exp_take_input, with the parameters, arrays
 * and counters held in locals (the generic loop reloads them from memory after every store, which
 * might alias them: about 230 instructions per event). Arguments as deliver_row's, plus the
 * shared arrival x, its reciprocal frame factors ig and the frame origin t_f. */
static inline __attribute__((always_inline)) int deliver_row_exp(sb_net *net, int k, const sb_pop *tp, size_t tf,
                                                                 const uint32_t *tg32, const uint16_t *tg16, const float *cw,
                                                                 uint32_t a, uint32_t e, sb_arr x, const double ig[3],
                                                                 uint64_t bb, double t_f, sb_arrtab *tab, sb_evvec *base,
                                                                 sb_u32v *al) {
  const sb_psc_exp_par P = *(const sb_psc_exp_par *)tp->params;
  const sb_psc_exp_der D = *(const sb_psc_exp_der *)tp->derived;
  sb_psc_exp_st *st = (sb_psc_exp_st *)tp->state;   /* type checked by the caller: state_size is sizeof *st */
  double *restrict tst = net->t_state + tf, *restrict tsf = net->t_safe + tf, *restrict due = net->ev_due + tf;
  flat_flush(net, k);
  const uint8_t *eok = net->eager_ok + tf;
  sb_arena *qa = &net->qarena[k];
  const int calm = net->pmode[(size_t)(k) * SB_TSTRIDE32] == 1;
  const double inv_W = net->inv_W, igl[3] = {ig[0], ig[1], ig[2]};
  const uint64_t kcur = net->k;
  /* the epoch carry of sb_psc_exp_frame_factors, per thread and population: a state whose factors
   * were cached in the previous epoch enters this one with three multiplies instead of three exps
   * (CUBA: every neuron once per 40 ms epoch, most of the exps at delivery) */
  const double *carry = epoch_carry(net, k, tp, bb, t_f);
  uint64_t n_eager = 0;
  uint32_t idx = 0;
  int have = 0, rc = SB_OK;
  for (uint32_t y = a; y < e; y++) {
    uint32_t l = tg16 ? tg16[y] : tg32[y];
    sb_evvec *v = &base[l];
    if (!v->n && eok[l]) {
      if (cw) x.w = (double)cw[y];
      int r = exp_step(net, k, (uint32_t)(tf + l), &P, &D, st + l, tst + l, tsf + l, due + l, &x, igl, t_f, carry, calm,
                       inv_W, kcur);
      if (r < 0) {
        rc = SB_ENOMEM;
        break;
      }
      if (r) {
        n_eager++;
        continue;
      }
    }
    if (!have && arr_add(tab, &x, &idx)) {   /* the shared arrival, once */
      rc = SB_ENOMEM;
      break;
    }
    have = 1;
    if ((!v->n && u32_push(al, (uint32_t)(tf + l))) || (cw ? ev_push_w(qa, v, idx, cw[y]) : ev_push(qa, v, idx))) {
      rc = SB_ENOMEM;
      break;
    }
  }
  net->t_eager[(size_t)k * SB_TSTRIDE] += n_eager;
  return rc;
}

/* One source spike's row [a, e) of a sparse projection (partition k) with a constant delay into
 * tp (first neuron tf): arrival ta ms, weight w_const, or per synapse cw[] when cw is set (then one
 * shared arrival, and each queued target's entry carries its weight: ev_push_w). Inputs are taken at once where
 * possible (see "inputs at delivery"), else queued: iaf_psc_exp rows in deliver_row_exp, rows that
 * cannot be taken at delivery in a loop that only queues (the three loops' queueing lines are
 * written out: one always_inline helper for them, with the row's arrival index and flag passed by
 * address, made CUBA 12% and Brunel 15% slower). Exactly one of tg32 and tg16 is set (the
 * targets); deliver_partition inlines this at four call sites with constant NULLs, so each index
 * width and weight kind gets its own loop. */
static inline __attribute__((always_inline)) int deliver_row(sb_net *net, int k, const sb_pop *tp, size_t tf,
                                                             const uint32_t *tg32, const uint16_t *tg16, const float *cw,
                                                             uint32_t a, uint32_t e, double ta, double w_const) {
  uint64_t bb = sb_bin_(net, ta);
  size_t sl = (size_t)(bb % (uint64_t)net->S);
  sb_arr x = frame_arr(net, tp, ta, w_const, bb);
  sb_arrtab *tab = &net->arr[sl * (size_t)net->threads + (size_t)k];
  sb_evvec *base = &net->ev[sl * net->n + tf];
  sb_arena *qa = &net->qarena[k];
  sb_u32v *al = &net->act[sl * (size_t)net->threads + (size_t)k];
  uint32_t idx = 0;
  int eager = tp->eager && bb == net->k && ta < net->w_t1, rc, have = 0;
  double t_f = eager ? frame_origin(net, tp, bb) : 0.0, ig[3] = {1.0, 1.0, 1.0};
  for (int r = 0; eager && r < tp->n_rates; r++) ig[r] = 1.0 / x.g[r];
  if (eager && exp_rows(tp)) {
    flat_flush(net, k);
    return deliver_row_exp(net, k, tp, tf, tg32, tg16, cw, a, e, x, ig, bb, t_f, tab, base, al);
  }
  if (!eager) {   /* every event queued (Brunel): the loop without the per-event test */
    if (a < e && arr_add(tab, &x, &idx)) return SB_ENOMEM;   /* the shared arrival */
    if (!cw) qa->elig += e - a;
    uint16_t *cnt = !cw && qa->flat ? flat_mirror(net, k, sl) : NULL;
    if (cnt) {   /* home blocks: lengths in the mirror, entries at computed addresses */
      cnt += tf;
      const size_t st = qa->fstride, o = tf - qa->g0;
      const uint32_t C = qa->fcap;
      uint32_t *fb = qa->flat;
      for (uint32_t y = a; y < e; y++) {
        uint32_t l = tg16 ? tg16[y] : tg32[y];
        uint32_t c = cnt[l];
        if (__builtin_expect(c < C, 1)) {
          if (!c && u32_push(al, (uint32_t)(tf + l))) return SB_ENOMEM;
          fb[(o + l) * st + c] = idx;
          cnt[l] = (uint16_t)(c + 1);
        } else {   /* a full home block (the queue moves into the arena) or none in this slot */
          sb_evvec *v = &base[l];
          if (c == C) {
            v->n = C;
            cnt[l] = 0xFFFF;
          }
          if ((!v->n && u32_push(al, (uint32_t)(tf + l))) || ev_push(qa, v, idx)) return SB_ENOMEM;
        }
      }
      return SB_OK;
    }
    flat_flush(net, k);
    for (uint32_t y = a; y < e; y++) {
      uint32_t l = tg16 ? tg16[y] : tg32[y];
      sb_evvec *v = &base[l];
      if ((!v->n && u32_push(al, (uint32_t)(tf + l))) || (cw ? ev_push_w(qa, v, idx, cw[y]) : ev_push(qa, v, idx)))
        return SB_ENOMEM;
    }
    return SB_OK;
  }
  flat_flush(net, k);
  const uint8_t *eok = net->eager_ok + tf;
  const int psc_exp = tp->type == sb_neuron_iaf_psc_exp;
  const double *tsafe = net->t_safe + tf;
  for (uint32_t y = a; y < e; y++) {
    uint32_t l = tg16 ? tg16[y] : tg32[y];
    sb_evvec *v = &base[l];
    if (!v->n && eok[l] && ta <= tsafe[l]) {
      if (cw) x.w = (double)cw[y];
      rc = psc_exp ? eager_input(net, tp, k, (uint32_t)(tf + l), &x, ig, t_f, 1)
                   : eager_input(net, tp, k, (uint32_t)(tf + l), &x, ig, t_f, 0);
      if (rc > 0) continue;
      if (rc < 0) return SB_ENOMEM;
    }
    if (!have && arr_add(tab, &x, &idx)) return SB_ENOMEM;   /* the shared arrival, once */
    have = 1;
    if ((!v->n && u32_push(al, (uint32_t)(tf + l))) || (cw ? ev_push_w(qa, v, idx, cw[y]) : ev_push(qa, v, idx))) return SB_ENOMEM;
  }
  return SB_OK;
}

/* Queued entries of the window about to be processed (slot of window net->k, partition k) that
 * the delivery would have taken at once had they been delivered now: those queued because they
 * lay at or after the t_stop of the run that delivered them (its states must refer to its t_stop),
 * including those restored from a checkpoint written then, or because they were delivered before
 * their window was the next one (a delay longer than the window, a run ending inside a window).
 * Each neuron's entries are offered in queue (= delivery) order with deliver_row's decisions and
 * arithmetic (deliver_row_exp's for iaf_psc_exp) until one is declined, so that a run resumed
 * from a checkpoint takes the same inputs at delivery as one run: bit-identical spikes (a run
 * continued through the API still differs in the last bits: every neuron is advanced to each
 * run's t_stop). Entries taken leave the queue. Returns SB_OK or SB_ENOMEM. */
static int replay_queued(sb_net *net, int k, double t1) {
  size_t slot = (size_t)(net->k % (uint64_t)net->S);
  const sb_u32v *al = &net->act[slot * (size_t)net->threads + (size_t)k];
  const sb_arrtab *tab = &net->arr[slot * (size_t)net->threads + (size_t)k];
  const int calm = net->pmode[(size_t)(k) * SB_TSTRIDE32] == 1;
  for (uint32_t j = 0; j < al->n; j++) {
    uint32_t g = al->a[j];
    sb_evvec *v = &net->ev[slot * net->n + g];
    if (!v->n || !net->eager_ok[g]) continue;   /* eager_ok: 0 outside eager populations */
    const sb_pop *tp = &net->pops[sb_pop_of_(net, g)];
    const int exp_row = exp_rows(tp);
    const double t_f = frame_origin(net, tp, net->k);
    const double *carry = exp_row ? epoch_carry(net, k, tp, net->k, t_f) : NULL;
    const float *qw = sb_evvec_w_(v);
    uint32_t m = 0;
    for (; m < v->n; m++) {
      sb_arr x = sb_ev_in_(tab, v->e, qw, m);
      if (!(x.t < t1)) break;
      double ig[3] = {1.0, 1.0, 1.0};
      for (int r = 0; r < tp->n_rates; r++) ig[r] = 1.0 / x.g[r];
      if (exp_row) {   /* as deliver_row_exp */
        int r = exp_step(net, k, g, (const sb_psc_exp_par *)tp->params, (const sb_psc_exp_der *)tp->derived,
                         (sb_psc_exp_st *)tp->state + (g - tp->first), net->t_state + g,
                         net->t_safe + g, net->ev_due + g, &x, ig, t_f, carry, calm, net->inv_W, net->k);
        if (r < 0) return SB_ENOMEM;
        if (!r) break;
        net->t_eager[(size_t)k * SB_TSTRIDE]++;
      } else {   /* as deliver_row's generic loop */
        if (!(x.t <= net->t_safe[g])) break;
        int rc = eager_input(net, tp, k, g, &x, ig, t_f, tp->type == sb_neuron_iaf_psc_exp);
        if (rc < 0) return SB_ENOMEM;
        if (!rc) break;
      }
    }
    if (m) {
      memmove(v->e, v->e + m, (v->n - m) * sizeof *v->e);
      if (net->qarena[k].wide) memmove(sb_evvec_w_(v), qw + m, (v->n - m) * sizeof *qw);
      v->n -= m;
    }
  }
  return SB_OK;
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
            int rc = c->tgt16 ? (c->w ? deliver_row(net, k, tp, tf, NULL, c->tgt16, c->w, a, e, ta, pr->w_const)
                                      : deliver_row(net, k, tp, tf, NULL, c->tgt16, NULL, a, e, ta, pr->w_const))
                              : (c->w ? deliver_row(net, k, tp, tf, c->tgt, NULL, c->w, a, e, ta, pr->w_const)
                                      : deliver_row(net, k, tp, tf, c->tgt, NULL, NULL, a, e, ta, pr->w_const));
            if (rc) return rc;
          } else {
            for (uint32_t x = a; x < e; x++)
              if (push(net, k, tf + sb_csr_tgt_(c, x), ts + (double)c->d[x], c->w ? (double)c->w[x] : pr->w_const, tp))
                return SB_ENOMEM;
          }
          break;
        }
        case SB_PROJ_DENSE: {
          double ta = ts + pr->d_const;
          const float *row = pr->wt + j * tp->n;
          for (size_t x = tlo; x < thi; x++)
            if (row[x] != 0.0f) {
              nev++;
              if (push(net, k, tf + x, ta, (double)row[x], tp)) return SB_ENOMEM;
            }
          break;
        }
        case SB_PROJ_ONE_TO_ONE:
          if (j >= tlo && j < thi) {
            nev++;
            if (push(net, k, tf + j, ts + (pr->d1 ? (double)pr->d1[j] : pr->d_const), pr->wt ? (double)pr->wt[j] : pr->w_const,
                     tp))
              return SB_ENOMEM;
          }
          break;
        case SB_PROJ_PLASTIC:
          flat_flush(net, k);
          if (sb_plastic_deliver_(net, pr, k, j, ts, &nev)) return SB_ENOMEM;
          break;
        case SB_PROJ_CONV: {
          const sb_net_conv_shape *cs = &pr->cs;
          int c = (int)(j / (size_t)(cs->H * cs->W)), y = (int)(j / (size_t)cs->W % (size_t)cs->H), xx = (int)(j % (size_t)cs->W);
          double ta = ts + pr->d_const;
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
                if (push(net, k, tf + t, ta, (double)wv, tp)) return SB_ENOMEM;
              }
            }
          }
          break;
        }
      }
    }
  }
  net->t_events[(size_t)(k) * SB_TSTRIDE] += nev;
  flat_flush(net, k);
  net->qarena[k].loads = 0;
  uint64_t elig = net->qarena[k].elig;
  net->qarena[k].elig = 0;
  if (flat_enable(net, k, elig)) return SB_ENOMEM;
  if (net->n_plastic) {
    sb_plastic_snapshots_(net, k, net->t);
    sb_plastic_window_end_(net, k);
  }
  return SB_OK;
}

/* ---- a barrier that spins for a while, then sleeps ----
 * OpenMP's barriers spin (OMP_WAIT_POLICY=active by default) for up to ~0.3 s: on cores shared
 * with other jobs a spinning thread takes the core its partner needs, and 2 threads ran 6x slower
 * than 1. Sleeping at once is no better for short windows: a futex wake-up takes 20-50 us in this
 * VM, and CUBA's 0.1 ms windows need 20000 barriers per simulated second (2 threads were 3x slower
 * than 1 with a 2 us spin). So arrival is lock-free, a waiting thread spins up to SB_SPIN_NS
 * (50 us, a few windows' worth of imbalance) and only then sleeps on a condition variable; the
 * last thread takes the mutex only when someone sleeps. */
#define SB_SPIN_NS 50000
typedef struct {
  pthread_mutex_t m;
  pthread_cond_t c;
  int n;
  _Atomic int count, sleepers;
  _Atomic unsigned gen;
} sb_barrier;

static void barrier_init(sb_barrier *b, int n) {
  pthread_mutex_init(&b->m, NULL);
  pthread_cond_init(&b->c, NULL);
  b->n = n;
  atomic_store(&b->count, 0);
  atomic_store(&b->sleepers, 0);
  atomic_store(&b->gen, 0u);
}

static void barrier_destroy(sb_barrier *b) {
  pthread_mutex_destroy(&b->m);
  pthread_cond_destroy(&b->c);
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

static inline int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Returns 1 in exactly one thread (the last to arrive), 0 in the others; the last thread runs
 * serial(arg) (if not NULL) before it releases the others, so the serial part needs no second
 * barrier. The generation is read
 * before arriving, so a thread cannot mistake the previous barrier's release for this one's; the
 * release (store gen, then load sleepers) and the sleep (add to sleepers, then load gen) are
 * sequentially consistent, so one of the two sides sees the other and no wake-up is lost. */
static int barrier_wait_do(sb_barrier *b, void (*serial)(void *), void *arg) {
  unsigned g = atomic_load(&b->gen);
  if (atomic_fetch_add(&b->count, 1) == b->n - 1) {
    if (serial) serial(arg);   /* every other thread is waiting */
    atomic_store(&b->count, 0);
    atomic_store(&b->gen, g + 1);
    if (atomic_load(&b->sleepers)) {
      pthread_mutex_lock(&b->m);
      pthread_cond_broadcast(&b->c);
      pthread_mutex_unlock(&b->m);
    }
    return 1;
  }
  int64_t start = 0;
  for (unsigned i = 1;; i++) {
    if (atomic_load_explicit(&b->gen, memory_order_acquire) != g) return 0;
    cpu_relax();
    if ((i & 63) == 0) {
      int64_t t = now_ns();
      if (!start) start = t;
      else if (t - start > SB_SPIN_NS) break;
      /* after the first ~2 us, let a thread that shares this core run (more threads than free
       * cores: the one we wait for may be queued behind us); returns at once when none is */
      if (t - start > 2000) sched_yield();
    }
  }
  pthread_mutex_lock(&b->m);
  atomic_fetch_add(&b->sleepers, 1);
  while (atomic_load(&b->gen) == g) pthread_cond_wait(&b->c, &b->m);
  atomic_fetch_sub(&b->sleepers, 1);
  pthread_mutex_unlock(&b->m);
  return 0;
}

static int barrier_wait(sb_barrier *b) { return barrier_wait_do(b, NULL, NULL); }

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
  for (int k = 0; k < net->threads; k++) total += net->tsp_n[(size_t)(k) * SB_TSTRIDE];
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
    size_t nk = net->tsp_n[(size_t)(k) * SB_TSTRIDE];
    if (nk) memcpy(net->gsp + net->gsp_n, net->tsp[k], nk * sizeof *net->gsp);
    net->gsp_n += nk;
    net->tsp_n[(size_t)(k) * SB_TSTRIDE] = 0;
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
  /* flush every flush_interval, and sooner when the state samples held exceed 64 MB (0.001 ms
   * sampling of CUBA's 3200 neurons: 13 MB per simulated ms). Rows not yet merged: the same on
   * every MPI rank (the flush is collective). */
  double held = 0;
  for (int i = 0; i < net->n_recs; i++)
    held += (double)(net->recs[i].mem_rows - net->recs[i].mem_merged) * (double)net->recs[i].n * sizeof(float);
  if (net->t >= net->next_flush || held > 64e6) {
    if (net->t >= net->next_flush) net->next_flush += net->flush_interval;
    if ((rc = sb_rec_flush_(net, 0))) thread_error(net, rc);
  }
  if (net->progress) net->progress(net->progress_ctx, net->t, t_stop, net->spikes_total);
  if (net->err || net->t >= t_stop) net->done = 1;
  /* the hook's barriers only in windows it asks for (2 barriers per window instead of 4) */
  net->hook_now = net->hook && (!net->hook_due || net->hook_due(net->hook_ctx, net->t));
  net->w_t0 = net->t;
  double e = (double)(net->k + 1) * net->W;
  net->w_t1 = e < t_stop ? e : t_stop;
}

typedef struct { sb_net *net; double t_stop; } bw_arg;
static void between_windows_cb(void *a) { between_windows(((bw_arg *)a)->net, ((bw_arg *)a)->t_stop); }

int sb_net_time_limit(sb_net *net, double *t_max) {
  int rc;
  if (!net->prepared && (rc = sb_net_prepare_(net))) return rc;
  *t_max = (4294967296.0 - (SB_CAL_R + 2)) * net->W;   /* cal_at: window numbers below SB_CAL_FAR */
  return SB_OK;
}

int sb_net_run(sb_net *net, double t_stop) {
  int rc;
  if (t_stop < net->t && t_stop >= net->t - 1e-9 * (1.0 + fabs(net->t))) t_stop = net->t;   /* 614.4 vs 6144 x 0.1 */
  if (!(t_stop >= net->t) || !isfinite(t_stop))
    SB_ERROR(SB_EINVAL, "t_stop: must be finite and >= the current time %g ms (got %g)", net->t, t_stop);
  double t_max;
  if ((rc = sb_net_time_limit(net, &t_max))) return rc;
  if (t_stop > t_max)
    SB_ERROR(SB_EINVAL, "t_stop: %g ms is beyond the engine's limit of %.6g ms (2^32 windows of %g ms)", t_stop, t_max, net->W);
  if (t_stop == net->t) return SB_OK;
  if (net->n_plastic && (rc = sb_plastic_run_start_(net, t_stop))) return rc;
  for (int i = 0; i < net->n_pops; i++) {   /* parameters changed since the queued frame factors: no fast path */
    sb_pop *p = &net->pops[i];
    double r[3];
    int nr = p->type->run_frame && p->pstride == 0 ? p->type->frame_rates(p->params, r) : 0;
    for (int j = 0; j < nr && nr == p->n_rates; j++)
      if (!(r[j] == p->rates[j])) nr = 0;
    if (nr != p->n_rates) p->n_rates = 0;
  }
  for (int k = 0; k < net->threads; k++)   /* due times may have changed between runs */
    if (net->pmode[(size_t)(k) * SB_TSTRIDE32] == 1) net->pmode[(size_t)(k) * SB_TSTRIDE32] = 2;
  eager_setup(net);
  if (net->smp_t)   /* states may have been set between runs */
    for (size_t j = 0; j <= net->rec_first[net->n]; j++) net->smp_t[j] = NAN;
  net->err = 0;
  net->done = 0;
  net->stopped = 0;
  net->w_t0 = net->t;
  double e = (double)(net->k + 1) * net->W;
  net->w_t1 = e < t_stop ? e : t_stop;
  sb_barrier bar;
  bw_arg bw = {net, t_stop};
#pragma omp parallel num_threads(net->p_hi - net->p_lo)
  {
#ifdef _OPENMP
    int tid = omp_get_thread_num(), nth = omp_get_num_threads();
#else
    int tid = 0, nth = 1;
#endif
    sb_h5_quiet_thread();   /* the thread that arrives last writes recordings and checkpoints */
#pragma omp single
    barrier_init(&bar, nth);
    while (!net->done) {
      double t0 = net->w_t0, t1 = net->w_t1;
      int full = t1 >= (double)(net->k + 1) * net->W;
      for (int k = net->p_lo + tid; k < net->p_hi; k += nth) {
        int r = process_partition(net, k, t0, t1, full);
        if (r) thread_error(net, r);
        if (full) {   /* slot consumed */
          sb_arrtab *a = &net->arr[(size_t)(net->k % (uint64_t)net->S) * (size_t)net->threads + (size_t)k];
          a->n = 0;
          a->unsorted = 0;
          a->cut_n = UINT32_MAX;
        }
      }
      /* the last thread to arrive gathers the window's spikes while the others wait: one
       * synchronisation per window */
      barrier_wait_do(&bar, between_windows_cb, &bw);
      for (int k = net->p_lo + tid; k < net->p_hi; k += nth) {
        int r = deliver_partition(net, k);
        if (r) thread_error(net, r);
      }
      /* Without a hook no barrier is needed here: a thread only touches its own partitions'
       * queues until the barrier after the next window's processing, and between_windows
       * rewrites the shared spike list only after every thread has arrived there. */
      if (net->hook_now) {   /* a consistent state between windows: checkpoints (sim/checkpoint.c) */
        if (barrier_wait(&bar)) {
          int stop = 0;
          if (!net->done) {
            int r = net->hook(net->hook_ctx, net, &stop);
            if (r) thread_error(net, r);
          }
          if (stop || net->err) net->done = 1;
          net->stopped = stop;
        }
        barrier_wait(&bar);
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
  barrier_destroy(&bar);
  if (net->err) SB_ERROR(net->err, "%s", net->err_msg);
  return sb_net_check_finite_(net, "");   /* NaN never crosses a threshold: silent otherwise */
}

int sb_net_check_finite_(const sb_net *net, const char *more) {
  int pi, v;
  size_t j;
  double x;
  if (sb_net_first_nonfinite_(net, &pi, &j, &v, &x))
    SB_ERROR(SB_ENOCONV, "%s: neuron %zu at t = %g ms: %s = %g: the state is no longer finite (weights or inputs too large "
             "for %s)%s", net->pops[pi].name, j, net->t, net->pops[pi].type->recordables[v].name, x, net->pops[pi].type->name,
             more);
  return SB_OK;
}

int sb_net_first_nonfinite_(const sb_net *net, int *pop, size_t *j, int *var, double *x) {
  for (int i = 0; i < net->n_pops; i++) {
    const sb_pop *p = &net->pops[i];
    const sb_neuron_type *T = p->type;
    for (size_t k = 0; k < p->n; k++)
      for (int r = 0; T->recordables[r].name; r++) {
        double y;
        memcpy(&y, p->state + k * T->state_size + T->recordables[r].offset, sizeof y);
        if (!isfinite(y)) {
          *pop = i, *j = k, *var = r, *x = y;
          return 1;
        }
      }
  }
  return 0;
}

int sb_net_reset(sb_net *net) {
  if (!net->prepared) return SB_OK;
  if (net->n_plastic) sb_plastic_reset_(net);
  for (size_t i = 0; i < (size_t)net->S * net->n; i++) net->ev[i].n = 0;
  for (size_t i = 0; i < (size_t)net->S * (size_t)net->threads; i++)
    net->arr[i].n = 0, net->arr[i].unsorted = 0, net->arr[i].cut_n = UINT32_MAX, net->act[i].n = 0;
  for (int k = 0; k < net->threads; k++) net->pmode[(size_t)(k) * SB_TSTRIDE32] = 2;
  for (size_t g = 0; g < net->n; g++) net->stim_pos[g] = net->stim_first[g];
  memset(net->count, 0, net->n * sizeof *net->count);
  memset(net->t_state, 0, net->n * sizeof *net->t_state);
  for (size_t g = 0; g < net->n; g++) net->t_safe[g] = -INFINITY;
  for (size_t g = 0; g < net->n; g++) net->ev_due[g] = -INFINITY;
  memset(net->last, 0, net->n * sizeof *net->last);
  memset(net->isi_sum, 0, net->n * sizeof *net->isi_sum);
  memset(net->isi_sq, 0, net->n * sizeof *net->isi_sq);
  memset(net->t_events, 0, (size_t)net->threads * SB_TSTRIDE * sizeof *net->t_events);
  memset(net->t_ext, 0, (size_t)net->threads * SB_TSTRIDE * sizeof *net->t_ext);
  memset(net->t_eager, 0, (size_t)net->threads * SB_TSTRIDE * sizeof *net->t_eager);
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
