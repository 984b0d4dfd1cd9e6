/* Bad input found by a user trial, each refused with exit 2, a message naming the file, the field
 * (HDF5 dataset, JSON path or flag) and what was expected, and no output file left behind:
 * tampered checkpoints (`run --resume`), models too large for the machine, malformed --set paths,
 * two recordings under one report name, node ids beyond a SONATA population's n_nodes
 * (`analyze`, which also prints nothing before an error), a file given where a directory is
 * expected; and --threads on convert and eval. The CLI runs under `timeout`: a regression that
 * hangs (a Poisson time of -1e9 ms replayed draw by draw) fails instead of stalling the suite. */
#define _GNU_SOURCE   /* sched_getaffinity */
#include "neurons/neurons.h"
#include "sim/sim.h"
#include "tests/testutil.h"

#include <dirent.h>
#include <math.h>
#include <sched.h>

static char out[65536];
static char dir[512], model[700], ckpt[700];

/* sb_test_run under `timeout 120` (exit 124 when it fires). */
static int run_t(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run_t(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int st = sb_test_run_wrapped_v("timeout 120", out, sizeof out, fmt, ap);
  va_end(ap);
  return st;
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* Poisson input (pois_next, pois_rng), a spike generator (stim_pos), recurrent synapses with a
 * delay of 1.5 windows (events in flight), a V_m recording (rec_positions). */
static const char model_text[] =
    "{\"simulation\": {\"t_stop\": 200, \"seed\": 5, \"threads\": 1},\n"
    " \"populations\": {\"exc\": {\"model\": \"iaf_psc_exp\", \"n\": 40, \"params\": {\"I_e\": 300.0}}},\n"
    " \"projections\": [{\"source\": \"exc\", \"target\": \"exc\", \"rule\": \"fixed_indegree\", \"indegree\": 5, "
    "\"weight\": 20, \"delay\": 1.5}],\n"
    " \"stimuli\": [{\"model\": \"poisson_generator\", \"target\": \"exc\", \"params\": {\"rate\": 3000}, \"weight\": 60, "
    "\"delay\": 1.0},\n"
    "   {\"model\": \"spike_generator\", \"target\": \"exc\", \"node_ids\": [0, 1], \"params\": {\"spike_times\": [10, 150.5]}, "
    "\"weight\": 500, \"delay\": 1.0}],\n"
    " \"record\": {\"spikes\": \"all\", \"state\": [{\"population\": \"exc\", \"variables\": [\"V_m\"], \"node_ids\": [0, 3], "
    "\"interval\": 0.5}]}}\n";

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "%s", sb_test_tmpdir());
  snprintf(model, sizeof model, "%s/m.json", dir);
  FILE *f = fopen(model, "w");
  if (!f) return -1;
  fputs(model_text, f);
  fclose(f);
  /* a checkpoint at the first window end >= 100 ms */
  char a[700];
  snprintf(a, sizeof a, "%s/A.h5", dir);
  snprintf(ckpt, sizeof ckpt, "%s/A.ckpt.h5", dir);
  if (run_t("run %s -o %s --quiet --checkpoint-every 100", model, a) != 0) return -1;
  return access(ckpt, R_OK);
}

/* ---- 1. tampered checkpoints ---- */

static void copy_file(const char *from, const char *to) {
  FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
  assert_non_null(a);
  assert_non_null(b);
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, a)) > 0) assert_int_equal(fwrite(buf, 1, n, b), n);
  fclose(a);
  fclose(b);
}

/* Copy the checkpoint to `to` and overwrite `bytes` bytes at element `index` of /checkpoint/<name>
 * (memory type `mt`, `count` elements). */
/* Overwrite elements [index, index + count) of dataset `path` (from the root) of a copy of `from`. */
static void tamper_at(const char *from, const char *to, const char *path, hid_t mt, size_t index, const void *val,
                      size_t count) {
  copy_file(from, to);
  hid_t f = H5Fopen(to, H5F_ACC_RDWR, H5P_DEFAULT);
  assert_true(f >= 0);
  hid_t ds = H5Dopen2(f, path, H5P_DEFAULT);
  assert_true(ds >= 0);
  hid_t fs = H5Dget_space(ds);
  hsize_t off = index, cnt = count;
  assert_true(H5Sselect_hyperslab(fs, H5S_SELECT_SET, &off, NULL, &cnt, NULL) >= 0);
  hid_t ms = H5Screate_simple(1, &cnt, NULL);
  assert_true(H5Dwrite(ds, mt, ms, fs, H5P_DEFAULT, val) >= 0);
  H5Sclose(ms);
  H5Sclose(fs);
  H5Dclose(ds);
  H5Fclose(f);
}

static void tamper_from(const char *from, const char *to, const char *name, hid_t mt, size_t index, const void *val,
                        size_t count) {
  char path[300];
  snprintf(path, sizeof path, "checkpoint/%s", name);
  tamper_at(from, to, path, mt, index, val, count);
}

static void tamper(const char *to, const char *name, hid_t mt, size_t index, const void *val, size_t count) {
  tamper_from(ckpt, to, name, mt, index, val, count);
}

static void expect_refused(const char *cp, const char *what) {
  char o[700];
  snprintf(o, sizeof o, "%s/resumed.h5", dir);
  int rc = run_t("run --resume %s -o %s --quiet", cp, o);
  if (rc != 2) fprintf(stderr, "resume %s: exit %d, output:\n%s\n", cp, rc, out);
  assert_int_equal(rc, 2);
  check_contains(out, cp);
  check_contains(out, what);
  assert_false(sb_test_file_exists(o));
}

static void test_tampered_checkpoint(void **state) {
  (void)state;
  char cp[700], o[700];
  snprintf(cp, sizeof cp, "%s/T.ckpt.h5", dir);
  snprintf(o, sizeof o, "%s/resumed.h5", dir);
  /* control: an untouched copy resumes */
  copy_file(ckpt, cp);
  assert_int_equal(run_t("run --resume %s -o %s --quiet", cp, o), 0);
  assert_true(sb_test_file_exists(o));
  remove(o);
  /* a Poisson next time far in the past (hung for hours before) */
  double v = -1e9;
  tamper(cp, "pois_next", H5T_NATIVE_DOUBLE, 3, &v, 1);
  expect_refused(cp, "/checkpoint/pois_next[3]: next Poisson event of neuron 3 at -1e+09 ms, expected a time >=");
  v = NAN;
  tamper(cp, "pois_next", H5T_NATIVE_DOUBLE, 0, &v, 1);
  expect_refused(cp, "/checkpoint/pois_next[0]");
  /* NaN membrane potential of neuron 2 */
  unsigned char nanb[8];
  double nan_v = NAN;
  memcpy(nanb, &nan_v, 8);
  size_t ss = sb_neuron_iaf_psc_exp->state_size, off = sb_neuron_iaf_psc_exp->recordables[0].offset;
  tamper(cp, "state_0", H5T_NATIVE_UINT8, 2 * ss + off, nanb, 8);
  expect_refused(cp, "/checkpoint/state_0: neuron 2 of population exc: V_m = nan, expected a finite value");
  /* a state time after the checkpoint's clock */
  v = 1e9;
  tamper(cp, "t_state", H5T_NATIVE_DOUBLE, 1, &v, 1);
  expect_refused(cp, "/checkpoint/t_state[1]: 1e+09 ms, expected a time in [0, t + window = ");
  /* an in-flight event in the past, and one with a NaN time */
  v = -5;
  tamper(cp, "events", H5T_NATIVE_DOUBLE, 0, &v, 1);
  expect_refused(cp, "/checkpoint/events[0]: expected a time in [");
  v = NAN;
  tamper(cp, "events", H5T_NATIVE_DOUBLE, 0, &v, 1);
  expect_refused(cp, "(got time nan");
  /* spike counts that do not add up to the counter */
  uint64_t u = 1000000;
  tamper(cp, "count", H5T_NATIVE_UINT64, 5, &u, 1);
  expect_refused(cp, "/checkpoint/count");
  /* a stimulus cursor outside the neuron's own stimulus events */
  u = 1000000000000ULL;
  tamper(cp, "stim_pos", H5T_NATIVE_UINT64, 0, &u, 1);
  expect_refused(cp, "/checkpoint/stim_pos[0]: 1000000000000, expected in [");
  /* the recorder 100 ms behind the clock */
  u = 0;
  tamper(cp, "rec_positions", H5T_NATIVE_UINT64, 0, &u, 1);
  expect_refused(cp, "/checkpoint/rec_positions[0]: next sample 0 at 0 ms, expected within one interval");
  /* more events taken at delivery than synaptic events */
  u = 1000000000000ULL;
  tamper(cp, "eager_events", H5T_NATIVE_UINT64, 0, &u, 1);
  expect_refused(cp, "/checkpoint/eager_events: more than the synaptic events");
  /* an all-zero Poisson random-number state (drew zero gaps forever: a window that never ended
   * and ran out of memory) */
  unsigned char zero[24] = {0};
  tamper(cp, "pois_rng", H5T_NATIVE_UINT8, 0, zero, sizeof zero);
  expect_refused(cp, "/checkpoint/pois_rng: the random-number state of neuron 0 is not a valid taus2 state");
  /* recorded spikes are copied into the output: a NaN time, a time after the clock, a bad id */
  v = NAN;
  tamper_at(ckpt, cp, "spikes/exc/timestamps", H5T_NATIVE_DOUBLE, 0, &v, 1);
  expect_refused(cp, "/spikes/exc/timestamps[0]: nan ms, expected spike times in [0, t = ");
  v = 1e6;
  tamper_at(ckpt, cp, "spikes/exc/timestamps", H5T_NATIVE_DOUBLE, 0, &v, 1);
  expect_refused(cp, "/spikes/exc/timestamps[0]: 1e+06 ms, expected spike times in [0, t = ");
  u = 40;
  tamper_at(ckpt, cp, "spikes/exc/node_ids", H5T_NATIVE_UINT64, 1, &u, 1);
  expect_refused(cp, "/spikes/exc/node_ids[1]: 40, expected a node id below the population's 40 neurons");
  /* analyze reads a checkpoint with the population's size (silent neurons count) */
  assert_int_equal(run_t("analyze %s --quiet", ckpt), 0);
  check_contains(out, "40 nodes in file");
  /* the clock itself: NaN */
  copy_file(ckpt, cp);
  hid_t f = H5Fopen(cp, H5F_ACC_RDWR, H5P_DEFAULT);
  assert_true(f >= 0);
  hid_t at = H5Aopen(f, "time", H5P_DEFAULT);
  double tm[4];
  assert_true(H5Aread(at, H5T_NATIVE_DOUBLE, tm) >= 0);
  tm[0] = NAN;
  assert_true(H5Awrite(at, H5T_NATIVE_DOUBLE, tm) >= 0);
  H5Aclose(at);
  H5Fclose(f);
  expect_refused(cp, "attributes time, seed: expected finite t, t_stop with 0 <= t <= t_stop");
  /* edits that pass every check of their own changed the run silently (user trial): a Poisson
   * next time of inf (the neuron's input stopped), another seed or override list (another
   * network), a window index one ahead of the clock, a newer checkpoint version */
  v = INFINITY;
  tamper(cp, "pois_next", H5T_NATIVE_DOUBLE, 0, &v, 1);
  expect_refused(cp, "the checkpoint's contents do not match its digest (crc32 ");
  const char *attrs[4] = {"seed", "overrides", "window_index", "checkpoint_version"};
  for (int a = 0; a < 4; a++) {
    copy_file(ckpt, cp);
    f = H5Fopen(cp, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    if (a == 1) assert_int_equal(sb_h5_attr_write_string(f, "overrides", "projections[0].weight=-1.0\n"), SB_OK);
    else {
      int64_t w[3];
      size_t nw = 0;
      assert_int_equal(sb_h5_attr_read_int64s(f, attrs[a], w, 3, &nw), SB_OK);
      w[0] = a == 3 ? 99 : w[0] + 1;
      assert_int_equal(sb_h5_attr_write_int64s(f, attrs[a], w, nw), SB_OK);
    }
    H5Fclose(f);
    expect_refused(cp, a == 2   ? "attribute window_index: windows ("
                       : a == 3 ? "root attribute checkpoint_version: 99, this build reads version 2"
                                : "the checkpoint's contents do not match its digest");
  }
  /* the digest removed together with an edit: refused too (removing it turned the check off) */
  copy_file(ckpt, cp);
  f = H5Fopen(cp, H5F_ACC_RDWR, H5P_DEFAULT);
  assert_true(f >= 0);
  assert_true(H5Adelete(f, "digest") >= 0);
  H5Fclose(f);
  expect_refused(cp, "root attribute digest: missing (removed, or written by an older build)");
  /* a recorded spike's node id changed within range: the recordings are in the digest */
  u = 3;
  tamper_at(ckpt, cp, "spikes/exc/node_ids", H5T_NATIVE_UINT64, 0, &u, 1);
  expect_refused(cp, "the checkpoint's contents do not match its digest");
  /* one recorded V_m sample changed: the state recordings (copied chunk for chunk, digested as
   * their stored chunks) are covered too */
  copy_file(ckpt, cp);
  f = H5Fopen(cp, H5F_ACC_RDWR, H5P_DEFAULT);
  assert_true(f >= 0);
  hid_t ds = H5Dopen2(f, "report/exc/data", H5P_DEFAULT);
  assert_true(ds >= 0);
  hid_t sp = H5Dget_space(ds);
  hsize_t dims[2] = {0, 0};
  assert_int_equal(H5Sget_simple_extent_dims(sp, dims, NULL), 2);
  assert_true(dims[0] >= 100 && dims[1] == 2);   /* 100 ms sampled every 0.5 ms, 2 neurons */
  float *vm = malloc(dims[0] * dims[1] * sizeof *vm);
  assert_non_null(vm);
  assert_true(H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, vm) >= 0);
  vm[2 * 50 + 1] += 1.0f;
  assert_true(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, vm) >= 0);
  free(vm);
  H5Sclose(sp);
  H5Dclose(ds);
  H5Fclose(f);
  expect_refused(cp, "the checkpoint's contents do not match its digest");
}

/* A plastic network's checkpoint (tests/ref/stdp_net.json) with a NaN weight. */
static void test_tampered_plastic_checkpoint(void **state) {
  (void)state;
  char b[700], pcp[700], cp[700];
  snprintf(b, sizeof b, "%s/P.h5", dir);
  snprintf(pcp, sizeof pcp, "%s/P.ckpt.h5", dir);
  snprintf(cp, sizeof cp, "%s/PT.ckpt.h5", dir);
  assert_int_equal(run_t("run tests/ref/stdp_net.json -o %s --quiet --t-stop 300 --checkpoint-every 250", b), 0);
  double v = NAN;
  tamper_from(pcp, cp, "plastic_0_syn", H5T_NATIVE_DOUBLE, 10, &v, 1);
  char o[700];
  snprintf(o, sizeof o, "%s/resumed.h5", dir);
  assert_int_equal(run_t("run --resume %s -o %s --quiet", cp, o), 2);
  check_contains(out, "PT.ckpt.h5: /checkpoint/plastic_0_syn[10]: NaN (synapse 2), expected a number");
  assert_false(sb_test_file_exists(o));
}

/* ---- 2. sizes checked before allocating ---- */

static void test_size_limits(void **state) {
  (void)state;
  char o[700];
  snprintf(o, sizeof o, "%s/huge.h5", dir);
  /* 4e9 x 40 = 1.6e11 synapses: terabytes, refused at once instead of running into the OOM killer */
  assert_int_equal(run_t("run %s -o %s --quiet --set projections[0].indegree=4000000000", model, o), 2);
  check_contains(out, "with --set projections[0].indegree=4000000000: ");
  check_contains(out, "m.json: projections[0].indegree: 1.6e+11 synapses (40 -> 40 neurons) need at least");
  check_contains(out, " GB of ");   /* physical memory, or a cgroup or ulimit below it */
  assert_false(sb_test_file_exists(o));
  /* under an address-space limit (ulimit -v) below physical memory, refused at once naming the
   * limit; not under ASan, which reserves terabytes of shadow space:
   * - 6 GB of synapses against 3 GB (it ran 7 s into the build and ended with "out of memory
   *   building a projection", exit 1);
   * - plastic synapses count their weight and traces and the weight output (76 bytes, not 12):
   *   5e7 of them need 3.8 GB (0.6 GB as static ones, which passed and then ran out of memory);
   * - one window's state samples are held until every neuron is processed: V_m of 400000 neurons
   *   every 0.01 ms over a 5 ms window is 1.6 GB (it was OOM-killed in a 200 MB cgroup) */
  static const struct { const char *file, *ulimit, *json, *want, *want2; } limited[] = {
      {"lim.json", "ulimit -v 3000000;",
       "{\"populations\": {\"a\": {\"model\": \"iaf_psc_delta\", \"n\": 100000}},\n"
       " \"projections\": [{\"source\": \"a\", \"target\": \"a\", \"rule\": \"fixed_indegree\", \"indegree\": 5000, "
       "\"weight\": 0.1, \"delay\": 1.5}]}",
       "lim.json: projections[0].indegree: 5e+08 synapses (100000 -> 100000 neurons) need at least 6 GB",
       " GB of memory left under the address-space limit (ulimit -v 3.07 GB, of which the program maps "},
      {"pl.json", "ulimit -v 3000000;",
       "{\"populations\": {\"a\": {\"model\": \"iaf_psc_delta\", \"n\": 5000}, \"b\": {\"model\": "
       "\"iaf_psc_delta\", \"n\": 5000}},\n \"projections\": [{\"source\": \"a\", \"target\": \"b\", "
       "\"rule\": \"fixed_indegree\", \"indegree\": 10000, \"weight\": 0.1, \"delay\": 1.0, \"synapse_model\": "
       "\"stdp_synapse\", \"synapse_params\": {\"Wmax\": 1.0}}]}",
       "pl.json: projections[0].indegree: 5e+07 synapses (5000 -> 5000 neurons) need at least 3.8 GB to build (76 bytes "
       "each)", NULL},
      {"wide.json", "ulimit -v 1500000;",
       "{\"simulation\": {\"t_stop\": 10}, \"populations\": {\"p\": {\"model\": \"iaf_psc_delta\", \"n\": "
       "400000}}, \"stimuli\": [{\"model\": \"poisson_generator\", \"target\": \"p\", \"params\": {\"rate\": "
       "1000.0}, \"weight\": 0.5, \"delay\": 1.0}], \"record\": {\"state\": [{\"population\": \"p\", "
       "\"variables\": [\"V_m\"], \"interval\": 0.01}]}}",
       "wide.json: record.state: the samples of one window (5 ms) take 1.6 GB in memory, more than the ", NULL},
  };
  for (size_t i = 0; !getenv("SB_SANITIZE") && i < sizeof limited / sizeof *limited; i++) {
    char m[700];
    snprintf(m, sizeof m, "%s/%s", dir, limited[i].file);
    write_text(m, limited[i].json);
    assert_int_equal(sb_test_run_wrapped(limited[i].ulimit, out, sizeof out, "run %s -o %s --quiet", m, o), 2);
    check_contains(out, limited[i].want);
    if (limited[i].want2) check_contains(out, limited[i].want2);   /* the libraries, OpenBLAS's buffers */
    assert_false(sb_test_file_exists(o));
  }
  /* 15000 recorded populations under 1 GB: HDF5 ran out of memory creating their datasets and
   * then crashed closing the file (exit 139, a temporary file left); now refused up front */
  if (!getenv("SB_SANITIZE")) {
    static char text[1 << 20];
    size_t at = (size_t)snprintf(text, sizeof text, "{\"simulation\": {\"t_stop\": 10}, \"populations\": {");
    for (int i = 0; i < 15000; i++)
      at += (size_t)snprintf(text + at, sizeof text - at, "%s\"p%d\": {\"model\": \"iaf_psc_delta\", \"n\": 1}", i ? ", " : "", i);
    snprintf(text + at, sizeof text - at, "}}\n");
    char m[700];
    snprintf(m, sizeof m, "%s/manypops.json", dir);
    write_text(m, text);
    assert_int_equal(sb_test_run_wrapped("ulimit -v 1000000;", out, sizeof out, "run %s -o %s --quiet", m, o), 2);
    check_contains(out, "manypops.json: record.spikes: recording the spikes of 15000 populations needs about 0.983 GB");
    assert_false(sb_test_file_exists(o));
    /* without the recordings it runs */
    assert_int_equal(sb_test_run_wrapped("ulimit -v 1000000;", out, sizeof out, "run %s -o %s --quiet --set record.spikes=false",
                                         m, o), 0);
    remove(o);
  }
  /* 4e9 neurons: hundreds of GB of state */
  assert_int_equal(run_t("run %s -o %s --quiet --set populations.exc.n=4000000000", model, o), 2);
  check_contains(out, "m.json: populations.exc.n: 4000000000 neurons (population 'exc') need at least");
  assert_false(sb_test_file_exists(o));
  /* populations that fit and a projection that does not: refused before the populations are
   * built (1e8 neurons took 20 s and 3.1 GB before their projection was refused) */
  assert_int_equal(run_t("run models/snn/brunel_delta.json -o %s --quiet --set populations.exc.n=100000000", o), 2);
  check_contains(out, "brunel_delta.json: projections[0].indegree: 1e+11 synapses (100000000 -> 100000000 neurons) need "
                      "at least 1.2e+03 GB to build (12 bytes each) on top of the ");
  check_contains(out, "(nothing was built)");
  assert_false(sb_test_file_exists(o));
  /* the same from a model file: the JSON path, no --set */
  char big[700];
  snprintf(big, sizeof big, "%s/big.json", dir);
  write_text(big, "{\"populations\": {\"a\": {\"model\": \"iaf_psc_delta\", \"n\": 100000}},\n"
                  " \"projections\": [{\"source\": \"a\", \"target\": \"a\", \"rule\": \"all_to_all\", \"weight\": 0.1, "
                  "\"delay\": 1}, {\"source\": \"a\", \"target\": \"a\", \"rule\": \"fixed_total_number\", \"N\": 4000000000, "
                  "\"weight\": {\"distribution\": \"uniform\", \"min\": 0, \"max\": 1}, \"delay\": 1}]}");
  assert_int_equal(run_t("run %s -o %s --quiet", big, o), 2);
  check_contains(out, "big.json: projections[0].rule: 1e+10 synapses (100000 -> 100000 neurons)");
  assert_false(sb_test_file_exists(o));
  /* t_stop beyond 2^32 windows (1.5 ms: the minimum delay of the projections): refused before the run, nothing left */
  assert_int_equal(run_t("run %s -o %s --quiet --t-stop 7e9", model, o), 2);
  check_contains(out, "m.json: --t-stop: 7000000000 ms is beyond the engine's limit for this network, 6442450557 ms");
  assert_false(sb_test_file_exists(o));
  /* the same from the file (by --set): named as the file's field; --t-stop wins over a harmless --set (that was blamed) */
  assert_int_equal(run_t("run %s -o %s --quiet --set simulation.t_stop=7e9", model, o), 2);
  check_contains(out, "with --set simulation.t_stop=7e9: ");
  check_contains(out, "m.json: simulation.t_stop: 7000000000 ms is beyond the engine's limit");
  assert_int_equal(run_t("run %s -o %s --quiet --set simulation.t_stop=5 --t-stop 7e9", model, o), 2);
  check_contains(out, "m.json: --t-stop: 7000000000 ms");
  assert_null(strstr(out, "with --set"));
  assert_false(sb_test_file_exists(o));
  /* more threads than processors: a warning, and the run goes on */
  cpu_set_t cs;
  int procs = sched_getaffinity(0, sizeof cs, &cs) == 0 ? CPU_COUNT(&cs) : 1;
  char warn[200];
  snprintf(warn, sizeof warn, "warning: %d threads on %d processor", procs + 1, procs);
  assert_int_equal(run_t("run %s -o %s --quiet --t-stop 5 --threads %d", model, o, procs + 1), 0);
  check_contains(out, warn);
  assert_int_equal(run_t("run %s -o %s --quiet --t-stop 5 --threads 1", model, o), 0);
  assert_null(strstr(out, "warning"));
  remove(o);
  /* state recordings far beyond the free disk space (8e17 bytes): refused before the run */
  char rec[700];
  snprintf(rec, sizeof rec, "%s/rec.json", dir);
  write_text(rec, "{\"populations\": {\"a\": {\"model\": \"iaf_psc_exp\", \"n\": 100000}},\n"
                  " \"record\": {\"state\": [{\"population\": \"a\", \"variables\": [\"V_m\"], \"interval\": 0.01}]}}");
  assert_int_equal(run_t("run %s -o %s --quiet --t-stop 2e10", rec, o), 2);
  check_contains(out, "rec.json: record.state: the recordings up to t_stop = 2e+10 ms would take about 8e+08 GB before "
                      "compression, more than 20 times the ");
  assert_false(sb_test_file_exists(o));
  /* a large but possible model still runs (multapses allowed: indegree above the source count) */
  assert_int_equal(run_t("run %s -o %s --quiet --t-stop 5 --set projections[0].indegree=100", model, o), 0);
  assert_true(sb_test_file_exists(o));
  remove(o);
}

/* Absurd values found by a user trial: refused up front (exit 2, the JSON path), or at run time
 * with a message instead of a hang or the out-of-memory killer. */
static void test_absurd_values(void **state) {
  (void)state;
  char o[700];
  snprintf(o, sizeof o, "%s/absurd.h5", dir);
  /* a Poisson rate whose window of arrivals cannot be held (the kernel killed the run at 24 GB) */
  assert_int_equal(run_t("run %s -o %s --quiet --set stimuli[0].params.rate=1e12", model, o), 2);
  check_contains(out, "m.json: stimuli[0].params.rate: 1e+12 Hz means about 5e+09 arrivals per neuron in a window of "
                      "up to 5 ms");
  assert_false(sb_test_file_exists(o));
  /* a drawn weight beyond float32 (was stored as inf and run) */
  assert_int_equal(run_t("run %s -o %s --quiet --set 'projections[0].weight={\"distribution\": \"lognormal\", "
                         "\"mu\": 1000, \"sigma\": 1}'", model, o), 2);
  check_contains(out, "m.json: projections[0].weight: drawn weight inf is beyond the range of the stored float32");
  assert_false(sb_test_file_exists(o));
  /* a capacitance so small that the propagators overflowed into NaN V_m, with exit 0 */
  assert_int_equal(run_t("run %s -o %s --quiet --set populations.exc.params.C_m=1e-308", model, o), 2);
  check_contains(out, "m.json: populations.exc.params.C_m: must be >= 1e-06 (got 1e-308)");
  /* a line break inside --set: the checkpoint's overrides are one per line, so the resume applied
   * 'projections[0].weight=30' as an override of its own */
  assert_int_equal(run_t("run %s -o %s --quiet --set \"$(printf 'simulation.output=x.h5\\nprojections[0].weight=30')\"",
                         model, o), 2);
  check_contains(out, "a line break inside PATH=VALUE");
  /* -o followed by an option: the option was the file name */
  assert_int_equal(run_t("run %s -o --quiet", model), 2);
  check_contains(out, "-o: expected a file name (got '--quiet')");
  assert_false(sb_test_file_exists("--quiet"));
  assert_false(sb_test_file_exists(o));
  /* analyze with a start after the recording's end (was exit 0 with NaN rates) */
  char a[700];
  snprintf(a, sizeof a, "%s/A.h5", dir);
  assert_int_equal(run_t("analyze %s --t-start 1e300", a), 2);
  check_contains(out, "A.h5: --t-start 1e+300: at or after the end of the recording (200 ms, from the file)");
  /* and a --t-stop beyond it: a warning (the time after the recording counts as silence) */
  assert_int_equal(run_t("analyze %s --t-stop 300", a), 0);
  check_contains(out, "warning: ");
  check_contains(out, "A.h5 ends at 200 ms (from the file); rates up to --t-stop 300 ms count the time after it as silence");
  /* a delay of 1e300 ms: its window count wrapped the queue's size (out of memory for 2^64 bytes) */
  assert_int_equal(run_t("run %s -o %s --quiet --set projections[0].delay=1e30", model, o), 2);
  check_contains(out, "m.json: projections[0].delay: the longest delay, 1e+30 ms, spans 2e+29 windows of the shortest, 5 ms; their "
                      "event queues for 40 neurons need");
  check_contains(out, "with --set projections[0].delay=1e30: ");   /* found after loading, blamed like the loader's */
  assert_false(sb_test_file_exists(o));
  assert_int_equal(run_t("run %s -o %s --quiet --set projections[0].delay=1e300", model, o), 2);
  check_contains(out, "m.json: projections[0].delay: 1e+300 ms is beyond the range of the stored float32");
  assert_false(sb_test_file_exists(o));
  /* state samples flushed once 64 MB are held, not only every flush_interval (1000 ms): 2000
   * neurons sampled every 0.001 ms for 30 ms are 240 MB (the run held them all: 293 MB peak) */
  if (!getenv("SB_SANITIZE")) {   /* the sanitizers' allocator keeps freed memory */
    char rm[700];
    snprintf(rm, sizeof rm, "%s/recmem.json", dir);
    write_text(rm, "{\"simulation\": {\"t_stop\": 30}, \"populations\": {\"a\": {\"model\": \"iaf_psc_delta\", "
                   "\"n\": 2000, \"params\": {\"I_e\": 400}}}, \"record\": {\"state\": [{\"population\": \"a\", "
                   "\"variables\": [\"V_m\"], \"interval\": 0.001}]}}");
    assert_int_equal(run_t("run %s -o %s", rm, o), 0);
    const char *pm = strstr(out, "peak memory");
    assert_non_null(pm);
    double mb = atof(pm + strlen("peak memory"));
    if (!(mb > 0 && mb < 200)) fprintf(stderr, "peak memory %g MB\n", mb);
    assert_true(mb > 0 && mb < 200);
    remove(o);
  }
  /* weights of 3e38 and -1e308 into a current-based model: V_m and the currents became inf and NaN,
   * the run exited 0 and its checkpoint could not be resumed. Now exit 1 naming the neuron and
   * variable, no output and no checkpoint */
  for (int ck = 0; ck < 2; ck++) {
    char cp[700];
    snprintf(cp, sizeof cp, "%s/inf.ckpt.h5", dir);
    assert_int_equal(run_t("run %s -o %s --quiet --t-stop 50 --set projections[0].weight=3e38 --set stimuli[0].weight=-1e308 "
                           "%s --checkpoint %s", model, o, ck ? "--checkpoint-every 20" : "", cp), 1);
    check_contains(out, "the state is no longer finite (weights or inputs too large for iaf_psc_exp)");
    if (ck) check_contains(out, "; no checkpoint written");
    assert_false(sb_test_file_exists(o));
    assert_false(sb_test_file_exists(cp));
  }
  /* conductances of 1e20 nS: iaf_cond_exp's solver stepped forever, ignoring SIGTERM. A constant
   * weight beyond 1e7 nS is refused at load with its path; jumps below it that add up beyond it
   * stop the run with an error (exit 1) within the timeout */
  const char *models[] = {"iaf_cond_exp", "iaf_cond_exp_theta"};
  for (int i = 0; i < 2; i++) {
    assert_int_equal(run_t("run %s -o %s --quiet --t-stop 50 --set 'populations.exc.model=\"%s\"' "
                           "--set populations.exc.params={} --set stimuli[0].weight=1e20", model, o, models[i]), 2);
    check_contains(out, "m.json: stimuli[0].weight: a conductance jump of 1e+20 nS into ");
    assert_false(sb_test_file_exists(o));
    assert_int_equal(run_t("run %s -o %s --quiet --t-stop 50 --set 'populations.exc.model=\"%s\"' "
                           "--set populations.exc.params={} --set stimuli[1].weight=9e6 "
                           "--set 'stimuli[1].params.spike_times=[10, 10.001]'", model, o, models[i]), 1);
    check_contains(out, "nS is beyond 1e+07 nS");
    assert_false(sb_test_file_exists(o));
    /* drawn (sparse, one_to_one) and listed weights beyond it: refused at load (were run-time errors) */
    static const char *const proj[] = {
        "'projections[0].weight={\"distribution\": \"normal\", \"mean\": 2e7, \"std\": 1}'",
        "'projections[0]={\"source\": \"exc\", \"target\": \"exc\", \"rule\": \"one_to_one\", \"delay\": 1.5, "
        "\"weight\": {\"distribution\": \"uniform\", \"min\": 2e7, \"max\": 3e7}}'",
        "'projections[0]={\"source\": \"exc\", \"target\": \"exc\", \"rule\": \"explicit\", \"delay\": 1.5, "
        "\"sources\": [0, 1], \"targets\": [1, 2], \"weights\": [1, -2e7]}'",
        "'projections[0]={\"source\": \"exc\", \"target\": \"exc\", \"rule\": \"conv\", \"delay\": 1.5, "
        "\"in_shape\": [1, 40, 1], \"kernel_shape\": [1, 1, 1, 1], \"kernel\": [5e7], \"stride\": 1, \"padding\": 0}'",
        "'projections[0]={\"source\": \"exc\", \"target\": \"exc\", \"rule\": \"all_to_all\", \"storage\": \"dense\", "
        "\"delay\": 1.5, \"weight\": {\"distribution\": \"uniform\", \"min\": 2e7, \"max\": 3e7}}'"};
    static const char *const want[] = {"m.json: projections[0].weight: drawn weight 2e+07 nS into ",
                                       "m.json: projections[0].weight: drawn weight 2.",
                                       "m.json: projections[0].weights[1]: -2e+07 nS into ",
                                       "m.json: projections[0].kernel[0]: 5e+07 nS into ",
                                       "m.json: projections[0].weight[0][0]: 2."};
    for (int j = 0; j < 5; j++) {
      assert_int_equal(run_t("run %s -o %s --quiet --t-stop 50 --set 'populations.exc.model=\"%s\"' "
                             "--set populations.exc.params={} --set %s", model, o, models[i], proj[j]), 2);
      check_contains(out, want[j]);
      check_contains(out, " is beyond the 1e+07 nS that conductance-based models integrate");
      assert_false(sb_test_file_exists(o));
    }
  }
}

/* ---- 3. --set paths ---- */

static void test_set_paths(void **state) {
  (void)state;
  static const struct { const char *set, *want; } cases[] = {
      {"populations.nosuch.n=3", "m.json: --set populations.nosuch.n: 'nosuch' does not exist in the model (existing keys there: exc)"},
      {"a..b=1", "--set a..b: empty name at character 3"},
      {"populations.exc..n=3", "--set populations.exc..n: empty name at character 17"},
      {".populations.exc.n=3", "--set .populations.exc.n: empty name at character 1"},
      {"populations.exc.n.=3", "--set populations.exc.n.: the path ends with '.'"},
      {"=3", "--set =3: expected PATH=VALUE with a non-empty PATH"},
      {"[0].a=1", "--set [0].a: expected a key name before '['"},
      {"projections[].weight=1", "--set projections[].weight: expected an index and ']' after '['"},
      {"projections[0]x=1", "--set projections[0]x: expected '.' or '[' after ']'"},
      {"projections[7].weight=1", "--set projections[7].weight: '7' is not an index of an array of 1"},
      {"simulation.nosuch=1", "with --set simulation.nosuch=1: "},
      {"nosuch=1", "with --set nosuch=1: "},
      /* an error at a sibling of the written path is the override's too */
      {"populations.exc.params.V_th=-80", "with --set populations.exc.params.V_th=-80: "},
      {"projections[0].nosuch=1", "with --set projections[0].nosuch=1: "},
      /* delays beyond float32 or beyond what the queues can hold name the projection (named no field) */
      {"projections[0].delay={\"distribution\": \"uniform\", \"min\": 0.5, \"max\": 1e40}",
       "projections[0].delay: delay "},
      {"projections[0].delay=1e40", "projections[0].delay: 1e+40 ms is beyond the range of the stored float32"},
      {"projections[0].delay=1e30", "projections[0].delay: the longest delay, 1e+30 ms"},
      {"projections[0].delay={\"distribution\": \"normal\", \"mean\": 5, \"std\": 1e300}", "below min_delay"},
      /* a constant weight beyond float32, as drawn and listed ones (ran, with -inf states) */
      {"projections[0].weight=1e40", "projections[0].weight: 1e+40 is beyond the range of the stored float32"},
      /* a population beyond 2^32 - 1 neurons is named, not the projection into it */
      {"populations.exc.n=5e9", "populations.exc.n: must be in [1, 4294967295] (got 5000000000)"},
      /* a key of another connection rule (was ignored) */
      {"projections[0].p=0.5", "projections[0].p: a parameter of rule pairwise_bernoulli, not of rule fixed_indegree"},
      /* and one whose value an error quotes as a bound, or an element of the written array */
      {"simulation.min_delay=10", "with --set simulation.min_delay=10: "},
      {"record.state[0].variables=[\"V_m\", \"U\"]",
       "record.state[0].variables[1]: 'U' is not a state variable of iaf_psc_exp (it has: V_m, I_syn_ex, I_syn_in, I_dc)"},
      {"populations.exc.n.x=1", "--set populations.exc.n.x: 'x' is below a value that is neither object nor array"},
      /* node_ids [] (a stimulus's was accepted and reached nobody) */
      {"stimuli[1].node_ids=[]", "stimuli[1].node_ids: expected at least one node id (got []; leave node_ids out for the whole population)"},
      {"record.state[0].node_ids=[]", "record.state[0].node_ids: expected at least one node id (got []"},
  };
  char o[700];
  snprintf(o, sizeof o, "%s/set.h5", dir);
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    int rc = run_t("run %s -o %s --quiet --set '%s'", model, o, cases[i].set);
    if (rc != 2) fprintf(stderr, "--set %s: exit %d\n%s\n", cases[i].set, rc, out);
    assert_int_equal(rc, 2);
    check_contains(out, cases[i].want);
    assert_false(sb_test_file_exists(o));
  }
  /* two overrides of one path: the last one, whose value is in error, is blamed */
  assert_int_equal(run_t("run %s -o %s --quiet --set projections[0].delay=5 --set projections[0].delay=0.01", model, o), 2);
  check_contains(out, "with --set projections[0].delay=0.01: ");
  /* Blame by removal: the overrides without which the error goes away or changes are named, and
   * only they. Two siblings of the field the error names: the innocent one (blamed alone before) is
   * not named. */
  assert_int_equal(run_t("run %s -o %s --quiet --set projections[0].rule=all_to_all --set projections[0].weight=2", model, o), 2);
  check_contains(out, "with --set projections[0].rule=all_to_all: ");
  assert_null(strstr(out, "weight=2"));
  assert_false(sb_test_file_exists(o));
  /* the cause, not a no-op override at the field the error names (V_reset=-70 is the default) */
  assert_int_equal(run_t("run %s -o %s --quiet --set populations.exc.params.V_th=-75 --set populations.exc.params.V_reset=-70",
                         model, o), 2);
  check_contains(out, "with --set populations.exc.params.V_th=-75: ");
  assert_null(strstr(out, "V_reset=-70"));
  /* an override of a distribution's name makes the old parameters unknown keys: it is named (with
   * the override that wrote them: the file's weight is a number) */
  assert_int_equal(run_t("run %s -o %s --quiet --set 'projections[0].weight={\"distribution\": \"lognormal\", \"mu\": 0, "
                         "\"sigma\": 1}' --set projections[0].weight.distribution=uniform", model, o), 2);
  check_contains(out, "\"sigma\": 1} and --set projections[0].weight.distribution=uniform: ");
  check_contains(out, "projections[0].weight: unknown key 'mu'");
  /* two overrides that cause an error only together: both */
  assert_int_equal(run_t("run %s -o %s --quiet --set 'stimuli[0].params.start=50' --set 'stimuli[0].params.stop=10'", model, o), 2);
  check_contains(out, "with --set stimuli[0].params.start=50 and --set stimuli[0].params.stop=10: ");
  assert_false(sb_test_file_exists(o));
  /* errors of the file itself: an unrelated override is not named (it was, as a sibling), nor one
   * that repairs another of the file's errors */
  {
    char m3[700];
    snprintf(m3, sizeof m3, "%s/filebad.json", dir);
    write_text(m3, "{\"simulation\": {\"t_stop\": 10}, \"populations\": {\"a\": {\"model\": \"iaf_psc_delta\", \"n\": 3, "
                   "\"params\": {\"tau_m\": -1}}},\n \"stimuli\": [{\"model\": \"poisson_generator\", \"target\": \"a\", "
                   "\"params\": {\"rate\": 10, \"start\": 50, \"stop\": 10}}]}");
    assert_int_equal(run_t("run %s -o %s --quiet --set populations.a.params.t_ref=3", m3, o), 2);
    check_contains(out, "filebad.json: populations.a.params.tau_m: must be > 0 (got -1)");
    assert_null(strstr(out, "with --set"));
    assert_int_equal(run_t("run %s -o %s --quiet --set populations.a.params.tau_m=10 --set stimuli[0].params.rate=20", m3, o), 2);
    check_contains(out, "filebad.json: stimuli[0].params.stop: must be >= start = 50 ms (got 10)");
    assert_null(strstr(out, "with --set"));
    assert_false(sb_test_file_exists(o));
  }
  /* explicit projections: the list and the single value (the single value was ignored); no targets
   * (a NULL dereference: exit 139 and no message) */
  static const struct { const char *proj, *want; } explicit_cases[] = {
      {"\"rule\": \"explicit\", \"sources\": [0, 1], \"targets\": [1, 2], \"weights\": [1, 2], \"weight\": 7",
       "x.json: projections[0].weight: give either weights (one per synapse) or weight, not both"},
      {"\"rule\": \"explicit\", \"sources\": [0, 1]",
       "x.json: projections[0].targets: expected an array of integers (got nothing: the key is missing)"},
      /* keys the rule ignored (3 synapses were made despite allow_multapses false) */
      {"\"rule\": \"explicit\", \"sources\": [0, 0, 0], \"targets\": [1, 1, 1], \"allow_multapses\": false",
       "x.json: projections[0].allow_multapses: not a key of rule explicit: rule explicit connects the listed pairs as given"},
      {"\"rule\": \"explicit\", \"sources\": [2], \"targets\": [2], \"allow_autapses\": false",
       "x.json: projections[0].allow_autapses: not a key of rule explicit"},
      /* one_to_one within a population made its autapses despite allow_autapses false */
      /* fixed_total_number without multapses: one message whatever N (N > pairs read as if fewer would do) */
      {"\"rule\": \"fixed_total_number\", \"N\": 100, \"allow_multapses\": false",
       "x.json: projections[0].allow_multapses: fixed_total_number draws its N pairs with replacement and needs allow_multapses = true"},
      {"\"rule\": \"one_to_one\", \"allow_autapses\": false",
       "x.json: projections[0].allow_autapses: false with rule one_to_one within one population leaves no synapse"},
      /* conv: the kernel's values are the weights (weight and receptor changed nothing) */
      {"\"rule\": \"conv\", \"in_shape\": [1, 1, 3], \"kernel_shape\": [1, 1, 1, 1], \"kernel\": [5.0], \"weight\": 1000",
       "x.json: projections[0].weight: not a key of rule conv: a conv projection's weights are its kernel's"},
      {"\"rule\": \"conv\", \"in_shape\": [1, 1, 3], \"kernel_shape\": [1, 1, 1, 1], \"kernel\": [5.0], \"receptor\": \"inhibitory\"",
       "x.json: projections[0].receptor: not a key of rule conv"},
  };
  for (size_t i = 0; i < sizeof explicit_cases / sizeof *explicit_cases; i++) {
    char m2[700], text[600];
    snprintf(m2, sizeof m2, "%s/x.json", dir);
    snprintf(text, sizeof text, "{\"simulation\": {\"t_stop\": 5},\n \"populations\": {\"a\": {\"model\": \"iaf_psc_delta\", "
             "\"n\": 3}},\n \"projections\": [{\"source\": \"a\", \"target\": \"a\", %s}]}",
             explicit_cases[i].proj);
    write_text(m2, text);
    assert_int_equal(run_t("run %s -o %s --quiet", m2, o), 2);
    check_contains(out, explicit_cases[i].want);
    assert_false(sb_test_file_exists(o));
  }
  /* the unknown-key cases name the key too */
  assert_int_equal(run_t("run %s -o %s --quiet --set simulation.nosuch=1", model, o), 2);
  check_contains(out, "simulation: unknown key 'nosuch'");
  /* a number beyond double's range was taken as a string ("expected a number (got a string)") */
  assert_int_equal(run_t("run %s -o %s --quiet --set populations.exc.params.tau_m=1e999", model, o), 2);
  check_contains(out, "--set populations.exc.params.tau_m=1e999: 1e999 is beyond the range of a double");
  assert_false(sb_test_file_exists(o));
  /* the smallest t_stop: rates 0, not -nan (t / 1000 underflowed: 0 / 0) */
  assert_int_equal(run_t("run %s -o %s --set simulation.t_stop=4.9e-324", model, o), 0);
  assert_null(strstr(out, "nan "));
  remove(o);
  /* a population name --set cannot reach (it split "a.b" at the dot) */
  assert_int_equal(run_t("run %s -o %s --quiet --set 'populations.exc=null' --set 'populations={\"a.b\": "
                         "{\"model\": \"iaf_psc_delta\", \"n\": 1}}' --set 'projections=[]' --set 'stimuli=[]' --set 'record={}'",
                         model, o), 2);
  check_contains(out, "populations: population name 'a.b': must be non-empty without '.', '[', ']' or '='");
  assert_false(sb_test_file_exists(o));
  /* notes ("_..." and comment keys) are ignored in params and init as in every other object (they
   * were "unknown parameter" and "not a state variable") */
  assert_int_equal(run_t("run %s -o %s --quiet --t-stop 5 --set populations.exc.params._note=1 --set "
                         "'populations.exc.params.comment=\"tau from NEST\"' --set populations.exc.init._c=2 --set "
                         "'populations._old={\"model\": \"nosuch\"}' --set 'populations.comment=\"x\"'", model, o), 0);
  check_contains(out, "exc ");
  assert_null(strstr(out, "_old"));
  remove(o);
  /* objects a --set may create (a population's init, absent in the file) still work */
  assert_int_equal(run_t("run %s -o %s --quiet --t-stop 5 --set populations.exc.init.V_m=-60.5", model, o), 0);
  remove(o);
}

/* ---- 4. report names ---- */

static void test_report_collision(void **state) {
  (void)state;
  char m[700], o[700];
  snprintf(m, sizeof m, "%s/rep.json", dir);
  snprintf(o, sizeof o, "%s/rep.h5", dir);
  /* exc's second recording is /report/exc_I_syn_ex, the name of population exc_I_syn_ex's first */
  write_text(m, "{\"simulation\": {\"t_stop\": 5},\n"
                " \"populations\": {\"exc\": {\"model\": \"iaf_psc_exp\", \"n\": 3}, \"exc_I_syn_ex\": {\"model\": \"iaf_psc_exp\", "
                "\"n\": 2}},\n"
                " \"record\": {\"state\": [{\"population\": \"exc\", \"variables\": [\"V_m\", \"I_syn_ex\"]},\n"
                "   {\"population\": \"exc_I_syn_ex\", \"variables\": [\"V_m\"]}]}}");
  assert_int_equal(run_t("run %s -o %s --quiet", m, o), 2);
  check_contains(out, "rep.json: record.state[1].variables: report /report/exc_I_syn_ex would be written twice: by state "
                      "recording 1 (population exc, I_syn_ex) and by state recording 2 (population exc_I_syn_ex, V_m)");
  assert_false(sb_test_file_exists(o));
  /* the same variable three times: the second and third would both be /report/exc_V_m */
  write_text(m, "{\"simulation\": {\"t_stop\": 5}, \"populations\": {\"exc\": {\"model\": \"iaf_psc_exp\", \"n\": 3}},\n"
                " \"record\": {\"state\": [{\"population\": \"exc\", \"variables\": [\"V_m\"]}, {\"population\": \"exc\", "
                "\"variables\": [\"V_m\"]}, {\"population\": \"exc\", \"variables\": [\"V_m\"]}]}}");
  assert_int_equal(run_t("run %s -o %s --quiet", m, o), 2);
  check_contains(out, "record.state[2].variables: report /report/exc_V_m would be written twice");
  assert_false(sb_test_file_exists(o));
}

/* ---- 5. analyze: node ids beyond n_nodes, nothing printed before an error ---- */

static void write_pop(hid_t f, const char *name, int64_t n_nodes, const double *t, const uint64_t *id, size_t n) {
  char path[100];
  snprintf(path, sizeof path, "spikes/%s", name);
  hid_t g = sb_h5_group(f, path);
  assert_true(g >= 0);
  assert_int_equal(sb_h5_attr_write_int64s(g, "n_nodes", &n_nodes, 1), SB_OK);
  assert_int_equal(sb_h5_attr_write_string(g, "sorting", "by_time"), SB_OK);
  assert_int_equal(sb_h5_write_1d(g, "timestamps", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, t, n), SB_OK);
  assert_int_equal(sb_h5_write_1d(g, "node_ids", H5T_STD_U64LE, H5T_NATIVE_UINT64, id, n), SB_OK);
  H5Gclose(g);
}

static void test_analyze_node_range(void **state) {
  (void)state;
  char p[700];
  snprintf(p, sizeof p, "%s/ids.h5", dir);
  hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(f >= 0);
  double t[4] = {1.25, 3.5, 7.75, 9.0};
  uint64_t ok[4] = {0, 4, 2, 4}, bad[4] = {1, 7, 0, 2};
  write_pop(f, "a", 5, t, ok, 4);    /* read first: its row must not be printed */
  write_pop(f, "b", 5, t, bad, 4);
  H5Fclose(f);
  assert_int_equal(run_t("analyze %s", p), 2);
  check_contains(out, "ids.h5: /spikes/b/node_ids[1]: node id 7 is out of range: expected < n_nodes = 5");
  assert_null(strstr(out, "rate_Hz"));   /* no table header, no row of population a */
  assert_null(strstr(out, "SONATA spikes"));
  assert_int_equal(run_t("analyze %s --json", p), 2);
  assert_null(strstr(out, "{"));
  /* population a alone is fine */
  assert_int_equal(run_t("analyze %s --population a", p), 0);
  check_contains(out, "rate_Hz");
  /* an n_nodes of 2^62 (its node arrays' size wrapped: a segfault) */
  f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(f >= 0);
  write_pop(f, "a", (int64_t)1 << 62, t, ok, 4);
  H5Fclose(f);
  assert_int_equal(run_t("analyze %s", p), 2);
  check_contains(out, "ids.h5: /spikes/a: attribute n_nodes: 4611686018427387904 nodes is too many: expected < 2^32");
  /* no spikes, no n_nodes, no t_stop: the NaN row is explained (it was a bare row of nan) */
  f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(f >= 0);
  hid_t g = sb_h5_group(f, "spikes/e");
  assert_true(g >= 0);
  assert_int_equal(sb_h5_write_1d(g, "timestamps", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, t, 0), SB_OK);
  assert_int_equal(sb_h5_write_1d(g, "node_ids", H5T_STD_U64LE, H5T_NATIVE_UINT64, ok, 0), SB_OK);
  H5Gclose(g);
  H5Fclose(f);
  assert_int_equal(run_t("analyze %s", p), 0);
  check_contains(out, "e: no spikes and no neuron count (no n_nodes attribute, no --nodes): rates and statistics undefined "
                      "(nan); no recording length in the file either (give --t-stop)");
  assert_int_equal(run_t("analyze %s --t-stop 50", p), 0);
  assert_null(strstr(out, "no recording length"));
}

/* ---- 6. --threads on convert and eval ---- */

static void test_threads_flags(void **state) {
  (void)state;
  const char *cmds[] = {"convert", "eval"};
  for (int i = 0; i < 2; i++) {
    assert_int_equal(run_t("%s --help", cmds[i]), 0);
    check_contains(out, "--threads N");
    assert_int_equal(run_t("%s x.h5 --threads 0", cmds[i]), 2);
    check_contains(out, "--threads: expected an integer in [1, 1024] (got '0')");
    /* a valid count is taken; the missing file is then the error */
    assert_int_equal(run_t("%s %s/none.h5 --threads 2", cmds[i], dir), 2);
    check_contains(out, "none.h5: no such file");
  }
}

/* ---- 7. a file where a directory is expected ---- */

/* --checkpoint naming the output file (neither exists yet) is refused, and nothing is left; so is
 * an ANN architecture file given to run. */
static void test_checkpoint_is_output(void **state) {
  (void)state;
  char nw[700];
  snprintf(nw, sizeof nw, "%s/new_out.h5", dir);
  remove(nw);
  assert_int_equal(run_t("run %s -o %s --quiet --checkpoint %s --checkpoint-every 10", model, nw, nw), 2);
  check_contains(out, "the checkpoint file is the output file");
  assert_false(sb_test_file_exists(nw));
  /* an ANN architecture file given to run: said so, exit 2, no output */
  char ann[700];
  snprintf(ann, sizeof ann, "%s/arch.json", dir);
  write_text(ann, "{\"name\": \"mlp\", \"input\": [1, 28, 28], \"layers\": [{\"kind\": \"flatten\"}]}\n");
  assert_int_equal(run_t("run %s -o %s --quiet", ann, nw), 2);
  check_contains(out, "arch.json: (top level): has 'layers' and no 'populations': an ANN architecture file");
  assert_false(sb_test_file_exists(nw));
}

static void test_not_a_directory(void **state) {
  (void)state;
  char reg[700], a[700];
  snprintf(reg, sizeof reg, "%s/plainfile", dir);
  snprintf(a, sizeof a, "%s/A.h5", dir);
  write_text(reg, "x");
  assert_int_equal(run_t("run %s -o %s/x.h5 --quiet", model, reg), 2);
  check_contains(out, "plainfile/x.h5: '");
  check_contains(out, "plainfile' is not a directory (it is a file)");
  assert_int_equal(run_t("run %s/m.json --quiet", reg), 2);
  check_contains(out, "plainfile/m.json: '");
  check_contains(out, "plainfile' is not a directory");
  assert_int_equal(run_t("analyze %s --plot %s", a, reg), 2);
  check_contains(out, "plainfile: is not a directory (it is a file); expected a directory");
  assert_int_equal(run_t("analyze %s --plot %s/figs", a, reg), 2);
  check_contains(out, "plainfile/figs: cannot create it: '");
  assert_int_equal(run_t("info --dataset --data %s", reg), 2);
  check_contains(out, "plainfile: data directory (--data or SB_DATA_DIR): is not a directory (it is a file)");
  assert_null(strstr(out, "Fashion-MNIST in"));   /* nothing printed before the error */
  assert_int_equal(run_t("info --dataset --data %s/nodir", dir), 2);
  check_contains(out, "nodir: data directory (--data or SB_DATA_DIR): does not exist");
  /* file errors of a flag's argument name the flag */
  assert_int_equal(run_t("analyze %s --nodes %s/nonodes.h5", a, dir), 2);
  check_contains(out, "--nodes: ");
  check_contains(out, "nonodes.h5: no such file");
  assert_int_equal(run_t("run %s --resume %s -o %s/r.h5 --quiet", model, reg, dir), 2);
  check_contains(out, "--resume: ");
  check_contains(out, "plainfile: not an HDF5 file");
}

/* ---- 8. output names and numbers that could not work ---- */

/* A file name too long for the file system with the temporary suffix (it failed inside HDF5 with
 * "read-only or special file system?"), a name ending in '/', a hexadecimal flag value (strtod
 * read --t-stop 0x10 as 16 ms) and an unreadable SB_PROGRESS_INTERVAL: exit 2 with the reason (a
 * warning for the variable), nothing left behind. */
static void test_output_names(void **state) {
  (void)state;
  long nm = pathconf(dir, _PC_NAME_MAX), fit = nm - 12;   /* 12: ".tmp.PID" (sim/paths.c) */
  assert_true(nm > 40 && nm < 1000);
  char longname[1100], msg[300], probe[1800];
  memset(longname, 'x', (size_t)fit - 2);
  snprintf(longname + fit - 2, sizeof longname - (size_t)fit + 2, ".h5");   /* fit + 1 characters */
  assert_int_equal(run_t("run %s -o %s/%s --quiet --t-stop 10", model, dir, longname), 2);
  snprintf(msg, sizeof msg, "the file name has %ld characters; at most %ld fit here (the file system's limit of %ld", fit + 1,
           fit, nm);
  check_contains(out, msg);
  snprintf(probe, sizeof probe, "%s/%s", dir, longname);
  assert_false(sb_test_file_exists(probe));
  /* `fit` characters: written, but its checkpoint NAME.ckpt.h5 would not fit: a warning, and with
   * --checkpoint-every a refusal before any output exists */
  snprintf(longname + fit - 3, sizeof longname - (size_t)fit + 3, ".h5");
  snprintf(probe, sizeof probe, "%s/%s", dir, longname);
  assert_int_equal(run_t("run %s -o %s --quiet --t-stop 10 --checkpoint-every 5", model, probe), 2);
  snprintf(msg, sizeof msg, ".ckpt.h5: the file name has %ld characters", fit + 5);
  check_contains(out, msg);
  assert_false(sb_test_file_exists(probe));
  assert_int_equal(run_t("run %s -o %s --quiet --t-stop 10", model, probe), 0);
  check_contains(out, "warning: a stop signal could not write its checkpoint: ");
  assert_true(sb_test_file_exists(probe));
  remove(probe);
  /* fit - 5 characters: the checkpoint fits too */
  snprintf(longname + fit - 8, sizeof longname - (size_t)fit + 8, ".h5");
  snprintf(probe, sizeof probe, "%s/%s", dir, longname);
  assert_int_equal(run_t("run %s -o %s --quiet --t-stop 10 --checkpoint-every 5", model, probe), 0);
  assert_null(strstr(out, "warning"));
  assert_true(sb_test_file_exists(probe));
  remove(probe);
  /* --checkpoint-every 1e-300: next += every never moved the next time (a hang, SIGTERM ignored) */
  assert_int_equal(run_t("run %s -o %s/ck.h5 --quiet --t-stop 10 --checkpoint-every 1e-300", model, dir), 2);
  check_contains(out, "--checkpoint-every: must be >= 0.001 ms (got 1e-300)");
  assert_int_equal(run_t("run %s -o %s/ck.h5 --quiet --t-stop 5 --checkpoint-every 0.001", model, dir), 0);
  assert_int_equal(run_t("run %s -o %s/adir/ --quiet --t-stop 10", model, dir), 2);
  check_contains(out, "adir/: ends with '/': expected an output file name, not a directory");
  assert_int_equal(run_t("run %s -o %s/h.h5 --quiet --t-stop 0x10", model, dir), 2);
  check_contains(out, "--t-stop: expected a finite decimal number (got '0x10')");
  assert_int_equal(run_t("run %s -o %s/h.h5 --quiet --t-stop ' 100'", model, dir), 2);   /* as "100 " is */
  check_contains(out, "--t-stop: expected a finite decimal number (got ' 100')");
  assert_int_equal(run_t("run %s -o %s/h.h5 --quiet --seed ' 5'", model, dir), 2);
  check_contains(out, "--seed: expected an integer in [0, ");
  snprintf(probe, sizeof probe, "%s/h.h5", dir);
  assert_false(sb_test_file_exists(probe));
  char cmd[4000];
  snprintf(cmd, sizeof cmd, "SB_PROGRESS_INTERVAL=abc %s run %s -o %s/p.h5 --t-stop 10 2>&1 </dev/null", sb_test_bin(),
           model, dir);
  FILE *f = popen(cmd, "r");
  assert_non_null(f);
  size_t n = fread(out, 1, sizeof out - 1, f);
  out[n] = '\0';
  assert_int_equal(pclose(f), 0);
  check_contains(out, "warning: SB_PROGRESS_INTERVAL=abc: expected seconds in [0, 1e9); using 60 s");
  /* the resume hint after a signal is pasted into a shell: quoted (a space and a quote broke it),
   * and pasting it resumes */
  char q[800];
  snprintf(q, sizeof q, "%s/it's here.h5", dir);
  snprintf(cmd, sizeof cmd, "%s run %s -o \"%s\" --t-stop 1e6 2>&1 >/dev/null & pid=$!; sleep 1; kill -TERM $pid; wait $pid",
           sb_test_bin(), model, q);
  f = popen(cmd, "r");
  assert_non_null(f);
  n = fread(out, 1, sizeof out - 1, f);
  out[n] = '\0';
  pclose(f);
  char want[2000];
  char *bin = realpath(sb_test_bin(), NULL);   /* the hint names the binary that ran, not one off PATH */
  assert_non_null(bin);
  snprintf(want, sizeof want, "continue with: %s run --resume '%s/it'\\''s here.ckpt.h5' -o '%s/it'\\''s here.h5'", bin, dir,
           dir);
  free(bin);
  check_contains(out, want);
  char *hint = strstr(out, "continue with: ");
  assert_non_null(hint);
  hint += strlen("continue with: ");
  char *nl = strchr(hint, '\n');
  if (nl) *nl = '\0';
  char line[4000], ckq[800];
  snprintf(ckq, sizeof ckq, "%s/it's here.ckpt.h5", dir);
  hid_t cf;
  assert_int_equal(sb_h5_open_read(ckq, &cf), SB_OK);
  double tm[4];
  size_t ntm = 0;
  assert_int_equal(sb_h5_attr_read_doubles(cf, "time", tm, 4, &ntm), SB_OK);
  H5Fclose(cf);
  snprintf(line, sizeof line, "%s --t-stop %.17g -q >/dev/null 2>&1", hint, tm[0] + 10);
  assert_int_equal(system(line), 0);   /* pasted as printed */
  assert_true(sb_test_file_exists(q));
  /* a NUL byte in a model file: what followed it was ignored */
  char nul[700];
  snprintf(nul, sizeof nul, "%s/nul.json", dir);
  FILE *z = fopen(nul, "wb");
  assert_non_null(z);
  fwrite(model_text, 1, strlen(model_text), z);
  fwrite("\0junk", 1, 5, z);
  fclose(z);
  assert_int_equal(run_t("run %s -o %s/nul.h5 --quiet", nul, dir), 2);
  check_contains(out, "nul.json: byte ");
  check_contains(out, " is a NUL byte: expected a JSON text file");
}

/* ---- 9. a write that fails (a full disk, a file size limit) ---- */

/* With the file size limited (ulimit -f, SIGXFSZ ignored: writes fail with EFBIG as on a full
 * disk), run crashed with SIGSEGV in HDF5's clean-up at exit. Now: exit 1 naming the file and the
 * reason, no temporary file left; a periodic checkpoint that cannot be written likewise. */
static void test_write_failure(void **state) {
  (void)state;
  char o[700], cmd[2000];
  snprintf(o, sizeof o, "%s/limited.h5", dir);
  /* the first without `trap '' XFSZ`: spikebridge ignores SIGXFSZ itself (it ended with exit 153,
   * no message and the temporary file left) */
  snprintf(cmd, sizeof cmd, "ulimit -f 100; cd %s &&", dir);
  const char *runs[2] = {"--t-stop 200", "--t-stop 200 --checkpoint-every 100"};
  for (int i = 0; i < 2; i++) {
    char args[4000];
    snprintf(args, sizeof args, "run %s -o %s --quiet %s --set record.state[0].interval=0.01 "
             "--set record.state[0].node_ids=[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19]", model, o, runs[i]);
    char out2[8192];
    int rc = sb_test_run_wrapped(cmd, out2, sizeof out2, "%s", args);
    if (rc != 1) fprintf(stderr, "%s: exit %d\n%s\n", args, rc, out2);
    assert_int_equal(rc, 1);
    check_contains(out2, "File too large");
    assert_false(sb_test_file_exists(o));
    DIR *d = opendir(dir);
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));) assert_null(strstr(e->d_name, ".tmp."));
    closedir(d);
  }
  /* a checkpoint that hits the limit while it copies the recordings (CUBA's V_m, 143 kB per ms,
   * checkpoints every 1 ms, 600 kB per file: the output still fits when the checkpoint, state
   * plus recordings, does not): exit 1 naming the recording, the earlier checkpoint kept, no
   * temporary file (an H5Ocopy version crashed here with "double free or corruption") */
  char cwd[1024], ck[700], lim[2000], out3[8192];
  assert_non_null(getcwd(cwd, sizeof cwd));
  snprintf(o, sizeof o, "%s/cuba_lim.h5", dir);
  snprintf(ck, sizeof ck, "%s/cuba_lim.ckpt.h5", dir);
  snprintf(lim, sizeof lim, "trap '' XFSZ; ulimit -f 1200; cd %s &&", dir);   /* sh: 512-byte blocks */
  int rc = sb_test_run_wrapped(lim, out3, sizeof out3, "run %s/models/snn/cuba.json -o %s --quiet --t-stop 20 "
                               "--checkpoint-every 1 --set 'record.state=[{\"population\": \"exc\", \"variables\": "
                               "[\"V_m\"], \"interval\": 0.05}]'", cwd, o);
  if (rc != 1) fprintf(stderr, "exit %d\n%s\n", rc, out3);
  assert_int_equal(rc, 1);
  check_contains(out3, "cuba_lim.ckpt.h5: checkpoint: cannot copy the recording /");   /* where it crosses 600 kB */
  check_contains(out3, ": File too large");
  assert_false(sb_test_file_exists(o));
  assert_true(sb_test_file_exists(ck));   /* the last one that fitted */
  DIR *d = opendir(dir);
  assert_non_null(d);
  for (struct dirent *e; (e = readdir(d));) assert_null(strstr(e->d_name, ".tmp."));
  closedir(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tampered_checkpoint), cmocka_unit_test(test_tampered_plastic_checkpoint),
      cmocka_unit_test(test_size_limits),         cmocka_unit_test(test_absurd_values),
      cmocka_unit_test(test_set_paths),           cmocka_unit_test(test_report_collision),
      cmocka_unit_test(test_analyze_node_range),  cmocka_unit_test(test_threads_flags),
      cmocka_unit_test(test_not_a_directory),     cmocka_unit_test(test_checkpoint_is_output),
      cmocka_unit_test(test_output_names),
      cmocka_unit_test(test_write_failure),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
