#include "loom/data/cifar.h"

#include <cstring>
#include <filesystem>

#include "loom/data/file_util.h"

namespace loom::data {

namespace {
constexpr int64_t kImageBytes = 3 * 32 * 32;

void check_records(const std::string& path, int64_t size, int64_t record) {
  LOOM_CHECK(size > 0 && size % record == 0, path, ": size ", size, " bytes is not a whole number of ", record,
             "-byte CIFAR records (", size / record, " records and ", size % record,
             " bytes left over; truncated, or the wrong CIFAR variant?)");
}
}  // namespace

std::shared_ptr<ByteImageDataset> read_cifar(const std::vector<std::string>& files, CifarFormat f) {
  LOOM_CHECK(!files.empty(), "CIFAR: no batch files given");
  LOOM_CHECK(f.label_bytes >= 1 && f.label_index >= 0 && f.label_index < f.label_bytes && f.num_classes > 0,
             "CIFAR: bad record format (label_bytes ", f.label_bytes, ", label_index ", f.label_index, ")");
  const int64_t record = f.label_bytes + kImageBytes;
  // Sizes first, so the images are allocated once and each file is held in memory only while it is copied.
  std::vector<int64_t> counts;
  int64_t total = 0;
  for (const auto& path : files) {
    std::error_code ec;
    const auto size = int64_t(std::filesystem::file_size(path, ec));
    LOOM_CHECK(!ec, path, ": cannot read CIFAR batch (", ec.message(), ")");
    check_records(path, size, record);
    counts.push_back(size / record);
    total += counts.back();
  }
  Tensor images = make_tensor({total, 3, 32, 32}, DType::u8);
  Tensor labels = make_tensor({total}, DType::i64);
  uint8_t* img = images.data<uint8_t>();
  int64_t* lab = labels.data<int64_t>();
  int64_t n = 0;
  for (size_t fi = 0; fi < files.size(); ++fi) {
    const std::string bytes = read_file(files[fi]);
    // The file may have changed since it was sized; trust only what was read.
    check_records(files[fi], int64_t(bytes.size()), record);
    LOOM_CHECK(int64_t(bytes.size()) == counts[fi] * record, files[fi], ": changed size while being read");
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    for (int64_t r = 0; r < counts[fi]; ++r, ++n) {
      const unsigned char* rec = p + r * record;
      const int label = rec[f.label_index];
      LOOM_CHECK(label < f.num_classes, files[fi], ": record ", r, " has label ", label, ", outside 0..",
                 f.num_classes - 1);
      lab[n] = label;
      std::memcpy(img + n * kImageBytes, rec + f.label_bytes, size_t(kImageBytes));
    }
  }
  return std::make_shared<ByteImageDataset>(images, labels);
}

std::shared_ptr<ByteImageDataset> load_cifar10(const std::string& dir, bool train) {
  std::vector<std::string> files;
  if (train)
    for (int i = 1; i <= 5; ++i)
      files.push_back((std::filesystem::path(dir) / ("data_batch_" + std::to_string(i) + ".bin")).string());
  else
    files.push_back((std::filesystem::path(dir) / "test_batch.bin").string());
  return read_cifar(files, {});
}

std::shared_ptr<ByteImageDataset> load_cifar100(const std::string& dir, bool train, bool coarse) {
  const std::string file = (std::filesystem::path(dir) / (train ? "train.bin" : "test.bin")).string();
  return read_cifar({file}, {.label_bytes = 2, .label_index = coarse ? 0 : 1, .num_classes = coarse ? 20 : 100});
}

std::vector<std::string> cifar10_classes() {
  return {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
}

}  // namespace loom::data
