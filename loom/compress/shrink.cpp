#include "loom/compress/shrink.h"

#include "loom/autograd/grad_mode.h"
#include "loom/compress/prune_masks.h"
#include "loom/core/error.h"
#include "loom/nn/conv_layers.h"
#include "loom/nn/linear.h"
#include "loom/nn/norm_layers.h"
#include "loom/ops/creation.h"

namespace loom::compress {

namespace {

Tensor weight_of(nn::Module* m) {
  if (auto* c = dynamic_cast<nn::Conv2d*>(m)) return c->weight;
  if (auto* l = dynamic_cast<nn::Linear*>(m)) return l->weight;
  return Tensor();
}

Tensor pick(const Tensor& t, int64_t dim, const Tensor& idx) {
  return idx.defined() ? t.index_select(dim, idx).contiguous() : t;
}

// The old layer's state with its outputs (dim 0 of every tensor) and, for weights, inputs (dim 1) narrowed.
nn::StateDict narrowed(const nn::Module& old, const Tensor& out, const Tensor& in) {
  nn::StateDict d;
  for (const auto& [k, t] : old.state_dict()) {
    Tensor v = t.dim() >= 1 ? pick(t, 0, out) : t;
    if (k == "weight" && t.dim() >= 2) v = pick(v, 1, in);
    d.insert(k, v);
  }
  return d;
}

}  // namespace

Shrunk shrink_channels(nn::Sequential& model, const ShrinkOptions& o) {
  LOOM_CHECK(!prune::is_pruned(model), "shrink_channels: the model holds pruning masks (weight_orig / weight_mask); "
             "make them permanent with prune::remove first");
  NoGradGuard no_grad;
  const auto& kids = model.named_children();
  std::vector<size_t> weighted;
  for (size_t i = 0; i < kids.size(); ++i)
    if (weight_of(kids[i].second.get()).defined()) weighted.push_back(i);
  LOOM_CHECK(weighted.size() >= 2, "shrink_channels: needs at least two Conv2d/Linear layers (the last keeps its ",
             "outputs), found ", weighted.size());
  std::vector<Tensor> keep_out(kids.size()), keep_in(kids.size());  // int64 indices; undefined: all kept
  Shrunk r;
  for (size_t w = 0; w + 1 < weighted.size(); ++w) {
    const size_t i = weighted[w], next = weighted[w + 1];
    nn::Module* layer = kids[i].second.get();
    const std::string where = "shrink_channels: layer " + kids[i].first + " (" + layer->name() + ")";
    if (auto* c = dynamic_cast<nn::Conv2d*>(layer))
      LOOM_CHECK(c->options.groups == 1, where, " is a grouped convolution (groups=", c->options.groups,
                 "), which this does not narrow");
    const Tensor wt = weight_of(layer);
    const int64_t channels = wt.size(0);
    const int64_t keep = channels - o.amount.of(channels, where);
    LOOM_CHECK(keep >= 1, where, ": the amount would remove all ", channels, " output channels");
    std::vector<int64_t> kept = prune::strongest_slices(wt, keep, o.n, 0);
    keep_out[i] = tensor(kept, {keep});
    // What lies between this layer and the next weighted one must carry channels through unchanged.
    int64_t per_channel = 1;
    for (size_t j = i + 1; j < next; ++j) {
      nn::Module* m = kids[j].second.get();
      const std::string at = "shrink_channels: layer " + kids[j].first + " (" + m->name() + ")";
      if (auto* bn = dynamic_cast<nn::BatchNorm*>(m)) {
        LOOM_CHECK(bn->options.num_features == channels, at, " normalises ", bn->options.num_features,
                   " features but follows a layer of ", channels, " channels");
        keep_out[j] = keep_out[i];
      } else if (auto* f = dynamic_cast<nn::Flatten*>(m)) {
        LOOM_CHECK(f->options.start_dim == 1, at, ": only Flatten(start_dim=1) keeps channels contiguous");
        per_channel = 0;  // worked out from the next layer's inputs below
      } else {
        LOOM_CHECK(m->parameters().empty() && m->buffers().empty(), at,
                   " holds parameters or buffers; only activations, pooling, dropout, BatchNorm and Flatten may "
                   "sit between the layers narrowed");
      }
    }
    const int64_t inputs = weight_of(kids[next].second.get()).size(1);
    const std::string into = "shrink_channels: layer " + kids[next].first;
    if (per_channel == 0) {
      LOOM_CHECK(inputs % channels == 0, into, " takes ", inputs, " features, not a multiple of the ", channels,
                 " channels flattened into it");
      per_channel = inputs / channels;
    } else {
      LOOM_CHECK(inputs == channels, into, " takes ", inputs, " inputs but follows a layer of ", channels, " outputs");
    }
    // Flatten lays a channel's per_channel features side by side: feature = channel * per_channel + position.
    std::vector<int64_t> features;
    for (int64_t c : kept)
      for (int64_t s = 0; s < per_channel; ++s) features.push_back(c * per_channel + s);
    keep_in[next] = tensor(features, {int64_t(features.size())});
    r.widths.push_back(keep);
    r.kept.push_back(std::move(kept));
  }
  r.model = std::make_shared<nn::Sequential>();
  for (size_t i = 0; i < kids.size(); ++i) {
    nn::ModulePtr old = kids[i].second, fresh;
    const Tensor &out = keep_out[i], &in = keep_in[i];
    if (auto* c = dynamic_cast<nn::Conv2d*>(old.get())) {
      nn::Conv2dOptions opt = c->options;
      if (out.defined()) opt.out = out.numel();
      if (in.defined()) opt.in = in.numel();
      fresh = std::make_shared<nn::Conv2d>(opt);
    } else if (auto* l = dynamic_cast<nn::Linear*>(old.get())) {
      nn::LinearOptions opt = l->options;
      if (out.defined()) opt.out = out.numel();
      if (in.defined()) opt.in = in.numel();
      fresh = std::make_shared<nn::Linear>(opt);
    } else if (auto* bn = dynamic_cast<nn::BatchNorm*>(old.get()); bn && out.defined()) {
      nn::BatchNormOptions opt = bn->options;
      opt.num_features = out.numel();
      if (dynamic_cast<nn::BatchNorm2d*>(bn)) fresh = std::make_shared<nn::BatchNorm2d>(opt);
      else fresh = std::make_shared<nn::BatchNorm1d>(opt);
    }
    if (fresh) fresh->load_state_dict(narrowed(*old, out, in));
    r.model->push_back(fresh ? fresh : old);
  }
  r.model->train(model.is_training());
  return r;
}

}  // namespace loom::compress
