#!/usr/bin/env bash
# loom against llama.cpp on the same GGUF files (GPT-2 124M shape, random weights, GPT-2 vocabulary): f32, q8_0
# and q4_0, prompt processing (one 128-token prefill) and generation (single-token greedy steps), interleaved per
# type so a busy machine slows both alike; best of ROUNDS for each. llama.cpp is measured two ways: its own
# llama-bench (-p 128 -n 64), built natively with OpenMP from the source node-llama-cpp ships
# (bench/build_llama_bench.sh; LLAMA_BENCH=PATH uses another build, LLAMA_BENCH=none skips it), which is the anchor
# issue 13 names; and node-llama-cpp's prebuilt CPU binary (built without OpenMP, about half llama-bench's decode
# speed here), kept for continuity with earlier figures. Prints JSON lines.
#   bench/gguf_vs_llama.sh BUILD_DIR [THREADS] [ROUNDS]
set -euo pipefail
BUILD=${1:-build}
THREADS=${2:-2}
ROUNDS=${3:-2}
HERE=$(cd "$(dirname "$0")" && pwd)
LLAMA_NODE_DIR=$("$HERE/../scripts/install_llama_cpp_node.sh") || { echo "node-llama-cpp unavailable (npm unreachable?)" >&2; exit 3; }
export LLAMA_NODE_DIR NODE_LLAMA_CPP_SKIP_DOWNLOAD=true
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
GEN=64
IDS=$(seq 1000 1127 | paste -sd,)  # 128 prompt tokens
"$BUILD/bench/gguf_bench" export "$TMP"
LLAMA_BENCH=${LLAMA_BENCH:-$("$HERE/build_llama_bench.sh" "$BUILD" || echo none)}
for t in f32 q8_0 q4_0; do
  f=$TMP/gpt2_$t.gguf
  # OpenMP's default wait policy (threads spin briefly between parallel regions), as llama.cpp's threads spin: with
  # OMP_WAIT_POLICY=passive every decode step pays thread wake-ups, which halved loom's q8_0 generation here (96 vs
  # 192 tokens/s, perf: kernel scheduler time) and was the "GGUF path is slower" puzzle of an earlier measurement.
  "$BUILD/bench/gguf_bench" run "$THREADS" "$f" "$IDS" "$GEN" "$ROUNDS"
  best_gen=0; best_prompt=0
  for r in $(seq "$ROUNDS"); do
    out=$(node "$HERE/../tests/gguf/llama_greedy.mjs" "$f" "$IDS" $((GEN + 1)) "" "$THREADS" | tail -1)
    best_gen=$(echo "$out" | python3 -c "import json,sys; d=json.load(sys.stdin); print(max($best_gen, d['decode_tps']))")
    best_prompt=$(echo "$out" | python3 -c "import json,sys; d=json.load(sys.stdin); print(max($best_prompt, 128000/d['prefill_ms']))")
  done
  printf '{"bench": "gguf_decode", "impl": "llama.cpp (node-llama-cpp)", "file": "gpt2_%s.gguf", "threads": %s, "prompt_tokens_per_s": %.1f, "generated_tokens_per_s": %.1f}\n' \
    "$t" "$THREADS" "$best_prompt" "$best_gen"
  if [ "$LLAMA_BENCH" != none ]; then
    # One JSON object per test (pp128, tg64); samples_ts holds each repetition: the best one counts, as for loom.
    "$LLAMA_BENCH" -m "$f" -t "$THREADS" -p 128 -n 64 -r "$ROUNDS" -o jsonl 2>/dev/null | python3 -c "
import json, sys
row = {'bench': 'gguf_decode', 'impl': 'llama.cpp (llama-bench)', 'file': 'gpt2_$t.gguf', 'threads': $THREADS}
for line in sys.stdin:
    d = json.loads(line)
    best = max(d.get('samples_ts') or [d['avg_ts']])
    row['prompt_tokens_per_s' if d['n_prompt'] else 'generated_tokens_per_s'] = round(best, 1)
print(json.dumps(row))"
  fi
done
