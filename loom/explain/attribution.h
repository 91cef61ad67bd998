// Attributions for image classifiers: which input pixels a class score depends on.
//   Tensor s = explain::saliency(model, x, /*target=*/3);                        // |dF/dx|, shape of x
//   auto ig = explain::integrated_gradients(model, x, 3, explain::make_baseline(x, explain::Baseline::Blur),
//                                           {.steps = 64, .rule = explain::Quadrature::GaussLegendre});
//   ig.completeness_error;   // |sum(ig.attributions) - (F(x) - F(baseline))|
//   Tensor cam = explain::grad_cam(seq_model, x, 3);                              // (H, W), >= 0
//   Tensor occ = explain::occlusion(model, x, 3, {.window = 4, .stride = 2});   // (H, W) score drops
// x is one input without a batch dim, e.g. (C, H, W); F is the model's output (logit) for class `target`.
// All functions leave the model's parameters' .grad untouched and put the model in eval mode.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "loom/nn/container.h"

namespace loom::explain {

// |dF_target/dx| (PyTorch/Captum's Saliency with abs=True).
Tensor saliency(nn::Module& model, const Tensor& x, int64_t target);
// dF_target/dx for a batch of inputs (N, ...), one target per row: the building block of the others.
Tensor input_gradients(nn::Module& model, const Tensor& xs, const std::vector<int64_t>& targets,
                       std::vector<double>* scores = nullptr);

enum class Quadrature { RiemannLeft, RiemannRight, RiemannMiddle, RiemannTrapezoid, GaussLegendre };
Quadrature parse_quadrature(const std::string& name);  // riemann-left|right|middle|trapezoid, gauss-legendre
std::string to_string(Quadrature q);
// Nodes in [0, 1] and weights summing to 1 for integrating over the straight path (Captum's approximation
// methods). Gauss-Legendre with n nodes is exact for polynomials of degree 2n-1.
void quadrature(Quadrature q, int64_t n, std::vector<double>& alphas, std::vector<double>& weights);

enum class Baseline { Zeros, Blur, Mean };
Baseline parse_baseline(const std::string& name);  // zeros, blur, mean
// zeros: all 0; blur: a Gaussian blur of x (sigma in pixels); mean: each channel's mean value everywhere.
Tensor make_baseline(const Tensor& x, Baseline b, double blur_sigma = 5.0);

struct IntegratedGradientsOptions {
  int64_t steps = 64;
  Quadrature rule = Quadrature::GaussLegendre;
  int64_t batch_size = 32;  // path points per forward/backward pass
};
struct IntegratedGradients {
  Tensor attributions;          // (x - baseline) * the weighted mean gradient along the path; shape of x
  double score = 0;             // F(x)
  double baseline_score = 0;    // F(baseline)
  double sum = 0;               // sum of the attributions
  double completeness_error = 0;  // |sum - (F(x) - F(baseline))|
  double relative_error = 0;      // completeness_error / |F(x) - F(baseline)|
};
IntegratedGradients integrated_gradients(nn::Module& model, const Tensor& x, int64_t target, const Tensor& baseline,
                                         const IntegratedGradientsOptions& o = {});

// Grad-CAM (Selvaraju et al.) on layer `layer` of a Sequential (-1: the last Conv2d): ReLU(sum_k a_k A_k) with
// a_k the spatial mean of dF/dA_k, upsampled bilinearly to the input's (H, W). f32 (H, W).
Tensor grad_cam(nn::Sequential& model, const Tensor& x, int64_t target, int64_t layer = -1);
// The index of the last Conv2d in a Sequential; throws when it has none.
int64_t last_conv_layer(const nn::Sequential& model);

struct OcclusionOptions {
  int64_t window = 4, stride = 2;
  double fill = 0;  // the value written over the window (in the model's input space)
  int64_t batch_size = 64;
};
// For each pixel, the mean drop F(x) - F(x with a window over it) over the windows covering it: f32 (H, W).
Tensor occlusion(nn::Module& model, const Tensor& x, int64_t target, const OcclusionOptions& o = {});

// Spearman rank correlation of two equal-sized tensors' values (the randomisation sanity check uses it).
double spearman(const Tensor& a, const Tensor& b);

}  // namespace loom::explain
