#include "engine/kernels/vec_math_f16.h"

#include <immintrin.h>

#include <cmath>

#include "engine/base/half.h"
#include "engine/kernels/cpu_isa.h"

namespace lorad::vec {
namespace {

// The F16C paths run unless the active kernel level is scalar (every other level includes AVX2,
// FMA and F16C; cpu_isa.h).
bool UseF16c() { return kernels::ActiveIsa() != kernels::Isa::kScalar; }

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

// DotF16's two orders are those of ggml_vec_dot_f16 in an AVX-512 and an AVX2 build. With `a`
// fp16-representable (attention rounds queries to fp16) every product is exact in fp32, so FMA
// and multiply-then-add agree; the scalar forms below use FMA anyway, as ggml does.
//
// 512 (AVX-512 build): per 64-element chunk, four 16-lane fp32 accumulators (lane l of
// accumulator j takes element 16j + l); after the chunks, (acc0 + acc2) + (acc1 + acc3), then
// the 16 lanes halved pairwise (8, 4), then (l0 + l2) + (l1 + l3); the n % 64 tail is added in
// double.
//
// 256 (AVX2 build): per 32-element chunk, four 8-lane accumulators (lane l of accumulator j
// takes element 8j + l); after the chunks, (acc0 + acc2) + (acc1 + acc3), then lanes l + (l + 4)
// for l < 4, then (l0 + l1) + (l2 + l3); the n % 32 tail is added in double.
LORAD_F16C __m256 LoadF16(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// The n % chunk tail of both orders, added in double (scalar code, shared by all paths).
double TailInDouble(double r, const float* a, const uint16_t* b, int64_t from, int64_t n) {
  for (int64_t i = from; i < n; ++i) r += a[i] * Fp16ToFp32(b[i]);
  return r;
}

LORAD_F16C float DotF16Avx2Order512(const float* a, const uint16_t* b, int64_t n) {
  __m256 acc[8];  // accumulator j: lanes 0-7 in acc[2j], lanes 8-15 in acc[2j + 1]
  for (__m256& v : acc) v = _mm256_setzero_ps();
  const int64_t chunks_end = n & ~int64_t{63};
  for (int64_t i = 0; i < chunks_end; i += 64) {
    for (int k = 0; k < 8; ++k) {
      acc[k] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8 * k), LoadF16(b + i + 8 * k), acc[k]);
    }
  }
  const __m256 lo = _mm256_add_ps(_mm256_add_ps(acc[0], acc[4]), _mm256_add_ps(acc[2], acc[6]));
  const __m256 hi = _mm256_add_ps(_mm256_add_ps(acc[1], acc[5]), _mm256_add_ps(acc[3], acc[7]));
  const __m256 v8 = _mm256_add_ps(hi, lo);
  const __m128 v4 = _mm_add_ps(_mm256_extractf128_ps(v8, 1), _mm256_castps256_ps128(v8));
  const __m128 v2 = _mm_add_ps(v4, _mm_movehl_ps(v4, v4));  // (l0 + l2, l1 + l3)
  const double r = _mm_cvtss_f32(_mm_add_ss(v2, _mm_movehdup_ps(v2)));
  return static_cast<float>(TailInDouble(r, a, b, chunks_end, n));
}

LORAD_F16C float DotF16Avx2Order256(const float* a, const uint16_t* b, int64_t n) {
  __m256 acc[4];
  for (__m256& v : acc) v = _mm256_setzero_ps();
  const int64_t chunks_end = n & ~int64_t{31};
  for (int64_t i = 0; i < chunks_end; i += 32) {
    for (int k = 0; k < 4; ++k) {
      acc[k] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8 * k), LoadF16(b + i + 8 * k), acc[k]);
    }
  }
  const __m256 v8 = _mm256_add_ps(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[1], acc[3]));
  const __m128 v4 = _mm_add_ps(_mm256_castps256_ps128(v8), _mm256_extractf128_ps(v8, 1));
  const __m128 v2 = _mm_hadd_ps(v4, v4);  // (l0 + l1, l2 + l3, ...)
  const double r = _mm_cvtss_f32(_mm_hadd_ps(v2, v2));
  return static_cast<float>(TailInDouble(r, a, b, chunks_end, n));
}

// The same orders, spelled out per lane.
float DotF16Scalar(GgmlWidth width, const float* a, const uint16_t* b, int64_t n) {
  const int lanes = width == GgmlWidth::k512 ? 16 : 8;
  const int64_t chunk = 4 * lanes;
  float acc[4][16] = {};
  const int64_t chunks_end = n / chunk * chunk;
  for (int64_t i = 0; i < chunks_end; i += chunk) {
    for (int j = 0; j < 4; ++j) {
      for (int l = 0; l < lanes; ++l) {
        const int64_t e = i + j * lanes + l;
        acc[j][l] = std::fma(a[e], Fp16ToFp32(b[e]), acc[j][l]);
      }
    }
  }
  float v[16];
  for (int l = 0; l < lanes; ++l) v[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
  double r;
  if (width == GgmlWidth::k512) {
    for (int l = 0; l < 8; ++l) v[l] = v[l + 8] + v[l];
    for (int l = 0; l < 4; ++l) v[l] = v[l + 4] + v[l];
    r = (v[0] + v[2]) + (v[1] + v[3]);
  } else {
    for (int l = 0; l < 4; ++l) v[l] = v[l] + v[l + 4];
    r = (v[0] + v[1]) + (v[2] + v[3]);
  }
  return static_cast<float>(TailInDouble(r, a, b, chunks_end, n));
}

LORAD_F16C void AxpyF16Avx2(float a, const uint16_t* x, float* y, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 vx = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, vx, _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] = std::fma(a, Fp16ToFp32(x[i]), y[i]);
}

}  // namespace

void ToFp16(const float* x, uint16_t* y, int64_t n) {
  if (UseF16c()) return ToFp16Avx2(x, y, n);
  for (int64_t i = 0; i < n; ++i) y[i] = Fp32ToFp16(x[i]);
}

void RoundToFp16(float* x, int64_t n) {
  if (UseF16c()) return RoundToFp16Avx2(x, n);
  for (int64_t i = 0; i < n; ++i) x[i] = Fp16ToFp32(Fp32ToFp16(x[i]));
}

float DotF16InOrder(GgmlWidth width, const float* a, const uint16_t* b, int64_t n) {
  if (!UseF16c()) return DotF16Scalar(width, a, b, n);
  return width == GgmlWidth::k512 ? DotF16Avx2Order512(a, b, n) : DotF16Avx2Order256(a, b, n);
}

float DotF16(const float* a, const uint16_t* b, int64_t n) {
  return DotF16InOrder(ActiveGgmlWidth(), a, b, n);
}

void AxpyF16(float a, const uint16_t* x, float* y, int64_t n) {
  if (UseF16c()) return AxpyF16Avx2(a, x, y, n);
  for (int64_t i = 0; i < n; ++i) y[i] = std::fma(a, Fp16ToFp32(x[i]), y[i]);
}

}  // namespace lorad::vec
