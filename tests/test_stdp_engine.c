/* Plastic projections in the engine (sim/plastic.c + learning/stdp.c): the same plastic
 * network as a Brian2 run (tests/ref/stdp_net.json, tests/ref/stdp_brian2.h5 from
 * tests/ref/make_stdp_brian2.py), thread-count invariance, weight output of `spikebridge run`,
 * model-file errors, and Song, Miller & Abbott 2000's bimodal weight distribution. */
#include "learning/learning.h"
#include "sim/sim.h"
#include "tests/testutil.h"

#define NET "tests/ref/stdp_net.json"
#define REF "tests/ref/stdp_brian2.h5"

static const char *pops[3] = {"A", "B", "C"};

static sb_snn_model load(int threads) {
  sb_snn_model m;
  sb_snn_model_opts o = {NULL, 0, NAN, -1, threads};
  int rc = sb_snn_model_load(NET, &o, &m);
  if (rc) fprintf(stderr, "%s\n", sb_last_error());
  assert_int_equal(rc, SB_OK);
  return m;
}

/* weights of plastic projection p as a (n_src, n_tgt) matrix */
static double *weights(const sb_net *net, int p, size_t ns, size_t nt) {
  size_t n = sb_net_proj_synapses(net, p);
  assert_int_equal(n, ns * nt);
  uint32_t *s = malloc(n * sizeof *s), *t = malloc(n * sizeof *t);
  double *w = malloc(n * sizeof *w), *W = calloc(ns * nt, sizeof *W);
  assert_int_equal(sb_stdp_get_synapses(net, p, s, t, NULL, w), SB_OK);
  for (size_t i = 0; i < n; i++) W[s[i] * nt + t[i]] = w[i];
  free(s); free(t); free(w);
  return W;
}

static void test_vs_brian2(void **state) {
  (void)state;
  sb_h5_quiet();
  sb_snn_model m = load(0);
  assert_int_equal(sb_net_run(m.net, m.t_stop), SB_OK);
  hid_t f;
  assert_int_equal(sb_h5_open_read(REF, &f), SB_OK);
  for (int p = 0; p < 3; p++) {
    assert_true(sb_stdp_is_plastic(m.net, p));
    char name[64];
    size_t n, dims[2];
    double *ref;
    snprintf(name, sizeof name, "%s/weight", pops[p]);
    assert_int_equal(sb_h5_read(f, name, H5T_NATIVE_DOUBLE, (void **)&ref, &n, NULL, dims, 2), SB_OK);
    double *W = weights(m.net, p, dims[0], dims[1]);
    int changed = 0;
    for (size_t i = 0; i < n; i++) {
      /* Brian2 float64 with the same exact exponentials: agreement to rounding; 1e-6 mV */
      check_abs(W[i], ref[i], 1e-6, "%s (%s): weight of synapse %zu -> %zu vs Brian2", pops[p],
                sb_stdp_model_name(&(sb_stdp_params){.model = p == 2, .pairing = p == 1}), i / dims[1], i % dims[1]);
      changed += fabs(W[i] - (3.5 + 0.25 * (double)((i / dims[1] + i % dims[1]) % 4))) > 0.05;
    }
    assert_true(changed > (int)n / 2);   /* the test exercises plasticity */
    /* the output spikes agree too (they depend on the plastic weights) */
    double *rt;
    int64_t *ri;
    size_t nr;
    snprintf(name, sizeof name, "%s/spike_times", pops[p]);
    assert_int_equal(sb_h5_read(f, name, H5T_NATIVE_DOUBLE, (void **)&rt, &nr, NULL, NULL, 0), SB_OK);
    snprintf(name, sizeof name, "%s/spike_ids", pops[p]);
    assert_int_equal(sb_h5_read(f, name, H5T_NATIVE_INT64, (void **)&ri, &nr, NULL, NULL, 0), SB_OK);
    const double *t;
    const uint32_t *id;
    size_t ns;
    assert_int_equal(sb_net_spikes(m.net, sb_net_find_population(m.net, pops[p]), &t, &id, &ns), SB_OK);
    assert_int_equal(ns, nr);
    assert_true(ns > 20);
    for (size_t i = 0; i < ns; i++) {
      check_abs(t[i], rt[i], 1e-9, "%s spike %zu time vs Brian2 (grid times)", pops[p], i);
      assert_int_equal(id[i], ri[i]);
    }
    sb_free(ref); sb_free(rt); sb_free(ri); free(W);
  }
  H5Fclose(f);
  sb_snn_model_free(&m);
}

static void test_threads_invariant(void **state) {
  (void)state;
  sb_snn_model a = load(1), b = load(2);
  assert_int_equal(sb_net_run(a.net, a.t_stop), SB_OK);
  assert_int_equal(sb_net_run(b.net, b.t_stop), SB_OK);
  for (int p = 0; p < 3; p++) {
    double *wa = weights(a.net, p, 30, 3), *wb = weights(b.net, p, 30, 3);
    for (size_t i = 0; i < 90; i++) check_abs(wa[i], wb[i], 0, "1 vs 2 threads, projection %d synapse %zu", p, i);
    free(wa); free(wb);
  }
  /* reset keeps the learned weights, clears traces; a second run starts from them */
  double *w1 = weights(a.net, 0, 30, 3);
  assert_int_equal(sb_net_reset(a.net), SB_OK);
  double *w2 = weights(a.net, 0, 30, 3);
  for (size_t i = 0; i < 90; i++) check_abs(w2[i], w1[i], 0, "weights kept by reset, synapse %zu", i);
  /* snapshots: 10 at 0, 100, ..., 900 ms; the first holds the initial weights */
  sb_snn_model c = load(2);
  assert_int_equal(sb_net_run(c.net, c.t_stop), SB_OK);
  const double *snap;
  size_t nt;
  double dt;
  assert_int_equal(sb_stdp_snapshots(c.net, 2, &snap, &nt, &dt), SB_OK);
  assert_int_equal(nt, 10);
  check_rel(dt, 100.0, 0, "snapshot interval");
  uint32_t s[90], t[90];
  assert_int_equal(sb_stdp_get_synapses(c.net, 2, s, t, NULL, NULL), SB_OK);
  for (size_t i = 0; i < 90; i++) check_abs(snap[i], 3.5 + 0.25 * ((s[i] + t[i]) % 4), 0, "snapshot at 0 ms, synapse %zu", i);
  int moved = 0;
  for (size_t i = 0; i < 90; i++) moved += snap[9 * 90 + i] != snap[i];
  assert_true(moved > 45);
  free(w1); free(w2);
  sb_snn_model_free(&a);
  sb_snn_model_free(&b);
  sb_snn_model_free(&c);
}

static void test_cli_writes_weights(void **state) {
  (void)state;
  char out[8192], path[512];
  snprintf(path, sizeof path, "%s/stdp_run.h5", sb_test_tmpdir());
  int rc = sb_test_run(out, sizeof out, "run %s -o %s --quiet", NET, path);
  if (rc) fprintf(stderr, "%s\n", out);
  assert_int_equal(rc, 0);
  hid_t f, r;
  assert_int_equal(sb_h5_open_read(path, &f), SB_OK);
  assert_int_equal(sb_h5_open_read(REF, &r), SB_OK);
  for (int p = 0; p < 3; p++) {
    char name[64];
    size_t n, nref, dims[2];
    uint64_t *src, *tgt;
    double *w, *ref, *sn;
    snprintf(name, sizeof name, "weights/%d/weight", p);
    assert_int_equal(sb_h5_read(f, name, H5T_NATIVE_DOUBLE, (void **)&w, &n, NULL, NULL, 0), SB_OK);
    snprintf(name, sizeof name, "weights/%d/source_node_ids", p);
    assert_int_equal(sb_h5_read(f, name, H5T_NATIVE_UINT64, (void **)&src, &n, NULL, NULL, 0), SB_OK);
    snprintf(name, sizeof name, "weights/%d/target_node_ids", p);
    assert_int_equal(sb_h5_read(f, name, H5T_NATIVE_UINT64, (void **)&tgt, &n, NULL, NULL, 0), SB_OK);
    snprintf(name, sizeof name, "%s/weight", pops[p]);
    assert_int_equal(sb_h5_read(r, name, H5T_NATIVE_DOUBLE, (void **)&ref, &nref, NULL, NULL, 0), SB_OK);
    assert_int_equal(n, nref);
    for (size_t i = 0; i < n; i++) check_abs(w[i], ref[src[i] * 3 + tgt[i]], 1e-6, "file weight %d/%zu vs Brian2", p, i);
    snprintf(name, sizeof name, "weights/%d/snapshots", p);
    assert_int_equal(sb_h5_read(f, name, H5T_NATIVE_DOUBLE, (void **)&sn, &n, NULL, dims, 2), SB_OK);
    assert_int_equal(dims[0], 10);
    assert_int_equal(dims[1], 90);
    snprintf(name, sizeof name, "weights/%d", p);
    hid_t g = H5Gopen2(f, name, H5P_DEFAULT);
    char *sm;
    assert_int_equal(sb_h5_attr_read_string(g, "synapse_model", &sm), SB_OK);
    assert_string_equal(sm, p == 0 ? "stdp_synapse" : p == 1 ? "stdp_nn_symm_synapse" : "stdp_triplet_synapse");
    /* each rule's own parameters only */
    assert_int_equal(sb_h5_attr_exists(g, "Wmax"), 1);
    assert_int_equal(sb_h5_attr_exists(g, "lambda"), p < 2);
    assert_int_equal(sb_h5_attr_exists(g, "Aplus_triplet"), p == 2);
    double lam = 0;
    size_t nl = 0;
    if (p == 0) {
      assert_int_equal(sb_h5_attr_read_doubles(g, "lambda", &lam, 1, &nl), SB_OK);
      check_abs(lam, 0.03, 0.0, "stdp_synapse lambda from the model file");
    }
    H5Gclose(g);
    sb_free(sm); sb_free(w); sb_free(src); sb_free(tgt); sb_free(ref); sb_free(sn);
  }
  H5Fclose(f);
  H5Fclose(r);
}

/* A copy of the network file with one projection field replaced, run through the CLI. */
static void bad_model(const char *from, const char *to, const char *want) {
  char path[512], out[8192], cmd[2048];
  snprintf(path, sizeof path, "%s/bad.json", sb_test_tmpdir());
  snprintf(cmd, sizeof cmd, "sed '0,/%s/s//%s/' %s > %s", from, to, NET, path);
  assert_int_equal(system(cmd), 0);
  char o[600];
  snprintf(o, sizeof o, "%s/bad.h5", sb_test_tmpdir());
  int rc = sb_test_run(out, sizeof out, "run %s -o %s --quiet", path, o);
  if (rc != 2 || !strstr(out, want)) fprintf(stderr, "output: %s\n", out);
  assert_int_equal(rc, 2);
  check_contains(out, want);
  check_contains(out, "bad.json");
  assert_false(sb_test_file_exists(o));
}

static void test_model_errors(void **state) {
  (void)state;
  bad_model("\"stdp_synapse\"", "\"stdp_fancy_synapse\"", "projections[0].synapse_model: unknown model \"stdp_fancy_synapse\"");
  bad_model("\"tau_plus\": 16.8", "\"tau_plus\": -16.8", "projections[0].synapse_params.tau_plus: must be > 0 (got -16.8)");
  bad_model("\"alpha\": 1.05", "\"alfa\": 1.05", "projections[0].synapse_params.alfa: unknown parameter of stdp_synapse");
  bad_model("\"interval\": 100.0", "\"interval\": 0", "projections[0].record_weights.interval: must be >= 0.001 ms");
  bad_model("\"rule\": \"explicit\"", "\"rule\": \"one_to_one\"", "plastic synapses need sparse storage");
  bad_model("\"synapse_model\": \"stdp_synapse\"", "\"synapse_model\": \"static_synapse\"",
            "only plastic synapse models take parameters");
}

/* Every allocation of a plastic network's construction and run may fail: the error comes back
 * as SB_ENOMEM and sb_net_free releases what exists (ASan checks the leaks in make sanitize). */
static void test_alloc_failures(void **state) {
  (void)state;
  int done = 0;
  for (long n = 1; n < 400 && !done; n++) {
    sb_net *net = sb_net_alloc(3, 2);
    if (!net) continue;
    sb_alloc_fail_after(n);
    int in = -1, out = -1, rc;
    sb_stdp_params p;
    sb_stdp_defaults(&p, n % 2 ? SB_STDP_TRIPLET : SB_STDP_PAIR);
    sb_conn_spec c = {.rule = SB_RULE_PAIRWISE_BERNOULLI, .p = 0.5, .allow_autapses = 1, .allow_multapses = 1};
    sb_syn_spec y = {.weight = {SB_DIST_UNIFORM, 1.0, 20.0, 0, 0}, .delay = {SB_DIST_CONST, 1.0, 0, 0, 0}};
    if (!(rc = sb_net_add_population(net, "in", sb_neuron_iaf_psc_delta, 20, &in)) &&
        !(rc = sb_net_add_population(net, "out", sb_neuron_iaf_psc_delta, 5, &out)) &&
        !(rc = sb_net_add_poisson(net, in, NULL, 0, 50.0, 0, INFINITY, 30.0, 0.1)) &&
        !(rc = sb_stdp_connect(net, in, out, &c, &y, &p, NULL)) && !(rc = sb_stdp_record_weights(net, 0, 10.0)) &&
        !(rc = sb_net_run(net, 200.0)))
      done = 1;
    sb_alloc_fail_after(0);
    if (!done) assert_int_equal(rc, SB_ENOMEM);
    sb_net_free(net);
  }
  assert_true(done);
}

/* ---- Song, Miller & Abbott 2000 ---- */

/* The shipped example examples/stdp_song2000.json (Brian2's Song et al. example: one
 * conductance-based neuron, tau_m = C_m/g_L = 10 ms, E_L -74, V_th -54, V_reset -60 mV,
 * tau_syn_ex 5 ms, no refractory period, 1000 Poisson inputs at 15 Hz through additive STDP:
 * stdp_synapse with mu = 0, hard bounds [0, Wmax], Wmax = 0.01 g_L = 0.25 nS, lambda = 0.01,
 * alpha = 1.05, tau = 20 ms, delay 1 ms; seed 11, one thread), initial weights uniform in
 * [0, Wmax], run for 60 s instead of the file's 100 s. Competition pushes the weights towards
 * the bounds (Song et al. 2000, Fig. 2). Stated bounds after 60 s, on the histogram of the
 * weights in 10 bins of Wmax/10:
 *  1. bimodal with the modes at the bounds: each end bin ([0, 0.1) and (0.9, 1] Wmax) holds more
 *     weights than every one of the 8 inner bins, and at least 10% of all weights;
 *  2. at least 30% of the weights lie within 10% of a bound (a uniform distribution has 20%);
 *  3. the middle fifth [0.4, 0.6] Wmax has lost at least a quarter of its initial share.
 * Measured: histogram 238 90 91 56 62 65 63 77 99 159 (40% in the end bins; the middle fifth
 * 127 of 1000 from 188; docs/stdp.md gives the command). This is the onset of the
 * separation; "most weights near the bounds" needs far longer runs (43% after 100 s and 200 s
 * here), too long for a unit test. */
static void test_song_miller_abbott(void **state) {
  (void)state;
  const size_t N = 1000;
  sb_snn_model m;
  sb_snn_model_opts o = {NULL, 0, 60000.0, -1, 1};
  int rc = sb_snn_model_load("examples/stdp_song2000.json", &o, &m);
  if (rc) fprintf(stderr, "%s\n", sb_last_error());
  assert_int_equal(rc, SB_OK);
  assert_int_equal(sb_net_proj_synapses(m.net, 0), N);
  const double Wmax = 0.25;   /* the file's synapse_params.Wmax */
  double *w = malloc(N * sizeof *w);
  size_t mid0 = 0, mid = 0, bins[10] = {0};
  assert_int_equal(sb_stdp_get_synapses(m.net, 0, NULL, NULL, NULL, w), SB_OK);
  for (size_t i = 0; i < N; i++) mid0 += w[i] >= 0.4 * Wmax && w[i] <= 0.6 * Wmax;
  assert_int_equal(sb_net_run(m.net, m.t_stop), SB_OK);
  assert_int_equal(sb_stdp_get_synapses(m.net, 0, NULL, NULL, NULL, w), SB_OK);
  for (size_t i = 0; i < N; i++) {
    assert_true(w[i] >= 0 && w[i] <= Wmax);
    int b = (int)(w[i] / Wmax * 10.0);
    bins[b > 9 ? 9 : b]++;
    mid += w[i] >= 0.4 * Wmax && w[i] <= 0.6 * Wmax;
  }
  uint64_t cnt;
  int out = sb_net_find_population(m.net, "out");
  assert_true(out >= 0);
  sb_net_spike_counts(m.net, out, &cnt);
  fprintf(stderr, "Song et al.: histogram of %zu weights in tenths of Wmax:", N);
  for (int b = 0; b < 10; b++) fprintf(stderr, " %zu", bins[b]);
  fprintf(stderr, "; %zu in [0.4, 0.6] Wmax (%zu at start); output %.1f Hz\n", mid, mid0, (double)cnt / 60.0);
  for (int b = 1; b < 9; b++) {
    assert_true(bins[0] > bins[b]);
    assert_true(bins[9] > bins[b]);
  }
  assert_true(bins[0] >= N / 10 && bins[9] >= N / 10);
  assert_true(bins[0] + bins[9] >= 3 * N / 10);
  assert_true(4 * mid <= 3 * mid0);
  free(w);
  sb_snn_model_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_vs_brian2),         cmocka_unit_test(test_threads_invariant),
      cmocka_unit_test(test_cli_writes_weights), cmocka_unit_test(test_model_errors),
      cmocka_unit_test(test_alloc_failures),    cmocka_unit_test(test_song_miller_abbott),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
