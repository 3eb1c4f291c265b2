// The forward pass's vector primitives against plain definitions. RmsNorm and DotF16 promise a
// fixed summation order (llama.cpp's), so they are checked bit for bit; SiluMul's exp is an
// approximation, checked against double precision.
#include "engine/kernels/vec_math.h"

#include <cmath>
#include <random>
#include <vector>

#include "engine/base/half.h"
#include "engine/kernels/vec_math_f16.h"
#include "gtest/gtest.h"
#include "tests/kernels/kernel_test_util.h"

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

std::vector<float> SiluInputs() {
  // Covers the polynomial range, values whose exp needs 2^n outside the normal range (|x| > 87)
  // and a length that is not a multiple of either SIMD width.
  std::vector<float> g = RandomVector(1003, 4.0f, 3);
  const float extremes[] = {0.0f,   -0.0f,  1e-30f,  -1e-30f, 87.0f,   -87.0f, 88.5f,
                            -88.5f, 100.0f, -100.0f, 150.0f,  -150.0f, 500.0f, -500.0f};
  for (size_t i = 0; i < std::size(extremes); ++i) g[100 + i] = extremes[i];
  return g;
}

constexpr vec::GgmlWidth kWidths[] = {vec::GgmlWidth::k256, vec::GgmlWidth::k512};

const char* WidthName(vec::GgmlWidth w) { return w == vec::GgmlWidth::k512 ? "512" : "256"; }

TEST(VecMathTest, SiluMulMatchesDoublePrecision) {
  const std::vector<float> g = SiluInputs();
  const std::vector<float> u = RandomVector(g.size(), 1.0f, 4);
  for (vec::GgmlWidth width : kWidths) {
    std::vector<float> y = g;
    vec::SiluMulInOrder(width, y.data(), u.data(), static_cast<int64_t>(y.size()));
    for (size_t i = 0; i < g.size(); ++i) {
      const double want = g[i] / (1.0 + std::exp(-static_cast<double>(g[i]))) * u[i];
      ASSERT_NEAR(y[i], want, 4e-7 * std::fabs(want) + 1e-37)
          << "x=" << g[i] << " width " << WidthName(width);
    }
  }
}

// Every kernel level computes each width's SwiGLU to the same bits as the scalar twin, whose
// lanes spell ggml's two expf forms out step by step.
TEST(VecMathTest, SiluMulGivesTheSameBitsAtEveryKernelLevel) {
  const std::vector<float> g = SiluInputs();
  const std::vector<float> u = RandomVector(g.size(), 1.0f, 4);
  for (vec::GgmlWidth width : kWidths) {
    std::vector<float> want = g;
    {
      kernels::testing::ScopedIsa scoped(kernels::Isa::kScalar);
      vec::SiluMulInOrder(width, want.data(), u.data(), static_cast<int64_t>(want.size()));
    }
    for (kernels::Isa isa : kernels::testing::SupportedIsas()) {
      kernels::testing::ScopedIsa scoped(isa);
      for (int64_t n : {int64_t{7}, int64_t{8}, int64_t{24}, static_cast<int64_t>(g.size())}) {
        std::vector<float> y(g.begin(), g.begin() + n);
        vec::SiluMulInOrder(width, y.data(), u.data(), n);
        // A prefix computes like the whole except in its own tail (libm's expf).
        const int64_t vec_end = width == vec::GgmlWidth::k512 ? n & ~15 : n & ~7;
        for (int64_t i = 0; i < vec_end; ++i) {
          ASSERT_EQ(y[i], want[i]) << kernels::IsaName(isa) << " width " << WidthName(width)
                                   << " n=" << n << " x=" << g[i];
        }
        for (int64_t i = vec_end; i < n; ++i) {
          ASSERT_EQ(y[i], g[i] / (1.0f + std::exp(-g[i])) * u[i]) << "tail i=" << i;
        }
      }
    }
  }
}

// The two widths' expf differ in their last rounding for some inputs; SiluMul takes the
// active level's.
TEST(VecMathTest, SiluMulFollowsTheActiveWidth) {
  const std::vector<float> g = RandomVector(4096, 4.0f, 9);
  const std::vector<float> u(g.size(), 1.0f);
  std::vector<float> w256 = g, w512 = g;
  vec::SiluMulInOrder(vec::GgmlWidth::k256, w256.data(), u.data(), 4096);
  vec::SiluMulInOrder(vec::GgmlWidth::k512, w512.data(), u.data(), 4096);
  EXPECT_NE(w256, w512) << "the widths' expf never differed; the test proves nothing";
  for (kernels::Isa isa : kernels::testing::SupportedIsas()) {
    kernels::testing::ScopedIsa scoped(isa);
    std::vector<float> y = g;
    vec::SiluMul(y.data(), u.data(), 4096);
    EXPECT_EQ(y, isa == kernels::Isa::kAvx512 ? w512 : w256) << kernels::IsaName(isa);
  }
}

// DotF16's documented orders, spelled out independently of the engine's: `lanes`-wide
// accumulators (16 for ggml's AVX-512 build, 8 for its AVX2 build), four per chunk, combined
// pairwise, then the tail in double.
float OrderedDot(vec::GgmlWidth width, const std::vector<float>& a,
                 const std::vector<uint16_t>& b) {
  const int64_t n = static_cast<int64_t>(a.size());
  const int lanes = width == vec::GgmlWidth::k512 ? 16 : 8;
  const int64_t chunks_end = n / (4 * lanes) * (4 * lanes);
  float acc[4][16] = {};
  for (int64_t i = 0; i < chunks_end; i += 4 * lanes) {
    for (int j = 0; j < 4; ++j) {
      for (int l = 0; l < lanes; ++l) {
        acc[j][l] += a[i + lanes * j + l] * Fp16ToFp32(b[i + lanes * j + l]);
      }
    }
  }
  float v[16];
  for (int l = 0; l < lanes; ++l) v[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
  double r;
  if (lanes == 16) {
    for (int l = 0; l < 8; ++l) v[l] += v[l + 8];
    for (int l = 0; l < 4; ++l) v[l] += v[l + 4];
    r = (v[0] + v[2]) + (v[1] + v[3]);  // AVX-512: movehl, then movehdup
  } else {
    for (int l = 0; l < 4; ++l) v[l] += v[l + 4];
    r = (v[0] + v[1]) + (v[2] + v[3]);  // AVX2: two horizontal adds
  }
  for (int64_t i = chunks_end; i < n; ++i) r += a[i] * Fp16ToFp32(b[i]);
  return static_cast<float>(r);
}

TEST(VecMathTest, DotF16SumsInLlamaCppOrderAtEveryKernelLevel) {
  int differ = 0;
  for (int64_t n : {5, 32, 64, 96, 128, 200}) {
    std::vector<float> a = RandomVector(n, 2.0f, 5);
    vec::RoundToFp16(a.data(), n);  // attention rounds queries to fp16 first
    const std::vector<float> bf = RandomVector(n, 2.0f, 6);
    std::vector<uint16_t> b(n);
    vec::ToFp16(bf.data(), b.data(), n);
    differ += OrderedDot(vec::GgmlWidth::k256, a, b) != OrderedDot(vec::GgmlWidth::k512, a, b);
    for (kernels::Isa isa : kernels::testing::SupportedIsas()) {
      kernels::testing::ScopedIsa scoped(isa);
      for (vec::GgmlWidth width : kWidths) {
        EXPECT_EQ(vec::DotF16InOrder(width, a.data(), b.data(), n), OrderedDot(width, a, b))
            << "n=" << n << " " << kernels::IsaName(isa) << " width " << WidthName(width);
      }
      EXPECT_EQ(vec::DotF16(a.data(), b.data(), n), OrderedDot(vec::GgmlWidthFor(isa), a, b))
          << "n=" << n << " " << kernels::IsaName(isa);
    }
  }
  EXPECT_GT(differ, 0) << "the two orders never differed; the test proves nothing";
}

}  // namespace
}  // namespace lorad
