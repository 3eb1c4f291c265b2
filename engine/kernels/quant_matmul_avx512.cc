// QuantMatMul kernels for AVX-512 VL + AVX512-VNNI: EVEX vpdpbusd dots and a one-instruction NF4
// code-book lookup. The bodies live in quant_matmul_x86.inc; this file picks the dot instruction.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "engine/base/half.h"
#include "engine/kernels/q8_activation.h"
#include "engine/quant/blocks.h"

#if defined(__clang__)  // clang ignores GCC's target pragma
#pragma clang attribute push(                                                      \
    __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), \
    apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
#endif
// GCC 12's AVX-512 headers trip these on their own _mm512_undefined_* placeholders.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)  // a GCC-only warning
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace lorad::kernels::internal {
namespace avx512 {
namespace {

static inline __m256i DotU8S8(__m256i u, __m256i s) {
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
}

static inline __m256 Nf4Lookup(__m256i code) {
  const __m256 lo = _mm256_loadu_ps(::lorad::quant::kNF4Codebook);
  const __m256 hi = _mm256_loadu_ps(::lorad::quant::kNF4Codebook + 8);
  return _mm256_permutex2var_ps(lo, code, hi);
}

#define LORAD_QMM_WIDE_INT_TILES 1
#include "engine/kernels/quant_matmul_x86.inc"
#undef LORAD_QMM_WIDE_INT_TILES

}  // namespace
}  // namespace avx512

#pragma GCC diagnostic pop
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

const MatMulKernels& Avx512MatMulKernels() {
  static const MatMulKernels kernels = {avx512::QuantizeRowQ8, avx512::MatMulRows,
                                        avx512::DequantizeRowSimd};
  return kernels;
}

}  // namespace lorad::kernels::internal
