// How federated clients' data is split (McMahan et al. 2017; Hsu et al. 2019 for Dirichlet label skew).
//   Generator g(0);
//   auto iid    = privacy::partition_iid(60000, 100, g);            // 600 random samples each
//   auto shards = privacy::partition_shards(labels, 100, 2, g);     // label-sorted, 2 shards of 300 each
//   auto dir    = privacy::partition_dirichlet(labels, 100, 0.5, g);
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "loom/core/generator.h"

namespace loom::privacy {

using Partition = std::vector<std::vector<int64_t>>;  // client -> sample indices

Partition partition_iid(int64_t n, int64_t clients, Generator& gen);
// Sorts samples by label, cuts them into clients * shards_per_client equal shards and deals each client
// shards_per_client of them at random: most clients see only 2 classes.
Partition partition_shards(const std::vector<int64_t>& labels, int64_t clients, int64_t shards_per_client,
                           Generator& gen);
// For each class, proportions over the clients drawn from Dirichlet(alpha): small alpha, strong skew.
Partition partition_dirichlet(const std::vector<int64_t>& labels, int64_t clients, double alpha, Generator& gen);
// "iid", "shards:K" or "dirichlet:ALPHA"; throws naming the spec when it is none of those.
Partition make_partition(const std::string& spec, const std::vector<int64_t>& labels, int64_t clients,
                         Generator& gen);

}  // namespace loom::privacy
