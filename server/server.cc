#include "server/server.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "adapters/adapter_store.h"
#include "engine/base/status_macros.h"
#include "engine/engine.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "server/adapters/adapter_preload.h"
#include "server/adapters/adapters_service.h"
#include "server/adapters/late_adapter_provider.h"
#include "server/common/auth.h"
#include "server/common/credentials.h"
#include "server/common/engine_options.h"
#include "server/common/health_service.h"
#include "server/common/host_port.h"
#include "server/common/model_check.h"
#include "server/common/parse_error_interceptor.h"
#include "server/inference/http_front.h"
#include "server/inference/inference_service.h"
#include "server/jobs/finetuning_service.h"
#include "server/jobs/job_manager.h"
#include "server/metrics/adapter_metrics.h"
#include "server/metrics/inference_metrics.h"
#include "server/metrics/job_metrics.h"
#include "server/metrics/metrics.h"
#include "server/metrics/rpc_metrics_interceptor.h"

namespace lorad::server {
namespace {

// Services whose health is reported individually (besides the server as a whole, "").
constexpr const char* kServiceNames[] = {"lorad.v1.Inference", "lorad.v1.Adapters",
                                         "lorad.v1.FineTuning"};

}  // namespace

absl::StatusOr<std::unique_ptr<LoradServer>> LoradServer::Create(const ServerConfig& config) {
  LORAD_RETURN_IF_ERROR(ValidateConfig(config));
  LORAD_RETURN_IF_ERROR(CheckModelPath(ResolvedModelPath(config)));
  std::unique_ptr<Authorizer> auth;
  if (!config.auth_tokens_file.empty()) {
    LORAD_ASSIGN_OR_RETURN(auth, Authorizer::FromFile(config.auth_tokens_file));
  }
  LORAD_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                         MakeServerCredentials(config));
  std::unique_ptr<LoradServer> server(
      new LoradServer(config, std::move(credentials), std::move(auth)));
  return server;
}

LoradServer::LoradServer(const ServerConfig& config,
                         std::shared_ptr<grpc::ServerCredentials> credentials,
                         std::unique_ptr<Authorizer> auth)
    : config_(config),
      credentials_(std::move(credentials)),
      auth_(std::move(auth)),
      metrics_(std::make_unique<Metrics>()),
      inference_metrics_(std::make_unique<InferenceMetrics>(metrics_->registry(),
                                                            config.max_running, config.max_queue)),
      adapter_provider_(std::make_unique<LateAdapterProvider>()),
      inference_service_(std::make_unique<InferenceService>(ToRequestDefaults(config), auth_.get(),
                                                            inference_metrics_.get())),
      adapters_service_(std::make_unique<AdaptersService>(auth_.get())),
      finetuning_service_(std::make_unique<FineTuningService>(auth_.get())),
      health_service_(std::make_unique<HealthService>(config.open_health ? nullptr : auth_.get())) {
}

LoradServer::~LoradServer() {
  if (grpc_server_ != nullptr) {
    Shutdown(absl::ZeroDuration());
    grpc_server_->Wait();
    grpc_server_.reset();
  }
}

absl::Status LoradServer::Start() {
  grpc::EnableDefaultHealthCheckService(false);  // lorad serves its own (HealthService).
  // Reflection needs no token, so with auth it is served only when configured open. The plugin
  // registration is process-wide; lorad builds one server per process.
  if (auth_ == nullptr || config_.open_reflection) {
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  }

  if (auth_ != nullptr && config_.tls_cert.empty()) {
    std::fprintf(stderr,
                 "lorad: warning: --auth_tokens_file without --tls_cert/--tls_key: bearer tokens "
                 "travel in clear text\n");
  }

  grpc::ServerBuilder builder;
  // Without this, a second lorad on the same port would silently share it (SO_REUSEPORT).
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(config_.listen, credentials_, &grpc_port_);
  // The transport takes up to twice the limit, so that a request over --max_request_bytes gets
  // a clear INVALID_ARGUMENT from the handler; only far larger ones are cut off by gRPC itself
  // (RESOURCE_EXHAUSTED, "Received message larger than max").
  builder.SetMaxReceiveMessageSize(static_cast<int>(std::min<int64_t>(
      int64_t{2} * config_.max_request_bytes + (1 << 20), (int64_t{1} << 31) - 1)));
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  // The parse-error rewrite comes first so that the metrics see the final code.
  interceptors.push_back(std::make_unique<ParseErrorInterceptorFactory>());
  interceptors.push_back(std::make_unique<RpcMetricsInterceptorFactory>(metrics_->registry()));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  builder.RegisterService(inference_service_.get());
  builder.RegisterService(adapters_service_.get());
  builder.RegisterService(finetuning_service_.get());
  builder.RegisterService(health_service_.get());
  grpc_server_ = builder.BuildAndStart();
  if (grpc_server_ == nullptr || grpc_port_ == 0) {
    grpc_server_.reset();
    return absl::UnavailableError(
        absl::StrCat("listen address ", config_.listen, ": cannot listen (address in use?)"));
  }
  for (const char* name : kServiceNames) {
    health_service_->Set(name, grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  }
  SetServing(false);

  if (!config_.metrics_listen.empty()) {
    absl::StatusOr<int> port =
        metrics_->Serve(config_.metrics_listen, config_.open_metrics ? nullptr : auth_.get());
    if (!port.ok()) {
      grpc_server_->Shutdown(std::chrono::system_clock::now());
      grpc_server_->Wait();
      grpc_server_.reset();
      return port.status();
    }
    metrics_port_ = *port;
  }

  if (!config_.http_listen.empty()) {
    HttpFrontOptions http;
    http.listen = config_.http_listen;
    http.threads = config_.http_threads;
    http.max_body_bytes = config_.max_request_bytes;
    http.default_max_tokens = std::min(config_.default_max_new_tokens, config_.max_new_tokens);
    http.base_model_id = BaseModelId(config_);
    http.auth = auth_.get();
    http.open_health = config_.open_health;
    http.open_metrics = config_.open_metrics;
    http.tls_cert = config_.tls_cert;
    http.tls_key = config_.tls_key;
    http.metrics = metrics_.get();
    // Read under mu_ once serving: LoadModel sets engine_ and the store before SetServing(true).
    http.engine = [this]() -> Engine* {
      absl::MutexLock lock(&mu_);
      return serving_ ? engine_.get() : nullptr;
    };
    http.adapters = [this]() -> adapters::AdapterStore* {
      absl::MutexLock lock(&mu_);
      return serving_ ? adapter_store_.get() : nullptr;
    };
    http.unload_adapter = [this](const std::string& id) { return adapters_service_->Unload(id); };
    http.serving = [this] { return serving(); };
    absl::StatusOr<std::unique_ptr<HttpFront>> front = HttpFront::Start(std::move(http));
    if (!front.ok()) {
      metrics_->StopServing();
      grpc_server_->Shutdown(std::chrono::system_clock::now());
      grpc_server_->Wait();
      grpc_server_.reset();
      return front.status();
    }
    http_front_ = *std::move(front);
  }

  return absl::OkStatus();
}

absl::Status LoradServer::LoadModel() {
  EngineOptions options = ToEngineOptions(config_, inference_metrics_.get());
  options.adapters = adapter_provider_.get();
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(options);
  if (!engine.ok()) {
    return absl::Status(engine.status().code(), absl::StrCat("model ", ResolvedModelPath(config_),
                                                             ": ", engine.status().message()));
  }
  engine_ = *std::move(engine);
  LORAD_RETURN_IF_ERROR(StartAdapterStore());
  LORAD_RETURN_IF_ERROR(StartJobManager());
  // After the job manager has registered its adapters, so that an unload is never undone.
  adapters_service_->Start(adapter_store_.get(), job_manager_.get());
  inference_service_->SetEngine(engine_.get());
  SetServing(true);
  return absl::OkStatus();
}

absl::Status LoradServer::StartAdapterStore() {
  adapters::AdapterStoreOptions options;
  options.adapter_root = config_.adapter_root;
  if (options.adapter_root.empty()) {
    options.adapter_root = absl::StrCat(config_.data_dir, "/adapters");
    std::error_code ignored;  // AdapterStore::Create reports a root it cannot use.
    std::filesystem::create_directories(options.adapter_root, ignored);
  }
  options.base = engine_->spec();
  options.host_budget_bytes = int64_t{config_.adapter_host_budget_mb} << 20;
  options.max_pinned_fraction = config_.adapter_max_pinned_percent / 100.0;
  absl::StatusOr<std::unique_ptr<adapters::AdapterStore>> store =
      adapters::AdapterStore::Create(options);
  if (!store.ok()) {
    return absl::Status(store.status().code(),
                        absl::StrCat("adapter root: ", store.status().message()));
  }
  adapter_store_ = std::shared_ptr<adapters::AdapterStore>(std::move(*store));
  LORAD_ASSIGN_OR_RETURN(std::vector<PreloadEntry> preload,
                         ParsePreloadList(config_.preload_adapters));
  for (const PreloadEntry& entry : preload) {
    absl::StatusOr<adapters::AdapterInfo> info =
        adapter_store_->Load(entry.adapter_id, entry.source, /*pin=*/false);
    if (!info.ok()) {
      return absl::Status(
          info.status().code(),
          absl::StrCat("--preload_adapters: ", entry.adapter_id, ": ", info.status().message()));
    }
  }
  adapter_provider_->Set(adapter_store_.get());
  metrics_->AddCollectable(std::make_shared<AdapterMetricsCollector>(adapter_store_));
  return absl::OkStatus();
}

absl::Status LoradServer::StartJobManager() {
  JobManagerOptions options;
  options.data_dir = config_.data_dir;
  options.adapter_root = config_.adapter_root.empty() ? absl::StrCat(config_.data_dir, "/adapters")
                                                      : config_.adapter_root;
  options.engine = engine_.get();
  options.adapters = adapter_store_.get();
  options.base_model_name = std::filesystem::path(ResolvedModelPath(config_)).filename().string();
  options.max_dataset_bytes = config_.max_dataset_bytes;
  options.max_queued_jobs = config_.max_queued_jobs;
  options.checkpoint_every_steps = config_.checkpoint_every_steps;
  options.train_threads = config_.train_threads;
  options.train_recompute = config_.train_recompute;
  options.train_activation_memory_bytes = int64_t{config_.train_activation_memory_mb} << 20;
  options.train_adapter_memory_bytes = int64_t{config_.train_adapter_memory_mb} << 20;
  options.train_max_pause = absl::Milliseconds(config_.train_max_pause_ms);
  absl::StatusOr<std::unique_ptr<JobManager>> manager = JobManager::Create(options);
  if (!manager.ok()) {
    return absl::Status(manager.status().code(),
                        absl::StrCat("fine-tune jobs: ", manager.status().message()));
  }
  job_manager_ = *std::move(manager);
  metrics_->AddCollectable(std::make_shared<JobMetricsCollector>(job_manager_->stats()));
  finetuning_service_->SetManager(job_manager_.get());
  return absl::OkStatus();
}

void LoradServer::SetServing(bool serving) {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return;
  serving_ = serving;
  health_service_->SetAll(serving ? grpc::health::v1::HealthCheckResponse::SERVING
                                  : grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  metrics_->SetServing(serving);
}

void LoradServer::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_ || grpc_server_ == nullptr) return;
    serving_ = false;
    health_service_->Shutdown();
    metrics_->SetServing(false);
    shut_down_ = true;
  }
  const absl::Time deadline = absl::Now() + grace;
  // Training stops at once (its job stays RUNNING and resumes on the next start) and WatchJob
  // streams end, so that neither holds up the drain.
  if (job_manager_ != nullptr) job_manager_->Shutdown();
  if (engine_ != nullptr) {
    // New requests get UNAVAILABLE; running ones finish within the grace period.
    engine_->StopAccepting();
    engine_->WaitIdle(grace);
  }
  // Streams that finished still flush their last messages; whatever runs past the deadline
  // is cancelled (the reactors then cancel their engine requests).
  const absl::Time flush_deadline =
      std::max(deadline, absl::Now() + std::min(grace, absl::Seconds(1)));
  grpc_server_->Shutdown(absl::ToChronoTime(flush_deadline));
  if (http_front_ != nullptr) http_front_->Stop();
  metrics_->StopServing();
}

void LoradServer::Wait() {
  if (grpc_server_ != nullptr) grpc_server_->Wait();
}

bool LoradServer::serving() const {
  absl::MutexLock lock(&mu_);
  return serving_;
}

std::string LoradServer::listen_address() const {
  absl::StatusOr<HostPort> address = ParseHostPort(config_.listen);
  return FormatHostPort(address.ok() ? address->host : "", grpc_port_);
}

std::string LoradServer::http_address() const {
  if (http_front_ == nullptr) return "";
  absl::StatusOr<HostPort> address = ParseHostPort(config_.http_listen);
  return FormatHostPort(address.ok() ? address->host : "", http_front_->port());
}

std::string LoradServer::metrics_address() const {
  if (metrics_port_ == 0) return "";
  absl::StatusOr<HostPort> address = ParseHostPort(config_.metrics_listen);
  return FormatHostPort(address.ok() ? address->host : "", metrics_port_);
}

}  // namespace lorad::server
