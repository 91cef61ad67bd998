#include "loom/explain/attribution.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "loom/autograd/grad_mode.h"
#include "loom/data/transforms.h"
#include "loom/nn/conv_layers.h"
#include "loom/ops/ops.h"

namespace loom::explain {

namespace {

// Turns off requires_grad on the model's parameters for the scope (so attributions never touch their .grad)
// and puts the model in eval mode; restores both after.
class FrozenModel {
 public:
  explicit FrozenModel(nn::Module& m) : m_(m), training_(m.is_training()), params_(m.parameters()) {
    for (auto& p : params_) flags_.push_back(p.requires_grad()), p.requires_grad_(false);
    m_.eval();
  }
  ~FrozenModel() {
    for (size_t i = 0; i < params_.size(); ++i) params_[i].requires_grad_(flags_[i]);
    m_.train(training_);
  }

 private:
  nn::Module& m_;
  bool training_;
  std::vector<Tensor> params_;
  std::vector<bool> flags_;
};

// sum_i out[i, targets[i]]: one backward gives every row's own gradient.
Tensor picked(const Tensor& out, const std::vector<int64_t>& targets) {
  LOOM_CHECK(out.dim() == 2, "explanations need a classifier's (N, classes) output, got ", out.shape());
  for (int64_t t : targets)
    LOOM_CHECK(t >= 0 && t < out.size(1), "target class ", t, " is outside 0..", out.size(1) - 1);
  const Tensor onehot = one_hot(tensor(targets, {int64_t(targets.size())}), out.size(1)).to(out.dtype());
  return (out * onehot).sum({1});
}

std::vector<double> scores_of(nn::Module& model, const Tensor& xs, const std::vector<int64_t>& targets) {
  NoGradGuard g;
  return picked(model(xs), targets).tolist();
}

}  // namespace

Tensor input_gradients(nn::Module& model, const Tensor& xs, const std::vector<int64_t>& targets,
                       std::vector<double>* scores) {
  LOOM_CHECK(int64_t(targets.size()) == xs.size(0), "input_gradients: ", xs.size(0), " inputs but ", targets.size(),
             " targets");
  FrozenModel frozen(model);
  Tensor x = xs.detach().contiguous().requires_grad_(true);
  Tensor s = picked(model(x), targets);
  if (scores) *scores = s.detach().tolist();
  s.sum().backward();
  return x.grad().detach();
}

Tensor saliency(nn::Module& model, const Tensor& x, int64_t target) {
  return input_gradients(model, x.unsqueeze(0), {target}).squeeze(0).abs();
}

Quadrature parse_quadrature(const std::string& s) {
  if (s == "riemann-left") return Quadrature::RiemannLeft;
  if (s == "riemann-right" || s == "riemann") return Quadrature::RiemannRight;
  if (s == "riemann-middle") return Quadrature::RiemannMiddle;
  if (s == "riemann-trapezoid") return Quadrature::RiemannTrapezoid;
  if (s == "gauss-legendre") return Quadrature::GaussLegendre;
  LOOM_CHECK(false, "unknown integration rule '", s,
             "' (riemann-left, riemann-right, riemann-middle, riemann-trapezoid or gauss-legendre)");
  return Quadrature::GaussLegendre;
}

std::string to_string(Quadrature q) {
  switch (q) {
    case Quadrature::RiemannLeft: return "riemann-left";
    case Quadrature::RiemannRight: return "riemann-right";
    case Quadrature::RiemannMiddle: return "riemann-middle";
    case Quadrature::RiemannTrapezoid: return "riemann-trapezoid";
    default: return "gauss-legendre";
  }
}

void quadrature(Quadrature q, int64_t n, std::vector<double>& a, std::vector<double>& w) {
  LOOM_CHECK(n >= 1 && n <= 100000, "integration steps must be in 1..100000, got ", n);
  a.assign(size_t(n), 0.0);
  w.assign(size_t(n), 1.0 / double(n));
  const double dn = double(n);
  switch (q) {
    case Quadrature::RiemannLeft:
      for (int64_t i = 0; i < n; ++i) a[size_t(i)] = double(i) / dn;
      break;
    case Quadrature::RiemannRight:
      for (int64_t i = 0; i < n; ++i) a[size_t(i)] = double(i + 1) / dn;
      break;
    case Quadrature::RiemannMiddle:
      for (int64_t i = 0; i < n; ++i) a[size_t(i)] = (double(i) + 0.5) / dn;
      break;
    case Quadrature::RiemannTrapezoid:  // n points 0..1 inclusive, halves at the ends
      if (n == 1) {
        a[0] = 0.5;
        break;
      }
      for (int64_t i = 0; i < n; ++i) {
        a[size_t(i)] = double(i) / (dn - 1);
        w[size_t(i)] = (i == 0 || i == n - 1 ? 0.5 : 1.0) / (dn - 1);
      }
      break;
    case Quadrature::GaussLegendre:
      // Roots of the Legendre polynomial P_n by Newton's method from Chebyshev guesses, mapped to [0, 1].
      for (int64_t i = 0; i < n; ++i) {
        double x = std::cos(M_PI * (double(i) + 0.75) / (dn + 0.5)), dp = 1;
        for (int it = 0; it < 100; ++it) {
          double p0 = 1, p1 = x;
          for (int64_t k = 2; k <= n; ++k) {
            const double p2 = ((2.0 * double(k) - 1) * x * p1 - (double(k) - 1) * p0) / double(k);
            p0 = p1, p1 = p2;
          }
          if (n == 1) p0 = 1, p1 = x;
          dp = dn * (x * p1 - p0) / (x * x - 1);
          const double dx = p1 / dp;
          x -= dx;
          if (std::abs(dx) < 1e-15) break;
        }
        // Recompute the derivative at the converged root for the weight 2 / ((1 - x^2) P_n'(x)^2).
        double p0 = 1, p1 = x;
        for (int64_t k = 2; k <= n; ++k) {
          const double p2 = ((2.0 * double(k) - 1) * x * p1 - (double(k) - 1) * p0) / double(k);
          p0 = p1, p1 = p2;
        }
        dp = n == 1 ? 1.0 : dn * (x * p1 - p0) / (x * x - 1);
        a[size_t(i)] = 0.5 * (1 - x);  // ascending along the path
        w[size_t(i)] = 0.5 * 2.0 / ((1 - x * x) * dp * dp);
      }
      break;
  }
}

Baseline parse_baseline(const std::string& s) {
  if (s == "zeros" || s == "zero") return Baseline::Zeros;
  if (s == "blur") return Baseline::Blur;
  if (s == "mean") return Baseline::Mean;
  LOOM_CHECK(false, "unknown baseline '", s, "' (zeros, blur or mean)");
  return Baseline::Zeros;
}

Tensor make_baseline(const Tensor& x, Baseline b, double sigma) {
  LOOM_CHECK(x.dim() == 3, "baselines are made for one (C, H, W) image, got ", x.shape());
  if (b == Baseline::Zeros) return zeros_like(x);
  const int64_t c = x.size(0), h = x.size(1), w = x.size(2);
  if (b == Baseline::Mean) return x.mean({1, 2}, true).expand(x.shape()).contiguous();
  LOOM_CHECK(sigma > 0, "blur sigma must be > 0, got ", sigma);
  // Separable Gaussian, edges clamped (so a blurred constant image stays that constant).
  const int64_t r = std::max<int64_t>(1, int64_t(std::ceil(3 * sigma)));
  std::vector<double> k(size_t(2 * r + 1));
  double ks = 0;
  for (int64_t i = -r; i <= r; ++i) ks += k[size_t(i + r)] = std::exp(-0.5 * double(i * i) / (sigma * sigma));
  for (double& v : k) v /= ks;
  std::vector<double> v = x.to(DType::f64).contiguous().tolist(), tmp(v.size());
  auto at = [&](std::vector<double>& img, int64_t ch, int64_t y, int64_t xx) -> double& {
    return img[size_t((ch * h + std::clamp<int64_t>(y, 0, h - 1)) * w + std::clamp<int64_t>(xx, 0, w - 1))];
  };
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t xx = 0; xx < w; ++xx) {
        double s = 0;
        for (int64_t i = -r; i <= r; ++i) s += k[size_t(i + r)] * at(v, ch, y, xx + i);
        tmp[size_t((ch * h + y) * w + xx)] = s;
      }
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t xx = 0; xx < w; ++xx) {
        double s = 0;
        for (int64_t i = -r; i <= r; ++i) s += k[size_t(i + r)] * at(tmp, ch, y + i, xx);
        v[size_t((ch * h + y) * w + xx)] = s;
      }
  return tensor(v, x.shape(), {.dtype = DType::f64}).to(x.dtype());
}

IntegratedGradients integrated_gradients(nn::Module& model, const Tensor& x, int64_t target, const Tensor& baseline,
                                         const IntegratedGradientsOptions& o) {
  LOOM_CHECK(baseline.shape() == x.shape(), "integrated gradients: the baseline's shape ", baseline.shape(),
             " differs from the input's ", x.shape());
  std::vector<double> alphas, weights;
  quadrature(o.rule, o.steps, alphas, weights);
  const Tensor diff = (x - baseline).contiguous();
  Tensor total = zeros_like(x);
  for (size_t s = 0; s < alphas.size(); s += size_t(std::max<int64_t>(1, o.batch_size))) {
    const size_t e = std::min(alphas.size(), s + size_t(std::max<int64_t>(1, o.batch_size)));
    std::vector<Tensor> pts;
    std::vector<double> w(weights.begin() + int64_t(s), weights.begin() + int64_t(e));
    for (size_t i = s; i < e; ++i) pts.push_back(baseline + diff * alphas[i]);
    const Tensor g = input_gradients(model, stack(pts, 0), std::vector<int64_t>(e - s, target));
    Shape ws{int64_t(e - s)};
    for (int64_t d = 0; d < x.dim(); ++d) ws.push_back(1);
    total = total + (g * tensor(w, ws, {.dtype = DType::f64}).to(g.dtype())).sum({0});
  }
  IntegratedGradients r;
  r.attributions = (diff * total).contiguous();
  {
    FrozenModel frozen(model);  // F in eval mode, as the gradients were taken
    const std::vector<double> f = scores_of(model, stack({x, baseline}, 0), {target, target});
    r.score = f[0], r.baseline_score = f[1];
  }
  r.sum = r.attributions.to(DType::f64).sum().item();
  r.completeness_error = std::abs(r.sum - (r.score - r.baseline_score));
  const double span = std::abs(r.score - r.baseline_score);
  r.relative_error = span > 0 ? r.completeness_error / span : (r.completeness_error > 0 ? INFINITY : 0.0);
  return r;
}

int64_t last_conv_layer(const nn::Sequential& model) {
  for (int64_t i = int64_t(model.size()) - 1; i >= 0; --i)
    if (std::dynamic_pointer_cast<nn::Conv2d>(model[i])) return i;
  LOOM_CHECK(false, "Grad-CAM needs a convolutional layer; this ", model.name(), " has none (use saliency, ",
             "integrated-gradients or occlusion)");
  return -1;
}

Tensor grad_cam(nn::Sequential& model, const Tensor& x, int64_t target, int64_t layer) {
  LOOM_CHECK(x.dim() == 3, "Grad-CAM takes one (C, H, W) image, got ", x.shape());
  if (layer < 0) layer = last_conv_layer(model);
  LOOM_CHECK(layer < int64_t(model.size()), "Grad-CAM: layer ", layer, " of a ", model.size(), "-layer model");
  FrozenModel frozen(model);
  Tensor a;
  {
    NoGradGuard g;
    a = x.unsqueeze(0);
    for (int64_t i = 0; i <= layer; ++i) a = (*model[i])(a);
  }
  LOOM_CHECK(a.dim() == 4, "Grad-CAM: layer ", layer, " gives ", a.shape(), ", not a (N, C, H, W) feature map");
  // The feature map becomes a leaf, so backward stops there and hands us dF/dA.
  a = a.detach().contiguous().requires_grad_(true);
  Tensor out = a;
  for (int64_t i = layer + 1; i < int64_t(model.size()); ++i) out = (*model[i])(out);
  picked(out, {target}).sum().backward();
  NoGradGuard g;
  const Tensor alpha = a.grad().mean({2, 3}, true);        // (1, K, 1, 1)
  Tensor cam = (a.detach() * alpha).sum({1}).relu();         // (1, h, w)
  return data::resize_bilinear(cam, x.size(1), x.size(2)).squeeze(0).to(DType::f32).contiguous();
}

Tensor occlusion(nn::Module& model, const Tensor& x, int64_t target, const OcclusionOptions& o) {
  LOOM_CHECK(x.dim() == 3, "occlusion takes one (C, H, W) image, got ", x.shape());
  LOOM_CHECK(o.window >= 1 && o.stride >= 1, "occlusion: window and stride must be >= 1");
  const int64_t h = x.size(1), w = x.size(2);
  FrozenModel frozen(model);
  const double base = scores_of(model, x.unsqueeze(0), {target})[0];
  std::vector<std::pair<int64_t, int64_t>> at;
  for (int64_t y = 0; y < h; y += o.stride)
    for (int64_t xx = 0; xx < w; xx += o.stride) at.push_back({y, xx});
  std::vector<double> sum(size_t(h * w), 0.0), cnt(size_t(h * w), 0.0);
  const Tensor xc = x.contiguous();
  for (size_t s = 0; s < at.size(); s += size_t(o.batch_size)) {
    const size_t e = std::min(at.size(), s + size_t(o.batch_size));
    std::vector<Tensor> xs;
    for (size_t i = s; i < e; ++i) {
      Tensor m = xc.clone();
      auto [y0, x0] = at[i];
      m.slice(1, y0, std::min(h, y0 + o.window)).slice(2, x0, std::min(w, x0 + o.window)).fill_(o.fill);
      xs.push_back(m);
    }
    const std::vector<double> f = scores_of(model, stack(xs, 0), std::vector<int64_t>(e - s, target));
    for (size_t i = s; i < e; ++i) {
      auto [y0, x0] = at[i];
      for (int64_t y = y0; y < std::min(h, y0 + o.window); ++y)
        for (int64_t xx = x0; xx < std::min(w, x0 + o.window); ++xx)
          sum[size_t(y * w + xx)] += base - f[i - s], cnt[size_t(y * w + xx)] += 1;
    }
  }
  for (size_t i = 0; i < sum.size(); ++i) sum[i] = cnt[i] > 0 ? sum[i] / cnt[i] : 0.0;
  return tensor(sum, {h, w});
}

double spearman(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = a.contiguous().tolist(), y = b.contiguous().tolist();
  LOOM_CHECK(x.size() == y.size() && x.size() >= 2, "spearman: sizes ", x.size(), " and ", y.size());
  auto ranks = [](const std::vector<double>& v) {
    std::vector<size_t> o(v.size());
    std::iota(o.begin(), o.end(), 0);
    std::stable_sort(o.begin(), o.end(), [&](size_t i, size_t j) { return v[i] < v[j]; });
    std::vector<double> r(v.size());
    for (size_t i = 0; i < o.size();) {  // ties share their mean rank
      size_t j = i;
      while (j + 1 < o.size() && v[o[j + 1]] == v[o[i]]) ++j;
      for (size_t q = i; q <= j; ++q) r[o[q]] = 0.5 * double(i + j);
      i = j + 1;
    }
    return r;
  };
  const std::vector<double> rx = ranks(x), ry = ranks(y);
  const double n = double(x.size()), mean = (n - 1) / 2;
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < rx.size(); ++i) {
    sxy += (rx[i] - mean) * (ry[i] - mean);
    sxx += (rx[i] - mean) * (rx[i] - mean);
    syy += (ry[i] - mean) * (ry[i] - mean);
  }
  return sxx > 0 && syy > 0 ? sxy / std::sqrt(sxx * syy) : 0.0;
}

}  // namespace loom::explain
