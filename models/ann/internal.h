/* Cross-file helpers of models/ann (never included outside the module). */
#ifndef SB_ANN_INTERNAL_H
#define SB_ANN_INTERNAL_H
#include "models/ann/ann.h"

/* "(C, H, W)" or "(F)" into buf; returns snprintf's count. */
int shape_str_(char *buf, size_t cap, sb_shape s);

/* CPU seconds used by this process, all threads (CLOCK_PROCESS_CPUTIME_ID): the epoch lines
 * report it next to wall time, since on a shared machine wall time mostly measures the load. */
double cpu_time_(void);

#endif
