// What a run leaves on disk (PNG encoder, charts, metrics.csv, the run folder) and the models by name.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "loom/loom.h"
#include "support/scratch.h"

using namespace loom;
namespace fs = std::filesystem;

using loom::test::slurp;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("loom_test_train_output_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

}  // namespace

TEST(Png, DecodesBackToTheSamePixels) {
  // stb_image (the data layer's decoder) is an independent PNG reader: what it reads must be what we drew.
  train::Image img(7, 5, {10, 20, 30});
  img.set(0, 0, {255, 0, 0});
  img.set(6, 4, {0, 255, 0});
  img.set(3, 2, {1, 2, 3});
  img.set(100, 100, {9, 9, 9});  // outside: ignored
  const fs::path d = temp_dir("png");
  train::write_png((d / "a.png").string(), img);
  Tensor t = data::read_image((d / "a.png").string(), 3);
  ASSERT_EQ(t.shape(), (Shape{5, 7, 3}));
  const uint8_t* p = t.data<uint8_t>();
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 7; ++x) {
      const train::Rgb c = img.get(x, y);
      const uint8_t* q = p + (y * 7 + x) * 3;
      ASSERT_EQ((train::Rgb{q[0], q[1], q[2]}), c) << x << "," << y;
    }
  const std::string bytes = train::encode_png(img);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(bytes.substr(bytes.size() - 8, 4), "IEND");
  fs::remove_all(d);
}

TEST(Plot, TicksAndChartsDrawTheSeries) {
  const auto t01 = train::nice_ticks(0.0, 1.0, 5);
  ASSERT_EQ(t01.size(), 6u);
  for (size_t i = 0; i < t01.size(); ++i) EXPECT_NEAR(t01[i], 0.2 * double(i), 1e-12);
  EXPECT_EQ(train::nice_ticks(1.0, 2.0, 6, 1.0), (std::vector<double>{1.0, 2.0}));
  const auto t = train::nice_ticks(0.013, 0.87, 4);
  EXPECT_DOUBLE_EQ(t.front(), 0.2);
  EXPECT_DOUBLE_EQ(t.back(), 0.8);

  train::Chart c{.title = "loss", .xlabel = "epoch", .series = {}};
  c.series.push_back({.name = "train", .x = {1, 2, 3}, .y = {0.9, 0.5, 0.4}, .color = train::kBlue});
  c.series.push_back({.name = "val", .x = {1, 2, 3}, .y = {0.8, 0.6, 0.55}, .color = train::kOrange});
  train::Image img = train::render_charts({c, c}, 300, 200);
  EXPECT_EQ(img.width(), 600);
  EXPECT_EQ(img.height(), 200);
  int blue = 0, orange = 0;
  for (int y = 0; y < img.height(); ++y)
    for (int x = 0; x < img.width(); ++x) {
      blue += img.get(x, y) == train::kBlue;
      orange += img.get(x, y) == train::kOrange;
    }
  EXPECT_GT(blue, 200);  // two panels of lines, markers and a legend swatch each
  EXPECT_GT(orange, 200);
  train::Image text(40, 10);
  EXPECT_EQ(train::draw_text(text, 0, 0, "1.5%", {0, 0, 0}), 24);
}

TEST(RunFolder, MetricsCsvHasOneRowPerEpoch) {
  const fs::path d = temp_dir("csv");
  std::vector<train::Logs> rows = {{{"epoch", 1},
                                    {"loss", 0.5},
                                    {"accuracy", 0.8},
                                    {"val_loss", 0.6},
                                    {"val_accuracy", 0.75},
                                    {"lr", 1e-3},
                                    {"seconds", 12.345},
                                    {"samples_per_s", 4000}},
                                   {{"epoch", 2},
                                    {"loss", 0.25},
                                    {"accuracy", 0.9},
                                    {"val_loss", 0.4},
                                    {"val_accuracy", 0.85},
                                    {"lr", 5e-4},
                                    {"seconds", 11},
                                    {"samples_per_s", 4100}}};
  train::write_metrics_csv((d / "m.csv").string(), rows);
  EXPECT_EQ(slurp(d / "m.csv"),
            "epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds,samples_per_s\n"
            "1,0.5,0.8,0.6,0.75,0.001,12.35,4000.00\n"
            "2,0.25,0.9,0.4,0.85,0.0005,11.00,4100.00\n");
  train::write_curves_png((d / "c.png").string(), rows);
  EXPECT_EQ(data::read_image((d / "c.png").string(), 3).size(1), 960);  // loss + accuracy panels
  fs::remove_all(d);
}

TEST(RunFolder, FitWritesEveryFile) {
  const fs::path d = temp_dir("run");
  manual_seed(0);
  auto model = std::make_shared<nn::Sequential>(nn::Linear({.in = 4, .out = 3}));
  Tensor x = randn({40, 4});
  Tensor y = randint(0, 3, {40});
  data::DataLoader loader(std::make_shared<data::TensorDataset>(x, y), {.batch_size = 8, .shuffle = true});
  optim::SGD opt(model->parameters(), {.lr = 0.1});
  auto run = std::make_shared<train::RunFolder>(
      train::RunFolderOptions{.dir = d.string(), .config_json = "{\"model\": \"linear\"}", .weights_metadata = {}});
  auto ckpt = std::make_shared<train::ModelCheckpoint>(
      train::ModelCheckpointOptions{.path = (d / train::kCheckpointFile).string(), .every_steps = 3});
  train::fit(*model, loader,
             {.epochs = 2, .optimizer = &opt, .callbacks = {run, ckpt}, .progress = train::ProgressMode::None});
  for (const char* f : {"config.json", "metrics.csv", "curves.png", "model.safetensors", "checkpoint.safetensors"})
    EXPECT_TRUE(fs::exists(d / f)) << f;
  EXPECT_EQ(slurp(d / "config.json"), "{\"model\": \"linear\"}\n");
  const std::string csv = slurp(d / "metrics.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 3) << csv;  // header + 2 epochs
  // Steps 3, 6, 9 plus the two epoch ends (steps 5 and 10).
  EXPECT_EQ(ckpt->saves(), 5);
  nn::StateDict w = train::read_weights((d / "model.safetensors").string());
  EXPECT_EQ(w.at("0.weight").tolist(), model->state_dict().at("0.weight").tolist());
  for (const auto& e : fs::directory_iterator(d)) EXPECT_NE(e.path().extension(), ".tmp") << "temp file left behind";
  fs::remove_all(d);
}

TEST(Models, StateDictKeysMatchPyTorchSequentials) {
  auto cnn = models::make_model("cnn", {});
  EXPECT_EQ(cnn->state_dict().keys(), (std::vector<std::string>{"0.weight", "0.bias", "3.weight", "3.bias", "7.weight",
                                                                "7.bias", "9.weight", "9.bias"}));
  EXPECT_EQ(cnn->state_dict().at("7.weight").shape(), (Shape{64, 64 * 5 * 5}));
  EXPECT_EQ(cnn->num_parameters(), 121930);
  auto lenet = models::make_model("lenet", {.channels = 3, .height = 32, .width = 32, .num_classes = 10});
  EXPECT_EQ(lenet->state_dict().at("7.weight").shape(), (Shape{120, 16 * 6 * 6}));
  EXPECT_EQ(lenet->state_dict().at("11.weight").shape(), (Shape{10, 84}));
  auto lenet28 = models::make_model("lenet", {});
  EXPECT_EQ(lenet28->state_dict().at("7.weight").shape(), (Shape{120, 400}));
  auto mlp = models::make_model("mlp", {});
  EXPECT_EQ(mlp->state_dict().keys(),
            (std::vector<std::string>{"1.weight", "1.bias", "3.weight", "3.bias", "5.weight", "5.bias"}));
  EXPECT_EQ(mlp->num_parameters(), 784 * 512 + 512 + 512 * 256 + 256 + 256 * 10 + 10);
  auto lin = models::make_model("linreg", {.features = 13});
  EXPECT_EQ(lin->state_dict().at("0.weight").shape(), (Shape{1, 13}));
  EXPECT_EQ((*cnn)(zeros({2, 1, 28, 28})).shape(), (Shape{2, 10}));
  EXPECT_THROW(models::make_model("resnet", {}), Error);
  EXPECT_THROW(models::make_model("cnn", {.channels = 1, .height = 8, .width = 8}), Error);  // too small
  EXPECT_THROW(models::make_model("linreg", {}), Error);                                     // no features
}
