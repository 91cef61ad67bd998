// Collectives and DistributedDataParallel across real processes: CTest runs this binary under
// `mpirun -np 2` and `-np 3` (tests/CMakeLists.txt). Every rank runs every test in the same order.
//   mpirun --allow-run-as-root --oversubscribe -np 2 build/tests/test_dist_mpi
// Run with --hang-child / --die-child it plays one side of the time-out test in test_dist_local.cpp.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>

#include "loom/dist/dist.h"
#include "loom/loom.h"

using namespace loom;
using ROp = dist::ReduceOp;

namespace {

dist::Communicator& comm() { return *dist::world(); }

const DType kAllDtypes[] = {DType::f32, DType::f64, DType::i64, DType::i32,
                            DType::u8,  DType::boolean, DType::bf16, DType::f16};

// Rank r's input: small integers (exact in every dtype; sums of 3 ranks fit in u8).
std::vector<double> input_values(int r, int64_t n, DType t) {
  std::vector<double> v(static_cast<size_t>(n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    v[size_t(i)] = t == DType::boolean ? double((i + r) % 3 == 0) : double((i * 7 + r * 3) % 11);
  return v;
}

Tensor to_tensor(const std::vector<double>& v, DType t) {
  Tensor x = make_tensor({int64_t(v.size())}, DType::f64);
  std::copy(v.begin(), v.end(), x.data<double>());
  return x.to(t);
}

// What the reduction over all ranks should give, computed here from every rank's input.
std::vector<double> expected_reduce(int64_t n, DType t, ROp op, int world) {
  std::vector<double> out = input_values(0, n, t);
  for (int r = 1; r < world; ++r) {
    std::vector<double> v = input_values(r, n, t);
    for (size_t i = 0; i < out.size(); ++i) {
      if (op == ROp::Max) out[i] = std::max(out[i], v[i]);
      else if (op == ROp::Min) out[i] = std::min(out[i], v[i]);
      else out[i] += v[i];
    }
  }
  for (auto& x : out) {
    if (op == ROp::Avg) x /= world;
    if (t == DType::boolean) x = x != 0;  // sum on bool is "or"
  }
  return out;
}

void expect_values(const Tensor& got, const std::vector<double>& want, const std::string& what) {
  std::vector<double> g = got.tolist();
  ASSERT_EQ(g.size(), want.size()) << what;
  for (size_t i = 0; i < g.size(); ++i) ASSERT_NEAR(g[i], want[i], 1e-2 * std::abs(want[i]) + 1e-6) << what << " [" << i << "]";
}

}  // namespace

TEST(DistCollectives, RunsOnSeveralRanks) {
  ASSERT_EQ(comm().backend(), "mpi") << "run this test under mpirun (see the header)";
  ASSERT_GE(comm().world_size(), 2);
}

TEST(DistCollectives, AllReduceEveryDtypeAndOpOnOddSizes) {
  const int w = comm().world_size(), r = comm().rank();
  for (DType t : kAllDtypes)
    for (int64_t n : {1, 7, 1031})
      for (ROp op : {ROp::Sum, ROp::Avg, ROp::Max, ROp::Min}) {
        if (op == ROp::Avg && !is_floating(t)) continue;  // refused, checked below
        Tensor x = to_tensor(input_values(r, n, t), t);
        comm().all_reduce(x, op);
        EXPECT_EQ(x.dtype(), t);
        expect_values(x, expected_reduce(n, t, op, w),
                      std::string(dtype_name(t)) + " " + dist::reduce_op_name(op) + " n=" + std::to_string(n));
      }
  Tensor ints = to_tensor(input_values(r, 5, DType::i64), DType::i64);
  EXPECT_THROW(comm().all_reduce(ints, ROp::Avg), Error);
  // The async form gives the same result once waited on.
  Tensor x = to_tensor(input_values(r, 33, DType::f32), DType::f32);
  auto work = comm().all_reduce_async(x, ROp::Sum);
  work->wait();
  EXPECT_TRUE(work->test());
  expect_values(x, expected_reduce(33, DType::f32, ROp::Sum, w), "async");
}

TEST(DistCollectives, BroadcastFromEveryRootEveryDtype) {
  const int w = comm().world_size(), r = comm().rank();
  for (DType t : kAllDtypes)
    for (int root = 0; root < w; ++root) {
      Tensor x = to_tensor(input_values(r, 13, t), t);
      comm().broadcast(x, root);
      expect_values(x, to_tensor(input_values(root, 13, t), t).tolist(), std::string("broadcast ") + dtype_name(t));
    }
  Tensor x = zeros({3});
  EXPECT_THROW(comm().broadcast(x, w), Error);
}

TEST(DistCollectives, AllGatherEveryDtypeOddShapes) {
  const int w = comm().world_size(), r = comm().rank();
  for (DType t : kAllDtypes) {
    Tensor x = to_tensor(input_values(r, 15, t), t).reshape({5, 3});
    Tensor all = comm().all_gather(x);
    ASSERT_EQ(all.shape(), (Shape{5 * w, 3}));
    std::vector<double> want;
    for (int k = 0; k < w; ++k) {
      auto v = input_values(k, 15, t);
      want.insert(want.end(), v.begin(), v.end());
    }
    expect_values(all, to_tensor(want, t).tolist(), std::string("all_gather ") + dtype_name(t));
  }
  Tensor s = full({}, double(r + 1));
  Tensor all = comm().all_gather(s);
  ASSERT_EQ(all.shape(), (Shape{w}));
  for (int k = 0; k < w; ++k) EXPECT_EQ(all.tolist()[size_t(k)], double(k + 1));
}

TEST(DistCollectives, ReduceScatterEveryDtype) {
  const int w = comm().world_size(), r = comm().rank();
  const int64_t rows = 3, cols = 5, n = w * rows * cols;
  for (DType t : kAllDtypes)
    for (ROp op : {ROp::Sum, ROp::Avg, ROp::Max}) {
      if (op == ROp::Avg && !is_floating(t)) continue;
      Tensor x = to_tensor(input_values(r, n, t), t).reshape({w * rows, cols});
      Tensor mine = comm().reduce_scatter(x, op);
      ASSERT_EQ(mine.shape(), (Shape{rows, cols}));
      EXPECT_EQ(mine.dtype(), t);
      std::vector<double> full_ref = expected_reduce(n, t, op, w);
      std::vector<double> want(full_ref.begin() + r * rows * cols, full_ref.begin() + (r + 1) * rows * cols);
      expect_values(mine, want, std::string("reduce_scatter ") + dtype_name(t) + " " + dist::reduce_op_name(op));
    }
  Tensor odd = zeros({w * 2 + 1});
  EXPECT_THROW(comm().reduce_scatter(odd), Error);
  comm().barrier();
}

// ---- DistributedDataParallel

namespace {

std::shared_ptr<data::TensorDataset> blobs(int64_t n, uint64_t seed) {
  Generator g(seed);
  Tensor x = randn({n, 6}, {}, &g);
  Tensor y = randint(0, 3, {n}, {.dtype = DType::i64}, &g);
  return std::make_shared<data::TensorDataset>(x, y);
}

std::shared_ptr<nn::Sequential> mlp() {
  manual_seed(5);
  return std::make_shared<nn::Sequential>(nn::Linear({.in = 6, .out = 16}), nn::ReLU(), nn::Linear({.in = 16, .out = 8}),
                                          nn::Tanh(), nn::Linear({.in = 8, .out = 3}));
}

void expect_close_params(nn::Module& a, nn::Module& b, double rtol, const std::string& what) {
  auto pa = a.parameters(), pb = b.parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    auto va = pa[i].tolist(), vb = pb[i].tolist();
    for (size_t k = 0; k < va.size(); ++k)
      ASSERT_NEAR(va[k], vb[k], rtol * std::abs(vb[k]) + 1e-7) << what << ": parameter " << i << " [" << k << "]";
  }
}

// Every rank holds bit-identical parameters.
void expect_same_on_all_ranks(nn::Module& m) {
  for (const auto& p : m.parameters()) {
    Tensor all = comm().all_gather(p.contiguous());
    auto v = all.tolist();
    const size_t n = size_t(p.numel());
    for (size_t k = n; k < v.size(); ++k) ASSERT_EQ(v[k], v[k % n]) << "ranks disagree";
  }
}

// 1 process at batch W*b versus W ranks at batch b through the Trainer, n divisible by W but not by W*b,
// so the last step has a short batch.
void check_matches_big_batch(double bucket_cap_mb, bool sgd) {
  const int w = comm().world_size(), r = comm().rank();
  const int64_t b = 4, n = int64_t(w) * 22;
  auto ds = blobs(n, 11);

  auto ref = mlp();
  std::unique_ptr<optim::Optimizer> ref_opt;
  if (sgd) ref_opt = std::make_unique<optim::SGD>(ref->parameters(), optim::SGDOptions{.lr = 0.1, .momentum = 0.9});
  else ref_opt = std::make_unique<optim::Adam>(ref->parameters(), optim::AdamOptions{.lr = 0.01});
  data::DataLoader big(ds, {.batch_size = w * b, .shuffle = true, .seed = 3});
  train::fit(*ref, big, {.epochs = 3, .optimizer = ref_opt.get(), .metrics = {}, .progress = train::ProgressMode::None});

  auto model = mlp();
  {  // ranks start out different: DDP must hand rank 0's weights to all
    NoGradGuard g;
    for (auto p : model->parameters()) p.add_(double(r));
  }
  dist::DistributedDataParallel ddp(*model, dist::world(), {.bucket_cap_mb = bucket_cap_mb});
  std::unique_ptr<optim::Optimizer> opt;
  if (sgd) opt = std::make_unique<optim::SGD>(model->parameters(), optim::SGDOptions{.lr = 0.1, .momentum = 0.9});
  else opt = std::make_unique<optim::Adam>(model->parameters(), optim::AdamOptions{.lr = 0.01});
  auto sampler = std::make_shared<data::DistributedSampler>(n, r, w, 3);
  data::DataLoader mine(ds, {.batch_size = b, .sampler = sampler});
  train::FitOptions fo{.epochs = 3, .optimizer = opt.get(), .metrics = {}, .progress = train::ProgressMode::None};
  fo.before_forward = [&] { ddp.before_forward(); };
  fo.after_backward = [&] { ddp.synchronize(); };
  fo.world_size = w;
  train::fit(*model, mine, fo);

  expect_same_on_all_ranks(*model);
  expect_close_params(*model, *ref, 1e-5, sgd ? "sgd" : "adam");
  if (ddp.num_buckets() > 1) EXPECT_GT(ddp.early_launches(), 0) << "no bucket started during backward";
}

}  // namespace

TEST(DistDDP, MatchesOneProcessWithWorldTimesTheBatchAdam) { check_matches_big_batch(1.0, false); }
TEST(DistDDP, MatchesOneProcessWithOneBucketPerParameterSGD) { check_matches_big_batch(1e-6, true); }

TEST(DistDDP, NoSyncAccumulatesLikeTwoBigBatches) {
  const int w = comm().world_size(), r = comm().rank();
  const int64_t b = 3;
  auto ds = blobs(int64_t(w) * b * 2, 21);
  auto ref = mlp();
  optim::SGD ref_opt(ref->parameters(), {.lr = 0.2});
  ref_opt.zero_grad(true);
  for (int k = 0; k < 2; ++k) {  // two big batches, gradients summed, one step
    Tensor x = ds->data().narrow(0, k * w * b, w * b);
    Tensor y = ds->target().narrow(0, k * w * b, w * b);
    cross_entropy((*ref)(x), y).backward();
  }
  ref_opt.step();

  auto model = mlp();
  dist::DistributedDataParallel ddp(*model, dist::world(), {.bucket_cap_mb = 1e-6});
  optim::SGD opt(model->parameters(), {.lr = 0.2});
  opt.zero_grad(true);
  for (int k = 0; k < 2; ++k) {  // rank r takes rows r, r+W, ... of each big batch
    std::vector<int64_t> idx;
    for (int64_t i = r; i < w * b; i += w) idx.push_back(k * w * b + i);
    Tensor index = make_tensor({int64_t(idx.size())}, DType::i64);
    std::copy(idx.begin(), idx.end(), index.data<int64_t>());
    Tensor x = ds->data().index_select(0, index), y = ds->target().index_select(0, index);
    if (k == 0) {
      auto guard = ddp.no_sync();
      cross_entropy((*model)(x), y).backward();
      ddp.synchronize();  // a no-op inside no_sync
    } else {
      cross_entropy((*model)(x), y).backward();
      ddp.synchronize();
    }
  }
  opt.step();
  expect_same_on_all_ranks(*model);
  expect_close_params(*model, *ref, 1e-5, "no_sync");
}

TEST(DistDDP, BuffersFollowRankZeroOrTheAverage) {
  const int w = comm().world_size(), r = comm().rank();
  for (auto mode : {dist::BufferSync::Broadcast, dist::BufferSync::Average}) {
    manual_seed(2);
    auto model = std::make_shared<nn::Sequential>(nn::Linear({.in = 4, .out = 4}), nn::BatchNorm1d({.num_features = 4}));
    dist::DistributedDataParallel ddp(*model, dist::world(), {.buffers = mode});
    Tensor x = randn({6, 4}) + double(r);  // each rank's statistics differ
    (*model)(x).sum().backward();
    ddp.synchronize();
    Tensor mean_here = model->buffers()[0].clone();
    ddp.before_forward();
    Tensor all = comm().all_gather(mean_here);
    Tensor want = mode == dist::BufferSync::Broadcast ? all.narrow(0, 0, 4) : all.reshape({w, 4}).mean({0});
    expect_values(model->buffers()[0], want.tolist(), "running_mean");
  }
}

// ---- ZeRO-1

namespace {

std::unique_ptr<optim::Optimizer> adam(std::vector<Tensor> p) {
  return std::make_unique<optim::Adam>(std::move(p), optim::AdamOptions{.lr = 0.01, .weight_decay = 0.01});
}

// Trains `model` 6 steps on rank r's rows of a fixed batch.
template <class Step>
void train_steps(nn::Module& model, Step&& step_fn) {
  const int w = comm().world_size(), r = comm().rank();
  auto ds = blobs(int64_t(w) * 5, 31);
  std::vector<int64_t> idx;
  for (int64_t i = r; i < w * 5; i += w) idx.push_back(i);
  Tensor index = make_tensor({int64_t(idx.size())}, DType::i64);
  std::copy(idx.begin(), idx.end(), index.data<int64_t>());
  Tensor x = ds->data().index_select(0, index), y = ds->target().index_select(0, index);
  for (int s = 0; s < 6; ++s) step_fn(cross_entropy(model(x), y));
}

}  // namespace

TEST(DistZero, ShardedAdamMatchesPlainDDP) {
  const int w = comm().world_size();
  auto plain = mlp();
  dist::DistributedDataParallel ddp(*plain, dist::world());
  auto opt = adam(plain->parameters());
  train_steps(*plain, [&](Tensor loss) {
    opt->zero_grad(true);
    loss.backward();
    ddp.synchronize();
    opt->step();
  });

  for (bool grads_reduced : {false, true}) {
    auto model = mlp();
    dist::DistributedDataParallel zddp(*model, dist::world(), {.reduce_gradients = grads_reduced});
    dist::ZeroRedundancyOptimizer zopt(model->parameters(), dist::world(), adam, {.grads_reduced = grads_reduced});
    train_steps(*model, [&](Tensor loss) {
      zopt.zero_grad(true);
      loss.backward();
      zddp.synchronize();
      zopt.step();
    });
    expect_same_on_all_ranks(*model);
    expect_close_params(*model, *plain, 1e-5, grads_reduced ? "zero after ddp" : "zero reduce-scatter");
    // Each rank holds the optimizer state of its shard only.
    EXPECT_EQ(zopt.shard_size(), (zopt.total_size() + w - 1) / w);
    const optim::ParamState* st = zopt.local_optimizer().state(zopt.local_optimizer().params(0)[0]);
    ASSERT_NE(st, nullptr);
    EXPECT_EQ(st->buffers[0].numel(), zopt.shard_size());
    EXPECT_LT(zopt.shard_size(), zopt.total_size());
  }
}

TEST(DistZero, ClipsWithTheGlobalNormOfTheAveragedGradient) {
  auto plain = mlp();
  dist::DistributedDataParallel ddp(*plain, dist::world());
  optim::SGD opt(plain->parameters(), {.lr = 0.5});
  std::vector<double> norms;
  train_steps(*plain, [&](Tensor loss) {
    opt.zero_grad(true);
    loss.backward();
    ddp.synchronize();
    norms.push_back(optim::clip_grad_norm_(plain->parameters(), 0.05));
    opt.step();
  });
  auto model = mlp();
  dist::DistributedDataParallel zddp(*model, dist::world(), {.reduce_gradients = false});
  auto sgd = [](std::vector<Tensor> p) { return std::make_unique<optim::SGD>(std::move(p), optim::SGDOptions{.lr = 0.5}); };
  dist::ZeroRedundancyOptimizer zopt(model->parameters(), dist::world(), sgd, {.max_grad_norm = 0.05});
  size_t k = 0;
  train_steps(*model, [&](Tensor loss) {
    zopt.zero_grad(true);
    loss.backward();
    zddp.synchronize();
    zopt.step();
    EXPECT_NEAR(zopt.last_grad_norm(), norms[k++], 1e-5 * norms[0]);
  });
  expect_close_params(*model, *plain, 1e-5, "zero clipped");
}

int main(int argc, char** argv) {
  // The time-out test's child roles: rank 1 hangs (or dies) while rank 0 waits in an all-reduce.
  if (argc > 1 && (!std::strcmp(argv[1], "--hang-child") || !std::strcmp(argv[1], "--die-child"))) {
    auto c = dist::init();
    if (c->rank() == 1) {
      if (!std::strcmp(argv[1], "--die-child")) std::_Exit(7);
      std::this_thread::sleep_for(std::chrono::seconds(60));
      return 0;
    }
    Tensor x = ones({10});
    c->all_reduce(x);
    return 0;  // not reached: the all-reduce cannot finish
  }
  testing::InitGoogleTest(&argc, argv);
  dist::init();
  return RUN_ALL_TESTS();
}
