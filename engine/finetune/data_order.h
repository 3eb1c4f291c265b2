// The deterministic order in which a run visits its examples: epoch e is a permutation of
// 0..n-1 drawn from (seed, e), and optimizer step s takes positions [s*k, (s+1)*k) of the
// concatenation of epochs (k = examples per step). A resumed run therefore sees exactly the
// examples the uninterrupted run would have.
#pragma once

#include <cstdint>
#include <vector>

namespace lorad::finetune {

// Permutation of [0, n) for `epoch` (0-based) of a run seeded with `seed` (portable:
// SplitMix64 + Fisher-Yates, not the standard library's distributions).
std::vector<int64_t> EpochPermutation(int64_t n, uint64_t seed, int64_t epoch);

struct StepExamples {
  std::vector<int64_t> indices;  // k example indices
  int32_t epoch = 1;             // 1-based epoch of the first one
};

// Examples of optimizer step `step` (0-based), k per step, n in the dataset.
StepExamples ExamplesForStep(int64_t n, int64_t k, uint64_t seed, int64_t step);

}  // namespace lorad::finetune
