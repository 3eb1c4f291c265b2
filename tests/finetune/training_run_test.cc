// RunTraining on the tiny model: an evaluation set whose loss falls with the training loss,
// early stopping that stops and keeps the best checkpoint, a warm start whose first loss is the
// base adapter's loss, resuming from a checkpoint after an interruption, the validation split,
// and the warm-start conversion of loaded adapter weights.
#include "engine/finetune/training_run.h"

#include <atomic>
#include <filesystem>

#include "gmock/gmock.h"
#include "tests/finetune/finetune_test_util.h"

namespace lorad::finetune {
namespace {

using testing::AllTargetsConfig;
using testing::LoadTinyModel;
using testing::RandomLora;

// Prompts differ, the completion is always the same 3 tokens: a held-out prompt's completion
// is learnable from the others.
std::vector<TrainExample> SharedCompletion(int count, int first_prompt_token) {
  std::vector<TrainExample> out;
  for (int i = 0; i < count; ++i) {
    TrainExample e;
    e.tokens = {1, first_prompt_token + i, first_prompt_token + i + 1, 40, 41, 42, 2};
    e.target = {0, 0, 0, 1, 1, 1, 1};
    e.line = i + 1;
    out.push_back(e);
  }
  return out;
}

// Records what the run reported.
struct Recorder final : TrainingRunListener {
  void OnStart(int64_t step) override { start_step = step; }
  void OnProgress(const RunProgress& p) override {
    steps.push_back(p.step);
    tokens_seen.push_back(p.tokens_seen);
    if (p.eval.has_value()) evals.emplace_back(p.step.step, *p.eval);
    if (on_progress) on_progress(p);
  }
  void OnCheckpoint(const CheckpointRecord& r) override { checkpoints.push_back(r.step); }
  int64_t start_step = -1;
  std::vector<StepResult> steps;
  std::vector<int64_t> tokens_seen;
  std::vector<std::pair<int64_t, EvalResult>> evals;
  std::vector<int64_t> checkpoints;
  std::function<void(const RunProgress&)> on_progress;
};

TEST(TrainingRunTest, EvalLossFallsWhileTrainingLossFalls) {
  lorad::testing::ScopedTempDir dir;
  auto w = LoadTinyModel(dir, DType::kQ4_1);
  LoraTrainConfig c = AllTargetsConfig(8, 30);
  c.learning_rate = 1e-2f;
  c.batch_size = 4;
  TrainingRunOptions options;
  options.checkpoints_dir = dir.File("ckpt");
  options.checkpoint_every_steps = 10;
  options.eval_every_steps = 5;
  Recorder rec;
  TrainingRunResult r = RunTraining(*w, c, SharedCompletion(8, 100), SharedCompletion(3, 200),
                                    nullptr, options, &rec);
  ASSERT_EQ(r.outcome, TrainingRunResult::Outcome::kFinished) << r.error;
  ASSERT_EQ(rec.steps.size(), 30u);
  ASSERT_EQ(rec.evals.size(), 6u);  // steps 5, 10, ..., 30
  EXPECT_EQ(rec.evals.front().first, 5);
  // The held-out loss before any training: the base model's (B starts at zero).
  const std::vector<TrainExample> eval = SharedCompletion(3, 200);
  auto untrained = LoraTrainer::Create(*w, c, SharedCompletion(8, 100), nullptr);
  ASSERT_TRUE(untrained.ok());
  absl::StatusOr<EvalResult> before = (*untrained)->Evaluate(eval);
  ASSERT_TRUE(before.ok());
  EXPECT_LT(rec.steps.back().loss, 0.5f * rec.steps.front().loss);
  EXPECT_LT(rec.evals.front().second.loss, before->loss);
  EXPECT_LT(rec.evals.back().second.loss, 0.5f * before->loss);
  EXPECT_GT(rec.evals.back().second.token_accuracy, before->token_accuracy);
  EXPECT_EQ(rec.evals.back().second.target_tokens, 12);
  ASSERT_TRUE(r.final_eval.has_value());
  EXPECT_EQ(r.final_eval->loss, rec.evals.back().second.loss);
  EXPECT_EQ(rec.checkpoints, (std::vector<int64_t>{10, 20, 30}));
  ASSERT_TRUE(r.best_step.has_value());
  // Throughput accounting: tokens_seen counts every step's tokens.
  int64_t tokens = 0;
  for (const StepResult& s : rec.steps) tokens += s.tokens;
  EXPECT_EQ(rec.tokens_seen.back(), tokens);
  // The checkpoints' records carry the evaluations.
  std::vector<CheckpointRecord> kept = ListCheckpoints(options.checkpoints_dir);
  ASSERT_FALSE(kept.empty());
  ASSERT_TRUE(kept.front().eval.has_value());
  EXPECT_EQ(kept.front().step, 30);
  EXPECT_FLOAT_EQ(kept.front().eval->loss, rec.evals.back().second.loss);
}

TEST(TrainingRunTest, EarlyStoppingStopsAndTheBestCheckpointIsKept) {
  lorad::testing::ScopedTempDir dir;
  auto w = LoadTinyModel(dir, DType::kQ4_1);
  LoraTrainConfig c = AllTargetsConfig(8, 60);
  c.learning_rate = 1e-2f;
  c.batch_size = 4;
  // The evaluation set wants a different completion than the training set teaches: once
  // training takes hold, its loss rises.
  std::vector<TrainExample> eval = SharedCompletion(3, 200);
  for (TrainExample& e : eval) e.tokens = {1, e.tokens[1], e.tokens[2], 60, 61, 62, 2};
  TrainingRunOptions options;
  options.checkpoints_dir = dir.File("ckpt");
  options.checkpoint_every_steps = 100;  // only at the end, and where early stopping ends
  options.keep_checkpoints = 1;
  options.eval_every_steps = 2;
  options.early_stopping_patience = 3;
  Recorder rec;
  TrainingRunResult r = RunTraining(*w, c, SharedCompletion(8, 100), eval, nullptr, options, &rec);
  ASSERT_EQ(r.outcome, TrainingRunResult::Outcome::kStoppedEarly) << r.error;
  ASSERT_NE(r.trainer, nullptr);
  EXPECT_LT(r.trainer->step(), 60);
  ASSERT_GE(rec.evals.size(), 4u);
  // The last three evaluations did not beat the best before them.
  float best = rec.evals.front().second.loss;
  const size_t n = rec.evals.size();
  for (size_t i = 1; i + 3 < n; ++i) best = std::min(best, rec.evals[i].second.loss);
  for (size_t i = n - 3; i < n; ++i) EXPECT_GE(rec.evals[i].second.loss, best);
  EXPECT_EQ(rec.checkpoints.back(), r.trainer->step());
  ASSERT_TRUE(r.best_step.has_value());
  EXPECT_EQ(*r.best_step, r.trainer->step());  // the only checkpoint written
}

TEST(TrainingRunTest, WarmStartFirstLossIsTheBaseAdaptersLoss) {
  lorad::testing::ScopedTempDir dir;
  auto w = LoadTinyModel(dir, DType::kQ4_1);
  LoraTrainConfig c = AllTargetsConfig(4, 3);
  c.batch_size = 8;  // one step sees every example
  const std::vector<TrainExample> data = SharedCompletion(8, 100);
  auto probe = LoraTrainer::Create(*w, c, data, nullptr);
  ASSERT_TRUE(probe.ok()) << probe.status();
  const TrainedLora base = RandomLora((*probe)->Lora(), 5);
  ASSERT_TRUE((*probe)->SetLora(base).ok());
  absl::StatusOr<EvalResult> base_loss = (*probe)->Evaluate(data);
  ASSERT_TRUE(base_loss.ok());

  TrainingRunOptions options;
  options.initial_lora = base;
  Recorder rec;
  TrainingRunResult r = RunTraining(*w, c, data, {}, nullptr, options, &rec);
  ASSERT_EQ(r.outcome, TrainingRunResult::Outcome::kFinished) << r.error;
  ASSERT_EQ(rec.steps.size(), 3u);
  EXPECT_NEAR(rec.steps[0].loss, base_loss->loss, 1e-4 * base_loss->loss);
  // From scratch the first loss differs (B starts at zero).
  Recorder scratch;
  RunTraining(*w, c, data, {}, nullptr, TrainingRunOptions{}, &scratch);
  ASSERT_FALSE(scratch.steps.empty());
  EXPECT_GT(std::abs(scratch.steps[0].loss - base_loss->loss), 1e-3);
}

// Fails every Pause() once `stop` is set.
struct StoppableGate final : TrainGate {
  absl::Status Pause() override {
    return stop.load() ? absl::CancelledError("stopped") : absl::OkStatus();
  }
  std::atomic<bool> stop{false};
};

TEST(TrainingRunTest, InterruptedRunResumesFromItsCheckpointToTheSameResult) {
  lorad::testing::ScopedTempDir dir;
  auto w = LoadTinyModel(dir, DType::kQ4_1);
  LoraTrainConfig c = AllTargetsConfig(4, 8);
  c.learning_rate = 5e-3f;
  const std::vector<TrainExample> data = SharedCompletion(6, 100);
  const std::vector<TrainExample> eval = SharedCompletion(2, 200);
  TrainingRunOptions options;
  options.checkpoint_every_steps = 2;
  options.eval_every_steps = 1;

  options.checkpoints_dir = dir.File("whole");
  Recorder whole;
  TrainingRunResult uninterrupted = RunTraining(*w, c, data, eval, nullptr, options, &whole);
  ASSERT_EQ(uninterrupted.outcome, TrainingRunResult::Outcome::kFinished);

  options.checkpoints_dir = dir.File("parts");
  StoppableGate gate;
  Recorder first;
  first.on_progress = [&](const RunProgress& p) {
    if (p.step.step == 5) gate.stop = true;
  };
  TrainingRunResult cut = RunTraining(*w, c, data, eval, &gate, options, &first);
  ASSERT_EQ(cut.outcome, TrainingRunResult::Outcome::kInterrupted);
  EXPECT_EQ(cut.error.code(), absl::StatusCode::kCancelled);
  gate.stop = false;
  Recorder second;
  TrainingRunResult resumed = RunTraining(*w, c, data, eval, &gate, options, &second);
  ASSERT_EQ(resumed.outcome, TrainingRunResult::Outcome::kFinished) << resumed.error;
  EXPECT_EQ(second.start_step, 4);  // the newest checkpoint before the cut
  ASSERT_EQ(second.steps.size(), 4u);
  EXPECT_EQ(second.tokens_seen.back(), whole.tokens_seen.back());
  EXPECT_FLOAT_EQ(second.steps.back().loss, whole.steps.back().loss);
  ASSERT_TRUE(resumed.final_eval.has_value());
  EXPECT_FLOAT_EQ(resumed.final_eval->loss, uninterrupted.final_eval->loss);
}

TEST(TrainingRunTest, ValidationSplitIsDeterministicAndLeavesTrainingData) {
  std::vector<TrainExample> a = SharedCompletion(10, 100), b = a;
  std::vector<TrainExample> held_a = SplitValidation(&a, 0.2, 3);
  std::vector<TrainExample> held_b = SplitValidation(&b, 0.2, 3);
  ASSERT_EQ(held_a.size(), 2u);
  EXPECT_EQ(a.size(), 8u);
  for (size_t i = 0; i < held_a.size(); ++i) EXPECT_EQ(held_a[i].line, held_b[i].line);
  for (size_t i = 1; i < a.size(); ++i) EXPECT_LT(a[i - 1].line, a[i].line);  // order kept
  std::vector<TrainExample> two = SharedCompletion(2, 100);
  EXPECT_EQ(SplitValidation(&two, 0.5, 1).size(), 1u);  // at least one left to train on
  EXPECT_EQ(two.size(), 1u);
  std::vector<TrainExample> one = SharedCompletion(1, 100);
  EXPECT_TRUE(SplitValidation(&one, 0.5, 1).empty());
  std::vector<TrainExample> small = SharedCompletion(5, 100);
  EXPECT_EQ(SplitValidation(&small, 0.01, 1).size(), 1u);  // at least one held out
}

TEST(TrainingRunTest, LoadedWeightsConvertForAWarmStart) {
  lorad::testing::ScopedTempDir dir;
  auto w = LoadTinyModel(dir, DType::kQ4_1);
  LoraTrainConfig c = AllTargetsConfig(4, 1);
  c.targets = {LoraTarget::kQ, LoraTarget::kV};
  auto trainer = LoraTrainer::Create(*w, c, SharedCompletion(2, 100), nullptr);
  ASSERT_TRUE(trainer.ok());
  const TrainedLora lora = RandomLora((*trainer)->Lora(), 9);
  LoraWeights weights;
  weights.layers.resize(lora.layers.size());
  for (size_t l = 0; l < lora.layers.size(); ++l) {
    for (int t = 0; t < kNumLoraTargets; ++t) {
      const TrainedLoraPair& p = lora.layers[l][t];
      if (p.rank == 0) continue;
      weights.layers[l][t] = LoraPair{p.rank, 1.0f, DType::kF32, p.a.data(), p.b.data()};
    }
  }
  absl::StatusOr<TrainedLora> back = TrainedLoraFromWeights(weights, w->spec, 4, 8.0f, false);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE((*trainer)->SetLora(*back).ok());
  EXPECT_EQ(back->layers[0][0].a, lora.layers[0][0].a);
  EXPECT_EQ(back->layers[1][2].b, lora.layers[1][2].b);
  EXPECT_EQ(TrainedLoraFromWeights(weights, w->spec, 8, 8.0f, false).status().code(),
            absl::StatusCode::kFailedPrecondition);
  weights.layers[0][0].dtype = DType::kF16;
  EXPECT_EQ(TrainedLoraFromWeights(weights, w->spec, 4, 8.0f, false).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace lorad::finetune
