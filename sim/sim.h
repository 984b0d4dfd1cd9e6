/* The sim module: core infrastructure (sim/core.h) and the event-driven engine: networks of
 * populations and projections, stimuli, the window-synchronous event loop, recording, and the
 * JSON model-file loader. docs/engine.md is the user's guide; this header is the reference.
 *
 * The engine (DESIGN.md "The engine"): time is continuous (ms, double). The smallest synaptic
 * delay d_min cuts time into windows [k W, (k+1) W), W = d_min (at most 5 ms). Inside a window
 * every neuron is independent: its incoming events are taken in time order, its state advanced
 * exactly between them, threshold crossings located exactly, spikes emitted with their exact
 * times. At the window's end the spikes of all threads are concatenated (ordered by neuron id)
 * and every thread delivers them to the neurons it owns, through synapses stored on the
 * target's side, partitioned by owning thread and indexed by source. No locks, no atomics.
 * The same network and seed give bit-identical spikes for any number of threads: connectivity,
 * weights, initial states and Poisson input come from RNG streams keyed by (seed, purpose, id).
 *
 * Typical use from C (the conversion backend does exactly this):
 *   sb_net *net = sb_net_alloc(seed, threads);
 *   int in, out;
 *   sb_net_add_population(net, "in", sb_neuron_if_subtract, 784, &in);
 *   sb_net_add_population(net, "out", sb_neuron_if_subtract, 10, &out);
 *   sb_net_set_param_array(net, out, "I_e", bias);          // per-neuron bias currents
 *   sb_net_connect_dense(net, in, out, w, 1.0, NULL);       // w (10, 784) row-major
 *   sb_net_run(net, 100.0);                                 // ms
 *   sb_net_spike_counts(net, out, counts);  sb_net_get_state(net, out, "V_m", v);
 *   sb_net_reset(net);  ...  sb_net_free(net);
 */
#ifndef SB_SIM_H
#define SB_SIM_H

#include "sim/core.h"
#include "neurons/neurons.h"

#include <gsl/gsl_rng.h>

typedef struct sb_net sb_net;

/* ---- networks and populations ---- */

/* A new empty network. `seed` keys every RNG stream; `threads` >= 1 is the number of OpenMP
 * threads (and of storage partitions), 0 means omp_get_max_threads(). Fixed for the network's
 * life. Errors: NULL with SB_ENOMEM. Free with sb_net_free. */
sb_net *sb_net_alloc(uint64_t seed, int threads);
void sb_net_free(sb_net *net);

/* Smallest allowed synaptic delay, ms (default 0.1, NEST's default resolution). A projection
 * whose delay is below it is an error (SB_EINVAL). Set before connecting. */
int sb_net_set_min_delay(sb_net *net, double min_delay);

/* Add a population of `n` neurons of `type` with the type's default parameters, at rest.
 * Neuron ids are global in order of creation; `*pop` gets the population index.
 * Errors: SB_EINVAL (duplicate or empty name, n = 0, after a run started), SB_ENOMEM. */
int sb_net_add_population(sb_net *net, const char *name, const sb_neuron_type *type, size_t n, int *pop);
/* Population index by name, or -1. */
int sb_net_find_population(const sb_net *net, const char *name);
/* Size / first global id / name / type of a population. */
size_t sb_net_pop_size(const sb_net *net, int pop);
size_t sb_net_pop_first(const sb_net *net, int pop);
const char *sb_net_pop_name(const sb_net *net, int pop);
const sb_neuron_type *sb_net_pop_type(const sb_net *net, int pop);
int sb_net_n_populations(const sb_net *net);

/* Set a parameter for every neuron of `pop` (NEST name and unit). Validates the value and the
 * model's cross-parameter rules, leaving the old value on error (transactional).
 * Errors: SB_EINVAL "<key>: must be > 0 (got -20)" etc. (callers prefix file and path). */
int sb_net_set_param(sb_net *net, int pop, const char *key, double value);
/* Per-neuron values `values[n]` of one parameter (e.g. I_e bias currents): the population then
 * keeps one parameter block per neuron. Same errors as sb_net_set_param (neuron index named). */
int sb_net_set_param_array(sb_net *net, int pop, const char *key, const double *values);
/* Set / read a state variable (recordable name, e.g. "V_m") of every neuron: values[n]. */
int sb_net_set_state(sb_net *net, int pop, const char *var, const double *values);
int sb_net_get_state(const sb_net *net, int pop, const char *var, double *values);

/* ---- distributions for weights, delays and initial values ---- */

enum { SB_DIST_CONST, SB_DIST_UNIFORM, SB_DIST_NORMAL, SB_DIST_NORMAL_CLIPPED, SB_DIST_LOGNORMAL };
/* const: a; uniform: [a=min, b=max); normal: mean a, std b; normal_clipped: normal(a, b)
 * redrawn until inside [c=min, d=max] (NEST's redraw semantics); lognormal: exp(normal(a=mu, b=sigma)). */
typedef struct { int kind; double a, b, c, d; } sb_dist;
/* One draw with GSL's samplers (gsl_ran_flat, gsl_ran_gaussian_ziggurat, gsl_ran_lognormal);
 * normal_clipped redraws, and after 100 misses samples the truncated normal exactly (Robert 1995),
 * so it is correct for intervals far in a tail. */
double sb_dist_draw(const sb_dist *dist, gsl_rng *r);
/* Check a distribution's parameters (std >= 0, min < max, ...). SB_EINVAL "<field>: ..." */
int sb_dist_check(const sb_dist *dist);

/* ---- projections ---- */

/* Connection rules with NEST's names and meaning. */
enum { SB_RULE_ALL_TO_ALL, SB_RULE_ONE_TO_ONE, SB_RULE_PAIRWISE_BERNOULLI, SB_RULE_FIXED_INDEGREE,
       SB_RULE_FIXED_OUTDEGREE, SB_RULE_FIXED_TOTAL_NUMBER, SB_RULE_EXPLICIT };
/* Receptor: by the weight's sign (NEST), or forced excitatory (|w|) / inhibitory (-|w|). */
enum { SB_RECEPTOR_SIGN = 0, SB_RECEPTOR_EX = 1, SB_RECEPTOR_IN = -1 };

typedef struct {
  int rule;               /* SB_RULE_* */
  double p;               /* pairwise_bernoulli probability */
  size_t indegree, outdegree, N;   /* fixed_indegree / fixed_outdegree / fixed_total_number */
  int allow_autapses;     /* default 1 (NEST); only matters when source == target population */
  int allow_multapses;    /* default 1 (NEST) */
  /* explicit: n pairs of local indices; weights/delays may be NULL (then the syn spec's) */
  size_t n;
  const uint32_t *sources, *targets;
  const double *weights, *delays;
} sb_conn_spec;

typedef struct {
  sb_dist weight;   /* mV (psc_delta, if_subtract), pA (psc_exp), nS (cond_exp) */
  sb_dist delay;    /* ms, >= min_delay */
  int receptor;     /* SB_RECEPTOR_* */
} sb_syn_spec;

/* Connect population `src` to `tgt` with a rule; synapses stored sparse (per owning thread,
 * CSR by source: a 2-byte target index when the target population has at most 65536 neurons,
 * else 4 bytes (plastic synapses: always 4), plus a 4-byte float weight only if weights are drawn
 * or explicit and a 4-byte float delay only if delays are; at most 12 bytes per synapse).
 * one_to_one uses the one-to-one storage kind. Connectivity and weights are drawn from streams
 * keyed by (seed, projection index, target) (or source, for fixed_outdegree), so they do not
 * depend on the thread count. Errors: SB_EINVAL (bad rule parameters, e.g. indegree > sources
 * without multapses; delay < min_delay; sizes differ for one_to_one; explicit index out of
 * range), SB_ENOMEM. `*proj` (may be NULL) gets the projection index. */
int sb_net_connect(sb_net *net, int src, int tgt, const sb_conn_spec *conn, const sb_syn_spec *syn, int *proj);

/* Dense projection: every source to every target with weights `w` (n_tgt, n_src) row-major
 * (PyTorch's Linear layout), copied (stored transposed, float32). One delay (ms).
 * Zero weights send no events. Errors: SB_EINVAL, SB_ENOMEM. */
int sb_net_connect_dense(sb_net *net, int src, int tgt, const float *w, double delay, int *proj);

/* Convolution projection (shared kernel; targets computed on the fly, never expanded):
 * source population laid out (C_in, H, W), target (C_out, H_out, W_out) with
 * H_out = (H + 2 pad - KH) / stride + 1 (PyTorch Conv2d, no dilation). kernel (C_out, C_in, KH, KW)
 * row-major, copied. Sizes must match the populations. Errors: SB_EINVAL, SB_ENOMEM. */
typedef struct { int C_in, H, W, C_out, KH, KW, stride, pad; } sb_net_conv_shape;
int sb_net_connect_conv(sb_net *net, int src, int tgt, const sb_net_conv_shape *shape, const float *kernel,
                        double delay, int *proj);

/* Every synapse of a sparse or one-to-one projection, ordered by target, then as stored:
 * local source and target ids, weight (as stored, float precision) and delay (ms). Arrays are
 * new (caller sb_free's each). Errors: SB_EINVAL for dense/conv projections (their weights are
 * the matrix / kernel given), SB_ENOMEM. For tests, inspection and plasticity bookkeeping. */
int sb_net_proj_get(const sb_net *net, int proj, uint32_t **src, uint32_t **tgt, double **w, double **d, size_t *n);

/* Synapse count of a projection and the bytes its storage uses. */
size_t sb_net_proj_synapses(const sb_net *net, int proj);
size_t sb_net_proj_bytes(const sb_net *net, int proj);
int sb_net_n_projections(const sb_net *net);

/* ---- stimuli ---- */

/* Poisson input (NEST poisson_generator): every listed neuron gets its own independent train
 * of rate `rate` (Hz) in [start, stop) ms (stop may be INFINITY), arriving `delay` ms later with
 * `weight`. Generated lazily per neuron inside its window from the stream (seed, POISSON, id),
 * never materialised. `ids` = local indices (NULL: all n of the population). */
int sb_net_add_poisson(sb_net *net, int pop, const uint32_t *ids, size_t n, double rate, double start,
                       double stop, double weight, double delay);
/* Change the rate of every Poisson source on the neurons of `pop` to rates[i] Hz (i = local id),
 * from the current time on (before the first run: from each source's start). Between runs only.
 * The next spike is redrawn from the neuron's own stream (memoryless, so the trains are
 * Poisson with the new rate at once); thread-count invariance holds. Rate 0 silences a source.
 * Errors: SB_EINVAL (a rate < 0 or not finite, naming the index; no Poisson source on `pop`).
 * Source: NEST poisson_generator SetStatus per target; Brian2 PoissonGroup.rates. */
int sb_net_set_poisson_rates(sb_net *net, int pop, const double *rates);
/* Constant current `amplitude` pA in [start, stop) ms (NEST dc_generator); as in NEST the
 * connection's `weight` scales it and its `delay` (ms, >= 0) shifts it: weight x amplitude in
 * [start + delay, stop + delay). Errors: SB_EINVAL naming the field (checked as given). */
int sb_net_add_dc(sb_net *net, int pop, const uint32_t *ids, size_t n, double amplitude, double start,
                  double stop, double weight, double delay);
/* Piecewise constant current (NEST step_current_generator): values[j] pA from times[j] ms until
 * times[j + 1] (0 before times[0]), output only in [start, stop); times >= 0, strictly
 * increasing, all finite; nv may be 0. The connection's `weight` scales it and `delay` (ms) shifts
 * it, as for sb_net_add_dc. Applied as changes of the neuron's stimulus current at the change
 * points (start, the times inside [start, stop), stop), so the current is the running sum of the
 * changes (within a few ulps; a value after one ~1e15 times larger loses its digits). Errors:
 * SB_EINVAL naming the field and index (checked as given), also for a change that is not finite. */
int sb_net_add_step_current(sb_net *net, int pop, const uint32_t *ids, size_t n, const double *times,
                            const double *values, size_t nv, double start, double stop, double weight, double delay);
/* Explicit spike times `times[nt]` (ms) to every listed neuron, with `weight`, arriving `delay`
 * later (NEST spike_generator). Times must be >= 0 and finite. */
int sb_net_add_spike_train(sb_net *net, int pop, const uint32_t *ids, size_t n, const double *times,
                           size_t nt, double weight, double delay);

/* ---- recording ---- */

/* Keep the spikes of `pop` (default: on for every population). */
int sb_net_record_spikes(sb_net *net, int pop, int on);
/* Sample state variable `var` of the listed neurons (local ids; NULL = all) every `interval`
 * ms from t = 0 (the state just before events at the sample time). */
int sb_net_record_state(sb_net *net, int pop, const char *var, const uint32_t *ids, size_t n,
                        double interval);
/* Bytes of state samples (float32, before compression) the recordings of sb_net_record_state
 * produce from the current time to `t_stop` ms: for the size check before a run. */
double sb_net_record_bytes(const sb_net *net, double t_stop);
/* Bytes the state samples of one window (at most up to t_stop) hold in memory (its rows are
 * complete only when every neuron has been processed: float32, the window's buffer and its copy
 * for the next flush), after the network is prepared (sb_net_time_limit): for the memory check
 * before a run. 0 before. */
double sb_net_record_window_bytes(const sb_net *net, double t_stop);
/* Stream recordings into `file` (an open, writable HDF5 file; borrowed until sb_net_free or
 * sb_net_attach_output(net, -1)): spikes in the SONATA layout /spikes/<pop>/{timestamps,node_ids}
 * (float64 ms, uint64; sorting = "by_time"; root attributes magic = 0x0A7A, version = [0, 1]),
 * state samples in the SONATA report layout /report/<pop>/{data (n_times, n_nodes) float32,
 * mapping/node_ids, mapping/time = [start, stop, dt], mapping/index_pointers, element_ids}.
 * Appended in chunks and flushed every `flush_interval` ms of biological time. Without a file
 * the spikes stay in memory (sb_net_spikes). */
int sb_net_attach_output(sb_net *net, hid_t file, double flush_interval);
/* Write what is still buffered and close the datasets (before sb_h5_commit). */
int sb_net_finish_output(sb_net *net);

/* ---- running ---- */

/* Optional progress callback, called from the master thread about every window. */
typedef void (*sb_net_progress_fn)(void *ctx, double t, double t_stop, uint64_t spikes);
void sb_net_set_progress(sb_net *net, sb_net_progress_fn fn, void *ctx);

/* Simulate from the current time to `t_stop` ms (may be called repeatedly; the first call
 * prepares the event buffers). Errors: SB_EINVAL (t_stop < now, or beyond sb_net_time_limit),
 * SB_ENOCONV (a model's root or ODE failed, or a state variable is no longer finite at the end:
 * weights of 1e308 gave V_m = -inf and NaN with a successful run; the message names the neuron,
 * the variable and the time), SB_EIO (recording), SB_ENOMEM. */
int sb_net_run(sb_net *net, double t_stop);
/* *t_max = the latest t_stop sb_net_run accepts, ms: window numbers are 32-bit in the wake
 * calendar, so (2^32 - 258) windows of the minimum delay (capped at 5 ms); 4.97 days of
 * biological time at 0.1 ms. Prepares the event buffers as the first run would. Errors: SB_EINVAL
 * (no neurons), SB_ENOMEM. */
int sb_net_time_limit(sb_net *net, double *t_max);
/* Back to t = 0: every state restored to what it was when the first run started (including
 * sb_net_set_state values), queues, counters and in-memory spikes and samples cleared, Poisson
 * streams rewound. Parameters, projections and stimuli stay; parameters may be changed between
 * runs with sb_net_set_param(_array) (e.g. a new input image's bias currents). */
int sb_net_reset(sb_net *net);
/* Current time, ms. */
double sb_net_time(const sb_net *net);

/* Spikes of `pop` kept in memory (only without an output file): `*times` ms, `*ids` local ids,
 * ordered by time (ties by id). Borrowed, valid until the next run/reset. */
int sb_net_spikes(const sb_net *net, int pop, const double **times, const uint32_t **ids, size_t *n);
/* Spike count of every neuron since t = 0: counts[n]. */
int sb_net_spike_counts(const sb_net *net, int pop, uint64_t *counts);

/* Per-population statistics since t = 0. */
typedef struct {
  uint64_t spikes;      /* total */
  double rate;          /* mean rate, Hz */
  double cv;            /* mean over neurons with >= 3 spikes of std(ISI)/mean(ISI) (ddof 0) */
  size_t n_cv;          /* neurons that entered cv */
} sb_pop_stats;
int sb_net_pop_stats(const sb_net *net, int pop, sb_pop_stats *st);

/* Run-wide counters. */
typedef struct {
  uint64_t syn_events;     /* synaptic events delivered through projections */
  uint64_t ext_events;     /* stimulus events (poisson_generator, spike_generator) */
  uint64_t eager_events;   /* of syn_events, those taken by their target at delivery (docs/engine.md) */
  uint64_t spikes;
  size_t synapses;         /* stored synapses (dense: nonzero weights; conv: expanded count) */
  size_t syn_bytes;        /* bytes used by synapse storage */
  double window;           /* window length, ms */
  int threads;
  /* flat queue home blocks (docs/engine.md, "flat queues"): summed over the thread partitions
   * (and ranks), counted since this process built or restored the network */
  size_t home_bytes;       /* mapped now (0: none, e.g. no partition busy enough, or unmapped at the end) */
  uint32_t home_cap;       /* largest block mapped now, entries (this rank) */
  uint64_t home_spills;    /* times a queue outgrew its home block */
  uint64_t home_unmaps;    /* unmappings of outgrown blocks (each may be mapped again, larger) */
} sb_net_counters;
void sb_net_get_counters(const sb_net *net, sb_net_counters *c);

/* ---- model files (JSON) ---- */

/* Options of a model-file load: overrides of command-line flags and --set paths. */
typedef struct {
  const char *const *set;   /* "populations.exc.params.tau_m=15" ..., n_set of them */
  int n_set;
  double t_stop;            /* NAN: from the file */
  long seed;                /* < 0: from the file */
  int threads;              /* <= 0: from the file (or all cores) */
} sb_snn_model_opts;

/* A loaded model: the network plus the file's simulation settings. */
typedef struct {
  sb_net *net;
  double t_stop;          /* ms */
  uint64_t seed;
  int threads;
  char *output;           /* simulation.output or NULL (owned) */
  double flush_interval;  /* ms */
} sb_snn_model;

/* Read a JSON model file (DESIGN.md "Model descriptions", docs/engine.md has the schema),
 * apply `opts`, validate everything and build the network. Every error names the file, the
 * JSON path and what was expected versus found, e.g.
 * "brunel.json: populations.exc.params.tau_m: must be > 0 (got -20)"; parse errors give line
 * and column (jansson). Errors: SB_EIO (cannot read), SB_EFORMAT (not JSON), SB_EINVAL.
 * Ownership: `*model` is the caller's (sb_snn_model_free). */
int sb_snn_model_load(const char *path, const sb_snn_model_opts *opts, sb_snn_model *model);
void sb_snn_model_free(sb_snn_model *model);
/* An error (the last one set, returned as rc) caused by one of the overrides `set[n_set]`
 * ("PATH=VALUE") gets the prefix "with --set PATH=VALUE: " (the loader does this; call it for
 * errors found after loading, such as the run's size checks). When several paths match equally
 * well (siblings of the field the error names), all are named: "with --set A and --set B: ".
 * Returns rc. */
int sb_snn_blame_overrides(int rc, const char *const *set, int n_set);


/* ---- parameter sweeps (sim/sweep.c; user guide: docs/clusters.md) ---- */

/* How a sweep file's parameters expand into runs. */
enum { SB_SWEEP_GRID = 0, SB_SWEEP_ZIP, SB_SWEEP_RANDOM };

/* An expanded sweep: run i applies `fixed` then the i-th row of `values` as --set overrides
 * (sb_snn_model_opts.set) to the base model file. */
typedef struct {
  char *file;          /* the sweep file as given (for messages) */
  char *base;          /* base model file, resolved against the sweep file's directory */
  char *output_dir;    /* run files and summary (relative to the working directory) */
  char *prefix;        /* run file names: <output_dir>/<prefix>_<index>.h5 (default "run") */
  int mode;            /* SB_SWEEP_* */
  uint64_t seed;       /* random mode: samples come from sb_rng_alloc(seed, SB_RNG_SWEEP, run) */
  size_t n_params;     /* swept parameters */
  size_t n_runs;
  size_t n_fixed;
  char **paths;        /* (n_params) --set paths, e.g. "projections[2].weight" */
  char **values;       /* (n_runs, n_params) row-major: each value as JSON text */
  char **fixed;        /* (n_fixed) "PATH=VALUE" overrides shared by every run (the file's "set") */
  int width;           /* digits of the run number in file names (>= 4) */
  char base_fp[64];    /* the base model file's fingerprint when the sweep was read (sb_file_fingerprint):
                          stored in every run file; a run of an edited base is not complete */
} sb_sweep;

/* Read and expand a sweep file (JSON; schema in docs/clusters.md):
 *   {"base": "brunel.json", "mode": "grid"|"zip"|"random", "parameters": {PATH: [v, ...] | DIST},
 *    "samples": N, "seed": S, "set": {PATH: v}, "output_dir": "dir", "prefix": "run"}
 * Grid: the Cartesian product, the last parameter varying fastest (itertools.product order).
 * Zip: the i-th value of every list (lists of equal length). Random: `samples` runs, each
 * parameter drawn from {"distribution": "uniform"(min,max) | "loguniform"(min,max > 0) |
 * "normal"(mean,std) | "integer"(min,max inclusive) | "choice"(values)} with GSL samplers and
 * the stream (seed, SB_RNG_SWEEP, run index): run i's sample does not depend on `samples`.
 * A key "A,B" ties several paths to one value (e.g. both inhibitory weights of Brunel's g).
 * Every PATH is checked against the base model file (array indices in range, parent keys
 * present). `output_dir_override` (may be NULL) replaces the file's output_dir.
 * Errors name the file and the JSON path: "sweep.json: parameters.tau: zip needs lists of equal
 * length (3 here, 4 in parameters.rate)"; SB_EIO (cannot read), SB_EFORMAT (not JSON),
 * SB_EINVAL. Ownership: *sw is the caller's (sb_sweep_free). */
int sb_sweep_load(const char *path, const char *output_dir_override, sb_sweep **sw);
void sb_sweep_free(sb_sweep *sw);

/* Output file of run `i` into buf[cap]: "<output_dir>/<prefix>_<i, width digits>.h5". */
void sb_sweep_run_path(const sb_sweep *sw, size_t i, char *buf, size_t cap);

/* The overrides of run `i` joined by newlines ("PATH=VALUE\n..."), fixed ones first; new
 * string (caller sb_free's), NULL on SB_ENOMEM. Stored in the run file to recognise it. */
char *sb_sweep_overrides_text(const sb_sweep *sw, size_t i);

/* 1 if run `i`'s output file exists, is a readable HDF5 file, and its /sweep group records
 * index i, the same overrides, the base model's fingerprint and complete = 1; else 0 (missing,
 * truncated, from another sweep definition or an edited base model: such a run is redone). */
int sb_sweep_run_complete(const sb_sweep *sw, size_t i);

/* Options of one run. */
typedef struct {
  int threads;                 /* <= 0: from the model file */
  sb_net_progress_fn progress; /* may be NULL */
  void *progress_ctx;
  sb_snn_model *model;         /* NULL, or run i's model from sb_sweep_load_run: sb_sweep_run
                                * takes it over (frees it, also on error) instead of loading */
} sb_sweep_run_opts;

/* Build the base model with run `i`'s overrides (sb_snn_model_load with them as --set), without
 * simulating or writing anything: the check of a run before a sweep starts. `threads` <= 0:
 * the model file's. Errors: the model loader's (SB_EINVAL/SB_EFORMAT for input errors, exit 2),
 * prefixed "<sweep file>: run <i>". `*m` is the caller's (sb_snn_model_free). */
int sb_sweep_load_run(const sb_sweep *sw, size_t i, int threads, sb_snn_model *m);

/* Build the base model with run `i`'s overrides (or take o->model), simulate it and write its file
 * atomically (sb_h5_create/commit): the SONATA spikes and reports of `spikebridge run`, root
 * attributes as `run` writes them, and a /sweep group (index, overrides, population names and
 * sizes, complete = 1). A model error writes nothing (not even the directory). On success the
 * run's failure marker (sb_sweep_mark_failed), if any, is removed. Errors: the model loader's,
 * prefixed "<sweep file>: run <i>"; the engine's (SB_EIO, run-time errors). */
int sb_sweep_run(const sb_sweep *sw, size_t i, const sb_sweep_run_opts *o);

/* Record that run `i` failed at run time: <output_dir>/<prefix>_<i>.failed (text, written
 * atomically) holds `message` on its first line, then the run's overrides (so a changed sweep
 * definition does not inherit it). The summary shows such a run with status "failed"; running
 * the sweep again retries it. Errors: SB_EIO, SB_ENOMEM. */
int sb_sweep_mark_failed(const sb_sweep *sw, size_t i, const char *message);

/* 1 if run `i` has a failure marker written for its current overrides (*message, may be NULL:
 * the error text, new, sb_free), else 0. A complete run file takes precedence over it. */
int sb_sweep_run_failed(const sb_sweep *sw, size_t i, char **message);

/* Statistics of one population of a run, from its output file with analysis/ (sb_spk_open,
 * sb_stats_summarize over [0, t_stop]). */
typedef struct {
  char *name;          /* population (owned) */
  uint64_t n;          /* neurons */
  uint64_t spikes;     /* spikes stored */
  double rate;         /* Hz: spikes / (n * t_stop) (silent neurons count) */
  double cv;           /* mean ISI CV over neurons with >= 3 spikes (sb_stats_cv); NaN if none */
} sb_sweep_pop_stats;

/* Read a complete run file's statistics: `*st` (n_pops entries, new; free with
 * sb_sweep_stats_free). Errors: SB_EFORMAT if the file lacks the /sweep group; reader errors. */
int sb_sweep_run_stats(const char *run_file, sb_sweep_pop_stats **st, size_t *n_pops);
void sb_sweep_stats_free(sb_sweep_pop_stats *st, size_t n_pops);

/* Write <output_dir>/summary.csv and summary.h5 (both atomically) from the run files present:
 * one row per run with index, complete (0/1), status ("complete", "failed": a failure marker,
 * "todo": neither), the swept values (JSON strings as their plain text), per population spikes,
 * rate_Hz, cv (populations of the first complete run; empty / NaN for incomplete runs), the run
 * file and the error of a failed run. HDF5: /index (int64), /complete (uint8), /status and
 * /error (strings), /params/<PATH> (float64, or strings when a value is not a number),
 * /stats/<pop>/{spikes (uint64), rate (float64, Hz), cv (float64)}, root
 * attributes sweep_file, base, mode. `*n_complete` (may be NULL) gets the complete runs.
 * Errors: SB_EIO, SB_ENOMEM, reader errors of a run file. */
int sb_sweep_write_summary(const sb_sweep *sw, size_t *n_complete);


/* ---- checkpoints (sim/checkpoint.c; docs/clusters.md) ---- */

/* Window hook: called by the master thread between two windows of sb_net_run, when every
 * neuron has been processed and the window's spikes delivered (a state from which the run
 * continues bit-identically). Return a status (non-zero aborts the run); set *stop = 1 to end
 * the run early (sb_net_run then returns SB_OK with sb_net_time < t_stop and
 * sb_net_stopped = 1). With a hook set, each window costs one more thread barrier (only the
 * windows it asks for with sb_net_set_window_hook_due). */
typedef int (*sb_net_window_fn)(void *ctx, sb_net *net, int *stop);
void sb_net_set_window_hook(sb_net *net, sb_net_window_fn fn, void *ctx);
/* Optional, after sb_net_set_window_hook: due(ctx, t) is asked by the master thread at the end of
 * every window (t = its end, ms); the hook and its barrier run only after windows where it returns
 * non-zero. Must be cheap and must not touch the network. */
void sb_net_set_window_hook_due(sb_net *net, int (*due)(void *ctx, double t));
/* 1 if the last sb_net_run was ended early by the window hook. */
int sb_net_stopped(const sb_net *net);

/* What a checkpoint needs to rebuild its network: the model file and --set overrides. */
typedef struct {
  char *model_file;    /* owned */
  char **set;          /* (n_set) "PATH=VALUE", owned */
  int n_set;
  uint64_t seed;
  double t;            /* ms, time of the checkpoint */
  double t_stop;       /* ms, the run's end */
  char *model_id;      /* owned, optional (NULL): the model file's fingerprint when the run started
                        * ("crc32 <hex>, <bytes> bytes"), compared on resume */
  char *output;        /* owned, optional (NULL): the output file of the run that wrote it (absolute),
                        * where a resume without -o writes */
  char *checkpoint;    /* owned, optional (NULL): the run's checkpoint file (absolute; --checkpoint) */
  double every;        /* ms, the run's --checkpoint-every (0: only on a signal); a resume keeps both */
} sb_checkpoint_info;

/* Write the full run-time state of `net` to `path` atomically (sb_h5_create/commit), from
 * inside a window hook or after sb_net_run returned: neuron states and lazy-update times,
 * in-flight events of every window slot, stimulus cursors, Poisson next times and RNG states
 * (gsl_rng_state bytes), spike counters and ISI sums, recorder positions, window index and time.
 * The recordings so far are flushed to the attached output and copied into the checkpoint in
 * the SONATA layout (/spikes/<pop>/..., /report/...), so `analyze` reads a checkpoint too.
 * State is stored as the engine's bytes: resume with the same build on the same architecture.
 * Errors: SB_EINVAL (no output attached, not prepared), SB_EIO, SB_ENOMEM. */
int sb_net_checkpoint_write(sb_net *net, const char *path, const sb_checkpoint_info *info);
/* Read a checkpoint's info (caller frees with sb_checkpoint_info_free).
 * Errors: SB_EIO, SB_EFORMAT ("<file>: not a spikebridge checkpoint"). */
int sb_checkpoint_read_info(const char *path, sb_checkpoint_info *info);
void sb_checkpoint_info_free(sb_checkpoint_info *info);
/* Restore a checkpoint into `net`, freshly built from the same model file and overrides, with
 * its output attached (sb_net_attach_output): the recordings of the checkpoint are written to
 * the output first, then sb_net_run(net, t_stop) continues as the interrupted run would have.
 * Thread counts may differ. Errors: SB_EFORMAT naming the dataset when the network does not
 * match (neuron, stimulus or recording counts, window), SB_EIO, SB_ENOMEM. */
int sb_net_checkpoint_restore(sb_net *net, const char *path);
/* SB_OK when the checkpoint at `path` matches the digest written with it (a CRC-32 over its root
 * attributes and all its datasets); SB_EFORMAT naming both digests when it was edited or
 * corrupted after writing, or when it has none. Call after sb_net_checkpoint_restore, whose
 * checks name what is wrong where they can. */
int sb_checkpoint_verify(const char *path);


/* ---- MPI ranks (sim/mpi.c; `make MPI=1`; docs/clusters.md) ---- */

/* Initialise MPI (MPI_THREAD_SERIALIZED) if built with it and not yet initialised; a no-op
 * otherwise. Networks allocated afterwards are split over the ranks: with R ranks and T threads
 * each, the network has R*T partitions (contiguous neuron-id blocks); rank r owns partitions
 * [rT, (r+1)T), builds only the synapses targeting them and processes only their neurons; each
 * window's spikes are exchanged with MPI_Allgatherv. Spikes are bit-identical to a 1-rank run
 * with R*T threads, hence (thread invariance) to any split. Errors: SB_EMPI. */
int sb_mpi_init(int *argc, char ***argv);
void sb_mpi_finalize(void);
/* This process's rank and the number of ranks (0 and 1 without MPI or before sb_mpi_init). */
int sb_mpi_rank(void);
int sb_mpi_size(void);
/* 1 if built with MPI (make MPI=1). */
int sb_mpi_built(void);
/* on = 0: networks allocated afterwards stay whole in their process (each rank runs its own
 * simulations, e.g. the runs of a sweep); default 1 (split over the ranks). */
void sb_mpi_set_split(int on);
/* MPI_Barrier over all ranks (a no-op with one rank). */
void sb_mpi_barrier(void);
/* v[0..n) summed over all ranks, in place on every rank (MPI_Allreduce; a barrier too; a no-op
 * with one rank). */
void sb_mpi_sum_counts(uint64_t *v, int n);
/* The network's rank and rank count (fixed at sb_net_alloc). */
int sb_net_rank(const sb_net *net);
int sb_net_ranks(const sb_net *net);
/* Spike bytes this rank received in exchanges so far and the number of exchanged windows. */
void sb_net_mpi_stats(const sb_net *net, uint64_t *bytes, uint64_t *windows);

#endif
