// Hyper-parameters of one LoRA fine-tune run on the frozen base, with the defaults the
// FineTuning API documents, and their validation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/base/lora_weights.h"
#include "engine/base/model_spec.h"

namespace lorad::finetune {

enum class LrSchedule {
  kCosine,    // linear warm-up, then cosine decay to 0 at the last step
  kLinear,    // linear warm-up, then linear decay to 0 at the last step
  kConstant,  // linear warm-up, then constant
};

// Precision of the frozen base's matrix multiplies (the LoRA path is always fp32).
enum class BaseCompute {
  kAuto,  // bf16 where the CPU multiplies bf16 natively (AVX512-BF16), else fp32
  kF32,   // dequantized weights and activations in fp32
  kBF16,  // weights and activations rounded to bf16, fp32 accumulation (QLoRA's compute dtype)
};

struct LoraTrainConfig {
  int32_t rank = 8;         // r, the same for every targeted projection
  float alpha = 16.0f;      // lora_alpha; scale = alpha / r (alpha / sqrt(r) with rsLoRA)
  bool use_rslora = false;  // rank-stabilized scale
  float dropout = 0.0f;     // dropout probability on the LoRA input, in [0, 1)
  std::vector<LoraTarget> targets = {LoraTarget::kQ, LoraTarget::kK, LoraTarget::kV,
                                     LoraTarget::kO};
  float learning_rate = 2e-4f;  // peak AdamW learning rate
  float weight_decay = 0.0f;    // AdamW decoupled weight decay
  float adam_beta1 = 0.9f;
  float adam_beta2 = 0.999f;
  float adam_eps = 1e-8f;
  float max_grad_norm = 1.0f;  // global L2 clip over all LoRA gradients; 0 = no clipping
  LrSchedule schedule = LrSchedule::kCosine;
  float min_lr_ratio = 0.0f;  // cosine and linear decay end at this fraction of learning_rate
  int32_t warmup_steps = 0;   // linear warm-up from 0 over this many optimizer steps
  int64_t total_steps = 0;    // optimizer steps of the whole run (> 0)
  int32_t batch_size = 4;     // examples per micro-batch
  int32_t grad_accum = 1;     // micro-batches per optimizer step
  int32_t max_seq_len = 512;  // longest example, tokens
  uint64_t seed = 0;          // initialization, dropout and data order
  int32_t num_threads = 0;    // LibTorch intra-op threads; 0 = leave LibTorch's default
  // Keep only each layer's input for backward and recompute the rest (activation
  // checkpointing): the same gradients, much less memory, about a third more compute.
  bool recompute_activations = true;
  BaseCompute base_compute = BaseCompute::kAuto;
};

// LoRA scale of `config`: alpha / r, or alpha / sqrt(r) with rsLoRA.
float LoraScale(const LoraTrainConfig& config);

// INVALID_ARGUMENT naming the field when a value is out of range (rank 1..1024, alpha > 0,
// dropout in [0, 1), at least one target without duplicates, learning rate in (0, 1], weight
// decay >= 0, batch_size 1..1024, grad_accum 1..1024, max_seq_len 2..max_context,
// total_steps >= 1, warmup_steps <= total_steps, max_grad_norm >= 0, min_lr_ratio in [0, 1]).
absl::Status ValidateTrainConfig(const LoraTrainConfig& config, int32_t max_context);

// Optimizer steps of `epochs` passes over `num_examples` examples, `examples_per_step` per
// step: epochs x ceil(n / k). The last step of each epoch is short when k does not divide n
// (data_order.h), so each pass shows every example exactly once.
int64_t StepsForEpochs(int64_t num_examples, int64_t examples_per_step, int64_t epochs);

// Learning rate for optimizer step `step` (0-based) of `config`.
float LearningRateAt(const LoraTrainConfig& config, int64_t step);

// "cosine" / "linear" / "constant" <-> LrSchedule; INVALID_ARGUMENT for another name.
absl::Status ParseLrSchedule(const std::string& name, LrSchedule* out);
const char* LrScheduleName(LrSchedule schedule);

// kAuto resolved for this CPU (kF32 / kBF16 are returned as they are).
BaseCompute ResolveBaseCompute(BaseCompute requested);

// Whether a run keeps every layer's activations for backward (fastest) or recomputes them per
// layer (LoraTrainConfig::recompute_activations).
enum class RecomputePolicy {
  kAuto,    // keep them when they fit a memory budget (ShouldRecompute)
  kAlways,  // always recompute
  kNever,   // always keep
};

// "auto" / "true" (always recompute) / "false" (never) -> RecomputePolicy; INVALID_ARGUMENT
// for another value.
absl::Status ParseRecomputePolicy(const std::string& value, RecomputePolicy* out);

// Upper estimate of the activation bytes a training micro-batch of `batch` sequences of `len`
// tokens keeps for backward when nothing is recomputed (per layer and token: the norms' and
// projections' inputs and outputs, the attention probabilities, the MLP's three widths).
int64_t KeptActivationBytes(const ModelSpec& spec, int64_t batch, int64_t len);

// The activation bytes the same micro-batch needs when layers are recomputed: every layer's
// input, plus one layer's KeptActivationBytes share while it runs backward.
int64_t RecomputedActivationBytes(const ModelSpec& spec, int64_t batch, int64_t len);

// Bytes the trainable LoRA state of a run holds for its whole length: every targeted
// projection's A [rank, in] and B [out, rank] in fp32, with their gradients and AdamW's two
// moments (16 bytes per parameter). On the 135M default model, rank 16 on all seven projections
// is 78 MB; rank 1024 is 5 GB.
int64_t LoraTrainingStateBytes(const ModelSpec& spec, const LoraTrainConfig& config);

// The default budget for LoraTrainingStateBytes (the daemon's --train_adapter_memory_mb), MiB.
inline constexpr int32_t kDefaultLoraStateBudgetMb = 4096;

// The default activation budget of a run (the daemon's --train_activation_memory_mb and
// lorad-finetune's --activation_memory_mb), MiB.
inline constexpr int32_t kDefaultActivationBudgetMb = 4096;

// kAuto: recompute when KeptActivationBytes(spec, batch, len) exceeds `budget_bytes`.
bool ShouldRecompute(RecomputePolicy policy, const ModelSpec& spec, int64_t batch, int64_t len,
                     int64_t budget_bytes);

}  // namespace lorad::finetune
