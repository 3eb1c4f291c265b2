#include "server/jobs/job_stats.h"

#include <utility>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace lorad::server {
namespace {

bool ValidState(v1::JobState state) {
  return state > v1::JOB_STATE_UNSPECIFIED && state <= v1::JOB_STATE_CANCELLED;
}

bool Terminal(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

}  // namespace

JobStats::JobStats(std::function<double()> now_unix_s)
    : now_unix_s_(now_unix_s != nullptr ? std::move(now_unix_s) : [] {
        return absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
      }) {}

void JobStats::Transition(v1::JobState previous, v1::JobState state) {
  const double now = now_unix_s_();
  absl::MutexLock lock(&mu_);
  if (ValidState(previous)) --s_.jobs_by_state[previous];
  if (ValidState(state)) ++s_.jobs_by_state[state];
  if (Terminal(state) && state != previous) ++s_.finished_by_state[state];
  if (state == v1::JOB_STATE_RUNNING) s_.last_progress_unix_s = now;
}

void JobStats::AddJobs(v1::JobState state, int64_t count) {
  absl::MutexLock lock(&mu_);
  if (ValidState(state)) s_.jobs_by_state[state] += count;
}

void JobStats::Progress(const v1::TrainingProgress& progress, int64_t new_tokens) {
  const double now = now_unix_s_();
  absl::MutexLock lock(&mu_);
  s_.last_progress_unix_s = now;
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
