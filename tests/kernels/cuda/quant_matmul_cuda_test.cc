// 4-bit / 8-bit dequantize-multiply kernels against lorad::quant::DequantizeRow and an fp64
// dot product: random blocks (every code used, never zeros), odd row counts, K tails, padded
// row strides, weights at 2-byte (not 4-byte) aligned addresses, poisoned outputs.
#include "engine/kernels/cuda/quant_matmul.cuh"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "engine/base/half.h"
#include "engine/quant/blocks.h"
#include "engine/quant/dequantize.h"
#include "tests/kernels/cuda/cuda_test_util.h"

namespace lorad::cuda {
namespace {

using testing::DeviceBuffer;
using testing::Download;
using testing::FromAct;
using testing::kPoison16;
using testing::OutputEps;
using testing::ToAct;
using testing::Upload;

// Natural alignment of the block type the kernels rely on.
size_t BlockAlign(DType w) { return (w == DType::kQ4_1 || w == DType::kNF4) ? 4 : 2; }

// Random block contents: random quants, scales of both signs, no zero scale.
void RandomBlock(DType w, std::mt19937& rng, uint8_t* blk) {
  std::uniform_real_distribution<float> uni(0.25f, 1.0f);
  const float sign = (rng() & 1) ? 1.0f : -1.0f;
  for (size_t i = 0; i < BlockBytes(w); ++i) blk[i] = static_cast<uint8_t>(rng());
  uint16_t h;
  switch (w) {
    case DType::kQ8_0:
      h = Fp32ToFp16(sign * uni(rng) / 64);
      std::memcpy(blk, &h, 2);
      break;
    case DType::kQ4_0:
      h = Fp32ToFp16(sign * uni(rng) / 4);
      std::memcpy(blk, &h, 2);
      break;
    case DType::kQ4_1: {
      h = Fp32ToFp16(uni(rng) / 8);
      std::memcpy(blk, &h, 2);
      h = Fp32ToFp16(-uni(rng));
      std::memcpy(blk + 2, &h, 2);
      break;
    }
    case DType::kNF4: {
      const float absmax = 2.0f * uni(rng);
      std::memcpy(blk, &absmax, 4);
      break;
    }
    default:
      FAIL() << "unexpected format";
  }
}

struct MatmulCase {
  int64_t rows, col_blocks, m;
  QuantMatmulAlgo algo;
  int64_t row_pad = 0;  // extra bytes per weight row (a multiple of 4)
  int64_t x_pad = 0;    // extra elements per x row (a multiple of 4)
  int64_t y_pad = 0;    // extra elements per y row
  bool skew = false;    // weights at base + BlockAlign (not 16-byte aligned)
};

const char* AlgoName(QuantMatmulAlgo a) {
  return a == QuantMatmulAlgo::kMatvec ? "matvec" : a == QuantMatmulAlgo::kTiled ? "tiled" : "auto";
}

void RunCase(DType act, DType w, const MatmulCase& c, uint32_t seed) {
  SCOPED_TRACE(std::string(DTypeName(w)) + " rows " + std::to_string(c.rows) + " blocks " +
               std::to_string(c.col_blocks) + " m " + std::to_string(c.m) + " " + AlgoName(c.algo));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  const int64_t cols = c.col_blocks * BlockElements(w);
  const int64_t row_bytes = RowBytes(w, cols) + c.row_pad;
  const int64_t ldx = cols + c.x_pad, ldy = c.rows + c.y_pad;

  std::vector<uint8_t> wbytes(c.rows * row_bytes);
  for (auto& v : wbytes) v = static_cast<uint8_t>(rng());  // padding stays garbage
  for (int64_t r = 0; r < c.rows; ++r) {
    for (int64_t bl = 0; bl < c.col_blocks; ++bl) {
      RandomBlock(w, rng, &wbytes[r * row_bytes + bl * BlockBytes(w)]);
    }
  }
  std::vector<uint16_t> x(c.m * ldx);
  for (auto& v : x) v = ToAct(act, uni(rng));

  const size_t skew = c.skew ? BlockAlign(w) : 0;
  DeviceBuffer d_w(wbytes.size() + 16), d_x(x.size() * 2 + 16), d_y(c.m * ldy * 2 + 16);
  ASSERT_EQ(cudaMemcpy(d_w.bytes() + skew, wbytes.data(), wbytes.size(), cudaMemcpyHostToDevice),
            cudaSuccess);
  ASSERT_EQ(Upload(d_x.get(), x), cudaSuccess);
  ASSERT_EQ(cudaMemset(d_y.get(), 0xff, d_y.size()), cudaSuccess);
  ASSERT_EQ(QuantMatmul(act, w, d_w.bytes() + skew, row_bytes, c.rows, cols, d_x.get(), ldx, c.m,
                        d_y.get(), ldy, nullptr, c.algo),
            cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<uint16_t> y(c.m * ldy);
  ASSERT_EQ(Download(&y, d_y.get()), cudaSuccess);

  // The tiled kernel rounds weights to the activation type: allow that on top of the output.
  const bool tiled = c.algo == QuantMatmulAlgo::kTiled ||
                     (c.algo == QuantMatmulAlgo::kAuto && c.m > kQuantMatvecMaxM);
  const double w_eps = tiled ? OutputEps(act) / 2 : 0.0;
  std::vector<float> wf(cols);
  int bad = 0;
  for (int64_t r = 0; r < c.rows; ++r) {
    quant::DequantizeRow(w, &wbytes[r * row_bytes], wf.data(), cols);
    for (int64_t i = 0; i < c.m; ++i) {
      double s = 0, mag = 0;
      for (int64_t k = 0; k < cols; ++k) {
        const double p = double(FromAct(act, x[i * ldx + k])) * wf[k];
        s += p;
        mag += std::fabs(p);
      }
      const double got = FromAct(act, y[i * ldy + r]);
      const double tol = OutputEps(act) * std::fabs(s) + (w_eps + 1e-5) * mag + 1e-6;
      if (!(std::fabs(got - s) <= tol) && bad++ < 5) {
        ADD_FAILURE() << "y[" << i << ", " << r << "] = " << got << ", want " << s;
      }
    }
  }
  for (int64_t i = 0; i < c.m; ++i) {
    for (int64_t r = c.rows; r < ldy; ++r) {
      if (y[i * ldy + r] != kPoison16 && bad++ < 5) ADD_FAILURE() << "padding written";
    }
  }
  EXPECT_EQ(bad, 0);
}

class QuantMatmulCudaTest : public ::testing::TestWithParam<std::tuple<DType, DType>> {
 protected:
  void SetUp() override { LORAD_SKIP_WITHOUT_CUDA(); }
  DType act() const { return std::get<0>(GetParam()); }
  DType weights() const { return std::get<1>(GetParam()); }
};

TEST_P(QuantMatmulCudaTest, MatvecMatchesReference) {
  using A = QuantMatmulAlgo;
  const MatmulCase cases[] = {
      {1, 1, 1, A::kMatvec},     {37, 11, 1, A::kMatvec, 4, 4, 3, true},
      {37, 11, 2, A::kMatvec},   {37, 11, 3, A::kMatvec, 0, 8, 1},
      {64, 7, 5, A::kMatvec},    {37, 11, 8, A::kMatvec, 8, 0, 0, true},
      {29, 5, 13, A::kMatvec},  // two launches: 8 + 5
      {131, 128, 1, A::kMatvec}, {50, 5, 8, A::kAuto},
  };
  uint32_t seed = 1;
  for (const MatmulCase& c : cases) {
    RunCase(act(), weights(), c, seed++);
    if (HasFatalFailure()) return;
  }
}

TEST_P(QuantMatmulCudaTest, TiledMatchesReference) {
  using A = QuantMatmulAlgo;
  const MatmulCase cases[] = {
      {1, 1, 1, A::kTiled},
      {37, 11, 3, A::kTiled, 4, 4, 3, true},  // K tail (GGUF: 352 = 5.5 steps of 64)
      {64, 2, 64, A::kTiled},
      {130, 9, 70, A::kTiled, 0, 8, 1},
      {200, 4, 129, A::kTiled, 8, 0, 0, true},
      {50, 5, 9, A::kAuto},
  };
  uint32_t seed = 100;
  for (const MatmulCase& c : cases) {
    RunCase(act(), weights(), c, seed++);
    if (HasFatalFailure()) return;
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, QuantMatmulCudaTest,
                         ::testing::Combine(::testing::Values(DType::kF16, DType::kBF16),
                                            ::testing::Values(DType::kNF4, DType::kQ4_0,
                                                              DType::kQ4_1, DType::kQ8_0)),
                         [](const auto& info) {
                           return std::string(DTypeName(std::get<0>(info.param))) + "_" +
                                  DTypeName(std::get<1>(info.param));
                         });

// Argument checks return before any CUDA call, so these run without a device.
TEST(QuantMatmulArgsTest, RejectsBadArguments) {
  alignas(16) uint8_t w[64 * 36];
  alignas(16) uint16_t x[128], y[64];
  const auto call = [&](DType act, DType wt, const void* wp, int64_t row_bytes, int64_t cols,
                        const void* xp, int64_t ldx) {
    return QuantMatmul(act, wt, wp, row_bytes, 1, cols, xp, ldx, 1, y, 1, nullptr);
  };
  EXPECT_EQ(call(DType::kF32, DType::kNF4, w, 36, 64, x, 64), cudaErrorInvalidValue);
  EXPECT_EQ(call(DType::kF16, DType::kQ5_0, w, 22, 32, x, 32), cudaErrorInvalidValue);
  EXPECT_EQ(call(DType::kF16, DType::kNF4, w, 36, 32, x, 32), cudaErrorInvalidValue);   // cols
  EXPECT_EQ(call(DType::kF16, DType::kQ4_0, w, 17, 32, x, 32), cudaErrorInvalidValue);  // bytes
  EXPECT_EQ(call(DType::kF16, DType::kQ4_1, w + 2, 20, 32, x, 32), cudaErrorInvalidValue);
  EXPECT_EQ(call(DType::kF16, DType::kQ4_0, w + 1, 18, 32, x, 32), cudaErrorInvalidValue);
  EXPECT_EQ(call(DType::kF16, DType::kQ8_0, w, 34, 32, x + 1, 32), cudaErrorInvalidValue);
  EXPECT_EQ(call(DType::kBF16, DType::kQ8_0, w, 34, 32, x, 34), cudaErrorInvalidValue);  // ldx
  EXPECT_EQ(QuantMatmul(DType::kF16, DType::kQ4_0, w, 18, 2, 32, x, 32, 1, y, 1, nullptr),
            cudaErrorInvalidValue);  // ldy < rows
  EXPECT_EQ(QuantMatmul(DType::kF16, DType::kQ4_0, w, 18, 0, 32, x, 32, 1, y, 1, nullptr),
            cudaSuccess);  // nothing to do
}

}  // namespace
}  // namespace lorad::cuda
