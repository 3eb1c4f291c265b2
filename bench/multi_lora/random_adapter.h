// Writes random PEFT LoRA adapters shaped for a base ModelSpec (benchmark inputs): rank r on
// the chosen projections of every layer, A ~ U(-1/sqrt(in), 1/sqrt(in)), B small so that the
// model's outputs stay sane. Thread-safety: stateless function.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/base/model_spec.h"

namespace lorad::bench {

struct RandomAdapterOptions {
  int32_t rank = 16;
  float alpha = 32.0f;
  std::vector<std::string> modules = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                      "gate_proj", "up_proj", "down_proj"};
  float b_scale = 0.01f;
  uint64_t seed = 1;
};

// Writes adapter_config.json + adapter_model.safetensors (F16) into `dir` (created).
absl::Status WriteRandomAdapter(const ModelSpec& base, const RandomAdapterOptions& options,
                                const std::string& dir);

}  // namespace lorad::bench
