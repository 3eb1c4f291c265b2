// What the job manager tells Prometheus: kept current as jobs change state and train
// (exported by JobMetricsCollector, server/metrics/job_metrics.h).
#pragma once

#include <array>
#include <cstdint>
#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "lorad/v1/finetuning.pb.h"

namespace lorad::server {

// Thread-safe.
class JobStats {
 public:
  struct Snapshot {
    std::array<int64_t, 7> jobs_by_state{};  // indexed by v1::JobState
    double trained_tokens = 0;               // over every job since the process started
    bool training = false;                   // a job is RUNNING and has reported a step
    v1::TrainingProgress progress;           // the running job's latest step
    bool has_eval = false;                   // the running job has been evaluated
    float eval_loss = 0.0f;                  // its latest eval loss
    // Jobs that reached SUCCEEDED, FAILED or CANCELLED since the process started, by state.
    std::array<int64_t, 7> finished_by_state{};
    // Unix time a RUNNING job last showed life: entered RUNNING or finished a step (0: none
    // has run since the process started).
    double last_progress_unix_s = 0;
  };

  // A job enters `state` (from `previous`, JOB_STATE_UNSPECIFIED for a new or loaded job).
  void Transition(v1::JobState previous, v1::JobState state);
  // Adds `count` jobs in `state` (start-up: the stored jobs).
  void AddJobs(v1::JobState state, int64_t count);
  // The running job finished a step (`new_tokens` trained by it).
  void Progress(const v1::TrainingProgress& progress, int64_t new_tokens);
  // The running job stopped training.
  void TrainingEnded();
  Snapshot Get() const;

  // The clock for last_progress_unix_s (tests pass their own); the default is the wall clock.
  explicit JobStats(std::function<double()> now_unix_s = nullptr);

 private:
  const std::function<double()> now_unix_s_;
  mutable absl::Mutex mu_;
  Snapshot s_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lorad::server
