// Rotary position embedding for Llama-family models. Two layouts: adjacent pairs
// (x[2i], x[2i+1]) — llama GGUF weights and HF weights after the loader's q/k permutation — and
// NeoX halves (x[i], x[i + d/2]) — qwen2 (spec.rope_neox). Llama-3 scaling comes in as per-pair
// frequency divisors (ModelWeights::rope_freq_factors).
// Thread-safe (immutable after construction).
#pragma once

#include <cstdint>
#include <vector>

#include "engine/base/model_spec.h"

namespace lorad {

class Rope {
 public:
  // `freq_factors` is empty or has head_dim / 2 divisors of the pair frequencies.
  Rope(const ModelSpec& spec, const std::vector<float>& freq_factors);

  // Rotates `num_heads` vectors of head_dim at `v` ([num_heads, head_dim]) to `position`.
  void Apply(float* v, int32_t num_heads, int64_t position) const;

 private:
  int32_t head_dim_;
  bool neox_;
  std::vector<float> freq_factor_;  // per pair: 1, or the Llama-3 scaling divisor
  float theta_scale_;               // base^(-2/head_dim)
};

}  // namespace lorad
