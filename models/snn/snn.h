/* Reference spiking networks built in C on the engine (sim/). The JSON ones (Brunel, CUBA) are
 * model files beside this header; this header has the networks that need a training loop:
 * the unsupervised Diehl & Cook 2015 network (sb_dc_*). User guide: docs/stdp.md. */
#ifndef SB_SNN_H
#define SB_SNN_H
#include "sim/sim.h"

/* ---- Diehl & Cook 2015 (Front. Comput. Neurosci. 9:99; code github.com/peter-u-diehl/stdp-mnist)
 * n_input Poisson inputs (rate = pixel / 8 * intensity Hz, intensity 2 at first, i.e. at most
 * 63.75 Hz) -> n_exc excitatory iaf_cond_exp_theta neurons (adaptive threshold) through plastic
 * synapses (the paper's rule, stdp_triplet_nn_synapse: at a pre spike w -= nu_pre post1, at a
 * post spike w += nu_post pre post2_before, nearest-spike traces, w in [0, w_max]) whose
 * weights onto each excitatory neuron are rescaled to sum to `norm` before every presentation;
 * excitatory neuron i excites inhibitory neuron i (w_ei), inhibitory neuron i inhibits every
 * excitatory neuron but i (w_ie). One presentation: t_present ms of input, t_rest ms without;
 * if the excitatory layer fired fewer than min_spikes times the image is shown again with the
 * intensity raised by 1 (rates + pixel/8 Hz, up to max_repeats times). Units: ms, mV, nS, Hz. */
typedef struct {
  int n_input, n_exc;         /* 784, 100 */
  double t_present, t_rest;   /* ms, 350 and 150 */
  double intensity;           /* initial intensity, 2 (rate = pixel / 8 * intensity) */
  int min_spikes, max_repeats;/* 5, 10 */
  double w_init_max;          /* initial input weights uniform in [0, w_init_max), 0.3 */
  double w_max;               /* 1 */
  double norm;                /* column sum of the input weights per excitatory neuron, 78 */
  double w_ei, w_ie;          /* nS, 10.4 and 17 */
  double nu_pre, nu_post;     /* 1e-4 and 1e-2 */
  double tau_pre, tau_post1, tau_post2;  /* ms, 20, 20, 40 */
  double theta_plus, tau_theta, theta0;  /* mV, ms, mV: 0.05, 1e7, 20 */
  double theta_offset;        /* mV, 20: threshold -52 - offset + theta (their v_thresh_e, offset) */
  double delay_max;           /* input delays uniform in [d_lat, delay_max) ms, 10 */
  double d_lat;               /* ms, E->I and I->E delay and the engine window, 0.5 */
  uint64_t seed;
  int threads;
} sb_dc_params;

/* Largest excitatory layer sb_dc_alloc accepts (and stdp-train's --neurons / --init). */
#define SB_DC_MAX_NEURONS 4096

/* Diehl & Cook's values (above) for n_exc neurons. */
void sb_dc_defaults(sb_dc_params *p, int n_exc);

typedef struct sb_dc sb_dc;

/* Build the training network into *out (plastic input weights drawn from stream (seed, WEIGHT),
 * thetas theta0). `p` is copied. Errors: SB_EINVAL (bad parameter, named), SB_ENOMEM; *out NULL. */
int sb_dc_alloc(const sb_dc_params *p, sb_dc **out);
void sb_dc_free(sb_dc *dc);

/* Present one image (n_input pixels 0..255), learning unless the network is frozen: normalise,
 * show, rest, repeat with a higher intensity while fewer than min_spikes. counts[n_exc] gets
 * the spikes of each excitatory neuron in the last (accepted) showing; *shown (may be NULL)
 * the number of showings. Errors: the engine's. */
int sb_dc_present(sb_dc *dc, const uint8_t *image, uint32_t *counts, int *shown);

/* Freeze: rebuild the network with static input weights (the current ones, same delays) and
 * thetas held fixed (theta_plus 0, no decay), for labelling and testing (Diehl & Cook's test
 * mode). Errors: SB_ENOMEM. */
int sb_dc_freeze(sb_dc *dc);

/* Current input weights w (n_exc, n_input) row-major (row = excitatory neuron), thetas (n_exc) mV. */
int sb_dc_get_weights(const sb_dc *dc, double *w);
int sb_dc_get_theta(const sb_dc *dc, double *theta);
/* Replace weights (n_exc, n_input) and thetas (n_exc), e.g. from a saved file (before or after
 * training steps; not after freezing). Errors: SB_EINVAL, named: a weight outside [0, w_max], a
 * neuron whose weights are all 0, a theta outside [0, 1e4] mV (NaN included), or frozen. */
int sb_dc_set_state(sb_dc *dc, const double *w, const double *theta);
/* Simulated time, ms, and total showings so far. */
double sb_dc_time(const sb_dc *dc);

/* Rescale each row of w (n_exc, n_input) to sum to `norm` (rows summing to 0 stay 0). */
void sb_dc_normalize(double *w, int n_exc, int n_input, double norm);

/* Label assignment (Diehl & Cook's get_new_assignments): for each class c with examples, the
 * mean response of neuron i over the images of class c; neuron i gets the class with the
 * highest mean (strictly higher wins, so ties go to the lower class), -1 if it never fired.
 * resp (n_img, n_exc) spike counts, labels (n_img) in [0, n_classes). */
void sb_dc_assign(const uint32_t *resp, const uint8_t *labels, size_t n_img, int n_exc, int n_classes, int *assign);
/* Prediction for one response row (n_exc): the class whose assigned neurons have the highest
 * mean count (classes without neurons score 0; ties go to the lower class); -1 if no assigned
 * neuron fired. */
int sb_dc_predict(const uint32_t *resp, const int *assign, int n_exc, int n_classes);
/* Fraction of pred[i] == labels[i] over n (0 for n = 0). */
double sb_dc_accuracy(const int *pred, const uint8_t *labels, size_t n);

#endif
