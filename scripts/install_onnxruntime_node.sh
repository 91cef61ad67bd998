#!/usr/bin/env bash
# Installs the npm package onnxruntime-node (the ONNX check of `loom export --format onnx`) into a test-only
# folder (nothing global). Its CPU library ships inside the npm tarball; the package's postinstall script would
# fetch CUDA binaries from GitHub, so install scripts are switched off (--ignore-scripts, and
# ONNXRUNTIME_NODE_INSTALL[_CUDA]=skip for good measure): only npm's registry is contacted.
# Prints the folder on success; exits 3 when npm or its registry cannot be reached (the caller skips, visibly).
#   dir=$(scripts/install_onnxruntime_node.sh) || echo "skipping: npm unreachable"
set -uo pipefail
VERSION=1.30.0
DIR="${LOOM_ONNXRUNTIME_NODE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/loom/onnxruntime-node}"
# ctest runs tests side by side, and on a fresh machine several may install at once: one at a time, the others
# wait and then find the packages installed.
mkdir -p "$(dirname "$DIR")" && exec 9>"$DIR.lock" && flock 9
if [ -f "$DIR/node_modules/onnxruntime-node/package.json" ] &&
   grep -q "\"version\": \"$VERSION\"" "$DIR/node_modules/onnxruntime-node/package.json"; then
  echo "$DIR"; exit 0
fi
command -v npm >/dev/null || { echo "npm not found" >&2; exit 3; }
command -v node >/dev/null || { echo "node not found" >&2; exit 3; }
mkdir -p "$DIR"
[ -f "$DIR/package.json" ] || echo '{"name":"loom-onnxruntime-node","private":true}' > "$DIR/package.json"
export ONNXRUNTIME_NODE_INSTALL=skip ONNXRUNTIME_NODE_INSTALL_CUDA=skip
if ! (cd "$DIR" && timeout 600 npm install --silent --no-audit --no-fund --ignore-scripts "onnxruntime-node@$VERSION" >&2); then
  echo "npm install failed (registry unreachable?)" >&2; exit 3
fi
echo "$DIR"
