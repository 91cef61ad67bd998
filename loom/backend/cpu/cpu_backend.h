// The CPU backend: OpenMP-threaded, vectorisable loops; OpenBLAS for GEMM. Each method's fast kernel is
// in a file named for its family (elementwise.cpp, reduce.cpp, gemm.cpp, conv.cpp, pool.cpp, index.cpp,
// random.cpp, fills.cpp, norm.cpp, attention.cpp, cross_entropy.cpp, optim_update.cpp, rnn.cpp, heads.cpp);
// plain reference kernels for tests live in reference.h and reference_conv.h.
#pragma once
#include "loom/backend/backend.h"

namespace loom::cpu {

class CpuBackend final : public Backend {
 public:
  const char* name() const override { return "cpu"; }
  void copy(Tensor& out, const Tensor& src) override;
  void fill(Tensor& out, double v) override;
  void unary(UnaryOp op, Tensor& out, const Tensor& x, double a, double b) override;
  void binary(BinaryOp op, Tensor& out, const Tensor& a, const Tensor& b, double s, double t) override;
  void where(Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) override;
  void reduce(ReduceOp op, Tensor& out, const Tensor& x, const Shape& dims) override;
  void arg_reduce(bool is_max, Tensor& values, Tensor& indices, const Tensor& x, int64_t dim) override;
  void softmax(Tensor& out, const Tensor& x, int64_t dim, bool log) override;
  void softmax_backward(Tensor& dx, const Tensor& g, const Tensor& y, int64_t dim, bool log) override;
  void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const void* A, int64_t lda,
            const void* B, int64_t ldb, double beta, void* C, int64_t ldc, DType dt) override;
  bool gemm_bias_f32(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                     int64_t ldb, const float* bias, float* C, int64_t ldc) override;
  bool gemm_gelu_f32(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                     int64_t ldb, const float* bias, float* C, int64_t ldc, float* pre, GeluEpilogue kind) override;
  void gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, double beta, float* C, int64_t ldc) override;  // gemm_bf16.h
  void conv2d(Tensor& out, const Tensor& x, const Tensor& w, const Tensor* bias, const ConvGeom& g) override;
  void conv2d_backward(Tensor* dx, Tensor* dw, Tensor* db, const Tensor& gout, const Tensor& x, const Tensor& w,
                       const ConvGeom& g) override;
  void max_pool2d(Tensor& out, Tensor& indices, const Tensor& x, const PoolGeom& g) override;
  void max_pool2d_backward(Tensor& dx, const Tensor& gout, const Tensor& indices, const PoolGeom& g) override;
  bool relu_max_pool2d_2x2(Tensor& out, Tensor& taps, const Tensor& x, const PoolGeom& g) override;
  bool relu_max_pool2d_2x2_backward(Tensor& dx, const Tensor& gout, const Tensor& taps, const PoolGeom& g) override;
  bool conv2d_relu_max_pool2d(Tensor& out, Tensor& taps, const Tensor& x, const Tensor& w, const Tensor* bias,
                              const ConvGeom& cg, const PoolGeom& pg) override;
  bool conv2d_relu_max_pool2d_weight_grad(Tensor& dw, Tensor* db, const Tensor& gout, const Tensor& taps,
                                          const Tensor& x, const ConvGeom& cg, const PoolGeom& pg) override;
  void avg_pool2d(Tensor& out, const Tensor& x, const PoolGeom& g) override;
  void avg_pool2d_backward(Tensor& dx, const Tensor& gout, const PoolGeom& g) override;
  void adaptive_avg_pool2d(Tensor& out, const Tensor& x, const PoolGeom& g) override;
  void adaptive_avg_pool2d_backward(Tensor& dx, const Tensor& gout, const PoolGeom& g) override;
  void index_select(Tensor& out, const Tensor& x, int64_t dim, const Tensor& index) override;
  void index_add(Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) override;
  void gather(Tensor& out, const Tensor& x, int64_t dim, const Tensor& index) override;
  void scatter(Tensor& out, int64_t dim, const Tensor& index, const Tensor& src, bool add) override;
  void uniform(Tensor& out, double lo, double hi, Generator& gen) override;
  void normal(Tensor& out, double mean, double std, Generator& gen) override;
  void randint(Tensor& out, int64_t low, int64_t high, Generator& gen) override;  // fills.cpp
  void bernoulli(Tensor& out, double p, Generator& gen) override;
  void arange(Tensor& out, double start, double step) override;
  void arange_int(Tensor& out, int64_t start, int64_t step) override;
  void linspace(Tensor& out, double start, double end) override;
  void eye(Tensor& out) override;
  void batch_norm_stats(Tensor& mean, Tensor& var, const Tensor& x, const BatchNormGeom& g) override;  // norm.cpp
  void batch_norm_apply(Tensor& y, const Tensor& x, const Tensor& mean, const Tensor& invstd, const Tensor& w,
                        const Tensor& b, const BatchNormGeom& g) override;
  void batch_norm_backward(Tensor& dx, Tensor& dw, Tensor& db, const Tensor& gout, const Tensor& x, const Tensor& mean,
                           const Tensor& invstd, const Tensor& w, bool batch_stats, const BatchNormGeom& g) override;
  void row_norm_forward(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& w, const Tensor& b,
                        const RowNormGeom& g, double eps) override;
  void row_norm_backward(Tensor& dx, Tensor& dw, Tensor& db, const Tensor& gout, const Tensor& x, const Tensor& mean,
                         const Tensor& rstd, const Tensor& w, const RowNormGeom& g) override;
  void attention_forward(const AttnShape& s, Tensor& out, Tensor& lse, const Tensor& q, const Tensor& k,
                         const Tensor& v, const AttentionMask& mask) override;  // attention.cpp
  void attention_backward(const AttnShape& s, Tensor& dq, Tensor& dk, Tensor& dv, const Tensor& q, const Tensor& k,
                          const Tensor& v, const AttentionMask& mask, const Tensor& out, const Tensor& lse,
                          const Tensor& dout) override;
  bool attention_layouts() const override { return true; }
  void cross_entropy_forward(Tensor& loss, Tensor& lse, Tensor& sums, const Tensor& x, const Tensor& target,
                             const Tensor& weight, const CrossEntropyGeom& g) override;  // cross_entropy.cpp
  void cross_entropy_backward(Tensor& dx, const Tensor& x, const Tensor& target, const Tensor& weight,
                              const Tensor& lse, const Tensor& gout, double scale, const CrossEntropyGeom& g) override;
  void optimizer_update(const OptimizerUpdate& u, Tensor& p, const Tensor& g, Tensor& s0, Tensor& s1,
                        Tensor& s2) override;  // optim_update.cpp
  void rnn_input_projection(Tensor& gates, const Tensor& x, const Tensor& w_ih, const Tensor& bias,
                            const RNNGeom& g) override;  // rnn.cpp
  void rnn_forward(const RNNGeom& g, const RNNBuffers& buf, const Tensor& w_hh, const Tensor& b_hh, const Tensor& h0,
                   const Tensor& c0, Tensor& y, Tensor& h_n, Tensor& c_n) override;
  std::vector<Tensor> rnn_backward(const RNNGeom& g, const RNNBuffers& buf, const Tensor& x, const Tensor& w_ih,
                                   const Tensor& w_hh, const std::vector<Tensor>& grads,
                                   const RNNGradFlags& want) override;
  void split_heads(Tensor& q, Tensor& k, Tensor& v, const Tensor& packed, int64_t H) override;  // heads.cpp
  void merge_heads_grad(Tensor& packed, const Tensor& gq, const Tensor& gk, const Tensor& gv, int64_t H) override;
  void quantize_rows(Tensor& dst, const Tensor& src, quant::QuantFormat f) override;  // quant.cpp
  void dequantize_rows(Tensor& dst, const Tensor& src, quant::QuantFormat f) override;
  void quantized_linear(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias, quant::QuantFormat f) override;
  void per_sample_gemm(Tensor& c, const Tensor& a, bool ta, const Tensor& b, bool tb) override;  // per_sample.cpp
  void unfold2d(Tensor& cols, const Tensor& x, const ConvGeom& g) override;
  void int8_quantize_weight(Tensor& q, Tensor& scale, const Tensor& w) override;  // int8_linear.cpp
  void int8_row_sums(Tensor& sums, const Tensor& q) override;
  Int8Params int8_choose_params(const Tensor& x) override;
  void int8_linear(Tensor& y, const Tensor& x, Int8Params xp, const Tensor& q, const Tensor& scale, const Tensor& sums,
                   const Tensor& bias) override;
};

}  // namespace loom::cpu
