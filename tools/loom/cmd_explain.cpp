// loom explain: attribution maps for an image classifier's decisions (saliency, integrated gradients,
// Grad-CAM, occlusion) as PNG heat-map panels beside the input plus .npy numbers; language-model runs go to
// cmd_explain_lm.cpp.
#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "data_quality_common.h"
#include "data_spec.h"
#include "loom/autograd/grad_mode.h"
#include "loom/backend/backend.h"
#include "loom/data/image_folder.h"
#include "loom/data/mnist.h"
#include "loom/data/transforms.h"
#include "loom/explain/attribution.h"
#include "loom/explain/pictures.h"
#include "loom/io/npy.h"
#include "loom/ops/ops.h"
#include "lm_common.h"
#include "model_file.h"

namespace loom::cli {

namespace {

namespace fs = std::filesystem;

struct Input {
  std::string name, stem;
  Tensor image;  // (C, H, W) in [0, 1] at the model's geometry
  int64_t truth = -1;
};

Tensor fit_to_model(Tensor x, const models::ModelSpec& s, const std::string& name) {
  if (x.size(0) != s.channels) {
    LOOM_CHECK(x.size(0) == 1, name, ": has ", x.size(0), " channels, the model takes ", s.channels);
    x = x.expand({s.channels, x.size(1), x.size(2)}).contiguous();
  }
  if (x.size(1) != s.height || x.size(2) != s.width) x = data::resize_bilinear(x, s.height, s.width);
  return x.contiguous();
}

// An image file, idx:FILE:INDEX, or test:INDEX (a sample of the test split of the model's own data).
Input read_input(const std::string& arg, const LoadedModel& lm, std::optional<LoadedData>& test) {
  if (arg.starts_with("test:")) {
    const int64_t i = parse_int(arg.substr(5), "'" + arg + "' index");
    if (!test) {
      LOOM_CHECK(!lm.data.spec.empty(), arg, ": the model does not record its training data");
      DataOptions d = lm.data;
      d.load_train = false, d.normalize = false, d.norm = {};
      test = load_data(d);
    }
    LOOM_CHECK(i >= 0 && i < test->test->size(), arg, ": index outside 0..", test->test->size() - 1);
    const data::Example e = test->test->get(i);
    return {arg, "test" + std::to_string(i), fit_to_model(e.data, lm.shape, arg), int64_t(e.target.item())};
  }
  if (arg.starts_with("idx:")) {
    const size_t colon = arg.rfind(':');
    if (colon <= 4 || colon + 1 >= arg.size()) throw UsageError("'" + arg + "': expected idx:FILE:INDEX");
    const std::string file = arg.substr(4, colon - 4);
    const int64_t i = parse_int(arg.substr(colon + 1), "'" + arg + "' index");
    const Tensor all = data::read_idx(file);
    LOOM_CHECK(all.dtype() == DType::u8 && all.dim() == 3, file, ": expected u8 images (N, H, W), got ", all.shape());
    LOOM_CHECK(i >= 0 && i < all.size(0), arg, ": index ", i, " is outside 0..", all.size(0) - 1);
    const Tensor img = (all.select(0, i).to(DType::f32) / 255.0).unsqueeze(0);
    return {arg, "idx" + std::to_string(i), fit_to_model(img, lm.shape, arg), -1};
  }
  const Tensor img = data::read_image(arg, int(lm.shape.channels == 1 ? 1 : 3));
  return {arg, fs::path(arg).stem().string(), fit_to_model(data::ToTensor()(img), lm.shape, arg), -1};
}

}  // namespace

int cmd_explain(const Argv& argv) {
  for (size_t i = 0; i + 1 < argv.size(); ++i)
    if (argv[i] == "--checkpoint" && is_lm_folder(argv[i + 1])) return cmd_explain_lm(argv);
  std::string checkpoint, method = "saliency", out = "explain", baseline = "zeros", rule = "gauss-legendre", target_s;
  int64_t steps = 64, window = 4, stride = 2, layer = -1, scale = 8, threads = 0;
  double sigma = 5.0;
  bool json_out = false;
  std::vector<std::string> inputs;
  Args a("loom explain", "Which pixels a classifier's decision rests on: a heat map beside each input (PNG) and the\n"
                         "attribution numbers (.npy) in --out.");
  a.option("--checkpoint", &checkpoint, "PATH", "run folder or model file (required)");
  a.choice("--method", &method, {"saliency", "integrated-gradients", "gradcam", "occlusion"},
           "attribution method (default saliency)");
  a.option("--target", &target_s, "CLASS", "class to explain, by index or name (default: the predicted class)");
  a.choice("--baseline", &baseline, {"zeros", "blur", "mean"}, "integrated gradients: the baseline image (default zeros)");
  a.option("--blur-sigma", &sigma, "S", "blur baseline: Gaussian sigma in pixels (default 5)", {.min = 0, .exclusive_min = true});
  a.option("--steps", &steps, "N", "integrated gradients: path points (default 64)", {.min = 1, .max = 100000});
  a.choice("--rule", &rule, {"riemann-left", "riemann-right", "riemann-middle", "riemann-trapezoid", "gauss-legendre"},
           "integrated gradients: how the path integral is summed (default gauss-legendre)");
  a.option("--layer", &layer, "I", "gradcam: index of the layer in the model (default: the last Conv2d)", {.min = 0});
  a.option("--window", &window, "W", "occlusion: square patch size in pixels (default 4)", {.min = 1});
  a.option("--stride", &stride, "S", "occlusion: patch step (default 2)", {.min = 1});
  a.option("--scale", &scale, "K", "pixels per input pixel in the PNG (default 8)", {.min = 1, .max = 32});
  a.option("--threads", &threads, "T", "compute threads (default: all cores)", {.min = 1, .max = 1024});
  a.option("--out", &out, "DIR", "output folder (default explain)");
  a.flag("--json", &json_out, "print one JSON object per input");
  a.positionals(&inputs, "INPUT", "image files, idx:FILE:INDEX, or test:INDEX (the model's own test split)", 1);
  a.parse(argv);
  if (checkpoint.empty()) throw UsageError("--checkpoint is required");
  if (threads > 0) set_num_threads(int(threads));

  LoadedModel lm = load_model(checkpoint, "");
  LOOM_CHECK(!models::is_regression(lm.name), "explain works on classifiers; the ", lm.name, " model is a regression");
  auto cls = [&](int64_t i) { return size_t(i) < lm.classes.size() ? lm.classes[size_t(i)] : std::to_string(i); };
  int64_t fixed_target = -1;
  if (!target_s.empty()) {
    for (size_t i = 0; i < lm.classes.size(); ++i)
      if (lm.classes[i] == target_s) fixed_target = int64_t(i);
    if (fixed_target < 0) fixed_target = parse_int(target_s, "--target");
    if (fixed_target < 0 || fixed_target >= lm.shape.num_classes)
      throw UsageError("--target " + target_s + ": the model has classes 0.." + std::to_string(lm.shape.num_classes - 1));
  }
  std::error_code ec;
  fs::create_directories(out, ec);
  LOOM_CHECK(!ec && fs::is_directory(out), out, ": cannot create the folder (", ec.message(), ")");
  std::optional<LoadedData> test;
  for (const auto& arg : inputs) {
    const Input in = read_input(arg, lm, test);
    const Tensor x = apply_normalization(in.image, lm.data.norm).contiguous();
    Tensor probs;
    {
      NoGradGuard g;
      lm.model->eval();
      probs = softmax((*lm.model)(x.unsqueeze(0)), 1).squeeze(0);
    }
    const int64_t pred = int64_t(probs.argmax(0).item()), target = fixed_target >= 0 ? fixed_target : pred;
    Tensor map;  // what the PNG shows: (H, W) or (C, H, W)
    Tensor numbers;
    nlohmann::ordered_json j = {{"event", "explain"}, {"input", in.name}, {"method", method},
                                {"predicted", cls(pred)}, {"probability", probs[pred].item()}, {"target", cls(target)}};
    if (in.truth >= 0) j["true"] = cls(in.truth);
    std::string extra;
    if (method == "saliency") {
      numbers = explain::saliency(*lm.model, x, target);
      map = numbers.max(0).first;
    } else if (method == "integrated-gradients") {
      // The baseline is built from the displayed image ([0, 1]) and normalised like the input.
      const Tensor b = apply_normalization(explain::make_baseline(in.image, explain::parse_baseline(baseline), sigma), lm.data.norm);
      const auto ig = explain::integrated_gradients(*lm.model, x, target, b.contiguous(),
                                                    {.steps = steps, .rule = explain::parse_quadrature(rule)});
      numbers = ig.attributions, map = ig.attributions.sum({0});
      j["baseline"] = baseline, j["steps"] = steps, j["rule"] = rule;
      j["score"] = ig.score, j["baseline_score"] = ig.baseline_score, j["attribution_sum"] = ig.sum;
      j["completeness_error"] = ig.completeness_error, j["relative_error"] = ig.relative_error;
      char buf[200];
      std::snprintf(buf, sizeof buf, "\n  F(x) %.4f, F(baseline) %.4f, sum of attributions %.4f: completeness error %.3g (%.3f%%)",
                    ig.score, ig.baseline_score, ig.sum, ig.completeness_error, 100 * ig.relative_error);
      extra = buf;
    } else if (method == "gradcam") {
      numbers = explain::grad_cam(*lm.model, x, target, layer);
      map = numbers;
    } else {
      numbers = explain::occlusion(*lm.model, x, target, {.window = window, .stride = stride});
      map = numbers;
    }
    const std::string base = (fs::path(out) / (in.stem + "_" + method)).string();
    const std::string title = method + ": " + cls(target) + (target == pred ? " (predicted)" : "");
    train::write_png(base + ".png", explain::heatmap_panel(in.image, map, {.scale = int(scale), .title = title}));
    io::write_npy(base + ".npy", numbers.to(DType::f32).contiguous());
    j["png"] = base + ".png", j["npy"] = base + ".npy";
    if (json_out) {
      std::cout << j.dump() << "\n";
      continue;
    }
    std::printf("%s: predicted %s (%.1f%%)%s; %s for %s%s\n  wrote %s.png and %s.npy\n", in.name.c_str(),
                cls(pred).c_str(), 100 * probs[pred].item(),
                in.truth >= 0 ? (", true " + cls(in.truth)).c_str() : "", method.c_str(), cls(target).c_str(),
                extra.c_str(), base.c_str(), base.c_str());
  }
  return 0;
}

}  // namespace loom::cli
