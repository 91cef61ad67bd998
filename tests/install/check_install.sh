#!/usr/bin/env bash
# Installs the built loom into a temporary prefix, then configures, builds and runs consumer projects that
# find it with find_package(loom):
#   consumer           the documented way (find_package + loom::loom), trains y = 3x + 1; its stream_run
#                      loads a run folder `loom train` wrote (loom::runtime) and streams generated text
#   consumer_umbrella  no CMAKE_CXX_STANDARD, only <loom/loom.h>: tokenizer + GPT + streamed generation
#   consumer_models    links loom::models alone (a server: no train, text, dist)
#   consumer_dist      find_package(loom COMPONENTS dist) + loom::dist
# and checks that the installed package names no absolute library path of this machine.
# usage: check_install.sh BUILD_DIR
set -euo pipefail
BUILD=$1
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cmake --install "$BUILD" --prefix "$TMP/prefix" > /dev/null
if grep -nE '(^|[" ;])/(usr|opt|lib|lib64|home|work|tmp)/[^" ;]*\.(so|a)' "$TMP"/prefix/lib*/cmake/loom/loom*Targets*.cmake; then
  echo "check_install: the installed loom targets name absolute library paths (above); use imported targets" >&2
  exit 1
fi
for c in consumer consumer_umbrella consumer_models consumer_dist; do
  echo "== $c"
  cmake -S "$HERE/$c" -B "$TMP/build-$c" -G Ninja -DCMAKE_PREFIX_PATH="$TMP/prefix" -DCMAKE_BUILD_TYPE=Release \
    > "$TMP/$c.log" 2>&1 || { cat "$TMP/$c.log"; exit 1; }
  cmake --build "$TMP/build-$c" > "$TMP/$c.log" 2>&1 || { cat "$TMP/$c.log"; exit 1; }
  "$TMP/build-$c/$c"
done
# A run folder written by `loom train`, loaded and streamed by the consumer's stream_run through loom::runtime.
if [ -x "$BUILD/loom" ]; then
  echo "== stream_run"
  printf 'In the beginning God created the heaven and the earth.\n%.0s' $(seq 40) > "$TMP/text.txt"
  "$BUILD/loom" train --model gpt --data "text:$TMP/text.txt" --tokenizer char --layers 1 --heads 2 --width 16 \
    --context 16 --batch-size 2 --steps 2 --threads 1 --out "$TMP/run" > /dev/null
  "$TMP/build-consumer/stream_run" "$TMP/run" "In the"
fi
