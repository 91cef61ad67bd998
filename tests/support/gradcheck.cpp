#include "gradcheck.h"

#include <cmath>
#include <sstream>

namespace loom::test {

Tensor rand64(const Shape& s, double lo, double hi, bool rg) {
  Tensor t = rand(s, {.dtype = DType::f64}) * (hi - lo) + lo;
  t = t.detach();
  if (rg) t.requires_grad_(true);
  return t;
}

GradcheckResult gradcheck(const Fn& f, std::vector<Tensor> inputs, double eps, double atol, double rtol) {
  GradcheckResult res;
  std::vector<bool> check(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    check[i] = inputs[i].defined() && inputs[i].requires_grad();
    if (inputs[i].defined() && is_floating(inputs[i].dtype())) {
      inputs[i] = inputs[i].detach().to(DType::f64).contiguous().clone();
      if (check[i]) inputs[i].requires_grad_(true);
    }
  }
  Tensor out0;
  {
    NoGradGuard g;
    out0 = f(inputs);
  }
  Generator gen(1234);
  Tensor R = rand(out0.shape(), {.dtype = DType::f64}, &gen) * 2.0 - 1.0;
  auto scalar = [&](const std::vector<Tensor>& in) { return sum(f(in).to(DType::f64) * R); };

  Tensor L = scalar(inputs);
  std::vector<Tensor> rg;
  for (size_t i = 0; i < inputs.size(); ++i) if (check[i]) rg.push_back(inputs[i]);
  if (rg.empty()) { res.ok = false; res.message = "gradcheck: no input requires grad"; return res; }
  if (!L.requires_grad()) { res.ok = false; res.message = "gradcheck: output does not require grad"; return res; }
  L.backward();

  std::ostringstream msg;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!check[i]) continue;
    Tensor x = inputs[i];
    Tensor analytic = x.grad().defined() ? x.grad() : zeros_like(x);
    std::vector<double> an = analytic.tolist();
    double* p = x.data<double>();
    for (int64_t k = 0; k < x.numel(); ++k) {
      const double orig = p[k];
      double lp, lm;
      {
        NoGradGuard g;
        p[k] = orig + eps;
        lp = scalar(inputs).item();
        p[k] = orig - eps;
        lm = scalar(inputs).item();
        p[k] = orig;
      }
      const double num = (lp - lm) / (2 * eps);
      if (!(std::abs(num - an[size_t(k)]) <= atol + rtol * std::abs(num))) {
        res.ok = false;
        msg << "input " << i << " (shape " << x.shape() << ") element " << k << ": numerical " << num << " vs analytical "
            << an[size_t(k)] << "\n";
        if (msg.str().size() > 2000) break;
      }
    }
  }
  res.message = msg.str();
  return res;
}

}  // namespace loom::test
