// Methods on an undefined tensor (default-constructed, or grad() before any backward) throw loom::Error
// naming the problem, instead of dereferencing null (they segfaulted before).
#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "loom/core/tensor.h"
#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/reduce.h"

using namespace loom;

namespace {

// Runs f, expects a loom::Error that says the tensor is undefined.
template <class F>
void expect_undefined_error(F&& f) {
  try {
    f();
    ADD_FAILURE() << "no exception";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("undefined"), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(UndefinedTensor, GradBeforeBackwardThrowsOnUse) {
  Tensor w = randn({3, 2}, {.requires_grad = true});
  Tensor g = w.grad();
  EXPECT_FALSE(g.defined());
  expect_undefined_error([&] { (void)g.sum(); });
  expect_undefined_error([&] { (void)w.grad().mean(); });
  expect_undefined_error([&] { (void)(w.grad() * 2.0); });
  expect_undefined_error([&] { (void)w.grad().item(); });
}

TEST(UndefinedTensor, MetadataAndInPlaceThrow) {
  Tensor t;
  expect_undefined_error([&] { (void)t.shape(); });
  expect_undefined_error([&] { (void)t.dim(); });
  expect_undefined_error([&] { (void)t.numel(); });
  expect_undefined_error([&] { (void)t.dtype(); });
  expect_undefined_error([&] { (void)t.device(); });
  expect_undefined_error([&] { (void)t.size(0); });
  expect_undefined_error([&] { (void)t.is_contiguous(); });
  expect_undefined_error([&] { (void)t.requires_grad(); });
  expect_undefined_error([&] { (void)t.grad(); });
  expect_undefined_error([&] { (void)t.detach(); });
  expect_undefined_error([&] { (void)t.tolist(); });
  expect_undefined_error([&] { (void)t.to(DType::f64); });
  expect_undefined_error([&] { t.zero_(); });
  expect_undefined_error([&] { t.add_(1.0); });
  expect_undefined_error([&] { t.backward(); });
  expect_undefined_error([&] { (void)t.reshape({1}); });
  expect_undefined_error([&] { (void)(t + ones({2})); });
  expect_undefined_error([&] { (void)(ones({2}) + t); });
}

TEST(UndefinedTensor, DefinedAndPrintingStayUsable) {
  Tensor t;
  EXPECT_FALSE(t.defined());
  std::ostringstream os;
  os << t;
  EXPECT_EQ(os.str(), "tensor(undefined)");
  // A defined tensor's grad works as before once backward has run.
  Tensor w = ones({2}, {.requires_grad = true});
  (w * 3.0).sum().backward();
  EXPECT_EQ(w.grad().tolist(), (std::vector<double>{3, 3}));
}
