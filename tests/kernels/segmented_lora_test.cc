#include "engine/kernels/segmented_lora.h"

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "engine/base/half.h"
#include "gtest/gtest.h"
#include "tests/kernels/kernel_test_util.h"

namespace lorad::kernels {
namespace {

using testing::RandomFloats;
using testing::ScopedIsa;

// Adapter weights in their storage dtype.
struct Adapter {
  std::vector<float> a32, b32;
  std::vector<uint16_t> a16, b16;
  LoraSegment Segment(int64_t begin, int64_t end, int32_t rank, DType dtype) const {
    const bool f16 = dtype == DType::kF16;
    return {begin,
            end,
            rank,
            2.0f / rank,
            dtype,
            f16 ? static_cast<const void*>(a16.data()) : a32.data(),
            f16 ? static_cast<const void*>(b16.data()) : b32.data()};
  }
};

Adapter MakeAdapter(int32_t rank, int64_t d_in, int64_t d_out, uint32_t seed) {
  Adapter ad;
  ad.a32 = RandomFloats(static_cast<size_t>(rank * d_in), seed, -0.2f, 0.2f);
  ad.b32 = RandomFloats(static_cast<size_t>(d_out * rank), seed + 1, -0.2f, 0.2f);
  for (float f : ad.a32) ad.a16.push_back(Fp32ToFp16(f));
  for (float f : ad.b32) ad.b16.push_back(Fp32ToFp16(f));
  return ad;
}

// A random layout over n tokens: base-only gaps, empty segments, mixed ranks and dtypes.
struct Batch {
  std::vector<Adapter> adapters;  // one per segment (owns the weights)
  std::vector<LoraSegment> segs;
};

Batch RandomBatch(int64_t n, int64_t d_in, int64_t d_out, const std::vector<int32_t>& ranks,
                  int dtype_mode /*0 f32, 1 f16, 2 mixed*/, uint32_t seed) {
  std::mt19937 rng(seed);
  Batch batch;
  batch.adapters.reserve(static_cast<size_t>(n) + 8);
  int64_t t = 0;
  while (t < n) {
    t += std::uniform_int_distribution<int64_t>(0, 2)(rng);  // base-only tokens
    const int64_t len =
        std::min<int64_t>(n - std::min(t, n), std::uniform_int_distribution<int64_t>(0, 9)(rng));
    const int32_t rank = ranks[std::uniform_int_distribution<size_t>(0, ranks.size() - 1)(rng)];
    const DType dtype = dtype_mode == 0   ? DType::kF32
                        : dtype_mode == 1 ? DType::kF16
                                          : (rng() % 2 ? DType::kF16 : DType::kF32);
    batch.adapters.push_back(MakeAdapter(rank, d_in, d_out, static_cast<uint32_t>(rng())));
    const int64_t begin = std::min(t, n);
    batch.segs.push_back(batch.adapters.back().Segment(begin, begin + len, rank, dtype));
    t = begin + len;
  }
  return batch;
}

void ExpectClose(const std::vector<float>& got, const std::vector<float>& want,
                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], 2e-5f * (1.0f + std::fabs(want[i]))) << what << " i=" << i;
  }
}

class SegmentedLoraTest : public ::testing::TestWithParam<std::tuple<Isa, int, int>> {};

TEST_P(SegmentedLoraTest, MatchesReferenceAtEveryRank) {
  const auto [isa, threads, dtype_mode] = GetParam();
  ScopedIsa scoped(isa);
  std::unique_ptr<ThreadPool> pool = threads > 0 ? std::make_unique<ThreadPool>(threads) : nullptr;
  uint32_t seed = 100;
  for (int32_t rank : {1, 4, 8, 16, 32, 64, 128}) {
    for (auto [n, d_in, d_out] : {std::tuple<int64_t, int64_t, int64_t>{1, 576, 576},
                                  {5, 33, 13},
                                  {37, 64, 200},
                                  {64, 576, 192}}) {
      Batch batch = RandomBatch(n, d_in, d_out, {rank}, dtype_mode, seed++);
      const std::vector<float> x = RandomFloats(static_cast<size_t>(n * d_in), seed++);
      std::vector<float> y = RandomFloats(static_cast<size_t>(n * d_out), seed++);
      std::vector<float> want = y;
      std::vector<uint8_t> ws(SegmentedLoraWorkspaceBytes(n, batch.segs));
      SegmentedLora(x.data(), d_in, y.data(), d_out, batch.segs, ws.data(), pool.get());
      SegmentedLoraReference(x.data(), d_in, want.data(), d_out, batch.segs, nullptr, nullptr);
      ExpectClose(y, want, "rank " + std::to_string(rank) + " n " + std::to_string(n));
    }
  }
}

TEST_P(SegmentedLoraTest, MixedRanksRandomLayouts) {
  const auto [isa, threads, dtype_mode] = GetParam();
  ScopedIsa scoped(isa);
  std::unique_ptr<ThreadPool> pool = threads > 0 ? std::make_unique<ThreadPool>(threads) : nullptr;
  for (uint32_t trial = 0; trial < 12; ++trial) {
    const int64_t n = 1 + trial * 7, d_in = 40 + trial * 9, d_out = 24 + trial * 13;
    Batch batch =
        RandomBatch(n, d_in, d_out, {1, 3, 4, 8, 16, 17, 32, 64, 128}, dtype_mode, 1000 + trial);
    const std::vector<float> x = RandomFloats(static_cast<size_t>(n * d_in), 2000 + trial);
    std::vector<float> y = RandomFloats(static_cast<size_t>(n * d_out), 3000 + trial);
    std::vector<float> want = y;
    std::vector<uint8_t> ws(SegmentedLoraWorkspaceBytes(n, batch.segs) + 3);
    // Deliberately misaligned workspace.
    SegmentedLora(x.data(), d_in, y.data(), d_out, batch.segs, ws.data() + 3, pool.get());
    SegmentedLoraReference(x.data(), d_in, want.data(), d_out, batch.segs, nullptr, nullptr);
    ExpectClose(y, want, "trial " + std::to_string(trial));
  }
}

TEST_P(SegmentedLoraTest, ShrinkAndExpandWithWideIntermediate) {
  const auto [isa, threads, dtype_mode] = GetParam();
  ScopedIsa scoped(isa);
  std::unique_ptr<ThreadPool> pool = threads > 0 ? std::make_unique<ThreadPool>(threads) : nullptr;
  const int64_t n = 20, d_in = 96, d_out = 72, ld = 150;
  Batch batch = RandomBatch(n, d_in, d_out, {2, 16, 64}, dtype_mode, 7);
  const std::vector<float> x = RandomFloats(static_cast<size_t>(n * d_in), 8);
  std::vector<float> y = RandomFloats(static_cast<size_t>(n * d_out), 9), want = y;
  std::vector<float> tmp(static_cast<size_t>(n * ld), 12345.0f);
  SegmentedLoraShrink(x.data(), d_in, batch.segs, tmp.data(), ld, pool.get());
  SegmentedLoraExpand(tmp.data(), ld, batch.segs, y.data(), d_out, pool.get());
  SegmentedLoraReference(x.data(), d_in, want.data(), d_out, batch.segs, nullptr, nullptr);
  ExpectClose(y, want, "shrink+expand");
}

// Layouts the scheduler produces for a decode step at SmolLM2 shapes: many 1-token segments
// (distinct adapters), a few multi-token segments (shared adapters; 1-3 segments are split
// across threads), a long segment (prefill), and odd ranks, sizes and gaps.
TEST_P(SegmentedLoraTest, DecodeAndSharedLayouts) {
  const auto [isa, threads, dtype_mode] = GetParam();
  ScopedIsa scoped(isa);
  std::unique_ptr<ThreadPool> pool = threads > 0 ? std::make_unique<ThreadPool>(threads) : nullptr;
  struct Case {
    const char* name;
    int64_t d_in, d_out;
    std::vector<int64_t> lengths;  // per segment; negative = that many base-only tokens
    std::vector<int32_t> ranks;    // cycled over the segments
  };
  const std::vector<Case> cases = {
      {"32 distinct", 576, 1536, std::vector<int64_t>(32, 1), {16}},
      {"4 shared", 576, 192, {8, 8, 8, 8}, {16}},
      {"1 shared", 1536, 576, {32}, {16}},
      {"2 shared", 576, 576, {16, 16}, {16, 8}},
      {"3 uneven", 200, 333, {5, 11, 16}, {16, 24, 3}},
      {"many + gaps",
       72,
       50,
       {1, -1, 1, 1, 0, 1, -2, 3, 1, 1, 1, 2, 1, 0, 1, 1, 1, 1, 5, 1},
       {1, 2, 16, 17, 33}},
      {"long split", 100, 70, {70}, {24}},
      {"rank 128 shared", 64, 47, {6, 7}, {128, 65}},
  };
  uint32_t seed = 5000;
  for (const Case& c : cases) {
    Batch batch;
    batch.adapters.reserve(c.lengths.size());
    int64_t t = 0;
    for (size_t i = 0; i < c.lengths.size(); ++i) {
      if (c.lengths[i] < 0) {
        t -= c.lengths[i];
        continue;
      }
      const int32_t rank = c.ranks[i % c.ranks.size()];
      const DType dtype = dtype_mode == 0   ? DType::kF32
                          : dtype_mode == 1 ? DType::kF16
                                            : (i % 2 ? DType::kF16 : DType::kF32);
      batch.adapters.push_back(MakeAdapter(rank, c.d_in, c.d_out, seed++));
      batch.segs.push_back(batch.adapters.back().Segment(t, t + c.lengths[i], rank, dtype));
      t += c.lengths[i];
    }
    const int64_t n = t + 1;  // one trailing base-only token
    const std::vector<float> x = RandomFloats(static_cast<size_t>(n * c.d_in), seed++);
    std::vector<float> y = RandomFloats(static_cast<size_t>(n * c.d_out), seed++);
    std::vector<float> want = y;
    std::vector<uint8_t> ws(SegmentedLoraWorkspaceBytes(n, batch.segs));
    for (int call = 0; call < 2; ++call) {  // twice: reused scratch must not leak between calls
      SegmentedLora(x.data(), c.d_in, y.data(), c.d_out, batch.segs, ws.data(), pool.get());
      SegmentedLoraReference(x.data(), c.d_in, want.data(), c.d_out, batch.segs, nullptr, nullptr);
    }
    ExpectClose(y, want, c.name);
  }
}

std::vector<std::tuple<Isa, int, int>> LoraParams() {
  std::vector<std::tuple<Isa, int, int>> params;
  for (Isa isa : testing::SupportedIsas()) {
    for (int threads : {0, 1, 2}) {
      for (int dtype_mode : {0, 1, 2}) params.emplace_back(isa, threads, dtype_mode);
    }
  }
  return params;
}

std::string LoraParamName(const ::testing::TestParamInfo<SegmentedLoraTest::ParamType>& info) {
  const char* const modes[] = {"f32", "f16", "mixed"};
  return std::string(IsaName(std::get<0>(info.param))) + "_t" +
         std::to_string(std::get<1>(info.param)) + "_" + modes[std::get<2>(info.param)];
}

INSTANTIATE_TEST_SUITE_P(IsasThreadsDtypes, SegmentedLoraTest, ::testing::ValuesIn(LoraParams()),
                         LoraParamName);

TEST(SegmentedLoraTest, NoSegmentsLeavesYUntouched) {
  std::vector<float> y(10, 3.0f);
  const std::vector<float> x(10, 1.0f);
  SegmentedLora(x.data(), 5, y.data(), 5, {}, nullptr, nullptr);
  EXPECT_EQ(y, std::vector<float>(10, 3.0f));
}

}  // namespace
}  // namespace lorad::kernels
