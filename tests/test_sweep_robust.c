/* `spikebridge sweep` on bad input and failing runs (defects of a user trial; each case here
 * fails with the old binary): an empty output_dir or -o (wrote into /), a path set by two keys
 * (the summary named values the run did not use), a bad value in a later run (the sweep stopped
 * half-way, no summary), a run failing at run time (stopped everything), SLURM_ARRAY_TASK_ID
 * forms, -o naming a file with --list, and the summary's text of string and object values. */
#include "sim/sim.h"
#include "tests/testutil.h"

#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

static char out[65536];


static const char *tmp_path(const char *name) {
  static char paths[8][700];
  static int k;
  char *p = paths[k++ % 8];
  snprintf(p, 700, "%s/%s", sb_test_tmpdir(), name);
  return p;
}

/* 25 neurons, 40 ms */
static const char base_model[] =
    "{\"simulation\": {\"t_stop\": 40, \"seed\": 3, \"threads\": 1},\n"
    " \"populations\": {\"exc\": {\"model\": \"iaf_psc_delta\", \"n\": 20, \"params\": {\"tau_m\": 20, \"V_th\": 20, "
    "\"V_reset\": 10, \"E_L\": 0, \"t_ref\": 2}},\n"
    "                 \"inh\": {\"model\": \"iaf_psc_delta\", \"n\": 5, \"params\": {\"tau_m\": 20, \"V_th\": 20, "
    "\"V_reset\": 10, \"E_L\": 0, \"t_ref\": 2}}},\n"
    " \"projections\": [{\"source\": \"exc\", \"target\": \"inh\", \"rule\": \"fixed_indegree\", \"indegree\": 5, "
    "\"weight\": 0.5, \"delay\": 1.5}],\n"
    " \"stimuli\": [{\"model\": \"poisson_generator\", \"target\": \"exc\", \"params\": {\"rate\": 20000}, \"weight\": 0.5, "
    "\"delay\": 1.5}]}\n";

/* Two spikes 1 us apart into iaf_cond_exp: a weight of 9e6 nS is accepted at load (below 1e7)
 * but the two jumps add up beyond 1e7 nS, a run-time error (exit 1) at 11.001 ms. */
static const char cond_model[] =
    "{\"simulation\": {\"t_stop\": 30, \"seed\": 1, \"threads\": 1},\n"
    " \"populations\": {\"exc\": {\"model\": \"iaf_cond_exp\", \"n\": 4}},\n"
    " \"stimuli\": [{\"model\": \"spike_generator\", \"target\": \"exc\", \"node_ids\": [0, 1], "
    "\"params\": {\"spike_times\": [10, 10.001]}, \"weight\": 1, \"delay\": 1}]}\n";

static int setup(void **state) {
  (void)state;
  unsetenv("SLURM_ARRAY_TASK_ID");
  sb_test_write_tmp("base.json", base_model);
  sb_test_write_tmp("cond.json", cond_model);
  return 0;
}

/* the n-th line (0: header) of a text file into buf; 0 if there is none */
static int file_line(const char *file, int n, char *buf, size_t cap) {
  FILE *f = fopen(file, "r");
  if (!f) return 0;
  int ok = 0;
  for (int i = 0; i <= n; i++) ok = fgets(buf, (int)cap, f) != NULL;
  fclose(f);
  return ok;
}

/* ---- 1. output_dir "" ---- */

static void test_empty_output_dir(void **state) {
  (void)state;
  /* old: exit 0, "run 0 -> /run_0000.h5", summary in / */
  const char *p = sb_test_write_tmp("od_empty.json", "{\"base\": \"base.json\", \"set\": {\"simulation.t_stop\": 20}, "
                                              "\"parameters\": {\"populations.exc.params.tau_m\": [15]}, \"output_dir\": \"\"}");
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s --quiet", p), 2);
  check_contains(out, "od_empty.json: output_dir: expected a directory name (got an empty string");
  assert_null(strstr(out, "-> /run_0000.h5"));
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s --list", p), 2);
  check_contains(out, "od_empty.json: output_dir: expected a directory name");
  /* -o "" (run -o "" is refused too), with and without --list */
  const char *q = sb_test_write_tmp("od_ok.json", "{\"base\": \"base.json\", \"parameters\": {\"populations.exc.params.tau_m\": [15]}}");
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o '' --list", q), 2);
  check_contains(out, "od_ok.json: -o/--output-dir: expected a directory name (got an empty string");
  assert_null(strstr(out, "-> /"));
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o '' --quiet", q), 2);
  check_contains(out, "od_ok.json: -o/--output-dir: expected a directory name");
  /* a prefix too long for the file names it makes: refused with the checks (it failed at run 0) */
  char text[1200], pre[300];
  memset(pre, 'p', 245);
  pre[245] = '\0';
  snprintf(text, sizeof text, "{\"base\": \"base.json\", \"set\": {\"simulation.t_stop\": 20}, \"parameters\": "
           "{\"populations.exc.params.tau_m\": [15, 16]}, \"prefix\": \"%s\"}", pre);
  const char *lp = sb_test_write_tmp("long_prefix.json", text);
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s --quiet -o %s", lp, tmp_path("long_out")), 2);
  check_contains(out, "long_prefix.json: prefix: 'pppppppppppppppppppp...' (245 characters) makes file names of 269 characters");
  assert_false(sb_test_file_exists(tmp_path("long_out")));
  /* two sweeps sharing a folder: the second replaces the first's summary, now with a warning */
  const char *sa = sb_test_write_tmp("share_a.json", "{\"base\": \"base.json\", \"set\": {\"simulation.t_stop\": 10}, "
                                              "\"parameters\": {\"populations.exc.params.tau_m\": [15]}, \"prefix\": \"A\"}");
  const char *sb = sb_test_write_tmp("share_b.json", "{\"base\": \"base.json\", \"set\": {\"simulation.t_stop\": 10}, "
                                              "\"parameters\": {\"populations.exc.params.tau_m\": [16]}, \"prefix\": \"B\"}");
  const char *so = tmp_path("o_shared");
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s --quiet", sa, so), 0);
  assert_null(strstr(out, "warning"));
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s --quiet", sb, so), 0);
  check_contains(out, "/summary.h5 is the summary of another sweep (");
  check_contains(out, "share_a.json); this sweep's replaces it");
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s --quiet", sb, so), 0);   /* its own: no warning */
  assert_null(strstr(out, "warning"));
  /* runs shorter than the 5 ms bin: their summary has the unbinned statistics (it failed with
   * analyze's "--bin wider than the window" after the runs were written, exit 2, no summary) */
  const char *sp = sb_test_write_tmp("short.json", "{\"base\": \"base.json\", \"set\": {\"simulation.t_stop\": 3}, "
                                            "\"parameters\": {\"populations.exc.params.tau_m\": [15, 16]}, "
                                            "\"output_dir\": \"short_out\"}");
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s --quiet -o %s", sp, tmp_path("short_out")), 0);
  char csv[800];
  snprintf(csv, sizeof csv, "%s/summary.csv", tmp_path("short_out"));
  assert_true(sb_test_file_exists(csv));
}

/* ---- 2. a path set twice ---- */

static void test_path_set_twice(void **state) {
  (void)state;
  struct { const char *name, *text, *want; } bad[] = {
      /* old: exit 0, summary said tau_m = 15, 16 while both runs used 10 */
      {"dup_keys.json", "{\"base\": \"base.json\", \"parameters\": {\"populations.exc.params.tau_m\": [15, 16], "
                        "\"populations.exc.params.tau_m,populations.inh.params.tau_m\": [10]}}",
       "dup_keys.json: parameters.populations.exc.params.tau_m,populations.inh.params.tau_m: path "
       "'populations.exc.params.tau_m' is already set by parameters.populations.exc.params.tau_m"},
      {"dup_inkey.json", "{\"base\": \"base.json\", \"parameters\": {\"populations.inh.params.tau_m,populations.inh.params.tau_m\": [10, 12]}}",
       "dup_inkey.json: parameters.populations.inh.params.tau_m,populations.inh.params.tau_m: path "
       "'populations.inh.params.tau_m' appears twice in this key"},
      {"dup_set.json", "{\"base\": \"base.json\", \"set\": {\"simulation.t_stop\": 20, \"populations.exc.params.tau_m\": 12}, "
                       "\"parameters\": {\"populations.exc.params.tau_m\": [15, 16]}}",
       "dup_set.json: parameters.populations.exc.params.tau_m: path 'populations.exc.params.tau_m' is already set by "
       "set.populations.exc.params.tau_m"},
      /* the same path in two spellings */
      {"dup_spell.json", "{\"base\": \"base.json\", \"parameters\": {\"projections[0].weight\": [0.5, 1], "
                         "\"projections.0.weight\": [2]}}",
       "dup_spell.json: parameters.projections.0.weight: path 'projections.0.weight' is already set by "
       "parameters.projections[0].weight"},
      /* a later path that replaces the object holding an earlier one ("set" applies first) */
      {"dup_parent.json", "{\"base\": \"base.json\", \"set\": {\"populations.exc.params.tau_m\": 12}, "
                          "\"parameters\": {\"populations.exc.params\": [{\"tau_m\": 10}]}}",
       "dup_parent.json: parameters.populations.exc.params: path 'populations.exc.params' replaces what holds "
       "'populations.exc.params.tau_m', set before by set.populations.exc.params.tau_m"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const char *p = sb_test_write_tmp(bad[i].name, bad[i].text);
    char od[700];
    snprintf(od, sizeof od, "%s/dup_out_%zu", sb_test_tmpdir(), i);
    int rc = sb_test_run(out, sizeof out, "sweep %s -o %s --quiet", p, od);
    if (rc != 2 || !strstr(out, bad[i].want)) fprintf(stderr, "case %s: exit %d:\n%s\n", bad[i].name, rc, out);
    assert_int_equal(rc, 2);
    check_contains(out, bad[i].want);
    assert_false(sb_test_file_exists(od));   /* nothing written */
  }
  /* distinct paths in one key and across keys stay fine */
  const char *ok = sb_test_write_tmp("dup_none.json", "{\"base\": \"base.json\", \"set\": {\"populations.inh.params.tau_m\": 12}, "
                                               "\"parameters\": {\"populations.exc.params.tau_m,populations.exc.params.V_reset\": [5],"
                                               " \"projections[0].weight\": [1]}}");
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s --list", ok, tmp_path("dup_none_out")), 0);
  check_contains(out, "1 runs (grid)");
  /* an object first, then a path below it: the swept value is the one used */
  ok = sb_test_write_tmp("dup_below.json", "{\"base\": \"base.json\", \"set\": {\"populations.exc.params\": {\"tau_m\": 12, "
                                    "\"V_th\": 20, \"V_reset\": 10, \"E_L\": 0, \"t_ref\": 2}}, "
                                    "\"parameters\": {\"populations.exc.params.tau_m\": [5, 6]}}");
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s --list", ok, tmp_path("dup_below_out")), 0);
  check_contains(out, "2 runs (grid)");
}

/* ---- 3. every run checked before anything is written; run-time failures go on ---- */

static void test_bad_later_run(void **state) {
  (void)state;
  /* old: exit 2 after run 0 was written, no summary */
  const char *p = sb_test_write_tmp("mid.json", "{\"base\": \"base.json\", \"parameters\": {\"populations.exc.params.tau_m\": [15, -4, 16, -17]}}");
  const char *od = tmp_path("o_mid");
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s --quiet", p, od), 2);
  check_contains(out, "mid.json: run 1: with --set populations.exc.params.tau_m=-4: ");
  check_contains(out, "populations.exc.params.tau_m: must be > 0 (got -4)");
  check_contains(out, "mid.json: run 3: ");
  check_contains(out, "must be > 0 (got -17)");
  check_contains(out, "mid.json: 2 of 4 runs are invalid; nothing was run or written");
  assert_false(sb_test_file_exists(od));
  /* only the runs an invocation does are checked: run 2 alone is fine */
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s --quiet --array-index 2", p, od), 0);
  char f[800];
  snprintf(f, sizeof f, "%s/run_0002.h5", od);
  assert_true(sb_test_file_exists(f));
  snprintf(f, sizeof f, "%s/run_0000.h5", od);
  assert_false(sb_test_file_exists(f));
  /* random mode: a normal draw below 0 in run 4 (seed 1) is found before runs 0-3 are simulated
   * (old: exit 2 after four runs) */
  const char *r = sb_test_write_tmp("rnd.json", "{\"base\": \"base.json\", \"mode\": \"random\", \"samples\": 6, \"seed\": 1, "
                                         "\"parameters\": {\"populations.exc.params.tau_m\": {\"distribution\": \"normal\", "
                                         "\"mean\": 2, \"std\": 3}}}");
  sb_sweep *sw = NULL;
  assert_int_equal(sb_sweep_load(r, NULL, &sw), SB_OK);
  size_t first_neg = sw->n_runs;
  for (size_t i = 0; i < sw->n_runs && first_neg == sw->n_runs; i++)
    if (atof(sw->values[i]) <= 0) first_neg = i;
  assert_true(first_neg > 0 && first_neg < sw->n_runs);   /* a later run, as in the trial */
  char want[200];
  snprintf(want, sizeof want, "rnd.json: run %zu: with --set populations.exc.params.tau_m=%s", first_neg, sw->values[first_neg]);
  sb_sweep_free(sw);
  const char *ro = tmp_path("o_rnd");
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s --quiet", r, ro), 2);
  check_contains(out, want);
  assert_false(sb_test_file_exists(ro));
}

static void test_runtime_failure_goes_on(void **state) {
  (void)state;
  /* --force on a complete run whose (edited) base now fails: its old output stayed "complete" in
   * the summary beside the failure, and the failed-runs line was missing */
  const char *fb = sb_test_write_tmp("cond_f.json", cond_model);
  char fjson[900];
  snprintf(fjson, sizeof fjson, "{\"base\": \"%s\", \"parameters\": {\"stimuli[0].weight\": [1]}}", fb);
  const char *fp = sb_test_write_tmp("force.json", fjson);
  const char *fo = tmp_path("o_force");
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s --quiet", fp, fo), 0);
  sb_test_write_tmp("cond_f.json",
             "{\"simulation\": {\"t_stop\": 30, \"seed\": 1, \"threads\": 1},\n"
             " \"populations\": {\"exc\": {\"model\": \"iaf_cond_exp\", \"n\": 4}},\n"
             " \"stimuli\": [{\"model\": \"spike_generator\", \"target\": \"exc\", \"node_ids\": [0, 1], "
             "\"params\": {\"spike_times\": [10, 10.001]}, \"weight\": 1, \"delay\": 1},\n"
             "   {\"model\": \"spike_generator\", \"target\": \"exc\", \"node_ids\": [0], "
             "\"params\": {\"spike_times\": [10, 10.001]}, \"weight\": 9e6, \"delay\": 1}]}\n");
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s --quiet --force", fp, fo), 1);
  check_contains(out, "force.json: 1 run");
  char fr[800], fl[4096];
  snprintf(fr, sizeof fr, "%s/run_0000.h5", fo);
  assert_false(sb_test_file_exists(fr));
  snprintf(fr, sizeof fr, "%s/summary.csv", fo);
  assert_true(file_line(fr, 1, fl, sizeof fl));
  assert_int_equal(strncmp(fl, "0,0,failed,", 11), 0);
  /* old: exit 1 at run 1, runs 2 and 3 never ran, no summary */
  const char *p = sb_test_write_tmp("rt.json", "{\"base\": \"cond.json\", \"parameters\": {\"stimuli[0].weight\": [1, 9e6, 2, 9e6]}}");
  const char *od = tmp_path("o_rt");
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s --quiet", p, od), 1);
  check_contains(out, "rt.json: run 1: exc: neuron 0 at t = 11.001 ms: iaf_cond_exp: conductance g_ex + g_in = ");
  check_contains(out, "rt.json: run 3: exc: neuron 0");
  check_contains(out, "sweep: run 2 ->");
  check_contains(out, "2 runs done, 0 skipped (complete), 2/4 complete in total");
  check_contains(out, "rt.json: 2 runs failed (1, 3)");
  char f[800], line[4096];
  for (int i = 0; i < 4; i++) {
    snprintf(f, sizeof f, "%s/run_%04d.h5", od, i);
    assert_int_equal(sb_test_file_exists(f), i % 2 == 0);
    snprintf(f, sizeof f, "%s/run_%04d.failed", od, i);
    assert_int_equal(sb_test_file_exists(f), i % 2 == 1);
  }
  /* the summary has every row; the failed ones say so, with the error */
  char csv[800];
  snprintf(csv, sizeof csv, "%s/summary.csv", od);
  assert_true(file_line(csv, 0, line, sizeof line));
  assert_string_equal(line, "index,complete,status,stimuli[0].weight,exc_spikes,exc_rate_Hz,exc_cv,file,error\n");
  assert_true(file_line(csv, 1, line, sizeof line));
  snprintf(f, sizeof f, "0,1,complete,1,0,0.0,,%s/run_0000.h5,\n", od);
  assert_string_equal(line, f);
  assert_true(file_line(csv, 2, line, sizeof line));
  snprintf(f, sizeof f, "1,0,failed,9000000.0,,,,%s/run_0001.h5,%s: run 1: exc: neuron 0 at t = 11.001 ms: ", od, p);
  assert_int_equal(strncmp(line, f, strlen(f)), 0);
  check_contains(line, "is beyond 1e+07 nS");
  assert_true(file_line(csv, 3, line, sizeof line));
  assert_int_equal(strncmp(line, "2,1,complete,2,", 15), 0);
  assert_true(file_line(csv, 4, line, sizeof line));
  assert_int_equal(strncmp(line, "3,0,failed,", 11), 0);
  assert_false(file_line(csv, 5, line, sizeof line));
  /* HDF5: /status */
  hid_t h;
  snprintf(f, sizeof f, "%s/summary.h5", od);
  assert_int_equal(sb_h5_open_read(f, &h), SB_OK);
  hid_t d = H5Dopen2(h, "status", H5P_DEFAULT);
  assert_true(d >= 0);
  hid_t t = H5Dget_type(d);
  size_t w = H5Tget_size(t);
  char buf[4 * 64] = {0};
  assert_true(w == 8);
  assert_true(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
  assert_int_equal(memcmp(buf, "completefailed\0\0completefailed\0\0", 32), 0);
  H5Tclose(t);
  H5Dclose(d);
  assert_true(sb_h5_exists(h, "error"));
  H5Fclose(h);
  /* --list shows them; a restart retries only the failed runs */
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s --list", p, od), 0);
  check_contains(out, "     1  failed    stimuli[0].weight=9000000.0");
  check_contains(out, "     2  complete  stimuli[0].weight=2");
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s --quiet", p, od), 1);
  check_contains(out, "0 runs done, 2 skipped (complete), 2/4 complete in total");
  check_contains(out, "rt.json: 2 runs failed (1, 3)");
  /* --summary alone rebuilds the table and says how many rows are failed runs (exit 0) */
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s --summary", p, od), 0);
  check_contains(out, "rt.json: 2 runs failed (status 'failed' in the summary)");
  assert_true(file_line(csv, 4, line, sizeof line));
  assert_int_equal(strncmp(line, "3,0,failed,", 11), 0);
  /* a changed definition: run 1 is another run now (the marker is not its), and it succeeds */
  sb_test_write_tmp("rt.json", "{\"base\": \"cond.json\", \"parameters\": {\"stimuli[0].weight\": [1, 3, 2, 9e6]}}");
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s --list", p, od), 0);
  check_contains(out, "     1  todo      stimuli[0].weight=3");
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s --quiet --array-index 1", p, od), 0);
  snprintf(f, sizeof f, "%s/run_0001.failed", od);
  assert_false(sb_test_file_exists(f));   /* removed once the run is complete */
  assert_true(file_line(csv, 2, line, sizeof line));
  assert_int_equal(strncmp(line, "1,1,complete,3,", 15), 0);
  assert_true(file_line(csv, 4, line, sizeof line));
  assert_int_equal(strncmp(line, "3,0,failed,", 11), 0);
}

/* ---- 4. minor ---- */

static void test_index_forms(void **state) {
  (void)state;
  const char *p = sb_test_write_tmp("idx.json", "{\"base\": \"base.json\", \"set\": {\"simulation.t_stop\": 10}, "
                                         "\"parameters\": {\"simulation.seed\": [1, 2, 3]}}");
  const char *od = tmp_path("o_idx");
  /* set but empty: old ran every run */
  setenv("SLURM_ARRAY_TASK_ID", "", 1);
  int rc = sb_test_run(out, sizeof out, "sweep %s -o %s --quiet", p, od);
  assert_int_equal(rc, 2);
  check_contains(out, "SLURM_ARRAY_TASK_ID: set but empty (expected a run index in [0, 2]; unset it to run every run)");
  assert_false(sb_test_file_exists(od));
  /* non-canonical forms are all refused (old: " 1" and "01" ran run 1, "3 " was refused) */
  const char *forms[] = {" 1", "01", "1 ", "+1", "0x1", "1.0"};
  for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
    setenv("SLURM_ARRAY_TASK_ID", forms[i], 1);
    rc = sb_test_run(out, sizeof out, "sweep %s -o %s --quiet", p, od);
    assert_int_equal(rc, 2);
    char want[200];
    snprintf(want, sizeof want, "SLURM_ARRAY_TASK_ID: expected a run index in [0, 2] (got '%s'): plain decimal digits", forms[i]);
    check_contains(out, want);
    assert_false(sb_test_file_exists(od));
  }
  unsetenv("SLURM_ARRAY_TASK_ID");
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s --quiet --array-index 01", p, od), 2);
  check_contains(out, "--array-index: expected a run index in [0, 2] (got '01'): plain decimal digits");
  setenv("SLURM_ARRAY_TASK_ID", "0", 1);
  rc = sb_test_run(out, sizeof out, "sweep %s -o %s --quiet", p, od);
  unsetenv("SLURM_ARRAY_TASK_ID");
  assert_int_equal(rc, 0);
  check_contains(out, "1 run done");
}

static void test_output_dir_is_a_file(void **state) {
  (void)state;
  const char *p = sb_test_write_tmp("odf.json", "{\"base\": \"base.json\", \"parameters\": {\"simulation.seed\": [1, 2]}}");
  const char *file = tmp_path("base.json");
  /* old: --list said "todo" with exit 0 while the sweep itself exited 2 */
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s --list", p, file), 2);
  check_contains(out, "odf.json: -o/--output-dir: '");
  check_contains(out, "base.json' exists and is not a directory");
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s --quiet", p, file), 2);
  check_contains(out, "base.json' exists and is not a directory");
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s/sub --list", p, file), 2);
  check_contains(out, "a part of the path is a file, not a directory");
  /* the same from the file's output_dir */
  char text[1200];
  snprintf(text, sizeof text, "{\"base\": \"base.json\", \"output_dir\": \"%s\", \"parameters\": {\"simulation.seed\": [1]}}", file);
  const char *q = sb_test_write_tmp("odf2.json", text);
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s --list", q), 2);
  check_contains(out, "odf2.json: output_dir: '");
  check_contains(out, "base.json' exists and is not a directory");
}

static void test_summary_value_text(void **state) {
  (void)state;
  const char *p = sb_test_write_tmp("txt.json", "{\"base\": \"base.json\", \"set\": {\"simulation.t_stop\": 10}, \"mode\": \"zip\", \"parameters\": {"
                                         "\"populations.inh.model\": [\"iaf_psc_delta\", \"iaf_psc_exp\"],"
                                         " \"populations.exc.params\": [{\"tau_m\": 10, \"V_th\": 20, \"V_reset\": 10, \"E_L\": 0, \"t_ref\": 0.1},"
                                         " {\"tau_m\": 12.3, \"V_th\": 20, \"V_reset\": 10, \"E_L\": 0, \"t_ref\": 2}]}}");
  sb_sweep *sw = NULL;
  assert_int_equal(sb_sweep_load(p, NULL, &sw), SB_OK);
  /* overrides: reals in objects in their shortest round-trip form (old: 0.10000000000000001) */
  assert_string_equal(sw->values[1], "{\"tau_m\":10,\"V_th\":20,\"V_reset\":10,\"E_L\":0,\"t_ref\":0.1}");
  assert_string_equal(sw->values[3], "{\"tau_m\":12.3,\"V_th\":20,\"V_reset\":10,\"E_L\":0,\"t_ref\":2}");
  assert_string_equal(sw->values[0], "\"iaf_psc_delta\"");   /* JSON text for --set */
  sb_sweep_free(sw);
  const char *od = tmp_path("o_txt");
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s --quiet", p, od), 0);
  char csv[800], line[4096];
  snprintf(csv, sizeof csv, "%s/summary.csv", od);
  assert_true(file_line(csv, 1, line, sizeof line));
  /* a string as its plain text (old: """iaf_psc_delta"""), an object as JSON (CSV-quoted) */
  const char *want = "0,1,complete,iaf_psc_delta,\"{\"\"tau_m\"\":10,\"\"V_th\"\":20,\"\"V_reset\"\":10,\"\"E_L\"\":0,\"\"t_ref\"\":0.1}\",";
  if (strncmp(line, want, strlen(want))) fprintf(stderr, "got %s", line);
  assert_int_equal(strncmp(line, want, strlen(want)), 0);
  assert_true(file_line(csv, 2, line, sizeof line));
  assert_int_equal(strncmp(line, "1,1,complete,iaf_psc_exp,", 25), 0);
  /* HDF5 string column: plain text too */
  hid_t h;
  char f[800];
  snprintf(f, sizeof f, "%s/summary.h5", od);
  assert_int_equal(sb_h5_open_read(f, &h), SB_OK);
  hid_t d = H5Dopen2(h, "params/populations.inh.model", H5P_DEFAULT);
  assert_true(d >= 0);
  hid_t t = H5Dget_type(d);
  assert_int_equal(H5Tget_size(t), strlen("iaf_psc_delta"));
  char buf[64] = {0};
  assert_true(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
  assert_int_equal(memcmp(buf, "iaf_psc_deltaiaf_psc_exp", 24), 0);
  H5Tclose(t);
  H5Dclose(d);
  H5Fclose(h);
}

/* Run files record the base model's fingerprint: after an edit of the base model a rerun redoes
 * every run (old: all were "skipped (complete)" and the summary kept the old model's results). */
static void test_edited_base(void **state) {
  (void)state;
  const char *base = sb_test_write_tmp("eb.json", base_model);
  const char *p = sb_test_write_tmp("eb_sweep.json", "{\"base\": \"eb.json\", \"parameters\": {\"populations.exc.params.tau_m\": [15, 16]}}");
  const char *od = tmp_path("o_eb");
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s", p, od), 0);
  check_contains(out, ": 2 runs done, 0 skipped (complete)");
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s", p, od), 0);
  check_contains(out, ": 0 runs done, 2 skipped (complete)");
  /* half the Poisson rate in the base model */
  char *edited = strdup(base_model), *at = strstr(edited, "\"rate\": 20000");
  assert_non_null(at);
  memcpy(at, "\"rate\": 10000", 13);
  sb_test_write_tmp("eb.json", edited);
  free(edited);
  int rc_e = sb_test_run(out, sizeof out, "sweep %s -o %s", p, od);
  if (rc_e) fprintf(stderr, "%s", out);
  assert_int_equal(rc_e, 0);
  check_contains(out, ": 2 runs done, 0 skipped (complete)");
  /* the run file is the edited model's: the same spikes as `run` of it, and its fingerprint */
  char f[800], g[800], fp[64];
  snprintf(f, sizeof f, "%s/run_0001.h5", od);
  snprintf(g, sizeof g, "%s/eb_direct.h5", sb_test_tmpdir());
  assert_int_equal(sb_test_run(out, sizeof out, "run %s --set populations.exc.params.tau_m=16 -o %s --quiet", base, g), 0);
  double *ta = NULL, *tb = NULL;
  size_t na = 0, nb = 0;
  hid_t ha, hb;
  assert_int_equal(sb_h5_open_read(f, &ha), SB_OK);
  assert_int_equal(sb_h5_open_read(g, &hb), SB_OK);
  assert_int_equal(sb_h5_read(ha, "spikes/exc/timestamps", H5T_NATIVE_DOUBLE, (void **)&ta, &na, NULL, NULL, 0), SB_OK);
  assert_int_equal(sb_h5_read(hb, "spikes/exc/timestamps", H5T_NATIVE_DOUBLE, (void **)&tb, &nb, NULL, NULL, 0), SB_OK);
  assert_true(na > 0);
  assert_int_equal(na, nb);
  assert_int_equal(memcmp(ta, tb, na * sizeof *ta), 0);
  sb_free(ta);
  sb_free(tb);
  char *stored = NULL;
  hid_t sg = H5Gopen2(ha, "sweep", H5P_DEFAULT);
  assert_true(sg >= 0);
  assert_int_equal(sb_h5_attr_read_string(sg, "model_fingerprint", &stored), SB_OK);
  assert_int_equal(sb_file_fingerprint(base, fp, sizeof fp), SB_OK);
  assert_string_equal(stored, fp);
  sb_free(stored);
  H5Gclose(sg);
  H5Fclose(ha);
  H5Fclose(hb);
  /* and unchanged again: skipped */
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s", p, od), 0);
  check_contains(out, ": 0 runs done, 2 skipped (complete)");
}

/* examples/slurm/sweep_array.sbatch --submit with a stand-in `sbatch` (it records its arguments
 * and runs the summary job's --wrap command): the array size comes from --list, and the summary
 * job works for a sweep file whose name holds a quote (the unquoted --wrap broke on it). */
static void test_sbatch_submit(void **state) {
  (void)state;
  char d[700], cmd[4096];
  snprintf(d, sizeof d, "%s/sb'atch", sb_test_tmpdir());
  snprintf(cmd, sizeof cmd, "mkdir -p \"%s/bin\"", d);
  assert_int_equal(system(cmd), 0);
  char fake[800], sw[800], cwd[1024];
  snprintf(fake, sizeof fake, "%s/bin/sbatch", d);
  FILE *f = fopen(fake, "w");
  assert_non_null(f);
  fputs("#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in --parsable) echo 42; exit 0;; --array=*) echo \"ARRAY $a\";; "
        "--wrap=*) echo \"WRAP ${a#--wrap=}\"; sh -c \"${a#--wrap=}\"; echo \"wrap exit=$?\";; esac; done\n", f);
  fclose(f);
  assert_int_equal(chmod(fake, 0755), 0);
  assert_non_null(getcwd(cwd, sizeof cwd));
  snprintf(sw, sizeof sw, "%s/it's.json", d);
  f = fopen(sw, "w");
  assert_non_null(f);
  fprintf(f, "{\"base\": \"%s/base.json\", \"parameters\": {\"populations.exc.params.tau_m\": [15, 16, 17]}}",
          sb_test_tmpdir());
  fclose(f);
  snprintf(cmd, sizeof cmd, "cd \"%s\" && PATH=\"%s/bin:$PATH\" SB=%s bash %s/examples/slurm/sweep_array.sbatch --submit "
           "\"%s\" 2>&1", d, d, sb_test_bin(), cwd, sw);
  int rc = sb_test_shell(cmd, out, sizeof out);
  if (rc) fprintf(stderr, "%s\n", out);
  assert_int_equal(rc, 0);
  check_contains(out, "submitted array job 42 (3 runs) and its summary job");
  check_contains(out, "wrap exit=0");
  check_contains(out, "0/3 complete in total");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sbatch_submit),
      cmocka_unit_test(test_edited_base),
      cmocka_unit_test(test_empty_output_dir),
      cmocka_unit_test(test_path_set_twice),
      cmocka_unit_test(test_bad_later_run),
      cmocka_unit_test(test_runtime_failure_goes_on),
      cmocka_unit_test(test_index_forms),
      cmocka_unit_test(test_output_dir_is_a_file),
      cmocka_unit_test(test_summary_value_text),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
