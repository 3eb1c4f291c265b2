#include "engine/finetune/train_config.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "engine/finetune/data_order.h"

namespace lorad::finetune {

float LoraScale(const LoraTrainConfig& config) {
  return config.use_rslora ? config.alpha / std::sqrt(static_cast<float>(config.rank))
                           : config.alpha / static_cast<float>(config.rank);
}

absl::Status ValidateTrainConfig(const LoraTrainConfig& c, int32_t max_context) {
  auto bad = [](const char* field, const auto& value, const char* rule) {
    return absl::InvalidArgumentError(absl::StrCat(field, " = ", value, ": ", rule));
  };
  if (c.rank < 1 || c.rank > 1024) return bad("rank", c.rank, "must be in [1, 1024]");
  if (!(c.alpha > 0.0f) || !std::isfinite(c.alpha)) return bad("alpha", c.alpha, "must be > 0");
  if (!(c.dropout >= 0.0f && c.dropout < 1.0f)) {
    return bad("dropout", c.dropout, "must be in [0, 1)");
  }
  if (c.targets.empty()) return absl::InvalidArgumentError("target_modules: none given");
  absl::flat_hash_set<LoraTarget> seen;
  for (LoraTarget t : c.targets) {
    if (!seen.insert(t).second) {
      return absl::InvalidArgumentError("target_modules: a module is listed twice");
    }
  }
  if (!(c.learning_rate > 0.0f && c.learning_rate <= 1.0f)) {
    return bad("learning_rate", c.learning_rate, "must be in (0, 1]");
  }
  if (!(c.weight_decay >= 0.0f) || !std::isfinite(c.weight_decay)) {
    return bad("weight_decay", c.weight_decay, "must be >= 0");
  }
  if (!(c.min_lr_ratio >= 0.0f && c.min_lr_ratio <= 1.0f)) {
    return bad("min_lr_ratio", c.min_lr_ratio, "must be in [0, 1]");
  }
  if (!(c.max_grad_norm >= 0.0f) || !std::isfinite(c.max_grad_norm)) {
    return bad("max_grad_norm", c.max_grad_norm, "must be >= 0");
  }
  if (c.batch_size < 1 || c.batch_size > 1024) {
    return bad("batch_size", c.batch_size, "must be in [1, 1024]");
  }
  if (c.grad_accum < 1 || c.grad_accum > 1024) {
    return bad("grad_accum", c.grad_accum, "must be in [1, 1024]");
  }
  if (c.max_seq_len < 2 || c.max_seq_len > max_context) {
    return bad("max_seq_len", c.max_seq_len,
               absl::StrCat("must be in [2, ", max_context, "] (the context length)").c_str());
  }
  if (c.total_steps < 1) return bad("total_steps", c.total_steps, "must be >= 1");
  if (c.warmup_steps < 0 || c.warmup_steps > c.total_steps) {
    return bad("warmup_steps", c.warmup_steps, "must be in [0, total steps]");
  }
  if (c.num_threads < 0) return bad("num_threads", c.num_threads, "must be >= 0");
  return absl::OkStatus();
}

int64_t StepsForEpochs(int64_t num_examples, int64_t examples_per_step, int64_t epochs) {
  return std::max<int64_t>(epochs, 1) * StepsPerEpoch(num_examples, examples_per_step);
}

float LearningRateAt(const LoraTrainConfig& c, int64_t step) {
  const double peak = c.learning_rate;
  if (step < c.warmup_steps) return static_cast<float>(peak * (step + 1) / c.warmup_steps);
  const int64_t decay_steps = c.total_steps - c.warmup_steps;
  if (decay_steps <= 0) return static_cast<float>(peak);
  const double progress = static_cast<double>(step - c.warmup_steps) / decay_steps;
  const double floor = peak * c.min_lr_ratio;
  switch (c.schedule) {
    case LrSchedule::kConstant:
      return static_cast<float>(peak);
    case LrSchedule::kLinear:
      return static_cast<float>(floor + (peak - floor) * (1.0 - progress));
    case LrSchedule::kCosine:
      return static_cast<float>(floor + (peak - floor) * 0.5 *
                                            (1.0 + std::cos(std::numbers::pi * progress)));
  }
  return static_cast<float>(peak);
}

absl::Status ParseLrSchedule(const std::string& name, LrSchedule* out) {
  if (name.empty() || name == "cosine") {
    *out = LrSchedule::kCosine;
  } else if (name == "linear") {
    *out = LrSchedule::kLinear;
  } else if (name == "constant") {
    *out = LrSchedule::kConstant;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "lr_scheduler = \"", name, "\": must be \"cosine\", \"linear\" or \"constant\""));
  }
  return absl::OkStatus();
}

const char* LrScheduleName(LrSchedule schedule) {
  switch (schedule) {
    case LrSchedule::kCosine:
      return "cosine";
    case LrSchedule::kLinear:
      return "linear";
    case LrSchedule::kConstant:
      return "constant";
  }
  return "cosine";
}

BaseCompute ResolveBaseCompute(BaseCompute requested) {
  if (requested != BaseCompute::kAuto) return requested;
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512bf16")) return BaseCompute::kBF16;
#endif
  return BaseCompute::kF32;
}

absl::Status ParseRecomputePolicy(const std::string& value, RecomputePolicy* out) {
  if (value == "auto") {
    *out = RecomputePolicy::kAuto;
  } else if (value == "true" || value == "1") {
    *out = RecomputePolicy::kAlways;
  } else if (value == "false" || value == "0") {
    *out = RecomputePolicy::kNever;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("recompute '", value, "': expected auto, true or false"));
  }
  return absl::OkStatus();
}

int64_t KeptActivationBytes(const ModelSpec& spec, int64_t batch, int64_t len) {
  const int64_t qkv = static_cast<int64_t>(spec.num_heads + 2 * spec.num_kv_heads) * spec.head_dim;
  // Floats per layer and token: 8 hidden-wide tensors (residuals, norms, attention output and
  // the o/down projections' inputs and outputs), q/k/v before and after RoPE, 4 MLP-wide
  // tensors (gate, up, SiLU(gate)·up and its gradient path), one attention row per head.
  const int64_t floats = 8 * int64_t{spec.hidden_size} + 2 * qkv +
                         4 * int64_t{spec.intermediate_size} + int64_t{spec.num_heads} * len;
  return floats * 4 * spec.num_layers * batch * len;
}

int64_t RecomputedActivationBytes(const ModelSpec& spec, int64_t batch, int64_t len) {
  const int64_t inputs = int64_t{spec.hidden_size} * 4 * spec.num_layers * batch * len;
  return inputs + KeptActivationBytes(spec, batch, len) / std::max(spec.num_layers, 1);
}

int64_t LoraTrainingStateBytes(const ModelSpec& spec, const LoraTrainConfig& config) {
  int64_t per_layer = 0;
  for (LoraTarget target : config.targets) {
    const LoraModuleShape shape = LoraModuleShapeOf(spec, target);
    per_layer += int64_t{config.rank} * (shape.in + shape.out);
  }
  constexpr int64_t kBytesPerParameter = 4 * 4;  // value, gradient, two AdamW moments; fp32
  return per_layer * spec.num_layers * kBytesPerParameter;
}

bool ShouldRecompute(RecomputePolicy policy, const ModelSpec& spec, int64_t batch, int64_t len,
                     int64_t budget_bytes) {
  switch (policy) {
    case RecomputePolicy::kAlways:
      return true;
    case RecomputePolicy::kNever:
      return false;
    case RecomputePolicy::kAuto:
      break;
  }
  return KeptActivationBytes(spec, batch, len) > budget_bytes;
}

}  // namespace lorad::finetune
