// The CUDA device from the host's side, checked for real on every machine: without a GPU (or without a CUDA
// build) every way onto cuda:0 is one clear loom::Error; with one, the same calls succeed and round-trip.
#include <gtest/gtest.h>

#include <string>

#include "loom/loom.h"
#include "support/run_command.h"

using namespace loom;

namespace {

const Device kCuda{DeviceType::CUDA, 0};

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The reason a device call gives when no GPU is usable: it names the device and why.
void expect_no_device_error(const std::string& msg) {
  EXPECT_TRUE(contains(msg, "cuda:0")) << msg;
  if (cuda::built()) EXPECT_TRUE(contains(msg, "no CUDA device: ")) << msg;
  else EXPECT_TRUE(contains(msg, "this build has no CUDA backend (configure with -DLOOM_CUDA=ON")) << msg;
}

}  // namespace

TEST(CudaDevice, ToCudaIsAClearErrorWithoutAGpuAndRoundTripsWithOne) {
  Tensor h = tensor({1.0, -2.0, 3.5});
  if (cuda::available()) {
    Tensor d = h.to(cuda::device(0));
    EXPECT_EQ(d.device(), kCuda);
    EXPECT_EQ(d.to(Device{}).tolist(), h.tolist());
    EXPECT_GT(cuda::memory_stats().in_use, 0u);
    return;
  }
  EXPECT_FALSE(cuda::unavailable_reason().empty());
  EXPECT_EQ(cuda::device_count(), 0);
  EXPECT_TRUE(cuda::devices().empty());
  for (int attempt = 0; attempt < 2; ++attempt) {  // the second call must not find half-registered state
    try {
      h.to(kCuda);
      FAIL() << "to(cuda:0) must throw without a GPU";
    } catch (const Error& e) {
      expect_no_device_error(e.what());
      EXPECT_TRUE(contains(e.what(), cuda::unavailable_reason())) << e.what();
    }
  }
  try {
    cuda::device(0);
    FAIL() << "cuda::device(0) must throw without a GPU";
  } catch (const Error& e) {
    expect_no_device_error(e.what());
  }
  try {
    zeros({2, 2}, {.device = kCuda});
    FAIL() << "allocating on cuda:0 must throw without a GPU";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "cuda:0")) << e.what();
  }
  EXPECT_EQ(cuda::memory_stats().in_use, 0u);
  EXPECT_NO_THROW(cuda::synchronize());
}

TEST(CudaDevice, ParseDevice) {
  EXPECT_EQ(cuda::parse_device("cpu"), Device{});
  for (const char* bad : {"gpu", "cuda:", "cuda:x", "cuda:-1", "CUDA", ""}) {
    try {
      cuda::parse_device(bad);
      FAIL() << "parse_device('" << bad << "') must throw";
    } catch (const Error& e) {
      EXPECT_TRUE(contains(e.what(), "expected cpu, cuda or cuda:N")) << e.what();
    }
  }
  if (cuda::available()) {
    EXPECT_EQ(cuda::parse_device("cuda"), kCuda);
    EXPECT_EQ(cuda::parse_device("cuda:0"), kCuda);
  } else {
    EXPECT_THROW(cuda::parse_device("cuda"), Error);
    EXPECT_THROW(cuda::parse_device("cuda:0"), Error);
  }
}

TEST(CudaDevice, InfoSectionSaysWhatWasBuiltAndFound) {
  const std::string info = cuda::info_text();
  ASSERT_TRUE(info.starts_with("CUDA: ")) << info;
  if (!cuda::built()) {
    EXPECT_TRUE(contains(info, "built without CUDA")) << info;
    return;
  }
  EXPECT_TRUE(contains(info, "built with CUDA ")) << info;
  EXPECT_TRUE(contains(info, "cuBLAS")) << info;
  EXPECT_TRUE(contains(info, "cuDNN")) << info;
  if (cuda::available()) EXPECT_TRUE(contains(info, "cuda:0  ")) << info;
  else EXPECT_TRUE(contains(info, "no device: " + cuda::unavailable_reason())) << info;
}

#ifdef LOOM_BIN
TEST(CudaDevice, LoomInfoPrintsTheCudaSection) {
  const auto r = test::run_command(std::string(LOOM_BIN) + " info");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.out, cuda::info_text())) << r.out;
}

TEST(CudaDevice, TrainWithDeviceCudaIsAClearErrorWithoutAGpu) {
  if (cuda::available()) {
    GTEST_SKIP() << "skipped: a GPU is present (bench/gpu_check.sh trains on it); this checks the no-GPU error";
  }
  const auto r = test::run_command(std::string(LOOM_BIN) + " train --model cnn --device cuda");
  EXPECT_NE(r.status, 0);
  const std::string all = r.out + r.err;
  EXPECT_TRUE(contains(all, "cuda:0")) << all;
  EXPECT_TRUE(contains(all, cuda::built() ? "no CUDA device" : "no CUDA backend")) << all;
}
#endif
