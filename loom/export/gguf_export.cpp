#include "loom/export/gguf_export.h"

#include <cstring>
#include <filesystem>

#include "loom/core/error.h"
#include "loom/core/quant_blocks.h"
#include "loom/quant/quantized_linear.h"
#include "loom/runtime/gguf_gpt.h"
#include "loom/runtime/run.h"

namespace loom::export_ {

namespace {

using io::GGMLType;
using io::GGUFValue;

// llama.cpp's token types (llama_token_type): what its tokenizer does with a token.
constexpr int32_t kTokenNormal = 1, kTokenControl = 3, kTokenUnused = 5;
// llama_ftype values for general.file_type: what most of the file's weights are.
uint32_t file_type(GGMLType t) {
  switch (t) {
    case GGMLType::f32: return 0;   // LLAMA_FTYPE_ALL_F32
    case GGMLType::f16: return 1;   // MOSTLY_F16
    case GGMLType::q4_0: return 2;  // MOSTLY_Q4_0
    case GGMLType::q8_0: return 7;  // MOSTLY_Q8_0
  }
  return 0;
}

std::optional<quant::QuantFormat> as_format(GGMLType t) {
  if (t == GGMLType::q8_0) return quant::QuantFormat::q8_0;
  if (t == GGMLType::q4_0) return quant::QuantFormat::q4_0;
  return std::nullopt;
}

// Rows of f32 values (row length `in`) in the target type's bytes.
std::string encode_rows(const float* x, int64_t rows, int64_t in, GGMLType t) {
  std::string out(io::ggml_row_bytes(t, uint64_t(in)) * uint64_t(rows), '\0');
  switch (t) {
    case GGMLType::f32: std::memcpy(out.data(), x, out.size()); break;
    case GGMLType::f16:
      for (int64_t i = 0; i < rows * in; ++i) {
        const uint16_t h = quant::fp32_to_fp16(x[i]);
        std::memcpy(out.data() + 2 * i, &h, 2);
      }
      break;
    case GGMLType::q8_0:
    case GGMLType::q4_0: {
      const size_t rb = io::ggml_row_bytes(t, uint64_t(in));
      for (int64_t r = 0; r < rows; ++r) quant::quantize_row(*as_format(t), x + r * in, out.data() + r * rb, in);
      break;
    }
  }
  return out;
}

bool is_weight_matrix(const std::string& gname, bool tied) {
  for (const char* s : {".attn_qkv.weight", ".attn_output.weight", ".ffn_up.weight", ".ffn_down.weight"})
    if (gname.ends_with(s)) return true;
  return gname == "output.weight" || (tied && gname == "token_embd.weight");
}

}  // namespace

io::GGMLType parse_gguf_type(const std::string& s) {
  for (GGMLType t : {GGMLType::f32, GGMLType::f16, GGMLType::q8_0, GGMLType::q4_0})
    if (s == io::ggml_type_name(t)) return t;
  LOOM_FAIL("GGUF type '", s, "' is not one of f32, f16, q8_0, q4_0");
}

io::GGUFBuilder gpt_gguf(const models::GPT& gpt, const text::BPETokenizer& tok, const GGUFExportOptions& o) {
  const models::GPTConfig& c = gpt.cfg;
  LOOM_CHECK(c.activation_function != "gelu", "GGUF export: this GPT uses the exact (erf) GELU, but llama.cpp's gpt2 "
             "uses the tanh form (gelu_new); the exported model would compute something else");
  if (const auto f = as_format(o.type))
    LOOM_CHECK(c.n_embd % quant::QK == 0 && c.inner() % quant::QK == 0, "GGUF export: ", io::ggml_type_name(o.type),
               " needs n_embd (", c.n_embd, ") and the MLP width (", c.inner(), ") to be multiples of ", quant::QK,
               "; export as f32 or f16");
  LOOM_CHECK(tok.vocab_size() <= c.vocab_size, "GGUF export: the tokenizer has ", tok.vocab_size(),
             " tokens but the model only ", c.vocab_size);

  io::GGUFBuilder b;
  // 64, not ggml's default 32: every tensor then starts on a cache line, and loom's loader uses f32 weights in place
  // only there (Storage's alignment). llama.cpp reads general.alignment.
  b.alignment = 64;
  b.set("general.architecture", GGUFValue::string("gpt2"));
  b.set("general.name", GGUFValue::string(o.name));
  b.set("general.alignment", GGUFValue::uint32(uint32_t(b.alignment)));
  b.set("general.file_type", GGUFValue::uint32(file_type(o.type)));
  if (as_format(o.type)) b.set("general.quantization_version", GGUFValue::uint32(2));
  b.set("gpt2.context_length", GGUFValue::uint32(uint32_t(c.n_positions)));
  b.set("gpt2.embedding_length", GGUFValue::uint32(uint32_t(c.n_embd)));
  b.set("gpt2.feed_forward_length", GGUFValue::uint32(uint32_t(c.inner())));
  b.set("gpt2.block_count", GGUFValue::uint32(uint32_t(c.n_layer)));
  b.set("gpt2.attention.head_count", GGUFValue::uint32(uint32_t(c.n_head)));
  b.set("gpt2.attention.layer_norm_epsilon", GGUFValue::float32(float(c.layer_norm_epsilon)));

  // The vocabulary in GPT-2's byte-to-unicode spelling (what llama.cpp's "gpt2" tokenizer reads), padded with
  // unused tokens when the model's embedding has more rows than the tokenizer has tokens.
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  const int64_t eot = tok.token_to_id("<|endoftext|>");
  for (int64_t i = 0; i < c.vocab_size; ++i) {
    if (i < tok.vocab_size()) {
      tokens.push_back(tok.id_to_token(i));
      types.push_back(i == eot ? kTokenControl : kTokenNormal);
    } else {
      tokens.push_back("<|loom_pad_" + std::to_string(i) + "|>");
      types.push_back(kTokenUnused);
    }
  }
  const auto pairs = tok.merges();  // spelled out on each call: once here
  std::vector<std::string> merges;
  merges.reserve(pairs.size());
  for (const auto& [a, z] : pairs) merges.push_back(a + " " + z);
  b.set("tokenizer.ggml.model", GGUFValue::string("gpt2"));
  b.set("tokenizer.ggml.pre", GGUFValue::string("gpt-2"));
  b.set("tokenizer.ggml.tokens", GGUFValue::strings(tokens));
  b.set("tokenizer.ggml.token_type", GGUFValue::int32s(types));
  b.set("tokenizer.ggml.merges", GGUFValue::strings(merges));
  if (eot >= 0) {
    b.set("tokenizer.ggml.bos_token_id", GGUFValue::uint32(uint32_t(eot)));
    b.set("tokenizer.ggml.eos_token_id", GGUFValue::uint32(uint32_t(eot)));
  }
  b.set("tokenizer.ggml.add_bos_token", GGUFValue::boolean(false));  // GPT-2 starts text without a BOS

  const bool tied = c.tie_word_embeddings;
  const bool has_head = gpt.lm_head != nullptr;  // a quantized tied GPT keeps its head's blocks here
  const nn::StateDict sd = gpt.state_dict();
  for (const auto& [name, t] : sd.items()) {
    if (tied && has_head && name == "wte.weight") continue;  // the head's blocks are the embedding
    std::string gname = runtime::gguf_gpt2_name(name);
    LOOM_CHECK(!gname.empty(), "GGUF export: no llama.cpp gpt2 tensor for loom's '", name, "'");
    if (tied && gname == "output.weight") gname = "token_embd.weight";
    const bool matrix = t.dim() == 2 || name.ends_with(".weight_q");
    GGMLType want = GGMLType::f32;
    if (o.type == GGMLType::f16 && matrix) want = GGMLType::f16;
    if (as_format(o.type) && is_weight_matrix(gname, tied)) want = o.type;

    std::string bytes;
    int64_t rows, in;
    if (name.ends_with(".weight_q")) {
      const std::string path = name.substr(0, name.size() - 9);
      auto* ql = dynamic_cast<quant::QuantizedLinear*>(gpt.get_submodule(path).get());
      LOOM_CHECK(ql, "GGUF export: '", name, "' is not the blocks of a QuantizedLinear");
      rows = ql->options.out, in = ql->options.in;
      if (as_format(want) == ql->format) {
        const Tensor q = ql->weight_q.contiguous();
        bytes.assign(reinterpret_cast<const char*>(q.data<uint8_t>()), size_t(q.numel()));
      } else {
        const Tensor w = ql->dequantized_weight().contiguous();
        bytes = encode_rows(w.data<float>(), rows, in, want);
      }
    } else {
      const Tensor w = t.to(DType::f32).contiguous();
      in = w.dim() == 0 ? 1 : w.size(-1);
      rows = in ? w.numel() / in : 0;
      LOOM_CHECK(io::ggml_block_size(want) == 1 || in % quant::QK == 0, "GGUF export: '", name, "' rows of ", in,
                 " values cannot be ", io::ggml_type_name(want), " blocks");
      bytes = encode_rows(w.data<float>(), rows, in, want);
    }
    std::vector<uint64_t> dims = {uint64_t(in)};
    if (matrix) dims.push_back(uint64_t(rows));
    b.add_tensor(gname, want, dims, std::move(bytes));
  }
  return b;
}

void save_gpt_gguf(const models::GPT& gpt, const text::BPETokenizer& tok, const std::string& path,
                   const GGUFExportOptions& o) {
  gpt_gguf(gpt, tok, o).save(path);
}

GGUFExportSummary export_gguf(const std::string& checkpoint, const std::string& out, const GGUFExportOptions& o) {
  const runtime::Run run = runtime::load_run(checkpoint);
  LOOM_CHECK(run.kind == runtime::Run::Kind::language_model, checkpoint,
             ": GGUF export takes a GPT language model; this is an image classifier");
  auto* gpt = dynamic_cast<models::GPT*>(run.lm.get());
  LOOM_CHECK(gpt, checkpoint, ": GGUF export takes GPT models (llama.cpp's gpt2 architecture); this is a ",
             run.lm->name());
  auto* bpe = dynamic_cast<const text::BPETokenizer*>(run.tokenizer.get());
  LOOM_CHECK(bpe, checkpoint, ": its tokenizer is '", run.tokenizer->type(),
             "', but llama.cpp's gpt2 models need a byte-level BPE vocabulary (train with --tokenizer gpt2 or bpe:...)");
  const io::GGUFBuilder b = gpt_gguf(*gpt, *bpe, o);
  b.save(out);
  return {int64_t(b.tensor_count()), uint64_t(std::filesystem::file_size(out))};
}

}  // namespace loom::export_
