/* Checkpoint and restart (`spikebridge run --checkpoint-every/--resume`, sim/checkpoint.c):
 * periodic checkpoints leave the output unchanged; a run resumed from a checkpoint (with
 * another thread count) writes spikes and state samples bit-identical to an uninterrupted run;
 * SIGTERM partway writes a checkpoint holding the spikes so far, exits 3 and leaves no output
 * under the final name; bad checkpoints are refused with exit 2. The model mixes exact
 * (psc_exp, psc_delta) neurons, drawn weights and delays (and drawn weights with a constant delay:
 * weighted events in the queues at checkpoint time), Poisson, spike and dc generators.
 * A plastic network (tests/ref/stdp_net.json: three STDP rules, weight snapshots) resumed with
 * another thread count gives the same spikes, final weights and snapshots, bit for bit. */
#include "sim/sim.h"
#include "tests/testutil.h"

#include <math.h>

static char out[65536];
static char dir[512], model[600];

static const char model_text[] =
    "{\"simulation\": {\"t_stop\": 400, \"seed\": 5, \"threads\": 1},\n"
    " \"populations\": {\"exc\": {\"model\": \"iaf_psc_exp\", \"n\": 400, \"params\": {\"tau_m\": 20, \"V_th\": -50, "
    "\"V_reset\": -60, \"E_L\": -60, \"t_ref\": 2, \"C_m\": 250, \"tau_syn_ex\": 2.5, \"tau_syn_in\": 4.0},\n"
    "   \"init\": {\"V_m\": {\"distribution\": \"uniform\", \"min\": -60, \"max\": -50}}},\n"
    "   \"inh\": {\"model\": \"iaf_psc_delta\", \"n\": 100, \"params\": {\"tau_m\": 20, \"V_th\": 20, \"V_reset\": 10, "
    "\"E_L\": 0, \"t_ref\": 2}}},\n"
    " \"projections\": [{\"source\": \"exc\", \"target\": \"exc\", \"rule\": \"fixed_indegree\", \"indegree\": 40, "
    "\"weight\": {\"distribution\": \"uniform\", \"min\": 50, \"max\": 120}, \"delay\": {\"distribution\": \"uniform\", "
    "\"min\": 0.5, \"max\": 3.0}},\n"
    "   {\"source\": \"inh\", \"target\": \"exc\", \"rule\": \"fixed_indegree\", \"indegree\": 10, \"weight\": -300.0, \"delay\": 1.0},\n"
    "   {\"source\": \"exc\", \"target\": \"inh\", \"rule\": \"fixed_indegree\", \"indegree\": 40, \"weight\": {\"distribution\": "
    "\"normal\", \"mean\": 0.5, \"std\": 0.1}, \"delay\": 1.0}],\n"
    " \"stimuli\": [{\"model\": \"poisson_generator\", \"target\": \"exc\", \"params\": {\"rate\": 3000}, \"weight\": 60, \"delay\": 1.0},\n"
    "   {\"model\": \"poisson_generator\", \"target\": \"inh\", \"params\": {\"rate\": 2000}, \"weight\": 0.5, \"delay\": 1.5},\n"
    "   {\"model\": \"spike_generator\", \"target\": \"exc\", \"node_ids\": [0, 1, 2], \"params\": {\"spike_times\": [10, 150.5, "
    "250.25, 390]}, \"weight\": 500, \"delay\": 1.0},\n"
    "   {\"model\": \"dc_generator\", \"target\": \"exc\", \"node_ids\": [5], \"params\": {\"amplitude\": 300, \"start\": 100, "
    "\"stop\": 300}}],\n"
    " \"record\": {\"spikes\": \"all\", \"state\": [{\"population\": \"exc\", \"variables\": [\"V_m\"], \"node_ids\": [0, 5], "
    "\"interval\": 0.5}]}}\n";

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "%s", sb_test_tmpdir());
  snprintf(model, sizeof model, "%s/cp.json", dir);
  FILE *f = fopen(model, "w");
  if (!f) return -1;
  fputs(model_text, f);
  fclose(f);
  return 0;
}

typedef struct { double *t; uint64_t *id; size_t n; } spikes;

static void read_spikes(const char *file, const char *pop, spikes *s) {
  hid_t f;
  assert_int_equal(sb_h5_open_read(file, &f), SB_OK);
  char a[256], b[256];
  snprintf(a, sizeof a, "spikes/%s/timestamps", pop);
  snprintf(b, sizeof b, "spikes/%s/node_ids", pop);
  size_t n2;
  assert_int_equal(sb_h5_read(f, a, H5T_NATIVE_DOUBLE, (void **)&s->t, &s->n, NULL, NULL, 0), SB_OK);
  assert_int_equal(sb_h5_read(f, b, H5T_NATIVE_UINT64, (void **)&s->id, &n2, NULL, NULL, 0), SB_OK);
  assert_int_equal(n2, s->n);
  H5Fclose(f);
}

static void free_spikes(spikes *s) { sb_free(s->t); sb_free(s->id); }

/* population pop's spikes of two files bit-identical (and more than 100) */
static void assert_same_spikes(const char *x, const char *y, const char *pop) {
  spikes a, b;
  read_spikes(x, pop, &a);
  read_spikes(y, pop, &b);
  if (a.n != b.n) fprintf(stderr, "%s vs %s: %s has %zu vs %zu spikes\n", x, y, pop, a.n, b.n);
  assert_int_equal(a.n, b.n);
  assert_true(a.n > 100);
  assert_memory_equal(a.t, b.t, a.n * sizeof *a.t);
  assert_memory_equal(a.id, b.id, a.n * sizeof *a.id);
  free_spikes(&a);
  free_spikes(&b);
}

/* spikes and V_m samples of two files bit-identical */
static void assert_same_output(const char *x, const char *y) {
  assert_same_spikes(x, y, "exc");
  assert_same_spikes(x, y, "inh");
  hid_t fx, fy;
  float *dx, *dy;
  size_t nx, ny;
  assert_int_equal(sb_h5_open_read(x, &fx), SB_OK);
  assert_int_equal(sb_h5_open_read(y, &fy), SB_OK);
  assert_int_equal(sb_h5_read(fx, "report/exc/data", H5T_NATIVE_FLOAT, (void **)&dx, &nx, NULL, NULL, 0), SB_OK);
  assert_int_equal(sb_h5_read(fy, "report/exc/data", H5T_NATIVE_FLOAT, (void **)&dy, &ny, NULL, NULL, 0), SB_OK);
  assert_int_equal(nx, ny);
  assert_memory_equal(dx, dy, nx * sizeof *dx);
  sb_free(dx);
  sb_free(dy);
  H5Fclose(fx);
  H5Fclose(fy);
}

static double checkpoint_time(const char *cp) {
  sb_checkpoint_info info;
  assert_int_equal(sb_checkpoint_read_info(cp, &info), SB_OK);
  double t = info.t;
  sb_checkpoint_info_free(&info);
  return t;
}

static void test_periodic_and_resume(void **state) {
  (void)state;
  char a[700], b[700], cp[700], c[700];
  snprintf(a, sizeof a, "%s/A.h5", dir);
  snprintf(b, sizeof b, "%s/B.h5", dir);
  snprintf(cp, sizeof cp, "%s/B.ckpt.h5", dir);
  snprintf(c, sizeof c, "%s/C.h5", dir);
  assert_int_equal(sb_test_run(out, sizeof out, "run %s -o %s --quiet", model, a), 0);
  assert_false(sb_test_file_exists(cp));
  /* checkpoints every 100 ms: the output does not change; the last one is at the first window end >= 300 ms */
  assert_int_equal(sb_test_run(out, sizeof out, "run %s -o %s --quiet --checkpoint-every 100", model, b), 0);
  assert_same_output(a, b);
  double t = checkpoint_time(cp);
  assert_true(t >= 300.0 && t < 301.0);
  /* resume from it with 2 threads: the same spikes and samples as the uninterrupted run */
  assert_int_equal(sb_test_run(out, sizeof out, "run --resume %s -o %s --quiet --threads 2", cp, c), 0);
  assert_same_output(a, c);
  /* the checkpoint holds the spikes before t in the SONATA layout: a prefix of the full run's */
  spikes full, part;
  read_spikes(a, "exc", &full);
  read_spikes(cp, "exc", &part);
  size_t m = 0;
  while (m < full.n && full.t[m] < t) m++;
  assert_true(part.n > 0 && part.n <= m);
  assert_memory_equal(part.t, full.t, part.n * sizeof *part.t);
  assert_memory_equal(part.id, full.id, part.n * sizeof *part.id);
  for (size_t i = part.n; i < m; i++) assert_true(full.t[i] >= t - 3.1);   /* at most the last window's */
  free_spikes(&full);
  free_spikes(&part);
  /* --t-stop on resume extends the run: equal to a run to 500 ms */
  char a5[700], c5[700];
  snprintf(a5, sizeof a5, "%s/A500.h5", dir);
  snprintf(c5, sizeof c5, "%s/C500.h5", dir);
  assert_int_equal(sb_test_run(out, sizeof out, "run %s -o %s --quiet --t-stop 500", model, a5), 0);
  assert_int_equal(sb_test_run(out, sizeof out, "run --resume %s -o %s --quiet --t-stop 500", cp, c5), 0);
  assert_same_output(a5, c5);
  /* a --t-stop before the checkpoint: exit 2 naming the flag and the checkpoint */
  assert_int_equal(sb_test_run(out, sizeof out, "run --resume %s -o %s --quiet --t-stop 100", cp, c5), 2);
  check_contains(out, "--t-stop 100: earlier than the time of the checkpoint");
}

/* A checkpoint within one window of the t_stop of the run that wrote it (fresh-user trial 6): the
 * delivery before it queued the arrivals at or after that t_stop instead of taking them at once
 * (iaf_psc_exp targets, inputs at delivery), and the resumed run processed them queued: one spike
 * in 313 differed by 1.6e-13 ms. Now the window's first processing offers such queued entries to
 * the delivery step again (replay_queued): bit-identical, for constant and drawn weights and two
 * checkpoint times. */
static const char near_text[] =
    "{\"simulation\": {\"t_stop\": 40.0, \"seed\": 4},\n"
    " \"populations\": {\"exc\": {\"model\": \"iaf_psc_delta\", \"n\": 700},\n"
    "   \"inh\": {\"model\": \"iaf_psc_exp\", \"n\": 2000, \"params\": {\"I_e\": 300.0},\n"
    "     \"init\": {\"V_m\": {\"distribution\": \"uniform\", \"min\": -70.0, \"max\": -55.0}}}},\n"
    " \"record\": {\"spikes\": \"all\"},\n"
    " \"stimuli\": [{\"model\": \"poisson_generator\", \"target\": \"exc\", \"params\": {\"rate\": 35.0}, \"weight\": 100.0, "
    "\"delay\": 1.0}],\n"
    " \"projections\": [{\"source\": \"exc\", \"target\": \"inh\", \"rule\": \"fixed_indegree\", \"indegree\": 50, "
    "\"weight\": %s, \"delay\": 0.8}]}\n";

static void test_resume_near_t_stop(void **state) {
  (void)state;
  const char *weights[] = {"20.0", "{\"distribution\": \"normal\", \"mean\": 20.0, \"std\": 2.0}"};
  const char *cuts[][2] = {{"5", "6"}, {"20.3", "21"}};
  for (int w = 0; w < 2; w++) {
    char m[700], full[700], part[700], cp[700], res[700];
    snprintf(m, sizeof m, "%s/near%d.json", dir, w);
    FILE *f = fopen(m, "w");
    assert_non_null(f);
    fprintf(f, near_text, weights[w]);
    fclose(f);
    snprintf(full, sizeof full, "%s/near_full%d.h5", dir, w);
    assert_int_equal(sb_test_run(out, sizeof out, "run %s -o %s --quiet", m, full), 0);
    for (int c = 0; c < 2; c++) {
      snprintf(part, sizeof part, "%s/near_part%d%d.h5", dir, w, c);
      snprintf(cp, sizeof cp, "%s/near_part%d%d.ckpt.h5", dir, w, c);
      snprintf(res, sizeof res, "%s/near_res%d%d.h5", dir, w, c);
      assert_int_equal(sb_test_run(out, sizeof out, "run %s -o %s --quiet --t-stop %s --checkpoint-every %s", m, part,
                                   cuts[c][1], cuts[c][0]), 0);
      assert_int_equal(sb_test_run(out, sizeof out, "run --resume %s -o %s --quiet --t-stop 40", cp, res), 0);
      assert_same_spikes(full, res, "inh");
    }
  }
}

/* Run shell command `cmd`, its output into `out`. */
static void shell(const char *cmd) { assert_true(sb_test_shell(cmd, out, sizeof out) >= 0); }

/* The number of temporary files (*.tmp.*) left in the test directory. */
static int tmp_files(void) {
  char ls[900];
  snprintf(ls, sizeof ls, "ls %s | grep -c tmp", dir);
  FILE *q = popen(ls, "r");
  int ntmp = -1;
  assert_non_null(q);
  assert_int_equal(fscanf(q, "%d", &ntmp), 1);
  pclose(q);
  return ntmp;
}

static void test_sigterm(void **state) {
  (void)state;
  char ref[700], d[700], cp[700], cmd[4096];
  snprintf(ref, sizeof ref, "%s/ref1500.h5", dir);
  snprintf(d, sizeof d, "%s/D.h5", dir);
  snprintf(cp, sizeof cp, "%s/D.ckpt.h5", dir);
  assert_int_equal(sb_test_run(out, sizeof out, "run %s -o %s --quiet --t-stop 1500", model, ref), 0);
  /* start a run, wait until it is simulating (its first periodic checkpoint exists), SIGTERM it */
  snprintf(cmd, sizeof cmd,
           "%s run %s -o %s --quiet --t-stop 1500 --checkpoint-every 20 & pid=$!; "
           "i=0; while [ ! -f %s ] && [ $i -lt 600 ]; do sleep 0.01; i=$((i+1)); done; "
           "kill -TERM $pid; wait $pid; echo \"exit=$?\"",
           sb_test_bin(), model, d, cp);
  shell(cmd);
  check_contains(out, "exit=3");
  assert_false(sb_test_file_exists(d));   /* no output under the final name */
  assert_int_equal(tmp_files(), 0);
  double t = checkpoint_time(cp);
  assert_true(t > 0 && t < 1500.0);
  /* resume: bit-identical to the uninterrupted run; it keeps the run's --checkpoint-every 20 and
   * checkpoint file (it took no more checkpoints unless the flags were given again) */
  assert_int_equal(sb_test_run(out, sizeof out, "run --resume %s -o %s --quiet --threads 2", cp, d), 0);
  assert_same_output(ref, d);
  double tl = checkpoint_time(cp);   /* the first window end at or after 1480 ms */
  assert_true(tl >= 1480.0 && tl < 1485.0);
  /* SIGHUP (a closed terminal) the same way (it left a .tmp file) */
  char e[700], ecp[700];
  snprintf(e, sizeof e, "%s/E.h5", dir);
  snprintf(ecp, sizeof ecp, "%s/E.ckpt.h5", dir);
  snprintf(cmd, sizeof cmd,
           "%s run %s -o %s --quiet --t-stop 1500 --checkpoint-every 20 & pid=$!; "
           "i=0; while [ ! -f %s ] && [ $i -lt 600 ]; do sleep 0.01; i=$((i+1)); done; "
           "kill -HUP $pid; wait $pid; echo \"exit=$?\"",
           sb_test_bin(), model, e, ecp);
  shell(cmd);
  check_contains(out, "exit=3");
  assert_false(sb_test_file_exists(e));
  assert_int_equal(tmp_files(), 0);
  assert_true(checkpoint_time(ecp) > 0);
  /* a resume without -o, from another directory, writes where the interrupted run wrote (it
   * wrote the model's simulation.output, or MODEL.h5, in the working directory) */
  snprintf(cmd, sizeof cmd, "cd / && %s run --resume %s --quiet 2>&1; echo \"exit=$?\"", sb_test_bin(), ecp);
  shell(cmd);
  check_contains(out, "exit=0");
  assert_true(sb_test_file_exists(e));
  assert_same_output(ref, e);
  /* SIGTERM while a resume is still building the network (Brunel: about 2 s here; the signal
   * comes after 0.3 s): exit 3 naming the checkpoint as unchanged, nothing written, the
   * checkpoint byte for byte as it was (it exited 143, which a requeue script reads as a failure) */
  char f[700], fcp[700], g[700];
  snprintf(f, sizeof f, "%s/F.h5", dir);
  snprintf(fcp, sizeof fcp, "%s/F.ckpt.h5", dir);
  snprintf(g, sizeof g, "%s/G.h5", dir);
  assert_int_equal(sb_test_run(out, sizeof out, "run models/snn/brunel_delta.json -o %s --quiet --t-stop 3 "
                               "--checkpoint-every 1.5", f), 0);
  char *before = NULL, *after = NULL;
  size_t nb = 0, na = 0;
  assert_int_equal(sb_read_file(fcp, &before, &nb), SB_OK);
  snprintf(cmd, sizeof cmd, "%s run --resume %s -o %s --quiet --t-stop 6 2>&1 & pid=$!; sleep 0.3; kill -TERM $pid; "
           "wait $pid; echo \"exit=$?\"", sb_test_bin(), fcp, g);
  shell(cmd);
  check_contains(out, "exit=3");
  check_contains(out, "before the simulation resumed; ");
  check_contains(out, "F.ckpt.h5 is unchanged");
  check_contains(out, "continue with: ");
  assert_false(sb_test_file_exists(g));
  assert_int_equal(tmp_files(), 0);
  assert_int_equal(sb_read_file(fcp, &after, &na), SB_OK);
  assert_int_equal(na, nb);
  assert_memory_equal(before, after, nb);
  sb_free(before);
  sb_free(after);
  /* SIGTERM after the last window, while the output is written (4e6 plastic weights and 7
   * snapshots of them, 350 MB):
   * the run is complete, so the output is finished and the exit is 0 (it removed the output and
   * exited 143: a time limit at the very end threw the whole run away) */
  char pm[700], po[800];
  snprintf(pm, sizeof pm, "%s/late.json", dir);
  snprintf(po, sizeof po, "%s/late.h5", dir);
  FILE *fm = fopen(pm, "w");
  assert_non_null(fm);
  fputs("{\"simulation\": {\"t_stop\": 3, \"threads\": 1},\n \"populations\": {\"a\": {\"model\": \"iaf_psc_delta\", "
        "\"n\": 2000}, \"b\": {\"model\": \"iaf_psc_delta\", \"n\": 2000}},\n \"projections\": [{\"source\": \"a\", "
        "\"target\": \"b\", \"rule\": \"all_to_all\", \"weight\": 0.1, \"delay\": 1.0, \"synapse_model\": \"stdp_synapse\", "
        "\"synapse_params\": {\"Wmax\": 1.0}, \"record_weights\": {\"interval\": 0.5}}]}\n", fm);
  fclose(fm);
  snprintf(cmd, sizeof cmd, "%s run %s -o %s --quiet 2>&1 & pid=$!; i=0; "
           "while [ $(stat -c %%s %s.tmp.$pid 2>/dev/null || echo 0) -lt 3000000 ] && [ $i -lt 3000 ]; do sleep 0.01; "
           "i=$((i+1)); done; kill -TERM $pid; wait $pid; echo \"exit=$?\"", sb_test_bin(), pm, po, po);
  shell(cmd);
  check_contains(out, "exit=0");
  check_contains(out, "arrived after the last window; the run is complete and ");
  assert_true(sb_test_file_exists(po));
  assert_int_equal(tmp_files(), 0);
  hid_t h;
  assert_int_equal(sb_h5_open_read(po, &h), SB_OK);
  assert_true(sb_h5_exists(h, "weights/0/weight"));
  H5Fclose(h);
}

/* dataset `name` of `file` as doubles */
static double *read_doubles(const char *file, const char *name, size_t *n) {
  hid_t f;
  double *d = NULL;
  assert_int_equal(sb_h5_open_read(file, &f), SB_OK);
  assert_int_equal(sb_h5_read(f, name, H5T_NATIVE_DOUBLE, (void **)&d, n, NULL, NULL, 0), SB_OK);
  H5Fclose(f);
  return d;
}

static void assert_same_dataset(const char *x, const char *y, const char *name) {
  size_t nx, ny;
  double *a = read_doubles(x, name, &nx), *b = read_doubles(y, name, &ny);
  assert_int_equal(nx, ny);
  assert_true(nx > 0);
  assert_memory_equal(a, b, nx * sizeof *a);
  sb_free(a);
  sb_free(b);
}

static void test_plastic_resume(void **state) {
  (void)state;
  const char *net = "tests/ref/stdp_net.json";   /* 1000 ms, weight snapshots every 100 ms */
  char a[700], b[700], cp[700], c[700], name[64];
  snprintf(a, sizeof a, "%s/PA.h5", dir);
  snprintf(b, sizeof b, "%s/PB.h5", dir);
  snprintf(cp, sizeof cp, "%s/PB.ckpt.h5", dir);
  snprintf(c, sizeof c, "%s/PC.h5", dir);
  assert_int_equal(sb_test_run(out, sizeof out, "run %s -o %s --quiet", net, a), 0);
  assert_int_equal(sb_test_run(out, sizeof out, "run %s -o %s --quiet --checkpoint-every 250", net, b), 0);
  double t = checkpoint_time(cp);
  assert_true(t >= 750.0 && t < 752.0);
  assert_int_equal(sb_test_run(out, sizeof out, "run --resume %s -o %s --quiet --threads 2", cp, c), 0);
  const char *pops[] = {"in", "A", "B", "C"};
  for (int p = 0; p < 4; p++) {
    snprintf(name, sizeof name, "spikes/%s/timestamps", pops[p]);
    assert_same_dataset(a, c, name);
  }
  for (int p = 0; p < 3; p++) {
    snprintf(name, sizeof name, "weights/%d/weight", p);
    assert_same_dataset(a, c, name);
    snprintf(name, sizeof name, "weights/%d/snapshots", p);
    assert_same_dataset(a, c, name);
    /* the weights kept changing after the checkpoint: the test covers resumed plasticity */
    size_t nw, ns;
    snprintf(name, sizeof name, "weights/%d/weight", p);
    double *w = read_doubles(a, name, &nw);
    snprintf(name, sizeof name, "weights/%d/snapshots", p);
    double *snap = read_doubles(a, name, &ns);
    assert_int_equal(ns, 10 * nw);
    int changed = 0;
    for (size_t i = 0; i < nw; i++) changed += w[i] != snap[7 * nw + i];   /* row 7: t = 700 ms */
    assert_true(changed > (int)nw / 2);
    sb_free(w);
    sb_free(snap);
  }
}

/* Copy `from` to `to` with the first `a` replaced by `b`. */
static void edited_copy(const char *from, const char *to, const char *a, const char *b) {
  FILE *f = fopen(from, "rb");
  assert_non_null(f);
  static char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *at = strstr(buf, a);
  assert_non_null(at);
  FILE *g = fopen(to, "wb");
  assert_non_null(g);
  fwrite(buf, 1, (size_t)(at - buf), g);
  fputs(b, g);
  fputs(at + strlen(a), g);
  fclose(g);
}

/* A plastic checkpoint resumed with another rule or other rule parameters is refused (exit 2,
 * no output), not continued with a silently different learning rule. */
static void test_plastic_resume_other_rule(void **state) {
  (void)state;
  const char *net = "tests/ref/stdp_net.json";
  char cp[700], o[700], m1[700], m2[700];
  snprintf(cp, sizeof cp, "%s/PB.ckpt.h5", dir);   /* from test_plastic_resume */
  snprintf(o, sizeof o, "%s/PX.h5", dir);
  snprintf(m1, sizeof m1, "%s/wmax.json", dir);
  snprintf(m2, sizeof m2, "%s/rule.json", dir);
  assert_true(sb_test_file_exists(cp));
  edited_copy(net, m1, "\"Wmax\": 8.0", "\"Wmax\": 9.0");
  assert_int_equal(sb_test_run(out, sizeof out, "run %s --resume %s -o %s --quiet", m1, cp, o), 2);
  check_contains(out, "projections[0].synapse_params.Wmax: 8 in the checkpoint, 9 in this model");
  assert_false(sb_test_file_exists(o));
  edited_copy(net, m2, "\"stdp_nn_symm_synapse\"", "\"stdp_nn_restr_synapse\"");
  assert_int_equal(sb_test_run(out, sizeof out, "run %s --resume %s -o %s --quiet", m2, cp, o), 2);
  check_contains(out, "projections[1]: synapse_model stdp_nn_symm_synapse in the checkpoint, stdp_nn_restr_synapse");
  assert_false(sb_test_file_exists(o));
}

static void test_bad_resume(void **state) {
  (void)state;
  char a[700], o[700], other[700];
  snprintf(a, sizeof a, "%s/A.h5", dir);   /* from test_periodic_and_resume: not a checkpoint */
  snprintf(o, sizeof o, "%s/bad_out.h5", dir);
  assert_int_equal(sb_test_run(out, sizeof out, "run --resume %s/none.ckpt.h5 -o %s --quiet", dir, o), 2);
  check_contains(out, "none.ckpt.h5");
  assert_int_equal(sb_test_run(out, sizeof out, "run --resume %s -o %s --quiet", a, o), 2);
  check_contains(out, "A.h5: not a spikebridge checkpoint");
  char cp[700];
  snprintf(cp, sizeof cp, "%s/B.ckpt.h5", dir);
  assert_int_equal(sb_test_run(out, sizeof out, "run --resume %s --set simulation.seed=3 -o %s --quiet", cp, o), 2);
  check_contains(out, "--resume: --set and --seed come from the checkpoint");
  /* another model (fewer neurons) refused, naming the checkpoint and what differs */
  snprintf(other, sizeof other, "%s/other.json", dir);
  FILE *f = fopen(other, "w");
  fputs("{\"populations\": {\"exc\": {\"model\": \"iaf_psc_exp\", \"n\": 10, \"params\": {\"I_e\": 400.0}}}, "
        "\"projections\": [{\"source\": \"exc\", \"target\": \"exc\", \"rule\": \"all_to_all\", \"weight\": 1, \"delay\": 1}]}", f);
  fclose(f);
  assert_int_equal(sb_test_run(out, sizeof out, "run %s --resume %s -o %s --quiet", other, cp, o), 2);
  check_contains(out, "B.ckpt.h5: written for 500 neurons");
  assert_false(sb_test_file_exists(o));
  /* the model file edited after the checkpoint (the run mixed two models), and a checkpoint naming
   * a model file that is gone; the model path is stored absolute (a resume from another directory) */
  char ed[700], edcp[700], edo[700];
  snprintf(ed, sizeof ed, "%s/edited.json", dir);
  snprintf(edo, sizeof edo, "%s/edited.h5", dir);
  snprintf(edcp, sizeof edcp, "%s/edited.ckpt.h5", dir);
  f = fopen(ed, "w");
  fputs(model_text, f);
  fclose(f);
  assert_int_equal(sb_test_run(out, sizeof out, "run %s -o %s --quiet --t-stop 200 --checkpoint-every 100", ed, edo), 0);
  sb_checkpoint_info info;
  assert_int_equal(sb_checkpoint_read_info(edcp, &info), SB_OK);
  assert_true(info.model_file[0] == '/');
  assert_non_null(info.model_id);
  check_contains(info.model_id, "crc32 ");
  sb_checkpoint_info_free(&info);
  f = fopen(ed, "a");   /* one more byte of whitespace */
  fputs(" ", f);
  fclose(f);
  assert_int_equal(sb_test_run(out, sizeof out, "run --resume %s -o %s --quiet", edcp, o), 2);
  check_contains(out, "edited.json is not the one the run started with");
  assert_false(sb_test_file_exists(o));
  remove(ed);
  assert_int_equal(sb_test_run(out, sizeof out, "run --resume %s -o %s --quiet", edcp, o), 2);
  check_contains(out, "edited.json, cannot be read (No such file or directory); give the model file as MODEL.json");
  assert_false(sb_test_file_exists(o));
  assert_int_equal(sb_test_run(out, sizeof out, "run %s --checkpoint-every -5", model), 2);
}

/* Periodic flushes write whole spike chunks (65536) and keep the rest for the next flush: the
 * spikes of brunel_small over 1200 ms (about 115000 exc spikes: a whole chunk and a rest) are
 * identical with a flush every 50 ms, with one at the end only, and with a checkpoint at 700 ms
 * (which writes everything) and a resume. */
static void test_flush_chunks(void **state) {
  (void)state;
  char a[700], b[700], c[700], c2[700], cp[700];
  snprintf(a, sizeof a, "%s/fa.h5", dir);
  snprintf(b, sizeof b, "%s/fb.h5", dir);
  snprintf(c, sizeof c, "%s/fc.h5", dir);
  snprintf(c2, sizeof c2, "%s/fc2.h5", dir);
  snprintf(cp, sizeof cp, "%s/fc.ckpt.h5", dir);
  const char *m = "models/snn/brunel_small.json";
  assert_int_equal(sb_test_run(out, sizeof out, "run %s -o %s --quiet --t-stop 1200 --set simulation.flush_interval=50", m, a), 0);
  assert_int_equal(sb_test_run(out, sizeof out, "run %s -o %s --quiet --t-stop 1200 --set simulation.flush_interval=1000000",
                               m, b), 0);
  assert_int_equal(sb_test_run(out, sizeof out, "run %s -o %s --quiet --t-stop 1000 --checkpoint-every 700 "
                               "--set simulation.flush_interval=50", m, c), 0);
  assert_int_equal(sb_test_run(out, sizeof out, "run --resume %s -o %s --quiet --t-stop 1200", cp, c2), 0);
  const char *pops[] = {"exc", "inh"};
  for (int q = 0; q < 2; q++) {
    spikes sa, sb, sc;
    read_spikes(a, pops[q], &sa);
    read_spikes(b, pops[q], &sb);
    read_spikes(c2, pops[q], &sc);
    if (q == 0) assert_true(sa.n > 65536);   /* past one chunk */
    assert_int_equal(sa.n, sb.n);
    assert_int_equal(sa.n, sc.n);
    assert_memory_equal(sa.t, sb.t, sa.n * sizeof *sa.t);
    assert_memory_equal(sa.id, sb.id, sa.n * sizeof *sa.id);
    assert_memory_equal(sa.t, sc.t, sa.n * sizeof *sa.t);
    assert_memory_equal(sa.id, sc.id, sa.n * sizeof *sa.id);
    free_spikes(&sa);
    free_spikes(&sb);
    free_spikes(&sc);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_periodic_and_resume),
      cmocka_unit_test(test_resume_near_t_stop),
      cmocka_unit_test(test_sigterm),
      cmocka_unit_test(test_plastic_resume),
      cmocka_unit_test(test_plastic_resume_other_rule),
      cmocka_unit_test(test_bad_resume),
      cmocka_unit_test(test_flush_chunks),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
