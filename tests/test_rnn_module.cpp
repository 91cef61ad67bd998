// Recurrent modules as modules: PyTorch's parameter names, shapes and reprs, errors that name the layer and the
// shapes, dropout between layers, and what forward returns.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "loom/loom.h"
#include "test_rnn_helpers.h"

using namespace loom;

namespace {

// Expects fn to throw loom::Error whose message contains every one of `parts`.
void expect_error(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "expected loom::Error containing \"" << parts[0] << "\"";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "\"" << p << "\" not in: " << msg;
  }
}

std::vector<std::string> keys(const nn::Module& m) {
  std::vector<std::string> k;
  for (const auto& [name, t] : m.named_parameters()) k.push_back(name);
  return k;
}

}  // namespace

TEST(RnnModule, ParameterNamesShapesAndInitRangeFollowPyTorch) {
  manual_seed(1);
  nn::LSTM lstm({.input_size = 3, .hidden_size = 4, .num_layers = 2, .bidirectional = true});
  const std::vector<std::string> expected{
      "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_ih_l0_reverse", "weight_hh_l0_reverse",
      "bias_ih_l0_reverse", "bias_hh_l0_reverse", "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1",
      "weight_ih_l1_reverse", "weight_hh_l1_reverse", "bias_ih_l1_reverse", "bias_hh_l1_reverse"};
  EXPECT_EQ(keys(lstm), expected);
  EXPECT_EQ(lstm.state_dict().keys(), expected);
  EXPECT_EQ(lstm.get_parameter("weight_ih_l0").shape(), Shape({16, 3}));
  EXPECT_EQ(lstm.get_parameter("weight_ih_l1_reverse").shape(), Shape({16, 8}));  // both directions feed layer 1
  EXPECT_EQ(lstm.get_parameter("weight_hh_l1").shape(), Shape({16, 4}));
  EXPECT_TRUE(lstm.weight_hh(1, 1).is_same(lstm.get_parameter("weight_hh_l1_reverse")));
  EXPECT_TRUE(lstm.bias_ih(0, 1).is_same(lstm.get_parameter("bias_ih_l0_reverse")));
  for (const Tensor& w : lstm.parameters()) {
    EXPECT_LE(w.abs().max().item(), 0.5);  // U(-1/sqrt(4), 1/sqrt(4))
    EXPECT_GT(w.abs().max().item(), 0.2);
  }
  nn::GRU gru({.input_size = 5, .hidden_size = 2, .bias = false});
  EXPECT_EQ(keys(gru), (std::vector<std::string>{"weight_ih_l0", "weight_hh_l0"}));
  EXPECT_EQ(gru.weight_ih(0).shape(), Shape({6, 5}));
  EXPECT_FALSE(gru.bias_hh(0).defined());
  nn::RNN rnn({.input_size = 5, .hidden_size = 2});
  EXPECT_EQ(rnn.weight_hh(0).shape(), Shape({2, 2}));
  nn::LSTMCell cell({.input_size = 3, .hidden_size = 4});
  EXPECT_EQ(keys(cell), (std::vector<std::string>{"weight_ih", "weight_hh", "bias_ih", "bias_hh"}));
  EXPECT_EQ(cell.weight_hh.shape(), Shape({16, 4}));
  EXPECT_EQ(nn::GRUCell({.input_size = 3, .hidden_size = 4}).weight_ih.shape(), Shape({12, 3}));
}

TEST(RnnModule, ReprMatchesPyTorch) {
  EXPECT_EQ(nn::LSTM({.input_size = 10, .hidden_size = 20, .num_layers = 2, .batch_first = true, .dropout = 0.5,
                      .bidirectional = true})
                .repr(),
            "LSTM(10, 20, num_layers=2, batch_first=True, dropout=0.5, bidirectional=True)");
  EXPECT_EQ(nn::RNN({.input_size = 3, .hidden_size = 4, .nonlinearity = "relu", .bias = false}).repr(),
            "RNN(3, 4, bias=False)");
  EXPECT_EQ(nn::GRU({.input_size = 3, .hidden_size = 4}).repr(), "GRU(3, 4)");
  EXPECT_EQ(nn::RNNCell({.input_size = 3, .hidden_size = 4, .nonlinearity = "relu"}).repr(),
            "RNNCell(3, 4, nonlinearity=relu)");
  EXPECT_EQ(nn::LSTMCell({.input_size = 3, .hidden_size = 4, .bias = false}).repr(), "LSTMCell(3, 4, bias=False)");
  EXPECT_EQ(nn::GRUCell({.input_size = 2, .hidden_size = 5}).repr(), "GRUCell(2, 5)");
}

TEST(RnnModule, OutputsAndStatesHavePyTorchShapes) {
  manual_seed(2);
  nn::LSTM lstm({.input_size = 3, .hidden_size = 4, .num_layers = 2, .batch_first = true, .bidirectional = true});
  auto [y, h, c] = lstm.forward(randn({5, 7, 3}), {});
  EXPECT_EQ(y.shape(), Shape({5, 7, 8}));
  EXPECT_EQ(h.shape(), Shape({4, 5, 4}));
  EXPECT_EQ(c.shape(), Shape({4, 5, 4}));
  EXPECT_EQ(lstm(randn({5, 7, 3})).shape(), Shape({5, 7, 8}));
  // The last layer's forward h_n is the output at the last step; its reverse h_n the output at step 0.
  Tensor x = randn({5, 7, 3});
  auto r = lstm.forward(x, {});
  EXPECT_TRUE(allclose(r.h_n[2], r.output.select(1, 6).narrow(1, 0, 4)));
  EXPECT_TRUE(allclose(r.h_n[3], r.output.select(1, 0).narrow(1, 4, 4)));
  nn::GRU gru({.input_size = 3, .hidden_size = 2});
  auto g = gru.forward(randn({6, 3}), randn({1, 2}));  // unbatched (T, I)
  EXPECT_EQ(g.output.shape(), Shape({6, 2}));
  EXPECT_EQ(g.h_n.shape(), Shape({1, 2}));
}

TEST(RnnModule, LengthsZeroThePaddingAndKeepLastValidStates) {
  manual_seed(3);
  nn::GRU gru({.input_size = 2, .hidden_size = 3, .bidirectional = true});
  Tensor x = randn({5, 2, 2});
  auto packed = gru.forward(x, {}, test::lengths_of({5, 3}));
  EXPECT_TRUE(equal(packed.output.slice(0, 3, 5).select(1, 1), zeros({2, 6})));
  // Sequence 1 alone, cut to its 3 steps, gives the same outputs and final states.
  auto alone = gru.forward(x.slice(0, 0, 3).narrow(1, 1, 1), {});
  EXPECT_TRUE(allclose(packed.output.slice(0, 0, 3).narrow(1, 1, 1), alone.output, 1e-5, 1e-6));
  EXPECT_TRUE(allclose(packed.h_n.narrow(1, 1, 1), alone.h_n, 1e-5, 1e-6));
  // Padding values do not matter.
  Tensor x2 = x.clone();
  {
    NoGradGuard ng;
    x2.narrow(0, 3, 2).narrow(1, 1, 1).fill_(100.0);
  }
  auto packed2 = gru.forward(x2, {}, test::lengths_of({5, 3}));
  EXPECT_TRUE(equal(packed.output, packed2.output));
  EXPECT_TRUE(equal(packed.h_n, packed2.h_n));
}

TEST(RnnModule, DropoutBetweenLayersOnlyInTraining) {
  manual_seed(4);
  nn::LSTM lstm({.input_size = 4, .hidden_size = 16, .num_layers = 2, .dropout = 0.5});
  Tensor x = randn({6, 3, 4});
  lstm.eval();
  Tensor e1 = lstm(x), e2 = lstm(x);
  EXPECT_TRUE(equal(e1, e2));  // eval mode: deterministic
  lstm.train();
  manual_seed(9);
  Tensor t1 = lstm(x);
  manual_seed(9);
  Tensor t2 = lstm(x);
  EXPECT_TRUE(equal(t1, t2));   // the same generator state gives the same masks
  EXPECT_FALSE(allclose(t1, e1));  // dropout changed layer 2's input
  Tensor t3 = lstm(x);
  EXPECT_FALSE(allclose(t3, t1));  // fresh masks
  // Gradients flow through the dropped-out path.
  Tensor xg = x.clone().requires_grad_(true);
  lstm(xg).sum().backward();
  EXPECT_GT(xg.grad().abs().sum().item(), 0.0);
  // A single layer has nothing between layers to drop.
  nn::GRU one({.input_size = 4, .hidden_size = 5, .dropout = 0.5});
  Tensor o1 = one(x);
  one.eval();
  EXPECT_TRUE(equal(o1, one(x)));
}

TEST(RnnModule, WrongShapesNameTheLayerAndShapes) {
  manual_seed(5);
  nn::LSTM lstm({.input_size = 4, .hidden_size = 6, .num_layers = 2});
  expect_error([&] { lstm(randn({3, 2, 5})); },
               {"LSTM(4, 6, num_layers=2)", "input_size", "Expected 4, got 5", "[3, 2, 5]"});
  expect_error([&] { lstm(randn({2, 3, 2, 4})); }, {"LSTM(4, 6, num_layers=2)", "[2, 3, 2, 4]"});
  expect_error([&] { lstm.forward(randn({3, 2, 4}), randn({1, 2, 6})); },
               {"LSTM(4, 6, num_layers=2)", "h0", "[2, 2, 6]", "[1, 2, 6]"});
  expect_error([&] { lstm.forward(randn({3, 2, 4}), randn({2, 2, 6}), randn({2, 3, 6})); },
               {"LSTM(4, 6, num_layers=2)", "c0", "[2, 2, 6]", "[2, 3, 6]"});
  expect_error([&] { lstm(randn({3, 2, 4}, {.dtype = DType::f64})); }, {"LSTM(4, 6, num_layers=2)", "dtype"});
  nn::GRU gru({.input_size = 2, .hidden_size = 3, .batch_first = true, .bidirectional = true});
  expect_error([&] { gru.forward(randn({2, 5, 2}), randn({1, 2, 3})); },
               {"GRU(2, 3, batch_first=True, bidirectional=True)", "[2, 2, 3]", "[1, 2, 3]"});
  expect_error([&] { gru.forward(randn({2, 5, 2}), {}, test::lengths_of({5, 0})); }, {"GRU(2, 3", "[1, 5]", "got 0"});
  expect_error([&] { gru.forward(randn({2, 5, 2}), {}, test::lengths_of({6, 1})); }, {"GRU(2, 3", "got 6"});
  expect_error([&] { gru.forward(randn({2, 5, 2}), {}, test::lengths_of({5, 2, 1})); }, {"GRU(2, 3", "[3]"});
  expect_error([&] { gru.forward(randn({2, 5, 2}), {}, ones({2})); }, {"GRU(2, 3", "integer"});
  expect_error([&] { gru.forward(randn({5, 2}), {}, test::lengths_of({5})); }, {"GRU(2, 3", "batched"});
  nn::RNN rnn({.input_size = 2, .hidden_size = 3});
  expect_error([&] { rnn.forward(randn({4, 2}), randn({1, 2, 3})); }, {"RNN(2, 3)", "h0", "[1, 3]", "[1, 2, 3]"});
  nn::LSTMCell cell({.input_size = 3, .hidden_size = 2});
  expect_error([&] { cell(randn({4, 5})); }, {"LSTMCell(3, 2)", "input_size", "[4, 5]"});
  expect_error([&] { cell.forward(randn({4, 3}), randn({4, 3}), {}); }, {"LSTMCell(3, 2)", "[4, 2]", "[4, 3]"});
  nn::GRUCell gcell({.input_size = 3, .hidden_size = 2});
  expect_error([&] { gcell.forward(randn({3}), randn({2, 2})); }, {"GRUCell(3, 2)", "[2]", "[2, 2]"});
  // The layer function checks its own arguments too.
  expect_error([&] {
    nn::rnn_layer({.mode = nn::RNNMode::GRU, .x = randn({3, 2, 4}), .w_ih = randn({9, 5}), .w_hh = randn({9, 3})});
  }, {"GRU layer", "weight_ih", "[9, 5]", "[3, 2, 4]"});
}

TEST(RnnModule, BadOptionsAreRejected) {
  expect_error([] { nn::LSTM({.input_size = 3, .hidden_size = 4, .dropout = 1.5}); }, {"LSTM", "dropout", "1.5"});
  expect_error([] { nn::GRU({.input_size = 3, .hidden_size = 4, .num_layers = 0}); }, {"GRU", "num_layers"});
  expect_error([] { nn::RNN({.input_size = 3, .hidden_size = 4, .nonlinearity = "sigmoid"}); },
               {"RNN", "nonlinearity", "sigmoid"});
  expect_error([] { nn::RNNCell({.input_size = 3, .hidden_size = 4, .nonlinearity = "gelu"}); },
               {"RNNCell", "gelu"});
  expect_error([] { nn::LSTM({.input_size = 0, .hidden_size = 4}); }, {"LSTM", "input_size"});
}

TEST(RnnModule, ConvertsToDoubleAndBackwardRetainsOrFreesTheGraph) {
  manual_seed(6);
  nn::LSTM lstm({.input_size = 3, .hidden_size = 4});
  lstm.to(DType::f64);
  Tensor x = randn({3, 2, 3}, {.dtype = DType::f64});
  auto r = lstm.forward(x, {});
  EXPECT_EQ(r.output.dtype(), DType::f64);
  EXPECT_EQ(r.c_n.dtype(), DType::f64);
  Tensor loss = r.output.sum() + r.c_n.sum();
  loss.backward();
  EXPECT_THROW(loss.backward(), Error);  // the graph was freed, as in PyTorch
  EXPECT_EQ(lstm.weight_ih(0).grad().dtype(), DType::f64);
  // With retain_graph the saved buffers survive, and a second backward adds the same gradients again.
  lstm.zero_grad(true);
  Tensor xg = x.clone().requires_grad_(true);
  auto r2 = lstm.forward(xg, {});
  Tensor loss2 = (r2.output * r2.output).sum() + r2.h_n.sum();
  loss2.backward({}, /*retain_graph=*/true);
  const Tensor once = lstm.weight_hh(0).grad().clone(), gx = xg.grad().clone();
  loss2.backward();
  EXPECT_TRUE(allclose(lstm.weight_hh(0).grad(), once * 2.0, 1e-12, 1e-14));
  EXPECT_TRUE(allclose(xg.grad(), gx * 2.0, 1e-12, 1e-14));
}
