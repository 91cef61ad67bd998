// Invalid UTF-8 in text is never replaced silently: text::check_utf8 (one warning with the first bad byte's
// offset, or an error with --errors strict), and the loom commands that read text (tokenize, train on text:FILE).
#include <algorithm>
#include <string>

#include <gtest/gtest.h>

#include "loom/core/error.h"
#include "loom/text/unicode.h"
#include "loom/text/utf8_check.h"
#include "support/run_command.h"
#include "support/scratch.h"

using namespace loom;

TEST(Utf8Check, FindsTheFirstInvalidByteAndCountsSequences) {
  EXPECT_EQ(text::find_invalid_utf8("plain ascii").count, 0u);
  EXPECT_EQ(text::find_invalid_utf8("caf\xC3\xA9 \xEF\xBF\xBD").count, 0u);  // a real U+FFFD is valid
  const auto p = text::find_invalid_utf8("ok \xC3\xA9 then \xFF and \xE2\x82 end");
  EXPECT_EQ(p.first_offset, 11u);
  EXPECT_EQ(p.count, 2u);
  // The count agrees with the decoder the tokenizers use: one U+FFFD per invalid sequence.
  const std::u32string cps = text::utf8_to_codepoints("ok \xC3\xA9 then \xFF and \xE2\x82 end");
  EXPECT_EQ(std::count(cps.begin(), cps.end(), U'\uFFFD'), 2);
}

TEST(Utf8Check, WarnsOnceOrStops) {
  testing::internal::CaptureStderr();
  text::check_utf8("abc\xFFxyz\xFF", "notes.txt", text::Utf8Errors::warn);
  text::check_utf8("all good", "good.txt", text::Utf8Errors::warn);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(err, "warning: notes.txt: invalid UTF-8 at byte offset 3 (2 invalid sequences), read as U+FFFD; pass "
                 "--errors strict to stop instead\n");
  try {
    text::check_utf8("abc\xFFxyz", "notes.txt", text::Utf8Errors::strict);
    FAIL() << "strict mode accepted invalid UTF-8";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("notes.txt: invalid UTF-8 at byte offset 3"), std::string::npos) << e.what();
  }
  EXPECT_EQ(text::parse_utf8_errors("strict"), text::Utf8Errors::strict);
  EXPECT_EQ(text::parse_utf8_errors("replace"), text::Utf8Errors::warn);
  EXPECT_THROW(text::parse_utf8_errors("ignore"), Error);
}

TEST(Utf8Cli, TokenizeWarnsWithTheOffsetOrStopsWithErrorsStrict) {
  const auto bad = test::scratch("latin1.txt");
  test::write_file(bad, "In the beginning caf\xE9 was made\n");  // Latin-1 e-acute: not UTF-8
  const std::string base = std::string(LOOM_BIN) + " tokenize --tokenizer char " + bad.string();
  auto r = test::run_command(base);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("warning: " + bad.string() + ": invalid UTF-8 at byte offset 20 (1 invalid sequence)"),
            std::string::npos) << r.err;
  EXPECT_FALSE(r.out.empty());
  r = test::run_command(base + " --errors strict");
  EXPECT_NE(r.status, 0);
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_NE(r.err.find(bad.string() + ": invalid UTF-8 at byte offset 20"), std::string::npos) << r.err;
  // Valid text: no warning at all.
  const auto good = test::scratch("utf8.txt");
  test::write_file(good, "caf\xC3\xA9\n");
  r = test::run_command(std::string(LOOM_BIN) + " tokenize --tokenizer char --errors strict " + good.string());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
}

TEST(Utf8Cli, TrainOnATextFileWarnsOrStops) {
  const auto bad = test::scratch("corpus_latin1.txt");
  std::string text;
  for (int i = 0; i < 40; ++i) text += "And the evening and the morning were the day.\n";
  text[100] = char(0xE9);
  test::write_file(bad, text);
  const std::string out = test::scratch("utf8_run").string();
  const std::string base = std::string(LOOM_BIN) + " train --model lstm-lm --data text:" + bad.string() +
                           " --embedding 8 --hidden 16 --layers 1 --context 16 --batch-size 4 --steps 1 --threads 1"
                           " --out " + out;
  auto r = test::run_command(base + " --errors strict");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find(bad.string() + ": invalid UTF-8 at byte offset 100"), std::string::npos) << r.err;
  r = test::run_command(base);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("warning: " + bad.string() + ": invalid UTF-8 at byte offset 100"), std::string::npos) << r.err;
}
