// Shapes of the seven adaptable projections of a Llama block.
#pragma once

#include <cstdint>

#include "engine/base/lora_weights.h"
#include "engine/base/model_spec.h"

namespace lorad::finetune {

struct LoraShape {
  int64_t out = 0;  // rows of W and of B
  int64_t in = 0;   // columns of W and of A
};

inline LoraShape ShapeOf(const ModelSpec& s, LoraTarget target) {
  const int64_t h = s.hidden_size, q = int64_t{s.num_heads} * s.head_dim;
  const int64_t kv = int64_t{s.num_kv_heads} * s.head_dim, ff = s.intermediate_size;
  switch (target) {
    case LoraTarget::kQ:
      return {q, h};
    case LoraTarget::kK:
    case LoraTarget::kV:
      return {kv, h};
    case LoraTarget::kO:
      return {h, q};
    case LoraTarget::kGate:
    case LoraTarget::kUp:
      return {ff, h};
    case LoraTarget::kDown:
      return {h, ff};
  }
  return {};
}

}  // namespace lorad::finetune
