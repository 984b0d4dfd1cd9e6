/* Spike-train readers (SONATA, NWB units, NEST text), statistics (Elephant conventions), figures. */
#ifndef SB_ANALYSIS_H
#define SB_ANALYSIS_H
#include "sim/core.h"
#endif
