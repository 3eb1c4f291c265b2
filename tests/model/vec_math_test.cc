// The forward pass's vector primitives against plain definitions. RmsNorm and DotF16 promise a
// fixed summation order (llama.cpp's), so they are checked bit for bit; SiluMul's exp is an
// approximation, checked against double precision.
#include "engine/model/vec_math.h"

#include <cmath>
#include <random>
#include <vector>

#include "engine/base/half.h"
#include "engine/model/vec_math_f16.h"
#include "gtest/gtest.h"

namespace lorad {
namespace {

std::vector<float> RandomVector(int64_t n, float scale, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

TEST(VecMathTest, RmsNormSumsSquaresInDouble) {
  for (int64_t n : {1, 7, 576, 4096}) {
    const std::vector<float> x = RandomVector(n, 3.0f, 1);
    const std::vector<float> w = RandomVector(n, 1.0f, 2);
    double ss = 0.0;
    for (float v : x) ss += static_cast<double>(v * v);
    const float scale = 1.0f / std::sqrt(static_cast<float>(ss / n) + 1e-5f);
    std::vector<float> y(n);
    vec::RmsNorm(x.data(), w.data(), 1e-5f, n, y.data());
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(y[i], x[i] * scale * w[i]) << "n=" << n;
  }
}

TEST(VecMathTest, SiluMulMatchesDoublePrecision) {
  // Covers the polynomial range, values whose exp needs 2^n outside the normal range (|x| > 87)
  // and a length that is not a multiple of the SIMD width.
  std::vector<float> g = RandomVector(1003, 4.0f, 3);
  const float extremes[] = {0.0f,   -0.0f,  1e-30f,  -1e-30f, 87.0f,   -87.0f, 88.5f,
                            -88.5f, 100.0f, -100.0f, 150.0f,  -150.0f, 500.0f, -500.0f};
  for (size_t i = 0; i < std::size(extremes); ++i) g[100 + i] = extremes[i];
  const std::vector<float> u = RandomVector(g.size(), 1.0f, 4);
  std::vector<float> y = g;
  vec::SiluMul(y.data(), u.data(), static_cast<int64_t>(y.size()));
  for (size_t i = 0; i < g.size(); ++i) {
    const double want = g[i] / (1.0 + std::exp(-static_cast<double>(g[i]))) * u[i];
    ASSERT_NEAR(y[i], want, 4e-7 * std::fabs(want) + 1e-37) << "x=" << g[i];
  }
}

// DotF16's documented order: 16-lane accumulators over 64-element chunks, combined pairwise,
// then the tail in double.
float OrderedDot(const std::vector<float>& a, const std::vector<uint16_t>& b) {
  const int64_t n = static_cast<int64_t>(a.size());
  const int64_t chunks_end = n / 64 * 64;
  float acc[4][16] = {};
  for (int64_t i = 0; i < chunks_end; i += 64) {
    for (int j = 0; j < 4; ++j) {
      for (int l = 0; l < 16; ++l) {
        acc[j][l] += a[i + 16 * j + l] * Fp16ToFp32(b[i + 16 * j + l]);
      }
    }
  }
  float v[16];
  for (int l = 0; l < 16; ++l) v[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
  for (int l = 0; l < 8; ++l) v[l] += v[l + 8];
  for (int l = 0; l < 4; ++l) v[l] += v[l + 4];
  double r = (v[0] + v[2]) + (v[1] + v[3]);
  for (int64_t i = chunks_end; i < n; ++i) r += a[i] * Fp16ToFp32(b[i]);
  return static_cast<float>(r);
}

TEST(VecMathTest, DotF16SumsInLlamaCppOrder) {
  for (int64_t n : {5, 64, 128, 200}) {
    std::vector<float> a = RandomVector(n, 2.0f, 5);
    vec::RoundToFp16(a.data(), n);  // attention rounds queries to fp16 first
    const std::vector<float> bf = RandomVector(n, 2.0f, 6);
    std::vector<uint16_t> b(n);
    vec::ToFp16(bf.data(), b.data(), n);
    EXPECT_EQ(vec::DotF16(a.data(), b.data(), n), OrderedDot(a, b)) << "n=" << n;
  }
}

}  // namespace
}  // namespace lorad
