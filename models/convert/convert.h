/* ANN -> SNN conversion and the clocked batch backend (filled in by the bridge issue). */
#ifndef SB_CONVERT_H
#define SB_CONVERT_H
#include "sim/core.h"
#endif
