#include "server/jobs/job_convert.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/finetune/trained_lora.h"

namespace lorad::server {
namespace {

constexpr uint32_t kMaxEpochs = 100000;
constexpr uint32_t kMaxSteps = 100000000;
constexpr uint32_t kMaxCheckpointEvery = 100000000;
constexpr uint32_t kMaxKeepCheckpoints = 1000;
constexpr uint32_t kMaxPatience = 100000;

absl::Status FieldError(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("hyperparameters.", field, ": ", what));
}

// A request's uint32 as the trainer's int32 (a value past INT32_MAX stays out of range).
int32_t ToInt32(uint32_t v) {
  return static_cast<int32_t>(std::min<uint32_t>(v, std::numeric_limits<int32_t>::max()));
}

// The trainer's config of effective `hp`, unvalidated.
finetune::LoraTrainConfig ConfigOf(const v1::Hyperparameters& hp, int64_t total_steps,
                                   int32_t num_threads) {
  finetune::LoraTrainConfig config;
  config.rank = ToInt32(hp.rank());
  config.alpha = hp.alpha();
  config.use_rslora = hp.use_rslora();
  config.dropout = hp.dropout();
  config.targets.clear();
  for (const std::string& name : hp.target_modules()) {
    LoraTarget target;
    if (LoraTargetFromName(name, &target)) config.targets.push_back(target);
  }
  config.learning_rate = hp.learning_rate();
  config.weight_decay = hp.weight_decay();
  config.max_grad_norm = hp.max_grad_norm();
  switch (hp.lr_scheduler()) {
    case v1::LR_SCHEDULER_LINEAR:
      config.schedule = finetune::LrSchedule::kLinear;
      break;
    case v1::LR_SCHEDULER_CONSTANT:
      config.schedule = finetune::LrSchedule::kConstant;
      break;
    default:
      config.schedule = finetune::LrSchedule::kCosine;
  }
  config.warmup_steps =
      hp.warmup_ratio() > 0.0f
          ? static_cast<int32_t>(std::ceil(static_cast<double>(hp.warmup_ratio()) * total_steps))
          : ToInt32(hp.warmup_steps());
  config.min_lr_ratio = hp.min_lr_ratio();
  config.total_steps = total_steps;
  config.batch_size = ToInt32(hp.batch_size());
  config.grad_accum = ToInt32(hp.grad_accum());
  config.max_seq_len = ToInt32(hp.max_seq_len());
  config.seed = hp.seed();
  config.num_threads = num_threads;
  return config;
}

// finetune::ValidateTrainConfig, the one range check of the trainer's settings, with its field
// names under "hyperparameters.".
absl::Status Validate(const finetune::LoraTrainConfig& config, int32_t max_context) {
  absl::Status status = finetune::ValidateTrainConfig(config, max_context);
  if (status.ok()) return status;
  return absl::InvalidArgumentError(absl::StrCat("hyperparameters.", status.message()));
}

}  // namespace

absl::StatusOr<v1::Hyperparameters> EffectiveHyperparameters(const v1::Hyperparameters& hp,
                                                             const JobDefaults& defaults) {
  // Unset fields take the trainer's defaults (finetune::LoraTrainConfig), the one place they live.
  const finetune::LoraTrainConfig base;
  v1::Hyperparameters out = hp;
  if (out.rank() == 0) out.set_rank(static_cast<uint32_t>(base.rank));
  if (out.alpha() == 0) out.set_alpha(2.0f * static_cast<float>(std::min(out.rank(), 1u << 20)));
  if (out.target_modules().empty()) {
    for (LoraTarget t : base.targets) out.add_target_modules(LoraTargetName(t));
  }
  // PEFT's shorthand for every linear projection of the decoder (lm_head excluded).
  if (out.target_modules_size() == 1 && out.target_modules(0) == "all-linear") {
    out.clear_target_modules();
    for (int t = 0; t < kNumLoraTargets; ++t) {
      out.add_target_modules(LoraTargetName(static_cast<LoraTarget>(t)));
    }
  }
  for (const std::string& name : out.target_modules()) {
    LoraTarget target;
    if (!LoraTargetFromName(name, &target)) {
      return FieldError("target_modules",
                        absl::StrCat("unknown module '", name,
                                     "' (expected q_proj, k_proj, v_proj, o_proj, gate_proj, "
                                     "up_proj, down_proj or all-linear)"));
    }
  }
  if (out.learning_rate() == 0) out.set_learning_rate(base.learning_rate);
  switch (out.length_case()) {
    case v1::Hyperparameters::kMaxSteps:
      if (out.max_steps() > kMaxSteps) {
        return FieldError("max_steps", absl::StrCat("must be at most ", kMaxSteps));
      }
      if (out.max_steps() == 0) out.set_epochs(1);
      break;
    case v1::Hyperparameters::kEpochs:
      if (out.epochs() > kMaxEpochs) {
        return FieldError("epochs", absl::StrCat("must be at most ", kMaxEpochs));
      }
      if (out.epochs() == 0) out.set_epochs(1);
      break;
    default:
      out.set_epochs(1);
  }
  if (out.batch_size() == 0) out.set_batch_size(static_cast<uint32_t>(base.batch_size));
  if (out.grad_accum() == 0) out.set_grad_accum(static_cast<uint32_t>(base.grad_accum));
  const int32_t context = std::max(defaults.max_context, 2);
  if (out.max_seq_len() == 0) {
    out.set_max_seq_len(static_cast<uint32_t>(std::min(base.max_seq_len, context)));
  }
  if (!(out.warmup_ratio() >= 0.0f && out.warmup_ratio() < 1.0f)) {
    return FieldError("warmup_ratio", "must be in [0, 1)");
  }
  if (out.warmup_ratio() > 0.0f && out.warmup_steps() > 0) {
    return FieldError("warmup_ratio", "give warmup_ratio or warmup_steps, not both");
  }
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"  // read to keep old clients working
  if (!out.lr_scheduler_name().empty()) {                   // the deprecated string form
    finetune::LrSchedule named;
    if (!finetune::ParseLrSchedule(out.lr_scheduler_name(), &named).ok()) {
      return FieldError("lr_scheduler_name",
                        absl::StrCat("unknown schedule '", out.lr_scheduler_name(),
                                     "' (expected cosine, linear or constant)"));
    }
    const v1::LrScheduler as_enum = named == finetune::LrSchedule::kLinear ? v1::LR_SCHEDULER_LINEAR
                                    : named == finetune::LrSchedule::kConstant
                                        ? v1::LR_SCHEDULER_CONSTANT
                                        : v1::LR_SCHEDULER_COSINE;
    if (out.lr_scheduler() != v1::LR_SCHEDULER_UNSPECIFIED && out.lr_scheduler() != as_enum) {
      return FieldError("lr_scheduler", "differs from lr_scheduler_name; give one of them");
    }
    out.set_lr_scheduler(as_enum);
    out.clear_lr_scheduler_name();
  }
#pragma GCC diagnostic pop
  if (!v1::LrScheduler_IsValid(out.lr_scheduler())) {
    return FieldError("lr_scheduler", absl::StrCat("unknown schedule ", out.lr_scheduler()));
  }
  if (out.lr_scheduler() == v1::LR_SCHEDULER_UNSPECIFIED) {
    out.set_lr_scheduler(v1::LR_SCHEDULER_COSINE);
  }
  if (!v1::OverlongExamples_IsValid(out.overlong_examples())) {
    return FieldError("overlong_examples", absl::StrCat("unknown value ", out.overlong_examples()));
  }
  if (out.overlong_examples() == v1::OVERLONG_EXAMPLES_UNSPECIFIED) {
    out.set_overlong_examples(v1::OVERLONG_EXAMPLES_ERROR);
  }
  if (out.checkpoint_every_steps() == 0) {
    out.set_checkpoint_every_steps(
        static_cast<uint32_t>(std::max(defaults.checkpoint_every_steps, 1)));
  }
  if (out.checkpoint_every_steps() > kMaxCheckpointEvery) {
    return FieldError("checkpoint_every_steps",
                      absl::StrCat("must be at most ", kMaxCheckpointEvery));
  }
  if (out.eval_every_steps() > kMaxSteps) {
    return FieldError("eval_every_steps", absl::StrCat("must be at most ", kMaxSteps));
  }
  if (out.early_stopping_patience() > kMaxPatience) {
    return FieldError("early_stopping_patience", absl::StrCat("must be at most ", kMaxPatience));
  }
  if (out.keep_checkpoints() == 0) {
    out.set_keep_checkpoints(static_cast<uint32_t>(std::max(defaults.keep_checkpoints, 1)));
  }
  if (out.keep_checkpoints() > kMaxKeepCheckpoints) {
    return FieldError("keep_checkpoints", absl::StrCat("must be at most ", kMaxKeepCheckpoints));
  }
  if (!out.has_max_grad_norm()) out.set_max_grad_norm(base.max_grad_norm);
  if (!out.has_seed()) {
    std::random_device random;
    out.set_seed((uint64_t{random()} << 32) | random());
  }
  // The trainer's own ranges; total steps are not known before the dataset is counted (a
  // warm-up longer than max_steps is caught here, one longer than the epochs' steps later).
  const int64_t steps_bound =
      out.length_case() == v1::Hyperparameters::kMaxSteps ? out.max_steps() : kMaxSteps;
  LORAD_RETURN_IF_ERROR(Validate(ConfigOf(out, steps_bound, 0), context));
  return out;
}

int64_t TotalSteps(const v1::Hyperparameters& hp, int64_t num_examples) {
  if (hp.length_case() == v1::Hyperparameters::kMaxSteps && hp.max_steps() > 0) {
    return hp.max_steps();
  }
  return finetune::StepsForEpochs(num_examples,
                                  int64_t{std::max<uint32_t>(hp.batch_size(), 1)} *
                                      int64_t{std::max<uint32_t>(hp.grad_accum(), 1)},
                                  hp.epochs());
}

absl::StatusOr<finetune::LoraTrainConfig> ToTrainConfig(const v1::Hyperparameters& hp,
                                                        int64_t total_steps, int32_t num_threads,
                                                        int32_t max_context) {
  finetune::LoraTrainConfig config = ConfigOf(hp, total_steps, num_threads);
  LORAD_RETURN_IF_ERROR(Validate(config, max_context));
  return config;
}

absl::Status CheckLoraStateBudget(const v1::Hyperparameters& hp, const ModelSpec& spec,
                                  int64_t budget_bytes) {
  const finetune::LoraTrainConfig config = ConfigOf(hp, /*total_steps=*/1, /*num_threads=*/0);
  const int64_t bytes = finetune::LoraTrainingStateBytes(spec, config);
  if (bytes <= budget_bytes) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      absl::StrCat("hyperparameters.rank: rank ", config.rank, " on ", config.targets.size(),
                   " target modules needs ", (bytes + (1 << 20) - 1) >> 20,
                   " MiB for the LoRA parameters, gradients and AdamW state; the server allows ",
                   budget_bytes >> 20,
                   " MiB (--train_adapter_memory_mb): lower the rank or target fewer "
                   "modules"));
}

bool IsTerminal(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

}  // namespace lorad::server
