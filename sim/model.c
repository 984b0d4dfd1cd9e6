/* JSON model files (DESIGN.md "Model descriptions"; schema in docs/engine.md): parse with
 * jansson, apply --set overrides, validate every field with a message naming the file, the
 * JSON path and what was expected versus found, and build the network through the public API.
 * Library messages that start with a field name ("tau_m: must be > 0") are joined to the JSON
 * path of their object ("populations.exc.params.tau_m: must be > 0"). */
#include "sim/internal.h"
#include "learning/learning.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *file;
  sb_net *net;
} ctx;

#define FAIL(c, path, ...) return fail_((c), (path), __VA_ARGS__)

static int fail_(const ctx *c, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail_(const ctx *c, const char *path, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  SB_ERROR(SB_EINVAL, "%s: %s: %s", c->file, path, msg);
}

/* Re-raise the library's last error ("field: text") under `path` ("path.field: text"). */
static int relay(const ctx *c, int rc, const char *path) {
  char msg[768];
  snprintf(msg, sizeof msg, "%s", sb_last_error());
  if (rc == SB_ENOMEM) SB_ERROR(rc, "%s: %s: %s", c->file, path, msg);   /* which part of the model ran out */
  SB_ERROR(rc, "%s: %s.%s", c->file, path, msg);
}

static const char *type_name(const json_t *j) {
  if (!j) return "nothing: the key is missing";   /* json_typeof(NULL) crashed (explicit without targets) */
  switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
  }
}

/* Keys every object may carry for its reader: "_..." , "comment", "description". */
static int note_key(const char *k) { return k[0] == '_' || strcmp(k, "comment") == 0 || strcmp(k, "description") == 0; }

static int check_keys(const ctx *c, const char *path, const json_t *obj, const char *const *allowed) {
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)obj, k, v) {
    if (note_key(k)) continue;
    int ok = 0;
    for (int i = 0; allowed[i]; i++) ok |= strcmp(allowed[i], k) == 0;
    if (!ok) {
      char list[512] = "";
      for (int i = 0; allowed[i]; i++) {
        if (i) strncat(list, ", ", sizeof list - strlen(list) - 1);
        strncat(list, allowed[i], sizeof list - strlen(list) - 1);
      }
      FAIL(c, path, "unknown key '%s' (expected one of %s)", k, list);
    }
  }
  return SB_OK;
}

static int get_number(const ctx *c, const char *path, const json_t *j, double *v) {
  if (!json_is_number(j)) FAIL(c, path, "expected a number (got %s)", type_name(j));
  *v = json_number_value(j);
  return SB_OK;
}

static int get_int(const ctx *c, const char *path, const json_t *j, long lo, long hi, long *v) {
  if (!json_is_number(j)) FAIL(c, path, "expected an integer (got %s)", j ? type_name(j) : "nothing");
  double x = json_number_value(j);
  if (x != floor(x)) FAIL(c, path, "expected an integer (got %.17g)", x);
  if (x < (double)lo || x > (double)hi) FAIL(c, path, "must be in [%ld, %ld] (got %.17g)", lo, hi, x);
  *v = (long)x;
  return SB_OK;
}

static int get_object(const ctx *c, const char *path, const json_t *j) {
  if (!json_is_object(j)) FAIL(c, path, "expected an object (got %s)", type_name(j));
  return SB_OK;
}

/* A constant or a distribution object. */
static int get_dist(const ctx *c, const char *path, const json_t *j, sb_dist *d) {
  memset(d, 0, sizeof *d);
  if (json_is_number(j)) {
    d->kind = SB_DIST_CONST;
    d->a = json_number_value(j);
    return SB_OK;
  }
  if (!json_is_object(j)) FAIL(c, path, "expected a number or a distribution object (got %s)", type_name(j));
  const json_t *dn = json_object_get(j, "distribution");
  char p2[512];
  snprintf(p2, sizeof p2, "%s.distribution", path);
  if (!json_is_string(dn)) FAIL(c, p2, "expected a string naming a distribution (uniform, normal, normal_clipped, lognormal)");
  const char *name = json_string_value(dn);
  /* each parameter also under its other NEST version's name (alias): NEST 2's low/high and mu/sigma
   * for uniform and normal; NEST 3's mean/std (of the underlying normal) for lognormal */
  static const char *const ku[] = {"distribution", "min", "max", NULL}, *const au[] = {NULL, "low", "high"};
  static const char *const kn[] = {"distribution", "mean", "std", NULL}, *const an[] = {NULL, "mu", "sigma"};
  static const char *const kc[] = {"distribution", "mean", "std", "min", "max", NULL},
                           *const ac[] = {NULL, "mu", "sigma", "low", "high"};
  static const char *const kl[] = {"distribution", "mu", "sigma", NULL}, *const al[] = {NULL, "mean", "std"};
  const char *const *keys, *const *alias;
  if (strcmp(name, "uniform") == 0) { d->kind = SB_DIST_UNIFORM; keys = ku; alias = au; }
  else if (strcmp(name, "normal") == 0) { d->kind = SB_DIST_NORMAL; keys = kn; alias = an; }
  else if (strcmp(name, "normal_clipped") == 0) { d->kind = SB_DIST_NORMAL_CLIPPED; keys = kc; alias = ac; }
  else if (strcmp(name, "lognormal") == 0) { d->kind = SB_DIST_LOGNORMAL; keys = kl; alias = al; }
  else FAIL(c, p2, "unknown distribution '%s' (expected uniform, normal, normal_clipped or lognormal)", name);
  int rc, n = 0;
  const char *all[12];
  for (int i = 0; keys[i]; i++) all[n++] = keys[i];
  for (int i = 1; keys[i]; i++) all[n++] = alias[i];
  all[n] = NULL;
  if ((rc = check_keys(c, path, j, all))) return rc;
  double *slot[4] = {&d->a, &d->b, &d->c, &d->d};
  int as_alias[6] = {0};
  for (int i = 1; keys[i]; i++) {
    const json_t *x = json_object_get(j, keys[i]), *y = json_object_get(j, alias[i]);
    snprintf(p2, sizeof p2, "%s.%s", path, keys[i]);
    if (x && y) FAIL(c, p2, "given twice, also as '%s' (its other NEST name): give one", alias[i]);
    if (y) snprintf(p2, sizeof p2, "%s.%s", path, alias[i]), x = y, as_alias[i] = 1;
    if (!x) FAIL(c, p2, "missing (a %s distribution needs it, or '%s')", name, alias[i]);
    if ((rc = get_number(c, p2, x, slot[i - 1]))) return rc;
  }
  if ((rc = sb_dist_check(d))) {   /* its message uses the first names: the file's own instead */
    char msg[SB_ERRMSG_MAX];
    size_t o = 0;
    for (const char *e = sb_last_error(); *e && o + 1 < sizeof msg;) {
      int hit = 0;
      for (int i = 1; keys[i] && !hit; i++) {
        size_t L = strlen(keys[i]);
        if (as_alias[i] && !strncmp(e, keys[i], L) && !isalnum((unsigned char)e[L]) && e[L] != '_' &&
            (e == sb_last_error() || (!isalnum((unsigned char)e[-1]) && e[-1] != '_'))) {
          o += (size_t)snprintf(msg + o, sizeof msg - o, "%s", alias[i]);
          e += L;
          hit = 1;
        }
      }
      if (!hit) msg[o++] = *e++;
    }
    msg[o < sizeof msg ? o : sizeof msg - 1] = '\0';
    sb_error_restore_(msg, sb_last_error_where());
    return relay(c, rc, path);
  }
  return SB_OK;
}

static int get_bool(const ctx *c, const char *path, const json_t *j, int *v) {
  if (!json_is_boolean(j)) FAIL(c, path, "expected true or false (got %s)", type_name(j));
  *v = json_is_true(j);
  return SB_OK;
}

/* node_ids of a stimulus or a recording: [] is a mistake, not "none" (explicit connection lists
 * may be empty). */
static const char no_ids_msg[] = "expected at least one node id (got []; leave node_ids out for the whole population)";

/* Array of non-negative integers < bound into a new uint32 array. */
static int get_ids(const ctx *c, const char *path, const json_t *j, size_t bound, uint32_t **out, size_t *n) {
  if (!json_is_array(j)) FAIL(c, path, "expected an array of integers (got %s)", type_name(j));
  size_t m = json_array_size(j);
  uint32_t *v = sb_malloc((m ? m : 1) * sizeof *v);
  if (!v) return SB_ENOMEM;
  for (size_t i = 0; i < m; i++) {
    char p2[512];
    long x;
    snprintf(p2, sizeof p2, "%s[%zu]", path, i);
    int rc = get_int(c, p2, json_array_get(j, i), 0, (long)bound - 1, &x);
    if (rc) {
      sb_free(v);
      return rc;
    }
    v[i] = (uint32_t)x;
  }
  *out = v;
  *n = m;
  return SB_OK;
}

static int get_doubles(const ctx *c, const char *path, const json_t *j, double **out, size_t *n) {
  if (!json_is_array(j)) FAIL(c, path, "expected an array of numbers (got %s)", type_name(j));
  size_t m = json_array_size(j);
  double *v = sb_malloc((m ? m : 1) * sizeof *v);
  if (!v) return SB_ENOMEM;
  for (size_t i = 0; i < m; i++) {
    char p2[512];
    snprintf(p2, sizeof p2, "%s[%zu]", path, i);
    int rc = get_number(c, p2, json_array_get(j, i), &v[i]);
    if (rc) {
      sb_free(v);
      return rc;
    }
  }
  *out = v;
  *n = m;
  return SB_OK;
}

static int pop_by_name(const ctx *c, const char *path, const json_t *j, int *pop) {
  if (!json_is_string(j)) FAIL(c, path, "expected a population name (got %s)", j ? type_name(j) : "nothing");
  *pop = sb_net_find_population(c->net, json_string_value(j));
  if (*pop < 0) {
    char list[512] = "";
    for (int i = 0; i < c->net->n_pops; i++) {
      if (i) strncat(list, ", ", sizeof list - strlen(list) - 1);
      strncat(list, c->net->pops[i].name, sizeof list - strlen(list) - 1);
    }
    FAIL(c, path, "unknown population '%s' (expected one of %s)", json_string_value(j), list);
  }
  return SB_OK;
}

/* ---- --set overrides ---- */

/* Split a --set path into names at '.' and '[i]' ("projections[1].weight" -> projections, 1,
 * weight). Refuses empty names ("a..b", ".a", "a.", "a[]", "[0]" at the start). */
static int split_set_path(const char *assign, char *path, size_t pl, char **tok, int cap, int *n) {
  *n = 0;
  char *s = path;
  if (*s == '[') SB_ERROR(SB_EINVAL, "--set %.*s: expected a key name before '[' (an index needs an array to index)", (int)pl, assign);
  while (*s) {
    if (*n == cap) SB_ERROR(SB_EINVAL, "--set %.*s: path too deep (more than %d names)", (int)pl, assign, cap);
    char *e = s + strcspn(s, ".[]");
    if (e == s) SB_ERROR(SB_EINVAL, "--set %.*s: empty name at character %d (expected NAME.NAME or NAME[INDEX])", (int)pl,
                         assign, (int)(s - path) + 1);
    char sep = *e;
    tok[(*n)++] = s;
    if (!sep) break;
    *e = 0;
    s = e + 1;
    if (sep == '[' ) {   /* an index: digits then ']' */
      char *close = strchr(s, ']');
      if (!close || close == s)
        SB_ERROR(SB_EINVAL, "--set %.*s: expected an index and ']' after '[' (as in projections[0].weight)", (int)pl, assign);
      *close = 0;
      if (*n == cap) SB_ERROR(SB_EINVAL, "--set %.*s: path too deep (more than %d names)", (int)pl, assign, cap);
      tok[(*n)++] = s;
      s = close + 1;
      if (*s == '.') {
        s++;
        if (!*s) SB_ERROR(SB_EINVAL, "--set %.*s: the path ends with '.' (expected a key name after it)", (int)pl, assign);
      } else if (*s && *s != '[') {
        SB_ERROR(SB_EINVAL, "--set %.*s: expected '.' or '[' after ']'", (int)pl, assign);
      } else if (*s == '[') {
        s++;
        char *c2 = strchr(s, ']');
        if (!c2 || c2 == s) SB_ERROR(SB_EINVAL, "--set %.*s: expected an index and ']' after '['", (int)pl, assign);
        *c2 = 0;
        if (*n == cap) SB_ERROR(SB_EINVAL, "--set %.*s: path too deep (more than %d names)", (int)pl, assign, cap);
        tok[(*n)++] = s;
        s = c2 + 1;
        if (*s == '.') s++;
        else if (*s) SB_ERROR(SB_EINVAL, "--set %.*s: expected '.' after ']'", (int)pl, assign);
      }
    } else if (sep == ']') {
      SB_ERROR(SB_EINVAL, "--set %.*s: ']' without '['", (int)pl, assign);
    } else if (!*s) {
      SB_ERROR(SB_EINVAL, "--set %.*s: the path ends with '.' (expected a key name after it)", (int)pl, assign);
    }
  }
  if (!*n) SB_ERROR(SB_EINVAL, "--set %.*s: empty path", (int)pl, assign);
  return SB_OK;
}

/* Objects that a --set may create when the model file leaves them out (their keys are then
 * checked like any other): a population's params/init, a projection's synapse_params, and the
 * simulation and record sections. Any other missing object (a population or a section that does
 * not exist) is a mistyped path. */
static int may_create(const char *key) {
  static const char *const ok[] = {"params", "init", "synapse_params", "simulation", "record", NULL};
  for (int i = 0; ok[i]; i++)
    if (!strcmp(ok[i], key)) return 1;
  return 0;
}

static int apply_set(const char *file, json_t *root, const char *assign) {
  const char *eq = strchr(assign, '=');
  if (!eq || eq == assign) SB_ERROR(SB_EINVAL, "--set %s: expected PATH=VALUE with a non-empty PATH", assign);
  char path[512];
  size_t pl = (size_t)(eq - assign);
  if (pl >= sizeof path) SB_ERROR(SB_EINVAL, "--set %.60s...: path too long (at most %zu characters)", assign, sizeof path - 1);
  memcpy(path, assign, pl);
  path[pl] = 0;
  char *toks[64];
  int nt, rc;
  if ((rc = split_set_path(assign, path, pl, toks, 64, &nt))) return rc;
  json_error_t jerr;
  json_t *val = json_loads(eq + 1, JSON_DECODE_ANY, &jerr);
  if (!val) {   /* not JSON: a string, unless it is a number beyond double's range (1e999) */
    char *end;
    errno = 0;
    double x = strtod(eq + 1, &end);
    if (end != eq + 1 && !*end && errno == ERANGE && fabs(x) > 1.0)
      SB_ERROR(SB_EINVAL, "%s: --set %s: %s is beyond the range of a double (about 1.8e308)", file, assign, eq + 1);
    val = json_string(eq + 1);
  }
  if (!val) return SB_ENOMEM;
  json_t *cur = root;
  for (int k = 0; k < nt; k++) {
    char *tok = toks[k], *next = k + 1 < nt ? toks[k + 1] : NULL;
    if (json_is_array(cur)) {
      char *end;
      long i = strtol(tok, &end, 10);
      if (*end || !*tok || i < 0 || (size_t)i >= json_array_size(cur)) {
        json_decref(val);
        SB_ERROR(SB_EINVAL, "%s: --set %.*s: '%s' is not an index of an array of %zu", file, (int)pl, assign, tok,
                 json_array_size(cur));
      }
      if (!next) {
        json_array_set_new(cur, (size_t)i, val);
        return SB_OK;
      }
      cur = json_array_get(cur, (size_t)i);
    } else if (json_is_object(cur)) {
      if (!next) {
        json_object_set_new(cur, tok, val);
        return SB_OK;
      }
      json_t *nx = json_object_get(cur, tok);
      if (!nx && strspn(next, "0123456789") == strlen(next)) {   /* an index into nothing */
        json_decref(val);
        SB_ERROR(SB_EINVAL, "%s: --set %.*s: '%s' does not exist, so it has no element [%s]", file, (int)pl, assign, tok,
                 next);
      }
      if (!nx && !may_create(tok)) {   /* a mistyped population or section name */
        char have[256] = "";
        const char *kk;
        json_t *vv;
        json_object_foreach(cur, kk, vv) {
          if (strlen(have) + strlen(kk) + 3 >= sizeof have) { strcat(have, ", ..."); break; }
          if (*have) strcat(have, ", ");
          strcat(have, kk);
        }
        json_decref(val);
        SB_ERROR(SB_EINVAL, "%s: --set %.*s: '%s' does not exist in the model (%s%s)", file, (int)pl, assign, tok,
                 *have ? "existing keys there: " : "no keys there", have);
      }
      if (!nx) {   /* create intermediate objects (e.g. params of a population without one) */
        nx = json_object();
        json_object_set_new(cur, tok, nx);
      }
      cur = nx;
    } else {
      json_decref(val);
      SB_ERROR(SB_EINVAL, "%s: --set %.*s: '%s' is below a value that is neither object nor array", file, (int)pl,
               assign, tok);
    }
  }
  json_decref(val);
  SB_ERROR(SB_EINVAL, "--set %s: empty path", assign);
}

/* ---- sections ---- */

static int load_simulation(const ctx *c, const json_t *s, const sb_snn_model_opts *o, sb_snn_model *m, double *min_delay) {
  static const char *const keys[] = {"t_stop", "seed", "threads", "output", "min_delay", "flush_interval", NULL};
  int rc;
  m->t_stop = 1000.0;
  m->seed = 1;
  m->threads = 0;
  m->flush_interval = 1000.0;
  *min_delay = 0.1;
  if (s) {
    if ((rc = get_object(c, "simulation", s)) || (rc = check_keys(c, "simulation", s, keys))) return rc;
    const json_t *j;
    long l;
    if ((j = json_object_get(s, "t_stop"))) {
      if ((rc = get_number(c, "simulation.t_stop", j, &m->t_stop))) return rc;
    }
    if ((j = json_object_get(s, "seed"))) {
      if ((rc = get_int(c, "simulation.seed", j, 0, 0x7fffffffffffffffL, &l))) return rc;
      m->seed = (uint64_t)l;
    }
    if ((j = json_object_get(s, "threads"))) {
      if ((rc = get_int(c, "simulation.threads", j, 1, 4096, &l))) return rc;
      m->threads = (int)l;
    }
    if ((j = json_object_get(s, "output"))) {
      if (!json_is_string(j)) FAIL(c, "simulation.output", "expected a file name (got %s)", type_name(j));
      m->output = sb_strdup(json_string_value(j));
      if (!m->output) return SB_ENOMEM;
    }
    if ((j = json_object_get(s, "min_delay")) && (rc = get_number(c, "simulation.min_delay", j, min_delay))) return rc;
    if (!(*min_delay > 0)) FAIL(c, "simulation.min_delay", "must be > 0 ms (got %g)", *min_delay);
    if ((j = json_object_get(s, "flush_interval")) && (rc = get_number(c, "simulation.flush_interval", j, &m->flush_interval)))
      return rc;
    if (!(m->flush_interval > 0)) FAIL(c, "simulation.flush_interval", "must be > 0 ms (got %g)", m->flush_interval);
  }
  if (!isnan(o->t_stop)) m->t_stop = o->t_stop;
  if (o->seed >= 0) m->seed = (uint64_t)o->seed;
  if (o->threads > 0) m->threads = o->threads;
  if (!(m->t_stop > 0) || !isfinite(m->t_stop)) FAIL(c, "simulation.t_stop", "must be > 0 ms (got %g)", m->t_stop);
  return SB_OK;
}

static int load_population(const ctx *c, const char *name, const json_t *j) {
  static const char *const keys[] = {"model", "n", "params", "init", NULL};
  char path[512], p2[600];
  snprintf(path, sizeof path, "populations.%s", name);
  int rc;
  if (!*name || strpbrk(name, ".[]="))   /* --set paths and analysis selections split at these */
    FAIL(c, "populations", "population name '%s': must be non-empty without '.', '[', ']' or '=' (--set paths split at them)", name);
  if ((rc = get_object(c, path, j)) || (rc = check_keys(c, path, j, keys))) return rc;
  const json_t *jm = json_object_get(j, "model");
  snprintf(p2, sizeof p2, "%s.model", path);
  if (!jm) FAIL(c, p2, "missing (a neuron model name such as iaf_psc_exp)");
  if (!json_is_string(jm)) FAIL(c, p2, "expected a model name (got %s)", type_name(jm));
  const sb_neuron_type *T = sb_neuron_find(json_string_value(jm));
  if (!T) {
    char list[256] = "";
    for (int i = 0; sb_neuron_types[i]; i++) {
      if (i) strncat(list, ", ", sizeof list - strlen(list) - 1);
      strncat(list, sb_neuron_types[i]->name, sizeof list - strlen(list) - 1);
    }
    FAIL(c, p2, "unknown model '%s' (expected one of %s)", json_string_value(jm), list);
  }
  const json_t *jn = json_object_get(j, "n");
  snprintf(p2, sizeof p2, "%s.n", path);
  if (!jn) FAIL(c, p2, "missing (number of neurons)");
  long n;
  if ((rc = get_int(c, p2, jn, 1, 0xffffffffL, &n))) return rc;
  /* parameters: parse into a copy, validate all, then commit */
  char *tmp = sb_malloc(T->param_size);
  if (!tmp) return SB_ENOMEM;
  sb_neuron_defaults(T, tmp);
  const json_t *jp = json_object_get(j, "params");
  snprintf(p2, sizeof p2, "%s.params", path);
  if (jp) {
    if ((rc = get_object(c, p2, jp))) goto out;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)jp, k, v) {
      if (note_key(k)) continue;
      double x;
      char p3[700];
      snprintf(p3, sizeof p3, "%s.%s", p2, k);
      if (T == sb_neuron_if_subtract && strcmp(k, "reset_mode") == 0 && json_is_string(v)) {
        const char *s = json_string_value(v);
        if (strcmp(s, "subtract") == 0) x = 0;
        else if (strcmp(s, "zero") == 0) x = 1;
        else {
          rc = fail_(c, p3, "expected \"subtract\" or \"zero\" (got \"%s\")", s);
          goto out;
        }
      } else if ((rc = get_number(c, p3, v, &x))) {
        goto out;
      }
      if ((rc = sb_neuron_set_param(T, tmp, k, x))) {
        rc = relay(c, rc, p2);
        goto out;
      }
    }
  }
  if ((rc = T->validate(tmp))) {
    rc = relay(c, rc, p2);
    goto out;
  }
  int pop;
  if ((rc = sb_net_add_population(c->net, name, T, (size_t)n, &pop))) {
    rc = relay(c, rc, strncmp(sb_last_error(), "n: ", 3) ? "populations" : path);   /* "n:": the size check */
    goto out;
  }
  sb_pop *P = &c->net->pops[pop];
  memcpy(P->params, tmp, T->param_size);
  T->derive(P->params, P->derived);
  for (size_t i = 0; i < P->n; i++) T->init(P->params, P->derived, P->state + i * T->state_size);
  /* initial state */
  const json_t *ji = json_object_get(j, "init");
  snprintf(p2, sizeof p2, "%s.init", path);
  if (ji) {
    if ((rc = get_object(c, p2, ji))) goto out;
    const char *k;
    json_t *v;
    int vi = 0;
    json_object_foreach((json_t *)ji, k, v) {
      if (note_key(k)) continue;
      char p3[700];
      snprintf(p3, sizeof p3, "%s.%s", p2, k);
      if (sb_neuron_recordable(T, k) < 0) {
        rc = fail_(c, p3, "not a state variable of %s (try V_m)", T->name);
        goto out;
      }
      sb_dist d;
      if ((rc = get_dist(c, p3, v, &d))) goto out;
      double *vals = sb_malloc(P->n * sizeof *vals);
      gsl_rng *r = sb_rng_alloc(0, 0, 0);
      if (!vals || !r) {
        sb_free(vals);
        if (r) gsl_rng_free(r);
        rc = SB_ENOMEM;
        goto out;
      }
      for (size_t i = 0; i < P->n; i++) {
        sb_rng_reseed(r, c->net->seed, SB_RNG_INIT, ((uint64_t)vi << 40) | (P->first + i));
        vals[i] = sb_dist_draw(&d, r);
      }
      rc = sb_net_set_state(c->net, pop, k, vals);
      sb_free(vals);
      gsl_rng_free(r);
      if (rc) {
        rc = relay(c, rc, p2);
        goto out;
      }
      vi++;
    }
  }
  rc = SB_OK;
out:
  sb_free(tmp);
  return rc;
}

#define RULE_CONV 7   /* rule_of's index of "conv": built apart from the sb_conn_rule rules */

static int rule_of(const ctx *c, const char *path, const json_t *j, int *rule) {
  static const char *const names[] = {"all_to_all", "one_to_one", "pairwise_bernoulli", "fixed_indegree",
                                      "fixed_outdegree", "fixed_total_number", "explicit", "conv", NULL};
  if (!j) FAIL(c, path, "missing (one of all_to_all, one_to_one, pairwise_bernoulli, fixed_indegree, fixed_outdegree, fixed_total_number, explicit, conv)");
  if (!json_is_string(j)) FAIL(c, path, "expected a rule name (got %s)", type_name(j));
  for (int i = 0; names[i]; i++)
    if (strcmp(names[i], json_string_value(j)) == 0) {
      *rule = i;
      return SB_OK;
    }
  FAIL(c, path, "unknown rule '%s' (expected all_to_all, one_to_one, pairwise_bernoulli, fixed_indegree, "
       "fixed_outdegree, fixed_total_number, explicit or conv)", json_string_value(j));
}

/* A constant weight into a conductance-based population: one jump beyond the models' limit
 * (sb_neuron_cond_check, 1e7 nS) is refused here with its path, not at its first arrival. */
static int cond_weight_check(const ctx *c, const char *path, int pop, double w) {
  const char *model = c->net->pops[pop].type->name;
  if (fabs(w) <= sb_neuron_weight_max(c->net->pops[pop].type)) return SB_OK;
  FAIL(c, path, "a conductance jump of %g nS into %s is beyond the %g nS that conductance-based models integrate",
       fabs(w), model, SB_COND_G_MAX);
}

/* A JSON number >= 0, else -1 (the loader reports what is wrong with it). */
static double num_or_neg(const json_t *j) {
  return json_is_number(j) && json_number_value(j) >= 0 ? json_number_value(j) : -1.0;
}

/* HDF5's memory for one population's spike recording (group, two chunked datasets, attributes,
 * metadata cache): 48-67 kB measured with 2000-10000 one-neuron populations. */
#define SB_SPIKE_REC_BYTES 65536.0

/* The last precheck_size's estimate of the model's memory, bytes (0: none): blame_by_removal
 * loads a model again only when this is small. */
static _Thread_local double build_bytes;

/* Before anything is built: the whole model's smallest footprint (every population's neurons as
 * sb_net_add_population counts them, every sparse projection's synapses as its size check counts
 * them, 76 bytes for a plastic one, and the spike recordings' HDF5 structures) against the memory
 * the process may use. A network whose
 * populations fit but whose projections do not is refused here, naming the first projection
 * that does not fit, instead of after its populations were built (1e8 neurons took 20 s and
 * 3.1 GB before their projection was refused). Entries the loader would refuse are skipped. */
static int precheck_size(const ctx *c, const json_t *pops, size_t n_pops, const json_t *projs, const json_t *record) {
  const char *what;
  double have = (double)sb_mem_limit(&what), need = 0;
  const char *k;
  json_t *v;
  /* populations whose spikes are recorded (all by default): under a tight limit HDF5 ran out of
   * memory creating 10000 of them and crashed while closing the file */
  const json_t *rs = json_object_get(record, "spikes");
  double n_rec = json_is_false(rs) ? 0.0 : json_is_array(rs) ? (double)json_array_size(rs) : (double)n_pops;
  if (n_rec * SB_SPIKE_REC_BYTES > have)
    FAIL(c, "record.spikes", "recording the spikes of %.0f populations needs about %.3g GB for the HDF5 file's structures "
         "(%.0f kB each), more than the %.3g GB of %s; record fewer populations (record.spikes: a list) or merge them",
         n_rec, n_rec * SB_SPIKE_REC_BYTES / 1e9, SB_SPIKE_REC_BYTES / 1024, have / 1e9, what);
  need += n_rec * SB_SPIKE_REC_BYTES;
  json_object_foreach((json_t *)pops, k, v) {
    if (note_key(k)) continue;
    const json_t *jm = json_object_get(v, "model");
    const sb_neuron_type *T = json_is_string(jm) ? sb_neuron_find(json_string_value(jm)) : NULL;
    double n = num_or_neg(json_object_get(v, "n"));
    if (!T || !(n > 0) || n >= 4294967296.0) continue;   /* the loader says what is wrong */
    need += n * (double)(2 * T->state_size + SB_NEURON_RUNTIME_BYTES);
    if (need > have) {   /* as sb_net_add_population says it */
      char path[300];
      snprintf(path, sizeof path, "populations.%s.n", k);
      FAIL(c, path, "%.0f neurons (population '%s') need at least %.3g GB (%zu bytes each with the run-time arrays, all "
           "populations so far included), more than the %.3g GB of %s", n, k, need / 1e9,
           2 * T->state_size + SB_NEURON_RUNTIME_BYTES, have / 1e9, what);
    }
  }
  double neurons = need;
  for (size_t i = 0; json_is_array(projs) && i < json_array_size(projs); i++) {
    const json_t *j = json_array_get(projs, i), *jr = json_object_get(j, "rule");
    const json_t *js = json_object_get(j, "source"), *jt = json_object_get(j, "target");
    const json_t *ps = json_is_string(js) ? json_object_get(pops, json_string_value(js)) : NULL;
    const json_t *pt = json_is_string(jt) ? json_object_get(pops, json_string_value(jt)) : NULL;
    double ns = ps ? num_or_neg(json_object_get(ps, "n")) : -1, nt = pt ? num_or_neg(json_object_get(pt, "n")) : -1;
    const char *rule = json_is_string(jr) ? json_string_value(jr) : "", *field = "rule";
    const json_t *st = json_object_get(j, "storage");
    if (ns < 0 || nt < 0 || ns >= 4294967296.0 || nt >= 4294967296.0 || (json_is_string(st) && strcmp(json_string_value(st), "sparse")))
      continue;   /* a population out of range: the loader names it */
    double syn = -1, x;
    if (!strcmp(rule, "all_to_all")) syn = ns * nt;
    else if (!strcmp(rule, "one_to_one")) syn = nt;
    else if (!strcmp(rule, "pairwise_bernoulli") && (x = num_or_neg(json_object_get(j, "p"))) >= 0) syn = x * ns * nt, field = "p";
    else if (!strcmp(rule, "fixed_indegree") && (x = num_or_neg(json_object_get(j, "indegree"))) >= 0) syn = x * nt, field = "indegree";
    else if (!strcmp(rule, "fixed_outdegree") && (x = num_or_neg(json_object_get(j, "outdegree"))) >= 0) syn = x * ns, field = "outdegree";
    else if (!strcmp(rule, "fixed_total_number") && (x = num_or_neg(json_object_get(j, "N"))) >= 0) syn = x, field = "N";
    if (syn < 0) continue;
    const json_t *sm = json_object_get(j, "synapse_model");
    int plastic = json_is_string(sm) && strcmp(json_string_value(sm), "static_synapse");
    double per = 8.0 + (plastic ? 4.0 : (double)sb_tgt_bytes_((size_t)nt)) + 8.0 * json_is_object(json_object_get(j, "weight")) +
                 8.0 * json_is_object(json_object_get(j, "delay")) + (plastic ? SB_STDP_SYN_EXTRA_BYTES : 0.0);
    need += syn * per;
    if (need > have) {
      char path[96];
      snprintf(path, sizeof path, "projections[%zu].%s", i, field);
      FAIL(c, path, "%.4g synapses (%.0f -> %.0f neurons) need at least %.3g GB to build (%g bytes each) on top of the "
           "%.3g GB the populations (%.3g GB) and the projections before need, more than the %.3g GB of %s (nothing was "
           "built)", syn, ns, nt, syn * per / 1e9, per, (need - syn * per) / 1e9, neurons / 1e9, have / 1e9, what);
    }
  }
  build_bytes = need;
  return SB_OK;
}

static int load_projection(const ctx *c, size_t idx, const json_t *j) {
  static const char *const keys[] = {"source", "target", "rule", "p", "indegree", "outdegree", "N", "allow_autapses",
                                     "allow_multapses", "weight", "delay", "receptor", "synapse_model", "storage",
                                     "sources", "targets", "weights", "delays", "in_shape", "kernel_shape", "kernel",
                                     "stride", "padding", "synapse_params", "record_weights", NULL};
  char path[64], p2[128];
  snprintf(path, sizeof path, "projections[%zu]", idx);
  int rc, src, tgt;
  if ((rc = get_object(c, path, j)) || (rc = check_keys(c, path, j, keys))) return rc;
  snprintf(p2, sizeof p2, "%s.source", path);
  if ((rc = pop_by_name(c, p2, json_object_get(j, "source"), &src))) return rc;
  snprintf(p2, sizeof p2, "%s.target", path);
  if ((rc = pop_by_name(c, p2, json_object_get(j, "target"), &tgt))) return rc;
  /* synapse_model: static_synapse (default) or an STDP model (learning/stdp.c) with its
   * parameters in synapse_params and optional weight snapshots record_weights.interval */
  const json_t *sm = json_object_get(j, "synapse_model");
  sb_stdp_params stdp;
  int plastic = 0;
  double snap_dt = 0;
  if (sm) {
    snprintf(p2, sizeof p2, "%s.synapse_model", path);
    if (!json_is_string(sm)) FAIL(c, p2, "expected a synapse model name (got %s)", type_name(sm));
    if (strcmp(json_string_value(sm), "static_synapse") != 0) {
      if (sb_stdp_model_parse(json_string_value(sm), &stdp)) return relay(c, SB_EINVAL, path);
      plastic = 1;
    }
  }
  const json_t *spj = json_object_get(j, "synapse_params");
  if (spj) {
    snprintf(p2, sizeof p2, "%s.synapse_params", path);
    if (!plastic) FAIL(c, p2, "only plastic synapse models take parameters (synapse_model is static_synapse)");
    if (!json_is_object(spj)) FAIL(c, p2, "expected an object of STDP parameters (got %s)", type_name(spj));
    /* tau_x / tau_y are aliases: both names at once would leave one of the two values unused */
    static const char *const alias[2][2] = {{"tau_x", "tau_plus_triplet"}, {"tau_y", "tau_minus_triplet"}};
    for (int a = 0; a < 2; a++) {
      const json_t *x1 = json_object_get(spj, alias[a][0]), *x2 = json_object_get(spj, alias[a][1]);
      if (!x1 || !x2) continue;
      char p3[192];
      snprintf(p3, sizeof p3, "%s.%s", p2, alias[a][0]);
      FAIL(c, p3, "%s is another name of %s, which is given too (%s = %g, %s = %g): give one of them", alias[a][0],
           alias[a][1], alias[a][0], json_number_value(x1), alias[a][1], json_number_value(x2));
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)spj, k, v) {
      if (note_key(k)) continue;
      char p3[192];
      double val;
      snprintf(p3, sizeof p3, "%s.%s", p2, k);
      if (!strcmp(k, "pairing")) {
        /* the model name sets the pairing; a pairing here may only repeat it */
        if (!json_is_string(v)) {
          if (json_is_number(v))
            FAIL(c, p3, "expected \"all_to_all\", \"nn_symm\" or \"nn_restr\" (a string; got the number %g)", json_number_value(v));
          FAIL(c, p3, "expected \"all_to_all\", \"nn_symm\" or \"nn_restr\" (got %s)", type_name(v));
        }
        const char *pv = json_string_value(v);
        int code = !strcmp(pv, "all_to_all") ? SB_STDP_ALL_TO_ALL : !strcmp(pv, "nn_symm") ? SB_STDP_NN_SYMM
                 : !strcmp(pv, "nn_restr") ? SB_STDP_NN_RESTR : -1;
        if (code < 0) FAIL(c, p3, "expected \"all_to_all\", \"nn_symm\" or \"nn_restr\" (got \"%s\")", pv);
        if (stdp.model == SB_STDP_TRIPLET && code == SB_STDP_NN_RESTR)
          FAIL(c, p3, "the triplet rule takes all-to-all pairing (stdp_triplet_synapse) or nearest-neighbour symmetric "
               "pairing (stdp_triplet_nn_synapse) only, not restricted nearest-neighbour pairing (got \"%s\")", pv);
        if (code != stdp.pairing) {
          sb_stdp_params o = stdp;
          o.pairing = code;
          static const char *const pn[3] = {"all_to_all", "nn_symm", "nn_restr"};
          FAIL(c, p3, "\"%s\" conflicts with synapse_model %s, whose pairing is \"%s\" (the model name sets the "
               "pairing: \"%s\" is %s; leave pairing out or make it agree)", pv, sb_stdp_model_name(&stdp),
               pn[stdp.pairing], pv, sb_stdp_model_name(&o));
        }
        continue;
      }
      if ((rc = get_number(c, p3, v, &val))) return rc;
      if (sb_stdp_set_param(&stdp, k, val)) return relay(c, SB_EINVAL, p2);
    }
  }
  const json_t *rw = json_object_get(j, "record_weights");
  if (rw) {
    snprintf(p2, sizeof p2, "%s.record_weights", path);
    if (!plastic) FAIL(c, p2, "only plastic projections record weights");
    if (!json_is_object(rw) || !json_object_get(rw, "interval")) FAIL(c, p2, "expected {\"interval\": ms}");
    static const char *const krw[] = {"interval", NULL};
    if ((rc = check_keys(c, p2, rw, krw))) return rc;
    snprintf(p2, sizeof p2, "%s.record_weights.interval", path);
    if ((rc = get_number(c, p2, json_object_get(rw, "interval"), &snap_dt))) return rc;
    if (!(snap_dt >= 1e-3)) FAIL(c, p2, "must be >= 0.001 ms (got %g)", snap_dt);
  }
  sb_conn_spec cs = {0};
  sb_syn_spec ss = {0};
  cs.allow_autapses = cs.allow_multapses = 1;
  snprintf(p2, sizeof p2, "%s.rule", path);
  int rule = 0;
  if ((rc = rule_of(c, p2, json_object_get(j, "rule"), &rule))) return rc;
  const json_t *x;
  long l;
  if ((x = json_object_get(j, "allow_autapses"))) {
    snprintf(p2, sizeof p2, "%s.allow_autapses", path);
    if ((rc = get_bool(c, p2, x, &cs.allow_autapses))) return rc;
  }
  if ((x = json_object_get(j, "allow_multapses"))) {
    snprintf(p2, sizeof p2, "%s.allow_multapses", path);
    if ((rc = get_bool(c, p2, x, &cs.allow_multapses))) return rc;
  }
  ss.weight.kind = SB_DIST_CONST;
  ss.weight.a = 1.0;
  ss.delay.kind = SB_DIST_CONST;
  ss.delay.a = c->net->min_delay;
  if ((x = json_object_get(j, "weight"))) {
    snprintf(p2, sizeof p2, "%s.weight", path);
    if ((rc = get_dist(c, p2, x, &ss.weight))) return rc;
    if (ss.weight.kind == SB_DIST_CONST && (rc = cond_weight_check(c, p2, tgt, ss.weight.a))) return rc;
  }
  if ((x = json_object_get(j, "delay"))) {
    snprintf(p2, sizeof p2, "%s.delay", path);
    if ((rc = get_dist(c, p2, x, &ss.delay))) return rc;
  }
  if ((x = json_object_get(j, "receptor"))) {
    snprintf(p2, sizeof p2, "%s.receptor", path);
    const char *r = json_is_string(x) ? json_string_value(x) : "";
    if (strcmp(r, "excitatory") == 0) ss.receptor = SB_RECEPTOR_EX;
    else if (strcmp(r, "inhibitory") == 0) ss.receptor = SB_RECEPTOR_IN;
    else FAIL(c, p2, "expected \"excitatory\" or \"inhibitory\" (got %s)", json_is_string(x) ? r : type_name(x));
  }
  const char *storage = "sparse";
  if ((x = json_object_get(j, "storage"))) {
    snprintf(p2, sizeof p2, "%s.storage", path);
    if (!json_is_string(x)) FAIL(c, p2, "expected \"sparse\" or \"dense\" (got %s)", type_name(x));
    storage = json_string_value(x);
    if (strcmp(storage, "sparse") && strcmp(storage, "dense"))
      FAIL(c, p2, "expected \"sparse\" or \"dense\" (got \"%s\"); one_to_one and conv storage follow from the rule", storage);
    if (!strcmp(storage, "dense") && rule != SB_RULE_ALL_TO_ALL)
      FAIL(c, p2, "dense storage needs rule all_to_all");
  }
  size_t ns = c->net->pops[src].n, nt = c->net->pops[tgt].n;
  int proj;
  if (plastic && (rule == RULE_CONV || rule == SB_RULE_ONE_TO_ONE || !strcmp(storage, "dense"))) {
    snprintf(p2, sizeof p2, "%s.synapse_model", path);
    FAIL(c, p2, "plastic synapses need sparse storage (not conv, one_to_one or dense; write one_to_one as explicit)");
  }
  /* a key of another rule is a mistake, not something to ignore (indegree on pairwise_bernoulli) */
  static const struct { const char *key; int rule; const char *owner; } own[] = {
      {"p", SB_RULE_PAIRWISE_BERNOULLI, "pairwise_bernoulli"}, {"indegree", SB_RULE_FIXED_INDEGREE, "fixed_indegree"},
      {"outdegree", SB_RULE_FIXED_OUTDEGREE, "fixed_outdegree"}, {"N", SB_RULE_FIXED_TOTAL_NUMBER, "fixed_total_number"},
      {"sources", SB_RULE_EXPLICIT, "explicit"}, {"targets", SB_RULE_EXPLICIT, "explicit"},
      {"weights", SB_RULE_EXPLICIT, "explicit"}, {"delays", SB_RULE_EXPLICIT, "explicit"},
      {"in_shape", RULE_CONV, "conv"}, {"kernel_shape", RULE_CONV, "conv"}, {"kernel", RULE_CONV, "conv"},
      {"stride", RULE_CONV, "conv"}, {"padding", RULE_CONV, "conv"}};
  for (size_t q = 0; q < sizeof own / sizeof *own; q++)
    if (rule != own[q].rule && json_object_get(j, own[q].key)) {
      snprintf(p2, sizeof p2, "%s.%s", path, own[q].key);
      FAIL(c, p2, "a parameter of rule %s, not of rule %s", own[q].owner, json_string_value(json_object_get(j, "rule")));
    }
  /* keys a rule would ignore: conv's weights are its kernel's, explicit and conv connect exactly
   * the listed or computed pairs */
  static const struct { int rule; const char *key, *why; } unused[] = {
      {RULE_CONV, "weight", "a conv projection's weights are its kernel's (scale the kernel instead)"},
      {RULE_CONV, "receptor", "a conv projection's kernel values carry their signs (negate the kernel instead)"},
      {RULE_CONV, "allow_autapses", "rule conv connects the pairs its kernel defines"},
      {RULE_CONV, "allow_multapses", "rule conv connects the pairs its kernel defines"},
      {SB_RULE_EXPLICIT, "allow_autapses", "rule explicit connects the listed pairs as given (remove the pairs instead)"},
      {SB_RULE_EXPLICIT, "allow_multapses", "rule explicit connects the listed pairs as given (remove the pairs instead)"}};
  for (size_t q = 0; q < sizeof unused / sizeof *unused; q++)
    if (rule == unused[q].rule && json_object_get(j, unused[q].key)) {
      snprintf(p2, sizeof p2, "%s.%s", path, unused[q].key);
      FAIL(c, p2, "not a key of rule %s: %s", json_string_value(json_object_get(j, "rule")), unused[q].why);
    }
  if (rule == SB_RULE_ONE_TO_ONE && src == tgt && !cs.allow_autapses) {   /* NEST would make no synapse at all */
    snprintf(p2, sizeof p2, "%s.allow_autapses", path);
    FAIL(c, p2, "false with rule one_to_one within one population leaves no synapse (every pair i -> i is an autapse)");
  }
  /* explicit lists replace the single value: both would leave one of them unused */
  static const char *const lists[][2] = {{"weights", "weight"}, {"delays", "delay"}};
  for (int q = 0; q < 2; q++)
    if (json_object_get(j, lists[q][0]) && json_object_get(j, lists[q][1])) {
      snprintf(p2, sizeof p2, "%s.%s", path, lists[q][1]);
      FAIL(c, p2, "give either %s (one per synapse) or %s, not both", lists[q][0], lists[q][1]);
    }
  if (rule == RULE_CONV) {   /* conv: shared kernel */
    sb_net_conv_shape sh = {0};
    long v[4];
    const char *names[2] = {"in_shape", "kernel_shape"};
    int dims[2] = {3, 4};
    for (int q = 0; q < 2; q++) {
      snprintf(p2, sizeof p2, "%s.%s", path, names[q]);
      x = json_object_get(j, names[q]);
      if (!json_is_array(x) || json_array_size(x) != (size_t)dims[q]) FAIL(c, p2, "expected an array of %d integers", dims[q]);
      for (int i = 0; i < dims[q]; i++) {
        char p3[160];
        snprintf(p3, sizeof p3, "%s[%d]", p2, i);
        if ((rc = get_int(c, p3, json_array_get(x, (size_t)i), 1, 1 << 20, &v[i]))) return rc;
      }
      if (q == 0) { sh.C_in = (int)v[0]; sh.H = (int)v[1]; sh.W = (int)v[2]; }
      else {
        sh.C_out = (int)v[0]; sh.KH = (int)v[2]; sh.KW = (int)v[3];
        if (v[1] != sh.C_in) FAIL(c, p2, "kernel input channels must equal in_shape[0] = %d (got %ld)", sh.C_in, v[1]);
      }
    }
    sh.stride = 1;
    sh.pad = 0;
    if ((x = json_object_get(j, "stride"))) {
      snprintf(p2, sizeof p2, "%s.stride", path);
      if ((rc = get_int(c, p2, x, 1, 1 << 20, &l))) return rc;
      sh.stride = (int)l;
    }
    if ((x = json_object_get(j, "padding"))) {
      snprintf(p2, sizeof p2, "%s.padding", path);
      if ((rc = get_int(c, p2, x, 0, 1 << 20, &l))) return rc;
      sh.pad = (int)l;
    }
    double *kd;
    size_t nk;
    snprintf(p2, sizeof p2, "%s.kernel", path);
    if ((rc = get_doubles(c, p2, json_object_get(j, "kernel"), &kd, &nk))) return rc;
    size_t want = (size_t)sh.C_out * (size_t)sh.C_in * (size_t)sh.KH * (size_t)sh.KW;
    if (nk != want) {
      sb_free(kd);
      FAIL(c, p2, "expected %zu values (C_out*C_in*KH*KW) (got %zu)", want, nk);
    }
    float *kf = sb_malloc(want * sizeof *kf);
    if (!kf) { sb_free(kd); return SB_ENOMEM; }
    for (size_t i = 0; i < want; i++) kf[i] = (float)kd[i];
    sb_free(kd);
    if (ss.delay.kind != SB_DIST_CONST) { sb_free(kf); snprintf(p2, sizeof p2, "%s.delay", path); FAIL(c, p2, "conv projections need a constant delay"); }
    rc = sb_net_connect_conv(c->net, src, tgt, &sh, kf, ss.delay.a, &proj);
    sb_free(kf);
    return rc ? relay(c, rc, path) : SB_OK;
  }
  cs.rule = rule;
  switch (rule) {
    case SB_RULE_PAIRWISE_BERNOULLI:
      snprintf(p2, sizeof p2, "%s.p", path);
      if (!(x = json_object_get(j, "p"))) FAIL(c, p2, "missing (connection probability)");
      if ((rc = get_number(c, p2, x, &cs.p))) return rc;
      break;
    case SB_RULE_FIXED_INDEGREE:
    case SB_RULE_FIXED_OUTDEGREE:
    case SB_RULE_FIXED_TOTAL_NUMBER: {
      const char *k = rule == SB_RULE_FIXED_INDEGREE ? "indegree" : rule == SB_RULE_FIXED_OUTDEGREE ? "outdegree" : "N";
      snprintf(p2, sizeof p2, "%s.%s", path, k);
      if (!(x = json_object_get(j, k))) FAIL(c, p2, "missing (the rule %s needs it)", json_string_value(json_object_get(j, "rule")));
      if ((rc = get_int(c, p2, x, 0, 0xffffffffL, &l))) return rc;
      if (rule == SB_RULE_FIXED_INDEGREE) cs.indegree = (size_t)l;
      else if (rule == SB_RULE_FIXED_OUTDEGREE) cs.outdegree = (size_t)l;
      else cs.N = (size_t)l;
      break;
    }
    default: break;
  }
  uint32_t *sv = NULL, *tv = NULL;
  double *wv = NULL, *dv = NULL;
  if (rule == SB_RULE_EXPLICIT) {
    size_t n1, n2, n3;
    snprintf(p2, sizeof p2, "%s.sources", path);
    if ((rc = get_ids(c, p2, json_object_get(j, "sources"), ns, &sv, &n1))) goto out;
    snprintf(p2, sizeof p2, "%s.targets", path);
    if ((rc = get_ids(c, p2, json_object_get(j, "targets"), nt, &tv, &n2))) goto out;
    if (n1 != n2) { rc = fail_(c, p2, "expected as many targets as sources (%zu) (got %zu)", n1, n2); goto out; }
    cs.n = n1;
    if ((x = json_object_get(j, "weights"))) {
      snprintf(p2, sizeof p2, "%s.weights", path);
      if ((rc = get_doubles(c, p2, x, &wv, &n3))) goto out;
      if (n3 != n1) { rc = fail_(c, p2, "expected %zu weights (got %zu)", n1, n3); goto out; }
    }
    if ((x = json_object_get(j, "delays"))) {
      snprintf(p2, sizeof p2, "%s.delays", path);
      if ((rc = get_doubles(c, p2, x, &dv, &n3))) goto out;
      if (n3 != n1) { rc = fail_(c, p2, "expected %zu delays (got %zu)", n1, n3); goto out; }
    }
    cs.sources = sv;
    cs.targets = tv;
    cs.weights = wv;
    cs.delays = dv;
  }
  if (!strcmp(storage, "dense")) {
    float *w = sb_malloc(ns * nt * sizeof *w);
    gsl_rng *r = sb_rng_alloc(0, 0, 0);
    if (!w || !r) { sb_free(w); if (r) gsl_rng_free(r); rc = SB_ENOMEM; goto out; }
    for (size_t t = 0; t < nt; t++) {
      sb_rng_reseed(r, c->net->seed, SB_RNG_WEIGHT, ((uint64_t)(unsigned)c->net->n_projs << 40) | t);
      for (size_t s = 0; s < ns; s++) {
        double wt = sb_dist_draw(&ss.weight, r);
        w[t * ns + s] = (float)(ss.receptor == SB_RECEPTOR_EX ? fabs(wt) : ss.receptor == SB_RECEPTOR_IN ? -fabs(wt) : wt);
        if (src == tgt && s == t && !cs.allow_autapses) w[t * ns + s] = 0;
      }
    }
    gsl_rng_free(r);
    if (ss.delay.kind != SB_DIST_CONST) { sb_free(w); snprintf(p2, sizeof p2, "%s.delay", path); rc = fail_(c, p2, "dense storage needs a constant delay"); goto out; }
    rc = sb_net_connect_dense(c->net, src, tgt, w, ss.delay.a, &proj);
    sb_free(w);
  } else if (plastic) {
    rc = sb_stdp_connect(c->net, src, tgt, &cs, &ss, &stdp, &proj);
    if (!rc && snap_dt > 0) rc = sb_stdp_record_weights(c->net, proj, snap_dt);
  } else {
    rc = sb_net_connect(c->net, src, tgt, &cs, &ss, &proj);
  }
  if (rc) rc = relay(c, rc, path);
out:
  sb_free(sv); sb_free(tv); sb_free(wv); sb_free(dv);
  return rc;
}

static int load_stimulus(const ctx *c, size_t idx, const json_t *j) {
  static const char *const keys[] = {"model", "target", "node_ids", "params", "weight", "delay", NULL};
  char path[64], p2[128];
  snprintf(path, sizeof path, "stimuli[%zu]", idx);
  int rc, pop;
  if ((rc = get_object(c, path, j)) || (rc = check_keys(c, path, j, keys))) return rc;
  const json_t *jm = json_object_get(j, "model");
  snprintf(p2, sizeof p2, "%s.model", path);
  if (!json_is_string(jm)) FAIL(c, p2, "expected poisson_generator, dc_generator, step_current_generator or spike_generator");
  const char *model = json_string_value(jm);
  int kind = !strcmp(model, "poisson_generator") ? 0 : !strcmp(model, "dc_generator") ? 1 : !strcmp(model, "spike_generator") ? 2
             : !strcmp(model, "step_current_generator") ? 3 : -1;
  if (kind < 0)
    FAIL(c, p2, "unknown stimulus '%s' (expected poisson_generator, dc_generator, step_current_generator or spike_generator)", model);
  snprintf(p2, sizeof p2, "%s.target", path);
  if ((rc = pop_by_name(c, p2, json_object_get(j, "target"), &pop))) return rc;
  uint32_t *ids = NULL;
  size_t n = 0;
  const json_t *x;
  if ((x = json_object_get(j, "node_ids"))) {
    snprintf(p2, sizeof p2, "%s.node_ids", path);
    if ((rc = get_ids(c, p2, x, c->net->pops[pop].n, &ids, &n))) return rc;
    if (!n) {
      sb_free(ids);
      FAIL(c, p2, "%s", no_ids_msg);
    }
  }
  double weight = 1.0, delay = 0.0;
  double *times = NULL, *values = NULL;
  size_t nt = 0, nval = 0;
  if ((x = json_object_get(j, "weight"))) {
    snprintf(p2, sizeof p2, "%s.weight", path);
    if ((rc = get_number(c, p2, x, &weight))) goto out;
    if (kind != 1 && kind != 3 && (rc = cond_weight_check(c, p2, pop, weight))) goto out;
  }
  if ((x = json_object_get(j, "delay"))) {
    snprintf(p2, sizeof p2, "%s.delay", path);
    if ((rc = get_number(c, p2, x, &delay))) goto out;
  }
  const json_t *jp = json_object_get(j, "params");
  snprintf(p2, sizeof p2, "%s.params", path);
  if (!jp) jp = json_object();
  else json_incref((json_t *)jp);
  static const char *const kp[] = {"rate", "start", "stop", NULL};
  static const char *const kd[] = {"amplitude", "start", "stop", NULL};
  static const char *const ks[] = {"spike_times", NULL};
  static const char *const kc[] = {"amplitude_times", "amplitude_values", "start", "stop", NULL};
  if ((rc = get_object(c, p2, jp)) || (rc = check_keys(c, p2, jp, kind == 0 ? kp : kind == 1 ? kd : kind == 2 ? ks : kc)))
    goto outp;
  double v[3] = {0, 0, INFINITY};
  const char *const *kk = kind == 0 ? kp : kd;
  if (kind < 2) {
    for (int i = 0; i < 3; i++) {
      char p3[160];
      snprintf(p3, sizeof p3, "%s.%s", p2, kk[i]);
      if ((x = json_object_get(jp, kk[i])) && (rc = get_number(c, p3, x, &v[i]))) goto outp;
      if (i == 0 && !x) { rc = fail_(c, p3, "missing (%s)", kind == 0 ? "rate in Hz" : "amplitude in pA"); goto outp; }
    }
    rc = kind == 0 ? sb_net_add_poisson(c->net, pop, ids, n, v[0], v[1], v[2], weight, delay)
                   : sb_net_add_dc(c->net, pop, ids, n, v[0], v[1], v[2], weight, delay);
  } else if (kind == 2) {
    char p3[160];
    snprintf(p3, sizeof p3, "%s.spike_times", p2);
    if ((rc = get_doubles(c, p3, json_object_get(jp, "spike_times"), &times, &nt))) goto outp;
    rc = sb_net_add_spike_train(c->net, pop, ids, n, times, nt, weight, delay);
  } else {   /* step_current_generator */
    char p3[160];
    snprintf(p3, sizeof p3, "%s.amplitude_times", p2);
    if ((rc = get_doubles(c, p3, json_object_get(jp, "amplitude_times"), &times, &nt))) goto outp;
    snprintf(p3, sizeof p3, "%s.amplitude_values", p2);
    if ((rc = get_doubles(c, p3, json_object_get(jp, "amplitude_values"), &values, &nval))) goto outp;
    if (nval != nt) {
      rc = fail_(c, p3, "expected as many values as amplitude_times (%zu), in pA (got %zu)", nt, nval);
      goto outp;
    }
    for (int i = 0; i < 2; i++) {
      snprintf(p3, sizeof p3, "%s.%s", p2, kc[2 + i]);
      if ((x = json_object_get(jp, kc[2 + i])) && (rc = get_number(c, p3, x, &v[1 + i]))) goto outp;
    }
    rc = sb_net_add_step_current(c->net, pop, ids, n, times, values, nt, v[1], v[2], weight, delay);
  }
  if (rc) {
    const char *e = sb_last_error();
    int top = !strncmp(e, "weight", 6) || !strncmp(e, "delay", 5) || !strncmp(e, "node_ids", 8);
    rc = relay(c, rc, top ? path : p2);
  }
outp:
  json_decref((json_t *)jp);
out:
  sb_free(ids);
  sb_free(times);
  sb_free(values);
  return rc;
}

static int load_record(const ctx *c, const json_t *j) {
  static const char *const keys[] = {"spikes", "state", NULL};
  int rc;
  if ((rc = get_object(c, "record", j)) || (rc = check_keys(c, "record", j, keys))) return rc;
  const json_t *s = json_object_get(j, "spikes");
  if (s) {
    if (json_is_string(s) && !strcmp(json_string_value(s), "all")) {
    } else if (json_is_false(s)) {
      for (int i = 0; i < c->net->n_pops; i++) sb_net_record_spikes(c->net, i, 0);
    } else if (json_is_array(s)) {
      for (int i = 0; i < c->net->n_pops; i++) sb_net_record_spikes(c->net, i, 0);
      for (size_t i = 0; i < json_array_size(s); i++) {
        char p2[64];
        int pop;
        snprintf(p2, sizeof p2, "record.spikes[%zu]", i);
        if ((rc = pop_by_name(c, p2, json_array_get(s, i), &pop))) return rc;
        sb_net_record_spikes(c->net, pop, 1);
      }
    } else {
      FAIL(c, "record.spikes", "expected \"all\", false or an array of population names (got %s)", type_name(s));
    }
  }
  const json_t *st = json_object_get(j, "state");
  if (st) {
    if (!json_is_array(st)) FAIL(c, "record.state", "expected an array of recordings (got %s)", type_name(st));
    for (size_t i = 0; i < json_array_size(st); i++) {
      static const char *const kr[] = {"population", "variables", "node_ids", "interval", NULL};
      const json_t *e = json_array_get(st, i);
      char path[64], p2[128];
      snprintf(path, sizeof path, "record.state[%zu]", i);
      if ((rc = get_object(c, path, e)) || (rc = check_keys(c, path, e, kr))) return rc;
      int pop;
      snprintf(p2, sizeof p2, "%s.population", path);
      if ((rc = pop_by_name(c, p2, json_object_get(e, "population"), &pop))) return rc;
      double interval = 0.1;
      const json_t *x;
      snprintf(p2, sizeof p2, "%s.interval", path);
      if ((x = json_object_get(e, "interval")) && (rc = get_number(c, p2, x, &interval))) return rc;
      /* below 1 us the sample buffers, not the network, would fill the memory */
      if (!(interval >= 1e-3)) FAIL(c, p2, "must be >= 0.001 ms (got %g)", interval);
      uint32_t *ids = NULL;
      size_t n = 0;
      if ((x = json_object_get(e, "node_ids"))) {
        snprintf(p2, sizeof p2, "%s.node_ids", path);
        if ((rc = get_ids(c, p2, x, c->net->pops[pop].n, &ids, &n))) return rc;
        if (!n) {
          sb_free(ids);
          FAIL(c, p2, "%s", no_ids_msg);
        }
      }
      const json_t *vars = json_object_get(e, "variables");
      snprintf(p2, sizeof p2, "%s.variables", path);
      if (!json_is_array(vars) || !json_array_size(vars)) {
        sb_free(ids);
        FAIL(c, p2, "expected a non-empty array of state variable names such as [\"V_m\"]");
      }
      for (size_t v = 0; v < json_array_size(vars); v++) {
        const json_t *vn = json_array_get(vars, v);
        char p3[160];
        snprintf(p3, sizeof p3, "%s[%zu]", p2, v);
        if (!json_is_string(vn)) { sb_free(ids); FAIL(c, p3, "expected a variable name (got %s)", type_name(vn)); }
        rc = sb_net_record_state(c->net, pop, json_string_value(vn), ids, ids ? n : 0, interval);
        if (rc) {
          sb_free(ids);
          const char *em = sb_last_error();
          if (rc == SB_EINVAL && !strncmp(em, "variable: ", 10)) {   /* at the element that names it */
            char msg[512];
            snprintf(msg, sizeof msg, "%s", em + 10);
            FAIL(c, p3, "%s", msg);
          }
          return relay(c, rc, path);
        }
      }
      sb_free(ids);
    }
  }
  return SB_OK;
}

int sb_json_load_(const char *path, json_t **root) {
  *root = NULL;
  int chk = sb_input_check(path);
  if (chk) return chk;
  char *text;
  size_t len;
  if ((chk = sb_read_file(path, &text, &len))) return chk;
  if (len >= 8 && !memcmp(text, "\x89HDF\r\n\x1a\n", 8)) {
    sb_free(text);
    SB_ERROR(SB_EFORMAT, "%s: an HDF5 file, not a JSON model (to continue an interrupted run from its checkpoint: "
             "spikebridge run --resume FILE)", path);
  }
  if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) {   /* a UTF-8 byte-order mark (Windows editors): skip it */
    memmove(text, text + 3, len - 3);
    len -= 3;
    text[len] = 0;
  }
  const char *z = memchr(text, 0, len);   /* jansson's file reader stopped there and ignored the rest */
  if (z) {
    size_t at = (size_t)(z - text);
    sb_free(text);
    SB_ERROR(SB_EFORMAT, "%s: byte %zu is a NUL byte: expected a JSON text file", path, at);
  }
  json_error_t jerr;
  *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
  sb_free(text);
  if (!*root) SB_ERROR(SB_EFORMAT, "%s: line %d column %d: not valid JSON: %s", path, jerr.line, jerr.column, jerr.text);
  return SB_OK;
}

/* The PATH of a "PATH=VALUE" override into buf; 0 when it has none. */
static int set_path(const char *set, char *buf, size_t cap) {
  const char *eq = strchr(set, '=');
  if (!eq || eq == set) return 0;
  snprintf(buf, cap, "%.*s", (int)(eq - set), set);
  return 1;
}

/* Whether the error message `err` is caused by the override `set` ("PATH=VALUE"), at match level
 * 0: the error is at PATH or below it, or names PATH's leaf as an unknown key of its parent;
 * 1: the error is at a sibling of PATH (`--set populations.a.params.V_th=-80` makes
 *    "populations.a.params.V_reset: must be < V_th");
 * 2: the error quotes PATH's leaf (3 characters or more) as a bound (`--set simulation.min_delay=10`
 *    makes "projections[0].delay: must be >= min_delay = 10 ms"). */
static int set_blames(const char *err, const char *set, int level) {
  char path[512], needle[700];
  if (!set_path(set, path, sizeof path)) return 0;
  char *dot = strrchr(path, '.'), *leaf = dot ? dot + 1 : path;
  switch (level) {
    case 0:
      if (dot) snprintf(needle, sizeof needle, "%.*s: unknown key '%s'", (int)(dot - path), path, leaf);
      else snprintf(needle, sizeof needle, "(top level): unknown key '%s'", path);
      return strstr(err, path) || strstr(err, needle);
    case 1:
      if (!dot) return 0;
      snprintf(needle, sizeof needle, "%.*s.", (int)(dot - path), path);
      if (strstr(err, needle)) return 1;
      snprintf(needle, sizeof needle, "%.*s[", (int)(dot - path), path);
      return strstr(err, needle) != NULL;
    default:
      if (strlen(leaf) < 3) return 0;
      snprintf(needle, sizeof needle, "%s = ", leaf);
      return strstr(err, needle) != NULL;
  }
}

/* Whether a later override than set[i] writes the same path (the last one wins). */
static int overridden_later(const char *const *set, int n_set, int i) {
  char pi[512], pj[512];
  if (!set_path(set[i], pi, sizeof pi)) return 0;
  for (int j = i + 1; j < n_set; j++)
    if (set_path(set[j], pj, sizeof pj) && !strcmp(pi, pj)) return 1;
  return 0;
}

/* Prefixes the last error with "with --set A and --set B" for the overrides set[i] with named[i]
 * (in command-line order, as many as fit); returns rc. */
static int name_overrides(int rc, const char *const *set, int n_set, const int *named) {
  char msg[1024] = "with";
  size_t len = strlen(msg);
  int k = 0;
  for (int i = 0; i < n_set; i++) {
    if (!named[i]) continue;
    int w = snprintf(msg + len, sizeof msg - len, "%s --set %s", k ? " and" : "", set[i]);
    if (w < 0 || (size_t)w >= sizeof msg - len) break;
    len += (size_t)w;
    k++;
  }
  return k ? sb_error_prefix_(rc, "%s", msg) : rc;
}

/* Which --set overrides caused a load error: the model is loaded again without each override in
 * turn (up to SB_BLAME_MAX of them); an override is named when the error goes away or changes
 * without it, unless it changes to an error at the override's own path while it was elsewhere
 * (the file's error there, which the override repaired), and unless a later override sets the
 * same path. An error that stays without any one override is the file's own (no prefix); two
 * overrides that cause it only together are both named. The message is restored afterwards. More
 * overrides, a model estimated beyond SB_BLAME_BYTES, or a retry out of memory: set_blames'
 * guesses from the paths instead. */
#define SB_BLAME_MAX 8
#define SB_BLAME_BYTES 1e9   /* larger models: guesses (a load of 1 GB takes seconds) */
static _Thread_local int blame_depth;

/* Whether msg names path or a field below it ("projections[0].weight" in "...weight.std: ...",
 * not "...tau" in "...tau_m"). */
static int mentions_path(const char *msg, const char *path) {
  size_t L = strlen(path);
  for (const char *q = strstr(msg, path); q; q = strstr(q + 1, path))
    if (strchr(".[: ", q[L]) || q[L] == '\0') return 1;
  return 0;
}

static int blame_by_removal(const char *file, const sb_snn_model_opts *opts, int rc) {
  if (!rc || rc == SB_ENOMEM || opts->n_set == 0 || blame_depth || strstr(sb_last_error(), "--set")) return rc;
  if (opts->n_set > SB_BLAME_MAX || build_bytes > SB_BLAME_BYTES) return sb_snn_blame_overrides(rc, opts->set, opts->n_set);
  char saved[SB_ERRMSG_MAX], where[SB_ERRMSG_MAX];
  snprintf(saved, sizeof saved, "%s", sb_last_error());
  snprintf(where, sizeof where, "%s", sb_last_error_where());
  const char *rest[SB_BLAME_MAX];
  int involved[SB_BLAME_MAX] = {0}, unknown = 0;
  blame_depth++;
  for (int i = 0; i < opts->n_set && !unknown; i++) {
    if (overridden_later(opts->set, opts->n_set, i)) continue;   /* never in effect: no load needed */
    int n = 0;
    for (int j = 0; j < opts->n_set; j++)
      if (j != i) rest[n++] = opts->set[j];
    sb_snn_model_opts o = *opts;
    o.set = rest;
    o.n_set = n;
    sb_snn_model m2;
    int r2 = sb_snn_model_load(file, &o, &m2);
    if (r2 == SB_OK) sb_snn_model_free(&m2);
    if (r2 == SB_ENOMEM) unknown = 1;
    /* the error goes away or changes without it; not when it changes to an error at its own path
     * while the error was elsewhere (one of the file's errors, which the override repaired) */
    char path[512];
    int has = set_path(opts->set[i], path, sizeof path), changed = r2 != rc || strcmp(sb_last_error(), saved) != 0;
    involved[i] = r2 == SB_OK || (changed && !(has && mentions_path(sb_last_error(), path) && !mentions_path(saved, path)));
  }
  blame_depth--;
  sb_error_restore_(saved, where);
  if (unknown) return sb_snn_blame_overrides(rc, opts->set, opts->n_set);
  return name_overrides(rc, opts->set, opts->n_set, involved);
}

int sb_snn_model_load(const char *file, const sb_snn_model_opts *opts, sb_snn_model *m) {
  memset(m, 0, sizeof *m);
  if (!blame_depth) build_bytes = 0;
  json_t *root = NULL;
  int chk = sb_json_load_(file, &root);
  if (chk) return chk;
  ctx c = {file, NULL};
  int rc = SB_OK;
  double min_delay;
  if (!json_is_object(root)) {
    rc = fail_(&c, "(top level)", "expected an object with populations, projections, ... (got %s)", type_name(root));
    goto fail;
  }
  for (int i = 0; i < opts->n_set; i++)
    if ((rc = apply_set(file, root, opts->set[i]))) goto fail;
  static const char *const keys[] = {"simulation", "populations", "stimuli", "projections", "record", NULL};
  if (json_object_get(root, "layers") && !json_object_get(root, "populations")) {   /* examples/mlp.json and friends */
    rc = fail_(&c, "(top level)", "has 'layers' and no 'populations': an ANN architecture file (for `spikebridge train`, "
               "docs/ann.md), not a spiking model; `run` takes populations and projections (docs/engine.md)");
    goto fail;
  }
  if (json_object_get(root, "base") && !json_object_get(root, "populations")) {   /* examples/sweeps/ */
    rc = fail_(&c, "(top level)", "has 'base' and no 'populations': a sweep file (for `spikebridge sweep`, "
               "docs/clusters.md), not a spiking model; `run` takes populations and projections (docs/engine.md)");
    goto fail;
  }
  if ((rc = check_keys(&c, "(top level)", root, keys))) goto fail;
  if ((rc = load_simulation(&c, json_object_get(root, "simulation"), opts, m, &min_delay))) goto fail;
  m->net = c.net = sb_net_alloc(m->seed, m->threads);
  if (!m->net) { rc = SB_ENOMEM; goto fail; }
  m->threads = m->net->threads;
  sb_net_set_min_delay(m->net, min_delay);
  const json_t *pops = json_object_get(root, "populations");
  if (!pops) { rc = fail_(&c, "populations", "missing (an object of named populations)"); goto fail; }
  if ((rc = get_object(&c, "populations", pops))) goto fail;
  size_t n_pops = 0;
  {
    const char *pk;
    json_t *pv;
    json_object_foreach((json_t *)pops, pk, pv) n_pops += !note_key(pk);
  }
  if (!n_pops) { rc = fail_(&c, "populations", "must define at least one population"); goto fail; }
  const json_t *pr = json_object_get(root, "projections");
  if ((rc = precheck_size(&c, pops, n_pops, pr, json_object_get(root, "record")))) goto fail;
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)pops, k, v) {
    if (note_key(k)) continue;   /* "_..." / comment / description: notes, as in every object */
    if ((rc = load_population(&c, k, v))) goto fail;
  }
  if (pr) {
    if (!json_is_array(pr)) { rc = fail_(&c, "projections", "expected an array (got %s)", type_name(pr)); goto fail; }
    for (size_t i = 0; i < json_array_size(pr); i++)
      if ((rc = load_projection(&c, i, json_array_get(pr, i)))) goto fail;
    /* weight snapshots are held in memory for the whole run: refuse them now if they cannot fit
     * (JSON projection i is network projection i: each entry makes exactly one) */
    int bad = -1;
    if ((rc = sb_plastic_check_snapshots_(m->net, m->t_stop, &bad))) {
      char p2[64];
      snprintf(p2, sizeof p2, "projections[%d]", bad);
      rc = relay(&c, rc, p2);
      goto fail;
    }
  }
  const json_t *st = json_object_get(root, "stimuli");
  if (st) {
    if (!json_is_array(st)) { rc = fail_(&c, "stimuli", "expected an array (got %s)", type_name(st)); goto fail; }
    for (size_t i = 0; i < json_array_size(st); i++)
      if ((rc = load_stimulus(&c, i, json_array_get(st, i)))) goto fail;
  }
  const json_t *rec = json_object_get(root, "record");
  if (rec && (rc = load_record(&c, rec))) goto fail;
  json_decref(root);
  return SB_OK;
fail:
  json_decref(root);
  sb_snn_model_free(m);
  return blame_by_removal(file, opts, rc);
}

int sb_snn_blame_overrides(int rc, const char *const *set, int n_set) {
  /* the closest kind of match over all overrides (set_blames' levels) before a looser one; every
   * path that matches at that level is named, each by its last override */
  int *named = n_set > 0 ? sb_calloc((size_t)n_set, sizeof *named) : NULL;
  if (!named) return rc;
  for (int level = 0; level < 3 && rc && rc != SB_ENOMEM && !strstr(sb_last_error(), "--set"); level++) {
    int any = 0;
    for (int i = 0; i < n_set; i++) any |= named[i] = !overridden_later(set, n_set, i) && set_blames(sb_last_error(), set[i], level);
    if (any) {
      rc = name_overrides(rc, set, n_set, named);
      break;
    }
  }
  sb_free(named);
  return rc;
}

void sb_snn_model_free(sb_snn_model *m) {
  sb_net_free(m->net);
  sb_free(m->output);
  memset(m, 0, sizeof *m);
}
