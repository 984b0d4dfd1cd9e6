/* Error context: one thread-local message slot, filled by sb_error_set_ and read by the CLI.
 * The library never prints and never exits; this is how it says what went wrong. */
#include "sim/core.h"

#include <stdarg.h>
#include <string.h>

static _Thread_local char err_msg[SB_ERRMSG_MAX];
static _Thread_local char err_where[256];

int sb_error_set_(const char *src_file, int src_line, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err_msg, sizeof err_msg, fmt, ap);
  va_end(ap);
  snprintf(err_where, sizeof err_where, "%s:%d", src_file, src_line);
  return code;
}

int sb_error_prefix_(int code, const char *fmt, ...) {
  char prefix[SB_ERRMSG_MAX], old[SB_ERRMSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  memcpy(old, err_msg, sizeof old);
  snprintf(err_msg, sizeof err_msg, "%.1000s: %.1000s", prefix, old);
  return code;
}

void sb_error_restore_(const char *msg, const char *where) {
  snprintf(err_msg, sizeof err_msg, "%s", msg);
  snprintf(err_where, sizeof err_where, "%s", where);
}

const char *sb_last_error(void) { return err_msg; }
const char *sb_last_error_where(void) { return err_where; }
void sb_error_clear(void) { err_msg[0] = '\0'; err_where[0] = '\0'; }

const char *sb_strerror(int code) {
  switch (code) {
  case SB_NOSPIKE: return "no threshold crossing";
  case SB_OK: return "success";
  case SB_EINVAL: return "invalid input";
  case SB_ENOMEM: return "out of memory";
  case SB_EIO: return "input/output error";
  case SB_EFORMAT: return "bad file format";
  case SB_ENOCONV: return "no convergence";
  case SB_EMPI: return "MPI error";
  case SB_EUNSUPPORTED: return "unsupported";
  default: return "unknown error";
  }
}

int sb_exit_code(int code) {
  switch (code) {
  case SB_OK: case SB_NOSPIKE: return 0;
  case SB_EINVAL: case SB_EFORMAT: case SB_EUNSUPPORTED: return 2;
  default: return 1;
  }
}
