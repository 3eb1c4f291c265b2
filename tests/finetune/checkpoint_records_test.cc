#include "engine/finetune/checkpoint_records.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "tests/fixtures/temp_dir.h"

namespace lorad::finetune {
namespace {

void WriteCheckpoint(const lorad::testing::ScopedTempDir& dir, int64_t step,
                     std::optional<float> eval_loss) {
  const std::string path = dir.File(CheckpointName(step));
  std::filesystem::create_directories(path);
  CheckpointRecord r;
  r.step = step;
  r.train_loss = 1.0f / static_cast<float>(step);
  r.tokens_seen = step * 100;
  if (eval_loss.has_value()) r.eval = EvalResult{*eval_loss, 0.5f, 40};
  std::ofstream(path + "/" + kRunRecordFile) << RunRecordJson(r);
}

TEST(CheckpointRecordsTest, NewestFirstLeftoversRemoved) {
  lorad::testing::ScopedTempDir dir;
  for (int step : {4, 12, 8}) WriteCheckpoint(dir, step, std::nullopt);
  std::filesystem::create_directories(dir.File("step-00000016.tmp"));
  std::vector<CheckpointRecord> found = ListCheckpoints(dir.path());
  ASSERT_EQ(found.size(), 3u);
  EXPECT_EQ(found[0].step, 12);
  EXPECT_EQ(found[0].tokens_seen, 1200);
  EXPECT_EQ(found[2].step, 4);
  EXPECT_FALSE(std::filesystem::exists(dir.File("step-00000016.tmp")));
  EXPECT_FALSE(BestCheckpointStep(found).has_value());
  PruneCheckpoints(dir.path(), 2);  // no evaluations: the two newest
  EXPECT_FALSE(std::filesystem::exists(dir.File(CheckpointName(4))));
  EXPECT_TRUE(std::filesystem::exists(dir.File(CheckpointName(8))));
  EXPECT_EQ(CheckpointName(50), "step-00000050");
}

TEST(CheckpointRecordsTest, KeepsTheBestByEvalLossAndTheNewest) {
  lorad::testing::ScopedTempDir dir;
  WriteCheckpoint(dir, 10, 2.0f);
  WriteCheckpoint(dir, 20, 1.0f);  // best
  WriteCheckpoint(dir, 30, 1.5f);  // second best
  WriteCheckpoint(dir, 40, 3.0f);  // newest, worst
  std::vector<CheckpointRecord> found = ListCheckpoints(dir.path());
  ASSERT_EQ(found.size(), 4u);
  ASSERT_TRUE(found[1].eval.has_value());
  EXPECT_FLOAT_EQ(found[1].eval->loss, 1.5f);
  EXPECT_EQ(BestCheckpointStep(found), 20);
  std::vector<int64_t> kept = CheckpointsToKeep(found, 1);
  std::sort(kept.begin(), kept.end());
  EXPECT_EQ(kept, (std::vector<int64_t>{20, 40}));
  PruneCheckpoints(dir.path(), 2);
  EXPECT_FALSE(std::filesystem::exists(dir.File(CheckpointName(10))));
  for (int step : {20, 30, 40})
    EXPECT_TRUE(std::filesystem::exists(dir.File(CheckpointName(step))));
}

TEST(CheckpointRecordsTest, RunRecordRoundTripsAndRejectsGarbage) {
  CheckpointRecord r;
  r.step = 7;
  r.train_loss = 0.25f;
  r.tokens_seen = 900;
  r.eval = EvalResult{1.25f, 0.75f, 33};
  r.best_eval_loss = 1.0f;
  r.evals_without_improvement = 2;
  CheckpointRecord back;
  ASSERT_TRUE(ParseRunRecord(RunRecordJson(r), &back));
  EXPECT_EQ(back.step, 7);
  EXPECT_FLOAT_EQ(back.train_loss, 0.25f);
  ASSERT_TRUE(back.eval.has_value());
  EXPECT_FLOAT_EQ(back.eval->token_accuracy, 0.75f);
  EXPECT_EQ(back.best_eval_loss, 1.0f);
  EXPECT_EQ(back.evals_without_improvement, 2);
  EXPECT_FALSE(ParseRunRecord("{\"step\": \"x\"}", &back));
  EXPECT_FALSE(ParseRunRecord("not json", &back));
}

}  // namespace
}  // namespace lorad::finetune
