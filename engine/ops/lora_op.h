// The multi-LoRA operator: y += scale_i · (x_seg_i · A_iᵀ) · B_iᵀ for every segment i of the
// batch's tokens, adapters of mixed ranks in one call. On the CPU it runs the segmented LoRA
// kernels (fp32 activations, fp32 or fp16 adapter weights); on CUDA the SGMV kernels (fp16 or
// bf16 activations and weights in the same dtype, fp32 accumulation).
// Thread-safety: stateless; concurrent calls need separate workspaces.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/base/dtype.h"
#include "engine/kernels/segmented_lora.h"
#include "engine/ops/op_context.h"

namespace lorad::ops {

// The segments are kernels::LoraSegment, the one type the scheduler's hand-over (LoraBatch) holds
// for every layer and target: tokens [token_begin, token_end) use one adapter, whose `a`
// [rank, d_in] and `b` [d_out, rank] (row-major, of `dtype`) live in the device's memory.

// Bytes of OpContext::workspace ApplyLora needs on `device` (0 when the device's kernels are
// not built).
size_t ApplyLoraWorkspaceBytes(Device device, int64_t num_tokens,
                               absl::Span<const kernels::LoraSegment> segs);

// x: [num_tokens, d_in], y: [num_tokens, d_out], both `act_dtype` in the device's memory,
// rows contiguous. Segments sorted by token_begin, non-overlapping, within [0, num_tokens);
// tokens outside every segment are untouched. INVALID_ARGUMENT naming the problem (bad sizes,
// overlapping segments, rank < 1, a dtype the device's kernels do not take, workspace too
// small); FAILED_PRECONDITION when the device cannot run it (built without CUDA, no device);
// INTERNAL for a CUDA launch error.
absl::Status ApplyLora(const OpContext& ctx, DType act_dtype, const void* x, int64_t d_in, void* y,
                       int64_t d_out, int64_t num_tokens,
                       absl::Span<const kernels::LoraSegment> segs);

}  // namespace lorad::ops
