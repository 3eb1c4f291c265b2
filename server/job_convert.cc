#include "server/job_convert.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/finetune/trained_lora.h"

namespace lorad::server {
namespace {

constexpr uint32_t kDefaultRank = 8;
constexpr float kDefaultLearningRate = 2e-4f;
constexpr uint32_t kDefaultBatchSize = 4;
constexpr uint32_t kDefaultMaxSeqLen = 512;
constexpr float kDefaultMaxGradNorm = 1.0f;
constexpr uint32_t kMaxEpochs = 100000;
constexpr uint32_t kMaxSteps = 100000000;
constexpr uint32_t kMaxCheckpointEvery = 100000000;
constexpr const char* kDefaultTargets[] = {"q_proj", "k_proj", "v_proj", "o_proj"};

absl::Status FieldError(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("hyperparameters.", field, ": ", what));
}

}  // namespace

absl::StatusOr<v1::Hyperparameters> EffectiveHyperparameters(const v1::Hyperparameters& hp,
                                                             const JobDefaults& defaults) {
  v1::Hyperparameters out = hp;
  if (out.rank() == 0) out.set_rank(kDefaultRank);
  if (out.rank() > 1024) return FieldError("rank", "must be in [1, 1024]");
  if (!std::isfinite(out.alpha()) || out.alpha() < 0) {
    return FieldError("alpha", "must be a positive number");
  }
  if (out.alpha() == 0) out.set_alpha(2.0f * static_cast<float>(out.rank()));
  if (!std::isfinite(out.dropout()) || out.dropout() < 0 || out.dropout() >= 1) {
    return FieldError("dropout", "must be in [0, 1)");
  }
  if (out.target_modules().empty()) {
    for (const char* name : kDefaultTargets) out.add_target_modules(name);
  }
  // PEFT's shorthand for every linear projection of the decoder (lm_head excluded).
  if (out.target_modules_size() == 1 && out.target_modules(0) == "all-linear") {
    out.clear_target_modules();
    for (int t = 0; t < kNumLoraTargets; ++t) {
      out.add_target_modules(LoraTargetName(static_cast<LoraTarget>(t)));
    }
  }
  std::vector<LoraTarget> seen;
  for (const std::string& name : out.target_modules()) {
    LoraTarget target;
    if (!LoraTargetFromName(name, &target)) {
      return FieldError("target_modules",
                        absl::StrCat("unknown module '", name,
                                     "' (expected q_proj, k_proj, v_proj, o_proj, gate_proj, "
                                     "up_proj or down_proj)"));
    }
    if (std::find(seen.begin(), seen.end(), target) != seen.end()) {
      return FieldError("target_modules", absl::StrCat("'", name, "' is listed twice"));
    }
    seen.push_back(target);
  }
  if (!std::isfinite(out.learning_rate()) || out.learning_rate() < 0 || out.learning_rate() > 1) {
    return FieldError("learning_rate", "must be in (0, 1]");
  }
  if (out.learning_rate() == 0) out.set_learning_rate(kDefaultLearningRate);
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
  if (out.batch_size() == 0) out.set_batch_size(kDefaultBatchSize);
  if (out.batch_size() > 1024) return FieldError("batch_size", "must be in [1, 1024]");
  if (out.grad_accum() == 0) out.set_grad_accum(1);
  if (out.grad_accum() > 1024) return FieldError("grad_accum", "must be in [1, 1024]");
  const uint32_t context = static_cast<uint32_t>(std::max(defaults.max_context, 2));
  if (out.max_seq_len() == 0) out.set_max_seq_len(std::min(kDefaultMaxSeqLen, context));
  if (out.max_seq_len() < 2 || out.max_seq_len() > context) {
    return FieldError("max_seq_len",
                      absl::StrCat("must be in [2, ", context, "] (the model's context length)"));
  }
  if (out.length_case() == v1::Hyperparameters::kMaxSteps && out.warmup_steps() > out.max_steps()) {
    return FieldError("warmup_steps", absl::StrCat("must be at most max_steps (", out.max_steps(),
                                                   "), got ", out.warmup_steps()));
  }
  if (!(out.warmup_ratio() >= 0.0f && out.warmup_ratio() < 1.0f)) {
    return FieldError("warmup_ratio", "must be in [0, 1)");
  }
  if (out.warmup_ratio() > 0.0f && out.warmup_steps() > 0) {
    return FieldError("warmup_ratio", "give warmup_ratio or warmup_steps, not both");
  }
  if (!(out.min_lr_ratio() >= 0.0f && out.min_lr_ratio() <= 1.0f)) {
    return FieldError("min_lr_ratio", "must be in [0, 1]");
  }
  if (out.lr_scheduler().empty()) out.set_lr_scheduler("cosine");
  finetune::LrSchedule schedule;
  if (!finetune::ParseLrSchedule(out.lr_scheduler(), &schedule).ok()) {
    return FieldError("lr_scheduler", absl::StrCat("unknown schedule '", out.lr_scheduler(),
                                                   "' (expected cosine, linear or constant)"));
  }
  if (out.checkpoint_every_steps() == 0) {
    out.set_checkpoint_every_steps(
        static_cast<uint32_t>(std::max(defaults.checkpoint_every_steps, 1)));
  }
  if (out.checkpoint_every_steps() > kMaxCheckpointEvery) {
    return FieldError("checkpoint_every_steps",
                      absl::StrCat("must be at most ", kMaxCheckpointEvery));
  }
  if (!out.has_max_grad_norm()) out.set_max_grad_norm(kDefaultMaxGradNorm);
  if (!std::isfinite(out.max_grad_norm()) || out.max_grad_norm() < 0) {
    return FieldError("max_grad_norm", "must be >= 0 (0 turns clipping off)");
  }
  if (!std::isfinite(out.weight_decay()) || out.weight_decay() < 0) {
    return FieldError("weight_decay", "must be >= 0");
  }
  if (!out.has_seed()) {
    std::random_device random;
    out.set_seed((uint64_t{random()} << 32) | random());
  }
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
  finetune::LoraTrainConfig config;
  config.rank = static_cast<int32_t>(hp.rank());
  config.alpha = hp.alpha();
  config.use_rslora = hp.use_rslora();
  config.dropout = hp.dropout();
  config.targets.clear();
  for (const std::string& name : hp.target_modules()) {
    LoraTarget target;
    if (!LoraTargetFromName(name, &target)) {
      return FieldError("target_modules", absl::StrCat("unknown module '", name, "'"));
    }
    config.targets.push_back(target);
  }
  config.learning_rate = hp.learning_rate();
  config.weight_decay = hp.weight_decay();
  config.max_grad_norm = hp.max_grad_norm();
  if (absl::Status status = finetune::ParseLrSchedule(hp.lr_scheduler(), &config.schedule);
      !status.ok()) {
    return FieldError("lr_scheduler", status.message());
  }
  config.warmup_steps =
      hp.warmup_ratio() > 0.0f
          ? static_cast<int32_t>(std::ceil(static_cast<double>(hp.warmup_ratio()) * total_steps))
          : static_cast<int32_t>(hp.warmup_steps());
  config.min_lr_ratio = hp.min_lr_ratio();
  config.total_steps = total_steps;
  config.batch_size = static_cast<int32_t>(hp.batch_size());
  config.grad_accum = static_cast<int32_t>(hp.grad_accum());
  config.max_seq_len = static_cast<int32_t>(hp.max_seq_len());
  config.seed = hp.seed();
  config.num_threads = num_threads;
  if (config.warmup_steps > config.total_steps) {
    return FieldError("warmup_steps", absl::StrCat("must be at most the run's ", total_steps,
                                                   " optimizer steps, got ", config.warmup_steps));
  }
  if (absl::Status status = finetune::ValidateTrainConfig(config, max_context); !status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("hyperparameters: ", status.message()));
  }
  return config;
}

bool IsTerminal(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

}  // namespace lorad::server
