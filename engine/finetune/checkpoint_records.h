// The checkpoints of one training run as records: a run's checkpoint directory holds
// step-NNNNNNNN subdirectories (LoraTrainer::SaveCheckpoint), each with a run_record.json that
// says what the run had measured at that step (train loss, tokens seen, the evaluation, and the
// early-stopping state). Listing, choosing the best and pruning work from these records.
// Thread-safety: stateless functions (they touch the file system).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/finetune/lora_trainer.h"

namespace lorad::finetune {

inline constexpr char kRunRecordFile[] = "run_record.json";

struct CheckpointRecord {
  int64_t step = 0;
  std::string dir;  // full path of the step-NNNNNNNN directory
  float train_loss = 0.0f;
  int64_t tokens_seen = 0;
  std::optional<EvalResult> eval;  // set when the run has an evaluation set
  // Early-stopping state after this step's evaluation.
  std::optional<float> best_eval_loss;
  int32_t evals_without_improvement = 0;
};

// "step-00000050".
std::string CheckpointName(int64_t step);

// The record as run_record.json text, and back (false when malformed).
std::string RunRecordJson(const CheckpointRecord& record);
bool ParseRunRecord(const std::string& text, CheckpointRecord* record);

// The checkpoints under `checkpoints_dir` (missing: none), newest first. Entries that are not
// step-NNNNNNNN directories (a save interrupted by a crash) are removed. A checkpoint without a
// readable run record is listed with only its step and directory.
std::vector<CheckpointRecord> ListCheckpoints(const std::string& checkpoints_dir);

// The step of the record with the lowest eval loss (the newer on ties); nullopt when none has an
// evaluation.
std::optional<int64_t> BestCheckpointStep(const std::vector<CheckpointRecord>& records);

// The checkpoints to keep: the newest, plus the `keep` best by eval loss (the `keep` newest
// when there are no evaluations). `records` newest first; returns their steps.
std::vector<int64_t> CheckpointsToKeep(const std::vector<CheckpointRecord>& records, int keep);

// Removes every checkpoint CheckpointsToKeep does not keep.
void PruneCheckpoints(const std::string& checkpoints_dir, int keep);

}  // namespace lorad::finetune
