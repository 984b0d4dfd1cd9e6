/* spikebridge core: status codes and error context, allocation, progress line, RNG streams,
 * HDF5 helpers. Every module builds on this; it knows nothing about neurons or layers.
 * Part of the sim module (sim/sim.h includes it). */
#ifndef SB_CORE_H
#define SB_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <hdf5.h>
#include <gsl/gsl_rng.h>

#define SB_VERSION "0.1.0"

/* ---- status codes and error context ---- */

/* Functions that can fail return an sb_status; results go out through pointer arguments.
 * SB_NOSPIKE is indicative (no threshold crossing in an interval), not an error. */
typedef enum {
  SB_NOSPIKE = -1,
  SB_OK = 0,
  SB_EINVAL,   /* bad argument or bad input value (file, field, expected vs got in message) */
  SB_ENOMEM,   /* allocation failed */
  SB_EIO,      /* file cannot be opened, read or written */
  SB_EFORMAT,  /* file opened but its content is not what was expected */
  SB_ENOCONV,  /* a numerical method did not converge (root bracket, ODE step) */
  SB_EMPI,     /* MPI call failed */
  SB_EUNSUPPORTED /* valid input that this build does not handle (unsupported layer, ...) */
} sb_status;

/* Record "message" for the calling thread and return `code`.
 * The message should name the file, the field (JSON path, HDF5 dataset) and what was
 * expected versus what was found: "brunel.json: populations.exc.params.tau_m: must be > 0 (got -20)".
 * `src_file`/`src_line` are the C source location, kept for debugging (sb_last_error_where).
 * Thread-safe: each thread has its own slot. This is the place for a breakpoint. */
#define SB_ERRMSG_MAX 2048   /* the last error's message buffer, bytes */
int sb_error_set_(const char *src_file, int src_line, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define SB_ERROR(code, ...) return sb_error_set_(__FILE__, __LINE__, (code), __VA_ARGS__)
#define SB_SET_ERROR(code, ...) sb_error_set_(__FILE__, __LINE__, (code), __VA_ARGS__)

/* Prefix the current thread's message with "prefix: " (adds context on the way up, e.g. the
 * file name a lower layer did not know). Returns `code` unchanged. */
int sb_error_prefix_(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Sets the last error's message and source location back to saved copies (after calls that may
 * have replaced them). */
void sb_error_restore_(const char *msg, const char *where);

/* The calling thread's last message ("" if none). Borrowed; valid until the next error. */
const char *sb_last_error(void);
/* "file.c:123" of the last error in the library source. Borrowed. */
const char *sb_last_error_where(void);
/* Clear the calling thread's message. */
void sb_error_clear(void);
/* Short text for a code ("invalid input", ...). Static storage. */
const char *sb_strerror(int code);
/* Process exit status for a code: 0 for SB_OK, 2 for usage/input errors (EINVAL, EFORMAT,
 * EUNSUPPORTED), 1 for runtime failures (ENOMEM, EIO, ENOCONV, EMPI). */
int sb_exit_code(int code);

/* ---- input and output paths ---- */

/* Check that `path` names an existing, readable regular file (or a device such as /dev/stdin
 * that can be read). Errors: SB_EINVAL "PATH: no such file", "PATH: is a directory, expected a
 * file", "PATH: not readable (permission denied)". Input errors map to exit status 2. */
int sb_input_check(const char *path);
/* Check, before any long work, that an output file can be written at `path`: its directory
 * exists and is writable, and `path` is not a directory, a device, a FIFO or a socket (which
 * writing under a temporary name and renaming would destroy). A symlink to a regular file is
 * accepted (the file it points to is replaced). Errors: SB_EINVAL naming the path and why. */
int sb_output_check(const char *path);
/* For I/O error messages: " (no space left: the file system of PATH has N kB free)" when that file
 * system has less than 1 MiB free for unprivileged writes, else "". Static storage, overwritten
 * by the next call. */
const char *sb_space_note(const char *path);
/* The whole file at `path` into a new buffer (*buf, NUL-appended, *len bytes without it; free
 * with sb_free). Errors: SB_EIO "PATH: cannot read: <reason>", SB_ENOMEM. */
int sb_read_file(const char *path, char **buf, size_t *len);
/* 1 when path names a pipe, FIFO, socket or character device (readable once, and opening a FIFO
 * blocks until a writer comes), 0 for a regular file or one that does not exist. */
int sb_is_stream(const char *path);
/* The longest file name the file system of directory `dir` allows (pathconf; "." when `dir`
 * does not exist yet; 255 when unknown). */
long sb_name_max(const char *dir);
/* The fingerprint of the file at `path` into buf[cap]: "crc32 <8 hex>, <n> bytes" (zlib's CRC-32
 * of its bytes and its size), so that a checkpoint or a sweep's run file can tell that a model
 * file was edited since. SB_OK, or SB_EIO/SB_ENOMEM when it cannot be read (message set). */
int sb_file_fingerprint(const char *path, char *buf, size_t cap);
/* The memory this process may use, in bytes: the smallest of the machine's physical memory
 * (sysconf), the address-space and data-segment limits (`ulimit -v`, `ulimit -d`) and its cgroup's
 * memory limit (cgroup v2 memory.max, v1 memory.limit_in_bytes, at every level of the process's
 * cgroup path under /sys/fs/cgroup: a Slurm job's --mem, a container's limit). SIZE_MAX when
 * none is known. *what (unless NULL) names the limit that applies, for messages ("physical
 * memory", "the address-space limit (ulimit -v)", ...; static storage). Used by the up-front
 * size checks, which refuse what cannot fit with an input error instead of running into the
 * OOM killer or an allocation failure. */
size_t sb_mem_limit(const char **what);
/* The smallest cgroup memory limit for the cgroup lines `proc_cgroup` (the contents of
 * /proc/self/cgroup) under the cgroup mount `root` (/sys/fs/cgroup), SIZE_MAX when none (a
 * testable part of sb_mem_limit). */
size_t sb_cgroup_mem_limit(const char *proc_cgroup, const char *root);
/* Same for an output directory (created by the caller if missing): `dir` is a directory, or
 * does not exist and its parent is a writable directory. */
int sb_output_dir_check(const char *dir);
/* SB_EINVAL when `out` and `in` both exist and are the same file (same device and inode, so
 * links and other spellings count): an output must never replace the command's own input. */
int sb_output_not_input(const char *out, const char *in);

/* ---- allocation ---- */

/* malloc/calloc/realloc/free wrappers. All library allocation goes through them so that
 * tests can make the n-th call fail (sb_alloc_fail_after). On failure they return NULL and
 * set an SB_ENOMEM message with the size; the caller returns SB_ENOMEM. free(NULL) is a no-op. */
void *sb_malloc(size_t size);
void *sb_calloc(size_t n, size_t size);
void *sb_realloc(void *p, size_t size);
/* Zeroed n x size bytes at a multiple of align (a power of two, >= sizeof(void *)); free with sb_free. */
void *sb_calloc_aligned(size_t n, size_t size, size_t align);
void sb_free(void *p);
char *sb_strdup(const char *s);
/* Test hook: the n-th allocation from now fails (n >= 1); n = 0 disables. Not thread-safe. */
void sb_alloc_fail_after(long n);

/* ---- progress line ---- */

/* A single self-overwriting status line on a terminal ("\r...\033[K"), at most ~10 updates/s.
 * When `out` is not a terminal (a batch job's log file), a plain line "progress: ...\n" every
 * `log_interval` seconds instead (60 s; environment SB_PROGRESS_INTERVAL overrides, 0 turns
 * it off). Nothing when quiet.
 * Usage: sb_progress p; sb_progress_init(&p, stderr, quiet); ... sb_progress_update(&p, "t=%g", t);
 * ... sb_progress_done(&p); */
typedef struct {
  FILE *out;
  int enabled;         /* 0 off, 1 terminal line, 2 log lines */
  double t_start;      /* wall clock at init, s */
  double t_last;       /* wall clock of last printed update, s */
  double log_interval; /* s between log lines (mode 2) */
  int printed;         /* something is on the line and must be cleared */
} sb_progress;

void sb_progress_init(sb_progress *p, FILE *out, int quiet);
/* Force a mode: 0 off, 1 terminal line, 2 log lines (tests, and --progress=always). */
void sb_progress_force(sb_progress *p, int enabled);
void sb_progress_update(sb_progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Clear the line so the next output starts clean. */
void sb_progress_done(sb_progress *p);
/* Seconds since the progress line was initialised. */
double sb_progress_elapsed(const sb_progress *p);

/* Process-wide quiet flag, set by the CLI's --quiet. Library code that reports progress
 * passes it to sb_progress_init. */
extern int sb_quiet;

/* Monotonic wall clock in seconds. */
double sb_wall_time(void);
/* Peak resident set size of this process in bytes (0 if unknown). Linux: VmHWM. */
size_t sb_peak_rss(void);

/* ---- RNG streams ---- */

/* Purposes for RNG streams: a stream is keyed by (seed, purpose, id) and never by thread,
 * so results do not depend on the number of threads or ranks. */
enum {
  SB_RNG_CONNECT = 1,  /* connectivity of a projection (id = projection index, or target id) */
  SB_RNG_WEIGHT  = 2,  /* weight/delay draws */
  SB_RNG_INIT    = 3,  /* initial state (id = neuron) */
  SB_RNG_POISSON = 4,  /* Poisson input (id = target neuron) */
  SB_RNG_SHUFFLE = 5,  /* data shuffling (id = epoch) */
  SB_RNG_PARAM   = 6,  /* ANN parameter initialisation */
  SB_RNG_NOISE   = 7,  /* GAN noise, dropout, misc */
  SB_RNG_SWEEP   = 8,  /* random parameter samples in sweeps */
  SB_RNG_USER    = 100 /* first free value */
};

/* Allocate a GSL generator (gsl_rng_taus2: 24 bytes of state, period 2^88, L'Ecuyer 1996)
 * whose full state is set from a SplitMix64 hash of (seed, purpose, id), so different keys
 * give independent-looking streams and the same key repeats exactly.
 * Ownership: caller frees with gsl_rng_free. Returns NULL (and sets SB_ENOMEM) on failure. */
gsl_rng *sb_rng_alloc(uint64_t seed, uint32_t purpose, uint64_t id);
/* Re-key an existing sb_rng_alloc'd generator in place (no allocation). */
void sb_rng_reseed(gsl_rng *r, uint64_t seed, uint32_t purpose, uint64_t id);
/* SplitMix64 mix of a 64-bit value (Steele, Lea, Flood 2014). */
uint64_t sb_rng_mix64(uint64_t x);
/* 1 if `state` (`size` bytes, as gsl_rng_state/gsl_rng_size give them) is a valid state of the
 * taus2 generator behind sb_rng_alloc: three 32-bit components s1 > 1, s2 > 7, s3 > 15 (an all-zero
 * state draws zeros forever). Used to check states read back from files (checkpoints). */
int sb_rng_state_valid(const void *state, size_t size);

/* ---- HDF5 helpers ---- */

/* Silence HDF5's automatic error-stack printing (errors are reported through sb_status), and
 * skip its clean-up at exit (after a failed write it crashed there). Call first in main(). */
void sb_h5_quiet(void);
/* The same for the calling thread: HDF5's thread-safe build keeps an error stack, and its
 * printing switch, per thread (worker threads that write recordings or checkpoints). */
void sb_h5_quiet_thread(void);

/* A file being written under a temporary name ("<path>.tmp.<pid>") and renamed to `path`
 * only by sb_h5_commit, so a failed or killed run never leaves a half-written file under
 * the final name. */
typedef struct {
  hid_t file;        /* HDF5 file id, valid between create and commit/abort */
  char *path;        /* final name (owned) */
  char *tmp_path;    /* temporary name (owned) */
} sb_h5_out;

/* Create `path`'s temporary file (truncating any stale one). Errors: SB_EIO naming the path. */
int sb_h5_create(sb_h5_out *out, const char *path);
/* Flush, close and atomically rename to the final name. Errors: SB_EIO. Frees names either way. */
int sb_h5_commit(sb_h5_out *out);
/* Close and delete the temporary file; the final name is untouched. Safe to call twice. */
void sb_h5_abort(sb_h5_out *out);
/* Delete every temporary file registered by sb_h5_create and not yet committed/aborted.
 * Async-signal-safe (unlink only); the CLI calls it from its SIGINT/SIGTERM handler. */
void sb_h5_cleanup_on_signal(void);

/* Open an existing HDF5 file read-only. Errors: SB_EIO if missing/unreadable,
 * SB_EFORMAT if it is not an HDF5 file (message names the path). */
int sb_h5_open_read(const char *path, hid_t *file);

/* Create all missing groups along "a/b/c" below `loc` and return the last (caller closes).
 * Returns a negative id on failure. */
hid_t sb_h5_group(hid_t loc, const char *path);

/* Attributes on any object. Write functions replace an existing attribute of that name. */
int sb_h5_attr_write_string(hid_t obj, const char *name, const char *value);
/* Read a string attribute (fixed or variable length) into a new buffer (caller sb_free's).
 * Errors: SB_EFORMAT if absent or not a string. */
int sb_h5_attr_read_string(hid_t obj, const char *name, char **value);
int sb_h5_attr_write_doubles(hid_t obj, const char *name, const double *v, size_t n);
/* Read up to `cap` doubles (converted from any numeric type); `*n` gets the element count. */
int sb_h5_attr_read_doubles(hid_t obj, const char *name, double *v, size_t cap, size_t *n);
int sb_h5_attr_write_int64s(hid_t obj, const char *name, const int64_t *v, size_t n);
int sb_h5_attr_read_int64s(hid_t obj, const char *name, int64_t *v, size_t cap, size_t *n);
/* 1 if the attribute exists, 0 if not. */
int sb_h5_attr_exists(hid_t obj, const char *name);

/* Write a 1-D dataset of `n` elements of memory type `mtype` (e.g. H5T_NATIVE_DOUBLE),
 * stored as `ftype`, chunked and deflate-compressed when n is large. */
int sb_h5_write_1d(hid_t loc, const char *name, hid_t ftype, hid_t mtype, const void *data, size_t n);
/* Write an N-d float32 dataset with dims[0..rank-1]. */
int sb_h5_write_float(hid_t loc, const char *name, const float *data, int rank, const size_t *dims);
/* Read a whole dataset converted to `mtype` into a new buffer (caller sb_free's).
 * `dims` (may be NULL) receives up to `max_rank` extents; `*rank` (may be NULL) the rank.
 * Errors: SB_EFORMAT if `name` is missing ("<file>: <name>: missing dataset"). */
int sb_h5_read(hid_t loc, const char *name, hid_t mtype, void **data, size_t *n,
               int *rank, size_t *dims, int max_rank);
/* 1 if a link `name` exists below `loc` (intermediate groups checked), else 0. */
int sb_h5_exists(hid_t loc, const char *name);

#endif
