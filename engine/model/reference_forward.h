// The definition of the forward pass: a plain fp32 Llama forward over dequantized weights,
// textbook ops, no KV cache, one sequence at a time. Slow; used by tests as the reference for
// the optimized LlamaModel and (with merged LoRA weights) for the multi-LoRA batch.
// Thread-safety: const methods are thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model/lora_binding.h"
#include "engine/model/model_weights.h"

namespace lorad {

class ReferenceModel {
 public:
  // Dequantizes every weight of `weights` to fp32 (the model must fit in memory as fp32).
  static absl::StatusOr<ReferenceModel> Create(const ModelWeights& weights);

  // Merges an adapter into the dense weight: W[target] += scale * B · A, with A [rank, cols]
  // and B [rows, rank] row-major fp32.
  void MergeLora(int32_t layer, LoraTarget target, const float* a, const float* b, int32_t rank,
                 float scale);

  // Logits [tokens.size(), vocab] of the sequence `tokens` at positions 0..n-1.
  std::vector<float> Forward(const std::vector<int32_t>& tokens) const;

  const ModelSpec& spec() const { return spec_; }

 private:
  struct Layer {
    std::vector<float> attn_norm, ffn_norm, bq, bk, bv;
    std::vector<float> w[kNumLoraTargets];  // [rows, cols] per target projection
  };
  ModelSpec spec_;
  std::vector<float> embedding_, output_, output_norm_, rope_freq_factors_;
  std::vector<Layer> layers_;
};

}  // namespace lorad
