#include "engine/kernels/vec_math.h"

#include <immintrin.h>

#include <bit>
#include <cmath>

#include "engine/base/target_clones.h"

#define LORAD_MULTIVERSION LORAD_TARGET_CLONES("arch=x86-64-v4", "arch=x86-64-v3", "default")

namespace lorad::vec {

LORAD_MULTIVERSION void RmsNorm(const float* x, const float* w, float eps, int64_t n, float* y) {
  // As ggml's rms_norm: fp32 squares summed in order in double, the mean rounded to fp32. A
  // one-ulp change here moves Q8 activation rounding downstream, so the order is kept exact.
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i] * x[i]);
  const float mean = static_cast<float>(ss / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
}

namespace {

// exp(x) as ggml's vectorized expf (ggml_v_expf, adapted from Arm's optimized routines; max
// error 1.45 ulp + 0.5): x = n ln2 + b with n = round(x / ln2), a degree-5 polynomial p(b) for
// exp(b) - 1, scaled by 2^n. Its AVX-512 and AVX2 forms differ in the last step, so each has
// a scalar twin here, one IEEE operation or fused multiply-add per step, giving the same bits
// as the lanes below:
//   512: (1 + p(b)) * 2^n, by scalef; 0 or inf when |n| > 192.
//   256: fma(p(b), 2^n, 2^n) while |n| <= 126; beyond, 2^n split into two factors s1 * s2 so
//        that neither overflows; s1 * s1 (0 or inf) when |n| > 192.
constexpr float kExpShift = 0x1.8p23f, kLog2e = 0x1.715476p+0f, kLn2Hi = 0x1.62e4p-1f,
                kLn2Lo = 0x1.7f7d1cp-20f, kC1 = 0x1.ffffecp-1f, kC2 = 0x1.fffdb6p-2f,
                kC3 = 0x1.555e66p-3f, kC4 = 0x1.573e2ep-5f, kC5 = 0x1.0e4020p-7f;

uint32_t Bits(float f) { return std::bit_cast<uint32_t>(f); }
float FromBits(uint32_t u) { return std::bit_cast<float>(u); }

float ExpLane512(float x) {
  const float n = std::fma(x, kLog2e, kExpShift) - kExpShift;
  const float b = std::fma(-n, kLn2Lo, std::fma(-n, kLn2Hi, x));
  const float u = b * b;
  const float j = std::fma(std::fma(std::fma(kC5, b, kC4), u, std::fma(kC3, b, kC2)), u,
                           std::fma(kC1, b, 1.0f));
  if (std::isnan(n)) return n;
  if (std::fabs(n) > 192.0f) return n <= 0.0f ? 0.0f : INFINITY;
  return std::ldexp(j, static_cast<int>(n));
}

float ExpLane256(float x) {
  const float z = std::fma(x, kLog2e, kExpShift);
  const float n = z - kExpShift;
  const float b = std::fma(-n, kLn2Lo, std::fma(-n, kLn2Hi, x));
  const uint32_t e = Bits(z) << 23;
  const float k = FromBits(e + Bits(1.0f));
  const float u = b * b;
  const float j = std::fma(std::fma(std::fma(kC5, b, kC4), u, std::fma(kC3, b, kC2)), u, kC1 * b);
  if (!(std::fabs(n) > 126.0f)) return std::fma(j, k, k);
  const uint32_t g = n <= 0.0f ? 0x82000000u : 0u;
  const float s1 = FromBits(g + 0x7f000000u);
  const float s2 = FromBits(e - g);
  if (std::fabs(n) > 192.0f) return s1 * s1;
  return std::fma(s2, j, s2) * s1;
}

// ggml's SwiGLU: whole vectors (16 lanes in the AVX-512 build, 8 in the AVX2 build) through its
// vector expf; the n % width tail through libm's expf, as ggml_silu_f32.
float SiluMulLibm(float g, float u) { return g / (1.0f + std::exp(-g)) * u; }

// The vector part, lane by lane.
void SiluMulLanes(GgmlWidth width, float* g, const float* u, int64_t count) {
  for (int64_t i = 0; i < count; ++i) {
    const float e = width == GgmlWidth::k512 ? ExpLane512(0.0f - g[i]) : ExpLane256(0.0f - g[i]);
    g[i] = g[i] / (1.0f + e) * u[i];
  }
}

int64_t VectorEnd(GgmlWidth width, int64_t n) {
  return width == GgmlWidth::k512 ? n & ~15 : n & ~7;
}

void SiluMulScalar(GgmlWidth width, float* g, const float* u, int64_t n) {
  const int64_t vec_end = VectorEnd(width, n);
  SiluMulLanes(width, g, u, vec_end);
  for (int64_t i = vec_end; i < n; ++i) g[i] = SiluMulLibm(g[i], u[i]);
}

#define LORAD_AVX2 __attribute__((target("avx2,fma")))

// Eight lanes of the exp of `width` on the common path; false (nothing written) when a lane
// leaves it (|n| > 126), and the caller then takes the scalar twin for those eight.
LORAD_AVX2 bool ExpAvx2(GgmlWidth width, __m256 x, __m256* out) {
  const __m256 shift = _mm256_set1_ps(kExpShift);
  const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(kLog2e), shift);
  const __m256 n = _mm256_sub_ps(z, shift);
  const __m256 abs_n = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), n);
  if (_mm256_movemask_ps(_mm256_cmp_ps(abs_n, _mm256_set1_ps(126.0f), _CMP_GT_OQ)) != 0) {
    return false;
  }
  const __m256 b =
      _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), x));
  const __m256 u = _mm256_mul_ps(b, b);
  const __m256 p45 = _mm256_fmadd_ps(_mm256_set1_ps(kC5), b, _mm256_set1_ps(kC4));
  const __m256 p23 = _mm256_fmadd_ps(_mm256_set1_ps(kC3), b, _mm256_set1_ps(kC2));
  if (width == GgmlWidth::k512) {
    const __m256 p01 = _mm256_fmadd_ps(_mm256_set1_ps(kC1), b, _mm256_set1_ps(1.0f));
    const __m256 j = _mm256_fmadd_ps(_mm256_fmadd_ps(p45, u, p23), u, p01);
    // 2^n as a float: n + 127 in the exponent field.
    const __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    *out = _mm256_mul_ps(j, _mm256_castsi256_ps(e));
    return true;
  }
  const __m256 p1 = _mm256_mul_ps(_mm256_set1_ps(kC1), b);
  const __m256 j = _mm256_fmadd_ps(_mm256_fmadd_ps(p45, u, p23), u, p1);
  // 2^n from z's low mantissa bits (n in two's complement), moved into the exponent field.
  const __m256 k = _mm256_castsi256_ps(_mm256_add_epi32(
      _mm256_slli_epi32(_mm256_castps_si256(z), 23), _mm256_castps_si256(_mm256_set1_ps(1.0f))));
  *out = _mm256_fmadd_ps(j, k, k);
  return true;
}

LORAD_AVX2 void SiluMulAvx2(GgmlWidth width, float* g, const float* u, int64_t n) {
  const int64_t vec_end = VectorEnd(width, n);
  for (int64_t i = 0; i < vec_end; i += 8) {
    const __m256 x = _mm256_loadu_ps(g + i);
    __m256 e;
    if (!ExpAvx2(width, _mm256_sub_ps(_mm256_setzero_ps(), x), &e)) {
      SiluMulLanes(width, g + i, u + i, 8);
      continue;
    }
    const __m256 silu = _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
    _mm256_storeu_ps(g + i, _mm256_mul_ps(silu, _mm256_loadu_ps(u + i)));
  }
  for (int64_t i = vec_end; i < n; ++i) g[i] = SiluMulLibm(g[i], u[i]);
}

}  // namespace

void SiluMulInOrder(GgmlWidth width, float* g, const float* u, int64_t n) {
  if (kernels::ActiveIsa() == kernels::Isa::kScalar) return SiluMulScalar(width, g, u, n);
  SiluMulAvx2(width, g, u, n);
}

void SiluMul(float* g, const float* u, int64_t n) { SiluMulInOrder(ActiveGgmlWidth(), g, u, n); }

LORAD_MULTIVERSION float Dot(const float* a, const float* b, int64_t n) {
  // Eight partial sums so the compiler can vectorize without -ffast-math.
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int k = 0; k < 16; ++k) acc[k] += a[i + k] * b[i + k];
  }
  float s = 0.0f;
  for (; i < n; ++i) s += a[i] * b[i];
  for (int k = 0; k < 16; ++k) s += acc[k];
  return s;
}

LORAD_MULTIVERSION void Axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

LORAD_MULTIVERSION void Add(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

void Softmax(float* x, int64_t n) {
  float mx = x[0];
  for (int64_t i = 1; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = 1.0f / sum;
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace lorad::vec
