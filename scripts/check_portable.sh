#!/usr/bin/env bash
# Checks the portable build (-DLOOM_NATIVE=OFF): its kernel libraries (libloom_core.a, libloom_backend.a) may
# use instructions beyond baseline x86-64 only inside the dispatched kernels (functions named *avx512*, *vnni*
# or *amx*, which carry a target attribute and run after a CPUID check, see loom/backend/cpu/isa.h), those
# kernels must really be there (zmm code), and tests/test_isa_dispatch.cpp, built against these libraries,
# must pass on the AVX-512 path (where this CPU has it) and under LOOM_ISA=baseline. Not part of `make test`
# (it is a second build of the kernels, ~3 minutes at -j1):
#   scripts/check_portable.sh                     # folder build-portable, JOBS=1
# Environment: PORTABLE_BUILD (default build-portable), JOBS (default 1), CXX (default c++).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${PORTABLE_BUILD:-build-portable}"
CXX="${CXX:-c++}"
t0=$(date +%s)

cmake -S . -B "$OUT" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOOM_NATIVE=OFF -DLOOM_BUILD_TESTS=OFF -DLOOM_CUDA=OFF \
      -DLOOM_BUILD_TOOLS=OFF >/dev/null
cmake --build "$OUT" -j "${JOBS:-1}" --target loom_core loom_backend
echo "check_portable: libraries built in $(( $(date +%s) - t0 )) s"

# 1. No wide instructions outside the dispatched kernels.
python3 scripts/portable_isa_scan.py "$OUT/libloom_core.a" "$OUT/libloom_backend.a"

# 2. The dispatched kernels are compiled in with AVX-512 (a baseline-only build would pass step 1 trivially):
# every kernel file's object has zmm code, and the int8 / Q8_0 ones VNNI dot products.
objdump -d --no-show-raw-insn "$OUT/libloom_backend.a" | awk '
  /file format/ { obj = $1; sub(/:$/, "", obj) }
  /%zmm/ { zmm[obj]++ }
  /vpdpbusd/ { vnni[obj]++ }
  END {
    n = split("conv.cpp.o conv_direct.cpp.o conv_winograd.cpp.o sgemm_avx512.cpp.o max_pool_2x2.cpp.o relu_max_pool_2x2.cpp.o flash_attention.cpp.o skinny_gemm.cpp.o qgemm.cpp.o qgemm_tiles.cpp.o int8_gemm.cpp.o", want, " ")
    bad = 0
    for (i = 1; i <= n; i++) {
      w = want[i]; v = (w == "qgemm.cpp.o" || w == "qgemm_tiles.cpp.o" || w == "int8_gemm.cpp.o")
      printf "check_portable: %-22s %5d zmm instructions%s\n", w, zmm[w], v ? sprintf(", %d vpdpbusd", vnni[w]) : ""
      if (zmm[w] == 0 || (v && vnni[w] == 0)) { print "check_portable: FAIL: no AVX-512 kernel code in " w > "/dev/stderr"; bad = 1 }
    }
    exit bad
  }'

# 3. The dispatch tests and the kernel-choice tests, compiled as the portable build compiles (no -march), on
# both paths.
flags=(-std=c++20 -O2 -fopenmp -fno-math-errno -Wall -Wextra -Wno-unused-parameter -I.)
"$CXX" "${flags[@]}" tests/test_isa_dispatch.cpp tests/test_cpu_features.cpp "$OUT/libloom_backend.a" "$OUT/libloom_core.a" \
  -lgtest_main -lgtest -lopenblas -lpthread -o "$OUT/test_isa_dispatch"
python3 scripts/portable_isa_scan.py "$OUT/test_isa_dispatch" | tail -1
OMP_WAIT_POLICY=passive "$OUT/test_isa_dispatch"
LOOM_ISA=baseline OMP_WAIT_POLICY=passive "$OUT/test_isa_dispatch"
echo "check_portable: OK in $(( $(date +%s) - t0 )) s"
