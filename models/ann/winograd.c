/* Winograd minimal filtering F(2x2, 5x5) for stride-1 5x5 convolutions (Lavin & Gray 2016, "Fast
 * Algorithms for Convolutional Neural Networks", CVPR): forward, backward data and backward filter,
 * as 36 sgemm per chunk of images in a 6x6 transformed domain (36 multiplies per 2x2 outputs
 * instead of 100). Only this shape; layers.c's im2col path does every other one, and
 * sb_conv2d_uses_winograd (layers.c) decides which path runs.
 *
 * One dimension, points 0, +-1, +-1/2, infinity (m = 2 outputs, r = 5 taps, alpha = 6):
 *   y = A^T [(G g) . (B^T d)],   B^T rows scaled so that B^T is integral (G takes the factors):
 *   B^T = [1  0 -5  0  4  0;  0 -1 -1  4  4  0;  0  1 -1 -4  4  0;
 *          0  4  8 -4 -8  0;  0 -4  8  4 -8  0;  0  1  0 -5  0  4]
 *   G   = [1 0 0 0 0;  1/6 1/6 1/6 1/6 1/6;  1/6 -1/6 1/6 -1/6 1/6;
 *          1/3 1/6 1/12 1/24 1/48;  1/3 -1/6 1/12 -1/24 1/48;  0 0 0 0 1/4]
 *   A^T = [1 1 1 1 1 0;  0 1 -1 1/2 -1/2 1]
 * (the Toom-Cook matrices: A, G evaluate polynomials at the points, B^T is the inverse transposed
 * Vandermonde matrix. In a numpy model of fp32 on C = 32, K = 64 random layers +-1/2 gave 2.8e-6
 * max relative error, +-2 gave 3.4e-6, the unscaled matrices 3.1e-6 and 3.8e-6.)
 * Two dimensions, per 6x6 input tile d and 2x2 output tile:
 *   forward         Y  = A^T [U . (B^T d B)] A,   U = G w G^T                    (F(2x2, 5x5))
 *   backward filter dW = G^T [sum over tiles (A dY A^T) . (B^T d B)] G   (F(5x5, 2x2): the derivative
 *                   of forward in U; the same 6x6 domain and the same B^T d B)
 *   backward data   dd = B [sum over k U . (A dY A^T)] B^T per tile, overlap-added into dX (the
 *                   transpose of forward; it reuses A dY A^T of the filter pass, and equals the
 *                   correlation of dY with the rotated kernels).
 * Weight-side transforms (G w G^T and the final G^T M G) run in double, once per call; the
 * data-side ones are the explicit adds and multiplies below, vectorised over the tiles.
 *
 * Work split (results bit-identical for any thread count): a batch of N images is cut into
 * CONV_GROUPS fixed groups of consecutive images (as the im2col path), each group into chunks
 * of at most WINO_IMAGES images; a chunk's tiles form the columns of its 36 sgemm. Threads take
 * whole groups; the filter gradient of each group is accumulated in the transformed domain
 * (36 x OC x C) and the groups are summed in group order. */
#include "models/ann/ann.h"
#include "models/ann/internal.h"

#include <gsl/gsl_cblas.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#ifndef WINO_IMAGES
#define WINO_IMAGES 4 /* images per chunk: 4 x 49 = 196 sgemm columns for a 14x14 output (2, 4, 8, 16 measured: 4 best) */
#endif
#define NXI 36        /* transformed-domain points (6 x 6) */

/* ---- layout ---- */

static size_t up16(size_t n) { return (n + 15) & ~(size_t)15; }
static size_t up8(size_t n) { return (n + 7) & ~(size_t)7; }

typedef struct {
  int th, tw, nt;          /* tiles of the convolution's output (OH, OW): rows, cols, per image */
  size_t u;                /* shared: G w G^T (36, OC, C) */
  size_t acc, per_group;   /* shared: per group, dW in the transformed domain (36, OC, C), then db (OC) */
  size_t threads;          /* where the per-thread parts start */
  size_t pad, d, e, gc, v, per; /* per thread: padded plane, gather and half-transformed tiles,
                                     block gradient (WINO_IMAGES, OC, OH, OW), transformed operands */
} wlayout;

static wlayout layout_of(const sb_conv_shape *s) {
  wlayout l;
  const size_t C = (size_t)s->C, OC = (size_t)s->OC;
  l.th = (s->OH + 1) / 2; l.tw = (s->OW + 1) / 2; l.nt = l.th * l.tw;
  const size_t ldo = up8((size_t)WINO_IMAGES * l.nt);
  size_t o = 0;
  l.u = o; o += up16(NXI * OC * C);
  l.acc = o; l.per_group = up16(NXI * OC * C) + up16(OC); o += l.per_group * CONV_GROUPS;
  l.threads = o;
  o = 0;
  l.pad = o; o += up16((size_t)(2 * l.th + 4) * (2 * l.tw + 4)) + 16; /* + 16: gather_tiles reads past */
  l.d = o; o += up16(NXI * (size_t)l.nt) + 16;                       /* + 16: gather_tiles writes past */
  l.e = o; o += up16(NXI * (size_t)l.nt);
  l.gc = o; o += up16((size_t)WINO_IMAGES * OC * s->OH * s->OW);
  /* forward: V (36, C, ldo) then M (36, OC, ldo); backward: V or Z (36, C, ldo) then Gy (36, OC, ldo) */
  l.v = o; o += up16(NXI * (C + OC) * ldo);
  l.per = o;
  return l;
}

int winograd_applies_(const sb_conv_shape *s) { return s->K == 5 && s->S == 1 && s->P <= 4; }

size_t winograd_workspace_(const sb_conv_shape *s, int nthreads) {
  const wlayout l = layout_of(s);
  return l.threads + l.per * (size_t)(nthreads < 1 ? 1 : nthreads) + 8; /* + 8: 32-byte alignment */
}

static float *aligned32(float *ws) { return ws + ((8 - ((uintptr_t)ws / sizeof(float)) % 8) % 8); }

/* ---- transforms (data side, float, vectorised over n tiles) ---- */

/* Compiled for AVX-512, AVX2 and baseline x86-64, picked at load time. The results do not depend
 * on the choice: C17 mode leaves -ffp-contract off, so no clone fuses a multiply and an add. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define SB_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define SB_CLONES
#endif

/* o[a][t] = (B^T d)[a] for the 6-vectors d[.][t] */
SB_CLONES static void bt6(float *const o[6], const float *const d[6], int n) {
  const float *restrict d0 = d[0], *restrict d1 = d[1], *restrict d2 = d[2], *restrict d3 = d[3],
              *restrict d4 = d[4], *restrict d5 = d[5];
  float *restrict o0 = o[0], *restrict o1 = o[1], *restrict o2 = o[2], *restrict o3 = o[3], *restrict o4 = o[4],
                  *restrict o5 = o[5];
#pragma omp simd
  for (int t = 0; t < n; t++) {
    const float x0 = d0[t], x1 = d1[t], x2 = d2[t], x3 = d3[t], x4 = d4[t], x5 = d5[t];
    const float p = x1 - x3, q = x2 - x4;
    o0[t] = (x0 - 5.0f * x2) + 4.0f * x4;
    o1[t] = 4.0f * (x3 + x4) - (x1 + x2);
    o2[t] = (x1 - x2) + 4.0f * (x4 - x3);
    o3[t] = 4.0f * p + 8.0f * q;
    o4[t] = 8.0f * q - 4.0f * p;
    o5[t] = (x1 - 5.0f * x3) + 4.0f * x5;
  }
}

/* o[j][t] = (B z)[j] for the 6-vectors z[.][t] (the transpose of bt6) */
SB_CLONES static void b6(float *const o[6], const float *const z[6], int n) {
  const float *restrict z0 = z[0], *restrict z1 = z[1], *restrict z2 = z[2], *restrict z3 = z[3],
              *restrict z4 = z[4], *restrict z5 = z[5];
  float *restrict o0 = o[0], *restrict o1 = o[1], *restrict o2 = o[2], *restrict o3 = o[3], *restrict o4 = o[4],
                  *restrict o5 = o[5];
#pragma omp simd
  for (int t = 0; t < n; t++) {
    const float x0 = z0[t], x1 = z1[t], x2 = z2[t], x3 = z3[t], x4 = z4[t], x5 = z5[t];
    const float p = x1 + x2, m = x1 - x2, P = x3 + x4, M = x3 - x4;
    o0[t] = x0;
    o1[t] = (4.0f * M - m) + x5;
    o2[t] = (8.0f * P - p) - 5.0f * x0;
    o3[t] = 4.0f * (m - M) - 5.0f * x5;
    o4[t] = 4.0f * (x0 + p) - 8.0f * P;
    o5[t] = 4.0f * x5;
  }
}

/* 8-float vectors (GCC vector extensions: AVX shuffles in the AVX clones, SSE pairs otherwise) */
typedef float v8f __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));

/* D[i*6+j][ty*TW+tx] = pad[2ty+i][2tx+j] (pad: rows of PW floats). Up to 8 tiles a row (outputs
 * up to 16 wide) as one shuffle of the even floats of 16: that writes up to 7 floats past the
 * tile row (into the next row, or the next (i, j), written after it, or the spare after D) and
 * reads up to 15 floats past the row start (the spare after pad). */
SB_CLONES static void gather_tiles(float *restrict D, const float *restrict pad, int PW, int TH, int TW) {
  const int nt = TH * TW;
  if (TW <= 8) {
    const v8i even = {0, 2, 4, 6, 8, 10, 12, 14};
    for (int i = 0; i < 6; i++)
      for (int j = 0; j < 6; j++) {
        float *dd = D + (size_t)(i * 6 + j) * nt;
        for (int ty = 0; ty < TH; ty++) {
          const float *pr = pad + (size_t)(2 * ty + i) * PW + j;
          v8f lo, hi;
          memcpy(&lo, pr, sizeof lo);
          memcpy(&hi, pr + 8, sizeof hi);
          const v8f r = __builtin_shuffle(lo, hi, even);
          memcpy(dd + ty * TW, &r, sizeof r);
        }
      }
    return;
  }
  for (int i = 0; i < 6; i++)
    for (int j = 0; j < 6; j++) {
      float *restrict dd = D + (size_t)(i * 6 + j) * nt;
      for (int ty = 0; ty < TH; ty++) {
        const float *restrict pr = pad + (size_t)(2 * ty + i) * PW + j;
        for (int tx = 0; tx < TW; tx++) dd[ty * TW + tx] = pr[2 * tx];
      }
    }
}

/* Input transform of one image: planes x (Cin, H, W), zero padded by P, cut into the 6x6 tiles
 * (stride 2) of a TH x TW tile grid; V[xi][c][t0 + t] = (B^T d B)[xi] of tile t (row-major
 * tiles), V's matrices xi at V + xi * vs, rows c at ld. */
static void input_transform(float *V, size_t vs, size_t ld, size_t t0, const float *x, int Cin, int H, int W,
                            int P, int TH, int TW, float *pad, float *D, float *E) {
  const int PH = 2 * TH + 4, PW = 2 * TW + 4, nt = TH * TW;
  for (int c = 0; c < Cin; c++) {
    const float *xc = x + (size_t)c * H * W;
    for (int r = 0; r < PH; r++) {
      float *pr = pad + (size_t)r * PW;
      const int ih = r - P;
      memset(pr, 0, (size_t)PW * sizeof(float));
      if (ih >= 0 && ih < H) {
        /* columns [P, P + W) lie inside the plane (PW >= W + 2P; see layout_of) */
        memcpy(pr + P, xc + (size_t)ih * W, (size_t)W * sizeof(float));
      }
    }
    gather_tiles(D, pad, PW, TH, TW);
    /* rows: E[i*6+b] = sum_j B^T[b][j] D[i*6+j] */
    for (int i = 0; i < 6; i++) {
      const float *in[6];
      float *out[6];
      for (int j = 0; j < 6; j++) {
        in[j] = D + (size_t)(i * 6 + j) * nt;
        out[j] = E + (size_t)(i * 6 + j) * nt;
      }
      bt6(out, in, nt);
    }
    /* columns: V[a*6+b] = sum_i B^T[a][i] E[i*6+b] */
    for (int b = 0; b < 6; b++) {
      const float *in[6];
      float *out[6];
      for (int i = 0; i < 6; i++) {
        in[i] = E + (size_t)(i * 6 + b) * nt;
        out[i] = V + (size_t)(i * 6 + b) * vs + (size_t)c * ld + t0;
      }
      bt6(out, in, nt);
    }
  }
}

/* o0[t] = (A^T m)[0], o1[t] = (A^T m)[1] for the 6-vectors m[.][t] */
SB_CLONES static void at6(float *restrict o0, float *restrict o1, const float *const m[6], int n) {
  const float *restrict m0 = m[0], *restrict m1 = m[1], *restrict m2 = m[2], *restrict m3 = m[3],
              *restrict m4 = m[4], *restrict m5 = m[5];
#pragma omp simd
  for (int t = 0; t < n; t++) {
    const float x0 = m0[t], x1 = m1[t], x2 = m2[t], x3 = m3[t], x4 = m4[t], x5 = m5[t];
    o0[t] = ((x0 + x1) + (x2 + x3)) + x4;
    o1[t] = ((x1 - x2) + 0.5f * (x3 - x4)) + x5;
  }
}

/* o[i][t] = (A (u, v))[i] = (u, u + v, u - v, u + v/2, u - v/2, v) */
SB_CLONES static void a6(float *const o[6], const float *restrict u, const float *restrict v, int n) {
  float *restrict o0 = o[0], *restrict o1 = o[1], *restrict o2 = o[2], *restrict o3 = o[3], *restrict o4 = o[4],
                  *restrict o5 = o[5];
#pragma omp simd
  for (int t = 0; t < n; t++) {
    const float x = u[t], y = v[t];
    o0[t] = x;
    o1[t] = x + y;
    o2[t] = x - y;
    o3[t] = x + 0.5f * y;
    o4[t] = x - 0.5f * y;
    o5[t] = y;
  }
}

/* Output transform of one image: Y (Cout, OH, OW) from M[xi][k][t0 + t] (the same indexing as
 * V above), Y = A^T M A per tile, the parts beyond OH or OW dropped; + b[k] when b. tmp: 16 nt. */
static void output_transform(float *Y, const float *M, size_t ms, size_t ld, size_t t0, const float *b, int Cout,
                             int OH, int OW, int TH, int TW, float *tmp) {
  const int nt = TH * TW;
  float *y00 = tmp, *y01 = tmp + nt, *y10 = tmp + 2 * nt, *y11 = tmp + 3 * nt, *S = tmp + 4 * nt;
  for (int k = 0; k < Cout; k++) {
    /* rows: S[q][a] = sum_b A^T[q][b] M[a*6+b]; then columns: y[p][q] = sum_a A^T[p][a] S[q][a] */
    for (int a = 0; a < 6; a++) {
      const float *m[6];
      for (int j = 0; j < 6; j++) m[j] = M + (size_t)(a * 6 + j) * ms + (size_t)k * ld + t0;
      at6(S + (size_t)a * nt, S + (size_t)(6 + a) * nt, m, nt);
    }
    for (int q = 0; q < 2; q++) {
      const float *m[6];
      for (int a = 0; a < 6; a++) m[a] = S + (size_t)(6 * q + a) * nt;
      at6(q ? y01 : y00, q ? y11 : y10, m, nt);
    }
    float *yk = Y + (size_t)k * OH * OW;
    const float bv = b ? b[k] : 0.0f;
    for (int ty = 0; ty < TH; ty++) {
      const int y = 2 * ty;
      float *r0 = yk + (size_t)y * OW, *r1 = r0 + OW;
      const int full = (OW / 2 < TW ? OW / 2 : TW); /* tiles with both columns inside */
      const int t = ty * TW;
      for (int tx = 0; tx < full; tx++) {
        r0[2 * tx] = y00[t + tx];
        r0[2 * tx + 1] = y01[t + tx];
      }
      if (full < TW) r0[2 * full] = y00[t + full];
      if (y + 1 < OH) {
        for (int tx = 0; tx < full; tx++) {
          r1[2 * tx] = y10[t + tx];
          r1[2 * tx + 1] = y11[t + tx];
        }
        if (full < TW) r1[2 * full] = y10[t + full];
      }
    }
    if (b) {
#pragma omp simd
      for (int j = 0; j < OH * OW; j++) yk[j] += bv;
    }
  }
}

/* Gradient-side transform of one image for the filter gradient: Gy[xi][k][t0 + t] = (A g A^T)[xi]
 * of the 2x2 tile t of the planes g (Cout, OH, OW) (zero beyond OH, OW). D: 16 nt floats. */
static void grad_transform(float *Gy, size_t gs, size_t ld, size_t t0, const float *g, int Cout, int OH, int OW,
                           int TH, int TW, float *D) {
  const int nt = TH * TW;
  float *g00 = D, *g01 = D + nt, *g10 = D + 2 * nt, *g11 = D + 3 * nt, *R = D + 4 * nt;
  for (int k = 0; k < Cout; k++) {
    const float *gk = g + (size_t)k * OH * OW;
    for (int ty = 0; ty < TH; ty++) {
      const int y = 2 * ty, in_y = y + 1 < OH;
      const float *r0 = gk + (size_t)y * OW, *r1 = r0 + OW;
      for (int tx = 0; tx < TW; tx++) {
        const int x = 2 * tx, t = ty * TW + tx, in_x = x + 1 < OW;
        g00[t] = r0[x];
        g01[t] = in_x ? r0[x + 1] : 0.0f;
        g10[t] = in_y ? r1[x] : 0.0f;
        g11[t] = in_x && in_y ? r1[x + 1] : 0.0f;
      }
    }
    /* rows: R[p*6+j] = (A g_p)[j]; columns: Gy[i*6+j] = (A (R[j], R[6+j]))[i] */
    float *o[6];
    for (int j = 0; j < 6; j++) o[j] = R + (size_t)j * nt;
    a6(o, g00, g01, nt);
    for (int j = 0; j < 6; j++) o[j] = R + (size_t)(6 + j) * nt;
    a6(o, g10, g11, nt);
    for (int j = 0; j < 6; j++) {
      for (int i = 0; i < 6; i++) o[i] = Gy + (size_t)(i * 6 + j) * gs + (size_t)k * ld + t0;
      a6(o, R + (size_t)j * nt, R + (size_t)(6 + j) * nt, nt);
    }
  }
}

/* pad[2ty+i][2tx+j] += D[i*6+j][ty*TW+tx], in the order (i, j), then tiles (the inverse of
 * gather_tiles). Up to 8 tiles a row: the row's values, zero past TW, spread over the even
 * floats of 16 and added (x + 0 = x: the odd floats and those past the row keep their values,
 * but for the sign of a zero); reads up to 7 floats past the D row and writes up to 15 past
 * the row start (the spares after D and pad). */
SB_CLONES static void scatter_tiles(float *restrict pad, const float *restrict D, int PW, int TH, int TW) {
  const int nt = TH * TW;
  if (TW <= 8) {
    const v8i lo_idx = {0, 8, 1, 8, 2, 8, 3, 8}, hi_idx = {4, 8, 5, 8, 6, 8, 7, 8};
    v8i keep;
    for (int q = 0; q < 8; q++) keep[q] = q < TW ? -1 : 0;
    const v8f zero = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < 6; i++)
      for (int j = 0; j < 6; j++) {
        const float *dd = D + (size_t)(i * 6 + j) * nt;
        for (int ty = 0; ty < TH; ty++) {
          float *pr = pad + (size_t)(2 * ty + i) * PW + j;
          v8f v, lo, hi;
          v8i vb;
          memcpy(&vb, dd + ty * TW, sizeof vb);
          vb &= keep;
          memcpy(&v, &vb, sizeof v);
          memcpy(&lo, pr, sizeof lo);
          memcpy(&hi, pr + 8, sizeof hi);
          lo += __builtin_shuffle(v, zero, lo_idx);
          hi += __builtin_shuffle(v, zero, hi_idx);
          memcpy(pr, &lo, sizeof lo);
          memcpy(pr + 8, &hi, sizeof hi);
        }
      }
    return;
  }
  for (int i = 0; i < 6; i++)
    for (int j = 0; j < 6; j++) {
      const float *restrict dd = D + (size_t)(i * 6 + j) * nt;
      for (int ty = 0; ty < TH; ty++) {
        float *restrict pr = pad + (size_t)(2 * ty + i) * PW + j;
        for (int tx = 0; tx < TW; tx++) pr[2 * tx] += dd[ty * TW + tx];
      }
    }
}

/* Backward data of one image from the transformed-domain product Z[xi][c][t0 + t] (= sum_k
 * U[xi][k][c] Gy[xi][k][t]): each tile's B Z B^T (6x6) is added into a zeroed padded plane at the
 * tile's input patch, in tile order; dx (Cin, H, W) is the plane without its padding P. */
static void data_grad_transform(float *dx, const float *Z, size_t zs, size_t ld, size_t t0, int Cin, int H, int W,
                                int P, int TH, int TW, float *pad, float *D, float *E) {
  const int PH = 2 * TH + 4, PW = 2 * TW + 4, nt = TH * TW;
  for (int c = 0; c < Cin; c++) {
    /* rows: E[a*6+j] = (B Z[a*6+.])[j]; columns: D[i*6+j] = (B E[.*6+j])[i] */
    for (int a = 0; a < 6; a++) {
      const float *in[6];
      float *out[6];
      for (int b = 0; b < 6; b++) {
        in[b] = Z + (size_t)(a * 6 + b) * zs + (size_t)c * ld + t0;
        out[b] = E + (size_t)(a * 6 + b) * nt;
      }
      b6(out, in, nt);
    }
    for (int j = 0; j < 6; j++) {
      const float *in[6];
      float *out[6];
      for (int a = 0; a < 6; a++) {
        in[a] = E + (size_t)(a * 6 + j) * nt;
        out[a] = D + (size_t)(a * 6 + j) * nt;
      }
      b6(out, in, nt);
    }
    memset(pad, 0, (size_t)PH * PW * sizeof(float));
    scatter_tiles(pad, D, PW, TH, TW);
    float *xc = dx + (size_t)c * H * W;
    for (int h = 0; h < H; h++) memcpy(xc + (size_t)h * W, pad + (size_t)(h + P) * PW + P, (size_t)W * sizeof(float));
  }
}

/* ---- weight side (double, once per call) ---- */

/* o = G g for a 5-vector g (the rows of G in pairs: even and odd parts) */
static void g6(double o[6], const double g[5]) {
  const double e1 = (g[0] + g[2]) + g[4], o1 = g[1] + g[3];
  const double e2 = (g[0] / 3 + g[2] / 12) + g[4] / 48, o2 = g[1] / 6 + g[3] / 24;
  o[0] = g[0];
  o[1] = (e1 + o1) / 6;
  o[2] = (e1 - o1) / 6;
  o[3] = e2 + o2;
  o[4] = e2 - o2;
  o[5] = g[4] / 4;
}

/* o = G^T m for a 6-vector m */
static void gt5(double o[5], const double m[6]) {
  const double p = (m[1] + m[2]) / 6, q = (m[1] - m[2]) / 6, r = m[3] + m[4], t = m[3] - m[4];
  o[0] = (m[0] + p) + r / 3;
  o[1] = q + t / 6;
  o[2] = p + r / 12;
  o[3] = q + t / 24;
  o[4] = (p + r / 48) + m[5] / 4;
}

/* U[xi][k][c] = (G w[k][c] G^T)[xi] */
static void weight_transform(float *U, const float *w, int OC, int C) {
#pragma omp parallel for schedule(dynamic, 4) /* per element independent: any schedule gives the same */
  for (int k = 0; k < OC; k++)
    for (int c = 0; c < C; c++) {
      const float *g = w + ((size_t)k * C + c) * 25;
      double t[6][5], col[5], o[6];
      for (int v = 0; v < 5; v++) { /* columns: t[.][v] = G g[.][v] */
        for (int u = 0; u < 5; u++) col[u] = g[u * 5 + v];
        g6(o, col);
        for (int i = 0; i < 6; i++) t[i][v] = o[i];
      }
      for (int i = 0; i < 6; i++) { /* rows: (t G^T)[i][.] = G t[i][.] */
        g6(o, t[i]);
        for (int j = 0; j < 6; j++) U[((size_t)(i * 6 + j) * OC + k) * C + c] = (float)o[j];
      }
    }
}

/* dw[k][c] += G^T M[k][c] G, M (36, OC, C) the transformed-domain gradient summed over the nq
 * groups' accumulators M + qs[r] * stride in the order given (float sums, so the result does not
 * depend on the threads that run this). */
static void filter_output_transform(float *dw, const float *M, size_t stride, const int *qs, int nq, int OC, int C) {
#pragma omp parallel for schedule(dynamic, 4) /* per element independent: any schedule gives the same */
  for (int k = 0; k < OC; k++)
    for (int c = 0; c < C; c++) {
      double t[5][6], col[6], o[5];
      for (int j = 0; j < 6; j++) { /* columns: t[.][j] = G^T M[.][j] */
        for (int i = 0; i < 6; i++) {
          const size_t idx = ((size_t)(i * 6 + j) * OC + k) * C + c;
          float a = M[stride * (size_t)qs[0] + idx];
          for (int r = 1; r < nq; r++) a += M[stride * (size_t)qs[r] + idx];
          col[i] = a;
        }
        gt5(o, col);
        for (int u = 0; u < 5; u++) t[u][j] = o[u];
      }
      float *g = dw + ((size_t)k * C + c) * 25;
      for (int u = 0; u < 5; u++) { /* rows: G^T t[u][.] */
        gt5(o, t[u]);
        for (int v = 0; v < 5; v++) g[u * 5 + v] += (float)o[v];
      }
    }
}

/* ---- passes ---- */

/* Images [lo, hi) of group q of a batch of N (the same split as layers.c). */
static void group_range(int q, int N, int *lo, int *hi) {
  *lo = (int)((long)N * q / CONV_GROUPS);
  *hi = (int)((long)N * (q + 1) / CONV_GROUPS);
}

/* One chunk of nb images through a Winograd convolution: Y (nb, Cout, OH, OW) = conv(X (nb, Cin,
 * H, W), U (36, Cout, Cin)) + b, padding P, tile grid TH x TW over (OH, OW); t is this thread's part. */
static void chunk_conv(float *Y, const float *X, const float *U, const float *b, int nb, int Cin, int Cout, int H,
                       int W, int P, int OH, int OW, int TH, int TW, float *t, const wlayout *l) {
  const int nt = TH * TW;
  const size_t T = (size_t)nb * nt, ld = up8(T), vs = (size_t)Cin * ld, ms = (size_t)Cout * ld;
  float *V = t + l->v, *M = V + NXI * vs;
  for (int n = 0; n < nb; n++)
    input_transform(V, vs, ld, (size_t)n * nt, X + (size_t)n * Cin * H * W, Cin, H, W, P, TH, TW, t + l->pad,
                    t + l->d, t + l->e);
  for (int xi = 0; xi < NXI; xi++)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cout, (int)T, Cin, 1.0f, U + (size_t)xi * Cout * Cin, Cin,
                V + (size_t)xi * vs, (int)ld, 0.0f, M + (size_t)xi * ms, (int)ld);
  for (int n = 0; n < nb; n++)
    output_transform(Y + (size_t)n * Cout * OH * OW, M, ms, ld, (size_t)n * nt, b, Cout, OH, OW, TH, TW, t + l->d);
}

void winograd_forward_(float *conv_out, float *relu_out, float *pool_out, const float *inp, const float *w,
                       const float *b, const sb_conv_shape *s, int pk, int ps, int N, float *ws) {
  const wlayout l = layout_of(s);
  ws = aligned32(ws);
  const size_t in_sz = (size_t)s->C * s->H * s->W, out_sz = (size_t)s->OC * s->OH * s->OW;
  const int PH = pk ? (s->OH - pk) / ps + 1 : 0, PW = pk ? (s->OW - pk) / ps + 1 : 0;
  const size_t pool_sz = (size_t)s->OC * PH * PW;
  float *U = ws + l.u;
  weight_transform(U, w, s->OC, s->C);
#pragma omp parallel for schedule(dynamic)
  for (int q = 0; q < CONV_GROUPS; q++) {
    int lo, hi;
    group_range(q, N, &lo, &hi);
    float *t = ws + l.threads + l.per * (size_t)thread_id();
    for (int n0 = lo; n0 < hi; n0 += WINO_IMAGES) {
      const int nb = hi - n0 < WINO_IMAGES ? hi - n0 : WINO_IMAGES;
      chunk_conv(conv_out + (size_t)n0 * out_sz, inp + (size_t)n0 * in_sz, U, b, nb, s->C, s->OC, s->H, s->W, s->P,
                 s->OH, s->OW, l.th, l.tw, t, &l);
      if (!relu_out) continue;
      for (int n = n0; n < n0 + nb; n++) {
        const float *restrict o = conv_out + (size_t)n * out_sz;
        float *restrict r = relu_out + (size_t)n * out_sz;
#pragma omp simd
        for (size_t j = 0; j < out_sz; j++) r[j] = o[j] > 0.0f ? o[j] : 0.0f;
        if (pk) avgpool_planes_(pool_out + (size_t)n * pool_sz, r, s->OC, s->OH, s->OW, pk, ps);
      }
    }
  }
}

void winograd_backward_(float *dinp, float *dw, float *db, const float *dout, const float *conv_out,
                        const float *inp, const float *w, const sb_conv_shape *s, int pk, int ps, int N, float *ws) {
  const wlayout l = layout_of(s);
  ws = aligned32(ws);
  const int C = s->C, OC = s->OC;
  const size_t in_sz = (size_t)C * s->H * s->W, out_sz = (size_t)OC * s->OH * s->OW;
  const int PH = pk ? (s->OH - pk) / ps + 1 : 0, PW = pk ? (s->OW - pk) / ps + 1 : 0;
  const size_t dout_sz = conv_out ? (pk ? (size_t)OC * PH * PW : out_sz) : out_sz;
  const size_t nm = NXI * (size_t)OC * C;
  float *U = ws + l.u;
  if (dinp) weight_transform(U, w, OC, C);
#pragma omp parallel for schedule(dynamic)
  for (int q = 0; q < CONV_GROUPS; q++) {
    int lo, hi;
    group_range(q, N, &lo, &hi);
    float *t = ws + l.threads + l.per * (size_t)thread_id();
    float *macc = ws + l.acc + l.per_group * (size_t)q, *tdb = macc + up16(nm);
    memset(tdb, 0, (size_t)OC * sizeof(float)); /* macc: the group's first chunk writes it (beta 0) */
    for (int n0 = lo; n0 < hi; n0 += WINO_IMAGES) {
      const int nb = hi - n0 < WINO_IMAGES ? hi - n0 : WINO_IMAGES;
      /* the gradient at the convolution's output, image by image, and the bias gradient */
      const float *g = dout + (size_t)n0 * out_sz;
      if (conv_out) {
        for (int n = 0; n < nb; n++)
          conv_out_grad_(t + l.gc + (size_t)n * out_sz, tdb, dout + (size_t)(n0 + n) * dout_sz,
                         conv_out + (size_t)(n0 + n) * out_sz, s, pk, ps);
        g = t + l.gc;
      } else {
        for (int n = 0; n < nb; n++) conv_out_grad_(NULL, tdb, g + (size_t)n * out_sz, NULL, s, 0, 0);
      }
      if (!dw && !dinp) continue;
      /* V (36, C, T): the input's tiles; Gy (36, OC, T): A g A^T of the gradient's 2x2 tiles */
      const size_t T = (size_t)nb * l.nt, ld = up8(T), vs = (size_t)C * ld, gs = (size_t)OC * ld;
      float *V = t + l.v, *Gy = V + NXI * vs;
      for (int n = 0; n < nb; n++) {
        if (dw)
          input_transform(V, vs, ld, (size_t)n * l.nt, inp + (size_t)(n0 + n) * in_sz, C, s->H, s->W, s->P, l.th,
                          l.tw, t + l.pad, t + l.d, t + l.e);
        grad_transform(Gy, gs, ld, (size_t)n * l.nt, g + (size_t)n * out_sz, OC, s->OH, s->OW, l.th, l.tw, t + l.d);
      }
      /* filter: M[xi] (OC, C) += Gy[xi] (OC, T) . V[xi]^T (T, C) */
      if (dw)
        for (int xi = 0; xi < NXI; xi++)
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, C, (int)T, 1.0f, Gy + (size_t)xi * gs, (int)ld,
                      V + (size_t)xi * vs, (int)ld, n0 == lo ? 0.0f : 1.0f, macc + (size_t)xi * OC * C, C);
      if (!dinp) continue;
      /* data: Z[xi] (C, T) = U[xi]^T (C, OC) . Gy[xi] (OC, T) into V's place, then B Z B^T per tile */
      float *Z = V;
      for (int xi = 0; xi < NXI; xi++)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, (int)T, OC, 1.0f, U + (size_t)xi * OC * C, C,
                    Gy + (size_t)xi * gs, (int)ld, 0.0f, Z + (size_t)xi * vs, (int)ld);
      for (int n = 0; n < nb; n++)
        data_grad_transform(dinp + (size_t)(n0 + n) * in_sz, Z, vs, ld, (size_t)n * l.nt, C, s->H, s->W, s->P, l.th,
                            l.tw, t + l.pad, t + l.d, t + l.e);
    }
  }
  /* the groups in group order (the groups with images: N < CONV_GROUPS leaves some empty) */
  int qs[CONV_GROUPS], nq = 0;
  for (int q = 0; q < CONV_GROUPS; q++) {
    int lo, hi;
    group_range(q, N, &lo, &hi);
    if (lo == hi) continue;
    qs[nq++] = q;
    if (db)
      for (int k = 0; k < OC; k++) db[k] += ws[l.acc + l.per_group * (size_t)q + up16(nm) + k];
  }
  if (dw && nq) filter_output_transform(dw, ws + l.acc, l.per_group, qs, nq, OC, C);
}
