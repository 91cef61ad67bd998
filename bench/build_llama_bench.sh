#!/usr/bin/env bash
# Builds llama.cpp's own benchmark, llama-bench, from the llama.cpp source that node-llama-cpp's npm package ships
# (llama/gitRelease.bundle, a git bundle of the release it binds), with OpenMP and -march=native as llama.cpp builds
# by default. node-llama-cpp's prebuilt binaries run without OpenMP and decode at about half of llama-bench's speed
# on this machine, so the comparison in bench/gguf_vs_llama.sh uses this build when it exists. `make bench` only
# (~9 minutes on 2 cores), never CI. Prints the llama-bench path; exits 3 when node-llama-cpp cannot be installed.
#   LLAMA_BENCH=$(bench/build_llama_bench.sh build)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BUILD="${1:-build}"
OUT="$BUILD/llama-bench"
BIN="$OUT/build/bin/llama-bench"
if [ -x "$BIN" ]; then echo "$(cd "$(dirname "$BIN")" && pwd)/llama-bench"; exit 0; fi
NODE_DIR=$("$HERE/../scripts/install_llama_cpp_node.sh") || { echo "node-llama-cpp unavailable (npm unreachable?)" >&2; exit 3; }
BUNDLE="$NODE_DIR/node_modules/node-llama-cpp/llama/gitRelease.bundle"
[ -f "$BUNDLE" ] || { echo "$BUNDLE: not found (node-llama-cpp changed its layout?)" >&2; exit 3; }
mkdir -p "$OUT"
[ -d "$OUT/src/.git" ] || git clone -q "$BUNDLE" "$OUT/src" 2>/dev/null
# Only what llama-bench needs: no server, no curl (no network), no tests or examples.
cmake -S "$OUT/src" -B "$OUT/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DGGML_OPENMP=ON \
  -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
  -DLLAMA_BUILD_TOOLS=ON -DBUILD_SHARED_LIBS=OFF >&2
cmake --build "$OUT/build" --target llama-bench -j "${LLAMA_JOBS:-$(nproc)}" >&2
echo "$(cd "$(dirname "$BIN")" && pwd)/llama-bench"
