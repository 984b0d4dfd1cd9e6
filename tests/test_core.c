/* Core infrastructure: error context, allocation failure injection, progress line,
 * RNG streams, HDF5 atomic output and attribute helpers. */
#include "sim/core.h"
#include "tests/testutil.h"

#include <gsl/gsl_randist.h>
#include <omp.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

/* ---- errors ---- */

static int failing_parser(double tau_m) {
  if (tau_m <= 0) SB_ERROR(SB_EINVAL, "brunel.json: populations.exc.params.tau_m: must be > 0 (got %g)", tau_m);
  return SB_OK;
}

static void test_error_context(void **state) {
  (void)state;
  sb_error_clear();
  assert_int_equal(failing_parser(10.0), SB_OK);
  assert_string_equal(sb_last_error(), "");
  assert_int_equal(failing_parser(-20.0), SB_EINVAL);
  assert_string_equal(sb_last_error(), "brunel.json: populations.exc.params.tau_m: must be > 0 (got -20)");
  check_contains(sb_last_error_where(), "test_core.c:");
  assert_int_equal(sb_error_prefix_(SB_EINVAL, "run"), SB_EINVAL);
  assert_string_equal(sb_last_error(), "run: brunel.json: populations.exc.params.tau_m: must be > 0 (got -20)");
  assert_int_equal(sb_exit_code(SB_OK), 0);
  assert_int_equal(sb_exit_code(SB_EINVAL), 2);
  assert_int_equal(sb_exit_code(SB_EFORMAT), 2);
  assert_int_equal(sb_exit_code(SB_EUNSUPPORTED), 2);
  assert_int_equal(sb_exit_code(SB_ENOMEM), 1);
  assert_int_equal(sb_exit_code(SB_EIO), 1);
  assert_string_equal(sb_strerror(SB_ENOMEM), "out of memory");
}

static void test_error_thread_local(void **state) {
  (void)state;
  sb_error_clear();
  SB_SET_ERROR(SB_EIO, "main thread message");
  int other_saw_empty = 0;
#pragma omp parallel num_threads(2)
  {
    if (omp_get_thread_num() == 1) {
      other_saw_empty = sb_last_error()[0] == '\0';
      SB_SET_ERROR(SB_EIO, "worker message");
    }
  }
  if (omp_get_max_threads() >= 2) assert_true(other_saw_empty);
  assert_string_equal(sb_last_error(), "main thread message");
}

/* ---- allocation ---- */

static void test_alloc_failure_injection(void **state) {
  (void)state;
  sb_alloc_fail_after(2);
  void *a = sb_malloc(16);
  assert_non_null(a);
  void *b = sb_malloc(16);
  assert_null(b);
  check_contains(sb_last_error(), "16 bytes");
  void *c = sb_calloc(4, 4);
  assert_non_null(c);
  sb_free(a);
  sb_free(c);
  sb_free(NULL);
  char *d = sb_strdup("tau_m");
  assert_string_equal(d, "tau_m");
  sb_free(d);
}

/* ---- progress ---- */

static void test_progress_modes(void **state) {
  (void)state;
  FILE *f = tmpfile();
  sb_progress p;
  unsetenv("SB_PROGRESS_INTERVAL");
  sb_progress_init(&p, f, 0);  /* a file is not a terminal: log lines, one per 60 s */
  assert_int_equal(p.enabled, 2);
  check_abs(p.log_interval, 60.0, 0.0, "default log interval");
  sb_progress_update(&p, "t = %g ms", 12.5);   /* before the first interval: nothing */
  sb_progress_done(&p);
  assert_int_equal(ftell(f), 0);
  p.log_interval = 0.02;
  struct timespec nap = {0, 30 * 1000 * 1000};
  nanosleep(&nap, NULL);
  sb_progress_update(&p, "t = %g ms", 12.5);   /* one plain line */
  sb_progress_update(&p, "t = %g ms", 13.0);   /* within the interval: not written */
  sb_progress_done(&p);                       /* nothing to erase in a log */
  rewind(f);
  char buf[128] = {0};
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  assert_true(n > 0);
  assert_string_equal(buf, "progress: t = 12.5 ms\n");
  fclose(f);

  f = tmpfile();
  setenv("SB_PROGRESS_INTERVAL", "0", 1);      /* 0 turns log lines off */
  sb_progress_init(&p, f, 0);
  assert_int_equal(p.enabled, 0);
  setenv("SB_PROGRESS_INTERVAL", "5", 1);
  sb_progress_init(&p, f, 0);
  assert_int_equal(p.enabled, 2);
  check_abs(p.log_interval, 5.0, 0.0, "SB_PROGRESS_INTERVAL");
  unsetenv("SB_PROGRESS_INTERVAL");

  sb_progress_force(&p, 1);    /* terminal mode: one line with carriage return and erase */
  sb_progress_update(&p, "t = %g ms", 12.5);
  sb_progress_update(&p, "t = %g ms", 13.0); /* within 0.1 s: rate-limited, not drawn */
  sb_progress_done(&p);
  rewind(f);
  memset(buf, 0, sizeof buf);
  n = fread(buf, 1, sizeof buf - 1, f);
  assert_true(n > 0);
  assert_string_equal(buf, "\rt = 12.5 ms\033[K\r\033[K");
  fclose(f);

  sb_quiet = 1;               /* --quiet wins even on a terminal */
  sb_progress_init(&p, stderr, 0);
  assert_int_equal(p.enabled, 0);
  sb_quiet = 0;
}

/* ---- RNG streams ---- */

static void test_rng_same_key_repeats(void **state) {
  (void)state;
  gsl_rng *a = sb_rng_alloc(12345, SB_RNG_POISSON, 77);
  gsl_rng *b = sb_rng_alloc(12345, SB_RNG_POISSON, 77);
  for (int i = 0; i < 1000; i++) assert_int_equal(gsl_rng_get(a), gsl_rng_get(b));
  sb_rng_reseed(a, 12345, SB_RNG_POISSON, 77);
  gsl_rng *c = sb_rng_alloc(12345, SB_RNG_POISSON, 77);
  for (int i = 0; i < 100; i++) assert_int_equal(gsl_rng_get(a), gsl_rng_get(c));
  gsl_rng_free(a);
  gsl_rng_free(b);
  gsl_rng_free(c);
}

/* Streams differing in any one key part share no run of values and are uncorrelated. */
static void test_rng_streams_differ(void **state) {
  (void)state;
  uint64_t keys[4][3] = {{1, SB_RNG_POISSON, 0}, {1, SB_RNG_POISSON, 1}, {2, SB_RNG_POISSON, 0}, {1, SB_RNG_CONNECT, 0}};
  enum { N = 20000 };
  static double x[4][N];
  for (int k = 0; k < 4; k++) {
    gsl_rng *r = sb_rng_alloc(keys[k][0], (uint32_t)keys[k][1], keys[k][2]);
    for (int i = 0; i < N; i++) x[k][i] = gsl_rng_uniform(r);
    gsl_rng_free(r);
  }
  for (int a = 0; a < 4; a++)
    for (int b = a + 1; b < 4; b++) {
      int same = 0;
      double sab = 0, sa = 0, sb = 0, saa = 0, sbb = 0;
      for (int i = 0; i < N; i++) {
        same += x[a][i] == x[b][i];
        sab += x[a][i] * x[b][i]; sa += x[a][i]; sb += x[b][i];
        saa += x[a][i] * x[a][i]; sbb += x[b][i] * x[b][i];
      }
      double cov = sab / N - (sa / N) * (sb / N);
      double r = cov / sqrt((saa / N - sa * sa / N / N) * (sbb / N - sb * sb / N / N));
      assert_true(same < 3);
      /* |r| of independent uniforms has sd 1/sqrt(N) = 0.007; 5 sd */
      check_abs(r, 0.0, 5.0 / sqrt((double)N), "correlation of streams %d and %d", a, b);
    }
  /* Uniform mean and variance within 5 standard errors. */
  double m = 0, v = 0;
  for (int i = 0; i < N; i++) m += x[0][i];
  m /= N;
  for (int i = 0; i < N; i++) v += (x[0][i] - m) * (x[0][i] - m);
  v /= N - 1;
  check_abs(m, 0.5, 5 * sqrt(1.0 / 12 / N), "uniform mean");
  check_abs(v, 1.0 / 12, 5 * sqrt(1.0 / 180 / N), "uniform variance");
}

/* Per-neuron streams drawn in parallel give the same numbers as drawn serially. */
static void test_rng_thread_invariant(void **state) {
  (void)state;
  enum { NN = 64, K = 50 };
  static double serial[NN][K], par[NN][K];
  for (int n = 0; n < NN; n++) {
    gsl_rng *r = sb_rng_alloc(42, SB_RNG_POISSON, (uint64_t)n);
    for (int k = 0; k < K; k++) serial[n][k] = gsl_ran_exponential(r, 2.385);
    gsl_rng_free(r);
  }
#pragma omp parallel for num_threads(2) schedule(dynamic, 3)
  for (int n = NN - 1; n >= 0; n--) {
    gsl_rng *r = sb_rng_alloc(42, SB_RNG_POISSON, (uint64_t)n);
    for (int k = 0; k < K; k++) par[n][k] = gsl_ran_exponential(r, 2.385);
    gsl_rng_free(r);
  }
  assert_memory_equal(serial, par, sizeof serial);
}

/* ---- HDF5 helpers ---- */

static void test_h5_atomic_commit(void **state) {
  (void)state;
  char path[512];
  snprintf(path, sizeof path, "%s/out.h5", sb_test_tmpdir());
  unlink(path);
  sb_h5_out out;
  assert_int_equal(sb_h5_create(&out, path), SB_OK);
  assert_false(sb_test_file_exists(path)); /* nothing under the final name while writing */
  char tmp[600];
  snprintf(tmp, sizeof tmp, "%s", out.tmp_path);
  assert_true(sb_test_file_exists(tmp));
  double v[3] = {0.1, 2.385, -7.0};
  assert_int_equal(sb_h5_write_1d(out.file, "x", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, v, 3), SB_OK);
  hid_t g = sb_h5_group(out.file, "spikes/exc");
  assert_true(g >= 0);
  assert_int_equal(sb_h5_attr_write_string(g, "sorting", "by_time"), SB_OK);
  int64_t iv[2] = {-3, 1LL << 40};
  assert_int_equal(sb_h5_attr_write_int64s(g, "ints", iv, 2), SB_OK);
  assert_int_equal(sb_h5_attr_write_doubles(g, "ds", v, 3), SB_OK);
  double whole[2] = {12.0, -4.0};
  assert_int_equal(sb_h5_attr_write_doubles(g, "whole", whole, 2), SB_OK);
  assert_int_equal(sb_h5_attr_write_string(g, "sorting", "by_id"), SB_OK); /* replace */
  H5Gclose(g);
  assert_int_equal(sb_h5_commit(&out), SB_OK);
  assert_true(sb_test_file_exists(path));
  assert_false(sb_test_file_exists(tmp));

  hid_t f;
  assert_int_equal(sb_h5_open_read(path, &f), SB_OK);
  assert_true(sb_h5_exists(f, "spikes/exc"));
  assert_false(sb_h5_exists(f, "spikes/inh"));
  assert_false(sb_h5_exists(f, "nope/deeper"));
  hid_t g2 = H5Gopen2(f, "spikes/exc", H5P_DEFAULT);
  char *s = NULL;
  assert_int_equal(sb_h5_attr_read_string(g2, "sorting", &s), SB_OK);
  assert_string_equal(s, "by_id");
  sb_free(s);
  int64_t iv2[4];
  size_t n = 0;
  assert_int_equal(sb_h5_attr_read_int64s(g2, "ints", iv2, 4, &n), SB_OK);
  assert_int_equal(n, 2);
  assert_int_equal(iv2[1], 1LL << 40);
  /* floats read as integers: whole numbers pass, a fraction is refused (HDF5 would truncate) */
  assert_int_equal(sb_h5_attr_read_int64s(g2, "whole", iv2, 4, &n), SB_OK);
  assert_int_equal(n, 2);
  assert_int_equal(iv2[0], 12);
  assert_int_equal(iv2[1], -4);
  assert_int_equal(sb_h5_attr_read_int64s(g2, "ds", iv2, 4, &n), SB_EFORMAT);
  check_contains(sb_last_error(), "expected integers (got 0.1)");
  double dv[2];
  assert_int_equal(sb_h5_attr_read_doubles(g2, "ds", dv, 2, &n), SB_EFORMAT); /* cap too small */
  check_contains(sb_last_error(), "at most 2");
  assert_int_equal(sb_h5_attr_read_string(g2, "missing", &s), SB_EFORMAT);
  assert_int_equal(sb_h5_attr_read_string(g2, "ints", &s), SB_EFORMAT);
  H5Gclose(g2);
  double *back = NULL;
  size_t dims[2];
  int rank = 0;
  assert_int_equal(sb_h5_read(f, "x", H5T_NATIVE_DOUBLE, (void **)&back, &n, &rank, dims, 2), SB_OK);
  assert_int_equal(n, 3);
  assert_int_equal(rank, 1);
  assert_memory_equal(back, v, sizeof v);
  sb_free(back);
  assert_int_equal(sb_h5_read(f, "y", H5T_NATIVE_DOUBLE, (void **)&back, &n, NULL, NULL, 0), SB_EFORMAT);
  check_contains(sb_last_error(), "y: missing dataset");
  H5Fclose(f);
}

static void test_h5_abort_leaves_nothing(void **state) {
  (void)state;
  char path[512];
  snprintf(path, sizeof path, "%s/aborted.h5", sb_test_tmpdir());
  sb_h5_out out;
  assert_int_equal(sb_h5_create(&out, path), SB_OK);
  char tmp[600];
  snprintf(tmp, sizeof tmp, "%s", out.tmp_path);
  sb_h5_abort(&out);
  sb_h5_abort(&out); /* twice is harmless */
  assert_false(sb_test_file_exists(path));
  assert_false(sb_test_file_exists(tmp));

  /* unwritable location: clear error naming the path */
  assert_int_equal(sb_h5_create(&out, "/nonexistent-dir/x.h5"), SB_EINVAL);
  check_contains(sb_last_error(), "/nonexistent-dir/x.h5");
}

/* A process killed while writing leaves no file under the final name. */
static void test_h5_killed_writer(void **state) {
  (void)state;
  char path[512];
  snprintf(path, sizeof path, "%s/killed.h5", sb_test_tmpdir());
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    sb_h5_out out;
    if (sb_h5_create(&out, path)) _exit(3);
    double v[1000] = {0};
    sb_h5_write_1d(out.file, "x", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, v, 1000);
    H5Fflush(out.file, H5F_SCOPE_GLOBAL);
    if (write(fds[1], "x", 1) != 1) _exit(4);
    pause();
    _exit(0);
  }
  char c;
  assert_int_equal(read(fds[0], &c, 1), 1);
  kill(pid, SIGKILL);
  int st;
  waitpid(pid, &st, 0);
  assert_true(WIFSIGNALED(st));
  assert_false(sb_test_file_exists(path));
  close(fds[0]);
  close(fds[1]);
}

/* Output never replaces a device, FIFO or directory; a symlink keeps pointing at its file. */
static void test_h5_output_special_files(void **state) {
  (void)state;
  char fifo[512], link[512], target[512];
  sb_h5_out out;
  snprintf(fifo, sizeof fifo, "%s/fifo.h5", sb_test_tmpdir());
  assert_int_equal(mkfifo(fifo, 0600), 0);
  assert_int_equal(sb_h5_create(&out, fifo), SB_EINVAL);
  check_contains(sb_last_error(), "not a regular file");
  struct stat st;
  assert_int_equal(lstat(fifo, &st), 0);
  assert_true(S_ISFIFO(st.st_mode));
  assert_int_equal(sb_h5_create(&out, "/dev/null"), SB_EINVAL);
  assert_int_equal(stat("/dev/null", &st), 0);
  assert_true(S_ISCHR(st.st_mode));
  assert_int_equal(sb_h5_create(&out, sb_test_tmpdir()), SB_EINVAL);
  check_contains(sb_last_error(), "is a directory");
  assert_int_equal(sb_output_dir_check("/nonexistent-dir/figs"), SB_EINVAL);
  assert_int_equal(sb_output_dir_check(sb_test_tmpdir()), SB_OK);
  /* a symlink to a regular file: the file is replaced, the link stays a link */
  snprintf(target, sizeof target, "%s/target.h5", sb_test_tmpdir());
  snprintf(link, sizeof link, "%s/link.h5", sb_test_tmpdir());
  FILE *f = fopen(target, "w");
  fputs("old", f);
  fclose(f);
  assert_int_equal(symlink(target, link), 0);
  assert_int_equal(sb_h5_create(&out, link), SB_OK);
  assert_int_equal(sb_h5_commit(&out), SB_OK);
  assert_int_equal(lstat(link, &st), 0);
  assert_true(S_ISLNK(st.st_mode));
  assert_true(H5Fis_hdf5(target) > 0);
  /* CLI: an unwritable -o fails at once with exit 2, before any work */
  char buf[4096];
  assert_int_equal(sb_test_run(buf, sizeof buf, "run x.json -o /nonexistent-dir/out.h5"), 2);
  check_contains(buf, "does not exist");
}

static void test_h5_open_errors(void **state) {
  (void)state;
  hid_t f;
  char path[512];
  assert_int_equal(sb_h5_open_read("/nonexistent/file.h5", &f), SB_EINVAL);
  check_contains(sb_last_error(), "/nonexistent/file.h5: no such file");
  assert_int_equal(sb_h5_open_read(sb_test_tmpdir(), &f), SB_EINVAL);
  check_contains(sb_last_error(), "is a directory");
  snprintf(path, sizeof path, "%s/not.h5", sb_test_tmpdir());
  FILE *t = fopen(path, "w");
  fputs("this is not HDF5\n", t);
  fclose(t);
  assert_int_equal(sb_h5_open_read(path, &f), SB_EFORMAT);
  check_contains(sb_last_error(), "not an HDF5 file");
}

/* ---- memory limits ---- */

static void put(const char *root, const char *rel, const char *text) {
  char path[1024], cmd[1200];
  snprintf(path, sizeof path, "%s/%s", root, rel);
  snprintf(cmd, sizeof cmd, "mkdir -p \"$(dirname '%s')\"", path);
  assert_int_equal(system(cmd), 0);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* sb_cgroup_mem_limit on a fake /sys/fs/cgroup: the smallest limit along the process's cgroup
 * path (a Slurm job's step cgroup sits below the job's, which holds --mem), "max" and v1's
 * "unlimited" (9223372036854771712) as no limit, v1 only through the hierarchy that lists the
 * memory controller. */
static void test_cgroup_mem_limit(void **state) {
  (void)state;
  char root[600];
  snprintf(root, sizeof root, "%s/cg", sb_test_tmpdir());
  /* v2: the job's level limits, the step's says max */
  put(root, "slurm/job_7/memory.max", "2147483648\n");
  put(root, "slurm/job_7/step_0/memory.max", "max\n");
  put(root, "memory.max", "max\n");
  assert_int_equal(sb_cgroup_mem_limit("0::/slurm/job_7/step_0\n", root), (size_t)2147483648u);
  /* a smaller limit deeper down wins */
  put(root, "slurm/job_7/step_0/memory.max", "1000000\n");
  assert_int_equal(sb_cgroup_mem_limit("0::/slurm/job_7/step_0\n", root), (size_t)1000000);
  /* no files at all: no limit */
  assert_true(sb_cgroup_mem_limit("0::/elsewhere\n", root) == SIZE_MAX);
  assert_true(sb_cgroup_mem_limit("", root) == SIZE_MAX);
  /* v1: the memory hierarchy's line, not the cpu one; unlimited is no limit */
  put(root, "memory/uid_5/job_9/memory.limit_in_bytes", "4294967296\n");
  put(root, "memory/uid_5/memory.limit_in_bytes", "9223372036854771712\n");
  put(root, "cpu/uid_5/job_9/memory.limit_in_bytes", "1\n");
  assert_int_equal(sb_cgroup_mem_limit("5:cpu,cpuacct:/uid_5/job_9\n4:memory:/uid_5/job_9\n1:name=systemd:/x\n", root),
                   (size_t)4294967296u);
  /* garbage is no limit, not zero */
  put(root, "memory/uid_5/job_9/memory.limit_in_bytes", "abc\n");
  assert_true(sb_cgroup_mem_limit("4:memory:/uid_5/job_9", root) == SIZE_MAX);
  /* sb_mem_limit names what applies and is never above physical memory */
  const char *what = NULL;
  size_t m = sb_mem_limit(&what);
  assert_non_null(what);
  assert_true(m > 0);
  assert_true((double)m <= (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE));
}

int main(void) {
  sb_h5_quiet();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_error_context),
      cmocka_unit_test(test_error_thread_local),
      cmocka_unit_test(test_alloc_failure_injection),
      cmocka_unit_test(test_progress_modes),
      cmocka_unit_test(test_rng_same_key_repeats),
      cmocka_unit_test(test_rng_streams_differ),
      cmocka_unit_test(test_rng_thread_invariant),
      cmocka_unit_test(test_h5_atomic_commit),
      cmocka_unit_test(test_h5_abort_leaves_nothing),
      cmocka_unit_test(test_h5_killed_writer),
      cmocka_unit_test(test_h5_output_special_files),
      cmocka_unit_test(test_h5_open_errors),
      cmocka_unit_test(test_cgroup_mem_limit),
  };
  return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
