#!/bin/sh
# Diehl & Cook 2015 (Front. Comput. Neurosci. 9:99) on Fashion-MNIST, as run for docs/stdp.md:
# train N excitatory neurons unsupervised on TRAIN images, then label on LABEL training images
# and test on TEST test images, the test split over P processes (each labels the same images;
# the frozen network is deterministic, so their assignments agree). Prints the pooled accuracy.
# Usage: examples/diehl_cook_fmnist.sh [N] [TRAIN] [LABEL] [TEST] [P]   (writes dc_N.h5, dc_N_eval_*.h5)
set -e
N=${1:-100}; TRAIN=${2:-5000}; LABEL=${3:-1500}; TEST=${4:-10000}; P=${5:-2}; SB=${SB:-./spikebridge}
$SB stdp-train --neurons "$N" --train "$TRAIN" --label 0 --test 0 -o "dc_$N.h5"
STEP=$(( (TEST + P - 1) / P )); i=0; pids=""; logs=""
rm -f dc_"$N"_eval_*.txt dc_"$N"_eval_*.h5   # an earlier run's parts must not be pooled
while [ $((i * STEP)) -lt "$TEST" ]; do
  n=$(( TEST - i * STEP < STEP ? TEST - i * STEP : STEP ))
  $SB --quiet stdp-train --init "dc_$N.h5" --train 0 --label "$LABEL" --test "$n" --test-offset $((i * STEP)) \
      -o "dc_${N}_eval_$i.h5" > "dc_${N}_eval_$i.txt" & pids="$pids $!"
  logs="$logs dc_${N}_eval_$i.txt"; i=$((i + 1))
done
for p in $pids; do wait "$p"; done
# shellcheck disable=SC2086
cat $logs | awk '/accuracy/ { n = $2; a = $NF; sub("%", "", a); tot += n; ok += n * a / 100 }
  END { printf "pooled test accuracy: %.2f%% on %d test images\n", 100 * ok / tot, tot }'
