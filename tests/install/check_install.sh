#!/usr/bin/env bash
# Installs the built loom into a temporary prefix, then configures, builds and runs a consumer project
# that finds it with find_package(loom).  usage: check_install.sh BUILD_DIR
set -euo pipefail
BUILD=$1
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cmake --install "$BUILD" --prefix "$TMP/prefix" > /dev/null
cmake -S "$HERE/consumer" -B "$TMP/build" -G Ninja -DCMAKE_PREFIX_PATH="$TMP/prefix" -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build "$TMP/build" > /dev/null
"$TMP/build/consumer"
# A run folder written by `loom train`, loaded and streamed by the consumer through loom::runtime.
if [ -x "$BUILD/loom" ]; then
  printf 'In the beginning God created the heaven and the earth.\n%.0s' $(seq 40) > "$TMP/text.txt"
  "$BUILD/loom" train --model gpt --data "text:$TMP/text.txt" --tokenizer char --layers 1 --heads 2 --width 16 \
    --context 16 --batch-size 2 --steps 2 --threads 1 --out "$TMP/run" > /dev/null
  "$TMP/build/stream_run" "$TMP/run" "In the"
fi
