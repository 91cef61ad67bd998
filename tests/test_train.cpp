// The Trainer and its callbacks on tiny synthetic problems: it learns, it stops early, it stops on NaN with
// a useful message, schedulers step when they should, progress output is well-formed.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include <nlohmann/json.hpp>

#include "loom/loom.h"

using namespace loom;

namespace {

// Three Gaussian blobs in the plane, one per class (well separated: a small MLP reaches ~100%).
std::shared_ptr<data::TensorDataset> blobs(int64_t n, uint64_t seed) {
  Generator g(seed);
  Tensor x = randn({n, 2}, {}, &g) * 0.5;
  Tensor y = randint(0, 3, {n}, {.dtype = DType::i64}, &g);
  const float cx[3] = {-2.f, 2.f, 0.f}, cy[3] = {0.f, 0.f, 2.5f};
  float* px = x.data<float>();
  const int64_t* py = y.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) px[2 * i] += cx[py[i]], px[2 * i + 1] += cy[py[i]];
  return std::make_shared<data::TensorDataset>(x, y);
}

std::shared_ptr<nn::Sequential> small_mlp() {
  return std::make_shared<nn::Sequential>(nn::Linear({.in = 2, .out = 16}), nn::ReLU(),
                                          nn::Linear({.in = 16, .out = 3}));
}

}  // namespace

TEST(Trainer, LearnsBlobsAndReportsHistory) {
  manual_seed(1);
  auto model = small_mlp();
  data::DataLoader train(blobs(320, 2), {.batch_size = 32, .shuffle = true, .seed = 3});
  data::DataLoader val(blobs(200, 4), {.batch_size = 100});
  optim::Adam opt(model->parameters(), {.lr = 0.03});
  std::ostringstream log;
  train::History h = train::fit(
      *model, train,
      {.epochs = 6, .optimizer = &opt, .validation = &val, .progress = train::ProgressMode::Lines, .out = &log});
  ASSERT_EQ(h.epochs.size(), 6u);
  EXPECT_LT(h.epochs.back().at("loss"), 0.5 * h.epochs.front().at("loss"));
  EXPECT_GT(h.epochs.back().at("val_accuracy"), 0.95);
  EXPECT_EQ(h.epochs.back().at("epoch"), 6.0);
  EXPECT_DOUBLE_EQ(h.epochs.back().at("lr"), 0.03);
  EXPECT_GT(h.train_samples_per_s, 0.0);
  EXPECT_TRUE(h.stop_reason.empty());
  // One plain line per epoch when not on a terminal.
  const std::string text = log.str();
  EXPECT_NE(text.find("epoch 6/6"), std::string::npos) << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 6);
  // evaluate() agrees with the last validation row and leaves the model in training mode.
  model->train();
  train::Logs ev = train::evaluate(*model, val);
  EXPECT_NEAR(ev.at("accuracy"), h.epochs.back().at("val_accuracy"), 1e-12);
  EXPECT_NEAR(ev.at("loss"), h.epochs.back().at("val_loss"), 1e-9);
  EXPECT_TRUE(model->is_training());
}

TEST(Trainer, StepsBudgetEndsMidEpoch) {
  manual_seed(1);
  auto model = small_mlp();
  data::DataLoader train(blobs(100, 2), {.batch_size = 10, .shuffle = true});
  optim::SGD opt(model->parameters(), {.lr = 0.1});
  train::Trainer t(*model, {.steps = 25, .optimizer = &opt, .progress = train::ProgressMode::None});
  train::History h = t.fit(train);
  EXPECT_EQ(t.global_step(), 25);
  EXPECT_EQ(t.epoch(), 2);  // epochs 0 and 1 done, epoch 2 in progress
  EXPECT_EQ(t.batch(), 5);
  EXPECT_EQ(h.epochs.size(), 2u);
  EXPECT_EQ(h.last.at("epoch"), 3.0);  // the unfinished epoch's row
}

TEST(Trainer, PredictStacksBatchesInEvalMode) {
  manual_seed(1);
  auto model = std::make_shared<nn::Sequential>(nn::Linear({.in = 2, .out = 3}), nn::Dropout({.p = 0.5}));
  Tensor x = randn({10, 2});
  Tensor all = train::predict(*model, x, /*batch_size=*/3);
  EXPECT_EQ(all.shape(), (Shape{10, 3}));
  model->eval();
  Tensor ref = (*model)(x);
  // Dropout off, batches concatenated in order. Not bit-exact: a 1-row batch takes the GEMV path, whose
  // summation order differs from the GEMM's (as in PyTorch, results may depend on the batch size).
  auto a = all.tolist(), r = ref.tolist();
  ASSERT_EQ(a.size(), r.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], r[i], 1e-6 * (1 + std::abs(r[i]))) << i;
}

TEST(Trainer, EarlyStoppingStopsAfterPatience) {
  manual_seed(1);
  auto model = small_mlp();
  data::DataLoader train(blobs(64, 2), {.batch_size = 16});
  optim::Adam opt(model->parameters(), {.lr = 0.01});
  // The training loss falls every epoch, so in "max" mode it never improves after the first epoch.
  auto stop = std::make_shared<train::EarlyStopping>(
      train::EarlyStoppingOptions{.monitor = "loss", .patience = 2, .mode = "max"});
  train::History h = train::fit(
      *model, train, {.epochs = 20, .optimizer = &opt, .callbacks = {stop}, .progress = train::ProgressMode::None});
  EXPECT_EQ(h.epochs.size(), 4u);  // best at 1, then 3 epochs without improvement > patience 2
  EXPECT_EQ(stop->stopped_epoch(), 4);
  EXPECT_NE(h.stop_reason.find("early stopping"), std::string::npos) << h.stop_reason;
}

TEST(Trainer, EarlyStoppingMinDeltaAndMissingMonitor) {
  manual_seed(1);
  auto model = small_mlp();
  optim::SGD opt(model->parameters(), {.lr = 0.1});
  train::Trainer t(*model, {.optimizer = &opt, .progress = train::ProgressMode::None});
  train::EarlyStopping es({.monitor = "val_loss", .patience = 1, .min_delta = 0.1});
  es.on_epoch_end(t, {{"epoch", 1}, {"val_loss", 1.0}});
  es.on_epoch_end(t, {{"epoch", 2}, {"val_loss", 0.95}});  // better, but not by more than min_delta
  EXPECT_EQ(es.wait(), 1);
  EXPECT_FALSE(t.stopping());
  es.on_epoch_end(t, {{"epoch", 3}, {"val_loss", 0.85}});  // beats 1.0 by 0.15
  EXPECT_EQ(es.wait(), 0);
  EXPECT_DOUBLE_EQ(es.best(), 0.85);
  es.on_epoch_end(t, {{"epoch", 4}, {"val_loss", 0.9}});
  es.on_epoch_end(t, {{"epoch", 5}, {"val_loss", 0.9}});
  EXPECT_TRUE(t.stopping());
  EXPECT_EQ(es.stopped_epoch(), 5);
  // A monitor that is never logged is an error naming it, not a silent no-op.
  train::EarlyStopping bad({.monitor = "val_acc"});
  try {
    bad.on_epoch_end(t, {{"epoch", 1}, {"loss", 1.0}});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("val_acc"), std::string::npos);
  }
}

TEST(Trainer, NaNLossStopsWithStepAndAdvice) {
  manual_seed(1);
  // A linear model carries the NaN input straight into the loss.
  auto model = std::make_shared<nn::Sequential>(nn::Linear({.in = 2, .out = 3}));
  auto ds = blobs(40, 2);
  Tensor x = ds->data().clone();
  x.data<float>()[2 * 25] = NAN;  // sample 25 lands in batch 3 (batches of 10, no shuffle)
  data::DataLoader train(std::make_shared<data::TensorDataset>(x, ds->target()), {.batch_size = 10});
  optim::SGD opt(model->parameters(), {.lr = 0.1});
  train::Trainer t(*model, {.epochs = 2, .optimizer = &opt, .progress = train::ProgressMode::None});
  try {
    t.fit(train);
    FAIL() << "expected TrainingDiverged";
  } catch (const train::TrainingDiverged& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("NaN at step 3"), std::string::npos) << m;
    EXPECT_NE(m.find("lower learning rate"), std::string::npos) << m;
  }
  // The bad batch never reached the weights.
  for (const auto& p : model->parameters())
    for (double v : p.tolist()) EXPECT_TRUE(std::isfinite(v));
  EXPECT_EQ(t.global_step(), 2);
}

TEST(Trainer, SchedulersStepPerEpochPerStepAndOnPlateau) {
  manual_seed(1);
  auto model = small_mlp();
  data::DataLoader train(blobs(40, 2), {.batch_size = 10});
  {
    optim::SGD opt(model->parameters(), {.lr = 0.1});
    optim::StepLR sched(opt, {.step_size = 1, .gamma = 0.5});
    train::History h = train::fit(
        *model, train, {.epochs = 3, .optimizer = &opt, .scheduler = &sched, .progress = train::ProgressMode::None});
    EXPECT_DOUBLE_EQ(h.epochs[0].at("lr"), 0.1);  // the lr used during each epoch
    EXPECT_DOUBLE_EQ(h.epochs[1].at("lr"), 0.05);
    EXPECT_DOUBLE_EQ(h.epochs[2].at("lr"), 0.025);
  }
  {
    optim::SGD opt(model->parameters(), {.lr = 0.1});
    optim::LinearWarmupCosine sched(opt, {.warmup_steps = 4, .total_steps = 8});
    train::Trainer t(*model, {.epochs = 1,
                              .optimizer = &opt,
                              .scheduler = &sched,
                              .scheduler_interval = train::Interval::Step,
                              .progress = train::ProgressMode::None});
    t.fit(train);
    EXPECT_EQ(sched.last_epoch(), 4);  // one step per batch
    EXPECT_DOUBLE_EQ(opt.get_lr(0), 0.1);
  }
  {
    optim::SGD opt(model->parameters(), {.lr = 0.1});
    optim::ReduceLROnPlateau plateau(opt, {.mode = "max", .factor = 0.5, .patience = 0});
    // Training loss goes down, so in "max" mode every epoch after the first is a plateau.
    auto cb = std::make_shared<train::ReduceLROnPlateauStepper>(plateau, "loss");
    train::fit(*model, train,
               {.epochs = 3, .optimizer = &opt, .callbacks = {cb}, .progress = train::ProgressMode::None});
    EXPECT_DOUBLE_EQ(opt.get_lr(0), 0.025);
  }
}

TEST(Trainer, JsonProgressIsOneObjectPerLine) {
  manual_seed(1);
  auto model = small_mlp();
  data::DataLoader train(blobs(40, 2), {.batch_size = 10});
  data::DataLoader val(blobs(20, 5), {.batch_size = 10});
  optim::Adam opt(model->parameters());
  std::ostringstream out;
  train::fit(*model, train,
             {.epochs = 2,
              .optimizer = &opt,
              .validation = &val,
              .progress = train::ProgressMode::Json,
              .log_every = 2,
              .out = &out});
  std::istringstream in(out.str());
  int steps = 0, epochs = 0;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.at("event") == "step") {
      ++steps;
      EXPECT_TRUE(j.contains("loss"));
    }
    if (j.at("event") == "epoch") {
      ++epochs;
      EXPECT_EQ(j.at("epoch").get<int>(), epochs);
      for (const char* k : {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds", "samples_per_s"})
        EXPECT_TRUE(j.contains(k)) << k << " missing in " << line;
    }
  }
  EXPECT_EQ(steps, 4);  // 8 steps, every 2nd
  EXPECT_EQ(epochs, 2);
}

TEST(Trainer, ProgressBarRedrawsOneLine) {
  manual_seed(1);
  auto model = small_mlp();
  data::DataLoader train(blobs(40, 2), {.batch_size = 10});
  optim::Adam opt(model->parameters());
  std::ostringstream out;
  train::fit(*model, train, {.epochs = 1, .optimizer = &opt, .progress = train::ProgressMode::Bar, .out = &out});
  const std::string s = out.str();
  EXPECT_NE(s.find("\repoch 1/1  4/4 [####################]"), std::string::npos) << s;
  EXPECT_NE(s.find("samples/s  ETA 0:00"), std::string::npos) << s;
  EXPECT_EQ(std::count(s.begin(), s.end(), '\n'), 1);  // the final epoch line only
}

TEST(Trainer, RejectsBadOptions) {
  auto model = small_mlp();
  EXPECT_THROW(train::Trainer(*model, {}), Error);  // no optimizer
  optim::SGD opt(model->parameters(), {.lr = 0.1});
  EXPECT_THROW(train::Trainer(*model, {.optimizer = &opt, .metrics = {"bogus"}}), Error);
  data::DataLoader empty(std::make_shared<data::TensorDataset>(zeros({3, 2}), zeros({3}, {.dtype = DType::i64})),
                         {.batch_size = 4, .drop_last = true});
  train::Trainer t(*model, {.optimizer = &opt, .progress = train::ProgressMode::None});
  EXPECT_THROW(t.fit(empty), Error);
}

namespace {

// Stops the run after `at` steps (what EarlyStopping does at an epoch's end, at a step instead).
struct StopAt final : train::Callback {
  int64_t at;
  explicit StopAt(int64_t s) : at(s) {}
  std::string name() const override { return "StopAt"; }
  void on_batch_end(train::Trainer& t, const train::StepInfo& s) override {
    if (s.step == at) t.stop("stopped by the test");
  }
};

}  // namespace

TEST(Trainer, StepDrivenFitLogsRowsValidatesAndStops) {
  manual_seed(1);
  auto model = small_mlp();
  auto ds = blobs(200, 2);
  data::DataLoader val(blobs(60, 4), {.batch_size = 60});
  Generator g(5);
  // 8 samples drawn at random per batch: a stream with no epochs.
  train::BatchSource source = [&] {
    std::vector<int64_t> idx;
    for (int i = 0; i < 8; ++i) idx.push_back(int64_t(g.next_u64() % 200));
    return ds->get_batch(idx);
  };
  optim::Adam opt(model->parameters(), {.lr = 0.03});
  std::ostringstream log;
  train::Trainer t(*model, {.steps = 9,
                            .optimizer = &opt,
                            .callbacks = {std::make_shared<StopAt>(7)},
                            .progress = train::ProgressMode::Lines,
                            .log_every = 3,
                            .out = &log,
                            .generators = {&g},
                            .grad_accum = 2,
                            .validate = [&] { return train::evaluate(*model, val); },
                            .eval_every = 4});
  const train::History h = t.fit(source);
  EXPECT_TRUE(t.step_driven());
  EXPECT_EQ(t.global_step(), 7);
  EXPECT_EQ(h.stop_reason, "stopped by the test");
  // Rows every 3 steps, at each validation (every 4), and at the step it stopped (validated too).
  std::vector<double> steps;
  for (const auto& r : h.steps) steps.push_back(r.at("step"));
  EXPECT_EQ(steps, (std::vector<double>{3, 4, 6, 7}));
  for (const auto& r : h.steps) {
    const bool validated = r.at("step") == 4 || r.at("step") == 7;
    EXPECT_EQ(r.count("val_loss") == 1 && r.count("val_accuracy") == 1, validated) << r.at("step");
    EXPECT_EQ(r.count("accuracy"), 1u);     // the training metric since the previous row
    EXPECT_GT(r.at("samples_per_s"), 0.0);  // 2 x 8 samples per step
    EXPECT_DOUBLE_EQ(r.at("lr"), 0.03);
  }
  EXPECT_EQ(h.last.at("step"), 7);
  EXPECT_TRUE(model->is_training());
  // One progress line per row.
  const std::string text = log.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 5) << text;  // 4 rows + the stop reason
  EXPECT_NE(text.find("step 4/9  loss "), std::string::npos) << text;
  EXPECT_NE(text.find("val_loss"), std::string::npos) << text;
}

TEST(Trainer, GradAccumMatchesOneStepOnTheJoinedBatch) {
  auto ds = blobs(16, 2);
  std::vector<int64_t> first{0, 1, 2, 3, 4, 5, 6, 7}, second{8, 9, 10, 11, 12, 13, 14, 15}, all;
  all.insert(all.end(), first.begin(), first.end());
  all.insert(all.end(), second.begin(), second.end());
  auto run = [&](int64_t accum) {
    manual_seed(3);
    auto model = small_mlp();
    optim::SGD opt(model->parameters(), {.lr = 0.5});
    int64_t calls = 0;
    train::BatchSource source = [&] {
      if (accum == 1) return ds->get_batch(all);
      return ds->get_batch(calls++ % 2 == 0 ? first : second);
    };
    train::Trainer t(*model, {.steps = 2, .optimizer = &opt, .progress = train::ProgressMode::None,
                              .grad_accum = accum});
    t.fit(source);
    return model->state_dict();
  };
  // The mean of two equal halves' mean losses is the whole batch's mean loss, so the updates agree.
  const auto a = run(2), b = run(1);
  for (const auto& [k, v] : a) {
    const auto x = v.tolist(), y = b.at(k).tolist();
    ASSERT_EQ(x.size(), y.size());
    for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(x[i], y[i], 1e-5) << k;
  }
}
