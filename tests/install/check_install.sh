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
