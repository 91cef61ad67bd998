#include "loom/export/onnx_graph.h"

#include <bit>
#include <cstring>

#include "loom/core/error.h"
#include "loom/export/protobuf_writer.h"
#include "loom/ops/creation.h"

namespace loom::onnx {

namespace {

// Field numbers of onnx.proto used here, by message.
namespace model_f { constexpr uint32_t ir_version = 1, producer_name = 2, producer_version = 3, graph = 7, opset_import = 8, metadata_props = 14; }
namespace opset_f { constexpr uint32_t domain = 1, version = 2; }
namespace entry_f { constexpr uint32_t key = 1, value = 2; }
namespace graph_f { constexpr uint32_t node = 1, name = 2, initializer = 5, input = 11, output = 12; }
namespace node_f { constexpr uint32_t input = 1, output = 2, name = 3, op_type = 4, attribute = 5; }
namespace attr_f { constexpr uint32_t name = 1, f = 2, i = 3, s = 4, t = 5, ints = 8, type = 20; }
namespace tensor_f { constexpr uint32_t dims = 1, data_type = 2, name = 8, raw_data = 9; }
namespace value_f { constexpr uint32_t name = 1, type = 2; }
namespace type_f { constexpr uint32_t tensor_type = 1; }
namespace ttype_f { constexpr uint32_t elem_type = 1, shape = 2; }
namespace shape_f { constexpr uint32_t dim = 1; }
namespace dim_f { constexpr uint32_t dim_value = 1, dim_param = 2; }
// AttributeProto.AttributeType
enum AttrType : int64_t { kFloat = 1, kInt = 2, kString = 3, kTensor = 4, kInts = 7 };

// ONNX 1.12's IR version: the first that goes with opset 17.
constexpr int64_t kIrVersion = 8;

ElemType elem_type_of(const Tensor& t, const std::string& name) {
  if (t.dtype() == DType::f32) return ElemType::f32;
  if (t.dtype() == DType::i64) return ElemType::i64;
  throw Error("ONNX export: tensor '" + name + "' is " + std::string(dtype_name(t.dtype())) +
              "; only f32 and i64 tensors are written (convert it to f32 first)");
}

// A TensorProto without its raw_data payload: dims, data_type, name, then raw_data's tag and length. The
// caller appends the t.numel() * itemsize bytes.
std::string tensor_prefix(const std::string& name, const Tensor& t) {
  ProtoWriter w;
  for (int64_t d = 0; d < t.dim(); ++d) w.int_field(tensor_f::dims, t.size(d));
  w.int_field(tensor_f::data_type, int64_t(elem_type_of(t, name)));
  w.string_field(tensor_f::name, name);
  w.length_prefix(tensor_f::raw_data, uint64_t(t.numel()) * itemsize(t.dtype()));
  return w.take();
}

std::string_view raw_bytes(const Tensor& t) {
  return {static_cast<const char*>(t.raw_data()), size_t(t.numel()) * itemsize(t.dtype())};
}

std::string value_info(const std::string& name, ElemType type, const std::vector<Dim>& dims) {
  ProtoWriter shape;
  for (const Dim& d : dims) {
    ProtoWriter dim;
    if (d.param.empty()) dim.int_field(dim_f::dim_value, d.value);
    else dim.string_field(dim_f::dim_param, d.param);
    shape.message_field(shape_f::dim, dim);
  }
  ProtoWriter tensor_type;
  tensor_type.int_field(ttype_f::elem_type, int64_t(type));
  tensor_type.message_field(ttype_f::shape, shape);
  ProtoWriter type_proto;
  type_proto.message_field(type_f::tensor_type, tensor_type);
  ProtoWriter v;
  v.string_field(value_f::name, name);
  v.message_field(value_f::type, type_proto);
  return v.take();
}

ProtoWriter attr_head(const std::string& name, AttrType type) {
  ProtoWriter w;
  w.string_field(attr_f::name, name);
  w.int_field(attr_f::type, type);
  return w;
}

}  // namespace

Attribute attr_int(const std::string& name, int64_t v) {
  ProtoWriter w = attr_head(name, kInt);
  w.int_field(attr_f::i, v);
  return {w.take()};
}
Attribute attr_float(const std::string& name, float v) {
  ProtoWriter w = attr_head(name, kFloat);
  w.float_field(attr_f::f, v);
  return {w.take()};
}
Attribute attr_string(const std::string& name, const std::string& v) {
  ProtoWriter w = attr_head(name, kString);
  w.bytes_field(attr_f::s, v);
  return {w.take()};
}
Attribute attr_ints(const std::string& name, const std::vector<int64_t>& v) {
  ProtoWriter w = attr_head(name, kInts);
  for (int64_t x : v) w.int_field(attr_f::ints, x);
  return {w.take()};
}
Attribute attr_tensor(const std::string& name, const Tensor& t) {
  ProtoWriter w = attr_head(name, kTensor);
  w.bytes_field(attr_f::t, tensor_proto("", t));
  return {w.take()};
}

std::string tensor_proto(const std::string& name, const Tensor& t) {
  const Tensor c = t.contiguous();
  return tensor_prefix(name, c) + std::string(raw_bytes(c));
}

std::string Graph::unique(const std::string& base) {
  std::string name = base;
  for (int n = 1; used_.count(name); ++n) name = base + "_" + std::to_string(n);
  used_.insert(name);
  return name;
}

std::string Graph::initializer(const std::string& name, const Tensor& t) {
  elem_type_of(t, name);  // refuse other dtypes now, naming the tensor
  const std::string n = unique(name);
  inits_.push_back({n, t.contiguous()});
  return n;
}

std::string Graph::scalar(float v) {
  const uint32_t bits = std::bit_cast<uint32_t>(v);
  if (auto it = scalars_.find(bits); it != scalars_.end()) return it->second;
  Tensor t = empty({}, {.dtype = DType::f32});
  *static_cast<float*>(t.raw_data()) = v;
  return scalars_[bits] = initializer("const_f32", t);
}

std::string Graph::ints(const std::vector<int64_t>& v) {
  if (auto it = int_consts_.find(v); it != int_consts_.end()) return it->second;
  return int_consts_[v] = initializer("const_i64", tensor(v, {int64_t(v.size())}));
}

std::vector<std::string> Graph::node(const std::string& op, const std::vector<std::string>& inputs, int outputs,
                                     const std::vector<Attribute>& attrs) {
  const std::string node_name = unique((scope_.empty() ? "" : scope_ + "/") + op);
  std::vector<std::string> outs;
  for (int i = 0; i < outputs; ++i) outs.push_back(outputs == 1 ? node_name : unique(node_name + ":" + std::to_string(i)));
  ProtoWriter w;
  for (const auto& in : inputs) w.string_field(node_f::input, in);
  for (const auto& out : outs) w.string_field(node_f::output, out);
  w.string_field(node_f::name, node_name);
  w.string_field(node_f::op_type, op);
  for (const auto& a : attrs) w.bytes_field(node_f::attribute, a.bytes);
  nodes_.push_back(w.take());
  op_types_.insert(op);
  return outs;
}

std::string Graph::node(const std::string& op, const std::vector<std::string>& inputs,
                        const std::vector<Attribute>& attrs) {
  return node(op, inputs, 1, attrs)[0];
}

void Graph::input(const std::string& name, ElemType type, const std::vector<Dim>& dims) {
  LOOM_CHECK(!used_.count(name), "ONNX export: graph input name '", name, "' is already taken");
  used_.insert(name);
  inputs_.push_back({name, type, dims});
}

void Graph::output(const std::string& value, const std::string& name, ElemType type, const std::vector<Dim>& dims) {
  LOOM_CHECK(!used_.count(name), "ONNX export: graph output name '", name, "' is already taken");
  used_.insert(name);
  ProtoWriter w;
  w.string_field(node_f::input, value);
  w.string_field(node_f::output, name);
  w.string_field(node_f::name, name);
  w.string_field(node_f::op_type, "Identity");
  nodes_.push_back(w.take());
  op_types_.insert("Identity");
  outputs_.push_back({name, type, dims});
}

size_t Graph::initializer_bytes() const {
  size_t n = 0;
  for (const auto& i : inits_) n += size_t(i.t.numel()) * itemsize(i.t.dtype());
  return n;
}

std::string Graph::model_bytes(int64_t opset) const {
  // The graph's small fields go through a nested writer; the initializers' raw data (the bulk of the file) is
  // appended once, straight into the output, with the lengths computed up front.
  ProtoWriter small;
  for (const auto& n : nodes_) small.bytes_field(graph_f::node, n);
  small.string_field(graph_f::name, name_);
  for (const auto& v : inputs_) small.bytes_field(graph_f::input, value_info(v.name, v.type, v.dims));
  for (const auto& v : outputs_) small.bytes_field(graph_f::output, value_info(v.name, v.type, v.dims));
  std::vector<std::string> prefixes;
  uint64_t graph_size = small.size();
  for (const auto& i : inits_) {
    prefixes.push_back(tensor_prefix(i.name, i.t));
    const uint64_t tensor_size = prefixes.back().size() + raw_bytes(i.t).size();
    graph_size += varint_size((uint64_t(graph_f::initializer) << 3) | 2) + varint_size(tensor_size) + tensor_size;
  }

  // Protobuf's parsers (onnxruntime's, onnx's) refuse messages of 2 GiB or more; weights that large would need
  // ONNX's external-data files, which this writer does not make.
  if (graph_size >= (uint64_t(1) << 31) - 4096)
    throw Error("ONNX export: the graph '" + name_ + "' holds " + std::to_string(graph_size >> 20) +
                " MiB; an ONNX file without external data must stay under 2 GiB (export a smaller model)");
  ProtoWriter model;
  model.reserve(size_t(graph_size) + 4096);
  model.int_field(model_f::ir_version, kIrVersion);
  model.string_field(model_f::producer_name, "loom");
  model.string_field(model_f::producer_version, "1");
  ProtoWriter op;
  op.string_field(opset_f::domain, "");
  op.int_field(opset_f::version, opset);
  model.message_field(model_f::opset_import, op);
  for (const auto& [k, v] : metadata_) {
    ProtoWriter e;
    e.string_field(entry_f::key, k);
    e.string_field(entry_f::value, v);
    model.message_field(model_f::metadata_props, e);
  }
  model.length_prefix(model_f::graph, graph_size);
  model.append_raw(small.bytes());
  for (size_t k = 0; k < inits_.size(); ++k) {
    const std::string_view raw = raw_bytes(inits_[k].t);
    model.length_prefix(graph_f::initializer, prefixes[k].size() + raw.size());
    model.append_raw(prefixes[k]);
    model.append_raw(raw);
  }
  return model.take();
}

}  // namespace loom::onnx
