// <loom/loom.h> includes every public header of the layers in loom::loom, so a consumer that includes only
// it finds models::generate, lstm_lm, seq2seq, beam search, the trainers... (a list of headers that are
// internal on purpose is below). Compiling each header alone under -Wall -Wextra -Wshadow -Werror is the
// build's job (tests/layers/CMakeLists.txt, target layers_public_headers); a consumer that uses generate,
// GPT and a tokenizer through loom.h alone is tests/install/consumer_umbrella.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <sstream>
#include <string>

#include "support/run_command.h"

namespace fs = std::filesystem;

namespace {

const fs::path kSource = fs::path(LOOM_TEST_DIR).parent_path();

// Headers loom.h leaves out on purpose: kernel internals (backend/cpu, backend/cuda but its cuda.h, dispatch, allocator, optimizer and RNN
// kernels, the RNN reference for tests, module-repr formatting) and dist and privacy, which are their own components
// (loom/dist/dist.h, loom::dist) because it may need MPI, and serve, the HTTP server of `loom serve` (its own
// library loom::serve on cpp-httplib, not installed).
bool internal(const std::string& h) {
  static const std::set<std::string> files = {
      "loom/core/allocator.h", "loom/core/dispatch.h",  "loom/nn/repr.h",          "loom/nn/rnn_gemm.h",
      "loom/nn/rnn_kernels.h", "loom/nn/rnn_reference.h", "loom/optim/update.h", "loom/loom.h",
      "loom/ops/index_check.h", "loom/data/jpeg_check.h", "loom/data/jpeg_decode.h", "loom/data/png_check.h", "loom/data/pnm_check.h", "loom/dataquality/label_split.h", "loom/trust/sodium_init.h"};
  if (h.starts_with("loom/backend/cuda/")) return h != "loom/backend/cuda/cuda.h";  // kernels and device state
  return h.starts_with("loom/backend/cpu/") || h.starts_with("loom/dist/") || h.starts_with("loom/privacy/") ||
         h.starts_with("loom/serve/") || files.count(h) > 0;
}

}  // namespace

TEST(PublicHeaders, UmbrellaIncludesEveryPublicHeader) {
  // The compiler's own dependency list (-MM) is what loom.h really pulls in.
  auto r = loom::test::run_command("cd " + kSource.string() + " && " + LOOM_CXX +
                                   " -std=c++20 -fopenmp -MM -I. loom/loom.h");
  ASSERT_EQ(r.status, 0) << r.err;
  std::set<std::string> included;
  std::istringstream is(r.out);
  for (std::string w; is >> w;)
    if (w.starts_with("loom/")) included.insert(w);
  ASSERT_GT(included.size(), 50u) << r.out;

  std::vector<std::string> missing;
  for (const auto& e : fs::recursive_directory_iterator(kSource / "loom")) {
    if (e.path().extension() != ".h") continue;
    const std::string h = fs::relative(e.path(), kSource).generic_string();
    if (!internal(h) && !included.count(h)) missing.push_back(h);
  }
  std::sort(missing.begin(), missing.end());
  std::string list;
  for (const auto& m : missing) list += "\n  " + m;
  EXPECT_TRUE(missing.empty()) << "loom/loom.h does not include (add it there, or to the internal list here):"
                               << list;
}
