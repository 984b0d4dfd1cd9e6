/* HDF5 helpers: atomic output files (temporary name, rename on success), attribute and
 * dataset shortcuts. Format knowledge (SONATA, model files) lives with its module, not here. */
#include "sim/core.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

static int h5_threadsafe;   /* set by sb_h5_quiet, in the main thread */

void sb_h5_quiet(void) {
  /* no cleanup at exit: after a failed write (a full disk) HDF5's own closing of what is still
   * open crashed in H5F__close_cb; outputs are closed explicitly, temporary files removed */
  H5dont_atexit();
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  hbool_t ts = 0;
  if (H5is_library_threadsafe(&ts) >= 0) h5_threadsafe = ts ? 1 : 0;
}

/* Only a thread-safe HDF5 has per-thread error stacks (and serialises calls); the others (the
 * MPI build's) have one, set by sb_h5_quiet, and crashed when threads called this at once. */
void sb_h5_quiet_thread(void) {
  if (h5_threadsafe) H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

/* ---- atomic output ---- */

/* Temporary names still open, for the signal handler: fixed slots, no allocation there. */
#define SB_H5_MAX_OPEN 16
static char open_tmp[SB_H5_MAX_OPEN][4096];
static volatile sig_atomic_t open_used[SB_H5_MAX_OPEN];

static void register_tmp(const char *tmp) {
  for (int i = 0; i < SB_H5_MAX_OPEN; i++)
    if (!open_used[i]) {
      snprintf(open_tmp[i], sizeof open_tmp[i], "%s", tmp);
      open_used[i] = 1;
      return;
    }
}

static void unregister_tmp(const char *tmp) {
  for (int i = 0; i < SB_H5_MAX_OPEN; i++)
    if (open_used[i] && strcmp(open_tmp[i], tmp) == 0) { open_used[i] = 0; return; }
}

void sb_h5_cleanup_on_signal(void) {
  for (int i = 0; i < SB_H5_MAX_OPEN; i++)
    if (open_used[i]) { unlink(open_tmp[i]); open_used[i] = 0; }
}

int sb_h5_create(sb_h5_out *out, const char *path) {
  memset(out, 0, sizeof *out);
  out->file = H5I_INVALID_HID;
  int chk = sb_output_check(path);
  if (chk) return chk;
  char resolved[PATH_MAX];
  struct stat lst;
  if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode) && realpath(path, resolved)) path = resolved; /* replace the target, keep the link */
  size_t n = strlen(path) + 32;
  out->path = sb_strdup(path);
  out->tmp_path = sb_malloc(n);
  if (!out->path || !out->tmp_path) {
    sb_free(out->path); sb_free(out->tmp_path);
    out->path = out->tmp_path = NULL;
    return SB_ENOMEM;
  }
  snprintf(out->tmp_path, n, "%s.tmp.%ld", path, (long)getpid());
  out->file = H5Fcreate(out->tmp_path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (out->file < 0) {
    /* The directory passed sb_output_check, so this is a path the user cannot write to
     * (read-only or pseudo file system): a usage error, exit 2. */
    int e = sb_error_set_(__FILE__, __LINE__, SB_EINVAL,
                          "%s: cannot create output file here (read-only or special file system?)", path);
    sb_free(out->path); sb_free(out->tmp_path);
    out->path = out->tmp_path = NULL;
    return e;
  }
  register_tmp(out->tmp_path);
  return SB_OK;
}

int sb_h5_commit(sb_h5_out *out) {
  int status = SB_OK;
  if (!out->tmp_path) SB_ERROR(SB_EINVAL, "sb_h5_commit: file was not created or already closed");
  errno = 0;
  if (H5Fflush(out->file, H5F_SCOPE_GLOBAL) < 0 || H5Fclose(out->file) < 0) {
    int e = errno;   /* the failed write's, kept by HDF5's POSIX driver (ENOSPC, EFBIG, EIO) */
    const char *note = sb_space_note(out->tmp_path);
    status = SB_SET_ERROR(SB_EIO, "%s: cannot flush and close output file%s%s%s", out->path, note, !*note && e ? ": " : "",
                          !*note && e ? strerror(e) : "");
    unlink(out->tmp_path);
  } else if (rename(out->tmp_path, out->path) != 0) {
    status = SB_SET_ERROR(SB_EIO, "%s: cannot rename temporary file into place: %s", out->path,
                          strerror(errno));
    unlink(out->tmp_path);
  }
  unregister_tmp(out->tmp_path);
  out->file = H5I_INVALID_HID;
  sb_free(out->path); sb_free(out->tmp_path);
  out->path = out->tmp_path = NULL;
  return status;
}

void sb_h5_abort(sb_h5_out *out) {
  if (!out->tmp_path) return;
  if (out->file >= 0) H5Fclose(out->file);
  unlink(out->tmp_path);
  unregister_tmp(out->tmp_path);
  out->file = H5I_INVALID_HID;
  sb_free(out->path); sb_free(out->tmp_path);
  out->path = out->tmp_path = NULL;
}

int sb_h5_open_read(const char *path, hid_t *file) {
  *file = H5I_INVALID_HID;
  int chk = sb_input_check(path);
  if (chk) return chk;
  htri_t is = H5Fis_hdf5(path);
  if (is <= 0) SB_ERROR(SB_EFORMAT, "%s: not an HDF5 file", path);
  *file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (*file < 0) SB_ERROR(SB_EFORMAT, "%s: HDF5 file cannot be opened (truncated or corrupt?)", path);
  return SB_OK;
}

/* ---- groups and links ---- */

int sb_h5_exists(hid_t loc, const char *name) {
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", name);
  for (char *p = buf; ; p++) {
    if (*p == '/' || *p == '\0') {
      char c = *p;
      *p = '\0';
      if (buf[0] && !(p == buf + 1 && buf[0] == '/') && H5Lexists(loc, buf, H5P_DEFAULT) <= 0) return 0;
      *p = c;
      if (c == '\0') break;
    }
  }
  return 1;
}

hid_t sb_h5_group(hid_t loc, const char *path) {
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", path);
  hid_t cur = H5Gopen2(loc, ".", H5P_DEFAULT);
  char *save = NULL;
  for (char *tok = strtok_r(buf, "/", &save); tok && cur >= 0; tok = strtok_r(NULL, "/", &save)) {
    hid_t next = H5Lexists(cur, tok, H5P_DEFAULT) > 0 ? H5Gopen2(cur, tok, H5P_DEFAULT)
                                                      : H5Gcreate2(cur, tok, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(cur);
    cur = next;
  }
  return cur;
}

/* ---- attributes ---- */

int sb_h5_attr_exists(hid_t obj, const char *name) { return H5Aexists(obj, name) > 0; }

static int attr_write(hid_t obj, const char *name, hid_t ftype, hid_t mtype, hid_t space, const void *buf) {
  if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
  hid_t a = H5Acreate2(obj, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
  int ok = a >= 0 && H5Awrite(a, mtype, buf) >= 0;
  if (a >= 0) H5Aclose(a);
  if (!ok) SB_ERROR(SB_EIO, "cannot write attribute '%s'", name);
  return SB_OK;
}

int sb_h5_attr_write_string(hid_t obj, const char *name, const char *value) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, strlen(value) + 1 > 1 ? strlen(value) + 1 : 1);
  H5Tset_strpad(t, H5T_STR_NULLTERM);
  H5Tset_cset(t, H5T_CSET_UTF8);
  hid_t s = H5Screate(H5S_SCALAR);
  int st = attr_write(obj, name, t, t, s, value);
  H5Sclose(s);
  H5Tclose(t);
  return st;
}

int sb_h5_attr_read_string(hid_t obj, const char *name, char **value) {
  *value = NULL;
  if (H5Aexists(obj, name) <= 0) SB_ERROR(SB_EFORMAT, "attribute '%s': missing", name);
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  hid_t ft = H5Aget_type(a);
  int status = SB_OK;
  if (H5Tget_class(ft) != H5T_STRING) {
    status = SB_SET_ERROR(SB_EFORMAT, "attribute '%s': expected a string", name);
  } else if (H5Tis_variable_str(ft) > 0) {
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5Tget_cset(ft)); /* h5py writes UTF-8; HDF5 will not convert between csets */
    char *tmp = NULL;
    if (H5Aread(a, mt, &tmp) < 0 || !tmp) status = SB_SET_ERROR(SB_EFORMAT, "attribute '%s': unreadable", name);
    else {
      *value = sb_strdup(tmp);
      if (!*value) status = SB_ENOMEM;
      H5free_memory(tmp);
    }
    H5Tclose(mt);
  } else {
    size_t n = H5Tget_size(ft);
    char *buf = sb_calloc(n + 1, 1);
    if (!buf) status = SB_ENOMEM;
    else if (H5Aread(a, ft, buf) < 0) { sb_free(buf); status = SB_SET_ERROR(SB_EFORMAT, "attribute '%s': unreadable", name); }
    else *value = buf;
  }
  H5Tclose(ft);
  H5Aclose(a);
  return status;
}

static int attr_write_array(hid_t obj, const char *name, hid_t ftype, hid_t mtype, const void *v, size_t n) {
  hsize_t dim = n;
  hid_t s = n == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dim, NULL);
  int st = attr_write(obj, name, ftype, mtype, s, v);
  H5Sclose(s);
  return st;
}

static int attr_read_array(hid_t obj, const char *name, hid_t mtype, void *v, size_t cap, size_t *n) {
  if (H5Aexists(obj, name) <= 0) SB_ERROR(SB_EFORMAT, "attribute '%s': missing", name);
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  hid_t s = H5Aget_space(a);
  hssize_t count = H5Sget_simple_extent_npoints(s);
  hid_t ft = H5Aget_type(a);
  H5T_class_t cls = H5Tget_class(ft);
  int status = SB_OK;
  if (cls != H5T_INTEGER && cls != H5T_FLOAT)
    status = SB_SET_ERROR(SB_EFORMAT, "attribute '%s': expected numbers", name);
  else if (count < 0 || (size_t)count > cap)
    status = SB_SET_ERROR(SB_EFORMAT, "attribute '%s': expected at most %zu values (got %lld)", name, cap,
                          (long long)count);
  else if (cls == H5T_FLOAT && H5Tget_class(mtype) == H5T_INTEGER) {
    /* HDF5 would truncate 8.5 to 8: a float attribute read as integers must hold whole numbers */
    double *tmp = sb_malloc(((size_t)count + 1) * sizeof *tmp);
    if (!tmp) status = SB_SET_ERROR(SB_ENOMEM, "attribute '%s': out of memory", name);
    else if (H5Aread(a, H5T_NATIVE_DOUBLE, tmp) < 0)
      status = SB_SET_ERROR(SB_EFORMAT, "attribute '%s': unreadable", name);
    else {
      for (hssize_t i = 0; i < count && !status; i++)
        if (!(tmp[i] == floor(tmp[i]) && fabs(tmp[i]) < 9.2e18))
          status = SB_SET_ERROR(SB_EFORMAT, "attribute '%s': expected integers (got %g)", name, tmp[i]);
      if (!status && H5Aread(a, mtype, v) < 0) status = SB_SET_ERROR(SB_EFORMAT, "attribute '%s': unreadable", name);
    }
    sb_free(tmp);
  } else if (H5Aread(a, mtype, v) < 0)
    status = SB_SET_ERROR(SB_EFORMAT, "attribute '%s': unreadable", name);
  if (n) *n = count < 0 ? 0 : (size_t)count;
  H5Tclose(ft);
  H5Sclose(s);
  H5Aclose(a);
  return status;
}

int sb_h5_attr_write_doubles(hid_t obj, const char *name, const double *v, size_t n) {
  return attr_write_array(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, v, n);
}
int sb_h5_attr_read_doubles(hid_t obj, const char *name, double *v, size_t cap, size_t *n) {
  return attr_read_array(obj, name, H5T_NATIVE_DOUBLE, v, cap, n);
}
int sb_h5_attr_write_int64s(hid_t obj, const char *name, const int64_t *v, size_t n) {
  return attr_write_array(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, v, n);
}
int sb_h5_attr_read_int64s(hid_t obj, const char *name, int64_t *v, size_t cap, size_t *n) {
  return attr_read_array(obj, name, H5T_NATIVE_INT64, v, cap, n);
}

/* ---- datasets ---- */

static int write_nd(hid_t loc, const char *name, hid_t ftype, hid_t mtype, const void *data, int rank,
                    const hsize_t *dims) {
  hsize_t total = 1;
  for (int i = 0; i < rank; i++) total *= dims[i];
  hid_t space = H5Screate_simple(rank, dims, NULL);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (total >= 4096) {
    /* chunk along the first axis, ~64k elements a chunk, then deflate */
    hsize_t chunk[8];
    hsize_t inner = total / (dims[0] ? dims[0] : 1);
    for (int i = 0; i < rank; i++) chunk[i] = dims[i];
    hsize_t rows = inner ? 65536 / inner : 1;
    chunk[0] = rows < 1 ? 1 : (rows > dims[0] ? dims[0] : rows);
    H5Pset_chunk(dcpl, rank, chunk);
    H5Pset_deflate(dcpl, 4);
  }
  hid_t ds = H5Dcreate2(loc, name, ftype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  int ok = ds >= 0 && (total == 0 || H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
  if (ds >= 0) H5Dclose(ds);
  H5Pclose(dcpl);
  H5Sclose(space);
  if (!ok) SB_ERROR(SB_EIO, "cannot write dataset '%s'", name);
  return SB_OK;
}

int sb_h5_write_1d(hid_t loc, const char *name, hid_t ftype, hid_t mtype, const void *data, size_t n) {
  hsize_t d = n;
  return write_nd(loc, name, ftype, mtype, data, 1, &d);
}

int sb_h5_write_float(hid_t loc, const char *name, const float *data, int rank, const size_t *dims) {
  hsize_t d[8];
  if (rank < 1 || rank > 8) SB_ERROR(SB_EINVAL, "dataset '%s': rank %d not in 1..8", name, rank);
  for (int i = 0; i < rank; i++) d[i] = dims[i];
  return write_nd(loc, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, data, rank, d);
}

int sb_h5_read(hid_t loc, const char *name, hid_t mtype, void **data, size_t *n, int *rank, size_t *dims,
               int max_rank) {
  *data = NULL;
  if (n) *n = 0;
  if (!sb_h5_exists(loc, name)) SB_ERROR(SB_EFORMAT, "%s: missing dataset", name);
  hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
  if (ds < 0) SB_ERROR(SB_EFORMAT, "%s: not a dataset", name);
  hid_t space = H5Dget_space(ds);
  int r = H5Sget_simple_extent_ndims(space);
  hsize_t d[32];
  int status = SB_OK;
  if (r < 0 || r > 32) {
    status = SB_SET_ERROR(SB_EFORMAT, "%s: unreadable dataspace", name);
    goto done;
  }
  H5Sget_simple_extent_dims(space, d, NULL);
  size_t total = 1;
  for (int i = 0; i < r; i++) total *= (size_t)d[i];
  if (rank) *rank = r;
  if (dims)
    for (int i = 0; i < r && i < max_rank; i++) dims[i] = (size_t)d[i];
  hid_t ft = H5Dget_type(ds);
  H5T_class_t cls = H5Tget_class(ft);
  H5Tclose(ft);
  if (cls != H5T_INTEGER && cls != H5T_FLOAT) {
    status = SB_SET_ERROR(SB_EFORMAT, "%s: expected a numeric dataset", name);
    goto done;
  }
  void *buf = sb_malloc(total * H5Tget_size(mtype) + 1);
  if (!buf) { status = SB_ENOMEM; goto done; }
  if (total > 0 && H5Dread(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
    sb_free(buf);
    status = SB_SET_ERROR(SB_EFORMAT, "%s: cannot read (corrupt, or values out of range for the type)", name);
    goto done;
  }
  *data = buf;
  if (n) *n = total;
done:
  H5Sclose(space);
  H5Dclose(ds);
  return status;
}
