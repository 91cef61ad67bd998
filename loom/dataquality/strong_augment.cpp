#include "loom/dataquality/strong_augment.h"

#include <algorithm>
#include <cmath>

#include "loom/core/generator.h"
#include "loom/data/dataset.h"

namespace loom::dataquality {

namespace {

// One image's channels as pixel intensities in [0, 1] (0 black, 1 white), planes of h * w.
struct Image {
  int64_t c, h, w;
  std::vector<float> px;
  float* plane(int64_t ch) { return px.data() + ch * h * w; }
};

// Moves every pixel by (dy, dx) plus, for a shear, a per-row (shear_x) or per-column (shear_y) offset; what is
// uncovered becomes black. Integer offsets: no interpolation blur on 28-pixel images.
void displace(Image& im, int64_t dy, int64_t dx, double shear_x, double shear_y) {
  std::vector<float> src(size_t(im.h * im.w));
  const double cy = double(im.h - 1) / 2, cx = double(im.w - 1) / 2;
  for (int64_t ch = 0; ch < im.c; ++ch) {
    float* p = im.plane(ch);
    std::copy(p, p + im.h * im.w, src.begin());
    for (int64_t y = 0; y < im.h; ++y)
      for (int64_t x = 0; x < im.w; ++x) {
        const int64_t sx = x - dx - int64_t(std::lround(shear_x * (double(y) - cy)));
        const int64_t sy = y - dy - int64_t(std::lround(shear_y * (double(x) - cx)));
        p[y * im.w + x] = sy >= 0 && sy < im.h && sx >= 0 && sx < im.w ? src[size_t(sy * im.w + sx)] : 0.f;
      }
  }
}

// The operation list: RandAugment's colour and geometry operations that make sense for small grey or RGB images
// (rotation is left out: shears and translations give the geometric variety without resampling).
constexpr int kOps = 10;

void apply_op(Image& im, int op, Generator& g, const StrongAugmentation& a) {
  const double m = g.next_double();                      // strength in [0, 1)
  const double sign = g.next_double() < 0.5 ? -1.0 : 1.0;
  auto each = [&](auto f) {
    for (float& v : im.px) v = f(v);
  };
  switch (op) {
    case 0:  // identity
      break;
    case 1: {  // translate
      const uint64_t span = uint64_t(2 * a.max_shift + 1);
      const int64_t dy = int64_t(g.next_u64() % span) - a.max_shift, dx = int64_t(g.next_u64() % span) - a.max_shift;
      displace(im, dy, dx, 0, 0);
      break;
    }
    case 2: displace(im, 0, 0, sign * 0.3 * m, 0); break;  // shear x
    case 3: displace(im, 0, 0, 0, sign * 0.3 * m); break;  // shear y
    case 4: {  // brightness: towards black or past the original
      const float f = float(1 + sign * 0.5 * m);
      each([&](float v) { return v * f; });
      break;
    }
    case 5: {  // contrast: towards or away from the image's mean intensity
      double mean = 0;
      for (float v : im.px) mean += v;
      mean /= double(im.px.size());
      const double f = 1 + sign * 0.5 * m;
      each([&](float v) { return float(mean + f * (double(v) - mean)); });
      break;
    }
    case 6: {  // solarize: invert what is brighter than a threshold in [0.5, 1]
      const float t = float(1 - 0.5 * m);
      each([&](float v) { return v >= t ? 1.f - v : v; });
      break;
    }
    case 7: {  // posterize: 4 to 16 grey levels
      const float levels = float(int64_t(1) << (2 + int(g.next_u64() % 3)));
      each([&](float v) { return std::min(std::floor(v * levels), levels - 1) / (levels - 1); });
      break;
    }
    case 8:  // autocontrast: each channel stretched to the full range
      for (int64_t ch = 0; ch < im.c; ++ch) {
        float* p = im.plane(ch);
        const auto [lo, hi] = std::minmax_element(p, p + im.h * im.w);
        const float l = *lo, span = *hi - *lo;
        if (span > 1e-6f) std::for_each(p, p + im.h * im.w, [&](float& v) { v = (v - l) / span; });
      }
      break;
    case 9: {  // Gaussian noise, sigma up to 0.1 of the range
      const double sigma = 0.1 * m;
      each([&](float v) { return float(double(v) + sigma * g.next_normal()); });
      break;
    }
    default: break;
  }
  for (float& v : im.px) v = std::clamp(v, 0.f, 1.f);
}

// FixMatch's cutout: a square of mid-grey centred anywhere in the image (it may hang over the edge).
void cutout(Image& im, Generator& g, double fraction) {
  const int64_t side = int64_t(std::lround(fraction * double(std::min(im.h, im.w))));
  if (side <= 0) return;
  const int64_t cy = int64_t(g.next_u64() % uint64_t(im.h)), cx = int64_t(g.next_u64() % uint64_t(im.w));
  const int64_t y0 = std::max<int64_t>(0, cy - side / 2), y1 = std::min(im.h, cy - side / 2 + side);
  const int64_t x0 = std::max<int64_t>(0, cx - side / 2), x1 = std::min(im.w, cx - side / 2 + side);
  for (int64_t ch = 0; ch < im.c; ++ch)
    for (int64_t y = y0; y < y1; ++y) std::fill(im.plane(ch) + y * im.w + x0, im.plane(ch) + y * im.w + x1, 0.5f);
}

}  // namespace

Tensor strong_augment(const Tensor& batch, const StrongAugmentation& a, uint64_t seed, int64_t epoch,
                      std::span<const int64_t> ids) {
  LOOM_CHECK(batch.dim() == 4, "strong augmentation needs image batches (N, C, H, W), got shape ", batch.shape());
  const int64_t n = batch.size(0), c = batch.size(1), h = batch.size(2), w = batch.size(3);
  LOOM_CHECK(int64_t(ids.size()) == n, "strong augmentation: ", ids.size(), " sample ids for ", n, " images");
  LOOM_CHECK(a.ops >= 0 && a.max_shift >= 0 && a.cutout >= 0 && a.cutout <= 1,
             "strong augmentation: ops and max_shift must be >= 0 and cutout in [0, 1] (got ", a.ops, ", ",
             a.max_shift, ", ", a.cutout, ")");
  auto per_channel = [&](const std::vector<double>& v, const char* what) {
    LOOM_CHECK(v.size() == 1 || int64_t(v.size()) == c, "strong augmentation: ", v.size(), " ", what,
               " values for ", c, " channels (give one, or one per channel)");
    std::vector<double> out(static_cast<size_t>(c));
    for (int64_t ch = 0; ch < c; ++ch) out[size_t(ch)] = v[v.size() == 1 ? 0 : size_t(ch)];
    return out;
  };
  const std::vector<double> black = per_channel(a.black, "black"), white = per_channel(a.white, "white");
  for (int64_t ch = 0; ch < c; ++ch)
    LOOM_CHECK(white[size_t(ch)] != black[size_t(ch)], "strong augmentation: channel ", ch,
               " has the same black and white value");

  Tensor x = batch.to(DType::f32).contiguous();
  if (x.is_same(batch)) x = x.clone();  // the result is a new tensor
  float* data = x.data<float>();
  Image im{c, h, w, std::vector<float>(size_t(c * h * w))};
  for (int64_t s = 0; s < n; ++s) {
    Generator g(data::sample_seed(seed ^ 0x57a0c5e1d5ull, epoch, ids[size_t(s)]));
    float* img = data + s * c * h * w;
    for (int64_t ch = 0; ch < c; ++ch) {
      const double b = black[size_t(ch)], range = white[size_t(ch)] - b;
      for (int64_t i = 0; i < h * w; ++i)
        im.px[size_t(ch * h * w + i)] = std::clamp(float((img[ch * h * w + i] - b) / range), 0.f, 1.f);
    }
    for (int64_t k = 0; k < a.ops; ++k) apply_op(im, int(g.next_u64() % kOps), g, a);
    cutout(im, g, a.cutout);
    for (int64_t ch = 0; ch < c; ++ch) {
      const double b = black[size_t(ch)], range = white[size_t(ch)] - b;
      for (int64_t i = 0; i < h * w; ++i) img[ch * h * w + i] = float(b + range * im.px[size_t(ch * h * w + i)]);
    }
  }
  return x;
}

}  // namespace loom::dataquality
