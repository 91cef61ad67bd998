// The data layer: DataLoader batching, shuffling, workers and resume; datasets and splits; transforms against
// hand-computed values and PyTorch. File formats are in test_data_formats.cpp.
#include <algorithm>
#include <numeric>
#include <set>

#include <gtest/gtest.h>

#include "loom/loom.h"
#include "support/torch_oracle.h"

using namespace loom;
using namespace loom::data;

namespace {

template <class F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "expected loom::Error mentioning " << parts[0];
  } catch (const Error& e) {
    for (const auto& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what() << " lacks " << p;
  }
}

std::vector<std::vector<double>> run_epoch(DataLoader& l, std::vector<std::vector<double>>* targets = nullptr) {
  std::vector<std::vector<double>> out;
  for (auto& [x, y] : l) {
    out.push_back(x.tolist());
    if (targets) targets->push_back(y.tolist());
  }
  return out;
}

std::shared_ptr<TensorDataset> rows(int64_t n) {
  return std::make_shared<TensorDataset>(arange(0.0, double(n * 3), 1.0).view({n, 3}), arange(n));
}

}  // namespace

TEST(DataLoader, BatchesInOrderAndDropLast) {
  DataLoader l(rows(10), {.batch_size = 4});
  std::vector<std::vector<double>> ys;
  auto xs = run_epoch(l, &ys);
  ASSERT_EQ(xs.size(), 3u);
  EXPECT_EQ(l.num_batches(), 3);
  EXPECT_EQ(ys[0], (std::vector<double>{0, 1, 2, 3}));
  EXPECT_EQ(ys[2], (std::vector<double>{8, 9}));
  EXPECT_EQ(xs[1][0], 12.0);
  for (auto& [x, y] : l) {
    EXPECT_EQ(x.shape(), (Shape{4, 3}));
    EXPECT_EQ(y.dtype(), DType::i64);
    break;
  }
  DataLoader d(rows(10), {.batch_size = 4, .drop_last = true});
  EXPECT_EQ(run_epoch(d).size(), 2u);
  EXPECT_EQ(d.num_batches(), 2);
  EXPECT_THROW(DataLoader(rows(3), {.batch_size = 0}), Error);
}

TEST(DataLoader, ShuffleIsSeededPerEpoch) {
  auto ds = rows(50);
  DataLoader a(ds, {.batch_size = 8, .shuffle = true, .seed = 3}), b(ds, {.batch_size = 8, .shuffle = true, .seed = 3});
  DataLoader c(ds, {.batch_size = 8, .shuffle = true, .seed = 4});
  std::vector<std::vector<double>> ya, yb, yc, ya1;
  run_epoch(a, &ya);
  run_epoch(b, &yb);
  run_epoch(c, &yc);
  run_epoch(a, &ya1);  // second pass: epoch 1
  EXPECT_EQ(ya, yb);
  EXPECT_NE(ya, yc);
  EXPECT_NE(ya, ya1);
  EXPECT_EQ(a.epoch(), 1);
  std::vector<double> flat;
  for (auto& v : ya1) flat.insert(flat.end(), v.begin(), v.end());
  std::vector<int64_t> order = a.epoch_order(1);
  EXPECT_EQ(flat, std::vector<double>(order.begin(), order.end()));
  EXPECT_EQ(order, RandomSampler(50, 3).indices(1));
  std::vector<int64_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> iota(50);
  std::iota(iota.begin(), iota.end(), 0);
  EXPECT_EQ(sorted, iota);
}

TEST(DataLoader, WorkersGiveIdenticalBatches) {
  // Random images through random transforms: the batches depend only on (seed, epoch, index).
  Generator g(1);
  auto base = std::make_shared<ByteImageDataset>(randint(0, 256, {37, 3, 8, 8}, {.dtype = DType::u8}, &g),
                                                 randint(0, 10, {37}, {.dtype = DType::i64}, &g));
  auto aug = transformed(base, Compose({RandomCrop(6, 1), RandomHorizontalFlip(0.5)}), {.seed = 9});
  std::vector<std::vector<double>> ref;
  for (int workers : {0, 1, 3}) {
    for (bool custom_collate : {false, true}) {
      DataLoader l(aug, {.batch_size = 5, .shuffle = true, .num_workers = workers, .prefetch = 2, .seed = 11,
                         .collate = custom_collate ? CollateFn(default_collate) : nullptr});
      std::vector<std::vector<double>> got = run_epoch(l), e1 = run_epoch(l);
      got.insert(got.end(), e1.begin(), e1.end());
      if (ref.empty()) ref = got;
      EXPECT_EQ(got, ref) << workers << " workers";
    }
  }
  ASSERT_EQ(ref.size(), 16u);
  EXPECT_NE(ref[0], ref[8]);
}

TEST(DataLoader, BeginAtResumesTheEpoch) {
  for (int workers : {0, 2}) {
    auto ds = rows(30);
    DataLoader full(ds, {.batch_size = 4, .shuffle = true, .num_workers = workers, .seed = 5});
    full.set_epoch(2);
    std::vector<std::vector<double>> all;
    run_epoch(full, &all);
    DataLoader resumed(ds, {.batch_size = 4, .shuffle = true, .num_workers = workers, .seed = 5});
    resumed.set_epoch(2);
    resumed.begin_at(5);
    std::vector<std::vector<double>> rest;
    run_epoch(resumed, &rest);
    EXPECT_EQ(resumed.epoch(), 2);
    EXPECT_EQ(rest, std::vector<std::vector<double>>(all.begin() + 5, all.end()));
    EXPECT_EQ(run_epoch(resumed).size(), 8u);  // the next pass is the whole of epoch 3
    resumed.begin_at(99);
    EXPECT_THROW(resumed.begin(), Error);
  }
}

namespace {
struct Faulty : Dataset {
  int64_t size() const override { return 12; }
  Example get(int64_t i) const override {
    LOOM_CHECK(i != 7, "sample 7 is broken");
    return {full({2}, double(i)), scalar_tensor(double(i))};
  }
};
struct Counter : IterableDataset {
  int64_t n, at = 0;
  explicit Counter(int64_t n) : n(n) {}
  void start(int64_t) override { at = 0; }
  std::optional<Example> next() override {
    if (at >= n) return std::nullopt;
    ++at;
    return Example{full({1}, double(at - 1)), {}};
  }
};
}  // namespace

TEST(DataLoader, WorkerErrorsReachTheCaller) {
  for (int workers : {0, 3}) {
    DataLoader l(std::make_shared<Faulty>(), {.batch_size = 3, .num_workers = workers});
    expect_error([&] { run_epoch(l); }, {"sample 7 is broken"});
    DataLoader ok(std::make_shared<Faulty>(), {.batch_size = 3, .num_workers = workers});
    ok.begin_at(3);  // batch 3 holds samples 9..11 only
    EXPECT_EQ(run_epoch(ok).size(), 1u);
  }
}

TEST(DataLoader, IterableDataset) {
  for (int workers : {0, 2}) {
    DataLoader l(std::make_shared<Counter>(10), {.batch_size = 4, .num_workers = workers});
    auto xs = run_epoch(l);
    ASSERT_EQ(xs.size(), 3u);
    EXPECT_EQ(xs[2], (std::vector<double>{8, 9}));
    EXPECT_EQ(l.num_batches(), -1);
    l.begin_at(1);
    EXPECT_EQ(run_epoch(l)[0], (std::vector<double>{4, 5, 6, 7}));
    DataLoader d(std::make_shared<Counter>(10), {.batch_size = 4, .drop_last = true, .num_workers = workers});
    EXPECT_EQ(run_epoch(d).size(), 2u);
  }
  EXPECT_THROW(DataLoader(std::make_shared<Counter>(3), {.shuffle = true}), Error);
}

TEST(Dataset, RandomSplitSubsetConcat) {
  auto ds = rows(20);
  Generator g1(7), g2(7);
  auto a = random_split(ds, {15, 5}, g1), b = random_split(ds, {15, 5}, g2);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0]->size(), 15);
  EXPECT_EQ(a[0]->indices(), b[0]->indices());
  std::vector<int64_t> all = a[0]->indices();
  all.insert(all.end(), a[1]->indices().begin(), a[1]->indices().end());
  std::sort(all.begin(), all.end());
  for (int64_t i = 0; i < 20; ++i) EXPECT_EQ(all[size_t(i)], i);
  EXPECT_EQ(a[1]->get(2).target.item(), double(a[1]->indices()[2]));
  EXPECT_THROW(random_split(ds, {10, 5}, g1), Error);
  auto cat = std::make_shared<ConcatDataset>(std::vector<DatasetPtr>{rows(3), a[1]});
  EXPECT_EQ(cat->size(), 8);
  EXPECT_EQ(cat->get(2).target.item(), 2.0);
  EXPECT_EQ(cat->get(3).target.item(), double(a[1]->indices()[0]));
  EXPECT_THROW(cat->get(8), Error);
  Batch sb = a[1]->get_batch(std::vector<int64_t>{4, 0});
  EXPECT_EQ(sb.target.tolist(), (std::vector<double>{double(a[1]->indices()[4]), double(a[1]->indices()[0])}));
}

TEST(Transforms, HandComputedValues) {
  Tensor img = tensor({0, 255, 51, 102, 1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 3}, {.dtype = DType::u8});  // (H, W, C)
  Tensor t = ToTensor()(img);
  EXPECT_EQ(t.shape(), (Shape{3, 2, 2}));
  EXPECT_EQ(t.tolist()[0], 0.0);
  EXPECT_FLOAT_EQ(float(t.tolist()[1]), 102.0f / 255.0f);  // channel 0, pixel (0, 1)
  EXPECT_FLOAT_EQ(float(t.tolist()[4]), 1.0f);             // channel 1, pixel (0, 0)
  Tensor n = Normalize({0.5, 0.0, 1.0}, {0.5, 2.0, 1.0})(t);
  EXPECT_FLOAT_EQ(float(n.tolist()[0]), -1.0f);                 // channel 0: (0 - 0.5) / 0.5
  EXPECT_FLOAT_EQ(float(n.tolist()[4]), 0.5f);                  // channel 1: (1 - 0) / 2
  EXPECT_FLOAT_EQ(float(n.tolist()[8]), 51.0f / 255.0f - 1.0f);  // channel 2: (51/255 - 1) / 1
  EXPECT_THROW(Normalize({0.5, 0.5}, {1, 1})(t), Error);
  EXPECT_THROW(ToTensor()(t), Error);
  Tensor hwc = zeros({8, 6, 3}, {.dtype = DType::u8});
  EXPECT_THROW(ToTensor()(hwc.permute({2, 0, 1})), Error);  // (C, H, W) is not what ToTensor takes
  EXPECT_EQ(Resize(4, 4)(hwc).shape(), (Shape{4, 4, 3}));   // a decoded image, as torchvision's PIL path
  EXPECT_EQ(Resize(4)(zeros({8, 6, 3}, {.dtype = DType::u8})).shape(), (Shape{5, 4, 3}));  // short side 6 -> 4
  EXPECT_THROW(CenterCrop(4)(hwc), Error);
  EXPECT_EQ(Resize(4, 4)(ToTensor()(hwc)).shape(), (Shape{3, 4, 4}));

  Tensor x = arange(0.0, 16.0, 1.0).view({1, 4, 4});
  EXPECT_EQ(CenterCrop(2)(x).tolist(), (std::vector<double>{5, 6, 9, 10}));
  // top = round(1.5) = 2 and left = round(0.5) = 0 with Python's rounding
  EXPECT_EQ(CenterCrop(1, 3)(x).tolist(), (std::vector<double>{8, 9, 10}));
  EXPECT_EQ(CenterCrop(2, 6)(x).shape(), (Shape{1, 2, 6}));
  EXPECT_EQ(CenterCrop(2, 6)(x).tolist()[0], 0.0);  // padding
  EXPECT_EQ(CenterCrop(2, 6)(x).tolist()[1], 4.0);
  EXPECT_EQ(hflip(x).tolist()[0], 3.0);
  EXPECT_EQ(crop(x, -1, 2, 2, 3, 7).tolist(), (std::vector<double>{7, 7, 7, 2, 3, 7}));

  // RandomCrop with padding: every result is a window of the zero-padded image, and the same generator
  // state gives the same window.
  Generator g(3);
  std::set<std::vector<double>> seen;
  for (int i = 0; i < 100; ++i) {
    Generator a(100 + i), b(100 + i);
    Tensor c = RandomCrop(4, 1)(x, a);
    EXPECT_EQ(c.tolist(), RandomCrop(4, 1)(x, b).tolist());
    seen.insert(c.tolist());
  }
  EXPECT_EQ(seen.size(), 9u);  // 3 x 3 possible positions, all drawn
  EXPECT_TRUE(seen.count(x.tolist()));
  int flips = 0;
  for (int i = 0; i < 200; ++i) flips += RandomHorizontalFlip(0.25)(x, g).tolist()[0] == 3.0;
  EXPECT_GT(flips, 25);
  EXPECT_LT(flips, 80);
}

TEST(Transforms, ResizeAndNormalizeMatchTorch) {
  Generator g(5);
  Tensor x = rand({3, 13, 17}, {}, &g);
  for (auto [h, w] : std::vector<std::pair<int64_t, int64_t>>{{7, 9}, {32, 20}, {13, 17}, {1, 40}}) {
    auto r = test::torch_run("out['y'] = F.interpolate(x[None], size=(" + std::to_string(h) + ", " + std::to_string(w) +
                             "), mode='bilinear', align_corners=False)[0]", {{"x", x}});
    EXPECT_PARITY("resize " + std::to_string(h) + "x" + std::to_string(w), Resize(h, w)(x), r["y"], 1e-6);
  }
  Tensor img = randint(0, 256, {3, 10, 15}, {.dtype = DType::u8}, &g);
  auto r = test::torch_run(
      "out['y'] = F.interpolate(x.float()[None], size=(6, 9), mode='bilinear', align_corners=False)[0]"
      ".round().to(torch.uint8)",
      {{"x", img}});
  Tensor ours = Resize(6, 9)(img);
  EXPECT_EQ(ours.dtype(), DType::u8);
  EXPECT_EQ(ours.tolist(), r["y"].tolist());
  EXPECT_EQ(Resize(5)(img).shape(), (Shape{3, 5, 7}));  // shorter side 10 -> 5, longer int(5 * 15 / 10)
  auto n = test::torch_run("out['y'] = (x - torch.tensor([0.1, 0.2, 0.3])[:, None, None]) / "
                           "torch.tensor([0.5, 0.25, 2.0])[:, None, None]", {{"x", x}});
  EXPECT_PARITY("normalize", Normalize({0.1, 0.2, 0.3}, {0.5, 0.25, 2.0})(x), n["y"], 1e-6);
}

// Decoded images resize as torchvision's PIL path does: antialiased (interpolate(antialias=True) is PyTorch's
// port of PIL's filter), whether shrinking (every input pixel contributes) or enlarging.
TEST(Transforms, AntialiasedResizeMatchesTorch) {
  Generator g(11);
  Tensor x = rand({3, 37, 23}, {}, &g);
  for (auto [h, w] : std::vector<std::pair<int64_t, int64_t>>{{8, 8}, {5, 11}, {37, 23}, {50, 40}, {1, 3}}) {
    const std::string sz = std::to_string(h) + ", " + std::to_string(w);
    auto r = test::torch_run("out['y'] = F.interpolate(x[None], size=(" + sz +
                             "), mode='bilinear', align_corners=False, antialias=True)[0]", {{"x", x}});
    EXPECT_PARITY("antialiased resize " + sz, resize_bilinear_antialias(x, h, w), r["y"], 1e-5);
    EXPECT_PARITY("antialiased resize f64 " + sz, resize_bilinear_antialias(x.to(DType::f64), h, w),
                  r["y"].to(DType::f64), 1e-5);
  }
  // u8 (H, W, C): the float result rounded; ties may round either way after float sums, so allow 1 level.
  Tensor img = randint(0, 256, {29, 41, 3}, {.dtype = DType::u8}, &g);
  for (auto [h, w] : std::vector<std::pair<int64_t, int64_t>>{{8, 8}, {32, 32}, {64, 50}}) {
    const std::string sz = std::to_string(h) + ", " + std::to_string(w);
    auto r = test::torch_run("out['y'] = F.interpolate(x.permute(2, 0, 1).float()[None], size=(" + sz +
                             "), mode='bilinear', align_corners=False, antialias=True)[0].round().clamp(0, 255)"
                             ".permute(1, 2, 0).contiguous()", {{"x", img}});
    Tensor ours = Resize(h, w)(img);
    ASSERT_EQ(ours.shape(), (Shape{h, w, 3}));
    EXPECT_EQ(ours.dtype(), DType::u8);
    const std::vector<double> a = ours.tolist(), b = r["y"].tolist();
    int64_t exact = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_LE(std::abs(a[i] - b[i]), 1.0) << sz << " at " << i;
      exact += a[i] == b[i];
    }
    EXPECT_GE(double(exact), 0.99 * double(a.size())) << sz;
  }
  // Shrinking a checkerboard averages it (plain bilinear would pick 2 taps of every 8 and keep the pattern).
  std::vector<double> cb;
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x) cb.push_back((x + y) % 2 ? 255 : 0);
  Tensor grey = tensor(cb, {64, 64, 1}, {.dtype = DType::u8});
  const std::vector<double> small = Resize(8, 8)(grey).tolist();
  for (size_t i = 0; i < small.size(); ++i)
    if (i % 8 != 0 && i % 8 != 7) {  // edge columns are one-sided
      EXPECT_NEAR(small[i], 127.5, 1.0) << i;
    }
  EXPECT_THROW(resize_image(zeros({4, 4}, {.dtype = DType::u8}), 2, 2), Error);
}

TEST(Dataset, BatchFastPathsMatchPerSampleCollate) {
  // TensorDataset and ByteImageDataset gather rows directly; the result must equal stacking get(i).
  Generator g(2);
  auto bytes = std::make_shared<ByteImageDataset>(randint(0, 256, {9, 2, 3, 3}, {.dtype = DType::u8}, &g),
                                                  randint(0, 10, {9}, {.dtype = DType::i64}, &g));
  auto rows9 = rows(9);
  const std::vector<int64_t> idx = {8, 0, 3, 3};
  for (DatasetPtr ds : std::vector<DatasetPtr>{bytes, rows9}) {
    Batch fast = ds->get_batch(idx);
    std::vector<Example> ex;
    for (int64_t i : idx) ex.push_back(ds->get(i));
    Batch slow = default_collate(ex);
    EXPECT_EQ(fast.data.shape(), slow.data.shape());
    EXPECT_EQ(fast.data.tolist(), slow.data.tolist());
    EXPECT_EQ(fast.target.tolist(), slow.target.tolist());
    EXPECT_THROW(ds->get_batch(std::vector<int64_t>{1, 9}), Error);
  }
  EXPECT_FLOAT_EQ(float(bytes->get(1).data.tolist()[4]), float(bytes->images().tolist()[18 + 4]) / 255.0f);
}
