// The server over real HTTP on 127.0.0.1 (an ephemeral port): OpenAI-shaped answers for completions, chat,
// streamed chat and models; 400 with OpenAI's error object for bad input; 401 without the API key; 429 on a
// full queue; cancellation when a streaming client disconnects; the same temperature-0 text alone and
// batched; /health 503 while loading; /metrics; /v1/classify for image models; a graceful stop.
#include <gtest/gtest.h>

#include <httplib.h>

#include <cmath>
#include <filesystem>
#include <future>
#include <thread>

#include "loom/loom.h"
#include "loom/serve/openai_protocol.h"
#include "loom/serve/server.h"
#include "support/scratch.h"

using namespace loom;
using json = nlohmann::json;

namespace {

const std::string kAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .,:\n";

std::string lm_folder() {
  static std::string dir;
  if (!dir.empty()) return dir;
  dir = loom::test::scratch("serve_gpt").string();
  manual_seed(7);
  models::GPT m({.vocab_size = int64_t(kAlphabet.size()), .n_positions = 64, .n_embd = 32, .n_layer = 2, .n_head = 4,
                 .initializer_range = 0.3});
  m.save(dir);
  runtime::save_run_tokenizer(*text::make_tokenizer("char", kAlphabet), dir);
  return dir;
}

struct Running {
  explicit Running(serve::ServerOptions o) : server(std::move(o)) {
    port = server.bind();
    server.load();
    cli = std::make_unique<httplib::Client>("127.0.0.1", port);
    cli->set_read_timeout(60, 0);
  }
  ~Running() { server.stop(1); }
  serve::Server server;
  int port = 0;
  std::unique_ptr<httplib::Client> cli;
  json post(const std::string& path, const json& body, int expect) {
    auto r = cli->Post(path.c_str(), body.dump(), "application/json");
    EXPECT_TRUE(r);
    if (!r) return {};
    EXPECT_EQ(r->status, expect) << r->body;
    return json::parse(r->body);
  }
};

serve::ServerOptions opts(int64_t parallel = 4, int64_t queue = 16) {
  return {.checkpoint = lm_folder(), .port = 0, .parallel = parallel, .max_queue = queue};
}

void expect_error(const json& j, const std::string& param_or_empty) {
  ASSERT_TRUE(j.contains("error")) << j.dump();
  EXPECT_TRUE(j["error"]["message"].is_string());
  EXPECT_TRUE(j["error"]["type"].is_string());
  if (!param_or_empty.empty()) {
    EXPECT_EQ(j["error"]["param"], param_or_empty) << j.dump();
  }
}

}  // namespace

TEST(Serve, CompletionChatAndModelsHaveOpenAIsShape) {
  Running s(opts());
  auto models = json::parse(s.cli->Get("/v1/models")->body);
  EXPECT_EQ(models["object"], "list");
  EXPECT_EQ(models["data"][0]["id"], "serve_gpt");
  auto c = s.post("/v1/completions", {{"model", "serve_gpt"}, {"prompt", "abc"}, {"max_tokens", 7}, {"temperature", 0}}, 200);
  EXPECT_EQ(c["object"], "text_completion");
  EXPECT_EQ(c["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(c["usage"]["prompt_tokens"], 3);
  EXPECT_EQ(c["usage"]["completion_tokens"], 7);
  EXPECT_EQ(c["usage"]["total_tokens"], 10);
  // The same text as the library's GenerationSession.
  runtime::Run run = runtime::load_run(lm_folder());
  runtime::GenerationSession gs(run);
  EXPECT_EQ(c["choices"][0]["text"], gs.generate("abc", {.max_new_tokens = 7, .sampling = {.temperature = 0}}).text);

  auto chat = s.post("/v1/chat/completions",
                     {{"model", "serve_gpt"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"max_tokens", 5},
                      {"n", 2}, {"seed", 3}}, 200);
  EXPECT_EQ(chat["object"], "chat.completion");
  ASSERT_EQ(chat["choices"].size(), 2u);
  EXPECT_EQ(chat["choices"][1]["index"], 1);
  EXPECT_EQ(chat["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(chat["usage"]["prompt_tokens"], int64_t(serve::chat_prompt({{"user", "hi"}}).size()));
}

TEST(Serve, StreamedChatSendsDeltasThenDone) {
  Running s(opts());
  std::string body;
  httplib::Headers h;
  auto r = s.cli->Post("/v1/chat/completions",
                       json{{"messages", {{{"role", "user"}, {"content", "hello"}}}}, {"max_tokens", 6}, {"temperature", 0},
                            {"stream", true}, {"stream_options", {{"include_usage", true}}}}.dump(),
                       "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/event-stream");
  std::string text, finish;
  int chunks = 0;
  bool done = false, usage = false;
  size_t b = 0;
  for (size_t e; (e = r->body.find("\n\n", b)) != std::string::npos; b = e + 2) {
    const std::string ev = r->body.substr(b, e - b);
    ASSERT_TRUE(ev.starts_with("data: ")) << ev;
    if (ev == "data: [DONE]") {
      done = true;
      continue;
    }
    auto j = json::parse(ev.substr(6));
    EXPECT_EQ(j["object"], "chat.completion.chunk");
    if (j.contains("usage")) {
      usage = true;
      continue;
    }
    ++chunks;
    auto& d = j["choices"][0]["delta"];
    if (d.contains("content")) text += d["content"].get<std::string>();
    if (!j["choices"][0]["finish_reason"].is_null()) finish = j["choices"][0]["finish_reason"];
  }
  EXPECT_TRUE(done);
  EXPECT_TRUE(usage);
  EXPECT_GE(chunks, 2);
  EXPECT_FALSE(finish.empty());
  auto whole = s.post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "hello"}}}}, {"max_tokens", 6},
                                               {"temperature", 0}}, 200);
  EXPECT_EQ(whole["choices"][0]["message"]["content"], text);
}

TEST(Serve, BadRequestsGetOpenAIErrorObjects) {
  Running s(opts());
  auto raw = s.cli->Post("/v1/completions", "{not json", "application/json");
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->status, 400);
  expect_error(json::parse(raw->body), "");
  expect_error(s.post("/v1/completions", {{"prompt", "a"}, {"max_tokens", "ten"}}, 400), "max_tokens");
  expect_error(s.post("/v1/completions", {{"prompt", "a"}, {"temperature", 5}}, 400), "temperature");
  expect_error(s.post("/v1/completions", {{"prompt", 12}}, 400), "prompt");
  expect_error(s.post("/v1/completions", {{"max_tokens", 3}}, 400), "prompt");
  expect_error(s.post("/v1/completions", {{"prompt", "a"}, {"stop", {1, 2}}}, 400), "stop");
  expect_error(s.post("/v1/completions", {{"prompt", "a"}, {"logprobs", 2}}, 400), "logprobs");
  expect_error(s.post("/v1/completions", {{"prompt", "#"}}, 400), "prompt");  // '#' is outside the vocabulary
  expect_error(s.post("/v1/chat/completions", {{"messages", json::array()}}, 400), "messages");
  expect_error(s.post("/v1/chat/completions", {{"messages", {{{"role", "robot"}, {"content", "x"}}}}}, 400),
               "messages[0].role");
  // A content part whose "type" is not a string, and a body nested deeper than any JSON loom reads: 400s, not 500s.
  expect_error(s.post("/v1/chat/completions",
                      {{"messages", {{{"role", "user"}, {"content", {{{"type", 5}, {"text", "x"}}}}}}}}, 400),
               "messages[0].content");
  auto deep = s.cli->Post("/v1/chat/completions", std::string(100000, '[') + std::string(100000, ']'),
                          "application/json");
  ASSERT_TRUE(deep);
  EXPECT_EQ(deep->status, 400);
  expect_error(json::parse(deep->body), "");
  expect_error(s.post("/v1/completions", {{"model", "other"}, {"prompt", "a"}}, 404), "model");
  expect_error(s.post("/v1/classify", {{"image", "AAAA"}}, 400), "model");
  auto big = s.cli->Post("/v1/completions", json{{"prompt", std::string(2 << 20, 'a')}}.dump(), "application/json");
  ASSERT_TRUE(big);
  EXPECT_TRUE(big->status == 400 || big->status == 413) << big->status;
  expect_error(json::parse(big->body), "");
  auto none = s.cli->Get("/v1/nothing");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 404);
  expect_error(json::parse(none->body), "");
}

TEST(Serve, ApiKeyIsRequiredWhenSet) {
  auto o = opts();
  o.api_key = "sekrit";
  Running s(o);
  expect_error(s.post("/v1/completions", {{"prompt", "a"}}, 401), "");
  EXPECT_EQ(s.cli->Get("/health")->status, 200);  // health and metrics stay open
  s.cli->set_bearer_token_auth("sekrit");
  s.post("/v1/completions", {{"prompt", "a"}, {"max_tokens", 2}}, 200);
}

TEST(Serve, FullQueueAnswers429AndDisconnectCancels) {
  Running s(opts(1, 0));  // one slot, no queue
  // A stream that runs long and then hangs up after two chunks.
  std::atomic<int> got{0};
  std::atomic<bool> checked{false};  // the client hangs up only after the 429 was seen
  auto streaming = std::async(std::launch::async, [&] {
    httplib::Client c("127.0.0.1", s.port);
    httplib::Request req;
    req.method = "POST", req.path = "/v1/completions";
    req.body = json{{"prompt", "abc"}, {"max_tokens", 100000}, {"stream", true}}.dump();
    req.set_header("Content-Type", "application/json");
    req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) { return ++got < 3 || !checked; };
    c.send(req);
  });
  while (got < 1) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  expect_error(s.post("/v1/completions", {{"prompt", "a"}, {"max_tokens", 2}}, 429), "");
  checked = true;
  streaming.wait();
  // Within a few steps the slot is free again: a new request is served.
  json ok;
  for (int i = 0; i < 200; ++i) {
    auto r = s.cli->Post("/v1/completions", json{{"prompt", "a"}, {"max_tokens", 2}}.dump(), "application/json");
    if (r && r->status == 200) {
      ok = json::parse(r->body);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(ok["usage"]["completion_tokens"], 2);
  const std::string m = s.cli->Get("/metrics")->body;
  EXPECT_NE(m.find("loom_requests_cancelled_total 1"), std::string::npos) << m;
  EXPECT_NE(m.find("loom_requests_rejected_total"), std::string::npos);
  EXPECT_NE(m.find("loom_requests_total{endpoint=\"/v1/completions\",status=\"429\"}"), std::string::npos);
  EXPECT_NE(m.find("loom_time_to_first_token_seconds_bucket"), std::string::npos);
}

TEST(Serve, TemperatureZeroIsIdenticalAloneAndBatched) {
  Running s(opts(4));
  std::vector<std::string> prompts = {"In the", "a", "Hello there, friend", "xyz", "The quick brown fox jumps"};
  std::vector<std::string> alone;
  for (auto& p : prompts)
    alone.push_back(s.post("/v1/completions", {{"prompt", p}, {"max_tokens", 12}, {"temperature", 0}}, 200)["choices"][0]["text"]);
  std::vector<std::future<std::string>> fs;
  for (auto& p : prompts)
    fs.push_back(std::async(std::launch::async, [&, p] {
      httplib::Client c("127.0.0.1", s.port);
      auto r = c.Post("/v1/completions", json{{"prompt", p}, {"max_tokens", 12}, {"temperature", 0}}.dump(), "application/json");
      return r ? json::parse(r->body)["choices"][0]["text"].get<std::string>() : std::string("<failed>");
    }));
  for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(fs[i].get(), alone[i]) << prompts[i];
}

TEST(Serve, HealthIsLoadingUntilLoadedAndStopIsGraceful) {
  serve::Server server(opts());
  const int port = server.bind();
  httplib::Client c("127.0.0.1", port);
  auto h = c.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 503);
  EXPECT_EQ(c.Post("/v1/completions", json{{"prompt", "a"}}.dump(), "application/json")->status, 503);
  server.load();
  EXPECT_EQ(c.Get("/health")->status, 200);
  auto running = std::async(std::launch::async, [&] {
    httplib::Client c2("127.0.0.1", port);
    c2.set_read_timeout(60, 0);
    return c2.Post("/v1/completions", json{{"prompt", "abc"}, {"max_tokens", 40}}.dump(), "application/json");
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  auto listening = std::async(std::launch::async, [&] { server.listen(); });
  server.stop(30);  // the running request finishes first
  listening.wait();
  auto r = running.get();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(json::parse(r->body)["usage"]["completion_tokens"], 40);
}

namespace {
// A 24-bit BMP of w x h pixels, all of grey value v.
std::string bmp(int w, int h, uint8_t v) {
  const int row = (w * 3 + 3) / 4 * 4, size = 54 + row * h;
  std::string b(size_t(size), '\0');
  auto put32 = [&](int at, uint32_t x) { for (int i = 0; i < 4; ++i) b[size_t(at + i)] = char((x >> (8 * i)) & 0xFF); };
  b[0] = 'B', b[1] = 'M';
  put32(2, uint32_t(size)), put32(10, 54), put32(14, 40), put32(18, uint32_t(w)), put32(22, uint32_t(h));
  b[26] = 1, b[28] = 24;
  put32(34, uint32_t(row * h));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w * 3; ++x) b[size_t(54 + y * row + x)] = char(v);
  return b;
}
std::string base64(const std::string& s) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string o;
  for (size_t i = 0; i < s.size(); i += 3) {
    uint32_t n = uint32_t(uint8_t(s[i])) << 16;
    if (i + 1 < s.size()) n |= uint32_t(uint8_t(s[i + 1])) << 8;
    if (i + 2 < s.size()) n |= uint8_t(s[i + 2]);
    o += t[(n >> 18) & 63], o += t[(n >> 12) & 63];
    o += i + 1 < s.size() ? t[(n >> 6) & 63] : '=';
    o += i + 2 < s.size() ? t[n & 63] : '=';
  }
  return o;
}
}  // namespace

TEST(Serve, RefusesAModelWithNonFiniteWeights) {
  const std::string dir = loom::test::scratch("serve_nan_gpt").string();
  manual_seed(7);
  models::GPT m({.vocab_size = int64_t(kAlphabet.size()), .n_positions = 16, .n_embd = 16, .n_layer = 1, .n_head = 2});
  {
    NoGradGuard ng;
    m.blocks[0]->mlp->c_fc->weight.narrow(0, 0, 1).fill_(std::nan(""));
  }
  m.save(dir);
  runtime::save_run_tokenizer(*text::make_tokenizer("char", kAlphabet), dir);
  serve::Server server({.checkpoint = dir, .port = 0});
  server.bind();
  try {
    server.load();
    ADD_FAILURE() << "a model with NaN weights was loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("NaN/inf weight value(s)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("h.0.mlp.c_fc.weight"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(server.ready());
  server.stop(0);
}

TEST(Serve, ClassifyAnImageModel) {
  const auto dir = loom::test::scratch("serve_mlp");
  std::filesystem::create_directories(dir);
  manual_seed(1);
  auto mlp = models::make_model("mlp", {.channels = 1, .height = 8, .width = 8, .num_classes = 3});
  io::save_safetensors((dir / "model.safetensors").string(), mlp->state_dict().items(),
                       {{"loom.model", "mlp"}, {"loom.input", "[1,8,8]"}, {"loom.num_classes", "3"},
                        {"loom.classes", "[\"cat\",\"dog\",\"cow\"]"}, {"loom.normalize", "{\"mean\":[0.5],\"std\":[0.5]}"}});
  Running s({.checkpoint = dir.string(), .port = 0});
  const std::string img = bmp(16, 16, 200);
  auto j = s.post("/v1/classify", {{"image", base64(img)}, {"top_k", 2}}, 200);
  ASSERT_EQ(j["predictions"].size(), 2u);
  // The same probabilities as running the model here on the preprocessed image.
  runtime::Run run = runtime::load_run(dir.string());
  NoGradGuard ng;
  Tensor p = softmax((*run.classifier->model)(
                         runtime::preprocess_image(data::decode_image(img, "x.bmp", 1), *run.classifier).unsqueeze(0)), 1);
  const int64_t best = j["predictions"][0]["index"];
  EXPECT_NEAR(j["predictions"][0]["probability"].get<double>(), p[0][best].item(), 1e-6);
  EXPECT_EQ(j["predictions"][0]["label"], run.classifier->classes[size_t(best)]);
  httplib::MultipartFormDataItems items = {{"file", img, "x.bmp", "image/bmp"}};
  auto m = s.cli->Post("/v1/classify", items);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 200) << m->body;
  EXPECT_EQ(json::parse(m->body)["predictions"][0]["index"], best);
  expect_error(s.post("/v1/classify", {{"image", base64("not an image")}}, 400), "image");
  expect_error(s.post("/v1/classify", {{"image", "!!!"}}, 400), "image");
  expect_error(s.post("/v1/completions", {{"prompt", "a"}}, 400), "model");
}
