// LoRA training on the frozen, still-quantized base with LibTorch autograd. The base weights
// are read in their stored format; each projection is dequantized (fp32 or bf16) only while its
// own forward or backward op runs (never the whole model at once) and gets no gradient. LoRA A and
// B are initialized as PEFT does (A Kaiming-uniform, B zero) and trained with AdamW, gradient
// clipping and accumulation, a warm-up + decay schedule and dropout; the loss is the mean
// cross-entropy over target tokens. The same seed and dataset give the same run, also across
// SaveCheckpoint / RestoreCheckpoint.
// Thread-safety: not thread-safe; one thread drives a trainer. The base weights must outlive it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/base/lora_weights.h"
#include "engine/finetune/dataset.h"
#include "engine/finetune/train_config.h"
#include "engine/finetune/train_gate.h"
#include "engine/finetune/trained_lora.h"

namespace lorad {
struct ModelWeights;
}

namespace lorad::finetune {

// What one optimizer step did.
struct StepResult {
  int64_t step = 0;            // optimizer steps completed, this one included
  int32_t epoch = 1;           // 1-based epoch of this step's first example
  float loss = 0.0f;           // mean cross-entropy over the step's target tokens (nats)
  float learning_rate = 0.0f;  // the rate this step used
  float grad_norm = 0.0f;      // global gradient L2 norm before clipping
  int64_t tokens = 0;          // tokens in the step's sequences (the throughput unit)
  int64_t target_tokens = 0;   // tokens that counted in the loss
  double seconds = 0.0;        // wall time of the step
};

// What an evaluation measured.
struct EvalResult {
  float loss = 0.0f;            // mean cross-entropy over the target tokens (nats)
  float token_accuracy = 0.0f;  // fraction of target tokens that are the argmax prediction
  int64_t target_tokens = 0;
};

class LoraTrainer {
 public:
  // `dataset` is not empty; config is valid for `base` (ValidateTrainConfig). `gate` may be
  // null (never pauses) and must outlive the trainer.
  static absl::StatusOr<std::unique_ptr<LoraTrainer>> Create(const ModelWeights& base,
                                                             const LoraTrainConfig& config,
                                                             std::vector<TrainExample> dataset,
                                                             TrainGate* gate);
  ~LoraTrainer();

  // Runs optimizer step step()+1 over the next batch_size * grad_accum examples of the
  // deterministic data order (epochs reshuffled from the seed). A non-finite loss or gradient
  // is INTERNAL ("loss is NaN at step N") and leaves the parameters as they were; a gate error
  // is returned as is. FAILED_PRECONDITION once step() == total_steps.
  absl::StatusOr<StepResult> Step();

  int64_t step() const;  // optimizer steps completed
  const LoraTrainConfig& config() const;
  int64_t num_examples() const;

  // The mean loss and token accuracy of `examples` under the current parameters, without
  // dropout and without changing any state (evaluation sets, tests). Micro-batches of
  // batch_size; recompute does not apply (nothing is kept for backward).
  absl::StatusOr<EvalResult> Evaluate(const std::vector<TrainExample>& examples);

  // The current LoRA parameters, fp32, in the engine's row order.
  TrainedLora Lora() const;
  // Replaces the LoRA parameters (tests: start from non-zero B). Shapes must match.
  absl::Status SetLora(const TrainedLora& lora);
  // Gradients of the loss of `examples` (no dropout) w.r.t. A and B, in Lora()'s layout; the
  // optimizer state is untouched (tests).
  absl::StatusOr<TrainedLora> Gradients(const std::vector<TrainExample>& examples);

  // Writes a checkpoint directory atomically (a temporary sibling, fsync, rename): the adapter
  // in PEFT format plus optimizer and trainer state, and `extra_files` (name, contents) beside
  // them (the run's record, checkpoint_records.h). `dir` must not exist.
  absl::Status SaveCheckpoint(
      const std::string& dir,
      const std::vector<std::pair<std::string, std::string>>& extra_files = {}) const;
  // Restores parameters, optimizer state and step from a SaveCheckpoint directory written by a
  // trainer with the same config and dataset (INVALID_ARGUMENT otherwise).
  absl::Status RestoreCheckpoint(const std::string& dir);

 private:
  class Impl;
  explicit LoraTrainer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lorad::finetune
