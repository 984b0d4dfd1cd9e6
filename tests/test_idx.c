/* IDX reader and Fashion-MNIST loader: the real Debian files, and broken ones made here. */
#include "models/ann/ann.h"
#include "sim/core.h"
#include "tests/testutil.h"

#include <zlib.h>

static void test_fmnist_real_files(void **state) {
  (void)state;
  const char *dir = sb_fmnist_dir(NULL);
  if (access(dir, R_OK) != 0) skip(); /* scripts/install-deps installs dataset-fashion-mnist */
  sb_dataset tr, te;
  assert_int_equal(sb_fmnist_load(NULL, "train", &tr), SB_OK);
  assert_int_equal(sb_fmnist_load(NULL, "test", &te), SB_OK);
  assert_int_equal(tr.n, 60000);
  assert_int_equal(te.n, 10000);
  assert_int_equal(tr.h, 28);
  assert_int_equal(tr.w, 28);
  assert_int_equal(te.h, 28);
  size_t counts[10] = {0}, tcounts[10] = {0};
  for (size_t i = 0; i < tr.n; i++) counts[tr.labels[i]]++;
  for (size_t i = 0; i < te.n; i++) tcounts[te.labels[i]]++;
  for (int k = 0; k < 10; k++) {
    assert_int_equal(counts[k], 6000);
    assert_int_equal(tcounts[k], 1000);
  }
  /* Known first labels of the published files (Xiao et al. 2017 repository): train starts
   * 9 (ankle boot), 0, 0, 3; test starts 9, 2, 1, 1. */
  uint8_t want_tr[4] = {9, 0, 0, 3}, want_te[4] = {9, 2, 1, 1};
  assert_memory_equal(tr.labels, want_tr, 4);
  assert_memory_equal(te.labels, want_te, 4);
  sb_dataset_free(&tr);
  sb_dataset_free(&te);
}

/* Write bytes as a gzip file or raw. */
static void write_file(const char *path, const unsigned char *b, size_t n, int gz) {
  if (gz) {
    gzFile f = gzopen(path, "wb");
    gzwrite(f, b, (unsigned)n);
    gzclose(f);
  } else {
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
  }
}

static void make_idx(unsigned char *buf, size_t *len, int rank, const uint32_t *dims, size_t body) {
  size_t k = 0;
  buf[k++] = 0; buf[k++] = 0; buf[k++] = 8; buf[k++] = (unsigned char)rank;
  for (int i = 0; i < rank; i++) {
    buf[k++] = (unsigned char)(dims[i] >> 24); buf[k++] = (unsigned char)(dims[i] >> 16);
    buf[k++] = (unsigned char)(dims[i] >> 8); buf[k++] = (unsigned char)dims[i];
  }
  for (size_t i = 0; i < body; i++) buf[k++] = (unsigned char)(i % 7);
  *len = k;
}

static void test_idx_small_raw_and_gz(void **state) {
  (void)state;
  unsigned char buf[256];
  size_t len;
  uint32_t dims[3] = {3, 4, 5};
  make_idx(buf, &len, 3, dims, 60);
  char path[512];
  for (int gz = 0; gz < 2; gz++) {
    snprintf(path, sizeof path, "%s/ok%d.idx", sb_test_tmpdir(), gz);
    write_file(path, buf, len, gz);
    sb_idx x;
    assert_int_equal(sb_idx_read(path, &x), SB_OK);
    assert_int_equal(x.rank, 3);
    assert_int_equal(x.n, 60);
    assert_int_equal(x.dims[2], 5);
    assert_int_equal(x.data[59], 59 % 7);
    sb_idx_free(&x);
  }
}

static void expect_idx_error(const unsigned char *b, size_t n, int gz, int code, const char *msg) {
  char path[512];
  snprintf(path, sizeof path, "%s/bad.idx", sb_test_tmpdir());
  write_file(path, b, n, gz);
  sb_idx x;
  assert_int_equal(sb_idx_read(path, &x), code);
  check_contains(sb_last_error(), path);
  check_contains(sb_last_error(), msg);
  assert_null(x.data);
}

static void test_idx_broken(void **state) {
  (void)state;
  unsigned char buf[256];
  size_t len;
  uint32_t dims[2] = {4, 10};
  make_idx(buf, &len, 2, dims, 40);
  expect_idx_error(buf, len - 1, 0, SB_EFORMAT, "truncated");           /* body short by one */
  expect_idx_error(buf, len - 5, 1, SB_EFORMAT, "truncated");           /* gz, short */
  expect_idx_error(buf, 6, 0, SB_EFORMAT, "truncated header");
  expect_idx_error(buf, 2, 0, SB_EFORMAT, "truncated header");
  unsigned char more[300];
  memcpy(more, buf, len);
  more[len] = 1;
  expect_idx_error(more, len + 1, 0, SB_EFORMAT, "got more");          /* trailing bytes */
  unsigned char bad[256];
  memcpy(bad, buf, len);
  bad[0] = 0x1f;
  expect_idx_error(bad, len, 0, SB_EFORMAT, "magic");
  memcpy(bad, buf, len);
  bad[2] = 0x0D; /* float32 type code: not supported */
  expect_idx_error(bad, len, 0, SB_EFORMAT, "element type 0x08");
  memcpy(bad, buf, len);
  bad[3] = 9;
  expect_idx_error(bad, len, 0, SB_EFORMAT, "rank 1..4");
  memcpy(bad, buf, len);
  bad[4] = 0x7f; /* huge first dimension */
  expect_idx_error(bad, len, 0, SB_EFORMAT, "dimension 0");
  /* A gzip file whose compressed body is corrupted. */
  char path[512];
  snprintf(path, sizeof path, "%s/corrupt.gz", sb_test_tmpdir());
  unsigned char big[4096 + 12];
  uint32_t d1[1] = {4096};
  make_idx(big, &len, 1, d1, 4096);
  write_file(path, big, len, 1);
  FILE *f = fopen(path, "r+b");
  fseek(f, 30, SEEK_SET);
  fputc(0xff, f); fputc(0x00, f); fputc(0xaa, f);
  fclose(f);
  sb_idx x;
  assert_int_equal(sb_idx_read(path, &x), SB_EFORMAT);
  check_contains(sb_last_error(), path);
  assert_int_equal(sb_idx_read("/nonexistent/x.idx", &x), SB_EINVAL);
}

/* A directory whose label file does not match its image file. */
static void test_fmnist_mismatch(void **state) {
  (void)state;
  char dir[512], path[600];
  snprintf(dir, sizeof dir, "%s/mm", sb_test_tmpdir());
  mkdir(dir, 0755);
  unsigned char buf[4096];
  size_t len;
  uint32_t idims[3] = {5, 28, 28};
  static unsigned char ib[5 * 784 + 16];
  make_idx(ib, &len, 3, idims, 5 * 784);
  snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte", dir);
  write_file(path, ib, len, 0);
  uint32_t ldims[1] = {4};
  make_idx(buf, &len, 1, ldims, 4);
  snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte.gz", dir);
  write_file(path, buf, len, 1);
  sb_dataset d;
  assert_int_equal(sb_fmnist_load(dir, "test", &d), SB_EFORMAT);
  check_contains(sb_last_error(), "expected 5 labels");
  assert_int_equal(sb_fmnist_load(dir, "train", &d), SB_EINVAL);
  check_contains(sb_last_error(), "train-images-idx3-ubyte");
  assert_int_equal(sb_fmnist_load(dir, "validation", &d), SB_EINVAL);
  /* labels out of range */
  uint32_t l5[1] = {5};
  make_idx(buf, &len, 1, l5, 5);
  buf[len - 1] = 12;
  write_file(path, buf, len, 1);
  assert_int_equal(sb_fmnist_load(dir, "test", &d), SB_EFORMAT);
  check_contains(sb_last_error(), "expected 0..9 (got 12)");
  /* CLI: exit 2 and the message, for a missing split and for bad labels */
  char out[4096];
  assert_int_equal(sb_test_run(out, sizeof out, "info --data %s", dir), 2);
  check_contains(out, "train-images-idx3-ubyte[.gz] not found");
  snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
  write_file(path, ib, 5 * 784 + 16, 0);
  uint32_t l5ok[1] = {5};
  make_idx(buf, &len, 1, l5ok, 5);
  snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte", dir);
  write_file(path, buf, len, 0);
  assert_int_equal(sb_test_run(out, sizeof out, "info --data %s", dir), 2);
  check_contains(out, "expected 0..9");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fmnist_real_files),
      cmocka_unit_test(test_idx_small_raw_and_gz),
      cmocka_unit_test(test_idx_broken),
      cmocka_unit_test(test_fmnist_mismatch),
  };
  return cmocka_run_group_tests_name("idx", tests, NULL, NULL);
}
