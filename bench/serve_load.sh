#!/usr/bin/env bash
# Load test of `loom serve` on loopback: a random W3-shape char GPT run folder, 64 connections for 30 s of
# mixed requests (autocannon, from the test-only npm folder), a 5 s warm-up first. Reports p50/p99 latency,
# failures (anything but 200 and deliberate 429s), and the server's RSS before, after warm-up and at the end.
#   bench/serve_load.sh [build-dir]      (CONNECTIONS, DURATION, PARALLEL, QUEUE override the defaults)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
CONNECTIONS=${CONNECTIONS:-64} DURATION=${DURATION:-30} PARALLEL=${PARALLEL:-8} QUEUE=${QUEUE:-32}
CLIENTS=$("$ROOT/scripts/install_serve_clients.sh") || { echo "serve_load: SKIPPED, npm unreachable"; exit 0; }
WORK=$(mktemp -d)
PID=""
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; rm -rf "$WORK"' EXIT
# A W3-shape GPT (4 layers, width 128, 4 heads) with random weights and a character vocabulary.
# A small text holding every character the requests use (the weights are near-random: speed does not depend on them).
for _ in $(seq 60); do echo "In the beginning God created the heaven and the earth. And God said, Let there be light:"
  echo "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,;:!?'()-"; done > "$WORK/text.txt"
"$BUILD/loom" train --model gpt --data "text:$WORK/text.txt" --tokenizer char --layers 4 --heads 4 --width 128 \
  --context 256 --batch-size 2 --steps 1 --threads 2 --out "$WORK/run" >/dev/null
"$BUILD/loom" serve --checkpoint "$WORK/run" --port 0 --parallel "$PARALLEL" --max-queue "$QUEUE" --threads 2 \
  --name w3 2>"$WORK/log" &
PID=$!
for _ in $(seq 200); do grep -q "ready" "$WORK/log" 2>/dev/null && break; sleep 0.1; done
PORT=$(grep -o 'http://127.0.0.1:[0-9]*' "$WORK/log" | head -1 | sed 's/.*://')
rss() { awk '/VmRSS/ {print $2 / 1024}' /proc/$PID/status; }
RSS0=$(rss)
CLIENTS_DIR=$CLIENTS BASE=http://127.0.0.1:$PORT MODEL=w3 CONNECTIONS=$CONNECTIONS DURATION=5 node "$ROOT/bench/serve_load.cjs" >/dev/null
RSS1=$(rss)
OUT=$(CLIENTS_DIR=$CLIENTS BASE=http://127.0.0.1:$PORT MODEL=w3 CONNECTIONS=$CONNECTIONS DURATION=$DURATION node "$ROOT/bench/serve_load.cjs")
RSS2=$(rss)
TOKENS=$(curl -s http://127.0.0.1:$PORT/metrics | awk '/^loom_generated_tokens_total/ {print $2}')
kill -TERM $PID; wait $PID; RC=$?
echo "{\"bench\":\"serve_load\",\"connections\":$CONNECTIONS,\"duration_s\":$DURATION,\"parallel\":$PARALLEL,\"result\":$OUT,\"rss_mb_start\":$RSS0,\"rss_mb_after_warmup\":$RSS1,\"rss_mb_end\":$RSS2,\"generated_tokens\":$TOKENS,\"exit_status_after_sigterm\":$RC}"
