// The op layer on the CPU against the kernels' scalar references, its argument checks, and the
// CUDA dispatch point: "built without CUDA" / "no CUDA device" in builds and on machines that
// cannot run the CUDA kernels (the CUDA results themselves are checked in ops_cuda_test.cc).
#include <cmath>
#include <random>
#include <vector>

#include "engine/kernels/cuda/cuda_available.h"
#include "engine/kernels/quant_matmul.h"
#include "engine/kernels/segmented_lora.h"
#include "engine/ops/lora_op.h"
#include "engine/ops/norm_op.h"
#include "engine/ops/pointwise_op.h"
#include "engine/ops/quant_matmul_op.h"
#include "engine/ops/rope_op.h"
#include "engine/quant/quantize.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lorad::ops {
namespace {

using ::testing::HasSubstr;

std::vector<float> Random(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

struct Adapter {
  int32_t rank;
  std::vector<float> a, b;
};

TEST(LoraOpTest, CpuMatchesTheReferenceWithGapsAndMixedRanks) {
  std::mt19937 rng(5);
  for (auto [d_in, d_out] : {std::pair{64, 96}, std::pair{576, 192}, std::pair{33, 17}}) {
    const int64_t tokens = 23;
    std::vector<Adapter> adapters;
    for (int32_t r : {1, 8, 16, 64}) {
      adapters.push_back({r, Random(r * d_in, rng), Random(d_out * r, rng)});
    }
    // Segments with base-only gaps and an empty one.
    const int64_t bounds[][2] = {{0, 3}, {5, 5}, {5, 12}, {15, 23}};
    std::vector<kernels::LoraSegment> segs;
    for (int i = 0; i < 4; ++i) {
      const Adapter& ad = adapters[i];
      segs.push_back(
          {bounds[i][0], bounds[i][1], ad.rank, 0.5f + i, DType::kF32, ad.a.data(), ad.b.data()});
    }
    const std::vector<float> x = Random(tokens * d_in, rng);
    std::vector<float> y = Random(tokens * d_out, rng), want = y;
    kernels::SegmentedLoraReference(x.data(), d_in, want.data(), d_out, segs, nullptr, nullptr);
    OpContext ctx;
    std::vector<uint8_t> ws(ApplyLoraWorkspaceBytes(Device::kCpu, tokens, segs));
    ctx.workspace = ws.data();
    ctx.workspace_bytes = ws.size();
    ASSERT_TRUE(ApplyLora(ctx, DType::kF32, x.data(), d_in, y.data(), d_out, tokens, segs).ok());
    for (size_t i = 0; i < y.size(); ++i) {
      ASSERT_NEAR(y[i], want[i], 1e-3f * (1.0f + std::abs(want[i]))) << i;
    }
  }
}

TEST(LoraOpTest, BadArgumentsAreInvalidArgument) {
  std::vector<float> a(4 * 8, 1.0f), b(8 * 4, 1.0f), x(8 * 5), y(8 * 5);
  OpContext ctx;
  std::vector<uint8_t> ws(1 << 16);
  ctx.workspace = ws.data();
  ctx.workspace_bytes = ws.size();
  auto run = [&](std::vector<kernels::LoraSegment> segs, DType act = DType::kF32) {
    return ApplyLora(ctx, act, x.data(), 8, y.data(), 8, 5, segs);
  };
  const kernels::LoraSegment ok{0, 2, 4, 1.0f, DType::kF32, a.data(), b.data()};
  EXPECT_TRUE(run({ok}).ok());
  kernels::LoraSegment overlap = ok;
  overlap.token_begin = 1;
  overlap.token_end = 3;
  EXPECT_THAT(run({ok, overlap}).message(), HasSubstr("overlaps"));
  kernels::LoraSegment outside = ok;
  outside.token_end = 6;
  EXPECT_EQ(run({outside}).code(), absl::StatusCode::kInvalidArgument);
  kernels::LoraSegment rank0 = ok;
  rank0.rank = 0;
  EXPECT_THAT(run({rank0}).message(), HasSubstr("rank 0"));
  EXPECT_THAT(run({ok}, DType::kF16).message(), HasSubstr("F32 activations"));
  ctx.workspace_bytes = 0;
  EXPECT_THAT(run({ok}).message(), HasSubstr("workspace"));
}

TEST(QuantMatMulOpTest, CpuMatchesTheReference) {
  std::mt19937 rng(9);
  for (DType t : {DType::kQ4_1, DType::kQ8_0, DType::kNF4}) {
    const int64_t rows = 40, cols = 128, m = 3;
    const std::vector<float> wf = Random(rows * cols, rng), x = Random(m * cols, rng);
    const size_t rb = RowBytes(t, cols);
    std::vector<uint8_t> w(rows * rb);
    for (int64_t r = 0; r < rows; ++r) {
      ASSERT_TRUE(quant::QuantizeRow(t, wf.data() + r * cols, w.data() + r * rb, cols).ok());
    }
    std::vector<float> y(m * rows), want(m * rows);
    kernels::QuantMatMulReference({t, rows, cols, w.data(), rb}, x.data(), m, want.data(), nullptr);
    ASSERT_TRUE(
        QuantMatMul(OpContext{}, t, w.data(), rb, rows, cols, DType::kF32, x.data(), m, y.data())
            .ok());
    // The kernels' contract: x rounded to int8 per 32 values for GGUF types, so
    // |dy| <= sum_k |w_k| * amax32(x)_k / 254 (plus fp32 rounding).
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t r = 0; r < rows; ++r) {
        double bound = 1e-4;
        for (int64_t k = 0; k < cols; ++k) {
          float amax = 0.0f;
          for (int64_t j = k / 32 * 32; j < k / 32 * 32 + 32; ++j) {
            amax = std::max(amax, std::abs(x[i * cols + j]));
          }
          bound += std::abs(wf[r * cols + k]) * 1.1 * amax / 254.0;
        }
        EXPECT_NEAR(y[i * rows + r], want[i * rows + r], bound) << DTypeName(t);
      }
    }
    EXPECT_THAT(QuantMatMul(OpContext{}, t, w.data(), rb + 1, rows, cols, DType::kF32, x.data(), m,
                            y.data())
                    .message(),
                HasSubstr("bytes"));
  }
}

TEST(NormOpTest, RmsNormMatchesADoubleReferenceOverRows) {
  std::mt19937 rng(11);
  for (auto [rows, dim] : {std::pair{1, 64}, std::pair{7, 576}, std::pair{3, 33}}) {
    const std::vector<float> x = Random(rows * dim, rng), w = Random(dim, rng);
    std::vector<float> y(x.size());
    ASSERT_TRUE(
        RmsNorm(OpContext{}, DType::kF32, x.data(), w.data(), 1e-5f, rows, dim, y.data()).ok());
    for (int64_t r = 0; r < rows; ++r) {
      double ss = 0.0;
      for (int64_t i = 0; i < dim; ++i) ss += double{x[r * dim + i]} * x[r * dim + i];
      const double inv = 1.0 / std::sqrt(ss / dim + 1e-5);
      for (int64_t i = 0; i < dim; ++i) {
        const double want = x[r * dim + i] * inv * w[i];
        EXPECT_NEAR(y[r * dim + i], want, 1e-5 * (1.0 + std::abs(want))) << r << "," << i;
      }
    }
  }
  std::vector<float> v(8);
  EXPECT_THAT(
      RmsNorm(OpContext{}, DType::kF32, v.data(), v.data(), 1e-5f, 1, 0, v.data()).message(),
      HasSubstr("bad sizes"));
  EXPECT_THAT(
      RmsNorm(OpContext{}, DType::kF16, v.data(), v.data(), 1e-5f, 1, 8, v.data()).message(),
      HasSubstr("RmsNorm on cpu takes F32 activations, not F16"));
}

TEST(PointwiseOpTest, SiluMulAddAndAddBiasMatchPlainLoops) {
  std::mt19937 rng(12);
  for (int64_t n : {1, 17, 64, 1000}) {
    const std::vector<float> g0 = Random(n, rng), u = Random(n, rng);
    std::vector<float> g = g0;
    ASSERT_TRUE(SiluMul(OpContext{}, DType::kF32, g.data(), u.data(), n).ok());
    for (int64_t i = 0; i < n; ++i) {
      const double want = g0[i] / (1.0 + std::exp(-double{g0[i]})) * u[i];
      EXPECT_NEAR(g[i], want, 1e-5 * (1.0 + std::abs(want))) << i;
    }
    std::vector<float> y = g0;
    ASSERT_TRUE(Add(OpContext{}, DType::kF32, u.data(), y.data(), n).ok());
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(y[i], g0[i] + u[i]) << i;
  }
  const int64_t rows = 5, dim = 24;
  const std::vector<float> bias = Random(dim, rng), y0 = Random(rows * dim, rng);
  std::vector<float> y = y0;
  ASSERT_TRUE(AddBias(OpContext{}, DType::kF32, bias.data(), y.data(), rows, dim).ok());
  for (int64_t i = 0; i < rows * dim; ++i) EXPECT_EQ(y[i], y0[i] + bias[i % dim]) << i;
  EXPECT_THAT(SiluMul(OpContext{}, DType::kF32, nullptr, bias.data(), 1).message(),
              HasSubstr("null pointer"));
  EXPECT_THAT(Add(OpContext{}, DType::kBF16, bias.data(), y.data(), 1).message(),
              HasSubstr("Add on cpu takes F32 activations, not BF16"));
  EXPECT_THAT(AddBias(OpContext{}, DType::kF32, bias.data(), y.data(), rows, 0).message(),
              HasSubstr("bad dim"));
}

TEST(RopeOpTest, CpuMatchesADoubleReferenceInBothLayoutsWithScaling) {
  std::mt19937 rng(13);
  for (bool neox : {false, true}) {
    for (bool scaled : {false, true}) {
      ModelSpec spec;
      spec.head_dim = 64;
      spec.rope_theta = 10000.0f;
      spec.rope_neox = neox;
      std::vector<float> factors;
      if (scaled) {
        for (int i = 0; i < 32; ++i) factors.push_back(1.0f + 0.25f * i);
      }
      const RopeTable table(spec, factors);
      const int32_t heads = 3;
      const std::vector<int32_t> positions = {0, 1, 17, 500};
      const int64_t rows = positions.size(), row = heads * 64;
      const std::vector<float> x0 = Random(rows * row, rng);
      std::vector<float> x = x0;
      ASSERT_TRUE(
          ApplyRope(OpContext{}, table, DType::kF32, x.data(), rows, heads, positions.data()).ok());
      for (int64_t r = 0; r < rows; ++r) {
        for (int32_t h = 0; h < heads; ++h) {
          const float* in = x0.data() + r * row + h * 64;
          const float* out = x.data() + r * row + h * 64;
          for (int i = 0; i < 32; ++i) {
            const double f = scaled ? 1.0 + 0.25 * i : 1.0;
            const double theta = positions[r] * std::pow(10000.0, -2.0 * i / 64) / f;
            const int i0 = neox ? i : 2 * i, i1 = neox ? i + 32 : 2 * i + 1;
            const double want0 = in[i0] * std::cos(theta) - in[i1] * std::sin(theta);
            const double want1 = in[i0] * std::sin(theta) + in[i1] * std::cos(theta);
            // fp32 angles built by repeated multiplication drift by a few ulps of theta.
            const double tol =
                1e-5 * (1.0 + std::abs(theta)) * (std::abs(in[i0]) + std::abs(in[i1]));
            EXPECT_NEAR(out[i0], want0, tol + 1e-6) << neox << scaled << r << h << i;
            EXPECT_NEAR(out[i1], want1, tol + 1e-6) << neox << scaled << r << h << i;
          }
        }
      }
    }
  }
  ModelSpec spec;
  spec.head_dim = 8;
  const RopeTable table(spec, {});
  std::vector<float> x(8);
  const int32_t bad = -1;
  EXPECT_THAT(ApplyRope(OpContext{}, table, DType::kF32, x.data(), 1, 1, &bad).message(),
              HasSubstr("negative position -1"));
  EXPECT_THAT(ApplyRope(OpContext{}, table, DType::kF32, x.data(), 1, 1, nullptr).message(),
              HasSubstr("null pointer"));
}

TEST(OpDispatchTest, CudaDeviceAnswersWhyItCannotRunHere) {
  if (cuda::CudaDeviceCount() > 0) GTEST_SKIP() << "a CUDA device is present: see ops_cuda_test";
  OpContext ctx;
  ctx.device = Device::kCuda;
  std::vector<uint16_t> x(64), y(64), a(64), b(64);
  const kernels::LoraSegment seg{0, 1, 1, 1.0f, DType::kF16, a.data(), b.data()};
  absl::Status s = ApplyLora(ctx, DType::kF16, x.data(), 64, y.data(), 64, 1, {seg});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(),
              HasSubstr(cuda::CudaKernelsBuilt() ? "no CUDA device" : "built without CUDA"));
  std::vector<uint8_t> w(RowBytes(DType::kQ4_0, 64));
  s = QuantMatMul(ctx, DType::kQ4_0, w.data(), w.size(), 1, 64, DType::kF16, x.data(), 1, y.data());
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  const std::vector<float> w32(64);
  ModelSpec spec;
  spec.head_dim = 64;
  const RopeTable rope(spec, {});
  const int32_t position = 0;
  for (const absl::Status& st :
       {RmsNorm(ctx, DType::kF16, x.data(), w32.data(), 1e-5f, 1, 64, y.data()),
        SiluMul(ctx, DType::kF16, x.data(), y.data(), 64),
        Add(ctx, DType::kF16, x.data(), y.data(), 64),
        AddBias(ctx, DType::kF16, w32.data(), y.data(), 1, 64),
        ApplyRope(ctx, rope, DType::kF16, x.data(), 1, 1, &position)}) {
    EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  }
  EXPECT_THAT(std::string(DeviceName(ctx.device)), "cuda");
}

}  // namespace
}  // namespace lorad::ops
