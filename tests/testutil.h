/* Shared test helpers on top of cmocka: tolerance checks that print what/got/want/tol,
 * running the CLI binary, locating ../shared and temporary directories. */
#ifndef SB_TESTUTIL_H
#define SB_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* |got - want| <= tol * max(|want|, tiny), with a message naming what was checked. */
#define check_rel(got, want, tol, ...) \
  check_close_((double)(got), (double)(want), (tol), 1, __FILE__, __LINE__, __VA_ARGS__)
#define check_abs(got, want, tol, ...) \
  check_close_((double)(got), (double)(want), (tol), 0, __FILE__, __LINE__, __VA_ARGS__)

static inline void check_close_(double got, double want, double tol, int rel, const char *file, int line,
                                const char *fmt, ...) {
  double err = fabs(got - want);
  double lim = rel ? tol * fmax(fabs(want), 1e-300) : tol;
  if (!(err <= lim) || isnan(got) != isnan(want)) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s:%d: %s: got %.17g, want %.17g, %s tol %g (err %g)\n", file, line, what,
                       got, want, rel ? "rel" : "abs", tol, err);
    _fail(file, line);
  }
}

/* Path of the CLI binary under test (set by scripts/run-tests), default ./spikebridge. */
static inline const char *sb_test_bin(void) {
  const char *b = getenv("SB_BIN");
  return b && *b ? b : "./spikebridge";
}

/* Run shell command `cmd`, capturing its stdout into `out` (may be NULL; add 2>&1 for stderr).
 * Returns the exit status (128+signal if killed), -1 if it could not start. */
static inline int sb_test_shell(const char *cmd, char *out, size_t cap) {
  FILE *p = popen(cmd, "r");
  if (!p) return -1;
  size_t n = 0;
  char buf[4096];
  size_t r;
  while ((r = fread(buf, 1, sizeof buf, p)) > 0) {
    if (out && n + 1 < cap) {
      size_t k = r < cap - 1 - n ? r : cap - 1 - n;
      memcpy(out + n, buf, k);
      n += k;
    }
  }
  if (out) out[n] = '\0';
  int st = pclose(p);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return WEXITSTATUS(st);
}

/* Run `[wrap] spikebridge <args>` through the shell (wrap e.g. "timeout 120", or NULL),
 * capturing stdout+stderr into `out` (may be NULL). Returns the exit status (128+signal if
 * killed). */
static inline int sb_test_run_wrapped_v(const char *wrap, char *out, size_t cap, const char *fmt, va_list ap) {
  char args[4096], cmd[8192];
  vsnprintf(args, sizeof args, fmt, ap);
  snprintf(cmd, sizeof cmd, "%s%s%s %s 2>&1", wrap ? wrap : "", wrap ? " " : "", sb_test_bin(), args);
  return sb_test_shell(cmd, out, cap);
}


/* Run `WRAP spikebridge <args>` through the shell (see sb_test_run_wrapped_v). */
static inline int sb_test_run_wrapped(const char *wrap, char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline int sb_test_run_wrapped(const char *wrap, char *out, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int st = sb_test_run_wrapped_v(wrap, out, cap, fmt, ap);
  va_end(ap);
  return st;
}

/* Run `spikebridge <args>` (see sb_test_run_wrapped_v). */
static inline int sb_test_run(char *out, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int st = sb_test_run_wrapped_v(NULL, out, cap, fmt, ap);
  va_end(ap);
  return st;
}

/* The read-only ../shared directory beside the clone, or NULL when absent (tests then skip).
 * $SB_SHARED_DIR overrides. */
static inline const char *sb_test_shared(void) {
  const char *e = getenv("SB_SHARED_DIR");
  static const char *cands[] = {"../shared", NULL};
  if (e && *e) return access(e, R_OK) == 0 ? e : NULL;
  for (int i = 0; cands[i]; i++)
    if (access(cands[i], R_OK) == 0) return cands[i];
  return NULL;
}

/* A fresh temporary directory for this test binary (mkdtemp under $TMPDIR or /tmp). */
static inline const char *sb_test_tmpdir(void) {
  static char dir[256];
  if (!dir[0]) {
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/sbtest.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(dir)) { perror("mkdtemp"); exit(1); }
  }
  return dir;
}

/* Write `text` to a new file `name` in the test directory; returns its path (one of 8 rotating
 * static buffers). */
static inline const char *sb_test_write_tmp(const char *name, const char *text) {
  static char paths[8][600];
  static int k;
  char *path = paths[k++ % 8];
  snprintf(path, 600, "%s/%s", sb_test_tmpdir(), name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  return path;
}

static inline int sb_test_file_exists(const char *path) { return access(path, F_OK) == 0; }

/* Substring check with a message. */
#define check_contains(hay, needle) \
  do { \
    if (!strstr((hay), (needle))) { \
      fprintf(stderr, "%s:%d: expected output to contain '%s'; got:\n%s\n", __FILE__, __LINE__, (needle), (hay)); \
      fail(); \
    } \
  } while (0)

#endif
