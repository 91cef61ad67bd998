// Charts need only a few primitives: filled rectangles, thick lines and 5x7 bitmap text. Owning them keeps
// the run folder free of a plotting dependency.
#include "loom/train/plot.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <map>

#include "loom/core/error.h"

namespace loom::train {

namespace {

// Each glyph: 7 rows of 5 bits, bit 4 the leftmost column.
const std::map<char, std::array<uint8_t, 7>>& font() {
  static const std::map<char, std::array<uint8_t, 7>> f = {
      {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}}, {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
      {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}}, {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
      {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}}, {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
      {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}}, {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
      {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}}, {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
      {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}}, {',', {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08}},
      {'-', {0x00, 0x00, 0x00, 0x0E, 0x00, 0x00, 0x00}}, {'+', {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}},
      {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}}, {':', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}},
      {'/', {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00}}, {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},
      {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}}, {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}},
      {'=', {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00}}, {' ', {0, 0, 0, 0, 0, 0, 0}},
      {'a', {0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F}}, {'b', {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1E}},
      {'c', {0x00, 0x00, 0x0E, 0x10, 0x10, 0x11, 0x0E}}, {'d', {0x01, 0x01, 0x0D, 0x13, 0x11, 0x11, 0x0F}},
      {'e', {0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E}}, {'f', {0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08}},
      {'g', {0x00, 0x0F, 0x11, 0x11, 0x0F, 0x01, 0x0E}}, {'h', {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11}},
      {'i', {0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E}}, {'j', {0x02, 0x00, 0x06, 0x02, 0x02, 0x12, 0x0C}},
      {'k', {0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12}}, {'l', {0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}},
      {'m', {0x00, 0x00, 0x1A, 0x15, 0x15, 0x11, 0x11}}, {'n', {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11}},
      {'o', {0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E}}, {'p', {0x00, 0x00, 0x1E, 0x11, 0x1E, 0x10, 0x10}},
      {'q', {0x00, 0x00, 0x0D, 0x13, 0x0F, 0x01, 0x01}}, {'r', {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10}},
      {'s', {0x00, 0x00, 0x0E, 0x10, 0x0E, 0x01, 0x1E}}, {'t', {0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06}},
      {'u', {0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0D}}, {'v', {0x00, 0x00, 0x11, 0x11, 0x11, 0x0A, 0x04}},
      {'w', {0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0A}}, {'x', {0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11}},
      {'y', {0x00, 0x00, 0x11, 0x11, 0x0F, 0x01, 0x0E}}, {'z', {0x00, 0x00, 0x1F, 0x02, 0x04, 0x08, 0x1F}},
  };
  return f;
}

constexpr Rgb kBlack{0, 0, 0}, kGrid{225, 225, 225}, kText{60, 60, 60};

void fill_rect(Image& img, int x0, int y0, int w, int h, Rgb c) {
  for (int y = y0; y < y0 + h; ++y)
    for (int x = x0; x < x0 + w; ++x) img.set(x, y, c);
}

// Bresenham, with a 2x2 pen so lines stay visible after viewers downscale the image.
void draw_line(Image& img, int x0, int y0, int x1, int y1, Rgb c, int pen = 2) {
  const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
  int err = dx + dy;
  for (;;) {
    fill_rect(img, x0, y0, pen, pen, c);
    if (x0 == x1 && y0 == y1) break;
    const int e2 = 2 * err;
    if (e2 >= dy) err += dy, x0 += sx;
    if (e2 <= dx) err += dx, y0 += sy;
  }
}

std::string tick_label(double v, double step, bool percent) {
  if (percent) v *= 100, step *= 100;
  char buf[64];
  if (std::abs(v) >= 1e5) {  // "2e+10" fits the margin where 20000000000 would not
    std::snprintf(buf, sizeof buf, "%.3g", v);
    return buf;
  }
  const int decimals = std::clamp(int(std::ceil(-std::log10(step) - 1e-9)), 0, 6);
  std::snprintf(buf, sizeof buf, "%.*f%s", decimals, std::abs(v) < step * 1e-6 ? 0.0 : v, percent ? "%" : "");
  return buf;
}

void draw_panel(Image& img, int ox, int oy, int w, int h, const Chart& c) {
  const int left = 62, right = 16, top = 34, bottom = 42;
  const int px0 = ox + left, px1 = ox + w - right, py0 = oy + top, py1 = oy + h - bottom;
  draw_text(img, ox + (w - text_width(c.title, 2)) / 2, oy + 4, c.title, kBlack, 2);
  draw_text(img, px0 + (px1 - px0 - text_width(c.xlabel)) / 2, py1 + 26, c.xlabel, kText);

  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (const auto& s : c.series)
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) {
        xlo = std::min(xlo, s.x[i]), xhi = std::max(xhi, s.x[i]);
        ylo = std::min(ylo, s.y[i]), yhi = std::max(yhi, s.y[i]);
      }
  if (!std::isfinite(xlo)) xlo = 0, xhi = 1, ylo = 0, yhi = 1;
  if (xhi - xlo < 1) xhi = xlo + 1;  // epochs: at least one unit wide
  if (yhi - ylo < 1e-12) ylo -= 0.5 * std::max(1e-3, std::abs(ylo)), yhi += 0.5 * std::max(1e-3, std::abs(yhi));
  const double ypad = 0.05 * (yhi - ylo);
  ylo -= ypad, yhi += ypad;
  auto X = [&](double x) { return px0 + int(std::lround((x - xlo) / (xhi - xlo) * (px1 - px0))); };
  auto Y = [&](double y) { return py1 - int(std::lround((y - ylo) / (yhi - ylo) * (py1 - py0))); };

  std::vector<double> yt = nice_ticks(ylo, yhi, 5), xt = nice_ticks(xlo, xhi, 6, /*min_step=*/1.0);
  const double ystep = yt.size() > 1 ? yt[1] - yt[0] : 1.0, xstep = xt.size() > 1 ? xt[1] - xt[0] : 1.0;
  for (double v : yt) {
    if (v < ylo || v > yhi) continue;
    const int y = Y(v);
    draw_line(img, px0, y, px1, y, kGrid, 1);
    draw_line(img, px0 - 4, y, px0, y, kBlack, 1);
    const std::string s = tick_label(v, ystep, c.percent);
    draw_text(img, px0 - 7 - text_width(s), y - 3, s, kText);
  }
  for (double v : xt) {
    if (v < xlo || v > xhi) continue;
    const int x = X(v);
    draw_line(img, x, py0, x, py1, kGrid, 1);
    draw_line(img, x, py1, x, py1 + 4, kBlack, 1);
    const std::string s = tick_label(v, std::max(xstep, 1.0), false);
    draw_text(img, x - text_width(s) / 2, py1 + 9, s, kText);
  }
  draw_line(img, px0, py0, px0, py1, kBlack, 1);
  draw_line(img, px0, py1, px1, py1, kBlack, 1);

  for (const auto& s : c.series) {
    int prevx = 0, prevy = 0;
    bool has_prev = false;
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) {
        has_prev = false;
        continue;
      }
      const int x = X(s.x[i]), y = Y(s.y[i]);
      if (has_prev) draw_line(img, prevx, prevy, x, y, s.color);
      fill_rect(img, x - 2, y - 2, 5, 5, s.color);
      prevx = x, prevy = y, has_prev = true;
    }
  }
  // Legend in one row above the plot's top right corner, where it cannot hide a curve.
  int lx = px1;
  for (auto it = c.series.rbegin(); it != c.series.rend(); ++it) {
    const int tw = text_width(it->name);
    lx -= tw;
    draw_text(img, lx, py0 - 12, it->name, kText);
    fill_rect(img, lx - 16, py0 - 12, 12, 7, it->color);
    lx -= 28;
  }
}

}  // namespace

int text_width(const std::string& text, int scale) { return int(text.size()) * 6 * scale; }

int draw_text(Image& img, int x, int y, const std::string& text, Rgb color, int scale) {
  const auto& f = font();
  int cx = x;
  for (char ch : text) {
    const char key = (ch >= 'A' && ch <= 'Z') ? char(ch - 'A' + 'a') : ch;
    auto it = f.find(key);
    if (it != f.end())
      for (int r = 0; r < 7; ++r)
        for (int col = 0; col < 5; ++col)
          if (it->second[size_t(r)] & (0x10 >> col))
            fill_rect(img, cx + col * scale, y + r * scale, scale, scale, color);
    cx += 6 * scale;
  }
  return cx - x;
}

std::vector<double> nice_ticks(double lo, double hi, int target, double min_step) {
  LOOM_CHECK(std::isfinite(lo) && std::isfinite(hi) && hi > lo && target >= 1, "nice_ticks: bad range [", lo, ", ", hi,
             "]");
  const double raw = (hi - lo) / target, mag = std::pow(10.0, std::floor(std::log10(raw)));
  // The 1-2-5 step nearest to the raw step on a log scale: neither too crowded nor down to a single tick.
  double step = mag;
  for (double m : {2.0, 5.0, 10.0})
    if (std::abs(std::log(m * mag / raw)) < std::abs(std::log(step / raw))) step = m * mag;
  step = std::max(step, min_step);
  std::vector<double> t;
  const double first = std::ceil(lo / step - 1e-9);
  for (int i = 0; (first + i) * step <= hi + step * 1e-9 && i < 1000; ++i) t.push_back((first + i) * step);
  return t;
}

Image render_charts(const std::vector<Chart>& charts, int panel_w, int panel_h) {
  LOOM_CHECK(!charts.empty(), "render_charts: no charts");
  Image img(panel_w * int(charts.size()), panel_h);
  for (size_t i = 0; i < charts.size(); ++i) draw_panel(img, int(i) * panel_w, 0, panel_w, panel_h, charts[i]);
  return img;
}

}  // namespace loom::train
