// The LSTM language model: PyTorch parity (logits, loss, every gradient), incremental decoding against the
// full forward, save/load through load_language_model, and language-model training through the one loop
// (train::Trainer's step-driven fit: loss falls, resume is bit-identical to an unbroken run, rows and validation
// land where asked, AdamW-style groups work).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "loom/loom.h"
#include "loom/models/language_model.h"
#include "loom/models/lstm_lm.h"
#include "loom/train/lm_steps.h"
#include "loom/train/run_folder.h"
#include "support/torch_oracle.h"

using namespace loom;
namespace fs = std::filesystem;

namespace {

std::shared_ptr<models::LSTMLM> tiny(int64_t V = 11, uint64_t seed = 1) {
  manual_seed(seed);
  return std::make_shared<models::LSTMLM>(models::LSTMLMConfig{.vocab_size = V, .embedding = 5, .layers = 2, .hidden = 7});
}

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("loom_test_lstm_lm_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(d);
  return d;
}

}  // namespace

TEST(LSTMLM, ParityWithPyTorchLogitsLossAndGrads) {
  auto m = tiny();
  Generator g(7);
  Tensor x = randint(0, 11, {3, 6}, {.dtype = DType::i64}, &g), y = randint(0, 11, {3, 6}, {.dtype = DType::i64}, &g);
  Tensor logits = m->forward(x);
  ASSERT_EQ(logits.shape(), (Shape{3, 6, 11}));
  Tensor loss = train::lm_loss(*m, x, y);
  loss.backward();

  std::vector<test::Arg> args{{"x", x}, {"y", y}};
  std::string code =
      "class M(nn.Module):\n"
      "    def __init__(s):\n"
      "        super().__init__(); s.emb = nn.Embedding(11, 5); s.rnn = nn.LSTM(5, 7, num_layers=2, batch_first=True)\n"
      "        s.out = nn.Linear(7, 11)\n"
      "    def forward(s, x): return s.out(s.rnn(s.emb(x))[0])\n"
      "m = M()\nwith torch.no_grad():\n    pass\n";
  const auto params = m->named_parameters();
  ASSERT_EQ(params.size(), 1u + 8u + 2u);  // emb, 2 layers x 4, out
  for (size_t i = 0; i < params.size(); ++i) {
    args.push_back({"p" + std::to_string(i), params[i].second.detach()});
    code += "    m.get_parameter('" + params[i].first + "').copy_(p" + std::to_string(i) + ")\n";
  }
  code += "logits = m(x)\nloss = F.cross_entropy(logits.reshape(-1, 11), y.reshape(-1))\nloss.backward()\n"
          "out['logits'] = logits\nout['loss'] = loss\n";
  for (size_t i = 0; i < params.size(); ++i)
    code += "out['g" + std::to_string(i) + "'] = m.get_parameter('" + params[i].first + "').grad\n";
  auto t = test::torch_run(code, args);
  EXPECT_PARITY("logits", logits, t["logits"]);
  EXPECT_PARITY("loss", loss, t["loss"]);
  for (size_t i = 0; i < params.size(); ++i)
    EXPECT_PARITY("grad of " + params[i].first, params[i].second.grad(), t["g" + std::to_string(i)]);
}

TEST(LSTMLM, DecodeStepMatchesFullForward) {
  auto m = tiny();
  Generator g(3);
  Tensor x = randint(0, 11, {2, 9}, {.dtype = DType::i64}, &g);
  Tensor full;
  {
    NoGradGuard ng;
    full = m->forward(x);
  }
  auto st = m->start_decoding(2);
  Tensor last = m->decode_step(*st, x.narrow(1, 0, 4).contiguous());  // a 4-token prompt
  EXPECT_PARITY("after the prompt", last, full.select(1, 3).contiguous());
  for (int64_t t = 4; t < 9; ++t) {
    last = m->decode_step(*st, x.narrow(1, t, 1).contiguous());
    EXPECT_PARITY("step " + std::to_string(t), last, full.select(1, t).contiguous());
  }
  EXPECT_EQ(st->position, 9);
  EXPECT_FALSE(last.requires_grad());
}

TEST(LSTMLM, SaveAndLoadThroughLanguageModelFolder) {
  auto m = tiny(13);
  const fs::path d = temp_dir("save");
  m->save(d.string());
  auto back = models::load_language_model(d.string());
  EXPECT_EQ(back->config(), m->config());
  EXPECT_EQ(back->vocab_size(), 13);
  Tensor x = tensor(std::vector<int64_t>{1, 2, 3, 12}, {1, 4});
  NoGradGuard ng;
  EXPECT_PARITY("reloaded logits", back->forward(x), m->forward(x), 0.0);
  fs::remove_all(d);
}

TEST(LSTMLM, RejectsBadConfigAndInputs) {
  EXPECT_THROW(models::make_language_model({{"arch", "lstm-lm"}, {"vocab_size", 0}}), Error);
  EXPECT_THROW(models::make_language_model({{"arch", "nope"}}), Error);
  auto m = tiny();
  EXPECT_THROW(m->forward(zeros({2, 3})), Error);  // float ids
}

namespace {

text::LMData toy_data(int64_t context) {
  std::vector<int64_t> ids;
  Generator g(5);
  for (int i = 0; i < 3000; ++i) ids.push_back(i % 7 == 0 ? int64_t(g.next_u64() % 11) : (i * 3) % 11);
  return text::make_lm_data(ids, context, /*seed=*/4);
}

struct LMRun {
  std::shared_ptr<models::LSTMLM> model;
  std::unique_ptr<optim::Adam> opt;
  std::unique_ptr<optim::LRScheduler> sched;
  text::LMData data;
  std::unique_ptr<train::Trainer> trainer;
  std::string checkpoint;

  train::History fit() { return trainer->fit(train::lm_batches(data, 4)); }
};

// A tiny LSTM LM trained `steps` steps in all, with the run folder and checkpoints of `out` (resumed from its
// checkpoint when `resume`).
LMRun make_run(int64_t steps, const fs::path& out, bool resume = false) {
  LMRun r;
  r.model = tiny();
  r.opt = std::make_unique<optim::Adam>(r.model->parameters(), optim::AdamOptions{.lr = 1e-2});
  r.sched = std::make_unique<optim::LinearWarmupCosine>(*r.opt, optim::LinearWarmupCosineOptions{.warmup_steps = 3, .total_steps = 20});
  r.data = toy_data(12);
  r.checkpoint = (out / train::kCheckpointFile).string();
  auto folder = std::make_shared<train::RunFolder>(train::RunFolderOptions{.dir = out.string()});
  auto ckpt = std::make_shared<train::ModelCheckpoint>(
      train::ModelCheckpointOptions{.path = r.checkpoint, .every_steps = 5, .each_epoch = false});
  train::FitOptions fo{.steps = steps,
                       .optimizer = r.opt.get(),
                       .callbacks = {folder, ckpt},
                       .scheduler = r.sched.get(),
                       .scheduler_interval = train::Interval::Step,
                       .clip_grad_norm = 1.0,
                       .progress = train::ProgressMode::None,
                       .log_every = 2,
                       .resume_from = resume ? r.checkpoint : "",
                       .grad_accum = 2,
                       .eval_every = 5};
  r.trainer = std::make_unique<train::Trainer>(*r.model, train::lm_fit_options(*r.model, r.data, fo, {.batch_size = 4}));
  return r;
}

template <class F>
void expect_error(F f, const std::string& part) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one saying: " << part;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

}  // namespace

TEST(LMTraining, LossFallsAndResumeIsBitIdentical) {
  const fs::path a = temp_dir("a"), b = temp_dir("b");
  LMRun full_run = make_run(20, a);
  const train::History ha = full_run.fit();
  EXPECT_EQ(full_run.trainer->global_step(), 20);
  ASSERT_GE(ha.steps.size(), 2u);
  EXPECT_LT(ha.steps.back().at("loss"), ha.steps.front().at("loss"));
  // Rows every 2 steps (log_every), validation every 5 and at the end; the last row is the last step.
  EXPECT_EQ(ha.steps.size(), 10u + 2u);  // steps 2, 4, 5, 6, 8, 10, 12, 14, 15, 16, 18, 20
  for (const auto& row : ha.steps) {
    const int64_t step = int64_t(row.at("step"));
    EXPECT_EQ(row.count("val_loss") == 1, step % 5 == 0) << step;
    EXPECT_GT(row.at("tokens_per_s"), 0) << step;  // 2 x 4 blocks of 12 tokens per step
  }
  EXPECT_EQ(ha.last.at("step"), 20);
  EXPECT_EQ(slurp(a / "metrics.csv").substr(0, 35), "step,loss,val_loss,lr,tokens_per_s\n");

  LMRun first = make_run(10, b);
  first.fit();
  LMRun second = make_run(20, b, /*resume=*/true);
  EXPECT_EQ(second.trainer->global_step(), 10);
  const train::History hb = second.fit();
  EXPECT_EQ(ha.last.at("loss"), hb.last.at("loss"));
  EXPECT_EQ(ha.last.at("val_loss"), hb.last.at("val_loss"));
  ASSERT_EQ(ha.steps.size(), hb.steps.size());  // the resumed run continues the same rows
  for (size_t i = 0; i < ha.steps.size(); ++i) {
    EXPECT_EQ(ha.steps[i].at("loss"), hb.steps[i].at("loss")) << i;
    EXPECT_EQ(ha.steps[i].at("lr"), hb.steps[i].at("lr")) << i;
  }
  const auto wa = full_run.model->state_dict(), wb = second.model->state_dict();
  for (const auto& [k, t] : wa) EXPECT_EQ(t.tolist(), wb.at(k).tolist()) << k;
  fs::remove_all(a), fs::remove_all(b);
}

TEST(LMTraining, StepDrivenFitRefusesADataLoaderCheckpointAndBadOptions) {
  const fs::path a = temp_dir("mix");
  LMRun r = make_run(4, a);
  r.fit();
  // The step-driven checkpoint cannot continue a DataLoader fit: its position means something else.
  LMRun again = make_run(4, a, /*resume=*/true);
  EXPECT_EQ(again.trainer->global_step(), 4);
  auto ds = std::make_shared<data::TensorDataset>(zeros({4, 3}, {.dtype = DType::i64}), zeros({4, 3}, {.dtype = DType::i64}));
  data::DataLoader loader(ds, {.batch_size = 2});
  expect_error([&] { again.trainer->fit(loader); }, "made by a step-driven fit");
  auto model = tiny();
  optim::Adam opt(model->parameters(), {.lr = 1e-2});
  // Step-driven options with a DataLoader, and a step-driven fit without a step count, are refused.
  train::Trainer t2(*model, {.optimizer = &opt, .metrics = {}, .progress = train::ProgressMode::None, .grad_accum = 2});
  expect_error([&] { t2.fit(loader); }, "are for a step-driven fit");
  train::Trainer t3(*model, {.optimizer = &opt, .progress = train::ProgressMode::None});
  expect_error([&] { t3.fit(train::lm_batches(r.data, 2)); }, "needs FitOptions::steps > 0");
  EXPECT_THROW(train::Trainer(*model, {.optimizer = &opt, .grad_accum = 0}), Error);
  fs::remove_all(a);
}

TEST(LMTraining, EvaluateAveragesConsecutiveBlocks) {
  auto m = tiny();
  text::LMData d = toy_data(10);
  const double all = train::evaluate_lm(*m, *d.val, 3);
  // By hand: blocks at 0, 10, 20, ... each weighted equally.
  double sum = 0, first_two = 0;
  int64_t n = 0;
  for (int64_t s = 0; s < d.val->size(); s += 10, ++n) {
    std::vector<int64_t> st{s};
    auto b = d.val->get_batch(st);
    NoGradGuard ng;
    sum += train::lm_loss(*m, b.data, b.target).item();
    if (n == 1) first_two = sum / 2;
  }
  EXPECT_EQ(n, (d.val->size() + 9) / 10);
  EXPECT_NEAR(all, sum / double(n), 1e-6);
  EXPECT_NEAR(train::evaluate_lm(*m, *d.val, 3, /*max_tokens=*/20), first_two, 1e-6);  // two blocks of 10
}
