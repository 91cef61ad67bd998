// Prometheus text exposition for the server's /metrics: request counters by endpoint and status, latency
// and time-to-first-token histograms, token counters, and gauges read from the engine at scrape time.
//   serve::Metrics m;  m.count_request("/v1/completions", 200);  m.observe_latency(0.12);
//   std::string text = m.render(engine_stats, "gpt");
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "loom/runtime/batch_engine.h"

namespace loom::serve {

class Histogram {
 public:
  static constexpr std::array<double, 12> kBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
  void observe(double v);
  // The # TYPE line and the _bucket / _sum / _count lines.
  std::string render(const std::string& name, const std::string& help) const;

 private:
  std::array<int64_t, kBounds.size()> counts_{};
  int64_t count_ = 0;
  double sum_ = 0;
};

class Metrics {
 public:
  void count_request(const std::string& endpoint, int status);
  void observe_latency(double seconds);
  void observe_ttft(double seconds);
  // `engine` null for image models. Rates (tokens/s) come from the counters: rate(loom_generated_tokens_total[1m]).
  std::string render(const runtime::EngineStats* engine, int64_t slots) const;

 private:
  mutable std::mutex m_;
  std::map<std::pair<std::string, int>, int64_t> requests_;
  Histogram latency_, ttft_;
};

}  // namespace loom::serve
