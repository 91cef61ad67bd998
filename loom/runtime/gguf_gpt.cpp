#include "loom/runtime/gguf_gpt.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <set>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "loom/autograd/grad_mode.h"
#include "loom/core/allocator.h"
#include "loom/core/tensor_impl.h"
#include "loom/core/error.h"
#include "loom/core/quant_blocks.h"
#include "loom/io/mapped_file.h"
#include "loom/io/mapped_weights.h"
#include "loom/models/gpt_quant.h"
#include "loom/nn/skip_init.h"
#include "loom/ops/creation.h"

namespace loom::runtime {

namespace {

using io::GGMLType;

// HF GPT-2 module paths inside a block -> llama.cpp's LLM_TENSOR names (llama-arch.cpp's gpt2 table).
const std::map<std::string, std::string>& block_names() {
  static const std::map<std::string, std::string> m = {
      {"ln_1", "attn_norm"},   {"attn.c_attn", "attn_qkv"}, {"attn.c_proj", "attn_output"},
      {"ln_2", "ffn_norm"},    {"mlp.c_fc", "ffn_up"},      {"mlp.c_proj", "ffn_down"}};
  return m;
}

const std::map<std::string, std::string>& top_names() {
  static const std::map<std::string, std::string> m = {
      {"wte", "token_embd"}, {"wpe", "position_embd"}, {"ln_f", "output_norm"}, {"lm_head", "output"}};
  return m;
}

std::optional<quant::QuantFormat> as_format(GGMLType t) {
  if (t == GGMLType::q8_0) return quant::QuantFormat::q8_0;
  if (t == GGMLType::q4_0) return quant::QuantFormat::q4_0;
  return std::nullopt;
}

GGMLType as_ggml(quant::QuantFormat f) { return f == quant::QuantFormat::q8_0 ? GGMLType::q8_0 : GGMLType::q4_0; }

int64_t key_int(const io::GGUFFile& f, const std::string& key) {
  const uint64_t v = f.value(key).as_uint(key);
  LOOM_CHECK(v > 0 && v < (uint64_t(1) << 40), f.path, ": GGUF key ", key, " = ", v, " is out of range");
  return int64_t(v);
}

// The logical (loom) shape a GGUF tensor stands for: ggml's dims reversed.
Shape loom_shape(const io::GGUFTensorInfo& t) {
  std::vector<int64_t> s(t.dims.rbegin(), t.dims.rend());
  return Shape(s);
}

}  // namespace

std::string gguf_gpt2_name(const std::string& loom_name) {
  const size_t dot = loom_name.rfind('.');
  if (dot == std::string::npos) return "";
  std::string module = loom_name.substr(0, dot), leaf = loom_name.substr(dot + 1);
  if (leaf == "weight_q") leaf = "weight";
  if (leaf != "weight" && leaf != "bias") return "";
  if (module.rfind("h.", 0) == 0) {
    const size_t d2 = module.find('.', 2);
    if (d2 == std::string::npos) return "";
    const std::string layer = module.substr(2, d2 - 2), rest = module.substr(d2 + 1);
    if (layer.empty() || layer.find_first_not_of("0123456789") != std::string::npos) return "";
    const auto it = block_names().find(rest);
    return it == block_names().end() ? "" : "blk." + layer + "." + it->second + "." + leaf;
  }
  const auto it = top_names().find(module);
  return it == top_names().end() ? "" : it->second + "." + leaf;
}

namespace {

// ---- f32 weights used in place in the mapped file (load_gguf_gpt) ----
// Makes param's storage the file's own bytes of t when that is exact (io/mapped_weights.h): an f32 tensor of a mapped
// (plain) file, 64-byte aligned, for a contiguous f32 parameter that owns all of its storage.
bool use_in_place(const io::GGUFFile& f, const io::GGUFTensorInfo& t, const Tensor& param) {
  if (!f.mapped || t.type != io::GGMLType::f32 || param.dtype() != DType::f32) return false;
  return io::use_mapped_bytes(param, f.mapped, f.mapped->data_at(f.data_start + t.offset), size_t(t.bytes));
}

// Copies t's bytes to dst. A mapped file is read with pread (io::MappedFile::read), so none of its pages become
// resident: the load holds the model and nothing of the file (copying through the mapping in 1 MiB pieces that were
// handed back still left the peak ~3 MiB above the loaded model, the kernel faulting the file in large folios).
void copy_out(const io::GGUFFile& f, const io::GGUFTensorInfo& t, void* dst) {
  if (f.mapped) {
    f.mapped->read(f.data_start + t.offset, dst, size_t(t.bytes));
    return;
  }
  const std::string_view d = f.data(t);
  std::memcpy(dst, d.data(), d.size());
}

// t's values as f32, written to out (t.elements() floats): copied, widened from f16, or dequantized row by row.
void gguf_floats_into(const io::GGUFFile& f, const io::GGUFTensorInfo& t, float* out) {
  const std::string_view d = f.data(t);
  const uint64_t n = t.elements();
  switch (t.type) {
    case GGMLType::f32: copy_out(f, t, out); break;
    case GGMLType::f16:
      for (uint64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, d.data() + 2 * i, 2);
        out[i] = quant::fp16_to_fp32(h);
      }
      break;
    case GGMLType::q8_0:
    case GGMLType::q4_0: {
      const auto fmt = *as_format(t.type);
      const uint64_t row = t.dims[0], rows = row ? n / row : 0, rb = io::ggml_row_bytes(t.type, row);
      for (uint64_t r = 0; r < rows; ++r) quant::dequantize_row(fmt, d.data() + r * rb, out + r * row, int64_t(row));
      break;
    }
  }
}

// f's value of `key`, to move strings out of (f.value throws naming the file and the key when it is absent).
io::GGUFValue& value_to_take(io::GGUFFile& f, const std::string& key) {
  f.value(key);
  for (auto& [k, v] : f.kv)
    if (k == key) return v;
  LOOM_FAIL(f.path, ": GGUF key ", key, " not found");
}

// The tokenizer: llama.cpp's "gpt2" vocabulary is GPT-2's byte-level BPE, tokens in its byte-to-unicode spelling.
// Built before the model, its strings moved out of the parsed file; the file's vocabulary arrays (~150k parsed
// values, ~13 MB for GPT-2) are then dropped and their heap pages handed back, so they are gone by the time the model
// is allocated: a q8_0 GPT-2 file is only 130 MB, and they and the tokenizer would otherwise sit on top of it.
std::shared_ptr<text::BPETokenizer> take_tokenizer(io::GGUFFile& f, int64_t vocab_size) {
  const std::string& path = f.path;
  const std::string model = f.value("tokenizer.ggml.model").as_string("tokenizer.ggml.model");
  LOOM_CHECK(model == "gpt2", path, ": tokenizer.ggml.model is '", model,
             "'; loom reads only GPT-2-style byte-level BPE vocabularies ('gpt2')");
  io::GGUFValue& toks = value_to_take(f, "tokenizer.ggml.tokens");
  const io::GGUFValue& merges = f.value("tokenizer.ggml.merges");
  LOOM_CHECK(toks.type == io::GGUFType::array && toks.elem == io::GGUFType::string, path,
             ": tokenizer.ggml.tokens must be an array of strings");
  LOOM_CHECK(merges.type == io::GGUFType::array && merges.elem == io::GGUFType::string, path,
             ": tokenizer.ggml.merges must be an array of strings");
  LOOM_CHECK(int64_t(toks.items.size()) == vocab_size, path, ": tokenizer.ggml.tokens has ", toks.items.size(),
             " tokens but token_embd.weight has ", vocab_size, " rows");
  std::vector<std::string> tokens;
  tokens.reserve(toks.items.size());
  for (auto& t : toks.items) tokens.push_back(std::move(t.s));
  std::vector<std::pair<std::string, std::string>> pairs;
  pairs.reserve(merges.items.size());
  for (const auto& m : merges.items) {
    const size_t sp = m.s.find(' ');
    LOOM_CHECK(sp != std::string::npos && sp > 0 && sp + 1 < m.s.size(), path, ": tokenizer.ggml.merges entry '", m.s,
               "' is not two tokens separated by a space");
    pairs.emplace_back(m.s.substr(0, sp), m.s.substr(sp + 1));
  }
  std::shared_ptr<text::BPETokenizer> tok;
  try {
    tok = std::make_shared<text::BPETokenizer>(std::move(tokens), std::move(pairs));
  } catch (const Error& e) {
    LOOM_FAIL(path, ": the GGUF vocabulary is not a byte-level BPE loom can use: ", e.what());
  }
  std::erase_if(f.kv, [](const auto& kv) {
    return kv.first == "tokenizer.ggml.tokens" || kv.first == "tokenizer.ggml.merges" ||
           kv.first == "tokenizer.ggml.token_type";
  });
#if defined(__GLIBC__)
  ::malloc_trim(0);  // glibc keeps freed small blocks in its heap; this returns their whole pages to the kernel
#endif
  return tok;
}

}  // namespace

std::vector<float> gguf_tensor_floats(const io::GGUFFile& f, const io::GGUFTensorInfo& t) {
  std::vector<float> out(t.elements());
  gguf_floats_into(f, t, out.data());
  return out;
}

GGUFModel load_gguf_gpt(const std::string& path) {
  io::GGUFFile f = io::load_gguf(path);
  const std::string arch = f.value("general.architecture").as_string("general.architecture");
  LOOM_CHECK(arch == "gpt2", path, ": GGUF architecture is '", arch, "'; loom loads only 'gpt2' (GPT-2) models");

  const io::GGUFTensorInfo* embd = f.tensor("token_embd.weight");
  LOOM_CHECK(embd && embd->dims.size() == 2, path, ": GGUF gpt2 model has no 2-D token_embd.weight");
  models::GPTConfig cfg;
  cfg.n_embd = key_int(f, "gpt2.embedding_length");
  cfg.n_layer = key_int(f, "gpt2.block_count");
  cfg.n_head = key_int(f, "gpt2.attention.head_count");
  cfg.n_positions = key_int(f, "gpt2.context_length");
  cfg.n_inner = key_int(f, "gpt2.feed_forward_length");
  cfg.vocab_size = int64_t(embd->dims[1]);
  cfg.layer_norm_epsilon = f.value("gpt2.attention.layer_norm_epsilon").as_double("gpt2.attention.layer_norm_epsilon");
  cfg.activation_function = "gelu_new";  // ggml's GELU is the tanh form
  cfg.tie_word_embeddings = f.tensor("output.weight") == nullptr;
  if (const io::GGUFValue* kv = f.find("gpt2.attention.head_count_kv"))
    LOOM_CHECK(int64_t(kv->as_uint("gpt2.attention.head_count_kv")) == cfg.n_head, path,
               ": gpt2.attention.head_count_kv differs from head_count; GPT-2 has no grouped-query attention");
  try {
    cfg.validate();
  } catch (const Error& e) {
    LOOM_FAIL(path, ": the gpt2 hyperparameters in the GGUF metadata are not a valid GPT: ", e.what());
  }

  GGUFModel out;
  out.tokenizer = take_tokenizer(f, cfg.vocab_size);
  // The header (metadata, ~2 MB of vocabulary for GPT-2) has been read; its file pages go back like a tensor's.
  if (f.mapped) f.mapped->release(0, f.data_start);

  // The block Linears decide the model: all q8_0 (or all q4_0) -> a quantized GPT holding the file's blocks.
  std::optional<GGMLType> common;
  bool same = true;
  for (int64_t l = 0; l < cfg.n_layer; ++l)
    for (const char* n : {"attn_qkv", "attn_output", "ffn_up", "ffn_down"}) {
      const std::string name = "blk." + std::to_string(l) + "." + n + ".weight";
      const io::GGUFTensorInfo* t = f.tensor(name);
      LOOM_CHECK(t, path, ": GGUF gpt2 model has no tensor '", name, "'");
      if (!common) common = t->type;
      same = same && t->type == *common;
    }
  const std::optional<quant::QuantFormat> fmt = same && common ? as_format(*common) : std::nullopt;

  std::shared_ptr<models::GPT> gpt;
  {
    // No random init: the loop below fills every tensor of the model from the file (or fails naming the one missing).
    nn::SkipInitGuard skip;
    gpt = std::make_shared<models::GPT>(cfg);
  }
  // Quantized and tied: token_embd's blocks load into the head (lm_head.weight_q is "output.weight", read from
  // token_embd below), and wte reads its rows from there (quant::QuantizedEmbedding), so no f32 table is made.
  if (fmt) models::quantize_gpt(*gpt, *fmt, /*fill=*/false);

  // Each weight goes from the mapped file straight into the model's own tensor, and its file pages are handed back
  // right after, so the load holds the model plus about one tensor of the file.
  NoGradGuard no_grad;
  std::set<std::string> used;
  const nn::StateDict have = gpt->state_dict();
  // All or nothing: used in place only when every tensor of the file is f32. A fault on a mapped weight maps the
  // file's large folios around it, so small f32 tensors in place between copied (and released) blocks brought
  // those blocks' pages back: a q8_0 GPT-2's load peaked 64 MiB higher.
  const bool in_place = f.mapped && std::all_of(f.tensors.begin(), f.tensors.end(),
                                                [](const io::GGUFTensorInfo& t) { return t.type == io::GGMLType::f32; });
  for (const auto& [name, param] : have.items()) {
    std::string gname = gguf_gpt2_name(name);
    if (cfg.tie_word_embeddings && gname == "output.weight") gname = "token_embd.weight";
    const io::GGUFTensorInfo* t = f.tensor(gname);
    LOOM_CHECK(t, path, ": GGUF gpt2 model has no tensor '", gname, "' (loom's ", name, ")");
    const bool blocks = name.ends_with(".weight_q");
    // Logical shape: a block buffer (out, row bytes) stands for (out, in).
    Shape want = param.shape();
    if (blocks) want = Shape({param.size(0), param.size(1) / int64_t(quant::block_bytes(*fmt)) * quant::QK});
    LOOM_CHECK(loom_shape(*t) == want, path, ": GGUF tensor '", gname, "' has shape ", loom_shape(*t),
               " (ggml dims reversed) but the model described by the metadata needs ", want);
    Tensor dst = param;  // shares the parameter's storage
    LOOM_CHECK(dst.is_contiguous() && dst.dtype() == (blocks ? DType::u8 : DType::f32), path, ": loom's ", name,
               " is not a contiguous ", blocks ? "u8 block buffer" : "f32 tensor", " (internal error)");
    if (blocks && t->type == as_ggml(*fmt)) {
      const std::string_view d = f.data(*t);
      LOOM_CHECK(d.size() == size_t(dst.numel()), path, ": GGUF tensor '", gname, "' holds ", d.size(),
                 " bytes of blocks, loom's ", name, " needs ", dst.numel());
      copy_out(f, *t, dst.data<uint8_t>());
    } else if (blocks) {
      // A float (or other-format) head in a quantized file: quantize its rows as loom quantize would.
      const std::vector<float> x = gguf_tensor_floats(f, *t);
      const int64_t in = want[1];
      for (int64_t r = 0; r < want[0]; ++r)
        quant::quantize_row(*fmt, x.data() + r * in, dst.data<uint8_t>() + r * param.size(1), in);
    } else if (in_place && use_in_place(f, *t, dst)) {
      out.in_place_bytes += int64_t(t->bytes);
      used.insert(gname);
      continue;  // its pages are the weight now: never released
    } else {
      gguf_floats_into(f, *t, dst.data<float>());
    }
    f.release(*t);
    used.insert(gname);
  }
  // Every tensor of the file must be used: an extra one means a layout this loader does not understand (llama.cpp
  // refuses such files too), and running without it would silently compute something else.
  for (const auto& t : f.tensors)
    LOOM_CHECK(used.count(t.name), path, ": GGUF tensor '", t.name, "' is not part of a ", cfg.n_layer,
               "-layer gpt2 model (extra or misnamed tensor)");
  gpt->eval();
  // The f32 blocks the constructor made for weights now used in place went to the allocator's cache untouched; a
  // model that reads its weights from the file will not ask for blocks that size again.
  if (out.in_place_bytes > 0) cpu_empty_cache();

  out.model = gpt;
  out.type = same && common ? io::ggml_type_name(*common) : "mixed";
  out.config = gpt->config();
  out.config["gguf"] = {{"type", out.type}, {"file", path}};
  return out;
}

}  // namespace loom::runtime
