// Rotary position embedding for Llama-family models. Two layouts: adjacent pairs
// (x[2i], x[2i+1]) — llama GGUF weights and HF weights after the loader's q/k permutation — and
// NeoX halves (x[i], x[i + d/2]) — qwen2 (spec.rope_neox). Llama-3 scaling comes in as per-pair
// frequency divisors (ModelWeights::rope_freq_factors).
// CPU: fp32, theta_i = position · base^(-2i/d) built by repeated multiplication and the
// rotation's first product fused, as llama.cpp computes it on FMA CPUs (its reference numbers).
// CUDA: fp16 / bf16 activations, fp32 angles from powf (within fp16 rounding of the CPU).
// Thread-safety: RopeTable is immutable; ApplyRope is stateless.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "engine/base/dtype.h"
#include "engine/base/model_spec.h"
#include "engine/ops/op_context.h"

namespace lorad::ops {

// The model's rotation parameters, built once.
struct RopeTable {
  // `freq_factors` is empty or has head_dim / 2 divisors of the pair frequencies.
  RopeTable(const ModelSpec& spec, const std::vector<float>& freq_factors);

  int32_t head_dim;
  bool neox;
  std::vector<float> freq_factor;  // per pair: 1, or the Llama-3 scaling divisor
  float theta_scale;               // base^(-2/head_dim)
};

// Rotates row r of x ([rows, num_heads, head_dim], `act_dtype`) to positions[r] for every head.
// x and positions ([rows]) are in the device's memory. INVALID_ARGUMENT for bad sizes, a null
// pointer, a dtype the device does not take or (CUDA) head_dim > 512; FAILED_PRECONDITION when
// the device cannot run it. Positions are not range-checked on CUDA (they live on the device).
absl::Status ApplyRope(const OpContext& ctx, const RopeTable& table, DType act_dtype, void* x,
                       int64_t rows, int32_t num_heads, const int32_t* positions);

}  // namespace lorad::ops
