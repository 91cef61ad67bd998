// Uses, through <loom/loom.h> alone, what the umbrella claims: a tokenizer (text), a GPT (models) and
// streamed generation (models::generate with a callback).
#include <loom/loom.h>

#include <cstdio>
#include <string>

int main() {
  using namespace loom;
  manual_seed(0);
  const text::CharTokenizer tok = text::CharTokenizer::from_corpus("hello world");
  auto gpt = std::make_shared<models::GPT>(models::GPTConfig{
      .vocab_size = tok.vocab_size(), .n_positions = 32, .n_embd = 16, .n_layer = 1, .n_head = 2});
  gpt->eval();
  std::string streamed;
  auto out = models::generate(*gpt, {tok.encode("hello")}, {.max_new_tokens = 6, .sampling = {.temperature = 0}},
                              [&](size_t, int64_t id) {
                                streamed += tok.decode({&id, 1});
                                return true;
                              });
  std::printf("streamed %zu tokens: '%s'\n", out[0].size(), streamed.c_str());
  return (out.size() == 1 && out[0].size() == 6 && streamed == tok.decode(out[0])) ? 0 : 1;
}
