// Element-wise ops of the Llama block: the SwiGLU product, the residual add and the projection
// bias. CPU: fp32 (kernels/vec_math.h); CUDA: fp16 or bf16 activations, fp32 arithmetic, fp32
// bias vectors in device memory. Error codes as every op: INVALID_ARGUMENT for bad sizes, null
// pointers or a dtype the device does not take; FAILED_PRECONDITION when the device cannot run.
// Thread-safety: stateless.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "engine/base/dtype.h"
#include "engine/ops/op_context.h"

namespace lorad::ops {

// gate[i] = silu(gate[i]) · up[i] for i < n (silu(x) = x / (1 + e^-x)).
absl::Status SiluMul(const OpContext& ctx, DType act_dtype, void* gate, const void* up, int64_t n);

// y[i] += x[i] for i < n.
absl::Status Add(const OpContext& ctx, DType act_dtype, const void* x, void* y, int64_t n);

// y[r, i] += bias[i] for every row r of y [rows, dim]; bias fp32.
absl::Status AddBias(const OpContext& ctx, DType act_dtype, const float* bias, void* y,
                     int64_t rows, int64_t dim);

}  // namespace lorad::ops
