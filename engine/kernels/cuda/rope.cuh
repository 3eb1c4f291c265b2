// Rotary position embedding on fp16 / bf16 activations (the CUDA half of ops::ApplyRope).
// Plain C++ header: raw device pointers, an explicit stream, a cudaError_t result
// (cudaErrorInvalidValue for bad arguments, before any CUDA call); no workspace.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "engine/base/dtype.h"

namespace lorad::cuda {

inline constexpr int32_t kRopeMaxHeadDim = 512;

// Passed by value to the kernel (fits the kernel-parameter space), so no device copy is needed.
struct RopeParams {
  int32_t head_dim = 0;  // even, <= kRopeMaxHeadDim
  bool neox = false;     // halves (x[i], x[i + d/2]) instead of adjacent pairs
  float theta_scale = 1.0f;
  float freq_factor[kRopeMaxHeadDim / 2] = {};  // per pair divisor (1 without scaling)
};

// x [rows, num_heads, head_dim] rotated in place; positions [rows] int32, device memory.
cudaError_t Rope(DType act_dtype, const RopeParams& params, void* x, int64_t rows,
                 int32_t num_heads, const int32_t* positions, cudaStream_t stream);

}  // namespace lorad::cuda
