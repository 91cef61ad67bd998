// The data layer's file readers: Fashion-MNIST from Debian, and generated IDX, CIFAR, image-folder and CSV files,
// corrupt ones included (each must fail with a loom::Error that names the file and the problem).
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include <gtest/gtest.h>
#include <stb/stb_image_write.h>
#include <zlib.h>

#include "loom/loom.h"

using namespace loom;
using namespace loom::data;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "loom_data_XXXXXX").string();
    path = mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

std::string gzip_bytes(const std::string& raw) {
  z_stream zs{};
  deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, uLong(raw.size())), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  zs.avail_in = uInt(raw.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = uInt(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::string idx_bytes(uint8_t type, const std::vector<uint32_t>& dims, const std::string& payload) {
  std::string s = {0, 0, char(type), char(dims.size())};
  for (uint32_t d : dims) s += {char(d >> 24), char(d >> 16), char(d >> 8), char(d)};
  return s + payload;
}

// Runs `f`, expecting a loom::Error whose message contains every string in `parts`.
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

}  // namespace

TEST(Formats, FashionMnistFromDebian) {
  auto train = load_fashion_mnist();
  auto test = load_fashion_mnist(kFashionMnistDir, false);
  ASSERT_EQ(train->size(), 60000);
  ASSERT_EQ(test->size(), 10000);
  EXPECT_EQ(train->images().shape(), (Shape{60000, 1, 28, 28}));
  // Facts of the published files: first labels, 6000 images per class, pixel sums.
  EXPECT_EQ(train->labels().slice(0, 0, 10).tolist(), (std::vector<double>{9, 0, 0, 3, 0, 2, 7, 2, 5, 5}));
  EXPECT_EQ(test->labels().slice(0, 0, 4).tolist(), (std::vector<double>{9, 2, 1, 1}));
  std::vector<int64_t> counts(10, 0);
  for (double v : train->labels().tolist()) ++counts[size_t(v)];
  EXPECT_EQ(counts, std::vector<int64_t>(10, 6000));
  EXPECT_EQ(train->images()[0].to(DType::i64).sum().item(), 76247.0);
  EXPECT_EQ(train->images().to(DType::i64).sum().item(), 3431114169.0);
  Example e = train->get(0);
  EXPECT_EQ(e.data.shape(), (Shape{1, 28, 28}));
  EXPECT_EQ(e.data.dtype(), DType::f32);
  EXPECT_NEAR(e.data.sum().item(), 76247.0 / 255.0, 1e-3);
  EXPECT_EQ(e.target.item(), 9.0);
  EXPECT_EQ(fashion_mnist_classes()[9], "Ankle boot");
}

TEST(Formats, IdxGeneratedAndCorrupt) {
  TempDir d;
  std::string pixels(3 * 28 * 28, '\0');
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = char(i % 251);
  const std::string images = idx_bytes(0x08, {3, 28, 28}, pixels), labels = idx_bytes(0x08, {3}, {4, 0, 9});
  write_bytes(d.file("train-images-idx3-ubyte"), images);          // raw
  write_bytes(d.file("train-labels-idx1-ubyte.gz"), gzip_bytes(labels));  // gzip
  auto ds = load_mnist(d.path.string(), true);
  ASSERT_EQ(ds->size(), 3);
  EXPECT_EQ(ds->labels().tolist(), (std::vector<double>{4, 0, 9}));
  EXPECT_EQ(ds->images().tolist()[28 * 28 + 5], double((28 * 28 + 5) % 251));
  write_bytes(d.file("i32"), idx_bytes(0x0C, {2}, {0, 0, 1, 2, char(0xff), char(0xff), char(0xff), char(0xfe)}));
  Tensor i32 = read_idx(d.file("i32"));  // big-endian on disk
  EXPECT_EQ(i32.tolist(), (std::vector<double>{258, -2}));

  auto corrupt = [&](const std::string& name, const std::string& bytes, const std::string& what) {
    write_bytes(d.file(name), bytes);
    expect_error([&] { read_idx(d.file(name)); }, {d.file(name), what});
  };
  corrupt("truncated", images.substr(0, images.size() - 10), "file truncated");
  corrupt("short", std::string(2, '\0'), "too short");
  corrupt("magic", "\x01\x02" + images.substr(2), "magic");
  corrupt("dtype", idx_bytes(0x0A, {1}, "x"), "element type");
  corrupt("trailing", images + "xx", "data bytes");
  std::string gz = gzip_bytes(images);
  corrupt("cut.gz", gz.substr(0, gz.size() / 2), "truncated");
  std::string bad = gz;
  for (size_t i = 20; i < 60; ++i) bad[i] = char(bad[i] ^ 0x5a);
  corrupt("bad.gz", bad, "corrupt gzip");
  corrupt("garbage.gz", gz + "zz", "trailing garbage");

  // Images and labels that disagree, and labels out of range, are refused naming the files.
  write_bytes(d.file("train-labels-idx1-ubyte.gz"), gzip_bytes(idx_bytes(0x08, {2}, {1, 2})));
  expect_error([&] { load_mnist(d.path.string(), true); }, {"train-images-idx3-ubyte", "3 images", "2 labels"});
  write_bytes(d.file("train-labels-idx1-ubyte.gz"), gzip_bytes(idx_bytes(0x08, {3}, {1, 12, 2})));
  expect_error([&] { load_mnist(d.path.string(), true); }, {"train-labels-idx1-ubyte.gz", "label 12"});
  expect_error([&] { load_mnist(d.path.string(), false); }, {"t10k-images-idx3-ubyte", d.path.string()});
}

TEST(Formats, CifarBinary) {
  TempDir d;
  std::string rec10;
  for (int r = 0; r < 3; ++r) {
    rec10 += char(r * 3);  // labels 0, 3, 6
    for (int i = 0; i < 3072; ++i) rec10 += char((i + r) % 256);
  }
  write_bytes(d.file("test_batch.bin"), rec10);
  auto ds = load_cifar10(d.path.string(), false);
  ASSERT_EQ(ds->size(), 3);
  EXPECT_EQ(ds->labels().tolist(), (std::vector<double>{0, 3, 6}));
  Example e = ds->get(1);
  EXPECT_EQ(e.data.shape(), (Shape{3, 32, 32}));
  EXPECT_FLOAT_EQ(float(e.data.tolist()[1024]), float((1024 + 1) % 256) / 255.0f);  // channel 1, pixel 0
  expect_error([&] { load_cifar10(d.path.string(), true); }, {"data_batch_1.bin"});
  write_bytes(d.file("cut.bin"), rec10.substr(0, 3073 * 2 + 100));
  expect_error([&] { read_cifar({d.file("cut.bin")}); }, {d.file("cut.bin"), "whole number"});
  std::string badlabel = rec10;
  badlabel[3073] = char(10);
  write_bytes(d.file("label.bin"), badlabel);
  expect_error([&] { read_cifar({d.file("label.bin")}); }, {d.file("label.bin"), "record 1", "label 10"});
  std::string rec100;
  for (int r = 0; r < 2; ++r) rec100 += std::string{char(r + 1), char(50 + r)} + std::string(3072, char(r));
  write_bytes(d.file("train.bin"), rec100);
  EXPECT_EQ(load_cifar100(d.path.string(), true)->labels().tolist(), (std::vector<double>{50, 51}));
  EXPECT_EQ(load_cifar100(d.path.string(), true, true)->labels().tolist(), (std::vector<double>{1, 2}));
}

TEST(Formats, ImageFolderPngBmp) {
  TempDir d;
  fs::create_directories(d.path / "dog");
  fs::create_directories(d.path / "cat" / "more");
  auto pixels = [](int w, int h, int c, int salt) {
    std::vector<uint8_t> p(size_t(w * h * c));
    for (size_t i = 0; i < p.size(); ++i) p[i] = uint8_t((i * 7 + size_t(salt)) % 256);
    return p;
  };
  auto a = pixels(5, 4, 3, 1), b = pixels(6, 3, 3, 2), c = pixels(5, 4, 1, 3);
  ASSERT_TRUE(stbi_write_png(d.file("dog/a.png").c_str(), 5, 4, 3, a.data(), 5 * 3));
  ASSERT_TRUE(stbi_write_bmp(d.file("cat/z.BMP").c_str(), 6, 3, 3, b.data()));
  ASSERT_TRUE(stbi_write_png(d.file("cat/more/c.png").c_str(), 5, 4, 1, c.data(), 5));
  write_bytes(d.file("cat/notes.txt"), "not an image");
  ImageFolder f(d.path.string());
  EXPECT_EQ(f.classes(), (std::vector<std::string>{"cat", "dog"}));
  ASSERT_EQ(f.size(), 3);
  EXPECT_EQ(f.samples()[0].first, d.file("cat/z.BMP"));
  Example e0 = f.get(0), e2 = f.get(2);
  EXPECT_EQ(e0.data.shape(), (Shape{3, 6, 3}));
  EXPECT_EQ(e0.data.tolist(), std::vector<double>(b.begin(), b.end()));
  EXPECT_EQ(e2.data.tolist(), std::vector<double>(a.begin(), a.end()));
  EXPECT_EQ(e2.target.item(), 1.0);
  Tensor grey = f.get(1).data;  // grey PNG converted to RGB: three equal channels
  EXPECT_EQ(grey.select(2, 0).tolist(), std::vector<double>(c.begin(), c.end()));
  EXPECT_EQ(grey.select(2, 2).tolist(), std::vector<double>(c.begin(), c.end()));
  EXPECT_EQ(read_image(d.file("cat/more/c.png"), 0).shape(), (Shape{4, 5, 1}));

  auto ds = transformed(std::make_shared<ImageFolder>(d.path.string()), Compose({ToTensor(), Resize(8, 8)}));
  DataLoader l(ds, {.batch_size = 3, .num_workers = 2});
  for (auto& [x, y] : l) {
    EXPECT_EQ(x.shape(), (Shape{3, 3, 8, 8}));
    EXPECT_EQ(y.tolist(), (std::vector<double>{0, 0, 1}));
  }
  DataLoader unequal(std::make_shared<ImageFolder>(d.path.string()), {.batch_size = 3});
  expect_error([&] { run_epoch(unequal); }, {"collate", "sample 1"});

  std::string png = read_file(d.file("dog/a.png"));
  write_bytes(d.file("dog/a.png"), png.substr(0, png.size() / 2));
  expect_error([&] { f.get(2); }, {d.file("dog/a.png"), "truncated or corrupt"});
  fs::create_directories(d.path / "empty");
  expect_error([&] { ImageFolder g(d.path.string()); }, {"empty", "no image files"});
}

TEST(Formats, CsvParsingAndStandardisation) {
  TempDir d;
  write_bytes(d.file("h.csv"), "area,\"rooms, total\",price\n50,2,100\n\n80, 3 ,\"160\"\r\n65,2,130\n100,4,200\n");
  CsvTable t = read_csv(d.file("h.csv"), {.target = "price"});
  EXPECT_EQ(t.feature_names, (std::vector<std::string>{"area", "rooms, total"}));
  EXPECT_EQ(t.features.tolist(), (std::vector<double>{50, 2, 80, 3, 65, 2, 100, 4}));
  EXPECT_EQ(t.target.shape(), (Shape{4, 1}));
  EXPECT_EQ(t.target.tolist()[1], 160.0);
  EXPECT_EQ(read_csv(d.file("h.csv"), {.target = "area", .features = {"price"}}).features.tolist()[3], 200.0);
  expect_error([&] { read_csv(d.file("h.csv"), {.target = "cost"}); }, {d.file("h.csv"), "no column named 'cost'"});

  write_bytes(d.file("bad.csv"), "a,b,y\n1,2,3\n4,x5,6\n");
  expect_error([&] { read_csv(d.file("bad.csv"), {.target = "y"}); }, {d.file("bad.csv") + ":3", "'b'", "x5"});
  write_bytes(d.file("short.csv"), "a,b,y\n1,2,3\n\n4,6\n");
  expect_error([&] { read_csv(d.file("short.csv"), {.target = "y"}); }, {d.file("short.csv") + ":4", "2 fields"});

  write_bytes(d.file("iris.csv"), "x,species\n1,virginica\n2,setosa\n3,virginica\n");
  CsvTable c = read_csv(d.file("iris.csv"), {.target = "species", .classification = true});
  EXPECT_EQ(c.classes, (std::vector<std::string>{"setosa", "virginica"}));
  EXPECT_EQ(c.target.tolist(), (std::vector<double>{1, 0, 1}));

  CsvSplits s = load_csv(d.file("h.csv"), {.target = "price", .test_fraction = 0.25, .seed = 1, .standardize = true});
  ASSERT_EQ(s.train->size(), 3);
  ASSERT_EQ(s.test->size(), 1);
  ASSERT_TRUE(s.scaler.has_value());
  Tensor xs = s.train->data();
  for (int64_t j = 0; j < 2; ++j) {
    EXPECT_NEAR(xs.select(1, j).mean().item(), 0.0, 1e-6);
    EXPECT_NEAR(xs.select(1, j).std({0}, 0).item(), 1.0, 1e-5);
  }
  // The test row is scaled with the training statistics: undoing the scaling gives back a raw row.
  const double price = s.test->target().item();
  std::vector<double> raw = s.scaler->inverse(s.test->data()).tolist();
  const std::map<double, std::vector<double>> by_price = {
      {100, {50, 2}}, {160, {80, 3}}, {130, {65, 2}}, {200, {100, 4}}};
  ASSERT_TRUE(by_price.count(price));
  EXPECT_NEAR(raw[0], by_price.at(price)[0], 1e-4);
  EXPECT_NEAR(raw[1], by_price.at(price)[1], 1e-5);
}
