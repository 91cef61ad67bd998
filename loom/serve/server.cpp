// Routing, auth, limits and streaming for `loom serve`. Every generation request goes through the
// BatchEngine; a handler only parses, submits, and writes what the engine's callbacks hand it. Responses
// are written by a chunked content provider so a write failure (the client went away) cancels the request:
// streams notice at the next token; non-streamed requests write one space (valid leading JSON whitespace)
// per step while they wait, for the same reason.
#include "loom/serve/server.h"

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <ctime>
#include <deque>
#include <numeric>
#include <thread>

#include "loom/autograd/grad_mode.h"
#include "loom/core/error.h"
#include "loom/data/image_folder.h"
#include "loom/ops/ops.h"
#include "loom/runtime/batch_engine.h"
#include "loom/runtime/run.h"
#include "loom/serve/metrics.h"
#include "loom/serve/openai_protocol.h"

namespace loom::serve {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void send_error(httplib::Response& res, int status, const std::string& message, const std::string& type,
                const std::string& param = "") {
  res.status = status;
  res.set_content(dump(error_body(message, type, param)), "application/json");
}

std::string base64_decode(const std::string& in, const std::string& field) {
  static const std::string chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string s = in;
  if (const size_t comma = s.find("base64,"); s.starts_with("data:") && comma != std::string::npos) s = s.substr(comma + 7);
  std::string out;
  uint32_t buf = 0;
  int bits = 0;
  for (char c : s) {
    if (c == '=' || c == '\n' || c == '\r' || c == ' ') continue;
    const size_t v = chars.find(c == '-' ? '+' : c == '_' ? '/' : c);
    if (v == std::string::npos) throw ApiError(400, "'" + field + "' is not valid base64", field);
    buf = (buf << 6) | uint32_t(v), bits += 6;
    if (bits >= 8) out += char((buf >> (bits - 8)) & 0xFF), bits -= 8;
  }
  return out;
}

// What an engine callback hands a waiting HTTP handler.
struct Pipe {
  std::mutex m;
  std::condition_variable cv;
  std::deque<std::string> pieces;
  int64_t steps = 0;  // pieces seen, to pace the non-stream heartbeat
  void push(const std::string& s) {
    std::lock_guard l(m);
    pieces.push_back(s);
    ++steps;
    cv.notify_all();
  }
};

}  // namespace

struct Server::Impl {
  ServerOptions o;
  httplib::Server http;
  std::thread listener;
  std::atomic<bool> ready{false}, stopping{false}, listen_returned{false};
  std::mutex stop_m;
  runtime::Run run;
  std::unique_ptr<runtime::BatchEngine> engine;
  std::mutex classify_m;
  Metrics metrics;
  std::atomic<int64_t> next_id{1};

  void log(const std::string& s) const {
    if (o.log) o.log(s);
  }
  std::string model_id() const { return o.model_name.empty() ? run.id : o.model_name; }

  // Common front: readiness, auth, body size; then the handler; errors become OpenAI error objects.
  httplib::Server::Handler wrap(const std::string& endpoint, std::function<void(const httplib::Request&, httplib::Response&)> fn,
                                bool needs_auth, size_t max_body) {
    return [this, endpoint, fn, needs_auth, max_body](const httplib::Request& req, httplib::Response& res) {
      const auto t0 = Clock::now();
      try {
        if (needs_auth && !o.api_key.empty() && req.get_header_value("Authorization") != "Bearer " + o.api_key)
          throw ApiError(401, "missing or wrong API key (send 'Authorization: Bearer KEY')", "", "invalid_request_error");
        if (!ready) throw ApiError(503, "the model is still loading", "", "server_error");
        if (req.body.size() > max_body)
          throw ApiError(400, "the request body has " + std::to_string(req.body.size()) + " bytes, more than the " +
                                  std::to_string(max_body) + " this endpoint accepts");
        fn(req, res);
      } catch (const ApiError& e) {
        send_error(res, e.status, e.what(), e.type, e.param);
      } catch (const Error& e) {  // the library refused the input (a character outside the vocabulary, a bad image)
        send_error(res, 400, e.what(), "invalid_request_error");
      } catch (const std::exception& e) {
        send_error(res, 500, std::string("internal error: ") + e.what(), "server_error");
      }
      metrics.count_request(endpoint, res.status);
      // Streamed answers (a content provider) record their latency when the last byte is written.
      if (!res.is_chunked_content_provider_) metrics.observe_latency(since(t0));
    };
  }

  void completions(const httplib::Request& req, httplib::Response& res, bool chat) {
    const auto t0 = Clock::now();
    if (run.kind != runtime::Run::Kind::language_model)
      throw ApiError(400, "'" + model_id() + "' is an image classifier: use POST /v1/classify", "model");
    if (stopping) throw ApiError(503, "the server is shutting down", "", "server_error");
    auto r = std::make_shared<CompletionRequest>(parse_completion_request(req.body, chat));
    if (!r->model.empty() && r->model != model_id())
      throw ApiError(404, "the model '" + r->model + "' does not exist; this server has '" + model_id() + "'", "model",
                     "model_not_found");
    std::vector<std::vector<int64_t>> ids;
    for (const auto& p : r->prompts) {
      try {
        ids.push_back(runtime::encode_prompt(run, p));
      } catch (const Error& e) {
        throw ApiError(400, e.what(), chat ? "messages" : "prompt");
      }
    }
    auto pipe = std::make_shared<Pipe>();
    std::vector<std::shared_ptr<runtime::BatchEngine::Handle>> hs;
    for (const auto& p : ids)
      for (int64_t j = 0; j < r->n; ++j) {
        runtime::GenerationOptions go = r->options;
        go.seed += uint64_t(j);
        auto h = engine->submit({.prompt = p, .options = go,
                                 .on_text = [pipe](const std::string& s) { pipe->push(s); return true; }});
        if (!h) {
          for (auto& x : hs) x->cancel();
          if (stopping) throw ApiError(503, "the server is shutting down", "", "server_error");
          throw ApiError(429, "the server is busy: " + std::to_string(engine->options().max_queue) +
                                  " requests are already waiting; retry later", "", "rate_limit_exceeded");
        }
        hs.push_back(h);
      }
    const std::string id = std::string(chat ? "chatcmpl-" : "cmpl-") + std::to_string(next_id++);
    const int64_t created = int64_t(std::time(nullptr));
    const std::string mid = model_id();
    const double timeout = o.timeout;
    auto cancel_all = [hs] {
      for (auto& h : hs) h->cancel();
    };
    auto all_done = [hs] {
      return std::all_of(hs.begin(), hs.end(), [](auto& h) { return h->done(); });
    };
    auto ttft_seen = std::make_shared<bool>(false);
    auto note_ttft = [this, hs, ttft_seen] {
      if (*ttft_seen || hs[0]->first_token_seconds() < 0) return;
      *ttft_seen = true;
      metrics.observe_ttft(hs[0]->first_token_seconds());
    };
    auto finished_once = std::make_shared<bool>(false);
    auto observe_end = [this, t0, finished_once] {
      if (*finished_once) return;
      *finished_once = true;
      metrics.observe_latency(since(t0));
    };
    const std::string type = r->stream ? "text/event-stream" : "application/json";
    if (r->stream) res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        type,
        [=, this](size_t, httplib::DataSink& sink) {
          bool first = true;
          for (;;) {
            std::deque<std::string> got;
            {
              std::unique_lock l(pipe->m);
              pipe->cv.wait_for(l, std::chrono::milliseconds(50), [&] { return !pipe->pieces.empty(); });
              got.swap(pipe->pieces);
            }
            note_ttft();
            if (since(t0) > timeout) cancel_all();
            const bool done = all_done();
            if (r->stream) {
              for (const auto& piece : got) {
                const std::string c = stream_chunk(*r, mid, id, created, piece, "", first);
                if (!sink.write(c.data(), c.size())) {
                  cancel_all();  // the client went away: free the slot
                  return false;
                }
                first = false;
              }
            } else if (!got.empty() || !done) {
              if (!got.empty() && !sink.write(" ", 1)) {  // a write that fails means the client is gone
                cancel_all();
                return false;
              }
            }
            if (!done) continue;
            std::vector<runtime::GenerationResult> results;
            for (auto& h : hs) results.push_back(h->wait());
            for (const auto& g : results)
              if (g.finish_reason == "error") {
                const std::string e = dump(error_body("generation failed: " + g.text, "server_error"));
                const std::string msg = r->stream ? "data: " + e + "\n\n" : e;
                sink.write(msg.data(), msg.size());
                sink.done();
                observe_end();
                return true;
              }
            std::string out;
            if (r->stream) {
              out = stream_chunk(*r, mid, id, created, "", finish_reason(results[0]), first);
              if (r->include_usage)
                out += stream_usage_chunk(*r, mid, id, created, results[0].prompt_tokens, int64_t(results[0].tokens.size()));
              out += "data: [DONE]\n\n";
            } else {
              out = dump(completion_response(*r, mid, results, id, created));
            }
            sink.write(out.data(), out.size());
            sink.done();
            observe_end();
            return true;
          }
        },
        [hs](bool) {  // released: finished, or the connection dropped before the provider noticed
          for (auto& h : hs) h->cancel();
        });
  }

  void classify(const httplib::Request& req, httplib::Response& res) {
    if (run.kind != runtime::Run::Kind::classifier)
      throw ApiError(400, "'" + model_id() + "' is a language model: use /v1/completions or /v1/chat/completions", "model");
    std::string bytes, name = "image";
    int64_t top_k = -1;  // default: the 5 most likely (fewer when the model has fewer classes)
    if (req.is_multipart_form_data()) {
      const char* field = req.has_file("file") ? "file" : req.has_file("image") ? "image" : nullptr;
      if (!field) throw ApiError(400, "expected a multipart field 'file' (or 'image') holding the image", "file");
      const auto f = req.get_file_value(field);
      bytes = f.content, name = f.filename.empty() ? field : f.filename;
      if (req.has_file("top_k")) {
        try {
          top_k = std::stoll(req.get_file_value("top_k").content);
        } catch (const std::exception&) {
          throw ApiError(400, "'top_k' must be an integer", "top_k");
        }
      }
    } else {
      json j;
      try {
        j = json::parse(req.body);
      } catch (const json::exception& e) {
        throw ApiError(400, std::string("the request body is not valid JSON (or send multipart/form-data): ") + e.what());
      }
      if (!j.is_object() || !j.contains("image") || !j["image"].is_string())
        throw ApiError(400, "'image' is required: the image file as base64 (or a data: URL)", "image");
      bytes = base64_decode(j["image"].get<std::string>(), "image");
      if (j.contains("top_k") && !j["top_k"].is_null()) {
        if (!j["top_k"].is_number_integer()) throw ApiError(400, "'top_k' must be an integer", "top_k");
        top_k = j["top_k"].get<int64_t>();
      }
    }
    const auto& c = *run.classifier;
    if (top_k == -1) top_k = std::min<int64_t>(5, c.shape.num_classes);
    if (top_k < 1 || top_k > c.shape.num_classes)
      throw ApiError(400, "'top_k' must be between 1 and " + std::to_string(c.shape.num_classes), "top_k");
    if (models::is_regression(c.name)) throw ApiError(400, "'" + model_id() + "' is a regression model, not a classifier");
    Tensor img;
    try {
      img = data::decode_image(bytes, name, int(c.shape.channels == 1 ? 1 : 3));
    } catch (const Error& e) {
      throw ApiError(400, std::string("cannot decode the image: ") + e.what(), "image");
    }
    std::vector<double> p;
    {
      std::lock_guard l(classify_m);  // one forward at a time: the model's threads are all busy already
      NoGradGuard ng;
      p = softmax((*c.model)(runtime::preprocess_image(img, c).unsqueeze(0)), 1).contiguous().tolist();
    }
    std::vector<int64_t> order(p.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return p[a] > p[b]; });
    json preds = json::array();
    for (int64_t k = 0; k < top_k; ++k) {
      const int64_t i = order[size_t(k)];
      preds.push_back({{"index", i}, {"label", size_t(i) < c.classes.size() ? c.classes[size_t(i)] : std::to_string(i)},
                       {"probability", p[size_t(i)]}});
    }
    res.set_content(dump({{"object", "classification"}, {"model", model_id()}, {"predictions", preds}}), "application/json");
  }

  void routes() {
    const size_t body = o.max_body, image_body = o.max_body * 16;
    http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      res.status = ready && !stopping ? 200 : 503;
      res.set_content(json{{"status", ready ? (stopping ? "stopping" : "ok") : "loading"}}.dump(), "application/json");
      metrics.count_request("/health", res.status);
    });
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      runtime::EngineStats st;
      if (engine) st = engine->stats();
      res.set_content(metrics.render(engine ? &st : nullptr, engine ? engine->options().slots : 0),
                      "text/plain; version=0.0.4");
    });
    auto models = [this](const httplib::Request& req, httplib::Response& res) {
      const json m = {{"id", model_id()}, {"object", "model"}, {"created", 0}, {"owned_by", "loom"}};
      if (req.matches.size() > 1) {
        if (req.matches[1] != model_id()) throw ApiError(404, "the model '" + std::string(req.matches[1]) + "' does not exist", "model", "model_not_found");
        res.set_content(dump(m), "application/json");
        return;
      }
      res.set_content(dump({{"object", "list"}, {"data", json::array({m})}}), "application/json");
    };
    http.Get("/v1/models", wrap("/v1/models", models, true, body));
    http.Get(R"(/v1/models/([^/]+))", wrap("/v1/models", models, true, body));
    http.Post("/v1/completions", wrap("/v1/completions", [this](auto& q, auto& s) { completions(q, s, false); }, true, body));
    http.Post("/v1/chat/completions", wrap("/v1/chat/completions", [this](auto& q, auto& s) { completions(q, s, true); }, true, body));
    http.Post("/v1/classify", wrap("/v1/classify", [this](auto& q, auto& s) { classify(q, s); }, true, image_body));
    http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;  // a handler already wrote an error object
      const std::string msg = res.status == 404   ? "no route " + req.method + " " + req.path
                              : res.status == 413 ? "the request body is too large"
                                                  : "HTTP error " + std::to_string(res.status);
      res.set_content(dump(error_body(msg, "invalid_request_error")), "application/json");
    });
  }
};

Server::Server(ServerOptions o) : impl_(std::make_unique<Impl>()) {
  LOOM_CHECK(o.parallel >= 1 && o.parallel <= 256, "serve: --parallel must be in [1, 256], got ", o.parallel);
  LOOM_CHECK(o.max_queue >= 0, "serve: --max-queue must be >= 0, got ", o.max_queue);
  LOOM_CHECK(o.timeout > 0, "serve: --timeout must be > 0 seconds, got ", o.timeout);
  impl_->o = std::move(o);
  auto& http = impl_->http;
  const size_t threads = size_t(std::max<int64_t>(16, impl_->o.parallel + impl_->o.max_queue + 16));
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http.set_payload_max_length(impl_->o.max_body * 16);
  http.set_keep_alive_max_count(100000);
  http.set_read_timeout(30, 0);
  http.set_write_timeout(30, 0);
  impl_->routes();
}

Server::~Server() {
  stop(0);
  if (impl_->listener.joinable()) impl_->listener.join();
}

int Server::bind() {
  std::signal(SIGPIPE, SIG_IGN);  // a client that went away must not kill the server
  auto& i = *impl_;
  int port = i.o.port;
  if (port == 0) port = i.http.bind_to_any_port(i.o.host);
  else if (!i.http.bind_to_port(i.o.host, port)) port = -1;
  LOOM_CHECK(port > 0, "serve: cannot listen on ", i.o.host, ":", i.o.port, " (in use, or not an address of this machine)");
  i.listener = std::thread([&i] {
    i.http.listen_after_bind();
    i.listen_returned = true;
  });
  // httplib's stop() only ends an accept loop that is already running: a stop() (say, after a failed load)
  // that came before the thread got there would leave it accepting forever. So bind() returns once it runs.
  while (!i.http.is_running() && !i.listen_returned) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return port;
}

void Server::load() {
  auto& i = *impl_;
  i.run = runtime::load_run(i.o.checkpoint);
  LOOM_CHECK(i.run.nonfinite.empty(), i.o.checkpoint, " holds ", i.run.nonfinite,
             ": the model is broken (training diverged?) and will not be served");
  if (i.run.kind == runtime::Run::Kind::language_model)
    i.engine = std::make_unique<runtime::BatchEngine>(
        i.run, runtime::EngineOptions{.slots = i.o.parallel, .max_queue = i.o.max_queue,
                                      .prefill_chunk = i.o.prefill_chunk, .max_len = i.o.max_len});
  i.ready = true;
  i.log("ready: " + i.model_id() + (i.run.kind == runtime::Run::Kind::language_model ? " (language model, " +
                                        std::to_string(i.o.parallel) + " slots)" : " (image classifier)"));
}

void Server::listen() {
  if (impl_->listener.joinable()) impl_->listener.join();
}

bool Server::ready() const { return impl_->ready; }

void Server::stop(double grace_s) {
  auto& i = *impl_;
  std::lock_guard l(i.stop_m);
  if (i.stopping.exchange(true) && !i.http.is_running()) return;
  if (i.engine) {
    i.engine->stop_accepting();
    const auto t0 = Clock::now();
    while (since(t0) < grace_s) {
      const auto st = i.engine->stats();
      if (st.busy == 0 && st.queued == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    i.engine->shutdown(false);  // whatever still runs is cancelled; its handlers answer and return
  }
  i.http.stop();
  i.log("stopped");
}

}  // namespace loom::serve
