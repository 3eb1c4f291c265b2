// Per-sequence token sampler: repetition, presence and frequency penalties, temperature, top-k,
// top-p, min-p, seeded RNG, and top-n log-probabilities of the model's distribution (before any
// of those transforms).
// Thread-safety: one Sampler per sequence, used by one thread at a time.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"
#include "engine/sampling/sampling_params.h"

namespace lorad {

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0.0f;
  std::string text;  // the token's bytes (Tokenizer::TokenPiece), set by the scheduler
};

struct SampledToken {
  int32_t token = 0;
  std::string text;               // the token's bytes (Tokenizer::TokenPiece), set by the scheduler
  float logprob = 0.0f;           // log-probability of `token` under the model (before sampling
                                  // transforms); filled only when logprobs were requested
  std::vector<TokenLogprob> top;  // top-n by model log-probability, descending
};

class Sampler {
 public:
  // `seed` is used when params.seed is 0 (the caller picks a random one).
  Sampler(const SamplingParams& params, int32_t vocab_size, uint64_t seed);

  // Records a prompt token (the repetition penalty counts it).
  void ObservePrompt(int32_t token);
  // Records a generated token (the repetition, presence and frequency penalties count it).
  void ObserveOutput(int32_t token);

  // Picks the next token from `logits` [vocab_size]; `logits` is used as scratch.
  SampledToken Sample(float* logits);

 private:
  SamplingParams params_;
  int32_t vocab_size_;
  std::mt19937_64 rng_;
  std::vector<uint8_t> seen_;       // token -> appeared in prompt or output
  std::vector<int32_t> seen_list_;  // the tokens with seen_ set
  // Generated token -> times generated; kept only when a presence or frequency penalty is set.
  absl::flat_hash_map<int32_t, int32_t> output_counts_;
  std::vector<int32_t> candidates_;
  std::vector<float> probs_;
};

}  // namespace lorad
