/* MPI runs (`make MPI=1` builds build-mpi/spikebridge): spikes under mpirun with 1, 2 and 4
 * ranks and 1 or 2 threads per rank are bit-identical to the serial binary's 1-thread run;
 * one SONATA file is written (by rank 0), with state samples and plastic weights gathered
 * from every rank.
 * Skips when the MPI build or mpirun is absent (the default build and CI need no MPI). */
#include "sim/sim.h"
#include "tests/testutil.h"

static char out[65536];
static char dir[512], model[600];
static const char *mpi_bin = "build-mpi/spikebridge";

static const char model_text[] =
    "{\"simulation\": {\"t_stop\": 200, \"seed\": 11},\n"
    " \"populations\": {\"exc\": {\"model\": \"iaf_psc_exp\", \"n\": 403, \"params\": {\"tau_m\": 20, \"V_th\": -50, "
    "\"V_reset\": -60, \"E_L\": -60, \"t_ref\": 2, \"C_m\": 250, \"tau_syn_ex\": 2.5, \"tau_syn_in\": 4.0},\n"
    "   \"init\": {\"V_m\": {\"distribution\": \"uniform\", \"min\": -60, \"max\": -50}}},\n"
    "   \"inh\": {\"model\": \"iaf_psc_delta\", \"n\": 101, \"params\": {\"tau_m\": 20, \"V_th\": 20, \"V_reset\": 10, "
    "\"E_L\": 0, \"t_ref\": 2}}},\n"
    " \"projections\": [{\"source\": \"exc\", \"target\": \"exc\", \"rule\": \"fixed_indegree\", \"indegree\": 40, "
    "\"weight\": {\"distribution\": \"uniform\", \"min\": 50, \"max\": 120}, \"delay\": {\"distribution\": \"uniform\", "
    "\"min\": 0.5, \"max\": 3.0}},\n"
    "   {\"source\": \"inh\", \"target\": \"exc\", \"rule\": \"pairwise_bernoulli\", \"p\": 0.1, \"weight\": -300.0, \"delay\": 1.0},\n"
    "   {\"source\": \"exc\", \"target\": \"inh\", \"rule\": \"fixed_outdegree\", \"outdegree\": 10, \"weight\": 0.5, \"delay\": 1.0}],\n"
    " \"stimuli\": [{\"model\": \"poisson_generator\", \"target\": \"exc\", \"params\": {\"rate\": 3000}, \"weight\": 60, \"delay\": 1.0},\n"
    "   {\"model\": \"poisson_generator\", \"target\": \"inh\", \"params\": {\"rate\": 2000}, \"weight\": 0.5, \"delay\": 1.5},\n"
    "   {\"model\": \"spike_generator\", \"target\": \"exc\", \"node_ids\": [0, 201, 402], \"params\": {\"spike_times\": [10, 150.5]}, "
    "\"weight\": 500, \"delay\": 1.0}]}\n";

static int have_mpi(void) {
  return access(mpi_bin, X_OK) == 0 && system("command -v mpirun >/dev/null 2>&1") == 0;
}

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "%s", sb_test_tmpdir());
  snprintf(model, sizeof model, "%s/mpi.json", dir);
  FILE *f = fopen(model, "w");
  if (!f) return -1;
  fputs(model_text, f);
  fclose(f);
  return 0;
}

/* mpirun as root in CI, oversubscribed on 2 cores; output into `out` */
static int mpirun(int np, const char *args) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none "
           "mpirun -np %d --oversubscribe --allow-run-as-root --bind-to none %s %s 2>&1", np, mpi_bin, args);
  FILE *p = popen(cmd, "r");
  if (!p) return -1;
  size_t n = fread(out, 1, sizeof out - 1, p);
  out[n] = 0;
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void read_pop(const char *file, const char *pop, double **t, uint64_t **id, size_t *n) {
  hid_t f;
  assert_int_equal(sb_h5_open_read(file, &f), SB_OK);
  char a[128], b[128];
  size_t n2;
  snprintf(a, sizeof a, "spikes/%s/timestamps", pop);
  snprintf(b, sizeof b, "spikes/%s/node_ids", pop);
  assert_int_equal(sb_h5_read(f, a, H5T_NATIVE_DOUBLE, (void **)t, n, NULL, NULL, 0), SB_OK);
  assert_int_equal(sb_h5_read(f, b, H5T_NATIVE_UINT64, (void **)id, &n2, NULL, NULL, 0), SB_OK);
  assert_int_equal(*n, n2);
  H5Fclose(f);
}

static void test_rank_invariance(void **state) {
  (void)state;
  if (!have_mpi()) skip();
  char ref[700], o[700], args[2048];
  snprintf(ref, sizeof ref, "%s/ref.h5", dir);
  assert_int_equal(sb_test_run(out, sizeof out, "run %s -o %s --threads 1 --quiet", model, ref), 0);
  const int cases[][2] = {{1, 1}, {1, 2}, {2, 1}, {2, 2}, {4, 1}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    int np = cases[c][0], th = cases[c][1];
    snprintf(o, sizeof o, "%s/np%d_t%d.h5", dir, np, th);
    snprintf(args, sizeof args, "run %s -o %s --threads %d --quiet", model, o, th);
    int rc = mpirun(np, args);
    if (rc) fprintf(stderr, "mpirun -np %d: exit %d\n%s\n", np, rc, out);
    assert_int_equal(rc, 0);
    if (np > 1) check_contains(out, "MPI ");
    const char *pops[] = {"exc", "inh"};
    for (int p = 0; p < 2; p++) {
      double *ta, *tb;
      uint64_t *ia, *ib;
      size_t na, nb;
      read_pop(ref, pops[p], &ta, &ia, &na);
      read_pop(o, pops[p], &tb, &ib, &nb);
      if (na != nb) fprintf(stderr, "np %d threads %d %s: %zu vs %zu spikes\n", np, th, pops[p], nb, na);
      assert_int_equal(na, nb);
      assert_true(na > 50);
      assert_memory_equal(ta, tb, na * sizeof *ta);
      assert_memory_equal(ia, ib, na * sizeof *ia);
      sb_free(ta); sb_free(tb); sb_free(ia); sb_free(ib);
    }
  }
}

/* dataset `name` of two files: same length (> 0) and the same bytes */
static void assert_same(const char *x, const char *y, const char *name, hid_t mt, size_t elem) {
  hid_t fx, fy;
  void *a = NULL, *b = NULL;
  size_t na = 0, nb = 0;
  assert_int_equal(sb_h5_open_read(x, &fx), SB_OK);
  assert_int_equal(sb_h5_open_read(y, &fy), SB_OK);
  assert_int_equal(sb_h5_read(fx, name, mt, &a, &na, NULL, NULL, 0), SB_OK);
  assert_int_equal(sb_h5_read(fy, name, mt, &b, &nb, NULL, NULL, 0), SB_OK);
  if (na != nb) fprintf(stderr, "%s: %zu vs %zu elements\n", name, na, nb);
  assert_int_equal(na, nb);
  assert_true(na > 0);
  assert_memory_equal(a, b, na * elem);
  sb_free(a); sb_free(b);
  H5Fclose(fx); H5Fclose(fy);
}

/* state samples of neurons on different ranks are merged on rank 0: the report equals the
 * serial run's, bit for bit */
static void test_state_recording(void **state) {
  (void)state;
  if (!have_mpi()) skip();
  char ref[700], o[700], args[2048];
  const char *rec = "--set 'record={\"spikes\": \"all\", \"state\": [{\"population\": \"exc\", \"variables\": [\"V_m\"], "
                    "\"node_ids\": [0, 150, 201, 300, 402], \"interval\": 0.5}, {\"population\": \"inh\", "
                    "\"variables\": [\"V_m\"], \"node_ids\": [3, 100], \"interval\": 0.25}]}'";
  snprintf(ref, sizeof ref, "%s/rec_ref.h5", dir);
  assert_int_equal(sb_test_run(out, sizeof out, "run %s -o %s --threads 1 --quiet %s", model, ref, rec), 0);
  const int cases[][2] = {{2, 1}, {2, 2}};
  for (size_t c = 0; c < 2; c++) {
    snprintf(o, sizeof o, "%s/rec_np%d_t%d.h5", dir, cases[c][0], cases[c][1]);
    snprintf(args, sizeof args, "run %s -o %s --threads %d --quiet %s", model, o, cases[c][1], rec);
    int rc = mpirun(cases[c][0], args);
    if (rc) fprintf(stderr, "%s\n", out);
    assert_int_equal(rc, 0);
    assert_same(ref, o, "report/exc/data", H5T_NATIVE_FLOAT, sizeof(float));
    assert_same(ref, o, "report/inh/data", H5T_NATIVE_FLOAT, sizeof(float));
    assert_same(ref, o, "spikes/exc/timestamps", H5T_NATIVE_DOUBLE, sizeof(double));
  }
}

/* plastic projections over ranks (tests/ref/stdp_net.json, three STDP rules): spikes, final
 * weights and snapshots equal the serial run with as many threads as ranks x threads (same
 * partitions, so the same synapse order) */
static void test_plastic(void **state) {
  (void)state;
  if (!have_mpi()) skip();
  const char *net = "tests/ref/stdp_net.json";
  const int cases[][2] = {{2, 1}, {2, 2}, {4, 1}};
  for (size_t c = 0; c < 3; c++) {
    int np = cases[c][0], th = cases[c][1];
    char ref[700], o[700], args[2048], name[64];
    snprintf(ref, sizeof ref, "%s/pl_ref_t%d.h5", dir, np * th);
    snprintf(o, sizeof o, "%s/pl_np%d_t%d.h5", dir, np, th);
    assert_int_equal(sb_test_run(out, sizeof out, "run %s -o %s --threads %d --quiet", net, ref, np * th), 0);
    snprintf(args, sizeof args, "run %s -o %s --threads %d --quiet", net, o, th);
    int rc = mpirun(np, args);
    if (rc) fprintf(stderr, "%s\n", out);
    assert_int_equal(rc, 0);
    const char *pops[] = {"A", "B", "C"};
    for (int p = 0; p < 3; p++) {
      snprintf(name, sizeof name, "spikes/%s/timestamps", pops[p]);
      assert_same(ref, o, name, H5T_NATIVE_DOUBLE, sizeof(double));
      snprintf(name, sizeof name, "weights/%d/weight", p);
      assert_same(ref, o, name, H5T_NATIVE_DOUBLE, sizeof(double));
      snprintf(name, sizeof name, "weights/%d/snapshots", p);
      assert_same(ref, o, name, H5T_NATIVE_DOUBLE, sizeof(double));
      snprintf(name, sizeof name, "weights/%d/target_node_ids", p);
      assert_same(ref, o, name, H5T_NATIVE_UINT64, sizeof(uint64_t));
    }
  }
}

/* sweep under mpirun: the ranks share out the runs (run i on rank i mod 2), each network whole
 * in its process; the result equals the serial sweep's files; rank 0 writes the summary */
static void test_sweep_over_ranks(void **state) {
  (void)state;
  if (!have_mpi()) skip();
  char sw[700], od[700], ser[700], args[2048];
  snprintf(sw, sizeof sw, "%s/sw.json", dir);
  FILE *f = fopen(sw, "w");
  assert_non_null(f);
  fputs("{\"base\": \"mpi.json\", \"set\": {\"simulation.t_stop\": 80}, \"parameters\": "
        "{\"stimuli[0].params.rate\": [2500, 3000, 3500, 4000, 4500]}}", f);
  fclose(f);
  snprintf(od, sizeof od, "%s/sw_mpi", dir);
  snprintf(ser, sizeof ser, "%s/sw_serial", dir);
  snprintf(args, sizeof args, "sweep %s -o %s --threads 1", sw, od);
  int rc = mpirun(2, args);
  if (rc) fprintf(stderr, "%s\n", out);
  assert_int_equal(rc, 0);
  check_contains(out, "2 MPI ranks share the runs");
  check_contains(out, ": 5 runs done, 0 skipped (complete), 5/5 complete");   /* all ranks' runs (was rank 0's 3) */
  /* again: every run skipped, counted over both ranks */
  rc = mpirun(2, args);
  assert_int_equal(rc, 0);
  check_contains(out, ": 0 runs done, 5 skipped (complete), 5/5 complete");
  assert_int_equal(sb_test_run(out, sizeof out, "sweep %s -o %s --threads 1 --quiet", sw, ser), 0);
  for (int i = 0; i < 5; i++) {
    char a[800], b[800];
    snprintf(a, sizeof a, "%s/run_%04d.h5", od, i);
    snprintf(b, sizeof b, "%s/run_%04d.h5", ser, i);
    double *ta, *tb;
    uint64_t *ia, *ib;
    size_t na, nb;
    read_pop(a, "exc", &ta, &ia, &na);
    read_pop(b, "exc", &tb, &ib, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(ta, tb, na * sizeof *ta);
    assert_memory_equal(ia, ib, na * sizeof *ia);
    sb_free(ta); sb_free(tb); sb_free(ia); sb_free(ib);
  }
  char csv[800];
  snprintf(csv, sizeof csv, "%s/summary.csv", od);
  assert_true(sb_test_file_exists(csv));
}

/* SIGTERM to the ranks (what Slurm sends): each rank set the stop flag of the checkpoint path,
 * which is not installed with more than one rank, and the run went on to its end. Now the ranks
 * end at once (default action, temporary files removed). The run would take minutes; it must
 * end within seconds of the signal, leaving no output and no .tmp file. */
static void test_sigterm_stops_ranks(void **state) {
  (void)state;
  if (!have_mpi()) skip();
  char o[700], cmd[8192];
  snprintf(o, sizeof o, "%s/term.h5", dir);
  snprintf(cmd, sizeof cmd,
           "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none "
           "mpirun -np 2 --oversubscribe --allow-run-as-root --bind-to none %s run %s -o %s --t-stop 1e6 --threads 1 -q "
           ">/dev/null 2>&1 & pid=$!; sleep 3; pkill -TERM -P $pid; t=0; "   /* the ranks: mpirun's children */
           "while kill -0 $pid 2>/dev/null && [ $t -lt 30 ]; do sleep 1; t=$((t+1)); done; echo waited=$t; wait",
           mpi_bin, model, o);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t n = fread(out, 1, sizeof out - 1, p);
  out[n] = 0;
  pclose(p);
  int waited = -1;
  const char *w = strstr(out, "waited=");
  assert_non_null(w);
  waited = atoi(w + 7);
  if (waited >= 10) fprintf(stderr, "ranks still running %d s after SIGTERM\n", waited);
  assert_true(waited < 10);
  assert_false(sb_test_file_exists(o));
  char ls[800];
  snprintf(ls, sizeof ls, "ls %s | grep -c 'term.h5.tmp' || true", dir);
  p = popen(ls, "r");
  char c[16] = "";
  assert_non_null(fgets(c, sizeof c, p));
  pclose(p);
  assert_int_equal(atoi(c), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rank_invariance),
      cmocka_unit_test(test_state_recording),
      cmocka_unit_test(test_plastic),
      cmocka_unit_test(test_sweep_over_ranks),
      cmocka_unit_test(test_sigterm_stops_ranks),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
