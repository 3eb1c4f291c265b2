#include "server/jobs/watch_job_reactor.h"

#include <deque>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/common/queued_write_reactor.h"
#include "server/common/status_to_grpc.h"
#include "server/jobs/job_convert.h"

namespace lorad::server {
namespace {

bool EntersTerminalState(const v1::JobEvent& event) {
  return event.has_state_change() && IsTerminal(event.state_change().state());
}

// Thread-safety: the manager's callbacks (under the manager's lock) and gRPC's reactions meet
// in QueuedWriteReactor; watch_id_ is guarded by mu_.
class WatchJobReactor final : public QueuedWriteReactor<v1::JobEvent>, public JobWatcher {
 public:
  // Held until the watch id is known, so that OnDone() can always unwatch.
  WatchJobReactor(JobManager* manager, const std::string& job_id, int64_t after_sequence)
      : QueuedWriteReactor(/*held=*/true), manager_(manager) {
    absl::StatusOr<int64_t> watch_id = manager_->Watch(job_id, after_sequence, this);
    if (!watch_id.ok()) {
      Abort(ToGrpcStatus(watch_id.status()));
    } else {
      absl::MutexLock lock(&mu_);
      watch_id_ = *watch_id;
    }
    // 0: a resumed watch of a finished job; the replayed events are all there is.
    if (watch_id.ok() && *watch_id == 0) Push(std::nullopt, grpc::Status::OK);
    Release();
  }

  // The stream ends OK after the event that enters a terminal state.
  void OnJobEvent(const v1::JobEvent& event) override {
    std::optional<grpc::Status> end;
    if (EntersTerminalState(event)) end = grpc::Status::OK;
    Push(event, std::move(end));
  }

  void OnWatchEnd(const absl::Status& status) override {
    {
      absl::MutexLock lock(&mu_);
      watch_id_ = 0;  // The manager has dropped the watch.
    }
    Abort(ToGrpcStatus(status));
  }

 private:
  void OnBroken() override { Abort(grpc::Status::CANCELLED); }

  void OnStreamDone() override {
    int64_t watch_id;
    {
      absl::MutexLock lock(&mu_);
      watch_id = watch_id_;
    }
    // After Unwatch returns, the manager calls this watcher no more.
    if (watch_id != 0) manager_->Unwatch(watch_id);
  }

  JobManager* const manager_;
  absl::Mutex mu_;
  int64_t watch_id_ ABSL_GUARDED_BY(mu_) = 0;  // 0: not (or no longer) watching
};

}  // namespace

grpc::ServerWriteReactor<v1::JobEvent>* StartWatchJob(JobManager* manager,
                                                      const std::string& job_id,
                                                      int64_t after_sequence) {
  return new WatchJobReactor(manager, job_id, after_sequence);
}

}  // namespace lorad::server
