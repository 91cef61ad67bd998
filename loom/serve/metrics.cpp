#include "loom/serve/metrics.h"

#include <sstream>

namespace loom::serve {

void Histogram::observe(double v) {
  for (size_t i = 0; i < kBounds.size(); ++i)
    if (v <= kBounds[i]) ++counts_[i];  // Prometheus buckets are cumulative
  ++count_;
  sum_ += v;
}

std::string Histogram::render(const std::string& name, const std::string& help) const {
  std::ostringstream o;
  o << "# HELP " << name << " " << help << "\n# TYPE " << name << " histogram\n";
  for (size_t i = 0; i < kBounds.size(); ++i) o << name << "_bucket{le=\"" << kBounds[i] << "\"} " << counts_[i] << "\n";
  o << name << "_bucket{le=\"+Inf\"} " << count_ << "\n" << name << "_sum " << sum_ << "\n" << name << "_count " << count_ << "\n";
  return o.str();
}

void Metrics::count_request(const std::string& endpoint, int status) {
  std::lock_guard l(m_);
  ++requests_[{endpoint, status}];
}
void Metrics::observe_latency(double s) {
  std::lock_guard l(m_);
  latency_.observe(s);
}
void Metrics::observe_ttft(double s) {
  std::lock_guard l(m_);
  ttft_.observe(s);
}

std::string Metrics::render(const runtime::EngineStats* e, int64_t slots) const {
  std::lock_guard l(m_);
  std::ostringstream o;
  o << "# HELP loom_requests_total HTTP requests by endpoint and status.\n# TYPE loom_requests_total counter\n";
  for (const auto& [k, v] : requests_)
    o << "loom_requests_total{endpoint=\"" << k.first << "\",status=\"" << k.second << "\"} " << v << "\n";
  o << latency_.render("loom_request_duration_seconds", "Time from request to the last byte of the answer.");
  o << ttft_.render("loom_time_to_first_token_seconds", "Time from request to the first generated token.");
  if (e) {
    auto line = [&](const char* name, const char* type, const char* help, int64_t v) {
      o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n" << name << " " << v << "\n";
    };
    line("loom_prompt_tokens_total", "counter", "Prompt tokens read (rate() gives prompt tokens/s).", e->prompt_tokens);
    line("loom_generated_tokens_total", "counter", "Tokens generated (rate() gives tokens/s).", e->generated_tokens);
    line("loom_decode_steps_total", "counter", "Batched forwards run by the engine.", e->steps);
    line("loom_requests_finished_total", "counter", "Generation requests that ran to the end.", e->requests_finished);
    line("loom_requests_cancelled_total", "counter", "Generation requests cancelled (client gone, timeout, shutdown).",
         e->requests_cancelled);
    line("loom_requests_rejected_total", "counter", "Requests refused because the queue was full.", e->requests_rejected);
    line("loom_queue_length", "gauge", "Requests waiting for a slot.", e->queued);
    line("loom_busy_slots", "gauge", "Slots decoding a request.", e->busy);
    line("loom_slots", "gauge", "Slots (--parallel).", slots);
  }
  return o.str();
}

}  // namespace loom::serve
