/* spikebridge analyze: spike-train statistics per population of a SONATA / NWB / NEST file,
 * as a terminal table, JSON, or PNG figures. Argument parsing and output only; the statistics
 * are in analysis/. */
#include "analysis/analysis.h"
#include "cli/cli.h"

#include <jansson.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "Usage: spikebridge analyze SPIKES.h5 [--population P] [--t-start MS] [--t-stop MS]\n"
    "                           [--bin MS] [--json] [--plot DIR] [--quiet]\n\n"
    "Spike-train statistics per population, as a table, JSON, or figures.\n"
    "Reads SONATA spike files (any population layout, legacy /spikes/gids too), NWB units\n"
    "tables (/units/spike_times), BMTK NWB-1 spike trains and NEST text recordings (.gdf/.dat).\n"
    "Statistics follow Elephant's definitions (see docs/analysis.md).\n\n"
    "  --population P   only population P (default: all)\n"
    "  --t-start MS     start of the analysis window (default 0)\n"
    "  --t-stop MS      end of the window (default: the recording's end from the file, else the last spike)\n"
    "  --bin MS         bin size for Fano factor, PSTH, correlations, synchrony (default 5)\n"
    "  --sigma MS       Gaussian kernel of the smoothed rate (default 2 x bin)\n"
    "  --pairs K        neurons (most active) for pairwise measures (default 20)\n"
    "  --window N       spikes read at a time (default 1048576; the memory bound)\n"
    "  --nodes FILE     SONATA nodes file: neurons without spikes count (rate 0) in the population\n"
    "                   of the same name (NWB files list their units themselves)\n"
    "  --json           print JSON instead of the table\n"
    "  --plot DIR       write PNG figures (raster, rate, ISI histogram, CV distribution) to DIR\n";

static const char *sorting_name(sb_spk_sorting s) {
  switch (s) {
    case SB_SORT_BY_TIME: return "by_time";
    case SB_SORT_BY_ID: return "by_id";
    case SB_SORT_NONE: return "none";
    default: return "unknown";
  }
}

static json_t *jnum(double v) { return isnan(v) || isinf(v) ? json_null() : json_real(v); }

static json_t *jarr(const double *v, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++) json_array_append_new(a, jnum(v[i]));
  return a;
}

static json_t *jstat(double mean, size_t n_defined, size_t n_total) {
  json_t *o = json_object();
  json_object_set_new(o, "mean", jnum(mean));
  json_object_set_new(o, "n_defined", json_integer((json_int_t)n_defined));
  json_object_set_new(o, "n_undefined", json_integer((json_int_t)(n_total - n_defined)));
  return o;
}

static json_t *summary_json(const sb_spk_pop_info *pi, const sb_stats_summary *s) {
  json_t *p = json_object();
  json_object_set_new(p, "population", json_string(s->population));
  json_object_set_new(p, "source", json_string(pi->where ? pi->where : ""));
  json_object_set_new(p, "sorting", json_string(sorting_name(pi->sorting)));
  json_object_set_new(p, "n_spikes_file", json_integer((json_int_t)s->n_spikes_file));
  json_object_set_new(p, "n_spikes", json_integer((json_int_t)s->n_spikes));
  json_object_set_new(p, "n_neurons", json_integer((json_int_t)s->n_neurons));
  if (pi->n_nodes) json_object_set_new(p, "n_nodes", json_integer((json_int_t)pi->n_nodes));
  json_object_set_new(p, "t_start_ms", json_real(s->t_start));
  json_object_set_new(p, "t_stop_ms", json_real(s->t_stop));
  json_object_set_new(p, "bin_ms", json_real(s->bin));
  json_object_set_new(p, "mean_rate_hz", jnum(s->mean_rate));
  json_object_set_new(p, "population_rate_hz", jnum(s->pop_rate));
  json_object_set_new(p, "cv", jstat(s->mean_cv, s->n_cv, s->n_neurons));
  json_object_set_new(p, "cv2", jstat(s->mean_cv2, s->n_cv2, s->n_neurons));
  json_object_set_new(p, "lv", jstat(s->mean_lv, s->n_lv, s->n_neurons));
  json_object_set_new(p, "fano", jstat(s->mean_fano, s->n_fano, s->n_neurons));
  json_t *sync = json_object();
  json_object_set_new(sync, "measure", json_string("golomb_chi"));
  json_object_set_new(sync, "value", jnum(s->chi));
  if (isnan(s->chi)) json_object_set_new(sync, "why_nan", json_string(sb_stats_why(s->why_chi)));
  json_object_set_new(p, "synchrony", sync);
  json_object_set_new(p, "psth_rate_hz", jarr(s->psth, s->n_bins));
  json_t *ir = json_object();
  json_object_set_new(ir, "dt_ms", json_real(s->irate_dt));
  json_object_set_new(ir, "sigma_ms", json_real(s->irate_sigma));
  json_object_set_new(ir, "kernel", json_string("gaussian, cutoff 5 sigma (elephant.statistics.instantaneous_rate)"));
  json_object_set_new(ir, "rate_hz", jarr(s->irate, s->n_irate));
  json_object_set_new(p, "instantaneous_rate", ir);
  json_t *isi = json_object();
  json_object_set_new(isi, "edges_ms", jarr(s->isi_edges, SB_ISI_HIST_BINS + 1));
  json_object_set_new(isi, "counts", jarr(s->isi_hist, SB_ISI_HIST_BINS));
  json_object_set_new(p, "isi_histogram", isi);
  json_t *nv = json_array();
  for (size_t i = 0; i < s->n_neurons; i++) {
    const sb_stats_neuron *r = &s->neurons[i];
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer((json_int_t)r->id));
    json_object_set_new(o, "n", json_integer((json_int_t)r->n));
    json_object_set_new(o, "rate_hz", jnum(r->rate));
    json_object_set_new(o, "cv", jnum(r->cv));
    json_object_set_new(o, "cv2", jnum(r->cv2));
    json_object_set_new(o, "lv", jnum(r->lv));
    json_object_set_new(o, "fano", jnum(r->fano));
    if (isnan(r->cv)) json_object_set_new(o, "why_cv_nan", json_string(sb_stats_why(r->why_cv)));
    if (isnan(r->fano)) json_object_set_new(o, "why_fano_nan", json_string(sb_stats_why(r->why_fano)));
    json_array_append_new(nv, o);
  }
  json_object_set_new(p, "neurons", nv);
  json_t *pr = json_object();
  json_t *ids = json_array();
  for (size_t i = 0; i < s->K; i++) json_array_append_new(ids, json_integer((json_int_t)s->pair_ids[i]));
  json_object_set_new(pr, "ids", ids);
  size_t KK = s->K * s->K;
  json_object_set_new(pr, "corrcoef", jarr(s->corrcoef, KK));
  json_object_set_new(pr, "sttc", jarr(s->sttc, KK));
  json_object_set_new(pr, "van_rossum", jarr(s->van_rossum, KK));
  json_object_set_new(pr, "victor_purpura", jarr(s->victor_purpura, KK));
  json_object_set_new(pr, "mean_corrcoef", jnum(s->mean_corrcoef));
  json_object_set_new(pr, "mean_sttc", jnum(s->mean_sttc));
  json_object_set_new(pr, "truncated_to_200000_spikes", json_boolean(s->pairs_truncated));
  json_object_set_new(pr, "t_stop_ms", json_real(s->pairs_t_stop));
  json_t *cch = json_object();
  json_object_set_new(cch, "lag_bins_max", json_integer((json_int_t)s->cch_L));
  json_object_set_new(cch, "counts", jarr(s->cch, 2 * s->cch_L + 1));
  json_object_set_new(pr, "cch_summed", cch);
  json_object_set_new(p, "pairs", pr);
  json_object_set_new(p, "passes", json_integer(s->passes));
  json_object_set_new(p, "peak_window_spikes", json_integer((json_int_t)s->peak_window_spikes));
  return p;
}

static void fmt(char *buf, size_t n, double v, const char *f) {
  if (isnan(v)) snprintf(buf, n, "nan");
  else snprintf(buf, n, f, v);
}

static void table_row(FILE *out, const sb_stats_summary *s) {
  char r[16], cv[16], cv2[16], lv[16], ff[16], chi[16], cc[16], stc[16];
  fmt(r, sizeof r, s->mean_rate, "%.3f");
  fmt(cv, sizeof cv, s->mean_cv, "%.3f");
  fmt(cv2, sizeof cv2, s->mean_cv2, "%.3f");
  fmt(lv, sizeof lv, s->mean_lv, "%.3f");
  fmt(ff, sizeof ff, s->mean_fano, "%.3f");
  fmt(chi, sizeof chi, s->chi, "%.4f");
  fmt(cc, sizeof cc, s->mean_corrcoef, "%.4f");
  fmt(stc, sizeof stc, s->mean_sttc, "%.4f");
  fprintf(out, "%-12s %10zu %8zu %10s %7s %7s %7s %7s %8s %8s %8s\n", s->population, s->n_spikes, s->n_neurons, r, cv, cv2,
         lv, ff, chi, cc, stc);
}

int sb_cmd_analyze(int argc, char **argv) {
  static const struct option opts[] = {
      {"population", required_argument, 0, 1},
      {"t-start", required_argument, 0, 2},
      {"t-stop", required_argument, 0, 3},
      {"bin", required_argument, 0, 4},
      {"json", no_argument, 0, 5},
      {"plot", required_argument, 0, 6},
      {"sigma", required_argument, 0, 7},
      {"pairs", required_argument, 0, 8},
      {"window", required_argument, 0, 9},
      {"nodes", required_argument, 0, 10},
      {"help", no_argument, 0, 'h'},
      {"quiet", no_argument, 0, 'q'},
      {0, 0, 0, 0}};
  sb_stats_opts o;
  sb_stats_opts_default(&o);
  o.progress = 1;   /* shown only on a terminal, and not with --quiet */
  const char *popname = NULL, *plotdir = NULL, *nodespath = NULL;
  int want_json = 0;
  long lv;
  sb_cli_getopt_reset();
  int c;
  while ((c = sb_cli_getopt("analyze", usage, argc, argv, ":hq", opts)) != -1) {
    if (c == SB_CLI_HELP) return 0;
    if (c == SB_CLI_BADOPT) return 2;
    if (c == 'q') sb_quiet = 1;
    switch (c) {
      case 1: popname = optarg; break;
      case 2: if (sb_cli_double("analyze", "--t-start", optarg, &o.t_start)) return 2; break;
      case 3: if (sb_cli_double("analyze", "--t-stop", optarg, &o.t_stop)) return 2; break;
      case 4: if (sb_cli_double("analyze", "--bin", optarg, &o.bin)) return 2; break;
      case 5: want_json = 1; break;
      case 6: plotdir = optarg; if (sb_output_dir_check(plotdir)) return sb_cli_fail(SB_EINVAL); break;
      case 7: if (sb_cli_double("analyze", "--sigma", optarg, &o.sigma)) return 2; break;
      case 8: if (sb_cli_long("analyze", "--pairs", optarg, 0, 1000, &lv)) return 2; o.n_pairs_neurons = (size_t)lv; break;
      case 9: if (sb_cli_long("analyze", "--window", optarg, 1, 1L << 30, &lv)) return 2; o.window = (size_t)lv; break;
      case 10: nodespath = optarg; break;
      default: break;
    }
  }
  if (argc - optind != 1) return sb_cli_usage_error("analyze", "expected one spike file");
  if (!(o.bin > 0)) return sb_cli_usage_error("analyze", "--bin: must be > 0 ms (got %g)", o.bin);
  if (o.t_start < 0) return sb_cli_usage_error("analyze", "--t-start: must be >= 0 ms (got %g)", o.t_start);
  if (!isnan(o.t_stop) && !(o.t_stop > o.t_start))
    return sb_cli_usage_error("analyze", "--t-stop: must be > --t-start (got %g <= %g)", o.t_stop, o.t_start);
  if (!isnan(o.sigma) && !(o.sigma > 0)) return sb_cli_usage_error("analyze", "--sigma: must be > 0 ms (got %g)", o.sigma);
  const char *path = argv[optind];

  sb_spk_file *f = NULL, *nf = NULL;
  int st = sb_spk_open(path, &f);
  if (st) return sb_cli_fail(st);
  if (nodespath && (st = sb_spk_open(nodespath, &nf)) != SB_OK) st = sb_error_prefix_(st, "--nodes");
  else if (nodespath && sb_spk_file_kind(nf) != SB_SPK_SONATA_NODES)
    st = SB_SET_ERROR(SB_EFORMAT, "%s: --nodes: expected a SONATA nodes file (/nodes/<population>/node_id), got %s",
                      nodespath, sb_spk_kind_name(sb_spk_file_kind(nf)));
  if (st) {
    sb_spk_close(nf);
    sb_spk_close(f);
    return sb_cli_fail(st);
  }
  if (isnan(o.t_stop) && !isnan(sb_spk_t_stop(f)) && !(sb_spk_t_stop(f) > o.t_start)) {
    st = SB_SET_ERROR(SB_EINVAL, "%s: --t-start %g: at or after the end of the recording (%g ms, from the file); expected an "
                      "earlier start", path, o.t_start, sb_spk_t_stop(f));
    sb_spk_close(nf);
    sb_spk_close(f);
    return sb_cli_fail(st);
  }
  int t_stop_from_file = isnan(o.t_stop) && !isnan(sb_spk_t_stop(f)) && sb_spk_t_stop(f) > o.t_start;
  if (t_stop_from_file) o.t_stop = sb_spk_t_stop(f);
  else if (!isnan(o.t_stop) && !isnan(sb_spk_t_stop(f)) && o.t_stop > sb_spk_t_stop(f) * (1 + 1e-12))
    fprintf(stderr, "spikebridge analyze: warning: %s ends at %g ms (from the file); rates up to --t-stop %g ms count the "
            "time after it as silence\n", path, sb_spk_t_stop(f), o.t_stop);
  sb_spk_kind kind = sb_spk_file_kind(f);
  int self_listed = kind == SB_SPK_NWB_UNITS || kind == SB_SPK_NWB_BMTK;
  size_t lo = 0, hi = sb_spk_n_pops(f);
  if (popname) {
    long k = sb_spk_find_pop(f, popname);
    if (k < 0) {
      fprintf(stderr, "spikebridge: error: %s: no population '%s' (have:", path, popname);
      for (size_t i = 0; i < hi; i++) fprintf(stderr, " %s", sb_spk_pop(f, i)->name);
      fprintf(stderr, ")\n");
      sb_spk_close(nf);
      sb_spk_close(f);
      return 2;
    }
    lo = (size_t)k;
    hi = lo + 1;
  }
  /* every population's figure names are checked before anything is computed or drawn: one
   * too long for a file name stopped the plots partway, the earlier ones left behind */
  const char **names = NULL;   /* the populations plotted, for sb_stats_plot_finish */
  int plotdir_new = plotdir && access(plotdir, F_OK) != 0;   /* removed again after an error */
  if (plotdir) {
    names = sb_malloc((hi - lo + 1) * sizeof *names);
    if (!names) st = SB_SET_ERROR(SB_ENOMEM, "cannot list the populations");
    for (size_t p = lo; names && p < hi; p++) names[p - lo] = sb_spk_pop(f, p)->name;
    if (names) st = sb_stats_plot_check(plotdir, names, hi - lo);
    if (st) {
      sb_free(names);
      sb_spk_close(nf);
      sb_spk_close(f);
      return sb_cli_fail(st);
    }
  }
  /* the table (or JSON) goes to memory first and to stdout only when every population was read
   * without error: an error never comes after half a table */
  char *obuf = NULL;
  size_t olen = 0;
  FILE *out = open_memstream(&obuf, &olen);
  if (!out) {
    sb_free(names);
    sb_spk_close(nf);
    sb_spk_close(f);
    return sb_cli_fail(SB_SET_ERROR(SB_ENOMEM, "cannot buffer the output table"));
  }
  json_t *root = want_json ? json_object() : NULL;
  json_t *pops = want_json ? json_array() : NULL;
  if (!want_json) {
    fprintf(out, "%s: %s, %zu population%s\n", path, sb_spk_kind_name(sb_spk_file_kind(f)), sb_spk_n_pops(f),
           sb_spk_n_pops(f) == 1 ? "" : "s");
    fprintf(out, "%-12s %10s %8s %10s %7s %7s %7s %7s %8s %8s %8s\n", "population", "spikes", "neurons", "rate_Hz", "CV",
           "CV2", "LV", "Fano", "chi", "corr", "STTC");
  }
  for (size_t p = lo; p < hi && !st; p++) {
    const sb_spk_pop_info *pi = sb_spk_pop(f, p);
    sb_stats_summary *s = NULL;
    uint64_t *nodes = NULL;
    size_t n_nodes = 0;
    if (nf) {
      long k = sb_spk_find_pop(nf, pi->name);
      if (k < 0) {
        st = SB_SET_ERROR(SB_EINVAL, "%s: --nodes: no node population '%s' for the spikes of that name", nodespath,
                          pi->name);
        break;
      }
      st = sb_spk_node_ids(nf, (size_t)k, &nodes, &n_nodes);
    } else if (self_listed || pi->n_nodes) {
      st = sb_spk_node_ids(f, p, &nodes, &n_nodes);
    }
    o.node_ids = nodes;
    o.n_node_ids = n_nodes;
    /* a window given (--t-stop, or the recording's end from the file) shorter than one bin: PSTH,
     * Fano factor, chi and correlations would all be nan. With the last spike as the end, one short
     * population of several keeps its nan binned measures, with the reason. */
    if (!st && !isnan(o.t_stop) && o.t_stop > o.t_start && (o.t_stop - o.t_start) / o.bin < 2 &&
        sb_stats_n_bins(o.t_start, o.t_stop, o.bin) == 0)
      st = SB_SET_ERROR(SB_EINVAL, "%s: population %s: --bin %g ms is wider than the window [%g, %g] ms (%g ms): no full "
                        "bin for the rate histogram, Fano factor, synchrony and correlations; expected --bin <= %g ms",
                        path, pi->name, o.bin, o.t_start, o.t_stop, o.t_stop - o.t_start, o.t_stop - o.t_start);
    if (!st) st = sb_stats_summarize(f, p, &o, &s);
    if (!st && isnan(o.t_stop) && s->t_last > -INFINITY && !(s->t_stop > s->t_start)) {   /* Elephant raises here */
      st = SB_SET_ERROR(SB_EINVAL, "%s: population %s: the window [%g, %g] ms is empty: --t-start is at or after the last "
                        "spike (%.10g ms), which ends the window without --t-stop; expected an earlier --t-start or a "
                        "--t-stop", path, pi->name, s->t_start, s->t_stop, s->t_last);
      sb_stats_summary_free(s);
      s = NULL;
    }
    if (!st && t_stop_from_file && s->t_last > o.t_stop * (1 + 1e-12)) {   /* the end it claims is wrong */
      st = SB_SET_ERROR(SB_EFORMAT, "%s: population %s has a spike at %.10g ms, after the recording's end %.10g ms that the "
                        "file gives (root attribute t_stop, or time in a checkpoint): it does not match the data (give "
                        "--t-stop to analyse anyway)", path, pi->name, s->t_last, o.t_stop);
      sb_stats_summary_free(s);
      s = NULL;
    }
    sb_free(nodes);
    o.node_ids = NULL;
    o.n_node_ids = 0;
    if (st) break;
    if (want_json) json_array_append_new(pops, summary_json(pi, s));
    else table_row(out, s);
    /* staged under temporary names: renamed once every population succeeded (an error in a
     * later population left the earlier ones' figures behind) */
    if (plotdir) st = sb_stats_plot_stage(f, p, s, plotdir);
    if (!want_json && !st) {
      fprintf(out, "  %s: window [%g, %g] ms%s, bin %g ms, sorting %s%s", s->population, s->t_start, s->t_stop,
             t_stop_from_file ? " (end of the recording, from the file)" : "", s->bin, sorting_name(pi->sorting), pi->n_nodes ? "" : "\n");
      if (pi->n_nodes) fprintf(out, ", %zu nodes in file\n", pi->n_nodes);
      if (nf || self_listed || pi->n_nodes) fprintf(out, "  %s: neurons = all listed nodes (%s), silent ones included\n", s->population,
                                    nf ? nodespath : "from the file itself");
      if (!s->n_neurons)
        fprintf(out, "  %s: no spikes and no neuron count (no n_nodes attribute, no --nodes): rates and statistics "
                "undefined (nan)%s\n", s->population, s->t_stop > s->t_start ? "" : "; no recording length in the file either (give --t-stop)");
      if (s->n_neurons) {
        size_t few = 0, zero_cv = 0, zero_pair = 0;   /* the reasons, counted (a NaN without one puzzled) */
        for (size_t i = 0; i < s->n_neurons; i++) {
          const sb_stats_neuron *r = &s->neurons[i];
          if (r->why_cv == SB_WHY_FEW_SPIKES || r->why_cv == SB_WHY_NO_SPIKES) few++;
          else if (r->why_cv == SB_WHY_ZERO_INTERVAL) zero_cv++;
          else if (r->why_cv2 == SB_WHY_ZERO_INTERVAL) zero_pair++;
        }
        if (few) fprintf(out, "  %s: CV/CV2/LV undefined (nan) for %zu neuron(s): fewer than 3 spikes\n", s->population, few);
        if (zero_cv)
          fprintf(out, "  %s: CV/CV2/LV undefined (nan) for %zu neuron(s): all their intervals are 0 (coincident spikes)\n",
                  s->population, zero_cv);
        if (zero_pair)
          fprintf(out, "  %s: CV2/LV undefined (nan) for %zu neuron(s): two consecutive intervals sum to 0 (coincident "
                  "spikes)\n", s->population, zero_pair);
        if (isnan(s->chi)) fprintf(out, "  %s: chi nan: %s\n", s->population, sb_stats_why(s->why_chi));
        if (s->K > 1)
          fprintf(out, "  %s: pairs over the %zu most active neurons (corr: bin %g ms; STTC dt %g ms)\n", s->population,
                 s->K, s->bin, o.sttc_dt);
        if (s->K > 1 && s->pairs_truncated)   /* the trains are kept up to 200000 spikes each */
          fprintf(out, "  %s: a pair train has more than 200000 spikes: the pairs are over [%g, %g) ms, where every "
                  "train is complete\n", s->population, s->t_start, s->pairs_t_stop);
      }
      if (plotdir) {   /* the names sb_stats_plot writes: '/' and ' ' become '_', no doubled '/' */
        char fname[256];
        snprintf(fname, sizeof fname, "%s", s->population);
        for (char *q = fname; *q; q++) if (*q == '/' || *q == ' ') *q = '_';
        int dl = (int)strlen(plotdir);
        while (dl > 1 && plotdir[dl - 1] == '/') dl--;
        fprintf(out, "  %s: figures in %.*s/%s_{raster,rate,isi,cv}.png\n", s->population, dl, plotdir, fname);
      }
    }
    sb_stats_summary_free(s);
  }
  if (!st && want_json) {
    json_object_set_new(root, "file", json_string(path));
    json_object_set_new(root, "kind", json_string(sb_spk_kind_name(sb_spk_file_kind(f))));
    json_object_set_new(root, "populations", pops);
    json_dumpf(root, out, JSON_INDENT(1) | JSON_REAL_PRECISION(17));
    fprintf(out, "\n");
    pops = NULL;
  }
  if (plotdir) {
    int fst = sb_stats_plot_finish(plotdir, names, hi - lo, !st);
    if (!st) st = fst;
    if (st && plotdir_new) rmdir(plotdir);   /* only if empty: nothing of ours is left in it */
  }
  sb_free(names);
  json_decref(pops);
  json_decref(root);
  sb_spk_close(nf);
  sb_spk_close(f);
  fclose(out);
  if (!st && olen) fwrite(obuf, 1, olen, stdout);
  free(obuf);
  if (st) return sb_cli_fail(st);
  return 0;
}
