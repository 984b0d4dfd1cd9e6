/* ANN layers and models against PyTorch fixtures (tests/ref/ann_layers.h5, made by
 * tests/ref/make_ann_fixtures.py), finite differences, im2col vs the naive convolution,
 * model files (round trip, PyTorch export, bad files) and architecture-file errors. */
#include "models/ann/ann.h"
#include "sim/core.h"
#include "tests/testutil.h"

#include <float.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define REF "tests/ref/ann_layers.h5"

/* Tolerance 1e-5 relative to the tensor's largest magnitude: float32 with a different
 * summation order (OpenBLAS vs PyTorch's kernels) differs by a few ulp of the largest terms. */
#define TOL 1e-5

static float *rd(hid_t g, const char *name, size_t *n) {
  void *p = NULL;
  size_t k = 0;
  int st = sb_h5_read(g, name, H5T_NATIVE_FLOAT, &p, &k, NULL, NULL, 0);
  if (st) fprintf(stderr, "%s\n", sb_last_error());
  assert_int_equal(st, SB_OK);
  if (n) *n = k;
  return p;
}

static long ai(hid_t g, const char *name) {
  int64_t v = 0;
  size_t n;
  assert_int_equal(sb_h5_attr_read_int64s(g, name, &v, 1, &n), SB_OK);
  return (long)v;
}

static double ad(hid_t g, const char *name) {
  double v = 0;
  size_t n;
  assert_int_equal(sb_h5_attr_read_doubles(g, name, &v, 1, &n), SB_OK);
  return v;
}

static void check_vec(const float *got, const float *want, size_t n, double tol, const char *what) {
  double scale = 0;
  for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs((double)want[i]));
  if (scale == 0) scale = 1;
  for (size_t i = 0; i < n; i++) check_abs(got[i], want[i], tol * scale, "%s[%zu] (scale %g)", what, i, scale);
}

static hid_t open_ref(void) {
  sb_h5_quiet();
  hid_t f;
  int st = sb_h5_open_read(REF, &f);
  if (st) fprintf(stderr, "%s\n", sb_last_error());
  assert_int_equal(st, SB_OK);
  return f;
}

/* ---- each layer kind against PyTorch ---- */

static void test_dense_vs_torch(void **state) {
  (void)state;
  hid_t f = open_ref(), g = H5Gopen2(f, "dense", H5P_DEFAULT);
  int N = (int)ai(g, "N"), IN = (int)ai(g, "IN"), OUT = (int)ai(g, "OUT");
  size_t n;
  float *x = rd(g, "x", NULL), *y = rd(g, "y", &n), *dy = rd(g, "dy", NULL), *dx = rd(g, "dx", NULL);
  float *w = rd(g, "w", NULL), *b = rd(g, "b", NULL), *dw = rd(g, "dw", NULL), *db = rd(g, "db", NULL);
  float out[64], dinp[64], gw[64] = {0}, gb[8] = {0};
  sb_dense_forward(out, x, w, b, N, IN, OUT);
  check_vec(out, y, n, TOL, "dense y");
  sb_dense_backward(dinp, gw, gb, dy, x, w, N, IN, OUT);
  check_vec(dinp, dx, (size_t)N * IN, TOL, "dense dx");
  check_vec(gw, dw, (size_t)OUT * IN, TOL, "dense dw");
  check_vec(gb, db, (size_t)OUT, TOL, "dense db");
  sb_free(x); sb_free(y); sb_free(dy); sb_free(dx); sb_free(w); sb_free(b); sb_free(dw); sb_free(db);
  H5Gclose(g);
  H5Fclose(f);
}

static void conv_case(hid_t f, const char *name) {
  hid_t g = H5Gopen2(f, name, H5P_DEFAULT);
  sb_conv_shape s;
  int N = (int)ai(g, "N");
  assert_int_equal(sb_conv_shape_init(&s, (int)ai(g, "C"), (int)ai(g, "H"), (int)ai(g, "W"), (int)ai(g, "OC"),
                                      (int)ai(g, "K"), (int)ai(g, "S"), (int)ai(g, "P")), SB_OK);
  size_t ny, nx, nw;
  float *x = rd(g, "x", &nx), *y = rd(g, "y", &ny), *dy = rd(g, "dy", NULL), *dx = rd(g, "dx", NULL);
  float *w = rd(g, "w", &nw), *b = rd(g, "b", NULL), *dw = rd(g, "dw", NULL), *db = rd(g, "db", NULL);
  assert_int_equal(ny, (size_t)N * s.OC * s.OH * s.OW);
  float *ws = sb_malloc(sb_conv2d_workspace(&s, 64) * sizeof(float));
  float *out = sb_malloc(ny * sizeof(float)), *dinp = sb_malloc(nx * sizeof(float));
  float *gw = sb_calloc(nw, sizeof(float)), *gb = sb_calloc((size_t)s.OC, sizeof(float));
  char what[64];
  /* im2col, the naive loops, and Winograd (forced; where the shape allows it: conv_k5p0) */
  for (int mode = 0; mode < 3; mode++) {
    const int naive = mode == 1;
    const char *tag = mode == 1 ? " naive" : (mode == 2 ? " winograd" : "");
    s.algo = mode == 2 ? SB_CONV_WINOGRAD : SB_CONV_IM2COL;
    if (mode == 2 && !sb_conv2d_uses_winograd(&s)) break;
    memset(gw, 0, nw * sizeof(float));
    memset(gb, 0, (size_t)s.OC * sizeof(float));
    if (naive) sb_conv2d_forward_naive(out, x, w, b, &s, N);
    else sb_conv2d_forward(out, x, w, b, &s, N, ws);
    snprintf(what, sizeof what, "%s%s y", name, tag);
    check_vec(out, y, ny, TOL, what);
    if (naive) sb_conv2d_backward_naive(dinp, gw, gb, dy, x, w, &s, N);
    else sb_conv2d_backward(dinp, gw, gb, dy, x, w, &s, N, ws);
    snprintf(what, sizeof what, "%s%s dx", name, tag);
    check_vec(dinp, dx, nx, TOL, what);
    snprintf(what, sizeof what, "%s%s dw", name, tag);
    check_vec(gw, dw, nw, TOL, what);
    snprintf(what, sizeof what, "%s%s db", name, tag);
    check_vec(gb, db, (size_t)s.OC, TOL, what);
  }
  sb_free(ws); sb_free(out); sb_free(dinp); sb_free(gw); sb_free(gb);
  sb_free(x); sb_free(y); sb_free(dy); sb_free(dx); sb_free(w); sb_free(b); sb_free(dw); sb_free(db);
  H5Gclose(g);
}

static void test_conv2d_vs_torch(void **state) {
  (void)state;
  hid_t f = open_ref();
  conv_case(f, "conv_p1");
  conv_case(f, "conv_s2p2");
  conv_case(f, "conv_1x1");
  conv_case(f, "conv_k5p0");
  H5Fclose(f);
}

static void pool_case(hid_t f, const char *name, int is_max) {
  hid_t g = H5Gopen2(f, name, H5P_DEFAULT);
  int N = (int)ai(g, "N"), C = (int)ai(g, "C"), H = (int)ai(g, "H"), W = (int)ai(g, "W");
  int K = (int)ai(g, "K"), S = (int)ai(g, "S");
  size_t nx, ny;
  float *x = rd(g, "x", &nx), *y = rd(g, "y", &ny), *dy = rd(g, "dy", NULL), *dx = rd(g, "dx", NULL);
  float *out = sb_malloc(ny * sizeof(float)), *dinp = sb_malloc(nx * sizeof(float));
  int *am = sb_malloc(ny * sizeof(int));
  char what[64];
  if (is_max) {
    sb_maxpool_forward(out, am, x, N, C, H, W, K, S);
    sb_maxpool_backward(dinp, dy, am, N, C, H, W, K, S);
  } else {
    sb_avgpool_forward(out, x, N, C, H, W, K, S);
    sb_avgpool_backward(dinp, dy, N, C, H, W, K, S);
  }
  snprintf(what, sizeof what, "%s y", name);
  check_vec(out, y, ny, TOL, what);
  snprintf(what, sizeof what, "%s dx", name);
  check_vec(dinp, dx, nx, TOL, what);
  sb_free(out); sb_free(dinp); sb_free(am);
  sb_free(x); sb_free(y); sb_free(dy); sb_free(dx);
  H5Gclose(g);
}

static void test_pooling_vs_torch(void **state) {
  (void)state;
  hid_t f = open_ref();
  const char *cases[] = {"k2s2", "k3s2", "k2s1"};
  for (int i = 0; i < 3; i++) {
    char name[32];
    snprintf(name, sizeof name, "avgpool_%s", cases[i]);
    pool_case(f, name, 0);
    snprintf(name, sizeof name, "maxpool_%s", cases[i]);
    pool_case(f, name, 1);
  }
  H5Fclose(f);
}

static void test_activations_vs_torch(void **state) {
  (void)state;
  hid_t f = open_ref();
  const char *names[] = {"relu", "leaky_relu", "sigmoid", "tanh", "qcfs"};
  for (int k = 0; k < 5; k++) {
    hid_t g = H5Gopen2(f, names[k], H5P_DEFAULT);
    size_t n;
    float *x = rd(g, "x", &n), *y = rd(g, "y", NULL), *dy = rd(g, "dy", NULL), *dx = rd(g, "dx", NULL);
    float *out = sb_malloc(n * sizeof(float)), *dinp = sb_malloc(n * sizeof(float));
    float dlam = 0.0f;
    float *w = NULL, *dw = NULL;
    switch (k) {
    case 0: sb_relu_forward(out, x, n); sb_relu_backward(dinp, dy, x, n); break;
    case 1: {
      float a = (float)ad(g, "alpha");
      sb_leaky_relu_forward(out, x, n, a);
      sb_leaky_relu_backward(dinp, dy, x, n, a);
      break;
    }
    case 2: sb_sigmoid_forward(out, x, n); sb_sigmoid_backward(dinp, dy, out, n); break;
    case 3: sb_tanh_forward(out, x, n); sb_tanh_backward(dinp, dy, out, n); break;
    case 4: {
      w = rd(g, "w", NULL);
      dw = rd(g, "dw", NULL);
      int L = (int)ai(g, "levels");
      sb_qcfs_forward(out, x, n, w[0], L);
      sb_qcfs_backward(dinp, &dlam, dy, x, n, w[0], L);
      check_rel(dlam, dw[0], TOL, "qcfs dlambda");
      break;
    }
    }
    char what[64];
    snprintf(what, sizeof what, "%s y", names[k]);
    check_vec(out, y, n, TOL, what);
    snprintf(what, sizeof what, "%s dx", names[k]);
    check_vec(dinp, dx, n, TOL, what);
    sb_free(out); sb_free(dinp); sb_free(w); sb_free(dw);
    sb_free(x); sb_free(y); sb_free(dy); sb_free(dx);
    H5Gclose(g);
  }
  H5Fclose(f);
}

static void test_batchnorm_vs_torch(void **state) {
  (void)state;
  hid_t f = open_ref();
  const char *names[] = {"batchnorm2d", "batchnorm1d", "batchnorm2d_eval"};
  for (int k = 0; k < 3; k++) {
    hid_t g = H5Gopen2(f, names[k], H5P_DEFAULT);
    int N = (int)ai(g, "N"), C = (int)ai(g, "C"), HW = (int)ai(g, "HW");
    float eps = (float)ad(g, "eps");
    size_t n;
    float *x = rd(g, "x", &n), *y = rd(g, "y", NULL), *dy = rd(g, "dy", NULL), *dx = rd(g, "dx", NULL);
    float *w = rd(g, "w", NULL), *b = rd(g, "b", NULL), *dw = rd(g, "dw", NULL), *db = rd(g, "db", NULL);
    float *rm = rd(g, "running_mean0", NULL), *rv = rd(g, "running_var0", NULL);
    float *rm1 = rd(g, "running_mean", NULL), *rv1 = rd(g, "running_var", NULL);
    float *out = sb_malloc(n * sizeof(float)), *dinp = sb_malloc(n * sizeof(float));
    float mean[8], invstd[8], gw[8] = {0}, gb[8] = {0};
    char what[64];
    if (k < 2) {
      sb_batchnorm_forward_train(out, mean, invstd, rm, rv, x, w, b, N, C, HW, eps, (float)ad(g, "momentum"));
      sb_batchnorm_backward(dinp, gw, gb, dy, x, mean, invstd, w, N, C, HW);
      snprintf(what, sizeof what, "%s dx", names[k]);
      check_vec(dinp, dx, n, TOL, what);
      snprintf(what, sizeof what, "%s running_var", names[k]);
      check_vec(rv, rv1, (size_t)C, TOL, what);
      snprintf(what, sizeof what, "%s running_mean", names[k]);
      check_vec(rm, rm1, (size_t)C, TOL, what);
    } else {
      sb_batchnorm_forward_eval(out, x, w, b, rm, rv, N, C, HW, eps);
    }
    snprintf(what, sizeof what, "%s y", names[k]);
    check_vec(out, y, n, TOL, what);
    if (k < 2) {
      snprintf(what, sizeof what, "%s dgamma", names[k]);
      check_vec(gw, dw, (size_t)C, TOL, what);
      snprintf(what, sizeof what, "%s dbeta", names[k]);
      check_vec(gb, db, (size_t)C, TOL, what);
    }
    sb_free(out); sb_free(dinp); sb_free(rm); sb_free(rv); sb_free(rm1); sb_free(rv1);
    sb_free(x); sb_free(y); sb_free(dy); sb_free(dx); sb_free(w); sb_free(b); sb_free(dw); sb_free(db);
    H5Gclose(g);
  }
  H5Fclose(f);
}

/* ---- a whole PyTorch model exported by tests/ref/export_torch.py ---- */

static void test_torch_export_model(void **state) {
  (void)state;
  sb_h5_quiet();
  sb_model *m = NULL;
  int st = sb_model_load(&m, "tests/ref/ann_torch_model.h5");
  if (st) fprintf(stderr, "%s\n", sb_last_error());
  assert_int_equal(st, SB_OK);
  assert_int_equal(m->n_layers, 14);
  hid_t f = open_ref(), g = H5Gopen2(f, "model", H5P_DEFAULT);
  size_t nx, ny, np;
  float *x = rd(g, "x", &nx), *le = rd(g, "logits_eval", &ny), *lt = rd(g, "logits_train", NULL);
  float *dy = rd(g, "dy", NULL), *dx = rd(g, "dx", NULL), *grads = rd(g, "grads", &np);
  int N = (int)(nx / 256);
  /* the acceptance: the imported model gives PyTorch's logits within 1e-5 */
  const float *y = sb_model_forward(m, x, N, 0);
  assert_non_null(y);
  check_vec(y, le, ny, TOL, "exported model eval logits");
  /* training mode: batch statistics; backward of sum(y * dy) gives PyTorch's gradients */
  y = sb_model_forward(m, x, N, 1);
  check_vec(y, lt, ny, TOL, "exported model train logits");
  sb_model_zero_grad(m);
  float *gx = sb_malloc(nx * sizeof(float));
  sb_model_backward(m, x, dy, N, gx);
  assert_int_equal(np, m->n_params);
  for (int i = 0; i < m->n_layers; i++) {
    const sb_layer *L = &m->layers[i];
    if (!L->n_params) continue;
    char what[64];
    snprintf(what, sizeof what, "exported model layer %d (%s) grads", i, sb_layer_kind_name(L->kind));
    check_vec(m->grads + L->param_off, grads + L->param_off, L->n_params, 1e-4, what);
  }
  check_vec(gx, dx, nx, 1e-4, "exported model input gradient");
  sb_free(gx);
  sb_free(x); sb_free(le); sb_free(lt); sb_free(dy); sb_free(dx); sb_free(grads);
  H5Gclose(g);
  H5Fclose(f);
  sb_model_free(m);
}

/* ---- finite differences through whole models ---- */

/* loss = sum(y * r) in double; compares every parameter and input gradient with central
 * differences (float32 forward: step 1e-2 relative, tolerance 2e-2 of the gradient scale). */
static void fd_check(const char *json, int N, uint64_t seed) {
  sb_model *m = NULL;
  int st = sb_model_from_json(&m, json, "fd", NULL);
  if (st) fprintf(stderr, "%s\n", sb_last_error());
  assert_int_equal(st, SB_OK);
  sb_model_init_params(m, seed);
  gsl_rng *r = sb_rng_alloc(seed, SB_RNG_USER, 0);
  size_t nin = (size_t)N * sb_shape_size(m->input), nout = (size_t)N * sb_shape_size(sb_model_output_shape(m));
  float *x = sb_malloc(nin * sizeof(float)), *ro = sb_malloc(nout * sizeof(float)), *gx = sb_malloc(nin * sizeof(float));
  for (size_t i = 0; i < nin; i++) x[i] = (float)(gsl_rng_uniform(r) * 2.0 - 0.5);
  for (size_t i = 0; i < nout; i++) ro[i] = (float)(gsl_rng_uniform(r) * 2.0 - 1.0);
  for (size_t i = 0; i < m->n_params; i++) m->params[i] += (float)(0.1 * (gsl_rng_uniform(r) - 0.5));
  sb_model_forward(m, x, N, 1);
  sb_model_zero_grad(m);
  sb_model_backward(m, x, ro, N, gx);
  float *state0 = sb_malloc((m->n_state + 1) * sizeof(float));
  memcpy(state0, m->state, m->n_state * sizeof(float));
#define LOSS(val) do { const float *yy = sb_model_forward(m, x, N, 1); double s_ = 0; \
    for (size_t q = 0; q < nout; q++) { s_ += (double)yy[q] * (double)ro[q]; } \
    (val) = s_; memcpy(m->state, state0, m->n_state * sizeof(float)); } while (0)
  double gscale = 0;
  for (size_t i = 0; i < m->n_params; i++) gscale = fmax(gscale, fabs((double)m->grads[i]));
  for (size_t i = 0; i < m->n_params; i += 1 + m->n_params / 60) {
    float p0 = m->params[i];
    float h = 2e-3f * fmaxf(1.0f, fabsf(p0));
    double lp, lm;
    m->params[i] = p0 + h; LOSS(lp);
    m->params[i] = p0 - h; LOSS(lm);
    m->params[i] = p0;
    check_abs(m->grads[i], (lp - lm) / (2.0 * (double)h), 1e-2 * gscale, "fd param %zu of %s", i, m->name);
  }
  double xscale = 0;
  for (size_t i = 0; i < nin; i++) xscale = fmax(xscale, fabs((double)gx[i]));
  for (size_t i = 0; i < nin; i += 1 + nin / 40) {
    float x0 = x[i], h = 2e-3f;
    double lp, lm;
    x[i] = x0 + h; LOSS(lp);
    x[i] = x0 - h; LOSS(lm);
    x[i] = x0;
    check_abs(gx[i], (lp - lm) / (2.0 * (double)h), 1e-2 * xscale, "fd input %zu of %s", i, m->name);
  }
#undef LOSS
  sb_free(state0);
  sb_free(x); sb_free(ro); sb_free(gx);
  gsl_rng_free(r);
  sb_model_free(m);
}

static void test_finite_differences(void **state) {
  (void)state;
  /* smooth activations so central differences are meaningful; relu, pools and batchnorm
   * included with inputs that rarely sit on a kink */
  fd_check("{\"name\":\"fd_dense\",\"input\":[6],\"layers\":[{\"kind\":\"dense\",\"out\":5},{\"kind\":\"tanh\"},"
           "{\"kind\":\"dense\",\"out\":4},{\"kind\":\"leaky_relu\",\"alpha\":0.3},{\"kind\":\"dense\",\"out\":3},"
           "{\"kind\":\"sigmoid\"}]}", 3, 11);
  fd_check("{\"name\":\"fd_conv\",\"input\":[2,7,7],\"layers\":[{\"kind\":\"conv2d\",\"out\":3,\"kernel\":3,"
           "\"padding\":1},{\"kind\":\"tanh\"},{\"kind\":\"avgpool\",\"kernel\":2},{\"kind\":\"conv2d\",\"out\":2,"
           "\"kernel\":2,\"stride\":1},{\"kind\":\"sigmoid\"},{\"kind\":\"flatten\"},{\"kind\":\"dense\",\"out\":3}]}",
           2, 12);
  fd_check("{\"name\":\"fd_bn\",\"input\":[2,6,6],\"layers\":[{\"kind\":\"conv2d\",\"out\":3,\"kernel\":3,"
           "\"stride\":2,\"padding\":1},{\"kind\":\"batchnorm\"},{\"kind\":\"tanh\"},{\"kind\":\"maxpool\",\"kernel\":3,"
           "\"stride\":1},{\"kind\":\"flatten\"},{\"kind\":\"dense\",\"out\":4},{\"kind\":\"batchnorm\"},"
           "{\"kind\":\"sigmoid\"}]}", 4, 13);
}

/* ---- the fused conv2d -> relu [-> avgpool] blocks of sb_model_forward/backward ---- */

/* The model runs conv2d -> relu [-> avgpool] per image in one pass (models/ann/internal.h);
 * that must give exactly (bit for bit) what the layer kernels give one layer at a time. */
static void fused_case(const char *json) {
  sb_model *m = NULL;
  int st = sb_model_from_json(&m, json, "fused", NULL);
  if (st) fprintf(stderr, "%s\n", sb_last_error());
  assert_int_equal(st, SB_OK);
  sb_model_init_params(m, 5);
  const int N = 5, nl = m->n_layers;
  gsl_rng *r = sb_rng_alloc(5, SB_RNG_USER, 0);
  size_t nin = (size_t)N * sb_shape_size(m->input), nout = (size_t)N * sb_shape_size(sb_model_output_shape(m));
  float *x = sb_malloc(nin * sizeof(float)), *dy = sb_malloc(nout * sizeof(float));
  float *gx = sb_malloc(nin * sizeof(float)), *rgx = sb_malloc(nin * sizeof(float));
  for (size_t i = 0; i < nin; i++) x[i] = (float)(gsl_rng_uniform(r) * 2.0 - 0.7);
  for (size_t i = 0; i < nout; i++) dy[i] = (float)(gsl_rng_uniform(r) * 2.0 - 1.0);
  /* layer by layer with the public kernels */
  float **a = sb_calloc((size_t)nl, sizeof(float *)), **g = sb_calloc((size_t)nl + 1, sizeof(float *));
  float *rgrad = sb_calloc(m->n_params, sizeof(float));
  size_t cws = 0;
  for (int i = 0; i < nl; i++) {
    a[i] = sb_malloc((size_t)N * sb_shape_size(m->layers[i].out) * sizeof(float));
    g[i] = sb_malloc((size_t)N * sb_shape_size(m->layers[i].in) * sizeof(float));
    if (m->layers[i].kind == SB_LAYER_CONV2D) {
      size_t w = sb_conv2d_workspace(&m->layers[i].conv, 64);
      if (w > cws) cws = w;
    }
  }
  float *ws = sb_malloc(cws * sizeof(float));
  for (int i = 0; i < nl; i++) {
    const sb_layer *L = &m->layers[i];
    const float *in = i ? a[i - 1] : x;
    size_t n_in = (size_t)N * sb_shape_size(L->in);
    switch (L->kind) {
    case SB_LAYER_CONV2D: sb_conv2d_forward(a[i], in, L->w, L->b, &L->conv, N, ws); break;
    case SB_LAYER_RELU: sb_relu_forward(a[i], in, n_in); break;
    case SB_LAYER_AVGPOOL: sb_avgpool_forward(a[i], in, N, L->in.c, L->in.h, L->in.w, L->k, L->stride); break;
    case SB_LAYER_FLATTEN: memcpy(a[i], in, n_in * sizeof(float)); break;
    case SB_LAYER_DENSE: sb_dense_forward(a[i], in, L->w, L->b, N, L->in.c, L->out.c); break;
    default: fail_msg("unexpected layer kind");
    }
  }
  for (int i = nl - 1; i >= 0; i--) {
    const sb_layer *L = &m->layers[i];
    const float *in = i ? a[i - 1] : x, *gi = i == nl - 1 ? dy : g[i + 1];
    float *d = i ? g[i] : rgx, *dw = rgrad + L->param_off, *db = L->n_params ? dw + (L->n_params - L->out.c) : NULL;
    size_t n_in = (size_t)N * sb_shape_size(L->in);
    switch (L->kind) {
    case SB_LAYER_CONV2D: sb_conv2d_backward(d, dw, db, gi, in, L->w, &L->conv, N, ws); break;
    case SB_LAYER_RELU: sb_relu_backward(d, gi, in, n_in); break;
    case SB_LAYER_AVGPOOL: sb_avgpool_backward(d, gi, N, L->in.c, L->in.h, L->in.w, L->k, L->stride); break;
    case SB_LAYER_FLATTEN: memcpy(d, gi, n_in * sizeof(float)); break;
    case SB_LAYER_DENSE: sb_dense_backward(d, dw, db, gi, in, L->w, N, L->in.c, L->out.c); break;
    default: fail_msg("unexpected layer kind");
    }
  }
  /* the model's fused path, twice: with the input gradient, and without (the training case) */
  for (int with_dx = 1; with_dx >= 0; with_dx--) {
    const float *y = sb_model_forward(m, x, N, 1);
    assert_non_null(y);
    for (int i = 0; i < nl; i++) {
      size_t n = (size_t)N * sb_shape_size(m->layers[i].out);
      if (memcmp(sb_model_layer_output(m, i), a[i], n * sizeof(float)))
        fail_msg("layer %d (%s): fused forward differs from the layer kernels", i,
                 sb_layer_kind_name(m->layers[i].kind));
    }
    sb_model_zero_grad(m);
    sb_model_backward(m, x, dy, N, with_dx ? gx : NULL);
    for (int i = 0; i < nl; i++) {
      const sb_layer *L = &m->layers[i];
      if (L->n_params && memcmp(m->grads + L->param_off, rgrad + L->param_off, L->n_params * sizeof(float)))
        fail_msg("layer %d (%s): fused parameter gradients differ from the layer kernels (with_dx %d)", i,
                 sb_layer_kind_name(L->kind), with_dx);
    }
    if (with_dx && memcmp(gx, rgx, nin * sizeof(float))) fail_msg("fused input gradient differs");
  }
  /* and the input gradient alone (sb_model_backward_input: no parameter gradients) */
  sb_model_zero_grad(m);
  memset(gx, 0, nin * sizeof(float));
  sb_model_backward_input(m, x, dy, N, gx);
  if (memcmp(gx, rgx, nin * sizeof(float))) fail_msg("fused input gradient (backward_input) differs");
  for (size_t i = 0; i < m->n_params; i++) assert_true(m->grads[i] == 0.0f);
  for (int i = 0; i < nl; i++) { sb_free(a[i]); sb_free(g[i]); }
  sb_free(a); sb_free(g); sb_free(rgrad); sb_free(ws);
  sb_free(x); sb_free(dy); sb_free(gx); sb_free(rgx);
  gsl_rng_free(r);
  sb_model_free(m);
}

static void test_fused_conv_blocks(void **state) {
  (void)state;
  /* a 3-layer block with 2x2 pooling, a 2-layer block with stride 2 (next layer a conv), and a
   * 1x1 block with overlapping 2x2/stride-1 pooling */
  fused_case("{\"name\":\"fused\",\"input\":[3,10,9],\"layers\":[{\"kind\":\"conv2d\",\"out\":4,\"kernel\":3,\"padding\":1},"
             "{\"kind\":\"relu\"},{\"kind\":\"avgpool\",\"kernel\":2},{\"kind\":\"conv2d\",\"out\":5,\"kernel\":3,\"stride\":2,"
             "\"padding\":1},{\"kind\":\"relu\"},{\"kind\":\"conv2d\",\"out\":3,\"kernel\":1},{\"kind\":\"relu\"},"
             "{\"kind\":\"avgpool\",\"kernel\":2,\"stride\":1},{\"kind\":\"flatten\"},{\"kind\":\"dense\",\"out\":4}]}");
  /* Winograd blocks (5x5, stride 1, C >= 8: chosen automatically): with 2x2 pooling on an odd
   * 9x9 output, then without pooling; the first one also without an input gradient */
  fused_case("{\"name\":\"fused\",\"input\":[8,9,9],\"layers\":[{\"kind\":\"conv2d\",\"out\":8,\"kernel\":5,\"padding\":2},"
             "{\"kind\":\"relu\"},{\"kind\":\"avgpool\",\"kernel\":2},{\"kind\":\"conv2d\",\"out\":9,\"kernel\":5,"
             "\"padding\":2},{\"kind\":\"relu\"},{\"kind\":\"flatten\"},{\"kind\":\"dense\",\"out\":4}]}");
}

/* The convolution's weight and bias gradients are summed over fixed groups of images in group
 * order, so they are bit-identical for any thread count (and any assignment of groups to
 * threads); the other outputs are per image anyway. */
static void test_conv_thread_count_invariant(void **state) {
  (void)state;
#ifdef _OPENMP
  sb_conv_shape s;
  assert_int_equal(sb_conv_shape_init(&s, 3, 9, 8, 5, 3, 1, 1), SB_OK);
  const int N = 13;
  const size_t nx = (size_t)N * 3 * 9 * 8, ny = (size_t)N * 5 * s.OH * s.OW, nw = 5 * 3 * 9;
  gsl_rng *r = sb_rng_alloc(9, SB_RNG_USER, 0);
  float *x = sb_malloc(nx * sizeof(float)), *dy = sb_malloc(ny * sizeof(float)), *w = sb_malloc(nw * sizeof(float));
  float *ws = sb_malloc(sb_conv2d_workspace(&s, 3) * sizeof(float));
  float *dx[2], *dw[2], *db[2];
  for (size_t i = 0; i < nx; i++) x[i] = (float)gsl_rng_uniform(r);
  for (size_t i = 0; i < ny; i++) dy[i] = (float)(gsl_rng_uniform(r) - 0.5);
  for (size_t i = 0; i < nw; i++) w[i] = (float)(gsl_rng_uniform(r) - 0.5);
  const int nt0 = omp_get_max_threads();
  for (int k = 0; k < 2; k++) {
    dx[k] = sb_malloc(nx * sizeof(float));
    dw[k] = sb_calloc(nw, sizeof(float));
    db[k] = sb_calloc(5, sizeof(float));
    omp_set_num_threads(k ? 3 : 1);
    sb_conv2d_backward(dx[k], dw[k], db[k], dy, x, w, &s, N, ws);
  }
  omp_set_num_threads(nt0);
  assert_memory_equal(dw[0], dw[1], nw * sizeof(float));
  assert_memory_equal(db[0], db[1], 5 * sizeof(float));
  assert_memory_equal(dx[0], dx[1], nx * sizeof(float));
  for (int k = 0; k < 2; k++) { sb_free(dx[k]); sb_free(dw[k]); sb_free(db[k]); }
  sb_free(x); sb_free(dy); sb_free(w); sb_free(ws);
  gsl_rng_free(r);
#else
  skip();
#endif
}

/* ---- model files ---- */

static void test_save_load_roundtrip(void **state) {
  (void)state;
  sb_h5_quiet();
  sb_model *m = NULL, *m2 = NULL;
  assert_int_equal(sb_model_from_json(&m,
      "{\"name\":\"rt\",\"input\":[1,8,8],\"layers\":[{\"kind\":\"conv2d\",\"out\":3,\"kernel\":3,\"padding\":1},"
      "{\"kind\":\"batchnorm\"},{\"kind\":\"qcfs\",\"levels\":4,\"threshold\":1.5},{\"kind\":\"maxpool\",\"kernel\":2},"
      "{\"kind\":\"flatten\"},{\"kind\":\"dense\",\"out\":10}]}", "rt", NULL), SB_OK);
  sb_model_init_params(m, 5);
  for (size_t i = 0; i < m->n_state; i++) m->state[i] = 0.5f + 0.01f * (float)i;
  char path[512];
  snprintf(path, sizeof path, "%s/rt.h5", sb_test_tmpdir());
  const char *meta[] = {"test_accuracy", "0.5", NULL};
  assert_int_equal(sb_model_save(m, path, meta), SB_OK);
  assert_true(sb_model_file_is_ann(path));
  assert_int_equal(sb_model_load(&m2, path), SB_OK);
  assert_int_equal(m2->n_params, m->n_params);
  assert_memory_equal(m2->params, m->params, m->n_params * sizeof(float));
  assert_memory_equal(m2->state, m->state, m->n_state * sizeof(float));
  assert_int_equal(m2->layers[2].levels, 4);
  float x[2 * 64];
  for (int i = 0; i < 128; i++) x[i] = (float)((i * 29) % 17) / 17.0f;
  float y1[20];
  memcpy(y1, sb_model_forward(m, x, 2, 0), sizeof y1);
  const float *y2 = sb_model_forward(m2, x, 2, 0);
  assert_memory_equal(y1, y2, sizeof y1);
  sb_model_free(m);
  sb_model_free(m2);
}

static void test_bad_model_files(void **state) {
  (void)state;
  sb_h5_quiet();
  sb_model *m = NULL;
  char path[512];
  assert_int_equal(sb_model_load(&m, "/nonexistent/model.h5"), SB_EINVAL);
  assert_null(m);
  /* not HDF5 */
  snprintf(path, sizeof path, "%s/garbage.h5", sb_test_tmpdir());
  FILE *fp = fopen(path, "wb");
  fputs("this is not an HDF5 file\n", fp);
  fclose(fp);
  assert_int_equal(sb_model_load(&m, path), SB_EFORMAT);
  check_contains(sb_last_error(), "garbage.h5");
  /* truncated copy of a good file */
  snprintf(path, sizeof path, "%s/trunc.h5", sb_test_tmpdir());
  FILE *in = fopen("tests/ref/ann_torch_model.h5", "rb");
  assert_non_null(in);
  char buf[6000];
  size_t k = fread(buf, 1, sizeof buf, in);
  fclose(in);
  fp = fopen(path, "wb");
  fwrite(buf, 1, k, fp);
  fclose(fp);
  assert_int_equal(sb_model_load(&m, path), SB_EFORMAT);
  /* a weight with the wrong shape */
  sb_model *good = NULL;
  assert_int_equal(sb_model_builtin(&good, "mlp"), SB_OK);
  snprintf(path, sizeof path, "%s/bad_shape.h5", sb_test_tmpdir());
  assert_int_equal(sb_model_save(good, path, NULL), SB_OK);
  sb_model_free(good);
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  H5Ldelete(f, "layers/003/weight", H5P_DEFAULT);
  float z[12] = {0};
  size_t dims[2] = {3, 4};
  hid_t g = H5Gopen2(f, "layers/003", H5P_DEFAULT);
  sb_h5_write_float(g, "weight", z, 2, dims);
  H5Gclose(g);
  H5Fclose(f);
  assert_int_equal(sb_model_load(&m, path), SB_EFORMAT);
  check_contains(sb_last_error(), "/layers/003/weight: expected shape (256, 512)");
  check_contains(sb_last_error(), "(got (3, 4))");
  /* wrong format tag */
  f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  sb_h5_attr_write_string(f, "format", "something-else");
  H5Fclose(f);
  assert_int_equal(sb_model_load(&m, path), SB_EFORMAT);
  check_contains(sb_last_error(), "format");
  assert_null(m);
}

/* ---- architecture files ---- */

static void test_arch_errors(void **state) {
  (void)state;
  sb_model *m = NULL;
  assert_int_equal(sb_model_from_json(&m,
      "{\"layers\":[{\"kind\":\"conv2d\",\"out\":4,\"kernel\":5,\"padding\":2},{\"kind\":\"avgpool\",\"kernel\":2},"
      "{\"kind\":\"flatten\"},{\"kind\":\"dense\",\"in\":3000,\"out\":10}]}", "a.json", NULL), SB_EINVAL);
  check_contains(sb_last_error(), "a.json: layers[3] (dense): in: expected 784 from the previous layer (got 3000)");
  assert_int_equal(sb_model_from_json(&m, "{\"layers\":[{\"kind\":\"dense\",\"out\":10}]}", "b.json", NULL), SB_EINVAL);
  check_contains(sb_last_error(), "add a flatten layer");
  assert_int_equal(sb_model_from_json(&m, "{\"layers\":[{\"kind\":\"dense\",\"out\":10,}]}", "c.json", NULL), SB_EFORMAT);
  check_contains(sb_last_error(), "c.json:1:");
  assert_int_equal(sb_model_from_json(&m, "{\"layers\":[{\"kind\":\"dens\",\"out\":10}]}", "d.json", NULL), SB_EINVAL);
  check_contains(sb_last_error(), "layers[0].kind");
  assert_int_equal(sb_model_from_json(&m, "{\"layers\":[{\"kind\":\"conv2d\",\"out\":4,\"kernel\":31}]}", "e.json", NULL),
                   SB_EINVAL);
  check_contains(sb_last_error(), "does not fit");
  assert_int_equal(sb_model_from_json(&m, "{\"layers\":[{\"kind\":\"relu\",\"alhpa\":1}]}", "f.json", NULL), SB_EINVAL);
  check_contains(sb_last_error(), "layers[0].alhpa: unknown key");
  sb_train_config c;
  sb_train_config_default(&c);
  assert_int_equal(sb_model_from_json(&m, "{\"input\":[4],\"layers\":[{\"kind\":\"relu\"}],\"train\":{\"loss\":\"hinge\"}}",
                                      "g.json", &c), SB_EINVAL);
  check_contains(sb_last_error(), "train.loss: expected one of cross_entropy, mse, bce (got 'hinge')");
  assert_null(m);
  assert_int_equal(sb_model_from_json(&m, "{\"input\":[4],\"layers\":[{\"kind\":\"relu\"}],\"train\":{\"augment\":\"rotate\"}}",
                                      "h.json", &c), SB_EINVAL);
  check_contains(sb_last_error(), "train.augment: expected one of none, flip, crop, flip+crop (got 'rotate')");
  assert_int_equal(sb_model_from_json(&m, "{\"input\":[4],\"layers\":[{\"kind\":\"relu\"}],\"train\":{\"label_smoothing\":1.5}}",
                                      "i.json", &c), SB_EINVAL);
  check_contains(sb_last_error(), "train.label_smoothing");
  assert_int_equal(sb_model_from_json(&m, "{\"input\":[4],\"layers\":[{\"kind\":\"relu\"}],\"train\":{\"augment\":"
                                      "\"flip+crop\",\"crop_padding\":3,\"label_smoothing\":0.1}}", "j.json", &c), SB_OK);
  assert_string_equal(c.augment, "flip+crop");
  assert_int_equal(c.crop_padding, 3);
  check_rel(c.label_smoothing, 0.1, 1e-15, "label_smoothing from JSON");
  sb_model_free(m);
  m = NULL;
  /* the CLI's built-in recipes */
  sb_train_config_builtin(&c, "cnn");
  assert_string_equal(c.schedule, "cosine");
  assert_int_equal(c.batch, 64);
  check_rel(c.label_smoothing, 0.1, 1e-15, "cnn default label smoothing");
  sb_train_config_builtin(&c, "mlp");
  assert_string_equal(c.augment, "none");
  assert_string_equal(c.schedule, "cosine");
  assert_int_equal(c.batch, 128);
  assert_true(c.label_smoothing == 0.0);
  /* the built-ins have the shapes and parameter counts */
  const char *names[] = {"mlp", "cnn", "gan_g", "gan_d", "mlp_sigmoid", "cnn_maxpool"};
  size_t want[] = {784 * 512 + 512 + 512 * 256 + 256 + 256 * 10 + 10,
                   32 * 25 + 32 + 64 * 32 * 25 + 64 + 3136 * 128 + 128 + 128 * 10 + 10,
                   100 * 256 + 256 + 256 * 512 + 512 + 512 * 784 + 784,
                   784 * 512 + 512 + 512 * 256 + 256 + 256 + 1,
                   784 * 100 + 100 + 100 * 10 + 10,
                   32 * 25 + 32 + 64 * 32 * 25 + 64 + 1024 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10};
  for (int i = 0; i < 6; i++) {
    assert_int_equal(sb_model_builtin(&m, names[i]), SB_OK);
    assert_int_equal(m->n_params, want[i]);
    sb_model_free(m);
  }
}

/* every allocation failure in building, reserving and loading is reported, never a crash */
static void test_alloc_failures(void **state) {
  (void)state;
  sb_h5_quiet();
  for (long k = 1; k < 200; k++) {
    sb_model *m = NULL;
    sb_alloc_fail_after(k);
    int st = sb_model_load(&m, "tests/ref/ann_torch_model.h5");
    if (st == SB_OK) st = sb_model_reserve(m, 3);
    sb_alloc_fail_after(0);
    sb_model_free(m);
    if (st == SB_OK) break;
    assert_true(st == SB_ENOMEM || st == SB_EFORMAT);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dense_vs_torch),
      cmocka_unit_test(test_conv2d_vs_torch),
      cmocka_unit_test(test_pooling_vs_torch),
      cmocka_unit_test(test_activations_vs_torch),
      cmocka_unit_test(test_batchnorm_vs_torch),
      cmocka_unit_test(test_torch_export_model),
      cmocka_unit_test(test_finite_differences),
      cmocka_unit_test(test_fused_conv_blocks),
      cmocka_unit_test(test_conv_thread_count_invariant),
      cmocka_unit_test(test_save_load_roundtrip),
      cmocka_unit_test(test_bad_model_files),
      cmocka_unit_test(test_arch_errors),
      cmocka_unit_test(test_alloc_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
