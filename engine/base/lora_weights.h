// A LoRA adapter's weights as the compute kernels consume them: for every layer and target
// projection, A [rank, in_features] and B [out_features, rank] row-major (PEFT's lora_A/lora_B
// layout) and the scale (alpha / r, or alpha / sqrt(r) for rsLoRA). Plain data shared by the
// adapter store (adapters/) and the engine; the owner keeps the bytes alive.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/base/dtype.h"

namespace lorad {

// The seven projections of a Llama block an adapter may target (PEFT module names).
enum class LoraTarget : uint8_t {
  kQ,     // self_attn.q_proj
  kK,     // self_attn.k_proj
  kV,     // self_attn.v_proj
  kO,     // self_attn.o_proj
  kGate,  // mlp.gate_proj
  kUp,    // mlp.up_proj
  kDown,  // mlp.down_proj
};
inline constexpr int kNumLoraTargets = 7;

// One targeted projection; rank 0 means the adapter leaves this projection alone.
struct LoraPair {
  int32_t rank = 0;
  float scale = 0.0f;
  DType dtype = DType::kF32;  // kF32 or kF16
  const void* a = nullptr;    // [rank, in_features]
  const void* b = nullptr;    // [out_features, rank]
};

struct LoraWeights {
  std::vector<std::array<LoraPair, kNumLoraTargets>> layers;  // [num_layers][target]
};

}  // namespace lorad
