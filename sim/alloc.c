/* Allocation wrappers with a failure-injection hook for tests (Lua's debug_realloc idea).
 * Not a pool or arena: hot paths allocate their workspaces up front instead. */
#include "sim/core.h"

#include <stdlib.h>
#include <string.h>

static long fail_countdown = 0; /* 0: never fail; n: the n-th call from now fails */

void sb_alloc_fail_after(long n) { fail_countdown = n; }

static int should_fail(void) {
  if (fail_countdown <= 0) return 0;
  return --fail_countdown == 0;
}

void *sb_malloc(size_t size) {
  void *p = should_fail() ? NULL : malloc(size ? size : 1);
  if (!p) SB_SET_ERROR(SB_ENOMEM, "out of memory allocating %zu bytes", size);
  return p;
}

void *sb_calloc(size_t n, size_t size) {
  void *p = should_fail() ? NULL : calloc(n ? n : 1, size ? size : 1);
  if (!p) SB_SET_ERROR(SB_ENOMEM, "out of memory allocating %zu x %zu bytes", n, size);
  return p;
}

void *sb_realloc(void *old, size_t size) {
  void *p = should_fail() ? NULL : realloc(old, size ? size : 1);
  if (!p) SB_SET_ERROR(SB_ENOMEM, "out of memory reallocating to %zu bytes", size);
  return p;
}

void *sb_calloc_aligned(size_t n, size_t size, size_t align) {
  size_t bytes = (n ? n : 1) * (size ? size : 1);
  bytes = (bytes + align - 1) / align * align;   /* aligned_alloc wants a multiple of align */
  void *p = should_fail() ? NULL : aligned_alloc(align, bytes);
  if (!p) SB_SET_ERROR(SB_ENOMEM, "out of memory allocating %zu x %zu bytes", n, size);
  else memset(p, 0, bytes);
  return p;
}

void sb_free(void *p) { free(p); }

char *sb_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = sb_malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}
