#include "engine/kernels/quant_matmul.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "engine/quant/dequantize.h"
#include "gtest/gtest.h"
#include "tests/kernels/kernel_test_util.h"

namespace lorad::kernels {
namespace {

using testing::RandomFloats;
using testing::RandomMatrix;
using testing::ScopedIsa;

constexpr DType kAllTypes[] = {DType::kF32,  DType::kF16,  DType::kBF16, DType::kQ8_0, DType::kQ4_0,
                               DType::kQ4_1, DType::kQ5_0, DType::kQ4_K, DType::kQ6_K, DType::kNF4};

bool QuantizesActivations(DType t, Isa isa) {
  return isa != Isa::kScalar && IsQuantized(t) && t != DType::kNF4;
}

// Column counts valid for `t`, including odd ones for the float types.
std::vector<int64_t> ColsFor(DType t) {
  switch (BlockElements(t)) {
    case 1:
      return {1, 7, 9, 33, 577};
    case 32:
      return {32, 96, 576};
    case 64:
      return {64, 192, 576};
    default:
      return {256, 768};
  }
}

// Checks QuantMatMul against the reference with the tolerance quant_matmul.h documents.
void CheckMatMul(DType type, int64_t rows, int64_t cols, int64_t m, Isa isa, ThreadPool* pool,
                 uint32_t seed) {
  const std::vector<uint8_t> data = RandomMatrix(type, rows, cols, seed);
  const QuantMatrix w{type, rows, cols, data.data(), RowBytes(type, cols)};
  std::vector<float> x = RandomFloats(static_cast<size_t>(m * cols), seed + 1);
  if (cols >= 64) std::fill(x.begin() + 32, x.begin() + 64, 0.0f);  // an all-zero x block
  std::vector<float> y(static_cast<size_t>(m * rows), 1e30f), ref(y.size());
  QuantMatMul(w, x.data(), m, y.data(), pool);
  QuantMatMulReference(w, x.data(), m, ref.data(), nullptr);

  std::vector<float> wrow(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    quant::DequantizeRow(type, data.data() + r * w.row_bytes, wrow.data(), cols);
    for (int64_t i = 0; i < m; ++i) {
      const float* xi = x.data() + i * cols;
      double abs_sum = 0.0, q8_bound = 0.0;
      for (int64_t k = 0; k < cols; ++k) {
        abs_sum += std::fabs(wrow[k] * xi[k]);
        if (k % 32 == 0) {
          float amax = 0.0f;
          for (int64_t j = k; j < std::min(cols, k + 32); ++j)
            amax = std::max(amax, std::fabs(xi[j]));
          double wsum = 0.0;
          for (int64_t j = k; j < std::min(cols, k + 32); ++j) wsum += std::fabs(wrow[j]);
          q8_bound += wsum * amax / 254.0;
        }
      }
      double tol = 1e-5 * abs_sum + 1e-6;
      if (QuantizesActivations(type, isa)) tol += q8_bound * 1.001;
      const float got = y[i * rows + r], want = ref[i * rows + r];
      ASSERT_NEAR(got, want, tol) << DTypeName(type) << " " << IsaName(isa) << " rows=" << rows
                                  << " cols=" << cols << " m=" << m << " r=" << r << " i=" << i;
    }
  }
}

class QuantMatMulTest : public ::testing::TestWithParam<std::tuple<DType, Isa, int>> {};

TEST_P(QuantMatMulTest, MatchesReference) {
  const auto [type, isa, threads] = GetParam();
  ScopedIsa scoped(isa);
  std::unique_ptr<ThreadPool> pool = threads > 0 ? std::make_unique<ThreadPool>(threads) : nullptr;
  uint32_t seed = 1;
  for (int64_t cols : ColsFor(type)) {
    for (int64_t rows : {1, 4, 5, 17, 50}) {
      for (int64_t m : {1, 2, 3, 4, 5, 17, 64}) {
        CheckMatMul(type, rows, cols, m, isa, pool.get(), seed++);
      }
    }
  }
}

TEST_P(QuantMatMulTest, LargerShape) {
  const auto [type, isa, threads] = GetParam();
  ScopedIsa scoped(isa);
  std::unique_ptr<ThreadPool> pool = threads > 0 ? std::make_unique<ThreadPool>(threads) : nullptr;
  const int64_t cols = BlockElements(type) == 1 ? 1537 : 1536;
  CheckMatMul(type, 131, cols, 1, isa, pool.get(), 77);
  CheckMatMul(type, 67, cols, 33, isa, pool.get(), 78);
}

TEST_P(QuantMatMulTest, DequantizeRowsIsBitExact) {
  const auto [type, isa, threads] = GetParam();
  ScopedIsa scoped(isa);
  for (int64_t cols : ColsFor(type)) {
    const int64_t rows = 7;
    const std::vector<uint8_t> data = RandomMatrix(type, rows, cols, 5);
    const QuantMatrix w{type, rows, cols, data.data(), RowBytes(type, cols)};
    std::vector<float> got(static_cast<size_t>((rows - 2) * cols)), want(got.size());
    DequantizeRows(w, 2, rows, got.data());
    for (int64_t r = 2; r < rows; ++r) {
      quant::DequantizeRow(type, data.data() + r * w.row_bytes, want.data() + (r - 2) * cols, cols);
    }
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i], want[i]) << DTypeName(type) << " " << IsaName(isa) << " i=" << i;
    }
  }
}

std::vector<std::tuple<DType, Isa, int>> AllParams() {
  std::vector<std::tuple<DType, Isa, int>> params;
  for (DType t : kAllTypes) {
    for (Isa isa : testing::SupportedIsas()) {
      for (int threads : {0, 1, 2}) params.emplace_back(t, isa, threads);
    }
  }
  return params;
}

INSTANTIATE_TEST_SUITE_P(AllTypesIsasThreads, QuantMatMulTest, ::testing::ValuesIn(AllParams()),
                         [](const ::testing::TestParamInfo<QuantMatMulTest::ParamType>& info) {
                           return std::string(DTypeName(std::get<0>(info.param))) + "_" +
                                  IsaName(std::get<1>(info.param)) + "_t" +
                                  std::to_string(std::get<2>(info.param));
                         });

// The SIMD kernels of every ISA give the same bits for the integer formats (same int32 lane
// dots, same fp32 operations in the same order), whatever the tile shape an ISA uses and however
// many x rows share a call: a row's result does not depend on the batch it is computed in. On a
// machine with one SIMD level this still checks that level's batch invariance (and
// SimdIsasComputeGgmlsArithmetic below pins its bits to a scalar emulation).
TEST(QuantMatMulTest, SimdIsasAgreeBitExactlyAtEveryBatchSize) {
  std::vector<Isa> simd;
  for (Isa isa : testing::SupportedIsas()) {
    if (isa != Isa::kScalar) simd.push_back(isa);
  }
  ASSERT_FALSE(simd.empty()) << "x86 lorad requires AVX2 for its SIMD kernels";
  uint32_t seed = 100;
  for (DType type :
       {DType::kQ8_0, DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ4_K, DType::kQ6_K}) {
    const int64_t cols = BlockElements(type) == 32 ? 576 : 768;
    for (int64_t rows : {1, 3, 4, 5, 17, 50}) {
      const std::vector<uint8_t> data = RandomMatrix(type, rows, cols, seed++);
      const QuantMatrix w{type, rows, cols, data.data(), RowBytes(type, cols)};
      const int64_t max_m = 11;
      const std::vector<float> x = RandomFloats(static_cast<size_t>(max_m * cols), seed++);
      // Row i of a batch of m must equal the same row computed alone, on every ISA.
      std::vector<float> alone(static_cast<size_t>(max_m * rows));
      {
        ScopedIsa scoped(simd.front());
        for (int64_t i = 0; i < max_m; ++i) {
          QuantMatMul(w, x.data() + i * cols, 1, alone.data() + i * rows, nullptr);
        }
      }
      for (Isa isa : simd) {
        ScopedIsa scoped(isa);
        for (int64_t m : {1, 2, 3, 4, 5, 8, 9, 11}) {
          std::vector<float> y(static_cast<size_t>(m * rows));
          QuantMatMul(w, x.data(), m, y.data(), nullptr);
          for (size_t k = 0; k < y.size(); ++k) {
            ASSERT_EQ(y[k], alone[k]) << DTypeName(type) << " " << IsaName(isa) << " rows=" << rows
                                      << " m=" << m << " at " << k;
          }
        }
      }
    }
  }
}

// ggml's x86 integer dot for the 32-value block formats, emulated one operation at a time
// (independently of the kernels' code): x quantized per block to int8 with d = amax / 127
// (round half to even), d and d * Σq kept as fp16; per block, int32 lane l holds
// Σ_{j<4} w[4l + j] * x[4l + j], and acc_l = fma(float(lane), scale_w * d_x, acc_l); the row is
// ((acc_0 + acc_4) + (acc_2 + acc_6)) + ((acc_1 + acc_5) + (acc_3 + acc_7)) plus the offset
// terms Σ_b min_w * (d_x Σq_x) added in block order.
struct DecodedBlock {
  int32_t q[32];  // the integers the lanes multiply (unsigned for the offset formats)
  float scale;
  float min;  // offset per unit of x, 0 for Q8_0
};

DecodedBlock Decode(DType type, const uint8_t* row, int64_t b) {
  DecodedBlock out{};
  auto nibble = [](const uint8_t* qs, int e) { return e < 16 ? qs[e] & 15 : qs[e - 16] >> 4; };
  switch (type) {
    case DType::kQ8_0: {
      const auto* blk = reinterpret_cast<const quant::BlockQ8_0*>(row) + b;
      for (int e = 0; e < 32; ++e) out.q[e] = blk->qs[e];
      out.scale = Fp16ToFp32(blk->d);
      break;
    }
    case DType::kQ4_0: {
      const auto* blk = reinterpret_cast<const quant::BlockQ4_0*>(row) + b;
      for (int e = 0; e < 32; ++e) out.q[e] = nibble(blk->qs, e);
      out.scale = Fp16ToFp32(blk->d);
      out.min = -8.0f * out.scale;
      break;
    }
    case DType::kQ4_1: {
      const auto* blk = reinterpret_cast<const quant::BlockQ4_1*>(row) + b;
      for (int e = 0; e < 32; ++e) out.q[e] = nibble(blk->qs, e);
      out.scale = Fp16ToFp32(blk->d);
      out.min = Fp16ToFp32(blk->m);
      break;
    }
    case DType::kQ5_0: {
      const auto* blk = reinterpret_cast<const quant::BlockQ5_0*>(row) + b;
      uint32_t qh;
      std::memcpy(&qh, blk->qh, sizeof(qh));
      for (int e = 0; e < 32; ++e) out.q[e] = nibble(blk->qs, e) | (((qh >> e) & 1) << 4);
      out.scale = Fp16ToFp32(blk->d);
      out.min = -16.0f * out.scale;
      break;
    }
    default:
      ADD_FAILURE() << "not a 32-value block format";
  }
  return out;
}

float GgmlDot(DType type, const uint8_t* row, const float* x, int64_t cols) {
  float acc[8] = {};
  float offsets = 0.0f;
  for (int64_t b = 0; b < cols / 32; ++b) {
    const float* xb = x + 32 * b;
    float amax = 0.0f;
    for (int e = 0; e < 32; ++e) amax = std::max(amax, std::fabs(xb[e]));
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int32_t qx[32], sum_q = 0;
    for (int e = 0; e < 32; ++e) {
      qx[e] = static_cast<int32_t>(std::nearbyint(xb[e] * id));
      sum_q += qx[e];
    }
    const float dx = Fp16ToFp32(Fp32ToFp16(d));
    const float sx = Fp16ToFp32(Fp32ToFp16(d * static_cast<float>(sum_q)));
    const DecodedBlock w = Decode(type, row, b);
    for (int l = 0; l < 8; ++l) {
      int32_t lane = 0;
      for (int j = 0; j < 4; ++j) lane += w.q[4 * l + j] * qx[4 * l + j];
      acc[l] = std::fma(static_cast<float>(lane), w.scale * dx, acc[l]);
    }
    offsets += w.min * sx;
  }
  const float v0 = acc[0] + acc[4], v1 = acc[1] + acc[5], v2 = acc[2] + acc[6],
              v3 = acc[3] + acc[7];
  return ((v0 + v2) + (v1 + v3)) + offsets;
}

TEST(QuantMatMulTest, SimdIsasComputeGgmlsArithmetic) {
  uint32_t seed = 300;
  for (Isa isa : testing::SupportedIsas()) {
    if (isa == Isa::kScalar) continue;
    ScopedIsa scoped(isa);
    for (DType type : {DType::kQ8_0, DType::kQ4_0, DType::kQ4_1, DType::kQ5_0}) {
      for (int64_t cols : {32, 576, 1536}) {
        const int64_t rows = 9;
        const std::vector<uint8_t> data = RandomMatrix(type, rows, cols, seed++);
        const QuantMatrix w{type, rows, cols, data.data(), RowBytes(type, cols)};
        for (int64_t m : {1, 4, 11}) {
          const std::vector<float> x = RandomFloats(static_cast<size_t>(m * cols), seed++);
          std::vector<float> y(static_cast<size_t>(m * rows));
          QuantMatMul(w, x.data(), m, y.data(), nullptr);
          for (int64_t i = 0; i < m; ++i) {
            for (int64_t r = 0; r < rows; ++r) {
              ASSERT_EQ(y[i * rows + r],
                        GgmlDot(type, data.data() + r * w.row_bytes, x.data() + i * cols, cols))
                  << DTypeName(type) << " " << IsaName(isa) << " cols=" << cols << " m=" << m
                  << " row " << r << " x " << i;
            }
          }
        }
      }
    }
  }
}

TEST(QuantMatMulTest, ZeroRowsOrZeroMIsANoOp) {
  const std::vector<uint8_t> data = RandomMatrix(DType::kQ4_1, 4, 64, 3);
  const QuantMatrix w{DType::kQ4_1, 4, 64, data.data(), RowBytes(DType::kQ4_1, 64)};
  std::vector<float> y(4, 7.0f);
  const std::vector<float> x = RandomFloats(64, 4);
  QuantMatMul(w, x.data(), 0, y.data(), nullptr);
  EXPECT_EQ(y[0], 7.0f);
}

}  // namespace
}  // namespace lorad::kernels
