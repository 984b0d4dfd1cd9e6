/* Spike file readers: SONATA (current and legacy layouts), NWB 2 units tables, BMTK's NWB-1
 * spike trains, SONATA nodes files (counts only) and NEST text recordings. HDF5 populations are
 * read window by window with hyperslabs; the small in-memory kinds (NWB-1, NEST text) are
 * loaded at open. Statistics live in stats.c and summary.c, not here. */
#include "analysis/analysis.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef struct {
  sb_spk_pop_info info;
  hid_t ts, ids;         /* datasets (HDF5 kinds); H5I_INVALID_HID when absent */
  int ids_signed;        /* node ids stored as a signed integer type */
  char *ts_path, *ids_path;
  uint64_t *unit_ends;   /* NWB units: cumulative end index per unit (n_units) */
  uint64_t *unit_ids;    /* NWB units: /units/id (n_units) */
  size_t n_units;
  double *mem_t;         /* in-memory kinds: times in file units (n_spikes) */
  uint64_t *mem_id;
  uint64_t *node_list;   /* BMTK NWB-1: every node's id, spiking or not (n_nodes) */
  int implicit_nodes;    /* SONATA spikes with attribute n_nodes: the nodes are 0..n_nodes-1 */
} spk_pop;

struct sb_spk_file {
  char *path;
  sb_spk_kind kind;
  double t_stop;   /* ms, end of the simulated time when the file says; NaN otherwise */
  hid_t file;
  size_t n_pops;
  spk_pop *pops;
};

const char *sb_spk_kind_name(sb_spk_kind kind) {
  switch (kind) {
    case SB_SPK_SONATA: return "SONATA spikes";
    case SB_SPK_SONATA_LEGACY: return "SONATA spikes (legacy /spikes/gids layout)";
    case SB_SPK_NWB_UNITS: return "NWB units table";
    case SB_SPK_NWB_BMTK: return "NWB-1 spike trains (BMTK)";
    case SB_SPK_SONATA_NODES: return "SONATA nodes file (no spikes)";
    case SB_SPK_NEST_TEXT: return "NEST text recording";
  }
  return "?";
}

sb_spk_kind sb_spk_file_kind(const sb_spk_file *f) { return f->kind; }

double sb_spk_t_stop(const sb_spk_file *f) { return f->t_stop; }
const char *sb_spk_file_path(const sb_spk_file *f) { return f->path; }

size_t sb_spk_n_pops(const sb_spk_file *f) { return f->n_pops; }
const sb_spk_pop_info *sb_spk_pop(const sb_spk_file *f, size_t i) {
  return i < f->n_pops ? &f->pops[i].info : NULL;
}
long sb_spk_find_pop(const sb_spk_file *f, const char *name) {
  for (size_t i = 0; i < f->n_pops; i++)
    if (!strcmp(f->pops[i].info.name, name)) return (long)i;
  return -1;
}

void sb_spk_close(sb_spk_file *f) {
  if (!f) return;
  for (size_t i = 0; i < f->n_pops; i++) {
    spk_pop *p = &f->pops[i];
    if (p->ts >= 0) H5Dclose(p->ts);
    if (p->ids >= 0) H5Dclose(p->ids);
    sb_free(p->info.name);
    sb_free(p->info.where);
    sb_free(p->ts_path);
    sb_free(p->ids_path);
    sb_free(p->unit_ends);
    sb_free(p->unit_ids);
    sb_free(p->mem_t);
    sb_free(p->mem_id);
    sb_free(p->node_list);
  }
  sb_free(f->pops);
  if (f->file >= 0) H5Fclose(f->file);
  sb_free(f->path);
  sb_free(f);
}

static spk_pop *add_pop(sb_spk_file *f, const char *name) {
  spk_pop *np = sb_realloc(f->pops, (f->n_pops + 1) * sizeof *np);
  if (!np) return NULL;
  f->pops = np;
  spk_pop *p = &f->pops[f->n_pops];
  memset(p, 0, sizeof *p);
  p->ts = p->ids = H5I_INVALID_HID;
  p->info.time_scale = 1.0;
  p->info.name = sb_strdup(name);
  if (!p->info.name) return NULL;
  f->n_pops++;
  return p;
}

/* ---- attributes: units and sorting ---- */

/* Read a string attribute, fixed or variable length, ASCII or UTF-8 (sb_h5_attr_read_string's
 * ASCII memory type cannot convert variable-length UTF-8 strings, which BMTK writes). */
static int attr_string(hid_t obj, const char *name, char **value) {
  *value = NULL;
  if (H5Aexists(obj, name) <= 0) SB_ERROR(SB_EFORMAT, "attribute '%s': missing", name);
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  hid_t ft = H5Aget_type(a);
  int st = SB_OK;
  if (H5Tget_class(ft) != H5T_STRING) {
    st = SB_SET_ERROR(SB_EFORMAT, "attribute '%s': expected a string", name);
  } else if (H5Tis_variable_str(ft) > 0) {
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5Tget_cset(ft));
    char *tmp = NULL;
    if (H5Aread(a, mt, &tmp) < 0 || !tmp) st = SB_SET_ERROR(SB_EFORMAT, "attribute '%s': unreadable", name);
    else {
      *value = sb_strdup(tmp);
      if (!*value) st = SB_ENOMEM;
      H5free_memory(tmp);
    }
    H5Tclose(mt);
  } else {
    size_t n = H5Tget_size(ft);
    char *buf = sb_calloc(n + 1, 1);
    if (!buf) st = SB_ENOMEM;
    else if (H5Aread(a, ft, buf) < 0) { sb_free(buf); st = SB_SET_ERROR(SB_EFORMAT, "attribute '%s': unreadable", name); }
    else *value = buf;
  }
  H5Tclose(ft);
  H5Aclose(a);
  return st;
}

/* Factor from a units string to ms; 0 if unknown. */
static double units_scale(const char *u) {
  static const char *const ms[] = {"ms", "msec", "millisecond", "milliseconds", NULL};
  static const char *const s[] = {"s", "sec", "second", "seconds", NULL};
  static const char *const us[] = {"us", "usec", "microsecond", "microseconds", NULL};
  for (int i = 0; ms[i]; i++) if (!strcasecmp(u, ms[i])) return 1.0;
  for (int i = 0; s[i]; i++) if (!strcasecmp(u, s[i])) return 1000.0;
  for (int i = 0; us[i]; i++) if (!strcasecmp(u, us[i])) return 1e-3;
  return 0.0;
}

/* Read a units-like attribute `name` of `obj` if present; *scale stays as given when absent. */
static int read_units(const char *file, hid_t obj, const char *objpath, const char *name, double *scale) {
  if (!sb_h5_attr_exists(obj, name)) return SB_OK;
  char *u = NULL;
  int st = attr_string(obj, name, &u);
  if (st) return sb_error_prefix_(st, "%s: %s", file, objpath);
  double k = units_scale(u);
  if (k == 0.0) {
    st = SB_SET_ERROR(SB_EFORMAT, "%s: %s@%s: unknown time units '%s' (expected ms or s)", file, objpath, name, u);
    sb_free(u);
    return st;
  }
  sb_free(u);
  *scale = k;
  return SB_OK;
}

static int read_sorting(hid_t obj, sb_spk_sorting *out) {
  *out = SB_SORT_UNKNOWN;
  if (!sb_h5_attr_exists(obj, "sorting")) return SB_OK;
  char *s = NULL;
  sb_spk_sorting r = SB_SORT_UNKNOWN;
  hid_t a = H5Aopen(obj, "sorting", H5P_DEFAULT);
  hid_t t = a >= 0 ? H5Aget_type(a) : H5I_INVALID_HID;
  int is_str = t >= 0 && H5Tget_class(t) == H5T_STRING;
  int is_enum = t >= 0 && H5Tget_class(t) == H5T_ENUM;
  if (is_enum) {
    /* libsonata writes an enum {none, by_id, by_time} */
    char nm[64] = "";
    long long v = 0;
    hid_t mt = H5Tget_native_type(t, H5T_DIR_ASCEND);
    unsigned char buf[16] = {0};
    if (H5Tget_size(mt) <= sizeof buf && H5Aread(a, mt, buf) >= 0 && H5Tenum_nameof(mt, buf, nm, sizeof nm) >= 0) {
      if (!strcmp(nm, "by_time")) r = SB_SORT_BY_TIME;
      else if (!strcmp(nm, "by_id")) r = SB_SORT_BY_ID;
      else if (!strcmp(nm, "none")) r = SB_SORT_NONE;
    }
    (void)v;
    H5Tclose(mt);
  }
  if (t >= 0) H5Tclose(t);
  if (a >= 0) H5Aclose(a);
  *out = r;
  if (!is_str) return SB_OK;
  int st = attr_string(obj, "sorting", &s);
  if (st == SB_ENOMEM) return st;
  if (st) return SB_OK;   /* unreadable: treated as unknown, the order is checked anyway */
  if (!strcasecmp(s, "by_time") || !strcasecmp(s, "time")) r = SB_SORT_BY_TIME;
  else if (!strcasecmp(s, "by_id") || !strcasecmp(s, "by_gid") || !strcasecmp(s, "id") || !strcasecmp(s, "gid"))
    r = SB_SORT_BY_ID;
  else if (!strcasecmp(s, "none")) r = SB_SORT_NONE;
  sb_free(s);
  *out = r;
  return SB_OK;
}

/* ---- HDF5 datasets ---- */

/* Open a 1-D numeric dataset; *n gets its length, *is_signed whether it is a signed integer. */
static int open_1d(const char *file, hid_t loc, const char *name, const char *fullpath, int want_int, hid_t *ds,
                   size_t *n, int *is_signed) {
  *ds = H5I_INVALID_HID;
  if (H5Lexists(loc, name, H5P_DEFAULT) <= 0)
    SB_ERROR(SB_EFORMAT, "%s: %s: missing dataset", file, fullpath);
  H5O_info_t oi;
  if (H5Oget_info_by_name2(loc, name, &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_DATASET)
    SB_ERROR(SB_EFORMAT, "%s: %s: expected a dataset", file, fullpath);
  hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
  if (d < 0) SB_ERROR(SB_EFORMAT, "%s: %s: cannot open dataset", file, fullpath);
  hid_t sp = H5Dget_space(d), t = H5Dget_type(d);
  int rank = H5Sget_simple_extent_ndims(sp);
  hsize_t dims[2] = {0, 0};
  H5T_class_t cls = H5Tget_class(t);
  int st = SB_OK;
  if (rank == 1) H5Sget_simple_extent_dims(sp, dims, NULL);
  if (rank != 1)
    st = SB_SET_ERROR(SB_EFORMAT, "%s: %s: expected a 1-D dataset (got rank %d)", file, fullpath, rank);
  else if (want_int && cls != H5T_INTEGER)
    st = SB_SET_ERROR(SB_EFORMAT, "%s: %s: expected integers", file, fullpath);
  else if (!want_int && cls != H5T_FLOAT && cls != H5T_INTEGER)
    st = SB_SET_ERROR(SB_EFORMAT, "%s: %s: expected numbers", file, fullpath);
  if (is_signed) *is_signed = cls == H5T_INTEGER && H5Tget_sign(t) == H5T_SGN_2;
  H5Tclose(t);
  H5Sclose(sp);
  if (st) { H5Dclose(d); return st; }
  *ds = d;
  *n = (size_t)dims[0];
  return SB_OK;
}

static int read_window(hid_t ds, hid_t mtype, size_t off, size_t n, void *buf) {
  if (n == 0) return 0;
  hid_t fs = H5Dget_space(ds);
  hsize_t o = off, c = n;
  int ok = H5Sselect_hyperslab(fs, H5S_SELECT_SET, &o, NULL, &c, NULL) >= 0;
  hid_t ms = H5Screate_simple(1, &c, NULL);
  ok = ok && H5Dread(ds, mtype, ms, fs, H5P_DEFAULT, buf) >= 0;
  H5Sclose(ms);
  H5Sclose(fs);
  return ok ? 0 : -1;
}

/* Integers [off, off + n) of ds (path `what` in `file`) into out as uint64: signed datasets are
 * read as int64 so that a negative value is refused (HDF5's conversion would clamp it to 0), and
 * values beyond 2^63 - 1 are refused (ids and ends that large are corrupt; JSON output is int64).
 * SB_EFORMAT naming the element, SB_EIO when unreadable. */
static int read_u64(const char *file, hid_t ds, const char *what, int is_signed, size_t off, size_t n, uint64_t *out) {
  if (read_window(ds, is_signed ? H5T_NATIVE_INT64 : H5T_NATIVE_UINT64, off, n, out) < 0)
    SB_ERROR(SB_EIO, "%s: %s: cannot read elements %zu..%zu", file, what, off, off + n);
  for (size_t i = 0; i < n; i++) {
    if (is_signed && (int64_t)out[i] < 0)
      SB_ERROR(SB_EFORMAT, "%s: %s[%zu]: must be >= 0 (got %lld)", file, what, off + i, (long long)(int64_t)out[i]);
    if (out[i] > (uint64_t)INT64_MAX)
      SB_ERROR(SB_EFORMAT, "%s: %s[%zu]: %llu is beyond 2^63 - 1", file, what, off + i, (unsigned long long)out[i]);
  }
  return SB_OK;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* SB_EFORMAT naming `what` and the id when ids[0..n) holds an id twice (units or nodes that
 * would be merged into one neuron). */
static int unique_ids(const char *file, const char *what, const uint64_t *ids, size_t n) {
  uint64_t *c = sb_malloc((n + 1) * sizeof *c);
  if (!c) return SB_ENOMEM;
  memcpy(c, ids, n * sizeof *c);
  qsort(c, n, sizeof *c, cmp_u64);
  for (size_t i = 1; i < n; i++)
    if (c[i] == c[i - 1]) {
      unsigned long long d = (unsigned long long)c[i];
      size_t a = 0, b = 0;
      while (ids[a] != c[i]) a++;
      for (b = a + 1; ids[b] != c[i]; b++) {}
      sb_free(c);
      SB_ERROR(SB_EFORMAT, "%s: %s[%zu]: id %llu appears twice (also at [%zu]); expected unique ids", file, what, b, d, a);
    }
  sb_free(c);
  return SB_OK;
}

/* ---- SONATA ---- */

static int open_sonata_pop(sb_spk_file *f, hid_t g, const char *name, const char *gpath, int legacy) {
  spk_pop *p = add_pop(f, name);
  if (!p) return SB_ENOMEM;
  char path[1024];
  const char *idname = legacy ? (H5Lexists(g, "gids", H5P_DEFAULT) > 0 ? "gids" : "node_ids") : "node_ids";
  snprintf(path, sizeof path, "%s/timestamps", gpath);
  p->ts_path = sb_strdup(path);
  snprintf(path, sizeof path, "%s/%s", gpath, idname);
  p->ids_path = sb_strdup(path);
  p->info.where = sb_strdup(gpath);
  if (!p->ts_path || !p->ids_path || !p->info.where) return SB_ENOMEM;
  size_t nt = 0, ni = 0;
  int st = open_1d(f->path, g, "timestamps", p->ts_path, 0, &p->ts, &nt, NULL);
  if (!st) st = open_1d(f->path, g, idname, p->ids_path, 1, &p->ids, &ni, &p->ids_signed);
  if (st) return st;
  if (nt != ni)
    SB_ERROR(SB_EFORMAT, "%s: %s: length %zu differs from %s (%zu); expected one node id per spike", f->path,
             p->ids_path, ni, p->ts_path, nt);
  p->info.n_spikes = nt;
  if (sb_h5_attr_exists(g, "n_nodes")) {   /* spikebridge's writers: the population's size, ids 0..n-1 */
    int64_t nn = -1;
    size_t got = 0;
    if (sb_h5_attr_read_int64s(g, "n_nodes", &nn, 1, &got) || got != 1 || nn < 0)
      SB_ERROR(SB_EFORMAT, "%s: %s: attribute n_nodes: expected one integer >= 0", f->path, gpath);
    /* spikebridge's populations have fewer than 2^32 neurons; the per-node statistics (about 32
     * bytes a node) must fit in memory */
    const char *what;
    double mem = (double)sb_mem_limit(&what);
    if (nn > (int64_t)UINT32_MAX || 32.0 * (double)nn > mem)
      SB_ERROR(SB_EFORMAT, "%s: %s: attribute n_nodes: %lld nodes is too many: expected < 2^32, with about 32 bytes a node "
               "within the %.3g GB of %s", f->path, gpath, (long long)nn, mem / 1e9, what);
    p->info.n_nodes = (size_t)nn;
    p->implicit_nodes = 1;
  }
  st = read_sorting(g, &p->info.sorting);
  if (!st) st = read_units(f->path, p->ts, p->ts_path, "units", &p->info.time_scale);
  if (!st && !sb_h5_attr_exists(p->ts, "units")) st = read_units(f->path, g, gpath, "units", &p->info.time_scale);
  return st;
}

typedef struct { sb_spk_file *f; hid_t spikes; int status; } sonata_iter;

static herr_t sonata_visit(hid_t loc, const char *name, const H5L_info_t *li, void *data) {
  (void)li;
  sonata_iter *it = data;
  H5O_info_t oi;
  if (H5Oget_info_by_name2(loc, name, &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_GROUP) return 0;
  hid_t g = H5Gopen2(loc, name, H5P_DEFAULT);
  char gpath[512];
  snprintf(gpath, sizeof gpath, "/spikes/%s", name);
  it->status = open_sonata_pop(it->f, g, name, gpath, 0);
  H5Gclose(g);
  return it->status ? -1 : 0;
}

static int open_sonata(sb_spk_file *f) {
  /* spikebridge's outputs say when the recording ends: a run's (or eval --record's) t_stop; a
   * checkpoint's time (its first "time" entry), since its spikes end there, before t_stop */
  int ckpt = sb_h5_attr_exists(f->file, "checkpoint_version");
  const char *tname = ckpt ? "time" : "t_stop";
  if ((ckpt || sb_h5_attr_exists(f->file, "spikebridge_version")) && sb_h5_attr_exists(f->file, tname)) {
    double ts[4] = {NAN, NAN, NAN, NAN};
    size_t got = 0;
    hid_t at = H5Aopen(f->file, tname, H5P_DEFAULT), ty = at >= 0 ? H5Aget_type(at) : H5I_INVALID_HID;
    H5T_class_t cls = ty >= 0 ? H5Tget_class(ty) : H5T_NO_CLASS;
    hid_t asp = at >= 0 ? H5Aget_space(at) : H5I_INVALID_HID;
    hssize_t npts = asp >= 0 ? H5Sget_simple_extent_npoints(asp) : -1;
    if (asp >= 0) H5Sclose(asp);
    if (ty >= 0) H5Tclose(ty);
    if (at >= 0) H5Aclose(at);
    if (cls != H5T_FLOAT && cls != H5T_INTEGER)
      SB_ERROR(SB_EFORMAT, "%s: root attribute %s: expected a number (ms), the recording's end", f->path, tname);
    /* a run's t_stop is one number: an array [300, 400] was accepted and its first element used
     * (a checkpoint's `time` is a list whose first entry is the clock) */
    if (!ckpt && npts != 1)
      SB_ERROR(SB_EFORMAT, "%s: root attribute %s: expected one number (ms), the recording's end; got %lld values", f->path,
               tname, (long long)npts);
    if (!sb_h5_attr_read_doubles(f->file, tname, ts, 4, &got) && got >= 1 && isfinite(ts[0]) && ts[0] > 0) f->t_stop = ts[0];
    else if (got >= 1)   /* a number, but no end time (it was ignored silently) */
      SB_ERROR(SB_EFORMAT, "%s: root attribute %s: %g is not a recording end; expected a finite time > 0 ms", f->path, tname, ts[0]);
    else
      SB_ERROR(SB_EFORMAT, "%s: root attribute %s: expected a number (ms), the recording's end", f->path, tname);
  }
  hid_t sp = H5Gopen2(f->file, "spikes", H5P_DEFAULT);
  if (sp < 0) SB_ERROR(SB_EFORMAT, "%s: /spikes: expected a group", f->path);
  int st = SB_OK;
  if (H5Lexists(sp, "timestamps", H5P_DEFAULT) > 0) {
    f->kind = SB_SPK_SONATA_LEGACY;
    const char *pname = "default";
    st = open_sonata_pop(f, sp, pname, "/spikes", 1);
  } else {
    f->kind = SB_SPK_SONATA;
    sonata_iter it = {f, sp, SB_OK};
    H5Literate(sp, H5_INDEX_NAME, H5_ITER_INC, NULL, sonata_visit, &it);
    st = it.status;
  }
  H5Gclose(sp);
  return st;
}

/* ---- SONATA nodes files ---- */

static herr_t nodes_visit(hid_t loc, const char *name, const H5L_info_t *li, void *data) {
  (void)li;
  sonata_iter *it = data;
  H5O_info_t oi;
  if (H5Oget_info_by_name2(loc, name, &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_GROUP) return 0;
  spk_pop *p = add_pop(it->f, name);
  if (!p) { it->status = SB_ENOMEM; return -1; }
  char path[512];
  snprintf(path, sizeof path, "/nodes/%s", name);
  p->info.where = sb_strdup(path);
  if (!p->info.where) { it->status = SB_ENOMEM; return -1; }
  hid_t g = H5Gopen2(loc, name, H5P_DEFAULT);
  /* node_id holds the ids; without it (allowed by SONATA) the ids are 0..n-1, n from the
   * other per-node datasets */
  const char *cands[] = {"node_id", "node_type_id", "node_group_id", NULL};
  size_t n = 0;
  int st = SB_OK;
  for (int i = 0; cands[i]; i++) {
    if (H5Lexists(g, cands[i], H5P_DEFAULT) <= 0) continue;
    hid_t d;
    snprintf(path, sizeof path, "/nodes/%s/%s", name, cands[i]);
    st = open_1d(it->f->path, g, cands[i], path, 1, &d, &n, i == 0 ? &p->ids_signed : NULL);
    if (st) break;
    if (i == 0) {
      p->ids = d;
      p->ids_path = sb_strdup(path);
      if (!p->ids_path) st = SB_ENOMEM;
    } else {
      H5Dclose(d);
    }
    break;
  }
  H5Gclose(g);
  p->info.n_nodes = n;
  it->status = st;
  return st ? -1 : 0;
}

/* ---- NWB 2 units table ---- */

static int open_nwb_units(sb_spk_file *f) {
  f->kind = SB_SPK_NWB_UNITS;
  hid_t u = H5Gopen2(f->file, "units", H5P_DEFAULT);
  if (u < 0) SB_ERROR(SB_EFORMAT, "%s: /units: expected a group", f->path);
  spk_pop *p = add_pop(f, "units");
  int st = p ? SB_OK : SB_ENOMEM;
  size_t nt = 0, ni = 0, nid = 0;
  hid_t di = H5I_INVALID_HID, did = H5I_INVALID_HID;
  if (!st) {
    p->info.where = sb_strdup("/units");
    p->ts_path = sb_strdup("/units/spike_times");
    p->info.time_scale = 1000.0;   /* NWB stores seconds */
    p->info.sorting = SB_SORT_BY_ID;
    st = open_1d(f->path, u, "spike_times", "/units/spike_times", 0, &p->ts, &nt, NULL);
  }
  if (!st) st = open_1d(f->path, u, "spike_times_index", "/units/spike_times_index", 1, &di, &ni, NULL);
  int si = 0, sid = 0;
  if (!st) {
    hid_t t = H5Dget_type(di);
    si = H5Tget_sign(t) == H5T_SGN_2;
    H5Tclose(t);
  }
  if (!st && H5Lexists(u, "id", H5P_DEFAULT) > 0) st = open_1d(f->path, u, "id", "/units/id", 1, &did, &nid, &sid);
  if (!st && did >= 0 && nid != ni)
    st = SB_SET_ERROR(SB_EFORMAT, "%s: /units/id: length %zu differs from /units/spike_times_index (%zu)", f->path,
                      nid, ni);
  if (!st) {
    p->n_units = ni;
    p->unit_ends = sb_malloc((ni + 1) * sizeof *p->unit_ends);
    p->unit_ids = sb_malloc((ni + 1) * sizeof *p->unit_ids);
    if (!p->unit_ends || !p->unit_ids) st = SB_ENOMEM;
  }
  if (!st) st = read_u64(f->path, di, "/units/spike_times_index", si, 0, ni, p->unit_ends);
  if (!st && did >= 0) st = read_u64(f->path, did, "/units/id", sid, 0, ni, p->unit_ids);
  if (!st && did < 0)
    for (size_t k = 0; k < ni; k++) p->unit_ids[k] = k;
  if (!st && did >= 0) st = unique_ids(f->path, "/units/id", p->unit_ids, ni);   /* two units, one id: merged */
  for (size_t k = 0; !st && k < ni; k++)
    if ((k && p->unit_ends[k] < p->unit_ends[k - 1]) || p->unit_ends[k] > nt)
      st = SB_SET_ERROR(SB_EFORMAT,
                        "%s: /units/spike_times_index[%zu]: expected non-decreasing ends <= %zu (got %llu)",
                        f->path, k, nt, (unsigned long long)p->unit_ends[k]);
  if (!st && (ni ? p->unit_ends[ni - 1] : 0) != nt)
    st = SB_SET_ERROR(SB_EFORMAT, "%s: /units/spike_times_index: last end %llu differs from len(spike_times) %zu",
                      f->path, (unsigned long long)(ni ? p->unit_ends[ni - 1] : 0), nt);
  if (!st) {
    p->info.n_spikes = nt;
    p->info.n_nodes = ni;
    st = read_units(f->path, p->ts, "/units/spike_times", "unit", &p->info.time_scale);
  }
  if (di >= 0) H5Dclose(di);
  if (did >= 0) H5Dclose(did);
  H5Gclose(u);
  return st;
}

/* ---- BMTK NWB-1 spike trains: /processing/<trial>/spike_train/<node_id>/data ---- */

typedef struct { uint64_t id; char name[64]; } node_name;
static int cmp_node_name(const void *a, const void *b) {
  const node_name *x = a, *y = b;
  return x->id < y->id ? -1 : x->id > y->id;
}

typedef struct { node_name *v; size_t n, cap; int status; const char *file; } name_list;
static herr_t collect_names(hid_t loc, const char *name, const H5L_info_t *li, void *data) {
  (void)loc; (void)li;
  name_list *l = data;
  char *end;
  errno = 0;
  unsigned long long id = strtoull(name, &end, 10);
  if (*end || errno || !isdigit((unsigned char)name[0])) {
    l->status = SB_SET_ERROR(SB_EFORMAT, "%s: spike_train/%s: expected a numeric node id as group name", l->file, name);
    return -1;
  }
  if (l->n == l->cap) {
    size_t nc = l->cap ? 2 * l->cap : 64;
    node_name *nv = sb_realloc(l->v, nc * sizeof *nv);
    if (!nv) { l->status = SB_ENOMEM; return -1; }
    l->v = nv;
    l->cap = nc;
  }
  l->v[l->n].id = id;
  snprintf(l->v[l->n].name, sizeof l->v[l->n].name, "%s", name);
  l->n++;
  return 0;
}

typedef struct { sb_spk_file *f; int status; } trial_iter;

static herr_t bmtk_trial(hid_t loc, const char *trial, const H5L_info_t *li, void *data) {
  (void)li;
  trial_iter *it = data;
  char path[512];
  snprintf(path, sizeof path, "%s/spike_train", trial);
  if (!sb_h5_exists(loc, path)) return 0;
  hid_t g = H5Gopen2(loc, path, H5P_DEFAULT);
  name_list l = {NULL, 0, 0, SB_OK, it->f->path};
  H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, collect_names, &l);
  int st = l.status;
  spk_pop *p = st ? NULL : add_pop(it->f, trial);
  if (!st && !p) st = SB_ENOMEM;
  if (!st) {
    qsort(l.v, l.n, sizeof *l.v, cmp_node_name);
    snprintf(path, sizeof path, "/processing/%s/spike_train", trial);
    p->info.where = sb_strdup(path);
    p->info.sorting = SB_SORT_BY_ID;
    p->info.n_nodes = l.n;
    p->node_list = sb_malloc((l.n + 1) * sizeof *p->node_list);
    if (!p->node_list) st = SB_ENOMEM;
    for (size_t k = 0; !st && k < l.n; k++) p->node_list[k] = l.v[k].id;
    size_t total = 0, cap = 0;
    for (size_t k = 0; !st && k < l.n; k++) {
      char dpath[256], full[768];
      snprintf(dpath, sizeof dpath, "%s/data", l.v[k].name);
      snprintf(full, sizeof full, "/processing/%s/spike_train/%s", trial, dpath);
      hid_t d;
      size_t n = 0;
      st = open_1d(it->f->path, g, dpath, full, 0, &d, &n, NULL);
      if (st) break;
      if (k == 0) st = read_units(it->f->path, d, full, "unit", &p->info.time_scale);
      if (!st && total + n > cap) {
        size_t nc = (total + n) * 2 + 64;
        double *nt = sb_realloc(p->mem_t, nc * sizeof *nt);
        if (nt) p->mem_t = nt;
        uint64_t *ni = nt ? sb_realloc(p->mem_id, nc * sizeof *ni) : NULL;
        if (ni) p->mem_id = ni;
        if (!nt || !ni) st = SB_ENOMEM;
        cap = nc;
      }
      if (!st && n && read_window(d, H5T_NATIVE_DOUBLE, 0, n, p->mem_t + total) < 0)
        st = SB_SET_ERROR(SB_EFORMAT, "%s: %s: cannot read", it->f->path, full);
      for (size_t i = 0; !st && i < n; i++) p->mem_id[total + i] = l.v[k].id;
      total += n;
      H5Dclose(d);
    }
    p->info.n_spikes = total;
  }
  sb_free(l.v);
  H5Gclose(g);
  it->status = st;
  return st ? -1 : 0;
}

static int open_nwb_bmtk(sb_spk_file *f) {
  f->kind = SB_SPK_NWB_BMTK;
  hid_t g = H5Gopen2(f->file, "processing", H5P_DEFAULT);
  trial_iter it = {f, SB_OK};
  H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, bmtk_trial, &it);
  H5Gclose(g);
  return it.status;
}

/* ---- NEST text ---- */

static int is_number(const char *s) {
  char *end;
  strtod(s, &end);
  return end != s && (*end == '\0' || isspace((unsigned char)*end));
}

static int open_nest(sb_spk_file *f) {
  f->kind = SB_SPK_NEST_TEXT;
  FILE *in = fopen(f->path, "r");
  if (!in) SB_ERROR(SB_EIO, "%s: cannot open: %s", f->path, strerror(errno));
  const char *base = strrchr(f->path, '/');
  base = base ? base + 1 : f->path;
  char pname[256];
  snprintf(pname, sizeof pname, "%s", base);
  char *dot = strrchr(pname, '.');
  if (dot && dot != pname) *dot = '\0';
  spk_pop *p = add_pop(f, pname);
  if (!p) { fclose(in); return SB_ENOMEM; }
  p->info.where = sb_strdup(f->path);
  p->info.sorting = SB_SORT_UNKNOWN;
  int col_sender = 0, col_time = 1, header_seen = 0, st = SB_OK, ncols = 0;
  size_t n = 0, cap = 0, lineno = 0;
  char line[4096];
  while (!st && fgets(line, sizeof line, in)) {
    lineno++;
    char *s = line;
    if (lineno == 1 && !memcmp(s, "\xEF\xBB\xBF", 3)) s += 3;   /* a UTF-8 byte order mark */
    while (isspace((unsigned char)*s)) s++;
    if (*s == '#') {
      /* NEST 3's ASCII backend puts the column names in a comment: "# sender\ttime_ms" */
      s++;
      while (isspace((unsigned char)*s)) s++;
      if (!strstr(s, "sender") || header_seen || n > 0) continue;
    }
    if (!*s) continue;
    /* split into at most 16 columns */
    char *tok[16];
    int nt = 0;
    for (char *save = NULL, *t = strtok_r(s, " \t\r\n,", &save); t && nt < 16; t = strtok_r(NULL, " \t\r\n,", &save))
      tok[nt++] = t;
    if (nt == 0) continue;
    if (!is_number(tok[0])) {
      if (header_seen || n > 0) {
        st = SB_SET_ERROR(SB_EFORMAT, "%s:%zu: expected 'sender time' numbers (got '%s')", f->path, lineno, tok[0]);
        break;
      }
      header_seen = 1;
      col_sender = col_time = -1;
      int col_step = -1;
      int other = -1;
      for (int k = 0; k < nt; k++) {
        if (!strcmp(tok[k], "sender") || !strcmp(tok[k], "senders")) col_sender = k;
        else if (!strcmp(tok[k], "time_ms") || !strcmp(tok[k], "times") || !strcmp(tok[k], "time")) col_time = k;
        else if (!strcmp(tok[k], "time_step")) col_step = k;
        else if (other < 0) other = k;
      }
      if (col_sender < 0 || col_time < 0) {
        st = SB_SET_ERROR(SB_EFORMAT, "%s:%zu: header needs columns 'sender' and 'time_ms'%s", f->path, lineno,
                          col_step >= 0 ? " (times in steps are not supported: record with time_in_steps=False)" : "");
      } else if (other >= 0) {   /* a multimeter's "sender time_ms V_m" analysed as spikes gave 10 kHz */
        st = SB_SET_ERROR(SB_EFORMAT, "%s:%zu: header has the column '%s': a recording of state variables (multimeter), "
                          "not of spikes; expected the spike recorder's columns 'sender' and 'time_ms' only", f->path,
                          lineno, tok[other]);
      }
      ncols = nt;
      continue;
    }
    /* without a header (NEST 2 .gdf): 'gid time'. Three columns are a file with times in steps
     * ('gid step offset', time_in_steps=True: read as ms it was 10x off) or a multimeter's */
    if (!header_seen && nt != 2) {
      st = SB_SET_ERROR(SB_EFORMAT, "%s:%zu: expected 2 columns (sender, time in ms) (got %d): a file with times in steps "
                        "(time_in_steps=True) or a recording of state variables is not supported", f->path, lineno, nt);
      break;
    }
    if (header_seen && nt != ncols) {
      st = SB_SET_ERROR(SB_EFORMAT, "%s:%zu: expected %d columns as the header (got %d)", f->path, lineno, ncols, nt);
      break;
    }
    char *end;
    errno = 0;
    double sd = strtod(tok[col_sender], &end);
    if (*end || errno || sd < 0 || sd != floor(sd) || sd > 1.8e19) {
      st = SB_SET_ERROR(SB_EFORMAT, "%s:%zu: sender: expected a non-negative integer id (got '%s')", f->path, lineno,
                        tok[col_sender]);
      break;
    }
    double t = strtod(tok[col_time], &end);
    if (*end) {
      st = SB_SET_ERROR(SB_EFORMAT, "%s:%zu: time: expected a number in ms (got '%s')", f->path, lineno, tok[col_time]);
      break;
    }
    if (!isfinite(t) || t < 0) {   /* here, where the line is known (later checks give the spike index) */
      st = SB_SET_ERROR(SB_EFORMAT, "%s:%zu: time: expected a finite time >= 0 ms (got '%s')", f->path, lineno, tok[col_time]);
      break;
    }
    if (n == cap) {
      size_t nc = cap ? 2 * cap : 4096;
      double *ntp = sb_realloc(p->mem_t, nc * sizeof *ntp);
      if (ntp) p->mem_t = ntp;
      uint64_t *nip = ntp ? sb_realloc(p->mem_id, nc * sizeof *nip) : NULL;
      if (nip) p->mem_id = nip;
      if (!ntp || !nip) { st = SB_ENOMEM; break; }
      cap = nc;
    }
    p->mem_t[n] = t;
    p->mem_id[n] = (uint64_t)sd;
    n++;
  }
  fclose(in);
  p->info.n_spikes = n;
  return st;
}

/* A file that is not HDF5: NEST text if its first bytes are text, else an error. */
static int looks_text(const char *path) {
  FILE *in = fopen(path, "rb");
  if (!in) return 0;
  unsigned char buf[512];
  size_t n = fread(buf, 1, sizeof buf, in);
  fclose(in);
  if (n == 0) return 1;
  for (size_t i = 0; i < n; i++)
    if (buf[i] == 0 || (buf[i] < 32 && !isspace(buf[i]))) return 0;
  return 1;
}

static int has_suffix(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && !strcasecmp(s + a - b, suf);
}

static int open_hdf5(sb_spk_file *f) {
  const char *path = f->path;
  if (H5Lexists(f->file, "spikes", H5P_DEFAULT) > 0) return open_sonata(f);
  if (sb_h5_exists(f->file, "units/spike_times")) return open_nwb_units(f);
  if (H5Lexists(f->file, "processing", H5P_DEFAULT) > 0) {
    int st = open_nwb_bmtk(f);
    if (st || f->n_pops > 0) return st;
  }
  if (H5Lexists(f->file, "nodes", H5P_DEFAULT) > 0) {
    f->kind = SB_SPK_SONATA_NODES;
    hid_t g = H5Gopen2(f->file, "nodes", H5P_DEFAULT);
    sonata_iter it = {f, g, SB_OK};
    H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, nodes_visit, &it);
    H5Gclose(g);
    return it.status;
  }
  if (H5Lexists(f->file, "units", H5P_DEFAULT) > 0)
    SB_ERROR(SB_EFORMAT, "%s: /units/spike_times: missing dataset (NWB units table without spikes)", path);
  SB_ERROR(SB_EFORMAT,
           "%s: no spikes found: expected /spikes (SONATA), /units/spike_times (NWB) or "
           "/processing/*/spike_train (NWB-1)", path);
}

int sb_spk_open(const char *path, sb_spk_file **out) {
  *out = NULL;
  int chk = sb_input_check(path);
  if (chk) return chk;
  sb_spk_file *f = sb_calloc(1, sizeof *f);
  if (!f) return SB_ENOMEM;
  f->t_stop = NAN;
  f->file = H5I_INVALID_HID;
  f->path = sb_strdup(path);
  if (!f->path) { sb_free(f); return SB_ENOMEM; }
  int st;
  htri_t is = H5Fis_hdf5(path);
  if (is <= 0) {
    if (has_suffix(path, ".h5") || has_suffix(path, ".hdf5") || has_suffix(path, ".nwb") || !looks_text(path))
      st = SB_SET_ERROR(SB_EFORMAT, "%s: not an HDF5 file (nor a NEST text spike recording)", path);
    else
      st = open_nest(f);
  } else {
    st = sb_h5_open_read(path, &f->file);
    if (!st) st = open_hdf5(f);
  }
  if (st) {
    sb_spk_close(f);
    return st;
  }
  *out = f;
  return SB_OK;
}

/* ---- reading ---- */

static int check_times(const sb_spk_file *f, const spk_pop *p, size_t off, double *t, size_t n) {
  const char *where = p->ts_path ? p->ts_path : p->info.where;
  double k = p->info.time_scale;
  for (size_t i = 0; i < n; i++) {
    double v = t[i];
    if (!(v >= 0.0) || !isfinite(v))
      SB_ERROR(SB_EFORMAT, "%s: %s[%zu]: spike time must be finite and >= 0 (got %g)", f->path, where, off + i, v);
    t[i] = v * k;
  }
  return SB_OK;
}

int sb_spk_read(sb_spk_file *f, size_t pi, size_t off, size_t n, double *t_ms, uint64_t *ids) {
  if (pi >= f->n_pops) SB_ERROR(SB_EINVAL, "%s: population index %zu out of range", f->path, pi);
  spk_pop *p = &f->pops[pi];
  if (off > p->info.n_spikes || n > p->info.n_spikes - off)
    SB_ERROR(SB_EINVAL, "%s: %s: window [%zu, %zu) past the end (%zu spikes)", f->path, p->info.name, off, off + n,
             p->info.n_spikes);
  if (n == 0) return SB_OK;
  if (p->mem_t) {   /* NEST text, NWB-1: loaded at open */
    if (t_ms) {
      memcpy(t_ms, p->mem_t + off, n * sizeof *t_ms);
      int st = check_times(f, p, off, t_ms, n);
      if (st) return st;
    }
    if (ids) memcpy(ids, p->mem_id + off, n * sizeof *ids);
    return SB_OK;
  }
  if (t_ms) {
    if (read_window(p->ts, H5T_NATIVE_DOUBLE, off, n, t_ms) < 0)
      SB_ERROR(SB_EIO, "%s: %s: cannot read spikes %zu..%zu", f->path, p->ts_path, off, off + n);
    int st = check_times(f, p, off, t_ms, n);
    if (st) return st;
  }
  if (ids && p->ids >= 0) {
    int st = read_u64(f->path, p->ids, p->ids_path, p->ids_signed, off, n, ids);
    if (st) return st;
    /* with the attribute n_nodes the population's nodes are 0..n_nodes-1 (SONATA node ids index
     * the node population): a larger id is a corrupt or mismatched file, not a new neuron */
    for (size_t i = 0; p->implicit_nodes && i < n; i++)
      if (ids[i] >= p->info.n_nodes)
        SB_ERROR(SB_EFORMAT, "%s: %s[%zu]: node id %llu is out of range: expected < n_nodes = %zu (attribute of %s)",
                 f->path, p->ids_path, off + i, (unsigned long long)ids[i], p->info.n_nodes, p->info.where);
  } else if (ids && p->unit_ends) {
    /* NWB units: the unit of position j is the first k with ends[k] > j */
    size_t lo = 0, hi = p->n_units;
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (p->unit_ends[mid] > off) hi = mid; else lo = mid + 1;
    }
    size_t k = lo;
    for (size_t i = 0; i < n; i++) {
      while (k < p->n_units && p->unit_ends[k] <= off + i) k++;
      ids[i] = p->unit_ids[k < p->n_units ? k : p->n_units - 1];
    }
  }
  return SB_OK;
}

int sb_spk_node_ids(sb_spk_file *f, size_t pi, uint64_t **ids, size_t *n) {
  *ids = NULL;
  *n = 0;
  if (pi >= f->n_pops) SB_ERROR(SB_EINVAL, "%s: population index %zu out of range", f->path, pi);
  spk_pop *p = &f->pops[pi];
  size_t m = p->info.n_nodes;
  if (f->kind != SB_SPK_SONATA_NODES && f->kind != SB_SPK_NWB_UNITS && f->kind != SB_SPK_NWB_BMTK && !p->implicit_nodes)
    SB_ERROR(SB_EINVAL, "%s: %s: this %s lists no nodes, only spikes (give a SONATA nodes file)", f->path,
             p->info.name, sb_spk_kind_name(f->kind));
  uint64_t *v = sb_malloc((m + 1) * sizeof *v);
  if (!v) return SB_ENOMEM;
  if (f->kind == SB_SPK_NWB_UNITS) memcpy(v, p->unit_ids, m * sizeof *v);
  else if (f->kind == SB_SPK_NWB_BMTK) memcpy(v, p->node_list, m * sizeof *v);
  else if (p->ids < 0 || p->implicit_nodes) for (size_t i = 0; i < m; i++) v[i] = i;
  else if (m) {
    int st = read_u64(f->path, p->ids, p->ids_path, p->ids_signed, 0, m, v);
    if (st) {
      sb_free(v);
      return st;
    }
  }
  *ids = v;
  *n = m;
  return SB_OK;
}
