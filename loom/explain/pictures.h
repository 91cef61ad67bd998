// Pictures for people: images from tensors, attribution heat maps over their input, labelled image grids and
// attention maps, drawn with loom's own PNG writer (train/png.h).
//   train::Image im = explain::heatmap_panel(img, attr_map, {.scale = 8});   // input | heat map | overlay
//   train::write_png("explain/0_saliency.png", im);
//   train::write_png("grid.png", explain::image_grid(images, captions, colors, 8, 8));
#pragma once
#include <string>
#include <vector>

#include "loom/core/tensor.h"
#include "loom/train/png.h"

namespace loom::explain {

// t in [0, 1] -> a perceptual blue-green-yellow-red ramp (dark blue is low, red is high).
train::Rgb heat_color(double t);
// One (C, H, W) image with values in [0, 1] (1 or 3 channels), each pixel a scale x scale block.
train::Image to_image(const Tensor& chw, int scale = 1);
// Draws `src` into `dst` with its top-left corner at (x, y).
void blit(train::Image& dst, const train::Image& src, int x, int y);

struct HeatmapOptions {
  int scale = 8;        // pixels per input pixel
  double alpha = 0.55;  // the heat map's weight in the overlay
  std::string title = {};  // drawn above the panels when not empty
};
// Three panels: the input, the map (scaled to its own [min, max], or [0, max|map|] for signed maps) and the map
// blended over a grey version of the input. map: (H, W), or (C, H, W) summed over channels.
train::Image heatmap_panel(const Tensor& image, const Tensor& map, const HeatmapOptions& o = {});
// The map reduced to (H, W) and scaled into [0, 1] as heatmap_panel shows it.
Tensor normalize_map(const Tensor& map);

// images (N, C, H, W) in [0, 1], a caption and a caption colour per image, laid out cols x rows (extra images
// are left out, missing ones leave blank cells). Each cell is the image scaled by `scale` with its caption under it.
train::Image image_grid(const Tensor& images, const std::vector<std::string>& captions,
                        const std::vector<train::Rgb>& colors, int cols, int rows, int scale = 2);

// Attention weights, layer by layer: each (heads, T, T); drawn as a layers x heads grid of T x T maps (row:
// query, column: key), each cell `cell` pixels wide.
train::Image attention_grid(const std::vector<Tensor>& layers, int cell = 160);

}  // namespace loom::explain
