#include "loom/nn/norm_layers.h"

#include "loom/autograd/grad_mode.h"
#include "loom/nn/init.h"
#include "loom/nn/repr.h"
#include "loom/ops/creation.h"
#include "loom/ops/norm.h"

namespace loom::nn {

// ---- BatchNorm

BatchNorm::BatchNorm(const BatchNormOptions& o, const char* kind) : options(o) {
  LOOM_CHECK(o.num_features > 0, kind, ": .num_features must be positive, got ", o.num_features);
  LOOM_CHECK(!o.momentum || (*o.momentum >= 0.0 && *o.momentum <= 1.0), kind, ": momentum must be in [0, 1], got ",
             *o.momentum);
  const int64_t C = o.num_features;
  weight = register_parameter("weight", o.affine ? empty({C}) : Tensor());
  bias = register_parameter("bias", o.affine ? empty({C}) : Tensor());
  if (o.track_running_stats) {
    running_mean = register_buffer("running_mean", zeros({C}));
    running_var = register_buffer("running_var", ones({C}));
    num_batches_tracked = register_buffer("num_batches_tracked", scalar_tensor(0, DType::i64));
  } else {
    // Registered as absent so the names stay reserved, as PyTorch registers None.
    register_buffer("running_mean", Tensor());
    register_buffer("running_var", Tensor());
    register_buffer("num_batches_tracked", Tensor());
  }
  reset_parameters();
}

void BatchNorm::reset_running_stats() {
  if (!options.track_running_stats) return;
  NoGradGuard g;
  running_mean.zero_();
  running_var.fill_(1.0);
  num_batches_tracked.zero_();
}

void BatchNorm::reset_parameters() {
  reset_running_stats();
  if (!options.affine) return;
  init::ones_(weight);
  init::zeros_(bias);
}

Tensor BatchNorm::forward(const Tensor& x) {
  check_input(x);
  LOOM_CHECK(x.size(1) == options.num_features, repr(), ": expected input with ", options.num_features,
             " channels (dim 1), got shape ", x.shape());
  const bool update = is_training() && options.track_running_stats;
  double factor = options.momentum.value_or(0.0);
  int64_t batches = 0;
  if (update) {
    batches = num_batches_tracked.item<int64_t>() + 1;
    if (!options.momentum) factor = 1.0 / double(batches);  // cumulative moving average
  }
  // Without running stats (track_running_stats = false) eval mode normalises with the batch statistics too.
  const bool use_batch_stats = is_training() || !running_mean.defined();
  const bool pass_stats = !is_training() || options.track_running_stats;
  Tensor y = batch_norm(x, pass_stats ? running_mean : Tensor(), pass_stats ? running_var : Tensor(), weight, bias,
                        use_batch_stats, factor, options.eps);
  if (update) {
    NoGradGuard g;
    num_batches_tracked.fill_(double(batches));
  }
  return y;
}

std::string BatchNorm::extra_repr() const {
  return std::to_string(options.num_features) + ", eps=" + py_float(options.eps) +
         ", momentum=" + (options.momentum ? py_float(*options.momentum) : "None") +
         ", affine=" + py_bool(options.affine) + ", track_running_stats=" + py_bool(options.track_running_stats);
}

void BatchNorm1d::check_input(const Tensor& x) const {
  LOOM_CHECK(x.dim() == 2 || x.dim() == 3, repr(), ": expected 2D or 3D input (N, C) or (N, C, L), got shape ",
             x.shape());
}

void BatchNorm2d::check_input(const Tensor& x) const {
  LOOM_CHECK(x.dim() == 4, repr(), ": expected 4D input (N, C, H, W), got shape ", x.shape());
}

// ---- LayerNorm

LayerNorm::LayerNorm(const LayerNormOptions& o) : options(o) {
  LOOM_CHECK(!o.normalized_shape.empty(), "LayerNorm: .normalized_shape must be given (e.g. {768})");
  for (auto d : o.normalized_shape)
    LOOM_CHECK(d > 0, "LayerNorm: normalized_shape must be positive, got ", o.normalized_shape);
  weight = register_parameter("weight", o.elementwise_affine ? empty(o.normalized_shape) : Tensor());
  bias = register_parameter("bias", o.elementwise_affine ? empty(o.normalized_shape) : Tensor());
  reset_parameters();
}

void LayerNorm::reset_parameters() {
  if (!options.elementwise_affine) return;
  init::ones_(weight);
  init::zeros_(bias);
}

Tensor LayerNorm::forward(const Tensor& x) {
  const auto& ns = options.normalized_shape;
  bool ok = x.dim() >= int64_t(ns.size());
  for (size_t i = 0; ok && i < ns.size(); ++i) ok = x.size(x.dim() - int64_t(ns.size()) + int64_t(i)) == ns[i];
  LOOM_CHECK(ok, repr(), ": expected input whose last dims are ", ns, ", got shape ", x.shape());
  return layer_norm(x, ns, weight, bias, options.eps);
}

std::string LayerNorm::extra_repr() const {
  return py_tuple(options.normalized_shape) + ", eps=" + py_float(options.eps) +
         ", elementwise_affine=" + py_bool(options.elementwise_affine);
}

// ---- GroupNorm

GroupNorm::GroupNorm(const GroupNormOptions& o) : options(o) {
  LOOM_CHECK(o.num_groups > 0 && o.num_channels > 0 && o.num_channels % o.num_groups == 0,
             "GroupNorm: num_channels (", o.num_channels, ") must be a positive multiple of num_groups (", o.num_groups,
             ")");
  weight = register_parameter("weight", o.affine ? empty({o.num_channels}) : Tensor());
  bias = register_parameter("bias", o.affine ? empty({o.num_channels}) : Tensor());
  reset_parameters();
}

void GroupNorm::reset_parameters() {
  if (!options.affine) return;
  init::ones_(weight);
  init::zeros_(bias);
}

Tensor GroupNorm::forward(const Tensor& x) {
  LOOM_CHECK(x.dim() >= 2 && x.size(1) == options.num_channels, repr(), ": expected input (N, ", options.num_channels,
             ", *), got shape ", x.shape());
  return group_norm(x, options.num_groups, weight, bias, options.eps);
}

std::string GroupNorm::extra_repr() const {
  return std::to_string(options.num_groups) + ", " + std::to_string(options.num_channels) +
         ", eps=" + py_float(options.eps) + ", affine=" + py_bool(options.affine);
}

}  // namespace loom::nn
