// loom train / eval / predict on a folder of images, as a user would point it at their own photos: RGB PNGs and
// JPEGs (and a grey PNG) of mixed sizes, one sub-folder per class, with train/ and val/ sub-folders and without.
// The classes differ by colour, so a short run must learn them; the images are written here with stb_image_write.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <stb/stb_image_write.h>

#include "support/loom_cli.h"
#include "support/run_command.h"

using loom::test::CommandResult;
using loom::test::json_lines;
namespace fs = std::filesystem;

using loom::test::loom_cmd;

namespace {

fs::path fresh_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("loom_test_imgfolder_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// The colour each class is drawn in: noise around it, plus a gradient so no two images are alike.
const std::vector<std::pair<std::string, std::array<int, 3>>> kClasses = {
    {"blue", {30, 40, 220}}, {"green", {40, 200, 50}}, {"red", {220, 40, 30}}};

// Writes image `i` of class `c` into `dir`: sizes and formats vary with i (PNG, JPEG, grey PNG).
fs::path write_image(const fs::path& dir, size_t c, int i, std::mt19937& rng) {
  const int sizes[][2] = {{20, 30}, {48, 64}, {33, 17}, {64, 40}, {3, 40}, {9, 50}};  // (h, w); 3 rows: a strip
  const int h = sizes[i % 6][0], w = sizes[i % 6][1];
  const bool grey = c == 0 && i % 7 == 3;  // a grey image, converted to RGB when read (dark: stays nearest blue)
  const int ch = grey ? 1 : 3;
  std::vector<unsigned char> px(size_t(h * w * ch));
  std::uniform_int_distribution<int> noise(-25, 25);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < ch; ++k) {
        const int base = grey ? 60 : kClasses[c].second[size_t(k)];
        px[size_t((y * w + x) * ch + k)] = (unsigned char)std::clamp(base + noise(rng) + (x - w / 2) / 4, 0, 255);
      }
  fs::create_directories(dir);
  const bool jpeg = i % 2 == 1;
  const fs::path p = dir / ("img" + std::to_string(i) + (jpeg ? ".jpg" : ".png"));
  const int ok = jpeg ? stbi_write_jpg(p.c_str(), w, h, ch, px.data(), 90)
                      : stbi_write_png(p.c_str(), w, h, ch, px.data(), w * ch);
  EXPECT_NE(ok, 0) << "could not write " << p;
  return p;
}

// `n` images per class under root/<class>/.
void write_split(const fs::path& root, int n, uint32_t seed) {
  std::mt19937 rng(seed);
  for (size_t c = 0; c < kClasses.size(); ++c)
    for (int i = 0; i < n; ++i) write_image(root / kClasses[c].first, c, i, rng);
}

const std::string kTrain = " --model cnn --image-size 16 --batch-size 8 --threads 2 --progress none --json";

nlohmann::json last_event(const std::string& out, const std::string& name) {
  nlohmann::json r;
  for (const auto& j : json_lines(out))
    if (j.value("event", "") == name) r = j;
  return r;
}

}  // namespace

TEST(CliImageFolder, TrainEvalPredictWithTrainAndValFolders) {
  const fs::path d = fresh_dir("split");
  write_split(d / "data" / "train", 16, 1);
  write_split(d / "data" / "val", 6, 2);
  const std::string run = (d / "run").string();
  CommandResult t = loom_cmd("train --data imagefolder:" + (d / "data").string() + kTrain + " --epochs 6 --out " + run);
  ASSERT_EQ(t.status, 0) << t.out << t.err;
  const nlohmann::json done = last_event(t.out, "done");
  ASSERT_FALSE(done.is_null()) << t.out;
  // 18 val images, colours far apart (chance: 1/3); the grey "blue" image may be missed.
  EXPECT_GE(done["test_accuracy"].get<double>(), 0.85) << t.out;
  const nlohmann::json start = last_event(t.out, "start");
  EXPECT_EQ(start["train_samples"], 48);
  EXPECT_TRUE(fs::exists(fs::path(run) / "model.safetensors"));

  // eval reads the recorded data (the val/ folder) with the same resize and normalisation.
  CommandResult e = loom_cmd("eval --checkpoint " + run + " --threads 2 --json");
  ASSERT_EQ(e.status, 0) << e.out << e.err;
  const nlohmann::json ev = last_event(e.out, "eval");
  EXPECT_EQ(ev["samples"], 18);
  EXPECT_NEAR(ev["accuracy"].get<double>(), done["test_accuracy"].get<double>(), 1e-9);

  // predict on new files of every class and format, sizes unlike any in training.
  std::mt19937 rng(7);
  std::string files;
  std::vector<std::string> truth;
  for (size_t c = 0; c < kClasses.size(); ++c)
    for (int i : {0, 1}) {  // a PNG and a JPEG
      files += " " + write_image(d / "new" / kClasses[c].first, c, i + 4, rng).string();
      truth.push_back(kClasses[c].first);
    }
  CommandResult p = loom_cmd("predict --checkpoint " + run + " --json --top 3" + files);
  ASSERT_EQ(p.status, 0) << p.out << p.err;
  const auto preds = json_lines(p.out);
  ASSERT_EQ(preds.size(), truth.size()) << p.out;
  int right = 0;
  for (size_t i = 0; i < preds.size(); ++i) {
    ASSERT_EQ(preds[i]["top"].size(), 3u);
    right += preds[i]["top"][0]["class"] == truth[i];
  }
  EXPECT_GE(right, 5) << p.out;
}

TEST(CliImageFolder, TrainAndEvalOnOneFolderSplitsIt) {
  const fs::path d = fresh_dir("flat");
  write_split(d / "data", 12, 3);
  const std::string run = (d / "run").string();
  CommandResult t = loom_cmd("train --data imagefolder:" + (d / "data").string() + kTrain + " --epochs 6 --out " + run);
  ASSERT_EQ(t.status, 0) << t.out << t.err;
  const nlohmann::json done = last_event(t.out, "done"), start = last_event(t.out, "start");
  EXPECT_EQ(start["train_samples"], 29);  // 36 images, a fifth (7) held out for the test split
  EXPECT_GE(done["test_accuracy"].get<double>(), 5.0 / 7.0) << t.out;

  CommandResult e = loom_cmd("eval --checkpoint " + run + " --threads 2 --json");
  ASSERT_EQ(e.status, 0) << e.out << e.err;
  EXPECT_EQ(last_event(e.out, "eval")["samples"], 7);
  // summary builds the model for the folder's classes and the requested size.
  CommandResult s = loom_cmd("summary --model cnn --data imagefolder:" + (d / "data").string() + " --image-size 24");
  EXPECT_EQ(s.status, 0) << s.err;
  EXPECT_NE(s.out.find("24"), std::string::npos) << s.out;
}
