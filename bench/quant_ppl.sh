#!/usr/bin/env bash
# Validation loss / perplexity of a language-model run in f32 and after `loom quantize` to Q8_0 and Q4_0, plus
# each model.safetensors size. One JSON line per format.
#   bench/quant_ppl.sh build/loom runs/gpt [THREADS] [MAX_TOKENS]   (MAX_TOKENS 0: the whole validation split)
set -euo pipefail
LOOM=$1 RUN=$2 THREADS=${3:-2} MAX_TOKENS=${4:-0}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
for fmt in f32 q8_0 q4_0; do
  dir=$RUN
  if [ "$fmt" != f32 ]; then
    dir=$OUT/$fmt
    "$LOOM" quantize --checkpoint "$RUN" --format "$fmt" --out "$dir" > /dev/null
  fi
  loss=$("$LOOM" eval --checkpoint "$dir" --val-split --threads "$THREADS" --max-tokens "$MAX_TOKENS" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["loss"])')
  bytes=$(stat -c %s "$dir/model.safetensors")
  python3 -c "import math; print('{\"bench\": \"quant_ppl\", \"format\": \"$fmt\", \"val_loss\": %.5f, \"perplexity\": %.4f, \"model_bytes\": $bytes}' % ($loss, math.exp($loss)))"
done
