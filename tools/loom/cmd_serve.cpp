// loom serve: an OpenAI-compatible HTTP server for a run folder (language models: completions, chat,
// streaming, continuous batching; image classifiers: /v1/classify). The server lives in loom/serve/; this
// file reads the options and handles SIGINT/SIGTERM (stop accepting, let running requests finish for up to
// --grace seconds, then cancel them; exit 0).
#include <signal.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <thread>

#include "args.h"
#include "commands.h"
#include "loom/backend/backend.h"
#include "loom/serve/server.h"

namespace loom::cli {

namespace {
std::atomic<int> g_signal{0};
void on_signal(int sig) { g_signal = sig; }
}  // namespace

int cmd_serve(const Argv& argv) {
  serve::ServerOptions o;
  int64_t port = 8080, threads = 0, max_body_kb = 1024;
  double grace = 10;
  Args a("loom serve",
         "Serve a run folder over HTTP with OpenAI's API: POST /v1/completions, /v1/chat/completions (stream with\n"
         "server-sent events), GET /v1/models, /health, /metrics; image classifiers answer POST /v1/classify.\n"
         "Up to --parallel requests decode together in one batched forward per step (continuous batching).\n"
         "See docs/serving.md.");
  a.option("--checkpoint", &o.checkpoint, "DIR", "the run folder (loom train --out, or a Hugging Face GPT-2 folder) (required)");
  a.option("--host", &o.host, "ADDR", "address to listen on (default 127.0.0.1: this machine only)");
  a.option("--port", &port, "N", "TCP port (default 8080; 0: any free port, printed at start)", {.min = 0, .max = 65535});
  a.option("--parallel", &o.parallel, "N", "sequences decoding together (default 4)", {.min = 1, .max = 256});
  a.option("--max-queue", &o.max_queue, "Q", "requests waiting for a slot before new ones get 429 (default 16)", {.min = 0});
  a.option("--api-key", &o.api_key, "KEY", "require 'Authorization: Bearer KEY' on /v1/* (default: none)");
  a.option("--timeout", &o.timeout, "S", "seconds a request may run before it is cut short (default 600)",
           {.min = 0, .exclusive_min = true});
  a.option("--prefill-chunk", &o.prefill_chunk, "N", "prompt tokens read per step (default 64)", {.min = 1});
  a.option("--max-len", &o.max_len, "N", "tokens per slot (default: the model's context)", {.min = 0});
  a.option("--max-body", &max_body_kb, "KIB", "largest request body in KiB (default 1024; images 16x)", {.min = 1});
  a.option("--name", &o.model_name, "ID", "the model id clients use (default: the folder's name)");
  a.option("--grace", &grace, "S", "on SIGTERM, seconds to let running requests finish (default 10)", {.min = 0});
  a.option("--threads", &threads, "T", "compute threads (default: all cores)", {.min = 1, .max = 1024});
  a.parse(argv);
  if (o.checkpoint.empty()) throw UsageError("--checkpoint is required");
  if (threads > 0) set_num_threads(int(threads));
  o.port = int(port);
  o.max_body = size_t(max_body_kb) * 1024;
  o.log = [](const std::string& s) { std::cerr << "loom serve: " << s << std::endl; };

  // Signals are only noted here; a watcher thread does the stopping (nothing async-signal-unsafe in a handler).
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  serve::Server server(o);
  const int bound = server.bind();
  std::cerr << "loom serve: listening on http://" << o.host << ":" << bound << " (loading " << o.checkpoint << ")"
            << std::endl;
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    while (!done && g_signal == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (g_signal != 0) {
      std::cerr << "loom serve: signal " << g_signal << ", finishing running requests (up to " << grace << " s)"
                << std::endl;
      server.stop(grace);
    }
  });
  try {
    server.load();
  } catch (...) {
    done = true;
    server.stop(0);
    watcher.join();
    throw;
  }
  server.listen();
  done = true;
  watcher.join();
  return 0;
}

}  // namespace loom::cli
