// The real default model (SmolLM2-135M-Instruct Q4_1) through a real lorad, when present:
// $LORAD_DEFAULT_MODEL, or data/models/ under the source tree. Skipped otherwise.
#include <cstdlib>
#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lorad/v1/inference.grpc.pb.h"
#include "tests/integration/inference_client.h"
#include "tests/integration/lorad_process.h"

namespace lorad::testing {
namespace {

std::string DefaultModelPath() {
  if (const char* env = std::getenv("LORAD_DEFAULT_MODEL"); env != nullptr && *env != '\0') {
    return env;
  }
  const char* source = std::getenv("LORAD_SOURCE_DIR");
  return std::string(source != nullptr ? source : LORAD_SOURCE_ROOT) +
         "/data/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

TEST(RealModelTest, GreedyCapitalOfFranceIsParis) {
  const std::string model = DefaultModelPath();
  if (!std::filesystem::exists(model)) GTEST_SKIP() << "no default model at " << model;
  RunningLorad lorad;
  ASSERT_NO_FATAL_FAILURE(StartLorad({"--model=" + model, "--threads=2"}, &lorad));
  {
    auto stub = v1::Inference::NewStub(lorad.Channel());
    v1::GenerateRequest request;
    request.set_prompt("The capital of France is");
    request.mutable_sampling()->set_max_new_tokens(8);
    v1::GenerateResponse response;
    grpc::Status status = RunUnary(*stub, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_THAT(response.text(), ::testing::StartsWith(" Paris"));
    StreamResult stream = RunStream(*stub, request);
    ASSERT_TRUE(stream.status.ok()) << stream.status.error_message();
    EXPECT_EQ(stream.text, response.text());
  }
  EXPECT_NO_FATAL_FAILURE(StopLorad(&lorad));
}

}  // namespace
}  // namespace lorad::testing
