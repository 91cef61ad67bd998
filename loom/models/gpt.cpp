// GPT-2's forward (pre-LN blocks, fused q/k/v projection, causal attention with its heads read in place from
// that projection, or scaled_dot_product_attention on split heads where the backend cannot or dropout is on;
// the MLP as one fused op) and the cached decoding path. Backward is autograd's: every op used here records its own.
#include "loom/models/gpt.h"

#include <algorithm>
#include <cmath>
#include <typeinfo>

#include "loom/autograd/checkpoint.h"
#include "loom/autograd/function.h"
#include "loom/autograd/grad_mode.h"
#include "loom/backend/backend.h"
#include "loom/core/error.h"
#include "loom/core/limits.h"
#include "loom/io/json_fields.h"
#include "loom/models/gpt_hf.h"
#include "loom/nn/skip_init.h"
#include "loom/ops/attention.h"
#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/fused_mlp.h"
#include "loom/ops/linalg.h"
#include "loom/ops/shape.h"

namespace loom::models {

// ---------------------------------------------------------------- config

nlohmann::json GPTConfig::to_json() const {
  nlohmann::json j = {
      {"arch", "gpt"},
      {"model_type", "gpt2"},
      {"architectures", {"GPT2LMHeadModel"}},
      {"vocab_size", vocab_size},
      {"n_positions", n_positions},
      {"n_ctx", n_positions},
      {"n_embd", n_embd},
      {"n_layer", n_layer},
      {"n_head", n_head},
      {"activation_function", activation_function},
      {"layer_norm_epsilon", layer_norm_epsilon},
      {"embd_pdrop", dropout},
      {"attn_pdrop", dropout},
      {"resid_pdrop", dropout},
      {"tie_word_embeddings", tie_word_embeddings},
      {"initializer_range", initializer_range},
      {"activation_checkpointing", activation_checkpointing},
  };
  j["n_inner"] = n_inner > 0 ? nlohmann::json(n_inner) : nlohmann::json(nullptr);
  return j;
}

GPTConfig GPTConfig::from_json(const nlohmann::json& j, const std::string& where) {
  GPTConfig c;
  // Every field is type- and range-checked here, naming `where` (the file) and the field: a config.json may come
  // from anywhere, and n_layer = 1e9 must be an error, not an allocation that runs for minutes.
  const io::JsonFields f(j, where);
  c.vocab_size = f.integer("vocab_size", c.vocab_size, 1, limits::kMaxVocab);
  c.n_positions = f.integer({"n_positions", "n_ctx", "block_size", "context"}, c.n_positions, 1, limits::kMaxContext);
  c.n_embd = f.integer({"n_embd", "embd", "d_model", "width"}, c.n_embd, 1, limits::kMaxWidth);
  c.n_layer = f.integer({"n_layer", "layers"}, c.n_layer, 0, limits::kMaxLayers);
  c.n_head = f.integer({"n_head", "heads"}, c.n_head, 1, limits::kMaxWidth);
  // null (HF's default) means 4 * n_embd; an explicit value must be a real width, never silently replaced.
  c.n_inner = f.integer("n_inner", 0, 1, limits::kMaxWidth);
  const double p = f.number("resid_pdrop", c.dropout, 0.0, 0.99);
  c.dropout = f.number("dropout", p, 0.0, 0.99);
  c.layer_norm_epsilon = f.number("layer_norm_epsilon", c.layer_norm_epsilon, 0.0, 1.0);
  c.activation_function = f.string("activation_function", c.activation_function);
  c.tie_word_embeddings = f.boolean("tie_word_embeddings", c.tie_word_embeddings);
  c.initializer_range = f.number("initializer_range", c.initializer_range, 0.0, 1e3);
  c.activation_checkpointing = f.boolean("activation_checkpointing", c.activation_checkpointing);
  LOOM_CHECK(!f.boolean("scale_attn_by_inverse_layer_idx", false) && f.boolean("scale_attn_weights", true), where,
             ": only GPT-2's attention scaling (1/sqrt(head_dim)) is supported; the config sets "
             "scale_attn_by_inverse_layer_idx or clears scale_attn_weights");
  try {
    c.validate();
  } catch (const Error& e) {
    if (where == "GPT config") throw;
    LOOM_FAIL(where, ": ", e.what());
  }
  return c;
}

int64_t GPTConfig::num_parameters() const {
  const int64_t e = n_embd, block = 2 * 2 * e + (e * 3 * e + 3 * e) + (e * e + e) + (e * inner() + inner()) +
                                    (inner() * e + e);
  return vocab_size * e * (tie_word_embeddings ? 1 : 2) + n_positions * e + n_layer * block + 2 * e;
}

void GPTConfig::validate() const {
  LOOM_CHECK(vocab_size > 0 && n_positions > 0 && n_embd > 0 && n_layer >= 0 && n_head > 0,
             "GPT config: vocab_size, n_positions, n_embd, n_head must be positive and n_layer >= 0; got vocab_size=",
             vocab_size, " n_positions=", n_positions, " n_embd=", n_embd, " n_layer=", n_layer, " n_head=", n_head);
  check_size("GPT config: vocab_size", vocab_size, 1, limits::kMaxVocab);
  check_size("GPT config: n_positions", n_positions, 1, limits::kMaxContext);
  check_size("GPT config: n_embd", n_embd, 1, limits::kMaxWidth);
  check_size("GPT config: n_layer", n_layer, 0, limits::kMaxLayers);
  check_size("GPT config: n_inner", n_inner, 0, limits::kMaxWidth);
  LOOM_CHECK(n_embd % n_head == 0, "GPT config: n_embd (", n_embd, ") must be divisible by n_head (", n_head, ")");
  LOOM_CHECK(initializer_range >= 0, "GPT config: initializer_range must be >= 0, got ", initializer_range);
  LOOM_CHECK(dropout >= 0 && dropout < 1, "GPT config: dropout must be in [0, 1), got ", dropout);
  LOOM_CHECK(activation_function == "gelu_new" || activation_function == "gelu_pytorch_tanh" ||
                 activation_function == "gelu_fast" || activation_function == "gelu",
             "GPT config: activation_function '", activation_function,
             "' is not supported (use gelu_new, gelu_pytorch_tanh, gelu_fast or gelu)");
  // The f32 weights, plus as much again for loading or initialising them, must fit before anything is allocated.
  check_fits_in_memory(8.0 * double(num_parameters()),
                       "a GPT with n_layer=" + std::to_string(n_layer) + ", n_embd=" + std::to_string(n_embd) +
                           ", vocab_size=" + std::to_string(vocab_size) + " (" + std::to_string(num_parameters()) +
                           " parameters)");
}

// ---------------------------------------------------------------- blocks

GPTAttention::GPTAttention(const GPTConfig& c) : n_head(c.n_head), n_embd(c.n_embd), dropout(c.dropout) {
  c_attn = register_module("c_attn", std::make_shared<nn::Linear>(nn::LinearOptions{.in = c.n_embd, .out = 3 * c.n_embd}));
  c_proj = register_module("c_proj", std::make_shared<nn::Linear>(nn::LinearOptions{.in = c.n_embd, .out = c.n_embd}));
  resid_dropout = register_module("resid_dropout", std::make_shared<nn::Dropout>(nn::DropoutOptions{.p = c.dropout}));
}

namespace {

// (B, T, 3C) -> q, k, v each a contiguous (B, H, T, D) tensor, in one pass (Backend::split_heads); backward
// writes the three
// gradients straight into one (B, T, 3C) tensor. Views would cost more: attention wants contiguous
// operands (a copy each), and the backward of three slices of one tensor scatters each into a zero
// (B, T, 3C) tensor and sums them (measured ~10% of a W3 training step).
std::vector<Tensor> split_heads(const Tensor& qkv0, int64_t H) {
  LOOM_CHECK(qkv0.dim() == 3 && qkv0.size(2) % (3 * H) == 0 &&
                 (qkv0.dtype() == DType::f32 || qkv0.dtype() == DType::f64),
             "GPT split_heads: expected f32/f64 (B, T, 3 * n_embd), got ", qkv0.shape(), " ", qkv0.dtype());
  Tensor qkv = qkv0.contiguous();
  const int64_t B = qkv.size(0), Tn = qkv.size(1), D = qkv.size(2) / (3 * H);
  Tensor q = make_tensor({B, H, Tn, D}, qkv.dtype(), qkv.device()), k = make_tensor({B, H, Tn, D}, qkv.dtype(), qkv.device()),
         v = make_tensor({B, H, Tn, D}, qkv.dtype(), qkv.device());
  backend_for(qkv).split_heads(q, k, v, qkv, H);
  if (autograd::needs_grad({qkv0}))
    autograd::record("SplitHeads", {q, k, v}, {qkv0}, [H, shape = qkv.shape(), dt = qkv.dtype(), dev = qkv.device()](const std::vector<Tensor>& g) {
      Tensor gx = make_tensor(shape, dt, dev);
      backend_for(gx).merge_heads_grad(gx, g[0].contiguous(), g[1].contiguous(), g[2].contiguous(), H);
      return std::vector<Tensor>{gx};
    });
  return {q, k, v};
}
// (B, H, T, D) -> (B, T, H * D)
Tensor merge_heads(const Tensor& y) {
  return y.transpose(1, 2).reshape({y.size(0), y.size(2), y.size(1) * y.size(3)});
}

// Whether causal_attention_in_place runs for this projection: a backend that reads heads in place
// (Backend::attention_layouts) and f32/f64 values.
bool attends_in_place(const Tensor& qkv) {
  return qkv.dim() == 3 && (qkv.dtype() == DType::f32 || qkv.dtype() == DType::f64) &&
         backend_for(qkv).attention_layouts();
}

// (B, T, 3C) q/k/v projections -> causal attention's (B, T, C) output, what split_heads + attention + merge_heads
// give, with the heads read from the projection and written to the output in place (AttnShape's layouts), and
// backward writing dq, dk, dv straight into one (B, T, 3C) gradient: no head is copied either way (the copies
// were ~4% of a W3 training step).
Tensor causal_attention_in_place(const Tensor& qkv0, int64_t H) {
  LOOM_CHECK(qkv0.size(2) % (3 * H) == 0, "GPT attention: expected (B, T, 3 * n_embd) with n_embd divisible by ", H,
             " heads, got ", qkv0.shape());
  const Tensor qkv = qkv0.contiguous();
  const int64_t B = qkv.size(0), Tn = qkv.size(1), C = qkv.size(2) / 3, D = C / H;
  AttnShape s{B * H, Tn, Tn, D, D, 1.0 / std::sqrt(double(D)), true};
  s.q_layout = s.k_layout = s.v_layout = AttnShape::Layout{H, Tn * 3 * C, D, 3 * C};
  s.o_layout = AttnShape::Layout{H, Tn * C, D, C};
  Tensor out = make_tensor({B, Tn, C}, qkv.dtype(), qkv.device()), lse = make_tensor({B * H, Tn}, qkv.dtype(), qkv.device());
  if (out.numel() > 0)
    backend_for(qkv).attention_forward(s, out, lse, qkv.narrow(2, 0, C), qkv.narrow(2, C, C), qkv.narrow(2, 2 * C, C),
                                       AttentionMask{});
  if (autograd::needs_grad({qkv0}))
    autograd::record("CausalSelfAttention", {out}, {qkv0},
                     [sx = autograd::save(qkv, "gpt attention"), so = autograd::save(out, "gpt attention"),
                      sl = autograd::save(lse, "gpt attention"), s, C](const std::vector<Tensor>& g) {
                       const Tensor& x = sx.get();
                       const Tensor go = g[0].contiguous();
                       Tensor gx = make_tensor(x.shape(), x.dtype(), x.device());
                       Tensor dq = gx.narrow(2, 0, C), dk = gx.narrow(2, C, C), dv = gx.narrow(2, 2 * C, C);
                       if (gx.numel() > 0)
                         backend_for(x).attention_backward(s, dq, dk, dv, x.narrow(2, 0, C), x.narrow(2, C, C),
                                                           x.narrow(2, 2 * C, C), AttentionMask{}, so.get(), sl.get(), go);
                       return std::vector<Tensor>{gx};
                     });
  return out;
}
}  // namespace

Tensor GPTAttention::forward(const Tensor& x) {
  const Tensor proj = (*c_attn)(x);
  const double p = is_training() ? dropout : 0.0;
  if (p == 0.0 && attends_in_place(proj)) return (*resid_dropout)((*c_proj)(causal_attention_in_place(proj, n_head)));
  auto qkv = split_heads(proj, n_head);
  Tensor y = scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], {.is_causal = true, .dropout_p = p});
  return (*resid_dropout)((*c_proj)(merge_heads(y)));
}

Tensor GPTAttention::forward_cached(const Tensor& x, Tensor& k_cache, Tensor& v_cache, int64_t pos) {
  const int64_t t = x.size(1);
  auto qkv = split_heads((*c_attn)(x), n_head);
  k_cache.narrow(2, pos, t).copy_(qkv[1]);
  v_cache.narrow(2, pos, t).copy_(qkv[2]);
  Tensor k = k_cache.narrow(2, 0, pos + t), v = v_cache.narrow(2, 0, pos + t);
  SDPAOptions o;
  if (pos == 0) {
    o.is_causal = true;  // prefill into an empty cache: the plain causal case
  } else if (t > 1) {
    // Queries sit at positions pos..pos+t-1: query i sees keys j <= pos + i (bottom-right alignment,
    // which PyTorch's top-left is_causal does not give when Tq < Tk).
    o.attn_mask = arange(pos + t).unsqueeze(0) <= (arange(t).unsqueeze(1) + double(pos));
  }
  Tensor y = scaled_dot_product_attention(qkv[0], k, v, o);
  return (*c_proj)(merge_heads(y));
}

Tensor GPTAttention::forward_slots(const Tensor& x, Tensor& k_cache, Tensor& v_cache, std::span<const int64_t> rows,
                                  std::span<const int64_t> pos) {
  const int64_t t = x.size(1);
  auto qkv = split_heads((*c_attn)(x), n_head);  // the projections run batched over all rows
  const int64_t n = int64_t(rows.size());
  for (int64_t i = 0; i < n; ++i) {
    k_cache.narrow(0, rows[size_t(i)], 1).narrow(2, pos[size_t(i)], t).copy_(qkv[1].narrow(0, i, 1));
    v_cache.narrow(0, rows[size_t(i)], 1).narrow(2, pos[size_t(i)], t).copy_(qkv[2].narrow(0, i, 1));
  }
  if (t == 1) {
    // A decode step: every row attends over its own slot in place, as far as that slot is filled (no gather of
    // the rows' caches, no padding to the longest row), in one call whatever the rows and their lengths.
    std::vector<int64_t> lens(pos.begin(), pos.end());
    for (int64_t& l : lens) l += 1;
    return (*c_proj)(merge_heads(slot_attention(qkv[0], k_cache, v_cache, rows, lens)));
  }
  std::vector<Tensor> ys;
  for (size_t i = 0; i < rows.size(); ++i) {
    // A prefill chunk: attention over the row's own slot.
    const int64_t r = rows[i], p = pos[i], ii = int64_t(i);
    Tensor kc = k_cache.narrow(0, r, 1), vc = v_cache.narrow(0, r, 1);
    SDPAOptions o;
    if (p == 0) o.is_causal = true;
    else if (t > 1) o.attn_mask = arange(p + t).unsqueeze(0) <= (arange(t).unsqueeze(1) + double(p));
    ys.push_back(scaled_dot_product_attention(qkv[0].narrow(0, ii, 1), kc.narrow(2, 0, p + t), vc.narrow(2, 0, p + t), o));
  }
  Tensor y = ys.size() == 1 ? ys[0] : cat(ys, 0);
  return (*c_proj)(merge_heads(y));
}

GPTMLP::GPTMLP(const GPTConfig& c) : approximate(c.activation_function == "gelu" ? "none" : "tanh") {
  c_fc = register_module("c_fc", std::make_shared<nn::Linear>(nn::LinearOptions{.in = c.n_embd, .out = c.inner()}));
  c_proj = register_module("c_proj", std::make_shared<nn::Linear>(nn::LinearOptions{.in = c.inner(), .out = c.n_embd}));
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(nn::DropoutOptions{.p = c.dropout}));
}

Tensor GPTMLP::forward(const Tensor& x) {
  // Both layers plain Linears without hooks (not quantized, nothing observing c_fc's output): one fused op
  // (fused_mlp.h); otherwise each module runs as itself.
  const auto plain = [](const nn::Linear& l) { return typeid(l) == typeid(nn::Linear) && !l.has_forward_hooks(); };
  if (plain(*c_fc) && plain(*c_proj))
    return (*dropout)(gelu_mlp(x, c_fc->weight, c_fc->bias, c_proj->weight, c_proj->bias, approximate));
  return (*dropout)((*c_proj)(gelu((*c_fc)(x), approximate)));
}

GPTBlock::GPTBlock(const GPTConfig& c) {
  const nn::LayerNormOptions ln{.normalized_shape = {c.n_embd}, .eps = c.layer_norm_epsilon};
  ln_1 = register_module("ln_1", std::make_shared<nn::LayerNorm>(ln));
  attn = register_module("attn", std::make_shared<GPTAttention>(c));
  ln_2 = register_module("ln_2", std::make_shared<nn::LayerNorm>(ln));
  mlp = register_module("mlp", std::make_shared<GPTMLP>(c));
}

Tensor GPTBlock::forward(const Tensor& x) {
  Tensor h = x + (*attn)((*ln_1)(x));
  return h + (*mlp)((*ln_2)(h));
}

Tensor GPTBlock::forward_cached(const Tensor& x, Tensor& k_cache, Tensor& v_cache, int64_t pos) {
  Tensor h = x + attn->forward_cached((*ln_1)(x), k_cache, v_cache, pos);
  return h + mlp->c_proj->forward(gelu(mlp->c_fc->forward((*ln_2)(h)), mlp->approximate));
}

Tensor GPTBlock::forward_slots(const Tensor& x, Tensor& k_cache, Tensor& v_cache, std::span<const int64_t> rows,
                               std::span<const int64_t> pos) {
  Tensor h = x + attn->forward_slots((*ln_1)(x), k_cache, v_cache, rows, pos);
  return h + mlp->c_proj->forward(gelu(mlp->c_fc->forward((*ln_2)(h)), mlp->approximate));
}

// ---------------------------------------------------------------- the model

GPT::GPT(const GPTConfig& c) : cfg(c) {
  cfg.validate();
  wte = register_module("wte", std::make_shared<nn::Embedding>(
                                   nn::EmbeddingOptions{.num_embeddings = c.vocab_size, .embedding_dim = c.n_embd}));
  wpe = register_module("wpe", std::make_shared<nn::Embedding>(
                                   nn::EmbeddingOptions{.num_embeddings = c.n_positions, .embedding_dim = c.n_embd}));
  drop = register_module("drop", std::make_shared<nn::Dropout>(nn::DropoutOptions{.p = c.dropout}));
  h = register_module("h", std::make_shared<nn::ModuleList>());
  for (int64_t i = 0; i < c.n_layer; ++i) {
    blocks.push_back(std::make_shared<GPTBlock>(c));
    h->push_back(blocks.back());
  }
  ln_f = register_module("ln_f", std::make_shared<nn::LayerNorm>(
                                     nn::LayerNormOptions{.normalized_shape = {c.n_embd}, .eps = c.layer_norm_epsilon}));
  if (!c.tie_word_embeddings)
    lm_head = register_module("lm_head", std::make_shared<nn::Linear>(
                                             nn::LinearOptions{.in = c.n_embd, .out = c.vocab_size, .bias = false}));
  reset_parameters();
}

void GPT::reset_parameters() {
  if (nn::SkipInitGuard::active()) return;  // the caller loads every weight next (nn/skip_init.h)
  NoGradGuard no_grad;
  const double std = cfg.initializer_range, proj_std = std / std::sqrt(2.0 * double(std::max<int64_t>(cfg.n_layer, 1)));
  for (auto& [name, p] : named_parameters()) {
    const bool is_weight = name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0;
    if (name.find("ln_") != std::string::npos) p.fill_(is_weight ? 1.0 : 0.0);
    else if (!is_weight) p.zero_();
    else if (name.find("c_proj.weight") != std::string::npos) p.normal_(0.0, proj_std);
    else p.normal_(0.0, std);
  }
}

Tensor GPT::embed(const Tensor& idx, int64_t pos) {
  LOOM_CHECK(idx.dim() == 2, "GPT: expected token ids of shape (B, T), got ", idx.shape());
  const int64_t T = idx.size(1);
  LOOM_CHECK(T >= 1 && pos + T <= cfg.n_positions, "GPT: sequence of ", pos + T,
             " tokens is longer than the context (n_positions = ", cfg.n_positions, "); crop the input");
  return (*wte)(idx) + (*wpe)(arange(pos, pos + T));
}

Tensor GPT::hidden(const Tensor& idx) {
  Tensor x = (*drop)(embed(idx, 0));
  const bool recompute = cfg.activation_checkpointing && is_training() && grad_enabled();
  for (auto& blk : blocks)
    x = recompute ? checkpoint([blk](const Tensor& in) { return (*blk)(in); }, x) : (*blk)(x);
  return (*ln_f)(x);
}

Tensor GPT::forward(const Tensor& idx) {
  // A quantized model (models/gpt_quant.h) sets lm_head even when tied: its blocks are then the head.
  if (lm_head) return (*lm_head)(hidden(idx));
  return linear(hidden(idx), lm_head_weight());
}

std::unique_ptr<DecodeState> GPT::start_decoding(int64_t batch, int64_t max_len) {
  if (max_len <= 0) max_len = cfg.n_positions;
  LOOM_CHECK(batch >= 1, "GPT::start_decoding: batch must be >= 1, got ", batch);
  LOOM_CHECK(max_len <= cfg.n_positions, "GPT::start_decoding: max_len ", max_len,
             " exceeds the context (n_positions = ", cfg.n_positions, ")");
  auto st = std::make_unique<GPTDecodeState>();
  st->batch = batch;
  st->max_len = max_len;
  const int64_t D = cfg.n_embd / cfg.n_head;
  // wpe, not wte: a quantized tied model's wte holds no f32 table (quant/quantized_embedding.h).
  const DType dt = wpe->weight.dtype();
  const Device dev = wpe->weight.device();  // the cache lives where the model does (a GPU model decodes there)
  for (int64_t i = 0; i < cfg.n_layer; ++i) {
    st->k.push_back(make_tensor({batch, cfg.n_head, max_len, D}, dt, dev));
    st->v.push_back(make_tensor({batch, cfg.n_head, max_len, D}, dt, dev));
  }
  return st;
}

Tensor GPT::decode_step(DecodeState& state, const Tensor& idx) {
  auto* st = dynamic_cast<GPTDecodeState*>(&state);
  LOOM_CHECK(st != nullptr, "GPT::decode_step: the state was not made by this GPT's start_decoding");
  LOOM_CHECK(idx.dim() == 2 && idx.size(0) == st->batch, "GPT::decode_step: expected ids of shape (", st->batch,
             ", t), got ", idx.shape());
  const int64_t pos = st->position, t = idx.size(1);
  LOOM_CHECK(pos + t <= st->max_len, "GPT::decode_step: ", pos + t, " tokens exceed the cache (max_len = ",
             st->max_len, "); start_decoding with a larger max_len (at most n_positions = ", cfg.n_positions, ")");
  NoGradGuard no_grad;
  Tensor x = embed(idx, pos);
  for (size_t i = 0; i < blocks.size(); ++i) x = blocks[i]->forward_cached(x, st->k[i], st->v[i], pos);
  st->position += t;
  Tensor last = (*ln_f)(x.select(1, t - 1));  // (B, C): only the last position's logits are needed
  if (lm_head) return (*lm_head)(last);
  return linear(last, lm_head_weight());
}

std::unique_ptr<SlotDecodeState> GPT::start_slots(int64_t slots, int64_t max_len) {
  if (max_len <= 0) max_len = cfg.n_positions;
  LOOM_CHECK(slots >= 1, "GPT::start_slots: slots must be >= 1, got ", slots);
  LOOM_CHECK(max_len <= cfg.n_positions, "GPT::start_slots: max_len ", max_len, " exceeds the context (n_positions = ",
             cfg.n_positions, ")");
  auto st = std::make_unique<GPTSlotState>();
  st->lengths.assign(size_t(slots), 0);
  st->max_len = max_len;
  const int64_t D = cfg.n_embd / cfg.n_head;
  const DType dt = wpe->weight.dtype();
  // Zeroed, not just allocated: a decode step reads every row up to the longest length and masks the rest,
  // and a masked key's weight (exactly 0) times a never-written value that happens to be NaN would be NaN.
  for (int64_t i = 0; i < cfg.n_layer; ++i) {
    st->k.push_back(zeros({slots, cfg.n_head, max_len, D}, {.dtype = dt}));
    st->v.push_back(zeros({slots, cfg.n_head, max_len, D}, {.dtype = dt}));
  }
  return st;
}

Tensor GPT::decode_slots(SlotDecodeState& state, std::span<const int64_t> rows, const Tensor& idx) {
  auto* st = dynamic_cast<GPTSlotState*>(&state);
  LOOM_CHECK(st != nullptr, "GPT::decode_slots: the state was not made by this GPT's start_slots");
  check_slot_rows(state, rows, idx, "GPT::decode_slots");
  const int64_t n = idx.size(0), t = idx.size(1);
  std::vector<int64_t> pos(rows.size()), positions;
  positions.reserve(size_t(n * t));
  for (size_t i = 0; i < rows.size(); ++i) {
    pos[i] = st->lengths[size_t(rows[i])];
    for (int64_t j = 0; j < t; ++j) positions.push_back(pos[i] + j);
  }
  NoGradGuard no_grad;
  Tensor x = (*wte)(idx) + (*wpe)(tensor(positions, {n, t}));
  for (size_t i = 0; i < blocks.size(); ++i) x = blocks[i]->forward_slots(x, st->k[i], st->v[i], rows, pos);
  for (int64_t r : rows) st->lengths[size_t(r)] += t;
  Tensor last = (*ln_f)(x.select(1, t - 1));  // (n, C)
  if (lm_head) return (*lm_head)(last);  // a quantized model's head (models/gpt_quant.h)
  return linear(last, lm_head_weight());
}

Tensor GPT::lm_head_weight() const {
  const Tensor& w = cfg.tie_word_embeddings ? wte->weight : lm_head->weight;
  LOOM_CHECK(w.defined(), "GPT: the LM head has no f32 weight: the model is quantized (its head is ",
             lm_head ? lm_head->name() : "absent", "); call lm_head, or run the f32 model");
  return w;
}

void GPT::save(const std::string& dir, const io::Metadata& extra) const { save_gpt_hf(*this, dir, extra); }

}  // namespace loom::models
