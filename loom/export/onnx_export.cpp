#include "loom/export/onnx_export.h"

#include <cmath>
#include <filesystem>
#include <limits>
#include <typeinfo>

#include <nlohmann/json.hpp>

#include "loom/autograd/grad_mode.h"
#include "loom/core/error.h"
#include "loom/io/safetensors.h"
#include "loom/nn/activation.h"
#include "loom/nn/conv_layers.h"
#include "loom/nn/dropout.h"
#include "loom/nn/linear.h"
#include "loom/nn/norm_layers.h"
#include "loom/nn/pooling.h"
#include "loom/ops/creation.h"
#include "loom/runtime/classifier_run.h"
#include "loom/runtime/run.h"

namespace loom::onnx {

namespace {

const char* const kSupportedLayers =
    "Linear, Conv2d, BatchNorm1d/2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d(1), Flatten, ReLU, LeakyReLU, ELU, "
    "GELU, SiLU, Sigmoid, Tanh, Softmax, LogSoftmax, Dropout, Identity, Sequential";

void check_opset(const OnnxExportOptions& o) {
  if (o.opset != 17)
    throw Error("ONNX export: opset " + std::to_string(o.opset) + " is not supported; the graphs are written for opset 17");
}

// GELU exactly as loom computes it (backend/cpu/elementwise.cpp), decomposed: opset 17 has no Gelu op.
//   erf:  0.5 x (1 + erf(x / sqrt 2))          tanh: 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
std::string gelu(Graph& g, const std::string& x, const std::string& approximate) {
  std::string t;
  if (approximate == "tanh") {
    const std::string x3 = g.node("Mul", {g.node("Mul", {x, x}), x});
    const std::string inner = g.node("Add", {x, g.node("Mul", {x3, g.scalar(0.044715f)})});
    t = g.node("Tanh", {g.node("Mul", {inner, g.scalar(0.7978845608028654f)})});
  } else {
    t = g.node("Erf", {g.node("Mul", {x, g.scalar(0.7071067811865476f)})});
  }
  return g.node("Mul", {g.node("Mul", {x, g.scalar(0.5f)}), g.node("Add", {t, g.scalar(1.0f)})});
}

// Layers derived from Linear / Conv2d compute something else with the same members: quantized layers (Q8_0/Q4_0
// GPT blocks, int8 image layers) quantize their activations too, so an f32 graph of their weights would not
// compute what loom does. Only the exact classes are mapped; anything derived is refused, naming it.
template <class Base>
void require_exact(const Base& m, const std::string& name) {
  if (typeid(m) == typeid(Base)) return;
  throw Error("ONNX export: layer '" + name + "' is a " + m.name() + ", derived from " + (typeid(Base) == typeid(nn::Linear) ? "Linear" : "Conv2d") +
              " (a quantized layer, or another forward), which the ONNX graphs do not express; export the f32 run it "
              "was quantized from");
}

// A Linear's weight (out, in).
const Tensor& linear_weight(const nn::Linear& l, const std::string& name) {
  require_exact(l, name);
  return l.weight;
}

// x @ W^T + b for x of any rank: MatMul with the weight stored transposed (in, out), then Add.
std::string matmul_linear(Graph& g, const std::string& x, const nn::Linear& l, const std::string& name) {
  std::string y = g.node("MatMul", {x, g.initializer(name + ".weight", linear_weight(l, name).t().contiguous())});
  if (l.bias.defined()) y = g.node("Add", {y, g.initializer(name + ".bias", l.bias)});
  return y;
}

std::vector<int64_t> pair(const nn::IntPair& p) { return {p.h, p.w}; }
std::vector<int64_t> pads(const nn::IntPair& p) { return {p.h, p.w, p.h, p.w}; }  // begin h, w; end h, w

[[noreturn]] void unsupported(const std::string& path, const nn::Module& m, const std::string& why = "") {
  throw Error("ONNX export: layer '" + path + "' (" + m.name() + ") " +
              (why.empty() ? "has no ONNX mapping" : why) + "; supported layers: " + kSupportedLayers);
}

// Emits the nodes of one layer applied to x, whose loom value for a zero batch of one is `probe` (its shape
// gives the rank and sizes the graph needs), and advances both.
void emit_layer(Graph& g, nn::Module& m, const std::string& path, std::string& x, Tensor& probe) {
  g.set_scope(path);
  if (auto* seq = dynamic_cast<nn::Sequential*>(&m)) {
    for (auto& [name, child] : seq->named_children()) emit_layer(g, *child, path.empty() ? name : path + "." + name, x, probe);
    return;
  }
  const std::string& p = path;
  if (auto* l = dynamic_cast<nn::Linear*>(&m)) {
    if (probe.dim() == 2) {  // Gemm: y = x W^T + b, the weight as stored
      std::vector<std::string> in = {x, g.initializer(p + ".weight", linear_weight(*l, p))};
      if (l->bias.defined()) in.push_back(g.initializer(p + ".bias", l->bias));
      x = g.node("Gemm", in, {attr_int("transB", 1)});
    } else {
      x = matmul_linear(g, x, *l, p);
    }
  } else if (auto* c = dynamic_cast<nn::Conv2d*>(&m)) {
    require_exact(*c, p);
    const auto& o = c->options;
    std::vector<std::string> in = {x, g.initializer(p + ".weight", c->weight)};
    if (c->bias.defined()) in.push_back(g.initializer(p + ".bias", c->bias));
    x = g.node("Conv", in, {attr_ints("kernel_shape", pair(o.kernel_size)), attr_ints("strides", pair(o.stride)),
                            attr_ints("pads", pads(o.padding)), attr_ints("dilations", pair(o.dilation)),
                            attr_int("group", o.groups)});
  } else if (auto* bn = dynamic_cast<nn::BatchNorm*>(&m)) {
    if (!bn->options.track_running_stats)
      unsupported(p, m, "normalises with batch statistics in eval mode (track_running_stats = false)");
    const int64_t C = bn->options.num_features;
    const Tensor scale = bn->options.affine ? bn->weight : ones({C});
    const Tensor shift = bn->options.affine ? bn->bias : zeros({C});
    x = g.node("BatchNormalization",
               {x, g.initializer(p + ".weight", scale), g.initializer(p + ".bias", shift),
                g.initializer(p + ".running_mean", bn->running_mean), g.initializer(p + ".running_var", bn->running_var)},
               {attr_float("epsilon", float(bn->options.eps))});
  } else if (auto* mp = dynamic_cast<nn::MaxPool2d*>(&m)) {
    const auto& o = mp->options;
    x = g.node("MaxPool", {x}, {attr_ints("kernel_shape", pair(o.kernel_size)), attr_ints("strides", pair(o.stride)),
                                attr_ints("pads", pads(o.padding)), attr_ints("dilations", pair(o.dilation)),
                                attr_int("ceil_mode", o.ceil_mode)});
  } else if (auto* ap = dynamic_cast<nn::AvgPool2d*>(&m)) {
    const auto& o = ap->options;
    x = g.node("AveragePool", {x}, {attr_ints("kernel_shape", pair(o.kernel_size)), attr_ints("strides", pair(o.stride)),
                                    attr_ints("pads", pads(o.padding)), attr_int("ceil_mode", o.ceil_mode),
                                    attr_int("count_include_pad", o.count_include_pad)});
  } else if (auto* ad = dynamic_cast<nn::AdaptiveAvgPool2d*>(&m)) {
    if (ad->options.output_size.h != 1 || ad->options.output_size.w != 1)
      unsupported(p, m, "has output size other than 1 (only global average pooling is mapped)");
    x = g.node("GlobalAveragePool", {x});
  } else if (auto* f = dynamic_cast<nn::Flatten*>(&m)) {
    const int64_t r = probe.dim();
    const int64_t s = f->options.start_dim < 0 ? f->options.start_dim + r : f->options.start_dim;
    const int64_t e = f->options.end_dim < 0 ? f->options.end_dim + r : f->options.end_dim;
    if (s == 1 && e == r - 1) {
      x = g.node("Flatten", {x}, {attr_int("axis", 1)});
    } else {  // the output shape with the batch dim copied (0) or, when it is flattened too, inferred (-1)
      Shape target = m.forward(probe).shape();
      target[0] = s == 0 ? -1 : 0;
      x = g.node("Reshape", {x, g.ints(target)});
    }
  } else if (dynamic_cast<nn::ReLU*>(&m)) {
    x = g.node("Relu", {x});
  } else if (auto* lr = dynamic_cast<nn::LeakyReLU*>(&m)) {
    x = g.node("LeakyRelu", {x}, {attr_float("alpha", float(lr->options.negative_slope))});
  } else if (auto* el = dynamic_cast<nn::ELU*>(&m)) {
    x = g.node("Elu", {x}, {attr_float("alpha", float(el->options.alpha))});
  } else if (auto* ge = dynamic_cast<nn::GELU*>(&m)) {
    x = gelu(g, x, ge->options.approximate);
  } else if (dynamic_cast<nn::SiLU*>(&m)) {
    x = g.node("Mul", {x, g.node("Sigmoid", {x})});
  } else if (dynamic_cast<nn::Sigmoid*>(&m)) {
    x = g.node("Sigmoid", {x});
  } else if (dynamic_cast<nn::Tanh*>(&m)) {
    x = g.node("Tanh", {x});
  } else if (auto* sm = dynamic_cast<nn::Softmax*>(&m)) {
    x = g.node("Softmax", {x}, {attr_int("axis", sm->options.dim)});
  } else if (auto* ls = dynamic_cast<nn::LogSoftmax*>(&m)) {
    x = g.node("LogSoftmax", {x}, {attr_int("axis", ls->options.dim)});
  } else if (dynamic_cast<nn::Dropout*>(&m) || dynamic_cast<nn::Identity*>(&m)) {
    // identity at inference: no node
  } else {
    unsupported(p, m);
  }
  probe = m.forward(probe);
}

std::vector<Dim> batch_dims(const Tensor& probe) {
  std::vector<Dim> d = {Dim::named("batch")};
  for (int64_t i = 1; i < probe.dim(); ++i) d.push_back(Dim::fixed(probe.size(i)));
  return d;
}

OnnxExportSummary write(const Graph& g, const std::string& model, const std::string& path, const OnnxExportOptions& o) {
  const std::string bytes = g.model_bytes(o.opset);
  io::write_file_atomic(path, bytes);
  return {model, g.op_types(), g.num_nodes(), g.num_initializers(), g.initializer_bytes(), bytes.size()};
}

}  // namespace

Graph onnx_graph(nn::Sequential& model, const Shape& sample_shape, const OnnxExportOptions& o) {
  check_opset(o);
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  Graph g("loom_sequential");
  for (const auto& [k, v] : o.metadata) g.metadata(k, v);
  Shape in_shape = {1};
  in_shape.insert(in_shape.end(), sample_shape.begin(), sample_shape.end());
  Tensor probe = zeros(in_shape);
  g.input("input", ElemType::f32, batch_dims(probe));
  std::string x = "input";
  try {
    emit_layer(g, model, "", x, probe);
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);
  g.set_scope("");
  g.output(x, "logits", ElemType::f32, batch_dims(probe));
  return g;
}

Graph onnx_graph(const models::GPT& gpt, const OnnxExportOptions& o) {
  check_opset(o);
  NoGradGuard no_grad;
  const auto& c = gpt.cfg;
  const int64_t C = c.n_embd, H = c.n_head, D = C / H;
  Graph g("loom_gpt");
  for (const auto& [k, v] : o.metadata) g.metadata(k, v);
  g.metadata("loom.context", std::to_string(c.n_positions));
  g.input("input_ids", ElemType::i64, {Dim::named("batch"), Dim::named("sequence")});
  // A quantized GPT is refused up front, naming its first quantized layer: its tied wte has no f32 table to read.
  for (size_t i = 0; i < gpt.blocks.size(); ++i) {
    const auto& blk = *gpt.blocks[i];
    const std::string b = "h." + std::to_string(i);
    for (const auto& [l, n] : {std::pair{blk.attn->c_attn.get(), ".attn.c_attn"}, {blk.attn->c_proj.get(), ".attn.c_proj"},
                               {blk.mlp->c_fc.get(), ".mlp.c_fc"}, {blk.mlp->c_proj.get(), ".mlp.c_proj"}})
      require_exact(*l, b + n);
  }
  if (gpt.lm_head) require_exact(*gpt.lm_head, "lm_head");
  const nn::Embedding& wte_layer = *gpt.wte;
  LOOM_CHECK(typeid(wte_layer) == typeid(nn::Embedding), "ONNX export: layer 'wte' is a ", wte_layer.name(),
             ", which the ONNX graphs do not express; export the f32 run it was quantized from");

  // Embeddings: wte rows of the ids, plus wpe's first `sequence` rows (a Slice whose end is the ids' dim 1).
  const std::string wte = g.initializer("wte.weight", gpt.wte->weight);
  const std::string seq_len = g.node("Shape", {"input_ids"}, {attr_int("start", 1), attr_int("end", 2)});
  const std::string pos = g.node("Slice", {g.initializer("wpe.weight", gpt.wpe->weight), g.ints({0}), seq_len, g.ints({0})});
  std::string x = g.node("Add", {g.node("Gather", {wte, "input_ids"}, {attr_int("axis", 0)}), pos});

  // The additive causal mask (T, T): 0 on and below the diagonal, -inf above (Trilu keeps the strict upper
  // triangle of a -inf matrix and zeroes the rest).
  const std::string tt = g.node("Concat", {seq_len, seq_len}, {attr_int("axis", 0)});
  const Tensor neg_inf = full({1}, -std::numeric_limits<double>::infinity());
  const std::string mask = g.node("Trilu", {g.node("ConstantOfShape", {tt}, {attr_tensor("value", neg_inf)}), g.ints({1})},
                                  {attr_int("upper", 1)});
  const std::string split_sizes = g.ints({C, C, C});
  const std::string heads_shape = g.ints({0, 0, H, D}), merged_shape = g.ints({0, 0, C});
  const float scale = float(1.0 / std::sqrt(double(D)));

  const auto layer_norm = [&](const nn::LayerNorm& ln, const std::string& in, const std::string& name) {
    return g.node("LayerNormalization",
                  {in, g.initializer(name + ".weight", ln.weight), g.initializer(name + ".bias", ln.bias)},
                  {attr_int("axis", -1), attr_float("epsilon", float(ln.options.eps))});
  };
  for (size_t i = 0; i < gpt.blocks.size(); ++i) {
    const auto& blk = *gpt.blocks[i];
    const std::string b = "h." + std::to_string(i);
    g.set_scope(b + ".attn");
    const std::string qkv = matmul_linear(g, layer_norm(*blk.ln_1, x, b + ".ln_1"), *blk.attn->c_attn, b + ".attn.c_attn");
    const auto parts = g.node("Split", {qkv, split_sizes}, 3, {attr_int("axis", -1)});
    const auto heads = [&](const std::string& v, std::vector<int64_t> perm) {
      return g.node("Transpose", {g.node("Reshape", {v, heads_shape})}, {attr_ints("perm", perm)});
    };
    const std::string q = heads(parts[0], {0, 2, 1, 3});   // (B, H, T, D)
    const std::string kt = heads(parts[1], {0, 2, 3, 1});  // (B, H, D, T)
    const std::string v = heads(parts[2], {0, 2, 1, 3});
    const std::string scores = g.node("Add", {g.node("Mul", {g.node("MatMul", {q, kt}), g.scalar(scale)}), mask});
    const std::string att = g.node("MatMul", {g.node("Softmax", {scores}, {attr_int("axis", -1)}), v});
    const std::string merged = g.node("Reshape", {g.node("Transpose", {att}, {attr_ints("perm", {0, 2, 1, 3})}), merged_shape});
    x = g.node("Add", {x, matmul_linear(g, merged, *blk.attn->c_proj, b + ".attn.c_proj")});
    g.set_scope(b + ".mlp");
    const std::string hid = matmul_linear(g, layer_norm(*blk.ln_2, x, b + ".ln_2"), *blk.mlp->c_fc, b + ".mlp.c_fc");
    x = g.node("Add", {x, matmul_linear(g, gelu(g, hid, blk.mlp->approximate), *blk.mlp->c_proj, b + ".mlp.c_proj")});
  }
  g.set_scope("ln_f");
  x = layer_norm(*gpt.ln_f, x, "ln_f");
  g.set_scope("lm_head");
  std::string logits;
  if (gpt.lm_head) {  // untied
    logits = matmul_linear(g, x, *gpt.lm_head, "lm_head");
  } else {  // tied: wte is stored once and transposed in the graph
    logits = g.node("MatMul", {x, g.node("Transpose", {wte}, {attr_ints("perm", {1, 0})})});
  }
  g.set_scope("");
  g.output(logits, "logits", ElemType::f32, {Dim::named("batch"), Dim::named("sequence"), Dim::fixed(c.vocab_size)});
  return g;
}

OnnxExportSummary export_onnx(nn::Sequential& model, const Shape& sample_shape, const std::string& path,
                              const OnnxExportOptions& o) {
  return write(onnx_graph(model, sample_shape, o), "sequential", path, o);
}

OnnxExportSummary export_onnx(const models::GPT& gpt, const std::string& path, const OnnxExportOptions& o) {
  return write(onnx_graph(gpt, o), "gpt", path, o);
}

OnnxExportSummary export_onnx_run(const std::string& checkpoint, const std::string& path, const OnnxExportOptions& o) {
  OnnxExportOptions opts = o;
  opts.metadata["loom.source"] = std::filesystem::path(checkpoint).filename().string();
  if (runtime::is_lm_folder(checkpoint)) {
    auto lm = models::load_language_model(checkpoint);
    auto gpt = std::dynamic_pointer_cast<models::GPT>(lm);
    if (!gpt)
      throw Error("ONNX export: " + checkpoint + " holds a " + lm->name() +
                  " language model; only GPT runs (and Hugging Face GPT-2 folders) are exported");
    gpt->eval();
    return write(onnx_graph(*gpt, opts), "gpt", path, opts);
  }
  runtime::ClassifierRun run = runtime::load_classifier(checkpoint);
  opts.metadata["loom.model"] = run.name;
  opts.metadata["loom.classes"] = nlohmann::json(run.classes).dump();
  opts.metadata["loom.mean"] = nlohmann::json(run.mean).dump();
  opts.metadata["loom.std"] = nlohmann::json(run.std).dump();
  Shape sample = models::input_shape(run.name, run.shape, 1);
  sample.erase(sample.begin());
  return write(onnx_graph(*run.model, sample, opts), run.name, path, opts);
}

}  // namespace loom::onnx
