/* Per-layer forward/backward timing of a built-in model on random inputs (not a test, not in
 * the library). Build and run:
 *   make && cc -O2 -fopenmp -I. bench/ann_layers.c build/libspikebridge.a $(pkg-config --libs
 *     hdf5-serial gsl jansson plplot openblas) -lm -o /tmp/ann_layers
 *   OMP_NUM_THREADS=1 /tmp/ann_layers cnn 64 20
 * Prints, per layer, the median CPU milliseconds (all threads) of its forward and backward over the repeats,
 * and a whole step (forward + backward + Adam). */
#include "learning/learning.h"
#include "models/ann/ann.h"
#include "sim/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* process CPU seconds (all threads): on a shared machine wall time measures the load */
static double cpu(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  const char *name = argc > 1 ? argv[1] : "cnn";
  int N = argc > 2 ? atoi(argv[2]) : 64, R = argc > 3 ? atoi(argv[3]) : 20;
  sb_model *m;
  if (sb_model_builtin(&m, name)) return 1;
  sb_model_init_params(m, 1);
  size_t isz = sb_shape_size(m->input), osz = sb_shape_size(sb_model_output_shape(m));
  float *x = malloc((size_t)N * isz * sizeof(float)), *dy = malloc((size_t)N * osz * sizeof(float));
  int *lab = malloc((size_t)N * sizeof(int));
  for (size_t i = 0; i < (size_t)N * isz; i++) x[i] = (float)((i * 2654435761u) % 1000) / 1000.0f;
  for (int i = 0; i < N; i++) lab[i] = i % (int)osz;
  sb_opt *opt = sb_opt_alloc(SB_OPT_ADAM, m->n_params);
  sb_model_reserve(m, N);
  int L = m->n_layers;
  double *tf = calloc((size_t)(L * R), sizeof(double)), *tb = calloc((size_t)(L * R), sizeof(double));
  double *ts = calloc((size_t)R, sizeof(double));
  float **dbuf = malloc((size_t)L * sizeof(float *));
  for (int i = 0; i < L; i++) dbuf[i] = malloc((size_t)N * sb_shape_size(m->layers[i].in) * sizeof(float));
  for (int r = 0; r < R; r++) {
    /* whole step through the public API */
    double t0 = cpu();
    const float *y = sb_model_forward(m, x, N, 1);
    sb_loss_softmax_xent_ls(dy, y, lab, N, (int)osz, 0.1, NULL);
    sb_model_zero_grad(m);
    sb_model_backward(m, x, dy, N, NULL);
    sb_opt_step(opt, m->params, m->grads);
    ts[r] = cpu() - t0;
    /* per layer: a one-layer model view is not public, so time through single-layer calls */
    for (int i = 0; i < L; i++) {
      sb_layer *Ly = &m->layers[i];
      const float *in = i ? m->acts[i - 1] : x;
      double a = cpu();
      switch (Ly->kind) {
      case SB_LAYER_DENSE: sb_dense_forward(m->acts[i], in, Ly->w, Ly->b, N, Ly->in.c, Ly->out.c); break;
      case SB_LAYER_CONV2D: sb_conv2d_forward(m->acts[i], in, Ly->w, Ly->b, &Ly->conv, N, m->conv_ws); break;
      case SB_LAYER_AVGPOOL: sb_avgpool_forward(m->acts[i], in, N, Ly->in.c, Ly->in.h, Ly->in.w, Ly->k, Ly->stride); break;
      case SB_LAYER_RELU: sb_relu_forward(m->acts[i], in, (size_t)N * sb_shape_size(Ly->in)); break;
      case SB_LAYER_FLATTEN: memcpy(m->acts[i], in, (size_t)N * sb_shape_size(Ly->in) * sizeof(float)); break;
      default: break;
      }
      tf[i * R + r] = cpu() - a;
    }
    for (int i = L - 1; i >= 0; i--) {
      sb_layer *Ly = &m->layers[i];
      const float *in = i ? m->acts[i - 1] : x;
      const float *g = i == L - 1 ? dy : dbuf[i + 1];
      float *d = i ? dbuf[i] : NULL;
      size_t n_in = (size_t)N * sb_shape_size(Ly->in);
      if (!d && !Ly->n_params) continue; /* e.g. a leading flatten: nothing to compute */
      double a = cpu();
      switch (Ly->kind) {
      case SB_LAYER_DENSE: sb_dense_backward(d, Ly->dw, Ly->db, g, in, Ly->w, N, Ly->in.c, Ly->out.c); break;
      case SB_LAYER_CONV2D: sb_conv2d_backward(d, Ly->dw, Ly->db, g, in, Ly->w, &Ly->conv, N, m->conv_ws); break;
      case SB_LAYER_AVGPOOL: sb_avgpool_backward(d, g, N, Ly->in.c, Ly->in.h, Ly->in.w, Ly->k, Ly->stride); break;
      case SB_LAYER_RELU: sb_relu_backward(d, g, in, n_in); break;
      case SB_LAYER_FLATTEN: memcpy(d, g, n_in * sizeof(float)); break;
      default: break;
      }
      tb[i * R + r] = cpu() - a;
    }
  }
  double sf = 0, sbk = 0;
  printf("%s, batch %d, %d repeats (median ms per batch)\n", name, N, R);
  for (int i = 0; i < L; i++) {
    qsort(tf + i * R, (size_t)R, sizeof(double), cmpd);
    qsort(tb + i * R, (size_t)R, sizeof(double), cmpd);
    double f = 1e3 * tf[i * R + R / 2], b = 1e3 * tb[i * R + R / 2];
    sf += f;
    sbk += b;
    printf("  %2d %-8s fwd %8.3f  bwd %8.3f\n", i, sb_layer_kind_name(m->layers[i].kind), f, b);
  }
  qsort(ts, (size_t)R, sizeof(double), cmpd);
  printf("  sum      fwd %8.3f  bwd %8.3f   whole step (API) %8.3f ms = %.1f s per 60000 images\n", sf, sbk,
         1e3 * ts[R / 2], ts[R / 2] * 60000.0 / N);
  return 0;
}
