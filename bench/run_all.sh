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
echo "== W2 step by op: each op of the seed CNN alone, then the whole Adam step (microseconds, batch 64)"
"$BUILD/bench/cnn_bench" "$THREADS" > "$OUT/cnn_step.jsonl"
OMP_NUM_THREADS=$THREADS $PY "$HERE/cnn_torch.py" "$THREADS" >> "$OUT/cnn_step.jsonl"
"$BUILD/bench/cnn_bench" "$THREADS" >> "$OUT/cnn_step.jsonl"
echo "== scaled_dot_product_attention forward+backward at W3/W5 shapes and T=512/1024 (vs torch 1.13's matmul-softmax-matmul)"
"$BUILD/bench/attention_bench" "$THREADS" > "$OUT/attention.jsonl"
OMP_NUM_THREADS=$THREADS $PY "$HERE/attention_torch.py" "$THREADS" >> "$OUT/attention.jsonl"
"$BUILD/bench/attention_bench" "$THREADS" >> "$OUT/attention.jsonl"

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
if [ -x "$BUILD/loom" ] && command -v bible >/dev/null && [ "${2:-}" != quick ]; then
  # W4: loom's LSTM LM vs our copy of lstm_char.py that also reports the validation loss (bench/lstm_char_val.py).
  W4_STEPS=${W4_STEPS:-300}
  echo "== W4: char-level LSTM LM on KJV, $W4_STEPS steps, batch 32 x 100, Adam 2e-3, clip 1"
  bible -f "Gen1:1-Rev22:21" | sed -E 's/^[0-9]?[A-Za-z]+[0-9]+:[0-9]+ //' > "$OUT/kjv.txt"
  /usr/bin/time -f '{"bench":"lstm_lm","impl":"loom_rss","peak_rss_kb":%M}' -a -o "$OUT/w4.jsonl" \
    "$BUILD/loom" train --model lstm-lm --data kjv --tokenizer char --embedding 64 --layers 2 --hidden 256 \
    --context 100 --batch-size 32 --optimizer adam --lr 2e-3 --clip-grad-norm 1 --steps "$W4_STEPS" \
    --threads "$THREADS" --seed 0 --out "$OUT/run-w4" --json | grep '"event":"done"' |
    sed 's/^{/{"bench":"lstm_lm","impl":"loom",/' >> "$OUT/w4.jsonl"
  THREADS=$THREADS /usr/bin/time -f '{"bench":"lstm_lm","impl":"torch_rss","peak_rss_kb":%M}' -a -o "$OUT/w4.jsonl" \
    $PY "$HERE/lstm_char_val.py" "$OUT/kjv.txt" "$W4_STEPS" | tail -1 |
    sed 's/^{/{"bench":"lstm_lm","impl":"torch",/' >> "$OUT/w4.jsonl"
fi
if [ -x "$BUILD/bench/gpt_bench" ] && [ "${2:-}" != quick ]; then
  echo "== W3 / W5: GPT training tokens/s, validation loss, KV-cache generation (bench/gpt_bench.sh)"
  "$HERE/gpt_bench.sh" "$BUILD" "$THREADS" > "$OUT/gpt.jsonl"
fi
if [ -x "$BUILD/bench/gguf_bench" ] && [ "${2:-}" != quick ]; then
  echo "== GGUF decode: loom vs llama.cpp on the same files (f32, q8_0, q4_0; bench/gguf_vs_llama.sh)"
  bash "$HERE/gguf_vs_llama.sh" "$BUILD" "$THREADS" 2 | grep '^{' > "$OUT/gguf.jsonl" || true
fi
if [ -x "$BUILD/loom" ] && command -v mpirun >/dev/null && "$BUILD/loom" info 2>/dev/null | grep -qi "mpi.*yes" &&
   [ "${2:-}" != quick ]; then
  echo "== W2 data-parallel: 2 ranks x 1 thread vs 1 rank x 1 thread (bench/dist_bench.sh)"
  bash "$HERE/dist_bench.sh" "$BUILD" 2 300 2 | grep '^{' > "$OUT/dist.jsonl" || true
fi
cat "$OUT"/*.jsonl | $PY "$HERE/report.py"
if [ "${2:-}" != quick ]; then
  # Issue 12's method for the ratios that count: PyTorch 3 runs, loom 2, interleaved, best against best.
  echo "== W1-W5 best of runs (bench/workloads.sh: PyTorch 3 runs, loom 2, every run listed)"
  bash "$HERE/workloads.sh" "$BUILD" "$THREADS"
fi
