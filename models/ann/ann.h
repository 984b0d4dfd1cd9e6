/* The ANN side: data sets (IDX / Fashion-MNIST), layers with paired forward/backward, models
 * (one contiguous parameter buffer), HDF5 model files, JSON architectures, training, the GAN.
 * Plain float32 arrays, batch-first, NCHW. Not a general autograd: a model is a plain sequence
 * of layers, as nn.Sequential is. Losses and optimizers live in learning/learning.h. */
#ifndef SB_ANN_H
#define SB_ANN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <hdf5.h>
#include <gsl/gsl_rng.h>

/* ---- IDX files and Fashion-MNIST ---- */

/* Default location of Debian's dataset-fashion-mnist package. */
#define SB_FMNIST_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"

/* An IDX array (LeCun's MNIST format): unsigned bytes only (type code 0x08), as MNIST and
 * Fashion-MNIST use. `dims[0]` is the item count. */
typedef struct {
  int rank;          /* number of dimensions, 1..4 */
  size_t dims[4];    /* extents */
  size_t n;          /* total element count = product of dims */
  uint8_t *data;     /* (dims[0], ..., dims[rank-1]) row-major, owned */
} sb_idx;

/* Read an IDX file, gzip-compressed or raw (zlib detects which).
 * Errors: SB_EIO if it cannot be opened; SB_EFORMAT naming the file and what was expected
 * for a bad magic number, an unsupported type, a rank outside 1..4, a truncated body or
 * trailing bytes. Ownership: `out->data` is the caller's (sb_idx_free). */
int sb_idx_read(const char *path, sb_idx *out);
void sb_idx_free(sb_idx *x);

/* One split of an image classification data set. */
typedef struct {
  size_t n;          /* images */
  int h, w;          /* 28 x 28 for Fashion-MNIST */
  uint8_t *images;   /* (n, h, w) pixel intensities 0..255, owned */
  uint8_t *labels;   /* (n) class 0..9, owned */
  int n_classes;     /* 10 */
} sb_dataset;

/* Class names of Fashion-MNIST (Xiao, Rasul, Vollgraf 2017), index = label. */
extern const char *const sb_fmnist_classes[10];

/* Resolve the data directory: `dir` if non-NULL, else $SB_DATA_DIR, else the Debian path.
 * Returns a pointer to static or caller storage; never NULL. */
const char *sb_fmnist_dir(const char *dir);

/* Load split "train" (60000 images) or "test" (10000) from `dir` (see sb_fmnist_dir), reading
 * "<prefix>-images-idx3-ubyte[.gz]" and "<prefix>-labels-idx1-ubyte[.gz]" with prefix
 * "train" or "t10k". Errors: SB_EINVAL when files are missing (message names the directory and the
 * Debian package), SB_EFORMAT for malformed files, image/label count mismatch, labels >= 10,
 * or images that are not 2-D. Ownership: caller calls sb_dataset_free. */
int sb_fmnist_load(const char *dir, const char *split, sb_dataset *out);
void sb_dataset_free(sb_dataset *d);

/* ==== layers: paired forward and backward (llm.c style) ====
 * Shape letters: N batch, C/H/W input image, OC output channels, OH/OW output image,
 * K kernel (square), S stride, P padding, IN/OUT features. All arrays float32, row-major,
 * batch-first, NCHW. Forward writes `out`; backward writes `dinp` (=, may be NULL when the
 * input gradient is not needed) and ACCUMULATES (+=) parameter gradients. Backward needs only
 * what forward saw (its input, sometimes its output or a cache), nothing else.
 * Matrix products use GSL's CBLAS interface (gsl/gsl_cblas.h) linked against OpenBLAS. */

/* out (N,OUT) = inp (N,IN) . w^T + b;  w (OUT,IN) as torch.nn.Linear.weight, b (OUT) or NULL.
 * Source: torch.nn.Linear. */
void sb_dense_forward(float *out, const float *inp, const float *w, const float *b, int N, int IN, int OUT);
/* dinp (N,IN) = dout . w;  dw (OUT,IN) += dout^T . inp;  db (OUT) += sum_n dout (db may be NULL). */
void sb_dense_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                       const float *w, int N, int IN, int OUT);

/* Geometry of a 2-D convolution (square kernel K, same stride S and zero padding P on both axes).
 * OH = (H + 2P - K)/S + 1, OW likewise (sb_conv_shape_init fills them). */
/* How a convolution is computed. IM2COL: im2col + one sgemm per image (any shape). WINOGRAD:
 * minimal filtering F(2x2, 5x5) (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural
 * Networks", CVPR): 36 sgemm per chunk of 8 images in a 6x6 transformed domain, 2.8x fewer
 * multiplies; only K = 5, S = 1, P <= 4 (other shapes run im2col whatever is asked); fp32 error
 * a few 1e-6 relative to the largest output (docs/ann.md). AUTO: WINOGRAD where it applies and
 * C >= 8 and OC >= 8, else IM2COL. */
typedef enum { SB_CONV_AUTO = 0, SB_CONV_IM2COL, SB_CONV_WINOGRAD } sb_conv_algo;
typedef struct {
  int C, H, W;       /* input channels, height, width */
  int OC, K, S, P;   /* output channels, kernel, stride, padding */
  int OH, OW;        /* output height, width */
  sb_conv_algo algo; /* requested algorithm (sb_conv_shape_init: from SB_CONV_ALGO) */
} sb_conv_shape;
/* Fill OH/OW, and algo from the environment variable SB_CONV_ALGO: "auto" or unset (AUTO),
 * "im2col", "winograd". Errors: SB_EINVAL when the kernel does not fit (OH or OW < 1), a size
 * is < 1, or SB_CONV_ALGO holds another value. */
int sb_conv_shape_init(sb_conv_shape *s, int C, int H, int W, int OC, int K, int S, int P);
/* 1 when s runs the Winograd path (s->algo and the shape, as sb_conv_algo says), else 0. */
int sb_conv2d_uses_winograd(const sb_conv_shape *s);
/* Floats of workspace sb_conv2d_forward/backward need when run with `nthreads` OpenMP threads,
 * enough for either algorithm. im2col: per thread one im2col matrix (C*K*K, OH*OW), a
 * zero-padded copy of one image (C, H+2P, W+2P), one output-sized gradient (OC, OH*OW), and per
 * image group gradient accumulators (OC*C*K*K + OC). Winograd (when the shape allows it): the
 * transformed weights, per group the transformed filter gradient (36*OC*C), per thread the
 * transformed operands of a chunk of 8 images (36*(C+OC)*tiles). */
size_t sb_conv2d_workspace(const sb_conv_shape *s, int nthreads);
/* out (N,OC,OH,OW) = conv(inp (N,C,H,W), w (OC,C,K,K)) + b (OC) (cross-correlation, as
 * torch.nn.Conv2d). im2col + one sgemm per image, or Winograd (sb_conv_algo), OpenMP over fixed
 * image groups (BLAS single-threaded inside): bit-identical for any thread count.
 * `ws` holds sb_conv2d_workspace(s, omp_get_max_threads()) floats. */
void sb_conv2d_forward(float *out, const float *inp, const float *w, const float *b,
                       const sb_conv_shape *s, int N, float *ws);
/* Reference implementation: direct 7-loop convolution, no BLAS (tests, awkward shapes). */
void sb_conv2d_forward_naive(float *out, const float *inp, const float *w, const float *b,
                             const sb_conv_shape *s, int N);
/* dinp (N,C,H,W) = conv^T(dout) (NULL: not computed), dw += ..., db += ... (db may be NULL).
 * Weight and bias gradients are accumulated per fixed group of images and the groups summed in
 * group order (either algorithm): bit-identical for any thread count. */
void sb_conv2d_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, const sb_conv_shape *s, int N, float *ws);
void sb_conv2d_backward_naive(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                              const float *w, const sb_conv_shape *s, int N);

/* Pooling over K x K windows with stride S, no padding: OH = (H-K)/S + 1 (torch floor mode).
 * out (N,C,OH,OW). Average: torch.nn.AvgPool2d; max: torch.nn.MaxPool2d, ties -> first index. */
void sb_avgpool_forward(float *out, const float *inp, int N, int C, int H, int W, int K, int S);
/* dinp (N,C,H,W) = spread of dout over each window (= write, zero outside windows). */
void sb_avgpool_backward(float *dinp, const float *dout, int N, int C, int H, int W, int K, int S);
/* argmax (N,C,OH,OW): flat index h*W+w inside the (H,W) plane of the chosen input; may be NULL. */
void sb_maxpool_forward(float *out, int *argmax, const float *inp, int N, int C, int H, int W, int K, int S);
void sb_maxpool_backward(float *dinp, const float *dout, const int *argmax, int N, int C, int H, int W,
                         int K, int S);

/* Element-wise activations over n values. Backward writes dinp (may alias dout). */
void sb_relu_forward(float *out, const float *inp, size_t n);
void sb_relu_backward(float *dinp, const float *dout, const float *inp, size_t n);
/* out = x > 0 ? x : alpha x (torch.nn.LeakyReLU(negative_slope=alpha)). */
void sb_leaky_relu_forward(float *out, const float *inp, size_t n, float alpha);
void sb_leaky_relu_backward(float *dinp, const float *dout, const float *inp, size_t n, float alpha);
/* Backward of sigmoid and tanh uses forward's OUTPUT. */
void sb_sigmoid_forward(float *out, const float *inp, size_t n);
void sb_sigmoid_backward(float *dinp, const float *dout, const float *out, size_t n);
void sb_tanh_forward(float *out, const float *inp, size_t n);
void sb_tanh_backward(float *dinp, const float *dout, const float *out, size_t n);

/* Clipped and quantised ReLU (QCFS, Bu et al. 2022, "Optimal ANN-SNN conversion for
 * high-accuracy and ultra-low-latency spiking neural networks", ICLR, eq. 12):
 *   out = lambda * clamp(floor(x L / lambda + 1/2) / L, 0, 1)
 * with a trainable threshold lambda (one per layer) and L quantisation levels. An SNN of
 * integrate-and-fire neurons with threshold lambda and initial membrane lambda/2 reproduces it.
 * Backward as the authors' code (github.com/putshua/SNN_conversion_QCFS, MyFloor with a
 * straight-through floor): q = floor(..)/L, m = [0 <= q <= 1];
 *   dinp = dout * m;   dlambda += sum dout * (clamp(q,0,1) - m * x / lambda). */
void sb_qcfs_forward(float *out, const float *inp, size_t n, float lambda, int L);
void sb_qcfs_backward(float *dinp, float *dlambda, const float *dout, const float *inp, size_t n,
                      float lambda, int L);

/* Batch normalisation over (N, HW) per channel C (HW = 1 for a (N,C) dense input), as
 * torch.nn.BatchNorm1d/2d: y = gamma (x - mean) / sqrt(var + eps) + beta.
 * Training form: batch statistics (biased variance), stores mean and invstd (C) for backward,
 * and updates running stats: r = (1-momentum) r + momentum * stat (running_var gets the
 * unbiased variance, as PyTorch). running_* may be NULL. */
void sb_batchnorm_forward_train(float *out, float *mean, float *invstd, float *running_mean,
                                float *running_var, const float *inp, const float *gamma,
                                const float *beta, int N, int C, int HW, float eps, float momentum);
/* Inference form with running statistics. */
void sb_batchnorm_forward_eval(float *out, const float *inp, const float *gamma, const float *beta,
                               const float *running_mean, const float *running_var, int N, int C,
                               int HW, float eps);
/* Backward of the training form: dinp (=), dgamma and dbeta (+=). */
void sb_batchnorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *inp,
                           const float *mean, const float *invstd, const float *gamma, int N, int C, int HW);

/* ==== models: a sequence of layers over one parameter buffer ==== */

typedef enum {
  SB_LAYER_DENSE = 0,
  SB_LAYER_CONV2D,
  SB_LAYER_AVGPOOL,
  SB_LAYER_MAXPOOL,
  SB_LAYER_FLATTEN,
  SB_LAYER_RELU,
  SB_LAYER_LEAKY_RELU,
  SB_LAYER_SIGMOID,
  SB_LAYER_TANH,
  SB_LAYER_QCFS,       /* clipped + quantised ReLU */
  SB_LAYER_BATCHNORM,
  SB_LAYER_NKINDS
} sb_layer_kind;

/* Name used in JSON and HDF5 ("dense", "conv2d", "avgpool", "maxpool", "flatten", "relu",
 * "leaky_relu", "sigmoid", "tanh", "qcfs", "batchnorm"); static storage. */
const char *sb_layer_kind_name(sb_layer_kind k);
/* Inverse; returns -1 for an unknown name. */
int sb_layer_kind_parse(const char *name);

/* Per-sample tensor shape: rank 3 is (C,H,W); rank 1 is (C) features with H = W = 1. */
typedef struct {
  int rank;      /* 1 or 3 */
  int c, h, w;
} sb_shape;
static inline size_t sb_shape_size(sb_shape s) { return (size_t)s.c * (size_t)s.h * (size_t)s.w; }

/* One layer. Parameters are views into the owning model's buffers (never owned here).
 * Parameter layout per kind (this order inside the model's buffer, same as the HDF5 datasets):
 *   dense      weight (OUT, IN), bias (OUT)
 *   conv2d     weight (OC, C, K, K), bias (OC)
 *   batchnorm  weight = gamma (C), bias = beta (C);  state: running_mean (C), running_var (C)
 *   qcfs       threshold lambda (1)
 *   others     none */
typedef struct {
  sb_layer_kind kind;
  sb_shape in, out;          /* per-sample shapes */
  int k, stride, pad;        /* conv2d, avgpool, maxpool: kernel, stride, zero padding (pool: pad 0) */
  float alpha;               /* leaky_relu negative slope (default 0.01) */
  int levels;                /* qcfs: L (default 8) */
  float eps, momentum;       /* batchnorm (defaults 1e-5, 0.1) */
  size_t param_off, n_params;  /* into model->params / model->grads */
  size_t state_off, n_state;   /* into model->state (batchnorm running stats) */
  float *w, *b;              /* views: weight (or gamma, or &lambda), bias (or beta); NULL if none */
  float *dw, *db;            /* views into model->grads */
  float *running_mean, *running_var;  /* views into model->state (batchnorm) */
  sb_conv_shape conv;        /* conv2d geometry */
  /* caches of the last training forward, owned by the model: */
  int *argmax;               /* maxpool (max_batch * out size) */
  float *bn_mean, *bn_invstd;  /* batchnorm (C each) */
} sb_layer;

/* Construction-time description of one layer (what the JSON architecture file gives). Fields
 * that do not apply are ignored; 0 means "default" for k/stride/levels/alpha/eps/momentum. */
typedef struct {
  sb_layer_kind kind;
  int out;          /* dense: OUT features; conv2d: OC */
  int in;           /* dense: expected IN (0 = infer); conv2d: expected C (0 = infer) */
  int k, stride, pad;
  float alpha, eps, momentum;
  int levels;
  float threshold;  /* qcfs initial lambda (default 8) */
} sb_layer_spec;

/* A model: layers, one parameter buffer, one gradient buffer, one state buffer, and the
 * activation workspace for batches up to max_batch (allocated by sb_model_reserve).
 * Ownership: everything below is owned by the model (sb_model_free).
 * Threads: a model's forward/backward use OpenMP inside; one model must not run two passes at
 * once (the workspace is shared). Separate sb_model objects may run in different threads
 * (inside an outer parallel region the inner loops run serially). */
typedef struct {
  int n_layers;
  sb_layer *layers;          /* (n_layers) */
  sb_layer_spec *specs;      /* (n_layers) as given, for saving the architecture */
  sb_shape input;            /* per-sample input shape, (1,28,28) for Fashion-MNIST */
  char *name;                /* "mlp", "cnn", file stem, ... */
  size_t n_params;           /* trainable floats */
  float *params;             /* (n_params): layer 0's weight, bias, layer 1's ... */
  float *grads;              /* (n_params), same layout */
  size_t n_state;
  float *state;              /* (n_state): batchnorm running statistics */
  /* workspace (sb_model_reserve) */
  int max_batch;
  float **acts;              /* acts[i] (max_batch, layers[i].out): output of layer i */
  float *dbuf[2];            /* ping-pong gradient buffers (max_batch * largest tensor) */
  float *conv_ws;            /* shared conv workspace */
  size_t conv_ws_size;
  int nthreads;              /* OpenMP threads the workspace was sized for */
} sb_model;

/* Build a model from layer specs for inputs of shape `input`, inferring each layer's input
 * shape from the previous output. Parameters are zero; call sb_model_init_params.
 * Errors: SB_EINVAL naming the layer index and kind on a shape mismatch
 * ("layer 7 (dense): in: expected 3136 (got 3000)"), a dense layer on a rank-3 input (needs a
 * flatten first), a conv/pool on a rank-1 input, a kernel that does not fit; SB_ENOMEM.
 * `name` is copied. Ownership: caller frees with sb_model_free. */
int sb_model_build(sb_model **out, const char *name, sb_shape input, const sb_layer_spec *specs, int n);
void sb_model_free(sb_model *m);

/* PyTorch's default initialisation (kaiming_uniform(a=sqrt(5)): weight and bias uniform in
 * +-1/sqrt(fan_in)), batchnorm gamma 1 beta 0 running var 1, qcfs lambda from the spec,
 * from the RNG stream (seed, SB_RNG_PARAM, layer index). */
void sb_model_init_params(sb_model *m, uint64_t seed);

/* Allocate activation workspace for batches up to N (no-op if already large enough) and for
 * the current omp_get_max_threads(). Errors: SB_ENOMEM. */
int sb_model_reserve(sb_model *m, int N);
/* Training's smallest footprint for batches of N: weights and gradients, `opt_copies` optimizer
 * copies of the weights (adam 2, sgd 1), the state, and every layer's activations for N samples
 * plus the two backward buffers (float32), against the memory the process may use
 * (sb_mem_limit). SB_EINVAL "batch: ..." naming the layer with the largest activations, or
 * "layers[i]: ..." naming the largest layer when the weights dominate. */
int sb_model_check_train_memory(const sb_model *m, int N, int opt_copies);

/* Forward pass of N samples x (N, input) -> returns the output (N, layers[last].out) in the
 * model's workspace (valid until the next forward). `train` = 1 uses batch statistics in
 * batchnorm (and updates running stats) and stores caches for backward; 0 is inference.
 * Every layer's output stays available as m->acts[i] (sb_model_layer_output).
 * A conv2d -> relu [-> avgpool] sequence runs per image in one pass while the image's output is
 * in cache (forward and backward), bit-identical to running its layers one at a time.
 * Calls sb_model_reserve(m, N) itself; returns NULL only if that fails (SB_ENOMEM set). */
const float *sb_model_forward(sb_model *m, const float *x, int N, int train);
/* Output of layer i after the last forward: (N, layers[i].out), borrowed. */
const float *sb_model_layer_output(const sb_model *m, int i);
/* Backward pass after a training forward of the same x and N: dout is d loss / d output
 * (N, output). Accumulates into m->grads. If dx is non-NULL it receives d loss / d x (N, input)
 * (the GAN's generator needs the discriminator's input gradient). */
void sb_model_backward(sb_model *m, const float *x, const float *dout, int N, float *dx);
/* The same without parameter gradients: only dx (N, input), which must be non-NULL; m->grads is
 * untouched. The GAN's generator step needs the discriminator's input gradient only, so this
 * skips the discriminator's weight-gradient products (PyTorch's autograd computes and discards
 * them there). */
void sb_model_backward_input(sb_model *m, const float *x, const float *dout, int N, float *dx);
void sb_model_zero_grad(sb_model *m);
/* Per-sample output shape. */
sb_shape sb_model_output_shape(const sb_model *m);

/* ==== architecture files (JSON) ====
 * {"name": "cnn", "input": [1, 28, 28],
 *  "layers": [{"kind": "conv2d", "out": 32, "kernel": 5, "stride": 1, "padding": 2}, {"kind": "relu"},
 *             {"kind": "avgpool", "kernel": 2}, ..., {"kind": "flatten"},
 *             {"kind": "dense", "in": 3136, "out": 128}, ...],
 *  "train": {"loss": "cross_entropy", "optimizer": "adam", "lr": 0.001, "batch": 128, "epochs": 10,
 *            "momentum": 0.9, "beta1": 0.9, "beta2": 0.999, "weight_decay": 0, "schedule": "none"}}
 * See docs/ann.md for every key. */

/* Training settings of an architecture file (and the CLI's defaults). */
typedef struct {
  char loss[32];        /* "cross_entropy", "mse", "bce" */
  char optimizer[16];   /* "adam", "sgd" */
  double lr, momentum, beta1, beta2, weight_decay;
  char schedule[16];    /* "none", "cosine", "step" */
  double step_gamma;    /* step schedule: lr *= gamma every step_epochs */
  int step_epochs;
  int batch, epochs;
  char augment[16];     /* "none", "flip", "crop", "flip+crop": random horizontal flip (p 0.5) and/or
                         * random translation by up to crop_padding pixels with zero fill
                         * (torchvision RandomHorizontalFlip, RandomCrop(28, padding=crop_padding)) */
  int crop_padding;     /* default 2 */
  double label_smoothing; /* cross_entropy only: targets (1 - eps) onehot + eps / C (default 0) */
  /* run settings (not from the file): */
  uint64_t seed;        /* parameter init and shuffling streams (default 1) */
  size_t train_limit;   /* use the first n training images (0 = all) */
  size_t test_limit;    /* evaluate on the first n test images (0 = all) */
} sb_train_config;

/* Defaults: cross_entropy, adam, lr 1e-3, betas (0.9, 0.999), momentum 0.9, no weight decay,
 * schedule none, no augmentation (crop_padding 2 when enabled), no label smoothing, batch 128,
 * epochs 10, seed 1, no limits. (The CLI's built-in cnn/mlp recipes add to this.) */
void sb_train_config_default(sb_train_config *c);
/* The recipe of `spikebridge train NAME` for a built-in architecture: the defaults above, plus
 * for "mlp", "cnn", "cnn_maxpool" the cosine schedule; for "mlp_sigmoid" MSE with plain SGD, lr 3.0, batch 10. Unknown names: defaults. */
void sb_train_config_builtin(sb_train_config *c, const char *name);

/* Parse an architecture from JSON text (`what` names the source in messages, e.g. the file).
 * `cfg` (may be NULL) receives the "train" object over the defaults.
 * Errors: SB_EFORMAT for malformed JSON (line and column), SB_EINVAL naming the JSON path
 * ("arch.json: layers[7].in: expected 3136 from the previous layer (got 3000)"). */
int sb_model_from_json(sb_model **out, const char *json, const char *what, sb_train_config *cfg);
/* Same from a file. Errors: SB_EINVAL if it cannot be read (input error), then as above. */
int sb_model_from_json_file(sb_model **out, const char *path, sb_train_config *cfg);
/* The architecture as canonical JSON (every inferred shape filled in); caller sb_free's. */
char *sb_model_to_json(const sb_model *m);
/* Built-in architectures of `spikebridge train`: "mlp", "cnn", "gan_g", "gan_d",
 * "mlp_sigmoid", "cnn_maxpool". Errors: SB_EINVAL for an unknown name. */
int sb_model_builtin(sb_model **out, const char *name);

/* ==== training and evaluation ==== */

/* Copy images idx[0..N-1] of `d` into x (N, h*w) as pixel/255 in [0, 1] (the input scaling of
 * every model here: no mean/std normalisation, so a converted SNN sees plain intensities) and
 * their labels into `labels` (may be NULL). `idx` NULL means images 0..N-1. */
void sb_dataset_batch(const sb_dataset *d, const size_t *idx, int N, float *x, int *labels);

/* Check that `d`'s images fit the model's input (h*w values, one channel) and, for
 * classification, that the output has d->n_classes values. Errors: SB_EINVAL naming both
 * shapes ("data: images are 20x20 but the model expects input (1, 28, 28)"). */
int sb_model_check_data(const sb_model *m, const sb_dataset *d, int classify);

/* Copy images idx[0..N-1] as sb_dataset_batch does, each transformed at random: first a
 * translation by (dy, dx), each uniform in [-pad, pad], with zero fill (the crop of a zero-padded
 * image, torchvision RandomCrop(size, padding=pad)), then, if `flip`, a horizontal mirror with
 * probability 1/2 (RandomHorizontalFlip). Draws per image from `r`: flip bit (if flip), dy, dx
 * (if pad > 0). pad = 0 and flip = 0 give sb_dataset_batch's output. */
void sb_dataset_batch_augment(const sb_dataset *d, const size_t *idx, int N, float *x, int *labels, int flip,
                              int pad, gsl_rng *r);

/* Result of a training run. */
typedef struct {
  int epochs;
  double train_loss, train_acc;   /* last epoch, running mean over its batches; acc in 0..1 */
  double test_loss, test_acc;     /* after the last epoch */
  double seconds;                 /* wall time of all epochs, without evaluation */
  double epoch_seconds_min;       /* fastest epoch (training part only) */
  double samples_per_s;           /* training throughput over all epochs */
} sb_train_result;

/* Train `m` on `train` with `cfg` (loss, optimizer, schedule, batch, epochs, seed, limits):
 * parameters initialised from cfg->seed (sb_model_init_params) unless `keep_params`, each
 * epoch's order shuffled from the stream (seed, SB_RNG_SHUFFLE, epoch), mini-batches (the
 * last one smaller), each training batch augmented per cfg->augment (sb_dataset_batch_augment,
 * draws from the stream (seed, SB_RNG_NOISE, 0x617567 << 32 | epoch)) and, for cross_entropy,
 * label-smoothed per cfg->label_smoothing (sb_loss_softmax_xent_ls), evaluation on `test` (never
 * augmented) after every epoch (may be NULL). A progress line
 * (epoch, batch, loss, accuracy, samples/s) goes to stderr on a terminal unless sb_quiet;
 * one line per epoch goes to `log` (may be NULL). Same seed and thread count => identical
 * parameters. Errors: SB_EINVAL (data shape, unknown loss/optimizer), SB_ENOMEM. */
int sb_ann_train(sb_model *m, const sb_train_config *cfg, const sb_dataset *train, const sb_dataset *test,
                 int keep_params, FILE *log, sb_train_result *res);

/* Classification accuracy (0..1) and mean cross-entropy of `m` (inference mode) on the first
 * `limit` images of `d` (0 = all), in batches of `batch`. loss may be NULL. Errors as
 * sb_model_check_data, SB_ENOMEM. */
int sb_ann_evaluate(sb_model *m, const sb_dataset *d, size_t limit, int batch, double *acc, double *loss);

/* ==== GAN ==== */

/* Result of a GAN run. */
typedef struct {
  int epochs;
  double d_loss, g_loss;      /* last epoch means (BCE with logits) */
  double d_real, d_fake;      /* last epoch mean sigmoid(D(x)) on real / generated images */
  double seconds, epoch_seconds_min;
} sb_gan_result;

/* Train generator g (100 -> 784, tanh) against discriminator d (784 -> 1 logit) on `train`
 * images scaled to [-1, 1] (Goodfellow et al. 2014 with the non-saturating generator loss):
 * per batch one D step on real (target 1) and generated (target 0) images, then one G step
 * with targets 1, both with BCE on logits; Adam with cfg->lr, cfg->beta1 (2e-4, 0.5 by
 * default), noise z ~ N(0,1) from the stream (seed, SB_RNG_NOISE, epoch). Parameters are
 * initialised from cfg->seed unless `keep_params`. One line per epoch to `log`.
 * Errors: SB_EINVAL (shapes), SB_ENOMEM. */
int sb_gan_train(sb_model *g, sb_model *d, const sb_train_config *cfg, const sb_dataset *train, int keep_params,
                 FILE *log, sb_gan_result *res);
/* n generated images (n, out) mapped from tanh's [-1,1] to [0,1], noise from the stream
 * (seed, SB_RNG_NOISE, id). Errors: SB_ENOMEM. */
int sb_gan_sample(sb_model *g, size_t n, uint64_t seed, uint64_t id, float *out);
/* Save/load a GAN file: root format "spikebridge-gan", groups /generator and /discriminator
 * each in the ANN model format. `meta` as sb_model_save. Errors as sb_model_save/load. */
int sb_gan_save(const sb_model *g, const sb_model *d, const char *path, const char *const *meta);
int sb_gan_load(sb_model **g, sb_model **d, const char *path);

/* Frechet distance between Gaussians fitted to two feature sets a (na, dim), b (nb, dim):
 * |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)) (Heusel et al. 2017, "FID"), the
 * matrix square root's trace from the eigenvalues of S_a^(1/2) S_b S_a^(1/2) (GSL
 * gsl_eigen_symmv; both symmetric PSD). Double accumulation. Errors: SB_EINVAL (n < 2), SB_ENOMEM. */
int sb_frechet_distance(const float *a, size_t na, const float *b, size_t nb, int dim, double *fd);
/* Output of layer `layer` of m (inference mode) for n inputs x (n, input), in batches:
 * feats (n, layers[layer].out). Errors: SB_EINVAL bad layer, SB_ENOMEM. */
int sb_model_features(sb_model *m, int layer, const float *x, size_t n, float *feats);

/* Write an 8-bit greyscale PNG (w x h, row-major, 0 black) with zlib (RFC 2083: IHDR, one
 * IDAT with filter 0, IEND). Written atomically (temporary name + rename). Errors: SB_EIO. */
int sb_png_write_gray(const char *path, const uint8_t *pix, int w, int h);

/* The `spikebridge train gan` pipeline (train, save, PNG grid, Frechet distance against a
 * CNN model file if given); prints its summary to stdout. `init` (may be NULL) is a GAN file
 * to continue from (e.g. one exported from PyTorch). Internal to the CLI. */
int sb_gan_cli_(sb_train_config *cfg, const sb_dataset *train, const sb_dataset *test, const char *init,
                const char *out, const char *png, const char *fid_model, int nthreads);

/* ==== model files (HDF5) ====
 * Root attributes: format = "spikebridge-ann", version = 1, name, architecture (JSON string),
 * input_shape (int64 rank 1 or 3), n_layers, n_params; plus any metadata written by
 * sb_model_save's caller (test_accuracy, epochs, seed, ...).
 * /layers/000, /layers/001, ... one group per layer, attributes: kind, activation (the
 * function for activation kinds, "linear" otherwise), in_shape, out_shape (int64), and kind
 * specifics: kernel, stride, padding (conv2d, pools), alpha (leaky_relu), levels (qcfs),
 * eps, momentum (batchnorm). Datasets (float32, PyTorch layouts): weight, bias; batchnorm
 * weight (gamma), bias (beta), running_mean, running_var; qcfs threshold (1). */

/* Save to `path` atomically (temporary name, renamed on success). `meta` (may be NULL) is a
 * NULL-terminated list of {name, value} string pairs written as extra root attributes.
 * Errors: SB_EIO. */
int sb_model_save(const sb_model *m, const char *path, const char *const *meta);
/* Save into an already open file/group `loc` (used by the GAN: /generator, /discriminator). */
int sb_model_save_to(const sb_model *m, hid_t loc);
/* Load a model file. Errors: SB_EIO if missing or unreadable, SB_EFORMAT naming the file and
 * the dataset/attribute for corrupt content, a wrong format tag, or a weight whose shape
 * disagrees with the architecture ("m.h5: /layers/003/weight: expected (128, 3136) (got ...)").
 * Ownership: caller frees with sb_model_free. */
int sb_model_load(sb_model **out, const char *path);
/* Load from group `loc` of an open file; `what` names it in messages. */
int sb_model_load_from(sb_model **out, hid_t loc, const char *what);
/* 1 if `path` is an HDF5 file with format = "spikebridge-ann" (or a GAN file), else 0. */
int sb_model_file_is_ann(const char *path);
/* Print the architecture table (layer, kind, output shape, parameters) and totals. */
void sb_model_print(const sb_model *m, FILE *f);

#endif
