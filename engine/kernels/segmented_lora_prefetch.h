// Internal to the kernels: software prefetch for SegmentedLora's weight streams. Each call
// reads many short runs of adapter bytes (one A and one B per segment, each tens of KB, at
// unrelated addresses); the hardware prefetchers restart at every run and page, this does not.
#pragma once

#include <cstdint>

namespace lorad::kernels::internal {

// Software prefetch of the weight bytes a thread is about to stream: the runner queues the
// byte ranges of its next units in the order the kernels read them, the kernels report what
// they consumed, and the stream keeps kDistanceBytes in flight ahead (across ranges, pages and
// adapters, which the hardware prefetchers do not cross). Owned by one thread.
class PrefetchStream {
 public:
  static constexpr int64_t kDistanceBytes = 4096;
  static constexpr int kMaxRanges = 16;

  // Ranges that can still be queued.
  int free_ranges() const { return kMaxRanges - count_; }
  // Queues [p, p + bytes). Requires free_ranges() > 0.
  void Push(const void* p, int64_t bytes) {
    if (bytes <= 0) return;
    const uintptr_t addr = reinterpret_cast<uintptr_t>(p);
    const int64_t skew = static_cast<int64_t>(addr & 63);
    ranges_[(head_ + count_) % kMaxRanges] = {reinterpret_cast<const char*>(addr - skew),
                                              bytes + skew};
    ++count_;
    queued_ += bytes;
  }
  // Bytes queued but not yet reported consumed.
  int64_t queued_ahead() const { return queued_ - consumed_; }
  // `bytes` more were read; issues prefetches up to kDistanceBytes beyond them.
  void Advance(int64_t bytes) {
    consumed_ += bytes;
    while (issued_ < consumed_ + kDistanceBytes && count_ > 0) {
      const Range& r = ranges_[head_];
      __builtin_prefetch(r.p + offset_, /*rw=*/0, /*locality=*/3);
      offset_ += 64;
      issued_ += 64;
      if (offset_ >= r.bytes) {
        head_ = (head_ + 1) % kMaxRanges;
        --count_;
        offset_ = 0;
      }
    }
  }

 private:
  struct Range {
    const char* p;
    int64_t bytes;
  };
  Range ranges_[kMaxRanges];
  int head_ = 0, count_ = 0;
  int64_t offset_ = 0;  // into ranges_[head_]
  int64_t queued_ = 0, consumed_ = 0, issued_ = 0;
};

}  // namespace lorad::kernels::internal
