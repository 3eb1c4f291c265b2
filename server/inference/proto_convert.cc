#include "server/inference/proto_convert.h"

#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/tokenizer/tokenizer.h"

namespace lorad::server {
namespace {

SamplingParams ToEngineSampling(const v1::SamplingParams& proto, const RequestDefaults& defaults) {
  SamplingParams params;
  params.max_new_tokens = defaults.default_max_new_tokens;
  if (proto.max_new_tokens() > 0) {
    params.max_new_tokens = static_cast<int32_t>(
        std::min<uint32_t>(proto.max_new_tokens(), std::numeric_limits<int32_t>::max()));
  }
  params.temperature = proto.temperature();
  params.top_p = proto.top_p() == 0.0f ? 1.0f : proto.top_p();
  params.top_k =
      static_cast<int32_t>(std::min<uint32_t>(proto.top_k(), std::numeric_limits<int32_t>::max()));
  params.min_p = proto.min_p();
  params.repetition_penalty =
      proto.repetition_penalty() == 0.0f ? 1.0f : proto.repetition_penalty();
  params.presence_penalty = proto.presence_penalty();
  params.frequency_penalty = proto.frequency_penalty();
  params.seed = proto.has_seed() ? proto.seed() : 0;
  params.stop.assign(proto.stop().begin(), proto.stop().end());
  params.logprobs = static_cast<int32_t>(
      std::min<uint32_t>(proto.logprobs(), std::numeric_limits<int32_t>::max()));
  params.ignore_eos = proto.ignore_eos();
  return params;
}

void SetLogprob(int32_t token, float logprob, const std::string& text, v1::TokenLogprob* out) {
  out->set_token_id(static_cast<uint32_t>(token));
  out->set_logprob(logprob);
  out->set_token(text);
}

}  // namespace

absl::StatusOr<GenerateRequest> ToEngineRequest(const v1::GenerateRequest& request,
                                                const RequestDefaults& defaults) {
  const size_t bytes = request.ByteSizeLong();
  if (bytes > static_cast<size_t>(defaults.max_request_bytes)) {
    return absl::InvalidArgumentError(absl::StrCat("request is ", bytes, " bytes; the limit is ",
                                                   defaults.max_request_bytes,
                                                   " bytes (--max_request_bytes)"));
  }
  GenerateRequest out;
  out.request_id = request.request_id();
  out.adapter_id = request.adapter_id();
  switch (request.input_case()) {
    case v1::GenerateRequest::kPrompt:
      out.prompt = request.prompt();  // the engine refuses an empty one
      break;
    case v1::GenerateRequest::kMessages:
      if (request.messages().messages().empty()) {
        return absl::InvalidArgumentError("messages: at least one message is required");
      }
      for (const v1::ChatMessage& message : request.messages().messages()) {
        out.messages.push_back({message.role(), message.content()});
      }
      break;
    case v1::GenerateRequest::INPUT_NOT_SET:
      break;  // the engine refuses the empty prompt
  }
  // Ranges (max_new_tokens against --max_new_tokens, temperature, ...) are the engine's to check
  // (ValidateSamplingParams): one check, the same for gRPC and HTTP.
  out.sampling = ToEngineSampling(request.sampling(), defaults);
  return out;
}

void AppendDelta(const GenerateOutput& output, v1::GenerateResponse* response) {
  response->mutable_text()->append(output.text);
  for (int32_t id : output.token_ids) response->add_token_ids(static_cast<uint32_t>(id));
  for (const SampledToken& sampled : output.logprobs) {
    v1::TokenLogprobs* entry = response->add_logprobs();
    SetLogprob(sampled.token, sampled.logprob, sampled.text, entry->mutable_chosen());
    for (const TokenLogprob& top : sampled.top) {
      SetLogprob(top.token, top.logprob, top.text, entry->add_top());
    }
  }
}

void SetFinish(const GenerateOutput& output, v1::GenerateResponse* response) {
  response->set_finish_reason(output.status.ok() ? ToProtoFinishReason(output.finish_reason)
                                                 : v1::FINISH_REASON_ERROR);
  response->mutable_usage()->set_prompt_tokens(static_cast<uint32_t>(output.prompt_tokens));
  response->mutable_usage()->set_completion_tokens(static_cast<uint32_t>(output.completion_tokens));
}

v1::FinishReason ToProtoFinishReason(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return v1::FINISH_REASON_STOP;
    case FinishReason::kLength:
      return v1::FINISH_REASON_LENGTH;
    case FinishReason::kCancelled:
      return v1::FINISH_REASON_CANCELLED;
  }
  return v1::FINISH_REASON_UNSPECIFIED;
}

}  // namespace lorad::server
