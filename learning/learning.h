/* What changes weights: STDP rules (engine side); losses and optimizers (ANN side). */
#ifndef SB_LEARNING_H
#define SB_LEARNING_H
#include "sim/core.h"
#include "sim/sim.h"

/* ======================================================================================
 * ANN side: losses and optimizers (sb_loss_*, sb_opt_*). Plain float32 arrays; each loss
 * returns the mean loss (double) and writes the gradient of that mean w.r.t. its input.
 * ====================================================================================== */

/* Softmax cross-entropy on logits (N, C) with integer labels (N) in 0..C-1, mean over N.
 * dlogits (N, C) = (softmax(logits) - onehot) / N (may be NULL). `correct` (may be NULL)
 * receives the count of rows whose argmax equals the label.
 * Source: torch.nn.CrossEntropyLoss (log-sum-exp shifted by the row maximum). */
double sb_loss_softmax_xent(float *dlogits, const float *logits, const int *labels, int N, int C, int *correct);
/* The same with label smoothing eps in [0, 1): targets (1 - eps) onehot + eps / C, so
 * l = (1 - eps) (lse - z_y) + eps (lse - mean_c z_c) and dlogits = (softmax - target) / N.
 * eps = 0 is exactly sb_loss_softmax_xent. Source: torch.nn.CrossEntropyLoss(label_smoothing=eps)
 * (Szegedy et al. 2016, "Rethinking the Inception architecture", section 7). */
double sb_loss_softmax_xent_ls(float *dlogits, const float *logits, const int *labels, int N, int C, double smoothing,
                               int *correct);

/* Binary cross-entropy with logits, mean over n: l = max(z,0) - z t + log(1 + exp(-|z|)),
 * targets t in [0,1]; dz = (sigmoid(z) - t) / n (may be NULL).
 * Source: torch.nn.BCEWithLogitsLoss (the numerically stable form). */
double sb_loss_bce_logits(float *dz, const float *z, const float *t, size_t n);

/* Binary cross-entropy on probabilities p in [0,1], mean over n, logs clamped at -100 as
 * torch.nn.BCELoss does: l = -(t log p + (1-t) log(1-p)); dp = (p - t) / (p (1-p)) / n with
 * the denominator floored at 1e-12. */
double sb_loss_bce(float *dp, const float *p, const float *t, size_t n);

/* Mean squared error over n values: l = mean((y - t)^2); dy = 2 (y - t) / n (may be NULL).
 * Source: torch.nn.MSELoss(reduction="mean"). */
double sb_loss_mse(float *dy, const float *y, const float *t, size_t n);

typedef enum { SB_OPT_SGD = 0, SB_OPT_ADAM, SB_OPT_ADAMW } sb_opt_kind;

/* An optimizer over one flat parameter buffer of n floats (llm.c): its state (momentum, or
 * Adam's m and v) has the same layout as the parameters. */
typedef struct {
  sb_opt_kind kind;
  size_t n;
  double lr;            /* learning rate (the schedule changes it between steps) */
  double momentum;      /* SGD: heavy-ball momentum mu (0 = plain SGD) */
  double beta1, beta2;  /* Adam: 0.9, 0.999 */
  double eps;           /* Adam: 1e-8 */
  double weight_decay;  /* SGD and Adam: L2 added to the gradient (torch); AdamW: decoupled */
  long t;               /* steps taken */
  float *m;             /* (n) SGD momentum buffer, or Adam first moment; owned */
  float *v;             /* (n) Adam second moment (NULL for SGD); owned */
} sb_opt;

/* Allocate an optimizer for n parameters with torch's defaults for the kind (lr 1e-3 for Adam,
 * 1e-2 for SGD, momentum 0, betas 0.9/0.999, eps 1e-8, no weight decay); the caller then sets
 * fields. Ownership: sb_opt_free. Returns NULL with SB_ENOMEM set on failure. */
sb_opt *sb_opt_alloc(sb_opt_kind kind, size_t n);
void sb_opt_free(sb_opt *o);
/* Parse "sgd", "adam", "adamw"; -1 if unknown. */
int sb_opt_kind_parse(const char *name);

/* One update of params (n) from grads (n), exactly as torch.optim.SGD / Adam / AdamW (1.13):
 *   SGD:   g += wd p; b = mu b + g (b = g on the first step); p -= lr b
 *   Adam:  g += wd p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *          p -= lr m / (1-b1^t) / (sqrt(v / (1-b2^t)) + eps)
 *   AdamW: p *= 1 - lr wd, then Adam without the L2 term.
 * OpenMP over the buffer. */
void sb_opt_step(sb_opt *o, float *params, const float *grads);

/* Learning rate for `epoch` (0-based) of `epochs`: "none" lr0; "cosine"
 * lr0 (1 + cos(pi epoch / epochs)) / 2 (torch CosineAnnealingLR with eta_min 0, per epoch);
 * "step" lr0 gamma^floor(epoch / step_epochs) (torch StepLR). Unknown names give lr0. */
double sb_lr_schedule(const char *kind, double lr0, int epoch, int epochs, double gamma, int step_epochs);

/* ======================================================================================
 * Engine side: STDP rules (sb_stdp_*) -- added by the plasticity issue below this line.
 * ====================================================================================== */

/* ---- STDP (engine side) ----------------------------------------------------------------
 * Spike-timing-dependent plasticity with NEST's models, names, parameters and units, computed
 * exactly event-driven: every trace is kept as its value just after its last jump plus the
 * time of that jump, and decays by exp(-dt/tau) only when it is read, so the result does not
 * depend on any time step.
 *
 * Delay convention (NEST stdp_synapse, Morrison et al. 2007/2008): the whole synaptic delay d
 * is DENDRITIC. A presynaptic spike emitted at t_pre is at the synapse at t_pre (axonal delay
 * 0) and reaches the soma at t_pre + d; a postsynaptic spike at t_post reaches the synapse at
 * t_post + d (back-propagation along the dendrite). The STDP window is therefore a function of
 *     Delta = (t_post + d) - t_pre     (> 0: potentiation, < 0: depression),
 * and all times below are "synapse times". At a tie Delta == 0 the post spike potentiates with
 * the pre trace of the earlier pre spikes and does not depress (NEST: get_history is (t1, t2],
 * get_K_value is strictly before).
 *
 * Lazy update (NEST): a synapse is touched only when its presynaptic spike is processed
 * (sb_stdp_pre). It then applies, in time order, the potentiation of every postsynaptic
 * arrival since its last update (from the postsynaptic spike history, sb_stdp_post), then the
 * depression of the new pre spike, then updates its pre traces. sb_stdp_sync applies pending
 * potentiation up to a time without a pre spike (weight snapshots, trimming the history).
 * The order of weight changes equals processing every pre spike and post arrival in time order.
 *
 * Models (sb_stdp_params.model):
 *  SB_STDP_PAIR (NEST stdp_synapse; Gütig et al. 2003 weight dependence, van Rossum 2000):
 *    potentiation  w -> min(Wmax, Wmax (w/Wmax + lambda (1 - w/Wmax)^mu_plus K+))
 *    depression    w -> max(0,    Wmax (w/Wmax - alpha lambda (w/Wmax)^mu_minus K-))
 *    mu = 0: additive (Song, Miller & Abbott 2000, with hard bounds [0, Wmax]);
 *    mu = 1: multiplicative (soft bounds, van Rossum et al. 2000).
 *    K+ (pre trace, tau_plus) and K- (post trace, tau_minus) follow the pairing scheme:
 *      SB_STDP_ALL_TO_ALL (stdp_synapse): every pre/post pair; traces jump by +1.
 *      SB_STDP_NN_SYMM (stdp_nn_symm_synapse, Morrison 2008 Fig. 7A): each post spike pairs
 *        with the nearest preceding pre spike and each pre spike with the nearest preceding
 *        post spike (traces reset to 1 instead of jumping by 1).
 *      SB_STDP_NN_RESTR (stdp_nn_restr_synapse, Fig. 7C): as NN_SYMM, but a pair counts only
 *        if no spike of either kind lies between its two spikes (potentiation only by the
 *        first post arrival after a pre spike, depression only if a post arrival came after
 *        the previous pre spike).
 *  SB_STDP_TRIPLET (NEST stdp_triplet_synapse, all-to-all; Pfister & Gerstner 2006 eq. 3-4):
 *    at a post arrival  w -> min(Wmax, w + r1 (Aplus + Aplus_triplet o2))
 *    at a pre spike     w -> max(0,    w - o1 (Aminus + Aminus_triplet r2))
 *    with pre traces r1 (tau_plus), r2 (tau_plus_triplet = tau_x) and post traces o1
 *    (tau_minus), o2 (tau_minus_triplet = tau_y), each read just before its own jump.
 *    Weight bounds act on |w| (NEST: negative weights keep their sign).
 * ---------------------------------------------------------------------------------------- */

enum { SB_STDP_PAIR = 0, SB_STDP_TRIPLET = 1 };
enum { SB_STDP_ALL_TO_ALL = 0, SB_STDP_NN_SYMM = 1, SB_STDP_NN_RESTR = 2 };

/* Parameters of one plastic projection (NEST names; times in ms, weights in the synapse's
 * weight unit). Defaults are NEST 3's (sb_stdp_defaults). */
typedef struct {
  int model;                 /* SB_STDP_PAIR or SB_STDP_TRIPLET */
  int pairing;               /* SB_STDP_ALL_TO_ALL / NN_SYMM / NN_RESTR (pair model only) */
  double tau_plus;           /* ms, pre trace r1; 20 (pair), 16.8 (triplet) */
  double tau_minus;          /* ms, post trace o1; 20 (a neuron parameter in NEST) */
  double lambda;             /* pair: learning rate, 0.01 */
  double alpha;              /* pair: depression / potentiation ratio, 1 */
  double mu_plus, mu_minus;  /* pair: weight dependence exponents, 1 and 1 (0: additive) */
  double Wmax;               /* upper bound of |w|, 100 */
  double tau_plus_triplet;   /* ms, triplet pre trace r2 (tau_x), 101 */
  double tau_minus_triplet;  /* ms, triplet post trace o2 (tau_y), 110 (neuron param in NEST) */
  double Aplus, Aminus;      /* triplet pair terms, 5e-10 and 7e-3 */
  double Aplus_triplet, Aminus_triplet; /* triplet terms, 6.2e-3 and 2.3e-4 */
} sb_stdp_params;

/* Per-synapse state (40 bytes): the weight and the presynaptic traces just after the last
 * pre spike. NEST keeps the same per synapse (Kplus_, Kplus_triplet_, t_lastspike_). */
typedef struct {
  double w;          /* weight */
  double Kplus;      /* r1 just after the last pre spike (NN_RESTR: 0 once consumed) */
  double Kplus_triplet; /* r2 just after the last pre spike */
  double t_last;     /* last pre spike, synapse time ms; -INFINITY before the first */
  double t_done;     /* post arrivals with synapse time <= t_done are applied */
} sb_stdp_syn;
/* Bytes a plastic synapse needs beyond a static one's, for the up-front size checks: its state and
 * the arrays its weight is written from at the end (uint32 source and target, double delay and
 * weight; sb_stdp_write_weights). */
#define SB_STDP_SYN_EXTRA_BYTES ((double)sizeof(sb_stdp_syn) + 2 * sizeof(uint32_t) + 2 * sizeof(double))

/* One postsynaptic spike of the history, with the post traces just after it. */
typedef struct { double t, Kminus, Kminus_triplet; } sb_stdp_hist;

/* The postsynaptic side of one neuron: its spike history (post time, not shifted by d). */
typedef struct {
  sb_stdp_hist *h;   /* (cap) entries [head, n) are live; owned */
  size_t head, n, cap;
} sb_stdp_post;

/* Fill `p` with NEST's defaults for `model` (stdp_synapse: tau_plus 20, lambda 0.01, alpha 1,
 * mu_plus 1, mu_minus 1, Wmax 100, all-to-all; stdp_triplet_synapse: tau_plus 16.8,
 * tau_plus_triplet 101, Aplus 5e-10, Aminus 7e-3, Aplus_triplet 6.2e-3, Aminus_triplet 2.3e-4,
 * Wmax 100; neuron side tau_minus 20, tau_minus_triplet 110). */
void sb_stdp_defaults(sb_stdp_params *p, int model);

/* Set one parameter by its NEST name (the names above, and "pairing" for 0/1/2).
 * Time constants must be > 0, Wmax > 0, lambda/alpha/A* >= 0, mu_* >= 0, all finite.
 * Each rule takes its own parameters only (NEST's per-model sets): the pair rules tau_plus,
 * tau_minus, lambda, alpha, mu_plus, mu_minus, Wmax; the triplet rules tau_plus, tau_minus,
 * Wmax, tau_plus_triplet (alias tau_x), tau_minus_triplet (tau_y), Aplus, Aminus,
 * Aplus_triplet, Aminus_triplet; the triplet rules take pairing 0 or 1 only.
 * Errors: SB_EINVAL "<key>: must be > 0 (got -2)", "<key>: unknown parameter of
 * stdp_synapse" or "Aplus: is a parameter of stdp_triplet_synapse ..., not of stdp_synapse";
 * the caller prefixes the file and JSON path. `p` is unchanged on error. */
int sb_stdp_set_param(sb_stdp_params *p, const char *key, double value);

/* Model by NEST synapse model name: "stdp_synapse" (all-to-all), "stdp_nn_symm_synapse",
 * "stdp_nn_restr_synapse", "stdp_triplet_synapse". Fills defaults. Errors: SB_EINVAL naming
 * the unknown name and the known ones. */
int sb_stdp_model_parse(const char *name, sb_stdp_params *p);
/* The NEST name of p's model and pairing. Static storage. */
const char *sb_stdp_model_name(const sb_stdp_params *p);

/* A synapse at weight w with no spike seen yet. */
void sb_stdp_syn_init(sb_stdp_syn *s, double w);

/* Post side: init (empty, no allocation), free. */
void sb_stdp_post_init(sb_stdp_post *post);
void sb_stdp_post_free(sb_stdp_post *post);
/* Record a postsynaptic spike at post time t (ms, non-decreasing): appends (t, K-, K-_triplet)
 * with the all-to-all traces just after the spike. Errors: SB_ENOMEM. */
int sb_stdp_post_spike(const sb_stdp_params *p, sb_stdp_post *post, double t);
/* Drop history entries no longer needed by any synapse whose updates all lie after synapse
 * time `t_keep` - d (pass t_keep = min over synapses of t_done - d): keeps every entry with
 * t > t_keep and the latest one at or before it (it carries the traces). No allocation. */
void sb_stdp_post_trim(sb_stdp_post *post, double t_keep);

/* Process a presynaptic spike emitted at t_pre (ms, synapse time) on synapse `s` with
 * dendritic delay d (ms) and postsynaptic history `post`: potentiation by every post arrival
 * (t_post + d) in (t_done, t_pre], then depression with the post trace at t_pre (arrivals
 * strictly before), then the pre traces jump. Returns the new weight, which is the weight the
 * spike transmits (NEST). Requires post spikes up to t_pre - d to be in `post`, and pre
 * spikes of one synapse in non-decreasing order. Source: NEST stdp_synapse.h,
 * stdp_nn_symm_synapse.h, stdp_nn_restr_synapse.h, stdp_triplet_synapse.h, send(). */
double sb_stdp_pre(const sb_stdp_params *p, sb_stdp_syn *s, const sb_stdp_post *post, double t_pre, double d);

/* Apply the potentiation of post arrivals in (t_done, T] (synapse time) without a pre spike,
 * so that s->w is the weight at time T; t_done = T. Only valid when no pre spike of this
 * synapse at or before T is still unprocessed. Returns the weight. */
double sb_stdp_sync(const sb_stdp_params *p, sb_stdp_syn *s, const sb_stdp_post *post, double T, double d);
/* The same weight without changing the synapse (for snapshots). */
double sb_stdp_weight_at(const sb_stdp_params *p, const sb_stdp_syn *s, const sb_stdp_post *post, double T, double d);

/* ---- plastic projections in the engine (implemented in sim/plastic.c) ----
 * A plastic projection is a sparse projection whose synapses carry an sb_stdp_syn each (stored
 * on the target's side beside the CSR target index and delay, partitioned by owning thread) and
 * whose target neurons keep a postsynaptic spike history. The engine updates a synapse when it
 * delivers a presynaptic spike (end of the spike's window, on the thread owning the target;
 * post spikes up to t_pre - d are then known since d >= the window), then queues an event
 * with the new weight arriving at t_pre + d. Post histories are synced and trimmed every
 * 500 ms of simulated time. sb_net_reset keeps the learned weights and clears traces and
 * histories (time restarts at 0). Deterministic for any thread count (per-synapse order is
 * time order; no synapse is touched by two threads). */

/* Connect like sb_net_connect (any rule but one_to_one and the dense/conv kinds), with STDP
 * `stdp` on every synapse; initial weights from `syn` (stored as float by the connector, then
 * double). Initial weights must lie in [0, Wmax] (NEST stdp_synapse: weight and Wmax have the
 * same sign; Wmax > 0 here): checked on a constant, explicit weights and uniform/normal_clipped
 * bounds before connecting ("weight: 1.5 is above Wmax = 1", "weight.max: ...", "weights[i]:
 * ...", "receptor: ..."), on every drawn weight after ("weight: drawn weight ... (source s ->
 * target t) is above Wmax = ..."; the projection is then removed again, the network is as
 * before). Errors: those of sb_net_connect; SB_EINVAL for one_to_one and the weights; SB_ENOMEM. */
int sb_stdp_connect(sb_net *net, int src, int tgt, const sb_conn_spec *conn, const sb_syn_spec *syn,
                    const sb_stdp_params *stdp, int *proj);
/* 1 if projection `proj` is plastic, else 0. */
int sb_stdp_is_plastic(const sb_net *net, int proj);
/* The synapses of a plastic projection in storage order (n = sb_net_proj_synapses): local
 * source and target ids, delay (ms), and the weight at the current time (including the
 * potentiation of post spikes that reached the synapse by then). Any output may be NULL.
 * Errors: SB_EINVAL if `proj` is not plastic. */
int sb_stdp_get_synapses(const sb_net *net, int proj, uint32_t *src, uint32_t *tgt, double *delay, double *w);
/* Set the weights (storage order, n values) of a plastic projection at the current time, e.g.
 * to restore or normalise them: potentiation by post arrivals up to now is taken as included
 * (as in the weights sb_stdp_get_synapses reports), traces are kept. */
int sb_stdp_set_weights(sb_net *net, int proj, const double *w);
/* Keep a snapshot of all weights of `proj` at t = 0, interval, 2 interval, ... (< t_stop of
 * each run), each taken after every pre spike at or before the snapshot time and before any
 * later one. interval > 0 ms. Errors: SB_EINVAL. The snapshots live in memory until the end of
 * a run: sb_net_run refuses (SB_EINVAL "projections[i].record_weights.interval: ... bytes ...",
 * before running) when ceil(t_stop/interval)+1 rows of (synapses+1) doubles, over all plastic
 * projections, do not fit in the memory this process may use (sb_mem_limit) beside the network. */
int sb_stdp_record_weights(sb_net *net, int proj, double interval);
/* Snapshots kept so far: w (n_times, n_syn) row-major, snapshot j taken at j * interval ms.
 * Borrowed, valid until the next run or reset. Errors: SB_EINVAL if `proj` is not plastic. */
int sb_stdp_snapshots(const sb_net *net, int proj, const double **w, size_t *n_times, double *interval);
/* Write every plastic projection to `file` as /weights/<index> with attributes source, target
 * (population names), synapse_model and its parameters, and datasets source_node_ids,
 * target_node_ids (uint64), delay (float64 ms), weight (float64, at the current time) and, with
 * snapshots, snapshot_times (float64 ms) and snapshots (n_times, n_syn) float64. Synapses
 * come in partition order. Under MPI this is collective: every rank calls it, rank 0 gathers
 * the other ranks' synapses and writes, the others pass file = -1.
 * Errors: SB_EIO, SB_ENOMEM, SB_EMPI. */
int sb_stdp_write_weights(const sb_net *net, hid_t file);

/* ---- adaptive threshold (homeostasis; Diehl & Cook 2015) ----
 * theta (mV) is added to the neuron's threshold: V_th_eff = V_th + theta. Between spikes it
 * decays exactly, theta(t + dt) = theta(t) exp(-dt / tau_theta); at every spike of the neuron
 * theta += theta_plus. Diehl & Cook 2015 (and their Brian code): theta_plus = 0.05 mV,
 * tau_theta = 1e7 ms; during testing theta is frozen (tau_theta = INFINITY, theta_plus = 0). */
typedef struct {
  double theta_plus;   /* mV added per spike, 0.05 */
  double tau_theta;    /* ms, decay time constant, 1e7; INFINITY: no decay */
} sb_theta_params;

/* theta after dt >= 0 ms without spikes (exact exponential decay; no decay for tau = INF). */
double sb_theta_decay(const sb_theta_params *p, double theta, double dt);
/* theta just after a spike. */
double sb_theta_spike(const sb_theta_params *p, double theta);

#endif
