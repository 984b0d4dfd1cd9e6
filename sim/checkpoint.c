/* Checkpoints: write the engine's full run-time state between two windows to HDF5 (with the
 * recordings so far in the SONATA layout) and restore it into a freshly built network, so that
 * a stopped and resumed run produces the spikes of an uninterrupted one, bit for bit.
 * Not here: when to checkpoint (the CLI's window hook and signal handling, cli/cmd_run.c). */
#include "sim/internal.h"

#include <math.h>
#include <string.h>
#include <zlib.h>

#define CP_KIND "spikebridge checkpoint"
#define CP_VERSION 2   /* 2: recordings copied chunk for chunk, digest over the stored chunks */

void sb_net_set_window_hook(sb_net *net, sb_net_window_fn fn, void *ctx) {
  net->hook = fn;
  net->hook_ctx = ctx;
  net->hook_due = NULL;
}

void sb_net_set_window_hook_due(sb_net *net, int (*due)(void *ctx, double t)) { net->hook_due = due; }

int sb_net_stopped(const sb_net *net) { return net->stopped; }

void sb_checkpoint_info_free(sb_checkpoint_info *info) {
  sb_free(info->model_file);
  sb_free(info->model_id);
  sb_free(info->output);
  sb_free(info->checkpoint);
  for (int i = 0; info->set && i < info->n_set; i++) sb_free(info->set[i]);
  sb_free(info->set);
  memset(info, 0, sizeof *info);
}

/* ---- writing ---- */

static int wr(hid_t g, const char *name, hid_t ft, hid_t mt, const void *d, size_t n) {
  int st = sb_h5_write_1d(g, name, ft, mt, d, n);
  if (st) return sb_error_prefix_(st, "checkpoint: %s", name);
  return SB_OK;
}

static int checkpoint_digest(hid_t f, unsigned long *crc);

/* Visits every stored chunk of chunked dataset ds: fn(ctx, grid offset, filter mask, stored
 * bytes, size). Returns 1 when ds is chunked and every call returned 0, 0 when ds is not chunked,
 * -1 on an HDF5 error or when fn failed. */
typedef int (*chunk_fn)(void *ctx, const hsize_t *off, uint32_t mask, const void *buf, size_t size);
static int for_each_chunk(hid_t ds, chunk_fn fn, void *ctx, hsize_t *dims_out, int *rank_out) {
  hid_t pl = H5Dget_create_plist(ds);
  if (pl < 0) return -1;
  hsize_t cdims[8];
  int chunked = H5Pget_layout(pl) == H5D_CHUNKED, crank = chunked ? H5Pget_chunk(pl, 8, cdims) : 0;
  H5Pclose(pl);
  if (!chunked) return 0;
  hid_t sp = H5Dget_space(ds);
  hsize_t dims[8];
  int rank = sp >= 0 ? H5Sget_simple_extent_dims(sp, dims, NULL) : -1;
  if (sp >= 0) H5Sclose(sp);
  if (rank < 1 || rank > 8 || crank != rank) return -1;
  if (dims_out) memcpy(dims_out, dims, (size_t)rank * sizeof *dims);
  if (rank_out) *rank_out = rank;
  hsize_t off[8] = {0}, nchunks = 1;
  for (int d = 0; d < rank; d++) {
    if (!cdims[d]) return -1;
    nchunks *= (dims[d] + cdims[d] - 1) / cdims[d];
  }
  unsigned char *buf = NULL;
  size_t cap = 0;
  int rc = 1;
  for (hsize_t q = 0; q < nchunks && rc == 1; q++) {
    hsize_t rest = q;   /* q's grid position, last dimension fastest */
    for (int d = rank - 1; d >= 0; d--) {
      hsize_t nd = (dims[d] + cdims[d] - 1) / cdims[d];
      off[d] = rest % nd * cdims[d];
      rest /= nd;
    }
    unsigned mask = 0;
    haddr_t addr = 0;
    hsize_t size = 0;
    if (H5Dget_chunk_info_by_coord(ds, off, &mask, &addr, &size) < 0) { rc = -1; break; }
    if (addr == HADDR_UNDEF) {   /* never written: the fill value */
      if (fn(ctx, off, 0, NULL, 0)) rc = -1;
      continue;
    }
    if (size > cap) {
      unsigned char *nb = sb_realloc(buf, (size_t)size);
      if (!nb) { rc = -1; break; }
      buf = nb;
      cap = (size_t)size;
    }
    uint32_t fm = 0;
    if (H5Dread_chunk(ds, H5P_DEFAULT, off, &fm, buf) < 0 || fn(ctx, off, fm, buf, (size_t)size)) rc = -1;
  }
  sb_free(buf);
  return rc;
}

typedef struct { hid_t dst; int werr; } copy_ctx;

static int copy_chunk(void *vc, const hsize_t *off, uint32_t mask, const void *buf, size_t size) {
  copy_ctx *c = vc;
  if (!buf) return 0;
  errno = 0;
  if (H5Dwrite_chunk(c->dst, H5P_DEFAULT, mask, off, size, buf) < 0) {
    c->werr = errno ? errno : EIO;
    return 1;
  }
  return 0;
}

/* Copies dataset src (all its rows, flushed) to a new dataset dst/name with the same type,
 * extent and creation properties; a chunked one chunk for chunk as stored (H5Dread_chunk,
 * H5Dwrite_chunk): no inflating and deflating again (a checkpoint carries every recording so far;
 * re-compressing them made CUBA with V_m sampled every 0.05 ms and a checkpoint every 10 ms 33x
 * slower than the run without checkpoints). Not H5Ocopy: it crashed inside HDF5 on a full disk. */
static int copy_dataset(hid_t src, hid_t dst, const char *name) {
  char sname[256] = "";
  if (H5Iget_name(src, sname, sizeof sname) < 0) sname[0] = '\0';
  hid_t pl = H5Dget_create_plist(src), ft = H5Dget_type(src), sp = H5Dget_space(src);
  hid_t ds = pl >= 0 && ft >= 0 && sp >= 0 ? H5Dcreate2(dst, name, ft, sp, H5P_DEFAULT, pl, H5P_DEFAULT) : H5I_INVALID_HID;
  int st = SB_OK;
  if (ds < 0) st = SB_SET_ERROR(SB_EIO, "checkpoint: cannot create the copy of %s", sname);
  copy_ctx c = {ds, 0};
  int r = ds >= 0 ? for_each_chunk(src, copy_chunk, &c, NULL, NULL) : 1;
  if (!st && r == 0) {   /* not chunked (small): as values */
    hid_t mt = H5Tget_native_type(ft, H5T_DIR_ASCEND);
    hssize_t np = H5Sget_simple_extent_npoints(sp);
    size_t sz = mt >= 0 ? H5Tget_size(mt) : 0;
    void *b = np >= 0 && sz ? sb_malloc((size_t)np * sz + 1) : NULL;
    errno = 0;
    if (!b || H5Dread(src, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, b) < 0 || H5Dwrite(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, b) < 0)
      r = -1, c.werr = errno;
    sb_free(b);
    if (mt >= 0) H5Tclose(mt);
  }
  if (!st && r < 0)
    st = c.werr ? SB_SET_ERROR(SB_EIO, "checkpoint: cannot copy the recording %s: %s", sname, strerror(c.werr))
                : SB_SET_ERROR(SB_EIO, "checkpoint: cannot copy the recording %s", sname);
  if (ds >= 0) H5Dclose(ds);
  if (pl >= 0) H5Pclose(pl);
  if (ft >= 0) H5Tclose(ft);
  if (sp >= 0) H5Sclose(sp);
  return st;
}

static int write_recordings(sb_net *net, hid_t f) {
  int st;
  if ((st = sb_rec_flush_(net, 1))) return st;
  if (H5Fflush(net->file, H5F_SCOPE_LOCAL) < 0) SB_ERROR(SB_EIO, "checkpoint: cannot flush the output file");
  for (int i = 0; i < net->n_pops && !st; i++) {
    sb_pop *p = &net->pops[i];
    if (!p->rec_spikes || p->ds_t < 0) continue;
    char path[300];
    snprintf(path, sizeof path, "spikes/%s", p->name);
    hid_t g = sb_h5_group(f, path);
    if (g < 0) SB_ERROR(SB_EIO, "checkpoint: cannot create /%s", path);
    sb_h5_attr_write_string(g, "sorting", "by_time");
    int64_t nn = (int64_t)p->n;   /* as the output file: analyze counts the silent neurons too */
    sb_h5_attr_write_int64s(g, "n_nodes", &nn, 1);
    st = copy_dataset(p->ds_t, g, "timestamps");
    if (!st) st = copy_dataset(p->ds_id, g, "node_ids");
    if (!st) {
      hid_t ds = H5Dopen2(g, "timestamps", H5P_DEFAULT);
      if (ds >= 0) { sb_h5_attr_write_string(ds, "units", "ms"); H5Dclose(ds); }
    }
    H5Gclose(g);
  }
  for (int i = 0; i < net->n_recs && !st; i++) {   /* a whole SONATA report: data and mapping */
    sb_rec *r = &net->recs[i];
    if (r->ds < 0) continue;
    char mp[300];
    snprintf(mp, sizeof mp, "%s/mapping", r->group);
    hid_t g = sb_h5_group(f, r->group), m = g >= 0 ? sb_h5_group(f, mp) : H5I_INVALID_HID;
    hid_t om = H5Gopen2(net->file, mp, H5P_DEFAULT);
    if (g < 0 || m < 0 || om < 0) st = SB_SET_ERROR(SB_EIO, "checkpoint: cannot create /%s", mp);
    if (!st) st = copy_dataset(r->ds, g, "data");
    if (!st) {
      hid_t ds = H5Dopen2(g, "data", H5P_DEFAULT);
      if (ds >= 0) {
        sb_h5_attr_write_string(ds, "units", r->unit);
        sb_h5_attr_write_string(ds, "variable_name", r->var);
        H5Dclose(ds);
      }
    }
    static const char *const maps[] = {"node_ids", "index_pointers", "element_ids"};
    for (int q = 0; q < 3 && !st; q++) {
      hid_t ds = H5Dopen2(om, maps[q], H5P_DEFAULT);
      st = ds >= 0 ? copy_dataset(ds, m, maps[q]) : SB_SET_ERROR(SB_EIO, "checkpoint: cannot open /%s/%s", mp, maps[q]);
      if (ds >= 0) H5Dclose(ds);
    }
    if (!st) {   /* the samples so far, as the finished output gives them */
      double tm[3] = {0.0, (double)r->written * r->interval, r->interval};
      st = wr(m, "time", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, tm, 3);
      hid_t ds = st ? H5I_INVALID_HID : H5Dopen2(m, "time", H5P_DEFAULT);
      if (ds >= 0) { sb_h5_attr_write_string(ds, "units", "ms"); H5Dclose(ds); }
    }
    if (om >= 0) H5Gclose(om);
    if (m >= 0) H5Gclose(m);
    if (g >= 0) H5Gclose(g);
  }
  return st;
}

int sb_net_checkpoint_write(sb_net *net, const char *path, const sb_checkpoint_info *info) {
  if (!net->prepared) SB_ERROR(SB_EINVAL, "checkpoint: the network has not run yet");
  int fin = sb_net_check_finite_(net, "; no checkpoint written");   /* it could never be resumed */
  if (fin) return fin;
  if (net->file < 0) SB_ERROR(SB_EINVAL, "checkpoint: no output file attached (the recordings go into the checkpoint)");
  sb_h5_out o;
  int st = sb_h5_create(&o, path);
  if (st) return st;
  hid_t f = o.file;
  size_t n = net->n, S = (size_t)net->S;
  /* meta */
  sb_h5_attr_write_string(f, "kind", CP_KIND);
  int64_t ver = CP_VERSION, nn = (int64_t)n, k[3] = {(int64_t)net->k, (int64_t)net->k_emit, (int64_t)net->S};
  int64_t seed = (int64_t)net->seed;
  double times[4] = {net->t, info->t_stop, net->W, net->next_flush};
  uint64_t cnt[3] = {net->spikes_total, 0, 0};
  for (int i = 0; i < net->threads; i++) { cnt[1] += net->t_events[(size_t)(i) * SB_TSTRIDE]; cnt[2] += net->t_ext[(size_t)(i) * SB_TSTRIDE]; }
  sb_h5_attr_write_int64s(f, "checkpoint_version", &ver, 1);
  sb_h5_attr_write_int64s(f, "neurons", &nn, 1);
  sb_h5_attr_write_int64s(f, "window_index", k, 3);
  sb_h5_attr_write_int64s(f, "seed", &seed, 1);
  sb_h5_attr_write_doubles(f, "time", times, 4);
  sb_h5_attr_write_doubles(f, "t_stop", &info->t_stop, 1);
  sb_h5_attr_write_string(f, "model_file", info->model_file ? info->model_file : "");
  if (info->model_id) sb_h5_attr_write_string(f, "model_fingerprint", info->model_id);
  if (info->output) sb_h5_attr_write_string(f, "output", info->output);
  if (info->checkpoint) sb_h5_attr_write_string(f, "checkpoint_file", info->checkpoint);
  sb_h5_attr_write_doubles(f, "checkpoint_every", &info->every, 1);
  {
    size_t len = 1;
    for (int i = 0; i < info->n_set; i++) len += strlen(info->set[i]) + 1;
    char *s = sb_malloc(len);
    if (!s) { sb_h5_abort(&o); return SB_ENOMEM; }
    s[0] = 0;
    for (int i = 0; i < info->n_set; i++) { strcat(s, info->set[i]); strcat(s, "\n"); }
    sb_h5_attr_write_string(f, "overrides", s);
    sb_free(s);
  }
  hid_t g = sb_h5_group(f, "checkpoint");
  if (g < 0) { sb_h5_abort(&o); SB_ERROR(SB_EIO, "%s: cannot create /checkpoint", path); }
  uint64_t counters[3] = {cnt[0], cnt[1], cnt[2]};
  st = wr(g, "counters", H5T_STD_U64LE, H5T_NATIVE_UINT64, counters, 3);
  uint64_t eager = 0;   /* events taken at delivery (optional: older checkpoints lack it) */
  for (int i = 0; i < net->threads; i++) eager += net->t_eager[(size_t)i * SB_TSTRIDE];
  if (!st) st = wr(g, "eager_events", H5T_STD_U64LE, H5T_NATIVE_UINT64, &eager, 1);
  /* neuron states, per population, as bytes */
  for (int i = 0; i < net->n_pops && !st; i++) {
    sb_pop *p = &net->pops[i];
    char name[300];
    snprintf(name, sizeof name, "state_%d", i);
    st = wr(g, name, H5T_STD_U8LE, H5T_NATIVE_UINT8, p->state, p->n * p->type->state_size);
  }
  if (!st) st = wr(g, "t_state", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, net->t_state, n);
  if (!st) st = wr(g, "t_safe", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, net->t_safe, n);
  if (!st) st = wr(g, "count", H5T_STD_U64LE, H5T_NATIVE_UINT64, net->count, n);
  if (!st) st = wr(g, "last", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, net->last, n);
  if (!st) st = wr(g, "isi_sum", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, net->isi_sum, n);
  if (!st) st = wr(g, "isi_sq", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, net->isi_sq, n);
  if (!st) st = wr(g, "stim_pos", H5T_STD_U64LE, H5T_NATIVE_UINT64, net->stim_pos, n);
  if (!st) st = wr(g, "pois_next", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, net->pois_next, net->n_pois);
  /* Poisson RNG states of the neurons that have Poisson input, in id order */
  if (!st) {
    size_t nr = 0, sz = 0;
    for (size_t q = 0; q < n; q++)
      if (net->pois_rng[q]) { nr++; sz = gsl_rng_size(net->pois_rng[q]); }
    unsigned char *b = sb_malloc(nr * sz + 1);
    if (!b) st = SB_ENOMEM;
    size_t at = 0;
    for (size_t q = 0; q < n && !st; q++)
      if (net->pois_rng[q]) { memcpy(b + at, gsl_rng_state(net->pois_rng[q]), sz); at += sz; }
    if (!st) st = wr(g, "pois_rng", H5T_STD_U8LE, H5T_NATIVE_UINT8, b, at);
    sb_free(b);
  }
  /* in-flight events: counts (S, n) and (t, w) pairs in slot-major, neuron order */
  if (!st) {
    size_t tot = 0;
    uint32_t *c = sb_malloc(S * n * sizeof *c + 1);
    if (!c) st = SB_ENOMEM;
    for (size_t i = 0; i < S * n && !st; i++) { c[i] = net->ev[i].n; tot += c[i]; }
    double *e = st ? NULL : sb_malloc(2 * tot * sizeof *e + 1);
    if (!st && !e) st = SB_ENOMEM;
    size_t at = 0;
    for (size_t i = 0; i < S * n && !st; i++)
      for (uint32_t j = 0; j < net->ev[i].n; j++, at += 2) sb_ev_get_(net, i / n, i % n, j, &e[at], &e[at + 1]);
    if (!st) st = wr(g, "event_counts", H5T_STD_U32LE, H5T_NATIVE_UINT32, c, S * n);
    if (!st) st = wr(g, "events", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, e, 2 * tot);
    sb_free(c);
    sb_free(e);
  }
  /* recorder positions */
  if (!st) {
    uint64_t *rp = sb_malloc((size_t)(2 * net->n_recs + 2 * net->n_pops) * sizeof *rp + 1);
    if (!rp) st = SB_ENOMEM;
    for (int i = 0; i < net->n_recs && !st; i++) { rp[2 * i] = net->recs[i].k_next; rp[2 * i + 1] = net->recs[i].n; }
    if (!st) st = wr(g, "rec_positions", H5T_STD_U64LE, H5T_NATIVE_UINT64, rp, (size_t)(2 * net->n_recs));
    sb_free(rp);
  }
  /* plastic projections: weights, traces, post histories, snapshots so far */
  if (!st && net->n_plastic) st = sb_plastic_checkpoint_write_(net, g);
  H5Gclose(g);
  if (!st) st = write_recordings(net, f);
  if (st) {
    sb_h5_abort(&o);
    if (!strstr(sb_last_error(), path)) {   /* a dataset's error names no file, nor a full disk */
      char msg[2048];
      snprintf(msg, sizeof msg, "%s", sb_last_error());
      st = sb_error_set_(__FILE__, __LINE__, st, "%s: %s%s", path, msg, strstr(msg, "no space left") ? "" : sb_space_note(path));
    }
    return st;
  }
  unsigned long crc = 0;
  if ((st = checkpoint_digest(f, &crc))) {
    sb_h5_abort(&o);
    SB_ERROR(st, "%s: cannot read back the checkpoint for its digest", path);
  }
  char dg[32];
  snprintf(dg, sizeof dg, "crc32 %08lx", crc);
  sb_h5_attr_write_string(f, "digest", dg);
  return sb_h5_commit(&o);
}

/* ---- digest: a CRC-32 (zlib) over the root attributes but `digest` (by name) and every
 * dataset (by path: the state under /checkpoint as native bytes, the chunked recordings as their
 * stored chunks), so that a
 * checkpoint edited after it was written (a seed, the overrides, a Poisson time, a spike's node
 * id that pass the restore's checks) is refused instead of silently changing the run. */

typedef struct { uLong crc; int err, rank; } digest_ctx;

/* Name, then the native bytes of attribute or dataset `obj` (closed here); variable-length
 * strings by their name only. */
static void digest_bytes(digest_ctx *c, const unsigned char *b, size_t tot) {
  for (size_t off = 0; off < tot; off += 1u << 30) c->crc = crc32(c->crc, b + off, (uInt)(tot - off < (1u << 30) ? tot - off : 1u << 30));
}

/* A chunked dataset (the recordings): its extent, then every chunk's grid position, filter mask
 * and stored (compressed) bytes: no inflating. 1 when done, 0 when ds is not chunked (read as
 * values instead), -1 on an error. */
static int digest_chunk(void *vc, const hsize_t *off, uint32_t mask, const void *buf, size_t size) {
  digest_ctx *c = vc;
  c->crc = crc32(c->crc, (const unsigned char *)off, (uInt)(c->rank * sizeof *off));
  if (!buf) return 0;
  c->crc = crc32(c->crc, (const unsigned char *)&mask, sizeof mask);
  digest_bytes(c, buf, size);
  return 0;
}

static int digest_chunks(digest_ctx *c, hid_t ds) {
  hid_t sp = H5Dget_space(ds);
  hsize_t dims[8];
  int rank = sp >= 0 ? H5Sget_simple_extent_dims(sp, dims, NULL) : -1;
  if (sp >= 0) H5Sclose(sp);
  if (rank < 0 || rank > 8) return -1;
  c->rank = rank;
  uLong before = c->crc;
  if (rank > 0) c->crc = crc32(c->crc, (const unsigned char *)dims, (uInt)((size_t)rank * sizeof *dims));
  int r = for_each_chunk(ds, digest_chunk, c, NULL, NULL);
  if (r == 0) c->crc = before;   /* not chunked: digested as values */
  return r;
}

static void digest_item(digest_ctx *c, const char *name, hid_t obj, int is_attr) {
  c->crc = crc32(c->crc, (const unsigned char *)name, (uInt)strlen(name) + 1);
  if (obj < 0) { c->err = 1; return; }
  if (!is_attr) {
    int dc = digest_chunks(c, obj);
    if (dc) {
      if (dc < 0) c->err = 1;
      H5Dclose(obj);
      return;
    }
  }
  hid_t ft = is_attr ? H5Aget_type(obj) : H5Dget_type(obj), sp = is_attr ? H5Aget_space(obj) : H5Dget_space(obj);
  hid_t mt = H5Tget_native_type(ft, H5T_DIR_ASCEND);
  hssize_t np = H5Sget_simple_extent_npoints(sp);
  size_t sz = mt >= 0 ? H5Tget_size(mt) : 0;
  if (mt < 0 || np < 0 || !sz) c->err = 1;
  else if (H5Tis_variable_str(ft) <= 0 && np > 0) {
    unsigned char *b = sb_malloc((size_t)np * sz);
    if (!b) c->err = 1;
    else if ((is_attr ? H5Aread(obj, mt, b) : H5Dread(obj, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, b)) < 0) c->err = 1;
    else
      digest_bytes(c, b, (size_t)np * sz);
    sb_free(b);
  }
  if (mt >= 0) H5Tclose(mt);
  H5Tclose(ft);
  H5Sclose(sp);
  if (is_attr) H5Aclose(obj);
  else H5Dclose(obj);
}

static herr_t digest_attr(hid_t loc, const char *name, const H5A_info_t *ai, void *vc) {
  (void)ai;
  if (strcmp(name, "digest")) digest_item(vc, name, H5Aopen(loc, name, H5P_DEFAULT), 1);
  return 0;
}

static herr_t digest_obj(hid_t loc, const char *name, const H5O_info_t *oi, void *vc) {
  if (oi->type == H5O_TYPE_DATASET) digest_item(vc, name, H5Dopen2(loc, name, H5P_DEFAULT), 0);
  return 0;
}

static int checkpoint_digest(hid_t f, unsigned long *crc) {
  digest_ctx c = {crc32(0L, Z_NULL, 0), 0, 0};
  hsize_t idx = 0;
  if (H5Aiterate2(f, H5_INDEX_NAME, H5_ITER_INC, &idx, digest_attr, &c) < 0) c.err = 1;
  if (H5Ovisit2(f, H5_INDEX_NAME, H5_ITER_INC, digest_obj, &c, H5O_INFO_BASIC) < 0) c.err = 1;   /* every dataset */
  *crc = c.crc;
  return c.err ? SB_EIO : SB_OK;
}

int sb_checkpoint_verify(const char *path) {
  hid_t f;
  int st = sb_h5_open_read(path, &f);
  if (st) return st;
  char *stored = NULL;
  if (!sb_h5_attr_exists(f, "digest")) {   /* deleting it must not turn the check off */
    H5Fclose(f);
    SB_ERROR(SB_EFORMAT, "%s: root attribute digest: missing (removed, or written by an older build); a checkpoint is "
             "resumed only as written", path);
  }
  unsigned long crc = 0;
  st = sb_h5_attr_read_string(f, "digest", &stored);
  if (!st) st = checkpoint_digest(f, &crc);
  H5Fclose(f);
  char now[32];
  snprintf(now, sizeof now, "crc32 %08lx", crc);
  if (!st && strcmp(stored, now))
    st = SB_SET_ERROR(SB_EFORMAT, "%s: the checkpoint's contents do not match its digest (%s written, %s now): edited or "
                      "corrupted after it was written; a checkpoint is resumed only as written", path, stored, now);
  else if (st == SB_EIO)
    st = SB_SET_ERROR(SB_EFORMAT, "%s: the checkpoint's digest cannot be computed (unreadable attribute or dataset)", path);
  sb_free(stored);
  return st;
}

/* ---- reading ---- */

int sb_checkpoint_read_info(const char *path, sb_checkpoint_info *info) {
  memset(info, 0, sizeof *info);
  hid_t f;
  int st = sb_h5_open_read(path, &f);
  if (st) return st;
  char *kind = NULL, *ov = NULL;
  double times[4];
  int64_t seed = 0;
  size_t nt = 0, ns = 0;
  if (sb_h5_attr_read_string(f, "kind", &kind) || strcmp(kind, CP_KIND) || sb_h5_attr_read_doubles(f, "time", times, 4, &nt) ||
      nt != 4 || sb_h5_attr_read_int64s(f, "seed", &seed, 1, &ns) ||
      sb_h5_attr_read_string(f, "model_file", &info->model_file) || sb_h5_attr_read_string(f, "overrides", &ov)) {
    sb_free(kind);
    sb_free(ov);
    H5Fclose(f);
    sb_checkpoint_info_free(info);
    SB_ERROR(SB_EFORMAT, "%s: not a spikebridge checkpoint (root attributes kind, time, seed, model_file, overrides)", path);
  }
  sb_free(kind);
  int64_t ver = 0;
  size_t nv = 0;
  if (sb_h5_attr_read_int64s(f, "checkpoint_version", &ver, 1, &nv) || nv != 1 || ver != CP_VERSION) {
    sb_free(ov);
    H5Fclose(f);
    sb_checkpoint_info_free(info);
    SB_ERROR(SB_EFORMAT, "%s: root attribute checkpoint_version: %lld, this build reads version %d", path, (long long)ver,
             CP_VERSION);
  }
  size_t ne = 0;
  if ((sb_h5_attr_exists(f, "checkpoint_file") && sb_h5_attr_read_string(f, "checkpoint_file", &info->checkpoint)) ||
      (sb_h5_attr_exists(f, "checkpoint_every") &&
       (sb_h5_attr_read_doubles(f, "checkpoint_every", &info->every, 1, &ne) || ne != 1 || !(info->every >= 0) ||
        !isfinite(info->every)))) {
    sb_free(ov);
    H5Fclose(f);
    sb_checkpoint_info_free(info);
    SB_ERROR(SB_EFORMAT, "%s: attributes checkpoint_file, checkpoint_every: expected a string and a time >= 0 ms", path);
  }
  if (sb_h5_attr_exists(f, "output") && sb_h5_attr_read_string(f, "output", &info->output)) {
    sb_free(ov);
    H5Fclose(f);
    sb_checkpoint_info_free(info);
    SB_ERROR(SB_EFORMAT, "%s: attribute output: expected a string", path);
  }
  if (sb_h5_attr_exists(f, "model_fingerprint") && sb_h5_attr_read_string(f, "model_fingerprint", &info->model_id)) {
    sb_free(ov);
    H5Fclose(f);
    sb_checkpoint_info_free(info);
    SB_ERROR(SB_EFORMAT, "%s: attribute model_fingerprint: expected a string", path);
  }
  H5Fclose(f);
  if (!isfinite(times[0]) || !(times[0] >= 0) || !isfinite(times[1]) || !(times[1] > 0) || !(times[0] <= times[1]) ||
      seed < 0) {
    sb_free(ov);
    sb_checkpoint_info_free(info);
    SB_ERROR(SB_EFORMAT, "%s: attributes time, seed: expected finite t, t_stop with 0 <= t <= t_stop and a seed >= 0 "
             "(got t = %g, t_stop = %g, seed %lld)", path, times[0], times[1], (long long)seed);
  }
  info->t = times[0];
  info->t_stop = times[1];
  info->seed = (uint64_t)seed;
  int lines = 0;
  for (const char *q = ov; *q; q++) lines += *q == '\n';
  info->set = sb_calloc((size_t)lines + 1, sizeof *info->set);
  if (!info->set) { sb_free(ov); sb_checkpoint_info_free(info); return SB_ENOMEM; }
  char *save = NULL;
  for (char *tok = strtok_r(ov, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save)) {
    info->set[info->n_set] = sb_strdup(tok);
    if (!info->set[info->n_set]) { sb_free(ov); sb_checkpoint_info_free(info); return SB_ENOMEM; }
    info->n_set++;
  }
  sb_free(ov);
  return SB_OK;
}

int sb_checkpoint_read_(hid_t g, const char *file, const char *name, hid_t mt, void **d, size_t want) {
  size_t n;
  int st = sb_h5_read(g, name, mt, d, &n, NULL, NULL, 0);
  if (st) return sb_error_prefix_(st, "%s: /checkpoint", file);
  if (n != want) {
    sb_free(*d);
    *d = NULL;
    SB_ERROR(SB_EFORMAT, "%s: /checkpoint/%s: %zu elements, this network needs %zu (not the same model and overrides?)",
             file, name, n, want);
  }
  return SB_OK;
}

/* Rows [r0, r0 + n) of the 1-D or 2-D (rows, cols) dataset ds into buf (memory type mt). */
static int read_rows(hid_t ds, hid_t mt, int rank, hsize_t r0, hsize_t n, hsize_t cols, void *buf) {
  hsize_t start[2] = {r0, 0}, count[2] = {n, cols};
  hid_t fs = H5Dget_space(ds), ms = H5Screate_simple(rank, count, NULL);
  int ok = fs >= 0 && ms >= 0 && H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
           H5Dread(ds, mt, ms, fs, H5P_DEFAULT, buf) >= 0;
  if (ms >= 0) H5Sclose(ms);
  if (fs >= 0) H5Sclose(fs);
  return ok ? SB_OK : SB_EIO;
}

/* 1 when datasets a and b have the same chunk shape and filter pipeline (their stored chunks are
 * interchangeable). */
static int same_chunking(hid_t a, hid_t b) {
  hid_t pa = H5Dget_create_plist(a), pb = H5Dget_create_plist(b);
  int same = pa >= 0 && pb >= 0 && H5Pget_layout(pa) == H5D_CHUNKED && H5Pget_layout(pb) == H5D_CHUNKED;
  hsize_t ca[8], cb[8];
  int ra = same ? H5Pget_chunk(pa, 8, ca) : -1, rb = same ? H5Pget_chunk(pb, 8, cb) : -2;
  same = same && ra == rb && ra > 0 && !memcmp(ca, cb, (size_t)ra * sizeof *ca);
  int nf = same ? H5Pget_nfilters(pa) : -1;
  same = same && nf >= 0 && nf == H5Pget_nfilters(pb);
  for (int q = 0; same && q < nf; q++) {
    unsigned fa = 0, fb = 0, va[8], vb[8];
    size_t na = 8, nb = 8;
    H5Z_filter_t ia = H5Pget_filter2(pa, (unsigned)q, &fa, &na, va, 0, NULL, NULL);
    H5Z_filter_t ib = H5Pget_filter2(pb, (unsigned)q, &fb, &nb, vb, 0, NULL, NULL);
    same = ia >= 0 && ia == ib && fa == fb && na == nb && na <= 8 && !memcmp(va, vb, na * sizeof *va);
  }
  if (pa >= 0) H5Pclose(pa);
  if (pb >= 0) H5Pclose(pb);
  return same;
}

/* The checkpoint's recordings into the new output, in bounded memory: spikes in blocks of
 * 2^20 (checked: times in [0, t] in order, ids in the population), a state recording chunk for
 * chunk as stored (its chunks come from an output of this build, so the new output's dataset has
 * the same chunking: no inflating and deflating, and no copy of the samples in memory; a
 * 578 MB checkpoint resumes in 0.7 s at 29 MB). */
static int restore_recordings(sb_net *net, hid_t f, const char *file, double t_now) {
  int st = SB_OK;
  for (int i = 0; i < net->n_pops && !st; i++) {
    sb_pop *p = &net->pops[i];
    if (!p->rec_spikes || p->ds_t < 0) continue;
    char a[300], b[300];
    snprintf(a, sizeof a, "spikes/%s/timestamps", p->name);
    snprintf(b, sizeof b, "spikes/%s/node_ids", p->name);
    hid_t dt = sb_h5_exists(f, a) ? H5Dopen2(f, a, H5P_DEFAULT) : H5I_INVALID_HID;   /* checks each path part */
    hid_t di = dt >= 0 && sb_h5_exists(f, b) ? H5Dopen2(f, b, H5P_DEFAULT) : H5I_INVALID_HID;
    hsize_t nt = 0, ni = 0;
    if (dt < 0 || di < 0) st = SB_SET_ERROR(SB_EFORMAT, "%s: /%s: missing dataset", file, dt < 0 ? a : b);
    hid_t s1 = st ? H5I_INVALID_HID : H5Dget_space(dt), s2 = st ? H5I_INVALID_HID : H5Dget_space(di);
    if (!st && (H5Sget_simple_extent_ndims(s1) != 1 || H5Sget_simple_extent_ndims(s2) != 1 ||
                H5Sget_simple_extent_dims(s1, &nt, NULL) < 0 || H5Sget_simple_extent_dims(s2, &ni, NULL) < 0))
      st = SB_SET_ERROR(SB_EFORMAT, "%s: /%s, /%s: expected one-dimensional datasets", file, a, b);
    if (s1 >= 0) H5Sclose(s1);
    if (s2 >= 0) H5Sclose(s2);
    if (!st && nt != ni) st = SB_SET_ERROR(SB_EFORMAT, "%s: /%s: length differs from timestamps", file, b);
    const hsize_t blk = (hsize_t)1 << 20;
    double *t = st ? NULL : sb_malloc((size_t)(nt < blk ? nt : blk) * sizeof *t + 8);
    uint64_t *id = st ? NULL : sb_malloc((size_t)(nt < blk ? nt : blk) * sizeof *id + 8);
    if (!st && (!t || !id)) st = SB_ENOMEM;
    double prev = -INFINITY;
    for (hsize_t r0 = 0; r0 < nt && !st; r0 += blk) {
      hsize_t n = nt - r0 < blk ? nt - r0 : blk;
      if (read_rows(dt, H5T_NATIVE_DOUBLE, 1, r0, n, 1, t) || read_rows(di, H5T_NATIVE_UINT64, 1, r0, n, 1, id)) {
        st = SB_SET_ERROR(SB_EFORMAT, "%s: /%s: cannot read", file, a);
        break;
      }
      for (hsize_t j = 0; j < n && !st; j++) {   /* copied into the output as they are: check them */
        double tj = t[j];
        if (!(tj >= 0 && tj <= t_now) || tj < prev)
          st = SB_SET_ERROR(SB_EFORMAT, "%s: /%s[%llu]: %g ms, expected spike times in [0, t = %g] ms in time order", file,
                            a, (unsigned long long)(r0 + j), tj, t_now);
        else if (id[j] >= p->n)
          st = SB_SET_ERROR(SB_EFORMAT, "%s: /%s[%llu]: %llu, expected a node id below the population's %zu neurons", file,
                            b, (unsigned long long)(r0 + j), (unsigned long long)id[j], p->n);
        prev = tj;
      }
      uint64_t w0 = p->written;
      if (!st) st = sb_rec_append_(p->ds_t, H5T_NATIVE_DOUBLE, t, n, 1, 1, &p->written);
      if (!st) st = sb_rec_append_(p->ds_id, H5T_NATIVE_UINT64, id, n, 1, 1, &w0);
      if (st && !strstr(sb_last_error(), file)) st = sb_error_prefix_(st, "%s", file);
    }
    sb_free(t);
    sb_free(id);
    if (di >= 0) H5Dclose(di);
    if (dt >= 0) H5Dclose(dt);
  }
  for (int i = 0; i < net->n_recs && !st; i++) {
    sb_rec *r = &net->recs[i];
    if (r->ds < 0) continue;
    char a[300];
    snprintf(a, sizeof a, "%s/data", r->group);
    hid_t ds = sb_h5_exists(f, a) ? H5Dopen2(f, a, H5P_DEFAULT) : H5I_INVALID_HID;
    if (ds < 0) { st = SB_SET_ERROR(SB_EFORMAT, "%s: /%s: missing dataset", file, a); break; }
    hid_t sp = H5Dget_space(ds);
    hsize_t dims[2] = {0, 0};
    if (H5Sget_simple_extent_ndims(sp) != 2 || H5Sget_simple_extent_dims(sp, dims, NULL) < 0 || dims[1] != r->n)
      st = SB_SET_ERROR(SB_EFORMAT, "%s: /%s: expected (rows, %zu)", file, a, r->n);
    H5Sclose(sp);
    if (!st && (r->written != 0 || !same_chunking(ds, r->ds)))   /* the digest holds: another build's layout */
      st = SB_SET_ERROR(SB_EFORMAT, "%s: /%s: stored with another chunk layout or compression than this build writes "
                        "(a checkpoint of another spikebridge build?)", file, a);
    if (!st) {   /* the stored chunks as they are */
      copy_ctx c = {r->ds, 0};
      errno = 0;
      if (H5Dset_extent(r->ds, dims) < 0 || for_each_chunk(ds, copy_chunk, &c, NULL, NULL) != 1)
        st = SB_SET_ERROR(SB_EIO, "%s: /%s: cannot copy into the output%s%s", file, a, c.werr ? ": " : "",
                          c.werr ? strerror(c.werr) : "");
      else
        r->written = dims[0];
    }
    H5Dclose(ds);
  }
  return st;
}

/* The restored per-neuron arrays, checked against the clock t: finite neuron state (the
 * recordable variables), state times in [0, t], Poisson times not before the state time (a
 * time far in the past would be replayed draw by draw), stimulus cursors inside the neuron's
 * own stimuli, spike counts summing to the spike counter, finite ISI sums. */
static int validate_restored(const sb_net *net, const char *path, double t, uint64_t spikes_total) {
  int i, v;
  size_t j;
  double x;
  if (sb_net_first_nonfinite_(net, &i, &j, &v, &x))
    SB_ERROR(SB_EFORMAT, "%s: /checkpoint/state_%d: neuron %zu of population %s: %s = %g, expected a finite value", path, i,
             j, net->pops[i].name, net->pops[i].type->recordables[v].name, x);
  uint64_t sum = 0;
  for (size_t g = 0; g < net->n; g++) {
    double ts = net->t_state[g];
    if (!(ts >= 0 && ts <= t + net->W))   /* inputs taken at delivery: up to one window ahead */
      SB_ERROR(SB_EFORMAT, "%s: /checkpoint/t_state[%zu]: %g ms, expected a time in [0, t + window = %g] ms", path, g, ts,
               t + net->W);
    if (isnan(net->t_safe[g])) SB_ERROR(SB_EFORMAT, "%s: /checkpoint/t_safe[%zu]: NaN, expected a time", path, g);
    for (size_t q = net->pois_first[g]; q < net->pois_first[g + 1]; q++) {
      double pn = net->pois_next[q];
      if (!(pn >= ts))   /* INFINITY (no more events) passes */
        SB_ERROR(SB_EFORMAT, "%s: /checkpoint/pois_next[%zu]: next Poisson event of neuron %zu at %g ms, expected a time "
                 ">= its state time %g ms (<= t = %g ms)", path, q, g, pn, ts, t);
    }
    if (net->stim_pos[g] < net->stim_first[g] || net->stim_pos[g] > net->stim_first[g + 1])
      SB_ERROR(SB_EFORMAT, "%s: /checkpoint/stim_pos[%zu]: %zu, expected in [%zu, %zu] (this neuron's stimulus events)",
               path, g, net->stim_pos[g], net->stim_first[g], net->stim_first[g + 1]);
    if (net->count[g] > spikes_total)
      SB_ERROR(SB_EFORMAT, "%s: /checkpoint/count[%zu]: %llu spikes, more than the %llu of the whole network "
               "(/checkpoint/counters[0])", path, g, (unsigned long long)net->count[g], (unsigned long long)spikes_total);
    sum += net->count[g];
    if (net->count[g] && !(net->last[g] >= 0 && net->last[g] <= t))
      SB_ERROR(SB_EFORMAT, "%s: /checkpoint/last[%zu]: last spike at %g ms, expected a time in [0, t = %g] ms", path, g,
               net->last[g], t);
    if (!(net->isi_sum[g] >= 0 && isfinite(net->isi_sum[g])) || !(net->isi_sq[g] >= 0 && isfinite(net->isi_sq[g])))
      SB_ERROR(SB_EFORMAT, "%s: /checkpoint/isi_sum, isi_sq[%zu]: expected finite sums >= 0 (got %g, %g)", path, g,
               net->isi_sum[g], net->isi_sq[g]);
  }
  if (sum != spikes_total)
    SB_ERROR(SB_EFORMAT, "%s: /checkpoint/count: %llu spikes in all, /checkpoint/counters[0] says %llu (inconsistent)",
             path, (unsigned long long)sum, (unsigned long long)spikes_total);
  return SB_OK;
}

int sb_net_checkpoint_restore(sb_net *net, const char *path) {
  int st;
  if (net->file < 0) SB_ERROR(SB_EINVAL, "resume: attach the output file before restoring a checkpoint");
  if (!net->prepared && (st = sb_net_prepare_(net))) return st;
  if (net->t != 0) SB_ERROR(SB_EINVAL, "resume: the network must be fresh (it is at t = %g ms)", net->t);
  hid_t f;
  if ((st = sb_h5_open_read(path, &f))) return st;
  size_t n = net->n, S = (size_t)net->S;
  int64_t nn = 0, k[3] = {0, 0, 0};
  double times[4];
  size_t cnt;
  if (sb_h5_attr_read_int64s(f, "neurons", &nn, 1, &cnt) || sb_h5_attr_read_int64s(f, "window_index", k, 3, &cnt) ||
      sb_h5_attr_read_doubles(f, "time", times, 4, &cnt)) {
    H5Fclose(f);
    SB_ERROR(SB_EFORMAT, "%s: not a spikebridge checkpoint", path);
  }
  /* the clock first: everything else is checked against t (a tampered or corrupt checkpoint
   * must be refused, not run: a Poisson time far in the past replays for hours) */
  if (!isfinite(times[0]) || !(times[0] >= 0) || !isfinite(times[1]) || !(times[1] > 0) || !(times[0] <= times[1]) ||
      !isfinite(times[3])) {
    H5Fclose(f);
    SB_ERROR(SB_EFORMAT, "%s: attribute time: expected finite t, t_stop with 0 <= t <= t_stop and a finite flush time "
             "(got t = %g, t_stop = %g, flush %g)", path, times[0], times[1], times[3]);
  }
  if ((size_t)nn != n || k[2] != net->S || times[2] != net->W) {
    H5Fclose(f);
    SB_ERROR(SB_EFORMAT, "%s: written for %lld neurons, %lld slots of %g ms; this network has %zu neurons, %d slots of %g ms",
             path, (long long)nn, (long long)k[2], times[2], n, net->S, net->W);
  }
  /* between windows: t = k W after a full window, k W <= t < (k + 1) W at a t_stop inside one */
  double tol = 1e-9 * (net->W + times[0]);
  if (k[0] < 0 || k[1] < 0 || k[1] > k[0] || !((double)k[0] * net->W <= times[0] + tol) ||
      !(times[0] < (double)(k[0] + 1) * net->W - tol)) {
    H5Fclose(f);
    SB_ERROR(SB_EFORMAT, "%s: attribute window_index: windows (%lld, %lld) do not match t = %g ms with windows of %g ms",
             path, (long long)k[0], (long long)k[1], times[0], net->W);
  }
  hid_t g = H5Gopen2(f, "checkpoint", H5P_DEFAULT);
  if (g < 0) { H5Fclose(f); SB_ERROR(SB_EFORMAT, "%s: /checkpoint: missing group", path); }
  void *d = NULL;
  for (int i = 0; i < net->n_pops; i++) {
    sb_pop *p = &net->pops[i];
    char name[64];
    snprintf(name, sizeof name, "state_%d", i);
    if ((st = sb_checkpoint_read_(g, path, name, H5T_NATIVE_UINT8, &d, p->n * p->type->state_size))) goto done;
    memcpy(p->state, d, p->n * p->type->state_size);
    sb_free(d);
    d = NULL;
  }
#define RESTORE(name, mt, dst, cnt_)                                       \
  do {                                                                     \
    if ((st = sb_checkpoint_read_(g, path, name, mt, &d, (cnt_)))) goto done;               \
    if (cnt_) memcpy((dst), d, (cnt_) * sizeof *(dst));                    \
    sb_free(d);                                                            \
    d = NULL;                                                              \
  } while (0)
  RESTORE("t_state", H5T_NATIVE_DOUBLE, net->t_state, n);
  RESTORE("t_safe", H5T_NATIVE_DOUBLE, net->t_safe, n);
  RESTORE("count", H5T_NATIVE_UINT64, net->count, n);
  RESTORE("last", H5T_NATIVE_DOUBLE, net->last, n);
  RESTORE("isi_sum", H5T_NATIVE_DOUBLE, net->isi_sum, n);
  RESTORE("isi_sq", H5T_NATIVE_DOUBLE, net->isi_sq, n);
  RESTORE("stim_pos", H5T_NATIVE_UINT64, net->stim_pos, n);
  RESTORE("pois_next", H5T_NATIVE_DOUBLE, net->pois_next, net->n_pois);
  {
    size_t nr = 0, sz = 0;
    for (size_t q = 0; q < n; q++)
      if (net->pois_rng[q]) { nr++; sz = gsl_rng_size(net->pois_rng[q]); }
    if ((st = sb_checkpoint_read_(g, path, "pois_rng", H5T_NATIVE_UINT8, &d, nr * sz))) goto done;
    size_t at = 0;
    for (size_t q = 0; q < n; q++)
      if (net->pois_rng[q]) {
        if (!sb_rng_state_valid((char *)d + at, sz)) {   /* an all-zero state: zero gaps, a window that never ends */
          st = SB_SET_ERROR(SB_EFORMAT, "%s: /checkpoint/pois_rng: the random-number state of neuron %zu is not a valid "
                            "taus2 state (expected three 32-bit components > 1, 7, 15)", path, q);
          goto done;
        }
        memcpy(gsl_rng_state(net->pois_rng[q]), (char *)d + at, sz);
        at += sz;
      }
    sb_free(d);
    d = NULL;
  }
  {
    uint32_t *c = NULL;
    if ((st = sb_checkpoint_read_(g, path, "event_counts", H5T_NATIVE_UINT32, (void **)&c, S * n))) goto done;
    size_t tot = 0;
    for (size_t i = 0; i < S * n; i++) tot += c[i];
    double *e = NULL;
    if ((st = sb_checkpoint_read_(g, path, "events", H5T_NATIVE_DOUBLE, (void **)&e, 2 * tot))) { sb_free(c); goto done; }
    /* in-flight events arrive after t and within the S windows of the queue (one window of
     * slack below t: an arrival rounded just below its window start) */
    double t_lo = times[0] - net->W, t_hi = times[0] + (double)(S + 1) * net->W;
    for (size_t i = 0; i < 2 * tot; i += 2)
      if (!(e[i] >= t_lo && e[i] <= t_hi) || !isfinite(e[i + 1])) {
        st = SB_SET_ERROR(SB_EFORMAT, "%s: /checkpoint/events[%zu]: expected a time in [%g, %g] ms (t = %g ms plus %d "
                          "windows of %g ms) and a finite weight (got time %g, weight %g)", path, i, t_lo, t_hi, times[0],
                          net->S, net->W, e[i], e[i + 1]);
        sb_free(c);
        sb_free(e);
        goto done;
      }
    size_t at = 0;
    for (size_t i = 0; i < S * n && !st; i++) {
      net->ev[i].n = 0;
      for (uint32_t j = 0; j < c[i] && !st; j++, at += 2) st = sb_ev_push_(net, i / n, i % n, e[at], e[at + 1]);
    }
    sb_free(c);
    sb_free(e);
    if (st) goto done;
  }
  {
    uint64_t *rp = NULL;
    if ((st = sb_checkpoint_read_(g, path, "rec_positions", H5T_NATIVE_UINT64, (void **)&rp, (size_t)(2 * net->n_recs)))) goto done;
    for (int i = 0; i < net->n_recs; i++) {
      if (rp[2 * i + 1] != net->recs[i].n) {
        sb_free(rp);
        st = SB_SET_ERROR(SB_EFORMAT, "%s: /checkpoint/rec_positions: recording %d has %llu neurons, here %zu", path, i,
                          (unsigned long long)rp[2 * i + 1], net->recs[i].n);
        goto done;
      }
      net->recs[i].k_next = rp[2 * i];
      net->recs[i].mem_rows = 0;
    }
    sb_free(rp);
  }
  {
    uint64_t *c = NULL;
    if ((st = sb_checkpoint_read_(g, path, "counters", H5T_NATIVE_UINT64, (void **)&c, 3))) goto done;
    net->spikes_total = c[0];
    memset(net->t_events, 0, (size_t)net->threads * SB_TSTRIDE * sizeof *net->t_events);
    memset(net->t_ext, 0, (size_t)net->threads * SB_TSTRIDE * sizeof *net->t_ext);
    net->t_events[0] = c[1];
    net->t_ext[0] = c[2];
    memset(net->t_eager, 0, (size_t)net->threads * SB_TSTRIDE * sizeof *net->t_eager);
    sb_free(c);
    c = NULL;
    if (sb_h5_exists(g, "eager_events")) {
      if ((st = sb_checkpoint_read_(g, path, "eager_events", H5T_NATIVE_UINT64, (void **)&c, 1))) goto done;
      if (c[0] > net->t_events[0]) {
        sb_free(c);
        st = SB_SET_ERROR(SB_EFORMAT, "%s: /checkpoint/eager_events: more than the synaptic events (/checkpoint/counters[1])", path);
        goto done;
      }
      net->t_eager[0] = c[0];
      sb_free(c);
    }
  }
  if ((st = validate_restored(net, path, times[0], net->spikes_total))) goto done;
  for (int i = 0; i < net->n_recs; i++) {   /* the next sample is the first at or after t */
    const sb_rec *r = &net->recs[i];
    double ts = (double)r->k_next * r->interval;
    if (!(ts >= times[0] - r->interval * (1 + 1e-9) && ts <= times[0] + r->interval * (1 + 1e-9))) {
      st = SB_SET_ERROR(SB_EFORMAT, "%s: /checkpoint/rec_positions[%d]: next sample %llu at %g ms, expected within one "
                        "interval (%g ms) of t = %g ms", path, 2 * i, (unsigned long long)r->k_next, ts, r->interval,
                        times[0]);
      goto done;
    }
  }
  if (net->n_plastic && (st = sb_plastic_checkpoint_read_(net, g, path))) goto done;
  for (int i = 0; i < net->n_pops; i++) net->pops[i].sp_n = 0;
  if ((st = restore_recordings(net, f, path, times[0]))) goto done;
  net->t = times[0];
  net->k = (uint64_t)k[0];
  net->k_emit = (uint64_t)k[1];
  net->next_flush = times[3];
done:
  sb_free(d);
  H5Gclose(g);
  H5Fclose(f);
  return st;
}
