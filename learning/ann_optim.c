/* ANN losses (softmax cross-entropy, BCE, MSE) and optimizers (SGD with momentum, Adam,
 * AdamW) over one flat parameter buffer, plus learning-rate schedules. Not the STDP rules
 * (those act on the spiking engine's synapses). */
#include "learning/learning.h"

#include <math.h>
#ifdef __SSE2__
#include <immintrin.h>
#endif
#include <string.h>

/* ---- losses ---- */

double sb_loss_softmax_xent(float *dlogits, const float *logits, const int *labels, int N, int C, int *correct) {
  return sb_loss_softmax_xent_ls(dlogits, logits, labels, N, C, 0.0, correct);
}

double sb_loss_softmax_xent_ls(float *dlogits, const float *logits, const int *labels, int N, int C, double smoothing,
                               int *correct) {
  double total = 0.0;
  int ok = 0;
  const double on = 1.0 - smoothing, off = smoothing / C;
  for (int n = 0; n < N; n++) {
    const float *z = logits + (size_t)n * C;
    int best = 0;
    float mx = z[0];
    for (int c = 1; c < C; c++)
      if (z[c] > mx) { mx = z[c]; best = c; }
    double s = 0.0, zsum = 0.0;
    for (int c = 0; c < C; c++) {
      s += exp((double)(z[c] - mx));
      zsum += (double)z[c];
    }
    double lse = log(s) + (double)mx;
    int y = labels[n];
    /* -sum_c t_c log p_c with t = (1-eps) onehot + eps/C: (1-eps)(lse - z_y) + eps (lse - mean z) */
    total += on * (lse - (double)z[y]);
    if (smoothing != 0.0) total += smoothing * (lse - zsum / C);
    ok += best == y;
    if (dlogits) {
      float *d = dlogits + (size_t)n * C;
      if (smoothing == 0.0) {
        for (int c = 0; c < C; c++) d[c] = (float)(exp((double)z[c] - lse) / N);
        d[y] -= 1.0f / (float)N;
      } else {
        for (int c = 0; c < C; c++) d[c] = (float)((exp((double)z[c] - lse) - off - (c == y ? on : 0.0)) / N);
      }
    }
  }
  if (correct) *correct = ok;
  return total / N;
}

double sb_loss_bce_logits(float *dz, const float *z, const float *t, size_t n) {
  double total = 0.0;
  for (size_t i = 0; i < n; i++) {
    double x = (double)z[i], y = (double)t[i];
    total += (x > 0 ? x : 0) - x * y + log1p(exp(-fabs(x)));
    if (dz) {
      double s = x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
      dz[i] = (float)((s - y) / (double)n);
    }
  }
  return total / (double)n;
}

double sb_loss_bce(float *dp, const float *p, const float *t, size_t n) {
  double total = 0.0;
  for (size_t i = 0; i < n; i++) {
    double x = (double)p[i], y = (double)t[i];
    double lp = x > 0 ? fmax(log(x), -100.0) : -100.0, lq = x < 1 ? fmax(log1p(-x), -100.0) : -100.0;
    total -= y * lp + (1 - y) * lq;
    if (dp) dp[i] = (float)((x - y) / fmax(x * (1 - x), 1e-12) / (double)n);
  }
  return total / (double)n;
}

double sb_loss_mse(float *dy, const float *y, const float *t, size_t n) {
  double total = 0.0;
  for (size_t i = 0; i < n; i++) {
    double d = (double)y[i] - (double)t[i];
    total += d * d;
    if (dy) dy[i] = (float)(2.0 * d / (double)n);
  }
  return total / (double)n;
}

/* ---- optimizers ---- */

sb_opt *sb_opt_alloc(sb_opt_kind kind, size_t n) {
  sb_opt *o = sb_calloc(1, sizeof *o);
  if (!o) return NULL;
  o->kind = kind;
  o->n = n;
  o->lr = kind == SB_OPT_SGD ? 1e-2 : 1e-3;
  o->beta1 = 0.9;
  o->beta2 = 0.999;
  o->eps = 1e-8;
  o->weight_decay = kind == SB_OPT_ADAMW ? 1e-2 : 0.0;
  o->m = sb_calloc(n ? n : 1, sizeof(float));
  if (kind != SB_OPT_SGD) o->v = sb_calloc(n ? n : 1, sizeof(float));
  if (!o->m || (kind != SB_OPT_SGD && !o->v)) {
    sb_opt_free(o);
    return NULL;
  }
  return o;
}

void sb_opt_free(sb_opt *o) {
  if (!o) return;
  sb_free(o->m);
  sb_free(o->v);
  sb_free(o);
}

int sb_opt_kind_parse(const char *name) {
  if (!strcmp(name, "sgd")) return SB_OPT_SGD;
  if (!strcmp(name, "adam")) return SB_OPT_ADAM;
  if (!strcmp(name, "adamw")) return SB_OPT_ADAMW;
  return -1;
}

#if defined(__SSE2__) && defined(__GNUC__)
#define ADAM_AVX 1
/* Adam over [lo, hi) with 8-lane AVX where the CPU has it (chosen at run time; the build
 * targets baseline x86-64): the same operations in the same order as adam_range's 4-lane SSE
 * and scalar paths (no FMA, IEEE-exact per lane), so the results are bit-identical to them;
 * returns the first index it left for adam_range. The update is bound by sqrt and division. */
__attribute__((target("avx"))) static long adam_range_avx(float *restrict params, const float *restrict grads,
                                                            float *restrict m, float *restrict v, long lo, long hi,
                                                            float b1, float b2, float step, float bc2s, float eps,
                                                            float l2, float shrink) {
  const __m256 vb1 = _mm256_set1_ps(b1), vb2 = _mm256_set1_ps(b2), vb1c = _mm256_set1_ps(1.0f - b1),
               vb2c = _mm256_set1_ps(1.0f - b2), vstep = _mm256_set1_ps(step), vbc2s = _mm256_set1_ps(bc2s),
               veps = _mm256_set1_ps(eps), vl2 = _mm256_set1_ps(l2), vshr = _mm256_set1_ps(shrink);
  long i = lo;
  for (; i + 8 <= hi; i += 8) {
    __m256 p = _mm256_mul_ps(_mm256_loadu_ps(params + i), vshr);
    __m256 g = _mm256_add_ps(_mm256_loadu_ps(grads + i), _mm256_mul_ps(vl2, p));
    __m256 mi = _mm256_add_ps(_mm256_mul_ps(vb1, _mm256_loadu_ps(m + i)), _mm256_mul_ps(vb1c, g));
    __m256 vi = _mm256_add_ps(_mm256_mul_ps(vb2, _mm256_loadu_ps(v + i)), _mm256_mul_ps(_mm256_mul_ps(vb2c, g), g));
    _mm256_storeu_ps(m + i, mi);
    _mm256_storeu_ps(v + i, vi);
    __m256 den = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), vbc2s), veps);
    _mm256_storeu_ps(params + i, _mm256_sub_ps(p, _mm256_div_ps(_mm256_mul_ps(vstep, mi), den)));
  }
  return i;
}
#endif

/* Adam over [lo, hi). */
static void adam_range(float *restrict params, const float *restrict grads, float *restrict m, float *restrict v,
                       long lo, long hi, float b1, float b2, float step, float bc2s, float eps, float l2, float shrink,
                       int avx) {
  long i = lo;
#ifdef ADAM_AVX
  if (avx) i = adam_range_avx(params, grads, m, v, lo, hi, b1, b2, step, bc2s, eps, l2, shrink);
#else
  (void)avx;
#endif
#ifdef __SSE2__
  /* 4 lanes with SSE (baseline on x86-64): sqrtps has no errno, so this is what the compiler
   * would emit with -fno-math-errno; same operations and order as the scalar tail */
  const __m128 vb1 = _mm_set1_ps(b1), vb2 = _mm_set1_ps(b2), vb1c = _mm_set1_ps(1.0f - b1),
               vb2c = _mm_set1_ps(1.0f - b2), vstep = _mm_set1_ps(step), vbc2s = _mm_set1_ps(bc2s),
               veps = _mm_set1_ps(eps), vl2 = _mm_set1_ps(l2), vshr = _mm_set1_ps(shrink);
  for (; i + 4 <= hi; i += 4) {
    __m128 p = _mm_mul_ps(_mm_loadu_ps(params + i), vshr);
    __m128 g = _mm_add_ps(_mm_loadu_ps(grads + i), _mm_mul_ps(vl2, p));
    __m128 mi = _mm_add_ps(_mm_mul_ps(vb1, _mm_loadu_ps(m + i)), _mm_mul_ps(vb1c, g));
    __m128 vi = _mm_add_ps(_mm_mul_ps(vb2, _mm_loadu_ps(v + i)), _mm_mul_ps(_mm_mul_ps(vb2c, g), g));
    _mm_storeu_ps(m + i, mi);
    _mm_storeu_ps(v + i, vi);
    __m128 den = _mm_add_ps(_mm_div_ps(_mm_sqrt_ps(vi), vbc2s), veps);
    _mm_storeu_ps(params + i, _mm_sub_ps(p, _mm_div_ps(_mm_mul_ps(vstep, mi), den)));
  }
#endif
  for (; i < hi; i++) {
    float p = params[i] * shrink;
    float g = grads[i] + l2 * p;
    float mi = b1 * m[i] + (1.0f - b1) * g;
    float vi = b2 * v[i] + (1.0f - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    /* torch: denom = sqrt(v) / sqrt(bc2) + eps; p -= (lr / bc1) m / denom */
    params[i] = p - step * mi / (sqrtf(vi) / bc2s + eps);
  }
}

void sb_opt_step(sb_opt *o, float *params, const float *grads) {
  o->t++;
  const long n = (long)o->n;
  const float lr = (float)o->lr, wd = (float)o->weight_decay;
  if (o->kind == SB_OPT_SGD) {
    const float mu = (float)o->momentum;
    const int first = o->t == 1;
    float *b = o->m;
#pragma omp parallel for schedule(static) if (n > 100000)
    for (long i = 0; i < n; i++) {
      float g = grads[i] + wd * params[i];
      if (mu != 0.0f) {
        b[i] = first ? g : mu * b[i] + g;
        g = b[i];
      }
      params[i] -= lr * g;
    }
    return;
  }
  const float b1 = (float)o->beta1, b2 = (float)o->beta2, eps = (float)o->eps;
  const float bc1 = (float)(1.0 - pow(o->beta1, (double)o->t));
  const float bc2s = (float)sqrt(1.0 - pow(o->beta2, (double)o->t));
  const float step = lr / bc1;
  /* AdamW shrinks p by (1 - lr wd) first; Adam adds wd p to the gradient */
  const int decoupled = o->kind == SB_OPT_ADAMW;
  const float shrink = decoupled ? 1.0f - lr * wd : 1.0f, l2 = decoupled ? 0.0f : wd;
  const long chunk = 16384;
  const long nchunks = (n + chunk - 1) / chunk;
#ifdef ADAM_AVX
  const int avx = __builtin_cpu_supports("avx");
#else
  const int avx = 0;
#endif
#pragma omp parallel for schedule(static) if (n > 100000)
  for (long c = 0; c < nchunks; c++) {
    long lo = c * chunk, hi = lo + chunk < n ? lo + chunk : n;
    adam_range(params, grads, o->m, o->v, lo, hi, b1, b2, step, bc2s, eps, l2, shrink, avx);
  }
}

double sb_lr_schedule(const char *kind, double lr0, int epoch, int epochs, double gamma, int step_epochs) {
  if (kind && !strcmp(kind, "cosine") && epochs > 0) return lr0 * 0.5 * (1.0 + cos(M_PI * epoch / (double)epochs));
  if (kind && !strcmp(kind, "step") && step_epochs > 0) return lr0 * pow(gamma, (double)(epoch / step_epochs));
  return lr0;
}
