/* Cross-file helpers of models/ann (never included outside the module). */
#ifndef SB_ANN_INTERNAL_H
#define SB_ANN_INTERNAL_H
#include "models/ann/ann.h"

/* "(C, H, W)" or "(F)" into buf; returns snprintf's count. */
int shape_str_(char *buf, size_t cap, sb_shape s);

#endif
