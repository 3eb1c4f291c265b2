// Internal to the kernels: per-ISA expand kernels of SegmentedLora (the shrink reuses the
// QuantMatMul row kernels, A being an F32/F16 matrix [rank, d_in]).
#pragma once

#include <cstdint>

#include "engine/base/half.h"
#include "engine/kernels/segmented_lora.h"

namespace lorad::kernels::internal {

// y[t * d_out + o] += s.scale · Σ_j tmp[t * ld + j] · B[o, j] for t in the segment's tokens
// and o in [o_begin, o_end).
using LoraExpandFn = void (*)(const float* tmp, int64_t ld, const LoraSegment& s, int64_t o_begin,
                              int64_t o_end, float* y, int64_t d_out);

void LoraExpandScalar(const float* tmp, int64_t ld, const LoraSegment& s, int64_t o_begin,
                      int64_t o_end, float* y, int64_t d_out);
// Requires AVX2 + FMA + F16C.
void LoraExpandAvx2(const float* tmp, int64_t ld, const LoraSegment& s, int64_t o_begin,
                    int64_t o_end, float* y, int64_t d_out);

// Element `index` of fp32 or fp16 adapter weights, as fp32.
inline float LoraWeightAt(DType dtype, const void* data, int64_t index) {
  return dtype == DType::kF16 ? Fp16ToFp32(static_cast<const uint16_t*>(data)[index])
                              : static_cast<const float*>(data)[index];
}

}  // namespace lorad::kernels::internal
