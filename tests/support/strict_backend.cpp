#include "strict_backend.h"

#include "loom/core/allocator.h"
#include "loom/core/host_access.h"

namespace loom::test {

namespace {
// Host memory underneath (the CPU kernels run on it), reached only through the backend's entries.
void* strict_alloc(size_t n) { return cpu_alloc(n); }
void strict_free(void* p, size_t n) { cpu_free(p, n); }
}  // namespace

StrictBackend& strict_backend() {
  static StrictBackend be;
  return be;
}

Device install_strict_device() {
  static const bool once = [] {
    register_allocator(DeviceType::PrivateUse, {strict_alloc, strict_free});
    register_backend(DeviceType::PrivateUse, &strict_backend());
    return true;
  }();
  (void)once;
  return Device{DeviceType::PrivateUse, 0};
}

int64_t StrictBackend::calls(const std::string& entry) const {
  auto it = counts_.find(entry);
  return it == counts_.end() ? 0 : it->second;
}

int64_t StrictBackend::total_calls() const {
  int64_t n = 0;
  for (const auto& [k, v] : counts_) n += v;
  return n;
}

// Each entry: count it, open host access for the CPU kernel, run it.
#define LOOM_STRICT(entry, ...)      \
  {                                  \
    count(#entry);                   \
    HostAccessScope open;            \
    return cpu().entry(__VA_ARGS__); \
  }

void StrictBackend::copy(Tensor& out, const Tensor& src) LOOM_STRICT(copy, out, src)
void StrictBackend::fill(Tensor& out, double v) LOOM_STRICT(fill, out, v)
void StrictBackend::unary(UnaryOp op, Tensor& out, const Tensor& x, double a, double b)
    LOOM_STRICT(unary, op, out, x, a, b)
void StrictBackend::binary(BinaryOp op, Tensor& out, const Tensor& a, const Tensor& b, double s, double t)
    LOOM_STRICT(binary, op, out, a, b, s, t)
void StrictBackend::where(Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b)
    LOOM_STRICT(where, out, cond, a, b)
void StrictBackend::reduce(ReduceOp op, Tensor& out, const Tensor& x, const Shape& dims)
    LOOM_STRICT(reduce, op, out, x, dims)
void StrictBackend::arg_reduce(bool is_max, Tensor& values, Tensor& indices, const Tensor& x, int64_t dim)
    LOOM_STRICT(arg_reduce, is_max, values, indices, x, dim)
void StrictBackend::softmax(Tensor& out, const Tensor& x, int64_t dim, bool log) LOOM_STRICT(softmax, out, x, dim, log)
void StrictBackend::softmax_backward(Tensor& dx, const Tensor& g, const Tensor& y, int64_t dim, bool log)
    LOOM_STRICT(softmax_backward, dx, g, y, dim, log)
void StrictBackend::gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const void* A, int64_t lda,
                         const void* B, int64_t ldb, double beta, void* C, int64_t ldc, DType dt)
    LOOM_STRICT(gemm, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, dt)
void StrictBackend::gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const float* A,
                              int64_t lda, const float* B, int64_t ldb, double beta, float* C, int64_t ldc)
    LOOM_STRICT(gemm_bf16, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
void StrictBackend::conv2d(Tensor& out, const Tensor& x, const Tensor& w, const Tensor* bias, const ConvGeom& g)
    LOOM_STRICT(conv2d, out, x, w, bias, g)
void StrictBackend::conv2d_backward(Tensor* dx, Tensor* dw, Tensor* db, const Tensor& gout, const Tensor& x,
                                    const Tensor& w, const ConvGeom& g)
    LOOM_STRICT(conv2d_backward, dx, dw, db, gout, x, w, g)
void StrictBackend::max_pool2d(Tensor& out, Tensor& indices, const Tensor& x, const PoolGeom& g)
    LOOM_STRICT(max_pool2d, out, indices, x, g)
void StrictBackend::max_pool2d_backward(Tensor& dx, const Tensor& gout, const Tensor& indices, const PoolGeom& g)
    LOOM_STRICT(max_pool2d_backward, dx, gout, indices, g)
bool StrictBackend::relu_max_pool2d_2x2(Tensor& out, Tensor& taps, const Tensor& x, const PoolGeom& g)
    LOOM_STRICT(relu_max_pool2d_2x2, out, taps, x, g)
bool StrictBackend::relu_max_pool2d_2x2_backward(Tensor& dx, const Tensor& gout, const Tensor& taps, const PoolGeom& g)
    LOOM_STRICT(relu_max_pool2d_2x2_backward, dx, gout, taps, g)
void StrictBackend::avg_pool2d(Tensor& out, const Tensor& x, const PoolGeom& g) LOOM_STRICT(avg_pool2d, out, x, g)
void StrictBackend::avg_pool2d_backward(Tensor& dx, const Tensor& gout, const PoolGeom& g)
    LOOM_STRICT(avg_pool2d_backward, dx, gout, g)
void StrictBackend::adaptive_avg_pool2d(Tensor& out, const Tensor& x, const PoolGeom& g)
    LOOM_STRICT(adaptive_avg_pool2d, out, x, g)
void StrictBackend::adaptive_avg_pool2d_backward(Tensor& dx, const Tensor& gout, const PoolGeom& g)
    LOOM_STRICT(adaptive_avg_pool2d_backward, dx, gout, g)
void StrictBackend::index_select(Tensor& out, const Tensor& x, int64_t dim, const Tensor& index)
    LOOM_STRICT(index_select, out, x, dim, index)
void StrictBackend::index_add(Tensor& out, int64_t dim, const Tensor& index, const Tensor& src)
    LOOM_STRICT(index_add, out, dim, index, src)
void StrictBackend::gather(Tensor& out, const Tensor& x, int64_t dim, const Tensor& index)
    LOOM_STRICT(gather, out, x, dim, index)
void StrictBackend::scatter(Tensor& out, int64_t dim, const Tensor& index, const Tensor& src, bool add)
    LOOM_STRICT(scatter, out, dim, index, src, add)
void StrictBackend::uniform(Tensor& out, double lo, double hi, Generator& gen) LOOM_STRICT(uniform, out, lo, hi, gen)
void StrictBackend::normal(Tensor& out, double mean, double std, Generator& gen)
    LOOM_STRICT(normal, out, mean, std, gen)
void StrictBackend::randint(Tensor& out, int64_t low, int64_t high, Generator& gen)
    LOOM_STRICT(randint, out, low, high, gen)
void StrictBackend::bernoulli(Tensor& out, double p, Generator& gen) LOOM_STRICT(bernoulli, out, p, gen)
void StrictBackend::arange(Tensor& out, double start, double step) LOOM_STRICT(arange, out, start, step)
void StrictBackend::arange_int(Tensor& out, int64_t start, int64_t step) LOOM_STRICT(arange_int, out, start, step)
void StrictBackend::linspace(Tensor& out, double start, double end) LOOM_STRICT(linspace, out, start, end)
void StrictBackend::eye(Tensor& out) LOOM_STRICT(eye, out)
void StrictBackend::batch_norm_stats(Tensor& mean, Tensor& var, const Tensor& x, const BatchNormGeom& g)
    LOOM_STRICT(batch_norm_stats, mean, var, x, g)
void StrictBackend::batch_norm_apply(Tensor& y, const Tensor& x, const Tensor& mean, const Tensor& invstd,
                                     const Tensor& w, const Tensor& b, const BatchNormGeom& g)
    LOOM_STRICT(batch_norm_apply, y, x, mean, invstd, w, b, g)
void StrictBackend::batch_norm_backward(Tensor& dx, Tensor& dw, Tensor& db, const Tensor& gout, const Tensor& x,
                                        const Tensor& mean, const Tensor& invstd, const Tensor& w, bool batch_stats,
                                        const BatchNormGeom& g)
    LOOM_STRICT(batch_norm_backward, dx, dw, db, gout, x, mean, invstd, w, batch_stats, g)
void StrictBackend::row_norm_forward(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& w,
                                     const Tensor& b, const RowNormGeom& g, double eps)
    LOOM_STRICT(row_norm_forward, y, mean, rstd, x, w, b, g, eps)
void StrictBackend::row_norm_backward(Tensor& dx, Tensor& dw, Tensor& db, const Tensor& gout, const Tensor& x,
                                      const Tensor& mean, const Tensor& rstd, const Tensor& w, const RowNormGeom& g)
    LOOM_STRICT(row_norm_backward, dx, dw, db, gout, x, mean, rstd, w, g)
void StrictBackend::attention_forward(const AttnShape& s, Tensor& out, Tensor& lse, const Tensor& q, const Tensor& k,
                                      const Tensor& v, const AttentionMask& mask)
    LOOM_STRICT(attention_forward, s, out, lse, q, k, v, mask)
void StrictBackend::attention_backward(const AttnShape& s, Tensor& dq, Tensor& dk, Tensor& dv, const Tensor& q,
                                       const Tensor& k, const Tensor& v, const AttentionMask& mask, const Tensor& out,
                                       const Tensor& lse, const Tensor& dout)
    LOOM_STRICT(attention_backward, s, dq, dk, dv, q, k, v, mask, out, lse, dout)
void StrictBackend::cross_entropy_forward(Tensor& loss, Tensor& lse, Tensor& sums, const Tensor& x,
                                          const Tensor& target, const Tensor& weight, const CrossEntropyGeom& g)
    LOOM_STRICT(cross_entropy_forward, loss, lse, sums, x, target, weight, g)
void StrictBackend::cross_entropy_backward(Tensor& dx, const Tensor& x, const Tensor& target, const Tensor& weight,
                                           const Tensor& lse, const Tensor& gout, double scale,
                                           const CrossEntropyGeom& g)
    LOOM_STRICT(cross_entropy_backward, dx, x, target, weight, lse, gout, scale, g)
void StrictBackend::optimizer_update(const OptimizerUpdate& u, Tensor& p, const Tensor& g, Tensor& s0, Tensor& s1,
                                     Tensor& s2) LOOM_STRICT(optimizer_update, u, p, g, s0, s1, s2)
void StrictBackend::rnn_input_projection(Tensor& gates, const Tensor& x, const Tensor& w_ih, const Tensor& bias,
                                         const RNNGeom& g) LOOM_STRICT(rnn_input_projection, gates, x, w_ih, bias, g)
void StrictBackend::rnn_forward(const RNNGeom& g, const RNNBuffers& buf, const Tensor& w_hh, const Tensor& b_hh,
                                const Tensor& h0, const Tensor& c0, Tensor& y, Tensor& h_n, Tensor& c_n)
    LOOM_STRICT(rnn_forward, g, buf, w_hh, b_hh, h0, c0, y, h_n, c_n)
std::vector<Tensor> StrictBackend::rnn_backward(const RNNGeom& g, const RNNBuffers& buf, const Tensor& x,
                                                const Tensor& w_ih, const Tensor& w_hh,
                                                const std::vector<Tensor>& grads, const RNNGradFlags& want)
    LOOM_STRICT(rnn_backward, g, buf, x, w_ih, w_hh, grads, want)
void StrictBackend::split_heads(Tensor& q, Tensor& k, Tensor& v, const Tensor& packed, int64_t H)
    LOOM_STRICT(split_heads, q, k, v, packed, H)
void StrictBackend::merge_heads_grad(Tensor& packed, const Tensor& gq, const Tensor& gk, const Tensor& gv, int64_t H)
    LOOM_STRICT(merge_heads_grad, packed, gq, gk, gv, H)
void StrictBackend::quantize_rows(Tensor& dst, const Tensor& src, quant::QuantFormat f)
    LOOM_STRICT(quantize_rows, dst, src, f)
void StrictBackend::dequantize_rows(Tensor& dst, const Tensor& src, quant::QuantFormat f)
    LOOM_STRICT(dequantize_rows, dst, src, f)
void StrictBackend::quantized_linear(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias, quant::QuantFormat f)
    LOOM_STRICT(quantized_linear, y, x, w, bias, f)
void StrictBackend::per_sample_gemm(Tensor& c, const Tensor& a, bool ta, const Tensor& b, bool tb)
    LOOM_STRICT(per_sample_gemm, c, a, ta, b, tb)
void StrictBackend::unfold2d(Tensor& cols, const Tensor& x, const ConvGeom& g)
    LOOM_STRICT(unfold2d, cols, x, g)
void StrictBackend::int8_quantize_weight(Tensor& q, Tensor& scale, const Tensor& w)
    LOOM_STRICT(int8_quantize_weight, q, scale, w)
void StrictBackend::int8_row_sums(Tensor& sums, const Tensor& q) LOOM_STRICT(int8_row_sums, sums, q)
Int8Params StrictBackend::int8_choose_params(const Tensor& x) LOOM_STRICT(int8_choose_params, x)
void StrictBackend::int8_linear(Tensor& y, const Tensor& x, Int8Params xp, const Tensor& q, const Tensor& scale,
                                const Tensor& sums, const Tensor& bias)
    LOOM_STRICT(int8_linear, y, x, xp, q, scale, sums, bias)

#undef LOOM_STRICT

}  // namespace loom::test
