// Normalisation layers, like torch.nn.BatchNorm1d/2d, LayerNorm and GroupNorm (functional forms in
// loom/ops/norm.h).
//   nn::BatchNorm2d bn({.num_features = 64});                     // running stats, affine
//   nn::LayerNorm ln({.normalized_shape = {768}, .eps = 1e-5});
//   nn::GroupNorm gn({.num_groups = 8, .num_channels = 64});
// BatchNorm's state dict holds weight, bias, running_mean, running_var and num_batches_tracked (int64),
// as PyTorch's does.
#pragma once
#include <optional>

#include "loom/nn/module.h"

namespace loom::nn {

struct BatchNormOptions {
  int64_t num_features = 0;
  double eps = 1e-5;
  // Running stats: r = (1 - momentum) * r + momentum * batch_stat. std::nullopt gives the cumulative average
  // (momentum 1 / num_batches_tracked), as momentum=None does in PyTorch.
  std::optional<double> momentum = 0.1;
  bool affine = true;               // learnable weight (ones) and bias (zeros)
  bool track_running_stats = true;  // false: batch statistics in eval mode too, and no buffers
};

// Training mode normalises with the batch statistics (biased variance) and updates the running ones (unbiased
// variance); eval mode uses the running ones.
class BatchNorm : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  void reset_running_stats();
  void reset_parameters();

  BatchNormOptions options;
  Tensor weight, bias;                 // (C) when affine
  Tensor running_mean, running_var;    // (C) when track_running_stats
  Tensor num_batches_tracked;          // int64 scalar when track_running_stats

 protected:
  BatchNorm(const BatchNormOptions& o, const char* kind);
  // Throws naming the layer unless x has a shape this kind accepts.
  virtual void check_input(const Tensor& x) const = 0;
};

// Input (N, C) or (N, C, L).
class BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(const BatchNormOptions& o) : BatchNorm(o, "BatchNorm1d") {}

 protected:
  void check_input(const Tensor& x) const override;
};

// Input (N, C, H, W).
class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(const BatchNormOptions& o) : BatchNorm(o, "BatchNorm2d") {}

 protected:
  void check_input(const Tensor& x) const override;
};

struct LayerNormOptions {
  Shape normalized_shape = {};  // the trailing dims to normalise over
  double eps = 1e-5;
  bool elementwise_affine = true;
};

class LayerNorm : public Module {
 public:
  explicit LayerNorm(const LayerNormOptions& o);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  void reset_parameters();

  LayerNormOptions options;
  Tensor weight, bias;  // normalized_shape, when elementwise_affine
};

struct GroupNormOptions {
  int64_t num_groups = 0;
  int64_t num_channels = 0;
  double eps = 1e-5;
  bool affine = true;
};

// Input (N, C, *).
class GroupNorm : public Module {
 public:
  explicit GroupNorm(const GroupNormOptions& o);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  void reset_parameters();

  GroupNormOptions options;
  Tensor weight, bias;  // (C), when affine
};

}  // namespace loom::nn
