// The strict test device (support/strict_backend.h): a training step of each seed model (mlp, cnn, lstm-lm, gpt)
// runs on it with no op reading tensor memory outside the Backend, and gives the CPU's numbers. Also the device
// plumbing: Tensor::to / Module::to, allocation through the device's allocator, and host access failing clearly.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>

#include "loom/loom.h"
#include "loom/models/gpt.h"
#include "loom/models/lstm_lm.h"
#include "loom/models/models.h"
#include "support/strict_backend.h"

using namespace loom;

namespace {

const Device kHost{};

void expect_close(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  const std::vector<double> x = a.tolist(), y = b.tolist();
  for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(x[i], y[i], 1e-5 + 1e-5 * std::abs(y[i])) << what << "[" << i << "]";
}

// One AdamW step of `model` on a batch; returns the loss. The batch is made on the host and moved to `dev`.
using LossFn = std::function<Tensor(nn::Module&, Device)>;

void check_step(const std::string& name, const std::function<std::shared_ptr<nn::Module>()>& make, const LossFn& loss) {
  const Device dev = test::install_strict_device();
  manual_seed(0);
  auto host_model = make();
  manual_seed(0);
  auto strict_model = make();
  strict_model->to(dev);
  for (const auto& [k, p] : strict_model->named_parameters()) ASSERT_EQ(p.device(), dev) << name << " " << k;

  optim::AdamW host_opt(host_model->parameters(), {.lr = 1e-2});
  optim::AdamW strict_opt(strict_model->parameters(), {.lr = 1e-2});
  Tensor host_loss = loss(*host_model, kHost);
  host_loss.backward();
  host_opt.step();

  test::strict_backend().reset_counts();
  Tensor strict_loss;
  ASSERT_NO_THROW({
    strict_loss = loss(*strict_model, dev);
    strict_loss.backward();
    strict_opt.step();
  }) << name << ": an op read device memory outside the Backend";
  EXPECT_EQ(strict_loss.device(), dev);
  EXPECT_GT(test::strict_backend().calls("optimizer_update"), 0) << name;
  expect_close(strict_loss.to(kHost), host_loss, name + " loss");
  const auto hp = host_model->named_parameters(), sp = strict_model->named_parameters();
  ASSERT_EQ(hp.size(), sp.size());
  for (size_t i = 0; i < hp.size(); ++i) {
    ASSERT_EQ(sp[i].second.device(), dev) << name << " " << sp[i].first;
    expect_close(sp[i].second.to(kHost), hp[i].second, name + " " + hp[i].first);
  }
}

Tensor classifier_loss(nn::Module& m, Device dev, const Shape& input) {
  Generator g(7);
  Tensor x = randn(input, {}, &g).to(dev);
  Tensor y = randint(0, 10, {input[0]}, {.dtype = DType::i64}, &g).to(dev);
  return cross_entropy(m.forward(x), y);
}

Tensor lm_loss(nn::Module& m, Device dev, int64_t vocab) {
  Generator g(11);
  Tensor idx = randint(0, vocab, {2, 8}, {.dtype = DType::i64}, &g);
  Tensor x = idx.narrow(1, 0, 7).contiguous().to(dev), y = idx.narrow(1, 1, 7).contiguous().to(dev);
  Tensor logits = m.forward(x);
  return cross_entropy(logits.reshape({-1, vocab}), y.reshape({-1}));
}

}  // namespace

TEST(StrictDevice, HostAccessOutsideTheBackendThrows) {
  const Device dev = test::install_strict_device();
  Tensor h = tensor({1.0, 2.0, 3.0});
  Tensor d = h.to(dev);
  EXPECT_EQ(d.device(), dev);
  try {
    d.data<float>();
    FAIL() << "data<T>() on the strict device must throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("privateuse:0"), std::string::npos) << e.what();
  }
  // Transfers and item() go through the backend.
  EXPECT_EQ(d.to(kHost).tolist(), (std::vector<double>{1, 2, 3}));
  EXPECT_EQ((d * 2.0).sum().item(), 12.0);
  EXPECT_GT(test::strict_backend().calls("copy"), 0);
  // Host -> host is the tensor itself; a device with no backend is a clear error.
  EXPECT_TRUE(h.to(kHost).is_same(h));
  if (!cuda::available()) {  // with a GPU, cuda:0 is a real device (test_cuda_device.cpp checks both ways)
    try {
      h.to(Device{DeviceType::CUDA, 0});
      FAIL() << "to(cuda) must throw without a usable CUDA device";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("cuda:0"), std::string::npos) << e.what();
    }
  }
}

TEST(StrictDevice, ToIsDifferentiable) {
  const Device dev = test::install_strict_device();
  Tensor x = tensor({1.0, -2.0}, {}, {.requires_grad = true});
  Tensor y = (x.to(dev) * x.to(dev)).sum();
  y.backward();
  EXPECT_EQ(x.grad().device(), kHost);
  EXPECT_EQ(x.grad().tolist(), (std::vector<double>{2, -4}));
}

TEST(StrictDevice, BlockDTypeRoomIsOneElementPerBlockToday) {
  for (DType t : {DType::f32, DType::f64, DType::i64, DType::bf16, DType::boolean}) {
    EXPECT_EQ(dtype_block_size(t), 1) << t;
    EXPECT_EQ(dtype_block_bytes(t), itemsize(t)) << t;
    EXPECT_FALSE(is_block_quantized(t)) << t;
    EXPECT_EQ(storage_nbytes(t, 10), 10 * itemsize(t)) << t;
  }
}

TEST(StrictDevice, MlpTrainingStep) {
  check_step("mlp", [] { return models::make_model("mlp", {.channels = 1, .height = 8, .width = 8}); },
             [](nn::Module& m, Device d) { return classifier_loss(m, d, {4, 1, 8, 8}); });
}

TEST(StrictDevice, CnnTrainingStep) {
  check_step("cnn", [] { return models::make_model("cnn", {.channels = 1, .height = 14, .width = 14}); },
             [](nn::Module& m, Device d) { return classifier_loss(m, d, {2, 1, 14, 14}); });
}

TEST(StrictDevice, LstmLmTrainingStep) {
  check_step("lstm-lm",
             [] { return std::make_shared<models::LSTMLM>(models::LSTMLMConfig{.vocab_size = 12, .embedding = 8,
                                                                                .layers = 2, .hidden = 16}); },
             [](nn::Module& m, Device d) { return lm_loss(m, d, 12); });
}

TEST(StrictDevice, GptTrainingStep) {
  check_step("gpt",
             [] { return std::make_shared<models::GPT>(models::GPTConfig{.vocab_size = 16, .n_positions = 8,
                                                                          .n_embd = 16, .n_layer = 2, .n_head = 2}); },
             [](nn::Module& m, Device d) { return lm_loss(m, d, 16); });
  EXPECT_GT(test::strict_backend().calls("attention_backward"), 0);
  EXPECT_GT(test::strict_backend().calls("row_norm_backward"), 0);
  EXPECT_GT(test::strict_backend().calls("split_heads"), 0);
  EXPECT_GT(test::strict_backend().calls("cross_entropy_backward"), 0);
}
