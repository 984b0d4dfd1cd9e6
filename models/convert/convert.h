/* ANN -> SNN conversion (rate-based: Diehl et al. 2015, Rueckauer et al. 2017, Bu et al. 2022),
 * the converted-network file (HDF5), and the two backends that run it: a clocked batch backend
 * (time-stepped, many images at once, OpenMP, sparse spike propagation) and the event-driven
 * engine of sim/. docs/convert.md is the user's guide and documents the file format.
 * Deliberately not here: training (models/ann), the engine itself (sim/).
 * This header includes neither models/ann/ann.h nor sim/sim.h, so either may be used with it. */
#ifndef SB_CONVERT_H
#define SB_CONVERT_H
#include "sim/core.h"

#include <stddef.h>
#include <stdint.h>

/* ---- the converted network ---- */

/* Kinds of converted layers ("dense", "conv", "avgpool", "maxpool" in the file). */
typedef enum {
  SB_CONVERT_DENSE = 0,   /* dense projection, weight (OUT, IN) */
  SB_CONVERT_CONV,        /* convolution kernel projection, weight (OC, C, K, K) */
  SB_CONVERT_AVGPOOL,     /* fixed-weight projection: every input of a K x K window, weight pool_w */
  SB_CONVERT_MAXPOOL,     /* spike gate: passes the spikes of the window's most active input */
  SB_CONVERT_NKINDS
} sb_convert_kind;

/* One layer of integrate-and-fire neurons (or, for maxpool, of gates) and the projection that
 * feeds it. Shapes are per sample: rank 3 (C, H, W) in NCHW order, or rank 1 (features) with
 * h = w = 1. Neuron ids in files and recordings are flat NCHW indices. */
typedef struct {
  sb_convert_kind kind;
  char name[40];          /* population name: "l0_conv", "l1_avgpool", ..., "out_dense" */
  int in_rank, in_c, in_h, in_w;
  int out_rank, out_c, out_h, out_w;
  int k, stride, pad;     /* conv and pools */
  float *w;               /* dense (OUT, IN) or conv (OC, C, K, K): normalised weights; owned */
  float *b;               /* (OUT) dense or (OC) conv: normalised bias = constant input current
                           * per step (threshold units per ms); NULL for pools; owned */
  float pool_w;           /* avgpool: lambda_prev / (lambda * K * K) */
  double threshold;       /* V_th after normalisation (1) */
  double lambda;          /* normalisation factor: the activation (ANN units) that maps to one
                           * spike per step; the clip value for qcfs layers */
  int spiking;            /* 1: IF neurons that spike; 0: output read out by membrane potential */
  int qcfs_levels;        /* > 0 when the layer came from a qcfs activation */
  float *v_shift;         /* (out_c) for rank 3, (features) for rank 1: offset of the initial membrane
                           * per channel, threshold units, added to v_init * threshold at t = 0
                           * (potential calibration, see sb_convert_opts.calib_steps); NULL: none; owned */
  char ann_layers[64];    /* ANN layer indices merged into this layer, "3,4,5" */
} sb_convert_layer;

/* A converted network: everything eval needs. Ownership: sb_convert_net_free frees all. */
typedef struct {
  int n_layers;
  sb_convert_layer *layers;
  int in_c, in_h, in_w;   /* input image (1, 28, 28) in [0, 1] */
  int reset_zero;         /* 0: reset by subtraction (default), 1: reset to zero */
  double v_init;          /* initial membrane potential as a fraction of threshold (0 or 0.5) */
  int readout_spikes;     /* 0: output = argmax of accumulated membrane potential; 1: of spike count */
  char norm[160];         /* "percentile:99.9" or "max", "+pool:inherit,data" with --pool-norm, "+layers:..." */
  int n_norm_samples;     /* training images the normalisation factors were taken from */
  int calib_steps;        /* T the initial membranes were calibrated for (0: not calibrated) */
  char source[256];       /* path of the ANN file */
  char ann_name[64];
  double ann_macs;        /* multiply-accumulates of one ANN forward pass (dense + conv) */
  size_t n_ann_pred;      /* test images the ANN was evaluated on at conversion (0 if not) */
  uint8_t *ann_pred;      /* (n_ann_pred) ANN class per test image, owned */
} sb_convert_net;

void sb_convert_net_free(sb_convert_net *net);

/* Conversion options. */
typedef struct {
  int norm_max;           /* 1: maximum activation; 0: percentile */
  double percentile;      /* 99.9 (Rueckauer et al. 2017) */
  int reset_zero;         /* 0 subtract (default), 1 zero */
  double v_init;          /* -1: default 0.5 (half threshold, Bu et al. 2022); else the fraction (0: classic) */
  int readout_spikes;     /* 0 membrane (default), 1 spike count */
  int n_samples;          /* training images used for normalisation (default 1000, evenly strided) */
  const char *pool_norm;  /* lambda of the avgpool layers, one entry per avgpool layer in order, comma
                           * separated, the last one repeats: "data" (the percentile/max of the pooled
                           * activations, like other layers) or "inherit" (the input's lambda: weight
                           * 1/K^2, the exact average of the input spike counts, never clipped, fewer
                           * spikes). NULL = "data". E.g. "inherit,data". */
  const char *layer_norm; /* per-layer override of the rule above, "I=max|percentile:P,...", I the
                           * converted layer's index (e.g. "0=percentile:99,4=max"); NULL: none.
                           * Why: a layer whose spikes are cheap (small fan-out: into a pool or the
                           * output) can fire more for finer rates at almost no cost. */
  const char *data_dir;   /* Fashion-MNIST directory (NULL: default, see sb_fmnist_dir) */
  int eval_ann;           /* 1: run the ANN on the test set and store its predictions (default) */
  int calib_steps;        /* > 0: calibrate the initial membrane per channel for this T (below) */
  const uint8_t *samples; /* optional (n_given, h, w) images 0..255 used for normalisation instead of
                           * the training set (all of them; tests and hand-made networks) */
  size_t n_given;
  int given_h, given_w;
} sb_convert_opts;

void sb_convert_opts_default(sb_convert_opts *o);

/* Convert the ANN model file `ann_path` (docs/ann.md). ANN layer sequence rules:
 * conv2d|dense [batchnorm] relu|qcfs -> one spiking layer (batchnorm folded into the weights);
 * avgpool -> spiking fixed-weight layer; maxpool -> gate layer; flatten -> nothing (NCHW order
 * is kept); relu after a pool or flatten is the identity on spikes; the last conv2d|dense without
 * activation is the output layer. Weights are normalised layer by layer
 * (W_l' = W_l lambda_{l-1} / lambda_l, b_l' = b_l / lambda_l, threshold 1) with lambda_l the
 * max or p-th percentile of the layer's positive activations over `n_samples` training images
 * (Rueckauer et al. 2017, sec. 2.2), or the clip value for qcfs layers (Bu et al. 2022); avgpool
 * layers use o->pool_norm (SB_EINVAL naming it when malformed).
 * Potential calibration (o->calib_steps = T_c > 0; after Li et al. 2021, "A free lunch from ANN:
 * towards efficient, accurate spiking neural networks calibration", ICML, sec. 4.2): layer by layer,
 * the converted network (earlier layers already calibrated) runs T_c clocked steps on the sample
 * images; for every channel c the deficit T_c * mean(clip(a_c / lambda, 0, 1)) - mean(spikes_c)
 * (the output layer: T_c * mean(a_c / lambda) - mean(V_c(T_c))) becomes the channel's v_shift.
 * A charge given once at t = 0 adds about that many spikes by T_c and its effect fades as 1/T
 * after, unlike a bias correction, which would shift every later step. maxpool gates are not
 * calibrated.
 * Errors: SB_EIO / SB_EFORMAT from loading; SB_EUNSUPPORTED naming the ANN layer index and kind
 * (sigmoid, tanh, leaky_relu, batchnorm not after a linear layer, two linear layers in a row);
 * SB_EINVAL for missing data; SB_ENOMEM. Ownership: caller frees *out. */
int sb_convert_file(sb_convert_net **out, const char *ann_path, const sb_convert_opts *o);

/* Write / read the converted-network file (HDF5, format "spikebridge-snn", docs/convert.md).
 * Save is atomic (temporary name, renamed on success). Load checks every shape and names the
 * file, dataset and expected vs found on error (SB_EFORMAT); SB_EIO if unreadable. */
int sb_convert_save(const sb_convert_net *net, const char *path);
int sb_convert_load(sb_convert_net **out, const char *path);
/* 1 if `path` is an HDF5 file with format "spikebridge-snn". */
int sb_convert_file_is_snn(const char *path);

/* Fan-out (synaptic targets) of an input neuron of layer `L`, summed over all its inputs:
 * synaptic operations per step if every input spiked once. Used for the ANN-vs-SNN comparison. */
double sb_convert_layer_fanout_total(const sb_convert_layer *L);
/* Multiply-accumulates of the ANN layer equivalent to L (conv/dense only, else 0). */
double sb_convert_layer_macs(const sb_convert_layer *L);

/* ---- evaluation ---- */

enum { SB_CODING_CURRENT = 0, SB_CODING_POISSON = 1 };

typedef struct {
  int steps;              /* T, time steps of dt = 1 ms */
  int coding;             /* SB_CODING_CURRENT (analog pixel current, default) or _POISSON */
  uint64_t seed;          /* Poisson streams: (seed, SB_RNG_POISSON, image index) */
  double v_init;          /* < 0: the file's value */
  int batch;              /* images per batch of the clocked backend (default 256) */
  const size_t *record;   /* indices (into the evaluated images) whose spikes are kept, or NULL */
  size_t n_record;
  double delay;           /* event backend: synaptic delay per layer, ms (default 0.1) */
  int threads;            /* event backend threads (0: all) */
  int stat_layer;         /* clocked backend: layer whose per-channel totals go to stat, -1: none */
  double *stat;           /* (out_c or features) caller-zeroed: += spike count after T steps (spiking
                           * layer) or V(T) (membrane readout), summed over images and positions */
  int generic;            /* clocked backend: 1 = portable kernels only, no AVX-512 threshold pass
                           * (same results; tests compare the two) */
} sb_convert_eval_opts;

void sb_convert_eval_opts_default(sb_convert_eval_opts *o);

/* Spikes of one recorded image and layer: times in ms (a spike of step t, t = 1..T, is at t ms;
 * image r of the recorded list is shifted by r * T ms), flat NCHW node ids. */
typedef struct {
  size_t n, cap;
  double *t;
  uint64_t *id;
} sb_convert_spikes;

/* What an evaluation measured, summed over the images. Ownership: sb_convert_result_free. */
typedef struct {
  int steps, n_layers;
  size_t n_images;
  uint64_t *correct;      /* (steps): images classified correctly after step t+1 */
  double *synops;         /* (steps): synaptic operations summed over images up to step t+1 */
  double *spikes;         /* (n_layers): spikes of each layer summed over images (all T steps) */
  double *layer_synops;   /* (n_layers): synaptic operations into layer l (all T steps) */
  double input_macs;      /* per image: analog first-layer MACs (constant-current coding; once) */
  double maxpool_cmp;     /* count comparisons of maxpool gates, summed over images */
  uint8_t *pred;          /* (n_images): class after T steps */
  uint8_t *labels;        /* (n_images) copy */
  double wall;            /* s */
  sb_convert_spikes *rec; /* (n_record * n_layers) or NULL: rec[r * n_layers + l] */
  size_t n_record;
} sb_convert_result;

void sb_convert_result_free(sb_convert_result *r);

/* Clocked backend: dt = 1 ms steps. Each step, layer by layer (a spike reaches the next layer
 * in the same step, as in Rueckauer et al. 2017): V += W s_prev + b; V >= threshold -> spike,
 * V -= threshold (or V = 0). Input: constant current W_1 x + b_1 (computed once per image with
 * BLAS) or Bernoulli spikes with probability x per step. Spikes propagate sparsely (only active
 * inputs' weight rows / kernels are added). OpenMP over the images of a batch.
 * `images` (n, in_h, in_w) bytes 0..255, `labels` (n).
 * Errors: SB_EINVAL (steps < 1, image size mismatch), SB_ENOMEM. */
int sb_convert_eval_clocked(const sb_convert_net *net, const uint8_t *images, const uint8_t *labels,
                            size_t n, const sb_convert_eval_opts *o, sb_convert_result *res);

/* Event backend: the same network on the event-driven engine (sim/sim.h): one if_subtract
 * population per layer (V_th = threshold, I_e = bias per ms, reset by subtraction or to zero),
 * dense projections, convolutions as shared-kernel projections (never expanded), avgpool as an
 * explicit fixed-weight projection, every projection with delay o->delay ms; constant-current
 * input as I_e of the first layer; the membrane-readout output population never spikes
 * (V_th = 1e300) and its V_m is read after every 1 ms. Exact spike times in continuous time.
 * Errors: SB_EUNSUPPORTED for maxpool layers and Poisson coding; as the engine otherwise. */
int sb_convert_eval_event(const sb_convert_net *net, const uint8_t *images, const uint8_t *labels,
                          size_t n, const sb_convert_eval_opts *o, sb_convert_result *res);

/* Write recorded spikes in the SONATA layout: /spikes/<layer name>/timestamps (float64, ms),
 * node_ids (uint64), sorting "by_time"; root magic 0x0A7A, version [0, 1]. Atomic.
 * Errors: SB_EIO. */
int sb_convert_write_spikes(const sb_convert_net *net, const sb_convert_result *r, const char *path);

/* ---- GAN generators ---- */

/* A converted generator run on noise and compared with the ANN generator. */
typedef struct {
  size_t n;               /* noise vectors */
  int steps, n_layers, out;
  double lambda[16];      /* normalisation factor per layer (|activation| percentile; 1 for the output) */
  double mae;             /* mean |SNN - ANN| pixel difference after T steps, pixels in [0, 1] */
  double *mae_t;          /* (steps) the same after every step */
  double *spikes;         /* (n_layers) spikes (+ and -) summed over samples */
  float *snn, *ann;       /* (n, out) images in [0, 1] */
  double wall;            /* s */
} sb_convert_gan_result;

/* Convert the generator of GAN file `gan_path` (dense layers with relu or leaky_relu between
 * them, tanh/sigmoid at the end; the GAN of models/ann) with signed integrate-and-fire neurons:
 * +1 spike at V >= 1 (V -= 1), -1 spike at V <= -1/alpha (V += 1/alpha), so that a LeakyReLU
 * of slope alpha is reproduced in rate (a documented extension of Rueckauer et al. 2017's
 * signed-spike idea). lambda_l = o->percentile of |a_l| over o->n_samples noise vectors
 * (o->norm_max: the maximum); input noise is a constant current; the output integrates
 * W' s + b and the image is tanh(V/t) mapped to [0, 1] (as sb_gan_sample). Runs `n` noise vectors
 * z ~ N(0, 1) from the stream (seed, SB_RNG_NOISE, 0) for `steps` steps of 1 ms (OpenMP over samples).
 * Errors: SB_EIO/SB_EFORMAT loading, SB_EUNSUPPORTED naming the layer, SB_EINVAL, SB_ENOMEM.
 * Ownership: sb_convert_gan_result_free. */
int sb_convert_gan(const char *gan_path, const sb_convert_opts *o, int steps, size_t n, uint64_t seed,
                   sb_convert_gan_result *res);
void sb_convert_gan_result_free(sb_convert_gan_result *r);

#endif
