// proto <-> engine conversion: zero values mean server defaults, only unrepresentable input is
// refused (the engine validates the rest), finish reasons and usage map one to one.
#include "server/inference/proto_convert.h"

#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lorad::server {
namespace {

using ::testing::HasSubstr;

TEST(ProtoConvertTest, ZeroValuesBecomeServerDefaults) {
  v1::GenerateRequest request;
  request.set_prompt("hi");
  RequestDefaults defaults;
  defaults.default_max_new_tokens = 77;
  absl::StatusOr<GenerateRequest> out = ToEngineRequest(request, defaults);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->prompt, "hi");
  EXPECT_EQ(out->sampling.max_new_tokens, 77);
  EXPECT_EQ(out->sampling.temperature, 0.0f);
  EXPECT_EQ(out->sampling.top_p, 1.0f);
  EXPECT_EQ(out->sampling.repetition_penalty, 1.0f);
  EXPECT_EQ(out->sampling.seed, 0u);
}

TEST(ProtoConvertTest, CopiesEverySamplingField) {
  v1::GenerateRequest request;
  request.set_adapter_id("a");
  request.set_request_id("r");
  auto* m = request.mutable_messages()->add_messages();
  m->set_role("user");
  m->set_content("c");
  v1::SamplingParams* s = request.mutable_sampling();
  s->set_max_new_tokens(9);
  s->set_temperature(0.5f);
  s->set_top_p(0.9f);
  s->set_top_k(40);
  s->set_min_p(0.1f);
  s->set_repetition_penalty(1.2f);
  s->set_presence_penalty(0.25f);
  s->set_frequency_penalty(-0.5f);
  s->set_seed(42);
  s->add_stop("x");
  s->set_logprobs(2);
  s->set_ignore_eos(true);
  absl::StatusOr<GenerateRequest> out = ToEngineRequest(request, RequestDefaults());
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->adapter_id, "a");
  EXPECT_EQ(out->request_id, "r");
  ASSERT_EQ(out->messages.size(), 1u);
  EXPECT_EQ(out->messages[0].role, "user");
  EXPECT_EQ(out->sampling.max_new_tokens, 9);
  EXPECT_EQ(out->sampling.temperature, 0.5f);
  EXPECT_EQ(out->sampling.top_p, 0.9f);
  EXPECT_EQ(out->sampling.top_k, 40);
  EXPECT_EQ(out->sampling.min_p, 0.1f);
  EXPECT_EQ(out->sampling.repetition_penalty, 1.2f);
  EXPECT_EQ(out->sampling.presence_penalty, 0.25f);
  EXPECT_EQ(out->sampling.frequency_penalty, -0.5f);
  EXPECT_EQ(out->sampling.seed, 42u);
  EXPECT_THAT(out->sampling.stop, ::testing::ElementsAre("x"));
  EXPECT_EQ(out->sampling.logprobs, 2);
  EXPECT_TRUE(out->sampling.ignore_eos);
}

// Conversion refuses only what it cannot represent; the prompt and the ranges are the engine's
// to check (the one check gRPC and HTTP share; see the integration tests for their errors).
TEST(ProtoConvertTest, OnlyUnrepresentableInputIsRefused) {
  v1::GenerateRequest request;
  absl::StatusOr<GenerateRequest> converted = ToEngineRequest(request, RequestDefaults());
  ASSERT_TRUE(converted.ok());
  EXPECT_TRUE(converted->prompt.empty());

  request.mutable_messages();
  absl::Status status = ToEngineRequest(request, RequestDefaults()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("messages"));

  request.set_prompt("x");
  request.mutable_sampling()->set_max_new_tokens(4000000000u);  // over INT32_MAX: clamped
  converted = ToEngineRequest(request, RequestDefaults());
  ASSERT_TRUE(converted.ok());
  EXPECT_EQ(converted->sampling.max_new_tokens, std::numeric_limits<int32_t>::max());
}

TEST(ProtoConvertTest, FinishSetsReasonAndUsage) {
  GenerateOutput output;
  output.finished = true;
  output.finish_reason = FinishReason::kLength;
  output.prompt_tokens = 3;
  output.completion_tokens = 7;
  v1::GenerateResponse response;
  SetFinish(output, &response);
  EXPECT_EQ(response.finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(response.usage().prompt_tokens(), 3u);
  EXPECT_EQ(response.usage().completion_tokens(), 7u);
  EXPECT_EQ(ToProtoFinishReason(FinishReason::kStop), v1::FINISH_REASON_STOP);
  EXPECT_EQ(ToProtoFinishReason(FinishReason::kCancelled), v1::FINISH_REASON_CANCELLED);
  output.status = absl::InternalError("x");
  SetFinish(output, &response);
  EXPECT_EQ(response.finish_reason(), v1::FINISH_REASON_ERROR);
}

}  // namespace
}  // namespace lorad::server
