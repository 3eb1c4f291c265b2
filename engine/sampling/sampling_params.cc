#include "engine/sampling/sampling_params.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"

namespace lorad {

absl::Status ValidateSamplingParams(const SamplingParams& p, const SamplingLimits& limits) {
  if (p.max_new_tokens < 1 || p.max_new_tokens > limits.max_new_tokens) {
    return absl::InvalidArgumentError(absl::StrCat("sampling.max_new_tokens must be in [1, ",
                                                   limits.max_new_tokens, "], got ",
                                                   p.max_new_tokens));
  }
  if (!std::isfinite(p.temperature) || p.temperature < 0.0f) {
    return absl::InvalidArgumentError(
        absl::StrCat("sampling.temperature must be >= 0, got ", p.temperature));
  }
  if (!std::isfinite(p.top_p) || p.top_p <= 0.0f || p.top_p > 1.0f) {
    return absl::InvalidArgumentError(
        absl::StrCat("sampling.top_p must be in (0, 1], got ", p.top_p));
  }
  if (p.top_k < 0) {
    return absl::InvalidArgumentError(absl::StrCat("sampling.top_k must be >= 0, got ", p.top_k));
  }
  if (!std::isfinite(p.min_p) || p.min_p < 0.0f || p.min_p > 1.0f) {
    return absl::InvalidArgumentError(
        absl::StrCat("sampling.min_p must be in [0, 1], got ", p.min_p));
  }
  if (!std::isfinite(p.repetition_penalty) || p.repetition_penalty <= 0.0f) {
    return absl::InvalidArgumentError(
        absl::StrCat("sampling.repetition_penalty must be > 0, got ", p.repetition_penalty));
  }
  for (const auto& [name, value] :
       {std::pair<const char*, float>{"presence_penalty", p.presence_penalty},
        {"frequency_penalty", p.frequency_penalty}}) {
    if (!std::isfinite(value) || value < -2.0f || value > 2.0f) {
      return absl::InvalidArgumentError(
          absl::StrCat("sampling.", name, " must be in [-2, 2], got ", value));
    }
  }
  if (static_cast<int64_t>(p.stop.size()) > limits.max_stop_sequences) {
    return absl::InvalidArgumentError(absl::StrCat("sampling.stop has ", p.stop.size(),
                                                   " sequences; at most ",
                                                   limits.max_stop_sequences, " are allowed"));
  }
  for (size_t i = 0; i < p.stop.size(); ++i) {
    if (p.stop[i].empty() || static_cast<int64_t>(p.stop[i].size()) > limits.max_stop_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("sampling.stop[", i, "] must be 1 to ", limits.max_stop_bytes, " bytes"));
    }
  }
  if (p.logprobs < 0 || p.logprobs > limits.max_logprobs) {
    return absl::InvalidArgumentError(absl::StrCat("sampling.logprobs must be in [0, ",
                                                   limits.max_logprobs, "], got ", p.logprobs));
  }
  return absl::OkStatus();
}

}  // namespace lorad
