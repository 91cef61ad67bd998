// The LSTM language model: PyTorch parity (logits, loss, every gradient), incremental decoding against the
// full forward, save/load through load_language_model, and the LM training loop (loss falls, resume is
// bit-identical to an unbroken run, AdamW-style groups work).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "loom/loom.h"
#include "loom/models/language_model.h"
#include "loom/models/lstm_lm.h"
#include "loom/train/lm_trainer.h"
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
  std::unique_ptr<train::LMTrainer> trainer;
};

LMRun make_run(int64_t steps, const std::string& out) {
  LMRun r;
  r.model = tiny();
  r.opt = std::make_unique<optim::Adam>(r.model->parameters(), optim::AdamOptions{.lr = 1e-2});
  r.sched = std::make_unique<optim::LinearWarmupCosine>(*r.opt, optim::LinearWarmupCosineOptions{.warmup_steps = 3, .total_steps = 20});
  r.trainer = std::make_unique<train::LMTrainer>(
      *r.model, *r.opt, r.sched.get(), toy_data(12),
      train::LMTrainOptions{.steps = steps, .batch_size = 4, .grad_accum = 2, .clip_grad_norm = 1.0, .out = out});
  return r;
}

}  // namespace

TEST(LMTrainer, LossFallsAndResumeIsBitIdentical) {
  const fs::path a = temp_dir("a"), b = temp_dir("b");
  LMRun full_run = make_run(20, a.string());
  const train::LMTrainResult ra = full_run.trainer->fit();
  EXPECT_EQ(ra.steps, 20);
  EXPECT_LT(full_run.trainer->history().back().loss, full_run.trainer->history().front().loss);
  EXPECT_TRUE(fs::exists(a / "metrics.csv"));

  LMRun first = make_run(10, b.string());
  first.trainer->fit();
  LMRun second = make_run(20, b.string());
  second.trainer->load_checkpoint(second.trainer->checkpoint_path());
  EXPECT_EQ(second.trainer->step(), 10);
  const train::LMTrainResult rb = second.trainer->fit();
  EXPECT_EQ(ra.loss, rb.loss);
  EXPECT_EQ(ra.val_loss, rb.val_loss);
  const auto wa = full_run.model->state_dict(), wb = second.model->state_dict();
  for (const auto& [k, t] : wa) EXPECT_EQ(t.tolist(), wb.at(k).tolist()) << k;
  fs::remove_all(a), fs::remove_all(b);
}

TEST(LMTrainer, EvaluateAveragesConsecutiveBlocks) {
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
