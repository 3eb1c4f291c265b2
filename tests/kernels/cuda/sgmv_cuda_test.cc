// SGMV / BGMV kernels against a scalar fp64 reference: ranks 1..128 alone and mixed in one
// launch, random segment layouts with empty segments and uncovered tokens, odd sizes, unaligned
// weights, outputs poisoned before each run.
#include "engine/kernels/cuda/sgmv.cuh"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "tests/kernels/cuda/cuda_test_util.h"

namespace lorad::cuda {
namespace {

using testing::DeviceBuffer;
using testing::Download;
using testing::FloatBits;
using testing::FromAct;
using testing::kPoison32;
using testing::OutputEps;
using testing::ToAct;
using testing::Upload;

// One test problem: entries (segments or adapters) and which tokens use them.
struct LoraCase {
  int64_t num_tokens = 0, d_in = 0, d_out = 0;
  int64_t x_pad = 0, y_pad = 0;  // extra row stride of x and y
  bool bgmv = false;
  std::vector<int64_t> seg_start;    // SGMV
  std::vector<int32_t> token_entry;  // BGMV
  std::vector<int32_t> ranks;        // per entry; 0 = no adapter (null weights)
  int32_t max_rank = 0;
  bool misalign_weights = false;  // place A and B at 2-byte (not 16-byte) aligned addresses
};

// Entry used by token t, or -1.
std::vector<int> TokenEntries(const LoraCase& c) {
  std::vector<int> e(c.num_tokens, -1);
  const int n = static_cast<int>(c.ranks.size());
  if (c.bgmv) {
    for (int64_t t = 0; t < c.num_tokens; ++t) {
      const int v = c.token_entry[t];
      e[t] = (v >= 0 && v < n) ? v : -1;
    }
  } else {
    for (int s = 0; s < n; ++s) {
      for (int64_t t = c.seg_start[s]; t < c.seg_start[s + 1]; ++t) e[t] = s;
    }
  }
  return e;
}

void RunCase(DType dtype, const LoraCase& c, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  const int n = static_cast<int>(c.ranks.size());
  const int64_t ldx = c.d_in + c.x_pad, ldy = c.d_out + c.y_pad, ldv = c.max_rank + 1;

  std::vector<uint16_t> x(c.num_tokens * ldx), y0(c.num_tokens * ldy);
  for (auto& v : x) v = ToAct(dtype, uni(rng));
  for (auto& v : y0) v = ToAct(dtype, uni(rng));
  std::vector<std::vector<uint16_t>> a(n), b(n);
  std::vector<float> scales(n);
  for (int e = 0; e < n; ++e) {
    a[e].resize(c.ranks[e] * c.d_in);
    b[e].resize(c.d_out * c.ranks[e]);
    for (auto& v : a[e]) v = ToAct(dtype, uni(rng));
    for (auto& v : b[e]) v = ToAct(dtype, uni(rng));
    scales[e] = (e % 3 == 2 ? -1.0f : 1.0f) * (0.25f + 2.0f * std::fabs(uni(rng)));
  }

  // Weights in one arena, each at a 256-byte boundary (+2 bytes when misaligned).
  std::vector<size_t> a_off(n), b_off(n);
  size_t arena = 0;
  const size_t skew = c.misalign_weights ? 2 : 0;
  for (int e = 0; e < n; ++e) {
    a_off[e] = arena + skew;
    arena = (a_off[e] + a[e].size() * 2 + 255) / 256 * 256;
    b_off[e] = arena + skew;
    arena = (b_off[e] + b[e].size() * 2 + 255) / 256 * 256;
  }
  DeviceBuffer d_arena(arena + 256), d_x(x.size() * 2 + 16), d_y(y0.size() * 2 + 16);
  DeviceBuffer d_v(c.num_tokens * ldv * 4 + 16), d_ptrs(2 * n * sizeof(void*) + 16);
  DeviceBuffer d_ranks(n * 4 + 16), d_scales(n * 4 + 16);
  DeviceBuffer d_map((c.bgmv ? c.token_entry.size() * 4 : c.seg_start.size() * 8) + 16);
  DeviceBuffer d_ws(SgmvWorkspaceBytes(c.num_tokens, c.max_rank) + 16);
  std::vector<const void*> ptrs(2 * n, nullptr);
  for (int e = 0; e < n; ++e) {
    if (c.ranks[e] == 0) continue;
    ASSERT_EQ(cudaMemcpy(d_arena.bytes() + a_off[e], a[e].data(), a[e].size() * 2,
                         cudaMemcpyHostToDevice),
              cudaSuccess);
    ASSERT_EQ(cudaMemcpy(d_arena.bytes() + b_off[e], b[e].data(), b[e].size() * 2,
                         cudaMemcpyHostToDevice),
              cudaSuccess);
    ptrs[e] = d_arena.bytes() + a_off[e];
    ptrs[n + e] = d_arena.bytes() + b_off[e];
  }
  ASSERT_EQ(Upload(d_x.get(), x), cudaSuccess);
  ASSERT_EQ(Upload(d_ptrs.get(), ptrs), cudaSuccess);
  ASSERT_EQ(Upload(d_ranks.get(), c.ranks), cudaSuccess);
  ASSERT_EQ(Upload(d_scales.get(), scales), cudaSuccess);
  ASSERT_EQ(c.bgmv ? Upload(d_map.get(), c.token_entry) : Upload(d_map.get(), c.seg_start),
            cudaSuccess);

  LoraBatch batch;
  if (c.bgmv) {
    batch.token_entry = d_map.get<int32_t>();
  } else {
    batch.seg_start = d_map.get<int64_t>();
  }
  batch.num_entries = n;
  batch.a = d_ptrs.get<const void*>();
  batch.b = d_ptrs.get<const void*>() + n;
  batch.ranks = d_ranks.get<int32_t>();
  batch.scales = d_scales.get<float>();
  batch.max_rank = c.max_rank;

  // Shrink into a poisoned v.
  ASSERT_EQ(cudaMemset(d_v.get(), 0xff, d_v.size()), cudaSuccess);
  ASSERT_EQ(SgmvShrink(dtype, batch, d_x.get(), ldx, c.num_tokens, c.d_in, d_v.get<float>(), ldv,
                       nullptr),
            cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<float> v(c.num_tokens * ldv);
  ASSERT_EQ(Download(&v, d_v.get()), cudaSuccess);

  // Expand into y0.
  ASSERT_EQ(Upload(d_y.get(), y0), cudaSuccess);
  ASSERT_EQ(SgmvExpand(dtype, batch, d_v.get<float>(), ldv, c.num_tokens, c.d_out, d_y.get(), ldy,
                       nullptr),
            cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<uint16_t> y(y0.size());
  ASSERT_EQ(Download(&y, d_y.get()), cudaSuccess);

  // The fused entry point gives the same bits.
  ASSERT_EQ(Upload(d_y.get(), y0), cudaSuccess);
  ASSERT_EQ(cudaMemset(d_ws.get(), 0xff, d_ws.size()), cudaSuccess);
  ASSERT_EQ(Sgmv(dtype, batch, d_x.get(), ldx, c.d_in, d_y.get(), ldy, c.d_out, c.num_tokens,
                 d_ws.get(), d_ws.size(), nullptr),
            cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<uint16_t> y_fused(y0.size());
  ASSERT_EQ(Download(&y_fused, d_y.get()), cudaSuccess);
  EXPECT_EQ(y_fused, y) << "Sgmv() differs from SgmvShrink + SgmvExpand";

  const std::vector<int> entry = TokenEntries(c);
  int v_bad = 0, y_bad = 0;
  std::vector<double> vr(c.max_rank), vmag(c.max_rank);
  for (int64_t t = 0; t < c.num_tokens; ++t) {
    const int e = entry[t];
    const int r = e >= 0 ? c.ranks[e] : 0;
    for (int j = 0; j < r; ++j) {
      double s = 0, mag = 0;
      for (int64_t k = 0; k < c.d_in; ++k) {
        const double p =
            double(FromAct(dtype, x[t * ldx + k])) * FromAct(dtype, a[e][j * c.d_in + k]);
        s += p;
        mag += std::fabs(p);
      }
      vr[j] = s;
      vmag[j] = mag;
      const double got = v[t * ldv + j];
      if (!(std::fabs(got - s) <= 1e-5 * mag + 1e-6) && v_bad++ < 5) {
        ADD_FAILURE() << "v[" << t << ", " << j << "] = " << got << ", want " << s;
      }
    }
    for (int64_t j = r; j < ldv; ++j) {  // never written
      if (FloatBits(v[t * ldv + j]) != kPoison32 && v_bad++ < 5) {
        ADD_FAILURE() << "v[" << t << ", " << j << "] written beyond rank " << r;
      }
    }
    for (int64_t o = 0; o < ldy; ++o) {
      const uint16_t before = y0[t * ldy + o], after = y[t * ldy + o];
      if (r == 0 || o >= c.d_out) {
        if (before != after && y_bad++ < 5) {
          ADD_FAILURE() << "y[" << t << ", " << o << "] changed but is not covered";
        }
        continue;
      }
      double s = 0, mag = 0;
      for (int j = 0; j < r; ++j) {
        const double bj = FromAct(dtype, b[e][o * r + j]);
        s += vr[j] * bj;
        mag += (std::fabs(vr[j]) + 1e-5 * vmag[j]) * std::fabs(bj);
      }
      const double want = FromAct(dtype, before) + double(scales[e]) * s;
      const double got = FromAct(dtype, after);
      const double tol = OutputEps(dtype) * std::fabs(want) +
                         2e-5 * (std::fabs(FromAct(dtype, before)) + std::fabs(scales[e]) * mag) +
                         1e-6;
      if (!(std::fabs(got - want) <= tol) && y_bad++ < 5) {
        ADD_FAILURE() << "y[" << t << ", " << o << "] = " << got << ", want " << want << " (entry "
                      << e << ", rank " << r << ")";
      }
    }
  }
  EXPECT_EQ(v_bad, 0);
  EXPECT_EQ(y_bad, 0);
}

// Random non-decreasing segment starts within [0, num_tokens]: empty segments, leading and
// trailing uncovered tokens and multi-tile segments all occur.
std::vector<int64_t> RandomSegments(std::mt19937& rng, int64_t num_tokens, int num_segments) {
  std::uniform_int_distribution<int64_t> pos(0, num_tokens);
  std::vector<int64_t> s(num_segments + 1);
  for (auto& v : s) v = pos(rng);
  std::sort(s.begin(), s.end());
  if (rng() % 2) s.front() = 0;
  if (rng() % 2) s.back() = num_tokens;
  return s;
}

LoraCase RandomCase(std::mt19937& rng, bool bgmv, int64_t d_in, int64_t d_out,
                    const std::vector<int32_t>& ranks, int32_t max_rank) {
  LoraCase c;
  c.bgmv = bgmv;
  c.d_in = d_in;
  c.d_out = d_out;
  c.num_tokens = 1 + rng() % 90;
  c.ranks = ranks;
  c.max_rank = max_rank;
  const int n = static_cast<int>(ranks.size());
  if (bgmv) {
    std::uniform_int_distribution<int> pick(-1, n);  // -1 and n: no adapter
    c.token_entry.resize(c.num_tokens);
    for (auto& e : c.token_entry) e = pick(rng);
  } else {
    c.seg_start = RandomSegments(rng, c.num_tokens, n);
  }
  return c;
}

struct Shape {
  int64_t d_in, d_out, x_pad, y_pad;
};
// Vector path (d_in, ldx multiples of 8), scalar path (odd sizes), and a model-sized shape.
const Shape kShapes[] = {{256, 200, 0, 3}, {67, 45, 5, 1}, {4096, 4096, 0, 0}};

class SgmvCudaTest : public ::testing::TestWithParam<std::tuple<DType, bool>> {
 protected:
  void SetUp() override { LORAD_SKIP_WITHOUT_CUDA(); }
  DType dtype() const { return std::get<0>(GetParam()); }
  bool bgmv() const { return std::get<1>(GetParam()); }
};

TEST_P(SgmvCudaTest, EveryRankAloneMatchesReference) {
  std::mt19937 rng(7);
  for (int32_t rank : {1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 96, 127, 128}) {
    for (const Shape& shape : kShapes) {
      if (shape.d_in == 4096 && rank != 16 && rank != 128) continue;  // keep the CPU side quick
      const int n = 1 + rng() % 6;
      LoraCase c =
          RandomCase(rng, bgmv(), shape.d_in, shape.d_out, std::vector<int32_t>(n, rank), rank);
      c.x_pad = shape.x_pad;
      c.y_pad = shape.y_pad;
      SCOPED_TRACE("rank " + std::to_string(rank) + " d_in " + std::to_string(shape.d_in));
      RunCase(dtype(), c, rng());
      if (HasFatalFailure()) return;
    }
  }
}

TEST_P(SgmvCudaTest, MixedRanksInOneLaunch) {
  std::mt19937 rng(11);
  for (int iter = 0; iter < 12; ++iter) {
    const Shape& shape = kShapes[iter % 2];
    const int n = 1 + rng() % 12;
    std::vector<int32_t> ranks(n);
    for (auto& r : ranks) r = rng() % 5 == 0 ? 0 : 1 + rng() % 128;  // some entries unused
    ranks[rng() % n] = 128;
    LoraCase c = RandomCase(rng, bgmv(), shape.d_in, shape.d_out, ranks, 128);
    c.x_pad = shape.x_pad;
    c.y_pad = shape.y_pad;
    c.misalign_weights = iter % 3 == 1;
    SCOPED_TRACE("iteration " + std::to_string(iter));
    RunCase(dtype(), c, rng());
    if (HasFatalFailure()) return;
  }
}

TEST_P(SgmvCudaTest, LongSegmentsAndLooseMaxRank) {
  std::mt19937 rng(13);
  LoraCase c = RandomCase(rng, bgmv(), 256, 136, {16, 5, 64}, 100);  // max_rank > every rank
  c.num_tokens = 150;
  if (bgmv()) {
    c.token_entry.assign(150, 0);
    for (int t = 0; t < 150; ++t) c.token_entry[t] = (t * 7) % 4 - 1;
  } else {
    c.seg_start = {3, 3, 120, 149};  // 117 tokens in one segment (15 tiles)
  }
  RunCase(dtype(), c, 99);
}

INSTANTIATE_TEST_SUITE_P(DTypes, SgmvCudaTest,
                         ::testing::Combine(::testing::Values(DType::kF16, DType::kBF16),
                                            ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(DTypeName(std::get<0>(info.param))) +
                                  (std::get<1>(info.param) ? "_Bgmv" : "_Sgmv");
                         });

// Argument checks return before any CUDA call, so these run without a device.
TEST(SgmvArgsTest, RejectsBadArguments) {
  int64_t seg[2] = {0, 1};
  int32_t tok[1] = {0};
  LoraBatch b;
  b.seg_start = seg;  // host pointers are fine: nothing is launched
  b.num_entries = 1;
  const void* ptrs[1] = {nullptr};
  int32_t ranks[1] = {4};
  float scales[1] = {1.0f};
  b.a = ptrs;
  b.b = ptrs;
  b.ranks = ranks;
  b.scales = scales;
  b.max_rank = 4;
  alignas(16) float v[8];
  alignas(16) uint16_t x[8];
  EXPECT_EQ(SgmvShrink(DType::kF32, b, x, 8, 1, 8, v, 8, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(SgmvShrink(DType::kF16, b, x, 4, 1, 8, v, 8, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(SgmvShrink(DType::kF16, b, x, 8, 1, 8, v, 3, nullptr), cudaErrorInvalidValue);
  LoraBatch both = b;
  both.token_entry = tok;
  EXPECT_EQ(SgmvShrink(DType::kF16, both, x, 8, 1, 8, v, 8, nullptr), cudaErrorInvalidValue);
  LoraBatch big = b;
  big.max_rank = kLoraMaxRank + 1;
  EXPECT_EQ(SgmvShrink(DType::kF16, big, x, 8, 1, 8, v, 1024, nullptr), cudaErrorInvalidValue);
  LoraBatch no_scales = b;
  no_scales.scales = nullptr;
  EXPECT_EQ(SgmvExpand(DType::kBF16, no_scales, v, 8, 1, 8, x, 8, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(Sgmv(DType::kF16, b, x, 8, 8, x, 8, 8, 1, v, SgmvWorkspaceBytes(1, 4) - 1, nullptr),
            cudaErrorInvalidValue);
  // Nothing to do is success without a launch.
  EXPECT_EQ(SgmvShrink(DType::kF16, b, nullptr, 8, 0, 8, nullptr, 8, nullptr), cudaSuccess);
  EXPECT_EQ(SgmvWorkspaceBytes(0, 16), 0u);
  EXPECT_GE(SgmvWorkspaceBytes(64, 16), 64u * 16 * 4);
}

}  // namespace
}  // namespace lorad::cuda
