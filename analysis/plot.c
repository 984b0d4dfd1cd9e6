/* PNG figures of a population summary with PLplot (pngcairo driver): raster, population rate,
 * ISI histogram, CV distribution. Each figure is its own PLplot stream, written under a
 * temporary name and renamed when complete. Statistics are computed elsewhere (summary.c). */
#include "analysis/analysis.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <plplot.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define RASTER_MAX 200000

typedef struct { char final[4096], tmp[4200]; PLINT strm, old; } fig;

/* The figure's file name and its temporary name. */
static void fig_names(fig *g, const char *dir, const char *pop, const char *what) {
  char name[256];
  snprintf(name, sizeof name, "%s", pop);
  for (char *c = name; *c; c++) if (*c == '/' || *c == ' ') *c = '_';
  size_t dl = strlen(dir);
  while (dl > 1 && dir[dl - 1] == '/') dl--;   /* "pl/" gave "pl//x_raster.png" in messages */
  snprintf(g->final, sizeof g->final, "%.*s/%s_%s.png", (int)dl, dir, name, what);
  snprintf(g->tmp, sizeof g->tmp, "%s.tmp.%ld.png", g->final, (long)getpid());
}

static void fig_open(fig *g, const char *dir, const char *pop, const char *what, const char *title_x,
                     const char *title_y, const char *title, double xmin, double xmax, double ymin, double ymax,
                     int axis) {
  fig_names(g, dir, pop, what);
  plgstrm(&g->old);
  plmkstrm(&g->strm);
  plsdev("pngcairo");
  plsfnam(g->tmp);
  plsetopt("geometry", "1000x650");
  plscol0(0, 255, 255, 255);  /* background white */
  plscol0(1, 0, 0, 0);        /* axes, labels */
  plscol0(2, 31, 119, 180);   /* blue */
  plscol0(3, 214, 39, 40);    /* red */
  plscol0(4, 170, 200, 230);  /* light blue */
  plscol0(5, 120, 120, 120);  /* grey */
  plinit();
  plcol0(1);
  plschr(0, 1.1);
  if (!(xmax > xmin)) xmax = xmin + 1;
  if (!(ymax > ymin)) ymax = ymin + 1;
  plenv(xmin, xmax, ymin, ymax, 0, axis);
  pllab(title_x, title_y, title);
}

/* Why a PNG came out incomplete: PLplot (cairo) reports no write error, so guess from the
 * limits that cut files short. */
static const char *short_write_reason(const char *path, long long size) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (unsigned long long)size >= rl.rlim_cur)
    return "the file size limit (ulimit -f) was reached";
  struct statvfs vs;
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = '\0';
  if (statvfs(slash ? dir : ".", &vs) == 0 && (vs.f_bavail == 0 || vs.f_favail == 0)) return "no space left on the device";
  return "the write failed (disk full?)";
}

/* 1 if `path` is a complete PNG: the signature first and the IEND chunk (length 0, "IEND",
 * CRC AE 42 60 82) as its last 12 bytes. */
static int png_complete(const char *path, long long *size) {
  static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  static const unsigned char iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
  unsigned char head[8], tail[12];
  *size = -1;
  int fd = open(path, O_RDONLY);
  if (fd < 0) return 0;
  struct stat st;
  int ok = fstat(fd, &st) == 0;
  if (ok) *size = (long long)st.st_size;
  ok = ok && st.st_size >= 20 && pread(fd, head, 8, 0) == 8 && pread(fd, tail, 12, st.st_size - 12) == 12 &&
       !memcmp(head, sig, 8) && !memcmp(tail, iend, 12);
  close(fd);
  return ok;
}

/* End the figure's stream and check its PNG is whole; it stays under its temporary name
 * (sb_stats_plot_finish renames or removes it). A PNG cut short is removed here. */
static int fig_close(fig *g) {
  plend1();
  plsstrm(g->old);
  /* a full disk or a file size limit cut the PNG short and PLplot said nothing: check it is
   * whole before it may take the final name */
  long long size;
  if (!png_complete(g->tmp, &size)) {
    const char *why = size < 0 ? strerror(errno) : short_write_reason(g->tmp, size);
    unlink(g->tmp);
    if (size < 0) SB_ERROR(SB_EIO, "%s: cannot write figure: %s", g->final, why);
    SB_ERROR(SB_EIO, "%s: cannot write figure: the PNG written is incomplete (%lld bytes, no IEND chunk): %s", g->final, size,
             why);
  }
  return SB_OK;
}

static const char *const fig_kinds[4] = {"raster", "rate", "isi", "cv"};

static void bars(const double *edges, const double *h, size_t n, int color) {
  for (size_t i = 0; i < n; i++) {
    if (!(h[i] > 0)) continue;
    PLFLT x[4] = {edges[i], edges[i], edges[i + 1], edges[i + 1]}, y[4] = {0, h[i], h[i], 0};
    plcol0(color);
    plfill(4, x, y);
    if (n <= 200) {   /* outlines only while bars are wide enough to see them */
      plcol0(2);
      plline(4, x, y);
    }
  }
}

static double vmax(const double *v, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) if (v[i] > m) m = v[i];
  return m;
}

/* Centred note on an empty plot. */
static void no_data(double xmin, double xmax, double ymin, double ymax, const char *what) {
  plcol0(5);
  plptex(0.5 * (xmin + xmax), 0.5 * (ymin + ymax), 1, 0, 0.5, what);
  plcol0(1);
}

static int raster(sb_spk_file *f, size_t pop, const sb_stats_summary *s, const char *dir) {
  size_t n = sb_spk_pop(f, pop)->n_spikes, W = (size_t)1 << 20;
  size_t stride = n > RASTER_MAX ? (n + RASTER_MAX - 1) / RASTER_MAX : 1;
  double *x = sb_malloc((RASTER_MAX + 1) * sizeof *x), *y = sb_malloc((RASTER_MAX + 1) * sizeof *y);
  double *t = sb_malloc((W < n ? W : n + 1) * sizeof *t);
  uint64_t *id = sb_malloc((W < n ? W : n + 1) * sizeof *id);
  int st = (!x || !y || !t || !id) ? SB_ENOMEM : SB_OK;
  size_t m = 0;
  double ymin = INFINITY, ymax = -INFINITY;
  for (size_t off = 0; !st && off < n; off += W) {
    size_t k = n - off < W ? n - off : W;
    st = sb_spk_read(f, pop, off, k, t, id);
    for (size_t i = 0; !st && i < k; i++) {
      if ((off + i) % stride || t[i] < s->t_start || t[i] > s->t_stop || m >= RASTER_MAX) continue;
      x[m] = t[i];
      y[m] = (double)id[i];
      if (y[m] < ymin) ymin = y[m];
      if (y[m] > ymax) ymax = y[m];
      m++;
    }
  }
  if (!st) {
    char title[256];
    if (stride > 1)
      snprintf(title, sizeof title, "%s: raster (%zu spikes, 1 in %zu shown)", s->population, s->n_spikes, stride);
    else
      snprintf(title, sizeof title, "%s: raster (%zu spikes, %zu neurons)", s->population, s->n_spikes, s->n_neurons);
    if (m == 0) ymin = 0, ymax = 1;
    double pad = (ymax - ymin) * 0.02 + 0.5;
    fig g;
    fig_open(&g, dir, s->population, "raster", "time (ms)", "node id", title, s->t_start, s->t_stop, ymin - pad,
             ymax + pad, 0);
    plcol0(2);
    plssym(0, m > 20000 ? 0.4 : 1.0);
    plpoin((PLINT)m, x, y, m > 20000 ? 1 : 17);
    if (m == 0) no_data(s->t_start, s->t_stop > s->t_start ? s->t_stop : s->t_start + 1, ymin - pad, ymax + pad,
                        "no spikes in the window");
    st = fig_close(&g);
  }
  sb_free(x); sb_free(y); sb_free(t); sb_free(id);
  return st;
}

static int rate(const sb_stats_summary *s, const char *dir) {
  /* at most ~1000 bars on the figure: merge k bins (their mean rate) when there are more */
  size_t k = s->n_bins > 1000 ? (s->n_bins + 999) / 1000 : 1, B = (s->n_bins + k - 1) / k;
  double *e = sb_malloc((B + 2) * sizeof *e), *h = sb_calloc(B + 1, sizeof *h);
  double *tx = sb_malloc((s->n_irate + 1) * sizeof *tx);
  if (!e || !h || !tx) { sb_free(e); sb_free(h); sb_free(tx); return SB_ENOMEM; }
  for (size_t b = 0; b <= B; b++) e[b] = s->t_start + (double)(b * k) * s->bin;
  if (B) e[B] = fmin(e[B], s->t_start + (double)s->n_bins * s->bin);
  for (size_t b = 0; b < s->n_bins; b++) h[b / k] += s->psth[b];
  for (size_t b = 0; b < B; b++) h[b] /= (double)(b + 1 < B ? k : s->n_bins - b * k);
  for (size_t i = 0; i < s->n_irate; i++) tx[i] = s->t_start + (double)i * s->irate_dt;
  double ym = fmax(vmax(h, B), vmax(s->irate, s->n_irate)) * 1.08;
  char title[256];
  snprintf(title, sizeof title, "%s: population rate (bars: %g ms bins; line: Gaussian, sigma %g ms)",
           s->population, s->bin * (double)k, s->irate_sigma);
  fig g;
  fig_open(&g, dir, s->population, "rate", "time (ms)", "rate per neuron (Hz)", title, s->t_start, s->t_stop, 0, ym, 0);
  bars(e, h, B, 4);
  plcol0(3);
  plwidth(2);
  plline((PLINT)s->n_irate, tx, s->irate);
  plwidth(1);
  if (s->n_spikes == 0) no_data(s->t_start, s->t_start + 1, 0, 1, "no spikes in the window");
  int st = fig_close(&g);
  sb_free(e); sb_free(h); sb_free(tx);
  return st;
}

static int isi(const sb_stats_summary *s, const char *dir) {
  double le[SB_ISI_HIST_BINS + 1];
  for (int b = 0; b <= SB_ISI_HIST_BINS; b++) le[b] = log10(s->isi_edges[b]);
  /* show the decades that hold intervals */
  int lo = 0, hi = SB_ISI_HIST_BINS - 1;
  while (lo < hi && s->isi_hist[lo] == 0) lo++;
  while (hi > lo && s->isi_hist[hi] == 0) hi--;
  double xmin = floor(le[lo]), xmax = ceil(le[hi + 1]);
  if (xmax <= xmin) xmax = xmin + 1;
  double total = 0;
  for (int b = 0; b < SB_ISI_HIST_BINS; b++) total += s->isi_hist[b];
  char title[256];
  snprintf(title, sizeof title, "%s: ISI histogram (%.0f intervals, 10 bins per decade)", s->population, total);
  fig g;
  fig_open(&g, dir, s->population, "isi", "inter-spike interval (ms)", "count", title, xmin, xmax, 0,
           vmax(s->isi_hist, SB_ISI_HIST_BINS) * 1.08, 10);
  bars(le, s->isi_hist, SB_ISI_HIST_BINS, 4);
  if (total == 0) no_data(xmin, xmax, 0, 1, "no intervals (fewer than 2 spikes per neuron)");
  return fig_close(&g);
}

static int cvdist(const sb_stats_summary *s, const char *dir) {
  enum { NB = 30 };
  double mx = 2.0;
  for (size_t i = 0; i < s->n_neurons; i++) if (s->neurons[i].cv > mx) mx = s->neurons[i].cv;
  mx = ceil(mx * 2) / 2;
  double e[NB + 1], h[NB] = {0};
  for (int b = 0; b <= NB; b++) e[b] = mx * b / NB;
  for (size_t i = 0; i < s->n_neurons; i++) {
    double v = s->neurons[i].cv;
    if (isnan(v)) continue;
    int b = (int)(v / mx * NB);
    h[b >= NB ? NB - 1 : b] += 1;
  }
  char title[256];
  snprintf(title, sizeof title, "%s: CV of ISIs, %zu neurons (%zu with < 3 spikes left out)", s->population, s->n_cv,
           s->n_neurons - s->n_cv);
  double ym = vmax(h, NB) * 1.1;
  fig g;
  fig_open(&g, dir, s->population, "cv", "CV of inter-spike intervals (dashed: Poisson, CV = 1)", "neurons", title, 0,
           mx, 0, ym > 0 ? ym : 1, 0);
  bars(e, h, NB, 4);
  PLFLT lx[2] = {1, 1}, ly[2] = {0, ym > 0 ? ym : 1};
  plcol0(3);
  pllsty(2);
  plline(2, lx, ly);
  pllsty(1);
  if (s->n_cv == 0) no_data(0, mx, 0, 1, "no neuron with 3 or more spikes");
  return fig_close(&g);
}

int sb_stats_plot_check(const char *dir, const char *const *pops, size_t n_pops) {
  struct stat sbuf;
  int created = 0;
  if (stat(dir, &sbuf) != 0) {
    if (mkdir(dir, 0777) == 0) created = 1;
    else if (errno != EEXIST) SB_ERROR(SB_EIO, "%s: cannot create figure directory: %s", dir, strerror(errno));
  }
  if (stat(dir, &sbuf) != 0 || !S_ISDIR(sbuf.st_mode)) SB_ERROR(SB_EIO, "%s: not a directory", dir);
  int st = SB_OK;
  for (size_t i = 0; i < n_pops && !st; i++) {
    /* PLplot exits the process when it cannot open its file (a population name too long for the
     * file system): try the longest name (the raster's temporary one) first */
    fig probe;
    fig_names(&probe, dir, pops[i], "raster");
    int fd = open(probe.tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) {
      int e = errno;
      st = SB_SET_ERROR(e == ENAMETOOLONG ? SB_EINVAL : SB_EIO, "%s: cannot create the figures of population %s there: "
                        "%s%s", dir, pops[i], strerror(e),
                        e == ENAMETOOLONG ? " (the population name is too long for a file name)" : "");
      break;
    }
    close(fd);
    unlink(probe.tmp);
    /* two populations whose names differ only in '/' or ' ' (both become '_') would write the
     * same files, the second overwriting the first */
    for (size_t j = 0; j < i && !st; j++) {
      fig other;
      fig_names(&other, dir, pops[j], "raster");
      if (!strcmp(other.final, probe.final))
        st = SB_SET_ERROR(SB_EINVAL, "%s: populations '%s' and '%s' would write the same figure files (%s and the like: "
                          "'/' and ' ' become '_'); expected --population to plot one of them", dir, pops[j], pops[i],
                          probe.final);
    }
  }
  if (st && created) rmdir(dir);   /* nothing written: not even the directory */
  return st;
}

int sb_stats_plot_finish(const char *dir, const char *const *pops, size_t n_pops, int commit) {
  int st = SB_OK;
  for (size_t i = 0; i < n_pops; i++)
    for (int k = 0; k < 4; k++) {
      fig g;
      fig_names(&g, dir, pops[i], fig_kinds[k]);
      if (commit && !st && rename(g.tmp, g.final) != 0) {
        int e = errno;
        st = SB_SET_ERROR(SB_EIO, "%s: cannot write figure: %s", g.final, strerror(e));
      }
      if (!commit || st) unlink(g.tmp);   /* after an error, the rest are removed */
    }
  return st;
}

int sb_stats_plot_stage(sb_spk_file *f, size_t pop, const sb_stats_summary *s, const char *dir) {
  const char *name = s->population;   /* its names were checked by the caller (sb_stats_plot_check) */
  int st = raster(f, pop, s, dir);
  if (!st) st = rate(s, dir);
  if (!st) st = isi(s, dir);
  if (!st) st = cvdist(s, dir);
  if (st) sb_stats_plot_finish(dir, &name, 1, 0);   /* this population's figures made so far */
  return st;
}

int sb_stats_plot(sb_spk_file *f, size_t pop, const sb_stats_summary *s, const char *dir) {
  const char *name = s->population;
  int st = sb_stats_plot_check(dir, &name, 1);
  if (!st) st = sb_stats_plot_stage(f, pop, s, dir);
  if (!st) st = sb_stats_plot_finish(dir, &name, 1, 1);
  return st;
}
