// Internal to the kernels: activations quantized to 8-bit blocks for the integer dot paths
// (llama.cpp's Q8_1 with an fp32 scale), and the per-ISA kernel table QuantMatMul dispatches to.
#pragma once

#include <cstddef>
#include <cstdint>

#include "engine/kernels/quant_matmul.h"

namespace lorad::kernels::internal {

inline constexpr int kQ8ABlock = 32;

// 32 activations: x[j] ≈ d * qs[j]; s = d * Σ qs (the block sum for min/offset terms).
struct BlockQ8A {
  float d;
  float s;
  int8_t qs[kQ8ABlock];
};

// Weight formats that take the integer path (x quantized to BlockQ8A).
inline bool UsesQ8Activations(DType t) {
  return t == DType::kQ8_0 || t == DType::kQ4_0 || t == DType::kQ4_1 || t == DType::kQ5_0 ||
         t == DType::kQ4_K || t == DType::kQ6_K;
}

// One instruction-set level's kernels.
struct MatMulKernels {
  // xq[cols / 32] = Q8(x[cols]); cols is a multiple of 32.
  void (*quantize_row_q8)(const float* x, int64_t cols, BlockQ8A* xq);
  // y[i * ldy + r] = x[i, :] · W[r, :] for i in [0, m), r in [row_begin, row_end). `xq` is
  // [m, cols / 32] when UsesQ8Activations(w.type) (and this is not the scalar table), else
  // unused.
  void (*matmul_rows)(const QuantMatrix& w, int64_t row_begin, int64_t row_end, const float* x,
                      const BlockQ8A* xq, int64_t m, float* y, int64_t ldy);
  // out[cols] = row decoded to fp32.
  void (*dequantize_row)(DType type, const void* row, int64_t cols, float* out);
};

// A per-thread fp32 scratch buffer of at least `floats` values, valid until the next call on
// the same thread.
float* TileScratch(size_t floats);

const MatMulKernels& ScalarMatMulKernels();
// The table for ActiveIsa().
const MatMulKernels& ActiveMatMulKernels();
const MatMulKernels& Avx2MatMulKernels();
const MatMulKernels& AvxVnniMatMulKernels();
const MatMulKernels& Avx512MatMulKernels();

}  // namespace lorad::kernels::internal
