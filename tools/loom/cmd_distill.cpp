// loom distill: train a student from a trained teacher run (knowledge distillation, Hinton et al. 2015): a
// classifier from a classifier run, or a language model from a language-model run. The student is trained
// exactly as `loom train --model M` would train it (same options, data order, run folder, checkpoints, --resume,
// --json: run_supervised in cmd_train.cpp, the LM task of cmd_train_lm.cpp); only the training loss changes, to
// alpha T^2 KL(teacher/T || student/T) + (1 - alpha) cross-entropy (loom/nn/loss_distill.cpp), with the teacher
// in eval mode and without a graph (loom/train/distill.h).
//   loom train --model cnn --epochs 3 --out runs/cnn
//   loom distill --teacher runs/cnn --model mlp --epochs 5 --temperature 4 --alpha 0.9 --out runs/mlp-kd
//   loom distill --teacher runs/gpt4 --model gpt --layers 2 --steps 300 --out runs/gpt2-kd
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>

#include "args.h"
#include "commands.h"
#include "data_spec.h"
#include "lm_common.h"
#include "loom/models/language_model.h"
#include "loom/nn/repr.h"
#include "loom/train/distill.h"
#include "model_file.h"
#include "train_setup.h"

namespace loom::cli {

namespace {

struct DistillArgs {
  std::string teacher;
  double temperature = 2.0, alpha = 0.5;
  bool cache = false;
};

const TrainTaskInfo& task_info(const std::string& name) {
  for (const auto& t : train_tasks())
    if (t.name == name) return t;
  LOOM_FAIL("loom distill: the ", name, " training task is missing");
}

bool same_norm(const Normalization& a, const Normalization& b) { return a.mean == b.mean && a.std == b.std; }

// The teacher's input from the student's: undo the student's normalisation, apply the teacher's.
std::function<Tensor(const Tensor&)> teacher_input(const Normalization& student, const Normalization& teacher) {
  if (same_norm(student, teacher)) return nullptr;
  Normalization undo;  // (x - (-m/s)) / (1/s) = x s + m
  for (size_t c = 0; c < student.mean.size(); ++c)
    undo.mean.push_back(-student.mean[c] / student.std[c]), undo.std.push_back(1.0 / student.std[c]);
  return [undo, teacher](const Tensor& x) {
    Tensor raw = undo.empty() ? x : apply_normalization(x, undo);
    return teacher.empty() ? raw : apply_normalization(raw, teacher);
  };
}

std::string shape_text(const models::ModelSpec& s) {
  return std::to_string(s.channels) + "x" + std::to_string(s.height) + "x" + std::to_string(s.width);
}

// Loads the teacher run and checks it can teach a student on this data: a classifier with the same input
// shape, number of classes and class names.
LoadedModel load_teacher(const std::string& dir, const LoadedData& d, const std::string& student_data) {
  if (is_lm_folder(dir))
    throw UsageError("--teacher " + dir + " is a language-model run: a classifier student learns from a classifier "
                     "run (a language-model student, --model lstm-lm or gpt, from a language-model run)");
  LoadedModel t = load_model(dir, "");
  if (!t.nonfinite.empty()) warn_nonfinite(t.path, t.nonfinite);
  LOOM_CHECK(!models::is_regression(t.name), "--teacher ", dir, " holds a ", t.name,
             " regression model; distillation needs a classifier's logits");
  LOOM_CHECK(t.shape.num_classes == d.shape.num_classes, "--teacher ", dir, " (", t.name, ") predicts ",
             t.shape.num_classes, " classes but ", student_data, " has ", d.shape.num_classes,
             ": teacher and student must agree on the classes (train the teacher on the same --data)");
  LOOM_CHECK(t.classes.empty() || d.classes.empty() || t.classes == d.classes, "--teacher ", dir,
             " names its classes differently from ", student_data,
             " (same count, other names or order): train the teacher on the same --data");
  LOOM_CHECK(t.shape.channels == d.shape.channels && t.shape.height == d.shape.height &&
                 t.shape.width == d.shape.width,
             "--teacher ", dir, " takes ", shape_text(t.shape), " images but ", student_data, " gives ",
             shape_text(d.shape), " (for imagefolder data, give the teacher's --image-size)");
  return t;
}

// The LM teacher: a language-model run whose tokenizer is the student's (same ids for the same text, checked id
// by id) and whose context covers the student's blocks.
train::TrainLossFn lm_train_loss(const DistillArgs& k, const text::Tokenizer& tok, int64_t context, const Say& say) {
  if (!is_lm_folder(k.teacher))
    throw UsageError("--teacher " + k.teacher + " is not a language-model run (no config.json of an LSTM/GPT): "
                     "a language-model student learns from a language-model teacher");
  models::LanguageModelPtr teacher = models::load_language_model(k.teacher);
  text::TokenizerPtr ttok = load_run_tokenizer(k.teacher);
  LOOM_CHECK(ttok->vocab_size() == tok.vocab_size(), "--teacher ", k.teacher, " has a vocabulary of ",
             ttok->vocab_size(), " tokens, the student's has ", tok.vocab_size(),
             ": teacher and student must share the tokenizer (same --data and --tokenizer)");
  for (int64_t id = 0; id < tok.vocab_size(); ++id) {
    const int64_t one[1] = {id};
    LOOM_CHECK(ttok->decode(one) == tok.decode(one), "--teacher ", k.teacher, ": token ", id, " is '",
               ttok->decode(one), "' for the teacher and '", tok.decode(one),
               "' for the student: teacher and student must share the tokenizer (same --data and --tokenizer)");
  }
  const nlohmann::json tc = teacher->config();
  // A GPT reads at most n_positions tokens; an LSTM has no limit (0).
  const int64_t tctx = tc.contains("n_positions") ? tc.at("n_positions").get<int64_t>() : 0;
  LOOM_CHECK(tctx == 0 || tctx >= context, "--teacher ", k.teacher, " reads at most ", tctx,
             " tokens but the student's --context is ", context, ": give --context ", tctx, " or less");
  auto distiller = std::make_shared<train::Distiller>(
      *teacher, DistillationOptions{.temperature = k.temperature, .alpha = k.alpha});
  std::ostringstream line;
  line << "teacher " << k.teacher << " (" << tc.value("arch", std::string("?")) << ", "
       << nn::group_digits(teacher->num_parameters()) << " parameters): temperature " << k.temperature << ", alpha "
       << k.alpha << "; logits computed at every step";
  say({{"event", "teacher"}, {"teacher", k.teacher}, {"teacher_model", tc.value("arch", std::string("?"))},
       {"teacher_parameters", teacher->num_parameters()}, {"temperature", k.temperature}, {"alpha", k.alpha}},
      line.str());
  train::TrainLossFn f = distiller->train_loss();
  return [distiller, teacher, f](const Tensor& out, const data::Batch& b) { return f(out, b); };
}

std::string distill_help(const Args& a) {
  return a.help() +
         "\nThe student is trained as `loom train --model M` would train it (same options, run folder, checkpoints,\n"
         "--resume); only the training loss changes. Validation and test losses are the plain cross-entropy.\n"
         "--out defaults to runs/distill-MODEL-DATA. The teacher must be a classifier run on images of the same\n"
         "shape and the same classes; a different input normalisation is converted. --dp-* and --distributed are\n"
         "refused. The recorded --teacher, --temperature, --alpha and --cache-teacher must match on --resume.\n";
}

}  // namespace

int cmd_distill(const Argv& argv) {
  // --model chooses the student's task, as in loom train: a classifier, or a language model.
  const std::string model = find_option_value(argv, "--model");
  const bool lm = model == "gpt" || model == "lstm-lm";
  const TrainTaskInfo& info = task_info(lm ? "language model" : "classifier");
  TrainConfig c;
  DistillArgs k;
  LMExtension lm_ext;  // outlives the task that points at it
  std::unique_ptr<TrainTask> task = lm ? make_lm_task(lm_ext) : info.make();
  task->defaults(c);
  std::string models;
  for (const auto& m : task_info("classifier").models) models += (models.empty() ? "" : ", ") + m;
  models += ", lstm-lm, gpt";
  Args a("loom distill", "Train a student (--model " + models +
                             ") from a trained teacher run: knowledge distillation. --model lstm-lm|gpt --help lists "
                             "the language-model options.");
  a.option("--teacher", &k.teacher, "DIR", "the teacher: a classifier run folder (loom train's --out) (required)");
  a.option("--temperature", &k.temperature, "T", "softmax temperature of both models' logits (default 2)",
           {.min = 0, .max = 1000, .exclusive_min = true});
  a.option("--alpha", &k.alpha, "A", "weight of the teacher term; 1 - A weighs the labels' cross-entropy (default 0.5)",
           {.min = 0, .max = 1});
  a.flag("--cache-teacher", &k.cache,
         "compute the teacher's logits once per training sample instead of at every step (checked each epoch)");
  declare_common_options(a, c);
  task->declare(a, c);
  try {
    a.parse(argv);
  } catch (const HelpRequested&) {
    throw HelpRequested{distill_help(a)};
  }
  if (k.teacher.empty()) throw UsageError("--teacher is required (a classifier run folder, e.g. runs/cnn)");
  if (c.model.empty()) throw UsageError("--model is required (the student: one of " + models + ")");
  if (std::find(info.models.begin(), info.models.end(), c.model) == info.models.end())
    throw UsageError("--model " + c.model + ": loom distill trains a classifier or language-model student (one of " +
                     models + ")");
  const nlohmann::json record = {
      {"teacher", k.teacher}, {"temperature", k.temperature}, {"alpha", k.alpha}, {"cache_teacher", k.cache}};
  if (lm) {
    if (k.cache)
      throw UsageError("--cache-teacher: a language model trains on blocks drawn at random from the corpus, so no "
                       "block comes twice to be looked up; its teacher runs at every step");
    if (c.out.empty())
      c.out = "runs/distill-" + c.model + "-" +
              (c.data.starts_with("text:") ? std::filesystem::path(c.data.substr(5)).stem().string() : c.data);
    finish_options(a, c, info, *task);
    lm_ext.config = record;
    lm_ext.make_train_loss = [k](const text::Tokenizer& tok, int64_t context, const Say& say) {
      return lm_train_loss(k, tok, context, say);
    };
    return task->run(c);
  }
  if (dp_requested(a)) throw UsageError("--dp-* options: DP-SGD distillation is not supported");
  if (c.distributed) throw UsageError("--distributed: loom distill runs in one process");
  if (c.out.empty()) c.out = "runs/distill-" + c.model + "-" + split_spec(c.data).first;
  finish_options(a, c, info, *task);

  SupervisedExtension ext;
  ext.config = record;
  const std::string data = c.data;
  ext.make_train_loss = [k, data](const LoadedData& d, const data::Dataset& train_set,
                                              const data::DataLoader& loader, const Say& say) {
    LoadedModel t = load_teacher(k.teacher, d, data);
    auto distiller = std::make_shared<train::Distiller>(
        *t.model, DistillationOptions{.temperature = k.temperature, .alpha = k.alpha},
        teacher_input(d.norm, t.data.norm));
    auto teacher_model = t.model;  // the Distiller holds a reference; the lambda below keeps the model alive
    std::ostringstream line;
    line << "teacher " << k.teacher << " (" << t.name << ", " << nn::group_digits(t.model->num_parameters())
         << " parameters): temperature " << k.temperature << ", alpha " << k.alpha;
    nlohmann::json ev = {{"event", "teacher"},         {"teacher", k.teacher},
                         {"teacher_model", t.name},    {"teacher_parameters", t.model->num_parameters()},
                         {"temperature", k.temperature}, {"alpha", k.alpha}};
    if (k.cache) {
      const auto t0 = std::chrono::steady_clock::now();
      distiller->cache(train_set);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      char secs[32];
      std::snprintf(secs, sizeof secs, "%.1f", s);
      line << "; logits of its " << train_set.size() << " training samples cached in " << secs << " s";
      ev["cached_samples"] = train_set.size(), ev["cache_seconds"] = s;
    } else {
      line << "; logits computed at every step";
    }
    say(ev, line.str());
    train::TrainLossFn f = distiller->train_loss(k.cache ? &loader : nullptr);
    return train::TrainLossFn([distiller, teacher_model, f](const Tensor& out, const data::Batch& b) {
      return f(out, b);
    });
  };
  return run_supervised(c, &ext);
}

}  // namespace loom::cli
