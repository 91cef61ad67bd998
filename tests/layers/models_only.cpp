// A "server" that links loom::models alone (core..models; no train, text or dist): builds a small GPT,
// runs a forward pass, round-trips a weight through safetensors bytes and greedy-decodes a few tokens. tests/layers/CMakeLists.txt
// links every object of every library in models' closure (whole archive), so the link itself proves that
// nothing from core to models needs a symbol of a higher layer.
#include <cstdio>

#include "loom/io/safetensors.h"
#include "loom/models/generate.h"
#include "loom/models/gpt.h"
#include "loom/ops/creation.h"
#include "loom/ops/reduce.h"

int main() {
  using namespace loom;
  manual_seed(0);
  auto gpt = std::make_shared<models::GPT>(
      models::GPTConfig{.vocab_size = 17, .n_positions = 16, .n_embd = 16, .n_layer = 1, .n_head = 2});
  gpt->eval();
  Tensor prompt = arange(4).unsqueeze(0);  // i64 (1, 4)
  Tensor logits = (*gpt)(prompt);
  if (logits.shape() != Shape{1, 4, 17}) {
    std::fprintf(stderr, "unexpected logits shape\n");
    return 1;
  }
  const Tensor w = gpt->named_parameters().front().second;
  io::SafetensorsFile f = io::parse_safetensors(io::safetensors_bytes({{"w", w}}), "memory");
  if (f.tensors.size() != 1 || f.tensors.front().second.tolist() != w.tolist()) {
    std::fprintf(stderr, "safetensors round trip changed the weight\n");
    return 1;
  }
  auto out = models::generate(*gpt, {{1, 2, 3}}, {.max_new_tokens = 5, .sampling = {.temperature = 0}});
  if (out.size() != 1 || out[0].size() != 5) {
    std::fprintf(stderr, "generate returned the wrong number of tokens\n");
    return 1;
  }
  std::printf("models-only: logits %lld x %lld x %lld, sum %.4f\n", (long long)logits.size(0),
              (long long)logits.size(1), (long long)logits.size(2), logits.sum().item());
  return 0;
}
