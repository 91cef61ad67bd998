// View and shape ops. A view shares storage; its backward maps the gradient back to the base's shape
// (reshape, inverse permutation, or a zero tensor with the gradient written into the viewed window).
#include "loom/ops/shape.h"

#include <numeric>

#include "loom/autograd/function.h"
#include "loom/backend/backend.h"
#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"

namespace loom {

using autograd::needs_grad;
using autograd::record;
using G = std::vector<Tensor>;

namespace {

Shape infer_shape(Shape shape, int64_t n, const char* op) {
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      LOOM_CHECK(infer < 0, op, ": only one dimension can be inferred in shape ", shape);
      infer = int64_t(i);
    } else {
      LOOM_CHECK(shape[i] >= 0, op, ": invalid shape dimension ", shape[i], " in ", shape);
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    LOOM_CHECK(known != 0 && n % known == 0, op, ": shape ", shape, " is invalid for input of size ", n);
    shape[size_t(infer)] = n / known;
  }
  LOOM_CHECK(numel(shape) == n, op, ": shape ", shape, " is invalid for input of size ", n);
  return shape;
}

// Strides for viewing (old shape, old strides) as `shape` without a copy, or empty if impossible
// (the same chunk-matching rule PyTorch uses).
std::optional<Shape> view_strides(const Shape& oshape, const Shape& ostride, const Shape& shape) {
  Shape st(shape.size());
  if (numel(oshape) == 0 || oshape.empty()) return contiguous_strides(shape);
  int64_t view_d = int64_t(shape.size()) - 1;
  int64_t chunk_base = ostride.back(), tensor_numel = 1, view_numel = 1;
  for (int64_t td = int64_t(oshape.size()) - 1; td >= 0; --td) {
    tensor_numel *= oshape[size_t(td)];
    if (td == 0 || (oshape[size_t(td - 1)] != 1 && ostride[size_t(td - 1)] != tensor_numel * chunk_base)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[size_t(view_d)] == 1)) {
        st[size_t(view_d)] = view_numel * chunk_base;
        view_numel *= shape[size_t(view_d)];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (td > 0) { chunk_base = ostride[size_t(td - 1)]; tensor_numel = 1; view_numel = 1; }
    }
  }
  if (view_d != -1) return std::nullopt;
  return st;
}

// Writes gradient g into the window of a zero tensor shaped like the base (the backward of slicing).
Tensor embed_in_zeros(const Tensor& g, const Shape& base_shape, DType dt,
                      const std::function<Tensor(const Tensor&)>& window_of) {
  Tensor gx = zeros(base_shape, {.dtype = dt, .device = g.device()});
  Tensor win = window_of(gx);
  backend_for(gx).copy(win, g);
  return gx;
}

}  // namespace

Tensor view(const Tensor& x, Shape shape0) {
  Shape shape = infer_shape(std::move(shape0), x.numel(), "view");
  auto st = view_strides(x.shape(), x.strides(), shape);
  LOOM_CHECK(st.has_value(), "view: size ", shape, " is not compatible with input tensor's size ", x.shape(),
             " and stride ", x.strides(), " (at least one dimension spans across two contiguous subspaces). Use .reshape(...) instead.");
  Tensor y = make_view(x, shape, *st, x.offset());
  if (needs_grad({x})) record("View", {y}, {x}, [s = x.shape()](const G& g) { return G{g[0].reshape(s)}; });
  return y;
}

Tensor reshape(const Tensor& x, Shape shape0) {
  Shape shape = infer_shape(std::move(shape0), x.numel(), "reshape");
  if (view_strides(x.shape(), x.strides(), shape)) return view(x, shape);
  return view(contiguous(x), shape);
}

Tensor permute(const Tensor& x, const Shape& dims) {
  LOOM_CHECK(int64_t(dims.size()) == x.dim(), "permute: number of dims ", dims.size(), " does not match the input's ",
             x.dim(), " (shape ", x.shape(), ")");
  Shape shape(dims.size()), st(dims.size()), inv(dims.size());
  std::vector<bool> used(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t d = wrap_dim(dims[i], x.dim(), "permute");
    LOOM_CHECK(!used[size_t(d)], "permute: repeated dim in ", dims);
    used[size_t(d)] = true;
    shape[i] = x.shape()[size_t(d)];
    st[i] = x.strides()[size_t(d)];
    inv[size_t(d)] = int64_t(i);
  }
  Tensor y = make_view(x, shape, st, x.offset());
  if (needs_grad({x})) record("Permute", {y}, {x}, [inv](const G& g) { return G{permute(g[0], inv)}; });
  return y;
}

Tensor transpose(const Tensor& x, int64_t d0, int64_t d1) {
  Shape p(size_t(x.dim()));
  std::iota(p.begin(), p.end(), 0);
  if (x.dim() == 0) return x;
  std::swap(p[size_t(wrap_dim(d0, x.dim(), "transpose"))], p[size_t(wrap_dim(d1, x.dim(), "transpose"))]);
  return permute(x, p);
}

Tensor slice(const Tensor& x, int64_t dim0, int64_t start, int64_t end, int64_t step) {
  LOOM_CHECK(x.dim() > 0, "slice: cannot slice a 0-dim tensor");
  LOOM_CHECK(step > 0, "slice: step must be positive, got ", step);
  const int64_t dim = wrap_dim(dim0, x.dim(), "slice"), n = x.shape()[size_t(dim)];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape shape = x.shape(), st = x.strides();
  shape[size_t(dim)] = (end - start + step - 1) / step;
  st[size_t(dim)] *= step;
  Tensor y = make_view(x, shape, st, x.offset() + start * x.strides()[size_t(dim)]);
  if (needs_grad({x}))
    record("Slice", {y}, {x}, [s = x.shape(), dt = x.dtype(), dim, start, end, step](const G& g) {
      return G{embed_in_zeros(g[0], s, dt, [&](const Tensor& b) { NoGradGuard ng; return slice(b, dim, start, end, step); })};
    });
  return y;
}

Tensor narrow(const Tensor& x, int64_t dim0, int64_t start, int64_t length) {
  const int64_t dim = wrap_dim(dim0, x.dim(), "narrow"), n = x.shape()[size_t(dim)];
  if (start < 0) start += n;
  LOOM_CHECK(start >= 0 && length >= 0 && start + length <= n, "narrow: start (", start, ") + length (", length,
             ") exceeds dimension ", dim, " of size ", n, " (shape ", x.shape(), ")");
  return slice(x, dim, start, start + length);
}

Tensor select(const Tensor& x, int64_t dim0, int64_t index) {
  LOOM_CHECK(x.dim() > 0, "select: cannot select on a 0-dim tensor");
  const int64_t dim = wrap_dim(dim0, x.dim(), "select"), n = x.shape()[size_t(dim)];
  LOOM_CHECK(index >= -n && index < n, "select: index ", index, " is out of range for dimension ", dim, " of size ", n,
             " (shape ", x.shape(), ")");
  if (index < 0) index += n;
  Shape shape = x.shape(), st = x.strides();
  shape.erase(shape.begin() + dim);
  st.erase(st.begin() + dim);
  Tensor y = make_view(x, shape, st, x.offset() + index * x.strides()[size_t(dim)]);
  if (needs_grad({x}))
    record("Select", {y}, {x}, [s = x.shape(), dt = x.dtype(), dim, index](const G& g) {
      return G{embed_in_zeros(g[0], s, dt, [&](const Tensor& b) { NoGradGuard ng; return select(b, dim, index); })};
    });
  return y;
}

Tensor expand(const Tensor& x, const Shape& shape) {
  LOOM_CHECK(int64_t(shape.size()) >= x.dim(), "expand: the number of sizes provided (", shape.size(),
             ") must be greater or equal to the number of dimensions in the tensor (", x.dim(), "), shape ", x.shape());
  const int64_t lead = int64_t(shape.size()) - x.dim();
  Shape out(shape.size()), st(shape.size(), 0);
  for (int64_t i = 0; i < int64_t(shape.size()); ++i) {
    if (i < lead) {
      LOOM_CHECK(shape[size_t(i)] >= 0, "expand: -1 is not allowed in a leading, non-existing dimension (", shape, ")");
      out[size_t(i)] = shape[size_t(i)];
      continue;
    }
    const int64_t xd = x.shape()[size_t(i - lead)];
    const int64_t want = shape[size_t(i)] == -1 ? xd : shape[size_t(i)];
    LOOM_CHECK(xd == want || xd == 1, "expand: the expanded size of the tensor (", want, ") must match the existing size (",
               xd, ") at non-singleton dimension ", i, ". Target sizes: ", shape, ". Tensor sizes: ", x.shape());
    out[size_t(i)] = want;
    st[size_t(i)] = xd == want ? x.strides()[size_t(i - lead)] : 0;
  }
  Tensor y = make_view(x, out, st, x.offset());
  if (needs_grad({x})) record("Expand", {y}, {x}, [s = x.shape()](const G& g) { return G{sum_to(g[0], s)}; });
  return y;
}

Tensor squeeze(const Tensor& x) {
  Shape s;
  for (auto d : x.shape()) if (d != 1) s.push_back(d);
  return reshape(x, s);
}
Tensor squeeze(const Tensor& x, int64_t dim0) {
  if (x.dim() == 0) return x;
  const int64_t dim = wrap_dim(dim0, x.dim(), "squeeze");
  if (x.shape()[size_t(dim)] != 1) return x;
  Shape s = x.shape();
  s.erase(s.begin() + dim);
  return reshape(x, s);
}
Tensor unsqueeze(const Tensor& x, int64_t dim0) {
  const int64_t dim = wrap_dim(dim0, x.dim() + 1, "unsqueeze");
  Shape s = x.shape();
  s.insert(s.begin() + dim, 1);
  return reshape(x, s);
}
Tensor flatten(const Tensor& x, int64_t start0, int64_t end0) {
  if (x.dim() == 0) return reshape(x, {1});
  const int64_t start = wrap_dim(start0, x.dim(), "flatten"), end = wrap_dim(end0, x.dim(), "flatten");
  LOOM_CHECK(start <= end, "flatten: start_dim (", start, ") cannot come after end_dim (", end, ")");
  Shape s(x.shape().begin(), x.shape().begin() + start);
  int64_t m = 1;
  for (int64_t i = start; i <= end; ++i) m *= x.shape()[size_t(i)];
  s.push_back(m);
  s.insert(s.end(), x.shape().begin() + end + 1, x.shape().end());
  return reshape(x, s);
}

Tensor contiguous(const Tensor& x) {
  if (x.is_contiguous()) return x;
  Tensor y = make_tensor(x.shape(), x.dtype(), x.device());
  backend_for(x).copy(y, x);
  if (needs_grad({x})) record("Contiguous", {y}, {x}, [](const G& g) { return G{g[0]}; });
  return y;
}

Tensor cat(const std::vector<Tensor>& xs, int64_t dim0) {
  LOOM_CHECK(!xs.empty(), "cat: expected a non-empty list of tensors");
  const Tensor& ref = xs[0];
  LOOM_CHECK(ref.dim() > 0, "cat: zero-dimensional tensor cannot be concatenated");
  const int64_t dim = wrap_dim(dim0, ref.dim(), "cat");
  Shape shape = ref.shape();
  DType dt = ref.dtype();
  int64_t total = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& t = xs[i];
    LOOM_CHECK(t.dim() == ref.dim(), "cat: tensor ", i, " has ", t.dim(), " dims (shape ", t.shape(), ") but tensor 0 has ",
               ref.dim(), " (shape ", ref.shape(), ")");
    for (int64_t d = 0; d < ref.dim(); ++d)
      LOOM_CHECK(d == dim || t.shape()[size_t(d)] == shape[size_t(d)], "cat: sizes of tensors must match except in dimension ",
                 dim, ": tensor 0 has shape ", ref.shape(), ", tensor ", i, " has shape ", t.shape());
    total += t.shape()[size_t(dim)];
    dt = promote(dt, t.dtype());
  }
  shape[size_t(dim)] = total;
  Tensor y = make_tensor(shape, dt, ref.device());
  int64_t off = 0;
  std::vector<int64_t> sizes;
  for (const auto& t : xs) {
    const int64_t n = t.shape()[size_t(dim)];
    Shape ws = shape;
    ws[size_t(dim)] = n;
    Tensor win = make_view(y, ws, y.strides(), off * y.strides()[size_t(dim)]);
    backend_for(y).copy(win, t);
    off += n;
    sizes.push_back(n);
  }
  if (autograd::needs_grad(xs))
    record("Cat", {y}, xs, [sizes, dim](const G& g) {
      G out;
      int64_t o = 0;
      for (auto n : sizes) { out.push_back(slice(g[0], dim, o, o + n).contiguous()); o += n; }
      return out;
    });
  return y;
}

Tensor stack(const std::vector<Tensor>& xs, int64_t dim0) {
  LOOM_CHECK(!xs.empty(), "stack: expected a non-empty list of tensors");
  const int64_t dim = wrap_dim(dim0, xs[0].dim() + 1, "stack");
  std::vector<Tensor> u;
  for (size_t i = 0; i < xs.size(); ++i) {
    LOOM_CHECK(xs[i].shape() == xs[0].shape(), "stack: expects each tensor to be equal size, but got ", xs[0].shape(),
               " at entry 0 and ", xs[i].shape(), " at entry ", i);
    u.push_back(unsqueeze(xs[i], dim));
  }
  return cat(u, dim);
}

std::vector<Tensor> split_with_sizes(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim0) {
  const int64_t dim = wrap_dim(dim0, x.dim(), "split");
  int64_t total = 0;
  for (auto s : sizes) total += s;
  LOOM_CHECK(total == x.shape()[size_t(dim)], "split_with_sizes: sizes sum to ", total, " but dimension ", dim,
             " has size ", x.shape()[size_t(dim)]);
  std::vector<Tensor> out;
  int64_t o = 0;
  for (auto s : sizes) { out.push_back(narrow(x, dim, o, s)); o += s; }
  return out;
}

std::vector<Tensor> split(const Tensor& x, int64_t size, int64_t dim0) {
  LOOM_CHECK(size > 0, "split: split_size must be positive, got ", size);
  const int64_t dim = wrap_dim(dim0, x.dim(), "split"), n = x.shape()[size_t(dim)];
  std::vector<int64_t> sizes;
  for (int64_t o = 0; o < n; o += size) sizes.push_back(std::min(size, n - o));
  if (sizes.empty()) sizes.push_back(0);
  return split_with_sizes(x, sizes, dim);
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim0) {
  LOOM_CHECK(chunks > 0, "chunk: number of chunks must be positive, got ", chunks);
  const int64_t dim = wrap_dim(dim0, x.dim(), "chunk"), n = x.shape()[size_t(dim)];
  return split(x, std::max<int64_t>(1, (n + chunks - 1) / chunks), dim);
}

}  // namespace loom
