// Partitions use only loom's Generator (Fisher-Yates shuffles, Marsaglia-Tsang gamma draws) so a seed gives
// the same clients on every machine and every rank of an MPI job.
#include "loom/privacy/partition.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "loom/core/error.h"

namespace loom::privacy {

namespace {

void shuffle(std::vector<int64_t>& v, Generator& g) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[g.next_u64() % i]);
}

// Marsaglia and Tsang's method; alpha < 1 by the boost gamma(a) = gamma(a + 1) * U^(1/a).
double gamma_draw(double a, Generator& g) {
  if (a < 1) return gamma_draw(a + 1, g) * std::pow(std::max(g.next_double(), 1e-300), 1.0 / a);
  const double d = a - 1.0 / 3, c = 1 / std::sqrt(9 * d);
  for (;;) {
    double x, v;
    do {
      x = g.next_normal();
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const double u = g.next_double();
    if (std::log(std::max(u, 1e-300)) < 0.5 * x * x + d - d * v + d * std::log(v)) return d * v;
  }
}

void check_clients(int64_t n, int64_t clients) {
  LOOM_CHECK(clients >= 1, "partition: the number of clients must be >= 1, got ", clients);
  LOOM_CHECK(n >= clients, "partition: ", n, " samples cannot give each of ", clients, " clients one");
}

}  // namespace

Partition partition_iid(int64_t n, int64_t clients, Generator& gen) {
  check_clients(n, clients);
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), 0);
  shuffle(perm, gen);
  Partition p(static_cast<size_t>(clients));
  for (int64_t i = 0; i < n; ++i) p[size_t(i % clients)].push_back(perm[size_t(i)]);
  for (auto& c : p) std::sort(c.begin(), c.end());
  return p;
}

Partition partition_shards(const std::vector<int64_t>& labels, int64_t clients, int64_t shards_per_client,
                           Generator& gen) {
  const int64_t n = int64_t(labels.size()), shards = clients * shards_per_client;
  check_clients(n, clients);
  LOOM_CHECK(shards_per_client >= 1 && n >= shards, "partition shards:", shards_per_client, ": ", n,
             " samples cannot make ", shards, " shards");
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return labels[size_t(a)] < labels[size_t(b)]; });
  std::vector<int64_t> shard_ids(static_cast<size_t>(shards));
  std::iota(shard_ids.begin(), shard_ids.end(), 0);
  shuffle(shard_ids, gen);
  const int64_t size = n / shards;  // the remainder (< shards samples) is left out, as in McMahan et al.
  Partition p(static_cast<size_t>(clients));
  for (int64_t k = 0; k < shards; ++k) {
    auto& c = p[size_t(k / shards_per_client)];
    const int64_t s = shard_ids[size_t(k)];
    for (int64_t i = s * size; i < (s + 1) * size; ++i) c.push_back(order[size_t(i)]);
  }
  for (auto& c : p) std::sort(c.begin(), c.end());
  return p;
}

Partition partition_dirichlet(const std::vector<int64_t>& labels, int64_t clients, double alpha, Generator& gen) {
  check_clients(int64_t(labels.size()), clients);
  LOOM_CHECK(alpha > 0, "partition dirichlet: alpha must be > 0, got ", alpha);
  const int64_t classes = labels.empty() ? 0 : *std::max_element(labels.begin(), labels.end()) + 1;
  Partition p(static_cast<size_t>(clients));
  for (int64_t c = 0; c < classes; ++c) {
    std::vector<int64_t> idx;
    for (size_t i = 0; i < labels.size(); ++i)
      if (labels[i] == c) idx.push_back(int64_t(i));
    shuffle(idx, gen);
    std::vector<double> w(static_cast<size_t>(clients));
    double total = 0;
    for (auto& x : w) total += (x = gamma_draw(alpha, gen));
    // Cumulative cut points; a client may get none of a class (that is the skew).
    double acc = 0;
    size_t start = 0;
    for (int64_t k = 0; k < clients; ++k) {
      acc += w[size_t(k)] / total;
      const size_t end = k + 1 == clients ? idx.size() : std::min(idx.size(), size_t(std::llround(acc * double(idx.size()))));
      for (size_t i = start; i < end; ++i) p[size_t(k)].push_back(idx[i]);
      start = std::max(start, end);
    }
  }
  for (auto& c : p) std::sort(c.begin(), c.end());
  return p;
}

Partition make_partition(const std::string& spec, const std::vector<int64_t>& labels, int64_t clients,
                         Generator& gen) {
  if (spec == "iid") return partition_iid(int64_t(labels.size()), clients, gen);
  try {
    if (spec.starts_with("shards:")) return partition_shards(labels, clients, std::stoll(spec.substr(7)), gen);
    if (spec.starts_with("dirichlet:")) return partition_dirichlet(labels, clients, std::stod(spec.substr(10)), gen);
  } catch (const std::logic_error&) {
    // stoll/stod: not a number; reported below
  }
  LOOM_FAIL("partition: '", spec, "' is not iid, shards:K (K an integer) or dirichlet:ALPHA (a number)");
}

}  // namespace loom::privacy
