#include "server/jobs/job_runner.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "adapters/adapter_store.h"
#include "adapters/peft_adapter.h"
#include "engine/base/atomic_file.h"
#include "engine/base/status_macros.h"
#include "engine/finetune/checkpoint_records.h"
#include "engine/model/model_weights.h"
#include "nlohmann/json.hpp"

namespace lorad::server {
namespace {

namespace fs = std::filesystem;
using Outcome = JobRunResult::Outcome;
using RunOutcome = finetune::TrainingRunResult::Outcome;

constexpr char kAdapterDir[] = "finetuned";

std::string Relative(const std::string& path, const std::string& base) {
  std::error_code error;
  fs::path rel = fs::relative(path, base, error);
  return error ? path : rel.string();
}

std::string CheckpointsDir(const std::string& job_dir) { return job_dir + "/checkpoints"; }

// Maps the engine's run records to v1 messages.
class ProtoListener final : public finetune::TrainingRunListener {
 public:
  ProtoListener(JobRunListener* out, int64_t total_steps, std::string data_dir)
      : out_(out), total_steps_(total_steps), data_dir_(std::move(data_dir)) {}

  void OnProgress(const finetune::RunProgress& r) override {
    v1::TrainingProgress p;
    p.set_step(static_cast<uint64_t>(r.step.step));
    p.set_total_steps(static_cast<uint64_t>(total_steps_));
    p.set_epoch(static_cast<uint32_t>(r.step.epoch));
    p.set_loss(r.step.loss);
    p.set_learning_rate(r.step.learning_rate);
    p.set_grad_norm(r.step.grad_norm);
    p.set_tokens_seen(static_cast<uint64_t>(r.tokens_seen));
    p.set_tokens_per_second(r.tokens_per_second);
    if (r.tokens_per_second > 0) {
      p.mutable_eta()->set_seconds(static_cast<int64_t>(r.eta_seconds));
      p.mutable_eta()->set_nanos(
          static_cast<int32_t>((r.eta_seconds - std::floor(r.eta_seconds)) * 1e9));
    }
    if (r.eval.has_value()) *p.mutable_eval() = ToProtoEvaluation(r.step.step, *r.eval);
    out_->OnProgress(p);
  }

  void OnCheckpoint(const finetune::CheckpointRecord& record) override {
    out_->OnCheckpoint(ToProtoCheckpoint(record, data_dir_));
  }

 private:
  JobRunListener* const out_;
  const int64_t total_steps_;
  const std::string data_dir_;
};

// Copies the PEFT files of `checkpoint` into `dir` (which exists), naming the daemon's base
// model in adapter_config.json.
absl::Status CopyPeftFiles(const std::string& checkpoint, const fs::path& dir,
                           const std::string& base_model_name) {
  std::ifstream config_in(checkpoint + "/" + adapters::kPeftConfigFile);
  std::stringstream config_text;
  config_text << config_in.rdbuf();
  nlohmann::json config = nlohmann::json::parse(config_text.str(), nullptr, false);
  if (!config_in || !config.is_object()) {
    return absl::InternalError(absl::StrCat(checkpoint, ": unreadable adapter_config.json"));
  }
  config["base_model_name_or_path"] = base_model_name;
  std::error_code error;
  fs::copy_file(fs::path(checkpoint) / adapters::kPeftWeightsFile, dir / adapters::kPeftWeightsFile,
                fs::copy_options::overwrite_existing, error);
  if (error) {
    return absl::InternalError(absl::StrCat("cannot copy the checkpoint's weights into ",
                                            dir.string(), ": ", error.message()));
  }
  LORAD_RETURN_IF_ERROR(
      WriteFileAtomically((dir / adapters::kPeftConfigFile).string(), {config.dump(2) + "\n"}));
  return absl::OkStatus();
}

}  // namespace

std::string JobAdapterSource(const std::string& job_id) {
  return absl::StrCat(kAdapterDir, "/", job_id);
}

std::string CheckpointAdapterSource(const std::string& job_id, int64_t step) {
  return absl::StrCat(kAdapterDir, "/", job_id, "-step-", step);
}

v1::Evaluation ToProtoEvaluation(int64_t step, const finetune::EvalResult& eval) {
  v1::Evaluation e;
  e.set_step(static_cast<uint64_t>(step));
  e.set_loss(eval.loss);
  e.set_token_accuracy(eval.token_accuracy);
  e.set_tokens(static_cast<uint64_t>(eval.target_tokens));
  return e;
}

v1::CheckpointWritten ToProtoCheckpoint(const finetune::CheckpointRecord& record,
                                        const std::string& data_dir) {
  v1::CheckpointWritten c;
  c.set_step(static_cast<uint64_t>(record.step));
  c.set_path(Relative(record.dir, data_dir));
  c.set_train_loss(record.train_loss);
  c.set_tokens_seen(static_cast<uint64_t>(record.tokens_seen));
  if (record.eval.has_value()) *c.mutable_eval() = ToProtoEvaluation(record.step, *record.eval);
  return c;
}

absl::Status PublishCheckpoint(const JobRunEnv& env, const std::string& job_dir, int64_t step,
                               const std::string& source, const std::string& adapter_id) {
  if (env.adapters->Get(adapter_id).ok()) {
    return absl::AlreadyExistsError(absl::StrCat("adapter_id '", adapter_id, "' is registered"));
  }
  const fs::path final_dir = fs::path(env.adapter_root) / source;
  std::error_code error;
  if (!fs::is_directory(final_dir, error)) {
    const std::string checkpoint = CheckpointsDir(job_dir) + "/" + finetune::CheckpointName(step);
    if (!fs::is_directory(checkpoint, error)) {
      return absl::NotFoundError(absl::StrCat("the job has no kept checkpoint of step ", step));
    }
    const fs::path temp_dir = final_dir.parent_path() / (".tmp-" + final_dir.filename().string());
    fs::remove_all(temp_dir, error);
    fs::create_directories(temp_dir, error);
    if (error) {
      return absl::InternalError(
          absl::StrCat("cannot create ", temp_dir.string(), ": ", error.message()));
    }
    if (absl::Status s = CopyPeftFiles(checkpoint, temp_dir, env.base_model_name); !s.ok()) {
      fs::remove_all(temp_dir, error);
      return s;
    }
    SyncDirectory(temp_dir.string());
    fs::rename(temp_dir, final_dir, error);
    if (error) {
      return absl::InternalError(absl::StrCat("cannot rename the adapter into ", final_dir.string(),
                                              ": ", error.message()));
    }
    SyncDirectory(final_dir.parent_path().string());
  }
  absl::StatusOr<adapters::AdapterInfo> info =
      env.adapters->Load(adapter_id, source, /*pin=*/false);
  if (!info.ok()) {
    return absl::Status(info.status().code(),
                        absl::StrCat("registering the adapter: ", info.status().message()));
  }
  return absl::OkStatus();
}

JobRunResult RunTrainingJob(const JobRunSpec& spec, std::vector<finetune::TrainExample> train,
                            std::vector<finetune::TrainExample> eval, JobGate* gate,
                            const JobRunEnv& env, JobRunListener* listener) {
  finetune::TrainingRunOptions options = spec.run;
  options.checkpoints_dir = CheckpointsDir(spec.job_dir);
  ProtoListener proto(listener, spec.config.total_steps, env.data_dir);
  finetune::TrainingRunResult run = finetune::RunTraining(
      *env.weights, spec.config, std::move(train), std::move(eval), gate, options, &proto);
  JobRunResult result;
  switch (run.outcome) {
    case RunOutcome::kInterrupted:
      result.outcome = gate->cancelled() ? Outcome::kCancelled : Outcome::kStopped;
      return result;
    case RunOutcome::kFailed:
      result.error = run.error;
      return result;
    case RunOutcome::kFinished:
    case RunOutcome::kStoppedEarly:
      break;
  }
  if (gate->cancelled()) {
    result.outcome = Outcome::kCancelled;
    return result;
  }
  result.stopped_early = run.outcome == RunOutcome::kStoppedEarly;
  // The best checkpoint by eval loss; without evaluations, the newest (the last step's).
  result.published_step = run.best_step.value_or(run.trainer->step());
  result.adapter_source = JobAdapterSource(spec.job_id);
  if (absl::Status s = PublishCheckpoint(env, spec.job_dir, result.published_step,
                                         result.adapter_source, spec.adapter_id);
      !s.ok()) {
    result.error = s.code() == absl::StatusCode::kAlreadyExists
                       ? absl::AlreadyExistsError(absl::StrCat(
                             "adapter_id '", spec.adapter_id, "' was registered while the job ran"))
                       : s;
    return result;
  }
  result.outcome = Outcome::kSucceeded;
  return result;
}

}  // namespace lorad::server
