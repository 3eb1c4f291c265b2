// RMSNorm over rows: y[r, i] = x[r, i] / rms(x[r, :]) · weight[i], rms = sqrt(mean(x²) + eps).
// CPU: fp32 (kernels/vec_math.h, the bits llama.cpp's CPU path computes); CUDA: fp16 or bf16
// activations with fp32 accumulation and an fp32 weight vector in device memory.
// Thread-safety: stateless.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "engine/base/dtype.h"
#include "engine/ops/op_context.h"

namespace lorad::ops {

// x, y: [rows, dim] of `act_dtype` (may alias); weight: [dim] fp32. INVALID_ARGUMENT for bad
// sizes, a null pointer or a dtype the device does not take; FAILED_PRECONDITION when the
// device cannot run it.
absl::Status RmsNorm(const OpContext& ctx, DType act_dtype, const void* x, const float* weight,
                     float eps, int64_t rows, int64_t dim, void* y);

}  // namespace lorad::ops
