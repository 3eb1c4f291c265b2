#include "server/jobs/job_stats.h"

namespace lorad::server {
namespace {

bool ValidState(v1::JobState state) {
  return state > v1::JOB_STATE_UNSPECIFIED && state <= v1::JOB_STATE_CANCELLED;
}

}  // namespace

void JobStats::Transition(v1::JobState previous, v1::JobState state) {
  absl::MutexLock lock(&mu_);
  if (ValidState(previous)) --s_.jobs_by_state[previous];
  if (ValidState(state)) ++s_.jobs_by_state[state];
}

void JobStats::AddJobs(v1::JobState state, int64_t count) {
  absl::MutexLock lock(&mu_);
  if (ValidState(state)) s_.jobs_by_state[state] += count;
}

void JobStats::Progress(const v1::TrainingProgress& progress, int64_t new_tokens) {
  absl::MutexLock lock(&mu_);
  s_.trained_tokens += static_cast<double>(new_tokens);
  s_.training = true;
  s_.progress = progress;
  if (progress.has_eval()) {
    s_.has_eval = true;
    s_.eval_loss = progress.eval().loss();
  }
}

void JobStats::TrainingEnded() {
  absl::MutexLock lock(&mu_);
  s_.training = false;
  s_.has_eval = false;
  s_.progress.Clear();
}

JobStats::Snapshot JobStats::Get() const {
  absl::MutexLock lock(&mu_);
  return s_;
}

}  // namespace lorad::server
