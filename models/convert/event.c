/* The event backend: a converted network run on the event-driven engine (sim/sim.h) with exact
 * spike times in continuous time. One if_subtract population per layer; dense and convolution
 * projections use the engine's dense and shared-kernel storage (kernels are never expanded);
 * avgpool is an explicit fixed-weight projection. The network is built once and reset per image;
 * only the first layer's input currents change between images.
 * Deliberately not here: maxpool gates (they need the count comparison of clocked.c). */
#include "models/ann/ann.h"
#include "models/convert/internal.h"
#include "sim/sim.h"

#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Synaptic targets of input neuron `i` (NCHW flat) of layer L. */
static double fanout(const sb_convert_layer *L, size_t i) {
  if (L->kind == SB_CONVERT_DENSE) return (double)sb_cl_out_size_(L);
  if (L->kind == SB_CONVERT_MAXPOOL) return 0;
  int HW = L->in_h * L->in_w, h = (int)(i % (size_t)HW) / L->in_w, x = (int)(i % (size_t)HW) % L->in_w;
  int K = L->k, S = L->stride, P = L->pad;
  int oh0 = h + P - K + 1 > 0 ? (h + P - K + 1 + S - 1) / S : 0, oh1 = (h + P) / S;
  int ow0 = x + P - K + 1 > 0 ? (x + P - K + 1 + S - 1) / S : 0, ow1 = (x + P) / S;
  if (oh1 >= L->out_h) oh1 = L->out_h - 1;
  if (ow1 >= L->out_w) ow1 = L->out_w - 1;
  double n = (double)(oh1 - oh0 + 1) * (double)(ow1 - ow0 + 1);
  if (n < 0) n = 0;
  return L->kind == SB_CONVERT_CONV ? n * L->out_c : n;
}

typedef struct {
  sb_net *net;
  int started;        /* a run happened: sb_net_reset restores the states set before it */
  int in_pop;         /* Poisson relay population or -1 */
  int *pop;           /* (n_layers) */
  double **fan;       /* (n_layers) fanout per input neuron */
} evnet;

static int build(evnet *E, const sb_convert_net *cn, const sb_convert_eval_opts *o) {
  int nl = cn->n_layers, rc;
  E->net = sb_net_alloc(o->seed, o->threads);
  E->pop = sb_calloc((size_t)nl, sizeof *E->pop);
  E->fan = sb_calloc((size_t)nl, sizeof *E->fan);
  E->in_pop = -1;
  if (!E->net || !E->pop || !E->fan) return SB_ENOMEM;
  if ((rc = sb_net_set_min_delay(E->net, o->delay))) return rc;
  size_t nin = (size_t)cn->in_c * (size_t)cn->in_h * (size_t)cn->in_w;
  if (o->coding == SB_CODING_POISSON) {
    /* relay: V_th = 1 and weight-1 Poisson input: every input spike is passed on at once */
    if ((rc = sb_net_add_population(E->net, "input", sb_neuron_if_subtract, nin, &E->in_pop))) return rc;
    sb_net_record_spikes(E->net, E->in_pop, 0);
  }
  for (int l = 0; l < nl; l++) {
    const sb_convert_layer *L = &cn->layers[l];
    if (L->kind == SB_CONVERT_MAXPOOL)
      SB_ERROR(SB_EUNSUPPORTED, "event backend: layer %d (%s): maxpool gates are supported by the clocked backend only "
               "(use --backend clocked)", l, L->name);
    size_t n = sb_cl_out_size_(L);
    if ((rc = sb_net_add_population(E->net, L->name, sb_neuron_if_subtract, n, &E->pop[l]))) return rc;
    int p = E->pop[l];
    if ((rc = sb_net_set_param(E->net, p, "V_th", L->spiking ? L->threshold : 1e300))) return rc;
    if ((rc = sb_net_set_param(E->net, p, "reset_mode", cn->reset_zero ? 1.0 : 0.0))) return rc;
    double *buf = sb_malloc(n * sizeof *buf);
    if (!buf) return SB_ENOMEM;
    if (L->b) {
      size_t hw = (size_t)L->out_h * (size_t)L->out_w;
      for (size_t i = 0; i < n; i++) buf[i] = L->b[i / hw];
      rc = sb_net_set_param_array(E->net, p, "I_e", buf);
    }
    double vi = o->v_init >= 0 ? o->v_init : cn->v_init;
    for (size_t i = 0; i < n && !rc; i++) buf[i] = sb_cl_v0_(L, vi, i, 0);
    if (!rc) rc = sb_net_set_state(E->net, p, "V_m", buf);
    sb_free(buf);
    if (rc) return rc;
    size_t ni = sb_cl_in_size_(L);
    if (!(E->fan[l] = sb_malloc(ni * sizeof(double)))) return SB_ENOMEM;
    for (size_t i = 0; i < ni; i++) E->fan[l][i] = fanout(L, i);
  }
  for (int l = 0; l < nl; l++) {   /* the engine wants every population before the projections */
    const sb_convert_layer *L = &cn->layers[l];
    int p = E->pop[l];
    int src = l ? E->pop[l - 1] : E->in_pop;
    if (src < 0) continue;   /* constant-current input: no projection into layer 0 */
    if (L->kind == SB_CONVERT_DENSE) {
      rc = sb_net_connect_dense(E->net, src, p, L->w, o->delay, NULL);
    } else if (L->kind == SB_CONVERT_CONV) {
      sb_net_conv_shape cs = {L->in_c, L->in_h, L->in_w, L->out_c, L->k, L->k, L->stride, L->pad};
      rc = sb_net_connect_conv(E->net, src, p, &cs, L->w, o->delay, NULL);
    } else {   /* avgpool: every input of a window -> the window's output, same channel */
      size_t ns = (size_t)L->out_c * (size_t)L->out_h * (size_t)L->out_w * (size_t)(L->k * L->k), m = 0;
      uint32_t *s = sb_malloc(ns * sizeof *s), *t = sb_malloc(ns * sizeof *t);
      if (!s || !t) {
        sb_free(s);
        sb_free(t);
        return SB_ENOMEM;
      }
      for (int c = 0; c < L->out_c; c++)
        for (int oh = 0; oh < L->out_h; oh++)
          for (int ow = 0; ow < L->out_w; ow++)
            for (int a = 0; a < L->k; a++)
              for (int b = 0; b < L->k; b++) {
                s[m] = (uint32_t)(((size_t)c * L->in_h + (size_t)(oh * L->stride + a)) * L->in_w + (size_t)(ow * L->stride + b));
                t[m++] = (uint32_t)(((size_t)c * L->out_h + (size_t)oh) * L->out_w + (size_t)ow);
              }
      sb_conn_spec conn = {0};
      conn.rule = SB_RULE_EXPLICIT;
      conn.n = m;
      conn.sources = s;
      conn.targets = t;
      conn.allow_autapses = conn.allow_multapses = 1;
      sb_syn_spec syn = {{SB_DIST_CONST, L->pool_w, 0, 0, 0}, {SB_DIST_CONST, o->delay, 0, 0, 0}, SB_RECEPTOR_SIGN};
      rc = sb_net_connect(E->net, src, p, &conn, &syn, NULL);
      sb_free(s);
      sb_free(t);
    }
    if (rc) return sb_error_prefix_(rc, "event backend: layer %d (%s)", l, L->name);
  }
  return SB_OK;
}

static void evnet_free(evnet *E, int nl) {
  sb_net_free(E->net);
  if (E->fan)
    for (int l = 0; l < nl; l++) sb_free(E->fan[l]);
  sb_free(E->fan);
  sb_free(E->pop);
}

/* One thread's share: its own engine network (1 thread) and buffers. */
typedef struct {
  evnet E;
  float *x, *z;
  double *I, *v;
  uint64_t *cnt;
  uint32_t *ids;
  uint64_t *correct;
  double *synops, *spikes, *lsyn;
} evwork;

static void evwork_free(evwork *w, int nl) {
  evnet_free(&w->E, nl);
  sb_free(w->x);
  sb_free(w->z);
  sb_free(w->I);
  sb_free(w->v);
  sb_free(w->cnt);
  sb_free(w->ids);
  sb_free(w->correct);
  sb_free(w->synops);
  sb_free(w->spikes);
  sb_free(w->lsyn);
}

static int run_image(evwork *w, const sb_convert_net *cn, const sb_convert_eval_opts *o, const sb_conv_shape *cs,
                     const uint8_t *image, int label, size_t img, sb_convert_result *res) {
  int steps = o->steps, nl = cn->n_layers, rc = SB_OK;
  const sb_convert_layer *L0 = &cn->layers[0];
  size_t nin = (size_t)cn->in_h * (size_t)cn->in_w, n0 = sb_cl_out_size_(L0), nout = sb_cl_out_size_(&cn->layers[nl - 1]);
  evnet *E = &w->E;
  for (size_t i = 0; i < nin; i++) w->x[i] = (float)image[i] / 255.0f;
  if (o->coding == SB_CODING_CURRENT) {   /* I_e of layer 0 = W x + b (NCHW, as the population) */
    if (E->net && (rc = sb_net_reset(E->net))) return rc;
    if (!E->net && (rc = build(E, cn, o))) return rc;
    if (L0->kind == SB_CONVERT_DENSE) sb_dense_forward(w->z, w->x, L0->w, L0->b, 1, (int)nin, (int)n0);
    else sb_conv2d_forward_naive(w->z, w->x, L0->w, L0->b, cs, 1);
    for (size_t i = 0; i < n0; i++) w->I[i] = w->z[i];
    if ((rc = sb_net_set_param_array(E->net, E->pop[0], "I_e", w->I))) return rc;
    if (!E->started) {   /* before the first run a parameter change re-initialises the state: set V0 again */
      const sb_convert_layer *F = &cn->layers[0];
      double vi = o->v_init >= 0 ? o->v_init : cn->v_init;
      for (size_t i = 0; i < n0; i++) w->I[i] = sb_cl_v0_(F, vi, i, 0);
      if ((rc = sb_net_set_state(E->net, E->pop[0], "V_m", w->I))) return rc;
    }
  } else {
    /* Poisson trains of rate x * 1000 Hz (x spikes per 1 ms step) into the relay population;
     * stimuli are part of the network, so this path rebuilds it per image */
    evnet_free(E, nl);
    memset(E, 0, sizeof *E);
    sb_convert_eval_opts oo = *o;
    oo.seed = sb_rng_mix64(o->seed ^ (uint64_t)img);
    if ((rc = build(E, cn, &oo))) return rc;
    for (size_t i = 0; i < nin && !rc; i++) {
      if (!(w->x[i] > 0)) continue;
      w->ids[0] = (uint32_t)i;
      rc = sb_net_add_poisson(E->net, E->in_pop, w->ids, 1, 1000.0 * w->x[i], 0, INFINITY, 1.0, o->delay);
    }
    if (rc) return rc;
  }
  int p = 0;
  double syn_prev = 0;
  E->started = 1;
  for (int t = 0; t < steps; t++) {
    if ((rc = sb_net_run(E->net, (double)(t + 1)))) return rc;
    if ((rc = sb_net_get_state(E->net, E->pop[nl - 1], "V_m", w->v))) return rc;
    if (cn->readout_spikes) {
      if ((rc = sb_net_spike_counts(E->net, E->pop[nl - 1], w->cnt))) return rc;
      p = 0;
      for (size_t i = 1; i < nout; i++)
        if (w->cnt[i] > w->cnt[p] || (w->cnt[i] == w->cnt[p] && w->v[i] > w->v[p])) p = (int)i;
    } else {
      p = sb_convert_argmax_d_(w->v, (int)nout);
    }
    w->correct[t] += p == label;
    /* synaptic operations so far: spikes of each source x its fanout */
    double syn = 0;
    for (int l = 1; l < nl; l++) {
      size_t ns = sb_cl_out_size_(&cn->layers[l - 1]);
      if ((rc = sb_net_spike_counts(E->net, E->pop[l - 1], w->cnt))) return rc;
      for (size_t i = 0; i < ns; i++) syn += (double)w->cnt[i] * E->fan[l][i];
    }
    if (E->in_pop >= 0) {
      if ((rc = sb_net_spike_counts(E->net, E->in_pop, w->cnt))) return rc;
      for (size_t i = 0; i < nin; i++) syn += (double)w->cnt[i] * E->fan[0][i];
    }
    w->synops[t] += syn - syn_prev;
    syn_prev = syn;
  }
  for (int l = 0; l < nl; l++) {
    size_t ns = sb_cl_out_size_(&cn->layers[l]);
    if ((rc = sb_net_spike_counts(E->net, E->pop[l], w->cnt))) return rc;
    double tot = 0, ls = 0;
    for (size_t i = 0; i < ns; i++) {
      tot += (double)w->cnt[i];
      if (l + 1 < nl) ls += (double)w->cnt[i] * E->fan[l + 1][i];
    }
    w->spikes[l] += tot;
    if (l + 1 < nl) w->lsyn[l + 1] += ls;
  }
  if (E->in_pop >= 0) {
    if ((rc = sb_net_spike_counts(E->net, E->in_pop, w->cnt))) return rc;
    for (size_t i = 0; i < nin; i++) w->lsyn[0] += (double)w->cnt[i] * E->fan[0][i];
  }
  res->pred[img] = (uint8_t)p;
  for (size_t r = 0; r < o->n_record; r++) {
    if (o->record[r] != img) continue;
    for (int l = 0; l < nl; l++) {
      const double *ts;
      const uint32_t *id;
      size_t ns;
      if ((rc = sb_net_spikes(E->net, E->pop[l], &ts, &id, &ns))) return rc;
      for (size_t k = 0; k < ns; k++)
        if ((rc = sb_convert_spikes_push_(&res->rec[r * (size_t)nl + (size_t)l], ts[k] + (double)r * steps, id[k])))
          return rc;
    }
  }
  return SB_OK;
}

int sb_convert_eval_event(const sb_convert_net *cn, const uint8_t *images, const uint8_t *labels, size_t n,
                          const sb_convert_eval_opts *o, sb_convert_result *res) {
  int steps = o->steps, nl = cn->n_layers;
  if (steps < 1) SB_ERROR(SB_EINVAL, "steps: must be >= 1 (got %d)", steps);
  if (cn->in_c != 1) SB_ERROR(SB_EINVAL, "input: expected 1 channel (got %d)", cn->in_c);
  for (int l = 0; l < nl; l++)
    if (cn->layers[l].kind == SB_CONVERT_MAXPOOL)
      SB_ERROR(SB_EUNSUPPORTED, "event backend: layer %d (%s): maxpool gates are supported by the clocked backend only "
               "(use --backend clocked)", l, cn->layers[l].name);
  int rc = sb_convert_result_init_(res, steps, nl, n, o->n_record);
  if (rc) return rc;
  double t0 = sb_wall_time();
  const sb_convert_layer *L0 = &cn->layers[0];
  size_t nin = (size_t)cn->in_h * (size_t)cn->in_w, n0 = sb_cl_out_size_(L0);
  size_t maxn = nin;
  for (int l = 0; l < nl; l++)
    if (sb_cl_out_size_(&cn->layers[l]) > maxn) maxn = sb_cl_out_size_(&cn->layers[l]);
  sb_conv_shape cs;
  memset(&cs, 0, sizeof cs);
  if (L0->kind == SB_CONVERT_CONV &&
      (rc = sb_conv_shape_init(&cs, L0->in_c, L0->in_h, L0->in_w, L0->out_c, L0->k, L0->stride, L0->pad))) {
    sb_convert_result_free(res);
    return rc;
  }
  if (o->coding == SB_CODING_CURRENT)
    res->input_macs = L0->kind == SB_CONVERT_CONV ? (double)n0 * L0->in_c * L0->k * L0->k : (double)n0 * (double)nin;
  /* images are independent: one single-threaded engine network per OpenMP thread (the engine's
   * own threads would synchronise every 0.1 ms window of a small network) */
  int nt = o->threads > 0 ? o->threads : 1;
#ifdef _OPENMP
  if (o->threads <= 0) nt = omp_get_max_threads();
#endif
  if ((size_t)nt > n) nt = (int)(n ? n : 1);
  evwork *ws = sb_calloc((size_t)nt, sizeof *ws);
  if (!ws) {
    sb_convert_result_free(res);
    return SB_ENOMEM;
  }
  sb_convert_eval_opts one = *o;
  one.threads = 1;
  int err = SB_OK;
  char msg[512] = "";
  size_t done_n = 0;
  sb_progress prog;
  sb_progress_init(&prog, stderr, sb_quiet);
#pragma omp parallel num_threads(nt)
  {
    int tid = 0;
#ifdef _OPENMP
    tid = omp_get_thread_num();
#endif
    evwork *w = &ws[tid];
    int e = SB_OK;
    w->x = sb_malloc(nin * sizeof *w->x);
    w->z = sb_malloc(n0 * sizeof *w->z);
    w->I = sb_malloc(n0 * sizeof *w->I);
    w->v = sb_malloc(maxn * sizeof *w->v);
    w->cnt = sb_malloc(maxn * sizeof *w->cnt);
    w->ids = sb_malloc(sizeof *w->ids);
    w->correct = sb_calloc((size_t)steps, sizeof *w->correct);
    w->synops = sb_calloc((size_t)steps, sizeof *w->synops);
    w->spikes = sb_calloc((size_t)nl, sizeof *w->spikes);
    w->lsyn = sb_calloc((size_t)nl, sizeof *w->lsyn);
    if (!w->x || !w->z || !w->I || !w->v || !w->cnt || !w->ids || !w->correct || !w->synops || !w->spikes || !w->lsyn)
      e = SB_ENOMEM;
#pragma omp for schedule(dynamic, 1)
    for (size_t img = 0; img < n; img++) {
      int bad;
#pragma omp atomic read
      bad = err;
      if (e || bad) continue;
      e = run_image(w, cn, &one, &cs, images + img * nin, labels[img], img, res);
#pragma omp critical(sb_convert_event)
      {
        if (e && !err) {
          err = e;
          snprintf(msg, sizeof msg, "%s", sb_last_error());
        }
        done_n++;
        if (tid == 0) sb_progress_update(&prog, "eval (event): %zu/%zu images", done_n, n);
      }
    }
    if (e) {
#pragma omp critical(sb_convert_event)
      if (!err) {
        err = e;
        snprintf(msg, sizeof msg, "%s", sb_last_error());
      }
    }
  }
  sb_progress_done(&prog);
  rc = err;
  if (!rc) {
    for (int i = 0; i < nt; i++) {
      for (int t = 0; t < steps; t++) {
        res->correct[t] += ws[i].correct[t];
        res->synops[t] += ws[i].synops[t];
      }
      for (int l = 0; l < nl; l++) {
        res->spikes[l] += ws[i].spikes[l];
        res->layer_synops[l] += ws[i].lsyn[l];
      }
    }
    for (int t = 1; t < steps; t++) res->synops[t] += res->synops[t - 1];
    if (n) memcpy(res->labels, labels, n);
    res->wall = sb_wall_time() - t0;
  }
  for (int i = 0; i < nt; i++) evwork_free(&ws[i], nl);
  sb_free(ws);
  if (rc) {
    sb_convert_result_free(res);
    SB_ERROR(rc, "%s", msg);
  }
  return SB_OK;
}
