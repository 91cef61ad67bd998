#include "loom/core/dtype.h"

#include "loom/core/error.h"

namespace loom {

size_t itemsize(DType t) {
  switch (t) {
    case DType::f32: case DType::i32: return 4;
    case DType::f64: case DType::i64: return 8;
    case DType::u8: case DType::boolean: return 1;
    case DType::bf16: case DType::f16: return 2;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::i64: return "int64";
    case DType::i32: return "int32";
    case DType::u8: return "uint8";
    case DType::boolean: return "bool";
    case DType::bf16: return "bfloat16";
    case DType::f16: return "float16";
  }
  return "?";
}

// Rank used for promotion: bool < u8 < i32 < i64 < f16/bf16 < f32 < f64.
static int rank(DType t) {
  switch (t) {
    case DType::boolean: return 0;
    case DType::u8: return 1;
    case DType::i32: return 2;
    case DType::i64: return 3;
    case DType::f16: return 4;
    case DType::bf16: return 4;
    case DType::f32: return 5;
    case DType::f64: return 6;
  }
  return 0;
}

DType promote(DType a, DType b) {
  if (a == b) return a;
  // bf16 with f16 has no exact common narrower type; PyTorch gives f32.
  if ((a == DType::bf16 && b == DType::f16) || (a == DType::f16 && b == DType::bf16)) return DType::f32;
  return rank(a) >= rank(b) ? a : b;
}

f16::f16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  int32_t exp = int32_t((x >> 23) & 0xff) - 127 + 15;
  uint32_t mant = x & 0x7fffffu;
  if (((x >> 23) & 0xff) == 0xff) { bits = uint16_t(sign | 0x7c00u | (mant ? 0x200u : 0)); return; }
  if (exp >= 31) { bits = uint16_t(sign | 0x7c00u); return; }
  if (exp <= 0) {
    if (exp < -10) { bits = uint16_t(sign); return; }
    mant |= 0x800000u;
    uint32_t shift = uint32_t(14 - exp);
    uint32_t half = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) ++half;
    bits = uint16_t(sign | half);
    return;
  }
  uint32_t half = sign | (uint32_t(exp) << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (half & 1))) ++half;  // may carry into the exponent: correct
  bits = uint16_t(half);
}

f16::operator float() const {
  uint32_t sign = uint32_t(bits & 0x8000u) << 16;
  uint32_t exp = (bits >> 10) & 0x1f, mant = bits & 0x3ffu, out;
  if (exp == 0) {
    if (mant == 0) out = sign;
    else {  // subnormal: normalise
      int e = -1;
      do { mant <<= 1; ++e; } while (!(mant & 0x400u));
      out = sign | (uint32_t(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 31) out = sign | 0x7f800000u | (mant << 13);
  else out = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  float f;
  std::memcpy(&f, &out, 4);
  return f;
}

// A new block-quantized dtype adds its case to both switches below (and to itemsize, as its block's bytes).
int64_t dtype_block_size(DType t) {
  switch (t) {
    default: return 1;
  }
}

size_t dtype_block_bytes(DType t) {
  switch (t) {
    default: return itemsize(t);
  }
}

size_t storage_nbytes(DType t, int64_t numel) {
  const int64_t block = dtype_block_size(t);
  return size_t((numel + block - 1) / block) * dtype_block_bytes(t);
}

}  // namespace loom
