// Federated averaging: partitions, secure aggregation's masks cancelling, FedSGD equal to a full-batch step,
// weighting by data size, client-level clipping, and FedAvg beating FedSGD in rounds on non-IID shards.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "loom/loom.h"
#include "loom/privacy/fedavg.h"
#include "loom/privacy/partition.h"
#include "loom/privacy/secure_agg.h"

using namespace loom;
using namespace loom::privacy;

namespace {

std::vector<int64_t> sorted_labels(int64_t classes, int64_t per_class) {
  std::vector<int64_t> l;
  for (int64_t i = 0; i < classes * per_class; ++i) l.push_back(i % classes);  // interleaved on purpose
  return l;
}

void expect_disjoint_cover(const Partition& p, int64_t n, bool all = true) {
  std::set<int64_t> seen;
  for (const auto& c : p)
    for (int64_t i : c) EXPECT_TRUE(seen.insert(i).second) << "sample " << i << " given twice";
  if (all) EXPECT_EQ(int64_t(seen.size()), n);
}

// Gaussian blobs: 10 classes in 16 dims, the class means well apart.
std::shared_ptr<data::TensorDataset> blobs(int64_t n, uint64_t seed) {
  Generator g(seed);
  Tensor means = randn({10, 16}, {}, &g) * 1.5;
  Tensor y = randint(0, 10, {n}, {.dtype = DType::i64}, &g);
  Tensor x = means.index_select(0, y) + randn({n, 16}, {}, &g);
  return std::make_shared<data::TensorDataset>(x, y);
}

std::shared_ptr<nn::Sequential> small_mlp() {
  auto m = std::make_shared<nn::Sequential>();
  m->push_back(nn::Linear({.in = 16, .out = 32}));
  m->push_back(nn::ReLU());
  m->push_back(nn::Linear({.in = 32, .out = 10}));
  return m;
}

double accuracy(nn::Module& m, data::TensorDataset& ds) {
  std::vector<int64_t> idx(size_t(ds.size()));
  std::iota(idx.begin(), idx.end(), 0);
  auto b = ds.get_batch(idx);
  NoGradGuard ng;
  return (m(b.data).argmax(1) == b.target).to(DType::f32).mean().item();
}

std::vector<int64_t> labels_of(data::TensorDataset& ds) {
  std::vector<int64_t> idx(size_t(ds.size()));
  std::iota(idx.begin(), idx.end(), 0);
  std::vector<int64_t> l;
  for (double v : ds.get_batch(idx).target.tolist()) l.push_back(int64_t(v));
  return l;
}

}  // namespace

TEST(Partition, IidShardsAndDirichlet) {
  const auto labels = sorted_labels(10, 100);
  Generator g(1);
  const auto iid = partition_iid(1000, 10, g);
  expect_disjoint_cover(iid, 1000);
  for (const auto& c : iid) EXPECT_EQ(c.size(), 100u);
  const auto sh = partition_shards(labels, 10, 2, g);
  expect_disjoint_cover(sh, 1000);
  for (const auto& c : sh) {
    std::set<int64_t> cls;
    for (int64_t i : c) cls.insert(labels[size_t(i)]);
    EXPECT_LE(cls.size(), 2u);  // shards of 50 lie inside one class of 100
    EXPECT_EQ(c.size(), 100u);
  }
  const auto dir = partition_dirichlet(labels, 10, 0.1, g);
  expect_disjoint_cover(dir, 1000);
  // Strong skew at alpha 0.1: on average a client's most common class is about half its data or more
  // (an iid client's is about 15%).
  auto top_share = [&](const Partition& p) {
    double s = 0;
    int64_t k = 0;
    for (const auto& c : p) {
      if (c.empty()) continue;
      std::vector<int64_t> cnt(10);
      for (int64_t i : c) ++cnt[size_t(labels[size_t(i)])];
      s += double(*std::max_element(cnt.begin(), cnt.end())) / double(c.size()), ++k;
    }
    return s / double(k);
  };
  EXPECT_GT(top_share(dir), 0.45);
  EXPECT_LT(top_share(iid), 0.25);
  Generator a(3), b(3);
  EXPECT_EQ(partition_dirichlet(labels, 10, 0.5, a), partition_dirichlet(labels, 10, 0.5, b));
  EXPECT_THROW(make_partition("shards:x", labels, 10, g), Error);
  EXPECT_THROW(make_partition("bogus", labels, 10, g), Error);
  EXPECT_THROW(partition_shards(labels, 1000, 2, g), Error);
}

TEST(SecureAggregation, MasksCancelInTheSumAndHideEachValue) {
  SecureAggregation sa(5, 42);
  const std::vector<int64_t> who = {0, 2, 3, 4};
  auto vals_unused = [] { return ones({1000}); };
  Tensor sum_shares = zeros({1000}, {.dtype = DType::i64});
  Tensor plain = zeros({1000}, {.dtype = DType::f64});  // the exact sum, to compare the masked one with
  for (int64_t c : who) {
    Tensor v = randn({1000}) * 3;
    Tensor share = sa.mask(c, 7, v, who);
    // A share alone looks nothing like its value.
    const Tensor alone = SecureAggregation::unmask(share);
    EXPECT_GT((alone - v).abs().mean().item(), 1000.0);
    sum_shares.add_(share);
    plain.add_(v.double_());
  }
  const auto got = SecureAggregation::unmask(sum_shares).tolist(), want = plain.tolist();
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 4 * std::ldexp(1.0, -24) + 1e-6 * std::abs(want[i]));
  // Another round uses other masks.
  EXPECT_NE(sa.mask(0, 7, vals_unused(), who).tolist(), sa.mask(0, 8, vals_unused(), who).tolist());
}

TEST(FedAvg, FedSgdWithAllClientsIsOneFullBatchStep) {
  // E = 1, B = all, every client: the data-size-weighted average of the clients' single gradient steps is one
  // gradient step on the union of their data (cross-entropy means weighted by n_k / n).
  manual_seed(2);
  auto ds = blobs(300, 5);
  auto m = small_mlp(), ref = small_mlp();
  ref->load_state_dict(m->state_dict());
  Partition parts = {{}, {}, {}};
  for (int64_t i = 0; i < 300; ++i) parts[size_t(i < 50 ? 0 : i < 170 ? 1 : 2)].push_back(i);
  FedAvg fed(*m, ds, parts, {.fraction = 1.0, .local_epochs = 1, .local_batch = 0, .lr = 0.3});
  fed.round();
  std::vector<int64_t> all(300);
  std::iota(all.begin(), all.end(), 0);
  auto b = ds->get_batch(all);
  cross_entropy((*ref)(b.data), b.target).backward();
  auto pa = m->parameters(), pb = ref->parameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    const auto x = pa[i].tolist(), y = (pb[i].detach() - pb[i].grad() * 0.3).tolist();
    for (size_t k = 0; k < x.size(); ++k) EXPECT_NEAR(x[k], y[k], 2e-5);
  }
}

TEST(FedAvg, SecureAggregationGivesTheSameAverage) {
  auto ds = blobs(400, 6);
  Generator g(4);
  auto parts = partition_shards(labels_of(*ds), 8, 2, g);
  manual_seed(3);
  auto a = small_mlp(), b = small_mlp();
  b->load_state_dict(a->state_dict());
  FedAvg plain(*a, ds, parts, {.fraction = 0.5, .local_epochs = 2, .local_batch = 10, .lr = 0.1, .seed = 9});
  FedAvg masked(*b, ds, parts,
                {.fraction = 0.5, .local_epochs = 2, .local_batch = 10, .lr = 0.1, .secure_aggregation = true, .seed = 9});
  for (int r = 0; r < 3; ++r) {
    auto s1 = plain.round(), s2 = masked.round();
    EXPECT_EQ(s1.clients, s2.clients);
    EXPECT_EQ(s2.bytes_up, 2 * s1.bytes_up);  // i64 shares
  }
  auto pa = a->parameters(), pb = b->parameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    const auto x = pa[i].tolist(), y = pb[i].tolist();
    for (size_t k = 0; k < x.size(); ++k) EXPECT_NEAR(x[k], y[k], 1e-5);
  }
}

TEST(FedAvg, ClientLevelClippingBoundsTheUpdate) {
  auto ds = blobs(200, 7);
  Generator g(5);
  auto parts = partition_iid(200, 4, g);
  manual_seed(4);
  auto m = small_mlp();
  FedAvg fed(*m, ds, parts, {.fraction = 1.0, .local_epochs = 3, .local_batch = 5, .lr = 0.5, .client_clip = 0.01});
  fed.round();
  double sq = 0;
  for (auto& u : fed.last_update()) sq += u.pow(2.0).sum().item();
  EXPECT_LE(std::sqrt(sq), 0.01 * (1 + 1e-4));
  EXPECT_GT(std::sqrt(sq), 0.005);  // the clients agree enough that the average is not tiny
  EXPECT_THROW(FedAvg(*m, ds, parts, {.client_noise = 1.0}), Error);
}

TEST(FedAvg, FewerRoundsThanFedSgdOnNonIidShards) {
  // The comparison in miniature: 20 clients holding 2 label-sorted shards each, 5 per round.
  // FedAvg (E = 5, B = 10) against FedSGD (E = 1, B = all) at the same learning rate: rounds to 85% test accuracy.
  auto train = blobs(2000, 11), test = blobs(1000, 11);
  Generator g(6);
  auto parts = partition_shards(labels_of(*train), 20, 2, g);
  auto rounds_to = [&](int64_t e, int64_t b, int64_t max_rounds) {
    manual_seed(5);
    auto m = small_mlp();
    FedAvg fed(*m, train, parts, {.fraction = 0.25, .local_epochs = e, .local_batch = b, .lr = 0.05, .seed = 1});
    for (int64_t r = 1; r <= max_rounds; ++r) {
      fed.round();
      if (accuracy(*m, *test) >= 0.85) return r;
    }
    return max_rounds + 1;
  };
  const int64_t fedavg = rounds_to(5, 10, 60), fedsgd = rounds_to(1, 0, 400);
  RecordProperty("fedavg_rounds", int(fedavg));
  RecordProperty("fedsgd_rounds", int(fedsgd));
  std::cout << "rounds to 85%: FedAvg " << fedavg << ", FedSGD " << fedsgd << "\n";
  EXPECT_LE(fedavg, 60);
  EXPECT_GE(fedsgd, 5 * fedavg);
}
