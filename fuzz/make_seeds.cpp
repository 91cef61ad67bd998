// Writes the seed corpus of every fuzz target into OUT/<target>/, using loom's own writers (safetensors,
// tokenizer files, model metadata) and stb's PNG/JPEG encoders, so no binary seeds are committed.
//   build-fuzz/fuzz/make_seeds build-fuzz/corpus        # then: build-fuzz/fuzz/fuzz_idx build-fuzz/corpus/fuzz_idx
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <stb/stb_image_write.h>
#include <zlib.h>

#include "loom/io/gguf.h"
#include "loom/io/safetensors.h"
#include "loom/loom.h"
#include "loom/models/gpt.h"
#include "loom/models/lstm_lm.h"
#include "loom/text/bpe.h"
#include "loom/text/char_tokenizer.h"
#include "loom/text/word_vocab.h"
#include "model_file.h"

namespace fs = std::filesystem;
using namespace loom;

namespace {

fs::path g_out;

void seed(const std::string& target, const std::string& name, const std::string& bytes) {
  const fs::path dir = g_out / target;
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

std::string gzip(const std::string& raw) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);  // +16: gzip wrapper
  std::string out(deflateBound(&z, uLong(raw.size())) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  z.avail_in = uInt(raw.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = uInt(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string be32(uint32_t v) { return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; }

// IDX: magic 0 0 type ndim, big-endian dims, then the data.
std::string idx(uint8_t type, const std::vector<uint32_t>& dims, size_t item) {
  std::string s{0, 0, char(type), char(dims.size())};
  size_t n = 1;
  for (uint32_t d : dims) s += be32(d), n *= d;
  for (size_t i = 0; i < n * item; ++i) s += char(i * 37 % 251);
  return s;
}

void append_image(void* ctx, void* data, int size) { static_cast<std::string*>(ctx)->append(static_cast<char*>(data), size_t(size)); }

std::string image(bool jpeg, int w, int h, int c) {
  std::vector<unsigned char> px(size_t(w * h * c));
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<unsigned char>(i * 29 % 256);
  std::string out;
  if (jpeg) stbi_write_jpg_to_func(append_image, &out, w, h, c, px.data(), 80);
  else stbi_write_png_to_func(append_image, &out, w, h, c, px.data(), w * c);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_seeds OUT_DIR\n";
    return 2;
  }
  g_out = argv[1];
  const fs::path tmp = g_out / ".tmp";
  fs::create_directories(tmp);

  // safetensors: every dtype, a 0-dim and an empty tensor, metadata.
  seed("fuzz_safetensors", "dtypes", io::safetensors_bytes(
      {{"w", arange(6).to(DType::f32).reshape({2, 3})}, {"d", arange(2).to(DType::f64)}, {"i", arange(3)},
       {"j", arange(2).to(DType::i32)}, {"u", arange(4).to(DType::u8)}, {"b", arange(2).to(DType::boolean)},
       {"h", arange(2).to(DType::bf16)}, {"g", arange(2).to(DType::f16)}}, {{"format", "pt"}}));
  seed("fuzz_safetensors", "scalar_empty", io::safetensors_bytes({{"s", scalar_tensor(1.5)}, {"e", zeros({0, 3})}}));
  seed("fuzz_safetensors", "none", io::safetensors_bytes({}));
  // GGUF: every metadata type (nested array included) and every tensor type loom reads.
  {
    io::GGUFBuilder b;
    b.set("general.architecture", io::GGUFValue::string("gpt2"));
    b.set("u32", io::GGUFValue::uint32(3));
    b.set("f", io::GGUFValue::float32(1e-5f));
    b.set("b", io::GGUFValue::boolean(true));
    b.set("toks", io::GGUFValue::strings({"a", "b", "a b"}));
    b.set("types", io::GGUFValue::int32s({1, 3}));
    io::GGUFValue nested;
    nested.type = io::GGUFType::array, nested.elem = io::GGUFType::array;
    nested.items.push_back(io::GGUFValue::int32s({7}));
    b.set("nested", nested);
    b.add_tensor("f32", io::GGMLType::f32, {2, 2}, std::string(16, '\1'));
    b.add_tensor("f16", io::GGMLType::f16, {3}, std::string(6, '\2'));
    b.add_tensor("q8", io::GGMLType::q8_0, {32}, std::string(34, '\3'));
    b.add_tensor("q4", io::GGMLType::q4_0, {32, 1, 1, 1}, std::string(18, '\4'));
    seed("fuzz_gguf", "types", b.bytes());
    b.alignment = 64;
    seed("fuzz_gguf", "align64", b.bytes());
    seed("fuzz_gguf", "empty", io::GGUFBuilder().bytes());
  }

  // IDX: u8 images and labels, i32, f32, f64; raw and gzip.
  seed("fuzz_idx", "u8_images", idx(0x08, {2, 4, 4}, 1));
  seed("fuzz_idx", "u8_labels", idx(0x08, {5}, 1));
  seed("fuzz_idx", "i32", idx(0x0C, {2, 3}, 4));
  seed("fuzz_idx", "f32", idx(0x0D, {3}, 4));
  seed("fuzz_idx", "f64", idx(0x0E, {1, 2}, 8));
  seed("fuzz_idx", "u8_images.gz", gzip(idx(0x08, {2, 4, 4}, 1)));
  seed("fuzz_idx", "labels.gz", gzip(idx(0x08, {7}, 1)));

  // CIFAR: a format byte (0: CIFAR-10, 1: CIFAR-100 fine), then two records.
  for (int fmt : {0, 1}) {
    std::string s(1, char(fmt));
    for (int r = 0; r < 2; ++r) {
      s += char(r + 1);
      if (fmt == 1) s += char(r + 5);
      for (int i = 0; i < 3072; ++i) s += char((i * 7 + r) % 256);
    }
    seed("fuzz_cifar", "fmt" + std::to_string(fmt), s);
  }

  // CSV: an option byte (delimiter, classification, standardise, feature list), then the table.
  seed("fuzz_csv", "regression", std::string(1, char(8)) + "a,b,y\n1,2,3\n4,5.5,6\n7,8,9e1\n-1,0,2\n1.5,2,3\n");
  seed("fuzz_csv", "classes", std::string(1, char(2)) + "a,\"b, quoted\",y\n1,2,cat\n3,4,dog\n5,6,cat\n7,8,\"d\"\"og\"\n");
  seed("fuzz_csv", "semicolon", std::string(1, char(1 | 32)) + "b;a;y;z\n1;2;3;4\n\n5;6;7;8\r\n9;10;11;12\n");

  // Images: a channel byte (0 = as stored), then PNG or JPEG of 1, 3 and 4 channels.
  seed("fuzz_image", "gray.png", std::string(1, char(0)) + image(false, 5, 3, 1));
  seed("fuzz_image", "rgb.png", std::string(1, char(3)) + image(false, 4, 4, 3));
  seed("fuzz_image", "rgba.png", std::string(1, char(1)) + image(false, 3, 2, 4));
  seed("fuzz_image", "rgb.jpg", std::string(1, char(3)) + image(true, 8, 8, 3));
  seed("fuzz_image", "gray.jpg", std::string(1, char(0)) + image(true, 9, 7, 1));

  // BPE: text with spaces, digits, contractions, non-ASCII, invalid UTF-8.
  seed("fuzz_bpe", "english", "Hello world! It's 2024, don't   stop.\n\tThe end.");
  seed("fuzz_bpe", "unicode", "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x98\x80 <|endoftext|>");
  const char invalid[] = "ab\xff\xc3(\xe2\x82 \xf0\x9f\x98";
  seed("fuzz_bpe", "invalid", std::string(invalid, sizeof invalid - 1));

  // Vocabulary files: byte 0 even = a tokenizer JSON (char, word); odd = encoder.json "\n@@@\n" vocab.bpe.
  text::CharTokenizer::from_corpus("hello world\n\xc3\xa9").save((tmp / "char.json").string());
  seed("fuzz_vocab", "char", std::string(1, char(0)) + slurp(tmp / "char.json"));
  text::WordVocab::build({"the cat sat.", "the dog ran!"}).save((tmp / "word.json").string());
  seed("fuzz_vocab", "word", std::string(1, char(0)) + slurp(tmp / "word.json"));
  text::train_bpe("hello hello world world the the end", {.vocab_size = 270, .min_frequency = 1})
      .save((tmp / "bpe").string());
  seed("fuzz_vocab", "bpe", std::string(1, char(1)) + slurp(tmp / "bpe" / "encoder.json") + "\n@@@\n" +
                                slurp(tmp / "bpe" / "vocab.bpe"));

  // config.json: loom's lstm-lm and gpt configs, and a Hugging Face GPT-2 one.
  seed("fuzz_config", "lstm", models::LSTMLMConfig{}.to_json().dump());
  seed("fuzz_config", "gpt", models::GPTConfig{}.to_json().dump());
  seed("fuzz_config", "hf_gpt2", R"({"model_type": "gpt2", "n_layer": 2, "n_head": 2, "n_embd": 8, "n_positions": 16,
    "vocab_size": 50, "n_inner": null, "resid_pdrop": 0.1, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new"})");

  // loom metadata: a small linreg model as `loom train` saves it, plain and with normalisation and classes.
  {
    models::ModelSpec spec{.features = 3, .num_classes = 1};
    auto model = models::make_model("linreg", spec);
    io::NamedTensors w;
    const auto sd = model->state_dict();
    for (const auto& [k, v] : sd.items()) w.emplace_back(k, v);
    cli::DataOptions d{.spec = "csv:houses.csv", .target = "price"};
    seed("fuzz_metadata", "linreg", io::safetensors_bytes(w, cli::model_metadata("linreg", spec, {}, d)));
    d.normalize = true;
    d.norm = {{0.5}, {0.25}};
    models::ModelSpec img{.channels = 1, .height = 2, .width = 2, .num_classes = 2};
    seed("fuzz_metadata", "image_meta", io::safetensors_bytes(w, cli::model_metadata("mlp", img, {"a", "b"}, d)));
  }
  // loom serve's request bodies: an option byte (bit 0: chat), then the JSON body. Valid requests with every
  // option the parser reads, and a few it must refuse (wrong types, out of range, unsupported, not JSON).
  const std::string completion(1, char(0)), chat(1, char(1));
  seed("fuzz_serve_request", "completion", completion + R"({"model": "gpt", "prompt": "In the beginning",
    "max_tokens": 16, "temperature": 0.7, "top_p": 0.9, "top_k": 40, "seed": 7, "n": 2, "stop": ["
", "."],
    "repetition_penalty": 1.1, "logprobs": null, "echo": false, "user": "fuzz"})");
  seed("fuzz_serve_request", "completion_prompts", completion + R"({"prompt": ["a", "bé", ""], "max_tokens": 0})");
  seed("fuzz_serve_request", "completion_stream", completion + R"({"prompt": "x", "stream": true,
    "stream_options": {"include_usage": true}, "stop": "

"})");
  seed("fuzz_serve_request", "chat", chat + R"({"model": "gpt", "messages": [{"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"}, {"role": "assistant", "content": null},
    {"role": "developer", "content": [{"type": "text", "text": "parts"}]}], "max_completion_tokens": 8,
    "stream": true, "temperature": 0})");
  seed("fuzz_serve_request", "chat_bad_role", chat + R"({"messages": [{"role": "tool", "content": "x"}]})");
  seed("fuzz_serve_request", "chat_image_part", chat + R"({"messages": [{"role": "user",
    "content": [{"type": "image_url", "image_url": {"url": "data:"}}]}]})");
  seed("fuzz_serve_request", "bad_types", completion + R"({"prompt": [1, 2, 3], "max_tokens": "16", "temperature": -1,
    "n": 9, "stop": ["a", "b", "c", "d", "e"], "logprobs": 5, "tools": []})");
  seed("fuzz_serve_request", "not_json", completion + R"({"prompt": "unterminated)");
  seed("fuzz_serve_request", "deep", chat + std::string(300, '[') + std::string(300, ']'));
  fs::remove_all(tmp);
  return 0;
}
