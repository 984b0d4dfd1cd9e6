/* Spike-train statistics on arrays, each with Elephant's definition and edge-case convention
 * (elephant.statistics, .conversion, .spike_train_correlation, .spike_train_dissimilarity),
 * cited at each function in analysis.h. Streaming over files is summary.c's job, not this file's. */
#include "analysis/analysis.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *sb_stats_why(sb_stats_why_code why) {
  switch (why) {
    case SB_WHY_OK: return "";
    case SB_WHY_NO_SPIKES: return "no spikes in [t_start, t_stop]";
    case SB_WHY_FEW_SPIKES: return "fewer than 3 spikes (2 intervals)";
    case SB_WHY_ZERO_MEAN: return "zero mean count";
    case SB_WHY_FEW_BINS: return "fewer than 2 bins in [t_start, t_stop]";
    case SB_WHY_ZERO_VARIANCE: return "binned counts without variance";
    case SB_WHY_ZERO_INTERVAL: return "two consecutive intervals of length 0";
    case SB_WHY_EMPTY_WINDOW: return "t_stop <= t_start";
    case SB_WHY_TOO_LARGE: return "skipped: pair too large for an O(n m) measure";
  }
  return "?";
}

static double nan_why(sb_stats_why_code *why, sb_stats_why_code code) {
  if (why) *why = code;
  return NAN;
}
static double ok(sb_stats_why_code *why, double v) {
  if (why) *why = SB_WHY_OK;
  return v;
}

/* ---- rates and intervals ---- */

double sb_stats_mean_rate(const double *t, size_t n, double t_start, double t_stop, sb_stats_why_code *why) {
  if (!(t_stop > t_start)) return nan_why(why, SB_WHY_EMPTY_WINDOW);
  size_t c = 0;
  for (size_t i = 0; i < n; i++) c += t[i] >= t_start && t[i] <= t_stop;
  return ok(why, 1000.0 * (double)c / (t_stop - t_start));
}

size_t sb_stats_isi(const double *t, size_t n, double *isi) {
  if (n < 2) return 0;
  for (size_t i = 0; i + 1 < n; i++) isi[i] = t[i + 1] - t[i];
  return n - 1;
}

double sb_stats_cv(const double *isi, size_t n, sb_stats_why_code *why) {
  if (n < 2) return nan_why(why, SB_WHY_FEW_SPIKES);
  double mean = 0, m2 = 0;
  for (size_t i = 0; i < n; i++) {   /* Welford: the same update the streaming summary uses */
    double d = isi[i] - mean;
    mean += d / (double)(i + 1);
    m2 += d * (isi[i] - mean);
  }
  return ok(why, sqrt(m2 / (double)n) / mean);
}

double sb_stats_cv2(const double *isi, size_t n, sb_stats_why_code *why) {
  if (n < 2) return nan_why(why, SB_WHY_FEW_SPIKES);
  double s = 0;
  for (size_t i = 0; i + 1 < n; i++) {
    double den = isi[i] + isi[i + 1];
    if (den == 0) return nan_why(why, SB_WHY_ZERO_INTERVAL);
    s += fabs(isi[i + 1] - isi[i]) / den;
  }
  return ok(why, 2.0 * s / (double)(n - 1));
}

double sb_stats_lv(const double *isi, size_t n, sb_stats_why_code *why) {
  if (n < 2) return nan_why(why, SB_WHY_FEW_SPIKES);
  double s = 0;
  for (size_t i = 0; i + 1 < n; i++) {
    double den = isi[i] + isi[i + 1];
    if (den == 0) return nan_why(why, SB_WHY_ZERO_INTERVAL);
    double r = (isi[i] - isi[i + 1]) / den;
    s += r * r;
  }
  return ok(why, 3.0 * s / (double)(n - 1));
}

/* ---- binning (elephant.conversion.BinnedSpikeTrain) ---- */

/* elephant.utils.round_binning_errors for a scalar: floor, but values within 1e-8 below the
 * next integer round up. */
static long round_binning(double v) {
  if (!(v < 9.0e18)) return LONG_MAX;   /* beyond long: callers refuse so many bins */
  double fl = floor(v);
  if (v - fl >= 1.0 - 1e-8) return (long)fl + 1;
  return (long)fl;
}

size_t sb_stats_n_bins(double t_start, double t_stop, double bin) {
  if (!(t_stop > t_start) || !(bin > 0)) return 0;
  long n = round_binning((t_stop - t_start) / bin);
  return n > 0 ? (size_t)n : 0;
}

long sb_stats_bin_index(double t, double t_start, double t_stop, double bin, size_t n_bins) {
  if (t < t_start || t > t_stop) return -1;
  long b = round_binning((t - t_start) * (1.0 / bin));
  return b >= 0 && (size_t)b < n_bins ? b : -1;
}

size_t sb_stats_bin(const double *t, size_t n, double t_start, double t_stop, double bin, size_t n_bins,
                    double *counts) {
  size_t c = 0;
  for (size_t i = 0; i < n; i++) {
    long b = sb_stats_bin_index(t[i], t_start, t_stop, bin, n_bins);
    if (b >= 0) { counts[b] += 1; c++; }
  }
  return c;
}

double sb_stats_fano(const double *c, size_t n, sb_stats_why_code *why) {
  if (n < 2) return nan_why(why, SB_WHY_FEW_BINS);
  double s = 0, ss = 0;
  for (size_t i = 0; i < n; i++) { s += c[i]; ss += c[i] * c[i]; }
  if (s == 0) return nan_why(why, SB_WHY_ZERO_MEAN);
  double mean = s / (double)n;
  double var = ss / (double)n - mean * mean;
  return ok(why, (var < 0 ? 0 : var) / mean);
}

/* ---- instantaneous rate (elephant.statistics.instantaneous_rate, Gaussian kernel) ---- */

size_t sb_stats_irate_len(double t_start, double t_stop, double dt) {
  if (!(t_stop >= t_start) || !(dt > 0)) return 0;
  double n = (t_stop - t_start) / dt;
  return n < 9.0e18 ? (size_t)n : (size_t)9.0e18;
}

int sb_stats_smooth_counts(const double *counts, size_t n_counts, double dt, double sigma, size_t n_trains,
                           double *rate) {
  if (!(dt > 0) || !(sigma > 0)) SB_ERROR(SB_EINVAL, "instantaneous rate: dt and sigma must be > 0 (got %g, %g)", dt, sigma);
  if (n_counts < 2) return SB_OK;
  const double cutoff = 5.0;   /* Elephant's default; GaussianKernel.min_cutoff is 3 */
  if (!(cutoff * sigma / dt <= 5e7))
    SB_ERROR(SB_EINVAL, "instantaneous rate: sigma %g ms is %.3g times dt %g ms: a kernel of more than 1e8 points", sigma,
             sigma / dt, dt);
  size_t n_half = (size_t)ceil(cutoff * sigma / dt);
  size_t L = 2 * n_half + 1;
  double *k = sb_malloc(L * sizeof *k);
  if (!k) return SB_ENOMEM;
  /* t_arr = np.linspace(-cutoff*sigma, cutoff*sigma, 2*n_half+1): spacing cutoff*sigma/n_half,
   * not dt (Elephant's sampling); kernel in 1/ms, times 1000 -> Hz */
  double half = cutoff * sigma;
  for (size_t i = 0; i < L; i++) {
    double x = -half + 2.0 * half * (double)i / (double)(L - 1);
    k[i] = 1000.0 * exp(-0.5 * x * x / (sigma * sigma)) / (sqrt(2.0 * M_PI) * sigma);
  }
  double norm = n_trains ? 1.0 / (double)n_trains : 1.0;
  /* full convolution, kept from the kernel median (index n_half) for n_counts - 1 samples:
   * rate[i] = sum_j counts[j] k[i + n_half - j] */
  size_t n_out = n_counts - 1;
  for (size_t i = 0; i < n_out; i++) {
    size_t jlo = i + n_half >= L - 1 ? i + n_half - (L - 1) : 0;
    size_t jhi = i + n_half < n_counts - 1 ? i + n_half : n_counts - 1;
    double s = 0;
    for (size_t j = jlo; j <= jhi; j++)
      if (counts[j] != 0) s += counts[j] * k[i + n_half - j];
    rate[i] = s > 0 ? s * norm : 0.0;
  }
  sb_free(k);
  return SB_OK;
}

int sb_stats_instantaneous_rate(const double *const *trains, const size_t *n, size_t n_trains, double t_start,
                                double t_stop, double dt, double sigma, double *rate) {
  size_t n_out = sb_stats_irate_len(t_start, t_stop, dt);
  if (n_out == 0) SB_ERROR(SB_EINVAL, "instantaneous rate: need t_stop - t_start >= dt > 0 (got %g, %g, %g)", t_start, t_stop, dt);
  size_t nh = n_out + 1;
  double *h = sb_calloc(nh, sizeof *h);
  if (!h) return SB_ENOMEM;
  /* np.histogram(t, bins=nh, range=(t_start, t_stop + dt)): equal bins, last one closed */
  double hi = t_stop + dt, w = (hi - t_start) / (double)nh;
  for (size_t k = 0; k < n_trains; k++)
    for (size_t i = 0; i < n[k]; i++) {
      double x = trains[k][i];
      if (x < t_start || x > hi) continue;
      size_t b = x == hi ? nh - 1 : (size_t)((x - t_start) / w);
      if (b >= nh) b = nh - 1;
      h[b] += 1;
    }
  int st = sb_stats_smooth_counts(h, nh, dt, sigma, n_trains, rate);
  sb_free(h);
  return st;
}

/* ---- correlations ---- */

void sb_stats_corrcoef(const double *x, size_t K, size_t B, double *c) {
  double *mu = sb_malloc((K + 1) * sizeof *mu), *sd = sb_malloc((K + 1) * sizeof *sd);
  if (!mu || !sd) {   /* no status to return: NaN everywhere, sb_last_error() says why */
    for (size_t i = 0; i < K * K; i++) c[i] = NAN;
    sb_free(mu); sb_free(sd);
    return;
  }
  for (size_t i = 0; i < K; i++) {
    double s = 0;
    for (size_t b = 0; b < B; b++) s += x[i * B + b];
    mu[i] = B ? s / (double)B : 0;
    double ss = 0;
    for (size_t b = 0; b < B; b++) { double d = x[i * B + b] - mu[i]; ss += d * d; }
    sd[i] = sqrt(ss);
  }
  for (size_t i = 0; i < K; i++)
    for (size_t j = i; j < K; j++) {
      double v;
      if (!(sd[i] > 0) || !(sd[j] > 0)) v = NAN;
      else {
        double s = 0;
        for (size_t b = 0; b < B; b++) s += (x[i * B + b] - mu[i]) * (x[j * B + b] - mu[j]);
        v = s / (sd[i] * sd[j]);
      }
      c[i * K + j] = c[j * K + i] = v;
    }
  sb_free(mu);
  sb_free(sd);
}

void sb_stats_cch(const double *a, const double *b, size_t B, size_t L, double *cch) {
  for (size_t k = 0; k < 2 * L + 1; k++) {
    long lag = (long)k - (long)L;
    double s = 0;
    for (size_t i = 0; i < B; i++) {
      if (a[i] == 0) continue;
      long j = (long)i + lag;
      if (j >= 0 && (size_t)j < B) s += a[i] * b[j];
    }
    cch[k] = s;
  }
}

/* ---- STTC (Cutts & Eglen 2014) ---- */

/* Spikes of a with a spike of b within dt (each counted once). */
static size_t sttc_p(const double *a, size_t na, const double *b, size_t nb, double dt) {
  size_t c = 0, j = 0;
  for (size_t i = 0; i < na; i++) {
    while (j < nb && b[j] < a[i]) j++;   /* b[j] is the first >= a[i] */
    int close = (j < nb && fabs(b[j] - a[i]) <= dt) || (j > 0 && fabs(b[j - 1] - a[i]) <= dt);
    c += close;
  }
  return c;
}

/* Fraction of [t_start, t_stop] within dt of a spike of a (run_T in Elephant). */
static double sttc_t(const double *a, size_t n, double dt, double t_start, double t_stop) {
  double time = 2.0 * (double)n * dt;
  if (n == 1) {
    if (a[0] - t_start < dt) time += -dt + a[0] - t_start;
    if (a[0] + dt > t_stop) time += -dt - a[0] + t_stop;
  } else {
    for (size_t i = 0; i + 1 < n; i++) {
      double d = a[i + 1] - a[i];
      if (d < 2 * dt) time += -2 * dt + d;
    }
    if (a[0] - t_start < dt) time += a[0] - dt - t_start;
    if (t_stop - a[n - 1] < dt) time += -a[n - 1] - dt + t_stop;
  }
  return time / (t_stop - t_start);
}

double sb_stats_sttc(const double *a, size_t na, const double *b, size_t nb, double dt, double t_start,
                     double t_stop, sb_stats_why_code *why) {
  if (na == 0 || nb == 0) return nan_why(why, SB_WHY_NO_SPIKES);
  if (!(t_stop > t_start)) return nan_why(why, SB_WHY_EMPTY_WINDOW);
  double TA = sttc_t(a, na, dt, t_start, t_stop), TB = sttc_t(b, nb, dt, t_start, t_stop);
  double PA = (double)sttc_p(a, na, b, nb, dt) / (double)na;
  double PB = (double)sttc_p(b, nb, a, na, dt) / (double)nb;
  double idx;
  if (PA * TB == 1) idx = PB * TA == 1 ? 1.0 : 0.5 + 0.5 * (PB - TA) / (1 - PB * TA);
  else if (PB * TA == 1) idx = 0.5 + 0.5 * (PA - TB) / (1 - PA * TB);
  else idx = 0.5 * (PA - TB) / (1 - PA * TB) + 0.5 * (PB - TA) / (1 - PB * TA);
  return ok(why, idx);
}

/* ---- dissimilarities ---- */

/* sum_{i,j} exp(-|x_i - y_j| / tau) for sorted x, y in O(nx + ny): for each x_i the earlier
 * y's contribute e^{-(x_i - y_j)/tau} summed by a running decayed sum, the later ones symmetric. */
static double summed_kernel(const double *x, size_t nx, const double *y, size_t ny, double tau) {
  double s = 0;
  /* y_j <= x_i */
  double acc = 0, last = 0;
  size_t j = 0;
  for (size_t i = 0; i < nx; i++) {
    while (j < ny && y[j] <= x[i]) {
      acc = (j ? acc * exp(-(y[j] - last) / tau) : 0.0) + 1.0;   /* no exp of a huge argument at start */
      last = y[j];
      j++;
    }
    if (j > 0) s += acc * exp(-(x[i] - last) / tau);
  }
  /* y_j > x_i, walking backwards */
  acc = 0;
  last = 0;
  size_t jj = ny;
  for (size_t ii = nx; ii-- > 0;) {
    while (jj > 0 && y[jj - 1] > x[ii]) {
      acc = (jj < ny ? acc * exp(-(last - y[jj - 1]) / tau) : 0.0) + 1.0;
      last = y[jj - 1];
      jj--;
    }
    if (jj < ny) s += acc * exp(-(last - x[ii]) / tau);
  }
  return s;
}

double sb_stats_van_rossum(const double *a, size_t na, const double *b, size_t nb, double tau) {
  if (tau == 0) return sqrt((double)(na + nb));
  if (isinf(tau)) return fabs((double)na - (double)nb);
  double d2 = summed_kernel(a, na, a, na, tau) + summed_kernel(b, nb, b, nb, tau) - 2.0 * summed_kernel(a, na, b, nb, tau);
  return d2 > 0 ? sqrt(d2) : d2 < 0 ? 0.0 : d2;   /* rounding can give -0; NaN stays NaN */
}

/* Full DP on one segment (Victor & Purpura 1996, eq. for G[i][j]); row buffer of nb+1. */
static double vp_dp(const double *a, size_t na, const double *b, size_t nb, double q, double *row) {
  if (na == 0 || nb == 0) return (double)(na > nb ? na : nb);
  for (size_t j = 0; j <= nb; j++) row[j] = (double)j;
  for (size_t i = 1; i <= na; i++) {
    double diag = row[0];   /* G[i-1][j-1] */
    row[0] = (double)i;
    double ai = a[i - 1];
    for (size_t j = 1; j <= nb; j++) {
      double up = row[j];   /* G[i-1][j] */
      double v = fmin(up, row[j - 1]) + 1.0;
      double sh = diag + q * fabs(ai - b[j - 1]);
      diag = up;
      row[j] = sh < v ? sh : v;
    }
  }
  return row[nb];
}

/* Walk the segments of the merged trains separated by gaps >= 2/q: no optimal transformation
 * shifts a spike across such a gap (the shift would cost >= 2 = delete + insert), and shifts
 * never cross each other, so the distance is the sum over segments. Exact, and O(sum of
 * segment products) instead of O(na nb). If `row` is NULL only the work is counted. */
static double vp_segments(const double *a, size_t na, const double *b, size_t nb, double q, double *row,
                          double *cells) {
  double gap = 2.0 / q, d = 0;
  size_t i = 0, j = 0;
  *cells = 0;
  while (i < na || j < nb) {
    size_t i0 = i, j0 = j;
    double last = -INFINITY;
    for (;;) {
      double next;
      int from_a;
      if (i < na && (j >= nb || a[i] <= b[j])) { next = a[i]; from_a = 1; }
      else if (j < nb) { next = b[j]; from_a = 0; }
      else break;
      if (next - last >= gap && (i > i0 || j > j0)) break;
      last = next;
      if (from_a) i++; else j++;
    }
    *cells += (double)(i - i0) * (double)(j - j0);
    if (row) d += vp_dp(a + i0, i - i0, b + j0, j - j0, q, row);
  }
  return d;
}

double sb_stats_victor_purpura_cells(const double *a, size_t na, const double *b, size_t nb, double q) {
  if (q == 0 || isinf(q)) return 0;
  double cells;
  vp_segments(a, na, b, nb, q, NULL, &cells);
  return cells;
}

double sb_stats_victor_purpura(const double *a, size_t na, const double *b, size_t nb, double q) {
  if (q == 0) return fabs((double)na - (double)nb);
  if (isinf(q)) return (double)(na + nb);
  if (na == 0 || nb == 0) return (double)(na > nb ? na : nb);
  double *row = sb_malloc((nb + 1) * sizeof *row), cells;
  if (!row) return NAN;
  double d = vp_segments(a, na, b, nb, q, row, &cells);
  sb_free(row);
  return d;
}

/* ---- population synchrony ---- */

double sb_stats_golomb_chi(const double *pop, size_t B, double sum_var, size_t N, sb_stats_why_code *why) {
  if (B < 2 || N == 0) return nan_why(why, SB_WHY_FEW_BINS);
  if (!(sum_var > 0)) return nan_why(why, SB_WHY_ZERO_VARIANCE);
  double s = 0, ss = 0;
  for (size_t b = 0; b < B; b++) {
    double v = pop[b] / (double)N;
    s += v;
    ss += v * v;
  }
  double m = s / (double)B;
  double var_pop = ss / (double)B - m * m;
  if (var_pop < 0) var_pop = 0;
  return ok(why, sqrt(var_pop / (sum_var / (double)N)));
}
