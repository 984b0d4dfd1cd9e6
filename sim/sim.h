/* The sim module: core infrastructure (sim/core.h) and the event-driven engine.
 * The engine part is filled in by the engine issue. */
#ifndef SB_SIM_H
#define SB_SIM_H

#include "sim/core.h"

#endif
