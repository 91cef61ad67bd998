// The pictures (loom/explain/pictures.h, train/confusion_png.h) checked by their sizes and pixels, and the .npy
// files the attributions are saved in.
#include <gtest/gtest.h>

#include <fstream>

#include "loom/explain/pictures.h"
#include "loom/io/npy.h"
#include "loom/loom.h"
#include "loom/train/confusion_png.h"
#include "support/scratch.h"

using namespace loom;
using train::Rgb;
namespace fs = std::filesystem;

namespace {

int count_color(const train::Image& im, Rgb c) {
  int n = 0;
  for (int y = 0; y < im.height(); ++y)
    for (int x = 0; x < im.width(); ++x) n += im.get(x, y) == c;
  return n;
}

}  // namespace

TEST(Pictures, HeatColorRampEnds) {
  EXPECT_EQ(explain::heat_color(0), (Rgb{0, 0, 80}));
  EXPECT_EQ(explain::heat_color(1), (Rgb{220, 20, 20}));
  EXPECT_EQ(explain::heat_color(-3), explain::heat_color(0));  // clamped
  EXPECT_EQ(explain::heat_color(NAN), explain::heat_color(0));
}

TEST(Pictures, ToImageScalesPixels) {
  Tensor g = zeros({1, 2, 3});
  g[0][1][2].fill_(1.0);
  train::Image im = explain::to_image(g, 4);
  ASSERT_EQ(im.width(), 12);
  ASSERT_EQ(im.height(), 8);
  EXPECT_EQ(im.get(0, 0), (Rgb{0, 0, 0}));
  EXPECT_EQ(im.get(8, 4), (Rgb{255, 255, 255}));
  EXPECT_EQ(im.get(11, 7), (Rgb{255, 255, 255}));
  Tensor rgb = zeros({3, 1, 1});
  rgb[0][0][0].fill_(1.0);
  EXPECT_EQ(explain::to_image(rgb).get(0, 0), (Rgb{255, 0, 0}));
  EXPECT_THROW(explain::to_image(zeros({2, 4, 4})), Error);
}

TEST(Pictures, HeatmapPanelShowsInputMapAndOverlay) {
  Tensor img = full({1, 4, 4}, 0.5);
  Tensor map = zeros({4, 4});
  map[0][0].fill_(2.0);  // the hottest pixel
  train::Image p = explain::heatmap_panel(img, map, {.scale = 5});
  const int w = 4 * 5, gap = 8;
  ASSERT_EQ(p.width(), 3 * w + 2 * gap);
  ASSERT_EQ(p.height(), 20);
  EXPECT_EQ(p.get(2, 2), (Rgb{128, 128, 128}));                    // the input
  EXPECT_EQ(p.get(w + gap + 2, 2), explain::heat_color(1));          // hot corner of the map
  EXPECT_EQ(p.get(w + gap + 17, 17), explain::heat_color(0));        // cold elsewhere
  const Rgb hot = p.get(2 * (w + gap) + 2, 2), cold = p.get(2 * (w + gap) + 17, 17);
  EXPECT_GT(hot.r, cold.r);  // the overlay is redder where the map is hot
  // Signed maps are shown by magnitude: a strong negative value is as hot as a positive one.
  map[3][3].fill_(-2.0);
  train::Image q = explain::heatmap_panel(img, map, {.scale = 5});
  EXPECT_EQ(q.get(w + gap + 17, 17), explain::heat_color(1));
  EXPECT_THROW(explain::heatmap_panel(img, zeros({3, 3})), Error);
}

TEST(Pictures, ImageGridCellsAndRedCaptions) {
  Tensor imgs = zeros({5, 1, 6, 6});
  imgs[2].fill_(1.0);
  const Rgb red{214, 39, 40};
  train::Image grid = explain::image_grid(imgs, {"a", "b", "c", "d", "e"}, {{0, 0, 0}, red, {0, 0, 0}, {0, 0, 0}, {0, 0, 0}}, 3, 2, 2);
  // Cells: width max(12, caption) + 6 = 18, height 12 + 24 = 36.
  ASSERT_EQ(grid.width(), 3 * 18);
  ASSERT_EQ(grid.height(), 2 * 36);
  EXPECT_EQ(grid.get(2 * 18 + 3 + 6, 2 + 6), (Rgb{255, 255, 255}));  // image 2 is white
  EXPECT_EQ(grid.get(0 * 18 + 3 + 6, 2 + 6), (Rgb{0, 0, 0}));        // image 0 is black
  EXPECT_GT(count_color(grid, red), 0);                              // caption "b" drawn in red
  train::Image plain = explain::image_grid(imgs, {"a", "b"}, {}, 3, 2, 2);
  EXPECT_EQ(count_color(plain, red), 0);
}

TEST(Pictures, ConfusionMatrixPngSizesAndShading) {
  train::ConfusionMatrix cm(3);
  // 10 of class 0 all right; class 1: 5 right, 5 as class 2.
  Tensor logits = zeros({20, 3});
  std::vector<int64_t> y;
  for (int i = 0; i < 10; ++i) logits[i][0].fill_(5.0), y.push_back(0);
  for (int i = 10; i < 15; ++i) logits[i][1].fill_(5.0), y.push_back(1);
  for (int i = 15; i < 20; ++i) logits[i][2].fill_(5.0), y.push_back(1);
  cm.update(logits, tensor(y, {20}));
  std::vector<int64_t> counts;
  for (int t = 0; t < 3; ++t)
    for (int p = 0; p < 3; ++p) counts.push_back(cm.at(t, p));
  train::Image im = train::render_confusion_matrix(counts, 3, {"zero", "one", "two"});
  EXPECT_GT(im.width(), 3 * 34);
  EXPECT_GT(im.height(), 3 * 34);
  EXPECT_GT(count_color(im, Rgb{8, 48, 140}), 100);   // the full diagonal cell of class 0
  EXPECT_GT(count_color(im, Rgb{200, 30, 30}), 100);  // class 1 -> 2 (50% of the row): full red
  const fs::path p = loom::test::scratch("confusion.png");
  train::write_confusion_png(p.string(), cm, {"zero", "one", "two"});
  std::ifstream f(p, std::ios::binary);
  std::string sig(8, '\0');
  f.read(sig.data(), 8);
  EXPECT_EQ(sig, std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_THROW(train::render_confusion_matrix({1, 2, 3}, 2, {}), Error);
}

TEST(Pictures, AttentionGridLayout) {
  Tensor a = zeros({2, 4, 4});
  a[1][3][0].fill_(1.0);
  train::Image im = explain::attention_grid({a, a, a}, 40);
  EXPECT_EQ(im.width(), 14 + 2 * 44);
  EXPECT_EQ(im.height(), 14 + 3 * 44);
  // Layer 0, head 1, query 3 -> key 0 (bottom-left of the cell) is hot.
  EXPECT_EQ(im.get(14 + 44 + 2, 14 + 38), explain::heat_color(1));
  EXPECT_EQ(im.get(14 + 44 + 38, 14 + 2), explain::heat_color(0));
  EXPECT_THROW(explain::attention_grid({a, zeros({3, 4, 4})}), Error);
}

TEST(Npy, RoundTripAndHeader) {
  const fs::path p = loom::test::scratch("a.npy");
  Tensor t = arange(0.0, 6.0, 1.0).reshape({2, 3});
  io::write_npy(p.string(), t);
  std::ifstream f(p, std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(f)), {});
  EXPECT_EQ(all.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  EXPECT_EQ((all.size() - 24) % 64, 0u);  // header padded to 64 bytes
  EXPECT_NE(all.find("'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"), std::string::npos);
  Tensor back = io::read_npy(p.string());
  EXPECT_EQ(back.shape(), (Shape{2, 3}));
  EXPECT_EQ(back.tolist(), t.tolist());
  const fs::path bad = loom::test::scratch("bad.npy");
  loom::test::write_file(bad, "not numpy");
  EXPECT_THROW(io::read_npy(bad.string()), Error);
}
