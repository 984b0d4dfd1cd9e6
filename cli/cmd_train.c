/* spikebridge train: parse options, load data and architecture, call sb_ann_train or
 * sb_gan_train, save the model file, print the summary. No science here. */
#include "cli/cli.h"
#include "models/ann/ann.h"
#include "sim/core.h"

#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static const char usage[] =
    "Usage: spikebridge train {mlp|cnn|gan|mlp_sigmoid|cnn_maxpool|ARCH.json|MODEL.h5} [options]\n\n"
    "Train a network on Fashion-MNIST and save it to MODEL.h5 (default NAME.h5).\n"
    "A MODEL.h5 argument continues training a saved model (or GAN file; --epochs 0 only\n"
    "evaluates it, e.g. the Frechet distance of a GAN exported from PyTorch).\n\n"
    "  --data DIR          Fashion-MNIST IDX files (default $SB_DATA_DIR or /usr/share/datasets/fashion-mnist)\n"
    "  --epochs N          epochs (default 10; GAN 30)\n"
    "  --batch N           mini-batch size (default 128; cnn and GAN 64)\n"
    "  --lr X              learning rate (default: Adam 1e-3; GAN Adam 2e-4, beta1 0.5)\n"
    "  --optimizer NAME    adam, adamw or sgd (default adam, or the architecture file's)\n"
    "  --momentum X        SGD momentum (default 0.9)\n"
    "  --weight-decay X    L2 weight decay (decoupled for adamw; default 0)\n"
    "  --schedule NAME     learning-rate schedule per epoch: none, cosine, step\n"
    "                      (default cosine for mlp, cnn, cnn_maxpool; none otherwise)\n"
    "  --augment NAME      none, flip, crop or flip+crop: random horizontal flip and/or random\n"
    "                      shift by up to --crop-padding pixels (default 2), zero fill\n"
    "  --label-smoothing X cross-entropy label smoothing (default 0; cnn 0.1)\n"
    "  --seed N            seed of initialisation, shuffling and GAN noise (default 1)\n"
    "  --threads N         OpenMP threads (default: OMP_NUM_THREADS or all cores)\n"
    "  --limit N           train on the first N training images only\n"
    "  --test-limit N      evaluate on the first N test images only (GAN: Frechet distance\n"
    "                      over N generated and N real images instead of 10000)\n"
    "  -o, --output FILE   model file to write (default NAME.h5)\n"
    "  --samples PNG       GAN: write an 8x8 grid of generated digits (default NAME_samples.png)\n"
    "  --fid-model CNN.h5  GAN: trained CNN whose 128-d penultimate features give the Frechet distance\n"
    "  --quiet             no progress line\n\n"
    "Architecture files: see examples/*.json and docs/ann.md.\n";

static int fail_input(int st) {
  /* a model or architecture file the user named that cannot be read is an input error */
  if (st == SB_EIO) st = SB_EINVAL;
  return sb_cli_fail(st);
}

static int ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && !strcmp(s + a - b, suf);
}

/* 1 if `path` is a GAN file (root format "spikebridge-gan"). */
static int is_gan_file(const char *path) {
  hid_t f;
  if (sb_h5_open_read(path, &f)) { sb_error_clear(); return 0; }
  char *fmt = NULL;
  int yes = sb_h5_attr_read_string(f, "format", &fmt) == SB_OK && !strcmp(fmt, "spikebridge-gan");
  sb_free(fmt);
  sb_error_clear();
  H5Fclose(f);
  return yes;
}

int sb_cmd_train(int argc, char **argv) {
  static const struct option opts[] = {
      {"output", required_argument, 0, 'o'},   {"data", required_argument, 0, 1},
      {"epochs", required_argument, 0, 2},     {"batch", required_argument, 0, 3},
      {"lr", required_argument, 0, 4},         {"seed", required_argument, 0, 5},
      {"threads", required_argument, 0, 6},    {"limit", required_argument, 0, 7},
      {"test-limit", required_argument, 0, 8}, {"optimizer", required_argument, 0, 9},
      {"momentum", required_argument, 0, 10},  {"weight-decay", required_argument, 0, 11},
      {"schedule", required_argument, 0, 12},  {"samples", required_argument, 0, 13},
      {"fid-model", required_argument, 0, 14}, {"augment", required_argument, 0, 15},
      {"crop-padding", required_argument, 0, 16}, {"label-smoothing", required_argument, 0, 17},
      {"help", no_argument, 0, 'h'},
      {"quiet", no_argument, 0, 'q'},          {0, 0, 0, 0}};
  const char *out = NULL, *data = NULL, *samples = NULL, *fid_model = NULL;
  long epochs = -1, batch = -1, seed = 1, threads = 0, limit = 0, test_limit = 0;
  double lr = -1, momentum = -1, wd = -1, smoothing = -1;
  long crop_pad = -1;
  const char *optimizer = NULL, *schedule = NULL, *augment = NULL;
  sb_cli_getopt_reset();
  int c;
  while ((c = sb_cli_getopt("train", usage, argc, argv, ":ho:q", opts)) != -1) {
    int e = 0;
    switch (c) {
    case SB_CLI_HELP: return 0;
    case SB_CLI_BADOPT: return 2;
    case 'o': out = optarg; if (sb_output_check(out)) return sb_cli_fail(SB_EINVAL); break;
    case 'q': sb_quiet = 1; break;
    case 1: data = optarg; break;
    case 2: e = sb_cli_long("train", "--epochs", optarg, 0, 100000, &epochs); break;
    case 3: e = sb_cli_long("train", "--batch", optarg, 1, 1 << 20, &batch); break;
    case 4: e = sb_cli_double("train", "--lr", optarg, &lr); if (!e && !(lr >= 1e-12 && lr <= 100)) e = sb_cli_usage_error("train", "--lr: expected 1e-12..100, as train.lr in an architecture file (got %s)", optarg); break;
    case 5: e = sb_cli_long("train", "--seed", optarg, 0, 0x7fffffffffffffffL, &seed); break;
    case 6: e = sb_cli_long("train", "--threads", optarg, 1, 1024, &threads); break;
    case 7: e = sb_cli_long("train", "--limit", optarg, 1, 1L << 40, &limit); break;
    case 8: e = sb_cli_long("train", "--test-limit", optarg, 1, 1L << 40, &test_limit); break;
    case 9: optimizer = optarg;
      if (strcmp(optarg, "adam") && strcmp(optarg, "adamw") && strcmp(optarg, "sgd"))
        e = sb_cli_usage_error("train", "--optimizer: expected adam, adamw or sgd (got '%s')", optarg);
      break;
    case 10: e = sb_cli_double("train", "--momentum", optarg, &momentum); if (!e && !(momentum >= 0 && momentum < 1)) e = sb_cli_usage_error("train", "--momentum: expected 0 <= mu < 1 (got %s)", optarg); break;
    case 11: e = sb_cli_double("train", "--weight-decay", optarg, &wd); if (!e && !(wd >= 0)) e = sb_cli_usage_error("train", "--weight-decay: expected >= 0 (got %s)", optarg); break;
    case 12: schedule = optarg;
      if (strcmp(optarg, "none") && strcmp(optarg, "cosine") && strcmp(optarg, "step"))
        e = sb_cli_usage_error("train", "--schedule: expected none, cosine or step (got '%s')", optarg);
      break;
    case 13: samples = optarg; if (sb_output_check(samples)) return sb_cli_fail(SB_EINVAL); break;
    case 14: fid_model = optarg; break;
    case 15: augment = optarg;
      if (strcmp(optarg, "none") && strcmp(optarg, "flip") && strcmp(optarg, "crop") && strcmp(optarg, "flip+crop"))
        e = sb_cli_usage_error("train", "--augment: expected none, flip, crop or flip+crop (got '%s')", optarg);
      break;
    case 16: e = sb_cli_long("train", "--crop-padding", optarg, 0, 64, &crop_pad); break;
    case 17: e = sb_cli_double("train", "--label-smoothing", optarg, &smoothing); if (!e && !(smoothing >= 0 && smoothing < 1)) e = sb_cli_usage_error("train", "--label-smoothing: expected 0 <= eps < 1 (got %s)", optarg); break;
    default: break;
    }
    if (e) return e;
  }
  if (argc - optind != 1) return sb_cli_usage_error("train", "expected one of mlp, cnn, gan, ARCH.json or MODEL.h5");
  const char *what = argv[optind];
#ifdef _OPENMP
  if (threads > 0) omp_set_num_threads((int)threads);
  int nthreads = omp_get_max_threads();
#else
  int nthreads = 1;
#endif
  sb_h5_quiet();
  sb_train_config cfg;
  sb_train_config_default(&cfg);
  int gan_file = ends_with(what, ".h5") && sb_model_file_is_ann(what) && is_gan_file(what);
  int is_gan = !strcmp(what, "gan") || gan_file;
  if (is_gan) {
    cfg.lr = 2e-4;
    cfg.beta1 = 0.5;
    cfg.batch = 64;
    cfg.epochs = 30;
  }

  /* the architecture: built-in, JSON file, or a saved model to continue */
  sb_model *m = NULL;
  int st = SB_OK, keep = 0;
  if (!is_gan) {
    if (ends_with(what, ".json")) st = sb_model_from_json_file(&m, what, &cfg);
    else if (ends_with(what, ".h5")) { st = sb_model_load(&m, what); keep = 1; }
    else {
      st = (!strcmp(what, "gan_g") || !strcmp(what, "gan_d"))   /* the GAN's halves train together */
               ? SB_SET_ERROR(SB_EINVAL, "train: '%s' is half of the GAN; train both with 'spikebridge train gan'", what)
               : sb_model_builtin(&m, what);
      if (st == SB_EINVAL && strstr(sb_last_error(), "unknown built-in architecture"))
        st = SB_SET_ERROR(SB_EINVAL, "train: unknown architecture '%s' (expected mlp, cnn, gan, mlp_sigmoid, cnn_maxpool, "
                          "an architecture .json file or a saved model .h5)", what);
      /* the built-in recipe (cosine schedule), docs/ann.md */
      if (!st) sb_train_config_builtin(&cfg, what);
    }
    if (st) return fail_input(st);
  }
  if (epochs >= 0) cfg.epochs = (int)epochs;
  if (batch > 0) cfg.batch = (int)batch;
  if (lr > 0) cfg.lr = lr;
  if (momentum >= 0) cfg.momentum = momentum;
  if (wd >= 0) cfg.weight_decay = wd;
  if (optimizer) snprintf(cfg.optimizer, sizeof cfg.optimizer, "%s", optimizer);
  if (schedule) snprintf(cfg.schedule, sizeof cfg.schedule, "%s", schedule);
  if (augment) snprintf(cfg.augment, sizeof cfg.augment, "%s", augment);
  if (crop_pad >= 0) cfg.crop_padding = (int)crop_pad;
  if (smoothing >= 0) cfg.label_smoothing = smoothing;
  cfg.seed = (uint64_t)seed;
  cfg.train_limit = (size_t)limit;
  cfg.test_limit = (size_t)test_limit;

  char defout[512];
  snprintf(defout, sizeof defout, "%s.h5", is_gan ? "gan" : m->name);
  for (char *ch = defout; *ch; ch++)   /* an architecture's name is a name, not a path */
    if (*ch == '/') *ch = '_';
  if (!out) out = defout;
  /* continuing a saved MODEL.h5 may replace it (written atomically); an architecture file may not */
  if ((ends_with(what, ".json") && sb_output_not_input(out, what)) || (samples && sb_output_not_input(samples, what)) ||
      (fid_model && sb_output_not_input(out, fid_model))) {
    sb_model_free(m);
    return sb_cli_fail(SB_EINVAL);
  }

  if (keep && cfg.epochs == 0 && sb_output_not_input(out, what)) {   /* continuing with nothing to do */
    sb_error_clear();
    printf("train %s --epochs 0: nothing to train; %s is left unchanged (give -o OTHER.h5 for a copy)\n", what, what);
    sb_model_free(m);
    return 0;
  }

  double t0 = sb_wall_time();
  sb_dataset train, test;
  if ((st = sb_fmnist_load(data, "train", &train))) { sb_model_free(m); return sb_cli_fail(st); }
  if ((st = sb_fmnist_load(data, "test", &test))) { sb_dataset_free(&train); sb_model_free(m); return sb_cli_fail(st); }
  double t_load = sb_wall_time() - t0;

  if (is_gan) {
    char defpng[600];
    snprintf(defpng, sizeof defpng, "%.*s_samples.png", (int)(strlen(out) > 3 ? strlen(out) - 3 : strlen(out)), out);
    st = sb_gan_cli_(&cfg, &train, &test, gan_file ? what : NULL, out, samples ? samples : defpng, fid_model, nthreads);
    sb_dataset_free(&train);
    sb_dataset_free(&test);
    return st ? sb_cli_fail(st) : 0;
  }

  /* the architecture must fit the data before anything is printed or trained; name its file */
  if ((st = sb_model_check_data(m, &train, 1))) {
    sb_error_prefix_(st, "%s", what);
    sb_dataset_free(&train);
    sb_dataset_free(&test);
    sb_model_free(m);
    return fail_input(st);
  }
  printf("training %s (%zu parameters) on %zu images, testing on %zu: %s lr %g (schedule %s), batch %d, %d epochs, "
         "augment %s, label smoothing %g, seed %llu, %d threads\n", m->name, m->n_params,
         limit ? (size_t)limit : train.n, test_limit ? (size_t)test_limit : test.n, cfg.optimizer, cfg.lr, cfg.schedule,
         cfg.batch, cfg.epochs, cfg.augment, cfg.label_smoothing, (unsigned long long)cfg.seed, nthreads);
  fflush(stdout);
  sb_train_result res;
  st = sb_ann_train(m, &cfg, &train, &test, keep, stdout, &res);
  sb_dataset_free(&train);
  sb_dataset_free(&test);
  if (st == SB_EINVAL && !strstr(sb_last_error(), what)) st = sb_error_prefix_(st, "%s", what);   /* batch, memory */
  if (st) { sb_model_free(m); return sb_cli_fail(st); }

  char acc[32], tl[32], ep[16], bt[16], lrs[32], sd[32], th[16], secs[32], ls[32];
  snprintf(ls, sizeof ls, "%g", cfg.label_smoothing);
  snprintf(acc, sizeof acc, "%.4f", res.test_acc);
  snprintf(tl, sizeof tl, "%.6f", res.train_loss);
  snprintf(ep, sizeof ep, "%d", res.epochs);
  snprintf(bt, sizeof bt, "%d", cfg.batch);
  snprintf(lrs, sizeof lrs, "%g", cfg.lr);
  snprintf(sd, sizeof sd, "%llu", (unsigned long long)cfg.seed);
  snprintf(th, sizeof th, "%d", nthreads);
  snprintf(secs, sizeof secs, "%.2f", res.seconds);
  const char *meta[] = {"test_accuracy", acc, "train_loss", tl, "epochs", ep, "batch", bt, "lr", lrs,
                        "optimizer", cfg.optimizer, "loss", cfg.loss, "seed", sd, "threads", th,
                        "train_seconds", secs, "schedule", cfg.schedule, "augment", cfg.augment,
                        "label_smoothing", ls, NULL};
  st = sb_model_save(m, out, meta);
  if (st) { sb_model_free(m); return sb_cli_fail(st); }
  if (res.epochs == 0)
    printf("summary: %s, 0 epochs: nothing trained or evaluated\n", m->name);
  else
    printf("summary: %s, %d epochs, test accuracy %.2f%% (loss %.4f), train loss %.4f\n", m->name, res.epochs,
           100.0 * res.test_acc, res.test_loss, res.train_loss);
  printf("  data load %.2f s, training %.2f s (%.2f s/epoch, fastest %.2f s, %.0f samples/s), %d threads, "
         "peak RSS %.0f MB\n", t_load, res.seconds, res.epochs ? res.seconds / res.epochs : 0.0,
         res.epoch_seconds_min, res.samples_per_s, nthreads, (double)sb_peak_rss() / 1e6);
  printf("  saved %s\n", out);
  sb_model_free(m);
  return 0;
}
