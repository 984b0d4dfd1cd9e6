/* ANN -> SNN conversion and the two backends: hand-made networks against closed forms (spike
 * counts, readout at every step, exact event-backend spike times, reset to zero, half-threshold
 * start, qcfs, maxpool gates), the numpy reference conversion (tests/ref/convert_tiny_ref.h5 by
 * tests/ref/make_convert_ref.py), SNN vs ANN accuracy and backend agreement on real data, the
 * SNN file round trip, SONATA recording and bad inputs through the CLI. */
#include "models/ann/ann.h"
#include "models/convert/convert.h"
#include "sim/core.h"
#include "tests/testutil.h"

#define TINY "tests/ref/convert_tiny_cnn.h5"
#define TINY_REF "tests/ref/convert_tiny_ref.h5"

/* ---- helpers ---- */

/* Build an ANN from JSON with the given parameters (copied in layer order) and save it. */
static void make_ann(const char *path, const char *json, const float *params, size_t n) {
  sb_model *m = NULL;
  int rc = sb_model_from_json(&m, json, "test", NULL);
  if (rc) fprintf(stderr, "%s\n", sb_last_error());
  assert_int_equal(rc, SB_OK);
  assert_int_equal(m->n_params, n);
  memcpy(m->params, params, n * sizeof *params);
  assert_int_equal(sb_model_save(m, path, NULL), SB_OK);
  sb_model_free(m);
}

static char *tmp(const char *name) {
  static char buf[8][512];
  static int k;
  char *b = buf[k++ % 8];
  snprintf(b, 512, "%s/%s", sb_test_tmpdir(), name);
  return b;
}

static sb_convert_net *convert_with(const char *path, const uint8_t *samples, size_t ns, int h, int w,
                                    int norm_max, int reset_zero, double v_init) {
  sb_convert_opts o;
  sb_convert_opts_default(&o);
  o.eval_ann = 0;
  o.samples = samples;
  o.n_given = ns;
  o.given_h = h;
  o.given_w = w;
  o.norm_max = norm_max;
  o.reset_zero = reset_zero;
  o.v_init = v_init;
  sb_convert_net *net = NULL;
  int rc = sb_convert_file(&net, path, &o);
  if (rc) fprintf(stderr, "%s\n", sb_last_error());
  assert_int_equal(rc, SB_OK);
  return net;
}

/* ---- a hand-made MLP: 2x2 image -> dense 3 -> relu -> dense 2 ---- */

static const char hand_json[] =
    "{\"name\":\"hand\",\"input\":[1,2,2],\"layers\":[{\"kind\":\"flatten\"},{\"kind\":\"dense\",\"out\":3},"
    "{\"kind\":\"relu\"},{\"kind\":\"dense\",\"out\":2}]}";
/* W1 (3,4), b1 (3), W2 (2,3), b2 (2) */
static const float hand_params[] = {0.9f,  0.35f, -0.2f, 0.15f,  /* hidden 0 */
                                    0.1f,  0.6f,  0.45f, -0.3f,  /* hidden 1 */
                                    -0.8f, -0.5f, 0.2f,  -0.1f,  /* hidden 2: silent on our images */
                                    0.05f, -0.02f, 0.1f,
                                    0.7f,  -0.4f, 0.9f,          /* class 0 */
                                    -0.3f, 0.8f,  0.2f,          /* class 1 */
                                    -0.05f, 0.31f};
static const uint8_t hand_samples[2][4] = {{200, 90, 30, 140}, {60, 220, 180, 10}};
static const uint8_t hand_image[4] = {170, 40, 95, 120};

/* hidden pre-activations (ANN units) for an image */
static void hand_hidden(const uint8_t *img, double *a) {
  for (int j = 0; j < 3; j++) {
    a[j] = hand_params[12 + j];
    for (int i = 0; i < 4; i++) a[j] += (double)hand_params[j * 4 + i] * img[i] / 255.0;
  }
}

static double hand_lambda(void) {
  double mx = 0, a[3];
  for (int s = 0; s < 2; s++) {
    hand_hidden(hand_samples[s], a);
    for (int j = 0; j < 3; j++)
      if (a[j] > mx) mx = a[j];
  }
  return mx;
}

static void test_hand_closed_form_clocked(void **state) {
  (void)state;
  const char *ann = tmp("hand.h5");
  make_ann(ann, hand_json, hand_params, sizeof hand_params / sizeof *hand_params);
  sb_convert_net *net = convert_with(ann, &hand_samples[0][0], 2, 2, 2, 1, 0, 0);
  double lam = hand_lambda(), a[3], I[3];
  assert_int_equal(net->n_layers, 2);
  check_rel(net->layers[0].lambda, lam, 1e-6, "lambda of the hidden layer = max activation over the samples");
  check_rel(net->layers[0].w[5], hand_params[5] / lam, 1e-6, "normalised W1[1][1] = W/lambda");
  check_rel(net->layers[0].b[1], hand_params[13] / lam, 1e-6, "normalised b1[1] = b/lambda");
  check_rel(net->layers[1].w[4], hand_params[19] * lam, 1e-6, "output W2' = W2 lambda");
  hand_hidden(hand_image, a);
  for (int j = 0; j < 3; j++) I[j] = a[j] / lam;   /* threshold units per step */
  assert_true(I[2] < 0 && I[0] > 0 && I[1] > 0 && I[0] < 1 && I[1] < 1);
  const int T = 37;
  uint8_t label = 0;
  size_t rec0 = 0;
  sb_convert_eval_opts o;
  sb_convert_eval_opts_default(&o);
  o.steps = T;
  o.record = &rec0;
  o.n_record = 1;
  sb_convert_result r;
  assert_int_equal(sb_convert_eval_clocked(net, hand_image, &label, 1, &o, &r), SB_OK);
  /* closed form: n_j(t) = floor(t I_j) (reset by subtraction, V0 = 0, constant current);
   * V_k(t) = sum_j W2'_kj n_j(t) + t b2_k; class = argmax_k V_k(t) */
  double want_spikes = 0;
  for (int t = 1; t <= T; t++) {
    double n[3], V[2];
    for (int j = 0; j < 3; j++) {
      n[j] = I[j] > 0 ? floor(t * I[j]) : 0;
      double frac = t * I[j] - floor(t * I[j]);
      assert_true(I[j] < 0 || (frac > 1e-4 && frac < 1 - 1e-4));   /* no float32 boundary case */
    }
    for (int k = 0; k < 2; k++) V[k] = t * (double)hand_params[21 + k];
    for (int k = 0; k < 2; k++)
      for (int j = 0; j < 3; j++) V[k] += (double)hand_params[15 + 3 * k + j] * lam * n[j];
    int p = V[1] > V[0];
    check_abs((double)r.correct[t - 1], (double)(p == label), 0, "readout after step %d (V = %g, %g)", t, V[0], V[1]);
    if (t == T) want_spikes = n[0] + n[1] + n[2];
    if (t == T) check_abs(r.pred[0], p, 0, "class after T");
  }
  check_abs(r.spikes[0], want_spikes, 0, "hidden spikes after T = %d", T);
  check_abs(r.spikes[1], 0, 0, "the membrane-readout output never spikes");
  check_abs(r.layer_synops[1], want_spikes * 2, 0, "synaptic ops = hidden spikes x 2 targets");
  check_abs(r.input_macs, 12, 0, "analog input MACs of the first layer");
  /* recorded spike times: neuron j spikes at the steps where floor(t I_j) increases */
  const sb_convert_spikes *s = &r.rec[0];
  size_t k = 0;
  for (int t = 1; t <= T; t++)
    for (int j = 0; j < 3; j++)
      if (I[j] > 0 && floor(t * I[j]) > floor((t - 1) * I[j])) {
        assert_true(k < s->n);
        check_abs(s->t[k], t, 0, "recorded spike %zu time (ms)", k);
        check_abs((double)s->id[k], j, 0, "recorded spike %zu neuron", k);
        k++;
      }
  check_abs((double)s->n, (double)k, 0, "recorded spike count");
  sb_convert_result_free(&r);

  /* event backend: exact spike times k / I_j, arrivals delay later; same counts */
  o.delay = 0.1;
  assert_int_equal(sb_convert_eval_event(net, hand_image, &label, 1, &o, &r), SB_OK);
  check_abs(r.spikes[0], want_spikes, 0, "event backend: hidden spikes after T");
  s = &r.rec[0];
  for (size_t q = 0; q < s->n; q++) {
    uint64_t j = s->id[q];
    double kth = 0;
    for (size_t p = 0; p <= q; p++) kth += s->id[p] == j;
    /* 1e-6: the engine's current W x + b comes from float32 weights and sb_dense_forward */
    check_rel(s->t[q], kth / I[j], 1e-6, "event backend: exact time of spike %zu of neuron %llu", q,
              (unsigned long long)j);
  }
  for (int t = 1; t <= T; t++) {   /* readout: spikes that arrived (time + delay <= t) */
    double V[2] = {t * (double)hand_params[21], t * (double)hand_params[22]};
    for (int j = 0; j < 2; j++) {
      double nj = I[j] * t - 0.1 * I[j] > 0 ? floor(I[j] * (t - 0.1)) : 0;
      for (int kk = 0; kk < 2; kk++) V[kk] += (double)hand_params[15 + 3 * kk + j] * lam * nj;
    }
    check_abs((double)r.correct[t - 1], (double)((V[1] > V[0]) == label), 0, "event readout after %d ms", t);
  }
  sb_convert_result_free(&r);
  sb_convert_net_free(net);

  /* reset to zero: period ceil(1/I); half-threshold start: floor(T I + 1/2) */
  net = convert_with(ann, &hand_samples[0][0], 2, 2, 2, 1, 1, 0);
  o.record = NULL;
  o.n_record = 0;
  assert_int_equal(sb_convert_eval_clocked(net, hand_image, &label, 1, &o, &r), SB_OK);
  double wz = floor(T / ceil(1 / I[0])) + floor(T / ceil(1 / I[1]));
  check_abs(r.spikes[0], wz, 0, "reset to zero: spikes = sum floor(T / ceil(1/I))");
  sb_convert_result_free(&r);
  sb_convert_net_free(net);
  net = convert_with(ann, &hand_samples[0][0], 2, 2, 2, 1, 0, 0.5);
  check_rel(net->v_init, 0.5, 0, "v_init stored");
  assert_int_equal(sb_convert_eval_clocked(net, hand_image, &label, 1, &o, &r), SB_OK);
  check_abs(r.spikes[0], floor(T * I[0] + 0.5) + floor(T * I[1] + 0.5), 0, "V0 = theta/2: floor(T I + 1/2)");
  sb_convert_result_free(&r);
  sb_convert_net_free(net);
}

/* qcfs: threshold = clip lambda, V0 = lambda/2; after T = L steps the spike count equals the
 * quantised activation times L/lambda (Bu et al. 2022, theorem 2) */
static void test_qcfs_closed_form(void **state) {
  (void)state;
  const char *json = "{\"name\":\"q\",\"input\":[1,2,2],\"layers\":[{\"kind\":\"flatten\"},{\"kind\":\"dense\",\"out\":3},"
                     "{\"kind\":\"qcfs\",\"levels\":4,\"threshold\":2.0},{\"kind\":\"dense\",\"out\":2}]}";
  float p[sizeof hand_params / sizeof *hand_params + 1];
  memcpy(p, hand_params, 15 * sizeof *p);
  p[15] = 0.83f;   /* lambda */
  memcpy(p + 16, hand_params + 15, 8 * sizeof *p);
  const char *ann = tmp("qcfs.h5");
  make_ann(ann, json, p, 24);
  sb_convert_opts o;
  sb_convert_opts_default(&o);
  o.eval_ann = 0;
  sb_convert_net *net = NULL;
  assert_int_equal(sb_convert_file(&net, ann, &o), SB_OK);   /* no data needed */
  check_rel(net->layers[0].lambda, 0.83, 1e-6, "qcfs layer: lambda = clip value");
  check_rel(net->v_init, 0.5, 0, "default V0 = threshold / 2");
  double a[3], want = 0;
  hand_hidden(hand_image, a);
  for (int j = 0; j < 3; j++) {
    float q;
    float x = (float)a[j];
    sb_qcfs_forward(&q, &x, 1, 0.83f, 4);
    want += q * 4 / 0.83;
  }
  uint8_t label = 0;
  sb_convert_eval_opts eo;
  sb_convert_eval_opts_default(&eo);
  eo.steps = 4;
  sb_convert_result r;
  assert_int_equal(sb_convert_eval_clocked(net, hand_image, &label, 1, &eo, &r), SB_OK);
  check_abs(r.spikes[0], round(want), 0, "spikes after T = L equal the QCFS output x L / lambda");
  sb_convert_result_free(&r);
  sb_convert_net_free(net);
}

/* maxpool gate: the window's most active input (first on ties) passes its spikes */
static void test_maxpool_gate(void **state) {
  (void)state;
  const char *json = "{\"name\":\"mp\",\"input\":[1,2,2],\"layers\":[{\"kind\":\"conv2d\",\"out\":1,\"kernel\":1},"
                     "{\"kind\":\"relu\"},{\"kind\":\"maxpool\",\"kernel\":2},{\"kind\":\"flatten\"},"
                     "{\"kind\":\"dense\",\"out\":2}]}";
  const float p[] = {1.0f, 0.0f, 1.0f, -1.0f, 0.0f, 0.0f};
  const char *ann = tmp("maxpool.h5");
  make_ann(ann, json, p, 6);
  const uint8_t samples[4] = {255, 100, 50, 10};
  sb_convert_net *net = convert_with(ann, samples, 1, 2, 2, 1, 0, 0);
  assert_int_equal(net->layers[1].kind, SB_CONVERT_MAXPOOL);
  const uint8_t img[4] = {230, 150, 201, 77};   /* pixel 0 has the highest rate */
  uint8_t label = 0;
  sb_convert_eval_opts o;
  sb_convert_eval_opts_default(&o);
  o.steps = 50;
  sb_convert_result r;
  assert_int_equal(sb_convert_eval_clocked(net, img, &label, 1, &o, &r), SB_OK);
  double n0 = 0, tot = 0;
  for (int i = 0; i < 4; i++) {
    double I = img[i] / 255.0;   /* lambda = 1 (max of the sample) */
    double c = floor(50 * I + 1e-9);
    tot += c;
    if (i == 0) n0 = c;
  }
  check_abs(r.spikes[1], n0, 0, "maxpool output = spikes of the most active input");
  check_abs(r.maxpool_cmp, 4 * tot, 0, "comparisons = K*K per input spike");
  sb_convert_result_free(&r);
  assert_int_equal(sb_convert_eval_event(net, img, &label, 1, &o, &r), SB_EUNSUPPORTED);
  sb_convert_net_free(net);
}

static void test_file_roundtrip(void **state) {
  (void)state;
  const char *ann = tmp("hand_rt.h5"), *snn = tmp("hand_rt.snn.h5");
  make_ann(ann, hand_json, hand_params, sizeof hand_params / sizeof *hand_params);
  sb_convert_net *a = convert_with(ann, &hand_samples[0][0], 2, 2, 2, 1, 1, 0.5), *b = NULL;
  assert_int_equal(sb_convert_save(a, snn), SB_OK);
  assert_true(sb_convert_file_is_snn(snn));
  assert_false(sb_convert_file_is_snn(ann));
  assert_int_equal(sb_convert_load(&b, snn), SB_OK);
  assert_int_equal(b->n_layers, a->n_layers);
  assert_int_equal(b->reset_zero, 1);
  check_abs(b->v_init, 0.5, 0, "v_init");
  for (int l = 0; l < a->n_layers; l++) {
    assert_int_equal(b->layers[l].kind, a->layers[l].kind);
    assert_string_equal(b->layers[l].name, a->layers[l].name);
    check_abs(b->layers[l].lambda, a->layers[l].lambda, 0, "lambda %d", l);
    assert_int_equal(b->layers[l].spiking, a->layers[l].spiking);
    size_t nw = l == 0 ? 12 : 6;
    assert_memory_equal(b->layers[l].w, a->layers[l].w, nw * sizeof(float));
  }
  sb_convert_net_free(a);
  sb_convert_net_free(b);
  /* a weight of the wrong shape is a format error naming the dataset */
  hid_t f = H5Fopen(snn, H5F_ACC_RDWR, H5P_DEFAULT);
  H5Ldelete(f, "layers/001/weight", H5P_DEFAULT);
  hid_t g = H5Gopen2(f, "layers/001", H5P_DEFAULT);
  float w[5] = {0};
  size_t d[2] = {1, 5};
  sb_h5_write_float(g, "weight", w, 2, d);
  H5Gclose(g);
  H5Fclose(f);
  assert_int_equal(sb_convert_load(&b, snn), SB_EFORMAT);
  check_contains(sb_last_error(), "/layers/001/weight: expected shape (2, 3) (got (1, 5))");
  char out[8192];
  assert_int_equal(sb_test_run(out, sizeof out, "eval %s --steps 5", snn), 2);
  check_contains(out, "expected shape (2, 3)");
  assert_int_equal(sb_test_run(out, sizeof out, "eval %s --steps 5", ann), 2);
  check_contains(out, "spikebridge-snn");
  /* a non-finite weight and an initial membrane outside [0, 1) of the threshold are refused */
  f = H5Fopen(snn, H5F_ACC_RDWR, H5P_DEFAULT);
  H5Ldelete(f, "layers/001/weight", H5P_DEFAULT);
  g = H5Gopen2(f, "layers/001", H5P_DEFAULT);
  float w6[6] = {0, 1, (float)INFINITY, 0, 0, 0};
  size_t d6[2] = {2, 3};
  sb_h5_write_float(g, "weight", w6, 2, d6);
  H5Gclose(g);
  H5Fclose(f);
  assert_int_equal(sb_convert_load(&b, snn), SB_EFORMAT);
  check_contains(sb_last_error(), "/layers/001/weight: element 2: expected a finite value within");
  sb_convert_save(a = convert_with(ann, &hand_samples[0][0], 2, 2, 2, 1, 1, 0.5), snn);
  sb_convert_net_free(a);
  f = H5Fopen(snn, H5F_ACC_RDWR, H5P_DEFAULT);
  double v5 = 5;
  H5Adelete(f, "v_init");
  sb_h5_attr_write_doubles(f, "v_init", &v5, 1);
  H5Fclose(f);
  assert_int_equal(sb_convert_load(&b, snn), SB_EFORMAT);
  check_contains(sb_last_error(), "@v_init: expected a fraction of the threshold in [0, 1) (got 5)");
}

static void test_cli_bad_inputs(void **state) {
  (void)state;
  char out[8192];
  sb_model *m = NULL;
  assert_int_equal(sb_model_builtin(&m, "mlp_sigmoid"), SB_OK);
  const char *sig = tmp("sigmoid.h5"), *o = tmp("sigmoid.snn.h5");
  assert_int_equal(sb_model_save(m, sig, NULL), SB_OK);
  sb_model_free(m);
  assert_int_equal(sb_test_run(out, sizeof out, "convert %s -o %s", sig, o), 2);
  check_contains(out, "layer 2 (sigmoid): not convertible");
  assert_false(sb_test_file_exists(o));
  assert_int_equal(sb_test_run(out, sizeof out, "convert %s --norm median", sig), 2);
  check_contains(out, "--norm");
  assert_int_equal(sb_test_run(out, sizeof out, "eval %s --record-images 0,1", o), 2);
  check_contains(out, "--record-images: needs --record");
  assert_int_equal(sb_test_run(out, sizeof out, "convert %s --reset never", sig), 2);
  assert_int_equal(sb_test_run(out, sizeof out, "convert %s --norm percentile:120", sig), 2);
  assert_int_equal(sb_test_run(out, sizeof out, "eval x.h5 --steps 0"), 2);
  assert_int_equal(sb_test_run(out, sizeof out, "eval x.h5 --backend gpu"), 2);
  assert_int_equal(sb_test_run(out, sizeof out, "convert %s/nonexistent.h5", sb_test_tmpdir()), 2);
  check_contains(out, "nonexistent.h5");
}

/* A convolution after a maxpool gate against its dense expansion: a 2x2 convolution over a 2x2
 * input without padding is a dense layer with the same weights (NCHW flatten = (OC, C, K, K)
 * layout), so both networks must give the same spikes and predictions. The gate passes spikes in
 * input order, which is not ascending for the next layer when a window has several channels; the
 * convolution's scatter groups spikes by position and read out of bounds before the gate sorted
 * its output (a segfault on examples/cnn_maxpool.json). */
static void test_maxpool_then_conv(void **state) {
  (void)state;
  const char *ja = "{\"name\":\"mpc\",\"input\":[1,4,4],\"layers\":[{\"kind\":\"conv2d\",\"out\":3,\"kernel\":1},"
                   "{\"kind\":\"relu\"},{\"kind\":\"maxpool\",\"kernel\":2},{\"kind\":\"conv2d\",\"out\":2,\"kernel\":2},"
                   "{\"kind\":\"relu\"},{\"kind\":\"flatten\"},{\"kind\":\"dense\",\"out\":2}]}";
  const char *jb = "{\"name\":\"mpd\",\"input\":[1,4,4],\"layers\":[{\"kind\":\"conv2d\",\"out\":3,\"kernel\":1},"
                   "{\"kind\":\"relu\"},{\"kind\":\"maxpool\",\"kernel\":2},{\"kind\":\"flatten\"},"
                   "{\"kind\":\"dense\",\"out\":2},{\"kind\":\"relu\"},{\"kind\":\"dense\",\"out\":2}]}";
  float p[38];
  const float c1[6] = {1.0f, 0.75f, 0.5f, 0.0f, 0.125f, 0.25f};   /* W (3), b (3): channel rates differ */
  memcpy(p, c1, sizeof c1);
  for (int i = 0; i < 24; i++) p[6 + i] = (float)((i * 7) % 11 - 4) / 8.0f;   /* conv2 (2, 3, 2, 2) */
  p[30] = 0.125f;
  p[31] = 0.0f;
  const float d[6] = {1.0f, -0.5f, -0.25f, 0.75f, 0.0f, 0.0f};
  memcpy(p + 32, d, sizeof d);
  const char *a = tmp("mpc.h5"), *b = tmp("mpd.h5");
  make_ann(a, ja, p, 38);
  make_ann(b, jb, p, 38);
  enum { N = 6 };
  uint8_t img[N * 16], lab[N] = {0};
  for (int i = 0; i < N * 16; i++) img[i] = (uint8_t)((i * 97 + 13) % 256);
  sb_convert_net *na = convert_with(a, img, N, 4, 4, 1, 0, 0.5), *nb = convert_with(b, img, N, 4, 4, 1, 0, 0.5);
  assert_int_equal(na->layers[2].kind, SB_CONVERT_CONV);
  assert_int_equal(nb->layers[2].kind, SB_CONVERT_DENSE);
  sb_convert_eval_opts o;
  sb_convert_eval_opts_default(&o);
  o.steps = 40;
  sb_convert_result ra, rb;
  assert_int_equal(sb_convert_eval_clocked(na, img, lab, N, &o, &ra), SB_OK);
  assert_int_equal(sb_convert_eval_clocked(nb, img, lab, N, &o, &rb), SB_OK);
  assert_true(ra.spikes[1] > 0 && ra.spikes[2] > 0);
  for (int l = 0; l < na->n_layers; l++) check_abs(ra.spikes[l], rb.spikes[l], 0, "layer %d spikes, conv vs dense", l);
  for (int i = 0; i < N; i++) assert_int_equal(ra.pred[i], rb.pred[i]);
  sb_convert_result_free(&ra);
  sb_convert_result_free(&rb);
  sb_convert_net_free(na);
  sb_convert_net_free(nb);
}

/* ---- real data ---- */

static int have_data(void) {
  sb_dataset d;
  if (sb_fmnist_load(NULL, "test", &d)) return 0;
  sb_dataset_free(&d);
  return 1;
}

static sb_convert_net *tiny_net(void) {
  sb_convert_opts o;
  sb_convert_opts_default(&o);
  o.eval_ann = 0;
  o.n_samples = 200;
  o.v_init = 0;   /* as the numpy reference */
  sb_convert_net *net = NULL;
  int rc = sb_convert_file(&net, TINY, &o);
  if (rc) fprintf(stderr, "%s\n", sb_last_error());
  assert_int_equal(rc, SB_OK);
  return net;
}

/* --pool-norm: an inheriting avgpool takes its input's lambda and weight 1/K^2; "data" (the
 * default) takes the pooled activations' percentile, which lies below the input's (averaging
 * removes extremes); malformed lists are refused naming the option. */
static void test_pool_norm(void **state) {
  (void)state;
  if (!have_data()) skip();
  sb_convert_net *dflt = tiny_net();
  sb_convert_opts o;
  sb_convert_opts_default(&o);
  o.eval_ann = 0;
  o.n_samples = 200;
  o.pool_norm = "inherit";
  sb_convert_net *net = NULL;
  assert_int_equal(sb_convert_file(&net, TINY, &o), SB_OK);
  assert_int_equal(net->layers[1].kind, SB_CONVERT_AVGPOOL);
  check_rel(net->layers[1].lambda, net->layers[0].lambda, 1e-12, "inherited lambda");
  check_rel(net->layers[1].pool_w, 1.0 / (net->layers[1].k * net->layers[1].k), 1e-6, "pool weight 1/K^2");
  check_rel(net->layers[0].lambda, dflt->layers[0].lambda, 1e-12, "conv lambda unchanged");
  assert_true(dflt->layers[1].lambda < dflt->layers[0].lambda);
  assert_non_null(strstr(net->norm, "+pool:inherit"));
  sb_convert_net_free(net);
  const char *bad[] = {"inherit,data", "avg", ""};
  for (int i = 0; i < 3; i++) {
    o.pool_norm = bad[i];
    net = NULL;
    assert_int_equal(sb_convert_file(&net, TINY, &o), SB_EINVAL);
    assert_null(net);
    assert_non_null(strstr(sb_last_error(), "pool_norm"));
  }
  sb_convert_net_free(dflt);
}

/* Last ANN layer index of a converted layer ("3,4,5" -> 5): the layer whose output is its activation. */
static int act_layer(const sb_convert_layer *L) {
  const char *c = strrchr(L->ann_layers, ',');
  return atoi(c ? c + 1 : L->ann_layers);
}

/* Potential calibration (Li et al. 2021) against its definition, computed here from independent
 * pieces: the ANN forward pass and the uncalibrated network's spike counts. Layer 0's offset is
 * T * mean(clip(a / lambda, 0, 1)) - mean(count) per channel; the membrane readout is linear in its
 * offset, so after calibration its mean V(T) per class equals T * mean(logit / lambda) (the whole
 * layer-by-layer pipeline has to be right for that). The offsets survive the file and reach the
 * event backend. */
static void test_calibration(void **state) {
  (void)state;
  if (!have_data()) skip();
  const int T = 6;
  const size_t ns = 200;
  sb_convert_opts o;
  sb_convert_opts_default(&o);
  o.eval_ann = 0;
  o.n_samples = (int)ns;
  sb_convert_net *u = NULL, *c = NULL;
  assert_int_equal(sb_convert_file(&u, TINY, &o), SB_OK);
  o.calib_steps = T;
  assert_int_equal(sb_convert_file(&c, TINY, &o), SB_OK);
  assert_int_equal(c->calib_steps, T);
  assert_null(u->layers[0].v_shift);
  int nl = c->n_layers;
  for (int l = 0; l < nl; l++) assert_non_null(c->layers[l].v_shift);
  /* the sample images, strided as the converter takes them, and the ANN's activations */
  sb_dataset tr;
  assert_int_equal(sb_fmnist_load(NULL, "train", &tr), SB_OK);
  uint8_t *imgs = malloc(ns * 784), *lab = calloc(ns, 1);
  float *x = malloc(ns * 784 * sizeof *x);
  for (size_t k = 0; k < ns; k++) memcpy(imgs + k * 784, tr.images + (k * tr.n / ns) * 784, 784);
  for (size_t i = 0; i < ns * 784; i++) x[i] = imgs[i] / 255.0f;
  sb_model *m = NULL;
  assert_int_equal(sb_model_load(&m, TINY), SB_OK);
  assert_non_null(sb_model_forward(m, x, (int)ns, 0));
  const sb_convert_layer *L0 = &c->layers[0], *LO = &c->layers[nl - 1];
  int C0 = L0->out_c, HW0 = L0->out_h * L0->out_w, NO = LO->out_c;
  double want0[64] = {0}, wantO[16] = {0}, stat[64] = {0};
  const float *a0 = sb_model_layer_output(m, act_layer(L0)), *ao = sb_model_layer_output(m, act_layer(LO));
  assert_true(C0 <= 64 && NO <= 16);
  for (size_t k = 0; k < ns; k++)
    for (int ch = 0; ch < C0; ch++)
      for (int q = 0; q < HW0; q++) {
        double r = a0[(k * (size_t)C0 + (size_t)ch) * (size_t)HW0 + (size_t)q] / L0->lambda;
        want0[ch] += T * (r < 0 ? 0 : r > 1 ? 1 : r);
      }
  for (size_t k = 0; k < ns; k++)
    for (int j = 0; j < NO; j++) wantO[j] += T * ao[k * (size_t)NO + (size_t)j] / LO->lambda;
  sb_convert_eval_opts eo;
  sb_convert_eval_opts_default(&eo);
  eo.steps = T;
  eo.stat_layer = 0;
  eo.stat = stat;
  sb_convert_result r;
  assert_int_equal(sb_convert_eval_clocked(u, imgs, lab, ns, &eo, &r), SB_OK);
  double tot = 0;
  for (int ch = 0; ch < C0; ch++) tot += stat[ch];
  check_rel(tot, r.spikes[0], 1e-12, "stat: per-channel counts sum to the layer's spikes");
  sb_convert_result_free(&r);
  for (int ch = 0; ch < C0; ch++)
    check_abs(L0->v_shift[ch], (want0[ch] - stat[ch]) / (double)(ns * (size_t)HW0), 1e-5,
              "layer 0 channel %d offset vs T mean(clip(a/lambda)) - mean count", ch);
  memset(stat, 0, sizeof stat);
  eo.stat_layer = nl - 1;
  assert_int_equal(sb_convert_eval_clocked(c, imgs, lab, ns, &eo, &r), SB_OK);
  sb_convert_result_free(&r);
  for (int j = 0; j < NO; j++)
    check_abs(stat[j] / (double)ns, wantO[j] / (double)ns, 1e-4 * (1 + fabs(wantO[j] / (double)ns)),
              "calibrated readout: mean V(T) of class %d vs T mean(logit/lambda)", j);
  /* file round trip and the event backend */
  const char *path = tmp("calib.snn.h5");
  assert_int_equal(sb_convert_save(c, path), SB_OK);
  sb_convert_net *back = NULL;
  assert_int_equal(sb_convert_load(&back, path), SB_OK);
  assert_int_equal(back->calib_steps, T);
  for (int l = 0; l < nl; l++)
    for (int ch = 0; ch < (back->layers[l].out_rank == 3 ? back->layers[l].out_c : back->layers[l].out_c); ch++)
      check_rel(back->layers[l].v_shift[ch], c->layers[l].v_shift[ch], 0, "layer %d offset %d after the file", l, ch);
  sb_dataset te;
  assert_int_equal(sb_fmnist_load(NULL, "test", &te), SB_OK);
  sb_convert_eval_opts_default(&eo);
  eo.steps = 20;
  sb_convert_result a, b;
  assert_int_equal(sb_convert_eval_clocked(back, te.images, te.labels, 20, &eo, &a), SB_OK);
  assert_int_equal(sb_convert_eval_event(back, te.images, te.labels, 20, &eo, &b), SB_OK);
  for (int l = 0; l < nl - 1; l++) check_rel(b.spikes[l], a.spikes[l], 0.02, "calibrated: layer %d spikes event vs clocked", l);
  size_t same = 0;
  for (size_t i = 0; i < 20; i++) same += a.pred[i] == b.pred[i];
  assert_true(same >= 19);
  sb_convert_result_free(&a);
  sb_convert_result_free(&b);
  /* damaged calibration in the file: offsets without the T they were made for, absurd offsets */
  char out[4096];
  const char *dmg = tmp("calib_dmg.snn.h5");
  assert_int_equal(sb_convert_save(c, dmg), SB_OK);
  hid_t f = H5Fopen(dmg, H5F_ACC_RDWR, H5P_DEFAULT);
  assert_true(f >= 0);
  assert_true(H5Adelete(f, "calib_steps") >= 0);
  H5Fclose(f);
  sb_convert_net *bad = NULL;
  assert_int_equal(sb_convert_load(&bad, dmg), SB_EFORMAT);
  check_contains(sb_last_error(), "v_shift: present, but the file has no @calib_steps");
  assert_int_equal(sb_convert_save(c, dmg), SB_OK);
  f = H5Fopen(dmg, H5F_ACC_RDWR, H5P_DEFAULT);
  hid_t ds = H5Dopen2(f, "layers/000/v_shift", H5P_DEFAULT);
  float huge[64];
  for (int i = 0; i < 64; i++) huge[i] = 500.0f;   /* within the format bound, beyond T + 1 */
  assert_true(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, huge) >= 0);
  H5Dclose(ds);
  H5Fclose(f);
  assert_int_equal(sb_convert_load(&bad, dmg), SB_EFORMAT);
  check_contains(sb_last_error(), "/layers/000/v_shift[0]: expected |offset| <= calib_steps + 1");
  assert_null(bad);
  /* eval: two outputs under one name are refused before any work */
  const char *same_out = tmp("same.json");
  assert_int_equal(sb_test_run(out, sizeof out, "eval %s --steps 2 --limit 2 --json %s --plot %s", path, same_out, same_out), 2);
  check_contains(out, "--json and --plot name the same file");
  assert_false(sb_test_file_exists(same_out));
  const char *recf = tmp("rec.h5");
  assert_int_equal(sb_test_run(out, sizeof out, "eval %s --steps 2 --limit 5 --record %s --record-images 1,,2", path, recf), 2);
  check_contains(out, "--record-images: expected image indices");
  assert_int_equal(sb_test_run(out, sizeof out, "eval %s --steps 2 --limit 5 --record %s --record-images 0,3,0", path, recf), 2);
  check_contains(out, "--record-images: image 0 is listed twice");
  assert_false(sb_test_file_exists(recf));
  free(imgs);
  free(lab);
  free(x);
  sb_model_free(m);
  sb_dataset_free(&tr);
  sb_dataset_free(&te);
  sb_convert_net_free(back);
  sb_convert_net_free(u);
  sb_convert_net_free(c);
}

/* --layer-norm: a per-layer rule replaces the global one for that layer only; entries that name
 * a missing layer, a layer without data normalisation or a bad rule are refused naming the option. */
static void test_layer_norm(void **state) {
  (void)state;
  if (!have_data()) skip();
  sb_convert_net *dflt = tiny_net();
  sb_convert_opts o;
  sb_convert_opts_default(&o);
  o.eval_ann = 0;
  o.n_samples = 200;
  o.norm_max = 1;
  sb_convert_net *mx = NULL, *net = NULL;
  assert_int_equal(sb_convert_file(&mx, TINY, &o), SB_OK);
  o.norm_max = 0;
  o.layer_norm = "0=max";
  assert_int_equal(sb_convert_file(&net, TINY, &o), SB_OK);
  check_rel(net->layers[0].lambda, mx->layers[0].lambda, 1e-12, "layer 0 by max");
  check_rel(net->layers[1].lambda, dflt->layers[1].lambda, 1e-12, "layer 1 keeps percentile:99.9");
  assert_true(net->layers[0].lambda > dflt->layers[0].lambda);
  assert_non_null(strstr(net->norm, "+layers:0=max"));
  sb_convert_net_free(net);
  net = NULL;
  o.layer_norm = "1=percentile:50";
  assert_int_equal(sb_convert_file(&net, TINY, &o), SB_OK);
  assert_true(net->layers[1].lambda < dflt->layers[1].lambda);
  check_rel(net->layers[0].lambda, dflt->layers[0].lambda, 1e-12, "layer 0 unchanged");
  sb_convert_net_free(net);
  const char *bad[] = {"7=max", "2=max", "0=percentile:101", "0=median", "x=max", "0", "", "0=max,",
                       "0=max,0=percentile:99", "0=percentile:99abc"};
  const char *why[] = {"does not exist", "the membrane readout", "(0, 100]", "expected max", "expected I=", "expected I=",
                       "empty", "expected I=", "given twice", "not a number"};
  for (int i = 0; i < 10; i++) {
    o.layer_norm = bad[i];
    net = NULL;
    assert_int_equal(sb_convert_file(&net, TINY, &o), SB_EINVAL);
    assert_null(net);
    check_contains(sb_last_error(), "layer_norm (--layer-norm)");
    check_contains(sb_last_error(), "convert_tiny_cnn.h5");
    check_contains(sb_last_error(), why[i]);
  }
  char out[4096];
  assert_int_equal(sb_test_run(out, sizeof out, "convert %s --calibrate 0", TINY), 2);
  check_contains(out, "--calibrate");
  assert_int_equal(sb_test_run(out, sizeof out, "convert %s -o %s --layer-norm 9=max", TINY, tmp("ln.snn.h5")), 2);
  check_contains(out, "layer_norm");
  assert_false(sb_test_file_exists(tmp("ln.snn.h5")));
  sb_convert_net_free(mx);
  sb_convert_net_free(dflt);
}

/* One damage to a saved converted network: kind 0 pool weight x1000, 1 n_layers - 1, 2 int32
 * weights, 3 a bias of 1e30, 4 a name with '/', 5 a duplicate name, 6 a spiking membrane readout. */
static void damage(const char *path, int kind) {
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  assert_true(f >= 0);
  hid_t g;
  int64_t v;
  switch (kind) {
    case 0: {
      double pw;
      g = H5Gopen2(f, "layers/001", H5P_DEFAULT);
      assert_int_equal(sb_h5_attr_read_doubles(g, "pool_weight", &pw, 1, NULL), SB_OK);
      pw *= 1000;
      H5Adelete(g, "pool_weight");
      assert_int_equal(sb_h5_attr_write_doubles(g, "pool_weight", &pw, 1), SB_OK);
      H5Gclose(g);
      break;
    }
    case 1:
      assert_int_equal(sb_h5_attr_read_int64s(f, "n_layers", &v, 1, NULL), SB_OK);
      v--;
      H5Adelete(f, "n_layers");
      assert_int_equal(sb_h5_attr_write_int64s(f, "n_layers", &v, 1), SB_OK);
      break;
    case 2: {
      g = H5Gopen2(f, "layers/002", H5P_DEFAULT);
      float *w;
      size_t n, dims[4];
      int rank;
      assert_int_equal(sb_h5_read(g, "weight", H5T_NATIVE_FLOAT, (void **)&w, &n, &rank, dims, 4), SB_OK);
      int32_t *iw = calloc(n, sizeof *iw);
      H5Ldelete(g, "weight", H5P_DEFAULT);
      hsize_t hd[4];
      for (int i = 0; i < rank; i++) hd[i] = dims[i];
      hid_t sp = H5Screate_simple(rank, hd, NULL);
      hid_t ds = H5Dcreate2(g, "weight", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      H5Dwrite(ds, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, iw);
      H5Dclose(ds);
      H5Sclose(sp);
      H5Gclose(g);
      free(iw);
      free(w);
      break;
    }
    case 3: {
      hid_t ds = H5Dopen2(f, "layers/000/bias", H5P_DEFAULT);
      float b[64];
      for (int i = 0; i < 64; i++) b[i] = 1e30f;
      H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, b);
      H5Dclose(ds);
      break;
    }
    case 4:
    case 5:
      g = H5Gopen2(f, kind == 4 ? "layers/000" : "layers/002", H5P_DEFAULT);
      H5Adelete(g, "name");
      assert_int_equal(sb_h5_attr_write_string(g, "name", kind == 4 ? "a/b" : "l0_conv"), SB_OK);
      H5Gclose(g);
      break;
    case 7: {   /* a fractional count (HDF5 alone would truncate it to 2) */
      double x = 2.5;
      H5Adelete(f, "n_layers");
      assert_int_equal(sb_h5_attr_write_doubles(f, "n_layers", &x, 1), SB_OK);
      break;
    }
    case 8:
      g = H5Gopen2(f, "layers/000", H5P_DEFAULT);
      v = 0;
      assert_int_equal(sb_h5_attr_write_int64s(g, "qcfs_levels", &v, 1), SB_OK);
      H5Gclose(g);
      break;
    default:
      g = H5Gopen2(f, "layers/002", H5P_DEFAULT);
      v = 1;
      H5Adelete(g, "spiking");
      assert_int_equal(sb_h5_attr_write_int64s(g, "spiking", &v, 1), SB_OK);
      H5Gclose(g);
  }
  H5Fclose(f);
}

/* Damaged converted-network files are refused on loading (exit 2 through eval), naming the file
 * and the field: inconsistent pool weight, layer count, integer weights, absurd values, names
 * that would break the SONATA recording, a readout that contradicts @readout, a fractional count,
 * a QCFS level count below 1. */
static void test_snn_file_damage(void **state) {
  (void)state;
  if (!have_data()) skip();
  sb_convert_net *net = tiny_net();
  assert_int_equal(net->n_layers, 3);
  assert_int_equal(net->layers[1].kind, SB_CONVERT_AVGPOOL);
  const char *why[] = {"/layers/001@pool_weight: expected lambda_prev / (lambda K^2)", "@n_layers: 2, but /layers/002 exists",
                       "/layers/002/weight: expected a float32 dataset", "/layers/000/bias: element 0: expected a finite value within",
                       "/layers/000@name: expected a non-empty population name without '/'", "must be unique",
                       "/layers/002@spiking: 1 contradicts @readout = membrane", "@n_layers: missing or not 1 integer",
                       "/layers/000@qcfs_levels: expected 1..65536"};
  char out[4096];
  for (int k = 0; k < 9; k++) {
    const char *path = tmp("damaged.snn.h5");
    assert_int_equal(sb_convert_save(net, path), SB_OK);
    damage(path, k);
    sb_convert_net *bad = NULL;
    assert_int_equal(sb_convert_load(&bad, path), SB_EFORMAT);
    assert_null(bad);
    check_contains(sb_last_error(), "damaged.snn.h5");
    check_contains(sb_last_error(), why[k]);
    if (k == 0) {
      const char *js = tmp("damaged.json");
      assert_int_equal(sb_test_run(out, sizeof out, "eval %s --steps 2 --limit 2 --backend event --json %s", path, js), 2);
      check_contains(out, "pool_weight");
      assert_false(sb_test_file_exists(js));
    }
  }
  sb_convert_net_free(net);
}

/* The numpy reference conversion of the same network (fixture) in normalisation factors,
 * per-neuron and per-layer spike counts, and predictions. */
static void test_numpy_reference(void **state) {
  (void)state;
  if (!have_data()) skip();
  sb_convert_net *net = tiny_net();
  hid_t f;
  assert_int_equal(sb_h5_open_read(TINY_REF, &f), SB_OK);
  double *lam;
  int64_t *counts, *pred, *correct;
  int8_t *c0;
  size_t n, dims[4];
  int rank;
  assert_int_equal(sb_h5_read(f, "lambda", H5T_NATIVE_DOUBLE, (void **)&lam, &n, NULL, NULL, 0), SB_OK);
  assert_int_equal(sb_h5_read(f, "counts", H5T_NATIVE_INT64, (void **)&counts, &n, &rank, dims, 4), SB_OK);
  size_t N = dims[0];
  assert_int_equal(sb_h5_read(f, "counts0", H5T_NATIVE_INT8, (void **)&c0, &n, NULL, NULL, 0), SB_OK);
  assert_int_equal(sb_h5_read(f, "pred", H5T_NATIVE_INT64, (void **)&pred, &n, NULL, NULL, 0), SB_OK);
  assert_int_equal(sb_h5_read(f, "correct", H5T_NATIVE_INT64, (void **)&correct, &n, NULL, NULL, 0), SB_OK);
  int T = (int)n;
  H5Fclose(f);
  /* lambda: percentile of float32 activations; the C and numpy forwards differ in summation order */
  for (int l = 0; l < 3; l++) check_rel(net->layers[l].lambda, lam[l], 1e-5, "lambda of layer %d vs numpy", l);
  sb_dataset d;
  assert_int_equal(sb_fmnist_load(NULL, "test", &d), SB_OK);
  size_t *rec = malloc(N * sizeof *rec);
  for (size_t i = 0; i < N; i++) rec[i] = i;
  sb_convert_eval_opts o;
  sb_convert_eval_opts_default(&o);
  o.steps = T;
  o.record = rec;
  o.n_record = N;
  sb_convert_result r;
  assert_int_equal(sb_convert_eval_clocked(net, d.images, d.labels, N, &o, &r), SB_OK);
  size_t n0 = 8 * 14 * 14, off = 0, same = 0;
  int *cnt = calloc(n0, sizeof *cnt);
  for (size_t i = 0; i < N; i++) {
    for (int l = 0; l < 2; l++) {
      /* per layer and image: float32 rounding in another order can move a threshold crossing by a
       * step for a handful of neurons; 0.5% of the count allows that and nothing systematic */
      check_rel((double)r.rec[i * 3 + (size_t)l].n, (double)counts[i * 2 + (size_t)l], 5e-3,
                "image %zu layer %d spikes vs numpy", i, l);
    }
    memset(cnt, 0, n0 * sizeof *cnt);
    for (size_t k = 0; k < r.rec[i * 3].n; k++) cnt[r.rec[i * 3].id[k]]++;
    for (size_t j = 0; j < n0; j++) off += abs(cnt[j] - c0[i * n0 + j]) > 0;
    same += r.pred[i] == pred[i];
  }
  check_abs((double)off, 0, 0.001 * (double)(N * n0), "neurons of layer 0 whose count differs from numpy (<= 0.1%%)");
  check_abs((double)same, (double)N, 1, "predictions equal to numpy's (at most one image may flip)");
  check_abs((double)r.correct[T - 1], (double)correct[T - 1], 1, "correct after T vs numpy");
  free(cnt);
  free(rec);
  free(lam);
  free(counts);
  free(c0);
  free(pred);
  free(correct);
  sb_convert_result_free(&r);
  sb_dataset_free(&d);
  sb_convert_net_free(net);
}

/* SNN accuracy after T = 100 steps within 1.5 points of the ANN's on the same 300 test images:
 * the 8-channel network measured 0.8 points below on 500 images; 1.5 covers the sampling spread
 * of 300 images (1 image = 0.33 point) and no more. */
static void test_accuracy_vs_ann(void **state) {
  (void)state;
  if (!have_data()) skip();
  sb_convert_net *net = tiny_net();
  sb_dataset d;
  assert_int_equal(sb_fmnist_load(NULL, "test", &d), SB_OK);
  const size_t N = 300;
  sb_model *m = NULL;
  assert_int_equal(sb_model_load(&m, TINY), SB_OK);
  float *x = malloc(N * 784 * sizeof *x);
  for (size_t i = 0; i < N * 784; i++) x[i] = d.images[i] / 255.0f;
  const float *y = sb_model_forward(m, x, (int)N, 0);
  size_t ann_ok = 0;
  for (size_t i = 0; i < N; i++) {
    int b = 0;
    for (int k = 1; k < 10; k++)
      if (y[i * 10 + (size_t)k] > y[i * 10 + (size_t)b]) b = k;
    ann_ok += b == d.labels[i];
  }
  sb_convert_eval_opts o;
  sb_convert_eval_opts_default(&o);
  o.steps = 100;
  sb_convert_result r;
  assert_int_equal(sb_convert_eval_clocked(net, d.images, d.labels, N, &o, &r), SB_OK);
  double ann = 100.0 * (double)ann_ok / (double)N, snn = 100.0 * (double)r.correct[99] / (double)N;
  fprintf(stderr, "tiny CNN: ANN %.2f%%, SNN %.2f%% at T = 100 on %zu test images\n", ann, snn, N);
  check_abs(snn, ann, 1.5, "SNN accuracy at T = 100 vs ANN");
  assert_true(r.correct[4] < r.correct[99]);   /* the curve rises: T = 5 is far from converged */
  free(x);
  sb_model_free(m);
  sb_convert_result_free(&r);
  sb_dataset_free(&d);
  sb_convert_net_free(net);
}

/* Clocked and event backends on the same 200 test images at T = 100: same class for >= 98% and
 * per-layer spike counts within 2% (issue 8's criterion, here on the tiny CNN; measured 99.8% and
 * 0.04% on 500). */
static void test_backend_agreement(void **state) {
  (void)state;
  if (!have_data()) skip();
  sb_convert_net *net = tiny_net();
  sb_dataset d;
  assert_int_equal(sb_fmnist_load(NULL, "test", &d), SB_OK);
  const size_t N = 200;
  sb_convert_eval_opts o;
  sb_convert_eval_opts_default(&o);
  o.steps = 100;
  sb_convert_result a, b;
  assert_int_equal(sb_convert_eval_clocked(net, d.images, d.labels, N, &o, &a), SB_OK);
  assert_int_equal(sb_convert_eval_event(net, d.images, d.labels, N, &o, &b), SB_OK);
  size_t same = 0;
  for (size_t i = 0; i < N; i++) same += a.pred[i] == b.pred[i];
  fprintf(stderr, "backends: %zu/%zu images the same class at T = 100\n", same, N);
  assert_true(same >= 196);
  for (int l = 0; l < 2; l++) check_rel(b.spikes[l], a.spikes[l], 0.02, "layer %d spikes event vs clocked", l);
  sb_convert_result_free(&a);
  sb_convert_result_free(&b);
  o.v_init = 0.5;   /* V0 = theta/2 must reach the engine's first layer too */
  assert_int_equal(sb_convert_eval_clocked(net, d.images, d.labels, 10, &o, &a), SB_OK);
  assert_int_equal(sb_convert_eval_event(net, d.images, d.labels, 10, &o, &b), SB_OK);
  for (int l = 0; l < 2; l++) check_rel(b.spikes[l], a.spikes[l], 0.02, "V0 = theta/2: layer %d spikes event vs clocked", l);
  sb_convert_result_free(&a);
  sb_convert_result_free(&b);
  sb_dataset_free(&d);
  sb_convert_net_free(net);
}

/* The clocked backend's vectorised threshold pass (AVX-512 where the CPU has it) and the portable
 * one give exactly the same spikes, synaptic operations and predictions (same float operations in
 * the same order), with reset by subtraction and to zero. */
static void test_clocked_kernels_agree(void **state) {
  (void)state;
  if (!have_data()) skip();
  sb_convert_net *net = tiny_net();
  sb_dataset d;
  assert_int_equal(sb_fmnist_load(NULL, "test", &d), SB_OK);
  const size_t N = 20;
  for (int rz = 0; rz < 2; rz++) {
    net->reset_zero = rz;
    sb_convert_eval_opts o;
    sb_convert_eval_opts_default(&o);
    o.steps = 30;
    o.v_init = 0.5;
    sb_convert_result a, b;
    assert_int_equal(sb_convert_eval_clocked(net, d.images, d.labels, N, &o, &a), SB_OK);
    o.generic = 1;
    assert_int_equal(sb_convert_eval_clocked(net, d.images, d.labels, N, &o, &b), SB_OK);
    for (int l = 0; l < a.n_layers; l++) {
      assert_true(a.spikes[l] == b.spikes[l]);
      assert_true(a.layer_synops[l] == b.layer_synops[l]);
    }
    assert_true(a.spikes[0] > 0);
    for (int t = 0; t < o.steps; t++) assert_true(a.correct[t] == b.correct[t] && a.synops[t] == b.synops[t]);
    assert_memory_equal(a.pred, b.pred, N);
    sb_convert_result_free(&a);
    sb_convert_result_free(&b);
  }
  sb_dataset_free(&d);
  sb_convert_net_free(net);
}

/* convert + eval through the CLI, with JSON, PNG and a SONATA recording */
static void test_cli_end_to_end(void **state) {
  (void)state;
  if (!have_data()) skip();
  char out[16384];
  const char *snn = tmp("tiny.snn.h5"), *js = tmp("tiny.json"), *png = tmp("tiny.png"), *rec = tmp("tiny_spikes.h5");
  assert_int_equal(sb_test_run(out, sizeof out, "convert %s -o %s --samples 200 --no-ann-eval", TINY, snn), 0);
  check_contains(out, "l0_conv");
  check_contains(out, "avgpool (fixed weight)");
  assert_int_equal(sb_test_run(out, sizeof out, "eval %s --steps 20 --limit 5 --json %s --plot %s --record %s "
                               "--record-images 0,3", snn, js, png, rec), 0);
  check_contains(out, "synops/img");
  assert_true(sb_test_file_exists(js));
  assert_true(sb_test_file_exists(png));
  /* more images than the test set: all of them, and said so (it was silent) */
  assert_int_equal(sb_test_run(out, sizeof out, "eval %s --steps 1 --limit 20000", snn), 0);
  check_contains(out, "warning: --limit 20000: the test set has 10000 images; evaluating all 10000");
  check_contains(out, "10000 test images");
  check_contains(out, "holds no ANN predictions (converted with --no-ann-eval): no ANN-SNN column");
  hid_t f;
  assert_int_equal(sb_h5_open_read(rec, &f), SB_OK);
  assert_true(sb_h5_exists(f, "spikes/l0_conv/timestamps"));
  assert_true(sb_h5_exists(f, "spikes/l1_avgpool/node_ids"));
  double *t;
  uint64_t *id;
  size_t n, m;
  assert_int_equal(sb_h5_read(f, "spikes/l0_conv/timestamps", H5T_NATIVE_DOUBLE, (void **)&t, &n, NULL, NULL, 0), SB_OK);
  assert_int_equal(sb_h5_read(f, "spikes/l0_conv/node_ids", H5T_NATIVE_UINT64, (void **)&id, &m, NULL, NULL, 0), SB_OK);
  assert_int_equal(n, m);
  assert_true(n > 0);
  for (size_t i = 0; i < n; i++) {
    assert_true(t[i] >= 1 && t[i] <= 40);
    assert_true(id[i] < 8 * 14 * 14);
    if (i) assert_true(t[i] >= t[i - 1]);
  }
  hid_t ds = H5Dopen2(f, "spikes/l0_conv/timestamps", H5P_DEFAULT);
  char *u = NULL;
  assert_int_equal(sb_h5_attr_read_string(ds, "units", &u), SB_OK);
  assert_string_equal(u, "ms");
  sb_free(u);
  H5Dclose(ds);
  /* the file says where the recording ends (2 images x 20 steps) and each layer's size */
  double ts = 0;
  size_t k = 0;
  assert_int_equal(sb_h5_attr_read_doubles(f, "t_stop", &ts, 1, &k), SB_OK);
  check_abs(ts, 40.0, 0.0, "recording end");
  int64_t nn = 0;
  hid_t g = H5Gopen2(f, "spikes/l0_conv", H5P_DEFAULT);
  assert_int_equal(sb_h5_attr_read_int64s(g, "n_nodes", &nn, 1, &k), SB_OK);
  assert_int_equal(nn, 8 * 14 * 14);
  H5Gclose(g);
  H5Fclose(f);
  free(t);
  free(id);
  assert_int_equal(sb_test_run(out, sizeof out, "analyze %s", rec), 0);
  check_contains(out, "window [0, 40] ms (end of the recording, from the file)");
}

/* GAN generator with signed IF neurons: the spiking generator's images approach the ANN's as T
 * grows (rate error ~ 1/T): mean pixel difference falls by >= 4x from T = 10 to T = 200 and is
 * below 0.01 (of the [0, 1] range) at T = 200, for a generator with PyTorch-default random
 * weights (LeakyReLU 0.2, tanh output). */
static void test_gan_generator(void **state) {
  (void)state;
  sb_model *g = NULL, *d = NULL;
  assert_int_equal(sb_model_builtin(&g, "gan_g"), SB_OK);
  assert_int_equal(sb_model_builtin(&d, "gan_d"), SB_OK);
  sb_model_init_params(g, 7);
  sb_model_init_params(d, 8);
  const char *path = tmp("gan.h5");
  assert_int_equal(sb_gan_save(g, d, path, NULL), SB_OK);
  sb_model_free(g);
  sb_model_free(d);
  sb_convert_opts o;
  sb_convert_opts_default(&o);
  o.n_samples = 200;
  sb_convert_gan_result r;
  assert_int_equal(sb_convert_gan(path, &o, 200, 20, 3, &r), SB_OK);
  assert_int_equal(r.n_layers, 3);
  fprintf(stderr, "GAN generator: mean pixel difference %.4f at T = 10, %.4f at T = 200\n", r.mae_t[9], r.mae);
  assert_true(r.mae < 0.01);
  assert_true(r.mae_t[9] > 4 * r.mae);
  assert_true(r.spikes[0] > 0 && r.spikes[1] > 0);
  sb_convert_gan_result_free(&r);
  char out[4096];
  assert_int_equal(sb_test_run(out, sizeof out, "eval %s --steps 20 --limit 4", path), 0);
  check_contains(out, "mean |SNN - ANN| pixel");
}

int main(void) {
  sb_h5_quiet();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hand_closed_form_clocked), cmocka_unit_test(test_qcfs_closed_form),
      cmocka_unit_test(test_maxpool_gate),             cmocka_unit_test(test_maxpool_then_conv),             cmocka_unit_test(test_file_roundtrip),
      cmocka_unit_test(test_cli_bad_inputs),           cmocka_unit_test(test_numpy_reference),
      cmocka_unit_test(test_accuracy_vs_ann),          cmocka_unit_test(test_backend_agreement),
      cmocka_unit_test(test_clocked_kernels_agree),
      cmocka_unit_test(test_pool_norm),                cmocka_unit_test(test_calibration),
      cmocka_unit_test(test_layer_norm),               cmocka_unit_test(test_snn_file_damage),
      cmocka_unit_test(test_cli_end_to_end),           cmocka_unit_test(test_gan_generator),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
