/* Layer kernels: forward and backward in adjacent pairs, on plain float32 NCHW arrays.
 * Shape letters: N batch, C/H/W input, OC/OH/OW output, K kernel, S stride, P padding, IN/OUT.
 * No allocation here (workspaces come from the caller); no model bookkeeping (model.c). */
#include "models/ann/ann.h"
#include "sim/core.h"

#include <gsl/gsl_cblas.h>
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static int thread_id(void) {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

static int max_threads(void) {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/* ---- dense ---- */

void sb_dense_forward(float *out, const float *inp, const float *w, const float *b, int N, int IN, int OUT) {
  if (b) {
    for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OUT, b, (size_t)OUT * sizeof(float));
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OUT, IN, 1.0f, inp, IN, w, IN, b ? 1.0f : 0.0f,
              out, OUT);
}

void sb_dense_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                       const float *w, int N, int IN, int OUT) {
  if (dinp)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IN, OUT, 1.0f, dout, OUT, w, IN, 0.0f, dinp, IN);
  if (dw) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OUT, IN, N, 1.0f, dout, OUT, inp, IN, 1.0f, dw, IN);
  if (db) {
    for (int n = 0; n < N; n++) {
      const float *d = dout + (size_t)n * OUT;
      for (int o = 0; o < OUT; o++) db[o] += d[o];
    }
  }
}

/* ---- conv2d ---- */

int sb_conv_shape_init(sb_conv_shape *s, int C, int H, int W, int OC, int K, int S, int P) {
  if (C < 1 || H < 1 || W < 1 || OC < 1 || K < 1 || S < 1 || P < 0)
    SB_ERROR(SB_EINVAL, "conv2d: sizes must be >= 1 and padding >= 0 (got C=%d H=%d W=%d OC=%d K=%d S=%d P=%d)",
             C, H, W, OC, K, S, P);
  s->C = C; s->H = H; s->W = W; s->OC = OC; s->K = K; s->S = S; s->P = P;
  int oh = H + 2 * P - K, ow = W + 2 * P - K;
  if (oh < 0 || ow < 0)
    SB_ERROR(SB_EINVAL, "conv2d: kernel %d with padding %d does not fit a %dx%d input", K, P, H, W);
  s->OH = oh / S + 1;
  s->OW = ow / S + 1;
  return SB_OK;
}

size_t sb_conv2d_workspace(const sb_conv_shape *s, int nthreads) {
  size_t ckk = (size_t)s->C * s->K * s->K;
  size_t per = ckk * (size_t)s->OH * s->OW + (size_t)s->OC * ckk + (size_t)s->OC;
  return per * (size_t)(nthreads < 1 ? 1 : nthreads);
}

/* col (C*K*K, OH*OW) from one image (C,H,W); zero where the window hangs over the padding. */
static void im2col(float *col, const float *x, const sb_conv_shape *s) {
  const int K = s->K, S = s->S, P = s->P, H = s->H, W = s->W, OH = s->OH, OW = s->OW;
  for (int c = 0; c < s->C; c++)
    for (int ki = 0; ki < K; ki++)
      for (int kj = 0; kj < K; kj++) {
        float *row = col + ((size_t)(c * K + ki) * K + kj) * (size_t)(OH * OW);
        const float *xc = x + (size_t)c * H * W;
        for (int oh = 0; oh < OH; oh++) {
          int ih = oh * S - P + ki;
          float *r = row + oh * OW;
          if (ih < 0 || ih >= H) {
            memset(r, 0, (size_t)OW * sizeof(float));
            continue;
          }
          const float *xr = xc + (size_t)ih * W;
          if (S == 1) {
            int iw0 = -P + kj; /* iw = ow + iw0 */
            int lo = iw0 < 0 ? -iw0 : 0;
            int hi = W - iw0 < OW ? W - iw0 : OW;
            if (hi < lo) hi = lo;
            /* rows are short (OW = 14..28): a plain loop beats a memcpy call */
            const float *src = xr + iw0;
            for (int ow = 0; ow < lo; ow++) r[ow] = 0.0f;
#pragma omp simd
            for (int ow = lo; ow < hi; ow++) r[ow] = src[ow];
            for (int ow = hi; ow < OW; ow++) r[ow] = 0.0f;
          } else {
            for (int ow = 0; ow < OW; ow++) {
              int iw = ow * S - P + kj;
              r[ow] = (iw >= 0 && iw < W) ? xr[iw] : 0.0f;
            }
          }
        }
      }
}

/* dx (C,H,W) += col2im(col) (x must be zeroed by the caller). */
static void col2im(float *dx, const float *col, const sb_conv_shape *s) {
  const int K = s->K, S = s->S, P = s->P, H = s->H, W = s->W, OH = s->OH, OW = s->OW;
  for (int c = 0; c < s->C; c++)
    for (int ki = 0; ki < K; ki++)
      for (int kj = 0; kj < K; kj++) {
        const float *row = col + ((size_t)(c * K + ki) * K + kj) * (size_t)(OH * OW);
        float *xc = dx + (size_t)c * H * W;
        for (int oh = 0; oh < OH; oh++) {
          int ih = oh * S - P + ki;
          if (ih < 0 || ih >= H) continue;
          const float *r = row + oh * OW;
          float *xr = xc + (size_t)ih * W;
          if (S == 1) {
            /* iw = ow + iw0 over the range where it lies inside the row: a contiguous add */
            int iw0 = -P + kj;
            int lo = iw0 < 0 ? -iw0 : 0;
            int hi = W - iw0 < OW ? W - iw0 : OW;
            float *dst = xr + iw0;
#pragma omp simd
            for (int ow = lo; ow < hi; ow++) dst[ow] += r[ow];
          } else {
            for (int ow = 0; ow < OW; ow++) {
              int iw = ow * S - P + kj;
              if (iw >= 0 && iw < W) xr[iw] += r[ow];
            }
          }
        }
      }
}

void sb_conv2d_forward(float *out, const float *inp, const float *w, const float *b,
                       const sb_conv_shape *s, int N, float *ws) {
  const int CKK = s->C * s->K * s->K, OHW = s->OH * s->OW;
  const size_t per = (size_t)CKK * OHW + (size_t)s->OC * CKK + (size_t)s->OC;
  const size_t in_sz = (size_t)s->C * s->H * s->W, out_sz = (size_t)s->OC * OHW;
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) {
    float *col = ws + per * (size_t)thread_id();
    float *o = out + (size_t)n * out_sz;
    const float *x = inp + (size_t)n * in_sz;
    const float *B = col;
    if (s->K == 1 && s->S == 1 && s->P == 0) B = x; /* 1x1 convolution: the image is its own col */
    else im2col(col, x, s);
    if (b)
      for (int oc = 0; oc < s->OC; oc++)
        for (int j = 0; j < OHW; j++) o[(size_t)oc * OHW + j] = b[oc];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->OC, OHW, CKK, 1.0f, w, CKK, B, OHW,
                b ? 1.0f : 0.0f, o, OHW);
  }
}

void sb_conv2d_forward_naive(float *out, const float *inp, const float *w, const float *b,
                             const sb_conv_shape *s, int N) {
  const int C = s->C, H = s->H, W = s->W, K = s->K;
  for (int n = 0; n < N; n++)
    for (int oc = 0; oc < s->OC; oc++)
      for (int oh = 0; oh < s->OH; oh++)
        for (int ow = 0; ow < s->OW; ow++) {
          double acc = b ? (double)b[oc] : 0.0;
          for (int c = 0; c < C; c++)
            for (int ki = 0; ki < K; ki++)
              for (int kj = 0; kj < K; kj++) {
                int ih = oh * s->S - s->P + ki, iw = ow * s->S - s->P + kj;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                acc += (double)w[((size_t)(oc * C + c) * K + ki) * K + kj] *
                       (double)inp[(((size_t)n * C + c) * H + ih) * W + iw];
              }
          out[(((size_t)n * s->OC + oc) * s->OH + oh) * s->OW + ow] = (float)acc;
        }
}

void sb_conv2d_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, const sb_conv_shape *s, int N, float *ws) {
  const int CKK = s->C * s->K * s->K, OHW = s->OH * s->OW, OC = s->OC;
  const size_t per = (size_t)CKK * OHW + (size_t)OC * CKK + (size_t)OC;
  const size_t in_sz = (size_t)s->C * s->H * s->W, out_sz = (size_t)OC * OHW;
  const int nt = max_threads();
  const int pointwise = s->K == 1 && s->S == 1 && s->P == 0;
  for (int t = 0; t < nt; t++) memset(ws + per * (size_t)t + (size_t)CKK * OHW, 0, ((size_t)OC * CKK + OC) * sizeof(float));
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) {
    float *col = ws + per * (size_t)thread_id();
    float *tdw = col + (size_t)CKK * OHW, *tdb = tdw + (size_t)OC * CKK;
    const float *g = dout + (size_t)n * out_sz;
    const float *x = inp + (size_t)n * in_sz;
    const float *B = col;
    if (pointwise) B = x;
    else if (dw) im2col(col, x, s);
    /* dw (OC, CKK) += g (OC, OHW) . col^T (OHW, CKK) */
    if (dw) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, CKK, OHW, 1.0f, g, OHW, B, OHW, 1.0f, tdw, CKK);
    for (int oc = 0; oc < OC; oc++) {
      float acc = 0.0f;
      for (int j = 0; j < OHW; j++) acc += g[(size_t)oc * OHW + j];
      tdb[oc] += acc;
    }
    if (dinp) {
      float *dx = dinp + (size_t)n * in_sz;
      if (pointwise) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, CKK, OHW, OC, 1.0f, w, CKK, g, OHW, 0.0f, dx, OHW);
      } else {
        /* dcol (CKK, OHW) = w^T (CKK, OC) . g (OC, OHW), then scatter back */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, CKK, OHW, OC, 1.0f, w, CKK, g, OHW, 0.0f, col, OHW);
        memset(dx, 0, in_sz * sizeof(float));
        col2im(dx, col, s);
      }
    }
  }
  /* reduce the per-thread accumulators in thread order (deterministic for a fixed count) */
  for (int t = 0; t < nt; t++) {
    const float *tdw = ws + per * (size_t)t + (size_t)CKK * OHW, *tdb = tdw + (size_t)OC * CKK;
    if (dw)
      for (size_t i = 0; i < (size_t)OC * CKK; i++) dw[i] += tdw[i];
    if (db)
      for (int oc = 0; oc < OC; oc++) db[oc] += tdb[oc];
  }
}

void sb_conv2d_backward_naive(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                              const float *w, const sb_conv_shape *s, int N) {
  const int C = s->C, H = s->H, W = s->W, K = s->K;
  if (dinp) memset(dinp, 0, (size_t)N * C * H * W * sizeof(float));
  for (int n = 0; n < N; n++)
    for (int oc = 0; oc < s->OC; oc++)
      for (int oh = 0; oh < s->OH; oh++)
        for (int ow = 0; ow < s->OW; ow++) {
          float g = dout[(((size_t)n * s->OC + oc) * s->OH + oh) * s->OW + ow];
          if (db) db[oc] += g;
          for (int c = 0; c < C; c++)
            for (int ki = 0; ki < K; ki++)
              for (int kj = 0; kj < K; kj++) {
                int ih = oh * s->S - s->P + ki, iw = ow * s->S - s->P + kj;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                size_t wi = ((size_t)(oc * C + c) * K + ki) * K + kj;
                size_t xi = (((size_t)n * C + c) * H + ih) * W + iw;
                dw[wi] += g * inp[xi];
                if (dinp) dinp[xi] += g * w[wi];
              }
        }
}

/* ---- pooling ---- */

void sb_avgpool_forward(float *out, const float *inp, int N, int C, int H, int W, int K, int S) {
  const int OH = (H - K) / S + 1, OW = (W - K) / S + 1;
  const float inv = 1.0f / (float)(K * K);
#pragma omp parallel for schedule(static)
  for (int nc = 0; nc < N * C; nc++) {
    const float *x = inp + (size_t)nc * H * W;
    float *o = out + (size_t)nc * OH * OW;
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        float acc = 0.0f;
        for (int i = 0; i < K; i++)
          for (int j = 0; j < K; j++) acc += x[(oh * S + i) * W + ow * S + j];
        o[oh * OW + ow] = acc * inv;
      }
  }
}

void sb_avgpool_backward(float *dinp, const float *dout, int N, int C, int H, int W, int K, int S) {
  const int OH = (H - K) / S + 1, OW = (W - K) / S + 1;
  const float inv = 1.0f / (float)(K * K);
#pragma omp parallel for schedule(static)
  for (int nc = 0; nc < N * C; nc++) {
    float *dx = dinp + (size_t)nc * H * W;
    const float *g = dout + (size_t)nc * OH * OW;
    memset(dx, 0, (size_t)H * W * sizeof(float));
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        float v = g[oh * OW + ow] * inv;
        for (int i = 0; i < K; i++)
          for (int j = 0; j < K; j++) dx[(oh * S + i) * W + ow * S + j] += v;
      }
  }
}

void sb_maxpool_forward(float *out, int *argmax, const float *inp, int N, int C, int H, int W, int K, int S) {
  const int OH = (H - K) / S + 1, OW = (W - K) / S + 1;
#pragma omp parallel for schedule(static)
  for (int nc = 0; nc < N * C; nc++) {
    const float *x = inp + (size_t)nc * H * W;
    float *o = out + (size_t)nc * OH * OW;
    int *am = argmax ? argmax + (size_t)nc * OH * OW : NULL;
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        int best = (oh * S) * W + ow * S;
        float m = x[best];
        for (int i = 0; i < K; i++)
          for (int j = 0; j < K; j++) {
            int idx = (oh * S + i) * W + ow * S + j;
            if (x[idx] > m || isnan(x[idx])) { m = x[idx]; best = idx; }
          }
        o[oh * OW + ow] = m;
        if (am) am[oh * OW + ow] = best;
      }
  }
}

void sb_maxpool_backward(float *dinp, const float *dout, const int *argmax, int N, int C, int H, int W,
                         int K, int S) {
  const int OH = (H - K) / S + 1, OW = (W - K) / S + 1;
#pragma omp parallel for schedule(static)
  for (int nc = 0; nc < N * C; nc++) {
    float *dx = dinp + (size_t)nc * H * W;
    const float *g = dout + (size_t)nc * OH * OW;
    const int *am = argmax + (size_t)nc * OH * OW;
    memset(dx, 0, (size_t)H * W * sizeof(float));
    for (int j = 0; j < OH * OW; j++) dx[am[j]] += g[j];
  }
}

/* ---- element-wise activations ---- */

void sb_relu_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (size_t i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}
void sb_relu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (size_t i = 0; i < n; i++) dinp[i] = inp[i] > 0.0f ? dout[i] : 0.0f;
}

void sb_leaky_relu_forward(float *out, const float *inp, size_t n, float alpha) {
#pragma omp simd
  for (size_t i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : alpha * inp[i];
}
void sb_leaky_relu_backward(float *dinp, const float *dout, const float *inp, size_t n, float alpha) {
#pragma omp simd
  for (size_t i = 0; i < n; i++) dinp[i] = inp[i] > 0.0f ? dout[i] : alpha * dout[i];
}

void sb_sigmoid_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for schedule(static) if (n > 16384)
  for (size_t i = 0; i < n; i++) {
    float x = inp[i];
    /* split by sign so exp never overflows */
    if (x >= 0.0f) out[i] = 1.0f / (1.0f + expf(-x));
    else {
      float e = expf(x);
      out[i] = e / (1.0f + e);
    }
  }
}
void sb_sigmoid_backward(float *dinp, const float *dout, const float *out, size_t n) {
  for (size_t i = 0; i < n; i++) dinp[i] = dout[i] * out[i] * (1.0f - out[i]);
}

void sb_tanh_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for schedule(static) if (n > 16384)
  for (size_t i = 0; i < n; i++) out[i] = tanhf(inp[i]);
}
void sb_tanh_backward(float *dinp, const float *dout, const float *out, size_t n) {
  for (size_t i = 0; i < n; i++) dinp[i] = dout[i] * (1.0f - out[i] * out[i]);
}

/* ---- clipped and quantised ReLU (QCFS) ---- */

void sb_qcfs_forward(float *out, const float *inp, size_t n, float lambda, int L) {
  const float fl = (float)L;
  for (size_t i = 0; i < n; i++) {
    /* the same operation order as the authors' PyTorch module, for bit-compatible fixtures */
    float q = floorf((inp[i] / lambda) * fl + 0.5f) / fl;
    q = q < 0.0f ? 0.0f : (q > 1.0f ? 1.0f : q);
    out[i] = q * lambda;
  }
}

void sb_qcfs_backward(float *dinp, float *dlambda, const float *dout, const float *inp, size_t n,
                      float lambda, int L) {
  const float fl = (float)L;
  double acc = 0.0;
  for (size_t i = 0; i < n; i++) {
    float xs = inp[i] / lambda;
    float q = floorf(xs * fl + 0.5f) / fl;
    int m = q >= 0.0f && q <= 1.0f;
    float c = q < 0.0f ? 0.0f : (q > 1.0f ? 1.0f : q);
    /* y = lambda * c(x / lambda): dy/dx = m, dy/dlambda = c - m * x / lambda */
    if (dlambda) acc += (double)(dout[i] * (c - (m ? xs : 0.0f)));
    dinp[i] = m ? dout[i] : 0.0f;
  }
  if (dlambda) *dlambda += (float)acc;
}

/* ---- batch normalisation ---- */

void sb_batchnorm_forward_train(float *out, float *mean, float *invstd, float *running_mean,
                                float *running_var, const float *inp, const float *gamma,
                                const float *beta, int N, int C, int HW, float eps, float momentum) {
  const double cnt = (double)N * HW;
#pragma omp parallel for schedule(static)
  for (int c = 0; c < C; c++) {
    double s = 0.0, ss = 0.0;
    for (int n = 0; n < N; n++) {
      const float *x = inp + ((size_t)n * C + c) * HW;
      for (int j = 0; j < HW; j++) s += (double)x[j];
    }
    double mu = s / cnt;
    for (int n = 0; n < N; n++) {
      const float *x = inp + ((size_t)n * C + c) * HW;
      for (int j = 0; j < HW; j++) {
        double d = (double)x[j] - mu;
        ss += d * d;
      }
    }
    double var = ss / cnt;
    float is = (float)(1.0 / sqrt(var + (double)eps));
    mean[c] = (float)mu;
    invstd[c] = is;
    if (running_mean) running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * (float)mu;
    if (running_var)
      running_var[c] = (1.0f - momentum) * running_var[c] + momentum * (float)(cnt > 1 ? ss / (cnt - 1) : var);
    float g = gamma ? gamma[c] : 1.0f, bb = beta ? beta[c] : 0.0f, m = (float)mu;
    for (int n = 0; n < N; n++) {
      const float *x = inp + ((size_t)n * C + c) * HW;
      float *o = out + ((size_t)n * C + c) * HW;
      for (int j = 0; j < HW; j++) o[j] = (x[j] - m) * is * g + bb;
    }
  }
}

void sb_batchnorm_forward_eval(float *out, const float *inp, const float *gamma, const float *beta,
                               const float *running_mean, const float *running_var, int N, int C,
                               int HW, float eps) {
#pragma omp parallel for schedule(static)
  for (int c = 0; c < C; c++) {
    float is = (float)(1.0 / sqrt((double)running_var[c] + (double)eps));
    float g = gamma ? gamma[c] : 1.0f, bb = beta ? beta[c] : 0.0f, m = running_mean[c];
    for (int n = 0; n < N; n++) {
      const float *x = inp + ((size_t)n * C + c) * HW;
      float *o = out + ((size_t)n * C + c) * HW;
      for (int j = 0; j < HW; j++) o[j] = (x[j] - m) * is * g + bb;
    }
  }
}

void sb_batchnorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *inp,
                           const float *mean, const float *invstd, const float *gamma, int N, int C, int HW) {
  const double cnt = (double)N * HW;
#pragma omp parallel for schedule(static)
  for (int c = 0; c < C; c++) {
    double sg = 0.0, sgx = 0.0;
    const float m = mean[c], is = invstd[c];
    for (int n = 0; n < N; n++) {
      const float *x = inp + ((size_t)n * C + c) * HW;
      const float *g = dout + ((size_t)n * C + c) * HW;
      for (int j = 0; j < HW; j++) {
        sg += (double)g[j];
        sgx += (double)g[j] * (double)((x[j] - m) * is);
      }
    }
    if (dgamma) dgamma[c] += (float)sgx;
    if (dbeta) dbeta[c] += (float)sg;
    if (!dinp) continue;
    /* dx = gamma * invstd * (g - mean(g) - xhat * mean(g * xhat)) */
    float gm = (float)(sg / cnt), gxm = (float)(sgx / cnt), k = (gamma ? gamma[c] : 1.0f) * is;
    for (int n = 0; n < N; n++) {
      const float *x = inp + ((size_t)n * C + c) * HW;
      const float *g = dout + ((size_t)n * C + c) * HW;
      float *dx = dinp + ((size_t)n * C + c) * HW;
      for (int j = 0; j < HW; j++) dx[j] = k * (g[j] - gm - (x[j] - m) * is * gxm);
    }
  }
}
