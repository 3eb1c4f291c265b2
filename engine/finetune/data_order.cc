#include "engine/finetune/data_order.h"

#include <algorithm>
#include <utility>

namespace lorad::finetune {
namespace {

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

std::vector<int64_t> EpochPermutation(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> p(n);
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  uint64_t state = seed ^ (0xd1b54a32d192ed03ull * static_cast<uint64_t>(epoch + 1));
  for (int64_t i = n - 1; i > 0; --i) {
    const int64_t j = static_cast<int64_t>(SplitMix64(state) % static_cast<uint64_t>(i + 1));
    std::swap(p[i], p[j]);
  }
  return p;
}

int64_t StepsPerEpoch(int64_t n, int64_t k) {
  n = std::max<int64_t>(n, 1);
  k = std::max<int64_t>(k, 1);
  return (n + k - 1) / k;
}

StepExamples ExamplesForStep(int64_t n, int64_t k, uint64_t seed, int64_t step) {
  StepExamples out;
  if (n <= 0 || k <= 0 || step < 0) return out;
  const int64_t steps_per_epoch = StepsPerEpoch(n, k);
  const int64_t epoch = step / steps_per_epoch;
  const int64_t begin = (step % steps_per_epoch) * k;
  const int64_t end = std::min(n, begin + k);
  const std::vector<int64_t> perm = EpochPermutation(n, seed, epoch);
  out.epoch = static_cast<int32_t>(epoch + 1);
  out.indices.assign(perm.begin() + begin, perm.begin() + end);
  return out;
}

}  // namespace lorad::finetune
