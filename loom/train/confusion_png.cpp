#include "loom/train/confusion_png.h"

#include <algorithm>
#include <cmath>

#include "loom/train/plot.h"
#include "loom/train/trainer.h"

namespace loom::train {

Image render_confusion_matrix(const std::vector<int64_t>& counts, int64_t k, const std::vector<std::string>& classes) {
  LOOM_CHECK(k >= 1 && int64_t(counts.size()) == k * k, "confusion matrix: ", counts.size(), " counts for ", k,
             " classes");
  auto name = [&](int64_t i) {
    std::string s = size_t(i) < classes.size() ? classes[size_t(i)] : std::to_string(i);
    return s.size() > 14 ? s.substr(0, 14) : s;
  };
  int label_w = 0;
  auto row_label = [&](int64_t i) { return std::to_string(i) + " " + name(i); };
  for (int64_t i = 0; i < k; ++i) label_w = std::max(label_w, text_width(row_label(i)));
  int64_t biggest = 1;
  for (int64_t c : counts) biggest = std::max(biggest, c);
  const int cell = std::max(34, text_width(std::to_string(biggest)) + 8);
  const int left = label_w + 10, top = 40, legend = 40;
  // Column labels would not fit as names: columns are numbered under the grid, and the row labels carry the
  // same numbers ("3 dress") as the key.
  Image img(left + int(k) * cell + 10, top + int(k) * cell + legend);
  draw_text(img, 4, 4, "confusion matrix: rows true class, columns predicted", {0, 0, 0});
  draw_text(img, 4, 18, "share of each true class; counts in cells", {90, 90, 90});
  for (int64_t t = 0; t < k; ++t) {
    int64_t row = 0;
    for (int64_t p = 0; p < k; ++p) row += counts[size_t(t * k + p)];
    draw_text(img, 4, top + int(t) * cell + cell / 2 - 3, row_label(t), {0, 0, 0});
    for (int64_t p = 0; p < k; ++p) {
      const int64_t c = counts[size_t(t * k + p)];
      const double share = row > 0 ? double(c) / double(row) : 0.0;
      // Diagonal: white to dark blue; off-diagonal: white to red (errors stand out).
      const Rgb hi = t == p ? Rgb{8, 48, 140} : Rgb{200, 30, 30};
      const double s = t == p ? share : std::min(1.0, 3.0 * share);
      auto mix = [&](uint8_t v) { return uint8_t(std::lround(255.0 * (1 - s) + v * s)); };
      const Rgb fill{mix(hi.r), mix(hi.g), mix(hi.b)};
      const int x0 = left + int(p) * cell, y0 = top + int(t) * cell;
      for (int y = 0; y < cell - 1; ++y)
        for (int x = 0; x < cell - 1; ++x) img.set(x0 + x, y0 + y, fill);
      if (c == 0) continue;
      const std::string txt = std::to_string(c);
      const Rgb ink = s > 0.5 ? Rgb{255, 255, 255} : Rgb{0, 0, 0};
      draw_text(img, x0 + (cell - text_width(txt)) / 2, y0 + cell / 2 - 3, txt, ink);
    }
  }
  for (int64_t p = 0; p < k; ++p) {
    const std::string txt = std::to_string(p);
    draw_text(img, left + int(p) * cell + (cell - text_width(txt)) / 2, top + int(k) * cell + 4, txt, {0, 0, 0});
  }
  draw_text(img, left, top + int(k) * cell + 18, "predicted class", {90, 90, 90});
  return img;
}

void write_confusion_png(const std::string& path, const ConfusionMatrix& cm, const std::vector<std::string>& classes) {
  const int64_t k = cm.num_classes();
  std::vector<int64_t> counts(size_t(k * k));
  for (int64_t t = 0; t < k; ++t)
    for (int64_t p = 0; p < k; ++p) counts[size_t(t * k + p)] = cm.at(t, p);
  write_png(path, render_confusion_matrix(counts, k, classes));
}

void write_confusion_png(const std::string& path, nn::Module& model, data::DataLoader& loader,
                         const std::vector<std::string>& classes, int64_t num_classes) {
  ConfusionMatrix cm(num_classes);
  evaluate(model, loader, {.metrics = {}, .confusion = &cm});
  write_confusion_png(path, cm, classes);
}

}  // namespace loom::train
