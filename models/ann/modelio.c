/* Model files in HDF5: one group per layer with its weights (PyTorch layouts) and attributes,
 * the architecture also as a JSON string attribute (docs/ann.md, "Model file format").
 * Loading rebuilds the model from the JSON and checks every dataset's shape against it. */
#include "models/ann/ann.h"
#include "models/ann/internal.h"
#include "sim/core.h"

#include <string.h>

#define SB_ANN_FORMAT "spikebridge-ann"
#define SB_ANN_VERSION 1

static int write_shape_attr(hid_t g, const char *name, sb_shape s) {
  int64_t v[3] = {s.c, s.h, s.w};
  return sb_h5_attr_write_int64s(g, name, v, s.rank == 3 ? 3 : 1);
}

/* Datasets of layer L: names, pointers, shapes. Returns the count (<= 4). */
typedef struct {
  const char *name;
  float *data;
  int rank;
  size_t dims[4];
} dset;

static int layer_dsets(const sb_layer *L, dset *d) {
  switch (L->kind) {
  case SB_LAYER_DENSE:
    d[0] = (dset){"weight", L->w, 2, {(size_t)L->out.c, (size_t)L->in.c, 0, 0}};
    d[1] = (dset){"bias", L->b, 1, {(size_t)L->out.c, 0, 0, 0}};
    return 2;
  case SB_LAYER_CONV2D:
    d[0] = (dset){"weight", L->w, 4, {(size_t)L->out.c, (size_t)L->in.c, (size_t)L->k, (size_t)L->k}};
    d[1] = (dset){"bias", L->b, 1, {(size_t)L->out.c, 0, 0, 0}};
    return 2;
  case SB_LAYER_BATCHNORM:
    d[0] = (dset){"weight", L->w, 1, {(size_t)L->in.c, 0, 0, 0}};
    d[1] = (dset){"bias", L->b, 1, {(size_t)L->in.c, 0, 0, 0}};
    d[2] = (dset){"running_mean", L->running_mean, 1, {(size_t)L->in.c, 0, 0, 0}};
    d[3] = (dset){"running_var", L->running_var, 1, {(size_t)L->in.c, 0, 0, 0}};
    return 4;
  case SB_LAYER_QCFS:
    d[0] = (dset){"threshold", L->w, 1, {1, 0, 0, 0}};
    return 1;
  default: return 0;
  }
}

static int is_activation(sb_layer_kind k) {
  return k == SB_LAYER_RELU || k == SB_LAYER_LEAKY_RELU || k == SB_LAYER_SIGMOID || k == SB_LAYER_TANH ||
         k == SB_LAYER_QCFS;
}

int sb_model_save_to(const sb_model *m, hid_t loc) {
  int st = SB_OK;
  char *arch = sb_model_to_json(m);
  if (!arch) return SB_ENOMEM;
  int64_t ver = SB_ANN_VERSION, nl = m->n_layers, np = (int64_t)m->n_params;
  if ((st = sb_h5_attr_write_string(loc, "format", SB_ANN_FORMAT)) ||
      (st = sb_h5_attr_write_int64s(loc, "version", &ver, 1)) ||
      (st = sb_h5_attr_write_string(loc, "name", m->name)) ||
      (st = sb_h5_attr_write_string(loc, "architecture", arch)) ||
      (st = write_shape_attr(loc, "input_shape", m->input)) ||
      (st = sb_h5_attr_write_int64s(loc, "n_layers", &nl, 1)) ||
      (st = sb_h5_attr_write_int64s(loc, "n_params", &np, 1))) {
    sb_free(arch);
    return st;
  }
  sb_free(arch);
  hid_t layers = sb_h5_group(loc, "layers");
  if (layers < 0) SB_ERROR(SB_EIO, "cannot create group 'layers'");
  for (int i = 0; i < m->n_layers && !st; i++) {
    const sb_layer *L = &m->layers[i];
    char gname[16];
    snprintf(gname, sizeof gname, "%03d", i);
    hid_t g = sb_h5_group(layers, gname);
    if (g < 0) { st = SB_SET_ERROR(SB_EIO, "cannot create group 'layers/%s'", gname); break; }
    const char *kn = sb_layer_kind_name(L->kind);
    int64_t idx = i;
    st = sb_h5_attr_write_string(g, "kind", kn);
    if (!st) st = sb_h5_attr_write_string(g, "activation", is_activation(L->kind) ? kn : "linear");
    if (!st) st = sb_h5_attr_write_int64s(g, "index", &idx, 1);
    if (!st) st = write_shape_attr(g, "in_shape", L->in);
    if (!st) st = write_shape_attr(g, "out_shape", L->out);
    if (!st && (L->kind == SB_LAYER_CONV2D || L->kind == SB_LAYER_AVGPOOL || L->kind == SB_LAYER_MAXPOOL)) {
      int64_t k = L->k, s = L->stride, p = L->pad;
      st = sb_h5_attr_write_int64s(g, "kernel", &k, 1);
      if (!st) st = sb_h5_attr_write_int64s(g, "stride", &s, 1);
      if (!st) st = sb_h5_attr_write_int64s(g, "padding", &p, 1);
    }
    if (!st && L->kind == SB_LAYER_LEAKY_RELU) {
      double a = (double)L->alpha;
      st = sb_h5_attr_write_doubles(g, "alpha", &a, 1);
    }
    if (!st && L->kind == SB_LAYER_QCFS) {
      int64_t lv = L->levels;
      st = sb_h5_attr_write_int64s(g, "levels", &lv, 1);
    }
    if (!st && L->kind == SB_LAYER_BATCHNORM) {
      double e = (double)L->eps, mo = (double)L->momentum;
      st = sb_h5_attr_write_doubles(g, "eps", &e, 1);
      if (!st) st = sb_h5_attr_write_doubles(g, "momentum", &mo, 1);
    }
    dset d[4];
    int nd = layer_dsets(L, d);
    for (int j = 0; j < nd && !st; j++) st = sb_h5_write_float(g, d[j].name, d[j].data, d[j].rank, d[j].dims);
    H5Gclose(g);
  }
  H5Gclose(layers);
  return st;
}

int sb_model_save(const sb_model *m, const char *path, const char *const *meta) {
  sb_h5_out out;
  int st = sb_h5_create(&out, path);
  if (st) return st;
  st = sb_model_save_to(m, out.file);
  for (int i = 0; !st && meta && meta[i] && meta[i + 1]; i += 2) st = sb_h5_attr_write_string(out.file, meta[i], meta[i + 1]);
  if (st) {
    sb_h5_abort(&out);
    return sb_error_prefix_(st, "%s", path);
  }
  return sb_h5_commit(&out);
}

static void dims_str(char *buf, size_t cap, int rank, const size_t *dims) {
  size_t k = (size_t)snprintf(buf, cap, "(");
  for (int i = 0; i < rank && k < cap; i++) k += (size_t)snprintf(buf + k, cap - k, "%s%zu", i ? ", " : "", dims[i]);
  if (k < cap) snprintf(buf + k, cap - k, ")");
}

int sb_model_load_from(sb_model **out, hid_t loc, const char *what) {
  *out = NULL;
  char *fmt = NULL, *arch = NULL;
  int st = sb_h5_attr_read_string(loc, "format", &fmt);
  if (st || strcmp(fmt, SB_ANN_FORMAT) != 0) {
    st = SB_SET_ERROR(SB_EFORMAT, "%s: attribute 'format': expected \"%s\" (got %s%s%s)", what, SB_ANN_FORMAT,
                      fmt ? "\"" : "", fmt ? fmt : "none", fmt ? "\"" : "");
    sb_free(fmt);
    return st;
  }
  sb_free(fmt);
  int64_t ver = 0;
  size_t nv = 0;
  if (sb_h5_attr_read_int64s(loc, "version", &ver, 1, &nv) || ver < 1 || ver > SB_ANN_VERSION)
    SB_ERROR(SB_EFORMAT, "%s: attribute 'version': expected 1..%d (got %lld)", what, SB_ANN_VERSION, (long long)ver);
  if ((st = sb_h5_attr_read_string(loc, "architecture", &arch)))
    return sb_error_prefix_(SB_EFORMAT, "%s", what);
  char jwhat[600];
  snprintf(jwhat, sizeof jwhat, "%s: attribute 'architecture'", what);
  sb_model *m = NULL;
  st = sb_model_from_json(&m, arch, jwhat, NULL);
  sb_free(arch);
  if (st) return st == SB_ENOMEM ? st : SB_EFORMAT;
  for (int i = 0; i < m->n_layers && !st; i++) {
    sb_layer *L = &m->layers[i];
    char gname[32];
    snprintf(gname, sizeof gname, "layers/%03d", i);
    if (!sb_h5_exists(loc, gname)) {
      st = SB_SET_ERROR(SB_EFORMAT, "%s: /%s: missing group for layer %d (%s)", what, gname, i, sb_layer_kind_name(L->kind));
      break;
    }
    hid_t g = H5Gopen2(loc, gname, H5P_DEFAULT);
    if (g < 0) { st = SB_SET_ERROR(SB_EFORMAT, "%s: /%s: not a group", what, gname); break; }
    char *kind = NULL;
    if (sb_h5_attr_read_string(g, "kind", &kind) || sb_layer_kind_parse(kind) != (int)L->kind) {
      st = SB_SET_ERROR(SB_EFORMAT, "%s: /%s: attribute 'kind': expected \"%s\" as in the architecture (got \"%s\")",
                        what, gname, sb_layer_kind_name(L->kind), kind ? kind : "none");
    }
    sb_free(kind);
    dset d[4];
    int nd = layer_dsets(L, d);
    for (int j = 0; j < nd && !st; j++) {
      void *buf = NULL;
      size_t n = 0, dims[8] = {0};
      int rank = 0;
      if ((st = sb_h5_read(g, d[j].name, H5T_NATIVE_FLOAT, &buf, &n, &rank, dims, 8))) {
        st = sb_error_prefix_(SB_EFORMAT, "%s: /%s", what, gname);
        break;
      }
      int same = rank == d[j].rank;
      for (int r = 0; same && r < rank; r++) same = dims[r] == d[j].dims[r];
      if (!same) {
        char want[96], got[96];
        dims_str(want, sizeof want, d[j].rank, d[j].dims);
        dims_str(got, sizeof got, rank > 8 ? 8 : rank, dims);
        st = SB_SET_ERROR(SB_EFORMAT, "%s: /%s/%s: expected shape %s from the architecture (got %s)", what, gname,
                          d[j].name, want, got);
      } else {
        memcpy(d[j].data, buf, n * sizeof(float));
        for (size_t t = 0; t < n && !st; t++)
          if (!(d[j].data[t] == d[j].data[t]) || d[j].data[t] - d[j].data[t] != 0.0f)
            st = SB_SET_ERROR(SB_EFORMAT, "%s: /%s/%s: element %zu is not finite", what, gname, d[j].name, t);
      }
      sb_free(buf);
    }
    if (!st && L->kind == SB_LAYER_QCFS && !(L->w[0] > 0.0f))
      st = SB_SET_ERROR(SB_EFORMAT, "%s: /%s/threshold: expected > 0 (got %g)", what, gname, (double)L->w[0]);
    H5Gclose(g);
  }
  if (st) { sb_model_free(m); return st; }
  *out = m;
  return SB_OK;
}

int sb_model_load(sb_model **out, const char *path) {
  *out = NULL;
  hid_t f;
  int st = sb_h5_open_read(path, &f);
  if (st) return st;
  st = sb_model_load_from(out, f, path);
  H5Fclose(f);
  return st;
}

int sb_model_file_is_ann(const char *path) {
  sb_h5_quiet();
  hid_t f;
  if (sb_h5_open_read(path, &f)) { sb_error_clear(); return 0; }
  char *fmt = NULL;
  int yes = 0;
  if (sb_h5_attr_read_string(f, "format", &fmt) == SB_OK)
    yes = !strcmp(fmt, SB_ANN_FORMAT) || !strcmp(fmt, "spikebridge-gan");
  sb_free(fmt);
  sb_error_clear();
  H5Fclose(f);
  return yes;
}

void sb_model_print(const sb_model *m, FILE *f) {
  char sh[64];
  fprintf(f, "model %s: %d layers, input ", m->name, m->n_layers);
  shape_str_(sh, sizeof sh, m->input);
  fprintf(f, "%s\n", sh);
  fprintf(f, "  %-3s %-11s %-16s %-26s %10s\n", "#", "kind", "output", "details", "params");
  size_t total = 0;
  for (int i = 0; i < m->n_layers; i++) {
    const sb_layer *L = &m->layers[i];
    char det[64] = "";
    switch (L->kind) {
    case SB_LAYER_DENSE: snprintf(det, sizeof det, "%d -> %d", L->in.c, L->out.c); break;
    case SB_LAYER_CONV2D:
      snprintf(det, sizeof det, "%dx%d, %d -> %d ch, s%d p%d", L->k, L->k, L->in.c, L->out.c, L->stride, L->pad);
      break;
    case SB_LAYER_AVGPOOL:
    case SB_LAYER_MAXPOOL: snprintf(det, sizeof det, "%dx%d, stride %d", L->k, L->k, L->stride); break;
    case SB_LAYER_LEAKY_RELU: snprintf(det, sizeof det, "alpha %g", (double)L->alpha); break;
    case SB_LAYER_QCFS: snprintf(det, sizeof det, "L=%d, lambda=%.4g", L->levels, (double)L->w[0]); break;
    case SB_LAYER_BATCHNORM: snprintf(det, sizeof det, "%d ch, eps %g", L->in.c, (double)L->eps); break;
    default: break;
    }
    shape_str_(sh, sizeof sh, L->out);
    fprintf(f, "  %-3d %-11s %-16s %-26s %10zu\n", i, sb_layer_kind_name(L->kind), sh, det, L->n_params);
    total += L->n_params;
  }
  fprintf(f, "  trainable parameters: %zu (%.2f MB float32)", total, (double)total * 4.0 / 1e6);
  if (m->n_state) fprintf(f, ", state (batchnorm running stats): %zu", m->n_state);
  fprintf(f, "\n");
}
