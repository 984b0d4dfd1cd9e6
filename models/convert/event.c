/* The event backend: a converted network on the event-driven engine (sim/sim.h). */
#include "models/convert/internal.h"
#include "sim/sim.h"

int sb_convert_eval_event(const sb_convert_net *net, const uint8_t *images, const uint8_t *labels, size_t n,
                          const sb_convert_eval_opts *o, sb_convert_result *res) {
  (void)net; (void)images; (void)labels; (void)n; (void)o; (void)res;
  SB_ERROR(SB_EUNSUPPORTED, "event backend: not built yet");
}
