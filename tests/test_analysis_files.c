/* Spike file readers and `spikebridge analyze`: every real file in ../shared/data/spikes loads
 * with h5py's counts (fixture tests/ref/shared_spike_counts.txt, made by make_shared_counts.py),
 * SONATA variants (integer widths, float32, seconds, several/empty populations, legacy layout),
 * NWB units tables, NEST text, bad files (exit 2, clear message), JSON and figure output. */
#include "analysis/analysis.h"
#include "tests/testutil.h"

#include <dirent.h>
#include <jansson.h>

/* ---- writing test files ---- */

static void write_ds(hid_t loc, const char *name, hid_t ftype, hid_t mtype, const void *data, size_t n) {
  hsize_t d = n;
  hid_t sp = H5Screate_simple(1, &d, NULL);
  hid_t ds = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(ds >= 0);
  if (n) assert_true(H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
  H5Dclose(ds);
  H5Sclose(sp);
}

static void attr_str(hid_t loc, const char *obj, const char *name, const char *v) {
  hid_t o = H5Oopen(loc, obj, H5P_DEFAULT);
  assert_int_equal(sb_h5_attr_write_string(o, name, v), SB_OK);
  H5Oclose(o);
}

/* A SONATA population with times of file type ttype and ids of file type itype. */
static void sonata_pop(hid_t f, const char *pop, hid_t ttype, const double *t, size_t nt, hid_t itype,
                       const int64_t *ids, size_t ni, const char *units, const char *sorting) {
  char path[256];
  snprintf(path, sizeof path, "spikes/%s", pop);
  hid_t g = sb_h5_group(f, path);
  if (t) write_ds(g, "timestamps", ttype, H5T_NATIVE_DOUBLE, t, nt);
  if (ids) write_ds(g, "node_ids", itype, H5T_NATIVE_INT64, ids, ni);
  if (units && t) attr_str(g, "timestamps", "units", units);
  if (sorting) assert_int_equal(sb_h5_attr_write_string(g, "sorting", sorting), SB_OK);
  H5Gclose(g);
}

static const char *tmpfile_path(const char *name) {
  static char buf[8][512];
  static int k;
  k = (k + 1) % 8;
  snprintf(buf[k], sizeof buf[k], "%s/%s", sb_test_tmpdir(), name);
  return buf[k];
}

static hid_t h5new(const char *path) {
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(f >= 0);
  return f;
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* ---- real third-party files ---- */

static void test_shared_files_match_h5py(void **state) {
  (void)state;
  const char *shared = sb_test_shared();
  if (!shared) skip();
  FILE *in = fopen("tests/ref/shared_spike_counts.txt", "r");
  assert_non_null(in);
  char line[1024], listed[64][256];
  int n_listed = 0, n_pops = 0;
  while (fgets(line, sizeof line, in)) {
    if (line[0] == '#') continue;
    char file[256], pop[128];
    unsigned long long ns, nn, nnodes;
    double tsum;
    assert_int_equal(sscanf(line, "%255s %127s %llu %llu %llu %lg", file, pop, &ns, &nn, &nnodes, &tsum), 6);
    if (n_listed == 0 || strcmp(listed[n_listed - 1], file)) snprintf(listed[n_listed++], 256, "%s", file);
    char path[1024];
    snprintf(path, sizeof path, "%s/data/spikes/%s", shared, file);
    sb_spk_file *f;
    int st = sb_spk_open(path, &f);
    if (st) fprintf(stderr, "%s: %s\n", path, sb_last_error());
    assert_int_equal(st, SB_OK);
    long p = sb_spk_find_pop(f, pop);
    if (p < 0) fprintf(stderr, "%s: population %s not found\n", file, pop);
    assert_true(p >= 0);
    const sb_spk_pop_info *pi = sb_spk_pop(f, (size_t)p);
    if (pi->n_spikes != ns) fprintf(stderr, "%s %s: %zu spikes, h5py %llu\n", file, pop, pi->n_spikes, ns);
    assert_int_equal(pi->n_spikes, ns);
    assert_int_equal(pi->n_nodes, nnodes);
    /* every spike readable, times in ms summing as h5py's */
    double *t = malloc((ns + 1) * sizeof *t), s = 0;
    uint64_t *id = malloc((ns + 1) * sizeof *id);
    assert_int_equal(sb_spk_read(f, (size_t)p, 0, ns, t, id), SB_OK);
    for (size_t i = 0; i < ns; i++) s += t[i];
    check_rel(s, tsum, 1e-9, "%s %s sum of spike times (ms)", file, pop);  /* summation order */
    free(t);
    free(id);
    sb_stats_opts o;
    sb_stats_opts_default(&o);
    sb_stats_summary *sm;
    assert_int_equal(sb_stats_summarize(f, (size_t)p, &o, &sm), SB_OK);
    assert_int_equal(sm->n_neurons, nn);
    sb_stats_summary_free(sm);
    sb_spk_close(f);
    /* and through the command line */
    char out[16384];
    assert_int_equal(sb_test_run(out, sizeof out, "analyze '%s' --population %s", path, pop), 0);
    check_contains(out, pop);
    n_pops++;
  }
  fclose(in);
  /* every file in the directory is in the fixture */
  char dpath[1024];
  snprintf(dpath, sizeof dpath, "%s/data/spikes", shared);
  DIR *d = opendir(dpath);
  assert_non_null(d);
  int n_files = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.' || strstr(e->d_name, ".md")) continue;
    int found = 0;
    for (int i = 0; i < n_listed; i++) found |= !strcmp(listed[i], e->d_name);
    if (!found) fprintf(stderr, "%s not in tests/ref/shared_spike_counts.txt (rerun make_shared_counts.py)\n", e->d_name);
    assert_true(found);
    n_files++;
  }
  closedir(d);
  assert_true(n_files >= 8 && n_pops >= 9);
}

/* The SONATA example's nodes file gives the 27 silent neurons of its spike file. */
static void test_shared_nodes_file(void **state) {
  (void)state;
  const char *shared = sb_test_shared();
  if (!shared) skip();
  static char out[1 << 20];
  assert_int_equal(sb_test_run(out, sizeof out,
                               "analyze %s/data/spikes/sonata_300_intfire_output_spikes.h5 --json --nodes "
                               "%s/data/spikes/sonata_300_intfire_network_v1_nodes.h5", shared, shared), 0);
  json_error_t err;
  json_t *j = json_loads(out, 0, &err);
  assert_non_null(j);
  json_t *p = json_array_get(json_object_get(j, "populations"), 0);
  assert_int_equal(json_integer_value(json_object_get(p, "n_neurons")), 300);
  double t_stop = json_real_value(json_object_get(p, "t_stop_ms"));
  check_rel(json_real_value(json_object_get(p, "mean_rate_hz")), 1000.0 * 4322 / 300 / t_stop, 1e-12,
            "mean rate over all 300 nodes, silent ones included");
  json_decref(j);
  assert_int_equal(sb_test_run(out, sizeof out,
                               "analyze %s/data/spikes/sonata_300_intfire_output_spikes.h5 --nodes "
                               "%s/data/spikes/sonata_9_cells_output_spikes.h5", shared, shared), 2);
  check_contains(out, "--nodes: expected a SONATA nodes file");
}

/* ---- SONATA variants ---- */

static void test_sonata_variants(void **state) {
  (void)state;
  const char *path = tmpfile_path("variants.h5");
  hid_t f = h5new(path);
  const double ts[5] = {0.5, 0.25, 1.5, 0.75, 2.0};   /* seconds, exact in float32 */
  const int64_t ids[5] = {7, 3, 7, 3, 100000};
  sonata_pop(f, "exc", H5T_IEEE_F32LE, ts, 5, H5T_STD_I32LE, ids, 5, "s", "none");
  sonata_pop(f, "inh", H5T_IEEE_F64LE, ts, 0, H5T_STD_U16LE, ids, 0, "ms", "by_time");
  const double tb[4] = {1.0, 2.0, 3.5, 0.5};
  const int64_t ib[4] = {1, 2, 1, 255};
  sonata_pop(f, "bg", H5T_IEEE_F64BE, tb, 4, H5T_STD_U8LE, ib, 4, "milliseconds", NULL);
  H5Fclose(f);

  sb_spk_file *sf;
  assert_int_equal(sb_spk_open(path, &sf), SB_OK);
  assert_int_equal(sb_spk_file_kind(sf), SB_SPK_SONATA);
  assert_int_equal(sb_spk_n_pops(sf), 3);
  long e = sb_spk_find_pop(sf, "exc"), i = sb_spk_find_pop(sf, "inh"), b = sb_spk_find_pop(sf, "bg");
  assert_true(e >= 0 && i >= 0 && b >= 0);
  assert_int_equal(sb_spk_pop(sf, (size_t)e)->sorting, SB_SORT_NONE);
  assert_int_equal(sb_spk_pop(sf, (size_t)b)->sorting, SB_SORT_UNKNOWN);
  double t[5];
  uint64_t id[5];
  assert_int_equal(sb_spk_read(sf, (size_t)e, 1, 4, t, id), SB_OK);   /* a window inside */
  for (int k = 0; k < 4; k++) {
    check_abs(t[k], ts[k + 1] * 1000.0, 0, "exc time %d in ms (float32 seconds)", k);
    assert_int_equal(id[k], (uint64_t)ids[k + 1]);
  }
  assert_int_equal(sb_spk_read(sf, (size_t)b, 0, 4, t, id), SB_OK);
  assert_int_equal(id[3], 255);
  check_abs(t[2], 3.5, 0, "big-endian float64 read");
  assert_int_equal(sb_spk_read(sf, (size_t)e, 3, 5, t, id), SB_EINVAL);   /* past the end */
  /* statistics of the unsorted, seconds-based population; and of the empty one */
  sb_stats_opts o;
  sb_stats_opts_default(&o);
  sb_stats_summary *s;
  assert_int_equal(sb_stats_summarize(sf, (size_t)e, &o, &s), SB_OK);
  assert_int_equal(s->n_neurons, 3);
  check_abs(s->t_stop, 2000.0, 0, "default t_stop = last spike");
  assert_int_equal(s->neurons[0].id, 3);
  assert_int_equal(s->neurons[2].id, 100000);
  check_rel(s->neurons[0].rate, 1.0, 1e-15, "2 spikes in 2 s");
  assert_true(isnan(s->neurons[0].cv));
  sb_stats_summary_free(s);
  assert_int_equal(sb_stats_summarize(sf, (size_t)i, &o, &s), SB_OK);
  assert_int_equal(s->n_neurons, 0);
  assert_int_equal(s->n_spikes, 0);
  assert_true(isnan(s->mean_cv) && isnan(s->chi));
  sb_stats_summary_free(s);
  /* t_start/t_stop honoured */
  o.t_start = 400;
  o.t_stop = 1000;
  assert_int_equal(sb_stats_summarize(sf, (size_t)e, &o, &s), SB_OK);
  assert_int_equal(s->n_spikes, 2);   /* 500 and 750 ms */
  sb_stats_summary_free(s);
  sb_spk_close(sf);

  /* legacy layout: /spikes/gids + /spikes/timestamps, int64 gids, no units (ms) */
  path = tmpfile_path("legacy.h5");
  f = h5new(path);
  hid_t g = sb_h5_group(f, "spikes");
  write_ds(g, "timestamps", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, tb, 4);
  write_ds(g, "gids", H5T_STD_I64LE, H5T_NATIVE_INT64, ib, 4);
  assert_int_equal(sb_h5_attr_write_string(g, "sorting", "by_gid"), SB_OK);
  H5Gclose(g);
  H5Fclose(f);
  assert_int_equal(sb_spk_open(path, &sf), SB_OK);
  assert_int_equal(sb_spk_file_kind(sf), SB_SPK_SONATA_LEGACY);
  assert_string_equal(sb_spk_pop(sf, 0)->name, "default");
  assert_int_equal(sb_spk_pop(sf, 0)->sorting, SB_SORT_BY_ID);
  assert_int_equal(sb_spk_read(sf, 0, 0, 4, t, id), SB_OK);
  check_abs(t[3], 0.5, 0, "legacy time in ms");
  uint64_t *nodes = NULL;
  size_t nn = 0;
  assert_int_equal(sb_spk_node_ids(sf, 0, &nodes, &nn), SB_EINVAL);   /* spike files list no nodes */
  check_contains(sb_last_error(), "lists no nodes");
  sb_spk_close(sf);

  /* nodes files: with node_id, and without it (ids 0..n-1 from the node_type_id length) */
  path = tmpfile_path("nodes.h5");
  f = h5new(path);
  const int64_t nid[4] = {2, 5, 9, 11}, ntype[3] = {100, 100, 101};
  g = sb_h5_group(f, "nodes/exc");
  write_ds(g, "node_id", H5T_STD_U32LE, H5T_NATIVE_INT64, nid, 4);
  H5Gclose(g);
  g = sb_h5_group(f, "nodes/inh");
  write_ds(g, "node_type_id", H5T_STD_U64LE, H5T_NATIVE_INT64, ntype, 3);
  H5Gclose(g);
  H5Fclose(f);
  assert_int_equal(sb_spk_open(path, &sf), SB_OK);
  assert_int_equal(sb_spk_file_kind(sf), SB_SPK_SONATA_NODES);
  long ex = sb_spk_find_pop(sf, "exc"), in = sb_spk_find_pop(sf, "inh");
  assert_int_equal(sb_spk_pop(sf, (size_t)ex)->n_spikes, 0);
  assert_int_equal(sb_spk_node_ids(sf, (size_t)ex, &nodes, &nn), SB_OK);
  assert_int_equal(nn, 4);
  assert_int_equal(nodes[3], 11);
  sb_free(nodes);
  assert_int_equal(sb_spk_node_ids(sf, (size_t)in, &nodes, &nn), SB_OK);
  assert_int_equal(nn, 3);
  assert_int_equal(nodes[2], 2);
  /* silent neurons in a summary: spikes of ids 3, 7 and 100000 (the "exc" file above). Nodes
   * 0..2 alone do not list them: refused (they counted as extra neurons) */
  sb_spk_file *spk;
  assert_int_equal(sb_spk_open(tmpfile_path("variants.h5"), &spk), SB_OK);
  sb_stats_opts_default(&o);
  o.node_ids = nodes;
  o.n_node_ids = nn;
  assert_int_equal(sb_stats_summarize(spk, (size_t)sb_spk_find_pop(spk, "exc"), &o, &s), SB_EFORMAT);
  check_contains(sb_last_error(), "variants.h5: population exc: spike 0 has node id ");
  check_contains(sb_last_error(), "which the 3 node ids given for the population (--nodes) do not include");
  const uint64_t listed[6] = {0, 1, 2, 3, 7, 100000};
  o.node_ids = listed;
  o.n_node_ids = 6;
  assert_int_equal(sb_stats_summarize(spk, (size_t)sb_spk_find_pop(spk, "exc"), &o, &s), SB_OK);
  assert_int_equal(s->n_neurons, 6);   /* 0, 1, 2 silent; 3, 7, 100000 spiking */
  assert_int_equal(s->neurons[1].id, 1);
  assert_int_equal(s->neurons[1].n, 0);
  check_abs(s->neurons[1].rate, 0.0, 0, "silent neuron rate");
  assert_true(isnan(s->neurons[1].fano));
  check_rel(s->mean_rate, 1000.0 * 5 / 6 / 2000.0, 1e-15, "mean rate with silent neurons");
  sb_stats_summary_free(s);
  sb_free(nodes);
  sb_spk_close(spk);
  sb_spk_close(sf);
}

static void test_nwb_units(void **state) {
  (void)state;
  const char *path = tmpfile_path("units.nwb");
  hid_t f = h5new(path);
  hid_t u = sb_h5_group(f, "units");
  const double st[5] = {0.1, 0.2, 0.05, 0.15, 0.3};   /* seconds */
  const int64_t idx[3] = {2, 2, 5}, uid[3] = {10, 11, 12};
  write_ds(u, "spike_times", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, st, 5);
  write_ds(u, "spike_times_index", H5T_STD_I32LE, H5T_NATIVE_INT64, idx, 3);
  write_ds(u, "id", H5T_STD_I32LE, H5T_NATIVE_INT64, uid, 3);
  H5Gclose(u);
  H5Fclose(f);
  sb_spk_file *sf;
  assert_int_equal(sb_spk_open(path, &sf), SB_OK);
  assert_int_equal(sb_spk_file_kind(sf), SB_SPK_NWB_UNITS);
  const sb_spk_pop_info *pi = sb_spk_pop(sf, 0);
  assert_int_equal(pi->n_spikes, 5);
  assert_int_equal(pi->n_nodes, 3);
  double t[5];
  uint64_t id[5];
  assert_int_equal(sb_spk_read(sf, 0, 1, 3, t, id), SB_OK);   /* window starting inside unit 10 */
  assert_int_equal(id[0], 10);
  assert_int_equal(id[1], 12);   /* unit 11 has no spikes */
  assert_int_equal(id[2], 12);
  check_rel(t[0], 200.0, 1e-15, "NWB seconds -> ms");
  sb_spk_close(sf);
}

static void test_nest_text(void **state) {
  (void)state;
  const char *gdf = tmpfile_path("spikes-12-0.gdf");
  write_text(gdf, "1\t12.5\n2\t13.0\n1\t20.25\n\n1 31.5\n");
  sb_spk_file *sf;
  assert_int_equal(sb_spk_open(gdf, &sf), SB_OK);
  assert_int_equal(sb_spk_file_kind(sf), SB_SPK_NEST_TEXT);
  assert_string_equal(sb_spk_pop(sf, 0)->name, "spikes-12-0");
  assert_int_equal(sb_spk_pop(sf, 0)->n_spikes, 4);
  double t[4];
  uint64_t id[4];
  assert_int_equal(sb_spk_read(sf, 0, 0, 4, t, id), SB_OK);
  check_abs(t[2], 20.25, 0, "gdf time");
  assert_int_equal(id[1], 2);
  sb_spk_close(sf);
  /* NEST 3 ASCII backend: the column names sit in a comment ("# sender\ttime_ms"); here in
   * the other order to check that the names, not the positions, are used */
  const char *dat = tmpfile_path("spike_recorder-7-0.dat");
  write_text(dat, "# NEST version: 3.4\n# RecordingBackendASCII\n# Recorder label: spike_recorder\n"
                  "# time_ms\tsender\n5.000\t3\n7.500\t4\n");
  assert_int_equal(sb_spk_open(dat, &sf), SB_OK);
  assert_int_equal(sb_spk_read(sf, 0, 0, 2, t, id), SB_OK);
  check_abs(t[1], 7.5, 0, "NEST 3 time_ms column");
  assert_int_equal(id[1], 4);
  sb_spk_close(sf);
  /* plain header line without '#' */
  write_text(dat, "sender time_ms\n3 5.0\n");
  assert_int_equal(sb_spk_open(dat, &sf), SB_OK);
  assert_int_equal(sb_spk_pop(sf, 0)->n_spikes, 1);
  sb_spk_close(sf);
  /* times in steps are refused with a reason */
  write_text(dat, "# sender\ttime_step\ttime_offset\n3\t50\t0.0\n");
  assert_int_equal(sb_spk_open(dat, &sf), SB_EFORMAT);
  check_contains(sb_last_error(), "time_in_steps");
}

/* ---- bad input: exit 2 with the file, the field and what was expected ---- */

static void bad_cli(const char *path, const char *args, int want_rc, const char *want_msg) {
  char out[8192];
  int rc = sb_test_run(out, sizeof out, "analyze '%s' %s", path, args);
  if (rc != want_rc) fprintf(stderr, "analyze %s %s: exit %d, want %d; output:\n%s\n", path, args, rc, want_rc, out);
  assert_int_equal(rc, want_rc);
  check_contains(out, want_msg);
}

static void test_bad_files_exit_2(void **state) {
  (void)state;
  const char *p = tmpfile_path("garbage.h5");
  write_text(p, "this is not HDF5\n");
  bad_cli(p, "", 2, "not an HDF5 file");
  p = tmpfile_path("binary.dat");
  FILE *fb = fopen(p, "wb");
  fwrite("\x01\x02\x00\xff", 1, 4, fb);
  fclose(fb);
  bad_cli(p, "", 2, "not an HDF5 file (nor a NEST text");

  const double t3[3] = {1, 2, 3}, tneg[3] = {1, -1, 3}, tnan[3] = {1, NAN, 3};
  const int64_t i3[3] = {0, 1, 2}, i2[2] = {0, 1}, ineg[3] = {0, -4, 1};
  p = tmpfile_path("missing.h5");
  hid_t f = h5new(p);
  sonata_pop(f, "exc", H5T_IEEE_F64LE, t3, 3, 0, NULL, 0, "ms", NULL);
  H5Fclose(f);
  bad_cli(p, "", 2, "/spikes/exc/node_ids: missing dataset");

  p = tmpfile_path("mismatch.h5");
  f = h5new(p);
  sonata_pop(f, "exc", H5T_IEEE_F64LE, t3, 3, H5T_STD_U64LE, i2, 2, "ms", NULL);
  H5Fclose(f);
  bad_cli(p, "", 2, "/spikes/exc/node_ids: length 2 differs from /spikes/exc/timestamps (3)");

  p = tmpfile_path("negative.h5");
  f = h5new(p);
  sonata_pop(f, "exc", H5T_IEEE_F64LE, tneg, 3, H5T_STD_U64LE, i3, 3, "ms", NULL);
  H5Fclose(f);
  bad_cli(p, "", 2, "/spikes/exc/timestamps[1]: spike time must be finite and >= 0 (got -1)");

  p = tmpfile_path("nan.h5");
  f = h5new(p);
  sonata_pop(f, "exc", H5T_IEEE_F64LE, tnan, 3, H5T_STD_U64LE, i3, 3, "ms", NULL);
  H5Fclose(f);
  bad_cli(p, "", 2, "/spikes/exc/timestamps[1]: spike time must be finite and >= 0 (got nan)");

  p = tmpfile_path("negid.h5");
  f = h5new(p);
  sonata_pop(f, "exc", H5T_IEEE_F64LE, t3, 3, H5T_STD_I16LE, ineg, 3, "ms", NULL);
  H5Fclose(f);
  bad_cli(p, "", 2, "/spikes/exc/node_ids[1]: must be >= 0 (got -4)");

  p = tmpfile_path("units.h5");
  f = h5new(p);
  sonata_pop(f, "exc", H5T_IEEE_F64LE, t3, 3, H5T_STD_U64LE, i3, 3, "fortnights", NULL);
  H5Fclose(f);
  bad_cli(p, "", 2, "unknown time units 'fortnights'");

  p = tmpfile_path("floatids.h5");
  f = h5new(p);
  hid_t g = sb_h5_group(f, "spikes/exc");
  write_ds(g, "timestamps", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, t3, 3);
  write_ds(g, "node_ids", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, t3, 3);
  H5Gclose(g);
  H5Fclose(f);
  bad_cli(p, "", 2, "/spikes/exc/node_ids: expected integers");

  p = tmpfile_path("nospikes.h5");
  f = h5new(p);
  H5Gclose(sb_h5_group(f, "something/else"));
  H5Fclose(f);
  bad_cli(p, "", 2, "no spikes found");

  p = tmpfile_path("badunits.nwb");
  f = h5new(p);
  hid_t u = sb_h5_group(f, "units");
  const int64_t bad_idx[2] = {2, 7};
  write_ds(u, "spike_times", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, t3, 3);
  write_ds(u, "spike_times_index", H5T_STD_I64LE, H5T_NATIVE_INT64, bad_idx, 2);
  H5Gclose(u);
  H5Fclose(f);
  bad_cli(p, "", 2, "/units/spike_times_index[1]: expected non-decreasing ends <= 3 (got 7)");

  p = tmpfile_path("bad.gdf");
  write_text(p, "1 2.5\n2 abc\n");
  bad_cli(p, "", 2, "bad.gdf:2: time: expected a number in ms (got 'abc')");

  /* a truncated HDF5 file (signature intact, the rest cut off) */
  p = tmpfile_path("truncated.h5");
  FILE *src = fopen("tests/ref/analysis_ref.h5", "rb"), *dst = fopen(p, "wb");
  char buf[3000];
  size_t got = fread(buf, 1, sizeof buf, src);
  fwrite(buf, 1, got, dst);
  fclose(src);
  fclose(dst);
  bad_cli(p, "", 2, "truncated.h5");

  bad_cli("/nonexistent/spikes.h5", "", 2, "/nonexistent/spikes.h5: no such file");
  bad_cli(".", "", 2, ": is a directory");
  /* bad options on a good file */
  bad_cli("tests/ref/analysis_ref.h5", "--bin 0", 2, "--bin: must be > 0");
  bad_cli("tests/ref/analysis_ref.h5", "--t-start 50 --t-stop 10", 2, "--t-stop: must be > --t-start");
  bad_cli("tests/ref/analysis_ref.h5", "--population nope", 2, "no population 'nope' (have: mislabelled mixed shuffled)");
  bad_cli("tests/ref/analysis_ref.h5", "--bin abc", 2, "--bin: expected a finite decimal number");
}

/* ---- output: table, JSON, figures ---- */

static void test_cli_table_json_plots(void **state) {
  (void)state;
  static char out[1 << 20];
  assert_int_equal(sb_test_run(out, sizeof out, "analyze tests/ref/analysis_ref.h5 --t-stop 1000 --bin 7"), 0);
  check_contains(out, "SONATA spikes, 3 populations");
  check_contains(out, "population       spikes  neurons");
  check_contains(out, "mixed");
  check_contains(out, "CV/CV2/LV undefined (nan) for 2 neuron(s): fewer than 3 spikes");

  assert_int_equal(sb_test_run(out, sizeof out, "analyze tests/ref/analysis_ref.h5 --population mixed --json --t-start 0 --t-stop 1000 --bin 7"), 0);
  json_error_t err;
  json_t *j = json_loads(out, 0, &err);
  if (!j) fprintf(stderr, "JSON: %s at line %d\n%s\n", err.text, err.line, out);
  assert_non_null(j);
  json_t *p = json_array_get(json_object_get(j, "populations"), 0);
  assert_non_null(p);
  assert_int_equal(json_integer_value(json_object_get(p, "n_neurons")), 7);
  assert_int_equal(json_integer_value(json_object_get(p, "n_spikes")), 137);
  assert_int_equal(json_array_size(json_object_get(p, "psth_rate_hz")), 142);
  /* mean CV over the 5 defined neurons, from the fixture's per-neuron values */
  hid_t f;
  assert_int_equal(sb_h5_open_read("tests/ref/analysis_ref.h5", &f), SB_OK);
  double *cv = NULL;
  size_t n = 0;
  assert_int_equal(sb_h5_read(f, "ref/cv", H5T_NATIVE_DOUBLE, (void **)&cv, &n, NULL, NULL, 0), SB_OK);
  H5Fclose(f);
  double s = 0;
  int c = 0;
  for (size_t i = 0; i < n; i++) if (!isnan(cv[i])) { s += cv[i]; c++; }
  sb_free(cv);
  json_t *jcv = json_object_get(p, "cv");
  check_rel(json_real_value(json_object_get(jcv, "mean")), s / c, 1e-9, "JSON mean CV");
  assert_int_equal(json_integer_value(json_object_get(jcv, "n_undefined")), 2);
  json_t *n20 = json_array_get(json_object_get(p, "neurons"), 4);
  assert_int_equal(json_integer_value(json_object_get(n20, "id")), 20);
  assert_true(json_is_null(json_object_get(n20, "cv")));
  check_contains(json_string_value(json_object_get(n20, "why_cv_nan")), "fewer than 3 spikes");
  check_contains(json_string_value(json_object_get(json_object_get(p, "synchrony"), "measure")), "golomb_chi");
  json_decref(j);

  /* t_start/t_stop: spikes counted inside the window only */
  assert_int_equal(sb_test_run(out, sizeof out, "analyze tests/ref/analysis_ref.h5 --population mixed --json --t-start 100 --t-stop 500"), 0);
  j = json_loads(out, 0, &err);
  assert_non_null(j);
  p = json_array_get(json_object_get(j, "populations"), 0);
  sb_spk_file *sf;
  assert_int_equal(sb_spk_open("tests/ref/analysis_ref.h5", &sf), SB_OK);
  size_t ns = sb_spk_pop(sf, 0)->n_spikes, inside = 0;
  double *t = malloc(ns * sizeof *t);
  assert_int_equal(sb_spk_read(sf, 0, 0, ns, t, NULL), SB_OK);
  for (size_t i = 0; i < ns; i++) inside += t[i] >= 100 && t[i] <= 500;
  free(t);
  sb_spk_close(sf);
  assert_int_equal(json_integer_value(json_object_get(p, "n_spikes")), inside);
  json_decref(j);

  /* figures: four PNGs per population, nothing left under temporary names */
  char dir[512];
  snprintf(dir, sizeof dir, "%s/figs", sb_test_tmpdir());
  assert_int_equal(sb_test_run(out, sizeof out, "analyze tests/ref/analysis_ref.h5 --plot %s", dir), 0);
  const char *pops[3] = {"mislabelled", "mixed", "shuffled"}, *kinds[4] = {"raster", "rate", "isi", "cv"};
  for (int a = 0; a < 3; a++)
    for (int k = 0; k < 4; k++) {
      char png[1024];
      snprintf(png, sizeof png, "%s/%s_%s.png", dir, pops[a], kinds[k]);
      FILE *pf = fopen(png, "rb");
      if (!pf) fprintf(stderr, "missing %s\n", png);
      assert_non_null(pf);
      unsigned char sig[8] = {0};
      assert_int_equal(fread(sig, 1, 8, pf), 8);
      fseek(pf, 0, SEEK_END);
      long size = ftell(pf);
      fclose(pf);
      assert_memory_equal(sig, "\x89PNG\r\n\x1a\n", 8);
      assert_true(size > 5000);
    }
  DIR *d = opendir(dir);
  for (struct dirent *e; (e = readdir(d));) assert_null(strstr(e->d_name, ".tmp."));
  closedir(d);
}

/* Our own run output: a silent population and a silent tail. analyze takes the population
 * sizes (attribute n_nodes) and the run's t_stop from the file, so rates are spikes / (n T)
 * over all neurons and the whole run, as the run's own summary says. */
static void test_own_run_output(void **state) {
  (void)state;
  static char out[1 << 16];
  char model[600], h5[600];
  snprintf(model, sizeof model, "%s/silent.json", sb_test_tmpdir());
  snprintf(h5, sizeof h5, "%s/silent.h5", sb_test_tmpdir());
  FILE *f = fopen(model, "w");
  assert_non_null(f);
  fputs("{\"simulation\": {\"t_stop\": 100, \"seed\": 1}, \"populations\": {\"a\": {\"model\": \"iaf_psc_delta\", "
        "\"n\": 10, \"params\": {\"I_e\": 500.0}}, \"b\": {\"model\": \"iaf_psc_delta\", \"n\": 5}}}", f);
  fclose(f);
  assert_int_equal(sb_test_run(out, sizeof out, "run %s -o %s --quiet", model, h5), 0);
  assert_int_equal(sb_test_run(out, sizeof out, "analyze %s --json", h5), 0);
  json_error_t err;
  json_t *j = json_loads(out, 0, &err);
  assert_non_null(j);
  json_t *pa = json_array_get(json_object_get(j, "populations"), 0), *pb = json_array_get(json_object_get(j, "populations"), 1);
  assert_string_equal(json_string_value(json_object_get(pa, "population")), "a");
  assert_int_equal(json_integer_value(json_object_get(pa, "n_neurons")), 10);
  assert_int_equal(json_integer_value(json_object_get(pb, "n_neurons")), 5);
  check_abs(json_real_value(json_object_get(pa, "t_stop_ms")), 100.0, 0.0, "t_stop from the run");
  double n_a = (double)json_integer_value(json_object_get(pa, "n_spikes"));
  assert_true(n_a >= 10);
  check_rel(json_real_value(json_object_get(pa, "population_rate_hz")), n_a / 10.0 / 0.1, 1e-12, "rate over 10 neurons, 100 ms");
  check_abs(json_real_value(json_object_get(pb, "mean_rate_hz")), 0.0, 0.0, "silent population");
  json_decref(j);
  /* a checkpoint's window ends at its checkpoint time (50 ms), not at its t_stop (100) */
  assert_int_equal(sb_test_run(out, sizeof out, "run %s -o %s --quiet --checkpoint-every 50", model, h5), 0);
  char ck[700];
  snprintf(ck, sizeof ck, "%s/silent.ckpt.h5", sb_test_tmpdir());
  assert_int_equal(sb_test_run(out, sizeof out, "analyze %s", ck), 0);
  check_contains(out, "a: window [0, 50] ms (end of the recording, from the file)");
  /* an explicit --t-stop still wins */
  assert_int_equal(sb_test_run(out, sizeof out, "analyze %s --t-stop 50", h5), 0);
  check_contains(out, "window [0, 50] ms, bin");
}

/* Ids that would merge or invent neurons: an NWB spike_times_index of -1 (HDF5's conversion
 * clamped it to 0 and merged two units), duplicate unit ids, a node id beyond 2^63 - 1 (printed
 * as -1 in JSON), a negative id in a --nodes file (the message printed freed memory), spike ids
 * a --nodes file does not list (counted as extra neurons, with a note saying "all listed
 * nodes"). All exit 2 naming the file, dataset and index. */
static void test_id_checks(void **state) {
  (void)state;
  const double st[5] = {0.1, 0.2, 0.05, 0.15, 0.3};
  const int32_t neg_idx[3] = {-1, 2, 5}, idx[3] = {2, 3, 5};
  const int64_t uid[3] = {10, 11, 10};
  const char *p1 = tmpfile_path("neg_index.nwb");
  hid_t f = h5new(p1), u = sb_h5_group(f, "units");
  write_ds(u, "spike_times", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, st, 5);
  write_ds(u, "spike_times_index", H5T_STD_I32LE, H5T_NATIVE_INT32, neg_idx, 3);
  H5Gclose(u);
  H5Fclose(f);
  bad_cli(p1, "", 2, "neg_index.nwb: /units/spike_times_index[0]: must be >= 0 (got -1)");
  const char *p2 = tmpfile_path("dup_units.nwb");
  f = h5new(p2);
  u = sb_h5_group(f, "units");
  write_ds(u, "spike_times", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, st, 5);
  write_ds(u, "spike_times_index", H5T_STD_I32LE, H5T_NATIVE_INT32, idx, 3);
  write_ds(u, "id", H5T_STD_I64LE, H5T_NATIVE_INT64, uid, 3);
  H5Gclose(u);
  H5Fclose(f);
  bad_cli(p2, "", 2, "dup_units.nwb: /units/id[2]: id 10 appears twice (also at [0]); expected unique ids");
  /* SONATA spikes with ids {0, 3, 2^64 - 1}, and nodes files */
  const double t[3] = {1.0, 2.0, 3.0};
  const uint64_t big[3] = {0, 3, UINT64_MAX}, ok[3] = {0, 3, 5};
  const char *p3 = tmpfile_path("bigid.h5");
  f = h5new(p3);
  hid_t g = sb_h5_group(f, "spikes/p");
  write_ds(g, "timestamps", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, t, 3);
  write_ds(g, "node_ids", H5T_STD_U64LE, H5T_NATIVE_UINT64, big, 3);
  H5Gclose(g);
  H5Fclose(f);
  bad_cli(p3, "--json", 2, "bigid.h5: /spikes/p/node_ids[2]: 18446744073709551615 is beyond 2^63 - 1");
  const char *p4 = tmpfile_path("okid.h5");
  f = h5new(p4);
  g = sb_h5_group(f, "spikes/p");
  write_ds(g, "timestamps", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, t, 3);
  write_ds(g, "node_ids", H5T_STD_U64LE, H5T_NATIVE_UINT64, ok, 3);
  H5Gclose(g);
  H5Fclose(f);
  const int64_t neg_nodes[3] = {-7, 0, 1}, even[4] = {0, 2, 4, 6}, all[6] = {0, 1, 2, 3, 4, 5};
  const char *n1 = tmpfile_path("negnodes.h5"), *n2 = tmpfile_path("evennodes.h5"), *n3 = tmpfile_path("allnodes.h5");
  const int64_t *lists[3] = {neg_nodes, even, all};
  const size_t lens[3] = {3, 4, 6};
  const char *paths[3] = {n1, n2, n3};
  for (int i = 0; i < 3; i++) {
    f = h5new(paths[i]);
    g = sb_h5_group(f, "nodes/p");
    write_ds(g, "node_id", H5T_STD_I64LE, H5T_NATIVE_INT64, lists[i], lens[i]);
    H5Gclose(g);
    H5Fclose(f);
  }
  char args[700];
  snprintf(args, sizeof args, "--nodes '%s'", n1);
  bad_cli(p4, args, 2, "negnodes.h5: /nodes/p/node_id[0]: must be >= 0 (got -7)");
  snprintf(args, sizeof args, "--nodes '%s'", n2);
  bad_cli(p4, args, 2, "okid.h5: population p: spike 1 has node id 3, which the 4 node ids given for the population "
                       "(--nodes) do not include");
  snprintf(args, sizeof args, "--nodes '%s' --json", n3);
  char out[8192];
  assert_int_equal(sb_test_run(out, sizeof out, "analyze '%s' %s", p4, args), 0);
  check_contains(out, "\"n_neurons\": 6");
  /* a population of 0 nodes is a list too: it was taken as "no list" (exit 0, the 3 ids seen) */
  const char *n4 = tmpfile_path("emptynodes.h5");
  f = h5new(n4);
  g = sb_h5_group(f, "nodes/p");
  write_ds(g, "node_id", H5T_STD_U64LE, H5T_NATIVE_UINT64, NULL, 0);
  H5Gclose(g);
  H5Fclose(f);
  snprintf(args, sizeof args, "--nodes '%s'", n4);
  bad_cli(p4, args, 2, "okid.h5: population p: spike 0 has node id 0, which the 0 node ids given for the population "
                       "(--nodes) do not include");
  /* also through the library: an empty list is not "no list" */
  sb_spk_file *sf = NULL;
  assert_int_equal(sb_spk_open(p4, &sf), SB_OK);
  sb_stats_opts o;
  sb_stats_opts_default(&o);
  uint64_t none = 0;
  o.node_ids = &none;
  o.n_node_ids = 0;
  sb_stats_summary *s = NULL;
  assert_int_equal(sb_stats_summarize(sf, 0, &o, &s), SB_EFORMAT);
  assert_null(s);
  check_contains(sb_last_error(), "spike 0 has node id 0, which the 0 node ids given");
  o.node_ids = NULL;   /* no list: the ids seen */
  assert_int_equal(sb_stats_summarize(sf, 0, &o, &s), SB_OK);
  assert_int_equal(s->n_neurons, 3);
  sb_stats_summary_free(s);
  sb_spk_close(sf);
}

/* Files that claim something their data contradicts, or that are not spike recordings, were
 * analysed with exit 0 and wrong numbers: a spikebridge file whose root t_stop (100 ms) lies
 * before its spikes (180 of 213 spikes dropped), a t_stop of NaN or text (ignored), a NEST 2
 * .gdf with times in steps (3 columns: rates 10x off), a NEST 3 multimeter file (10 kHz of
 * "spikes"), --t-start after the last spike (an empty window, nan). Now exit 2 naming the file,
 * the line or attribute, and what was expected; a byte order mark before a NEST header is read. */
static void test_file_claims(void **state) {
  (void)state;
  const double t[3] = {10.0, 250.0, 499.5};
  const uint64_t id[3] = {0, 1, 0};
  const char *p = tmpfile_path("claims.h5");
  const double claims[3] = {100.0, NAN, -5.0};
  const char *want[3] = {"claims.h5: population p has a spike at 499.5 ms, after the recording's end 100 ms",
                         "claims.h5: root attribute t_stop: nan is not a recording end; expected a finite time > 0 ms",
                         "claims.h5: root attribute t_stop: -5 is not a recording end"};
  for (int k = 3; k >= 0; k--) {   /* the last file claims 100 ms */
    hid_t f = h5new(p);
    assert_int_equal(sb_h5_attr_write_string(f, "spikebridge_version", "0.1.0"), SB_OK);
    if (k < 3) assert_int_equal(sb_h5_attr_write_doubles(f, "t_stop", &claims[k], 1), SB_OK);
    else assert_int_equal(sb_h5_attr_write_string(f, "t_stop", "abc"), SB_OK);
    hid_t g = sb_h5_group(f, "spikes/p");
    write_ds(g, "timestamps", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, t, 3);
    write_ds(g, "node_ids", H5T_STD_U64LE, H5T_NATIVE_UINT64, id, 3);
    H5Gclose(g);
    H5Fclose(f);
    bad_cli(p, "", 2, k < 3 ? want[k] : "claims.h5: root attribute t_stop: expected a number (ms), the recording's end");
  }
  /* with --t-stop the user overrides the claim */
  char out[8192];
  assert_int_equal(sb_test_run(out, sizeof out, "analyze '%s' --t-stop 600 --json", p), 0);
  check_contains(out, "\"n_spikes\": 3");
  /* a plain SONATA file: --t-start after the last spike */
  const char *q = tmpfile_path("plain.h5");
  hid_t f = h5new(q), g = sb_h5_group(f, "spikes/p");
  write_ds(g, "timestamps", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, t, 3);
  write_ds(g, "node_ids", H5T_STD_U64LE, H5T_NATIVE_UINT64, id, 3);
  H5Gclose(g);
  H5Fclose(f);
  bad_cli(q, "--t-start 600", 2, "plain.h5: population p: the window [600, 600] ms is empty: --t-start is at or after the "
                                 "last spike (499.5 ms)");
  /* sizes that are typos: 5e8 bins, a kernel of 2e9 points (it took 6.9 GB) */
  bad_cli(q, "--bin 1e-6", 2, "plain.h5: population p: --bin 1e-06 ms over [0, 499.5] ms gives 4.995e+08 bins (at most 1e8)");
  bad_cli(q, "--sigma 1e9", 2, "plain.h5: population p: --sigma 1e+09 ms over +-5 sigma gives a kernel of 2e+09 points");
  /* a population name too long for a figure's file name: PLplot exited the process ("Too many
   * tries. Program aborted", exit 1, no message of ours) */
  char longpop[300] = "spikes/";
  memset(longpop + 7, 'L', 250);
  longpop[257] = '\0';
  const char *lp = tmpfile_path("longpop.h5");
  f = h5new(lp);
  g = sb_h5_group(f, longpop);
  write_ds(g, "timestamps", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, t, 3);
  write_ds(g, "node_ids", H5T_STD_U64LE, H5T_NATIVE_UINT64, id, 3);
  H5Gclose(g);
  H5Fclose(f);
  char figs[600];
  snprintf(figs, sizeof figs, "--plot '%s/figs_long'", sb_test_tmpdir());
  bad_cli(lp, figs, 2, "(the population name is too long for a file name)");
  /* NaN reasons: neuron 0 with intervals 0, 0, 10 (CV2/LV nan), neuron 1 with four spikes at one
   * time (CV nan, its reason was empty and the table said "fewer than 3 spikes") */
  const double zt[8] = {10, 10, 10, 20, 50, 50, 50, 50};
  const uint64_t zid[8] = {0, 0, 0, 0, 1, 1, 1, 1};
  const char *zp = tmpfile_path("zero_isi.h5");
  f = h5new(zp);
  g = sb_h5_group(f, "spikes/p");
  write_ds(g, "timestamps", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, zt, 8);
  write_ds(g, "node_ids", H5T_STD_U64LE, H5T_NATIVE_UINT64, zid, 8);
  H5Gclose(g);
  H5Fclose(f);
  assert_int_equal(sb_test_run(out, sizeof out, "analyze '%s' --t-stop 100", zp), 0);
  check_contains(out, "p: CV/CV2/LV undefined (nan) for 1 neuron(s): all their intervals are 0 (coincident spikes)");
  check_contains(out, "p: CV2/LV undefined (nan) for 1 neuron(s): two consecutive intervals sum to 0 (coincident spikes)");
  assert_null(strstr(out, "fewer than 3 spikes"));
  /* NEST text that is not 'sender time_ms' */
  const char *g1 = tmpfile_path("steps-12-0.gdf"), *g2 = tmpfile_path("multimeter-13-0.dat");
  const char *g3 = tmpfile_path("bom-14-0.dat"), *g4 = tmpfile_path("neg-15-0.gdf");
  write_text(g1, "1\t25\t0.000000\n2\t40\t0.000000\n");
  write_text(g2, "# NEST version: 3.4\n# RecordingBackendASCII\n# sender\ttime_ms\tV_m\n1\t0.1\t-65.2\n");
  write_text(g3, "\xEF\xBB\xBF# sender\ttime_ms\n1\t2.5\n2\t3.5\n1\t7.5\n");
  write_text(g4, "1 2.5\n\n2 -3.5\n");
  bad_cli(g1, "", 2, "steps-12-0.gdf:1: expected 2 columns (sender, time in ms) (got 3): a file with times in steps");
  bad_cli(g2, "", 2, "multimeter-13-0.dat:3: header has the column 'V_m': a recording of state variables (multimeter)");
  bad_cli(g4, "", 2, "neg-15-0.gdf:3: time: expected a finite time >= 0 ms (got '-3.5')");
  assert_int_equal(sb_test_run(out, sizeof out, "analyze '%s' --json", g3), 0);
  check_contains(out, "\"n_spikes\": 3");
}

/* Messages about the window and the bin: --bin 1e308 blamed a --sigma the user never gave
 * ("--sigma inf ms ... a kernel of inf points"); a root t_stop of 1e300 gave
 * "9223372036854775807 bins" (size_t overflow); a root t_stop [300, 400] was accepted and its
 * first element used. */
static void test_window_bin_messages(void **state) {
  (void)state;
  const double t[3] = {10.0, 250.0, 299.5};
  const uint64_t id[3] = {0, 1, 0};
  const char *p = tmpfile_path("window.h5");
  const double ends[4] = {300.0, 1e300, 300.0, 400.0};
  for (int k = 0; k < 3; k++) {
    hid_t f = h5new(p);
    assert_int_equal(sb_h5_attr_write_string(f, "spikebridge_version", "0.1.0"), SB_OK);
    assert_int_equal(sb_h5_attr_write_doubles(f, "t_stop", &ends[k], k == 2 ? 2 : 1), SB_OK);
    hid_t g = sb_h5_group(f, "spikes/p");
    write_ds(g, "timestamps", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, t, 3);
    write_ds(g, "node_ids", H5T_STD_U64LE, H5T_NATIVE_UINT64, id, 3);
    H5Gclose(g);
    H5Fclose(f);
    char out[8192];
    if (k == 0) {   /* the window from the file, 300 ms: a bin wider than it has no full bin */
      assert_int_equal(sb_test_run(out, sizeof out, "analyze '%s' --bin 1e308", p), 2);
      check_contains(out, "window.h5: population p: --bin 1e+308 ms is wider than the window [0, 300] ms (300 ms): no "
                          "full bin");
      check_contains(out, "expected --bin <= 300 ms");
      assert_null(strstr(out, "sigma"));
      assert_int_equal(sb_test_run(out, sizeof out, "analyze '%s' --bin 300 --json", p), 0);   /* one bin is fine */
      check_contains(out, "\"bin_ms\": 300");
      assert_int_equal(sb_test_run(out, sizeof out, "analyze '%s' --t-stop 3 --bin 5", p), 2);
      check_contains(out, "window.h5: population p: --bin 5 ms is wider than the window [0, 3] ms (3 ms)");
    } else if (k == 1) {
      bad_cli(p, "", 2, "window.h5: population p: --bin 5 ms over [0, 1e+300] ms gives 2e+299 bins (at most 1e8)");
    } else {
      bad_cli(p, "", 2, "window.h5: root attribute t_stop: expected one number (ms), the recording's end; got 2 values");
    }
  }
  /* without a recorded end the window ends at the last spike (299.5 ms): a wider bin leaves the
   * binned measures nan with their reason (one population of several may be short), but a bin
   * whose default sigma (2 x bin) overflows is named as such */
  const char *q = tmpfile_path("window_plain.h5");
  hid_t f = h5new(q), g = sb_h5_group(f, "spikes/p");
  write_ds(g, "timestamps", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, t, 3);
  write_ds(g, "node_ids", H5T_STD_U64LE, H5T_NATIVE_UINT64, id, 3);
  H5Gclose(g);
  H5Fclose(f);
  char out[8192];
  assert_int_equal(sb_test_run(out, sizeof out, "analyze '%s' --bin 400 --json", q), 0);
  check_contains(out, "\"psth_rate_hz\": []");
  bad_cli(q, "--bin 1e308", 2, "window_plain.h5: population p: --bin 1e+308 ms: the default --sigma (2 x --bin) is not a "
                               "finite number; expected a smaller --bin (or give --sigma)");
  assert_int_equal(sb_test_run(out, sizeof out, "analyze '%s' --bin 1e308", q), 2);
  assert_null(strstr(out, "kernel"));
}

/* Entries of a directory other than . and .. (-1 when it does not exist). */
static int dir_entries(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  for (struct dirent *e; (e = readdir(d));)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  closedir(d);
  return n;
}


/* 1 if the file ends with the PNG IEND chunk. */
static int png_has_iend(const char *path) {
  static const unsigned char iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
  unsigned char tail[12];
  FILE *fp = fopen(path, "rb");
  if (!fp) return 0;
  int ok = fseek(fp, -12, SEEK_END) == 0 && fread(tail, 1, 12, fp) == 12 && !memcmp(tail, iend, 12);
  fclose(fp);
  return ok;
}

/* --plot failures leave nothing behind: a full disk (here a file size limit of 20 KiB) cut every
 * PNG at 20480 bytes, without its IEND chunk, and analyze exited 0; a population name too long
 * for a file name stopped the plots after the figures of the earlier populations were written;
 * two populations whose names map to the same file names overwrote each other. */
static void test_plot_failures(void **state) {
  (void)state;
  static char out[1 << 16];
  char dir[600];
  snprintf(dir, sizeof dir, "%s/figs_fsize", sb_test_tmpdir());
  int rc = sb_test_run_wrapped("trap '' XFSZ; ulimit -f 20;", out, sizeof out, "analyze tests/ref/analysis_ref.h5 --plot '%s'", dir);
  if (rc != 1) fprintf(stderr, "exit %d, output:\n%s\n", rc, out);
  assert_int_equal(rc, 1);
  /* (dash's ulimit -f counts 512-byte blocks, bash's 1024: 10240 or 20480 bytes) */
  check_contains(out, "figs_fsize/mislabelled_raster.png: cannot write figure: the PNG written is incomplete (");
  assert_true(strstr(out, "(10240 bytes, ") || strstr(out, "(20480 bytes, "));
  check_contains(out, " bytes, no IEND chunk): the file size limit (ulimit -f) was reached");
  assert_null(strstr(out, "population"));   /* no table after an error */
  assert_int_equal(dir_entries(dir), -1);   /* neither the final nor the temporary name, nor the new directory */
  /* without the limit: every figure whole (the check passes complete files) */
  assert_int_equal(sb_test_run(out, sizeof out, "analyze tests/ref/analysis_ref.h5 --plot '%s/'", dir), 0);
  check_contains(out, "figs_fsize/mixed_{raster,rate,isi,cv}.png");
  assert_int_equal(dir_entries(dir), 12);
  const char *pops[3] = {"mislabelled", "mixed", "shuffled"}, *what[4] = {"raster", "rate", "isi", "cv"};
  for (int i = 0; i < 3; i++)
    for (int k = 0; k < 4; k++) {
      char png[800];
      snprintf(png, sizeof png, "%s/%s_%s.png", dir, pops[i], what[k]);
      if (!png_has_iend(png)) fail_msg("%s: not a complete PNG", png);
    }

  /* populations 'a b', '..', 'x' * 240, 'é漢': the third name is too long with the temporary
   * suffix; checked before the first figure, so nothing is written */
  const double t[4] = {1.0, 2.0, 4.0, 7.0};
  const uint64_t id[4] = {0, 1, 0, 0};
  char longname[260];
  memset(longname, 'x', 240);
  longname[240] = '\0';
  const char *names[4] = {"a b", "..", longname, "\xc3\xa9\xe6\xbc\xa2"};
  const char *p = tmpfile_path("plotnames.h5");
  hid_t f = h5new(p);
  for (int i = 0; i < 4; i++) {
    char path[300];
    snprintf(path, sizeof path, "spikes/%s", names[i]);
    sonata_pop(f, names[i], 0, NULL, 0, 0, NULL, 0, NULL, NULL);
    hid_t g = H5Gopen2(f, path, H5P_DEFAULT);
    assert_true(g >= 0);
    write_ds(g, "timestamps", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, t, 4);
    write_ds(g, "node_ids", H5T_STD_U64LE, H5T_NATIVE_UINT64, id, 4);
    H5Gclose(g);
  }
  H5Fclose(f);
  char want[600];
  snprintf(want, sizeof want, "cannot create the figures of population %s there: File name too long (the population name "
                              "is too long for a file name)", longname);
  snprintf(dir, sizeof dir, "%s/P1", sb_test_tmpdir());
  assert_int_equal(sb_test_run(out, sizeof out, "analyze '%s' --plot '%s'", p, dir), 2);
  check_contains(out, want);
  assert_int_equal(dir_entries(dir), -1);   /* the directory it would have created is not left either */
  assert_int_equal(mkdir(dir, 0777), 0);
  assert_int_equal(sb_test_run(out, sizeof out, "analyze '%s' --plot '%s'", p, dir), 2);
  check_contains(out, want);
  assert_int_equal(dir_entries(dir), 0);    /* it held the figures of 'a b' and '..' */
  /* the others plot; a name with a space and one with an underscore instead would clash */
  assert_int_equal(sb_test_run(out, sizeof out, "analyze '%s' --plot '%s' --population '..'", p, dir), 0);
  assert_int_equal(dir_entries(dir), 4);
  const char *cp = tmpfile_path("plotclash.h5");
  f = h5new(cp);
  sonata_pop(f, "a b", H5T_IEEE_F64LE, t, 4, H5T_STD_I64LE, (const int64_t[]){0, 1, 0, 0}, 4, NULL, NULL);
  sonata_pop(f, "a_b", H5T_IEEE_F64LE, t, 4, H5T_STD_I64LE, (const int64_t[]){0, 1, 0, 0}, 4, NULL, NULL);
  H5Fclose(f);
  assert_int_equal(sb_test_run(out, sizeof out, "analyze '%s' --plot '%s'", cp, dir), 2);
  check_contains(out, "P1: populations 'a b' and 'a_b' would write the same figure files (");
  check_contains(out, "P1/a_b_raster.png and the like");
  assert_int_equal(dir_entries(dir), 4);    /* the earlier run's figures only */
  /* an error in a later population (a negative time in 'b', found while reading) left the
   * figures of 'a' behind: they are staged and renamed only when every population succeeded */
  const char *bp = tmpfile_path("plotlater.h5");
  f = h5new(bp);
  const double tb[4] = {1.0, 2.0, -4.0, 7.0};
  sonata_pop(f, "a", H5T_IEEE_F64LE, t, 4, H5T_STD_I64LE, (const int64_t[]){0, 1, 0, 0}, 4, NULL, NULL);
  sonata_pop(f, "b", H5T_IEEE_F64LE, tb, 4, H5T_STD_I64LE, (const int64_t[]){0, 1, 0, 0}, 4, NULL, NULL);
  H5Fclose(f);
  snprintf(dir, sizeof dir, "%s/P3", sb_test_tmpdir());
  assert_int_equal(sb_test_run(out, sizeof out, "analyze '%s' --plot '%s'", bp, dir), 2);
  check_contains(out, "plotlater.h5: /spikes/b/timestamps[2]");
  assert_int_equal(dir_entries(dir), -1);   /* the directory it created is removed too */
  assert_int_equal(mkdir(dir, 0777), 0);
  assert_int_equal(sb_test_run(out, sizeof out, "analyze '%s' --plot '%s'", bp, dir), 2);
  assert_int_equal(dir_entries(dir), 0);
  assert_int_equal(sb_test_run(out, sizeof out, "analyze '%s' --plot '%s' --population a", bp, dir), 0);
  assert_int_equal(dir_entries(dir), 4);
  for (int k = 0; k < 4; k++) {
    char png[800];
    snprintf(png, sizeof png, "%s/a_%s.png", dir, what[k]);
    if (!png_has_iend(png)) fail_msg("%s: not a complete PNG", png);
  }
}

int main(void) {
  sb_h5_quiet();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shared_files_match_h5py),
      cmocka_unit_test(test_shared_nodes_file),
      cmocka_unit_test(test_sonata_variants),
      cmocka_unit_test(test_nwb_units),
      cmocka_unit_test(test_id_checks),
      cmocka_unit_test(test_file_claims),
      cmocka_unit_test(test_window_bin_messages),
      cmocka_unit_test(test_plot_failures),
      cmocka_unit_test(test_nest_text),
      cmocka_unit_test(test_bad_files_exit_2),
      cmocka_unit_test(test_cli_table_json_plots),
      cmocka_unit_test(test_own_run_output),
  };
  return cmocka_run_group_tests_name("analysis_files", tests, NULL, NULL);
}
