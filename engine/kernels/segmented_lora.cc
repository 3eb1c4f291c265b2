#include "engine/kernels/segmented_lora.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "engine/kernels/cpu_isa.h"
#include "engine/kernels/q8_activation.h"
#include "engine/kernels/segmented_lora_kernels.h"

namespace lorad::kernels {
namespace {

// A piece of one segment's work.
struct Unit {
  enum Kind : int32_t { kFused, kShrink, kExpand };
  Kind kind;
  int32_t segment;
  int64_t begin, end;  // A rows (kShrink) or outputs (kFused, kExpand)
  // kFused only: the segment's tokens this unit covers (a long segment is cut by tokens).
  int64_t token_begin = 0, token_end = 0;
};

// Relative cost of a segment: its weight bytes plus its multiply-adds (a 16-lane FMA streams
// about as fast as 4 bytes arrive from memory on one core).
double Cost(const LoraSegment& s, int64_t d_in, int64_t d_out) {
  const double elt = s.dtype == DType::kF16 ? 2.0 : 4.0;
  const double tokens = static_cast<double>(s.token_end - s.token_begin);
  return static_cast<double>(s.rank) * static_cast<double>(d_in + d_out) * (elt + 0.25 * tokens);
}

// How many pieces a segment of `cost` out of `total` is cut into so that `threads` threads
// stay busy: segments above 1 / (2 · threads) of the work are split; the rest run whole, in
// one call per segment (the shrink feeding straight into the expand).
int64_t Pieces(double cost, double total, int threads) {
  if (threads <= 1 || total <= 0.0) return 1;
  const double share = cost * 2.0 * threads / total;
  return std::max<int64_t>(1, static_cast<int64_t>(share + 0.999));
}

// A segment of at least 2 · kMinSplitTokens tokens that needs splitting is cut by tokens into
// pieces of at least kMinSplitTokens (a full 4-token tile).
constexpr int64_t kMinSplitTokens = 4;

// What every unit of one call reads and writes.
struct Call {
  const std::vector<Unit>* units;
  const float* x;
  int64_t d_in;
  float* y;
  int64_t d_out;
  absl::Span<const LoraSegment> segs;
  float* tmp;
  int64_t ld;

  // Queues the weight bytes unit `u` reads, in the order its kernels read them (at most two
  // ranges).
  void Queue(const Unit& u, internal::PrefetchStream& pf) const {
    const LoraSegment& s = segs[u.segment];
    const int64_t elt = s.dtype == DType::kF16 ? 2 : 4;
    const char* b_rows = static_cast<const char*>(s.b) + u.begin * s.rank * elt;
    switch (u.kind) {
      case Unit::kFused:
        pf.Push(s.a, s.rank * d_in * elt);
        pf.Push(b_rows, (u.end - u.begin) * s.rank * elt);
        break;
      case Unit::kShrink:
        pf.Push(static_cast<const char*>(s.a) + u.begin * d_in * elt,
                (u.end - u.begin) * d_in * elt);
        break;
      case Unit::kExpand:
        pf.Push(b_rows, (u.end - u.begin) * s.rank * elt);
        break;
    }
  }

  void Run(int64_t begin, int64_t end) const {
    const internal::LoraKernels& k = internal::ActiveLoraKernels();
    internal::PrefetchStream pf;
    int64_t queued = begin;  // units [begin, queued) are in pf
    for (int64_t i = begin; i < end; ++i) {
      // Keep the stream fed: this unit, and the next ones until kDistanceBytes are queued.
      // (Queueing the next unit even when this one is larger than that measured slower.)
      while (queued < end && pf.free_ranges() >= 2 &&
             (queued <= i || pf.queued_ahead() < pf.kDistanceBytes)) {
        Queue((*units)[queued++], pf);
      }
      const Unit& u = (*units)[i];
      const LoraSegment& s = segs[u.segment];
      switch (u.kind) {
        case Unit::kFused: {
          LoraSegment part = s;
          part.token_begin = u.token_begin;
          part.token_end = u.token_end;
          k.shrink(x, d_in, part, 0, s.rank, tmp, ld, &pf);
          k.expand(tmp, ld, part, u.begin, u.end, y, d_out, &pf);
          break;
        }
        case Unit::kShrink:
          k.shrink(x, d_in, s, static_cast<int32_t>(u.begin), static_cast<int32_t>(u.end), tmp, ld,
                   &pf);
          break;
        case Unit::kExpand:
          k.expand(tmp, ld, s, u.begin, u.end, y, d_out, &pf);
          break;
      }
    }
  }
};

// Runs all units of `call` over the pool: contiguous ranges, claimed dynamically by the threads.
void RunUnits(ThreadPool* pool, const Call& call) {
  const int64_t n = static_cast<int64_t>(call.units->size());
  if (pool == nullptr || pool->num_threads() == 1 || n <= 1) return call.Run(0, n);
  // One captured pointer: the std::function holds it without allocating.
  pool->ParallelFor(n, [&call](int64_t begin, int64_t end) { call.Run(begin, end); });
}

// Appends the shrink units (A rows in blocks of 4) and/or expand units (outputs in blocks of
// 16) that cut segment `i` into about `pieces` parts.
void AddShrinkUnits(int32_t i, int32_t rank, int64_t pieces, std::vector<Unit>& units) {
  const int32_t rows =
      static_cast<int32_t>(std::max<int64_t>(4, (rank + 4 * pieces - 1) / (4 * pieces) * 4));
  for (int32_t j = 0; j < rank; j += rows) {
    units.push_back({Unit::kShrink, i, j, std::min(j + rows, rank)});
  }
}

void AddExpandUnits(int32_t i, int64_t d_out, int64_t pieces, std::vector<Unit>& units) {
  const int64_t cols = std::max<int64_t>(16, (d_out + 16 * pieces - 1) / (16 * pieces) * 16);
  for (int64_t o = 0; o < d_out; o += cols) {
    units.push_back({Unit::kExpand, i, o, std::min(o + cols, d_out)});
  }
}

double TotalCost(absl::Span<const LoraSegment> segs, int64_t d_in, int64_t d_out) {
  double total = 0.0;
  for (const LoraSegment& s : segs) {
    if (s.token_end > s.token_begin) total += Cost(s, d_in, d_out);
  }
  return total;
}

int Threads(const ThreadPool* pool) { return pool == nullptr ? 1 : pool->num_threads(); }

// Per-thread unit lists, reused across calls (no allocation once grown).
std::vector<Unit>& Scratch(int which) {
  thread_local std::vector<Unit> units[2];
  units[which].clear();
  return units[which];
}

int32_t MaxRank(absl::Span<const LoraSegment> segs) {
  int32_t r = 0;
  for (const LoraSegment& s : segs) r = std::max(r, s.rank);
  return r;
}

}  // namespace

const internal::LoraKernels& internal::ActiveLoraKernels() {
  static constexpr LoraKernels kScalar{LoraShrinkMatMul, LoraExpandScalar};
  static constexpr LoraKernels kAvx2{LoraShrinkMatMul, LoraExpandAvx2};
  static constexpr LoraKernels kAvx512{LoraShrinkAvx512, LoraExpandAvx512};
  switch (ActiveIsa()) {
    case Isa::kScalar:
      return kScalar;
    case Isa::kAvx2:
    case Isa::kAvxVnni:
      return kAvx2;
    case Isa::kAvx512:
      return kAvx512;
  }
  return kScalar;
}

void internal::LoraShrinkMatMul(const float* x, int64_t d_in, const LoraSegment& s, int32_t j_begin,
                                int32_t j_end, float* tmp, int64_t ld, PrefetchStream* /*pf*/) {
  const size_t elt = s.dtype == DType::kF16 ? 2 : 4;
  const QuantMatrix a{s.dtype, s.rank, d_in, s.a, static_cast<size_t>(d_in) * elt};
  // tmp[t, j] = x[t, :] · A[j, :]: a matmul of the segment's tokens against A's rows.
  ActiveMatMulKernels().matmul_rows(a, j_begin, j_end, x + s.token_begin * d_in, nullptr,
                                    s.token_end - s.token_begin, tmp + s.token_begin * ld, ld);
}

size_t SegmentedLoraWorkspaceBytes(int64_t num_tokens, absl::Span<const LoraSegment> segs) {
  return static_cast<size_t>(num_tokens) * static_cast<size_t>(MaxRank(segs)) * sizeof(float) + 64;
}

void SegmentedLoraShrink(const float* x, int64_t d_in, absl::Span<const LoraSegment> segs,
                         float* tmp, int64_t tmp_ld, ThreadPool* pool) {
  const double total = TotalCost(segs, d_in, 0);
  std::vector<Unit>& units = Scratch(0);
  for (size_t i = 0; i < segs.size(); ++i) {
    const LoraSegment& s = segs[i];
    if (s.token_end <= s.token_begin) continue;
    AddShrinkUnits(static_cast<int32_t>(i), s.rank, Pieces(Cost(s, d_in, 0), total, Threads(pool)),
                   units);
  }
  RunUnits(pool, Call{&units, x, d_in, nullptr, 0, segs, tmp, tmp_ld});
}

void SegmentedLoraExpand(const float* tmp, int64_t tmp_ld, absl::Span<const LoraSegment> segs,
                         float* y, int64_t d_out, ThreadPool* pool) {
  const double total = TotalCost(segs, 0, d_out);
  std::vector<Unit>& units = Scratch(0);
  for (size_t i = 0; i < segs.size(); ++i) {
    const LoraSegment& s = segs[i];
    if (s.token_end <= s.token_begin) continue;
    AddExpandUnits(static_cast<int32_t>(i), d_out, Pieces(Cost(s, 0, d_out), total, Threads(pool)),
                   units);
  }
  RunUnits(pool, Call{&units, nullptr, 0, y, d_out, segs, const_cast<float*>(tmp), tmp_ld});
}

void SegmentedLora(const float* x, int64_t d_in, float* y, int64_t d_out,
                   absl::Span<const LoraSegment> segs, void* workspace, ThreadPool* pool) {
  const int64_t ld = MaxRank(segs);
  if (ld == 0) return;
  const uintptr_t addr = reinterpret_cast<uintptr_t>(workspace);
  float* tmp = reinterpret_cast<float*>((addr + 63) & ~static_cast<uintptr_t>(63));
  // Small segments run whole (one unit: shrink then expand, no barrier between them). Large
  // ones with many tokens (compute-bound) are cut by tokens, each piece run whole (its weights
  // read once per piece); large ones with few tokens (bandwidth-bound) are cut into shrink
  // units, run first, and expand units.
  const double total = TotalCost(segs, d_in, d_out);
  std::vector<Unit>& first = Scratch(0);
  std::vector<Unit>& units = Scratch(1);
  for (size_t i = 0; i < segs.size(); ++i) {
    const LoraSegment& s = segs[i];
    if (s.token_end <= s.token_begin) continue;
    const int32_t seg = static_cast<int32_t>(i);
    const int64_t pieces = Pieces(Cost(s, d_in, d_out), total, Threads(pool));
    const int64_t tokens = s.token_end - s.token_begin;
    if (pieces == 1 || tokens >= 2 * kMinSplitTokens) {
      // One piece per thread at most: every piece widens and transposes all of B again.
      const int64_t parts =
          pieces == 1 ? 1 : std::min<int64_t>({pieces, Threads(pool), tokens / kMinSplitTokens});
      for (int64_t p = 0; p < parts; ++p) {
        units.push_back({Unit::kFused, seg, 0, d_out, s.token_begin + tokens * p / parts,
                         s.token_begin + tokens * (p + 1) / parts});
      }
    } else {
      AddShrinkUnits(seg, s.rank, pieces, first);
      AddExpandUnits(seg, d_out, pieces, units);
    }
  }
  if (!first.empty()) RunUnits(pool, Call{&first, x, d_in, y, d_out, segs, tmp, ld});
  RunUnits(pool, Call{&units, x, d_in, y, d_out, segs, tmp, ld});
}

}  // namespace lorad::kernels
