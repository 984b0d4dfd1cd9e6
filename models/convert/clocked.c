/* The clocked batch backend: a converted network run in time steps of 1 ms over a batch of images.
 * The first layer's constant input current is computed once per batch with BLAS (the ANN's own
 * dense/conv kernels); after that only spikes move: every spike adds one weight row (dense), one
 * kernel column per reached position (conv) or one fixed weight (avgpool) into the membranes of
 * its targets, so the cost follows the spike count, not the layer sizes. OpenMP over images.
 * Inside, rank-3 tensors are kept channels-last (H, W, C) so that a spike's targets in a conv layer
 * are contiguous runs of OC floats; ids leave the backend in the file's NCHW order.
 * Deliberately not here: exact spike times (event.c does that on the engine). */
#include "models/ann/ann.h"
#include "models/convert/internal.h"

#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- per-network runtime data ---- */

typedef struct {
  const sb_convert_layer *L;
  size_t nin, nout;
  float *wt;          /* dense: (IN, OUT), rows in the previous layer's internal (HWC) order;
                       * conv: (C, K, K, OC) */
  float *bias_full;   /* (nout) bias per neuron in internal order, or NULL */
  int hwc_in;         /* input is a rank-3 tensor kept HWC */
  int *pool_tgt;      /* avgpool with stride = kernel, no padding: target of each input, -1 none */
  int need_cnt;       /* spike counts per neuron are read (maxpool gate after it, spike readout) */
} rt_layer;

typedef struct {
  float **v;          /* (n_layers) membranes (nout), internal order */
  int **spk;          /* (n_layers + 1) spike lists this step; [0] is the input (Poisson) */
  int *nspk;          /* (n_layers + 1) */
  uint32_t **cnt;     /* (n_layers) spike counts per neuron */
  float *x;           /* (in) pixel intensities of the current image */
  double *synops;     /* (steps) thread-local sums */
  uint64_t *correct;  /* (steps) */
  double *spikes, *lsyn;   /* (n_layers) */
  double cmp;
  gsl_rng *r;
} work;

/* internal (HWC) flat index -> NCHW flat index */
static inline uint64_t to_nchw(const sb_convert_layer *L, size_t i) {
  if (L->out_rank != 3) return i;
  size_t c = i % (size_t)L->out_c, hw = i / (size_t)L->out_c;
  return (uint64_t)c * (uint64_t)L->out_h * (uint64_t)L->out_w + hw;
}

static int rt_build(const sb_convert_net *net, rt_layer *rt) {
  for (int l = 0; l < net->n_layers; l++) {
    const sb_convert_layer *L = &net->layers[l];
    rt_layer *R = &rt[l];
    memset(R, 0, sizeof *R);
    R->L = L;
    R->nin = sb_cl_in_size_(L);
    R->nout = sb_cl_out_size_(L);
    /* the previous layer's (or the image's) shape decides the input order */
    int prev_rank3 = l == 0 ? 1 : net->layers[l - 1].out_rank == 3;
    int pc = l == 0 ? net->in_c : net->layers[l - 1].out_c;
    int ph = l == 0 ? net->in_h : net->layers[l - 1].out_h, pw = l == 0 ? net->in_w : net->layers[l - 1].out_w;
    R->hwc_in = prev_rank3;
    if (L->kind == SB_CONVERT_DENSE) {
      size_t IN = R->nin, OUT = R->nout;
      R->wt = sb_malloc(IN * OUT * sizeof *R->wt);
      if (!R->wt) return SB_ENOMEM;
      for (size_t j = 0; j < IN; j++) {
        size_t src = j;   /* column of W (NCHW flat) for internal row j */
        if (prev_rank3) {
          size_t c = j % (size_t)pc, hw = j / (size_t)pc;
          src = c * (size_t)ph * (size_t)pw + hw;
        }
        for (size_t o = 0; o < OUT; o++) R->wt[j * OUT + o] = L->w[o * IN + src];
      }
    } else if (L->kind == SB_CONVERT_CONV) {
      int C = L->in_c, K = L->k, OC = L->out_c;
      R->wt = sb_malloc((size_t)C * K * K * OC * sizeof *R->wt);
      if (!R->wt) return SB_ENOMEM;
      for (int oc = 0; oc < OC; oc++)
        for (int c = 0; c < C; c++)
          for (int kk = 0; kk < K * K; kk++)
            R->wt[((size_t)c * K * K + (size_t)kk) * (size_t)OC + (size_t)oc] = L->w[(((size_t)oc * C + (size_t)c) * K * K) + (size_t)kk];
    }
    if (L->kind == SB_CONVERT_AVGPOOL && L->k == L->stride && L->pad == 0) {
      int C = L->in_c, W = L->in_w, S = L->stride, OH = L->out_h, OW = L->out_w;
      R->pool_tgt = sb_malloc(R->nin * sizeof *R->pool_tgt);
      if (!R->pool_tgt) return SB_ENOMEM;
      for (size_t i = 0; i < R->nin; i++) {
        int c = (int)(i % (size_t)C), hw = (int)(i / (size_t)C), oh = hw / W / S, ow = hw % W / S;
        R->pool_tgt[i] = oh < OH && ow < OW ? (oh * OW + ow) * C + c : -1;
      }
    }
    R->need_cnt = l == net->n_layers - 1 ? net->readout_spikes
                                         : net->layers[l + 1].kind == SB_CONVERT_MAXPOOL;
    if (L->b) {
      R->bias_full = sb_malloc(R->nout * sizeof *R->bias_full);
      if (!R->bias_full) return SB_ENOMEM;
      for (size_t i = 0; i < R->nout; i++)
        R->bias_full[i] = L->out_rank == 3 ? L->b[i % (size_t)L->out_c] : L->b[i];
    }
  }
  return SB_OK;
}

static void rt_free(rt_layer *rt, int n) {
  if (!rt) return;
  for (int l = 0; l < n; l++) {
    sb_free(rt[l].wt);
    sb_free(rt[l].bias_full);
    sb_free(rt[l].pool_tgt);
  }
  sb_free(rt);
}

static void work_free(work *w, int nl) {
  if (!w) return;
  for (int l = 0; l < nl; l++) {
    if (w->v) sb_free(w->v[l]);
    if (w->cnt) sb_free(w->cnt[l]);
  }
  for (int l = 0; l <= nl; l++)
    if (w->spk) sb_free(w->spk[l]);
  sb_free(w->v);
  sb_free(w->cnt);
  sb_free(w->spk);
  sb_free(w->nspk);
  sb_free(w->x);
  sb_free(w->synops);
  sb_free(w->correct);
  sb_free(w->spikes);
  sb_free(w->lsyn);
  if (w->r) gsl_rng_free(w->r);
}

static int work_init(work *w, const sb_convert_net *net, const rt_layer *rt, int steps, uint64_t seed) {
  int nl = net->n_layers;
  memset(w, 0, sizeof *w);
  size_t nin = (size_t)net->in_c * (size_t)net->in_h * (size_t)net->in_w;
  w->v = sb_calloc((size_t)nl, sizeof *w->v);
  w->cnt = sb_calloc((size_t)nl, sizeof *w->cnt);
  w->spk = sb_calloc((size_t)nl + 1, sizeof *w->spk);
  w->nspk = sb_calloc((size_t)nl + 1, sizeof *w->nspk);
  w->x = sb_malloc(nin * sizeof *w->x);
  w->synops = sb_calloc((size_t)steps, sizeof *w->synops);
  w->correct = sb_calloc((size_t)steps, sizeof *w->correct);
  w->spikes = sb_calloc((size_t)nl, sizeof *w->spikes);
  w->lsyn = sb_calloc((size_t)nl, sizeof *w->lsyn);
  w->r = sb_rng_alloc(seed, SB_RNG_POISSON, 0);
  if (!w->v || !w->cnt || !w->spk || !w->nspk || !w->x || !w->synops || !w->correct || !w->spikes || !w->lsyn || !w->r)
    return SB_ENOMEM;
  if (!(w->spk[0] = sb_malloc(nin * sizeof(int)))) return SB_ENOMEM;
  for (int l = 0; l < nl; l++) {
    w->v[l] = sb_malloc(rt[l].nout * sizeof(float));
    w->cnt[l] = sb_malloc(rt[l].nout * sizeof(uint32_t));
    w->spk[l + 1] = sb_malloc(rt[l].nout * sizeof(int));
    if (!w->v[l] || !w->cnt[l] || !w->spk[l + 1]) return SB_ENOMEM;
  }
  return SB_OK;
}

/* ---- one step of one layer ---- */

/* Hot kernels are compiled for AVX-512, AVX2 and the baseline ISA; the loader picks one
 * (GCC function multiversioning). The arithmetic is the same in every version (adds in the same
 * order, no FMA contraction of separate adds), so results do not depend on the machine. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SB_HAVE_AVX512_FIRE 1
#include <immintrin.h>
#else
#define SB_HAVE_AVX512_FIRE 0
#endif
#if SB_HAVE_AVX512_FIRE && !defined(__SANITIZE_ADDRESS__)   /* no ifunc resolvers under ASan */
#define SB_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define SB_CLONES
#endif

/* Dense: every input spike adds its weight row (OUT contiguous floats). */
SB_CLONES static double scatter_dense(const rt_layer *R, float *restrict v, const int *idx, int n) {
  size_t OUT = R->nout;
  for (int s = 0; s < n; s++) {
    const float *restrict row = R->wt + (size_t)idx[s] * OUT;
#pragma omp simd
    for (size_t o = 0; o < OUT; o++) v[o] += row[o];
  }
  return (double)n * (double)OUT;
}

/* vo[0..B) += sum over the group's spikes j of kr_j[0..B), kr_j = tap + (idx[j] - base) * cstride,
 * in a register block of B = 16 floats (a constant after inlining; 64 measured slower). */
static inline __attribute__((always_inline)) void acc_block(float *restrict vo, const float *restrict tap,
                                                            const int *restrict idx, int m, int base, size_t cstride,
                                                            const int B) {
  float acc[16];
#pragma omp simd
  for (int q = 0; q < B; q++) acc[q] = vo[q];
  for (int j = 0; j < m; j++) {
    const float *restrict kr = tap + (size_t)(idx[j] - base) * cstride;
#pragma omp simd
    for (int q = 0; q < B; q++) acc[q] += kr[q];
  }
#pragma omp simd
  for (int q = 0; q < B; q++) vo[q] = acc[q];
}

/* Convolution: the spikes of one step arrive sorted by internal (HWC) index, so spikes of the same
 * input position are consecutive. For each such group and each output position it reaches, the
 * group's kernel columns (one per spiking channel, OC floats each) are summed into a register block
 * of 16 outputs before the membrane is touched: one load/store of the membranes per (position,
 * target) instead of per (spike, target). The order of the adds per membrane is the spike order, as
 * one spike at a time would give. Returns the synaptic operations (OC per spike and reached target). */
SB_CLONES static double scatter_conv(const rt_layer *R, float *restrict v, const int *idx, int n) {
  const sb_convert_layer *L = R->L;
  int C = L->in_c, W = L->in_w, K = L->k, S = L->stride, P = L->pad, OH = L->out_h, OW = L->out_w, OC = L->out_c;
  size_t cstride = (size_t)K * (size_t)K * (size_t)OC;   /* wt (C, K, K, OC): next channel, same tap */
  double ops = 0;
  int OC16 = OC - OC % 16;
  for (int s = 0; s < n;) {
    int hw = idx[s] / C, e = s + 1, lim = (hw + 1) * C;
    while (e < n && idx[e] < lim) e++;
    int h = hw / W, x = hw % W, base = hw * C;
    int oh0 = h + P - K + 1 > 0 ? (h + P - K + 1 + S - 1) / S : 0, oh1 = (h + P) / S;
    int ow0 = x + P - K + 1 > 0 ? (x + P - K + 1 + S - 1) / S : 0, ow1 = (x + P) / S;
    if (oh1 >= OH) oh1 = OH - 1;
    if (ow1 >= OW) ow1 = OW - 1;
    for (int oh = oh0; oh <= oh1; oh++) {
      int kh = h + P - oh * S;
      for (int ow = ow0; ow <= ow1; ow++) {
        int kw = x + P - ow * S;
        const float *tap = R->wt + ((size_t)kh * K + (size_t)kw) * (size_t)OC;
        float *restrict vo = v + ((size_t)oh * OW + (size_t)ow) * (size_t)OC;
        int o0 = 0;
        for (; o0 < OC16; o0 += 16) acc_block(vo + o0, tap + o0, idx + s, e - s, base, cstride, 16);
        for (int j = s; j < e; j++) {
          const float *restrict kr = tap + (size_t)(idx[j] - base) * cstride;
          for (int o = OC16; o < OC; o++) vo[o] += kr[o];
        }
      }
    }
    ops += (double)(e - s) * (double)(oh1 - oh0 + 1) * (double)(ow1 - ow0 + 1) * (double)OC;
    s = e;
  }
  return ops;
}

/* Average pooling: one fixed weight into each window the input belongs to. Non-overlapping
 * windows without padding (the usual K = stride) use the precomputed target of each input. */
static double scatter_pool(const rt_layer *R, float *restrict v, const int *idx, int n) {
  const sb_convert_layer *L = R->L;
  float pw = L->pool_w;
  if (R->pool_tgt) {
    const int *restrict tg = R->pool_tgt;
    double ops = 0;
    for (int s = 0; s < n; s++) {
      int t = tg[idx[s]];
      if (t >= 0) {
        v[t] += pw;
        ops += 1;
      }
    }
    return ops;
  }
  int C = L->in_c, W = L->in_w, K = L->k, S = L->stride, P = L->pad, OH = L->out_h, OW = L->out_w, OC = L->out_c;
  double ops = 0;
  for (int s = 0; s < n; s++) {
    int c = idx[s] % C, hw = idx[s] / C, h = hw / W, x = hw % W;
    int oh0 = h + P - K + 1 > 0 ? (h + P - K + 1 + S - 1) / S : 0, oh1 = (h + P) / S;
    int ow0 = x + P - K + 1 > 0 ? (x + P - K + 1 + S - 1) / S : 0, ow1 = (x + P) / S;
    if (oh1 >= OH) oh1 = OH - 1;
    if (ow1 >= OW) ow1 = OW - 1;
    for (int oh = oh0; oh <= oh1; oh++)
      for (int ow = ow0; ow <= ow1; ow++) {
        v[((size_t)oh * OW + (size_t)ow) * (size_t)OC + (size_t)c] += pw;
        ops += 1;
      }
  }
  return ops;
}

/* Add the contributions of `n` input spikes `idx` (internal order, ascending) to the membranes v;
 * returns the synaptic operations done. */
static double scatter(const rt_layer *R, float *restrict v, const int *idx, int n) {
  switch (R->L->kind) {
    case SB_CONVERT_DENSE: return scatter_dense(R, v, idx, n);
    case SB_CONVERT_CONV: return scatter_conv(R, v, idx, n);
    default: return scatter_pool(R, v, idx, n);
  }
}

static int cmp_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

/* Max-pool gate (Rueckauer et al. 2017, sec. 2.4): an output passes the spikes of the input of its
 * window with the highest spike count so far (counts include this step; ties: first in the window).
 * Evaluated only for windows that received a spike this step: K*K count comparisons per
 * (spike, window). Returns the comparisons made. */
static double maxpool_gate(const sb_convert_layer *L, const uint32_t *cnt_in, const int *idx, int n, int *out,
                           int *nout, uint32_t *cnt_out) {
  int C = L->in_c, W = L->in_w, K = L->k, S = L->stride, OH = L->out_h, OW = L->out_w;
  double cmp = 0;
  int m = 0;
  for (int s = 0; s < n; s++) {
    int c = idx[s] % C, hw = idx[s] / C, h = hw / W, x = hw % W;
    int oh0 = h - K + 1 > 0 ? (h - K + 1 + S - 1) / S : 0, oh1 = h / S;
    int ow0 = x - K + 1 > 0 ? (x - K + 1 + S - 1) / S : 0, ow1 = x / S;
    if (oh1 >= OH) oh1 = OH - 1;
    if (ow1 >= OW) ow1 = OW - 1;
    for (int oh = oh0; oh <= oh1; oh++)
      for (int ow = ow0; ow <= ow1; ow++) {
        int best = -1;
        uint32_t bc = 0;
        for (int a = 0; a < K; a++)
          for (int b = 0; b < K; b++) {
            int j = ((oh * S + a) * W + (ow * S + b)) * C + c;
            if (best < 0 || cnt_in[j] > bc) { best = j; bc = cnt_in[j]; }
          }
        cmp += K * K;
        if (best == idx[s]) {
          int o = (oh * OW + ow) * C + c;
          out[m++] = o;
          cnt_out[o]++;
        }
      }
  }
  /* the next layer's scatter (scatter_conv groups spikes by input position) needs ascending ids;
   * gating follows the input order (h, w, c), which puts (0, 1, c=0) before (0, 0, c=5) of the
   * same window, so sort (each output passes at most one spike per step: no duplicates) */
  qsort(out, (size_t)m, sizeof *out, cmp_int);
  *nout = m;
  return cmp;
}

/* Threshold pass of a spiking layer, fused with the constant current of the step (`add`: the
 * first layer's input current or the layer's bias, or NULL): v += add; v >= th -> spike (index
 * into spk, ascending), v -= th or v = 0; cnt (or NULL) counts spikes per neuron. Portable
 * branch-free version. */
static int fire_scalar(float *restrict v, const float *restrict add, size_t n, float th, int reset_zero, int *restrict spk,
                       uint32_t *restrict cnt) {
  int m = 0;
  for (size_t i = 0; i < n; i++) {
    float x = add ? v[i] + add[i] : v[i];
    int f = x >= th;
    spk[m] = (int)i;
    m += f;
    v[i] = f ? (reset_zero ? 0.0f : x - th) : x;
  }
  if (cnt)
    for (int s = 0; s < m; s++) cnt[spk[s]]++;
  return m;
}

#if SB_HAVE_AVX512_FIRE
/* The same with AVX-512: 16 neurons per compare, spike indices compressed into the list. spk
 * needs room for n entries (a full 16-lane store at m <= i never passes index i + 15 < n). */
__attribute__((target("avx512f"))) static int fire_avx512(float *restrict v, const float *restrict add, size_t n, float th,
                                                          int reset_zero, int *restrict spk, uint32_t *restrict cnt) {
  const __m512 vth = _mm512_set1_ps(th), zero = _mm512_setzero_ps();
  const __m512i step = _mm512_set1_epi32(16);
  __m512i iv = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  size_t i = 0;
  int m = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 x = _mm512_loadu_ps(v + i);
    if (add) x = _mm512_add_ps(x, _mm512_loadu_ps(add + i));
    __mmask16 k = _mm512_cmp_ps_mask(x, vth, _CMP_GE_OQ);
    if (k) {
      x = reset_zero ? _mm512_mask_mov_ps(x, k, zero) : _mm512_mask_sub_ps(x, k, x, vth);
      _mm512_storeu_si512((void *)(spk + m), _mm512_maskz_compress_epi32(k, iv));
      m += __builtin_popcount((unsigned)k);
    }
    _mm512_storeu_ps(v + i, x);
    iv = _mm512_add_epi32(iv, step);
  }
  int m0 = m;
  m += fire_scalar(v + i, add ? add + i : NULL, n - i, th, reset_zero, spk + m, NULL);
  for (int s = m0; s < m; s++) spk[s] += (int)i;
  if (cnt)
    for (int s = 0; s < m; s++) cnt[spk[s]]++;
  return m;
}
#endif

/* 1: use the portable kernels only (set by opts->generic; tests compare both) */
static int fire(float *restrict v, const float *restrict add, size_t n, float th, int reset_zero, int *restrict spk,
                uint32_t *restrict cnt, int generic) {
#if SB_HAVE_AVX512_FIRE
  if (!generic && __builtin_cpu_supports("avx512f")) return fire_avx512(v, add, n, th, reset_zero, spk, cnt);
#endif
  (void)generic;
  return fire_scalar(v, add, n, th, reset_zero, spk, cnt);
}

/* Run one image for `steps` steps. z1: its first-layer input current (internal order) for
 * constant-current coding, or NULL for Poisson coding (w->x holds the intensities). */
static int run_image(const sb_convert_net *net, const rt_layer *rt, work *w, const float *z1, int label, int steps,
                     double v_init, uint8_t *pred, sb_convert_spikes *rec, double t_off, int generic, int stat_layer,
                     double *stat) {
  int nl = net->n_layers;
  for (int l = 0; l < nl; l++) {
    const sb_convert_layer *L = &net->layers[l];
    if (L->v_shift) {
      for (size_t i = 0; i < rt[l].nout; i++) w->v[l][i] = (float)sb_cl_v0_(L, v_init, i, 1);
    } else {
      float v0 = (float)sb_cl_v0_(L, v_init, 0, 1);
      for (size_t i = 0; i < rt[l].nout; i++) w->v[l][i] = v0;
    }
    memset(w->cnt[l], 0, rt[l].nout * sizeof(uint32_t));
  }
  size_t nin = (size_t)net->in_c * (size_t)net->in_h * (size_t)net->in_w;
  const sb_convert_layer *O = &net->layers[nl - 1];
  int nout = (int)rt[nl - 1].nout;
  int p = 0;
  for (int t = 0; t < steps; t++) {
    double ops = 0;
    for (int l = 0; l < nl; l++) {
      const sb_convert_layer *L = &net->layers[l];
      const rt_layer *R = &rt[l];
      float *v = w->v[l];
      if (L->kind == SB_CONVERT_MAXPOOL) {
        w->cmp += maxpool_gate(L, w->cnt[l - 1], w->spk[l], w->nspk[l], w->spk[l + 1], &w->nspk[l + 1], w->cnt[l]);
      } else {
        const float *add = R->bias_full;
        if (l == 0 && z1) {
          add = z1;   /* constant input current: fused into the threshold pass */
        } else {
          if (l == 0) {   /* Poisson input: pixel i spikes with probability x_i this step */
            int m = 0;
            for (size_t i = 0; i < nin; i++)
              if (w->x[i] > 0 && gsl_rng_uniform(w->r) < w->x[i]) w->spk[0][m++] = (int)i;
            w->nspk[0] = m;
          }
          double o = scatter(R, v, w->spk[l], w->nspk[l]);
          ops += o;
          w->lsyn[l] += o;
        }
        if (L->spiking) {
          w->nspk[l + 1] = fire(v, add, R->nout, (float)L->threshold, net->reset_zero, w->spk[l + 1],
                                R->need_cnt ? w->cnt[l] : NULL, generic);
        } else {
          w->nspk[l + 1] = 0;
          if (add) {
#pragma omp simd
            for (size_t i = 0; i < R->nout; i++) v[i] += add[i];
          }
        }
      }
      w->spikes[l] += w->nspk[l + 1];
      if (rec)
        for (int s = 0; s < w->nspk[l + 1]; s++)
          if (sb_convert_spikes_push_(&rec[l], t_off + t + 1, to_nchw(L, (size_t)w->spk[l + 1][s]))) return SB_ENOMEM;
    }
    w->synops[t] += ops;
    if (net->readout_spikes) {   /* spike count; ties broken by the membrane */
      p = 0;
      for (int i = 1; i < nout; i++) {
        uint32_t a = w->cnt[nl - 1][i], b = w->cnt[nl - 1][p];
        if (a > b || (a == b && w->v[nl - 1][i] > w->v[nl - 1][p])) p = i;
      }
    } else {
      p = sb_convert_argmax_(w->v[nl - 1], nout);
    }
    w->correct[t] += p == label;
  }
  (void)O;
  if (stat_layer >= 0) {   /* this image's per-channel totals for calibration, in a fixed order */
    const sb_convert_layer *S = &net->layers[stat_layer];
    for (size_t i = 0; i < rt[stat_layer].nout; i++)
      stat[sb_cl_channel_(S, i, 1)] += S->spiking ? (double)w->cnt[stat_layer][i] : (double)w->v[stat_layer][i];
  }
  *pred = (uint8_t)p;
  return SB_OK;
}

/* ---- the batch loop ---- */

static size_t stat_channels(const sb_convert_layer *L) {
  return L->out_rank == 3 ? (size_t)L->out_c : sb_cl_out_size_(L);
}

int sb_convert_eval_clocked(const sb_convert_net *net, const uint8_t *images, const uint8_t *labels, size_t n,
                            const sb_convert_eval_opts *o, sb_convert_result *res) {
  int steps = o->steps, nl = net->n_layers;
  if (steps < 1) SB_ERROR(SB_EINVAL, "steps: must be >= 1 (got %d)", steps);
  if (net->in_c != 1) SB_ERROR(SB_EINVAL, "input: expected 1 channel (got %d)", net->in_c);
  int rc = sb_convert_result_init_(res, steps, nl, n, o->n_record);
  if (rc) return rc;
  double t0 = sb_wall_time();
  double v_init = o->v_init >= 0 ? o->v_init : net->v_init;
  size_t nin = (size_t)net->in_h * (size_t)net->in_w;
  const sb_convert_layer *L0 = &net->layers[0];
  int B = o->batch > 0 ? o->batch : 256;
  if ((size_t)B > n) B = (int)(n ? n : 1);
  int nt = 1;
#ifdef _OPENMP
  nt = omp_get_max_threads();
#endif
  rt_layer *rt = sb_calloc((size_t)nl, sizeof *rt);
  work *ws = sb_calloc((size_t)nt, sizeof *ws);
  float *xb = sb_malloc((size_t)B * nin * sizeof *xb);
  size_t n1 = sb_cl_out_size_(L0);
  float *z = sb_malloc((size_t)B * n1 * sizeof *z), *zt = sb_malloc((size_t)B * n1 * sizeof *zt);
  float *cws = NULL;
  double *stat_img = NULL;
  sb_conv_shape cs;
  if (!rt || !ws || !xb || !z || !zt) { rc = SB_ENOMEM; goto done; }
  if ((rc = rt_build(net, rt))) goto done;
  if (o->stat && (o->stat_layer < 0 || o->stat_layer >= nl)) {
    rc = SB_SET_ERROR(SB_EINVAL, "stat_layer: expected 0..%d (got %d)", nl - 1, o->stat_layer);
    goto done;
  }
  size_t nstat = o->stat ? stat_channels(&net->layers[o->stat_layer]) : 0;
  if (o->stat) rt[o->stat_layer].need_cnt = 1;
  /* per image, summed in image order at the end: the same totals for any thread count */
  if (nstat && !(stat_img = sb_calloc(n * nstat, sizeof *stat_img))) { rc = SB_ENOMEM; goto done; }
  for (int i = 0; i < nt; i++)
    if ((rc = work_init(&ws[i], net, rt, steps, o->seed))) goto done;
  if (L0->kind == SB_CONVERT_CONV) {
    if ((rc = sb_conv_shape_init(&cs, L0->in_c, L0->in_h, L0->in_w, L0->out_c, L0->k, L0->stride, L0->pad))) goto done;
    if (!(cws = sb_malloc(sb_conv2d_workspace(&cs, nt) * sizeof *cws))) { rc = SB_ENOMEM; goto done; }
    res->input_macs = (double)n1 * L0->in_c * L0->k * L0->k;
  } else {
    res->input_macs = (double)n1 * (double)nin;
  }
  if (o->coding == SB_CODING_POISSON) res->input_macs = 0;
  sb_progress prog;
  sb_progress_init(&prog, stderr, sb_quiet);
  for (size_t b0 = 0; b0 < n && !rc; b0 += (size_t)B) {
    int nb = (int)(n - b0 < (size_t)B ? n - b0 : (size_t)B);
    for (size_t i = 0; i < (size_t)nb * nin; i++) xb[i] = (float)images[b0 * nin + i] / 255.0f;
    if (o->coding == SB_CODING_CURRENT) {   /* first layer's constant current, once per image (BLAS) */
      if (L0->kind == SB_CONVERT_DENSE) {
        sb_dense_forward(z, xb, L0->w, L0->b, nb, (int)nin, (int)n1);
        memcpy(zt, z, (size_t)nb * n1 * sizeof *z);
      } else {
        sb_conv2d_forward(z, xb, L0->w, L0->b, &cs, nb, cws);
        size_t HW = (size_t)L0->out_h * (size_t)L0->out_w, OC = (size_t)L0->out_c;
        for (int k = 0; k < nb; k++)   /* NCHW -> HWC */
          for (size_t c = 0; c < OC; c++)
            for (size_t q = 0; q < HW; q++) zt[(size_t)k * n1 + q * OC + c] = z[(size_t)k * n1 + c * HW + q];
      }
    }
    int err = SB_OK;
#pragma omp parallel for schedule(dynamic, 1)
    for (int k = 0; k < nb; k++) {
      int tid = 0;
#ifdef _OPENMP
      tid = omp_get_thread_num();
#endif
      work *w = &ws[tid];
      size_t img = b0 + (size_t)k;
      sb_convert_spikes *rec = NULL;
      double t_off = 0;
      for (size_t r = 0; r < o->n_record; r++)
        if (o->record[r] == img) {
          rec = &res->rec[r * (size_t)nl];
          t_off = (double)r * steps;
        }
      const float *z1 = NULL;
      if (o->coding == SB_CODING_CURRENT) z1 = zt + (size_t)k * n1;
      else {
        memcpy(w->x, xb + (size_t)k * nin, nin * sizeof *w->x);
        sb_rng_reseed(w->r, o->seed, SB_RNG_POISSON, img);
      }
      int e = run_image(net, rt, w, z1, labels[img], steps, v_init, &res->pred[img], rec, t_off, o->generic,
                        nstat ? o->stat_layer : -1, nstat ? stat_img + img * nstat : NULL);
      if (e) {
#pragma omp atomic write
        err = e;
      }
    }
    rc = err;
    sb_progress_update(&prog, "eval: %zu/%zu images", b0 + (size_t)nb, n);
  }
  sb_progress_done(&prog);
  for (int i = 0; i < nt; i++) {
    for (int t = 0; t < steps; t++) {
      res->correct[t] += ws[i].correct[t];
      res->synops[t] += ws[i].synops[t];
    }
    for (int l = 0; l < nl; l++) {
      res->spikes[l] += ws[i].spikes[l];
      res->layer_synops[l] += ws[i].lsyn[l];
    }
    res->maxpool_cmp += ws[i].cmp;
  }
  for (int t = 1; t < steps; t++) res->synops[t] += res->synops[t - 1];
  for (size_t k = 0; k < n * nstat; k++) o->stat[k % nstat] += stat_img[k];
  if (n) memcpy(res->labels, labels, n);
  res->wall = sb_wall_time() - t0;
done:
  if (ws)
    for (int i = 0; i < nt; i++) work_free(&ws[i], nl);
  sb_free(ws);
  rt_free(rt, nl);
  sb_free(xb);
  sb_free(z);
  sb_free(zt);
  sb_free(cws);
  sb_free(stat_img);
  if (rc) sb_convert_result_free(res);
  return rc;
}
