// Classifies the tensor names found in a PEFT adapter_model.safetensors: LoRA A/B of a Llama
// projection, or something lorad refuses (naming the feature), or something unexpected.
// Thread-safety: stateless function.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "engine/base/lora_weights.h"

namespace lorad::adapters {

struct LoraTensorName {
  int32_t layer = 0;
  LoraTarget target = LoraTarget::kQ;
  bool is_b = false;  // lora_B (else lora_A)
};

// Parses "base_model.model.model.layers.{i}.{self_attn|mlp}.{q,k,v,o,gate,up,down}_proj.
// lora_{A,B}.weight", as PEFT saves it. FAILED_PRECONDITION naming the tensor and the feature
// for DoRA magnitudes, LoRA biases, embedding LoRA, LoRA on other modules (lm_head, ...) and
// full module weights (modules_to_save); INVALID_ARGUMENT for any other name. `file` prefixes
// messages.
absl::StatusOr<LoraTensorName> ParseLoraTensorName(const std::string& name,
                                                   const std::string& file);

}  // namespace lorad::adapters
