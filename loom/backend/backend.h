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
#include <vector>

#include "loom/backend/kernel_args.h"
#include "loom/core/quant_blocks.h"
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
// A GELU fused into a product's store (Backend::gemm_gelu_f32): forward with the exact (erf) or tanh form, or the
// backward that multiplies a gradient by gelu'.
enum class GeluEpilogue { Forward, ForwardTanh, Backward, BackwardTanh };

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

// The affine u8 quantization of an activation tensor (dynamic int8): q = clamp(round(x / scale) + zero_point).
struct Int8Params {
  float scale = 1;
  int32_t zero_point = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // ---- memory
  // Broadcasting, dtype-converting. Also the host <-> device transfer: out or src may be a host (CPU) tensor
  // when the other is on this backend's device (Tensor::to(Device) calls the non-host side's backend).
  virtual void copy(Tensor& out, const Tensor& src) = 0;
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
  // C(M,N) = op(A) op(B) + bias (bias[j] added to every row), f32, with the bias folded into the product (no
  // pass over C to broadcast it first). Returns false, touching nothing, where this backend has no such path
  // for these operands; the caller then broadcasts the bias into C and accumulates a gemm on top.
  virtual bool gemm_bias_f32(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                             const float* B, int64_t ldb, const float* bias, float* C, int64_t ldc) {
    (void)ta, (void)tb, (void)M, (void)N, (void)K, (void)A, (void)lda, (void)B, (void)ldb, (void)bias, (void)C, (void)ldc;
    return false;
  }
  // A product with a GELU in its store, f32 (a GPT MLP's first Linear and its activation, and their backward):
  //   Forward, ForwardTanh:    pre = op(A) op(B) + bias, C = gelu(pre)   (pre kept for backward)
  //   Backward, BackwardTanh:  C = (op(A) op(B)) * gelu'(pre)             (pre read; bias must be null)
  // pre is M x N with C's row stride. Returns false, touching nothing, where this backend has no such path for
  // these operands (the caller then runs the product and the activation as two ops).
  virtual bool gemm_gelu_f32(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                             const float* B, int64_t ldb, const float* bias, float* C, int64_t ldc, float* pre,
                             GeluEpilogue kind) {
    (void)ta, (void)tb, (void)M, (void)N, (void)K, (void)A, (void)lda, (void)B, (void)ldb, (void)bias, (void)C, (void)ldc,
        (void)pre, (void)kind;
    return false;
  }
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
  // Optional fusion: out = max_pool2d(relu(x)) for 2x2 / stride 2 windows, with taps (u8, out's shape) naming
  // each window's winning tap (kh * 2 + kw) or 4 where relu zeroes the gradient (output <= 0 or NaN); the
  // backward writes all of dx from gout and taps. Returns false, touching nothing, where the backend has no
  // such kernel (this default, another geometry or dtype): the op then composes relu and max_pool2d.
  virtual bool relu_max_pool2d_2x2(Tensor& out, Tensor& taps, const Tensor& x, const PoolGeom& g);
  virtual bool relu_max_pool2d_2x2_backward(Tensor& dx, const Tensor& gout, const Tensor& taps, const PoolGeom& g);
  // Optional fusion of a convolution into the above: out, taps = relu_max_pool2d_2x2 of conv2d(x, w) + bias
  // (pool geometry pg over the convolution's output), without the convolution's output in memory; and its
  // weight and bias gradients (db may be null) from the pool's output gradient. For an input that needs no
  // gradient (a network's first layer). False, touching nothing, where the backend has no such kernel.
  virtual bool conv2d_relu_max_pool2d(Tensor& out, Tensor& taps, const Tensor& x, const Tensor& w, const Tensor* bias,
                                      const ConvGeom& cg, const PoolGeom& pg);
  virtual bool conv2d_relu_max_pool2d_weight_grad(Tensor& dw, Tensor* db, const Tensor& gout, const Tensor& taps,
                                                  const Tensor& x, const ConvGeom& cg, const PoolGeom& pg);
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
  // out (int or float) with integers in [low, high); out (float) with 1 at probability p, else 0.
  virtual void randint(Tensor& out, int64_t low, int64_t high, Generator& gen) = 0;
  virtual void bernoulli(Tensor& out, double p, Generator& gen) = 0;

  // ---- sequences (contiguous 1-d out, any computable dtype; eye: 2-d)
  virtual void arange(Tensor& out, double start, double step) = 0;       // out[i] = start + i * step
  virtual void arange_int(Tensor& out, int64_t start, int64_t step) = 0;  // the same in exact integers
  virtual void linspace(Tensor& out, double start, double end) = 0;       // numel points, both ends exact
  virtual void eye(Tensor& out) = 0;                                      // ones on the diagonal, zeros elsewhere

  // ---- fused kernel families. Argument structs are in kernel_args.h. Tensors are contiguous (the ops make them
  // so) and f32/f64; an undefined optional input (weight, bias, mask, state) means absent, an undefined output
  // means not wanted.
  // Norms. Statistics (mean and var or invstd for batch norm, mean and rstd per row) are float64 tensors.
  virtual void batch_norm_stats(Tensor& mean, Tensor& var, const Tensor& x, const BatchNormGeom& g) = 0;
  virtual void batch_norm_apply(Tensor& y, const Tensor& x, const Tensor& mean, const Tensor& invstd,
                                const Tensor& w, const Tensor& b, const BatchNormGeom& g) = 0;
  // batch_stats: the statistics came from this batch (training), so dx has their terms; else they are constants.
  virtual void batch_norm_backward(Tensor& dx, Tensor& dw, Tensor& db, const Tensor& gout, const Tensor& x,
                                   const Tensor& mean, const Tensor& invstd, const Tensor& w, bool batch_stats,
                                   const BatchNormGeom& g) = 0;
  virtual void row_norm_forward(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& w,
                                const Tensor& b, const RowNormGeom& g, double eps) = 0;
  virtual void row_norm_backward(Tensor& dx, Tensor& dw, Tensor& db, const Tensor& gout, const Tensor& x,
                                 const Tensor& mean, const Tensor& rstd, const Tensor& w, const RowNormGeom& g) = 0;
  // Attention without the Tq x Tk matrix: forward writes out and the per-row logsumexp; backward overwrites
  // dq, dk, dv from them. A row whose keys are all masked gets out = 0 and lse = -inf (zero gradients).
  virtual void attention_forward(const AttnShape& s, Tensor& out, Tensor& lse, const Tensor& q, const Tensor& k,
                                 const Tensor& v, const AttentionMask& mask) = 0;
  virtual void attention_backward(const AttnShape& s, Tensor& dq, Tensor& dk, Tensor& dv, const Tensor& q,
                                  const Tensor& k, const Tensor& v, const AttentionMask& mask, const Tensor& out,
                                  const Tensor& lse, const Tensor& dout) = 0;
  // Whether the two above read and write heads through AttnShape's layouts (q, k, v, out and their gradients as
  // views into a model's (B, T, ...) activations); where not, callers pass packed (BH, T, D) tensors.
  virtual bool attention_layouts() const { return false; }
  // Cross-entropy with int64 class targets: per-row loss and logsumexp, and sums (float64, 2) = {sum of the row
  // losses, sum of the rows' weights}. Throws for a target outside [0, C) that is not the ignore_index.
  virtual void cross_entropy_forward(Tensor& loss, Tensor& lse, Tensor& sums, const Tensor& x, const Tensor& target,
                                     const Tensor& weight, const CrossEntropyGeom& g) = 0;
  // dx for the incoming gradient gout (one value, or one per row for reduction none) times scale.
  virtual void cross_entropy_backward(Tensor& dx, const Tensor& x, const Tensor& target, const Tensor& weight,
                                      const Tensor& lse, const Tensor& gout, double scale,
                                      const CrossEntropyGeom& g) = 0;
  // One optimizer step for one parameter, in place on p and its state buffers (all of p's dtype).
  virtual void optimizer_update(const OptimizerUpdate& u, Tensor& p, const Tensor& g, Tensor& s0, Tensor& s1,
                                Tensor& s2) = 0;
  // Recurrent layer (buffers and row order in kernel_args.h): gates = x W_ih^T + bias for all steps; the forward
  // recurrence filling buf, y, h_n, c_n; and backpropagation through time returning the gradients of
  // {x, h0, c0, w_ih, w_hh, b_ih, b_hh} that `want` asks for. grads = {dy, dh_n, dc_n}, dh_n and dc_n private
  // copies the backend overwrites.
  virtual void rnn_input_projection(Tensor& gates, const Tensor& x, const Tensor& w_ih, const Tensor& bias,
                                    const RNNGeom& g) = 0;
  virtual void rnn_forward(const RNNGeom& g, const RNNBuffers& buf, const Tensor& w_hh, const Tensor& b_hh,
                           const Tensor& h0, const Tensor& c0, Tensor& y, Tensor& h_n, Tensor& c_n) = 0;
  virtual std::vector<Tensor> rnn_backward(const RNNGeom& g, const RNNBuffers& buf, const Tensor& x,
                                           const Tensor& w_ih, const Tensor& w_hh, const std::vector<Tensor>& grads,
                                           const RNNGradFlags& want) = 0;
  // GPT's head split: packed (B, T, 3 * H * D) -> q, k, v each (B, H, T, D); and its gradient the other way.
  virtual void split_heads(Tensor& q, Tensor& k, Tensor& v, const Tensor& packed, int64_t H) = 0;
  virtual void merge_heads_grad(Tensor& packed, const Tensor& gq, const Tensor& gk, const Tensor& gv, int64_t H) = 0;

  // Block-quantized weights (core/quant_blocks.h): src f32 (R, K) -> dst u8 (R, row_bytes(f, K)) with the reference
  // rounding, and back (dst f32 (R, K)). K a multiple of 32.
  virtual void quantize_rows(Tensor& dst, const Tensor& src, quant::QuantFormat f) = 0;
  virtual void dequantize_rows(Tensor& dst, const Tensor& src, quant::QuantFormat f) = 0;
  // y (M, N) f32 = x (M, K) f32 W^T + bias (N; undefined: none), W the rows of w u8 (N, row_bytes(f, K)); the
  // activations are quantized to Q8_0 per 32-value block on the fly, as llama.cpp does. Inference only.
  virtual void quantized_linear(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias,
                                quant::QuantFormat f) = 0;
  // Per-sample products (DP-SGD's per-sample gradients): c[n] = op(a[n]) op(b[n]) for each n of the leading
  // dim, op transposing when ta / tb; all f32, a (N, ., .), b (N, ., .), c (N, rows, cols) contiguous.
  virtual void per_sample_gemm(Tensor& c, const Tensor& a, bool ta, const Tensor& b, bool tb) = 0;
  // im2col: x (N, C, H, W) f32 -> cols (N, C*KH*KW, OH*OW), zeros where the window is in the padding.
  virtual void unfold2d(Tensor& cols, const Tensor& x, const ConvGeom& g) = 0;

  // Dynamic int8 (torch.ao.quantization.quantize_dynamic with per-channel int8 weights, fbgemm's rules).
  // Weights: w f32 (N, K) -> q u8 (N, K) holding int8 two's complement and scale f32 (N), one per output row, as
  // torch 1.13's PerChannelMinMaxObserver(qint8, per_channel_symmetric): scale = max(amax / 127.5, eps),
  // q = clamp(nearbyint(w * (1 / scale)), -128, 127).
  virtual void int8_quantize_weight(Tensor& q, Tensor& scale, const Tensor& w) = 0;
  // sums i32 (N) = sum_k q[n, k] (signed): what the activations' zero point costs each output, precomputed.
  virtual void int8_row_sums(Tensor& sums, const Tensor& q) = 0;
  // The parameters torch picks for an activation tensor (f32, contiguous, any shape): ChooseQuantizationParams
  // on its min/max widened to hold 0, quint8 with fbgemm's reduce_range (levels 0..127).
  virtual Int8Params int8_choose_params(const Tensor& x) = 0;
  // y (M, N) f32 = float(sum_k (xq[m, k] - zp) q[n, k]) * (xp.scale * scale[n]) + bias[n] (bias undefined: none),
  // xq the u8 quantization of x (M, K) f32 with xp, int32 accumulation. x and y may be strided 2-d views (a
  // convolution passes an unfolded sample transposed). Inference only.
  virtual void int8_linear(Tensor& y, const Tensor& x, Int8Params xp, const Tensor& q, const Tensor& scale,
                           const Tensor& sums, const Tensor& bias) = 0;
};

// The backend of a device: the built-in CPU one, or the one registered for the device's type (an error names a
// device with none). Register before any tensor lives on the device; the backend must outlive them.
Backend& backend_for(Device d);
void register_backend(DeviceType type, Backend* backend);
inline Backend& backend_for(const Tensor& t) { return backend_for(t.device()); }

// Threads used by CPU kernels and BLAS (like torch.set_num_threads).
void set_num_threads(int n);
int get_num_threads();

}  // namespace loom
