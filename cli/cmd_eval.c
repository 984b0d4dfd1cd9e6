/* spikebridge eval: run a converted SNN file on the Fashion-MNIST test set with the clocked or the
 * event backend and report the latency-accuracy curve, spikes and synaptic operations. */
#include "cli/cli.h"
#include "models/ann/ann.h"
#include "models/convert/convert.h"

#include <jansson.h>
#include <math.h>
#include <plplot.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static const char usage[] =
    "Usage: spikebridge eval SNN.h5 [--data DIR] [--steps T] [--backend clocked|event]\n"
    "                        [--limit N] [--record OUT.h5] [--record-images I,J,...]\n"
    "                        [--coding current|poisson] [--v-init F] [--seed N] [--json OUT.json]\n"
    "                        [--plot OUT.png] [--delay MS] [--threads N] [--quiet]\n"
    "       spikebridge eval GAN.h5 [--steps T] [--limit N] [--fid-model CNN.h5] [--plot OUT.png]\n\n"
    "Evaluate a converted SNN on the test set: accuracy after every step t = 1..T (dt = 1 ms),\n"
    "spikes per image per layer, synaptic operations per image against the ANN's\n"
    "multiply-accumulates, wall time.\n\n"
    "  --steps T         time steps (default 100)\n"
    "  --backend X       clocked (time-stepped batches, default), event (the event-driven engine),\n"
    "                    or both (clocked, then event; prints their agreement)\n"
    "  --limit N         first N test images (default all 10000)\n"
    "  --coding X        current (constant current from pixel intensity, default) or poisson\n"
    "  --v-init F        initial membrane as a fraction of threshold (default: the file's)\n"
    "  --record FILE     spikes of the chosen images as SONATA HDF5, one population per layer\n"
    "  --record-images L comma-separated image indices to record (default 0); image r of the\n"
    "                    list is shifted by r*T ms\n"
    "  --json FILE       the whole curve and the counts as JSON\n"
    "  --plot FILE       latency-accuracy curve as PNG (PLplot pngcairo)\n"
    "  --delay MS        event backend: synaptic delay per layer (default 0.1)\n"
    "  --seed N          Poisson input streams (default 1); GAN: noise vectors\n"
    "  --threads N       OpenMP threads, both backends (default: OMP_NUM_THREADS or all cores)\n"
    "GAN.h5 (a `spikebridge train gan` file): its generator is converted with signed IF neurons and\n"
    "run on N noise vectors (default 1000); prints the mean pixel difference to the ANN generator\n"
    "after every T, and with --fid-model the Frechet distances (ANN, SNN vs real test images).\n";

/* A GAN file: convert its generator, run it on noise, compare with the ANN generator. */
static int eval_gan(const char *path, const char *data, int steps, size_t n, uint64_t seed, const char *fid_model,
                    const char *png) {
  sb_convert_opts co;
  sb_convert_opts_default(&co);
  sb_convert_gan_result g;
  int rc = sb_convert_gan(path, &co, steps, n, seed, &g);
  if (rc) return sb_cli_fail(rc);
  printf("eval %s: generator converted with signed IF neurons, %zu noise vectors, T = %d steps of 1 ms\n", path, n, steps);
  printf("  lambda per layer:");
  for (int l = 0; l < g.n_layers; l++) printf(" %.4g", g.lambda[l]);
  printf("\n\n  %6s %22s\n", "T", "mean |SNN - ANN| pixel");
  static const int marks[] = {1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000};
  int last = 0;
  for (size_t k = 0; k < sizeof marks / sizeof *marks && marks[k] <= steps; k++)
    printf("  %6d %22.5f\n", last = marks[k], g.mae_t[marks[k] - 1]);
  if (last != steps) printf("  %6d %22.5f\n", steps, g.mae);
  printf("\n  spikes per sample (+ and -):");
  for (int l = 0; l < g.n_layers - 1; l++) printf(" %.1f", g.spikes[l] / (double)n);
  printf("\n");
  if (fid_model) {   /* Frechet distance to real test images, features of the CNN's penultimate layer */
    sb_model *cnn = NULL;
    sb_dataset d;
    if ((rc = sb_model_load(&cnn, fid_model))) goto fail;
    if ((rc = sb_fmnist_load(data, "test", &d))) { sb_model_free(cnn); goto fail; }
    size_t m = n < d.n ? n : d.n, isz = (size_t)d.h * (size_t)d.w;
    int layer = cnn->n_layers - 2, dim = (int)sb_shape_size(cnn->layers[layer].out);
    float *real = malloc(m * isz * sizeof *real), *fr = malloc(m * (size_t)dim * sizeof *fr),
          *fa = malloc(m * (size_t)dim * sizeof *fa), *fs = malloc(m * (size_t)dim * sizeof *fs);
    double fd_a = 0, fd_s = 0, fd_as = 0;
    if (!real || !fr || !fa || !fs) rc = SB_ENOMEM;
    for (size_t i = 0; !rc && i < m * isz; i++) real[i] = d.images[i] / 255.0f;
    if (!rc) rc = sb_model_features(cnn, layer, real, m, fr);
    if (!rc) rc = sb_model_features(cnn, layer, g.ann, m, fa);
    if (!rc) rc = sb_model_features(cnn, layer, g.snn, m, fs);
    if (!rc) rc = sb_frechet_distance(fa, m, fr, m, dim, &fd_a);
    if (!rc) rc = sb_frechet_distance(fs, m, fr, m, dim, &fd_s);
    if (!rc) rc = sb_frechet_distance(fs, m, fa, m, dim, &fd_as);
    if (!rc)
      printf("  Frechet distance (%s layer %d, %d features, %zu images): ANN vs real %.3f, SNN vs real %.3f, "
             "SNN vs ANN %.3f\n", fid_model, layer, dim, m, fd_a, fd_s, fd_as);
    free(real); free(fr); free(fa); free(fs);
    sb_model_free(cnn);
    sb_dataset_free(&d);
    if (rc) goto fail;
  }
  if (png) {   /* 8 ANN samples above the same 8 noise vectors through the SNN */
    int k = (int)(n < 8 ? n : 8), s = 28, gap = 2, Wd = k * (s + gap) + gap, H = 2 * (s + gap) + gap;
    uint8_t *pix = calloc((size_t)Wd * (size_t)H, 1);
    if (!pix) { rc = SB_ENOMEM; goto fail; }
    for (int row = 0; row < 2; row++)
      for (int i = 0; i < k; i++)
        for (int y = 0; y < s; y++)
          for (int x = 0; x < s; x++) {
            float v = (row ? g.snn : g.ann)[(size_t)i * 784 + (size_t)(y * s + x)];
            v = v < 0 ? 0 : v > 1 ? 1 : v;
            pix[(size_t)(row * (s + gap) + gap + y) * (size_t)Wd + (size_t)(i * (s + gap) + gap + x)] = (uint8_t)lrintf(v * 255);
          }
    rc = sb_png_write_gray(png, pix, Wd, H);
    free(pix);
    if (rc) goto fail;
    printf("  %s: ANN samples (top) and the spiking generator's (bottom) for the same noise\n", png);
  }
  printf("\n  wall time %.2f s\n", g.wall);
  sb_convert_gan_result_free(&g);
  return 0;
fail:
  sb_convert_gan_result_free(&g);
  return sb_cli_fail(rc);
}

static int is_gan(const char *path) {
  hid_t f;
  sb_h5_quiet();
  if (sb_h5_open_read(path, &f)) { sb_error_clear(); return 0; }
  char *fmt = NULL;
  int ok = sb_h5_attr_read_string(f, "format", &fmt) == SB_OK && !strcmp(fmt, "spikebridge-gan");
  sb_free(fmt);
  sb_error_clear();
  H5Fclose(f);
  return ok;
}

static int plot_curve(const char *path, const sb_convert_result *r, double ann_acc, const char *title) {
  int T = r->steps;
  PLFLT *x = malloc((size_t)T * sizeof *x), *y = malloc((size_t)T * sizeof *y);
  if (!x || !y) {
    free(x);
    free(y);
    return 1;
  }
  double lo = 100;
  for (int t = 0; t < T; t++) {
    x[t] = log10((double)t + 1);
    y[t] = 100.0 * (double)r->correct[t] / (double)r->n_images;
    if (y[t] < lo) lo = y[t];
  }
  plsdev("pngcairo");
  plsfnam(path);
  plsetopt("geometry", "800x500");
  plscolbg(255, 255, 255);
  plscol0(15, 0, 0, 0);   /* axes and labels black on the white background */
  plinit();
  plcol0(15);
  double ymin = floor(lo / 10) * 10;
  if (ymin > ann_acc - 5) ymin = ann_acc - 5;
  plenv(0, log10((double)T) > 0 ? log10((double)T) : 1, ymin, 100, 0, 10);
  pllab("time steps T (1 ms each)", "test accuracy (%)", title);
  plcol0(9);
  plwidth(2);
  plline(T, x, y);
  if (ann_acc > 0) {
    PLFLT ax[2] = {0, log10((double)T) > 0 ? log10((double)T) : 1}, ay[2] = {ann_acc, ann_acc};
    plcol0(1);
    pllsty(2);
    plline(2, ax, ay);
    plptex(ax[0] + 0.02, ann_acc + 0.5, 1, 0, 0, "ANN");
  }
  plend();
  free(x);
  free(y);
  return 0;
}

static int write_json(const char *path, const sb_convert_net *net, const sb_convert_result *r, double ann_acc,
                      const char *backend, const char *coding, double v_init) {
  json_t *o = json_object();
  double n = (double)r->n_images;
  json_object_set_new(o, "backend", json_string(backend));
  json_object_set_new(o, "coding", json_string(coding));
  json_object_set_new(o, "v_init", json_real(v_init));
  json_object_set_new(o, "norm", json_string(net->norm));
  json_object_set_new(o, "reset", json_string(net->reset_zero ? "zero" : "subtract"));
  json_object_set_new(o, "calib_steps", json_integer(net->calib_steps));
  json_object_set_new(o, "images", json_integer((json_int_t)r->n_images));
  json_object_set_new(o, "steps", json_integer(r->steps));
  json_object_set_new(o, "dt_ms", json_real(1.0));
  if (ann_acc >= 0) json_object_set_new(o, "ann_accuracy", json_real(ann_acc));
  json_object_set_new(o, "ann_macs_per_image", json_real(net->ann_macs));
  json_object_set_new(o, "input_macs_per_image", json_real(r->input_macs));
  json_object_set_new(o, "wall_s", json_real(r->wall));
  json_t *acc = json_array(), *syn = json_array();
  for (int t = 0; t < r->steps; t++) {
    json_array_append_new(acc, json_real(100.0 * (double)r->correct[t] / n));
    json_array_append_new(syn, json_real(r->synops[t] / n));
  }
  json_object_set_new(o, "accuracy", acc);
  json_object_set_new(o, "synops_per_image", syn);
  json_t *ls = json_array();
  for (int l = 0; l < r->n_layers; l++) {
    json_t *e = json_object();
    json_object_set_new(e, "name", json_string(net->layers[l].name));
    json_object_set_new(e, "neurons", json_integer((json_int_t)((size_t)net->layers[l].out_c * (size_t)net->layers[l].out_h *
                                                                (size_t)net->layers[l].out_w)));
    json_object_set_new(e, "spikes_per_image", json_real(r->spikes[l] / n));
    json_object_set_new(e, "synops_in_per_image", json_real(r->layer_synops[l] / n));
    json_array_append_new(ls, e);
  }
  json_object_set_new(o, "layers", ls);
  json_object_set_new(o, "maxpool_comparisons_per_image", json_real(r->maxpool_cmp / n));
  int rc = json_dump_file(o, path, JSON_INDENT(1) | JSON_REAL_PRECISION(8));
  json_decref(o);
  return rc;
}

int sb_cmd_eval(int argc, char **argv) {
  static const struct option opts[] = {
      {"data", required_argument, 0, 1},     {"steps", required_argument, 0, 2},
      {"backend", required_argument, 0, 3},  {"limit", required_argument, 0, 4},
      {"record", required_argument, 0, 5},   {"record-images", required_argument, 0, 6},
      {"coding", required_argument, 0, 7},   {"v-init", required_argument, 0, 8},
      {"seed", required_argument, 0, 9},     {"json", required_argument, 0, 10},
      {"plot", required_argument, 0, 11},    {"delay", required_argument, 0, 12},
      {"fid-model", required_argument, 0, 13}, {"threads", required_argument, 0, 14},
      {"help", no_argument, 0, 'h'},         {"quiet", no_argument, 0, 'q'},
      {0, 0, 0, 0}};
  sb_convert_eval_opts o;
  sb_convert_eval_opts_default(&o);
  const char *data = NULL, *record = NULL, *recimg = "0", *json = NULL, *plot = NULL, *fid = NULL;
  int recimg_given = 0;
  int event = 0;
  long limit = -1, lv;
  sb_cli_getopt_reset();
  int c;
  while ((c = sb_cli_getopt("eval", usage, argc, argv, ":hq", opts)) != -1) {
    if (c == SB_CLI_HELP) return 0;
    if (c == SB_CLI_BADOPT) return 2;
    switch (c) {
      case 'q': sb_quiet = 1; break;
      case 1: data = optarg; break;
      case 2:
        if (sb_cli_long("eval", "--steps", optarg, 1, 100000, &lv)) return 2;
        o.steps = (int)lv;
        break;
      case 3:
        if (!strcmp(optarg, "clocked")) event = 0;
        else if (!strcmp(optarg, "event")) event = 1;
        else if (!strcmp(optarg, "both")) event = 2;
        else return sb_cli_usage_error("eval", "--backend: expected clocked, event or both (got '%s')", optarg);
        break;
      case 4:
        if (sb_cli_long("eval", "--limit", optarg, 1, 100000000, &limit)) return 2;
        break;
      case 5: record = optarg; if (sb_output_check(record)) return sb_cli_fail(SB_EINVAL); break;
      case 6: recimg = optarg; recimg_given = 1; break;
      case 7:
        if (!strcmp(optarg, "current")) o.coding = SB_CODING_CURRENT;
        else if (!strcmp(optarg, "poisson")) o.coding = SB_CODING_POISSON;
        else return sb_cli_usage_error("eval", "--coding: expected current or poisson (got '%s')", optarg);
        break;
      case 8:
        if (sb_cli_double("eval", "--v-init", optarg, &o.v_init)) return 2;
        if (!(o.v_init >= 0 && o.v_init < 1)) return sb_cli_usage_error("eval", "--v-init: must be in [0, 1) (got %s)", optarg);
        break;
      case 9:
        if (sb_cli_long("eval", "--seed", optarg, 0, 0x7fffffffL, &lv)) return 2;
        o.seed = (uint64_t)lv;
        break;
      case 10: json = optarg; if (sb_output_check(json)) return sb_cli_fail(SB_EINVAL); break;
      case 11: plot = optarg; if (sb_output_check(plot)) return sb_cli_fail(SB_EINVAL); break;
      case 12:
        if (sb_cli_double("eval", "--delay", optarg, &o.delay)) return 2;
        if (!(o.delay > 0 && o.delay <= 1)) return sb_cli_usage_error("eval", "--delay: must be in (0, 1] ms (got %s)", optarg);
        break;
      case 13: fid = optarg; break;
      case 14:
        if (sb_cli_long("eval", "--threads", optarg, 1, 1024, &lv)) return 2;
        o.threads = (int)lv;
#ifdef _OPENMP
        omp_set_num_threads((int)lv);
#endif
        break;
      default: break;
    }
  }
  if (optind != argc - 1) return sb_cli_usage_error("eval", "expected one SNN.h5 argument");
  const char *path = argv[optind];
  if (recimg_given && !record) return sb_cli_usage_error("eval", "--record-images: needs --record OUT.h5 (the images' spikes go there)");
  if (sb_output_not_input(record, path) || sb_output_not_input(json, path) || sb_output_not_input(plot, path))
    return sb_cli_fail(SB_EINVAL);
  {   /* two outputs under one name: the second would replace the first */
    const char *outs[3] = {record, json, plot}, *flags[3] = {"--record", "--json", "--plot"};
    for (int i = 0; i < 3; i++)
      for (int j = i + 1; j < 3; j++)
        if (outs[i] && outs[j] && (!strcmp(outs[i], outs[j]) || sb_output_not_input(outs[j], outs[i]))) {
          sb_error_clear();
          return sb_cli_usage_error("eval", "%s and %s name the same file '%s'", flags[i], flags[j], outs[i]);
        }
  }
  if (is_gan(path)) return eval_gan(path, data, o.steps, limit > 0 ? (size_t)limit : 1000, o.seed, fid, plot);
  sb_convert_net *net = NULL;
  int rc = sb_convert_load(&net, path);
  if (rc) return sb_cli_fail(rc);
  sb_dataset d;
  if ((rc = sb_fmnist_load(data, "test", &d))) {
    sb_convert_net_free(net);
    return sb_cli_fail(rc);
  }
  int status = 0;
  size_t *rec = NULL;
  sb_convert_result r;
  memset(&r, 0, sizeof r);
  if (d.h != net->in_h || d.w != net->in_w) {
    SB_SET_ERROR(SB_EINVAL, "%s: input_shape (1, %d, %d) does not match the test images (%dx%d)", path, net->in_h,
                 net->in_w, d.h, d.w);
    status = sb_cli_fail(SB_EINVAL);
    goto out;
  }
  size_t n = limit > 0 && (size_t)limit < d.n ? (size_t)limit : d.n;
  if (limit > 0 && (size_t)limit > d.n)   /* not silently fewer than asked for */
    fprintf(stderr, "spikebridge eval: warning: --limit %ld: the test set has %zu images; evaluating all %zu\n", limit, d.n,
            d.n);
  if (record) {   /* parse the image list */
    size_t rl = strlen(recimg);
    if (!rl || recimg[0] == ',' || recimg[rl - 1] == ',' || strstr(recimg, ",,")) {
      status = sb_cli_usage_error("eval", "--record-images: expected image indices I,J,... without empty entries (got '%s')",
                                  recimg);
      goto out;
    }
    size_t cap = 1;
    for (const char *p = recimg; *p; p++) cap += *p == ',';
    rec = calloc(cap, sizeof *rec);
    char *dup = strdup(recimg), *save = NULL;
    if (!rec || !dup) {
      free(dup);
      status = sb_cli_fail(SB_ENOMEM);
      goto out;
    }
    for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
      long v;
      if (sb_cli_long("eval", "--record-images", tok, 0, (long)n - 1, &v)) {
        free(dup);
        status = 2;
        goto out;
      }
      for (size_t q = 0; q < o.n_record; q++)
        if (rec[q] == (size_t)v) {
          free(dup);
          status = sb_cli_usage_error("eval", "--record-images: image %ld is listed twice", v);
          goto out;
        }
      rec[o.n_record++] = (size_t)v;
    }
    free(dup);
    o.record = rec;
  }
  if (event)   /* before any output: the event engine has no maxpool gates */
    for (int l = 0; l < net->n_layers; l++)
      if (net->layers[l].kind == SB_CONVERT_MAXPOOL) {
        SB_SET_ERROR(SB_EUNSUPPORTED, "%s: /layers/%03d (%s): maxpool gates run on the clocked backend only (use "
                     "--backend clocked)", path, l, net->layers[l].name);
        status = sb_cli_fail(SB_EUNSUPPORTED);
        goto out;
      }
  const char *backend = event == 1 ? "event" : event == 2 ? "clocked and event (compared)" : "clocked";
  double v_init = o.v_init >= 0 ? o.v_init : net->v_init;
  printf("eval %s: %zu test images, T = %d steps of 1 ms, backend %s, input %s, v_init %g, reset %s\n", path, n,
         o.steps, backend, o.coding ? "poisson" : "constant current", v_init, net->reset_zero ? "zero" : "subtract");
  if (net->calib_steps) {
    printf("  initial membranes calibrated per channel for T = %d (convert --calibrate)\n", net->calib_steps);
    if (v_init != net->v_init || o.coding)
      printf("  note: the calibration was made with v_init %g and constant-current input; this run differs\n",
             net->v_init);
  }
  rc = event == 1 ? sb_convert_eval_event(net, d.images, d.labels, n, &o, &r)
                  : sb_convert_eval_clocked(net, d.images, d.labels, n, &o, &r);
  if (rc) {
    status = sb_cli_fail(rc);
    goto out;
  }
  if (event == 2) {   /* the same images on the engine, then the agreement */
    sb_convert_result e;
    sb_convert_eval_opts oe = o;
    oe.n_record = 0;
    oe.record = NULL;
    if ((rc = sb_convert_eval_event(net, d.images, d.labels, n, &oe, &e))) {
      status = sb_cli_fail(rc);
      goto out;
    }
    size_t same = 0;
    for (size_t i = 0; i < n; i++) same += r.pred[i] == e.pred[i];
    printf("backends (clocked vs event, delay %g ms per layer): same class for %zu/%zu images (%.2f%%); "
           "accuracy at T = %d: %.2f%% vs %.2f%%; wall %.2f s vs %.2f s\n", o.delay, same, n,
           100.0 * (double)same / (double)n, o.steps, 100.0 * (double)r.correct[o.steps - 1] / (double)n,
           100.0 * (double)e.correct[o.steps - 1] / (double)n, r.wall, e.wall);
    printf("  %-14s %14s %14s %9s\n", "layer", "clocked/img", "event/img", "diff %");
    for (int l = 0; l < net->n_layers; l++)
      printf("  %-14s %14.2f %14.2f %+9.3f\n", net->layers[l].name, r.spikes[l] / (double)n, e.spikes[l] / (double)n,
             r.spikes[l] > 0 ? 100.0 * (e.spikes[l] - r.spikes[l]) / r.spikes[l] : 0.0);
    printf("\nclocked backend:\n");
    sb_convert_result_free(&e);
  }
  double ann_acc = -1;
  size_t agree = 0;
  if (net->n_ann_pred >= n) {
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
      ok += net->ann_pred[i] == d.labels[i];
      agree += net->ann_pred[i] == r.pred[i];
    }
    ann_acc = 100.0 * (double)ok / (double)n;
  } else if (!net->n_ann_pred) {
    printf("  note: %s holds no ANN predictions (converted with --no-ann-eval): no ANN-SNN column\n", path);
  } else {
    printf("  note: %s holds ANN predictions for %zu images only, fewer than the %zu evaluated: no ANN column\n", path,
           net->n_ann_pred, n);
  }
  /* the latency-accuracy table at selected steps */
  static const int marks[] = {1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 75, 100, 125, 150, 200,
                              250, 300, 400, 500, 750, 1000, 2000, 5000, 10000, 20000, 50000, 100000};
  printf("\n  %6s %9s %9s %14s %9s\n", "T", "SNN acc%", "ANN-SNN", "synops/img", "x ANN MAC");
  int T = o.steps;
  for (size_t k = 0; k <= sizeof marks / sizeof *marks; k++) {
    int t = k < sizeof marks / sizeof *marks ? marks[k] : T;
    if (t > T) t = T;
    double acc = 100.0 * (double)r.correct[t - 1] / (double)n, so = r.synops[t - 1] / (double)n;
    char diff[16] = "";
    if (ann_acc >= 0) snprintf(diff, sizeof diff, "%+.2f", ann_acc - acc);
    printf("  %6d %9.2f %9s %14.4g %9.3f\n", t, acc, diff, so, net->ann_macs > 0 ? so / net->ann_macs : 0);
    if (t == T) break;
  }
  if (ann_acc >= 0) {
    printf("\n  ANN accuracy on these images: %.2f%%; SNN agrees with the ANN on %.2f%% after T = %d\n", ann_acc,
           100.0 * (double)agree / (double)n, T);
    for (int t = 0; t < T; t++)
      if (100.0 * (double)r.correct[t] / (double)n >= ann_acc - 0.3) {
        printf("  first T with accuracy >= ANN - 0.3 points: %d (%.2f%%), %.4g synaptic ops per image = %.3f x the ANN's "
               "%.4g MACs\n", t + 1, 100.0 * (double)r.correct[t] / (double)n, r.synops[t] / (double)n,
               r.synops[t] / (double)n / net->ann_macs, net->ann_macs);
        break;
      }
  }
  printf("\n  %-14s %10s %14s %14s %14s\n", "layer", "neurons", "spikes/img", "rate/step", "synops in/img");
  for (int l = 0; l < net->n_layers; l++) {
    const sb_convert_layer *L = &net->layers[l];
    double nn = (double)L->out_c * L->out_h * L->out_w;
    printf("  %-14s %10.0f %14.1f %14.4f %14.4g\n", L->name, nn, r.spikes[l] / (double)n,
           r.spikes[l] / (double)n / nn / T, r.layer_synops[l] / (double)n);
  }
  if (r.input_macs > 0) printf("  analog input to %s: %.4g MACs per image (once; the constant current)\n", net->layers[0].name, r.input_macs);
  if (r.maxpool_cmp > 0) printf("  maxpool gates: %.4g count comparisons per image\n", r.maxpool_cmp / (double)n);
  printf("\n  wall time %.2f s (%.1f images/s, %s backend)\n", r.wall, (double)n / r.wall, event == 2 ? "clocked" : backend);
  if (json && write_json(json, net, &r, ann_acc, backend, o.coding ? "poisson" : "current", v_init)) {
    SB_SET_ERROR(SB_EIO, "%s: cannot write JSON", json);
    status = sb_cli_fail(SB_EIO);
    goto out;
  }
  if (plot) {
    char title[128];
    snprintf(title, sizeof title, "%s, %s backend, %zu images", net->ann_name, backend, n);
    plot_curve(plot, &r, ann_acc, title);
  }
  if (record) {
    if ((rc = sb_convert_write_spikes(net, &r, record))) {
      status = sb_cli_fail(rc);
      goto out;
    }
    printf("  spikes of %zu image(s) written to %s\n", o.n_record, record);
  }
out:
  free(rec);
  sb_convert_result_free(&r);
  sb_dataset_free(&d);
  sb_convert_net_free(net);
  return status;
}
