// Which LoRA adapters apply to which tokens of one forward batch: for every layer and target
// projection, the segments of the segmented LoRA operator. Built per step by the scheduler from
// the adapter cache; the model only reads it, handing each list unchanged to ops::ApplyLora (the
// one segment type from the scheduler down to the CPU and CUDA kernels).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "engine/base/lora_weights.h"
#include "engine/kernels/segmented_lora.h"

namespace lorad {

struct LoraBatch {
  // [num_layers][target]: segments over the batch's token rows; empty = no adapter there.
  std::vector<std::array<std::vector<kernels::LoraSegment>, kNumLoraTargets>> layers;
};

}  // namespace lorad
