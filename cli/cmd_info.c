/* spikebridge info: describe an HDF5 file, or (without a file) the Fashion-MNIST data set.
 * ANN model files (and GAN files) first get their architecture table and parameter counts;
 * SNN descriptions are added by their issue. */
#include "cli/cli.h"
#include "models/ann/ann.h"
#include "sim/core.h"

#include <string.h>

static const char usage[] =
    "Usage: spikebridge info FILE.h5\n"
    "       spikebridge info --dataset [--data DIR]\n\n"
    "Describe FILE.h5 (groups, datasets with shapes and types, attributes; for an ANN model\n"
    "file first its architecture and parameter counts), or summarise\n"
    "the Fashion-MNIST data set (default: Debian's /usr/share/datasets/fashion-mnist,\n"
    "or $SB_DATA_DIR, or --data DIR).\n";

/* Print the data set: image counts, shapes, per-class counts, pixel mean. */
static int dataset_summary(const char *dir) {
  const char *splits[2] = {"train", "test"};
  sb_dataset d[2];
  for (int s = 0; s < 2; s++) {   /* both splits load before anything is printed: errors come first */
    int st = sb_fmnist_load(dir, splits[s], &d[s]);
    if (st) {
      if (s) sb_dataset_free(&d[0]);
      return sb_cli_fail(st);
    }
  }
  printf("Fashion-MNIST in %s\n", sb_fmnist_dir(dir));
  for (int s = 0; s < 2; s++) {
    size_t counts[10] = {0};
    double sum = 0;
    for (size_t i = 0; i < d[s].n; i++) counts[d[s].labels[i]]++;
    for (size_t i = 0; i < d[s].n * (size_t)d[s].h * (size_t)d[s].w; i++) sum += d[s].images[i];
    printf("  %-5s %6zu images of %dx%d, mean pixel %.2f/255\n", splits[s], d[s].n, d[s].h, d[s].w,
           sum / ((double)d[s].n * d[s].h * d[s].w));
    printf("        per class:");
    for (int k = 0; k < 10; k++) printf(" %zu", counts[k]);
    printf("\n");
    sb_dataset_free(&d[s]);
  }
  printf("  classes:");
  for (int k = 0; k < 10; k++) printf(" %d=%s", k, sb_fmnist_classes[k]);
  printf("\n");
  return 0;
}

static void print_attrs(hid_t obj, int depth) {
  H5O_info_t oi;
  if (H5Oget_info2(obj, &oi, H5O_INFO_NUM_ATTRS) < 0) return;
  for (hsize_t i = 0; i < oi.num_attrs; i++) {
    hid_t a = H5Aopen_by_idx(obj, ".", H5_INDEX_NAME, H5_ITER_INC, i, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) continue;
    char name[256];
    H5Aget_name(a, sizeof name, name);
    hid_t t = H5Aget_type(a);
    printf("%*s@%s", depth * 2, "", name);
    if (H5Tget_class(t) == H5T_STRING) {
      char *v = NULL;
      if (sb_h5_attr_read_string(obj, name, &v) == SB_OK) {
        size_t len = strlen(v);
        printf(" = \"%.*s%s\"", 60, v, len > 60 ? "..." : "");
        sb_free(v);
      }
    } else if (H5Tget_class(t) == H5T_INTEGER || H5Tget_class(t) == H5T_FLOAT) {
      double v[8];
      size_t n = 0;
      if (sb_h5_attr_read_doubles(obj, name, v, 8, &n) == SB_OK) {
        printf(" =");
        for (size_t k = 0; k < n; k++) printf(" %g", v[k]);
      } else {
        printf(" = [...]");
      }
    }
    printf("\n");
    H5Tclose(t);
    H5Aclose(a);
  }
}

static herr_t visit(hid_t obj, const char *name, const H5O_info_t *info, void *data) {
  (void)data;
  if (!strcmp(name, ".")) {
    print_attrs(obj, 1);
    return 0;
  }
  int depth = 1;
  for (const char *p = name; *p; p++) depth += *p == '/';
  const char *base = strrchr(name, '/');
  base = base ? base + 1 : name;
  hid_t o = H5Oopen(obj, name, H5P_DEFAULT);
  if (info->type == H5O_TYPE_GROUP) {
    printf("%*s%s/\n", depth * 2, "", base);
  } else if (info->type == H5O_TYPE_DATASET) {
    hid_t s = H5Dget_space(o), t = H5Dget_type(o);
    hsize_t d[16];
    int r = H5Sget_simple_extent_ndims(s);
    if (r > 16) r = 16;
    H5Sget_simple_extent_dims(s, d, NULL);
    H5T_class_t tc = H5Tget_class(t);
    const char *cls = tc == H5T_FLOAT ? "float" : tc == H5T_INTEGER ? (H5Tget_sign(t) == H5T_SGN_NONE ? "uint" : "int") : "other";
    printf("%*s%s  %s%zu (", depth * 2, "", base, cls, H5Tget_size(t) * 8);
    for (int i = 0; i < r; i++) printf("%s%llu", i ? ", " : "", (unsigned long long)d[i]);
    printf(")\n");
    H5Sclose(s);
    H5Tclose(t);
  }
  if (o >= 0) {
    print_attrs(o, depth + 1);
    H5Oclose(o);
  }
  return 0;
}

/* Root string attributes written as training metadata, printed under the architecture. */
static void print_meta(hid_t f) {
  static const char *const keys[] = {"test_accuracy", "train_loss", "epochs", "batch", "lr", "optimizer", "loss",
                                     "seed", "threads", "train_seconds", "schedule", "augment", "label_smoothing",
                                     "frechet_distance", "source", NULL};
  for (int i = 0; keys[i]; i++) {
    char *v = NULL;
    if (sb_h5_attr_exists(f, keys[i]) && sb_h5_attr_read_string(f, keys[i], &v) == SB_OK) printf("  %s: %s\n", keys[i], v);
    sb_free(v);
  }
  sb_error_clear();
}

/* Architecture of an ANN model file (or both nets of a GAN file). Errors as sb_model_load. */
/* Loads every model of the file first (an error prints nothing), then prints them and the
 * training metadata after the file name. */
static int model_summary(const char *path, hid_t f) {
  char *fmt = NULL;
  int st = sb_h5_attr_read_string(f, "format", &fmt);
  if (st) return st;
  int gan = !strcmp(fmt, "spikebridge-gan");
  sb_free(fmt);
  const char *groups[2] = {gan ? "generator" : ".", "discriminator"};
  sb_model *ms[2] = {NULL, NULL};
  for (int i = 0; i < (gan ? 2 : 1) && !st; i++) {
    hid_t g = H5Gopen2(f, groups[i], H5P_DEFAULT);
    if (g < 0) {
      st = SB_SET_ERROR(SB_EFORMAT, "%s: /%s: missing group", path, groups[i]);
      break;
    }
    char what[4200];
    snprintf(what, sizeof what, "%s%s%s", path, gan ? ": /" : "", gan ? groups[i] : "");
    st = sb_model_load_from(&ms[i], g, what);
    H5Gclose(g);
  }
  if (!st) {
    printf("%s\n", path);
    for (int i = 0; i < (gan ? 2 : 1); i++) {
      if (gan) printf("%s:\n", groups[i]);
      sb_model_print(ms[i], stdout);
    }
    print_meta(f);
  }
  sb_model_free(ms[0]);
  sb_model_free(ms[1]);
  return st;
}

static int file_summary(const char *path) {
  hid_t f;
  int st = sb_h5_open_read(path, &f);
  if (st) return sb_cli_fail(st);
  if (sb_model_file_is_ann(path)) {
    if ((st = model_summary(path, f))) {
      H5Fclose(f);
      return sb_cli_fail(st);
    }
    printf("HDF5 contents:\n");
  } else
    printf("%s\n", path);
  H5Ovisit2(f, H5_INDEX_NAME, H5_ITER_INC, visit, NULL, H5O_INFO_BASIC);
  H5Fclose(f);
  return 0;
}

int sb_cmd_info(int argc, char **argv) {
  static const struct option opts[] = {{"dataset", no_argument, 0, 1},
                                       {"data", required_argument, 0, 2},
                                       {"help", no_argument, 0, 'h'},
                                       {"quiet", no_argument, 0, 'q'},
                                       {0, 0, 0, 0}};
  const char *data_dir = NULL;
  int want_dataset = 0;
  sb_cli_getopt_reset();
  int c;
  while ((c = sb_cli_getopt("info", usage, argc, argv, ":hq", opts)) != -1) {
    if (c == SB_CLI_HELP) return 0;
    if (c == SB_CLI_BADOPT) return 2;
    if (c == 1) want_dataset = 1;
    if (c == 2) { data_dir = optarg; want_dataset = 1; }
  }
  int npos = argc - optind;
  if (want_dataset && npos == 0) return dataset_summary(data_dir);
  if (npos != 1) return sb_cli_usage_error("info", "expected one FILE.h5 or --dataset");
  return file_summary(argv[optind]);
}
