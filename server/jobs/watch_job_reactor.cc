#include "server/jobs/watch_job_reactor.h"

#include <deque>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/common/status_to_grpc.h"
#include "server/jobs/job_convert.h"

namespace lorad::server {
namespace {

bool EntersTerminalState(const v1::JobEvent& event) {
  return event.has_state_change() && IsTerminal(event.state_change().state());
}

// Thread-safety: gRPC reactions, the manager's callbacks (under the manager's lock) and the
// constructor synchronize on mu_; gRPC operations are started outside mu_.
class WatchJobReactor final : public grpc::ServerWriteReactor<v1::JobEvent>, public JobWatcher {
 public:
  WatchJobReactor(JobManager* manager, const std::string& job_id, int64_t after_sequence)
      : manager_(manager) {
    absl::StatusOr<int64_t> watch_id = manager_->Watch(job_id, after_sequence, this);
    if (!watch_id.ok()) {
      {
        absl::MutexLock lock(&mu_);
        finish_called_ = true;
      }
      Finish(ToGrpcStatus(watch_id.status()));
      return;
    }
    bool write;
    std::optional<grpc::Status> finish;
    {
      absl::MutexLock lock(&mu_);
      watch_id_ = *watch_id;
      // 0: a resumed watch of a finished job; the replayed events are all there is.
      replay_only_ = *watch_id == 0;
      ready_ = true;
      write = TakeNextLocked();
      if (!write) finish = FinishLocked();
    }
    if (finish.has_value()) Finish(*finish);
    if (write) StartWrite(&current_);
  }

  void OnJobEvent(const v1::JobEvent& event) override {
    bool write;
    {
      absl::MutexLock lock(&mu_);
      if (finish_called_ || end_status_.has_value()) return;
      queue_.push_back(event);
      write = TakeNextLocked();
    }
    if (write) StartWrite(&current_);
  }

  void OnWatchEnd(const absl::Status& status) override {
    std::optional<grpc::Status> finish;
    {
      absl::MutexLock lock(&mu_);
      watch_id_ = 0;  // The manager has dropped the watch.
      end_status_ = ToGrpcStatus(status);
      queue_.clear();
      finish = FinishLocked();
    }
    if (finish.has_value()) Finish(*finish);
  }

  void OnWriteDone(bool ok) override {
    bool write = false;
    std::optional<grpc::Status> finish;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok && !end_status_.has_value()) end_status_ = grpc::Status::CANCELLED;
      finish = FinishLocked();
      if (!finish.has_value()) write = TakeNextLocked();
    }
    if (finish.has_value()) Finish(*finish);
    if (write) StartWrite(&current_);
  }

  void OnCancel() override {
    std::optional<grpc::Status> finish;
    {
      absl::MutexLock lock(&mu_);
      if (!end_status_.has_value()) end_status_ = grpc::Status::CANCELLED;
      finish = FinishLocked();
    }
    if (finish.has_value()) Finish(*finish);
  }

  void OnDone() override {
    int64_t watch_id;
    {
      absl::MutexLock lock(&mu_);
      watch_id = watch_id_;
    }
    // After Unwatch returns, the manager calls this watcher no more.
    if (watch_id != 0) manager_->Unwatch(watch_id);
    delete this;
  }

 private:
  // Moves the next queued event to current_ when a write may start.
  bool TakeNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!ready_ || writing_ || finish_called_ || sent_terminal_ || end_status_.has_value() ||
        queue_.empty()) {
      return false;
    }
    current_ = std::move(queue_.front());
    queue_.pop_front();
    sent_terminal_ = EntersTerminalState(current_);
    writing_ = true;
    return true;
  }

  // The status to finish with, once, when nothing is being written and the stream is over.
  std::optional<grpc::Status> FinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finish_called_ || writing_) return std::nullopt;
    if (end_status_.has_value()) {
      finish_called_ = true;
      return *end_status_;
    }
    if (sent_terminal_ || (replay_only_ && queue_.empty())) {
      finish_called_ = true;
      return grpc::Status::OK;
    }
    return std::nullopt;
  }

  JobManager* const manager_;
  absl::Mutex mu_;
  int64_t watch_id_ ABSL_GUARDED_BY(mu_) = 0;  // 0: not (or no longer) watching
  bool ready_ ABSL_GUARDED_BY(mu_) = false;    // watch_id_ is set; writes may start
  std::deque<v1::JobEvent> queue_ ABSL_GUARDED_BY(mu_);
  v1::JobEvent current_;  // the message being written; owned by gRPC while writing_
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool sent_terminal_ ABSL_GUARDED_BY(mu_) = false;
  bool replay_only_ ABSL_GUARDED_BY(mu_) = false;  // no live events follow the queued ones
  std::optional<grpc::Status> end_status_ ABSL_GUARDED_BY(mu_);  // cancelled or shut down
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

grpc::ServerWriteReactor<v1::JobEvent>* StartWatchJob(JobManager* manager,
                                                      const std::string& job_id,
                                                      int64_t after_sequence) {
  return new WatchJobReactor(manager, job_id, after_sequence);
}

}  // namespace lorad::server
