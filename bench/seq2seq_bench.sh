#!/usr/bin/env bash
# The dates seq2seq workload: loom's full run (`loom train --model seq2seq --data dates --epochs 2`: exact match,
# time) and train throughput beside PyTorch's same model on the same batch shapes (bench/seq2seq_torch.py),
# run back to back at the same thread count.
# usage: bench/seq2seq_bench.sh BUILD_DIR     (THREADS=2 by default)
set -euo pipefail
BUILD=${1:-build}
THREADS=${THREADS:-2}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
"$BUILD/loom" train --model seq2seq --data dates --epochs 2 --threads "$THREADS" --seed 0 --out "$OUT/run" --json |
  grep '"event":"done"' > "$OUT/loom.json"
OMP_NUM_THREADS=$THREADS /usr/bin/python3 "$HERE/seq2seq_torch.py" "$THREADS" 200 > "$OUT/torch.json"
/usr/bin/python3 - "$OUT/loom.json" "$OUT/torch.json" <<'PY'
import json, sys
l, t = (json.load(open(p)) for p in sys.argv[1:3])
print(f"seq2seq dates, {t['threads']} threads: loom {l['train_samples_per_s']:.0f} train samples/s, "
      f"torch {t['train_samples_per_s']:.0f} ({l['train_samples_per_s'] / t['train_samples_per_s']:.2f}x); "
      f"loom test exact match {100 * l['test_exact_match']:.2f}% after {l['steps']} steps, {l['seconds']:.0f} s in all")
PY
