// loom predict: the top classes for image files, or for images inside an IDX file (idx:FILE:INDEX).
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>
#include <numeric>

#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "loom/autograd/grad_mode.h"
#include "loom/backend/backend.h"
#include "loom/data/image_folder.h"
#include "loom/data/mnist.h"
#include "loom/data/transforms.h"
#include "loom/ops/ops.h"
#include "model_file.h"

namespace loom::cli {

namespace {

struct Input {
  std::string name;
  Tensor image;        // f32 (C, H, W) in [0, 1], the model's geometry
  int64_t truth = -1;  // known label (IDX inputs with a labels file beside them)
};

// Brings an f32 (C, H, W) image to the model's channels and size.
Tensor fit_to_model(Tensor x, const models::ModelSpec& s, const std::string& name) {
  if (x.size(0) != s.channels) {
    LOOM_CHECK(x.size(0) == 1, name, ": has ", x.size(0), " channels, the model takes ", s.channels);
    x = x.expand({s.channels, x.size(1), x.size(2)}).contiguous();
  }
  if (x.size(1) != s.height || x.size(2) != s.width) x = data::resize_bilinear(x, s.height, s.width);
  return x.contiguous();
}

// "idx:FILE:INDEX" -> image INDEX of the IDX file (its labels come from the matching labels file, if any).
Input from_idx(const std::string& arg, const models::ModelSpec& s, std::map<std::string, Tensor>& cache) {
  const size_t colon = arg.rfind(':');
  if (colon <= 4 || colon + 1 >= arg.size()) throw UsageError("'" + arg + "': expected idx:FILE:INDEX");
  const std::string file = arg.substr(4, colon - 4);
  const int64_t index = parse_int(arg.substr(colon + 1), "'" + arg + "' index");
  if (!cache.count(file)) cache[file] = data::read_idx(file);
  const Tensor& all = cache[file];
  LOOM_CHECK(all.dtype() == DType::u8 && (all.dim() == 3 || all.dim() == 4), file,
             ": expected u8 images (N, H, W) in the IDX file, got ", all.dtype(), " ", all.shape());
  LOOM_CHECK(index >= 0 && index < all.size(0), arg, ": index ", index, " is outside 0..", all.size(0) - 1);
  Tensor img = all.select(0, index).to(DType::f32) / 255.0;
  if (img.dim() == 2)
    img = img.unsqueeze(0);
  else
    img = img.permute({2, 0, 1});  // (H, W, C) -> (C, H, W)
  Input in{arg, fit_to_model(img, s, arg), -1};

  std::string labels = file;
  if (const size_t at = labels.find("images-idx3"); at != std::string::npos) {
    labels.replace(at, 11, "labels-idx1");
    if (std::filesystem::exists(labels)) {
      if (!cache.count(labels)) cache[labels] = data::read_idx(labels);
      const Tensor& l = cache[labels];
      if (l.dim() == 1 && l.size(0) == all.size(0)) in.truth = int64_t(l[index].item());
    }
  }
  return in;
}

Input from_file(const std::string& path, const models::ModelSpec& s) {
  Tensor img = data::read_image(path, int(s.channels == 1 ? 1 : 3));  // u8 (H, W, C)
  // The same steps as training on an image folder (data_spec.cpp): antialiased resize of the u8 image, then ToTensor.
  img = data::resize_image(img, s.height, s.width);
  return {path, fit_to_model(data::ToTensor()(img), s, path), -1};
}

}  // namespace

int cmd_predict(const Argv& argv) {
  std::string checkpoint, model_name;
  int64_t top = 5, threads = 0;
  bool json_out = false;
  std::vector<std::string> inputs;
  Args a("loom predict", "Classify images with a saved model: the top classes with their probabilities.");
  a.option("--checkpoint", &checkpoint, "PATH", "run folder or .safetensors file (required)");
  a.choice("--model", &model_name, models::model_names(), "architecture, for weights saved without loom metadata");
  a.option("--top", &top, "K", "how many classes to show (default 5)", {.min = 1, .max = 1000});
  a.option("--threads", &threads, "T", "compute threads (default: all cores)", {.min = 1, .max = 1024});
  a.flag("--json", &json_out, "print one JSON object per image");
  a.positionals(&inputs, "IMAGE", "PNG/JPEG/BMP files, or idx:FILE:INDEX for image INDEX of an IDX file", 1);
  a.parse(argv);
  if (checkpoint.empty()) throw UsageError("--checkpoint is required");
  if (threads > 0) set_num_threads(int(threads));

  LoadedModel lm = load_model(checkpoint, model_name);
  LOOM_CHECK(lm.nonfinite.empty(), lm.path, " holds ", lm.nonfinite,
             ": the model is broken (training diverged?) and cannot classify anything");
  LOOM_CHECK(!models::is_regression(lm.name), "predict classifies images; the ", lm.name,
             " model is a regression (use loom eval)");
  std::map<std::string, Tensor> cache;
  std::vector<Input> batch;
  for (const auto& s : inputs)
    batch.push_back(s.starts_with("idx:") ? from_idx(s, lm.shape, cache) : from_file(s, lm.shape));

  std::vector<Tensor> xs;
  for (const auto& in : batch) xs.push_back(apply_normalization(in.image, lm.data.norm));
  Tensor probs;
  {
    NoGradGuard g;
    probs = softmax((*lm.model)(stack(xs, 0)), 1).contiguous();
  }
  const int64_t nc = probs.size(1), k = std::min(top, nc);
  auto cls = [&](int64_t i) { return size_t(i) < lm.classes.size() ? lm.classes[size_t(i)] : std::to_string(i); };
  const std::vector<double> p = probs.tolist();
  for (size_t n = 0; n < batch.size(); ++n) {
    std::vector<int64_t> order(static_cast<size_t>(nc));
    std::iota(order.begin(), order.end(), 0);
    const double* row = p.data() + n * size_t(nc);
    std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return row[x] > row[y]; });
    if (json_out) {
      nlohmann::ordered_json j;
      j["event"] = "predict";
      j["input"] = batch[n].name;
      if (batch[n].truth >= 0) j["true"] = cls(batch[n].truth);
      j["top"] = nlohmann::json::array();
      for (int64_t r = 0; r < k; ++r)
        j["top"].push_back(
            {{"class", cls(order[size_t(r)])}, {"index", order[size_t(r)]}, {"probability", row[order[size_t(r)]]}});
      std::cout << j.dump() << "\n";
      continue;
    }
    std::cout << batch[n].name;
    if (batch[n].truth >= 0) std::cout << "  (true class: " << cls(batch[n].truth) << ")";
    std::cout << "\n";
    for (int64_t r = 0; r < k; ++r)
      std::printf("  %6.2f%%  %s\n", 100.0 * row[order[size_t(r)]], cls(order[size_t(r)]).c_str());
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace loom::cli
