// The CPU backend: OpenMP-threaded, vectorisable loops; OpenBLAS for GEMM. Each method's fast kernel is
// in a file named for its family (elementwise.cpp, reduce.cpp, gemm.cpp, conv.cpp, pool.cpp, index.cpp,
// random.cpp); plain reference kernels for tests live in reference.h and reference_conv.h.
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
  void gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, double beta, float* C, int64_t ldc) override;  // gemm_bf16.h
  void conv2d(Tensor& out, const Tensor& x, const Tensor& w, const Tensor* bias, const ConvGeom& g) override;
  void conv2d_backward(Tensor* dx, Tensor* dw, Tensor* db, const Tensor& gout, const Tensor& x, const Tensor& w,
                       const ConvGeom& g) override;
  void max_pool2d(Tensor& out, Tensor& indices, const Tensor& x, const PoolGeom& g) override;
  void max_pool2d_backward(Tensor& dx, const Tensor& gout, const Tensor& indices, const PoolGeom& g) override;
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
};

}  // namespace loom::cpu
