// Explanations for language models: per-token gradient x input on the embeddings of the prompt (for the
// model's next-token prediction), shown as coloured HTML or terminal text, and a GPT's attention weights.
//   auto a = explain::token_attributions(*lm, ids);          // a.scores[t]: token t's share in the logit
//   std::string html = explain::tokens_html(pieces, a.scores, "next: \"e\"");
//   std::vector<Tensor> w = explain::gpt_attention(gpt, ids);  // per layer (heads, T, T); rows sum to 1
#pragma once
#include <string>
#include <vector>

#include "loom/models/gpt.h"
#include "loom/models/language_model.h"

namespace loom::explain {

struct TokenAttribution {
  std::vector<double> scores;  // per prompt token: sum over the embedding of gradient x embedding
  int64_t target = 0;          // the explained next token (default: the model's most likely)
  double logit = 0;            // its logit after the last prompt token
};

// GPT (gradients w.r.t. the token embeddings; positions stay fixed) and the LSTM LM. target < 0: the argmax.
TokenAttribution token_attributions(models::LanguageModel& m, const std::vector<int64_t>& ids, int64_t target = -1);
// The next-token logits (V) after the last position, computed from given token embeddings (T, C) instead of
// ids: what token_attributions differentiates (tests check it against forward()).
Tensor logits_from_embeddings(models::LanguageModel& m, const Tensor& embeddings);
// The token embedding table lookup for ids: (T, C).
Tensor token_embeddings(models::LanguageModel& m, const std::vector<int64_t>& ids);

// Attention weights of every layer of a GPT for one sequence, (n_head, T, T) each, in eval mode.
std::vector<Tensor> gpt_attention(models::GPT& gpt, const std::vector<int64_t>& ids);

// Token pieces with backgrounds by score: red for positive, blue for negative, strength by |score| / max.
std::string tokens_html(const std::vector<std::string>& pieces, const std::vector<double>& scores,
                        const std::string& title);
std::string tokens_terminal(const std::vector<std::string>& pieces, const std::vector<double>& scores);

}  // namespace loom::explain
