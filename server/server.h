// LoradServer: the daemon's lifecycle. Owns the gRPC server (lorad.v1 services, health,
// reflection) and the metrics endpoint; starts them, reports readiness through
// grpc.health.v1.Health, and drains them on shutdown. Signal handling is main()'s job.
#pragma once

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/server.h"
#include "server/config.h"

namespace lorad::server {

class Metrics;
class InferenceService;
class AdaptersService;
class FineTuningService;

// Lifecycle: Create() -> Start() -> (serve) -> Shutdown() -> Wait() returns.
// Thread-safety: Create/Start from one thread; Shutdown() and the accessors are thread-safe once
// Start() has returned; Wait() may be called from any thread.
class LoradServer {
 public:
  // Validates `config` and checks the model path (cheap checks only; binds nothing).
  // INVALID_ARGUMENT / NOT_FOUND / PERMISSION_DENIED with a one-line message on failure.
  static absl::StatusOr<std::unique_ptr<LoradServer>> Create(const ServerConfig& config);

  ~LoradServer();
  LoradServer(const LoradServer&) = delete;
  LoradServer& operator=(const LoradServer&) = delete;

  // Binds the gRPC and metrics addresses and starts serving. Health reports NOT_SERVING until
  // initialization finishes, then SERVING. UNAVAILABLE if an address cannot be bound (nothing is
  // left running then). Call once.
  absl::Status Start();

  // Health to NOT_SERVING, stop accepting RPCs, let running RPCs finish for up to `grace`, then
  // cancel the rest; stops the metrics endpoint. Blocks until done; later calls return at once.
  // Must not be called from a gRPC callback thread.
  void Shutdown(absl::Duration grace);

  // Blocks until the gRPC server has shut down (after Shutdown()).
  void Wait();

  // Whether health currently reports SERVING.
  bool serving() const;

  // "host:port" of the bound gRPC address (the real port when the config said port 0).
  std::string listen_address() const;
  // "host:port" of the bound metrics address; empty when metrics are disabled.
  std::string metrics_address() const;

  // The effective configuration.
  const ServerConfig& config() const { return config_; }
  // The metrics registry; valid for the server's lifetime.
  Metrics& metrics() { return *metrics_; }

 private:
  explicit LoradServer(const ServerConfig& config);
  void SetServing(bool serving);

  const ServerConfig config_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<InferenceService> inference_service_;
  std::unique_ptr<AdaptersService> adapters_service_;
  std::unique_ptr<FineTuningService> finetuning_service_;
  std::unique_ptr<grpc::Server> grpc_server_;  // Set by Start(), then immutable.
  int grpc_port_ = 0;                          // Set by Start(), then immutable.
  int metrics_port_ = 0;                       // Set by Start(), then immutable.

  mutable absl::Mutex mu_;
  bool serving_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace lorad::server
