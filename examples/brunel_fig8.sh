#!/bin/sh
# Brunel 2000, Fig. 8: the four states of the sparse delta network as --set variants of
# models/snn/brunel_delta.json (NEST's brunel_delta parameters; nu_thr = 10 Hz, so the Poisson
# rate per neuron is eta * 10000 Hz and the inhibitory weight is -g * J = -g * 0.1 mV).
# Usage: examples/brunel_fig8.sh [T_STOP_MS] [THREADS]   (writes brunel_{A,B,C,D}.h5)
set -e
T=${1:-1000}; TH=${2:-2}; M=models/snn/brunel_delta.json; SB=${SB:-./spikebridge}
gset() { echo "--set projections[2].weight=-$1 --set projections[3].weight=-$1"; }
rset() { echo "--set stimuli[0].params.rate=$1 --set stimuli[1].params.rate=$1"; }
# A: synchronous regular (g = 3, eta = 2)
$SB run $M --t-stop "$T" --threads "$TH" -o brunel_A.h5 $(gset 0.3)
# B: synchronous irregular, fast oscillation (g = 6, eta = 4)
$SB run $M --t-stop "$T" --threads "$TH" -o brunel_B.h5 $(gset 0.6) $(rset 40000)
# C: asynchronous irregular (g = 5, eta = 2: the file as is)
$SB run $M --t-stop "$T" --threads "$TH" -o brunel_C.h5
# D: synchronous irregular, slow oscillation (g = 4.5, eta = 0.9)
$SB run $M --t-stop "$T" --threads "$TH" -o brunel_D.h5 $(gset 0.45) $(rset 9000)
