// DP-SGD through the one training loop (privacy/dp_fit.h on train::Trainer): the same weights and ε as DP-SGD
// written out by hand with DpSgd (Poisson batch, private gradient, optimizer step), rows whose loss and accuracy
// cover the samples since the previous row, and a run resumed from a mid-run checkpoint that ends bit-identical
// to one never interrupted.
#include <gtest/gtest.h>

#include <array>
#include <filesystem>

#include "loom/loom.h"
#include "loom/privacy/dp_fit.h"
#include "support/scratch.h"

using namespace loom;
using namespace loom::privacy;

namespace {

constexpr int64_t kN = 24;
constexpr double kDelta = 1e-5;

// Expected batch 0.08 * 24 ≈ 1.9: about one step in seven draws nobody, so the empty-batch path runs too.
DpOptions dp_options() { return {.noise_multiplier = 0.8, .max_grad_norm = 0.5, .sample_rate = 0.08, .seed = 11}; }

std::shared_ptr<data::TensorDataset> toy_data() {
  Generator g(5);
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < kN; ++i) labels.push_back(i % 3);
  return std::make_shared<data::TensorDataset>(randn({kN, 6}, {}, &g), tensor(labels));
}

// One DP training setup; the same seed gives the same initial weights every time.
struct DpRun {
  std::shared_ptr<nn::Sequential> model = std::make_shared<nn::Sequential>();
  std::unique_ptr<optim::SGD> opt;
  std::unique_ptr<DpSgd> dp;
  DpRun() {
    manual_seed(3);
    model->push_back(nn::Linear({.in = 6, .out = 8}));
    model->push_back(nn::Tanh());
    model->push_back(nn::Linear({.in = 8, .out = 3}));
    opt = std::make_unique<optim::SGD>(model->parameters(), optim::SGDOptions{.lr = 0.3, .momentum = 0.9});
    dp = std::make_unique<DpSgd>(*model, dp_options());
  }
  std::vector<std::vector<double>> weights() const {
    std::vector<std::vector<double>> w;
    for (const Tensor& p : model->parameters()) w.push_back(p.tolist());
    return w;
  }
};

train::FitOptions base(DpRun& r, int64_t steps, int64_t log_every) {
  return {.steps = steps, .optimizer = r.opt.get(), .progress = train::ProgressMode::None, .log_every = log_every};
}

}  // namespace

TEST(DpFit, SameWeightsEpsilonAndRowsAsTheHandWrittenLoop) {
  const auto data = toy_data();
  const int64_t steps = 14, log_every = 5;
  // By hand: what cmd_train_dp.cpp's own loop did before DP-SGD went through the Trainer.
  DpRun ref;
  ref.model->train();
  int64_t empties = 0;
  double loss_sum = 0, correct = 0, seen = 0;
  std::vector<std::array<double, 3>> rows;  // loss, accuracy, epsilon
  for (int64_t s = 1; s <= steps; ++s) {
    const auto idx = ref.dp->sample(kN);
    data::Batch b;
    if (!idx.empty()) b = data->get_batch(idx);
    empties += idx.empty();
    auto ps = ref.dp->private_grads(b.data, b.target, cross_entropy_sum(), kN);
    ref.opt->step();
    if (!idx.empty()) {
      loss_sum += ps.loss_sum, seen += double(idx.size());
      correct += (ps.output.argmax(1) == b.target).sum().item();
    }
    if (s % log_every == 0 || s == steps) {
      rows.push_back({seen > 0 ? loss_sum / seen : 0, seen > 0 ? correct / seen : 0, ref.dp->epsilon(kDelta)});
      loss_sum = correct = seen = 0;
    }
  }
  ASSERT_GT(empties, 0) << "the seed should give at least one empty Poisson batch";

  DpRun run;
  train::Trainer t(*run.model, dp_fit_options(*run.dp, *data, base(run, steps, log_every), {.delta = kDelta}));
  const train::History h = t.fit(dp_batches(*run.dp, *data));
  EXPECT_EQ(run.weights(), ref.weights());  // bit for bit
  EXPECT_EQ(run.dp->epsilon(kDelta), ref.dp->epsilon(kDelta));
  EXPECT_EQ(run.dp->accountant().steps(), steps);
  ASSERT_EQ(h.steps.size(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    const train::Logs& r = h.steps[i];
    EXPECT_NEAR(r.at("loss"), rows[i][0], 1e-12 * std::max(1.0, rows[i][0])) << "row " << i;
    EXPECT_EQ(r.at("accuracy"), rows[i][1]) << "row " << i;
    EXPECT_EQ(r.at("epsilon"), rows[i][2]) << "row " << i;
    EXPECT_EQ(r.at("epoch"), r.at("step") / 13.0) << "row " << i;  // steps / round(1 / 0.08)
  }
}

TEST(DpFit, ResumedFromAMidRunCheckpointEndsBitIdentical) {
  const auto data = toy_data();
  const int64_t steps = 16;
  DpRun whole;
  const train::History hw =
      train::Trainer(*whole.model, dp_fit_options(*whole.dp, *data, base(whole, steps, 4), {.delta = kDelta}))
          .fit(dp_batches(*whole.dp, *data));

  // First part: checkpoints every 3 steps, stopped at step 7 as if killed there (the checkpoint is step 6's).
  const std::filesystem::path dir = loom::test::scratch("dp_fit_resume");
  std::filesystem::create_directories(dir);
  const std::string ckpt = (dir / train::kCheckpointFile).string();
  struct KillAt final : train::Callback {
    std::string name() const override { return "KillAt"; }
    void on_batch_end(train::Trainer& t, const train::StepInfo& s) override {
      if (s.step == 7) t.stop("killed");
    }
  };
  {
    DpRun part;
    train::FitOptions fo = base(part, steps, 4);
    fo.callbacks = {std::make_shared<train::ModelCheckpoint>(
                        train::ModelCheckpointOptions{.path = ckpt, .every_steps = 3, .at_end = false}),
                    std::make_shared<KillAt>()};
    train::Trainer t(*part.model, dp_fit_options(*part.dp, *data, fo, {.delta = kDelta}));
    t.fit(dp_batches(*part.dp, *data));
    ASSERT_EQ(t.global_step(), 7);
  }
  // A fresh process's objects: new model, optimizer and DpSgd (same options), the state from the checkpoint.
  DpRun resumed;
  train::FitOptions fo = base(resumed, steps, 4);
  fo.resume_from = ckpt;
  train::Trainer t(*resumed.model, dp_fit_options(*resumed.dp, *data, fo, {.delta = kDelta}));
  ASSERT_EQ(t.global_step(), 6);
  EXPECT_EQ(resumed.dp->accountant().steps(), 6);
  const train::History hr = t.fit(dp_batches(*resumed.dp, *data));
  EXPECT_EQ(resumed.weights(), whole.weights());
  EXPECT_EQ(resumed.dp->epsilon(kDelta), whole.dp->epsilon(kDelta));
  EXPECT_EQ(resumed.dp->accountant().steps(), steps);
  // The rows continue the same history (step 4 from the checkpoint, then 8, 12, 16 recomputed).
  ASSERT_EQ(hr.steps.size(), hw.steps.size());
  for (size_t i = 0; i < hw.steps.size(); ++i)
    for (const char* k : {"step", "loss", "accuracy", "epsilon"})
      EXPECT_EQ(hr.steps[i].at(k), hw.steps[i].at(k)) << k << " in row " << i;
}

TEST(DpFit, RefusesWhatItCannotCombineWithAndABadAccountantState) {
  const auto data = toy_data();
  DpRun run;
  train::FitOptions fo = base(run, 4, 2);
  fo.row_values = [](train::Logs&) {};
  EXPECT_THROW(dp_fit_options(*run.dp, *data, fo), Error);
  train::FitOptions accum = dp_fit_options(*run.dp, *data, base(run, 4, 2));
  accum.grad_accum = 2;  // the private gradient is set per batch, not accumulated
  try {
    train::Trainer t(*run.model, accum);
    ADD_FAILURE() << "grad_accum 2 with batch_grads was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("grad_accum"), std::string::npos) << e.what();
  }
  // Rows with epsilon are a step-driven fit's: a DataLoader fit (epochs, no Poisson sampling) refuses them.
  data::DataLoader loader(data, data::LoaderOptions{.batch_size = 4});
  train::Trainer by_epoch(*run.model, dp_fit_options(*run.dp, *data, base(run, 4, 2)));
  EXPECT_THROW(by_epoch.fit(loader), Error);
  DpAccountantState st(*run.dp);
  auto s = st.state();
  s.erase("rdp.3");
  EXPECT_THROW(st.load_state(s), Error);
  s = st.state();
  s["orders"] = 2;
  EXPECT_THROW(st.load_state(s), Error);
}
