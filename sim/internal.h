/* Engine internals shared by sim/net.c (construction), sim/run.c (event loop), sim/record.c
 * (recording) and sim/model.c (JSON). Never included outside sim/. */
#ifndef SB_SIM_INTERNAL_H
#define SB_SIM_INTERNAL_H

#include "sim/sim.h"

#include <hdf5.h>
#include <jansson.h>

/* An arrival: exact time (ms) and weight. One entry serves every target of a source spike
 * through a projection with a constant delay (per-synapse weights: the queue entry carries its
 * synapse's weight, SB_EV_W; per-synapse delays: one entry per event). */
typedef sb_input sb_arr;   /* t, w, g[3]: frame factors for the target population (neurons/neurons.h) */
/* The arrivals of one (window slot, partition): appended by the partition's own delivery, emptied
 * when the partition has processed the slot's window (grown, never shrunk). */
/* Per-(slot, partition) and per-partition structures below are padded to 64 bytes: neighbours in
 * their arrays belong to different threads, and their counters change on every push (false
 * sharing made 2 threads slower than 1 on CUBA). */
/* A weighted event: a projection with per-synapse weights and a constant delay queues the index
 * of its source spike's shared arrival with SB_EV_W set, and its synapse's float weight at the
 * same position in the queue block's second half (queues are "wide", sb_arena.wide, when the
 * network has such a projection). Before, the pair (arrival, weight) went to a table of the slot
 * and the queue held its index: each processed event was then a cache miss (Brunel with normally
 * distributed weights 1.65x slower than with constant ones), and before that a whole 40-byte
 * arrival per event (3.3x slower). The tables hold fewer than 2^31 entries (vec_grow), so the
 * bit is free. */
#define SB_EV_W 0x80000000u
#define SB_SUBWIN 3   /* parts of a window for the order-free input sums (process_neuron_frame) */
typedef struct {
  sb_arr *a;
  /* (cap x 2) {w, g[0]} of each arrival: the order-free input sums of process_neuron_frame read
   * these 16 bytes an event instead of the 40-byte arrival (Brunel ~3% faster) */
  double *wg;
  uint32_t n, cap;
  int unsorted;   /* some arrival earlier than its predecessor */
  /* the sub-window cuts of window cut_k as arrival indices (valid while the table is sorted and
   * holds cut_n arrivals): the first arrival not before each cut, so that a queue entry is placed
   * in its part by its index alone */
  uint32_t cut_n;
  uint64_t cut_k;
  uint32_t cut_ix[SB_SUBWIN - 1];
  char pad_[64 - 8 - 8 - 8 - 4 - 4 - 8 - 4 * (SB_SUBWIN - 1)];
} sb_arrtab;
_Static_assert(sizeof(sb_arrtab) == 64, "sb_arrtab: one cache line per (slot, partition)");
/* The input of entry j of queue e (weights qw: sb_evvec_w_) of table at: its arrival, with its
 * own weight when weighted. */
static inline sb_input sb_ev_in_(const sb_arrtab *at, const uint32_t *e, const float *qw, uint32_t j) {
  uint32_t x = e[j];
  sb_input r = at->a[x & ~SB_EV_W];
  if (x & SB_EV_W) r.w = (double)qw[j];
  return r;
}
/* The arrival time of queue entry e. */
static inline double sb_ev_t_(const sb_arrtab *at, uint32_t e) { return at->a[e & ~SB_EV_W].t; }
/* Queue storage of one partition: power-of-two blocks carved from large chunks mapped with
 * transparent huge pages (the queues of all neurons are written at random: with 4 KiB pages
 * every push missed the TLB), recycled through per-size free lists. Touched only by the
 * partition's own thread. */
typedef struct {
  _Alignas(64) char *cur, *end;
  void *free_[40];
  void **chunks;
  size_t *chunk_len;
  int n_chunks, cap_chunks;
  int wide;   /* queue blocks hold cap entries and then cap float weights (SB_EV_W) */
  /* Flat home blocks (docs/engine.md, "flat queues"): once the partition's deliveries are busy,
   * each of its neurons [g0, g0 + nk) has one block of fcap entries (fstride with the weights) at
   * a computed address, held by one of its slot queues at a time (sb_net.home_slot) */
  uint32_t *flat;   /* NULL until enabled */
  size_t flat_len, g0, nk;
  uint32_t fcap, fstride;
  uint8_t *home;    /* sb_net.home_slot */
  int32_t fslot;    /* the slot whose lengths sb_net.fcnt mirrors during a delivery, -1 for none */
  uint32_t busy;    /* consecutive busy deliveries (enables the blocks at SB_FLAT_AFTER) */
  int flat_off;     /* not to be enabled */
  uint32_t spills;  /* home blocks outgrown (ev_grow) */
  uint32_t spill_mark, strikes;   /* spills and deliveries counted since the last check */
  uint32_t fcap_min;  /* the next mapping's least block size (after an unmapping) */
  uint32_t unmaps;    /* unmappings of outgrown home blocks */
  uint64_t elig;    /* events of the current delivery that the mirror's loop can take */
  int loads;        /* mirrors loaded in the current delivery (at most one) */
} sb_arena;
_Static_assert(sizeof(sb_arena) % 64 == 0, "sb_arena: whole cache lines per partition");
/* One neuron's events for one window slot: 4-byte indices into the arrival table of the slot and
 * of the neuron's partition (grown, never shrunk). Indices are pushed in increasing order, so a
 * queue is in time order whenever its table is. */
typedef struct { uint32_t *e; uint32_t n, cap; } sb_evvec;
/* The weights of a wide queue's entries (only those with SB_EV_W are set); NULL without a block. */
static inline float *sb_evvec_w_(const sb_evvec *v) { return v->e ? (float *)(v->e + v->cap) : NULL; }
/* A growable list of neuron ids (activation lists of the window scan, sim/run.c). */
typedef struct { uint32_t *a; uint32_t n, cap; char pad_[48]; } sb_u32v;
#define SB_TSTRIDE 8   /* uint64 per thread in per-thread counter arrays: 64 bytes apart */
#define SB_TSTRIDE32 16   /* the same for 32-bit per-thread values (pass, pmode) */
#define SB_MAX_WINDOW 5.0   /* ms: longest window (progress and flush granularity) */
#define SB_CAL_R 256   /* wake calendar: buckets of one window each */
#define SB_CAL_FAR 0xfffffffeu
#define SB_CAL_NONE 0xffffffffu

/* A static (precomputed, sorted) stimulus event: spike_generator spikes and dc steps. */
typedef struct { double t, w; int rcpt; uint32_t gid; } sb_stim_ev;
/* A Poisson source on one neuron. */
typedef struct { uint32_t gid; double rate, start, stop, w; } sb_pois;

enum { SB_PROJ_SPARSE, SB_PROJ_DENSE, SB_PROJ_ONE_TO_ONE, SB_PROJ_CONV,
       SB_PROJ_PLASTIC /* sparse CSR + per-synapse STDP state (sim/plastic.c) */ };

/* A thread partition's synapses of a projection, by source (CSR). The targets are stored as
 * 16-bit indices when the target population has at most 65536 neurons (static projections:
 * 2 bytes a synapse instead of 4; delivery streams them from memory, one row per spike), else
 * as 32-bit: exactly one of tgt and tgt16 is set (plastic projections use tgt). */
typedef struct {
  uint32_t *row;     /* (n_src + 1) offsets */
  uint32_t *tgt;     /* (nnz) target local index in the target population, or NULL */
  uint16_t *tgt16;   /* (nnz) the same, when the target population has <= 65536 neurons, or NULL */
  float *w;          /* (nnz) or NULL (constant weight) */
  float *d;          /* (nnz) or NULL (constant delay) */
  size_t nnz;
} sb_csr;
#define SB_TGT16_MAX 65536u
/* Target (local index) of synapse x of c. */
static inline uint32_t sb_csr_tgt_(const sb_csr *c, size_t x) { return c->tgt16 ? c->tgt16[x] : c->tgt[x]; }
/* Bytes of one stored target index of a projection into a population of nt neurons. */
static inline size_t sb_tgt_bytes_(size_t nt) { return nt <= SB_TGT16_MAX ? 2 : 4; }

typedef struct {
  int kind, src, tgt;
  double w_const, d_const;
  sb_csr *part;           /* [threads], SPARSE */
  float *wt;              /* DENSE (n_src, n_tgt); ONE_TO_ONE (n) or NULL */
  float *d1;              /* ONE_TO_ONE delays (n) or NULL */
  sb_net_conv_shape cs;       /* CONV */
  int OH, OW;
  float *kernel;          /* CONV (C_out, C_in, KH, KW) */
  size_t nsyn, bytes;
  double dmin, dmax;
  struct sb_plastic *pl;  /* PLASTIC: rule, synapse states, post histories (sim/plastic.c) */
} sb_proj;

typedef struct {
  char *name;
  const sb_neuron_type *type;
  size_t n, first;
  char *params, *derived;  /* shared (stride 0) or per neuron */
  size_t pstride, dstride;
  char *state;             /* (n, state_size) */
  char *state0;            /* snapshot at the first run, for sb_net_reset */
  int rec_spikes;
  int *out;                /* outgoing projections */
  int n_out;
  void **work;             /* per-thread workspace (models with work_alloc) */
  int n_rates;             /* decay rates of the window-frame fast path (0: not used) */
  double rates[3];         /* 1/ms */
  uint64_t frame_m;        /* windows per frame epoch: (t - origin) * rate <= 8 */
  double rate_max;         /* largest of rates */
  int pois_direct;         /* one rate and W * rate <= 1/8: Poisson frame factors by pois_factors */
  int eager;               /* takes arrivals at delivery when safe (sim/run.c, "inputs at delivery") */
  /* in-memory spikes (by time) */
  double *sp_t;
  uint32_t *sp_id;
  size_t sp_n, sp_cap;
  /* output datasets */
  hid_t ds_t, ds_id;
  uint32_t sp_chunk;   /* rows per chunk of ds_t / ds_id (fewer when many populations record) */
  uint64_t written;
} sb_pop;

/* A state recording. */
typedef struct {
  int pop;
  size_t var_off;
  char *var, *unit;
  uint32_t *ids;
  size_t n;
  double interval;
  uint64_t k_next;         /* first sample index not yet written */
  float *buf;              /* (rows_cap, n) samples of the current window */
  size_t rows_cap;
  float *mem;              /* in-memory samples when there is no file */
  size_t mem_merged;       /* MPI rank 0: rows of mem already merged from the other ranks */
  size_t mem_rows, mem_cap;
  hid_t ds;
  uint64_t written;
  char group[256];
} sb_rec;

/* Per-neuron recording membership. */
typedef struct { uint32_t rec, col; } sb_recmap;

typedef struct { double t; uint32_t gid; } sb_spike;

struct sb_net {
  /* written once per window (between_windows) and read by every thread: on cache lines of their
   * own, so that the writes do not evict the read-only fields beside them from the other cores
   * (every thread read them again after each window) */
  _Alignas(64) uint64_t k;      /* current window index */
  double t;                     /* current time */
  uint64_t k_emit;              /* window whose spikes are being delivered */
  double w_t0, w_t1;            /* the window being processed */
  size_t gsp_n;                 /* spikes in gsp */
  int done;
  int hook_now;                 /* call the hook after this window's delivery */
  uint64_t spikes_total;
  double next_flush;
  _Alignas(64) uint64_t seed;
  int threads;
  double min_delay;
  sb_pop *pops;
  int n_pops;
  sb_proj *projs;
  int n_projs;
  size_t n;                     /* neurons */
  size_t *bound;                /* [threads + 1] owned gid ranges */
  /* stimuli as given */
  sb_pois *pois;
  size_t n_pois, cap_pois;
  sb_stim_ev *stim;
  size_t n_stim, cap_stim;
  /* recordings */
  sb_rec *recs;
  int n_recs;
  /* run-time (built by prepare) */
  int prepared;
  double W;                     /* window, ms */
  int S;                        /* slots */
  sb_evvec *ev;                 /* (S, n) */
  uint16_t *fcnt;               /* (n) a delivery's mirror of the flat home blocks' lengths (sb_arena.fslot) */
  uint8_t *home_slot;           /* (n) the slot whose queue holds the neuron's home block; 0xFF: none */
  sb_arrtab *arr;               /* (S, threads) arrival tables */
  sb_arena *qarena;             /* (threads) queue storage */
  size_t *pois_first;           /* (n + 1) */
  double *pois_next;            /* (n_pois) sorted by gid */
  sb_pois *pois_s;              /* sorted copy */
  gsl_rng **pois_rng;           /* (n) or NULL entries */
  size_t *stim_first;           /* (n + 1) */
  sb_stim_ev *stim_s;           /* sorted by (gid, t) */
  size_t *stim_pos;             /* (n) cursor */
  size_t *rec_first;            /* (n + 1) */
  sb_recmap *recmap;
  /* a recorded neuron's sample copy between windows where only its samples were taken (sim/run.c,
   * sample_segment): smp_sz bytes and its time at index rec_first[g]; NAN: none */
  char *smp_state;
  double *smp_t;
  size_t smp_sz;
  double *t_state;              /* (n) time each neuron's state refers to (lazy update) */
  double *t_safe;               /* (n) wake time: nothing (spike, stimulus, sample) before it without new events */
  double *ev_due;               /* (n) wake time (t_safe) for the window scan, which skips a neuron
                                   whose due time is past the window and whose current slot's queue
                                   is empty (deliveries do not touch it) */
  uint64_t *count;              /* (n) spikes */
  double *last, *isi_sum, *isi_sq;  /* (n) for CV */
  sb_spike **tsp;               /* per-thread spikes of the window */
  size_t *tsp_n, *tsp_cap;      /* [k * SB_TSTRIDE] */
  sb_spike *gsp;                /* concatenated */
  size_t gsp_cap;
  double flush_interval;
  uint64_t *t_events;           /* per-thread delivered events, [k * SB_TSTRIDE] (own cache lines) */
  uint64_t *t_ext;              /* per-thread stimulus events, [k * SB_TSTRIDE] */
  uint64_t *t_eager;            /* per-thread events taken at delivery, [k * SB_TSTRIDE] */
  double *ep_carry;             /* (threads x n_pops x 5) epoch carry of iaf_psc_exp's frame factors (deliver_row_exp):
                                   the origin it is for (NAN: none), the previous origin, three factors */
  uint8_t *eager_ok;            /* (n) no recordings, Poisson or static stimuli: may take inputs at delivery */
  int eager_off;                /* tests: never take inputs at delivery */
  int flat_off;                 /* tests: 1 never maps home blocks (sb_arena.flat), -1 maps them however few the events */
  int eager_any;                /* some population may take inputs at delivery (replay_queued) */
  double inv_W;                 /* 1 / W */
  /* Activation lists (sim/run.c "window scan"): a partition with few active neurons processes
   * only the ids whose slot queue became non-empty (act, appended by the pushes) and those due
   * in the window (a calendar of SB_CAL_R one-window buckets plus a far list); others scan. */
  sb_u32v *act;                 /* (S * threads) */
  sb_u32v *cal;                 /* (threads * SB_CAL_R) */
  sb_u32v *far_, *cand;         /* (threads) */
  uint32_t *stamp;              /* (n) pass of the last look at a neuron (dedupe) */
  uint32_t *cal_at;             /* (n) window (mod 2^32) of a neuron's calendar entry; SB_CAL_FAR, SB_CAL_NONE */
  uint32_t *pass;               /* (threads) [k * SB_TSTRIDE32] */
  int *pmode;                   /* (threads) [k * SB_TSTRIDE32] 0 scan, 1 lists, 2 scan and rebuild the calendar */
  uint32_t **scratch;           /* per-thread sort scratch */
  size_t *scratch_cap;
  sb_input **merged;            /* per-thread merged inputs of a neuron's window (fast path) */
  size_t *merged_cap;
  sb_input **pin;               /* per-thread Poisson inputs of a neuron's window (fast path) */
  size_t *pin_cap;
  double **pin_t;               /* per-thread Poisson times, then factors (pois_factors; pin_cap + 4) */
  /* errors from worker threads */
  int err;
  char err_msg[512];
  /* output */
  hid_t file;
  sb_net_progress_fn progress;
  void *progress_ctx;
  int n_plastic;                /* projections of kind SB_PROJ_PLASTIC (sim/plastic.c) */
  /* window hook (checkpoints, stop requests): called between windows when set */
  sb_net_window_fn hook;
  void *hook_ctx;
  int (*hook_due)(void *ctx, double t);   /* optional: 0 = skip the hook after the window ending at t */
  int stopped;                  /* the hook stopped the last run before t_stop */
  /* MPI (sim/mpi.c): this rank owns partitions [p_lo, p_hi) of `threads` (= ranks x threads per rank) */
  int rank, nranks, p_lo, p_hi;
  int *mpi_counts, *mpi_displs;
  uint64_t mpi_bytes, mpi_windows;  /* spike bytes received per rank, windows exchanged */
};

/* Window index of arrival time t, at least k_emit + 1. */
static inline uint64_t sb_bin_(const sb_net *net, double t) {
  double q = t / net->W;
  uint64_t b = q > 0 ? (uint64_t)q : 0;
  if (b > 0 && (double)b * net->W > t) b--;
  if ((double)(b + 1) * net->W <= t) b++;
  if (b <= net->k_emit) b = net->k_emit + 1;
  return b;
}

int sb_net_prepare_(sb_net *net);
int sb_rec_window_(sb_net *net, double t0, double t1);      /* keep spikes/samples of a window (gsp by time) */
/* Index of the population that holds neuron gid. Inline and without branches for a few populations:
 * the window scan calls it for every neuron it visits, and its branch on CUBA's two populations was
 * mispredicted in 12% of the calls (cachegrind --branch-sim: 360k in 3.0M calls per simulated s). */
static inline int sb_pop_of_(const sb_net *net, uint32_t gid) {
  const sb_pop *p = net->pops;
  int n = net->n_pops;
  if (n <= 8) {
    int k = 0;
    for (int i = 1; i < n; i++) k += p[i].first <= gid;
    return k;
  }
  int lo = 0, hi = n - 1;
  while (lo < hi) {
    int mid = (lo + hi + 1) / 2;
    if (p[mid].first <= gid) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
int sb_rec_flush_(sb_net *net, int full);   /* write recordings; full = 0: only whole spike chunks (periodic) */
/* Append `rows` rows of `ncols` to the extendible dataset `ds` at row *written (sim/record.c). */
int sb_rec_append_(hid_t ds, hid_t mtype, const void *buf, hsize_t rows, hsize_t ncols, int rank, uint64_t *written);
void sb_rec_free_(sb_net *net);
/* Queue an event (time t ms, weight w) for neuron gid in window slot `slot`; its own arrival
 * entry in the table of gid's partition. Used by checkpoint restore and plastic delivery. */
int sb_ev_push_(sb_net *net, size_t slot, size_t gid, double t, double w);
/* sb_ev_push_ into the slot of t's window for a target gid of partition k in population tp (the
 * caller knows both: no searches per event). */
int sb_ev_push_k_(sb_net *net, int k, size_t gid, double t, double w, const sb_pop *tp);
/* Event j of neuron gid's queue in window slot `slot`: time and weight. */
void sb_ev_get_(const sb_net *net, size_t slot, size_t gid, uint32_t j, double *t, double *w);
/* Releases a partition's queue storage (sim/run.c). */
void sb_arena_free_(sb_arena *a);
/* Lower bound of the run-time bytes per neuron besides its state and its reset copy (times,
 * counters, cursors, queue heads; sim/run.c sb_net_prepare_). */
#define SB_NEURON_RUNTIME_BYTES 112
/* sb_net_connect whose size check counts `extra` more bytes per synapse (a plastic projection's
 * per-synapse state and its weight output, sim/plastic.c). */
int sb_net_connect_sized_(sb_net *net, int src, int tgt, const sb_conn_spec *c, const sb_syn_spec *y, double extra,
                          int *proj);
/* Lower bound of the bytes the network holds: neuron state, its reset copy and run-time
 * arrays of every population, plus every projection's storage (the up-front size checks). */
double sb_net_held_bytes_(const sb_net *net);
/* Remove the projection committed last (a builder refusing it after the connector ran). */
void sb_net_drop_last_proj_(sb_net *net);
/* Partition (of net->threads) owning neuron gid. */
int sb_part_of_(const sb_net *net, size_t gid);
/* Read a JSON file (model or sweep) rejecting duplicate keys. Errors: SB_EINVAL (missing or a
 * directory), SB_EFORMAT with line and column. Caller json_decref's *root. (sim/model.c) */
int sb_json_load_(const char *path, json_t **root);
/* sim/mpi.c: no-ops with one rank */
int sb_mpi_exchange_spikes_(sb_net *net, size_t local);
void sb_mpi_net_ranks_(int *rank, int *size);   /* ranks a new network is split over */
void sb_mpi_sum_u64_(const sb_net *net, uint64_t *v, int n);
void sb_mpi_sum_double_(const sb_net *net, double *v, int n);
void sb_mpi_minmax_(const sb_net *net, double *mn, double *mx);
/* Bitwise OR of `n` 32-bit words over the ranks into rank 0's `buf` (MPI_Reduce, MPI_BOR).
 * Each rank holds zeros where another rank owns the data, so rank 0 ends with every rank's
 * words exactly (floats included). Collective; a no-op with one rank. Errors: SB_EMPI. */
int sb_mpi_merge_u32_root_(const sb_net *net, void *buf, size_t n);
/* Gather `bytes` bytes of every rank on rank 0 in rank order (= partition order): *all is a
 * new buffer (caller sb_free's) and counts[r] (nranks entries, rank 0 only) rank r's bytes.
 * Non-root ranks get *all = NULL; with one rank *all is a copy. Collective. Errors: SB_ENOMEM,
 * SB_EMPI (also when one rank holds more than 2 GiB). */
int sb_mpi_gather_root_(const sb_net *net, const void *mine, size_t bytes, void **all, size_t *counts);

/* ---- plastic projections (sim/plastic.c; STDP rules in learning/stdp.c) ---- */
/* A spike of neuron gid at t: append it to the post histories of plastic projections onto it. */
int sb_plastic_post_spike_(sb_net *net, uint32_t gid, double t);
/* Deliver source j's spike at ts through plastic projection pr, partition k: STDP update of
 * each synapse, then an event with the new weight. Adds the events to *nev. */
int sb_plastic_deliver_(sb_net *net, const sb_proj *pr, int k, size_t j, double ts, uint64_t *nev);
/* Partition k: take weight snapshots due before time t (all pre spikes <= them delivered). */
void sb_plastic_snapshots_(sb_net *net, int k, double t);
/* Partition k after a window's delivery: sync and trim post histories now and then. */
void sb_plastic_window_end_(sb_net *net, int k);
/* Before a run to t_stop: reserve snapshot rows. */
int sb_plastic_run_start_(sb_net *net, double t_stop);
/* Refuse weight snapshots that cannot fit a run to t_stop: their rows (ceil(t_stop/interval)+1)
 * times (synapses + 1) doubles, summed over plastic projections in order on top of what the
 * network holds, against the memory this process may use (sb_mem_limit) (computed in double: no size_t wrap). SB_EINVAL
 * "record_weights.interval: ..." with *proj the first projection that does not fit. */
int sb_plastic_check_snapshots_(const sb_net *net, double t_stop, int *proj);
void sb_plastic_reset_(sb_net *net);
void sb_plastic_free_(sb_proj *pr);
/* Stored weight of synapse x of partition k. */
double sb_plastic_weight_(const sb_proj *pr, int k, size_t x);
/* Checkpoint datasets /checkpoint/plastic_<i>_{syn,post_counts,post,snapshots,meta} of every
 * plastic projection i (sim/checkpoint.c); synapses in a thread-count-independent order. */
int sb_plastic_checkpoint_write_(const sb_net *net, hid_t g);
int sb_plastic_checkpoint_read_(sb_net *net, hid_t g, const char *file);
/* Read dataset `name` of the /checkpoint group `g` into a new buffer (caller sb_free's) and
 * check it has `want` elements. Errors: SB_EFORMAT naming `file` and the dataset, with both
 * counts ("not the same model and overrides?"). sim/checkpoint.c. */
int sb_checkpoint_read_(hid_t g, const char *file, const char *name, hid_t mt, void **d, size_t want);

/* The first neuron with a recordable state variable that is not finite: 1 and its population,
 * index, variable (index into recordables) and value; 0 when all are finite. */
int sb_net_first_nonfinite_(const sb_net *net, int *pop, size_t *j, int *var, double *x);
/* SB_ENOCONV naming that neuron, variable and the time, with `more` appended; SB_OK if none. */
int sb_net_check_finite_(const sb_net *net, const char *more);

#endif
