#include "loom/explain/lm_attribution.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "loom/autograd/grad_mode.h"
#include "loom/models/lstm_lm.h"
#include "loom/ops/ops.h"

namespace loom::explain {

namespace {

// Eval mode for the scope (dropout off), restored after.
struct EvalScope {
  explicit EvalScope(nn::Module& m) : m(m), was(m.is_training()) { m.eval(); }
  ~EvalScope() { m.train(was); }
  nn::Module& m;
  bool was;
};

Tensor ids_tensor(const std::vector<int64_t>& ids, const models::LanguageModel& m) {
  LOOM_CHECK(!ids.empty(), "explain: the prompt has no tokens");
  for (int64_t t : ids)
    LOOM_CHECK(t >= 0 && t < m.vocab_size(), "explain: token id ", t, " is outside the vocabulary 0..", m.vocab_size() - 1);
  if (m.context() > 0)
    LOOM_CHECK(int64_t(ids.size()) <= m.context(), "explain: the prompt has ", ids.size(), " tokens, the model's context is ",
               m.context());
  return tensor(ids, {int64_t(ids.size())});
}

}  // namespace

Tensor token_embeddings(models::LanguageModel& m, const std::vector<int64_t>& ids) {
  const Tensor idx = ids_tensor(ids, m);
  if (auto* g = dynamic_cast<models::GPT*>(&m)) return (*g->wte)(idx);
  if (auto* l = dynamic_cast<models::LSTMLM*>(&m)) return (*l->emb)(idx);
  LOOM_CHECK(false, "explain: token attributions support GPT and LSTM language models, not ", m.name());
  return {};
}

Tensor logits_from_embeddings(models::LanguageModel& m, const Tensor& e) {
  LOOM_CHECK(e.dim() == 2, "explain: embeddings must be (T, C), got ", e.shape());
  const int64_t t = e.size(0);
  Tensor h;
  if (auto* g = dynamic_cast<models::GPT*>(&m)) {
    // GPT::hidden without its lookup: the same blocks over token + position embeddings.
    Tensor x = (e + (*g->wpe)(arange(t))).unsqueeze(0);
    for (auto& blk : g->blocks) x = (*blk)(x);
    h = g->lm_head ? (*g->lm_head)((*g->ln_f)(x)) : linear((*g->ln_f)(x), g->lm_head_weight());  // as GPT::forward
  } else if (auto* l = dynamic_cast<models::LSTMLM*>(&m)) {
    h = (*l->out)((*l->rnn)(e.unsqueeze(0)));
  } else {
    LOOM_CHECK(false, "explain: token attributions support GPT and LSTM language models, not ", m.name());
  }
  return h.select(0, 0).select(0, t - 1);
}

TokenAttribution token_attributions(models::LanguageModel& m, const std::vector<int64_t>& ids, int64_t target) {
  EvalScope eval(m);
  std::vector<bool> flags;
  std::vector<Tensor> params = m.parameters();
  for (auto& p : params) flags.push_back(p.requires_grad()), p.requires_grad_(false);
  TokenAttribution r;
  {
    Tensor e;
    {
      NoGradGuard g;
      e = token_embeddings(m, ids).contiguous();
    }
    e.requires_grad_(true);
    const Tensor logits = logits_from_embeddings(m, e);
    r.target = target >= 0 ? target : int64_t(logits.argmax(0).item());
    LOOM_CHECK(r.target < logits.size(0), "explain: target token ", r.target, " is outside the vocabulary");
    const Tensor f = logits.select(0, r.target);
    r.logit = f.item();
    f.backward();
    r.scores = (e.grad() * e.detach()).sum({1}).tolist();
  }
  for (size_t i = 0; i < params.size(); ++i) params[i].requires_grad_(flags[i]);
  return r;
}

std::vector<Tensor> gpt_attention(models::GPT& gpt, const std::vector<int64_t>& ids) {
  EvalScope eval(gpt);
  NoGradGuard ng;
  const Tensor idx = ids_tensor(ids, gpt);
  const int64_t t = idx.size(0), c = gpt.cfg.n_embd, nh = gpt.cfg.n_head, d = c / nh;
  Tensor x = ((*gpt.wte)(idx) + (*gpt.wpe)(arange(t))).unsqueeze(0);
  std::vector<Tensor> out;
  for (auto& blk : gpt.blocks) {
    // The block's own projection, split into heads as HF lays q, k, v out (side by side, heads contiguous).
    const Tensor qkv = (*blk->attn->c_attn)((*blk->ln_1)(x));
    auto head = [&](int64_t part) { return qkv.slice(2, part * c, (part + 1) * c).reshape({1, t, nh, d}).permute({0, 2, 1, 3}).contiguous(); };
    auto [y, w] = attention_with_weights(head(0), head(1), head(2), {.is_causal = true});
    out.push_back(w.select(0, 0).contiguous());
    x = (*blk)(x);
  }
  return out;
}

namespace {

std::string escape_html(const std::string& s) {
  std::string o;
  for (char ch : s) {
    if (ch == '<') o += "&lt;";
    else if (ch == '>') o += "&gt;";
    else if (ch == '&') o += "&amp;";
    else if (ch == '"') o += "&quot;";
    else if (ch == '\n') o += "&#8629;<br>";
    else o += ch;
  }
  return o;
}

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

}  // namespace

std::string tokens_html(const std::vector<std::string>& pieces, const std::vector<double>& scores, const std::string& title) {
  LOOM_CHECK(pieces.size() == scores.size(), "tokens_html: ", pieces.size(), " pieces but ", scores.size(), " scores");
  const double m = max_abs(scores);
  std::string o = "<!doctype html>\n<meta charset=\"utf-8\">\n<title>" + escape_html(title) +
                  "</title>\n<style>body{font-family:monospace;font-size:16px;line-height:1.9}"
                  "span{white-space:pre;padding:1px 0}</style>\n<h3>" + escape_html(title) +
                  "</h3>\n<p>red: pushes towards the predicted token, blue: against; hover for the score</p>\n<p>";
  char buf[160];
  for (size_t i = 0; i < pieces.size(); ++i) {
    const double s = m > 0 ? scores[i] / m : 0.0;
    const int fade = int(std::lround(255 * (1 - std::abs(s))));
    std::snprintf(buf, sizeof buf, "<span title=\"%.4g\" style=\"background:rgb(%d,%d,%d)\">", scores[i],
                  s >= 0 ? 255 : fade, fade, s >= 0 ? fade : 255);
    o += buf + escape_html(pieces[i]) + "</span>";
  }
  return o + "</p>\n";
}

std::string tokens_terminal(const std::vector<std::string>& pieces, const std::vector<double>& scores) {
  LOOM_CHECK(pieces.size() == scores.size(), "tokens_terminal: ", pieces.size(), " pieces but ", scores.size(), " scores");
  const double m = max_abs(scores);
  std::string o;
  char buf[64];
  for (size_t i = 0; i < pieces.size(); ++i) {
    const double s = m > 0 ? scores[i] / m : 0.0;
    const int fade = int(std::lround(255 * (1 - std::abs(s))));
    // 24-bit background colour, black text; reset after each token.
    std::snprintf(buf, sizeof buf, "\x1b[48;2;%d;%d;%dm\x1b[30m", s >= 0 ? 255 : fade, fade, s >= 0 ? fade : 255);
    o += buf + pieces[i] + "\x1b[0m";
  }
  return o;
}

}  // namespace loom::explain
