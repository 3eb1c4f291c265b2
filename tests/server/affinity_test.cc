#include "server/common/affinity.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lorad::server {
namespace {

TEST(AffinityTest, AbsentEmptyOrEqualHeadersPassOthersNameBothSides) {
  EXPECT_TRUE(CheckAffinityHeader(std::nullopt, "a").ok());
  EXPECT_TRUE(CheckAffinityHeader(std::nullopt, "").ok());
  EXPECT_TRUE(CheckAffinityHeader("", "a").ok());
  EXPECT_TRUE(CheckAffinityHeader("org/a", "org/a").ok());
  const absl::Status other = CheckAffinityHeader("b", "a");
  EXPECT_EQ(other.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(other.message(), testing::HasSubstr("x-lorad-adapter is \"b\""));
  EXPECT_THAT(other.message(), testing::HasSubstr("adapter \"a\""));
  const absl::Status base = CheckAffinityHeader("b", "");
  EXPECT_EQ(base.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(base.message(), testing::HasSubstr("the base model"));
}

}  // namespace
}  // namespace lorad::server
