// Training checkpoints: round trips, validation errors, and the central promise: a run interrupted at any
// step and resumed from its last checkpoint, with fresh objects and scrambled RNG state, ends with weights
// bit-identical (memcmp) to a run that was never interrupted.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "loom/loom.h"

using namespace loom;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("loom_test_checkpoint_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// Stands in for a kill: training dies at `step` without any end-of-training save.
struct Killed {};
class KillAt : public train::Callback {
 public:
  explicit KillAt(int64_t step) : step_(step) {}
  std::string name() const override { return "KillAt"; }
  void on_batch_end(train::Trainer& t, const train::StepInfo& s) override {
    if (s.step == step_) throw Killed{};
  }

 private:
  int64_t step_;
};

struct RunResult {
  nn::StateDict weights;
  std::vector<train::Logs> history;
};

struct Setup {
  int workers = 0;
  int64_t steps = 35;  // 200 samples / batch 20 = 10 batches per epoch: 3.5 epochs
  int64_t checkpoint_every = 4;
  bool per_step_schedule = false;
};

// Builds everything from scratch, as a new process would: the model's initial weights and the default
// generator depend on `init_seed`, which a resumed run sets differently on purpose.
RunResult run(const Setup& s, uint64_t init_seed, const std::string& ckpt, int64_t kill_at, bool resume) {
  Generator data_gen(7);
  Tensor x = randn({200, 8}, {}, &data_gen);
  Tensor y = randint(0, 4, {200}, {.dtype = DType::i64}, &data_gen);
  manual_seed(init_seed);
  auto model = std::make_shared<nn::Sequential>(nn::Linear({.in = 8, .out = 32}), nn::ReLU(), nn::Dropout({.p = 0.3}),
                                                nn::Linear({.in = 32, .out = 4}));
  manual_seed(init_seed + 1000);  // dropout masks come from here: the checkpoint must restore it
  data::DataLoader loader(std::make_shared<data::TensorDataset>(x, y),
                          {.batch_size = 20, .shuffle = true, .num_workers = s.workers, .seed = 11});
  data::DataLoader val(std::make_shared<data::TensorDataset>(x.narrow(0, 0, 40), y.narrow(0, 0, 40)),
                       {.batch_size = 40});
  optim::AdamW opt(model->parameters(), {.lr = 3e-3});
  std::unique_ptr<optim::LRScheduler> sched;
  if (s.per_step_schedule)
    sched =
        std::make_unique<optim::OneCycleLR>(opt, optim::OneCycleLROptions{.max_lr = {1e-2}, .total_steps = s.steps});
  else
    sched = std::make_unique<optim::StepLR>(opt, optim::StepLROptions{.step_size = 1, .gamma = 0.7});
  std::vector<train::CallbackPtr> cbs = {
      std::make_shared<train::EarlyStopping>(train::EarlyStoppingOptions{.monitor = "val_loss", .patience = 50})};
  if (kill_at > 0) cbs.push_back(std::make_shared<KillAt>(kill_at));
  if (!ckpt.empty())
    cbs.push_back(std::make_shared<train::ModelCheckpoint>(
        train::ModelCheckpointOptions{.path = ckpt, .every_steps = s.checkpoint_every}));
  train::Trainer t(*model, {.steps = s.steps,
                            .optimizer = &opt,
                            .validation = &val,
                            .callbacks = cbs,
                            .scheduler = sched.get(),
                            .scheduler_interval = s.per_step_schedule ? train::Interval::Step : train::Interval::Epoch,
                            .progress = train::ProgressMode::None,
                            .resume_from = resume ? ckpt : ""});
  train::History h;
  try {
    h = t.fit(loader);
  } catch (const Killed&) {
    return {};
  }
  return {train::clone_state(*model), h.epochs};
}

void expect_bit_identical(const RunResult& a, const RunResult& b) {
  ASSERT_EQ(a.weights.keys(), b.weights.keys());
  for (const auto& [k, t] : a.weights) {
    const Tensor& u = b.weights.at(k);
    ASSERT_EQ(t.shape(), u.shape()) << k;
    EXPECT_EQ(std::memcmp(t.raw_data(), u.raw_data(), size_t(t.numel()) * sizeof(float)), 0) << k << " differs";
  }
  ASSERT_EQ(a.history.size(), b.history.size());
  for (size_t e = 0; e < a.history.size(); ++e)
    for (const char* k : {"loss", "accuracy", "val_loss", "lr"})
      EXPECT_EQ(a.history[e].at(k), b.history[e].at(k)) << "epoch " << e + 1 << " " << k;
}

void resume_case(const Setup& s, int64_t kill_at, const std::string& name) {
  const fs::path d = temp_dir(name);
  const std::string ckpt = (d / "checkpoint.safetensors").string();
  const RunResult straight = run(s, 1, "", -1, false);
  ASSERT_FALSE(straight.weights.empty());
  EXPECT_TRUE(run(s, 1, ckpt, kill_at, false).weights.empty());  // dies at kill_at
  ASSERT_TRUE(fs::exists(ckpt));
  const RunResult resumed = run(s, 99, ckpt, -1, true);  // other init, other RNG state: all must come from the file
  expect_bit_identical(straight, resumed);
  fs::remove_all(d);
}

}  // namespace

TEST(Resume, MidEpochCheckpointIsBitIdentical) {
  resume_case({}, /*kill_at=*/27, "mid");  // last save at step 24: epoch 3, batch 4
}

TEST(Resume, EpochBoundaryCheckpointIsBitIdentical) {
  resume_case({.checkpoint_every = 0}, /*kill_at=*/25, "boundary");  // last save: end of epoch 2
}

TEST(Resume, WithDataLoaderWorkersAndPerStepSchedule) {
  resume_case({.workers = 2, .checkpoint_every = 3, .per_step_schedule = true}, /*kill_at=*/17, "workers");
}

TEST(Resume, FinishedRunResumesToTheSameWeights) {
  const fs::path d = temp_dir("done");
  const std::string ckpt = (d / "c.safetensors").string();
  const RunResult a = run({}, 1, ckpt, -1, false);
  const RunResult b = run({}, 5, ckpt, -1, true);  // nothing left to do
  expect_bit_identical(a, b);
  fs::remove_all(d);
}

TEST(Checkpoint, WeightsRoundTripWithPyTorchNames) {
  const fs::path d = temp_dir("weights");
  manual_seed(3);
  auto a = models::make_model("lenet", {});
  train::save_weights((d / "m.safetensors").string(), *a, {{"note", "hi"}});
  manual_seed(4);
  auto b = models::make_model("lenet", {});
  io::Metadata meta = train::load_weights((d / "m.safetensors").string(), *b);
  EXPECT_EQ(meta.at("format"), "pt");
  EXPECT_EQ(meta.at("note"), "hi");
  for (const auto& [k, t] : a->state_dict())
    EXPECT_EQ(std::memcmp(t.raw_data(), b->state_dict().at(k).raw_data(), size_t(t.numel()) * 4), 0) << k;
  // The wrong architecture is refused with the keys named.
  auto c = models::make_model("cnn", {});
  try {
    train::load_weights((d / "m.safetensors").string(), *c);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("m.safetensors"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("size mismatch for 0.weight"), std::string::npos) << e.what();
  }
  fs::remove_all(d);
}

TEST(Checkpoint, OptimizerStateRoundTrips) {
  const fs::path d = temp_dir("opt");
  manual_seed(0);
  auto m = models::make_model("linreg", {.features = 3});
  optim::Adam opt(m->parameters(), {.lr = 0.01});
  for (int i = 0; i < 3; ++i) {
    opt.zero_grad();
    mse_loss((*m)(randn({4, 3})), randn({4, 1})).backward();
    opt.step();
  }
  train::save_checkpoint((d / "c.safetensors").string(), {m->state_dict(), opt.name(), opt.state_dict(), {{"k", "v"}}});
  train::Checkpoint c = train::load_checkpoint((d / "c.safetensors").string());
  EXPECT_EQ(c.optimizer_name, "Adam");
  EXPECT_EQ(c.metadata.at("k"), "v");
  EXPECT_EQ(c.optimizer.scalars, opt.state_dict().scalars);
  ASSERT_EQ(c.optimizer.tensors.size(), opt.state_dict().tensors.size());
  for (size_t i = 0; i < c.optimizer.tensors.size(); ++i) {
    EXPECT_EQ(c.optimizer.tensors[i].first, opt.state_dict().tensors[i].first);
    EXPECT_EQ(c.optimizer.tensors[i].second.tolist(), opt.state_dict().tensors[i].second.tolist());
  }
  // The model weights of a training checkpoint load as plain weights too.
  EXPECT_EQ(train::read_weights((d / "c.safetensors").string()).keys(), m->state_dict().keys());
  fs::remove_all(d);
}

TEST(Checkpoint, CorruptAndMismatchedFilesGiveClearErrors) {
  const fs::path d = temp_dir("bad");
  const std::string ckpt = (d / "checkpoint.safetensors").string();
  run({.steps = 5}, 1, ckpt, -1, false);
  auto expect_error = [](const std::function<void()>& f, const std::string& needle) {
    try {
      f();
      ADD_FAILURE() << "expected an error containing '" << needle << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  // Truncated: the validation in load_safetensors catches it before any data is used.
  std::string bytes;
  {
    std::ifstream f(ckpt, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), {});
  }
  const std::string cut = (d / "cut.safetensors").string();
  std::ofstream(cut, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size() / 2));
  expect_error([&] { train::load_checkpoint(cut); }, "cut.safetensors");
  expect_error([&] { train::load_checkpoint((d / "missing.safetensors").string()); }, "no such file");
  // Plain weights are not a training checkpoint.
  auto m = models::make_model("linreg", {.features = 8});
  train::save_weights((d / "w.safetensors").string(), *m);
  expect_error([&] { train::load_checkpoint((d / "w.safetensors").string()); }, "not a training checkpoint");
  // Another optimizer or another model cannot resume from it.
  auto net = std::make_shared<nn::Sequential>(nn::Linear({.in = 8, .out = 32}), nn::ReLU(), nn::Dropout({.p = 0.3}),
                                              nn::Linear({.in = 32, .out = 4}));
  optim::SGD sgd(net->parameters(), {.lr = 0.1});
  expect_error([&] { train::Trainer(*net, {.optimizer = &sgd, .resume_from = ckpt}); }, "AdamW optimizer");
  optim::AdamW adamw(m->parameters());
  expect_error([&] { train::Trainer(*m, {.optimizer = &adamw, .resume_from = ckpt}); }, "Unexpected key");
  fs::remove_all(d);
}

TEST(Checkpoint, StaleTempFileDoesNotBreakSaving) {
  // A kill during a save leaves PATH.tmp behind; the next save must replace it and the file must load.
  const fs::path d = temp_dir("tmp");
  const std::string ckpt = (d / "checkpoint.safetensors").string();
  std::ofstream(ckpt + ".tmp") << "half-written garbage";
  run({.steps = 5, .checkpoint_every = 2}, 1, ckpt, -1, false);
  EXPECT_NO_THROW(train::load_checkpoint(ckpt));
  EXPECT_FALSE(fs::exists(ckpt + ".tmp"));
  fs::remove_all(d);
}
