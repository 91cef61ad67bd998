#include "loom/core/generator.h"

#include <cmath>
#include <sstream>

#include "loom/core/error.h"

namespace loom {

double Generator::next_normal() {
  if (has_spare_) { has_spare_ = false; return spare_; }
  double u1 = next_double(), u2 = next_double();
  if (u1 < 1e-300) u1 = 1e-300;
  const double r = std::sqrt(-2.0 * std::log(u1)), th = 2.0 * M_PI * u2;
  spare_ = r * std::sin(th);
  has_spare_ = true;
  return r * std::cos(th);
}

std::string Generator::get_state() const {
  std::ostringstream os;
  os << seed_ << ' ' << has_spare_ << ' ';
  os.precision(17);
  os << std::hexfloat << spare_ << std::defaultfloat << ' ' << eng_;
  return os.str();
}

void Generator::set_state(const std::string& s) {
  std::istringstream is(s);
  std::string spare;
  is >> seed_ >> has_spare_ >> spare >> eng_;
  LOOM_CHECK(!is.fail(), "Generator::set_state: the state string is malformed");
  spare_ = std::strtod(spare.c_str(), nullptr);
}

Generator& default_generator() {
  static Generator g(0x5eed);
  return g;
}

}  // namespace loom
