// Per-device implementations behind the op layer's checks (internal to engine/ops). The CUDA
// ones live in ops_cuda.cc when LORAD_WITH_CUDA=ON, in ops_cuda_stub.cc otherwise.
#pragma once

#include "engine/ops/lora_op.h"
#include "engine/ops/norm_op.h"
#include "engine/ops/pointwise_op.h"
#include "engine/ops/quant_matmul_op.h"
#include "engine/ops/rope_op.h"

namespace lorad::ops::internal {

absl::Status ApplyLoraCpu(const OpContext& ctx, const float* x, int64_t d_in, float* y,
                          int64_t d_out, int64_t num_tokens,
                          absl::Span<const kernels::LoraSegment> segs);
absl::Status ApplyLoraCuda(const OpContext& ctx, DType act_dtype, const void* x, int64_t d_in,
                           void* y, int64_t d_out, int64_t num_tokens,
                           absl::Span<const kernels::LoraSegment> segs);
size_t ApplyLoraCudaWorkspaceBytes(int64_t num_tokens, absl::Span<const kernels::LoraSegment> segs);

absl::Status QuantMatMulCuda(const OpContext& ctx, DType weight_dtype, const void* w,
                             int64_t row_bytes, int64_t rows, int64_t cols, DType act_dtype,
                             const void* x, int64_t m, void* y);

// CUDA halves of norm_op.h and pointwise_op.h; arguments already checked (op_checks.h).
absl::Status RmsNormCuda(const OpContext& ctx, DType act_dtype, const void* x, const float* weight,
                         float eps, int64_t rows, int64_t dim, void* y);
absl::Status SiluMulCuda(const OpContext& ctx, DType act_dtype, void* gate, const void* up,
                         int64_t n);
absl::Status AddCuda(const OpContext& ctx, DType act_dtype, const void* x, void* y, int64_t n);
absl::Status AddBiasCuda(const OpContext& ctx, DType act_dtype, const float* bias, void* y,
                         int64_t rows, int64_t dim);

absl::Status ApplyRopeCuda(const OpContext& ctx, const RopeTable& table, DType act_dtype, void* x,
                           int64_t rows, int32_t num_heads, const int32_t* positions);

// OK when CUDA kernels can run here; FAILED_PRECONDITION with the reason otherwise.
absl::Status CudaUsable();

}  // namespace lorad::ops::internal
