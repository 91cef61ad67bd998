// Sampling and generation: greedy / temperature / top-k / top-p / repetition penalty on fixed logits,
// seeded determinism, a distribution check over many draws, the generation loop over decode_step, and the
// stop-string filter used for streaming.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "loom/loom.h"
#include "loom/models/generate.h"
#include "loom/models/lstm_lm.h"

using namespace loom;
using models::SamplingOptions;

namespace {

const std::vector<float> kLogits = {1.0f, 3.0f, 0.5f, 2.0f, -1.0f, 2.5f};  // order: 1, 5, 3, 0, 2, 4

std::vector<double> softmax(const std::vector<float>& z, double temp = 1.0) {
  std::vector<double> p(z.size());
  double s = 0;
  for (size_t i = 0; i < z.size(); ++i) s += p[i] = std::exp(z[i] / temp);
  for (auto& v : p) v /= s;
  return p;
}

}  // namespace

TEST(Sampling, TemperatureOneIsSoftmax) {
  const auto p = models::sampling_distribution(kLogits, {});
  const auto ref = softmax(kLogits);
  for (size_t i = 0; i < p.size(); ++i) EXPECT_NEAR(p[i], ref[i], 1e-12);
  const auto hot = models::sampling_distribution(kLogits, {.temperature = 0.5});
  const auto ref_hot = softmax(kLogits, 0.5);
  for (size_t i = 0; i < p.size(); ++i) EXPECT_NEAR(hot[i], ref_hot[i], 1e-12);
}

TEST(Sampling, GreedyAndTopKOneTakeTheArgmax) {
  Generator g(1);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(models::sample_token(kLogits, {.temperature = 0}, {}, g), 1);
    EXPECT_EQ(models::sample_token(kLogits, {.temperature = 1.7, .top_k = 1}, {}, g), 1);
  }
  // Ties: the first maximum, for both.
  const std::vector<float> tie = {0.f, 2.f, 2.f};
  EXPECT_EQ(models::sample_token(tie, {.temperature = 0}, {}, g), 1);
  EXPECT_EQ(models::sample_token(tie, {.top_k = 1}, {}, g), 1);
}

TEST(Sampling, TopKKeepsTheKMostLikely) {
  const auto p = models::sampling_distribution(kLogits, {.top_k = 3});
  const std::vector<float> kept = {3.0f, 2.0f, 2.5f};
  const auto ref = softmax(kept);
  EXPECT_NEAR(p[1], ref[0], 1e-12);
  EXPECT_NEAR(p[3], ref[1], 1e-12);
  EXPECT_NEAR(p[5], ref[2], 1e-12);
  EXPECT_EQ(p[0] + p[2] + p[4], 0.0);
}

TEST(Sampling, TopPKeepsTheSmallestSetReachingP) {
  const auto full = softmax(kLogits);
  // Sorted probabilities: p1 > p5 > p3 > p0 > ...; with top_p just above p1 + p5 the set needs p3 too, and
  // exactly p1 + p5 - epsilon needs only two.
  const double two = full[1] + full[5];
  auto p = models::sampling_distribution(kLogits, {.top_p = two - 1e-9});
  EXPECT_GT(p[1], 0);
  EXPECT_GT(p[5], 0);
  EXPECT_EQ(p[3] + p[0] + p[2] + p[4], 0.0);
  EXPECT_NEAR(p[1], full[1] / two, 1e-12);
  p = models::sampling_distribution(kLogits, {.top_p = two + 1e-9});
  EXPECT_GT(p[3], 0);
  EXPECT_EQ(p[0] + p[2] + p[4], 0.0);
  // A tiny p keeps the single most likely token.
  p = models::sampling_distribution(kLogits, {.top_p = 1e-6});
  EXPECT_EQ(p[1], 1.0);
}

TEST(Sampling, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  const std::vector<float> z = {2.0f, -1.0f, 0.5f};
  const std::vector<int64_t> hist = {0, 1, 1};
  const auto p = models::sampling_distribution(z, {.repetition_penalty = 2.0}, hist);
  const auto ref = softmax({1.0f, -2.0f, 0.5f});
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(p[i], ref[i], 1e-12);
  // Greedy with a strong penalty moves off the repeated token.
  Generator g(0);
  EXPECT_EQ(models::sample_token(z, {.temperature = 0, .repetition_penalty = 10.0}, hist, g), 2);
}

TEST(Sampling, SeededDrawsRepeatAndFollowTheDistribution) {
  const SamplingOptions o{.temperature = 0.9, .top_k = 4};
  const auto p = models::sampling_distribution(kLogits, o);
  Generator a(42), b(42);
  std::vector<int64_t> counts(kLogits.size(), 0);
  const int n = 40000;
  for (int i = 0; i < n; ++i) {
    const int64_t t = models::sample_token(kLogits, o, {}, a);
    EXPECT_EQ(t, models::sample_token(kLogits, o, {}, b));
    ++counts[t];
  }
  for (size_t i = 0; i < p.size(); ++i) {
    const double se = std::sqrt(p[i] * (1 - p[i]) / n);
    EXPECT_NEAR(double(counts[i]) / n, p[i], 5 * se + 1e-12) << "token " << i;
  }
}

TEST(Sampling, RejectsBadOptions) {
  EXPECT_THROW(models::sampling_distribution(kLogits, {.temperature = -1}), Error);
  EXPECT_THROW(models::sampling_distribution(kLogits, {.top_p = 0}), Error);
  EXPECT_THROW(models::sampling_distribution(kLogits, {.top_p = 1.5}), Error);
  EXPECT_THROW(models::sampling_distribution(kLogits, {.repetition_penalty = 0}), Error);
  EXPECT_THROW(models::sampling_distribution(kLogits, {.top_k = -2}), Error);
}

namespace {

std::shared_ptr<models::LSTMLM> tiny() {
  manual_seed(9);
  return std::make_shared<models::LSTMLM>(models::LSTMLMConfig{.vocab_size = 13, .embedding = 4, .layers = 1, .hidden = 8});
}

}  // namespace

TEST(Generate, GreedyMatchesArgmaxOfFullForward) {
  auto m = tiny();
  const std::vector<int64_t> prompt = {3, 1, 4};
  auto out = models::generate(*m, {prompt}, {.max_new_tokens = 6, .sampling = {.temperature = 0}});
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].size(), 6u);
  std::vector<int64_t> seq = prompt;
  NoGradGuard ng;
  for (int64_t t : out[0]) {
    Tensor logits = m->forward(tensor(seq, {1, int64_t(seq.size())}));
    EXPECT_EQ(logits.select(1, int64_t(seq.size()) - 1).argmax(-1).item<int64_t>(), t);
    seq.push_back(t);
  }
}

TEST(Generate, SeededStreamingStopTokensAndSeveralPrompts) {
  auto m = tiny();
  const models::GenerateOptions o{.max_new_tokens = 12, .sampling = {.temperature = 1.5, .top_p = 0.95}, .seed = 5};
  std::vector<std::pair<size_t, int64_t>> streamed;
  auto a = models::generate(*m, {{1, 2}, {7}}, o, [&](size_t i, int64_t t) { streamed.push_back({i, t}); return true; });
  auto b = models::generate(*m, {{1, 2}, {7}}, o);
  EXPECT_EQ(a, b);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(streamed.size(), a[0].size() + a[1].size());
  for (size_t k = 0; k < streamed.size(); ++k)
    EXPECT_EQ(streamed[k].second, k < a[0].size() ? a[0][k] : a[1][k - a[0].size()]);
  // Another seed gives another text.
  auto other_seed = models::generate(*m, {{1, 2}}, {.max_new_tokens = 12, .sampling = o.sampling, .seed = 6});
  EXPECT_NE(other_seed[0], a[0]);
  // A stop token ends the sequence right after it; the callback can end it too.
  auto stopped = models::generate(*m, {{1, 2}}, {.max_new_tokens = 12, .sampling = o.sampling, .seed = 5,
                                                 .stop_tokens = {a[0][2]}});
  const size_t first = std::find(a[0].begin(), a[0].end(), a[0][2]) - a[0].begin();
  EXPECT_EQ(stopped[0], std::vector<int64_t>(a[0].begin(), a[0].begin() + first + 1));
  int calls = 0;
  auto cut = models::generate(*m, {{1, 2}}, o, [&](size_t, int64_t) { return ++calls < 3; });
  EXPECT_EQ(cut[0].size(), 3u);
  EXPECT_THROW(models::generate(*m, {{}}, o), Error);
  EXPECT_THROW(models::generate(*m, {{99}}, o), Error);
}

TEST(StopStrings, HoldsBackPossibleStopPrefixesAndCutsAtTheStop) {
  models::StopStrings s({"END", "\n\n"});
  std::string printed, text;
  for (const std::string piece : {"ab", "c E", "N", "x\n", "y", "\n", "\nmore"}) {
    text += piece;
    printed += s.push(text);
    if (s.stopped()) break;
  }
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(printed, "abc ENx\ny");
  EXPECT_EQ(s.result(text), "abc ENx\ny");
  models::StopStrings open({"END"});
  EXPECT_EQ(open.push("abE"), "ab");
  EXPECT_EQ(open.finish("abEN"), "EN");  // the end of generation releases what was held back
  models::StopStrings none({});
  EXPECT_EQ(none.push("abc"), "abc");
}
