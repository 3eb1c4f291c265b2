// Fine-tune jobs from request to servable adapter. CreateJob validates a request, saves its
// dataset to <data_dir>/jobs/<job_id>/dataset.jsonl and records the job (VALIDATING) in the job
// store. A validation thread then tokenizes the dataset (VALIDATING -> QUEUED, or FAILED naming
// the JSONL line) and one training thread runs the queued jobs one at a time (RUNNING ->
// SUCCEEDED | FAILED | CANCELLED; see job_runner.h). Every change is written to the store and
// fanned out to watchers. On start, jobs the previous process left unfinished resume (a RUNNING
// one from its newest checkpoint) and the adapters of succeeded jobs are registered again.
// Shutdown stops training within one op and leaves unfinished jobs as they are, to resume.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/finetune/dataset.h"
#include "engine/finetune/train_config.h"
#include "lorad/v1/finetuning.pb.h"
#include "server/jobs/job_gate.h"
#include "server/jobs/job_runner.h"
#include "server/jobs/job_stats.h"
#include "server/jobs/job_store.h"

namespace lorad {
class Engine;
}  // namespace lorad

namespace lorad::adapters {
class AdapterStore;
}  // namespace lorad::adapters

namespace lorad::server {

// Receives a watched job's events. Both methods are called with the manager's lock held: they
// must not block and must not call the JobManager.
class JobWatcher {
 public:
  virtual ~JobWatcher() = default;
  // The next event: first the snapshot (a state_change from JOB_STATE_UNSPECIFIED to the
  // current state), then every event of the job in order.
  virtual void OnJobEvent(const v1::JobEvent& event) = 0;
  // The watch ends early (server shutdown); no call follows.
  virtual void OnWatchEnd(const absl::Status& status) = 0;
};

struct JobManagerOptions {
  std::string data_dir;      // jobs.db and jobs/<job_id>/; dataset.path is relative to it
  std::string adapter_root;  // the adapter store's root; adapters go to finetuned/<job_id>
  Engine* engine = nullptr;  // the resident base, tokenizer and serving load; outlives us
  adapters::AdapterStore* adapters = nullptr;     // outlives us
  std::string base_model_name;                    // written into adapter_config.json
  int64_t max_dataset_bytes = int64_t{64} << 20;  // inline or file dataset size limit
  int32_t max_queued_jobs = 16;                   // VALIDATING + QUEUED; beyond: RESOURCE_EXHAUSTED
  int32_t checkpoint_every_steps = 50;  // default for Hyperparameters.checkpoint_every_steps
  int32_t keep_checkpoints = 2;         // default for Hyperparameters.keep_checkpoints
  int32_t train_threads = 0;            // LibTorch intra-op threads; 0 = its default
  // Decides LoraTrainConfig::recompute_activations of each job (finetune::ShouldRecompute).
  finetune::RecomputePolicy train_recompute = finetune::RecomputePolicy::kAuto;
  int64_t train_activation_memory_bytes = int64_t{finetune::kDefaultActivationBudgetMb} << 20;
  // Bound on finetune::LoraTrainingStateBytes of a job; CreateJob refuses more.
  int64_t train_adapter_memory_bytes = int64_t{finetune::kDefaultLoraStateBudgetMb} << 20;
  absl::Duration train_max_pause = absl::Milliseconds(500);  // see JobGate
};

// Thread-safety: thread-safe.
class JobManager {
 public:
  // Opens <data_dir>/jobs.db, registers the adapters of succeeded jobs, resumes unfinished jobs
  // and starts the threads.
  static absl::StatusOr<std::unique_ptr<JobManager>> Create(const JobManagerOptions& options);
  // Shutdown().
  ~JobManager();
  JobManager(const JobManager&) = delete;
  JobManager& operator=(const JobManager&) = delete;

  // Validates `request` and records the job in VALIDATING. INVALID_ARGUMENT (adapter_id,
  // hyper-parameters, dataset or validation missing or over max_dataset_bytes, a path outside
  // the data root, validation_split out of range or with validation, early stopping without a
  // validation set, settings that contradict the base adapter), NOT_FOUND (a dataset path, the
  // base adapter), ALREADY_EXISTS (adapter_id registered or the target of an unfinished job),
  // RESOURCE_EXHAUSTED (queue full), UNAVAILABLE (shutting down).
  absl::StatusOr<v1::Job> CreateJob(const v1::CreateJobRequest& request);
  // NOT_FOUND for an unknown id.
  absl::StatusOr<v1::Job> GetJob(const std::string& job_id) const;
  absl::StatusOr<JobPage> ListJobs(v1::JobState state, const std::string& page_token,
                                   int32_t page_size) const;
  // VALIDATING / QUEUED jobs are CANCELLED at once; a RUNNING job stops within one op of its
  // current step (the returned job may still say RUNNING). Cancelling a CANCELLED job is a
  // no-op; SUCCEEDED / FAILED: FAILED_PRECONDITION. NOT_FOUND for an unknown id.
  absl::StatusOr<v1::Job> CancelJob(const std::string& job_id);

  // Records that `adapter_id` was unloaded: every SUCCEEDED job that produced it gets
  // Job.adapter_unloaded, so the next start does not register it again. OK when no job produced
  // it; INTERNAL when the job store cannot be written.
  absl::Status ForgetAdapter(const std::string& adapter_id);

  // Subscribes `watcher` (which must stay valid until Unwatch returns or OnWatchEnd is called)
  // to the job's events. With after_sequence 0 the snapshot is delivered before this returns;
  // otherwise the stored events after that sequence number are. Returns the watch id, or 0 when
  // the job had already finished and the replay holds all there is (nothing follows). NOT_FOUND
  // for an unknown job, UNAVAILABLE when shutting down.
  absl::StatusOr<int64_t> Watch(const std::string& job_id, int64_t after_sequence,
                                JobWatcher* watcher);

  // The job's stored events after `after_sequence`, `page_size` per page (0: 100; at most
  // 1000). NOT_FOUND for an unknown job.
  absl::StatusOr<EventPage> ListJobEvents(const std::string& job_id, int64_t after_sequence,
                                          int32_t page_size) const;
  // The job's kept checkpoints, newest first, and the best by eval loss. NOT_FOUND for an
  // unknown job.
  absl::StatusOr<v1::ListJobCheckpointsResponse> ListJobCheckpoints(
      const std::string& job_id) const;
  // Registers the job's kept checkpoint of `step` as `adapter_id`. INVALID_ARGUMENT (adapter
  // id), NOT_FOUND (job or checkpoint), ALREADY_EXISTS (adapter_id registered).
  absl::StatusOr<v1::PublishCheckpointResponse> PublishCheckpoint(const std::string& job_id,
                                                                  int64_t step,
                                                                  const std::string& adapter_id);
  // Ends a watch; no call reaches its watcher after this returns. Unknown ids: no-op.
  void Unwatch(int64_t watch_id);

  // Counts and the running job's progress, for the metrics endpoint.
  std::shared_ptr<const JobStats> stats() const { return stats_; }

  // Blocks until the job is in a terminal state or `timeout` passes; returns the job.
  absl::StatusOr<v1::Job> WaitForTerminal(const std::string& job_id, absl::Duration timeout) const;

  // Stops training within one op (the job stays RUNNING, to resume on the next start), ends
  // every watch with UNAVAILABLE and joins the threads. New requests get UNAVAILABLE. Later
  // calls return at once.
  void Shutdown();

 private:
  // A job's tokenized training and evaluation examples.
  struct JobData {
    std::vector<finetune::TrainExample> train;
    std::vector<finetune::TrainExample> eval;
    int64_t truncated = 0;
    int64_t dropped = 0;
  };
  // An unfinished job.
  struct LiveJob {
    v1::Job job;
    std::string dataset_path;  // relative to data_dir
    // The tokenized datasets, kept from validation until training takes them.
    std::shared_ptr<JobData> data;
    std::shared_ptr<JobGate> gate;  // while RUNNING
  };
  struct WatchEntry {
    std::string job_id;
    JobWatcher* watcher;
  };
  class Listener;

  JobManager(const JobManagerOptions& options, std::unique_ptr<JobStore> store);
  absl::Status Resume();
  void RegisterSucceededAdapters();
  void ValidateLoop();
  void TrainLoop();
  void Validate(const std::string& job_id);
  void Train(const std::string& job_id);
  // Reads and tokenizes a job's dataset and validation set (a file in its job directory, or the
  // split of Job.validation_split); an exception becomes INTERNAL "dataset: ...".
  absl::StatusOr<JobData> LoadData(const v1::Job& job, const std::string& dataset_path) const;
  // Reads and tokenizes one JSONL file (relative to data_dir); `field` names it in errors.
  absl::StatusOr<finetune::ParsedDataset> ParseDataset(const std::string& path,
                                                       const v1::Hyperparameters& hp,
                                                       const char* field) const;
  // The warm start's parameters: the base adapter's weights (FAILED_PRECONDITION /
  // NOT_FOUND naming base_adapter_id when it cannot be used).
  absl::StatusOr<finetune::TrainedLora> LoadBaseAdapter(const v1::Job& job) const;
  // The environment RunTrainingJob and PublishCheckpoint need.
  JobRunEnv RunEnv() const;

  // Moves `live` to `state` (timestamps, error), persists and fans out the state change; a
  // terminal job leaves live_.
  void TransitionLocked(LiveJob& live, v1::JobState state, const std::string& error)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Persists `live.job` with `event` and fans the event out; false when the store refused the
  // write (the job goes on in memory; unsaved terminal records are retried, see unsaved_).
  bool CommitLocked(const LiveJob& live, v1::JobEvent event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Applies `update` to the live job, writes it with `event` to the store without holding mu_
  // (a training step's progress or checkpoint: the synchronous commit must not stall requests),
  // then fans the event out. Unknown or finished jobs: no-op.
  void CommitRunEvent(const std::string& job_id, v1::JobEvent event,
                      const std::function<void(v1::Job&)>& update) ABSL_LOCKS_EXCLUDED(mu_);
  // Delivers `event` to the job's watchers.
  void FanOutLocked(const v1::JobEvent& event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Retries writing unsaved_ records; those that succeed leave it.
  void FlushUnsavedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // An event of job `job_id` stamped now.
  static v1::JobEvent NewEvent(const std::string& job_id);
  int QueuedLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const JobManagerOptions options_;
  const std::unique_ptr<JobStore> store_;
  const std::shared_ptr<JobStats> stats_ = std::make_shared<JobStats>();

  // Serializes CommitRunEvent's store write and fan-out with Watch's replay and subscription
  // (acquired before mu_).
  absl::Mutex commit_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, LiveJob> live_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> validate_queue_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> train_queue_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<int64_t, WatchEntry> watches_ ABSL_GUARDED_BY(mu_);
  // Finished jobs whose final record the store refused (a full disk): GetJob and ListJobs answer
  // with these, and every later commit retries them. Lost if the process ends first; the store
  // then still says RUNNING and the next start resumes the job from its last checkpoint.
  struct Unsaved {
    v1::Job job;
    v1::JobEvent event;
  };
  absl::flat_hash_map<std::string, Unsaved> unsaved_ ABSL_GUARDED_BY(mu_);
  int64_t next_watch_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  absl::Mutex shutdown_mu_;  // serializes Shutdown()
  std::thread validate_thread_;
  std::thread train_thread_;
};

}  // namespace lorad::server
