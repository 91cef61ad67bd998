// One model object plays every client in turn: the global weights are kept aside, loaded before each client
// trains and restored after, so a simulated round needs one model's memory however many clients there are.
// Updates (local - global) are averaged rather than weights, which is the same average but lets client-level
// DP clip them and secure aggregation mask small numbers.
#include "loom/privacy/fedavg.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "loom/autograd/grad_mode.h"
#include "loom/nn/loss.h"
#include "loom/ops/ops.h"

namespace loom::privacy {

FedAvg::FedAvg(nn::Module& model, data::DatasetPtr train, Partition clients, FedAvgOptions o, dist::CommPtr comm)
    : model_(model), train_(std::move(train)), parts_(std::move(clients)), o_(o), comm_(std::move(comm)),
      gen_(o.seed) {
  LOOM_CHECK(!parts_.empty(), "fedavg: no clients");
  LOOM_CHECK(o.fraction > 0 && o.fraction <= 1, "fedavg: fraction must be in (0, 1], got ", o.fraction);
  LOOM_CHECK(o.local_epochs >= 1 && o.local_batch >= 0 && o.lr > 0, "fedavg: local epochs >= 1, batch >= 0, lr > 0");
  LOOM_CHECK(o.client_noise == 0 || o.client_clip > 0, "fedavg: client noise needs a client clip norm");
  for (const Tensor& p : model_.parameters())
    if (p.requires_grad()) params_.push_back(p);
  if (o.secure_aggregation) secure_ = std::make_unique<SecureAggregation>(int64_t(parts_.size()), o.seed ^ 0x5ec);
}

std::pair<double, int64_t> FedAvg::local_train(int64_t client, int64_t round) {
  const auto& idx = parts_[size_t(client)];
  if (idx.empty()) return {0.0, 0};
  // Each client shuffles with its own stream, so results do not depend on which rank simulates it.
  Generator g(o_.seed * 1000003ULL + uint64_t(round) * 7919ULL + uint64_t(client));
  const int64_t b = o_.local_batch > 0 ? o_.local_batch : int64_t(idx.size());
  double loss_sum = 0;
  int64_t steps = 0;
  std::vector<int64_t> order = idx;
  for (int64_t e = 0; e < o_.local_epochs; ++e) {
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[g.next_u64() % i]);
    for (size_t s = 0; s < order.size(); s += size_t(b)) {
      const size_t len = std::min(order.size() - s, size_t(b));
      const data::Batch batch = train_->get_batch(std::span<const int64_t>(order.data() + s, len));
      model_.zero_grad(true);
      Tensor loss = cross_entropy(model_(batch.data), batch.target);
      loss.backward();
      NoGradGuard ng;
      for (Tensor& p : params_)
        if (p.grad().defined()) p.sub_(p.grad(), o_.lr);
      loss_sum += loss.item();
      ++steps;
    }
  }
  return {loss_sum, steps};
}

RoundStats FedAvg::round() {
  RoundStats st;
  st.round = ++round_;
  const int64_t k = int64_t(parts_.size());
  const int64_t m = std::max<int64_t>(1, int64_t(std::llround(o_.fraction * double(k))));
  std::vector<int64_t> all(static_cast<size_t>(k));
  std::iota(all.begin(), all.end(), 0);
  for (int64_t i = 0; i < m; ++i) std::swap(all[size_t(i)], all[size_t(i + int64_t(gen_.next_u64() % uint64_t(k - i)))]);
  st.clients.assign(all.begin(), all.begin() + m);
  std::sort(st.clients.begin(), st.clients.end());
  double total = 0;
  for (int64_t c : st.clients) total += double(parts_[size_t(c)].size());
  LOOM_CHECK(total > 0, "fedavg: the clients selected in round ", st.round, " hold no data");

  const int rank = comm_ ? comm_->rank() : 0, world = comm_ ? comm_->world_size() : 1;
  std::vector<Tensor> global;
  for (const Tensor& p : params_) global.push_back(p.detach().clone());
  int64_t numel = 0;
  for (const Tensor& p : params_) numel += p.numel();
  // This rank's clients' contributions, flattened: f32 sums, or i64 masked shares under secure aggregation.
  Tensor acc = o_.secure_aggregation ? zeros({numel}, {.dtype = DType::i64}) : zeros({numel});
  double loss_sum = 0;
  int64_t loss_steps = 0;
  for (size_t j = 0; j < st.clients.size(); ++j) {
    if (int(j % size_t(world)) != rank) continue;
    const int64_t c = st.clients[j];
    auto [ls, ns] = local_train(c, st.round);
    loss_sum += ls, loss_steps += ns;
    NoGradGuard ng;
    std::vector<Tensor> flat;
    for (size_t i = 0; i < params_.size(); ++i) flat.push_back((params_[i] - global[i]).reshape({-1}));
    Tensor upd = cat(flat, 0);
    double w = double(parts_[size_t(c)].size()) / total;
    if (o_.client_clip > 0) {  // client-level DP: each client's update bounded, then uniformly weighted
      const double norm = upd.pow(2.0).sum().sqrt().item();
      upd = upd * std::min(1.0, o_.client_clip / (norm + 1e-12));
      w = 1.0 / double(m);
    }
    upd = upd * w;
    if (o_.secure_aggregation) {
      Tensor share = secure_->mask(c, st.round, upd, st.clients);
      acc.add_(share);
    } else {
      acc.add_(upd);
    }
    for (size_t i = 0; i < params_.size(); ++i) params_[i].copy_(global[i]);  // back to the global model
  }
  Tensor stats = tensor(std::vector<double>{loss_sum, double(loss_steps)});
  if (comm_) {
    comm_->all_reduce(acc);
    comm_->all_reduce(stats);
  }
  NoGradGuard ng;
  Tensor avg = o_.secure_aggregation ? SecureAggregation::unmask(acc) : acc;
  if (o_.client_noise > 0) {
    // The same noise on every rank (the server's draw, from the shared generator).
    Tensor noise = empty({numel});
    float* d = noise.data<float>();
    for (int64_t i = 0; i < numel; ++i) d[i] = float(gen_.next_normal() * o_.client_noise * o_.client_clip / double(m));
    avg = avg + noise;
  }
  last_update_.clear();
  int64_t off = 0;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor u = avg.narrow(0, off, params_[i].numel()).reshape(params_[i].shape());
    off += params_[i].numel();
    last_update_.push_back(u.clone());
    params_[i].copy_(global[i] + u);
  }
  const auto sv = stats.tolist();
  st.train_loss = sv[1] > 0 ? sv[0] / sv[1] : 0;
  st.bytes_down = m * numel * 4;
  st.bytes_up = m * numel * (o_.secure_aggregation ? 8 : 4);
  bytes_ += st.bytes_down + st.bytes_up;
  return st;
}

}  // namespace loom::privacy
