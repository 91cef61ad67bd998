// The HTTP server behind `loom serve`: OpenAI-compatible endpoints over a BatchEngine (continuous batching)
// for language models, /v1/classify for image models, /health, /metrics. cpp-httplib (Debian's
// libcpp-httplib-dev) does the HTTP; this file the routing, auth, limits and streaming.
//   serve::Server s({.checkpoint = "runs/gpt", .port = 0, .parallel = 8});
//   int port = s.bind();     // listening now: /health answers 503 until load() is done
//   s.load();                // loads the run folder
//   s.listen();              // serves until stop() (another thread, or SIGTERM in the CLI)
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace loom::serve {

struct ServerOptions {
  std::string checkpoint;            // a run folder (anything runtime::load_run reads)
  std::string host = "127.0.0.1";
  int port = 8080;                   // 0: any free port (bind() says which)
  int64_t parallel = 4;              // sequences decoding together
  int64_t max_queue = 16;            // waiting requests; more get 429
  std::string api_key = {};          // when set, /v1/* need "Authorization: Bearer KEY"
  double timeout = 600;              // seconds a request may run before it is cut short
  int64_t prefill_chunk = 64;        // prompt tokens per step
  int64_t max_len = 0;               // tokens per slot (0: the model's context)
  size_t max_body = 1 << 20;         // bytes; classify requests may be 16x this
  std::string model_name = {};       // the id in /v1/models (default: the folder's name)
  std::function<void(const std::string&)> log = {};  // one line per event (start, stop); none when empty
};

class Server {
 public:
  explicit Server(ServerOptions o);
  ~Server();
  int bind();    // binds host:port and starts answering (health 503); returns the port
  void load();   // loads the model; health turns 200. Throws loom::Error for a bad run folder
  void listen(); // blocks until stop()
  // Stops accepting generation requests (503), lets running ones finish for up to `grace_s` seconds, then
  // cancels the rest and stops the HTTP server; listen() returns. Safe from any thread, more than once.
  void stop(double grace_s = 10);
  bool ready() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace loom::serve
