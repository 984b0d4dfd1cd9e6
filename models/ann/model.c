/* Models: a plain sequence of layers over one parameter buffer, one gradient buffer and one
 * state buffer (llm.c), the activation workspace, and forward/backward over the sequence.
 * File formats live in modelio.c (HDF5) and arch.c (JSON); the kernels in layers.c. */
#include "models/ann/ann.h"
#include "models/ann/internal.h"
#include "sim/core.h"

#include <gsl/gsl_randist.h>
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static const char *const kind_names[SB_LAYER_NKINDS] = {
    "dense", "conv2d", "avgpool", "maxpool", "flatten", "relu",
    "leaky_relu", "sigmoid", "tanh", "qcfs", "batchnorm"};

const char *sb_layer_kind_name(sb_layer_kind k) {
  return (unsigned)k < SB_LAYER_NKINDS ? kind_names[k] : "?";
}

int sb_layer_kind_parse(const char *name) {
  for (int k = 0; k < SB_LAYER_NKINDS; k++)
    if (!strcmp(name, kind_names[k])) return k;
  /* a few PyTorch-flavoured aliases */
  if (!strcmp(name, "linear")) return SB_LAYER_DENSE;
  if (!strcmp(name, "conv")) return SB_LAYER_CONV2D;
  if (!strcmp(name, "bn")) return SB_LAYER_BATCHNORM;
  return -1;
}

/* ---- construction ---- */

int shape_str_(char *buf, size_t cap, sb_shape s) {
  return s.rank == 3 ? snprintf(buf, cap, "(%d, %d, %d)", s.c, s.h, s.w) : snprintf(buf, cap, "(%d)", s.c);
}

/* Fill layer `L` from `sp` given its input shape. */
static int layer_setup(sb_layer *L, const sb_layer_spec *sp, sb_shape in, int idx) {
  memset(L, 0, sizeof *L);
  L->kind = sp->kind;
  L->in = in;
  L->out = in;
  const char *kn = sb_layer_kind_name(sp->kind);
  char sh[64];
  shape_str_(sh, sizeof sh, in);
  switch (sp->kind) {
  case SB_LAYER_DENSE:
    if (in.rank != 1)
      SB_ERROR(SB_EINVAL, "layer %d (dense): input has shape %s: expected a flat vector (add a flatten layer)",
               idx, sh);
    if (sp->out < 1) SB_ERROR(SB_EINVAL, "layer %d (dense): out: expected >= 1 (got %d)", idx, sp->out);
    if (sp->in > 0 && sp->in != in.c)
      SB_ERROR(SB_EINVAL, "layer %d (dense): in: expected %d from the previous layer (got %d)", idx, in.c, sp->in);
    L->out = (sb_shape){1, sp->out, 1, 1};
    L->n_params = (size_t)sp->out * (size_t)in.c + (size_t)sp->out;
    break;
  case SB_LAYER_CONV2D: {
    if (in.rank != 3)
      SB_ERROR(SB_EINVAL, "layer %d (conv2d): input has shape %s: expected (C, H, W)", idx, sh);
    if (sp->in > 0 && sp->in != in.c)
      SB_ERROR(SB_EINVAL, "layer %d (conv2d): in: expected %d channels from the previous layer (got %d)", idx,
               in.c, sp->in);
    if (sp->out < 1) SB_ERROR(SB_EINVAL, "layer %d (conv2d): out: expected >= 1 channels (got %d)", idx, sp->out);
    L->k = sp->k > 0 ? sp->k : 3;
    L->stride = sp->stride > 0 ? sp->stride : 1;
    L->pad = sp->pad;
    int st = sb_conv_shape_init(&L->conv, in.c, in.h, in.w, sp->out, L->k, L->stride, L->pad);
    if (st) return sb_error_prefix_(st, "layer %d", idx);
    L->out = (sb_shape){3, sp->out, L->conv.OH, L->conv.OW};
    L->n_params = (size_t)sp->out * (size_t)in.c * (size_t)(L->k * L->k) + (size_t)sp->out;
    break;
  }
  case SB_LAYER_AVGPOOL:
  case SB_LAYER_MAXPOOL:
    if (in.rank != 3) SB_ERROR(SB_EINVAL, "layer %d (%s): input has shape %s: expected (C, H, W)", idx, kn, sh);
    L->k = sp->k > 0 ? sp->k : 2;
    L->stride = sp->stride > 0 ? sp->stride : L->k;
    if (sp->pad != 0) SB_ERROR(SB_EINVAL, "layer %d (%s): padding: expected 0 (got %d)", idx, kn, sp->pad);
    if (L->k > in.h || L->k > in.w)
      SB_ERROR(SB_EINVAL, "layer %d (%s): kernel %d does not fit input %s", idx, kn, L->k, sh);
    L->out = (sb_shape){3, in.c, (in.h - L->k) / L->stride + 1, (in.w - L->k) / L->stride + 1};
    break;
  case SB_LAYER_FLATTEN:
    L->out = (sb_shape){1, (int)sb_shape_size(in), 1, 1};
    break;
  case SB_LAYER_LEAKY_RELU:
    L->alpha = sp->alpha > 0.0f ? sp->alpha : 0.01f;
    break;
  case SB_LAYER_QCFS:
    L->levels = sp->levels > 0 ? sp->levels : 8;
    L->n_params = 1;
    break;
  case SB_LAYER_BATCHNORM:
    L->eps = sp->eps > 0.0f ? sp->eps : 1e-5f;
    L->momentum = sp->momentum > 0.0f ? sp->momentum : 0.1f;
    L->n_params = 2 * (size_t)in.c;
    L->n_state = 2 * (size_t)in.c;
    break;
  case SB_LAYER_RELU:
  case SB_LAYER_SIGMOID:
  case SB_LAYER_TANH:
    break;
  default:
    SB_ERROR(SB_EINVAL, "layer %d: unknown kind %d", idx, (int)sp->kind);
  }
  return SB_OK;
}

/* Point each layer's views into the model buffers. */
static void carve(sb_model *m) {
  for (int i = 0; i < m->n_layers; i++) {
    sb_layer *L = &m->layers[i];
    L->w = L->b = L->dw = L->db = L->running_mean = L->running_var = NULL;
    if (L->n_params) {
      L->w = m->params + L->param_off;
      L->dw = m->grads + L->param_off;
      size_t nb = L->kind == SB_LAYER_DENSE ? (size_t)L->out.c
                  : L->kind == SB_LAYER_CONV2D ? (size_t)L->out.c
                  : L->kind == SB_LAYER_BATCHNORM ? (size_t)L->in.c : 0;
      if (nb) {
        L->b = L->w + (L->n_params - nb);
        L->db = L->dw + (L->n_params - nb);
      }
    }
    if (L->n_state) {
      L->running_mean = m->state + L->state_off;
      L->running_var = L->running_mean + L->in.c;
    }
  }
}

int sb_model_build(sb_model **out, const char *name, sb_shape input, const sb_layer_spec *specs, int n) {
  *out = NULL;
  if (n < 1) SB_ERROR(SB_EINVAL, "layers: expected at least one layer (got %d)", n);
  if (input.rank != 1 && input.rank != 3)
    SB_ERROR(SB_EINVAL, "input: expected rank 1 or 3 (got %d)", input.rank);
  if (input.c < 1 || input.h < 1 || input.w < 1)
    SB_ERROR(SB_EINVAL, "input: sizes must be >= 1 (got %d, %d, %d)", input.c, input.h, input.w);
  if (input.rank == 1) input.h = input.w = 1;
  sb_model *m = sb_calloc(1, sizeof *m);
  if (!m) return SB_ENOMEM;
  m->n_layers = n;
  m->input = input;
  m->name = sb_strdup(name ? name : "model");
  m->layers = sb_calloc((size_t)n, sizeof *m->layers);
  m->specs = sb_calloc((size_t)n, sizeof *m->specs);
  if (!m->name || !m->layers || !m->specs) { sb_model_free(m); return SB_ENOMEM; }
  memcpy(m->specs, specs, (size_t)n * sizeof *specs);
  sb_shape cur = input;
  size_t po = 0, so = 0;
  for (int i = 0; i < n; i++) {
    int st = layer_setup(&m->layers[i], &specs[i], cur, i);
    if (st) { sb_model_free(m); return st; }
    m->layers[i].param_off = po;
    m->layers[i].state_off = so;
    po += m->layers[i].n_params;
    so += m->layers[i].n_state;
    cur = m->layers[i].out;
  }
  m->n_params = po;
  m->n_state = so;
  {   /* refuse what cannot fit before allocating: weights and gradients (float32) and the state;
       * an optimizer adds up to two more copies of the weights when training */
    const char *what;
    double need = (2.0 * (double)po + (double)so) * sizeof(float), have = (double)sb_mem_limit(&what);
    if (need > have) {
      int big = 0;
      for (int i = 1; i < n; i++)
        if (m->layers[i].n_params > m->layers[big].n_params) big = i;
      size_t big_n = m->layers[big].n_params;
      sb_model_free(m);
      SB_ERROR(SB_EINVAL, "layers[%d]: %zu parameters (%zu in the whole model) need at least %.3g GB for their weights "
               "and gradients (float32), more than the %.3g GB of %s", big, big_n, po, need / 1e9, have / 1e9, what);
    }
  }
  m->params = sb_calloc(po ? po : 1, sizeof(float));
  m->grads = sb_calloc(po ? po : 1, sizeof(float));
  m->state = sb_calloc(so ? so : 1, sizeof(float));
  if (!m->params || !m->grads || !m->state) { sb_model_free(m); return SB_ENOMEM; }
  carve(m);
  for (int i = 0; i < n; i++) {
    sb_layer *L = &m->layers[i];
    if (L->kind == SB_LAYER_BATCHNORM) {
      for (int c = 0; c < L->in.c; c++) { L->w[c] = 1.0f; L->running_var[c] = 1.0f; }
    }
    if (L->kind == SB_LAYER_QCFS) L->w[0] = specs[i].threshold > 0.0f ? specs[i].threshold : 8.0f;
  }
  *out = m;
  return SB_OK;
}

static void free_workspace(sb_model *m) {
  if (m->acts) {
    for (int i = 0; i < m->n_layers; i++) sb_free(m->acts[i]);
    sb_free(m->acts);
  }
  m->acts = NULL;
  sb_free(m->dbuf[0]); sb_free(m->dbuf[1]);
  m->dbuf[0] = m->dbuf[1] = NULL;
  sb_free(m->conv_ws);
  m->conv_ws = NULL;
  m->conv_ws_size = 0;
  if (m->layers)
    for (int i = 0; i < m->n_layers; i++) {
      sb_free(m->layers[i].argmax);
      sb_free(m->layers[i].bn_mean);
      sb_free(m->layers[i].bn_invstd);
      m->layers[i].argmax = NULL;
      m->layers[i].bn_mean = m->layers[i].bn_invstd = NULL;
    }
  m->max_batch = 0;
}

void sb_model_free(sb_model *m) {
  if (!m) return;
  free_workspace(m);
  sb_free(m->layers);
  sb_free(m->specs);
  sb_free(m->name);
  sb_free(m->params);
  sb_free(m->grads);
  sb_free(m->state);
  sb_free(m);
}

void sb_model_init_params(sb_model *m, uint64_t seed) {
  for (int i = 0; i < m->n_layers; i++) {
    sb_layer *L = &m->layers[i];
    if (L->kind != SB_LAYER_DENSE && L->kind != SB_LAYER_CONV2D) continue;
    gsl_rng *r = sb_rng_alloc(seed, SB_RNG_PARAM, (uint64_t)i);
    if (!r) continue;
    size_t fan_in = L->kind == SB_LAYER_DENSE ? (size_t)L->in.c : (size_t)L->in.c * (size_t)(L->k * L->k);
    double bound = 1.0 / sqrt((double)fan_in);
    for (size_t j = 0; j < L->n_params; j++) L->w[j] = (float)gsl_ran_flat(r, -bound, bound);
    gsl_rng_free(r);
  }
}

sb_shape sb_model_output_shape(const sb_model *m) { return m->layers[m->n_layers - 1].out; }

int sb_model_check_train_memory(const sb_model *m, int N, int opt_copies) {
  const char *what;
  double have = (double)sb_mem_limit(&what), maxsz = (double)sb_shape_size(m->input), acts = 0, big_a = -1;
  int ia = 0, ip = 0;
  for (int i = 0; i < m->n_layers; i++) {
    const sb_layer *L = &m->layers[i];
    double osz = (double)sb_shape_size(L->out);
    acts += osz;
    if (osz > maxsz) maxsz = osz;
    if (osz > big_a) big_a = osz, ia = i;
    if (L->n_params > m->layers[ip].n_params) ip = i;
  }
  double weights = (2.0 + opt_copies) * (double)m->n_params * sizeof(float) + (double)m->n_state * sizeof(float);
  double act = (double)N * (acts + 2 * maxsz) * sizeof(float);
  if (weights + act <= have) return SB_OK;
  if (act >= weights)
    SB_ERROR(SB_EINVAL, "batch: %d samples need at least %.3g GB of activations (layers[%d] alone %.3g GB) beside %.3g GB "
             "of weights, gradients and optimizer state, more than the %.3g GB of %s; use a smaller batch", N, act / 1e9,
             ia, (double)N * big_a * sizeof(float) / 1e9, weights / 1e9, have / 1e9, what);
  SB_ERROR(SB_EINVAL, "layers[%d]: %zu parameters (%zu in the whole model) need at least %.3g GB with their gradients and "
           "%d optimizer cop%s (float32), beside %.3g GB of activations, more than the %.3g GB of %s", ip,
           m->layers[ip].n_params, m->n_params, weights / 1e9, opt_copies, opt_copies == 1 ? "y" : "ies", act / 1e9,
           have / 1e9, what);
}

int sb_model_reserve(sb_model *m, int N) {
  int nt = 1;
#ifdef _OPENMP
  nt = omp_get_max_threads();
#endif
  if (N <= m->max_batch && nt <= m->nthreads) return SB_OK;
  if (N < m->max_batch) N = m->max_batch;
  free_workspace(m);
  size_t maxsz = sb_shape_size(m->input), cws = 0;
  m->acts = sb_calloc((size_t)m->n_layers, sizeof(float *));
  if (!m->acts) return SB_ENOMEM;
  for (int i = 0; i < m->n_layers; i++) {
    sb_layer *L = &m->layers[i];
    size_t osz = sb_shape_size(L->out);
    if (osz > maxsz) maxsz = osz;
    m->acts[i] = sb_malloc((size_t)N * osz * sizeof(float));
    if (!m->acts[i]) goto nomem;
    if (L->kind == SB_LAYER_MAXPOOL && !(L->argmax = sb_malloc((size_t)N * osz * sizeof(int)))) goto nomem;
    if (L->kind == SB_LAYER_BATCHNORM) {
      L->bn_mean = sb_malloc((size_t)L->in.c * sizeof(float));
      L->bn_invstd = sb_malloc((size_t)L->in.c * sizeof(float));
      if (!L->bn_mean || !L->bn_invstd) goto nomem;
    }
    if (L->kind == SB_LAYER_CONV2D) {
      size_t w = sb_conv2d_workspace(&L->conv, nt);
      if (w > cws) cws = w;
    }
  }
  m->dbuf[0] = sb_malloc((size_t)N * maxsz * sizeof(float));
  m->dbuf[1] = sb_malloc((size_t)N * maxsz * sizeof(float));
  if (!m->dbuf[0] || !m->dbuf[1]) goto nomem;
  if (cws) {
    m->conv_ws = sb_malloc(cws * sizeof(float));
    if (!m->conv_ws) goto nomem;
    m->conv_ws_size = cws;
  }
  m->max_batch = N;
  m->nthreads = nt;
  return SB_OK;
nomem:
  free_workspace(m);
  return SB_ENOMEM;
}

/* ---- forward and backward over the sequence ---- */

static void layer_forward(sb_model *m, sb_layer *L, float *out, const float *x, int N, int train) {
  const size_t n_in = (size_t)N * sb_shape_size(L->in);
  switch (L->kind) {
  case SB_LAYER_DENSE: sb_dense_forward(out, x, L->w, L->b, N, L->in.c, L->out.c); break;
  case SB_LAYER_CONV2D: sb_conv2d_forward(out, x, L->w, L->b, &L->conv, N, m->conv_ws); break;
  case SB_LAYER_AVGPOOL: sb_avgpool_forward(out, x, N, L->in.c, L->in.h, L->in.w, L->k, L->stride); break;
  case SB_LAYER_MAXPOOL:
    sb_maxpool_forward(out, train ? L->argmax : NULL, x, N, L->in.c, L->in.h, L->in.w, L->k, L->stride);
    break;
  case SB_LAYER_FLATTEN: memcpy(out, x, n_in * sizeof(float)); break;
  case SB_LAYER_RELU: sb_relu_forward(out, x, n_in); break;
  case SB_LAYER_LEAKY_RELU: sb_leaky_relu_forward(out, x, n_in, L->alpha); break;
  case SB_LAYER_SIGMOID: sb_sigmoid_forward(out, x, n_in); break;
  case SB_LAYER_TANH: sb_tanh_forward(out, x, n_in); break;
  case SB_LAYER_QCFS: sb_qcfs_forward(out, x, n_in, L->w[0], L->levels); break;
  case SB_LAYER_BATCHNORM: {
    int HW = L->in.h * L->in.w;
    if (train)
      sb_batchnorm_forward_train(out, L->bn_mean, L->bn_invstd, L->running_mean, L->running_var, x, L->w, L->b, N,
                                 L->in.c, HW, L->eps, L->momentum);
    else
      sb_batchnorm_forward_eval(out, x, L->w, L->b, L->running_mean, L->running_var, N, L->in.c, HW, L->eps);
    break;
  }
  default: break;
  }
}

/* Layers from i on that run as one fused conv2d -> relu [-> avgpool] block (conv_block_forward_):
 * 3 or 2; 1 when layer i is not such a block's start. */
static int block_len(const sb_model *m, int i) {
  if (m->layers[i].kind != SB_LAYER_CONV2D || i + 1 >= m->n_layers || m->layers[i + 1].kind != SB_LAYER_RELU)
    return 1;
  return i + 2 < m->n_layers && m->layers[i + 2].kind == SB_LAYER_AVGPOOL ? 3 : 2;
}

/* First layer of the fused block that ends at layer i (i itself when none does). */
static int block_start(const sb_model *m, int i) {
  if (i >= 2 && m->layers[i].kind == SB_LAYER_AVGPOOL && block_len(m, i - 2) == 3) return i - 2;
  if (i >= 1 && m->layers[i].kind == SB_LAYER_RELU && block_len(m, i - 1) == 2) return i - 1;
  return i;
}

const float *sb_model_forward(sb_model *m, const float *x, int N, int train) {
  if (sb_model_reserve(m, N)) return NULL;
  const float *cur = x;
  for (int i = 0; i < m->n_layers;) {
    int len = block_len(m, i);
    if (len > 1) {
      const sb_layer *L = &m->layers[i], *P = len == 3 ? &m->layers[i + 2] : NULL;
      conv_block_forward_(m->acts[i], m->acts[i + 1], P ? m->acts[i + 2] : NULL, cur, L->w, L->b, &L->conv,
                          P ? P->k : 0, P ? P->stride : 0, N, m->conv_ws);
    } else {
      layer_forward(m, &m->layers[i], m->acts[i], cur, N, train);
    }
    i += len;
    cur = m->acts[i - 1];
  }
  return cur;
}

const float *sb_model_layer_output(const sb_model *m, int i) {
  return (i >= 0 && i < m->n_layers && m->acts) ? m->acts[i] : NULL;
}

void sb_model_zero_grad(sb_model *m) { memset(m->grads, 0, (m->n_params ? m->n_params : 1) * sizeof(float)); }

static void backward(sb_model *m, const float *x, const float *dout, int N, float *dx, int param_grads);

void sb_model_backward(sb_model *m, const float *x, const float *dout, int N, float *dx) {
  backward(m, x, dout, N, dx, 1);
}

void sb_model_backward_input(sb_model *m, const float *x, const float *dout, int N, float *dx) {
  backward(m, x, dout, N, dx, 0);
}

static void backward(sb_model *m, const float *x, const float *dout, int N, float *dx, int param_grads) {
  const float *g = dout;
  /* input gradients are only computed down to the first layer with parameters (unless the
   * caller wants dx): an MLP's first dense layer skips its largest product, as autograd does */
  int first_param = m->n_layers;
  for (int i = 0; i < m->n_layers; i++)
    if (m->layers[i].n_params) { first_param = i; break; }
  for (int i = m->n_layers - 1; i >= 0; i--) {
    if (!dx && i < first_param) break; /* nothing below needs a gradient */
    const int j = block_start(m, i);   /* a fused block runs layers j..i at once */
    sb_layer *L = &m->layers[j];
    const float *inp = j ? m->acts[j - 1] : x;
    const float *out = m->acts[i];
    float *spare = g == m->dbuf[0] ? m->dbuf[1] : m->dbuf[0]; /* the gradient buffer g is not in */
    float *d = j ? spare : dx;
    if (!dx && j == first_param) d = NULL;
    const size_t n_in = (size_t)N * sb_shape_size(L->in);
    float *dw = param_grads ? L->dw : NULL, *db = param_grads ? L->db : NULL;
    if (j < i) {
      const sb_layer *P = i - j == 2 ? &m->layers[i] : NULL;
      conv_block_backward_(d, dw, db, g, m->acts[j], inp, L->w, &L->conv, P ? P->k : 0, P ? P->stride : 0, N,
                           m->conv_ws);
      g = d;
      i = j;
      continue;
    }
    if (d || (L->n_params && param_grads)) {
      switch (L->kind) {
      case SB_LAYER_DENSE: sb_dense_backward(d, dw, db, g, inp, L->w, N, L->in.c, L->out.c); break;
      case SB_LAYER_CONV2D: sb_conv2d_backward(d, dw, db, g, inp, L->w, &L->conv, N, m->conv_ws); break;
      case SB_LAYER_AVGPOOL: sb_avgpool_backward(d, g, N, L->in.c, L->in.h, L->in.w, L->k, L->stride); break;
      case SB_LAYER_MAXPOOL:
        sb_maxpool_backward(d, g, L->argmax, N, L->in.c, L->in.h, L->in.w, L->k, L->stride);
        break;
      case SB_LAYER_FLATTEN: memcpy(d, g, n_in * sizeof(float)); break;
      case SB_LAYER_RELU: sb_relu_backward(d, g, inp, n_in); break;
      case SB_LAYER_LEAKY_RELU: sb_leaky_relu_backward(d, g, inp, n_in, L->alpha); break;
      case SB_LAYER_SIGMOID: sb_sigmoid_backward(d, g, out, n_in); break;
      case SB_LAYER_TANH: sb_tanh_backward(d, g, out, n_in); break;
      case SB_LAYER_QCFS:
        /* qcfs needs a place for dinp even when the caller does not want it */
        sb_qcfs_backward(d ? d : spare, dw, g, inp, n_in, L->w[0], L->levels);
        break;
      case SB_LAYER_BATCHNORM:
        sb_batchnorm_backward(d, dw, db, g, inp, L->bn_mean, L->bn_invstd, L->w, N, L->in.c,
                              L->in.h * L->in.w);
        break;
      default: break;
      }
    }
    g = d;
  }
}
