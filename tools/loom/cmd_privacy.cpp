// loom privacy: the (ε, δ) of DP-SGD from the RDP accountant (loom/privacy/rdp.h), or the noise for a target ε.
//   loom privacy --noise 1.3 --sample-rate 0.004 --steps 3750 --delta 1e-5
//   loom privacy --epsilon 3 --sample-rate 0.004 --epochs 15 --delta 1e-5 --json
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "loom/core/error.h"
#include "loom/privacy/rdp.h"

namespace loom::cli {

int cmd_privacy(const Argv& argv) {
  double noise = 0, q = 0, delta = 1e-5, epochs = 0, target = 0;
  int64_t steps = 0;
  bool json = false;
  std::string conversion = "balle";
  Args a("loom privacy", "The privacy spent by DP-SGD (Poisson sampling + Gaussian noise), by Renyi-DP accounting as\n"
                         "Opacus does it; or, with --epsilon, the smallest noise multiplier that stays within it.");
  const Range pos{.min = 0, .exclusive_min = true};
  a.option("--noise", &noise, "S", "noise multiplier sigma", {.min = 0});
  a.option("--sample-rate", &q, "Q", "probability that a sample is in a batch (batch size / dataset size)",
           {.min = 0, .max = 1, .exclusive_min = true});
  a.option("--steps", &steps, "N", "optimizer steps", {.min = 1});
  a.option("--epochs", &epochs, "E", "instead of --steps: E / Q steps", pos);
  a.option("--delta", &delta, "D", "delta (default 1e-5)", {.min = 0, .max = 1, .exclusive_min = true});
  a.option("--epsilon", &target, "E", "find the noise multiplier for this epsilon instead", pos);
  a.choice("--conversion", &conversion, {"balle", "classic"},
           "RDP to (eps, delta): balle (Opacus >= 1.0, default) or classic (Opacus 0.x, TF Privacy)");
  a.flag("--json", &json, "one JSON object");
  a.parse(argv);
  if (!a.given("--sample-rate")) throw UsageError("--sample-rate is required");
  if (a.given("--steps") == a.given("--epochs")) throw UsageError("give --steps or --epochs (one of them)");
  if (a.given("--noise") == a.given("--epsilon")) throw UsageError("give --noise (to get epsilon) or --epsilon (to get the noise)");
  if (epochs > 0) steps = std::max<int64_t>(1, int64_t(std::llround(epochs / q)));
  const auto conv = conversion == "classic" ? privacy::Conversion::Classic : privacy::Conversion::Balle;
  if (target > 0) {
    LOOM_CHECK(conv == privacy::Conversion::Balle, "--epsilon searches with the balle conversion only");
    noise = privacy::noise_for_epsilon(target, delta, q, steps);
  }
  privacy::RdpAccountant acc;
  acc.step(noise, q, steps);
  const double eps = acc.epsilon(delta, conv), order = acc.best_order(delta, conv);
  if (json) {
    std::cout << nlohmann::json{{"epsilon", eps}, {"delta", delta}, {"noise", noise}, {"sample_rate", q},
                                {"steps", steps}, {"order", order}, {"conversion", conversion}}.dump()
              << "\n";
  } else {
    char buf[256];
    std::snprintf(buf, sizeof buf, "epsilon = %.4f at delta = %g (RDP order %g, %s conversion): noise %.4f, sample "
                  "rate %g, %lld steps\n", eps, delta, order, conversion.c_str(), noise, q, (long long)steps);
    std::cout << buf;
  }
  return 0;
}

}  // namespace loom::cli
