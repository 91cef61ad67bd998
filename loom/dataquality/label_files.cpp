#include "loom/dataquality/label_files.h"

#include <cstdio>
#include <filesystem>

#include "loom/io/safetensors.h"

namespace loom::dataquality {

namespace fs = std::filesystem;

void write_idx(const std::string& path, const Tensor& t) {
  LOOM_CHECK(t.dtype() == DType::u8, path, ": IDX files are written from u8 tensors, got ", t.dtype());
  LOOM_CHECK(t.dim() >= 1 && t.dim() <= 255, path, ": cannot write a ", t.dim(), "-d tensor as IDX");
  std::string out = {char(0), char(0), char(0x08), char(t.dim())};
  for (int64_t i = 0; i < t.dim(); ++i) {
    const uint32_t v = uint32_t(t.size(i));
    for (int s = 24; s >= 0; s -= 8) out += char((v >> s) & 0xff);
  }
  const Tensor c = t.contiguous();
  out.append(static_cast<const char*>(c.raw_data()), size_t(c.numel()));
  io::write_file_atomic(path, out);
}

void write_labels_csv(const std::string& path, const std::vector<int64_t>& labels, const std::vector<double>& confidence,
                      const std::vector<LabelSource>& source, const std::vector<std::string>& classes) {
  LOOM_CHECK(labels.size() == confidence.size() && labels.size() == source.size(), path, ": ", labels.size(),
             " labels, ", confidence.size(), " confidences and ", source.size(), " sources");
  std::string out = "index,label,class,confidence,source\n";
  char buf[64];
  for (size_t i = 0; i < labels.size(); ++i) {
    const std::string name = size_t(labels[i]) < classes.size() ? classes[size_t(labels[i])] : std::to_string(labels[i]);
    std::string q = "\"";
    for (char ch : name) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    std::snprintf(buf, sizeof buf, ",%.6f,", confidence[i]);
    out += std::to_string(i) + "," + std::to_string(labels[i]) + "," + q + "\"" + buf +
           (source[i] == LabelSource::Given ? "given" : source[i] == LabelSource::Pseudo ? "pseudo" : "predicted") + "\n";
  }
  io::write_file_atomic(path, out);
}

void copy_image_folder(const std::vector<std::pair<std::string, int64_t>>& samples, const std::string& out_root,
                       const std::vector<int64_t>& labels, const std::vector<std::string>& classes) {
  LOOM_CHECK(samples.size() == labels.size(), out_root, ": ", samples.size(), " images but ", labels.size(), " labels");
  std::error_code ec;
  for (const auto& c : classes) {
    fs::create_directories(fs::path(out_root) / c, ec);
    LOOM_CHECK(!ec, out_root, "/", c, ": cannot create the folder (", ec.message(), ")");
  }
  for (size_t i = 0; i < samples.size(); ++i) {
    LOOM_CHECK(labels[i] >= 0 && size_t(labels[i]) < classes.size(), "label ", labels[i], " of image ", i,
               " has no class folder (", classes.size(), " classes)");
    fs::path dst = fs::path(out_root) / classes[size_t(labels[i])] / fs::path(samples[i].first).filename();
    if (fs::exists(dst)) dst = dst.parent_path() / (std::to_string(i) + "_" + dst.filename().string());
    fs::copy_file(samples[i].first, dst, fs::copy_options::overwrite_existing, ec);
    LOOM_CHECK(!ec, samples[i].first, ": cannot copy to ", dst.string(), " (", ec.message(), ")");
  }
}

}  // namespace loom::dataquality
