// Checks every op makes before it dispatches (internal to engine/ops).
#pragma once

#include "absl/status/status.h"
#include "engine/base/dtype.h"
#include "engine/ops/op_context.h"

namespace lorad::ops::internal {

// OK when `ctx.device` can run `op` on activations of `act_dtype`: F32 on the CPU; F16 or BF16
// on CUDA, where CudaUsable() must also hold. INVALID_ARGUMENT "<op> on <device> takes ...
// activations, not X"; FAILED_PRECONDITION from CudaUsable().
absl::Status CheckActivations(const OpContext& ctx, const char* op, DType act_dtype);

}  // namespace lorad::ops::internal
