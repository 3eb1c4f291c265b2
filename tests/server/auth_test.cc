// Authorizer: the tokens file format and the method -> role table.
#include "server/common/auth.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lorad::server {
namespace {

using ::testing::HasSubstr;

TEST(AuthorizerTest, ParsesTokensAndComments) {
  EXPECT_TRUE(Authorizer::Parse("# tokens\nabc inference\n\n  def\tadmin  # ops\n", "f").ok());
}

TEST(AuthorizerTest, RejectsBadFilesNamingTheLine) {
  struct Case {
    const char* text;
    const char* message;
  } cases[] = {{"abc\n", "f:1: expected"},
               {"abc inference\nxyz root\n", "f:2: unknown role \"root\""},
               {"abc inference\nabc admin\n", "f:2: duplicate token"},
               {"# nothing\n", "no tokens"}};
  for (const Case& c : cases) {
    absl::Status status = Authorizer::Parse(c.text, "f").status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(std::string(status.message()), HasSubstr(c.message)) << c.text;
  }
  EXPECT_THAT(std::string(Authorizer::FromFile("/nonexistent/tokens").status().message()),
              HasSubstr("--auth_tokens_file=/nonexistent/tokens"));
}

TEST(AuthorizerTest, InferenceMethodsNeedInferenceOthersAdmin) {
  EXPECT_EQ(Authorizer::RequiredRole("/lorad.v1.Inference/Generate"), Role::kInference);
  EXPECT_EQ(Authorizer::RequiredRole("/lorad.v1.Adapters/LoadAdapter"), Role::kAdmin);
  EXPECT_EQ(Authorizer::RequiredRole("/lorad.v1.FineTuning/CreateJob"), Role::kAdmin);
}

}  // namespace
}  // namespace lorad::server
