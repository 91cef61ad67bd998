// Where one training step of workload W2 (the seed CNN, batch 64, 28x28 inputs) spends its time: each op
// of the chain timed alone, forward and forward+backward, then the whole step (forward, cross-entropy,
// backward, Adam). One JSON line per item; `cnn_bench THREADS [BATCH [cpu]]`. bench/cnn_torch.py is the
// PyTorch side.
#include <cstdlib>
#include <functional>
#include <string>

#include <ctime>

#include "bench_util.h"
#include "loom/loom.h"

using namespace loom;

// `cnn_bench 1 64 cpu`: best-of-N process CPU time instead of wall time. With one thread on a machine
// shared with other jobs, it leaves out the time slices spent descheduled (but not their cache damage).
static bool g_cpu_clock = false;

template <class F>
static double best(int reps, F&& f) {
  if (!g_cpu_clock) return bench::best_seconds(reps, f);
  const auto now = bench::cpu_seconds;
  f();
  double b = 1e30;
  for (int i = 0; i < reps; ++i) {
    const double t0 = now();
    f();
    b = std::min(b, now() - t0);
  }
  return b;
}

static void report(const std::string& name, double fwd, double fwd_bwd) {
  std::printf("{\"bench\":\"cnn_step\",\"impl\":\"loom\",\"op\":\"%s\",\"fwd_us\":%.1f,\"fwd_bwd_us\":%.1f}\n",
              name.c_str(), fwd * 1e6, fwd_bwd * 1e6);
}

// Times f(x) alone and with its backward from a random output gradient; x is a fresh leaf.
static void time_op(const std::string& name, const Tensor& input, const std::function<Tensor(const Tensor&)>& f,
                    int reps) {
  Tensor x = input.detach().clone();
  x.requires_grad_(true);
  Tensor g;
  {
    NoGradGuard ng;
    g = randn(f(x).shape());
  }
  const double fwd = best(reps, [&] {
    NoGradGuard ng;
    f(x);
  });
  const double fb = best(reps, [&] { f(x).backward(g); });
  report(name, fwd, fb);
}

int main(int argc, char** argv) {
  set_num_threads(argc > 1 ? std::atoi(argv[1]) : 2);
  const int64_t B = argc > 2 ? std::atoll(argv[2]) : 64;
  g_cpu_clock = argc > 3 && std::string(argv[3]) == "cpu";
  const int reps = 30;
  manual_seed(0);
  Tensor w1 = randn({32, 1, 3, 3}) * 0.3, b1 = randn({32}) * 0.1;
  Tensor w2 = randn({64, 32, 3, 3}) * 0.06, b2 = randn({64}) * 0.1;
  Tensor w3 = randn({64, 1600}) * 0.025, b3 = randn({64}) * 0.1;
  Tensor w4 = randn({10, 64}) * 0.1, b4 = randn({10}) * 0.1;
  Tensor x = rand({B, 1, 28, 28});
  Tensor target = randint(0, 10, {B});
  Tensor a1, a2, a3, a4, a5, a6, a7;
  {  // the activations each op sees in the real chain
    NoGradGuard ng;
    a1 = conv2d(x, w1, b1);
    a2 = relu(a1);
    a3 = max_pool2d(a2, {.kernel_size = {2, 2}});
    a4 = conv2d(a3, w2, b2);
    a5 = relu(a4);
    a6 = max_pool2d(a5, {.kernel_size = {2, 2}});
    a7 = relu(linear(a6.reshape({B, 1600}), w3, b3));
  }
  // Conv weights take gradients too (a training step needs dW); the first conv needs no dx.
  for (Tensor* t : {&w1, &b1, &w2, &b2, &w3, &b3, &w4, &b4}) t->requires_grad_(true);
  time_op("conv1_1_32_28", x, [&](const Tensor& t) { return conv2d(t.detach(), w1, b1); }, reps);
  time_op("relu1", a1, [](const Tensor& t) { return relu(t); }, reps);
  time_op("pool1", a2, [](const Tensor& t) { return max_pool2d(t, {.kernel_size = {2, 2}}); }, reps);
  time_op("conv2_32_64_13", a3, [&](const Tensor& t) { return conv2d(t, w2, b2); }, reps);
  time_op("relu2", a4, [](const Tensor& t) { return relu(t); }, reps);
  time_op("pool2", a5, [](const Tensor& t) { return max_pool2d(t, {.kernel_size = {2, 2}}); }, reps);
  time_op("linear_1600_64_relu", a6, [&](const Tensor& t) { return relu(linear(t.reshape({B, 1600}), w3, b3)); },
          reps);
  time_op("linear_64_10", a7, [&](const Tensor& t) { return linear(t, w4, b4); }, reps);

  std::vector<Tensor> params{w1, b1, w2, b2, w3, b3, w4, b4};
  optim::Adam opt(params, {.lr = 1e-3});
  auto forward = [&] {
    Tensor h = max_pool2d(relu(conv2d(x, w1, b1)), {.kernel_size = {2, 2}});
    h = max_pool2d(relu(conv2d(h, w2, b2)), {.kernel_size = {2, 2}});
    return linear(relu(linear(h.reshape({B, 1600}), w3, b3)), w4, b4);
  };
  // One forward without gradients and one training step (forward, cross-entropy, backward, Adam) of a chain.
  auto time_chain = [&](const char* name, const std::function<Tensor()>& fwd_fn) {
    const double f = best(reps, [&] {
      NoGradGuard ng;
      fwd_fn();
    });
    const double st = best(reps, [&] {
      opt.zero_grad();
      cross_entropy(fwd_fn(), target).backward();
      opt.step();
    });
    report(name, f, st);
    return st;
  };
  const double step = time_chain("step", forward);
  // As nn::Sequential runs the net: ReLU + pool fused, and the first conv fused with them; then only the first.
  const Pool2dArgs p2{.kernel_size = {2, 2}};
  const auto head = [&](Tensor h) {
    h = relu_max_pool2d(conv2d(h, w2, b2), p2);
    return linear(relu(linear(h.reshape({B, 1600}), w3, b3)), w4, b4);
  };
  time_chain("step_fused", [&] { return head(conv2d_relu_max_pool2d(x, w1, b1, {}, p2)); });
  time_chain("step_relu_pool_fused", [&] { return head(relu_max_pool2d(conv2d(x, w1, b1), p2)); });
  const double adam = best(reps, [&] { opt.step(); });
  report("adam_step", adam, adam);
  std::printf("{\"bench\":\"cnn_step\",\"impl\":\"loom\",\"op\":\"train_samples_per_s\",\"value\":%.0f}\n", B / step);
}
