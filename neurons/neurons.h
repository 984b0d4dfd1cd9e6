/* Neuron and stimulus models behind one interface (filled in by the engine issue). */
#ifndef SB_NEURONS_H
#define SB_NEURONS_H
#include "sim/core.h"
#endif
