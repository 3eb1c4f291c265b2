// The deterministic order in which a run visits its examples: epoch e is a permutation of
// 0..n-1 drawn from (seed, e), cut into ceil(n/k) optimizer steps of k examples (k = examples per
// step) whose last one is short when k does not divide n. An epoch therefore shows each example
// exactly once, and a step never mixes two epochs. A resumed run sees exactly the examples the
// uninterrupted run would have.
#pragma once

#include <cstdint>
#include <vector>

namespace lorad::finetune {

// Permutation of [0, n) for `epoch` (0-based) of a run seeded with `seed` (portable:
// SplitMix64 + Fisher-Yates, not the standard library's distributions).
std::vector<int64_t> EpochPermutation(int64_t n, uint64_t seed, int64_t epoch);

struct StepExamples {
  std::vector<int64_t> indices;  // k example indices, fewer in an epoch's last step
  int32_t epoch = 1;             // 1-based epoch of the step
};

// Optimizer steps of one pass over n examples, k per step: ceil(n/k), at least 1.
int64_t StepsPerEpoch(int64_t n, int64_t k);

// Examples of optimizer step `step` (0-based), k per step, n in the dataset.
StepExamples ExamplesForStep(int64_t n, int64_t k, uint64_t seed, int64_t step);

}  // namespace lorad::finetune
