#include "loom/data/transforms.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "loom/ops/creation.h"

namespace loom::data {

// Transforms run on DataLoader worker threads, so they loop over raw memory instead of calling ops that
// would start an OpenMP team on every worker.

Tensor Compose::operator()(const Tensor& x, Generator& gen) const {
  Tensor y = x;
  for (const auto& t : ts_) y = t(y, gen);
  return y;
}

Tensor ToTensor::operator()(const Tensor& x) const {
  LOOM_CHECK(x.defined() && x.dtype() == DType::u8 && (x.dim() == 2 || x.dim() == 3),
             "ToTensor: expects a u8 image (H, W, C) or (H, W), got ", x.defined() ? x.shape() : Shape{}, " ",
             x.defined() ? x.dtype() : DType::u8);
  LOOM_CHECK(x.dim() == 2 || x.size(2) <= 4, "ToTensor: expects (H, W, C) with at most 4 channels, got shape ",
             x.shape(), " (a (C, H, W) u8 tensor converts with .to(DType::f32) / 255)");
  const Tensor src = x.contiguous();
  const int64_t h = x.size(0), w = x.size(1), c = x.dim() == 3 ? x.size(2) : 1;
  Tensor out = make_tensor({c, h, w}, DType::f32);
  const uint8_t* s = src.data<uint8_t>();
  float* d = out.data<float>();
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t p = 0; p < h * w; ++p) d[ch * h * w + p] = float(s[p * c + ch]) / 255.0f;
  return out;
}

Normalize::Normalize(std::vector<double> mean, std::vector<double> std)
    : mean_(std::move(mean)), std_(std::move(std)) {
  LOOM_CHECK(!mean_.empty() && mean_.size() == std_.size(),
             "Normalize: mean and std need the same non-zero length, got ", mean_.size(), " and ", std_.size());
  for (double s : std_) LOOM_CHECK(s != 0.0, "Normalize: std must be non-zero");
}

Tensor Normalize::operator()(const Tensor& x) const {
  LOOM_CHECK(x.defined() && (x.dtype() == DType::f32 || x.dtype() == DType::f64) && x.dim() >= 2,
             "Normalize: expects a float tensor (..., C, H, W), got ", x.defined() ? x.shape() : Shape{}, " ",
             x.defined() ? x.dtype() : DType::f32, " (apply ToTensor first)");
  const int64_t c = x.dim() >= 3 ? x.size(-3) : 1;
  const int64_t plane = x.size(-1) * x.size(-2), n = x.numel();
  LOOM_CHECK(mean_.size() == 1 || int64_t(mean_.size()) == c, "Normalize: ", mean_.size(),
             " mean/std values for an image with ", c, " channels (shape ", x.shape(), ")");
  Tensor src = x.contiguous();
  Tensor out = make_tensor(x.shape(), x.dtype());
  auto run = [&]<class T>() {
    const T* s = static_cast<const T*>(src.raw_data());
    T* d = static_cast<T*>(out.raw_data());
    for (int64_t i = 0; i < n; ++i) {
      const size_t ch = mean_.size() == 1 ? 0 : size_t((i / plane) % c);
      d[i] = (s[i] - T(mean_[ch])) / T(std_[ch]);
    }
  };
  if (x.dtype() == DType::f32) run.operator()<float>();
  else run.operator()<double>();
  return out;
}

namespace {

// PyTorch's source index for align_corners=False, clamped at 0, and the pair of taps with their weights.
// When in == out the taps are the identity, as in PyTorch's kernel.
template <class T>
void linear_taps(int64_t in, int64_t out, std::vector<int64_t>& i0, std::vector<int64_t>& i1, std::vector<T>& l0,
                 std::vector<T>& l1) {
  const T scale = T(in) / T(out);
  i0.resize(size_t(out)); i1.resize(size_t(out)); l0.resize(size_t(out)); l1.resize(size_t(out));
  for (int64_t o = 0; o < out; ++o) {
    if (in == out) { i0[size_t(o)] = i1[size_t(o)] = o; l0[size_t(o)] = 1; l1[size_t(o)] = 0; continue; }
    T src = scale * (T(o) + T(0.5)) - T(0.5);
    if (src < 0) src = 0;
    const int64_t a = std::min(int64_t(std::floor(src)), in - 1);
    const T lam = std::min(std::max(src - T(a), T(0)), T(1));
    i0[size_t(o)] = a;
    i1[size_t(o)] = a + (a < in - 1 ? 1 : 0);
    l1[size_t(o)] = lam;
    l0[size_t(o)] = T(1) - lam;
  }
}

template <class T, class Src, class Dst>
void bilinear_planes(const Src* src, Dst* dst, int64_t planes, int64_t ih, int64_t iw, int64_t oh, int64_t ow) {
  std::vector<int64_t> h0, h1, w0, w1;
  std::vector<T> hl0, hl1, wl0, wl1;
  linear_taps<T>(ih, oh, h0, h1, hl0, hl1);
  linear_taps<T>(iw, ow, w0, w1, wl0, wl1);
  for (int64_t p = 0; p < planes; ++p) {
    const Src* s = src + p * ih * iw;
    Dst* d = dst + p * oh * ow;
    for (int64_t y = 0; y < oh; ++y) {
      const Src* r0 = s + h0[size_t(y)] * iw;
      const Src* r1 = s + h1[size_t(y)] * iw;
      for (int64_t x = 0; x < ow; ++x) {
        const size_t a = size_t(w0[size_t(x)]), b = size_t(w1[size_t(x)]);
        // Same association as PyTorch's separable kernel: rows weighted last.
        const T top = T(r0[a]) * wl0[size_t(x)] + T(r0[b]) * wl1[size_t(x)];
        const T bot = T(r1[a]) * wl0[size_t(x)] + T(r1[b]) * wl1[size_t(x)];
        const T v = top * hl0[size_t(y)] + bot * hl1[size_t(y)];
        if constexpr (std::is_same_v<Dst, uint8_t>)
          d[y * ow + x] = uint8_t(std::clamp(std::nearbyint(v), T(0), T(255)));  // round half to even, as torch
        else
          d[y * ow + x] = Dst(v);
      }
    }
  }
}

// Antialiased taps (PyTorch's _upsample_bilinear2d_aa, which follows PIL): when shrinking, the triangle filter
// widens by the scale so every input pixel contributes, instead of sampling 2 of every `scale` pixels.
// Output o reads inputs [start[o], start[o] + count[o]) with weights w[o * span ..].
struct AaTaps {
  std::vector<int64_t> start, count;
  std::vector<double> w;
  int64_t span = 0;
};

AaTaps aa_taps(int64_t in, int64_t out) {
  const double scale = double(in) / double(out);
  const double support = scale >= 1.0 ? scale : 1.0, invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
  AaTaps t;
  t.span = int64_t(std::ceil(support)) * 2 + 1;
  t.start.resize(size_t(out));
  t.count.resize(size_t(out));
  t.w.assign(size_t(out * t.span), 0.0);
  for (int64_t o = 0; o < out; ++o) {
    const double center = scale * (double(o) + 0.5);
    const int64_t lo = std::max<int64_t>(int64_t(center - support + 0.5), 0);
    const int64_t n = std::min<int64_t>(std::min<int64_t>(int64_t(center + support + 0.5), in) - lo, t.span);
    double total = 0;
    double* w = t.w.data() + o * t.span;
    for (int64_t j = 0; j < n; ++j) {
      const double x = std::abs((double(j + lo) - center + 0.5) * invscale);
      w[j] = x < 1.0 ? 1.0 - x : 0.0;
      total += w[j];
    }
    if (total != 0)
      for (int64_t j = 0; j < n; ++j) w[j] /= total;
    t.start[size_t(o)] = lo;
    t.count[size_t(o)] = n;
  }
  return t;
}

// One antialiased pass over `planes` planes of (rows, in) -> (rows, out) along the last dim, elements `stride`
// apart (1: horizontal; a row length: vertical, with rows/in swapped by the caller).
template <class T>
void aa_pass(const T* src, T* dst, int64_t planes, int64_t lines, int64_t in, int64_t out, int64_t along_stride,
             int64_t line_stride_in, int64_t line_stride_out, const AaTaps& t) {
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t l = 0; l < lines; ++l) {
      const T* s = src + p * lines * in + l * line_stride_in;
      T* d = dst + p * lines * out + l * line_stride_out;
      for (int64_t o = 0; o < out; ++o) {
        const double* w = t.w.data() + o * t.span;
        T acc = 0;
        for (int64_t j = 0; j < t.count[size_t(o)]; ++j) acc += s[(t.start[size_t(o)] + j) * along_stride] * T(w[j]);
        d[o * along_stride] = acc;
      }
    }
}

template <class T>
void bilinear_aa_planes(const T* src, T* dst, int64_t planes, int64_t ih, int64_t iw, int64_t oh, int64_t ow) {
  // Horizontal first, then vertical, as PyTorch's separable kernel.
  std::vector<T> mid(size_t(planes * ih * ow));
  aa_pass<T>(src, mid.data(), planes, ih, iw, ow, 1, iw, ow, aa_taps(iw, ow));
  aa_pass<T>(mid.data(), dst, planes, ow, ih, oh, ow, 1, 1, aa_taps(ih, oh));
}

// Bytes of `fill` converted to x's dtype, for padding.
std::vector<char> fill_bytes(DType dt, double fill) {
  Tensor f = full({1}, fill, {.dtype = dt});
  const char* p = static_cast<const char*>(f.raw_data());
  return std::vector<char>(p, p + itemsize(dt));
}

void check_image(const Tensor& x, const char* who) {
  LOOM_CHECK(x.defined() && x.dim() >= 2, who, ": expects an image tensor (..., H, W), got ",
             x.defined() ? x.shape() : Shape{});
  // A decoded image is (H, W, C) until ToTensor; resizing or cropping it as (..., H, W) would silently treat
  // W as the height and C as the width (torchvision users put Resize before ToTensor, on PIL images).
  LOOM_CHECK(!(x.dtype() == DType::u8 && x.dim() == 3 && x.size(2) <= 4 && x.size(0) > 4), who,
             ": got a u8 image of shape ", x.shape(), ", which looks like (H, W, C); geometry transforms act on "
             "(C, H, W): apply ToTensor first");
}

Shape with_hw(const Tensor& x, int64_t h, int64_t w) {
  Shape s = x.shape();
  s[s.size() - 2] = h;
  s[s.size() - 1] = w;
  return s;
}

}  // namespace

Tensor resize_bilinear(const Tensor& x, int64_t h, int64_t w) {
  check_image(x, "Resize");
  LOOM_CHECK(h > 0 && w > 0, "Resize: output size must be positive, got (", h, ", ", w, ")");
  const int64_t ih = x.size(-2), iw = x.size(-1);
  LOOM_CHECK(ih > 0 && iw > 0, "Resize: input image is empty, shape ", x.shape());
  const int64_t planes = x.numel() / (ih * iw);
  Tensor src = x.contiguous();
  switch (x.dtype()) {
    case DType::f32: {
      Tensor out = make_tensor(with_hw(x, h, w), DType::f32);
      bilinear_planes<float>(src.data<float>(), out.data<float>(), planes, ih, iw, h, w);
      return out;
    }
    case DType::f64: {
      Tensor out = make_tensor(with_hw(x, h, w), DType::f64);
      bilinear_planes<double>(src.data<double>(), out.data<double>(), planes, ih, iw, h, w);
      return out;
    }
    case DType::u8: {
      Tensor out = make_tensor(with_hw(x, h, w), DType::u8);
      bilinear_planes<float>(src.data<uint8_t>(), out.data<uint8_t>(), planes, ih, iw, h, w);
      return out;
    }
    case DType::bf16:
    case DType::f16: return resize_bilinear(x.to(DType::f32), h, w).to(x.dtype());
    default: LOOM_FAIL("Resize: unsupported dtype ", x.dtype(), " (expected a float or u8 image)");
  }
}

Tensor resize_bilinear_antialias(const Tensor& x, int64_t h, int64_t w) {
  LOOM_CHECK(x.defined() && x.dim() >= 2, "Resize: expects an image tensor (..., H, W), got ",
             x.defined() ? x.shape() : Shape{});
  LOOM_CHECK(h > 0 && w > 0, "Resize: output size must be positive, got (", h, ", ", w, ")");
  const int64_t ih = x.size(-2), iw = x.size(-1);
  LOOM_CHECK(ih > 0 && iw > 0, "Resize: input image is empty, shape ", x.shape());
  const int64_t planes = x.numel() / (ih * iw);
  if (x.dtype() == DType::f64) {
    Tensor src = x.contiguous(), out = make_tensor(with_hw(x, h, w), DType::f64);
    bilinear_aa_planes<double>(src.data<double>(), out.data<double>(), planes, ih, iw, h, w);
    return out;
  }
  LOOM_CHECK(x.dtype() == DType::f32 || x.dtype() == DType::bf16 || x.dtype() == DType::f16,
             "Resize: unsupported dtype ", x.dtype(), " for antialiased resizing (use resize_image for u8 images)");
  Tensor src = x.to(DType::f32).contiguous(), out = make_tensor(with_hw(x, h, w), DType::f32);
  bilinear_aa_planes<float>(src.data<float>(), out.data<float>(), planes, ih, iw, h, w);
  return x.dtype() == DType::f32 ? out : out.to(x.dtype());
}

Tensor resize_image(const Tensor& img, int64_t h, int64_t w) {
  LOOM_CHECK(img.defined() && img.dtype() == DType::u8 && img.dim() == 3 && img.size(2) >= 1 && img.size(2) <= 4,
             "resize_image: expects a u8 image (H, W, C) with 1..4 channels, got ",
             img.defined() ? img.shape() : Shape{}, " ", img.defined() ? img.dtype() : DType::u8);
  const int64_t ih = img.size(0), iw = img.size(1), c = img.size(2);
  LOOM_CHECK(h > 0 && w > 0, "Resize: output size must be positive, got (", h, ", ", w, ")");
  LOOM_CHECK(ih > 0 && iw > 0, "Resize: input image is empty, shape ", img.shape());
  if (ih == h && iw == w) return img;
  // (H, W, C) u8 -> (C, H, W) float planes, filtered, rounded half to even and clamped back to u8 (H, W, C).
  const Tensor src = img.contiguous();
  const uint8_t* s = src.data<uint8_t>();
  std::vector<float> planes(size_t(c * ih * iw)), out(size_t(c * h * w));
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t p = 0; p < ih * iw; ++p) planes[size_t(ch * ih * iw + p)] = float(s[p * c + ch]);
  bilinear_aa_planes<float>(planes.data(), out.data(), c, ih, iw, h, w);
  Tensor r = make_tensor({h, w, c}, DType::u8);
  uint8_t* d = r.data<uint8_t>();
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t p = 0; p < h * w; ++p)
      d[p * c + ch] = uint8_t(std::clamp(std::nearbyint(out[size_t(ch * h * w + p)]), 0.0f, 255.0f));
  return r;
}

bool looks_like_hwc_image(const Tensor& x) {
  return x.defined() && x.dtype() == DType::u8 && x.dim() == 3 && x.size(2) <= 4 && x.size(0) > 4;
}

Tensor Resize::operator()(const Tensor& x) const {
  if (looks_like_hwc_image(x)) {
    // A decoded image, as torchvision's Resize on a PIL image: antialiased, u8 (H, W, C) out.
    if (w_ >= 0) return resize_image(x, h_, w_);
    LOOM_CHECK(h_ > 0, "Resize: size must be positive, got ", h_);
    const int64_t ih = x.size(0), iw = x.size(1), sh = std::min(ih, iw), lg = std::max(ih, iw);
    const int64_t new_long = int64_t(double(h_) * double(lg) / double(sh));
    return iw <= ih ? resize_image(x, new_long, h_) : resize_image(x, h_, new_long);
  }
  check_image(x, "Resize");
  if (w_ >= 0) return resize_bilinear(x, h_, w_);
  LOOM_CHECK(h_ > 0, "Resize: size must be positive, got ", h_);
  // torchvision: the shorter side becomes size, the longer one int(size * long / short).
  const int64_t ih = x.size(-2), iw = x.size(-1);
  const int64_t sh = std::min(ih, iw), lg = std::max(ih, iw);
  const int64_t new_long = int64_t(double(h_) * double(lg) / double(sh));
  return iw <= ih ? resize_bilinear(x, new_long, h_) : resize_bilinear(x, h_, new_long);
}

Tensor crop(const Tensor& x, int64_t top, int64_t left, int64_t h, int64_t w, double fill) {
  LOOM_CHECK(x.defined() && x.dim() >= 2, "crop: expects an image tensor (..., H, W), got ",
             x.defined() ? x.shape() : Shape{});
  LOOM_CHECK(h > 0 && w > 0, "crop: size must be positive, got (", h, ", ", w, ")");
  const int64_t ih = x.size(-2), iw = x.size(-1), planes = x.numel() / std::max<int64_t>(ih * iw, 1);
  const size_t es = itemsize(x.dtype());
  const std::vector<char> pad = fill_bytes(x.dtype(), fill);
  Tensor src = x.contiguous();
  Tensor out = make_tensor(with_hw(x, h, w), x.dtype());
  const char* s = static_cast<const char*>(src.raw_data());
  char* d = static_cast<char*>(out.raw_data());
  // Columns [c0, c1) of the window fall inside the image; the rest is padding.
  const int64_t c0 = std::clamp(-left, int64_t(0), w), c1 = std::clamp(iw - left, c0, w);
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t y = 0; y < h; ++y) {
      char* row = d + size_t((p * h + y) * w) * es;
      const int64_t sy = top + y;
      const bool inside = sy >= 0 && sy < ih;
      for (int64_t c = 0; c < w; ++c)
        if (!inside || c < c0 || c >= c1) std::memcpy(row + size_t(c) * es, pad.data(), es);
      if (inside && c1 > c0)
        std::memcpy(row + size_t(c0) * es, s + size_t((p * ih + sy) * iw + left + c0) * es, size_t(c1 - c0) * es);
    }
  return out;
}

Tensor hflip(const Tensor& x) {
  LOOM_CHECK(x.defined() && x.dim() >= 2, "hflip: expects an image tensor (..., H, W), got ",
             x.defined() ? x.shape() : Shape{});
  const int64_t w = x.size(-1), rows = x.numel() / std::max<int64_t>(w, 1);
  const size_t es = itemsize(x.dtype());
  Tensor src = x.contiguous();
  Tensor out = make_tensor(x.shape(), x.dtype());
  const char* s = static_cast<const char*>(src.raw_data());
  char* d = static_cast<char*>(out.raw_data());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < w; ++c) std::memcpy(d + size_t(r * w + c) * es, s + size_t(r * w + (w - 1 - c)) * es, es);
  return out;
}

Tensor CenterCrop::operator()(const Tensor& x) const {
  check_image(x, "CenterCrop");
  const int64_t ih = x.size(-2), iw = x.size(-1);
  // torchvision pads a too-small image symmetrically (extra pixel at the bottom/right), then takes
  // top = round((H - h) / 2) with Python's round-half-to-even; both reduce to this.
  auto start = [](int64_t in, int64_t out) {
    if (out > in) return -((out - in) / 2);
    return int64_t(std::nearbyint(double(in - out) / 2.0));
  };
  return crop(x, start(ih, h_), start(iw, w_), h_, w_);
}

Tensor RandomCrop::operator()(const Tensor& x, Generator& gen) const {
  check_image(x, "RandomCrop");
  LOOM_CHECK(o_.padding >= 0, "RandomCrop: padding must be >= 0, got ", o_.padding);
  const int64_t pad = o_.padding;
  int64_t ph = pad, pw = pad;  // padding on each side of each axis
  if (o_.pad_if_needed) {
    if (x.size(-2) + 2 * ph < h_) ph += h_ - (x.size(-2) + 2 * ph);
    if (x.size(-1) + 2 * pw < w_) pw += w_ - (x.size(-1) + 2 * pw);
  }
  const int64_t H = x.size(-2) + 2 * ph, W = x.size(-1) + 2 * pw;
  LOOM_CHECK(H >= h_ && W >= w_, "RandomCrop: crop (", h_, ", ", w_, ") is larger than the padded image (", H, ", ",
             W, ") of input shape ", x.shape());
  const int64_t top = int64_t(gen.next_u64() % uint64_t(H - h_ + 1));
  const int64_t left = int64_t(gen.next_u64() % uint64_t(W - w_ + 1));
  return crop(x, top - ph, left - pw, h_, w_, o_.fill);
}

Tensor RandomHorizontalFlip::operator()(const Tensor& x, Generator& gen) const {
  check_image(x, "RandomHorizontalFlip");
  return gen.next_double() < p_ ? hflip(x) : x;
}

}  // namespace loom::data
