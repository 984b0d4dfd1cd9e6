/* Spike-train analysis: readers for spike files (SONATA, legacy SONATA, NWB units tables,
 * BMTK's NWB-1 spike trains, NEST text recordings), statistics with Elephant's definitions
 * and edge-case conventions, a bounded-memory streaming summary, and PNG figures (PLplot).
 * Times are double ms everywhere in this API (files in seconds are converted on reading);
 * rates are Hz. Node ids are uint64 whatever integer type the file stores.
 * The library never prints; errors go through sb_status and sb_last_error(). */
#ifndef SB_ANALYSIS_H
#define SB_ANALYSIS_H

#include <stddef.h>
#include <stdint.h>

#include "sim/core.h"

/* ---- readers ---- */

typedef enum {
  SB_SPK_SONATA = 0,     /* /spikes/<pop>/{timestamps,node_ids} (SONATA 0.1+) */
  SB_SPK_SONATA_LEGACY,  /* /spikes/{gids,timestamps}, no population group (pre-1.0 BMTK) */
  SB_SPK_NWB_UNITS,      /* NWB 2.x /units: spike_times, spike_times_index, id (seconds) */
  SB_SPK_NWB_BMTK,       /* BMTK NWB-1 style /processing/<trial>/spike_train/<node_id>/data */
  SB_SPK_SONATA_NODES,   /* SONATA nodes file: populations with node counts, no spikes */
  SB_SPK_NEST_TEXT       /* NEST spike recorder text (.gdf/.dat): sender and time columns */
} sb_spk_kind;

typedef enum { SB_SORT_UNKNOWN = 0, SB_SORT_NONE, SB_SORT_BY_ID, SB_SORT_BY_TIME } sb_spk_sorting;

/* What the reader knows about one population before reading its spikes. */
typedef struct {
  char *name;               /* population name ("default" for the legacy layout, "units" for NWB) */
  size_t n_spikes;          /* number of spikes stored */
  size_t n_nodes;           /* number of nodes when the file says (nodes file, NWB units); 0 if unknown */
  sb_spk_sorting sorting;   /* from the `sorting` attribute (by_time/time, by_id/by_gid, none) */
  double time_scale;        /* factor from file units to ms (1 for ms, 1000 for s) */
  char *where;              /* HDF5 path or text file the spikes come from, for messages */
} sb_spk_pop_info;

typedef struct sb_spk_file sb_spk_file;

/* Open a spike file of any supported kind (detected from content, not from the name) and
 * describe its populations. Datasets are checked at open: presence, 1-D, numeric types,
 * timestamps/node_ids of equal length, a known `units` attribute.
 * Ownership: the caller closes with sb_spk_close. Errors: SB_EIO (cannot open), SB_EFORMAT
 * ("FILE: /spikes/exc/node_ids: length 9 differs from timestamps (10)", "not an HDF5 file
 * nor a NEST text recording", ...). Source: SONATA spec (AllenInstitute/sonata docs/SONATA_DEVELOPER_GUIDE.md,
 * "Spike file"), NWB 2 Units table (nwb-schema core nwb.misc.yaml), NEST 3 recording backend
 * "ascii" and NEST 2 .gdf files. */
int sb_spk_open(const char *path, sb_spk_file **f);
/* Close the file and free everything sb_spk_open allocated; NULL is a no-op. */
void sb_spk_close(sb_spk_file *f);
/* The detected kind of the file. */
sb_spk_kind sb_spk_file_kind(const sb_spk_file *f);
/* End of the simulated time in ms when the file records it (the root attribute t_stop of a
 * `spikebridge run` output, not of a checkpoint); NaN otherwise. `analyze` uses it as the
 * default --t-stop, so silent stretches at the end count in the rates. */
double sb_spk_t_stop(const sb_spk_file *f);
/* Human-readable name of a kind ("SONATA spikes", ...). Static storage. */
const char *sb_spk_kind_name(sb_spk_kind kind);
/* The path the file was opened with. Borrowed; valid until sb_spk_close. */
const char *sb_spk_file_path(const sb_spk_file *f);
/* Number of populations (0 for a SONATA file with an empty /spikes group). */
size_t sb_spk_n_pops(const sb_spk_file *f);
/* Borrowed; valid until sb_spk_close. NULL if `i` is out of range. */
const sb_spk_pop_info *sb_spk_pop(const sb_spk_file *f, size_t i);
/* Index of the population called `name`, or -1. */
long sb_spk_find_pop(const sb_spk_file *f, const char *name);

/* Read spikes [offset, offset+n) of population `pop` in file order into t_ms[n] (ms) and
 * ids[n] (either may be NULL). Reads only that window (HDF5 hyperslab), so a caller that
 * walks a population in chunks holds a bounded number of spikes.
 * Errors: SB_EFORMAT naming dataset and index for a NaN/infinite or negative time, or a
 * negative node id; SB_EINVAL for a window past the end; SB_EIO on read failure. */
int sb_spk_read(sb_spk_file *f, size_t pop, size_t offset, size_t n, double *t_ms, uint64_t *ids);

/* Every node id of population `pop` of a file that lists nodes: a SONATA nodes file
 * (/nodes/<pop>/node_id, or 0..n-1 when that dataset is absent), an NWB units table (/units/id,
 * units without spikes included), a BMTK NWB-1 file, or SONATA spikes whose population group
 * has the integer attribute n_nodes (written by `spikebridge run` and `eval --record`: 0..n-1). With them the summary counts silent
 * neurons (rate 0), as Elephant does when given their empty spike trains.
 * Ownership: *ids is allocated (sb_free). Errors: SB_EINVAL for files that list only spikes
 * (SONATA spikes, NEST text); SB_EFORMAT for a negative id; SB_EIO. */
int sb_spk_node_ids(sb_spk_file *f, size_t pop, uint64_t **ids, size_t *n);

/* ---- statistics on one spike train (sorted times in ms) ---- */

/* Why a statistic is NaN; SB_WHY_OK when it is defined. sb_stats_why() gives the text. */
typedef enum {
  SB_WHY_OK = 0,
  SB_WHY_NO_SPIKES,      /* no spikes in [t_start, t_stop] */
  SB_WHY_FEW_SPIKES,     /* fewer than 3 spikes (2 intervals) */
  SB_WHY_ZERO_MEAN,      /* zero mean count (Fano factor of a silent train) */
  SB_WHY_FEW_BINS,       /* fewer than 2 bins in [t_start, t_stop] */
  SB_WHY_ZERO_VARIANCE,  /* a binned train without variance (correlation undefined) */
  SB_WHY_ZERO_INTERVAL,  /* two consecutive intervals sum to 0 (coincident spikes) */
  SB_WHY_EMPTY_WINDOW,   /* t_stop <= t_start */
  SB_WHY_TOO_LARGE       /* skipped: the pair has too many spikes for an O(n m) measure */
} sb_stats_why_code;
/* The reason as text ("fewer than 3 spikes (2 intervals)"; "" for SB_WHY_OK). Static storage. */
const char *sb_stats_why(sb_stats_why_code why);

/* Mean firing rate in Hz: spikes with t_start <= t <= t_stop (both ends included) divided by
 * (t_stop - t_start). NaN (why = SB_WHY_EMPTY_WINDOW) when t_stop <= t_start.
 * Source: elephant.statistics.mean_firing_rate. `why` may be NULL (same for all below). */
double sb_stats_mean_rate(const double *t, size_t n, double t_start, double t_stop, sb_stats_why_code *why);

/* Inter-spike intervals isi[n-1] = t[i+1] - t[i] (ms); returns n-1 (0 when n < 2).
 * Source: elephant.statistics.isi (np.diff). */
size_t sb_stats_isi(const double *t, size_t n, double *isi);

/* Coefficient of variation of intervals: std (ddof 0) / mean, as scipy.stats.variation,
 * which elephant.statistics.cv is. Edge case: NaN (SB_WHY_FEW_SPIKES) for fewer than 2
 * intervals. Elephant (scipy) returns 0.0 for one interval; we return NaN like cv2/lv with
 * with_nan=True, since one interval has no spread to measure. */
double sb_stats_cv(const double *isi, size_t n, sb_stats_why_code *why);
/* CV2 = 2/(N-1) sum |I_{i+1} - I_i| / (I_{i+1} + I_i) (Holt et al. 1996).
 * NaN (SB_WHY_FEW_SPIKES) for fewer than 2 intervals, as elephant.statistics.cv2(with_nan=True). */
double sb_stats_cv2(const double *isi, size_t n, sb_stats_why_code *why);
/* LV = 3/(N-1) sum ((I_i - I_{i+1}) / (I_i + I_{i+1}))^2 (Shinomoto et al. 2003).
 * NaN (SB_WHY_FEW_SPIKES) for fewer than 2 intervals, as elephant.statistics.lv(with_nan=True). */
double sb_stats_lv(const double *isi, size_t n, sb_stats_why_code *why);

/* Number of bins of width `bin` in [t_start, t_stop]: floor((t_stop - t_start)/bin), rounded
 * up when within 1e-8 of the next integer. Source: elephant.conversion.BinnedSpikeTrain with
 * elephant.utils.round_binning_errors (tolerance 1e-8). */
size_t sb_stats_n_bins(double t_start, double t_stop, double bin);
/* Bin index of a spike at t, or -1 if it falls outside (t < t_start, t > t_stop, or a bin
 * >= n_bins: a spike exactly at t_stop is dropped when the window is a whole number of bins).
 * Same convention as BinnedSpikeTrain (spikes within 1e-8 bins of an edge go to the next bin). */
long sb_stats_bin_index(double t, double t_start, double t_stop, double bin, size_t n_bins);
/* Add the spikes of one train into counts[n_bins] (+=). Returns the number of spikes binned. */
size_t sb_stats_bin(const double *t, size_t n, double t_start, double t_stop, double bin, size_t n_bins,
                    double *counts);

/* Fano factor var(c)/mean(c) of counts c[n] (var with ddof 0). NaN (SB_WHY_ZERO_MEAN) when all
 * counts are 0, (SB_WHY_FEW_BINS) when n < 2. Source: elephant.statistics.fanofactor, here
 * applied to the counts of one train in consecutive bins (each bin a "trial"). */
double sb_stats_fano(const double *c, size_t n, sb_stats_why_code *why);

/* Instantaneous rate (Hz) by Gaussian kernel smoothing, exactly as
 * elephant.statistics.instantaneous_rate(kernel=GaussianKernel(sigma), cutoff=5,
 * center_kernel=True, trim=False): spikes are histogrammed in int((t_stop-t_start)/dt)+1 bins
 * over [t_start, t_stop+dt] (np.histogram, last bin closed), convolved with the kernel sampled
 * at 2*ceil(5 sigma/dt)+1 points spread evenly over [-5 sigma, 5 sigma] (so not exactly dt
 * apart), kept from the kernel median on, giving n_out = sb_stats_irate_len() = int((t_stop -
 * t_start)/dt) samples at t_start + i dt; negatives clipped to 0.
 * `trains` of `n_trains` trains (t[k], n[k]); rate[n_out] is the mean over the trains
 * (Elephant returns one column per train; their mean is the population rate).
 * Errors: SB_EINVAL if n_out is 0 or sigma <= 0; SB_ENOMEM. */
size_t sb_stats_irate_len(double t_start, double t_stop, double dt);
int sb_stats_instantaneous_rate(const double *const *trains, const size_t *n, size_t n_trains, double t_start,
                                double t_stop, double dt, double sigma, double *rate);
/* The smoothing step alone, on a histogram counts[n_counts] built as above (bins of width dt
 * from t_start, n_counts = n_out + 1); writes rate[n_counts - 1] = smoothed counts / n_trains,
 * Hz. The streaming summary builds the histogram chunk by chunk and calls this. */
int sb_stats_smooth_counts(const double *counts, size_t n_counts, double dt, double sigma, size_t n_trains,
                           double *rate);

/* Pearson correlation coefficients of binned counts: x is (K, B) row-major, c is (K, K).
 * C[i,j] = <x_i - mu_i, x_j - mu_j> / sqrt(<..i..><..j..>); rows of silent (zero-variance)
 * trains are NaN. Source: elephant.spike_train_correlation.correlation_coefficient
 * (binary=False) on a BinnedSpikeTrain. */
void sb_stats_corrcoef(const double *x, size_t K, size_t B, double *c);

/* Cross-correlogram of two binned trains a[B], b[B] for lags -L..L (in bins):
 * cch[L + lag] = sum_i a[i] b[i + lag] (zero outside). A positive lag means a spike of `b`
 * follows one of `a`. Source: elephant.spike_train_correlation.cross_correlation_histogram
 * (window=[-L, L], border_correction=False, binary=False). cch has 2L+1 entries. */
void sb_stats_cch(const double *a, const double *b, size_t B, size_t L, double *cch);

/* Spike time tiling coefficient (Cutts & Eglen 2014, J Neurosci 34:14288) with window dt,
 * recording [t_start, t_stop]. NaN (SB_WHY_NO_SPIKES) if either train is empty. Same 0/0 rules
 * as elephant.spike_train_correlation.spike_time_tiling_coefficient. Trains sorted. */
double sb_stats_sttc(const double *a, size_t na, const double *b, size_t nb, double dt, double t_start,
                     double t_stop, sb_stats_why_code *why);

/* van Rossum distance (van Rossum 2001) with time constant tau (ms), in Elephant's
 * normalisation (an empty train vs one spike gives 1; divide by sqrt(2) for the paper's):
 * D^2 = sum_aa' e^{-|a-a'|/tau} + sum_bb' e^{-|b-b'|/tau} - 2 sum_ab e^{-|a-b|/tau}.
 * tau = 0 gives sqrt(na + nb); tau = inf gives |na - nb|, as Elephant. O(na + nb) with the
 * Houghton & Kreuz 2012 recursion. Source: elephant.spike_train_dissimilarity.van_rossum_distance. */
double sb_stats_van_rossum(const double *a, size_t na, const double *b, size_t nb, double tau);

/* Victor-Purpura distance (Victor & Purpura 1996) with cost q (1/ms) per ms of shift; insert
 * and delete cost 1. q = 0 gives |na - nb|, q = inf gives na + nb (Elephant's conventions).
 * Trains sorted. The DP runs separately on the segments of the merged trains split at gaps
 * >= 2/q (no optimal transformation shifts a spike across one, so the sum is exact): time
 * O(sum of segment products) <= O(na nb), memory O(nb). NaN only if allocation fails.
 * Source: elephant.spike_train_dissimilarity.victor_purpura_distance (same values). */
double sb_stats_victor_purpura(const double *a, size_t na, const double *b, size_t nb, double q);
/* DP cells sb_stats_victor_purpura would evaluate (its cost), for callers that cap work. */
double sb_stats_victor_purpura_cells(const double *a, size_t na, const double *b, size_t nb, double q);

/* Golomb's synchrony measure chi (Golomb & Rinzel 1993; Golomb 2007, Scholarpedia 2(1):1347)
 * on binned spike counts: chi^2 = var_t(V) / mean_i var_t(x_i) with V(t) = mean_i x_i(t).
 * Inputs: the population count histogram pop[B] (sum of x_i), the sum over neurons of their
 * count variances (ddof 0) `sum_var`, and the number of neurons N. chi in [0, 1]: 0 for
 * independent trains (it falls as 1/sqrt(N)), 1 for identical ones. NaN (SB_WHY_ZERO_VARIANCE)
 * when every train has zero variance. Not in Elephant; stated in the docs. */
double sb_stats_golomb_chi(const double *pop, size_t B, double sum_var, size_t N, sb_stats_why_code *why);

/* ---- streaming summary of one population ---- */

typedef struct {
  double t_start;     /* ms; default 0 (Elephant's default for plain arrays) */
  double t_stop;      /* ms; NaN = last spike time of the population (Elephant's default) */
  double bin;         /* ms, for Fano, PSTH, correlations, chi; default 5 */
  double sigma;       /* ms, Gaussian kernel of the instantaneous rate; default 2*bin */
  size_t window;      /* spikes read per chunk (the memory bound); default 1<<20 */
  size_t n_pairs_neurons; /* neurons (most active) for pairwise measures; default 20 */
  double sttc_dt;     /* ms; default 5 (Elephant's default 0.005 s) */
  double vr_tau;      /* ms; default 10 */
  double vp_q;        /* 1/ms; default 0.1 (a 10 ms shift costs 1) */
  double cch_max_lag; /* ms; default 50 */
  int progress;       /* 1: a progress line on stderr when it is a terminal (and not sb_quiet) */
  const uint64_t *node_ids;  /* optional (n_node_ids): every node of the population, so neurons
                              * without spikes count (sb_spk_node_ids); NULL = ids seen in spikes.
                              * Non-NULL (even with n_node_ids 0) is a closed list: a spike of
                              * another id is refused (SB_EFORMAT) */
  size_t n_node_ids;
} sb_stats_opts;

/* Defaults as listed above. */
void sb_stats_opts_default(sb_stats_opts *o);

/* Per-neuron results, ordered by node id. */
typedef struct {
  uint64_t id;
  size_t n;            /* spikes in [t_start, t_stop] */
  double rate;         /* Hz */
  double cv, cv2, lv, fano;
  unsigned char why_cv, why_cv2, why_lv, why_fano;   /* sb_stats_why_code */
} sb_stats_neuron;

#define SB_ISI_HIST_BINS 60   /* log10-spaced from 0.1 ms to 1e5 ms */

typedef struct {
  char *population;
  size_t n_spikes_file;    /* spikes stored for the population */
  size_t n_spikes;         /* spikes in [t_start, t_stop] */
  double t_last;           /* ms: the latest spike time of the population in the file (-inf: none) */
  size_t n_neurons;        /* distinct node ids with a spike in the file, plus opts.node_ids */
  double t_start, t_stop, bin;
  double mean_rate;        /* Hz, mean over neurons of their rates */
  double pop_rate;         /* Hz, n_spikes / n_neurons / duration */
  double mean_cv, mean_cv2, mean_lv, mean_fano;  /* over neurons where defined (NaN if none) */
  size_t n_cv, n_cv2, n_lv, n_fano;              /* how many neurons were defined */
  double chi;              /* Golomb's chi on binned counts */
  sb_stats_why_code why_chi;
  size_t n_bins;           /* PSTH bins */
  double *psth;            /* (n_bins) population rate, Hz: counts / (n_neurons * bin) (time_histogram output='rate') */
  double *irate;           /* (n_irate) Gaussian-smoothed population rate, Hz, at t_start + i*irate_dt */
  size_t n_irate;
  double irate_dt;         /* ms, sampling period of irate (= bin) */
  double irate_sigma;      /* ms, the Gaussian kernel's sigma */
  double isi_hist[SB_ISI_HIST_BINS];  /* counts of all intervals, log bins */
  double isi_edges[SB_ISI_HIST_BINS + 1];  /* ms */
  sb_stats_neuron *neurons;    /* (n_neurons), by node id */
  /* pairwise measures over the K most active neurons (ties by lower id) */
  size_t K;
  uint64_t *pair_ids;      /* (K) */
  double *corrcoef;        /* (K, K) */
  double *sttc;            /* (K, K) */
  double *van_rossum;      /* (K, K) */
  double *victor_purpura;  /* (K, K); NaN when a pair is too large */
  double mean_corrcoef, mean_sttc;   /* over pairs i<j where defined */
  int pairs_truncated;     /* 1 if a pair neuron had more than 200000 spikes in the window */
  double pairs_t_stop;     /* ms: end of the pairs' window, t_stop, or with pairs_truncated the
                            * earliest 200000th spike of a capped train (window [t_start, it)) */
  size_t cch_L;            /* lags -L..L bins */
  double *cch;             /* (2L+1) CCH summed over all pairs i<j of the K neurons */
  size_t peak_window_spikes;   /* most spikes held at once while streaming (the bound) */
  int passes;              /* passes over the file */
} sb_stats_summary;

/* Summarise population `pop` of `f` reading at most o->window spikes at a time: per-neuron
 * running state (count, first/last spike, Welford ISI mean/M2, previous interval for CV2/LV,
 * current bin and count sums for the Fano factor) is updated chunk by chunk; the population
 * histogram, ISI histogram and chi come from the same pass. Needs each neuron's spikes in time
 * order: true for by_time and by_id files; for other files the population is processed in
 * node-id ranges of at most `window` spikes each (one extra pass over the file per range).
 * A second pass collects the spikes of the K most active neurons for the pairwise measures
 * (at most 200000 spikes each: beyond that, every pairwise measure is taken over
 * [t_start, pairs_t_stop), where pairs_t_stop is the earliest 200000th spike time of a capped
 * neuron, so that all K trains are complete in it; s->pairs_truncated says so).
 * Ownership: *out is allocated; free with sb_stats_summary_free.
 * Errors: reader errors (bad times), SB_EINVAL for bad options (bin <= 0, t_stop <= t_start),
 * SB_ENOMEM. */
int sb_stats_summarize(sb_spk_file *f, size_t pop, const sb_stats_opts *o, sb_stats_summary **out);
/* Free a summary and all its arrays; NULL is a no-op. */
void sb_stats_summary_free(sb_stats_summary *s);

/* ---- figures ---- */

/* Write PNG figures of population `pop` into directory `dir` (created if missing):
 * <pop>_raster.png (node id vs time, at most 200000 points evenly subsampled),
 * <pop>_rate.png (PSTH bars and the smoothed rate, Hz vs ms), <pop>_isi.png (ISI histogram,
 * log time axis), <pop>_cv.png (distribution of per-neuron CV). Drawn with PLplot's pngcairo
 * driver, each into a temporary name renamed once the PNG is checked complete (it ends with
 * the IEND chunk: a full disk or a file size limit cut it short and PLplot reported nothing).
 * Errors: SB_EIO if the directory cannot be created or a PNG is incomplete (the temporary file
 * is removed; the message names the figure and the likely reason); reader errors. */
int sb_stats_plot(sb_spk_file *f, size_t pop, const sb_stats_summary *s, const char *dir);
/* Check before any figure is drawn that the figures of every population in pops[n_pops] can
 * be written into `dir`: creates `dir` when missing, creates and removes each population's
 * longest (temporary) file name, and refuses two populations whose names map to the same files
 * ('/' and ' ' become '_'). On an error a directory it created is removed again, so nothing is
 * left. sb_stats_plot runs it for its own population; `analyze --plot` for all of them first.
 * Errors: SB_EINVAL naming the population (name too long for a file name, a clash); SB_EIO
 * (directory not creatable, not a directory, cannot create files). */
int sb_stats_plot_check(const char *dir, const char *const *pops, size_t n_pops);
/* sb_stats_plot in two steps, so that a caller plotting several populations leaves no figure
 * when a later one fails: sb_stats_plot_stage (after sb_stats_plot_check of the population's
 * names, which it does not repeat) draws and checks the four PNGs under their
 * temporary names (<final>.tmp.<pid>.png; on an error it removes those of this population);
 * sb_stats_plot_finish renames the staged figures of pops[n_pops] to their final names
 * (commit = 1) or removes them (commit = 0). Errors: as sb_stats_plot; finish: SB_EIO when a
 * rename fails (the figures not yet renamed are removed). */
int sb_stats_plot_stage(sb_spk_file *f, size_t pop, const sb_stats_summary *s, const char *dir);
int sb_stats_plot_finish(const char *dir, const char *const *pops, size_t n_pops, int commit);

#endif
