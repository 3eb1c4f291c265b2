// lorad.v1 fine-tune request pieces <-> finetune::LoraTrainConfig: the documented defaults,
// validation with messages that name the request field, and the number of optimizer steps.
// Thread-safety: stateless functions.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/base/model_spec.h"
#include "engine/finetune/train_config.h"
#include "lorad/v1/finetuning.pb.h"
#include "server/jobs/job_state_name.h"

namespace lorad::server {

// Server-side values that defaults depend on.
struct JobDefaults {
  int32_t max_context = 2048;           // the model's context length (tokens)
  int32_t checkpoint_every_steps = 50;  // --checkpoint_every_steps
  int32_t keep_checkpoints = 2;         // --keep_checkpoints
};

// `hp` with every zero/unset field replaced by its default (see finetuning.proto): the
// trainer's (finetune::LoraTrainConfig: rank, targets, learning rate, batch, grad_accum,
// max_seq_len capped at max_context, max_grad_norm), alpha 2 * rank, 1 epoch, cosine, the
// server's checkpoint interval and kept checkpoints, and a random seed when none is set.
// INVALID_ARGUMENT naming the field ("hyperparameters.rank: ...") for values out of range
// (finetune::ValidateTrainConfig), unknown target modules or enum values.
absl::StatusOr<v1::Hyperparameters> EffectiveHyperparameters(const v1::Hyperparameters& hp,
                                                             const JobDefaults& defaults);

// Optimizer steps of a run over `num_examples` examples: max_steps, or
// epochs * ceil(num_examples / (batch_size * grad_accum)). `hp` is effective.
int64_t TotalSteps(const v1::Hyperparameters& hp, int64_t num_examples);

// The trainer's config for effective `hp` and `total_steps` (num_threads: LibTorch intra-op
// threads, 0 = its default). INVALID_ARGUMENT naming the field when the result does not pass
// finetune::ValidateTrainConfig (e.g. warmup_steps > the run's total steps).
absl::StatusOr<finetune::LoraTrainConfig> ToTrainConfig(const v1::Hyperparameters& hp,
                                                        int64_t total_steps, int32_t num_threads,
                                                        int32_t max_context);

// RESOURCE_EXHAUSTED naming hyperparameters.rank and --train_adapter_memory_mb when the LoRA
// state of effective `hp` on `spec` (finetune::LoraTrainingStateBytes) exceeds `budget_bytes`.
absl::Status CheckLoraStateBudget(const v1::Hyperparameters& hp, const ModelSpec& spec,
                                  int64_t budget_bytes);

// True for SUCCEEDED, FAILED and CANCELLED.
bool IsTerminal(v1::JobState state);

}  // namespace lorad::server
