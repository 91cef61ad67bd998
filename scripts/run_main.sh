#!/usr/bin/env bash
# `make run`: train the seed CNN on Fashion-MNIST (Debian's dataset-fashion-mnist, nothing downloaded), report
# its test accuracy, keep the run in runs/cnn-fmnist/, and classify a few test images with the saved model.
#   bash scripts/run_main.sh [BUILD_DIR]      (make run builds first, then calls this)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
LOOM="$BUILD/loom"
OUT=runs/cnn-fmnist
TEST_IMAGES=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz

if [ ! -x "$LOOM" ]; then
  echo "run_main.sh: $LOOM is missing; 'make run' builds it first" >&2
  exit 1
fi

"$LOOM" info
echo
# The same recipe as bench/torch_ref/fmnist_train.py cnn 5 (PyTorch reaches 90.2% test accuracy with it).
"$LOOM" train --model cnn --data fashion-mnist --epochs 5 --batch-size 64 --optimizer adam --lr 1e-3 \
  --threads 2 --out "$OUT"
echo
echo "== loom predict on the first test images (idx:FILE:INDEX reads them straight from the IDX file)"
"$LOOM" predict --checkpoint "$OUT" "idx:$TEST_IMAGES:0" "idx:$TEST_IMAGES:1" "idx:$TEST_IMAGES:2" \
  "idx:$TEST_IMAGES:3"
echo
echo "The run is in $OUT/: model.safetensors (loads in PyTorch), checkpoint.safetensors (--resume), config.json,"
echo "metrics.csv and curves.png. Evaluate it again with: $LOOM eval --checkpoint $OUT"
