#include "engine/kernels/segmented_lora.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "engine/kernels/cpu_isa.h"
#include "engine/kernels/q8_activation.h"
#include "engine/kernels/segmented_lora_kernels.h"

namespace lorad::kernels {
namespace {

// Work units: A rows per shrink unit and outputs per expand unit (a multiple of 8).
constexpr int32_t kShrinkUnitRows = 8;
constexpr int64_t kExpandUnitCols = 64;

struct Unit {
  int32_t segment;
  int64_t begin, end;  // A rows (shrink) or outputs (expand)
};

// Calls fn(u) for every unit, threads taking the next unit as they finish (units differ in
// cost: a segment's tokens multiply its work).
void RunUnits(ThreadPool* pool, const std::vector<Unit>& units,
              const std::function<void(const Unit&)>& fn) {
  const int64_t n = static_cast<int64_t>(units.size());
  if (pool == nullptr || pool->num_threads() == 1 || n <= 1) {
    for (const Unit& u : units) fn(u);
    return;
  }
  std::atomic<int64_t> next{0};
  pool->ParallelFor(std::min<int64_t>(n, pool->num_threads()), [&](int64_t, int64_t) {
    for (int64_t u = next.fetch_add(1); u < n; u = next.fetch_add(1)) fn(units[u]);
  });
}

std::vector<Unit>& UnitScratch() {
  thread_local std::vector<Unit> units;
  units.clear();
  return units;
}

int32_t MaxRank(absl::Span<const LoraSegment> segs) {
  int32_t r = 0;
  for (const LoraSegment& s : segs) r = std::max(r, s.rank);
  return r;
}

}  // namespace

size_t SegmentedLoraWorkspaceBytes(int64_t num_tokens, absl::Span<const LoraSegment> segs) {
  return static_cast<size_t>(num_tokens) * static_cast<size_t>(MaxRank(segs)) * sizeof(float) + 64;
}

void SegmentedLoraShrink(const float* x, int64_t d_in, absl::Span<const LoraSegment> segs,
                         float* tmp, int64_t tmp_ld, ThreadPool* pool) {
  std::vector<Unit>& units = UnitScratch();
  for (size_t i = 0; i < segs.size(); ++i) {
    if (segs[i].token_end <= segs[i].token_begin) continue;
    for (int32_t j = 0; j < segs[i].rank; j += kShrinkUnitRows) {
      units.push_back({static_cast<int32_t>(i), j, std::min(j + kShrinkUnitRows, segs[i].rank)});
    }
  }
  const internal::MatMulKernels& k = internal::ActiveMatMulKernels();
  RunUnits(pool, units, [&](const Unit& u) {
    const LoraSegment& s = segs[u.segment];
    const size_t elt = s.dtype == DType::kF16 ? 2 : 4;
    const QuantMatrix a{s.dtype, s.rank, d_in, s.a, static_cast<size_t>(d_in) * elt};
    // tmp[t, j] = x[t, :] · A[j, :]: a matmul of the segment's tokens against A's rows.
    k.matmul_rows(a, u.begin, u.end, x + s.token_begin * d_in, nullptr, s.token_end - s.token_begin,
                  tmp + s.token_begin * tmp_ld, tmp_ld);
  });
}

void SegmentedLoraExpand(const float* tmp, int64_t tmp_ld, absl::Span<const LoraSegment> segs,
                         float* y, int64_t d_out, ThreadPool* pool) {
  std::vector<Unit>& units = UnitScratch();
  for (size_t i = 0; i < segs.size(); ++i) {
    if (segs[i].token_end <= segs[i].token_begin) continue;
    for (int64_t o = 0; o < d_out; o += kExpandUnitCols) {
      units.push_back({static_cast<int32_t>(i), o, std::min(o + kExpandUnitCols, d_out)});
    }
  }
  const internal::LoraExpandFn expand =
      ActiveIsa() == Isa::kScalar ? internal::LoraExpandScalar : internal::LoraExpandAvx2;
  RunUnits(pool, units,
           [&](const Unit& u) { expand(tmp, tmp_ld, segs[u.segment], u.begin, u.end, y, d_out); });
}

void SegmentedLora(const float* x, int64_t d_in, float* y, int64_t d_out,
                   absl::Span<const LoraSegment> segs, void* workspace, ThreadPool* pool) {
  const int64_t ld = MaxRank(segs);
  if (ld == 0) return;
  const uintptr_t addr = reinterpret_cast<uintptr_t>(workspace);
  float* tmp = reinterpret_cast<float*>((addr + 63) & ~static_cast<uintptr_t>(63));
  SegmentedLoraShrink(x, d_in, segs, tmp, ld, pool);
  SegmentedLoraExpand(tmp, ld, segs, y, d_out, pool);
}

}  // namespace lorad::kernels
