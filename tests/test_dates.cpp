// The dates task generator: calendar arithmetic, every format against a hand-written example, coverage of the
// formats, determinism by seed, and a held-out test set that no training set touches.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "loom/core/error.h"
#include "loom/text/dates.h"

using namespace loom;
using text::Date;

namespace {

TEST(Dates, CalendarArithmetic) {
  EXPECT_EQ(text::day_number({1950, 1, 1}), 0);
  EXPECT_EQ(text::day_number({1950, 2, 1}), 31);
  EXPECT_EQ(text::day_number({1951, 1, 1}), 365);
  EXPECT_EQ(text::date_from_day_number(text::kDatesNumDays - 1), (Date{2049, 12, 31}));
  EXPECT_EQ(text::days_in_month(2000, 2), 29);  // divisible by 400
  EXPECT_EQ(text::days_in_month(1900, 2), 28);  // by 100, not 400
  EXPECT_EQ(text::days_in_month(2024, 2), 29);
  EXPECT_EQ(text::days_in_month(2023, 2), 28);
  for (int64_t n = 0; n < text::kDatesNumDays; ++n) {
    const Date d = text::date_from_day_number(n);
    ASSERT_EQ(text::day_number(d), n) << text::iso_date(d);
  }
  EXPECT_EQ(text::weekday({1999, 3, 5}), 4);   // a Friday
  EXPECT_EQ(text::weekday({2000, 1, 1}), 5);   // a Saturday
  EXPECT_EQ(text::weekday({1969, 7, 20}), 6);  // a Sunday
  EXPECT_EQ(text::iso_date({1999, 3, 5}), "1999-03-05");
  EXPECT_THROW(text::day_number({1999, 2, 29}), Error);
  EXPECT_THROW(text::day_number({1999, 13, 1}), Error);
}

TEST(Dates, EveryFormatWritesItsExample) {
  ASSERT_GE(text::num_date_formats(), 25);
  std::set<std::string> seen;
  for (int64_t f = 0; f < text::num_date_formats(); ++f) {
    EXPECT_EQ(text::format_date({1999, 3, 5}, f), text::date_format_example(f)) << "format " << f;
    seen.insert(text::date_format_example(f));
  }
  EXPECT_EQ(int64_t(seen.size()), text::num_date_formats()) << "two formats write the same text";
  EXPECT_THROW(text::format_date({1999, 3, 5}, text::num_date_formats()), Error);
}

TEST(Dates, OrdinalsTwoDigitYearsAndWeekdays) {
  auto find = [](const std::string& example) {
    for (int64_t f = 0; f < text::num_date_formats(); ++f)
      if (text::date_format_example(f) == example) return f;
    ADD_FAILURE() << "no format " << example;
    return int64_t(0);
  };
  const int64_t ord = find("5th of March 1999"), yy = find("05/03/99"), wk = find("Friday, March 5, 1999");
  const std::pair<int, const char*> ords[] = {{1, "1st"},   {2, "2nd"},   {3, "3rd"},   {4, "4th"},   {11, "11th"},
                                              {12, "12th"}, {13, "13th"}, {21, "21st"}, {22, "22nd"}, {23, "23rd"},
                                              {30, "30th"}, {31, "31st"}};
  for (auto [d, s] : ords) EXPECT_EQ(text::format_date({2001, 1, d}, ord), std::string(s) + " of January 2001");
  EXPECT_EQ(text::format_date({2049, 12, 31}, yy), "31/12/49");
  EXPECT_EQ(text::format_date({1950, 1, 2}, yy), "02/01/50");
  EXPECT_EQ(text::format_date({2000, 2, 29}, wk), "Tuesday, February 29, 2000");
}

TEST(Dates, TrainingPairsAreDeterministicAndCoverTheFormats) {
  const auto a = text::dates_train_pairs(3000, 7), b = text::dates_train_pairs(3000, 7);
  const auto c = text::dates_train_pairs(3000, 8);
  ASSERT_EQ(a.size(), 3000u);
  int64_t same_as_c = 0;
  std::vector<int64_t> per_format(size_t(text::num_date_formats()), 0);
  std::set<std::string> targets;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].source, b[i].source);
    EXPECT_EQ(a[i].target, b[i].target);
    same_as_c += a[i].source == c[i].source;
    ++per_format[size_t(a[i].format)];
    targets.insert(a[i].target);
    ASSERT_EQ(a[i].target.size(), 10u);
    ASSERT_EQ(a[i].source, [&] {
      const std::string& t = a[i].target;
      return text::format_date({std::stoi(t.substr(0, 4)), std::stoi(t.substr(5, 2)), std::stoi(t.substr(8, 2))},
                               a[i].format);
    }()) << "the source is the target's date in its format";
  }
  EXPECT_LT(same_as_c, 50) << "another seed should give other pairs";
  for (size_t f = 0; f < per_format.size(); ++f) EXPECT_GT(per_format[f], 40) << "format " << f << " is rare";
  EXPECT_GT(targets.size(), 2800u) << "dates should rarely repeat";
}

TEST(Dates, HeldOutSetIsFixedAndDisjointFromTraining) {
  const auto test = text::dates_test_pairs();
  ASSERT_EQ(int64_t(test.size()), text::kDatesTestSize);
  const auto first = text::dates_test_pairs(100);
  for (size_t i = 0; i < first.size(); ++i) EXPECT_EQ(first[i].source, test[i].source);
  std::set<std::string> test_dates;
  std::set<int64_t> formats;
  for (const auto& p : test) test_dates.insert(p.target), formats.insert(p.format);
  EXPECT_EQ(int64_t(formats.size()), text::num_date_formats());
  EXPECT_GT(test_dates.size(), 1500u);
  for (uint64_t seed : {0, 1, 12345}) {
    for (const auto& p : text::dates_train_pairs(20000, seed))
      ASSERT_EQ(test_dates.count(p.target), 0u) << "seed " << seed << ": training date " << p.target
                                                << " is in the test set";
  }
  // About a tenth of the days are held out.
  int64_t held = 0;
  for (int64_t n = 0; n < text::kDatesNumDays; ++n) held += text::is_dates_test_day(n);
  EXPECT_GT(held, text::kDatesNumDays / 12);
  EXPECT_LT(held, text::kDatesNumDays / 8);
  EXPECT_THROW(text::dates_test_pairs(text::kDatesTestSize + 1), Error);
}

TEST(Dates, VocabularyEncodesEverySourceWithoutUnknowns) {
  const text::DatesVocab& v = text::dates_vocab();
  for (const auto& p : text::dates_train_pairs(2000, 3)) {
    const auto ids = v.encode(p.source);
    for (int64_t id : ids) ASSERT_GE(id, 4) << p.source;
    EXPECT_EQ(v.decode(ids), p.source);
  }
  const auto t = v.encode("1999-03-05", {.add_bos = true, .add_eos = true});
  ASSERT_EQ(t.size(), 12u);
  EXPECT_EQ(t.front(), text::WordVocab::kBos);
  EXPECT_EQ(t.back(), text::WordVocab::kEos);
  EXPECT_EQ(v.decode(t), "1999-03-05");
  EXPECT_EQ(v.decode({v.encode("12")[0], text::WordVocab::kEos, v.encode("3")[0]}), "1") << "stops at <eos>";
  EXPECT_EQ(v.encode("\xc3\xa9")[0], text::WordVocab::kUnk);
}

}  // namespace
