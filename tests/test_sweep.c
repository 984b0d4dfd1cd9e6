/* `spikebridge sweep` and sim/sweep.c: expansion (grid sizes and order, zip, random samples
 * reproducible by seed and independent of the sample count), bad sweep files (exit 2, file and
 * JSON path named, nothing written), run selection by --array-index and SLURM_ARRAY_TASK_ID,
 * restart (complete runs skipped, deleted and truncated ones redone bit-identically), a sweep
 * run equal to `spikebridge run --set`, and the summary table against the run files (counts,
 * rates and CVs recomputed here from the spike datasets). */
#include "sim/sim.h"
#include "tests/testutil.h"

#include <math.h>
#include <sys/stat.h>

static char out[65536];


/* 100 neurons, 120 ms: small enough for a dozen runs per test. */
static const char base_model[] =
    "{\"simulation\": {\"t_stop\": 120, \"seed\": 3, \"threads\": 1},\n"
    " \"populations\": {\"exc\": {\"model\": \"iaf_psc_delta\", \"n\": 80, \"params\": {\"tau_m\": 20, \"V_th\": 20, "
    "\"V_reset\": 10, \"E_L\": 0, \"t_ref\": 2}, \"init\": {\"V_m\": {\"distribution\": \"uniform\", \"min\": 0, \"max\": 20}}},\n"
    "                 \"inh\": {\"model\": \"iaf_psc_delta\", \"n\": 20, \"params\": {\"tau_m\": 20, \"V_th\": 20, "
    "\"V_reset\": 10, \"E_L\": 0, \"t_ref\": 2}}},\n"
    " \"projections\": [{\"source\": \"exc\", \"target\": \"exc\", \"rule\": \"fixed_indegree\", \"indegree\": 10, "
    "\"weight\": 0.5, \"delay\": 1.5},\n"
    "                 {\"source\": \"inh\", \"target\": \"exc\", \"rule\": \"fixed_indegree\", \"indegree\": 5, "
    "\"weight\": -2.0, \"delay\": 1.5}],\n"
    " \"stimuli\": [{\"model\": \"poisson_generator\", \"target\": \"exc\", \"params\": {\"rate\": 2000}, \"weight\": 0.5, "
    "\"delay\": 1.5},\n"
    "             {\"model\": \"poisson_generator\", \"target\": \"inh\", \"params\": {\"rate\": 2200}, \"weight\": 0.5, "
    "\"delay\": 1.5}]}\n";

static int setup(void **state) {
  (void)state;
  unsetenv("SLURM_ARRAY_TASK_ID");
  sb_test_write_tmp("base.json", base_model);
  return 0;
}

static sb_sweep *load_text(const char *name, const char *text) {
  const char *p = sb_test_write_tmp(name, text);
  sb_sweep *sw = NULL;
  int st = sb_sweep_load(p, NULL, &sw);
  if (st) fprintf(stderr, "sb_sweep_load(%s): %s\n", name, sb_last_error());
  assert_int_equal(st, SB_OK);
  return sw;
}

static const char *val(const sb_sweep *sw, size_t i, size_t p) { return sw->values[i * sw->n_params + p]; }

/* ---- expansion ---- */

static void test_grid_and_zip(void **state) {
  (void)state;
  sb_sweep *sw = load_text("g.json", "{\"base\": \"base.json\", \"parameters\": {\"stimuli[0].params.rate\": [1500, 2000.5, 2500],"
                                     " \"projections[1].weight\": [-1.0, -3.25], \"populations.exc.params.tau_m\": [10, 20]}}");
  assert_int_equal(sw->mode, SB_SWEEP_GRID);
  assert_int_equal(sw->n_params, 3);
  assert_int_equal(sw->n_runs, 3 * 2 * 2);
  /* itertools.product order: the last parameter varies fastest */
  const char *want[12][3] = {{"1500", "-1.0", "10"}, {"1500", "-1.0", "20"}, {"1500", "-3.25", "10"}, {"1500", "-3.25", "20"},
                             {"2000.5", "-1.0", "10"}, {"2000.5", "-1.0", "20"}, {"2000.5", "-3.25", "10"},
                             {"2000.5", "-3.25", "20"}, {"2500", "-1.0", "10"}, {"2500", "-1.0", "20"},
                             {"2500", "-3.25", "10"}, {"2500", "-3.25", "20"}};
  for (size_t i = 0; i < 12; i++)
    for (size_t p = 0; p < 3; p++) assert_string_equal(val(sw, i, p), want[i][p]);
  char *ov = sb_sweep_overrides_text(sw, 5);
  assert_string_equal(ov, "stimuli[0].params.rate=2000.5\nprojections[1].weight=-1.0\npopulations.exc.params.tau_m=20\n");
  sb_free(ov);
  char path[600];
  sb_sweep_run_path(sw, 7, path, sizeof path);
  assert_string_equal(path, "g_runs/run_0007.h5");
  sb_sweep_free(sw);

  /* a tied key sets several paths to the same value */
  sw = load_text("tied.json", "{\"base\": \"base.json\", \"parameters\": {\"stimuli[0].params.rate,stimuli[1].params.rate\": [900, 1100]}}");
  assert_int_equal(sw->n_runs, 2);
  ov = sb_sweep_overrides_text(sw, 1);
  assert_string_equal(ov, "stimuli[0].params.rate=1100\nstimuli[1].params.rate=1100\n");
  sb_free(ov);
  sb_sweep_free(sw);

  sw = load_text("z.json", "{\"base\": \"base.json\", \"mode\": \"zip\", \"output_dir\": \"zz\", \"prefix\": \"p\","
                           " \"set\": {\"simulation.t_stop\": 50},"
                           " \"parameters\": {\"stimuli[0].params.rate\": [1500, 2000, 2500], \"simulation.seed\": [7, 8, 9]}}");
  assert_int_equal(sw->n_runs, 3);
  assert_int_equal(sw->n_fixed, 1);
  for (size_t i = 0; i < 3; i++) {
    char a[32], b[32];
    snprintf(a, sizeof a, "%zu", 1500 + 500 * i);
    snprintf(b, sizeof b, "%zu", 7 + i);
    assert_string_equal(val(sw, i, 0), a);
    assert_string_equal(val(sw, i, 1), b);
  }
  ov = sb_sweep_overrides_text(sw, 2);
  assert_string_equal(ov, "simulation.t_stop=50\nstimuli[0].params.rate=2500\nsimulation.seed=9\n");
  sb_free(ov);
  sb_sweep_run_path(sw, 1, path, sizeof path);
  assert_string_equal(path, "zz/p_0001.h5");
  sb_sweep_free(sw);

  /* an 11x11x11 grid has 1331 runs; 5-digit numbers appear past 9999 */
  sw = load_text("big.json", "{\"base\": \"base.json\", \"parameters\": {\"simulation.seed\": [0,1,2,3,4,5,6,7,8,9,10],"
                             " \"stimuli[0].params.rate\": [0,1,2,3,4,5,6,7,8,9,10], \"stimuli[1].params.rate\": "
                             "[0,1,2,3,4,5,6,7,8,9,10], \"populations.inh.params.tau_m\": [1,2,3,4,5,6,7,8]}}");
  assert_int_equal(sw->n_runs, 11 * 11 * 11 * 8);
  sb_sweep_run_path(sw, 10647, path, sizeof path);
  assert_string_equal(path, "big_runs/run_10647.h5");
  assert_string_equal(val(sw, 10647, 0), "10");
  assert_string_equal(val(sw, 10647, 3), "8");
  sb_sweep_free(sw);
}

static void test_random_reproducible(void **state) {
  (void)state;
  const char *fmt = "{\"base\": \"base.json\", \"mode\": \"random\", \"samples\": %d, \"seed\": %d, \"parameters\": {"
                    "\"stimuli[0].params.rate\": {\"distribution\": \"uniform\", \"min\": 1000, \"max\": 3000},"
                    " \"projections[1].weight\": {\"distribution\": \"loguniform\", \"min\": 0.5, \"max\": 8},"
                    " \"populations.exc.params.tau_m\": {\"distribution\": \"normal\", \"mean\": 20, \"std\": 2},"
                    " \"simulation.seed\": {\"distribution\": \"integer\", \"min\": 1, \"max\": 6},"
                    " \"populations.exc.model\": {\"distribution\": \"choice\", \"values\": [\"iaf_psc_delta\", \"iaf_psc_exp\"]}}}";
  char text[2048];
  snprintf(text, sizeof text, fmt, 200, 42);
  sb_sweep *a = load_text("r1.json", text);
  sb_sweep *b = load_text("r2.json", text);
  snprintf(text, sizeof text, fmt, 50, 42);
  sb_sweep *c = load_text("r3.json", text);
  snprintf(text, sizeof text, fmt, 200, 43);
  sb_sweep *d = load_text("r4.json", text);
  assert_int_equal(a->n_runs, 200);
  assert_int_equal(c->n_runs, 50);
  size_t differ = 0, n_choice0 = 0, n_int[7] = {0};
  double sum = 0, sumsq = 0, logsum = 0;
  for (size_t i = 0; i < 200; i++) {
    for (size_t p = 0; p < 5; p++) {
      assert_string_equal(val(a, i, p), val(b, i, p));            /* same seed: same samples */
      if (i < 50) assert_string_equal(val(a, i, p), val(c, i, p)); /* run i's sample ignores `samples` */
    }
    differ += strcmp(val(a, i, 0), val(d, i, 0)) != 0;
    double r = atof(val(a, i, 0)), w = atof(val(a, i, 1)), tau = atof(val(a, i, 2));
    long s = atol(val(a, i, 3));
    assert_true(r >= 1000 && r < 3000);
    assert_true(w >= 0.5 && w < 8);
    assert_true(s >= 1 && s <= 6);
    assert_null(strchr(val(a, i, 3), '.'));   /* integers stay integers */
    n_int[s]++;
    n_choice0 += !strcmp(val(a, i, 4), "\"iaf_psc_delta\"");
    assert_true(n_choice0 <= i + 1);
    sum += tau;
    sumsq += tau * tau;
    logsum += log(w);
  }
  assert_int_equal(differ, 200);   /* another seed: other samples */
  /* sample moments within ~4.5 standard errors (n = 200) */
  double mean = sum / 200, sd = sqrt(sumsq / 200 - mean * mean);
  check_abs(mean, 20.0, 4.5 * 2.0 / sqrt(200.0), "normal mean");
  check_abs(sd, 2.0, 4.5 * 2.0 / sqrt(400.0), "normal std");
  /* loguniform: log w uniform on [log 0.5, log 8]: mean log(2), sd log(16)/sqrt(12) */
  check_abs(logsum / 200, log(2.0), 4.5 * log(16.0) / sqrt(12.0) / sqrt(200.0), "loguniform mean of log");
  for (int s = 1; s <= 6; s++) assert_true(n_int[s] > 10);   /* each of 6 values: expect 33 */
  assert_true(n_choice0 > 70 && n_choice0 < 130);             /* expect 100, sd 7 */
  sb_sweep_free(a);
  sb_sweep_free(b);
  sb_sweep_free(c);
  sb_sweep_free(d);
}

static void test_bad_sweep_files(void **state) {
  (void)state;
  struct { const char *name, *text, *want; } bad[] = {
      {"zipbad.json", "{\"base\": \"base.json\", \"mode\": \"zip\", \"parameters\": {\"stimuli[0].params.rate\": [1, 2, 3],"
                      " \"projections[1].weight\": [-1, -2]}}",
       "parameters: zip needs lists of equal length: parameters.projections[1].weight has 2 values, parameters.stimuli[0].params.rate has 3"},
      {"nobase.json", "{\"parameters\": {\"x\": [1]}}", "base: missing"},
      {"basemissing.json", "{\"base\": \"nothere.json\", \"parameters\": {\"x\": [1]}}", "nothere.json: no such file"},
      {"badidx.json", "{\"base\": \"base.json\", \"parameters\": {\"projections[7].weight\": [1, 2]}}",
       "parameters.projections[7].weight: '7' is not an index of an array of 2"},
      {"badkey.json", "{\"base\": \"base.json\", \"parameters\": {\"populations.exk.params.tau_m\": [1, 2]}}",
       "parameters.populations.exk.params.tau_m: 'exk' is not a key of"},
      {"notlist.json", "{\"base\": \"base.json\", \"parameters\": {\"simulation.seed\": 3}}",
       "parameters.simulation.seed: expected a non-empty array of values (got an integer)"},
      {"emptylist.json", "{\"base\": \"base.json\", \"parameters\": {\"simulation.seed\": []}}",
       "parameters.simulation.seed: expected a non-empty array of values (got an empty array)"},
      {"mode.json", "{\"base\": \"base.json\", \"mode\": \"latin\", \"parameters\": {\"simulation.seed\": [1]}}",
       "mode: expected \"grid\", \"zip\" or \"random\" (got 'latin')"},
      {"dist.json", "{\"base\": \"base.json\", \"mode\": \"random\", \"samples\": 3, \"parameters\": {\"simulation.seed\": "
                    "{\"distribution\": \"gamma\", \"k\": 2}}}",
       "parameters.simulation.seed.distribution: unknown distribution 'gamma'"},
      {"distrange.json", "{\"base\": \"base.json\", \"mode\": \"random\", \"samples\": 3, \"parameters\": "
                         "{\"stimuli[0].params.rate\": {\"distribution\": \"uniform\", \"min\": 5, \"max\": 1}}}",
       "parameters.stimuli[0].params.rate.max: must be > min = 5 (got 1)"},
      {"nosamples.json", "{\"base\": \"base.json\", \"mode\": \"random\", \"parameters\": {\"simulation.seed\": "
                         "{\"distribution\": \"integer\", \"min\": 1, \"max\": 4}}}",
       "samples: missing"},
      {"unknown.json", "{\"base\": \"base.json\", \"paramters\": {}}", "(top level): unknown key 'paramters'"},
      {"setbad.json", "{\"base\": \"base.json\", \"set\": {\"stimuli[5].weight\": 1}, \"parameters\": {\"simulation.seed\": [1]}}",
       "set.stimuli[5].weight: '5' is not an index of an array of 2"},
      {"tiedbad.json", "{\"base\": \"base.json\", \"parameters\": {\"stimuli[0].params.rate,stimuli[2].params.rate\": [1]}}",
       "parameters.stimuli[0].params.rate,stimuli[2].params.rate: '2' is not an index of an array of 2"},
      {"trunc.json", "{\"base\": \"base.json\", \"parameters\": {", "line 1 column"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const char *p = sb_test_write_tmp(bad[i].name, bad[i].text);
    char od[700];
    snprintf(od, sizeof od, "%s/bad_out_%zu", sb_test_tmpdir(), i);
    int rc = sb_test_run(out, sizeof out, "sweep %s -o %s --quiet", p, od);
    if (rc != 2 || !strstr(out, bad[i].want)) fprintf(stderr, "case %s: exit %d:\n%s\n", bad[i].name, rc, out);
    assert_int_equal(rc, 2);
    check_contains(out, bad[i].name);
    check_contains(out, bad[i].want);
    assert_false(sb_test_file_exists(od));   /* nothing written */
  }
  /* a value the model rejects: the run's message names the sweep file, the run and the path */
  const char *p = sb_test_write_tmp("badval.json", "{\"base\": \"base.json\", \"parameters\": {\"populations.exc.params.tau_m\": [-4]}}");
  char od[700];
  snprintf(od, sizeof od, "%s/badval_out", sb_test_tmpdir());
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s --quiet", p, od), 2);
  check_contains(out, "badval.json: run 0");
  check_contains(out, "populations.exc.params.tau_m: must be > 0 (got -4)");
  char f0[800];
  snprintf(f0, sizeof f0, "%s/run_0000.h5", od);
  assert_false(sb_test_file_exists(f0));
  /* index out of range, in both spellings */
  p = sb_test_write_tmp("ok.json", "{\"base\": \"base.json\", \"parameters\": {\"simulation.seed\": [1, 2]}}");
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s --array-index 2", p, od), 2);
  check_contains(out, "--array-index: expected a run index in [0, 1] (got '2')");
  setenv("SLURM_ARRAY_TASK_ID", "x1", 1);
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s", p, od), 2);
  unsetenv("SLURM_ARRAY_TASK_ID");
  check_contains(out, "SLURM_ARRAY_TASK_ID: expected a run index in [0, 1] (got 'x1')");
}

/* ---- running ---- */

static int read_spikes(const char *file, const char *pop, double **t, uint64_t **id, size_t *n) {
  hid_t f;
  if (sb_h5_open_read(file, &f)) return -1;
  char a[256], b[256];
  snprintf(a, sizeof a, "spikes/%s/timestamps", pop);
  snprintf(b, sizeof b, "spikes/%s/node_ids", pop);
  size_t n2;
  int st = sb_h5_read(f, a, H5T_NATIVE_DOUBLE, (void **)t, n, NULL, NULL, 0);
  if (!st) st = sb_h5_read(f, b, H5T_NATIVE_UINT64, (void **)id, &n2, NULL, NULL, 0);
  H5Fclose(f);
  return st || n2 != *n ? -1 : 0;
}

/* 1 if the spike datasets of two files are bit-identical */
static int same_spikes(const char *x, const char *y, const char *pop) {
  double *ta, *tb;
  uint64_t *ia, *ib;
  size_t na, nb;
  assert_int_equal(read_spikes(x, pop, &ta, &ia, &na), 0);
  assert_int_equal(read_spikes(y, pop, &tb, &ib, &nb), 0);
  int same = na == nb && (na == 0 || (!memcmp(ta, tb, na * sizeof *ta) && !memcmp(ia, ib, na * sizeof *ia)));
  sb_free(ta); sb_free(tb); sb_free(ia); sb_free(ib);
  return same;
}

static const char sweep6[] = "{\"base\": \"base.json\", \"parameters\": {\"stimuli[0].params.rate\": [1800, 2600, 3100.5],"
                             " \"projections[1].weight\": [-1.0, -3.0]}}";

static void run_path(char *buf, size_t cap, const char *dir, int i) { snprintf(buf, cap, "%s/run_%04d.h5", dir, i); }

static void test_array_index_and_slurm(void **state) {
  (void)state;
  const char *p = sb_test_write_tmp("sel.json", sweep6);
  char od[700], f[800];
  snprintf(od, sizeof od, "%s/sel_out", sb_test_tmpdir());
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s --array-index 4 --quiet", p, od), 0);
  check_contains(out, "1 run done");
  for (int i = 0; i < 6; i++) {
    run_path(f, sizeof f, od, i);
    assert_int_equal(sb_test_file_exists(f), i == 4);
  }
  setenv("SLURM_ARRAY_TASK_ID", "1", 1);
  int rc = sb_test_run(out, sizeof out, "sweep %s -o %s --quiet", p, od);
  unsetenv("SLURM_ARRAY_TASK_ID");
  assert_int_equal(rc, 0);
  for (int i = 0; i < 6; i++) {
    run_path(f, sizeof f, od, i);
    assert_int_equal(sb_test_file_exists(f), i == 4 || i == 1);
  }
  /* --list shows the two complete runs and the overrides */
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s --list", p, od), 0);
  check_contains(out, "6 runs (grid)");
  check_contains(out, "     1  complete  stimuli[0].params.rate=1800  projections[1].weight=-3.0");
  check_contains(out, "     2  todo      stimuli[0].params.rate=2600  projections[1].weight=-1.0");
  /* the summary written by an array task lists all six rows, two complete */
  char csv[800];
  snprintf(csv, sizeof csv, "%s/summary.csv", od);
  FILE *fp = fopen(csv, "r");
  assert_non_null(fp);
  char line[4096];
  int rows = 0, complete = 0;
  while (fgets(line, sizeof line, fp)) {
    if (rows++ == 0) continue;
    int idx, c;
    assert_int_equal(sscanf(line, "%d,%d", &idx, &c), 2);
    assert_int_equal(idx, rows - 2);
    complete += c;
  }
  fclose(fp);
  assert_int_equal(rows, 7);
  assert_int_equal(complete, 2);
  /* a sweep run is the same simulation as `run --set` with the same overrides (bit-identical spikes) */
  char ref[800];
  snprintf(ref, sizeof ref, "%s/ref_run4.h5", sb_test_tmpdir());
  assert_int_equal(sb_test_run(out, sizeof out, "run %s/base.json -o %s --quiet --set stimuli[0].params.rate=3100.5"
                                                 " --set projections[1].weight=-1.0", sb_test_tmpdir(), ref), 0);
  run_path(f, sizeof f, od, 4);
  assert_true(same_spikes(f, ref, "exc"));
  assert_true(same_spikes(f, ref, "inh"));
  /* and not the same as the base model's (the overrides took effect) */
  char plain[800];
  snprintf(plain, sizeof plain, "%s/plain.h5", sb_test_tmpdir());
  assert_int_equal(sb_test_run(out, sizeof out, "run %s/base.json -o %s --quiet", sb_test_tmpdir(), plain), 0);
  assert_false(same_spikes(f, plain, "exc"));
}

static void copy_file(const char *from, const char *to) {
  FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
  assert_non_null(a);
  assert_non_null(b);
  char buf[65536];
  size_t r;
  while ((r = fread(buf, 1, sizeof buf, a)) > 0) assert_int_equal(fwrite(buf, 1, r, b), r);
  fclose(a);
  fclose(b);
}

static void test_resume(void **state) {
  (void)state;
  const char *p = sb_test_write_tmp("res.json", sweep6);
  char od[700], f[800], keep[800];
  snprintf(od, sizeof od, "%s/res_out", sb_test_tmpdir());
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s --quiet", p, od), 0);
  check_contains(out, "6 runs done, 0 skipped (complete), 6/6 complete");
  /* all complete: a restart runs nothing */
  struct stat s0, s1;
  run_path(f, sizeof f, od, 0);
  assert_int_equal(stat(f, &s0), 0);
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s --quiet", p, od), 0);
  check_contains(out, "0 runs done, 6 skipped (complete), 6/6 complete");
  assert_int_equal(stat(f, &s1), 0);
  assert_int_equal(s0.st_ino, s1.st_ino);
  assert_true(s0.st_mtim.tv_sec == s1.st_mtim.tv_sec && s0.st_mtim.tv_nsec == s1.st_mtim.tv_nsec);
  /* delete run 2, truncate run 3 (a partial file), overwrite run 5 with run 4's file (another
   * run's output under this name): exactly those three are redone, with the same spikes */
  char r2[800], r3[800], r4[800], r5[800];
  run_path(r2, sizeof r2, od, 2);
  run_path(r3, sizeof r3, od, 3);
  run_path(r4, sizeof r4, od, 4);
  run_path(r5, sizeof r5, od, 5);
  snprintf(keep, sizeof keep, "%s/keep3.h5", sb_test_tmpdir());
  copy_file(r3, keep);
  char keep2[800];
  snprintf(keep2, sizeof keep2, "%s/keep2.h5", sb_test_tmpdir());
  copy_file(r2, keep2);
  unlink(r2);
  struct stat st3;
  assert_int_equal(stat(r3, &st3), 0);
  assert_int_equal(truncate(r3, st3.st_size / 2), 0);
  copy_file(r4, r5);
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s", p, od), 0);
  check_contains(out, "3 runs done, 3 skipped (complete), 6/6 complete");
  check_contains(out, "run 0 complete");
  check_contains(out, "sweep: run 2 ->");
  check_contains(out, "sweep: run 3 ->");
  check_contains(out, "sweep: run 5 ->");
  assert_true(same_spikes(r2, keep2, "exc"));
  assert_true(same_spikes(r3, keep, "exc"));
  assert_true(same_spikes(r3, keep, "inh"));
  assert_false(same_spikes(r5, r4, "exc"));
  /* no temporary files left behind */
  char cmd[900];
  snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp", od);
  FILE *ls = popen(cmd, "r");
  int ntmp = -1;
  assert_int_equal(fscanf(ls, "%d", &ntmp), 1);
  pclose(ls);
  assert_int_equal(ntmp, 0);
}

/* Per population of one run file: spikes, rate (Hz over all n neurons), mean ISI CV (ddof 0)
 * over neurons with >= 3 spikes, computed here from the datasets. */
static void file_stats(const char *file, const char *pop, size_t n_nodes, double t_stop, uint64_t *spikes,
                       double *rate, double *cv) {
  double *t;
  uint64_t *id;
  size_t n;
  assert_int_equal(read_spikes(file, pop, &t, &id, &n), 0);
  *spikes = n;
  *rate = (double)n / ((double)n_nodes * t_stop / 1000.0);
  double cv_sum = 0;
  size_t n_cv = 0;
  for (size_t k = 0; k < n_nodes; k++) {
    double last = NAN, s = 0, ss = 0;
    size_t m = 0;
    for (size_t j = 0; j < n; j++) {   /* file is by time, so each neuron's spikes are in order */
      if (id[j] != k) continue;
      if (!isnan(last)) { double d = t[j] - last; s += d; ss += d * d; m++; }
      last = t[j];
    }
    if (m >= 2) {
      double mean = s / (double)m;
      cv_sum += sqrt(ss / (double)m - mean * mean) / mean;
      n_cv++;
    }
  }
  *cv = n_cv ? cv_sum / (double)n_cv : NAN;
  sb_free(t);
  sb_free(id);
}

static void test_summary_against_runs(void **state) {
  (void)state;
  const char *p = sb_test_write_tmp("sum.json", "{\"base\": \"base.json\", \"mode\": \"zip\", \"set\": {\"simulation.t_stop\": 150},"
                                         " \"parameters\": {\"stimuli[0].params.rate\": [2300, 2700, 3100],"
                                         " \"populations.exc.params.V_reset\": [10, 5, 0], \"populations.inh.model\": [\"iaf_psc_delta\", \"iaf_psc_delta\", \"iaf_psc_delta\"]}}");
  char od[700];
  snprintf(od, sizeof od, "%s/sum_out", sb_test_tmpdir());
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s --quiet --threads 2", p, od), 0);
  char csv[800];
  snprintf(csv, sizeof csv, "%s/summary.csv", od);
  FILE *fp = fopen(csv, "r");
  assert_non_null(fp);
  char line[4096];
  assert_non_null(fgets(line, sizeof line, fp));
  assert_string_equal(line, "index,complete,status,stimuli[0].params.rate,populations.exc.params.V_reset,populations.inh.model,"
                            "exc_spikes,exc_rate_Hz,exc_cv,inh_spikes,inh_rate_Hz,inh_cv,file,error\n");
  hid_t h;
  char h5[800];
  snprintf(h5, sizeof h5, "%s/summary.h5", od);
  assert_int_equal(sb_h5_open_read(h5, &h), SB_OK);
  double *rate_col, *cv_col, *par;
  uint64_t *spk_col;
  size_t nr;
  assert_int_equal(sb_h5_read(h, "stats/exc/rate", H5T_NATIVE_DOUBLE, (void **)&rate_col, &nr, NULL, NULL, 0), SB_OK);
  assert_int_equal(nr, 3);
  assert_int_equal(sb_h5_read(h, "stats/exc/cv", H5T_NATIVE_DOUBLE, (void **)&cv_col, &nr, NULL, NULL, 0), SB_OK);
  assert_int_equal(sb_h5_read(h, "stats/exc/spikes", H5T_NATIVE_UINT64, (void **)&spk_col, &nr, NULL, NULL, 0), SB_OK);
  assert_int_equal(sb_h5_read(h, "params/stimuli[0].params.rate", H5T_NATIVE_DOUBLE, (void **)&par, &nr, NULL, NULL, 0), SB_OK);
  assert_true(sb_h5_exists(h, "params/populations.inh.model"));   /* strings */
  H5Fclose(h);
  for (int i = 0; i < 3; i++) {
    assert_non_null(fgets(line, sizeof line, fp));
    char f[800];
    run_path(f, sizeof f, od, i);
    uint64_t se, si;
    double re, ce, ri, ci;
    file_stats(f, "exc", 80, 150.0, &se, &re, &ce);
    file_stats(f, "inh", 20, 150.0, &si, &ri, &ci);
    assert_true(se > 0 && si > 0);
    assert_false(isnan(ce));
    /* parse the CSV row: index, complete, 3 params, 6 stats, file */
    int idx, comp;
    double rate_p, vr;
    char rec[32];
    unsigned long long cse, csi;
    double cre, cce, cri, cci;
    /* a string value is written as its plain text (was """iaf_psc_delta""", the JSON quotes kept) */
    int got = sscanf(line, "%d,%d,complete,%lf,%lf,iaf_psc_delta,%llu,%lf,%lf,%llu,%lf,%lf", &idx, &comp, &rate_p, &vr, &cse,
                     &cre, &cce, &csi, &cri, &cci);
    (void)rec;
    assert_int_equal(got, 10);
    assert_int_equal(idx, i);
    assert_int_equal(comp, 1);
    check_abs(rate_p, 2300.0 + 400.0 * i, 0, "param column");
    check_abs(par[i], 2300.0 + 400.0 * i, 0, "h5 param column");
    check_abs(vr, 10.0 - 5.0 * i, 0, "V_reset column");
    assert_int_equal(cse, se);
    assert_int_equal(csi, si);
    assert_int_equal(spk_col[i], se);
    /* written with round-trip precision; the analysis module sums in another order */
    check_rel(cre, re, 1e-15, "exc rate run %d", i);
    check_rel(rate_col[i], re, 1e-15, "exc rate (h5) run %d", i);
    check_rel(cri, ri, 1e-15, "inh rate run %d", i);
    check_rel(cce, ce, 1e-9, "exc cv run %d", i);
    check_rel(cv_col[i], ce, 1e-9, "exc cv (h5) run %d", i);
    if (!isnan(ci)) check_rel(cci, ci, 1e-9, "inh cv run %d", i);
    check_contains(line, f);
  }
  fclose(fp);
  sb_free(rate_col);
  sb_free(cv_col);
  sb_free(spk_col);
  sb_free(par);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_grid_and_zip),
      cmocka_unit_test(test_random_reproducible),
      cmocka_unit_test(test_bad_sweep_files),
      cmocka_unit_test(test_array_index_and_slurm),
      cmocka_unit_test(test_resume),
      cmocka_unit_test(test_summary_against_runs),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
