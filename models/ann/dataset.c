/* IDX reader and Fashion-MNIST loader. Reads whole files: the data set is 55 MB of bytes.
 * Not a general data-loader framework; batching and shuffling live with training. */
#include "models/ann/ann.h"
#include "sim/core.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

const char *const sb_fmnist_classes[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                           "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

void sb_idx_free(sb_idx *x) {
  if (!x) return;
  sb_free(x->data);
  memset(x, 0, sizeof *x);
}

int sb_idx_read(const char *path, sb_idx *out) {
  memset(out, 0, sizeof *out);
  int chk = sb_input_check(path);
  if (chk) return chk;
  gzFile f = gzopen(path, "rb");
  if (!f) SB_ERROR(SB_EIO, "%s: cannot open: %s", path, strerror(errno ? errno : ENOENT));
  unsigned char hdr[4];
  int status = SB_OK;
  int got = gzread(f, hdr, 4);
  if (got != 4) {
    status = SB_SET_ERROR(SB_EFORMAT, "%s: truncated header: expected 4 magic bytes (got %d)", path, got < 0 ? 0 : got);
    goto done;
  }
  if (hdr[0] != 0 || hdr[1] != 0) {
    status = SB_SET_ERROR(SB_EFORMAT, "%s: magic: expected 0x0000TTRR of an IDX file (got 0x%02x%02x%02x%02x)",
                          path, hdr[0], hdr[1], hdr[2], hdr[3]);
    goto done;
  }
  if (hdr[2] != 0x08) {
    status = SB_SET_ERROR(SB_EFORMAT, "%s: magic: expected element type 0x08 (unsigned byte) (got 0x%02x)", path, hdr[2]);
    goto done;
  }
  int rank = hdr[3];
  if (rank < 1 || rank > 4) {
    status = SB_SET_ERROR(SB_EFORMAT, "%s: magic: expected rank 1..4 (got %d)", path, rank);
    goto done;
  }
  out->rank = rank;
  out->n = 1;
  for (int i = 0; i < rank; i++) {
    unsigned char d[4];
    if (gzread(f, d, 4) != 4) {
      status = SB_SET_ERROR(SB_EFORMAT, "%s: truncated header: dimension %d missing", path, i);
      goto done;
    }
    out->dims[i] = ((size_t)d[0] << 24) | ((size_t)d[1] << 16) | ((size_t)d[2] << 8) | d[3];
    if (out->dims[i] == 0 || out->dims[i] > ((size_t)1 << 28)) {
      status = SB_SET_ERROR(SB_EFORMAT, "%s: dimension %d: expected 1..2^28 (got %zu)", path, i, out->dims[i]);
      goto done;
    }
    out->n *= out->dims[i];
    if (out->n > ((size_t)1 << 32)) {
      status = SB_SET_ERROR(SB_EFORMAT, "%s: header declares more than 2^32 elements", path);
      goto done;
    }
  }
  out->data = sb_malloc(out->n);
  if (!out->data) { status = SB_ENOMEM; goto done; }
  size_t have = 0;
  while (have < out->n) {
    size_t want = out->n - have;
    int r = gzread(f, out->data + have, (unsigned)(want > (1u << 30) ? (1u << 30) : want));
    if (r <= 0) break;
    have += (size_t)r;
  }
  if (have != out->n) {
    int errnum = 0;
    const char *zmsg = gzerror(f, &errnum);
    status = SB_SET_ERROR(SB_EFORMAT, "%s: truncated or corrupt: expected %zu data bytes (got %zu%s%s)", path,
                          out->n, have, errnum < 0 ? "; " : "", errnum < 0 ? zmsg : "");
    goto done;
  }
  unsigned char extra;
  if (gzread(f, &extra, 1) > 0) {
    status = SB_SET_ERROR(SB_EFORMAT, "%s: expected exactly %zu data bytes after the header (got more)", path, out->n);
    goto done;
  }
  {
    int errnum = 0;
    const char *zmsg = gzerror(f, &errnum);
    if (errnum < 0) { status = SB_SET_ERROR(SB_EFORMAT, "%s: corrupt gzip stream: %s", path, zmsg); goto done; }
  }
done:
  gzclose(f);
  if (status != SB_OK) sb_idx_free(out);
  return status;
}

const char *sb_fmnist_dir(const char *dir) {
  if (dir && *dir) return dir;
  const char *env = getenv("SB_DATA_DIR");
  if (env && *env) return env;
  return SB_FMNIST_DEFAULT_DIR;
}

/* Pick "<dir>/<base>.gz" or "<dir>/<base>", whichever exists. */
static int find_file(const char *dir, const char *base, char *path, size_t cap) {
  struct stat st;
  if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode))
    SB_ERROR(SB_EINVAL, "%s: data directory (--data or SB_DATA_DIR): is not a directory (it is a file)", dir);
  if (stat(dir, &st) != 0)
    SB_ERROR(SB_EINVAL, "%s: data directory (--data or SB_DATA_DIR): does not exist (install Debian's "
             "dataset-fashion-mnist, or pass --data DIR)", dir);
  snprintf(path, cap, "%s/%s.gz", dir, base);
  if (access(path, R_OK) == 0) return SB_OK;
  snprintf(path, cap, "%s/%s", dir, base);
  if (access(path, R_OK) == 0) return SB_OK;
  SB_ERROR(SB_EINVAL, "%s: %s[.gz] not found (install Debian's dataset-fashion-mnist, or pass --data DIR)", dir, base);
}

int sb_fmnist_load(const char *dir, const char *split, sb_dataset *out) {
  memset(out, 0, sizeof *out);
  dir = sb_fmnist_dir(dir);
  const char *prefix;
  if (strcmp(split, "train") == 0) prefix = "train";
  else if (strcmp(split, "test") == 0 || strcmp(split, "t10k") == 0) prefix = "t10k";
  else SB_ERROR(SB_EINVAL, "split: expected 'train' or 'test' (got '%s')", split);

  char ipath[4096], lpath[4096], base[64];
  int st;
  snprintf(base, sizeof base, "%s-images-idx3-ubyte", prefix);
  if ((st = find_file(dir, base, ipath, sizeof ipath))) return st;
  snprintf(base, sizeof base, "%s-labels-idx1-ubyte", prefix);
  if ((st = find_file(dir, base, lpath, sizeof lpath))) return st;

  sb_idx im, lb;
  if ((st = sb_idx_read(ipath, &im))) return st;
  if ((st = sb_idx_read(lpath, &lb))) { sb_idx_free(&im); return st; }
  if (im.rank != 3) {
    st = SB_SET_ERROR(SB_EFORMAT, "%s: expected a rank-3 image array (n, rows, cols) (got rank %d)", ipath, im.rank);
  } else if (lb.rank != 1) {
    st = SB_SET_ERROR(SB_EFORMAT, "%s: expected a rank-1 label array (got rank %d)", lpath, lb.rank);
  } else if (im.dims[0] != lb.dims[0]) {
    st = SB_SET_ERROR(SB_EFORMAT, "%s: expected %zu labels to match %s (got %zu)", lpath, im.dims[0], ipath, lb.dims[0]);
  } else {
    for (size_t i = 0; i < lb.n; i++)
      if (lb.data[i] >= 10) {
        st = SB_SET_ERROR(SB_EFORMAT, "%s: label %zu: expected 0..9 (got %u)", lpath, i, lb.data[i]);
        break;
      }
  }
  if (st) { sb_idx_free(&im); sb_idx_free(&lb); return st; }
  out->n = im.dims[0];
  out->h = (int)im.dims[1];
  out->w = (int)im.dims[2];
  out->images = im.data;
  out->labels = lb.data;
  out->n_classes = 10;
  return SB_OK;
}

void sb_dataset_free(sb_dataset *d) {
  if (!d) return;
  sb_free(d->images);
  sb_free(d->labels);
  memset(d, 0, sizeof *d);
}
