/* The Diehl & Cook 2015 network on the engine: construction, one image presentation with
 * the paper's repeat rule and weight normalisation, freezing for test mode, and the label
 * assignment / prediction / accuracy of their evaluation code. Not the data loading or the
 * command line (cli/cmd_stdp_train.c), not the rule itself (learning/stdp.c). */
#include "models/snn/snn.h"
#include "learning/learning.h"

#include <math.h>
#include <string.h>

struct sb_dc {
  sb_dc_params p;
  sb_net *net;
  int in, exc, inh, proj;
  int frozen;
  size_t nsyn;          /* n_exc * n_input */
  uint32_t *map;        /* (nsyn) storage index -> matrix index tgt * n_input + src */
  double *delay;        /* (nsyn) matrix order, ms */
  double *wbuf, *wmat;  /* (nsyn) storage / matrix order scratch */
  double *wfrozen;      /* (nsyn) matrix order, the weights of a frozen network */
  double *theta;        /* (n_exc) thetas at freezing */
  double *rates;        /* (n_input) */
  uint64_t *c0, *c1;    /* (n_exc) */
};

void sb_dc_defaults(sb_dc_params *p, int n_exc) {
  *p = (sb_dc_params){.n_input = 784, .n_exc = n_exc, .t_present = 350.0, .t_rest = 150.0, .intensity = 2.0,
                      .min_spikes = 5, .max_repeats = 10, .w_init_max = 0.3, .w_max = 1.0, .norm = 78.0,
                      .w_ei = 10.4, .w_ie = 17.0, .nu_pre = 1e-4, .nu_post = 1e-2, .tau_pre = 20.0,
                      .tau_post1 = 20.0, .tau_post2 = 40.0, .theta_plus = 0.05, .tau_theta = 1e7,
                      .theta0 = 20.0, .theta_offset = 20.0, .delay_max = 10.0, .d_lat = 0.5, .seed = 1, .threads = 1};
}

static int check_params(const sb_dc_params *p) {
  if (p->n_input < 1) SB_ERROR(SB_EINVAL, "n_input: must be >= 1 (got %d)", p->n_input);
  if (p->n_exc < 2 || p->n_exc > SB_DC_MAX_NEURONS)
    SB_ERROR(SB_EINVAL, "neurons: must be in [2, %d] (got %d)", SB_DC_MAX_NEURONS, p->n_exc);
  if (!(p->t_present > 0) || !(p->t_rest >= 0)) SB_ERROR(SB_EINVAL, "t_present, t_rest: must be > 0 and >= 0 ms");
  if (!(p->intensity > 0)) SB_ERROR(SB_EINVAL, "intensity: must be > 0 (got %g)", p->intensity);
  if (!(p->d_lat >= 0.1) || !(p->delay_max > p->d_lat))
    SB_ERROR(SB_EINVAL, "delays: need 0.1 <= d_lat < delay_max (got %g, %g)", p->d_lat, p->delay_max);
  if (!(p->w_init_max > 0 && p->w_max > 0 && p->norm > 0 && p->w_ei >= 0 && p->w_ie >= 0))
    SB_ERROR(SB_EINVAL, "weights: w_init_max, w_max, norm must be > 0 and w_ei, w_ie >= 0");
  if (p->threads < 1) SB_ERROR(SB_EINVAL, "threads: must be >= 1 (got %d)", p->threads);
  return SB_OK;
}

/* Excitatory (theta adaptive) and inhibitory parameters of Diehl & Cook's Brian code with
 * g_L = 1 nS, so their dimensionless conductances are nS: tau_m = C_m / g_L. */
static int set_exc(sb_net *net, int pop, const sb_dc_params *p, int frozen) {
  const char *k[] = {"g_L", "C_m", "E_L", "E_ex", "E_in", "V_th", "V_reset", "t_ref", "tau_syn_ex", "tau_syn_in",
                     "theta_plus", "tau_theta", "theta_offset"};
  double v[] = {1.0, 100.0, -65.0, 0.0, -100.0, -52.0, -65.0, 5.0, 1.0, 2.0, frozen ? 0.0 : p->theta_plus,
                frozen ? 1e300 : p->tau_theta, p->theta_offset};
  for (int i = 0; i < 13; i++) {
    int rc = sb_net_set_param(net, pop, k[i], v[i]);
    if (rc) return rc;
  }
  return SB_OK;
}

static int set_inh(sb_net *net, int pop) {
  const char *k[] = {"g_L", "C_m", "E_L", "E_ex", "E_in", "V_th", "V_reset", "t_ref", "tau_syn_ex", "tau_syn_in",
                     "theta_plus", "tau_theta"};
  double v[] = {1.0, 10.0, -60.0, 0.0, -85.0, -40.0, -45.0, 2.0, 1.0, 2.0, 0.0, 1e300};
  for (int i = 0; i < 12; i++) {
    int rc = sb_net_set_param(net, pop, k[i], v[i]);
    if (rc) return rc;
  }
  return SB_OK;
}

/* Build dc->net: plastic input weights when wstatic is NULL, else static ones (matrix order). */
static int build(sb_dc *dc, const double *wstatic) {
  const sb_dc_params *p = &dc->p;
  size_t ni = (size_t)p->n_input, ne = (size_t)p->n_exc;
  sb_net *net = sb_net_alloc(p->seed, p->threads);
  if (!net) return SB_ENOMEM;
  dc->net = net;
  int rc;
  if ((rc = sb_net_add_population(net, "input", sb_neuron_iaf_psc_delta, ni, &dc->in))) return rc;
  if ((rc = sb_net_add_population(net, "exc", sb_neuron_iaf_cond_exp_theta, ne, &dc->exc))) return rc;
  if ((rc = sb_net_add_population(net, "inh", sb_neuron_iaf_cond_exp_theta, ne, &dc->inh))) return rc;
  /* inputs are relays (NEST parrot_neuron): a 100 mV jump fires them at the Poisson spike */
  if ((rc = sb_net_set_param(net, dc->in, "t_ref", 0.0))) return rc;
  if ((rc = sb_net_add_poisson(net, dc->in, NULL, 0, 0.0, 0.0, INFINITY, 100.0, 0.0))) return rc;
  if ((rc = set_exc(net, dc->exc, p, wstatic != NULL)) || (rc = set_inh(net, dc->inh))) return rc;
  double *v = sb_malloc(ne * sizeof *v);
  if (!v) return SB_ENOMEM;
  for (size_t i = 0; i < ne; i++) v[i] = -105.0;   /* v_rest_e - 40 mV, as their code starts */
  rc = sb_net_set_state(net, dc->exc, "V_m", v);
  for (size_t i = 0; i < ne && !rc; i++) v[i] = wstatic ? dc->theta[i] : p->theta0;
  if (!rc) rc = sb_net_set_state(net, dc->exc, "theta", v);
  for (size_t i = 0; i < ne && !rc; i++) v[i] = -100.0;   /* v_rest_i - 40 mV */
  if (!rc) rc = sb_net_set_state(net, dc->inh, "V_m", v);
  sb_free(v);
  if (rc) return rc;
  for (int pop = 0; pop < 3; pop++) sb_net_record_spikes(net, pop, 0);   /* counts only */

  sb_conn_spec all = {.rule = SB_RULE_ALL_TO_ALL, .allow_autapses = 1, .allow_multapses = 1};
  sb_syn_spec in_syn = {.weight = {SB_DIST_UNIFORM, 0.0, p->w_init_max, 0, 0},
                        .delay = {SB_DIST_UNIFORM, p->d_lat, p->delay_max, 0, 0}, .receptor = SB_RECEPTOR_EX};
  if (!wstatic) {
    sb_stdp_params sp;
    sb_stdp_model_parse("stdp_triplet_nn_synapse", &sp);
    sp.tau_plus = p->tau_pre;
    sp.tau_minus = p->tau_post1;
    sp.tau_minus_triplet = p->tau_post2;
    sp.Aplus = 0.0;
    sp.Aplus_triplet = p->nu_post;
    sp.Aminus = p->nu_pre;
    sp.Aminus_triplet = 0.0;
    sp.Wmax = p->w_max;
    if ((rc = sb_stdp_connect(net, dc->in, dc->exc, &all, &in_syn, &sp, &dc->proj))) return rc;
    uint32_t *s = sb_malloc(dc->nsyn * sizeof *s), *t = sb_malloc(dc->nsyn * sizeof *t);
    if (!s || !t) { sb_free(s); sb_free(t); return SB_ENOMEM; }
    sb_stdp_get_synapses(net, dc->proj, s, t, dc->wbuf, NULL);
    for (size_t q = 0; q < dc->nsyn; q++) {
      dc->map[q] = t[q] * (uint32_t)ni + s[q];
      dc->delay[dc->map[q]] = dc->wbuf[q];
    }
    sb_free(s);
    sb_free(t);
  } else {
    uint32_t *s = sb_malloc(dc->nsyn * sizeof *s), *t = sb_malloc(dc->nsyn * sizeof *t);
    if (!s || !t) { sb_free(s); sb_free(t); return SB_ENOMEM; }
    size_t n = 0;
    for (size_t i = 0; i < ne; i++)
      for (size_t j = 0; j < ni; j++)
        if (wstatic[i * ni + j] != 0.0) {   /* zero weights send nothing */
          s[n] = (uint32_t)j;
          t[n] = (uint32_t)i;
          dc->wbuf[n] = wstatic[i * ni + j];
          dc->wmat[n] = dc->delay[i * ni + j];
          n++;
        }
    sb_conn_spec ex = {.rule = SB_RULE_EXPLICIT, .n = n, .sources = s, .targets = t, .weights = dc->wbuf, .delays = dc->wmat};
    sb_syn_spec y = {.weight = {SB_DIST_CONST, 0, 0, 0, 0}, .delay = {SB_DIST_CONST, p->d_lat, 0, 0, 0},
                     .receptor = SB_RECEPTOR_EX};
    rc = n ? sb_net_connect(net, dc->in, dc->exc, &ex, &y, &dc->proj) : SB_OK;
    sb_free(s);
    sb_free(t);
    if (rc) return rc;
  }
  sb_conn_spec one = {.rule = SB_RULE_ONE_TO_ONE, .allow_autapses = 1, .allow_multapses = 1};
  sb_syn_spec ei = {.weight = {SB_DIST_CONST, p->w_ei, 0, 0, 0}, .delay = {SB_DIST_CONST, p->d_lat, 0, 0, 0},
                    .receptor = SB_RECEPTOR_EX};
  if ((rc = sb_net_connect(net, dc->exc, dc->inh, &one, &ei, NULL))) return rc;
  /* all but self: explicit pairs */
  size_t m = ne * (ne - 1), q = 0;
  uint32_t *s = sb_malloc(m * sizeof *s), *t = sb_malloc(m * sizeof *t);
  if (!s || !t) { sb_free(s); sb_free(t); return SB_ENOMEM; }
  for (size_t i = 0; i < ne; i++)
    for (size_t j = 0; j < ne; j++)
      if (i != j) { s[q] = (uint32_t)i; t[q] = (uint32_t)j; q++; }
  sb_conn_spec ab = {.rule = SB_RULE_EXPLICIT, .n = m, .sources = s, .targets = t};
  sb_syn_spec ie = {.weight = {SB_DIST_CONST, p->w_ie, 0, 0, 0}, .delay = {SB_DIST_CONST, p->d_lat, 0, 0, 0},
                    .receptor = SB_RECEPTOR_IN};
  rc = sb_net_connect(net, dc->inh, dc->exc, &ab, &ie, NULL);
  sb_free(s);
  sb_free(t);
  return rc;
}

int sb_dc_alloc(const sb_dc_params *p, sb_dc **out) {
  *out = NULL;
  int rc = check_params(p);
  if (rc) return rc;
  sb_dc *dc = sb_calloc(1, sizeof *dc);
  if (!dc) return SB_ENOMEM;
  dc->p = *p;
  size_t ni = (size_t)p->n_input, ne = (size_t)p->n_exc;
  dc->nsyn = ni * ne;
  dc->map = sb_malloc(dc->nsyn * sizeof *dc->map);
  dc->delay = sb_malloc(dc->nsyn * sizeof *dc->delay);
  dc->wbuf = sb_malloc(dc->nsyn * sizeof *dc->wbuf);
  dc->wmat = sb_malloc(dc->nsyn * sizeof *dc->wmat);
  dc->theta = sb_malloc(ne * sizeof *dc->theta);
  dc->rates = sb_calloc(ni, sizeof *dc->rates);
  dc->c0 = sb_malloc(ne * sizeof *dc->c0);
  dc->c1 = sb_malloc(ne * sizeof *dc->c1);
  rc = !dc->map || !dc->delay || !dc->wbuf || !dc->wmat || !dc->theta || !dc->rates || !dc->c0 || !dc->c1
           ? SB_ENOMEM : build(dc, NULL);
  if (rc) {
    sb_dc_free(dc);
    return rc;
  }
  *out = dc;
  return SB_OK;
}

void sb_dc_free(sb_dc *dc) {
  if (!dc) return;
  sb_net_free(dc->net);
  sb_free(dc->map); sb_free(dc->delay); sb_free(dc->wbuf); sb_free(dc->wmat); sb_free(dc->wfrozen);
  sb_free(dc->theta); sb_free(dc->rates); sb_free(dc->c0); sb_free(dc->c1);
  sb_free(dc);
}

double sb_dc_time(const sb_dc *dc) { return sb_net_time(dc->net); }

/* ---- weights ---- */

void sb_dc_normalize(double *w, int n_exc, int n_input, double norm) {
  for (int i = 0; i < n_exc; i++) {
    double *r = w + (size_t)i * (size_t)n_input, s = 0.0;
    for (int j = 0; j < n_input; j++) s += r[j];
    if (s > 0)
      for (int j = 0; j < n_input; j++) r[j] *= norm / s;
  }
}

int sb_dc_get_weights(const sb_dc *dc, double *w) {
  if (dc->frozen) {
    memcpy(w, dc->wfrozen, dc->nsyn * sizeof *w);
    return SB_OK;
  }
  int rc = sb_stdp_get_synapses(dc->net, dc->proj, NULL, NULL, NULL, dc->wbuf);
  if (rc) return rc;
  for (size_t q = 0; q < dc->nsyn; q++) w[dc->map[q]] = dc->wbuf[q];
  return SB_OK;
}

int sb_dc_get_theta(const sb_dc *dc, double *theta) { return sb_net_get_state(dc->net, dc->exc, "theta", theta); }

static int put_weights(sb_dc *dc, const double *w) {
  for (size_t q = 0; q < dc->nsyn; q++) dc->wbuf[q] = w[dc->map[q]];
  return sb_stdp_set_weights(dc->net, dc->proj, dc->wbuf);
}

int sb_dc_set_state(sb_dc *dc, const double *w, const double *theta) {
  if (dc->frozen) SB_ERROR(SB_EINVAL, "the network is frozen (test mode); set weights before freezing");
  size_t ni = (size_t)dc->p.n_input;
  for (size_t q = 0; q < dc->nsyn; q++)
    if (!(w[q] >= 0 && w[q] <= dc->p.w_max))
      SB_ERROR(SB_EINVAL, "weights[%zu][%zu]: must be in [0, w_max = %g] (got %g)", q / ni, q % ni, dc->p.w_max, w[q]);
  for (size_t i = 0; i < dc->nsyn / ni; i++) {   /* a neuron without input weights stays silent for ever */
    double sum = 0;
    for (size_t j = 0; j < ni; j++) sum += w[i * ni + j];
    if (!(sum > 0)) SB_ERROR(SB_EINVAL, "weights[%zu]: all %zu input weights are 0 (expected a positive sum)", i, ni);
  }
  for (int i = 0; i < dc->p.n_exc; i++)   /* theta only grows from theta0 >= 0 and decays towards 0 */
    if (!(theta[i] >= 0 && theta[i] <= 1e4)) SB_ERROR(SB_EINVAL, "theta[%d]: must be in [0, 1e4] mV (got %g)", i, theta[i]);
  int rc = put_weights(dc, w);
  if (!rc) rc = sb_net_set_state(dc->net, dc->exc, "theta", theta);
  return rc;
}

int sb_dc_freeze(sb_dc *dc) {
  if (dc->frozen) return SB_OK;
  double *w = sb_malloc(dc->nsyn * sizeof *w);
  if (!w) return SB_ENOMEM;
  int rc = sb_dc_get_weights(dc, w);
  if (!rc) rc = sb_dc_get_theta(dc, dc->theta);
  if (rc) { sb_free(w); return rc; }
  sb_net_free(dc->net);
  dc->net = NULL;
  dc->wfrozen = w;
  dc->frozen = 1;
  return build(dc, w);
}

/* ---- presentation ---- */

int sb_dc_present(sb_dc *dc, const uint8_t *image, uint32_t *counts, int *shown) {
  const sb_dc_params *p = &dc->p;
  size_t ni = (size_t)p->n_input, ne = (size_t)p->n_exc;
  double inten = p->intensity;
  int rc, k = 0;
  for (;;) {
    if (!dc->frozen) {   /* normalise before every showing, as their training loop does */
      if ((rc = sb_dc_get_weights(dc, dc->wmat))) return rc;
      sb_dc_normalize(dc->wmat, p->n_exc, p->n_input, p->norm);
      if ((rc = put_weights(dc, dc->wmat))) return rc;
    }
    for (size_t j = 0; j < ni; j++) dc->rates[j] = image[j] / 8.0 * inten;
    if ((rc = sb_net_set_poisson_rates(dc->net, dc->in, dc->rates))) return rc;
    sb_net_spike_counts(dc->net, dc->exc, dc->c0);
    if ((rc = sb_net_run(dc->net, sb_net_time(dc->net) + p->t_present))) return rc;
    sb_net_spike_counts(dc->net, dc->exc, dc->c1);
    memset(dc->rates, 0, ni * sizeof *dc->rates);
    if ((rc = sb_net_set_poisson_rates(dc->net, dc->in, dc->rates))) return rc;
    if (p->t_rest > 0 && (rc = sb_net_run(dc->net, sb_net_time(dc->net) + p->t_rest))) return rc;
    uint64_t sum = 0;
    for (size_t i = 0; i < ne; i++) {
      counts[i] = (uint32_t)(dc->c1[i] - dc->c0[i]);
      sum += counts[i];
    }
    k++;
    if (sum >= (uint64_t)p->min_spikes || k > p->max_repeats) break;
    inten += 1.0;
  }
  if (shown) *shown = k;
  return SB_OK;
}

/* ---- labels and accuracy ---- */

void sb_dc_assign(const uint32_t *resp, const uint8_t *labels, size_t n_img, int n_exc, int n_classes, int *assign) {
  for (int i = 0; i < n_exc; i++) {
    double best = 0.0;
    assign[i] = -1;
    for (int c = 0; c < n_classes; c++) {
      size_t nc = 0;
      double s = 0.0;
      for (size_t k = 0; k < n_img; k++)
        if (labels[k] == c) {
          nc++;
          s += resp[k * (size_t)n_exc + (size_t)i];
        }
      if (nc && s / (double)nc > best) {
        best = s / (double)nc;
        assign[i] = c;
      }
    }
  }
}

int sb_dc_predict(const uint32_t *resp, const int *assign, int n_exc, int n_classes) {
  int best = -1;
  double bs = 0.0;
  for (int c = 0; c < n_classes; c++) {
    size_t n = 0;
    double s = 0.0;
    for (int i = 0; i < n_exc; i++)
      if (assign[i] == c) {
        n++;
        s += resp[i];
      }
    if (n && s / (double)n > bs) {
      bs = s / (double)n;
      best = c;
    }
  }
  return best;
}

double sb_dc_accuracy(const int *pred, const uint8_t *labels, size_t n) {
  if (!n) return 0.0;
  size_t ok = 0;
  for (size_t k = 0; k < n; k++) ok += pred[k] == (int)labels[k];
  return (double)ok / (double)n;
}
