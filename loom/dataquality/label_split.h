// The labelled / unlabelled split that autolabel's two methods (rounds, FixMatch) start from: checks the labelled
// indices and the optional true labels against the dataset's size, and returns the other indices in order.
//   std::vector<int64_t> pool = dataquality::unlabelled_indices(n, labelled, truth, "fixmatch");
#pragma once
#include <cstdint>
#include <vector>

namespace loom::dataquality {

// Throws loom::Error (prefixed with `who`) when `labelled` is empty or holds an index outside 0..n-1, or when
// `truth` (may be null) does not hold n labels.
std::vector<int64_t> unlabelled_indices(int64_t n, const std::vector<int64_t>& labelled,
                                        const std::vector<int64_t>* truth, const char* who);

}  // namespace loom::dataquality
