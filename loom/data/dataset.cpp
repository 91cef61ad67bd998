#include "loom/data/dataset.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <numeric>

#include "loom/ops/creation.h"

namespace loom::data {

namespace {

void check_index(int64_t index, int64_t size, const char* who) {
  LOOM_CHECK(index >= 0 && index < size, who, ": index ", index, " is out of range for a dataset of ", size,
             " samples");
}

// Stacks same-shaped tensors with plain memcpy: collation runs on loader worker threads, where going through
// the backend would start OpenMP teams on every worker and oversubscribe the cores.
Tensor stack_samples(const std::vector<const Tensor*>& xs, const char* what) {
  const Tensor& ref = *xs[0];
  Shape shape = ref.shape();
  for (size_t i = 1; i < xs.size(); ++i) {
    LOOM_CHECK(xs[i]->shape() == shape && xs[i]->dtype() == ref.dtype(), "collate: ", what, " of sample ", i,
               " has shape ", xs[i]->shape(), " and dtype ", xs[i]->dtype(), " but sample 0 has shape ", shape,
               " and dtype ", ref.dtype(), " (resize or crop samples to one size before batching)");
  }
  shape.insert(shape.begin(), int64_t(xs.size()));
  Tensor out = make_tensor(shape, ref.dtype());
  const size_t bytes = size_t(ref.numel()) * itemsize(ref.dtype());
  char* dst = static_cast<char*>(out.raw_data());
  for (size_t i = 0; bytes && i < xs.size(); ++i) {
    Tensor c = xs[i]->is_contiguous() ? *xs[i] : xs[i]->contiguous();
    std::memcpy(dst + i * bytes, c.raw_data(), bytes);
  }
  return out;
}

// Rows `idx` of a contiguous tensor, copied into a fresh (B, ...) tensor.
Tensor gather_rows(const Tensor& t, std::span<const int64_t> idx, const char* who) {
  Shape shape = t.shape();
  const int64_t n = shape[0];
  shape[0] = int64_t(idx.size());
  Tensor out = make_tensor(shape, t.dtype());
  const size_t row = size_t(t.numel() / std::max<int64_t>(n, 1)) * itemsize(t.dtype());
  const char* src = static_cast<const char*>(t.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  for (size_t i = 0; i < idx.size(); ++i) {
    check_index(idx[i], n, who);
    if (row) std::memcpy(dst + i * row, src + size_t(idx[i]) * row, row);
  }
  return out;
}

}  // namespace

Batch default_collate(const std::vector<Example>& examples) {
  LOOM_CHECK(!examples.empty(), "collate: cannot make a batch of zero samples");
  std::vector<const Tensor*> data, target;
  const bool labelled = examples[0].target.defined();
  for (size_t i = 0; i < examples.size(); ++i) {
    LOOM_CHECK(examples[i].data.defined(), "collate: sample ", i, " has no data");
    LOOM_CHECK(examples[i].target.defined() == labelled, "collate: sample ", i,
               labelled ? " has no target but sample 0 has one" : " has a target but sample 0 has none");
    data.push_back(&examples[i].data);
    target.push_back(&examples[i].target);
  }
  Batch b;
  b.data = stack_samples(data, "data");
  if (labelled) b.target = stack_samples(target, "target");
  return b;
}

Batch Dataset::get_batch(std::span<const int64_t> indices) const {
  std::vector<Example> ex;
  ex.reserve(indices.size());
  for (int64_t i : indices) ex.push_back(get(i));
  return default_collate(ex);
}

// ---- TensorDataset

TensorDataset::TensorDataset(Tensor data, Tensor target) {
  LOOM_CHECK(data.defined() && data.dim() >= 1, "TensorDataset: data must have a first (sample) dimension");
  LOOM_CHECK(!target.defined() || (target.dim() >= 1 && target.size(0) == data.size(0)),
             "TensorDataset: data has ", data.size(0), " rows but target has shape ",
             target.defined() ? target.shape() : Shape{});
  // Contiguous copies without history: rows are then plain memory ranges for get_batch.
  data_ = data.detach().contiguous();
  if (target.defined()) target_ = target.detach().contiguous();
}

Example TensorDataset::get(int64_t index) const {
  check_index(index, size(), "TensorDataset");
  return {data_.select(0, index), target_.defined() ? target_.select(0, index) : Tensor()};
}

Batch TensorDataset::get_batch(std::span<const int64_t> indices) const {
  LOOM_CHECK(!indices.empty(), "TensorDataset: cannot make a batch of zero samples");
  Batch b;
  b.data = gather_rows(data_, indices, "TensorDataset");
  if (target_.defined()) b.target = gather_rows(target_, indices, "TensorDataset");
  return b;
}

// ---- ByteImageDataset

namespace {
// float(v) / 255 in float, exactly what torchvision's ToTensor computes, looked up instead of divided.
const float* byte_to_unit() {
  static const auto table = [] {
    std::array<float, 256> t{};
    for (int v = 0; v < 256; ++v) t[size_t(v)] = float(v) / 255.0f;
    return t;
  }();
  return table.data();
}
}  // namespace

ByteImageDataset::ByteImageDataset(Tensor images, Tensor labels) {
  LOOM_CHECK(images.defined() && images.dtype() == DType::u8 && images.dim() == 4,
             "ByteImageDataset: images must be u8 (N, C, H, W), got ",
             images.defined() ? images.shape() : Shape{}, " ", images.defined() ? images.dtype() : DType::u8);
  LOOM_CHECK(labels.defined() && labels.dim() == 1 && labels.size(0) == images.size(0),
             "ByteImageDataset: labels must have shape [", images.size(0), "], got ",
             labels.defined() ? labels.shape() : Shape{});
  images_ = images.contiguous();
  labels_ = labels.to(DType::i64).contiguous();
}

Example ByteImageDataset::get(int64_t index) const {
  Batch b = get_batch(std::span<const int64_t>(&index, 1));
  return {b.data.select(0, 0), b.target.select(0, 0)};
}

Batch ByteImageDataset::get_batch(std::span<const int64_t> indices) const {
  LOOM_CHECK(!indices.empty(), "ByteImageDataset: cannot make a batch of zero samples");
  Shape shape = images_.shape();
  const int64_t per = images_.numel() / std::max<int64_t>(shape[0], 1);
  shape[0] = int64_t(indices.size());
  Tensor out = make_tensor(shape, DType::f32);
  const uint8_t* src = images_.data<uint8_t>();
  float* dst = out.data<float>();
  const float* lut = byte_to_unit();
  for (size_t i = 0; i < indices.size(); ++i) {
    check_index(indices[i], size(), "ByteImageDataset");
    const uint8_t* s = src + indices[i] * per;
    float* d = dst + int64_t(i) * per;
    for (int64_t k = 0; k < per; ++k) d[k] = lut[s[k]];
  }
  return {out, gather_rows(labels_, indices, "ByteImageDataset")};
}

// ---- Subset, ConcatDataset, random_split

Subset::Subset(DatasetPtr base, std::vector<int64_t> indices) : base_(std::move(base)), indices_(std::move(indices)) {
  LOOM_CHECK(base_ != nullptr, "Subset: the base dataset is null");
  const int64_t n = base_->size();
  for (size_t i = 0; i < indices_.size(); ++i)
    LOOM_CHECK(indices_[i] >= 0 && indices_[i] < n, "Subset: index ", indices_[i], " (entry ", i,
               ") is out of range for a dataset of ", n, " samples");
}

Example Subset::get(int64_t index) const {
  check_index(index, size(), "Subset");
  return base_->get(indices_[size_t(index)]);
}

Batch Subset::get_batch(std::span<const int64_t> indices) const {
  std::vector<int64_t> mapped(indices.size());
  for (size_t i = 0; i < indices.size(); ++i) {
    check_index(indices[i], size(), "Subset");
    mapped[i] = indices_[size_t(indices[i])];
  }
  return base_->get_batch(mapped);
}

ConcatDataset::ConcatDataset(std::vector<DatasetPtr> parts) : parts_(std::move(parts)) {
  offsets_.push_back(0);
  for (size_t i = 0; i < parts_.size(); ++i) {
    LOOM_CHECK(parts_[i] != nullptr, "ConcatDataset: dataset ", i, " is null");
    offsets_.push_back(offsets_.back() + parts_[i]->size());
  }
}

Example ConcatDataset::get(int64_t index) const {
  check_index(index, size(), "ConcatDataset");
  // The part whose range holds index: the last offset <= index.
  const size_t p = size_t(std::upper_bound(offsets_.begin(), offsets_.end(), index) - offsets_.begin()) - 1;
  return parts_[p]->get(index - offsets_[p]);
}

void ConcatDataset::set_epoch(int64_t epoch) {
  for (auto& p : parts_) p->set_epoch(epoch);
}

std::vector<std::shared_ptr<Subset>> random_split(DatasetPtr dataset, const std::vector<int64_t>& lengths,
                                                  Generator& gen) {
  LOOM_CHECK(dataset != nullptr, "random_split: the dataset is null");
  int64_t total = 0;
  for (int64_t l : lengths) {
    LOOM_CHECK(l >= 0, "random_split: lengths must be non-negative, got ", Shape(lengths));
    total += l;
  }
  LOOM_CHECK(total == dataset->size(), "random_split: lengths ", Shape(lengths), " sum to ", total,
             " but the dataset has ", dataset->size(), " samples");
  Tensor perm = randperm(total, {.dtype = DType::i64}, &gen);
  const int64_t* p = perm.data<int64_t>();
  std::vector<std::shared_ptr<Subset>> out;
  int64_t off = 0;
  for (int64_t l : lengths) {
    out.push_back(std::make_shared<Subset>(dataset, std::vector<int64_t>(p + off, p + off + l)));
    off += l;
  }
  return out;
}

// ---- TransformDataset

uint64_t sample_seed(uint64_t base, int64_t epoch, int64_t index) {
  auto mix = [](uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  };
  return base ^ mix(mix(uint64_t(epoch)) ^ uint64_t(index));
}

TransformDataset::TransformDataset(DatasetPtr base, TransformFn transform, TransformOptions o)
    : base_(std::move(base)), transform_(std::move(transform)), opts_(std::move(o)) {
  LOOM_CHECK(base_ != nullptr, "TransformDataset: the base dataset is null");
}

Example TransformDataset::get(int64_t index) const {
  Example e = base_->get(index);
  Generator gen(sample_seed(opts_.seed, epoch_.load(), index));
  if (transform_) e.data = transform_(e.data, gen);
  if (opts_.target_transform && e.target.defined()) e.target = opts_.target_transform(e.target, gen);
  return e;
}

void TransformDataset::set_epoch(int64_t epoch) {
  epoch_.store(epoch);
  base_->set_epoch(epoch);
}

}  // namespace loom::data
