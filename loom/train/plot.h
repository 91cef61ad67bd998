// Line charts rasterised by loom itself (axes, ticks with labels, legend), for a run's curves.png.
//   train::Chart loss{.title = "loss", .xlabel = "epoch"};
//   loss.series.push_back({.name = "train", .x = {1, 2, 3}, .y = {0.6, 0.4, 0.35}, .color = train::kBlue});
//   train::write_png("curves.png", train::render_charts({loss, acc}));   // panels side by side
#pragma once
#include <string>
#include <vector>

#include "loom/train/png.h"

namespace loom::train {

inline constexpr Rgb kBlue{31, 119, 180}, kOrange{255, 127, 14}, kGreen{44, 160, 44}, kRed{214, 39, 40};

struct Series {
  std::string name = {};
  std::vector<double> x = {}, y = {};  // same length; non-finite points are skipped
  Rgb color = kBlue;
};

struct Chart {
  std::string title = {};
  std::string xlabel = {};
  std::vector<Series> series = {};
  bool percent = false;  // y tick labels as percentages (values are fractions)
};

// One panel per chart, side by side, each panel_w x panel_h pixels.
Image render_charts(const std::vector<Chart>& charts, int panel_w = 480, int panel_h = 360);

// Text in a built-in 5x7 pixel font (digits, lower-case letters, upper case drawn as lower case, and
// . , - + % : / ( ) _ =), scaled by `scale`; returns the width drawn.
int draw_text(Image& img, int x, int y, const std::string& text, Rgb color, int scale = 1);
int text_width(const std::string& text, int scale = 1);

// Round tick positions covering [lo, hi] (steps of 1, 2 or 5 times a power of ten, at least min_step), about
// `target` of them.
std::vector<double> nice_ticks(double lo, double hi, int target = 5, double min_step = 0);

}  // namespace loom::train
