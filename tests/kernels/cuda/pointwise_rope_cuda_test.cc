// The CUDA RMSNorm, element-wise and RoPE kernels against double-precision references on the
// same activation-rounded inputs, in fp16 and bf16, at several shapes. Skips without a device;
// the argument checks run anywhere (they answer before any CUDA call).
#include <cmath>
#include <random>
#include <vector>

#include "engine/kernels/cuda/pointwise.cuh"
#include "engine/kernels/cuda/rope.cuh"
#include "tests/kernels/cuda/cuda_test_util.h"

namespace lorad::cuda {
namespace {

using testing::DeviceBuffer;
using testing::Download;
using testing::FromAct;
using testing::OutputEps;
using testing::ToAct;
using testing::Upload;

std::vector<float> Rounded(DType t, size_t n, std::mt19937& rng) {
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = FromAct(t, ToAct(t, d(rng)));
  return v;
}

std::vector<uint16_t> Store(DType t, const std::vector<float>& v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = ToAct(t, v[i]);
  return out;
}

void ExpectClose(DType t, const DeviceBuffer& dev, const std::vector<double>& want,
                 const char* what) {
  std::vector<uint16_t> got(want.size());
  ASSERT_EQ(Download(&got, dev.get()), cudaSuccess);
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(FromAct(t, got[i]), want[i], 2 * OutputEps(t) * (1.0 + std::abs(want[i])))
        << what << " " << DTypeName(t) << " at " << i;
  }
}

TEST(PointwiseCudaTest, ArgumentChecksAnswerBeforeAnyLaunch) {
  float f = 0;
  EXPECT_EQ(RmsNorm(DType::kF32, &f, &f, 1e-5f, 1, 1, &f, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(RmsNorm(DType::kF16, &f, &f, 1e-5f, 1, 0, &f, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(SiluMul(DType::kF16, nullptr, &f, 1, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(Add(DType::kBF16, &f, &f, -1, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(AddBias(DType::kF16, &f, &f, 1, 0, nullptr), cudaErrorInvalidValue);
  RopeParams p;
  p.head_dim = kRopeMaxHeadDim + 2;
  EXPECT_EQ(Rope(DType::kF16, p, &f, 1, 1, nullptr, nullptr), cudaErrorInvalidValue);
  p.head_dim = 7;
  int32_t pos = 0;
  EXPECT_EQ(Rope(DType::kF16, p, &f, 1, 1, &pos, nullptr), cudaErrorInvalidValue);
}

TEST(PointwiseCudaTest, NormAndElementWiseMatchDoubleReferences) {
  LORAD_SKIP_WITHOUT_CUDA();
  std::mt19937 rng(21);
  for (DType t : {DType::kF16, DType::kBF16}) {
    for (auto [rows, dim] : {std::pair{1, 64}, std::pair{13, 576}, std::pair{4, 2049}}) {
      const int64_t n = int64_t{rows} * dim;
      const std::vector<float> x = Rounded(t, n, rng), u = Rounded(t, n, rng);
      std::vector<float> w(dim);
      for (int i = 0; i < dim; ++i) w[i] = x[i % n] * 0.5f + 1.0f;
      DeviceBuffer dx(n * 2), du(n * 2), dw(dim * 4), dy(n * 2);
      ASSERT_EQ(Upload(dx.get(), Store(t, x)), cudaSuccess);
      ASSERT_EQ(Upload(du.get(), Store(t, u)), cudaSuccess);
      ASSERT_EQ(Upload(dw.get(), w), cudaSuccess);

      std::vector<double> want(n);
      for (int r = 0; r < rows; ++r) {
        double ss = 0;
        for (int i = 0; i < dim; ++i) ss += double{x[r * dim + i]} * x[r * dim + i];
        const double inv = 1.0 / std::sqrt(ss / dim + 1e-5);
        for (int i = 0; i < dim; ++i) want[r * dim + i] = x[r * dim + i] * inv * w[i];
      }
      ASSERT_EQ(RmsNorm(t, dx.get(), dw.get<float>(), 1e-5f, rows, dim, dy.get(), nullptr),
                cudaSuccess);
      ExpectClose(t, dy, want, "RmsNorm");

      for (int64_t i = 0; i < n; ++i) want[i] = x[i] / (1.0 + std::exp(-double{x[i]})) * u[i];
      ASSERT_EQ(Upload(dy.get(), Store(t, x)), cudaSuccess);
      ASSERT_EQ(SiluMul(t, dy.get(), du.get(), n, nullptr), cudaSuccess);
      ExpectClose(t, dy, want, "SiluMul");

      for (int64_t i = 0; i < n; ++i) want[i] = double{x[i]} + u[i];
      ASSERT_EQ(Upload(dy.get(), Store(t, x)), cudaSuccess);
      ASSERT_EQ(Add(t, du.get(), dy.get(), n, nullptr), cudaSuccess);
      ExpectClose(t, dy, want, "Add");

      for (int64_t i = 0; i < n; ++i) want[i] = double{x[i]} + w[i % dim];
      ASSERT_EQ(Upload(dy.get(), Store(t, x)), cudaSuccess);
      ASSERT_EQ(AddBias(t, dw.get<float>(), dy.get(), rows, dim, nullptr), cudaSuccess);
      ExpectClose(t, dy, want, "AddBias");
    }
  }
}

TEST(PointwiseCudaTest, RopeMatchesADoubleReferenceInBothLayouts) {
  LORAD_SKIP_WITHOUT_CUDA();
  std::mt19937 rng(22);
  for (DType t : {DType::kF16, DType::kBF16}) {
    for (bool neox : {false, true}) {
      for (int32_t hd : {64, 128}) {
        RopeParams p;
        p.head_dim = hd;
        p.neox = neox;
        p.theta_scale = std::pow(10000.0f, -2.0f / hd);
        for (int i = 0; i < hd / 2; ++i) p.freq_factor[i] = 1.0f + 0.125f * i;
        const std::vector<int32_t> positions = {0, 1, 77, 4000};
        const int32_t heads = 5;
        const int64_t rows = positions.size(), n = rows * heads * hd;
        const std::vector<float> x = Rounded(t, n, rng);
        DeviceBuffer dx(n * 2), dp(rows * 4);
        ASSERT_EQ(Upload(dx.get(), Store(t, x)), cudaSuccess);
        ASSERT_EQ(Upload(dp.get(), positions), cudaSuccess);
        ASSERT_EQ(Rope(t, p, dx.get(), rows, heads, dp.get<int32_t>(), nullptr), cudaSuccess);
        std::vector<double> want(x.begin(), x.end());
        for (int64_t r = 0; r < rows; ++r) {
          for (int32_t h = 0; h < heads; ++h) {
            const int64_t base = (r * heads + h) * hd;
            for (int i = 0; i < hd / 2; ++i) {
              const double th = positions[r] * std::pow(10000.0, -2.0 * i / hd) / (1.0 + 0.125 * i);
              const int i0 = neox ? i : 2 * i, i1 = neox ? i + hd / 2 : 2 * i + 1;
              want[base + i0] = x[base + i0] * std::cos(th) - x[base + i1] * std::sin(th);
              want[base + i1] = x[base + i0] * std::sin(th) + x[base + i1] * std::cos(th);
            }
          }
        }
        // fp32 angles up to 4000 rad: a few e-4 absolute on top of the output rounding.
        std::vector<uint16_t> got(n);
        ASSERT_EQ(Download(&got, dx.get()), cudaSuccess);
        for (int64_t i = 0; i < n; ++i) {
          EXPECT_NEAR(FromAct(t, got[i]), want[i],
                      2 * OutputEps(t) * (1.0 + std::abs(want[i])) + 4e-3)
              << DTypeName(t) << " neox " << neox << " hd " << hd << " at " << i;
        }
      }
    }
  }
}

}  // namespace
}  // namespace lorad::cuda
