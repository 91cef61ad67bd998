// Indexing ops with autograd: index_select <-> index_add and gather <-> scatter_add are each other's
// backward.
#include "loom/ops/index.h"

#include "loom/autograd/function.h"
#include "loom/backend/backend.h"
#include "loom/ops/creation.h"

namespace loom {

using autograd::needs_grad;
using autograd::record;
using G = std::vector<Tensor>;

namespace {
void check_index_tensor(const Tensor& index, const char* op) {
  LOOM_CHECK(index.dtype() == DType::i64, op, ": index must be an int64 tensor, got ", index.dtype());
}
void check_same_dims(const Tensor& x, const Tensor& index, int64_t dim, const char* op, bool index_le = true) {
  LOOM_CHECK(index.dim() == x.dim(), op, ": index has ", index.dim(), " dims (shape ", index.shape(), ") but the input has ",
             x.dim(), " (shape ", x.shape(), ")");
  for (int64_t d = 0; d < x.dim(); ++d)
    LOOM_CHECK(d == dim || !index_le || index.shape()[size_t(d)] <= x.shape()[size_t(d)], op, ": index shape ", index.shape(),
               " is larger than the input's shape ", x.shape(), " outside dim ", dim);
}
}  // namespace

Tensor index_select(const Tensor& x0, int64_t dim0, const Tensor& index) {
  check_index_tensor(index, "index_select");
  LOOM_CHECK(index.dim() <= 1, "index_select: index must be 0-d or 1-d, got shape ", index.shape());
  const int64_t dim = wrap_dim(dim0, x0.dim(), "index_select");
  Tensor x = x0.is_contiguous() ? x0 : x0.detach().contiguous();
  Tensor idx = index.contiguous();
  Shape s = x.shape();
  if (x.dim()) s[size_t(dim)] = idx.numel();
  Tensor y = make_tensor(s, x.dtype(), x.device());
  backend_for(x).index_select(y, x, dim, idx);
  if (needs_grad({x0}))
    record("IndexSelect", {y}, {x0}, [shape = x.shape(), dt = x.dtype(), dim, idx](const G& g) {
      return G{index_add(zeros(shape, {.dtype = dt, .device = g[0].device()}), dim, idx, g[0])};
    });
  return y;
}

Tensor index_add(const Tensor& x, int64_t dim0, const Tensor& index, const Tensor& src) {
  check_index_tensor(index, "index_add");
  const int64_t dim = wrap_dim(dim0, x.dim(), "index_add");
  Shape want = x.shape();
  if (x.dim()) want[size_t(dim)] = index.numel();
  LOOM_CHECK(src.shape() == want, "index_add: source of shape ", src.shape(), " does not match expected ", want);
  Tensor y = x.detach().clone();
  Tensor s = src.contiguous();
  backend_for(y).index_add(y, dim, index.contiguous(), s.dtype() == y.dtype() ? s : s.to(y.dtype()));
  if (needs_grad({x, src}))
    record("IndexAdd", {y}, {x, src}, [dim, idx = index.contiguous()](const G& g) { return G{g[0], index_select(g[0], dim, idx)}; });
  return y;
}

Tensor gather(const Tensor& x, int64_t dim0, const Tensor& index) {
  check_index_tensor(index, "gather");
  const int64_t dim = wrap_dim(dim0, x.dim(), "gather");
  check_same_dims(x, index, dim, "gather");
  Tensor idx = index.contiguous();
  Tensor y = make_tensor(idx.shape(), x.dtype(), x.device());
  backend_for(x).gather(y, x, dim, idx);
  if (needs_grad({x}))
    record("Gather", {y}, {x}, [shape = x.shape(), dt = x.dtype(), dim, idx](const G& g) {
      return G{scatter_add(zeros(shape, {.dtype = dt, .device = g[0].device()}), dim, idx, g[0])};
    });
  return y;
}

static Tensor scatter_impl(const Tensor& x, int64_t dim0, const Tensor& index, const Tensor& src, bool add) {
  const char* op = add ? "scatter_add" : "scatter";
  check_index_tensor(index, op);
  const int64_t dim = wrap_dim(dim0, x.dim(), op);
  check_same_dims(x, index, -1, op, false);
  for (int64_t d = 0; d < x.dim(); ++d)
    LOOM_CHECK(index.shape()[size_t(d)] <= src.shape()[size_t(d)] && (d == dim || index.shape()[size_t(d)] <= x.shape()[size_t(d)]),
               op, ": index shape ", index.shape(), " must not exceed src shape ", src.shape(), " or input shape ", x.shape());
  Tensor y = x.detach().clone();
  Tensor idx = index.contiguous();
  Tensor s = src.dtype() == y.dtype() ? src : src.to(y.dtype());
  backend_for(y).scatter(y, dim, idx, s, add);
  if (needs_grad({x, src}))
    record(add ? "ScatterAdd" : "Scatter", {y}, {x, src}, [dim, idx, add, sshape = src.shape()](const G& g) {
      Tensor gx = g[0];
      if (!add) gx = scatter_impl(g[0], dim, idx, zeros(idx.shape(), {.dtype = g[0].dtype(), .device = g[0].device()}), false);
      Tensor gs = gather(g[0], dim, idx);
      if (gs.shape() != sshape) {  // src larger than index: the rest of src gets no gradient
        Tensor full = zeros(sshape, {.dtype = g[0].dtype(), .device = g[0].device()});
        Tensor win = make_view(full, gs.shape(), full.strides(), 0);
        backend_for(full).copy(win, gs);
        gs = full;
      }
      return G{gx, gs};
    });
  return y;
}
Tensor scatter(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) { return scatter_impl(x, dim, index, src, false); }
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) { return scatter_impl(x, dim, index, src, true); }

Tensor one_hot(const Tensor& index, int64_t num_classes) {
  check_index_tensor(index, "one_hot");
  LOOM_CHECK(num_classes > 0, "one_hot: num_classes must be positive, got ", num_classes);
  Shape s = index.shape();
  s.push_back(num_classes);
  Tensor y = zeros(s, {.dtype = DType::i64, .device = index.device()});
  Tensor idx = index.contiguous().reshape([&] { Shape t = index.shape(); t.push_back(1); return t; }());
  backend_for(y).scatter(y, y.dim() - 1, idx, ones(idx.shape(), {.dtype = DType::i64, .device = index.device()}), false);
  return y;
}

}  // namespace loom
