// Text data: the KJV extraction (against WORKLOADS.md's shell pipeline), text:FILE corpora, the language-model
// dataset (split, block sampling, determinism) and length-bucketed, padded batches for seq2seq.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>
#include <unistd.h>

#include <gtest/gtest.h>

#include "loom/loom.h"
#include "support/run_command.h"
#include "support/scratch.h"

using namespace loom;
using namespace loom::text;
namespace fs = std::filesystem;

namespace {

using loom::test::scratch;
using loom::test::write_file;

std::string shell(const std::string& cmd) {
  const loom::test::CommandResult r = loom::test::run_command(cmd);
  EXPECT_EQ(r.status, 0) << cmd << "\n" << r.err;
  return r.out;
}

std::vector<int64_t> iota_tokens(int64_t n) {
  std::vector<int64_t> v(size_t(n), 0);
  std::iota(v.begin(), v.end(), 0);
  return v;
}

std::vector<int64_t> to_vec(const Tensor& t) {
  std::vector<int64_t> out;
  for (double d : t.tolist()) out.push_back(int64_t(d));
  return out;
}

}  // namespace

TEST(KJV, ExtractionMatchesTheWorkloadPipeline) {
  const std::string kjv = load_kjv();
  EXPECT_EQ(std::count(kjv.begin(), kjv.end(), '\n'), 31102);
  EXPECT_GT(kjv.size(), 4'100'000u);
  EXPECT_LT(kjv.size(), 4'200'000u);
  EXPECT_EQ(std::set<char>(kjv.begin(), kjv.end()).size(), 63u);
  EXPECT_EQ(kjv.substr(0, 55), "In the beginning God created the heaven and the earth.\n");
  EXPECT_TRUE(kjv.ends_with("Amen.\n"));
  EXPECT_EQ(CharTokenizer::from_corpus(kjv).vocab_size(), 63);
  // Byte for byte what ../shared/WORKLOADS.md's command prints.
  const std::string piped =
      shell("bible -f \"Gen1:1-Rev22:21\" | sed -E 's/^[0-9]?[A-Za-z]+[0-9]+:[0-9]+ //'");
  EXPECT_TRUE(piped == kjv) << "sizes " << piped.size() << " vs " << kjv.size();
  EXPECT_EQ(load_corpus("kjv"), kjv);
}

TEST(KJV, CachedAfterTheFirstExtraction) {
  const std::string cache = scratch("kjv_cache/kjv.txt").string();
  EXPECT_EQ(kjv_path(cache), cache);
  ASSERT_TRUE(fs::exists(cache));
  EXPECT_EQ(fs::file_size(cache), load_kjv().size());
  write_file(cache, "the cache is read, not rebuilt\n");
  EXPECT_EQ(load_kjv(cache), "the cache is read, not rebuilt\n");
}

TEST(KJV, VerseReferencesAreStripped) {
  EXPECT_EQ(strip_verse_references("Ge1:1 In the beginning\n1Sm1:2 And he had\nRev22:21 Amen.\n"),
            "In the beginning\nAnd he had\nAmen.\n");
  EXPECT_EQ(strip_verse_references("Jn3:16 no newline at the end"), "no newline at the end");
  EXPECT_THROW(strip_verse_references("Ge1:1 fine\nno reference here\n"), Error);
  EXPECT_THROW(strip_verse_references("Ge1: missing verse\n"), Error);
}

TEST(Corpus, TextFileSpec) {
  const std::string bytes = std::string("caf\u00e9\r\nline two\n\xff raw bytes") + '\0' + "after nul";
  write_file(scratch("corpus.txt"), bytes);
  EXPECT_EQ(load_corpus("text:" + scratch("corpus.txt").string()), bytes);
  EXPECT_THROW(load_corpus("text:" + scratch("missing.txt").string()), Error);
  EXPECT_THROW(load_corpus("text:"), Error);
  EXPECT_THROW(load_corpus("shakespeare"), Error);
}

TEST(LanguageModelData, SplitsTheLastTenPercent) {
  const auto tokens = iota_tokens(1000);
  LMData d = make_lm_data(tokens, 16, 0);
  EXPECT_EQ(d.train->num_tokens(), 900);  // int(0.9 * 1000)
  EXPECT_EQ(d.val->num_tokens(), 100);
  EXPECT_EQ(d.train->tokens().back(), 899);
  EXPECT_EQ(d.val->tokens().front(), 900);
  EXPECT_EQ(d.train->size(), 900 - 16);
  EXPECT_EQ(d.val->size(), 100 - 16);
  // The KJV's split in characters, as gpt_char.py makes it.
  EXPECT_EQ(make_lm_data(iota_tokens(4137850), 8).train->num_tokens(), 3724065);
  EXPECT_EQ(make_lm_data(iota_tokens(1001), 8, 0, 0.25).train->num_tokens(), 750);
  EXPECT_THROW(make_lm_data(tokens, 100), Error);  // validation part too short
  EXPECT_THROW(make_lm_data(tokens, 8, 0, 1.0), Error);
  EXPECT_THROW(make_lm_data(std::vector<int64_t>{1, 2, -3, 4}, 1, 0, 0.5), Error);
}

TEST(LanguageModelData, BlocksAreShiftedPairs) {
  const auto tokens = iota_tokens(500);
  LMData d = make_lm_data(tokens, 8, 3);
  auto [x, y] = d.train->get_batch(32);
  EXPECT_EQ(x.shape(), (Shape{32, 8}));
  EXPECT_EQ(y.shape(), (Shape{32, 8}));
  EXPECT_EQ(x.dtype(), DType::i64);
  const std::vector<int64_t> xs = to_vec(x), ys = to_vec(y);
  for (int64_t b = 0; b < 32; ++b) {
    const int64_t s = xs[size_t(b * 8)];
    EXPECT_GE(s, 0);
    EXPECT_LE(s + 8, 450 - 1);  // y's last token is still a training token
    for (int64_t t = 0; t < 8; ++t) {
      EXPECT_EQ(xs[size_t(b * 8 + t)], s + t);
      EXPECT_EQ(ys[size_t(b * 8 + t)], s + t + 1);
    }
  }
  auto [vx, vy] = d.val->get_batch(64);
  for (double v : vx.tolist()) EXPECT_GE(v, 450);  // validation blocks stay in the last 10%
  for (double v : vy.tolist()) EXPECT_LT(v, 500);
  data::Example e = d.train->get(5);
  EXPECT_EQ(to_vec(e.data), (std::vector<int64_t>{5, 6, 7, 8, 9, 10, 11, 12}));
  EXPECT_EQ(to_vec(e.target), (std::vector<int64_t>{6, 7, 8, 9, 10, 11, 12, 13}));
  EXPECT_THROW(d.train->get(d.train->size()), Error);
  EXPECT_THROW(d.train->get_batch(0), Error);
}

TEST(LanguageModelData, SamplingIsSeededAndResumable) {
  const auto tokens = iota_tokens(10000);
  LMData a = make_lm_data(tokens, 32, 7), b = make_lm_data(tokens, 32, 7), c = make_lm_data(tokens, 32, 8);
  std::vector<std::vector<int64_t>> sa, sb, sc;
  for (int i = 0; i < 5; ++i) {
    sa.push_back(to_vec(a.train->get_batch(4).data));
    sb.push_back(to_vec(b.train->get_batch(4).data));
    sc.push_back(to_vec(c.train->get_batch(4).data));
  }
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, sc);
  EXPECT_NE(sa[0], sa[1]);
  // The generator's state is the whole of the stream's position.
  const std::string state = a.train->generator().get_state();
  const auto next = to_vec(a.train->get_batch(4).target);
  a.train->generator().set_state(state);
  EXPECT_EQ(to_vec(a.train->get_batch(4).target), next);
}

TEST(LanguageModelData, StartsAreUniform) {
  LanguageModelDataset d(std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6}, 2, 11);  // 5 possible starts
  std::vector<int64_t> counts(5, 0);
  for (int64_t s : d.sample_starts(50000)) ++counts[size_t(s)];
  for (int64_t c : counts) EXPECT_NEAR(double(c), 10000.0, 400.0);  // about 4 standard deviations
}

TEST(LanguageModelData, WorksWithTheDataLoader) {
  const auto tokens = iota_tokens(300);
  LMData d = make_lm_data(tokens, 10, 0);
  data::DataLoader loader(d.train, {.batch_size = 16, .shuffle = true, .drop_last = true, .seed = 1});
  int64_t batches = 0;
  for (auto& [x, y] : loader) {
    EXPECT_EQ(x.shape(), (Shape{16, 10}));
    EXPECT_TRUE((to_vec(y.slice(1, 0, 9)) == to_vec(x.slice(1, 1, 10).contiguous())));
    ++batches;
  }
  EXPECT_EQ(batches, (270 - 10) / 16);
}

TEST(BucketSampler, GroupsSimilarLengths) {
  Generator g(5);
  std::vector<int64_t> lengths(203);
  for (auto& l : lengths) l = 1 + int64_t(g.next_u64() % 60);
  BucketSampler s(lengths, 8, 42, {.pool_batches = 25});
  const auto batches = s.batches(0);
  ASSERT_EQ(batches.size(), 26u);
  for (size_t i = 0; i + 1 < batches.size(); ++i) EXPECT_EQ(batches[i].size(), 8u);
  EXPECT_EQ(batches.back().size(), 203u % 8);  // the short batch comes last
  std::vector<int64_t> flat = s.indices(0);
  std::vector<int64_t> sorted = flat;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> all(203);
  std::iota(all.begin(), all.end(), 0);
  EXPECT_EQ(sorted, all);
  // Spread of lengths inside a batch: far below that of random batches.
  auto spread = [&](const std::vector<int64_t>& order) {
    double total = 0;
    for (size_t i = 0; i + 8 <= order.size(); i += 8) {
      auto [lo, hi] = std::minmax_element(order.begin() + std::ptrdiff_t(i), order.begin() + std::ptrdiff_t(i + 8),
                                          [&](int64_t a, int64_t b) { return lengths[a] < lengths[b]; });
      total += double(lengths[*hi] - lengths[*lo]);
    }
    return total / double(order.size() / 8);
  };
  const double bucketed = spread(flat), random = spread(data::RandomSampler(203, 42).indices(0));
  EXPECT_LT(bucketed, random / 4) << bucketed << " vs " << random;
  EXPECT_EQ(s.indices(0), BucketSampler(lengths, 8, 42, {.pool_batches = 25}).indices(0));
  EXPECT_NE(s.indices(0), s.indices(1));
  const std::vector<int64_t> plain = BucketSampler(lengths, 8, 42, {.shuffle = false}).indices(0);
  auto shorter = [&](int64_t a, int64_t b) { return lengths[size_t(a)] < lengths[size_t(b)]; };
  EXPECT_TRUE(std::is_sorted(plain.begin(), plain.end(), shorter));
  EXPECT_THROW(BucketSampler(lengths, 0, 0), Error);
}

TEST(BucketSampler, PaddedBatchesFromTheDataLoader) {
  std::vector<std::vector<int64_t>> src, tgt;
  for (int64_t i = 0; i < 21; ++i) {
    src.push_back(std::vector<int64_t>(size_t(1 + i % 7), 10 + i));
    tgt.push_back(std::vector<int64_t>(size_t(1 + (i * 3) % 5), 100 + i));
  }
  auto ds = std::make_shared<SequencePairDataset>(src, tgt);
  EXPECT_EQ(ds->lengths()[3], 5);  // max(4, 5)
  auto sampler = std::make_shared<BucketSampler>(ds->lengths(), 4, 0);
  data::DataLoader loader(ds, {.batch_size = 4, .collate = pad_collate(), .sampler = sampler});
  std::set<int64_t> seen;
  int64_t batches = 0;
  for (auto& [x, y] : loader) {
    ++batches;
    ASSERT_EQ(x.dim(), 2);
    const std::vector<int64_t> xs = to_vec(x), ys = to_vec(y);
    for (int64_t b = 0; b < x.size(0); ++b) {
      const int64_t i = xs[size_t(b * x.size(1))] - 10;  // every source is filled with 10 + its index
      seen.insert(i);
      for (int64_t t = 0; t < x.size(1); ++t)
        EXPECT_EQ(xs[size_t(b * x.size(1) + t)], t < int64_t(src[size_t(i)].size()) ? 10 + i : WordVocab::kPad);
      for (int64_t t = 0; t < y.size(1); ++t)
        EXPECT_EQ(ys[size_t(b * y.size(1) + t)], t < int64_t(tgt[size_t(i)].size()) ? 100 + i : WordVocab::kPad);
    }
  }
  EXPECT_EQ(batches, 6);
  EXPECT_EQ(seen.size(), 21u);
  data::DataLoader dropping(ds, {.batch_size = 4, .drop_last = true, .collate = pad_collate(), .sampler = sampler});
  int64_t full = 0;
  for (auto& [x, y] : dropping) full += x.size(0) == 4;
  EXPECT_EQ(full, 5);
  EXPECT_THROW(SequencePairDataset({{1}}, {}), Error);
}
