// LoRA parameters as fp32 host arrays, the hand-off between the trainer, checkpoints and the
// PEFT writer. Rows are in the engine's order (q/k rows permuted as the loaded base's are; see
// model_weights.h); the PEFT writer converts to Hugging Face order.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/base/lora_weights.h"
#include "engine/base/model_spec.h"

namespace lorad::finetune {

struct TrainedLoraPair {
  int32_t rank = 0;      // 0: projection not adapted
  std::vector<float> a;  // [rank, in_features]
  std::vector<float> b;  // [out_features, rank]
};

struct TrainedLora {
  int32_t rank = 0;
  float alpha = 0.0f;
  bool use_rslora = false;
  float dropout = 0.0f;
  std::vector<std::array<TrainedLoraPair, kNumLoraTargets>> layers;
};

// Writes `lora` as a PEFT adapter directory (adapter_config.json + adapter_model.safetensors,
// fp32, Hugging Face row order, base_model.model.model.layers.N.<module>.lora_A/B.weight) into
// the existing directory `dir`, each file atomically. `base_model_name` goes into the config.
absl::Status WritePeftAdapter(const std::string& dir, const TrainedLora& lora,
                              const ModelSpec& spec, const std::string& base_model_name);

}  // namespace lorad::finetune
