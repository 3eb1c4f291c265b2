// The frozen-weight projection: y = x · Wᵀ with W block-quantized and read in place. On the
// CPU: fp32 activations, every format of kernels::QuantMatMul; on CUDA: fp16 or bf16
// activations, NF4 / Q4_0 / Q4_1 / Q8_0 weights resident in device memory.
// Thread-safety: stateless.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "engine/base/dtype.h"
#include "engine/ops/op_context.h"

namespace lorad::ops {

// W: `rows` rows of `weight_dtype` blocks, row r at w + r * row_bytes (row_bytes ==
// RowBytes(weight_dtype, cols)); x: [m, cols], y: [m, rows] (overwritten), `act_dtype`.
// INVALID_ARGUMENT for bad sizes or a dtype the device does not take; FAILED_PRECONDITION when
// the device cannot run it; INTERNAL for a CUDA launch error. Needs no workspace.
absl::Status QuantMatMul(const OpContext& ctx, DType weight_dtype, const void* w, int64_t row_bytes,
                         int64_t rows, int64_t cols, DType act_dtype, const void* x, int64_t m,
                         void* y);

}  // namespace lorad::ops
