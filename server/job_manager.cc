// JobManager: the request side (create, get, list, cancel, watch) and state transitions. The
// validation and training threads live in job_manager_threads.cc.
#include "server/job_manager.h"

#include <cstdio>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "adapters/adapter_store.h"
#include "engine/base/atomic_file.h"
#include "engine/base/status_macros.h"
#include "engine/engine.h"
#include "server/job_convert.h"
#include "server/job_files.h"
#include "server/proto_time.h"

namespace lorad::server {
namespace {

namespace fs = std::filesystem;

constexpr char kDatasetFile[] = "dataset.jsonl";

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
  LORAD_ASSIGN_OR_RETURN(v1::Hyperparameters hp,
                         EffectiveHyperparameters(request.hyperparameters(), defaults));
  std::string dataset;
  switch (request.dataset().source_case()) {
    case v1::Dataset::kInlineJsonl:
      if (static_cast<int64_t>(request.dataset().inline_jsonl().size()) >
          options_.max_dataset_bytes) {
        return absl::InvalidArgumentError(
            absl::StrCat("dataset.inline_jsonl has ", request.dataset().inline_jsonl().size(),
                         " bytes, over the server's limit of ", options_.max_dataset_bytes,
                         " (--max_dataset_bytes)"));
      }
      dataset = request.dataset().inline_jsonl();
      break;
    case v1::Dataset::kPath: {
      LORAD_ASSIGN_OR_RETURN(dataset, ReadDataFile(options_.data_dir, request.dataset().path(),
                                                   options_.max_dataset_bytes));
      break;
    }
    default:
      return absl::InvalidArgumentError("dataset: set inline_jsonl or path");
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
  ToProtoTimestamp(absl::Now(), live.job.mutable_create_time());
  const std::string job_id = live.job.job_id();
  live.dataset_path = absl::StrCat("jobs/", job_id, "/", kDatasetFile);
  const fs::path job_dir = fs::path(options_.data_dir) / "jobs" / job_id;
  std::error_code error;
  fs::create_directories(job_dir, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot create ", job_dir.string(), ": ", error.message()));
  }
  absl::Status status = WriteFileAtomically((job_dir / kDatasetFile).string(), {dataset});
  absl::MutexLock lock(&mu_);
  if (status.ok()) status = admit();
  if (status.ok()) status = store_->Create(JobRecord{live.job, live.dataset_path});
  if (!status.ok()) {
    fs::remove_all(job_dir, error);
    return status;
  }
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
  // Every change is persisted under mu_ before it is visible, so the store is current, except
  // for finished jobs it refused to record (unsaved_), which are answered from memory.
  LORAD_ASSIGN_OR_RETURN(JobPage page, store_->List(state, page_token, page_size));
  absl::MutexLock lock(&mu_);
  for (v1::Job& job : page.jobs) {
    if (auto u = unsaved_.find(job.job_id()); u != unsaved_.end()) job = u->second.job;
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

absl::StatusOr<int64_t> JobManager::Watch(const std::string& job_id, JobWatcher* watcher) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("the server is shutting down");
  v1::Job job;
  if (auto it = live_.find(job_id); it != live_.end()) {
    job = it->second.job;
  } else {
    LORAD_ASSIGN_OR_RETURN(JobRecord record, store_->Get(job_id));
    job = std::move(record.job);
  }
  v1::JobEvent snapshot = NewEvent(job_id);
  snapshot.mutable_state_change()->set_state(job.state());
  snapshot.mutable_state_change()->set_error(job.error());
  watcher->OnJobEvent(snapshot);
  const int64_t watch_id = next_watch_id_++;
  watches_[watch_id] = WatchEntry{job_id, watcher};
  return watch_id;
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
  const absl::Status status = store_->UpdateWithEvent(live.job, event);
  if (!status.ok()) {
    // The job goes on in memory; the store catches up with the next change.
    std::fprintf(stderr, "lorad: job %s: %s\n", live.job.job_id().c_str(),
                 std::string(status.message()).c_str());
  }
  for (const auto& [id, watch] : watches_) {
    if (watch.job_id == event.job_id()) watch.watcher->OnJobEvent(event);
  }
  return status.ok();
}

void JobManager::TransitionLocked(LiveJob& live, v1::JobState state, const std::string& error) {
  v1::JobEvent event = NewEvent(live.job.job_id());
  v1::JobStateChange* change = event.mutable_state_change();
  change->set_previous(live.job.state());
  change->set_state(state);
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
