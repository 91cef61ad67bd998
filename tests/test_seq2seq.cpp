// Sequence-to-sequence: the masked sequence cross-entropy against torch, the encoder-decoder's paths agreeing
// with each other (one-call Luong decoder vs step by step, padded vs alone, free-running vs greedy), float64
// gradchecks through the whole model, beam search (beam 1 is greedy; a constructed model where greedy is beaten),
// overfitting a few date pairs, and save/load.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "loom/loom.h"
#include "loom/models/beam_search.h"
#include "loom/models/seq2seq.h"
#include "loom/nn/sequence_loss.h"
#include "loom/text/dates.h"
#include "loom/text/seq2seq_data.h"
#include "support/gradcheck.h"
#include "support/torch_oracle.h"

using namespace loom;
using loom::test::torch_run;
namespace fs = std::filesystem;

namespace {

// Labels (B, T) with padding (0) at the ends of rows 0 and 2.
Tensor padded_labels() {
  return tensor(std::vector<int64_t>{4, 5, 6, 0, 0, 1, 2, 3, 4, 5, 6, 0, 0, 0, 0}, {3, 5});
}

TEST(SequenceLoss, MatchesTorchCrossEntropyWithIgnoreIndex) {
  manual_seed(10);
  const Tensor labels = padded_labels();
  for (double smoothing : {0.0, 0.1}) {
    SCOPED_TRACE("label_smoothing " + std::to_string(smoothing));
    Tensor x = randn({3, 5, 7}).requires_grad_(true);
    Tensor loss = sequence_cross_entropy(x, labels, {.label_smoothing = smoothing});
    loss.backward();
    Tensor x2 = x.detach().clone().requires_grad_(true);
    Tensor per = sequence_cross_entropy(x2, labels, {.reduction = Reduction::None, .label_smoothing = smoothing});
    Tensor g = randn({3, 5});
    (per * g).sum().backward();
    auto r = torch_run(
        "F = torch.nn.functional\n"
        "l = F.cross_entropy(x.reshape(-1, 7), t.reshape(-1), ignore_index=0, label_smoothing=ls.item())\n"
        "l.backward()\n"
        "out['loss'] = l; out['gx'] = x.grad\n"
        "y = x.detach().clone().requires_grad_(True)\n"
        "p = F.cross_entropy(y.reshape(-1, 7), t.reshape(-1), ignore_index=0, reduction='none',"
        " label_smoothing=ls.item()).reshape(3, 5)\n"
        "(p * g).sum().backward()\n"
        "out['per'] = p; out['gy'] = y.grad\n",
        {{"x", x.detach(), true}, {"t", labels}, {"g", g}, {"ls", scalar_tensor(smoothing, DType::f64)}});
    EXPECT_PARITY("mean loss", loss, r["loss"]);
    EXPECT_PARITY("grad of the mean", x.grad(), r["gx"]);
    EXPECT_PARITY("per-token losses", per, r["per"]);
    EXPECT_PARITY("grad of the per-token losses", x2.grad(), r["gy"]);
  }
  // Padding positions are exactly zero and the mean counts only the 9 real tokens.
  Tensor x = randn({3, 5, 7});
  const auto per = sequence_cross_entropy(x, labels, {.reduction = Reduction::None}).tolist();
  EXPECT_EQ(per[3], 0.0);
  EXPECT_EQ(per[14], 0.0);
  EXPECT_NEAR(sequence_cross_entropy(x, labels).item(),
              sequence_cross_entropy(x, labels, {.reduction = Reduction::Sum}).item() / 9.0, 1e-6);
}

TEST(SequenceLoss, GradcheckAndHelpers) {
  const Tensor labels = padded_labels();
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return sequence_cross_entropy(in[0], labels); },
                   {test::rand64({3, 5, 7})});
  EXPECT_EQ(sequence_lengths(labels).tolist(), (std::vector<double>{3, 5, 1}));
  EXPECT_EQ(sequence_mask(tensor(std::vector<int64_t>{2, 0, 3})).to(DType::i64).tolist(),
            (std::vector<double>{1, 1, 0, 0, 0, 0, 1, 1, 1}));
  EXPECT_EQ(sequence_mask(tensor(std::vector<int64_t>{1}), 3).shape(), Shape({1, 3}));
  EXPECT_THROW(sequence_mask(tensor(std::vector<int64_t>{4}), 3), Error);
  EXPECT_THROW(sequence_cross_entropy(randn({3, 5, 7}), tensor(std::vector<int64_t>{1, 2}, {1, 2})), Error);
}

// ---- the model on small date batches

models::Seq2SeqOptions small(const std::string& attention) {
  const int64_t V = text::dates_vocab().size();
  return {.src_vocab = V, .tgt_vocab = V, .embed = 8, .hidden = 5, .attention = attention};
}

struct Batch {
  Tensor src, lengths, tgt;
};

Batch date_batch(int64_t n, uint64_t seed) {
  const text::DatesVocab& v = text::dates_vocab();
  std::vector<data::Example> ex;
  for (const auto& p : text::dates_train_pairs(n, seed)) {
    ex.push_back({tensor(v.encode(p.source)), tensor(v.encode(p.target, {.add_bos = true, .add_eos = true}))});
  }
  data::Batch b = text::pad_collate()(ex);
  return {b.data, sequence_lengths(b.data), b.target};
}

Tensor step_by_step(models::Seq2Seq& net, const Batch& b) {
  models::EncoderOutput enc = net.encoder->encode(b.src, b.lengths);
  models::Memory m = net.decoder->memory(enc);
  Tensor h = enc.hidden;
  std::vector<Tensor> out;
  for (int64_t t = 0; t + 1 < b.tgt.size(1); ++t) {
    models::DecoderStep s = net.decoder->step(b.tgt.select(1, t).contiguous(), h, m);
    h = s.hidden;
    out.push_back(s.logits);
  }
  return stack(out, 1);
}

TEST(Seq2Seq, LuongOneCallDecoderEqualsStepByStep) {
  for (const std::string att : {"dot", "general"}) {
    SCOPED_TRACE(att);
    manual_seed(11);
    models::Seq2Seq net(small(att));
    const Batch b = date_batch(6, 1);
    Tensor fast = net.forward(b.src, b.lengths, b.tgt, 1.0);
    ASSERT_EQ(fast.shape(), Shape({6, b.tgt.size(1) - 1, text::dates_vocab().size()}));
    Tensor R = randn(fast.shape());
    (fast * R).sum().backward();
    std::vector<Tensor> g1;
    for (const Tensor& p : net.parameters()) g1.push_back(p.grad().clone());
    net.zero_grad(true);
    Tensor slow = step_by_step(net, b);
    (slow * R).sum().backward();
    EXPECT_TRUE(allclose(fast, slow, 1e-4, 1e-5));
    const auto params = net.named_parameters();
    for (size_t i = 0; i < params.size(); ++i)
      EXPECT_TRUE(allclose(g1[i], params[i].second.grad(), 1e-3, 1e-5)) << params[i].first;
  }
}

TEST(Seq2Seq, PaddingDoesNotChangeAnExample) {
  for (const std::string att : {"dot", "bahdanau"}) {
    SCOPED_TRACE(att);
    manual_seed(12);
    models::Seq2Seq net(small(att));
    const Batch b = date_batch(5, 2);
    Tensor all = net.forward(b.src, b.lengths, b.tgt);
    for (int64_t i = 0; i < 5; ++i) {
      const int64_t ls = b.lengths.data<int64_t>()[i];
      const int64_t lt = sequence_lengths(b.tgt.narrow(0, i, 1)).data<int64_t>()[0];
      Tensor one = net.forward(b.src.narrow(0, i, 1).narrow(1, 0, ls).contiguous(), {},
                               b.tgt.narrow(0, i, 1).narrow(1, 0, lt).contiguous());
      EXPECT_TRUE(allclose(one, all.narrow(0, i, 1).narrow(1, 0, lt - 1), 1e-4, 1e-5)) << "example " << i;
    }
  }
}

TEST(Seq2Seq, FreeRunningForwardFollowsGreedyDecoding) {
  for (const std::string att : {"general", "bahdanau"}) {
    SCOPED_TRACE(att);
    manual_seed(13);
    models::Seq2Seq net(small(att));
    const Batch b = date_batch(4, 3);
    const int64_t T = b.tgt.size(1) - 1;
    Tensor pred = argmax(net.forward(b.src, b.lengths, b.tgt, 0.0), -1);
    const auto greedy = net.greedy_decode(b.src, b.lengths, T);
    for (int64_t i = 0; i < 4; ++i) {
      const auto& g = greedy[size_t(i)];
      for (size_t t = 0; t < g.size(); ++t) EXPECT_EQ(pred.data<int64_t>()[i * T + int64_t(t)], g[t]) << i << " " << t;
      if (int64_t(g.size()) < T) EXPECT_EQ(pred.data<int64_t>()[i * T + int64_t(g.size())], 3) << "eos";
    }
    // The teacher-forcing draws come from the generator: the same seed gives the same logits.
    Generator g1(5), g2(5);
    EXPECT_TRUE(equal(net.forward(b.src, b.lengths, b.tgt, 0.5, &g1), net.forward(b.src, b.lengths, b.tgt, 0.5, &g2)));
  }
}

TEST(Seq2Seq, GradcheckThroughTheWholeModel) {
  for (const std::string att : {"dot", "general", "bahdanau"}) {
    SCOPED_TRACE(att);
    manual_seed(14);
    models::Seq2Seq net({.src_vocab = 9, .tgt_vocab = 8, .embed = 3, .hidden = 2, .attention = att});
    net.to(DType::f64);
    const Tensor src = tensor(std::vector<int64_t>{4, 5, 6, 7, 8, 5, 0, 0}, {2, 4});
    const Tensor tgt = tensor(std::vector<int64_t>{2, 4, 5, 3, 2, 6, 3, 0}, {2, 4});
    std::vector<Tensor*> slots{&net.encoder->bridge->weight, &net.decoder->combine->weight, &net.decoder->out->bias,
                               &net.encoder->embedding->weight};
    if (att == "bahdanau") slots.push_back(&std::dynamic_pointer_cast<nn::BahdanauAttention>(net.decoder->attention)->energy->weight);
    if (att == "general") slots.push_back(&std::dynamic_pointer_cast<nn::LuongAttention>(net.decoder->attention)->key_proj->weight);
    std::vector<Tensor> in;
    for (Tensor* s : slots) in.push_back(s->detach().clone().requires_grad_(true));
    EXPECT_GRADCHECK(
        [&](const std::vector<Tensor>& x) {
          for (size_t i = 0; i < slots.size(); ++i) *slots[i] = x[i];
          return net.forward(src, {}, tgt);
        },
        in);
  }
}

TEST(BeamSearch, BeamOneIsGreedy) {
  for (const std::string att : {"dot", "bahdanau"}) {
    SCOPED_TRACE(att);
    manual_seed(15);
    models::Seq2Seq net(small(att));
    const Batch b = date_batch(4, 4);
    const auto greedy = net.greedy_decode(b.src, b.lengths, 12);
    for (int64_t i = 0; i < 4; ++i) {
      Tensor row = b.src.select(0, i).narrow(0, 0, b.lengths.data<int64_t>()[i]).contiguous();
      auto h = net.beam_search(row, 1, 12);
      ASSERT_EQ(h.size(), 1u);
      EXPECT_EQ(h[0].tokens, greedy[size_t(i)]) << "example " << i;
    }
  }
}

// A toy scorer whose next-token distribution depends only on the previous token (ids: 2 bos, 3 eos, 4 A, 5 B,
// 6 C, 7 D). Greedy takes A (0.6) and then can only go on at 0.35 per step; B (0.4) ends at once with 1.0.
TEST(BeamSearch, FindsTheBetterSequenceGreedyMisses) {
  const int64_t V = 8;
  std::vector<std::vector<double>> P(V, std::vector<double>(V, 1e-9));
  P[2][4] = 0.6, P[2][5] = 0.4;
  P[4][6] = 0.35, P[4][7] = 0.35, P[4][3] = 0.3;
  P[5][3] = 1.0;
  P[6][6] = 0.5, P[6][3] = 0.5;
  P[7][7] = 0.5, P[7][3] = 0.5;
  int64_t calls = 0;
  models::BeamStepFn step = [&](const std::vector<int64_t>& parents, const std::vector<int64_t>& tokens) {
    ++calls;
    EXPECT_EQ(parents.size(), tokens.size());
    Tensor lp = make_tensor({int64_t(tokens.size()), V}, DType::f64);
    for (size_t k = 0; k < tokens.size(); ++k)
      for (int64_t v = 0; v < V; ++v) lp.data<double>()[int64_t(k) * V + v] = std::log(P[size_t(tokens[k])][size_t(v)]);
    return lp;
  };
  auto greedy = models::beam_search(step, {.beam = 1, .max_len = 10});
  ASSERT_EQ(greedy.size(), 1u);
  EXPECT_EQ(greedy[0].tokens, (std::vector<int64_t>{4, 6}));  // A C eos: 0.6 * 0.35 * 0.5
  EXPECT_NEAR(greedy[0].score, std::log(0.6 * 0.35 * 0.5), 1e-9);
  auto beam = models::beam_search(step, {.beam = 2, .max_len = 10});
  ASSERT_FALSE(beam.empty());
  EXPECT_EQ(beam[0].tokens, (std::vector<int64_t>{5}));  // B eos: 0.4
  EXPECT_NEAR(beam[0].score, std::log(0.4), 1e-9);
  EXPECT_TRUE(beam[0].finished);
  EXPECT_GT(beam[0].score, greedy[0].score);
  // A strong length penalty prefers the longer finished hypothesis's per-token average instead.
  auto lp = models::beam_search(step, {.beam = 3, .max_len = 10, .length_penalty = 1.0});
  for (size_t i = 1; i < lp.size(); ++i) EXPECT_GE(lp[i - 1].normalized, lp[i].normalized);
  EXPECT_NEAR(lp[0].normalized, lp[0].score / double(lp[0].tokens.size() + 1), 1e-12);
  EXPECT_GT(calls, 0);
}

TEST(BeamSearch, ScoresAreTheModelsLogProbabilities) {
  manual_seed(16);
  models::Seq2Seq net(small("dot"));
  const Batch b = date_batch(1, 5);
  auto hyps = net.beam_search(b.src.select(0, 0), 3, 8);
  ASSERT_FALSE(hyps.empty());
  for (const auto& h : hyps) {
    std::vector<int64_t> ids{2};
    ids.insert(ids.end(), h.tokens.begin(), h.tokens.end());
    if (h.finished) ids.push_back(3);
    Tensor tgt = tensor(ids).unsqueeze(0);
    NoGradGuard ng;
    Tensor lp = log_softmax(net.forward(b.src, {}, tgt), -1);
    double s = 0;
    for (size_t t = 1; t < ids.size(); ++t) s += lp.select(1, int64_t(t - 1)).select(1, ids[t]).item();
    EXPECT_NEAR(h.score, s, 1e-4);
  }
}

TEST(Seq2Seq, OverfitsAFewPairs) {
  manual_seed(17);
  models::Seq2Seq net({.src_vocab = text::dates_vocab().size(), .tgt_vocab = text::dates_vocab().size(), .embed = 16,
                       .hidden = 24, .attention = "dot"});
  const Batch b = date_batch(8, 6);
  const auto pairs = text::dates_train_pairs(8, 6);
  optim::Adam opt(net.parameters(), {.lr = 1e-2});
  const Tensor labels = b.tgt.narrow(1, 1, b.tgt.size(1) - 1).contiguous();
  double exact = 0;
  for (int step = 0; step < 300 && exact < 1.0; ++step) {
    opt.zero_grad();
    sequence_cross_entropy(net.forward(b.src, b.lengths, b.tgt), labels).backward();
    opt.step();
    if (step % 20 == 19) {
      const auto out = net.greedy_decode(b.src, b.lengths, 12);
      int hits = 0;
      for (size_t i = 0; i < out.size(); ++i) hits += text::dates_vocab().decode(out[i]) == pairs[i].target;
      exact = hits / 8.0;
    }
  }
  EXPECT_EQ(exact, 1.0);
}

TEST(Seq2Seq, SaveLoadRoundTripAndErrors) {
  manual_seed(18);
  models::Seq2Seq net(small("bahdanau"));
  const fs::path dir = fs::temp_directory_path() / ("loom_test_seq2seq_" + std::to_string(::getpid()));
  net.save(dir.string(), {{"task", "dates"}});
  auto again = models::load_seq2seq(dir.string());
  const Batch b = date_batch(3, 7);
  EXPECT_EQ(again->options().attention, "bahdanau");
  EXPECT_EQ(again->greedy_decode(b.src, b.lengths, 10), net.greedy_decode(b.src, b.lengths, 10));
  fs::remove_all(dir);
  EXPECT_THROW(models::load_seq2seq(dir.string()), Error);
  EXPECT_THROW(net.forward(b.src, b.lengths, b.tgt, 1.5), Error);
  EXPECT_THROW(net.forward(b.src, b.lengths, b.tgt.narrow(1, 0, 1).contiguous()), Error);
  EXPECT_THROW(net.forward(b.src + 1000, b.lengths, b.tgt), Error);
  EXPECT_THROW(net.forward(b.src), Error);
  EXPECT_THROW(models::Seq2Seq(models::Seq2SeqOptions{.src_vocab = 9, .tgt_vocab = 9, .attention = "concat"}), Error);
}

}  // namespace
