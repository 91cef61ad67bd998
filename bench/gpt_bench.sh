#!/usr/bin/env bash
# W3 (char-level GPT on KJV) and W5 (GPT-2 small shape) with loom's GPT and PyTorch's reference scripts,
# side by side in one run, plus the KV cache's per-token speed-up at 512 tokens. Prints JSON lines for
# bench/report.py.   usage: bench/gpt_bench.sh BUILD_DIR [THREADS] [W3_STEPS] [W5_STEPS]
set -euo pipefail
BUILD=${1:-build}
THREADS=${2:-${THREADS:-2}}
W3_STEPS=${3:-300}
W5_STEPS=${4:-4}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
REF=$HERE/../../shared/bench/torch_ref
[ -d "$REF" ] || REF=$HERE/torch_ref
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

TEXT=${KJV_TEXT:-$HOME/.cache/loom/kjv.txt}
if [ ! -s "$TEXT" ] && command -v bible > /dev/null; then
  TEXT=$TMP/kjv.txt
  bible -f "Gen1:1-Rev22:21" | sed -E 's/^[0-9]?[A-Za-z]+[0-9]+:[0-9]+ //' > "$TEXT"
fi

rss() {  # rss IMPL WORKLOAD: prints the peak-RSS JSON line /usr/bin/time wrote
  sed -n 's/^PEAK //p' "$TMP/time" | head -1 |
    awk -v i="$1" -v w="$2" '{printf "{\"bench\":\"gpt\",\"impl\":\"%s\",\"workload\":\"%s\",\"peak_rss_kb\":%d}\n", i, w, $1}'
}

if [ -s "$TEXT" ]; then
  /usr/bin/time -f 'PEAK %M' -o "$TMP/time" "$BUILD/bench/gpt_bench" "$THREADS" w3 "$TEXT" "$W3_STEPS" 2> /dev/null |
    sed 's/,"peak_rss_kb":[0-9]*//'
  rss loom W3
  (cd "$REF" && THREADS=$THREADS OMP_NUM_THREADS=$THREADS /usr/bin/time -f 'PEAK %M' -o "$TMP/time" \
     $PY gpt_char.py "$TEXT" "$W3_STEPS") > "$TMP/w3_torch.txt" 2>&1 || true
  $PY - "$TMP/w3_torch.txt" <<'PYEOF'
import json, re, sys
txt = open(sys.argv[1]).read()
steps = re.findall(r"step (\d+) loss ([\d.]+) tokens_per_s (\d+)", txt)
d = {"bench": "gpt", "impl": "torch", "workload": "W3"}
if steps: d.update(steps=int(steps[-1][0]), train_loss=float(steps[-1][1]), train_tokens_per_s=float(steps[-1][2]))
for k, pat in (("val_loss", r"val_loss ([\d.]+)"), ("gen_tokens_per_s_no_cache", r"gen_tokens_per_s ([\d.]+)")):
    m = re.search(pat, txt)
    if m: d[k] = float(m.group(1))
print(json.dumps(d))
PYEOF
  rss torch W3
fi

/usr/bin/time -f 'PEAK %M' -o "$TMP/time" "$BUILD/bench/gpt_bench" "$THREADS" w5 "$W5_STEPS" 2> /dev/null | sed 's/,"peak_rss_kb":[0-9]*//'
rss loom W5
(cd "$REF" && THREADS=$THREADS OMP_NUM_THREADS=$THREADS /usr/bin/time -f 'PEAK %M' -o "$TMP/time" \
   $PY gpt2_shape.py) > "$TMP/w5_torch.txt" 2>&1 || true
$PY - "$TMP/w5_torch.txt" <<'PYEOF'
import json, re, sys
txt = open(sys.argv[1]).read()
tps = [float(x) for x in re.findall(r"train step \d+ [\d.]+s tokens_per_s (\d+)", txt)]
d = {"bench": "gpt", "impl": "torch", "workload": "W5"}
if len(tps) > 1: d["train_tokens_per_s"] = sum(tps[1:]) / len(tps[1:])  # the first step is warm-up, as loom's
m = re.search(r"= (\d+) tok/s", txt)
if m: d["prefill_tokens_per_s"] = float(m.group(1))
print(json.dumps(d))
PYEOF
rss torch W5

"$BUILD/bench/gpt_bench" "$THREADS" decode 2> /dev/null
