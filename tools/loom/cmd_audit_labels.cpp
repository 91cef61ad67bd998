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
#include "loom/io/safetensors.h"

namespace loom::cli {

int cmd_audit_labels(const Argv& argv) {
  std::string data_spec, model, checkpoint, out = "issues.csv";
  int64_t folds = 5, epochs = 1, batch = 64, seed = 0, threads = 0, train_samples = 0;
  double lr = 1e-3;
  bool json_out = false;
  Args a("loom audit-labels",
         "Find likely label errors: K models trained by cross-validation give every training sample a probability\n"
         "it never trained on; confident learning (cleanlab's prune_by_noise_rate) ranks the suspicious labels.");
  a.option("--data", &data_spec, "SPEC", "fashion-mnist (default), mnist:DIR, cifar10:DIR, imagefolder:DIR");
  a.choice("--model", &model, {"mlp", "lenet", "cnn"}, "the classifier to cross-validate (default cnn)");
  a.option("--checkpoint", &checkpoint, "DIR", "take --model (and --data) from a loom train run folder");
  a.option("--folds", &folds, "K", "cross-validation folds (default 5)", {.min = 2, .max = 100});
  a.option("--epochs", &epochs, "N", "training epochs per fold (default 1)", {.min = 1});
  a.option("--batch-size", &batch, "B", "samples per step (default 64)", {.min = 1, .max = 1 << 20});
  a.option("--lr", &lr, "X", "Adam learning rate (default 1e-3)", {.min = 0, .exclusive_min = true});
  a.option("--seed", &seed, "S", "seed for folds, initialisation and shuffling (default 0)", {.min = 0});
  a.option("--threads", &threads, "T", "compute threads (default: all cores)", {.min = 1, .max = 1024});
  a.option("--train-samples", &train_samples, "N", "audit only the first N training samples", {.min = 10});
  a.option("--out", &out, "FILE", "where the ranked issues go (default issues.csv; a summary goes beside it)");
  a.flag("--json", &json_out, "print one JSON object per fold and a final one");
  a.parse(argv);
  if (!checkpoint.empty()) {
    const RunChoice rc = run_choice(checkpoint);
    if (model.empty()) model = rc.model;
    if (data_spec.empty()) data_spec = rc.data;
  }
  if (model.empty()) model = "cnn";
  if (data_spec.empty()) data_spec = "fashion-mnist";
  check_data_options({.spec = data_spec});
  check_classifier(model, data_spec);
  if (threads > 0) set_num_threads(int(threads));
  manual_seed(uint64_t(seed));
  const auto t0 = std::chrono::steady_clock::now();

  LoadedData d = load_data({.spec = data_spec, .seed = uint64_t(seed), .train_limit = train_samples, .test_limit = 1});
  const int64_t n = d.train->size();
  if (!json_out)
    std::cout << "auditing the labels of " << n << " training samples of " << data_spec << ": " << folds << "-fold "
              << model << ", " << epochs << " epoch(s) per fold\n" << std::flush;
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
  const dataquality::CrossValProbs p = dataquality::cross_val_probs(d.train, classifier_factory(model, d.shape), cv);
  const std::vector<int64_t> labels = dataquality::dataset_labels(d.train);
  const auto r = dataquality::find_label_issues(p.probs, labels, p.num_classes);
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
