// Fuzz target: a GenerateRequest off the wire, through what Inference.Generate does before the
// scheduler: protobuf parsing, ToEngineRequest, the engine's sampling-parameter validation, and
// rendering/tokenizing the prompt or the chat with the tiny model's tokenizer and template.
#include <cstddef>
#include <cstdint>

#include "engine/sampling/sampling_params.h"
#include "engine/tokenizer/chat_template.h"
#include "lorad/v1/inference.pb.h"
#include "server/inference/proto_convert.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lorad;
  v1::GenerateRequest proto;
  if (!proto.ParseFromArray(data, static_cast<int>(size))) return 0;
  server::RequestDefaults defaults;
  absl::StatusOr<GenerateRequest> request = server::ToEngineRequest(proto, defaults);
  if (!request.ok()) {
    if (request.status().code() != absl::StatusCode::kInvalidArgument) __builtin_trap();
    return 0;
  }
  if (!ValidateSamplingParams(request->sampling, SamplingLimits()).ok()) return 0;
  std::string text = request->prompt;
  if (!request->messages.empty()) {
    absl::StatusOr<std::string> rendered =
        ApplyChatTemplate(fuzz::TinyChatTemplate(), request->messages, true);
    if (!rendered.ok()) return 0;
    text = *std::move(rendered);
  }
  fuzz::TinyTokenizer().Encode(text, true, true).IgnoreError();
  return 0;
}
