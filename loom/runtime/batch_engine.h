// Continuous batching: up to `slots` requests decode together, one batched forward per step, each in its own
// model slot (its own positions and KV cache rows). Requests join and leave between steps; a prompt is
// prefilled in chunks (one chunk per step) so a long prompt does not stall the streams already decoding.
// A worker thread runs the model; submit() is thread-safe and returns at once.
//   runtime::BatchEngine engine(run, {.slots = 8});
//   auto h = engine.submit({.prompt = ids, .options = {.max_new_tokens = 50},
//                           .on_text = [](const std::string& piece) { std::cout << piece; return true; }});
//   if (!h) { /* queue full: 429 */ }
//   runtime::GenerationResult r = h->wait();      // or h->cancel() when the client goes away
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "loom/runtime/session.h"

namespace loom::runtime {

struct EngineOptions {
  int64_t slots = 4;           // sequences decoding together (--parallel)
  int64_t max_queue = 64;      // requests waiting for a slot; more are refused (429)
  int64_t prefill_chunk = 64;  // prompt tokens fed per step
  int64_t max_len = 0;         // tokens per slot (0: the model's context; LSTM: unbounded)
};

// Counters for /metrics, read while the engine runs.
struct EngineStats {
  int64_t queued = 0, busy = 0;
  int64_t requests_finished = 0, requests_cancelled = 0, requests_rejected = 0;
  int64_t prompt_tokens = 0, generated_tokens = 0;
  int64_t steps = 0;  // batched forwards
};

class BatchEngine {
 public:
  struct Request {
    std::vector<int64_t> prompt;
    GenerationOptions options = {};
    TextCallback on_text = {};  // runs on the engine's thread: keep it short (queue the piece, return)
  };
  class Handle {
   public:
    void cancel() { cancelled_ = true; }  // the slot is freed before the next step
    GenerationResult wait();              // blocks until the request finished (or was cancelled)
    bool wait_for(double seconds);        // true once done; false after `seconds` without finishing
    bool done() const;
    // When the request first produced a token (for time-to-first-token), from submit().
    double first_token_seconds() const { return first_token_s_; }

   private:
    friend class BatchEngine;
    std::atomic<bool> cancelled_{false};
    mutable std::mutex m_;
    std::condition_variable cv_;
    bool done_ = false;
    GenerationResult result_;
    std::atomic<double> first_token_s_{-1};  // written by the engine thread, read by the caller's
  };

  BatchEngine(const Run& run, EngineOptions o = {});
  ~BatchEngine();  // cancels what is still running
  BatchEngine(const BatchEngine&) = delete;
  BatchEngine& operator=(const BatchEngine&) = delete;

  // nullptr when the queue is full. Throws loom::Error for a bad request (empty prompt, bad options).
  std::shared_ptr<Handle> submit(Request r);
  // Stops accepting; with drain, lets running and queued requests finish, else cancels them. Returns when
  // the worker has stopped.
  void shutdown(bool drain);
  void stop_accepting();  // submit() returns nullptr from now on; running requests go on
  EngineStats stats() const;
  const EngineOptions& options() const { return o_; }

 private:
  struct Active;
  void loop();
  void step(std::vector<Active>& active);
  void finish(Active& a);

  const Run& run_;
  EngineOptions o_;
  std::unique_ptr<models::SlotDecodeState> state_;
  mutable std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::pair<Request, std::shared_ptr<Handle>>> queue_;
  bool accepting_ = true, stop_ = false, drain_ = true;
  EngineStats stats_;
  std::thread worker_;
};

}  // namespace loom::runtime
