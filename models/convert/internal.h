/* Helpers shared by the files of models/convert (never included outside it). */
#ifndef SB_CONVERT_INTERNAL_H
#define SB_CONVERT_INTERNAL_H
#include "models/convert/convert.h"

static inline size_t sb_cl_in_size_(const sb_convert_layer *L) {
  return (size_t)L->in_c * (size_t)L->in_h * (size_t)L->in_w;
}
static inline size_t sb_cl_out_size_(const sb_convert_layer *L) {
  return (size_t)L->out_c * (size_t)L->out_h * (size_t)L->out_w;
}

/* Channel of flat index i: NCHW (files, engine) or HWC (clocked backend's internal order). */
static inline size_t sb_cl_channel_(const sb_convert_layer *L, size_t i, int hwc) {
  if (L->out_rank != 3) return i;
  return hwc ? i % (size_t)L->out_c : i / ((size_t)L->out_h * (size_t)L->out_w);
}
/* Initial membrane of neuron i (see sb_convert_layer.v_shift): v_init * threshold + v_shift[c] for
 * spiking layers, v_shift[c] for the membrane readout. */
static inline double sb_cl_v0_(const sb_convert_layer *L, double v_init, size_t i, int hwc) {
  double v0 = L->spiking ? v_init * L->threshold : 0;
  return L->v_shift ? v0 + L->v_shift[sb_cl_channel_(L, i, hwc)] : v0;
}

/* Allocate the result arrays for `steps`, `n_layers`, `n` images and `n_record` recordings. */
int sb_convert_result_init_(sb_convert_result *r, int steps, int n_layers, size_t n, size_t n_record);
/* Append one spike to a recording. */
int sb_convert_spikes_push_(sb_convert_spikes *s, double t, uint64_t id);
/* Index of the largest value (first on ties). */
int sb_convert_argmax_(const float *v, int n);
int sb_convert_argmax_d_(const double *v, int n);

#endif
