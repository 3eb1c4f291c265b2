// Matrix multiplication against a (block-quantized) weight matrix: y = x · Wᵀ, the linear
// layer of every projection in the model. Decode (few x rows) streams the weights once and is
// bandwidth-bound; prefill (many x rows) reuses each weight tile across x rows. GGUF integer
// formats use llama.cpp's scheme: x is quantized to 8-bit blocks once, then integer dots.
#pragma once

#include <cstddef>
#include <cstdint>

#include "engine/base/dtype.h"
#include "engine/kernels/thread_pool.h"

namespace lorad::kernels {

// Row-major weight W [rows = out_features, cols = in_features]. Row r is RowBytes(type, cols)
// bytes at data + r * row_bytes; cols is a multiple of BlockElements(type). Not owned.
struct QuantMatrix {
  DType type;
  int64_t rows;
  int64_t cols;
  const void* data;
  size_t row_bytes;
};

// y[m, rows] = x[m, cols] · Wᵀ (y is overwritten, row stride rows). Supported types: F32,
// F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q4_K, Q6_K, NF4. `pool` may be null (caller thread only).
//
// Numerical contract against QuantMatMulReference (fp32 dot of quant::DequantizeRow rows):
//  - F32/F16/BF16/NF4: fp32 arithmetic in a different order, |Δy| <= 1e-5 · Σ_k |w_k x_k|
//    for the shapes of this project (k <= 16384).
//  - Q8_0/Q4_0/Q4_1/Q5_0/Q4_K/Q6_K on SIMD CPUs: x is rounded to int8 per 32 values (scale
//    amax/127, as llama.cpp's Q8_0/Q8_1), so |Δy| <= Σ_k |w_k| · amax32(x)_k / 254 plus fp32
//    rounding; in practice ~1e-3 relative. The scalar path computes in fp32 (no x rounding).
void QuantMatMul(const QuantMatrix& w, const float* x, int64_t m, float* y, ThreadPool* pool);

// Plain scalar definition of QuantMatMul: dequantize each row, fp32 dot product. `pool` is
// ignored.
void QuantMatMulReference(const QuantMatrix& w, const float* x, int64_t m, float* y,
                          ThreadPool* pool);

// Decodes rows [row_begin, row_end) of `w` to fp32: out[row_end - row_begin, cols].
// Bit-exact with quant::DequantizeRow. Thread-safe.
void DequantizeRows(const QuantMatrix& w, int64_t row_begin, int64_t row_end, float* out);

}  // namespace lorad::kernels
