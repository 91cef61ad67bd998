#!/usr/bin/env bash
# Data-parallel scaling on W2 (the seed CNN, Fashion-MNIST, Adam 1e-3, batch 64 per rank): one process with
# one thread against `mpirun -np N` ranks with one thread each, both from `loom train --json`. Reports train
# samples/s, the scaling efficiency (N-rank samples/s / (N x 1-rank samples/s)) and the communication time
# per step (time rank 0 spent waiting in collectives: exposed all-reduce time plus waiting for slower ranks).
# Runs alternate (1, N, 1, N, ...) and the best of each counts, so a burst of load hurts both alike.
# BIND (default none) is mpirun's --bind-to: on a machine shared with other jobs, ranks pinned to cores
# cannot move away from the load (measured 20% slower at load 8 on 2 cores); on an idle one, core is fine.
# usage: bench/dist_bench.sh BUILD_DIR [RANKS=2] [STEPS=300] [REPEATS=2]
set -euo pipefail
BUILD=${1:-build}
RANKS=${2:-2}
STEPS=${3:-300}
REPEATS=${4:-2}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
MPIRUN=${MPIRUN:-mpirun}
BIND=${BIND:-none}
ROOT_FLAG=""
[ "$(id -u)" = 0 ] && ROOT_FLAG="--allow-run-as-root"
COMMON=(train --model cnn --data fashion-mnist --batch-size 64 --optimizer adam --lr 1e-3 --threads 1 --seed 0
        --steps "$STEPS" --checkpoint-every 0 --test-samples 1000 --json)
field() { grep '"event":"done"' "$1" | /usr/bin/python3 -c "import sys,json; print(json.loads(sys.stdin.read()).get('$2', 0))"; }

echo "load before: $(uptime)"
best1=0 bestn=0 commn=0
for i in $(seq "$REPEATS"); do
  OMP_NUM_THREADS=1 "$BUILD/loom" "${COMMON[@]}" --out "$OUT/one" > "$OUT/one.jsonl"
  OMP_NUM_THREADS=1 "$MPIRUN" $ROOT_FLAG --oversubscribe --bind-to "$BIND" -np "$RANKS" -x OMP_NUM_THREADS \
    "$BUILD/loom" "${COMMON[@]}" --out "$OUT/many" --distributed > "$OUT/many.jsonl"
  s1=$(field "$OUT/one.jsonl" train_samples_per_s)
  sn=$(field "$OUT/many.jsonl" train_samples_per_s)
  cn=$(field "$OUT/many.jsonl" comm_ms_per_step)
  echo "run $i: 1 rank x 1 thread $s1 samples/s; $RANKS ranks x 1 thread $sn samples/s (comm $cn ms/step)"
  best1=$(/usr/bin/python3 -c "print(max($best1, $s1))")
  if /usr/bin/python3 -c "import sys; sys.exit(0 if $sn > $bestn else 1)"; then bestn=$sn commn=$cn; fi
done
echo "load after: $(uptime)"
/usr/bin/python3 - "$best1" "$bestn" "$commn" "$RANKS" <<'PY'
import json, sys
s1, sn, comm, n = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
speedup = sn / s1 if s1 else 0.0
print(f"W2 data-parallel: {n} ranks x 1 thread {sn:.0f} samples/s vs 1 rank x 1 thread {s1:.0f}: "
      f"{speedup:.2f}x, efficiency {speedup / n:.0%}, comm {comm:.2f} ms/step")
print(json.dumps({"bench": "dist", "workload": "W2", "ranks": n, "samples_per_s_1": s1, "samples_per_s_n": sn,
                  "speedup": speedup, "efficiency": speedup / n, "comm_ms_per_step": comm}))
PY
