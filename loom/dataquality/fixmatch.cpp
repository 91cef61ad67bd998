#include "loom/dataquality/fixmatch.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "loom/dataquality/label_split.h"
#include "loom/autograd/grad_mode.h"
#include "loom/core/generator.h"
#include "loom/nn/loss.h"
#include "loom/ops/ops.h"
#include "loom/optim/adam.h"

namespace loom::dataquality {

Tensor masked_pseudo_label_loss(const Tensor& logits, const Tensor& pseudo, const Tensor& mask, int64_t denominator) {
  LOOM_CHECK(logits.dim() == 2 && pseudo.dim() == 1 && mask.dim() == 1 && pseudo.size(0) == logits.size(0) &&
                 mask.size(0) == logits.size(0),
             "masked_pseudo_label_loss: logits (M, K), pseudo (M) and mask (M) expected, got ", logits.shape(), ", ",
             pseudo.shape(), ", ", mask.shape());
  LOOM_CHECK(denominator > 0, "masked_pseudo_label_loss: the denominator must be > 0, got ", denominator);
  const Tensor per_row = cross_entropy(logits, pseudo, {.reduction = Reduction::None});
  return (per_row * mask.to(per_row.dtype())).sum() / double(denominator);
}

namespace {

void copy_weights(nn::Module& dst, const nn::Module& src) {
  NoGradGuard g;
  const std::vector<Tensor> d = dst.parameters(), s = src.parameters();
  LOOM_CHECK(d.size() == s.size(), "fixmatch: the model factory built models with different parameter counts");
  for (size_t i = 0; i < d.size(); ++i) Tensor(d[i]).copy_(s[i]);
}

// Exponential moving average of the weights with the usual warm-up: the decay is min(decay, (1 + t) / (10 + t))
// at update t, so the average is not dominated by the random initial weights in a short run.
void ema_update(nn::Module& ema, const nn::Module& model, double decay, int64_t t) {
  NoGradGuard g;
  const double d = std::min(decay, double(1 + t) / double(10 + t));
  const std::vector<Tensor> e = ema.parameters(), p = model.parameters();
  for (size_t i = 0; i < e.size(); ++i) Tensor(e[i]).mul_(d).add_(p[i], 1 - d);
}

// Endless shuffled passes over `ids` (a new seeded order every pass).
class BatchCycler {
 public:
  BatchCycler(std::vector<int64_t> ids, uint64_t seed) : ids_(std::move(ids)), g_(seed) { shuffle(); }
  std::vector<int64_t> next(int64_t n) {
    std::vector<int64_t> out;
    out.reserve(size_t(n));
    while (int64_t(out.size()) < n) {
      if (pos_ == ids_.size()) shuffle();
      out.push_back(ids_[pos_++]);
    }
    return out;
  }

 private:
  void shuffle() {
    for (size_t i = ids_.size(); i > 1; --i) std::swap(ids_[i - 1], ids_[size_t(g_.next_u64() % i)]);
    pos_ = 0;
  }
  std::vector<int64_t> ids_;
  Generator g_;
  size_t pos_ = 0;
};

// The share of each class among the labelled samples' targets, f32 (classes).
Tensor class_frequencies(const data::DatasetPtr& train, const std::vector<int64_t>& labelled, int64_t classes) {
  std::vector<double> f(size_t(classes), 0.0);
  for (double c : train->get_batch(labelled).target.tolist()) {
    LOOM_CHECK(c >= 0 && int64_t(c) < classes, "fixmatch: a labelled sample has class ", c, " but the model has ",
               classes, " outputs");
    f[size_t(c)] += 1.0 / double(labelled.size());
  }
  return tensor(f, {classes}).to(DType::f32);
}

struct Run {
  std::shared_ptr<nn::Module> evaluated;
  double test_accuracy = NAN;
};

// One training run: with_unlabelled false is the baseline (the labelled term alone, everything else the same).
Run train_run(const data::DatasetPtr& train, const std::vector<int64_t>& labelled,
              const std::vector<int64_t>& unlabelled, const nn::Module& init, const ModelFactory& make,
              const FixMatchOptions& o, bool with_unlabelled, const data::DatasetPtr& test,
              const std::vector<int64_t>* truth, std::vector<FixMatchRound>& rounds) {
  std::shared_ptr<nn::Module> model = make(), ema = o.ema_decay > 0 ? make() : nullptr;
  copy_weights(*model, init);
  if (ema) copy_weights(*ema, *model);
  optim::Adam opt(model->parameters(), {.lr = o.lr});
  // The same seeds in both runs: the baseline sees the same labelled batches with the same weak views.
  BatchCycler lab(labelled, o.seed * 2654435761ull + 1), unl(unlabelled, o.seed * 2654435761ull + 2);
  const int64_t nu = o.mu * o.batch_size;
  // Distribution alignment: the labelled class frequencies and the running mean of the unlabelled predictions.
  Tensor class_prior, running_mean;
  FixMatchRound w{.baseline = !with_unlabelled};
  int64_t right = 0, window_steps = 0;
  double lab_loss = 0, unl_loss = 0;
  for (int64_t step = 1; step <= o.steps; ++step) {
    const std::vector<int64_t> li = lab.next(o.batch_size);
    const data::Batch lb = train->get_batch(li);
    std::vector<Tensor> inputs = {augment_batch(lb.data, o.weak, o.seed, step, li)};
    Tensor pseudo;
    std::vector<int64_t> confident;  // the unlabelled images above the threshold
    if (with_unlabelled && !unlabelled.empty()) {
      const std::vector<int64_t> ui = unl.next(nu);
      const Tensor ux = train->get_batch(ui).data;
      Tensor top, arg;
      {
        NoGradGuard g;  // the weak view's prediction is a target, not trained through
        Tensor p = softmax((*model)(augment_batch(ux, o.weak, o.seed + 1, step, ui)).to(DType::f32), 1);
        if (o.distribution_alignment) {
          if (!class_prior.defined()) class_prior = class_frequencies(train, labelled, p.size(1));
          const Tensor batch_mean = p.mean({0});
          running_mean = running_mean.defined() ? running_mean * 0.99 + batch_mean * 0.01 : batch_mean;
          p = p * class_prior / running_mean.clamp(1e-6, std::nullopt);
          p = p / p.sum({1}, true);
        }
        std::tie(top, arg) = p.max(1);
      }
      const std::vector<double> tv = top.tolist(), av = arg.tolist();
      std::vector<int64_t> rows, labels;
      for (size_t q = 0; q < ui.size(); ++q)
        if (tv[q] >= o.threshold) {
          rows.push_back(int64_t(q)), labels.push_back(int64_t(av[q])), confident.push_back(ui[q]);
          if (truth) right += (*truth)[size_t(ui[q])] == int64_t(av[q]);
        }
      w.unlabelled_seen += nu, w.above_threshold += int64_t(rows.size());
      if (!rows.empty()) {
        // Only the confident rows are augmented and run forward: the others' terms are zero.
        const Tensor sel = ux.index_select(0, tensor(rows, {int64_t(rows.size())}));
        const Tensor weak2 = augment_batch(sel, o.weak, o.seed + 2, step, confident);
        inputs.push_back(strong_augment(weak2, o.strong, o.seed, step, confident));
        pseudo = tensor(labels, {int64_t(labels.size())});
      }
    }
    // One forward pass over the labelled batch and the strong views together.
    const Tensor logits = (*model)(inputs.size() == 1 ? inputs[0] : cat(inputs, 0));
    const int64_t nl = int64_t(li.size());
    Tensor loss = cross_entropy(logits.slice(0, 0, nl), lb.target);
    lab_loss += loss.item();
    if (pseudo.defined()) {
      const int64_t m = pseudo.size(0);
      const Tensor lu = masked_pseudo_label_loss(logits.slice(0, nl, nl + m), pseudo, ones({m}), nu);
      unl_loss += lu.item();
      loss = loss + lu * o.lambda_u;
    }
    if (o.cosine_lr) opt.set_lr(o.lr * std::cos(7 * M_PI * double(step - 1) / (16 * double(o.steps))));
    opt.zero_grad();
    loss.backward();
    opt.step();
    if (ema) ema_update(*ema, *model, o.ema_decay, step - 1);
    ++window_steps;

    if (step % o.report_every == 0 || step == o.steps) {
      w.step = step;
      w.labelled_loss = lab_loss / double(window_steps);
      w.unlabelled_loss = with_unlabelled ? unl_loss / double(window_steps) : NAN;
      if (truth && w.above_threshold) w.pseudo_accuracy = double(right) / double(w.above_threshold);
      if (test) w.test_accuracy = accuracy(ema ? *ema : *model, test);
      rounds.push_back(w);
      if (o.on_round) o.on_round(w);
      w = FixMatchRound{.baseline = !with_unlabelled};
      right = window_steps = 0, lab_loss = unl_loss = 0;
    }
  }
  return {ema ? ema : model, rounds.back().test_accuracy};
}

}  // namespace

FixMatchResult fixmatch(data::DatasetPtr train, const std::vector<int64_t>& labelled, const ModelFactory& make,
                        const FixMatchOptions& o, data::DatasetPtr test, const std::vector<int64_t>* truth) {
  const int64_t n = train->size();
  LOOM_CHECK(o.threshold > 0 && o.threshold <= 1, "fixmatch: threshold must be in (0, 1], got ", o.threshold);
  LOOM_CHECK(o.steps >= 1 && o.batch_size >= 1 && o.mu >= 1 && o.report_every >= 1,
             "fixmatch: steps, batch_size, mu and report_every must be >= 1 (got ", o.steps, ", ", o.batch_size, ", ",
             o.mu, ", ", o.report_every, ")");
  LOOM_CHECK(o.lambda_u >= 0 && o.lr > 0, "fixmatch: lambda_u must be >= 0 and lr > 0");
  LOOM_CHECK(o.ema_decay >= 0 && o.ema_decay < 1, "fixmatch: ema_decay must be in [0, 1), got ", o.ema_decay);
  const std::vector<int64_t> unlabelled = unlabelled_indices(n, labelled, truth, "fixmatch");
  const std::vector<int64_t> given = dataset_labels(std::make_shared<data::Subset>(train, labelled));

  // Both runs start from these weights, so the comparison does not depend on an initialisation draw.
  const std::shared_ptr<nn::Module> init = make();
  FixMatchResult r;
  if (o.baseline) {
    const Run b = train_run(train, labelled, {}, *init, make, o, false, test, nullptr, r.rounds);
    r.baseline_model = b.evaluated, r.baseline_test_accuracy = b.test_accuracy;
  }
  const Run f = train_run(train, labelled, unlabelled, *init, make, o, true, test, truth, r.rounds);
  r.model = f.evaluated, r.test_accuracy = f.test_accuracy;

  // Final labels: the given ones kept; the pool labelled by the evaluated model on the plain images.
  r.labels.assign(size_t(n), 0);
  r.confidence.assign(size_t(n), 1.0);
  r.source.assign(size_t(n), LabelSource::Given);
  for (size_t q = 0; q < labelled.size(); ++q) r.labels[size_t(labelled[q])] = given[q];
  if (unlabelled.empty()) return r;
  auto [vals, args] = predict_probs(*r.model, std::make_shared<data::Subset>(train, unlabelled)).max(1);
  const std::vector<double> pv = vals.tolist(), pa = args.tolist();
  for (size_t q = 0; q < unlabelled.size(); ++q) {
    const size_t i = size_t(unlabelled[q]);
    r.labels[i] = int64_t(pa[q]);
    r.confidence[i] = pv[q];
    r.source[i] = pv[q] >= o.threshold ? LabelSource::Pseudo : LabelSource::Predicted;
  }
  return r;
}

}  // namespace loom::dataquality
