// The run's data order: each epoch shows every example exactly once, in ceil(n/k) steps whose
// last one is short, and a step never mixes two epochs.
#include "engine/finetune/data_order.h"

#include <map>
#include <set>

#include "engine/finetune/train_config.h"
#include "gtest/gtest.h"

namespace lorad::finetune {
namespace {

struct Shape {
  int64_t n;
  int64_t k;
};

class DataOrderTest : public ::testing::TestWithParam<Shape> {};

TEST_P(DataOrderTest, EachEpochShowsEveryExampleOnce) {
  const auto [n, k] = GetParam();
  constexpr int64_t kEpochs = 3;
  const int64_t steps = StepsForEpochs(n, k, kEpochs);
  EXPECT_EQ(steps, kEpochs * ((n + k - 1) / k));
  std::map<int32_t, std::multiset<int64_t>> seen_by_epoch;
  for (int64_t step = 0; step < steps; ++step) {
    const StepExamples chosen = ExamplesForStep(n, k, /*seed=*/7, step);
    ASSERT_FALSE(chosen.indices.empty()) << "step " << step;
    ASSERT_LE(static_cast<int64_t>(chosen.indices.size()), k);
    EXPECT_EQ(chosen.epoch, step / StepsPerEpoch(n, k) + 1);
    // Full steps everywhere but at an epoch's end.
    if ((step + 1) % StepsPerEpoch(n, k) != 0) {
      EXPECT_EQ(static_cast<int64_t>(chosen.indices.size()), k);
    }
    seen_by_epoch[chosen.epoch].insert(chosen.indices.begin(), chosen.indices.end());
  }
  ASSERT_EQ(seen_by_epoch.size(), static_cast<size_t>(kEpochs));
  std::multiset<int64_t> all;
  for (int64_t i = 0; i < n; ++i) all.insert(i);
  for (const auto& [epoch, seen] : seen_by_epoch) EXPECT_EQ(seen, all) << "epoch " << epoch;
  // The step after the run starts a fourth epoch.
  EXPECT_EQ(ExamplesForStep(n, k, 7, steps).epoch, kEpochs + 1);
}

INSTANTIATE_TEST_SUITE_P(Shapes, DataOrderTest,
                         ::testing::Values(Shape{3, 8}, Shape{8, 8}, Shape{9, 8}, Shape{17, 8},
                                           Shape{1, 1}, Shape{5, 1}, Shape{100, 7}),
                         [](const auto& info) {
                           return "n" + std::to_string(info.param.n) + "_k" +
                                  std::to_string(info.param.k);
                         });

TEST(DataOrderTest, EpochsAreReshuffledFromTheSeed) {
  EXPECT_EQ(EpochPermutation(50, 1, 0), EpochPermutation(50, 1, 0));
  EXPECT_NE(EpochPermutation(50, 1, 0), EpochPermutation(50, 1, 1));
  EXPECT_NE(EpochPermutation(50, 1, 0), EpochPermutation(50, 2, 0));
}

}  // namespace
}  // namespace lorad::finetune
