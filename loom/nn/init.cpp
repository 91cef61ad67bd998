#include "loom/nn/init.h"

#include <cmath>

#include "loom/autograd/grad_mode.h"
#include "loom/nn/skip_init.h"
#include "loom/ops/creation.h"

namespace loom::nn::init {

namespace {

void check_float(const Tensor& t, const char* op) {
  LOOM_CHECK(t.defined(), "init.", op, ": the tensor is undefined");
  LOOM_CHECK(is_floating(t.dtype()), "init.", op, ": expected a floating point tensor, got ", t.dtype());
}

int64_t fan_for(const Tensor& t, const std::string& mode, const char* op) {
  LOOM_CHECK(mode == "fan_in" || mode == "fan_out", "init.", op, ": mode must be \"fan_in\" or \"fan_out\", got \"",
             mode, "\"");
  auto [in, out] = calculate_fan_in_and_fan_out(t);
  return mode == "fan_in" ? in : out;
}

}  // namespace

double calculate_gain(const std::string& nl, std::optional<double> param) {
  if (nl == "linear" || nl == "conv1d" || nl == "conv2d" || nl == "conv3d" || nl == "conv_transpose1d" ||
      nl == "conv_transpose2d" || nl == "conv_transpose3d" || nl == "sigmoid")
    return 1.0;
  if (nl == "tanh") return 5.0 / 3.0;
  if (nl == "relu") return std::sqrt(2.0);
  if (nl == "leaky_relu") {
    const double slope = param.value_or(0.01);
    return std::sqrt(2.0 / (1.0 + slope * slope));
  }
  if (nl == "selu") return 3.0 / 4.0;
  LOOM_FAIL("init.calculate_gain: unsupported nonlinearity \"", nl, "\"");
}

std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t) {
  LOOM_CHECK(t.defined() && t.dim() >= 2,
             "init: fan in and fan out can not be computed for a tensor with fewer than 2 dimensions, got shape ",
             t.defined() ? t.shape() : Shape{});
  int64_t receptive = 1;
  for (int64_t d = 2; d < t.dim(); ++d) receptive *= t.size(d);
  return {t.size(1) * receptive, t.size(0) * receptive};
}

Tensor uniform_(Tensor t, double a, double b, Generator* gen) {
  check_float(t, "uniform_");
  if (SkipInitGuard::active()) return t;  // weights about to be loaded (skip_init.h)
  NoGradGuard g;
  t.copy_(rand(t.shape(), {.dtype = t.dtype()}, gen) * (b - a) + a);
  return t;
}

Tensor normal_(Tensor t, double mean, double std, Generator* gen) {
  check_float(t, "normal_");
  if (SkipInitGuard::active()) return t;  // weights about to be loaded (skip_init.h)
  NoGradGuard g;
  t.copy_(randn(t.shape(), {.dtype = t.dtype()}, gen) * std + mean);
  return t;
}

Tensor constant_(Tensor t, double value) {
  LOOM_CHECK(t.defined(), "init.constant_: the tensor is undefined");
  NoGradGuard g;
  t.fill_(value);
  return t;
}

Tensor zeros_(Tensor t) { return constant_(t, 0.0); }
Tensor ones_(Tensor t) { return constant_(t, 1.0); }

Tensor xavier_uniform_(Tensor t, double gain, Generator* gen) {
  check_float(t, "xavier_uniform_");
  auto [in, out] = calculate_fan_in_and_fan_out(t);
  const double a = gain * std::sqrt(6.0 / double(in + out));
  return uniform_(t, -a, a, gen);
}

Tensor xavier_normal_(Tensor t, double gain, Generator* gen) {
  check_float(t, "xavier_normal_");
  auto [in, out] = calculate_fan_in_and_fan_out(t);
  return normal_(t, 0.0, gain * std::sqrt(2.0 / double(in + out)), gen);
}

Tensor kaiming_uniform_(Tensor t, double a, const std::string& mode, const std::string& nonlinearity, Generator* gen) {
  check_float(t, "kaiming_uniform_");
  if (t.numel() == 0) return t;  // PyTorch warns and leaves an empty tensor alone
  const int64_t fan = fan_for(t, mode, "kaiming_uniform_");
  const double bound = std::sqrt(3.0) * calculate_gain(nonlinearity, a) / std::sqrt(double(fan));
  return uniform_(t, -bound, bound, gen);
}

Tensor kaiming_normal_(Tensor t, double a, const std::string& mode, const std::string& nonlinearity, Generator* gen) {
  check_float(t, "kaiming_normal_");
  if (t.numel() == 0) return t;
  const int64_t fan = fan_for(t, mode, "kaiming_normal_");
  return normal_(t, 0.0, calculate_gain(nonlinearity, a) / std::sqrt(double(fan)), gen);
}

}  // namespace loom::nn::init
