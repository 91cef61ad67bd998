#include "loom/io/json_fields.h"

#include <cmath>

#include "loom/core/error.h"
#include "loom/data/file_util.h"

namespace loom::io {

std::string json_type_name(const nlohmann::json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number_integer()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

std::string json_excerpt(const nlohmann::json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

void check_json_depth(std::string_view text, const std::string& where, int max_depth) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      LOOM_CHECK(++depth <= max_depth, where, ": JSON nested deeper than ", max_depth, " levels (at byte ", i, ")");
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

nlohmann::json parse_json(const std::string& text, const std::string& where) {
  check_json_depth(text, where);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    LOOM_FAIL(where, ": not valid JSON (syntax error at byte ", e.byte, ")");
  }
}

nlohmann::json read_json_file(const std::string& path) { return parse_json(data::read_file(path), path); }

JsonFields::JsonFields(const nlohmann::json& j, std::string where) : j_(j), where_(std::move(where)) {
  LOOM_CHECK(j_.is_object(), where_, ": expected a JSON object, found ", json_type_name(j_), " ", json_excerpt(j_));
}

bool JsonFields::has(const std::string& key) const { return j_.contains(key) && !j_[key].is_null(); }

const nlohmann::json& JsonFields::at(const std::string& key) const { return j_[key]; }

int64_t JsonFields::integer(const std::string& key, int64_t def, int64_t lo, int64_t hi) const {
  if (!has(key)) return def;
  const nlohmann::json& v = at(key);
  LOOM_CHECK(v.is_number_integer(), where_, ": field '", key, "' must be an integer in [", lo, ", ", hi, "], found ",
             json_type_name(v), " ", json_excerpt(v));
  // Unsigned values above INT64_MAX would wrap: compare as unsigned first.
  LOOM_CHECK(!v.is_number_unsigned() || v.get<uint64_t>() <= uint64_t(hi), where_, ": field '", key,
             "' must be in [", lo, ", ", hi, "], found ", json_excerpt(v));
  const int64_t x = v.get<int64_t>();
  LOOM_CHECK(x >= lo && x <= hi, where_, ": field '", key, "' must be in [", lo, ", ", hi, "], found ", x);
  return x;
}

int64_t JsonFields::integer(std::initializer_list<const char*> keys, int64_t def, int64_t lo, int64_t hi) const {
  for (const char* k : keys)
    if (has(k)) return integer(std::string(k), def, lo, hi);
  return def;
}

int64_t JsonFields::required_integer(const std::string& key, int64_t lo, int64_t hi) const {
  LOOM_CHECK(has(key), where_, ": field '", key, "' is missing (expected an integer in [", lo, ", ", hi, "])");
  return integer(key, 0, lo, hi);
}

double JsonFields::number(const std::string& key, double def, double lo, double hi) const {
  if (!has(key)) return def;
  const nlohmann::json& v = at(key);
  LOOM_CHECK(v.is_number(), where_, ": field '", key, "' must be a number in [", lo, ", ", hi, "], found ",
             json_type_name(v), " ", json_excerpt(v));
  const double x = v.get<double>();
  LOOM_CHECK(std::isfinite(x) && x >= lo && x <= hi, where_, ": field '", key, "' must be in [", lo, ", ", hi,
             "], found ", x);
  return x;
}

std::string JsonFields::string(const std::string& key, const std::string& def) const {
  if (!has(key)) return def;
  const nlohmann::json& v = at(key);
  LOOM_CHECK(v.is_string(), where_, ": field '", key, "' must be a string, found ", json_type_name(v), " ",
             json_excerpt(v));
  return v.get<std::string>();
}

std::string JsonFields::required_string(const std::string& key) const {
  LOOM_CHECK(has(key), where_, ": field '", key, "' is missing (expected a string)");
  return string(key, "");
}

bool JsonFields::boolean(const std::string& key, bool def) const {
  if (!has(key)) return def;
  const nlohmann::json& v = at(key);
  LOOM_CHECK(v.is_boolean(), where_, ": field '", key, "' must be true or false, found ", json_type_name(v), " ",
             json_excerpt(v));
  return v.get<bool>();
}

}  // namespace loom::io
