// CudaBackend's entries: argument checks the CPU backend makes, the host <-> device transfers, cuBLAS GEMMs, and
// the launches of kernels.h. Random fills and sequences are drawn on the host from the same Generator and copied,
// so a run on the GPU sees the CPU's numbers (init, dropout masks); they are rare and small next to the math.
#include "loom/backend/cuda/cuda_backend.h"

#include <vector>

#include "loom/backend/cuda/kernels.h"
#include "loom/backend/cuda/runtime.h"
#include "loom/core/generator.h"

namespace loom::cuda {

// The kernels mirror the op enums by value.
static_assert(int(UnaryOp::Softplus) == 29 && int(UnaryOp::LogicalNot) == 25 && int(UnaryOp::Round) == 28);
static_assert(int(BinaryOp::AddScaled) == 15 && int(BinaryOp::SoftplusBackward) == 24 && int(BinaryOp::LogicalOr) == 14);
static_assert(int(ReduceOp::Min) == 4 && int(ReduceOp::Mean) == 1);
static_assert(int(OptimizerKind::Adagrad) == 3 && int(OptimizerKind::Adam) == 1);

namespace {

[[noreturn]] void not_implemented(const char* entry) {
  LOOM_FAIL(entry, " is not implemented on CUDA yet (loom/backend/cuda/; docs/cuda.md lists what is)");
}

bool on_device(const Tensor& t) { return t.defined() && t.device().type == DeviceType::CUDA; }

// t as a kernel view with `as`'s shape (right-aligned broadcasting: a size-1 or missing dim gets stride 0).
k::View view_of(const Tensor& t, const Shape& as) {
  LOOM_CHECK(as.size() <= size_t(k::kMaxDims), "CUDA kernels take tensors of up to ", k::kMaxDims, " dims, got shape ",
             as);
  k::View v;
  v.data = t.raw_data();
  v.dt = t.dtype();
  v.nd = int(as.size());
  const int64_t off = int64_t(as.size()) - t.dim();
  for (int64_t d = 0; d < int64_t(as.size()); ++d) {
    v.size[d] = as[size_t(d)];
    const int64_t td = d - off;
    v.stride[d] = (td < 0 || t.shape()[size_t(td)] == 1) ? 0 : t.strides()[size_t(td)];
  }
  return v;
}
k::View view_of(const Tensor& t) { return view_of(t, t.shape()); }

Device dev() { return Device{DeviceType::CUDA, current_index()}; }
Tensor device_temp(const Shape& s, DType dt) { return make_tensor(s, dt, dev()); }

template <class T = void>
T* ptr(const Tensor& t) { return t.defined() ? static_cast<T*>(t.raw_data()) : nullptr; }

void check_float(const Tensor& t, const char* entry) {
  LOOM_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::f64, entry, " on CUDA: expected float32 or float64, got ",
             t.dtype());
}

// Draws on the host into a tensor of out's shape, then copies it over.
template <class F>
void host_then_copy(CudaBackend& be, Tensor& out, F draw) {
  Tensor h = make_tensor(out.shape(), out.dtype());
  draw(backend_for(Device{}), h);
  be.copy(out, h);
}

}  // namespace

// ---- memory

void CudaBackend::copy(Tensor& out, const Tensor& src) {
  if (out.numel() == 0) return;
  const bool od = on_device(out), sd = on_device(src);
  if (od && sd) return k::copy(view_of(out), view_of(src, out.shape()));
  Backend& cpu = backend_for(Device{});
  if (od) {  // host -> device: pack on the host in out's dtype and shape, upload, then place if out is strided
    Tensor h = src;
    if (!(src.dtype() == out.dtype() && src.shape() == out.shape() && src.is_contiguous())) {
      h = make_tensor(out.shape(), out.dtype());
      cpu.copy(h, src);
    }
    const size_t nbytes = size_t(out.numel()) * itemsize(out.dtype());
    if (out.is_contiguous()) return upload(out.raw_data(), h.raw_data(), nbytes);
    Tensor tmp = device_temp(out.shape(), out.dtype());
    upload(tmp.raw_data(), h.raw_data(), nbytes);
    return k::copy(view_of(out), view_of(tmp));
  }
  LOOM_CHECK(sd, "CudaBackend::copy: neither tensor is on the CUDA device");
  // device -> host: make src contiguous on the device, download, then let the CPU broadcast and convert.
  Tensor d = src;
  if (!src.is_contiguous()) {
    d = device_temp(src.shape(), src.dtype());
    k::copy(view_of(d), view_of(src));
  }
  const size_t nbytes = size_t(src.numel()) * itemsize(src.dtype());
  if (out.is_contiguous() && out.dtype() == src.dtype() && out.shape() == src.shape())
    return download(out.raw_data(), d.raw_data(), nbytes);
  Tensor h = make_tensor(src.shape(), src.dtype());
  download(h.raw_data(), d.raw_data(), nbytes);
  cpu.copy(out, h);
}

void CudaBackend::fill(Tensor& out, double v) { k::fill(view_of(out), v); }

// ---- elementwise

void CudaBackend::unary(UnaryOp op, Tensor& out, const Tensor& x, double a, double b) {
  LOOM_CHECK(out.dtype() == x.dtype() || op == UnaryOp::LogicalNot, "unary kernel: dtype mismatch ", out.dtype(), " vs ",
             x.dtype());
  if (is_integral(x.dtype()) && op != UnaryOp::LogicalNot) {
    const bool ok = op == UnaryOp::Neg || op == UnaryOp::Abs || op == UnaryOp::Sign || op == UnaryOp::Square ||
                    op == UnaryOp::Relu || op == UnaryOp::AddScalar || op == UnaryOp::MulScalar || op == UnaryOp::Clamp;
    LOOM_CHECK(ok, "unary op ", int(op), " is not defined for integer dtype ", x.dtype());
  }
  k::unary(int(op), view_of(out), view_of(x, out.shape()), a, b);
}

void CudaBackend::binary(BinaryOp op, Tensor& out, const Tensor& a, const Tensor& b, double s, double t) {
  LOOM_CHECK(a.dtype() == b.dtype(), "binary kernel: operand dtypes differ (", a.dtype(), ", ", b.dtype(), ")");
  const bool cmp = (int(op) >= int(BinaryOp::Eq) && int(op) <= int(BinaryOp::LogicalOr));
  if (cmp) {
    LOOM_CHECK(out.dtype() == DType::boolean, "comparison kernel: out must be bool");
  } else {
    LOOM_CHECK(out.dtype() == a.dtype(), "binary kernel: out dtype ", out.dtype(), " vs operands ", a.dtype());
    if (is_integral(a.dtype())) {
      LOOM_CHECK(op != BinaryOp::Div, "div: integer tensors divide as floats in loom; convert with .to(DType::f32) first");
      const bool ok = op == BinaryOp::Add || op == BinaryOp::AddScaled || op == BinaryOp::Sub || op == BinaryOp::Mul ||
                      op == BinaryOp::Maximum || op == BinaryOp::Minimum;
      LOOM_CHECK(ok, "binary op ", int(op), " is not defined for integer dtype ", a.dtype());
    }
  }
  k::binary(int(op), view_of(out), view_of(a, out.shape()), view_of(b, out.shape()), s, t);
}

void CudaBackend::where(Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  LOOM_CHECK(cond.dtype() == DType::boolean, "where: condition must be bool, got ", cond.dtype());
  LOOM_CHECK(a.dtype() == out.dtype() && b.dtype() == out.dtype(), "where kernel: operands must have out's dtype");
  k::where(view_of(out), view_of(cond, out.shape()), view_of(a, out.shape()), view_of(b, out.shape()));
}

// ---- reductions

void CudaBackend::reduce(ReduceOp op, Tensor& out, const Tensor& x, const Shape& dims) {
  bool reduced[k::kMaxDims] = {};
  for (int64_t d : dims) {
    LOOM_CHECK(d >= 0 && d < x.dim() && d < k::kMaxDims, "reduce kernel: bad dim ", d, " for shape ", x.shape());
    reduced[d] = true;
  }
  LOOM_CHECK(out.dim() == x.dim(), "reduce kernel: out must have keepdim shape");
  k::reduce(int(op), view_of(out), view_of(x), reduced);
}

void CudaBackend::arg_reduce(bool is_max, Tensor& values, Tensor& indices, const Tensor& x, int64_t dim) {
  LOOM_CHECK(indices.dtype() == DType::i64, "arg_reduce kernel: indices must be int64");
  k::arg_reduce(is_max, view_of(values, x.shape()), view_of(indices, x.shape()), view_of(x), int(dim));
}

void CudaBackend::softmax(Tensor& out, const Tensor& x, int64_t dim, bool log) {
  k::softmax(view_of(out), view_of(x), int(dim), log);
}

void CudaBackend::softmax_backward(Tensor& dx, const Tensor& g, const Tensor& y, int64_t dim, bool log) {
  k::softmax_backward(view_of(dx), view_of(g, dx.shape()), view_of(y, dx.shape()), int(dim), log);
}

// ---- matrix products. Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands.

void CudaBackend::gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const void* A, int64_t lda,
                       const void* B, int64_t ldb, double beta, void* C, int64_t ldc, DType dt) {
  if (M == 0 || N == 0) return;
  Cublas& cb = cublas();
  const cublasOperation_t oa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, ob = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (dt == DType::f32) {
    const float al = float(alpha), be = float(beta);
    check_cublas(cb.sgemm(cb.handle, ob, oa, int(N), int(M), int(K), &al, static_cast<const float*>(B), int(ldb),
                          static_cast<const float*>(A), int(lda), &be, static_cast<float*>(C), int(ldc)),
                 "sgemm");
  } else if (dt == DType::f64) {
    check_cublas(cb.dgemm(cb.handle, ob, oa, int(N), int(M), int(K), &alpha, static_cast<const double*>(B), int(ldb),
                          static_cast<const double*>(A), int(lda), &beta, static_cast<double*>(C), int(ldc)),
                 "dgemm");
  } else {
    LOOM_FAIL("gemm on CUDA: float32 or float64 only, got ", dt);
  }
}

void CudaBackend::gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const float* A, int64_t lda,
                            const float* B, int64_t ldb, double beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  // Round each operand to bf16 (packed), then bf16 x bf16 products with f32 accumulation on the tensor cores.
  const int64_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
  Tensor a16 = device_temp({ar * ac}, DType::bf16), b16 = device_temp({br * bc}, DType::bf16);
  k::f32_to_bf16(A, ar, ac, lda, ptr<uint16_t>(a16));
  k::f32_to_bf16(B, br, bc, ldb, ptr<uint16_t>(b16));
  Cublas& cb = cublas();
  const float al = float(alpha), be = float(beta);
  check_cublas(cb.gemm_ex(cb.handle, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, int(N), int(M),
                          int(K), &al, b16.raw_data(), CUDA_R_16BF, int(bc), a16.raw_data(), CUDA_R_16BF, int(ac), &be, C,
                          CUDA_R_32F, int(ldc), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
               "gemm_ex (bf16)");
}

// ---- convolution and pooling: im2col + cuBLAS per sample (groups = 1), the pools as direct kernels.

namespace {
k::ConvArgs conv_args(const ConvGeom& g) {
  return {g.C, g.H, g.W, g.KH, g.KW, g.OH, g.OW, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw};
}
k::PoolArgs pool_args(const PoolGeom& g) {
  return {g.N, g.C, g.H, g.W, g.OH, g.OW, g.KH, g.KW, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw};
}
}  // namespace

void CudaBackend::conv2d(Tensor& out, const Tensor& x, const Tensor& w, const Tensor* bias, const ConvGeom& g) {
  if (g.groups != 1) not_implemented("conv2d with groups > 1");
  check_float(x, "conv2d");
  const int64_t CKK = g.C * g.KH * g.KW, L = g.OH * g.OW, isz = int64_t(itemsize(x.dtype()));
  Tensor cols = device_temp({CKK, L}, x.dtype());
  const k::ConvArgs a = conv_args(g);
  for (int64_t n = 0; n < g.N; ++n) {
    k::im2col(x.dtype(), static_cast<const char*>(x.raw_data()) + n * g.C * g.H * g.W * isz, a, cols.raw_data());
    gemm(false, false, g.OC, L, CKK, 1.0, w.raw_data(), CKK, cols.raw_data(), L, 0.0,
         static_cast<char*>(out.raw_data()) + n * g.OC * L * isz, L, x.dtype());
  }
  if (bias && bias->defined()) k::add_channel_bias(x.dtype(), out.raw_data(), bias->raw_data(), g.N, g.OC, L);
}

void CudaBackend::conv2d_backward(Tensor* dx, Tensor* dw, Tensor* db, const Tensor& gout, const Tensor& x,
                                  const Tensor& w, const ConvGeom& g) {
  if (g.groups != 1) not_implemented("conv2d_backward with groups > 1");
  check_float(gout, "conv2d_backward");
  const DType dt = gout.dtype();
  const int64_t CKK = g.C * g.KH * g.KW, L = g.OH * g.OW, isz = int64_t(itemsize(dt));
  const k::ConvArgs a = conv_args(g);
  Tensor cols = device_temp({CKK, L}, dt);
  for (int64_t n = 0; n < g.N; ++n) {
    const void* go = static_cast<const char*>(gout.raw_data()) + n * g.OC * L * isz;
    if (dw && dw->defined()) {  // dw (OC, CKK) += gout_n (OC, L) cols_n^T
      k::im2col(dt, static_cast<const char*>(x.raw_data()) + n * g.C * g.H * g.W * isz, a, cols.raw_data());
      gemm(false, true, g.OC, CKK, L, 1.0, go, L, cols.raw_data(), L, n == 0 ? 0.0 : 1.0, dw->raw_data(), CKK, dt);
    }
    if (dx && dx->defined()) {  // cols = w^T (CKK, OC) gout_n, folded back onto the image
      gemm(true, false, CKK, L, g.OC, 1.0, w.raw_data(), CKK, go, L, 0.0, cols.raw_data(), L, dt);
      k::col2im(dt, cols.raw_data(), a, static_cast<char*>(dx->raw_data()) + n * g.C * g.H * g.W * isz);
    }
  }
  if (dw && dw->defined() && g.N == 0) fill(*dw, 0);
  if (db && db->defined()) k::channel_sum(dt, gout.raw_data(), g.N, g.OC, L, db->raw_data());
}

void CudaBackend::max_pool2d(Tensor& out, Tensor& indices, const Tensor& x, const PoolGeom& g) {
  check_float(x, "max_pool2d");
  k::max_pool2d(x.dtype(), x.raw_data(), pool_args(g), out.raw_data(), ptr<int64_t>(indices));
}

void CudaBackend::max_pool2d_backward(Tensor& dx, const Tensor& gout, const Tensor& indices, const PoolGeom& g) {
  check_float(gout, "max_pool2d_backward");
  k::max_pool2d_backward(gout.dtype(), gout.raw_data(), ptr<const int64_t>(indices), pool_args(g), dx.raw_data());
}

void CudaBackend::avg_pool2d(Tensor&, const Tensor&, const PoolGeom&) { not_implemented("avg_pool2d"); }
void CudaBackend::avg_pool2d_backward(Tensor&, const Tensor&, const PoolGeom&) { not_implemented("avg_pool2d_backward"); }
void CudaBackend::adaptive_avg_pool2d(Tensor&, const Tensor&, const PoolGeom&) { not_implemented("adaptive_avg_pool2d"); }
void CudaBackend::adaptive_avg_pool2d_backward(Tensor&, const Tensor&, const PoolGeom&) {
  not_implemented("adaptive_avg_pool2d_backward");
}

// ---- indexing

namespace {
void check_indices(const Tensor& index, int64_t limit, const char* op) {
  int* flag = error_flag_reset();
  k::check_index(ptr<const int64_t>(index), index.numel(), limit, flag);
  LOOM_CHECK(!error_flag_raised(), op, ": an index is out of bounds for dimension with size ", limit);
}
}  // namespace

void CudaBackend::index_select(Tensor& out, const Tensor& x, int64_t dim, const Tensor& index) {
  LOOM_CHECK(x.is_contiguous() && out.is_contiguous() && index.is_contiguous(),
             "index_select kernel: contiguous tensors expected");
  check_indices(index, x.dim() ? x.size(dim) : 1, "index_select");
  k::index_select(view_of(out), view_of(x), int(dim), ptr<const int64_t>(index), index.numel());
}

void CudaBackend::index_add(Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  LOOM_CHECK(out.is_contiguous() && src.is_contiguous() && index.is_contiguous(),
             "index_add kernel: contiguous tensors expected");
  check_float(out, "index_add");
  check_indices(index, out.dim() ? out.size(dim) : 1, "index_add");
  k::index_add(view_of(out), int(dim), ptr<const int64_t>(index), index.numel(), view_of(src));
}

void CudaBackend::gather(Tensor& out, const Tensor& x, int64_t dim, const Tensor& index) {
  LOOM_CHECK(out.is_contiguous() && index.is_contiguous(), "gather kernel: contiguous out/index expected");
  check_indices(index, x.size(dim), "gather");
  k::View xv = view_of(x);
  k::gather(view_of(out), xv, int(dim), view_of(index));
}

void CudaBackend::scatter(Tensor& out, int64_t dim, const Tensor& index, const Tensor& src, bool add) {
  LOOM_CHECK(out.is_contiguous() && index.is_contiguous(), "scatter kernel: contiguous out/index expected");
  check_float(out, "scatter");
  check_indices(index, out.size(dim), "scatter");
  k::scatter(view_of(out), int(dim), view_of(index), view_of(src, index.shape()), add);
}

// ---- random numbers and sequences: drawn on the host (same Generator stream as the CPU), then copied.

void CudaBackend::uniform(Tensor& out, double lo, double hi, Generator& gen) {
  host_then_copy(*this, out, [&](Backend& cpu, Tensor& h) { cpu.uniform(h, lo, hi, gen); });
}
void CudaBackend::normal(Tensor& out, double mean, double std, Generator& gen) {
  host_then_copy(*this, out, [&](Backend& cpu, Tensor& h) { cpu.normal(h, mean, std, gen); });
}
void CudaBackend::randint(Tensor& out, int64_t low, int64_t high, Generator& gen) {
  host_then_copy(*this, out, [&](Backend& cpu, Tensor& h) { cpu.randint(h, low, high, gen); });
}
void CudaBackend::bernoulli(Tensor& out, double p, Generator& gen) {
  host_then_copy(*this, out, [&](Backend& cpu, Tensor& h) { cpu.bernoulli(h, p, gen); });
}
void CudaBackend::arange(Tensor& out, double start, double step) {
  host_then_copy(*this, out, [&](Backend& cpu, Tensor& h) { cpu.arange(h, start, step); });
}
void CudaBackend::arange_int(Tensor& out, int64_t start, int64_t step) {
  host_then_copy(*this, out, [&](Backend& cpu, Tensor& h) { cpu.arange_int(h, start, step); });
}
void CudaBackend::linspace(Tensor& out, double start, double end) {
  host_then_copy(*this, out, [&](Backend& cpu, Tensor& h) { cpu.linspace(h, start, end); });
}
void CudaBackend::eye(Tensor& out) {
  host_then_copy(*this, out, [&](Backend& cpu, Tensor& h) { cpu.eye(h); });
}

// ---- norms

void CudaBackend::batch_norm_stats(Tensor&, Tensor&, const Tensor&, const BatchNormGeom&) {
  not_implemented("batch_norm_stats");
}
void CudaBackend::batch_norm_apply(Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                   const BatchNormGeom&) {
  not_implemented("batch_norm_apply");
}
void CudaBackend::batch_norm_backward(Tensor&, Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                      const Tensor&, const Tensor&, bool, const BatchNormGeom&) {
  not_implemented("batch_norm_backward");
}

void CudaBackend::row_norm_forward(Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& w,
                                   const Tensor& b, const RowNormGeom& g, double eps) {
  check_float(x, "row_norm_forward");
  k::row_norm_forward(x.dtype(), x.raw_data(), y.raw_data(), g.R, g.Gr, g.D, g.S, ptr(w), ptr(b), eps,
                      ptr<double>(mean), ptr<double>(rstd));
}

void CudaBackend::row_norm_backward(Tensor& dx, Tensor& dw, Tensor& db, const Tensor& gout, const Tensor& x,
                                    const Tensor& mean, const Tensor& rstd, const Tensor& w, const RowNormGeom& g) {
  check_float(x, "row_norm_backward");
  const int64_t CH = g.Gr * g.D;
  Tensor sw = dw.defined() ? device_temp({CH}, DType::f64) : Tensor();
  Tensor sb = db.defined() ? device_temp({CH}, DType::f64) : Tensor();
  k::row_norm_backward(x.dtype(), gout.raw_data(), x.raw_data(), g.R, g.Gr, g.D, g.S, ptr<const double>(mean),
                       ptr<const double>(rstd), ptr(w), ptr(dx), ptr<double>(sw), ptr<double>(sb));
  if (dw.defined()) k::cast_from_double(dw.dtype(), ptr<const double>(sw), dw.raw_data(), CH);
  if (db.defined()) k::cast_from_double(db.dtype(), ptr<const double>(sb), db.raw_data(), CH);
}

// ---- attention

namespace {
// Host vectors of int64 onto the device (kept alive by the returned tensor until the kernels are queued).
Tensor upload_i64(const std::vector<int64_t>& v) {
  Tensor t = device_temp({int64_t(v.size())}, DType::i64);
  if (!v.empty()) upload(t.raw_data(), v.data(), v.size() * sizeof(int64_t));
  return t;
}

k::AttnArgs attn_args(const AttnShape& s, const Tensor& q, const AttentionMask& mask, Tensor& keep_mask_off) {
  // attention_layouts() is false here: callers pass packed heads.
  LOOM_CHECK(s.q_layout.heads == 0 && s.k_layout.heads == 0 && s.v_layout.heads == 0 && s.o_layout.heads == 0,
             "CUDA attention: heads read in place through AttnShape layouts are not supported; pass packed heads");
  k::AttnArgs a;
  a.dt = q.dtype();
  a.BH = s.BH, a.Tq = s.Tq, a.Tk = s.Tk, a.D = s.D, a.Dv = s.Dv;
  a.scale = s.scale;
  a.causal = s.causal;
  a.k_stride = s.k_bh_stride ? s.k_bh_stride : s.Tk * s.D;
  a.v_stride = s.v_bh_stride ? s.v_bh_stride : s.Tk * s.Dv;
  if (mask.t.defined()) {
    LOOM_CHECK(mask.t.dtype() == DType::boolean || mask.t.dtype() == q.dtype(),
               "attention on CUDA: the mask must be bool or q's dtype, got ", mask.t.dtype());
    // Offsets count from the storage's base, so the pointer excludes the view's offset.
    a.mask = static_cast<const char*>(mask.t.raw_data()) - mask.t.offset() * int64_t(itemsize(mask.t.dtype()));
    a.mask_dt = mask.t.dtype();
    keep_mask_off = upload_i64(mask.bh_offset);
    a.mask_off = ptr<const int64_t>(keep_mask_off);
    a.mask_si = mask.si, a.mask_sj = mask.sj;
  }
  return a;
}
}  // namespace

void CudaBackend::attention_forward(const AttnShape& s, Tensor& out, Tensor& lse, const Tensor& q, const Tensor& k,
                                    const Tensor& v, const AttentionMask& mask) {
  check_float(q, "attention_forward");
  Tensor mask_off, kv_off, nkeys;
  k::AttnArgs a = attn_args(s, q, mask, mask_off);
  if (!s.kv_bh_offset.empty()) {
    kv_off = upload_i64(s.kv_bh_offset);
    nkeys = upload_i64(s.bh_keys);
    a.kv_off = ptr<const int64_t>(kv_off);
    a.nkeys = ptr<const int64_t>(nkeys);
  }
  k::attention_forward(a, q.raw_data(), k.raw_data(), v.raw_data(), out.raw_data(), lse.raw_data());
}

void CudaBackend::attention_backward(const AttnShape& s, Tensor& dq, Tensor& dk, Tensor& dv, const Tensor& q,
                                     const Tensor& k, const Tensor& v, const AttentionMask& mask, const Tensor& out,
                                     const Tensor& lse, const Tensor& dout) {
  check_float(q, "attention_backward");
  Tensor mask_off;
  k::AttnArgs a = attn_args(s, q, mask, mask_off);
  a.k_stride = s.Tk * s.D, a.v_stride = s.Tk * s.Dv;
  Tensor di = device_temp({s.BH * s.Tq}, q.dtype());
  k::attention_backward(a, q.raw_data(), k.raw_data(), v.raw_data(), out.raw_data(), lse.raw_data(), dout.raw_data(),
                        dq.raw_data(), dk.raw_data(), dv.raw_data(), di.raw_data());
}

// ---- cross-entropy

void CudaBackend::cross_entropy_forward(Tensor& loss, Tensor& lse, Tensor& sums, const Tensor& x, const Tensor& target,
                                        const Tensor& weight, const CrossEntropyGeom& g) {
  check_float(x, "cross_entropy");
  int* flag = error_flag_reset();
  k::cross_entropy_forward(x.dtype(), x.raw_data(), ptr<const int64_t>(target), ptr(weight), g.N, g.C, g.S,
                           g.ignore_index, g.label_smoothing, loss.raw_data(), lse.raw_data(), ptr<double>(sums), flag);
  LOOM_CHECK(!error_flag_raised(), "cross_entropy: a target is out of bounds for ", g.C, " classes");
}

void CudaBackend::cross_entropy_backward(Tensor& dx, const Tensor& x, const Tensor& target, const Tensor& weight,
                                         const Tensor& lse, const Tensor& gout, double scale, const CrossEntropyGeom& g) {
  check_float(x, "cross_entropy");
  k::cross_entropy_backward(x.dtype(), x.raw_data(), ptr<const int64_t>(target), ptr(weight), lse.raw_data(),
                            gout.raw_data(), gout.numel() != 1, scale, g.N, g.C, g.S, g.ignore_index,
                            g.label_smoothing, dx.raw_data());
}

// ---- optimizer

void CudaBackend::optimizer_update(const OptimizerUpdate& u, Tensor& p, const Tensor& g, Tensor& s0, Tensor& s1,
                                   Tensor& s2) {
  check_float(p, "optimizer step");
  k::OptimArgs o;
  o.kind = int(u.kind);
  o.lr = u.lr, o.weight_decay = u.weight_decay, o.eps = u.eps, o.momentum = u.momentum, o.dampening = u.dampening;
  o.nesterov = u.nesterov, o.first = u.first, o.decoupled = u.decoupled, o.maximize = u.maximize;
  o.centered = u.centered;
  o.beta1 = u.beta1, o.beta2 = u.beta2, o.step_size = u.step_size, o.bias_correction2_sqrt = u.bias_correction2_sqrt;
  o.alpha = u.alpha;
  k::optimizer_update(p.dtype(), o, p.raw_data(), g.raw_data(), ptr(s0), ptr(s1), ptr(s2), p.numel());
}

// ---- not yet on CUDA

void CudaBackend::rnn_input_projection(Tensor&, const Tensor&, const Tensor&, const Tensor&, const RNNGeom&) {
  not_implemented("rnn_input_projection");
}
void CudaBackend::rnn_forward(const RNNGeom&, const RNNBuffers&, const Tensor&, const Tensor&, const Tensor&,
                              const Tensor&, Tensor&, Tensor&, Tensor&) {
  not_implemented("rnn_forward");
}
std::vector<Tensor> CudaBackend::rnn_backward(const RNNGeom&, const RNNBuffers&, const Tensor&, const Tensor&,
                                              const Tensor&, const std::vector<Tensor>&, const RNNGradFlags&) {
  not_implemented("rnn_backward");
}

void CudaBackend::split_heads(Tensor& q, Tensor& k, Tensor& v, const Tensor& packed, int64_t H) {
  check_float(packed, "split_heads");
  const int64_t B = packed.size(0), T = packed.size(1), D = packed.size(2) / (3 * H);
  k::head_copy(packed.dtype(), packed.raw_data(), q.raw_data(), k.raw_data(), v.raw_data(), B, T, H, D, true);
}

void CudaBackend::merge_heads_grad(Tensor& packed, const Tensor& gq, const Tensor& gk, const Tensor& gv, int64_t H) {
  check_float(packed, "merge_heads_grad");
  const int64_t B = packed.size(0), T = packed.size(1), D = packed.size(2) / (3 * H);
  k::head_copy(packed.dtype(), packed.raw_data(), gq.raw_data(), gk.raw_data(), gv.raw_data(), B, T, H, D, false);
}

void CudaBackend::quantize_rows(Tensor&, const Tensor&, quant::QuantFormat) { not_implemented("quantize_rows"); }
void CudaBackend::dequantize_rows(Tensor&, const Tensor&, quant::QuantFormat) { not_implemented("dequantize_rows"); }
void CudaBackend::quantized_linear(Tensor&, const Tensor&, const Tensor&, const Tensor&, quant::QuantFormat) {
  not_implemented("quantized_linear");
}
void CudaBackend::per_sample_gemm(Tensor&, const Tensor&, bool, const Tensor&, bool) {
  not_implemented("per_sample_gemm");
}

void CudaBackend::unfold2d(Tensor& cols, const Tensor& x, const ConvGeom& g) {
  check_float(x, "unfold2d");
  const int64_t isz = int64_t(itemsize(x.dtype())), per = g.C * g.KH * g.KW * g.OH * g.OW;
  for (int64_t n = 0; n < g.N; ++n)
    k::im2col(x.dtype(), static_cast<const char*>(x.raw_data()) + n * g.C * g.H * g.W * isz, conv_args(g),
              static_cast<char*>(cols.raw_data()) + n * per * isz);
}

void CudaBackend::int8_quantize_weight(Tensor&, Tensor&, const Tensor&) { not_implemented("int8_quantize_weight"); }
void CudaBackend::int8_row_sums(Tensor&, const Tensor&) { not_implemented("int8_row_sums"); }
Int8Params CudaBackend::int8_choose_params(const Tensor&) { not_implemented("int8_choose_params"); }
void CudaBackend::int8_linear(Tensor&, const Tensor&, Int8Params, const Tensor&, const Tensor&, const Tensor&,
                              const Tensor&) {
  not_implemented("int8_linear");
}

}  // namespace loom::cuda
