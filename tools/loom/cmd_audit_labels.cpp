// loom audit-labels: likely label errors in a dataset's training split by confident learning on K-fold
// out-of-sample probabilities (loom/dataquality). Writes issues.csv and prints the estimated noise matrix.
#include <chrono>
#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "data_quality_common.h"
#include "data_spec.h"
#include "loom/backend/backend.h"
#include "loom/core/generator.h"
#include "loom/dataquality/confident_learning.h"
#include "loom/dataquality/cross_val.h"
#include "loom/io/npy.h"
#include "loom/io/safetensors.h"
#include "loom/ops/ops.h"

namespace loom::cli {

int cmd_audit_labels(const Argv& argv) {
  std::string data_spec, model, checkpoint, out = "issues.csv", save_probs, probs_files, filter = "low_self_confidence";
  int64_t folds = 4, epochs = 5, batch = 64, seed = 0, threads = 0, train_samples = 0;
  double lr = 1e-3;
  bool json_out = false;
  Args a("loom audit-labels",
         "Find likely label errors: K models trained by cross-validation give every training sample a probability\n"
         "it never trained on; confident learning (cleanlab's prune_by_noise_rate) ranks the suspicious labels.");
  a.option("--data", &data_spec, "SPEC", "fashion-mnist (default), mnist:DIR, cifar10:DIR, imagefolder:DIR");
  a.choice("--model", &model, {"mlp", "lenet", "cnn"}, "the classifier to cross-validate (default mlp: 5 epochs x 4 folds of 60,000 images in ~1.5 min)");
  a.option("--checkpoint", &checkpoint, "DIR", "take --model (and --data) from a loom train run folder");
  a.option("--folds", &folds, "K", "cross-validation folds (default 4)", {.min = 2, .max = 100});
  a.option("--epochs", &epochs, "N", "training epochs per fold (default 5)", {.min = 1});
  a.option("--batch-size", &batch, "B", "samples per step (default 64)", {.min = 1, .max = 1 << 20});
  a.option("--lr", &lr, "X", "Adam learning rate (default 1e-3)", {.min = 0, .exclusive_min = true});
  a.option("--seed", &seed, "S", "seed for folds, initialisation and shuffling (default 0)", {.min = 0});
  a.option("--threads", &threads, "T", "compute threads (default: all cores)", {.min = 1, .max = 1024});
  a.option("--train-samples", &train_samples, "N", "audit only the first N training samples", {.min = 10});
  a.option("--out", &out, "FILE", "where the ranked issues go (default issues.csv; a summary goes beside it)");
  a.choice("--filter", &filter,
           {"prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "low_self_confidence",
            "low_normalized_margin"},
           "which examples are issues (cleanlab's filter_by; default low_self_confidence: the num_label_issues\n"
           "least self-confident, the most precise on 20% flipped Fashion-MNIST labels)");
  a.option("--probs", &probs_files, "FILE[,FILE...]",
           "skip the training: use these out-of-sample probabilities (N x K .npy, as --save-probs writes; several "
           "are averaged)");
  a.option("--save-probs", &save_probs, "FILE", "also write the out-of-sample probabilities (N x K f32 .npy)");
  a.flag("--json", &json_out, "print one JSON object per fold and a final one");
  a.parse(argv);
  if (!checkpoint.empty()) {
    const RunChoice rc = run_choice(checkpoint);
    if (model.empty()) model = rc.model;
    if (data_spec.empty()) data_spec = rc.data;
  }
  if (model.empty()) model = "mlp";
  if (data_spec.empty()) data_spec = "fashion-mnist";
  check_data_options({.spec = data_spec});
  check_classifier(model, data_spec);
  if (threads > 0) set_num_threads(int(threads));
  manual_seed(uint64_t(seed));
  const auto t0 = std::chrono::steady_clock::now();

  LoadedData d = load_data({.spec = data_spec, .seed = uint64_t(seed), .train_limit = train_samples, .test_limit = 1});
  const int64_t n = d.train->size();
  if (!json_out && probs_files.empty())
    std::cout << "auditing the labels of " << n << " training samples of " << data_spec << ": " << folds << "-fold "
              << model << ", " << epochs << " epoch(s) per fold, filter " << filter << "\n" << std::flush;
  else if (!json_out)
    std::cout << "auditing the labels of " << n << " training samples of " << data_spec << " from the probabilities in "
              << probs_files << ", filter " << filter << "\n" << std::flush;
  dataquality::CrossValOptions cv{
      .folds = folds,
      .seed = uint64_t(seed),
      .training = {.epochs = epochs, .batch_size = batch, .lr = lr, .seed = uint64_t(seed)},
      .on_fold = [&](int64_t f, int64_t k, double acc) {
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (json_out)
          std::cout << nlohmann::json{{"event", "fold"}, {"fold", f + 1}, {"folds", k}, {"held_out_accuracy", acc}, {"seconds", s}}.dump() << "\n";
        else
          std::printf("fold %lld/%lld: held-out accuracy against the given labels %.2f%% (%.0f s)\n", (long long)(f + 1),
                      (long long)k, 100 * acc, s);
        std::fflush(stdout);
      }};
  dataquality::CrossValProbs p;
  if (probs_files.empty()) {
    p = dataquality::cross_val_probs(d.train, classifier_factory(model, d.shape), cv);
  } else {
    std::vector<std::string> files;
    for (size_t s = 0, e; s <= probs_files.size(); s = e + 1) {
      e = std::min(probs_files.find(',', s), probs_files.size());
      if (e > s) files.push_back(probs_files.substr(s, e - s));
    }
    for (const std::string& f : files) {
      const Tensor t = io::read_npy(f);
      LOOM_CHECK(t.dim() == 2 && t.size(0) == n && t.size(1) >= 2, f, ": expected ", n, " x K probabilities, got shape ",
                 t.shape());
      LOOM_CHECK(p.num_classes == 0 || t.size(1) == p.num_classes, f, ": ", t.size(1), " classes, the first file has ",
                 p.num_classes);
      const std::vector<double> v = t.tolist();
      if (p.num_classes == 0) p.num_classes = t.size(1), p.probs.assign(v.size(), 0.0);
      for (size_t i = 0; i < v.size(); ++i) p.probs[i] += v[i] / double(files.size());
    }
    LOOM_CHECK(p.num_classes > 0, "--probs: no file named");
  }
  const std::vector<int64_t> labels = dataquality::dataset_labels(d.train);
  if (!save_probs.empty())
    io::write_npy(save_probs, tensor(p.probs, {n, p.num_classes}).to(DType::f32));
  const auto r = dataquality::find_label_issues(p.probs, labels, p.num_classes,
                                                {.filter = dataquality::parse_filter(filter)});
  dataquality::write_issues_csv(out, r.issues, d.classes);
  const std::string summary = dataquality::summary(r, d.classes, n);
  std::string base = out;
  if (base.ends_with(".csv")) base.resize(base.size() - 4);
  io::write_file_atomic(base + ".summary.txt", summary);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (json_out) {
    nlohmann::json j = {{"event", "done"}, {"samples", n}, {"issues", r.issues.size()}, {"seconds", secs},
                        {"out", out}, {"noise_matrix", r.noise_matrix}, {"thresholds", r.thresholds}};
    std::cout << j.dump() << "\n";
    return 0;
  }
  std::cout << "\n" << summary << "\nwrote " << r.issues.size() << " ranked issues to " << out << " and the summary to "
            << base << ".summary.txt (" << int64_t(secs) << " s in all)\n";
  return 0;
}

}  // namespace loom::cli
