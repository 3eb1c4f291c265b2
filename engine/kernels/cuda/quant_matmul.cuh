// Fused dequantize-multiply of activations with block-quantized weights used in place:
// NF4 (lorad BlockNF4) and GGUF Q4_0 / Q4_1 / Q8_0 (engine/quant/blocks.h). Plain C++ header:
// raw device pointers, an explicit stream, a cudaError_t result; needs no workspace.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "engine/base/dtype.h"

namespace lorad::cuda {

// Which kernel QuantMatmul runs. kAuto picks the matrix-vector kernel for m <= 8 (decode) and
// the tiled tensor-core kernel above (prefill); the others force one, for tests and benchmarks.
enum class QuantMatmulAlgo : int32_t { kAuto, kMatvec, kTiled };

// Largest m one matrix-vector launch handles; kMatvec runs larger m in chunks of this size.
inline constexpr int64_t kQuantMatvecMaxM = 8;

// y[i, r] = sum_c x[i, c] * W[r, c] for i < m, r < rows; fp32 accumulation, one rounding to
// `act_dtype` (kF16 or kBF16) at the end. Only y[i, 0..rows) of each output row is written.
// W: `rows` rows of `weight_dtype` (kNF4, kQ4_0, kQ4_1, kQ8_0) blocks, row r at
//    w + r * row_bytes, row_bytes >= RowBytes(weight_dtype, cols); cols a multiple of the block
//    size (64 for NF4, 32 otherwise). The kernels read blocks in place, so w and row_bytes must
//    keep each block at its natural alignment: 2 bytes for Q4_0/Q8_0, 4 for Q4_1/NF4.
// x: [m, ldx], 8-byte aligned, ldx >= cols and a multiple of 4. y: [m, ldy], ldy >= rows.
// Returns cudaErrorInvalidValue for bad arguments (before any CUDA call).
// The tiled kernel rounds dequantized weights to `act_dtype` for the tensor cores.
cudaError_t QuantMatmul(DType act_dtype, DType weight_dtype, const void* w, int64_t row_bytes,
                        int64_t rows, int64_t cols, const void* x, int64_t ldx, int64_t m, void* y,
                        int64_t ldy, cudaStream_t stream,
                        QuantMatmulAlgo algo = QuantMatmulAlgo::kAuto);

}  // namespace lorad::cuda
