/* What changes weights: STDP rules (engine side); losses and optimizers (ANN side). */
#ifndef SB_LEARNING_H
#define SB_LEARNING_H
#include "sim/core.h"
#endif
