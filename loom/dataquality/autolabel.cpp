#include "loom/dataquality/autolabel.h"

#include <algorithm>
#include <map>

#include "loom/dataquality/label_split.h"
#include "loom/ops/ops.h"

namespace loom::dataquality {

AutolabelResult autolabel(data::DatasetPtr train, const std::vector<int64_t>& labelled, const ModelFactory& make,
                          const AutolabelOptions& o, data::DatasetPtr test, const std::vector<int64_t>* truth) {
  const int64_t n = train->size();
  LOOM_CHECK(o.threshold > 0 && o.threshold <= 1, "autolabel: threshold must be in (0, 1], got ", o.threshold);
  const std::vector<int64_t> unlabelled = unlabelled_indices(n, labelled, truth, "autolabel");
  const std::vector<int64_t> given = dataset_labels(std::make_shared<data::Subset>(train, labelled));

  AutolabelResult r;
  std::vector<int64_t> pseudo_idx, pseudo_lab;  // what the current model was trained on besides the labelled
  std::vector<double> top_p(unlabelled.size(), 0.0);
  std::vector<int64_t> top_c(unlabelled.size(), 0);
  Tensor sum_p;  // average_rounds: the sum of every round's probabilities
  for (int64_t round = 0; round <= o.rounds; ++round) {
    std::vector<int64_t> idx = labelled, lab = given;
    // Repeat the labelled samples until they are labelled_share of the set (pseudo-labels are noisier).
    const double share = std::clamp(o.labelled_share, 0.0, 0.95);
    while (share > 0 && double(idx.size()) < share / (1 - share) * double(pseudo_idx.size())) {
      idx.insert(idx.end(), labelled.begin(), labelled.end());
      lab.insert(lab.end(), given.begin(), given.end());
    }
    idx.insert(idx.end(), pseudo_idx.begin(), pseudo_idx.end());
    lab.insert(lab.end(), pseudo_lab.begin(), pseudo_lab.end());
    r.model = make();
    ClassifierTraining t = o.training;
    t.seed = o.training.seed + uint64_t(round);
    fit_classifier(*r.model, std::make_shared<RelabelledDataset>(train, idx, lab), t);

    AutolabelRound rep{.round = round, .train_samples = int64_t(labelled.size() + pseudo_idx.size()), .pseudo_labelled = int64_t(pseudo_idx.size())};
    if (truth && !pseudo_idx.empty()) {
      int64_t right = 0;
      for (size_t q = 0; q < pseudo_idx.size(); ++q) right += (*truth)[size_t(pseudo_idx[q])] == pseudo_lab[q];
      rep.pseudo_accuracy = double(right) / double(pseudo_idx.size());
    }
    if (test) rep.test_accuracy = accuracy(*r.model, test);
    r.rounds.push_back(rep);
    if (o.on_round) o.on_round(rep);
    if (unlabelled.empty()) break;

    // This model's opinion of every unlabelled sample; the next round trains on the confident ones.
    Tensor p = predict_probs(*r.model, std::make_shared<data::Subset>(train, unlabelled));
    if (o.average_rounds) {
      sum_p = sum_p.defined() ? sum_p + p : p;
      p = sum_p / double(round + 1);
    }
    auto [vals, args] = p.max(1);
    const std::vector<double> pv = vals.tolist(), pa = args.tolist();
    for (size_t q = 0; q < unlabelled.size(); ++q) top_p[q] = pv[q], top_c[q] = int64_t(pa[q]);
    if (round == o.rounds) break;
    // Above the threshold; class-balanced: the same number m from every class (m = the count above the threshold
    // divided by the classes), each class's m most confident, so an easy class cannot swamp the others.
    std::map<int64_t, std::vector<size_t>> by_class;
    size_t above = 0;
    for (size_t q = 0; q < unlabelled.size(); ++q) {
      above += top_p[q] >= o.threshold;
      if (o.class_balanced || top_p[q] >= o.threshold) by_class[top_c[q]].push_back(q);
    }
    const size_t cap = o.class_balanced ? above / size_t(p.size(1)) : SIZE_MAX;
    pseudo_idx.clear(), pseudo_lab.clear();
    for (auto& [c, qs] : by_class) {
      std::stable_sort(qs.begin(), qs.end(), [&](size_t a, size_t b) { return top_p[a] > top_p[b]; });
      for (size_t q = 0; q < std::min(cap, qs.size()); ++q)
        pseudo_idx.push_back(unlabelled[qs[q]]), pseudo_lab.push_back(c);
    }
  }

  // Final labels: given ones kept; the rest from the last model (pseudo when above the threshold).
  r.labels.assign(size_t(n), 0);
  r.confidence.assign(size_t(n), 1.0);
  r.source.assign(size_t(n), LabelSource::Given);
  for (size_t q = 0; q < labelled.size(); ++q) r.labels[size_t(labelled[q])] = given[q];
  for (size_t q = 0; q < unlabelled.size(); ++q) {
    const size_t i = size_t(unlabelled[q]);
    r.labels[i] = top_c[q];
    r.confidence[i] = top_p[q];
    r.source[i] = top_p[q] >= o.threshold ? LabelSource::Pseudo : LabelSource::Predicted;
  }
  return r;
}

}  // namespace loom::dataquality
