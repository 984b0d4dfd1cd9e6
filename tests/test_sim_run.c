/* `spikebridge run`: bad model files (exit 2, message naming the file and JSON path, no output
 * file), the SONATA spike and report layout of the output, --set overrides, thread invariance of
 * the written spike datasets, and the closing summary. */
#include "sim/sim.h"
#include "tests/testutil.h"

static char out[65536];

static const char *write_model(const char *name, const char *text) {
  static char path[512];
  snprintf(path, sizeof path, "%s/%s", sb_test_tmpdir(), name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  return path;
}

#define GOOD_POP "\"populations\": {\"exc\": {\"model\": \"iaf_psc_exp\", \"n\": 10, \"params\": {\"I_e\": 400.0}}}"

static void test_bad_model_files(void **state) {
  (void)state;
  struct { const char *name, *text, *want; } bad[] = {
      {"unknown_model.json", "{\"populations\": {\"exc\": {\"model\": \"iaf_psc_alpha_x\", \"n\": 10}}}",
       "populations.exc.model: unknown model 'iaf_psc_alpha_x'"},
      {"neg_tau.json", "{\"populations\": {\"exc\": {\"model\": \"iaf_psc_exp\", \"n\": 10, \"params\": {\"tau_m\": -20}}}}",
       "populations.exc.params.tau_m: must be > 0 (got -20)"},
      {"missing_pop.json", "{" GOOD_POP ", \"projections\": [{\"source\": \"exc\", \"target\": \"inh\", \"rule\": \"all_to_all\"}]}",
       "projections[0].target: unknown population 'inh' (expected one of exc)"},
      {"short_delay.json", "{" GOOD_POP ", \"projections\": [{\"source\": \"exc\", \"target\": \"exc\", \"rule\": \"all_to_all\", \"delay\": 0.01}]}",
       "projections[0].delay: must be >= min_delay = 0.1 ms (got 0.01)"},
      {"bad_dist.json", "{" GOOD_POP ", \"projections\": [{\"source\": \"exc\", \"target\": \"exc\", \"rule\": \"all_to_all\", \"weight\": {\"distribution\": \"gamma\", \"k\": 2}}]}",
       "projections[0].weight.distribution: unknown distribution 'gamma'"},
      {"bad_dist_param.json", "{" GOOD_POP ", \"projections\": [{\"source\": \"exc\", \"target\": \"exc\", \"rule\": \"all_to_all\", \"weight\": {\"distribution\": \"normal\", \"mean\": 1, \"std\": -2}}]}",
       "projections[0].weight.std: must be >= 0 (got -2)"},
      {"wrong_type.json", "{\"populations\": {\"exc\": {\"model\": \"iaf_psc_exp\", \"n\": \"ten\"}}}",
       "populations.exc.n: expected an integer (got a string)"},
      {"truncated.json", "{\"populations\": {\"exc\": {\"model\": \"iaf_psc_exp\", \"n\": 10",
       "line 1 column"},
      {"no_pops.json", "{\"simulation\": {\"t_stop\": 10}}", "populations: missing"},
      {"unknown_rule.json", "{" GOOD_POP ", \"projections\": [{\"source\": \"exc\", \"target\": \"exc\", \"rule\": \"small_world\"}]}",
       "projections[0].rule: unknown rule 'small_world'"},
      {"unknown_key.json", "{" GOOD_POP ", \"simulation\": {\"t_sotp\": 10}}", "simulation: unknown key 't_sotp'"},
      {"reset_above.json", "{\"populations\": {\"exc\": {\"model\": \"iaf_psc_delta\", \"n\": 10, \"params\": {\"V_reset\": -40}}}}",
       "populations.exc.params.V_reset: must be < V_th = -55 (got -40)"},
      {"indegree.json", "{" GOOD_POP ", \"projections\": [{\"source\": \"exc\", \"target\": \"exc\", \"rule\": \"fixed_indegree\", \"indegree\": 20, \"allow_multapses\": false}]}",
       "projections[0].indegree: must be <= 10"},
      {"bad_stim.json", "{" GOOD_POP ", \"stimuli\": [{\"model\": \"poisson_generator\", \"target\": \"exc\", \"params\": {\"rate\": -5}}]}",
       "stimuli[0].params.rate: must be >= 0 Hz (got -5)"},
      {"bad_ids.json", "{" GOOD_POP ", \"record\": {\"state\": [{\"population\": \"exc\", \"variables\": [\"V_m\"], \"node_ids\": [3, 10]}]}}",
       "record.state[0].node_ids[1]: must be in [0, 9] (got 10)"},
      {"not_object.json", "[1, 2, 3]", "(top level): expected an object"},
      {"neg_tstop.json", "{" GOOD_POP ", \"simulation\": {\"t_stop\": -5}}", "simulation.t_stop: must be > 0 ms (got -5)"},
      {"slash_name.json", "{\"populations\": {\"a/b\": {\"model\": \"iaf_psc_exp\", \"n\": 2}}}",
       "population 'a/b': a name must not contain '/'"},
      {"tiny_interval.json", "{" GOOD_POP ", \"record\": {\"state\": [{\"population\": \"exc\", \"variables\": [\"V_m\"], \"interval\": 1e-9}]}}",
       "record.state[0].interval: must be >= 0.001 ms (got 1e-09)"},
      {"bad_var.json", "{" GOOD_POP ", \"record\": {\"state\": [{\"population\": \"exc\", \"variables\": [\"g_ex\"]}]}}",
       "record.state[0].variables[0]: 'g_ex' is not a state variable of iaf_psc_exp (it has: V_m, I_syn_ex, I_syn_in, I_dc)"},
  };
  int nbad = (int)(sizeof bad / sizeof bad[0]);
  assert_true(nbad >= 10);
  for (int i = 0; i < nbad; i++) {
    const char *path = write_model(bad[i].name, bad[i].text);
    char o[600];
    snprintf(o, sizeof o, "%s/out_%d.h5", sb_test_tmpdir(), i);
    int rc = sb_test_run(out, sizeof out, "run %s -o %s --quiet", path, o);
    if (rc != 2 || !strstr(out, bad[i].want) || !strstr(out, bad[i].name))
      fprintf(stderr, "case %s: exit %d, output:\n%s\n", bad[i].name, rc, out);
    assert_int_equal(rc, 2);
    check_contains(out, bad[i].name);   /* the file */
    check_contains(out, bad[i].want);   /* the JSON path and expected vs got */
    assert_false(sb_test_file_exists(o));
  }
  /* missing file: exit 2 (input error), no output */
  assert_int_equal(sb_test_run(out, sizeof out, "run /nonexistent/model.json -o %s/x.h5", sb_test_tmpdir()), 2);
  check_contains(out, "/nonexistent/model.json: no such file");
  /* a bad --set path and a bad value */
  const char *good = write_model("good.json", "{" GOOD_POP "}");
  assert_int_equal(sb_test_run(out, sizeof out, "run %s --set populations.exc.params.tau_m=-3 -o %s/y.h5", good, sb_test_tmpdir()), 2);
  check_contains(out, "with --set populations.exc.params.tau_m=-3: ");   /* the override, not the file, is wrong */
  check_contains(out, "populations.exc.params.tau_m: must be > 0 (got -3)");
  assert_int_equal(sb_test_run(out, sizeof out, "run %s --set projections[0].weight=1 -o %s/y.h5", good, sb_test_tmpdir()), 2);
  check_contains(out, "--set projections[0].weight: 'projections' does not exist, so it has no element [0]");
  assert_int_equal(sb_test_run(out, sizeof out, "run %s --t-stop -1", good), 2);
  assert_false(sb_test_file_exists("good.h5"));
}

static int read_ds(hid_t f, const char *name, hid_t t, void **v, size_t *n) {
  return sb_h5_read(f, name, t, v, n, NULL, NULL, 0);
}

static void test_output_layout_and_set(void **state) {
  (void)state;
  char o[600];
  snprintf(o, sizeof o, "%s/single.h5", sb_test_tmpdir());
  assert_int_equal(sb_test_run(out, sizeof out, "run examples/single_neuron.json -o %s --quiet", o), 0);
  check_contains(out, "construction");
  check_contains(out, "real-time factor");
  check_contains(out, "peak memory");
  check_contains(out, "synaptic");
  hid_t f;
  assert_int_equal(sb_h5_open_read(o, &f), SB_OK);
  /* SONATA: root magic and version, /spikes/<pop>/{timestamps (ms), node_ids}, sorting */
  int64_t magic[1], ver[2];
  size_t n;
  assert_int_equal(sb_h5_attr_read_int64s(f, "magic", magic, 1, &n), SB_OK);
  assert_int_equal(magic[0], 0x0A7A);
  assert_int_equal(sb_h5_attr_read_int64s(f, "version", ver, 2, &n), SB_OK);
  assert_true(n == 2 && ver[0] == 0 && ver[1] == 1);
  hid_t g = H5Gopen2(f, "spikes/n", H5P_DEFAULT);
  char *s;
  assert_int_equal(sb_h5_attr_read_string(g, "sorting", &s), SB_OK);
  assert_string_equal(s, "by_time");
  sb_free(s);
  hid_t ds = H5Dopen2(g, "timestamps", H5P_DEFAULT);
  assert_int_equal(sb_h5_attr_read_string(ds, "units", &s), SB_OK);
  assert_string_equal(s, "ms");
  sb_free(s);
  H5Dclose(ds);
  H5Gclose(g);
  double *ts;
  uint64_t *ids;
  size_t nt, ni;
  assert_int_equal(read_ds(f, "spikes/n/timestamps", H5T_NATIVE_DOUBLE, (void **)&ts, &nt), SB_OK);
  assert_int_equal(read_ds(f, "spikes/n/node_ids", H5T_NATIVE_UINT64, (void **)&ids, &ni), SB_OK);
  assert_true(nt > 0 && nt == ni);
  for (size_t i = 1; i < nt; i++) assert_true(ts[i] >= ts[i - 1]);
  /* report: data (n_times, n_nodes), mapping/time = [start, stop, dt] */
  float *data;
  size_t nd, dims[2];
  int rank;
  assert_int_equal(sb_h5_read(f, "report/n/data", H5T_NATIVE_FLOAT, (void **)&data, &nd, &rank, dims, 2), SB_OK);
  assert_int_equal(rank, 2);
  assert_int_equal(dims[0], 2000);
  assert_int_equal(dims[1], 1);
  double *tm;
  assert_int_equal(read_ds(f, "report/n/mapping/time", H5T_NATIVE_DOUBLE, (void **)&tm, &n), SB_OK);
  assert_int_equal(n, 3);
  check_abs(tm[0], 0.0, 0, "report start");
  check_abs(tm[1], 200.0, 1e-9, "report stop");
  check_abs(tm[2], 0.1, 0, "report dt");
  /* V_m starts at E_L and never exceeds V_th; it is at V_reset just after each spike */
  check_abs(data[0], -70.0, 1e-6, "V_m(0)");
  for (size_t i = 0; i < nd; i++) assert_true(data[i] < -55.0f + 1e-4f);
  for (size_t k = 0; k < nt; k++) {
    size_t i = (size_t)ceil(ts[k] / 0.1 + 1e-9);
    if (i < nd && i * 0.1 - ts[k] < 2.0) check_abs(data[i], -70.0, 1e-5, "V_m clamped after spike %zu", k);
  }
  H5Fclose(f);
  sb_free(ts); sb_free(ids); sb_free(data); sb_free(tm);
  /* --set: no drive, inputs alone stay subthreshold -> fewer spikes; then a strong drive */
  assert_int_equal(sb_test_run(out, sizeof out, "run examples/single_neuron.json -o %s --set populations.n.params.I_e=0 --quiet", o), 0);
  assert_int_equal(sb_h5_open_read(o, &f), SB_OK);
  assert_int_equal(read_ds(f, "spikes/n/timestamps", H5T_NATIVE_DOUBLE, (void **)&ts, &n), SB_OK);
  H5Fclose(f);
  assert_true(n < nt);
  sb_free(ts);
  assert_int_equal(sb_test_run(out, sizeof out, "run examples/single_neuron.json -o %s --set populations.n.params.I_e=1000 --t-stop 100 --quiet", o), 0);
  check_contains(out, "100 ms biological time");
}

/* dc_generator as in NEST: weight scales the current, delay shifts it. iaf_psc_delta, E_L = 0,
 * tau_m = 10 ms, C_m = 250 pF (R = 0.04 GOhm), amplitude 100 pA x weight 0.5 on from 20 + 5 to
 * 60 + 5 ms: V = R A w (1 - e^{-(t - 25)/tau_m}) on [25, 65], then decaying; the closed form at
 * every 0.5 ms sample within float32 rounding. */
/* One non-spiking iaf_psc_delta neuron (E_L = 0, tau_m = 10 ms, C_m = 250 pF: R = 0.04 GOhm)
 * driven by `stim` (a stimuli[] element), V_m sampled every 0.5 ms for 100 ms: writes NAME.json,
 * runs it into NAME.h5 and returns the model path; *v the V_m samples (caller frees), *nv their
 * count. */
static const char *current_neuron_run(const char *name, const char *stim, float **v, size_t *nv) {
  char text[2048], file[64], o[600];
  snprintf(text, sizeof text,
           "{\"simulation\": {\"t_stop\": 100},\n"
           " \"populations\": {\"n\": {\"model\": \"iaf_psc_delta\", \"n\": 1, \"params\": {\"E_L\": 0, \"V_reset\": 0, "
           "\"V_th\": 1000, \"tau_m\": 10, \"C_m\": 250}}},\n"
           " \"stimuli\": [%s],\n"
           " \"record\": {\"state\": [{\"population\": \"n\", \"variables\": [\"V_m\"], \"interval\": 0.5}]}}\n",
           stim);
  snprintf(file, sizeof file, "%s.json", name);
  const char *m = write_model(file, text);
  snprintf(o, sizeof o, "%s/%s.h5", sb_test_tmpdir(), name);
  assert_int_equal(sb_test_run(out, sizeof out, "run %s -o %s --quiet", m, o), 0);
  hid_t f;
  assert_int_equal(sb_h5_open_read(o, &f), SB_OK);
  size_t dims[2];
  int rank;
  assert_int_equal(sb_h5_read(f, "report/n/data", H5T_NATIVE_FLOAT, (void **)v, nv, &rank, dims, 2), SB_OK);
  H5Fclose(f);
  assert_true(*nv >= 200);
  return m;
}

static void test_dc_weight_delay(void **state) {
  (void)state;
  float *v;
  size_t nv;
  const char *m = current_neuron_run("dc", "{\"model\": \"dc_generator\", \"target\": \"n\", \"weight\": 0.5, \"delay\": 5, "
                                     "\"params\": {\"amplitude\": 100, \"start\": 20, \"stop\": 60}}", &v, &nv);
  char o[600];
  snprintf(o, sizeof o, "%s/dc.h5", sb_test_tmpdir());
  const double Vinf = 0.04 * 100 * 0.5, tau = 10.0;
  for (size_t i = 0; i < nv; i++) {
    double t = 0.5 * (double)i, want = 0;
    if (t > 25) want = Vinf * (1 - exp(-((t < 65 ? t : 65) - 25) / tau));
    if (t > 65) want *= exp(-(t - 65) / tau);
    check_abs(v[i], want, 1e-5, "V_m at %g ms", t);
  }
  sb_free(v);
  /* values are checked as written, before the delay shifts them and the weight scales them */
  assert_int_equal(sb_test_run(out, sizeof out, "run %s -o %s --quiet --set stimuli[0].delay=-5", m, o), 2);
  check_contains(out, "dc.json: stimuli[0].delay: must be >= 0 ms (got -5)");
  assert_int_equal(sb_test_run(out, sizeof out, "run %s -o %s --quiet --set stimuli[0].params.start=70", m, o), 2);
  check_contains(out, "dc.json: stimuli[0].params.stop: must be >= start = 70 ms (got 60)");
  assert_int_equal(sb_test_run(out, sizeof out, "run %s -o %s --quiet --set stimuli[0].weight=1e308", m, o), 2);
  check_contains(out, "dc.json: stimuli[0].weight: 1e+308 times the amplitude 100 is not finite");
}

/* step_current_generator as in NEST (amplitude_times / amplitude_values, active in [start, stop)),
 * scaled by weight and shifted by delay like dc_generator. iaf_psc_delta, E_L = 0, tau_m = 10 ms,
 * C_m = 250 pF (R = 0.04 GOhm); values 100, -50, 200 pA from 10, 30, 50 ms, active in [20, 70),
 * weight 0.5, delay 5: 50 pA on [25, 35), -25 on [35, 55), 100 on [55, 75), then 0. V_m is the
 * closed-form piecewise relaxation V_inf + (V_0 - V_inf) e^{-(t - t_0)/tau_m} at every 0.5 ms
 * sample, within float32 rounding. */
static void test_step_current(void **state) {
  (void)state;
  float *v;
  size_t nv;
  const char *m = current_neuron_run("step", "{\"model\": \"step_current_generator\", \"target\": \"n\", \"weight\": 0.5, "
                                     "\"delay\": 5, \"params\": {\"amplitude_times\": [10, 30, 50], \"amplitude_values\": "
                                     "[100, -50, 200], \"start\": 20, \"stop\": 70}}", &v, &nv);
  char o[600];
  snprintf(o, sizeof o, "%s/step.h5", sb_test_tmpdir());
  const double tau = 10.0, R = 0.04;
  const double edge[] = {0, 25, 35, 55, 75, INFINITY}, cur[] = {0, 50, -25, 100, 0};
  double V0 = 0.0;   /* V at the start of piece p */
  int p = 0;
  for (size_t i = 0; i < nv; i++) {
    double t = 0.5 * (double)i;
    while (t > edge[p + 1]) {   /* V at the end of piece p starts piece p + 1 */
      V0 = R * cur[p] + (V0 - R * cur[p]) * exp(-(edge[p + 1] - edge[p]) / tau);
      p++;
    }
    double want = R * cur[p] + (V0 - R * cur[p]) * exp(-(t - edge[p]) / tau);
    check_abs(v[i], want, 1e-5, "V_m at %g ms", t);
  }
  assert_true(p == 4);
  sb_free(v);
  /* bad input: exit 2 naming the field */
  static const struct { const char *set, *msg; } bad[] = {
      {"stimuli[0].params.amplitude_times=[10,5,50]",
       "step.json: stimuli[0].params.amplitude_times[1]: must be later than amplitude_times[0] = 10 ms (got 5)"},
      {"stimuli[0].params.amplitude_times=[10,30]",
       "step.json: stimuli[0].params.amplitude_values: expected as many values as amplitude_times (2), in pA (got 3)"},
      {"stimuli[0].params.amplitude_times=[-1,30,50]", "step.json: stimuli[0].params.amplitude_times[0]: must be finite and >= 0 ms (got -1)"},
      {"stimuli[0].params.amplitude_values=[1,\"a\",3]", "step.json: stimuli[0].params.amplitude_values[1]: expected a number"},
      {"stimuli[0].params.stop=10", "step.json: stimuli[0].params.stop: must be >= start = 20 ms (got 10)"},
      {"stimuli[0].params.amplitude=1", "step.json: stimuli[0].params: unknown key 'amplitude'"},
      {"stimuli[0].weight=1e308", "step.json: stimuli[0].weight: 1e+308 times amplitude_values[0] = 100 is not finite"},
      /* each value is finite, the change between them is not (it ran into V_m = -nan, exit 1) */
      {"stimuli[0].weight=1' --set 'stimuli[0].params.amplitude_values=[1e308,-1e308,0]",
       "step.json: stimuli[0].params.amplitude_values[1]: the change from 1e+308 to -1e+308 pA at 30 ms is not finite"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    unlink(o);
    assert_int_equal(sb_test_run(out, sizeof out, "run %s -o %s --quiet --set '%s'", m, o, bad[i].set), 2);
    check_contains(out, bad[i].msg);
    assert_int_equal(access(o, F_OK), -1);   /* no output left */
  }
}

/* Initial conductances (nS) of iaf_cond_exp: a negative one was accepted and one beyond 1e7 nS was
 * refused only when the run started (exit 1; fresh-user trial 10). Both are exit 2 naming the
 * field now, with no output left; a valid one runs. */
static void test_bad_init_conductance(void **state) {
  (void)state;
  const char *m = write_model("cond_init.json", "{\"populations\": {\"n\": {\"model\": \"iaf_cond_exp\", \"n\": 2}}}");
  char o[600];
  snprintf(o, sizeof o, "%s/cond_init.h5", sb_test_tmpdir());
  static const struct { const char *set, *msg; } bad[] = {
      {"populations.n.init.g_in=-100", "cond_init.json: populations.n.init.g_in: neuron 0: a conductance must be in [0, 1e+07] nS (got -100)"},
      {"populations.n.init.g_ex=1e8", "cond_init.json: populations.n.init.g_ex: neuron 0: a conductance must be in [0, 1e+07] nS (got 100000000)"},
      {"populations.n.init.g_ex=1.0000001e7", "cond_init.json: populations.n.init.g_ex: neuron 0: a conductance must be in [0, 1e+07] nS (got 10000001)"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    unlink(o);
    assert_int_equal(sb_test_run(out, sizeof out, "run %s -o %s --quiet --t-stop 10 --set '%s'", m, o, bad[i].set), 2);
    check_contains(out, bad[i].msg);
    assert_int_equal(access(o, F_OK), -1);
  }
  assert_int_equal(sb_test_run(out, sizeof out, "run %s -o %s --quiet --t-stop 10 --set populations.n.init.g_ex=5", m, o), 0);
}

/* Model files in other forms. A model read from a pipe or FIFO (`run <(...)`, `run /dev/stdin`): `run` reads its
 * model twice (fingerprint, load) and the second read found nothing ("'[' or '{' expected near
 * end of file") or blocked for ever on a FIFO. Both now run as from the file: the same summary. */
static void test_model_from_pipe(void **state) {
  (void)state;
  char o[600], fifo[600], want[4096], wrap[1400], cmd0[700];
  snprintf(o, sizeof o, "%s/pipe.h5", sb_test_tmpdir());
  snprintf(fifo, sizeof fifo, "%s/model.fifo", sb_test_tmpdir());
  assert_int_equal(sb_test_run(out, sizeof out, "run examples/single_neuron.json -o %s", o), 0);
  const char *pop = strstr(out, "population");
  assert_non_null(pop);
  snprintf(want, sizeof want, "%s", pop);
  assert_int_equal(sb_test_run(out, sizeof out, "run /dev/stdin -o %s < examples/single_neuron.json", o), 0);
  check_contains(out, want);
  /* no -o and no simulation.output: an error naming -o, not an output named after the pipe
   * (`run <(...)` wrote ./63.h5) */
  const char *noout = write_model("noout.json", "{" GOOD_POP "}");
  char here[1300];
  snprintf(here, sizeof here, "cd %s && cat %s |", sb_test_tmpdir(), noout);
  assert_int_equal(sb_test_run_wrapped(here, out, sizeof out, "run /dev/stdin --t-stop 10"), 2);
  check_contains(out, "/dev/stdin: the model comes from a pipe and names no output (simulation.output): give the output "
                      "file with -o");
  snprintf(cmd0, sizeof cmd0, "%s/stdin.h5", sb_test_tmpdir());
  assert_int_equal(access(cmd0, F_OK), -1);
  assert_int_equal(sb_test_run(out, sizeof out, "run %s --t-stop 10 -o %s", noout, o), 0);   /* a file: as before */
  /* a UTF-8 byte-order mark (Windows editors) is skipped (it was "not valid JSON ... near '\xef\xbb\xbf'") */
  char bom[600], cmd[1400];
  snprintf(bom, sizeof bom, "%s/bom.json", sb_test_tmpdir());
  snprintf(cmd, sizeof cmd, "printf '\\357\\273\\277' > %s && cat examples/single_neuron.json >> %s", bom, bom);
  assert_int_equal(system(cmd), 0);
  assert_int_equal(sb_test_run(out, sizeof out, "run %s -o %s", bom, o), 0);
  check_contains(out, want);
  /* a sweep file given to run: what it is, not "unknown key 'base'" */
  assert_int_equal(sb_test_run(out, sizeof out, "run examples/sweeps/brunel_g_eta.json -o %s/other.h5", sb_test_tmpdir()), 2);
  check_contains(out, "brunel_g_eta.json: (top level): has 'base' and no 'populations': a sweep file (for `spikebridge sweep`");
  /* an HDF5 file given as the model: a hint, not "byte 8 is a NUL byte" */
  assert_int_equal(sb_test_run(out, sizeof out, "run %s -o %s/other.h5", o, sb_test_tmpdir()), 2);
  check_contains(out, "pipe.h5: an HDF5 file, not a JSON model (to continue an interrupted run from its checkpoint: "
                      "spikebridge run --resume FILE)");
  unlink(fifo);
  assert_int_equal(mkfifo(fifo, 0600), 0);
  snprintf(wrap, sizeof wrap, "(cat examples/single_neuron.json > %s &); timeout 60", fifo);
  assert_int_equal(sb_test_run_wrapped(wrap, out, sizeof out, "run %s -o %s --checkpoint-every 50", fifo, o), 0);
  check_contains(out, want);
  /* resuming its checkpoint without a model: the FIFO it names would block (deaf to signals) */
  assert_int_equal(sb_test_run_wrapped("timeout -k 2 20", out, sizeof out, "run --resume %s/pipe.ckpt.h5 -o %s --t-stop 300",
                                       sb_test_tmpdir(), o),
                   2);
  check_contains(out, "model.fifo, was read from a pipe and cannot be read again; give the model file as MODEL.json");
  unlink(fifo);
}

/* An output in a missing directory named by the model file (no -o): one error about the output;
 * a warning that "a stop signal could not write its checkpoint" came first. */
static void test_output_dir_missing(void **state) {
  (void)state;
  assert_int_equal(sb_test_run(out, sizeof out, "run examples/single_neuron.json --quiet --set simulation.output=%s/no/such/o.h5",
                               sb_test_tmpdir()),
                   2);
  check_contains(out, "no/such/o.h5: directory ");
  check_contains(out, "does not exist");
  assert_null(strstr(out, "warning"));
}

/* Many recorded populations: each population's spike datasets hold one partly filled chunk at
 * the end, and 512 kB chunks (in HDF5's chunk cache) made 1000 one-neuron populations take 1.1 GB
 * and 12 s. The chunks shrink with the number of recorded populations (at most 2^20 rows in all,
 * at least 1024 each): 200 populations get 4096-row chunks, and every spike is written. */
static void test_many_populations_chunks(void **state) {
  (void)state;
  char text[65536], path[600], o[600];
  size_t at = (size_t)snprintf(text, sizeof text, "{\"simulation\": {\"t_stop\": 20}, \"populations\": {");
  for (int i = 0; i < 200; i++)
    at += (size_t)snprintf(text + at, sizeof text - at, "%s\"p%d\": {\"model\": \"iaf_psc_delta\", \"n\": 1, \"params\": "
                           "{\"I_e\": 500, \"C_m\": 250, \"tau_m\": 10, \"t_ref\": 2}}", i ? ", " : "", i);
  snprintf(text + at, sizeof text - at, "}}\n");
  snprintf(path, sizeof path, "%s/many.json", sb_test_tmpdir());
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  snprintf(o, sizeof o, "%s/many.h5", sb_test_tmpdir());
  assert_int_equal(sb_test_run(out, sizeof out, "run %s -o %s --quiet", path, o), 0);
  hid_t h;
  assert_int_equal(sb_h5_open_read(o, &h), SB_OK);
  for (int i = 0; i < 200; i += 199) {
    char name[64];
    snprintf(name, sizeof name, "spikes/p%d/timestamps", i);
    hid_t ds = H5Dopen2(h, name, H5P_DEFAULT);
    assert_true(ds >= 0);
    hid_t pl = H5Dget_create_plist(ds);
    hsize_t chunk = 0;
    assert_int_equal(H5Pget_chunk(pl, 1, &chunk), 1);
    assert_int_equal(chunk, 4096);
    H5Pclose(pl);
    H5Dclose(ds);
    double *ts;
    size_t n;
    assert_int_equal(read_ds(h, name, H5T_NATIVE_DOUBLE, (void **)&ts, &n), SB_OK);
    assert_true(n >= 1);   /* I_e 500 pA: first spike at tau_m ln(1 / (1 - 15 / 20)) = 13.9 ms */
    check_abs(ts[0], 10.0 * log(4.0), 1e-9, "first spike of p%d", i);
    sb_free(ts);
  }
  H5Fclose(h);
}

static void test_cli_thread_invariance(void **state) {
  (void)state;
  char o1[600], o2[600];
  snprintf(o1, sizeof o1, "%s/b1.h5", sb_test_tmpdir());
  snprintf(o2, sizeof o2, "%s/b2.h5", sb_test_tmpdir());
  assert_int_equal(sb_test_run(out, sizeof out, "run models/snn/brunel_small.json --t-stop 200 --threads 1 --seed 9 -o %s -q", o1), 0);
  assert_int_equal(sb_test_run(out, sizeof out, "run models/snn/brunel_small.json --t-stop 200 --threads 2 --seed 9 -o %s -q", o2), 0);
  hid_t f1, f2;
  assert_int_equal(sb_h5_open_read(o1, &f1), SB_OK);
  assert_int_equal(sb_h5_open_read(o2, &f2), SB_OK);
  const char *names[] = {"spikes/exc/timestamps", "spikes/exc/node_ids", "spikes/inh/timestamps", "spikes/inh/node_ids"};
  for (int i = 0; i < 4; i++) {
    double *a, *b;
    size_t na, nb;
    assert_int_equal(read_ds(f1, names[i], H5T_NATIVE_DOUBLE, (void **)&a, &na), SB_OK);
    assert_int_equal(read_ds(f2, names[i], H5T_NATIVE_DOUBLE, (void **)&b, &nb), SB_OK);
    assert_true(na > 1000);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof *a);
    sb_free(a);
    sb_free(b);
  }
  H5Fclose(f1);
  H5Fclose(f2);
}

/* The wake calendar's far list (neurons due SB_CAL_R = 256 windows or more ahead) is re-bucketed
 * every 256 windows. A neuron entered at window 256 with its next input in window 512 was
 * re-bucketed at window 512 into window 513: it ran one window late and its spike was recorded
 * after later ones (found with the STDP example, whose spikes went backwards at 2048 ms).
 * Neuron 0 (inputs at 256.2 and 512.5 ms, windows of 1 ms, 100 quiet neurons so that the
 * calendar is used) must spike at 512.5 before neuron 1 at 512.9. */
static void test_calendar_far_entry(void **state) {
  (void)state;
  const char *m = write_model("cal.json",
      "{\"simulation\": {\"t_stop\": 600, \"seed\": 1},\n"
      " \"populations\": {\"ab\": {\"model\": \"iaf_psc_delta\", \"n\": 2}, \"c\": {\"model\": \"iaf_psc_delta\", \"n\": 1},\n"
      "                 \"quiet\": {\"model\": \"iaf_psc_delta\", \"n\": 100}},\n"
      " \"projections\": [{\"source\": \"ab\", \"target\": \"c\", \"rule\": \"explicit\", \"sources\": [0], \"targets\": [0], "
      "\"weights\": [100], \"delay\": 1.0}],\n"
      " \"stimuli\": [{\"model\": \"spike_generator\", \"target\": \"ab\", \"node_ids\": [0], \"params\": {\"spike_times\": "
      "[255.2, 511.5]}, \"weight\": 100, \"delay\": 1.0},\n"
      "   {\"model\": \"spike_generator\", \"target\": \"ab\", \"node_ids\": [1], \"params\": {\"spike_times\": [300, 511.9]}, "
      "\"weight\": 100, \"delay\": 1.0}]}\n");
  for (int threads = 1; threads <= 2; threads++) {
    char o[600];
    snprintf(o, sizeof o, "%s/cal%d.h5", sb_test_tmpdir(), threads);
    assert_int_equal(sb_test_run(out, sizeof out, "run %s -o %s --quiet --threads %d", m, o, threads), 0);
    hid_t f;
    assert_int_equal(sb_h5_open_read(o, &f), SB_OK);
    double *t = NULL, *tc = NULL;
    uint64_t *id = NULL;
    size_t n = 0, ni = 0, nc = 0;
    assert_int_equal(read_ds(f, "spikes/ab/timestamps", H5T_NATIVE_DOUBLE, (void **)&t, &n), SB_OK);
    assert_int_equal(read_ds(f, "spikes/ab/node_ids", H5T_NATIVE_UINT64, (void **)&id, &ni), SB_OK);
    assert_int_equal(read_ds(f, "spikes/c/timestamps", H5T_NATIVE_DOUBLE, (void **)&tc, &nc), SB_OK);
    H5Fclose(f);
    const double want_t[4] = {256.2, 301.0, 512.5, 512.9}, want_c[2] = {257.2, 513.5};
    const uint64_t want_id[4] = {0, 1, 0, 1};
    assert_int_equal(n, 4);
    assert_int_equal(ni, 4);
    assert_int_equal(nc, 2);
    for (int i = 0; i < 4; i++) {
      check_abs(t[i], want_t[i], 1e-12, "spike time (in time order)");
      assert_int_equal(id[i], want_id[i]);
    }
    for (int i = 0; i < 2; i++) check_abs(tc[i], want_c[i], 1e-12, "target spike time");
    sb_free(t);
    sb_free(id);
    sb_free(tc);
  }
}

int main(void) {
  sb_h5_quiet();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bad_model_files),
      cmocka_unit_test(test_output_layout_and_set),
      cmocka_unit_test(test_cli_thread_invariance),
      cmocka_unit_test(test_dc_weight_delay),
      cmocka_unit_test(test_step_current),
      cmocka_unit_test(test_bad_init_conductance),
      cmocka_unit_test(test_model_from_pipe),
      cmocka_unit_test(test_output_dir_missing),
      cmocka_unit_test(test_many_populations_chunks),
      cmocka_unit_test(test_calendar_far_entry),
  };
  return cmocka_run_group_tests_name("sim_run", tests, NULL, NULL);
}
