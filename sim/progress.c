/* Progress line on a terminal, timing and memory figures for summaries.
 * Deliberately tiny: no bars or ETA logic beyond what callers format themselves. */
#include "sim/core.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int sb_quiet = 0;

double sb_wall_time(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

size_t sb_peak_rss(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  size_t kb = 0;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmHWM:", 6) == 0) { kb = (size_t)strtoull(line + 6, NULL, 10); break; }
  fclose(f);
  return kb * 1024;
}

void sb_progress_init(sb_progress *p, FILE *out, int quiet) {
  memset(p, 0, sizeof *p);
  p->out = out;
  p->log_interval = 60.0;
  const char *iv = getenv("SB_PROGRESS_INTERVAL");
  if (iv && *iv) {
    char *end;
    double x = strtod(iv, &end);
    if (*end == '\0' && x >= 0 && x < 1e9) p->log_interval = x;
    else if (out && !sb_quiet)
      fprintf(out, "spikebridge: warning: SB_PROGRESS_INTERVAL=%s: expected seconds in [0, 1e9); using %g s\n", iv,
              p->log_interval);
  }
  if (quiet || sb_quiet || !out) p->enabled = 0;
  else if (isatty(fileno(out))) p->enabled = 1;
  else p->enabled = p->log_interval > 0 ? 2 : 0;
  p->t_start = sb_wall_time();
  p->t_last = -1.0;
}

void sb_progress_force(sb_progress *p, int enabled) { p->enabled = enabled; }

double sb_progress_elapsed(const sb_progress *p) { return sb_wall_time() - p->t_start; }

void sb_progress_update(sb_progress *p, const char *fmt, ...) {
  if (!p->enabled) return;
  int log = p->enabled == 2;   /* a log: one plain line per interval, the first after one interval */
  double now = sb_wall_time(), last = p->t_last >= 0 ? p->t_last : log ? p->t_start : -INFINITY;
  if (now - last < (log ? p->log_interval : 0.1)) return; /* a terminal: at most ~10 redraws/s */
  p->t_last = now;
  va_list ap;
  va_start(ap, fmt);
  fputs(log ? "progress: " : "\r", p->out);
  vfprintf(p->out, fmt, ap);
  fputs(log ? "\n" : "\033[K", p->out);
  va_end(ap);
  fflush(p->out);
  p->printed = !log;   /* only a terminal line is erased by sb_progress_done */
}

void sb_progress_done(sb_progress *p) {
  if (p->enabled == 1 && p->printed) {
    fputs("\r\033[K", p->out);
    fflush(p->out);
  }
  p->printed = 0;
}
