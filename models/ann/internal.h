/* Cross-file helpers of models/ann (never included outside the module). */
#ifndef SB_ANN_INTERNAL_H
#define SB_ANN_INTERNAL_H
#include "models/ann/ann.h"
#ifdef _OPENMP
#include <omp.h>
#endif

/* This thread's number in the enclosing OpenMP team (0 without OpenMP): the index of its
 * workspace slice in the conv kernels (layers.c, winograd.c). */
static inline int thread_id(void) {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

/* "(C, H, W)" or "(F)" into buf; returns snprintf's count. */
int shape_str_(char *buf, size_t cap, sb_shape s);

/* CPU seconds used by this process, all threads (CLOCK_PROCESS_CPUTIME_ID): the epoch lines
 * report it next to wall time, since on a shared machine wall time mostly measures the load. */
double cpu_time_(void);

/* Fused conv2d -> ReLU [-> avgpool] block (layers.c), what sb_model_forward/backward run for
 * those layer sequences: per image, while its output is in cache, the convolution, the ReLU and
 * the pooling, instead of one pass over the batch per layer. Bit-identical to the layer-by-layer
 * kernels (the same operations in the same order). conv_out, relu_out (N, OC, OH, OW) and
 * pool_out (N, OC, PH, PW) are all written (the model keeps every layer's output); pk = 0: no
 * pooling layer (pool_out unused), else avgpool kernel pk, stride ps. Backward: dout is the
 * gradient at the block's output (pool_out, or relu_out when pk = 0); conv_out is forward's;
 * dinp, dw, db as sb_conv2d_backward. ws: sb_conv2d_workspace(s, omp_get_max_threads()). */
void conv_block_forward_(float *conv_out, float *relu_out, float *pool_out, const float *inp, const float *w,
                         const float *b, const sb_conv_shape *s, int pk, int ps, int N, float *ws);
void conv_block_backward_(float *dinp, float *dw, float *db, const float *dout, const float *conv_out,
                          const float *inp, const float *w, const sb_conv_shape *s, int pk, int ps, int N, float *ws);

/* Fixed groups of consecutive images a convolution's batch is cut into (layers.c, winograd.c). */
#define CONV_GROUPS 8

/* layers.c: C planes (H, W) -> (OH, OW) average pooling (K, S), the layer's own arithmetic. */
void avgpool_planes_(float *out, const float *inp, int C, int H, int W, int K, int S);
/* layers.c: for one image, gc (OC, OH, OW) = the gradient at the convolution's output of a
 * conv -> ReLU [-> avgpool pk/ps] block, from the block's dout and the convolution's output co;
 * tdb (OC) += its per-channel sums. co == NULL: a plain convolution, dout is that gradient
 * already (gc unused, only tdb). */
void conv_out_grad_(float *gc, float *tdb, const float *dout, const float *co, const sb_conv_shape *s, int pk, int ps);

/* winograd.c: F(2x2, 5x5) convolution (sb_conv_algo). applies: K == 5, S == 1, P <= 4.
 * workspace: floats for `nthreads`. forward: conv_out = conv(inp) + b, and when relu_out is not
 * NULL relu_out = relu(conv_out) and (pk > 0) pool_out = avgpool(relu_out). backward: as
 * conv_block_backward_ when conv_out is not NULL, else as sb_conv2d_backward. */
int winograd_applies_(const sb_conv_shape *s);
size_t winograd_workspace_(const sb_conv_shape *s, int nthreads);
void winograd_forward_(float *conv_out, float *relu_out, float *pool_out, const float *inp, const float *w,
                       const float *b, const sb_conv_shape *s, int pk, int ps, int N, float *ws);
void winograd_backward_(float *dinp, float *dw, float *db, const float *dout, const float *conv_out,
                        const float *inp, const float *w, const sb_conv_shape *s, int pk, int ps, int N, float *ws);

#endif
