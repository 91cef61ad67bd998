// A test-only device whose backend wraps the CPU backend: it counts every Backend call by entry name and opens
// host access only while one runs, so any op that reads a tensor's memory through data<T>() outside the Backend
// throws. Registered under DeviceType::PrivateUse by install_strict_device().
//   const Device dev = test::install_strict_device();
//   Tensor x = randn({2, 3}).to(dev);  x.data<float>();          // throws: host code bypassing the backend
//   test::strict_backend().calls("cross_entropy_forward");        // how often an entry ran
#pragma once
#include <map>
#include <string>

#include "loom/backend/backend.h"

namespace loom::test {

class StrictBackend;

// Registers the strict backend and its allocator (once) and returns the device.
Device install_strict_device();
StrictBackend& strict_backend();

class StrictBackend final : public Backend {
 public:
  const char* name() const override { return "strict"; }
  int64_t calls(const std::string& entry) const;
  int64_t total_calls() const;
  void reset_counts() { counts_.clear(); }

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
  void gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, double beta, float* C, int64_t ldc) override;
  void conv2d(Tensor& out, const Tensor& x, const Tensor& w, const Tensor* bias, const ConvGeom& g) override;
  void conv2d_backward(Tensor* dx, Tensor* dw, Tensor* db, const Tensor& gout, const Tensor& x, const Tensor& w,
                       const ConvGeom& g) override;
  void max_pool2d(Tensor& out, Tensor& indices, const Tensor& x, const PoolGeom& g) override;
  void max_pool2d_backward(Tensor& dx, const Tensor& gout, const Tensor& indices, const PoolGeom& g) override;
  bool relu_max_pool2d_2x2(Tensor& out, Tensor& taps, const Tensor& x, const PoolGeom& g) override;
  bool relu_max_pool2d_2x2_backward(Tensor& dx, const Tensor& gout, const Tensor& taps, const PoolGeom& g) override;
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
  void randint(Tensor& out, int64_t low, int64_t high, Generator& gen) override;
  void bernoulli(Tensor& out, double p, Generator& gen) override;
  void arange(Tensor& out, double start, double step) override;
  void arange_int(Tensor& out, int64_t start, int64_t step) override;
  void linspace(Tensor& out, double start, double end) override;
  void eye(Tensor& out) override;
  void batch_norm_stats(Tensor& mean, Tensor& var, const Tensor& x, const BatchNormGeom& g) override;
  void batch_norm_apply(Tensor& y, const Tensor& x, const Tensor& mean, const Tensor& invstd, const Tensor& w,
                        const Tensor& b, const BatchNormGeom& g) override;
  void batch_norm_backward(Tensor& dx, Tensor& dw, Tensor& db, const Tensor& gout, const Tensor& x, const Tensor& mean,
                           const Tensor& invstd, const Tensor& w, bool batch_stats, const BatchNormGeom& g) override;
  void row_norm_forward(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& w, const Tensor& b,
                        const RowNormGeom& g, double eps) override;
  void row_norm_backward(Tensor& dx, Tensor& dw, Tensor& db, const Tensor& gout, const Tensor& x, const Tensor& mean,
                         const Tensor& rstd, const Tensor& w, const RowNormGeom& g) override;
  void attention_forward(const AttnShape& s, Tensor& out, Tensor& lse, const Tensor& q, const Tensor& k,
                         const Tensor& v, const AttentionMask& mask) override;
  void attention_backward(const AttnShape& s, Tensor& dq, Tensor& dk, Tensor& dv, const Tensor& q, const Tensor& k,
                          const Tensor& v, const AttentionMask& mask, const Tensor& out, const Tensor& lse,
                          const Tensor& dout) override;
  void cross_entropy_forward(Tensor& loss, Tensor& lse, Tensor& sums, const Tensor& x, const Tensor& target,
                             const Tensor& weight, const CrossEntropyGeom& g) override;
  void cross_entropy_backward(Tensor& dx, const Tensor& x, const Tensor& target, const Tensor& weight,
                              const Tensor& lse, const Tensor& gout, double scale, const CrossEntropyGeom& g) override;
  void optimizer_update(const OptimizerUpdate& u, Tensor& p, const Tensor& g, Tensor& s0, Tensor& s1,
                        Tensor& s2) override;
  void rnn_input_projection(Tensor& gates, const Tensor& x, const Tensor& w_ih, const Tensor& bias,
                            const RNNGeom& g) override;
  void rnn_forward(const RNNGeom& g, const RNNBuffers& buf, const Tensor& w_hh, const Tensor& b_hh, const Tensor& h0,
                   const Tensor& c0, Tensor& y, Tensor& h_n, Tensor& c_n) override;
  std::vector<Tensor> rnn_backward(const RNNGeom& g, const RNNBuffers& buf, const Tensor& x, const Tensor& w_ih,
                                   const Tensor& w_hh, const std::vector<Tensor>& grads,
                                   const RNNGradFlags& want) override;
  void split_heads(Tensor& q, Tensor& k, Tensor& v, const Tensor& packed, int64_t H) override;
  void merge_heads_grad(Tensor& packed, const Tensor& gq, const Tensor& gk, const Tensor& gv, int64_t H) override;
  void quantize_rows(Tensor& dst, const Tensor& src, quant::QuantFormat f) override;
  void dequantize_rows(Tensor& dst, const Tensor& src, quant::QuantFormat f) override;
  void quantized_linear(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias, quant::QuantFormat f) override;
  void per_sample_gemm(Tensor& c, const Tensor& a, bool ta, const Tensor& b, bool tb) override;
  void unfold2d(Tensor& cols, const Tensor& x, const ConvGeom& g) override;
  void int8_quantize_weight(Tensor& q, Tensor& scale, const Tensor& w) override;
  void int8_row_sums(Tensor& sums, const Tensor& q) override;
  Int8Params int8_choose_params(const Tensor& x) override;
  void int8_linear(Tensor& y, const Tensor& x, Int8Params xp, const Tensor& q, const Tensor& scale, const Tensor& sums,
                   const Tensor& bias) override;

 private:
  Backend& cpu() { return backend_for(Device{}); }
  void count(const char* entry) { ++counts_[entry]; }
  std::map<std::string, int64_t> counts_;
};

}  // namespace loom::test
