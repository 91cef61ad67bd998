// Character and word tokenizers: vocabulary construction (sorting, min_freq, max_size, special tokens),
// encode/decode, errors on bad input, and save/load round trips. GPT-2 BPE is in test_gpt2_bpe.cpp.
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include <gtest/gtest.h>

#include "loom/loom.h"
#include "support/scratch.h"

using namespace loom;
using namespace loom::text;
namespace fs = std::filesystem;

namespace {

using Ids = std::vector<int64_t>;
using Words = std::vector<std::string>;

using loom::test::scratch;
using loom::test::write_file;

template <class F>
void expect_error(F&& f, const std::string& part) {
  try {
    f();
    ADD_FAILURE() << "expected loom::Error mentioning " << part;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(CharTokenizer, VocabularyIsTheSortedCharacters) {
  const CharTokenizer t = CharTokenizer::from_corpus("hello, world\n");
  EXPECT_EQ(t.vocab_size(), 10);
  EXPECT_EQ(t.chars(), U"\n ,dehlorw");
  EXPECT_EQ(t.encode("hello"), (Ids{5, 4, 6, 6, 7}));
  EXPECT_EQ(t.decode(t.encode("low\nrow, held")), "low\nrow, held");
  EXPECT_EQ(t.type(), "char");
  EXPECT_TRUE(t.contains(U'w'));
  EXPECT_FALSE(t.contains(U'z'));
}

TEST(CharTokenizer, CodePointsNotBytes) {
  // One id per Unicode character, sorted by code point as Python's sorted(set(text)) sorts.
  const std::string text = "caf\u00e9 \u4e2d\u6587 \U0001f600 z\u0301";
  const CharTokenizer t = CharTokenizer::from_corpus(text);
  EXPECT_EQ(t.chars(), U" acfz\u00e9\u0301\u4e2d\u6587\U0001f600");
  const Ids ids = t.encode(text);
  EXPECT_EQ(ids.size(), 12u);
  EXPECT_EQ(ids[3], 5);  // é
  EXPECT_EQ(t.decode(ids), text);
  // Invalid UTF-8 is one U+FFFD per bad sequence, in the vocabulary like any other character.
  const CharTokenizer bad = CharTokenizer::from_corpus("a\xff\xe4\xb8");
  EXPECT_EQ(bad.chars(), U"a\ufffd");
  EXPECT_EQ(bad.encode("a\xff\xe4\xb8"), (Ids{0, 1, 1}));
}

TEST(CharTokenizer, RejectsUnknownCharactersAndIds) {
  const CharTokenizer t = CharTokenizer::from_corpus("abc");
  expect_error([&] { t.encode("abd"); }, "'d' (U+64) at byte 2");
  expect_error([&] { t.encode("a\u4e2d"); }, "U+4e2d");
  expect_error([&] { t.decode(Ids{0, 3}); }, "id 3 at position 1");
  expect_error([&] { t.decode(Ids{-1}); }, "id -1");
  expect_error([&] { CharTokenizer(U"aba"); }, "appears twice");
  EXPECT_TRUE(t.encode("").empty());
  EXPECT_EQ(t.decode(Ids{}), "");
}

TEST(CharTokenizer, SaveLoadRoundTrip) {
  const std::string text = "In the beginning\tGod \"created\" \\ \u00e9\U0001f600\n";
  const CharTokenizer t = CharTokenizer::from_corpus(text);
  const std::string path = scratch("chars.json").string();
  t.save(path);
  const CharTokenizer back = CharTokenizer::load(path);
  EXPECT_EQ(back.chars(), t.chars());
  EXPECT_EQ(back.encode(text), t.encode(text));
  TokenizerPtr any = load_tokenizer(path);
  EXPECT_EQ(any->type(), "char");
  EXPECT_EQ(any->decode(t.encode(text)), text);
  write_file(scratch("bad.json"), R"({"type": "char", "chars": ["a", "bc"]})");
  expect_error([&] { CharTokenizer::load(scratch("bad.json").string()); }, "is not one character");
  write_file(scratch("notjson.json"), "chars: abc");
  expect_error([&] { CharTokenizer::load(scratch("notjson.json").string()); }, "not valid JSON");
  expect_error([&] { CharTokenizer::load(scratch("missing.json").string()); }, "missing.json");
}

TEST(WordVocab, SplitsWordsAndPunctuation) {
  EXPECT_EQ(split_words("Don't stop,  me now!\n"), (Words{"Don", "'", "t", "stop", ",", "me", "now", "!"}));
  EXPECT_EQ(split_words("caf\u00e9 cafe\u0301 x2 3.14"), (Words{"caf\u00e9", "cafe\u0301", "x2", "3", ".", "14"}));
  EXPECT_EQ(split_words("\u4e2d\u6587\u3002 \u00a0tab\tend"), (Words{"\u4e2d\u6587", "\u3002", "tab", "end"}));
  EXPECT_EQ(split_words("Hello WORLD", true), (Words{"hello", "world"}));
  EXPECT_TRUE(split_words(" \t\n ").empty());
}

TEST(WordVocab, SpecialTokensHaveFixedIds) {
  const WordVocab v = WordVocab::build({"the cat sat on the mat", "the dog sat"});
  EXPECT_EQ(v.word(0), "<pad>");
  EXPECT_EQ(v.word(1), "<unk>");
  EXPECT_EQ(v.word(2), "<bos>");
  EXPECT_EQ(v.word(3), "<eos>");
  EXPECT_EQ(WordVocab::kPad, 0);
  EXPECT_EQ(WordVocab::kEos, 3);
  // Most frequent first (the: 3, sat: 2), then ties in byte order.
  EXPECT_EQ(v.word(4), "the");
  EXPECT_EQ(v.word(5), "sat");
  EXPECT_EQ(v.word(6), "cat");
  EXPECT_EQ(v.vocab_size(), 4 + 6);
  EXPECT_EQ(v.encode("the bird sat", {.add_bos = true, .add_eos = true}), (Ids{2, 4, 1, 5, 3}));
  EXPECT_EQ(v.encode("the bird"), (Ids{4, 1}));
  EXPECT_EQ(v.decode(Ids{2, 4, 6, 3, 0, 0}), "<bos> the cat <eos>");
  EXPECT_EQ(v.id("nope"), WordVocab::kUnk);
  expect_error([&] { v.word(10); }, "id 10");
  expect_error([&] { WordVocab({"a", "<unk>"}); }, "added by WordVocab itself");
}

TEST(WordVocab, MinFreqAndMaxSize) {
  const std::vector<std::string> texts = {"a a a a b b b c c d", "e e d b"};  // a:4 b:4 e:2 c:2 d:2
  const WordVocab all = WordVocab::build(texts);
  EXPECT_EQ(all.vocab_size(), 4 + 5);
  const WordVocab common = WordVocab::build(texts, {.min_freq = 3});
  EXPECT_EQ(common.vocab_size(), 4 + 2);
  EXPECT_TRUE(common.contains("a") && common.contains("b"));
  EXPECT_EQ(common.encode("a c e"), (Ids{4, 1, 1}));
  const WordVocab capped = WordVocab::build(texts, {.max_size = 7});
  EXPECT_EQ(capped.vocab_size(), 7);
  EXPECT_EQ(capped.word(4), "a");
  EXPECT_EQ(capped.word(5), "b");
  EXPECT_EQ(capped.word(6), "c");  // c, d and e tie at 2: byte order keeps c
  // The order of the texts does not change the ids.
  const WordVocab swapped = WordVocab::build({texts[1], texts[0]}, {.max_size = 7});
  EXPECT_EQ(swapped.encode("a b c d e"), capped.encode("a b c d e"));
  EXPECT_THROW(WordVocab::build(texts, {.min_freq = 0}), Error);
  EXPECT_THROW(WordVocab::build(texts, {.max_size = 3}), Error);
  const WordVocab lowered = WordVocab::build({"The THE the"}, {.lower = true});
  EXPECT_EQ(lowered.vocab_size(), 5);
  EXPECT_EQ(lowered.encode("tHe"), (Ids{4}));
}

TEST(WordVocab, SaveLoadRoundTrip) {
  const WordVocab v = WordVocab::build({"Über \"quoted\" words, and \u4e2d\u6587 too", "and again"},
                                       {.lower = true});
  const std::string path = scratch("words.json").string();
  v.save(path);
  const WordVocab back = WordVocab::load(path);
  EXPECT_EQ(back.vocab_size(), v.vocab_size());
  EXPECT_TRUE(back.lower());
  for (int64_t i = 0; i < v.vocab_size(); ++i) EXPECT_EQ(back.word(i), v.word(i));
  EXPECT_EQ(back.encode("AND \u4e2d\u6587 unknown"), v.encode("AND \u4e2d\u6587 unknown"));
  TokenizerPtr any = load_tokenizer(path);
  EXPECT_EQ(any->type(), "word");
  EXPECT_EQ(any->vocab_size(), v.vocab_size());
  write_file(scratch("nospecials.json"), R"({"type": "word", "words": ["a", "b", "c", "d"]})");
  expect_error([&] { WordVocab::load(scratch("nospecials.json").string()); }, "must start with <pad>");
  write_file(scratch("other.json"), R"({"type": "sentencepiece"})");
  expect_error([&] { load_tokenizer(scratch("other.json").string()); }, "sentencepiece");
}

TEST(Tokenizer, MadeBySpec) {
  const std::string corpus = "to be or not to be";
  TokenizerPtr c = make_tokenizer("char", corpus);
  EXPECT_EQ(c->type(), "char");
  EXPECT_EQ(c->vocab_size(), 7);
  EXPECT_EQ(c->decode(c->encode(corpus)), corpus);
  TokenizerPtr w = make_tokenizer("word", corpus);
  EXPECT_EQ(w->type(), "word");
  EXPECT_EQ(w->encode("to be"), (Ids{5, 4}));  // be and to: 2 each, byte order
  expect_error([&] { make_tokenizer("sentencepiece", corpus); }, "unknown tokenizer \"sentencepiece\"");
  expect_error([&] { make_tokenizer("bpe:", corpus); }, "unknown tokenizer");
  expect_error([&] { make_tokenizer("bpe:" + scratch("no_such_dir").string()); }, "encoder.json");
}

TEST(Unicode, Utf8DecodingFollowsWhatwg) {
  // One U+FFFD per maximal invalid subsequence (what TextDecoder and node's Buffer.toString produce).
  EXPECT_EQ(utf8_to_codepoints("a\xe4\xb8z"), U"a\ufffdz");
  EXPECT_EQ(utf8_to_codepoints("\xf0\x9f\x98"), U"\ufffd");
  EXPECT_EQ(utf8_to_codepoints("\xed\xa0\x80"), U"\ufffd\ufffd\ufffd");   // a surrogate: each byte
  EXPECT_EQ(utf8_to_codepoints("\xc0\xaf"), U"\ufffd\ufffd");             // overlong
  EXPECT_EQ(utf8_to_codepoints("\xf4\x90\x80\x80"), U"\ufffd\ufffd\ufffd\ufffd");  // past U+10FFFF
  EXPECT_EQ(utf8_to_codepoints("\xf0\x9f\x98\x80"), U"\U0001f600");
  EXPECT_TRUE(is_valid_utf8("caf\u00e9 \ufffd \U0001f600"));
  EXPECT_FALSE(is_valid_utf8("\xf0\x90\x80"));
  EXPECT_FALSE(is_valid_utf8("ab\x80"));
  EXPECT_EQ(sanitize_utf8("ok\xffok"), "ok\ufffdok");
  EXPECT_EQ(to_utf8(U"\u00e9\u4e2d\U0001f600"), "\u00e9\u4e2d\U0001f600");
  EXPECT_TRUE(is_letter(U'\u00e9') && is_letter(U'\u4e2d') && !is_letter(U'1') && !is_letter(U'\u0301'));
  EXPECT_TRUE(is_number(U'\u0663') && is_number(U'\u00bd') && !is_number(U'x'));
  EXPECT_TRUE(is_mark(U'\u0301') && !is_mark(U'e'));
  EXPECT_TRUE(is_js_space(U'\u00a0') && is_js_space(U'\ufeff') && !is_js_space(U'\u0085') && !is_js_space(U'\u200b'));
}
