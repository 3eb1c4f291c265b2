#include "engine/finetune/training_run.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "engine/finetune/data_order.h"
#include "engine/model/model_weights.h"

namespace lorad::finetune {
namespace {

namespace fs = std::filesystem;
using Outcome = TrainingRunResult::Outcome;

constexpr size_t kRateWindowSteps = 10;  // steps averaged for tokens/s and the ETA
constexpr uint64_t kValidationSeedSalt = 0x76616c6964617465ull;  // "validate"

// Throughput and ETA over the recent steps.
class ProgressTracker {
 public:
  ProgressTracker(int64_t total_steps, int64_t tokens_seen)
      : total_steps_(total_steps), tokens_seen_(tokens_seen) {}

  RunProgress Add(const StepResult& r) {
    tokens_seen_ += r.tokens;
    window_.push_back({r.tokens, r.seconds});
    if (window_.size() > kRateWindowSteps) window_.pop_front();
    double tokens = 0, seconds = 0;
    for (const auto& [t, s] : window_) {
      tokens += static_cast<double>(t);
      seconds += s;
    }
    RunProgress p;
    p.step = r;
    p.tokens_seen = tokens_seen_;
    if (seconds > 0) {
      p.tokens_per_second = static_cast<float>(tokens / seconds);
      p.eta_seconds = seconds / static_cast<double>(window_.size()) *
                      static_cast<double>(std::max<int64_t>(total_steps_ - r.step, 0));
    }
    return p;
  }

 private:
  const int64_t total_steps_;
  int64_t tokens_seen_;
  std::deque<std::pair<int64_t, double>> window_;
};

// Forwards to the caller's gate and remembers whether it ended the run.
class RecordingGate final : public TrainGate {
 public:
  explicit RecordingGate(TrainGate* inner) : inner_(inner) {}
  absl::Status Pause() override {
    if (inner_ == nullptr) return absl::OkStatus();
    absl::Status s = inner_->Pause();
    if (!s.ok() && error_.ok()) error_ = s;
    return s;
  }
  const absl::Status& error() const { return error_; }

 private:
  TrainGate* const inner_;
  absl::Status error_;
};

TrainingRunResult Ended(Outcome outcome, absl::Status error) {
  TrainingRunResult result;
  result.outcome = outcome;
  result.error = std::move(error);
  return result;
}

// A failed step or evaluation: the gate's interruption when it caused it.
TrainingRunResult StepFailed(const RecordingGate& gate, absl::Status status) {
  if (!gate.error().ok()) return Ended(Outcome::kInterrupted, gate.error());
  return Ended(Outcome::kFailed, std::move(status));
}

// Restores the newest checkpoint that restores cleanly (ones that do not are removed) and
// returns its record; a fresh record when none does.
CheckpointRecord RestoreNewest(LoraTrainer& trainer, const std::string& checkpoints_dir) {
  for (const CheckpointRecord& record : ListCheckpoints(checkpoints_dir)) {
    absl::Status status = trainer.RestoreCheckpoint(record.dir);
    if (status.ok()) return record;
    std::fprintf(stderr, "lorad: checkpoint %s does not restore (%s); removing it\n",
                 record.dir.c_str(), std::string(status.message()).c_str());
    std::error_code error;
    fs::remove_all(record.dir, error);
  }
  return CheckpointRecord{};
}

absl::Status WriteCheckpoint(const LoraTrainer& trainer, const std::string& checkpoints_dir,
                             CheckpointRecord* record) {
  record->dir = checkpoints_dir + "/" + CheckpointName(record->step);
  std::error_code error;
  fs::create_directories(checkpoints_dir, error);
  fs::remove_all(record->dir, error);  // a checkpoint of this step from an abandoned earlier run
  absl::Status status =
      trainer.SaveCheckpoint(record->dir, {{kRunRecordFile, RunRecordJson(*record)}});
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrCat("writing checkpoint: ", status.message()));
  }
  return absl::OkStatus();
}

bool Due(int64_t step, int64_t every) { return every > 0 && step % every == 0; }

TrainingRunResult Run(const ModelWeights& base, const LoraTrainConfig& config,
                      std::vector<TrainExample> train, const std::vector<TrainExample>& eval,
                      TrainGate* caller_gate, const TrainingRunOptions& options,
                      TrainingRunListener* listener) {
  RecordingGate gate(caller_gate);
  absl::StatusOr<std::unique_ptr<LoraTrainer>> created =
      LoraTrainer::Create(base, config, std::move(train), &gate);
  if (!created.ok()) return Ended(Outcome::kFailed, created.status());
  LoraTrainer& trainer = **created;
  if (options.initial_lora.has_value()) {
    if (absl::Status s = trainer.SetLora(*options.initial_lora); !s.ok()) {
      return Ended(Outcome::kFailed,
                   absl::InvalidArgumentError(absl::StrCat("warm start: ", s.message())));
    }
  }
  const bool checkpoints = !options.checkpoints_dir.empty();
  const bool has_eval = !eval.empty();
  const int32_t patience = has_eval ? options.early_stopping_patience : 0;
  CheckpointRecord state;
  if (checkpoints) state = RestoreNewest(trainer, options.checkpoints_dir);
  state.step = trainer.step();
  listener->OnStart(trainer.step());

  const int64_t total = config.total_steps;
  ProgressTracker progress(total, state.tokens_seen);
  bool stopped_early = patience > 0 && state.evals_without_improvement >= patience;
  while (!stopped_early && trainer.step() < total) {
    if (absl::Status s = gate.Pause(); !s.ok()) return Ended(Outcome::kInterrupted, s);
    absl::StatusOr<StepResult> step = trainer.Step();
    if (!step.ok()) return StepFailed(gate, step.status());
    RunProgress p = progress.Add(*step);
    state.step = step->step;
    state.train_loss = step->loss;
    state.tokens_seen = p.tokens_seen;
    state.eval.reset();
    const bool last = step->step == total;
    bool checkpoint = checkpoints && (last || Due(step->step, options.checkpoint_every_steps));
    if (has_eval && (last || checkpoint || Due(step->step, options.eval_every_steps))) {
      absl::StatusOr<EvalResult> e = trainer.Evaluate(eval);
      if (!e.ok()) return StepFailed(gate, e.status());
      state.eval = p.eval = *e;
      if (!state.best_eval_loss.has_value() || e->loss < *state.best_eval_loss) {
        state.best_eval_loss = e->loss;
        state.evals_without_improvement = 0;
      } else {
        ++state.evals_without_improvement;
      }
      stopped_early = patience > 0 && state.evals_without_improvement >= patience;
    }
    listener->OnProgress(p);
    if (checkpoint || (stopped_early && checkpoints)) {
      if (absl::Status s = WriteCheckpoint(trainer, options.checkpoints_dir, &state); !s.ok()) {
        return Ended(Outcome::kFailed, s);
      }
      PruneCheckpoints(options.checkpoints_dir, std::max(options.keep_checkpoints, 1));
      listener->OnCheckpoint(state);
    }
  }
  TrainingRunResult result;
  result.outcome = stopped_early ? Outcome::kStoppedEarly : Outcome::kFinished;
  result.final_eval = state.eval;
  if (checkpoints) result.best_step = BestCheckpointStep(ListCheckpoints(options.checkpoints_dir));
  result.trainer = *std::move(created);
  return result;
}

}  // namespace

TrainingRunResult RunTraining(const ModelWeights& base, const LoraTrainConfig& config,
                              std::vector<TrainExample> train, std::vector<TrainExample> eval,
                              TrainGate* gate, const TrainingRunOptions& options,
                              TrainingRunListener* listener) {
  try {
    return Run(base, config, std::move(train), eval, gate, options, listener);
  } catch (const std::exception& e) {
    return Ended(Outcome::kFailed,
                 absl::InternalError(absl::StrCat("training failed: ", e.what())));
  }
}

absl::StatusOr<ActivationPlan> PlanActivations(RecomputePolicy policy, const ModelSpec& spec,
                                               const LoraTrainConfig& config,
                                               const std::vector<TrainExample>& examples,
                                               int64_t budget_bytes) {
  ActivationPlan plan;
  for (const TrainExample& e : examples) {
    plan.longest = std::max<int64_t>(plan.longest, static_cast<int64_t>(e.tokens.size()));
  }
  plan.longest = std::min<int64_t>(plan.longest, config.max_seq_len);
  plan.recompute = ShouldRecompute(policy, spec, config.batch_size, plan.longest, budget_bytes);
  plan.bytes = plan.recompute ? RecomputedActivationBytes(spec, config.batch_size, plan.longest)
                              : KeptActivationBytes(spec, config.batch_size, plan.longest);
  // batch_size and max_seq_len are the client's: a micro-batch that cannot fit the budget fails
  // here, before anything is allocated, instead of exhausting the process's memory.
  if (budget_bytes > 0 && plan.bytes > budget_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "a micro-batch of ", config.batch_size, " x ", plan.longest, " tokens needs about ",
        plan.bytes >> 20, " MiB of activations, over the training activation budget of ",
        budget_bytes >> 20,
        " MiB; lower batch_size (raise grad_accum to keep the step size) or max_seq_len"));
  }
  return plan;
}

std::vector<TrainExample> SplitValidation(std::vector<TrainExample>* all, double fraction,
                                          uint64_t seed) {
  std::vector<TrainExample> held_out;
  const int64_t n = static_cast<int64_t>(all->size());
  if (!(fraction > 0.0) || n < 2) return held_out;
  const int64_t count = std::clamp<int64_t>(
      static_cast<int64_t>(std::llround(fraction * static_cast<double>(n))), 1, n - 1);
  std::vector<int64_t> order = EpochPermutation(n, seed ^ kValidationSeedSalt, 0);
  std::vector<bool> chosen(n, false);
  for (int64_t i = 0; i < count; ++i) chosen[order[i]] = true;
  std::vector<TrainExample> kept;
  for (int64_t i = 0; i < n; ++i) {
    (chosen[i] ? held_out : kept).push_back(std::move((*all)[i]));
  }
  *all = std::move(kept);
  return held_out;
}

absl::StatusOr<TrainedLora> TrainedLoraFromWeights(const LoraWeights& weights,
                                                   const ModelSpec& spec, int32_t rank, float alpha,
                                                   bool use_rslora) {
  TrainedLora out;
  out.rank = rank;
  out.alpha = alpha;
  out.use_rslora = use_rslora;
  if (static_cast<int32_t>(weights.layers.size()) != spec.num_layers) {
    return absl::InvalidArgumentError("the adapter's layer count differs from the base model's");
  }
  out.layers.resize(weights.layers.size());
  for (size_t l = 0; l < weights.layers.size(); ++l) {
    for (int t = 0; t < kNumLoraTargets; ++t) {
      const LoraPair& p = weights.layers[l][t];
      if (p.rank == 0) continue;
      const auto target = static_cast<LoraTarget>(t);
      if (p.rank != rank) {
        return absl::FailedPreconditionError(
            absl::StrCat("module ", LoraModuleKey(static_cast<int32_t>(l), target), " has rank ",
                         p.rank, ", not ", rank, ": a warm start needs one rank for every module"));
      }
      if (p.dtype != DType::kF32) {
        return absl::InvalidArgumentError("warm start needs the adapter's weights in fp32");
      }
      const LoraModuleShape shape = LoraModuleShapeOf(spec, target);
      TrainedLoraPair& o = out.layers[l][t];
      o.rank = rank;
      o.a.resize(static_cast<size_t>(rank * shape.in));
      o.b.resize(static_cast<size_t>(shape.out * rank));
      std::memcpy(o.a.data(), p.a, o.a.size() * sizeof(float));
      std::memcpy(o.b.data(), p.b, o.b.size() * sizeof(float));
    }
  }
  return out;
}

}  // namespace lorad::finetune
