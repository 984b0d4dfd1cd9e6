/* ANN losses (softmax cross-entropy, BCE, MSE) and optimizers (SGD with momentum, Adam,
 * AdamW) over one flat parameter buffer, plus learning-rate schedules. Not the STDP rules
 * (those act on the spiking engine's synapses). */
#include "learning/learning.h"

#include <math.h>
#include <string.h>

/* ---- losses ---- */

double sb_loss_softmax_xent(float *dlogits, const float *logits, const int *labels, int N, int C, int *correct) {
  double total = 0.0;
  int ok = 0;
  for (int n = 0; n < N; n++) {
    const float *z = logits + (size_t)n * C;
    int best = 0;
    float mx = z[0];
    for (int c = 1; c < C; c++)
      if (z[c] > mx) { mx = z[c]; best = c; }
    double s = 0.0;
    for (int c = 0; c < C; c++) s += exp((double)(z[c] - mx));
    double lse = log(s) + (double)mx;
    int y = labels[n];
    total += lse - (double)z[y];
    ok += best == y;
    if (dlogits) {
      float *d = dlogits + (size_t)n * C;
      for (int c = 0; c < C; c++) d[c] = (float)(exp((double)z[c] - lse) / N);
      d[y] -= 1.0f / (float)N;
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
  const int decoupled = o->kind == SB_OPT_ADAMW;
  float *m = o->m, *v = o->v;
#pragma omp parallel for schedule(static) if (n > 100000)
  for (long i = 0; i < n; i++) {
    float p = params[i], g = grads[i];
    if (decoupled) p *= 1.0f - lr * wd;
    else g += wd * p;
    m[i] = b1 * m[i] + (1.0f - b1) * g;
    v[i] = b2 * v[i] + (1.0f - b2) * g * g;
    /* torch: denom = sqrt(v) / sqrt(bc2) + eps; p -= (lr / bc1) m / denom */
    params[i] = p - step * m[i] / (sqrtf(v[i]) / bc2s + eps);
  }
}

double sb_lr_schedule(const char *kind, double lr0, int epoch, int epochs, double gamma, int step_epochs) {
  if (kind && !strcmp(kind, "cosine") && epochs > 0) return lr0 * 0.5 * (1.0 + cos(M_PI * epoch / (double)epochs));
  if (kind && !strcmp(kind, "step") && step_epochs > 0) return lr0 * pow(gamma, (double)(epoch / step_epochs));
  return lr0;
}
