// ONNX export (loom/export/): the protobuf encoder and graph builder byte for byte against hand-worked
// encodings, then exported models run in onnxruntime-node (installed by scripts/install_onnxruntime_node.sh
// into a test-only folder; skipped with a message when npm cannot be reached) on inputs written here, their
// logits within 1e-4 of loom's: the seed cnn, mlp and lenet, a Sequential of every other mapped layer, tiny
// GPTs (tanh GELU + tied head; erf GELU + separate head) at three (batch, sequence) shapes in one session,
// and `loom export` on run folders (a trained cnn, a GPT run, the same GPT as a Hugging Face Hub folder). With the `onnx` Python module present, the files also pass its checker.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "loom/loom.h"
#include "support/loom_cli.h"
#include "support/run_command.h"
#include "support/scratch.h"

using namespace loom;
namespace fs = std::filesystem;

using loom::test::slurp;
using loom::test::loom_cmd;

namespace {

std::string hex(const std::string& bytes) {
  std::string s;
  char b[4];
  for (unsigned char c : bytes) {
    std::snprintf(b, sizeof b, "%02x ", c);
    s += b;
  }
  if (!s.empty()) s.pop_back();
  return s;
}

// ---------------------------------------------------------------------------------------------- encoder

TEST(ProtobufWriter, Varints) {
  const std::pair<uint64_t, std::string> cases[] = {
      {0, "00"}, {1, "01"}, {127, "7f"}, {128, "80 01"}, {150, "96 01"}, {300, "ac 02"}, {16384, "80 80 01"},
      {~uint64_t(0), "ff ff ff ff ff ff ff ff ff 01"}};
  for (const auto& [v, want] : cases) {
    std::string out;
    onnx::append_varint(out, v);
    EXPECT_EQ(hex(out), want) << v;
    EXPECT_EQ(onnx::varint_size(v), out.size()) << v;
  }
}

TEST(ProtobufWriter, FieldsAndNestedMessages) {
  onnx::ProtoWriter w;
  w.int_field(1, 150);            // tag 0x08 (field 1, varint)
  w.string_field(2, "testing");   // tag 0x12 (field 2, length-delimited), length 7
  w.int_field(3, -1);             // int64 -1: ten bytes, not zigzag
  w.float_field(4, 1.0f);         // tag 0x25 (field 4, fixed32), 0x3f800000 little-endian
  onnx::ProtoWriter inner;
  inner.int_field(1, 150);
  w.message_field(3, inner);      // 1a 03 + inner's three bytes
  w.int_field(20, 2);             // tag (20 << 3) = 160: a two-byte varint a0 01
  EXPECT_EQ(hex(w.bytes()),
            "08 96 01 "
            "12 07 74 65 73 74 69 6e 67 "
            "18 ff ff ff ff ff ff ff ff ff 01 "
            "25 00 00 80 3f "
            "1a 03 08 96 01 "
            "a0 01 02");
}

TEST(OnnxGraph, AttributesAndTensors) {
  // AttributeProto: name (1), type (20: INT = 2), i (3).
  EXPECT_EQ(hex(onnx::attr_int("axis", 1).bytes), "0a 04 61 78 69 73 a0 01 02 18 01");
  // INTS = 7, one unpacked ints (8) field per value; FLOAT = 1, f (2) as fixed32.
  EXPECT_EQ(hex(onnx::attr_ints("perm", {1, 0}).bytes), "0a 04 70 65 72 6d a0 01 07 40 01 40 00");
  EXPECT_EQ(hex(onnx::attr_float("alpha", 0.5f).bytes), "0a 05 61 6c 70 68 61 a0 01 01 15 00 00 00 3f");
  // TensorProto: dims (1), data_type (2: FLOAT = 1, INT64 = 7), name (8), raw_data (9).
  EXPECT_EQ(hex(onnx::tensor_proto("w", tensor(std::vector<float>{1.0f, 2.0f}, {2}))),
            "08 02 10 01 42 01 77 4a 08 00 00 80 3f 00 00 00 40");
  EXPECT_EQ(hex(onnx::tensor_proto("s", tensor(std::vector<int64_t>{3}, {1}))),
            "08 01 10 07 42 01 73 4a 08 03 00 00 00 00 00 00 00");
  EXPECT_THROW(onnx::tensor_proto("h", zeros({2}, {.dtype = DType::f64})), Error);
}

TEST(OnnxGraph, WholeModelBytes) {
  onnx::Graph g("g");
  g.input("x", onnx::ElemType::f32, {onnx::Dim::named("n")});
  g.output(g.node("Relu", {"x"}), "y", onnx::ElemType::f32, {onnx::Dim::named("n")});
  // NodeProto: input (1), output (2), name (3), op_type (4). ValueInfoProto "x": name, then TypeProto {
  // tensor_type { elem_type 1, shape { dim { dim_param "n" } } } }.
  const std::string relu = "0a 01 78 12 04 52 65 6c 75 1a 04 52 65 6c 75 22 04 52 65 6c 75";  // 21 bytes
  const std::string identity = "0a 04 52 65 6c 75 12 01 79 1a 01 79 22 08 49 64 65 6e 74 69 74 79";  // 22
  const std::string vi_x = "0a 01 78 12 0b 0a 09 08 01 12 05 0a 03 12 01 6e";  // 16
  const std::string vi_y = "0a 01 79 12 0b 0a 09 08 01 12 05 0a 03 12 01 6e";
  // GraphProto: node (1) x2, name (2), input (11: tag 5a), output (12: tag 62); 86 = 0x56 bytes.
  const std::string graph = "0a 15 " + relu + " 0a 16 " + identity + " 12 01 67 5a 10 " + vi_x + " 62 10 " + vi_y;
  // ModelProto: ir_version (1) = 8, producer_name (2) "loom", producer_version (3) "1", opset_import (8:
  // tag 42) { domain "" , version 17 }, graph (7: tag 3a).
  EXPECT_EQ(hex(g.model_bytes()), "08 08 12 04 6c 6f 6f 6d 1a 01 31 42 04 0a 00 10 11 3a 56 " + graph);
  EXPECT_EQ(g.num_nodes(), 2u);
  EXPECT_EQ(g.op_types(), (std::set<std::string>{"Identity", "Relu"}));
}

TEST(OnnxGraph, UniqueNamesAndSharedConstants) {
  onnx::Graph g("g");
  g.input("x", onnx::ElemType::f32, {onnx::Dim::fixed(2)});
  g.set_scope("blk");
  EXPECT_EQ(g.node("Relu", {"x"}), "blk/Relu");
  EXPECT_EQ(g.node("Relu", {"x"}), "blk/Relu_1");
  EXPECT_EQ(g.scalar(0.5f), g.scalar(0.5f));
  EXPECT_NE(g.scalar(0.5f), g.scalar(-0.5f));
  EXPECT_EQ(g.ints({0, 0, 4}), g.ints({0, 0, 4}));
  EXPECT_EQ(g.initializer("w", zeros({2})), "w");
  EXPECT_EQ(g.initializer("w", zeros({2})), "w_1");
  EXPECT_EQ(g.num_initializers(), 5u);  // two scalars, one i64 vector, two weights
  const auto outs = g.node("Split", {"x"}, 2);
  EXPECT_EQ(outs, (std::vector<std::string>{"blk/Split:0", "blk/Split:1"}));
  EXPECT_THROW(g.input("x", onnx::ElemType::f32, {}), Error);  // taken
}

// ------------------------------------------------------------------------------------- onnxruntime-node

// The install folder, or "" (with the reason in *why) when npm or the registry is unreachable.
std::string ort_dir(std::string* why) {
  static std::string dir, err;
  static bool tried = false;
  if (!tried) {
    tried = true;
    auto r = test::run_command("bash " LOOM_TEST_DIR "/../scripts/install_onnxruntime_node.sh");
    if (r.status == 0) {
      dir = r.out;
      while (!dir.empty() && (dir.back() == '\n' || dir.back() == '\r')) dir.pop_back();
    } else {
      err = r.err;
    }
  }
  *why = err;
  return dir;
}

#define REQUIRE_ORT(dir)                                                                                     \
  std::string why_;                                                                                          \
  const std::string dir = ort_dir(&why_);                                                                    \
  if (dir.empty()) GTEST_SKIP() << "SKIPPED: onnxruntime-node could not be installed (npm unreachable?): " << why_

void write_raw(const fs::path& p, const Tensor& t) {
  const Tensor c = t.contiguous();
  test::write_file(p, std::string(static_cast<const char*>(c.raw_data()), size_t(c.numel()) * itemsize(c.dtype())));
}

// Runs `model` in onnxruntime-node once per input (one session), returning the outputs as f32 tensors.
std::vector<Tensor> run_ort(const std::string& ort, const fs::path& model, const std::string& input_name,
                            const std::vector<Tensor>& inputs) {
  nlohmann::json job = {{"runs", nlohmann::json::array()}};
  const std::string stem = model.stem().string();
  for (size_t i = 0; i < inputs.size(); ++i) {
    const fs::path in = test::scratch(stem + "_in" + std::to_string(i) + ".bin");
    write_raw(in, inputs[i]);
    job["runs"].push_back({{"inputs", {{input_name, {{"type", inputs[i].dtype() == DType::i64 ? "int64" : "float32"},
                                                      {"dims", inputs[i].shape()}, {"file", in.string()}}}}},
                           {"output", "logits"},
                           {"out_file", test::scratch(stem + "_out" + std::to_string(i) + ".bin").string()}});
  }
  const fs::path job_file = test::scratch(stem + "_job.json");
  test::write_file(job_file, job.dump());
  auto r = test::run_command("ORT_DIR='" + ort + "' timeout 120 node " LOOM_TEST_DIR "/onnx/run_onnx.cjs '" +
                             model.string() + "' '" + job_file.string() + "'");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  std::vector<Tensor> outs;
  const auto lines = test::json_lines(r.out);
  for (size_t i = 0; i < inputs.size() && i < lines.size(); ++i) {
    const Shape dims = lines[i]["dims"].get<Shape>();
    const std::string bytes = slurp(job["runs"][i]["out_file"].get<std::string>());
    Tensor t = empty(dims);
    EXPECT_EQ(bytes.size(), size_t(t.numel()) * 4) << "output " << i;
    if (bytes.size() == size_t(t.numel()) * 4) std::memcpy(t.raw_data(), bytes.data(), bytes.size());
    outs.push_back(t);
  }
  EXPECT_EQ(outs.size(), inputs.size()) << r.out << r.err;
  return outs;
}

std::string str(const Shape& s) {
  std::ostringstream o;
  loom::operator<<(o, s);
  return o.str();
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  if (a.shape() != b.shape()) return 1e30;
  return (a - b).abs().max().item<double>();
}

// The optional second opinion: onnx's own checker (full_check runs shape inference), when installed.
void onnx_checker(const fs::path& model) {
  if (test::run_command("/usr/bin/python3 -c 'import onnx'").status != 0) return;  // not installed here
  auto r = test::run_command("/usr/bin/python3 -c 'import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), "
                             "full_check=True)' '" + model.string() + "'");
  EXPECT_EQ(r.status, 0) << r.err;
}

// Exports `model`, runs it in onnxruntime on `inputs` and compares with loom's forward.
void check_sequential(const std::string& ort, const std::string& name, std::shared_ptr<nn::Sequential> model,
                      const Shape& sample, const std::vector<Tensor>& inputs) {
  model->eval();
  const fs::path file = test::scratch(name + ".onnx");
  const auto s = onnx::export_onnx(*model, sample, file.string());
  EXPECT_EQ(s.file_bytes, fs::file_size(file));
  const auto outs = run_ort(ort, file, "input", inputs);
  NoGradGuard ng;
  for (size_t i = 0; i < outs.size(); ++i) {
    const double d = max_abs_diff(outs[i], (*model)(inputs[i]));
    EXPECT_LT(d, 1e-4) << name << " input " << str(inputs[i].shape());
    std::cout << "[ onnx ] " << name << " input " << str(inputs[i].shape()) << ": max |onnxruntime - loom| = " << d << "\n";
  }
  onnx_checker(file);
}

TEST(OnnxRuntime, SeedImageModels) {
  REQUIRE_ORT(ort);
  manual_seed(3);
  const models::ModelSpec spec{.channels = 1, .height = 28, .width = 28, .num_classes = 10, .widths = {}};
  for (const std::string name : {"cnn", "mlp", "lenet"}) {
    auto m = models::make_model(name, spec);
    check_sequential(ort, name, m, {1, 28, 28}, {randn({4, 1, 28, 28}), randn({1, 1, 28, 28})});
  }
}

TEST(OnnxRuntime, EveryMappedLayer) {
  REQUIRE_ORT(ort);
  manual_seed(4);
  auto bn2 = std::make_shared<nn::BatchNorm2d>(nn::BatchNormOptions{.num_features = 6});
  auto bn1 = std::make_shared<nn::BatchNorm1d>(nn::BatchNormOptions{.num_features = 12, .eps = 1e-3});
  for (auto* bn : {static_cast<nn::BatchNorm*>(bn2.get()), static_cast<nn::BatchNorm*>(bn1.get())}) {
    // Running statistics and affine parameters away from their 0/1 starts, so each one matters.
    NoGradGuard ng;
    bn->running_mean.copy_(randn(bn->running_mean.shape()));
    bn->running_var.copy_(rand(bn->running_var.shape()) + 0.5);
    bn->weight.copy_(randn(bn->weight.shape()));
    bn->bias.copy_(randn(bn->bias.shape()));
  }
  // Each pipeline ends on a layer with an unbounded output, so an error anywhere upstream shows in it.
  auto convs = std::make_shared<nn::Sequential>(
      nn::Conv2d({.in = 3, .out = 6, .kernel_size = 3, .stride = 2, .padding = 1, .groups = 3}), bn2,
      nn::LeakyReLU({.negative_slope = 0.1}),
      nn::Conv2d({.in = 6, .out = 8, .kernel_size = {3, 1}, .padding = {1, 0}, .dilation = {2, 1}, .bias = false}),
      nn::GELU({.approximate = "tanh"}),
      nn::MaxPool2d({.kernel_size = 3, .stride = 2, .padding = 1, .ceil_mode = true}), nn::ELU({.alpha = 0.7}),
      nn::AvgPool2d({.kernel_size = 2, .stride = 1, .padding = 1, .count_include_pad = false}), nn::SiLU(),
      nn::Dropout({.p = 0.5}), nn::Sequential(nn::AdaptiveAvgPool2d({.output_size = 1}), nn::Flatten()),
      nn::Linear({.in = 8, .out = 12}), bn1, nn::GELU(), nn::Identity(), nn::Linear({.in = 12, .out = 5}));
  auto squash = std::make_shared<nn::Sequential>(nn::Tanh(), nn::Linear({.in = 5, .out = 5, .bias = false}),
                                                 nn::Sigmoid(), nn::Linear({.in = 5, .out = 5}),
                                                 nn::LogSoftmax({.dim = 1}));
  {  // weights 3x their default init, so the activations span a range where a wrong constant shows
    NoGradGuard ng;
    for (auto* m : {convs.get(), squash.get()})
      for (auto& [k, p] : m->named_parameters()) p.copy_(p * 3.0);
  }
  check_sequential(ort, "layers", convs, {3, 9, 11}, {randn({3, 3, 9, 11}) * 2.0, randn({1, 3, 9, 11}) * 2.0});
  check_sequential(ort, "squash", squash, {5}, {randn({4, 5}) * 3.0});
  // Softmax, a Flatten that keeps a trailing dim (a Reshape) and a Linear on a 3-D input (MatMul + Add).
  auto reshaping = std::make_shared<nn::Sequential>(nn::Flatten({.start_dim = 1, .end_dim = 2}),
                                                    nn::Linear({.in = 5, .out = 4}), nn::ReLU(),
                                                    nn::Softmax({.dim = -1}));
  check_sequential(ort, "reshaping", reshaping, {3, 4, 5}, {randn({2, 3, 4, 5})});
}

std::vector<Tensor> random_ids(int64_t vocab, std::vector<std::pair<int64_t, int64_t>> shapes) {
  std::mt19937 rng(7);
  std::vector<Tensor> out;
  for (auto [b, t] : shapes) {
    std::vector<int64_t> v(size_t(b * t));
    for (auto& x : v) x = int64_t(rng() % uint32_t(vocab));
    out.push_back(tensor(v, {b, t}));
  }
  return out;
}

void check_gpt(const std::string& ort, const std::string& name, models::GPT& gpt) {
  gpt.eval();
  const fs::path file = test::scratch(name + ".onnx");
  onnx::export_onnx(gpt, file.string());
  const auto inputs = random_ids(gpt.cfg.vocab_size, {{2, 7}, {1, gpt.cfg.n_positions}, {3, 1}});
  const auto outs = run_ort(ort, file, "input_ids", inputs);
  NoGradGuard ng;
  for (size_t i = 0; i < outs.size(); ++i) {
    const Tensor want = gpt(inputs[i]);
    const double d = max_abs_diff(outs[i], want);
    EXPECT_GT(want.abs().max().item<double>(), 1.0) << "logits too small to test the graph";
    EXPECT_LT(d, 1e-4) << name << " ids " << str(inputs[i].shape());
    std::cout << "[ onnx ] " << name << " ids " << str(inputs[i].shape()) << ": max |onnxruntime - loom| = " << d << "\n";
  }
  onnx_checker(file);
}

TEST(OnnxRuntime, GptTiedTanhGelu) {
  REQUIRE_ORT(ort);
  manual_seed(5);
  // Weights N(0, 0.3) rather than GPT-2's 0.02: logits of a few units, so a 1e-4 bound tests every op.
  models::GPT gpt({.vocab_size = 61, .n_positions = 16, .n_embd = 32, .n_layer = 2, .n_head = 4, .initializer_range = 0.3});
  check_gpt(ort, "gpt_tied", gpt);
}

TEST(OnnxRuntime, GptSeparateHeadErfGelu) {
  REQUIRE_ORT(ort);
  manual_seed(6);
  models::GPT gpt({.vocab_size = 40, .n_positions = 12, .n_embd = 24, .n_layer = 3, .n_head = 2, .n_inner = 40,
                   .layer_norm_epsilon = 1e-6, .activation_function = "gelu", .tie_word_embeddings = false,
                   .initializer_range = 0.3});
  // LayerNorm parameters off their one/zero start, so a swapped scale/bias would show.
  {
    NoGradGuard ng;
    for (auto& [k, p] : gpt.named_parameters())
      if (k.find("ln_") != std::string::npos) p.copy_(randn(p.shape()) * 0.5 + (k.ends_with("weight") ? 1.0 : 0.0));
  }
  check_gpt(ort, "gpt_untied", gpt);
}

// ---------------------------------------------------------------------------------------------- refusals

// A layer derived from Linear with another forward (as quantized layers are): its members look like a
// Linear's, but exporting them as one would compute something else.
struct DoubledLinear : nn::Linear {
  using nn::Linear::Linear;
  Tensor forward(const Tensor& x) override { return nn::Linear::forward(x) * 2.0; }
  std::string name() const override { return "DoubledLinear"; }
};
struct ShiftedConv : nn::Conv2d {
  using nn::Conv2d::Conv2d;
  Tensor forward(const Tensor& x) override { return nn::Conv2d::forward(x) + 1.0; }
  std::string name() const override { return "ShiftedConv"; }
};

TEST(OnnxExport, RefusesWhatItCannotMap) {
  auto derived = std::make_shared<nn::Sequential>(nn::Flatten(), DoubledLinear({.in = 4, .out = 2}));
  try {
    onnx::onnx_graph(*derived, {4});
    FAIL() << "a layer derived from Linear was exported as a Linear";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer '1' is a DoubledLinear, derived from Linear"), std::string::npos) << e.what();
  }
  auto derived_conv = std::make_shared<nn::Sequential>(ShiftedConv({.in = 1, .out = 2, .kernel_size = 1}));
  EXPECT_THROW(onnx::onnx_graph(*derived_conv, {1, 3, 3}), Error);

  auto rnn_in_seq = std::make_shared<nn::Sequential>(nn::Flatten(), nn::Linear({.in = 4, .out = 4}),
                                                     nn::GroupNorm({.num_groups = 2, .num_channels = 4}));
  try {
    onnx::onnx_graph(*rnn_in_seq, {4});
    FAIL() << "GroupNorm was exported";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer '2' (GroupNorm) has no ONNX mapping"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("supported layers: Linear"), std::string::npos) << e.what();
  }
  auto adaptive = std::make_shared<nn::Sequential>(nn::AdaptiveAvgPool2d({.output_size = 2}));
  EXPECT_THROW(onnx::onnx_graph(*adaptive, {1, 4, 4}), Error);
  auto batch_stats = std::make_shared<nn::Sequential>(
      nn::BatchNorm1d({.num_features = 3, .track_running_stats = false}));
  EXPECT_THROW(onnx::onnx_graph(*batch_stats, {3}), Error);
  models::GPT gpt({.vocab_size = 8, .n_positions = 4, .n_embd = 32, .n_layer = 1, .n_head = 2});
  EXPECT_THROW(onnx::onnx_graph(gpt, {.opset = 13}), Error);
  models::quantize_gpt(gpt, quant::QuantFormat::q8_0);
  try {
    onnx::onnx_graph(gpt);
    FAIL() << "a quantized GPT was exported";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("h.0.attn.c_attn"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("quantized"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------- the CLI

TEST(OnnxCli, ExportsClassifierAndGptRuns) {
  REQUIRE_ORT(ort);
  // A cnn run trained for a few steps.
  const fs::path cnn_run = test::scratch("cnn_run");
  auto r = loom_cmd("train --model cnn --data fashion-mnist --train-samples 128 --test-samples 32 --batch-size 32 "
                    "--threads 1 --steps 3 --progress none --seed 1 --out " + cnn_run.string());
  ASSERT_EQ(r.status, 0) << r.err;
  const fs::path cnn_file = test::scratch("cli_cnn.onnx");
  r = loom_cmd("export --checkpoint " + cnn_run.string() + " --format onnx --out " + cnn_file.string());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("ops: Conv Flatten Gemm Identity MaxPool Relu"), std::string::npos) << r.out;
  for (const auto& e : fs::directory_iterator(cnn_file.parent_path()))  // the atomic write left no temporary
    EXPECT_EQ(e.path().filename().string().find("cli_cnn.onnx."), std::string::npos) << e.path();
  const auto run = runtime::load_classifier(cnn_run.string());
  const Tensor x = randn({2, 1, 28, 28});
  const auto outs = run_ort(ort, cnn_file, "input", {x});
  NoGradGuard ng;
  if (!outs.empty()) {
    EXPECT_LT(max_abs_diff(outs[0], (*run.model)(x)), 1e-4);
  }
  // The run's class names and normalisation travel in metadata_props.
  const std::string bytes = slurp(cnn_file);
  EXPECT_NE(bytes.find("loom.mean"), std::string::npos);
  EXPECT_NE(bytes.find("T-shirt/top"), std::string::npos);

  // A GPT run folder (as `loom train --model gpt` saves it: Hugging Face names and config).
  const fs::path gpt_run = test::scratch("gpt_run");
  manual_seed(8);
  models::GPT gpt({.vocab_size = 30, .n_positions = 10, .n_embd = 16, .n_layer = 2, .n_head = 2});
  gpt.save(gpt_run.string());
  const fs::path gpt_file = test::scratch("exports") / "gpt" / "cli_gpt.onnx";  // folders made as needed
  r = loom_cmd("export --checkpoint " + gpt_run.string() + " --format onnx --out " + gpt_file.string());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("LayerNormalization"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Trilu"), std::string::npos) << r.out;
  gpt.eval();
  const auto ids = random_ids(30, {{2, 10}});
  const auto gouts = run_ort(ort, gpt_file, "input_ids", ids);
  if (!gouts.empty()) {
    EXPECT_LT(max_abs_diff(gouts[0], gpt(ids[0])), 1e-4);
  }

  // The same weights as a Hugging Face Hub folder: config.json without loom's "arch" key (and with HF's
  // dropout 0.1, which inference ignores).
  const fs::path hf = test::scratch("hf_gpt2");
  fs::copy(gpt_run, hf);
  auto cfg = nlohmann::json::parse(slurp(hf / "config.json"));
  cfg.erase("arch");
  cfg["resid_pdrop"] = cfg["embd_pdrop"] = cfg["attn_pdrop"] = 0.1;
  test::write_file(hf / "config.json", cfg.dump());
  const fs::path hf_file = test::scratch("cli_hf.onnx");
  r = loom_cmd("export --checkpoint " + hf.string() + " --format onnx --out " + hf_file.string());
  ASSERT_EQ(r.status, 0) << r.err;
  const auto houts = run_ort(ort, hf_file, "input_ids", ids);
  if (!houts.empty()) {
    EXPECT_LT(max_abs_diff(houts[0], gpt(ids[0])), 1e-4);
  }
}

TEST(OnnxCli, BadInputsAreClearErrors) {
  const fs::path gpt_run = test::scratch("gpt_run_bad");
  models::GPT({.vocab_size = 10, .n_positions = 4, .n_embd = 8, .n_layer = 1, .n_head = 2}).save(gpt_run.string());
  const std::string out = test::scratch("bad.onnx").string();
  auto r = loom_cmd("export --checkpoint " + gpt_run.string() + " --format tflite --out " + out);
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--format"), std::string::npos) << r.err;
  r = loom_cmd("export --checkpoint " + gpt_run.string() + " --format onnx");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--out FILE"), std::string::npos) << r.err;
  r = loom_cmd("export --checkpoint " + test::scratch("nowhere").string() + " --format onnx --out " + out);
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("no such folder"), std::string::npos) << r.err;
  // An LSTM language model: refused by name.
  const fs::path lstm_run = test::scratch("lstm_run");
  models::LSTMLM(models::LSTMLMConfig{.vocab_size = 10, .embedding = 8, .layers = 1, .hidden = 8})
      .save(lstm_run.string());
  r = loom_cmd("export --checkpoint " + lstm_run.string() + " --format onnx --out " + out);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("only GPT runs"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
  // A folder that is no run at all.
  const fs::path empty_dir = test::scratch("empty_dir");
  fs::create_directories(empty_dir);
  r = loom_cmd("export --checkpoint " + empty_dir.string() + " --format onnx --out " + out);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("empty_dir"), std::string::npos) << r.err;
}

}  // namespace
