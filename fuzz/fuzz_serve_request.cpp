// The request bodies of `loom serve` (POST /v1/completions, /v1/chat/completions): serve::parse_completion_request,
// what the server calls on every body before anything reaches the model, then the checks the engine runs on
// the options it produced, and the response JSON built from them. No sockets: the HTTP framing is cpp-httplib's.
// Input: one option byte (bit 0: chat), then the body.
//
// The accepted answers to a bad body are an ApiError with status 400 (the server's invalid_request_error) and
// a loom::Error; anything else is a finding: another exception (the server would answer 500), an ApiError
// that is not a 400, options the parser accepted but the engine refuses, or response JSON that does not parse.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz_common.h"
#include "loom/runtime/session.h"
#include "loom/serve/openai_protocol.h"

namespace {

[[noreturn]] void finding(const std::string& what) {
  std::fprintf(stderr, "fuzz_serve_request: %s\n", what.c_str());
  std::abort();
}

void check_json(const std::string& text, const char* what) {
  if (!nlohmann::json::accept(text)) finding(std::string(what) + " is not valid JSON: " + text.substr(0, 200));
}

void check(const std::string& body, bool chat) {
  using namespace loom;
  serve::CompletionRequest r;
  try {
    r = serve::parse_completion_request(body, chat);
  } catch (const serve::ApiError& e) {
    if (e.status != 400) finding("status " + std::to_string(e.status) + " for a bad body: " + e.what());
    if (std::string(e.what()).empty()) finding("an ApiError without a message");
    check_json(serve::dump(serve::error_body(e.what(), e.type, e.param)), "the error body");
    return;
  }
  if (r.prompts.empty()) finding("a request without prompts was accepted");
  if (r.n < 1) finding("n < 1 was accepted");
  if (chat && r.prompts.size() != 1) finding("a chat request with " + std::to_string(r.prompts.size()) + " prompts");
  // What the parser lets through must be valid for the engine (else the client gets the engine's message).
  try {
    runtime::check_generation_options(r.options);
  } catch (const Error& e) {
    finding(std::string("accepted options the engine refuses: ") + e.what());
  }
  // The responses the server would send for it, with made-up results (one per prompt and choice).
  std::vector<runtime::GenerationResult> results;
  for (size_t i = 0; i < r.prompts.size() * size_t(r.n); ++i)
    results.push_back({.text = r.prompts[i / size_t(r.n)].substr(0, 64), .tokens = {1, 2, 3}, .prompt_tokens = 4,
                       .finish_reason = i % 2 ? "stop" : "length"});
  check_json(serve::dump(serve::completion_response(r, r.model, results, "cmpl-1", 0)), "the response");
  for (bool first : {true, false}) {
    const std::string chunk = serve::stream_chunk(r, r.model, "cmpl-1", 0, r.prompts[0].substr(0, 16), "", first);
    if (!chunk.starts_with("data: ") || !chunk.ends_with("\n\n")) finding("a stream chunk is not one SSE event");
    check_json(chunk.substr(6, chunk.size() - 8), "a stream chunk");
  }
  const std::string usage = serve::stream_usage_chunk(r, r.model, "cmpl-1", 0, 4, 3);
  check_json(usage.substr(6, usage.size() - 8), "the usage chunk");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool chat = (data[0] & 1) != 0;
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  return fuzz::guarded([&] { check(body, chat); });
}
