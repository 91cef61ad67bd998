// The GPU check's workloads (bench/gpu_check.sh runs them; /work/shared/WORKLOADS.md defines W2, W3, W5), on any
// device, one JSON object per line on stdout so the script can compare a CPU run with a CUDA run:
//   gpu_check_bench info                          CUDA section of `loom info`; exit 2 without a usable GPU
//   gpu_check_bench w2 DEVICE FMNIST_DIR [EPOCHS]  seed CNN, Adam 1e-3, batch 64 (FMNIST_DIR "synthetic": random)
//   gpu_check_bench w3 DEVICE TEXT_FILE [STEPS]    char GPT 4x128, context 128, batch 16, AdamW 1e-3
//   gpu_check_bench w5 DEVICE [STEPS]              GPT-2 124M shape, B=16, T=1024, bf16 autocast; decode tokens/s
// DEVICE is cpu, cuda or cuda:N. Every phase catches its own error and prints it, so one failing kernel does not
// hide the figures of the others; the exit status is non-zero when any phase failed.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "loom/loom.h"
#include "loom/models/gpt.h"
#include "loom/models/models.h"

using namespace loom;

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

void sync(Device d) {
  if (d.type == DeviceType::CUDA) cuda::synchronize();
}

// An error message as a JSON string's content (quotes and newlines would end it).
std::string esc(const char* m) {
  std::string r;
  for (const char* c = m; *c; ++c) r += (*c == '"' || *c == '\\') ? '\'' : (*c == '\n' ? ' ' : *c);
  return r;
}

std::string dev_name(Device d) {
  std::ostringstream os;
  os << d;
  return os.str();
}

// ---- W2: the seed CNN on Fashion-MNIST (or random images of the same shape when the data is absent).
int run_w2(Device dev, const std::string& dir, int epochs) {
  data::DatasetPtr train;
  if (dir == "synthetic") {
    Generator g(3);
    Tensor images = randint(0, 256, {6400, 1, 28, 28}, {.dtype = DType::u8}, &g);
    Tensor labels = randint(0, 10, {6400}, {.dtype = DType::i64}, &g);
    train = std::make_shared<data::ByteImageDataset>(images, labels);
  } else {
    train = data::load_fashion_mnist(dir, true);
  }
  manual_seed(0);
  auto model = models::make_model("cnn", {.channels = 1, .height = 28, .width = 28, .num_classes = 10});
  model->to(dev);
  optim::Adam opt(model->parameters(), {.lr = 1e-3});
  data::DataLoader loader(train, {.batch_size = 64, .shuffle = true, .seed = 0});
  int64_t step = 0, samples = 0;
  double window = 0, t0 = now();
  int64_t in_window = 0;
  for (int e = 0; e < epochs; ++e) {
    loader.set_epoch(e);
    for (auto& b : loader) {
      Tensor x = b.data.to(dev), y = b.target.to(dev);
      Tensor loss = cross_entropy(model->forward(x), y);
      opt.zero_grad(true);
      loss.backward();
      opt.step();
      window += loss.item(), ++in_window, ++step, samples += x.size(0);
      if (in_window == 100) {
        std::printf("{\"w\":\"W2\",\"device\":\"%s\",\"step\":%ld,\"loss\":%.5f}\n", dev_name(dev).c_str(), long(step),
                    window / double(in_window));
        std::fflush(stdout);
        window = 0, in_window = 0;
      }
    }
  }
  sync(dev);
  const double dt = now() - t0;
  std::printf("{\"w\":\"W2\",\"device\":\"%s\",\"done\":true,\"steps\":%ld,\"samples_per_s\":%.1f,\"seconds\":%.2f}\n",
              dev_name(dev).c_str(), long(step), double(samples) / dt, dt);
  return 0;
}

// ---- W3 / W5: GPT training on token windows made on the host (the same Generator on every device).
std::pair<Tensor, Tensor> windows(const std::vector<int64_t>& data, int64_t B, int64_t T, Generator& g) {
  Tensor x = make_tensor({B, T}, DType::i64), y = make_tensor({B, T}, DType::i64);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t o = int64_t(g.next_u64() % uint64_t(int64_t(data.size()) - T - 1));
    std::copy(data.begin() + o, data.begin() + o + T, x.data<int64_t>() + b * T);
    std::copy(data.begin() + o + 1, data.begin() + o + T + 1, y.data<int64_t>() + b * T);
  }
  return {x, y};
}

double train_flops_per_token(const models::GPTConfig& c, int64_t T) {  // as bench/gpt_bench.cpp counts them
  const double E = double(c.n_embd), L = double(c.n_layer);
  const double matmul_params = L * (E * 3 * E + E * E + 2 * E * double(c.inner())) + E * double(c.vocab_size);
  return 6 * matmul_params + 12 * L * double(T) * E;
}

int run_w3(Device dev, const std::string& path, int steps) {
  std::string text;
  if (path == "synthetic") {  // a repetitive text with 60-odd symbols, when the KJV text is not at hand
    Generator g(5);
    const std::string words[] = {"and ", "the ", "LORD ", "said ", "unto ", "him, ", "of ", "Israel; ", "in ", "that "};
    while (text.size() < 400000) text += words[g.next_u64() % 10];
  } else {
    std::ifstream f(path, std::ios::binary);
    LOOM_CHECK(f.good(), "gpu_check_bench: cannot read ", path);
    std::stringstream ss;
    ss << f.rdbuf();
    text = ss.str();
  }
  std::set<unsigned char> chars(text.begin(), text.end());
  std::vector<int64_t> stoi(256, 0), data;
  int64_t V = 0;
  for (unsigned char c : chars) stoi[c] = V++;
  for (unsigned char c : text) data.push_back(stoi[c]);
  data.resize(size_t(0.9 * double(data.size())));
  const int64_t B = 16, T = 128;
  manual_seed(0);
  models::GPT m({.vocab_size = V, .n_positions = T, .n_embd = 128, .n_layer = 4, .n_head = 4,
                 .activation_function = "gelu", .tie_word_embeddings = false, .initializer_range = 0.05});
  m.to(dev);
  optim::AdamW opt(m.parameters(), {.lr = 1e-3});
  Generator g(0);
  double t0 = now(), tail = 0;
  for (int it = 1; it <= steps; ++it) {
    auto [x, y] = windows(data, B, T, g);
    Tensor loss = cross_entropy(m(x.to(dev)).view({-1, V}), y.to(dev).view({-1}));
    opt.zero_grad(true);
    loss.backward();
    opt.step();
    const double l = loss.item();
    if (it > steps - 20) tail += l / double(std::min(steps, 20));
    if (it % 50 == 0 || it == 1)
      std::printf("{\"w\":\"W3\",\"device\":\"%s\",\"step\":%d,\"loss\":%.5f}\n", dev_name(dev).c_str(), it, l);
    std::fflush(stdout);
  }
  sync(dev);
  const double dt = now() - t0;
  std::printf("{\"w\":\"W3\",\"device\":\"%s\",\"done\":true,\"steps\":%d,\"last20_loss\":%.5f,\"tokens_per_s\":%.0f}\n",
              dev_name(dev).c_str(), steps, tail, double(steps * B * T) / dt);
  return 0;
}

int run_w5(Device dev, int steps) {
  const int64_t V = 50257, B = 16, T = 1024;
  manual_seed(0);
  models::GPT m({.vocab_size = V, .n_positions = T, .n_embd = 768, .n_layer = 12, .n_head = 12});
  m.to(dev);
  optim::AdamW opt(m.parameters(), {.lr = 6e-4, .weight_decay = 0.1});
  Generator g(0);
  std::vector<int64_t> data(size_t(4 << 20));
  for (auto& t : data) t = int64_t(g.next_u64() % uint64_t(V));
  int fails = 0;
  double tps = 0;
  try {
    double t_start = 0;
    for (int it = 0; it <= steps; ++it) {  // step 0 warms up (allocator, cuBLAS heuristics) and is not timed
      if (it == 1) sync(dev), t_start = now();
      auto [x, y] = windows(data, B, T, g);
      Tensor loss;
      {
        AutocastGuard bf(DType::bf16);
        loss = cross_entropy(m(x.to(dev)).view({-1, V}), y.to(dev).view({-1}));
      }
      opt.zero_grad(true);
      loss.backward();
      opt.step();
      if (it == steps) std::printf("{\"w\":\"W5\",\"device\":\"%s\",\"step\":%d,\"loss\":%.4f}\n", dev_name(dev).c_str(), it, loss.item());
    }
    sync(dev);
    const double dt = now() - t_start;
    tps = double(steps * B * T) / dt;
    const double flops = tps * train_flops_per_token(m.cfg, T);
    const double peak = 989e12;  // H100/H200 SXM dense bf16 tensor-core peak
    const cuda::MemoryStats ms = cuda::memory_stats();
    std::printf("{\"w\":\"W5\",\"device\":\"%s\",\"train_tokens_per_s\":%.0f,\"tflops\":%.1f,\"mfu_pct\":%.1f,"
                "\"peak_gpu_mib\":%.0f,\"step_ms\":%.1f}\n",
                dev_name(dev).c_str(), tps, flops / 1e12, 100 * flops / peak, double(ms.peak) / (1 << 20),
                1000 * dt / steps);
  } catch (const std::exception& e) {
    std::printf("{\"w\":\"W5\",\"device\":\"%s\",\"train_error\":\"%s\"}\n", dev_name(dev).c_str(), esc(e.what()).c_str());
    ++fails;
  }
  std::fflush(stdout);
  try {  // decode: one sequence, KV cache, 256 tokens after a one-token prompt (argmax on the host)
    NoGradGuard ng;
    m.eval();
    const int64_t n = 256;
    auto st = m.start_decoding(1, n + 1);
    Tensor idx = zeros({1, 1}, {.dtype = DType::i64}).to(dev);
    m.decode_step(*st, idx);  // warm-up
    st = m.start_decoding(1, n + 1);
    sync(dev);
    const double t0 = now();
    for (int64_t i = 0; i < n; ++i) {
      Tensor logits = m.decode_step(*st, idx);
      idx = argmax(logits.reshape({1, -1}), 1, true);
    }
    sync(dev);
    std::printf("{\"w\":\"W5\",\"device\":\"%s\",\"decode_tokens_per_s\":%.1f}\n", dev_name(dev).c_str(),
                double(n) / (now() - t0));
  } catch (const std::exception& e) {
    std::printf("{\"w\":\"W5\",\"device\":\"%s\",\"decode_error\":\"%s\"}\n", dev_name(dev).c_str(), esc(e.what()).c_str());
    ++fails;
  }
  return fails ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string what = argc > 1 ? argv[1] : "";
  try {
    if (what == "info") {
      std::fputs(cuda::info_text().c_str(), stdout);
      return cuda::available() ? 0 : 2;
    }
    if (argc < 3) {
      std::fprintf(stderr, "usage: gpu_check_bench info | w2 DEVICE FMNIST_DIR [EPOCHS] | w3 DEVICE TEXT [STEPS] | w5 DEVICE [STEPS]\n");
      return 64;
    }
    const Device dev = cuda::parse_device(argv[2]);
    if (what == "w2" && argc >= 4) return run_w2(dev, argv[3], argc > 4 ? std::atoi(argv[4]) : 1);
    if (what == "w3" && argc >= 4) return run_w3(dev, argv[3], argc > 4 ? std::atoi(argv[4]) : 300);
    if (what == "w5") return run_w5(dev, argc > 3 ? std::atoi(argv[3]) : 10);
    std::fprintf(stderr, "gpu_check_bench: unknown workload '%s'\n", what.c_str());
    return 64;
  } catch (const std::exception& e) {
    std::printf("{\"error\":\"%s\"}\n", esc(e.what()).c_str());
    std::fprintf(stderr, "gpu_check_bench %s: %s\n", what.c_str(), e.what());
    return 1;
  }
}
