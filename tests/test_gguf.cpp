// GGUF v3 (loom/io/gguf.h): the container round-trips every metadata type and tensor type at 32-byte alignment,
// and the reader refuses damaged files (every truncation, bad magic/version, unknown types, impossible counts,
// overlapping or misaligned tensors, duplicates) with loom::Error naming the file, never a crash. GPT export
// (loom/export/gguf_export.h) and import (loom/runtime/gguf_gpt.h): llama.cpp's names and keys; f32 gives
// identical logits, q8_0/q4_0 the same block bytes as loom's own quantizer; f16 within half precision.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>

#include "loom/export/gguf_export.h"
#include "loom/io/gguf.h"
#include "loom/loom.h"
#include "loom/models/gpt_quant.h"
#include "loom/quant/quantized_embedding.h"
#include "loom/quant/quantized_linear.h"
#include "loom/runtime/gguf_gpt.h"
#include "support/scratch.h"

using namespace loom;
using io::GGMLType;
using io::GGUFValue;

namespace {

void expect_error(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected an error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

std::string f32_bytes(const std::vector<float>& v) { return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4); }

io::GGUFBuilder sample_builder() {
  io::GGUFBuilder b;
  b.set("general.architecture", GGUFValue::string("test"));
  b.set("a.u32", GGUFValue::uint32(7));
  b.set("a.i32", GGUFValue::int32(-3));
  b.set("a.f32", GGUFValue::float32(0.5f));
  b.set("a.bool", GGUFValue::boolean(true));
  b.set("a.strings", GGUFValue::strings({"x", "", "hello world"}));
  b.set("a.ints", GGUFValue::int32s({1, -2, 3}));
  GGUFValue u64;
  u64.type = io::GGUFType::u64, u64.u = (uint64_t(1) << 40) + 1;
  b.set("a.u64", u64);
  b.add_tensor("vec", GGMLType::f32, {3}, f32_bytes({1, 2, 3}));
  b.add_tensor("mat", GGMLType::f16, {2, 2}, std::string(8, '\x01'));
  b.add_tensor("q", GGMLType::q8_0, {32, 2}, std::string(68, '\x02'));
  b.add_tensor("q4", GGMLType::q4_0, {64}, std::string(36, '\x03'));
  return b;
}

}  // namespace

TEST(GGUF, RoundTripsMetadataAndTensorsAligned) {
  const std::string bytes = sample_builder().bytes();
  const io::GGUFFile f = io::parse_gguf(bytes, "sample.gguf");
  EXPECT_EQ(f.version, 3u);
  EXPECT_EQ(bytes.substr(0, 4), "GGUF");
  EXPECT_EQ(f.value("general.architecture").as_string("k"), "test");
  EXPECT_EQ(f.value("a.u32").as_uint("k"), 7u);
  EXPECT_EQ(f.value("a.i32").i, -3);
  EXPECT_EQ(f.value("a.f32").as_double("k"), 0.5);
  EXPECT_EQ(f.value("a.bool").u, 1u);
  EXPECT_EQ(f.value("a.u64").as_uint("k"), (uint64_t(1) << 40) + 1);
  ASSERT_EQ(f.value("a.strings").items.size(), 3u);
  EXPECT_EQ(f.value("a.strings").items[2].s, "hello world");
  EXPECT_EQ(f.value("a.ints").items[1].i, -2);
  ASSERT_EQ(f.tensors.size(), 4u);
  EXPECT_EQ(f.data_start % 32, 0u);
  for (const auto& t : f.tensors) EXPECT_EQ(t.offset % 32, 0u) << t.name;
  const auto* v = f.tensor("vec");
  ASSERT_TRUE(v);
  float x[3];
  std::memcpy(x, f.data(*v).data(), 12);
  EXPECT_EQ(x[2], 3.0f);
  EXPECT_EQ(f.tensor("q")->bytes, 68u);
  EXPECT_EQ(f.tensor("q4")->bytes, 36u);
  EXPECT_EQ(f.data(*f.tensor("q4")), std::string(36, '\x03'));
  expect_error([&] { f.value("missing.key"); }, "sample.gguf: GGUF metadata has no key 'missing.key'");
  expect_error([&] { f.value("a.strings").as_uint("a.strings"); }, "must be an integer");
}

TEST(GGUF, EveryTruncationIsAClearError) {
  const std::string bytes = sample_builder().bytes();
  // Cut anywhere before the last tensor's data ends: the reader must say so, never read past the end.
  const size_t end = io::parse_gguf(bytes, "x").data_start + io::parse_gguf(bytes, "x").tensor("q4")->offset + 36;
  for (size_t n = 0; n < end; ++n) {
    try {
      io::parse_gguf(bytes.substr(0, n), "cut.gguf");
      ADD_FAILURE() << "a file cut to " << n << " bytes was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("cut.gguf"), std::string::npos) << e.what();
    }
  }
}

TEST(GGUF, RefusesDamagedHeaders) {
  const std::string good = sample_builder().bytes();
  const io::GGUFFile f = io::parse_gguf(good, "x");
  auto with = [&](size_t at, const void* p, size_t n) {
    std::string s = good;
    std::memcpy(s.data() + at, p, n);
    return s;
  };
  expect_error([&] { io::parse_gguf("GGML" + good.substr(4), "m.gguf"); }, "not a GGUF file");
  const uint32_t v1 = 1;
  expect_error([&] { io::parse_gguf(with(4, &v1, 4), "m.gguf"); }, "GGUF version 1 is not supported");
  const uint64_t huge = uint64_t(1) << 60;
  expect_error([&] { io::parse_gguf(with(8, &huge, 8), "m.gguf"); }, "claims");   // tensor count
  expect_error([&] { io::parse_gguf(with(16, &huge, 8), "m.gguf"); }, "claims");  // kv count
  // The first key's value type (after magic, version, counts, key length and "general.architecture").
  const size_t type_at = 24 + 8 + std::strlen("general.architecture");
  const uint32_t bad_type = 99;
  expect_error([&] { io::parse_gguf(with(type_at, &bad_type, 4), "m.gguf"); }, "unknown value type 99");
  // A string length past the end of the file.
  expect_error([&] { io::parse_gguf(with(type_at + 4, &huge, 8), "m.gguf"); }, "truncated");

  // Tensor-level damage, written by hand with the builder's layout.
  auto one_tensor = [](uint32_t type, uint64_t offset, uint64_t dim0, uint32_t ndims = 1) {
    std::string s = "GGUF";
    auto put = [&](auto x) { s.append(reinterpret_cast<const char*>(&x), sizeof x); };
    put(uint32_t(3)), put(uint64_t(2)), put(uint64_t(0));
    for (const char* name : {"a", "b"}) {
      put(uint64_t(1)), s += name, put(ndims);
      for (uint32_t d = 0; d < ndims; ++d) put(dim0);
      put(type), put(std::string(name) == "a" ? uint64_t(0) : offset);
    }
    s.resize((s.size() + 31) / 32 * 32, '\0');
    s += std::string(256, '\0');
    return s;
  };
  EXPECT_NO_THROW(io::parse_gguf(one_tensor(0, 32, 4), "ok.gguf"));
  expect_error([&] { io::parse_gguf(one_tensor(3, 32, 32), "m.gguf"); }, "ggml type q4_1, which loom does not read");
  expect_error([&] { io::parse_gguf(one_tensor(77, 32, 32), "m.gguf"); }, "unknown ggml type id 77");
  expect_error([&] { io::parse_gguf(one_tensor(0, 8, 4), "m.gguf"); }, "not a multiple of the alignment");
  expect_error([&] { io::parse_gguf(one_tensor(0, 0, 4), "m.gguf"); }, "overlap");
  expect_error([&] { io::parse_gguf(one_tensor(0, 32, 1000), "m.gguf"); }, "runs past the end of the file");
  expect_error([&] { io::parse_gguf(one_tensor(8, 64, 33), "m.gguf"); }, "not a multiple of the block size 32");
  expect_error([&] { io::parse_gguf(one_tensor(0, 32, 4, 5), "m.gguf"); }, "5 dimensions");
  expect_error([&] { io::parse_gguf(one_tensor(0, 32, uint64_t(1) << 40, 4), "m.gguf"); }, "overflows");
  expect_error([&] { io::load_gguf(test::scratch("absent.gguf").string()); }, "cannot open");
  // Found by fuzz_gguf: a file whose only tensor is empty, cut inside the padding before the data section.
  io::GGUFBuilder empty_tensor;
  empty_tensor.add_tensor("e", GGMLType::f32, {2, 0}, "");
  const std::string et = empty_tensor.bytes();
  EXPECT_EQ(io::parse_gguf(et, "e.gguf").data(io::parse_gguf(et, "e.gguf").tensors[0]), "");
  expect_error([&] { io::parse_gguf(et.substr(0, et.size() - 3), "e.gguf"); }, "its data section starts at offset");
}

TEST(GGUF, TensorNamesAreLlamaCppGpt2Names) {
  EXPECT_EQ(runtime::gguf_gpt2_name("wte.weight"), "token_embd.weight");
  EXPECT_EQ(runtime::gguf_gpt2_name("wpe.weight"), "position_embd.weight");
  EXPECT_EQ(runtime::gguf_gpt2_name("ln_f.bias"), "output_norm.bias");
  EXPECT_EQ(runtime::gguf_gpt2_name("lm_head.weight_q"), "output.weight");
  EXPECT_EQ(runtime::gguf_gpt2_name("h.11.ln_1.weight"), "blk.11.attn_norm.weight");
  EXPECT_EQ(runtime::gguf_gpt2_name("h.0.attn.c_attn.bias"), "blk.0.attn_qkv.bias");
  EXPECT_EQ(runtime::gguf_gpt2_name("h.0.attn.c_proj.weight_q"), "blk.0.attn_output.weight");
  EXPECT_EQ(runtime::gguf_gpt2_name("h.3.ln_2.bias"), "blk.3.ffn_norm.bias");
  EXPECT_EQ(runtime::gguf_gpt2_name("h.3.mlp.c_fc.weight"), "blk.3.ffn_up.weight");
  EXPECT_EQ(runtime::gguf_gpt2_name("h.3.mlp.c_proj.bias"), "blk.3.ffn_down.bias");
  EXPECT_EQ(runtime::gguf_gpt2_name("h.x.ln_1.weight"), "");
  EXPECT_EQ(runtime::gguf_gpt2_name("h.0.attn.bias"), "");
}

namespace {

struct Tiny {
  std::shared_ptr<models::GPT> gpt;
  text::BPETokenizer tok;
};

Tiny tiny_gpt(bool tied = true) {
  text::BPETokenizer tok = text::train_bpe("the cat sat on the mat; the dog sat on the log. ", {.vocab_size = 280});
  manual_seed(4);
  auto gpt = std::make_shared<models::GPT>(models::GPTConfig{.vocab_size = 300, .n_positions = 32, .n_embd = 64,
                                                            .n_layer = 2, .n_head = 2, .tie_word_embeddings = tied});
  gpt->eval();
  return {gpt, std::move(tok)};
}

Tensor logits(models::GPT& g) {
  manual_seed(9);
  NoGradGuard ng;
  return g(randint(0, 280, {2, 12}));
}

std::string blocks(const models::GPT& g, const std::string& module) {
  auto* q = dynamic_cast<quant::QuantizedLinear*>(g.get_submodule(module).get());
  EXPECT_TRUE(q) << module;
  if (!q) return "";
  const Tensor b = q->weight_q.contiguous();
  return std::string(reinterpret_cast<const char*>(b.data<uint8_t>()), size_t(b.numel()));
}

}  // namespace

TEST(GGUFGpt, F32ExportHasLlamaCppKeysAndReloadsToIdenticalLogits) {
  for (bool tied : {true, false}) {
    Tiny t = tiny_gpt(tied);
    const std::string path = test::scratch(tied ? "tied.gguf" : "untied.gguf").string();
    export_::save_gpt_gguf(*t.gpt, t.tok, path);
    const io::GGUFFile f = io::load_gguf(path);
    EXPECT_EQ(f.value("general.architecture").as_string(""), "gpt2");
    EXPECT_EQ(f.value("general.alignment").as_uint(""), 64u);
    EXPECT_EQ(f.value("gpt2.context_length").as_uint(""), 32u);
    EXPECT_EQ(f.value("gpt2.embedding_length").as_uint(""), 64u);
    EXPECT_EQ(f.value("gpt2.block_count").as_uint(""), 2u);
    EXPECT_EQ(f.value("gpt2.attention.head_count").as_uint(""), 2u);
    EXPECT_EQ(f.value("gpt2.feed_forward_length").as_uint(""), 256u);
    EXPECT_NEAR(f.value("gpt2.attention.layer_norm_epsilon").as_double(""), 1e-5, 1e-12);
    EXPECT_EQ(f.value("tokenizer.ggml.model").as_string(""), "gpt2");
    ASSERT_LT(t.tok.vocab_size(), 300);
    EXPECT_EQ(f.value("tokenizer.ggml.tokens").items.size(), 300u);  // the BPE's tokens, then unused pads
    EXPECT_EQ(f.value("tokenizer.ggml.token_type").items.back().i, 5);
    EXPECT_EQ(f.value("tokenizer.ggml.token_type").items[0].i, 1);
    EXPECT_EQ(f.value("tokenizer.ggml.merges").items.size(), t.tok.merges().size());
    EXPECT_EQ(f.value("tokenizer.ggml.eos_token_id").as_uint(""), uint64_t(t.tok.token_to_id("<|endoftext|>")));
    EXPECT_EQ(f.tensor("output.weight") != nullptr, !tied);
    const auto* qkv = f.tensor("blk.1.attn_qkv.weight");
    ASSERT_TRUE(qkv);
    EXPECT_EQ(qkv->dims, (std::vector<uint64_t>{64, 192}));  // ggml order: (in, out)
    EXPECT_EQ(f.tensor("token_embd.weight")->dims, (std::vector<uint64_t>{64, 300}));

    runtime::GGUFModel m = runtime::load_gguf_gpt(path);
    EXPECT_EQ(m.type, "f32");
    EXPECT_EQ(m.model->cfg.tie_word_embeddings, tied);
    EXPECT_EQ((logits(*m.model) - logits(*t.gpt)).abs().max().item(), 0.0);
    const std::string s = "the cat sat on the log";
    EXPECT_EQ(m.tokenizer->encode(s), t.tok.encode(s));
    EXPECT_EQ(m.tokenizer->decode(t.tok.encode(s)), s);
  }
}

TEST(GGUFGpt, EncryptedFileLoadsThroughLoadRun) {
  // Encrypted at rest its first bytes are the encryption magic, not "GGUF": load_run must still take it as a
  // GGUF (decrypted with the policy's key) rather than fall through to the folder loaders.
  Tiny t = tiny_gpt(true);
  const auto dir = test::scratch("enc_gguf");
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "model.gguf").string();
  export_::save_gpt_gguf(*t.gpt, t.tok, path);
  const std::string key = test::scratch("enc_gguf.key").string();
  trust::keygen_symmetric(key);
  trust::encrypt_run(dir.string(), key);
  ASSERT_FALSE(io::is_gguf_file(path));
  expect_error([&] { runtime::load_run(path); }, "model.gguf");
  trust::LoadPolicy keyed;
  keyed.key_file = key;
  trust::set_load_policy(keyed);
  runtime::Run run = runtime::load_run(path);
  trust::set_load_policy({});
  EXPECT_EQ(run.kind, runtime::Run::Kind::language_model);
  auto* gpt = dynamic_cast<models::GPT*>(run.lm.get());
  ASSERT_TRUE(gpt);
  EXPECT_EQ((logits(*gpt) - logits(*t.gpt)).abs().max().item(), 0.0);
  EXPECT_EQ(run.tokenizer->encode("the cat sat"), t.tok.encode("the cat sat"));
}

TEST(GGUFGpt, QuantizedExportKeepsGgmlBlocksByteForByte) {
  for (auto [type, fmt] : {std::pair{GGMLType::q8_0, quant::QuantFormat::q8_0}, {GGMLType::q4_0, quant::QuantFormat::q4_0}}) {
    Tiny t = tiny_gpt();
    // From a float GPT: the file's blocks are what loom's quantizer makes of the same weights.
    const std::string path = test::scratch(std::string("q_") + io::ggml_type_name(type) + ".gguf").string();
    export_::save_gpt_gguf(*t.gpt, t.tok, path, {.type = type});
    const io::GGUFFile f = io::load_gguf(path);
    EXPECT_EQ(f.tensor("blk.0.ffn_up.weight")->type, type);
    EXPECT_EQ(f.tensor("token_embd.weight")->type, type);  // tied: the head
    EXPECT_EQ(f.tensor("position_embd.weight")->type, GGMLType::f32);
    EXPECT_EQ(f.tensor("blk.0.ffn_up.bias")->type, GGMLType::f32);
    EXPECT_EQ(f.tensor("blk.0.attn_norm.weight")->type, GGMLType::f32);
    runtime::GGUFModel m = runtime::load_gguf_gpt(path);
    EXPECT_EQ(m.type, io::ggml_type_name(type));
    models::quantize_gpt(*t.gpt, fmt);
    for (const char* mod : {"h.0.attn.c_attn", "h.1.attn.c_proj", "h.0.mlp.c_fc", "h.1.mlp.c_proj", "lm_head"})
      EXPECT_EQ(blocks(*m.model, mod), blocks(*t.gpt, mod)) << mod;
    EXPECT_EQ((logits(*m.model) - logits(*t.gpt)).abs().max().item(), 0.0);
    // From the quantized GPT: its blocks pass through unchanged, so re-export gives the same tensors.
    const std::string again = test::scratch("again.gguf").string();
    export_::save_gpt_gguf(*m.model, *m.tokenizer, again, {.type = type});
    const io::GGUFFile g = io::load_gguf(again);
    ASSERT_EQ(g.tensors.size(), f.tensors.size());
    for (const auto& ti : f.tensors) {
      ASSERT_TRUE(g.tensor(ti.name)) << ti.name;
      EXPECT_EQ(g.tensor(ti.name)->type, ti.type) << ti.name;
      EXPECT_EQ(g.data(*g.tensor(ti.name)), f.data(ti)) << ti.name;
    }
  }
}

// A q8_0 / q4_0 file of a tied GPT loads without an f32 (V, C) token table: wte reads the head's blocks
// (quant::QuantizedEmbedding). An untied one keeps its f32 input table beside the quantized head.
TEST(GGUFGpt, QuantizedTiedLoadHoldsNoFloatTable) {
  for (auto type : {GGMLType::q8_0, GGMLType::q4_0})
    for (bool tied : {true, false}) {
      Tiny t = tiny_gpt(tied);
      const std::string path = test::scratch(std::string("table_") + io::ggml_type_name(type) + ".gguf").string();
      export_::save_gpt_gguf(*t.gpt, t.tok, path, {.type = type});
      runtime::GGUFModel m = runtime::load_gguf_gpt(path);
      const std::string what = std::string(io::ggml_type_name(type)) + (tied ? " tied" : " untied");
      std::vector<std::string> tables;
      for (const auto& list : {m.model->named_parameters(), m.model->named_buffers()})
        for (const auto& [k, v] : list)
          if (v.defined() && v.dtype() == DType::f32 && v.shape() == Shape{300, 64}) tables.push_back(k);
      EXPECT_EQ(tables, tied ? std::vector<std::string>{} : std::vector<std::string>{"wte.weight"}) << what;
      EXPECT_EQ(dynamic_cast<quant::QuantizedEmbedding*>(m.model->wte.get()) != nullptr, tied) << what;
    }
}

TEST(GGUFGpt, F16IsWithinHalfPrecision) {
  Tiny t = tiny_gpt();
  const std::string path = test::scratch("h.gguf").string();
  export_::save_gpt_gguf(*t.gpt, t.tok, path, {.type = GGMLType::f16});
  const io::GGUFFile f = io::load_gguf(path);
  EXPECT_EQ(f.tensor("token_embd.weight")->type, GGMLType::f16);
  EXPECT_EQ(f.tensor("position_embd.weight")->type, GGMLType::f16);
  EXPECT_EQ(f.tensor("output_norm.weight")->type, GGMLType::f32);
  runtime::GGUFModel m = runtime::load_gguf_gpt(path);
  EXPECT_EQ(m.type, "f16");
  const Tensor a = logits(*m.model), b = logits(*t.gpt);
  EXPECT_LT((a - b).abs().max().item() / b.abs().max().item(), 5e-3);
}

TEST(GGUFGpt, ExportAndImportRefuseWhatLlamaCppCannotRun) {
  Tiny t = tiny_gpt();
  manual_seed(1);
  models::GPT odd({.vocab_size = 300, .n_positions = 16, .n_embd = 48, .n_layer = 1, .n_head = 2});
  expect_error([&] { export_::gpt_gguf(odd, t.tok, {.type = GGMLType::q8_0}); }, "multiples of 32");
  models::GPT erf({.vocab_size = 300, .n_positions = 16, .n_embd = 32, .n_layer = 1, .n_head = 2,
                   .activation_function = "gelu"});
  expect_error([&] { export_::gpt_gguf(erf, t.tok); }, "erf");
  models::GPT small({.vocab_size = 100, .n_positions = 16, .n_embd = 32, .n_layer = 1, .n_head = 2});
  expect_error([&] { export_::gpt_gguf(small, t.tok); }, "tokens but the model only 100");
  expect_error([] { export_::parse_gguf_type("q5_k"); }, "not one of f32, f16, q8_0, q4_0");

  // A file that is GGUF but not gpt2, and one missing a block tensor.
  io::GGUFBuilder b = export_::gpt_gguf(*t.gpt, t.tok);
  b.set("general.architecture", GGUFValue::string("llama"));
  const std::string llama = test::scratch("llama.gguf").string();
  b.save(llama);
  expect_error([&] { runtime::load_gguf_gpt(llama); }, "GGUF architecture is 'llama'; loom loads only 'gpt2'");
  io::GGUFBuilder wrong = export_::gpt_gguf(*t.gpt, t.tok);
  wrong.set("gpt2.embedding_length", GGUFValue::uint32(32));
  const std::string w = test::scratch("wrong.gguf").string();
  wrong.save(w);
  expect_error([&] { runtime::load_gguf_gpt(w); }, "has shape");
  io::GGUFBuilder extra = export_::gpt_gguf(*t.gpt, t.tok);
  extra.add_tensor("blk.2.attn_norm.weight", GGMLType::f32, {64}, std::string(256, '\0'));
  const std::string x = test::scratch("extra.gguf").string();
  extra.save(x);
  expect_error([&] { runtime::load_gguf_gpt(x); }, "'blk.2.attn_norm.weight' is not part of a 2-layer gpt2 model");
}
