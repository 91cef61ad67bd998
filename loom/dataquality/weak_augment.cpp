#include "loom/dataquality/weak_augment.h"

#include "loom/core/generator.h"

namespace loom::dataquality {

Tensor augment_batch(const Tensor& batch, const Augmentation& a, uint64_t seed, int64_t epoch,
                     std::span<const int64_t> ids) {
  LOOM_CHECK(batch.dim() == 4, "augmentation needs image batches (N, C, H, W), got shape ", batch.shape());
  LOOM_CHECK(int64_t(ids.size()) == batch.size(0), "augmentation: ", ids.size(), " sample ids for ", batch.size(0),
             " images");
  Tensor x = batch.to(DType::f32).contiguous();
  if (x.is_same(batch)) x = x.clone();  // never write into the caller's (or a dataset's) storage
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  LOOM_CHECK(a.fill.empty() || a.fill.size() == 1 || int64_t(a.fill.size()) == c, "augmentation: ",
             a.fill.size(), " fill values for ", c, " channels");
  float* p = x.data<float>();
  std::vector<float> src(size_t(h * w));
  for (int64_t s = 0; s < n; ++s) {
    Generator g(data::sample_seed(seed, epoch, ids[size_t(s)]));
    const int64_t span = 2 * a.max_shift + 1;
    const int64_t dy = a.max_shift ? int64_t(g.next_u64() % uint64_t(span)) - a.max_shift : 0;
    const int64_t dx = a.max_shift ? int64_t(g.next_u64() % uint64_t(span)) - a.max_shift : 0;
    const bool flip = a.hflip && g.next_double() < 0.5;
    if (dy == 0 && dx == 0 && !flip) continue;
    for (int64_t ch = 0; ch < c; ++ch) {
      const float fill = a.fill.empty() ? 0.f : float(a.fill[a.fill.size() == 1 ? 0 : size_t(ch)]);
      float* img = p + (s * c + ch) * h * w;
      std::copy(img, img + h * w, src.begin());
      for (int64_t y = 0; y < h; ++y)
        for (int64_t xx = 0; xx < w; ++xx) {
          const int64_t sy = y - dy, sx0 = xx - dx, sx = flip ? w - 1 - sx0 : sx0;
          img[y * w + xx] = sy >= 0 && sy < h && sx0 >= 0 && sx0 < w ? src[size_t(sy * w + sx)] : fill;
        }
    }
  }
  return x;
}

}  // namespace loom::dataquality
