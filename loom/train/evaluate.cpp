// evaluate() and predict(): eval mode and no autograd for the duration, the caller's mode restored after
// (also when a batch throws), so they can run in the middle of training.
#include "loom/autograd/grad_mode.h"
#include "loom/ops/shape.h"
#include "loom/train/trainer.h"

namespace loom::train {

namespace {

// Puts the model in eval mode until destroyed, then back to what it was.
class EvalMode {
 public:
  explicit EvalMode(nn::Module& m) : m_(m), was_training_(m.is_training()) { m_.eval(); }
  ~EvalMode() { m_.train(was_training_); }
  EvalMode(const EvalMode&) = delete;
  EvalMode& operator=(const EvalMode&) = delete;

 private:
  nn::Module& m_;
  bool was_training_;
};

}  // namespace

Logs evaluate(nn::Module& model, data::DataLoader& data, const EvalOptions& o) {
  EvalMode mode(model);
  NoGradGuard g;
  const LossFn loss_fn = o.loss ? o.loss : default_loss;
  MeanLoss loss;
  std::vector<MetricPtr> metrics;
  for (const auto& name : o.metrics) metrics.push_back(make_metric(name));
  if (o.confusion) o.confusion->reset();
  data.set_epoch(0);  // a shuffled loader would otherwise visit a new order (harmless, but not repeatable)
  for (auto& b : data) {
    Tensor out = model(b.data);
    loss.add(loss_fn(out, b.target).item(), b.data.dim() > 0 ? b.data.size(0) : 1);
    for (auto& m : metrics) m->update(out, b.target);
    if (o.confusion) o.confusion->update(out, b.target);
  }
  Logs logs{{"loss", loss.compute()}};
  for (const auto& m : metrics) logs[m->name()] = m->compute();
  return logs;
}

Tensor predict(nn::Module& model, const Tensor& inputs, int64_t batch_size) {
  LOOM_CHECK(inputs.defined() && inputs.dim() >= 1, "predict: inputs must be (N, ...)");
  LOOM_CHECK(batch_size > 0, "predict: batch_size must be positive, got ", batch_size);
  EvalMode mode(model);
  NoGradGuard g;
  std::vector<Tensor> outs;
  for (int64_t i = 0; i < inputs.size(0); i += batch_size)
    outs.push_back(model(inputs.narrow(0, i, std::min(batch_size, inputs.size(0) - i)).contiguous()));
  LOOM_CHECK(!outs.empty(), "predict: no inputs (N = 0)");
  return outs.size() == 1 ? outs[0] : cat(outs, 0);
}

Tensor predict(nn::Module& model, data::DataLoader& data) {
  EvalMode mode(model);
  NoGradGuard g;
  std::vector<Tensor> outs;
  data.set_epoch(0);
  for (auto& b : data) outs.push_back(model(b.data));
  LOOM_CHECK(!outs.empty(), "predict: the loader gave no batches");
  return outs.size() == 1 ? outs[0] : cat(outs, 0);
}

}  // namespace loom::train
