#!/bin/bash
# bench/ab_pairs.sh N MODEL TSTOP_MS BIN_A BIN_B: times two spikebridge binaries on one model, 1 thread,
# A and B started together on the two cores (taskset), swapped every pair, so that both see the same
# machine state (this VM's two vCPUs differ in speed by up to 1.5x and swap roles within minutes).
# Prints each pair's simulation times and B/A per swapped double pair (the geometric mean of two
# swapped pairs cancels the cores' speeds) and their median: < 1 means B is faster. Needs 2 idle cores.
if [ $# -ne 5 ] || [ $(($1 % 2)) -ne 0 ] || [ "$1" -lt 2 ]; then
  echo "usage: bench/ab_pairs.sh N MODEL TSTOP_MS BIN_A BIN_B  (N even, >= 2)" >&2; exit 2
fi
N=$1; M=$2; T=$3; A=$4; B=$5
ra=(); rb=()
for i in $(seq $N); do
  if [ $((i % 2)) = 1 ]; then ca=0; cb=1; else ca=1; cb=0; fi
  taskset -c $ca $A run $M --t-stop $T --threads 1 -o ${TMPDIR:-/tmp}/ab_pairsa_$$.h5 > ${TMPDIR:-/tmp}/ab_pairsa_$$.log 2>&1 &
  pa=$!
  taskset -c $cb $B run $M --t-stop $T --threads 1 -o ${TMPDIR:-/tmp}/ab_pairsb_$$.h5 > ${TMPDIR:-/tmp}/ab_pairsb_$$.log 2>&1 &
  pb=$!
  wait $pa $pb
  a=$(awk '/simulation/{print $2}' ${TMPDIR:-/tmp}/ab_pairsa_$$.log); b=$(awk '/simulation/{print $2}' ${TMPDIR:-/tmp}/ab_pairsb_$$.log)
  ra+=($a); rb+=($b)
  echo "pair $i: A $a  B $b  B/A $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.4f", b / a }')"
done
printf '%s\n' "${ra[@]}" > ${TMPDIR:-/tmp}/ab_pairsra_$$; printf '%s\n' "${rb[@]}" > ${TMPDIR:-/tmp}/ab_pairsrb_$$
/usr/bin/python3 - ${TMPDIR:-/tmp}/ab_pairsra_$$ ${TMPDIR:-/tmp}/ab_pairsrb_$$ <<'PY'
import sys, statistics, math
a=[float(x) for x in open(sys.argv[1])]; b=[float(x) for x in open(sys.argv[2])]
r=[y/x for x,y in zip(a,b)]
g=[math.sqrt(r[i]*r[i+1]) for i in range(0,len(r)-1,2)]   # a swapped pair of pairs cancels the cores' speeds
print("B/A per swapped double pair:", " ".join("%.4f"%x for x in g), " median %.4f" % statistics.median(g))
PY
rm -f ${TMPDIR:-/tmp}/ab_pairsra_$$ ${TMPDIR:-/tmp}/ab_pairsrb_$$
rm -f ${TMPDIR:-/tmp}/ab_pairsa_$$.* ${TMPDIR:-/tmp}/ab_pairsb_$$.*
