/* Input and output path checks, done before long work so that a typo in -o fails in a second,
 * not after an hour of training, and so that no device or FIFO is ever replaced by a file. */
#include "sim/core.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <pthread.h>
#include <unistd.h>
#include <zlib.h>

/* The first leading component of `path` that exists but is not a directory (into `bad`), for
 * "a/b.h5: 'a' is not a directory" instead of "no such file". 0 if there is none. */
static int non_dir_prefix(const char *path, char *bad, size_t cap) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s", path);
  for (char *s = strchr(tmp + 1, '/'); s; s = strchr(s + 1, '/')) {
    *s = 0;
    struct stat st;
    if (stat(tmp, &st) == 0 && !S_ISDIR(st.st_mode)) {
      snprintf(bad, cap, "%s", tmp);
      return 1;
    }
    *s = '/';
  }
  return 0;
}

int sb_input_check(const char *path) {
  struct stat st;
  if (!path || !*path) SB_ERROR(SB_EINVAL, "input file: empty path");
  if (stat(path, &st) != 0) {
    char bad[4096];
    if (errno == ENOTDIR && non_dir_prefix(path, bad, sizeof bad))
      SB_ERROR(SB_EINVAL, "%s: '%s' is not a directory (it is a file)", path, bad);
    if (errno == ENOENT || errno == ENOTDIR) SB_ERROR(SB_EINVAL, "%s: no such file", path);
    SB_ERROR(SB_EINVAL, "%s: cannot open: %s", path, strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) SB_ERROR(SB_EINVAL, "%s: is a directory, expected a file", path);
  if (access(path, R_OK) != 0) SB_ERROR(SB_EINVAL, "%s: not readable (permission denied)", path);
  return SB_OK;
}

#define SB_OUTPUT_NAME_SPARE 12   /* ".tmp." and a pid (Linux: at most 7 digits) */

/* Directory part of `path` into `dir` ("." for a bare name). */
static void dir_of(const char *path, char *dir, size_t cap) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s", path);
  snprintf(dir, cap, "%s", dirname(tmp));
}

/* Can a new file be created in `dir`? Permission bits pass for root on read-only or pseudo
 * file systems (/proc), so try it: create and remove an empty probe file. */
static int dir_accepts_files(const char *dir) {
  char probe[4200];
  snprintf(probe, sizeof probe, "%s/.sb-probe.%ld", dir, (long)getpid());
  int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) return errno == EEXIST ? 1 : 0;
  close(fd);
  unlink(probe);
  return 1;
}

int sb_output_check(const char *path) {
  struct stat st;
  if (!path || !*path) SB_ERROR(SB_EINVAL, "output file: empty path");
  if (lstat(path, &st) == 0) {
    if (S_ISLNK(st.st_mode)) {
      if (stat(path, &st) != 0) SB_ERROR(SB_EINVAL, "%s: is a dangling symbolic link", path);
      if (!S_ISREG(st.st_mode)) SB_ERROR(SB_EINVAL, "%s: links to something that is not a regular file", path);
    } else if (S_ISDIR(st.st_mode)) {
      SB_ERROR(SB_EINVAL, "%s: is a directory, expected an output file name", path);
    } else if (!S_ISREG(st.st_mode)) {
      SB_ERROR(SB_EINVAL, "%s: exists and is not a regular file (device, FIFO or socket); refusing to replace it", path);
    }
  }
  size_t len = strlen(path);
  if (path[len - 1] == '/')
    SB_ERROR(SB_EINVAL, "%s: ends with '/': expected an output file name, not a directory", path);
  char dir[4096], bad[4096];
  dir_of(path, dir, sizeof dir);
  /* the file is written as NAME.tmp.PID, then renamed */
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  long name_max = sb_name_max(dir);
  if ((long)strlen(base) + SB_OUTPUT_NAME_SPARE > name_max)
    SB_ERROR(SB_EINVAL, "%s: the file name has %zu characters; at most %ld fit here (the file system's limit of %ld "
             "less %d for the temporary suffix .tmp.PID)", path, strlen(base), name_max - SB_OUTPUT_NAME_SPARE,
             name_max, SB_OUTPUT_NAME_SPARE);
  if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode))
    SB_ERROR(SB_EINVAL, "%s: '%s' is not a directory (it is a file)", path, dir);
  if (stat(dir, &st) != 0 && non_dir_prefix(path, bad, sizeof bad))
    SB_ERROR(SB_EINVAL, "%s: '%s' is not a directory (it is a file)", path, bad);
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
    SB_ERROR(SB_EINVAL, "%s: directory '%s' does not exist", path, dir);
  if (access(dir, W_OK | X_OK) != 0 || !dir_accepts_files(dir))
    SB_ERROR(SB_EINVAL, "%s: directory '%s' is not writable (cannot create files there)", path, dir);
  return SB_OK;
}

int sb_output_not_input(const char *out, const char *in) {
  struct stat so, si;
  if (!out || !in || stat(out, &so) != 0 || stat(in, &si) != 0) return SB_OK;
  if (so.st_dev == si.st_dev && so.st_ino == si.st_ino)
    SB_ERROR(SB_EINVAL, "%s: is also the input file %s; writing it would destroy the input (choose another output)",
             out, in);
  return SB_OK;
}

int sb_output_dir_check(const char *d) {
  struct stat st;
  if (!d || !*d) SB_ERROR(SB_EINVAL, "output directory: empty path");
  if (stat(d, &st) == 0) {
    if (!S_ISDIR(st.st_mode)) SB_ERROR(SB_EINVAL, "%s: is not a directory (it is a file); expected a directory", d);
    if (access(d, W_OK | X_OK) != 0 || !dir_accepts_files(d)) SB_ERROR(SB_EINVAL, "%s: directory is not writable", d);
    return SB_OK;
  }
  char parent[4096], bad[4096];
  dir_of(d, parent, sizeof parent);
  if (non_dir_prefix(d, bad, sizeof bad))
    SB_ERROR(SB_EINVAL, "%s: cannot create it: '%s' is not a directory (it is a file)", d, bad);
  if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode))
    SB_ERROR(SB_EINVAL, "%s: cannot create it: directory '%s' does not exist", d, parent);
  if (access(parent, W_OK | X_OK) != 0 || !dir_accepts_files(parent))
    SB_ERROR(SB_EINVAL, "%s: cannot create it: '%s' is not writable", d, parent);
  return SB_OK;
}

const char *sb_space_note(const char *path) {
  static char note[4400];
  char dir[4096];
  struct statvfs v;
  note[0] = '\0';
  dir_of(path, dir, sizeof dir);
  if (statvfs(dir, &v) == 0) {
    double free_b = (double)v.f_bavail * (double)v.f_frsize;
    if (free_b < 1048576.0)
      snprintf(note, sizeof note, " (no space left: the file system of %s has %.0f kB free)", dir, free_b / 1024.0);
  }
  return note;
}

long sb_name_max(const char *dir) {
  struct stat st;
  long m = pathconf(stat(dir, &st) == 0 ? dir : ".", _PC_NAME_MAX);
  return m > 0 ? m : 255;
}

int sb_file_fingerprint(const char *path, char *buf, size_t cap) {
  char *text;
  size_t len;
  int st = sb_read_file(path, &text, &len);
  if (st) return st;
  uLong crc = crc32(0L, Z_NULL, 0);
  for (size_t off = 0; off < len; off += 1u << 30)
    crc = crc32(crc, (const Bytef *)text + off, (uInt)(len - off < (1u << 30) ? len - off : 1u << 30));
  sb_free(text);
  snprintf(buf, cap, "crc32 %08lx, %zu bytes", (unsigned long)crc, len);
  return SB_OK;
}

/* A limit file's value: a byte count, or "max" / a v1 "unlimited" (>= 2^62): SIZE_MAX. */
static size_t limit_file(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return SIZE_MAX;
  char line[64] = "";
  char *ok = fgets(line, sizeof line, f);
  fclose(f);
  char *end = NULL;
  errno = 0;
  unsigned long long v = ok ? strtoull(line, &end, 10) : 0;
  if (!ok || end == line || errno || v >= (1ULL << 62) || v > SIZE_MAX) return SIZE_MAX;
  return (size_t)v;
}

/* The smallest of `file` at each level of cgroup path `cg` (from the leaf up to the root) under
 * directory `base`. */
static size_t cgroup_walk(const char *base, const char *cg, const char *file) {
  char path[4096], dir[4096];
  snprintf(dir, sizeof dir, "%s", cg);
  size_t best = SIZE_MAX;
  for (;;) {
    size_t n = strlen(dir);
    while (n > 0 && dir[n - 1] == '/') dir[--n] = '\0';
    if ((size_t)snprintf(path, sizeof path, "%s%s/%s", base, dir, file) < sizeof path) {
      size_t v = limit_file(path);
      if (v < best) best = v;
    }
    char *slash = strrchr(dir, '/');
    if (!n || !slash) break;
    *slash = '\0';
  }
  return best;
}

size_t sb_cgroup_mem_limit(const char *proc_cgroup, const char *root) {
  size_t best = SIZE_MAX;
  const char *line = proc_cgroup;
  while (line && *line) {
    const char *nl = strchr(line, '\n'), *end = nl ? nl : line + strlen(line);
    const char *c1 = memchr(line, ':', (size_t)(end - line)), *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(end - c1 - 1)) : NULL;
    if (c2) {
      char ctl[256], cg[2048], base[4096];
      size_t lc = (size_t)(c2 - c1 - 1), lp = (size_t)(end - c2 - 1);
      if (lc < sizeof ctl && lp < sizeof cg) {
        memcpy(ctl, c1 + 1, lc);
        ctl[lc] = '\0';
        memcpy(cg, c2 + 1, lp);
        cg[lp] = '\0';
        int v1mem = 0;   /* "memory" among the v1 hierarchy's controllers */
        for (char *save = NULL, *tok = strtok_r(ctl, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) v1mem |= !strcmp(tok, "memory");
        size_t v = SIZE_MAX;
        if (v1mem) {
          snprintf(base, sizeof base, "%s/memory", root);
          v = cgroup_walk(base, cg, "memory.limit_in_bytes");
        } else if (lc == 0 && !strncmp(line, "0:", 2)) {   /* v2: "0::/path" */
          v = cgroup_walk(root, cg, "memory.max");
        }
        if (v < best) best = v;
      }
    }
    line = nl ? nl + 1 : NULL;
  }
  return best;
}

/* The process's address space at its first call (libraries, OpenBLAS's buffers, HDF5): what
 * `ulimit -v` leaves for the network is the limit less this. */
static size_t base_vsz;
static pthread_once_t base_once = PTHREAD_ONCE_INIT;
static void read_base_vsz(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long long pages = 0;
  if (f) {
    if (fscanf(f, "%llu", &pages) != 1) pages = 0;
    fclose(f);
  }
  long psz = sysconf(_SC_PAGESIZE);
  base_vsz = psz > 0 ? (size_t)pages * (size_t)psz : 0;
}

size_t sb_mem_limit(const char **what) {
  const char *name = "physical memory";
  long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
  size_t best = pages > 0 && psz > 0 ? (size_t)pages * (size_t)psz : SIZE_MAX;
  struct rlimit rl;
  pthread_once(&base_once, read_base_vsz);
  if (!getrlimit(RLIMIT_AS, &rl) && rl.rlim_cur != RLIM_INFINITY) {
    size_t avail = (size_t)rl.rlim_cur > base_vsz ? (size_t)rl.rlim_cur - base_vsz : 0;
    if (avail < best) {
      static char as_name[128];
      snprintf(as_name, sizeof as_name, "memory left under the address-space limit (ulimit -v %.3g GB, of which the "
               "program maps %.3g GB itself)", (double)rl.rlim_cur / 1e9, (double)base_vsz / 1e9);
      best = avail;
      name = as_name;
    }
  }
  if (!getrlimit(RLIMIT_DATA, &rl) && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < best) {
    best = (size_t)rl.rlim_cur;
    name = "the data-segment limit (ulimit -d)";
  }
  FILE *f = fopen("/proc/self/cgroup", "r");   /* a few lines; no error state touched when absent */
  if (f) {
    char cg[16384];
    size_t n = fread(cg, 1, sizeof cg - 1, f);
    fclose(f);
    cg[n] = '\0';
    size_t v = sb_cgroup_mem_limit(cg, "/sys/fs/cgroup");
    if (v < best) {
      best = v;
      name = "the memory limit of this process's cgroup (a Slurm --mem or container limit)";
    }
  }
  if (what) *what = name;
  return best;
}

/* The last pipe or FIFO read (a model given as <(...) or /dev/stdin can be read only once, and
 * `run` reads its model twice: fingerprint, then load). Freed at exit. */
static char *pipe_path, *pipe_text;
static size_t pipe_len;
static void pipe_cache_free(void) {
  free(pipe_path);
  sb_free(pipe_text);
}

int sb_is_stream(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode) || S_ISSOCK(st.st_mode));
}

int sb_read_file(const char *path, char **buf, size_t *len) {
  *buf = NULL;
  *len = 0;
  int is_pipe = sb_is_stream(path);
  if (is_pipe && pipe_path && !strcmp(pipe_path, path)) {   /* read before: a copy */
    char *b = sb_malloc(pipe_len + 1);
    if (!b) return SB_ENOMEM;
    memcpy(b, pipe_text, pipe_len + 1);
    *buf = b;
    *len = pipe_len;
    return SB_OK;
  }
  FILE *f = fopen(path, "rb");
  if (!f) SB_ERROR(SB_EIO, "%s: cannot read: %s", path, strerror(errno));
  size_t cap = 65536, n = 0, r;
  char *b = sb_malloc(cap);
  while (b && (r = fread(b + n, 1, cap - 1 - n, f)) > 0)
    if ((n += r) + 1 == cap) {
      char *g = sb_realloc(b, cap *= 2);
      if (!g) { sb_free(b); b = NULL; }
      else b = g;
    }
  int bad = b && ferror(f), e = errno;
  fclose(f);
  if (!b) return SB_ENOMEM;
  if (bad) { sb_free(b); SB_ERROR(SB_EIO, "%s: cannot read: %s", path, strerror(e)); }
  b[n] = '\0';
  *buf = b;
  *len = n;
  if (is_pipe) {   /* keep a copy for the next read of the same path */
    char *c = sb_malloc(n + 1), *pth = strdup(path);
    if (c && pth) {
      memcpy(c, b, n + 1);
      if (!pipe_path) atexit(pipe_cache_free);
      pipe_cache_free();
      pipe_path = pth;
      pipe_text = c;
      pipe_len = n;
    } else {
      sb_free(c);
      free(pth);
    }
  }
  return SB_OK;
}
