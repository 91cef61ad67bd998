// The small set of primitives a device provides. Ops (loom/ops) check arguments, allocate outputs and
// record autograd; they reach memory only through these calls, so a CUDA backend implements this
// interface and every op and layer works on it unchanged.
//   Backend& be = backend_for(x.device());
//   be.unary(UnaryOp::Exp, out, x);
//
// Conventions: `out` is allocated by the caller with the final shape and dtype. Inputs may be strided
// views and broadcast (binary/where broadcast to out's shape). Float ops run in f32 or f64.
#pragma once
#include <cstdint>

#include "loom/core/tensor.h"

namespace loom {

enum class UnaryOp {
  Neg, Abs, Exp, Log, Log1p, Sqrt, Rsqrt, Sin, Cos, Tanh, Sigmoid, Relu, Gelu, GeluTanh, Silu, Sign,
  Square, Reciprocal, Erf, PowScalar /*x^a*/, Clamp /*[a, b]*/, LeakyRelu /*slope a*/, Elu /*alpha a*/,
  AddScalar /*x+a*/, MulScalar /*x*a*/, LogicalNot, Floor, Ceil, Round, Softplus /*beta a, threshold b*/
};

enum class BinaryOp {
  Add, Sub, Mul, Div, Pow, Maximum, Minimum, Eq, Ne, Lt, Le, Gt, Ge, LogicalAnd, LogicalOr,
  // out = a + alpha * b (alpha in `s`)
  AddScaled,
  // Backward helpers: a is the incoming gradient, b the saved input (or output where noted).
  ReluBackward, SigmoidBackwardOut /*b = y*/, TanhBackwardOut /*b = y*/, GeluBackward, GeluTanhBackward,
  SiluBackward, LeakyReluBackward /*slope s*/, EluBackward /*alpha s, b = x*/, SoftplusBackward /*beta s, thr t*/
};

enum class ReduceOp { Sum, Mean, Prod, Max, Min };

struct ConvGeom {  // 2-d geometry; conv1d uses H = 1
  int64_t N, C, H, W;       // input
  int64_t OC, KH, KW;       // output channels, kernel
  int64_t OH, OW;           // output
  int64_t sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  int64_t groups = 1;
};

// Pooling geometry. Adaptive pooling reads only N, C, H, W, OH, OW (its windows follow from the sizes).
struct PoolGeom {
  int64_t N, C, H, W, OH, OW, KH = 1, KW = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  bool count_include_pad = true;
};

class Generator;

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // ---- memory
  virtual void copy(Tensor& out, const Tensor& src) = 0;  // broadcasting, dtype-converting
  virtual void fill(Tensor& out, double v) = 0;

  // ---- elementwise
  virtual void unary(UnaryOp op, Tensor& out, const Tensor& x, double a = 0, double b = 0) = 0;
  virtual void binary(BinaryOp op, Tensor& out, const Tensor& a, const Tensor& b, double s = 0, double t = 0) = 0;
  virtual void where(Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) = 0;

  // ---- reductions over `dims` (sorted, unique); out has keepdim shape.
  virtual void reduce(ReduceOp op, Tensor& out, const Tensor& x, const Shape& dims) = 0;
  // values and int64 indices of max/min along one dim (out shapes keepdim).
  virtual void arg_reduce(bool is_max, Tensor& values, Tensor& indices, const Tensor& x, int64_t dim) = 0;
  // softmax / log_softmax along dim, and their backward given the output y and gradient g.
  virtual void softmax(Tensor& out, const Tensor& x, int64_t dim, bool log) = 0;
  virtual void softmax_backward(Tensor& dx, const Tensor& g, const Tensor& y, int64_t dim, bool log) = 0;

  // ---- matrix products: C(M,N) = alpha * op(A) op(B) + beta * C, row-major, contiguous rows.
  virtual void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const void* A,
                    int64_t lda, const void* B, int64_t ldb, double beta, void* C, int64_t ldc, DType dt) = 0;
  // The same for f32 matrices whose products run in bfloat16 (autocast): each operand element is rounded to
  // bf16 (nearest even), products are accumulated in f32, C stays f32.
  virtual void gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const float* A,
                         int64_t lda, const float* B, int64_t ldb, double beta, float* C, int64_t ldc) = 0;

  // ---- convolution and pooling (f32/f64). x, w, gout and indices are contiguous NCHW (the ops make them
  // so); outputs are allocated by the caller with their final shapes and fully overwritten. A null
  // output pointer skips that gradient; conv2d_backward reads x only for dw and w only for dx (the other may
  // be undefined). Max-pool indices are int64 offsets h * W + w within each plane.
  virtual void conv2d(Tensor& out, const Tensor& x, const Tensor& w, const Tensor* bias, const ConvGeom& g) = 0;
  virtual void conv2d_backward(Tensor* dx, Tensor* dw, Tensor* db, const Tensor& gout, const Tensor& x,
                               const Tensor& w, const ConvGeom& g) = 0;
  virtual void max_pool2d(Tensor& out, Tensor& indices, const Tensor& x, const PoolGeom& g) = 0;
  virtual void max_pool2d_backward(Tensor& dx, const Tensor& gout, const Tensor& indices, const PoolGeom& g) = 0;
  virtual void avg_pool2d(Tensor& out, const Tensor& x, const PoolGeom& g) = 0;
  virtual void avg_pool2d_backward(Tensor& dx, const Tensor& gout, const PoolGeom& g) = 0;
  virtual void adaptive_avg_pool2d(Tensor& out, const Tensor& x, const PoolGeom& g) = 0;
  virtual void adaptive_avg_pool2d_backward(Tensor& dx, const Tensor& gout, const PoolGeom& g) = 0;

  // ---- indexing (index is int64, contiguous)
  virtual void index_select(Tensor& out, const Tensor& x, int64_t dim, const Tensor& index) = 0;
  virtual void index_add(Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) = 0;  // out[idx] += src
  virtual void gather(Tensor& out, const Tensor& x, int64_t dim, const Tensor& index) = 0;
  virtual void scatter(Tensor& out, int64_t dim, const Tensor& index, const Tensor& src, bool add) = 0;

  // ---- random numbers (f32/f64 out, filled from the generator's stream)
  virtual void uniform(Tensor& out, double lo, double hi, Generator& gen) = 0;
  virtual void normal(Tensor& out, double mean, double std, Generator& gen) = 0;
};

Backend& backend_for(Device d);
inline Backend& backend_for(const Tensor& t) { return backend_for(t.device()); }

// Threads used by CPU kernels and BLAS (like torch.set_num_threads).
void set_num_threads(int n);
int get_num_threads();

}  // namespace loom
