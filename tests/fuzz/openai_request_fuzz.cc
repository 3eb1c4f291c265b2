// Fuzz target: an OpenAI-compatible HTTP body, through what /v1/completions and
// /v1/chat/completions do before the engine: ParseOpenAiRequest (the first input byte picks the
// endpoint), the engine's sampling validation and chat rendering, then the response and chunk
// JSON built around the body's own bytes as generated text (any bytes must serialize). A parse
// failure must be INVALID_ARGUMENT or NOT_FOUND with a message; a parsed request must have input.
#include <cstddef>
#include <cstdint>

#include "engine/sampling/sampling_params.h"
#include "engine/tokenizer/chat_template.h"
#include "server/inference/openai_api.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lorad;
  fuzz::ByteReader in(data, size);
  const server::OpenAiEndpoint endpoint =
      (in.Byte() & 1) ? server::OpenAiEndpoint::kChat : server::OpenAiEndpoint::kCompletions;
  const std::string_view body = in.Rest();
  server::ModelNames names;
  names.base = "tiny";
  names.adapter_registered = [](const std::string& id) { return id == "good"; };
  server::OpenAiRequest request;
  if (std::optional<server::OpenAiError> error =
          server::ParseOpenAiRequest(endpoint, body, names, 16, &request)) {
    const absl::StatusCode code = error->status.code();
    if (code != absl::StatusCode::kInvalidArgument && code != absl::StatusCode::kNotFound) {
      __builtin_trap();
    }
    if (error->status.message().empty()) __builtin_trap();
    return 0;
  }
  if (request.engine.prompt.empty() && request.engine.messages.empty()) __builtin_trap();
  if (!request.engine.messages.empty()) {
    ApplyChatTemplate(fuzz::TinyChatTemplate(), request.engine.messages, true).IgnoreError();
  }
  ValidateSamplingParams(request.engine.sampling, SamplingLimits()).IgnoreError();
  server::OpenAiOutput output;
  output.text = std::string(body);
  output.finish = FinishReason::kLength;
  SampledToken token;
  token.text = std::string(body.substr(0, 8));
  token.top.push_back(TokenLogprob{1, -0.5f, std::string(body.substr(0, 3))});
  output.logprobs.push_back(token);
  if (server::OpenAiResponseJson(request, "cmpl-1", 0, output).empty()) __builtin_trap();
  if (server::OpenAiChunkJson(request, "cmpl-1", 0, output, true).empty()) __builtin_trap();
  return 0;
}
