// Runs a templated lambda with the C++ type of a dtype: no macro-generated overloads.
//   dispatch_float(x.dtype(), "exp", [&]<class T>() { T* p = x.data<T>(); ... });
#pragma once
#include "loom/core/dtype.h"
#include "loom/core/error.h"

namespace loom {

template <class F>
decltype(auto) dispatch_float(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::f32: return f.template operator()<float>();
    case DType::f64: return f.template operator()<double>();
    default: LOOM_FAIL(op, ": expected a float32 or float64 tensor, got ", t);
  }
}

// Every computable dtype (bf16/f16 are storage only: convert with .to(DType::f32) first).
template <class F>
decltype(auto) dispatch_all(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::f32: return f.template operator()<float>();
    case DType::f64: return f.template operator()<double>();
    case DType::i64: return f.template operator()<int64_t>();
    case DType::i32: return f.template operator()<int32_t>();
    case DType::u8: return f.template operator()<uint8_t>();
    case DType::boolean: return f.template operator()<bool>();
    default: LOOM_FAIL(op, ": dtype ", t, " is a storage type; convert with .to(DType::f32) first");
  }
}

// Every dtype including the 16-bit float storage types (copies and conversions).
template <class F>
decltype(auto) dispatch_storage(DType t, F&& f) {
  switch (t) {
    case DType::bf16: return f.template operator()<bf16>();
    case DType::f16: return f.template operator()<f16>();
    default: return dispatch_all(t, "copy", std::forward<F>(f));
  }
}

}  // namespace loom
