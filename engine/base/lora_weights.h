// A LoRA adapter's weights as the compute kernels consume them: for every layer and target
// projection, A [rank, in_features] and B [out_features, rank] row-major (PEFT's lora_A/lora_B
// layout) and the scale (alpha / r, or alpha / sqrt(r) for rsLoRA). Plain data shared by the
// adapter store (adapters/) and the engine; the owner keeps the bytes alive.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <string_view>

#include "engine/base/dtype.h"
#include "engine/base/model_spec.h"

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

// PEFT module name of a target: "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
// "up_proj", "down_proj".
inline const char* LoraTargetName(LoraTarget target) {
  static constexpr const char* kNames[] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                           "gate_proj", "up_proj", "down_proj"};
  return kNames[static_cast<int>(target)];
}

// The block a target lives in: "self_attn" (q/k/v/o) or "mlp" (gate/up/down).
inline const char* LoraTargetBlock(LoraTarget target) {
  return static_cast<int>(target) <= static_cast<int>(LoraTarget::kO) ? "self_attn" : "mlp";
}

// The module key PEFT sees in a Llama model: "model.layers.{layer}.{block}.{name}"; its
// tensors are "base_model.model." + key + ".lora_A.weight" / ".lora_B.weight".
inline std::string LoraModuleKey(int32_t layer, LoraTarget target) {
  return "model.layers." + std::to_string(layer) + "." + LoraTargetBlock(target) + "." +
         LoraTargetName(target);
}

// The target whose LoraTargetName is `name`; false for any other name.
inline bool LoraTargetFromName(std::string_view name, LoraTarget* target) {
  for (int t = 0; t < kNumLoraTargets; ++t) {
    if (name == LoraTargetName(static_cast<LoraTarget>(t))) {
      *target = static_cast<LoraTarget>(t);
      return true;
    }
  }
  return false;
}

// Shape of a target's base matrix W [out, in] in `spec` (A is [rank, in], B [out, rank]).
struct LoraModuleShape {
  int64_t in = 0;   // in_features: columns of W and A
  int64_t out = 0;  // out_features: rows of W and B
};
inline LoraModuleShape LoraModuleShapeOf(const ModelSpec& s, LoraTarget target) {
  const int64_t h = s.hidden_size, q = int64_t{s.num_heads} * s.head_dim;
  const int64_t kv = int64_t{s.num_kv_heads} * s.head_dim, ff = s.intermediate_size;
  switch (target) {
    case LoraTarget::kQ:
      return {h, q};
    case LoraTarget::kK:
    case LoraTarget::kV:
      return {h, kv};
    case LoraTarget::kO:
      return {q, h};
    case LoraTarget::kGate:
    case LoraTarget::kUp:
      return {h, ff};
    case LoraTarget::kDown:
      return {ff, h};
  }
  return {};
}

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
