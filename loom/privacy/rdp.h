// Rényi-DP accountant for the subsampled Gaussian mechanism (DP-SGD with Poisson sampling), the method of
// Mironov et al. 2019 as Opacus's `rdp` accountant uses it: the same orders and the same RDP -> (ε, δ) rule.
//   loom::privacy::RdpAccountant acc;  acc.step(1.3, 240.0 / 60000, 3750);
//   double eps = acc.epsilon(1e-5);                                 // ≈ 1.18
//   double sigma = loom::privacy::noise_for_epsilon(3.0, 1e-5, 0.004, 3750);
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

namespace loom::privacy {

// The orders α tried (Opacus's DEFAULT_ALPHAS): 1.1, 1.2, ..., 10.9, then 12, 13, ..., 63.
const std::vector<double>& default_orders();

// RDP of one step of the sampled Gaussian mechanism at order alpha: sample rate q, noise multiplier sigma.
double rdp_step(double q, double sigma, double alpha);

// How RDP becomes (ε, δ). Balle: Balle et al. 2020, Thm 21, ε = rdp - (log δ + log α)/(α-1) + log((α-1)/α),
// what Opacus >= 1.0 reports. Classic: Mironov 2017, Prop. 3, ε = rdp - log δ/(α-1), what Opacus 0.x and
// TF Privacy printed (the figures in older READMEs, e.g. Opacus's MNIST "ε = 1.18"); always a little larger.
enum class Conversion { Balle, Classic };

// Best (ε, α) from the RDP curve at delta (the minimum over the orders).
std::pair<double, double> rdp_to_epsilon(const std::vector<double>& orders, const std::vector<double>& rdp,
                                         double delta, Conversion conv = Conversion::Balle);

// Accumulates steps (of possibly different σ and q) and answers ε at any δ.
class RdpAccountant {
 public:
  explicit RdpAccountant(std::vector<double> orders = default_orders());
  void step(double sigma, double q, int64_t steps = 1);
  double epsilon(double delta, Conversion conv = Conversion::Balle) const {
    return rdp_to_epsilon(orders_, rdp_, delta, conv).first;
  }
  double best_order(double delta, Conversion conv = Conversion::Balle) const {
    return rdp_to_epsilon(orders_, rdp_, delta, conv).second;
  }
  int64_t steps() const { return steps_; }
  // The accumulated RDP at each order: with orders() and steps(), all a checkpoint needs to continue exactly.
  const std::vector<double>& orders() const { return orders_; }
  const std::vector<double>& rdp() const { return rdp_; }
  // Puts back a saved state (rdp over this accountant's orders, steps >= 0); throws naming what does not fit.
  void restore(const std::vector<double>& rdp, int64_t steps);

 private:
  std::vector<double> orders_, rdp_;
  int64_t steps_ = 0;
};

// ε after `steps` steps at (sigma, q), δ.
double epsilon_for(double sigma, double q, int64_t steps, double delta, Conversion conv = Conversion::Balle);
// The smallest σ (to 1e-3 relative) whose ε after `steps` steps is at most target_epsilon; throws loom::Error
// when even σ = 1e4 cannot reach it.
double noise_for_epsilon(double target_epsilon, double delta, double q, int64_t steps);

}  // namespace loom::privacy
