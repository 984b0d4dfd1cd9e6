/* Bad input to plastic projections, through `spikebridge run` (exit 2, a message naming the model
 * file, the JSON path and what was expected, no output file and no left-over temporary) and
 * through the C API (SB_EINVAL, the network unchanged): weight snapshots that overflow or do not
 * fit in memory, initial weights outside [0, Wmax], parameters of the other rule, pairings that
 * contradict the model name, aliases given twice, unknown record_weights keys. */
#include "learning/learning.h"
#include "sim/sim.h"
#include "tests/testutil.h"

#include <glob.h>

#define SONG "examples/stdp_song2000.json"

/* A 7 -> 1 network (spike trains, 100 ms) with one plastic projection; `proj` is the body of the
 * projection object after source/target/rule/delay, `t_stop` the simulation time. */
static void write_model(const char *path, const char *t_stop, const char *proj) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f,
          "{\"simulation\": {\"t_stop\": %s, \"seed\": 1, \"threads\": 1},\n"
          " \"populations\": {\"pre\": {\"model\": \"iaf_psc_delta\", \"n\": 7, \"params\": {\"t_ref\": 0.0}},\n"
          "                 \"post\": {\"model\": \"iaf_psc_delta\", \"n\": 1, \"params\": {\"t_ref\": 0.0}}},\n"
          " \"stimuli\": [{\"model\": \"spike_generator\", \"target\": \"pre\", \"params\": {\"spike_times\": [10.0, 20.0, 30.0]},\n"
          "              \"weight\": 100.0, \"delay\": 1.0},\n"
          "             {\"model\": \"spike_generator\", \"target\": \"post\", \"params\": {\"spike_times\": [15.0]},\n"
          "              \"weight\": 100.0, \"delay\": 1.0}],\n"
          " \"projections\": [{\"source\": \"pre\", \"target\": \"post\", \"rule\": \"all_to_all\", \"delay\": 1.0, %s}]}\n",
          t_stop, proj);
  fclose(f);
}

#define PAIR "\"synapse_model\": \"stdp_synapse\", \"synapse_params\": {\"lambda\": 0.01, \"Wmax\": 1.0"
#define TRIP "\"synapse_params\": {\"tau_plus\": 16.8, \"Wmax\": 1.0"

/* No file named out or out.tmp.* in the test directory. */
static void assert_no_output(const char *out) {
  assert_false(sb_test_file_exists(out));
  char pat[700];
  glob_t g;
  snprintf(pat, sizeof pat, "%s.tmp.*", out);
  int r = glob(pat, 0, NULL, &g);
  if (r == 0) fprintf(stderr, "left behind: %s\n", g.gl_pathv[0]);
  assert_int_equal(r, GLOB_NOMATCH);
  globfree(&g);
}

/* `spikebridge run MODEL -o OUT --quiet EXTRA` exits 2 with the model file's name and every
 * string of want[] (NULL-terminated) in its message, and writes nothing. */
static void refused(const char *model, const char *extra, const char *const *want) {
  static int calls;   /* one output name per case: a failure does not spill into the next */
  char out[600], msg[8192];
  snprintf(out, sizeof out, "%s/out%d.h5", sb_test_tmpdir(), calls++);
  int rc = sb_test_run(msg, sizeof msg, "run %s -o %s --quiet %s", model, out, extra);
  int ok = rc == 2 && strstr(msg, model);
  for (int i = 0; want[i]; i++) ok = ok && strstr(msg, want[i]);
  if (!ok) fprintf(stderr, "rc %d, output: %s\n", rc, msg);
  assert_int_equal(rc, 2);
  check_contains(msg, model);
  for (int i = 0; want[i]; i++) check_contains(msg, want[i]);
  assert_no_output(out);
}

/* A small model `name`.json with projection body `proj`, refused with want[]. */
static void refused_small(const char *name, const char *t_stop, const char *proj, const char *const *want) {
  char path[600];
  snprintf(path, sizeof path, "%s/%s.json", sb_test_tmpdir(), name);
  write_model(path, t_stop, proj);
  refused(path, "", want);
}

static void accepted_small(const char *name, const char *proj) {
  char path[600], out[600], msg[8192];
  snprintf(path, sizeof path, "%s/%s.json", sb_test_tmpdir(), name);
  snprintf(out, sizeof out, "%s/%s.h5", sb_test_tmpdir(), name);
  write_model(path, "100.0", proj);
  int rc = sb_test_run(msg, sizeof msg, "run %s -o %s --quiet", path, out);
  if (rc) fprintf(stderr, "output: %s\n", msg);
  assert_int_equal(rc, 0);
  assert_true(sb_test_file_exists(out));
}

#define W(...) ((const char *const[]){__VA_ARGS__, NULL})

/* The 7 -> 1 network through the C API, Wmax 1, weights `y`; the connect's status. */
static int api_connect(sb_net **out, const sb_syn_spec *y) {
  sb_net *net = sb_net_alloc(1, 1);
  assert_non_null(net);
  int pre, post;
  assert_int_equal(sb_net_add_population(net, "pre", sb_neuron_iaf_psc_delta, 7, &pre), SB_OK);
  assert_int_equal(sb_net_add_population(net, "post", sb_neuron_iaf_psc_delta, 1, &post), SB_OK);
  sb_stdp_params p;
  sb_stdp_defaults(&p, SB_STDP_PAIR);
  p.Wmax = 1.0;
  sb_conn_spec c = {.rule = SB_RULE_ALL_TO_ALL, .allow_autapses = 1, .allow_multapses = 1};
  *out = net;
  return sb_stdp_connect(net, pre, post, &c, y, &p, NULL);
}

/* ---- 1, 2: weight snapshots ---- */

/* t_stop = 2^58 ms at interval 1 ms with 7 synapses: (2^58 + 1) x 8 x 8 bytes wraps size_t; the
 * run crashed and left out.h5.tmp.<pid>. */
static void test_snapshot_overflow(void **state) {
  (void)state;
  refused_small("snapwrap", "2.8823037615171174e+17", PAIR "}, \"weight\": 0.5, \"record_weights\": {\"interval\": 1.0}",
                W("projections[0].record_weights.interval: 1 ms up to t_stop = 2.8823e+17 ms",
                  "snapshots of 7 weights", "1.845e+19 bytes", "bytes (", "GB) of "));   /* physical memory, or a cgroup or ulimit below it */
  /* the API refuses at the start of the run, before anything changes */
  sb_net *net;
  sb_syn_spec y = {.weight = {SB_DIST_CONST, 0.5, 0, 0, 0}, .delay = {SB_DIST_CONST, 1.0, 0, 0, 0}};
  assert_int_equal(api_connect(&net, &y), SB_OK);
  assert_int_equal(sb_stdp_record_weights(net, 0, 1.0), SB_OK);
  /* 2^58 ms is beyond 2^32 windows: refused before the snapshots are counted */
  assert_int_equal(sb_net_run(net, 0x1p58), SB_EINVAL);
  check_contains(sb_last_error(), "is beyond the engine's limit");
  /* within it, 4e12 snapshots of 1 us (2.6e14 bytes) */
  assert_int_equal(sb_stdp_record_weights(net, 0, 1e-3), SB_OK);
  assert_int_equal(sb_net_run(net, 4e9), SB_EINVAL);
  check_contains(sb_last_error(), "projections[0].record_weights.interval: 0.001 ms up to t_stop = 4e+09 ms");
  check_abs(sb_net_time(net), 0.0, 0, "no time has passed");
  assert_int_equal(sb_stdp_record_weights(net, 0, 1.0), SB_OK);
  /* a fitting run still works on the same network, and keeps its 11 snapshots */
  assert_int_equal(sb_net_run(net, 10.5), SB_OK);
  const double *w;
  size_t n;
  assert_int_equal(sb_stdp_snapshots(net, 0, &w, &n, NULL), SB_OK);
  assert_int_equal(n, 11);
  sb_net_free(net);
}

/* The Song example at 0.001 ms snapshots: 1e8 + 1 rows of 1001 doubles, 8.008e11 bytes. The
 * model load itself refuses (before any output file or run), naming the path and the bytes. */
static void test_snapshot_memory(void **state) {
  (void)state;
  refused(SONG, "--set 'projections[0].record_weights.interval=0.001'",
          W("with --set projections[0].record_weights.interval=0.001",
            "projections[0].record_weights.interval: 0.001 ms up to t_stop = 100000 ms is 100000001 snapshots of 1000 weights",
            "8.008e+11 bytes", "GB) of ", "an interval of at least"));
  const char *set[] = {"projections[0].record_weights.interval=0.001"};
  sb_snn_model_opts o = {set, 1, NAN, -1, 1};
  sb_snn_model m;
  assert_int_equal(sb_snn_model_load(SONG, &o, &m), SB_EINVAL);
  check_contains(sb_last_error(), "projections[0].record_weights.interval: 0.001 ms");
  assert_null(m.net);
  /* the file's own interval (10 s) loads */
  sb_snn_model_opts o2 = {NULL, 0, NAN, -1, 1};
  assert_int_equal(sb_snn_model_load(SONG, &o2, &m), SB_OK);
  sb_snn_model_free(&m);
}

/* ---- 3, 4: initial weights in [0, Wmax] ---- */

static void test_initial_weights(void **state) {
  (void)state;
  refused_small("w_above", "100.0", PAIR "}, \"weight\": 1.5",
                W("projections[0].weight: 1.5 is above Wmax = 1", "[0, Wmax]"));
  refused_small("w_uniform", "100.0", PAIR "}, \"weight\": {\"distribution\": \"uniform\", \"min\": 0.2, \"max\": 1.2}",
                W("projections[0].weight.max: 1.2 is above Wmax = 1"));
  refused_small("w_clipped", "100.0",
                PAIR "}, \"weight\": {\"distribution\": \"normal_clipped\", \"mean\": 0.5, \"std\": 0.1, \"min\": 0, \"max\": 1.01}",
                W("projections[0].weight.max: 1.01 is above Wmax = 1"));
  refused_small("w_lognormal", "100.0", PAIR "}, \"weight\": {\"distribution\": \"lognormal\", \"mu\": 0, \"sigma\": 1}",
                W("projections[0].weight: drawn weight", "is above Wmax = 1"));
  refused_small("w_negative", "100.0", PAIR "}, \"weight\": -0.5",
                W("projections[0].weight: -0.5 is negative", "weight and Wmax must have the same sign"));
  refused_small("w_mixed", "100.0", PAIR "}, \"weight\": {\"distribution\": \"uniform\", \"min\": -0.5, \"max\": 0.5}",
                W("projections[0].weight.min: -0.5 is negative", "weight and Wmax must have the same sign"));
  refused_small("w_normal", "100.0", PAIR "}, \"weight\": {\"distribution\": \"normal\", \"mean\": 0.1, \"std\": 1}",
                W("projections[0].weight: drawn weight -", "is negative", "weight and Wmax must have the same sign"));
  refused_small("w_inhibitory", "100.0", PAIR "}, \"weight\": 0.5, \"receptor\": \"inhibitory\"",
                W("projections[0].receptor: \"inhibitory\" makes the weights negative", "same sign"));
  /* explicit weights: the shipped Brian2 network with Wmax 4 (its weights reach 4.25) */
  char path[600], cmd[1400];
  snprintf(path, sizeof path, "%s/w_explicit.json", sb_test_tmpdir());
  snprintf(cmd, sizeof cmd, "sed '0,/\"Wmax\": 8.0/s//\"Wmax\": 4.0/' tests/ref/stdp_net.json > %s", path);
  assert_int_equal(system(cmd), 0);
  refused(path, "", W("projections[0].weights[", "is above Wmax = 4"));
  /* bounds themselves are fine: uniform [0, Wmax), a constant Wmax, |w| of excitatory */
  accepted_small("w_ok1", PAIR "}, \"weight\": {\"distribution\": \"uniform\", \"min\": 0, \"max\": 1}");
  accepted_small("w_ok2", PAIR "}, \"weight\": 1.0");
  accepted_small("w_ok3", PAIR "}, \"weight\": -0.5, \"receptor\": \"excitatory\"");
  /* the API refuses a drawn weight above Wmax and leaves the network without the projection */
  sb_net *net;
  sb_syn_spec y = {.weight = {SB_DIST_LOGNORMAL, 0.0, 1.0, 0, 0}, .delay = {SB_DIST_CONST, 1.0, 0, 0, 0}};
  assert_int_equal(api_connect(&net, &y), SB_EINVAL);
  check_contains(sb_last_error(), "weight: drawn weight");
  assert_int_equal(sb_net_n_projections(net), 0);
  sb_stdp_params p;
  sb_stdp_defaults(&p, SB_STDP_PAIR);
  sb_conn_spec c = {.rule = SB_RULE_ALL_TO_ALL, .allow_autapses = 1, .allow_multapses = 1};
  y.weight = (sb_dist){SB_DIST_UNIFORM, 0.0, 1.0, 0, 0};
  int proj = -1;
  assert_int_equal(sb_stdp_connect(net, 0, 1, &c, &y, &p, &proj), SB_OK);
  assert_int_equal(proj, 0);
  assert_int_equal(sb_net_run(net, 50.0), SB_OK);
  sb_net_free(net);
}

/* ---- 5, 6, 8: parameters of the other rule, conflicting settings, pairing ---- */

static void test_rule_parameters(void **state) {
  (void)state;
  refused_small("aplus_pair", "100.0", PAIR ", \"Aplus\": 0.01}, \"weight\": 0.5",
                W("projections[0].synapse_params.Aplus: is a parameter of stdp_triplet_synapse and stdp_triplet_nn_synapse, "
                  "not of stdp_synapse"));
  refused_small("lambda_trip", "100.0", "\"synapse_model\": \"stdp_triplet_synapse\", " TRIP ", \"mu_minus\": 1}, \"weight\": 0.5",
                W("projections[0].synapse_params.mu_minus: is a parameter of stdp_synapse and its nearest-neighbour "
                  "variants, not of stdp_triplet_synapse"));
  refused(SONG, "--set projections[0].synapse_model=stdp_triplet_synapse",
          W("projections[0].synapse_params.", "is a parameter of stdp_synapse and its nearest-neighbour variants, not of "
            "stdp_triplet_synapse"));
  refused_small("nnsymm_a2a", "100.0",
                "\"synapse_model\": \"stdp_nn_symm_synapse\", \"synapse_params\": {\"Wmax\": 1, \"pairing\": \"all_to_all\"}, \"weight\": 0.5",
                W("projections[0].synapse_params.pairing: \"all_to_all\" conflicts with synapse_model stdp_nn_symm_synapse"));
  refused_small("tripnn_a2a", "100.0",
                "\"synapse_model\": \"stdp_triplet_nn_synapse\", " TRIP ", \"pairing\": \"all_to_all\"}, \"weight\": 0.5",
                W("projections[0].synapse_params.pairing: \"all_to_all\" conflicts with synapse_model stdp_triplet_nn_synapse",
                  "\"all_to_all\" is stdp_triplet_synapse"));
  refused_small("pair_nn", "100.0", PAIR ", \"pairing\": \"nn_symm\"}, \"weight\": 0.5",
                W("projections[0].synapse_params.pairing: \"nn_symm\" conflicts with synapse_model stdp_synapse"));
  refused_small("alias_x", "100.0",
                "\"synapse_model\": \"stdp_triplet_synapse\", " TRIP ", \"tau_plus_triplet\": 120, \"tau_x\": 101}, \"weight\": 0.5",
                W("projections[0].synapse_params.tau_x: tau_x is another name of tau_plus_triplet, which is given too",
                  "tau_x = 101, tau_plus_triplet = 120"));
  refused_small("alias_y", "100.0",
                "\"synapse_model\": \"stdp_triplet_synapse\", " TRIP ", \"tau_y\": 125, \"tau_minus_triplet\": 125}, \"weight\": 0.5",
                W("projections[0].synapse_params.tau_y: tau_y is another name of tau_minus_triplet"));
  refused_small("trip_restr", "100.0",
                "\"synapse_model\": \"stdp_triplet_synapse\", " TRIP ", \"pairing\": \"nn_restr\"}, \"weight\": 0.5",
                W("projections[0].synapse_params.pairing: the triplet rule takes all-to-all pairing (stdp_triplet_synapse) or "
                  "nearest-neighbour symmetric pairing (stdp_triplet_nn_synapse) only", "(got \"nn_restr\")"));
  refused_small("pair_number", "100.0", PAIR ", \"pairing\": 0}, \"weight\": 0.5",
                W("projections[0].synapse_params.pairing: expected \"all_to_all\", \"nn_symm\" or \"nn_restr\" (a string; got the number 0)"));
  /* a pairing that repeats the model's is accepted */
  accepted_small("nnsymm_ok", "\"synapse_model\": \"stdp_nn_symm_synapse\", \"synapse_params\": {\"Wmax\": 1, \"pairing\": \"nn_symm\"}, \"weight\": 0.5");
  accepted_small("tripnn_ok", "\"synapse_model\": \"stdp_triplet_nn_synapse\", " TRIP ", \"pairing\": \"nn_symm\", \"tau_x\": 90}, \"weight\": 0.5");
}

/* ---- 7: record_weights keys ---- */

static void test_record_weights_keys(void **state) {
  (void)state;
  refused_small("rw_start", "100.0", PAIR "}, \"weight\": 0.5, \"record_weights\": {\"interval\": 10, \"start\": 50}",
                W("projections[0].record_weights: unknown key 'start' (expected one of interval)"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_snapshot_overflow), cmocka_unit_test(test_snapshot_memory),
      cmocka_unit_test(test_initial_weights),   cmocka_unit_test(test_rule_parameters),
      cmocka_unit_test(test_record_weights_keys),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
