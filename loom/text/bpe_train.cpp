// Byte-level BPE training: count the corpus's pre-tokens once, then repeatedly merge the most frequent
// adjacent pair. Pair counts are updated only in the words that contain the merged pair, and a lazy
// max-heap (stale entries are skipped when popped) finds the next pair without rescanning all of them.
#include <algorithm>
#include <map>
#include <queue>
#include <unordered_map>

#include "loom/core/error.h"
#include "loom/text/bpe.h"
#include "loom/text/pretokenize.h"
#include "loom/text/unicode.h"

namespace loom::text {

namespace {

uint64_t key_of(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

struct Candidate {
  int64_t count;
  int32_t a, b;
};

}  // namespace

BPETokenizer train_bpe(std::string_view corpus, const BPETrainOptions& o) {
  const int64_t specials = int64_t(o.special_tokens.size());
  LOOM_CHECK(o.vocab_size >= 256 + specials, "train_bpe: vocab_size ", o.vocab_size, " is below the 256 byte ",
             "tokens plus ", specials, " special tokens");
  LOOM_CHECK(o.min_frequency >= 1, "train_bpe: min_frequency must be at least 1, got ", o.min_frequency);

  // Byte tokens get ids 0..255 in the order of GPT-2's table: printable bytes first, then the others.
  std::vector<std::string> raw;  // id -> bytes
  std::vector<int32_t> byte_id(256);
  {
    std::vector<int> order(256);
    for (int b = 0; b < 256; ++b) order[b] = b;
    const auto& t = byte_to_unicode();
    auto prints = [&](int b) { return t[b] == char32_t(b); };
    std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return prints(x) > prints(y); });
    for (int b : order) {
      byte_id[b] = int32_t(raw.size());
      raw.push_back(std::string(1, char(b)));
    }
  }
  std::unordered_map<std::string, int32_t> id_of;
  for (size_t i = 0; i < raw.size(); ++i) id_of[raw[i]] = int32_t(i);

  // Unique pre-tokens in byte order, so word indices (and everything after) do not depend on hashing.
  std::map<std::string, int64_t> freq_of;
  for (const std::string& p : gpt2_pretokenize(corpus)) ++freq_of[p];
  std::vector<std::vector<int32_t>> words;
  std::vector<int64_t> freq;
  for (const auto& [w, f] : freq_of) {
    std::vector<int32_t> syms;
    for (char c : w) syms.push_back(byte_id[static_cast<unsigned char>(c)]);
    words.push_back(std::move(syms));
    freq.push_back(f);
  }

  std::unordered_map<uint64_t, int64_t> count;
  std::unordered_map<uint64_t, std::vector<int32_t>> where;
  for (size_t w = 0; w < words.size(); ++w) {
    for (size_t i = 0; i + 1 < words[w].size(); ++i) {
      const uint64_t k = key_of(words[w][i], words[w][i + 1]);
      count[k] += freq[w];
      where[k].push_back(int32_t(w));
    }
  }
  // Highest count first; ties to the smaller pair by bytes (first token, then second).
  auto worse = [&](const Candidate& x, const Candidate& y) {
    if (x.count != y.count) return x.count < y.count;
    if (raw[x.a] != raw[y.a]) return raw[x.a] > raw[y.a];
    return raw[x.b] > raw[y.b];
  };
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(worse)> heap(worse);
  for (const auto& [k, c] : count) heap.push({c, int32_t(k >> 32), int32_t(uint32_t(k))});

  std::vector<std::pair<int32_t, int32_t>> merges;
  std::vector<int64_t> stamp(words.size(), -1);
  std::unordered_map<uint64_t, int64_t> delta;
  while (int64_t(raw.size()) + specials < o.vocab_size && !heap.empty()) {
    const Candidate top = heap.top();
    heap.pop();
    const uint64_t k = key_of(top.a, top.b);
    auto cit = count.find(k);
    if (cit == count.end() || cit->second != top.count) continue;  // stale entry
    if (top.count < o.min_frequency) break;
    const std::string joined = raw[top.a] + raw[top.b];
    int32_t result;
    if (auto it = id_of.find(joined); it != id_of.end()) {
      result = it->second;  // the same bytes reached through another pair earlier
    } else {
      result = int32_t(raw.size());
      raw.push_back(joined);
      id_of.emplace(joined, result);
    }
    const int64_t m = int64_t(merges.size());
    merges.emplace_back(top.a, top.b);
    delta.clear();
    std::vector<int32_t> touched = std::move(where[k]);
    where.erase(k);
    for (int32_t w : touched) {
      if (stamp[w] == m) continue;
      stamp[w] = m;
      std::vector<int32_t>& s = words[w];
      std::vector<int32_t> next;
      next.reserve(s.size());
      for (size_t i = 0; i < s.size();) {
        if (i + 1 < s.size() && s[i] == top.a && s[i + 1] == top.b) {
          next.push_back(result);
          i += 2;
        } else {
          next.push_back(s[i++]);
        }
      }
      if (next.size() == s.size()) continue;
      for (size_t i = 0; i + 1 < s.size(); ++i) delta[key_of(s[i], s[i + 1])] -= freq[w];
      for (size_t i = 0; i + 1 < next.size(); ++i) {
        const uint64_t nk = key_of(next[i], next[i + 1]);
        delta[nk] += freq[w];
        if (nk != k) where[nk].push_back(w);
      }
      s.swap(next);
    }
    for (const auto& [dk, d] : delta) {
      if (d == 0) continue;
      int64_t& c = count[dk];
      c += d;
      if (c <= 0) {
        count.erase(dk);
      } else {
        heap.push({c, int32_t(dk >> 32), int32_t(uint32_t(dk))});
      }
    }
  }

  std::vector<std::string> tokens;
  tokens.reserve(raw.size() + o.special_tokens.size());
  for (const std::string& r : raw) tokens.push_back(bytes_to_bpe_chars(r));
  for (const std::string& s : o.special_tokens) {
    LOOM_CHECK(!s.empty() && is_valid_utf8(s), "train_bpe: special tokens must be non-empty UTF-8");
    const std::string spelled = bytes_to_bpe_chars(s);
    if (std::find(tokens.begin(), tokens.end(), spelled) == tokens.end()) tokens.push_back(spelled);
  }
  std::vector<std::pair<std::string, std::string>> merge_tokens;
  merge_tokens.reserve(merges.size());
  for (const auto& [a, b] : merges) merge_tokens.emplace_back(tokens[a], tokens[b]);
  return BPETokenizer(std::move(tokens), std::move(merge_tokens));
}

}  // namespace loom::text
