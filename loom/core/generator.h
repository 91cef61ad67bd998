// A seedable random generator (mt19937_64), like torch.Generator. Its state serialises to a string so
// training checkpoints can resume the exact random stream.
//   loom::manual_seed(0);  Tensor x = loom::randn({3});      // default generator
//   loom::Generator g(42); Tensor y = loom::rand({3}, {}, &g);
#pragma once
#include <cstdint>
#include <random>
#include <string>

namespace loom {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0x5eed) { manual_seed(seed); }
  void manual_seed(uint64_t seed) { eng_.seed(seed); seed_ = seed; has_spare_ = false; }
  uint64_t initial_seed() const { return seed_; }
  uint64_t next_u64() { return eng_(); }
  // Uniform in [0, 1) with 53 random bits.
  double next_double() { return double(eng_() >> 11) * 0x1.0p-53; }
  // Standard normal (Box-Muller; the second value is kept for the next call).
  double next_normal();
  std::string get_state() const;
  void set_state(const std::string& s);

 private:
  std::mt19937_64 eng_;
  uint64_t seed_ = 0;
  bool has_spare_ = false;
  double spare_ = 0;
};

Generator& default_generator();
inline void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace loom
