// Conversion between the lorad.v1 Inference messages and the engine's plain types. Requests are
// checked here for what the engine cannot see (both prompt and messages set, proto zero values
// meaning "server default"); the engine validates the rest and names the field.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "engine/generate_types.h"
#include "lorad/v1/inference.pb.h"

namespace lorad {
class Tokenizer;
}  // namespace lorad

namespace lorad::server {

// Server-side defaults applied to fields a request leaves at zero.
struct RequestDefaults {
  int32_t default_max_new_tokens = 256;  // when sampling.max_new_tokens is 0
  int32_t max_new_tokens = 4096;         // the limit (the engine enforces it)
  int64_t max_request_bytes = 4 << 20;   // larger requests are INVALID_ARGUMENT
};

// The engine request for `request`. INVALID_ARGUMENT for a request over max_request_bytes or an
// empty messages list; the engine validates the rest (an empty prompt, sampling ranges).
absl::StatusOr<GenerateRequest> ToEngineRequest(const v1::GenerateRequest& request,
                                                const RequestDefaults& defaults);

// Appends `output`'s delta (text, token ids, logprobs with the texts the engine gave them) to
// `response`.
void AppendDelta(const GenerateOutput& output, v1::GenerateResponse* response);

// Sets finish_reason and usage from the final `output`.
void SetFinish(const GenerateOutput& output, v1::GenerateResponse* response);

v1::FinishReason ToProtoFinishReason(FinishReason reason);

}  // namespace lorad::server
