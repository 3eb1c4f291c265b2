// JobManager: start-up recovery, the validation thread and the training thread.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "adapters/adapter_store.h"
#include "engine/base/process_memory.h"
#include "engine/engine.h"
#include "engine/finetune/dataset.h"
#include "server/job_convert.h"
#include "server/job_files.h"
#include "server/job_manager.h"

#include "engine/base/process_memory.h"
#include "server/job_runner.h"

namespace lorad::server {

// Reports a running job's progress and checkpoints to the manager.
class JobManager::Listener final : public JobRunListener {
 public:
  Listener(JobManager* manager, std::string job_id)
      : manager_(manager), job_id_(std::move(job_id)) {}

  int64_t OnTrainingStart(int64_t step) override {
    if (step == 0) return 0;
    // Tokens seen up to the restored step, from that step's progress event.
    absl::StatusOr<std::vector<v1::JobEvent>> events = manager_->store_->Events(job_id_);
    if (!events.ok()) return 0;
    for (auto it = events->rbegin(); it != events->rend(); ++it) {
      if (it->has_progress() && static_cast<int64_t>(it->progress().step()) == step) {
        return static_cast<int64_t>(it->progress().tokens_seen());
      }
    }
    return 0;
  }

  void OnProgress(const v1::TrainingProgress& progress) override {
    absl::MutexLock lock(&manager_->mu_);
    LiveJob* live = Find();
    if (live == nullptr) return;
    *live->job.mutable_progress() = progress;
    v1::JobEvent event = NewEvent(job_id_);
    *event.mutable_progress() = progress;
    manager_->CommitLocked(*live, std::move(event));
  }

  void OnCheckpoint(int64_t step, const std::string& path) override {
    absl::MutexLock lock(&manager_->mu_);
    LiveJob* live = Find();
    if (live == nullptr) return;
    live->job.set_last_checkpoint(path);
    v1::JobEvent event = NewEvent(job_id_);
    event.mutable_checkpoint()->set_step(static_cast<uint64_t>(step));
    event.mutable_checkpoint()->set_path(path);
    manager_->CommitLocked(*live, std::move(event));
  }

 private:
  LiveJob* Find() ABSL_EXCLUSIVE_LOCKS_REQUIRED(manager_->mu_) {
    auto it = manager_->live_.find(job_id_);
    return it == manager_->live_.end() ? nullptr : &it->second;
  }

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
    live_[job_id] =
        LiveJob{std::move(record.job), std::move(record.dataset_path), nullptr, nullptr};
  }
  train_queue_.insert(train_queue_.end(), queued.begin(), queued.end());
  return absl::OkStatus();
}

absl::StatusOr<std::vector<finetune::TrainExample>> JobManager::LoadDataset(
    const std::string& dataset_path, const v1::Hyperparameters& hp) const {
  try {
    return ParseDataset(dataset_path, hp);
  } catch (const std::exception& e) {  // e.g. the tokenizer throwing on a bad allocation
    return absl::InternalError(absl::StrCat("dataset: ", e.what()));
  }
}

absl::StatusOr<std::vector<finetune::TrainExample>> JobManager::ParseDataset(
    const std::string& dataset_path, const v1::Hyperparameters& hp) const {
  absl::StatusOr<std::string> text = ReadFileLimited(options_.data_dir + "/" + dataset_path,
                                                     options_.max_dataset_bytes, "dataset");
  if (!text.ok()) return text.status();
  finetune::DatasetLimits limits;
  limits.max_bytes = options_.max_dataset_bytes;
  limits.max_seq_len = static_cast<int32_t>(hp.max_seq_len());
  absl::StatusOr<std::vector<finetune::TrainExample>> examples = finetune::ParseJsonlDataset(
      *text, options_.engine->tokenizer(), options_.engine->chat_template(), limits);
  if (!examples.ok()) {
    return absl::Status(examples.status().code(),
                        absl::StrCat("dataset: ", examples.status().message()));
  }
  return examples;
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
  v1::Hyperparameters hp;
  {
    absl::MutexLock lock(&mu_);
    auto it = live_.find(job_id);
    if (it == live_.end() || it->second.job.state() != v1::JOB_STATE_VALIDATING) return;
    dataset_path = it->second.dataset_path;
    hp = it->second.job.hyperparameters();
  }
  absl::StatusOr<std::vector<finetune::TrainExample>> examples = LoadDataset(dataset_path, hp);
  int64_t total_steps = 0;
  absl::Status status = examples.status();
  if (status.ok()) {
    total_steps = TotalSteps(hp, static_cast<int64_t>(examples->size()));
    status = ToTrainConfig(hp, total_steps, options_.train_threads, options_.engine->max_context())
                 .status();
  }
  absl::MutexLock lock(&mu_);
  auto it = live_.find(job_id);
  // Cancelled meanwhile, or shutting down (the job stays VALIDATING and is validated again).
  if (it == live_.end() || it->second.job.state() != v1::JOB_STATE_VALIDATING || stopping_) return;
  LiveJob& live = it->second;
  if (!status.ok()) {
    TransitionLocked(live, v1::JOB_STATE_FAILED, std::string(status.message()));
    return;
  }
  live.job.set_num_examples(examples->size());
  live.job.mutable_progress()->set_total_steps(static_cast<uint64_t>(total_steps));
  live.examples = std::make_shared<std::vector<finetune::TrainExample>>(*std::move(examples));
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
  std::shared_ptr<std::vector<finetune::TrainExample>> examples;
  std::string dataset_path;
  JobRunSpec spec;
  v1::Hyperparameters hp;
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
    examples = std::move(live.examples);
    dataset_path = live.dataset_path;
    hp = live.job.hyperparameters();
    spec.job_id = job_id;
    spec.adapter_id = live.job.adapter_id();
    if (state == v1::JOB_STATE_QUEUED) TransitionLocked(live, v1::JOB_STATE_RUNNING, "");
  }
  spec.job_dir = options_.data_dir + "/jobs/" + job_id;
  spec.checkpoint_every_steps = std::max<int64_t>(hp.checkpoint_every_steps(), 1);

  JobRunResult result;
  absl::Status status = absl::OkStatus();
  std::vector<finetune::TrainExample> data;
  if (examples != nullptr) {
    data = std::move(*examples);
  } else {
    absl::StatusOr<std::vector<finetune::TrainExample>> loaded = LoadDataset(dataset_path, hp);
    status = loaded.status();
    if (loaded.ok()) data = *std::move(loaded);
  }
  if (status.ok()) {
    absl::StatusOr<finetune::LoraTrainConfig> config =
        ToTrainConfig(hp, TotalSteps(hp, static_cast<int64_t>(data.size())), options_.train_threads,
                      options_.engine->max_context());
    status = config.status();
    if (config.ok()) {
      spec.config = *std::move(config);
      size_t longest = 0;
      for (const finetune::TrainExample& e : data) longest = std::max(longest, e.tokens.size());
      const int64_t len = std::min<int64_t>(static_cast<int64_t>(longest), spec.config.max_seq_len);
      const ModelSpec& model = options_.engine->spec();
      spec.config.recompute_activations =
          finetune::ShouldRecompute(options_.train_recompute, model, spec.config.batch_size, len,
                                    options_.train_activation_memory_bytes);
      const int64_t needed =
          spec.config.recompute_activations
              ? finetune::RecomputedActivationBytes(model, spec.config.batch_size, len)
              : finetune::KeptActivationBytes(model, spec.config.batch_size, len);
      std::fprintf(stderr, "lorad: job %s: layer activations %s (estimated %lld MiB)\n",
                   job_id.c_str(), spec.config.recompute_activations ? "recomputed" : "kept",
                   static_cast<long long>(needed >> 20));
      // batch_size and max_seq_len are the client's: a micro-batch that cannot fit the budget
      // fails here, before anything is allocated, instead of exhausting the daemon's memory.
      if (options_.train_activation_memory_bytes > 0 &&
          needed > options_.train_activation_memory_bytes) {
        status = absl::ResourceExhaustedError(absl::StrCat(
            "a micro-batch of ", spec.config.batch_size, " x ", len, " tokens needs about ",
            needed >> 20, " MiB of activations, over the server's --train_activation_memory_mb=",
            options_.train_activation_memory_bytes >> 20,
            "; lower batch_size (raise grad_accum to keep the step size) or max_seq_len"));
      }
    }
  }
  if (status.ok()) {
    JobRunEnv env;
    env.weights = &options_.engine->weights();
    env.adapters = options_.adapters;
    env.data_dir = options_.data_dir;
    env.adapter_root = options_.adapter_root;
    env.base_model_name = options_.base_model_name;
    env.keep_checkpoints = options_.keep_checkpoints;
    Listener listener(this, job_id);
    result = RunTrainingJob(spec, std::move(data), gate.get(), env, &listener);
    // The job's activations, gradients and optimizer state are freed by now; give the pages
    // back so the daemon's RSS returns to what it was before the job.
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
