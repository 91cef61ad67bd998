// Element types. bf16 and f16 are storage types: compute converts them to f32.
//   DType t = DType::f32;  itemsize(t) == 4;  promote(DType::i64, DType::f32) == DType::f32
#pragma once
#include <cstdint>
#include <cstring>
#include <ostream>

namespace loom {

enum class DType : uint8_t { f32, f64, i64, i32, u8, boolean, bf16, f16 };

size_t itemsize(DType t);
// Room for block-quantized dtypes (GGML-style Q8_0: 32 values in 34 bytes; Q4_0: 32 values in 18 bytes): a tensor
// of such a dtype stores ceil(numel / dtype_block_size) blocks of dtype_block_bytes each, and makes no sense
// element by element (itemsize is then the block's bytes). Every dtype today is a block of one element, so
// dtype_block_size is 1 and dtype_block_bytes == itemsize. Storage is sized with storage_nbytes.
int64_t dtype_block_size(DType t);
size_t dtype_block_bytes(DType t);
inline bool is_block_quantized(DType t) { return dtype_block_size(t) > 1; }
size_t storage_nbytes(DType t, int64_t numel);
const char* dtype_name(DType t);  // "float32", "float64", ... as PyTorch names them
inline std::ostream& operator<<(std::ostream& os, DType t) { return os << dtype_name(t); }
inline bool is_floating(DType t) {
  return t == DType::f32 || t == DType::f64 || t == DType::bf16 || t == DType::f16;
}
inline bool is_integral(DType t) { return !is_floating(t); }
// Type promotion as PyTorch does it for two tensors of the same category rank.
DType promote(DType a, DType b);

// bfloat16: the top 16 bits of an f32, rounded to nearest even.
struct bf16 {
  uint16_t bits = 0;
  bf16() = default;
  explicit bf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) { bits = uint16_t((u >> 16) | 0x40); return; }  // NaN stays NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    bits = uint16_t(u >> 16);
  }
  operator float() const {
    uint32_t u = uint32_t(bits) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
};

// IEEE half precision, converted in software (F16C is used by the compiler where available).
struct f16 {
  uint16_t bits = 0;
  f16() = default;
  explicit f16(float f);
  operator float() const;
};

template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::i64; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::i32; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::u8; };
template <> struct dtype_of<bool> { static constexpr DType value = DType::boolean; };
template <> struct dtype_of<bf16> { static constexpr DType value = DType::bf16; };
template <> struct dtype_of<f16> { static constexpr DType value = DType::f16; };

}  // namespace loom
