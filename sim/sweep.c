/* Parameter sweeps: read a sweep file (base model + parameters to vary), expand it into runs
 * (grid, zip, random samples), run one run into its own HDF5 file, recognise complete runs
 * for restarts, and write the summary table (CSV and HDF5) from the run files.
 * Not here: argument parsing and printing (cli/cmd_sweep.c), the engine itself (run.c). */
#include "sim/sim.h"
#include "sim/internal.h"
#include "analysis/analysis.h"

#include <errno.h>
#include <stdarg.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gsl/gsl_randist.h>

#define SWEEP_MAX_RUNS 10000000u

/* ---- small helpers ---- */

static char *dup_(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = sb_malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

static const char *type_name(const json_t *j) {
  switch (json_typeof(j)) {
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "an array";
  case JSON_STRING: return "a string";
  case JSON_INTEGER: return "an integer";
  case JSON_REAL: return "a number";
  case JSON_TRUE: case JSON_FALSE: return "a boolean";
  default: return "null";
  }
}

/* Shortest text that reads back as the same double (15, 16 or 17 digits). */
static void fmt_double(char *buf, size_t cap, double x) {
  for (int p = 15; p <= 17; p++) {
    snprintf(buf, cap, "%.*g", p, x);
    if (strtod(buf, NULL) == x) break;
  }
  /* keep it a JSON real so that the loader sees a number, never an integer overflow */
  if (!strpbrk(buf, ".eEn")) strncat(buf, ".0", cap - strlen(buf) - 1);
}

/* Compact JSON text of `v` appended to buf[*at..cap) (reals in their shortest round-trip form at
 * any depth, as JSON printers do); returns 0, or -1 when it does not fit or on ENOMEM. */
static int put_json(char *buf, size_t cap, size_t *at, const json_t *v) {
  char num[64];
  const char *lit = NULL;
  char *own = NULL;
  if (json_is_real(v)) {
    fmt_double(num, sizeof num, json_real_value(v));
    lit = num;
  } else if (json_is_object(v) || json_is_array(v)) {
    int obj = json_is_object(v);
    size_t n = obj ? json_object_size(v) : json_array_size(v), k = 0;
    if (*at + 1 >= cap) return -1;
    buf[(*at)++] = obj ? '{' : '[';
    const char *key;
    json_t *x;
    void *it = obj ? json_object_iter((json_t *)v) : NULL;
    for (k = 0; k < n; k++) {
      if (k) { if (*at + 1 >= cap) return -1; buf[(*at)++] = ','; }
      if (obj) {
        key = json_object_iter_key(it);
        x = json_object_iter_value(it);
        json_t *ks = json_string(key);
        int r = ks ? put_json(buf, cap, at, ks) : -1;
        json_decref(ks);
        if (r || *at + 1 >= cap) return -1;
        buf[(*at)++] = ':';
        it = json_object_iter_next((json_t *)v, it);
      } else {
        x = json_array_get(v, k);
      }
      if (put_json(buf, cap, at, x)) return -1;
    }
    if (*at + 1 >= cap) return -1;
    buf[(*at)++] = obj ? '}' : ']';
    buf[*at] = 0;
    return 0;
  } else {
    lit = own = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    if (!own) return -1;
  }
  size_t l = strlen(lit);
  int r = *at + l + 1 > cap ? -1 : 0;
  if (!r) { memcpy(buf + *at, lit, l + 1); *at += l; }
  free(own);
  return r;
}

/* A JSON value as compact text (new string). Reals in their shortest round-trip form, also
 * inside objects and arrays ({"a": 0.1} gives {"a":0.1}, not 0.10000000000000001). */
static char *value_text(const json_t *v) {
  for (size_t cap = 256;; cap *= 4) {
    char *buf = sb_malloc(cap);
    if (!buf) return NULL;
    size_t at = 0;
    buf[0] = 0;
    if (!put_json(buf, cap, &at, v)) return buf;
    sb_free(buf);
    if (cap > ((size_t)1 << 30)) return NULL;
  }
}

/* The text to show for a value in the summary (new string): a JSON string's own characters
 * ("iaf_psc_delta", not "\"iaf_psc_delta\""), any other value as its JSON text. */
static char *plain_text(const char *value) {
  if (value[0] == '"') {
    json_t *j = json_loads(value, JSON_DECODE_ANY, NULL);
    if (json_is_string(j)) {
      char *d = dup_(json_string_value(j));
      json_decref(j);
      return d;
    }
    json_decref(j);
  }
  return dup_(value);
}

/* mkdir -p */
static int make_dirs(const char *path) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  size_t n = strlen(buf);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] == '/' || buf[i] == 0) {
      char c = buf[i];
      buf[i] = 0;
      if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        SB_ERROR(errno == EACCES || errno == EROFS || errno == ENOENT || errno == ENOTDIR ? SB_EINVAL : SB_EIO,
                 "%s: cannot create directory: %s", buf, strerror(errno));
      buf[i] = c;
    }
  }
  return SB_OK;
}

/* ---- loading ---- */

typedef struct { const char *file; } ctx;

static int fail_(const ctx *c, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail_(const ctx *c, const char *path, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  SB_ERROR(SB_EINVAL, "%s: %s: %s", c->file, path, msg);
}

/* Check that a --set path addresses something in the base model: array indices in range and
 * every parent object present (the last key, or a missing "params"/"init" object, may be new,
 * as --set creates them). */
static int check_one_path(const ctx *c, const char *where, const json_t *root, const char *base, const char *path,
                          char *canon, size_t ccap) {
  char buf[512];
  size_t cat = 0;
  canon[0] = 0;
  if (!*path) return fail_(c, where, "empty parameter path");
  if (strlen(path) >= sizeof buf) return fail_(c, where, "path too long");
  if (strchr(path, '=') || strchr(path, '/')) return fail_(c, where, "a path may not contain '=' or '/'");
  snprintf(buf, sizeof buf, "%s", path);
  const json_t *cur = root;
  char *save = NULL, *tok = strtok_r(buf, ".[]", &save);
  if (!tok) return fail_(c, where, "empty parameter path");
  int missing = 0;
  while (tok) {
    char *next = strtok_r(NULL, ".[]", &save);
    if (missing) {   /* below a new key: the rest of the path as written */
      cat += (size_t)snprintf(canon + cat, cat < ccap ? ccap - cat : 0, ".%s", tok);
    } else if (json_is_array(cur)) {
      char *end;
      long i = strtol(tok, &end, 10);
      if (*end || i < 0 || (size_t)i >= json_array_size(cur))
        return fail_(c, where, "'%s' is not an index of an array of %zu in %s", tok, json_array_size(cur), base);
      cat += (size_t)snprintf(canon + cat, cat < ccap ? ccap - cat : 0, "[%ld]", i);
      cur = json_array_get(cur, (size_t)i);
    } else if (json_is_object(cur)) {
      const json_t *nx = json_object_get(cur, tok);
      cat += (size_t)snprintf(canon + cat, cat < ccap ? ccap - cat : 0, "%s%s", cat ? "." : "", tok);
      if (!nx) {
        if (!next) return SB_OK;
        if (strcmp(tok, "params") && strcmp(tok, "init") && strcmp(tok, "simulation"))
          return fail_(c, where, "'%s' is not a key of %s (no such entry below it)", tok, base);
        missing = 1;
        tok = next;
        continue;
      }
      cur = nx;
    } else {
      return fail_(c, where, "'%s' is below %s in %s, which has no members", tok, type_name(cur), base);
    }
    tok = next;
  }
  return SB_OK;
}

static int get_num(const ctx *c, const char *path, const json_t *j, double *v) {
  if (!j) return fail_(c, path, "missing (a number)");
  if (!json_is_number(j)) return fail_(c, path, "expected a number (got %s)", type_name(j));
  *v = json_number_value(j);
  if (!isfinite(*v)) return fail_(c, path, "must be finite");
  return SB_OK;
}

/* The paths set so far (canonical: "a.b[2].c" whether written a.b[2].c or a.b.2.c), each with
 * the key that set it, to refuse a path set twice. */
typedef struct {
  char **path, **key;
  size_t n, cap;
} path_set;

static void path_set_free(path_set *ps) {
  for (size_t i = 0; i < ps->n; i++) { sb_free(ps->path[i]); sb_free(ps->key[i]); }
  sb_free(ps->path);
  sb_free(ps->key);
}

/* A key may tie several paths to one value: "projections[2].weight,projections[3].weight".
 * Each path is added to `ps`; one that is there already (set by another key of "parameters",
 * by "set", or earlier in this key) is refused. */
static int check_path(const ctx *c, const char *where, const json_t *root, const char *base, const char *path,
                      path_set *ps) {
  char buf[1024];
  if (strlen(path) >= sizeof buf) return fail_(c, where, "path too long");
  snprintf(buf, sizeof buf, "%s", path);
  char *save = NULL;
  int rc = SB_OK, n = 0;
  for (char *tok = strtok_r(buf, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save), n++) {
    char canon[1024];
    if ((rc = check_one_path(c, where, root, base, tok, canon, sizeof canon))) break;
    size_t cl = strlen(canon);
    for (size_t i = 0; i < ps->n; i++) {
      /* paths apply in this order: one that replaces an object holding an earlier path loses
       * that path's value (an earlier object with a later path below it is fine) */
      if (!strncmp(ps->path[i], canon, cl) && (ps->path[i][cl] == '.' || ps->path[i][cl] == '['))
        return fail_(c, where, "path '%s' replaces what holds '%s', set before by %s (that value would be lost; "
                               "set the object first, then paths below it)", tok, ps->path[i], ps->key[i]);
      if (strcmp(ps->path[i], canon)) continue;
      if (!strcmp(ps->key[i], where))
        return fail_(c, where, "path '%s' appears twice in this key (each path may be set once)", tok);
      return fail_(c, where, "path '%s' is already set by %s (each path may be set once: a swept path in two keys, or in "
                             "both \"set\" and \"parameters\", would leave the summary naming values a run did not use)",
                   tok, ps->key[i]);
    }
    if (ps->n == ps->cap) {
      size_t nc = ps->cap ? 2 * ps->cap : 16;
      char **np = sb_realloc(ps->path, nc * sizeof *np);
      if (!np) return SB_ENOMEM;
      ps->path = np;
      char **nk = sb_realloc(ps->key, nc * sizeof *nk);
      if (!nk) return SB_ENOMEM;
      ps->key = nk;
      ps->cap = nc;
    }
    ps->path[ps->n] = dup_(canon);
    ps->key[ps->n] = dup_(where);
    if (!ps->path[ps->n] || !ps->key[ps->n]) { sb_free(ps->path[ps->n]); sb_free(ps->key[ps->n]); return SB_ENOMEM; }
    ps->n++;
  }
  if (!rc && (!n || path[strlen(path) - 1] == ',' || strstr(path, ",,"))) rc = fail_(c, where, "empty parameter path");
  return rc;
}

/* Append "PATH=VALUE\n" for every comma-separated PATH of `paths` (NULL buf: count only). */
static size_t put_assign(char *buf, size_t cap, const char *paths, const char *value) {
  size_t at = 0;
  const char *p = paths;
  for (;;) {
    const char *e = strchr(p, ',');
    size_t l = e ? (size_t)(e - p) : strlen(p);
    if (buf) at += (size_t)snprintf(buf + at, cap - at, "%.*s=%s\n", (int)l, p, value);
    else at += l + strlen(value) + 2;
    if (!e) break;
    p = e + 1;
  }
  return at;
}

/* One random draw of a parameter spec `d` (validated by check_dist). New JSON value. */
static json_t *draw(const json_t *d, gsl_rng *r) {
  const char *k = json_string_value(json_object_get(d, "distribution"));
  if (!strcmp(k, "choice")) {
    const json_t *vals = json_object_get(d, "values");
    size_t i = (size_t)gsl_rng_uniform_int(r, json_array_size(vals));
    return json_deep_copy(json_array_get(vals, i));
  }
  if (!strcmp(k, "integer")) {
    long lo = (long)json_integer_value(json_object_get(d, "min")), hi = (long)json_integer_value(json_object_get(d, "max"));
    return json_integer(lo + (long)gsl_rng_uniform_int(r, (unsigned long)(hi - lo + 1)));
  }
  if (!strcmp(k, "normal")) {
    double m = json_number_value(json_object_get(d, "mean")), s = json_number_value(json_object_get(d, "std"));
    return json_real(m + gsl_ran_gaussian_ziggurat(r, s));
  }
  double lo = json_number_value(json_object_get(d, "min")), hi = json_number_value(json_object_get(d, "max"));
  if (!strcmp(k, "loguniform")) return json_real(exp(gsl_ran_flat(r, log(lo), log(hi))));
  return json_real(gsl_ran_flat(r, lo, hi));
}

static int check_dist(const ctx *c, const char *where, const json_t *d) {
  char p[600];
  if (!json_is_object(d))
    return fail_(c, where, "random mode expects a distribution object, e.g. {\"distribution\": \"uniform\", "
                           "\"min\": 0, \"max\": 1} (got %s)", type_name(d));
  const json_t *k = json_object_get(d, "distribution");
  snprintf(p, sizeof p, "%.500s.distribution", where);
  if (!json_is_string(k)) return fail_(c, p, "expected one of uniform, loguniform, normal, integer, choice");
  const char *name = json_string_value(k);
  static const char *const allowed[][4] = {
      {"uniform", "min", "max", NULL}, {"loguniform", "min", "max", NULL}, {"normal", "mean", "std", NULL},
      {"integer", "min", "max", NULL}, {"choice", "values", NULL, NULL}};
  int which = -1;
  for (int i = 0; i < 5; i++)
    if (!strcmp(name, allowed[i][0])) which = i;
  if (which < 0)
    return fail_(c, p, "unknown distribution '%s' (expected uniform, loguniform, normal, integer, choice)", name);
  const char *key;
  const json_t *v;
  json_object_foreach((json_t *)d, key, v) {
    int ok = !strcmp(key, "distribution");
    for (int i = 1; i < 4 && allowed[which][i]; i++) ok |= !strcmp(key, allowed[which][i]);
    if (!ok) {
      snprintf(p, sizeof p, "%s", where);
      return fail_(c, p, "unknown key '%s' for distribution %s", key, name);
    }
  }
  if (which == 4) {
    const json_t *vals = json_object_get(d, "values");
    snprintf(p, sizeof p, "%.500s.values", where);
    if (!json_is_array(vals) || !json_array_size(vals)) return fail_(c, p, "expected a non-empty array");
    return SB_OK;
  }
  double a, b;
  char pa[600], pb[600];
  snprintf(pa, sizeof pa, "%.500s.%.20s", where, allowed[which][1]);
  snprintf(pb, sizeof pb, "%.500s.%.20s", where, allowed[which][2]);
  int rc;
  if ((rc = get_num(c, pa, json_object_get(d, allowed[which][1]), &a))) return rc;
  if ((rc = get_num(c, pb, json_object_get(d, allowed[which][2]), &b))) return rc;
  if (which == 2) {
    if (b < 0) return fail_(c, pb, "must be >= 0 (got %g)", b);
    return SB_OK;
  }
  if (which == 3) {
    if (!json_is_integer(json_object_get(d, "min"))) return fail_(c, pa, "expected an integer");
    if (!json_is_integer(json_object_get(d, "max"))) return fail_(c, pb, "expected an integer");
    if (b < a) return fail_(c, pb, "must be >= min = %g (got %g)", a, b);
    return SB_OK;
  }
  if (!(b > a)) return fail_(c, pb, "must be > min = %g (got %g)", a, b);
  if (which == 1 && !(a > 0)) return fail_(c, pa, "must be > 0 for loguniform (got %g)", a);
  return SB_OK;
}

void sb_sweep_free(sb_sweep *sw) {
  if (!sw) return;
  for (size_t i = 0; sw->paths && i < sw->n_params; i++) sb_free(sw->paths[i]);
  for (size_t i = 0; sw->values && i < sw->n_runs * sw->n_params; i++) sb_free(sw->values[i]);
  for (size_t i = 0; sw->fixed && i < sw->n_fixed; i++) sb_free(sw->fixed[i]);
  sb_free(sw->paths);
  sb_free(sw->values);
  sb_free(sw->fixed);
  sb_free(sw->file);
  sb_free(sw->base);
  sb_free(sw->output_dir);
  sb_free(sw->prefix);
  sb_free(sw);
}

static int is_ignored_key(const char *k) {
  return k[0] == '_' || !strcmp(k, "comment") || !strcmp(k, "description");
}

int sb_sweep_load(const char *path, const char *output_dir_override, sb_sweep **out) {
  *out = NULL;
  json_t *root = NULL;
  int chk = sb_json_load_(path, &root);
  if (chk) return chk;
  ctx c = {path};
  path_set seen = {0};
  json_t *base_root = NULL;
  int rc = SB_OK;
  sb_sweep *sw = sb_calloc(1, sizeof *sw);
  if (!sw) { rc = SB_ENOMEM; goto fail; }
  sw->file = dup_(path);
  if (!sw->file) { rc = SB_ENOMEM; goto fail; }
  if (!json_is_object(root)) {
    rc = fail_(&c, "(top level)", "expected an object with base, parameters, ... (got %s)", type_name(root));
    goto fail;
  }
  static const char *const keys[] = {"base", "mode", "parameters", "samples", "seed", "set", "output_dir", "prefix", NULL};
  const char *k;
  json_t *v;
  json_object_foreach(root, k, v) {
    int ok = is_ignored_key(k);
    for (int i = 0; keys[i]; i++) ok |= !strcmp(k, keys[i]);
    if (!ok) {
      rc = fail_(&c, "(top level)", "unknown key '%s' (expected base, mode, parameters, samples, seed, set, output_dir, prefix)", k);
      goto fail;
    }
  }
  /* base model, relative to the sweep file's directory */
  const json_t *b = json_object_get(root, "base");
  if (!json_is_string(b)) {
    rc = fail_(&c, "base", b ? "expected a model file name (got %s)" : "missing (the base model file)%s", b ? type_name(b) : "");
    goto fail;
  }
  const char *bs = json_string_value(b);
  {
    const char *slash = strrchr(path, '/');
    size_t dl = (bs[0] != '/' && slash) ? (size_t)(slash - path) + 1 : 0;
    sw->base = sb_malloc(dl + strlen(bs) + 1);
    if (!sw->base) { rc = SB_ENOMEM; goto fail; }
    memcpy(sw->base, path, dl);
    strcpy(sw->base + dl, bs);
  }
  if ((rc = sb_json_load_(sw->base, &base_root))) {   /* names the model file, line and column */
    sb_error_prefix_(rc, "%s: base", path);
    goto fail;
  }
  if ((rc = sb_file_fingerprint(sw->base, sw->base_fp, sizeof sw->base_fp))) {
    sb_error_prefix_(rc, "%s: base", path);
    goto fail;
  }
  /* mode */
  const json_t *m = json_object_get(root, "mode");
  sw->mode = SB_SWEEP_GRID;
  if (m) {
    const char *ms = json_string_value(m);
    if (ms && !strcmp(ms, "grid")) sw->mode = SB_SWEEP_GRID;
    else if (ms && !strcmp(ms, "zip")) sw->mode = SB_SWEEP_ZIP;
    else if (ms && !strcmp(ms, "random")) sw->mode = SB_SWEEP_RANDOM;
    else {
      rc = fail_(&c, "mode", "expected \"grid\", \"zip\" or \"random\" (got %s%s%s)", ms ? "'" : "", ms ? ms : type_name(m), ms ? "'" : "");
      goto fail;
    }
  }
  /* output naming */
  const json_t *od = json_object_get(root, "output_dir"), *pf = json_object_get(root, "prefix");
  if (od && !json_is_string(od)) { rc = fail_(&c, "output_dir", "expected a directory name (got %s)", type_name(od)); goto fail; }
  if (pf && (!json_is_string(pf) || !*json_string_value(pf) || strchr(json_string_value(pf), '/'))) {
    rc = fail_(&c, "prefix", "expected a non-empty file name prefix without '/'");
    goto fail;
  }
  if (od && !*json_string_value(od)) {   /* "" would put the runs in the file system's root */
    rc = fail_(&c, "output_dir", "expected a directory name (got an empty string; omit the key for the default "
                                 "<sweep name>_runs, or \".\" for the working directory)");
    goto fail;
  }
  if (output_dir_override && !*output_dir_override) {
    rc = fail_(&c, "-o/--output-dir", "expected a directory name (got an empty string; \".\" is the working directory)");
    goto fail;
  }
  if (output_dir_override) sw->output_dir = dup_(output_dir_override);
  else if (od) sw->output_dir = dup_(json_string_value(od));
  else {   /* default: the sweep file's name without .json, in the working directory */
    const char *slash = strrchr(path, '/');
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", slash ? slash + 1 : path);
    char *dot = strrchr(buf, '.');
    if (dot && !strcmp(dot, ".json")) *dot = 0;
    strncat(buf, "_runs", sizeof buf - strlen(buf) - 1);
    sw->output_dir = dup_(buf);
  }
  sw->prefix = dup_(pf ? json_string_value(pf) : "run");
  if (!sw->output_dir || !sw->prefix) { rc = SB_ENOMEM; goto fail; }
  {   /* an output directory that exists must be a directory (as the runs will need it) */
    struct stat sd;
    const char *who = output_dir_override ? "-o/--output-dir" : od ? "output_dir" : "output directory (default)";
    if (stat(sw->output_dir, &sd) == 0 && !S_ISDIR(sd.st_mode)) {
      rc = fail_(&c, who, "'%s' exists and is not a directory", sw->output_dir);
      goto fail;
    }
    if (stat(sw->output_dir, &sd) != 0 && errno == ENOTDIR) {
      rc = fail_(&c, who, "'%s': a part of the path is a file, not a directory", sw->output_dir);
      goto fail;
    }
  }
  /* fixed overrides */
  const json_t *set = json_object_get(root, "set");
  if (set) {
    if (!json_is_object(set)) { rc = fail_(&c, "set", "expected an object of PATH: value (got %s)", type_name(set)); goto fail; }
    sw->fixed = sb_calloc(json_object_size(set) + 1, sizeof *sw->fixed);
    if (!sw->fixed) { rc = SB_ENOMEM; goto fail; }
    json_object_foreach((json_t *)set, k, v) {
      char where[600];
      snprintf(where, sizeof where, "set.%s", k);
      if ((rc = check_path(&c, where, base_root, sw->base, k, &seen))) goto fail;
      char *t = value_text(v);
      if (!t) { rc = SB_ENOMEM; goto fail; }
      size_t n = strlen(k) + strlen(t) + 2;
      sw->fixed[sw->n_fixed] = sb_malloc(n);
      if (!sw->fixed[sw->n_fixed]) { sb_free(t); rc = SB_ENOMEM; goto fail; }
      snprintf(sw->fixed[sw->n_fixed++], n, "%s=%s", k, t);
      sb_free(t);
    }
  }
  /* parameters */
  const json_t *par = json_object_get(root, "parameters");
  if (!par) { rc = fail_(&c, "parameters", "missing (an object of PATH: values)"); goto fail; }
  if (!json_is_object(par) || !json_object_size(par)) {
    rc = fail_(&c, "parameters", "expected a non-empty object of PATH: values (got %s)", type_name(par));
    goto fail;
  }
  sw->n_params = json_object_size(par);
  sw->paths = sb_calloc(sw->n_params, sizeof *sw->paths);
  const json_t **specs = sb_calloc(sw->n_params, sizeof *specs);
  if (!sw->paths || !specs) { sb_free(specs); rc = SB_ENOMEM; goto fail; }
  size_t np = 0;
  json_object_foreach((json_t *)par, k, v) {
    char where[600];
    snprintf(where, sizeof where, "parameters.%s", k);
    specs[np] = v;
    sw->paths[np] = dup_(k);
    if (!sw->paths[np]) { rc = SB_ENOMEM; break; }
    np++;
    if ((rc = check_path(&c, where, base_root, sw->base, k, &seen))) break;
    if (sw->mode == SB_SWEEP_RANDOM) {
      if ((rc = check_dist(&c, where, v))) break;
    } else if (!json_is_array(v) || !json_array_size(v)) {
      rc = fail_(&c, where, "expected a non-empty array of values (got %s)", json_is_array(v) ? "an empty array" : type_name(v));
      break;
    }
  }
  if (rc) { sb_free(specs); goto fail; }
  /* number of runs */
  size_t n_runs = 1;
  const json_t *samples = json_object_get(root, "samples"), *seed = json_object_get(root, "seed");
  if (sw->mode == SB_SWEEP_RANDOM) {
    if (!json_is_integer(samples) || json_integer_value(samples) < 1 || json_integer_value(samples) > SWEEP_MAX_RUNS) {
      rc = fail_(&c, "samples", samples ? "expected an integer in [1, %u]" : "missing (random mode needs the number of samples, <= %u)",
                 SWEEP_MAX_RUNS);
      sb_free(specs);
      goto fail;
    }
    n_runs = (size_t)json_integer_value(samples);
    sw->seed = 1;
    if (seed) {
      if (!json_is_integer(seed) || json_integer_value(seed) < 0) {
        rc = fail_(&c, "seed", "expected an integer >= 0 (got %s)", type_name(seed));
        sb_free(specs);
        goto fail;
      }
      sw->seed = (uint64_t)json_integer_value(seed);
    }
  } else {
    if (samples || seed) {
      rc = fail_(&c, samples ? "samples" : "seed", "only used in random mode (mode is %s)", sw->mode == SB_SWEEP_GRID ? "grid" : "zip");
      sb_free(specs);
      goto fail;
    }
    for (size_t p = 0; p < sw->n_params; p++) {
      size_t len = json_array_size(specs[p]);
      if (sw->mode == SB_SWEEP_ZIP) {
        if (p > 0 && len != n_runs) {
          rc = fail_(&c, "parameters", "zip needs lists of equal length: parameters.%s has %zu values, parameters.%s has %zu",
                     sw->paths[p], len, sw->paths[0], n_runs);
          sb_free(specs);
          goto fail;
        }
        n_runs = len;
      } else {
        if (n_runs > SWEEP_MAX_RUNS / len) {
          rc = fail_(&c, "parameters", "the grid has more than %u runs", SWEEP_MAX_RUNS);
          sb_free(specs);
          goto fail;
        }
        n_runs *= len;
      }
    }
  }
  sw->values = sb_calloc(n_runs * sw->n_params, sizeof *sw->values);
  if (!sw->values) { sb_free(specs); rc = SB_ENOMEM; goto fail; }
  sw->n_runs = n_runs;
  gsl_rng *r = sw->mode == SB_SWEEP_RANDOM ? sb_rng_alloc(sw->seed, SB_RNG_SWEEP, 0) : NULL;
  if (sw->mode == SB_SWEEP_RANDOM && !r) { sb_free(specs); rc = SB_ENOMEM; goto fail; }
  for (size_t i = 0; i < n_runs && !rc; i++) {
    size_t rem = i;
    if (r) sb_rng_reseed(r, sw->seed, SB_RNG_SWEEP, i);
    for (size_t pp = sw->n_params; !r && pp-- > 0;) {   /* grid: the last parameter varies fastest */
      const json_t *src;
      if (sw->mode == SB_SWEEP_GRID) {
        size_t len = json_array_size(specs[pp]);
        src = json_array_get(specs[pp], rem % len);
        rem /= len;
      } else {
        src = json_array_get(specs[pp], i);
      }
      char *t = value_text(src);
      if (!t) { rc = SB_ENOMEM; break; }
      sw->values[i * sw->n_params + pp] = t;
    }
    /* random: draws in parameter order from run i's own stream */
    if (r)
      for (size_t pp = 0; pp < sw->n_params && !rc; pp++) {
        json_t *val = draw(specs[pp], r);
        char *t = val ? value_text(val) : NULL;
        json_decref(val);
        if (!t) { rc = SB_ENOMEM; break; }
        sw->values[i * sw->n_params + pp] = t;
      }
  }
  gsl_rng_free(r);
  sb_free(specs);
  if (rc) goto fail;
  size_t w = 4;
  for (size_t x = n_runs - 1; x >= 10000; x /= 10) w++;
  sw->width = (int)w;
  {   /* the longest name written, <prefix>_<i>.failed.tmp.<pid>, must fit the file system (a
       * 245-character prefix failed at the first run, after the checks) */
    long name_max = sb_name_max(sw->output_dir);
    size_t longest = strlen(sw->prefix) + 1 + w + strlen(".failed.tmp.") + 7;
    if ((long)longest > name_max) {
      rc = fail_(&c, "prefix", "'%.20s...' (%zu characters) makes file names of %zu characters, more than the %ld the file "
                 "system allows; expected a prefix of at most %ld characters", sw->prefix, strlen(sw->prefix), longest,
                 name_max, name_max - (long)(longest - strlen(sw->prefix)));
      goto fail;
    }
  }
  path_set_free(&seen);
  json_decref(base_root);
  json_decref(root);
  *out = sw;
  return SB_OK;
fail:
  path_set_free(&seen);
  json_decref(base_root);
  json_decref(root);
  sb_sweep_free(sw);
  return rc;
}

/* ---- runs ---- */

void sb_sweep_run_path(const sb_sweep *sw, size_t i, char *buf, size_t cap) {
  snprintf(buf, cap, "%s/%s_%0*zu.h5", sw->output_dir, sw->prefix, sw->width, i);
}

char *sb_sweep_overrides_text(const sb_sweep *sw, size_t i) {
  size_t n = 1;
  for (size_t k = 0; k < sw->n_fixed; k++) n += strlen(sw->fixed[k]) + 1;
  for (size_t p = 0; p < sw->n_params; p++) n += put_assign(NULL, 0, sw->paths[p], sw->values[i * sw->n_params + p]);
  char *s = sb_malloc(n);
  if (!s) return NULL;
  s[0] = 0;
  size_t at = 0;
  for (size_t k = 0; k < sw->n_fixed; k++) at += (size_t)snprintf(s + at, n - at, "%s\n", sw->fixed[k]);
  for (size_t p = 0; p < sw->n_params; p++) at += put_assign(s + at, n - at, sw->paths[p], sw->values[i * sw->n_params + p]);
  return s;
}

int sb_sweep_run_complete(const sb_sweep *sw, size_t i) {
  char path[4096];
  sb_sweep_run_path(sw, i, path, sizeof path);
  if (access(path, R_OK) != 0) return 0;
  hid_t f;
  if (sb_h5_open_read(path, &f)) { sb_error_clear(); return 0; }
  int ok = 0;
  char *ov = NULL, *want = NULL, *fp = NULL;
  hid_t g = H5Lexists(f, "sweep", H5P_DEFAULT) > 0 ? H5Gopen2(f, "sweep", H5P_DEFAULT) : H5I_INVALID_HID;
  if (g >= 0) {
    int64_t idx = -1, done = 0;
    size_t n;
    want = sb_sweep_overrides_text(sw, i);
    if (want && !sb_h5_attr_read_int64s(g, "index", &idx, 1, &n) && !sb_h5_attr_read_int64s(g, "complete", &done, 1, &n) &&
        !sb_h5_attr_read_string(g, "overrides", &ov) && !sb_h5_attr_read_string(g, "model_fingerprint", &fp))
      ok = idx == (int64_t)i && done == 1 && !strcmp(ov, want) && !strcmp(fp, sw->base_fp);
    H5Gclose(g);
  }
  sb_free(ov);
  sb_free(fp);
  sb_free(want);
  H5Fclose(f);
  sb_error_clear();
  return ok;
}

/* Run i's overrides as the loader's --set array: *ov the text (sb_sweep_overrides_text), *lines
 * its copy cut into the strings of *set. All three new; SB_ENOMEM. */
static int run_set(const sb_sweep *sw, size_t i, char **ov, char **lines, const char ***set, int *n_set) {
  *ov = sb_sweep_overrides_text(sw, i);
  *lines = *ov ? dup_(*ov) : NULL;
  size_t n_lines = 0;
  for (const char *q = *ov; q && *q; q++) n_lines += *q == '\n';
  *set = sb_calloc(n_lines + 1, sizeof **set);
  *n_set = 0;
  if (!*set || !*ov || !*lines) {
    sb_free(*set); sb_free(*ov); sb_free(*lines);
    *set = NULL; *ov = *lines = NULL;
    return SB_ENOMEM;
  }
  char *save = NULL;
  for (char *tok = strtok_r(*lines, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save)) (*set)[(*n_set)++] = tok;
  return SB_OK;
}

int sb_sweep_load_run(const sb_sweep *sw, size_t i, int threads, sb_snn_model *m) {
  memset(m, 0, sizeof *m);
  if (i >= sw->n_runs) SB_ERROR(SB_EINVAL, "%s: run index %zu out of range [0, %zu)", sw->file, i, sw->n_runs);
  char *ov, *lines;
  const char **set;
  int n_set, st;
  if ((st = run_set(sw, i, &ov, &lines, &set, &n_set))) return st;
  sb_snn_model_opts mo = {set, n_set, NAN, -1, threads};
  if ((st = sb_snn_model_load(sw->base, &mo, m))) st = sb_error_prefix_(st, "%s: run %zu", sw->file, i);
  sb_free(ov);
  sb_free(lines);
  sb_free(set);
  return st;
}

/* ---- failed runs ---- */

/* <output_dir>/<prefix>_<i>.failed: the marker of a run that failed at run time */
static void failed_path(const sb_sweep *sw, size_t i, char *buf, size_t cap) {
  snprintf(buf, cap, "%s/%s_%0*zu.failed", sw->output_dir, sw->prefix, sw->width, i);
}

int sb_sweep_mark_failed(const sb_sweep *sw, size_t i, const char *message) {
  char path[4096], tmp[4200];
  /* an output of an earlier, successful attempt (--force, or an edited base model) is not this
   * attempt's result: it stayed "complete" in the summary beside the failure */
  sb_sweep_run_path(sw, i, path, sizeof path);
  if (unlink(path) != 0 && errno != ENOENT) SB_ERROR(SB_EIO, "%s: cannot remove the earlier output: %s", path, strerror(errno));
  failed_path(sw, i, path, sizeof path);
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  int st = make_dirs(sw->output_dir);
  if (st) return st;
  char *ov = sb_sweep_overrides_text(sw, i);
  if (!ov) return SB_ENOMEM;
  FILE *f = fopen(tmp, "w");
  if (!f) { sb_free(ov); SB_ERROR(SB_EIO, "%s: cannot create: %s", tmp, strerror(errno)); }
  /* line 1: the error (newlines folded), then the overrides that identify the run */
  for (const char *q = message ? message : "unknown error"; *q; q++) fputc(*q == '\n' ? ' ' : *q, f);
  fprintf(f, "\n%s", ov);
  sb_free(ov);
  if (fclose(f) != 0 || rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    SB_ERROR(SB_EIO, "%s: cannot write: %s", path, strerror(e));
  }
  return SB_OK;
}

int sb_sweep_run_failed(const sb_sweep *sw, size_t i, char **message) {
  if (message) *message = NULL;
  char path[4096], *text = NULL;
  size_t n;
  failed_path(sw, i, path, sizeof path);
  if (access(path, R_OK) != 0) return 0;
  if (sb_read_file(path, &text, &n)) { sb_error_clear(); return 0; }
  char *want = sb_sweep_overrides_text(sw, i), *nl = strchr(text, '\n');
  int ok = want && nl && !strcmp(nl + 1, want);   /* written by this sweep definition for this run */
  if (ok && message) {
    *nl = 0;
    *message = text;
    text = NULL;
  }
  sb_free(text);
  sb_free(want);
  return ok;
}

int sb_sweep_run(const sb_sweep *sw, size_t i, const sb_sweep_run_opts *o) {
  if (i >= sw->n_runs) {
    if (o && o->model) sb_snn_model_free(o->model);
    SB_ERROR(SB_EINVAL, "%s: run index %zu out of range [0, %zu)", sw->file, i, sw->n_runs);
  }
  int st = SB_OK;
  sb_snn_model m;
  memset(&m, 0, sizeof m);
  sb_h5_out out = {0};
  int created = 0, loaded = 0;
  char path[4096];
  sb_sweep_run_path(sw, i, path, sizeof path);
  char *ov = sb_sweep_overrides_text(sw, i);
  if (!ov) { st = SB_ENOMEM; goto done; }
  if (o && o->model) {   /* built by the caller with sb_sweep_load_run: ours now */
    m = *o->model;
    memset(o->model, 0, sizeof *o->model);
  } else if ((st = sb_sweep_load_run(sw, i, o ? o->threads : 0, &m))) {
    goto done;
  }
  loaded = 1;
  /* the directory only once the model is known to be valid: a bad run writes nothing */
  if ((st = make_dirs(sw->output_dir))) goto done;
  if ((st = sb_h5_create(&out, path))) goto done;
  created = 1;
  sb_h5_attr_write_string(out.file, "spikebridge_version", SB_VERSION);
  sb_h5_attr_write_string(out.file, "model_file", sw->base);
  int64_t seed = (int64_t)m.seed, thr = m.threads;
  sb_h5_attr_write_int64s(out.file, "seed", &seed, 1);
  sb_h5_attr_write_int64s(out.file, "threads", &thr, 1);
  sb_h5_attr_write_doubles(out.file, "t_stop", &m.t_stop, 1);
  if ((st = sb_net_attach_output(m.net, out.file, m.flush_interval))) goto done;
  if (o && o->progress) sb_net_set_progress(m.net, o->progress, o->progress_ctx);
  if ((st = sb_net_run(m.net, m.t_stop))) goto done;
  if ((st = sb_net_finish_output(m.net))) goto done;
  {
    hid_t g = sb_h5_group(out.file, "sweep");
    if (g < 0) { st = SB_SET_ERROR(SB_EIO, "%s: cannot create group /sweep", path); goto done; }
    int np = sb_net_n_populations(m.net);
    size_t nl = 1;
    for (int p = 0; p < np; p++) nl += strlen(sb_net_pop_name(m.net, p)) + 1;
    char *names = sb_malloc(nl);
    int64_t *sizes = sb_malloc((size_t)np * sizeof *sizes + 1);
    if (!names || !sizes) { sb_free(names); sb_free(sizes); H5Gclose(g); st = SB_ENOMEM; goto done; }
    size_t at = 0;
    names[0] = 0;
    for (int p = 0; p < np; p++) {
      at += (size_t)snprintf(names + at, nl - at, "%s%s", p ? "\n" : "", sb_net_pop_name(m.net, p));
      sizes[p] = (int64_t)sb_net_pop_size(m.net, p);
    }
    int64_t idx = (int64_t)i, one = 1;
    if (sb_h5_attr_write_string(g, "sweep_file", sw->file) || sb_h5_attr_write_int64s(g, "index", &idx, 1) ||
        sb_h5_attr_write_string(g, "overrides", ov) || sb_h5_attr_write_string(g, "model_fingerprint", sw->base_fp) ||
        sb_h5_attr_write_string(g, "population_names", names) ||
        sb_h5_attr_write_int64s(g, "population_sizes", sizes, (size_t)np) ||
        sb_h5_attr_write_int64s(g, "complete", &one, 1))
      st = SB_SET_ERROR(SB_EIO, "%s: cannot write /sweep attributes", path);
    sb_free(names);
    sb_free(sizes);
    H5Gclose(g);
    if (st) goto done;
  }
  st = sb_h5_commit(&out);
  created = 0;
  if (!st) {   /* complete now: an older failure marker no longer applies */
    char fp[4096];
    failed_path(sw, i, fp, sizeof fp);
    unlink(fp);
  }
done:
  if (created) {
    if (m.net) sb_net_attach_output(m.net, -1, 0);
    sb_h5_abort(&out);
  }
  if (st && loaded && st != SB_ENOMEM) st = sb_error_prefix_(st, "%s: run %zu", sw->file, i);
  if (o && o->model) sb_snn_model_free(o->model);   /* not taken over (an early error) */
  sb_snn_model_free(&m);
  sb_free(ov);
  return st;
}

/* ---- statistics of a run file ---- */

void sb_sweep_stats_free(sb_sweep_pop_stats *st, size_t n_pops) {
  for (size_t i = 0; st && i < n_pops; i++) sb_free(st[i].name);
  sb_free(st);
}

int sb_sweep_run_stats(const char *run_file, sb_sweep_pop_stats **out, size_t *n_out) {
  *out = NULL;
  *n_out = 0;
  hid_t f;
  int st = sb_h5_open_read(run_file, &f);
  if (st) return st;
  char *names = NULL;
  int64_t sizes[4096];
  size_t n_sizes = 0, nt = 0;
  double t_stop = NAN;
  hid_t g = H5Lexists(f, "sweep", H5P_DEFAULT) > 0 ? H5Gopen2(f, "sweep", H5P_DEFAULT) : H5I_INVALID_HID;
  if (g < 0 || sb_h5_attr_read_string(g, "population_names", &names) ||
      sb_h5_attr_read_int64s(g, "population_sizes", sizes, 4096, &n_sizes) ||
      sb_h5_attr_read_doubles(f, "t_stop", &t_stop, 1, &nt)) {
    if (g >= 0) H5Gclose(g);
    H5Fclose(f);
    sb_free(names);
    SB_ERROR(SB_EFORMAT, "%s: /sweep: missing population_names/population_sizes or root t_stop (not a sweep run file)",
             run_file);
  }
  H5Gclose(g);
  H5Fclose(f);
  if (n_sizes > 4096) n_sizes = 4096;
  sb_sweep_pop_stats *ps = sb_calloc(n_sizes + 1, sizeof *ps);
  if (!ps) { sb_free(names); return SB_ENOMEM; }
  char *save = NULL;
  size_t np = 0;
  for (char *tok = strtok_r(names, "\n", &save); tok && np < n_sizes; tok = strtok_r(NULL, "\n", &save)) {
    ps[np].name = dup_(tok);
    ps[np].n = (uint64_t)sizes[np];
    ps[np].cv = NAN;
    if (!ps[np].name) { st = SB_ENOMEM; break; }
    np++;
  }
  sb_free(names);
  if (st) { sb_sweep_stats_free(ps, np); return st; }
  sb_spk_file *sf = NULL;
  if ((st = sb_spk_open(run_file, &sf))) { sb_sweep_stats_free(ps, np); return st; }
  sb_stats_opts so;
  sb_stats_opts_default(&so);
  so.t_start = 0;
  so.t_stop = t_stop;
  so.n_pairs_neurons = 0;   /* pairwise measures are not part of the summary */
  so.progress = 0;
  for (size_t p = 0; p < np && !st; p++) {
    long k = sb_spk_find_pop(sf, ps[p].name);
    if (k >= 0) {
      sb_stats_summary *s = NULL;
      if ((st = sb_stats_summarize(sf, (size_t)k, &so, &s))) break;
      ps[p].spikes = s->n_spikes_file;
      ps[p].cv = s->mean_cv;
      sb_stats_summary_free(s);
    }
    ps[p].rate = ps[p].n && t_stop > 0 ? (double)ps[p].spikes / ((double)ps[p].n * t_stop / 1000.0) : NAN;
  }
  sb_spk_close(sf);
  if (st) { sb_sweep_stats_free(ps, np); return st; }
  *out = ps;
  *n_out = np;
  return SB_OK;
}

/* ---- summary ---- */

static void csv_field(FILE *f, const char *s) {
  if (!strpbrk(s, ",\"\n")) { fputs(s, f); return; }
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"') fputc('"', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

static void csv_double(FILE *f, double x) {
  char buf[64];
  if (isnan(x)) return;   /* empty cell */
  fmt_double(buf, sizeof buf, x);
  fputs(buf, f);
}

/* A fixed-length string dataset `name` of n strings (NULL: empty) in g. */
static int write_strings(hid_t g, const char *name, char *const *v, size_t n) {
  size_t maxlen = 1;
  for (size_t i = 0; i < n; i++)
    if (v[i] && strlen(v[i]) > maxlen) maxlen = strlen(v[i]);
  char *buf = sb_calloc(n * maxlen + 1, 1);
  if (!buf) return SB_ENOMEM;
  for (size_t i = 0; i < n; i++)
    if (v[i]) memcpy(buf + i * maxlen, v[i], strlen(v[i]));
  int st = SB_OK;
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, maxlen);
  H5Tset_strpad(t, H5T_STR_NULLPAD);
  hsize_t dim = n;
  hid_t sp = H5Screate_simple(1, &dim, NULL);
  hid_t d = H5Dcreate2(g, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (d < 0 || H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) st = SB_SET_ERROR(SB_EIO, "summary: cannot write %s", name);
  if (d >= 0) H5Dclose(d);
  H5Sclose(sp);
  H5Tclose(t);
  sb_free(buf);
  return st;
}

/* Write the per-parameter column: float64 when every value is a number (or boolean), else
 * fixed-length strings (a JSON string's plain text, other values as JSON text). */
static int write_param_column(hid_t g, const sb_sweep *sw, size_t p) {
  size_t n = sw->n_runs;
  int numeric = 1;
  double *x = sb_malloc(n * sizeof *x + 1);
  if (!x) return SB_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    const char *t = sw->values[i * sw->n_params + p];
    char *end;
    x[i] = strtod(t, &end);
    if (!strcmp(t, "true")) x[i] = 1;
    else if (!strcmp(t, "false")) x[i] = 0;
    else if (*end || end == t) numeric = 0;
  }
  int st = SB_OK;
  if (numeric) {
    st = sb_h5_write_1d(g, sw->paths[p], H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, x, n);
  } else {
    char **txt = sb_calloc(n + 1, sizeof *txt);
    if (!txt) st = SB_ENOMEM;
    for (size_t i = 0; i < n && !st; i++)
      if (!(txt[i] = plain_text(sw->values[i * sw->n_params + p]))) st = SB_ENOMEM;
    if (!st) st = write_strings(g, sw->paths[p], txt, n);
    for (size_t i = 0; txt && i < n; i++) sb_free(txt[i]);
    sb_free(txt);
  }
  sb_free(x);
  return st;
}

int sb_sweep_write_summary(const sb_sweep *sw, size_t *n_complete) {
  size_t n = sw->n_runs, np = 0, done = 0;
  int st;
  if ((st = make_dirs(sw->output_dir))) return st;
  sb_sweep_pop_stats **all = sb_calloc(n, sizeof *all);
  size_t *nps = sb_calloc(n, sizeof *nps);
  unsigned char *complete = sb_calloc(n + 1, 1);
  char **errs = sb_calloc(n + 1, sizeof *errs), **status = sb_calloc(n + 1, sizeof *status);
  if (!all || !nps || !complete || !errs || !status) { st = SB_ENOMEM; goto done; }
  char path[4096];
  for (size_t i = 0; i < n; i++) {
    status[i] = (char *)"todo";
    if (!sb_sweep_run_complete(sw, i)) {
      if (sb_sweep_run_failed(sw, i, &errs[i])) status[i] = (char *)"failed";
      continue;
    }
    status[i] = (char *)"complete";
    sb_sweep_run_path(sw, i, path, sizeof path);
    if ((st = sb_sweep_run_stats(path, &all[i], &nps[i]))) goto done;
    complete[i] = 1;
    if (!done) np = nps[i];
    done++;
  }
  /* the population columns are those of the first complete run */
  const sb_sweep_pop_stats *cols = NULL;
  for (size_t i = 0; i < n && !cols; i++)
    if (complete[i]) cols = all[i];
  /* CSV */
  char csv[4096], tmp[4200];
  snprintf(csv, sizeof csv, "%s/summary.csv", sw->output_dir);
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", csv, (long)getpid());
  FILE *f = fopen(tmp, "w");
  if (!f) { st = SB_SET_ERROR(SB_EIO, "%s: cannot create: %s", tmp, strerror(errno)); goto done; }
  fputs("index,complete,status", f);
  for (size_t p = 0; p < sw->n_params; p++) { fputc(',', f); csv_field(f, sw->paths[p]); }
  for (size_t q = 0; q < np; q++) fprintf(f, ",%s_spikes,%s_rate_Hz,%s_cv", cols[q].name, cols[q].name, cols[q].name);
  fputs(",file,error\n", f);
  for (size_t i = 0; i < n; i++) {
    fprintf(f, "%zu,%d,%s", i, complete[i], status[i]);
    for (size_t p = 0; p < sw->n_params; p++) {
      char *t = plain_text(sw->values[i * sw->n_params + p]);
      if (!t) { fclose(f); unlink(tmp); st = SB_ENOMEM; goto done; }
      fputc(',', f);
      csv_field(f, t);
      sb_free(t);
    }
    for (size_t q = 0; q < np; q++) {
      const sb_sweep_pop_stats *s = NULL;
      for (size_t r = 0; complete[i] && r < nps[i]; r++)
        if (!strcmp(all[i][r].name, cols[q].name)) s = &all[i][r];
      if (s) fprintf(f, ",%llu,", (unsigned long long)s->spikes); else fputs(",,", f);
      csv_double(f, s ? s->rate : NAN);
      fputc(',', f);
      csv_double(f, s ? s->cv : NAN);
    }
    sb_sweep_run_path(sw, i, path, sizeof path);
    fputc(',', f);
    csv_field(f, path);
    fputc(',', f);
    if (errs[i]) csv_field(f, errs[i]);
    fputc('\n', f);
  }
  if (fclose(f) != 0 || rename(tmp, csv) != 0) {
    unlink(tmp);
    st = SB_SET_ERROR(SB_EIO, "%s: cannot write: %s", csv, strerror(errno));
    goto done;
  }
  /* HDF5 */
  snprintf(path, sizeof path, "%s/summary.h5", sw->output_dir);
  sb_h5_out o;
  if ((st = sb_h5_create(&o, path))) goto done;
  sb_h5_attr_write_string(o.file, "sweep_file", sw->file);
  sb_h5_attr_write_string(o.file, "base", sw->base);
  sb_h5_attr_write_string(o.file, "mode", sw->mode == SB_SWEEP_GRID ? "grid" : sw->mode == SB_SWEEP_ZIP ? "zip" : "random");
  int64_t *idx = sb_malloc(n * sizeof *idx);
  uint64_t *spk = sb_malloc(n * sizeof *spk);
  double *rate = sb_malloc(n * sizeof *rate), *cv = sb_malloc(n * sizeof *cv);
  if (!idx || !spk || !rate || !cv) st = SB_ENOMEM;
  for (size_t i = 0; i < n && !st; i++) idx[i] = (int64_t)i;
  if (!st) st = sb_h5_write_1d(o.file, "index", H5T_STD_I64LE, H5T_NATIVE_INT64, idx, n);
  if (!st) st = sb_h5_write_1d(o.file, "complete", H5T_STD_U8LE, H5T_NATIVE_UCHAR, complete, n);
  if (!st) st = write_strings(o.file, "status", status, n);
  if (!st) st = write_strings(o.file, "error", errs, n);
  hid_t g = st ? H5I_INVALID_HID : sb_h5_group(o.file, "params");
  for (size_t p = 0; p < sw->n_params && !st && g >= 0; p++) st = write_param_column(g, sw, p);
  if (g >= 0) H5Gclose(g);
  for (size_t q = 0; q < np && !st; q++) {
    for (size_t i = 0; i < n; i++) {
      spk[i] = 0;
      rate[i] = cv[i] = NAN;
      for (size_t r = 0; complete[i] && r < nps[i]; r++)
        if (!strcmp(all[i][r].name, cols[q].name)) { spk[i] = all[i][r].spikes; rate[i] = all[i][r].rate; cv[i] = all[i][r].cv; }
    }
    char gp[1024];
    snprintf(gp, sizeof gp, "stats/%s", cols[q].name);
    hid_t sg = sb_h5_group(o.file, gp);
    if (sg < 0) { st = SB_SET_ERROR(SB_EIO, "%s: cannot create /%s", path, gp); break; }
    int64_t pn = (int64_t)cols[q].n;
    sb_h5_attr_write_int64s(sg, "n_nodes", &pn, 1);
    st = sb_h5_write_1d(sg, "spikes", H5T_STD_U64LE, H5T_NATIVE_UINT64, spk, n);
    if (!st) st = sb_h5_write_1d(sg, "rate", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, rate, n);
    if (!st) st = sb_h5_write_1d(sg, "cv", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, cv, n);
    if (!st) sb_h5_attr_write_string(sg, "rate_units", "Hz");
    H5Gclose(sg);
  }
  sb_free(idx);
  sb_free(spk);
  sb_free(rate);
  sb_free(cv);
  if (st) sb_h5_abort(&o);
  else st = sb_h5_commit(&o);
done:
  for (size_t i = 0; all && i < n; i++) sb_sweep_stats_free(all[i], nps[i]);
  sb_free(all);
  sb_free(nps);
  sb_free(complete);
  for (size_t i = 0; errs && i < n; i++) sb_free(errs[i]);
  sb_free(errs);
  sb_free(status);
  if (n_complete) *n_complete = done;
  return st;
}
