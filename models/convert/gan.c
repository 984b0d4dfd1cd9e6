/* Conversion of a GAN's generator (dense layers with LeakyReLU/ReLU, tanh output) into a spiking
 * network with signed spikes, and its comparison with the ANN generator on the same noise.
 * LeakyReLU(z) = z (z > 0), alpha z (z < 0) becomes a signed integrate-and-fire neuron: V >= 1 ->
 * +1 spike, V -= 1; V <= -1/alpha -> -1 spike, V += 1/alpha; so the positive rate is z/lambda and
 * the negative rate alpha |z| / lambda, and a -1 spike carries -lambda downstream. The output
 * layer integrates W' s + b; its pre-activation estimate after t steps is V/t, and the image is
 * tanh(V/t) mapped to [0, 1] as sb_gan_sample does. Deliberately simple: dense layers only,
 * time-stepped, one sample at a time per thread; not stored as an SNN file. */
#include "models/ann/ann.h"
#include "models/convert/internal.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_statistics_float.h>
#include <math.h>
#include <string.h>

void sb_convert_gan_result_free(sb_convert_gan_result *r) {
  if (!r) return;
  sb_free(r->snn);
  sb_free(r->ann);
  sb_free(r->mae_t);
  sb_free(r->spikes);
  memset(r, 0, sizeof *r);
}

static float out_act(int kind, float x) {
  if (kind == SB_LAYER_TANH) return 0.5f * (tanhf(x) + 1.0f);
  if (kind == SB_LAYER_SIGMOID) return 1.0f / (1.0f + expf(-x));
  return x;
}

int sb_convert_gan(const char *gan_path, const sb_convert_opts *o, int steps, size_t n, uint64_t seed,
                   sb_convert_gan_result *res) {
  memset(res, 0, sizeof *res);
  if (steps < 1 || n < 1) SB_ERROR(SB_EINVAL, "generator: steps and samples must be >= 1 (got %d, %zu)", steps, n);
  sb_model *g = NULL, *d = NULL;
  int rc = sb_gan_load(&g, &d, gan_path);
  if (rc) return rc;
  sb_model_free(d);
  /* layer plan: (dense act)* dense [tanh|sigmoid] */
  int nl = 0, lin[16], act[16], out_kind = -1;
  float alpha[16];
  for (int i = 0; i < g->n_layers && !rc; i++) {
    const sb_layer *L = &g->layers[i];
    if (L->kind == SB_LAYER_DENSE) {
      if (nl == 16) rc = SB_SET_ERROR(SB_EUNSUPPORTED, "%s: /generator: more than 16 dense layers", gan_path);
      else { lin[nl] = i; act[nl] = -1; alpha[nl] = 0; nl++; }
    } else if ((L->kind == SB_LAYER_LEAKY_RELU || L->kind == SB_LAYER_RELU) && nl && act[nl - 1] < 0 && i < g->n_layers - 1) {
      act[nl - 1] = i;
      alpha[nl - 1] = L->kind == SB_LAYER_LEAKY_RELU ? L->alpha : 0.0f;
    } else if ((L->kind == SB_LAYER_TANH || L->kind == SB_LAYER_SIGMOID) && i == g->n_layers - 1 && nl) {
      out_kind = (int)L->kind;
    } else {
      rc = SB_SET_ERROR(SB_EUNSUPPORTED, "%s: /generator: layer %d (%s): not convertible (expected dense layers "
                        "with relu/leaky_relu between them and tanh/sigmoid at the end)", gan_path, i,
                        sb_layer_kind_name(L->kind));
    }
  }
  if (!rc && (nl < 2 || act[nl - 1] >= 0 || g->input.rank != 1))
    rc = SB_SET_ERROR(SB_EUNSUPPORTED, "%s: /generator: expected noise -> (dense act)+ -> dense [tanh]", gan_path);
  if (rc) {
    sb_model_free(g);
    return rc;
  }
  int Z = g->input.c, OUT = g->layers[lin[nl - 1]].out.c;
  size_t ns = o->n_samples > 0 ? (size_t)o->n_samples : 1000, nz = ns > n ? ns : n;
  float *z = sb_malloc(nz * (size_t)Z * sizeof *z);
  double lam[16];
  float **W = sb_calloc((size_t)nl, sizeof *W), **B = sb_calloc((size_t)nl, sizeof *B);
  res->snn = sb_malloc(n * (size_t)OUT * sizeof(float));
  res->ann = sb_malloc(n * (size_t)OUT * sizeof(float));
  res->mae_t = sb_calloc((size_t)steps, sizeof(double));
  res->spikes = sb_calloc((size_t)nl, sizeof(double));
  res->n = n;
  res->steps = steps;
  res->n_layers = nl;
  res->out = OUT;
  gsl_rng *r = sb_rng_alloc(seed, SB_RNG_NOISE, 0);
  if (!z || !W || !B || !res->snn || !res->ann || !res->mae_t || !res->spikes || !r) { rc = SB_ENOMEM; goto done; }
  double t0 = sb_wall_time();
  /* noise: the first n vectors are evaluated, the (other) first ns normalise */
  for (size_t i = 0; i < nz * (size_t)Z; i++) z[i] = (float)gsl_ran_gaussian_ziggurat(r, 1.0);
  {
    const float *y = sb_model_forward(g, z, (int)ns, 0);
    if (!y) { rc = SB_ENOMEM; goto done; }
    for (int l = 0; l < nl - 1; l++) {   /* lambda_l: percentile of |activation| */
      size_t m = ns * sb_shape_size(g->layers[act[l]].out);
      float *a = sb_malloc(m * sizeof *a);
      if (!a) { rc = SB_ENOMEM; goto done; }
      const float *src = sb_model_layer_output(g, act[l]);
      for (size_t i = 0; i < m; i++) a[i] = fabsf(src[i]);
      double p = o->norm_max ? gsl_stats_float_max(a, 1, m) : o->percentile;
      if (!o->norm_max) {
        double pos = p / 100.0 * (double)(m - 1);
        size_t lo = (size_t)floor(pos);
        double fa = gsl_stats_float_select(a, 1, m, lo);
        double fb = lo + 1 < m ? gsl_stats_float_select(a, 1, m, lo + 1) : fa;
        p = fa + (pos - (double)lo) * (fb - fa);
      }
      lam[l] = p > 0 ? p : 1.0;
      sb_free(a);
    }
    lam[nl - 1] = 1.0;
    /* ANN images for the evaluated noise */
    y = sb_model_forward(g, z, (int)n, 0);
    if (!y) { rc = SB_ENOMEM; goto done; }
    for (size_t i = 0; i < n * (size_t)OUT; i++) res->ann[i] = out_act(SB_LAYER_NKINDS, y[i]);
    if (out_kind >= 0)   /* y is after the output activation; map tanh's [-1, 1] to [0, 1] */
      for (size_t i = 0; i < n * (size_t)OUT; i++) res->ann[i] = out_kind == SB_LAYER_TANH ? 0.5f * (y[i] + 1.0f) : y[i];
  }
  for (int l = 0; l < nl; l++) {   /* normalised weights, transposed (IN, OUT) for sparse rows */
    const sb_layer *L = &g->layers[lin[l]];
    int IN = L->in.c, O = L->out.c;
    double lp = l ? lam[l - 1] : 1.0;
    W[l] = sb_malloc((size_t)IN * (size_t)O * sizeof(float));
    B[l] = sb_malloc((size_t)O * sizeof(float));
    if (!W[l] || !B[l]) { rc = SB_ENOMEM; goto done; }
    for (int i = 0; i < IN; i++)
      for (int k = 0; k < O; k++) W[l][(size_t)i * O + k] = (float)(L->w[(size_t)k * IN + i] * lp / lam[l]);
    for (int k = 0; k < O; k++) B[l][k] = (float)(L->b[k] / lam[l]);
  }
  {
    size_t maxw = 0;
    for (int l = 0; l < nl; l++) maxw += (size_t)g->layers[lin[l]].out.c;
    int err = SB_OK;
    double *mae = res->mae_t, *spk = res->spikes;
#pragma omp parallel
    {
      float *v = sb_malloc(maxw * sizeof *v), *cur = sb_malloc(maxw * sizeof *cur);
      int *idx = sb_malloc(maxw * sizeof *idx), *sgn = sb_malloc(maxw * sizeof *sgn);
      double *lm = sb_calloc((size_t)steps, sizeof *lm), *ls = sb_calloc((size_t)nl, sizeof *ls);
      if (!v || !cur || !idx || !sgn || !lm || !ls) {
#pragma omp atomic write
        err = SB_ENOMEM;
      }
#pragma omp for schedule(dynamic, 4)
      for (size_t s = 0; s < n; s++) {
        if (!v || !cur || !idx || !sgn || !lm || !ls) continue;
        size_t off[17];
        off[0] = 0;
        for (int l = 0; l < nl; l++) off[l + 1] = off[l] + (size_t)g->layers[lin[l]].out.c;
        /* constant current of the first layer: W_1' z + b_1' */
        int IN0 = Z, O0 = g->layers[lin[0]].out.c;
        for (int k = 0; k < O0; k++) cur[k] = B[0][k];
        for (int i = 0; i < IN0; i++)
          for (int k = 0; k < O0; k++) cur[k] += W[0][(size_t)i * O0 + k] * z[s * (size_t)Z + (size_t)i];
        for (size_t i = 0; i < maxw; i++) v[i] = 0;
        for (int l = 0; l < nl - 1; l++)   /* V0 = theta / 2 */
          for (size_t i = off[l]; i < off[l + 1]; i++) v[i] = (float)(o->v_init >= 0 ? o->v_init : 0.5);
        for (int t = 0; t < steps; t++) {
          int m = 0;   /* spikes of the previous layer: idx, sgn */
          for (int l = 0; l < nl; l++) {
            int O = g->layers[lin[l]].out.c;
            float *vl = v + off[l];
            if (l == 0) {
              for (int k = 0; k < O; k++) vl[k] += cur[k];
            } else {
              for (int q = 0; q < m; q++) {
                const float *row = W[l] + (size_t)idx[q] * O;
                if (sgn[q] > 0)
                  for (int k = 0; k < O; k++) vl[k] += row[k];
                else
                  for (int k = 0; k < O; k++) vl[k] -= row[k];
              }
              for (int k = 0; k < O; k++) vl[k] += B[l][k];
            }
            if (l == nl - 1) break;
            float neg = alpha[l] > 0 ? -1.0f / alpha[l] : -INFINITY;
            m = 0;
            for (int k = 0; k < O; k++) {
              if (vl[k] >= 1.0f) { vl[k] -= 1.0f; idx[m] = k; sgn[m++] = 1; }
              else if (vl[k] <= neg) { vl[k] -= neg; idx[m] = k; sgn[m++] = -1; }
            }
            ls[l] += m;
          }
          /* image after t+1 steps and its distance to the ANN's */
          const float *vo = v + off[nl - 1];
          double e = 0;
          for (int k = 0; k < OUT; k++) {
            float px = out_act(out_kind >= 0 ? out_kind : SB_LAYER_NKINDS, vo[k] / (float)(t + 1));
            e += fabs((double)px - res->ann[s * (size_t)OUT + (size_t)k]);
            if (t == steps - 1) res->snn[s * (size_t)OUT + (size_t)k] = px;
          }
          lm[t] += e / OUT;
        }
      }
#pragma omp critical(sb_convert_gan)
      {
        if (lm)
          for (int t = 0; t < steps; t++) mae[t] += lm[t];
        if (ls)
          for (int l = 0; l < nl; l++) spk[l] += ls[l];
      }
      sb_free(v);
      sb_free(cur);
      sb_free(idx);
      sb_free(sgn);
      sb_free(lm);
      sb_free(ls);
    }
    rc = err;
    for (int t = 0; t < steps; t++) res->mae_t[t] /= (double)n;
    res->mae = res->mae_t[steps - 1];
    for (int l = 0; l < nl; l++) res->lambda[l] = lam[l];
    res->wall = sb_wall_time() - t0;
  }
done:
  if (W)
    for (int l = 0; l < nl; l++) sb_free(W[l]);
  if (B)
    for (int l = 0; l < nl; l++) sb_free(B[l]);
  sb_free(W);
  sb_free(B);
  sb_free(z);
  if (r) gsl_rng_free(r);
  sb_model_free(g);
  if (rc) sb_convert_gan_result_free(res);
  return rc;
}
