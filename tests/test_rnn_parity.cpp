// Recurrent layers against PyTorch 1.13 (float32): the torch module gets loom's parameters by name, both run the
// same input, initial states and upstream gradients, and output, h_n, c_n, the input and state gradients and every
// parameter gradient must agree within 1e-5 relative. With lengths torch runs pack_padded_sequence(...,
// enforce_sorted=False) and pad_packed_sequence(..., total_length=T).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "loom/loom.h"
#include "support/torch_oracle.h"
#include "test_rnn_helpers.h"

using namespace loom;
using loom::test::RnnCase;
using loom::test::torch_run;

namespace {

struct Sizes {
  int64_t T = 5, N = 3, I = 4, H = 6;
};

void expect_rnn_parity(const RnnCase& c, const Sizes& z, bool states, const std::vector<int64_t>& lengths,
                       bool unbatched = false) {
  const std::string what = test::case_name(c) + (states ? " with h0" : "") + (lengths.empty() ? "" : " with lengths") +
                           (unbatched ? " unbatched" : "");
  SCOPED_TRACE(what);
  auto m = test::make_rnn(c, z.I, z.H);
  const bool lstm = c.mode == nn::RNNMode::LSTM;
  const int64_t S = c.layers * (c.bidirectional ? 2 : 1);
  const Shape state = unbatched ? Shape{S, z.H} : Shape{S, z.N, z.H};
  Tensor x = unbatched ? randn({z.T, z.I}) : test::seq_input(c, z.T, z.N, z.I, DType::f32);
  x.requires_grad_(true);
  Tensor h0 = states ? randn(state).requires_grad_(true) : Tensor();
  Tensor c0 = states && lstm ? randn(state).requires_grad_(true) : Tensor();
  const Tensor len = lengths.empty() ? Tensor() : test::lengths_of(lengths);
  nn::LSTMOutput r = test::call(*m, x, h0, c0, len);
  Tensor gy = randn(r.output.shape()), gh = randn(r.h_n.shape()), gc = lstm ? randn(r.c_n.shape()) : Tensor();
  Tensor loss = (r.output * gy).sum() + (r.h_n * gh).sum();
  if (lstm) loss = loss + (r.c_n * gc).sum();
  loss.backward();

  std::vector<test::Arg> args{{"x", x.detach(), true}, {"gy", gy}, {"gh", gh}};
  std::string code = "m = " + test::torch_ctor(c, z.I, z.H) + "\nwith torch.no_grad():\n    pass\n";
  const auto params = m->named_parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    args.push_back({"p" + std::to_string(i), params[i].second.detach()});
    code += "    m.get_parameter('" + params[i].first + "').copy_(p" + std::to_string(i) + ")\n";
  }
  std::string hx = "None";
  if (states) {
    args.push_back({"h0", h0.detach(), true});
    hx = "h0";
    if (lstm) {
      args.push_back({"c0", c0.detach(), true});
      hx = "(h0, c0)";
    }
  }
  if (lstm) args.push_back({"gc", gc});
  if (len.defined()) {
    args.push_back({"lengths", len});
    const std::string bf = test::py_bool(c.batch_first);
    code += "packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=" + bf + ", enforce_sorted=False)\n";
    code += "y, hn = m(packed, " + hx + ")\n";
    code += "y = nn.utils.rnn.pad_packed_sequence(y, batch_first=" + bf + ", total_length=" + std::to_string(z.T) +
            ")[0]\n";
  } else {
    code += "y, hn = m(x, " + hx + ")\n";
  }
  if (lstm) code += "hn, cn = hn\nout['cn'] = cn\n";
  code += "loss = (y * gy).sum() + (hn * gh).sum()" + std::string(lstm ? " + (cn * gc).sum()" : "") + "\n";
  code += "loss.backward()\nout['y'] = y\nout['hn'] = hn\nout['gx'] = x.grad\n";
  if (states) code += std::string("out['gh0'] = h0.grad\n") + (lstm ? "out['gc0'] = c0.grad\n" : "");
  for (size_t i = 0; i < params.size(); ++i)
    code += "out['gp" + std::to_string(i) + "'] = m.get_parameter('" + params[i].first + "').grad\n";
  auto t = torch_run(code, args);

  EXPECT_PARITY(what + ": output", r.output, t["y"]);
  EXPECT_PARITY(what + ": h_n", r.h_n, t["hn"]);
  if (lstm) {
    EXPECT_PARITY(what + ": c_n", r.c_n, t["cn"]);
  }
  EXPECT_PARITY(what + ": input grad", x.grad(), t["gx"]);
  if (states) {
    EXPECT_PARITY(what + ": h0 grad", h0.grad(), t["gh0"]);
  }
  if (states && lstm) {
    EXPECT_PARITY(what + ": c0 grad", c0.grad(), t["gc0"]);
  }
  for (size_t i = 0; i < params.size(); ++i)
    EXPECT_PARITY(what + ": grad of " + params[i].first, params[i].second.grad(), t["gp" + std::to_string(i)]);
}

// Every combination of layers (1, 2), bidirectional, batch_first and lengths; initial states in most.
void expect_every_configuration(nn::RNNMode mode, uint64_t seed) {
  manual_seed(seed);
  for (int v = 0; v < 16; ++v) {
    const RnnCase c{.mode = mode, .layers = 1 + (v & 1), .bidirectional = bool(v & 2), .batch_first = bool(v & 4)};
    const bool packed = v & 8, states = v % 3 != 0;
    expect_rnn_parity(c, {}, states, packed ? std::vector<int64_t>{3, 5, 1} : std::vector<int64_t>{});
  }
}

}  // namespace

TEST(RnnParity, LSTMEveryConfiguration) { expect_every_configuration(nn::RNNMode::LSTM, 10); }
TEST(RnnParity, GRUEveryConfiguration) { expect_every_configuration(nn::RNNMode::GRU, 11); }
TEST(RnnParity, RNNTanhEveryConfiguration) { expect_every_configuration(nn::RNNMode::RNN_TANH, 12); }
TEST(RnnParity, RNNReluEveryConfiguration) { expect_every_configuration(nn::RNNMode::RNN_RELU, 13); }

TEST(RnnParity, NoBiasUnbatchedAndFullLengths) {
  manual_seed(14);
  for (nn::RNNMode mode : {nn::RNNMode::LSTM, nn::RNNMode::GRU, nn::RNNMode::RNN_TANH}) {
    expect_rnn_parity({.mode = mode, .layers = 2, .bidirectional = true, .bias = false}, {}, true, {2, 4, 5});
    expect_rnn_parity({.mode = mode, .layers = 2, .bidirectional = true}, {.T = 4, .I = 3, .H = 5}, true, {}, true);
    // All sequences full length: packing changes nothing, max(lengths) == T.
    expect_rnn_parity({.mode = mode, .batch_first = true}, {.T = 3, .N = 2}, false, {3, 3});
  }
}

// Sizes above the gate kernels' threshold, so batch rows are split across threads.
TEST(RnnParity, LargerBatchThreadedKernels) {
  manual_seed(15);
  const Sizes big{.T = 4, .N = 40, .I = 12, .H = 110};
  std::vector<int64_t> lengths(40);
  for (int64_t i = 0; i < 40; ++i) lengths[size_t(i)] = 1 + i % 4;
  expect_rnn_parity({.mode = nn::RNNMode::LSTM, .bidirectional = true, .batch_first = true}, big, true, lengths);
  expect_rnn_parity({.mode = nn::RNNMode::GRU, .layers = 2}, big, true, {});
  lengths.resize(90, 2);
  expect_rnn_parity({.mode = nn::RNNMode::RNN_TANH}, {.T = 4, .N = 90, .I = 12, .H = 200}, true, lengths);
}

TEST(RnnParity, CellsBatchedAndUnbatched) {
  manual_seed(16);
  struct CellCase {
    std::string ctor;
    std::shared_ptr<nn::RNNCellBase> cell;
    bool lstm;
  };
  const std::vector<CellCase> cases{
      {"nn.RNNCell(4, 5)", std::make_shared<nn::RNNCell>(nn::RNNCellOptions{.input_size = 4, .hidden_size = 5}), false},
      {"nn.RNNCell(4, 5, nonlinearity='relu')",
       std::make_shared<nn::RNNCell>(nn::RNNCellOptions{.input_size = 4, .hidden_size = 5, .nonlinearity = "relu"}),
       false},
      {"nn.LSTMCell(4, 5)", std::make_shared<nn::LSTMCell>(nn::LSTMCellOptions{.input_size = 4, .hidden_size = 5}),
       true},
      {"nn.GRUCell(4, 5, bias=False)",
       std::make_shared<nn::GRUCell>(nn::GRUCellOptions{.input_size = 4, .hidden_size = 5, .bias = false}), false}};
  for (const auto& cc : cases)
    for (bool batched : {true, false}) {
      SCOPED_TRACE(cc.ctor + (batched ? " batched" : " unbatched"));
      const Shape xs = batched ? Shape{3, 4} : Shape{4}, hs = batched ? Shape{3, 5} : Shape{5};
      Tensor x = randn(xs).requires_grad_(true), h = randn(hs).requires_grad_(true);
      Tensor c = randn(hs).requires_grad_(true), gh = randn(hs), gc = randn(hs);
      cc.cell->zero_grad(true);
      Tensor h1, c1;
      if (auto* l = dynamic_cast<nn::LSTMCell*>(cc.cell.get())) {
        auto out = l->forward(x, h, c);
        h1 = out.h;
        c1 = out.c;
      } else if (auto* g = dynamic_cast<nn::GRUCell*>(cc.cell.get())) {
        h1 = g->forward(x, h);
      } else {
        h1 = dynamic_cast<nn::RNNCell&>(*cc.cell).forward(x, h);
      }
      Tensor loss = (h1 * gh).sum();
      if (cc.lstm) loss = loss + (c1 * gc).sum();
      loss.backward();
      std::vector<test::Arg> args{{"x", x.detach(), true}, {"h", h.detach(), true}, {"c", c.detach(), true},
                                  {"gh", gh}, {"gc", gc}};
      std::string code = "m = " + cc.ctor + "\nwith torch.no_grad():\n    pass\n";
      const auto params = cc.cell->named_parameters();
      for (size_t i = 0; i < params.size(); ++i) {
        args.push_back({"p" + std::to_string(i), params[i].second.detach()});
        code += "    m.get_parameter('" + params[i].first + "').copy_(p" + std::to_string(i) + ")\n";
      }
      code += cc.lstm ? "h1, c1 = m(x, (h, c))\nloss = (h1 * gh).sum() + (c1 * gc).sum()\nout['c1'] = c1\n"
                      : "h1 = m(x, h)\nloss = (h1 * gh).sum()\n";
      code += "loss.backward()\nout['h1'] = h1\nout['gx'] = x.grad\nout['gh'] = h.grad\nout['gc'] = c.grad\n";
      for (size_t i = 0; i < params.size(); ++i)
        code += "out['gp" + std::to_string(i) + "'] = m.get_parameter('" + params[i].first + "').grad\n";
      auto t = torch_run(code, args);
      EXPECT_PARITY("h'", h1, t["h1"]);
      EXPECT_PARITY("input grad", x.grad(), t["gx"]);
      EXPECT_PARITY("h grad", h.grad(), t["gh"]);
      if (cc.lstm) {
        EXPECT_PARITY("c'", c1, t["c1"]);
        EXPECT_PARITY("c grad", c.grad(), t["gc"]);
      }
      for (size_t i = 0; i < params.size(); ++i)
        EXPECT_PARITY("grad of " + params[i].first, params[i].second.grad(), t["gp" + std::to_string(i)]);
    }
}

// torch -> loom: torch's own initialisation, loaded through load_state_dict (strict: every key must match), gives
// torch's outputs.
TEST(RnnParity, StateDictFromTorchLoadsAndMatches) {
  manual_seed(17);
  for (nn::RNNMode mode : {nn::RNNMode::LSTM, nn::RNNMode::GRU, nn::RNNMode::RNN_RELU}) {
    const RnnCase c{.mode = mode, .layers = 2, .bidirectional = true, .batch_first = true};
    SCOPED_TRACE(test::case_name(c));
    Tensor x = test::seq_input(c, 4, 3, 5, DType::f32);
    auto t = torch_run("torch.manual_seed(3)\nm = " + test::torch_ctor(c, 5, 7) +
                           "\nfor k, v in m.state_dict().items():\n    out['sd.' + k] = v\n"
                           "with torch.no_grad():\n    y, hn = m(x)\nout['y'] = y\n"
                           "out['hn'] = hn[0] if isinstance(hn, tuple) else hn\n",
                       {{"x", x}});
    nn::StateDict sd;
    for (const auto& [k, v] : t)
      if (k.rfind("sd.", 0) == 0) sd.insert(k.substr(3), v);
    auto m = test::make_rnn(c, 5, 7);
    ASSERT_EQ(sd.size(), m->state_dict().size());
    m->load_state_dict(sd);
    NoGradGuard g;
    nn::LSTMOutput r = test::call(*m, x, {}, {}, {});
    EXPECT_PARITY("output", r.output, t["y"]);
    EXPECT_PARITY("h_n", r.h_n, t["hn"]);
  }
}
