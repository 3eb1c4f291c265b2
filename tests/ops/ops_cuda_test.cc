// The op layer's CUDA path on a GPU: a device-tensor call reaches the SGMV and 4-bit matmul
// kernels, RMSNorm, RoPE and the element-wise kernels, and agrees with the CPU path (fp32 reference
// on the same fp16-rounded inputs). Skips without a CUDA device. Built only with
// LORAD_WITH_CUDA=ON.
#include <random>
#include <vector>

#include "engine/kernels/quant_matmul.h"
#include "engine/kernels/segmented_lora.h"
#include "engine/ops/lora_op.h"
#include "engine/ops/norm_op.h"
#include "engine/ops/pointwise_op.h"
#include "engine/ops/quant_matmul_op.h"
#include "engine/ops/rope_op.h"
#include "engine/quant/quantize.h"
#include "tests/kernels/cuda/cuda_test_util.h"

namespace lorad::ops {
namespace {

using cuda::testing::DeviceBuffer;
using cuda::testing::Download;
using cuda::testing::Upload;

std::vector<float> RoundedRandom(size_t n, std::mt19937& rng, float stddev) {
  std::normal_distribution<float> d(0.0f, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = Fp16ToFp32(Fp32ToFp16(d(rng)));
  return v;
}

std::vector<uint16_t> ToF16(const std::vector<float>& v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = Fp32ToFp16(v[i]);
  return out;
}

TEST(OpsCudaTest, ApplyLoraOnDeviceMatchesCpu) {
  LORAD_SKIP_WITHOUT_CUDA();
  std::mt19937 rng(3);
  const int64_t d_in = 576, d_out = 1536, tokens = 37;
  const int32_t ranks[] = {16, 1, 64, 8};
  const int64_t bounds[][2] = {{0, 9}, {9, 9}, {12, 30}, {30, 37}};
  std::vector<std::vector<float>> a(4), b(4);
  std::vector<std::unique_ptr<DeviceBuffer>> da, db;
  std::vector<kernels::LoraSegment> dev_segs;
  std::vector<kernels::LoraSegment> cpu_segs;
  for (int i = 0; i < 4; ++i) {
    a[i] = RoundedRandom(ranks[i] * d_in, rng, 0.05f);
    b[i] = RoundedRandom(d_out * ranks[i], rng, 0.05f);
    da.push_back(std::make_unique<DeviceBuffer>(a[i].size() * 2));
    db.push_back(std::make_unique<DeviceBuffer>(b[i].size() * 2));
    LORAD_CUDA_OK(Upload(da.back()->get(), ToF16(a[i])));
    LORAD_CUDA_OK(Upload(db.back()->get(), ToF16(b[i])));
    dev_segs.push_back({bounds[i][0], bounds[i][1], ranks[i], 0.5f * (i + 1), DType::kF16,
                        da.back()->get(), db.back()->get()});
    cpu_segs.push_back({bounds[i][0], bounds[i][1], ranks[i], 0.5f * (i + 1), DType::kF32,
                        a[i].data(), b[i].data()});
  }
  const std::vector<float> x = RoundedRandom(tokens * d_in, rng, 1.0f);
  std::vector<float> want = RoundedRandom(tokens * d_out, rng, 1.0f);
  const std::vector<uint16_t> y0 = ToF16(want);
  kernels::SegmentedLoraReference(x.data(), d_in, want.data(), d_out, cpu_segs, nullptr, nullptr);

  DeviceBuffer dx(x.size() * 2), dy(y0.size() * 2);
  LORAD_CUDA_OK(Upload(dx.get(), ToF16(x)));
  LORAD_CUDA_OK(Upload(dy.get(), y0));
  DeviceBuffer ws(ApplyLoraWorkspaceBytes(Device::kCuda, tokens, dev_segs));
  OpContext ctx;
  ctx.device = Device::kCuda;
  ctx.workspace = ws.get();
  ctx.workspace_bytes = ws.size();
  absl::Status s = ApplyLora(ctx, DType::kF16, dx.get(), d_in, dy.get(), d_out, tokens, dev_segs);
  ASSERT_TRUE(s.ok()) << s;
  std::vector<uint16_t> got(y0.size());
  LORAD_CUDA_OK(Download(&got, dy.get()));
  for (size_t i = 0; i < got.size(); ++i) {
    // Base-only tokens (rows 9..11) are untouched; the rest within fp16 output rounding.
    EXPECT_NEAR(Fp16ToFp32(got[i]), want[i], 2e-3 * (1.0 + std::abs(want[i]))) << i;
  }
}

TEST(OpsCudaTest, QuantMatMulOnDeviceMatchesCpu) {
  LORAD_SKIP_WITHOUT_CUDA();
  std::mt19937 rng(4);
  const int64_t rows = 256, cols = 576;
  for (DType t : {DType::kQ4_1, DType::kNF4, DType::kQ8_0, DType::kQ4_0}) {
    for (int64_t m : {1, 5, 40}) {
      const std::vector<float> wf = RoundedRandom(rows * cols, rng, 1.0f);
      const std::vector<float> x = RoundedRandom(m * cols, rng, 1.0f);
      const size_t rb = RowBytes(t, cols);
      std::vector<uint8_t> w(rows * rb);
      for (int64_t r = 0; r < rows; ++r) {
        ASSERT_TRUE(quant::QuantizeRow(t, wf.data() + r * cols, w.data() + r * rb, cols).ok());
      }
      std::vector<float> want(m * rows);
      kernels::QuantMatMulReference({t, rows, cols, w.data(), rb}, x.data(), m, want.data(),
                                    nullptr);
      DeviceBuffer dw(w.size()), dx(x.size() * 2), dy(want.size() * 2);
      LORAD_CUDA_OK(Upload(dw.get(), w));
      LORAD_CUDA_OK(Upload(dx.get(), ToF16(x)));
      OpContext ctx;
      ctx.device = Device::kCuda;
      absl::Status s =
          QuantMatMul(ctx, t, dw.get(), rb, rows, cols, DType::kF16, dx.get(), m, dy.get());
      ASSERT_TRUE(s.ok()) << s;
      LORAD_CUDA_OK(cudaDeviceSynchronize());
      std::vector<uint16_t> got(want.size());
      LORAD_CUDA_OK(Download(&got, dy.get()));
      for (size_t i = 0; i < got.size(); ++i) {
        // fp16 output, and the tiled kernel rounds dequantized weights to fp16.
        EXPECT_NEAR(Fp16ToFp32(got[i]), want[i], 0.02 * (1.0 + std::abs(want[i])))
            << DTypeName(t) << " m " << m << " " << i;
      }
    }
  }
}

TEST(OpsCudaTest, NormAndPointwiseOnDeviceMatchCpu) {
  LORAD_SKIP_WITHOUT_CUDA();
  std::mt19937 rng(6);
  const int64_t rows = 9, dim = 576, n = rows * dim;
  const std::vector<float> x = RoundedRandom(n, rng, 1.0f), u = RoundedRandom(n, rng, 1.0f);
  const std::vector<float> w = RoundedRandom(dim, rng, 1.0f);
  OpContext cpu, dev;
  dev.device = Device::kCuda;
  DeviceBuffer dx(n * 2), du(n * 2), dw(dim * 4), dy(n * 2);
  LORAD_CUDA_OK(Upload(dx.get(), ToF16(x)));
  LORAD_CUDA_OK(Upload(du.get(), ToF16(u)));
  LORAD_CUDA_OK(Upload(dw.get(), w));
  auto expect_near = [&](const std::vector<float>& want, const char* what) {
    LORAD_CUDA_OK(cudaDeviceSynchronize());
    std::vector<uint16_t> got(n);
    LORAD_CUDA_OK(Download(&got, dy.get()));
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_NEAR(Fp16ToFp32(got[i]), want[i], 2e-3 * (1.0 + std::abs(want[i]))) << what << i;
    }
  };
  std::vector<float> want(n);
  ASSERT_TRUE(RmsNorm(cpu, DType::kF32, x.data(), w.data(), 1e-5f, rows, dim, want.data()).ok());
  ASSERT_TRUE(RmsNorm(dev, DType::kF16, dx.get(), static_cast<const float*>(dw.get()), 1e-5f, rows,
                      dim, dy.get())
                  .ok());
  expect_near(want, "RmsNorm ");
  want = x;
  ASSERT_TRUE(SiluMul(cpu, DType::kF32, want.data(), u.data(), n).ok());
  LORAD_CUDA_OK(Upload(dy.get(), ToF16(x)));
  ASSERT_TRUE(SiluMul(dev, DType::kF16, dy.get(), du.get(), n).ok());
  expect_near(want, "SiluMul ");
  want = x;
  ASSERT_TRUE(Add(cpu, DType::kF32, u.data(), want.data(), n).ok());
  LORAD_CUDA_OK(Upload(dy.get(), ToF16(x)));
  ASSERT_TRUE(Add(dev, DType::kF16, du.get(), dy.get(), n).ok());
  expect_near(want, "Add ");
  want = x;
  ASSERT_TRUE(AddBias(cpu, DType::kF32, w.data(), want.data(), rows, dim).ok());
  LORAD_CUDA_OK(Upload(dy.get(), ToF16(x)));
  ASSERT_TRUE(
      AddBias(dev, DType::kF16, static_cast<const float*>(dw.get()), dy.get(), rows, dim).ok());
  expect_near(want, "AddBias ");
}

TEST(OpsCudaTest, RopeOnDeviceMatchesCpu) {
  LORAD_SKIP_WITHOUT_CUDA();
  std::mt19937 rng(7);
  for (bool neox : {false, true}) {
    ModelSpec spec;
    spec.head_dim = 64;
    spec.rope_theta = 500000.0f;
    spec.rope_neox = neox;
    std::vector<float> factors(32);
    for (int i = 0; i < 32; ++i) factors[i] = 1.0f + 0.5f * i;
    const RopeTable table(spec, factors);
    const int32_t heads = 9;
    const std::vector<int32_t> positions = {0, 3, 100, 2047};
    const int64_t n = positions.size() * heads * 64;
    const std::vector<float> x = RoundedRandom(n, rng, 1.0f);
    std::vector<float> want = x;
    ASSERT_TRUE(ApplyRope(OpContext{}, table, DType::kF32, want.data(), positions.size(), heads,
                          positions.data())
                    .ok());
    DeviceBuffer dx(n * 2), dp(positions.size() * 4);
    LORAD_CUDA_OK(Upload(dx.get(), ToF16(x)));
    LORAD_CUDA_OK(Upload(dp.get(), positions));
    OpContext dev;
    dev.device = Device::kCuda;
    ASSERT_TRUE(ApplyRope(dev, table, DType::kF16, dx.get(), positions.size(), heads,
                          static_cast<const int32_t*>(dp.get()))
                    .ok());
    LORAD_CUDA_OK(cudaDeviceSynchronize());
    std::vector<uint16_t> got(n);
    LORAD_CUDA_OK(Download(&got, dx.get()));
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_NEAR(Fp16ToFp32(got[i]), want[i], 4e-3 * (1.0 + std::abs(want[i])))
          << neox << " " << i;
    }
  }
}

}  // namespace
}  // namespace lorad::ops
