#!/usr/bin/env bash
# Packs what bench/gpu_check.sh needs to run on a GPU machine whose image lacks loom's build dependencies
# (OpenBLAS, libjpeg, libsodium, gtest, ...): the check's binaries from a LOOM_CUDA=ON Release build made here, the
# shared libraries they load that are not glibc's or libstdc++'s, and optionally the data, into
# .gpu_bundle.tar.xz (git-ignored; about 15 MB without the data). On the GPU machine, gpu_check.sh unpacks it and
# skips its own build when configuring there fails or PREBUILT=1 is set.
#   cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOOM_CUDA=ON -DLOOM_NATIVE=OFF
#   cmake --build build-cuda -j1 --target gpu_check_bench test_cross_backend test_cuda_device test_strict_backend
#   bash bench/gpu_bundle.sh build-cuda [--data]      # then carry .gpu_bundle.tar.xz (and .gpu_data with --data)
# LOOM_NATIVE=OFF matters: -march=native code from this CPU may not run on the GPU machine's.
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:?usage: gpu_bundle.sh BUILD_DIR [--data]}
OUT=.gpu_bundle
rm -rf "$OUT" && mkdir -p "$OUT/bin" "$OUT/lib"
for b in bench/gpu_check_bench tests/test_cross_backend tests/test_cuda_device tests/test_strict_backend; do
  [ -x "$BUILD/$b" ] || { echo "gpu_bundle: $BUILD/$b is missing: build it first (LOOM_CUDA=ON)"; exit 1; }
  strip -o "$OUT/bin/$(basename "$b")" "$BUILD/$b"
done
grep -q "LOOM_NATIVE:BOOL=OFF" "$BUILD/CMakeCache.txt" || echo "gpu_bundle: warning: $BUILD has LOOM_NATIVE=ON (-march=native)"
# The libraries outside the C runtime and the compiler's own (the GPU machine has those, newer).
for b in "$OUT"/bin/*; do ldd "$b"; done | awk '$3 ~ /^\// {print $3}' | sort -u | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|ld-linux*|libstdc++.so*|libgcc_s.so*) ;;
    *) cp -L "$lib" "$OUT/lib/" ;;
  esac
done
if [ "${2:-}" = "--data" ]; then
  mkdir -p .gpu_data/fashion-mnist
  cp /usr/share/datasets/fashion-mnist/train-*-ubyte.gz .gpu_data/fashion-mnist/
  if command -v bible >/dev/null; then
    bible -f "Gen1:1-Rev22:21" | sed -E 's/^[0-9]?[A-Za-z]+[0-9]+:[0-9]+ //' >.gpu_data/kjv.txt
  fi
  echo "gpu_bundle: data in .gpu_data ($(du -sh .gpu_data | cut -f1)); carry it too"
fi
tar -cJf .gpu_bundle.tar.xz "$OUT"
rm -rf "$OUT"
EXCLUDE=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$EXCLUDE")"
grep -qx '/.gpu_bundle.tar.xz' "$EXCLUDE" 2>/dev/null || printf '/.gpu_bundle.tar.xz\n/.gpu_bundle/\n/.gpu_data/\n' >>"$EXCLUDE"
echo "gpu_bundle: .gpu_bundle.tar.xz $(du -h .gpu_bundle.tar.xz | cut -f1); run with carry [.gpu_bundle.tar.xz, .gpu_data]"
