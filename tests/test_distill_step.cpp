// train::Distiller and what it relies on: the teacher runs in eval mode without a graph (and its mode is put
// back), DataLoader::batch_indices() names each batch's samples, cached teacher logits train the same student
// as logits computed at every step, and a dataset whose inputs change between epochs is caught, not cached.
#include <gtest/gtest.h>

#include "loom/loom.h"

using namespace loom;

namespace {

// 40 samples of 6 features, 3 classes; with `drift`, epoch e adds e to every input (a stand-in for a random
// augmentation: the same index gives other inputs in another epoch).
class Toy final : public data::Dataset {
 public:
  explicit Toy(bool drift) : drift_(drift) {
    manual_seed(1);
    x_ = randn({40, 6}), y_ = randint(0, 3, {40});
  }
  int64_t size() const override { return 40; }
  data::Example get(int64_t i) const override {
    return {x_.select(0, i) + double(drift_ ? epoch_ : 0), y_.select(0, i)};
  }
  void set_epoch(int64_t e) override { epoch_ = e; }

 private:
  bool drift_;
  int64_t epoch_ = 0;
  Tensor x_, y_;
};

std::shared_ptr<nn::Sequential> mlp(uint64_t seed) {
  manual_seed(seed);
  return std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
      std::make_shared<nn::Linear>(nn::LinearOptions{.in = 6, .out = 8}), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(nn::LinearOptions{.in = 8, .out = 3})});
}

// Trains a fresh student (same init every call) for 2 epochs of batch 8 from `teacher`, cached or not.
nn::StateDict distill(nn::Module& teacher, data::DatasetPtr ds, bool cache) {
  auto student = mlp(7);
  optim::Adam opt(student->parameters(), {.lr = 1e-2});
  data::DataLoader loader(ds, {.batch_size = 8, .shuffle = true, .seed = 3});
  train::Distiller d(teacher, {.temperature = 2, .alpha = 0.7});
  if (cache) d.cache(*ds, /*batch_size=*/16);
  train::fit(*student, loader,
             {.epochs = 2, .optimizer = &opt, .train_loss = d.train_loss(&loader), .progress = train::ProgressMode::None});
  return student->state_dict();
}

}  // namespace

TEST(DataLoaderBatchIndices, NameEachBatchsSamples) {
  auto ds = std::make_shared<Toy>(false);
  data::DataLoader loader(ds, {.batch_size = 16, .shuffle = true, .seed = 5});
  EXPECT_THROW(loader.batch_indices(), Error);  // before the first batch
  const std::vector<int64_t> order = loader.epoch_order(0);
  int64_t k = 0;
  for (auto& b : loader) {
    const std::vector<int64_t>& idx = loader.batch_indices();
    ASSERT_EQ(int64_t(idx.size()), b.data.size(0));
    for (size_t j = 0; j < idx.size(); ++j) EXPECT_EQ(idx[j], order[size_t(k * 16) + j]);
    ++k;
  }
  EXPECT_EQ(k, 3);
}

TEST(Distiller, TeacherInEvalModeWithoutGraphAndModeRestored) {
  auto teacher = std::make_shared<nn::Sequential>(
      std::vector<nn::ModulePtr>{std::make_shared<nn::Linear>(nn::LinearOptions{.in = 6, .out = 3}),
                                 std::make_shared<nn::Dropout>(nn::DropoutOptions{.p = 0.5})});
  teacher->train();
  train::Distiller d(*teacher, {.temperature = 2, .alpha = 0.5});
  Tensor x = randn({5, 6});
  Tensor a = d.teacher_logits(x), b = d.teacher_logits(x);
  EXPECT_FALSE(a.requires_grad());
  EXPECT_EQ(amax(abs(a - b)).item(), 0.0);  // dropout off: the same logits twice
  EXPECT_TRUE(teacher->is_training());
  Tensor s = randn({5, 3}).requires_grad_(true);
  d.loss(s, x, randint(0, 3, {5})).backward();
  EXPECT_TRUE(s.grad().defined());
  for (const auto& p : teacher->parameters()) EXPECT_FALSE(p.grad().defined());
  EXPECT_THROW(train::Distiller(*teacher, {.temperature = -1}), Error);
}

TEST(Distiller, CachedLogitsTrainTheSameStudent) {
  auto teacher = mlp(11);
  auto ds = std::make_shared<Toy>(false);
  nn::StateDict fly = distill(*teacher, ds, false), cached = distill(*teacher, ds, true);
  for (const auto& [k, t] : fly) EXPECT_LT(amax(abs(t - cached.at(k))).item(), 1e-5) << k;
  // And the teacher mattered: another teacher gives another student.
  nn::StateDict other = distill(*mlp(12), ds, false);
  EXPECT_GT(amax(abs(fly.begin()->second - other.at(fly.begin()->first))).item(), 1e-4);
}

TEST(Distiller, InputsThatChangeBetweenEpochsAreNotCached) {
  auto teacher = mlp(11);
  auto ds = std::make_shared<Toy>(true);
  try {
    distill(*teacher, ds, true);
    ADD_FAILURE() << "a drifting dataset was distilled from a stale cache";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot be cached"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("epoch 2"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(distill(*teacher, ds, false));  // on the fly it is fine
}
