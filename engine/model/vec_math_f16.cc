#include "engine/model/vec_math_f16.h"

#include <immintrin.h>

#include "engine/base/half.h"

namespace lorad::vec {
namespace {

const bool kHasF16c = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx2") &&
                      __builtin_cpu_supports("fma");

#define LORAD_F16C __attribute__((target("avx2,fma,f16c")))

LORAD_F16C void ToFp16Avx2(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), h);
  }
  for (; i < n; ++i) y[i] = Fp32ToFp16(x[i]);
}

LORAD_F16C void RoundToFp16Avx2(float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
    _mm256_storeu_ps(x + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; ++i) x[i] = Fp16ToFp32(Fp32ToFp16(x[i]));
}

LORAD_F16C float DotF16Avx2(const float* a, const uint16_t* b, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 b0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i)));
    const __m256 b1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i + 8)));
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), b0, acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), b1, acc1);
  }
  __m256 acc = _mm256_add_ps(acc0, acc1);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  s = _mm_hadd_ps(s, s);
  s = _mm_hadd_ps(s, s);
  float r = _mm_cvtss_f32(s);
  for (; i < n; ++i) r += a[i] * Fp16ToFp32(b[i]);
  return r;
}

LORAD_F16C void AxpyF16Avx2(float a, const uint16_t* x, float* y, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 vx = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, vx, _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += a * Fp16ToFp32(x[i]);
}

}  // namespace

void ToFp16(const float* x, uint16_t* y, int64_t n) {
  if (kHasF16c) return ToFp16Avx2(x, y, n);
  for (int64_t i = 0; i < n; ++i) y[i] = Fp32ToFp16(x[i]);
}

void RoundToFp16(float* x, int64_t n) {
  if (kHasF16c) return RoundToFp16Avx2(x, n);
  for (int64_t i = 0; i < n; ++i) x[i] = Fp16ToFp32(Fp32ToFp16(x[i]));
}

float DotF16(const float* a, const uint16_t* b, int64_t n) {
  if (kHasF16c) return DotF16Avx2(a, b, n);
  float r = 0.0f;
  for (int64_t i = 0; i < n; ++i) r += a[i] * Fp16ToFp32(b[i]);
  return r;
}

void AxpyF16(float a, const uint16_t* x, float* y, int64_t n) {
  if (kHasF16c) return AxpyF16Avx2(a, x, y, n);
  for (int64_t i = 0; i < n; ++i) y[i] += a * Fp16ToFp32(x[i]);
}

}  // namespace lorad::vec
