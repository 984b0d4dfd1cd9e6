/* Layer kernels: forward and backward in adjacent pairs, on plain float32 NCHW arrays.
 * Shape letters: N batch, C/H/W input, OC/OH/OW output, K kernel, S stride, P padding, IN/OUT.
 * No allocation here (workspaces come from the caller); no model bookkeeping (model.c). */
#include "models/ann/ann.h"
#include "models/ann/internal.h"
#include "sim/core.h"

#include <gsl/gsl_cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

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
  const char *algo = getenv("SB_CONV_ALGO");
  sb_conv_algo a = SB_CONV_AUTO;
  if (algo && *algo && strcmp(algo, "auto")) {
    if (!strcmp(algo, "im2col")) a = SB_CONV_IM2COL;
    else if (!strcmp(algo, "winograd")) a = SB_CONV_WINOGRAD;
    else
      SB_ERROR(SB_EINVAL, "environment variable SB_CONV_ALGO: expected auto, im2col or winograd (or unset or empty: "
               "auto) (got \"%s\")", algo);
  }
  s->C = C; s->H = H; s->W = W; s->OC = OC; s->K = K; s->S = S; s->P = P;
  s->algo = a;
  int oh = H + 2 * P - K, ow = W + 2 * P - K;
  if (oh < 0 || ow < 0)
    SB_ERROR(SB_EINVAL, "conv2d: kernel %d with padding %d does not fit a %dx%d input", K, P, H, W);
  s->OH = oh / S + 1;
  s->OW = ow / S + 1;
  return SB_OK;
}

/* Workspace of the convolution kernels, in floats. Backward splits a batch into CONV_GROUPS
 * fixed groups of consecutive images, each with its own weight and bias gradient accumulators
 * (OC*CKK + OC), summed in group order at the end: the result depends neither on the thread
 * count nor on which thread ran which group, so the groups can be handed out dynamically (a
 * thread that the OS holds back on a shared machine does not hold the others up). Then per
 * thread: the im2col matrix (C*K*K, OH*OW), the zero-padded image (C, H+2P, W+2P), and the
 * gradient at the convolution's output (OC, OH*OW) for the fused conv-ReLU-pool block. Each
 * part is rounded up to 16 floats and has 8 spare floats: im2col copies in blocks of 8 and may
 * run up to 7 floats past the end of a row (into the next row, or the spare at the end). */
typedef struct {
  size_t tdw, tdb, per_group; /* offsets inside a group's part */
  size_t col, xp, gc, per;    /* offsets inside a thread's part, which start at `threads` */
  size_t threads;
} ws_layout;

static size_t up16(size_t n) { return (n + 15) & ~(size_t)15; }

static ws_layout ws_layout_of(const sb_conv_shape *s) {
  const size_t ckk = (size_t)s->C * s->K * s->K, ohw = (size_t)s->OH * s->OW;
  const size_t hp = (size_t)s->H + 2 * (size_t)s->P, wp = (size_t)s->W + 2 * (size_t)s->P;
  ws_layout l;
  l.tdw = 0;
  l.tdb = up16((size_t)s->OC * ckk);
  l.per_group = l.tdb + up16((size_t)s->OC);
  l.threads = l.per_group * CONV_GROUPS;
  l.col = 0;
  l.xp = up16(ckk * ohw + 8);
  l.gc = l.xp + up16((size_t)s->C * hp * wp + 8);
  l.per = l.gc + up16((size_t)s->OC * ohw);
  return l;
}

size_t sb_conv2d_workspace(const sb_conv_shape *s, int nthreads) {
  const ws_layout l = ws_layout_of(s);
  const size_t im = l.threads + l.per * (size_t)(nthreads < 1 ? 1 : nthreads);
  const size_t wi = winograd_applies_(s) ? winograd_workspace_(s, nthreads) : 0;
  return im > wi ? im : wi;
}

int sb_conv2d_uses_winograd(const sb_conv_shape *s) {
  if (!winograd_applies_(s)) return 0;
  if (s->algo == SB_CONV_WINOGRAD) return 1;
  return s->algo == SB_CONV_AUTO && s->C >= 8 && s->OC >= 8;
}

/* This thread's part of the workspace. */
static float *ws_thread(float *ws, const ws_layout *l) { return ws + l->threads + l->per * (size_t)thread_id(); }

/* col (C*K*K, OH*OW) from one image (C,H,W); zero where the window hangs over the padding.
 * Any stride; stride 1 takes im2col_s1. */
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
          for (int ow = 0; ow < OW; ow++) {
            int iw = ow * S - P + kj;
            r[ow] = (iw >= 0 && iw < W) ? xr[iw] : 0.0f;
          }
        }
      }
}

/* Stride-1 im2col through a zero-padded copy xp (C, H+2P, W+2P) of the image: every row segment
 * of col is then a plain copy of OW floats, done in blocks of 8 without bounds tests (a block
 * may run up to 7 floats past the segment: into the next segment, which is written after it,
 * or into the spare floats after col and xp; see ws_layout). Same values as im2col. */
static void im2col_s1(float *restrict col, float *restrict xp, const float *restrict x, const sb_conv_shape *s) {
  const int C = s->C, K = s->K, P = s->P, H = s->H, W = s->W, OH = s->OH, OW = s->OW;
  const int Hp = H + 2 * P, Wp = W + 2 * P, nblk = (OW + 7) / 8;
  for (int c = 0; c < C; c++) {
    float *pc = xp + (size_t)c * Hp * Wp;
    memset(pc, 0, (size_t)P * Wp * sizeof(float));
    for (int h = 0; h < H; h++) {
      float *pr = pc + (size_t)(h + P) * Wp;
      for (int j = 0; j < P; j++) pr[j] = 0.0f;
      memcpy(pr + P, x + ((size_t)c * H + h) * W, (size_t)W * sizeof(float));
      for (int j = P + W; j < Wp; j++) pr[j] = 0.0f;
    }
    memset(pc + (size_t)(H + P) * Wp, 0, (size_t)P * Wp * sizeof(float));
  }
  memset(xp + (size_t)C * Hp * Wp, 0, 8 * sizeof(float)); /* the spare the last blocks read */
  for (int c = 0; c < C; c++)
    for (int ki = 0; ki < K; ki++)
      for (int kj = 0; kj < K; kj++) {
        float *row = col + ((size_t)(c * K + ki) * K + kj) * (size_t)(OH * OW);
        const float *src = xp + ((size_t)c * Hp + ki) * Wp + kj;
        for (int oh = 0; oh < OH; oh++) {
          float *d = row + (size_t)oh * OW;
          const float *sp = src + (size_t)oh * Wp;
          for (int q = 0; q < nblk; q++) memcpy(d + 8 * q, sp + 8 * q, 8 * sizeof(float));
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

static int pointwise(const sb_conv_shape *s) { return s->K == 1 && s->S == 1 && s->P == 0; }

/* Sum of g[0..n) in 8 interleaved partial sums (vectorisable; a serial float sum is bound by the
 * add latency), combined pairwise: a fixed order, so results repeat. */
static float sum_lanes(const float *g, size_t n) {
  float l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
#pragma omp simd
    for (int k = 0; k < 8; k++) l[k] += g[i + k];
  float tail = 0.0f;
  for (; i < n; i++) tail += g[i];
  return (((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]))) + tail;
}

/* One image: o (OC, OH*OW) = w (OC, CKK) . col(x) + b, and r = relu(o) when r is not NULL (the
 * bias and the ReLU in one pass over the product while it is in cache); t is this thread's
 * workspace. */
static void conv_image_forward(float *o, float *r, const float *x, const float *w, const float *b,
                               const sb_conv_shape *s, float *t, const ws_layout *l) {
  const int CKK = s->C * s->K * s->K, OHW = s->OH * s->OW;
  const float *B = t + l->col;
  if (pointwise(s)) B = x; /* 1x1 convolution: the image is its own col */
  else if (s->S == 1) im2col_s1(t + l->col, t + l->xp, x, s);
  else im2col(t + l->col, x, s);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->OC, OHW, CKK, 1.0f, w, CKK, B, OHW, 0.0f, o, OHW);
  for (int oc = 0; oc < s->OC; oc++) {
    float *restrict oo = o + (size_t)oc * OHW;
    const float bv = b ? b[oc] : 0.0f;
    if (b) {
#pragma omp simd
      for (int j = 0; j < OHW; j++) oo[j] += bv;
    }
    if (r) {
      float *restrict rr = r + (size_t)oc * OHW;
#pragma omp simd
      for (int j = 0; j < OHW; j++) rr[j] = oo[j] > 0.0f ? oo[j] : 0.0f;
    }
  }
}

/* One image: the group's tdw (OC, CKK) += g . col(x)^T (when want_dw), tdb (OC) += row sums of
 * g (acc is the group's part of the workspace), dx (C,H,W) = col2im(w^T . g) (when dx is not
 * NULL); t is this thread's part. */
static void conv_image_backward(float *dx, const float *g, const float *x, const float *w, const sb_conv_shape *s,
                                float *t, float *acc, const ws_layout *l, int want_dw, int want_db) {
  const int CKK = s->C * s->K * s->K, OHW = s->OH * s->OW, OC = s->OC;
  float *col = t + l->col, *tdw = acc + l->tdw, *tdb = acc + l->tdb;
  const float *B = col;
  if (pointwise(s)) B = x;
  else if (want_dw) {
    if (s->S == 1) im2col_s1(col, t + l->xp, x, s);
    else im2col(col, x, s);
  }
  /* dw (OC, CKK) += g (OC, OHW) . col^T (OHW, CKK) */
  if (want_dw) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, CKK, OHW, 1.0f, g, OHW, B, OHW, 1.0f, tdw, CKK);
  if (want_db)
    for (int oc = 0; oc < OC; oc++) tdb[oc] += sum_lanes(g + (size_t)oc * OHW, (size_t)OHW);
  if (dx) {
    if (pointwise(s)) {
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, CKK, OHW, OC, 1.0f, w, CKK, g, OHW, 0.0f, dx, OHW);
    } else {
      /* dcol (CKK, OHW) = w^T (CKK, OC) . g (OC, OHW), then scatter back */
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, CKK, OHW, OC, 1.0f, w, CKK, g, OHW, 0.0f, col, OHW);
      memset(dx, 0, (size_t)s->C * s->H * s->W * sizeof(float));
      col2im(dx, col, s);
    }
  }
}

/* Zero every group's accumulators (before the image loop). */
static void conv_acc_zero(float *ws, const ws_layout *l, const sb_conv_shape *s) {
  const size_t ckk = (size_t)s->C * s->K * s->K;
  for (int q = 0; q < CONV_GROUPS; q++) {
    memset(ws + l->per_group * (size_t)q + l->tdw, 0, (size_t)s->OC * ckk * sizeof(float));
    memset(ws + l->per_group * (size_t)q + l->tdb, 0, (size_t)s->OC * sizeof(float));
  }
}

/* Sum the group accumulators in group order (the same result for any thread count). */
static void conv_acc_reduce(float *dw, float *db, const float *ws, const ws_layout *l, const sb_conv_shape *s) {
  const size_t nw = (size_t)s->OC * s->C * s->K * s->K;
  for (int q = 0; q < CONV_GROUPS; q++) {
    const float *tdw = ws + l->per_group * (size_t)q + l->tdw, *tdb = ws + l->per_group * (size_t)q + l->tdb;
    if (dw)
      for (size_t i = 0; i < nw; i++) dw[i] += tdw[i];
    if (db)
      for (int oc = 0; oc < s->OC; oc++) db[oc] += tdb[oc];
  }
}

/* Images [lo, hi) of group q of a batch of N. */
static void group_range(int q, int N, int *lo, int *hi) {
  *lo = (int)((long)N * q / CONV_GROUPS);
  *hi = (int)((long)N * (q + 1) / CONV_GROUPS);
}

void sb_conv2d_forward(float *out, const float *inp, const float *w, const float *b,
                       const sb_conv_shape *s, int N, float *ws) {
  if (sb_conv2d_uses_winograd(s)) {
    winograd_forward_(out, NULL, NULL, inp, w, b, s, 0, 0, N, ws);
    return;
  }
  const ws_layout l = ws_layout_of(s);
  const size_t in_sz = (size_t)s->C * s->H * s->W, out_sz = (size_t)s->OC * s->OH * s->OW;
#pragma omp parallel for schedule(dynamic)
  for (int n = 0; n < N; n++)
    conv_image_forward(out + (size_t)n * out_sz, NULL, inp + (size_t)n * in_sz, w, b, s, ws_thread(ws, &l), &l);
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
  if (sb_conv2d_uses_winograd(s)) {
    winograd_backward_(dinp, dw, db, dout, NULL, inp, w, s, 0, 0, N, ws);
    return;
  }
  const ws_layout l = ws_layout_of(s);
  const size_t in_sz = (size_t)s->C * s->H * s->W, out_sz = (size_t)s->OC * s->OH * s->OW;
  conv_acc_zero(ws, &l, s);
#pragma omp parallel for schedule(dynamic)
  for (int q = 0; q < CONV_GROUPS; q++) {
    int lo, hi;
    group_range(q, N, &lo, &hi);
    for (int n = lo; n < hi; n++)
      conv_image_backward(dinp ? dinp + (size_t)n * in_sz : NULL, dout + (size_t)n * out_sz, inp + (size_t)n * in_sz,
                          w, s, ws_thread(ws, &l), ws + l.per_group * (size_t)q, &l, dw != NULL, 1);
  }
  conv_acc_reduce(dw, db, ws, &l, s);
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

/* C planes (H, W) -> (OH, OW) averages of K x K windows with stride S (sum in window order, then
 * times 1/K^2: the order every caller relies on for bit-identical results). */
void avgpool_planes_(float *out, const float *inp, int C, int H, int W, int K, int S) {
  const int OH = (H - K) / S + 1, OW = (W - K) / S + 1;
  const float inv = 1.0f / (float)(K * K);
  for (int c = 0; c < C; c++) {
    const float *x = inp + (size_t)c * H * W;
    float *o = out + (size_t)c * OH * OW;
    if (K == 2 && S == 2) {
      for (int oh = 0; oh < OH; oh++) {
        const float *r0 = x + (size_t)(2 * oh) * W, *r1 = r0 + W;
        for (int ow = 0; ow < OW; ow++) {
          float acc = 0.0f;
          acc += r0[2 * ow];
          acc += r0[2 * ow + 1];
          acc += r1[2 * ow];
          acc += r1[2 * ow + 1];
          o[oh * OW + ow] = acc * inv;
        }
      }
      continue;
    }
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        float acc = 0.0f;
        for (int i = 0; i < K; i++)
          for (int j = 0; j < K; j++) acc += x[(oh * S + i) * W + ow * S + j];
        o[oh * OW + ow] = acc * inv;
      }
  }
}

/* C planes: dinp (H, W) = dout spread over each window times 1/K^2 (zero outside windows). */
static void avgpool_planes_backward(float *dinp, const float *dout, int C, int H, int W, int K, int S) {
  const int OH = (H - K) / S + 1, OW = (W - K) / S + 1;
  const float inv = 1.0f / (float)(K * K);
  memset(dinp, 0, (size_t)C * H * W * sizeof(float));
  for (int c = 0; c < C; c++) {
    float *dx = dinp + (size_t)c * H * W;
    const float *g = dout + (size_t)c * OH * OW;
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        float v = g[oh * OW + ow] * inv;
        for (int i = 0; i < K; i++)
          for (int j = 0; j < K; j++) dx[(oh * S + i) * W + ow * S + j] += v;
      }
  }
}

void sb_avgpool_forward(float *out, const float *inp, int N, int C, int H, int W, int K, int S) {
  const int OH = (H - K) / S + 1, OW = (W - K) / S + 1;
#pragma omp parallel for schedule(static)
  for (int nc = 0; nc < N * C; nc++)
    avgpool_planes_(out + (size_t)nc * OH * OW, inp + (size_t)nc * H * W, 1, H, W, K, S);
}

void sb_avgpool_backward(float *dinp, const float *dout, int N, int C, int H, int W, int K, int S) {
  const int OH = (H - K) / S + 1, OW = (W - K) / S + 1;
#pragma omp parallel for schedule(static)
  for (int nc = 0; nc < N * C; nc++)
    avgpool_planes_backward(dinp + (size_t)nc * H * W, dout + (size_t)nc * OH * OW, 1, H, W, K, S);
}

/* ---- fused conv2d -> ReLU [-> avgpool] block (internal.h) ---- */

/* The 2x2/stride-2 case in one pass: gc (OC, OH, OW) = [co > 0] * gp / 4 spread over each window,
 * zero in a last row or column no window covers. The same values as avgpool_planes_backward
 * followed by the ReLU mask (gp / 4 + 0 is what the zeroed buffer plus the spread gives). */
static void pool2_relu_backward(float *restrict gc, const float *restrict gp, const float *restrict co, int OC,
                                int OH, int OW) {
  const int PH = OH / 2, PW = OW / 2;
  for (int oc = 0; oc < OC; oc++)
    for (int y = 0; y < OH; y++) {
      float *G = gc + ((size_t)oc * OH + y) * OW;
      const float *Cr = co + ((size_t)oc * OH + y) * OW;
      int x = 0;
      if (y < 2 * PH) {
        const float *P = gp + ((size_t)oc * PH + y / 2) * PW;
        for (; x < 2 * PW; x++) G[x] = P[x >> 1] * 0.25f + 0.0f;
      }
      for (; x < OW; x++) G[x] = 0.0f;
      /* the mask as a select over the row, not a branch per element (the signs are random) */
#pragma omp simd
      for (x = 0; x < OW; x++) G[x] = Cr[x] > 0.0f ? G[x] : 0.0f;
    }
}

void conv_block_forward_(float *conv_out, float *relu_out, float *pool_out, const float *inp, const float *w,
                         const float *b, const sb_conv_shape *s, int pk, int ps, int N, float *ws) {
  if (sb_conv2d_uses_winograd(s)) {
    winograd_forward_(conv_out, relu_out, pool_out, inp, w, b, s, pk, ps, N, ws);
    return;
  }
  const ws_layout l = ws_layout_of(s);
  const size_t in_sz = (size_t)s->C * s->H * s->W, out_sz = (size_t)s->OC * s->OH * s->OW;
  const size_t pool_sz = pk ? (size_t)s->OC * ((s->OH - pk) / ps + 1) * ((s->OW - pk) / ps + 1) : 0;
#pragma omp parallel for schedule(dynamic)
  for (int n = 0; n < N; n++) {
    float *o = conv_out + (size_t)n * out_sz, *r = relu_out + (size_t)n * out_sz;
    /* the image's output is still in cache: bias, ReLU and pooling now, not in passes of their own */
    conv_image_forward(o, r, inp + (size_t)n * in_sz, w, b, s, ws_thread(ws, &l), &l);
    if (pk) avgpool_planes_(pool_out + (size_t)n * pool_sz, r, s->OC, s->OH, s->OW, pk, ps);
  }
}

void conv_out_grad_(float *gc, float *tdb, const float *dout, const float *co, const sb_conv_shape *s, int pk, int ps) {
  const size_t out_sz = (size_t)s->OC * s->OH * s->OW, OHW = (size_t)s->OH * s->OW;
  if (co) {
    /* gradient at the convolution's output: pooling's spread, then the ReLU mask */
    if (pk == 2 && ps == 2) {
      pool2_relu_backward(gc, dout, co, s->OC, s->OH, s->OW);
    } else if (pk) {
      avgpool_planes_backward(gc, dout, s->OC, s->OH, s->OW, pk, ps);
#pragma omp simd
      for (size_t j = 0; j < out_sz; j++) gc[j] = co[j] > 0.0f ? gc[j] : 0.0f;
    } else {
#pragma omp simd
      for (size_t j = 0; j < out_sz; j++) {
        const float gj = dout[j];
        gc[j] = co[j] > 0.0f ? gj : 0.0f;
      }
    }
  }
  const float *g = co ? gc : dout;
  for (int oc = 0; oc < s->OC; oc++) tdb[oc] += sum_lanes(g + (size_t)oc * OHW, OHW);
}

void conv_block_backward_(float *dinp, float *dw, float *db, const float *dout, const float *conv_out,
                          const float *inp, const float *w, const sb_conv_shape *s, int pk, int ps, int N, float *ws) {
  if (sb_conv2d_uses_winograd(s)) {
    winograd_backward_(dinp, dw, db, dout, conv_out, inp, w, s, pk, ps, N, ws);
    return;
  }
  const ws_layout l = ws_layout_of(s);
  const size_t in_sz = (size_t)s->C * s->H * s->W, out_sz = (size_t)s->OC * s->OH * s->OW;
  const size_t pool_sz = pk ? (size_t)s->OC * ((s->OH - pk) / ps + 1) * ((s->OW - pk) / ps + 1) : 0;
  conv_acc_zero(ws, &l, s);
#pragma omp parallel for schedule(dynamic)
  for (int q = 0; q < CONV_GROUPS; q++) {
    int lo, hi;
    group_range(q, N, &lo, &hi);
    for (int n = lo; n < hi; n++) {
      float *t = ws_thread(ws, &l), *gc = t + l.gc;
      float *acc = ws + l.per_group * (size_t)q;
      conv_out_grad_(gc, acc + l.tdb, pk ? dout + (size_t)n * pool_sz : dout + (size_t)n * out_sz,
                     conv_out + (size_t)n * out_sz, s, pk, ps);
      conv_image_backward(dinp ? dinp + (size_t)n * in_sz : NULL, gc, inp + (size_t)n * in_sz, w, s, t, acc, &l,
                          dw != NULL, 0);
    }
  }
  conv_acc_reduce(dw, db, ws, &l, s);
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

/* Element-wise loops run in chunks: threads over chunks (large arrays only), and an inner loop the
 * compiler turns into vector compare-and-select (the combined `parallel for simd` form came out
 * as a scalar loop with a branch per element, mispredicted on random signs). */
#define EW_CHUNK 16384
#define EW_PARALLEL_MIN 65536

static void relu_range(float *out, const float *inp, size_t lo, size_t hi) {
#pragma omp simd
  for (size_t i = lo; i < hi; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

static void relu_backward_range(float *dinp, const float *dout, const float *inp, size_t lo, size_t hi) {
#pragma omp simd
  for (size_t i = lo; i < hi; i++) {
    const float d = dout[i]; /* an unconditional load, so the select vectorises */
    dinp[i] = inp[i] > 0.0f ? d : 0.0f;
  }
}

void sb_relu_forward(float *out, const float *inp, size_t n) {
  const long nch = (long)((n + EW_CHUNK - 1) / EW_CHUNK);
#pragma omp parallel for schedule(static) if (n > EW_PARALLEL_MIN)
  for (long c = 0; c < nch; c++) {
    size_t lo = (size_t)c * EW_CHUNK;
    relu_range(out, inp, lo, lo + EW_CHUNK < n ? lo + EW_CHUNK : n);
  }
}
void sb_relu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
  const long nch = (long)((n + EW_CHUNK - 1) / EW_CHUNK);
#pragma omp parallel for schedule(static) if (n > EW_PARALLEL_MIN)
  for (long c = 0; c < nch; c++) {
    size_t lo = (size_t)c * EW_CHUNK;
    relu_backward_range(dinp, dout, inp, lo, lo + EW_CHUNK < n ? lo + EW_CHUNK : n);
  }
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
