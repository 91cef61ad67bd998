// Typed reads of a JSON object's fields (config.json, metadata) whose errors name the file, the field, the type
// or range expected and what was found, instead of nlohmann's "[json.exception.type_error.302]".
//   io::JsonFields f(j, "runs/gpt/config.json");
//   int64_t n = f.integer("n_layer", 12, 1, limits::kMaxLayers);   // the default when absent or null
//   double p = f.number("dropout", 0.0, 0.0, 0.99);
//   std::string a = f.string("activation_function", "gelu_new");
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace loom::io {

// Parses `text` as JSON; a syntax error throws naming `where` and the byte offset. Nesting deeper than
// kMaxJsonDepth is refused before parsing (a million '[' would otherwise overflow the stack).
constexpr int kMaxJsonDepth = 256;
nlohmann::json parse_json(const std::string& text, const std::string& where);
// The depth check alone, for parsers that call nlohmann directly (with a callback, say).
void check_json_depth(std::string_view text, const std::string& where, int max_depth = kMaxJsonDepth);
// parse_json of a file's contents (read_file's checks: exists, is a regular file, sane size).
nlohmann::json read_json_file(const std::string& path);

class JsonFields {
 public:
  // Throws unless j is an object.
  JsonFields(const nlohmann::json& j, std::string where);

  bool has(const std::string& key) const;  // present and not null
  // An integer field (a float with an integral value, such as 12.0, is refused: configs are written with ints).
  int64_t integer(const std::string& key, int64_t def, int64_t lo, int64_t hi) const;
  // The first of `keys` present (aliases such as n_positions / n_ctx), else def.
  int64_t integer(std::initializer_list<const char*> keys, int64_t def, int64_t lo, int64_t hi) const;
  int64_t required_integer(const std::string& key, int64_t lo, int64_t hi) const;
  double number(const std::string& key, double def, double lo, double hi) const;
  std::string string(const std::string& key, const std::string& def) const;
  std::string required_string(const std::string& key) const;
  bool boolean(const std::string& key, bool def) const;
  const std::string& where() const { return where_; }

 private:
  const nlohmann::json& at(const std::string& key) const;
  const nlohmann::json& j_;
  std::string where_;
};

// "an integer", "a string", ... for messages; and a short rendering of a value (long ones cut).
std::string json_type_name(const nlohmann::json& v);
std::string json_excerpt(const nlohmann::json& v);

}  // namespace loom::io
