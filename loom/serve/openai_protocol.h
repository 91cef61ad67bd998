// The OpenAI HTTP API's request and response bodies, without any HTTP: parsing and checking a completion /
// chat-completion request into generation options, the chat template, and the JSON of responses, stream
// chunks and errors. Kept apart from the server so every rule is testable on plain JSON.
//   serve::CompletionRequest r = serve::parse_completion_request(body, /*chat=*/true);   // throws ApiError
//   nlohmann::json out = serve::completion_response(r, "gpt", results, "chatcmpl-1", time(nullptr));
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "loom/runtime/session.h"

namespace loom::serve {

// An error answered with OpenAI's error object: {"error": {"message", "type", "param", "code"}}.
struct ApiError : std::runtime_error {
  ApiError(int status_, std::string message, std::string param_ = "", std::string type_ = "invalid_request_error")
      : std::runtime_error(message), status(status_), param(std::move(param_)), type(std::move(type_)) {}
  int status;
  std::string param, type;
};
nlohmann::json error_body(const std::string& message, const std::string& type, const std::string& param = "");

struct ChatMessage {
  std::string role, content;
};

struct CompletionRequest {
  bool chat = false;
  std::string model;                  // as the client named it (echoed back)
  std::vector<std::string> prompts;   // completions: one per prompt; chat: the templated conversation
  std::vector<ChatMessage> messages;  // chat only
  runtime::GenerationOptions options;  // max_tokens, temperature, top_p, top_k, stop, seed
  int64_t n = 1;                      // choices per prompt (choice i samples with seed + i)
  bool stream = false;
  bool include_usage = false;         // stream_options.include_usage
};

// Throws ApiError(400) naming the field for malformed JSON, a field of the wrong type, an out-of-range value
// or an unsupported option (logprobs, a prompt given as token arrays of the wrong shape, ...). Fields it does
// not know are ignored, as OpenAI's SDKs send new ones over time.
CompletionRequest parse_completion_request(const std::string& body, bool chat);

// The chat template (documented in docs/serving.md): one line per message "<Role>: <content>", then
// "Assistant:" for the model to continue; generation also stops at "\nUser:".
std::string chat_prompt(const std::vector<ChatMessage>& messages);
inline const char* kChatStop = "\nUser:";

// Non-streamed response: results[i * n + j] is choice j of prompt i.
nlohmann::json completion_response(const CompletionRequest& r, const std::string& model_id,
                                   const std::vector<runtime::GenerationResult>& results, const std::string& id,
                                   int64_t created);
// One server-sent-events chunk for a stream ("data: {...}\n\n"); finish_reason "" while running.
std::string stream_chunk(const CompletionRequest& r, const std::string& model_id, const std::string& id, int64_t created,
                         const std::string& text, const std::string& finish_reason, bool first);
std::string stream_usage_chunk(const CompletionRequest& r, const std::string& model_id, const std::string& id,
                               int64_t created, int64_t prompt_tokens, int64_t completion_tokens);
// OpenAI's finish_reason for a result: "stop" or "length" (a cancelled or timed-out request says "length").
std::string finish_reason(const runtime::GenerationResult& r);
// JSON text that stays valid when generated text holds broken UTF-8 (replaced by U+FFFD).
std::string dump(const nlohmann::json& j);

}  // namespace loom::serve
