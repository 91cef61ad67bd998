// Parameter initialisation, like torch.nn.init: each fills a tensor in place (without recording autograd)
// and returns it, using PyTorch's formulas so a loom model starts from the same distribution.
//   nn::init::kaiming_normal_(conv.weight, 0.0, "fan_out", "relu");
//   nn::init::xavier_uniform_(fc.weight, nn::init::calculate_gain("tanh"));
//   nn::init::zeros_(fc.bias);
// Random fills draw from `gen` when given, else from the global generator (loom::manual_seed).
#pragma once
#include <optional>
#include <string>
#include <utility>

#include "loom/core/generator.h"
#include "loom/core/tensor.h"

namespace loom::nn::init {

// The recommended gain for a nonlinearity: "linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d/2d/3d",
// "sigmoid" -> 1; "tanh" -> 5/3; "relu" -> sqrt(2); "leaky_relu" -> sqrt(2 / (1 + slope^2)) with slope
// `param` (0.01 when absent); "selu" -> 3/4.
double calculate_gain(const std::string& nonlinearity, std::optional<double> param = std::nullopt);
// (fan_in, fan_out) of a weight: dims 1 and 0 times the receptive field (the product of dims 2..).
std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t);

Tensor uniform_(Tensor t, double a = 0.0, double b = 1.0, Generator* gen = nullptr);
Tensor normal_(Tensor t, double mean = 0.0, double std = 1.0, Generator* gen = nullptr);
Tensor constant_(Tensor t, double value);
Tensor zeros_(Tensor t);
Tensor ones_(Tensor t);
// U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)).
Tensor xavier_uniform_(Tensor t, double gain = 1.0, Generator* gen = nullptr);
// N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out)).
Tensor xavier_normal_(Tensor t, double gain = 1.0, Generator* gen = nullptr);
// U(-bound, bound) with bound = gain * sqrt(3 / fan), gain = calculate_gain(nonlinearity, a); mode is
// "fan_in" (keeps forward variance) or "fan_out" (keeps backward variance).
Tensor kaiming_uniform_(Tensor t, double a = 0.0, const std::string& mode = "fan_in",
                        const std::string& nonlinearity = "leaky_relu", Generator* gen = nullptr);
// N(0, std^2) with std = gain / sqrt(fan).
Tensor kaiming_normal_(Tensor t, double a = 0.0, const std::string& mode = "fan_in",
                       const std::string& nonlinearity = "leaky_relu", Generator* gen = nullptr);

}  // namespace loom::nn::init
