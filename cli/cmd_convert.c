/* spikebridge convert: ANN model file -> converted SNN file (models/convert). Parsing only. */
#include "cli/cli.h"
#include "models/convert/convert.h"

#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static const char usage[] =
    "Usage: spikebridge convert MODEL.h5 [-o SNN.h5] [--norm max|percentile:99.9]\n"
    "                           [--reset subtract|zero] [--v-init 0|0.5] [--readout membrane|spikes]\n"
    "                           [--samples N] [--pool-norm data|inherit,...] [--calibrate T]\n"
    "                           [--layer-norm I=RULE,...] [--data DIR] [--threads N] [--quiet]\n\n"
    "Convert a trained ANN into a spiking network of non-leaky integrate-and-fire neurons\n"
    "(Rueckauer et al. 2017): ReLU units -> IF neurons, weights normalised per layer from the\n"
    "activations of N training images (default 1000, evenly strided), biases -> constant currents,\n"
    "batchnorm folded, avgpool -> fixed-weight layer, maxpool -> spike gate, qcfs -> threshold = clip.\n\n"
    "  -o FILE          output (default: MODEL stem + .snn.h5)\n"
    "  --norm X         max, or percentile:P (default percentile:99.9)\n"
    "  --reset X        subtract (default) or zero\n"
    "  --v-init F       initial membrane as a fraction of threshold (default 0.5, Bu et al.\n"
    "                   2022; 0 is the classic start of Rueckauer et al. 2017)\n"
    "  --readout X      membrane (accumulated potential, default) or spikes (spike count)\n"
    "  --samples N      training images for normalisation (default 1000)\n"
    "  --pool-norm L    lambda of the avgpool layers, a comma list in layer order (the last\n"
    "                   repeats): data (default: percentile/max of the pooled activations) or\n"
    "                   inherit (the input's lambda, weight 1/K^2: the exact average of the\n"
    "                   input spike counts; fewer spikes). inherit,data: the first pool\n"
    "                   inherits, the second takes its lambda from data\n"
    "  --calibrate T    calibrate the initial membrane per channel for T steps (Li et al. 2021):\n"
    "                   layer by layer, the charge a channel's neurons lack after T steps on the\n"
    "                   sample images, against the ANN's activations, is added at t = 0; it helps\n"
    "                   most near T and fades as 1/T (default: off)\n"
    "  --layer-norm L   per-layer rule replacing --norm for the layers named, I=max or\n"
    "                   I=percentile:P, comma separated; I = the # column of the table convert prints\n"
    "  --no-ann-eval    do not store the ANN's test-set predictions\n"
    "  --data DIR       Fashion-MNIST directory\n"
    "  --threads N      OpenMP threads (default: OMP_NUM_THREADS or all cores)\n";

int sb_cmd_convert(int argc, char **argv) {
  static const struct option opts[] = {
      {"output", required_argument, 0, 'o'}, {"norm", required_argument, 0, 1},
      {"reset", required_argument, 0, 2},    {"data", required_argument, 0, 3},
      {"v-init", required_argument, 0, 4},   {"readout", required_argument, 0, 5},
      {"samples", required_argument, 0, 6},  {"no-ann-eval", no_argument, 0, 7},
      {"pool-norm", required_argument, 0, 8}, {"calibrate", required_argument, 0, 9},
      {"layer-norm", required_argument, 0, 10}, {"threads", required_argument, 0, 11},
      {"help", no_argument, 0, 'h'},         {"quiet", no_argument, 0, 'q'},
      {0, 0, 0, 0}};
  sb_convert_opts o;
  sb_convert_opts_default(&o);
  const char *outp = NULL;
  sb_cli_getopt_reset();
  int c;
  long lv;
  while ((c = sb_cli_getopt("convert", usage, argc, argv, ":ho:q", opts)) != -1) {
    if (c == SB_CLI_HELP) return 0;
    if (c == SB_CLI_BADOPT) return 2;
    switch (c) {
      case 'o': outp = optarg; if (sb_output_check(outp)) return sb_cli_fail(SB_EINVAL); break;
      case 'q': sb_quiet = 1; break;
      case 1:
        if (!strcmp(optarg, "max")) o.norm_max = 1;
        else if (!strncmp(optarg, "percentile:", 11)) {
          if (sb_cli_double("convert", "--norm percentile", optarg + 11, &o.percentile)) return 2;
          if (!(o.percentile > 0 && o.percentile <= 100))
            return sb_cli_usage_error("convert", "--norm: percentile must be in (0, 100] (got %s)", optarg + 11);
        } else
          return sb_cli_usage_error("convert", "--norm: expected max or percentile:P (got '%s')", optarg);
        break;
      case 2:
        if (!strcmp(optarg, "subtract")) o.reset_zero = 0;
        else if (!strcmp(optarg, "zero")) o.reset_zero = 1;
        else return sb_cli_usage_error("convert", "--reset: expected subtract or zero (got '%s')", optarg);
        break;
      case 3: o.data_dir = optarg; break;
      case 4:
        if (sb_cli_double("convert", "--v-init", optarg, &o.v_init)) return 2;
        if (!(o.v_init >= 0 && o.v_init < 1))
          return sb_cli_usage_error("convert", "--v-init: must be in [0, 1) (got %s)", optarg);
        break;
      case 8: o.pool_norm = optarg; break;
      case 5:
        if (!strcmp(optarg, "membrane")) o.readout_spikes = 0;
        else if (!strcmp(optarg, "spikes")) o.readout_spikes = 1;
        else return sb_cli_usage_error("convert", "--readout: expected membrane or spikes (got '%s')", optarg);
        break;
      case 6:
        if (sb_cli_long("convert", "--samples", optarg, 1, 60000, &lv)) return 2;
        o.n_samples = (int)lv;
        break;
      case 7: o.eval_ann = 0; break;
      case 10: o.layer_norm = optarg; break;
      case 9:
        if (sb_cli_long("convert", "--calibrate", optarg, 1, 100000, &lv)) return 2;
        o.calib_steps = (int)lv;
        break;
      case 11:
        if (sb_cli_long("convert", "--threads", optarg, 1, 1024, &lv)) return 2;
#ifdef _OPENMP
        omp_set_num_threads((int)lv);
#endif
        break;
      default: break;
    }
  }
  if (optind != argc - 1) return sb_cli_usage_error("convert", "expected one MODEL.h5 argument");
  const char *in = argv[optind];
  char buf[4096];
  if (!outp) {
    size_t len = strlen(in);
    if (len > 3 && !strcmp(in + len - 3, ".h5")) len -= 3;
    snprintf(buf, sizeof buf, "%.*s.snn.h5", (int)len, in);
    outp = buf;
  }
  if (sb_output_not_input(outp, in)) return sb_cli_fail(SB_EINVAL);
  double t0 = sb_wall_time();
  sb_convert_net *net = NULL;
  int rc = sb_convert_file(&net, in, &o);
  if (rc) return sb_cli_fail(rc);
  rc = sb_convert_save(net, outp);
  if (rc) {
    sb_convert_net_free(net);
    return sb_cli_fail(rc);
  }
  printf("converted %s -> %s (%.1f s)\n", in, outp, sb_wall_time() - t0);
  printf("  norm %s over %d training images, reset by %s, v_init %g x threshold, readout %s\n", net->norm,
         net->n_norm_samples, net->reset_zero ? "zero" : "subtraction", net->v_init,
         net->readout_spikes ? "spike count" : "membrane potential");
  if (net->calib_steps) printf("  initial membranes calibrated per channel for T = %d\n", net->calib_steps);
  printf("  %-4s %-14s %-10s %-16s %-12s %s\n", "#", "population", "ANN layers", "shape", "lambda", "projection");
  for (int i = 0; i < net->n_layers; i++) {
    const sb_convert_layer *L = &net->layers[i];
    char sh[48];
    if (L->out_rank == 3) snprintf(sh, sizeof sh, "%dx%dx%d", L->out_c, L->out_h, L->out_w);
    else snprintf(sh, sizeof sh, "%d", L->out_c);
    const char *proj = L->kind == SB_CONVERT_DENSE ? "dense" : L->kind == SB_CONVERT_CONV ? "conv kernel"
                       : L->kind == SB_CONVERT_AVGPOOL ? "avgpool (fixed weight)" : "maxpool gate";
    printf("  %-4d %-14s %-10s %-16s %-12.5g %s%s\n", i, L->name, L->ann_layers, sh, L->lambda, proj,
           L->spiking ? "" : ", membrane readout");
  }
  if (net->n_ann_pred) printf("  ANN predictions stored for %zu test images\n", net->n_ann_pred);
  printf("  ANN multiply-accumulates per image: %.4g\n", net->ann_macs);
  sb_convert_net_free(net);
  return 0;
}
