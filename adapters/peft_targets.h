// Which projections of which layers a PEFT LoRA config adapts, with what rank and alpha, decided
// exactly as PEFT decides it when it builds the model: module keys such as
// "model.layers.3.self_attn.q_proj" are matched against target_modules / exclude_modules /
// layers_to_transform / layers_pattern, and rank_pattern / alpha_pattern keys are regexes
// matched against a suffix of the key (PEFT's get_pattern_key).
// Thread-safety: stateless functions.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "adapters/peft_config.h"
#include "engine/base/lora_weights.h"

namespace lorad::adapters {

struct ModulePlan {
  bool targeted = false;
  int32_t rank = 0;
  float alpha = 0.0f;
  float scale = 0.0f;  // alpha / rank, or alpha / sqrt(rank) with use_rslora
};
using LayerPlan = std::array<ModulePlan, kNumLoraTargets>;

// The plan for a base of `num_layers` layers. `file` names the config in messages.
// INVALID_ARGUMENT: a pattern that is not a valid regex. FAILED_PRECONDITION: a target the base
// lacks or lorad does not adapt (lm_head, embed_tokens, a name matching no projection), a layer
// in layers_to_transform past the base's layer count, or a config that targets nothing.
absl::StatusOr<std::vector<LayerPlan>> PlanModules(const PeftConfig& config, int32_t num_layers,
                                                   const std::string& file);

}  // namespace lorad::adapters
