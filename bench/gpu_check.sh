#!/usr/bin/env bash
# The GPU check of issue 11, in one run on a machine with an NVIDIA GPU (sized for one H100/H200, < 8 minutes):
#   1. build with LOOM_CUDA=ON (Release) only the targets the check needs
#   2. the cross-backend op tests on CUDA (tests/test_cross_backend.cpp) and the device tests
#   3. W2 (seed CNN, 1 epoch) and W3 (char GPT, 300 steps) on the GPU and on the CPU: loss curves compared
#      (W3: last-20-step mean loss within 0.02)
#   4. W5 (GPT-2 124M shape, B=16, T=1024, bf16): train tokens/s, MFU, peak GPU memory; decode tokens/s
# Every figure is printed; the exit status is 0 only when every part passed. Without a GPU it says so and exits 2
# at once (before building). Usage, from the repository root:
#   bash bench/gpu_check.sh                 # build folder build-gpu, 16 jobs
#   BUILD=build-gpu JOBS=16 FMNIST=/path/to/fashion-mnist KJV=/path/kjv.txt bash bench/gpu_check.sh
#   PREBUILT=1 bash bench/gpu_check.sh      # the binaries of .gpu_bundle.tar.xz (bench/gpu_bundle.sh), no build
# (it also falls back to that bundle when configuring fails, e.g. an image without OpenBLAS or gtest)
# Data: FMNIST (default /usr/share/datasets/fashion-mnist, or .gpu_data/fashion-mnist) and KJV (a text file,
# default .gpu_data/kjv.txt, or made with the `bible` command); when absent, the check runs on synthetic data
# of the same shapes and says so (the CPU/GPU comparison holds the same).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-gpu}
JOBS=${JOBS:-16}
W3_STEPS=${W3_STEPS:-300}
W5_STEPS=${W5_STEPS:-10}
T0=$(date +%s)
FAILED=()
say() { echo "gpu_check: $*"; }
elapsed() { echo "$(( $(date +%s) - T0 )) s"; }
fail() { FAILED+=("$1"); say "FAILED: $1"; }

# ---- 0. is there a GPU at all? (cheap, before any build)
if ! command -v nvidia-smi >/dev/null 2>&1; then
  say "no GPU: nvidia-smi is not installed (no NVIDIA driver on this machine); nothing to check"
  exit 2
fi
if ! SMI=$(timeout 60 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1) || [ -z "$SMI" ]; then
  say "no GPU: nvidia-smi found no usable device: ${SMI:-no output}"
  exit 2
fi
say "GPU: $SMI"
command -v nvcc >/dev/null 2>&1 || export PATH=/usr/local/cuda/bin:$PATH
say "nvcc: $(nvcc --version 2>/dev/null | tail -1 || echo 'not found')"

# ---- 1. build (or, where the image lacks loom's dependencies, the binaries of bench/gpu_bundle.sh)
use_bundle() {
  [ -f .gpu_bundle.tar.xz ] || { say "no .gpu_bundle.tar.xz either (bench/gpu_bundle.sh makes it); stopping"; exit 3; }
  rm -rf "$BUILD-bundle" && mkdir -p "$BUILD-bundle" && tar -xJf .gpu_bundle.tar.xz -C "$BUILD-bundle"
  BIN="$BUILD-bundle/.gpu_bundle/bin"
  export LD_LIBRARY_PATH="$BUILD-bundle/.gpu_bundle/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  say "using the prebuilt binaries of .gpu_bundle.tar.xz"
}
BIN=""
mkdir -p "$BUILD"
if [ "${PREBUILT:-0}" = 1 ]; then
  use_bundle
else
  say "configuring $BUILD (Release, LOOM_CUDA=ON, sm_90)"
  if ! cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOOM_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
       >"$BUILD/configure.log" 2>&1; then
    grep -E "Could NOT|not found|Error" "$BUILD/configure.log" | head -10
    say "configure failed (missing dependencies above: scripts/install_deps.sh installs them)"
    use_bundle
  else
    TARGETS="gpu_check_bench test_cross_backend test_cuda_device test_strict_backend"
    if ! cmake --build "$BUILD" -j "$JOBS" --target $TARGETS >"$BUILD/build.log" 2>&1; then
      grep -E "error|Error" "$BUILD/build.log" | head -40
      say "build failed (log: $BUILD/build.log); stopping"
      exit 3
    fi
    mkdir -p "$BUILD/check-bin"
    for b in bench/gpu_check_bench tests/test_cross_backend tests/test_cuda_device tests/test_strict_backend; do
      ln -sf "$PWD/$BUILD/$b" "$BUILD/check-bin/"
    done
    BIN="$BUILD/check-bin"
  fi
fi
say "ready in $(elapsed)"
BENCH="$BIN/gpu_check_bench"
if ! "$BENCH" info; then
  say "no GPU usable by loom (the line above says why); stopping"
  exit 2
fi

# ---- 2. op parity
say "cross-backend op tests on CUDA"
if ! "$BIN/test_cross_backend" --gtest_filter='Cuda/*:CrossBackendHarness.*' --gtest_brief=1; then
  fail "cross-backend op tests"
fi
# (the two tests that run the loom command need the CLI, which this check does not build)
"$BIN/test_cuda_device" --gtest_brief=1 --gtest_filter='-CudaDevice.LoomInfo*:CudaDevice.TrainWith*' || fail "device tests"
"$BIN/test_strict_backend" --gtest_brief=1 || fail "strict-device tests"
say "op tests done at $(elapsed)"

# ---- 3. W2 and W3, GPU against CPU
FMNIST=${FMNIST:-}
for d in .gpu_data/fashion-mnist /usr/share/datasets/fashion-mnist; do
  [ -z "$FMNIST" ] && [ -f "$d/train-images-idx3-ubyte.gz" ] && FMNIST=$d
done
if [ -z "$FMNIST" ]; then FMNIST=synthetic; say "W2: Fashion-MNIST not found: synthetic images (6,400 samples)"; fi
KJV=${KJV:-}
if [ -z "$KJV" ] && [ -f .gpu_data/kjv.txt ]; then KJV=.gpu_data/kjv.txt; fi
if [ -z "$KJV" ] && command -v bible >/dev/null 2>&1; then
  bible -f "Gen1:1-Rev22:21" | sed -E 's/^[0-9]?[A-Za-z]+[0-9]+:[0-9]+ //' >"$BUILD/kjv.txt" && KJV=$BUILD/kjv.txt
fi
if [ -z "$KJV" ]; then KJV=synthetic; say "W3: KJV text not found: a synthetic text"; fi

run_pair() {  # workload args...: the same run on cuda and on cpu, lines kept in $BUILD/<w>.<device>.jsonl
  local w=$1; shift
  for dev in cuda cpu; do
    say "$w on $dev: $*"
    if ! OMP_NUM_THREADS=${OMP_NUM_THREADS:-16} "$BENCH" "$w" "$dev" "$@" | tee "$BUILD/$w.$dev.jsonl"; then
      fail "$w on $dev"
    fi
  done
}
# compare W LIMIT KEY: the largest |GPU - CPU| of KEY over matching lines, against LIMIT.
compare() {
  python3 - "$BUILD/$1.cuda.jsonl" "$BUILD/$1.cpu.jsonl" "$2" "$3" <<'PY'
import json, sys
def rows(p):
    out = {}
    for line in open(p):
        try: r = json.loads(line)
        except ValueError: continue
        if sys.argv[4] in r: out[r.get("step", "done")] = r[sys.argv[4]]
    return out
g, c, lim = rows(sys.argv[1]), rows(sys.argv[2]), float(sys.argv[3])
common = sorted(set(g) & set(c), key=str)
if not common: print("  no common points to compare"); sys.exit(1)
worst = max(abs(g[k] - c[k]) for k in common)
for k in common: print(f"  {sys.argv[4]} at {k}: gpu {g[k]:.5f} cpu {c[k]:.5f} diff {g[k]-c[k]:+.5f}")
print(f"  largest difference {worst:.5f} (limit {lim})")
sys.exit(0 if worst <= lim else 1)
PY
}
run_pair w2 "$FMNIST" 1
compare w2 0.05 loss || fail "W2 loss curve (GPU vs CPU beyond 0.05)"
run_pair w3 "$KJV" "$W3_STEPS"
compare w3 0.02 last20_loss || fail "W3 final loss (GPU vs CPU beyond 0.02)"
compare w3 0.05 loss || fail "W3 loss curve (GPU vs CPU beyond 0.05 at a logged step)"
say "W2/W3 done at $(elapsed)"

# ---- 4. W5 on the GPU only (the CPU takes minutes per step at this shape)
say "W5: GPT-2 124M shape, B=16, T=1024, bf16, $W5_STEPS timed steps"
"$BENCH" w5 cuda "$W5_STEPS" | tee "$BUILD/w5.cuda.jsonl" || fail "W5"

say "finished in $(elapsed)"
if [ ${#FAILED[@]} -gt 0 ]; then
  say "${#FAILED[@]} part(s) failed: ${FAILED[*]}"
  exit 1
fi
say "every part passed"
