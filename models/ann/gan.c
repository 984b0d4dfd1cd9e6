/* The GAN (MLP generator and discriminator, Goodfellow et al. 2014), its sample grid as a PNG
 * (written with zlib, no image library), and the Frechet distance between feature sets
 * (Heusel et al. 2017) with GSL's symmetric eigensolver. Not a general image I/O module. */
#include "learning/learning.h"
#include "models/ann/internal.h"
#include "sim/core.h"

#include <gsl/gsl_cblas.h>
#include <gsl/gsl_eigen.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_randist.h>
#include <math.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* ---- training ---- */

static void noise(gsl_rng *r, float *z, size_t n) {
  for (size_t i = 0; i < n; i++) z[i] = (float)gsl_ran_gaussian_ziggurat(r, 1.0);
}

int sb_gan_train(sb_model *g, sb_model *d, const sb_train_config *cfg, const sb_dataset *train, int keep_params,
                 FILE *log, sb_gan_result *res) {
  memset(res, 0, sizeof *res);
  const size_t sz = (size_t)train->h * (size_t)train->w;
  const int Z = (int)sb_shape_size(g->input);
  if (sb_shape_size(sb_model_output_shape(g)) != sz)
    SB_ERROR(SB_EINVAL, "gan: generator output has %zu values but images have %zu", sb_shape_size(sb_model_output_shape(g)), sz);
  if (sb_shape_size(d->input) != sz || sb_shape_size(sb_model_output_shape(d)) != 1)
    SB_ERROR(SB_EINVAL, "gan: discriminator must map %zu values to 1 logit", sz);
  const size_t n = cfg->train_limit && cfg->train_limit < train->n ? cfg->train_limit : train->n;
  const int B = cfg->batch < (int)n ? cfg->batch : (int)n;
  int st = SB_OK;
  float *xd = sb_malloc((size_t)2 * B * sz * sizeof(float));
  float *z = sb_malloc((size_t)B * Z * sizeof(float));
  float *t = sb_malloc((size_t)2 * B * sizeof(float)), *dl = sb_malloc((size_t)2 * B * sizeof(float));
  float *dfake = sb_malloc((size_t)B * sz * sizeof(float));
  size_t *order = sb_malloc(n * sizeof(size_t));
  sb_opt *og = sb_opt_alloc(SB_OPT_ADAM, g->n_params), *od = sb_opt_alloc(SB_OPT_ADAM, d->n_params);
  gsl_rng *rs = sb_rng_alloc(cfg->seed, SB_RNG_SHUFFLE, 0), *rn = sb_rng_alloc(cfg->seed, SB_RNG_NOISE, 0);
  if (!xd || !z || !t || !dl || !dfake || !order || !og || !od || !rs || !rn || sb_model_reserve(g, B) ||
      sb_model_reserve(d, 2 * B)) {
    st = SB_ENOMEM;
    goto done;
  }
  sb_opt *both[2] = {og, od};
  for (int k = 0; k < 2; k++) {
    both[k]->lr = cfg->lr;
    both[k]->beta1 = cfg->beta1;
    both[k]->beta2 = cfg->beta2;
    both[k]->weight_decay = cfg->weight_decay;
  }
  if (!keep_params) {
    sb_model_init_params(g, cfg->seed);
    sb_model_init_params(d, cfg->seed ^ 0x5bd1e995u);
  }
  sb_progress p;
  sb_progress_init(&p, stderr, sb_quiet);
  const int nb = (int)(n / (size_t)B); /* full batches only, as drop_last=True */
  double t_all = 0;
  for (int ep = 0; ep < cfg->epochs; ep++) {
    for (size_t i = 0; i < n; i++) order[i] = i;
    sb_rng_reseed(rs, cfg->seed, SB_RNG_SHUFFLE, (uint64_t)ep);
    sb_rng_reseed(rn, cfg->seed, SB_RNG_NOISE, (uint64_t)ep);
    gsl_ran_shuffle(rs, order, n, sizeof(size_t));
    double t0 = sb_wall_time(), c0 = cpu_time_(), sd = 0, sg = 0, sreal = 0, sfake = 0;
    for (int b = 0; b < nb; b++) {
      /* real images in [-1, 1], then generated ones, in one discriminator batch */
      sb_dataset_batch(train, order + (size_t)b * B, B, xd, NULL);
      for (size_t i = 0; i < (size_t)B * sz; i++) xd[i] = 2.0f * xd[i] - 1.0f;
      noise(rn, z, (size_t)B * Z);
      const float *fake = sb_model_forward(g, z, B, 1);
      memcpy(xd + (size_t)B * sz, fake, (size_t)B * sz * sizeof(float));
      for (int i = 0; i < 2 * B; i++) t[i] = i < B ? 1.0f : 0.0f;
      const float *logit = sb_model_forward(d, xd, 2 * B, 1);
      for (int i = 0; i < 2 * B; i++) {
        double s = 1.0 / (1.0 + exp(-(double)logit[i]));
        if (i < B) sreal += s; else sfake += s;
      }
      /* mean over real + mean over fake, as PyTorch's usual loss_real + loss_fake */
      sd += 2.0 * sb_loss_bce_logits(dl, logit, t, (size_t)2 * B);
      for (int i = 0; i < 2 * B; i++) dl[i] *= 2.0f;
      sb_model_zero_grad(d);
      sb_model_backward(d, xd, dl, 2 * B, NULL);
      sb_opt_step(od, d->params, d->grads);
      /* generator step: non-saturating loss, targets 1 on its own samples */
      logit = sb_model_forward(d, fake, B, 1);
      for (int i = 0; i < B; i++) t[i] = 1.0f;
      sg += sb_loss_bce_logits(dl, logit, t, (size_t)B);
      sb_model_backward_input(d, fake, dl, B, dfake);
      sb_model_zero_grad(g);
      sb_model_backward(g, z, dfake, B, NULL);
      sb_opt_step(og, g->params, g->grads);
      double el = sb_wall_time() - t0;
      sb_progress_update(&p, "epoch %d/%d  batch %d/%d  D loss %.4f  G loss %.4f  D(real) %.3f  D(fake) %.3f  %.0f samples/s",
                         ep + 1, cfg->epochs, b + 1, nb, sd / (b + 1), sg / (b + 1), sreal / ((b + 1.0) * B),
                         sfake / ((b + 1.0) * B), el > 0 ? (b + 1.0) * B / el : 0.0);
    }
    double et = sb_wall_time() - t0;
    t_all += et;
    if (ep == 0 || et < res->epoch_seconds_min) res->epoch_seconds_min = et;
    res->epochs = ep + 1;
    res->d_loss = nb ? sd / nb : 0;
    res->g_loss = nb ? sg / nb : 0;
    res->d_real = nb ? sreal / ((double)nb * B) : 0;
    res->d_fake = nb ? sfake / ((double)nb * B) : 0;
    sb_progress_done(&p);
    if (log) {
      fprintf(log, "epoch %2d/%d  D loss %.4f  G loss %.4f  D(real) %.3f  D(fake) %.3f  %.2f s (%.0f samples/s, cpu %.2f s)\n",
              ep + 1, cfg->epochs, res->d_loss, res->g_loss, res->d_real, res->d_fake, et, (double)nb * B / et,
              cpu_time_() - c0);
      fflush(log);
    }
  }
  res->seconds = t_all;
done:
  sb_free(xd); sb_free(z); sb_free(t); sb_free(dl); sb_free(dfake); sb_free(order);
  sb_opt_free(og); sb_opt_free(od);
  if (rs) gsl_rng_free(rs);
  if (rn) gsl_rng_free(rn);
  return st;
}

int sb_gan_sample(sb_model *g, size_t n, uint64_t seed, uint64_t id, float *out) {
  const int Z = (int)sb_shape_size(g->input), B = 500;
  const size_t osz = sb_shape_size(sb_model_output_shape(g));
  float *z = sb_malloc((size_t)B * Z * sizeof(float));
  gsl_rng *r = sb_rng_alloc(seed, SB_RNG_NOISE, id);
  if (!z || !r) { sb_free(z); if (r) gsl_rng_free(r); return SB_ENOMEM; }
  int st = SB_OK;
  for (size_t i = 0; i < n; i += B) {
    int N = (int)(n - i < (size_t)B ? n - i : (size_t)B);
    noise(r, z, (size_t)N * Z);
    const float *y = sb_model_forward(g, z, N, 0);
    if (!y) { st = SB_ENOMEM; break; }
    for (size_t j = 0; j < (size_t)N * osz; j++) out[i * osz + j] = 0.5f * (y[j] + 1.0f);
  }
  sb_free(z);
  gsl_rng_free(r);
  return st;
}

/* ---- GAN files ---- */

int sb_gan_save(const sb_model *g, const sb_model *d, const char *path, const char *const *meta) {
  sb_h5_out out;
  int st = sb_h5_create(&out, path);
  if (st) return st;
  st = sb_h5_attr_write_string(out.file, "format", "spikebridge-gan");
  int64_t ver = 1;
  if (!st) st = sb_h5_attr_write_int64s(out.file, "version", &ver, 1);
  const sb_model *ms[2] = {g, d};
  const char *names[2] = {"generator", "discriminator"};
  for (int k = 0; k < 2 && !st; k++) {
    hid_t grp = sb_h5_group(out.file, names[k]);
    if (grp < 0) { st = SB_SET_ERROR(SB_EIO, "cannot create group '%s'", names[k]); break; }
    st = sb_model_save_to(ms[k], grp);
    H5Gclose(grp);
  }
  for (int i = 0; !st && meta && meta[i] && meta[i + 1]; i += 2) st = sb_h5_attr_write_string(out.file, meta[i], meta[i + 1]);
  if (st) {
    sb_h5_abort(&out);
    return sb_error_prefix_(st, "%s", path);
  }
  return sb_h5_commit(&out);
}

int sb_gan_load(sb_model **g, sb_model **d, const char *path) {
  *g = *d = NULL;
  hid_t f;
  int st = sb_h5_open_read(path, &f);
  if (st) return st;
  char *fmt = NULL;
  if (sb_h5_attr_read_string(f, "format", &fmt) || strcmp(fmt, "spikebridge-gan")) {
    sb_free(fmt);
    H5Fclose(f);
    SB_ERROR(SB_EFORMAT, "%s: attribute 'format': expected \"spikebridge-gan\"", path);
  }
  sb_free(fmt);
  const char *names[2] = {"generator", "discriminator"};
  sb_model **ms[2] = {g, d};
  for (int k = 0; k < 2 && !st; k++) {
    if (!sb_h5_exists(f, names[k])) { st = SB_SET_ERROR(SB_EFORMAT, "%s: /%s: missing group", path, names[k]); break; }
    hid_t grp = H5Gopen2(f, names[k], H5P_DEFAULT);
    char what[4200];
    snprintf(what, sizeof what, "%s: /%s", path, names[k]);
    st = sb_model_load_from(ms[k], grp, what);
    H5Gclose(grp);
  }
  H5Fclose(f);
  if (st) {
    sb_model_free(*g); sb_model_free(*d);
    *g = *d = NULL;
  }
  return st;
}

/* ---- features and the Frechet distance ---- */

int sb_model_features(sb_model *m, int layer, const float *x, size_t n, float *feats) {
  if (layer < 0 || layer >= m->n_layers) SB_ERROR(SB_EINVAL, "features: layer %d not in 0..%d", layer, m->n_layers - 1);
  const size_t isz = sb_shape_size(m->input), fsz = sb_shape_size(m->layers[layer].out);
  const int B = 500;
  for (size_t i = 0; i < n; i += B) {
    int N = (int)(n - i < (size_t)B ? n - i : (size_t)B);
    if (!sb_model_forward(m, x + i * isz, N, 0)) return SB_ENOMEM;
    memcpy(feats + i * fsz, m->acts[layer], (size_t)N * fsz * sizeof(float));
  }
  return SB_OK;
}

/* mean (dim) and covariance (dim, dim; unbiased) of x (n, dim) in double */
static int moments(const float *x, size_t n, int dim, double *mu, double *cov) {
  double *c = sb_malloc(n * (size_t)dim * sizeof(double));
  if (!c) return SB_ENOMEM;
  for (int j = 0; j < dim; j++) mu[j] = 0;
  for (size_t i = 0; i < n; i++)
    for (int j = 0; j < dim; j++) mu[j] += (double)x[i * dim + j];
  for (int j = 0; j < dim; j++) mu[j] /= (double)n;
  for (size_t i = 0; i < n; i++)
    for (int j = 0; j < dim; j++) c[i * dim + j] = (double)x[i * dim + j] - mu[j];
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, dim, dim, (int)n, 1.0 / (double)(n - 1), c, dim, c, dim, 0.0,
              cov, dim);
  sb_free(c);
  return SB_OK;
}

int sb_frechet_distance(const float *a, size_t na, const float *b, size_t nb, int dim, double *fd) {
  if (na < 2 || nb < 2 || dim < 1) SB_ERROR(SB_EINVAL, "frechet: need >= 2 samples per set and dim >= 1 (got %zu, %zu, %d)", na, nb, dim);
  const size_t D = (size_t)dim;
  double *mua = sb_malloc(D * sizeof(double)), *mub = sb_malloc(D * sizeof(double));
  gsl_matrix *sa = gsl_matrix_alloc(D, D), *sb = gsl_matrix_alloc(D, D), *v = gsl_matrix_alloc(D, D);
  gsl_matrix *h = gsl_matrix_alloc(D, D), *tmp = gsl_matrix_alloc(D, D);
  gsl_vector *ev = gsl_vector_alloc(D);
  gsl_eigen_symmv_workspace *w = gsl_eigen_symmv_alloc(D);
  int st = SB_OK;
  if (!mua || !mub || !sa || !sb || !v || !h || !tmp || !ev || !w) { st = SB_SET_ERROR(SB_ENOMEM, "frechet: out of memory"); goto done; }
  if ((st = moments(a, na, dim, mua, sa->data)) || (st = moments(b, nb, dim, mub, sb->data))) goto done;
  double dmu = 0, tra = 0, trb = 0;
  for (size_t i = 0; i < D; i++) {
    dmu += (mua[i] - mub[i]) * (mua[i] - mub[i]);
    tra += gsl_matrix_get(sa, i, i);
    trb += gsl_matrix_get(sb, i, i);
  }
  /* S_a^(1/2) = V diag(sqrt(l)) V^T (symmv overwrites its input: work on a copy) */
  gsl_matrix_memcpy(tmp, sa);
  if (gsl_eigen_symmv(tmp, ev, v, w)) { st = SB_SET_ERROR(SB_ENOCONV, "frechet: eigen decomposition failed"); goto done; }
  for (size_t i = 0; i < D; i++)
    for (size_t j = 0; j < D; j++) {
      double s = sqrt(fmax(gsl_vector_get(ev, j), 0.0));
      gsl_matrix_set(tmp, i, j, gsl_matrix_get(v, i, j) * s);
    }
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, dim, dim, dim, 1.0, tmp->data, dim, v->data, dim, 0.0, h->data, dim);
  /* M = H S_b H, symmetric PSD; tr sqrt(S_a S_b) = sum sqrt(eig(M)) */
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, dim, dim, dim, 1.0, h->data, dim, sb->data, dim, 0.0, tmp->data, dim);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, dim, dim, dim, 1.0, tmp->data, dim, h->data, dim, 0.0, v->data, dim);
  for (size_t i = 0; i < D; i++)
    for (size_t j = 0; j < i; j++) {
      double s = 0.5 * (gsl_matrix_get(v, i, j) + gsl_matrix_get(v, j, i));
      gsl_matrix_set(v, i, j, s);
      gsl_matrix_set(v, j, i, s);
    }
  if (gsl_eigen_symmv(v, ev, tmp, w)) { st = SB_SET_ERROR(SB_ENOCONV, "frechet: eigen decomposition failed"); goto done; }
  double trs = 0;
  for (size_t i = 0; i < D; i++) trs += sqrt(fmax(gsl_vector_get(ev, i), 0.0));
  *fd = dmu + tra + trb - 2.0 * trs;
done:
  sb_free(mua); sb_free(mub);
  if (sa) gsl_matrix_free(sa);
  if (sb) gsl_matrix_free(sb);
  if (v) gsl_matrix_free(v);
  if (h) gsl_matrix_free(h);
  if (tmp) gsl_matrix_free(tmp);
  if (ev) gsl_vector_free(ev);
  if (w) gsl_eigen_symmv_free(w);
  return st;
}

/* ---- PNG ---- */

static void be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16); p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}

static int chunk(FILE *f, const char *type, const unsigned char *data, size_t n) {
  unsigned char hdr[8];
  be32(hdr, (uint32_t)n);
  memcpy(hdr + 4, type, 4);
  uLong crc = crc32(0L, (const Bytef *)type, 4);
  if (n) crc = crc32(crc, data, (uInt)n);
  unsigned char c[4];
  be32(c, (uint32_t)crc);
  return fwrite(hdr, 1, 8, f) == 8 && (n == 0 || fwrite(data, 1, n, f) == n) && fwrite(c, 1, 4, f) == 4;
}

int sb_png_write_gray(const char *path, const uint8_t *pix, int w, int h) {
  if (w < 1 || h < 1) SB_ERROR(SB_EINVAL, "%s: PNG size must be >= 1 (got %dx%d)", path, w, h);
  size_t raw_n = (size_t)h * ((size_t)w + 1);
  unsigned char *raw = sb_malloc(raw_n);
  uLongf zn = compressBound((uLong)raw_n);
  unsigned char *z = sb_malloc(zn);
  char *tmp = sb_malloc(strlen(path) + 32);
  if (!raw || !z || !tmp) { sb_free(raw); sb_free(z); sb_free(tmp); return SB_ENOMEM; }
  for (int y = 0; y < h; y++) {
    raw[(size_t)y * (w + 1)] = 0; /* filter: none */
    memcpy(raw + (size_t)y * (w + 1) + 1, pix + (size_t)y * w, (size_t)w);
  }
  int st = SB_OK;
  if (compress2(z, &zn, raw, (uLong)raw_n, 9) != Z_OK) st = SB_SET_ERROR(SB_EIO, "%s: zlib compression failed", path);
  snprintf(tmp, strlen(path) + 32, "%s.tmp.%ld", path, (long)getpid());
  FILE *f = st ? NULL : fopen(tmp, "wb");
  if (!st && !f) st = SB_SET_ERROR(SB_EIO, "%s: cannot create (directory missing or not writable?)", path);
  if (f) {
    static const unsigned char sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    unsigned char ihdr[13];
    be32(ihdr, (uint32_t)w);
    be32(ihdr + 4, (uint32_t)h);
    ihdr[8] = 8; ihdr[9] = 0; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0; /* 8-bit greyscale */
    int ok = fwrite(sig, 1, 8, f) == 8 && chunk(f, "IHDR", ihdr, 13) && chunk(f, "IDAT", z, zn) &&
             chunk(f, "IEND", NULL, 0);
    if (fclose(f) != 0) ok = 0;
    if (!ok || rename(tmp, path) != 0) {
      unlink(tmp);
      st = SB_SET_ERROR(SB_EIO, "%s: cannot write PNG", path);
    }
  }
  sb_free(raw); sb_free(z); sb_free(tmp);
  return st;
}

/* ---- the CLI pipeline ---- */

int sb_gan_cli_(sb_train_config *cfg, const sb_dataset *train, const sb_dataset *test, const char *init,
                const char *out, const char *png, const char *fid_model, int nthreads) {
  sb_model *g = NULL, *d = NULL, *cnn = NULL;
  int st;
  /* validate the feature model before spending minutes on training */
  if (fid_model) {
    if ((st = sb_model_load(&cnn, fid_model))) return st == SB_EIO ? SB_EINVAL : st;
    if ((st = sb_model_check_data(cnn, test, 1))) { sb_model_free(cnn); return sb_error_prefix_(st, "%s", fid_model); }
  }
  if (init) {
    if ((st = sb_gan_load(&g, &d, init))) { if (st == SB_EIO) st = SB_EINVAL; goto done; }
  } else if ((st = sb_model_builtin(&g, "gan_g")) || (st = sb_model_builtin(&d, "gan_d"))) {
    goto done;
  }
  printf("training gan: generator %zu + discriminator %zu parameters on %zu images: adam lr %g beta1 %g, batch %d, "
         "%d epochs, seed %llu, %d threads\n", g->n_params, d->n_params,
         cfg->train_limit && cfg->train_limit < train->n ? cfg->train_limit : train->n, cfg->lr, cfg->beta1, cfg->batch,
         cfg->epochs, (unsigned long long)cfg->seed, nthreads);
  fflush(stdout);
  sb_gan_result res;
  if ((st = sb_gan_train(g, d, cfg, train, init != NULL, stdout, &res))) goto done;

  /* 8 x 8 grid of samples, 28x28 each with 2-pixel gaps */
  {
    const int k = 8, s = train->h, gap = 2, W = k * (s + gap) + gap;
    float *img = sb_malloc((size_t)k * k * s * s * sizeof(float));
    uint8_t *pix = sb_calloc((size_t)W * W, 1);
    if (!img || !pix) { sb_free(img); sb_free(pix); st = SB_ENOMEM; goto done; }
    st = sb_gan_sample(g, (size_t)k * k, cfg->seed, 1000, img);
    for (int i = 0; !st && i < k * k; i++)
      for (int y = 0; y < s; y++)
        for (int x = 0; x < s; x++) {
          float v = img[(size_t)i * s * s + (size_t)y * s + x];
          v = v < 0 ? 0 : v > 1 ? 1 : v;
          pix[(size_t)((i / k) * (s + gap) + gap + y) * W + (i % k) * (s + gap) + gap + x] = (uint8_t)lrintf(v * 255.0f);
        }
    if (!st) st = sb_png_write_gray(png, pix, W, W);
    sb_free(img);
    sb_free(pix);
    if (st) goto done;
  }
  char fds[32] = "";
  if (cnn) {
    const size_t n = cfg->test_limit && cfg->test_limit < test->n ? cfg->test_limit : test->n;
    const size_t isz = (size_t)test->h * test->w;
    const int layer = cnn->n_layers - 2, dim = (int)sb_shape_size(cnn->layers[layer].out);
    float *gen = sb_malloc(n * isz * sizeof(float)), *real = sb_malloc(n * isz * sizeof(float));
    float *fg = sb_malloc(n * (size_t)dim * sizeof(float)), *fr = sb_malloc(n * (size_t)dim * sizeof(float));
    double fd = 0;
    if (!gen || !real || !fg || !fr) st = SB_ENOMEM;
    if (!st) st = sb_gan_sample(g, n, cfg->seed, 2000, gen);
    if (!st) { sb_dataset_batch(test, NULL, (int)n, real, NULL); st = sb_model_features(cnn, layer, gen, n, fg); }
    if (!st) st = sb_model_features(cnn, layer, real, n, fr);
    if (!st) st = sb_frechet_distance(fg, n, fr, n, dim, &fd);
    sb_free(gen); sb_free(real); sb_free(fg); sb_free(fr);
    if (st) goto done;
    snprintf(fds, sizeof fds, "%.4f", fd);
    printf("Frechet distance, %s layer %d (%d features), %zu generated vs %zu real test images: %.3f\n", fid_model, layer,
           dim, n, n, fd);
  }
  {
    char ep[16], lrs[32], sd[32], th[16], secs[32];
    snprintf(ep, sizeof ep, "%d", res.epochs);
    snprintf(lrs, sizeof lrs, "%g", cfg->lr);
    snprintf(sd, sizeof sd, "%llu", (unsigned long long)cfg->seed);
    snprintf(th, sizeof th, "%d", nthreads);
    snprintf(secs, sizeof secs, "%.2f", res.seconds);
    const char *meta[] = {"epochs", ep, "lr", lrs, "seed", sd, "threads", th, "train_seconds", secs,
                          fds[0] ? "frechet_distance" : NULL, fds, NULL};
    if ((st = sb_gan_save(g, d, out, meta))) goto done;
  }
  printf("summary: gan, %d epochs, D loss %.4f, G loss %.4f, D(real) %.3f, D(fake) %.3f\n", res.epochs, res.d_loss,
         res.g_loss, res.d_real, res.d_fake);
  printf("  training %.2f s (%.2f s/epoch, fastest %.2f s), %d threads, peak RSS %.0f MB\n", res.seconds,
         res.epochs ? res.seconds / res.epochs : 0.0, res.epoch_seconds_min, nthreads, (double)sb_peak_rss() / 1e6);
  printf("  saved %s and %s\n", out, png);
done:
  sb_model_free(g);
  sb_model_free(d);
  sb_model_free(cnn);
  return st;
}
