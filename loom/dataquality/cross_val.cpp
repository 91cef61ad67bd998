#include "loom/dataquality/cross_val.h"

#include <algorithm>
#include <numeric>

#include "loom/core/generator.h"
#include "loom/ops/ops.h"

namespace loom::dataquality {

CrossValProbs cross_val_probs(data::DatasetPtr ds, const ModelFactory& make, const CrossValOptions& o) {
  const int64_t n = ds->size();
  LOOM_CHECK(o.folds >= 2, "cross-validation needs at least 2 folds, got ", o.folds);
  LOOM_CHECK(n >= o.folds, "cross-validation: ", n, " samples cannot make ", o.folds, " folds");
  // A seeded permutation dealt into folds of near-equal size.
  Generator g(o.seed);
  const std::vector<double> perm = randperm(n, {.dtype = DType::i64}, &g).tolist();
  CrossValProbs out;
  for (int64_t f = 0; f < o.folds; ++f) {
    std::vector<int64_t> train_idx, held;
    for (int64_t i = 0; i < n; ++i) (i % o.folds == f ? held : train_idx).push_back(int64_t(perm[size_t(i)]));
    auto model = make();
    ClassifierTraining t = o.training;
    t.seed = o.training.seed + uint64_t(f);
    fit_classifier(*model, std::make_shared<data::Subset>(ds, train_idx), t);
    auto held_ds = std::make_shared<data::Subset>(ds, held);
    const Tensor p = predict_probs(*model, held_ds);
    const int64_t k = p.size(1);
    if (out.num_classes == 0) out.num_classes = k, out.probs.assign(size_t(n * k), 0.0);
    LOOM_CHECK(k == out.num_classes, "cross-validation: fold ", f, " gave ", k, " classes, earlier folds ",
               out.num_classes);
    const std::vector<double> v = p.tolist();
    for (size_t r = 0; r < held.size(); ++r)
      std::copy(v.begin() + int64_t(r) * k, v.begin() + int64_t(r + 1) * k, out.probs.begin() + held[r] * k);
    if (o.on_fold) {
      const std::vector<int64_t> y = dataset_labels(held_ds);
      int64_t right = 0;
      for (size_t r = 0; r < held.size(); ++r) {
        const auto row = v.begin() + int64_t(r) * k;
        right += std::max_element(row, row + k) - row == y[r];
      }
      o.on_fold(f, o.folds, double(right) / double(held.size()));
    }
  }
  return out;
}

}  // namespace loom::dataquality
