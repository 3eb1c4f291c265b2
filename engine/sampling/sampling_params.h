// What a request asks of the sampler: the knobs of vLLM/llama.cpp sampling, with their
// validation. Temperature 0 means greedy.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace lorad {

struct SamplingParams {
  int32_t max_new_tokens = 256;     // generation stops after this many tokens (LENGTH)
  float temperature = 1.0f;         // 0 = greedy; otherwise logits are divided by it
  float top_p = 1.0f;               // nucleus: smallest set with cumulative prob >= top_p
  int32_t top_k = 0;                // keep the k most likely tokens; 0 = off
  float min_p = 0.0f;               // drop tokens with prob < min_p * max prob; 0 = off
  float repetition_penalty = 1.0f;  // > 1 discourages tokens already in prompt or output
  // OpenAI's additive penalties on tokens already generated (the prompt does not count), each
  // in [-2, 2], 0 = off: a token's logit drops by presence_penalty once it has appeared, and by
  // frequency_penalty for every time it has.
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  uint64_t seed = 0;              // RNG seed; 0 = a random seed per request
  std::vector<std::string> stop;  // generation stops before the first occurrence of any
  int32_t logprobs = 0;           // also return the top-n log-probabilities per token
  bool ignore_eos = false;        // keep going past end-of-generation tokens
};

// Limits the server enforces on a request; see ValidateSamplingParams.
struct SamplingLimits {
  int32_t max_new_tokens = 4096;
  int32_t max_stop_sequences = 16;
  int32_t max_stop_bytes = 256;  // per stop sequence
  int32_t max_logprobs = 20;
};

// INVALID_ARGUMENT naming the field and the allowed range when a value is out of range.
absl::Status ValidateSamplingParams(const SamplingParams& p, const SamplingLimits& limits);

}  // namespace lorad
