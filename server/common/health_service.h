// grpc.health.v1.Health, served by lorad itself (instead of gRPC's default service) so that
// With auth (unless --open_health) it requires a token: Check answers the current status of "" (the
// server) or a named service; Watch streams it now and on every change. Shutdown() sets everything
// to NOT_SERVING for good.
#pragma once

#include <map>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "server/common/auth.h"

namespace lorad::server {

// Thread-safe.
class HealthService final : public grpc::health::v1::Health::CallbackService {
 public:
  using Status = grpc::health::v1::HealthCheckResponse::ServingStatus;

  // `auth` (null: open) is checked for any role; it must outlive the service.
  explicit HealthService(const Authorizer* auth) : auth_(auth) {}
  ~HealthService() override;

  // Sets the status of `service` ("" = the whole server).
  void Set(const std::string& service, Status status);
  // Sets the status of the server and of every named service.
  void SetAll(Status status);
  // Everything NOT_SERVING; later Set()/SetAll() calls are ignored.
  void Shutdown();

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* context,
                                  const grpc::health::v1::HealthCheckRequest* request,
                                  grpc::health::v1::HealthCheckResponse* response) override;
  grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* context,
      const grpc::health::v1::HealthCheckRequest* request) override;

  class Watcher;

 private:
  friend class Watcher;
  // SERVICE_UNKNOWN for a service never set.
  Status Get(const std::string& service) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NotifyLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Unwatch(Watcher* watcher);

  const Authorizer* const auth_;
  mutable absl::Mutex mu_;
  std::map<std::string, Status> statuses_ ABSL_GUARDED_BY(mu_);
  std::set<Watcher*> watchers_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace lorad::server
