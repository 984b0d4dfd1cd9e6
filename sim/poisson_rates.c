/* Per-target Poisson rates settable between runs (NEST: SetStatus on a poisson_generator per
 * target, or Brian2's PoissonGroup.rates): the stimulus of rate-coded inputs such as the
 * Diehl & Cook 2015 network, whose image changes every presentation. Only the rates change;
 * the per-neuron RNG streams go on where they were, so the result stays independent of the
 * thread count. Not the Poisson generation itself (sim/run.c). */
#include "sim/internal.h"

#include <gsl/gsl_randist.h>
#include <math.h>

int sb_net_set_poisson_rates(sb_net *net, int pop, const double *rates) {
  if (pop < 0 || pop >= net->n_pops) SB_ERROR(SB_EINVAL, "population index %d out of range", pop);
  const sb_pop *P = &net->pops[pop];
  for (size_t i = 0; i < P->n; i++)
    if (!(rates[i] >= 0) || !isfinite(rates[i]))
      SB_ERROR(SB_EINVAL, "%s: rates[%zu]: must be >= 0 Hz and finite (got %g)", P->name, i, rates[i]);
  if (!net->prepared) {
    size_t hit = 0;
    for (size_t q = 0; q < net->n_pois; q++)
      if (net->pois[q].gid >= P->first && net->pois[q].gid < P->first + P->n) {
        net->pois[q].rate = rates[net->pois[q].gid - P->first];
        hit++;
      }
    if (!hit) SB_ERROR(SB_EINVAL, "%s: has no poisson_generator to set rates of", P->name);
    return SB_OK;
  }
  size_t hit = 0;
  for (size_t i = 0; i < P->n; i++) {
    size_t g = P->first + i;
    for (size_t q = net->pois_first[g]; q < net->pois_first[g + 1]; q++, hit++) {
      sb_pois *s = &net->pois_s[q];
      s->rate = rates[i];
      /* memoryless: the next spike after now, drawn from the neuron's own stream */
      double from = net->t > s->start ? net->t : s->start;
      double t = INFINITY;
      if (rates[i] > 0) t = from + gsl_ran_exponential(net->pois_rng[g], 1000.0 / rates[i]);
      net->pois_next[q] = t < s->stop ? t : INFINITY;
      if (net->pois_next[q] < net->t_safe[g]) net->t_safe[g] = net->pois_next[q];
      if (net->pois_next[q] < net->ev_due[g]) net->ev_due[g] = net->pois_next[q];
    }
  }
  if (!hit) SB_ERROR(SB_EINVAL, "%s: has no poisson_generator to set rates of", P->name);
  return SB_OK;
}
