// JobManager: the request side (create, get, list, cancel, watch) and state transitions. The
// validation and training threads live in job_manager_threads.cc.
#include "server/jobs/job_manager.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "adapters/adapter_store.h"
#include "engine/base/atomic_file.h"
#include "engine/base/status_macros.h"
#include "engine/engine.h"
#include "engine/finetune/checkpoint_records.h"
#include "server/common/proto_time.h"
#include "server/jobs/job_convert.h"
#include "server/jobs/job_files.h"
#include "server/jobs/job_runner.h"

namespace lorad::server {
namespace {

namespace fs = std::filesystem;

constexpr float kMaxValidationSplit = 0.5f;

// The JSONL bytes of `dataset` (inline or a file under the data root); `field` names it.
absl::StatusOr<std::string> ReadDatasetSource(const v1::Dataset& dataset, const char* field,
                                              const std::string& data_dir, int64_t max_bytes) {
  switch (dataset.source_case()) {
    case v1::Dataset::kInlineJsonl:
      if (static_cast<int64_t>(dataset.inline_jsonl().size()) > max_bytes) {
        return absl::InvalidArgumentError(absl::StrCat(
            field, ".inline_jsonl has ", dataset.inline_jsonl().size(),
            " bytes, over the server's limit of ", max_bytes, " (--max_dataset_bytes)"));
      }
      return dataset.inline_jsonl();
    case v1::Dataset::kPath: {
      absl::StatusOr<std::string> text = ReadDataFile(data_dir, dataset.path(), max_bytes);
      if (!text.ok() && std::string_view(field) != "dataset") {
        // ReadDataFile names dataset.path; say which dataset it was.
        return absl::Status(text.status().code(),
                            absl::StrCat(field, ": ", text.status().message()));
      }
      return text;
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat(field, ": set inline_jsonl or path"));
  }
}

// A warm start takes the base adapter's shape; values the request gives must agree with it.
absl::Status ApplyBaseAdapter(const adapters::AdapterInfo& info, v1::Hyperparameters* hp) {
  auto conflict = [&](const char* field, const std::string& given, const std::string& base) {
    return absl::InvalidArgumentError(absl::StrCat(
        "hyperparameters.", field, ": ", given, " differs from base adapter '", info.adapter_id,
        "' (", base, "); a warm start keeps the base adapter's ", field));
  };
  if (hp->rank() != 0 && hp->rank() != static_cast<uint32_t>(info.rank)) {
    return conflict("rank", absl::StrCat(hp->rank()), absl::StrCat(info.rank));
  }
  if (hp->alpha() != 0 && hp->alpha() != info.alpha) {
    return conflict("alpha", absl::StrCat(hp->alpha()), absl::StrCat(info.alpha));
  }
  if (hp->use_rslora() && !info.use_rslora) return conflict("use_rslora", "true", "false");
  if (!hp->target_modules().empty()) {
    std::vector<std::string> given(hp->target_modules().begin(), hp->target_modules().end());
    std::vector<std::string> base = info.target_modules;
    std::sort(given.begin(), given.end());
    std::sort(base.begin(), base.end());
    const bool all_linear = given.size() == 1 && given[0] == "all-linear" &&
                            base.size() == static_cast<size_t>(kNumLoraTargets);
    if (given != base && !all_linear) {
      return conflict("target_modules", absl::StrJoin(given, ","), absl::StrJoin(base, ","));
    }
  }
  hp->set_rank(static_cast<uint32_t>(info.rank));
  hp->set_alpha(info.alpha);
  hp->set_use_rslora(info.use_rslora);
  hp->clear_target_modules();
  for (const std::string& name : info.target_modules) hp->add_target_modules(name);
  return absl::OkStatus();
}

}  // namespace

v1::JobEvent JobManager::NewEvent(const std::string& job_id) {
  v1::JobEvent event;
  event.set_job_id(job_id);
  ToProtoTimestamp(absl::Now(), event.mutable_time());
  return event;
}

absl::StatusOr<std::unique_ptr<JobManager>> JobManager::Create(const JobManagerOptions& options) {
  if (options.engine == nullptr || options.adapters == nullptr) {
    return absl::InvalidArgumentError("job manager: engine and adapter store are required");
  }
  std::error_code error;
  fs::create_directories(fs::path(options.data_dir) / "jobs", error);
  if (error) {
    return absl::FailedPreconditionError(
        absl::StrCat("data directory '", options.data_dir, "': ", error.message()));
  }
  LORAD_ASSIGN_OR_RETURN(std::unique_ptr<JobStore> store,
                         JobStore::Open(options.data_dir + "/jobs.db"));
  std::unique_ptr<JobManager> manager(new JobManager(options, std::move(store)));
  manager->RegisterSucceededAdapters();
  LORAD_RETURN_IF_ERROR(manager->Resume());
  manager->validate_thread_ = std::thread([m = manager.get()] { m->ValidateLoop(); });
  manager->train_thread_ = std::thread([m = manager.get()] { m->TrainLoop(); });
  return manager;
}

JobManager::JobManager(const JobManagerOptions& options, std::unique_ptr<JobStore> store)
    : options_(options), store_(std::move(store)) {}

JobManager::~JobManager() { Shutdown(); }

void JobManager::Shutdown() {
  absl::MutexLock shutdown_lock(&shutdown_mu_);
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    for (auto& [id, live] : live_) {
      if (live.gate != nullptr) live.gate->Stop();
    }
    const absl::Status ending = absl::UnavailableError("the server is shutting down");
    for (auto& [id, watch] : watches_) watch.watcher->OnWatchEnd(ending);
    watches_.clear();
  }
  if (validate_thread_.joinable()) validate_thread_.join();
  if (train_thread_.joinable()) train_thread_.join();
}

int JobManager::QueuedLocked() const {
  int queued = 0;
  for (const auto& [id, live] : live_) {
    const v1::JobState state = live.job.state();
    queued += state == v1::JOB_STATE_VALIDATING || state == v1::JOB_STATE_QUEUED;
  }
  return queued;
}

absl::StatusOr<v1::Job> JobManager::CreateJob(const v1::CreateJobRequest& request) {
  LORAD_RETURN_IF_ERROR(adapters::ValidateAdapterId(request.adapter_id()));
  JobDefaults defaults;
  defaults.max_context = options_.engine->max_context();
  defaults.checkpoint_every_steps = options_.checkpoint_every_steps;
  defaults.keep_checkpoints = options_.keep_checkpoints;
  v1::Hyperparameters requested = request.hyperparameters();
  if (!request.base_adapter_id().empty()) {
    absl::StatusOr<adapters::AdapterInfo> base = options_.adapters->Get(request.base_adapter_id());
    if (!base.ok()) {
      return absl::NotFoundError(
          absl::StrCat("base_adapter_id '", request.base_adapter_id(), "' is not registered"));
    }
    LORAD_RETURN_IF_ERROR(ApplyBaseAdapter(*base, &requested));
  }
  LORAD_ASSIGN_OR_RETURN(v1::Hyperparameters hp, EffectiveHyperparameters(requested, defaults));
  LORAD_RETURN_IF_ERROR(
      CheckLoraStateBudget(hp, options_.engine->spec(), options_.train_adapter_memory_bytes));
  const float split = request.validation_split();
  if (!(split >= 0.0f && split <= kMaxValidationSplit)) {
    return absl::InvalidArgumentError(
        absl::StrCat("validation_split: must be in [0, ", kMaxValidationSplit, "]"));
  }
  const bool has_validation =
      request.has_validation() && request.validation().source_case() != v1::Dataset::SOURCE_NOT_SET;
  if (has_validation && split > 0.0f) {
    return absl::InvalidArgumentError(
        "validation_split: give validation or validation_split, "
        "not both");
  }
  if (hp.early_stopping_patience() > 0 && !has_validation && split == 0.0f) {
    return absl::InvalidArgumentError(
        "hyperparameters.early_stopping_patience: needs a validation set (validation or "
        "validation_split)");
  }
  LORAD_ASSIGN_OR_RETURN(std::string dataset,
                         ReadDatasetSource(request.dataset(), "dataset", options_.data_dir,
                                           options_.max_dataset_bytes));
  std::string validation;
  if (has_validation) {
    LORAD_ASSIGN_OR_RETURN(validation,
                           ReadDatasetSource(request.validation(), "validation", options_.data_dir,
                                             options_.max_dataset_bytes));
  }

  // Checked again under the lock after the file write; checked here to fail fast.
  auto admit = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    if (stopping_) return absl::UnavailableError("the server is shutting down");
    if (options_.adapters->Get(request.adapter_id()).ok()) {
      return absl::AlreadyExistsError(
          absl::StrCat("adapter_id '", request.adapter_id(), "' is already registered"));
    }
    for (const auto& [id, live] : live_) {
      if (live.job.adapter_id() == request.adapter_id()) {
        return absl::AlreadyExistsError(absl::StrCat("adapter_id '", request.adapter_id(),
                                                     "' is the output of unfinished job ", id));
      }
    }
    if (QueuedLocked() >= options_.max_queued_jobs) {
      return absl::ResourceExhaustedError(
          absl::StrCat("the job queue is full (", options_.max_queued_jobs,
                       " jobs validating or queued; --max_queued_jobs)"));
    }
    return absl::OkStatus();
  };
  {
    absl::MutexLock lock(&mu_);
    LORAD_RETURN_IF_ERROR(admit());
  }

  LiveJob live;
  live.job.set_job_id(NewJobId());
  live.job.set_state(v1::JOB_STATE_VALIDATING);
  live.job.set_adapter_id(request.adapter_id());
  *live.job.mutable_hyperparameters() = hp;
  live.job.set_base_adapter_id(request.base_adapter_id());
  live.job.set_validation_split(split);
  ToProtoTimestamp(absl::Now(), live.job.mutable_create_time());
  const std::string job_id = live.job.job_id();
  live.dataset_path = absl::StrCat("jobs/", job_id, "/", kJobDatasetFile);
  const fs::path job_dir = fs::path(options_.data_dir) / "jobs" / job_id;
  std::error_code error;
  fs::create_directories(job_dir, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot create ", job_dir.string(), ": ", error.message()));
  }
  absl::Status status = WriteFileAtomically((job_dir / kJobDatasetFile).string(), {dataset});
  if (status.ok() && has_validation) {
    status = WriteFileAtomically((job_dir / kJobValidationFile).string(), {validation});
  }
  absl::MutexLock lock(&mu_);
  if (status.ok()) status = admit();
  if (status.ok()) status = store_->Create(JobRecord{live.job, live.dataset_path});
  if (!status.ok()) {
    fs::remove_all(job_dir, error);
    return status;
  }
  stats_->Transition(v1::JOB_STATE_UNSPECIFIED, v1::JOB_STATE_VALIDATING);
  v1::JobEvent event = NewEvent(job_id);
  event.mutable_state_change()->set_state(v1::JOB_STATE_VALIDATING);
  if (absl::StatusOr<int64_t> seq = store_->AppendEvent(event); !seq.ok()) {
    std::fprintf(stderr, "lorad: job %s: %s\n", job_id.c_str(),
                 std::string(seq.status().message()).c_str());
  }
  v1::Job job = live.job;
  live_.emplace(job_id, std::move(live));
  validate_queue_.push_back(job_id);
  return job;
}

absl::StatusOr<v1::Job> JobManager::GetJob(const std::string& job_id) const {
  {
    absl::MutexLock lock(&mu_);
    auto it = live_.find(job_id);
    if (it != live_.end()) return it->second.job;
    if (auto u = unsaved_.find(job_id); u != unsaved_.end()) return u->second.job;
  }
  LORAD_ASSIGN_OR_RETURN(JobRecord record, store_->Get(job_id));
  return record.job;
}

absl::StatusOr<JobPage> JobManager::ListJobs(v1::JobState state, const std::string& page_token,
                                             int32_t page_size) const {
  // State changes are persisted under mu_ before they are visible, so the store's filter is
  // current; a running job's latest step may not be written yet, and finished jobs the store
  // refused to record (unsaved_) are not: both are answered from memory.
  LORAD_ASSIGN_OR_RETURN(JobPage page, store_->List(state, page_token, page_size));
  absl::MutexLock lock(&mu_);
  for (v1::Job& job : page.jobs) {
    if (auto u = unsaved_.find(job.job_id()); u != unsaved_.end()) job = u->second.job;
    if (auto l = live_.find(job.job_id()); l != live_.end()) job = l->second.job;
  }
  return page;
}

absl::StatusOr<v1::Job> JobManager::CancelJob(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  auto it = live_.find(job_id);
  if (it == live_.end()) {
    LORAD_ASSIGN_OR_RETURN(JobRecord record, store_->Get(job_id));
    if (record.job.state() == v1::JOB_STATE_CANCELLED) return record.job;
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job_id, " has already ", JobStateName(record.job.state())));
  }
  LiveJob& live = it->second;
  if (live.job.state() == v1::JOB_STATE_RUNNING && live.gate != nullptr) {
    live.gate->Cancel();  // The training thread finishes the transition.
    return live.job;
  }
  v1::Job job = live.job;
  TransitionLocked(live, v1::JOB_STATE_CANCELLED, "");  // erases `live`
  job.set_state(v1::JOB_STATE_CANCELLED);
  return job;
}

absl::StatusOr<int64_t> JobManager::Watch(const std::string& job_id, int64_t after_sequence,
                                          JobWatcher* watcher) {
  // No event is between its store write and its fan-out while commit_mu_ and mu_ are held.
  absl::MutexLock commit(&commit_mu_);
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("the server is shutting down");
  v1::Job job;
  if (auto it = live_.find(job_id); it != live_.end()) {
    job = it->second.job;
  } else if (auto u = unsaved_.find(job_id); u != unsaved_.end()) {
    job = u->second.job;
  } else {
    LORAD_ASSIGN_OR_RETURN(JobRecord record, store_->Get(job_id));
    job = std::move(record.job);
  }
  if (after_sequence > 0) {
    // Events are committed under mu_ or commit_mu_, so nothing lands between this read and the
    // subscription below: the resumed stream has no gap and no repeat.
    LORAD_ASSIGN_OR_RETURN(EventPage page, store_->Events(job_id, after_sequence));
    for (const v1::JobEvent& event : page.events) watcher->OnJobEvent(event);
    if (IsTerminal(job.state())) return 0;
  } else {
    v1::JobEvent snapshot = NewEvent(job_id);
    snapshot.mutable_state_change()->set_state(job.state());
    snapshot.mutable_state_change()->set_error(job.error());
    watcher->OnJobEvent(snapshot);
  }
  const int64_t watch_id = next_watch_id_++;
  watches_[watch_id] = WatchEntry{job_id, watcher};
  return watch_id;
}

absl::StatusOr<EventPage> JobManager::ListJobEvents(const std::string& job_id,
                                                    int64_t after_sequence,
                                                    int32_t page_size) const {
  constexpr int32_t kDefaultPage = 100, kMaxPage = 1000;
  const int32_t limit = page_size <= 0 ? kDefaultPage : std::min(page_size, kMaxPage);
  return store_->Events(job_id, std::max<int64_t>(after_sequence, 0), limit);
}

absl::StatusOr<v1::ListJobCheckpointsResponse> JobManager::ListJobCheckpoints(
    const std::string& job_id) const {
  LORAD_RETURN_IF_ERROR(GetJob(job_id).status());
  const std::vector<finetune::CheckpointRecord> records =
      finetune::ListCheckpoints(options_.data_dir + "/jobs/" + job_id + "/checkpoints");
  v1::ListJobCheckpointsResponse response;
  for (const finetune::CheckpointRecord& r : records) {
    *response.add_checkpoints() = ToProtoCheckpoint(r, options_.data_dir);
  }
  response.set_best_step(static_cast<uint64_t>(finetune::BestCheckpointStep(records).value_or(0)));
  return response;
}

absl::StatusOr<v1::PublishCheckpointResponse> JobManager::PublishCheckpoint(
    const std::string& job_id, int64_t step, const std::string& adapter_id) {
  LORAD_RETURN_IF_ERROR(adapters::ValidateAdapterId(adapter_id));
  LORAD_RETURN_IF_ERROR(GetJob(job_id).status());
  if (step <= 0) return absl::InvalidArgumentError("step: must be a kept checkpoint's step (>= 1)");
  const std::string source = CheckpointAdapterSource(job_id, step);
  LORAD_RETURN_IF_ERROR(server::PublishCheckpoint(RunEnv(), options_.data_dir + "/jobs/" + job_id,
                                                  step, source, adapter_id));
  v1::PublishCheckpointResponse response;
  response.set_adapter_id(adapter_id);
  response.set_adapter_source(source);
  return response;
}

JobRunEnv JobManager::RunEnv() const {
  JobRunEnv env;
  env.weights = &options_.engine->weights();
  env.adapters = options_.adapters;
  env.data_dir = options_.data_dir;
  env.adapter_root = options_.adapter_root;
  env.base_model_name = options_.base_model_name;
  return env;
}

void JobManager::Unwatch(int64_t watch_id) {
  absl::MutexLock lock(&mu_);
  watches_.erase(watch_id);
}

absl::StatusOr<v1::Job> JobManager::WaitForTerminal(const std::string& job_id,
                                                    absl::Duration timeout) const {
  {
    absl::MutexLock lock(&mu_);
    auto gone = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !live_.contains(job_id); };
    mu_.AwaitWithTimeout(absl::Condition(&gone), timeout);
  }
  return GetJob(job_id);
}

absl::Status JobManager::ForgetAdapter(const std::string& adapter_id) {
  absl::MutexLock lock(&mu_);
  // A job that published the adapter but has not recorded SUCCEEDED yet records the flag with it.
  for (auto& [id, live] : live_) {
    if (live.job.adapter_id() == adapter_id) live.job.set_adapter_unloaded(true);
  }
  for (auto& [id, unsaved] : unsaved_) {
    if (unsaved.job.adapter_id() == adapter_id) unsaved.job.set_adapter_unloaded(true);
  }
  LORAD_ASSIGN_OR_RETURN(std::vector<JobRecord> done,
                         store_->ListInStates({v1::JOB_STATE_SUCCEEDED}));
  for (JobRecord& record : done) {
    if (record.job.adapter_id() != adapter_id || record.job.adapter_unloaded()) continue;
    record.job.set_adapter_unloaded(true);
    LORAD_RETURN_IF_ERROR(store_->Update(record.job));
  }
  return absl::OkStatus();
}

void JobManager::FlushUnsavedLocked() {
  for (auto it = unsaved_.begin(); it != unsaved_.end();) {
    if (store_->UpdateWithEvent(it->second.job, it->second.event).ok()) {
      unsaved_.erase(it++);
    } else {
      ++it;
    }
  }
}

bool JobManager::CommitLocked(const LiveJob& live, v1::JobEvent event) {
  FlushUnsavedLocked();
  const absl::StatusOr<int64_t> seq = store_->UpdateWithEvent(live.job, event);
  const absl::Status status = seq.status();
  if (seq.ok()) {
    event.set_sequence(static_cast<uint64_t>(*seq));
  } else {
    // The job goes on in memory; the store catches up with the next change.
    std::fprintf(stderr, "lorad: job %s: %s\n", live.job.job_id().c_str(),
                 std::string(status.message()).c_str());
  }
  FanOutLocked(event);
  return status.ok();
}

void JobManager::CommitRunEvent(const std::string& job_id, v1::JobEvent event,
                                const std::function<void(v1::Job&)>& update) {
  absl::MutexLock commit(&commit_mu_);
  v1::Job job;
  {
    absl::MutexLock lock(&mu_);
    auto it = live_.find(job_id);
    if (it == live_.end()) return;
    update(it->second.job);
    job = it->second.job;
  }
  // The synchronous commit runs without mu_: requests and other jobs do not wait for it.
  const absl::StatusOr<int64_t> seq = store_->UpdateWithEvent(job, event);
  if (seq.ok()) {
    event.set_sequence(static_cast<uint64_t>(*seq));
  } else {
    std::fprintf(stderr, "lorad: job %s: %s\n", job_id.c_str(),
                 std::string(seq.status().message()).c_str());
  }
  absl::MutexLock lock(&mu_);
  FanOutLocked(event);
}

void JobManager::FanOutLocked(const v1::JobEvent& event) {
  for (const auto& [id, watch] : watches_) {
    if (watch.job_id == event.job_id()) watch.watcher->OnJobEvent(event);
  }
}

void JobManager::TransitionLocked(LiveJob& live, v1::JobState state, const std::string& error) {
  v1::JobEvent event = NewEvent(live.job.job_id());
  v1::JobStateChange* change = event.mutable_state_change();
  change->set_previous(live.job.state());
  change->set_state(state);
  stats_->Transition(live.job.state(), state);
  change->set_error(error);
  live.job.set_state(state);
  live.job.set_error(error);
  if (state == v1::JOB_STATE_RUNNING && !live.job.has_start_time()) {
    *live.job.mutable_start_time() = event.time();
  }
  if (IsTerminal(state)) *live.job.mutable_end_time() = event.time();
  const v1::JobEvent sent = event;
  const bool saved = CommitLocked(live, std::move(event));
  if (IsTerminal(state)) {
    const std::string job_id = live.job.job_id();
    if (!saved) unsaved_[job_id] = Unsaved{live.job, sent};
    live_.erase(job_id);
  }
}

}  // namespace lorad::server
