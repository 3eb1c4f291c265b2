// Internal to the kernels: per-ISA shrink and expand kernels of SegmentedLora. The scalar and
// AVX2 shrinks reuse the QuantMatMul row kernels (A being an F32/F16 matrix [rank, d_in]); the
// AVX-512 level has its own, register-blocked over A rows and tokens.
#pragma once

#include <cstdint>

#include "engine/base/half.h"
#include "engine/kernels/segmented_lora.h"
#include "engine/kernels/segmented_lora_prefetch.h"

namespace lorad::kernels::internal {

// tmp[t * ld + j] = x[t, :] · A[j, :] for t in the segment's tokens and j in [j_begin, j_end).
// `pf` (may be null) is advanced by the A bytes read, in order.
using LoraShrinkFn = void (*)(const float* x, int64_t d_in, const LoraSegment& s, int32_t j_begin,
                              int32_t j_end, float* tmp, int64_t ld, PrefetchStream* pf);

// y[t * d_out + o] += s.scale · Σ_j tmp[t * ld + j] · B[o, j] for t in the segment's tokens
// and o in [o_begin, o_end). `pf` (may be null) is advanced by the B bytes read, in order.
using LoraExpandFn = void (*)(const float* tmp, int64_t ld, const LoraSegment& s, int64_t o_begin,
                              int64_t o_end, float* y, int64_t d_out, PrefetchStream* pf);

// One instruction-set level's kernels.
struct LoraKernels {
  LoraShrinkFn shrink;
  LoraExpandFn expand;
};

// The kernels for ActiveIsa().
const LoraKernels& ActiveLoraKernels();

// Shrink through ActiveMatMulKernels().matmul_rows (scalar and AVX2 levels).
void LoraShrinkMatMul(const float* x, int64_t d_in, const LoraSegment& s, int32_t j_begin,
                      int32_t j_end, float* tmp, int64_t ld, PrefetchStream* pf);

void LoraExpandScalar(const float* tmp, int64_t ld, const LoraSegment& s, int64_t o_begin,
                      int64_t o_end, float* y, int64_t d_out, PrefetchStream* pf);
// Requires AVX2 + FMA + F16C.
void LoraExpandAvx2(const float* tmp, int64_t ld, const LoraSegment& s, int64_t o_begin,
                    int64_t o_end, float* y, int64_t d_out, PrefetchStream* pf);
// Require AVX-512 F/BW/VL (Isa::kAvx512).
void LoraShrinkAvx512(const float* x, int64_t d_in, const LoraSegment& s, int32_t j_begin,
                      int32_t j_end, float* tmp, int64_t ld, PrefetchStream* pf);
void LoraExpandAvx512(const float* tmp, int64_t ld, const LoraSegment& s, int64_t o_begin,
                      int64_t o_end, float* y, int64_t d_out, PrefetchStream* pf);

// Element `index` of fp32 or fp16 adapter weights, as fp32.
inline float LoraWeightAt(DType dtype, const void* data, int64_t index) {
  return dtype == DType::kF16 ? Fp16ToFp32(static_cast<const uint16_t*>(data)[index])
                              : static_cast<const float*>(data)[index];
}

}  // namespace lorad::kernels::internal
