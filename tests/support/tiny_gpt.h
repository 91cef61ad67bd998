// The small seeded GPT, its fixed-input logits and the weight-by-weight comparison that the load-path suites
// (test_model_load_mmap, test_run_load_stream) check loaded models with.
#pragma once
#include <gtest/gtest.h>

#include <memory>

#include "loom/loom.h"
#include "loom/models/gpt.h"

namespace loom::test {

inline std::shared_ptr<models::GPT> tiny_gpt(bool tied, uint64_t seed) {
  manual_seed(seed);
  auto gpt = std::make_shared<models::GPT>(models::GPTConfig{.vocab_size = 300, .n_positions = 16, .n_embd = 64,
                                                            .n_layer = 2, .n_head = 2, .tie_word_embeddings = tied});
  gpt->eval();
  return gpt;
}

// The logits of a fixed (2, 10) batch of token ids.
inline Tensor logits(models::LanguageModel& g) {
  manual_seed(9);
  NoGradGuard ng;
  return g(randint(0, 90, {2, 10}));
}

// Every tensor of `a` equals the one of the same name in `b`, bit for bit.
inline void expect_same_weights(const nn::Module& a, const nn::Module& b) {
  const nn::StateDict sa = a.state_dict(), sb = b.state_dict();
  ASSERT_EQ(sa.items().size(), sb.items().size());
  for (const auto& [name, t] : sa.items()) {
    const Tensor* u = sb.find(name);
    ASSERT_TRUE(u) << name;
    EXPECT_TRUE(equal(t, *u)) << name;
  }
}

}  // namespace loom::test
