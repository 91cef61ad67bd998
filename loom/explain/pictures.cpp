#include "loom/explain/pictures.h"

#include <algorithm>
#include <cmath>

#include "loom/ops/ops.h"
#include "loom/train/plot.h"

namespace loom::explain {

using train::Image;
using train::Rgb;

Rgb heat_color(double t) {
  t = std::isfinite(t) ? std::clamp(t, 0.0, 1.0) : 0.0;
  // Piecewise-linear through dark blue, blue, cyan, green, yellow, red (a "jet" that starts dark).
  static const double stops[][3] = {{0, 0, 80}, {0, 60, 255}, {0, 220, 255}, {40, 220, 40}, {255, 230, 0}, {220, 20, 20}};
  const double f = t * 5;
  const int i = std::min(4, int(f));
  const double u = f - i;
  auto mix = [&](int c) { return uint8_t(std::lround(stops[i][c] * (1 - u) + stops[i + 1][c] * u)); };
  return {mix(0), mix(1), mix(2)};
}

Image to_image(const Tensor& chw, int scale) {
  LOOM_CHECK(chw.dim() == 3 && (chw.size(0) == 1 || chw.size(0) == 3), "to_image: expected a (1|3, H, W) image, got ",
             chw.shape());
  const int c = int(chw.size(0)), h = int(chw.size(1)), w = int(chw.size(2));
  const std::vector<double> v = chw.contiguous().tolist();
  Image im(w * scale, h * scale);
  auto byte = [](double x) { return uint8_t(std::lround(255.0 * std::clamp(std::isfinite(x) ? x : 0.0, 0.0, 1.0))); };
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const size_t i = size_t(y * w + x), plane = size_t(h * w);
      const Rgb px = c == 1 ? Rgb{byte(v[i]), byte(v[i]), byte(v[i])} : Rgb{byte(v[i]), byte(v[i + plane]), byte(v[i + 2 * plane])};
      for (int dy = 0; dy < scale; ++dy)
        for (int dx = 0; dx < scale; ++dx) im.set(x * scale + dx, y * scale + dy, px);
    }
  return im;
}

void blit(Image& dst, const Image& src, int x0, int y0) {
  for (int y = 0; y < src.height(); ++y)
    for (int x = 0; x < src.width(); ++x) dst.set(x0 + x, y0 + y, src.get(x, y));
}

Tensor normalize_map(const Tensor& map) {
  Tensor m = map.to(DType::f64);
  if (m.dim() == 3) m = m.sum({0});
  LOOM_CHECK(m.dim() == 2, "a heat map must be (H, W) or (C, H, W), got ", map.shape());
  const double lo = m.min().item(), hi = m.max().item();
  if (lo < 0) {  // signed: magnitude, so strong negative evidence shows as strongly as positive
    m = m.abs();
    const double top = m.max().item();
    return top > 0 ? m / top : zeros_like(m);
  }
  return hi > lo ? (m - lo) / (hi - lo) : zeros_like(m);
}

Image heatmap_panel(const Tensor& image, const Tensor& map, const HeatmapOptions& o) {
  LOOM_CHECK(image.dim() == 3, "heatmap_panel: expected a (C, H, W) image, got ", image.shape());
  const Tensor m = normalize_map(map);
  LOOM_CHECK(m.size(0) == image.size(1) && m.size(1) == image.size(2), "heatmap_panel: the map is ", m.shape(),
             ", the image ", image.shape());
  const int h = int(image.size(1)), w = int(image.size(2)), s = o.scale, gap = 8;
  const int top = o.title.empty() ? 0 : 16;
  Image out(3 * w * s + 2 * gap, h * s + top);
  if (!o.title.empty()) train::draw_text(out, 2, 4, o.title, {0, 0, 0});
  const Image in = to_image(image, s);
  blit(out, in, 0, top);
  const std::vector<double> mv = m.contiguous().tolist();
  for (int y = 0; y < h * s; ++y)
    for (int x = 0; x < w * s; ++x) {
      const double t = mv[size_t((y / s) * w + x / s)];
      const Rgb hc = heat_color(t), ic = in.get(x, y);
      out.set(w * s + gap + x, top + y, hc);
      const double grey = (ic.r + ic.g + ic.b) / 3.0, a = o.alpha * (0.3 + 0.7 * t);  // faint where the map is low
      auto mix = [&](uint8_t c) { return uint8_t(std::lround(grey * (1 - a) + c * a)); };
      out.set(2 * (w * s + gap) + x, top + y, {mix(hc.r), mix(hc.g), mix(hc.b)});
    }
  return out;
}

Image image_grid(const Tensor& images, const std::vector<std::string>& captions, const std::vector<Rgb>& colors,
                 int cols, int rows, int scale) {
  LOOM_CHECK(images.dim() == 4, "image_grid: expected (N, C, H, W) images, got ", images.shape());
  LOOM_CHECK(cols >= 1 && rows >= 1, "image_grid: the grid must be at least 1x1, got ", cols, "x", rows);
  const int n = int(std::min<int64_t>(images.size(0), int64_t(cols) * rows));
  const int h = int(images.size(2)) * scale, w = int(images.size(3)) * scale;
  int cap_scale = 1, cap_chars = 0;
  for (int i = 0; i < n; ++i) cap_chars = std::max<int>(cap_chars, int(size_t(i) < captions.size() ? captions[size_t(i)].size() : 0));
  const int cell_w = std::max(w, std::min(train::text_width(std::string(size_t(cap_chars), 'x'), cap_scale), 3 * w)) + 6;
  const int cell_h = h + (cap_chars ? 2 * 10 + 4 : 4);
  Image out(cols * cell_w, rows * cell_h);
  for (int i = 0; i < n; ++i) {
    const int cx = (i % cols) * cell_w, cy = (i / cols) * cell_h;
    blit(out, to_image(images.select(0, i), scale), cx + (cell_w - w) / 2, cy + 2);
    if (size_t(i) >= captions.size()) continue;
    const Rgb col = size_t(i) < colors.size() ? colors[size_t(i)] : Rgb{0, 0, 0};
    // A caption wider than the cell wraps onto a second line at its last space (or is cut).
    std::string a = captions[size_t(i)], b;
    while (train::text_width(a, cap_scale) > cell_w - 2 && !a.empty()) {
      const size_t sp = a.rfind(' ');
      if (sp != std::string::npos && b.empty()) {
        b = a.substr(sp + 1), a = a.substr(0, sp);
      } else {
        a.pop_back();
      }
    }
    while (train::text_width(b, cap_scale) > cell_w - 2 && !b.empty()) b.pop_back();
    train::draw_text(out, cx + 3, cy + h + 4, a, col, cap_scale);
    if (!b.empty()) train::draw_text(out, cx + 3, cy + h + 14, b, col, cap_scale);
  }
  return out;
}

Image attention_grid(const std::vector<Tensor>& layers, int cell) {
  LOOM_CHECK(!layers.empty(), "attention_grid: no layers");
  const int heads = int(layers[0].size(0)), label = 14, gap = 4;
  Image out(label + heads * (cell + gap), label + int(layers.size()) * (cell + gap));
  for (int hd = 0; hd < heads; ++hd) train::draw_text(out, label + hd * (cell + gap) + 2, 3, "head " + std::to_string(hd), {0, 0, 0});
  for (size_t l = 0; l < layers.size(); ++l) {
    const Tensor& a = layers[l];
    LOOM_CHECK(a.dim() == 3 && a.size(0) == heads && a.size(1) == a.size(2), "attention_grid: layer ", l,
               " weights are ", a.shape(), ", expected (", heads, ", T, T)");
    const int t = int(a.size(1));
    const std::vector<double> v = a.contiguous().tolist();
    const int y0 = label + int(l) * (cell + gap);
    train::draw_text(out, 1, y0 + 2, std::to_string(l), {0, 0, 0});
    for (int hd = 0; hd < heads; ++hd) {
      const int x0 = label + hd * (cell + gap);
      for (int y = 0; y < cell; ++y)
        for (int x = 0; x < cell; ++x) {
          const int q = y * t / cell, k = x * t / cell;
          // sqrt spreads the small weights of long rows into visible colours
          out.set(x0 + x, y0 + y, heat_color(std::sqrt(v[size_t((hd * t + q) * t + k)])));
        }
    }
  }
  return out;
}

}  // namespace loom::explain
