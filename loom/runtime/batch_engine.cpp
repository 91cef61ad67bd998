// The worker: admit queued requests into free slots, drop cancelled ones, then one step = at most one
// prefill chunk (the oldest prefilling request) + one batched decode forward of every request waiting for
// exactly one token. Results do not depend on the company a request keeps: its prompt is chunked the same
// way whatever else runs, and each row attends over its own slot only.
#include "loom/runtime/batch_engine.h"

#include <algorithm>
#include <chrono>

#include "loom/autograd/grad_mode.h"
#include "loom/core/error.h"
#include "loom/ops/creation.h"

namespace loom::runtime {

using Clock = std::chrono::steady_clock;

struct BatchEngine::Active {
  int64_t slot = 0;
  std::unique_ptr<Sequence> seq;
  std::shared_ptr<Handle> handle;
  Clock::time_point start;
};

GenerationResult BatchEngine::Handle::wait() {
  std::unique_lock lock(m_);
  cv_.wait(lock, [&] { return done_; });
  return result_;
}

bool BatchEngine::Handle::wait_for(double seconds) {
  std::unique_lock lock(m_);
  return cv_.wait_for(lock, std::chrono::duration<double>(seconds), [&] { return done_; });
}

bool BatchEngine::Handle::done() const {
  std::lock_guard lock(m_);
  return done_;
}

BatchEngine::BatchEngine(const Run& run, EngineOptions o) : run_(run), o_(o) {
  LOOM_CHECK(run.kind == Run::Kind::language_model && run.lm && run.tokenizer, "BatchEngine: ", run.path,
             " is not a language-model run");
  LOOM_CHECK(o_.slots >= 1 && o_.max_queue >= 0 && o_.prefill_chunk >= 1 && o_.max_len >= 0,
             "BatchEngine: slots and prefill_chunk must be >= 1, max_queue and max_len >= 0; got slots=", o_.slots,
             " max_queue=", o_.max_queue, " prefill_chunk=", o_.prefill_chunk, " max_len=", o_.max_len);
  const int64_t ctx = run.lm->context();
  state_ = run.lm->start_slots(o_.slots, o_.max_len > 0 ? o_.max_len : ctx);
  worker_ = std::thread([this] { loop(); });
}

BatchEngine::~BatchEngine() { shutdown(false); }

std::shared_ptr<BatchEngine::Handle> BatchEngine::submit(Request r) {
  check_generation_options(r.options);
  LOOM_CHECK(!r.prompt.empty(), "the prompt has no tokens");
  std::lock_guard lock(m_);
  // Room: a free slot, or a place in the queue. busy counts down as soon as a request finishes.
  if (!accepting_ || int64_t(queue_.size()) + stats_.busy >= o_.slots + o_.max_queue) {
    ++stats_.requests_rejected;
    return nullptr;
  }
  auto h = std::make_shared<Handle>();
  queue_.emplace_back(std::move(r), h);
  stats_.queued = int64_t(queue_.size());
  cv_.notify_all();
  return h;
}

void BatchEngine::shutdown(bool drain) {
  {
    std::lock_guard lock(m_);
    accepting_ = false;
    stop_ = true;
    drain_ = drain_ && drain;
    cv_.notify_all();
  }
  if (worker_.joinable()) worker_.join();
}

void BatchEngine::stop_accepting() {
  std::lock_guard lock(m_);
  accepting_ = false;
}

EngineStats BatchEngine::stats() const {
  std::lock_guard lock(m_);
  return stats_;
}

void BatchEngine::finish(Active& a) {
  const GenerationResult& r = a.seq->result();
  {
    std::lock_guard lock(m_);
    ++(r.finish_reason == "cancelled" ? stats_.requests_cancelled : stats_.requests_finished);
    --stats_.busy;
  }
  std::lock_guard lock(a.handle->m_);
  a.handle->result_ = r;
  a.handle->done_ = true;
  a.handle->cv_.notify_all();
}

void BatchEngine::loop() {
  std::vector<Active> active;
  std::vector<int64_t> free_slots;
  for (int64_t s = o_.slots - 1; s >= 0; --s) free_slots.push_back(s);
  for (;;) {
    {
      std::unique_lock lock(m_);
      if (stop_ && !drain_) {  // cancel everything: queued requests end without a token
        for (auto& a : active) a.handle->cancel();
        for (auto& [req, h] : queue_) {
          std::lock_guard hl(h->m_);
          h->result_.finish_reason = "cancelled";
          h->done_ = true;
          h->cv_.notify_all();
        }
        queue_.clear();
      }
      while (!free_slots.empty() && !queue_.empty()) {
        auto [req, h] = std::move(queue_.front());
        queue_.pop_front();
        Active a{.slot = free_slots.back(), .seq = nullptr, .handle = h, .start = Clock::now()};
        try {
          a.seq = std::make_unique<Sequence>(run_, std::move(req.prompt), req.options, std::move(req.on_text),
                                             state_->max_len);
        } catch (const std::exception& e) {
          std::lock_guard hl(h->m_);
          h->result_.finish_reason = "error";
          h->result_.text = e.what();
          h->done_ = true;
          h->cv_.notify_all();
          continue;
        }
        free_slots.pop_back();
        stats_.prompt_tokens += a.seq->result().prompt_tokens;
        run_.lm->reset_slot(*state_, a.slot);
        active.push_back(std::move(a));
      }
      stats_.queued = int64_t(queue_.size());
      stats_.busy = int64_t(active.size());
      if (active.empty()) {
        if (stop_ && queue_.empty()) return;
        cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        continue;
      }
    }
    for (auto& a : active)
      if (a.handle->cancelled_ && !a.seq->finished()) a.seq->cancel();
    try {
      step(active);
    } catch (const std::exception& e) {  // a model failure ends the running requests, not the server
      for (auto& a : active) {
        a.seq->cancel();
        std::lock_guard hl(a.handle->m_);
        a.handle->result_ = a.seq->result();
        a.handle->result_.finish_reason = "error";
        a.handle->result_.text = e.what();
        a.handle->done_ = true;
        a.handle->cv_.notify_all();
      }
      for (auto& a : active) free_slots.push_back(a.slot);
      active.clear();
      std::lock_guard lock(m_);
      stats_.busy = 0;
      continue;
    }
    for (size_t i = 0; i < active.size();) {
      if (active[i].seq->finished()) {
        finish(active[i]);
        free_slots.push_back(active[i].slot);
        active.erase(active.begin() + ptrdiff_t(i));
      } else {
        ++i;
      }
    }
  }
}

void BatchEngine::step(std::vector<Active>& active) {
  NoGradGuard ng;
  auto& lm = *run_.lm;
  int64_t sampled = 0;
  auto take = [&](Active& a, const Tensor& logits_f32, int64_t row) {
    const int64_t V = logits_f32.size(1);
    if (a.handle->first_token_s_ < 0)
      a.handle->first_token_s_ = std::chrono::duration<double>(Clock::now() - a.start).count();
    a.seq->on_logits({logits_f32.data<float>() + row * V, size_t(V)}, state_->lengths[size_t(a.slot)]);
    ++sampled;
    if (!a.seq->finished() && a.seq->restart()) lm.reset_slot(*state_, a.slot);
  };
  // One prefill chunk: the first (oldest) request still reading its prompt.
  for (auto& a : active) {
    if (a.seq->finished() || a.seq->pending.size() <= 1) continue;
    const size_t n = std::min(a.seq->pending.size(), size_t(o_.prefill_chunk));
    std::vector<int64_t> chunk(a.seq->pending.begin(), a.seq->pending.begin() + ptrdiff_t(n));
    Tensor logits = lm.decode_slots(*state_, {&a.slot, 1}, tensor(chunk, {1, int64_t(n)}));
    a.seq->pending.erase(a.seq->pending.begin(), a.seq->pending.begin() + ptrdiff_t(n));
    if (a.seq->pending.empty()) take(a, logits.to(DType::f32).to(Device{}).contiguous(), 0);
    break;
  }
  // One decode forward for every request waiting for exactly one token (a 1-token prompt included).
  std::vector<int64_t> rows, ids;
  std::vector<Active*> who;
  for (auto& a : active)
    if (!a.seq->finished() && a.seq->pending.size() == 1 && who.end() == std::find(who.begin(), who.end(), &a)) {
      rows.push_back(a.slot), ids.push_back(a.seq->pending[0]), who.push_back(&a);
    }
  if (!rows.empty()) {
    Tensor logits = lm.decode_slots(*state_, rows, tensor(ids, {int64_t(rows.size()), 1})).to(DType::f32).to(Device{}).contiguous();
    for (size_t i = 0; i < who.size(); ++i) take(*who[i], logits, int64_t(i));
  }
  std::lock_guard lock(m_);
  stats_.generated_tokens += sampled;
  ++stats_.steps;
}

}  // namespace loom::runtime
