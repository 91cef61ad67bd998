// The subsampled Gaussian's RDP (Mironov, Talwar, Zhang 2019, "Rényi Differential Privacy of the Sampled
// Gaussian Mechanism"): log A_α summed in log space. Integer α uses the finite binomial sum (their Eq. for
// integer orders); fractional α the two infinite series with erfc tails, summed until the terms fall below
// e^-30 — the same orders and stopping rule as Opacus, so ε agrees with it to the printed digits.
#include "loom/privacy/rdp.h"

#include <cmath>
#include <limits>

#include "loom/core/error.h"

namespace loom::privacy {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

double log_add(double a, double b) {
  if (a == -kInf) return b;
  if (b == -kInf) return a;
  const double hi = std::max(a, b), lo = std::min(a, b);
  return hi + std::log1p(std::exp(lo - hi));
}

// log(e^a - e^b) for a >= b; -inf when they are equal. a < b cannot happen for a valid series (the partial
// sums of A_α stay positive), so it is reported rather than silently clamped.
double log_sub(double a, double b) {
  LOOM_CHECK(a >= b, "rdp: log_sub of a larger term (", a, " < ", b, ")");
  if (b == -kInf) return a;
  if (a == b) return -kInf;
  return a + std::log1p(-std::exp(b - a));
}

// log(erfc(x)), accurate where erfc underflows (x > ~26): the asymptotic expansion of erfc.
double log_erfc(double x) {
  if (x < 25.0) return std::log(std::erfc(x));
  const double x2 = x * x;
  return -x2 - std::log(x) - 0.5 * std::log(M_PI) + std::log1p(-0.5 / x2 + 0.75 / (x2 * x2) - 1.875 / (x2 * x2 * x2));
}

double log_a_int(double q, double sigma, int64_t alpha) {
  double log_a = -kInf, log_binom = 0.0;  // log C(alpha, i), updated incrementally
  for (int64_t i = 0; i <= alpha; ++i) {
    if (i > 0) log_binom += std::log(double(alpha - i + 1)) - std::log(double(i));
    const double s = log_binom + double(i) * std::log(q) + double(alpha - i) * std::log1p(-q) +
                     double(i * i - i) / (2 * sigma * sigma);
    log_a = log_add(log_a, s);
  }
  return log_a;
}

double log_a_frac(double q, double sigma, double alpha) {
  double log_a0 = -kInf, log_a1 = -kInf;
  const double z0 = sigma * sigma * std::log(1 / q - 1) + 0.5;
  double log_coef = 0.0, sign = 1.0;  // log |C(alpha, i)| and its sign, by C(a, i+1) = C(a, i) (a - i) / (i + 1)
  for (int64_t i = 0; i < 100000; ++i) {
    if (i > 0) {
      const double f = (alpha - double(i - 1)) / double(i);
      if (f < 0) sign = -sign;
      log_coef += std::log(std::abs(f));
    }
    const double j = alpha - double(i), di = double(i);
    const double log_t0 = log_coef + di * std::log(q) + j * std::log1p(-q);
    const double log_t1 = log_coef + j * std::log(q) + di * std::log1p(-q);
    const double log_e0 = std::log(0.5) + log_erfc((di - z0) / (std::sqrt(2.0) * sigma));
    const double log_e1 = std::log(0.5) + log_erfc((z0 - j) / (std::sqrt(2.0) * sigma));
    const double log_s0 = log_t0 + (di * di - di) / (2 * sigma * sigma) + log_e0;
    const double log_s1 = log_t1 + (j * j - j) / (2 * sigma * sigma) + log_e1;
    if (sign > 0) {
      log_a0 = log_add(log_a0, log_s0);
      log_a1 = log_add(log_a1, log_s1);
    } else {
      log_a0 = log_sub(log_a0, log_s0);
      log_a1 = log_sub(log_a1, log_s1);
    }
    if (std::max(log_s0, log_s1) < -30) break;
  }
  return log_add(log_a0, log_a1);
}

}  // namespace

const std::vector<double>& default_orders() {
  static const std::vector<double> orders = [] {
    std::vector<double> o;
    for (int x = 1; x < 100; ++x) o.push_back(1.0 + x / 10.0);
    for (int a = 12; a < 64; ++a) o.push_back(a);
    return o;
  }();
  return orders;
}

double rdp_step(double q, double sigma, double alpha) {
  LOOM_CHECK(q >= 0 && q <= 1, "rdp: sample rate must be in [0, 1], got ", q);
  LOOM_CHECK(sigma >= 0, "rdp: noise multiplier must be >= 0, got ", sigma);
  LOOM_CHECK(alpha > 1, "rdp: order must be > 1, got ", alpha);
  if (q == 0) return 0;
  if (sigma == 0) return kInf;
  if (q == 1) return alpha / (2 * sigma * sigma);
  const double log_a = alpha == std::floor(alpha) ? log_a_int(q, sigma, int64_t(alpha)) : log_a_frac(q, sigma, alpha);
  return log_a / (alpha - 1);
}

std::pair<double, double> rdp_to_epsilon(const std::vector<double>& orders, const std::vector<double>& rdp,
                                         double delta, Conversion conv) {
  LOOM_CHECK(orders.size() == rdp.size() && !orders.empty(), "rdp: ", orders.size(), " orders but ", rdp.size(),
             " RDP values");
  LOOM_CHECK(delta > 0 && delta < 1, "rdp: delta must be in (0, 1), got ", delta);
  double best = kInf, best_order = std::nan("");
  for (size_t k = 0; k < orders.size(); ++k) {
    const double a = orders[k];
    const double eps = conv == Conversion::Classic
                           ? rdp[k] - std::log(delta) / (a - 1)
                           : rdp[k] - (std::log(delta) + std::log(a)) / (a - 1) + std::log((a - 1) / a);
    if (!std::isnan(eps) && eps < best) best = eps, best_order = a;
  }
  return {best, best_order};
}

RdpAccountant::RdpAccountant(std::vector<double> orders) : orders_(std::move(orders)), rdp_(orders_.size(), 0.0) {}

void RdpAccountant::step(double sigma, double q, int64_t steps) {
  LOOM_CHECK(steps >= 0, "rdp: steps must be >= 0, got ", steps);
  for (size_t k = 0; k < orders_.size(); ++k) rdp_[k] += double(steps) * rdp_step(q, sigma, orders_[k]);
  steps_ += steps;
}

void RdpAccountant::restore(const std::vector<double>& rdp, int64_t steps) {
  LOOM_CHECK(rdp.size() == orders_.size(), "rdp: the saved state has ", rdp.size(), " orders, this accountant ",
             orders_.size());
  LOOM_CHECK(steps >= 0, "rdp: the saved state has ", steps, " steps (must be >= 0)");
  for (double v : rdp) LOOM_CHECK(std::isfinite(v) && v >= 0, "rdp: the saved state holds RDP ", v, " (must be finite, >= 0)");
  rdp_ = rdp;
  steps_ = steps;
}

double epsilon_for(double sigma, double q, int64_t steps, double delta, Conversion conv) {
  RdpAccountant acc;
  acc.step(sigma, q, steps);
  return acc.epsilon(delta, conv);
}

double noise_for_epsilon(double target_epsilon, double delta, double q, int64_t steps) {
  LOOM_CHECK(target_epsilon > 0, "noise_for_epsilon: target epsilon must be > 0, got ", target_epsilon);
  double lo = 0.0, hi = 10.0;
  while (epsilon_for(hi, q, steps, delta) > target_epsilon) {
    hi *= 2;
    LOOM_CHECK(hi <= 1e4, "noise_for_epsilon: no noise multiplier up to 1e4 reaches epsilon ", target_epsilon,
               " at delta ", delta, ", sample rate ", q, ", ", steps, " steps");
  }
  while (hi - lo > 1e-3 * hi) {  // ε falls as σ grows: bisect for the smallest σ that is enough
    const double mid = 0.5 * (lo + hi);
    (epsilon_for(mid, q, steps, delta) > target_epsilon ? lo : hi) = mid;
  }
  return hi;
}

}  // namespace loom::privacy
