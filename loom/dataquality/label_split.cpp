#include "loom/dataquality/label_split.h"

#include "loom/core/error.h"

namespace loom::dataquality {

std::vector<int64_t> unlabelled_indices(int64_t n, const std::vector<int64_t>& labelled,
                                        const std::vector<int64_t>* truth, const char* who) {
  LOOM_CHECK(!labelled.empty(), who, ": no labelled samples");
  LOOM_CHECK(!truth || int64_t(truth->size()) == n, who, ": ", truth ? truth->size() : 0, " true labels for ", n,
             " samples");
  std::vector<char> is_labelled(size_t(n), 0);
  for (int64_t i : labelled) {
    LOOM_CHECK(i >= 0 && i < n, who, ": labelled index ", i, " is outside 0..", n - 1);
    is_labelled[size_t(i)] = 1;
  }
  std::vector<int64_t> unlabelled;
  for (int64_t i = 0; i < n; ++i)
    if (!is_labelled[size_t(i)]) unlabelled.push_back(i);
  return unlabelled;
}

}  // namespace loom::dataquality
