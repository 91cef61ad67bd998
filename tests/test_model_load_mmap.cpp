// Fast model loading (io/mapped_file.h, nn/skip_init.h): an HF GPT-2 folder loaded from the mapped file gives the
// same bits as the whole-file read path (the one manifest-checked and encrypted runs take) and as the model that was
// saved, whatever the file's alignment; a GGUF q8_0 loads the file's exact blocks; a loaded model keeps working after
// its file is replaced by rename (loom's writes) or deleted; and the fast path never bypasses the trust checks.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "loom/export/gguf_export.h"
#include "loom/io/gguf.h"
#include "loom/io/mapped_file.h"
#include "loom/io/mapped_weights.h"
#include "loom/io/run_file_plain.h"
#include "loom/loom.h"
#include "loom/models/gpt_hf.h"
#include "loom/nn/skip_init.h"
#include "loom/runtime/gguf_gpt.h"
#include "loom/trust/encrypt.h"
#include "loom/trust/keys.h"
#include "loom/trust/load.h"
#include "loom/trust/manifest.h"
#include "support/scratch.h"
#include "support/tiny_gpt.h"

using namespace loom;
namespace fs = std::filesystem;

namespace {

using loom::test::expect_same_weights;
using loom::test::logits;
using loom::test::tiny_gpt;

// Loads through the installed reader with no plain check: the whole-file read the checked runs take.
std::shared_ptr<models::GPT> load_through_reader(const std::string& dir) {
  io::set_run_file_reader([](const std::string& p) { return data::read_file(p); });
  EXPECT_FALSE(io::run_file_is_plain(dir + "/model.safetensors"));
  std::shared_ptr<models::GPT> m;
  try {
    m = models::load_gpt_hf(dir);
  } catch (...) {
    trust::set_load_policy({});
    throw;
  }
  trust::set_load_policy({});  // reinstalls trust's reader and its plain check
  return m;
}

// The same safetensors file with its header one byte longer: every tensor's data then starts at an odd offset.
void misalign(const fs::path& file) {
  const std::string b = data::read_file(file.string());
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(uint8_t(b[size_t(i)])) << (8 * i);
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char(uint8_t((n + 1) >> (8 * i)));
  out += b.substr(8, n) + " " + b.substr(8 + n);
  io::write_file_atomic(file.string(), out);
}

}  // namespace

TEST(SkipInit, LeavesRandomFillsOutOnlyWhileAlive) {
  Tensor t = zeros({64});
  {
    nn::SkipInitGuard skip;
    EXPECT_TRUE(nn::SkipInitGuard::active());
    nn::init::normal_(t);
    nn::init::kaiming_uniform_(t.reshape({8, 8}));
    EXPECT_EQ(t.abs().sum().item(), 0.0);
  }
  EXPECT_FALSE(nn::SkipInitGuard::active());
  nn::init::normal_(t);
  EXPECT_GT(t.abs().sum().item(), 0.0);
}

TEST(MappedLoad, HFFolderMatchesReadPathAndSavedModelBitForBit) {
  for (bool tied : {true, false}) {
    auto gpt = tiny_gpt(tied, tied ? 3 : 4);
    const fs::path dir = test::scratch(tied ? "hf_tied" : "hf_untied");
    gpt->save(dir.string());
    ASSERT_TRUE(io::run_file_is_plain((dir / "model.safetensors").string()));  // a plain run takes the mapped path
    auto mapped = models::load_gpt_hf(dir.string());
    auto read = load_through_reader(dir.string());
    expect_same_weights(*gpt, *mapped);
    expect_same_weights(*read, *mapped);
    EXPECT_TRUE(equal(logits(*gpt), logits(*mapped)));
    EXPECT_TRUE(equal(logits(*read), logits(*mapped)));

    // Offsets that are not even 4-byte aligned: the data is copied into loom's aligned memory, never read in place.
    misalign(dir / "model.safetensors");
    auto odd = models::load_gpt_hf(dir.string());
    expect_same_weights(*gpt, *odd);
  }
}

TEST(MappedLoad, LoadedModelOutlivesItsFileReplacedOrDeleted) {
  auto gpt = tiny_gpt(true, 5);
  const fs::path dir = test::scratch("hf_replaced");
  gpt->save(dir.string());
  auto loaded = models::load_gpt_hf(dir.string());
  const Tensor before = logits(*loaded);
  tiny_gpt(true, 6)->save(dir.string());  // temp file + rename over model.safetensors
  EXPECT_TRUE(equal(logits(*loaded), before));
  EXPECT_FALSE(equal(logits(*models::load_gpt_hf(dir.string())), before));  // the new file is the other model
  fs::remove(dir / "model.safetensors");
  EXPECT_TRUE(equal(logits(*loaded), before));
}

TEST(MappedLoad, GGUFQ8LoadsTheFileBlocksAndOutlivesTheFile) {
  auto gpt = tiny_gpt(true, 7);
  const text::BPETokenizer tok = text::train_bpe("the cat sat on the mat; the dog sat on the log. ", {.vocab_size = 280});
  const std::string path = test::scratch("tiny_q8.gguf").string();
  export_::save_gpt_gguf(*gpt, tok, path, {.type = io::GGMLType::q8_0});
  const runtime::GGUFModel m = runtime::load_gguf_gpt(path);
  auto& g = static_cast<models::GPT&>(*m.model);
  EXPECT_EQ(m.in_place_bytes, 0);  // a quantized file is copied whole (load_gguf_gpt: all f32 or nothing in place)

  // The whole-file read (no mapping) of the same file is the reference: blocks byte for byte, floats bit for bit.
  const io::GGUFFile ref = io::parse_gguf(data::read_file(path), path);
  EXPECT_FALSE(ref.mapped);
  const nn::StateDict sd = g.state_dict();
  for (const auto& [name, t] : sd.items()) {
    std::string gname = runtime::gguf_gpt2_name(name);
    if (gname == "output.weight") gname = "token_embd.weight";  // tied: the head's blocks are token_embd
    const io::GGUFTensorInfo* info = ref.tensor(gname);
    ASSERT_TRUE(info) << name;
    const Tensor c = t.contiguous();
    if (t.dtype() == DType::u8) {
      EXPECT_EQ(std::string(static_cast<const char*>(c.raw_data()), size_t(c.numel())), std::string(ref.data(*info)))
          << name;
    } else {
      EXPECT_TRUE(equal(c.reshape({-1}), tensor(runtime::gguf_tensor_floats(ref, *info)))) << name;
    }
  }
  const Tensor before = logits(g);
  export_::save_gpt_gguf(*tiny_gpt(true, 8), tok, path, {.type = io::GGMLType::q8_0});  // replaced by rename
  EXPECT_TRUE(equal(logits(g), before));
  fs::remove(path);
  EXPECT_TRUE(equal(logits(g), before));
}

// An f32 GGUF loom exported (general.alignment 64) is used in place: every f32 weight is the mapped file's bytes,
// the logits are the source model's, a write to a weight changes the model and never the file, the model outlives
// its file, and dropping the model unmaps the file. A 32-aligned file of the same model (llama.cpp's default) loads
// to the same logits whatever it could not take in place.
namespace {
bool maps_file(const std::string& path) {
  std::ifstream in("/proc/self/maps");  // a size-0 /proc file: read as a stream
  const std::string maps((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_FALSE(maps.empty());
  return maps.find(fs::path(path).filename().string()) != std::string::npos;
}
}  // namespace

TEST(MappedLoad, GGUFF32WeightsAreUsedInPlaceAndWritesStayPrivate) {
  auto gpt = tiny_gpt(false, 9);
  const text::BPETokenizer tok = text::train_bpe("the cat sat on the mat; the dog sat on the log. ", {.vocab_size = 280});
  const std::string path = test::scratch("tiny_f32_in_place.gguf").string();
  export_::save_gpt_gguf(*gpt, tok, path);
  const Tensor want = logits(*gpt);
  {
    runtime::GGUFModel m = runtime::load_gguf_gpt(path);
    auto& g = static_cast<models::GPT&>(*m.model);
    int64_t f32_bytes = 0;
    const nn::StateDict sd = g.state_dict();  // items() refers into it
    for (const auto& [name, t] : sd.items()) f32_bytes += t.numel() * 4;
    EXPECT_EQ(m.in_place_bytes, f32_bytes);
    EXPECT_TRUE(maps_file(path));
    EXPECT_TRUE(equal(logits(g), want));

    const std::string file_before = data::read_file(path);
    Tensor w = g.state_dict().at("h.0.mlp.c_fc.weight");
    {
      NoGradGuard ng;
      w.narrow(0, 0, 1).fill_(0.5);
    }
    EXPECT_EQ(g.state_dict().at("h.0.mlp.c_fc.weight").narrow(0, 0, 1).sum().item(), 0.5 * double(w.size(1)));
    EXPECT_FALSE(equal(logits(g), want));
    EXPECT_EQ(data::read_file(path), file_before);  // the write went to a private copy of the page
    const runtime::GGUFModel fresh = runtime::load_gguf_gpt(path);
    EXPECT_TRUE(equal(logits(static_cast<models::GPT&>(*fresh.model)), want));

    const Tensor edited = logits(g);
    fs::remove(path);
    EXPECT_TRUE(equal(logits(g), edited));
  }
  EXPECT_FALSE(maps_file(path));  // the last model using the mapping is gone, and so is the mapping

  io::GGUFBuilder b = export_::gpt_gguf(*gpt, tok);
  b.alignment = 32;
  b.set("general.alignment", io::GGUFValue::uint32(32));
  const std::string path32 = test::scratch("tiny_f32_align32.gguf").string();
  b.save(path32);
  const runtime::GGUFModel m32 = runtime::load_gguf_gpt(path32);
  EXPECT_TRUE(equal(logits(static_cast<models::GPT&>(*m32.model)), want));
}

// An HF folder's token embedding (8 MiB here: a third of GPT-2 124M's file) is used where it lies in a plain file, as
// a GGUF's f32 weights are: the logits are the saved model's, a write to it never reaches the file, the model outlives
// the file, and dropping the model unmaps it. Small tensors and the transposed Conv1D weights are copied; a
// manifest-checked folder and a misaligned file copy everything, to the same weights.
TEST(MappedLoad, HFTokenEmbeddingIsUsedInPlaceAndWritesStayPrivate) {
  manual_seed(12);
  auto gpt = std::make_shared<models::GPT>(
      models::GPTConfig{.vocab_size = 8192, .n_positions = 16, .n_embd = 256, .n_layer = 1, .n_head = 2});
  gpt->eval();
  const fs::path dir = test::scratch("hf_in_place");
  gpt->save(dir.string());
  const std::string st = (dir / "model.safetensors").string();
  const Tensor want = logits(*gpt);
  {
    auto m = models::load_gpt_hf(dir.string());
    EXPECT_TRUE(io::uses_mapped_bytes(m->wte->weight));
    EXPECT_FALSE(io::uses_mapped_bytes(m->wpe->weight));  // small: copied
    expect_same_weights(*gpt, *m);
    EXPECT_TRUE(equal(logits(*m), want));
    EXPECT_TRUE(maps_file(st));

    const std::string file_before = data::read_file(st);
    {
      NoGradGuard ng;
      m->wte->weight.narrow(0, 0, 4).fill_(0.25);
    }
    EXPECT_FALSE(equal(logits(*m), want));
    EXPECT_EQ(data::read_file(st), file_before);  // the write went to a private copy of the page
    EXPECT_TRUE(equal(logits(*models::load_gpt_hf(dir.string())), want));
    const Tensor edited = logits(*m);
    fs::remove(st);
    EXPECT_TRUE(equal(logits(*m), edited));
  }
  EXPECT_FALSE(maps_file(st));
  gpt->save(dir.string());

  trust::write_manifest(dir.string());  // checked as copied: nothing in place
  auto checked = models::load_gpt_hf(dir.string());
  EXPECT_FALSE(io::uses_mapped_bytes(checked->wte->weight));
  expect_same_weights(*gpt, *checked);
  fs::remove(dir / "manifest.json");

  misalign(dir / "model.safetensors");  // odd offsets: copied
  auto odd = models::load_gpt_hf(dir.string());
  EXPECT_FALSE(io::uses_mapped_bytes(odd->wte->weight));
  expect_same_weights(*gpt, *odd);
}

TEST(MappedLoad, TrustChecksStillRunOnManifestAndEncryptedRuns) {
  auto gpt = tiny_gpt(true, 10);
  const fs::path dir = test::scratch("hf_trust");
  gpt->save(dir.string());
  const std::string st = (dir / "model.safetensors").string();

  // A manifest makes the file go through the checked read; a changed tensor byte is then refused, not loaded.
  trust::write_manifest(dir.string());
  EXPECT_FALSE(io::run_file_is_plain(st));
  expect_same_weights(*gpt, *models::load_gpt_hf(dir.string()));
  std::string bytes = data::read_file(st);
  bytes[bytes.size() - 3] ^= 0x40;
  test::write_file(st, bytes);
  EXPECT_THROW(models::load_gpt_hf(dir.string()), Error);
  trust::LoadPolicy skip;
  skip.skip_verify = true;
  trust::set_load_policy(skip);  // skipping the check is the plain path again
  EXPECT_TRUE(io::run_file_is_plain(st));
  EXPECT_NO_THROW(models::load_gpt_hf(dir.string()));
  trust::set_load_policy({});
  trust::remove_manifest(dir.string());

  // Encrypted at rest: decrypted in memory with the key, refused without it.
  gpt->save(dir.string());
  const std::string key = test::scratch("run.key").string();
  trust::keygen_symmetric(key);
  trust::encrypt_run(dir.string(), key);
  EXPECT_FALSE(io::run_file_is_plain(st));
  EXPECT_THROW(models::load_gpt_hf(dir.string()), Error);
  trust::LoadPolicy keyed;
  keyed.key_file = key;
  trust::set_load_policy(keyed);
  expect_same_weights(*gpt, *models::load_gpt_hf(dir.string()));
  trust::set_load_policy({});
}

TEST(MappedFile, ErrorsNameTheFile) {
  try {
    io::MappedFile m(test::scratch("absent.bin").string());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("absent.bin"), std::string::npos) << e.what();
  }
  try {
    io::MappedFile m(test::scratch("").string());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("folder"), std::string::npos) << e.what();
  }
  const fs::path empty = test::scratch("empty.bin");
  test::write_file(empty, "");
  EXPECT_EQ(io::MappedFile(empty.string()).bytes().size(), 0u);
}

// read() goes through a 1 MiB buffer with pread: ranges across the buffer's size come back byte for byte, a range
// past the end is refused, and a file cut short under a live mapping gives an error naming it (not a SIGBUS, as
// touching the mapping's lost pages would).
TEST(MappedFile, ReadCopiesRangesAndNamesAShortFile) {
  std::string bytes(3 * (1 << 20) + 123, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = char((i * 2654435761u) >> 13);
  const fs::path p = test::scratch("read.bin");
  test::write_file(p, bytes);
  io::MappedFile m(p.string());
  for (auto [off, n] : std::vector<std::pair<size_t, size_t>>{{0, bytes.size()}, {7, (1 << 20) + 9}, {1 << 20, 1},
                                                              {bytes.size() - 5, 5}, {100, 0}}) {
    std::string out(n, '\0');
    m.read(off, out.data(), n);
    EXPECT_EQ(out, bytes.substr(off, n)) << off << " " << n;
  }
  std::string out(8, '\0');
  EXPECT_THROW(m.read(bytes.size() - 4, out.data(), 8), Error);
  fs::resize_file(p, 1000);
  try {
    std::string rest(4096, '\0');
    m.read(2000, rest.data(), rest.size());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("read.bin"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("shorter"), std::string::npos) << e.what();
  }
}
