// The dates translation task: calendar dates written in many human formats -> ISO 8601 ("1999-03-05").
//   auto train = text::dates_train_pairs(50000, /*seed=*/0);   // {source "5th of March 1999", target "1999-03-05"}
//   auto test = text::dates_test_pairs();                      // the fixed held-out set, never in training
//   const text::DatesVocab& v = text::dates_vocab();  auto ids = v.encode("March 5, 1999", {.add_eos = true});
// Dates run from 1950-01-01 to 2049-12-31, so a two-digit year is unambiguous (50..99 -> 19xx, 00..49 -> 20xx).
// Numeric formats are all day-first ("05/03/99" is 5 March), as one order per separator keeps the task solvable.
// About 10% of the days are test days, chosen by a fixed hash of the day (not by the seed): training pairs
// never use them, so the test set is disjoint from every training set at the level of dates.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "loom/text/word_vocab.h"  // EncodeOptions, the special-token ids

namespace loom::text {

struct Date {
  int year = 1950, month = 1, day = 1;
  bool operator==(const Date&) const = default;
};

int64_t days_in_month(int year, int month);
// Days since 1950-01-01 (the first date of the task), and back.
int64_t day_number(const Date& d);
Date date_from_day_number(int64_t n);
int weekday(const Date& d);    // 0 = Monday ... 6 = Sunday
std::string iso_date(const Date& d);  // "1999-03-05"

constexpr int64_t kDatesNumDays = 36525;  // 1950-01-01 .. 2049-12-31
bool is_dates_test_day(int64_t day);      // the fixed ~10% held out for testing

// The formats, each named by an example for 1999-03-05 ("5th of March 1999", "05/03/99", ...).
int64_t num_date_formats();
const std::string& date_format_example(int64_t format);
std::string format_date(const Date& d, int64_t format);

struct DatePair {
  std::string source, target;  // "5th of March 1999", "1999-03-05"
  int64_t format = 0;
};

// n pairs of uniformly drawn non-test days in uniformly drawn formats; the same (n, seed) gives the same pairs.
std::vector<DatePair> dates_train_pairs(int64_t n, uint64_t seed);
// The held-out set: the first n (at most kDatesTestSize) pairs of one fixed list drawn from the test days.
constexpr int64_t kDatesTestSize = 2000;
std::vector<DatePair> dates_test_pairs(int64_t n = kDatesTestSize);

// Character vocabulary shared by sources and targets: <pad> <unk> <bos> <eos> (WordVocab's ids 0..3), then the
// printable ASCII characters. Unknown characters map to <unk>.
class DatesVocab {
 public:
  DatesVocab();
  int64_t size() const { return int64_t(chars_.size()) + 4; }
  std::vector<int64_t> encode(std::string_view text, const EncodeOptions& o = {}) const;
  // Stops at the first <eos>; drops <pad> and <bos>; <unk> is written as '?'.
  std::string decode(const std::vector<int64_t>& ids) const;
  const std::string& chars() const { return chars_; }  // the characters of ids 4, 5, ...

 private:
  std::string chars_;
  int64_t ids_[128];
};
const DatesVocab& dates_vocab();

}  // namespace loom::text
