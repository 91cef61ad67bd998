#include "loom/serve/openai_protocol.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "loom/core/error.h"
#include "loom/io/json_fields.h"

namespace loom::serve {

using json = nlohmann::json;

nlohmann::json error_body(const std::string& message, const std::string& type, const std::string& param) {
  return {{"error", {{"message", message}, {"type", type}, {"param", param.empty() ? json(nullptr) : json(param)}, {"code", nullptr}}}};
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

namespace {

[[noreturn]] void bad(const std::string& param, const std::string& what) { throw ApiError(400, "'" + param + "' " + what, param); }

const char* type_name(const json& v) { return v.type_name(); }

// Reads an optional field of the given kind; null means absent (OpenAI's SDKs send nulls).
bool has(const json& j, const char* k) { return j.contains(k) && !j[k].is_null(); }

double get_number(const json& j, const char* k, double def, double lo, double hi) {
  if (!has(j, k)) return def;
  if (!j[k].is_number()) bad(k, std::string("must be a number, got ") + type_name(j[k]));
  const double v = j[k].get<double>();
  if (!std::isfinite(v) || v < lo || v > hi)
    bad(k, "must be between " + json(lo).dump() + " and " + json(hi).dump() + ", got " + j[k].dump());
  return v;
}

int64_t get_int(const json& j, const char* k, int64_t def, int64_t lo, int64_t hi) {
  if (!has(j, k)) return def;
  if (!j[k].is_number_integer()) bad(k, std::string("must be an integer, got ") + j[k].dump());
  const int64_t v = j[k].get<int64_t>();
  if (v < lo || v > hi) bad(k, "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " + j[k].dump());
  return v;
}

bool get_bool(const json& j, const char* k, bool def) {
  if (!has(j, k)) return def;
  if (!j[k].is_boolean()) bad(k, std::string("must be a boolean, got ") + type_name(j[k]));
  return j[k].get<bool>();
}

std::string message_content(const json& m, size_t i) {
  const std::string where = "messages[" + std::to_string(i) + "].content";
  if (!m.contains("content") || m["content"].is_null()) return "";
  const json& c = m["content"];
  if (c.is_string()) return c.get<std::string>();
  if (c.is_array()) {  // content parts: only text parts make sense for a text model
    std::string s;
    for (const auto& part : c) {
      // (not part.value("type", ""): a non-string "type" would throw json's type_error, a 500 instead of a 400)
      if (!part.is_object() || !part.contains("type") || part["type"] != "text" || !part.contains("text") ||
          !part["text"].is_string())
        bad(where, "parts must be {\"type\": \"text\", \"text\": ...} (this model reads text only)");
      s += part["text"].get<std::string>();
    }
    return s;
  }
  bad(where, std::string("must be a string or an array of text parts, got ") + type_name(c));
}

}  // namespace

std::string chat_prompt(const std::vector<ChatMessage>& messages) {
  std::string p;
  for (const auto& m : messages) {
    std::string role = m.role;
    if (!role.empty()) role[0] = char(std::toupper(static_cast<unsigned char>(role[0])));
    p += role + ": " + m.content + "\n";
  }
  return p + "Assistant:";
}

CompletionRequest parse_completion_request(const std::string& body, bool chat) {
  try {
    io::check_json_depth(body, "the request body");  // nesting bounded before parsing, as for every JSON file
  } catch (const Error& e) {
    throw ApiError(400, e.what());
  }
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {
    throw ApiError(400, std::string("the request body is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw ApiError(400, std::string("the request body must be a JSON object, got ") + type_name(j));
  CompletionRequest r;
  r.chat = chat;
  if (has(j, "model")) {
    if (!j["model"].is_string()) bad("model", std::string("must be a string, got ") + type_name(j["model"]));
    r.model = j["model"].get<std::string>();
  }
  if (chat) {
    if (!has(j, "messages")) bad("messages", "is required");
    if (!j["messages"].is_array() || j["messages"].empty()) bad("messages", "must be a non-empty array of {role, content}");
    for (size_t i = 0; i < j["messages"].size(); ++i) {
      const json& m = j["messages"][i];
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
        bad("messages[" + std::to_string(i) + "]", "must be an object with a string 'role'");
      const std::string role = m["role"].get<std::string>();
      if (role != "system" && role != "user" && role != "assistant" && role != "developer")
        bad("messages[" + std::to_string(i) + "].role", "must be system, developer, user or assistant, got '" + role + "'");
      r.messages.push_back({role == "developer" ? "system" : role, message_content(m, i)});
    }
    r.prompts.push_back(chat_prompt(r.messages));
    r.options.stop.push_back(kChatStop);
  } else {
    if (!has(j, "prompt")) bad("prompt", "is required");
    const json& p = j["prompt"];
    if (p.is_string()) {
      r.prompts.push_back(p.get<std::string>());
    } else if (p.is_array() && !p.empty() && std::all_of(p.begin(), p.end(), [](const json& x) { return x.is_string(); })) {
      if (p.size() > 16) bad("prompt", "may hold at most 16 prompts");
      for (const auto& x : p) r.prompts.push_back(x.get<std::string>());
    } else {
      bad("prompt", "must be a string or a non-empty array of strings (token-id prompts are not supported)");
    }
  }
  const char* max_key = chat && has(j, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  r.options.max_new_tokens = get_int(j, max_key, chat ? 256 : 16, 0, 1 << 20);
  r.options.sampling.temperature = get_number(j, "temperature", 1.0, 0.0, 2.0);
  r.options.sampling.top_p = get_number(j, "top_p", 1.0, 0.0, 1.0);
  if (r.options.sampling.top_p == 0) bad("top_p", "must be > 0");
  r.options.sampling.top_k = get_int(j, "top_k", 0, 0, 1 << 20);  // an extension (llama.cpp and vLLM take it too)
  r.options.sampling.repetition_penalty = get_number(j, "repetition_penalty", 1.0, 1e-3, 100.0);
  r.options.seed = uint64_t(get_int(j, "seed", 0, INT64_MIN, INT64_MAX));
  r.n = get_int(j, "n", 1, 1, 8);
  r.stream = get_bool(j, "stream", false);
  if (has(j, "stream_options")) {
    if (!j["stream_options"].is_object()) bad("stream_options", "must be an object");
    r.include_usage = get_bool(j["stream_options"], "include_usage", false);
  }
  if (has(j, "stop")) {
    const json& s = j["stop"];
    if (s.is_string()) r.options.stop.push_back(s.get<std::string>());
    else if (s.is_array() && s.size() <= 4 && std::all_of(s.begin(), s.end(), [](const json& x) { return x.is_string(); }))
      for (const auto& x : s) r.options.stop.push_back(x.get<std::string>());
    else bad("stop", "must be a string or an array of at most 4 strings");
  }
  // logprobs would need the distribution per token kept and returned; not offered yet, so say so.
  if (has(j, "logprobs") && !(j["logprobs"].is_boolean() && !j["logprobs"].get<bool>()))
    bad("logprobs", "is not supported by this server");
  if (has(j, "echo") && get_bool(j, "echo", false)) bad("echo", "is not supported by this server");
  if (has(j, "tools") || has(j, "functions")) bad(has(j, "tools") ? "tools" : "functions", "are not supported by this server");
  if (r.stream && (r.n > 1 || r.prompts.size() > 1)) bad("n", "streaming returns one choice; use n = 1 and one prompt");
  return r;
}

std::string finish_reason(const runtime::GenerationResult& r) { return r.finish_reason == "stop" ? "stop" : "length"; }

json completion_response(const CompletionRequest& r, const std::string& model_id,
                         const std::vector<runtime::GenerationResult>& results, const std::string& id, int64_t created) {
  json choices = json::array();
  int64_t prompt_tokens = 0, completion_tokens = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    const auto& g = results[i];
    if (i % size_t(r.n) == 0) prompt_tokens += g.prompt_tokens;  // each prompt counted once
    completion_tokens += int64_t(g.tokens.size());
    json c = {{"index", i}, {"finish_reason", finish_reason(g)}};
    if (r.chat) c["message"] = {{"role", "assistant"}, {"content", g.text}};
    else c["text"] = g.text, c["logprobs"] = nullptr;
    choices.push_back(c);
  }
  return {{"id", id},
          {"object", r.chat ? "chat.completion" : "text_completion"},
          {"created", created},
          {"model", model_id},
          {"choices", choices},
          {"usage", {{"prompt_tokens", prompt_tokens}, {"completion_tokens", completion_tokens},
                     {"total_tokens", prompt_tokens + completion_tokens}}}};
}

std::string stream_chunk(const CompletionRequest& r, const std::string& model_id, const std::string& id, int64_t created,
                         const std::string& text, const std::string& finish_reason, bool first) {
  json c = {{"index", 0}, {"finish_reason", finish_reason.empty() ? json(nullptr) : json(finish_reason)}};
  if (r.chat) {
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    if (!text.empty() || (first && finish_reason.empty())) delta["content"] = text;
    c["delta"] = delta;
  } else {
    c["text"] = text, c["logprobs"] = nullptr;
  }
  json j = {{"id", id}, {"object", r.chat ? "chat.completion.chunk" : "text_completion"}, {"created", created},
            {"model", model_id}, {"choices", json::array({c})}};
  return "data: " + dump(j) + "\n\n";
}

std::string stream_usage_chunk(const CompletionRequest& r, const std::string& model_id, const std::string& id,
                               int64_t created, int64_t prompt_tokens, int64_t completion_tokens) {
  json j = {{"id", id}, {"object", r.chat ? "chat.completion.chunk" : "text_completion"}, {"created", created},
            {"model", model_id}, {"choices", json::array()},
            {"usage", {{"prompt_tokens", prompt_tokens}, {"completion_tokens", completion_tokens},
                       {"total_tokens", prompt_tokens + completion_tokens}}}};
  return "data: " + dump(j) + "\n\n";
}

}  // namespace loom::serve
