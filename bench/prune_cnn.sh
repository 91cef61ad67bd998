#!/usr/bin/env bash
# Pruning the seed CNN on Fashion-MNIST (docs/compression.md, "Pruning"): train, prune (structured, l1, global),
# fine-tune one epoch each, and time training and evaluation of the pruned against the unpruned model side by
# side (same thread count, evaluations interleaved, best of ROUNDS).
#   bench/prune_cnn.sh build/loom runs/prune-bench [EPOCHS=2] [ROUNDS=3]
set -euo pipefail
LOOM=$1 DIR=$2 EPOCHS=${3:-2} ROUNDS=${4:-3}
COMMON="--data fashion-mnist --threads 1 --progress none --json"
mkdir -p "$DIR"
stat() { grep '"event":"done"' "$1" | python3 -c 'import json,sys; e=json.loads(sys.stdin.read()); print(e.get("test_accuracy", e.get("val_accuracy")), e["train_samples_per_s"], e["seconds"])'; }
acc() { "$LOOM" eval --checkpoint "$1" --data fashion-mnist --threads 1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["accuracy"])'; }

[ -f "$DIR/base/model.safetensors" ] || "$LOOM" train --model cnn $COMMON --epochs "$EPOCHS" --out "$DIR/base" > "$DIR/base.log"
echo "base: $(acc "$DIR/base")"
for m in structured l1 global; do
  "$LOOM" prune --checkpoint "$DIR/base" --method $m --amount 0.5 --out "$DIR/$m" > "$DIR/$m.prune.log"
  echo "$m pruned (before fine-tuning): $(acc "$DIR/$m")"
done
# One more epoch of each: the unpruned model (the fair baseline for the fine-tuning time) and the pruned ones.
for m in base structured l1 global; do
  "$LOOM" train --model cnn $COMMON --epochs 1 --init "$DIR/$m" --out "$DIR/$m-ft" > "$DIR/$m-ft.log"
  echo "$m + 1 epoch: test accuracy, train samples/s, seconds: $(stat "$DIR/$m-ft.log")"
done
# Inference: loom eval of the 10,000 test images, interleaved, best of ROUNDS.
for i in $(seq "$ROUNDS"); do
  for m in base-ft structured-ft; do
    s=$( { /usr/bin/time -f %e "$LOOM" eval --checkpoint "$DIR/$m" --data fashion-mnist --threads 1 --json >/dev/null; } 2>&1 )
    echo "eval $m round $i: $s s"
  done
done
# Training throughput side by side: 200 steps from each, interleaved, best of ROUNDS.
for i in $(seq "$ROUNDS"); do
  for m in base structured; do
    "$LOOM" train --model cnn $COMMON --steps 200 --checkpoint-every 0 --init "$DIR/$m" --out "$DIR/$m-speed" > "$DIR/$m-speed.log"
    echo "train $m round $i: $(stat "$DIR/$m-speed.log")"
  done
done
