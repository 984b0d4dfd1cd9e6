/* Umbrella header: every public module of libspikebridge. */
#ifndef SPIKEBRIDGE_H
#define SPIKEBRIDGE_H
#include "sim/sim.h"
#include "neurons/neurons.h"
#include "learning/learning.h"
#include "models/ann/ann.h"
#include "models/convert/convert.h"
#include "analysis/analysis.h"
#endif
