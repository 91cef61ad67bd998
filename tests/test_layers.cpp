// The layer check (cmake/check_layers.cmake over the table in cmake/LoomLayers.cmake): it passes on the
// real tree, and it fails, naming the file and the layers, when an upward include, an unknown folder or
// the umbrella header is planted in a copy of the tree.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "support/run_command.h"
#include "support/scratch.h"

namespace fs = std::filesystem;
using loom::test::run_command;

namespace {

const fs::path kSource = fs::path(LOOM_TEST_DIR).parent_path();

loom::test::CommandResult check(const fs::path& root) {
  return run_command(std::string(LOOM_CMAKE) + " -DROOT=" + root.string() + " -P " +
                     (kSource / "cmake" / "check_layers.cmake").string());
}

// A fresh copy of the real loom/ tree under the scratch folder, to plant problems in.
fs::path copy_of_tree(const std::string& name) {
  fs::path root = loom::test::scratch(name);
  fs::remove_all(root);
  fs::create_directories(root);
  fs::copy(kSource / "loom", root / "loom", fs::copy_options::recursive);
  return root;
}

void append(const fs::path& p, const std::string& line) {
  std::ofstream f(p, std::ios::app);
  f << line << "\n";
}

}  // namespace

TEST(LayerCheck, RealTreePasses) {
  auto r = check(kSource);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
}

TEST(LayerCheck, CopyOfTreePassesUntilAnUpwardIncludeIsPlanted) {
  fs::path root = copy_of_tree("layers_upward");
  auto clean = check(root);
  ASSERT_EQ(clean.status, 0) << clean.err;  // the copy alone is fine: the failure below is the planted line

  append(root / "loom" / "core" / "tensor.h", "#include \"loom/ops/reduce.h\"");
  auto r = check(root);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("loom/core/tensor.h (layer core) includes loom/ops/reduce.h (layer ops)"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("1 problem"), std::string::npos) << r.err;
}

TEST(LayerCheck, SidewaysIncludeBetweenUnrelatedLayersFails) {
  // io and nn are both above core but neither uses the other: io must not include nn.
  fs::path root = copy_of_tree("layers_sideways");
  append(root / "loom" / "io" / "safetensors.cpp", "#include <loom/nn/module.h>");
  auto r = check(root);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("loom/io/safetensors.cpp (layer io) includes loom/nn/module.h (layer nn)"), std::string::npos)
      << r.err;
}

TEST(LayerCheck, DownwardIncludePasses) {
  fs::path root = copy_of_tree("layers_downward");
  append(root / "loom" / "models" / "gpt.cpp", "#include \"loom/backend/backend.h\"");
  auto r = check(root);
  EXPECT_EQ(r.status, 0) << r.err;
}

TEST(LayerCheck, FolderWithoutALayerIsAnError) {
  fs::path root = copy_of_tree("layers_unknown");
  fs::create_directories(root / "loom" / "quantx");
  loom::test::write_file(root / "loom" / "quantx" / "q8.h", "#pragma once\n");
  auto r = check(root);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("loom/quantx/ has no layer"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("LOOM_LAYERS"), std::string::npos) << r.err;
}

TEST(LayerCheck, UmbrellaHeaderInsideTheLibraryIsAnError) {
  fs::path root = copy_of_tree("layers_umbrella");
  append(root / "loom" / "nn" / "linear.cpp", "#include \"loom/loom.h\"");
  auto r = check(root);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("loom/nn/linear.cpp includes loom/loom.h, the umbrella header"), std::string::npos) << r.err;
}
