#include "server/common/health_service.h"

#include <optional>

namespace lorad::server {

using grpc::health::v1::HealthCheckResponse;

// One Watch call. Lifetime: gRPC owns it until OnDone(), which unregisters it first; the
// service calls Update() only while it is registered (under the service's mu_).
class HealthService::Watcher final : public grpc::ServerWriteReactor<HealthCheckResponse> {
 public:
  Watcher(HealthService* service, std::string name) : service_(service), name_(std::move(name)) {}

  // Called with the service's mu_ held: queues `status` if it differs from the last one sent.
  // gRPC calls (StartWrite, Finish) are made without mu_ held, since their reactions may run
  // on this thread.
  void Update(Status status) {
    {
      absl::MutexLock lock(&mu_);
      if (status == last_queued_) return;
      last_queued_ = status;
      pending_ = status;
      if (writing_ || !TakeNextLocked()) return;
    }
    StartWrite(&response_);
  }

  void OnWriteDone(bool ok) override {
    std::optional<grpc::Status> finish;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      finish.swap(deferred_finish_);
    }
    if (finish.has_value()) {
      Finish(*finish);
      return;
    }
    {
      absl::MutexLock lock(&mu_);
      if (!ok) return;  // The call is ending; OnCancel/OnDone follow.
      if (!pending_.has_value() || !TakeNextLocked()) return;
    }
    StartWrite(&response_);
  }

  void OnCancel() override { FinishOnce(grpc::Status::CANCELLED); }

  void FinishOnce(const grpc::Status& status) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
      if (writing_) {  // Finish() once the write in flight is done.
        deferred_finish_ = status;
        return;
      }
    }
    Finish(status);
  }

  void OnDone() override {
    service_->Unwatch(this);
    delete this;
  }

 private:
  // Moves the pending status into response_ and claims the writer; false when finished.
  bool TakeNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return false;
    response_.set_status(*pending_);
    pending_.reset();
    writing_ = true;
    return true;
  }

  HealthService* const service_;
  const std::string name_;
  absl::Mutex mu_;
  std::optional<Status> pending_ ABSL_GUARDED_BY(mu_);
  std::optional<Status> last_queued_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> deferred_finish_ ABSL_GUARDED_BY(mu_);
  HealthCheckResponse response_;  // Written only by the holder of writing_.

  friend class HealthService;
};

HealthService::~HealthService() = default;

HealthService::Status HealthService::Get(const std::string& service) const {
  auto it = statuses_.find(service);
  return it == statuses_.end() ? HealthCheckResponse::SERVICE_UNKNOWN : it->second;
}

void HealthService::NotifyLocked() {
  for (Watcher* watcher : watchers_) watcher->Update(Get(watcher->name_));
}

void HealthService::Set(const std::string& service, Status status) {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return;
  statuses_[service] = status;
  NotifyLocked();
}

void HealthService::SetAll(Status status) {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return;
  statuses_[""] = status;
  for (auto& [name, value] : statuses_) value = status;
  NotifyLocked();
}

void HealthService::Shutdown() {
  absl::MutexLock lock(&mu_);
  statuses_[""] = HealthCheckResponse::NOT_SERVING;
  for (auto& [name, value] : statuses_) value = HealthCheckResponse::NOT_SERVING;
  NotifyLocked();
  shut_down_ = true;
}

void HealthService::Unwatch(Watcher* watcher) {
  absl::MutexLock lock(&mu_);
  watchers_.erase(watcher);
}

grpc::ServerUnaryReactor* HealthService::Check(grpc::CallbackServerContext* context,
                                               const grpc::health::v1::HealthCheckRequest* request,
                                               HealthCheckResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  grpc::Status status = Authorize(auth_, *context, Role::kInference);
  if (status.ok()) {
    absl::MutexLock lock(&mu_);
    const Status serving = Get(request->service());
    if (serving == HealthCheckResponse::SERVICE_UNKNOWN) {
      status = grpc::Status(grpc::StatusCode::NOT_FOUND,
                            "unknown service \"" + request->service() + "\"");
    } else {
      response->set_status(serving);
    }
  }
  reactor->Finish(status);
  return reactor;
}

grpc::ServerWriteReactor<HealthCheckResponse>* HealthService::Watch(
    grpc::CallbackServerContext* context, const grpc::health::v1::HealthCheckRequest* request) {
  auto* watcher = new Watcher(this, request->service());
  grpc::Status status = Authorize(auth_, *context, Role::kInference);
  if (!status.ok()) {
    watcher->FinishOnce(status);
    return watcher;
  }
  absl::MutexLock lock(&mu_);
  watchers_.insert(watcher);
  watcher->Update(Get(request->service()));
  return watcher;
}

}  // namespace lorad::server
