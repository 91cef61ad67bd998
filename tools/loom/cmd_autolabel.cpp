// loom autolabel: pseudo-labelling rounds from a labelled part of a dataset's training split, the new labels
// written in the dataset's own format (an IDX folder, a folder-per-class copy, labels.csv) and a report.
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <numeric>

#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "data_quality_common.h"
#include "data_spec.h"
#include "loom/backend/backend.h"
#include "loom/core/generator.h"
#include "loom/data/image_folder.h"
#include "loom/data/mnist.h"
#include "loom/dataquality/autolabel.h"
#include "loom/dataquality/label_files.h"
#include "loom/io/safetensors.h"
#include "loom/ops/ops.h"

namespace loom::cli {

namespace {

namespace fs = std::filesystem;

std::string find_idx(const std::string& dir, const std::string& stem) {
  for (const std::string& s : {stem + "-ubyte", stem + "-ubyte.gz"})
    if (fs::exists(fs::path(dir) / s)) return (fs::path(dir) / s).string();
  std::string dotted = stem;  // "train-images.idx3-ubyte" spelling
  dotted[dotted.find('-', dotted.find('-') + 1)] = '.';
  for (const std::string& s : {dotted + "-ubyte", dotted + "-ubyte.gz"})
    if (fs::exists(fs::path(dir) / s)) return (fs::path(dir) / s).string();
  LOOM_CHECK(false, dir, ": no ", stem, "-ubyte[.gz] file");
  return "";
}

// Writes the labels where the dataset's own loader reads them; returns a sentence saying what was written.
std::string write_labels(const std::string& kind, const std::string& path, const std::string& out,
                         const dataquality::AutolabelResult& r, int64_t n) {
  const Tensor labels = tensor(r.labels, {int64_t(r.labels.size())}).to(DType::u8);
  if (kind == "fashion-mnist" || kind == "mnist") {
    // A complete folder: mnist:OUT trains on the new labels (the images are the first n of the original).
    const Tensor images = data::read_idx(find_idx(path, "train-images-idx3"));
    dataquality::write_idx((fs::path(out) / "train-images-idx3-ubyte").string(), images.slice(0, 0, n).contiguous());
    dataquality::write_idx((fs::path(out) / "train-labels-idx1-ubyte").string(), labels);
    for (const char* stem : {"t10k-images-idx3", "t10k-labels-idx1"}) {
      const std::string src = find_idx(path, stem);
      fs::copy_file(src, fs::path(out) / fs::path(src).filename(), fs::copy_options::overwrite_existing);
    }
    return "an IDX folder (use --data mnist:" + out + ")";
  }
  if (kind == "imagefolder") {
    LOOM_CHECK(fs::is_directory(fs::path(path) / "train"), path,
               ": autolabel writes folder copies for imagefolder data with a train/ sub-folder (found none)");
    data::ImageFolder f((fs::path(path) / "train").string());
    auto samples = f.samples();
    samples.resize(size_t(n));
    dataquality::copy_image_folder(samples, (fs::path(out) / "train").string(), r.labels, f.classes());
    for (const char* t : {"test", "val"})
      if (fs::is_directory(fs::path(path) / t))
        fs::copy(fs::path(path) / t, fs::path(out) / t, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    return "a folder per class (use --data imagefolder:" + out + ")";
  }
  return "labels.csv only (" + kind + " files are not rewritten)";
}

}  // namespace

int cmd_autolabel(const Argv& argv) {
  std::string data_spec = "fashion-mnist", model = "cnn", out;
  int64_t labelled_n = 0, rounds = 3, epochs = 1, min_steps = 600, batch = 64, seed = 0, threads = 0, train_samples = 0,
          test_samples = 0;
  double fraction = 0, threshold = 0.95, lr = 1e-3, labelled_share = 0.5;
  bool balanced = false, json_out = false;
  Args a("loom autolabel",
         "Label a dataset from a labelled part: train on it, pseudo-label the rest where the model is confident,\n"
         "retrain, repeat. The other samples' labels are hidden from training (used only to report accuracy).");
  a.option("--data", &data_spec, "SPEC", "fashion-mnist (default), mnist:DIR, cifar10:DIR, imagefolder:DIR");
  a.choice("--model", &model, {"mlp", "lenet", "cnn"}, "the classifier (default cnn)");
  a.option("--labelled", &labelled_n, "N", "how many training samples keep their labels (a seeded random choice)", {.min = 1});
  a.option("--labelled-fraction", &fraction, "F", "or: this fraction of them", {.min = 0, .max = 1, .exclusive_min = true});
  a.option("--threshold", &threshold, "P", "pseudo-label when the top probability reaches P (default 0.95)",
           {.min = 0, .max = 1, .exclusive_min = true});
  a.option("--rounds", &rounds, "R", "pseudo-labelling rounds (default 3)", {.min = 1, .max = 100});
  a.flag("--balanced", &balanced, "class-balanced: the same number of pseudo-labels per class (as many in all as are above the threshold)");
  a.option("--labelled-share", &labelled_share, "S",
           "repeat the labelled samples to at least this share of each round's training set (default 0.5; 0: never)",
           {.min = 0, .max = 0.95});
  a.option("--epochs", &epochs, "N", "training epochs per round (default 1)", {.min = 1});
  a.option("--min-steps", &min_steps, "N", "at least N optimizer steps per round (default 600)", {.min = 0});
  a.option("--batch-size", &batch, "B", "samples per step (default 64)", {.min = 1, .max = 1 << 20});
  a.option("--lr", &lr, "X", "Adam learning rate (default 1e-3)", {.min = 0, .exclusive_min = true});
  a.option("--seed", &seed, "S", "seed for the labelled choice, initialisation and shuffling (default 0)", {.min = 0});
  a.option("--threads", &threads, "T", "compute threads (default: all cores)", {.min = 1, .max = 1024});
  a.option("--train-samples", &train_samples, "N", "use only the first N training samples", {.min = 2});
  a.option("--test-samples", &test_samples, "N", "score each round on the first N test samples only", {.min = 1});
  a.option("--out", &out, "DIR", "where the labels and report go (required)");
  a.flag("--json", &json_out, "print one JSON object per round and a final one");
  a.parse(argv);
  if (out.empty()) throw UsageError("--out DIR is required");
  if (a.given("--labelled") == a.given("--labelled-fraction")) throw UsageError("give one of --labelled N or --labelled-fraction F");
  check_data_options({.spec = data_spec});
  check_classifier(model, data_spec);
  if (threads > 0) set_num_threads(int(threads));
  manual_seed(uint64_t(seed));
  const auto t0 = std::chrono::steady_clock::now();

  LoadedData d = load_data({.spec = data_spec, .seed = uint64_t(seed), .train_limit = train_samples,
                             .test_limit = test_samples});
  const int64_t n = d.train->size();
  if (fraction > 0) labelled_n = std::max<int64_t>(1, int64_t(std::llround(fraction * double(n))));
  LOOM_CHECK(labelled_n < n, "--labelled ", labelled_n, " leaves no unlabelled samples out of ", n);
  Generator g(uint64_t(seed) + 17);
  const std::vector<double> perm = randperm(n, {.dtype = DType::i64}, &g).tolist();
  std::vector<int64_t> labelled;
  for (int64_t i = 0; i < labelled_n; ++i) labelled.push_back(int64_t(perm[size_t(i)]));
  const std::vector<int64_t> truth = dataquality::dataset_labels(d.train);
  std::error_code ec;
  fs::create_directories(out, ec);
  LOOM_CHECK(!ec && fs::is_directory(out), out, ": cannot create the folder (", ec.message(), ")");
  if (!json_out)
    std::cout << "autolabel on " << data_spec << ": " << labelled_n << " labelled, " << n - labelled_n
              << " unlabelled; " << model << ", threshold " << threshold << ", " << rounds << " round(s)"
              << (balanced ? ", class-balanced" : "") << "\n" << std::flush;

  nlohmann::ordered_json report;
  report["data"] = data_spec;
  report["model"] = model;
  report["labelled"] = labelled_n;
  report["unlabelled"] = n - labelled_n;
  report["threshold"] = threshold;
  report["class_balanced"] = balanced;
  report["rounds"] = nlohmann::json::array();
  auto on_round = [&](const dataquality::AutolabelRound& r) {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    nlohmann::ordered_json j = {{"event", "round"}, {"round", r.round}, {"train_samples", r.train_samples},
                                {"pseudo_labelled", r.pseudo_labelled}, {"seconds", s}};
    j["pseudo_accuracy"] = std::isnan(r.pseudo_accuracy) ? nlohmann::json(nullptr) : nlohmann::json(r.pseudo_accuracy);
    j["test_accuracy"] = r.test_accuracy;
    report["rounds"].push_back(j);
    if (json_out) {
      std::cout << j.dump() << "\n" << std::flush;
      return;
    }
    if (r.round == 0)
      std::printf("round 0: trained on the %lld labelled samples: test accuracy %.2f%% (%.0f s)\n",
                  (long long)r.train_samples, 100 * r.test_accuracy, s);
    else
      std::printf("round %lld: + %lld pseudo-labels (%.2f%% correct): test accuracy %.2f%% (%.0f s)\n",
                  (long long)r.round, (long long)r.pseudo_labelled, 100 * r.pseudo_accuracy, 100 * r.test_accuracy, s);
    std::fflush(stdout);
  };
  const auto r = dataquality::autolabel(
      d.train, labelled, classifier_factory(model, d.shape),
      {.threshold = threshold, .rounds = rounds, .class_balanced = balanced, .labelled_share = labelled_share,
       .training = {.epochs = epochs, .min_steps = min_steps, .batch_size = batch, .lr = lr, .seed = uint64_t(seed)},
       .on_round = on_round},
      d.test, &truth);

  dataquality::write_labels_csv((fs::path(out) / "labels.csv").string(), r.labels, r.confidence, r.source, d.classes);
  const auto [kind, path] = split_spec(data_spec);
  const std::string what = write_labels(kind, path, out, r, n);
  int64_t pseudo = 0, right = 0, unl_right = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (r.source[size_t(i)] == dataquality::LabelSource::Given) continue;
    unl_right += r.labels[size_t(i)] == truth[size_t(i)];
    if (r.source[size_t(i)] == dataquality::LabelSource::Pseudo) ++pseudo, right += r.labels[size_t(i)] == truth[size_t(i)];
  }
  report["final_pseudo_labelled"] = pseudo;
  report["final_pseudo_accuracy"] = pseudo ? double(right) / double(pseudo) : 0.0;
  report["final_label_accuracy_unlabelled"] = double(unl_right) / double(n - labelled_n);
  report["test_accuracy_labelled_only"] = r.rounds.front().test_accuracy;
  report["test_accuracy_final"] = r.rounds.back().test_accuracy;
  report["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  io::write_file_atomic((fs::path(out) / "report.json").string(), report.dump(2) + "\n");
  if (json_out) {
    nlohmann::ordered_json j = report;
    j["event"] = "done";
    j.erase("rounds");
    std::cout << j.dump() << "\n";
    return 0;
  }
  std::printf("\ntest accuracy: %.2f%% from the labelled samples alone, %.2f%% after %lld round(s) (%+.2f points)\n",
              100 * r.rounds.front().test_accuracy, 100 * r.rounds.back().test_accuracy, (long long)rounds,
              100 * (r.rounds.back().test_accuracy - r.rounds.front().test_accuracy));
  std::printf("final labels: %lld pseudo-labels above %.2f (%.2f%% correct); all unlabelled samples %.2f%% correct\n",
              (long long)pseudo, threshold, pseudo ? 100.0 * double(right) / double(pseudo) : 0.0,
              100.0 * double(unl_right) / double(n - labelled_n));
  std::cout << "wrote " << out << "/labels.csv (with confidences), report.json and " << what << "\n";
  return 0;
}

}  // namespace loom::cli
