// The Llama block's row norm and element-wise kernels on fp16 / bf16 activations: RMSNorm, the
// SwiGLU product, residual add, bias add. fp32 arithmetic, one rounding to the activation dtype
// per written element. Plain C++ header: raw device pointers, an explicit stream, a cudaError_t
// result (cudaErrorInvalidValue for bad arguments, before any CUDA call); no workspace.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "engine/base/dtype.h"

namespace lorad::cuda {

// y[r, i] = x[r, i] * rsqrt(mean_i(x[r, :]^2) + eps) * w[i]; x, y [rows, dim] (may alias),
// w [dim] fp32.
cudaError_t RmsNorm(DType act_dtype, const void* x, const float* w, float eps, int64_t rows,
                    int64_t dim, void* y, cudaStream_t stream);

// g[i] = silu(g[i]) * u[i] for i < n.
cudaError_t SiluMul(DType act_dtype, void* g, const void* u, int64_t n, cudaStream_t stream);

// y[i] += x[i] for i < n.
cudaError_t Add(DType act_dtype, const void* x, void* y, int64_t n, cudaStream_t stream);

// y[r, i] += bias[i] for y [rows, dim], bias [dim] fp32.
cudaError_t AddBias(DType act_dtype, const float* bias, void* y, int64_t rows, int64_t dim,
                    cudaStream_t stream);

}  // namespace lorad::cuda
