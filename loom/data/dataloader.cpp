#include "loom/data/dataloader.h"

#include <condition_variable>
#include <exception>
#include <limits>
#include <map>
#include <mutex>
#include <thread>

#include "loom/autograd/grad_mode.h"

namespace loom::data {

// Computes batches first..end-1 on worker threads and hands them out strictly in order. Workers claim the
// next unclaimed batch number, so at most `window` batches are in flight or waiting; a batch's content
// depends only on its number, never on which thread made it.
class Prefetcher {
 public:
  using Fetch = std::function<std::optional<Batch>(int64_t)>;
  Prefetcher(Fetch fetch, int64_t first, int64_t end, int workers, int64_t window)
      : fetch_(std::move(fetch)), claim_(first), consumed_(first), end_(end), window_(window) {
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
  }
  ~Prefetcher() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    work_cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

  std::optional<Batch> next() {
    if (threads_.empty()) {  // no workers: make the batch here
      if (consumed_ >= end_) return std::nullopt;
      std::optional<Batch> b = fetch_(consumed_);
      if (b) ++consumed_;
      else end_ = consumed_;
      return b;
    }
    std::unique_lock lk(mu_);
    if (consumed_ >= end_) return std::nullopt;
    ready_cv_.wait(lk, [&] { return ready_.count(consumed_) > 0; });
    Slot s = std::move(ready_[consumed_]);
    ready_.erase(consumed_);
    if (s.error) {
      end_ = consumed_;  // the pass ends with the error; the caller may start a new one
      lk.unlock();
      work_cv_.notify_all();
      std::rethrow_exception(s.error);
    }
    if (!s.batch) {
      end_ = consumed_;
      return std::nullopt;
    }
    ++consumed_;
    lk.unlock();
    work_cv_.notify_all();
    return s.batch;
  }

 private:
  struct Slot {
    std::optional<Batch> batch;
    std::exception_ptr error;
  };

  void work() {
    // Samples are data, not graph inputs: no autograd history is recorded on workers.
    NoGradGuard no_grad;
    std::unique_lock lk(mu_);
    for (;;) {
      work_cv_.wait(lk, [&] { return stop_ || (claim_ < end_ && claim_ < consumed_ + window_); });
      if (stop_) return;
      const int64_t k = claim_++;
      lk.unlock();
      Slot s;
      try {
        s.batch = fetch_(k);
      } catch (...) {
        s.error = std::current_exception();
      }
      lk.lock();
      if (!s.batch && !s.error && k < end_) end_ = k;  // a stream ran out: nothing after k exists
      ready_[k] = std::move(s);
      ready_cv_.notify_all();
    }
  }

  Fetch fetch_;
  int64_t claim_, consumed_, end_, window_;
  bool stop_ = false;
  std::map<int64_t, Slot> ready_;
  std::mutex mu_;
  std::condition_variable work_cv_, ready_cv_;
  std::vector<std::thread> threads_;
};

DataLoader::DataLoader(DatasetPtr dataset, LoaderOptions o) : dataset_(std::move(dataset)), opts_(std::move(o)) {
  LOOM_CHECK(dataset_ != nullptr, "DataLoader: the dataset is null");
  LOOM_CHECK(opts_.batch_size > 0, "DataLoader: batch_size must be positive, got ", opts_.batch_size);
  LOOM_CHECK(opts_.num_workers >= 0, "DataLoader: num_workers must be >= 0, got ", opts_.num_workers);
  LOOM_CHECK(opts_.prefetch >= 1, "DataLoader: prefetch must be >= 1, got ", opts_.prefetch);
  SamplerPtr s = opts_.sampler;
  if (!s && opts_.shuffle) s = std::make_shared<RandomSampler>(dataset_->size(), opts_.seed);
  if (!s) s = std::make_shared<SequentialSampler>(dataset_->size());
  batcher_ = std::make_unique<BatchSampler>(s, opts_.batch_size, opts_.drop_last);
}

DataLoader::DataLoader(IterableDatasetPtr dataset, LoaderOptions o) : stream_(std::move(dataset)), opts_(std::move(o)) {
  LOOM_CHECK(stream_ != nullptr, "DataLoader: the dataset is null");
  LOOM_CHECK(opts_.batch_size > 0, "DataLoader: batch_size must be positive, got ", opts_.batch_size);
  LOOM_CHECK(opts_.num_workers >= 0, "DataLoader: num_workers must be >= 0, got ", opts_.num_workers);
  LOOM_CHECK(opts_.prefetch >= 1, "DataLoader: prefetch must be >= 1, got ", opts_.prefetch);
  LOOM_CHECK(!opts_.shuffle && !opts_.sampler, "DataLoader: shuffle and samplers need a random-access Dataset; "
             "an IterableDataset is read in its own order");
}

DataLoader::~DataLoader() = default;

void DataLoader::set_epoch(int64_t epoch) {
  LOOM_CHECK(epoch >= 0, "DataLoader::set_epoch: epoch must be >= 0, got ", epoch);
  next_epoch_ = epoch;
}

void DataLoader::begin_at(int64_t batch_index) {
  LOOM_CHECK(batch_index >= 0, "DataLoader::begin_at: batch index must be >= 0, got ", batch_index);
  start_at_ = batch_index;
}

int64_t DataLoader::num_batches() const { return batcher_ ? batcher_->num_batches() : -1; }

std::vector<int64_t> DataLoader::epoch_order(int64_t epoch) const {
  LOOM_CHECK(batcher_ != nullptr, "DataLoader::epoch_order: a stream has no index order");
  return batcher_->sampler()->indices(epoch);
}

std::optional<Batch> DataLoader::fetch(int64_t k) {
  if (dataset_) {
    const std::vector<int64_t>& idx = batches_[size_t(k)];
    if (!opts_.collate) return dataset_->get_batch(idx);
    std::vector<Example> ex;
    ex.reserve(idx.size());
    for (int64_t i : idx) ex.push_back(dataset_->get(i));
    return opts_.collate(ex);
  }
  // A stream is only ever read by one thread, batch after batch, so this runs in order.
  std::vector<Example> ex;
  while (int64_t(ex.size()) < opts_.batch_size) {
    std::optional<Example> e = stream_->next();
    if (!e) break;
    ex.push_back(std::move(*e));
  }
  if (ex.empty() || (opts_.drop_last && int64_t(ex.size()) < opts_.batch_size)) return std::nullopt;
  return opts_.collate ? opts_.collate(ex) : default_collate(ex);
}

const std::vector<int64_t>& DataLoader::batch_indices() const {
  LOOM_CHECK(dataset_ != nullptr, "DataLoader::batch_indices: a stream's samples have no index");
  LOOM_CHECK(batch_index_ >= 0 && batch_index_ < int64_t(batches_.size()),
             "DataLoader::batch_indices: no batch has been handed out in this pass");
  return batches_[size_t(batch_index_)];
}

DataLoader::Iterator DataLoader::begin() {
  run_.reset();  // joins the workers of an abandoned pass before its batches are replaced
  epoch_ = next_epoch_++;
  const int64_t first = start_at_;
  start_at_ = 0;
  batch_index_ = first;
  int64_t end = std::numeric_limits<int64_t>::max();
  int workers = opts_.num_workers;
  if (dataset_) {
    dataset_->set_epoch(epoch_);
    batches_ = batcher_->batches(epoch_);
    end = int64_t(batches_.size());
    LOOM_CHECK(first <= end, "DataLoader::begin_at: batch ", first, " is past the end of epoch ", epoch_, " (",
               end, " batches)");
  } else {
    stream_->start(epoch_);
    // Skipping a stream's first batches means reading them: it has no random access.
    for (int64_t skip = 0; skip < first * opts_.batch_size; ++skip)
      if (!stream_->next()) break;
    workers = std::min(workers, 1);
  }
  const int64_t window = int64_t(std::max(workers, 1)) * opts_.prefetch;
  run_ = std::make_unique<Prefetcher>([this](int64_t k) { return fetch(k); }, first, end, workers, window);
  Iterator it;
  it.loader_ = this;
  it.cur_ = run_->next();
  return it;
}

DataLoader::Iterator& DataLoader::Iterator::operator++() {
  cur_ = loader_->run_->next();
  if (cur_) ++loader_->batch_index_;
  return *this;
}

}  // namespace loom::data
