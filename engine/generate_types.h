// Requests the engine takes and the outputs it streams back: engine-side plain types that the
// server converts to and from protobuf.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "engine/sampling/sampler.h"
#include "engine/sampling/sampling_params.h"
#include "engine/tokenizer/chat_template.h"

namespace lorad {

struct GenerateRequest {
  std::string request_id;             // unique among live requests; "" = engine assigns one
  std::string adapter_id;             // "" = the base model
  std::string prompt;                 // raw prompt (special tokens in it are parsed), or
  std::vector<ChatMessage> messages;  // a chat, rendered with the model's template (if set)
  SamplingParams sampling;
  absl::Time deadline = absl::InfiniteFuture();
};

enum class FinishReason { kStop, kLength, kCancelled };

// One event for a request. Events arrive in order; the last has `finished` set. A failed
// request gets one final event with a non-OK status.
struct GenerateOutput {
  std::string text;                    // text produced since the previous event (UTF-8)
  std::vector<int32_t> token_ids;      // tokens produced since the previous event
  std::vector<SampledToken> logprobs;  // per token in token_ids, when requested
  bool finished = false;
  FinishReason finish_reason = FinishReason::kStop;  // valid when finished
  absl::Status status;  // non-OK: the request failed (finished is true)
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;  // total so far
};

// Receives a request's outputs. Called on an engine thread (the scheduler, or the adapter
// loader when the request fails before it is scheduled): must not block. Calls for one request
// never overlap, and none follows an event with `finished`.
class GenerateSink {
 public:
  virtual ~GenerateSink() = default;
  virtual void OnOutput(GenerateOutput output) = 0;
};

}  // namespace lorad
