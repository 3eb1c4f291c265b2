// One fine-tune run from its start (or its newest checkpoint) to its end, shared by the daemon's
// job runner and tools/lorad-finetune: optimizer steps, evaluation on a held-out set, resumable
// checkpoints with their run records (keep the best by eval loss and the newest), early
// stopping, and progress with throughput and ETA. The caller maps the listener's calls to its
// API and store, and publishes the result.
// Thread-safety: RunTraining runs on the caller's thread; the listener is called from it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/finetune/checkpoint_records.h"
#include "engine/finetune/dataset.h"
#include "engine/finetune/lora_trainer.h"
#include "engine/finetune/train_config.h"
#include "engine/finetune/train_gate.h"
#include "engine/finetune/trained_lora.h"

namespace lorad {
struct ModelWeights;
}

namespace lorad::finetune {

struct TrainingRunOptions {
  // Checkpoints go to <checkpoints_dir>/step-NNNNNNNN; the run resumes from the newest one that
  // restores. Empty: no checkpoints and no resume.
  std::string checkpoints_dir;
  int64_t checkpoint_every_steps = 50;  // and after the last step (0: only after the last)
  // Checkpoints kept: the newest, plus this many best by eval loss (the newest this many
  // without an evaluation set). At least 1.
  int32_t keep_checkpoints = 2;
  // With an evaluation set: evaluate every this many steps, at every checkpoint, and after the
  // last step (0: at checkpoints and after the last step only).
  int64_t eval_every_steps = 0;
  // Stop after this many evaluations in a row without a lower eval loss (0: never). Needs an
  // evaluation set.
  int32_t early_stopping_patience = 0;
  // Warm start: the parameters training starts from (rank and targets must match the config).
  // Ignored when a checkpoint is restored.
  std::optional<TrainedLora> initial_lora;
};

// Progress after one optimizer step.
struct RunProgress {
  StepResult step;
  int64_t tokens_seen = 0;         // tokens trained on so far, this step included
  float tokens_per_second = 0.0f;  // over the recent steps
  double eta_seconds = 0.0;        // until the last step, at the recent rate
  std::optional<EvalResult> eval;  // when this step was evaluated
};

class TrainingRunListener {
 public:
  virtual ~TrainingRunListener() = default;
  // Training (re)starts after `step` optimizer steps (> 0 after a checkpoint was restored).
  virtual void OnStart(int64_t step) {}
  virtual void OnProgress(const RunProgress& progress) = 0;
  // A checkpoint was written (and older ones pruned).
  virtual void OnCheckpoint(const CheckpointRecord& record) = 0;
};

struct TrainingRunResult {
  enum class Outcome {
    kFinished,      // every step ran
    kStoppedEarly,  // early stopping ended the run
    kInterrupted,   // the gate returned an error between or inside steps (`error`)
    kFailed,        // `error` says why
  };
  Outcome outcome = Outcome::kFailed;
  absl::Status error;
  // After kFinished / kStoppedEarly: the trainer in its final state, and the kept checkpoint
  // with the lowest eval loss (unset without an evaluation set or without checkpoints).
  std::unique_ptr<LoraTrainer> trainer;
  std::optional<int64_t> best_step;
  std::optional<EvalResult> final_eval;  // the evaluation after the last step run
};

// Trains `config` on `train` from the frozen `base`, evaluating on `eval` (may be empty).
// `gate` may be null. Never throws.
TrainingRunResult RunTraining(const ModelWeights& base, const LoraTrainConfig& config,
                              std::vector<TrainExample> train, std::vector<TrainExample> eval,
                              TrainGate* gate, const TrainingRunOptions& options,
                              TrainingRunListener* listener);

// The activation plan of a run: whether it recomputes layer activations and the bytes its
// micro-batch needs, from the longest example (capped at max_seq_len). RESOURCE_EXHAUSTED
// naming the remedy when `budget_bytes` > 0 and even the plan's need exceeds it.
struct ActivationPlan {
  bool recompute = false;
  int64_t bytes = 0;
  int64_t longest = 0;  // tokens
};
absl::StatusOr<ActivationPlan> PlanActivations(RecomputePolicy policy, const ModelSpec& spec,
                                               const LoraTrainConfig& config,
                                               const std::vector<TrainExample>& examples,
                                               int64_t budget_bytes);

// The examples of `all` held out for evaluation: `fraction` of them (at least 1 and leaving at
// least 1 for training, when fraction > 0), chosen by a shuffle from `seed`. `all` keeps the
// rest, in their original order.
std::vector<TrainExample> SplitValidation(std::vector<TrainExample>* all, double fraction,
                                          uint64_t seed);

// The fp32, engine-row-order parameters of a loaded adapter whose every adapted module has
// rank `rank` (FAILED_PRECONDITION naming the module otherwise; INVALID_ARGUMENT for a dtype
// other than fp32).
absl::StatusOr<TrainedLora> TrainedLoraFromWeights(const LoraWeights& weights,
                                                   const ModelSpec& spec, int32_t rank, float alpha,
                                                   bool use_rslora);

}  // namespace lorad::finetune
