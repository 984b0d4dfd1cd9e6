/* Training and evaluation of classifiers on an sb_dataset: seeded shuffling, mini-batches,
 * loss + backward + optimizer step, per-epoch test evaluation, progress line.
 * The GAN's adversarial loop is in gan.c. */
#include "learning/learning.h"
#include "models/ann/internal.h"
#include "sim/core.h"

#include <gsl/gsl_randist.h>
#include <string.h>
#include <time.h>

double cpu_time_(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void sb_dataset_batch(const sb_dataset *d, const size_t *idx, int N, float *x, int *labels) {
  const size_t sz = (size_t)d->h * (size_t)d->w;
  const float inv = 1.0f / 255.0f;
  for (int n = 0; n < N; n++) {
    size_t i = idx ? idx[n] : (size_t)n;
    const uint8_t *p = d->images + i * sz;
    float *o = x + (size_t)n * sz;
    for (size_t j = 0; j < sz; j++) o[j] = (float)p[j] * inv;
    if (labels) labels[n] = d->labels[i];
  }
}

void sb_dataset_batch_augment(const sb_dataset *d, const size_t *idx, int N, float *x, int *labels, int flip,
                              int pad, gsl_rng *r) {
  const int H = d->h, W = d->w;
  const size_t sz = (size_t)H * (size_t)W;
  const float inv = 1.0f / 255.0f;
  for (int n = 0; n < N; n++) {
    size_t i = idx ? idx[n] : (size_t)n;
    const uint8_t *p = d->images + i * sz;
    float *o = x + (size_t)n * sz;
    int mirror = flip ? (int)gsl_rng_uniform_int(r, 2) : 0;
    int dy = pad > 0 ? (int)gsl_rng_uniform_int(r, 2 * (unsigned long)pad + 1) - pad : 0;
    int dx = pad > 0 ? (int)gsl_rng_uniform_int(r, 2 * (unsigned long)pad + 1) - pad : 0;
    /* out[y][j] = shifted[y][mirror ? W-1-j : j], shifted[y][j] = in[y+dy][j+dx] (0 outside) */
    for (int y = 0; y < H; y++) {
      float *orow = o + (size_t)y * W;
      int sy = y + dy;
      if (sy < 0 || sy >= H) {
        memset(orow, 0, (size_t)W * sizeof(float));
        continue;
      }
      const uint8_t *prow = p + (size_t)sy * W;
      for (int j = 0; j < W; j++) {
        int sx = (mirror ? W - 1 - j : j) + dx;
        orow[j] = (sx >= 0 && sx < W) ? (float)prow[sx] * inv : 0.0f;
      }
    }
    if (labels) labels[n] = d->labels[i];
  }
}

int sb_model_check_data(const sb_model *m, const sb_dataset *d, int classify) {
  char sh[64];
  shape_str_(sh, sizeof sh, m->input);
  size_t sz = (size_t)d->h * (size_t)d->w;
  if (sb_shape_size(m->input) != sz || (m->input.rank == 3 && (m->input.c != 1 || m->input.h != d->h)))
    SB_ERROR(SB_EINVAL, "data: images are %dx%d but model '%s' expects input %s", d->h, d->w, m->name, sh);
  if (classify) {
    size_t out = sb_shape_size(sb_model_output_shape(m));
    if (out != (size_t)d->n_classes)
      SB_ERROR(SB_EINVAL, "model '%s': output has %zu values but the data set has %d classes", m->name, out,
               d->n_classes);
  }
  if (d->n == 0) SB_ERROR(SB_EINVAL, "data: no images");
  return SB_OK;
}

int sb_ann_evaluate(sb_model *m, const sb_dataset *d, size_t limit, int batch, double *acc, double *loss) {
  int st = sb_model_check_data(m, d, 1);
  if (st) return st;
  size_t n = limit && limit < d->n ? limit : d->n;
  if (batch < 1) batch = 500;
  const int C = d->n_classes;
  const size_t sz = (size_t)d->h * (size_t)d->w;
  float *x = sb_malloc((size_t)batch * sz * sizeof(float));
  int *lab = sb_malloc((size_t)batch * sizeof(int));
  if (!x || !lab) { sb_free(x); sb_free(lab); return SB_ENOMEM; }
  size_t ok = 0;
  double tot = 0;
  for (size_t i = 0; i < n; i += (size_t)batch) {
    int N = (int)(n - i < (size_t)batch ? n - i : (size_t)batch);
    /* contiguous images: no index table needed */
    sb_dataset sub = *d;
    sub.images = d->images + i * sz;
    sub.labels = d->labels + i;
    sb_dataset_batch(&sub, NULL, N, x, lab);
    const float *y = sb_model_forward(m, x, N, 0);
    if (!y) { st = SB_ENOMEM; break; }
    int c = 0;
    tot += sb_loss_softmax_xent(NULL, y, lab, N, C, &c) * N;
    ok += (size_t)c;
  }
  sb_free(x);
  sb_free(lab);
  if (st) return st;
  if (acc) *acc = (double)ok / (double)n;
  if (loss) *loss = tot / (double)n;
  return SB_OK;
}

enum { LOSS_XENT, LOSS_MSE, LOSS_BCE };

/* Augmentation draws: stream (seed, SB_RNG_NOISE, AUGMENT_STREAM + epoch), apart from the GAN's
 * noise streams (id = epoch) */
#define AUGMENT_STREAM ((uint64_t)0x617567 << 32)

int sb_ann_train(sb_model *m, const sb_train_config *cfg, const sb_dataset *train, const sb_dataset *test,
                 int keep_params, FILE *log, sb_train_result *res) {
  memset(res, 0, sizeof *res);
  int st = sb_model_check_data(m, train, 1);
  if (st) return st;
  if (test && (st = sb_model_check_data(m, test, 1))) return st;
  int loss_kind = !strcmp(cfg->loss, "cross_entropy") ? LOSS_XENT : !strcmp(cfg->loss, "mse") ? LOSS_MSE
                  : !strcmp(cfg->loss, "bce") ? LOSS_BCE : -1;
  if (loss_kind < 0) SB_ERROR(SB_EINVAL, "loss: expected cross_entropy, mse or bce (got '%s')", cfg->loss);
  int ok_kind = sb_opt_kind_parse(cfg->optimizer);
  if (ok_kind < 0) SB_ERROR(SB_EINVAL, "optimizer: expected adam, adamw or sgd (got '%s')", cfg->optimizer);
  if (cfg->batch < 1) SB_ERROR(SB_EINVAL, "batch: expected >= 1 (got %d)", cfg->batch);
  const int aug_flip = !strcmp(cfg->augment, "flip") || !strcmp(cfg->augment, "flip+crop");
  const int aug_pad = !strcmp(cfg->augment, "crop") || !strcmp(cfg->augment, "flip+crop") ? cfg->crop_padding : 0;
  if (!aug_flip && !aug_pad && cfg->augment[0] && strcmp(cfg->augment, "none") && strcmp(cfg->augment, "crop"))
    SB_ERROR(SB_EINVAL, "augment: expected none, flip, crop or flip+crop (got '%s')", cfg->augment);
  if (aug_pad < 0) SB_ERROR(SB_EINVAL, "crop_padding: expected >= 0 (got %d)", cfg->crop_padding);
  if (!(cfg->label_smoothing >= 0.0 && cfg->label_smoothing < 1.0))
    SB_ERROR(SB_EINVAL, "label_smoothing: expected 0 <= eps < 1 (got %g)", cfg->label_smoothing);
  const int probs_out = m->layers[m->n_layers - 1].kind == SB_LAYER_SIGMOID;

  const size_t n = cfg->train_limit && cfg->train_limit < train->n ? cfg->train_limit : train->n;
  const int B = cfg->batch < (int)n ? cfg->batch : (int)n;
  const int C = train->n_classes;
  const size_t sz = (size_t)train->h * (size_t)train->w;
  if ((st = sb_model_check_train_memory(m, B, ok_kind == SB_OPT_SGD ? 1 : 2))) return st;
  float *x = sb_malloc((size_t)B * sz * sizeof(float));
  float *dy = sb_malloc((size_t)B * C * sizeof(float));
  float *target = sb_malloc((size_t)B * C * sizeof(float));
  int *lab = sb_malloc((size_t)B * sizeof(int));
  size_t *order = sb_malloc(n * sizeof(size_t));
  sb_opt *opt = sb_opt_alloc((sb_opt_kind)ok_kind, m->n_params);
  gsl_rng *r = sb_rng_alloc(cfg->seed, SB_RNG_SHUFFLE, 0);
  gsl_rng *ra = sb_rng_alloc(cfg->seed, SB_RNG_NOISE, AUGMENT_STREAM);
  if (!x || !dy || !target || !lab || !order || !opt || !r || !ra || sb_model_reserve(m, B)) {
    st = SB_ENOMEM;
    goto done;
  }
  opt->momentum = cfg->momentum;
  opt->beta1 = cfg->beta1;
  opt->beta2 = cfg->beta2;
  opt->weight_decay = cfg->weight_decay;
  if (!keep_params) sb_model_init_params(m, cfg->seed);

  sb_progress p;
  sb_progress_init(&p, stderr, sb_quiet);
  const int nb = (int)((n + (size_t)B - 1) / (size_t)B);
  double t_train = 0;
  res->epoch_seconds_min = 0;
  for (int ep = 0; ep < cfg->epochs; ep++) {
    opt->lr = sb_lr_schedule(cfg->schedule, cfg->lr, ep, cfg->epochs, cfg->step_gamma, cfg->step_epochs);
    for (size_t i = 0; i < n; i++) order[i] = i;
    sb_rng_reseed(r, cfg->seed, SB_RNG_SHUFFLE, (uint64_t)ep);
    gsl_ran_shuffle(r, order, n, sizeof(size_t));
    sb_rng_reseed(ra, cfg->seed, SB_RNG_NOISE, AUGMENT_STREAM + (uint64_t)ep);
    double t0 = sb_wall_time(), c0 = cpu_time_(), loss_sum = 0;
    size_t seen = 0, correct = 0;
    for (int b = 0; b < nb; b++) {
      size_t off = (size_t)b * (size_t)B;
      int N = (int)(n - off < (size_t)B ? n - off : (size_t)B);
      if (aug_flip || aug_pad) sb_dataset_batch_augment(train, order + off, N, x, lab, aug_flip, aug_pad, ra);
      else sb_dataset_batch(train, order + off, N, x, lab);
      const float *y = sb_model_forward(m, x, N, 1);
      if (!y) { st = SB_ENOMEM; goto done; }
      double l;
      int c = 0;
      if (loss_kind == LOSS_XENT) {
        l = sb_loss_softmax_xent_ls(dy, y, lab, N, C, cfg->label_smoothing, &c);
      } else {
        memset(target, 0, (size_t)N * C * sizeof(float));
        for (int k = 0; k < N; k++) target[(size_t)k * C + lab[k]] = 1.0f;
        size_t cnt = (size_t)N * C;
        l = loss_kind == LOSS_MSE ? sb_loss_mse(dy, y, target, cnt)
            : probs_out ? sb_loss_bce(dy, y, target, cnt) : sb_loss_bce_logits(dy, y, target, cnt);
        for (int k = 0; k < N; k++) {
          int best = 0;
          for (int j = 1; j < C; j++)
            if (y[(size_t)k * C + j] > y[(size_t)k * C + best]) best = j;
          c += best == lab[k];
        }
      }
      sb_model_zero_grad(m);
      sb_model_backward(m, x, dy, N, NULL);
      sb_opt_step(opt, m->params, m->grads);
      loss_sum += l * N;
      correct += (size_t)c;
      seen += (size_t)N;
      double el = sb_wall_time() - t0;
      sb_progress_update(&p, "epoch %d/%d  batch %d/%d  loss %.4f  acc %.2f%%  %.0f samples/s", ep + 1, cfg->epochs,
                         b + 1, nb, loss_sum / (double)seen, 100.0 * (double)correct / (double)seen,
                         el > 0 ? (double)seen / el : 0.0);
    }
    double et = sb_wall_time() - t0, ct = cpu_time_() - c0;
    t_train += et;
    if (ep == 0 || et < res->epoch_seconds_min) res->epoch_seconds_min = et;
    res->train_loss = loss_sum / (double)seen;
    res->train_acc = (double)correct / (double)seen;
    res->epochs = ep + 1;
    if (test) {
      if ((st = sb_ann_evaluate(m, test, cfg->test_limit, 500, &res->test_acc, &res->test_loss))) goto done;
    }
    sb_progress_done(&p);
    if (log) {
      fprintf(log, "epoch %2d/%d  train loss %.4f acc %6.2f%%", ep + 1, cfg->epochs, res->train_loss,
              100.0 * res->train_acc);
      if (test) fprintf(log, "  test loss %.4f acc %6.2f%%", res->test_loss, 100.0 * res->test_acc);
      fprintf(log, "  lr %.2e  %.2f s (%.0f samples/s, cpu %.2f s)\n", opt->lr, et, (double)seen / et, ct);
      fflush(log);
    }
  }
  res->seconds = t_train;
  res->samples_per_s = t_train > 0 ? (double)n * res->epochs / t_train : 0;
  sb_progress_done(&p);
done:
  sb_free(x);
  sb_free(dy);
  sb_free(target);
  sb_free(lab);
  sb_free(order);
  sb_opt_free(opt);
  if (r) gsl_rng_free(r);
  if (ra) gsl_rng_free(ra);
  return st;
}
