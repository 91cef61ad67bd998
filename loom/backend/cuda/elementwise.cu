// Elementwise kernels: copy/convert, fill, unary, binary, where over strided, broadcast views of any dtype, and
// the f32 -> bf16 rounding of gemm_bf16's operands. One grid-stride kernel per family; the op is a switch the
// whole warp takes the same way. Values are computed in double when a view is f64 or i64, else in float, so f32
// results round as the CPU backend's do.
#include <math.h>

#include "loom/backend/cuda/common.cuh"

namespace loom::cuda::k {

namespace {

// Mirrors loom::UnaryOp / BinaryOp (cuda_backend.cpp static_asserts the values match).
enum U { Neg, Abs, Exp, Log, Log1p, Sqrt, Rsqrt, Sin, Cos, Tanh, Sigmoid, Relu, Gelu, GeluTanh, Silu, Sign, Square,
         Reciprocal, Erf, PowScalar, Clamp, LeakyRelu, Elu, AddScalar, MulScalar, LogicalNot, Floor, Ceil, Round,
         Softplus };
enum B { Add, Sub, Mul, Div, Pow, Maximum, Minimum, Eq, Ne, Lt, Le, Gt, Ge, LogicalAnd, LogicalOr, AddScaled,
         ReluBackward, SigmoidBackwardOut, TanhBackwardOut, GeluBackward, GeluTanhBackward, SiluBackward,
         LeakyReluBackward, EluBackward, SoftplusBackward };

bool wide(DType t) { return t == DType::f64 || t == DType::i64; }

template <class C>
__device__ C sigmoid(C v) { return C(1) / (C(1) + exp(-v)); }

template <class C>
__device__ C unary_op(int op, C v, C a, C b) {
  switch (op) {
    case Neg: return -v;
    case Abs: return v < C(0) ? -v : v;
    case Exp: return exp(v);
    case Log: return log(v);
    case Log1p: return log1p(v);
    case Sqrt: return sqrt(v);
    case Rsqrt: return C(1) / sqrt(v);
    case Sin: return sin(v);
    case Cos: return cos(v);
    case Tanh: return tanh(v);
    case Sigmoid: return sigmoid(v);
    case Relu: return (v > C(0) || v != v) ? v : C(0);
    case Gelu: return C(0.5) * v * (C(1) + erf(v * C(0.7071067811865476)));
    case GeluTanh: {
      const C k = C(0.7978845608028654), c = C(0.044715);
      return C(0.5) * v * (C(1) + tanh(k * (v + c * v * v * v)));
    }
    case Silu: return v * sigmoid(v);
    case Sign: return C((C(0) < v) - (v < C(0)));
    case Square: return v * v;
    case Reciprocal: return C(1) / v;
    case Erf: return erf(v);
    case PowScalar: return a == C(2) ? v * v : a == C(0.5) ? sqrt(v) : pow(v, a);
    case Clamp: return v != v ? v : fmin(fmax(v, a), b);
    case LeakyRelu: return v > C(0) ? v : v * a;
    case Elu: return v > C(0) ? v : a * (exp(v) - C(1));
    case AddScalar: return v + a;
    case MulScalar: return v * a;
    case LogicalNot: return C(v == C(0) ? 1 : 0);
    case Floor: return floor(v);
    case Ceil: return ceil(v);
    case Round: return rint(v);
    case Softplus: return v * a > b ? v : log1p(exp(v * a)) / a;
  }
  return v;
}

template <class C>
__device__ C binary_op(int op, C x, C y, C s, C t) {
  switch (op) {
    case Add: return x + y;
    case Sub: return x - y;
    case Mul: return x * y;
    case Div: return x / y;
    case Pow: return pow(x, y);
    case Maximum: return (x != x || x > y) ? x : y;
    case Minimum: return (x != x || x < y) ? x : y;
    case Eq: return C(x == y);
    case Ne: return C(x != y);
    case Lt: return C(x < y);
    case Le: return C(x <= y);
    case Gt: return C(x > y);
    case Ge: return C(x >= y);
    case LogicalAnd: return C(x != C(0) && y != C(0));
    case LogicalOr: return C(x != C(0) || y != C(0));
    case AddScaled: return x + s * y;
    case ReluBackward: return y > C(0) ? x : C(0);
    case SigmoidBackwardOut: return x * y * (C(1) - y);
    case TanhBackwardOut: return x * (C(1) - y * y);
    case GeluBackward: {
      const C cdf = C(0.5) * (C(1) + erf(y * C(0.7071067811865476)));
      const C pdf = exp(C(-0.5) * y * y) * C(0.3989422804014327);
      return x * (cdf + y * pdf);
    }
    case GeluTanhBackward: {
      const C k = C(0.7978845608028654), c = C(0.044715);
      const C th = tanh(k * (y + c * y * y * y)), dinner = k * (C(1) + C(3) * c * y * y);
      return x * (C(0.5) * (C(1) + th) + C(0.5) * y * (C(1) - th * th) * dinner);
    }
    case SiluBackward: {
      const C sg = sigmoid(y);
      return x * sg * (C(1) + y * (C(1) - sg));
    }
    case LeakyReluBackward: return y > C(0) ? x : x * s;
    case EluBackward: return y > C(0) ? x : x * s * exp(y);
    case SoftplusBackward: return y * s > t ? x : x / (C(1) + exp(-y * s));
  }
  return x;
}

// Same-dtype copy moves bytes of the element's width (exact for every dtype, i64 included).
template <class W>
__global__ void copy_same(View out, View src, int64_t n) {
  LOOM_GRID_LOOP(i, n) {
    static_cast<W*>(out.data)[offset_of(i, out)] = static_cast<const W*>(src.data)[offset_in(i, out, src)];
  }
}

template <class C>
__global__ void copy_convert(View out, View src, int64_t n) {
  LOOM_GRID_LOOP(i, n) { store<C>(out.data, offset_of(i, out), out.dt, load<C>(src.data, offset_in(i, out, src), src.dt)); }
}

template <class C>
__global__ void fill_kernel(View out, C v, int64_t n) {
  LOOM_GRID_LOOP(i, n) { store<C>(out.data, offset_of(i, out), out.dt, v); }
}

template <class C>
__global__ void unary_kernel(int op, View out, View x, C a, C b, int64_t n) {
  LOOM_GRID_LOOP(i, n) {
    const C v = load<C>(x.data, offset_in(i, out, x), x.dt);
    store<C>(out.data, offset_of(i, out), out.dt, unary_op<C>(op, v, a, b));
  }
}

template <class C>
__global__ void binary_kernel(int op, View out, View a, View b, C s, C t, int64_t n) {
  LOOM_GRID_LOOP(i, n) {
    const C x = load<C>(a.data, offset_in(i, out, a), a.dt), y = load<C>(b.data, offset_in(i, out, b), b.dt);
    store<C>(out.data, offset_of(i, out), out.dt, binary_op<C>(op, x, y, s, t));
  }
}

template <class W>
__global__ void where_kernel(View out, View cond, View a, View b, int64_t n) {
  LOOM_GRID_LOOP(i, n) {
    const bool c = static_cast<const bool*>(cond.data)[offset_in(i, out, cond)];
    const View& s = c ? a : b;
    static_cast<W*>(out.data)[offset_of(i, out)] = static_cast<const W*>(s.data)[offset_in(i, out, s)];
  }
}

__global__ void bf16_kernel(const float* src, int64_t rows, int64_t cols, int64_t ld, uint16_t* dst) {
  LOOM_GRID_LOOP(i, rows * cols) { dst[i] = to_bf16_bits(src[(i / cols) * ld + i % cols]); }
}

__global__ void from_double_kernel(DType dt, const double* src, void* dst, int64_t n) {
  LOOM_GRID_LOOP(i, n) { store<double>(dst, i, dt, src[i]); }
}

template <template <class> class K, class... Args>
void by_width(size_t w, int64_t n, Args... args) {
  cudaStream_t st = stream();
  switch (w) {
    case 1: K<uint8_t>::run(st, n, args...); break;
    case 2: K<uint16_t>::run(st, n, args...); break;
    case 4: K<uint32_t>::run(st, n, args...); break;
    default: K<uint64_t>::run(st, n, args...); break;
  }
}
template <class W>
struct CopySame {
  static void run(cudaStream_t st, int64_t n, View o, View s) { copy_same<W><<<blocks_for(n), 256, 0, st>>>(o, s, n); }
};
template <class W>
struct WhereW {
  static void run(cudaStream_t st, int64_t n, View o, View c, View a, View b) {
    where_kernel<W><<<blocks_for(n), 256, 0, st>>>(o, c, a, b, n);
  }
};

}  // namespace

void copy(const View& out, const View& src) {
  const int64_t n = out.numel();
  if (n == 0) return;
  if (out.dt == src.dt) by_width<CopySame>(itemsize(out.dt), n, out, src);
  else if (wide(out.dt) || wide(src.dt)) copy_convert<double><<<blocks_for(n), 256, 0, stream()>>>(out, src, n);
  else copy_convert<float><<<blocks_for(n), 256, 0, stream()>>>(out, src, n);
  check_launch("copy");
}

void fill(const View& out, double v) {
  const int64_t n = out.numel();
  if (n == 0) return;
  if (wide(out.dt)) fill_kernel<double><<<blocks_for(n), 256, 0, stream()>>>(out, v, n);
  else fill_kernel<float><<<blocks_for(n), 256, 0, stream()>>>(out, float(v), n);
  check_launch("fill");
}

void unary(int op, const View& out, const View& x, double a, double b) {
  const int64_t n = out.numel();
  if (n == 0) return;
  if (wide(out.dt) || wide(x.dt)) unary_kernel<double><<<blocks_for(n), 256, 0, stream()>>>(op, out, x, a, b, n);
  else unary_kernel<float><<<blocks_for(n), 256, 0, stream()>>>(op, out, x, float(a), float(b), n);
  check_launch("unary");
}

void binary(int op, const View& out, const View& a, const View& b, double s, double t) {
  const int64_t n = out.numel();
  if (n == 0) return;
  if (wide(out.dt) || wide(a.dt) || wide(b.dt))
    binary_kernel<double><<<blocks_for(n), 256, 0, stream()>>>(op, out, a, b, s, t, n);
  else
    binary_kernel<float><<<blocks_for(n), 256, 0, stream()>>>(op, out, a, b, float(s), float(t), n);
  check_launch("binary");
}

void where(const View& out, const View& cond, const View& a, const View& b) {
  const int64_t n = out.numel();
  if (n == 0) return;
  by_width<WhereW>(itemsize(out.dt), n, out, cond, a, b);
  check_launch("where");
}

void f32_to_bf16(const float* src, int64_t rows, int64_t cols, int64_t ld, uint16_t* dst) {
  if (rows * cols == 0) return;
  bf16_kernel<<<blocks_for(rows * cols), 256, 0, stream()>>>(src, rows, cols, ld, dst);
  check_launch("f32_to_bf16");
}

void cast_from_double(DType dt, const double* src, void* dst, int64_t n) {
  if (n == 0) return;
  from_double_kernel<<<blocks_for(n), 256, 0, stream()>>>(dt, src, dst, n);
  check_launch("cast_from_double");
}

}  // namespace loom::cuda::k
