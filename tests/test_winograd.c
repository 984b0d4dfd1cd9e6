/* Winograd F(2x2, 5x5) convolution (models/ann/winograd.c) against a double-precision direct
 * convolution for forward, backward data and backward filter over several shapes; against the
 * im2col path on the default CNN's second layer; finite differences; thread-count invariance;
 * the SB_CONV_ALGO switch. */
#include "models/ann/ann.h"
#include "sim/core.h"
#include "tests/testutil.h"

#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Error bound, relative to the largest magnitude of the reference tensor (as the PyTorch
 * fixture tests measure): fp32 Winograd with points 0, +-1, +-1/2, inf measured up to ~3e-6
 * (forward, C = 32) here; im2col is ~3e-7. */
#define WINO_TOL 1e-5

static double worst; /* largest error seen, printed at the end */

/* Double-precision direct convolution: y (N, OC, OH, OW) = conv(x, w) + b; dx, dw, db from dy. */
static void ref_forward(double *y, const float *x, const float *w, const float *b, const sb_conv_shape *s, int N) {
  const int C = s->C, H = s->H, W = s->W, K = s->K;
  for (int n = 0; n < N; n++)
    for (int k = 0; k < s->OC; k++)
      for (int oh = 0; oh < s->OH; oh++)
        for (int ow = 0; ow < s->OW; ow++) {
          double acc = b ? b[k] : 0.0;
          for (int c = 0; c < C; c++)
            for (int u = 0; u < K; u++)
              for (int v = 0; v < K; v++) {
                int ih = oh - s->P + u, iw = ow - s->P + v;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                acc += (double)w[((size_t)(k * C + c) * K + u) * K + v] * x[(((size_t)n * C + c) * H + ih) * W + iw];
              }
          y[(((size_t)n * s->OC + k) * s->OH + oh) * s->OW + ow] = acc;
        }
}

static void ref_backward(double *dx, double *dw, double *db, const float *dy, const float *x, const float *w,
                         const sb_conv_shape *s, int N) {
  const int C = s->C, H = s->H, W = s->W, K = s->K;
  memset(dx, 0, (size_t)N * C * H * W * sizeof(double));
  memset(dw, 0, (size_t)s->OC * C * K * K * sizeof(double));
  memset(db, 0, (size_t)s->OC * sizeof(double));
  for (int n = 0; n < N; n++)
    for (int k = 0; k < s->OC; k++)
      for (int oh = 0; oh < s->OH; oh++)
        for (int ow = 0; ow < s->OW; ow++) {
          const double g = dy[(((size_t)n * s->OC + k) * s->OH + oh) * s->OW + ow];
          db[k] += g;
          for (int c = 0; c < C; c++)
            for (int u = 0; u < K; u++)
              for (int v = 0; v < K; v++) {
                int ih = oh - s->P + u, iw = ow - s->P + v;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                const size_t xi = (((size_t)n * C + c) * H + ih) * W + iw, wi = ((size_t)(k * C + c) * K + u) * K + v;
                dx[xi] += g * w[wi];
                dw[wi] += g * x[xi];
              }
        }
}

/* max |got - want| / max |want|, asserted <= tol */
static double rel_err(const float *got, const double *want, size_t n, double tol, const char *what,
                      const sb_conv_shape *s, int N) {
  double scale = 0, e = 0;
  for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(want[i]));
  if (scale == 0) scale = 1;
  for (size_t i = 0; i < n; i++) e = fmax(e, fabs((double)got[i] - want[i]));
  e /= scale;
  if (!(e <= tol))
    fail_msg("%s: C=%d OC=%d %dx%d P=%d N=%d: relative error %.3g > %.3g", what, s->C, s->OC, s->H, s->W, s->P, N, e,
             tol);
  if (e > worst) worst = e;
  return e;
}

static void fill(float *a, size_t n, gsl_rng *r, double lo, double hi) {
  for (size_t i = 0; i < n; i++) a[i] = (float)(lo + (hi - lo) * gsl_rng_uniform(r));
}

typedef struct {
  sb_conv_shape s;
  int N;
  size_t nx, ny, nw;
  float *x, *w, *b, *dy, *ws;
} problem;

static void problem_init(problem *p, int C, int OC, int H, int W, int P, int N, unsigned long seed) {
  assert_int_equal(sb_conv_shape_init(&p->s, C, H, W, OC, 5, 1, P), SB_OK);
  p->N = N;
  p->nx = (size_t)N * C * H * W;
  p->ny = (size_t)N * OC * p->s.OH * p->s.OW;
  p->nw = (size_t)OC * C * 25;
  gsl_rng *r = sb_rng_alloc(seed, SB_RNG_USER, 0);
  p->x = sb_malloc(p->nx * sizeof(float));
  p->w = sb_malloc(p->nw * sizeof(float));
  p->b = sb_malloc((size_t)OC * sizeof(float));
  p->dy = sb_malloc(p->ny * sizeof(float));
  fill(p->x, p->nx, r, 0.0, 1.0); /* images: non-negative, as after a ReLU */
  const double a = 1.0 / sqrt(C * 25.0);
  fill(p->w, p->nw, r, -a, a);
  fill(p->b, (size_t)OC, r, -0.1, 0.1);
  fill(p->dy, p->ny, r, -1.0, 1.0);
  p->ws = sb_malloc(sb_conv2d_workspace(&p->s, 4) * sizeof(float));
  gsl_rng_free(r);
}

static void problem_free(problem *p) {
  sb_free(p->x); sb_free(p->w); sb_free(p->b); sb_free(p->dy); sb_free(p->ws);
}

/* ---- each pass against the double-precision direct convolution ---- */

static void check_shape(int C, int OC, int H, int W, int P, int N) {
  problem p;
  problem_init(&p, C, OC, H, W, P, N, (unsigned long)(C * 1000 + OC * 10 + H + N));
  p.s.algo = SB_CONV_WINOGRAD;
  assert_true(sb_conv2d_uses_winograd(&p.s));
  float *y = sb_malloc(p.ny * sizeof(float)), *dx = sb_malloc(p.nx * sizeof(float));
  float *dw = sb_calloc(p.nw, sizeof(float)), *db = sb_calloc((size_t)OC, sizeof(float));
  double *ry = sb_malloc(p.ny * sizeof(double)), *rdx = sb_malloc(p.nx * sizeof(double));
  double *rdw = sb_malloc(p.nw * sizeof(double)), *rdb = sb_malloc((size_t)OC * sizeof(double));
  sb_conv2d_forward(y, p.x, p.w, p.b, &p.s, N, p.ws);
  ref_forward(ry, p.x, p.w, p.b, &p.s, N);
  rel_err(y, ry, p.ny, WINO_TOL, "forward", &p.s, N);
  sb_conv2d_backward(dx, dw, db, p.dy, p.x, p.w, &p.s, N, p.ws);
  ref_backward(rdx, rdw, rdb, p.dy, p.x, p.w, &p.s, N);
  rel_err(dx, rdx, p.nx, WINO_TOL, "backward data", &p.s, N);
  rel_err(dw, rdw, p.nw, WINO_TOL, "backward filter", &p.s, N);
  rel_err(db, rdb, (size_t)OC, 1e-6, "bias", &p.s, N);
  /* accumulation: dw and db are added to, not overwritten */
  float *dw2 = sb_malloc(p.nw * sizeof(float)), *db2 = sb_malloc((size_t)OC * sizeof(float));
  memcpy(dw2, dw, p.nw * sizeof(float));
  memcpy(db2, db, (size_t)OC * sizeof(float));
  sb_conv2d_backward(NULL, dw2, db2, p.dy, p.x, p.w, &p.s, N, p.ws);
  for (size_t i = 0; i < p.nw; i++) rdw[i] *= 2;
  for (int k = 0; k < OC; k++) rdb[k] *= 2;
  rel_err(dw2, rdw, p.nw, WINO_TOL, "backward filter (accumulated)", &p.s, N);
  rel_err(db2, rdb, (size_t)OC, 1e-6, "bias (accumulated)", &p.s, N);
  sb_free(y); sb_free(dx); sb_free(dw); sb_free(db); sb_free(dw2); sb_free(db2);
  sb_free(ry); sb_free(rdx); sb_free(rdw); sb_free(rdb);
  problem_free(&p);
}

static void test_passes_vs_direct(void **state) {
  (void)state;
  static const int ch[3] = {3, 8, 32};
  static const int sz[3][2] = {{14, 14}, {7, 7}, {9, 9}};
  for (int a = 0; a < 3; a++)
    for (int b = 0; b < 3; b++)
      for (int z = 0; z < 3; z++) {
        const int N = (a + b + z) % 2 ? 5 : 1;
        check_shape(ch[a], ch[b], sz[z][0], sz[z][1], 2, N);
      }
  /* other paddings (odd and even output sizes, the backward-data padding 4 - P), non-square */
  check_shape(8, 3, 9, 8, 0, 5);
  check_shape(3, 8, 10, 7, 1, 5);
  check_shape(8, 8, 7, 11, 3, 2);
  check_shape(3, 3, 6, 6, 4, 1);
  /* more images than a chunk holds (several chunks per group) */
  check_shape(8, 8, 7, 7, 2, 70);
  print_message("winograd vs direct (double): max relative error %.3g (bound %.0e)\n", worst, WINO_TOL);
}

/* ---- im2col and Winograd agree on the default CNN's second convolution ---- */

static void test_agrees_with_im2col(void **state) {
  (void)state;
  problem p;
  const int N = 6;
  problem_init(&p, 32, 64, 14, 14, 2, N, 7);
  float *y[2], *dx[2], *dw[2], *db[2];
  for (int k = 0; k < 2; k++) {
    y[k] = sb_malloc(p.ny * sizeof(float));
    dx[k] = sb_malloc(p.nx * sizeof(float));
    dw[k] = sb_calloc(p.nw, sizeof(float));
    db[k] = sb_calloc(64, sizeof(float));
    p.s.algo = k ? SB_CONV_WINOGRAD : SB_CONV_IM2COL;
    assert_int_equal(sb_conv2d_uses_winograd(&p.s), k);
    sb_conv2d_forward(y[k], p.x, p.w, p.b, &p.s, N, p.ws);
    sb_conv2d_backward(dx[k], dw[k], db[k], p.dy, p.x, p.w, &p.s, N, p.ws);
  }
  double *d = sb_malloc((p.ny > p.nx ? p.ny : p.nx) * sizeof(double));
  for (size_t i = 0; i < p.ny; i++) d[i] = y[0][i];
  double e1 = rel_err(y[1], d, p.ny, WINO_TOL, "forward vs im2col", &p.s, N);
  for (size_t i = 0; i < p.nx; i++) d[i] = dx[0][i];
  double e2 = rel_err(dx[1], d, p.nx, WINO_TOL, "backward data vs im2col", &p.s, N);
  for (size_t i = 0; i < p.nw; i++) d[i] = dw[0][i];
  double e3 = rel_err(dw[1], d, p.nw, WINO_TOL, "backward filter vs im2col", &p.s, N);
  for (int i = 0; i < 64; i++) d[i] = db[0][i];
  rel_err(db[1], d, 64, 1e-6, "bias vs im2col", &p.s, N);
  print_message("winograd vs im2col (32->64, 14x14): forward %.3g, data %.3g, filter %.3g\n", e1, e2, e3);
  for (int k = 0; k < 2; k++) { sb_free(y[k]); sb_free(dx[k]); sb_free(dw[k]); sb_free(db[k]); }
  sb_free(d);
  problem_free(&p);
}

/* ---- finite differences through the Winograd path ---- */

/* L = sum_i (dy_i y_i + y_i^2 / 2), y = conv(x, w) + b, in double from the float outputs: a
 * quadratic, so the central difference is exact but for rounding */
static double loss(problem *p, float *y) {
  sb_conv2d_forward(y, p->x, p->w, p->b, &p->s, p->N, p->ws);
  double L = 0;
  for (size_t i = 0; i < p->ny; i++) L += (double)p->dy[i] * y[i] + 0.5 * (double)y[i] * y[i];
  return L;
}

static void test_finite_differences(void **state) {
  (void)state;
  problem p;
  problem_init(&p, 4, 3, 7, 7, 2, 2, 11);
  p.s.algo = SB_CONV_WINOGRAD;
  float *y = sb_malloc(p.ny * sizeof(float)), *g = sb_malloc(p.ny * sizeof(float));
  float *dx = sb_malloc(p.nx * sizeof(float)), *dw = sb_calloc(p.nw, sizeof(float)), *db = sb_calloc(3, sizeof(float));
  loss(&p, y);
  for (size_t i = 0; i < p.ny; i++) g[i] = p.dy[i] + y[i]; /* dL/dy */
  sb_conv2d_backward(dx, dw, db, g, p.x, p.w, &p.s, p.N, p.ws);
  const float h = 1e-2f;
  struct { float *v, *grad; size_t n; const char *name; } par[3] = {
      {p.x, dx, p.nx, "x"}, {p.w, dw, p.nw, "w"}, {p.b, db, 3, "b"}};
  int checked = 0;
  for (int k = 0; k < 3; k++)
    for (size_t i = 0; i < par[k].n; i += (k == 2 ? 1 : 7)) {
      const float v = par[k].v[i];
      par[k].v[i] = v + h;
      double lp = loss(&p, y);
      par[k].v[i] = v - h;
      double lm = loss(&p, y);
      par[k].v[i] = v;
      double fd = (lp - lm) / (2.0 * (double)h);
      check_abs(par[k].grad[i], fd, 2e-4 + 1e-3 * fabs(fd), "d L / d %s[%zu]", par[k].name, i);
      checked++;
    }
  assert_true(checked > 40);
  sb_free(y); sb_free(g); sb_free(dx); sb_free(dw); sb_free(db);
  problem_free(&p);
}

/* ---- thread-count invariance ---- */

static void test_thread_count_invariant(void **state) {
  (void)state;
#ifdef _OPENMP
  problem p;
  const int N = 13;
  problem_init(&p, 32, 64, 14, 14, 2, N, 5);
  assert_true(sb_conv2d_uses_winograd(&p.s) || p.s.algo == SB_CONV_IM2COL);
  p.s.algo = SB_CONV_WINOGRAD;
  float *y[2], *dx[2], *dw[2], *db[2];
  const int nt0 = omp_get_max_threads();
  for (int k = 0; k < 2; k++) {
    y[k] = sb_malloc(p.ny * sizeof(float));
    dx[k] = sb_malloc(p.nx * sizeof(float));
    dw[k] = sb_calloc(p.nw, sizeof(float));
    db[k] = sb_calloc(64, sizeof(float));
    omp_set_num_threads(k ? 3 : 1);
    sb_conv2d_forward(y[k], p.x, p.w, p.b, &p.s, N, p.ws);
    sb_conv2d_backward(dx[k], dw[k], db[k], p.dy, p.x, p.w, &p.s, N, p.ws);
  }
  omp_set_num_threads(nt0);
  assert_memory_equal(y[0], y[1], p.ny * sizeof(float));
  assert_memory_equal(dx[0], dx[1], p.nx * sizeof(float));
  assert_memory_equal(dw[0], dw[1], p.nw * sizeof(float));
  assert_memory_equal(db[0], db[1], 64 * sizeof(float));
  for (int k = 0; k < 2; k++) { sb_free(y[k]); sb_free(dx[k]); sb_free(dw[k]); sb_free(db[k]); }
  problem_free(&p);
#else
  skip();
#endif
}

/* ---- the switch ---- */

static void test_algo_choice(void **state) {
  (void)state;
  sb_conv_shape s;
  unsetenv("SB_CONV_ALGO");
  assert_int_equal(sb_conv_shape_init(&s, 32, 14, 14, 64, 5, 1, 2), SB_OK);
  assert_int_equal(s.algo, SB_CONV_AUTO);
  assert_true(sb_conv2d_uses_winograd(&s));
  assert_int_equal(sb_conv_shape_init(&s, 1, 28, 28, 32, 5, 1, 2), SB_OK);
  assert_false(sb_conv2d_uses_winograd(&s)); /* C = 1: im2col */
  s.algo = SB_CONV_WINOGRAD;
  assert_true(sb_conv2d_uses_winograd(&s));
  assert_int_equal(sb_conv_shape_init(&s, 32, 14, 14, 64, 3, 1, 1), SB_OK);
  s.algo = SB_CONV_WINOGRAD;
  assert_false(sb_conv2d_uses_winograd(&s)); /* 3x3: not this algorithm */
  assert_int_equal(sb_conv_shape_init(&s, 32, 14, 14, 64, 5, 2, 2), SB_OK);
  s.algo = SB_CONV_WINOGRAD;
  assert_false(sb_conv2d_uses_winograd(&s)); /* stride 2 */
  setenv("SB_CONV_ALGO", "im2col", 1);
  assert_int_equal(sb_conv_shape_init(&s, 32, 14, 14, 64, 5, 1, 2), SB_OK);
  assert_false(sb_conv2d_uses_winograd(&s));
  setenv("SB_CONV_ALGO", "winograd", 1);
  assert_int_equal(sb_conv_shape_init(&s, 1, 28, 28, 32, 5, 1, 2), SB_OK);
  assert_true(sb_conv2d_uses_winograd(&s));
  setenv("SB_CONV_ALGO", "fast", 1);
  assert_int_equal(sb_conv_shape_init(&s, 32, 14, 14, 64, 5, 1, 2), SB_EINVAL);
  assert_non_null(strstr(sb_last_error(), "SB_CONV_ALGO"));
  assert_non_null(strstr(sb_last_error(), "fast"));
  unsetenv("SB_CONV_ALGO");
}

/* the command line: a bad SB_CONV_ALGO is an error naming the variable (exit 2), and either
 * algorithm gives the same model summary */
static void test_cli_env(void **state) {
  (void)state;
  sb_model *m = NULL;
  assert_int_equal(sb_model_builtin(&m, "cnn"), SB_OK);
  sb_model_init_params(m, 3);
  char path[512], out[8192];
  snprintf(path, sizeof path, "%s/cnn.h5", sb_test_tmpdir());
  assert_int_equal(sb_model_save(m, path, NULL), SB_OK);
  sb_model_free(m);
  setenv("SB_CONV_ALGO", "fastest", 1);
  int rc = sb_test_run(out, sizeof out, "info %s", path);
  unsetenv("SB_CONV_ALGO");
  assert_int_equal(rc, 2);
  check_contains(out, "environment variable SB_CONV_ALGO: expected auto, im2col or winograd (or unset or empty: auto) (got \"fastest\")");
  assert_null(strstr(out, "model cnn:"));   /* nothing printed before the error */
  setenv("SB_CONV_ALGO", "winograd", 1);
  rc = sb_test_run(out, sizeof out, "info %s", path);
  unsetenv("SB_CONV_ALGO");
  if (rc) fprintf(stderr, "%s\n", out);
  assert_int_equal(rc, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_passes_vs_direct),
      cmocka_unit_test(test_agrees_with_im2col),
      cmocka_unit_test(test_finite_differences),
      cmocka_unit_test(test_thread_count_invariant),
      cmocka_unit_test(test_algo_choice),
      cmocka_unit_test(test_cli_env),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
