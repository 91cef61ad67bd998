#include "loom/text/dates.h"

#include <array>
#include <cctype>
#include <cstdio>
#include <functional>

#include "loom/core/error.h"
#include "loom/core/generator.h"

namespace loom::text {

namespace {

bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

const std::array<const char*, 12> kMonths = {"January", "February", "March",     "April",   "May",      "June",
                                             "July",    "August",   "September", "October", "November", "December"};
const std::array<const char*, 7> kWeekdays = {"Monday", "Tuesday", "Wednesday", "Thursday",
                                              "Friday", "Saturday", "Sunday"};

std::string month(const Date& d) { return kMonths[size_t(d.month - 1)]; }
std::string mon(const Date& d) { return month(d).substr(0, 3); }
std::string wday(const Date& d) { return kWeekdays[size_t(weekday(d))]; }
std::string wd(const Date& d) { return wday(d).substr(0, 3); }
std::string num(int v) { return std::to_string(v); }
std::string two(int v) {
  char b[8];
  std::snprintf(b, sizeof b, "%02d", v % 100);
  return b;
}
std::string year(const Date& d) { return num(d.year); }
std::string yy(const Date& d) { return two(d.year); }
std::string ordinal(int v) {
  const int t = v % 100;
  const char* suf = (t >= 11 && t <= 13) ? "th" : v % 10 == 1 ? "st" : v % 10 == 2 ? "nd" : v % 10 == 3 ? "rd" : "th";
  return num(v) + suf;
}
std::string upper(std::string s) {
  for (char& c : s) c = char(std::toupper(static_cast<unsigned char>(c)));
  return s;
}
std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

struct Format {
  std::string example;  // the format applied to 1999-03-05 (a Friday)
  std::function<std::string(const Date&)> write;
};

const std::vector<Format>& formats() {
  static const std::vector<Format> f = {
      {"March 5, 1999", [](const Date& d) { return month(d) + " " + num(d.day) + ", " + year(d); }},
      {"Mar 5, 1999", [](const Date& d) { return mon(d) + " " + num(d.day) + ", " + year(d); }},
      {"Mar. 5, 1999", [](const Date& d) { return mon(d) + ". " + num(d.day) + ", " + year(d); }},
      {"5 March 1999", [](const Date& d) { return num(d.day) + " " + month(d) + " " + year(d); }},
      {"05 March 1999", [](const Date& d) { return two(d.day) + " " + month(d) + " " + year(d); }},
      {"5 Mar 1999", [](const Date& d) { return num(d.day) + " " + mon(d) + " " + year(d); }},
      {"5th of March 1999", [](const Date& d) { return ordinal(d.day) + " of " + month(d) + " " + year(d); }},
      {"the 5th of March, 1999",
       [](const Date& d) { return "the " + ordinal(d.day) + " of " + month(d) + ", " + year(d); }},
      {"March 5th, 1999", [](const Date& d) { return month(d) + " " + ordinal(d.day) + ", " + year(d); }},
      {"5th March 1999", [](const Date& d) { return ordinal(d.day) + " " + month(d) + " " + year(d); }},
      {"05/03/99", [](const Date& d) { return two(d.day) + "/" + two(d.month) + "/" + yy(d); }},
      {"05/03/1999", [](const Date& d) { return two(d.day) + "/" + two(d.month) + "/" + year(d); }},
      {"5/3/1999", [](const Date& d) { return num(d.day) + "/" + num(d.month) + "/" + year(d); }},
      {"05.03.1999", [](const Date& d) { return two(d.day) + "." + two(d.month) + "." + year(d); }},
      {"5.3.99", [](const Date& d) { return num(d.day) + "." + num(d.month) + "." + yy(d); }},
      {"05-03-1999", [](const Date& d) { return two(d.day) + "-" + two(d.month) + "-" + year(d); }},
      {"1999-03-05", [](const Date& d) { return iso_date(d); }},
      {"1999/3/5", [](const Date& d) { return year(d) + "/" + num(d.month) + "/" + num(d.day); }},
      {"19990305", [](const Date& d) { return year(d) + two(d.month) + two(d.day); }},
      {"Friday, March 5, 1999",
       [](const Date& d) { return wday(d) + ", " + month(d) + " " + num(d.day) + ", " + year(d); }},
      {"Fri, 5 Mar 1999", [](const Date& d) { return wd(d) + ", " + num(d.day) + " " + mon(d) + " " + year(d); }},
      {"Friday 5th March 1999",
       [](const Date& d) { return wday(d) + " " + ordinal(d.day) + " " + month(d) + " " + year(d); }},
      {"MARCH 5, 1999", [](const Date& d) { return upper(month(d)) + " " + num(d.day) + ", " + year(d); }},
      {"march 5 1999", [](const Date& d) { return lower(month(d)) + " " + num(d.day) + " " + year(d); }},
      {"5-Mar-1999", [](const Date& d) { return num(d.day) + "-" + mon(d) + "-" + year(d); }},
      {"05-MAR-99", [](const Date& d) { return two(d.day) + "-" + upper(mon(d)) + "-" + yy(d); }},
      {"5 March '99", [](const Date& d) { return num(d.day) + " " + month(d) + " '" + yy(d); }},
      {"1999, March 5", [](const Date& d) { return year(d) + ", " + month(d) + " " + num(d.day); }},
      {"5 mar 99", [](const Date& d) { return num(d.day) + " " + lower(mon(d)) + " " + yy(d); }},
      {"Mar 05 1999", [](const Date& d) { return mon(d) + " " + two(d.day) + " " + year(d); }},
  };
  return f;
}

// splitmix64: a fixed hash, so which days are held out never depends on a seed or a library version.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

DatePair make_pair(int64_t day, int64_t format) {
  const Date d = date_from_day_number(day);
  return {format_date(d, format), iso_date(d), format};
}

}  // namespace

int64_t days_in_month(int year, int month) {
  static const int n[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  LOOM_CHECK(month >= 1 && month <= 12, "days_in_month: month must be in 1..12, got ", month);
  return month == 2 && leap(year) ? 29 : n[month - 1];
}

int64_t day_number(const Date& d) {
  LOOM_CHECK(d.month >= 1 && d.month <= 12 && d.day >= 1 && d.day <= days_in_month(d.year, d.month),
             "day_number: ", d.year, "-", d.month, "-", d.day, " is not a calendar date");
  int64_t n = 0;
  for (int y = 1950; y < d.year; ++y) n += leap(y) ? 366 : 365;
  for (int y = d.year; y < 1950; ++y) n -= leap(y) ? 366 : 365;
  for (int m = 1; m < d.month; ++m) n += days_in_month(d.year, m);
  return n + d.day - 1;
}

Date date_from_day_number(int64_t n) {
  Date d{1950, 1, 1};
  while (n < 0) n += leap(--d.year) ? 366 : 365;
  while (n >= (leap(d.year) ? 366 : 365)) n -= leap(d.year++) ? 366 : 365;
  while (n >= days_in_month(d.year, d.month)) n -= days_in_month(d.year, d.month++);
  d.day = int(n) + 1;
  return d;
}

int weekday(const Date& d) {
  // 1950-01-01 was a Sunday (6).
  return int(((day_number(d) + 6) % 7 + 7) % 7);
}

std::string iso_date(const Date& d) {
  char b[16];
  std::snprintf(b, sizeof b, "%04d-%02d-%02d", d.year, d.month, d.day);
  return b;
}

bool is_dates_test_day(int64_t day) { return mix(uint64_t(day) ^ 0xda7e5ull) % 10 == 0; }

int64_t num_date_formats() { return int64_t(formats().size()); }

const std::string& date_format_example(int64_t format) {
  LOOM_CHECK(format >= 0 && format < num_date_formats(), "date_format_example: format ", format,
             " is out of range [0, ", num_date_formats(), ")");
  return formats()[size_t(format)].example;
}

std::string format_date(const Date& d, int64_t format) {
  LOOM_CHECK(format >= 0 && format < num_date_formats(), "format_date: format ", format, " is out of range [0, ",
             num_date_formats(), ")");
  day_number(d);  // validates the date
  return formats()[size_t(format)].write(d);
}

std::vector<DatePair> dates_train_pairs(int64_t n, uint64_t seed) {
  LOOM_CHECK(n >= 0, "dates_train_pairs: n must be >= 0, got ", n);
  Generator g(seed);
  std::vector<DatePair> out;
  out.reserve(size_t(n));
  while (int64_t(out.size()) < n) {
    const int64_t day = int64_t(g.next_u64() % uint64_t(kDatesNumDays));
    const int64_t format = int64_t(g.next_u64() % uint64_t(num_date_formats()));
    if (!is_dates_test_day(day)) out.push_back(make_pair(day, format));
  }
  return out;
}

std::vector<DatePair> dates_test_pairs(int64_t n) {
  LOOM_CHECK(n >= 0 && n <= kDatesTestSize, "dates_test_pairs: n must be in [0, ", kDatesTestSize, "], got ", n);
  Generator g(0x7e57da7e5ull);  // fixed: the held-out set is the same for every run
  std::vector<DatePair> out;
  out.reserve(size_t(n));
  while (int64_t(out.size()) < n) {
    const int64_t day = int64_t(g.next_u64() % uint64_t(kDatesNumDays));
    const int64_t format = int64_t(g.next_u64() % uint64_t(num_date_formats()));
    if (is_dates_test_day(day)) out.push_back(make_pair(day, format));
  }
  return out;
}

DatesVocab::DatesVocab() {
  for (char c = ' '; c <= '~'; ++c) chars_.push_back(c);
  for (int64_t& id : ids_) id = WordVocab::kUnk;
  for (size_t i = 0; i < chars_.size(); ++i) ids_[size_t(chars_[i])] = int64_t(i) + 4;
}

std::vector<int64_t> DatesVocab::encode(std::string_view text, const EncodeOptions& o) const {
  std::vector<int64_t> ids;
  ids.reserve(text.size() + 2);
  if (o.add_bos) ids.push_back(WordVocab::kBos);
  for (char c : text) ids.push_back(static_cast<unsigned char>(c) < 128 ? ids_[size_t(c)] : WordVocab::kUnk);
  if (o.add_eos) ids.push_back(WordVocab::kEos);
  return ids;
}

std::string DatesVocab::decode(const std::vector<int64_t>& ids) const {
  std::string s;
  for (int64_t id : ids) {
    if (id == WordVocab::kEos) break;
    if (id == WordVocab::kPad || id == WordVocab::kBos) continue;
    s.push_back(id >= 4 && id < size() ? chars_[size_t(id - 4)] : '?');
  }
  return s;
}

const DatesVocab& dates_vocab() {
  static const DatesVocab v;
  return v;
}

}  // namespace loom::text
