// A tiny ONNX graph builder: initializers (weights), nodes with attributes, typed graph inputs/outputs with
// fixed or named (dynamic) dims, and the ModelProto bytes (IR version 8, the default opset 17). Field numbers
// are those of onnx.proto. Value names are made unique by the builder; a scope names the nodes after the
// module they come from ("h.0.attn/MatMul_3"), which is what Netron and onnxruntime's errors show.
//   onnx::Graph g("mlp");
//   g.input("input", onnx::ElemType::f32, {onnx::Dim::named("batch"), onnx::Dim::fixed(784)});
//   std::string y = g.node("Gemm", {"input", g.initializer("0.weight", w), g.initializer("0.bias", b)},
//                          {onnx::attr_int("transB", 1)});
//   g.output(g.node("Relu", {y}), "logits", onnx::ElemType::f32, {onnx::Dim::named("batch"), onnx::Dim::fixed(512)});
//   io::write_file_atomic("mlp.onnx", g.model_bytes());
#pragma once
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "loom/core/tensor.h"

namespace loom::onnx {

// TensorProto.DataType values used here.
enum class ElemType : int32_t { f32 = 1, i64 = 7 };

// One dim of a graph input/output: a fixed size, or a name (dim_param) the runtime binds per call.
struct Dim {
  int64_t value = -1;
  std::string param;
  static Dim fixed(int64_t v) { return {v, ""}; }
  static Dim named(std::string p) { return {-1, std::move(p)}; }
};

// An encoded AttributeProto (made by the attr_* functions).
struct Attribute {
  std::string bytes;
};
Attribute attr_int(const std::string& name, int64_t v);
Attribute attr_float(const std::string& name, float v);
Attribute attr_string(const std::string& name, const std::string& v);
Attribute attr_ints(const std::string& name, const std::vector<int64_t>& v);
// A tensor-valued attribute (ConstantOfShape's value): f32 or i64.
Attribute attr_tensor(const std::string& name, const Tensor& t);

// The TensorProto of `t` (f32 or i64; copied contiguous, little-endian raw_data) named `name`.
std::string tensor_proto(const std::string& name, const Tensor& t);

class Graph {
 public:
  explicit Graph(std::string name) : name_(std::move(name)) {}

  // Adds a weight; returns its value name (`name` made unique). f32 and i64 only; throws naming the tensor
  // for other dtypes.
  std::string initializer(const std::string& name, const Tensor& t);
  // Shared constants, one initializer per distinct value: a f32 scalar, an i64 vector.
  std::string scalar(float v);
  std::string ints(const std::vector<int64_t>& v);

  // A node with one output (returned) or `outputs` outputs; the names come from the scope and the op.
  std::string node(const std::string& op, const std::vector<std::string>& inputs,
                   const std::vector<Attribute>& attrs = {});
  std::vector<std::string> node(const std::string& op, const std::vector<std::string>& inputs, int outputs,
                                const std::vector<Attribute>& attrs = {});
  // Makes `value` a graph output called `name` through an Identity node, so outputs have stable names
  // ("logits") whatever node computed them.
  void output(const std::string& value, const std::string& name, ElemType type, const std::vector<Dim>& dims);
  void input(const std::string& name, ElemType type, const std::vector<Dim>& dims);
  // Prefix of the node names made next ("" for none).
  void set_scope(const std::string& scope) { scope_ = scope; }
  // ModelProto.metadata_props: key/value strings a consumer may read (class names, normalisation).
  void metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

  // The ModelProto: IR version 8, opset `opset` of the default domain, producer "loom".
  std::string model_bytes(int64_t opset = 17) const;

  // What was built: the distinct op types, node and initializer counts, the weights' bytes.
  const std::set<std::string>& op_types() const { return op_types_; }
  size_t num_nodes() const { return nodes_.size(); }
  size_t num_initializers() const { return inits_.size(); }
  size_t initializer_bytes() const;

 private:
  std::string unique(const std::string& base);

  struct Init {
    std::string name;
    Tensor t;  // contiguous f32 / i64
  };
  struct ValueInfo {
    std::string name;
    ElemType type;
    std::vector<Dim> dims;
  };
  std::string name_, scope_;
  std::vector<std::string> nodes_;  // encoded NodeProtos
  std::vector<Init> inits_;
  std::vector<ValueInfo> inputs_, outputs_;
  std::map<std::string, std::string> metadata_;
  std::set<std::string> used_;  // value and node names taken
  std::map<uint32_t, std::string> scalars_;  // by bit pattern (-0.0 and inf are values too)
  std::map<std::vector<int64_t>, std::string> int_consts_;
  std::set<std::string> op_types_;
};

}  // namespace loom::onnx
