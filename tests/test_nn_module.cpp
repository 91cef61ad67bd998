// nn::Module machinery: registration, PyTorch-compatible names and order, state dicts, modes, printing,
// summary. Key lists and reprs are compared with torch's through the oracle.
#include <gtest/gtest.h>

#include <functional>
#include <sstream>

#include "loom/loom.h"
#include "support/torch_oracle.h"

using namespace loom;
using loom::test::torch_run;

namespace {

// The oracle returns tensors only, so torch sends strings as int64 character codes.
std::string torch_string(const std::string& expr) {
  auto r = torch_run("s = " + expr + "\nout['s'] = torch.tensor(list(s.encode()), dtype=torch.int64)", {});
  std::string s;
  for (double c : r["s"].tolist()) s += char(int(c));
  return s;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "\n" : "") + v[i];
  return s;
}

std::vector<std::string> names(const nn::NamedTensors& nt) {
  std::vector<std::string> out;
  for (const auto& [k, t] : nt) out.push_back(k);
  return out;
}

// The seed CNN and its torch twin.
nn::Sequential make_cnn() {
  return nn::Sequential(nn::Conv2d({.in = 1, .out = 4, .kernel_size = 3}), nn::BatchNorm2d({.num_features = 4}),
                        nn::ReLU(), nn::MaxPool2d({.kernel_size = 2}), nn::Flatten(),
                        nn::Linear({.in = 4 * 3 * 3, .out = 10}));
}
const char* kTorchCnn =
    "nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), "
    "nn.Linear(36, 10))";

struct Block : nn::Module {
  std::shared_ptr<nn::Linear> fc = register_module("fc", std::make_shared<nn::Linear>(nn::LinearOptions{3, 2}));
  Tensor scale = register_parameter("scale", ones({2}));
  Tensor count = register_buffer("count", zeros({1}));
  Tensor scratch = register_buffer("scratch", zeros({1}), /*persistent=*/false);
  Tensor forward(const Tensor& x) override { return (*fc)(x) * scale; }
};

}  // namespace

TEST(NNModule, RegistrationOrderAndNames) {
  Block b;
  EXPECT_EQ(join(names(b.named_parameters())), "scale\nfc.weight\nfc.bias");
  EXPECT_EQ(join(names(b.named_parameters(false))), "scale");
  EXPECT_EQ(join(names(b.named_buffers())), "count\nscratch");
  EXPECT_EQ(join(b.state_dict().keys()), "scale\ncount\nfc.weight\nfc.bias");  // non-persistent left out
  EXPECT_EQ(b.children().size(), 1u);
  EXPECT_EQ(b.named_modules().size(), 2u);
  EXPECT_EQ(b.named_modules()[1].first, "fc");
  EXPECT_TRUE(b.get_parameter("fc.weight").is_same(b.fc->weight));
  EXPECT_TRUE(b.get_submodule("fc") == b.fc);
  EXPECT_THROW(b.get_parameter("fc.nope"), Error);
  EXPECT_THROW(b.register_parameter("a.b", ones({1})), Error);
  EXPECT_THROW(b.register_buffer("fc", ones({1})), Error);  // taken by a module
  for (const auto& p : b.parameters()) EXPECT_TRUE(p.requires_grad() && p.is_leaf());
  // The member and the registry hold the same tensor.
  EXPECT_TRUE(b.named_parameters()[1].second.is_same(b.fc->weight));
  EXPECT_EQ(b.name(), "Block");
}

TEST(NNModule, SharedModulesAreListedOnceInParametersButTwiceInStateDict) {
  auto fc = std::make_shared<nn::Linear>(nn::LinearOptions{2, 2});
  nn::Sequential s({fc, fc});
  EXPECT_EQ(join(names(s.named_parameters())), "0.weight\n0.bias");
  EXPECT_EQ(s.num_parameters(), 6);
  EXPECT_EQ(s.state_dict().size(), 4u);
}

TEST(NNModule, SequentialKeysMatchTorch) {
  auto cnn = make_cnn();
  EXPECT_EQ(join(names(cnn.named_parameters())),
            torch_string("'\\n'.join(k for k, _ in " + std::string(kTorchCnn) + ".named_parameters())"));
  EXPECT_EQ(join(names(cnn.named_buffers())),
            torch_string("'\\n'.join(k for k, _ in " + std::string(kTorchCnn) + ".named_buffers())"));
  EXPECT_EQ(join(cnn.state_dict().keys()),
            torch_string("'\\n'.join(" + std::string(kTorchCnn) + ".state_dict().keys())"));
  EXPECT_EQ(cnn.num_parameters(), int64_t(torch_run("m = " + std::string(kTorchCnn) +
                                                    "\nout['n'] = torch.tensor(sum(p.numel() for p in m.parameters()))",
                                                    {})["n"].item()));
  EXPECT_EQ(cnn.state_dict().at("1.num_batches_tracked").dtype(), DType::i64);
}

TEST(NNModule, ReprMatchesTorch) {
  auto cnn = make_cnn();
  EXPECT_EQ(cnn.repr(), torch_string("repr(" + std::string(kTorchCnn) + ")"));
  nn::Sequential more(
      nn::Conv2d({.in = 4, .out = 8, .kernel_size = {3, 5}, .stride = 2, .padding = {1, 2}, .dilation = 2, .groups = 2,
                  .bias = false}),
      nn::Conv1d({.in = 2, .out = 4, .kernel_size = 3, .padding = 1}), nn::AvgPool2d({.kernel_size = 3, .stride = 1}),
      nn::AdaptiveAvgPool2d({.output_size = 1}), nn::LeakyReLU({.negative_slope = 0.2}), nn::ELU(),
      nn::GELU({.approximate = "tanh"}), nn::SiLU(), nn::Sigmoid(), nn::Tanh(), nn::Softmax({.dim = 1}),
      nn::LogSoftmax({.dim = 1}), nn::Dropout({.p = 0.25}),
      nn::BatchNorm1d({.num_features = 3, .eps = 1e-3, .momentum = std::nullopt, .affine = false}),
      nn::LayerNorm({.normalized_shape = {4, 5}}), nn::GroupNorm({.num_groups = 2, .num_channels = 8}),
      nn::Embedding({.num_embeddings = 10, .embedding_dim = 3, .padding_idx = 0}), nn::Identity(),
      nn::Linear({.in = 3, .out = 2, .bias = false}));
  EXPECT_EQ(more.repr(),
            torch_string("repr(nn.Sequential(nn.Conv2d(4, 8, (3, 5), stride=2, padding=(1, 2), dilation=2, groups=2, "
                         "bias=False), nn.Conv1d(2, 4, 3, padding=1), nn.AvgPool2d(3, stride=1), "
                         "nn.AdaptiveAvgPool2d(1), nn.LeakyReLU(0.2), nn.ELU(), nn.GELU(approximate='tanh'), "
                         "nn.SiLU(), nn.Sigmoid(), nn.Tanh(), "
                         "nn.Softmax(dim=1), nn.LogSoftmax(dim=1), nn.Dropout(0.25), "
                         "nn.BatchNorm1d(3, eps=1e-3, momentum=None, affine=False), nn.LayerNorm((4, 5)), "
                         "nn.GroupNorm(2, 8), nn.Embedding(10, 3, padding_idx=0), nn.Identity(), "
                         "nn.Linear(3, 2, bias=False)))"));
  // A custom module prints its children indented, as PyTorch does.
  Block b;
  EXPECT_EQ(b.repr(), "Block(\n  (fc): Linear(in_features=3, out_features=2, bias=True)\n)");
  std::ostringstream os;
  os << *b.fc;
  EXPECT_EQ(os.str(), "Linear(in_features=3, out_features=2, bias=True)");
}

TEST(NNModule, StateDictRoundTrip) {
  manual_seed(1);
  auto a = make_cnn();
  auto b = make_cnn();
  // Change a's buffers so they are not the defaults.
  a.train();
  a(randn({4, 1, 8, 8}));
  EXPECT_FALSE(equal(a.state_dict().at("0.weight"), b.state_dict().at("0.weight")));
  b.load_state_dict(a.state_dict());
  for (const auto& [k, t] : a.state_dict()) EXPECT_TRUE(equal(t, b.state_dict().at(k))) << k;
  EXPECT_EQ(b.state_dict().at("1.num_batches_tracked").item(), 1.0);
  // The load copies: b's tensors stay its own (the member handles still see the values).
  auto bw = b.at<nn::Conv2d>(0)->weight;
  EXPECT_TRUE(equal(bw, a.at<nn::Conv2d>(0)->weight));
  EXPECT_FALSE(bw.is_same(a.at<nn::Conv2d>(0)->weight));
  a.eval();
  b.eval();
  Tensor x = randn({2, 1, 8, 8});
  EXPECT_TRUE(equal(a(x), b(x)));
  // state_dict shares storage with the model, as PyTorch's does.
  auto sd = a.state_dict();
  {
    NoGradGuard g;
    a.at<nn::Linear>(5)->bias.fill_(3.0);
  }
  EXPECT_EQ(sd.at("5.bias").tolist()[0], 3.0);
}

TEST(NNModule, LoadStateDictErrors) {
  auto m = make_cnn();
  auto good = make_cnn().state_dict();

  nn::StateDict missing = good;
  missing.erase("5.bias");
  try {
    m.load_state_dict(missing);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("Error(s) in loading state_dict for Sequential"), std::string::npos) << msg;
    EXPECT_NE(msg.find("Missing key(s) in state_dict: \"5.bias\""), std::string::npos) << msg;
  }

  nn::StateDict extra = good;
  extra.insert("7.weight", ones({2}));
  try {
    m.load_state_dict(extra);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("Unexpected key(s) in state_dict: \"7.weight\""), std::string::npos) << msg;
  }

  nn::StateDict wrong = good;
  wrong.insert("0.weight", zeros({4, 1, 5, 5}));
  const Tensor before = m.state_dict().at("5.weight").clone();
  try {
    m.load_state_dict(wrong);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("size mismatch for 0.weight (in Conv2d)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[4, 1, 5, 5]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[4, 1, 3, 3]"), std::string::npos) << msg;
  }
  // Nothing was copied by the failed loads.
  EXPECT_TRUE(equal(m.state_dict().at("5.weight"), before));

  // strict = false reports instead of throwing, and loads what matches.
  auto r = m.load_state_dict(missing, /*strict=*/false);
  EXPECT_EQ(r.missing_keys, std::vector<std::string>{"5.bias"});
  EXPECT_TRUE(r.unexpected_keys.empty());
  EXPECT_TRUE(equal(m.state_dict().at("5.weight"), good.at("5.weight")));
  EXPECT_THROW(m.load_state_dict(wrong, false), Error);  // shape mismatches throw either way
}

TEST(NNModule, TrainEvalRecursive) {
  auto m = make_cnn();
  EXPECT_TRUE(m.is_training());
  m.eval();
  for (auto* c : m.modules()) EXPECT_FALSE(c->is_training());
  m.train();
  for (auto* c : m.modules()) EXPECT_TRUE(c->is_training());
  // Eval mode leaves BatchNorm's running stats alone; training mode updates them.
  auto bn = m.at<nn::BatchNorm2d>(1);
  m.eval();
  m(randn({2, 1, 8, 8}));
  EXPECT_EQ(bn->num_batches_tracked.item(), 0.0);
  EXPECT_TRUE(equal(bn->running_mean, zeros({4})));
  m.train();
  m(randn({2, 1, 8, 8}));
  EXPECT_EQ(bn->num_batches_tracked.item(), 1.0);
  EXPECT_FALSE(equal(bn->running_mean, zeros({4})));
}

TEST(NNModule, NumParametersAndFreezing) {
  auto m = make_cnn();
  const int64_t expect = (4 * 9 + 4) + (4 + 4) + (36 * 10 + 10);
  EXPECT_EQ(m.num_parameters(), expect);
  m[0]->requires_grad_(false);
  EXPECT_EQ(m.num_parameters(/*trainable_only=*/true), expect - 40);
  EXPECT_EQ(m.num_parameters(), expect);
}

TEST(NNModule, ZeroGrad) {
  nn::Linear fc({.in = 3, .out = 2});
  fc(ones({4, 3})).sum().backward();
  ASSERT_TRUE(fc.weight.grad().defined());
  fc.zero_grad();
  ASSERT_TRUE(fc.weight.grad().defined());
  EXPECT_TRUE(equal(fc.weight.grad(), zeros({2, 3})));
  fc.zero_grad(/*set_to_none=*/true);
  EXPECT_FALSE(fc.weight.grad().defined());
  EXPECT_FALSE(fc.bias.grad().defined());
}

TEST(NNModule, ToDTypeConvertsInPlace) {
  auto m = make_cnn();
  auto conv = m.at<nn::Conv2d>(0);
  const Tensor w32 = conv->weight.clone();
  m.to(DType::f64);
  EXPECT_EQ(conv->weight.dtype(), DType::f64);  // the member sees the conversion
  for (const auto& p : m.parameters()) EXPECT_EQ(p.dtype(), DType::f64);
  EXPECT_EQ(m.get_buffer("1.running_var").dtype(), DType::f64);
  EXPECT_EQ(m.get_buffer("1.num_batches_tracked").dtype(), DType::i64);  // integer buffers stay
  EXPECT_TRUE(allclose(conv->weight.to(DType::f32), w32));
  Tensor y = m(randn({2, 1, 8, 8}, {.dtype = DType::f64}));
  EXPECT_EQ(y.dtype(), DType::f64);
  y.sum().backward();
  EXPECT_EQ(conv->weight.grad().dtype(), DType::f64);
}

TEST(NNModule, Summary) {
  auto m = make_cnn();
  const std::string s = m.summary({2, 1, 8, 8});
  EXPECT_NE(s.find("Model: \"Sequential\""), std::string::npos) << s;
  EXPECT_NE(s.find("Layer (type)"), std::string::npos) << s;
  EXPECT_NE(s.find("0 (Conv2d)"), std::string::npos) << s;
  EXPECT_NE(s.find("[2, 4, 6, 6]"), std::string::npos) << s;
  EXPECT_NE(s.find("4 (Flatten)"), std::string::npos) << s;
  EXPECT_NE(s.find("[2, 36]"), std::string::npos) << s;
  EXPECT_NE(s.find("5 (Linear)"), std::string::npos) << s;
  EXPECT_NE(s.find("370"), std::string::npos) << s;  // Linear's 36 * 10 + 10
  EXPECT_NE(s.find("Total params: 418"), std::string::npos) << s;
  EXPECT_NE(s.find("Trainable params: 418"), std::string::npos) << s;
  EXPECT_NE(s.find("Non-trainable params: 0"), std::string::npos) << s;
  // The probe neither trains BatchNorm nor changes modes, and the hooks are gone.
  EXPECT_EQ(m.get_buffer("1.num_batches_tracked").item(), 0.0);
  EXPECT_TRUE(m.is_training());
  EXPECT_EQ(m.summary({2, 1, 8, 8}), s);
  // Thousands separators in totals.
  nn::Sequential big(nn::Linear({.in = 1000, .out = 1000}));
  big[0]->requires_grad_(false);
  const std::string t = big.summary({1, 1000});
  EXPECT_NE(t.find("Total params: 1,001,000"), std::string::npos) << t;
  EXPECT_NE(t.find("Non-trainable params: 1,001,000"), std::string::npos) << t;
}

TEST(NNModule, ForwardHooksAndErrors) {
  nn::Linear fc({.in = 3, .out = 2});
  int calls = 0;
  Shape seen;
  const int64_t id = fc.register_forward_hook([&](nn::Module&, const Tensor&, const Tensor& y) {
    ++calls;
    seen = y.shape();
  });
  fc(ones({5, 3}));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(seen, (Shape{5, 2}));
  fc.remove_forward_hook(id);
  fc(ones({5, 3}));
  EXPECT_EQ(calls, 1);

  try {
    fc(ones({5, 4}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("Linear(in_features=3, out_features=2, bias=True)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[5, 4]"), std::string::npos) << msg;
  }
  nn::ModuleList list(nn::Linear({.in = 3, .out = 2}));
  EXPECT_THROW(list(ones({1, 3})), Error);  // ModuleList has no forward
  EXPECT_THROW(list[3], Error);
  EXPECT_THROW(nn::Linear({.in = 0, .out = 2}), Error);
  EXPECT_THROW(nn::GroupNorm({.num_groups = 3, .num_channels = 8}), Error);
}

TEST(NNModule, ModuleListNamesAndTypedAccess) {
  struct Stack : nn::Module {
    std::shared_ptr<nn::ModuleList> layers = register_module("layers", std::make_shared<nn::ModuleList>());
  } s;
  s.layers->push_back(nn::Linear({.in = 2, .out = 2}));
  s.layers->push_back(std::make_shared<nn::LayerNorm>(nn::LayerNormOptions{.normalized_shape = {2}}));
  EXPECT_EQ(join(names(s.named_parameters())), "layers.0.weight\nlayers.0.bias\nlayers.1.weight\nlayers.1.bias");
  EXPECT_EQ(s.layers->at<nn::LayerNorm>(-1)->options.normalized_shape, (Shape{2}));
  EXPECT_THROW(s.layers->at<nn::Conv2d>(0), Error);
}

TEST(NNModule, StateDictContainer) {
  nn::StateDict sd{{"b", ones({1})}, {"a", zeros({2})}};
  sd.insert("c", ones({3}));
  sd.insert("b", zeros({4}));  // replaced in place
  EXPECT_EQ(join(sd.keys()), "b\na\nc");
  EXPECT_EQ(sd.at("b").shape(), (Shape{4}));
  EXPECT_TRUE(sd.erase("a"));
  EXPECT_FALSE(sd.erase("a"));
  EXPECT_EQ(join(sd.keys()), "b\nc");
  EXPECT_EQ(sd.at("c").numel(), 3);
  EXPECT_EQ(sd.find("zz"), nullptr);
  EXPECT_THROW(sd.at("zz"), Error);
}

TEST(NNModule, LayerShapeErrorsNameTheLayer) {
  auto expect_msg = [](const std::function<void()>& f, const std::vector<std::string>& parts) {
    try {
      f();
      ADD_FAILURE() << "expected loom::Error";
    } catch (const Error& e) {
      for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
    }
  };
  nn::Conv2d conv({.in = 3, .out = 8, .kernel_size = 3});
  expect_msg([&] { conv(zeros({2, 4, 8, 8})); }, {"Conv2d(3, 8, kernel_size=(3, 3)", "[2, 4, 8, 8]"});
  nn::BatchNorm2d bn({.num_features = 4});
  expect_msg([&] { bn(zeros({2, 3, 4, 4})); }, {"BatchNorm2d(4,", "[2, 3, 4, 4]"});
  expect_msg([&] { bn(zeros({2, 4})); }, {"BatchNorm2d", "4D input"});
  expect_msg([&] { bn(zeros({1, 4, 1, 1})); }, {"more than 1 value per channel"});
  nn::LayerNorm ln({.normalized_shape = {5}});
  expect_msg([&] { ln(zeros({2, 4})); }, {"LayerNorm((5,)", "[2, 4]"});
  nn::GroupNorm gn({.num_groups = 2, .num_channels = 4});
  expect_msg([&] { gn(zeros({2, 6, 3})); }, {"GroupNorm(2, 4", "[2, 6, 3]"});
  nn::MaxPool2d mp({.kernel_size = 2});
  expect_msg([&] { mp(zeros({4, 4})); }, {"MaxPool2d(kernel_size=2", "[4, 4]"});
}

TEST(NNModule, ForwardPreHooksAndDeletingEntries) {
  nn::Linear fc({.in = 2, .out = 2});
  std::vector<std::string> calls;
  const int64_t a = fc.register_forward_pre_hook([&](nn::Module&, const Tensor& x) {
    calls.push_back("pre " + std::to_string(x.size(0)));
  });
  fc.register_forward_hook([&](nn::Module&, const Tensor&, const Tensor&) { calls.push_back("post"); });
  fc(zeros({3, 2}));
  EXPECT_EQ(calls, (std::vector<std::string>{"pre 3", "post"}));
  EXPECT_EQ(fc.forward_pre_hook_ids(), std::vector<int64_t>{a});
  ASSERT_NE(fc.forward_pre_hook(a), nullptr);
  EXPECT_EQ(fc.forward_pre_hook(a + 100), nullptr);
  fc.remove_forward_pre_hook(a);
  calls.clear();
  fc(zeros({1, 2}));
  EXPECT_EQ(calls, std::vector<std::string>{"post"});
  // Deleting a parameter or buffer takes it out of the registry; the member keeps its handle.
  const Tensor w = fc.delete_parameter("weight");
  EXPECT_EQ(w.impl(), fc.weight.impl());
  EXPECT_EQ(fc.named_parameters().size(), 1u);
  EXPECT_THROW(fc.delete_parameter("weight"), Error);
  fc.register_buffer("extra", zeros({1}));
  fc.delete_buffer("extra");
  EXPECT_TRUE(fc.buffers().empty());
  EXPECT_THROW(fc.delete_buffer("extra"), Error);
}
