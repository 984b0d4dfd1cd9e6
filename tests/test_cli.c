/* The command line: help, version, every subcommand's --help, exit codes for bad usage,
 * `info` on an HDF5 file, and no half-written output on interruption. */
#include <stdlib.h>
#include <unistd.h>

#include "sim/core.h"
#include "tests/testutil.h"

static const char *const cmds[] = {"run", "train", "convert", "eval", "analyze", "sweep", "info", NULL};

static void test_help_lists_subcommands(void **state) {
  (void)state;
  char out[8192];
  assert_int_equal(sb_test_run(out, sizeof out, "--help"), 0);
  for (int i = 0; cmds[i]; i++) check_contains(out, cmds[i]);
  assert_int_equal(sb_test_run(out, sizeof out, "--version"), 0);
  check_contains(out, "spikebridge " SB_VERSION);
  assert_int_equal(sb_test_run(out, sizeof out, "-V"), 0);
}

static void test_each_subcommand_help(void **state) {
  (void)state;
  char out[8192], want[64];
  for (int i = 0; cmds[i]; i++) {
    assert_int_equal(sb_test_run(out, sizeof out, "%s --help", cmds[i]), 0);
    snprintf(want, sizeof want, "Usage: spikebridge %s", cmds[i]);
    check_contains(out, want);
  }
}

static void test_usage_errors_exit_2(void **state) {
  (void)state;
  char out[8192];
  assert_int_equal(sb_test_run(out, sizeof out, "frobnicate"), 2);
  check_contains(out, "unknown command 'frobnicate'");
  check_contains(out, "Usage:");
  assert_int_equal(sb_test_run(out, sizeof out, "--bogus"), 2);
  check_contains(out, "unknown option '--bogus'");
  assert_int_equal(sb_test_run(out, sizeof out, ""), 2);
  for (int i = 0; cmds[i]; i++) {
    assert_int_equal(sb_test_run(out, sizeof out, "%s --no-such-flag", cmds[i]), 2);
    check_contains(out, "unknown option '--no-such-flag'");
    check_contains(out, "--help");
    assert_int_equal(sb_test_run(out, sizeof out, "%s -Z", cmds[i]), 2);
  }
  assert_int_equal(sb_test_run(out, sizeof out, "run model.json --seed"), 2);
  check_contains(out, "needs a value");
  assert_int_equal(sb_test_run(out, sizeof out, "info"), 2);
  assert_int_equal(sb_test_run(out, sizeof out, "info a.h5 b.h5"), 2);
  /* A directory that passes the permission check but refuses new files (/proc even for root)
   * is the user's path, not an I/O failure: exit 2 with the path named. */
  if (access("/proc/self", F_OK) == 0) {
    assert_int_equal(sb_test_run(out, sizeof out, "run examples/single_neuron.json --t-stop 1 -o /proc/x.h5"), 2);
    check_contains(out, "/proc/x.h5: directory '/proc' is not writable");
    assert_int_equal(sb_test_run(out, sizeof out, "analyze tests/ref/analysis_ref.h5 --plot /proc/figs"), 2);
  }
  /* an output must never replace the command's own input, whatever its spelling */
  char dir[] = "/tmp/sb_cli_XXXXXX";
  assert_non_null(mkdtemp(dir));
  char model[64], cmd[512];
  snprintf(model, sizeof model, "%s/m.json", dir);
  snprintf(cmd, sizeof cmd, "cp examples/single_neuron.json %s", model);
  assert_int_equal(system(cmd), 0);
  assert_int_equal(sb_test_run(out, sizeof out, "run %s -o %s/./m.json", model, dir), 2);
  check_contains(out, "is also the input file");
  assert_int_equal(sb_test_run(out, sizeof out, "run %s -o %s/x.h5 --checkpoint %s", model, dir, model), 2);
  assert_int_equal(sb_test_run(out, sizeof out, "train %s -o %s", model, model), 2);
  snprintf(cmd, sizeof cmd, "cmp -s examples/single_neuron.json %s", model);
  assert_int_equal(system(cmd), 0); /* untouched */
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

static void test_info_on_files(void **state) {
  (void)state;
  char path[512], out[16384];
  snprintf(path, sizeof path, "%s/info.h5", sb_test_tmpdir());
  sb_h5_out o;
  assert_int_equal(sb_h5_create(&o, path), SB_OK);
  hid_t g = sb_h5_group(o.file, "spikes/exc");
  double ts[4] = {0.5, 1.25, 2.0, 7.75};
  sb_h5_write_1d(g, "timestamps", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, ts, 4);
  uint64_t ids[4] = {0, 1, 2, 3};
  int64_t sids[4] = {0, 1, 2, 3};
  sb_h5_write_1d(g, "node_ids", H5T_STD_U64LE, H5T_NATIVE_UINT64, ids, 4);
  sb_h5_write_1d(g, "signed_ids", H5T_STD_I64LE, H5T_NATIVE_INT64, sids, 4);
  sb_h5_attr_write_string(g, "sorting", "by_time");
  H5Gclose(g);
  assert_int_equal(sb_h5_commit(&o), SB_OK);
  assert_int_equal(sb_test_run(out, sizeof out, "info %s", path), 0);
  check_contains(out, "timestamps  float64 (4)");
  check_contains(out, "node_ids  uint64 (4)");   /* the sign is shown */
  check_contains(out, "signed_ids  int64 (4)");
  check_contains(out, "@sorting = \"by_time\"");
  assert_int_equal(sb_test_run(out, sizeof out, "info /nonexistent/x.h5"), 2);
  check_contains(out, "/nonexistent/x.h5: no such file");
  snprintf(path, sizeof path, "%s/garbage.h5", sb_test_tmpdir());
  FILE *f = fopen(path, "w");
  fputs("garbage", f);
  fclose(f);
  assert_int_equal(sb_test_run(out, sizeof out, "info %s", path), 2);
  check_contains(out, "not an HDF5 file");
}

static void test_info_dataset(void **state) {
  (void)state;
  if (access("/usr/share/datasets/fashion-mnist", R_OK) != 0 && !getenv("SB_DATA_DIR")) skip();
  char out[8192];
  assert_int_equal(sb_test_run(out, sizeof out, "info --dataset"), 0);
  check_contains(out, "train  60000 images of 28x28");
  check_contains(out, "test   10000 images of 28x28");
  check_contains(out, "per class: 1000 1000 1000 1000 1000 1000 1000 1000 1000 1000");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_help_lists_subcommands),
      cmocka_unit_test(test_each_subcommand_help),
      cmocka_unit_test(test_usage_errors_exit_2),
      cmocka_unit_test(test_info_on_files),
      cmocka_unit_test(test_info_dataset),
  };
  return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
