// Pruning masks against torch.nn.utils.prune (torch 1.13): the same weights give identical masks for
// l1_unstructured, ln_structured (n = 1, 2, inf; dim 0 and 1), global_unstructured and their compositions.
// Weights are random, so no two magnitudes (norms) tie: torch's topk leaves the order of ties unspecified.
#include <gtest/gtest.h>

#include "loom/compress/prune.h"
#include "loom/loom.h"
#include "support/torch_oracle.h"

using namespace loom;
using loom::test::torch_run;
namespace prune = loom::compress::prune;

namespace {

// The torch side: a Conv2d(4, 6, 3) and a Linear(8, 5) holding the given weights, then `steps`.
std::map<std::string, Tensor> torch_masks(const std::string& steps, const Tensor& cw, const Tensor& lw) {
  const std::string code =
      "import torch.nn.utils.prune as prune\n"
      "conv = nn.Conv2d(4, 6, 3); fc = nn.Linear(8, 5)\n"
      "with torch.no_grad():\n"
      "    conv.weight.copy_(cw); fc.weight.copy_(lw)\n" +
      steps +
      "\nout['conv'] = conv.weight_mask if hasattr(conv, 'weight_mask') else torch.ones_like(conv.weight)\n"
      "out['fc'] = fc.weight_mask if hasattr(fc, 'weight_mask') else torch.ones_like(fc.weight)\n"
      "out['conv_w'] = conv.weight\n";
  return torch_run(code, {{"cw", cw}, {"lw", lw}});
}

struct Layers {
  nn::Conv2d conv{{.in = 4, .out = 6, .kernel_size = 3}};
  nn::Linear fc{{.in = 8, .out = 5}};
};

void expect_same(Layers& l, std::map<std::string, Tensor>& r, const std::string& what) {
  const Tensor cm = prune::is_pruned(l.conv, "weight") ? l.conv.get_buffer("weight_mask") : ones_like(l.conv.weight);
  const Tensor fm = prune::is_pruned(l.fc, "weight") ? l.fc.get_buffer("weight_mask") : ones_like(l.fc.weight);
  EXPECT_EQ(cm.tolist(), r["conv"].tolist()) << what << ": conv mask";
  EXPECT_EQ(fm.tolist(), r["fc"].tolist()) << what << ": fc mask";
  EXPECT_PARITY(what + ": conv effective weight", l.conv.weight, r["conv_w"], 0);
}

void check(const std::string& what, const std::string& torch_steps, const std::function<void(Layers&)>& loom_steps) {
  manual_seed(42);
  Layers l;
  const Tensor cw = l.conv.weight.clone(), lw = l.fc.weight.clone();
  loom_steps(l);
  auto r = torch_masks(torch_steps, cw, lw);
  expect_same(l, r, what);
}

void l1_unstructured() {
  check("l1 0.3", "prune.l1_unstructured(conv, 'weight', amount=0.3)\nprune.l1_unstructured(fc, 'weight', amount=0.5)",
        [](Layers& l) {
          prune::l1_unstructured(l.conv, "weight", 0.3);
          prune::l1_unstructured(l.fc, "weight", 0.5);
        });
  check("l1 count", "prune.l1_unstructured(conv, 'weight', amount=17)", [](Layers& l) {
    prune::l1_unstructured(l.conv, "weight", 17);
  });
}

void ln_structured() {
  for (const char* n : {"1", "2", "float('inf')"}) {
    const double nv = std::string(n) == "1" ? 1 : std::string(n) == "2" ? 2 : INFINITY;
    check(std::string("ln n=") + n + " dim 0",
          std::string("prune.ln_structured(conv, 'weight', amount=0.5, n=") + n +
              ", dim=0)\nprune.ln_structured(fc, 'weight', amount=2, n=" + n + ", dim=0)",
          [&](Layers& l) {
            prune::ln_structured(l.conv, "weight", 0.5, nv, 0);
            prune::ln_structured(l.fc, "weight", 2, nv, 0);
          });
  }
  check("ln n=2 dim 1", "prune.ln_structured(conv, 'weight', amount=0.25, n=2, dim=1)\n"
                        "prune.ln_structured(fc, 'weight', amount=0.4, n=1, dim=-1)",
        [](Layers& l) {
          prune::ln_structured(l.conv, "weight", 0.25, 2, 1);
          prune::ln_structured(l.fc, "weight", 0.4, 1, -1);
        });
}

void composition() {
  check("l1 then l1",
        "prune.l1_unstructured(conv, 'weight', amount=0.3)\nprune.l1_unstructured(conv, 'weight', amount=0.5)",
        [](Layers& l) {
          prune::l1_unstructured(l.conv, "weight", 0.3);
          prune::l1_unstructured(l.conv, "weight", 0.5);
        });
  check("ln then ln", "prune.ln_structured(conv, 'weight', amount=0.34, n=2, dim=0)\n"
                      "prune.ln_structured(conv, 'weight', amount=0.5, n=1, dim=0)",
        [](Layers& l) {
          prune::ln_structured(l.conv, "weight", 0.34, 2, 0);
          prune::ln_structured(l.conv, "weight", 0.5, 1, 0);
        });
  check("l1 then ln", "prune.l1_unstructured(fc, 'weight', amount=0.6)\n"
                      "prune.ln_structured(fc, 'weight', amount=0.4, n=2, dim=0)",
        [](Layers& l) {
          prune::l1_unstructured(l.fc, "weight", 0.6);
          prune::ln_structured(l.fc, "weight", 0.4, 2, 0);
        });
  check("ln then l1", "prune.ln_structured(conv, 'weight', amount=0.5, n=2, dim=0)\n"
                      "prune.l1_unstructured(conv, 'weight', amount=0.5)",
        [](Layers& l) {
          prune::ln_structured(l.conv, "weight", 0.5, 2, 0);
          prune::l1_unstructured(l.conv, "weight", 0.5);
        });
}

void global_unstructured() {
  check("global", "prune.global_unstructured([(conv, 'weight'), (fc, 'weight')], "
                  "pruning_method=prune.L1Unstructured, amount=0.4)",
        [](Layers& l) { prune::global_unstructured({{&l.conv, "weight"}, {&l.fc, "weight"}}, 0.4); });
  check("l1 then global", "prune.l1_unstructured(fc, 'weight', amount=0.5)\n"
                          "prune.global_unstructured([(conv, 'weight'), (fc, 'weight')], "
                          "pruning_method=prune.L1Unstructured, amount=0.5)",
        [](Layers& l) {
          prune::l1_unstructured(l.fc, "weight", 0.5);
          prune::global_unstructured({{&l.conv, "weight"}, {&l.fc, "weight"}}, 0.5);
        });
}

void state_dict_keys_and_remove() {
  manual_seed(3);
  nn::Linear fc({.in = 8, .out = 5});
  const Tensor w = fc.weight.clone(), b = fc.bias.clone();
  prune::l1_unstructured(fc, "weight", 0.5);
  std::string ours;
  for (const auto& [k, t] : fc.state_dict()) ours += k + ",";
  auto r = torch_run(
      "import torch.nn.utils.prune as prune\n"
      "fc = nn.Linear(8, 5)\n"
      "with torch.no_grad():\n    fc.weight.copy_(w); fc.bias.copy_(b)\n"
      "prune.l1_unstructured(fc, 'weight', amount=0.5)\n"
      "assert list(fc.state_dict().keys()) == ['bias', 'weight_orig', 'weight_mask'], list(fc.state_dict().keys())\n"
      "y = fc(x)\ny.sum().backward()\nout['y'] = y; out['g'] = fc.weight_orig.grad\n"
      "prune.remove(fc, 'weight')\n"
      "assert list(fc.state_dict().keys()) == ['bias', 'weight'], list(fc.state_dict().keys())\n"
      "out['w'] = fc.weight",
      {{"w", w}, {"b", b}, {"x", tensor({1, 2, 3, 4, 5, 6, 7, 8}, {1, 8})}});
  EXPECT_EQ(ours, "bias,weight_orig,weight_mask,");
  Tensor y = fc(tensor({1, 2, 3, 4, 5, 6, 7, 8}, {1, 8}));
  sum(y).backward();
  EXPECT_PARITY("forward", y, r["y"]);
  EXPECT_PARITY("weight_orig grad", fc.get_parameter("weight_orig").grad(), r["g"]);
  prune::remove(fc, "weight");
  EXPECT_PARITY("removed weight", fc.weight, r["w"], 0);
}

}  // namespace

// Two tests, not one per method: each test is its own process, and starting torch is most of the time.
TEST(PruneParity, MasksMatchTorch) {
  l1_unstructured();
  ln_structured();
  global_unstructured();
}

TEST(PruneParity, CompositionStateDictAndRemove) {
  composition();
  state_dict_keys_and_remove();
}
