// loom prune: an image (or regression) run to a pruned run folder that eval/predict/summary load like any run
// and `loom train --init` fine-tunes. Unstructured methods keep the shapes and store weight_orig + weight_mask
// (torch's names); structured pruning rebuilds the model narrower and records the widths (loom.widths).
#include <cstdio>
#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "loom/compress/prune.h"
#include "loom/compress/shrink.h"
#include "loom/core/generator.h"
#include "loom/nn/conv_layers.h"
#include "loom/nn/linear.h"
#include "loom/nn/repr.h"
#include "loom/quant/quantize_dynamic.h"
#include "loom/runtime/classifier_run.h"
#include "loom/train/checkpoint.h"
#include "model_file.h"

namespace loom::cli {

namespace fs = std::filesystem;
namespace prune = compress::prune;

namespace {

// Every Conv2d and Linear weight of the model, first layer first.
std::vector<prune::Target> weight_targets(nn::Sequential& model) {
  std::vector<prune::Target> t;
  for (const auto& [name, m] : model.named_children())
    if (dynamic_cast<nn::Conv2d*>(m.get()) || dynamic_cast<nn::Linear*>(m.get())) t.push_back({m.get(), "weight"});
  return t;
}

// The weights the model computes with (masks applied) and how many of them are zero.
std::pair<int64_t, int64_t> weight_zeros(nn::Sequential& model) {
  int64_t total = 0, zero = 0;
  for (const auto& [name, t] : prune::fold_masks(model.state_dict())) {
    if (!name.ends_with(".weight")) continue;
    total += t.numel();
    for (double v : t.tolist()) zero += v == 0;
  }
  return {total, zero};
}

}  // namespace

int cmd_prune(const Argv& argv) {
  std::string checkpoint, method, out;
  double amount = -1, norm = 2;
  int64_t seed = 0;
  Args a("loom prune",
         "Prune the Conv2d/Linear weights of an image or regression run (torch.nn.utils.prune's semantics) into a "
         "new run folder. l1, random: each layer loses --amount of its weights (smallest |w| / at random), kept as "
         "weight_orig + weight_mask; global: --amount of all weights together, smallest |w|; structured: each "
         "hidden layer loses --amount of its output channels (smallest L-norm) and the model is rebuilt narrower. "
         "Fine-tune with loom train --init OUT (masks stay fixed).");
  a.option("--checkpoint", &checkpoint, "DIR", "the run folder (or model file) to prune (required)");
  a.choice("--method", &method, {"l1", "random", "global", "structured"}, "how to choose what to prune (required)");
  a.option("--amount", &amount, "F", "the fraction to prune, in [0, 1] (required; rounded as torch rounds)",
           {.min = 0, .max = 1});
  a.option("--norm", &norm, "N", "structured: the norm that ranks channels (default 2; 1 for L1)", {.min = 0});
  a.option("--seed", &seed, "S", "random: the seed of the draws (default 0)", {.min = 0});
  a.option("--out", &out, "DIR", "the run folder to write (required; must differ from --checkpoint)");
  a.parse(argv);
  if (checkpoint.empty() || method.empty() || amount < 0 || out.empty())
    throw UsageError("--checkpoint DIR, --method l1|random|global|structured, --amount F and --out DIR are all "
                     "required");
  if (fs::exists(out) && fs::exists(checkpoint) && fs::equivalent(out, checkpoint))
    throw UsageError("--out must differ from --checkpoint");
  if (a.given("--norm") && method != "structured") throw UsageError("--norm applies to --method structured only");
  if (a.given("--seed") && method != "random") throw UsageError("--seed applies to --method random only");

  // Unstructured pruning composes with the masks a pruned run already holds; structured pruning narrows the
  // model the run computes with (its masks folded in).
  runtime::ClassifierRun r = runtime::load_classifier(checkpoint, "", /*keep_masks=*/method != "structured");
  if (!quant::int8_layers_in(r.model->state_dict()).empty())
    throw UsageError("--checkpoint " + checkpoint + ": an int8-quantized run is for inference only; prune the float run "
                     "it was quantized from (then quantize the pruned run)");
  std::shared_ptr<nn::Sequential> model = r.model;
  models::ModelSpec shape = r.shape;
  const int64_t params_before = model->num_parameters();
  const auto [weights_before, zeros_before] = weight_zeros(*model);
  if (method == "structured") {
    if (models::is_regression(r.name))
      throw UsageError("--method structured: " + r.name + " has no hidden layer to narrow; use l1, random or global");
    compress::Shrunk s = compress::shrink_channels(*model, {.amount = amount, .n = norm});
    shape.widths = s.widths;
    model = models::make_model(r.name, shape);  // what eval/predict rebuild from loom.widths
    model->load_state_dict(s.model->state_dict());
  } else {
    const std::vector<prune::Target> targets = weight_targets(*model);
    if (method == "global") {
      prune::global_unstructured(targets, amount);
    } else {
      Generator gen{uint64_t(seed)};
      for (const auto& t : targets) {
        if (method == "l1") prune::l1_unstructured(*t.module, t.name, amount);
        else prune::random_unstructured(*t.module, t.name, amount, &gen);
      }
    }
  }
  model->eval();

  DataOptions data{.spec = r.data_spec, .target = r.target, .image_size = r.image_size, .seed = r.seed};
  data.normalize = !r.mean.empty();
  data.norm = {r.mean, r.std};
  io::Metadata meta = model_metadata(r.name, shape, r.classes, data);
  nlohmann::ordered_json pruning = {{"method", method}, {"amount", amount}, {"source", checkpoint}};
  if (method == "structured") pruning["norm"] = norm, pruning["widths"] = shape.widths;
  meta["loom.pruning"] = pruning.dump();

  nlohmann::ordered_json cfg = derived_run_config(checkpoint, r.name);
  cfg["pruning"] = pruning;
  cfg["num_parameters"] = model->num_parameters();

  fs::create_directories(out);
  begin_run_folder(out);
  train::save_weights((fs::path(out) / "model.safetensors").string(), *model, meta);
  io::write_file_atomic((fs::path(out) / "config.json").string(), cfg.dump(2) + "\n");
  finish_run_folder(out);  // manifest, then encryption with --encrypt-key-file

  const auto [weights_after, zeros_after] = weight_zeros(*model);
  std::printf("pruned %s (%s, %s, amount %g) -> %s\n", checkpoint.c_str(), r.name.c_str(), method.c_str(), amount,
              out.c_str());
  std::printf("  parameters: %s -> %s\n", nn::group_digits(params_before).c_str(),
              nn::group_digits(model->num_parameters()).c_str());
  std::printf("  layer weights: %s (%.1f%% zero) -> %s (%.1f%% zero)\n", nn::group_digits(weights_before).c_str(),
              100.0 * double(zeros_before) / double(std::max<int64_t>(1, weights_before)),
              nn::group_digits(weights_after).c_str(),
              100.0 * double(zeros_after) / double(std::max<int64_t>(1, weights_after)));
  if (method == "structured") {
    std::string w;
    for (int64_t v : shape.widths) w += (w.empty() ? "" : ", ") + std::to_string(v);
    std::printf("  widths: %s\n", w.c_str());
  } else {
    std::printf("  masks kept (weight_orig + weight_mask): fine-tune with loom train --model %s --init %s ...\n",
                r.name.c_str(), out.c_str());
  }
  return 0;
}

}  // namespace loom::cli
