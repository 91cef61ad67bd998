// Elementwise kernels: copy/convert, fill, unary, binary (broadcasting) and where.
// Each op is a small functor; the loop (loop.h) hands it contiguous runs the compiler vectorises.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "loom/backend/cpu/cpu_backend.h"
#include "loom/backend/cpu/gelu_avx512.h"
#include "loom/backend/cpu/isa.h"
#include "loom/backend/cpu/loop.h"
#include "loom/backend/cpu/transpose_avx512.h"
#include "loom/backend/cpu/vec_math.h"
#include "loom/core/dispatch.h"

namespace loom::cpu {

Shape byte_strides(const Tensor& t, const Shape& shape) {
  const int64_t nd = int64_t(shape.size()), td = t.dim();
  Shape st(size_t(nd), 0);
  const int64_t isz = int64_t(itemsize(t.dtype()));
  for (int64_t i = 0; i < td; ++i) {
    int64_t d = nd - td + i;
    st[d] = t.shape()[i] == 1 ? 0 : t.strides()[i] * isz;
  }
  return st;
}

template <class To, class From>
static inline To convert(From v) {
  if constexpr (std::is_same_v<To, bool>) return static_cast<float>(v) != 0.0f;
  else if constexpr (std::is_same_v<To, bf16> || std::is_same_v<To, f16>) return To(static_cast<float>(v));
  else if constexpr (std::is_same_v<From, bf16> || std::is_same_v<From, f16>) return static_cast<To>(static_cast<float>(v));
  else return static_cast<To>(v);
}

// out = src where src is a transposed matrix in its last two dims (stride 1 down a column, `ld` along a row) and out
// is contiguous: `x.t().contiguous()`, an attention K^T, HF Conv1D weights on load. The generic loop walks each out
// row with a stride of `ld` elements, a cache line per element. Here 16x16 tiles keep their 16 source and 16 out
// lines in L1, each source line is read along its length, and the tiles split over the threads. Measured on a 3072 x
// 768 f32 transpose (one thread, warm): 16 tiles reading along the source 0.52 ns/element, the same writing along
// the out rows 0.9-1.4, 32 tiles 0.66, 64 tiles 2.9 (64 store streams). Tiles are handed out dynamically: into fresh
// memory the page faults, not the moves, set each tile's cost (a GPT-2 HF load: median 0.77 s against 0.82 static).
// Whole tiles of 4-byte elements go through AVX-512 registers (transpose_avx512.h, the sgemm packing's transpose):
// the HF load's transposes fell from 28% to 14% of its samples in perf, load 0.78-0.91 -> 0.71-0.82 s (LOOM_ISA
// toggled, interleaved). Elements move as bits (same dtype only).
template <class T>
static void copy_transposed(T* out, const T* src, int64_t batch, const Shape& outer_shape, const Shape& outer_st,
                            int64_t R, int64_t C, int64_t ld) {
  constexpr int64_t B = 16;
  const int64_t row_tiles = (R + B - 1) / B;
  [[maybe_unused]] const bool wide = has_avx512();
#pragma omp parallel for collapse(2) schedule(dynamic, 4) if (batch * R * C >= kParallelGrain)
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t rt = 0; rt < row_tiles; ++rt) {
      int64_t soff = 0, rem = b;  // b's multi-index over the outer dims, in src's strides
      for (int64_t d = int64_t(outer_shape.size()) - 1; d >= 0; --d) {
        soff += rem % outer_shape[size_t(d)] * outer_st[size_t(d)];
        rem /= outer_shape[size_t(d)];
      }
      const T* s = src + soff;
      T* o = out + b * R * C;
      const int64_t r0 = rt * B, r1 = std::min(R, r0 + B);
      for (int64_t c0 = 0; c0 < C; c0 += B) {
        const int64_t c1 = std::min(C, c0 + B);
#if defined(LOOM_X86_KERNELS)
        if constexpr (sizeof(T) == 4) {
          if (wide && r1 - r0 == B && c1 - c0 == B) {  // a whole tile: 16 loads, shuffles, 16 stores
            transpose16_avx512(reinterpret_cast<const float*>(s + c0 * ld + r0), ld, reinterpret_cast<float*>(o + r0 * C + c0), C);
            continue;
          }
        }
#endif
        for (int64_t c = c0; c < c1; ++c)
          for (int64_t r = r0; r < r1; ++r) o[r * C + c] = s[c * ld + r];
      }
    }
}

// Takes the transposed-copy path when it applies (see copy_transposed); false leaves the copy to the general loop.
static bool try_copy_transposed(Tensor& out, const Tensor& src) {
  const int64_t nd = out.dim();
  if (nd < 2 || out.dtype() != src.dtype() || out.shape() != src.shape() || !out.is_contiguous()) return false;
  const int64_t R = out.size(nd - 2), C = out.size(nd - 1), ld = src.stride(nd - 1);
  if (R < 2 || C < 2 || src.stride(nd - 2) != 1 || ld < R || out.numel() < 4096) return false;
  const int64_t batch = out.numel() / (R * C);
  const Shape outer_shape(out.shape().begin(), out.shape().end() - 2), outer_st(src.strides().begin(), src.strides().end() - 2);
  auto run = [&]<class T>() {
    copy_transposed<T>(static_cast<T*>(out.raw_data()), static_cast<const T*>(src.raw_data()), batch, outer_shape,
                       outer_st, R, C, ld);
  };
  switch (itemsize(out.dtype())) {
    case 2: run.operator()<uint16_t>(); return true;
    case 4: run.operator()<uint32_t>(); return true;
    case 8: run.operator()<uint64_t>(); return true;
    default: return false;
  }
}

void CpuBackend::copy(Tensor& out, const Tensor& src) {
  if (try_copy_transposed(out, src)) return;
  dispatch_storage(out.dtype(), [&]<class O>() {
    dispatch_storage(src.dtype(), [&]<class S>() {
      nd_loop<2>(out.shape(), {byte_strides(out), byte_strides(src, out.shape())},
                 {static_cast<char*>(out.raw_data()), static_cast<char*>(src.raw_data())},
                 [](char** p, const int64_t* s, int64_t n) {
                   if constexpr (std::is_same_v<O, S>) {
                     if (s[0] == sizeof(O) && s[1] == sizeof(S)) {
                       std::memcpy(p[0], p[1], size_t(n) * sizeof(O));
                       return;
                     }
                   }
                   if (s[0] == sizeof(O) && s[1] == sizeof(S)) {
                     O* o = reinterpret_cast<O*>(p[0]);
                     const S* x = reinterpret_cast<const S*>(p[1]);
                     for (int64_t i = 0; i < n; ++i) o[i] = convert<O>(x[i]);
                   } else {
                     for (int64_t i = 0; i < n; ++i)
                       *reinterpret_cast<O*>(p[0] + i * s[0]) = convert<O>(*reinterpret_cast<const S*>(p[1] + i * s[1]));
                   }
                 });
    });
  });
}

void CpuBackend::fill(Tensor& out, double v) {
  dispatch_storage(out.dtype(), [&]<class O>() {
    const O val = convert<O>(v);
    nd_loop<1>(out.shape(), {byte_strides(out)}, {static_cast<char*>(out.raw_data())},
               [val](char** p, const int64_t* s, int64_t n) {
                 if (s[0] == sizeof(O)) {
                   O* o = reinterpret_cast<O*>(p[0]);
                   for (int64_t i = 0; i < n; ++i) o[i] = val;
                 } else {
                   for (int64_t i = 0; i < n; ++i) *reinterpret_cast<O*>(p[0] + i * s[0]) = val;
                 }
               });
  });
}

// out[i] = f(x[i]); contiguous runs get a plain indexed loop so the compiler can vectorise it.
template <class O, class X, class F>
static void map1(Tensor& out, const Tensor& x, F f) {
  nd_loop<2>(out.shape(), {byte_strides(out), byte_strides(x, out.shape())},
             {static_cast<char*>(out.raw_data()), static_cast<char*>(x.raw_data())},
             [&f](char** p, const int64_t* s, int64_t n) {
               if (s[0] == sizeof(O) && s[1] == sizeof(X)) {
                 O* __restrict o = reinterpret_cast<O*>(p[0]);
                 const X* __restrict a = reinterpret_cast<const X*>(p[1]);
#pragma omp simd
                 for (int64_t i = 0; i < n; ++i) o[i] = f(a[i]);
               } else {
                 for (int64_t i = 0; i < n; ++i)
                   *reinterpret_cast<O*>(p[0] + i * s[0]) = f(*reinterpret_cast<const X*>(p[1] + i * s[1]));
               }
             });
}

template <class O, class A, class B, class F>
static void map2(Tensor& out, const Tensor& a, const Tensor& b, F f) {
  nd_loop<3>(out.shape(), {byte_strides(out), byte_strides(a, out.shape()), byte_strides(b, out.shape())},
             {static_cast<char*>(out.raw_data()), static_cast<char*>(a.raw_data()), static_cast<char*>(b.raw_data())},
             [&f](char** p, const int64_t* s, int64_t n) {
               if (s[0] == sizeof(O) && s[1] == sizeof(A) && s[2] == sizeof(B)) {
                 O* __restrict o = reinterpret_cast<O*>(p[0]);
                 const A* __restrict x = reinterpret_cast<const A*>(p[1]);
                 const B* __restrict y = reinterpret_cast<const B*>(p[2]);
#pragma omp simd
                 for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], y[i]);
               } else if (s[0] == sizeof(O) && s[1] == sizeof(A) && s[2] == 0) {  // tensor op scalar
                 O* __restrict o = reinterpret_cast<O*>(p[0]);
                 const A* __restrict x = reinterpret_cast<const A*>(p[1]);
                 const B y = *reinterpret_cast<const B*>(p[2]);
#pragma omp simd
                 for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], y);
               } else {
                 for (int64_t i = 0; i < n; ++i)
                   *reinterpret_cast<O*>(p[0] + i * s[0]) =
                       f(*reinterpret_cast<const A*>(p[1] + i * s[1]), *reinterpret_cast<const B*>(p[2] + i * s[2]));
               }
             });
}

template <class T>
static inline T gelu_tanh(T x) {
  const T k = T(0.7978845608028654), c = T(0.044715);
  return T(0.5) * x * (T(1) + vtanh(k * (x + c * x * x * x)));
}

// The AVX-512 GELU kernels (gelu_avx512.h) take the common case: f32, every operand contiguous with out's shape.
static bool gelu_kernel_applies(const Tensor& out, std::initializer_list<const Tensor*> ins) {
  if (!has_avx512() || out.dtype() != DType::f32 || !out.is_contiguous()) return false;
  for (const Tensor* t : ins)
    if (t->dtype() != DType::f32 || !t->is_contiguous() || t->shape() != out.shape()) return false;
  return true;
}

template <class F>
static void split_range(int64_t n, F&& f) {
  if (n < kParallelGrain) f(int64_t(0), n);
  else parallel_blocks(n, f);
}

void CpuBackend::unary(UnaryOp op, Tensor& out, const Tensor& x, double a, double b) {
  LOOM_CHECK(out.dtype() == x.dtype() || op == UnaryOp::LogicalNot, "unary kernel: dtype mismatch ", out.dtype(),
             " vs ", x.dtype());
  if (op == UnaryOp::LogicalNot) {
    dispatch_all(x.dtype(), "logical_not", [&]<class X>() { map1<bool, X>(out, x, [](X v) { return !static_cast<bool>(v); }); });
    return;
  }
  if (is_integral(x.dtype())) {
    dispatch_all(x.dtype(), "unary", [&]<class T>() {
      switch (op) {
        case UnaryOp::Neg: return map1<T, T>(out, x, [](T v) { return T(-v); });
        case UnaryOp::Abs: return map1<T, T>(out, x, [](T v) { return v < T(0) ? T(-v) : v; });
        case UnaryOp::Sign: return map1<T, T>(out, x, [](T v) { return T((T(0) < v) - (v < T(0))); });
        case UnaryOp::Square: return map1<T, T>(out, x, [](T v) { return T(v * v); });
        case UnaryOp::Relu: return map1<T, T>(out, x, [](T v) { return v > T(0) ? v : T(0); });
        case UnaryOp::AddScalar: return map1<T, T>(out, x, [a](T v) { return T(v + T(a)); });
        case UnaryOp::MulScalar: return map1<T, T>(out, x, [a](T v) { return T(v * T(a)); });
        case UnaryOp::Clamp: return map1<T, T>(out, x, [a, b](T v) { return T(std::min<double>(std::max<double>(double(v), a), b)); });
        default: LOOM_FAIL("unary op ", int(op), " is not defined for integer dtype ", x.dtype());
      }
    });
    return;
  }
  if (op == UnaryOp::Gelu && gelu_kernel_applies(out, {&x})) {
    float* y = out.data<float>();
    const float* xv = x.data<float>();
    split_range(out.numel(), [&](int64_t b0, int64_t e0) { gelu_avx512(y + b0, xv + b0, e0 - b0); });
    return;
  }
  dispatch_float(x.dtype(), "unary", [&]<class T>() {
    const T ta = T(a), tb = T(b);
    switch (op) {
      case UnaryOp::Neg: return map1<T, T>(out, x, [](T v) { return -v; });
      case UnaryOp::Abs: return map1<T, T>(out, x, [](T v) { return std::abs(v); });
      case UnaryOp::Exp: return map1<T, T>(out, x, [](T v) { return vexp(v); });
      case UnaryOp::Log: return map1<T, T>(out, x, [](T v) { return std::log(v); });
      case UnaryOp::Log1p: return map1<T, T>(out, x, [](T v) { return std::log1p(v); });
      case UnaryOp::Sqrt: return map1<T, T>(out, x, [](T v) { return std::sqrt(v); });
      case UnaryOp::Rsqrt: return map1<T, T>(out, x, [](T v) { return T(1) / std::sqrt(v); });
      case UnaryOp::Sin: return map1<T, T>(out, x, [](T v) { return std::sin(v); });
      case UnaryOp::Cos: return map1<T, T>(out, x, [](T v) { return std::cos(v); });
      case UnaryOp::Tanh: return map1<T, T>(out, x, [](T v) { return vtanh(v); });
      case UnaryOp::Sigmoid: return map1<T, T>(out, x, [](T v) { return vsigmoid(v); });
      case UnaryOp::Relu: return map1<T, T>(out, x, [](T v) { return (v > T(0) || v != v) ? v : T(0); });  // NaN stays NaN
      case UnaryOp::Gelu: return map1<T, T>(out, x, [](T v) __attribute__((always_inline)) { return vgelu(v); });
      case UnaryOp::GeluTanh: return map1<T, T>(out, x, [](T v) { return gelu_tanh(v); });
      case UnaryOp::Silu: return map1<T, T>(out, x, [](T v) { return v * vsigmoid(v); });
      case UnaryOp::Sign: return map1<T, T>(out, x, [](T v) { return T((T(0) < v) - (v < T(0))); });
      case UnaryOp::Square: return map1<T, T>(out, x, [](T v) { return v * v; });
      case UnaryOp::Reciprocal: return map1<T, T>(out, x, [](T v) { return T(1) / v; });
      case UnaryOp::Erf: return map1<T, T>(out, x, [](T v) { return std::erf(v); });
      case UnaryOp::PowScalar:
        if (a == 2.0) return map1<T, T>(out, x, [](T v) { return v * v; });
        if (a == 0.5) return map1<T, T>(out, x, [](T v) { return std::sqrt(v); });
        return map1<T, T>(out, x, [ta](T v) { return std::pow(v, ta); });
      case UnaryOp::Clamp: return map1<T, T>(out, x, [ta, tb](T v) { return std::isnan(v) ? v : std::min(std::max(v, ta), tb); });
      case UnaryOp::LeakyRelu: return map1<T, T>(out, x, [ta](T v) { return v > T(0) ? v : v * ta; });
      case UnaryOp::Elu: return map1<T, T>(out, x, [ta](T v) { return v > T(0) ? v : ta * (std::exp(v) - T(1)); });
      case UnaryOp::AddScalar: return map1<T, T>(out, x, [ta](T v) { return v + ta; });
      case UnaryOp::MulScalar: return map1<T, T>(out, x, [ta](T v) { return v * ta; });
      case UnaryOp::Floor: return map1<T, T>(out, x, [](T v) { return std::floor(v); });
      case UnaryOp::Ceil: return map1<T, T>(out, x, [](T v) { return std::ceil(v); });
      case UnaryOp::Round: return map1<T, T>(out, x, [](T v) { return std::nearbyint(v); });
      case UnaryOp::Softplus:
        return map1<T, T>(out, x, [ta, tb](T v) { return v * ta > tb ? v : std::log1p(std::exp(v * ta)) / ta; });
      case UnaryOp::LogicalNot: break;
    }
    LOOM_FAIL("unary: unknown op ", int(op));
  });
}

void CpuBackend::binary(BinaryOp op, Tensor& out, const Tensor& a, const Tensor& b, double s, double t) {
  LOOM_CHECK(a.dtype() == b.dtype(), "binary kernel: operand dtypes differ (", a.dtype(), ", ", b.dtype(), ")");
  const bool cmp = op == BinaryOp::Eq || op == BinaryOp::Ne || op == BinaryOp::Lt || op == BinaryOp::Le ||
                   op == BinaryOp::Gt || op == BinaryOp::Ge || op == BinaryOp::LogicalAnd || op == BinaryOp::LogicalOr;
  if (cmp) {
    LOOM_CHECK(out.dtype() == DType::boolean, "comparison kernel: out must be bool");
    dispatch_all(a.dtype(), "compare", [&]<class T>() {
      switch (op) {
        case BinaryOp::Eq: return map2<bool, T, T>(out, a, b, [](T x, T y) { return x == y; });
        case BinaryOp::Ne: return map2<bool, T, T>(out, a, b, [](T x, T y) { return x != y; });
        case BinaryOp::Lt: return map2<bool, T, T>(out, a, b, [](T x, T y) { return x < y; });
        case BinaryOp::Le: return map2<bool, T, T>(out, a, b, [](T x, T y) { return x <= y; });
        case BinaryOp::Gt: return map2<bool, T, T>(out, a, b, [](T x, T y) { return x > y; });
        case BinaryOp::Ge: return map2<bool, T, T>(out, a, b, [](T x, T y) { return x >= y; });
        case BinaryOp::LogicalAnd: return map2<bool, T, T>(out, a, b, [](T x, T y) { return bool(x) && bool(y); });
        case BinaryOp::LogicalOr: return map2<bool, T, T>(out, a, b, [](T x, T y) { return bool(x) || bool(y); });
        default: break;
      }
    });
    return;
  }
  LOOM_CHECK(out.dtype() == a.dtype(), "binary kernel: out dtype ", out.dtype(), " vs operands ", a.dtype());
  if (is_integral(a.dtype())) {
    dispatch_all(a.dtype(), "binary", [&]<class T>() {
      switch (op) {
        case BinaryOp::Add: return map2<T, T, T>(out, a, b, [](T x, T y) { return T(x + y); });
        case BinaryOp::AddScaled: return map2<T, T, T>(out, a, b, [s](T x, T y) { return T(x + T(s) * y); });
        case BinaryOp::Sub: return map2<T, T, T>(out, a, b, [](T x, T y) { return T(x - y); });
        case BinaryOp::Mul: return map2<T, T, T>(out, a, b, [](T x, T y) { return T(x * y); });
        case BinaryOp::Div:
          LOOM_FAIL("div: integer tensors divide as floats in loom; convert with .to(DType::f32) first");
        case BinaryOp::Maximum: return map2<T, T, T>(out, a, b, [](T x, T y) { return std::max(x, y); });
        case BinaryOp::Minimum: return map2<T, T, T>(out, a, b, [](T x, T y) { return std::min(x, y); });
        default: LOOM_FAIL("binary op ", int(op), " is not defined for integer dtype ", a.dtype());
      }
    });
    return;
  }
  if (op == BinaryOp::GeluBackward && gelu_kernel_applies(out, {&a, &b})) {
    float* dx = out.data<float>();
    const float *g = a.data<float>(), *xv = b.data<float>();
    split_range(out.numel(), [&](int64_t b0, int64_t e0) { gelu_backward_avx512(dx + b0, g + b0, xv + b0, e0 - b0); });
    return;
  }
  dispatch_float(a.dtype(), "binary", [&]<class T>() {
    const T ts = T(s), tt = T(t);
    switch (op) {
      case BinaryOp::Add: return map2<T, T, T>(out, a, b, [](T x, T y) { return x + y; });
      case BinaryOp::AddScaled: return map2<T, T, T>(out, a, b, [ts](T x, T y) { return x + ts * y; });
      case BinaryOp::Sub: return map2<T, T, T>(out, a, b, [](T x, T y) { return x - y; });
      case BinaryOp::Mul: return map2<T, T, T>(out, a, b, [](T x, T y) { return x * y; });
      case BinaryOp::Div: return map2<T, T, T>(out, a, b, [](T x, T y) { return x / y; });
      case BinaryOp::Pow: return map2<T, T, T>(out, a, b, [](T x, T y) { return std::pow(x, y); });
      // NaN propagates through maximum/minimum as in PyTorch.
      case BinaryOp::Maximum: return map2<T, T, T>(out, a, b, [](T x, T y) { return (x != x || x > y) ? x : y; });
      case BinaryOp::Minimum: return map2<T, T, T>(out, a, b, [](T x, T y) { return (x != x || x < y) ? x : y; });
      case BinaryOp::ReluBackward: return map2<T, T, T>(out, a, b, [](T g, T x) { return x > T(0) ? g : T(0); });
      case BinaryOp::SigmoidBackwardOut: return map2<T, T, T>(out, a, b, [](T g, T y) { return g * y * (T(1) - y); });
      case BinaryOp::TanhBackwardOut: return map2<T, T, T>(out, a, b, [](T g, T y) { return g * (T(1) - y * y); });
      case BinaryOp::GeluBackward:
        // always_inline: with vgelu_grad's body in it GCC would keep the lambda out of line, one call per value.
        return map2<T, T, T>(out, a, b, [](T g, T x) __attribute__((always_inline)) { return g * vgelu_grad(x); });
      case BinaryOp::GeluTanhBackward:
        return map2<T, T, T>(out, a, b, [](T g, T x) {
          const T k = T(0.7978845608028654), c = T(0.044715);
          const T inner = k * (x + c * x * x * x), th = vtanh(inner);
          const T dinner = k * (T(1) + T(3) * c * x * x);
          return g * (T(0.5) * (T(1) + th) + T(0.5) * x * (T(1) - th * th) * dinner);
        });
      case BinaryOp::SiluBackward:
        return map2<T, T, T>(out, a, b, [](T g, T x) {
          const T sg = vsigmoid(x);
          return g * sg * (T(1) + x * (T(1) - sg));
        });
      case BinaryOp::LeakyReluBackward: return map2<T, T, T>(out, a, b, [ts](T g, T x) { return x > T(0) ? g : g * ts; });
      case BinaryOp::EluBackward: return map2<T, T, T>(out, a, b, [ts](T g, T x) { return x > T(0) ? g : g * ts * std::exp(x); });
      case BinaryOp::SoftplusBackward:
        return map2<T, T, T>(out, a, b, [ts, tt](T g, T x) {
          return x * ts > tt ? g : g / (T(1) + std::exp(-x * ts));
        });
      default: LOOM_FAIL("binary: unknown op ", int(op));
    }
  });
}

void CpuBackend::where(Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  LOOM_CHECK(cond.dtype() == DType::boolean, "where: condition must be bool, got ", cond.dtype());
  dispatch_all(out.dtype(), "where", [&]<class T>() {
    nd_loop<4>(out.shape(),
               {byte_strides(out), byte_strides(cond, out.shape()), byte_strides(a, out.shape()), byte_strides(b, out.shape())},
               {static_cast<char*>(out.raw_data()), static_cast<char*>(cond.raw_data()),
                static_cast<char*>(a.raw_data()), static_cast<char*>(b.raw_data())},
               [](char** p, const int64_t* s, int64_t n) {
                 for (int64_t i = 0; i < n; ++i)
                   *reinterpret_cast<T*>(p[0] + i * s[0]) = *reinterpret_cast<const bool*>(p[1] + i * s[1])
                                                                 ? *reinterpret_cast<const T*>(p[2] + i * s[2])
                                                                 : *reinterpret_cast<const T*>(p[3] + i * s[3]);
               });
  });
}

}  // namespace loom::cpu
