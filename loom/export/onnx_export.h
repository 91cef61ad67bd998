// ONNX (opset 17) export of loom's image models and GPTs, for onnxruntime and other ONNX runtimes.
//   onnx::export_onnx(*cnn, {1, 28, 28}, "cnn.onnx");             // input "input" (batch, 1, 28, 28) -> "logits"
//   onnx::export_onnx(*gpt, "gpt.onnx");                           // "input_ids" i64 (batch, seq) -> "logits"
//   onnx::OnnxExportSummary s = onnx::export_onnx_run("runs/cnn", "cnn.onnx");   // a run folder, as `loom export`
// Image models: a Sequential of Linear, Conv2d, BatchNorm1d/2d (eval statistics), MaxPool2d, AvgPool2d,
// AdaptiveAvgPool2d(1), Flatten, ReLU, LeakyReLU, ELU, GELU (erf or tanh, decomposed), SiLU, Sigmoid, Tanh,
// Softmax, LogSoftmax, nested Sequentials; Dropout and Identity are left out (inference). The batch dim is
// dynamic ("batch"); the input is what the model takes (already normalised: the run's mean/std are in the
// file's metadata_props as loom.mean / loom.std, with loom.classes).
// GPT: token + position embeddings (Gather, Slice of wpe to the sequence length), pre-LN blocks
// (LayerNormalization), attention as MatMul / Softmax with an additive causal mask (Trilu of -inf), GELU in
// the model's own form (tanh for gelu_new, erf for gelu) decomposed into Mul/Add/Tanh|Erf, the tied LM head
// as a MatMul with wte transposed. Batch and sequence are dynamic ("batch", "sequence"; sequence <= the
// context). Layers derived from Linear / Conv2d (quantized GPT blocks, int8 image layers) are refused: their
// activations are quantized too.
// Anything else throws loom::Error naming the layer and what is supported.
#pragma once
#include <map>
#include <set>
#include <string>

#include "loom/core/shape.h"
#include "loom/export/onnx_graph.h"
#include "loom/models/gpt.h"
#include "loom/nn/container.h"

namespace loom::onnx {

struct OnnxExportOptions {
  int64_t opset = 17;  // the only opset the graphs are written for; anything else is refused
  // Extra metadata_props (a run's class names, normalisation, source folder).
  std::map<std::string, std::string> metadata = {};
};

// What was written.
struct OnnxExportSummary {
  std::string model;             // "cnn", "mlp", "gpt", ... (a Sequential's run name, or "sequential")
  std::set<std::string> ops;     // the ONNX op types used
  size_t nodes = 0, initializers = 0, weight_bytes = 0, file_bytes = 0;
};

// `sample_shape`: one input without the batch dim ((C, H, W) or (features)). The graph is traced by
// running the model in loom on zeros of that shape (eval mode, no gradients), layer by layer.
Graph onnx_graph(nn::Sequential& model, const Shape& sample_shape, const OnnxExportOptions& o = {});
Graph onnx_graph(const models::GPT& gpt, const OnnxExportOptions& o = {});

// Build the graph and write it atomically to `path`.
OnnxExportSummary export_onnx(nn::Sequential& model, const Shape& sample_shape, const std::string& path,
                              const OnnxExportOptions& o = {});
OnnxExportSummary export_onnx(const models::GPT& gpt, const std::string& path, const OnnxExportOptions& o = {});
// A classifier run folder (runtime::load_classifier) or a GPT run / Hugging Face GPT-2 folder; other language
// models (lstm-lm) and seq2seq runs are refused with loom::Error naming the folder.
OnnxExportSummary export_onnx_run(const std::string& checkpoint, const std::string& path,
                                  const OnnxExportOptions& o = {});

}  // namespace loom::onnx
