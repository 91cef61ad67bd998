// Run folders load straight from the mapped file on every route (io/run_safetensors.h): a `loom quantize` folder gives
// the same weights and logits as the old parsed-tensors load; a run under a manifest (signed or not) is hashed as it
// is copied, loads the same model, and a changed byte fails with exactly the error the whole-file check gives; an
// encrypted run still takes the whole-file read.
#include <gtest/gtest.h>

#include <filesystem>

#include "loom/io/run_file_plain.h"
#include "loom/io/run_safetensors.h"
#include "loom/loom.h"
#include "loom/models/gpt_hf.h"
#include "loom/models/gpt_quant.h"
#include "loom/nn/skip_init.h"
#include "loom/trust/encrypt.h"
#include "loom/trust/keys.h"
#include "loom/trust/load.h"
#include "loom/trust/manifest.h"
#include "loom/trust/sha256.h"
#include "loom/trust/sign.h"
#include "support/scratch.h"
#include "support/tiny_gpt.h"

using namespace loom;
namespace fs = std::filesystem;

namespace {

using loom::test::expect_same_weights;
using loom::test::logits;
using loom::test::tiny_gpt;

// A quantized GPT saved as `loom quantize` saves it; returns the folder.
fs::path quantized_run(const std::string& name, quant::QuantFormat f, bool tied, uint64_t seed) {
  auto gpt = tiny_gpt(tied, seed);
  models::quantize_gpt(*gpt, f);
  const fs::path dir = test::scratch(name);
  models::save_quantized_gpt(*gpt, f, dir.string());
  return dir;
}

// The load before the mapped path: every tensor parsed into memory, then load_state_dict into the skeleton.
std::shared_ptr<models::GPT> load_parsed(const fs::path& dir) {
  const nlohmann::json config = io::read_run_json((dir / "config.json").string());
  std::shared_ptr<models::GPT> gpt;
  {
    nn::SkipInitGuard skip;
    gpt = std::make_shared<models::GPT>(models::GPTConfig::from_json(config));
  }
  models::quantize_gpt(*gpt, quant::parse_format(config["quantization"]["format"].get<std::string>()), false);
  const io::SafetensorsFile file = io::load_safetensors((dir / "model.safetensors").string());
  nn::StateDict sd;
  for (auto& [name, t] : file.tensors) sd.insert(name, t);
  gpt->load_state_dict(sd, true);
  gpt->eval();
  return gpt;
}

std::shared_ptr<models::GPT> load_quantized(const fs::path& dir) {
  auto m = std::dynamic_pointer_cast<models::GPT>(models::load_language_model(dir.string()));
  EXPECT_TRUE(m);
  return m;
}

// One byte of the data section flipped (a tensor's value), or of the JSON header.
void flip_byte(const fs::path& file, bool in_header) {
  std::string b = data::read_file(file.string());
  const size_t at = in_header ? 20 : b.size() - 5;
  b[at] = char(b[at] ^ 0x11);
  test::write_file(file, b);
}

// The message the whole-file checked read (what loads used before the stream) throws for this file.
std::string whole_read_error(const fs::path& file) {
  try {
    trust::read_run_file(file.string());
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

std::string load_error(const std::function<void()>& load) {
  try {
    load();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

io::RunFileRoute route_of(const fs::path& file) { return io::run_file_access(file.string()).route; }

}  // namespace

TEST(RunLoadStream, QuantizedRunFolderMatchesParsedLoadBitForBit) {
  trust::set_load_policy({});
  uint64_t seed = 20;
  for (quant::QuantFormat f : {quant::QuantFormat::q8_0, quant::QuantFormat::q4_0})
    for (bool tied : {true, false}) {
      const fs::path dir = quantized_run("q_" + quant::format_name(f) + (tied ? "_tied" : "_untied"), f, tied, ++seed);
      ASSERT_EQ(route_of(dir / "model.safetensors"), io::RunFileRoute::plain);
      auto mapped = load_quantized(dir);
      auto parsed = load_parsed(dir);
      expect_same_weights(*parsed, *mapped);
      EXPECT_TRUE(equal(logits(*parsed), logits(*mapped))) << quant::format_name(f) << " tied " << tied;
    }
}

TEST(RunLoadStream, ManifestRunIsHashedAsCopiedAndLoadsTheSameModel) {
  trust::set_load_policy({});
  const fs::path dir = quantized_run("q8_manifest", quant::QuantFormat::q8_0, true, 31);
  auto plain = load_quantized(dir);
  trust::write_manifest(dir.string());
  ASSERT_EQ(route_of(dir / "model.safetensors"), io::RunFileRoute::streamed);
  auto checked = load_quantized(dir);
  expect_same_weights(*plain, *checked);
  EXPECT_TRUE(equal(logits(*plain), logits(*checked)));

  // An HF-layout GPT run (what `loom train --model gpt` writes) under a manifest: same bits as its plain load, whose
  // Conv1D transposes now come from hashed copies rather than the mapping.
  const fs::path hf = test::scratch("hf_manifest");
  auto gpt = tiny_gpt(false, 32);
  gpt->save(hf.string());
  auto hf_plain = models::load_gpt_hf(hf.string());
  trust::write_manifest(hf.string());
  ASSERT_EQ(route_of(hf / "model.safetensors"), io::RunFileRoute::streamed);
  auto hf_checked = models::load_gpt_hf(hf.string());
  expect_same_weights(*gpt, *hf_checked);
  expect_same_weights(*hf_plain, *hf_checked);
}

TEST(RunLoadStream, ChangedByteFailsWithTheWholeFileChecksError) {
  trust::set_load_policy({});
  for (bool in_header : {false, true}) {
    const fs::path dir = quantized_run(in_header ? "q8_bad_header" : "q8_bad_data", quant::QuantFormat::q8_0, true, 40);
    runtime::save_run_tokenizer(*text::make_tokenizer("char", "the cat sat on the mat"), dir.string());
    trust::write_manifest(dir.string());
    const fs::path st = dir / "model.safetensors";
    flip_byte(st, in_header);
    ASSERT_EQ(route_of(st), io::RunFileRoute::streamed);
    const std::string want = whole_read_error(st);
    EXPECT_NE(want.find("does not match its manifest"), std::string::npos) << want;
    if (!in_header) {
      EXPECT_NE(want.find("tensor 'lm_head.weight_q' changed"), std::string::npos) << want;
    }
    // The stream meets the change only at its end (data) or as a header that no longer parses: either way the
    // error is the manifest's, word for word, and no model comes back.
    EXPECT_EQ(load_error([&] { load_quantized(dir); }), want);
    EXPECT_EQ(load_error([&] { runtime::load_run(dir.string()); }), want);

    trust::LoadPolicy skip;
    skip.skip_verify = true;
    trust::set_load_policy(skip);
    EXPECT_EQ(route_of(st), io::RunFileRoute::plain);
    if (!in_header) {
      EXPECT_NO_THROW(load_quantized(dir));  // the damaged value loads, as asked
    }
    trust::set_load_policy({});
  }
}

TEST(RunLoadStream, SignedRunStreamsEncryptedRunReadsWhole) {
  trust::set_load_policy({});
  const fs::path dir = quantized_run("q4_signed", quant::QuantFormat::q4_0, true, 50);
  auto plain = load_quantized(dir);
  const std::string keys = test::scratch("alice").string();
  trust::keygen_signing(keys);
  trust::sign_run(dir.string(), keys + ".key");
  trust::LoadPolicy signed_policy;
  signed_policy.require_signature = keys + ".pub";
  trust::set_load_policy(signed_policy);
  ASSERT_EQ(route_of(dir / "model.safetensors"), io::RunFileRoute::streamed);
  expect_same_weights(*plain, *load_quantized(dir));
  // Signed by someone else: refused before any data is read, with the error the whole-file read gives.
  const std::string other = test::scratch("mallory").string();
  trust::keygen_signing(other);
  trust::sign_run(dir.string(), other + ".key");
  const std::string want = whole_read_error(dir / "model.safetensors");
  EXPECT_NE(want.find("signature does not verify"), std::string::npos) << want;
  EXPECT_EQ(load_error([&] { (void)io::run_file_access((dir / "model.safetensors").string()); }), want);
  trust::set_load_policy({});

  const fs::path enc = quantized_run("q8_encrypted", quant::QuantFormat::q8_0, false, 51);
  auto enc_plain = load_quantized(enc);
  const std::string key = test::scratch("run.key").string();
  trust::keygen_symmetric(key);
  trust::encrypt_run(enc.string(), key);
  trust::LoadPolicy keyed;
  keyed.key_file = key;
  trust::set_load_policy(keyed);
  ASSERT_EQ(route_of(enc / "model.safetensors"), io::RunFileRoute::whole);
  expect_same_weights(*enc_plain, *load_quantized(enc));
  trust::set_load_policy({});
}

TEST(RunLoadStream, WrongTensorsAreRefusedByName) {
  trust::set_load_policy({});
  const fs::path dir = quantized_run("q8_extra", quant::QuantFormat::q8_0, true, 60);
  const fs::path st = dir / "model.safetensors";
  io::SafetensorsFile f = io::load_safetensors(st.string());
  f.tensors.emplace_back("extra.weight", zeros({3}));
  io::save_safetensors(st.string(), f.tensors, f.metadata);
  const std::string extra = load_error([&] { load_quantized(dir); });
  EXPECT_NE(extra.find("unexpected tensor 'extra.weight'"), std::string::npos) << extra;

  f.tensors.pop_back();
  f.tensors.erase(f.tensors.begin());
  io::save_safetensors(st.string(), f.tensors, f.metadata);
  const std::string missing = load_error([&] { load_quantized(dir); });
  EXPECT_NE(missing.find("has no tensor"), std::string::npos) << missing;
}

TEST(RunLoadStream, StreamedFileIsTakenInFileOrderOnly) {
  trust::set_load_policy({});
  const fs::path dir = quantized_run("q8_order", quant::QuantFormat::q8_0, true, 70);
  trust::write_manifest(dir.string());
  io::RunSafetensors f((dir / "model.safetensors").string());
  ASSERT_EQ(f.route(), io::RunFileRoute::streamed);
  const auto& es = f.layout().entries;
  ASSERT_GE(es.size(), 2u);
  std::vector<char> buf(size_t(es[1].end - es[1].begin));
  f.copy(es[1], buf.data());  // skipping es[0] is fine: it is hashed from the file
  std::vector<char> buf0(size_t(es[0].end - es[0].begin));
  EXPECT_THROW(f.copy(es[0], buf0.data()), Error);  // going back is not: those bytes were hashed already
  EXPECT_EQ(f.mapping(), nullptr);                   // nor reading a hashed file in place
  EXPECT_NO_THROW(f.finish());                       // what was hashed is the whole, unchanged file
}

TEST(Sha256, ExtensionsMatchPortableForEveryLengthAndSplit) {
  // FIPS 180-4's examples, through whichever path this CPU takes.
  EXPECT_EQ(trust::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(trust::sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(trust::sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  if (!trust::Sha256::accelerated())
    std::printf("skipped: the SHA-extension path (this CPU has no SHA-NI, or LOOM_ISA=baseline); portable only\n");
  std::string data(1000, '\0');
  uint32_t x = 12345;
  for (char& c : data) c = char((x = x * 1103515245u + 12345u) >> 24);
  for (size_t len : {0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 129, 1000}) {
    const std::string_view v(data.data(), len);
    trust::Sha256::force_portable_for_testing(true);
    trust::Sha256 portable;
    portable.update(v.data(), v.size());
    const std::string want = portable.hex();
    trust::Sha256::force_portable_for_testing(false);
    EXPECT_EQ(trust::sha256_hex(v), want) << len;
    for (size_t cut : {size_t(1), size_t(7), size_t(64), size_t(100)}) {  // fed in pieces of every alignment
      trust::Sha256 h;
      for (size_t at = 0; at < len; at += cut) h.update(v.data() + at, std::min(cut, len - at));
      EXPECT_EQ(h.hex(), want) << len << " in pieces of " << cut;
    }
  }
}

TEST(RunLoadStream, GGUFInACheckedRunIsVerifiedNotMappedUnchecked) {
  trust::set_load_policy({});
  const fs::path dir = test::scratch("gguf_run");
  fs::create_directories(dir);
  const fs::path path = dir / "model.gguf";
  const text::BPETokenizer tok = text::train_bpe("the cat sat on the mat; the dog sat on the log. ", {.vocab_size = 280});
  export_::save_gpt_gguf(*tiny_gpt(true, 80), tok, path.string(), {.type = io::GGMLType::q8_0});
  const Tensor want = logits(*runtime::load_gguf_gpt(path.string()).model);
  trust::write_manifest(dir.string());
  ASSERT_FALSE(io::run_file_is_plain(path.string()));
  EXPECT_TRUE(equal(logits(*runtime::load_gguf_gpt(path.string()).model), want));
  flip_byte(path, false);
  const std::string err = load_error([&] { runtime::load_gguf_gpt(path.string()); });
  EXPECT_NE(err.find("does not match its manifest"), std::string::npos) << err;
  EXPECT_EQ(err, whole_read_error(path));
  // A required signature covers GGUF files too: an unsigned run is refused.
  const std::string keys = test::scratch("gguf_key").string();
  trust::keygen_signing(keys);
  trust::LoadPolicy signed_policy;
  signed_policy.require_signature = keys + ".pub";
  trust::set_load_policy(signed_policy);
  const std::string unsigned_err = load_error([&] { runtime::load_gguf_gpt(path.string()); });
  EXPECT_NE(unsigned_err.find("a signature is required"), std::string::npos) << unsigned_err;
  trust::set_load_policy({});
}
