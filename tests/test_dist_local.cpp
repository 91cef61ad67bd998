// loom/dist in one process: the local communicator, the DistributedSampler's sharding, DDP on one rank
// (identical to plain training), and the collective time-out (which starts a 2-rank job under mpirun).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "loom/dist/dist.h"
#include "loom/loom.h"
#include "support/run_command.h"

using namespace loom;

TEST(DistLocal, OneProcessCollectivesAreTheIdentity) {
  auto c = dist::local_communicator();
  EXPECT_EQ(c->rank(), 0);
  EXPECT_EQ(c->world_size(), 1);
  Tensor x = arange(0, 7).to(DType::f32);
  c->all_reduce(x, dist::ReduceOp::Avg);
  EXPECT_EQ(x.tolist(), arange(0, 7).tolist());
  c->broadcast(x, 0);
  EXPECT_THROW(c->broadcast(x, 1), Error);
  Tensor g = c->all_gather(x.reshape({7, 1}));
  EXPECT_EQ(g.shape(), (Shape{7, 1}));
  EXPECT_EQ(c->all_gather(full({}, 2.0)).shape(), (Shape{1}));
  EXPECT_EQ(c->reduce_scatter(x).tolist(), x.tolist());
  Tensor i = arange(0, 3);
  EXPECT_THROW(c->all_reduce(i, dist::ReduceOp::Avg), Error);
  Tensor nc = zeros({3, 4}).t();
  EXPECT_THROW(c->all_reduce(nc), Error);
  c->barrier();
}

TEST(DistLocal, InitWithoutMpirunGivesTheLocalGroup) {
  if (!dist::launched_by_mpi()) {
    EXPECT_EQ(dist::init()->backend(), "local");
    EXPECT_EQ(dist::world()->world_size(), 1);
  } else {
    EXPECT_EQ(dist::init()->backend(), "mpi");
  }
}

TEST(DistributedSampler, RanksSplitEachBigBatchAndCoverTheEpoch) {
  const int64_t n = 103, b = 4;
  const int w = 3;
  data::RandomSampler one(n, 9);
  for (int64_t epoch : {0, 1, 5}) {
    const std::vector<int64_t> perm = one.indices(epoch);
    std::vector<std::vector<int64_t>> per_rank;
    for (int r = 0; r < w; ++r) {
      data::DistributedSampler s(n, r, w, 9);
      EXPECT_EQ(s.size(), 35);  // ceil(103 / 3)
      per_rank.push_back(s.indices(epoch));
      ASSERT_EQ(int64_t(per_rank.back().size()), s.size());
    }
    // Step k's per-rank batches of b are, together, the k-th batch of w*b of the one-process order.
    for (int64_t k = 0; k * b < 35; ++k) {
      std::multiset<int64_t> ranks, big;
      for (int r = 0; r < w; ++r)
        for (int64_t i = k * b; i < std::min<int64_t>((k + 1) * b, 35); ++i) ranks.insert(per_rank[size_t(r)][size_t(i)]);
      for (int64_t i = k * w * b; i < std::min<int64_t>((k + 1) * w * b, 105); ++i) big.insert(perm[size_t(i % n)]);
      EXPECT_EQ(ranks, big) << "epoch " << epoch << " step " << k;
    }
    // Padding repeats the first indices of the permutation: every sample is seen, two of them twice.
    std::multiset<int64_t> seen;
    for (auto& v : per_rank) seen.insert(v.begin(), v.end());
    EXPECT_EQ(seen.size(), 105u);
    for (int64_t i = 0; i < n; ++i) EXPECT_GE(seen.count(i), 1u);
    EXPECT_EQ(seen.count(perm[0]), 2u);
    EXPECT_EQ(seen.count(perm[1]), 2u);
  }
  // Epochs differ; drop_last cuts instead of padding; no shuffle deals 0, w, 2w, ...
  data::DistributedSampler s0(n, 0, w, 9);
  EXPECT_NE(s0.indices(0), s0.indices(1));
  data::DistributedSampler cut(n, 2, w, 9, {.drop_last = true});
  EXPECT_EQ(cut.size(), 34);
  data::DistributedSampler seq(10, 1, 3, 0, {.shuffle = false});
  EXPECT_EQ(seq.indices(0), (std::vector<int64_t>{1, 4, 7, 0}));
  EXPECT_THROW(data::DistributedSampler(10, 3, 3, 0), Error);
  EXPECT_THROW(data::DistributedSampler(10, 0, 0, 0), Error);
}

TEST(DistDDPLocal, OneRankTrainsExactlyLikePlainTraining) {
  auto make = [] {
    manual_seed(4);
    return std::make_shared<nn::Sequential>(nn::Linear({.in = 5, .out = 7}), nn::ReLU(), nn::Linear({.in = 7, .out = 2}));
  };
  Generator g(1);
  Tensor x = randn({16, 5}, {}, &g);
  Tensor y = randint(0, 2, {16}, {.dtype = DType::i64}, &g);
  auto plain = make(), wrapped = make();
  optim::SGD o1(plain->parameters(), {.lr = 0.1}), o2(wrapped->parameters(), {.lr = 0.1});
  dist::DistributedDataParallel ddp(*wrapped, dist::local_communicator());
  for (int step = 0; step < 3; ++step) {
    o1.zero_grad(true), o2.zero_grad(true);
    cross_entropy((*plain)(x), y).backward();
    ddp.before_forward();
    cross_entropy((*wrapped)(x), y).backward();
    ddp.synchronize();
    o1.step(), o2.step();
  }
  auto a = plain->parameters(), b = wrapped->parameters();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].tolist(), b[i].tolist());
}

TEST(AutogradHooks, PostAccumulateHookSeesTheFinishedGradientDuringBackward) {
  Tensor w = ones({3}).requires_grad_();
  std::vector<double> seen;
  auto acc = autograd::gradient_edge(w).fn;
  auto* node = dynamic_cast<autograd::AccumulateGrad*>(acc.get());
  ASSERT_NE(node, nullptr);
  node->post_hooks.push_back([&](const Tensor& leaf) { seen = leaf.grad().tolist(); });
  ((w * 2.0).sum() + (w * 3.0).sum()).backward();
  EXPECT_EQ(seen, (std::vector<double>{5, 5, 5}));  // both uses summed before the hook runs
}

#ifdef LOOM_MPIEXEC
namespace {
// Leak checks of MPI processes under the sanitizers (ignored otherwise): see tests/CMakeLists.txt.
const std::string kMpiSanitizerEnv = loom::test::mpi_sanitizer_env();
// Runs a 2-rank job whose rank 1 hangs or dies; returns (exit status, output, seconds).
std::tuple<int, std::string, double> run_broken_job(const char* role) {
  const std::string cmd = std::string("OMP_NUM_THREADS=1 LOOM_DIST_TIMEOUT=2 ") + kMpiSanitizerEnv + LOOM_MPIEXEC + " --allow-run-as-root --oversubscribe -np 2 " +
                          LOOM_DIST_MPI_TEST + " " + role + " 2>&1";
  const auto t0 = std::chrono::steady_clock::now();
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[512];
  while (p && fgets(buf, sizeof buf, p)) out += buf;
  const int status = p ? pclose(p) : -1;
  return {status, out, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()};
}
}  // namespace

TEST(DistTimeout, AHungRankStopsTheJobWithAnError) {
  auto [status, out, secs] = run_broken_job("--hang-child");
  EXPECT_NE(status, 0) << out;
  EXPECT_NE(out.find("all_reduce of 10 elements timed out after 2.0 s"), std::string::npos) << out;
  EXPECT_NE(out.find("rank 0 of 2"), std::string::npos) << out;
  EXPECT_LT(secs, 50.0) << "the job should stop soon after the 2 s time-out, not when the sleeping rank wakes";
}

TEST(DistTimeout, ADeadRankStopsTheJob) {
  auto [status, out, secs] = run_broken_job("--die-child");
  EXPECT_NE(status, 0) << out;
  EXPECT_LT(secs, 50.0) << out;
}

// ---- loom train --distributed

namespace {

std::pair<int, std::string> sh(const std::string& cmd) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  std::string out;
  char buf[512];
  while (p && fgets(buf, sizeof buf, p)) out += buf;
  return {p ? pclose(p) : -1, out};
}

std::pair<int, std::string> loom_train(int ranks, const std::string& args) {
  const std::string common = std::string(LOOM_BIN) +
                             " train --model cnn --data fashion-mnist --train-samples 384 --test-samples 64 "
                             "--optimizer sgd --lr 0.05 --momentum 0.9 --threads 1 --json --seed 3 " + args;
  const std::string env = std::string("OMP_NUM_THREADS=1 LOOM_DIST_TIMEOUT=120 ") + kMpiSanitizerEnv;
  if (ranks == 0) return sh(env + common);
  return sh(env + LOOM_MPIEXEC + " --allow-run-as-root --oversubscribe -np " + std::to_string(ranks) + " " + common +
            " --distributed");
}

void expect_same_weights(const std::string& a, const std::string& b, double rtol) {
  auto fa = io::load_safetensors(a), fb = io::load_safetensors(b);
  ASSERT_EQ(fa.tensors.size(), fb.tensors.size());
  for (size_t i = 0; i < fa.tensors.size(); ++i) {
    auto va = fa.tensors[i].second.tolist(), vb = fb.tensors[i].second.tolist();
    ASSERT_EQ(va.size(), vb.size());
    for (size_t k = 0; k < va.size(); ++k)
      ASSERT_NEAR(va[k], vb[k], rtol * std::abs(vb[k]) + 1e-7) << fa.tensors[i].first << " [" << k << "]";
  }
}

}  // namespace

TEST(DistCli, TwoRanksAtBatch16EndLikeOneProcessAtBatch32AndResume) {
  const std::string dir = ::testing::TempDir() + "loom_dist_cli";
  std::filesystem::remove_all(dir);
  // One process, batch 32 (no MPI at all) versus two ranks at batch 16 per rank.
  auto [s1, o1] = loom_train(0, "--batch-size 32 --steps 8 --checkpoint-every 4 --out " + dir + "/one");
  ASSERT_EQ(s1, 0) << o1;
  auto [s2, o2] = loom_train(2, "--batch-size 16 --steps 8 --checkpoint-every 4 --out " + dir + "/two");
  ASSERT_EQ(s2, 0) << o2;
  // Only rank 0 prints: one start and one done event.
  EXPECT_EQ(std::count(o2.begin(), o2.end(), '\n'), 2) << o2;
  EXPECT_NE(o2.find("\"world_size\":2"), std::string::npos) << o2;
  EXPECT_NE(o2.find("\"comm_ms_per_step\""), std::string::npos) << o2;
  expect_same_weights(dir + "/two/model.safetensors", dir + "/one/model.safetensors", 1e-5);

  // Stopped after 4 steps and resumed at the same world size: the same weights as the uninterrupted run.
  auto [s3, o3] = loom_train(2, "--batch-size 16 --steps 4 --checkpoint-every 4 --out " + dir + "/resumed");
  ASSERT_EQ(s3, 0) << o3;
  auto [s4, o4] = loom_train(2, "--batch-size 16 --steps 8 --checkpoint-every 4 --resume --out " + dir + "/resumed");
  ASSERT_EQ(s4, 0) << o4;
  EXPECT_NE(o4.find("\"resumed_at_step\":4"), std::string::npos) << o4;
  expect_same_weights(dir + "/resumed/model.safetensors", dir + "/two/model.safetensors", 0.0);

  // Another world size is refused with a message that says why.
  auto [s5, o5] = loom_train(3, "--batch-size 16 --steps 8 --resume --out " + dir + "/resumed");
  EXPECT_NE(s5, 0);
  EXPECT_NE(o5.find("made with 2 rank(s) and this one has 3"), std::string::npos) << o5;

  // ZeRO-1 from the command line ends where plain DDP does.
  auto [s6, o6] = loom_train(2, "--batch-size 16 --steps 8 --zero --out " + dir + "/zero");
  ASSERT_EQ(s6, 0) << o6;
  expect_same_weights(dir + "/zero/model.safetensors", dir + "/two/model.safetensors", 1e-5);
}
#endif

#ifdef LOOM_MPIEXEC
// A rank that fails alone (here: rank 1 resumes from a corrupt checkpoint, after the group is formed) ends the
// whole job at once with its message, instead of leaving rank 0 in an all_reduce until the collective time-out.
TEST(DistCli, ARankThatFailsAloneStopsTheJobAtOnce) {
  const std::string dir = ::testing::TempDir() + "loom_dist_abort";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir + "/bad");
  std::ofstream(dir + "/bad/checkpoint.safetensors") << "not a checkpoint";
  const std::string common = std::string(LOOM_BIN) +
                             " train --model cnn --data fashion-mnist --train-samples 384 --test-samples 64 --optimizer sgd"
                             " --lr 0.05 --threads 1 --json --seed 3 --batch-size 16 --steps 8 --distributed";
  // MPMD launch: rank 0 starts a fresh run, rank 1 resumes from the corrupt checkpoint. Time-out 120 s.
  const std::string cmd = std::string("OMP_NUM_THREADS=1 LOOM_DIST_TIMEOUT=120 ") + kMpiSanitizerEnv + LOOM_MPIEXEC +
                          " --allow-run-as-root --oversubscribe -np 1 " + common + " --out " + dir + "/ok : -np 1 " +
                          common + " --out " + dir + "/bad --resume";
  const auto t0 = std::chrono::steady_clock::now();
  auto [status, out] = sh(cmd);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(status, 0) << out;
  EXPECT_NE(out.find(dir + "/bad/checkpoint.safetensors"), std::string::npos) << out;  // rank 1's own message
  EXPECT_NE(out.find("rank 1 of 2 failed"), std::string::npos) << out;
  EXPECT_LT(secs, 60.0) << "the job must stop when rank 1 fails, not at the 120 s collective time-out\n" << out;
}
#endif
