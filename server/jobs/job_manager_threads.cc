// JobManager: start-up recovery, the validation thread and the training thread.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "adapters/adapter_store.h"
#include "adapters/peft_adapter.h"
#include "engine/base/process_memory.h"
#include "engine/base/status_macros.h"
#include "engine/engine.h"
#include "engine/finetune/dataset.h"
#include "server/jobs/job_convert.h"
#include "server/jobs/job_files.h"
#include "server/jobs/job_manager.h"
#include "server/jobs/job_runner.h"

namespace lorad::server {

// Reports a running job's progress and checkpoints to the manager.
class JobManager::Listener final : public JobRunListener {
 public:
  Listener(JobManager* manager, std::string job_id)
      : manager_(manager), job_id_(std::move(job_id)) {}

  void OnProgress(const v1::TrainingProgress& progress) override {
    v1::JobEvent event = NewEvent(job_id_);
    *event.mutable_progress() = progress;
    manager_->CommitRunEvent(job_id_, std::move(event), [&](v1::Job& job) {
      // A resumed job's first step may report fewer tokens than the record of a step it lost.
      const int64_t new_tokens = static_cast<int64_t>(progress.tokens_seen()) -
                                 static_cast<int64_t>(job.progress().tokens_seen());
      manager_->stats_->Progress(progress, std::max<int64_t>(new_tokens, 0));
      *job.mutable_progress() = progress;
      if (progress.has_eval()) {
        *job.mutable_last_eval() = progress.eval();
        if (!job.has_best_eval() || progress.eval().loss() < job.best_eval().loss()) {
          *job.mutable_best_eval() = progress.eval();
        }
      }
    });
  }

  void OnCheckpoint(const v1::CheckpointWritten& checkpoint) override {
    v1::JobEvent event = NewEvent(job_id_);
    *event.mutable_checkpoint() = checkpoint;
    manager_->CommitRunEvent(job_id_, std::move(event),
                             [&](v1::Job& job) { job.set_last_checkpoint(checkpoint.path()); });
  }

 private:
  JobManager* const manager_;
  const std::string job_id_;
};

void JobManager::RegisterSucceededAdapters() {
  absl::StatusOr<std::vector<JobRecord>> done = store_->ListInStates({v1::JOB_STATE_SUCCEEDED});
  if (!done.ok()) return;
  // Newest first: when several jobs produced the same adapter_id, the newest one wins.
  for (auto it = done->rbegin(); it != done->rend(); ++it) {
    const v1::Job& job = it->job;
    if (job.adapter_source().empty() || job.adapter_unloaded() ||
        options_.adapters->Get(job.adapter_id()).ok()) {
      continue;
    }
    absl::StatusOr<adapters::AdapterInfo> info =
        options_.adapters->Load(job.adapter_id(), job.adapter_source(), /*pin=*/false);
    if (!info.ok()) {
      std::fprintf(stderr, "lorad: job %s: adapter %s not registered again: %s\n",
                   job.job_id().c_str(), job.adapter_id().c_str(),
                   std::string(info.status().message()).c_str());
    }
  }
}

absl::Status JobManager::Resume() {
  absl::StatusOr<std::vector<JobRecord>> unfinished =
      store_->ListInStates({v1::JOB_STATE_VALIDATING, v1::JOB_STATE_QUEUED, v1::JOB_STATE_RUNNING});
  if (!unfinished.ok()) return unfinished.status();
  absl::MutexLock lock(&mu_);
  std::deque<std::string> queued;
  for (JobRecord& record : *unfinished) {
    const std::string job_id = record.job.job_id();
    switch (record.job.state()) {
      case v1::JOB_STATE_VALIDATING:
        validate_queue_.push_back(job_id);
        break;
      case v1::JOB_STATE_QUEUED:
        queued.push_back(job_id);
        break;
      default:  // RUNNING: it was training when the last process ended; it goes first.
        train_queue_.push_back(job_id);
    }
    stats_->AddJobs(record.job.state(), 1);
    live_[job_id] =
        LiveJob{std::move(record.job), std::move(record.dataset_path), nullptr, nullptr};
  }
  for (v1::JobState state :
       {v1::JOB_STATE_SUCCEEDED, v1::JOB_STATE_FAILED, v1::JOB_STATE_CANCELLED}) {
    absl::StatusOr<JobPage> page = store_->List(state, "", 1);
    if (page.ok()) stats_->AddJobs(state, page->total_size);
  }
  train_queue_.insert(train_queue_.end(), queued.begin(), queued.end());
  return absl::OkStatus();
}

absl::StatusOr<JobManager::JobData> JobManager::LoadData(const v1::Job& job,
                                                         const std::string& dataset_path) const {
  try {
    const v1::Hyperparameters& hp = job.hyperparameters();
    LORAD_ASSIGN_OR_RETURN(finetune::ParsedDataset train,
                           ParseDataset(dataset_path, hp, "dataset"));
    JobData data;
    data.train = std::move(train.examples);
    data.truncated = train.truncated;
    data.dropped = train.dropped;
    const std::string validation = absl::StrCat("jobs/", job.job_id(), "/", kJobValidationFile);
    std::error_code error;
    if (std::filesystem::exists(options_.data_dir + "/" + validation, error)) {
      LORAD_ASSIGN_OR_RETURN(finetune::ParsedDataset eval,
                             ParseDataset(validation, hp, "validation"));
      data.eval = std::move(eval.examples);
      data.truncated += eval.truncated;
      data.dropped += eval.dropped;
    } else if (job.validation_split() > 0.0f) {
      if (data.train.size() < 2) {
        return absl::InvalidArgumentError(
            "validation_split: the dataset needs at least 2 examples to hold one out");
      }
      data.eval = finetune::SplitValidation(&data.train, job.validation_split(), hp.seed());
    }
    return data;
  } catch (const std::exception& e) {  // e.g. the tokenizer throwing on a bad allocation
    return absl::InternalError(absl::StrCat("dataset: ", e.what()));
  }
}

absl::StatusOr<finetune::ParsedDataset> JobManager::ParseDataset(const std::string& path,
                                                                 const v1::Hyperparameters& hp,
                                                                 const char* field) const {
  absl::StatusOr<std::string> text =
      ReadFileLimited(options_.data_dir + "/" + path, options_.max_dataset_bytes, field);
  if (!text.ok()) return text.status();
  finetune::DatasetOptions limits;
  limits.max_bytes = options_.max_dataset_bytes;
  limits.max_seq_len = static_cast<int32_t>(hp.max_seq_len());
  limits.train_on_inputs = hp.train_on_inputs();
  switch (hp.overlong_examples()) {
    case v1::OVERLONG_EXAMPLES_TRUNCATE:
      limits.overlong = finetune::OverlongPolicy::kTruncate;
      break;
    case v1::OVERLONG_EXAMPLES_DROP:
      limits.overlong = finetune::OverlongPolicy::kDrop;
      break;
    default:
      limits.overlong = finetune::OverlongPolicy::kError;
  }
  absl::StatusOr<finetune::ParsedDataset> parsed = finetune::ParseJsonlDataset(
      *text, options_.engine->tokenizer(), options_.engine->chat_template(), limits);
  if (!parsed.ok()) {
    return absl::Status(parsed.status().code(),
                        absl::StrCat(field, ": ", parsed.status().message()));
  }
  return parsed;
}

absl::StatusOr<finetune::TrainedLora> JobManager::LoadBaseAdapter(const v1::Job& job) const {
  const std::string& id = job.base_adapter_id();
  absl::StatusOr<adapters::AdapterInfo> info = options_.adapters->Get(id);
  if (!info.ok()) {
    return absl::NotFoundError(absl::StrCat("base_adapter_id '", id, "' is no longer registered"));
  }
  absl::StatusOr<adapters::PeftFiles> files =
      adapters::ReadPeftFilesBeneath(options_.adapter_root, info->source);
  absl::StatusOr<std::unique_ptr<adapters::PeftAdapter>> adapter =
      files.ok() ? adapters::BuildPeftAdapter(*files, options_.engine->spec(),
                                              adapters::PeftLoadOptions{DType::kF32})
                 : absl::StatusOr<std::unique_ptr<adapters::PeftAdapter>>(files.status());
  if (!adapter.ok()) {
    return absl::Status(adapter.status().code(),
                        absl::StrCat("base_adapter_id '", id, "': ", adapter.status().message()));
  }
  const v1::Hyperparameters& hp = job.hyperparameters();
  absl::StatusOr<finetune::TrainedLora> lora = finetune::TrainedLoraFromWeights(
      (*adapter)->weights, options_.engine->spec(), static_cast<int32_t>(hp.rank()), hp.alpha(),
      hp.use_rslora());
  if (!lora.ok()) {
    return absl::Status(lora.status().code(),
                        absl::StrCat("base_adapter_id '", id, "': ", lora.status().message()));
  }
  // The adapter's modules must be the job's targets (they were when the job was created).
  for (size_t l = 0; l < lora->layers.size(); ++l) {
    for (int t = 0; t < kNumLoraTargets; ++t) {
      const bool targeted =
          std::find(hp.target_modules().begin(), hp.target_modules().end(),
                    LoraTargetName(static_cast<LoraTarget>(t))) != hp.target_modules().end();
      if (targeted != (lora->layers[l][t].rank > 0)) {
        return absl::FailedPreconditionError(
            absl::StrCat("base_adapter_id '", id, "': module ",
                         LoraModuleKey(static_cast<int32_t>(l), static_cast<LoraTarget>(t)),
                         targeted ? " is not adapted" : " is adapted but not a target",
                         "; a warm start needs every layer to adapt the same modules"));
      }
    }
  }
  return lora;
}

void JobManager::ValidateLoop() {
  while (true) {
    std::string job_id;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !validate_queue_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      job_id = std::move(validate_queue_.front());
      validate_queue_.pop_front();
    }
    Validate(job_id);
  }
}

void JobManager::Validate(const std::string& job_id) {
  std::string dataset_path;
  v1::Job job;
  {
    absl::MutexLock lock(&mu_);
    auto it = live_.find(job_id);
    if (it == live_.end() || it->second.job.state() != v1::JOB_STATE_VALIDATING) return;
    dataset_path = it->second.dataset_path;
    job = it->second.job;
  }
  const v1::Hyperparameters& hp = job.hyperparameters();
  absl::StatusOr<JobData> data = LoadData(job, dataset_path);
  int64_t total_steps = 0;
  absl::Status status = data.status();
  if (status.ok()) {
    total_steps = TotalSteps(hp, static_cast<int64_t>(data->train.size()));
    status = ToTrainConfig(hp, total_steps, options_.train_threads, options_.engine->max_context())
                 .status();
  }
  if (status.ok() && !job.base_adapter_id().empty()) status = LoadBaseAdapter(job).status();
  absl::MutexLock lock(&mu_);
  auto it = live_.find(job_id);
  // Cancelled meanwhile, or shutting down (the job stays VALIDATING and is validated again).
  if (it == live_.end() || it->second.job.state() != v1::JOB_STATE_VALIDATING || stopping_) return;
  LiveJob& live = it->second;
  if (!status.ok()) {
    TransitionLocked(live, v1::JOB_STATE_FAILED, std::string(status.message()));
    return;
  }
  live.job.set_num_examples(data->train.size());
  live.job.set_num_validation_examples(data->eval.size());
  live.job.set_examples_truncated(static_cast<uint64_t>(data->truncated));
  live.job.set_examples_dropped(static_cast<uint64_t>(data->dropped));
  live.job.mutable_progress()->set_total_steps(static_cast<uint64_t>(total_steps));
  live.data = std::make_shared<JobData>(*std::move(data));
  TransitionLocked(live, v1::JOB_STATE_QUEUED, "");
  train_queue_.push_back(job_id);
}

void JobManager::TrainLoop() {
  while (true) {
    std::string job_id;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !train_queue_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      job_id = std::move(train_queue_.front());
      train_queue_.pop_front();
    }
    Train(job_id);
  }
}

void JobManager::Train(const std::string& job_id) {
  std::shared_ptr<JobGate> gate;
  std::shared_ptr<JobData> data;
  std::string dataset_path;
  JobRunSpec spec;
  v1::Job job;
  {
    absl::MutexLock lock(&mu_);
    auto it = live_.find(job_id);
    if (it == live_.end() || stopping_) return;
    LiveJob& live = it->second;
    const v1::JobState state = live.job.state();
    if (state != v1::JOB_STATE_QUEUED && state != v1::JOB_STATE_RUNNING) return;
    Engine* engine = options_.engine;
    ServingLoad load;
    load.busy = [engine] {
      const Engine::Load now = engine->CurrentLoad();
      return now.running > 0 || now.waiting > 0;
    };
    load.wait_idle = [engine](absl::Duration timeout) { return engine->WaitIdle(timeout); };
    gate = std::make_shared<JobGate>(std::move(load), options_.train_max_pause);
    live.gate = gate;
    data = std::move(live.data);
    dataset_path = live.dataset_path;
    job = live.job;
    spec.job_id = job_id;
    spec.adapter_id = live.job.adapter_id();
    if (state == v1::JOB_STATE_QUEUED) TransitionLocked(live, v1::JOB_STATE_RUNNING, "");
  }
  const v1::Hyperparameters& hp = job.hyperparameters();
  spec.job_dir = options_.data_dir + "/jobs/" + job_id;
  spec.run.checkpoint_every_steps = std::max<int64_t>(hp.checkpoint_every_steps(), 1);
  spec.run.keep_checkpoints = static_cast<int32_t>(std::max<uint32_t>(hp.keep_checkpoints(), 1));
  spec.run.eval_every_steps = hp.eval_every_steps();
  spec.run.early_stopping_patience = static_cast<int32_t>(hp.early_stopping_patience());

  JobRunResult result;
  absl::Status status = absl::OkStatus();
  if (data == nullptr) {  // resumed after a restart: tokenize again
    absl::StatusOr<JobData> loaded = LoadData(job, dataset_path);
    status = loaded.status();
    if (loaded.ok()) data = std::make_shared<JobData>(*std::move(loaded));
  }
  if (status.ok() && !job.base_adapter_id().empty()) {
    absl::StatusOr<finetune::TrainedLora> base = LoadBaseAdapter(job);
    status = base.status();
    if (base.ok()) spec.run.initial_lora = *std::move(base);
  }
  if (status.ok()) {
    absl::StatusOr<finetune::LoraTrainConfig> config =
        ToTrainConfig(hp, TotalSteps(hp, static_cast<int64_t>(data->train.size())),
                      options_.train_threads, options_.engine->max_context());
    status = config.status();
    if (config.ok()) spec.config = *std::move(config);
  }
  if (status.ok()) {
    absl::StatusOr<finetune::ActivationPlan> plan =
        finetune::PlanActivations(options_.train_recompute, options_.engine->spec(), spec.config,
                                  data->train, options_.train_activation_memory_bytes);
    status = plan.status();
    if (plan.ok()) {
      spec.config.recompute_activations = plan->recompute;
      std::fprintf(stderr, "lorad: job %s: layer activations %s (estimated %lld MiB)\n",
                   job_id.c_str(), plan->recompute ? "recomputed" : "kept",
                   static_cast<long long>(plan->bytes >> 20));
    } else {
      status = absl::ResourceExhaustedError(
          absl::StrCat(status.message(), " (the server's --train_activation_memory_mb=",
                       options_.train_activation_memory_bytes >> 20, ")"));
    }
  }
  if (status.ok()) {
    Listener listener(this, job_id);
    result = RunTrainingJob(spec, std::move(data->train), std::move(data->eval), gate.get(),
                            RunEnv(), &listener);
    // The job's activations, gradients and optimizer state are freed by now; give the pages
    // back so the daemon's RSS returns to what it was before the job.
    data.reset();
    stats_->TrainingEnded();
    ReleaseFreeHeapMemory();
  } else {
    result.outcome = JobRunResult::Outcome::kFailed;
    result.error = status;
  }

  absl::MutexLock lock(&mu_);
  auto it = live_.find(job_id);
  if (it == live_.end()) return;
  LiveJob& live = it->second;
  live.gate.reset();
  switch (result.outcome) {
    case JobRunResult::Outcome::kSucceeded:
      live.job.set_adapter_source(result.adapter_source);
      live.job.set_published_step(static_cast<uint64_t>(result.published_step));
      live.job.set_stopped_early(result.stopped_early);
      TransitionLocked(live, v1::JOB_STATE_SUCCEEDED, "");
      break;
    case JobRunResult::Outcome::kFailed:
      TransitionLocked(live, v1::JOB_STATE_FAILED, std::string(result.error.message()));
      break;
    case JobRunResult::Outcome::kCancelled:
      TransitionLocked(live, v1::JOB_STATE_CANCELLED, "");
      break;
    case JobRunResult::Outcome::kStopped:
      break;  // Stays RUNNING; resumes from its last checkpoint on the next start.
  }
}

}  // namespace lorad::server
