#include "server/job_runner.h"

#include <cmath>
#include <cstdio>
#include <deque>
#include <exception>
#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "adapters/adapter_store.h"
#include "engine/base/atomic_file.h"
#include "engine/base/status_macros.h"
#include "engine/finetune/lora_trainer.h"
#include "engine/finetune/trained_lora.h"
#include "engine/model/model_weights.h"
#include "server/job_files.h"

namespace lorad::server {
namespace {

namespace fs = std::filesystem;
using Outcome = JobRunResult::Outcome;

constexpr size_t kRateWindowSteps = 10;  // steps averaged for tokens/s and the ETA
constexpr char kAdapterDir[] = "finetuned";

// Turns StepResults into TrainingProgress: throughput and ETA over the recent steps.
class ProgressTracker {
 public:
  ProgressTracker(int64_t total_steps, int64_t tokens_seen)
      : total_steps_(total_steps), tokens_seen_(tokens_seen) {}

  v1::TrainingProgress Add(const finetune::StepResult& r) {
    tokens_seen_ += r.tokens;
    window_.push_back({r.tokens, r.seconds});
    if (window_.size() > kRateWindowSteps) window_.pop_front();
    double tokens = 0, seconds = 0;
    for (const auto& [t, s] : window_) {
      tokens += static_cast<double>(t);
      seconds += s;
    }
    v1::TrainingProgress p;
    p.set_step(static_cast<uint64_t>(r.step));
    p.set_total_steps(static_cast<uint64_t>(total_steps_));
    p.set_epoch(static_cast<uint32_t>(r.epoch));
    p.set_loss(r.loss);
    p.set_learning_rate(r.learning_rate);
    p.set_tokens_seen(static_cast<uint64_t>(tokens_seen_));
    if (seconds > 0) {
      p.set_tokens_per_second(static_cast<float>(tokens / seconds));
      const double eta_s = seconds / static_cast<double>(window_.size()) *
                           static_cast<double>(std::max<int64_t>(total_steps_ - r.step, 0));
      p.mutable_eta()->set_seconds(static_cast<int64_t>(eta_s));
      p.mutable_eta()->set_nanos(static_cast<int32_t>((eta_s - std::floor(eta_s)) * 1e9));
    }
    return p;
  }

 private:
  const int64_t total_steps_;
  int64_t tokens_seen_;
  std::deque<std::pair<int64_t, double>> window_;
};

JobRunResult Failed(absl::Status status) {
  JobRunResult result;
  result.outcome = Outcome::kFailed;
  result.error = std::move(status);
  return result;
}

JobRunResult Interrupted(const JobGate& gate) {
  JobRunResult result;
  result.outcome = gate.cancelled() ? Outcome::kCancelled : Outcome::kStopped;
  return result;
}

std::string Relative(const std::string& path, const std::string& base) {
  std::error_code error;
  fs::path rel = fs::relative(path, base, error);
  return error ? path : rel.string();
}

// Restores the newest checkpoint that restores cleanly; ones that do not are removed.
void RestoreNewest(finetune::LoraTrainer& trainer, const std::string& checkpoints_dir,
                   const std::string& job_id) {
  for (const auto& [step, path] : ListCheckpoints(checkpoints_dir)) {
    absl::Status status = trainer.RestoreCheckpoint(path);
    if (status.ok()) return;
    std::fprintf(stderr, "lorad: job %s: checkpoint %s does not restore (%s); removing it\n",
                 job_id.c_str(), path.c_str(), std::string(status.message()).c_str());
    std::error_code error;
    fs::remove_all(path, error);
  }
}

absl::Status SaveCheckpoint(const finetune::LoraTrainer& trainer, const std::string& dir) {
  std::error_code error;
  fs::create_directories(fs::path(dir).parent_path(), error);
  fs::remove_all(dir, error);  // a checkpoint of this step from an abandoned earlier run
  absl::Status status = trainer.SaveCheckpoint(dir);
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrCat("writing checkpoint: ", status.message()));
  }
  return absl::OkStatus();
}

// Writes the adapter under the adapter root (unless a previous run of the job already renamed
// it into place) and registers it.
absl::Status Publish(const JobRunSpec& spec, const finetune::LoraTrainer& trainer,
                     const JobRunEnv& env, std::string* source) {
  if (env.adapters->Get(spec.adapter_id).ok()) {
    return absl::AlreadyExistsError(
        absl::StrCat("adapter_id '", spec.adapter_id, "' was registered while the job ran"));
  }
  *source = JobAdapterSource(spec.job_id);
  const fs::path final_dir = fs::path(env.adapter_root) / *source;
  const fs::path temp_dir = fs::path(env.adapter_root) / kAdapterDir / (".tmp-" + spec.job_id);
  std::error_code error;
  if (!fs::is_directory(final_dir, error)) {
    fs::remove_all(temp_dir, error);
    fs::create_directories(temp_dir, error);
    if (error) {
      return absl::InternalError(
          absl::StrCat("cannot create ", temp_dir.string(), ": ", error.message()));
    }
    LORAD_RETURN_IF_ERROR(finetune::WritePeftAdapter(temp_dir.string(), trainer.Lora(),
                                                     env.weights->spec, env.base_model_name));
    SyncDirectory(temp_dir.string());
    fs::rename(temp_dir, final_dir, error);
    if (error) {
      return absl::InternalError(absl::StrCat("cannot rename the adapter into ", final_dir.string(),
                                              ": ", error.message()));
    }
    SyncDirectory(final_dir.parent_path().string());
  }
  absl::StatusOr<adapters::AdapterInfo> info =
      env.adapters->Load(spec.adapter_id, *source, /*pin=*/false);
  if (!info.ok()) {
    return absl::Status(info.status().code(),
                        absl::StrCat("registering the adapter: ", info.status().message()));
  }
  return absl::OkStatus();
}

JobRunResult Run(const JobRunSpec& spec, std::vector<finetune::TrainExample> examples,
                 JobGate* gate, const JobRunEnv& env, JobRunListener* listener) {
  absl::StatusOr<std::unique_ptr<finetune::LoraTrainer>> created =
      finetune::LoraTrainer::Create(*env.weights, spec.config, std::move(examples), gate);
  if (!created.ok()) return Failed(created.status());
  finetune::LoraTrainer& trainer = **created;
  const std::string checkpoints_dir = spec.job_dir + "/checkpoints";
  RestoreNewest(trainer, checkpoints_dir, spec.job_id);

  const int64_t total = spec.config.total_steps;
  ProgressTracker progress(total, listener->OnTrainingStart(trainer.step()));
  while (trainer.step() < total) {
    if (gate->cancelled() || gate->stopped()) return Interrupted(*gate);
    absl::StatusOr<finetune::StepResult> step = trainer.Step();
    if (!step.ok()) {
      if (gate->cancelled() || gate->stopped()) return Interrupted(*gate);
      return Failed(step.status());
    }
    listener->OnProgress(progress.Add(*step));
    if (step->step % spec.checkpoint_every_steps == 0 || step->step == total) {
      const std::string dir = checkpoints_dir + "/" + CheckpointName(step->step);
      if (absl::Status status = SaveCheckpoint(trainer, dir); !status.ok()) return Failed(status);
      PruneCheckpoints(checkpoints_dir, env.keep_checkpoints);
      listener->OnCheckpoint(step->step, Relative(dir, env.data_dir));
    }
  }
  if (gate->cancelled()) return Interrupted(*gate);
  JobRunResult result;
  if (absl::Status status = Publish(spec, trainer, env, &result.adapter_source); !status.ok()) {
    return Failed(status);
  }
  result.outcome = Outcome::kSucceeded;
  return result;
}

}  // namespace

std::string JobAdapterSource(const std::string& job_id) {
  return absl::StrCat(kAdapterDir, "/", job_id);
}

JobRunResult RunTrainingJob(const JobRunSpec& spec, std::vector<finetune::TrainExample> examples,
                            JobGate* gate, const JobRunEnv& env, JobRunListener* listener) {
  try {
    return Run(spec, std::move(examples), gate, env, listener);
  } catch (const std::exception& e) {
    return Failed(absl::InternalError(absl::StrCat("training failed: ", e.what())));
  }
}

}  // namespace lorad::server
