/* The ANN side: data sets (IDX / Fashion-MNIST) and, from the ANN issue on, layers and models.
 * Plain float32 arrays, batch-first, NCHW. */
#ifndef SB_ANN_H
#define SB_ANN_H

#include <stddef.h>
#include <stdint.h>

/* ---- IDX files and Fashion-MNIST ---- */

/* Default location of Debian's dataset-fashion-mnist package. */
#define SB_FMNIST_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"

/* An IDX array (LeCun's MNIST format): unsigned bytes only (type code 0x08), as MNIST and
 * Fashion-MNIST use. `dims[0]` is the item count. */
typedef struct {
  int rank;          /* number of dimensions, 1..4 */
  size_t dims[4];    /* extents */
  size_t n;          /* total element count = product of dims */
  uint8_t *data;     /* (dims[0], ..., dims[rank-1]) row-major, owned */
} sb_idx;

/* Read an IDX file, gzip-compressed or raw (zlib detects which).
 * Errors: SB_EIO if it cannot be opened; SB_EFORMAT naming the file and what was expected
 * for a bad magic number, an unsupported type, a rank outside 1..4, a truncated body or
 * trailing bytes. Ownership: `out->data` is the caller's (sb_idx_free). */
int sb_idx_read(const char *path, sb_idx *out);
void sb_idx_free(sb_idx *x);

/* One split of an image classification data set. */
typedef struct {
  size_t n;          /* images */
  int h, w;          /* 28 x 28 for Fashion-MNIST */
  uint8_t *images;   /* (n, h, w) pixel intensities 0..255, owned */
  uint8_t *labels;   /* (n) class 0..9, owned */
  int n_classes;     /* 10 */
} sb_dataset;

/* Class names of Fashion-MNIST (Xiao, Rasul, Vollgraf 2017), index = label. */
extern const char *const sb_fmnist_classes[10];

/* Resolve the data directory: `dir` if non-NULL, else $SB_DATA_DIR, else the Debian path.
 * Returns a pointer to static or caller storage; never NULL. */
const char *sb_fmnist_dir(const char *dir);

/* Load split "train" (60000 images) or "test" (10000) from `dir` (see sb_fmnist_dir), reading
 * "<prefix>-images-idx3-ubyte[.gz]" and "<prefix>-labels-idx1-ubyte[.gz]" with prefix
 * "train" or "t10k". Errors: SB_EINVAL when files are missing (message names the directory and the
 * Debian package), SB_EFORMAT for malformed files, image/label count mismatch, labels >= 10,
 * or images that are not 2-D. Ownership: caller calls sb_dataset_free. */
int sb_fmnist_load(const char *dir, const char *split, sb_dataset *out);
void sb_dataset_free(sb_dataset *d);

#endif
