/* ANN losses and optimizers against PyTorch (tests/ref/ann_layers.h5 groups loss, optim_*),
 * analytic values, and learning-rate schedules. */
#include "learning/learning.h"
#include "sim/core.h"
#include "tests/testutil.h"

#define REF "tests/ref/ann_layers.h5"

static void *rd(hid_t g, const char *name, hid_t type, size_t *n) {
  void *p = NULL;
  int st = sb_h5_read(g, name, type, &p, n, NULL, NULL, 0);
  assert_int_equal(st, SB_OK);
  return p;
}

static double ad(hid_t g, const char *name) {
  double v = 0;
  size_t n;
  assert_int_equal(sb_h5_attr_read_doubles(g, name, &v, 1, &n), SB_OK);
  return v;
}

static void test_losses_vs_torch(void **state) {
  (void)state;
  sb_h5_quiet();
  hid_t f;
  assert_int_equal(sb_h5_open_read(REF, &f), SB_OK);
  hid_t g = H5Gopen2(f, "loss", H5P_DEFAULT);
  size_t n;
  float *z = rd(g, "xent_logits", H5T_NATIVE_FLOAT, &n), *gz = rd(g, "xent_grad", H5T_NATIVE_FLOAT, NULL);
  int *lab = rd(g, "xent_labels", H5T_NATIVE_INT, NULL);
  float d[64];
  int correct = -1;
  /* float32 fixture values; the loss is computed in double here: 1e-6 relative */
  check_rel(sb_loss_softmax_xent(d, z, lab, 5, 7, &correct), ad(g, "xent_loss"), 1e-6, "softmax xent loss");
  for (size_t i = 0; i < n; i++) check_abs(d[i], gz[i], 1e-7, "softmax xent grad[%zu]", i);
  int want_correct = 0;
  for (int r = 0; r < 5; r++) {
    int best = 0;
    for (int c = 1; c < 7; c++) if (z[r * 7 + c] > z[r * 7 + best]) best = c;
    want_correct += best == lab[r];
  }
  assert_int_equal(correct, want_correct);
  /* label smoothing: torch.nn.functional.cross_entropy(label_smoothing=0.1) */
  float *gls = rd(g, "xent_ls_grad", H5T_NATIVE_FLOAT, NULL);
  double eps = ad(g, "xent_ls_eps");
  int correct_ls = -1;
  check_rel(sb_loss_softmax_xent_ls(d, z, lab, 5, 7, eps, &correct_ls), ad(g, "xent_ls_loss"), 1e-6,
            "label-smoothed xent loss");
  for (size_t i = 0; i < n; i++) check_abs(d[i], gls[i], 1e-7, "label-smoothed xent grad[%zu]", i);
  assert_int_equal(correct_ls, want_correct);
  float d0[64];
  check_rel(sb_loss_softmax_xent_ls(d0, z, lab, 5, 7, 0.0, NULL), sb_loss_softmax_xent(d, z, lab, 5, 7, NULL), 1e-15,
            "smoothing 0 is plain cross-entropy");
  assert_memory_equal(d0, d, n * sizeof(float));
  sb_free(gls);
  sb_free(z); sb_free(gz); sb_free(lab);
  const char *names[] = {"bce_logits", "bce", "mse"};
  for (int k = 0; k < 3; k++) {
    char a[64], b[64], c[64], e[64];
    snprintf(a, sizeof a, "%s_x", names[k]);
    snprintf(b, sizeof b, "%s_t", names[k]);
    snprintf(c, sizeof c, "%s_grad", names[k]);
    snprintf(e, sizeof e, "%s_loss", names[k]);
    float *x = rd(g, a, H5T_NATIVE_FLOAT, &n), *t = rd(g, b, H5T_NATIVE_FLOAT, NULL), *gr = rd(g, c, H5T_NATIVE_FLOAT, NULL);
    double l = k == 0 ? sb_loss_bce_logits(d, x, t, n) : k == 1 ? sb_loss_bce(d, x, t, n) : sb_loss_mse(d, x, t, n);
    check_rel(l, ad(g, e), 1e-6, "%s loss", names[k]);
    for (size_t i = 0; i < n; i++) check_rel(d[i], gr[i], 1e-5, "%s grad[%zu]", names[k], i);
    sb_free(x); sb_free(t); sb_free(gr);
  }
  H5Gclose(g);
  H5Fclose(f);
}

static void test_loss_analytic(void **state) {
  (void)state;
  /* equal logits: loss = log C exactly; gradient (1/C - onehot)/N */
  float z[2 * 4] = {2.385f, 2.385f, 2.385f, 2.385f, -1.5f, -1.5f, -1.5f, -1.5f}, d[8];
  int lab[2] = {1, 3};
  check_rel(sb_loss_softmax_xent(d, z, lab, 2, 4, NULL), log(4.0), 1e-12, "xent of equal logits");
  check_rel(d[1], (0.25 - 1.0) / 2, 1e-7, "xent grad at the label");
  check_rel(d[0], 0.25 / 2, 1e-7, "xent grad elsewhere");
  /* with smoothing eps the target of equal logits is still uniform on average: loss log C, gradient
   * (1/C - (1-eps) onehot - eps/C)/N */
  check_rel(sb_loss_softmax_xent_ls(d, z, lab, 2, 4, 0.2, NULL), log(4.0), 1e-12, "smoothed xent of equal logits");
  check_rel(d[1], (0.25 - 0.8 - 0.05) / 2, 1e-6, "smoothed xent grad at the label");
  check_rel(d[0], (0.25 - 0.05) / 2, 1e-6, "smoothed xent grad elsewhere");
  /* huge logits stay finite (log-sum-exp shift) */
  float big[2] = {1000.0f, -1000.0f};
  int l0 = 1;
  check_rel(sb_loss_softmax_xent(NULL, big, &l0, 1, 2, NULL), 2000.0, 1e-12, "xent of +-1000");
  float t1 = 1.0f, zz = -800.0f;
  check_rel(sb_loss_bce_logits(NULL, &zz, &t1, 1), 800.0, 1e-12, "bce_logits(-800, 1)");
  float y[3] = {1.0f, 2.0f, 4.0f}, tt[3] = {0.0f, 0.0f, 1.0f};
  check_rel(sb_loss_mse(d, y, tt, 3), (1.0 + 4.0 + 9.0) / 3.0, 1e-12, "mse");
  check_rel(d[2], 2.0 * 3.0 / 3.0, 1e-7, "mse grad");
}

static void test_optimizers_vs_torch(void **state) {
  (void)state;
  sb_h5_quiet();
  hid_t f;
  assert_int_equal(sb_h5_open_read(REF, &f), SB_OK);
  const char *names[] = {"sgd", "adam", "adamw"};
  for (int k = 0; k < 3; k++) {
    char gname[32];
    snprintf(gname, sizeof gname, "optim_%s", names[k]);
    hid_t g = H5Gopen2(f, gname, H5P_DEFAULT);
    size_t n;
    float *p = rd(g, "p0", H5T_NATIVE_FLOAT, &n), *grads = rd(g, "grads", H5T_NATIVE_FLOAT, NULL);
    float *traj = rd(g, "traj", H5T_NATIVE_FLOAT, NULL);
    sb_opt *o = sb_opt_alloc((sb_opt_kind)sb_opt_kind_parse(names[k]), n);
    assert_non_null(o);
    if (k == 0) { o->lr = 0.1; o->momentum = 0.9; o->weight_decay = 0.01; }
    if (k == 1) { o->lr = 0.01; o->weight_decay = 0.01; }
    if (k == 2) { o->lr = 0.01; o->weight_decay = 0.05; }
    for (int s = 0; s < 4; s++) {
      sb_opt_step(o, p, grads + (size_t)s * n);
      /* float32 update arithmetic in a different order than torch: 1e-4 of the step size
       * (~lr) absolute; a wrong formula (bias correction, decay) is off by > 1e-2 of it */
      for (size_t i = 0; i < n; i++)
        check_abs(p[i], traj[(size_t)s * n + i], 1e-4 * o->lr, "%s step %d p[%zu]", names[k], s + 1, i);
    }
    sb_opt_free(o);
    sb_free(p); sb_free(grads); sb_free(traj);
    H5Gclose(g);
  }
  H5Fclose(f);
  assert_int_equal(sb_opt_kind_parse("rmsprop"), -1);
}

static void test_schedules(void **state) {
  (void)state;
  check_rel(sb_lr_schedule("none", 0.1, 7, 10, 0.1, 3), 0.1, 1e-15, "none");
  check_rel(sb_lr_schedule("cosine", 0.1, 0, 10, 0.1, 3), 0.1, 1e-15, "cosine at 0");
  check_rel(sb_lr_schedule("cosine", 0.1, 5, 10, 0.1, 3), 0.05, 1e-12, "cosine half way");
  check_rel(sb_lr_schedule("step", 0.1, 7, 10, 0.5, 3), 0.025, 1e-12, "step: two decays by epoch 7");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_losses_vs_torch),
      cmocka_unit_test(test_loss_analytic),
      cmocka_unit_test(test_optimizers_vs_torch),
      cmocka_unit_test(test_schedules),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
