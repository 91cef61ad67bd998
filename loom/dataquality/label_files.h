// Writing labels back in a dataset's own format: IDX (MNIST-style folders), a folder-per-class copy of an image
// folder, and labels.csv with each label's confidence and where it came from.
//   dataquality::write_idx("out/train-labels-idx1-ubyte", labels_u8);          // u8 (N) or (N, H, W)
//   dataquality::write_labels_csv("out/labels.csv", r.labels, r.confidence, r.source, classes);
//   dataquality::copy_image_folder("pets/train", "out/train", r.labels, classes);
#pragma once
#include <string>
#include <vector>

#include "loom/core/tensor.h"
#include "loom/dataquality/autolabel.h"

namespace loom::dataquality {

// An uncompressed IDX file of a u8 tensor (magic 0 0 8 ndim, big-endian dims), written atomically.
void write_idx(const std::string& path, const Tensor& u8);

// "index,label,class,confidence,source" (source: given, pseudo, predicted).
void write_labels_csv(const std::string& path, const std::vector<int64_t>& labels, const std::vector<double>& confidence,
                      const std::vector<LabelSource>& source, const std::vector<std::string>& classes);

// Copies the files of `samples` (path, old class) into out_root/<class name of labels[i]>/, keeping file names
// (a clash gets the sample index prefixed). Creates the class folders, all of them, even empty ones.
void copy_image_folder(const std::vector<std::pair<std::string, int64_t>>& samples, const std::string& out_root,
                       const std::vector<int64_t>& labels, const std::vector<std::string>& classes);

}  // namespace loom::dataquality
