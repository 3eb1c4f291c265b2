// LoradServer: the daemon's lifecycle. Owns the engine, the gRPC server (lorad.v1 services,
// health, reflection) and the metrics endpoint; starts them, loads the model while health says
// NOT_SERVING, and drains them on shutdown. Signal handling is main()'s job.
#pragma once

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "server/common/config.h"

namespace lorad {
class Engine;
}  // namespace lorad

namespace lorad::adapters {
class AdapterStore;
}  // namespace lorad::adapters

namespace lorad::server {

class Authorizer;
class HealthService;
class LateAdapterProvider;
class InferenceMetrics;
class Metrics;
class InferenceService;
class AdaptersService;
class FineTuningService;
class JobManager;
class HttpFront;

// Lifecycle: Create() -> Start() -> LoadModel() -> (serve) -> Shutdown() -> Wait() returns.
// Thread-safety: Create/Start/LoadModel from one thread; Shutdown() and the accessors are
// thread-safe once Start() has returned; Wait() may be called from any thread.
class LoradServer {
 public:
  // Validates `config`, checks the model path, reads the auth tokens and TLS files (cheap
  // checks only; binds nothing, loads no model). INVALID_ARGUMENT / NOT_FOUND /
  // PERMISSION_DENIED with a one-line message on failure.
  static absl::StatusOr<std::unique_ptr<LoradServer>> Create(const ServerConfig& config);

  ~LoradServer();
  LoradServer(const LoradServer&) = delete;
  LoradServer& operator=(const LoradServer&) = delete;

  // Binds the gRPC and metrics addresses and starts serving. Health reports NOT_SERVING (and
  // Inference RPCs UNAVAILABLE) until LoadModel() succeeds. UNAVAILABLE if an address cannot be
  // bound (nothing is left running then). Call once.
  absl::Status Start();

  // Loads the model into a new Engine, creates the adapter store (and preloads adapters) and
  // the job manager (resuming unfinished fine-tune jobs), then flips health to SERVING. A one-line
  // error if the model or an adapter does not load. Call once, after Start().
  absl::Status LoadModel();

  // Health to NOT_SERVING, fine-tuning stops within one op (unfinished jobs resume on the
  // next start), new generate requests UNAVAILABLE, running requests get up to `grace` to finish,
  // then the rest are cancelled and the gRPC server stops; stops the metrics endpoint. Blocks until
  // done; later calls return at once. Must not be called from a gRPC callback thread.
  void Shutdown(absl::Duration grace);

  // Blocks until the gRPC server has shut down (after Shutdown()).
  void Wait();

  // Whether health currently reports SERVING.
  bool serving() const;

  // "host:port" of the bound gRPC address (the real port when the config said port 0).
  std::string listen_address() const;
  // "host:port" of the bound metrics address; empty when metrics are disabled.
  std::string metrics_address() const;
  // The bound OpenAI-compatible HTTP address, "" when disabled.
  std::string http_address() const;

  // The effective configuration.
  const ServerConfig& config() const { return config_; }
  // The metrics registry; valid for the server's lifetime.
  Metrics& metrics() { return *metrics_; }

 private:
  LoradServer(const ServerConfig& config, std::shared_ptr<grpc::ServerCredentials> credentials,
              std::unique_ptr<Authorizer> auth);
  void SetServing(bool serving);
  // Creates the adapter store on the loaded model's spec, preloads --preload_adapters and
  // hands the store to the engine, the Adapters service and the metrics.
  absl::Status StartAdapterStore();
  // Creates the job manager (resuming unfinished jobs) and hands it to the FineTuning service.
  absl::Status StartJobManager();

  // Destruction order matters: the gRPC server goes first (no RPC uses the engine after it),
  // then the engine (its scheduler thread reports to inference_metrics_), then the rest.
  const ServerConfig config_;
  std::shared_ptr<grpc::ServerCredentials> credentials_;
  std::unique_ptr<Authorizer> auth_;  // Null when auth is off.
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<InferenceMetrics> inference_metrics_;
  // The engine's adapter provider; forwards to adapter_store_ once LoadModel() made it.
  std::unique_ptr<LateAdapterProvider> adapter_provider_;
  std::shared_ptr<adapters::AdapterStore> adapter_store_;  // Set by LoadModel().
  std::unique_ptr<InferenceService> inference_service_;
  std::unique_ptr<AdaptersService> adapters_service_;
  std::unique_ptr<FineTuningService> finetuning_service_;
  std::unique_ptr<HealthService> health_service_;
  std::unique_ptr<Engine> engine_;  // Set by LoadModel(), then immutable.
  // Set by LoadModel(); trains on engine_, so it goes before it (and after the gRPC server,
  // whose WatchJob streams use it).
  std::unique_ptr<JobManager> job_manager_;
  std::unique_ptr<grpc::Server> grpc_server_;  // Set by Start(), then immutable.
  int grpc_port_ = 0;                          // Set by Start(), then immutable.
  int metrics_port_ = 0;                       // Set by Start(), then immutable.
  std::unique_ptr<HttpFront> http_front_;      // Set by Start(), then immutable.

  mutable absl::Mutex mu_;
  bool serving_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace lorad::server
