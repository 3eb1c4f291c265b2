// QuantMatMul kernels for AVX2 + AVX-VNNI (VEX): integer dots with a single vpdpbusd per 32 values.
// The bodies live in quant_matmul_x86.inc; this file picks the dot instruction.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "engine/base/half.h"
#include "engine/kernels/q8_activation.h"
#include "engine/quant/blocks.h"

#if defined(__clang__)  // clang ignores GCC's target pragma
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avxvnni"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avxvnni")
#endif

namespace lorad::kernels::internal {
namespace avxvnni {
namespace {

static inline __m256i DotU8S8(__m256i u, __m256i s) {
  return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, s);
}

static inline __m256 Nf4Lookup(__m256i code) {
  const __m256 lo = _mm256_permutevar8x32_ps(_mm256_loadu_ps(::lorad::quant::kNF4Codebook), code);
  const __m256 hi =
      _mm256_permutevar8x32_ps(_mm256_loadu_ps(::lorad::quant::kNF4Codebook + 8), code);
  return _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(code, 28)));
}

#include "engine/kernels/quant_matmul_x86.inc"

}  // namespace
}  // namespace avxvnni

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

const MatMulKernels& AvxVnniMatMulKernels() {
  static const MatMulKernels kernels = {avxvnni::QuantizeRowQ8, avxvnni::MatMulRows,
                                        avxvnni::DequantizeRowSimd};
  return kernels;
}

}  // namespace lorad::kernels::internal
