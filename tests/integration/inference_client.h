// Small synchronous client helpers for the Inference service in integration tests.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "lorad/v1/inference.grpc.pb.h"

namespace lorad::testing {

// A greedy request for `prompt` generating exactly `max_new_tokens` tokens (ignore_eos).
v1::GenerateRequest GreedyRequest(const std::string& prompt, uint32_t max_new_tokens);

// The outcome of one GenerateStream call, messages concatenated.
struct StreamResult {
  grpc::Status status;
  std::string text;
  std::vector<uint32_t> token_ids;
  int messages = 0;
  v1::FinishReason finish_reason = v1::FINISH_REASON_UNSPECIFIED;  // from the last message
  v1::Usage usage;
};

// Runs GenerateStream to its end with a `timeout` deadline.
StreamResult RunStream(v1::Inference::Stub& stub, const v1::GenerateRequest& request,
                       std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Runs unary Generate with a `timeout` deadline.
grpc::Status RunUnary(v1::Inference::Stub& stub, const v1::GenerateRequest& request,
                      v1::GenerateResponse* response,
                      std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace lorad::testing
