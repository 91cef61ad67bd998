#!/usr/bin/env bash
# The workloads of /work/shared/WORKLOADS.md compared the way issue 12 asks: PyTorch 3 runs and loom 2 runs per
# workload, interleaved (torch, loom, torch, loom, torch) so a change in the machine's load hits both, every run
# printed, then best against best. PyTorch 1.13 here is bimodal from run to run (the same epoch takes 9 s or
# 29 s), so one PyTorch run is not a result. Also: peak RSS of every run, and for the GPT workloads the model
# FLOP/s (6 x matmul parameters + 12 x layers x context x width per token, PaLM's count) against the GEMM
# ceiling measured in the same run (the best of loom's and PyTorch's sgemm at 1024 and 2048).
#   bench/workloads.sh BUILD_DIR [THREADS] [W1 W2 W3 W4 W5]      (default: all five)
# Environment: W3_STEPS (200), W4_STEPS (100), W5_STEPS (4, the first is warm-up). Prints JSON lines, then a
# table. Not run by CI (minutes of training); `make bench` runs it.
set -euo pipefail
BUILD=${1:-build}
THREADS=${2:-2}
shift $(($# >= 2 ? 2 : $#)) || true
WORKLOADS=${*:-W1 W2 W3 W4 W5}
W3_STEPS=${W3_STEPS:-200}
W4_STEPS=${W4_STEPS:-100}
W5_STEPS=${W5_STEPS:-4}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
REF=$HERE/../../shared/bench/torch_ref
[ -d "$REF" ] || REF=$HERE/torch_ref
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
LOG=$TMP/runs.jsonl
export OMP_NUM_THREADS=$THREADS THREADS

TEXT=$TMP/kjv.txt
if command -v bible > /dev/null; then
  bible -f "Gen1:1-Rev22:21" | sed -E 's/^[0-9]?[A-Za-z]+[0-9]+:[0-9]+ //' > "$TEXT"
fi

# emit WORKLOAD IMPL RUN VALUE UNIT: one JSON line per run, with the peak RSS /usr/bin/time wrote to $TMP/time.
emit() {
  local rss
  rss=$(sed -n 's/^PEAK //p' "$TMP/time" | tail -1)
  printf '{"bench":"workload","workload":"%s","impl":"%s","run":%s,"value":%s,"unit":"%s","peak_rss_mb":%.0f}\n' \
    "$1" "$2" "$3" "${4:-0}" "$5" "$(echo "${rss:-0} / 1024" | bc -l)" | tee -a "$LOG"
}
timed() { /usr/bin/time -f 'PEAK %M' -o "$TMP/time" "$@"; }

loom_run() {  # loom_run WORKLOAD: prints the throughput
  case $1 in
    W1|W2)
      local model=mlp; [ "$1" = W2 ] && model=cnn
      timed "$BUILD/loom" train --model $model --data fashion-mnist --epochs 1 --batch-size 64 --optimizer adam \
        --lr 1e-3 --threads "$THREADS" --seed 0 --out "$TMP/run-$1" --json 2> /dev/null |
        $PY -c "import sys,json; print([json.loads(l) for l in sys.stdin if '\"done\"' in l][-1]['train_samples_per_s'])" ;;
    W3)
      timed "$BUILD/bench/gpt_bench" "$THREADS" w3 "$TEXT" "$W3_STEPS" 2> /dev/null |
        $PY -c "import sys,json; print([json.loads(l) for l in sys.stdin if 'train_tokens_per_s' in l][-1]['train_tokens_per_s'])" ;;
    W4)
      timed "$BUILD/loom" train --model lstm-lm --data "text:$TEXT" --tokenizer char --embedding 64 --layers 2 \
        --hidden 256 --context 100 --batch-size 32 --optimizer adam --lr 2e-3 --clip-grad-norm 1 --steps "$W4_STEPS" \
        --threads "$THREADS" --seed 0 --out "$TMP/run-W4" --json 2> /dev/null |
        $PY -c "import sys,json; d=[json.loads(l) for l in sys.stdin if '\"done\"' in l][-1]; print(d.get('train_tokens_per_s', 0))" ;;
    W5)
      timed "$BUILD/bench/gpt_bench" "$THREADS" w5 "$W5_STEPS" 2> /dev/null |
        $PY -c "import sys,json; print([json.loads(l) for l in sys.stdin if 'train_tokens_per_s' in l][-1]['train_tokens_per_s'])" ;;
  esac
}

torch_run() {  # torch_run WORKLOAD: prints the throughput
  case $1 in
    W1|W2)
      local model=mlp; [ "$1" = W2 ] && model=cnn
      (cd "$REF" && BS=64 timed $PY fmnist_train.py $model 1 2> /dev/null) |
        $PY -c "import sys; l=sys.stdin.read().split(); print(dict(zip(l[1::2], l[2::2]))['samples_per_s'])" ;;
    W3)
      (cd "$REF" && timed $PY gpt_char.py "$TEXT" "$W3_STEPS" 2> /dev/null) |
        $PY -c "import sys,re; print(re.findall(r'step \d+ loss [\d.]+ tokens_per_s (\d+)', sys.stdin.read())[-1])" ;;
    W4)
      (cd "$REF" && timed $PY lstm_char.py "$TEXT" "$W4_STEPS" 2> /dev/null) |
        $PY -c "import sys,re; print(re.findall(r'tokens_per_s (\d+)', sys.stdin.read())[-1])" ;;
    W5)
      # gpt2_shape.py runs 4 steps; the first is warm-up, as loom's.
      (cd "$REF" && timed $PY gpt2_shape.py 2> /dev/null) |
        $PY -c "import sys,re; t=[float(x) for x in re.findall(r'train step \d+ [\d.]+s tokens_per_s (\d+)', sys.stdin.read())]; print(sum(t[1:])/len(t[1:]))" ;;
  esac
}

unit() { case $1 in W1|W2) echo samples/s ;; *) echo tokens/s ;; esac; }

# The ceiling: the best sgemm GFLOP/s at 1024 and 2048 of loom and of PyTorch, measured now.
"$BUILD/bench/gemm_bench" "$THREADS" 2> /dev/null | grep '"bench":"gemm"' | tee -a "$LOG" > /dev/null || true
$PY "$HERE/gemm_torch.py" "$THREADS" 2> /dev/null | grep '"bench": *"gemm"' | tee -a "$LOG" > /dev/null || true

for w in $WORKLOADS; do
  if [ "$w" != W1 ] && [ "$w" != W2 ] && [ ! -s "$TEXT" ] && [ "$w" != W5 ]; then
    echo "{\"bench\":\"workload\",\"workload\":\"$w\",\"skipped\":\"no KJV text (apt-get install bible-kjv)\"}"
    continue
  fi
  for r in 1 2 3; do
    emit "$w" torch "$r" "$(torch_run "$w" || echo 0)" "$(unit "$w")"
    if [ "$r" -le 2 ]; then emit "$w" loom "$r" "$(loom_run "$w" || echo 0)" "$(unit "$w")"; fi
  done
done

$PY - "$LOG" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
ceiling = max([r["gflops"] for r in rows if r.get("bench") == "gemm" and r.get("n") in (1024, 2048)] or [0])
# Model FLOPs per trained token (PaLM): 6 x matmul parameters + 12 x layers x context x width.
def flops(L, C, T, V): return 6 * (L * 12 * C * C + C * V) + 12 * L * T * C
per_token = {"W3": flops(4, 128, 128, 63), "W5": flops(12, 768, 64, 50257)}
print(f"\nGEMM ceiling (best sgemm 1024/2048 of loom and PyTorch, this run): {ceiling:.0f} GFLOP/s")
print(f"{'workload':<9}{'PyTorch runs':<26}{'loom runs':<22}{'best/best':>10}{'RSS loom/torch MB':>20}{'model GFLOP/s':>15}{'% ceiling':>10}")
for w in dict.fromkeys(r["workload"] for r in rows if r.get("bench") == "workload" and "value" in r):
    t = [r for r in rows if r.get("workload") == w and r.get("impl") == "torch"]
    l = [r for r in rows if r.get("workload") == w and r.get("impl") == "loom"]
    bt, bl = max(r["value"] for r in t), max(r["value"] for r in l)
    ratio = f"{bl / bt:.2f}x" if bt > 0 else "-"
    rss = f"{max(r['peak_rss_mb'] for r in l):.0f}/{max(r['peak_rss_mb'] for r in t):.0f}"
    g = bl * per_token[w] / 1e9 if w in per_token else None
    print(f"{w:<9}{', '.join('%.0f' % r['value'] for r in t):<26}{', '.join('%.0f' % r['value'] for r in l):<22}{ratio:>10}{rss:>20}"
          + (f"{g:>15.1f}{100 * g / ceiling:>9.0f}%" if g and ceiling else ""))
PYEOF
