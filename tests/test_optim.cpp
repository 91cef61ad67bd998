// Optimizers, schedulers and clipping against PyTorch 1.13: the same initial parameters and the same three
// gradients go to loom and to torch.optim; parameters are compared after every step (float32, 1e-5).
#include <gtest/gtest.h>

#include <memory>

#include "loom/loom.h"
#include "support/torch_oracle.h"

using namespace loom;
using loom::test::Arg;
using loom::test::torch_run;

namespace {

using MakeOpt = std::function<std::unique_ptr<optim::Optimizer>(const std::vector<Tensor>&)>;

struct Problem {
  std::vector<Tensor> init;                // two parameters
  std::vector<std::vector<Tensor>> grads;  // three steps of gradients for each
};

// Gradients shrink from step to step so amsgrad's running max and Adagrad's decay matter.
Problem make_problem(uint64_t seed) {
  manual_seed(seed);
  Problem pr{{randn({3, 4}), randn({5})}, {}};
  for (double scale : {1.0, 0.3, 0.1}) pr.grads.push_back({randn({3, 4}) * scale, randn({5}) * scale});
  return pr;
}

std::vector<Tensor> fresh_params(const Problem& pr) {
  std::vector<Tensor> ps;
  for (const Tensor& t : pr.init) ps.push_back(t.clone().requires_grad_(true));
  return ps;
}

void set_grads(std::vector<Tensor>& ps, const std::vector<Tensor>& gs) {
  for (size_t i = 0; i < ps.size(); ++i) ps[i].set_grad(gs[i].clone());
}

// `ctor` builds the torch optimizer over the list `ps`.
void optim_parity(const std::string& ctor, const MakeOpt& make, uint64_t seed = 1) {
  Problem pr = make_problem(seed);
  std::vector<Arg> args = {{"p0", pr.init[0]}, {"p1", pr.init[1]}};
  for (size_t k = 0; k < 3; ++k)
    for (size_t i = 0; i < 2; ++i) args.push_back({"g" + std::to_string(k) + std::to_string(i), pr.grads[k][i]});
  auto r = torch_run("ps = [p0.clone().requires_grad_(), p1.clone().requires_grad_()]\nopt = " + ctor +
                         "\nG = [[g00, g01], [g10, g11], [g20, g21]]\n"
                         "for k in range(3):\n"
                         "  for p, g in zip(ps, G[k]): p.grad = g.clone()\n"
                         "  opt.step()\n"
                         "  for i in range(2): out['p%d_%d' % (i, k)] = ps[i].detach().clone()\n",
                     args);
  std::vector<Tensor> ps = fresh_params(pr);
  auto opt = make(ps);
  for (size_t k = 0; k < 3; ++k) {
    set_grads(ps, pr.grads[k]);
    opt->step();
    for (size_t i = 0; i < 2; ++i)
      EXPECT_PARITY(ctor + " param " + std::to_string(i) + " after step " + std::to_string(k + 1), ps[i].detach(),
                    r["p" + std::to_string(i) + "_" + std::to_string(k)]);
  }
}

template <class O, class Opt>
MakeOpt one_group(O o) {
  return [o](const std::vector<Tensor>& ps) { return std::make_unique<Opt>(ps, o); };
}

}  // namespace

TEST(OptimParity, SGD) {
  using optim::SGD, optim::SGDOptions;
  optim_parity("torch.optim.SGD(ps, lr=0.1)", one_group<SGDOptions, SGD>({.lr = 0.1}));
  optim_parity("torch.optim.SGD(ps, lr=0.1, momentum=0.9)", one_group<SGDOptions, SGD>({.lr = 0.1, .momentum = 0.9}));
  optim_parity("torch.optim.SGD(ps, lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01)",
               one_group<SGDOptions, SGD>({.lr = 0.05, .momentum = 0.8, .dampening = 0.3, .weight_decay = 0.01}));
  optim_parity("torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1)",
               one_group<SGDOptions, SGD>({.lr = 0.1, .momentum = 0.9, .weight_decay = 0.1, .nesterov = true}));
  optim_parity("torch.optim.SGD(ps, lr=0.1, momentum=0.5, maximize=True)",
               one_group<SGDOptions, SGD>({.lr = 0.1, .momentum = 0.5, .maximize = true}));
}

TEST(OptimParity, AdamAndAdamW) {
  using optim::Adam, optim::AdamOptions, optim::AdamW, optim::AdamWOptions;
  optim_parity("torch.optim.Adam(ps, lr=0.01)", one_group<AdamOptions, Adam>({.lr = 0.01}));
  optim_parity("torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)",
               one_group<AdamOptions, Adam>({.lr = 0.01, .betas = {0.8, 0.99}, .eps = 1e-6, .weight_decay = 0.1}));
  optim_parity("torch.optim.Adam(ps, lr=0.01, betas=(0.9, 0.5), amsgrad=True)",
               one_group<AdamOptions, Adam>({.lr = 0.01, .betas = {0.9, 0.5}, .amsgrad = true}));
  optim_parity("torch.optim.Adam(ps, lr=0.01, maximize=True)",
               one_group<AdamOptions, Adam>({.lr = 0.01, .maximize = true}));
  optim_parity("torch.optim.AdamW(ps, lr=0.01)", one_group<AdamWOptions, AdamW>({.lr = 0.01}));
  optim_parity("torch.optim.AdamW(ps, lr=0.02, betas=(0.9, 0.5), weight_decay=0.3, amsgrad=True)",
               one_group<AdamWOptions, AdamW>({.lr = 0.02, .betas = {0.9, 0.5}, .weight_decay = 0.3, .amsgrad = true}));
}

TEST(OptimParity, RMSpropAndAdagrad) {
  using optim::RMSprop, optim::RMSpropOptions, optim::Adagrad, optim::AdagradOptions;
  optim_parity("torch.optim.RMSprop(ps)", one_group<RMSpropOptions, RMSprop>({}));
  optim_parity("torch.optim.RMSprop(ps, lr=0.01, momentum=0.9)",
               one_group<RMSpropOptions, RMSprop>({.lr = 0.01, .momentum = 0.9}));
  optim_parity("torch.optim.RMSprop(ps, lr=0.01, alpha=0.9, centered=True)",
               one_group<RMSpropOptions, RMSprop>({.lr = 0.01, .alpha = 0.9, .centered = true}));
  optim_parity("torch.optim.RMSprop(ps, lr=0.01, alpha=0.8, eps=1e-4, weight_decay=0.1, momentum=0.5, centered=True)",
               one_group<RMSpropOptions, RMSprop>(
                   {.lr = 0.01, .alpha = 0.8, .eps = 1e-4, .weight_decay = 0.1, .momentum = 0.5, .centered = true}));
  optim_parity("torch.optim.Adagrad(ps, lr=0.1)", one_group<AdagradOptions, Adagrad>({.lr = 0.1}));
  optim_parity("torch.optim.Adagrad(ps, lr=0.1, lr_decay=0.1, weight_decay=0.05, initial_accumulator_value=0.1)",
               one_group<AdagradOptions, Adagrad>(
                   {.lr = 0.1, .lr_decay = 0.1, .weight_decay = 0.05, .initial_accumulator_value = 0.1}));
}

TEST(OptimParity, TwoParamGroups) {
  optim_parity("torch.optim.SGD([{'params': [ps[0]]}, {'params': [ps[1]], 'lr': 0.01, 'momentum': 0.5}], lr=0.1)",
               [](const std::vector<Tensor>& ps) {
                 return std::make_unique<optim::SGD>(std::vector<optim::ParamGroup<optim::SGDOptions>>{
                     {{ps[0]}, {.lr = 0.1}}, {{ps[1]}, {.lr = 0.01, .momentum = 0.5}}});
               });
  optim_parity("torch.optim.Adam([{'params': [ps[0]], 'weight_decay': 0.1}, {'params': [ps[1]]}], lr=0.003)",
               [](const std::vector<Tensor>& ps) {
                 return std::make_unique<optim::Adam>(std::vector<optim::ParamGroup<optim::AdamOptions>>{
                     {{ps[0]}, {.lr = 0.003, .weight_decay = 0.1}}, {{ps[1]}, {.lr = 0.003}}});
               });
}

TEST(Optim, ParamGroupsFromBraces) {
  std::vector<Tensor> body = {randn({2}).requires_grad_(true)}, head = {randn({3}).requires_grad_(true)};
  optim::Adam two({{body, {.lr = 1e-4}}, {head, {.lr = 1e-3, .amsgrad = true}}});
  ASSERT_EQ(two.num_param_groups(), 2u);
  EXPECT_EQ(two.get_lrs(), std::vector<double>({1e-4, 1e-3}));
  EXPECT_TRUE(two.param_groups()[1].options.amsgrad);
  two.set_lr(0.5);
  EXPECT_EQ(two.get_lrs(), std::vector<double>({0.5, 0.5}));
  two.add_param_group({{randn({1}).requires_grad_(true)}, {.lr = 0.2}});
  EXPECT_EQ(two.get_lr(2), 0.2);
  EXPECT_THROW(two.add_param_group({head, {}}), Error);  // already optimized
}

// A whole training loop: softmax regression with label smoothing, AdamW, OneCycleLR (cycling beta1) and
// gradient clipping, 20 steps, against the same loop in torch.
TEST(OptimParity, TrainingLoopWithScheduleAndClipping) {
  manual_seed(21);
  Tensor X = randn({32, 6}), y = randint(0, 4, {32}), W0 = randn({4, 6}) * 0.1, b0 = zeros({4});
  auto r = torch_run("W = W0.clone().requires_grad_(); b = b0.clone().requires_grad_()\n"
                     "opt = torch.optim.AdamW([W, b], lr=0.01, weight_decay=0.05)\n"
                     "sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=20)\nlosses = []\n"
                     "for i in range(20):\n"
                     "  opt.zero_grad()\n"
                     "  loss = F.cross_entropy(X @ W.t() + b, y, label_smoothing=0.1)\n"
                     "  loss.backward()\n"
                     "  torch.nn.utils.clip_grad_norm_([W, b], 0.5)\n"
                     "  opt.step(); sched.step(); losses.append(loss.item())\n"
                     "out['W'] = W; out['b'] = b; out['loss'] = torch.tensor(losses)\n",
                     {{"X", X}, {"y", y}, {"W0", W0}, {"b0", b0}});
  Tensor W = W0.clone().requires_grad_(true), b = b0.clone().requires_grad_(true);
  optim::AdamW opt({W, b}, {.lr = 0.01, .weight_decay = 0.05});
  optim::OneCycleLR sched(opt, {.max_lr = {0.05}, .total_steps = 20});
  std::vector<double> losses;
  for (int i = 0; i < 20; ++i) {
    opt.zero_grad();
    Tensor loss = cross_entropy(linear(X, W, b), y, {.label_smoothing = 0.1});
    loss.backward();
    optim::clip_grad_norm_({W, b}, 0.5);
    opt.step();
    sched.step();
    losses.push_back(loss.item());
  }
  EXPECT_PARITY("W after 20 steps", W.detach(), r["W"]);
  EXPECT_PARITY("b after 20 steps", b.detach(), r["b"]);
  EXPECT_PARITY("losses", tensor(losses), r["loss"]);
  EXPECT_LT(losses.back(), losses.front() - 0.1);
}

// Steps 1-2 in one optimizer, its state dict loaded into a fresh one (built with other hyper-parameters,
// which the dict overrides): step 3 must give bit-identical parameters.
TEST(OptimStateDict, RoundTripResumesExactly) {
  std::vector<std::pair<std::string, MakeOpt>> makers = {
      {"SGD", one_group<optim::SGDOptions, optim::SGD>({.lr = 0.1, .momentum = 0.9, .nesterov = true})},
      {"Adam", one_group<optim::AdamOptions, optim::Adam>({.lr = 0.01, .betas = {0.9, 0.5}, .amsgrad = true})},
      {"AdamW", one_group<optim::AdamWOptions, optim::AdamW>({.lr = 0.01})},
      {"RMSprop", one_group<optim::RMSpropOptions, optim::RMSprop>({.momentum = 0.9, .centered = true})},
      {"Adagrad", one_group<optim::AdagradOptions, optim::Adagrad>({.lr = 0.1, .lr_decay = 0.1})}};
  for (auto& [name, make] : makers) {
    Problem pr = make_problem(5);
    std::vector<Tensor> a = fresh_params(pr);
    auto opt = make(a);
    for (size_t k = 0; k < 2; ++k) set_grads(a, pr.grads[k]), opt->step();
    optim::StateDict sd = opt->state_dict();
    EXPECT_EQ(sd.scalar("state.0.step"), 2.0) << name;
    EXPECT_EQ(sd.scalar("param_groups.0.num_params"), 2.0) << name;

    std::vector<Tensor> b;
    for (const Tensor& p : a) b.push_back(p.detach().clone().requires_grad_(true));
    auto other = make(b);
    other->set_lr(123.0);
    other->load_state_dict(sd);
    EXPECT_EQ(other->get_lr(), opt->get_lr()) << name;
    set_grads(a, pr.grads[2]), opt->step();
    set_grads(b, pr.grads[2]), other->step();
    for (size_t i = 0; i < 2; ++i) EXPECT_TRUE(equal(a[i].detach(), b[i].detach())) << name << " param " << i;
  }
}

TEST(OptimStateDict, AdamBuffersMatchTorchState) {
  Problem pr = make_problem(6);
  std::vector<Tensor> ps = fresh_params(pr);
  optim::Adam opt(ps, {.lr = 0.01, .amsgrad = true});
  for (size_t k = 0; k < 3; ++k) set_grads(ps, pr.grads[k]), opt.step();
  optim::StateDict sd = opt.state_dict();
  auto r = torch_run("ps = [p0.clone().requires_grad_(), p1.clone().requires_grad_()]\n"
                     "opt = torch.optim.Adam(ps, lr=0.01, amsgrad=True)\n"
                     "for G in [[g00, g01], [g10, g11], [g20, g21]]:\n"
                     "  for p, g in zip(ps, G): p.grad = g.clone()\n"
                     "  opt.step()\n"
                     "sd = opt.state_dict()\n"
                     "for k in ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq', 'step']: out[k] = sd['state'][1][k]\n"
                     "out['beta2'] = torch.tensor(sd['param_groups'][0]['betas'][1], dtype=torch.float64)",
                     {{"p0", pr.init[0]}, {"p1", pr.init[1]}, {"g00", pr.grads[0][0]}, {"g01", pr.grads[0][1]},
                      {"g10", pr.grads[1][0]}, {"g11", pr.grads[1][1]}, {"g20", pr.grads[2][0]},
                      {"g21", pr.grads[2][1]}});
  for (const char* k : {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"})
    EXPECT_PARITY(k, sd.tensor(std::string("state.1.") + k), r[k]);
  EXPECT_EQ(sd.scalar("state.1.step"), r["step"].item());
  EXPECT_DOUBLE_EQ(sd.scalar("param_groups.0.betas.1"), r["beta2"].item());
  EXPECT_EQ(sd.scalar("param_groups.0.amsgrad"), 1.0);
}

TEST(OptimStateDict, MismatchesAreErrors) {
  Problem pr = make_problem(7);
  std::vector<Tensor> ps = fresh_params(pr);
  optim::SGD opt(ps, {.lr = 0.1, .momentum = 0.9});
  set_grads(ps, pr.grads[0]);
  opt.step();
  optim::StateDict sd = opt.state_dict();
  optim::SGD fewer({ps[0]}, {.lr = 0.1});
  EXPECT_THROW(fewer.load_state_dict(sd), Error);
  optim::Adam adam(ps);
  EXPECT_THROW(adam.load_state_dict(sd), Error);  // no betas in an SGD dict
  std::vector<Tensor> other = {randn({4, 3}).requires_grad_(true), randn({5}).requires_grad_(true)};
  optim::SGD wrong_shape(other, {.lr = 0.1});
  EXPECT_THROW(wrong_shape.load_state_dict(sd), Error);
}

TEST(Optim, ZeroGradAndErrors) {
  Tensor p = randn({3}).requires_grad_(true);
  optim::SGD opt({p}, {.lr = 0.1});
  (p * p).sum().backward();
  opt.zero_grad();
  ASSERT_TRUE(p.grad().defined());
  EXPECT_EQ(p.grad().tolist(), std::vector<double>({0, 0, 0}));
  opt.zero_grad(true);
  EXPECT_FALSE(p.grad().defined());
  opt.step();  // params without grad are skipped
  // A strided parameter is updated through a contiguous copy and written back.
  Tensor strided = randn({3, 4}).t().detach().requires_grad_(true);
  Tensor dense = strided.contiguous().detach().requires_grad_(true);
  Tensor g = randn({4, 3});
  strided.set_grad(g.clone()), dense.set_grad(g.clone());
  optim::Adam({strided}, {.lr = 0.1}).step();
  optim::Adam({dense}, {.lr = 0.1}).step();
  EXPECT_TRUE(equal(strided.detach(), dense.detach()));
  EXPECT_FALSE(strided.is_contiguous());
  EXPECT_THROW(optim::SGD({p}, {.momentum = 0.9}), Error);  // lr is required
  EXPECT_THROW(optim::SGD({p}, {.lr = 0.1, .nesterov = true}), Error);
  EXPECT_THROW(optim::Adam({p}, {.betas = {1.0, 0.999}}), Error);
  EXPECT_THROW(optim::SGD({p, p}, {.lr = 0.1}), Error);
  EXPECT_THROW(optim::SGD({p * 2.0}, {.lr = 0.1}), Error);  // non-leaf
}

// ---------------------------------------------------------------- schedulers

namespace {

using MakeSched = std::function<std::function<void()>(optim::Optimizer&)>;  // returns "step the scheduler"

// 30 steps of a scheduler over an SGD (or Adam) with two groups (lr 0.1 and 0.05): the lr of each group
// before every step, and with track_momentum the momentum (SGD) / beta1 (Adam) too, against torch's.
void sched_parity(const std::string& torch_sched, const MakeSched& make, bool adam = false, bool track_momentum = false,
                  const std::string& prelude = "") {
  const std::string groups = "[{'params': [a]}, {'params': [b], 'lr': 0.05}]";
  const std::string ctor = std::string(adam ? "torch.optim.Adam(" : "torch.optim.SGD(") + groups + ", lr=0.1)";
  const std::string mom = adam ? "g['betas'][0]" : "g['momentum']";
  auto r = torch_run("import math\na = torch.zeros(1, requires_grad=True)\nb = torch.zeros(1, requires_grad=True)\n" +
                         prelude + "opt = " + ctor + "\nsched = " + torch_sched + "\nlrs, moms = [], []\n"
                     "for i in range(30):\n"
                     "  lrs.append([g['lr'] for g in opt.param_groups])\n"
                     "  moms.append([" + mom + " for g in opt.param_groups])\n"
                     "  opt.step()\n"
                     "  sched.step()\n"
                     "out['lr'] = torch.tensor(lrs, dtype=torch.float64)\n"
                     "out['mom'] = torch.tensor(moms, dtype=torch.float64)\n",
                     {});
  std::vector<Tensor> a = {zeros({1}).requires_grad_(true)}, b = {zeros({1}).requires_grad_(true)};
  std::unique_ptr<optim::Optimizer> opt;
  if (adam) {
    using Groups = std::vector<optim::ParamGroup<optim::AdamOptions>>;
    opt = std::make_unique<optim::Adam>(Groups{{a, {.lr = 0.1}}, {b, {.lr = 0.05}}});
  } else {
    using Groups = std::vector<optim::ParamGroup<optim::SGDOptions>>;
    opt = std::make_unique<optim::SGD>(Groups{{a, {.lr = 0.1}}, {b, {.lr = 0.05}}});
  }
  auto step = make(*opt);
  std::vector<double> lrs, moms;
  for (int i = 0; i < 30; ++i) {
    for (size_t g = 0; g < 2; ++g) lrs.push_back(opt->get_lr(g)), moms.push_back(opt->get_momentum(g));
    opt->step();
    step();
  }
  EXPECT_PARITY(torch_sched + " lr", tensor(lrs, {30, 2}, {.dtype = DType::f64}), r["lr"], 1e-12);
  if (track_momentum) {
    EXPECT_PARITY(torch_sched + " momentum", tensor(moms, {30, 2}, {.dtype = DType::f64}), r["mom"], 1e-12);
  }
}

// Keeps the scheduler alive inside the returned closure.
template <class S, class O>
MakeSched sched(O o) {
  return [o](optim::Optimizer& opt) {
    auto s = std::make_shared<S>(opt, o);
    return std::function<void()>([s] { s->step(); });
  };
}

}  // namespace

TEST(SchedulerParity, StepMultiStepExponentialCosine) {
  using namespace optim;
  sched_parity("torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.5)", sched<StepLR>(StepLROptions{7, 0.5}));
  sched_parity("torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[5, 12, 12, 20], gamma=0.3)",
               sched<MultiStepLR>(MultiStepLROptions{{5, 12, 12, 20}, 0.3}));
  sched_parity("torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)",
               sched<ExponentialLR>(ExponentialLROptions{0.9}));
  sched_parity("torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10, eta_min=0.001)",
               sched<CosineAnnealingLR>(CosineAnnealingLROptions{10, 0.001}));
}

TEST(SchedulerParity, LinearWarmupCosineAsLambdaLR) {
  sched_parity("torch.optim.lr_scheduler.LambdaLR(opt, [f(0.1), f(0.05)])",
               sched<optim::LinearWarmupCosine>(optim::LinearWarmupCosineOptions{5, 25, 0.002}), false, false,
               "def f(base):\n"
               "  def lam(t):\n"
               "    if t < 5: return t / 5\n"
               "    prog = min(1.0, (t - 5) / 20)\n"
               "    return (0.002 + (base - 0.002) * 0.5 * (1 + math.cos(math.pi * prog))) / base\n"
               "  return lam\n");
}

TEST(SchedulerParity, OneCycleLR) {
  using optim::OneCycleLR, optim::OneCycleLROptions;
  sched_parity("torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[1.0, 0.5], total_steps=30)",
               sched<OneCycleLR>(OneCycleLROptions{.max_lr = {1.0, 0.5}, .total_steps = 30}), false, true);
  sched_parity("torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.4, total_steps=30, pct_start=0.25, "
               "anneal_strategy='linear', div_factor=10.0, final_div_factor=100.0, three_phase=True)",
               sched<OneCycleLR>(OneCycleLROptions{.max_lr = {0.4}, .total_steps = 30, .pct_start = 0.25,
                                                   .anneal_strategy = "linear", .div_factor = 10,
                                                   .final_div_factor = 100, .three_phase = true}),
               true, true);
  sched_parity("torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.3, epochs=6, steps_per_epoch=5, "
               "cycle_momentum=False)",
               sched<OneCycleLR>(OneCycleLROptions{.max_lr = {0.3}, .epochs = 6, .steps_per_epoch = 5,
                                                   .cycle_momentum = false}), true, true);
}

TEST(SchedulerParity, ReduceLROnPlateau) {
  const std::vector<double> metrics = {1.0, 0.9, 0.95, 0.95, 0.95, 0.8, 0.85, 0.85,
                                       0.85, 0.85, 0.7, 0.7, 0.7, 0.7, 0.7};
  std::string py_metrics = "[";
  for (double m : metrics) py_metrics += std::to_string(m) + ", ";
  py_metrics += "]";
  for (bool max_mode : {false, true}) {
    const std::string args = max_mode ? "mode='max', factor=0.5, patience=1, threshold=0.01, threshold_mode='abs', "
                                        "cooldown=1, min_lr=[0.02, 0.01]"
                                      : "factor=0.5, patience=2, cooldown=1, min_lr=0.02";
    auto r = torch_run("a = torch.zeros(1, requires_grad=True)\nb = torch.zeros(1, requires_grad=True)\n"
                       "opt = torch.optim.SGD([{'params': [a]}, {'params': [b], 'lr': 0.05}], lr=0.1)\n"
                       "s = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, " + args + ")\nlrs = []\n"
                       "for m in " + py_metrics + ":\n"
                       "  s.step(m)\n"
                       "  lrs.append([g['lr'] for g in opt.param_groups])\n"
                       "out['lr'] = torch.tensor(lrs, dtype=torch.float64)\n",
                       {});
    std::vector<Tensor> a = {zeros({1}).requires_grad_(true)}, b = {zeros({1}).requires_grad_(true)};
    optim::SGD opt({{a, {.lr = 0.1}}, {b, {.lr = 0.05}}});
    optim::ReduceLROnPlateauOptions o =
        max_mode ? optim::ReduceLROnPlateauOptions{.mode = "max", .factor = 0.5, .patience = 1, .threshold = 0.01,
                                                   .threshold_mode = "abs", .cooldown = 1, .min_lr = {0.02, 0.01}}
                 : optim::ReduceLROnPlateauOptions{.factor = 0.5, .patience = 2, .cooldown = 1, .min_lr = {0.02}};
    optim::ReduceLROnPlateau s(opt, o);
    std::vector<double> lrs;
    for (double m : metrics) {
      s.step(m);
      lrs.push_back(opt.get_lr(0)), lrs.push_back(opt.get_lr(1));
    }
    EXPECT_PARITY("ReduceLROnPlateau(" + args + ")", tensor(lrs, {15, 2}, {.dtype = DType::f64}), r["lr"], 1e-12);
  }
}

TEST(SchedulerStateDict, ResumeContinuesTheSchedule) {
  auto run = [](bool resume) {
    Tensor p = zeros({1}).requires_grad_(true);
    optim::SGD opt({p}, {.lr = 0.1});
    optim::CosineAnnealingLR s(opt, {.T_max = 12, .eta_min = 0.01});
    for (int i = 0; i < 7; ++i) s.step();
    std::vector<double> lrs;
    if (resume) {
      Tensor q = zeros({1}).requires_grad_(true);
      optim::SGD opt2({q}, {.lr = 0.5});
      optim::CosineAnnealingLR s2(opt2, {.T_max = 12, .eta_min = 0.01});
      opt2.load_state_dict(opt.state_dict());
      s2.load_state_dict(s.state_dict());
      EXPECT_EQ(s2.last_epoch(), 7);
      for (int i = 0; i < 10; ++i) s2.step(), lrs.push_back(s2.get_last_lr()[0]);
    } else {
      for (int i = 0; i < 10; ++i) s.step(), lrs.push_back(s.get_last_lr()[0]);
    }
    return lrs;
  };
  EXPECT_EQ(run(true), run(false));
}

// ---------------------------------------------------------------- clipping

TEST(ClipParity, GradNormAndValue) {
  manual_seed(9);
  Tensor a = randn({4, 5}), b = randn({7}), ga = randn({4, 5}) * 3.0, gb = randn({7});
  for (std::string type : {"2.0", "1.0", "3.0", "float('inf')"})
    for (double max_norm : {1.0, 100.0}) {
      auto r = torch_run("ps = [a.clone().requires_grad_(), b.clone().requires_grad_()]\n"
                         "ps[0].grad = ga.clone(); ps[1].grad = gb.clone()\n"
                         "out['n'] = torch.nn.utils.clip_grad_norm_(ps, " + std::to_string(max_norm) +
                             ", norm_type=" + type + ")\nout['ga'] = ps[0].grad; out['gb'] = ps[1].grad\n",
                         {{"a", a}, {"b", b}, {"ga", ga}, {"gb", gb}});
      std::vector<Tensor> ps = {a.clone().requires_grad_(true), b.clone().requires_grad_(true)};
      ps[0].set_grad(ga.clone()), ps[1].set_grad(gb.clone());
      const double nt = type == "float('inf')" ? optim::kInf : std::stod(type);
      const double n = optim::clip_grad_norm_(ps, max_norm, nt);
      EXPECT_NEAR(n, r["n"].item(), 1e-5 * r["n"].item()) << "norm_type " << type;
      EXPECT_PARITY("clipped ga, norm_type " + type, ps[0].grad(), r["ga"]);
      EXPECT_PARITY("clipped gb, norm_type " + type, ps[1].grad(), r["gb"]);
    }
  auto r = torch_run("p = a.clone().requires_grad_(); p.grad = ga.clone()\n"
                     "torch.nn.utils.clip_grad_value_([p], 0.5); out['g'] = p.grad",
                     {{"a", a}, {"ga", ga}});
  Tensor p = a.clone().requires_grad_(true);
  p.set_grad(ga.clone());
  optim::clip_grad_value_({p}, 0.5);
  EXPECT_PARITY("clip_grad_value_", p.grad(), r["g"]);
  EXPECT_EQ(optim::clip_grad_norm_(std::vector<Tensor>{randn({2}).requires_grad_(true)}, 1.0), 0.0);  // no grads
  Tensor bad = randn({2}).requires_grad_(true);
  bad.set_grad(tensor({1.0, INFINITY}));
  EXPECT_THROW(optim::clip_grad_norm_({bad}, 1.0, 2.0, true), Error);
}
