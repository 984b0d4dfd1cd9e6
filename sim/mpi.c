/* MPI ranks for the engine (built with `make MPI=1`, which defines SB_MPI and compiles with
 * mpicc): rank queries, the per-window spike exchange (MPI_Allgatherv of every rank's spikes,
 * in rank order = neuron-id order) and the reductions that make counters global.
 * Without SB_MPI every function here is the 1-rank no-op, so the engine has one code path.
 * Not here: partitioning (a rank owns a contiguous block of the network's partitions, see
 * sb_net_alloc) and output (rank 0 writes, cli/cmd_run.c). */
#include "sim/internal.h"

#include <string.h>
#ifdef SB_MPI
#include <mpi.h>
#endif

static int net_split = 1;   /* 0: every network stays whole in its process (sweeps) */

void sb_mpi_set_split(int on) { net_split = on != 0; }

void sb_mpi_net_ranks_(int *rank, int *size) {
  *rank = net_split ? sb_mpi_rank() : 0;
  *size = net_split ? sb_mpi_size() : 1;
}

void sb_mpi_barrier(void) {
#ifdef SB_MPI
  if (sb_mpi_size() > 1) MPI_Barrier(MPI_COMM_WORLD);
#endif
}

void sb_mpi_sum_counts(uint64_t *v, int n) {
#ifdef SB_MPI
  if (sb_mpi_size() > 1) MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
#else
  (void)v;
  (void)n;
#endif
}

int sb_mpi_init(int *argc, char ***argv) {
#ifdef SB_MPI
  int init = 0;
  MPI_Initialized(&init);
  if (init) return SB_OK;
  int provided = 0;
  /* the exchange runs inside an OpenMP `single`, on any one thread at a time */
  if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
    SB_ERROR(SB_EMPI, "MPI_Init_thread failed");
  if (provided < MPI_THREAD_SERIALIZED) SB_ERROR(SB_EMPI, "MPI does not provide MPI_THREAD_SERIALIZED (got level %d)", provided);
#else
  (void)argc;
  (void)argv;
#endif
  return SB_OK;
}

void sb_mpi_finalize(void) {
#ifdef SB_MPI
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  if (init && !fin) MPI_Finalize();
#endif
}

int sb_mpi_rank(void) {
#ifdef SB_MPI
  int init = 0, r = 0;
  MPI_Initialized(&init);
  if (init) MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
#else
  return 0;
#endif
}

int sb_mpi_size(void) {
#ifdef SB_MPI
  int init = 0, n = 1;
  MPI_Initialized(&init);
  if (init) MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
#else
  return 1;
#endif
}

int sb_mpi_built(void) {
#ifdef SB_MPI
  return 1;
#else
  return 0;
#endif
}

/* gsp[0, local) holds this rank's spikes of the window; afterwards gsp[0, gsp_n) holds every
 * rank's, in rank order. Bytes per window: 16 per spike (double time + uint32 id + padding)
 * received by every rank, plus the counts (4 bytes per rank). */
int sb_mpi_exchange_spikes_(sb_net *net, size_t local) {
  net->gsp_n = local;
#ifdef SB_MPI
  if (net->nranks <= 1) return SB_OK;
  int R = net->nranks;
  if (!net->mpi_counts) {
    net->mpi_counts = sb_calloc((size_t)R, sizeof *net->mpi_counts);
    net->mpi_displs = sb_calloc((size_t)R, sizeof *net->mpi_displs);
    if (!net->mpi_counts || !net->mpi_displs) return SB_ENOMEM;
  }
  int mine = (int)(local * sizeof(sb_spike));
  if (MPI_Allgather(&mine, 1, MPI_INT, net->mpi_counts, 1, MPI_INT, MPI_COMM_WORLD) != MPI_SUCCESS)
    SB_ERROR(SB_EMPI, "MPI_Allgather of spike counts failed");
  size_t total = 0;
  for (int r = 0; r < R; r++) {
    net->mpi_displs[r] = (int)total;
    total += (size_t)net->mpi_counts[r];
  }
  size_t n = total / sizeof(sb_spike);
  if (n > net->gsp_cap) {
    sb_spike *g = sb_realloc(net->gsp, 2 * n * sizeof *g);
    if (!g) return SB_ENOMEM;
    net->gsp = g;
    net->gsp_cap = 2 * n;
  }
  sb_spike *tmp = sb_malloc(local * sizeof *tmp + 1);
  if (!tmp) return SB_ENOMEM;
  if (local) memcpy(tmp, net->gsp, local * sizeof *tmp);
  int rc = MPI_Allgatherv(tmp, mine, MPI_BYTE, net->gsp, net->mpi_counts, net->mpi_displs, MPI_BYTE, MPI_COMM_WORLD);
  sb_free(tmp);
  if (rc != MPI_SUCCESS) SB_ERROR(SB_EMPI, "MPI_Allgatherv of the window's spikes failed");
  net->gsp_n = n;
  net->mpi_bytes += total;
  net->mpi_windows++;
#endif
  return SB_OK;
}

void sb_mpi_sum_u64_(const sb_net *net, uint64_t *v, int n) {
#ifdef SB_MPI
  if (net->nranks > 1) MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
#else
  (void)net; (void)v; (void)n;
#endif
}

void sb_mpi_sum_double_(const sb_net *net, double *v, int n) {
#ifdef SB_MPI
  if (net->nranks > 1) MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
#else
  (void)net; (void)v; (void)n;
#endif
}

void sb_mpi_minmax_(const sb_net *net, double *mn, double *mx) {
#ifdef SB_MPI
  if (net->nranks > 1) {
    MPI_Allreduce(MPI_IN_PLACE, mn, 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, mx, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  }
#else
  (void)net; (void)mn; (void)mx;
#endif
}

int sb_mpi_merge_u32_root_(const sb_net *net, void *buf, size_t n) {
#ifdef SB_MPI
  if (net->nranks <= 1) return SB_OK;
  for (size_t at = 0; at < n;) {   /* MPI counts are int */
    int m = n - at > (size_t)1 << 30 ? 1 << 30 : (int)(n - at);
    uint32_t *p = (uint32_t *)buf + at;
    if (MPI_Reduce(net->rank == 0 ? MPI_IN_PLACE : p, p, m, MPI_UINT32_T, MPI_BOR, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
      SB_ERROR(SB_EMPI, "MPI_Reduce of recorded samples failed");
    at += (size_t)m;
  }
#else
  (void)net; (void)buf; (void)n;
#endif
  return SB_OK;
}

int sb_mpi_gather_root_(const sb_net *net, const void *mine, size_t bytes, void **all, size_t *counts) {
  *all = NULL;
  if (net->nranks <= 1) {
    if (!(*all = sb_malloc(bytes + 1))) return SB_ENOMEM;
    if (bytes) memcpy(*all, mine, bytes);
    counts[0] = bytes;
    return SB_OK;
  }
#ifdef SB_MPI
  int R = net->nranks, root = net->rank == 0;
  if (bytes > (size_t)INT32_MAX) SB_ERROR(SB_EMPI, "gather: %zu bytes on one rank exceed MPI's int count", bytes);
  int mine_n = (int)bytes, *cnt = NULL, *dsp = NULL;
  if (root) {
    cnt = sb_calloc((size_t)R, sizeof *cnt);
    dsp = sb_calloc((size_t)R, sizeof *dsp);
    if (!cnt || !dsp) { sb_free(cnt); sb_free(dsp); return SB_ENOMEM; }   /* the other ranks then fail in MPI */
  }
  if (MPI_Gather(&mine_n, 1, MPI_INT, cnt, 1, MPI_INT, 0, MPI_COMM_WORLD) != MPI_SUCCESS) {
    sb_free(cnt); sb_free(dsp);
    SB_ERROR(SB_EMPI, "MPI_Gather of byte counts failed");
  }
  size_t total = 0;
  for (int r = 0; root && r < R; r++) {
    dsp[r] = (int)total;
    counts[r] = (size_t)cnt[r];
    total += (size_t)cnt[r];
  }
  if (root && total > (size_t)INT32_MAX) { sb_free(cnt); sb_free(dsp); SB_ERROR(SB_EMPI, "gather: %zu bytes exceed MPI's int displacements", total); }
  if (root && !(*all = sb_malloc(total + 1))) { sb_free(cnt); sb_free(dsp); return SB_ENOMEM; }
  int rc = MPI_Gatherv(mine, mine_n, MPI_BYTE, *all, cnt, dsp, MPI_BYTE, 0, MPI_COMM_WORLD);
  sb_free(cnt);
  sb_free(dsp);
  if (rc != MPI_SUCCESS) { sb_free(*all); *all = NULL; SB_ERROR(SB_EMPI, "MPI_Gatherv failed"); }
  return SB_OK;
#else
  (void)mine; (void)counts;
  SB_ERROR(SB_EMPI, "gather over %d ranks without MPI", net->nranks);
#endif
}

void sb_net_mpi_stats(const sb_net *net, uint64_t *bytes, uint64_t *windows) {
  *bytes = net->mpi_bytes;
  *windows = net->mpi_windows;
}

int sb_net_rank(const sb_net *net) { return net->rank; }
int sb_net_ranks(const sb_net *net) { return net->nranks; }
