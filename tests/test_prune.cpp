// Pruning (loom/compress): torch.nn.utils.prune's parametrisation, gradients through the mask, remove, and
// structured shrinking. The masks' parity with torch 1.13 is in test_prune_parity.cpp.
#include <gtest/gtest.h>

#include <cmath>

#include "loom/compress/prune.h"
#include "loom/compress/prune_masks.h"
#include "loom/compress/shrink.h"
#include "loom/loom.h"

using namespace loom;
namespace prune = loom::compress::prune;

namespace {

std::vector<std::string> keys(const nn::Module& m) {
  std::vector<std::string> k;
  for (const auto& [name, t] : m.state_dict()) k.push_back(name);
  return k;
}

int64_t zeros(const Tensor& t) {
  int64_t n = 0;
  for (double v : t.tolist()) n += v == 0;
  return n;
}

double max_diff(const Tensor& a, const Tensor& b) {
  double d = 0;
  const auto x = a.tolist(), y = b.tolist();
  EXPECT_EQ(x.size(), y.size());
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) d = std::max(d, std::fabs(x[i] - y[i]));
  return d;
}

}  // namespace

TEST(Prune, L1UnstructuredParametrisesTheWeight) {
  manual_seed(1);
  nn::Linear fc({.in = 5, .out = 4});
  const Tensor before = fc.weight.clone();
  prune::l1_unstructured(fc, "weight", 0.3);  // round(0.3 * 20) = 6 entries
  EXPECT_EQ(keys(fc), (std::vector<std::string>{"bias", "weight_orig", "weight_mask"}));
  EXPECT_TRUE(prune::is_pruned(fc));
  EXPECT_TRUE(prune::is_pruned(fc, "weight"));
  EXPECT_FALSE(prune::is_pruned(fc, "bias"));
  const Tensor mask = fc.get_buffer("weight_mask");
  EXPECT_EQ(zeros(mask), 6);
  // weight_orig keeps the values; the member the layer computes with is weight_orig * mask.
  EXPECT_EQ(max_diff(fc.get_parameter("weight_orig"), before), 0);
  EXPECT_EQ(max_diff(fc.weight, before * mask), 0);
  // The 6 zeroed entries are the 6 smallest |w|.
  std::vector<double> w = before.tolist(), m = mask.tolist(), pruned, kept;
  for (size_t i = 0; i < w.size(); ++i) (m[i] == 0 ? pruned : kept).push_back(std::fabs(w[i]));
  EXPECT_LE(*std::max_element(pruned.begin(), pruned.end()), *std::min_element(kept.begin(), kept.end()));
  // Only weight_orig and bias are trained.
  EXPECT_EQ(fc.parameters().size(), 2u);
}

TEST(Prune, GradientsReachWeightOrigOnlyThroughTheMask) {
  manual_seed(2);
  nn::Linear fc({.in = 6, .out = 3});
  prune::l1_unstructured(fc, "weight", 0.5);
  const Tensor mask = fc.get_buffer("weight_mask");
  optim::SGD opt(fc.parameters(), {.lr = 0.5});
  for (int step = 0; step < 3; ++step) {
    opt.zero_grad();
    Tensor x = randn({8, 6});
    Tensor loss = sum(fc(x) * fc(x));
    loss.backward();
    const Tensor g = fc.get_parameter("weight_orig").grad();
    ASSERT_TRUE(g.defined());
    EXPECT_EQ(max_diff(g * (1.0 - mask), zeros_like(g)), 0) << "pruned entries got a gradient";
    EXPECT_GT(zeros(g), 8);  // 9 pruned entries have zero gradient
    opt.step();
  }
  // A forward after the steps computes with the updated weight_orig, pruned entries still zero.
  fc(randn({1, 6}));
  EXPECT_EQ(max_diff(fc.weight, fc.get_parameter("weight_orig") * mask), 0);
  EXPECT_EQ(zeros(fc.weight), 9);
}

TEST(Prune, ComposingAppliesTheAmountToWhatIsLeft) {
  manual_seed(3);
  nn::Linear fc({.in = 10, .out = 10});
  prune::l1_unstructured(fc, "weight", 0.5);  // 50 of 100
  prune::l1_unstructured(fc, "weight", 0.5);  // 25 of the 50 left
  EXPECT_EQ(zeros(fc.get_buffer("weight_mask")), 75);
  prune::l1_unstructured(fc, "weight", 5);  // a count: 5 more
  EXPECT_EQ(zeros(fc.get_buffer("weight_mask")), 80);
  EXPECT_EQ(keys(fc), (std::vector<std::string>{"bias", "weight_orig", "weight_mask"}));
  // Structured on top: the 10 rows hold 2 nonzero entries each on average; rows zeroed entirely don't count.
  prune::ln_structured(fc, "weight", 0.5, 1, 0);
  const auto m = fc.get_buffer("weight_mask").tolist();
  int64_t empty_rows = 0;
  for (int r = 0; r < 10; ++r) {
    bool any = false;
    for (int c = 0; c < 10; ++c) any = any || m[r * 10 + c] != 0;
    empty_rows += !any;
  }
  EXPECT_GE(empty_rows, 5);
}

TEST(Prune, RoundsAsPythonAndChecksTheAmount) {
  EXPECT_EQ(prune::Amount(0.5).of(5, "t"), 2);   // round(2.5) = 2: half to even
  EXPECT_EQ(prune::Amount(0.5).of(7, "t"), 4);   // round(3.5) = 4
  EXPECT_EQ(prune::Amount(0.3).of(20, "t"), 6);
  EXPECT_EQ(prune::Amount(3).of(3, "t"), 3);
  EXPECT_THROW(prune::Amount(1.5), Error);
  EXPECT_THROW(prune::Amount(-1), Error);
  EXPECT_THROW(prune::Amount(4).of(3, "t"), Error);
  nn::Linear fc({.in = 2, .out = 2});
  EXPECT_THROW(prune::l1_unstructured(fc, "weight", 5), Error);
  EXPECT_FALSE(prune::is_pruned(fc));  // a failed prune leaves the module as it was
  EXPECT_THROW(prune::l1_unstructured(fc, "nope", 0.5), Error);
  EXPECT_THROW(prune::ln_structured(fc, "weight", 0.5, 2, 2), Error);
  EXPECT_THROW(prune::remove(fc, "weight"), Error);
}

TEST(Prune, RandomUnstructuredIsSeeded) {
  nn::Linear a({.in = 7, .out = 7}), b({.in = 7, .out = 7});
  manual_seed(9);
  prune::random_unstructured(a, "weight", 0.4);  // round(19.6) = 20
  manual_seed(9);
  prune::random_unstructured(b, "weight", 0.4);
  EXPECT_EQ(zeros(a.get_buffer("weight_mask")), 20);
  EXPECT_EQ(max_diff(a.get_buffer("weight_mask"), b.get_buffer("weight_mask")), 0);
  Generator g(11);
  nn::Linear c({.in = 7, .out = 7});
  prune::random_unstructured(c, "weight", 0.4, &g);
  EXPECT_GT(max_diff(a.get_buffer("weight_mask"), c.get_buffer("weight_mask")), 0);
}

TEST(Prune, RemoveMakesItPermanent) {
  manual_seed(4);
  nn::Linear fc({.in = 4, .out = 4});
  prune::l1_unstructured(fc, "weight", 0.5);
  const Tensor masked = fc.weight.clone();
  prune::remove(fc, "weight");
  EXPECT_FALSE(prune::is_pruned(fc));
  EXPECT_EQ(keys(fc), (std::vector<std::string>{"bias", "weight"}));  // torch appends it after bias too
  EXPECT_EQ(max_diff(fc.weight, masked), 0);
  EXPECT_TRUE(fc.weight.is_leaf());
  EXPECT_TRUE(fc.weight.requires_grad());
  // The member is the registered parameter again: training it moves the layer.
  EXPECT_EQ(fc.get_parameter("weight").impl(), fc.weight.impl());
}

TEST(Prune, GlobalUnstructuredRanksAllTensorsTogether) {
  nn::Linear a({.in = 4, .out = 2}), b({.in = 4, .out = 2});
  {
    NoGradGuard g;
    a.weight.copy_(tensor({1, 2, 3, 4, 5, 6, 7, 8}, {2, 4}));
    b.weight.copy_(tensor({-0.1, 0.2, -0.3, 0.4, 9, 10, 11, 12}, {2, 4}));
  }
  prune::global_unstructured({{&a, "weight"}, {&b, "weight"}}, 0.375);  // 6 of 16: b's four small, a's 1 and 2
  EXPECT_EQ(a.get_buffer("weight_mask").tolist(), (std::vector<double>{0, 0, 1, 1, 1, 1, 1, 1}));
  EXPECT_EQ(b.get_buffer("weight_mask").tolist(), (std::vector<double>{0, 0, 0, 0, 1, 1, 1, 1}));
  prune::global_unstructured({{&a, "weight"}, {&b, "weight"}}, 2);  // of the 10 left: a's 3 and 4
  EXPECT_EQ(a.get_buffer("weight_mask").tolist(), (std::vector<double>{0, 0, 0, 0, 1, 1, 1, 1}));
}

TEST(Prune, FoldMasksGivesThePlainState) {
  manual_seed(5);
  nn::Linear fc({.in = 3, .out = 3}), plain({.in = 3, .out = 3});
  prune::l1_unstructured(fc, "weight", 0.5);
  plain.load_state_dict(prune::fold_masks(fc.state_dict()));
  Tensor x = randn({2, 3});
  EXPECT_EQ(max_diff(plain(x), fc(x)), 0);
}

TEST(Prune, PrunedStateLoadsIntoAParametrisedModel) {
  // What `loom train --init` does with a pruned run: set up the parametrisation, then load orig and mask.
  manual_seed(6);
  auto src = models::make_model("cnn", {.channels = 1, .height = 12, .width = 12, .num_classes = 3});
  auto dst = models::make_model("cnn", {.channels = 1, .height = 12, .width = 12, .num_classes = 3});
  for (int i : {0, 3, 7, 9}) prune::l1_unstructured(*(*src)[i], "weight", 0.5);
  for (int i : {0, 3, 7, 9}) prune::identity(*(*dst)[i], "weight");
  dst->load_state_dict(src->state_dict());
  Tensor x = randn({2, 1, 12, 12});
  EXPECT_EQ(max_diff((*dst)(x), (*src)(x)), 0);
}

TEST(Shrink, NarrowedCnnComputesWhatTheMaskedOneDoes) {
  manual_seed(7);
  const models::ModelSpec spec{.channels = 1, .height = 14, .width = 14, .num_classes = 4};
  auto cnn = models::make_model("cnn", spec);
  cnn->eval();
  compress::Shrunk s = compress::shrink_channels(*cnn, {.amount = 0.5});
  EXPECT_EQ(s.widths, (std::vector<int64_t>{16, 32, 32}));
  // The registry rebuilds the same architecture from the widths.
  models::ModelSpec narrow = spec;
  narrow.widths = s.widths;
  auto rebuilt = models::make_model("cnn", narrow);
  rebuilt->load_state_dict(s.model->state_dict());
  EXPECT_LT(rebuilt->num_parameters(), cnn->num_parameters() / 3);
  // Masking the same channels (weight by ln_structured, bias by the channel mask) gives the same outputs.
  for (size_t k = 0; k < 3; ++k) {
    nn::Module& layer = *(*cnn)[std::vector<int>{0, 3, 7}[k]];
    prune::ln_structured(layer, "weight", 0.5, 2, 0);
    std::vector<double> bias_mask(size_t(layer.get_parameter("bias").numel()), 0.0);
    for (int64_t c : s.kept[k]) bias_mask[size_t(c)] = 1;
    prune::custom_from_mask(layer, "bias", tensor(bias_mask, {int64_t(bias_mask.size())}));
  }
  Tensor x = randn({3, 1, 14, 14});
  EXPECT_LT(max_diff((*rebuilt)(x), (*cnn)(x)), 1e-5);
}

TEST(Shrink, MlpAndBadModels) {
  manual_seed(8);
  auto mlp = models::make_model("mlp", {.channels = 1, .height = 4, .width = 4, .num_classes = 3});
  compress::Shrunk s = compress::shrink_channels(*mlp, {.amount = 0.25});
  EXPECT_EQ(s.widths, (std::vector<int64_t>{384, 192}));
  auto lin = models::make_model("linreg", {.features = 3});
  EXPECT_THROW(compress::shrink_channels(*lin), Error);
  prune::l1_unstructured(*(*mlp)[1], "weight", 0.1);
  EXPECT_THROW(compress::shrink_channels(*mlp), Error);  // masks first need prune::remove
  EXPECT_THROW(compress::shrink_channels(*models::make_model("cnn", {.channels = 1, .height = 12, .width = 12}),
                                         {.amount = 1.0}),
               Error);
}
