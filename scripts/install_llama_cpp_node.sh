#!/usr/bin/env bash
# Installs node-llama-cpp (llama.cpp's prebuilt linux-x64 CPU binaries, as npm packages) into a test-only folder
# (nothing global) for the GGUF check (tests/test_cli_gguf_llama.cpp, bench/gguf_vs_llama.sh).
# Only npm's registry is used: NODE_LLAMA_CPP_SKIP_DOWNLOAD stops the postinstall step from fetching or building
# llama.cpp from GitHub, and --omit=optional skips the CUDA / Vulkan / other-platform binary packages (hundreds of
# MB); the one CPU package is then installed by name, pinned to the same version.
# Prints the folder on success; exits 3 when npm or its registry cannot be reached (the caller skips, visibly).
#   dir=$(scripts/install_llama_cpp_node.sh) || echo "skipping: npm unreachable"
set -uo pipefail
VERSION="${LOOM_NODE_LLAMA_CPP_VERSION:-3.22.1}"
DIR="${LOOM_LLAMA_CPP_NODE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/loom/node-llama-cpp}"
# ctest runs tests side by side, and on a fresh machine several may install at once: one at a time, the others
# wait and then find the packages installed.
mkdir -p "$(dirname "$DIR")" && exec 9>"$DIR.lock" && flock 9
if [ -f "$DIR/node_modules/node-llama-cpp/package.json" ] && [ -f "$DIR/node_modules/@node-llama-cpp/linux-x64/package.json" ]; then
  echo "$DIR"; exit 0
fi
[ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] || { echo "node-llama-cpp's prebuilt CPU binaries used here are linux-x64 only" >&2; exit 3; }
command -v npm >/dev/null || { echo "npm not found" >&2; exit 3; }
mkdir -p "$DIR"
[ -f "$DIR/package.json" ] || echo '{"name":"loom-llama-cpp-check","private":true,"type":"module"}' > "$DIR/package.json"
export NODE_LLAMA_CPP_SKIP_DOWNLOAD=true
if ! (cd "$DIR" && timeout 600 npm install --silent --no-audit --no-fund --omit=optional \
        "node-llama-cpp@$VERSION" "@node-llama-cpp/linux-x64@$VERSION" >&2); then
  echo "npm install failed (registry unreachable?)" >&2; exit 3
fi
echo "$DIR"
