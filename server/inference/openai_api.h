// The OpenAI-compatible request and response bodies of the HTTP front: /v1/completions and
// /v1/chat/completions JSON -> engine requests, and engine outputs -> OpenAI JSON (whole
// responses and Server-Sent-Event chunks). Pure functions; the HTTP server is http_front.h.
//
// Accepted: model (an adapter id, the base model's name, or "<base>:<adapter>" as SGLang),
// prompt (completions: a string, or an array of one string) / messages (chat: string content or
// an array of text parts), max_tokens / max_completion_tokens, temperature, top_p, stop (string
// or array), seed, n (1 only), logprobs (completions: an integer; chat: a boolean with
// top_logprobs), presence_penalty, frequency_penalty, stream, stream_options.include_usage, user
// (ignored), and lorad's extras top_k, min_p, repetition_penalty, ignore_eos. Refused by name
// with INVALID_ARGUMENT: n > 1, best_of > 1, echo, suffix, logit_bias,
// tools / functions, response_format other than text, non-text content parts. Unknown fields are
// ignored, as OpenAI's API does. Sampling ranges are the engine's to check.
// Thread-safety: stateless functions.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/generate_types.h"

namespace lorad::server {

enum class OpenAiEndpoint { kCompletions, kChat };

// How `model` names resolve.
struct ModelNames {
  std::string base;                                            // the base model's id
  std::function<bool(const std::string&)> adapter_registered;  // an adapter id is known
};

struct OpenAiRequest {
  OpenAiEndpoint endpoint = OpenAiEndpoint::kCompletions;
  GenerateRequest engine;  // adapter, prompt or messages, sampling (request_id left empty)
  std::string model;       // as the client wrote it (echoed in responses)
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool logprobs = false;       // return log-probabilities of the chosen tokens
  int32_t top_logprobs = 0;    // and this many alternatives per token
};

// A parse failure: the status (INVALID_ARGUMENT, or NOT_FOUND for an unknown model) and the
// request field it is about ("" for the body as a whole).
struct OpenAiError {
  absl::Status status;
  std::string param;
};

// Parses `body`. `default_max_tokens` applies when neither max_tokens nor
// max_completion_tokens is given.
std::optional<OpenAiError> ParseOpenAiRequest(OpenAiEndpoint endpoint, std::string_view body,
                                              const ModelNames& models, int32_t default_max_tokens,
                                              OpenAiRequest* out);

// What a finished (or, for chunks, partial) generation produced.
struct OpenAiOutput {
  std::string text;
  std::vector<SampledToken> logprobs;  // per generated token, when requested
  std::optional<FinishReason> finish;  // set on the last piece
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;
};

// The whole response body of a non-streaming request ("text_completion" / "chat.completion").
std::string OpenAiResponseJson(const OpenAiRequest& request, const std::string& id, int64_t created,
                               const OpenAiOutput& output);

// One SSE chunk's JSON ("text_completion" / "chat.completion.chunk"). `first` puts the role in a
// chat delta.
std::string OpenAiChunkJson(const OpenAiRequest& request, const std::string& id, int64_t created,
                            const OpenAiOutput& delta, bool first);

// The final usage chunk of stream_options.include_usage (empty choices).
std::string OpenAiUsageChunkJson(const OpenAiRequest& request, const std::string& id,
                                 int64_t created, int32_t prompt_tokens, int32_t completion_tokens);

// "stop" or "length" (a cancelled request has no OpenAI reason; it reports "stop").
const char* OpenAiFinishReason(FinishReason reason);

}  // namespace lorad::server
