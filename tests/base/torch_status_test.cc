// The LibTorch error boundary: real ATen failures become statuses with their first message line.
#include "engine/base/torch_status.h"

#include <ATen/ATen.h>

#include <new>
#include <stdexcept>

#include "gtest/gtest.h"

namespace lorad {
namespace {

TEST(TorchStatusTest, SuccessIsOk) {
  double sum = 0.0;
  EXPECT_TRUE(TorchCall("sum", [&] { sum = at::ones({2, 3}).sum().item<double>(); }).ok());
  EXPECT_EQ(sum, 6.0);
}

TEST(TorchStatusTest, IndexErrorIsInvalidArgument) {
  const absl::Status st = TorchCall("pick", [] { (void)at::zeros({2})[5]; });
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_NE(st.message().find("pick: "), std::string::npos) << st;
  EXPECT_NE(st.message().find("index 5 out of range"), std::string::npos) << st;
  EXPECT_EQ(st.message().find('\n'), std::string::npos) << "stack trace leaked: " << st;
}

TEST(TorchStatusTest, ShapeErrorIsInternalWithTorchsMessage) {
  const absl::Status st = TorchCall("reshape", [] { (void)at::zeros({2, 3}).view({4}); });
  EXPECT_EQ(st.code(), absl::StatusCode::kInternal) << st;
  EXPECT_NE(st.message().find("invalid for input of size 6"), std::string::npos) << st;
}

TEST(TorchStatusTest, OtherExceptionsAreMapped) {
  EXPECT_EQ(TorchCall("alloc", [] { throw std::bad_alloc(); }).code(),
            absl::StatusCode::kResourceExhausted);
  const absl::Status st = TorchCall("x", [] { throw std::runtime_error("boom"); });
  EXPECT_EQ(st.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(st.message(), "x: boom");
}

}  // namespace
}  // namespace lorad
