/* Recording: spikes (in memory, then streamed into the SONATA spike layout) and sampled state
 * variables (SONATA report layout), appended in chunks to extendible HDF5 datasets and flushed
 * at intervals of biological time. Nothing here knows about neuron models beyond offsets. */
#include "sim/internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 65536

int sb_net_record_spikes(sb_net *net, int pop, int on) {
  if (pop < 0 || pop >= net->n_pops) SB_ERROR(SB_EINVAL, "population index %d out of range", pop);
  net->pops[pop].rec_spikes = on != 0;
  return SB_OK;
}

double sb_net_record_bytes(const sb_net *net, double t_stop) {
  double b = 0;
  for (int r = 0; r < net->n_recs; r++) {
    const sb_rec *rc = &net->recs[r];
    double rows = floor(t_stop / rc->interval) + 1 - (double)rc->k_next;   /* samples at 0, dt, ... <= t_stop */
    if (rows > 0) b += rows * (double)rc->n * sizeof *rc->buf;
  }
  return b;
}

double sb_net_record_window_bytes(const sb_net *net, double t_stop) {
  if (!net->prepared) return 0;
  double b = 0, span = t_stop - net->t < net->W ? t_stop - net->t : net->W;
  for (int r = 0; r < net->n_recs && span >= 0; r++) {
    const sb_rec *rc = &net->recs[r];
    b += 2.0 * (ceil(span / rc->interval) + 1) * (double)rc->n * sizeof *rc->buf;
  }
  return b;
}

int sb_net_record_state(sb_net *net, int pop, const char *var, const uint32_t *ids, size_t n, double interval) {
  if (pop < 0 || pop >= net->n_pops) SB_ERROR(SB_EINVAL, "population index %d out of range", pop);
  if (net->prepared) SB_ERROR(SB_EINVAL, "record: add recordings before the first run");
  const sb_pop *p = &net->pops[pop];
  int v = sb_neuron_recordable(p->type, var);
  if (v < 0) {
    char have[256] = "";
    for (const sb_recordable *r = p->type->recordables; r->name; r++)
      snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s", r == p->type->recordables ? "" : ", ", r->name);
    SB_ERROR(SB_EINVAL, "variable: '%s' is not a state variable of %s (it has: %s)", var, p->type->name, have);
  }
  if (!(interval > 0) || !isfinite(interval)) SB_ERROR(SB_EINVAL, "interval: must be > 0 ms (got %g)", interval);
  if (!ids) n = p->n;
  if (n == 0) SB_ERROR(SB_EINVAL, "node_ids: empty");
  for (size_t i = 0; ids && i < n; i++)
    if (ids[i] >= p->n) SB_ERROR(SB_EINVAL, "node_ids[%zu]: must be < %zu (got %u)", i, p->n, ids[i]);
  sb_rec *r = sb_realloc(net->recs, (size_t)(net->n_recs + 1) * sizeof *r);
  if (!r) return SB_ENOMEM;
  net->recs = r;
  r = &r[net->n_recs];
  memset(r, 0, sizeof *r);
  r->ds = -1;
  r->pop = pop;
  r->var_off = p->type->recordables[v].offset;
  r->var = sb_strdup(var);
  r->unit = sb_strdup(p->type->recordables[v].unit);
  r->ids = sb_malloc(n * sizeof *r->ids);
  if (!r->var || !r->unit || !r->ids) {
    sb_free(r->var); sb_free(r->unit); sb_free(r->ids);
    return SB_ENOMEM;
  }
  for (size_t i = 0; i < n; i++) r->ids[i] = ids ? ids[i] : (uint32_t)i;
  r->n = n;
  r->interval = interval;
  /* group name: /report/<pop>, or /report/<pop>_<var> for a second recording of the population */
  int dup = 0;
  for (int i = 0; i < net->n_recs; i++) dup += net->recs[i].pop == pop;
  if (dup) snprintf(r->group, sizeof r->group, "report/%s_%s", p->name, var);
  else snprintf(r->group, sizeof r->group, "report/%s", p->name);
  /* two recordings under one report name (the same variable twice, or a population named like
   * another's "<pop>_<var>" report) would collide in the output file: a model error */
  for (int i = 0; i < net->n_recs; i++)
    if (!strcmp(net->recs[i].group, r->group)) {
      const sb_rec *o = &net->recs[i];
      char g[256];
      snprintf(g, sizeof g, "%s", r->group);
      sb_free(r->var); sb_free(r->unit); sb_free(r->ids);
      SB_ERROR(SB_EINVAL, "variables: report /%s would be written twice: by state recording %d (population %s, %s) "
               "and by state recording %d (population %s, %s); record each variable of a population once",
               g, i, net->pops[o->pop].name, o->var, net->n_recs, p->name, var);
    }
  net->n_recs++;
  return SB_OK;
}

void sb_rec_free_(sb_net *net) {
  for (int i = 0; i < net->n_recs; i++) {
    sb_rec *r = &net->recs[i];
    if (r->ds >= 0) H5Dclose(r->ds);
    sb_free(r->var); sb_free(r->unit); sb_free(r->ids); sb_free(r->buf); sb_free(r->mem);
  }
  sb_free(net->recs);
  net->recs = NULL;
  net->n_recs = 0;
  for (int i = 0; i < net->n_pops; i++) {
    if (net->pops[i].ds_t >= 0) H5Dclose(net->pops[i].ds_t);
    if (net->pops[i].ds_id >= 0) H5Dclose(net->pops[i].ds_id);
    net->pops[i].ds_t = net->pops[i].ds_id = -1;
  }
}

/* ---- per window ---- */

int sb_rec_window_(sb_net *net, double t0, double t1) {
  (void)t0;
  if (net->gsp_n) {
    const sb_spike *s = net->gsp;   /* ordered by (time, id) */
    for (size_t q = 0; q < net->gsp_n; q++) {
      sb_pop *p = &net->pops[sb_pop_of_(net, s[q].gid)];
      if (!p->rec_spikes) continue;
      if (p->sp_n == p->sp_cap) {
        size_t cap = p->sp_cap ? 2 * p->sp_cap : 4096;
        double *nt = sb_realloc(p->sp_t, cap * sizeof *nt);
        if (nt) p->sp_t = nt;
        uint32_t *ni = sb_realloc(p->sp_id, cap * sizeof *ni);
        if (ni) p->sp_id = ni;
        if (!nt || !ni) return SB_ENOMEM;
        p->sp_cap = cap;
      }
      p->sp_t[p->sp_n] = s[q].t;
      p->sp_id[p->sp_n++] = (uint32_t)(s[q].gid - p->first);
    }
  }
  for (int i = 0; i < net->n_recs; i++) {
    sb_rec *r = &net->recs[i];
    uint64_t k_hi = r->k_next;
    while ((double)k_hi * r->interval < t1) k_hi++;
    size_t rows = (size_t)(k_hi - r->k_next);
    if (!rows) continue;
    if (r->mem_rows + rows > r->mem_cap) {
      size_t cap = (r->mem_rows + rows) * 2;
      float *m = sb_realloc(r->mem, cap * r->n * sizeof *m);
      if (!m) return SB_ENOMEM;
      r->mem = m;
      r->mem_cap = cap;
    }
    memcpy(r->mem + r->mem_rows * r->n, r->buf, rows * r->n * sizeof *r->mem);
    r->mem_rows += rows;
    r->k_next = k_hi;
  }
  return SB_OK;
}

/* ---- HDF5 ---- */

/* An extensible dataset; rank 1 (spikes): chunks of chunk1 rows and no chunk cache (the periodic
 * flushes write whole chunks; a cached partial chunk per dataset, 512 kB each, held 1.1 GB at the
 * final flush of 1000 recorded populations). */
static hid_t ext_dataset(hid_t loc, const char *name, hid_t type, int rank, hsize_t ncols, hsize_t chunk1) {
  hsize_t dims[2] = {0, ncols}, maxd[2] = {H5S_UNLIMITED, ncols};
  hsize_t chunk[2] = {rank == 1 ? chunk1 : (CHUNK / (ncols ? ncols : 1) + 1), ncols};
  if (rank == 2 && chunk[0] > 4096) chunk[0] = 4096;
  hid_t sp = H5Screate_simple(rank, dims, maxd);
  hid_t pl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(pl, rank, chunk);
  /* byte shuffle + deflate level 1: spike times and ids compress better than with level 4 alone
   * and about 3x faster (the chunk writes run between windows, while the other threads wait) */
  H5Pset_shuffle(pl);
  H5Pset_deflate(pl, 1);
  hid_t ap = H5Pcreate(H5P_DATASET_ACCESS);
  if (rank == 1) H5Pset_chunk_cache(ap, H5D_CHUNK_CACHE_NSLOTS_DEFAULT, 0, H5D_CHUNK_CACHE_W0_DEFAULT);
  hid_t ds = H5Dcreate2(loc, name, type, sp, H5P_DEFAULT, pl, ap);
  H5Pclose(ap);
  H5Pclose(pl);
  H5Sclose(sp);
  return ds;
}

int sb_rec_append_(hid_t ds, hid_t mtype, const void *buf, hsize_t rows, hsize_t ncols, int rank, uint64_t *written) {
  if (!rows) return SB_OK;
  hsize_t size[2] = {*written + rows, ncols}, start[2] = {*written, 0}, count[2] = {rows, ncols};
  if (H5Dset_extent(ds, size) < 0) SB_ERROR(SB_EIO, "cannot extend a recording dataset");
  hid_t fs = H5Dget_space(ds);
  hid_t ms = H5Screate_simple(rank, count, NULL);
  H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
  errno = 0;
  herr_t e = H5Dwrite(ds, mtype, ms, fs, H5P_DEFAULT, buf);
  int err = errno;   /* the failed write's (ENOSPC, EFBIG, EIO), kept by HDF5's POSIX driver */
  H5Sclose(ms);
  H5Sclose(fs);
  if (e < 0) {   /* the reason: a full disk (sb_space_note of the file written), else errno's */
    char name[256] = "", file[4096] = "";
    if (H5Iget_name(ds, name, sizeof name) < 0) name[0] = '\0';
    if (H5Fget_name(ds, file, sizeof file) < 0) file[0] = '\0';
    const char *note = file[0] ? sb_space_note(file) : "";
    SB_ERROR(SB_EIO, "cannot write the recording %s%s%s%s", name, note, !*note && err ? ": " : "",
             !*note && err ? strerror(err) : "");
  }
  *written += rows;
  return SB_OK;
}

static int attr_u32(hid_t obj, const char *name, const uint32_t *v, hsize_t n, int scalar) {
  hid_t sp = scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL);
  if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
  hid_t a = H5Acreate2(obj, name, H5T_STD_U32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
  herr_t e = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_UINT32, v);
  if (a >= 0) H5Aclose(a);
  H5Sclose(sp);
  if (e < 0) SB_ERROR(SB_EIO, "cannot write attribute %s", name);
  return SB_OK;
}

/* Close every recording dataset and forget the file (the recordings in memory stay). */
static void close_datasets(sb_net *net) {
  for (int i = 0; i < net->n_pops; i++) {
    if (net->pops[i].ds_t >= 0) H5Dclose(net->pops[i].ds_t);
    if (net->pops[i].ds_id >= 0) H5Dclose(net->pops[i].ds_id);
    net->pops[i].ds_t = net->pops[i].ds_id = -1;
  }
  for (int i = 0; i < net->n_recs; i++) {
    if (net->recs[i].ds >= 0) H5Dclose(net->recs[i].ds);
    net->recs[i].ds = -1;
  }
  net->file = -1;
}

int sb_net_attach_output(sb_net *net, hid_t file, double flush_interval) {
  if (file < 0) {   /* detach: close the datasets, keep the recordings */
    close_datasets(net);
    return SB_OK;
  }
  if (!(flush_interval > 0)) SB_ERROR(SB_EINVAL, "flush_interval: must be > 0 ms (got %g)", flush_interval);
  net->file = file;
  net->flush_interval = flush_interval;
  net->next_flush = net->t + flush_interval;
  uint32_t magic = 0x0A7A, version[2] = {0, 1};
  int rc;
  if ((rc = attr_u32(file, "magic", &magic, 1, 1)) || (rc = attr_u32(file, "version", version, 2, 0))) return rc;
  /* spike chunks of at most CHUNK rows, smaller when many populations record (a partly filled
   * chunk per population is deflated at the end: 1000 populations of 512 kB chunks took 12 s) */
  size_t n_sp = 0;
  for (int i = 0; i < net->n_pops; i++) n_sp += net->pops[i].rec_spikes != 0;
  uint32_t chunk = CHUNK;
  while (chunk > 1024 && (size_t)chunk * n_sp > ((size_t)1 << 20)) chunk /= 2;
  for (int i = 0; i < net->n_pops; i++) {
    sb_pop *p = &net->pops[i];
    if (!p->rec_spikes) continue;
    p->sp_chunk = chunk;
    char path[300];
    snprintf(path, sizeof path, "spikes/%s", p->name);
    hid_t g = sb_h5_group(file, path);
    if (g < 0) SB_ERROR(SB_EIO, "cannot create group /%s", path);
    sb_h5_attr_write_string(g, "sorting", "by_time");
    int64_t nn = (int64_t)p->n;   /* spikebridge extension: silent neurons count in analyses */
    sb_h5_attr_write_int64s(g, "n_nodes", &nn, 1);
    p->ds_t = ext_dataset(g, "timestamps", H5T_IEEE_F64LE, 1, 1, chunk);
    p->ds_id = ext_dataset(g, "node_ids", H5T_STD_U64LE, 1, 1, chunk);
    if (p->ds_t >= 0) sb_h5_attr_write_string(p->ds_t, "units", "ms");
    H5Gclose(g);
    if (p->ds_t < 0 || p->ds_id < 0) SB_ERROR(SB_EIO, "cannot create /%s datasets", path);
    p->written = 0;
  }
  for (int i = 0; i < net->n_recs; i++) {
    sb_rec *r = &net->recs[i];
    hid_t g = sb_h5_group(file, r->group);
    char mp[300];
    snprintf(mp, sizeof mp, "%s/mapping", r->group);
    hid_t m = sb_h5_group(file, mp);
    if (g < 0 || m < 0) SB_ERROR(SB_EIO, "cannot create group /%s", r->group);
    uint64_t *u = sb_malloc((r->n + 1) * sizeof *u);
    uint32_t *e = sb_calloc(r->n, sizeof *e);
    if (!u || !e) {
      sb_free(u); sb_free(e); H5Gclose(g); H5Gclose(m);
      return SB_ENOMEM;
    }
    for (size_t c = 0; c < r->n; c++) u[c] = r->ids[c];
    sb_h5_write_1d(m, "node_ids", H5T_STD_U64LE, H5T_NATIVE_UINT64, u, r->n);
    for (size_t c = 0; c <= r->n; c++) u[c] = c;
    sb_h5_write_1d(m, "index_pointers", H5T_STD_U64LE, H5T_NATIVE_UINT64, u, r->n + 1);
    sb_h5_write_1d(m, "element_ids", H5T_STD_U32LE, H5T_NATIVE_UINT32, e, r->n);
    sb_free(u);
    sb_free(e);
    r->ds = ext_dataset(g, "data", H5T_IEEE_F32LE, 2, r->n, 0);
    if (r->ds >= 0) {
      sb_h5_attr_write_string(r->ds, "units", r->unit);
      sb_h5_attr_write_string(r->ds, "variable_name", r->var);
    }
    H5Gclose(m);
    H5Gclose(g);
    if (r->ds < 0) SB_ERROR(SB_EIO, "cannot create /%s/data", r->group);
    r->written = 0;
  }
  return SB_OK;
}

int sb_rec_flush_(sb_net *net, int full) {
  int rc;
  if (net->nranks > 1)   /* MPI: rank 0 merges the other ranks' sample columns (collective) */
    for (int i = 0; i < net->n_recs; i++) {
      sb_rec *r = &net->recs[i];
      size_t from = net->rank == 0 ? r->mem_merged : 0;   /* rank 0 keeps rows when it has no file */
      if (r->mem_rows == from) continue;
      if ((rc = sb_mpi_merge_u32_root_(net, r->mem + from * r->n, (r->mem_rows - from) * r->n))) return rc;
      if (net->rank != 0) r->mem_rows = 0;
      else r->mem_merged = r->mem_rows;
    }
  if (net->file < 0) return SB_OK;
  for (int i = 0; i < net->n_pops; i++) {
    sb_pop *p = &net->pops[i];
    if (!p->rec_spikes || p->ds_t < 0 || !p->sp_n) continue;
    /* a periodic flush writes whole chunks only: appending to a partly filled compressed chunk
     * makes HDF5 read, inflate and deflate it again at every flush (CUBA: 8% of the run with a
     * flush every 1000 ms); the rest (under one chunk) waits for the next flush */
    size_t n = p->sp_n;
    if (!full) {
      uint64_t end = (p->written + p->sp_n) / p->sp_chunk * p->sp_chunk;
      n = end > p->written ? (size_t)(end - p->written) : 0;
    }
    if (!n) continue;
    uint64_t *ids = sb_malloc(n * sizeof *ids);
    if (!ids) return SB_ENOMEM;
    for (size_t q = 0; q < n; q++) ids[q] = p->sp_id[q];
    uint64_t w0 = p->written;
    rc = sb_rec_append_(p->ds_t, H5T_NATIVE_DOUBLE, p->sp_t, n, 1, 1, &p->written);
    if (!rc) rc = sb_rec_append_(p->ds_id, H5T_NATIVE_UINT64, ids, n, 1, 1, &w0);
    sb_free(ids);
    if (rc) return rc;
    memmove(p->sp_t, p->sp_t + n, (p->sp_n - n) * sizeof *p->sp_t);
    memmove(p->sp_id, p->sp_id + n, (p->sp_n - n) * sizeof *p->sp_id);
    p->sp_n -= n;
  }
  for (int i = 0; i < net->n_recs; i++) {
    sb_rec *r = &net->recs[i];
    if (r->ds < 0 || !r->mem_rows) continue;
    if ((rc = sb_rec_append_(r->ds, H5T_NATIVE_FLOAT, r->mem, r->mem_rows, r->n, 2, &r->written))) return rc;
    r->mem_rows = r->mem_merged = 0;
  }
  H5Fflush(net->file, H5F_SCOPE_GLOBAL);
  return SB_OK;
}

int sb_net_finish_output(sb_net *net) {
  int rc = sb_rec_flush_(net, 1);   /* first: collective under MPI */
  if (rc || net->file < 0) return rc;
  for (int i = 0; i < net->n_recs; i++) {
    sb_rec *r = &net->recs[i];
    char mp[300];
    snprintf(mp, sizeof mp, "%s/mapping", r->group);
    hid_t m = H5Gopen2(net->file, mp, H5P_DEFAULT);
    if (m < 0) SB_ERROR(SB_EIO, "cannot open /%s", mp);
    double tm[3] = {0.0, (double)r->written * r->interval, r->interval};
    if (!sb_h5_exists(m, "time")) sb_h5_write_1d(m, "time", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, tm, 3);
    hid_t ds = H5Dopen2(m, "time", H5P_DEFAULT);
    if (ds >= 0) {
      sb_h5_attr_write_string(ds, "units", "ms");
      H5Dclose(ds);
    }
    H5Gclose(m);
  }

  close_datasets(net);
  return SB_OK;
}
