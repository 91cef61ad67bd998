// Device-side helpers shared by the .cu files: dtype-generic loads and stores, offsets of a linear index in a
// strided view, and the launch checks. Included by the kernel sources only.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "loom/backend/cuda/kernels.h"
#include "loom/core/error.h"

namespace loom::cuda::k {

// A launch error (bad configuration, no device, an earlier kernel's fault) is a loom::Error naming the kernel.
inline void check_launch(const char* what) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) LOOM_FAIL("CUDA kernel ", what, ": ", cudaGetErrorString(e));
}

inline int blocks_for(int64_t n, int threads = 256) {
  int64_t b = (n + threads - 1) / threads;
  return int(b < 65535 * 16 ? (b < 1 ? 1 : b) : 65535 * 16);  // grid-stride loops cover the rest
}

// Compute type C from any storage dtype.
template <class C>
__device__ __forceinline__ C load(const void* p, int64_t i, DType dt) {
  switch (dt) {
    case DType::f32: return C(static_cast<const float*>(p)[i]);
    case DType::f64: return C(static_cast<const double*>(p)[i]);
    case DType::i64: return C(static_cast<const int64_t*>(p)[i]);
    case DType::i32: return C(static_cast<const int32_t*>(p)[i]);
    case DType::u8: return C(static_cast<const uint8_t*>(p)[i]);
    case DType::boolean: return C(static_cast<const bool*>(p)[i] ? 1 : 0);
    case DType::bf16: {
      const uint32_t u = uint32_t(static_cast<const uint16_t*>(p)[i]) << 16;
      return C(__uint_as_float(u));
    }
    case DType::f16: return C(__half2float(static_cast<const __half*>(p)[i]));
  }
  return C(0);
}

// bf16 rounding as loom::bf16 does it (nearest even, NaN kept).
__device__ __forceinline__ uint16_t to_bf16_bits(float f) {
  uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

template <class C>
__device__ __forceinline__ void store(void* p, int64_t i, DType dt, C v) {
  switch (dt) {
    case DType::f32: static_cast<float*>(p)[i] = float(v); return;
    case DType::f64: static_cast<double*>(p)[i] = double(v); return;
    case DType::i64: static_cast<int64_t*>(p)[i] = int64_t(v); return;
    case DType::i32: static_cast<int32_t*>(p)[i] = int32_t(v); return;
    case DType::u8: static_cast<uint8_t*>(p)[i] = uint8_t(v); return;
    case DType::boolean: static_cast<bool*>(p)[i] = float(v) != 0.0f; return;
    case DType::bf16: static_cast<uint16_t*>(p)[i] = to_bf16_bits(float(v)); return;
    case DType::f16: static_cast<__half*>(p)[i] = __float2half(float(v)); return;
  }
}

// Element offset of linear index i (row-major over `size`) in a view with `stride`.
__device__ __forceinline__ int64_t offset_of(int64_t i, const View& v) {
  int64_t off = 0;
  for (int d = v.nd - 1; d >= 0; --d) {
    const int64_t s = v.size[d];
    off += (i % s) * v.stride[d];
    i /= s;
  }
  return off;
}

// Offset of linear index i of `shape_of` (its sizes) in view v (same rank, v's strides).
__device__ __forceinline__ int64_t offset_in(int64_t i, const View& shape_of, const View& v) {
  int64_t off = 0;
  for (int d = shape_of.nd - 1; d >= 0; --d) {
    const int64_t s = shape_of.size[d];
    off += (i % s) * v.stride[d];
    i /= s;
  }
  return off;
}

#define LOOM_GRID_LOOP(i, n) \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += int64_t(blockDim.x) * gridDim.x)

}  // namespace loom::cuda::k
