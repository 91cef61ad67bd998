// Secure aggregation with pairwise additive masks (Bonawitz et al. 2017, without dropout recovery): every pair
// of clients agrees on a key by X25519 (libsodium), expands it into a mask, and one adds it while the other
// subtracts it. Values are fixed point modulo 2^48, where a uniform mask hides a value completely, and the
// masks cancel exactly in the sum: the server learns the total and nothing about any one client.
//   SecureAggregation sa(/*clients=*/4, /*seed=*/7);
//   Tensor share = sa.mask(client, round, update_f32);   // what the client sends (i64)
//   Tensor total = sa.unmask(sum_of_shares);             // f32, equal to the sum of the updates (to 2^-24)
#pragma once
#include <cstdint>
#include <vector>

#include "loom/core/tensor.h"

namespace loom::privacy {

class SecureAggregation {
 public:
  static constexpr int kFracBits = 24;  // fixed point resolution 2^-24
  static constexpr int kModBits = 48;   // values live modulo 2^48; |total| must stay below 2^23
  // Each client's X25519 key pair is derived from (seed, client) so every process of a run agrees on them.
  SecureAggregation(int64_t clients, uint64_t seed);
  // Client `c`'s masked share of `value` for this round, with masks shared with the `participants` (the
  // clients selected this round, c among them).
  Tensor mask(int64_t c, int64_t round, const Tensor& value, const std::vector<int64_t>& participants) const;
  // Shares summed (as i64, in any order and by any means: a loop or an MPI all_reduce) back to f32.
  static Tensor unmask(const Tensor& summed_shares);

 private:
  std::vector<std::vector<unsigned char>> pk_, sk_;
};

}  // namespace loom::privacy
