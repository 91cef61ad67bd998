// loom autolabel: labels for a dataset's training split from a labelled part of it, by pseudo-labelling rounds
// (--method rounds) or consistency training (--method fixmatch); the new labels written in the dataset's own
// format (an IDX folder, a folder-per-class copy, labels.csv) and a report.
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
#include "loom/dataquality/fixmatch.h"
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
                         const std::vector<int64_t>& new_labels, int64_t n) {
  const Tensor labels = tensor(new_labels, {int64_t(new_labels.size())}).to(DType::u8);
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
    dataquality::copy_image_folder(samples, (fs::path(out) / "train").string(), new_labels, f.classes());
    for (const char* t : {"test", "val"})
      if (fs::is_directory(fs::path(path) / t))
        fs::copy(fs::path(path) / t, fs::path(out) / t, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    return "a folder per class (use --data imagefolder:" + out + ")";
  }
  return "labels.csv only (" + kind + " files are not rewritten)";
}

// What a black pixel becomes after the loader's normalisation (the fill of shifted-in pixels).
std::vector<double> black_value(const Normalization& n) {
  std::vector<double> v;
  for (size_t c = 0; c < n.mean.size(); ++c) v.push_back(-n.mean[c] / n.std[c]);
  return v;
}

// The final labels' quality against the hidden ones: pseudo-labels (above the threshold) and how many of them
// are right, and how many of all unlabelled samples' labels are right.
struct LabelSummary {
  int64_t pseudo = 0, pseudo_right = 0, unlabelled = 0, unlabelled_right = 0;
};
LabelSummary summarise(const std::vector<int64_t>& labels, const std::vector<dataquality::LabelSource>& source,
                       const std::vector<int64_t>& truth) {
  LabelSummary s;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (source[i] == dataquality::LabelSource::Given) continue;
    ++s.unlabelled, s.unlabelled_right += labels[i] == truth[i];
    if (source[i] == dataquality::LabelSource::Pseudo) ++s.pseudo, s.pseudo_right += labels[i] == truth[i];
  }
  return s;
}

std::string percent(double v) {
  if (std::isnan(v)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.2f%%", 100 * v);
  return b;
}

nlohmann::json number_or_null(double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); }

}  // namespace

int cmd_autolabel(const Argv& argv) {
  std::string data_spec = "fashion-mnist", model = "cnn", out, method = "fixmatch";
  int64_t labelled_n = 0, rounds = 3, epochs = 1, min_steps = 600, batch = 64, seed = 0, threads = 0, train_samples = 0,
          test_samples = 0, steps = 5000, mu = 7, report_every = 500, strong_ops = 2;
  double fraction = 0, threshold = 0.95, lr = 1e-3, labelled_share = 0.5, lambda_u = 1, ema = 0.999, cutout = 0.5;
  int64_t shift = 0;
  bool balanced = false, json_out = false, hflip = false, average = false, no_hflip = false, align = false, cosine = false;
  Args a("loom autolabel",
         "Label a dataset from a labelled part; the other samples' labels are hidden from training (used only to\n"
         "report accuracy). --method rounds: train on the labelled part, pseudo-label the rest where the model is\n"
         "confident, retrain, repeat. --method fixmatch: consistency training, every step a labelled batch and mu\n"
         "times as many unlabelled images, each confident prediction on a weak view (flip, shift) the target of a\n"
         "strong view (RandAugment-like operations, cutout); a labelled-only baseline with the same recipe first.");
  a.option("--data", &data_spec, "SPEC", "fashion-mnist (default), mnist:DIR, cifar10:DIR, imagefolder:DIR");
  a.choice("--model", &model, {"mlp", "lenet", "cnn"}, "the classifier (default cnn)");
  a.choice("--method", &method, {"rounds", "fixmatch"}, "fixmatch (default: consistency training, measured the better) or rounds");
  a.option("--labelled", &labelled_n, "N", "how many training samples keep their labels (a seeded random choice)", {.min = 1});
  a.option("--labelled-fraction", &fraction, "F", "or: this fraction of them", {.min = 0, .max = 1, .exclusive_min = true});
  a.option("--threshold", &threshold, "P", "pseudo-label when the top probability reaches P (default 0.95)",
           {.min = 0, .max = 1, .exclusive_min = true});
  a.option("--rounds", &rounds, "R", "rounds: pseudo-labelling rounds (default 3)", {.min = 1, .max = 100});
  a.flag("--balanced", &balanced, "rounds: the same number of pseudo-labels per class (as many in all as are above the threshold)");
  a.flag("--average-rounds", &average, "rounds: pseudo-label from the mean probabilities of all rounds' models so far");
  a.option("--labelled-share", &labelled_share, "S",
           "rounds: repeat the labelled samples to at least this share of each round's training set (default 0.5; 0: never)",
           {.min = 0, .max = 0.95});
  a.option("--epochs", &epochs, "N", "rounds: training epochs per round (default 1)", {.min = 1});
  a.option("--min-steps", &min_steps, "N", "rounds: at least N optimizer steps per round (default 600)", {.min = 0});
  a.option("--steps", &steps, "N", "fixmatch: optimizer steps (default 5000; the baseline trains as many)", {.min = 1});
  a.option("--mu", &mu, "M", "fixmatch: unlabelled images per step = M x the batch size (default 7)", {.min = 1, .max = 64});
  a.option("--lambda-u", &lambda_u, "W", "fixmatch: weight of the unlabelled loss (default 1)", {.min = 0});
  a.option("--ema", &ema, "D", "fixmatch: decay of the weights' moving average that is evaluated (default 0.999; 0: none)",
           {.min = 0, .max = 0.99999});
  a.option("--report-every", &report_every, "K", "fixmatch: report pseudo-labels and test accuracy every K steps (default 500)",
           {.min = 1});
  a.option("--strong-ops", &strong_ops, "N", "fixmatch: random operations per strong view (default 2)", {.min = 0, .max = 10});
  a.option("--cutout", &cutout, "F", "fixmatch: cut-out square side as a fraction of the image (default 0.5; 0: none)",
           {.min = 0, .max = 1});
  a.flag("--align", &align, "fixmatch: distribution alignment (weak-view probabilities scaled by the labelled class shares"
         " over the model's running mean prediction)");
  a.flag("--cosine", &cosine, "fixmatch: cosine learning-rate decay to 0.2 x --lr over the steps (baseline too)");
  a.option("--shift", &shift, "N", "augment: shift each training image by up to N pixels (default 0; fixmatch 2)", {.min = 0, .max = 64});
  a.flag("--hflip", &hflip, "augment: mirror training images left-right at random (fixmatch: always on unless --no-hflip)");
  a.flag("--no-hflip", &no_hflip, "fixmatch: no mirroring in the weak augmentation");
  a.option("--batch-size", &batch, "B", "samples per step (default 64; fixmatch: labelled ones, default 32)", {.min = 1, .max = 1 << 20});
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
  const bool fm = method == "fixmatch";
  for (const char* o : {"--rounds", "--balanced", "--average-rounds", "--labelled-share", "--epochs", "--min-steps"})
    if (fm && a.given(o)) throw UsageError(std::string(o) + " is an option of --method rounds, not fixmatch");
  for (const char* o : {"--steps", "--mu", "--lambda-u", "--ema", "--report-every", "--strong-ops", "--cutout", "--no-hflip", "--align", "--cosine"})
    if (!fm && a.given(o)) throw UsageError(std::string(o) + " is an option of --method fixmatch (add --method fixmatch)");
  if (fm && hflip && no_hflip) throw UsageError("give --hflip or --no-hflip, not both");
  if (fm && !a.given("--shift")) shift = 2;
  if (fm && !a.given("--batch-size")) batch = 32;
  if (fm) hflip = !no_hflip;
  check_data_options({.spec = data_spec});
  check_classifier(model, data_spec);
  if (threads > 0) set_num_threads(int(threads));
  manual_seed(uint64_t(seed));
  const auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };

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
  if (!json_out) {
    std::cout << "autolabel on " << data_spec << ": " << labelled_n << " labelled, " << n - labelled_n
              << " unlabelled; " << model << ", threshold " << threshold << ", ";
    if (fm)
      std::cout << "fixmatch: " << steps << " steps of " << batch << " labelled + " << mu * batch << " unlabelled, shift "
                << shift << (hflip ? " + flip" : "") << ", EMA " << ema
                << (align ? ", distribution alignment" : "") << "\n" << std::flush;
    else
      std::cout << rounds << " round(s)" << (balanced ? ", class-balanced" : "") << "\n" << std::flush;
  }

  nlohmann::ordered_json report;
  report["data"] = data_spec;
  report["model"] = model;
  report["method"] = method;
  report["labelled"] = labelled_n;
  report["unlabelled"] = n - labelled_n;
  report["threshold"] = threshold;
  report["seed"] = seed;
  report["rounds"] = nlohmann::json::array();
  std::vector<int64_t> labels;
  std::vector<double> confidence;
  std::vector<dataquality::LabelSource> source;
  double acc_labelled_only = NAN, acc_final = NAN;
  if (fm) {
    report["steps"] = steps, report["batch_size"] = batch, report["mu"] = mu, report["lambda_u"] = lambda_u;
    report["ema_decay"] = ema, report["weak_shift"] = shift, report["weak_hflip"] = hflip;
    report["strong_ops"] = strong_ops, report["cutout"] = cutout, report["lr"] = lr;
    report["distribution_alignment"] = align, report["cosine_lr"] = cosine;
    auto on_round = [&](const dataquality::FixMatchRound& r) {
      nlohmann::ordered_json j = {{"event", "round"}, {"run", r.baseline ? "baseline" : "fixmatch"}, {"step", r.step},
                                  {"labelled_loss", r.labelled_loss}, {"seconds", seconds()}};
      if (!r.baseline) {
        j["unlabelled_seen"] = r.unlabelled_seen, j["pseudo_labelled"] = r.above_threshold;
        j["coverage"] = r.coverage(), j["pseudo_accuracy"] = number_or_null(r.pseudo_accuracy);
        j["unlabelled_loss"] = r.unlabelled_loss;
      }
      j["test_accuracy"] = number_or_null(r.test_accuracy);
      report["rounds"].push_back(j);
      if (json_out) {
        std::cout << j.dump() << "\n" << std::flush;
        return;
      }
      if (r.baseline)
        std::printf("baseline step %lld: loss %.4f, test accuracy %.2f%% (%.0f s)\n", (long long)r.step,
                    r.labelled_loss, 100 * r.test_accuracy, seconds());
      else
        std::printf("fixmatch step %lld: pseudo-labels for %.1f%% of the unlabelled images (%s correct), loss %.4f + "
                    "%.4f, test accuracy %.2f%% (%.0f s)\n",
                    (long long)r.step, 100 * r.coverage(), percent(r.pseudo_accuracy).c_str(), r.labelled_loss,
                    r.unlabelled_loss, 100 * r.test_accuracy, seconds());
      std::fflush(stdout);
    };
    dataquality::FixMatchOptions fo;
    fo.threshold = threshold, fo.steps = steps, fo.batch_size = batch, fo.mu = mu, fo.lambda_u = lambda_u, fo.lr = lr;
    fo.ema_decay = ema, fo.report_every = report_every, fo.seed = uint64_t(seed), fo.distribution_alignment = align;
    fo.cosine_lr = cosine;
    fo.weak = {.max_shift = shift, .hflip = hflip, .fill = black_value(d.norm)};
    fo.strong.ops = strong_ops, fo.strong.cutout = cutout, fo.strong.max_shift = std::max<int64_t>(4, shift);
    fo.strong.black = black_value(d.norm);
    fo.strong.white.clear();
    for (size_t c = 0; c < d.norm.mean.size(); ++c) fo.strong.white.push_back((1 - d.norm.mean[c]) / d.norm.std[c]);
    if (fo.strong.black.empty()) fo.strong.black = {0.0}, fo.strong.white = {1.0};  // data not normalised
    fo.on_round = on_round;
    auto r = dataquality::fixmatch(d.train, labelled, classifier_factory(model, d.shape), fo, d.test, &truth);
    labels = std::move(r.labels), confidence = std::move(r.confidence), source = std::move(r.source);
    acc_labelled_only = r.baseline_test_accuracy, acc_final = r.test_accuracy;
  } else {
    report["class_balanced"] = balanced;
    auto on_round = [&](const dataquality::AutolabelRound& r) {
      const double s = seconds();
      nlohmann::ordered_json j = {{"event", "round"}, {"round", r.round}, {"train_samples", r.train_samples},
                                  {"pseudo_labelled", r.pseudo_labelled}, {"seconds", s}};
      j["pseudo_accuracy"] = number_or_null(r.pseudo_accuracy);
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
    dataquality::AutolabelOptions ao;
    ao.threshold = threshold, ao.rounds = rounds, ao.class_balanced = balanced, ao.labelled_share = labelled_share;
    ao.average_rounds = average;
    ao.training.epochs = epochs, ao.training.min_steps = min_steps, ao.training.batch_size = batch;
    ao.training.lr = lr, ao.training.seed = uint64_t(seed);
    ao.training.augment.max_shift = shift, ao.training.augment.hflip = hflip;
    ao.training.augment.fill = black_value(d.norm);
    ao.on_round = on_round;
    auto r = dataquality::autolabel(d.train, labelled, classifier_factory(model, d.shape), ao, d.test, &truth);
    labels = std::move(r.labels), confidence = std::move(r.confidence), source = std::move(r.source);
    acc_labelled_only = r.rounds.front().test_accuracy, acc_final = r.rounds.back().test_accuracy;
  }

  dataquality::write_labels_csv((fs::path(out) / "labels.csv").string(), labels, confidence, source, d.classes);
  const auto [kind, path] = split_spec(data_spec);
  const std::string what = write_labels(kind, path, out, labels, n);
  const LabelSummary s = summarise(labels, source, truth);
  report["final_pseudo_labelled"] = s.pseudo;
  report["final_pseudo_accuracy"] = s.pseudo ? double(s.pseudo_right) / double(s.pseudo) : 0.0;
  report["final_label_accuracy_unlabelled"] = double(s.unlabelled_right) / double(s.unlabelled);
  report["test_accuracy_labelled_only"] = number_or_null(acc_labelled_only);
  report["test_accuracy_final"] = number_or_null(acc_final);
  report["seconds"] = seconds();
  io::write_file_atomic((fs::path(out) / "report.json").string(), report.dump(2) + "\n");
  if (json_out) {
    nlohmann::ordered_json j = report;
    j["event"] = "done";
    j.erase("rounds");
    std::cout << j.dump() << "\n";
    return 0;
  }
  if (fm)
    std::printf("\ntest accuracy: %.2f%% from the labelled samples alone (same recipe, %lld steps), %.2f%% with "
                "FixMatch (%+.2f points)\n",
                100 * acc_labelled_only, (long long)steps, 100 * acc_final, 100 * (acc_final - acc_labelled_only));
  else
    std::printf("\ntest accuracy: %.2f%% from the labelled samples alone, %.2f%% after %lld round(s) (%+.2f points)\n",
                100 * acc_labelled_only, 100 * acc_final, (long long)rounds, 100 * (acc_final - acc_labelled_only));
  std::printf("final labels: %lld pseudo-labels above %.2f (%.2f%% correct); all unlabelled samples %.2f%% correct\n",
              (long long)s.pseudo, threshold, s.pseudo ? 100.0 * double(s.pseudo_right) / double(s.pseudo) : 0.0,
              100.0 * double(s.unlabelled_right) / double(s.unlabelled));
  std::cout << "wrote " << out << "/labels.csv (with confidences), report.json and " << what << "\n";
  return 0;
}

}  // namespace loom::cli
