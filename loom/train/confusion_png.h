// confusion.png: a confusion matrix drawn as a colour-coded table (rows: true class, columns: predicted),
// with counts in the cells and class names on the axes; written into each classifier run folder.
//   train::ConfusionMatrix cm(10);  ...  train::write_confusion_png("runs/cnn/confusion.png", cm, classes);
#pragma once
#include <string>
#include <vector>

#include "loom/data/dataloader.h"
#include "loom/nn/module.h"
#include "loom/train/metrics.h"
#include "loom/train/png.h"

namespace loom::train {

// counts: K x K row-major [true][predicted]. Cells are shaded by their share of the row (recall per class):
// the diagonal dark blue when the class is recognised, off-diagonal cells orange-red by how often it is
// confused.
Image render_confusion_matrix(const std::vector<int64_t>& counts, int64_t k, const std::vector<std::string>& classes);
void write_confusion_png(const std::string& path, const ConfusionMatrix& cm, const std::vector<std::string>& classes);

// Evaluates `model` on `loader` (eval mode, no gradients) and writes its confusion matrix: what loom train
// leaves in a classifier's run folder.
void write_confusion_png(const std::string& path, nn::Module& model, data::DataLoader& loader,
                         const std::vector<std::string>& classes, int64_t num_classes);

inline constexpr const char* kConfusionFile = "confusion.png";

}  // namespace loom::train
