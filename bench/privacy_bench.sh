#!/usr/bin/env bash
# The issue-15 figures on Fashion-MNIST (docs/privacy.md): DP-SGD accuracy at epsilon 1, 3, 8 and infinity (noise 0,
# clipping only), then FedAvg (E=5, B=10) against FedSGD (E=1, B=all) on label-sorted shards (2 per client),
# rounds to a target accuracy and bytes communicated. One JSON line per run in $OUT/*.jsonl.
#   bench/privacy_bench.sh [build] [out]      (~40 min on 2 busy cores; EPOCHS, BATCH, TARGET, ... override)
set -euo pipefail
BUILD=${1:-build}; OUT=${2:-/tmp/loom_privacy_bench}; mkdir -p "$OUT"
LOOM="nice -n 5 $BUILD/loom"
EPOCHS=${EPOCHS:-2}; BATCH=${BATCH:-512}; LR=${LR:-0.25}
for eps in 1 3 8 inf; do
  if [ "$eps" = inf ]; then dp="--dp-noise 0"; else dp="--dp-epsilon $eps"; fi
  $LOOM train --model mlp $dp --dp-clip 1 --batch-size "$BATCH" --epochs "$EPOCHS" --optimizer sgd --lr "$LR" \
    --momentum 0.9 --threads 2 --json --out "$OUT/dp-eps-$eps" | tail -1 | sed "s/^{/{\"target_epsilon\":\"$eps\",/" \
    >> "$OUT/dp.jsonl"
done
TARGET=${TARGET:-0.7}
common="--model mlp --clients 100 --fraction 0.1 --partition shards:2 --target-accuracy $TARGET --threads 2 --json --test-samples 5000"
$LOOM federate $common --local-epochs 5 --local-batch 10 --lr 0.1 --rounds "${FEDAVG_ROUNDS:-40}" \
  | tail -1 | sed 's/^{/{"algorithm":"FedAvg E=5 B=10 lr 0.1",/' >> "$OUT/fed.jsonl"
$LOOM federate $common --local-epochs 1 --local-batch 0 --lr 0.5 --rounds "${FEDSGD_ROUNDS:-300}" --eval-every 5 \
  | tail -1 | sed 's/^{/{"algorithm":"FedSGD E=1 B=all lr 0.5",/' >> "$OUT/fed.jsonl"
cat "$OUT"/*.jsonl
