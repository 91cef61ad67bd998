// Pruning with torch.nn.utils.prune's semantics: a pruned tensor `weight` becomes the parameter weight_orig and
// the buffer weight_mask, and every forward uses weight = weight_orig * weight_mask, so gradients reach
// weight_orig only through the mask and pruned entries stay zero while fine-tuning.
//   compress::prune::l1_unstructured(*fc, "weight", 0.3);     // the 30% of entries smallest in |w|
//   compress::prune::ln_structured(*conv, "weight", 0.5, 2, 0); // half the output channels, by L2 norm
//   compress::prune::remove(*fc, "weight");                     // permanent: weight is a plain parameter again
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "loom/core/generator.h"
#include "loom/nn/module.h"

namespace loom::compress::prune {

// How much to prune, as torch takes it: a fraction in [0, 1] of the entries (channels) still unpruned, rounded
// as Python's round() does (half to even: 0.5 of 5 entries is 2), or a count (at most the number unpruned).
class Amount {
 public:
  Amount(double fraction);  // NOLINT: implicit, as torch takes a float
  Amount(int count);        // NOLINT: implicit, as torch takes an int
  Amount(int64_t count);    // NOLINT
  // How many of `n` to prune; throws naming `what` when a count exceeds n.
  int64_t of(int64_t n, const std::string& what) const;

 private:
  bool is_count_ = false;
  double fraction_ = 0;
  int64_t count_ = 0;
};

// Each method prunes `module`'s parameter `name` (a floating-point tensor: "weight", "bias"). Pruning a tensor
// again composes as torch's PruningContainer does: the new amount applies to the entries (or, for
// ln_structured, the channels) not pruned yet, and the masks multiply. Scores are taken from the current
// effective tensor (weight_orig * weight_mask).
//
// Ties: torch's topk leaves the order of equal scores unspecified; loom prunes the lower index first among
// equal magnitudes (equal norms), so masks agree with torch whenever the scores at the cut differ.

// No entry pruned: only the weight_orig / weight_mask parametrisation (torch's prune.identity).
void identity(nn::Module& module, const std::string& name);
// The `amount` entries of smallest |w|.
void l1_unstructured(nn::Module& module, const std::string& name, Amount amount);
// `amount` entries chosen at random: the largest of uniform draws from `gen` (the global generator when null,
// so manual_seed makes it reproducible), as torch's random_unstructured draws rand_like and takes the top-k.
void random_unstructured(nn::Module& module, const std::string& name, Amount amount, Generator* gen = nullptr);
// Whole slices along `dim` (0: output channels of a Linear or Conv2d) with the smallest L`n` norm over the other
// dims; n is 1, 2, any p > 0, 0 (count of nonzeros) or +-infinity (max / min |w|).
void ln_structured(nn::Module& module, const std::string& name, Amount amount, double n, int64_t dim);
// A mask of the tensor's shape (zeros prune), multiplied into any existing mask.
void custom_from_mask(nn::Module& module, const std::string& name, const Tensor& mask);

// One tensor of global_unstructured.
struct Target {
  nn::Module* module = nullptr;
  std::string name;  // "weight"
};
// The `amount` entries of smallest |w| over all `targets` together (torch's global_unstructured with
// L1Unstructured): layers lose different fractions. Already-pruned entries are not counted again.
void global_unstructured(const std::vector<Target>& targets, Amount amount);

// Makes the pruning permanent: `name` becomes a plain parameter holding weight_orig * weight_mask (appended
// after the module's other parameters, as in torch), weight_orig / weight_mask and the hook go. Throws when
// the tensor is not pruned. An optimizer built on weight_orig must be rebuilt after this.
void remove(nn::Module& module, const std::string& name);
// A pruned model's state dict with the masks applied: every "X_orig" with an "X_mask" beside it becomes
// "X" = X_orig * X_mask, what the pruned model computes with; other entries are kept. For loading a pruned run
// into the plain model to evaluate or serve it (fine-tuning keeps the masks: custom_from_mask + load).
nn::StateDict fold_masks(const nn::StateDict& dict);
// Whether `module` or any module inside it holds a pruned tensor.
bool is_pruned(nn::Module& module);
// Whether `module`'s own tensor `name` is pruned (has weight_orig / weight_mask).
bool is_pruned(nn::Module& module, const std::string& name);

}  // namespace loom::compress::prune
