// The mask computations behind the pruning methods, as pure functions: the new mask of a tensor given its
// current one (ones when nothing is pruned yet), which is what each torch method's compute_mask returns inside a
// PruningContainer. prune.h applies them to modules; structured shrinking ranks channels with ln_norms.
//   Tensor m = compress::prune::l1_unstructured_mask(w, ones_like(w), 0.5);   // zeros on the smaller half
//   std::vector<double> norms = compress::prune::ln_norms(conv.weight, 2, 0); // one L2 norm per out channel
#pragma once
#include <vector>

#include "loom/compress/prune.h"

namespace loom::compress::prune {

// Prunes `amount` of the entries where mask == 1, smallest |t| first (the lower index first among equal ones).
Tensor l1_unstructured_mask(const Tensor& t, const Tensor& mask, const Amount& amount);
// Prunes `amount` of the entries where mask == 1: those with the largest of uniform draws from `gen`.
Tensor random_unstructured_mask(const Tensor& t, const Tensor& mask, const Amount& amount, Generator* gen);
// Prunes `amount` of the slices along `dim` that the mask does not already zero entirely: those of smallest
// L`n` norm of t over the other dims (the lower index first among equal norms).
Tensor ln_structured_mask(const Tensor& t, const Tensor& mask, const Amount& amount, double n, int64_t dim);

// The L`n` norm of each slice of t along `dim` over the other dims, computed in double; n as in ln_structured.
std::vector<double> ln_norms(const Tensor& t, double n, int64_t dim);
// The indices of the `keep` slices along dim with the largest L`n` norm, in increasing index order (what
// ln_structured keeps when pruning t.size(dim) - keep of them).
std::vector<int64_t> strongest_slices(const Tensor& t, int64_t keep, double n, int64_t dim);

}  // namespace loom::compress::prune
