/* ANN -> SNN conversion: map an ANN layer list onto spiking layers, fold batch norm, take
 * per-layer normalisation factors from training-set activations, and read/write the converted
 * network file. Running the result lives in clocked.c and event.c. */
#include "models/ann/ann.h"
#include "models/convert/internal.h"

#include <gsl/gsl_statistics_float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const kind_names[SB_CONVERT_NKINDS] = {"dense", "conv", "avgpool", "maxpool"};

void sb_convert_opts_default(sb_convert_opts *o) {
  memset(o, 0, sizeof *o);
  o->percentile = 99.9;
  o->v_init = -1;
  o->n_samples = 1000;
  o->eval_ann = 1;
}

void sb_convert_net_free(sb_convert_net *net) {
  if (!net) return;
  for (int i = 0; i < net->n_layers; i++) {
    sb_free(net->layers[i].w);
    sb_free(net->layers[i].b);
    sb_free(net->layers[i].v_shift);
  }
  sb_free(net->layers);
  sb_free(net->ann_pred);
  sb_free(net);
}

double sb_convert_layer_macs(const sb_convert_layer *L) {
  if (L->kind == SB_CONVERT_DENSE) return (double)sb_cl_in_size_(L) * (double)sb_cl_out_size_(L);
  if (L->kind == SB_CONVERT_CONV) return (double)sb_cl_out_size_(L) * L->in_c * L->k * L->k;
  return 0;
}

/* Number of (input, output) pairs the projection connects: every spike of input i costs
 * fanout(i) accumulates, so this is the cost of one spike from every input. */
double sb_convert_layer_fanout_total(const sb_convert_layer *L) {
  switch (L->kind) {
    case SB_CONVERT_DENSE: return (double)sb_cl_in_size_(L) * (double)sb_cl_out_size_(L);
    case SB_CONVERT_CONV: return (double)sb_cl_out_size_(L) * L->in_c * L->k * L->k;   /* incl. padding taps */
    case SB_CONVERT_AVGPOOL: return (double)sb_cl_out_size_(L) * L->k * L->k;
    case SB_CONVERT_MAXPOOL: return 0;   /* gates are counted as comparisons, not synaptic ops */
    default: return 0;
  }
}

/* ---- mapping ANN layers onto spiking layers ---- */

typedef struct {
  sb_convert_kind kind;
  int lin, bn, act, qcfs;   /* ANN layer indices (-1: none); act = layer whose output is the activation */
  int spiking;
} group;

static int plan(const sb_model *m, const char *what, group *g, int *ng) {
  int n = 0, open = 0;   /* open: a linear layer waiting for its activation */
  for (int i = 0; i < m->n_layers; i++) {
    const sb_layer *L = &m->layers[i];
    const char *kn = sb_layer_kind_name(L->kind);
    switch (L->kind) {
      case SB_LAYER_DENSE:
      case SB_LAYER_CONV2D:
        if (open)
          SB_ERROR(SB_EUNSUPPORTED, "%s: layer %d (%s): follows the linear layer %d without an activation "
                   "in between (expected relu or qcfs)", what, i, kn, g[n - 1].lin);
        g[n++] = (group){L->kind == SB_LAYER_DENSE ? SB_CONVERT_DENSE : SB_CONVERT_CONV, i, -1, i, -1, 0};
        open = 1;
        break;
      case SB_LAYER_BATCHNORM:
        if (!open || g[n - 1].bn >= 0)
          SB_ERROR(SB_EUNSUPPORTED, "%s: layer %d (batchnorm): can only be folded when it directly follows a "
                   "dense or conv2d layer", what, i);
        g[n - 1].bn = g[n - 1].act = i;
        break;
      case SB_LAYER_RELU:
      case SB_LAYER_QCFS:
        if (open) {
          g[n - 1].act = i;
          g[n - 1].spiking = 1;
          if (L->kind == SB_LAYER_QCFS) g[n - 1].qcfs = i;
          open = 0;
        } else if (n > 0 && L->kind == SB_LAYER_RELU) {
          g[n - 1].act = i;   /* relu of spikes (non-negative rates) is the identity */
        } else {
          SB_ERROR(SB_EUNSUPPORTED, "%s: layer %d (%s): must follow a dense or conv2d layer", what, i, kn);
        }
        break;
      case SB_LAYER_AVGPOOL:
      case SB_LAYER_MAXPOOL:
        if (open || n == 0)
          SB_ERROR(SB_EUNSUPPORTED, "%s: layer %d (%s): pooling must follow an activation (relu or qcfs), "
                   "the input image cannot be pooled", what, i, kn);
        g[n++] = (group){L->kind == SB_LAYER_AVGPOOL ? SB_CONVERT_AVGPOOL : SB_CONVERT_MAXPOOL, i, -1, i, -1, 1};
        break;
      case SB_LAYER_FLATTEN:
        if (open)
          SB_ERROR(SB_EUNSUPPORTED, "%s: layer %d (flatten): follows linear layer %d without activation",
                   what, i, g[n - 1].lin);
        break;
      default:
        SB_ERROR(SB_EUNSUPPORTED, "%s: layer %d (%s): not convertible; rate-based conversion supports dense, "
                 "conv2d, batchnorm, relu, qcfs, avgpool, maxpool and flatten (a %s unit has no "
                 "integrate-and-fire equivalent here)", what, i, kn, kn);
    }
  }
  if (!open || n == 0)
    SB_ERROR(SB_EUNSUPPORTED, "%s: the last layer must be a dense or conv2d layer without activation "
             "(the logits), got %s", what, sb_layer_kind_name(m->layers[m->n_layers - 1].kind));
  if (g[0].kind != SB_CONVERT_DENSE && g[0].kind != SB_CONVERT_CONV)
    SB_ERROR(SB_EUNSUPPORTED, "%s: the first layer must be dense or conv2d", what);
  *ng = n;
  return SB_OK;
}

/* ---- activation statistics ---- */

/* p-th percentile with numpy's default linear interpolation; v is reordered. */
static double percentile(float *v, size_t n, double p) {
  if (n == 0) return 0;
  double pos = p / 100.0 * (double)(n - 1);
  size_t lo = (size_t)floor(pos);
  double frac = pos - (double)lo;
  double a = gsl_stats_float_select(v, 1, n, lo);
  if (frac == 0 || lo + 1 >= n) return a;
  double b = gsl_stats_float_select(v, 1, n, lo + 1);
  return a + frac * (b - a);
}

typedef struct {
  float *v;
  size_t n, cap;
} fvec;

static int fvec_push_pos(fvec *f, const float *x, size_t n) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) k += x[i] > 0;
  if (f->n + k > f->cap) {
    size_t cap = f->cap ? f->cap : 1 << 16;
    while (cap < f->n + k) cap *= 2;
    float *v = sb_realloc(f->v, cap * sizeof *v);
    if (!v) return SB_ENOMEM;
    f->v = v;
    f->cap = cap;
  }
  for (size_t i = 0; i < n; i++)
    if (x[i] > 0) f->v[f->n++] = x[i];
  return SB_OK;
}

static void to_float(float *x, const uint8_t *img, size_t n) {
  for (size_t i = 0; i < n; i++) x[i] = (float)img[i] / 255.0f;
}

/* Sample image k of ns, evenly strided over a data set of n images (normalisation, calibration). */
static size_t sample_index(size_t k, size_t n, size_t ns) {
  return k * n / ns;
}

/* lambda[g] from the positive activations of each group over the sample images. */
static int norm_factors(sb_model *m, const group *g, int ng, const sb_dataset *d, const sb_convert_opts *o,
                        int readout_spikes, const int *inherit, const double *lnorm, double *lambda) {
  size_t ns = (size_t)o->n_samples < d->n ? (size_t)o->n_samples : d->n;
  size_t img = (size_t)d->h * (size_t)d->w;
  enum { B = 100 };
  fvec *acc = sb_calloc((size_t)ng, sizeof *acc);
  float *x = sb_malloc(B * img * sizeof *x);
  double *mx = sb_calloc((size_t)ng, sizeof *mx);
  int rc = SB_OK;
  if (!acc || !x || !mx) { rc = SB_ENOMEM; goto out; }
  for (size_t s0 = 0; s0 < ns; s0 += B) {
    int nb = (int)(ns - s0 < B ? ns - s0 : B);
    for (int k = 0; k < nb; k++) {
      size_t idx = sample_index(s0 + (size_t)k, d->n, ns);
      to_float(x + (size_t)k * img, d->images + idx * img, img);
    }
    if (!sb_model_forward(m, x, nb, 0)) { rc = SB_ENOMEM; goto out; }
    for (int q = 0; q < ng; q++) {
      if (g[q].qcfs >= 0 || g[q].kind == SB_CONVERT_MAXPOOL || inherit[q]) continue;
      if (q == ng - 1 && !readout_spikes) continue;
      const float *a = sb_model_layer_output(m, g[q].act);
      size_t n = (size_t)nb * sb_shape_size(m->layers[g[q].act].out);
      for (size_t i = 0; i < n; i++)
        if (a[i] > mx[q]) mx[q] = a[i];
      if ((!o->norm_max || (lnorm && lnorm[q] > 0 && lnorm[q] < 1000)) && (rc = fvec_push_pos(&acc[q], a, n))) goto out;
    }
  }
  for (int q = 0; q < ng; q++) {
    if (g[q].qcfs >= 0) lambda[q] = m->layers[g[q].qcfs].w[0];
    else if (g[q].kind == SB_CONVERT_MAXPOOL || inherit[q]) lambda[q] = lambda[q - 1];
    else if (q == ng - 1 && !readout_spikes) lambda[q] = 1.0;
    else if (lnorm && lnorm[q] > 0) lambda[q] = lnorm[q] >= 1000 ? mx[q] : percentile(acc[q].v, acc[q].n, lnorm[q]);
    else lambda[q] = o->norm_max ? mx[q] : percentile(acc[q].v, acc[q].n, o->percentile);
    if (!isfinite(lambda[q]) || !isfinite(mx[q])) {
      rc = SB_SET_ERROR(SB_EINVAL, "layer %d (%s): its activations on the sample images are not finite (damaged or "
                        "overflowing weights in the ANN file?)", q, kind_names[g[q].kind]);
      goto out;
    }
    if (!(lambda[q] > 0)) lambda[q] = 1.0;   /* a dead layer: keep its weights */
  }
out:
  if (acc)
    for (int q = 0; q < ng; q++) sb_free(acc[q].v);
  sb_free(acc);
  sb_free(x);
  sb_free(mx);
  return rc;
}

static int ann_predict(sb_model *m, const sb_dataset *d, uint8_t *pred) {
  size_t img = (size_t)d->h * (size_t)d->w;
  enum { B = 250 };
  float *x = sb_malloc(B * img * sizeof *x);
  if (!x) return SB_ENOMEM;
  int nout = (int)sb_shape_size(sb_model_output_shape(m));
  for (size_t s0 = 0; s0 < d->n; s0 += B) {
    int nb = (int)(d->n - s0 < B ? d->n - s0 : B);
    to_float(x, d->images + s0 * img, (size_t)nb * img);
    const float *y = sb_model_forward(m, x, nb, 0);
    if (!y) { sb_free(x); return SB_ENOMEM; }
    for (int k = 0; k < nb; k++) pred[s0 + (size_t)k] = (uint8_t)sb_convert_argmax_(y + (size_t)k * (size_t)nout, nout);
  }
  sb_free(x);
  return SB_OK;
}

int sb_convert_argmax_(const float *v, int n) {
  int b = 0;
  for (int i = 1; i < n; i++)
    if (v[i] > v[b]) b = i;
  return b;
}
int sb_convert_argmax_d_(const double *v, int n) {
  int b = 0;
  for (int i = 1; i < n; i++)
    if (v[i] > v[b]) b = i;
  return b;
}

/* inherit[q] = 1 for the avgpool groups that take their input's lambda (o->pool_norm, see convert.h). */
static int pool_norm_parse(const char *what, const char *spec, const group *g, int ng, int *inherit) {
  if (!spec) return SB_OK;
  enum { MAXE = 64 };
  int val[MAXE], nv = 0, np = 0;
  const char *t = spec;
  do {   /* every entry first, whatever the number of pools; a trailing comma leaves an empty one */
    size_t len = strcspn(t, ",");
    int v = len == 7 && !strncmp(t, "inherit", 7) ? 1 : len == 4 && !strncmp(t, "data", 4) ? 0 : -1;
    if (v < 0)
      SB_ERROR(SB_EINVAL, "%s: pool_norm (--pool-norm): expected a comma-separated list of inherit|data (got '%s')",
               what, spec);
    if (nv == MAXE) break;
    val[nv++] = v;
    t += len;
  } while (*t++ == ',');
  for (int q = 0; q < ng; q++)
    if (g[q].kind == SB_CONVERT_AVGPOOL) {
      inherit[q] = val[np < nv ? np : nv - 1];   /* past the end the last entry repeats */
      np++;
    }
  if (nv > np) SB_ERROR(SB_EINVAL, "%s: pool_norm (--pool-norm): more entries than avgpool layers in '%s'", what, spec);
  return SB_OK;
}

/* lnorm[q] from o->layer_norm "I=max|percentile:P,...": 0 = the global rule, 1000 = max, else P.
 * Errors name the file, the option and the entry. */
static int layer_norm_parse(const char *what, const char *spec, const group *g, int ng, const int *inherit,
                            int readout_spikes, double *lnorm) {
  if (!spec) return SB_OK;
  if (!*spec)
    SB_ERROR(SB_EINVAL, "%s: layer_norm (--layer-norm): empty; expected I=max or I=percentile:P entries", what);
  const char *p = spec;
  while (1) {
    size_t len = strcspn(p, ",");
    char *end;
    long i = strtol(p, &end, 10);
    if (end == p || *end != '=' || i < 0 || (size_t)(end - p) >= len)
      SB_ERROR(SB_EINVAL, "%s: layer_norm (--layer-norm): entry '%.*s': expected I=max or I=percentile:P, I a layer "
               "index, entries comma separated", what, (int)len, p);
    if (i >= ng)
      SB_ERROR(SB_EINVAL, "%s: layer_norm (--layer-norm): entry '%.*s': layer %.*s does not exist (the network has "
               "layers 0..%d)", what, (int)len, p, (int)(end - p), p, ng - 1);
    const char *why = g[i].qcfs >= 0 ? "a qcfs layer: its clip value is its lambda"
                      : g[i].kind == SB_CONVERT_MAXPOOL ? "a maxpool gate: no neurons"
                      : inherit[i] ? "an avgpool inheriting its input's lambda (--pool-norm inherit)"
                      : i == ng - 1 && !readout_spikes ? "the membrane readout: not normalised"
                                                       : NULL;
    if (why) SB_ERROR(SB_EINVAL, "%s: layer_norm (--layer-norm): layer %ld takes no data normalisation (%s)", what, i, why);
    if (lnorm[i] > 0) SB_ERROR(SB_EINVAL, "%s: layer_norm (--layer-norm): layer %ld is given twice", what, i);
    const char *r = end + 1;
    size_t rl = len - (size_t)(r - p);
    if (rl == 3 && !strncmp(r, "max", 3)) {
      lnorm[i] = 1000;
    } else if (rl > 11 && !strncmp(r, "percentile:", 11)) {
      char buf[32];
      snprintf(buf, sizeof buf, "%.*s", (int)(rl - 11 < 31 ? rl - 11 : 31), r + 11);
      double v = strtod(buf, &end);
      if (*end || end == buf)
        SB_ERROR(SB_EINVAL, "%s: layer_norm (--layer-norm): layer %ld: percentile '%s' is not a number", what, i, buf);
      if (!(v > 0 && v <= 100))
        SB_ERROR(SB_EINVAL, "%s: layer_norm (--layer-norm): layer %ld: percentile must be in (0, 100] (got %s)", what,
                 i, buf);
      lnorm[i] = v;
    } else {
      SB_ERROR(SB_EINVAL, "%s: layer_norm (--layer-norm): layer %ld: expected max or percentile:P (got '%.*s')", what,
               i, (int)rl, r);
    }
    p += len;
    if (!*p) break;
    p++;   /* past the comma: another entry must follow */
  }
  return SB_OK;
}

/* ---- building the converted layers ---- */

static void set_shape(int *rank, int *c, int *h, int *w, sb_shape s) {
  *rank = s.rank;
  *c = s.c;
  *h = s.h;
  *w = s.w;
}

static int build_layer(sb_convert_layer *C, const sb_model *m, const group *g, int q, int ng,
                       const double *lambda) {
  const sb_layer *L = &m->layers[g->lin];
  memset(C, 0, sizeof *C);
  C->kind = g->kind;
  int is_out = q == ng - 1;
  snprintf(C->name, sizeof C->name, "%s%d_%s", is_out ? "out" : "l", q, kind_names[g->kind]);
  if (is_out) snprintf(C->name, sizeof C->name, "out_%s", kind_names[g->kind]);
  set_shape(&C->in_rank, &C->in_c, &C->in_h, &C->in_w, L->in);
  set_shape(&C->out_rank, &C->out_c, &C->out_h, &C->out_w, m->layers[g->act].out);
  C->k = L->k;
  C->stride = L->stride;
  C->pad = L->pad;
  C->threshold = 1.0;
  C->lambda = lambda[q];
  C->spiking = g->spiking || is_out;
  C->qcfs_levels = g->qcfs >= 0 ? m->layers[g->qcfs].levels : 0;
  int len = snprintf(C->ann_layers, sizeof C->ann_layers, "%d", g->lin);
  for (int i = g->lin + 1; i <= g->act && len < (int)sizeof C->ann_layers - 8; i++)
    len += snprintf(C->ann_layers + len, sizeof C->ann_layers - (size_t)len, ",%d", i);
  double lprev = q > 0 ? lambda[q - 1] : 1.0;
  if (g->kind == SB_CONVERT_AVGPOOL) {
    C->pool_w = (float)(lprev / (lambda[q] * L->k * L->k));
    return SB_OK;
  }
  if (g->kind == SB_CONVERT_MAXPOOL) return SB_OK;
  size_t nw = L->n_params - (size_t)(L->kind == SB_LAYER_DENSE ? L->out.c : L->conv.OC);
  int OUT = L->kind == SB_LAYER_DENSE ? L->out.c : L->conv.OC;
  size_t per = nw / (size_t)OUT;
  C->w = sb_malloc(nw * sizeof *C->w);
  C->b = sb_malloc((size_t)OUT * sizeof *C->b);
  if (!C->w || !C->b) return SB_ENOMEM;
  const sb_layer *bn = g->bn >= 0 ? &m->layers[g->bn] : NULL;
  for (int o = 0; o < OUT; o++) {
    double s = 1, bias = L->b ? L->b[o] : 0;
    if (bn) {   /* fold: y = gamma (z - mean) / sqrt(var + eps) + beta (Ioffe & Szegedy 2015) */
      s = bn->w[o] / sqrt((double)bn->running_var[o] + bn->eps);
      bias = (bias - bn->running_mean[o]) * s + bn->b[o];
    }
    for (size_t j = 0; j < per; j++)
      C->w[(size_t)o * per + j] = (float)(L->w[(size_t)o * per + j] * s * lprev / lambda[q]);
    C->b[o] = (float)(bias / lambda[q]);
  }
  return SB_OK;
}

/* ---- potential calibration (Li et al. 2021; see convert.h) ---- */

static size_t n_channels(const sb_convert_layer *L) {
  return L->out_rank == 3 ? (size_t)L->out_c : sb_cl_out_size_(L);
}

/* Per-channel initial-membrane offsets of every non-gate layer, in order, for T = steps over the
 * first ns strided sample images of d. target: T * the ANN's mean normalised activation per channel
 * (clipped to one spike per step for spiking layers); measured: the converted network's mean spike
 * count (or V(T) for the membrane readout) per channel with the earlier layers already shifted. */
static int calibrate(sb_convert_net *net, sb_model *m, const group *g, int ng, const sb_dataset *d, size_t ns,
                     int steps) {
  size_t img = (size_t)d->h * (size_t)d->w;
  enum { B = 100 };
  uint8_t *imgs = sb_malloc(ns * img), *labels = sb_calloc(ns ? ns : 1, 1);
  float *x = sb_malloc(B * img * sizeof *x);
  double **target = sb_calloc((size_t)ng, sizeof *target), *stat = NULL;
  int rc = SB_OK;
  if (!imgs || !labels || !x || !target) { rc = SB_ENOMEM; goto out; }
  for (size_t k = 0; k < ns; k++) memcpy(imgs + k * img, d->images + sample_index(k, d->n, ns) * img, img);
  for (int q = 0; q < ng; q++)
    if (g[q].kind != SB_CONVERT_MAXPOOL && !(target[q] = sb_calloc(n_channels(&net->layers[q]), sizeof(double)))) {
      rc = SB_ENOMEM;
      goto out;
    }
  for (size_t s0 = 0; s0 < ns; s0 += B) {   /* the ANN's side: mean activation per channel */
    int nb = (int)(ns - s0 < B ? ns - s0 : B);
    to_float(x, imgs + s0 * img, (size_t)nb * img);
    if (!sb_model_forward(m, x, nb, 0)) { rc = SB_ENOMEM; goto out; }
    for (int q = 0; q < ng; q++) {
      if (!target[q]) continue;
      const sb_convert_layer *L = &net->layers[q];
      const float *a = sb_model_layer_output(m, g[q].act);
      size_t per = sb_cl_out_size_(L), n = (size_t)nb * per;
      double inv = 1.0 / L->lambda;
      for (size_t i = 0; i < n; i++) {
        double r = a[i] * inv;
        if (L->spiking) r = r < 0 ? 0 : r > 1 ? 1 : r;
        target[q][sb_cl_channel_(L, i % per, 0)] += r;
      }
    }
  }
  int quiet = sb_quiet;
  sb_quiet = 1;   /* the inner evaluations' progress lines would interleave with the caller's */
  for (int q = 0; q < ng && !rc; q++) {
    if (!target[q]) continue;
    sb_convert_layer *L = &net->layers[q];
    size_t nc = n_channels(L), pos = sb_cl_out_size_(L) / nc;
    sb_free(stat);
    if (!(stat = sb_calloc(nc, sizeof *stat)) || !(L->v_shift = sb_calloc(nc, sizeof *L->v_shift))) {
      rc = SB_ENOMEM;
      break;
    }
    sb_convert_eval_opts eo;
    sb_convert_eval_opts_default(&eo);
    eo.steps = steps;
    eo.stat_layer = q;
    eo.stat = stat;
    sb_convert_result res;
    if ((rc = sb_convert_eval_clocked(net, imgs, labels, ns, &eo, &res))) break;
    sb_convert_result_free(&res);
    double per = (double)ns * (double)pos;
    for (size_t c = 0; c < nc; c++) L->v_shift[c] = (float)((steps * target[q][c] - stat[c]) / per);
  }
  sb_quiet = quiet;
out:
  if (target)
    for (int q = 0; q < ng; q++) sb_free(target[q]);
  sb_free(target);
  sb_free(stat);
  sb_free(imgs);
  sb_free(labels);
  sb_free(x);
  return rc;
}

int sb_convert_file(sb_convert_net **out, const char *ann_path, const sb_convert_opts *o) {
  *out = NULL;
  sb_model *m = NULL;
  int rc = sb_model_load(&m, ann_path);
  if (rc) return rc;
  group *g = sb_malloc((size_t)m->n_layers * sizeof *g);
  double *lambda = sb_malloc((size_t)m->n_layers * sizeof *lambda);
  sb_convert_net *net = sb_calloc(1, sizeof *net);
  int *inherit = NULL;
  double *lnorm = NULL;
  sb_dataset train = {0}, test = {0};
  int ng = 0;
  if (!g || !lambda || !net) { rc = SB_ENOMEM; goto fail; }
  if (m->input.rank != 3 || m->input.c != 1) {
    rc = SB_SET_ERROR(SB_EUNSUPPORTED, "%s: input_shape: expected an image (1, H, W) (got rank %d, %d channels)",
                      ann_path, m->input.rank, m->input.c);
    goto fail;
  }
  if ((rc = plan(m, ann_path, g, &ng))) goto fail;
  if (!(inherit = sb_calloc((size_t)ng, sizeof *inherit))) { rc = SB_ENOMEM; goto fail; }
  if ((rc = pool_norm_parse(ann_path, o->pool_norm, g, ng, inherit))) goto fail;
  if (!(lnorm = sb_calloc((size_t)ng, sizeof *lnorm))) { rc = SB_ENOMEM; goto fail; }
  if ((rc = layer_norm_parse(ann_path, o->layer_norm, g, ng, inherit, o->readout_spikes, lnorm))) goto fail;
  int need_data = 0;
  for (int q = 0; q < ng; q++)
    need_data |= g[q].qcfs < 0 && g[q].kind != SB_CONVERT_MAXPOOL && (q < ng - 1 || o->readout_spikes);
  sb_convert_opts oo = *o;
  int need_train = need_data || o->calib_steps > 0;
  if (o->samples && need_train) {   /* caller's images: a view, never freed here */
    train.n = o->n_given;
    train.h = o->given_h;
    train.w = o->given_w;
    train.images = (uint8_t *)(uintptr_t)o->samples;
    oo.n_samples = (int)o->n_given;
  }
  if ((need_train && !o->samples) || o->eval_ann) {
    if (need_train && !o->samples && (rc = sb_fmnist_load(o->data_dir, "train", &train))) goto fail;
    if (o->eval_ann && (rc = sb_fmnist_load(o->data_dir, "test", &test))) goto fail;
    if ((train.n && (train.h != m->input.h || train.w != m->input.w)) ||
        (test.n && (test.h != m->input.h || test.w != m->input.w))) {
      rc = SB_SET_ERROR(SB_EINVAL, "%s: input_shape (1, %d, %d) does not match the data set's %dx%d images",
                        ann_path, m->input.h, m->input.w, train.n ? train.h : test.h, train.n ? train.w : test.w);
      goto fail;
    }
  }
  if (need_data && (rc = norm_factors(m, g, ng, &train, &oo, o->readout_spikes, inherit, lnorm, lambda))) {
    if (rc != SB_ENOMEM) sb_error_prefix_(rc, "%s", ann_path);
    goto fail;
  }
  if (!need_data)
    for (int q = 0; q < ng; q++)
      lambda[q] = g[q].qcfs >= 0 ? m->layers[g[q].qcfs].w[0] : q > 0 ? lambda[q - 1] : 1.0;
  net->layers = sb_calloc((size_t)ng, sizeof *net->layers);
  if (!net->layers) { rc = SB_ENOMEM; goto fail; }
  net->n_layers = ng;
  for (int q = 0; q < ng; q++)
    if ((rc = build_layer(&net->layers[q], m, &g[q], q, ng, lambda))) goto fail;
  if (!o->readout_spikes) net->layers[ng - 1].spiking = 0;
  else net->layers[ng - 1].spiking = 1;
  net->in_c = m->input.c;
  net->in_h = m->input.h;
  net->in_w = m->input.w;
  net->reset_zero = o->reset_zero;
  net->v_init = o->v_init >= 0 ? o->v_init : 0.5;
  net->readout_spikes = o->readout_spikes;
  if (o->norm_max) snprintf(net->norm, sizeof net->norm, "max");
  else snprintf(net->norm, sizeof net->norm, "percentile:%g", o->percentile);
  if (o->pool_norm) {
    size_t len = strlen(net->norm);
    snprintf(net->norm + len, sizeof net->norm - len, "+pool:%s", o->pool_norm);
  }
  if (o->layer_norm) {
    size_t len = strlen(net->norm);
    snprintf(net->norm + len, sizeof net->norm - len, "+layers:%s", o->layer_norm);
  }
  if (o->calib_steps > 0) {
    if (!train.n) {
      rc = SB_SET_ERROR(SB_EINVAL, "%s: calibration needs sample images (the training set)", ann_path);
      goto fail;
    }
    size_t ns = (size_t)oo.n_samples < train.n ? (size_t)oo.n_samples : train.n;
    if ((rc = calibrate(net, m, g, ng, &train, ns, o->calib_steps))) goto fail;
    net->calib_steps = o->calib_steps;
  }
  net->n_norm_samples = need_data ? (int)((size_t)oo.n_samples < train.n ? (size_t)oo.n_samples : train.n) : 0;
  snprintf(net->source, sizeof net->source, "%s", ann_path);
  snprintf(net->ann_name, sizeof net->ann_name, "%s", m->name ? m->name : "");
  for (int i = 0; i < m->n_layers; i++) {
    const sb_layer *L = &m->layers[i];
    if (L->kind == SB_LAYER_DENSE) net->ann_macs += (double)L->in.c * L->out.c;
    if (L->kind == SB_LAYER_CONV2D) net->ann_macs += (double)sb_shape_size(L->out) * L->conv.C * L->k * L->k;
  }
  if (o->eval_ann && test.n) {
    net->ann_pred = sb_malloc(test.n);
    if (!net->ann_pred) { rc = SB_ENOMEM; goto fail; }
    net->n_ann_pred = test.n;
    if ((rc = ann_predict(m, &test, net->ann_pred))) goto fail;
  }
  *out = net;
  net = NULL;
fail:
  sb_convert_net_free(net);
  if (o->samples) memset(&train, 0, sizeof train);
  sb_dataset_free(&train);
  sb_dataset_free(&test);
  sb_free(g);
  sb_free(lambda);
  sb_free(inherit);
  sb_free(lnorm);
  sb_model_free(m);
  return rc;
}

/* ---- the converted-network file ---- */

static int write_shape(hid_t grp, const char *name, int rank, int c, int h, int w) {
  int64_t v[3] = {c, h, w};
  return sb_h5_attr_write_int64s(grp, name, v, rank == 3 ? 3 : 1);
}

int sb_convert_save(const sb_convert_net *net, const char *path) {
  sb_h5_out f;
  int rc = sb_h5_create(&f, path);
  if (rc) return rc;
  hid_t r = f.file;
  int64_t in[3] = {net->in_c, net->in_h, net->in_w}, nl = net->n_layers, ver = 1, ns = net->n_norm_samples;
  rc |= sb_h5_attr_write_string(r, "format", "spikebridge-snn");
  rc |= sb_h5_attr_write_int64s(r, "version", &ver, 1);
  rc |= sb_h5_attr_write_string(r, "source", net->source);
  rc |= sb_h5_attr_write_string(r, "ann_name", net->ann_name);
  rc |= sb_h5_attr_write_string(r, "neuron", "if_subtract");
  rc |= sb_h5_attr_write_string(r, "norm", net->norm);
  rc |= sb_h5_attr_write_int64s(r, "n_norm_samples", &ns, 1);
  rc |= sb_h5_attr_write_string(r, "reset", net->reset_zero ? "zero" : "subtract");
  rc |= sb_h5_attr_write_doubles(r, "v_init", &net->v_init, 1);
  if (net->calib_steps) {
    int64_t cs = net->calib_steps;
    rc |= sb_h5_attr_write_int64s(r, "calib_steps", &cs, 1);
  }
  rc |= sb_h5_attr_write_string(r, "readout", net->readout_spikes ? "spikes" : "membrane");
  rc |= sb_h5_attr_write_int64s(r, "input_shape", in, 3);
  rc |= sb_h5_attr_write_int64s(r, "n_layers", &nl, 1);
  rc |= sb_h5_attr_write_doubles(r, "ann_macs", &net->ann_macs, 1);
  rc |= sb_h5_attr_write_string(r, "version_spikebridge", SB_VERSION);
  if (net->n_ann_pred)
    rc |= sb_h5_write_1d(r, "ann_predictions", H5T_STD_U8LE, H5T_NATIVE_UINT8, net->ann_pred, net->n_ann_pred);
  for (int i = 0; i < net->n_layers && !rc; i++) {
    const sb_convert_layer *L = &net->layers[i];
    char gname[32];
    snprintf(gname, sizeof gname, "layers/%03d", i);
    hid_t g = sb_h5_group(r, gname);
    if (g < 0) { rc = SB_EIO; break; }
    int64_t k = L->k, s = L->stride, p = L->pad, sp = L->spiking, ql = L->qcfs_levels;
    double pw = L->pool_w;
    rc |= sb_h5_attr_write_string(g, "kind", kind_names[L->kind]);
    rc |= sb_h5_attr_write_string(g, "name", L->name);
    rc |= sb_h5_attr_write_string(g, "ann_layers", L->ann_layers);
    rc |= write_shape(g, "in_shape", L->in_rank, L->in_c, L->in_h, L->in_w);
    rc |= write_shape(g, "out_shape", L->out_rank, L->out_c, L->out_h, L->out_w);
    rc |= sb_h5_attr_write_doubles(g, "threshold", &L->threshold, 1);
    rc |= sb_h5_attr_write_doubles(g, "lambda", &L->lambda, 1);
    rc |= sb_h5_attr_write_int64s(g, "spiking", &sp, 1);
    if (ql) rc |= sb_h5_attr_write_int64s(g, "qcfs_levels", &ql, 1);
    if (L->kind != SB_CONVERT_DENSE) {
      rc |= sb_h5_attr_write_int64s(g, "kernel", &k, 1);
      rc |= sb_h5_attr_write_int64s(g, "stride", &s, 1);
      rc |= sb_h5_attr_write_int64s(g, "padding", &p, 1);
    }
    if (L->kind == SB_CONVERT_AVGPOOL) rc |= sb_h5_attr_write_doubles(g, "pool_weight", &pw, 1);
    if (L->kind == SB_CONVERT_DENSE) {
      size_t d[2] = {sb_cl_out_size_(L), sb_cl_in_size_(L)};
      rc |= sb_h5_write_float(g, "weight", L->w, 2, d);
      rc |= sb_h5_write_float(g, "bias", L->b, 1, d);
    } else if (L->kind == SB_CONVERT_CONV) {
      size_t d[4] = {(size_t)L->out_c, (size_t)L->in_c, (size_t)L->k, (size_t)L->k};
      rc |= sb_h5_write_float(g, "weight", L->w, 4, d);
      rc |= sb_h5_write_float(g, "bias", L->b, 1, d);
    }
    if (L->v_shift) {
      size_t d[1] = {L->out_rank == 3 ? (size_t)L->out_c : sb_cl_out_size_(L)};
      rc |= sb_h5_write_float(g, "v_shift", L->v_shift, 1, d);
    }
    H5Gclose(g);
  }
  if (rc) {
    sb_h5_abort(&f);
    SB_ERROR(SB_EIO, "%s: cannot write the converted network", path);
  }
  return sb_h5_commit(&f);
}

int sb_convert_file_is_snn(const char *path) {
  hid_t f;
  sb_h5_quiet();
  if (sb_h5_open_read(path, &f)) {
    sb_error_clear();
    return 0;
  }
  char *fmt = NULL;
  int ok = sb_h5_attr_read_string(f, "format", &fmt) == SB_OK && !strcmp(fmt, "spikebridge-snn");
  sb_free(fmt);
  sb_error_clear();
  H5Fclose(f);
  return ok;
}

static int read_i(hid_t g, const char *file, const char *grp, const char *name, int64_t *v, size_t want) {
  size_t n = 0;
  if (sb_h5_attr_read_int64s(g, name, v, want, &n) || n != want)
    SB_ERROR(SB_EFORMAT, "%s: %s@%s: missing or not %zu integer(s)", file, grp, name, want);
  return SB_OK;
}
static int read_d(hid_t g, const char *file, const char *grp, const char *name, double *v) {
  size_t n = 0;
  if (sb_h5_attr_read_doubles(g, name, v, 1, &n) || n != 1)
    SB_ERROR(SB_EFORMAT, "%s: %s@%s: missing or not a number", file, grp, name);
  return SB_OK;
}
static int read_s(hid_t g, const char *file, const char *grp, const char *name, char *buf, size_t cap) {
  char *s = NULL;
  if (sb_h5_attr_read_string(g, name, &s)) SB_ERROR(SB_EFORMAT, "%s: %s@%s: missing string attribute", file, grp, name);
  snprintf(buf, cap, "%s", s);
  sb_free(s);
  return SB_OK;
}

static int read_shape(hid_t g, const char *file, const char *grp, const char *name, int *rank, int *c, int *h,
                      int *w) {
  int64_t v[3];
  size_t n = 0;
  if (sb_h5_attr_read_int64s(g, name, v, 3, &n) || (n != 1 && n != 3) || v[0] < 1 || v[0] > 1 << 24 ||
      (n == 3 && (v[1] < 1 || v[2] < 1 || v[1] > 1 << 16 || v[2] > 1 << 16)))
    SB_ERROR(SB_EFORMAT, "%s: %s@%s: expected 1 or 3 positive integers (channels <= 2^24, height and width <= 2^16)",
             file, grp, name);
  *rank = (int)n;
  *c = (int)v[0];
  *h = n == 3 ? (int)v[1] : 1;
  *w = n == 3 ? (int)v[2] : 1;
  return SB_OK;
}

/* Weights, biases and offsets of a converted network are in threshold units (a weight of 1 makes
 * one spike per input spike); beyond this they can only come from a damaged file. */
#define SB_SNN_MAX_VALUE 1e4

static int read_tensor(hid_t g, const char *file, const char *grp, const char *name, float **out, int rank,
                       const size_t *want) {
  size_t dims[4], n;
  int r;
  void *data = NULL;
  if (sb_h5_exists(g, name)) {   /* integers would be truncated weights: refuse them */
    hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
    if (ds >= 0) {
      hid_t ft = H5Dget_type(ds);
      H5T_class_t cls = H5Tget_class(ft);
      H5Tclose(ft);
      H5Dclose(ds);
      if (cls != H5T_FLOAT) SB_ERROR(SB_EFORMAT, "%s: /%s/%s: expected a float32 dataset (got another type)", file, grp, name);
    }
  }
  if (sb_h5_read(g, name, H5T_NATIVE_FLOAT, &data, &n, &r, dims, 4)) {
    sb_error_clear();
    if (!sb_h5_exists(g, name)) SB_ERROR(SB_EFORMAT, "%s: /%s/%s: missing dataset", file, grp, name);
    SB_ERROR(SB_EFORMAT, "%s: /%s/%s: cannot read as a float dataset (corrupt, or not a numeric dataset)", file, grp,
             name);
  }
  int ok = r == rank;
  for (int i = 0; ok && i < rank; i++) ok = dims[i] == want[i];
  if (!ok) {
    sb_free(data);
    char a[96] = "", b[96] = "";
    for (int i = 0; i < rank; i++) snprintf(a + strlen(a), sizeof a - strlen(a), i ? ", %zu" : "%zu", want[i]);
    for (int i = 0; i < r && i < 4; i++) snprintf(b + strlen(b), sizeof b - strlen(b), i ? ", %zu" : "%zu", dims[i]);
    SB_ERROR(SB_EFORMAT, "%s: /%s/%s: expected shape (%s) (got (%s))", file, grp, name, a, b);
  }
  const float *x = data;
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i]) || fabsf(x[i]) > SB_SNN_MAX_VALUE) {
      double bad = x[i];
      sb_free(data);
      SB_ERROR(SB_EFORMAT, "%s: /%s/%s: element %zu: expected a finite value within +-%g threshold units (got %g)", file,
               grp, name, i, SB_SNN_MAX_VALUE, bad);
    }
  *out = data;
  return SB_OK;
}

static int load_layer(hid_t f, const char *path, int i, sb_convert_layer *L) {
  char grp[32], kind[32];
  snprintf(grp, sizeof grp, "layers/%03d", i);
  if (!sb_h5_exists(f, grp)) SB_ERROR(SB_EFORMAT, "%s: /%s: missing group", path, grp);
  hid_t g = H5Gopen2(f, grp, H5P_DEFAULT);
  if (g < 0) SB_ERROR(SB_EFORMAT, "%s: /%s: cannot open group", path, grp);
  int rc = read_s(g, path, grp, "kind", kind, sizeof kind);
  if (!rc) {
    int k = -1;
    for (int j = 0; j < SB_CONVERT_NKINDS; j++)
      if (!strcmp(kind, kind_names[j])) k = j;
    if (k < 0) rc = SB_SET_ERROR(SB_EFORMAT, "%s: /%s@kind: expected dense, conv, avgpool or maxpool (got '%s')", path, grp, kind);
    L->kind = (sb_convert_kind)k;
  }
  int64_t v;
  if (!rc) rc = read_s(g, path, grp, "name", L->name, sizeof L->name);
  if (!rc && sb_h5_attr_exists(g, "ann_layers")) rc = read_s(g, path, grp, "ann_layers", L->ann_layers, sizeof L->ann_layers);
  if (!rc) rc = read_shape(g, path, grp, "in_shape", &L->in_rank, &L->in_c, &L->in_h, &L->in_w);
  if (!rc) rc = read_shape(g, path, grp, "out_shape", &L->out_rank, &L->out_c, &L->out_h, &L->out_w);
  if (!rc) rc = read_d(g, path, grp, "threshold", &L->threshold);
  if (!rc && !(L->threshold > 0 && isfinite(L->threshold)))
    rc = SB_SET_ERROR(SB_EFORMAT, "%s: /%s@threshold: must be finite and > 0 (got %g)", path, grp, L->threshold);
  if (!rc) rc = read_d(g, path, grp, "lambda", &L->lambda);
  if (!rc && !(L->lambda > 0 && isfinite(L->lambda)))
    rc = SB_SET_ERROR(SB_EFORMAT, "%s: /%s@lambda: must be finite and > 0 (got %g)", path, grp, L->lambda);
  if (!rc && !(rc = read_i(g, path, grp, "spiking", &v, 1))) {
    if (v != 0 && v != 1) rc = SB_SET_ERROR(SB_EFORMAT, "%s: /%s@spiking: expected 0 or 1 (got %lld)", path, grp, (long long)v);
    L->spiking = v != 0;
  }
  if (!rc && sb_h5_attr_exists(g, "qcfs_levels") && !(rc = read_i(g, path, grp, "qcfs_levels", &v, 1))) {
    if (v < 1 || v > 1 << 16)
      rc = SB_SET_ERROR(SB_EFORMAT, "%s: /%s@qcfs_levels: expected 1..%d, the QCFS quantisation steps (got %lld)", path,
                        grp, 1 << 16, (long long)v);
    L->qcfs_levels = (int)v;
  }
  if (!rc && L->kind != SB_CONVERT_DENSE) {
    if (!(rc = read_i(g, path, grp, "kernel", &v, 1))) L->k = (int)v;
    if (!rc && !(rc = read_i(g, path, grp, "stride", &v, 1))) L->stride = (int)v;
    if (!rc && !(rc = read_i(g, path, grp, "padding", &v, 1))) L->pad = (int)v;
    if (!rc && (L->k < 1 || L->stride < 1 || L->pad < 0 || L->in_rank != 3 || L->out_rank != 3))
      rc = SB_SET_ERROR(SB_EFORMAT, "%s: /%s: kernel/stride must be >= 1, padding >= 0, shapes (C, H, W)", path, grp);
    if (!rc && (L->out_h != (L->in_h + 2 * L->pad - L->k) / L->stride + 1 ||
                L->out_w != (L->in_w + 2 * L->pad - L->k) / L->stride + 1))
      rc = SB_SET_ERROR(SB_EFORMAT, "%s: /%s@out_shape: expected %d x %d from in_shape, kernel, stride, padding (got %d x %d)",
                        path, grp, (L->in_h + 2 * L->pad - L->k) / L->stride + 1,
                        (L->in_w + 2 * L->pad - L->k) / L->stride + 1, L->out_h, L->out_w);
    if (!rc && L->kind != SB_CONVERT_CONV && L->out_c != L->in_c)
      rc = SB_SET_ERROR(SB_EFORMAT, "%s: /%s@out_shape: a pool keeps the %d channels (got %d)", path, grp, L->in_c, L->out_c);
  }
  if (!rc && L->kind == SB_CONVERT_AVGPOOL) {
    double pw;
    if (!(rc = read_d(g, path, grp, "pool_weight", &pw))) L->pool_w = (float)pw;
    if (!rc && !(pw > 0 && isfinite(pw)))
      rc = SB_SET_ERROR(SB_EFORMAT, "%s: /%s@pool_weight: must be finite and > 0 (got %g)", path, grp, pw);
  }
  if (!rc && L->kind == SB_CONVERT_DENSE) {
    size_t d[2] = {sb_cl_out_size_(L), sb_cl_in_size_(L)};
    rc = read_tensor(g, path, grp, "weight", &L->w, 2, d);
    if (!rc) rc = read_tensor(g, path, grp, "bias", &L->b, 1, d);
  } else if (!rc && L->kind == SB_CONVERT_CONV) {
    size_t d[4] = {(size_t)L->out_c, (size_t)L->in_c, (size_t)L->k, (size_t)L->k};
    rc = read_tensor(g, path, grp, "weight", &L->w, 4, d);
    if (!rc) rc = read_tensor(g, path, grp, "bias", &L->b, 1, d);
  }
  if (!rc && sb_h5_exists(g, "v_shift")) {   /* potential calibration: one offset per channel */
    size_t d[1] = {L->out_rank == 3 ? (size_t)L->out_c : sb_cl_out_size_(L)};
    if (L->kind == SB_CONVERT_MAXPOOL)
      rc = SB_SET_ERROR(SB_EFORMAT, "%s: /%s/v_shift: maxpool gates have no membrane", path, grp);
    else
      rc = read_tensor(g, path, grp, "v_shift", &L->v_shift, 1, d);
  }
  H5Gclose(g);
  return rc;
}

int sb_convert_load(sb_convert_net **out, const char *path) {
  *out = NULL;
  hid_t f;
  sb_h5_quiet();
  int rc = sb_h5_open_read(path, &f);
  if (rc) return rc;
  sb_convert_net *net = sb_calloc(1, sizeof *net);
  char fmt[64] = "", s[32];
  int64_t v[3];
  if (!net) { rc = SB_ENOMEM; goto done; }
  if ((rc = read_s(f, path, "", "format", fmt, sizeof fmt))) goto done;
  if (strcmp(fmt, "spikebridge-snn")) {
    rc = SB_SET_ERROR(SB_EFORMAT, "%s: @format: expected \"spikebridge-snn\" (got \"%s\")%s", path, fmt,
                      strcmp(fmt, "spikebridge-ann") ? "" : "; convert it first: spikebridge convert");
    goto done;
  }
  if ((rc = read_i(f, path, "", "version", v, 1))) goto done;
  if (v[0] != 1) { rc = SB_SET_ERROR(SB_EFORMAT, "%s: @version: expected 1 (got %lld)", path, (long long)v[0]); goto done; }
  if ((rc = read_i(f, path, "", "input_shape", v, 3))) goto done;
  net->in_c = (int)v[0];
  net->in_h = (int)v[1];
  net->in_w = (int)v[2];
  if ((rc = read_i(f, path, "", "n_layers", v, 1))) goto done;
  if (v[0] < 1 || v[0] > 1000) { rc = SB_SET_ERROR(SB_EFORMAT, "%s: @n_layers: expected 1..1000 (got %lld)", path, (long long)v[0]); goto done; }
  int nl = (int)v[0];
  if ((rc = read_s(f, path, "", "reset", s, sizeof s))) goto done;
  if (strcmp(s, "subtract") && strcmp(s, "zero")) { rc = SB_SET_ERROR(SB_EFORMAT, "%s: @reset: expected subtract or zero (got %s)", path, s); goto done; }
  net->reset_zero = !strcmp(s, "zero");
  if ((rc = read_s(f, path, "", "readout", s, sizeof s))) goto done;
  if (strcmp(s, "membrane") && strcmp(s, "spikes")) { rc = SB_SET_ERROR(SB_EFORMAT, "%s: @readout: expected membrane or spikes (got %s)", path, s); goto done; }
  net->readout_spikes = !strcmp(s, "spikes");
  if ((rc = read_d(f, path, "", "v_init", &net->v_init))) goto done;
  if (!(net->v_init >= 0 && net->v_init < 1)) {
    rc = SB_SET_ERROR(SB_EFORMAT, "%s: @v_init: expected a fraction of the threshold in [0, 1) (got %g)", path, net->v_init);
    goto done;
  }
  if (sb_h5_attr_exists(f, "norm")) read_s(f, path, "", "norm", net->norm, sizeof net->norm);
  if (sb_h5_attr_exists(f, "source")) read_s(f, path, "", "source", net->source, sizeof net->source);
  if (sb_h5_attr_exists(f, "ann_name")) read_s(f, path, "", "ann_name", net->ann_name, sizeof net->ann_name);
  if (sb_h5_attr_exists(f, "ann_macs")) {
    if ((rc = read_d(f, path, "", "ann_macs", &net->ann_macs))) goto done;
    if (!(net->ann_macs > 0 && isfinite(net->ann_macs))) {
      rc = SB_SET_ERROR(SB_EFORMAT, "%s: @ann_macs: expected a finite count > 0 (got %g)", path, net->ann_macs);
      goto done;
    }
  }
  if (sb_h5_attr_exists(f, "calib_steps")) {
    if ((rc = read_i(f, path, "", "calib_steps", v, 1))) goto done;
    if (v[0] < 1 || v[0] > 100000) {
      rc = SB_SET_ERROR(SB_EFORMAT, "%s: @calib_steps: expected 1..100000, the T of convert --calibrate (got %lld)",
                        path, (long long)v[0]);
      goto done;
    }
    net->calib_steps = (int)v[0];
  }
  if (sb_h5_attr_exists(f, "n_norm_samples") && !read_i(f, path, "", "n_norm_samples", v, 1)) net->n_norm_samples = (int)v[0];
  if (sb_h5_exists(f, "ann_predictions")) {
    void *d = NULL;
    size_t n = 0;
    if ((rc = sb_h5_read(f, "ann_predictions", H5T_NATIVE_UINT8, &d, &n, NULL, NULL, 0))) {
      sb_error_clear();
      rc = SB_SET_ERROR(SB_EFORMAT, "%s: /ann_predictions: cannot read as uint8 classes (corrupt or out of range)", path);
      goto done;
    }
    net->ann_pred = d;
    net->n_ann_pred = n;
  }
  net->layers = sb_calloc((size_t)nl, sizeof *net->layers);
  if (!net->layers) { rc = SB_ENOMEM; goto done; }
  net->n_layers = nl;
  for (int i = 0; i < nl && !rc; i++) rc = load_layer(f, path, i, &net->layers[i]);
  if (!rc) {
    char extra[32];
    snprintf(extra, sizeof extra, "layers/%03d", nl);
    if (sb_h5_exists(f, extra))
      rc = SB_SET_ERROR(SB_EFORMAT, "%s: @n_layers: %d, but /%s exists too (expected n_layers = the number of "
                        "/layers groups)", path, nl, extra);
  }
  /* consecutive layers must fit together */
  for (int i = 0; i < nl && !rc; i++) {
    const sb_convert_layer *L = &net->layers[i];
    size_t want = i ? sb_cl_out_size_(&net->layers[i - 1]) : (size_t)net->in_c * (size_t)net->in_h * (size_t)net->in_w;
    if (sb_cl_in_size_(L) != want)
      rc = SB_SET_ERROR(SB_EFORMAT, "%s: /layers/%03d@in_shape: expected %zu inputs from the previous layer (got %zu)",
                        path, i, want, sb_cl_in_size_(L));
    else if (i == 0 && L->kind != SB_CONVERT_DENSE && L->kind != SB_CONVERT_CONV)
      rc = SB_SET_ERROR(SB_EFORMAT, "%s: /layers/000@kind: the first layer must be dense or conv (got %s)", path, kind_names[L->kind]);
    else if (i < nl - 1 && !L->spiking)
      rc = SB_SET_ERROR(SB_EFORMAT, "%s: /layers/%03d@spiking: only the output layer may be non-spiking", path, i);
    else if (i == nl - 1 && L->spiking != net->readout_spikes)
      rc = SB_SET_ERROR(SB_EFORMAT, "%s: /layers/%03d@spiking: %d contradicts @readout = %s (expected %d)", path, i,
                        L->spiking, net->readout_spikes ? "spikes" : "membrane", net->readout_spikes);
    else if (!L->name[0] || strchr(L->name, '/') || !strcmp(L->name, ".") || !strcmp(L->name, ".."))
      rc = SB_SET_ERROR(SB_EFORMAT, "%s: /layers/%03d@name: expected a non-empty population name without '/' (got "
                        "'%s')", path, i, L->name);
    else if (L->kind == SB_CONVERT_AVGPOOL) {   /* the one weight the format derives: lambda_prev / (lambda K^2) */
      double lp = i ? net->layers[i - 1].lambda : 1.0, pw = lp / (L->lambda * L->k * L->k);
      if (!(fabs(L->pool_w - pw) <= 1e-5 * pw))
        rc = SB_SET_ERROR(SB_EFORMAT, "%s: /layers/%03d@pool_weight: expected lambda_prev / (lambda K^2) = %g (got %g)",
                          path, i, pw, (double)L->pool_w);
    }
    if (rc) break;
    for (int j = 0; j < i && !rc; j++)
      if (!strcmp(net->layers[j].name, L->name))
        rc = SB_SET_ERROR(SB_EFORMAT, "%s: /layers/%03d@name: '%s' is also the name of /layers/%03d (population names "
                          "must be unique)", path, i, L->name, j);
    if (rc) break;
    if (L->v_shift && !net->calib_steps)
      rc = SB_SET_ERROR(SB_EFORMAT, "%s: /layers/%03d/v_shift: present, but the file has no @calib_steps (the T it "
                        "was calibrated for; written by convert --calibrate)", path, i);
    else if (L->v_shift && L->spiking) {   /* a channel's deficit lies in [-(T + 1), T] spikes */
      size_t nc = L->out_rank == 3 ? (size_t)L->out_c : sb_cl_out_size_(L);
      for (size_t c = 0; c < nc && !rc; c++)
        if (fabs(L->v_shift[c]) > net->calib_steps + 1.0)
          rc = SB_SET_ERROR(SB_EFORMAT, "%s: /layers/%03d/v_shift[%zu]: expected |offset| <= calib_steps + 1 = %d "
                            "threshold units (got %g)", path, i, c, net->calib_steps + 1, (double)L->v_shift[c]);
    }
  }
  if (!rc && net->n_ann_pred) {
    size_t nout = sb_cl_out_size_(&net->layers[nl - 1]);
    for (size_t k = 0; k < net->n_ann_pred && !rc; k++)
      if (net->ann_pred[k] >= nout)
        rc = SB_SET_ERROR(SB_EFORMAT, "%s: /ann_predictions[%zu]: expected a class 0..%zu (got %d)", path, k, nout - 1,
                          net->ann_pred[k]);
  }
done:
  H5Fclose(f);
  if (rc) sb_convert_net_free(net);
  else *out = net;
  return rc;
}

/* ---- results ---- */

int sb_convert_result_init_(sb_convert_result *r, int steps, int n_layers, size_t n, size_t n_record) {
  memset(r, 0, sizeof *r);
  r->steps = steps;
  r->n_layers = n_layers;
  r->n_images = n;
  r->correct = sb_calloc((size_t)steps, sizeof *r->correct);
  r->synops = sb_calloc((size_t)steps, sizeof *r->synops);
  r->spikes = sb_calloc((size_t)n_layers, sizeof *r->spikes);
  r->layer_synops = sb_calloc((size_t)n_layers, sizeof *r->layer_synops);
  r->pred = sb_calloc(n ? n : 1, 1);
  r->labels = sb_calloc(n ? n : 1, 1);
  r->n_record = n_record;
  if (n_record) r->rec = sb_calloc(n_record * (size_t)n_layers, sizeof *r->rec);
  if (!r->correct || !r->synops || !r->spikes || !r->layer_synops || !r->pred || !r->labels || (n_record && !r->rec)) {
    sb_convert_result_free(r);
    return SB_ENOMEM;
  }
  return SB_OK;
}

void sb_convert_result_free(sb_convert_result *r) {
  if (!r) return;
  sb_free(r->correct);
  sb_free(r->synops);
  sb_free(r->spikes);
  sb_free(r->layer_synops);
  sb_free(r->pred);
  sb_free(r->labels);
  if (r->rec)
    for (size_t i = 0; i < r->n_record * (size_t)r->n_layers; i++) {
      sb_free(r->rec[i].t);
      sb_free(r->rec[i].id);
    }
  sb_free(r->rec);
  memset(r, 0, sizeof *r);
}

int sb_convert_spikes_push_(sb_convert_spikes *s, double t, uint64_t id) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 256;
    double *nt = sb_realloc(s->t, cap * sizeof *nt);
    if (!nt) return SB_ENOMEM;
    s->t = nt;
    uint64_t *ni = sb_realloc(s->id, cap * sizeof *ni);
    if (!ni) return SB_ENOMEM;
    s->id = ni;
    s->cap = cap;
  }
  s->t[s->n] = t;
  s->id[s->n++] = id;
  return SB_OK;
}

int sb_convert_write_spikes(const sb_convert_net *net, const sb_convert_result *r, const char *path) {
  sb_h5_out f;
  int rc = sb_h5_create(&f, path);
  if (rc) return rc;
  int64_t magic = 0x0A7A, ver[2] = {0, 1};
  rc |= sb_h5_attr_write_int64s(f.file, "magic", &magic, 1);
  rc |= sb_h5_attr_write_int64s(f.file, "version", ver, 2);
  /* recorded image k spans [k T, (k + 1) T] ms: the recording ends at n_record T (analyze's window) */
  double t_stop = (double)r->n_record * r->steps;
  rc |= sb_h5_attr_write_string(f.file, "spikebridge_version", SB_VERSION);
  rc |= sb_h5_attr_write_doubles(f.file, "t_stop", &t_stop, 1);
  for (int l = 0; l < net->n_layers && !rc; l++) {
    size_t tot = 0;
    for (size_t k = 0; k < r->n_record; k++) tot += r->rec[k * (size_t)r->n_layers + (size_t)l].n;
    double *t = sb_malloc((tot + 1) * sizeof *t);
    uint64_t *id = sb_malloc((tot + 1) * sizeof *id);
    if (!t || !id) { sb_free(t); sb_free(id); rc = SB_ENOMEM; break; }
    size_t p = 0;
    for (size_t k = 0; k < r->n_record; k++) {   /* images are consecutive in time: by_time */
      const sb_convert_spikes *s = &r->rec[k * (size_t)r->n_layers + (size_t)l];
      if (!s->n) continue;   /* s->t may be NULL */
      memcpy(t + p, s->t, s->n * sizeof *t);
      memcpy(id + p, s->id, s->n * sizeof *id);
      p += s->n;
    }
    char name[80];
    snprintf(name, sizeof name, "spikes/%s", net->layers[l].name);
    hid_t g = sb_h5_group(f.file, name);
    if (g < 0) rc = SB_EIO;
    else {
      rc |= sb_h5_attr_write_string(g, "sorting", "by_time");
      const sb_convert_layer *L = &net->layers[l];
      int64_t nn = (int64_t)L->out_c * L->out_h * L->out_w;   /* silent neurons count in analyses */
      rc |= sb_h5_attr_write_int64s(g, "n_nodes", &nn, 1);
      rc |= sb_h5_write_1d(g, "timestamps", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, t, tot);
      rc |= sb_h5_write_1d(g, "node_ids", H5T_STD_U64LE, H5T_NATIVE_UINT64, id, tot);
      if (!rc) {
        hid_t d = H5Dopen2(g, "timestamps", H5P_DEFAULT);
        if (d >= 0) {
          rc |= sb_h5_attr_write_string(d, "units", "ms");
          H5Dclose(d);
        }
      }
      H5Gclose(g);
    }
    sb_free(t);
    sb_free(id);
  }
  if (rc) {
    sb_h5_abort(&f);
    if (rc == SB_ENOMEM) return SB_ENOMEM;
    SB_ERROR(SB_EIO, "%s: cannot write spikes", path);
  }
  return sb_h5_commit(&f);
}

void sb_convert_eval_opts_default(sb_convert_eval_opts *o) {
  memset(o, 0, sizeof *o);
  o->steps = 100;
  o->coding = SB_CODING_CURRENT;
  o->seed = 1;
  o->v_init = -1;
  o->batch = 256;
  o->delay = 0.1;
  o->stat_layer = -1;
}
