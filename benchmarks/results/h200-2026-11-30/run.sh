#!/bin/bash
# issue 8 item 2: Aioli's evaluation overhead at the paper's round length vs the LearnParams subset size n.
# Run from the repository root with .gpu/ holding the shards, built beforehand on a machine with Ray by
# benchmarks/bench_aioli_overhead.py's shards_for(m, Path('.gpu'), seq_len) for (3, 128), (2, 2049), (3, 2049).
set -u
export PYTHONPATH="$PWD" PYTHONUNBUFFERED=1
O=${OUT:-/tmp/out}; mkdir -p "$O"
B=benchmarks/bench_aioli_overhead.py
nproc > "$O/nproc.txt"; lscpu | head -20 >> "$O/nproc.txt"
for s in 0 1; do
  timeout 400 python3 $B --schedule paper --rounds 2 --groups 3 --eval-examples 3,4,8 --seeds $s --threads 2 \
    --device cpu --work .gpu > "$O/tiny-m3-cpu-seed$s.log" 2>&1 &
done
timeout 200 python3 $B --schedule paper --rounds 2 --groups 3 --eval-examples 3,8 --model pythia-160m --seq-len 2049 \
  --device cuda --threads 0 --work .gpu --seeds 0 > "$O/160m-m3.log" 2>&1
echo "160m-m3 rc=$?"
timeout 150 python3 $B --schedule paper --rounds 2 --groups 2 --eval-examples 6,8 --model pythia-160m --seq-len 2049 \
  --device cuda --threads 0 --work .gpu --seeds 0 > "$O/160m-m2.log" 2>&1
echo "160m-m2 rc=$?"
wait
for f in "$O"/*.log; do echo "=== $f"; tail -8 "$f"; done
