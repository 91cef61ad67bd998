// The CUDA kernels' launchers (loom/backend/cuda/*.cu, the loom_cuda library), called by CudaBackend. They take
// plain views (device pointer, dtype, sizes and element strides) instead of Tensors, so the .cu files compile
// with nvcc alone and the kernel library depends on nothing of loom but dtype.h and kernel_args.h' PODs.
// Every launcher runs on loom's stream (stream()) and returns without synchronising.
//   k::View o = view_of(out), x = view_of(src, out.shape());  k::copy(o, x);
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "loom/core/dtype.h"

namespace loom::cuda {

// The one stream every kernel, copy and cuBLAS call of loom runs on (created with the first CUDA device use).
cudaStream_t stream();

namespace k {

constexpr int kMaxDims = 8;

// A tensor as a kernel sees it: data already at the tensor's offset, strides in elements (0 = broadcast).
struct View {
  void* data = nullptr;
  DType dt = DType::f32;
  int nd = 0;
  int64_t size[kMaxDims] = {};
  int64_t stride[kMaxDims] = {};
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < nd; ++i) n *= size[i];
    return n;
  }
};

// ---- elementwise (op codes are loom::UnaryOp / BinaryOp as int). All views have out's shape.
void copy(const View& out, const View& src);
void fill(const View& out, double v);
void unary(int op, const View& out, const View& x, double a, double b);
void binary(int op, const View& out, const View& a, const View& b, double s, double t);
void where(const View& out, const View& cond, const View& a, const View& b);

// ---- reductions. `reduced[d]` marks the dims of x reduced; out has x's rank with those dims of size 1.
void reduce(int op, const View& out, const View& x, const bool* reduced);
void arg_reduce(bool is_max, const View& values, const View& indices, const View& x, int dim);
void softmax(const View& out, const View& x, int dim, bool log);
void softmax_backward(const View& dx, const View& g, const View& y, int dim, bool log);

// ---- dense helpers. Rounds an f32 matrix (rows x cols, leading dimension ld) to bf16 bits, packed (ld = cols).
void f32_to_bf16(const float* src, int64_t rows, int64_t cols, int64_t ld, uint16_t* dst);

// ---- fused families (contiguous tensors; f32 or f64 by `dt`).
// Cross-entropy over logits (N, C, S); row_w (R doubles) receives each row's weight; bad_target (one int on the
// device) is set to 1 when a target is out of range. sums (2 doubles) = {sum of losses, sum of row weights}.
void cross_entropy_forward(DType dt, const void* x, const int64_t* target, const void* weight, int64_t N, int64_t C,
                           int64_t S, int64_t ignore, double eps, void* loss, void* lse, double* sums, int* bad_target);
void cross_entropy_backward(DType dt, const void* x, const int64_t* target, const void* weight, const void* lse,
                            const void* gout, bool per_row, double scale, int64_t N, int64_t C, int64_t S,
                            int64_t ignore, double eps, void* dx);
void row_norm_forward(DType dt, const void* x, void* y, int64_t R, int64_t Gr, int64_t D, int64_t S, const void* w,
                      const void* b, double eps, double* mean, double* rstd);
// dw, db: double accumulators of Gr * D channels (zeroed here), null when not wanted.
void row_norm_backward(DType dt, const void* g, const void* x, int64_t R, int64_t Gr, int64_t D, int64_t S,
                       const double* mean, const double* rstd, const void* w, void* dx, double* dw, double* db);
void cast_from_double(DType dt, const double* src, void* dst, int64_t n);

// Optimizer step (kind and fields as loom::OptimizerUpdate, flattened).
struct OptimArgs {
  int kind = 0;
  double lr = 0, weight_decay = 0, eps = 0, momentum = 0, dampening = 0;
  bool nesterov = false, first = false, decoupled = false, maximize = false, centered = false;
  double beta1 = 0, beta2 = 0, step_size = 0, bias_correction2_sqrt = 0, alpha = 0;
};
void optimizer_update(DType dt, const OptimArgs& o, void* p, const void* g, void* s0, void* s1, void* s2, int64_t n);

// Indexing along `dim` of views (index: int64 contiguous, n entries).
void index_select(const View& out, const View& x, int dim, const int64_t* index, int64_t n);
void index_add(const View& out, int dim, const int64_t* index, int64_t n, const View& src);
void gather(const View& out, const View& x, int dim, const View& index);
void scatter(const View& out, int dim, const View& index, const View& src, bool add);
// Sets *bad to 1 when an index is outside [0, limit).
void check_index(const int64_t* index, int64_t n, int64_t limit, int* bad);

// GPT heads: packed (B, T, 3 H D) <-> q, k, v (B, H, T, D).
void head_copy(DType dt, void* packed, void* q, void* k, void* v, int64_t B, int64_t T, int64_t H, int64_t D,
               bool to_heads);

// Attention (q (BH, Tq, D), k/v (BH, Tk, D/Dv) at per-bh element offsets kv_off (null: bh * stride), keys per bh
// nkeys (null: Tk)). Mask: optional, bool or q's dtype, element (bh, i, j) at mask_off[bh] + i * si + j * sj.
struct AttnArgs {
  DType dt = DType::f32;
  int64_t BH = 0, Tq = 0, Tk = 0, D = 0, Dv = 0;
  double scale = 1;
  bool causal = false;
  int64_t k_stride = 0, v_stride = 0;
  const int64_t* kv_off = nullptr;  // device array (BH) or null
  const int64_t* nkeys = nullptr;   // device array (BH) or null
  const void* mask = nullptr;
  DType mask_dt = DType::boolean;
  const int64_t* mask_off = nullptr;  // device array (BH)
  int64_t mask_si = 0, mask_sj = 0;
};
void attention_forward(const AttnArgs& a, const void* q, const void* k, const void* v, void* out, void* lse);
// dq, dk, dv are overwritten (packed k and v: kv_off, nkeys and the strides are forward-only). scratch: BH * Tq
// elements of dt for the rows' dout . out.
void attention_backward(const AttnArgs& a, const void* q, const void* k, const void* v, const void* out,
                        const void* lse, const void* dout, void* dq, void* dk, void* dv, void* scratch);

// Convolution helpers (NCHW, contiguous), one sample at a time; geometry as loom::ConvGeom.
struct ConvArgs {
  int64_t C, H, W, KH, KW, OH, OW, sh, sw, ph, pw, dh, dw;
};
void im2col(DType dt, const void* x, const ConvArgs& g, void* cols);   // cols (C*KH*KW, OH*OW)
void col2im(DType dt, const void* cols, const ConvArgs& g, void* dx);  // dx (C, H, W), overwritten
// out (N, OC, S) += bias[oc]
void add_channel_bias(DType dt, void* out, const void* bias, int64_t N, int64_t OC, int64_t S);
// db[oc] = sum over n, s of gout (N, OC, S)
void channel_sum(DType dt, const void* gout, int64_t N, int64_t OC, int64_t S, void* db);
struct PoolArgs {
  int64_t N, C, H, W, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw;
};
void max_pool2d(DType dt, const void* x, const PoolArgs& g, void* out, int64_t* indices);
void max_pool2d_backward(DType dt, const void* gout, const int64_t* indices, const PoolArgs& g, void* dx);

}  // namespace k
}  // namespace loom::cuda
