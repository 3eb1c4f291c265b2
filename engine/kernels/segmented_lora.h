// Multi-LoRA operator for a batch that mixes adapters (punica's SGMV, on the CPU): tokens are
// grouped into segments that share one adapter; each segment adds its own low-rank update
// y += scale · (x · Aᵀ) · Bᵀ. Ranks may differ between segments (never padded), and each
// adapter's A and B are read once per call however many tokens use them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/types/span.h"
#include "engine/base/dtype.h"
#include "engine/kernels/thread_pool.h"

namespace lorad::kernels {

// One run of consecutive batch tokens that use the same adapter for this projection.
struct LoraSegment {
  int64_t token_begin, token_end;  // [token_begin, token_end) rows of x / y
  int32_t rank;                    // r >= 1, may differ between segments (no padding)
  float scale;                     // lora_alpha / r (or / sqrt(r) for rsLoRA)
  DType dtype;                     // kF32 or kF16 for the adapter weights below
  const void* a;                   // A: [rank, d_in] row-major
  const void* b;                   // B: [d_out, rank] row-major
};

// Preconditions shared by every function below: segments do not overlap, lie within
// [0, num_tokens), have rank >= 1 and dtype kF32 or kF16. Empty segments (token_begin ==
// token_end) are allowed and cost nothing. Tokens outside all segments are left untouched.

// Bytes of `workspace` SegmentedLora needs: num_tokens · max rank floats, 64-byte aligned.
size_t SegmentedLoraWorkspaceBytes(int64_t num_tokens, absl::Span<const LoraSegment> segs);

// y[t, :] += scale · (x[t, :] · Aᵀ) · Bᵀ for every t in every segment.
// x: [num_tokens, d_in], y: [num_tokens, d_out]; `workspace` holds
// SegmentedLoraWorkspaceBytes(num_tokens, segs) bytes (any alignment). `pool` may be null.
void SegmentedLora(const float* x, int64_t d_in, float* y, int64_t d_out,
                   absl::Span<const LoraSegment> segs, void* workspace, ThreadPool* pool);

// Stage 1 (shrink): tmp[t * tmp_ld + j] = x[t, :] · A[j, :] for j < rank, t in each segment.
// tmp_ld >= the largest rank; other entries of tmp are not written. Callers may fuse shrinks
// (e.g. q/k/v of one adapter: A row-concatenated, rank = rq + rk + rv) and expand slices.
void SegmentedLoraShrink(const float* x, int64_t d_in, absl::Span<const LoraSegment> segs,
                         float* tmp, int64_t tmp_ld, ThreadPool* pool);

// Stage 2 (expand): y[t, :] += scale · tmp[t * tmp_ld + (0..rank)] · Bᵀ, t in each segment.
void SegmentedLoraExpand(const float* tmp, int64_t tmp_ld, absl::Span<const LoraSegment> segs,
                         float* y, int64_t d_out, ThreadPool* pool);

// Plain scalar definition of SegmentedLora (token by token, fp32). Needs no workspace and
// ignores `workspace` and `pool`.
void SegmentedLoraReference(const float* x, int64_t d_in, float* y, int64_t d_out,
                            absl::Span<const LoraSegment> segs, void* workspace, ThreadPool* pool);

}  // namespace lorad::kernels
