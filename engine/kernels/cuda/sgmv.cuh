// Segmented (SGMV) and per-token gathered (BGMV) LoRA kernels: one launch applies many adapters
// of mixed ranks to one batch. Plain C++ header: raw device pointers, an explicit stream and a
// cudaError_t result; no Torch, Abseil or CUDA device types, so .cc files can include it.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "engine/base/dtype.h"

namespace lorad::cuda {

// Largest rank the kernels accept (the expand kernel stages [8, rank] fp32 in shared memory).
inline constexpr int32_t kLoraMaxRank = 256;

// Which adapter weights apply to which tokens. All arrays live in device memory. Exactly one of
// `seg_start` (SGMV) and `token_entry` (BGMV) is set. Entry i has weights A_i [ranks[i], d_in]
// and B_i [d_out, ranks[i]], both row-major in the activation dtype (PEFT lora_A / lora_B
// layout), and scale `scales[i]` (lora_alpha / r, applied by the expand step).
struct LoraBatch {
  // SGMV: tokens [seg_start[s], seg_start[s+1]) use entry s; [num_entries + 1] int64,
  // non-decreasing, within [0, num_tokens]. Empty segments are allowed; tokens outside every
  // segment are left untouched.
  const int64_t* seg_start = nullptr;
  // BGMV: token t uses entry token_entry[t]; [num_tokens] int32, -1 (or any value outside
  // [0, num_entries)) means "no adapter" and leaves the token untouched.
  const int32_t* token_entry = nullptr;
  int32_t num_entries = 0;
  const void* const* a = nullptr;  // [num_entries] device pointers to A_i
  const void* const* b = nullptr;  // [num_entries] device pointers to B_i (unused by shrink)
  const int32_t* ranks = nullptr;  // [num_entries], 0..max_rank; 0 or a null weight = no-op
  const float* scales = nullptr;   // [num_entries] (unused by shrink)
  // Host-side upper bound of ranks[], 1..kLoraMaxRank. An entry whose rank exceeds it is a
  // caller bug: it is skipped and its outputs stay unwritten.
  int32_t max_rank = 0;
};

// Bytes of the workspace Sgmv() needs: the fp32 intermediate [num_tokens, max_rank].
size_t SgmvWorkspaceBytes(int64_t num_tokens, int32_t max_rank);

// Shrink: v[t, j] = sum_k x[t, k] * A_e[j, k] for every covered token t (entry e) and j < rank_e.
// x: [num_tokens, d_in] with row stride ldx >= d_in, `dtype` kF16 or kBF16.
// v: fp32 [num_tokens, ldv], ldv >= max_rank; columns j >= rank_e and uncovered rows are not
// written. Accumulates in fp32. Returns cudaErrorInvalidValue for bad arguments (before any
// CUDA call), otherwise the launch status.
// Fast path: x, A_e 16-byte aligned and d_in, ldx multiples of 8 (else a scalar path runs).
cudaError_t SgmvShrink(DType dtype, const LoraBatch& batch, const void* x, int64_t ldx,
                       int64_t num_tokens, int64_t d_in, float* v, int64_t ldv,
                       cudaStream_t stream);

// Expand: y[t, o] += scales[e] * sum_{j < rank_e} v[t, j] * B_e[o, j], computed in fp32 and
// rounded once to `dtype`. y: [num_tokens, d_out] with row stride ldy >= d_out.
cudaError_t SgmvExpand(DType dtype, const LoraBatch& batch, const float* v, int64_t ldv,
                       int64_t num_tokens, int64_t d_out, void* y, int64_t ldy,
                       cudaStream_t stream);

// Shrink then expand on `stream`: y += scale_e * (x A_e^T) B_e^T. `workspace` is device memory
// of at least SgmvWorkspaceBytes(num_tokens, batch.max_rank) bytes, 16-byte aligned.
cudaError_t Sgmv(DType dtype, const LoraBatch& batch, const void* x, int64_t ldx, int64_t d_in,
                 void* y, int64_t ldy, int64_t d_out, int64_t num_tokens, void* workspace,
                 size_t workspace_bytes, cudaStream_t stream);

}  // namespace lorad::cuda
